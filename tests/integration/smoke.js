// First integration scenario: the gateway starts, publishes correctly signed metadata and
// stops cleanly. Run through the harness:
//   tests/integration/run-node.sh build/ocgate tests/integration/smoke.js
//
// Written so it is valid both as CommonJS and as an ES module (no require, no top-level
// await): tests/integration has no package.json, and the libraries are ES modules because
// @noble/secp256k1 v2 is ESM-only, so they are loaded with import().

import('../node/harness.js').then((h) => h.run(async () => {
    const { oc, env } = h;

    const gw = await h.startGateway();
    h.ok(true, `gateway started (pid ${gw.pid}) and answers ${env.base}/metadata.json`);

    const res = await h.call({ method: 'GET', path: h.url('/metadata.json'), unsigned: true });
    h.is(res.status, 200, 'GET <base>/metadata.json without authentication → 200');
    h.ok(res.signatureOk, 'metadata response carries a valid gateway signature (X-OC-*)',
        JSON.stringify(res.headers));
    const meta = res.json;
    h.ok(meta && typeof meta === 'object' && meta.config && typeof meta.config === 'object',
        'metadata is a JSON object with a config object', res.body.slice(0, 500));
    const config = (meta && meta.config) || {};

    h.is(config.publicKey, env.pubkey, 'config.publicKey is the gateway key from keygen');
    let canonical = null;
    try {
        canonical = oc.canonicalStrict(config);
    } catch (e) {
        h.diag(`config cannot be canonicalised: ${e.message}`);
    }
    h.ok(canonical !== null && oc.verifyEmitted(env.pubkey, canonical, meta && meta.signature),
        'metadata signature verifies over canonicalStrict(config) (low S, lowercase, v = recovery id)',
        `signature: ${meta && meta.signature}\ncanonical: ${canonical}`);
    h.is(config.endpoint, env.publicUrl, 'config.endpoint is the configured public URL');
    h.same(config.settlement && config.settlement.currencies, env.currencies,
        'config.settlement.currencies is the configured list');

    // design.md "own metadata": also served at /metadata.json.
    const root = await h.call({ method: 'GET', path: '/metadata.json' });
    h.ok(root.status === 200 && root.body === res.body, 'GET /metadata.json serves the same document',
        `status ${root.status}: ${root.body.slice(0, 300)}`);

    // A fresh database trivially satisfies them; this proves the queries run on the schema.
    h.checkInvariants('fresh database');

    h.is(await gw.stop('SIGTERM'), 0, 'SIGTERM → ocgate exits 0');
}));
