// Merchant outages at scale (issue 8, item 3; design.md "a failing merchant never slows
// others"). Two runs against a fresh gateway each, same settings, same load:
//   baseline: OCG_TEST_DELIVERIES (default 1000) payments settled across 10 healthy merchants;
//   outage:   the same across 10 new merchants of which 3 misbehave for the whole run —
//             "down" (nothing listens: connection refused), "blackhole" (accepts TCP, never
//             answers: every attempt ends in the attempt timeout) and "flapping" (alternately
//             503 and accepted, in phases of FLAP_MS).
// Lag of a notification = the merchant's receipt of the accepted attempt − the webhook's 200
// answer. Prints the healthy merchants' p50/p99 lag in both runs and the ratio
// p99(outage) / p99(baseline), which should be at most 1.5; then checks each misbehaving
// merchant's deliveries ended per the schedule (down and blackhole: dead after exactly
// schedule+1 attempts spaced at least as scheduled; flapping: delivered by an attempt that
// met an up phase, or dead after all attempts failed), and that every healthy one was
// delivered. A script, not a meson test: it runs minutes and its ratio is a measurement
// (noisy on a shared machine). tests/reliability/run-merchant-outage.sh runs it.
//
// Environment: OCG_TEST_DELIVERIES (1000), OCG_TEST_CONCURRENCY (16), OCG_TEST_FLAP_MS (1500),
// OCG_TEST_MAX_RATIO (1.5, the bound the ratio check uses), OCG_TEST_BREAKER_FAILURES (1000:
// off; set e.g. 5 to measure with the circuit breaker on — dead letters then take far longer
// than the schedule, one trial per cooldown).

const num = (name, dflt) => {
    const v = process.env[`OCG_TEST_${name}`];
    if (v === undefined || v === '') return dflt;
    if (!/^[0-9]+(\.[0-9]+)?$/.test(v)) throw new Error(`OCG_TEST_${name} must be a number`);
    return Number(v);
};

const DELIVERIES = num('DELIVERIES', 1000);
const CONCURRENCY = num('CONCURRENCY', 16);
const FLAP_MS = num('FLAP_MS', 1500);
const MAX_RATIO = num('MAX_RATIO', 1.5);
const SCHEDULE_S = [1, 1, 1, 1];
const ATTEMPTS = SCHEDULE_S.length + 1;

const GATEWAY_ENV = {
    OCGATE_OUTBOUND_ALLOW_LOOPBACK: 'true',
    OCGATE_DELIVERY_SCHEDULE: SCHEDULE_S.map((s) => `${s}s`).join(','),
    OCGATE_DELIVERY_JITTER_PERCENT: '0',
    OCGATE_DELIVERY_TIMEOUT_MS: '2000',
    OCGATE_DELIVERY_CONNECT_TIMEOUT_MS: '500',
    OCGATE_DELIVERY_LEASE: '5s',
    OCGATE_DELIVERY_POLL_MS: '100',
    OCGATE_DELIVERY_PER_MERCHANT: '16',
    OCGATE_DELIVERY_BREAKER_FAILURES: String(num('BREAKER_FAILURES', 1000)),
    OCGATE_DELIVERY_BREAKER_COOLDOWN: '2s',
};

