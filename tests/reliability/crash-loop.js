// Crash consistency (issue 8, item 1; design.md I3 "a crash at any instant loses nothing"):
// under load from the driver in load.mjs, `ocgate serve` (with its delivery worker) is killed
// with SIGKILL at random moments and restarted, OCG_TEST_KILLS times. Then:
//   - every answer ocgate wrote was signed, and none was a 5xx;
//   - every create answered 200 is a stored payment, every webhook answered 200 accepted is a
//     credited proof that completed its payment;
//   - every webhook whose answer was lost in a crash, sent again, is 200 accepted and its
//     proof is stored once;
//   - the invariants I1-I4 hold (harness checkInvariants) and `ocgate ledger check` exits 0;
//   - every delivery ends delivered and each reached its merchant (at least once: a kill
//     between the merchant's answer and the commit of "delivered" repeats the notification).
//
//   tests/integration/run-node.sh build/ocgate tests/reliability/crash-loop.js
// Environment (OCG_TEST_*): KILLS (default 20), CONCURRENCY (default 8), UP_MIN_MS and
// UP_MAX_MS (how long each instance runs under load before its kill; default 200 and 900).
// The meson test `reliability-crash-loop` runs the defaults; tests/reliability/run-crash-loop.sh
// runs a bigger configuration. Valid as CommonJS and as an ES module (dynamic imports only).

const num = (name, dflt) => {
    const v = process.env[`OCG_TEST_${name}`];
    if (v === undefined || v === '') return dflt;
    if (!/^[0-9]+$/.test(v)) throw new Error(`OCG_TEST_${name} must be a whole number`);
    return Number(v);
};

const KILLS = num('KILLS', 20);
const CONCURRENCY = num('CONCURRENCY', 8);
const UP_MIN_MS = num('UP_MIN_MS', 200);
const UP_MAX_MS = num('UP_MAX_MS', 900);

// Delivery settings: short, so the end state comes quickly, and long enough (30 retries)
// that nothing dies of kills alone (a delivery in flight at a kill counts one attempt when its
// lease is taken over).
const DELIVERY_ENV = {
    OCGATE_DELIVERY_SCHEDULE: Array(30).fill('1s').join(','),
    OCGATE_DELIVERY_JITTER_PERCENT: '0',
    OCGATE_DELIVERY_TIMEOUT_MS: '5000',
    OCGATE_DELIVERY_CONNECT_TIMEOUT_MS: '1000',
    OCGATE_DELIVERY_LEASE: '6s',
    OCGATE_DELIVERY_POLL_MS: '100',
    // Timeouts here come from a busy test machine, not a failing merchant: keep the breaker
    // out of the way.
    OCGATE_DELIVERY_BREAKER_FAILURES: '1000',
    OCGATE_DELIVERY_BREAKER_COOLDOWN: '1s',
    OCGATE_OUTBOUND_ALLOW_LOOPBACK: 'true',
};

