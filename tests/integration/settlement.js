// Settlement end to end: payment creation, provider webhooks, payment-app settle calls and
// /verify, against a real `ocgate serve` and PostgreSQL. Every request is signed and every
// gateway signature (responses and gateway proofs) checked with tests/node/oc.js, never with
// ocgate's code. Expected behaviour comes from design.md ("settle outcomes", "webhook
// outcomes", "idempotency", "gateway proof", "amounts", "canonical JSON"); each scenario uses
// fresh participants and keys and ends with the invariant queries (I1-I4).
//   tests/integration/run-node.sh build/ocgate tests/integration/settlement.js [filter]
// The optional filter runs only the scenarios whose title contains it (e.g. "legacy").
//
// Valid as CommonJS and as an ES module (no require, no top-level await), like smoke.js.

let h;
let oc;
let env;

// --- participants ---------------------------------------------------------------------------

let nextOcid = 10000;

let unsynced = null;   // the last participant registered that the gateway may not know yet

function participant(roles, opts = {}) {
    nextOcid += 1;
    const p = h.newParticipant({ ocid: nextOcid, roles, ...opts });
    unsynced = p;
    return p;
}

// Participants registered through the CLI reach a running gateway within a second (design.md
// "discovery"; participants.js tests that bound). Before a scenario's first request, wait
// (bounded) until the last one registered is known; the earlier ones were committed before it.
async function sync() {
    if (!unsynced) return;
    const p = unsynced;
    const known = await h.waitFor(async () => (await h.signedCall({ as: p, method: 'GET',
        path: h.url('/capabilities'), unsigned: true })).status === 200, { timeoutMs: 5000, intervalMs: 50 });
    if (!known) throw new Error(`participant ${p.ocid} still unknown to the gateway 5 s after registration`);
    if (unsynced === p) unsynced = null;
}

function world() {
    return {
        app: participant(['payment_app']),
        merchant: participant(['merchant']),
        provider: participant(['settlement_provider']),
    };
}

// --- small helpers --------------------------------------------------------------------------

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const rand = () => oc.newNonce().slice(4, 16);
const gatewayOcid = () => Number(env.ocid);

function canon(v) {
    try {
        return oc.canonicalStrict(v);
    } catch (e) {
        return `<not canonicalisable: ${e.message}> ${JSON.stringify(v)}`;
    }
}

// Deep equality independent of key order.
function sameCanon(got, want, name) {
    return h.ok(canon(got) === canon(want), name, `got:  ${canon(got)}\nwant: ${canon(want)}`);
}

function keysAre(obj, keys, name) {
    const got = obj && typeof obj === 'object' ? Object.keys(obj).sort() : obj;
    return h.same(got, [...keys].sort(), name);
}

function short(res) {
    return res ? `${res.status} ${String(res.body).slice(0, 400)}` : 'no response';
}

function isError(res, status, code, name) {
    const j = res.json;
    return h.ok(res.status === status && j && typeof j === 'object' && !Array.isArray(j) &&
        Object.keys(j).length === 1 && j.error && typeof j.error === 'object' &&
        Object.keys(j.error).sort().join(',') === 'code,message' && j.error.code === code &&
        typeof j.error.message === 'string' && j.error.message.length > 0,
    `${name} → ${status} {"error":{"code":"${code}","message":…}}`, short(res));
}

// --- API calls ------------------------------------------------------------------------------

async function createCall(app, fields, { idemKey, raw, nonce } = {}) {
    await sync();
    const body = raw ?? JSON.stringify(fields);
    const headers = idemKey !== undefined ? { 'Idempotency-Key': idemKey } : {};
    return h.signedCall({ as: app, method: 'POST', path: h.url('/payment/create'), body, headers, nonce });
}

// Creates a payment and insists on 200; returns {txid, json, res, fields}.
async function createOk(app, merchant, extra = {}) {
    const fields = { to: merchant.ocid, amount: '15.00', currency: 'USD', ...extra };
    const res = await createCall(app, fields);
    if (res.status !== 200 || !res.json || typeof res.json.txid !== 'string') {
        throw new Error(`POST /payment/create ${JSON.stringify(fields)} → ${short(res)}`);
    }
    return { txid: res.json.txid, json: res.json, res, fields };
}

let proofSeq = 0;

// A provider proof paying payTxid (to.reference) at the gateway, signed by the provider (or
// by key) in the given canonical form. Returns the envelope {proof, signature}.
function proofFor(provider, payTxid, o = {}) {
    proofSeq += 1;
    const proof = oc.makeProof({
        txid: o.txid ?? `ptx_${provider.ocid}_${proofSeq}_${rand()}`,
        issuer: o.issuer ?? provider.ocid,
        from: o.from ?? { ocid: 4242, reference: `wallet_${proofSeq}` },
        to: o.to ?? { ocid: gatewayOcid(), reference: payTxid },
        amount: o.amount ?? '15.00',
        currency: o.currency ?? 'USD',
        timestamp: o.timestamp,
        memo: o.memo,
    });
    return oc.signProof(o.key ?? provider.priv, proof, o.form ?? 'strict');
}

async function webhook(provider, envelope, opts = {}) {
    await sync();
    const body = typeof envelope === 'string' ? envelope : JSON.stringify(envelope);
    return h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'), body, ...opts });
}

async function settle(caller, txid, envelope, opts = {}) {
    await sync();
    const body = JSON.stringify({ txid, proof: envelope.proof, signature: envelope.signature });
    return h.signedCall({ as: caller, method: 'POST', path: h.url('/payment/settle'), body, ...opts });
}

