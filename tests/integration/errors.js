// Every error code of design.md's "error codes" table (except RATE_LIMITED), reached through
// a real `ocgate serve`: status, error.code, the body shape {"error":{"code","message"}}, the
// gateway's response signature (checked by the harness with oc.js) and the database — which
// must be unchanged (harness fingerprint(), request_nonces excluded) except where design.md
// keeps the proof as an exception (I4, I5). Nonces: a request whose signature verified has
// its nonce recorded whatever its outcome; one that failed authentication has not.
//   tests/integration/run-node.sh build/ocgate tests/integration/errors.js
// Ends by stopping PostgreSQL under the running gateway (503 UNAVAILABLE) and starting it
// again: the gateway must recover without a restart.
//
// Valid as CommonJS and as an ES module (no require, no top-level await), like smoke.js.

let h;
let oc;
let env;
let cp;
let fs;
let gatewayPriv = null;

const ALL_CODES = {
    INVALID_SIGNATURE: 401, TIMESTAMP_EXPIRED: 401, NONCE_REUSED: 401, UNKNOWN_OCID: 401,
    UNAUTHORIZED: 403, BAD_REQUEST: 400, INVALID_PROOF: 400, PROOF_SIGNATURE_INVALID: 400,
    ISSUER_NOT_ACCEPTED: 400, AMOUNT_MISMATCH: 400, CURRENCY_MISMATCH: 400,
    MERCHANT_NOT_REGISTERED: 400, CAPABILITY_NOT_SUPPORTED: 400, PAYMENT_NOT_FOUND: 404,
    TXID_NOT_FOUND: 404, NOT_FOUND: 404, INVALID_STATE: 409, IDEMPOTENCY_CONFLICT: 409,
    PAYMENT_EXPIRED: 410, PAYLOAD_TOO_LARGE: 413, INTERNAL: 500, UNAVAILABLE: 503,
};
const seen = new Set();

// --- helpers --------------------------------------------------------------------------------

let nextOcid = 20000;
function participant(roles, opts = {}) {
    nextOcid += 1;
    return h.newParticipant({ ocid: nextOcid, roles, ...opts });
}

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const rand = () => oc.newNonce().slice(4, 16);
const gatewayOcid = () => Number(env.ocid);
const short = (res) => (res ? `${res.status} ${String(res.body).slice(0, 400)}` : 'no response');

function expectError(res, status, code, name) {
    const j = res.json;
    const shape = res.status === status && j && typeof j === 'object' && !Array.isArray(j) &&
        Object.keys(j).length === 1 && j.error && typeof j.error === 'object' &&
        Object.keys(j.error).sort().join(',') === 'code,message' && j.error.code === code &&
        typeof j.error.message === 'string';
    const good = h.ok(shape, `${name} → ${status} {"error":{"code":"${code}","message":…}}`, short(res));
    if (good && res.signatureOk) seen.add(code);
    // "a clear error ... never echoing secrets" (I5, design.md "error codes")
    const leaks = [gatewayPriv, 'postgresql://', process.env.OCGATE_DATABASE_URL, 'ocgate_admin']
        .filter((s) => s && res.body.includes(s));
    h.ok(j && j.error && typeof j.error.message === 'string' && j.error.message.trim().length > 0 && leaks.length === 0,
        `${name}: error.message is a non-empty explanation and leaks no secret`,
        `${short(res)}${leaks.length ? `\nbody leaks: ${leaks.join(', ')}` : ''}`);
    return good;
}

function tables(fp) {
    return Object.fromEntries(fp.split(' ').filter(Boolean).map((x) => x.split('=')));
}

function changedTables(a, b) {
    const ta = tables(a);
    const tb = tables(b);
    return Object.keys({ ...ta, ...tb }).filter((k) => ta[k] !== tb[k]).sort();
}

// Runs fn and checks the database did not change (request_nonces aside).
async function unchanged(name, fn) {
    const before = h.fingerprint();
    const res = await fn();
    const after = h.fingerprint();
    h.ok(before === after, `${name}: database unchanged`, `tables changed: ${changedTables(before, after).join(', ')}`);
    return res;
}

// Runs fn and checks that exactly the tables an exception touches changed.
const EXCEPTION_TABLES = ['exceptions', 'ledger_entries', 'ledger_transactions', 'proofs'];
async function onlyException(name, fn) {
    const before = h.fingerprint();
    const res = await fn();
    const after = h.fingerprint();
    h.same(changedTables(before, after), EXCEPTION_TABLES, `${name}: only the proof, its exception and its suspense posting are written`);
    return res;
}

function nonceRecorded(ocid, nonce) {
    return h.sql(`SELECT count(*) FROM request_nonces WHERE ocid = ${ocid} AND nonce = ${q(nonce)}`) === '1';
}

function post(as, p, body, opts = {}) {
    return h.signedCall({ as, method: 'POST', path: h.url(p), body, ...opts });
}

function createBody(merchant, extra = {}) {
    return JSON.stringify({ to: merchant.ocid, amount: '15.00', currency: 'USD', ...extra });
}

async function createOk(app, merchant, extra = {}) {
    const res = await post(app, '/payment/create', createBody(merchant, extra));
    if (res.status !== 200 || !res.json || typeof res.json.txid !== 'string') {
        throw new Error(`POST /payment/create → ${short(res)}`);
    }
    return res.json.txid;
}