import('../node/harness.js').then((h) => h.run(async () => {
    const M = await import('../node/merchant.js');
    const L = await import('./load.mjs');
    const lib = await import('./lib.mjs');
    lib.init(h);
    const { env, oc } = h;

    const gwEnv = { ...DELIVERY_ENV };

    let gw = await h.startGateway(gwEnv);
    const gatewayKey = await M.fetchGatewayKey({ port: env.port, base: env.base });
    h.is(gatewayKey, env.pubkey, 'the gateway publishes the key run-node.sh generated');

    // Merchants answer accepted after 0-150 ms, so deliveries are in flight when kills land.
    const behaviour = () => ({ status: 200, body: JSON.stringify({ status: 'accepted' }), delayMs: Math.floor(Math.random() * 150) });
    const servers = [];
    const merchants = [];
    try {
    for (let i = 0; i < 3; i++) {
        const m = await M.startMerchant({ gatewayKey, gatewayOcid: env.ocid, behaviour });
        servers.push(m);
        merchants.push(h.newParticipant({ ocid: 51001 + i, roles: ['merchant'], endpoint: m.url }));
    }
    const app = h.newParticipant({ ocid: 51100, roles: ['payment_app'] });
    const provider = h.newParticipant({ ocid: 51200, roles: ['settlement_provider'] });
    h.ok(await lib.waitKnown([provider, app, ...merchants]), 'the participants are known to the gateway');

    const recorder = new L.Recorder(`${env.dir}/crash-loop-records.jsonl`);
    const ctx = { provider, port: env.port, base: env.base, gatewayKey, gatewayOcid: env.ocid, recorder };
    const load = L.startLoad({ ...ctx, app, merchants, concurrency: CONCURRENCY });

    let kills = 0;
    let killedUnderLoad = 0;
    let interrupted = 0;
    const startMs = [];
    const t0 = Date.now();
    try {
        for (let i = 0; i < KILLS; i++) {
            const before = recorder.records.length;
            await h.sleep(UP_MIN_MS + Math.floor(Math.random() * (UP_MAX_MS - UP_MIN_MS + 1)));
            // The kill lands at a random instant of a busy gateway: requests and deliveries in
            // flight, transactions open.
            if (load.inFlight() > 0 && recorder.records.length > before) killedUnderLoad += 1;
            const answeredBefore = recorder.records.length;
            const code = await gw.stop('SIGKILL', 5000);
            if (code === 137) kills += 1;
            else h.diag(`kill ${i + 1}: the gateway exited with ${code}, not by SIGKILL`);
            const s0 = Date.now();
            gw = await h.startGateway(gwEnv, { readyTimeoutMs: 20000 });
            startMs.push(Date.now() - s0);
            interrupted += recorder.records.slice(answeredBefore).filter((r) => r.status === 0).length;
        }
    } finally {
        await load.stop();
        recorder.close();
    }
    const records = recorder.records;
    h.diag(`${KILLS} kills in ${Date.now() - t0} ms; restart to ready: median ${lib.percentile(startMs, 50)} ms, max ${Math.max(...startMs)} ms`);
    h.diag(`answers: ${lib.summarize(records)}`);
    h.is(kills, KILLS, `the gateway was killed by SIGKILL ${KILLS} times and restarted each time`);
    h.ok(killedUnderLoad >= Math.ceil(KILLS * 0.8), `at least 80 % of the kills hit a gateway with requests in flight (${killedUnderLoad} of ${KILLS})`);
    h.ok(interrupted > 0, `requests were cut off by the kills (${interrupted} without an answer)`);
    h.ok(records.filter((r) => r.op === 'webhook' && r.status === 200).length >= KILLS,
        'the load settled payments between the kills', lib.summarize(records));

    lib.checkAnswers(records, 'under kills');
    lib.checkAnsweredCommitted(records, provider, 'after the kills');
    await lib.resendUnanswered(records, ctx, 'after the kills');
    h.checkInvariants('after the kills');
    lib.ledgerCheck('after the kills');
    const { waitedMs, duplicates } = await lib.checkDeliveriesEnd({ label: 'after the kills', timeoutMs: 60000, merchants: servers });
    h.diag(`deliveries settled ${waitedMs} ms after the load stopped; ${duplicates} notifications were received more than once (at least once across crashes)`);
    h.diag(`delivery attempts by outcome: ${h.sql(`SELECT k || ' ' || count(*) FROM (SELECT coalesce(
        split_part(error, ':', 1), 'HTTP ' || http_status) AS k FROM delivery_attempts) a GROUP BY k ORDER BY k`)
        .split('\n').join(', ')}`);
    h.is(await gw.stop(), 0, 'the last gateway exits 0 on SIGTERM');
    } finally {
        // Open servers would keep this process (and the meson test) alive after a failure.
        for (const m of servers) await m.close();
    }
}));