async function verifyCall(caller, txid) {
    await sync();
    return h.signedCall({ as: caller, method: 'GET', path: h.url('/verify/' + encodeURIComponent(txid)) });
}

// --- expectations ---------------------------------------------------------------------------

function isAccepted(res, envelope, name) {
    return h.ok(res.status === 200 && canon(res.json) === canon({ status: 'accepted', txid: envelope.proof.txid }),
        `${name} → 200 {"status":"accepted","txid":<proof txid>}`, short(res));
}

// The gateway proof the design fixes for a payment completed by `envelope`.
function expectedGatewayProof(pay, merchant, envelope) {
    const f = pay.fields;
    const to = { ocid: merchant.ocid };
    const ref = f.order && f.order.id !== undefined ? f.order.id : f.reference;
    if (ref !== undefined) to.reference = ref;
    const want = {
        txid: pay.txid, issuer: gatewayOcid(), from: envelope.proof.from, to,
        amount: f.amount, currency: f.currency,
    };
    if (f.memo !== undefined) want.memo = f.memo;
    return want;
}

// res must be 200 {status:"completed", proof, signature} with the gateway's strict signature
// over exactly the expected proof; the timestamp must be the payment's completion time.
function isCompleted(res, pay, merchant, envelope, name) {
    const j = res.json;
    if (!h.ok(res.status === 200 && j && j.status === 'completed', `${name} → 200 status completed`, short(res))) {
        return false;
    }
    let good = keysAre(j, ['proof', 'signature', 'status'], `${name}: answer is exactly {status, proof, signature}`);
    const p = j.proof || {};
    good = h.ok(oc.verifyEmitted(env.pubkey, canon(p), j.signature),
        `${name}: gateway proof signature verifies (strict canonical form, gateway key, low S, v)`,
        `proof: ${canon(p)}\nsignature: ${j.signature}`) && good;
    const completedAt = Number(h.sql(`SELECT extract(epoch FROM completed_at)::bigint FROM payments WHERE txid = ${q(pay.txid)}`));
    good = h.ok(Number.isSafeInteger(p.timestamp) && p.timestamp === completedAt,
        `${name}: gateway proof timestamp is the completion time`, `proof ${p.timestamp}, completed_at ${completedAt}`) && good;
    const want = { ...expectedGatewayProof(pay, merchant, envelope), timestamp: p.timestamp };
    good = sameCanon(p, want, `${name}: gateway proof fields are exactly txid/issuer 300/from verbatim/to/amount as created/currency/timestamp/memo`) && good;
    return good;
}

// --- database views -------------------------------------------------------------------------

function paymentStatus(txid) {
    return h.sql(`SELECT status FROM payments WHERE txid = ${q(txid)}`);
}

function settlementEntries(txid) {
    return h.sql(`SELECT count(DISTINCT t.id) || ': ' || coalesce(string_agg(e.account || ' ' || trim_scale(e.amount)::text
                   || ' ' || e.currency, ', ' ORDER BY e.account), '')
                    FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.ledger_tx_id = t.id
                   WHERE t.payment_txid = ${q(txid)} AND t.kind = 'settlement'`);
}

function merchantBalance(merchant, currency = 'USD') {
    return h.sql(`SELECT coalesce(trim_scale(sum(amount))::text, '0') FROM ledger_entries
                   WHERE account = 'merchant:${merchant.ocid}' AND currency = ${q(currency)}`);
}

// "outcome|received_via|canonical_form|exception kind or -|exception status or -"
function proofRow(envelope) {
    const p = envelope.proof;
    return h.sql(`SELECT pr.outcome || '|' || pr.received_via || '|' || pr.canonical_form || '|'
                         || coalesce(x.kind, '-') || '|' || coalesce(x.status, '-')
                    FROM proofs pr LEFT JOIN exceptions x ON x.proof_id = pr.id
                   WHERE pr.issuer = ${p.issuer} AND pr.txid = ${q(p.txid)}`);
}

function suspenseOf(envelope) {
    const p = envelope.proof;
    return h.sql(`SELECT coalesce(string_agg(e.account || ' ' || trim_scale(e.amount)::text || ' ' || e.currency,
                         ', ' ORDER BY e.account), '')
                    FROM proofs pr JOIN ledger_transactions t ON t.proof_id = pr.id AND t.kind = 'suspense'
                    JOIN ledger_entries e ON e.ledger_tx_id = t.id
                   WHERE pr.issuer = ${p.issuer} AND pr.txid = ${q(p.txid)}`);
}

function fingerprintDiff(a, b) {
    const pa = Object.fromEntries(a.split(' ').map((x) => x.split('=')));
    const pb = Object.fromEntries(b.split(' ').map((x) => x.split('=')));
    return Object.keys({ ...pa, ...pb }).filter((k) => pa[k] !== pb[k]).join(', ') || '(none)';
}

function unchangedSince(before, name) {
    const after = h.fingerprint();
    return h.ok(before === after, `${name}: database unchanged`, `tables changed: ${fingerprintDiff(before, after)}`);
}

// Runs in bounded batches of `width` (keeps concurrency high without exhausting sockets).
async function inBatches(items, width, fn) {
    const out = [];
    for (let i = 0; i < items.length; i += width) {
        out.push(...await Promise.all(items.slice(i, i + width).map(fn)));
    }
    return out;
}

// --- scenarios ------------------------------------------------------------------------------

const scenarios = [];
const scenario = (title, fn) => scenarios.push({ title, fn });

