// The reliability scenarios' load driver: `concurrency` workers, each looping
// POST /payment/create → POST /transfer/webhook (a provider proof for that payment) against one
// gateway port, until stopped. Every answer (or the network error instead of one) is appended
// to a JSON-lines file and kept in memory, so the checks afterwards can ask "was everything
// that was answered 2xx really committed?". It is NOT the benchmark tool (bench/, issue 6):
// that one was not available when these tests were written. To swap it in, have it write the
// same records (one JSON object per line):
//
//   {"t": ms since epoch, "op": "create"|"webhook", "status": HTTP status or 0 (no answer),
//    "code": error.code or null, "txid": payment txid (webhook: the one it settles) or null,
//    "proofTxid": the provider proof's txid (webhook), "ms": latency, "sigOk": gateway
//    signature verified, "err": network error text or null}
//
// plus, for webhooks, the exact body sent (the `bodies` map below) so unanswered ones can be
// sent again; the checks in lib.mjs read nothing else.
//
// Answers are checked with oc.js (tests/node), which shares no code with ocgate: every status
// > 0 must carry a valid gateway signature (sigOk false is reported by the scenarios).

import fs from 'node:fs';
import * as oc from '../node/oc.js';

export class Recorder {
    constructor(file) {
        this.file = file;
        this.fd = file ? fs.openSync(file, 'a', 0o600) : null;
        this.records = [];
        this.bodies = new Map();   // proofTxid → webhook body sent
    }

    add(rec) {
        this.records.push(rec);
        if (this.fd !== null) fs.writeSync(this.fd, `${JSON.stringify(rec)}\n`);
    }

    close() {
        if (this.fd !== null) fs.closeSync(this.fd);
        this.fd = null;
    }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function codeOf(body) {
    try {
        const j = JSON.parse(body);
        return (j && j.error && j.error.code) || (j && j.status) || null;
    } catch {
        return null;
    }
}

let seq = 0;

// One signed request; never throws: a network error becomes status 0 with err.
async function send({ as, port, method, path, body, timeoutMs, gatewayKey, gatewayOcid, verify = true }) {
    const t0 = Date.now();
    const headers = oc.requestHeaders({ ocid: as.ocid, priv: as.priv, method, path, body });
    try {
        const res = await oc.request({ port, method, path, body, headers, timeoutMs });
        const sigOk = verify ? oc.verifyResponse(gatewayKey, res, { expectOcid: String(gatewayOcid), maxSkewSeconds: 60 }) : null;
        return { status: res.status, body: res.body, code: codeOf(res.body), ms: Date.now() - t0, sigOk, err: null };
    } catch (e) {
        return { status: 0, body: '', code: null, ms: Date.now() - t0, sigOk: null, err: String(e && e.message) };
    }
}

// A provider proof settling payment txid; the body is exactly what the webhook sends.
export function webhookBody({ provider, gatewayOcid, txid, amount }) {
    seq += 1;
    const proof = oc.makeProof({
        txid: `rtx_${seq}_${oc.newNonce().slice(0, 12)}`, issuer: provider.ocid,
        from: { ocid: 4242, reference: `wallet_${seq}` },
        to: { ocid: Number(gatewayOcid), reference: txid }, amount, currency: 'USD',
    });
    return { proofTxid: proof.txid, body: JSON.stringify(oc.signProof(provider.priv, proof)) };
}

// Starts the workers; returns { stop(): Promise (resolves when every worker has finished its
// current request), count(): records so far, inFlight(): requests not yet answered }.
// Options: app, provider, merchants (array of {ocid}), port (number or a function returning
// the current port), base (path prefix), gatewayKey, gatewayOcid, concurrency, recorder,
// timeoutMs (per request, default 10000), backoffMs after a network error (default 25),
// total (stop after that many payments were attempted; then `done` resolves), verify (check
// each answer's signature, default true; a pure-JS verify costs ~10-20 ms of this process's
// one thread, so timing runs turn it off and record sigOk null), onRecord(rec).
export function startLoad(opts) {
    const { app, provider, merchants, base, gatewayKey, gatewayOcid, recorder } = opts;
    const concurrency = opts.concurrency ?? 8;
    const timeoutMs = opts.timeoutMs ?? 10000;
    const backoffMs = opts.backoffMs ?? 25;
    const portOf = typeof opts.port === 'function' ? opts.port : () => opts.port;
    let stopping = false;
    let n = 0;
    let inFlight = 0;
    const common = { timeoutMs, gatewayKey, gatewayOcid, verify: opts.verify ?? true };
    const tracked = async (args) => {
        inFlight += 1;
        try { return await send(args); } finally { inFlight -= 1; }
    };
    const record = (rec) => {
        recorder.add(rec);
        if (opts.onRecord) opts.onRecord(rec);
    };

    async function worker(w) {
        while (!stopping) {
            if (opts.total !== undefined && n >= opts.total) break;
            n += 1;
            const merchant = merchants[n % merchants.length];
            const amount = `${1 + (n % 97)}.${String(n % 100).padStart(2, '0')}`;
            const createBody = JSON.stringify({ to: merchant.ocid, amount, currency: 'USD', reference: `r${w}_${n}` });
            const c = await tracked({ as: app, port: portOf(), method: 'POST', path: `${base}/payment/create`, body: createBody, ...common });
            let txid = null;
            if (c.status === 200) {
                try { txid = JSON.parse(c.body).txid || null; } catch { txid = null; }
            }
            record({ t: Date.now(), op: 'create', status: c.status, code: c.code, txid, proofTxid: null, ms: c.ms, sigOk: c.sigOk, err: c.err, merchant: merchant.ocid });
            if (c.status === 0) { await sleep(backoffMs); continue; }
            if (!txid || stopping) continue;
            const { proofTxid, body } = webhookBody({ provider, gatewayOcid, txid, amount });
            recorder.bodies.set(proofTxid, body);
            const r = await tracked({ as: provider, port: portOf(), method: 'POST', path: `${base}/transfer/webhook`, body, ...common });
            record({ t: Date.now(), op: 'webhook', status: r.status, code: r.code, txid, proofTxid, ms: r.ms, sigOk: r.sigOk, err: r.err, merchant: merchant.ocid });
            if (r.status === 0) await sleep(backoffMs);
        }
    }

    const workers = [];
    for (let w = 0; w < concurrency; w++) workers.push(worker(w));
    const all = Promise.all(workers);
    return {
        stop: async () => { stopping = true; await all; },
        done: all,
        count: () => recorder.records.length,
        inFlight: () => inFlight,
    };
}

// Sends the webhook of proofTxid again (same body, new nonce); returns the send() result.
export function resendWebhook({ provider, port, base, gatewayKey, gatewayOcid, recorder, proofTxid, timeoutMs = 10000 }) {
    const body = recorder.bodies.get(proofTxid);
    if (!body) throw new Error(`no body recorded for ${proofTxid}`);
    return send({ as: provider, port, method: 'POST', path: `${base}/transfer/webhook`, body, timeoutMs, gatewayKey, gatewayOcid });
}
