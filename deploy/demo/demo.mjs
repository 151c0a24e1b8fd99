// The quick start's demo participants: a settlement provider, a payment app and a merchant
// receiver, played with the independent Opencharge client (tests/node/oc.js), never with
// ocgate's own code. It pushes one payment through the gateway end to end and checks every
// signature the gateway produces: its responses, its completed proof and what it forwards to
// the merchant.
//
//   node deploy/demo/demo.mjs --once|--serve   (settings come from QS_* variables)
import http from 'node:http';
import fs from 'node:fs';
import * as oc from '../../tests/node/oc.js';

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set (run deploy/quickstart.sh)`);
    return v;
};
const gatewayPort = Number(env('QS_GATEWAY_PORT'));
const merchantPort = Number(env('QS_MERCHANT_PORT'));
const base = env('QS_BASE_PATH');
const key = (name) => fs.readFileSync(env(name), 'utf8').trim();
const provider = { ocid: Number(env('QS_PROVIDER_OCID')), priv: key('QS_PROVIDER_KEY') };
const app = { ocid: Number(env('QS_APP_OCID')), priv: key('QS_APP_KEY') };
const merchantOcid = Number(env('QS_MERCHANT_OCID'));
const gatewayOcid = Number(env('QS_GATEWAY_OCID'));
const once = process.argv.includes('--once');

function say(msg) { console.log(`demo: ${msg}`); }

async function call(who, method, path, bodyObj) {
    const body = bodyObj === undefined ? '' : JSON.stringify(bodyObj);
    const headers = oc.requestHeaders({ ocid: who.ocid, priv: who.priv, method, path, body });
    if (body) headers['Content-Type'] = 'application/json';
    const res = await oc.request({ port: gatewayPort, method, path, body, headers, timeoutMs: 10000 });
    if (!oc.verifyResponse(gatewayKey, res)) throw new Error(`${method} ${path}: response signature invalid`);
    return { status: res.status, json: JSON.parse(res.body) };
}

async function waitForGateway() {
    const deadline = Date.now() + 20000;
    for (;;) {
        try {
            const res = await oc.request({ port: gatewayPort, method: 'GET', path: `${base}/metadata.json`, timeoutMs: 2000 });
            if (res.status === 200) return JSON.parse(res.body);
        } catch { /* not listening yet */ }
        if (Date.now() > deadline) throw new Error('the gateway did not come up within 20 s');
        await new Promise((r) => setTimeout(r, 200));
    }
}

// The merchant: verifies the request signature and the forwarded proof with the gateway's
// published key, then accepts.
let resolveDelivered;
const delivered = new Promise((r) => { resolveDelivered = r; });
function startMerchant() {
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            const h = req.headers;
            const requestOk = oc.verify(gatewayKey, oc.requestString({
                ocid: h['x-oc-id'], timestamp: h['x-oc-timestamp'], nonce: h['x-oc-nonce'],
                method: req.method, path: req.url, body: raw }), h['x-oc-signature'] || '');
            let body;
            try { body = JSON.parse(raw); } catch { body = {}; }
            const proofOk = body.proof && oc.verifyProof(gatewayKey, body.proof, body.signature || '');
            say(`merchant received delivery ${h['x-oc-delivery-id']} attempt ${h['x-oc-delivery-attempt']}` +
                ` for payment ${body.proof && body.proof.txid}: request signature ${requestOk ? 'valid' : 'INVALID'},` +
                ` proof signature ${proofOk ? 'valid' : 'INVALID'}`);
            const ok = requestOk && proofOk;
            res.writeHead(ok ? 200 : 400, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify(ok ? { status: 'accepted', txid: body.proof.txid }
                                      : { status: 'rejected', reason: 'signature' }));
            if (ok) resolveDelivered(body.proof);
        });
    });
    return new Promise((resolve) => server.listen(merchantPort, '127.0.0.1', () => resolve(server)));
}

let gatewayKey;
async function main() {
    const meta = await waitForGateway();
    gatewayKey = meta.config.publicKey;
    if (!oc.verify(gatewayKey, oc.canonicalStrict(meta.config), meta.signature)) {
        throw new Error('metadata.json signature invalid');
    }
    say(`gateway ${meta.ocid} is up; its metadata signature verifies`);
    const server = await startMerchant();

    const created = await call(app, 'POST', `${base}/payment/create`,
        { to: merchantOcid, amount: '15.00', currency: 'USD', memo: 'quick start demo',
          order: { id: `ord_${Date.now()}` } });
    if (created.status !== 200) throw new Error(`create: ${JSON.stringify(created.json)}`);
    const txid = created.json.txid;
    say(`payment app created payment ${txid} (15.00 USD)`);

    const { proof, signature } = oc.signProof(provider.priv, oc.makeProof({
        txid: `demo_tx_${Date.now()}`, issuer: provider.ocid, from: { ocid: app.ocid },
        to: { ocid: gatewayOcid, reference: txid }, amount: '15.00', currency: 'USD',
        timestamp: oc.nowSeconds() }));
    const hook = await call(provider, 'POST', `${base}/transfer/webhook`, { proof, signature });
    if (hook.status !== 200) throw new Error(`webhook: ${JSON.stringify(hook.json)}`);
    say(`settlement provider's proof accepted: ${JSON.stringify(hook.json)}`);

    const verified = await call(app, 'GET', `${base}/verify/${txid}`);
    const ok = verified.json.status === 'completed' &&
        oc.verifyProof(gatewayKey, verified.json.proof, verified.json.signature);
    if (!ok) throw new Error(`verify: ${JSON.stringify(verified.json)}`);
    say(`payment ${txid} is completed; the gateway's proof verifies`);

    const timeout = new Promise((_, reject) => setTimeout(
        () => reject(new Error('the merchant received nothing within 30 s')), 30000).unref());
    await Promise.race([delivered, timeout]);
    say(`DEMO OK ${txid}`);
    fs.writeFileSync(env('QS_RESULT_FILE'), `${txid}\n`);
    if (once) {
        server.close();
        oc.closeAgents();
        return;
    }
    say('merchant receiver keeps running; Ctrl-C stops everything');
}

main().catch((e) => { console.error(`demo: FAILED: ${e.message}`); process.exit(1); });
