// Independent Opencharge client for ocgate's tests.
//
// Everything here is written against the protocol text (spec sections 2-4, design.md
// "Decisions") with @noble/secp256k1, @noble/hashes and node:crypto, and shares no code with
// ocgate's C implementation: a bug common to ocgate's signer and verifier cannot pass a test
// that signs and checks with this file. tests/node/self-test.js pins it to the interop
// vectors byte for byte.
//
// Compatible with Node 18 (no fetch, no global WebCrypto: randomness comes from node:crypto).

import * as secp from '@noble/secp256k1';
import { hmac } from '@noble/hashes/hmac';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';

// noble's synchronous sign() needs an HMAC-SHA256 for RFC 6979 nonces; it ships none.
secp.etc.hmacSha256Sync = (key, ...msgs) => hmac(nobleSha256, key, secp.etc.concatBytes(...msgs));

const HEX = /^[0-9a-fA-F]*$/;
const HALF_N = secp.CURVE.n >> 1n;

// ---------------------------------------------------------------------------------------------
// Canonical JSON
// ---------------------------------------------------------------------------------------------

// An "array index" in JavaScript: the canonical decimal text of an integer 0 .. 2^32-2.
// Objects with such keys are refused in anything signed (design.md, canonical JSON):
// JS engines enumerate them first, in numeric order, whatever the sort says.
export function isArrayIndexKey(key) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(key)) return false;
    return Number(key) <= 4294967294;
}

// A lone UTF-16 surrogate cannot be encoded as UTF-8, so ocgate can never receive it;
// refusing it here keeps tests from signing text no peer could reproduce.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// Returns a deep copy whose objects have their keys inserted in sorted order, after checking
// every value is one the strict form allows. JSON.stringify then does the escaping and number
// formatting, which is the de-facto reference (spec 4.1).
function sortedCopy(value, where) {
    if (value === null || typeof value === 'boolean') return value;
    if (typeof value === 'string') {
        if (LONE_SURROGATE.test(value)) throw new TypeError(`${where}: lone surrogate in string`);
        return value;
    }
    if (typeof value === 'number') {
        if (!Number.isSafeInteger(value)) {
            throw new TypeError(`${where}: ${value} is not an integer within ±(2^53-1)`);
        }
        return value;
    }
    if (Array.isArray(value)) return value.map((v, i) => sortedCopy(v, `${where}[${i}]`));
    if (typeof value === 'object') {
        const out = {};
        // Default sort compares UTF-16 code units: exactly the order the protocol fixes.
        for (const key of Object.keys(value).sort()) {
            if (isArrayIndexKey(key)) throw new TypeError(`${where}: array-index key "${key}"`);
            if (LONE_SURROGATE.test(key)) throw new TypeError(`${where}: lone surrogate in key`);
            out[key] = sortedCopy(value[key], `${where}.${key}`);
        }
        return out;
    }
    // undefined, functions, bigint, symbols: JSON.stringify would drop or throw on them;
    // a test passing one has a bug, so say so instead of signing something surprising.
    throw new TypeError(`${where}: unsupported value of type ${typeof value}`);
}

// The strict form ocgate signs and verifies: keys sorted recursively, no whitespace.
export function canonicalStrict(value) {
    return JSON.stringify(sortedCopy(value, '$'));
}

// The docs' sample code, verbatim: the top-level keys act as an allow-list at every depth,
// so nested keys absent from the top level are dropped. Only for "legacy" participants.
export function canonicalLegacy(obj) {
    return JSON.stringify(obj, Object.keys(obj).sort());
}

export function canonical(value, form = 'strict') {
    if (form === 'strict') return canonicalStrict(value);
    if (form === 'legacy') return canonicalLegacy(value);
    throw new TypeError(`unknown canonical form ${form}`);
}

// ---------------------------------------------------------------------------------------------
// Hashes, keys, signatures
// ---------------------------------------------------------------------------------------------

function toBytes(data) {
    if (typeof data === 'string') return Buffer.from(data, 'utf8');
    if (data instanceof Uint8Array) return data;
    throw new TypeError('expected a string or a Buffer');
}

// Lowercase hex SHA-256 of a string's UTF-8 bytes or of a Buffer, as on the wire.
export function sha256Hex(data) {
    return createHash('sha256').update(toBytes(data)).digest('hex');
}

function sha256Bytes(data) {
    return new Uint8Array(createHash('sha256').update(toBytes(data)).digest());
}

function checkPrivHex(privHex) {
    if (typeof privHex !== 'string' || privHex.length !== 64 || !HEX.test(privHex) ||
        !secp.utils.isValidPrivateKey(privHex.toLowerCase())) {
        throw new TypeError('private key must be 64 hex digits in [1, n-1]');
    }
    return privHex.toLowerCase();
}

// 128-hex x‖y, the form Opencharge publishes.
export function publicKey(privHex) {
    return secp.etc.bytesToHex(secp.getPublicKey(checkPrivHex(privHex), false)).slice(2);
}

