// Merchant notifications end to end (design.md "outbound retries", "outbound safety",
// "wake-ups", "gateway proof"; invariant I3): a real `ocgate serve` with its delivery worker,
// fake merchants (tests/node/merchant.js) that verify every forwarded proof and every request
// signature with oc.js against the key the gateway publishes, and SQL checks that every
// attempt is recorded and every notification ends delivered, rejected or dead.
//   tests/integration/run-node.sh build/ocgate tests/integration/delivery.js [filter]
// The optional filter runs only the scenarios whose title contains it.
//
// The gateway runs with a short schedule (1s,1s,1s,1s: five attempts), a 1.5 s attempt
// timeout and a 3 s lease, so the whole file stays within a few minutes.
//
// Valid as CommonJS and as an ES module (no require, no top-level await), like smoke.js.

let h;
let oc;
let env;
let M;        // tests/node/merchant.js
let cp;       // node:child_process
let pathMod;  // node:path

const SCHEDULE_MS = [1000, 1000, 1000, 1000];
const ATTEMPTS = SCHEDULE_MS.length + 1;
const TIMEOUT_MS = 1500;
const LEASE_S = 3;

let baseEnv;          // the gateway's delivery settings (filled in main)
let gw;               // the main gateway
let gatewayKey;       // as published in metadata.json
let app;
let provider;
const allDeliveries = new Set();

// --- participants and payments ---------------------------------------------------------------

let nextOcid = 40000;

function participant(roles, opts = {}) {
    nextOcid += 1;
    return h.newParticipant({ ocid: nextOcid, roles, ...opts });
}

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const short = (res) => (res ? `${res.status} ${String(res.body).slice(0, 300)}` : 'no response');

// Waits (bounded) until the gateway on port knows every participant given.
async function sync(port, ...ps) {
    for (const p of ps) {
        const known = await h.waitFor(async () => (await h.signedCall({ as: p, method: 'GET',
            path: h.url('/capabilities'), port, unsigned: true })).status === 200, { timeoutMs: 5000, intervalMs: 50 });
        if (!known) throw new Error(`participant ${p.ocid} unknown to the gateway on ${port} after 5 s`);
    }
}

let proofSeq = 0;

// Creates a payment to merchant and settles it by the provider's webhook; returns
// { txid, id (the delivery), settledAt }.
// With lookup: false the delivery id is left for the caller to fetch in bulk (psql runs
// synchronously and would stall the fake merchants in this same process).
async function pay(merchant, { port = gw.port, amount = '15.00', lookup = true } = {}) {
    const create = await h.signedCall({ as: app, method: 'POST', path: h.url('/payment/create'), port,
        body: JSON.stringify({ to: merchant.ocid, amount, currency: 'USD', reference: `ord_${proofSeq + 1}` }) });
    if (create.status !== 200 || !create.json || !create.json.txid) {
        throw new Error(`payment/create → ${short(create)}`);
    }
    const txid = create.json.txid;
    proofSeq += 1;
    const proof = oc.makeProof({
        txid: `dtx_${proofSeq}_${oc.newNonce().slice(4, 14)}`, issuer: provider.ocid,
        from: { ocid: 4242, reference: `wallet_${proofSeq}` },
        to: { ocid: Number(env.ocid), reference: txid }, amount, currency: 'USD',
    });
    const res = await h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'), port,
        body: JSON.stringify(oc.signProof(provider.priv, proof)) });
    if (res.status !== 200) throw new Error(`transfer/webhook → ${short(res)}`);
    const settledAt = Date.now();
    if (!lookup) return { txid, settledAt };
    const id = h.sql(`SELECT id FROM deliveries WHERE payment_txid = ${q(txid)}`);
    if (!id) throw new Error(`no delivery row for completed payment ${txid}`);
    allDeliveries.add(id);
    return { txid, id, settledAt };
}

// Runs fn over items in batches of width (bounded concurrency).
async function inBatches(items, width, fn) {
    const out = [];
    for (let i = 0; i < items.length; i += width) {
        out.push(...await Promise.all(items.slice(i, i + width).map(fn)));
    }
    return out;
}

// --- database views --------------------------------------------------------------------------

function row(id) {
    const line = h.sql(`SELECT state || '|' || attempts FROM deliveries WHERE id = ${q(id)}`);
    const [state, attempts] = line.split('|');
    return { state, attempts: Number(attempts) };
}

function stateOf(id) {
    return row(id).state;
}