let proofSeq = 0;
function proofFor(provider, payTxid, o = {}) {
    proofSeq += 1;
    const proof = oc.makeProof({
        txid: o.txid ?? `etx_${provider.ocid}_${proofSeq}_${rand()}`,
        issuer: o.issuer ?? provider.ocid,
        from: o.from ?? { ocid: 4242, reference: `wallet_${proofSeq}` },
        to: o.to ?? { ocid: gatewayOcid(), reference: payTxid },
        amount: o.amount ?? '15.00',
        currency: o.currency ?? 'USD',
        timestamp: o.timestamp,
        memo: o.memo,
    });
    return oc.signProof(o.key ?? provider.priv, proof, 'strict');
}

// Signs an arbitrary proof object (test of field checks) in the strict form.
function signRaw(priv, proof) {
    return { proof, signature: oc.sign(priv, oc.canonicalStrict(proof)) };
}

const webhook = (provider, envelope, opts) => post(provider, '/transfer/webhook',
    typeof envelope === 'string' || Buffer.isBuffer(envelope) ? envelope : JSON.stringify(envelope), opts);
const settle = (caller, txid, envelope, opts) => post(caller, '/payment/settle',
    JSON.stringify({ txid, proof: envelope.proof, signature: envelope.signature }), opts);

// The signed X-OC-* headers, then mutate(headers) before sending.
function sendWith(as, { method = 'POST', path: p, body = '', mutate, port }) {
    const hd = oc.requestHeaders({ ocid: as.ocid, priv: as.priv, method, path: p, body });
    mutate(hd);
    return h.call({ method, path: p, body: method === 'GET' ? undefined : body, headers: hd, port });
}

// --- PostgreSQL control (tests/pg/pgtest.sh's cluster: PGHOST is its folder) ----------------

function pgCtl(args, what) {
    const bin = `${process.env.PGTEST_BIN || '/usr/lib/postgresql/15/bin'}/pg_ctl`;
    const [file, argv] = process.getuid && process.getuid() === 0
        ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
    const out = `${env.dir}/pg_ctl.out`;
    const fd = fs.openSync(out, 'a', 0o644);
    try {
        // Output to a file, not a pipe: the postmaster must not inherit a pipe we wait on.
        cp.execFileSync(file, argv, { stdio: ['ignore', fd, fd], timeout: 60000 });
    } catch (e) {
        throw new Error(`pg_ctl ${what} failed: ${e.message}\n${fs.readFileSync(out, 'utf8').slice(-2000)}`);
    } finally {
        fs.closeSync(fd);
    }
}

function pgDir() {
    const dir = process.env.PGHOST;
    if (!dir || !fs.existsSync(`${dir}/data`)) throw new Error('PGHOST is not a pgtest.sh cluster folder');
    return dir;
}

function pgStop() {
    pgCtl(['-D', `${pgDir()}/data`, '-m', 'fast', '-w', '-t', '30', 'stop'], 'stop');
}

function pgStart() {
    const dir = pgDir();
    pgCtl(['-D', `${dir}/data`, '-l', `${dir}/server.log`, '-w', '-t', '30', '-o',
        `-c listen_addresses='' -k ${dir} -p ${process.env.PGPORT} -c fsync=off -c synchronous_commit=off ` +
        '-c full_page_writes=off -c max_connections=200', 'start'], 'start');
}

// --- the checks -----------------------------------------------------------------------------

