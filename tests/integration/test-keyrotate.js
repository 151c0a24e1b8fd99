// Rotation of the gateway's own key (docs/key-rotation.md) against a real `ocgate serve` with
// its delivery worker: a notification is pending because its merchant is down; `ocgate key
// rotate` replaces the key file, SIGHUP makes the running gateway load it; then metadata.json
// publishes the new key (signed with it), every answer is signed with it, and when the
// merchant comes up the pending notification it receives verifies with the new key and not
// the old one (request signature and forwarded proof, checked with oc.js). Also: a gateway
// proof served by /verify after rotation is signed with the new key; a key file that cannot
// be used at SIGHUP changes nothing; `ocgate key rotate` refusals; `ocgate worker` reloads on
// SIGHUP too; a restart keeps the new key.
//   tests/integration/run-node.sh build/ocgate tests/integration/test-keyrotate.js
// Valid as CommonJS and as an ES module (no require, no top-level await), like smoke.js.

let h;
let oc;
let env;
let M;
let cp;
let fs;

function cli(args, extraEnv = {}) {
    const r = cp.spawnSync(env.bin, args, { env: { ...process.env, ...extraEnv }, encoding: 'utf8', timeout: 30000 });
    return { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

function verifiesWith(pub, r) {
    // The merchant's receipt: the request signature over the six-line string and the proof's
    // strict signature, both recomputed here with oc.js.
    const raw = Buffer.from(r.body, 'utf8');
    const msg = oc.requestString({ ocid: r.headers['x-oc-id'], timestamp: r.headers['x-oc-timestamp'],
        nonce: r.headers['x-oc-nonce'], method: r.method, path: r.path, body: raw });
    const reqOk = oc.verifyEmitted(pub, msg, r.headers['x-oc-signature']);
    let proofOk = false;
    try {
        proofOk = oc.verifyEmitted(pub, oc.canonicalStrict(r.proof), r.signature);
    } catch { proofOk = false; }
    return { reqOk, proofOk };
}

async function metadataKey(port) {
    const res = await h.call({ method: 'GET', path: h.url('/metadata.json'), port, unsigned: true });
    const key = res.json && res.json.config && res.json.config.publicKey;
    return { res, key };
}

import('node:child_process').then((m) => { cp = m; return import('node:fs'); }).then((m) => { fs = m; })
    .then(() => import('../node/merchant.js')).then((m) => { M = m; return import('../node/harness.js'); })
    .then((hm) => { h = hm; oc = h.oc; env = h.env; return h.run(main); });

async function main() {
    const keyFile = process.env.OCGATE_PRIVATE_KEY_FILE;
    const oldPub = env.pubkey;
    const baseEnv = {
        OCGATE_WORKER: 'true',
        OCGATE_OUTBOUND_ALLOW_LOOPBACK: 'true',
        OCGATE_DELIVERY_SCHEDULE: '1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s',
        OCGATE_DELIVERY_JITTER_PERCENT: '0',
        OCGATE_DELIVERY_TIMEOUT_MS: '1500',
        OCGATE_DELIVERY_CONNECT_TIMEOUT_MS: '1000',
        OCGATE_DELIVERY_LEASE: '3',
        OCGATE_DELIVERY_POLL_MS: '200',
        OCGATE_DELIVERY_BREAKER_FAILURES: '1000',
    };
    const provider = h.newParticipant({ ocid: 42001, roles: ['settlement_provider'] });
    const app = h.newParticipant({ ocid: 42002, roles: ['payment_app'] });
    // The merchant is down: its endpoint is a port nothing listens on.
    const deadPort = await h.freePort();
    const merchant = h.newParticipant({ ocid: 42003, roles: ['merchant'], endpoint: `http://127.0.0.1:${deadPort}/m` });

    const gw = await h.startGateway(baseEnv);
    h.is((await metadataKey(gw.port)).key, oldPub, 'before rotation metadata.json publishes the keygen key');

    // --- a settled payment whose notification cannot be delivered -----------------------
    const create = await h.signedCall({ as: app, method: 'POST', path: h.url('/payment/create'),
        body: JSON.stringify({ to: merchant.ocid, amount: '7.00', currency: 'USD', reference: 'ord-rot' }) });
    h.is(create.status, 200, 'payment created');
    const txid = create.json.txid;
    const proof = oc.makeProof({ txid: `rot_${oc.newNonce().slice(4, 14)}`, issuer: provider.ocid,
        from: { ocid: 4242, reference: 'w1' }, to: { ocid: Number(env.ocid), reference: txid },
        amount: '7.00', currency: 'USD' });
    const hook = await h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'),
        body: JSON.stringify(oc.signProof(provider.priv, proof)) });
    h.is(hook.status, 200, 'payment settled by webhook');
    const id = h.sql(`SELECT id FROM deliveries WHERE payment_txid = ${q(txid)}`);
    const failing = await h.waitFor(() => {
        const r = h.sql(`SELECT state || '|' || attempts FROM deliveries WHERE id = ${q(id)}`).split('|');
        return r[0] === 'pending' && Number(r[1]) >= 1 ? r : false;
    }, { timeoutMs: 10000, intervalMs: 100 });
    h.ok(failing, 'the notification is pending after at least one failed attempt (merchant down)',
        h.sql(`SELECT state || ' ' || attempts || ' ' || coalesce(last_error, '') FROM deliveries WHERE id = ${q(id)}`));

    // --- refusals of `ocgate key rotate`, before the real rotation --------------------------
    fs.chmodSync(keyFile, 0o640);
    let r = cli(['key', 'rotate']);
    h.ok(r.status === 1 && /group or others/.test(r.stderr) && !fs.existsSync(`${keyFile}.new`) && !fs.existsSync(`${keyFile}.old`),
        'key rotate refuses a current key file readable by group: exit 1, nothing written', r.stderr);
    fs.chmodSync(keyFile, 0o600);
    r = cli(['key', 'rotate', '--key-file', keyFile, '--config', '/dev/null']);
    h.is(r.status, 2, 'key rotate with both --key-file and --config: usage error (2)');
    r = cli(['key', 'frob']);
    h.is(r.status, 2, 'key frob: usage error (2)');
    r = cli(['key', 'show']);
    h.ok(r.status === 0 && r.stdout.trim() === oldPub, 'key show prints the configured public key');

    // --- rotate ---------------------------------------------------------------------------
    const oldSecret = fs.readFileSync(keyFile, 'utf8').trim();
    h.recordSecret(oldSecret);
    r = cli(['key', 'rotate']);
    const newPub = r.stdout.trim();
    h.ok(r.status === 0 && /^[0-9a-f]{128}$/.test(newPub) && newPub !== oldPub,
        'key rotate exits 0 and prints a new 128-hex public key', `${r.status} ${r.stdout} ${r.stderr}`);
    const newSecret = fs.readFileSync(keyFile, 'utf8').trim();
    h.is(oc.publicKey(newSecret), newPub, 'the key file now holds the key whose public key was printed');
    h.is((fs.statSync(keyFile).mode & 0o777).toString(8), '600', 'new key file mode 0600');
    h.is(fs.readFileSync(`${keyFile}.old`, 'utf8').trim(), oldSecret, 'the previous key is kept in FILE.old');
    h.is((fs.statSync(`${keyFile}.old`).mode & 0o777).toString(8), '600', 'FILE.old mode 0600');
    h.ok(!r.stdout.includes(newSecret) && !r.stderr.includes(newSecret) && !r.stderr.includes(oldSecret) &&
        !r.stdout.includes(oldSecret), 'neither private key appears on stdout or stderr');
    h.recordSecret(newSecret);
    r = cli(['key', 'rotate']);
    h.ok(r.status === 1 && /\.old exists/.test(r.stderr) && fs.readFileSync(keyFile, 'utf8').trim() === newSecret,
        'a second rotation while FILE.old exists is refused and changes nothing', r.stderr);

    // Until SIGHUP the running gateway still uses the old key.
    h.is((await metadataKey(gw.port)).key, oldPub, 'without SIGHUP the gateway still publishes the old key');

    // --- SIGHUP -----------------------------------------------------------------------------
    gw.proc.kill('SIGHUP');
    const published = await h.waitFor(async () => {
        const m = await metadataKey(gw.port);
        return m.key === newPub ? m : false;
    }, { timeoutMs: 5000, intervalMs: 100 });
    h.ok(published, 'after SIGHUP metadata.json publishes the new key (within 5 s)');
    if (published) {
        const meta = published.res;
        h.ok(oc.verifyResponse(newPub, meta, { expectOcid: env.ocid, maxSkewSeconds: 60 }) &&
            !oc.verifyResponse(oldPub, meta, { expectOcid: env.ocid, maxSkewSeconds: 60 }),
        'the metadata answer is signed with the new key, not the old');
        h.ok(oc.verifyEmitted(newPub, oc.canonicalStrict(meta.json.config), meta.json.signature),
            'the metadata document\'s own signature verifies with the new key');
        const root = await h.call({ method: 'GET', path: '/metadata.json', pubkey: newPub });
        h.ok(root.status === 200 && root.json.config.publicKey === newPub && root.signatureOk,
            'on every loop: /metadata.json at the root too');
    }
    h.ok(gw.proc.exitCode === null, 'the gateway is still running after SIGHUP');
    h.ok(/"msg":"gateway key reloaded".*"public_key":"[0-9a-f]{128}"/.test(gw.logText()),
        'the reload is logged with the new public key');
    // Several answers (both loops): all signed with the new key.
    const caps = await Promise.all(Array.from({ length: 8 }, () =>
        h.signedCall({ as: app, method: 'GET', path: h.url('/capabilities'), pubkey: newPub })));
    h.ok(caps.every((c) => c.status === 200 && c.signatureOk), 'answers after SIGHUP are signed with the new key');
    const err = await h.call({ method: 'GET', path: h.url('/nope'), pubkey: newPub });
    h.ok(err.status === 404 && err.signatureOk, 'error answers too');

    // --- the merchant comes up; the pending notification is signed with the new key ------
    const m = await M.startMerchant({ gatewayKey: oldPub, gatewayOcid: env.ocid, basePath: '/m' });
    cli(['participant', 'update', '--ocid', String(merchant.ocid), '--endpoint', m.url]);
    const delivered = await h.waitFor(() => h.sql(`SELECT state FROM deliveries WHERE id = ${q(id)}`) === 'delivered',
        { timeoutMs: 15000, intervalMs: 200 });
    h.ok(delivered, 'the pending notification is delivered once the merchant is up');
    const got = m.receipts.filter((x) => x.id === id);
    h.ok(got.length >= 1, 'the merchant received it', JSON.stringify(m.receipts.map((x) => x.id)));
    if (got.length >= 1) {
        const last = got[got.length - 1];
        const withNew = verifiesWith(newPub, last);
        const withOld = verifiesWith(oldPub, last);
        h.ok(withNew.reqOk && withNew.proofOk, 'its request signature and forwarded proof verify with the new key');
        h.ok(!withOld.reqOk && !withOld.proofOk && !last.requestOk && !last.proofOk,
            'and not with the old key');
        h.is(last.proof && last.proof.txid, txid, 'it is the payment settled before the rotation');
    }

    // --- a gateway proof served after rotation ----------------------------------------------
    const ver = await h.signedCall({ as: app, method: 'GET', path: h.url(`/verify/${txid}`), pubkey: newPub });
    const gp = ver.json || {};
    h.ok(ver.status === 200 && gp.proof && oc.verifyEmitted(newPub, oc.canonicalStrict(gp.proof), gp.signature) &&
        !oc.verify(oldPub, oc.canonicalStrict(gp.proof), gp.signature),
    '/verify returns the gateway proof signed with the new key (stored content, signed when served)', ver.body.slice(0, 300));

    // --- SIGHUP with an unusable key file changes nothing -------------------------------------
    fs.chmodSync(keyFile, 0o644);
    gw.proc.kill('SIGHUP');
    const failed = await h.waitFor(() => /"msg":"gateway key reload failed; keeping the current key"/.test(gw.logText()),
        { timeoutMs: 5000, intervalMs: 100 });
    h.ok(failed, 'SIGHUP with a group-readable key file logs that the reload failed');
    h.is((await metadataKey(gw.port)).key, newPub, 'and the gateway keeps publishing and signing with the key it had');
    h.ok(gw.proc.exitCode === null, 'and keeps running');
    fs.chmodSync(keyFile, 0o600);
    const log = gw.logText();
    h.ok(!log.includes(newSecret) && !log.includes(oldSecret) && !log.includes(newSecret.toUpperCase()),
        'the gateway log holds neither private key');

    h.is(await gw.stop(), 0, 'gateway exits 0');

    // --- a restart keeps the new key -------------------------------------------------------
    const gw2 = await h.startGateway(baseEnv);
    h.is((await metadataKey(gw2.port)).key, newPub, 'after a restart metadata.json publishes the new key');
    h.is(await gw2.stop(), 0, 'restarted gateway exits 0');

    // --- `ocgate worker` reloads on SIGHUP too ---------------------------------------------
    fs.unlinkSync(`${keyFile}.old`);
    r = cli(['key', 'rotate']);
    const thirdPub = r.stdout.trim();
    h.is(r.status, 0, 'a third key (FILE.old deleted first)');
    h.recordSecret(fs.readFileSync(keyFile, 'utf8').trim());
    // The worker starts with the third key; write a fourth and SIGHUP it.
    const wlog = `${env.dir}/worker-rotate.log`;
    const wfd = fs.openSync(wlog, 'a', 0o600);
    const worker = cp.spawn(env.bin, ['worker'], { env: { ...process.env, ...baseEnv }, stdio: ['ignore', wfd, wfd] });
    fs.closeSync(wfd);
    fs.appendFileSync(`${env.dir}/pids`, `${worker.pid}\n`);
    const wexit = new Promise((resolve) => worker.on('exit', (code) => resolve(code)));
    const up = await h.waitFor(() => /"msg":"worker running"/.test(fs.readFileSync(wlog, 'utf8')), { timeoutMs: 10000 });
    h.ok(up, 'ocgate worker started');
    fs.unlinkSync(`${keyFile}.old`);
    r = cli(['key', 'rotate']);
    const fourthPub = r.stdout.trim();
    h.recordSecret(fs.readFileSync(keyFile, 'utf8').trim());
    h.ok(r.status === 0 && fourthPub !== thirdPub, 'a fourth key');
    worker.kill('SIGHUP');
    const reloaded = await h.waitFor(() => fs.readFileSync(wlog, 'utf8').includes(`"public_key":"${fourthPub}"`), { timeoutMs: 5000 });
    h.ok(reloaded, 'ocgate worker logs the reload with the fourth public key');
    // A delivery made by the worker after SIGHUP is signed with the fourth key.
    const gw3 = await h.startGateway({ ...baseEnv, OCGATE_WORKER: 'false' });
    const c2 = await h.signedCall({ as: app, method: 'POST', path: h.url('/payment/create'), port: gw3.port,
        pubkey: fourthPub, body: JSON.stringify({ to: merchant.ocid, amount: '3.00', currency: 'USD' }) });
    const p2 = oc.makeProof({ txid: `rot_${oc.newNonce().slice(4, 14)}`, issuer: provider.ocid,
        from: { ocid: 4242, reference: 'w2' }, to: { ocid: Number(env.ocid), reference: c2.json.txid },
        amount: '3.00', currency: 'USD' });
    const h2 = await h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'), port: gw3.port,
        pubkey: fourthPub, body: JSON.stringify(oc.signProof(provider.priv, p2)) });
    h.is(h2.status, 200, 'second payment settled (worker off in this gateway)');
    const id2 = h.sql(`SELECT id FROM deliveries WHERE payment_txid = ${q(c2.json.txid)}`);
    const d2 = await h.waitFor(() => h.sql(`SELECT state FROM deliveries WHERE id = ${q(id2)}`) === 'delivered',
        { timeoutMs: 15000, intervalMs: 200 });
    h.ok(d2, 'ocgate worker delivered it');
    const got2 = m.receipts.filter((x) => x.id === id2);
    if (got2.length) {
        const v = verifiesWith(fourthPub, got2[got2.length - 1]);
        h.ok(v.reqOk && v.proofOk, 'signed by the worker with the key loaded on SIGHUP');
    } else {
        h.ok(false, 'signed by the worker with the key loaded on SIGHUP', 'no receipt');
    }
    worker.kill('SIGTERM');
    h.is(await wexit, 0, 'ocgate worker exits 0');
    h.is(await gw3.stop(), 0, 'third gateway exits 0');
    await m.close();
    h.checkInvariants('after key rotation');
}