// 32 bytes from the OS CSPRNG, retried in the (2^-128 likely) case they are not a valid key.
export function randomPrivateKey() {
    for (;;) {
        const hex = randomBytes(32).toString('hex');
        if (secp.utils.isValidPrivateKey(hex)) return hex;
    }
}

// Accepts 128-hex (x‖y), 130-hex with 04, 66-hex compressed, any case (design.md, keys).
// Returns a noble Point, or null if the text is not a key on the curve.
export function parsePublicKey(pubHex) {
    if (typeof pubHex !== 'string' || !HEX.test(pubHex)) return null;
    let hex = pubHex.toLowerCase();
    if (hex.length === 128) hex = '04' + hex;
    else if (hex.length === 130) { if (!hex.startsWith('04')) return null; }
    else if (hex.length === 66) { if (!/^0[23]/.test(hex)) return null; }
    else return null;
    try {
        return secp.ProjectivePoint.fromHex(hex);
    } catch {
        return null;
    }
}

// sign(SHA256(message)) with RFC 6979 nonces and low S (noble's defaults), as 130 lowercase
// hex r‖s‖v with v = 27 + recovery id.
export function sign(privHex, message) {
    const sig = secp.sign(sha256Bytes(message), checkPrivHex(privHex));
    // Recovery ids 2 and 3 need r >= n: probability about 2^-128, and v has no encoding for it.
    if (sig.recovery !== 0 && sig.recovery !== 1) throw new Error('unencodable recovery id');
    return sig.toCompactHex() + (27 + sig.recovery).toString(16);
}

// Splits a signature into noble's Signature and the recovery id from v (null when absent).
// Returns null if the text cannot be a signature.
function parseSignature(sigHex) {
    if (typeof sigHex !== 'string' || !HEX.test(sigHex)) return null;
    if (sigHex.length !== 128 && sigHex.length !== 130) return null;
    let recovery = null;
    if (sigHex.length === 130) {
        const v = sigHex.slice(128).toLowerCase();
        if (v !== '1b' && v !== '1c') return null;
        recovery = v === '1b' ? 0 : 1;
    }
    try {
        // fromCompact refuses r or s outside [1, n-1].
        return { sig: secp.Signature.fromCompact(sigHex.slice(0, 128).toLowerCase()), recovery };
    } catch {
        return null;
    }
}

// The verification rule ocgate applies to foreign signatures (design.md, keys/signatures):
// key 128/130/66 hex; signature 130 hex with v in {1b, 1c} or 128 hex without v; any case.
//
// High S: noble v2's verify() refuses s > n/2 by default (lowS: true). (r, n-s) is the same
// signature mirrored, so a high-S signature is accepted *after normalising* it to low S,
// exactly as ocgate does with secp256k1_ecdsa_signature_normalize. v is only range-checked,
// as the protocol never says to recover the key; verifyEmitted() is the strict check.
export function verify(pubHex, message, sigHex) {
    const pub = parsePublicKey(pubHex);
    const parsed = parseSignature(sigHex);
    if (!pub || !parsed) return false;
    const sig = parsed.sig.normalizeS();
    return secp.verify(sig, sha256Bytes(message), pub.toRawBytes(false), { lowS: true });
}

// What ocgate must *emit* (design.md: "always emit low-S, RFC 6979, with v ... lowercase on
// output"): 130 lowercase hex, s <= n/2, valid, and v the true recovery id, so clients that
// recover the key from v get the gateway's key.
export function verifyEmitted(pubHex, message, sigHex) {
    if (typeof sigHex !== 'string' || !/^[0-9a-f]{128}1[bc]$/.test(sigHex)) return false;
    if (!verify(pubHex, message, sigHex)) return false;
    const { sig, recovery } = parseSignature(sigHex);
    if (sig.s > HALF_N) return false;
    try {
        const recovered = sig.addRecoveryBit(recovery).recoverPublicKey(sha256Bytes(message));
        return recovered.equals(parsePublicKey(pubHex));
    } catch {
        return false;
    }
}

// ---------------------------------------------------------------------------------------------
// Request and response authentication (spec section 3)
// ---------------------------------------------------------------------------------------------

export function requestString({ ocid, timestamp, nonce, method, path, body = '' }) {
    return [String(ocid), String(timestamp), nonce, method.toUpperCase(), path,
        sha256Hex(body)].join('\n');
}

export function responseString({ ocid, timestamp, status, body = '' }) {
    return [String(ocid), String(timestamp), String(status), sha256Hex(body)].join('\n');
}

export function newNonce() {
    return 'req_' + randomBytes(16).toString('hex');
}

export function nowSeconds() {
    return Math.floor(Date.now() / 1000);
}

// The four X-OC-* headers of a request. body is hashed exactly as given (string as UTF-8, or
// raw bytes): pass the very bytes that will be sent.
export function requestHeaders({ ocid, priv, method, path, body = '', timestamp, nonce }) {
    const ts = timestamp ?? nowSeconds();
    const n = nonce ?? newNonce();
    const signature = sign(priv, requestString({ ocid, timestamp: ts, nonce: n, method, path, body }));
    return {
        'X-OC-ID': String(ocid),
        'X-OC-Timestamp': String(ts),
        'X-OC-Nonce': n,
        'X-OC-Signature': signature,
    };
}

