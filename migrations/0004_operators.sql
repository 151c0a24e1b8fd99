-- Operator functions (design.md "Shape of the code", admin/): every view and every action the
-- CLI offers now and the admin API will offer later is one SQL function returning jsonb, so
-- both run exactly the same code (src/admin/admin.c holds the statement texts). Lists are
-- ordered, filtered and paged by an opaque cursor; money is always a decimal string, never a
-- JSON number; times are Unix seconds.
--
-- Caller errors (a bad filter value, limit or cursor) raise SQLSTATE 22023
-- (invalid_parameter_value) with a message meant for the operator. Exception resolution
-- never raises for a refusal: it answers {"result": ...} and records the attempt in
-- admin_audit, refusals included.

-- Who did what, when and why, with the exact request and answer. Append-only like the ledger.
CREATE TABLE admin_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),  -- OS user (CLI), client id (API)
    action      text NOT NULL,
    target      text,
    reason      text,
    request     jsonb NOT NULL,
    result      jsonb NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit (at);
CREATE INDEX admin_audit_target ON admin_audit (target, id);
CREATE TRIGGER admin_audit_append_only BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- What the lists, the payment view and the ledger check look things up by.
CREATE INDEX payments_created ON payments (created_at, txid);
CREATE INDEX exceptions_status ON exceptions (status, id);
CREATE INDEX exceptions_attached ON exceptions (attached_txid) WHERE attached_txid IS NOT NULL;
CREATE INDEX ledger_transactions_payment ON ledger_transactions (payment_txid);
CREATE INDEX ledger_transactions_proof ON ledger_transactions (proof_id);
CREATE INDEX ledger_transactions_exception ON ledger_transactions (exception_id)
    WHERE exception_id IS NOT NULL;
CREATE INDEX ledger_entries_account_id ON ledger_entries (account, id);

-- ---- helpers -------------------------------------------------------------------------------