// [{attempt, status, error, excerpt, durationMs, startedMs}] in attempt order.
function attemptsOf(id) {
    const out = h.sql(`SELECT json_agg(json_build_object('attempt', attempt, 'status', http_status,
        'error', error, 'excerpt', response_excerpt, 'durationMs', duration_ms,
        'startedMs', (extract(epoch FROM started_at) * 1000)::bigint) ORDER BY attempt)
        FROM delivery_attempts WHERE delivery_id = ${q(id)}`);
    return out ? JSON.parse(out) : [];
}

async function waitState(id, want, timeoutMs) {
    const got = await h.waitFor(() => (stateOf(id) === want ? want : false), { timeoutMs, intervalMs: 50 });
    return h.ok(got === want, `delivery ${id.slice(0, 8)} reaches ${want} within ${timeoutMs} ms`,
        `state ${stateOf(id)}, attempts ${JSON.stringify(attemptsOf(id))}`);
}

// --- the ocgate CLI --------------------------------------------------------------------------

function cli(...args) {
    const r = cp.spawnSync(env.bin, args, { env: process.env, encoding: 'utf8', timeout: 30000 });
    return { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

// --- scenarios -------------------------------------------------------------------------------

const scenarios = [];
const scenario = (title, fn) => scenarios.push({ title, fn });

async function merchantFor(opts = {}) {
    const m = await M.startMerchant({ gatewayKey, gatewayOcid: env.ocid, ...opts });
    const p = participant(['merchant'], { endpoint: m.url, form: opts.form });
    m.participant = p;
    return m;
}

function checkReceipt(r, m, name) {
    h.ok(r && r.requestOk, `${name}: X-OC-* request signature verifies with the published gateway key`, r && r.why);
    h.ok(r && r.proofOk, `${name}: forwarded proof signature verifies (${m.form} form, gateway key, low S, v)`, r && r.why);
}

scenario('1 delivered at the first attempt (strict merchant under a base path, legacy merchant)', async () => {
    const m = await merchantFor({ basePath: '/hooks/oc' });
    const legacy = await merchantFor({ form: 'legacy' });
    await sync(gw.port, m.participant, legacy.participant);
    const before = Date.now();
    const p = await pay(m.participant);
    const pl = await pay(legacy.participant);
    await waitState(p.id, 'delivered', 5000);
    await waitState(pl.id, 'delivered', 5000);
    const rs = m.of(p.id);
    h.is(rs.length, 1, 'strict merchant: exactly one request');
    const r = rs[0] || {};
    checkReceipt(r, m, 'strict merchant');
    h.is(r.path, '/hooks/oc/transfer/webhook', 'POSTed to <endpoint>/transfer/webhook (the signed path includes the endpoint path)');
    h.is(r.attempt, 1, 'X-OC-Delivery-Attempt: 1');
    h.is(r.id, p.id, 'X-OC-Delivery-Id is the outbox row id');
    h.ok(/^application\/json/.test(r.headers && r.headers['content-type']), 'Content-Type application/json', r.headers && r.headers['content-type']);
    h.ok(r.at - p.settledAt < 1000, 'woken in-process: delivered within 1 s of the settlement', `${r.at - p.settledAt} ms`);
    const stored = h.sql(`SELECT gateway_proof FROM payments WHERE txid = ${q(p.txid)}`);
    let canon = null;
    try { canon = oc.canonicalStrict(r.proof); } catch { canon = null; }
    h.is(canon, stored, 'the forwarded proof is the gateway proof fixed at settlement');
    h.same(r.proof && r.proof.to, { ocid: m.participant.ocid, reference: `ord_${proofSeq - 1}` },
        'proof.to is the merchant and its create reference');
    h.ok(r.proof && r.proof.issuer === Number(env.ocid), 'proof.issuer is the gateway');
    h.same(r.body && Object.keys(JSON.parse(r.body)).sort(), ['proof', 'signature'], 'body is exactly {proof, signature}');
    const v = await h.signedCall({ as: m.participant, method: 'GET', path: h.url(`/verify/${p.txid}`) });
    h.ok(v.json && v.json.signature === r.signature,
        'strict merchant: the signature equals /verify\'s (deterministic, same key and form)', short(v));

    const rl = legacy.of(pl.id)[0];
    checkReceipt(rl, legacy, 'legacy merchant');
    h.ok(rl && !rl.proofStrictOk, 'legacy merchant: the proof is signed in the legacy form, not the strict one');

    h.same(row(p.id), { state: 'delivered', attempts: 1 }, 'DB: delivered after 1 attempt');
    const a = attemptsOf(p.id);
    h.ok(a.length === 1 && a[0].attempt === 1 && a[0].status === 200 && a[0].error === null &&
        a[0].excerpt === '{"status":"accepted"}' && a[0].durationMs >= 0 && a[0].durationMs < 1500 &&
        a[0].startedMs >= before - 1000 && a[0].startedMs <= Date.now(),
    'DB: attempt 1 recorded with start, duration, HTTP 200, no error, the answer as excerpt', JSON.stringify(a));
    await m.close();
    await legacy.close();
});

scenario('2 fails twice, then accepted: attempts and spacing follow the schedule', async () => {
    const m = await merchantFor({ behaviour: M.failTimes(500, 2) });
    await sync(gw.port, m.participant);
    const p = await pay(m.participant);
    await waitState(p.id, 'delivered', 8000);
    const rs = m.of(p.id);
    h.same(rs.map((r) => r.attempt), [1, 2, 3], 'three requests, X-OC-Delivery-Attempt 1, 2, 3');
    rs.forEach((r, i) => checkReceipt(r, m, `attempt ${i + 1}`));
    h.is(new Set(rs.map((r) => r.nonce)).size, 3, 'each attempt has a fresh nonce');
    h.ok(rs.every((r) => r.body === rs[0].body), 'the same body every time (deterministic signature)');
    for (let i = 1; i < rs.length; i++) {
        const gap = rs[i].at - rs[i - 1].at;
        const want = SCHEDULE_MS[i - 1];
        h.ok(gap >= want * 0.9 - 60 && gap <= want * 1.1 + 600,
            `gap before attempt ${i + 1} is the scheduled ${want} ms ± 10 % (+ dispatch)`, `${gap} ms`);
    }
    h.same(row(p.id), { state: 'delivered', attempts: 3 }, 'DB: delivered after 3 attempts');
    const a = attemptsOf(p.id);
    h.same(a.map((x) => [x.attempt, x.status]), [[1, 500], [2, 500], [3, 200]], 'DB: attempts 1-3 with their HTTP status');
    h.ok(a[0] && /500/.test(a[0].error) && /fail 1/.test(a[0].excerpt || ''), 'DB: a failed attempt keeps its error and the answer excerpt', JSON.stringify(a[0]));
    await m.close();
});

scenario('3 always 500: dead after the last attempt, then `ocgate delivery retry` delivers it', async () => {
    const m = await merchantFor({ behaviour: M.status(500, 'broken\u0007\r\nstack trace') });
    await sync(gw.port, m.participant);
    const p = await pay(m.participant);
    await waitState(p.id, 'dead', 12000);
    await h.sleep(1500);
    h.is(m.of(p.id).length, ATTEMPTS, `exactly ${ATTEMPTS} requests, none after dead`);
    const a = attemptsOf(p.id);
    h.same(a.map((x) => x.attempt), [1, 2, 3, 4, 5], 'DB: every attempt recorded');
    h.ok(a.every((x) => x.status === 500 && x.excerpt === 'brokenstack trace'),
        'DB: status 500 and the excerpt without control characters', JSON.stringify(a.map((x) => x.excerpt)));
    h.ok(/last attempt/.test(h.sql(`SELECT last_error FROM deliveries WHERE id = ${q(p.id)}`)),
        'DB: last_error says the schedule was used up');

    const list = cli('delivery', 'list', '--state', 'dead', '--merchant', String(m.participant.ocid), '--json');
    let listed = null;
    try { listed = JSON.parse(list.stdout); } catch { listed = null; }
    h.ok(list.status === 0 && Array.isArray(listed) && listed.length === 1 && listed[0].id === p.id &&
        listed[0].state === 'dead' && listed[0].attempts === ATTEMPTS,
    'ocgate delivery list --state dead --merchant N --json shows it', `${list.status} ${list.stdout} ${list.stderr}`);

    m.behave(M.accept());
    const retry = cli('delivery', 'retry', p.id);
    h.ok(retry.status === 0 && retry.stdout.includes(p.id), 'ocgate delivery retry ID → exit 0', `${retry.status} ${retry.stdout} ${retry.stderr}`);
    await waitState(p.id, 'delivered', 3000);
    const last = m.of(p.id).at(-1);
    h.ok(last && last.attempt === ATTEMPTS + 1 && last.answered === 200, `the replay is attempt ${ATTEMPTS + 1} and is accepted`);
    checkReceipt(last, m, 'replay');

    const again = cli('delivery', 'retry', p.id);
    h.ok(again.status === 1 && /delivered/.test(again.stderr) && /only dead or rejected/.test(again.stderr),
        'retry of a delivered one → exit 1 with a clear message', `${again.status} ${again.stderr}`);
    const show = cli('delivery', 'show', p.id, '--json');
    let shown = null;
    try { shown = JSON.parse(show.stdout); } catch { shown = null; }
    h.ok(show.status === 0 && shown && shown.state === 'delivered' && shown.attempts === ATTEMPTS + 1 &&
        Array.isArray(shown.attemptLog) && shown.attemptLog.length === ATTEMPTS + 1 &&
        shown.attemptLog.at(-1).httpStatus === 200 && shown.attemptLog[0].httpStatus === 500 &&
        typeof shown.attemptLog[0].startedAtMs === 'number' && typeof shown.attemptLog[0].durationMs === 'number',
    'ocgate delivery show ID --json has every attempt', `${show.status} ${show.stdout.slice(0, 500)} ${show.stderr}`);
    const text = cli('delivery', 'show', p.id);
    h.ok(text.status === 0 && text.stdout.includes('delivered') && text.stdout.includes('brokenstack trace'),
        'ocgate delivery show ID (text) exits 0', text.stdout.slice(0, 400));
    const unknown = cli('delivery', 'retry', '00000000-0000-4000-8000-000000000000');
    h.ok(unknown.status === 1 && /no delivery/.test(unknown.stderr), 'retry of an unknown id → exit 1', unknown.stderr);
    const badId = cli('delivery', 'retry', 'not-a-uuid');
    h.is(badId.status, 2, 'retry of a malformed id → exit 2 (usage)');
    h.is(cli('delivery', 'list', '--state', 'lost').status, 2, 'list --state with an unknown state → exit 2');
    h.is(cli('delivery', 'frobnicate').status, 2, 'unknown delivery command → exit 2');
    await m.close();
});

scenario('4 rejected stops retrying', async () => {
    const m = await merchantFor({ behaviour: M.reject() });
    await sync(gw.port, m.participant);
    const p = await pay(m.participant);
    await waitState(p.id, 'rejected', 5000);
    await h.sleep(2500);
    h.is(m.of(p.id).length, 1, 'one request only, none after rejected');
    const a = attemptsOf(p.id);
    h.ok(a.length === 1 && a[0].status === 200 && /reject/.test(a[0].error || '') && a[0].excerpt === '{"status":"rejected"}',
        'DB: attempt 1 with HTTP 200, error saying rejected, the answer as excerpt', JSON.stringify(a));
    h.same(row(p.id), { state: 'rejected', attempts: 1 }, 'DB: rejected after 1 attempt');
    await m.close();
});

scenario('5 a merchant slower than the timeout: timeout recorded, retried', async () => {
    const m = await merchantFor({
        behaviour: (r) => (r.attempt === 1 ? { status: 200, body: '{"status":"accepted"}', delayMs: TIMEOUT_MS + 1500 }
            : { status: 200, body: '{"status":"accepted"}' }),
    });
    await sync(gw.port, m.participant);
    const p = await pay(m.participant);
    await waitState(p.id, 'delivered', 8000);
    const a = attemptsOf(p.id);
    h.ok(a.length === 2 && a[0].status === null && /timeout/i.test(a[0].error || '') &&
        a[0].durationMs >= TIMEOUT_MS - 100 && a[0].durationMs < TIMEOUT_MS + 1000,
    'DB: attempt 1 is a timeout after about delivery_timeout_ms, without HTTP status', JSON.stringify(a[0]));
    h.ok(a[1] && a[1].status === 200, 'DB: attempt 2 accepted', JSON.stringify(a[1]));
    const rs = m.of(p.id);
    h.ok(rs.length === 2 && rs[0].aborted && !rs[1].aborted, 'the merchant saw attempt 1 abandoned and attempt 2 answered');
    await m.close();
});

scenario('6 HTTPS: the test CA is trusted, a certificate for another name is refused', async () => {
    const good = await merchantFor({ tls: pki.good });
    const wrong = await merchantFor({ tls: pki.wrong });
    await sync(gw.port, good.participant, wrong.participant);
    h.ok(good.url.startsWith('https://127.0.0.1:'), 'merchant endpoint is https://127.0.0.1:<port>');
    const pg = await pay(good.participant);
    const pw = await pay(wrong.participant);
    await waitState(pg.id, 'delivered', 5000);
    checkReceipt(good.of(pg.id)[0], good, 'HTTPS merchant');
    const first = await h.waitFor(() => attemptsOf(pw.id)[0], { timeoutMs: 5000, intervalMs: 50 });
    h.ok(first && first.status === null && /TLS/.test(first.error || ''),
        'wrong host name: attempt 1 fails with a TLS error recorded', JSON.stringify(first));
    h.is(wrong.receipts.length, 0, 'wrong host name: no request was sent over the refused connection');
    h.ok(stateOf(pw.id) !== 'delivered', 'wrong host name: not delivered');
    await good.close();
    // `wrong` stays up: its delivery runs out of attempts (checked with all the others).
    wrongTls = wrong;
});
let wrongTls = null;
let pki = null;

scenario('7 429 with Retry-After: the next attempt waits that long (the attempt counts)', async () => {
    const m = await merchantFor({ behaviour: M.failTimes(() => M.rateLimited(2)(), 1) });
    await sync(gw.port, m.participant);
    const p = await pay(m.participant);
    await waitState(p.id, 'delivered', 6000);
    const rs = m.of(p.id);
    const gap = rs.length === 2 ? rs[1].at - rs[0].at : -1;
    h.ok(rs.length === 2 && gap >= 1950 && gap <= 2800, 'attempt 2 comes Retry-After: 2 s later, not the scheduled 1 s', `${rs.length} requests, gap ${gap} ms`);
    const a = attemptsOf(p.id);
    h.ok(a.length === 2 && a[0].status === 429 && /Retry-After 2/.test(a[0].error || ''), 'DB: attempt 1 is 429 with its Retry-After', JSON.stringify(a[0]));
    await m.close();
});

scenario('8 410 → dead at once; other 4xx → dead after the third attempt', async () => {
    const m410 = await merchantFor({ behaviour: M.gone() });
    const m404 = await merchantFor({ behaviour: M.status(404) });
    await sync(gw.port, m410.participant, m404.participant);
    const p410 = await pay(m410.participant);
    const p404 = await pay(m404.participant);
    await waitState(p410.id, 'dead', 4000);
    await waitState(p404.id, 'dead', 8000);
    await h.sleep(1300);
    h.is(m410.of(p410.id).length, 1, '410: one request');
    h.ok(/410/.test(attemptsOf(p410.id)[0]?.error || ''), '410: error recorded');
    h.same(m404.of(p404.id).map((r) => r.attempt), [1, 2, 3], '404: three requests, then dead');
    await m410.close();
    await m404.close();
});

scenario('9 a merchant that never answers does not delay another', async () => {
    const hole = await M.startBlackHole();
    const deadM = participant(['merchant'], { endpoint: hole.url });
    const m = await merchantFor();
    await sync(gw.port, deadM, m.participant);
    const stuck = await inBatches([...Array(10).keys()], 10, () => pay(deadM));
    await h.waitFor(() => hole.connections.length >= 1, { timeoutMs: 3000, intervalMs: 20 });
    const p = await pay(m.participant);
    const got = await h.waitFor(() => m.accepted(p.id)[0], { timeoutMs: 3000, intervalMs: 10 });
    const firstHole = hole.connections[0];
    h.ok(got && got.at < firstHole + TIMEOUT_MS - 100,
        'the healthy merchant\'s notification arrives while the silent merchant\'s attempts are still waiting for their timeout',
        got ? `healthy at +${got.at - firstHole} ms after the first silent connection` : 'not delivered');
    h.ok(got && got.at - p.settledAt < 1000, 'and within 1 s of its settlement', got && `${got.at - p.settledAt} ms`);
    const early = hole.connections.filter((t) => t - firstHole < TIMEOUT_MS - 200).length;
    h.ok(early <= 8, 'at most delivery_per_merchant (8) attempts at once to the silent merchant', `${early} connections`);
    const first = await h.waitFor(() => attemptsOf(stuck[0].id)[0], { timeoutMs: 4000, intervalMs: 50 });
    h.ok(first && /timeout/i.test(first.error || ''), 'the silent merchant\'s attempts end in a recorded timeout', JSON.stringify(first));
    await m.close();
    blackHole = hole; // closed at the end, once its deliveries are dead
});
let blackHole = null;

scenario('10 the gateway is killed with attempts in flight: nothing is lost', async () => {
    const m = await merchantFor({ behaviour: M.hold() });
    await sync(gw.port, m.participant);
    const ps = await inBatches([...Array(5).keys()], 5, () => pay(m.participant));
    const all = await h.waitFor(() => ps.every((p) => m.of(p.id).length >= 1), { timeoutMs: 5000, intervalMs: 20 });
    h.ok(all, 'the merchant holds attempt 1 of all 5 deliveries');
    h.is(await gw.stop('SIGKILL'), 137, 'gateway killed with SIGKILL');
    // The held requests stay held: their connections died with the gateway, and answering
    // them now could race Node's notice of that.
    m.behave(M.accept());
    h.ok(ps.every((p) => stateOf(p.id) === 'in_flight'), 'DB: the 5 rows are left in_flight under the dead worker\'s lease');
    gw = await h.startGateway(baseEnv);
    h.ok(true, 'gateway restarted');
    for (const p of ps) await waitState(p.id, 'delivered', (LEASE_S + 4) * 1000);
    h.ok(ps.every((p) => m.of(p.id).length >= 1 && m.accepted(p.id).length === 1),
        'every delivery id was received, and accepted exactly once',
        ps.map((p) => `${p.id}: ${m.of(p.id).map((r) => `#${r.attempt} ${r.answered}${r.aborted ? ' aborted' : ''}`).join(', ')}`).join('\n'));
    const a = attemptsOf(ps[0].id);
    h.ok(a.length === 2 && a[0].attempt === 1 && /outcome unknown/.test(a[0].error || '') && a[1].status === 200,
        'DB: the lost attempt is recorded as outcome unknown, the retaken one as delivered', JSON.stringify(a));
    await m.close();
});

scenario('11 two gateways on one database: 500 notifications, each accepted exactly once', async () => {
    // A retry after a timeout may legitimately deliver twice (the merchant may have acted on
    // the first attempt). The fake merchant shares this process with a client signing 1000
    // requests, so give attempts ample time: any second request is then a double send.
    await waitAllFinal(30000);
    await gw.stop('SIGTERM');
    const fast = { ...baseEnv, OCGATE_DELIVERY_TIMEOUT_MS: 15000, OCGATE_DELIVERY_LEASE: 30 };
    gw = await h.startGateway(fast);
    const port2 = await h.freePort();
    const gw2 = await h.startGateway({ ...fast, OCGATE_LISTEN: `127.0.0.1:${port2}` });
    try {
        const m = await merchantFor();
        await sync(gw.port, m.participant);
        await sync(gw2.port, m.participant, app, provider);
        const N = 500;
        const t0 = Date.now();
        const ps = await inBatches([...Array(N).keys()], 50,
            (i) => pay(m.participant, { port: i % 2 ? gw2.port : gw.port, lookup: false }));
        h.diag(`${N} payments settled in ${Date.now() - t0} ms`);
        const ids = new Map(h.sql(`SELECT payment_txid || ' ' || id FROM deliveries
            WHERE merchant_ocid = ${m.participant.ocid}`).split('\n').map((l) => l.split(' ')));
        for (const p of ps) {
            p.id = ids.get(p.txid);
            if (p.id) allDeliveries.add(p.id);
        }
        h.ok(ps.every((p) => p.id), `I3: ${N} completed payments, ${N} outbox rows`);
        const done = await h.waitFor(() => ps.every((p) => m.accepted(p.id).length >= 1), { timeoutMs: 60000, intervalMs: 100 });
        h.ok(done, `all ${N} notifications accepted within 60 s`, `${new Set(m.receipts.map((r) => r.id)).size} distinct received`);
        await h.sleep(1000);
        const twice = ps.filter((p) => m.accepted(p.id).length !== 1);
        h.ok(twice.length === 0, 'every delivery id accepted exactly once', twice.slice(0, 5).map((p) => `${p.id}: ${m.accepted(p.id).length}`).join('\n'));
        h.is(m.receipts.length, N, `exactly ${N} requests reached the merchant (no double send)`);
        h.ok(m.receipts.every((r) => r.requestOk && r.proofOk), 'every request and proof signature verifies');
        const states = h.sql(`SELECT state || ':' || count(*) || ':' || max(attempts) FROM deliveries
            WHERE merchant_ocid = ${m.participant.ocid} GROUP BY state`);
        h.is(states, `delivered:${N}:1`, `DB: ${N} delivered, each after 1 attempt`);
        const workers = Number(h.sql(`SELECT count(DISTINCT worker) FROM deliveries WHERE merchant_ocid = ${m.participant.ocid}`));
        h.is(workers, 2, 'both instances\' workers delivered some');
        await m.close();
    } finally {
        h.is(await gw2.stop('SIGTERM'), 0, 'gateway 2 exits 0 on SIGTERM');
    }
});

// --- phase 2: other configurations, one gateway at a time -------------------------------------

scenario('12 per-merchant cap and circuit breaker', async () => {
    // Earlier notifications finish under the configuration they started with.
    await waitAllFinal(30000);
    await gw.stop('SIGTERM');
    gw = await h.startGateway({ ...baseEnv, OCGATE_DELIVERY_PER_MERCHANT: 2, OCGATE_DELIVERY_BREAKER_FAILURES: 2,
        OCGATE_DELIVERY_BREAKER_COOLDOWN: 3 });
    const capped = await merchantFor({ behaviour: M.sleep(500) });
    const failing = await merchantFor({ behaviour: M.status(503) });
    await sync(gw.port, capped.participant, failing.participant);
    // Delivery ids fetched in one query afterwards: a synchronous psql per payment would
    // stall the fake merchants (same process) past the 1.5 s attempt timeout on a busy
    // machine, and an attempt the gateway abandoned still counts as open at the merchant.
    const ps = await inBatches([...Array(6).keys()], 6, () => pay(capped.participant, { lookup: false }));
    const pf = await pay(failing.participant, { lookup: false });
    const ids = new Map(h.sql(`SELECT payment_txid || ' ' || id FROM deliveries
        WHERE merchant_ocid IN (${capped.participant.ocid}, ${failing.participant.ocid})`).split('\n').map((l) => l.split(' ')));
    for (const p of [...ps, pf]) {
        p.id = ids.get(p.txid);
        if (p.id) allDeliveries.add(p.id);
    }
    for (const p of ps) await waitState(p.id, 'delivered', 8000);
    h.is(capped.maxOpen, 2, 'never more than delivery_per_merchant (2) requests at once to one merchant');
    await h.waitFor(() => failing.of(pf.id).length >= 3, { timeoutMs: 8000, intervalMs: 50 });
    const rs = failing.of(pf.id);
    const g1 = rs.length >= 2 ? rs[1].at - rs[0].at : -1;
    const g2 = rs.length >= 3 ? rs[2].at - rs[1].at : -1;
    h.ok(g1 >= 850 && g1 < 1800, 'before the circuit opens, the schedule applies', `${g1} ms`);
    h.ok(g2 >= 2850, 'after 2 consecutive failures the merchant is skipped for the 3 s cooldown, then one trial attempt', `${g2} ms`);
    await waitState(pf.id, 'dead', 15000);
    await capped.close();
    await failing.close();
});

scenario('13 `ocgate worker` runs the worker without a listener', async () => {
    await gw.stop('SIGTERM');
    gw = await h.startGateway({ ...baseEnv, OCGATE_WORKER: 'false' });
    const m = await merchantFor();
    await sync(gw.port, m.participant);
    const p = await pay(m.participant);
    await h.sleep(1500);
    h.same(row(p.id), { state: 'pending', attempts: 0 }, 'with worker = false, serve sends nothing');
    h.is(m.receipts.length, 0, 'and the merchant saw nothing');
    const log = pathMod.join(env.dir, 'worker.log');
    const fs = await import('node:fs');
    const fd = fs.openSync(log, 'a', 0o600);
    const workerEnv = { ...process.env };
    for (const [k, v] of Object.entries(baseEnv)) workerEnv[k] = String(v);
    const proc = cp.spawn(env.bin, ['worker'], { env: workerEnv, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    fs.appendFileSync(pathMod.join(env.dir, 'pids'), `${proc.pid}\n`);
    const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : 15))));
    try {
        await waitState(p.id, 'delivered', 5000);
        checkReceipt(m.of(p.id)[0], m, '`ocgate worker`');
    } finally {
        proc.kill('SIGTERM');
        let timer;
        const code = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r('late'), 5000); })]);
        clearTimeout(timer);
        if (code === 'late') proc.kill('SIGKILL');
        h.is(code, 0, '`ocgate worker` exits 0 on SIGTERM');
    }
    await m.close();
});

