-- The admin HTTP API (docs/admin-api.md, src/admin/api.c): its clients, its idempotency store,
-- and the operations 0004 lacks (deliveries, participants, clients). Like 0004, every view and
-- action is one SQL function returning jsonb, so `ocgate` on the database and the API run the
-- same code; every mutation is recorded in admin_audit with its actor (OS user for the CLI,
-- "client:<id>" for the API).

-- API clients. The secret is sealed (AES-256-GCM under the sealing key, the client id as
-- associated data: nonce || ciphertext || tag) so that the server can recompute the HMAC; it
-- is never stored in clear and never returned by any function below except
-- oc_admin_client_secret, which the API's authentication alone calls.
CREATE TABLE admin_clients (
    id            text PRIMARY KEY CHECK (id ~ '^ocgc_[0-9a-f]{24}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    scopes        text[] NOT NULL CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY[
                      'payments:read', 'balances:read', 'exceptions:read', 'exceptions:write',
                      'deliveries:read', 'deliveries:write', 'participants:read',
                      'participants:write']),
    sealed_secret bytea NOT NULL CHECK (length(sealed_secret) BETWEEN 29 AND 1024),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    revoked_by    text
);

-- One row per (client, Idempotency-Key) of a mutation: the SHA-256 (hex) of method, path and
-- body, and the answer given, returned again for the same key and request. Kept at least 24 h
-- (oc_admin_api_mutate prunes older rows a few at a time).
CREATE TABLE admin_idempotency (
    client_id     text NOT NULL REFERENCES admin_clients (id),
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash  text NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    status        integer NOT NULL,
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, key)
);
CREATE INDEX admin_idempotency_created ON admin_idempotency (created_at);