CREATE FUNCTION oc_admin_invalid(p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', p_message USING ERRCODE = 'invalid_parameter_value';
END $$;

-- A stored JSON text as jsonb for display; a text jsonb cannot hold (a string with \u0000)
-- is shown as a JSON string instead of failing the whole view.
CREATE FUNCTION oc_admin_json(p_text text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN p_text::jsonb;
EXCEPTION WHEN OTHERS THEN
    RETURN to_jsonb(p_text);
END $$;

CREATE FUNCTION oc_epoch(p_at timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT floor(extract(epoch FROM p_at))::bigint
$$;

-- Page size: NULL = 50, otherwise 1..1000.
CREATE FUNCTION oc_admin_limit(p_limit integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_limit IS NULL THEN
        RETURN 50;
    END IF;
    IF p_limit < 1 OR p_limit > 1000 THEN
        PERFORM oc_admin_invalid('limit must be from 1 to 1000');
    END IF;
    RETURN p_limit;
END $$;

-- A cursor is the base64url text of ["<list>", <key of the last row shown>]. It is opaque to
-- callers; the list name keeps one list's cursor from being used with another.
CREATE FUNCTION oc_cursor_encode(p_list text, p_key text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(encode(convert_to(jsonb_build_array(p_list, p_key)::text, 'UTF8'),
                            'base64'), E'+/=\n', '-_')
$$;

-- One page of a list: items holds up to lim + 1 rows in order; the extra row, if any, is
-- dropped and the last row kept names the cursor for the next page.
CREATE FUNCTION oc_admin_page(p_items jsonb, p_lim integer, p_list text, p_key text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_array_length(p_items) > p_lim
                THEN jsonb_build_object('items', p_items - p_lim, 'next_cursor',
                        oc_cursor_encode(p_list, p_items -> (p_lim - 1) ->> p_key))
                ELSE jsonb_build_object('items', p_items, 'next_cursor', NULL) END
$$;

-- The key of a cursor made by oc_cursor_encode for list p_list; NULL for a NULL cursor.
CREATE FUNCTION oc_cursor_decode(p_cursor text, p_list text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    b64 text;
    v jsonb;
BEGIN
    IF p_cursor IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(p_cursor) > 700 OR p_cursor !~ '^[A-Za-z0-9_-]+$' THEN
        PERFORM oc_admin_invalid('invalid cursor');
    END IF;
    b64 := translate(p_cursor, '-_', '+/');
    b64 := b64 || repeat('=', (4 - length(b64) % 4) % 4);
    BEGIN
        v := convert_from(decode(b64, 'base64'), 'UTF8')::jsonb;
    EXCEPTION WHEN OTHERS THEN
        v := NULL;
    END;
    IF v IS NULL OR jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) <> 2
       OR v ->> 0 IS DISTINCT FROM p_list OR jsonb_typeof(v -> 1) <> 'string' THEN
        PERFORM oc_admin_invalid('invalid cursor');
    END IF;
    RETURN v ->> 1;
END $$;

-- ---- JSON views of single rows ------------------------------------------------------------

CREATE FUNCTION oc_admin_payment_json(p payments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'txid', p.txid, 'merchant', p.merchant_ocid, 'app', p.app_ocid,
        'amount', p.amount_text, 'currency', p.currency, 'status', p.status,
        'expired', p.status = 'pending_settlement' AND p.expires_at < now(),
        'reference', p.reference, 'orderId', p.order_id, 'memo', p.memo,
        'createdAt', oc_epoch(p.created_at), 'expiresAt', oc_epoch(p.expires_at),
        'completedAt', oc_epoch(p.completed_at), 'completedBy', p.completed_by)
$$;

CREATE FUNCTION oc_admin_exception_json(x exceptions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', x.id, 'kind', x.kind, 'status', x.status, 'merchant', x.merchant_ocid,
        'amount', pr.amount_text, 'currency', x.currency,
        'proofId', x.proof_id, 'issuer', pr.issuer, 'proofTxid', pr.txid,
        'reference', pr.reference, 'paymentTxid', pr.payment_txid,
        'attachedTxid', x.attached_txid, 'resolvedBy', x.resolved_by,
        'resolvedAt', oc_epoch(x.resolved_at), 'resolutionNote', x.resolution_note,
        'createdAt', oc_epoch(x.created_at))
      FROM proofs pr WHERE pr.id = x.proof_id
$$;

-- A ledger transaction with its entries.
CREATE FUNCTION oc_admin_ledger_tx_json(t ledger_transactions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', t.id, 'kind', t.kind, 'proofId', t.proof_id, 'paymentTxid', t.payment_txid,
        'exceptionId', t.exception_id, 'merchant', t.merchant_ocid,
        'createdAt', oc_epoch(t.created_at),
        'entries', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'id', e.id, 'account', e.account, 'currency', e.currency,
                                 'amount', trim_scale(e.amount)::text) ORDER BY e.id)
                               FROM ledger_entries e WHERE e.ledger_tx_id = t.id), '[]'))
$$;

-- ---- lists ---------------------------------------------------------------------------------

-- Payments ordered by (created_at, txid). p_status: pending_settlement (every pending one),
-- pending (pending, not yet expired), expired (pending past its expiry) or completed; NULL =
-- all. p_from inclusive, p_to exclusive, on created_at. Answer {items, next_cursor}; next_cursor
-- is NULL on the last page. A cursor names the last payment shown (payments are never deleted
-- and created_at never changes, so it stays valid).
CREATE FUNCTION oc_admin_payments(p_status text, p_merchant bigint, p_currency text,
                                  p_from timestamptz, p_to timestamptz, p_cursor text,
                                  p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lim integer := oc_admin_limit(p_limit);
    after_txid text := oc_cursor_decode(p_cursor, 'payments');
    after_at timestamptz;
    items jsonb;
BEGIN
    IF p_status IS NOT NULL
       AND p_status NOT IN ('pending_settlement', 'pending', 'expired', 'completed') THEN
        PERFORM oc_admin_invalid('status is pending_settlement, pending, expired or completed');
    END IF;
    IF after_txid IS NOT NULL THEN
        SELECT created_at INTO after_at FROM payments WHERE txid = after_txid;
        IF NOT FOUND THEN
            PERFORM oc_admin_invalid('invalid cursor');
        END IF;
    END IF;
    SELECT coalesce(jsonb_agg(oc_admin_payment_json(s.p)
                              ORDER BY (s.p).created_at, (s.p).txid), '[]')
      INTO items
      FROM (SELECT p FROM payments p
             WHERE (p_merchant IS NULL OR p.merchant_ocid = p_merchant)
               AND (p_currency IS NULL OR p.currency = p_currency)
               AND (p_from IS NULL OR p.created_at >= p_from)
               AND (p_to IS NULL OR p.created_at < p_to)
               AND (after_txid IS NULL OR (p.created_at, p.txid) > (after_at, after_txid))
               AND CASE p_status
                   WHEN 'pending_settlement' THEN p.status = 'pending_settlement'
                   WHEN 'pending' THEN p.status = 'pending_settlement' AND p.expires_at >= now()
                   WHEN 'expired' THEN p.status = 'pending_settlement' AND p.expires_at < now()
                   WHEN 'completed' THEN p.status = 'completed'
                   ELSE true END
             ORDER BY p.created_at, p.txid
             LIMIT lim + 1) s;
    RETURN oc_admin_page(items, lim, 'payments', 'txid');
END $$;

-- Ledger entries ordered by id, of one account (NULL = every account), each with its
-- transaction's kind and links. Answer {items, next_cursor}.
CREATE FUNCTION oc_admin_ledger(p_account text, p_cursor text, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lim integer := oc_admin_limit(p_limit);
    after_text text := oc_cursor_decode(p_cursor, 'ledger');
    after_id bigint;
    items jsonb;
BEGIN
    IF after_text IS NOT NULL THEN
        IF after_text !~ '^[0-9]{1,18}$' THEN
            PERFORM oc_admin_invalid('invalid cursor');
        END IF;
        after_id := after_text::bigint;
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', e.id, 'ledgerTx', t.id, 'kind', t.kind, 'account', e.account,
               'merchant', e.merchant_ocid, 'currency', e.currency,
               'amount', trim_scale(e.amount)::text, 'proofId', t.proof_id,
               'paymentTxid', t.payment_txid, 'exceptionId', t.exception_id,
               'createdAt', oc_epoch(t.created_at)) ORDER BY e.id), '[]')
      INTO items
      FROM (SELECT * FROM ledger_entries
             WHERE (p_account IS NULL OR account = p_account)
               AND (after_id IS NULL OR id > after_id)
             ORDER BY id LIMIT lim + 1) e
      JOIN ledger_transactions t ON t.id = e.ledger_tx_id;
    RETURN oc_admin_page(items, lim, 'ledger', 'id');
END $$;

-- Exceptions ordered by id. p_status: open, attached, refunded, dismissed; p_kind: unmatched,
-- amount_mismatch, currency_mismatch, late, duplicate_payment; NULL = all. Answer
-- {items, next_cursor}.
CREATE FUNCTION oc_admin_exceptions(p_status text, p_kind text, p_cursor text, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lim integer := oc_admin_limit(p_limit);
    after_text text := oc_cursor_decode(p_cursor, 'exceptions');
    after_id bigint;
    items jsonb;
BEGIN
    IF p_status IS NOT NULL AND p_status NOT IN ('open', 'attached', 'refunded', 'dismissed') THEN
        PERFORM oc_admin_invalid('status is open, attached, refunded or dismissed');
    END IF;
    IF p_kind IS NOT NULL AND p_kind NOT IN ('unmatched', 'amount_mismatch', 'currency_mismatch',
                                             'late', 'duplicate_payment') THEN
        PERFORM oc_admin_invalid('kind is unmatched, amount_mismatch, currency_mismatch, late '
                                 'or duplicate_payment');
    END IF;
    IF after_text IS NOT NULL THEN
        IF after_text !~ '^[0-9]{1,18}$' THEN
            PERFORM oc_admin_invalid('invalid cursor');
        END IF;
        after_id := after_text::bigint;
    END IF;
    SELECT coalesce(jsonb_agg(oc_admin_exception_json(s.x) ORDER BY (s.x).id), '[]')
      INTO items
      FROM (SELECT x FROM exceptions x
             WHERE (p_status IS NULL OR x.status = p_status)
               AND (p_kind IS NULL OR x.kind = p_kind)
               AND (after_id IS NULL OR x.id > after_id)
             ORDER BY x.id LIMIT lim + 1) s;
    RETURN oc_admin_page(items, lim, 'exceptions', 'id');
END $$;

-- ---- one payment ---------------------------------------------------------------------------

-- Everything about one payment, or NULL if there is none: the payment; every proof matched to
-- it or attached to it; the exceptions of those proofs and those attached to it; every ledger
-- transaction of the payment, of those proofs or of those exceptions, with its entries; its
-- merchant notification with every attempt (NULL while it has none).
CREATE FUNCTION oc_admin_payment(p_txid text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    pay payments%ROWTYPE;
    proof_ids bigint[];
    exc_ids bigint[];
    v_delivery jsonb;
BEGIN
    SELECT * INTO pay FROM payments WHERE txid = p_txid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(array_agg(DISTINCT id), '{}') INTO proof_ids
      FROM (SELECT id FROM proofs WHERE payment_txid = p_txid
            UNION ALL SELECT pay.completed_by WHERE pay.completed_by IS NOT NULL
            UNION ALL SELECT proof_id FROM exceptions WHERE attached_txid = p_txid) s;
    SELECT coalesce(array_agg(id), '{}') INTO exc_ids
      FROM exceptions WHERE proof_id = ANY (proof_ids) OR attached_txid = p_txid;
    SELECT jsonb_build_object(
               'id', d.id, 'merchant', d.merchant_ocid, 'state', d.state,
               'attempts', d.attempts, 'nextAttemptAt', oc_epoch(d.next_attempt_at),
               'leaseUntil', oc_epoch(d.lease_until), 'lastError', d.last_error,
               'createdAt', oc_epoch(d.created_at), 'updatedAt', oc_epoch(d.updated_at),
               'attemptLog', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                          'attempt', a.attempt,
                                          'startedAt', oc_epoch(a.started_at),
                                          'durationMs', a.duration_ms,
                                          'httpStatus', a.http_status, 'error', a.error,
                                          'responseExcerpt', a.response_excerpt)
                                          ORDER BY a.attempt)
                                         FROM delivery_attempts a
                                        WHERE a.delivery_id = d.id), '[]'))
      INTO v_delivery
      FROM deliveries d WHERE d.payment_txid = p_txid;
    RETURN jsonb_build_object(
        'payment', oc_admin_payment_json(pay) || jsonb_build_object(
                       'gatewayProof', oc_admin_json(pay.gateway_proof)),
        'proofs', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'id', pr.id, 'issuer', pr.issuer, 'txid', pr.txid,
                                'paymentTxid', pr.payment_txid, 'reference', pr.reference,
                                'amount', pr.amount_text, 'currency', pr.currency,
                                'outcome', pr.outcome, 'receivedVia', pr.received_via,
                                'submitter', pr.submitter_ocid, 'form', pr.canonical_form,
                                'receivedAt', oc_epoch(pr.received_at),
                                'proof', oc_admin_json(pr.proof_json), 'signature', pr.signature)
                                ORDER BY pr.id)
                              FROM proofs pr WHERE pr.id = ANY (proof_ids)), '[]'),
        'exceptions', coalesce((SELECT jsonb_agg(oc_admin_exception_json(x) ORDER BY x.id)
                                  FROM exceptions x WHERE x.id = ANY (exc_ids)), '[]'),
        'ledger', coalesce((SELECT jsonb_agg(oc_admin_ledger_tx_json(t) ORDER BY t.id)
                              FROM ledger_transactions t
                             WHERE t.payment_txid = p_txid OR t.proof_id = ANY (proof_ids)
                                OR t.exception_id = ANY (exc_ids)), '[]'),
        'delivery', v_delivery);
