// Pins oc.js (the independent client the integration tests sign and verify with) to the
// interop vectors: if oc.js drifted, every integration test built on it would test nothing.
//   node tests/node/self-test.js tests/vectors/opencharge-vectors.json
// TAP output; exit status 1 on any failure.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as secp from '@noble/secp256k1';
import * as oc from './oc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const vectorsPath = process.argv[2] || path.join(here, '..', 'vectors', 'opencharge-vectors.json');
const V = JSON.parse(fs.readFileSync(vectorsPath, 'utf8'));

// --- minimal TAP ---------------------------------------------------------------------------
let n = 0;
let failures = 0;
function ok(cond, name, diag) {
    n += 1;
    if (cond) {
        console.log(`ok ${n} - ${name}`);
    } else {
        failures += 1;
        console.log(`not ok ${n} - ${name}`);
        if (diag !== undefined) console.log(`#   ${String(diag).split('\n').join('\n#   ')}`);
    }
}
function is(got, want, name) {
    ok(got === want, name, `got:  ${JSON.stringify(got)}\nwant: ${JSON.stringify(want)}`);
}
// Runs a check that may throw; an exception is a failure, not a crash of the whole suite.
function guarded(name, fn) {
    try {
        fn();
    } catch (e) {
        ok(false, `${name} (threw)`, e && e.stack);
    }
}
function throws(fn, name) {
    let threw = false;
    try { fn(); } catch { threw = true; }
    ok(threw, name);
}

const key = Object.fromEntries(V.keys.map((k) => [k.label, k]));
const flipCase = (hex) => hex.toUpperCase();

// --- keys ----------------------------------------------------------------------------------
for (const k of V.keys) {
    guarded(`key ${k.label}`, () => {
        is(oc.publicKey(k.private_key), k.public_key, `key ${k.label}: public key derived from the private key`);
        const forms = [k.public_key, k.public_key_04, k.public_key_compressed, flipCase(k.public_key)];
        const points = forms.map((f) => oc.parsePublicKey(f));
        ok(points.every((p) => p && p.equals(points[0])),
            `key ${k.label}: 128-hex, 04-prefixed, compressed and upper-case forms are the same point`);
    });
}
ok(oc.parsePublicKey('05' + key.provider.public_key) === null, 'key with 05 prefix refused');
ok(oc.parsePublicKey('04' + key.provider.public_key_compressed.slice(2)) === null,
    '66-hex key with 04 prefix refused');
ok(oc.parsePublicKey(key.provider.public_key.slice(0, 127) + 'x') === null, 'non-hex key refused');
ok(oc.parsePublicKey(key.provider.public_key.slice(0, 126) +
    ((parseInt(key.provider.public_key.slice(126), 16) ^ 1).toString(16).padStart(2, '0'))) === null,
    'point off the curve refused');

// --- canonical JSON ------------------------------------------------------------------------
for (const c of V.canonical_json) {
    guarded(`canonical ${c.name}`, () => {
        const value = JSON.parse(c.input);
        is(oc.canonicalStrict(value), c.strict, `canonical strict: ${c.name}`);
        is(oc.canonicalLegacy(value), c.legacy_allowlist, `canonical legacy: ${c.name}`);
    });
}
for (const r of V.array_index_keys.refused) {
    throws(() => oc.canonicalStrict(JSON.parse(r)), `array-index keys refused: ${r}`);
}
for (const a of V.array_index_keys.accepted_not_index) {
    guarded('array-index lookalikes', () => {
        is(oc.canonicalStrict(JSON.parse(a.input)), a.strict, `not array-index keys, accepted: ${a.input}`);
    });
}
throws(() => oc.canonicalStrict({ a: 1.5 }), 'strict refuses a real number');
throws(() => oc.canonicalStrict({ a: [2 ** 53] }), 'strict refuses an integer beyond 2^53-1');
throws(() => oc.canonicalStrict({ a: NaN }), 'strict refuses NaN');
throws(() => oc.canonicalStrict({ a: undefined }), 'strict refuses undefined');
throws(() => oc.canonicalStrict({ a: '\uD800' }), 'strict refuses a lone surrogate');
is(oc.canonicalStrict({ a: -(2 ** 53 - 1) }), '{"a":-9007199254740991}', 'strict keeps -(2^53-1)');

