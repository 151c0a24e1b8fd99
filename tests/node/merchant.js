// A fake merchant for delivery tests: an HTTP or HTTPS server on 127.0.0.1 that receives the
// gateway's notifications (POST <base>/transfer/webhook), checks every one independently with
// oc.js — the request's X-OC-* signature over the six-line string and the forwarded proof's
// signature in the merchant's canonical form (strict or legacy), both against the gateway's
// published key — records it, and answers as the test programs it to.
//
//   const m = await startMerchant({ gatewayKey, gatewayOcid, form: 'strict', basePath: '/hooks' });
//   m.behave(failTimes(500, 2));       // per delivery id: two 500s, then accepted
//   ... m.receipts: [{ id, attempt, at, headers, body, proof, requestOk, proofOk, ... }]
//   await m.close();
//
// Behaviours are functions (receipt, merchant) → answer | Promise<answer>, where an answer is
// { status, body?, headers?, delayMs?, hold? }; helpers below cover the design's cases.
// makeTestPki() writes a throwaway CA and leaf certificates with the openssl command.
//
// Shares no code with ocgate; Node >= 18.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import * as oc from './oc.js';

const MAX_BODY = 1024 * 1024;

// --- behaviours ---------------------------------------------------------------------------

const json = (v) => JSON.stringify(v);

export const accept = () => () => ({ status: 200, body: json({ status: 'accepted' }) });
export const reject = () => () => ({ status: 200, body: json({ status: 'rejected' }) });
export const status = (code, body = json({ error: 'no' }), headers = {}) =>
    () => ({ status: code, body, headers });
export const gone = () => status(410, json({ error: 'gone' }));
export const rateLimited = (retryAfter) =>
    status(429, json({ error: 'slow down' }), { 'Retry-After': String(retryAfter) });

// Fails the first k attempts of each delivery id with `code` (or the answer `fail` makes),
// then delegates to `then` (accept by default).
export function failTimes(code, k, then = accept()) {
    const seen = new Map();
    return (r, m) => {
        const n = (seen.get(r.id) || 0) + 1;
        seen.set(r.id, n);
        if (n <= k) return typeof code === 'function' ? code(r, m) : { status: code, body: json({ error: `fail ${n}` }) };
        return then(r, m);
    };
}

// Answers after ms (e.g. longer than the gateway's timeout), with `then`'s answer.
export function sleep(ms, then = accept()) {
    return async (r, m) => ({ ...(await then(r, m)), delayMs: ms });
}

// Never answers until released (m.releaseHeld()), then answers with `then`. The gateway may
// die meanwhile; the socket then just closes.
export function hold(then = accept()) {
    return (r, m) => ({ ...then(r, m), hold: true });
}

// --- verification -------------------------------------------------------------------------

function header(req, name) {
    const v = req.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
}

function verifyRequest(req, raw, { gatewayKey, gatewayOcid }) {
    const ocid = header(req, 'X-OC-ID');
    const ts = header(req, 'X-OC-Timestamp');
    const nonce = header(req, 'X-OC-Nonce');
    const sig = header(req, 'X-OC-Signature');
    if (!ocid || !ts || !nonce || !sig) return { ok: false, why: 'missing X-OC-* header' };
    if (String(ocid) !== String(gatewayOcid)) return { ok: false, why: `X-OC-ID ${ocid}` };
    if (!/^[1-9][0-9]*$/.test(ts) || Math.abs(Number(ts) - oc.nowSeconds()) > 300) {
        return { ok: false, why: `X-OC-Timestamp ${ts} outside ±300 s` };
    }
    const message = oc.requestString({ ocid, timestamp: ts, nonce, method: req.method, path: req.url, body: raw });
    if (!oc.verifyEmitted(gatewayKey, message, sig)) return { ok: false, why: 'X-OC-Signature does not verify' };
    return { ok: true, why: '' };
}

function verifyProof(parsed, { gatewayKey, form }) {
    if (!parsed || typeof parsed !== 'object' || !parsed.proof || typeof parsed.signature !== 'string') {
        return { ok: false, strictOk: false, why: 'body is not {proof, signature}' };
    }
    let text;
    try {
        text = oc.canonical(parsed.proof, form);
    } catch (e) {
        return { ok: false, strictOk: false, why: `proof cannot be canonicalised: ${e.message}` };
    }
    const ok = oc.verifyEmitted(gatewayKey, text, parsed.signature);
    let strictOk = false;
    try {
        strictOk = oc.verify(gatewayKey, oc.canonicalStrict(parsed.proof), parsed.signature);
    } catch {
        strictOk = false;
    }
    return { ok, strictOk, why: ok ? '' : `proof signature does not verify in the ${form} form` };
}

// --- the server ---------------------------------------------------------------------------

