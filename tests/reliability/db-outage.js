// Database outage mid-load (issue 8, item 2): while the load driver (load.mjs) creates and
// settles payments, PostgreSQL is stopped twice under the running gateway — once with
// `pg_ctl -m fast` (sessions terminated, open transactions rolled back) and once with
// `-m immediate` (no shutdown checkpoint: crash recovery on restart) — kept down for a few
// seconds, then started again. Checks:
//   - while it is down every request is answered, 503 UNAVAILABLE (signed), within the
//     configured db_timeout_ms plus a margin: no 500, no dropped connection, no hang, and the
//     gateway process never exits;
//   - after each restart the same process answers 200 again by itself, within a bound;
//   - nothing half-written: every 2xx-answered request is committed, every webhook answered
//     otherwise and sent again is 200 accepted and stored once, I1-I4 hold, `ocgate ledger
//     check` passes, and every delivery ends delivered.
//
//   tests/integration/run-node.sh build/ocgate tests/reliability/db-outage.js
// Environment: OCG_TEST_CONCURRENCY (default 8), OCG_TEST_DOWN_MS (default 3000).
// Valid as CommonJS and as an ES module (dynamic imports only).

const num = (name, dflt) => {
    const v = process.env[`OCG_TEST_${name}`];
    if (v === undefined || v === '') return dflt;
    if (!/^[0-9]+$/.test(v)) throw new Error(`OCG_TEST_${name} must be a whole number`);
    return Number(v);
};

const CONCURRENCY = num('CONCURRENCY', 8);
const DOWN_MS = num('DOWN_MS', 3000);
const DB_TIMEOUT_MS = 1000;
// What "within the configured timeout" allows on top of db_timeout_ms: the answer's own
// signing and a loaded 2-core test machine (the client's clock includes its own queueing).
const MARGIN_MS = 1500;
const RECOVERY_BOUND_MS = 20000;

const GATEWAY_ENV = {
    OCGATE_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS),
    OCGATE_OUTBOUND_ALLOW_LOOPBACK: 'true',
    OCGATE_DELIVERY_SCHEDULE: Array(30).fill('1s').join(','),
    OCGATE_DELIVERY_JITTER_PERCENT: '0',
    OCGATE_DELIVERY_TIMEOUT_MS: '5000',
    OCGATE_DELIVERY_CONNECT_TIMEOUT_MS: '1000',
    OCGATE_DELIVERY_LEASE: '6s',
    OCGATE_DELIVERY_POLL_MS: '100',
    OCGATE_DELIVERY_BREAKER_FAILURES: '1000',
    OCGATE_DELIVERY_BREAKER_COOLDOWN: '1s',
};