import('../node/harness.js').then((h) => h.run(async () => {
    const M = await import('../node/merchant.js');
    const L = await import('./load.mjs');
    const lib = await import('./lib.mjs');
    lib.init(h);
    const { env } = h;
    const http = await import('node:http');
    const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

    // A lean merchant: records when each notification arrived and answers as behaviour()
    // says, without checking signatures (tests/integration/delivery.js does that with
    // merchant.js). Two pure-JS signature checks per notification would cost this one Node
    // thread ~30 ms each and make the merchants, not the gateway, the thing measured.
    async function leanMerchant(behaviour) {
        const m = { receipts: [], sockets: new Set() };
        m.server = http.createServer((req, res) => {
            const chunks = [];
            req.on('data', (c) => chunks.push(c));
            req.on('end', () => {
                const at = Date.now();
                let proof = null;
                try { proof = JSON.parse(Buffer.concat(chunks).toString('utf8')).proof; } catch { proof = null; }
                const a = behaviour();
                m.receipts.push({ at, proof, id: req.headers['x-oc-delivery-id'], answered: a.status,
                    outcome: a.status === 200 ? 'accepted' : null });
                res.writeHead(a.status, { 'Content-Type': 'application/json' });
                res.end(a.body);
            });
        });
        m.server.on('connection', (s) => { m.sockets.add(s); s.on('close', () => m.sockets.delete(s)); });
        await new Promise((resolve) => m.server.listen(0, '127.0.0.1', resolve));
        m.url = `http://127.0.0.1:${m.server.address().port}`;
        m.close = () => new Promise((resolve) => { for (const s of m.sockets) s.destroy(); m.server.close(() => resolve()); });
        return m;
    }
    const accepted = () => ({ status: 200, body: '{"status":"accepted"}' });
    const app = h.newParticipant({ ocid: 53000, roles: ['payment_app'] });
    const provider = h.newParticipant({ ocid: 53001, roles: ['settlement_provider'] });
    let nextOcid = 53100;

    async function runPhase(label, kinds) {
        const gw = await h.startGateway(GATEWAY_ENV);
        const gatewayKey = await M.fetchGatewayKey({ port: env.port, base: env.base });
        const servers = [];
        const merchants = [];
        try {
            for (const kind of kinds) {
                nextOcid += 1;
                let url;
                let server = null;
                if (kind === 'healthy') {
                    server = await leanMerchant(accepted);
                } else if (kind === 'flapping') {
                    server = await leanMerchant(() => (Math.floor(Date.now() / FLAP_MS) % 2 === 0
                        ? { status: 503, body: '{"error":"flapping"}' } : accepted()));
                } else if (kind === 'blackhole') {
                    server = await M.startBlackHole();
                } else if (kind === 'down') {
                    const port = await h.freePort();   // nothing listens there
                    url = `http://127.0.0.1:${port}`;
                }
                if (server) servers.push(server);
                const p = h.newParticipant({ ocid: nextOcid, roles: ['merchant'], endpoint: url || server.url });
                merchants.push({ ...p, kind, server });
            }
            const known = await lib.waitKnown([provider, app, ...merchants]);
            h.ok(known, `${label}: participants known`);

            const recorder = new L.Recorder(`${env.dir}/merchant-outage-${label}.jsonl`);
            const t0 = Date.now();
            const load = L.startLoad({ app, provider, merchants, port: env.port, base: env.base, gatewayKey,
                gatewayOcid: env.ocid, recorder, concurrency: CONCURRENCY, total: DELIVERIES, verify: false });
            await load.done;
            const loadMs = Date.now() - t0;
            const settled = recorder.records.filter((r) => r.op === 'webhook' && r.status === 200 && r.code === 'accepted');
            const refused = recorder.records.filter((r) => r.status !== 200);
            h.is(settled.length, DELIVERIES, `${label}: ${DELIVERIES} payments settled (${loadMs} ms)`);
            if (refused.length) h.diag(`${label}: answers ${lib.summarize(recorder.records)}; first: ${refused.slice(0, 3).map((r) => JSON.stringify(r)).join(' ')}`);
            const ocids = merchants.map((m) => m.ocid).join(',');
            const open = () => Number(h.sql(`SELECT count(*) FROM deliveries WHERE merchant_ocid IN (${ocids})
                AND state IN ('pending', 'in_flight')`));
            const ended = await h.waitFor(() => open() === 0, { timeoutMs: 300000, intervalMs: 500 });
            h.ok(ended, `${label}: every delivery ended (none pending or in flight) within 300 s`);
            const endMs = Date.now() - t0;

            // Lag of each healthy merchant's notifications.
            const settledAt = new Map(settled.map((r) => [r.txid, r.t]));
            const lags = [];
            for (const m of merchants.filter((x) => x.kind === 'healthy')) {
                for (const r of m.server.receipts) {
                    if (r.answered === 200 && r.outcome === 'accepted' && r.proof && settledAt.has(r.proof.txid)) {
                        lags.push(r.at - settledAt.get(r.proof.txid));
                        settledAt.delete(r.proof.txid);   // the first accepted receipt counts
                    }
                }
            }
            const healthyCount = Number(h.sql(`SELECT count(*) FROM deliveries d WHERE merchant_ocid IN
                (${merchants.filter((x) => x.kind === 'healthy').map((m) => m.ocid).join(',')})`));
            const healthyDelivered = Number(h.sql(`SELECT count(*) FROM deliveries d WHERE state = 'delivered' AND merchant_ocid IN
                (${merchants.filter((x) => x.kind === 'healthy').map((m) => m.ocid).join(',')})`));
            h.ok(healthyDelivered === healthyCount && lags.length === healthyCount,
                `${label}: all ${healthyCount} healthy merchants' notifications delivered and received`,
                `delivered ${healthyDelivered}, received ${lags.length}`);
            const states = h.sql(`SELECT p.kind || ' ' || d.state || ' ' || count(*) FROM deliveries d
                JOIN (VALUES ${merchants.map((m) => `(${m.ocid}, ${q(m.kind)})`).join(',')}) AS p(ocid, kind)
                  ON p.ocid = d.merchant_ocid GROUP BY p.kind, d.state ORDER BY 1`).split('\n').join(', ');
            const stats = { p50: lib.percentile(lags, 50), p99: lib.percentile(lags, 99), max: Math.max(...lags), n: lags.length };
            h.diag(`${label}: load ${loadMs} ms, all ended after ${endMs} ms; healthy lag ms p50 ${stats.p50} p99 ${stats.p99} max ${stats.max} (n ${stats.n}); states: ${states}`);
            h.is(await gw.stop(), 0, `${label}: gateway exits 0 on SIGTERM`);
            return { merchants, stats };
        } finally {
            for (const s of servers) await s.close();
        }
    }

    // Each delivery of a misbehaving merchant ended as the schedule says.
    function checkSchedule(m) {
        const rows = h.sql(`SELECT d.id, d.state, d.attempts,
                coalesce(json_agg(json_build_object('a', a.attempt, 's', a.http_status,
                    't', (extract(epoch FROM a.started_at) * 1000)::bigint, 'ms', a.duration_ms) ORDER BY a.attempt)
                    FILTER (WHERE a.id IS NOT NULL), '[]')
              FROM deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
             WHERE d.merchant_ocid = ${m.ocid} GROUP BY d.id, d.state, d.attempts`).split('\n').filter(Boolean)
            .map((l) => { const [id, state, attempts, log] = l.split('|'); return { id, state, attempts: Number(attempts), log: JSON.parse(log) }; });
        const bad = [];
        for (const d of rows) {
            const gapsOk = d.log.every((a, i) => i === 0 || a.t - (d.log[i - 1].t + d.log[i - 1].ms) >= SCHEDULE_S[i - 1] * 1000 * 0.9 - 50);
            const failedAll = d.log.every((a) => a.s !== 200);
            let good;
            if (m.kind === 'flapping') {
                good = (d.state === 'delivered' && d.log.length >= 1 && d.log.at(-1).s === 200 && d.log.slice(0, -1).every((a) => a.s === 503))
                    || (d.state === 'dead' && d.attempts === ATTEMPTS && failedAll);
            } else {
                good = d.state === 'dead' && d.attempts === ATTEMPTS && d.log.length === ATTEMPTS && failedAll;
            }
            if (!good || !gapsOk) bad.push(`${d.id} ${d.state} attempts ${d.attempts} gapsOk ${gapsOk} ${JSON.stringify(d.log)}`);
        }
        const byState = rows.reduce((acc, d) => ({ ...acc, [d.state]: (acc[d.state] || 0) + 1 }), {});
        h.ok(rows.length > 0 && bad.length === 0,
            `outage: the ${rows.length} deliveries to the ${m.kind} merchant ended per the schedule (${JSON.stringify(byState)})`,
            bad.slice(0, 5).join('\n'));
        return byState;
    }

    const base = await runPhase('baseline', Array(10).fill('healthy'));
    const out = await runPhase('outage', ['down', 'blackhole', 'flapping', ...Array(7).fill('healthy')]);
    for (const m of out.merchants.filter((x) => x.kind !== 'healthy')) checkSchedule(m);
    const flapping = out.merchants.find((x) => x.kind === 'flapping');
    const flapDelivered = Number(h.sql(`SELECT count(*) FROM deliveries WHERE merchant_ocid = ${flapping.ocid} AND state = 'delivered'`));
    h.ok(flapDelivered > 0, `outage: the flapping merchant got notifications delivered in its up phases (${flapDelivered})`);
    const ratio = out.stats.p99 / base.stats.p99;
    h.diag(`RESULT healthy p99 lag: baseline ${base.stats.p99} ms, outage ${out.stats.p99} ms, ratio ${ratio.toFixed(2)} (bound ${MAX_RATIO})`);
    h.ok(ratio <= MAX_RATIO, `healthy merchants' p99 delivery lag with 3 of 10 merchants failing is at most ${MAX_RATIO}x the all-healthy run (${ratio.toFixed(2)})`);
    h.checkInvariants('after both runs');
    lib.ledgerCheck('after both runs');
}));