CREATE FUNCTION oc_admin_audit(p_actor text, p_action text, p_target text, p_request jsonb,
                               p_result jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO admin_audit (actor, action, target, reason, request, result)
    VALUES (p_actor, p_action, p_target, NULL, p_request, p_result)
$$;

CREATE FUNCTION oc_admin_check_actor(p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_actor IS NULL OR btrim(p_actor) = '' OR length(p_actor) > 200 THEN
        PERFORM oc_admin_invalid('the actor must be 1 to 200 characters');
    END IF;
END $$;

-- ---- clients -------------------------------------------------------------------------------

CREATE FUNCTION oc_admin_client_json(c admin_clients) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', c.id, 'name', c.name, 'scopes', to_jsonb(c.scopes),
                              'createdBy', c.created_by, 'createdAt', oc_epoch(c.created_at),
                              'revokedAt', oc_epoch(c.revoked_at), 'revokedBy', c.revoked_by)
$$;

-- Registers a client whose secret the caller generated and sealed. Scopes are checked here
-- (SQLSTATE 22023 names the bad one). Answer: the client (never the secret).
CREATE FUNCTION oc_admin_client_create(p_id text, p_name text, p_scopes text[],
                                       p_sealed bytea, p_actor text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    c admin_clients%ROWTYPE;
    bad text;
BEGIN
    PERFORM oc_admin_check_actor(p_actor);
    IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 200 THEN
        PERFORM oc_admin_invalid('the name must be 1 to 200 characters');
    END IF;
    IF p_scopes IS NULL OR cardinality(p_scopes) = 0 THEN
        PERFORM oc_admin_invalid('at least one scope is required');
    END IF;
    SELECT s INTO bad FROM unnest(p_scopes) s
     WHERE s NOT IN ('payments:read', 'balances:read', 'exceptions:read', 'exceptions:write',
                     'deliveries:read', 'deliveries:write', 'participants:read',
                     'participants:write')
     LIMIT 1;
    IF FOUND THEN
        PERFORM oc_admin_invalid('unknown scope "' || left(bad, 40) || '"; scopes are '
            'payments:read, balances:read, exceptions:read, exceptions:write, deliveries:read, '
            'deliveries:write, participants:read, participants:write');
    END IF;
    INSERT INTO admin_clients (id, name, scopes, sealed_secret, created_by)
    VALUES (p_id, p_name, ARRAY(SELECT DISTINCT s FROM unnest(p_scopes) s ORDER BY s),
            p_sealed, p_actor)
    RETURNING * INTO c;
    PERFORM oc_admin_audit(p_actor, 'client.create', 'client:' || c.id,
                           jsonb_build_object('name', p_name, 'scopes', to_jsonb(p_scopes)),
                           oc_admin_client_json(c));
    RETURN oc_admin_client_json(c);
END $$;

-- Every client, revoked ones included, ordered by creation. Answer {items}.
CREATE FUNCTION oc_admin_clients() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('items', coalesce(jsonb_agg(oc_admin_client_json(c)
                                                          ORDER BY c.created_at, c.id), '[]'))
      FROM admin_clients c
$$;

-- Revokes a client: its next request is refused (the API reads the client on every request).
-- Answer {result: done | already_done | not_found, client?}.
CREATE FUNCTION oc_admin_client_revoke(p_id text, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    c admin_clients%ROWTYPE;
    r jsonb;
BEGIN
    PERFORM oc_admin_check_actor(p_actor);
    UPDATE admin_clients SET revoked_at = now(), revoked_by = p_actor
     WHERE id = p_id AND revoked_at IS NULL
    RETURNING * INTO c;
    IF FOUND THEN
        r := jsonb_build_object('result', 'done', 'client', oc_admin_client_json(c));
    ELSE
        SELECT * INTO c FROM admin_clients WHERE id = p_id;
        r := CASE WHEN FOUND THEN jsonb_build_object('result', 'already_done',
                                                     'client', oc_admin_client_json(c))
                  ELSE jsonb_build_object('result', 'not_found') END;
    END IF;
    PERFORM oc_admin_audit(p_actor, 'client.revoke', 'client:' || coalesce(p_id, '?'),
                           jsonb_build_object('id', p_id), r);
    RETURN r;
END $$;

-- For the API's authentication only: {scopes, sealed (hex)} of an active client, NULL if the
-- client is unknown or revoked.
CREATE FUNCTION oc_admin_client_secret(p_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('scopes', to_jsonb(scopes), 'sealed', encode(sealed_secret, 'hex'))
      FROM admin_clients WHERE id = p_id AND revoked_at IS NULL
$$;

-- ---- deliveries ----------------------------------------------------------------------------

CREATE FUNCTION oc_admin_delivery_json(d deliveries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', d.id, 'payment', d.payment_txid, 'merchant', d.merchant_ocid, 'state', d.state,
        'attempts', d.attempts, 'nextAttemptAt', oc_epoch(d.next_attempt_at),
        'leaseUntil', oc_epoch(d.lease_until), 'lastError', d.last_error, 'worker', d.worker,
        'createdAt', oc_epoch(d.created_at), 'updatedAt', oc_epoch(d.updated_at))
$$;

-- Deliveries ordered by (created_at, id), oldest first, or newest first when p_newest,
-- filtered by state and merchant. Answer {items, next_cursor}.
CREATE FUNCTION oc_admin_deliveries(p_state text, p_merchant bigint, p_newest boolean,
                                    p_cursor text, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lim integer := oc_admin_limit(p_limit);
    v_list text := CASE WHEN p_newest THEN 'deliveries-newest' ELSE 'deliveries' END;
    after_text text := oc_cursor_decode(p_cursor, v_list);
    after_id uuid;
    after_at timestamptz;
    items jsonb;
BEGIN
    IF p_state IS NOT NULL
       AND p_state NOT IN ('pending', 'in_flight', 'delivered', 'rejected', 'dead') THEN
        PERFORM oc_admin_invalid('state is pending, in_flight, delivered, rejected or dead');
    END IF;
    IF after_text IS NOT NULL THEN
        IF after_text !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
            PERFORM oc_admin_invalid('invalid cursor');
        END IF;
        after_id := after_text::uuid;
        SELECT created_at INTO after_at FROM deliveries WHERE id = after_id;
        IF NOT FOUND THEN
            PERFORM oc_admin_invalid('invalid cursor');
        END IF;
    END IF;
    IF p_newest THEN
        SELECT coalesce(jsonb_agg(oc_admin_delivery_json(s.d)
                                  ORDER BY (s.d).created_at DESC, (s.d).id DESC), '[]')
          INTO items
          FROM (SELECT d FROM deliveries d
                 WHERE (p_state IS NULL OR d.state = p_state)
                   AND (p_merchant IS NULL OR d.merchant_ocid = p_merchant)
                   AND (after_id IS NULL OR (d.created_at, d.id) < (after_at, after_id))
                 ORDER BY d.created_at DESC, d.id DESC
                 LIMIT lim + 1) s;
    ELSE
        SELECT coalesce(jsonb_agg(oc_admin_delivery_json(s.d)
                                  ORDER BY (s.d).created_at, (s.d).id), '[]')
          INTO items
          FROM (SELECT d FROM deliveries d
                 WHERE (p_state IS NULL OR d.state = p_state)
                   AND (p_merchant IS NULL OR d.merchant_ocid = p_merchant)
                   AND (after_id IS NULL OR (d.created_at, d.id) > (after_at, after_id))
                 ORDER BY d.created_at, d.id
                 LIMIT lim + 1) s;
    END IF;
    RETURN oc_admin_page(items, lim, v_list, 'id');
END $$;

-- One delivery with every attempt, or NULL.
CREATE FUNCTION oc_admin_delivery(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT oc_admin_delivery_json(d) || jsonb_build_object('attemptLog',
               coalesce((SELECT jsonb_agg(jsonb_build_object(
                                   'attempt', a.attempt, 'startedAt', oc_epoch(a.started_at),
                                   'startedAtMs', (extract(epoch FROM a.started_at) * 1000)::bigint,
                                   'durationMs', a.duration_ms, 'httpStatus', a.http_status,
                                   'error', a.error, 'responseExcerpt', a.response_excerpt)
                                   ORDER BY a.attempt)
                           FROM delivery_attempts a WHERE a.delivery_id = d.id), '[]'))
      FROM deliveries d WHERE d.id = p_id
$$;

-- Replays a dead or rejected delivery (oc_delivery_retry), audited. Answer {result: done |
-- not_found | invalid_state, delivery?}.
CREATE FUNCTION oc_admin_delivery_retry(p_id uuid, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    d deliveries%ROWTYPE;
    r jsonb;
BEGIN
    PERFORM oc_admin_check_actor(p_actor);
    IF oc_delivery_retry(p_id) THEN
        SELECT * INTO d FROM deliveries WHERE id = p_id;
        r := jsonb_build_object('result', 'done', 'delivery', oc_admin_delivery_json(d));
    ELSE
        SELECT * INTO d FROM deliveries WHERE id = p_id;
        r := CASE WHEN FOUND THEN jsonb_build_object('result', 'invalid_state', 'message',
                      'only a dead or rejected delivery can be retried; this one is ' || d.state,
                      'delivery', oc_admin_delivery_json(d))
                  ELSE jsonb_build_object('result', 'not_found', 'message',
                                          'no delivery has this id') END;
    END IF;
    PERFORM oc_admin_audit(p_actor, 'delivery.retry', 'delivery:' || coalesce(p_id::text, '?'),
                           jsonb_build_object('id', p_id), r);
    RETURN r;
END $$;

-- ---- participants --------------------------------------------------------------------------

CREATE FUNCTION oc_admin_participant_json(p participants) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'ocid', p.ocid, 'name', p.name, 'roles', to_jsonb(p.roles), 'publicKey', p.public_key,
        'endpoint', p.endpoint, 'form', p.canonical_form, 'enabled', p.enabled,
        'createdAt', oc_epoch(p.created_at), 'updatedAt', oc_epoch(p.updated_at))
$$;

-- Participants ordered by OCID. Answer {items, next_cursor}.
CREATE FUNCTION oc_admin_participants(p_cursor text, p_limit integer) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lim integer := oc_admin_limit(p_limit);
    after_text text := oc_cursor_decode(p_cursor, 'participants');
    items jsonb;
BEGIN
    IF after_text IS NOT NULL AND after_text !~ '^[0-9]{1,16}$' THEN
        PERFORM oc_admin_invalid('invalid cursor');
    END IF;
    SELECT coalesce(jsonb_agg(oc_admin_participant_json(s.p) ORDER BY (s.p).ocid), '[]')
      INTO items
      FROM (SELECT p FROM participants p
             WHERE after_text IS NULL OR p.ocid > after_text::bigint
             ORDER BY p.ocid LIMIT lim + 1) s;
    RETURN oc_admin_page(items, lim, 'participants', 'ocid');
END $$;

CREATE FUNCTION oc_admin_participant(p_ocid bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT oc_admin_participant_json(p) FROM participants p WHERE p.ocid = p_ocid
$$;

-- Creates (p_create) or updates a participant from p_fields {name, roles, publicKey (128 hex,
-- lower case: the caller normalises), endpoint (null = none), form, enabled}; on update an
-- absent field keeps its value. Answer {result: done | exists | not_found | bad_request,
-- message?, participant?}; audited. Running servers see the change within a second.
CREATE FUNCTION oc_admin_participant_put(p_ocid bigint, p_create boolean, p_fields jsonb,
                                         p_actor text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    p participants%ROWTYPE;
    r jsonb;
    v_roles text[];
BEGIN
    PERFORM oc_admin_check_actor(p_actor);
    IF p_fields ? 'roles' AND jsonb_typeof(p_fields -> 'roles') = 'array' THEN
        v_roles := ARRAY(SELECT jsonb_array_elements_text(p_fields -> 'roles'));
    END IF;
    BEGIN
        IF p_create THEN
            INSERT INTO participants (ocid, name, roles, public_key, endpoint, canonical_form,
                                      enabled)
            VALUES (p_ocid, p_fields ->> 'name', v_roles, p_fields ->> 'publicKey',
                    p_fields ->> 'endpoint', coalesce(p_fields ->> 'form', 'strict'),
                    coalesce((p_fields ->> 'enabled')::boolean, true))
            ON CONFLICT (ocid) DO NOTHING
            RETURNING * INTO p;
            r := CASE WHEN p.ocid IS NULL
                      THEN jsonb_build_object('result', 'exists', 'message',
                                              'a participant with this OCID already exists')
                      ELSE jsonb_build_object('result', 'done',
                                              'participant', oc_admin_participant_json(p)) END;
        ELSE
            UPDATE participants
               SET name = coalesce(p_fields ->> 'name', name),
                   roles = coalesce(v_roles, roles),
                   public_key = coalesce(p_fields ->> 'publicKey', public_key),
                   endpoint = CASE WHEN p_fields ? 'endpoint' THEN p_fields ->> 'endpoint'
                                   ELSE endpoint END,
                   canonical_form = coalesce(p_fields ->> 'form', canonical_form),
                   enabled = coalesce((p_fields ->> 'enabled')::boolean, enabled),
                   updated_at = now()
             WHERE ocid = p_ocid
            RETURNING * INTO p;
            r := CASE WHEN p.ocid IS NULL
                      THEN jsonb_build_object('result', 'not_found', 'message',
                                              'no participant has this OCID')
                      ELSE jsonb_build_object('result', 'done',
                                              'participant', oc_admin_participant_json(p)) END;
        END IF;
    EXCEPTION WHEN check_violation OR not_null_violation OR invalid_text_representation THEN
        r := jsonb_build_object('result', 'bad_request', 'message',
                                'a participant field is missing or invalid: ' || SQLERRM);
    END;
    PERFORM oc_admin_audit(p_actor, CASE WHEN p_create THEN 'participant.create'
                                         ELSE 'participant.update' END,
                           'participant:' || coalesce(p_ocid::text, '?'), p_fields, r);
    RETURN r;
END $$;

-- ---- the API's mutations: idempotency around one operation ----------------------------------

-- The HTTP answer for an operation's {result, message?} (design.md "error codes").
CREATE FUNCTION oc_admin_api_answer(p_r jsonb, p_ok integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_r ->> 'result' IN ('done', 'already_done')
                THEN jsonb_build_object('status', p_ok, 'body', p_r)
                ELSE jsonb_build_object(
                    'status', CASE p_r ->> 'result'
                                  WHEN 'not_found' THEN 404
                                  WHEN 'invalid_state' THEN 409
                                  WHEN 'exists' THEN 409
                                  ELSE 400 END,
                    'body', jsonb_build_object('error', jsonb_build_object(
                        'code', CASE p_r ->> 'result'
                                    WHEN 'not_found' THEN 'NOT_FOUND'
                                    WHEN 'invalid_state' THEN 'INVALID_STATE'
                                    WHEN 'exists' THEN 'INVALID_STATE'
                                    WHEN 'mismatch' THEN
                                        CASE WHEN p_r ->> 'message' ILIKE '%currenc%'
                                             THEN 'CURRENCY_MISMATCH' ELSE 'AMOUNT_MISMATCH' END
                                    ELSE 'BAD_REQUEST' END,
                        'message', coalesce(p_r ->> 'message', p_r ->> 'result')))
                        || (p_r - 'message'))
           END
$$;

-- Runs mutation p_op with p_args for API client p_client under its Idempotency-Key p_key, in
-- one transaction: the first request with a key runs the operation and stores the answer; the
-- same key with the same p_hash (SHA-256 of method, path and body) gets the stored answer
-- back ("replayed": true) and changes nothing; with another hash 409 IDEMPOTENCY_CONFLICT. A
-- concurrent request with the same key waits for the first to commit, then sees its row.
-- p_op: exception.resolve {id, action, txid, reason} | delivery.retry {id} |
-- participant.create {ocid, fields} | participant.update {ocid, fields}. p_gateway, p_now:
-- for attach. Answer {status, body, replayed}.
CREATE FUNCTION oc_admin_api_mutate(p_client text, p_key text, p_hash text, p_op text,
                                    p_args jsonb, p_gateway bigint, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_actor text := 'client:' || p_client;
    old admin_idempotency%ROWTYPE;
    r jsonb;
    a jsonb;
BEGIN
    IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 200 THEN
        PERFORM oc_admin_invalid('Idempotency-Key must be 1 to 200 characters');
    END IF;
    -- Keys older than 24 h are forgotten: a few at a time, and this one if it is that old.
    DELETE FROM admin_idempotency
     WHERE ctid IN (SELECT ctid FROM admin_idempotency
                     WHERE created_at < now() - interval '24 hours' LIMIT 20);
    DELETE FROM admin_idempotency
     WHERE client_id = p_client AND key = p_key AND created_at < now() - interval '24 hours';
    INSERT INTO admin_idempotency (client_id, key, request_hash, status, body)
    VALUES (p_client, p_key, p_hash, 0, 'null')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO old FROM admin_idempotency WHERE client_id = p_client AND key = p_key;
        IF old.request_hash <> p_hash THEN
            RETURN jsonb_build_object('status', 409, 'replayed', false, 'body',
                jsonb_build_object('error', jsonb_build_object('code', 'IDEMPOTENCY_CONFLICT',
                    'message', 'this Idempotency-Key was used with another request')));
        END IF;
        RETURN jsonb_build_object('status', old.status, 'body', old.body, 'replayed', true);
    END IF;

    IF p_op = 'exception.resolve' THEN
        IF jsonb_typeof(p_args -> 'id') IS DISTINCT FROM 'number' THEN
            PERFORM oc_admin_invalid('an exception id is required');
        END IF;
        r := oc_admin_resolve_exception((p_args ->> 'id')::bigint, p_args ->> 'action',
                                        p_args ->> 'txid', p_args ->> 'reason', v_actor,
                                        p_gateway, p_now);
        a := oc_admin_api_answer(r, 200);
    ELSIF p_op = 'delivery.retry' THEN
        r := oc_admin_delivery_retry((p_args ->> 'id')::uuid, v_actor);
        a := oc_admin_api_answer(r, 200);
    ELSIF p_op IN ('participant.create', 'participant.update') THEN
        r := oc_admin_participant_put((p_args ->> 'ocid')::bigint,
                                      p_op = 'participant.create', p_args -> 'fields', v_actor);
        a := oc_admin_api_answer(r, CASE WHEN p_op = 'participant.create' THEN 201 ELSE 200 END);
    ELSE
        PERFORM oc_admin_invalid('unknown operation');
    END IF;
    UPDATE admin_idempotency SET status = (a ->> 'status')::integer, body = a -> 'body'
     WHERE client_id = p_client AND key = p_key;
    RETURN a || jsonb_build_object('replayed', false);
END $$;
