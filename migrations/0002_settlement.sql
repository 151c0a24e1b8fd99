-- The settlement decisions that must be atomic, as SQL functions, so each request costs one
-- round trip: the request's nonce, the proof, the payment, the ledger and the outbox row are
-- written in the caller's single transaction or not at all. Pure checks (JSON, proof fields,
-- signatures, roles) happen in C before the call; a failed pure check is passed in as
-- p_refusal so the nonce is still recorded (design.md, "request auth") and the answer keeps
-- the documented order of checks.

-- Records (ocid, nonce); false when it was already there (a replay).
CREATE FUNCTION oc_nonce(p_ocid bigint, p_nonce text) RETURNS boolean
LANGUAGE sql AS $$
    WITH ins AS (
        INSERT INTO request_nonces (ocid, nonce) VALUES (p_ocid, p_nonce)
        ON CONFLICT DO NOTHING RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM ins)
$$;

-- POST /payment/create. p_body is the 200 answer C prepared; it is stored with an
-- Idempotency-Key so a retry gets the same bytes back. Results:
--   created | replay (status, body stored) | nonce_reused | merchant_not_registered |
--   idempotency_conflict
CREATE FUNCTION oc_payment_create(
    p_caller bigint, p_nonce text, p_idem_key text, p_request_sha text,
    p_txid text, p_merchant bigint, p_amount numeric, p_amount_text text, p_currency text,
    p_reference text, p_memo text, p_order_id text, p_expires_at bigint, p_body text)
RETURNS TABLE (result text, status integer, body text)
LANGUAGE plpgsql AS $$
DECLARE
    k idempotency_keys%ROWTYPE;
BEGIN
    IF NOT oc_nonce(p_caller, p_nonce) THEN
        RETURN QUERY SELECT 'nonce_reused', NULL::integer, NULL::text; RETURN;
    END IF;
    IF p_idem_key IS NOT NULL THEN
        -- A concurrent first request holds this row uncommitted: we wait for it and then see
        -- its stored answer, so a retry never creates a second payment.
        INSERT INTO idempotency_keys (caller_ocid, key, request_sha256)
        VALUES (p_caller, p_idem_key, p_request_sha) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT * INTO k FROM idempotency_keys
             WHERE caller_ocid = p_caller AND key = p_idem_key;
            IF k.request_sha256 <> p_request_sha OR k.response_body IS NULL THEN
                RETURN QUERY SELECT 'idempotency_conflict', NULL::integer, NULL::text; RETURN;
            END IF;
            RETURN QUERY SELECT 'replay', k.response_status, k.response_body; RETURN;
        END IF;
    END IF;
    PERFORM 1 FROM participants
     WHERE ocid = p_merchant AND enabled AND 'merchant' = ANY (roles);
    IF NOT FOUND THEN
        -- Keep the key unused: only 2xx answers are remembered.
        DELETE FROM idempotency_keys WHERE caller_ocid = p_caller AND key = p_idem_key;
        RETURN QUERY SELECT 'merchant_not_registered', NULL::integer, NULL::text; RETURN;
    END IF;
    INSERT INTO payments (txid, merchant_ocid, app_ocid, amount, amount_text, currency,
                          reference, memo, order_id, expires_at)
    VALUES (p_txid, p_merchant, p_caller, p_amount, p_amount_text, p_currency, p_reference,
            p_memo, p_order_id, to_timestamp(p_expires_at));
    IF p_idem_key IS NOT NULL THEN
        UPDATE idempotency_keys SET response_status = 200, response_body = p_body
         WHERE caller_ocid = p_caller AND key = p_idem_key;
    END IF;
    RETURN QUERY SELECT 'created', 200, p_body;
END $$;