scenario('1 create → webhook → verify completed', async () => {
    const { app, merchant, provider } = world();
    const order = { id: `ord_${rand()}`, urls: ['https://merchant.example/orders/1'] };
    const before = oc.nowSeconds();
    const pay = await createOk(app, merchant, {
        reference: `ref_${rand()}`, memo: 'Payment for order 1 — café ☕', order,
    });
    const c = pay.json;
    keysAre(c, ['amount', 'currency', 'expiresAt', 'settlement', 'status', 'txid'], 'create answer has exactly the documented fields');
    h.is(c.status, 'pending_settlement', 'create: status pending_settlement');
    h.is(c.amount, '15.00', 'create: amount echoed as given');
    h.is(c.currency, 'USD', 'create: currency echoed');
    h.ok(Number.isSafeInteger(c.expiresAt) && c.expiresAt > before, 'create: expiresAt is in the future', c.expiresAt);
    h.ok(c.settlement && Array.isArray(c.settlement.accepts) && c.settlement.accepts.includes(provider.ocid),
        'create: settlement.accepts lists the registered provider', JSON.stringify(c.settlement));
    h.ok(/^[\x21-\x7e]{22,128}$/.test(c.txid), 'create: txid is printable, long enough for 128 random bits', c.txid);
    const other = await createOk(app, merchant);
    h.ok(other.txid !== c.txid, 'a second payment gets a different txid', `${c.txid} ${other.txid}`);
    h.is(paymentStatus(c.txid), 'pending_settlement', 'DB: payment stored pending_settlement');

    const pending = await verifyCall(app, c.txid);
    h.is(pending.status, 200, 'verify pending → 200');
    const pj = pending.json || {};
    keysAre(pj, ['amount', 'createdAt', 'currency', 'expiresAt', 'status', 'txid'], 'verify pending: exactly {status, txid, amount, currency, createdAt, expiresAt}');
    h.ok(pj.status === 'pending' && pj.txid === c.txid && pj.amount === '15.00' && pj.currency === 'USD' &&
        pj.expiresAt === c.expiresAt && Number.isSafeInteger(pj.createdAt) && Math.abs(pj.createdAt - before) <= 60,
    'verify pending: values match the payment', pending.body);

    const env1 = proofFor(provider, c.txid, { memo: 'provider memo is not copied' });
    const wh = await webhook(provider, env1);
    isAccepted(wh, env1, 'webhook with a matching proof');

    const done = await verifyCall(app, c.txid);
    isCompleted(done, pay, merchant, env1, 'verify after the webhook');

    h.is(paymentStatus(c.txid), 'completed', 'DB: payment completed');
    h.is(settlementEntries(c.txid), `1: clearing:${provider.ocid} -15 USD, merchant:${merchant.ocid} 15 USD`,
        'DB: one settlement ledger transaction, clearing:<provider> −15, merchant:<m> +15');
    h.is(h.sql(`SELECT count(*) || ' ' || string_agg(state, ',') FROM deliveries WHERE payment_txid = ${q(c.txid)}`),
        '1 pending', 'DB: one delivery row, state pending');
    h.is(h.sql(`SELECT merchant_ocid FROM deliveries WHERE payment_txid = ${q(c.txid)}`), String(merchant.ocid),
        'DB: the delivery goes to the payment\'s merchant');
    h.is(proofRow(env1), 'credited|webhook|strict|-|-', 'DB: proof stored as credited (strict), no exception');
    h.is(h.sql(`SELECT proof_json FROM proofs WHERE issuer = ${provider.ocid} AND txid = ${q(env1.proof.txid)}`),
        oc.canonicalStrict(env1.proof), 'DB: proof_json is the strict canonical text that verified');
    h.is(paymentStatus(other.txid), 'pending_settlement', 'the other payment is untouched');
});

scenario('2 create → settle by the payment app, then the same proof by webhook', async () => {
    const { app, merchant, provider } = world();
    const pay = await createOk(app, merchant, { amount: '7.25', reference: `ref_${rand()}` });
    const envp = proofFor(provider, pay.txid, { amount: '7.25' });
    const st = await settle(app, pay.txid, envp);
    isCompleted(st, pay, merchant, envp, 'settle by the creating app');
    h.ok(st.json && st.json.proof && st.json.proof.to && st.json.proof.to.reference === pay.fields.reference &&
        !('memo' in st.json.proof), 'gateway proof: to.reference = the create reference (no order), no memo field', st.body);

    const ver = await verifyCall(merchant, pay.txid);
    h.ok(ver.status === 200 && ver.json && st.json && canon(ver.json.proof) === canon(st.json.proof) &&
        ver.json.signature === st.json.signature, 'verify by the merchant shows the same proof and the same (deterministic) signature', `${short(ver)}\nsettle: ${st.body}`);

    const wh = await webhook(provider, envp);
    isAccepted(wh, envp, 'the provider\'s webhook with the already settled proof');
    h.is(settlementEntries(pay.txid), `1: clearing:${provider.ocid} -7.25 USD, merchant:${merchant.ocid} 7.25 USD`,
        'DB: still exactly one settlement ledger transaction');
    h.is(merchantBalance(merchant), '7.25', 'merchant credited once');
    h.is(proofRow(envp), 'credited|settle|strict|-|-', 'DB: one proof row, received via settle');
    h.is(h.sql(`SELECT count(*) FROM deliveries WHERE payment_txid = ${q(pay.txid)}`), '1', 'DB: one delivery');

    // The proof's issuer may submit it too.
    const pay2 = await createOk(app, merchant, { amount: '3.00' });
    const env2 = proofFor(provider, pay2.txid, { amount: '3.00' });
    const st2 = await settle(provider, pay2.txid, env2);
    isCompleted(st2, pay2, merchant, env2, 'settle by the proof\'s issuer');
    h.ok(st2.json && st2.json.proof && st2.json.proof.to && !('reference' in st2.json.proof.to),
        'gateway proof: to has no reference when create had neither order nor reference', st2.body);
});

