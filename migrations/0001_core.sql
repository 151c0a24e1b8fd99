-- ocgate core schema: participants, request nonces, payments, proofs, exceptions, the
-- double-entry ledger and the merchant outbox. Every hot table carries merchant_ocid so it
-- can become the distribution column when sharding by merchant (design.md, "Scale").
-- Amounts are numeric(36,18) plus the text as written, never floating point.

CREATE TABLE participants (
    ocid            bigint PRIMARY KEY CHECK (ocid >= 0 AND ocid <= 9007199254740991),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    roles           text[] NOT NULL
                    CHECK (roles <@ ARRAY['settlement_provider', 'payment_app', 'merchant']
                           AND cardinality(roles) >= 1),
    public_key      text NOT NULL CHECK (public_key ~ '^[0-9a-f]{128}$'),
    endpoint        text CHECK (endpoint ~ '^https?://'),
    canonical_form  text NOT NULL DEFAULT 'strict' CHECK (canonical_form IN ('strict', 'legacy')),
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Participant changes are rare; every change bumps one counter that each instance polls
-- (twice a second), so a change reaches every instance within a second and a change made
-- while an instance was disconnected is never missed, unlike a NOTIFY (design.md,
-- "discovery").
CREATE TABLE directory_version (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint NOT NULL
);
INSERT INTO directory_version VALUES (true, 1);

CREATE FUNCTION participants_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE directory_version SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER participants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON participants FOR EACH STATEMENT EXECUTE FUNCTION participants_bump_version();

-- (ocid, nonce) of every request whose signature verified; pruned after twice the window.
CREATE TABLE request_nonces (
    ocid        bigint NOT NULL,
    nonce       text NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ocid, nonce)
);
CREATE INDEX request_nonces_seen_at ON request_nonces (seen_at);

CREATE TABLE payments (
    txid            text PRIMARY KEY,
    merchant_ocid   bigint NOT NULL REFERENCES participants (ocid),
    app_ocid        bigint NOT NULL REFERENCES participants (ocid),
    amount          numeric(36, 18) NOT NULL CHECK (amount > 0),
    amount_text     text NOT NULL,
    currency        text NOT NULL CHECK (currency ~ '^[A-Z0-9]{3,10}$'),
    reference       text,
    memo            text,
    order_id        text,
    status          text NOT NULL DEFAULT 'pending_settlement'
                    CHECK (status IN ('pending_settlement', 'completed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    completed_by    bigint,           -- proofs.id that completed it
    gateway_proof   text,             -- strict canonical text of the gateway proof, fixed at completion
    CHECK ((status = 'completed') = (completed_at IS NOT NULL AND completed_by IS NOT NULL
                                     AND gateway_proof IS NOT NULL))
);
CREATE INDEX payments_merchant ON payments (merchant_ocid, created_at);

-- Idempotency-Key of /payment/create, scoped to the caller; only 2xx answers are stored.
CREATE TABLE idempotency_keys (
    caller_ocid     bigint NOT NULL,
    key             text NOT NULL,
    request_sha256  text NOT NULL,
    response_status integer,
    response_body   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller_ocid, key)
);

-- Every proof that verified and was matched against this gateway, whatever its outcome (I4).
CREATE TABLE proofs (
    id              bigserial PRIMARY KEY,
    issuer          bigint NOT NULL,
    txid            text NOT NULL,
    merchant_ocid   bigint,           -- of the matched payment, if any
    payment_txid    text REFERENCES payments (txid),
    reference       text,             -- proof.to.reference as received
    amount          numeric(36, 18) NOT NULL,
    amount_text     text NOT NULL,
    currency        text NOT NULL,
    proof_json      text NOT NULL,    -- strict canonical text; canonical_form says which form verified
    signature       text NOT NULL,
    canonical_form  text NOT NULL CHECK (canonical_form IN ('strict', 'legacy')),
    received_via    text NOT NULL CHECK (received_via IN ('webhook', 'settle')),
    submitter_ocid  bigint NOT NULL,
    -- The answer to every later submission of this proof is derived from outcome alone.
    outcome         text NOT NULL CHECK (outcome IN ('credited', 'unmatched', 'amount_mismatch',
                                                     'currency_mismatch', 'late',
                                                     'duplicate_payment')),
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (issuer, txid)
);
CREATE INDEX proofs_payment ON proofs (payment_txid);

CREATE TABLE exceptions (
    id              bigserial PRIMARY KEY,
    proof_id        bigint NOT NULL UNIQUE REFERENCES proofs (id),
    kind            text NOT NULL CHECK (kind IN ('unmatched', 'amount_mismatch',
                                                  'currency_mismatch', 'late',
                                                  'duplicate_payment')),
    merchant_ocid   bigint,
    amount          numeric(36, 18) NOT NULL,
    currency        text NOT NULL,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'attached', 'refunded', 'dismissed')),
    attached_txid   text REFERENCES payments (txid),
    resolved_by     text,
    resolved_at     timestamptz,
    resolution_note text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'open') = (resolved_at IS NULL))
);
CREATE INDEX exceptions_open ON exceptions (created_at) WHERE status = 'open';

-- Double-entry ledger. Accounts: 'clearing:<provider ocid>', 'merchant:<ocid>', 'suspense',
-- 'refunds_payable'. Append-only; each transaction's entries sum to zero per currency.
CREATE TABLE ledger_transactions (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('settlement', 'suspense', 'attach',
                                                  'refund', 'dismiss')),
    proof_id        bigint REFERENCES proofs (id),
    payment_txid    text REFERENCES payments (txid),
    exception_id    bigint REFERENCES exceptions (id),
    merchant_ocid   bigint,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ledger_one_settlement_per_payment ON ledger_transactions (payment_txid)
    WHERE kind IN ('settlement', 'attach');

CREATE TABLE ledger_entries (
    id              bigserial PRIMARY KEY,
    ledger_tx_id    bigint NOT NULL REFERENCES ledger_transactions (id),
    account         text NOT NULL CHECK (account ~ '^(clearing|merchant):[0-9]+$'
                                         OR account IN ('suspense', 'refunds_payable')),
    merchant_ocid   bigint,
    currency        text NOT NULL,
    amount          numeric(36, 18) NOT NULL CHECK (amount <> 0)
);
CREATE INDEX ledger_entries_tx ON ledger_entries (ledger_tx_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account, currency);

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Checked at commit, once per transaction touched, so a transaction is written entry by entry
-- but can never commit unbalanced.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT currency, sum(amount) AS total INTO bad
      FROM ledger_entries WHERE ledger_tx_id = NEW.ledger_tx_id
     GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % unbalanced in %: %', NEW.ledger_tx_id,
            bad.currency, bad.total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- Transactional outbox: one merchant notification per completed payment (I3). The signed
-- bytes are not stored; the worker signs payments.gateway_proof when it sends.
CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    payment_txid    text NOT NULL UNIQUE REFERENCES payments (txid),
    merchant_ocid   bigint NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'in_flight', 'delivered', 'rejected', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE state IN ('pending', 'in_flight');

CREATE TABLE delivery_attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     uuid NOT NULL REFERENCES deliveries (id),
    attempt         integer NOT NULL,
    started_at      timestamptz NOT NULL,
    duration_ms     integer NOT NULL,
    http_status     integer,
    error           text,
    response_excerpt text,
    UNIQUE (delivery_id, attempt)
);