-- The gateway's own proof for a payment, in strict canonical form: keys in UTF-16 order
-- (amount, currency, from, issuer, memo, timestamp, to{ocid, reference}, txid) and strings
-- escaped by to_json, which escapes exactly as JSON.stringify does. p_from_canon is the
-- provider proof's from object, canonicalised by ocgate. C re-canonicalises the text before
-- signing it, so a divergence here could never produce a wrong signature, only a refusal.
CREATE FUNCTION oc_gateway_proof(pay payments, p_from_canon text, p_gateway bigint,
                                 p_completed_at bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '{"amount":' || to_json(pay.amount_text)::text
        || ',"currency":' || to_json(pay.currency)::text
        || ',"from":' || p_from_canon
        || ',"issuer":' || p_gateway::text
        || COALESCE(',"memo":' || to_json(pay.memo)::text, '')
        || ',"timestamp":' || p_completed_at::text
        || ',"to":{"ocid":' || pay.merchant_ocid::text
        || COALESCE(',"reference":' || to_json(COALESCE(pay.order_id, pay.reference))::text, '')
        || '},"txid":' || to_json(pay.txid)::text || '}'
$$;

-- A verified proof, from the provider's webhook or the payment app's settle call.
-- Results (result, outcome, payment_txid, gateway_proof):
--   nonce_reused | payment_not_found | unauthorized | refused (p_refusal echoed in outcome)
--   | new (outcome decided now) | replay (outcome decided by the first submission)
-- outcome: credited | unmatched | amount_mismatch | currency_mismatch | late |
--          duplicate_payment. gateway_proof is the completed payment's proof when credited.
CREATE FUNCTION oc_settle_proof(
    p_caller bigint, p_nonce text, p_via text, p_body_txid text, p_refusal text,
    p_issuer bigint, p_proof_txid text, p_reference text, p_amount numeric,
    p_amount_text text, p_currency text, p_proof_json text, p_signature text, p_form text,
    p_from_canon text, p_gateway bigint, p_now bigint)
RETURNS TABLE (result text, outcome text, payment_txid text, gateway_proof text)
LANGUAGE plpgsql AS $$
DECLARE
    pay payments%ROWTYPE;
    prev proofs%ROWTYPE;
    v_outcome text;
    v_proof_id bigint;
    v_ltx bigint;
    v_exc bigint;
    v_gw text;
BEGIN
    IF NOT oc_nonce(p_caller, p_nonce) THEN
        RETURN QUERY SELECT 'nonce_reused', NULL, NULL, NULL; RETURN;
    END IF;
    IF p_via = 'settle' THEN
        SELECT * INTO pay FROM payments WHERE txid = p_body_txid;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'payment_not_found', NULL, NULL, NULL; RETURN;
        END IF;
        IF p_caller <> pay.app_ocid AND p_caller <> p_issuer THEN
            RETURN QUERY SELECT 'unauthorized', NULL, NULL, NULL; RETURN;
        END IF;
    END IF;
    IF p_refusal IS NOT NULL THEN
        RETURN QUERY SELECT 'refused', p_refusal, NULL, NULL; RETURN;
    END IF;

    -- One submission of a given proof at a time; the unique key below is the final guard.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_issuer::text || '/' || p_proof_txid, 7));
    SELECT * INTO prev FROM proofs WHERE issuer = p_issuer AND txid = p_proof_txid;
    IF FOUND THEN
        SELECT p.gateway_proof INTO v_gw FROM payments p
         WHERE p.txid = prev.payment_txid AND prev.outcome = 'credited';
        RETURN QUERY SELECT 'replay', prev.outcome, prev.payment_txid, v_gw; RETURN;
    END IF;

    SELECT * INTO pay FROM payments WHERE txid = p_reference FOR UPDATE;
    IF NOT FOUND THEN
        v_outcome := 'unmatched';
    ELSIF pay.status = 'completed' THEN
        v_outcome := 'duplicate_payment';
    ELSIF pay.currency <> p_currency THEN
        v_outcome := 'currency_mismatch';
    ELSIF pay.amount <> p_amount THEN
        v_outcome := 'amount_mismatch';
    ELSIF pay.expires_at < to_timestamp(p_now) THEN
        v_outcome := 'late';
    ELSE
        v_outcome := 'credited';
    END IF;

    INSERT INTO proofs (issuer, txid, merchant_ocid, payment_txid, reference, amount,
                        amount_text, currency, proof_json, signature, canonical_form,
                        received_via, submitter_ocid, outcome)
    VALUES (p_issuer, p_proof_txid, pay.merchant_ocid, pay.txid, p_reference, p_amount,
            p_amount_text, p_currency, p_proof_json, p_signature, p_form, p_via, p_caller,
            v_outcome)
    RETURNING id INTO v_proof_id;

    IF v_outcome = 'credited' THEN
        v_gw := oc_gateway_proof(pay, p_from_canon, p_gateway, p_now);
        UPDATE payments SET status = 'completed', completed_at = to_timestamp(p_now),
                            completed_by = v_proof_id, gateway_proof = v_gw
         WHERE txid = pay.txid;
        INSERT INTO ledger_transactions (kind, proof_id, payment_txid, merchant_ocid)
        VALUES ('settlement', v_proof_id, pay.txid, pay.merchant_ocid) RETURNING id INTO v_ltx;
        INSERT INTO ledger_entries (ledger_tx_id, account, merchant_ocid, currency, amount)
        VALUES (v_ltx, 'clearing:' || p_issuer, pay.merchant_ocid, pay.currency, -pay.amount),
               (v_ltx, 'merchant:' || pay.merchant_ocid, pay.merchant_ocid, pay.currency,
                pay.amount);
        INSERT INTO deliveries (id, payment_txid, merchant_ocid)
        VALUES (gen_random_uuid(), pay.txid, pay.merchant_ocid);
    ELSE
        -- Money that moved but cannot be credited automatically is parked in suspense,
        -- visible to operators as an exception (I4).
        INSERT INTO exceptions (proof_id, kind, merchant_ocid, amount, currency)
        VALUES (v_proof_id, v_outcome, pay.merchant_ocid, p_amount, p_currency)
        RETURNING id INTO v_exc;
        INSERT INTO ledger_transactions (kind, proof_id, payment_txid, exception_id,
                                         merchant_ocid)
        VALUES ('suspense', v_proof_id, pay.txid, v_exc, pay.merchant_ocid)
        RETURNING id INTO v_ltx;
        INSERT INTO ledger_entries (ledger_tx_id, account, merchant_ocid, currency, amount)
        VALUES (v_ltx, 'clearing:' || p_issuer, pay.merchant_ocid, p_currency, -p_amount),
               (v_ltx, 'suspense', pay.merchant_ocid, p_currency, p_amount);
    END IF;
    RETURN QUERY SELECT 'new', v_outcome, pay.txid, v_gw;