// --- proofs --------------------------------------------------------------------------------
function checkSignedObject(label, json, signer, want) {
    guarded(label, () => {
        const obj = JSON.parse(json);
        const priv = key[signer].private_key;
        const pub = key[signer].public_key;
        is(oc.canonicalStrict(obj), want.strict_canonical, `${label}: strict canonical`);
        if (want.strict_sha256) is(oc.sha256Hex(oc.canonicalStrict(obj)), want.strict_sha256, `${label}: strict sha256`);
        is(oc.signProof(priv, obj, 'strict').signature, want.strict_signature,
            `${label}: strict signature reproduced byte for byte (RFC 6979)`);
        ok(oc.verifyProof(pub, obj, want.strict_signature, 'strict'), `${label}: strict signature verifies`);
        ok(oc.verifyEmitted(pub, want.strict_canonical, want.strict_signature),
            `${label}: strict signature is in emitted form (low S, v = recovery id)`);
        if (want.legacy_canonical) {
            is(oc.canonicalLegacy(obj), want.legacy_canonical, `${label}: legacy canonical`);
            if (want.legacy_sha256) is(oc.sha256Hex(want.legacy_canonical), want.legacy_sha256, `${label}: legacy sha256`);
            is(oc.signProof(priv, obj, 'legacy').signature, want.legacy_signature,
                `${label}: legacy signature reproduced byte for byte`);
            ok(oc.verifyProof(pub, obj, want.legacy_signature, 'legacy'), `${label}: legacy signature verifies`);
            ok(!oc.verifyProof(pub, obj, want.legacy_signature, 'strict'),
                `${label}: legacy signature does not verify as strict`);
        }
    });
}
V.proofs.forEach((p, i) => checkSignedObject(`proof ${i + 1}`, p.proof_json, p.signer, p));
checkSignedObject('gateway proof', V.gateway_proof.proof_json, V.gateway_proof.signer, V.gateway_proof);
checkSignedObject('metadata config', V.metadata_config.config_json, V.metadata_config.signer, {
    strict_canonical: V.metadata_config.strict_canonical,
    strict_signature: V.metadata_config.signature,
});

// makeProof builds the same object (and, with the protocol's field order, the same bytes).
V.proofs.concat([V.gateway_proof]).forEach((p, i) => {
    guarded(`makeProof ${i + 1}`, () => {
        const made = oc.makeProof(JSON.parse(p.proof_json));
        is(JSON.stringify(made), p.proof_json, `makeProof ${i + 1}: same JSON text as the vector`);
    });
});

// --- signature forms -----------------------------------------------------------------------
{
    const p = V.proofs[0];
    const pub = key.provider.public_key;
    const msg = p.strict_canonical;
    const sig = p.strict_signature;
    for (const form of ['public_key', 'public_key_04', 'public_key_compressed']) {
        ok(oc.verify(key.provider[form], msg, sig), `verify accepts the key as ${form}`);
    }
    ok(oc.verify(pub, msg, sig.toUpperCase()), 'verify is case-insensitive on the signature');
    ok(oc.verify(pub, msg, sig.slice(0, 128)), 'verify accepts 128-hex r||s without v');
    ok(!oc.verifyEmitted(pub, msg, sig.toUpperCase()), 'verifyEmitted refuses upper case');
    ok(!oc.verifyEmitted(pub, msg, sig.slice(0, 128)), 'verifyEmitted refuses a missing v');
    ok(!oc.verifyEmitted(pub, msg, sig.slice(0, 128) + (sig.endsWith('1b') ? '1c' : '1b')),
        'verifyEmitted refuses a v that is not the recovery id');
    for (const v of ['00', '01', '1d', '1e', '27']) {
        ok(!oc.verify(pub, msg, sig.slice(0, 128) + v), `verify refuses v = ${v}`);
    }
    ok(!oc.verify(pub, msg, sig + '00'), 'verify refuses 132 hex');
    ok(!oc.verify(pub, msg, sig.slice(0, 129)), 'verify refuses 129 hex');
    ok(!oc.verify(pub, msg, '0'.repeat(64) + sig.slice(64)), 'verify refuses r = 0');
    ok(!oc.verify(pub, msg, sig.slice(0, 64) + secp.CURVE.n.toString(16) + '1b'), 'verify refuses s = n');
    ok(!oc.verify(key.gateway.public_key, msg, sig), 'verify refuses another key');
    ok(!oc.verify(pub, msg + ' ', sig), 'verify refuses another message');
    is(oc.sign(key.provider.private_key, msg), sig, 'sign is deterministic (same bytes twice)');
    const k = oc.randomPrivateKey();
    const s = oc.sign(k, 'hello');
    ok(/^[0-9a-f]{128}1[bc]$/.test(s) && oc.verifyEmitted(oc.publicKey(k), 'hello', s),
        'a random key signs and verifies in emitted form');
    ok(oc.randomPrivateKey() !== k, 'random keys differ');
    throws(() => oc.sign('00'.repeat(32), 'x'), 'sign refuses the zero key');
}