async function authFailures(w) {
    const { app, merchant } = w;
    const p = h.url('/payment/create');
    const body = createBody(merchant);

    for (const name of ['X-OC-ID', 'X-OC-Timestamp', 'X-OC-Nonce', 'X-OC-Signature']) {
        await unchanged(`missing ${name}`, async () => expectError(
            await sendWith(app, { path: p, body, mutate: (hd) => { delete hd[name]; } }),
            401, 'INVALID_SIGNATURE', `POST /payment/create without ${name}`));
    }
    await unchanged('no X-OC headers at all', async () => expectError(
        await h.call({ method: 'GET', path: h.url('/capabilities') }), 401, 'INVALID_SIGNATURE', 'GET /capabilities without any X-OC-* header'));

    const now = oc.nowSeconds();
    for (const [label, ts] of [['abc', 'abc'], ['<now>.0', `${now}.0`], ['+<now>', `+${now}`], ['-<now>', `-${now}`],
        ['0x<now in hex>', `0x${now.toString(16)}`], ['empty', '']]) {
        await unchanged(`timestamp "${label}"`, async () => expectError(
            await h.signedCall({ as: app, method: 'POST', path: p, body, timestamp: ts }),
            401, 'INVALID_SIGNATURE', `malformed X-OC-Timestamp "${label}"`));
    }
    await unchanged('malformed X-OC-ID', async () => expectError(
        await sendWith(app, { path: p, body, mutate: (hd) => { hd['X-OC-ID'] = `${app.ocid}x`; } }),
        401, 'INVALID_SIGNATURE', 'malformed X-OC-ID'));
    await unchanged('malformed X-OC-Signature', async () => expectError(
        await sendWith(app, { path: p, body, mutate: (hd) => { hd['X-OC-Signature'] = 'zz' + hd['X-OC-Signature'].slice(2); } }),
        401, 'INVALID_SIGNATURE', 'non-hex X-OC-Signature'));

    for (const [label, delta] of [['stale (now−301)', -301], ['future (now+301)', 301]]) {
        // Start early in a second, so the gateway reads the same "now" as the test.
        await h.waitFor(() => Date.now() % 1000 < 200, { timeoutMs: 1500, intervalMs: 10 });
        const ts = oc.nowSeconds() + delta;
        const nonce = oc.newNonce();
        await unchanged(`timestamp ${label}`, async () => expectError(
            await h.signedCall({ as: app, method: 'POST', path: p, body, timestamp: ts, nonce }),
            401, 'TIMESTAMP_EXPIRED', `X-OC-Timestamp ${label}`));
    }
    for (const delta of [-290, 290]) {
        const inWindow = await h.signedCall({ as: app, method: 'GET', path: h.url('/capabilities'), timestamp: oc.nowSeconds() + delta });
        h.is(inWindow.status, 200, `X-OC-Timestamp now${delta > 0 ? '+' : '−'}290 (inside the ±300 s window) → 200`);
    }

    // Reused nonce: the exact same signed request twice.
    const capsHeaders = oc.requestHeaders({ ocid: app.ocid, priv: app.priv, method: 'GET', path: h.url('/capabilities') });
    const c1 = await h.call({ method: 'GET', path: h.url('/capabilities'), headers: capsHeaders });
    h.is(c1.status, 200, 'a signed GET /capabilities → 200');
    h.ok(nonceRecorded(app.ocid, capsHeaders['X-OC-Nonce']), 'its nonce is recorded');
    await unchanged('replayed GET', async () => expectError(
        await h.call({ method: 'GET', path: h.url('/capabilities'), headers: capsHeaders }),
        401, 'NONCE_REUSED', 'the same signed GET /capabilities again'));
    const createHeaders = oc.requestHeaders({ ocid: app.ocid, priv: app.priv, method: 'POST', path: p, body });
    const r1 = await h.call({ method: 'POST', path: p, body, headers: createHeaders });
    h.is(r1.status, 200, 'a signed POST /payment/create → 200');
    await unchanged('replayed create', async () => expectError(
        await h.call({ method: 'POST', path: p, body, headers: createHeaders }),
        401, 'NONCE_REUSED', 'the same signed POST /payment/create again (no second payment)'));
    // Scoped to the sender: another participant may use the same nonce.
    const sameNonce = await h.signedCall({ as: merchant, method: 'GET', path: h.url('/capabilities'), nonce: capsHeaders['X-OC-Nonce'] });
    h.is(sameNonce.status, 200, 'another participant using the same nonce → 200');
    // A nonce is recorded even when the request is refused after authentication.
    const refusedNonce = oc.newNonce();
    await unchanged('refused create', async () => expectError(
        await post(app, '/payment/create', createBody({ ocid: 999001 }), { nonce: refusedNonce }),
        400, 'MERCHANT_NOT_REGISTERED', 'create for an unknown merchant'));
    h.ok(nonceRecorded(app.ocid, refusedNonce), 'the refused (but authenticated) request\'s nonce is recorded');
    await unchanged('reuse of a refused request\'s nonce', async () => expectError(
        await post(app, '/payment/create', createBody(merchant), { nonce: refusedNonce }),
        401, 'NONCE_REUSED', 'a new request reusing that nonce'));

    // Unknown and disabled participants.
    const stranger = { ocid: 999002, priv: oc.randomPrivateKey() };
    const strangerNonce = oc.newNonce();
    await unchanged('unknown OCID', async () => expectError(
        await h.signedCall({ as: stranger, method: 'POST', path: p, body, nonce: strangerNonce }),
        401, 'UNKNOWN_OCID', 'a request from an unregistered OCID'));
    h.ok(!nonceRecorded(stranger.ocid, strangerNonce), 'no nonce recorded for the unknown OCID');
    await unchanged('disabled participant', async () => expectError(
        await h.signedCall({ as: w.disabledApp, method: 'POST', path: p, body }),
        401, 'UNKNOWN_OCID', 'a request from a disabled payment app'));

    // Bad request signatures: no nonce recorded, so the nonce is still usable.
    const otherKey = oc.randomPrivateKey();
    const n1 = oc.newNonce();
    await unchanged('signed with another key', async () => expectError(
        await h.signedCall({ as: { ocid: app.ocid, priv: otherKey }, method: 'POST', path: p, body, nonce: n1 }),
        401, 'INVALID_SIGNATURE', 'request signed with another key'));
    h.ok(!nonceRecorded(app.ocid, n1), 'no nonce recorded for the badly signed request');
    const n2 = oc.newNonce();
    await unchanged('body altered after signing', async () => expectError(
        await sendWith(app, {
            path: p, body,
            mutate: (hd) => { hd['X-OC-Nonce'] = n2; hd['X-OC-Signature'] = oc.sign(app.priv, oc.requestString({ ocid: app.ocid, timestamp: hd['X-OC-Timestamp'], nonce: n2, method: 'POST', path: p, body: createBody(merchant, { amount: '1.00' }) })); },
        }), 401, 'INVALID_SIGNATURE', 'body altered after signing'));
    h.ok(!nonceRecorded(app.ocid, n2), 'no nonce recorded for the altered request');
    const n3 = oc.newNonce();
    await unchanged('path altered after signing', async () => expectError(
        await sendWith(app, {
            path: p, body,
            mutate: (hd) => { hd['X-OC-Nonce'] = n3; hd['X-OC-Signature'] = oc.sign(app.priv, oc.requestString({ ocid: app.ocid, timestamp: hd['X-OC-Timestamp'], nonce: n3, method: 'POST', path: h.url('/payment/settle'), body })); },
        }), 401, 'INVALID_SIGNATURE', 'signed for another path'));
    const reuse = await h.signedCall({ as: app, method: 'GET', path: h.url('/capabilities'), nonce: n1 });
    h.is(reuse.status, 200, 'the nonce of the badly signed request is still usable → 200');
}

