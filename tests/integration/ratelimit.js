// Per-participant rate limits (issue 8 item 4; docs/configuration.md, "Rate limits") against
// a real `ocgate serve`: a noisy payment app past its budget gets signed 429 RATE_LIMITED with
// a whole-second Retry-After, while a second app's requests in the same window all succeed;
// a limited request writes nothing (no payment, not even its nonce); the budget comes back
// after Retry-After; rate_limit = 0 switches limiting off.
//   tests/integration/run-node.sh build/ocgate tests/integration/ratelimit.js
// Valid as CommonJS and as an ES module (no require, no top-level await), like smoke.js.

import('../node/harness.js').then((h) => h.run(async () => {
    const { oc } = h;
    const RATE = 2;
    const BURST = 5;
    const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

    const merchant = h.newParticipant({ ocid: 41001, roles: ['merchant'] });
    const noisy = h.newParticipant({ ocid: 41002, roles: ['payment_app'] });
    const quiet = h.newParticipant({ ocid: 41003, roles: ['payment_app'] });

    const gw = await h.startGateway({ OCGATE_RATE_LIMIT: RATE, OCGATE_RATE_LIMIT_BURST: BURST,
        OCGATE_WORKER: 'false' });

    const create = (as, nonce) => h.signedCall({ as, method: 'POST', path: h.url('/payment/create'),
        body: JSON.stringify({ to: merchant.ocid, amount: '1.00', currency: 'USD' }), nonce });
    const countPayments = (app) => Number(h.sql(`SELECT count(*) FROM payments WHERE app_ocid = ${app.ocid}`));
    const countNonces = (p) => Number(h.sql(`SELECT count(*) FROM request_nonces WHERE ocid = ${p.ocid}`));

    // --- one noisy caller, one quiet caller, the same window ------------------------------
    const NOISY = 40;
    const QUIET = BURST - 1;
    const fpBefore = h.fingerprint({ exclude: ['payments'] });
    const noisyNonces = Array.from({ length: NOISY }, () => oc.newNonce());
    const started = Date.now();
    const [noisyRes, quietRes] = await Promise.all([
        Promise.all(noisyNonces.map((n) => create(noisy, n))),
        (async () => {
            const out = [];
            for (let i = 0; i < QUIET; i++) out.push(await create(quiet));
            return out;
        })(),
    ]);
    const elapsed = (Date.now() - started) / 1000;
    const okN = noisyRes.filter((r) => r.status === 200).length;
    const limited = noisyRes.filter((r) => r.status === 429);
    h.diag(`noisy: ${okN} × 200, ${limited.length} × 429 of ${NOISY} in ${elapsed.toFixed(2)} s`);
    h.ok(okN >= BURST && okN <= BURST + Math.ceil(elapsed * RATE) + 1,
        `noisy app: its burst (${BURST}) and at most the refill of ${elapsed.toFixed(2)} s succeed (got ${okN})`);
    h.is(okN + limited.length, NOISY, 'noisy app: every other request is answered 429');
    h.ok(quietRes.every((r) => r.status === 200),
        `quiet app: all ${QUIET} requests in the same window → 200`,
        quietRes.map((r) => `${r.status} ${r.body.slice(0, 120)}`).join('\n'));

    const shapes = limited.filter((r) => {
        const j = r.json;
        return j && j.error && j.error.code === 'RATE_LIMITED' && typeof j.error.message === 'string' &&
            Object.keys(j).length === 1 && Object.keys(j.error).sort().join(',') === 'code,message';
    });
    h.is(shapes.length, limited.length, '429 bodies are {"error":{"code":"RATE_LIMITED","message":…}}');
    h.ok(limited.length > 0 && limited.every((r) => r.signatureOk),
        '429 answers are signed by the gateway (X-OC-* checked with oc.js)');
    const retry = limited.map((r) => r.headers['retry-after']);
    h.ok(retry.length > 0 && retry.every((v) => /^[1-9][0-9]*$/.test(v || '') && Number(v) <= Math.ceil(1 / RATE) + 1),
        `Retry-After is a whole number of seconds, 1 to ${Math.ceil(1 / RATE) + 1}`, retry.join(','));
    h.ok(limited.every((r) => /^[0-9a-f]{16}$/.test(r.headers['x-request-id'] || '')), '429 answers carry an X-Request-Id');

    // Nothing written for a limited request: payments and nonces only for the 200s.
    h.is(countPayments(noisy), okN, 'noisy app: exactly one payment per 200, none for a 429');
    h.is(countNonces(noisy), okN, 'noisy app: nonces recorded for the 200s only (a 429 writes nothing)');
    const limitedNonces = noisyRes.map((r, i) => (r.status === 429 ? noisyNonces[i] : null)).filter(Boolean);
    h.is(Number(h.sql(`SELECT count(*) FROM request_nonces WHERE ocid = ${noisy.ocid} AND nonce IN (${limitedNonces.map(q).join(',') || "''"})`)),
        0, 'none of the limited requests\' nonces is in request_nonces');
    h.is(countPayments(quiet), QUIET, 'quiet app: one payment per request');
    h.is(h.fingerprint({ exclude: ['payments'] }), fpBefore, 'no other table changed');

    // The log names the limited caller and the code.
    const lines = gw.logText().split('\n').filter((l) => l.includes('"code":"RATE_LIMITED"'));
    h.is(lines.length, limited.length, 'one request log line with code RATE_LIMITED per 429');
    h.ok(lines.length > 0 && lines.every((l) => l.includes(`"caller":${noisy.ocid}`) && l.includes('"status":429')),
        'those lines carry status 429 and the noisy caller\'s OCID', lines.slice(0, 2).join('\n'));

    // A limited request may be retried with the same nonce: it was never recorded.
    const again = await create(noisy, limitedNonces[0]);
    h.ok(again.status === 429 || again.status === 200, 'an immediate retry is limited or, if a token came back, accepted');
    await h.sleep(Math.ceil(1 / RATE) * 1000 + 1100);
    const after = await create(noisy, limitedNonces[1]);
    h.is(after.status, 200, 'after Retry-After the noisy app gets through again (same nonce as a limited request)');

    // Every route counts against the budget, GET /capabilities too.
    const caps = await Promise.all(Array.from({ length: BURST + 5 }, () =>
        h.signedCall({ as: quiet, method: 'GET', path: h.url('/capabilities') })));
    h.ok(caps.some((r) => r.status === 429) && caps.some((r) => r.status === 200),
        'GET /capabilities is limited too', caps.map((r) => r.status).join(','));
    // metadata.json is unauthenticated and never limited.
    const metas = await Promise.all(Array.from({ length: 30 }, () =>
        h.call({ method: 'GET', path: h.url('/metadata.json') })));
    h.ok(metas.every((r) => r.status === 200), 'GET metadata.json × 30 → all 200 (not limited)');

    // An unauthenticated request does not spend the participant's budget.
    await h.sleep(BURST / RATE * 1000 + 500);
    const forged = await Promise.all(Array.from({ length: 20 }, () =>
        h.signedCall({ as: { ocid: quiet.ocid, priv: oc.randomPrivateKey() }, method: 'GET', path: h.url('/capabilities') })));
    h.ok(forged.every((r) => r.status === 401), 'requests with a forged signature for the quiet app → 401');
    const real = await Promise.all(Array.from({ length: BURST }, () =>
        h.signedCall({ as: quiet, method: 'GET', path: h.url('/capabilities') })));
    h.ok(real.every((r) => r.status === 200),
        'they did not spend its budget: its full burst still succeeds', real.map((r) => r.status).join(','));

    h.is(await gw.stop(), 0, 'gateway exits 0');

    // --- rate_limit = 0: off -------------------------------------------------------------
    const gw2 = await h.startGateway({ OCGATE_RATE_LIMIT: 0, OCGATE_RATE_LIMIT_BURST: 1, OCGATE_WORKER: 'false' });
    const free = await Promise.all(Array.from({ length: 30 }, () => create(noisy)));
    h.ok(free.every((r) => r.status === 200), 'rate_limit = 0: 30 simultaneous requests all → 200',
        free.map((r) => r.status).join(','));
    h.is(await gw2.stop(), 0, 'second gateway exits 0');
    h.checkInvariants('after the rate-limit scenarios');
}));