// --- negatives -----------------------------------------------------------------------------
for (const neg of V.negative) {
    guarded(`negative ${neg.name}`, () => {
        const proof = JSON.parse(neg.proof_json);
        ok(!oc.verifyProof(key.provider.public_key, proof, neg.signature, 'strict'),
            `negative refused (strict): ${neg.name}`);
        ok(!oc.verifyProof(key.provider.public_key, proof, neg.signature, 'legacy'),
            `negative refused (legacy): ${neg.name}`);
        if (neg.legacy_signature_of_original) {
            // Why strict is the rule: the legacy form does not cover to/from.
            ok(oc.verifyProof(key.provider.public_key, proof, neg.legacy_signature_of_original, 'legacy'),
                `${neg.name}: the original legacy signature still verifies in legacy form`);
            ok(!oc.verifyProof(key.provider.public_key, proof, neg.legacy_signature_of_original, 'strict'),
                `${neg.name}: ...but not in strict form`);
        }
    });
}

// --- high S --------------------------------------------------------------------------------
guarded('high-S variant', () => {
    const h = V.high_s_variant;
    const msg = oc.canonicalStrict(JSON.parse(h.proof_json));
    const digest = new Uint8Array(Buffer.from(oc.sha256Hex(msg), 'hex'));
    const raw = secp.Signature.fromCompact(h.signature.slice(0, 128));
    ok(raw.hasHighS(), 'high-S variant: s is above n/2');
    ok(!secp.verify(raw, digest, '04' + key.provider.public_key),
        'high-S variant: noble v2 verify (lowS: true by default) refuses it as is');
    ok(oc.verify(key.provider.public_key, msg, h.signature),
        'high-S variant: oc.verify accepts it after normalising s to n - s');
    is(raw.normalizeS().toCompactHex(), V.proofs[0].strict_signature.slice(0, 128),
        'high-S variant: normalised, it is the vector\'s low-S signature');
    ok(!oc.verifyEmitted(key.provider.public_key, msg, h.signature),
        'high-S variant: never acceptable as something ocgate emits');
});

// --- request and response signing strings --------------------------------------------------
for (const [i, r] of V.requests.entries()) {
    guarded(`request ${i + 1}`, () => {
        is(oc.sha256Hex(r.body), r.body_sha256, `request ${i + 1}: body sha256`);
        is(oc.requestString(r), r.string_to_sign, `request ${i + 1}: string to sign`);
        const h = oc.requestHeaders({ ...r, priv: key[r.signer].private_key });
        is(JSON.stringify(h), JSON.stringify({
            'X-OC-ID': r.ocid, 'X-OC-Timestamp': r.timestamp, 'X-OC-Nonce': r.nonce,
            'X-OC-Signature': r.signature,
        }), `request ${i + 1}: headers and signature reproduced byte for byte`);
        ok(oc.verify(key[r.signer].public_key, r.string_to_sign, r.signature),
            `request ${i + 1}: signature verifies`);
        const hb = oc.requestHeaders({ ...r, body: Buffer.from(r.body), priv: key[r.signer].private_key });
        is(hb['X-OC-Signature'], r.signature, `request ${i + 1}: same signature from a Buffer body`);
    });
}
const fresh = oc.requestHeaders({ ocid: 7, priv: key.provider.private_key, method: 'get', path: '/x' });
ok(/^req_[0-9a-f]{32}$/.test(fresh['X-OC-Nonce']) &&
    Math.abs(Number(fresh['X-OC-Timestamp']) - oc.nowSeconds()) <= 2,
    'requestHeaders defaults: fresh req_ nonce and current timestamp');
ok(oc.verify(key.provider.public_key, oc.requestString({ ocid: 7, timestamp: fresh['X-OC-Timestamp'],
    nonce: fresh['X-OC-Nonce'], method: 'GET', path: '/x', body: '' }), fresh['X-OC-Signature']),
    'requestHeaders upper-cases the method and hashes the empty body');

