-- Delivery attempts are kept for delivery_attempt_retention (default 90 days; design.md,
-- "retention"); proofs, payments, the ledger and the deliveries themselves are kept for ever.
-- Every worker calls this once a minute. It looks only at the p_limit oldest attempts by id:
-- ids follow insertion order, so the old rows are at the front, and each call reads a bounded
-- slice of the primary key however large the table is, with no index on started_at to
-- maintain on the hot path. Sequential scans are priced out inside the function so that no
-- statistics can turn a batch into a pass over the whole table. A row recorded late with an older start (a lost attempt written
-- at take-over) is removed by a later call. Returns how many rows went; while that is not 0
-- more may be waiting. Several workers may run it at once: a row deleted by one is skipped by
-- the others.
CREATE FUNCTION oc_delivery_prune(p_keep_s bigint, p_limit integer) RETURNS integer
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_deleted integer;
BEGIN
    DELETE FROM delivery_attempts
     WHERE id = ANY (ARRAY(SELECT a.id FROM delivery_attempts a ORDER BY a.id
                                LIMIT greatest(p_limit, 0)))
       AND started_at < now() - make_interval(secs => p_keep_s);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