async function createFailures(w) {
    const { app, merchant, provider } = w;
    await unchanged('unknown merchant', async () => expectError(
        await post(app, '/payment/create', createBody({ ocid: 999003 })), 400, 'MERCHANT_NOT_REGISTERED', 'create for an unknown merchant'));
    await unchanged('provider as merchant', async () => expectError(
        await post(app, '/payment/create', createBody(provider)), 400, 'MERCHANT_NOT_REGISTERED', 'create for a participant that is not a merchant'));
    await unchanged('disabled merchant', async () => expectError(
        await post(app, '/payment/create', createBody(w.disabledMerchant)), 400, 'MERCHANT_NOT_REGISTERED', 'create for a disabled merchant'));
    const n = oc.newNonce();
    await unchanged('merchant creating', async () => expectError(
        await post(merchant, '/payment/create', createBody(merchant), { nonce: n }), 403, 'UNAUTHORIZED', 'a merchant calling /payment/create'));
    h.ok(nonceRecorded(merchant.ocid, n), 'its nonce is recorded (the signature verified)');
    await unchanged('provider creating', async () => expectError(
        await post(provider, '/payment/create', createBody(merchant)), 403, 'UNAUTHORIZED', 'a provider calling /payment/create'));

    for (const [label, extra] of [
        ['amount "0"', { amount: '0' }], ['amount "0.00"', { amount: '0.00' }], ['amount "1e3"', { amount: '1e3' }],
        ['amount "15."', { amount: '15.' }], ['amount "01.00"', { amount: '01.00' }], ['amount "-1.00"', { amount: '-1.00' }],
        ['amount as a number', { amount: 15 }], ['currency "usd"', { currency: 'usd' }],
        ['currency "EUR" (not configured)', { currency: 'EUR' }], ['expiresAt in the past', { expiresAt: oc.nowSeconds() - 10 }],
        ['expiresAt 31 days ahead', { expiresAt: oc.nowSeconds() + 31 * 86400 }], ['to as a string', { to: String(merchant.ocid) }],
    ]) {
        await unchanged(`create ${label}`, async () => expectError(
            await post(app, '/payment/create', createBody(merchant, extra)), 400, 'BAD_REQUEST', `create with ${label}`));
    }

    const key = `k-${rand()}`;
    const r = await post(app, '/payment/create', createBody(merchant), { headers: { 'Idempotency-Key': key } });
    h.is(r.status, 200, 'create with an Idempotency-Key → 200');
    await unchanged('idempotency conflict', async () => expectError(
        await post(app, '/payment/create', createBody(merchant, { amount: '16.00' }), { headers: { 'Idempotency-Key': key } }),
        409, 'IDEMPOTENCY_CONFLICT', 'the same Idempotency-Key with another body'));
}