for (const [i, r] of V.responses.entries()) {
    guarded(`response ${i + 1}`, () => {
        const pub = key[r.signer].public_key;
        is(oc.responseString(r), r.string_to_sign, `response ${i + 1}: string to sign`);
        is(oc.sign(key[r.signer].private_key, r.string_to_sign), r.signature,
            `response ${i + 1}: signature reproduced byte for byte`);
        const res = {
            status: r.status,
            headers: { 'x-oc-id': r.ocid, 'x-oc-timestamp': r.timestamp, 'x-oc-signature': r.signature },
            body: r.body,
        };
        ok(oc.verifyResponse(pub, res, { expectOcid: r.ocid }), `response ${i + 1}: verifyResponse accepts it`);
        ok(oc.verifyResponse(pub, { ...res, rawBody: Buffer.from(r.body) }),
            `response ${i + 1}: verifyResponse hashes rawBody`);
        ok(!oc.verifyResponse(pub, res, { expectOcid: '301' }), `response ${i + 1}: wrong responder OCID refused`);
        ok(!oc.verifyResponse(pub, { ...res, status: 201 }), `response ${i + 1}: another status refused`);
        ok(!oc.verifyResponse(pub, { ...res, body: r.body + ' ' }), `response ${i + 1}: another body refused`);
        ok(!oc.verifyResponse(pub, { ...res, headers: { ...res.headers, 'x-oc-timestamp': '1706500503' } }),
            `response ${i + 1}: another timestamp refused`);
        const missing = { ...res.headers };
        delete missing['x-oc-signature'];
        ok(!oc.verifyResponse(pub, { ...res, headers: missing }), `response ${i + 1}: unsigned refused`);
        ok(!oc.verifyResponse(pub, res, { maxSkewSeconds: 300 }), `response ${i + 1}: stale timestamp refused with maxSkewSeconds`);
    });
}

// --- request() against a local server: raw bytes out, signatures both ways ---------------
// Exercises oc.request the way scenarios use it, before ocgate's server exists: the body
// bytes must arrive unchanged (duplicate-key JSON is the server's to refuse, so it must not be
// re-serialised on the way), and the server's signed answer must verify.
async function httpChecks() {
    const gw = key.gateway;
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks);
            if (req.url === '/hang') return; // never answers: request()'s deadline must fire
            const h = req.headers;
            const authOk = oc.verify(key.provider.public_key, oc.requestString({
                ocid: h['x-oc-id'], timestamp: h['x-oc-timestamp'], nonce: h['x-oc-nonce'],
                method: req.method, path: req.url, body: raw,
            }), h['x-oc-signature']);
            const body = JSON.stringify({ authOk, sha256: oc.sha256Hex(raw), len: raw.length });
            const ts = String(oc.nowSeconds());
            const status = authOk ? 200 : 401;
            res.writeHead(status, {
                'Content-Type': 'application/json', 'X-OC-ID': '300', 'X-OC-Timestamp': ts,
                'X-OC-Signature': oc.sign(gw.private_key, oc.responseString({ ocid: 300, timestamp: ts, status, body })),
            });
            res.end(body);
        });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = server.address().port;
    try {
        const body = V.duplicate_keys.body;
        const p = '/opencharge/transfer/webhook?q=%20';
        const headers = oc.requestHeaders({ ocid: 100, priv: key.provider.private_key, method: 'POST', path: p, body });
        for (const keepAlive of [false, true]) {
            const res = await oc.request({ port, method: 'POST', path: p, body, headers, keepAlive });
            const got = JSON.parse(res.body);
            ok(res.status === 200 && got.authOk, `request (keepAlive ${keepAlive}): server verified our X-OC signature`);
            is(got.sha256, oc.sha256Hex(body), `request (keepAlive ${keepAlive}): body bytes arrived unchanged`);
            ok(oc.verifyResponse(gw.public_key, res, { expectOcid: 300, maxSkewSeconds: 5 }),
                `request (keepAlive ${keepAlive}): signed response verifies over rawBody`);
        }
        const bin = Buffer.from([0xff, 0x00, 0x7b, 0x0a]);
        const res = await oc.request({ port, method: 'POST', path: '/b', body: bin,
            headers: oc.requestHeaders({ ocid: 100, priv: key.provider.private_key, method: 'POST', path: '/b', body: bin }) });
        ok(JSON.parse(res.body).authOk && JSON.parse(res.body).len === 4, 'request sends a Buffer (invalid UTF-8) byte for byte');
        const t0 = Date.now();
        let err = null;
        try {
            await oc.request({ port, path: '/hang', timeoutMs: 300 });
        } catch (e) {
            err = e;
        }
        ok(err && Date.now() - t0 < 3000, 'request gives up at its deadline', err);
        let refused = null;
        try { await oc.request({ host: 'localhost', port, path: '/' }); } catch (e) { refused = e; }
        ok(refused !== null, 'request refuses hosts other than 127.0.0.1');
    } finally {
        oc.closeAgents();
        server.closeAllConnections?.();
        server.close();
    }
}

try {
    await httpChecks();
} catch (e) {
    ok(false, 'HTTP checks (threw)', e && e.stack);
}

console.log(`1..${n}`);
if (failures) console.log(`# ${failures} of ${n} failed`);
process.exitCode = failures ? 1 : 0;