scenario('14 SSRF guard: loopback endpoints refused unless allowed', async () => {
    await gw.stop('SIGTERM');
    gw = await h.startGateway({ ...baseEnv, OCGATE_OUTBOUND_ALLOW_LOOPBACK: 'false' });
    const m = await merchantFor();
    await sync(gw.port, m.participant);
    const p = await pay(m.participant);
    const first = await h.waitFor(() => attemptsOf(p.id)[0], { timeoutMs: 5000, intervalMs: 50 });
    h.ok(first && first.status === null && /block/i.test(first.error || ''),
        'the attempt to 127.0.0.1 is refused and recorded as blocked', JSON.stringify(first));
    await waitState(p.id, 'dead', 8000);
    h.is(m.receipts.length, 0, 'nothing reached the merchant');
    await m.close();
});

// --- final checks ----------------------------------------------------------------------------

function unfinished() {
    if (!allDeliveries.size) return '';
    return h.sql(`SELECT id || ' ' || state FROM deliveries WHERE id IN (${[...allDeliveries].map(q).join(',')})
        AND state NOT IN ('delivered', 'rejected', 'dead')`);
}

async function waitAllFinal(timeoutMs) {
    return h.waitFor(() => unfinished() === '', { timeoutMs, intervalMs: 200 });
}