scenario('3 the same proof by webhook and by settle concurrently, 50 payments', async () => {
    const { app, merchant, provider } = world();
    const N = 50;
    const pays = await inBatches([...Array(N).keys()], 10, () => createOk(app, merchant, { amount: '2.50' }));
    const envs = pays.map((p) => proofFor(provider, p.txid, { amount: '2.50' }));
    const results = await inBatches([...Array(N).keys()], 25, (i) =>
        Promise.all([webhook(provider, envs[i]), settle(app, pays[i].txid, envs[i])]));
    const badWh = [];
    const badSt = [];
    results.forEach(([wh, st], i) => {
        if (!(wh.status === 200 && canon(wh.json) === canon({ status: 'accepted', txid: envs[i].proof.txid }))) {
            badWh.push(`#${i}: ${short(wh)}`);
        }
        const j = st.json || {};
        const p = j.proof || {};
        if (!(st.status === 200 && j.status === 'completed' && p.txid === pays[i].txid && p.amount === '2.50' &&
              p.issuer === gatewayOcid() && canon(p.from) === canon(envs[i].proof.from) &&
              oc.verifyEmitted(env.pubkey, canon(p), j.signature))) {
            badSt.push(`#${i}: ${short(st)}`);
        }
    });
    h.ok(badWh.length === 0, `all ${N} concurrent webhooks → 200 accepted`, badWh.slice(0, 5).join('\n'));
    h.ok(badSt.length === 0, `all ${N} concurrent settles → 200 completed with a valid gateway proof`, badSt.slice(0, 5).join('\n'));
    const m = merchant.ocid;
    h.is(h.sql(`SELECT count(*) FROM payments WHERE merchant_ocid = ${m} AND status = 'completed'`), String(N),
        `DB: ${N} payments completed`);
    h.is(h.sql(`SELECT count(*) || ' tx, ' || count(DISTINCT payment_txid) || ' payments'
                  FROM ledger_transactions WHERE kind = 'settlement' AND merchant_ocid = ${m}`),
    `${N} tx, ${N} payments`, 'DB: exactly one settlement ledger transaction per payment');
    h.is(merchantBalance(merchant), String(N * 2.5), `merchant balance = ${N} × 2.50`);
    h.is(h.sql(`SELECT count(*) FROM proofs WHERE issuer = ${provider.ocid}`), String(N), `DB: ${N} proofs stored, one per (issuer, txid)`);
    h.is(h.sql(`SELECT count(*) FROM exceptions WHERE merchant_ocid = ${m}`), '0', 'DB: no exceptions');
    h.is(h.sql(`SELECT count(*) FROM deliveries WHERE merchant_ocid = ${m}`), String(N), `DB: ${N} deliveries`);
});

scenario('4 the same proof replayed later by webhook and by settle', async () => {
    const { app, merchant, provider } = world();
    // a) first by webhook
    const pay = await createOk(app, merchant);
    const e1 = proofFor(provider, pay.txid);
    const w1 = await webhook(provider, e1);
    isAccepted(w1, e1, 'first webhook');
    const s1 = await settle(app, pay.txid, e1);
    isCompleted(s1, pay, merchant, e1, 'first settle of the webhook-credited proof');
    // b) first by settle
    const pay2 = await createOk(app, merchant);
    const e2 = proofFor(provider, pay2.txid);
    const s2 = await settle(app, pay2.txid, e2);
    isCompleted(s2, pay2, merchant, e2, 'first settle');
    const w2 = await webhook(provider, e2);
    isAccepted(w2, e2, 'first webhook of the settled proof');

    const before = h.fingerprint();
    await h.sleep(1100);   // "later": another second, so a fresh timestamp too
    for (const [label, first, again] of [
        ['webhook replay (credited by webhook)', w1, () => webhook(provider, e1)],
        ['settle replay (credited by webhook)', s1, () => settle(app, pay.txid, e1)],
        ['settle replay (credited by settle)', s2, () => settle(app, pay2.txid, e2)],
        ['webhook replay (credited by settle)', w2, () => webhook(provider, e2)],
    ]) {
        const res = await again();
        h.ok(res.status === first.status && res.body === first.body, `${label}: same status and byte-equal body`,
            `first: ${short(first)}\nagain: ${short(res)}`);
    }
    unchangedSince(before, 'replays');
    h.is(merchantBalance(merchant), '30', 'merchant credited once per payment');
});

scenario('5 a second, different proof for a completed payment', async () => {
    const { app, merchant, provider } = world();
    const pay = await createOk(app, merchant);
    const a = proofFor(provider, pay.txid);
    isAccepted(await webhook(provider, a), a, 'first proof');
    const b = proofFor(provider, pay.txid);
    isAccepted(await webhook(provider, b), b, 'second proof by webhook');
    h.is(proofRow(b), 'duplicate_payment|webhook|strict|duplicate_payment|open', 'DB: second proof stored with an open duplicate_payment exception');
    h.is(suspenseOf(b), `clearing:${provider.ocid} -15 USD, suspense 15 USD`, 'DB: its money is in suspense');
    const c = proofFor(provider, pay.txid);
    const st = await settle(app, pay.txid, c);
    isError(st, 409, 'INVALID_STATE', 'third proof by settle');
    h.is(proofRow(c), 'duplicate_payment|settle|strict|duplicate_payment|open', 'DB: third proof stored with an open duplicate_payment exception');
    h.is(suspenseOf(c), `clearing:${provider.ocid} -15 USD, suspense 15 USD`, 'DB: its money is in suspense');
    const before = h.fingerprint();
    const again = await settle(app, pay.txid, c);
    h.ok(again.status === 409 && again.body === st.body, 'the third proof again → the same 409 body', short(again));
    unchangedSince(before, 'repeated duplicate');
    h.is(merchantBalance(merchant), '15', 'merchant credited once');
    h.is(h.sql(`SELECT pr.txid FROM payments p JOIN proofs pr ON pr.id = p.completed_by WHERE p.txid = ${q(pay.txid)}`),
        a.proof.txid, 'the payment stays completed by the first proof');
    const ver = await verifyCall(app, pay.txid);
    isCompleted(ver, pay, merchant, a, 'verify still shows the first proof\'s gateway proof');
});