END $$;

-- ---- balances ------------------------------------------------------------------------------

-- Balances from the ledger: each merchant account per currency (of p_merchant only, or of
-- every merchant when NULL), and per currency the totals of suspense (open exceptions),
-- refunds payable and each provider's clearing account (negative: money the provider has
-- reported moving to the gateway). With p_merchant, suspense and refunds payable count only
-- the entries attributed to that merchant (exceptions matched to one of its payments).
CREATE FUNCTION oc_admin_balances(p_merchant bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'merchants', coalesce((
            SELECT jsonb_agg(jsonb_build_object('merchant', m.merchant, 'currency', m.currency,
                                                'balance', trim_scale(m.total)::text,
                                                'entries', m.n)
                             ORDER BY m.merchant, m.currency)
              FROM (SELECT substr(account, 10)::bigint AS merchant, currency,
                           sum(amount) AS total, count(*) AS n
                      FROM ledger_entries
                     WHERE CASE WHEN p_merchant IS NULL THEN account LIKE 'merchant:%'
                                ELSE account = 'merchant:' || p_merchant END
                     GROUP BY 1, 2) m), '[]'),
        'suspense', coalesce((
            SELECT jsonb_agg(jsonb_build_object('currency', currency,
                                                'balance', trim_scale(total)::text)
                             ORDER BY currency)
              FROM (SELECT currency, sum(amount) AS total FROM ledger_entries
                     WHERE account = 'suspense'
                       AND (p_merchant IS NULL OR merchant_ocid = p_merchant)
                     GROUP BY currency) s), '[]'),
        'refundsPayable', coalesce((
            SELECT jsonb_agg(jsonb_build_object('currency', currency,
                                                'balance', trim_scale(total)::text)
                             ORDER BY currency)
              FROM (SELECT currency, sum(amount) AS total FROM ledger_entries
                     WHERE account = 'refunds_payable'
                       AND (p_merchant IS NULL OR merchant_ocid = p_merchant)
                     GROUP BY currency) r), '[]'),
        'clearing', coalesce((
            SELECT jsonb_agg(jsonb_build_object('provider', provider, 'currency', currency,
                                                'balance', trim_scale(total)::text)
                             ORDER BY provider, currency)
              FROM (SELECT substr(account, 10)::bigint AS provider, currency,
                           sum(amount) AS total
                      FROM ledger_entries
                     WHERE account LIKE 'clearing:%'
                       AND (p_merchant IS NULL OR merchant_ocid = p_merchant)
                     GROUP BY 1, 2) c), '[]'))