async function finalChecks() {
    const ids = [...allDeliveries];
    const list = ids.map(q).join(',');
    const settled = await waitAllFinal(30000);
    h.ok(settled, `I3: all ${ids.length} notifications end delivered, rejected or dead`, unfinished());
    const gaps = h.sql(`SELECT d.id || ': attempts ' || d.attempts || ', rows ' || count(a.id)
            || ', numbers ' || coalesce(string_agg(a.attempt::text, ',' ORDER BY a.attempt), '')
          FROM deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
         WHERE d.id IN (${list})
         GROUP BY d.id, d.attempts
        HAVING count(a.id) <> d.attempts OR min(a.attempt) <> 1 OR max(a.attempt) <> d.attempts`);
    h.ok(gaps === '', 'every attempt has exactly one delivery_attempts row, numbered 1..attempts', gaps);
    const bad = h.sql(`SELECT a.delivery_id || ' #' || a.attempt FROM delivery_attempts a
         WHERE a.delivery_id IN (${list})
           AND (a.started_at IS NULL OR a.duration_ms < 0 OR (a.http_status IS NULL AND a.error IS NULL)
                OR (a.http_status BETWEEN 200 AND 299 AND a.response_excerpt IS NULL)
                OR octet_length(a.response_excerpt) > 256 OR a.response_excerpt ~ '[[:cntrl:]]')`);
    h.ok(bad === '', 'every attempt row has a start time, a duration, a status or an error, and a clean excerpt of at most 256 bytes', bad);
    const lastErr = h.sql(`SELECT id FROM deliveries WHERE id IN (${list}) AND state = 'dead' AND last_error IS NULL`);
    h.ok(lastErr === '', 'every dead notification says why (last_error)', lastErr);
    h.checkInvariants('delivery');
}

