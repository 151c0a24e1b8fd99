-- The merchant delivery worker's steps as SQL functions, so each costs one round trip
-- (design.md, "outbound retries", "outbox row"; src/deliver/). A worker claims due rows under
-- a lease with FOR UPDATE SKIP LOCKED, sends them, and finishes each attempt; a finish only
-- moves the row if that worker's claim is still the current one, so a worker that stalled past
-- its lease and was overtaken can never overwrite the newer claim. Operators replay dead or
-- rejected rows with oc_delivery_retry.
--
-- While a row is in_flight its next_attempt_at equals lease_until: the moment another worker
-- may take it over is its next attempt time, so a single index on next_attempt_at serves both
-- due pending rows and rows whose worker died.

ALTER TABLE deliveries
    ADD COLUMN worker       text,          -- who holds (or last held) the claim
    ADD COLUMN claimed_at   timestamptz;   -- start of the current (or last) claim

-- Operators list by merchant and look for what is stuck or dead.
CREATE INDEX deliveries_merchant ON deliveries (merchant_ocid, created_at);
CREATE INDEX deliveries_final ON deliveries (state, updated_at)
    WHERE state IN ('dead', 'rejected');

-- Claims up to p_limit due rows: pending ones whose time has come, and in_flight ones whose
-- lease ended (their worker died or stopped). Merchants in p_exclude_merchants (circuit open,
-- or at the worker's cap) are skipped; every other merchant gets at most p_per_merchant rows,
-- or, when listed in p_room_merchants, the matching entry of p_room_slots (what is left of the
-- worker's cap for it). Each claimed row becomes in_flight under a lease of p_lease_s seconds
-- with attempts + 1, which is the number of the attempt about to be made. An attempt whose
-- worker never finished it is recorded for the history as "outcome unknown" when its row is
-- taken over, so every attempt number has a row in delivery_attempts.
CREATE FUNCTION oc_delivery_claim(p_worker text, p_limit integer, p_lease_s integer,
                                  p_exclude_merchants bigint[], p_per_merchant integer,
                                  p_room_merchants bigint[], p_room_slots integer[])
RETURNS TABLE (id uuid, attempt integer, payment_txid text, merchant_ocid bigint,
               gateway_proof text)
LANGUAGE sql AS $$
    WITH locked AS (
        -- A bounded window of candidates, locked; those not picked below are released at the
        -- end of this statement's transaction, a few milliseconds later.
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
    RETURNING d.id, d.attempts, d.payment_txid, d.merchant_ocid, pay.gateway_proof
$$;

-- Records attempt p_attempt of delivery p_id and, if that attempt is still the row's current
-- claim (in_flight with that attempt number), moves the row: 'delivered', 'rejected' and
-- 'dead' are final; 'retry' makes it pending again, due p_retry_in_ms milliseconds from now
-- on the database's clock (every worker compares due times with that same clock, so worker
-- clocks never skew the schedule). Returns whether the row moved. The attempt is recorded
-- either way: a late worker's real result replaces the "outcome unknown" row written when its
-- claim was taken over. p_started_at_ms is the attempt's start in Unix milliseconds.
CREATE FUNCTION oc_delivery_finish(p_id uuid, p_attempt integer, p_outcome text,
                                   p_retry_in_ms bigint, p_started_at_ms bigint,
                                   p_duration_ms integer, p_http_status integer,
                                   p_error text, p_excerpt text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('delivered', 'rejected', 'dead', 'retry') THEN
        RAISE EXCEPTION 'oc_delivery_finish: unknown outcome %', p_outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, http_status,
                                   error, response_excerpt)
    VALUES (p_id, p_attempt, to_timestamp(p_started_at_ms / 1000.0), greatest(p_duration_ms, 0),
            p_http_status, p_error, p_excerpt)
    ON CONFLICT (delivery_id, attempt) DO UPDATE
        SET started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,
            http_status = EXCLUDED.http_status, error = EXCLUDED.error,
            response_excerpt = EXCLUDED.response_excerpt;
    UPDATE deliveries
       SET state = CASE WHEN p_outcome = 'retry' THEN 'pending' ELSE p_outcome END,
           next_attempt_at = CASE WHEN p_outcome = 'retry'
                                  THEN now() + make_interval(secs => greatest(p_retry_in_ms, 0)
                                                                     / 1000.0)
                                  ELSE now() END,
           lease_until = NULL, last_error = p_error, updated_at = now()
     WHERE id = p_id AND state = 'in_flight' AND attempts = p_attempt;
    RETURN FOUND;
END $$;

-- Operator replay: a dead or rejected delivery becomes pending and due now, keeping its
-- attempt count (so attempt numbers stay unique; the worker allows it one attempt beyond the
-- schedule, after which it is dead again). False for any other state or an unknown id.
CREATE FUNCTION oc_delivery_retry(p_id uuid) RETURNS boolean
LANGUAGE sql AS $$
    WITH u AS (
        UPDATE deliveries
           SET state = 'pending', next_attempt_at = now(), lease_until = NULL,
               updated_at = now()
         WHERE id = p_id AND state IN ('dead', 'rejected')
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM u)
$$;