async function proofFailures(w) {
    const { app, merchant, provider, provider2, merchantOnly } = w;
    const pay = await createOk(app, merchant);
    const pay2 = await createOk(app, merchant);

    await unchanged('app sends a webhook', async () => expectError(
        await webhook(app, proofFor(app, pay)), 400, 'ISSUER_NOT_ACCEPTED', 'a payment app calling /transfer/webhook'));
    await unchanged('merchant sends a webhook', async () => expectError(
        await webhook(merchant, proofFor(merchant, pay)), 400, 'ISSUER_NOT_ACCEPTED', 'a merchant calling /transfer/webhook'));
    await unchanged('settle: issuer is a merchant', async () => expectError(
        await settle(app, pay, proofFor(merchantOnly, pay)), 400, 'ISSUER_NOT_ACCEPTED', 'settle with a proof issued by a registered non-provider'));
    await unchanged('settle: issuer unregistered', async () => expectError(
        await settle(app, pay, proofFor({ ocid: 999004, priv: oc.randomPrivateKey() }, pay)), 400, 'ISSUER_NOT_ACCEPTED', 'settle with a proof issued by an unregistered OCID'));
    await unchanged('settle: issuer disabled', async () => expectError(
        await settle(app, pay, proofFor(w.disabledProvider, pay)), 400, 'ISSUER_NOT_ACCEPTED', 'settle with a proof issued by a disabled provider'));

    await unchanged('webhook: issuer ≠ sender', async () => expectError(
        await webhook(provider, proofFor(provider2, pay)), 400, 'INVALID_PROOF', 'webhook whose proof.issuer ≠ X-OC-ID (validly signed by its issuer)'));

    await unchanged('webhook: proof signed with another key', async () => expectError(
        await webhook(provider, proofFor(provider, pay, { key: oc.randomPrivateKey() })), 400, 'PROOF_SIGNATURE_INVALID', 'webhook with a proof signed by another key'));
    const good = proofFor(provider, pay);
    const altered = { proof: { ...good.proof, amount: '15.01' }, signature: good.signature };
    await unchanged('webhook: amount altered after signing', async () => expectError(
        await webhook(provider, altered), 400, 'PROOF_SIGNATURE_INVALID', 'webhook with the amount altered after signing'));
    await unchanged('settle: bad proof signature', async () => expectError(
        await settle(app, pay, proofFor(provider, pay, { key: oc.randomPrivateKey() })), 400, 'PROOF_SIGNATURE_INVALID', 'settle with a proof signed by another key'));

    await unchanged('webhook: wrong recipient', async () => expectError(
        await webhook(provider, proofFor(provider, pay, { to: { ocid: gatewayOcid() + 1, reference: pay } })), 400, 'INVALID_PROOF', 'webhook with proof.to.ocid ≠ 300'));
    await unchanged('settle: wrong recipient', async () => expectError(
        await settle(app, pay, proofFor(provider, pay, { to: { ocid: gatewayOcid() + 1, reference: pay } })), 400, 'INVALID_PROOF', 'settle with proof.to.ocid ≠ 300'));

    const ghost = `pay_${oc.newNonce().slice(4)}`;
    await unchanged('settle: unknown txid', async () => expectError(
        await settle(app, ghost, proofFor(provider, ghost)), 404, 'PAYMENT_NOT_FOUND', 'settle with an unknown txid'));
    await unchanged('settle: unknown txid, bad proof signature', async () => expectError(
        await settle(app, ghost, proofFor(provider, ghost, { key: oc.randomPrivateKey() })), 404, 'PAYMENT_NOT_FOUND', 'settle with an unknown txid and a badly signed proof'));
    await unchanged('settle: unknown txid, issuer not accepted', async () => expectError(
        await settle(app, ghost, proofFor(merchantOnly, ghost)), 404, 'PAYMENT_NOT_FOUND', 'settle with an unknown txid and an unaccepted issuer'));

    await unchanged('settle: reference ≠ txid', async () => expectError(
        await settle(app, pay, proofFor(provider, pay2)), 400, 'INVALID_PROOF', 'settle whose proof.to.reference names another payment'));
    const noRef = proofFor(provider, pay, { to: { ocid: gatewayOcid() } });
    await unchanged('settle: no reference', async () => expectError(
        await settle(app, pay, noRef), 400, 'INVALID_PROOF', 'settle with a proof without to.reference'));

    await unchanged('settle: third-party app', async () => expectError(
        await settle(w.otherApp, pay, proofFor(provider, pay)), 403, 'UNAUTHORIZED', 'settle by another payment app (neither the app nor the issuer)'));
    await unchanged('settle: the merchant', async () => expectError(
        await settle(merchant, pay, proofFor(provider, pay)), 403, 'UNAUTHORIZED', 'settle by the merchant'));
    await unchanged('settle: another provider', async () => expectError(
        await settle(provider2, pay, proofFor(provider, pay)), 403, 'UNAUTHORIZED', 'settle by a provider that did not issue the proof'));

    await unchanged('proof timestamp in the future', async () => expectError(
        await webhook(provider, proofFor(provider, pay, { timestamp: oc.nowSeconds() + 400 })), 400, 'INVALID_PROOF', 'webhook with proof.timestamp 400 s in the future'));

    // Proof fields missing or of the wrong type.
    const base = proofFor(provider, pay).proof;
    const without = (k) => { const c = { ...base }; delete c[k]; return c; };
    const cases = [
        ['proof.amount missing', signRaw(provider.priv, without('amount'))],
        ['proof.txid missing', signRaw(provider.priv, without('txid'))],
        ['proof.issuer missing', signRaw(provider.priv, without('issuer'))],
        ['proof.from missing', signRaw(provider.priv, without('from'))],
        ['proof.to missing', signRaw(provider.priv, without('to'))],
        ['proof.currency missing', signRaw(provider.priv, without('currency'))],
        ['proof.timestamp missing', signRaw(provider.priv, without('timestamp'))],
        ['proof.to.ocid missing', signRaw(provider.priv, { ...base, to: { reference: pay } })],
        ['proof.amount a number', signRaw(provider.priv, { ...base, amount: 15 })],
        ['proof.amount "15."', signRaw(provider.priv, { ...base, amount: '15.' })],
        ['proof.issuer a string', signRaw(provider.priv, { ...base, issuer: String(provider.ocid) })],
        ['proof.timestamp a string', signRaw(provider.priv, { ...base, timestamp: String(base.timestamp) })],
        ['proof.to a string', signRaw(provider.priv, { ...base, to: pay })],
        ['proof.memo null', signRaw(provider.priv, { ...base, memo: null })],
        ['proof.txid empty', signRaw(provider.priv, { ...base, txid: '' })],
        ['proof a string', { proof: 'x', signature: proofFor(provider, pay).signature }],
        ['proof missing', { signature: proofFor(provider, pay).signature }],
        ['signature missing', { proof: base }],
        ['signature a number', { proof: base, signature: 1 }],
    ];
    for (const [label, envelope] of cases) {
        await unchanged(`webhook: ${label}`, async () => expectError(
            await webhook(provider, envelope), 400, 'INVALID_PROOF', `webhook with ${label}`));
    }
    await unchanged('settle: proof.amount missing', async () => expectError(
        await settle(app, pay, cases[0][1]), 400, 'INVALID_PROOF', 'settle with proof.amount missing'));
}