END $$;

-- GET /verify/{txid}: the creating app, the payment's merchant or any enabled settlement
-- provider may look; everyone else is told it does not exist.
CREATE FUNCTION oc_verify(p_caller bigint, p_nonce text, p_txid text, p_caller_is_provider boolean)
RETURNS TABLE (result text, status text, amount_text text, currency text, created_at bigint,
               expires_at bigint, gateway_proof text)
LANGUAGE plpgsql AS $$
DECLARE
    pay payments%ROWTYPE;
BEGIN
    IF NOT oc_nonce(p_caller, p_nonce) THEN
        RETURN QUERY SELECT 'nonce_reused', NULL, NULL, NULL, NULL::bigint, NULL::bigint, NULL;
        RETURN;
    END IF;
    SELECT * INTO pay FROM payments WHERE txid = p_txid;
    IF NOT FOUND OR NOT (p_caller = pay.app_ocid OR p_caller = pay.merchant_ocid
                         OR p_caller_is_provider) THEN
        RETURN QUERY SELECT 'not_found', NULL, NULL, NULL, NULL::bigint, NULL::bigint, NULL;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'found', pay.status, pay.amount_text, pay.currency,
                        extract(epoch FROM pay.created_at)::bigint,
                        extract(epoch FROM pay.expires_at)::bigint, pay.gateway_proof;
END $$;

-- Housekeeping run by one loop of each instance: nonces live twice the timestamp window,
-- idempotency keys at least 24 h (design.md, "retention").
CREATE FUNCTION oc_prune(p_nonce_keep_s integer) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM request_nonces WHERE seen_at < now() - make_interval(secs => p_nonce_keep_s);
    DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours';
$$;