$$;

-- ---- exception resolution ------------------------------------------------------------------

-- The stored outcome of a resolved (or open) exception: the exception, the ledger
-- transaction that resolved it, and for an attach the payment it completed and that
-- payment's notification id.
CREATE FUNCTION oc_admin_resolution_json(x exceptions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'exception', oc_admin_exception_json(x),
        'ledgerTx', (SELECT oc_admin_ledger_tx_json(t) FROM ledger_transactions t
                      WHERE t.exception_id = x.id AND t.kind IN ('attach', 'refund', 'dismiss')
                      ORDER BY t.id LIMIT 1),
        'payment', (SELECT oc_admin_payment_json(p) FROM payments p
                     WHERE p.txid = x.attached_txid),
        'deliveryId', (SELECT d.id FROM deliveries d WHERE d.payment_txid = x.attached_txid))
$$;

CREATE FUNCTION oc_admin_refusal(p_result text, p_message text, x exceptions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('result', p_result, 'message', p_message)
        || CASE WHEN x.id IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('exception', oc_admin_exception_json(x)) END
$$;

-- The work of oc_admin_resolve_exception, without the audit row.
CREATE FUNCTION oc_admin_resolve_exception_do(p_id bigint, p_action text, p_txid text,
                                              p_reason text, p_actor text, p_gateway bigint,
                                              p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    x exceptions%ROWTYPE;
    none exceptions%ROWTYPE;
    pr proofs%ROWTYPE;
    pay payments%ROWTYPE;
    v_reason text := nullif(btrim(p_reason), '');
    v_now bigint := coalesce(p_now, oc_epoch(now()));
    v_status text;
    v_ltx bigint;
BEGIN
    IF p_id IS NULL THEN
        RETURN oc_admin_refusal('bad_request', 'an exception id is required', none);
    END IF;
    IF p_action IS NULL OR p_action NOT IN ('attach', 'refund', 'dismiss') THEN
        RETURN oc_admin_refusal('bad_request', 'the action is attach, refund or dismiss', none);
    END IF;
    IF length(p_reason) > 1000 THEN
        RETURN oc_admin_refusal('bad_request', 'the reason is longer than 1000 characters', none);
    END IF;
    IF p_action = 'attach' AND (p_txid IS NULL OR p_gateway IS NULL) THEN
        RETURN oc_admin_refusal('bad_request',
                                'attach needs the payment txid and the gateway OCID', none);
    END IF;
    IF p_action <> 'attach' AND p_txid IS NOT NULL THEN
        RETURN oc_admin_refusal('bad_request', 'only attach takes a payment txid', none);
    END IF;
    IF p_action = 'dismiss' AND v_reason IS NULL THEN
        RETURN oc_admin_refusal('reason_required', 'dismiss needs a reason', none);
    END IF;

    -- Concurrent resolutions of one exception are serialised here; the later one then sees
    -- the first one's outcome.
    SELECT * INTO x FROM exceptions WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN oc_admin_refusal('not_found', 'no exception has id ' || p_id, none);
    END IF;
    v_status := CASE p_action WHEN 'attach' THEN 'attached' WHEN 'refund' THEN 'refunded'
                              ELSE 'dismissed' END;
    IF x.status <> 'open' THEN
        IF x.status = v_status AND (p_action <> 'attach' OR x.attached_txid = p_txid) THEN
            RETURN jsonb_build_object('result', 'already_done') || oc_admin_resolution_json(x);
        END IF;
        RETURN oc_admin_refusal('invalid_state', 'the exception is already ' || x.status
                                || coalesce(' to payment ' || x.attached_txid, ''), x);
    END IF;
    SELECT * INTO pr FROM proofs WHERE id = x.proof_id;

    IF p_action = 'attach' THEN
        SELECT * INTO pay FROM payments WHERE txid = p_txid FOR UPDATE;
        IF NOT FOUND THEN
            RETURN oc_admin_refusal('not_found', 'no payment has txid ' || p_txid, x);
        END IF;
        IF pay.status <> 'pending_settlement' THEN
            RETURN oc_admin_refusal('invalid_state', 'payment ' || pay.txid
                                    || ' is already completed', x);
        END IF;
        IF pay.currency <> x.currency OR pay.amount <> x.amount THEN
            RETURN oc_admin_refusal('mismatch', 'payment ' || pay.txid || ' is '
                                    || pay.amount_text || ' ' || pay.currency
                                    || ', the exception ' || pr.amount_text || ' '
                                    || x.currency, x);
        END IF;
        -- proof_json is the strict canonical text of the provider's proof, and json (unlike
        -- jsonb) keeps the member's text as written, so this is the canonical "from" verbatim.
        UPDATE payments
           SET status = 'completed', completed_at = to_timestamp(v_now),
               completed_by = x.proof_id,
               gateway_proof = oc_gateway_proof(pay,
                   coalesce((pr.proof_json::json -> 'from')::text, '{}'), p_gateway, v_now)
         WHERE txid = pay.txid;
        INSERT INTO ledger_transactions (kind, proof_id, payment_txid, exception_id,
                                         merchant_ocid)
        VALUES ('attach', x.proof_id, pay.txid, x.id, pay.merchant_ocid) RETURNING id INTO v_ltx;
        INSERT INTO ledger_entries (ledger_tx_id, account, merchant_ocid, currency, amount)
        VALUES (v_ltx, 'suspense', pay.merchant_ocid, x.currency, -x.amount),
               (v_ltx, 'merchant:' || pay.merchant_ocid, pay.merchant_ocid, pay.currency,
                pay.amount);
        -- The merchant's notification (I3); the workers poll for it.
        INSERT INTO deliveries (id, payment_txid, merchant_ocid)
        VALUES (gen_random_uuid(), pay.txid, pay.merchant_ocid);
    ELSE
        INSERT INTO ledger_transactions (kind, proof_id, payment_txid, exception_id,
                                         merchant_ocid)
        VALUES (p_action, x.proof_id, pr.payment_txid, x.id, x.merchant_ocid)
        RETURNING id INTO v_ltx;
        -- refund: the money is owed back to the payer; dismiss: the reversal of the suspense
        -- posting, back to the provider's clearing account.
        INSERT INTO ledger_entries (ledger_tx_id, account, merchant_ocid, currency, amount)
        VALUES (v_ltx, 'suspense', x.merchant_ocid, x.currency, -x.amount),
               (v_ltx, CASE p_action WHEN 'refund' THEN 'refunds_payable'
                                     ELSE 'clearing:' || pr.issuer END,
                x.merchant_ocid, x.currency, x.amount);
    END IF;

    UPDATE exceptions
       SET status = v_status, resolved_by = p_actor, resolved_at = to_timestamp(v_now),
           resolution_note = v_reason,
           attached_txid = CASE WHEN p_action = 'attach' THEN pay.txid END
     WHERE id = x.id
    RETURNING * INTO x;
    RETURN jsonb_build_object('result', 'done') || oc_admin_resolution_json(x);
END $$;

-- Resolves exception p_id (design.md "money in the ledger"), atomically and idempotently:
--   attach  p_txid: to a pending payment (expired is fine) of equal amount and currency:
--           suspense -> merchant, the payment completed by the exception's proof (gateway
--           proof built now, p_gateway = the gateway's OCID), its notification enqueued;
--   refund: suspense -> refunds payable;
--   dismiss (p_reason required): suspense -> the provider's clearing account (the reversal).
-- p_now: Unix seconds of the resolution (NULL = now). p_actor: who (audit trail).
-- Answer {result, message?, exception?, ledgerTx?, payment?, deliveryId?}; result:
--   done | already_done (same action and target again: the stored outcome, nothing new) |
--   not_found (exception or target payment) | invalid_state (resolved otherwise, or the
--   payment is completed) | mismatch (amount or currency) | reason_required | bad_request.
-- Every call is recorded in admin_audit with its answer, refusals included.
CREATE FUNCTION oc_admin_resolve_exception(p_id bigint, p_action text, p_txid text,
                                           p_reason text, p_actor text, p_gateway bigint,
                                           p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    IF p_actor IS NULL OR btrim(p_actor) = '' OR length(p_actor) > 200 THEN
        PERFORM oc_admin_invalid('the actor must be 1 to 200 characters');
    END IF;
    r := oc_admin_resolve_exception_do(p_id, p_action, p_txid, p_reason, p_actor, p_gateway,
                                       p_now);
    INSERT INTO admin_audit (actor, action, target, reason, request, result)
    VALUES (p_actor, 'exception.' || coalesce(left(p_action, 50), '?'),
            'exception:' || coalesce(p_id::text, '?'), p_reason,
            jsonb_build_object('id', p_id, 'action', p_action, 'txid', p_txid,
                               'reason', p_reason, 'gateway', p_gateway, 'now', p_now),
            r);
    RETURN r;
END $$;

-- ---- ledger check --------------------------------------------------------------------------

-- Every violation of I1-I3 (design.md) found by reading the whole ledger, as a jsonb array of
-- {invariant, rule, detail}, empty when everything holds. At most 50 details per rule are
-- listed, then one "... N more" line. Reads everything: run it off-peak or on a replica.
CREATE FUNCTION oc_ledger_check() RETURNS jsonb
LANGUAGE sql STABLE AS $$
WITH violations (invariant, rule, detail) AS (
    -- I1: a payment is completed at most once; its merchant credit exists exactly once.
    SELECT 'I1', 'a payment has at most one credit',
           'payment ' || payment_txid || ' has ' || count(*)
           || ' settlement/attach ledger transactions'
      FROM ledger_transactions
     WHERE kind IN ('settlement', 'attach') AND payment_txid IS NOT NULL
     GROUP BY payment_txid HAVING count(*) > 1
    UNION ALL
    SELECT 'I1', 'a completed payment has exactly one credit',
           'completed payment ' || p.txid || ' has ' || count(t.id) || ' credits'
      FROM payments p
      LEFT JOIN ledger_transactions t ON t.payment_txid = p.txid
                                     AND t.kind IN ('settlement', 'attach')
     WHERE p.status = 'completed'
     GROUP BY p.txid HAVING count(t.id) = 0
    UNION ALL
    SELECT 'I1', 'only completed payments are credited',
           'ledger tx ' || t.id || ' (' || t.kind || ') credits '
           || CASE WHEN t.payment_txid IS NULL THEN 'no payment'
                   WHEN p.txid IS NULL THEN 'unknown payment ' || t.payment_txid
                   ELSE p.status || ' payment ' || p.txid END
      FROM ledger_transactions t LEFT JOIN payments p ON p.txid = t.payment_txid
     WHERE t.kind IN ('settlement', 'attach') AND p.status IS DISTINCT FROM 'completed'
    UNION ALL
    SELECT 'I1', 'a proof is credited at most once',
           'proof ' || proof_id || ' is behind ' || count(*) || ' settlement/attach transactions'
      FROM ledger_transactions
     WHERE kind IN ('settlement', 'attach') AND proof_id IS NOT NULL
     GROUP BY proof_id HAVING count(*) > 1
    UNION ALL
    SELECT 'I1', 'a credit pays exactly the payment to its merchant',
           'ledger tx ' || t.id || ' for payment ' || p.txid || ': merchant entries '
           || coalesce(string_agg(e.account || ' ' || trim_scale(e.amount) || ' ' || e.currency,
                                  ', ' ORDER BY e.id), 'none')
           || '; payment ' || p.merchant_ocid || ' ' || trim_scale(p.amount) || ' ' || p.currency
      FROM ledger_transactions t
      JOIN payments p ON p.txid = t.payment_txid
      LEFT JOIN ledger_entries e ON e.ledger_tx_id = t.id AND e.account LIKE 'merchant:%'
     WHERE t.kind IN ('settlement', 'attach')
     GROUP BY t.id, p.txid, p.merchant_ocid, p.amount, p.currency
    HAVING count(e.id) <> 1
        OR bool_or(e.account <> 'merchant:' || p.merchant_ocid OR e.currency <> p.currency
                   OR e.amount <> p.amount) IS DISTINCT FROM false
    UNION ALL
    -- I2: the ledger balances, and every proof's money is somewhere in it.
    SELECT 'I2', 'a ledger transaction sums to zero per currency',
           'ledger tx ' || ledger_tx_id || ' ' || currency || ' sums to ' || trim_scale(sum(amount))
      FROM ledger_entries GROUP BY ledger_tx_id, currency HAVING sum(amount) <> 0
    UNION ALL
    SELECT 'I2', 'a ledger transaction has entries',
           'ledger tx ' || t.id || ' (' || t.kind || ') has no entries'
      FROM ledger_transactions t
     WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.ledger_tx_id = t.id)
    UNION ALL
    SELECT 'I2', 'merchant credits equal the completed payments',
           'merchant ' || coalesce(l.merchant, c.merchant) || ' '
           || coalesce(l.currency, c.currency) || ': ledger ' || trim_scale(coalesce(l.total, 0))
           || ', completed payments ' || trim_scale(coalesce(c.total, 0))
      FROM (SELECT substr(account, 10)::bigint AS merchant, currency, sum(amount) AS total
              FROM ledger_entries WHERE account LIKE 'merchant:%' GROUP BY 1, 2) l
      FULL JOIN (SELECT merchant_ocid AS merchant, currency, sum(amount) AS total
                   FROM payments WHERE status = 'completed' GROUP BY 1, 2) c
        ON c.merchant = l.merchant AND c.currency = l.currency
     WHERE coalesce(l.total, 0) <> coalesce(c.total, 0)
    UNION ALL
    SELECT 'I2', 'a completed payment is backed by its credited proof or an attached exception',
           'payment ' || p.txid || ': completed_by ' || coalesce(p.completed_by::text, 'null')
           || ' is neither a proof credited to it nor an exception attached to it'
      FROM payments p
     WHERE p.status = 'completed'
       AND NOT EXISTS (SELECT 1 FROM proofs pr WHERE pr.id = p.completed_by
                          AND pr.outcome = 'credited' AND pr.payment_txid = p.txid)
       AND NOT EXISTS (SELECT 1 FROM exceptions x WHERE x.proof_id = p.completed_by
                          AND x.status = 'attached' AND x.attached_txid = p.txid)
    UNION ALL
    SELECT 'I2', 'a credited proof completed its payment',
           'proof ' || pr.id || ' is credited but did not complete payment '
           || coalesce(pr.payment_txid, 'null')
      FROM proofs pr
     WHERE pr.outcome = 'credited'
       AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.txid = pr.payment_txid
                          AND p.status = 'completed' AND p.completed_by = pr.id)
    UNION ALL
    SELECT 'I2', 'a stored proof is posted once from clearing to the merchant or suspense',
           'proof ' || pr.id || ' (' || pr.outcome || ', ' || trim_scale(pr.amount) || ' '
           || pr.currency || '): '
           || coalesce(string_agg(t.kind || ' ' || e.account || ' ' || trim_scale(e.amount) || ' '
                                  || e.currency, ', ' ORDER BY e.id),
                       'no settlement/suspense posting')
      FROM proofs pr
      LEFT JOIN ledger_transactions t ON t.proof_id = pr.id AND t.kind IN ('settlement', 'suspense')
      LEFT JOIN ledger_entries e ON e.ledger_tx_id = t.id
     GROUP BY pr.id, pr.outcome, pr.amount, pr.currency, pr.issuer, pr.merchant_ocid
    HAVING count(DISTINCT t.id) <> 1
        OR bool_or(t.kind <> CASE WHEN pr.outcome = 'credited' THEN 'settlement'
                                  ELSE 'suspense' END) IS TRUE
        OR coalesce(sum(e.amount) FILTER (WHERE e.currency = pr.currency
                                            AND e.account = 'clearing:' || pr.issuer), 0)
           <> -pr.amount
        OR coalesce(sum(e.amount) FILTER (WHERE e.currency = pr.currency AND e.account =
               CASE WHEN pr.outcome = 'credited' THEN 'merchant:' || pr.merchant_ocid
                    ELSE 'suspense' END), 0) <> pr.amount
        OR bool_or(e.currency <> pr.currency) IS TRUE
    UNION ALL
    SELECT 'I2', 'a resolved exception has exactly one resolution posting out of suspense',
           'exception ' || x.id || ' (' || x.status || ', ' || trim_scale(x.amount) || ' '
           || x.currency || '): '
           || coalesce(string_agg(t.kind || ' ' || e.account || ' ' || trim_scale(e.amount) || ' '
                                  || e.currency, ', ' ORDER BY e.id), 'no resolution posting')
      FROM exceptions x
      JOIN proofs pr ON pr.id = x.proof_id
      LEFT JOIN payments p ON p.txid = x.attached_txid
      LEFT JOIN ledger_transactions t ON t.exception_id = x.id
                                     AND t.kind IN ('attach', 'refund', 'dismiss')
      LEFT JOIN ledger_entries e ON e.ledger_tx_id = t.id
     GROUP BY x.id, x.status, x.amount, x.currency, pr.issuer, p.merchant_ocid
    HAVING count(DISTINCT t.id) <> CASE WHEN x.status = 'open' THEN 0 ELSE 1 END
        OR (x.status <> 'open' AND (
               bool_or(t.kind <> CASE x.status WHEN 'attached' THEN 'attach'
                                               WHEN 'refunded' THEN 'refund'
                                               ELSE 'dismiss' END) IS TRUE
            OR coalesce(sum(e.amount) FILTER (WHERE e.account = 'suspense'
                                                AND e.currency = x.currency), 0) <> -x.amount
            OR coalesce(sum(e.amount) FILTER (WHERE e.currency = x.currency AND e.account =
                   CASE x.status WHEN 'attached' THEN 'merchant:' || p.merchant_ocid
                                 WHEN 'refunded' THEN 'refunds_payable'
                                 ELSE 'clearing:' || pr.issuer END), 0) <> x.amount))
    UNION ALL
    SELECT 'I2', 'suspense holds the open exceptions, refunds payable the refunded ones',
           coalesce(l.account, w.account) || ' ' || coalesce(l.currency, w.currency)
           || ': ledger ' || trim_scale(coalesce(l.total, 0)) || ', exceptions '
           || trim_scale(coalesce(w.total, 0))
      FROM (SELECT account, currency, sum(amount) AS total FROM ledger_entries
             WHERE account IN ('suspense', 'refunds_payable') GROUP BY 1, 2) l
      FULL JOIN (SELECT CASE status WHEN 'open' THEN 'suspense' ELSE 'refunds_payable' END
                            AS account, currency, sum(amount) AS total
                   FROM exceptions WHERE status IN ('open', 'refunded') GROUP BY 1, 2) w
        ON w.account = l.account AND w.currency = l.currency
     WHERE coalesce(l.total, 0) <> coalesce(w.total, 0)
    UNION ALL
    -- I3: every completed payment has exactly one merchant notification, never dropped.
    SELECT 'I3', 'a completed payment has exactly one notification',
           'completed payment ' || p.txid || ' has ' || count(d.id) || ' notifications'
      FROM payments p LEFT JOIN deliveries d ON d.payment_txid = p.txid
     WHERE p.status = 'completed'
     GROUP BY p.txid HAVING count(d.id) <> 1
    UNION ALL
    SELECT 'I3', 'a notification belongs to a completed payment',
           'notification ' || d.id || ' (' || d.state || ') is for '
           || coalesce(p.status || ' payment ', 'unknown payment ') || d.payment_txid
      FROM deliveries d LEFT JOIN payments p ON p.txid = d.payment_txid
     WHERE p.status IS DISTINCT FROM 'completed'
    UNION ALL
    SELECT 'I3', 'a notification goes to the payment''s merchant',
           'notification ' || d.id || ' goes to ' || d.merchant_ocid || ', payment '
           || p.txid || ' is for ' || p.merchant_ocid
      FROM deliveries d JOIN payments p ON p.txid = d.payment_txid
     WHERE d.merchant_ocid <> p.merchant_ocid
    UNION ALL
    SELECT 'I3', 'a notification is pending, in flight, delivered, rejected or dead',
           'notification ' || d.id || ' for payment ' || d.payment_txid || ' is in state '
           || coalesce(d.state, 'null')
      FROM deliveries d
     WHERE d.state IS NULL
        OR d.state NOT IN ('pending', 'in_flight', 'delivered', 'rejected', 'dead')
),
numbered AS (
    SELECT invariant, rule, detail,
           row_number() OVER (PARTITION BY invariant, rule ORDER BY detail) AS n,
           count(*) OVER (PARTITION BY invariant, rule) AS total
      FROM violations
),
shown AS (
    SELECT invariant, rule, detail, n FROM numbered WHERE n <= 50
    UNION ALL
    SELECT invariant, rule, '... ' || (total - 50) || ' more', 51 FROM numbered
     WHERE n = 51
)
SELECT coalesce(jsonb_agg(jsonb_build_object('invariant', invariant, 'rule', rule,
                                             'detail', detail)
                          ORDER BY invariant, rule, n), '[]')
  FROM shown
$$;