// Outcomes that keep the proof as an exception (I4).
async function keptAsException(w) {
    const { app, merchant, provider } = w;
    const expiring = w.expiring;
    await h.waitFor(() => oc.nowSeconds() > w.expiresAt, { timeoutMs: 4000 });
    const e1 = proofFor(provider, expiring);
    await onlyException('expired', async () => expectError(
        await settle(app, expiring, e1), 410, 'PAYMENT_EXPIRED', 'settle of an expired payment'));
    h.is(h.sql(`SELECT x.kind || ' ' || x.status FROM exceptions x JOIN proofs pr ON pr.id = x.proof_id
                 WHERE pr.issuer = ${provider.ocid} AND pr.txid = ${q(e1.proof.txid)}`), 'late open', 'exception late, open');

    const pay = await createOk(app, merchant);
    const m1 = proofFor(provider, pay, { amount: '1.00' });
    await onlyException('amount mismatch (settle)', async () => expectError(
        await settle(app, pay, m1), 400, 'AMOUNT_MISMATCH', 'settle with another amount'));
    const m2 = proofFor(provider, pay, { amount: '2.00' });
    await onlyException('amount mismatch (webhook)', async () => expectError(
        await webhook(provider, m2), 400, 'AMOUNT_MISMATCH', 'webhook with another amount'));
    const m3 = proofFor(provider, pay, { currency: 'UGX' });
    await onlyException('currency mismatch (webhook)', async () => expectError(
        await webhook(provider, m3), 400, 'CURRENCY_MISMATCH', 'webhook with another currency'));
    const m4 = proofFor(provider, pay, { currency: 'USDT' });
    await onlyException('currency mismatch (settle)', async () => expectError(
        await settle(app, pay, m4), 400, 'CURRENCY_MISMATCH', 'settle with another currency'));
    h.is(h.sql(`SELECT string_agg(x.kind, ',' ORDER BY x.id) FROM exceptions x JOIN proofs pr ON pr.id = x.proof_id WHERE pr.payment_txid = ${q(pay)}`),
        'amount_mismatch,amount_mismatch,currency_mismatch,currency_mismatch', 'the four mismatching proofs are open exceptions');

    const first = proofFor(provider, pay);
    const ok1 = await webhook(provider, first);
    h.is(ok1.status, 200, 'the payment is then completed by a matching proof');
    const second = proofFor(provider, pay);
    await onlyException('completed by another proof', async () => expectError(
        await settle(app, pay, second), 409, 'INVALID_STATE', 'settle of a payment completed by another proof'));
    h.is(h.sql(`SELECT x.kind FROM exceptions x JOIN proofs pr ON pr.id = x.proof_id
                 WHERE pr.issuer = ${provider.ocid} AND pr.txid = ${q(second.proof.txid)}`), 'duplicate_payment', 'exception duplicate_payment');
}

// k nested objects around the integer 1: {"a":{"a":...1...}}
function nested(k) {
    let s = '1';
    for (let i = 0; i < k; i++) s = `{"a":${s}}`;
    return s;
}