scenario('6 amounts compared numerically, echoed as created', async () => {
    const { app, merchant, provider } = world();
    const pay = await createOk(app, merchant, { amount: '15.00', order: { id: `o_${rand()}` } });
    const e = proofFor(provider, pay.txid, { amount: '15.0' });
    isAccepted(await webhook(provider, e), e, 'create "15.00", proof "15.0"');
    h.is(proofRow(e), 'credited|webhook|strict|-|-', 'DB: credited');
    const ver = await verifyCall(merchant, pay.txid);
    isCompleted(ver, pay, merchant, e, 'verify');
    h.is(ver.json && ver.json.proof && ver.json.proof.amount, '15.00', 'gateway proof amount is "15.00", the text as created');

    const pay2 = await createOk(app, merchant, { amount: '15' });
    const e2 = proofFor(provider, pay2.txid, { amount: '15.000' });
    const st = await settle(app, pay2.txid, e2);
    isCompleted(st, pay2, merchant, e2, 'create "15", proof "15.000" by settle');
    h.is(st.json && st.json.proof && st.json.proof.amount, '15', 'gateway proof amount is "15"');

    const pay3 = await createOk(app, merchant, { amount: '0.10', currency: 'USDT' });
    const e3 = proofFor(provider, pay3.txid, { amount: '0.1', currency: 'USDT' });
    isAccepted(await webhook(provider, e3), e3, 'create "0.10" USDT, proof "0.1"');
    h.is(merchantBalance(merchant, 'USDT'), '0.1', 'merchant USDT balance 0.1');
    h.is(merchantBalance(merchant, 'USD'), '30', 'merchant USD balance 30');
});

scenario('7 unknown reference and expired payments', async () => {
    const { app, merchant, provider } = world();
    const unknown = proofFor(provider, `pay_${oc.newNonce().slice(4)}`);
    isAccepted(await webhook(provider, unknown), unknown, 'webhook for an unknown reference');
    h.is(proofRow(unknown), 'unmatched|webhook|strict|unmatched|open', 'DB: proof stored with an open unmatched exception');
    h.is(suspenseOf(unknown), `clearing:${provider.ocid} -15 USD, suspense 15 USD`, 'DB: its money is in suspense');

    const expiresAt = oc.nowSeconds() + 2;
    const late1 = await createOk(app, merchant, { expiresAt });
    const late2 = await createOk(app, merchant, { expiresAt });
    h.is(late1.json.expiresAt, expiresAt, 'create echoes the requested expiresAt');
    // Two seconds past expiry, not one: the gateway reads time(2), whose coarse clock can lag a
    // few milliseconds behind Node's, which once put a proof sent at x.007 s in the second before.
    await h.waitFor(() => oc.nowSeconds() >= expiresAt + 2, { timeoutMs: 5000, intervalMs: 100 });
    h.ok(oc.nowSeconds() > expiresAt, 'waited until the payments expired');

    const ver = await verifyCall(app, late1.txid);
    h.ok(ver.status === 200 && canon(ver.json) === canon({ status: 'expired', txid: late1.txid }),
        'verify of an expired pending payment → {"status":"expired","txid"}', short(ver));

    const e1 = proofFor(provider, late1.txid);
    isAccepted(await webhook(provider, e1), e1, 'webhook for an expired payment');
    h.is(proofRow(e1), 'late|webhook|strict|late|open', 'DB: proof stored with an open late exception');
    h.is(paymentStatus(late1.txid), 'pending_settlement', 'DB: the expired payment is NOT completed');
    h.is(suspenseOf(e1), `clearing:${provider.ocid} -15 USD, suspense 15 USD`, 'DB: its money is in suspense');

    const e2 = proofFor(provider, late2.txid);
    isError(await settle(app, late2.txid, e2), 410, 'PAYMENT_EXPIRED', 'settle of an expired payment');
    h.is(proofRow(e2), 'late|settle|strict|late|open', 'DB: proof stored with an open late exception');
    h.is(paymentStatus(late2.txid), 'pending_settlement', 'DB: not completed');
    h.is(merchantBalance(merchant), '0', 'merchant credited nothing');
});