import('../node/harness.js').then((h) => h.run(async () => {
    const M = await import('../node/merchant.js');
    const L = await import('./load.mjs');
    const lib = await import('./lib.mjs');
    lib.init(h);
    const { env } = h;

    // The immediate stop below must not lose acknowledged commits to pgtest.sh's
    // synchronous_commit=off: every session of the gateway gets durable commits.
    lib.durableCommits();
    const gw = await h.startGateway(GATEWAY_ENV);
    const gatewayKey = await M.fetchGatewayKey({ port: env.port, base: env.base });
    const servers = [];
    let pgDown = false;
    try {
        const merchants = [];
        for (let i = 0; i < 2; i++) {
            const m = await M.startMerchant({ gatewayKey, gatewayOcid: env.ocid });
            servers.push(m);
            merchants.push(h.newParticipant({ ocid: 52001 + i, roles: ['merchant'], endpoint: m.url }));
        }
        const app = h.newParticipant({ ocid: 52100, roles: ['payment_app'] });
        const provider = h.newParticipant({ ocid: 52200, roles: ['settlement_provider'] });
        h.ok(await lib.waitKnown([provider, app, ...merchants]), 'the participants are known to the gateway');

        const recorder = new L.Recorder(`${env.dir}/db-outage-records.jsonl`);
        const ctx = { provider, port: env.port, base: env.base, gatewayKey, gatewayOcid: env.ocid, recorder };
        const load = L.startLoad({ ...ctx, app, merchants, concurrency: CONCURRENCY });
        const outages = [];
        try {
            for (const mode of ['fast', 'immediate']) {
                await h.sleep(1500);
                const before = recorder.records.length;
                const stopAt = Date.now();
                lib.pgStop(mode);
                pgDown = true;
                const downAt = Date.now();  // the postmaster is gone from here on
                await h.sleep(DOWN_MS);
                const startAt = Date.now();
                lib.pgStart();
                pgDown = false;
                const upAt = Date.now();
                // Back when a create sent after the start is answered 200 again.
                const back = await h.waitFor(() => recorder.records.find((r) => r.op === 'create' &&
                    r.status === 200 && r.t - r.ms >= upAt), { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 50 });
                outages.push({ mode, before, stopAt, downAt, startAt, upAt, back: back ? back.t - upAt : null,
                    alive: gw.proc.exitCode === null && gw.proc.signalCode === null });
            }
            await h.sleep(1000);
        } finally {
            await load.stop();
            recorder.close();
            if (pgDown) lib.pgStart();
        }
        const records = recorder.records;
        h.diag(`answers: ${lib.summarize(records)}`);

        for (const o of outages) {
            const label = `PostgreSQL stopped -m ${o.mode}`;
            // Sent after the stop completed and answered before the start began.
            const during = records.filter((r) => r.t - r.ms >= o.downAt && r.t <= o.startAt);
            const not503 = during.filter((r) => r.status !== 503 || r.code !== 'UNAVAILABLE');
            h.ok(during.length >= CONCURRENCY, `${label}: the load kept sending while it was down (${during.length} requests)`);
            h.ok(not503.length === 0, `${label}: every request while it was down is answered 503 UNAVAILABLE`,
                not503.slice(0, 8).map((r) => JSON.stringify(r)).join('\n'));
            // Any request that overlapped the outage, including those caught by the stop.
            const overlapping = records.filter((r) => r.t >= o.stopAt && r.t - r.ms <= o.upAt);
            const slow = overlapping.filter((r) => r.ms > DB_TIMEOUT_MS + MARGIN_MS);
            h.ok(slow.length === 0, `${label}: every request overlapping the outage is answered within db_timeout_ms ${DB_TIMEOUT_MS} + ${MARGIN_MS} ms`,
                slow.slice(0, 8).map((r) => JSON.stringify(r)).join('\n'));
            const ms = overlapping.map((r) => r.ms);
            h.diag(`${label}: ${overlapping.length} requests overlapped it; latency p50 ${lib.percentile(ms, 50)} ms, max ${Math.max(0, ...ms)} ms; ` +
                `stop took ${o.downAt - o.stopAt} ms, start ${o.upAt - o.startAt} ms; 200 again ${o.back} ms after the start`);
            h.ok(o.alive, `${label}: the gateway process kept running`);
            h.ok(o.back !== null, `${label}: the same gateway answers creates 200 again within ${RECOVERY_BOUND_MS} ms of the restart, by itself`);
        }
        const dropped = records.filter((r) => r.status === 0);
        h.ok(dropped.length === 0, 'no request went unanswered (no dropped connection, no client timeout)',
            dropped.slice(0, 8).map((r) => JSON.stringify(r)).join('\n'));
        lib.checkAnswers(records, 'through the outages');
        lib.checkAnsweredCommitted(records, provider, 'after the outages');
        await lib.resendUnanswered(records, ctx, 'after the outages');
        h.checkInvariants('after the outages');
        lib.ledgerCheck('after the outages');
        await lib.checkDeliveriesEnd({ label: 'after the outages', timeoutMs: 60000, merchants: servers });
        h.is(await gw.stop(), 0, 'the gateway exits 0 on SIGTERM');
    } finally {
        if (pgDown) {
            try { lib.pgStart(); } catch (e) { h.diag(`could not restart PostgreSQL: ${e.message}`); }
        }
        for (const m of servers) await m.close();
    }
}));