async function badJson(w) {
    const { app, merchant, provider } = w;
    const M = merchant.ocid;
    const good = `{"to":${M},"amount":"15.00","currency":"USD"`;
    const bodies = [
        ['malformed JSON (truncated)', `{"to":${M},"amount":`],
        ['malformed JSON (trailing comma)', `{"to":${M},"amount":"15.00","currency":"USD",}`],
        ['trailing data after the object', `${good}} {}`],
        ['empty body', ''],
        ['a duplicate key', `{"to":${M},"to":${M},"amount":"15.00","currency":"USD"}`],
        ['invalid UTF-8 bytes in a string', Buffer.concat([Buffer.from(`${good},"memo":"a`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])],
        ['an overlong UTF-8 encoding', Buffer.concat([Buffer.from(`${good},"memo":"a`), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])],
        ['a lone surrogate escape', `${good},"memo":"\\ud800"}`],
        ['the integer 2^53', `{"to":9007199254740992,"amount":"15.00","currency":"USD"}`],
        ['the integer -2^53 in an extra field', `${good},"x":-9007199254740992}`],
        ['a real 1.5', `${good},"x":1.5}`],
        ['a real 1e3', `${good},"x":1e3}`],
        ['nesting depth 33', `${good},"x":${nested(32)}}`],   // the body object + 32
        ['a top-level array', `[${good}}]`],
        ['a top-level string', '"hello"'],
        ['an array-index key {"0":1}', `${good},"0":1}`],
        ['an array-index key nested', `${good},"order":{"id":"o1","7":1}}`],
    ];
    for (const [label, body] of bodies) {
        const nonce = oc.newNonce();
        await unchanged(`create: ${label}`, async () => expectError(
            await post(app, '/payment/create', body, { nonce }), 400, 'BAD_REQUEST', `create with ${label}`));
        h.ok(nonceRecorded(app.ocid, nonce), `${label}: the (authenticated) request's nonce is recorded`);
    }
    // Depth 32 is allowed: the boundary.
    const deep = await post(app, '/payment/create', `${good},"x":${nested(31)}}`);   // the body object + 31
    h.is(deep.status, 200, 'create with nesting depth 32 (the limit) → 200');

    // The design's vector, at the proof endpoints.
    const vector = '{"proof":{"txid":"a","txid":"b"},"signature":"00"}';
    await unchanged('webhook: duplicate-key vector', async () => expectError(
        await webhook(provider, vector), 400, 'BAD_REQUEST', `webhook with ${vector}`));
    await unchanged('settle: duplicate-key vector', async () => expectError(
        await post(app, '/payment/settle', '{"txid":"x","proof":{"txid":"a","txid":"b"},"signature":"00"}'), 400, 'BAD_REQUEST', 'settle with a duplicate key inside the proof'));
    // JSON-level refusals inside an otherwise well-formed proof are BAD_REQUEST, not proof errors.
    const pay = await createOk(app, merchant);
    const e = proofFor(provider, pay);
    const text = JSON.stringify(e);
    const inProof = [
        ['2^53 as proof.from.ocid', text.replace('"from":{"ocid":4242', '"from":{"ocid":9007199254740992')],
        ['a real as proof.timestamp', text.replace(`"timestamp":${e.proof.timestamp}`, `"timestamp":${e.proof.timestamp}.5`)],
        ['an array-index key in the proof', text.replace('"proof":{', '"proof":{"0":"x",')],
        ['a duplicate key in proof.to', text.replace('"to":{', `"to":{"ocid":${gatewayOcid()},`)],
    ];
    for (const [label, body] of inProof) {
        h.ok(body !== text, `test setup: ${label} substituted`);
        await unchanged(`webhook: ${label}`, async () => expectError(
            await webhook(provider, body), 400, 'BAD_REQUEST', `webhook with ${label}`));
    }
    await unchanged('webhook: top-level array', async () => expectError(
        await webhook(provider, `[${text}]`), 400, 'BAD_REQUEST', 'webhook with a top-level array'));
}

async function routes(w) {
    const { app, merchant } = w;
    const n = oc.newNonce();
    await unchanged('orders/checkout', async () => expectError(
        await post(merchant, '/orders/checkout', '{}', { nonce: n }), 400, 'CAPABILITY_NOT_SUPPORTED', 'POST /orders/checkout'));
    h.ok(nonceRecorded(merchant.ocid, n), 'its nonce is recorded');
    await unchanged('transfer/create', async () => expectError(
        await post(app, '/transfer/create', JSON.stringify({ from: { ocid: app.ocid }, to: { ocid: merchant.ocid }, amount: '1.00', currency: 'USD' })),
        400, 'CAPABILITY_NOT_SUPPORTED', 'POST /transfer/create'));
    await unchanged('unknown path', async () => expectError(
        await h.signedCall({ as: app, method: 'GET', path: h.url('/no/such/thing') }), 404, 'NOT_FOUND', 'signed GET of an unknown path under the base path'));
    await unchanged('unknown path, POST', async () => expectError(
        await post(app, '/payment/creat', createBody(merchant)), 404, 'NOT_FOUND', 'signed POST /payment/creat'));
    await unchanged('unknown txid', async () => expectError(
        await h.signedCall({ as: app, method: 'GET', path: h.url(`/verify/pay_${oc.newNonce().slice(4)}`) }), 404, 'TXID_NOT_FOUND', 'GET /verify/<unknown txid>'));
}

async function tooLarge(w) {
    const { app, merchant } = w;
    const port2 = await h.freePort();
    const gw2 = await h.startGateway({ OCGATE_LISTEN: `127.0.0.1:${port2}`, OCGATE_BODY_LIMIT: '2K', OCGATE_WORKER: 'false' });
    const pad = (n) => `{"to":${merchant.ocid},"amount":"15.00","currency":"USD","pad":"${'x'.repeat(n)}"}`;
    const big = pad(3072);
    h.ok(big.length > 3000, `test setup: a ${big.length}-byte body`);
    await unchanged('3 KB body', async () => expectError(
        await post(app, '/payment/create', big, { port: port2 }), 413, 'PAYLOAD_TOO_LARGE', 'a 3 KB body with OCGATE_BODY_LIMIT=2K'));
    const fits = pad(1800);
    const r = await post(app, '/payment/create', fits, { port: port2 });
    h.is(r.status, 200, `a ${fits.length}-byte body with OCGATE_BODY_LIMIT=2K → 200`);
    // Past evhttp's hard cap (about 4 × the limit) libevent answers by itself, unsigned.
    const huge = pad(64 * 1024);
    try {
        const res = await h.signedCall({ as: app, method: 'POST', path: h.url('/payment/create'), body: huge, port: port2, unsigned: true });
        h.is(res.status, 413, 'a 64 KiB body (past the hard cap) → 413 (signed or libevent\'s bare answer)');
    } catch (e) {
        h.diag(`64 KiB body: connection closed before an answer (${e.message}); accepted for bodies past the hard cap`);
        h.ok(true, 'a 64 KiB body (past the hard cap) is refused');
    }
    h.is(await gw2.stop('SIGTERM'), 0, 'the second gateway exits 0');
}

async function internalError(w) {
    const { app, merchant } = w;
    const marker = `injected-failure-${rand()}`;
    h.sql(`CREATE FUNCTION test_fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION '${marker}'; END $$;
           CREATE TRIGGER test_fail_insert BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION test_fail_insert();`);
    try {
        const res = await unchanged('statement failure', async () => post(app, '/payment/create', createBody(merchant)));
        expectError(res, 500, 'INTERNAL', 'create while the database refuses the insert (injected trigger)');
        h.ok(!res.body.includes(marker), 'the 500 body does not echo the database error', res.body);
    } finally {
        h.sql('DROP TRIGGER test_fail_insert ON payments; DROP FUNCTION test_fail_insert();');
    }
    const again = await post(app, '/payment/create', createBody(merchant));
    h.is(again.status, 200, 'after removing the fault, create → 200');
}

async function databaseDown(w, gw) {
    const { app, merchant, provider } = w;
    const pay = await createOk(app, merchant);
    const before = h.fingerprint();
    pgStop();
    let stopped = true;
    try {
        h.diag('PostgreSQL stopped');
        const r1 = await post(app, '/payment/create', createBody(merchant), { timeoutMs: 30000 });
        expectError(r1, 503, 'UNAVAILABLE', 'create while PostgreSQL is down');
        const r2 = await webhook(provider, proofFor(provider, pay), { timeoutMs: 30000 });
        expectError(r2, 503, 'UNAVAILABLE', 'webhook while PostgreSQL is down');
        const r3 = await h.signedCall({ as: app, method: 'GET', path: h.url(`/verify/${pay}`), timeoutMs: 30000 });
        expectError(r3, 503, 'UNAVAILABLE', 'verify while PostgreSQL is down');
        h.ok(gw.proc.exitCode === null && gw.proc.signalCode === null, 'the gateway is still running');
        pgStart();
        stopped = false;
        h.diag('PostgreSQL started again');
    } finally {
        if (stopped) {
            try { pgStart(); } catch (e) { h.diag(`could not restart PostgreSQL: ${e.message}`); }
        }
    }
    h.is(h.fingerprint(), before, 'nothing was written while the database was down');
    const t0 = Date.now();
    const back = await h.waitFor(async () => {
        const r = await h.signedCall({ as: app, method: 'GET', path: h.url('/capabilities'), timeoutMs: 5000, unsigned: true });
        return r.status === 200;
    }, { timeoutMs: 30000, intervalMs: 200 });
    h.diag(`answered again ${Date.now() - t0} ms after PostgreSQL was started`);
    h.ok(back, 'the same gateway process answers again after PostgreSQL restarts');
    const created = await post(app, '/payment/create', createBody(merchant));
    h.is(created.status, 200, 'create works again');
    const e = proofFor(provider, pay);
    const wh = await webhook(provider, e);
    h.ok(wh.status === 200 && wh.json && wh.json.status === 'accepted', 'a webhook settles again', short(wh));
    h.is(h.sql(`SELECT status FROM payments WHERE txid = ${q(pay)}`), 'completed', 'the payment is completed');
}

// --- main -----------------------------------------------------------------------------------

import('../node/harness.js').then((harness) => harness.run(async () => {
    h = harness;
    oc = h.oc;
    env = h.env;
    cp = await import('node:child_process');
    fs = (await import('node:fs')).default;
    try {
        gatewayPriv = fs.readFileSync(process.env.OCGATE_PRIVATE_KEY_FILE, 'utf8').trim().toLowerCase();
    } catch { /* the leak check just has one string less */ }

    // Delivery worker off: fingerprints must see only what the request under test wrote.
    const gw = await h.startGateway({ OCGATE_WORKER: 'false' });
    h.diag(`gateway pid ${gw.pid}`);
    h.ok(true, 'gateway started');
    const w = {
        app: participant(['payment_app']),
        otherApp: participant(['payment_app']),
        merchant: participant(['merchant']),
        merchantOnly: participant(['merchant']),
        provider: participant(['settlement_provider']),
        provider2: participant(['settlement_provider']),
    };
    for (const [k, roles] of [['disabledApp', 'payment_app'], ['disabledMerchant', 'merchant'], ['disabledProvider', 'settlement_provider']]) {
        nextOcid += 1;
        const priv = oc.randomPrivateKey();
        cp.execFileSync(env.bin, ['participant', 'add', '--ocid', String(nextOcid), '--name', k, '--roles', roles,
            '--public-key', oc.publicKey(priv), '--disabled'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
        w[k] = { ocid: nextOcid, priv };
    }
    // Registered participants reach the gateway within a second (participants.js tests it):
    // wait (bounded) until one registered after all the others is known.
    const sentinel = participant(['merchant']);
    const known = await h.waitFor(async () => (await h.signedCall({ as: sentinel, method: 'GET', path: h.url('/capabilities'), unsigned: true })).status === 200,
        { timeoutMs: 5000, intervalMs: 50 });
    if (!known) throw new Error('the participants are still unknown to the gateway 5 s after registration');
    w.expiresAt = oc.nowSeconds() + 2;
    w.expiring = await createOk(w.app, w.merchant, { expiresAt: w.expiresAt });

    const sections = [
        ['authentication', () => authFailures(w)],
        ['payment create', () => createFailures(w)],
        ['proof checks', () => proofFailures(w)],
        ['JSON input', () => badJson(w)],
        ['routes', () => routes(w)],
        ['kept as exceptions', () => keptAsException(w)],
        ['payload too large', () => tooLarge(w)],
        ['internal error', () => internalError(w)],
        ['database unavailable', () => databaseDown(w, gw)],
    ];
    for (const [title, fn] of sections) {
        h.diag(`--- ${title}`);
        try {
            await fn();
        } catch (e) {
            h.ok(false, `section ${title} ran to its end`, e);
        }
        h.checkInvariants(`after ${title}`);
    }
    for (const [code, status] of Object.entries(ALL_CODES)) {
        h.ok(seen.has(code), `error code ${code} (${status}) was reached with a signed, well-formed answer`);
    }
    h.is(await gw.stop('SIGTERM'), 0, 'SIGTERM → ocgate exits 0');
}));