scenario('8 amount and currency mismatches', async () => {
    const { app, merchant, provider } = world();
    const pay = await createOk(app, merchant);
    const low = proofFor(provider, pay.txid, { amount: '14.99' });
    const r1 = await webhook(provider, low);
    isError(r1, 400, 'AMOUNT_MISMATCH', 'webhook with amount 14.99 for 15.00');
    h.is(proofRow(low), 'amount_mismatch|webhook|strict|amount_mismatch|open', 'DB: proof stored with an open amount_mismatch exception');
    h.is(h.sql(`SELECT proof_json = ${q(oc.canonicalStrict(low.proof))} AND signature = ${q(low.signature)}
                    AND trim_scale(amount)::text = '14.99' AND amount_text = '14.99'
                  FROM proofs WHERE issuer = ${provider.ocid} AND txid = ${q(low.proof.txid)}`),
    't', 'DB: the exception keeps its proof (canonical text, signature, amount)');
    h.is(h.sql(`SELECT trim_scale(x.amount)::text || ' ' || x.currency || ' ' || x.merchant_ocid
                  FROM exceptions x JOIN proofs pr ON pr.id = x.proof_id
                 WHERE pr.issuer = ${provider.ocid} AND pr.txid = ${q(low.proof.txid)}`),
    `14.99 USD ${merchant.ocid}`, 'DB: exception holds the proof\'s amount and the payment\'s merchant');
    h.is(suspenseOf(low), `clearing:${provider.ocid} -14.99 USD, suspense 14.99 USD`, 'DB: 14.99 in suspense');

    const before = h.fingerprint();
    const again = await webhook(provider, low);
    h.ok(again.status === 400 && again.body === r1.body, 'the mismatching proof again → the same 400 body', short(again));
    unchangedSince(before, 'mismatch replay');

    const ugx = proofFor(provider, pay.txid, { currency: 'UGX' });
    isError(await webhook(provider, ugx), 400, 'CURRENCY_MISMATCH', 'webhook with currency UGX for USD');
    h.is(proofRow(ugx), 'currency_mismatch|webhook|strict|currency_mismatch|open', 'DB: proof stored with an open currency_mismatch exception');
    h.is(suspenseOf(ugx), `clearing:${provider.ocid} -15 UGX, suspense 15 UGX`, 'DB: 15 UGX in suspense');

    const high = proofFor(provider, pay.txid, { amount: '15.01' });
    isError(await settle(app, pay.txid, high), 400, 'AMOUNT_MISMATCH', 'settle with amount 15.01 for 15.00');
    h.is(proofRow(high), 'amount_mismatch|settle|strict|amount_mismatch|open', 'DB: proof stored with an open amount_mismatch exception');
    const eur = proofFor(provider, pay.txid, { currency: 'USDT' });
    isError(await settle(app, pay.txid, eur), 400, 'CURRENCY_MISMATCH', 'settle with currency USDT for USD');
    h.is(proofRow(eur), 'currency_mismatch|settle|strict|currency_mismatch|open', 'DB: proof stored with an open currency_mismatch exception');

    h.is(paymentStatus(pay.txid), 'pending_settlement', 'the payment is still pending');
    const good = proofFor(provider, pay.txid);
    isAccepted(await webhook(provider, good), good, 'then the right proof');
    h.is(paymentStatus(pay.txid), 'completed', 'the payment completes');
    h.is(merchantBalance(merchant), '15', 'merchant credited once, 15');
});

scenario('9 legacy canonical form', async () => {
    const app = participant(['payment_app']);
    const merchant = participant(['merchant']);
    const legacy = participant(['settlement_provider'], { form: 'legacy' });
    const strict = participant(['settlement_provider']);

    // A legacy-only proof submitted by the payment app: nested to/from are unprotected.
    const x1 = await createOk(app, merchant);
    const l1 = proofFor(legacy, x1.txid, { form: 'legacy' });
    h.ok(!oc.verifyProof(legacy.pub, l1.proof, l1.signature, 'strict') && oc.verifyProof(legacy.pub, l1.proof, l1.signature, 'legacy'),
        'test setup: the proof verifies only in the legacy form');
    let before = h.fingerprint();
    isError(await settle(app, x1.txid, l1), 400, 'PROOF_SIGNATURE_INVALID', 'legacy-only proof by the payment app via settle');
    unchangedSince(before, 'refused legacy settle');

    const wh = await webhook(legacy, l1);
    isAccepted(wh, l1, 'the legacy provider\'s webhook with the same proof');
    h.is(proofRow(l1), 'credited|webhook|legacy|-|-', 'DB: credited, form legacy recorded');
    h.is(h.sql(`SELECT proof_json FROM proofs WHERE issuer = ${legacy.ocid} AND txid = ${q(l1.proof.txid)}`),
        oc.canonicalStrict(l1.proof), 'DB: proof_json is the strict canonical text (form recorded apart)');
    const ver = await verifyCall(app, x1.txid);
    isCompleted(ver, x1, merchant, l1, 'verify: gateway proof signed in the strict form');

    // The issuer itself may submit its legacy-only proof by settle.
    const x2 = await createOk(app, merchant);
    const l2 = proofFor(legacy, x2.txid, { form: 'legacy' });
    isCompleted(await settle(legacy, x2.txid, l2), x2, merchant, l2, 'legacy-only proof via settle by its issuer');

    // A legacy participant's strict signatures are fine from anyone.
    const x3 = await createOk(app, merchant);
    const s3 = proofFor(legacy, x3.txid);
    isCompleted(await settle(app, x3.txid, s3), x3, merchant, s3, 'legacy provider\'s strict-signed proof via settle by the app');

    // A strict provider's legacy-signed proof is refused everywhere.
    const x4 = await createOk(app, merchant);
    const x5 = await createOk(app, merchant);
    const l4 = proofFor(strict, x4.txid, { form: 'legacy' });
    before = h.fingerprint();
    isError(await webhook(strict, l4), 400, 'PROOF_SIGNATURE_INVALID', 'strict provider, legacy-signed proof, webhook');
    isError(await settle(app, x4.txid, l4), 400, 'PROOF_SIGNATURE_INVALID', 'strict provider, legacy-signed proof, settle');
    isError(await settle(strict, x4.txid, l4), 400, 'PROOF_SIGNATURE_INVALID', 'strict provider, legacy-signed proof, settle by the issuer');

    // to.reference altered after signing.
    const strictSigned = proofFor(strict, x4.txid);
    const moved = { proof: { ...strictSigned.proof, to: { ocid: gatewayOcid(), reference: x5.txid } }, signature: strictSigned.signature };
    isError(await webhook(strict, moved), 400, 'PROOF_SIGNATURE_INVALID', 'strict proof with to.reference altered after signing, webhook');
    isError(await settle(app, x5.txid, moved), 400, 'PROOF_SIGNATURE_INVALID', 'strict proof with to.reference altered after signing, settle');
    const legacySigned = proofFor(strict, x4.txid, { form: 'legacy' });
    const moved2 = { proof: { ...legacySigned.proof, to: { ocid: gatewayOcid(), reference: x5.txid } }, signature: legacySigned.signature };
    isError(await webhook(strict, moved2), 400, 'PROOF_SIGNATURE_INVALID', 'strict provider: legacy-signed proof with to.reference altered, webhook');
    unchangedSince(before, 'refused strict-provider proofs');

    // The attack the settle rule prevents: a legacy provider's proof for x6 redirected to x7.
    const x6 = await createOk(app, merchant);
    const x7 = await createOk(app, merchant);
    const l6 = proofFor(legacy, x6.txid, { form: 'legacy' });
    const redirected = { proof: { ...l6.proof, to: { ocid: gatewayOcid(), reference: x7.txid } }, signature: l6.signature };
    h.ok(oc.verifyProof(legacy.pub, redirected.proof, redirected.signature, 'legacy'),
        'test setup: the redirected proof still verifies in the legacy form');
    before = h.fingerprint();
    isError(await settle(app, x7.txid, redirected), 400, 'PROOF_SIGNATURE_INVALID', 'legacy proof redirected to another payment, settle by the app');
    unchangedSince(before, 'redirected legacy proof');
    h.is(paymentStatus(x7.txid), 'pending_settlement', 'the target payment stays pending');
});