// --- main ------------------------------------------------------------------------------------

import('../node/harness.js').then((harness) => harness.run(async () => {
    h = harness;
    oc = h.oc;
    env = h.env;
    M = await import('../node/merchant.js');
    cp = await import('node:child_process');
    pathMod = await import('node:path');
    const filter = process.argv[2] || '';

    pki = M.makeTestPki(pathMod.join(env.dir, 'pki'));
    baseEnv = {
        OCGATE_WORKER: 'true',
        OCGATE_OUTBOUND_ALLOW_LOOPBACK: 'true',
        OCGATE_DELIVERY_SCHEDULE: SCHEDULE_MS.map((ms) => `${ms / 1000}s`).join(','),
        OCGATE_DELIVERY_JITTER_PERCENT: '10',
        OCGATE_DELIVERY_TIMEOUT_MS: String(TIMEOUT_MS),
        OCGATE_DELIVERY_CONNECT_TIMEOUT_MS: '1000',
        OCGATE_DELIVERY_LEASE: String(LEASE_S),
        OCGATE_DELIVERY_POLL_MS: '200',
        OCGATE_DELIVERY_BREAKER_FAILURES: '50',
        OCGATE_DELIVERY_CA_FILE: pki.ca,
    };
    gw = await h.startGateway(baseEnv);
    gatewayKey = await M.fetchGatewayKey({ port: gw.port, base: env.base });
    h.is(gatewayKey, env.pubkey, 'the merchants verify against config.publicKey of the gateway\'s metadata.json');
    app = participant(['payment_app']);
    provider = participant(['settlement_provider']);
    await sync(gw.port, app, provider);

    for (const s of scenarios) {
        if (filter && !s.title.includes(filter)) continue;
        h.diag(`--- ${s.title}`);
        const t0 = Date.now();
        try {
            await s.fn();
        } catch (e) {
            h.ok(false, `${s.title}: ran to its end`, e);
        }
        h.diag(`    (${Date.now() - t0} ms)`);
    }
    try {
        if (allDeliveries.size) await finalChecks();
    } finally {
        if (wrongTls) await wrongTls.close();
        if (blackHole) await blackHole.close();
    }
    h.is(await gw.stop('SIGTERM'), 0, 'gateway exits 0 on SIGTERM');
}));
