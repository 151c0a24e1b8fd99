-- The settlement hot path without per-call parsing (README, "Performance"). A LANGUAGE sql
-- function that cannot be inlined (one with a data-modifying CTE, or one called from
-- PL/pgSQL with a row argument) is parsed and planned again on every call; PL/pgSQL keeps
-- its plans for the life of the connection. A profile of PostgreSQL running only
-- oc_settle_proof put 19 % of its CPU in fmgr_sql for oc_nonce and oc_gateway_proof.
-- Behaviour is unchanged: same signatures, same results, same rows written.

CREATE OR REPLACE FUNCTION oc_nonce(p_ocid bigint, p_nonce text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO request_nonces (ocid, nonce) VALUES (p_ocid, p_nonce) ON CONFLICT DO NOTHING;
    RETURN FOUND;
END $$;

CREATE OR REPLACE FUNCTION oc_gateway_proof(pay payments, p_from_canon text, p_gateway bigint,
                                            p_completed_at bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN '{"amount":' || to_json(pay.amount_text)::text
        || ',"currency":' || to_json(pay.currency)::text
        || ',"from":' || p_from_canon
        || ',"issuer":' || p_gateway::text
        || COALESCE(',"memo":' || to_json(pay.memo)::text, '')
        || ',"timestamp":' || p_completed_at::text
        || ',"to":{"ocid":' || pay.merchant_ocid::text
        || COALESCE(',"reference":' || to_json(COALESCE(pay.order_id, pay.reference))::text, '')
        || '},"txid":' || to_json(pay.txid)::text || '}';
END $$;

-- The claim of 0003, word for word, inside PL/pgSQL; the output columns share names with
-- table columns, and the statement always means the columns.
CREATE OR REPLACE FUNCTION oc_delivery_claim(p_worker text, p_limit integer, p_lease_s integer,
                                             p_exclude_merchants bigint[],
                                             p_per_merchant integer,
                                             p_room_merchants bigint[], p_room_slots integer[])
RETURNS TABLE (id uuid, attempt integer, payment_txid text, merchant_ocid bigint,
               gateway_proof text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH locked AS (
        SELECT d.id, d.merchant_ocid, d.state, d.attempts, d.claimed_at, d.lease_until,
               d.next_attempt_at
          FROM deliveries d
         WHERE d.state IN ('pending', 'in_flight')
           AND d.next_attempt_at <= now()
           AND (d.state = 'pending' OR d.lease_until < now())
           AND d.merchant_ocid <> ALL (coalesce(p_exclude_merchants, '{}'::bigint[]))
         ORDER BY d.next_attempt_at
         LIMIT greatest(p_limit, 0) * 4
           FOR UPDATE SKIP LOCKED),
    room AS (
        SELECT r.merchant, r.slots
          FROM unnest(coalesce(p_room_merchants, '{}'::bigint[]),
                      coalesce(p_room_slots, '{}'::integer[])) AS r(merchant, slots)),
    ranked AS (
        SELECT l.*, coalesce(r.slots, p_per_merchant) AS slots,
               row_number() OVER (PARTITION BY l.merchant_ocid
                                  ORDER BY l.next_attempt_at, l.id) AS rn
          FROM locked l LEFT JOIN room r ON r.merchant = l.merchant_ocid),
    picked AS (
        SELECT * FROM ranked WHERE rn <= slots ORDER BY next_attempt_at, id LIMIT p_limit),
    lost AS (
        INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, error)
        SELECT p.id, p.attempts, coalesce(p.claimed_at, p.lease_until),
               greatest(0, (extract(epoch FROM p.lease_until - coalesce(p.claimed_at,
                                                                        p.lease_until))
                            * 1000)::integer),
               'no result before the lease ended (worker stopped or died); outcome unknown'
          FROM picked p
         WHERE p.state = 'in_flight' AND p.attempts > 0
        ON CONFLICT (delivery_id, attempt) DO NOTHING)
    UPDATE deliveries d
       SET state = 'in_flight', attempts = d.attempts + 1, worker = p_worker,
           claimed_at = now(), lease_until = now() + make_interval(secs => p_lease_s),
           next_attempt_at = now() + make_interval(secs => p_lease_s), updated_at = now()
      FROM picked p, payments pay
     WHERE d.id = p.id AND pay.txid = d.payment_txid
    RETURNING d.id, d.attempts, d.payment_txid, d.merchant_ocid, pay.gateway_proof;
END $$;
