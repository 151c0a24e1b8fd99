// Participants: `ocgate participant add|list|show|update|disable` through the real CLI (exit
// status 0 success, 1 failure, 2 usage; keys accepted as 128, 130 (04) or 66 (compressed) hex
// and stored as lowercase 128-hex), then propagation of a change to RUNNING gateways: two
// `ocgate serve` instances on the same database must both see a registration, a key change,
// a role change and a disable within a second (design.md "discovery"; we allow 1.5 s), in
// their request authentication, in /capabilities and in metadata.json's settlement.accepts.
//   tests/integration/run-node.sh build/ocgate tests/integration/participants.js
//
// Valid as CommonJS and as an ES module (no require, no top-level await), like smoke.js.

let h;
let oc;
let env;
let cp;

const PROPAGATION_MS = 1500;
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const short = (res) => (res ? `${res.status} ${String(res.body).slice(0, 300)}` : 'no response');

function cli(...args) {
    const r = cp.spawnSync(env.bin, ['participant', ...args], { encoding: 'utf8', timeout: 30000, env: process.env });
    return { code: r.status, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

function describe(r) {
    return `exit ${r.code}${r.error ? ` (${r.error.message})` : ''}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`;
}

function exits(r, code, name) {
    return h.ok(r.code === code, `${name} → exit ${code}`, describe(r));
}

function parseJson(r, name) {
    try {
        return JSON.parse(r.stdout);
    } catch (e) {
        h.ok(false, `${name}: --json output parses`, `${e.message}\n${describe(r)}`);
        return undefined;
    }
}

function rolesOf(row) {
    if (!row) return undefined;
    const r = row.roles;
    return (Array.isArray(r) ? r : String(r).replace(/[{}]/g, '').split(',')).filter(Boolean).sort().join(',');
}

function showJson(ocid) {
    const r = cli('show', '--ocid', String(ocid), '--json');
    return r.code === 0 ? parseJson(r, `show --ocid ${ocid} --json`) : undefined;
}

function compressed(pub128) {
    const x = pub128.slice(0, 64);
    const odd = parseInt(pub128.slice(-1), 16) & 1;
    return (odd ? '03' : '02') + x;
}

function storedKey(ocid) {
    return h.sql(`SELECT public_key FROM participants WHERE ocid = ${ocid}`);
}

// --- CLI ------------------------------------------------------------------------------------

function cliChecks() {
    const priv = oc.randomPrivateKey();
    const pub = oc.publicKey(priv);
    exits(cli('add', '--ocid', '30001', '--name', 'Acme Pay', '--roles', 'payment_app,merchant', '--public-key', pub,
        '--endpoint', 'http://127.0.0.1:9/acme', '--form', 'legacy'), 0, 'add with a 128-hex key');
    const row = showJson(30001);
    h.ok(row && row.ocid === 30001 && row.name === 'Acme Pay' && rolesOf(row) === 'merchant,payment_app' &&
        row.publicKey === pub && row.endpoint === 'http://127.0.0.1:9/acme' && row.form === 'legacy' && row.enabled === true,
    'show --json gives ocid, name, roles, publicKey, endpoint, form, enabled', JSON.stringify(row));
    h.is(storedKey(30001), pub, 'DB: the key as 128-hex');

    for (const [ocid, label, text] of [
        [30002, '130-hex 04 form', '04' + pub],
        [30003, '66-hex compressed form', compressed(pub)],
        [30004, 'upper-case 128-hex', pub.toUpperCase()],
    ]) {
        exits(cli('add', '--ocid', String(ocid), '--name', label, '--roles', 'merchant', '--public-key', text), 0, `add with a key in ${label}`);
        h.is(storedKey(ocid), pub, `${label}: stored as lowercase 128-hex x‖y`);
        const r = showJson(ocid);
        h.is(r && r.publicKey, pub, `${label}: show --json publishes the 128-hex key`);
    }

    const notOnCurve = '0'.repeat(127) + '1';
    for (const [label, key] of [
        ['not hex', 'zz' + pub.slice(2)], ['127 hex digits', pub.slice(1)], ['a point not on the curve', notOnCurve],
        ['130 hex with prefix 05', '05' + pub], ['66 hex with prefix 04', '04' + pub.slice(0, 64)], ['empty', ''],
    ]) {
        exits(cli('add', '--ocid', '30010', '--name', 'bad', '--roles', 'merchant', '--public-key', key), 2, `add with a bad key (${label})`);
    }
    h.is(h.sql('SELECT count(*) FROM participants WHERE ocid = 30010'), '0', 'no participant stored for bad keys');

    const dup = cli('add', '--ocid', '30001', '--name', 'Other', '--roles', 'merchant', '--public-key', oc.publicKey(oc.randomPrivateKey()));
    exits(dup, 1, 'add with an existing OCID');
    h.is(h.sql('SELECT name FROM participants WHERE ocid = 30001'), 'Acme Pay', 'the existing participant is untouched');
    exits(cli('show', '--ocid', '39999'), 1, 'show an unknown OCID');
    exits(cli('show', '--ocid', '39999', '--json'), 1, 'show --json an unknown OCID');
    exits(cli('update', '--ocid', '39999', '--name', 'x'), 1, 'update an unknown OCID');
    exits(cli('disable', '--ocid', '39999'), 1, 'disable an unknown OCID');

    for (const [label, args] of [
        ['an unknown role', ['add', '--ocid', '30011', '--name', 'x', '--roles', 'bank', '--public-key', pub]],
        ['no --name', ['add', '--ocid', '30011', '--roles', 'merchant', '--public-key', pub]],
        ['no --public-key', ['add', '--ocid', '30011', '--name', 'x', '--roles', 'merchant']],
        ['a non-numeric --ocid', ['add', '--ocid', 'abc', '--name', 'x', '--roles', 'merchant', '--public-key', pub]],
        ['an --ocid above 2^53-1', ['add', '--ocid', '9007199254740992', '--name', 'x', '--roles', 'merchant', '--public-key', pub]],
        ['an endpoint with a trailing slash', ['add', '--ocid', '30011', '--name', 'x', '--roles', 'merchant', '--public-key', pub, '--endpoint', 'https://m.example/']],
        ['an ftp endpoint', ['add', '--ocid', '30011', '--name', 'x', '--roles', 'merchant', '--public-key', pub, '--endpoint', 'ftp://m.example']],
        ['an unknown form', ['add', '--ocid', '30011', '--name', 'x', '--roles', 'merchant', '--public-key', pub, '--form', 'loose']],
        ['show without --ocid', ['show']],
        ['an unknown command', ['remove', '--ocid', '30001']],
        ['an unknown option', ['list', '--verbose']],
    ]) {
        exits(cli(...args), 2, `participant ${label}`);
    }
    h.is(h.sql('SELECT count(*) FROM participants WHERE ocid = 30011'), '0', 'nothing stored by usage errors');

    exits(cli('add', '--ocid', '30005', '--name', 'Sleeping', '--roles', 'settlement_provider', '--public-key', pub, '--disabled'), 0, 'add --disabled');
    h.is(showJson(30005) && showJson(30005).enabled, false, 'added disabled');

    const list = cli('list', '--json');
    exits(list, 0, 'list --json');
    const arr = parseJson(list, 'list --json');
    h.ok(Array.isArray(arr) && [30001, 30002, 30003, 30004, 30005].every((o) => arr.some((r) => r.ocid === o)),
        'list --json is an array holding every participant added', list.stdout.slice(0, 500));
    h.ok(Array.isArray(arr) && arr.length === Number(h.sql('SELECT count(*) FROM participants')), 'list --json has one entry per participant');
    const text = cli('list');
    h.ok(text.code === 0 && text.stdout.includes('30001') && text.stdout.includes('Acme Pay'), 'list (text) → exit 0 with the participants', describe(text));
    const showText = cli('show', '--ocid', '30001');
    h.ok(showText.code === 0 && showText.stdout.includes('Acme Pay') && showText.stdout.includes(pub), 'show (text) → exit 0', describe(showText));

    const newPub = oc.publicKey(oc.randomPrivateKey());
    exits(cli('update', '--ocid', '30001', '--name', 'Acme Pay 2', '--roles', 'merchant', '--form', 'strict',
        '--public-key', '04' + newPub, '--endpoint', 'https://acme.example/oc'), 0, 'update name, roles, form, key, endpoint');
    const u = showJson(30001);
    h.ok(u && u.name === 'Acme Pay 2' && rolesOf(u) === 'merchant' && u.form === 'strict' && u.publicKey === newPub &&
        u.endpoint === 'https://acme.example/oc' && u.enabled === true, 'show reflects the update', JSON.stringify(u));
    exits(cli('update', '--ocid', '30001', '--no-endpoint'), 0, 'update --no-endpoint');
    const u2 = showJson(30001);
    h.ok(u2 && (u2.endpoint === null || u2.endpoint === undefined) && u2.name === 'Acme Pay 2', 'endpoint cleared, the rest kept', JSON.stringify(u2));
    exits(cli('update', '--ocid', '30001', '--endpoint', 'https://a.example', '--no-endpoint'), 2, 'update --endpoint with --no-endpoint');
    exits(cli('disable', '--ocid', '30001'), 0, 'disable');
    h.is(showJson(30001) && showJson(30001).enabled, false, 'disabled');
    exits(cli('update', '--ocid', '30001', '--enable'), 0, 'update --enable');
    h.is(showJson(30001) && showJson(30001).enabled, true, 'enabled again');
}

// --- propagation to running gateways --------------------------------------------------------

// Polls probe() against every gateway (every 100 ms, bounded) until it holds for each; checks
// each got there within PROPAGATION_MS of t0. Returns true if all did.
async function reachesAll(gws, t0, name, probe) {
    const results = await Promise.all(gws.map(async (g) => {
        let last;
        const okv = await h.waitFor(async () => {
            last = await probe(g);
            return last === true;
        }, { timeoutMs: PROPAGATION_MS + 2000, intervalMs: 100 });
        return { g, okv, ms: Date.now() - t0, last };
    }));
    let all = true;
    h.diag(`${name}: ${results.map((r) => `gateway ${r.g.label} ${r.okv === true ? `${r.ms} ms` : 'never'}`).join(', ')}`);
    for (const r of results) {
        all = h.ok(r.okv === true && r.ms <= PROPAGATION_MS, `${name} on gateway ${r.g.label} within ${PROPAGATION_MS} ms`,
            `${r.okv ? `after ${r.ms} ms` : `not after ${r.ms} ms`}; last probe: ${typeof r.last === 'string' ? r.last : JSON.stringify(r.last)}`) && all;
    }
    return all;
}

function caps(as, g) {
    return h.signedCall({ as, method: 'GET', path: h.url('/capabilities'), port: g.port, unsigned: true });
}

async function metadataAccepts(g) {
    const res = await h.call({ method: 'GET', path: h.url('/metadata.json'), port: g.port });
    const config = res.json && res.json.config;
    const signed = config && oc.verifyEmitted(env.pubkey, oc.canonicalStrict(config), res.json.signature);
    if (!signed) return { error: `metadata not validly signed: ${short(res)}` };
    return (config.settlement && config.settlement.accepts) || [];
}

async function propagation() {
    const g1 = await h.startGateway();
    const port2 = await h.freePort();
    const g2 = await h.startGateway({ OCGATE_LISTEN: `127.0.0.1:${port2}` });
    g1.label = '1';
    g2.label = '2';
    const gws = [g1, g2];
    h.diag(`gateway 1: pid ${g1.pid} port ${g1.port}; gateway 2: pid ${g2.pid} port ${g2.port}`);
    h.ok(true, 'two gateways on one database');

    const app = h.newParticipant({ ocid: 30100, roles: ['payment_app'] });
    const merchantPriv = oc.randomPrivateKey();
    const provider = { ocid: 30101, priv: oc.randomPrivateKey() };
    provider.pub = oc.publicKey(provider.priv);
    await reachesAll(gws, Date.now() - 0, 'the payment app (registered before) is known', async (g) => (await caps(app, g)).status === 200);

    // Unknown before registration.
    for (const g of gws) {
        const r = await caps(provider, g);
        h.ok(r.status === 401 && r.json && r.json.error && r.json.error.code === 'UNKNOWN_OCID',
            `gateway ${g.label}: the provider is unknown before registration (401 UNKNOWN_OCID)`, short(r));
    }

    exits(cli('add', '--ocid', String(provider.ocid), '--name', 'NewPay', '--roles', 'settlement_provider', '--public-key', provider.pub), 0, 'register a provider');
    let t0 = Date.now();
    await reachesAll(gws, t0, 'the new provider\'s signed /capabilities → 200', async (g) => {
        const r = await caps(provider, g);
        return r.status === 200 || short(r);
    });
    await reachesAll(gws, t0, 'metadata.json settlement.accepts lists the new provider', async (g) => {
        const a = await metadataAccepts(g);
        return (Array.isArray(a) && a.includes(provider.ocid)) || a;
    });
    await reachesAll(gws, t0, '/capabilities settlement.accepts (as the app) lists the new provider', async (g) => {
        const r = await caps(app, g);
        return (r.json && r.json.settlement && r.json.settlement.accepts.includes(provider.ocid)) || short(r);
    });

    // A merchant registered while running can be paid at once, on either instance.
    exits(cli('add', '--ocid', '30102', '--name', 'NewShop', '--roles', 'merchant', '--public-key', oc.publicKey(merchantPriv)), 0, 'register a merchant');
    t0 = Date.now();
    const created = [];
    await reachesAll(gws, t0, 'payments for the new merchant can be created', async (g) => {
        const r = await h.signedCall({ as: app, method: 'POST', path: h.url('/payment/create'), port: g.port,
            body: JSON.stringify({ to: 30102, amount: '5.00', currency: 'USD' }), unsigned: true });
        if (r.status === 200) created.push({ g, txid: r.json.txid });
        return r.status === 200 || short(r);
    });
    // Settle one payment created on instance 1 through instance 2: both share the database.
    const onG1 = created.find((c) => c.g === g1);
    if (onG1) {
        const proof = oc.makeProof({ txid: `np_${oc.newNonce().slice(4)}`, issuer: provider.ocid, from: { ocid: 1 },
            to: { ocid: Number(env.ocid), reference: onG1.txid }, amount: '5.00', currency: 'USD' });
        const envp = oc.signProof(provider.priv, proof);
        const wh = await h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'), port: g2.port, body: JSON.stringify(envp) });
        h.ok(wh.status === 200 && wh.json && wh.json.status === 'accepted', 'a payment created on instance 1 is settled by a webhook to instance 2', short(wh));
        h.is(h.sql(`SELECT status FROM payments WHERE txid = ${q(onG1.txid)}`), 'completed', 'DB: completed');
    }

    // Key rotation.
    const oldPriv = provider.priv;
    const newPriv = oc.randomPrivateKey();
    exits(cli('update', '--ocid', String(provider.ocid), '--public-key', compressed(oc.publicKey(newPriv))), 0, 'rotate the provider\'s key (given compressed)');
    t0 = Date.now();
    await reachesAll(gws, t0, 'the new key is accepted', async (g) => (await caps({ ocid: provider.ocid, priv: newPriv }, g)).status === 200);
    await reachesAll(gws, t0, 'the old key is refused (401 INVALID_SIGNATURE)', async (g) => {
        const r = await caps({ ocid: provider.ocid, priv: oldPriv }, g);
        return (r.status === 401 && r.json && r.json.error.code === 'INVALID_SIGNATURE') || short(r);
    });
    provider.priv = newPriv;

    // Role change: no longer a provider.
    exits(cli('update', '--ocid', String(provider.ocid), '--roles', 'payment_app'), 0, 'change the provider\'s roles to payment_app');
    t0 = Date.now();
    await reachesAll(gws, t0, 'its webhooks are refused (400 ISSUER_NOT_ACCEPTED)', async (g) => {
        const proof = oc.makeProof({ txid: `np_${oc.newNonce().slice(4)}`, issuer: provider.ocid, from: { ocid: 1 },
            to: { ocid: Number(env.ocid), reference: 'pay_none' }, amount: '1.00', currency: 'USD' });
        const r = await h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'), port: g.port,
            body: JSON.stringify(oc.signProof(provider.priv, proof)), unsigned: true });
        return (r.status === 400 && r.json && r.json.error.code === 'ISSUER_NOT_ACCEPTED') || short(r);
    });
    await reachesAll(gws, t0, 'metadata.json settlement.accepts no longer lists it', async (g) => {
        const a = await metadataAccepts(g);
        return (Array.isArray(a) && !a.includes(provider.ocid)) || a;
    });
    exits(cli('update', '--ocid', String(provider.ocid), '--roles', 'settlement_provider'), 0, 'make it a provider again');
    t0 = Date.now();
    await reachesAll(gws, t0, 'metadata.json settlement.accepts lists it again', async (g) => {
        const a = await metadataAccepts(g);
        return (Array.isArray(a) && a.includes(provider.ocid)) || a;
    });

    // Disable.
    exits(cli('disable', '--ocid', String(provider.ocid)), 0, 'disable the provider');
    t0 = Date.now();
    await reachesAll(gws, t0, 'its calls get 401 UNKNOWN_OCID', async (g) => {
        const r = await caps(provider, g);
        return (r.status === 401 && r.json && r.json.error && r.json.error.code === 'UNKNOWN_OCID') || short(r);
    });
    await reachesAll(gws, t0, 'metadata.json settlement.accepts drops it', async (g) => {
        const a = await metadataAccepts(g);
        return (Array.isArray(a) && !a.includes(provider.ocid)) || a;
    });
    await reachesAll(gws, t0, '/capabilities settlement.accepts (as the app) drops it', async (g) => {
        const r = await caps(app, g);
        return (r.json && r.json.settlement && !r.json.settlement.accepts.includes(provider.ocid)) || short(r);
    });

    exits(cli('update', '--ocid', String(provider.ocid), '--enable'), 0, 're-enable the provider');
    t0 = Date.now();
    await reachesAll(gws, t0, 'its calls succeed again', async (g) => (await caps(provider, g)).status === 200);

    h.is(await g2.stop('SIGTERM'), 0, 'gateway 2 exits 0 on SIGTERM');
    h.is(await g1.stop('SIGTERM'), 0, 'gateway 1 exits 0 on SIGTERM');
}

// --- main -----------------------------------------------------------------------------------

import('../node/harness.js').then((harness) => harness.run(async () => {
    h = harness;
    oc = h.oc;
    env = h.env;
    cp = await import('node:child_process');
    h.diag('--- CLI');
    try {
        cliChecks();
    } catch (e) {
        h.ok(false, 'CLI checks ran to their end', e);
    }
    h.diag('--- propagation to running gateways');
    try {
        await propagation();
    } catch (e) {
        h.ok(false, 'propagation checks ran to their end', e);
    }
    h.checkInvariants('participants');
}));