scenario('10 Idempotency-Key on /payment/create', async () => {
    const app = participant(['payment_app']);
    const merchant = participant(['merchant']);
    const key = `idem-${rand()}`;
    const body = JSON.stringify({ to: merchant.ocid, amount: '9.99', currency: 'USD', reference: `r_${rand()}` });
    const r1 = await createCall(app, null, { idemKey: key, raw: body });
    h.is(r1.status, 200, 'first create with a key → 200');
    const r2 = await createCall(app, null, { idemKey: key, raw: body });
    h.ok(r2.status === 200 && r2.body === r1.body, 'same key, same body → the same 200 body, byte for byte', `first: ${short(r1)}\nagain: ${short(r2)}`);
    h.is(h.sql(`SELECT count(*) FROM payments WHERE app_ocid = ${app.ocid}`), '1', 'DB: one payment');

    const before = h.fingerprint();
    const other = JSON.stringify({ to: merchant.ocid, amount: '9.98', currency: 'USD' });
    isError(await createCall(app, null, { idemKey: key, raw: other }), 409, 'IDEMPOTENCY_CONFLICT', 'same key, different body');
    isError(await createCall(app, null, { idemKey: key, raw: body + ' ' }), 409, 'IDEMPOTENCY_CONFLICT',
        'same key, body differing by one trailing space');
    unchangedSince(before, 'idempotency conflicts');

    // Scoped to the caller: another app's identical key is independent.
    const app2 = participant(['payment_app']);
    const r3 = await createCall(app2, null, { idemKey: key, raw: body });
    h.ok(r3.status === 200 && r3.json && r1.json && r3.json.txid !== r1.json.txid,
        'another app with the same key and body → its own payment', short(r3));

    // Only 2xx answers are stored.
    const key2 = `idem-${rand()}`;
    isError(await createCall(app, { to: 999999, amount: '1.00', currency: 'USD' }, { idemKey: key2 }), 400,
        'MERCHANT_NOT_REGISTERED', 'a key first used with a refused request');
    const r4 = await createCall(app, { to: merchant.ocid, amount: '1.00', currency: 'USD' }, { idemKey: key2 });
    h.is(r4.status, 200, 'the same key with a valid body afterwards → 200 (the refusal was not stored)');

    // No key: two identical creates are two payments.
    const plain = { to: merchant.ocid, amount: '2.00', currency: 'USD' };
    const p1 = await createCall(app, plain);
    const p2 = await createCall(app, plain);
    h.ok(p1.status === 200 && p2.status === 200 && p1.json.txid !== p2.json.txid, 'without a key, the same body twice → two payments',
        `${short(p1)}\n${short(p2)}`);

    // Concurrent retries with one key: one payment, every caller the same answer.
    const app3 = participant(['payment_app']);
    const key3 = `idem-${rand()}`;
    const body3 = JSON.stringify({ to: merchant.ocid, amount: '4.00', currency: 'USD' });
    const all = await Promise.all([...Array(10)].map(() => createCall(app3, null, { idemKey: key3, raw: body3 })));
    const first = all.find((r) => r.status === 200);
    h.ok(all.every((r) => r.status === 200 && first && r.body === first.body),
        '10 concurrent creates with the same key and body → all 200 with the same body',
        all.map(short).join('\n'));
    h.is(h.sql(`SELECT count(*) FROM payments WHERE app_ocid = ${app3.ocid}`), '1', 'DB: exactly one payment');
    h.is(h.sql(`SELECT count(*) FROM idempotency_keys WHERE caller_ocid = ${app3.ocid}`), '1', 'DB: one idempotency key row');
});