function header(headers, name) {
    const want = name.toLowerCase();
    for (const [k, v] of Object.entries(headers || {})) {
        if (k.toLowerCase() === want) return Array.isArray(v) ? v.join(', ') : v;
    }
    return undefined;
}

// Checks a response's X-OC-ID / X-OC-Timestamp / X-OC-Signature over
// "<ocid>\n<timestamp>\n<status>\n<sha256(body)>". The body hashed is rawBody when present
// (the exact bytes received), else body. By default the signature must be in the form ocgate
// emits (verifyEmitted); options: expectOcid (string|number), maxSkewSeconds, strict.
export function verifyResponse(gatewayPubHex, { status, headers, body = '', rawBody }, options = {}) {
    const { expectOcid, maxSkewSeconds, strict = true } = options;
    const ocid = header(headers, 'X-OC-ID');
    const ts = header(headers, 'X-OC-Timestamp');
    const sig = header(headers, 'X-OC-Signature');
    if (typeof ocid !== 'string' || !/^(0|[1-9][0-9]*)$/.test(ocid)) return false;
    if (typeof ts !== 'string' || !/^(0|[1-9][0-9]*)$/.test(ts)) return false;
    if (typeof sig !== 'string') return false;
    if (expectOcid !== undefined && ocid !== String(expectOcid)) return false;
    if (maxSkewSeconds !== undefined && Math.abs(Number(ts) - nowSeconds()) > maxSkewSeconds) {
        return false;
    }
    const message = responseString({ ocid, timestamp: ts, status, body: rawBody ?? body });
    return strict ? verifyEmitted(gatewayPubHex, message, sig) : verify(gatewayPubHex, message, sig);
}

// ---------------------------------------------------------------------------------------------
// Proofs (spec section 4)
// ---------------------------------------------------------------------------------------------

// A proof object with the protocol's field order (irrelevant to the signature, but it makes
// request bodies look like everyone else's). Optional fields left undefined are omitted,
// never sent as null (spec 4.1).
export function makeProof({ txid, issuer, from, to, amount, currency, timestamp, memo }) {
    const proof = { txid, issuer, from, to, amount, currency, timestamp: timestamp ?? nowSeconds() };
    if (memo !== undefined) proof.memo = memo;
    for (const side of ['from', 'to']) {
        if (proof[side] && proof[side].reference === undefined) {
            const { reference, ...rest } = proof[side];
            proof[side] = rest;
        }
    }
    return proof;
}

export function signProof(privHex, proof, form = 'strict') {
    return { proof, signature: sign(privHex, canonical(proof, form)) };
}

export function verifyProof(pubHex, proof, signature, form = 'strict') {
    let text;
    try {
        text = canonical(proof, form);
    } catch {
        return false;
    }
    return verify(pubHex, text, signature);
}

// ---------------------------------------------------------------------------------------------
// HTTP (node:http, loopback only)
// ---------------------------------------------------------------------------------------------

let keepAliveAgent = null;

function sharedKeepAliveAgent() {
    if (!keepAliveAgent) keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    return keepAliveAgent;
}

// Closes the sockets the keep-alive agent holds, so a scenario's process can exit.
export function closeAgents() {
    if (keepAliveAgent) keepAliveAgent.destroy();
    keepAliveAgent = null;
}

// One HTTP request to 127.0.0.1. body (string or Buffer) is sent byte for byte; Content-Length
// is added unless the caller set it or Transfer-Encoding. timeoutMs bounds the whole exchange.
// Resolves {status, headers, body (UTF-8 text), rawBody (Buffer)}; rejects on network errors.
export function request({ host = '127.0.0.1', port, method = 'GET', path = '/', body,
    headers = {}, keepAlive = false, timeoutMs = 10000 }) {
    if (host !== '127.0.0.1') return Promise.reject(new Error('tests talk to 127.0.0.1 only'));
    const hdrs = { ...headers };
    const payload = body === undefined ? undefined : toBytes(body);
    if (payload !== undefined && header(hdrs, 'Content-Length') === undefined &&
        header(hdrs, 'Transfer-Encoding') === undefined) {
        hdrs['Content-Length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
        const req = http.request({
            host, port, method, path, headers: hdrs,
            agent: keepAlive ? sharedKeepAliveAgent() : false,
        });
        const deadline = setTimeout(() => {
            req.destroy(new Error(`${method} ${path}: no complete answer within ${timeoutMs} ms`));
        }, timeoutMs);
        req.on('error', (e) => { clearTimeout(deadline); reject(e); });
        req.on('response', (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('error', (e) => { clearTimeout(deadline); reject(e); });
            res.on('end', () => {
                clearTimeout(deadline);
                const rawBody = Buffer.concat(chunks);
                resolve({ status: res.statusCode, headers: res.headers, body: rawBody.toString('utf8'), rawBody });
            });
        });
        req.end(payload);
    });
}
