-- Finishing and replaying a delivery find its row by primary key only (README, "Performance").
-- Written as one UPDATE ... WHERE id = $1 AND state = 'in_flight', the finish let the planner
-- prove the partial index deliveries_due (every pending and in-flight row) usable, and when
-- statistics had been gathered while the queue was empty that index looked cheaper than the
-- primary key. Each finished row then read the whole backlog: in a 60 s run at 64 connections
-- a finish of 64 rows grew from milliseconds to 1.6 s, the worker fell a minute behind and
-- the backlog it read kept growing. oc_delivery_retry has the same shape over deliveries_final
-- (every dead or rejected row; not seen to misbehave, but one outage can make that index large
-- and a bulk replay then reads it per row). Both now lock the row by id, check it, and update
-- it by id.
-- Behaviour is unchanged: same signatures, same results, same rows written; the row lock is
-- the one the UPDATE took, taken first, so a concurrent take-over is still seen.

CREATE OR REPLACE FUNCTION oc_delivery_finish(p_id uuid, p_attempt integer, p_outcome text,
                                              p_retry_in_ms bigint, p_started_at_ms bigint,
                                              p_duration_ms integer, p_http_status integer,
                                              p_error text, p_excerpt text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_state    text;
    v_attempts integer;
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
    SELECT d.state, d.attempts INTO v_state, v_attempts
      FROM deliveries d WHERE d.id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND OR v_state <> 'in_flight' OR v_attempts <> p_attempt THEN
        RETURN false;
    END IF;
    UPDATE deliveries
       SET state = CASE WHEN p_outcome = 'retry' THEN 'pending' ELSE p_outcome END,
           next_attempt_at = CASE WHEN p_outcome = 'retry'
                                  THEN now() + make_interval(secs => greatest(p_retry_in_ms, 0)
                                                                     / 1000.0)
                                  ELSE now() END,
           lease_until = NULL, last_error = p_error, updated_at = now()
     WHERE id = p_id;
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION oc_delivery_retry(p_id uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
BEGIN
    SELECT d.state INTO v_state FROM deliveries d WHERE d.id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND OR v_state NOT IN ('dead', 'rejected') THEN
        RETURN false;
    END IF;
    UPDATE deliveries
       SET state = 'pending', next_attempt_at = now(), lease_until = NULL, updated_at = now()
     WHERE id = p_id;
    RETURN true;
END $$;