scenario('11 verify authorization', async () => {
    const { app, merchant, provider } = world();
    const otherProvider = participant(['settlement_provider']);
    const otherApp = participant(['payment_app']);
    const otherMerchant = participant(['merchant']);
    const pay = await createOk(app, merchant);
    for (const [who, p] of [['the creating app', app], ['the merchant', merchant],
        ['an unrelated provider', otherProvider], ['the paying provider', provider]]) {
        const res = await verifyCall(p, pay.txid);
        h.ok(res.status === 200 && res.json && res.json.status === 'pending' && res.json.txid === pay.txid,
            `verify by ${who} → 200 pending`, short(res));
    }
    const before = h.fingerprint();
    const res1 = await verifyCall(otherApp, pay.txid);
    isError(res1, 404, 'TXID_NOT_FOUND', 'verify by another payment app');
    isError(await verifyCall(otherMerchant, pay.txid), 404, 'TXID_NOT_FOUND', 'verify by another merchant');
    const res3 = await verifyCall(app, `pay_${oc.newNonce().slice(4)}`);
    isError(res3, 404, 'TXID_NOT_FOUND', 'verify of an unknown txid');
    h.is(res1.body, res3.body, 'another app\'s payment looks exactly like a missing one');
    unchangedSince(before, 'refused verifies');

    const e = proofFor(provider, pay.txid);
    isAccepted(await webhook(provider, e), e, 'webhook');
    isCompleted(await verifyCall(merchant, pay.txid), pay, merchant, e, 'verify by the merchant after completion');
    isCompleted(await verifyCall(otherProvider, pay.txid), pay, merchant, e, 'verify by an unrelated provider after completion');
    isError(await verifyCall(otherApp, pay.txid), 404, 'TXID_NOT_FOUND', 'verify by another payment app after completion');
});

scenario('12 capabilities', async () => {
    const { app, provider } = world();
    await sync();
    const res = await h.signedCall({ as: app, method: 'GET', path: h.url('/capabilities') });
    h.is(res.status, 200, 'GET /capabilities by a payment app → 200');
    const j = res.json || {};
    h.is(j.ocid, gatewayOcid(), 'capabilities: ocid is the gateway\'s, as a number');
    h.ok(typeof j.name === 'string' && j.name.length > 0, 'capabilities: name', res.body);
    h.ok(Array.isArray(j.capabilities) && j.capabilities.length > 0 && j.capabilities.every((c) => typeof c === 'string'),
        'capabilities: a non-empty list of strings', res.body);
    h.same(j.settlement && j.settlement.currencies, env.currencies, 'capabilities: settlement.currencies = the configured list');
    const want = h.sql("SELECT string_agg(ocid::text, ',' ORDER BY ocid) FROM participants WHERE enabled AND 'settlement_provider' = ANY (roles)");
    const got = j.settlement && Array.isArray(j.settlement.accepts) ? [...j.settlement.accepts].sort((a, b) => a - b).join(',') : null;
    h.is(got, want, 'capabilities: settlement.accepts = exactly the enabled settlement providers');
    h.ok(j.settlement && j.settlement.accepts && j.settlement.accepts.includes(provider.ocid), 'capabilities: includes the provider just registered');
    const asProvider = await h.signedCall({ as: provider, method: 'GET', path: h.url('/capabilities') });
    h.is(asProvider.status, 200, 'GET /capabilities by a provider → 200');
});

scenario('13 signature encodings accepted on input', async () => {
    const { app, merchant, provider } = world();
    const N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141n;
    const highS = (sig) => {
        const s = BigInt('0x' + sig.slice(64, 128));
        const v = sig.slice(128) === '1b' ? '1c' : '1b';
        return sig.slice(0, 64) + (N - s).toString(16).padStart(64, '0') + v;
    };
    const variants = [
        ['128-hex r‖s without v', (s) => s.slice(0, 128)],
        ['upper-case hex', (s) => s.toUpperCase()],
        ['high-S (normalised before verifying)', highS],
    ];
    for (const [label, f] of variants) {
        const pay = await createOk(app, merchant);
        const e = proofFor(provider, pay.txid);
        const v = { proof: e.proof, signature: f(e.signature) };
        h.ok(oc.verify(provider.pub, canon(e.proof), v.signature), `test setup: ${label} verifies with oc.js`);
        isAccepted(await webhook(provider, v), v, `proof signature as ${label}`);
        h.is(paymentStatus(pay.txid), 'completed', `${label}: payment completed`);
    }
    for (const [label, f] of variants) {
        await sync();
        const p = h.url('/capabilities');
        const hd = oc.requestHeaders({ ocid: app.ocid, priv: app.priv, method: 'GET', path: p });
        hd['X-OC-Signature'] = f(hd['X-OC-Signature']);
        const res = await h.call({ method: 'GET', path: p, headers: hd });
        h.is(res.status, 200, `request signature as ${label} → 200`);
    }
});

// --- main -----------------------------------------------------------------------------------

import('../node/harness.js').then((harness) => harness.run(async () => {
    h = harness;
    oc = h.oc;
    env = h.env;
    const filter = process.argv[2];
    // The delivery worker is off: these scenarios compare whole-database fingerprints, and
    // forwarding is covered by delivery.js.
    const gw = await h.startGateway({ OCGATE_WORKER: 'false' });
    h.diag(`gateway pid ${gw.pid}`);
    h.ok(true, 'gateway started');
    for (const { title, fn } of scenarios) {
        if (filter && !title.includes(filter)) continue;
        h.diag(`--- scenario ${title}`);
        const t0 = Date.now();
        try {
            await fn();
        } catch (e) {
            h.ok(false, `scenario ${title} ran to its end`, e);
        }
        h.checkInvariants(`after scenario ${title.split(' ')[0]}`);
        h.diag(`scenario ${title.split(' ')[0]} took ${Date.now() - t0} ms`);
    }
    h.is(await gw.stop('SIGTERM'), 0, 'SIGTERM → ocgate exits 0');
}));