// Options: gatewayKey (128-hex, required), gatewayOcid (required), form ('strict'|'legacy'),
// basePath ('' or '/x'), tls ({ cert, key } PEM file paths) for HTTPS, behaviour (default
// accept()). Resolves to the merchant object once listening.
export async function startMerchant({ gatewayKey, gatewayOcid, form = 'strict', basePath = '',
    tls, behaviour = accept() }) {
    if (!gatewayKey || gatewayOcid === undefined) throw new Error('startMerchant needs gatewayKey and gatewayOcid');
    const m = {
        form, basePath, receipts: [], behaviour, held: [], open: 0, maxOpen: 0, server: null, port: 0,
        sockets: new Set(),
        get url() { return `${tls ? 'https' : 'http'}://127.0.0.1:${m.port}${basePath}`; },
        behave(fn) { m.behaviour = fn; },
        // Receipts for one delivery id, in arrival order.
        of(id) { return m.receipts.filter((r) => r.id === id); },
        accepted(id) { return m.receipts.filter((r) => r.id === id && r.answered === 200 && r.outcome === 'accepted'); },
        releaseHeld() {
            const held = m.held;
            m.held = [];
            for (const release of held) release();
        },
        close: () => new Promise((resolve) => {
            m.releaseHeld();
            for (const s of m.sockets) s.destroy();
            m.server.close(() => resolve());
        }),
    };

    const handler = (req, res) => {
        const chunks = [];
        let size = 0;
        req.on('data', (c) => {
            size += c.length;
            if (size <= MAX_BODY) chunks.push(c);
        });
        req.on('end', async () => {
            const raw = Buffer.concat(chunks);
            const text = raw.toString('utf8');
            let parsed;
            try {
                parsed = JSON.parse(text);
            } catch {
                parsed = undefined;
            }
            const reqCheck = verifyRequest(req, raw, { gatewayKey, gatewayOcid });
            const proofCheck = verifyProof(parsed, { gatewayKey, form });
            const r = {
                at: Date.now(),
                method: req.method,
                path: req.url,
                id: header(req, 'X-OC-Delivery-Id'),
                attempt: Number(header(req, 'X-OC-Delivery-Attempt')),
                nonce: header(req, 'X-OC-Nonce'),
                headers: { ...req.headers },
                body: text,
                proof: parsed && parsed.proof,
                signature: parsed && parsed.signature,
                requestOk: reqCheck.ok,
                proofOk: proofCheck.ok,
                proofStrictOk: proofCheck.strictOk,
                why: [reqCheck.why, proofCheck.why].filter(Boolean).join('; '),
                answered: null,
                outcome: null,
            };
            m.receipts.push(r);
            // The gateway may give up (timeout) or die before we answer.
            res.on('close', () => { if (!res.writableFinished) r.aborted = true; });
            m.open += 1;
            m.maxOpen = Math.max(m.maxOpen, m.open);
            let answer;
            if (req.method !== 'POST' || req.url !== `${basePath}/transfer/webhook`) {
                answer = { status: 404, body: json({ error: 'not found' }) };
            } else {
                try {
                    answer = await m.behaviour(r, m);
                } catch (e) {
                    answer = { status: 500, body: json({ error: String(e && e.message) }) };
                }
            }
            if (answer.hold) await new Promise((resolve) => m.held.push(resolve));
            if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
            m.open -= 1;
            if (r.aborted || res.destroyed || res.writableEnded) return;
            r.answered = answer.status;
            try {
                r.outcome = JSON.parse(answer.body || 'null')?.status ?? null;
            } catch {
                r.outcome = null;
            }
            res.writeHead(answer.status, { 'Content-Type': 'application/json', ...(answer.headers || {}) });
            res.end(answer.body || '');
        });
    };

    m.server = tls
        ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, handler)
        : http.createServer(handler);
    m.server.on('connection', (s) => {
        m.sockets.add(s);
        s.on('close', () => m.sockets.delete(s));
    });
    m.server.on('tlsClientError', () => { /* a refused handshake is the client's business */ });
    await new Promise((resolve, reject) => {
        m.server.once('error', reject);
        m.server.listen(0, '127.0.0.1', resolve);
    });
    m.port = m.server.address().port;
    return m;
}

// A "merchant" that accepts TCP connections and never says a word: every attempt to it can
// only end in the gateway's timeout. Records when each connection arrived.
export async function startBlackHole() {
    const b = { connections: [], sockets: new Set(), server: null, port: 0 };
    b.server = net.createServer((s) => {
        b.connections.push(Date.now());
        b.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => b.sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
        b.server.once('error', reject);
        b.server.listen(0, '127.0.0.1', resolve);
    });
    b.port = b.server.address().port;
    b.url = `http://127.0.0.1:${b.port}`;
    b.close = () => new Promise((resolve) => {
        for (const s of b.sockets) s.destroy();
        b.server.close(() => resolve());
    });
    return b;
}

// The gateway's key as it publishes it: config.publicKey of <base>/metadata.json.
export async function fetchGatewayKey({ port, base }) {
    const res = await oc.request({ port, method: 'GET', path: `${base}/metadata.json` });
    if (res.status !== 200) throw new Error(`metadata.json → ${res.status}`);
    const meta = JSON.parse(res.body);
    const key = meta && meta.config && meta.config.publicKey;
    if (typeof key !== 'string' || !oc.parsePublicKey(key)) throw new Error('metadata.json has no config.publicKey');
    return key;
}

// --- a throwaway PKI ----------------------------------------------------------------------

function openssl(args, cwd) {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
}

// Writes into dir: ca.pem (a CA), good.pem/good.key (a leaf for IP 127.0.0.1 and localhost,
// signed by the CA) and wrong.pem/wrong.key (a leaf signed by the same CA for another name).
// Returns their paths.
export function makeTestPki(dir) {
    fs.mkdirSync(dir, { recursive: true });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
        '-subj', '/CN=ocgate delivery test CA',
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    const leaf = (name, cn, san) => {
        fs.writeFileSync(path.join(dir, `${name}.ext`),
            `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n` +
            `extendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
        openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
        openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
    };
    leaf('good', '127.0.0.1', 'IP:127.0.0.1,DNS:localhost');
    leaf('wrong', 'wrong.example', 'DNS:wrong.example');
    const p = (f) => path.join(dir, f);
    return {
        ca: p('ca.pem'),
        good: { cert: p('good.pem'), key: p('good.key') },
        wrong: { cert: p('wrong.pem'), key: p('wrong.key') },
    };
}
