// The admin HTTP API end to end (docs/admin-api.md): a real `ocgate serve` with its admin
// listener, clients made with `ocgate client create`, every request signed here with
// node:crypto's HMAC (never with ocgate's code), and every answer checked against the database.
// Covers every endpoint (lists with filters and cursor pagination, one payment, balances,
// ledger, exceptions and each resolution with its ledger moves and audit row, deliveries and
// retry, participants create/read/update/disable), the authorization cases (no signature, bad
// signature, stale timestamp, unknown and revoked client, wrong scope, replay and conflict of
// an Idempotency-Key, a mutation without one), `ocgate client create|list|revoke`, and the
// CLI's remote mode (--admin-url) giving the same output as the database mode.
//   tests/integration/run-node.sh build/ocgate tests/integration/admin-api.js
//
// With OCG_TEST_SECRETS_FILE set, every client secret and the sealing key made here are
// appended to it, one per line (for the no-secrets-in-logs test).

let h;
let oc;
let env;
let cp;     // node:child_process
let crypto; // node:crypto
let fs;     // node:fs
let path;   // node:path

let adminPort;
const secretsMade = [];

function noteSecret(s) {
    secretsMade.push(s);
    const file = process.env.OCG_TEST_SECRETS_FILE;
    if (file) fs.appendFileSync(file, `${s}\n`);
}

// --- participants and payments (as in operators.js) ---------------------------------------

let nextOcid = 61000;

function participant(roles) {
    nextOcid += 1;
    return h.newParticipant({ ocid: nextOcid, roles });
}

async function sync(p) {
    const known = await h.waitFor(async () => (await h.signedCall({ as: p, method: 'GET',
        path: h.url('/capabilities'), unsigned: true })).status === 200, { timeoutMs: 5000, intervalMs: 50 });
    if (!known) throw new Error(`participant ${p.ocid} still unknown to the gateway 5 s after registration`);
}

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const rand = () => oc.newNonce().slice(4, 16);
const short = (res) => (res ? `${res.status} ${String(res.body).slice(0, 400)}` : 'no response');

function units(s) {
    const m = /^(-?)([0-9]+)(?:\.([0-9]{1,18}))?$/.exec(String(s));
    if (!m) throw new Error(`not a decimal amount: ${s}`);
    const v = BigInt(m[2]) * 10n ** 18n + BigInt(((m[3] || '') + '0'.repeat(18)).slice(0, 18));
    return m[1] ? -v : v;
}

async function createOk(app, merchant, fields) {
    const body = JSON.stringify({ to: merchant.ocid, amount: '15.00', currency: 'USD', ...fields });
    const res = await h.signedCall({ as: app, method: 'POST', path: h.url('/payment/create'), body });
    if (res.status !== 200 || !res.json || typeof res.json.txid !== 'string') {
        throw new Error(`POST /payment/create ${body} → ${short(res)}`);
    }
    return res.json.txid;
}

let proofSeq = 0;

function proofFor(provider, reference, amount, currency = 'USD') {
    proofSeq += 1;
    const proof = oc.makeProof({
        txid: `optx_${provider.ocid}_${proofSeq}_${rand()}`,
        issuer: provider.ocid,
        from: { ocid: 4242, reference: `wallet ${proofSeq}` },
        to: { ocid: Number(env.ocid), reference },
        amount,
        currency,
    });
    return oc.signProof(provider.priv, proof, 'strict');
}

async function webhook(provider, envelope) {
    return h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'), body: JSON.stringify(envelope) });
}

function exceptionId(envelope) {
    const p = envelope.proof;
    return Number(h.sql(`SELECT x.id FROM exceptions x JOIN proofs pr ON pr.id = x.proof_id
                          WHERE pr.issuer = ${p.issuer} AND pr.txid = ${q(p.txid)}`));
}

// Every table except the audit trail (which records refusals too).
const state = () => h.fingerprint({ exclude: ['admin_audit', 'admin_idempotency'] });

function unchangedSince(before, name) {
    return h.ok(before === state(), `${name}: nothing changed`);
}

// --- the CLI ----------------------------------------------------------------------------------

function cli(args, { extraEnv = {} } = {}) {
    let status = 0;
    let stdout;
    let stderr = '';
    try {
        stdout = cp.execFileSync(env.bin, args, {
            env: { ...process.env, ...extraEnv }, encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'],
        });
    } catch (e) {
        if (e.status === null || e.status === undefined) throw e;
        status = e.status;
        stdout = e.stdout || '';
        stderr = e.stderr || '';
    }
    let json;
    try {
        json = JSON.parse(stdout);
    } catch {
        json = undefined;
    }
    return { status, stdout, stderr, json };
}

function newClient(name, scopes) {
    const r = cli(['client', 'create', '--name', name, '--scope', scopes.join(','), '--json']);
    if (r.status !== 0 || !r.json || !/^ocgc_[0-9a-f]{24}$/.test(r.json.id) || !/^[0-9a-f]{64}$/.test(r.json.secret)) {
        throw new Error(`ocgate client create → ${r.status} ${r.stderr} ${r.stdout}`);
    }
    noteSecret(r.json.secret);
    return { id: r.json.id, secret: r.json.secret, scopes };
}

// --- admin API calls, signed with node:crypto ---------------------------------------------------

const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex');

function sign(secret, method, target, timestamp, body) {
    return crypto.createHmac('sha256', secret)
        .update(`${method}\n${target}\n${timestamp}\n${sha256hex(body)}`).digest('hex');
}

// A request to the admin listener. client: {id, secret} (null = no auth headers).
// Options: timestamp, signWith (another secret), signTarget / signBody (sign something else),
// idem (Idempotency-Key), headers (extra or overriding).
async function api(client, method, target, { body = '', timestamp, signWith, signTarget, signBody, idem, headers = {} } = {}) {
    const hdrs = {};
    if (client) {
        const ts = String(timestamp ?? oc.nowSeconds());
        hdrs['X-OCG-Client'] = client.id;
        hdrs['X-OCG-Timestamp'] = ts;
        hdrs['X-OCG-Signature'] = sign(signWith ?? client.secret, method, signTarget ?? target, ts, signBody ?? body);
    }
    if (idem !== undefined) hdrs['Idempotency-Key'] = idem;
    Object.assign(hdrs, headers);
    const res = await oc.request({ port: adminPort, method, path: target, body: method === 'GET' && body === '' ? undefined : body, headers: hdrs });
    try {
        res.json = JSON.parse(res.body);
    } catch {
        res.json = undefined;
    }
    return res;
}

const code = (res) => (res.json && res.json.error ? res.json.error.code : undefined);

function isError(res, status, errCode, name) {
    return h.ok(res.status === status && code(res) === errCode && typeof res.json.error.message === 'string',
        `${name} → ${status} ${errCode}`, short(res));
}

// Every page of a list endpoint; returns {items, pages}.
async function allPages(client, base, limit, maxPages = 100) {
    const items = [];
    let cursor = null;
    let pages = 0;
    do {
        const sep = base.includes('?') ? '&' : '?';
        const res = await api(client, 'GET', `${base}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        if (res.status !== 200 || !res.json || !Array.isArray(res.json.items)) throw new Error(`GET ${base} → ${short(res)}`);
        if (res.json.items.length > limit) throw new Error(`page of ${res.json.items.length} with limit ${limit}`);
        items.push(...res.json.items);
        cursor = res.json.next_cursor;
        pages += 1;
    } while (cursor && pages < maxPages);
    return { items, pages };
}

// --- the scenario ---------------------------------------------------------------------------

async function scenario(gw) {
    const all = ['payments:read', 'balances:read', 'exceptions:read', 'exceptions:write', 'deliveries:read',
        'deliveries:write', 'participants:read', 'participants:write'];

    // --- ocgate client create | list | revoke ---------------------------------------------
    const admin = newClient('ops-full', all);
    const reader = newClient('ops-reader', ['payments:read']);
    const doomed = newClient('ops-doomed', ['payments:read', 'balances:read']);
    {
        const sealed = h.sql(`SELECT encode(sealed_secret, 'hex') FROM admin_clients WHERE id = ${q(admin.id)}`);
        h.ok(/^[0-9a-f]+$/.test(sealed) && sealed.length === 2 * (64 + 28) && !sealed.includes(Buffer.from(admin.secret).toString('hex')) &&
            !h.sql('SELECT string_agg(t::text, \'|\') FROM admin_clients t').includes(admin.secret),
        'client create: only the sealed secret (nonce + ciphertext + tag) is stored, never the secret');
        const list = cli(['client', 'list', '--json']);
        const ids = list.json ? list.json.items.map((c) => c.id) : [];
        h.ok(list.status === 0 && [admin.id, reader.id, doomed.id].every((i) => ids.includes(i)) && !list.stdout.includes(admin.secret),
            'client list --json: every client, no secret', `${list.status} ${list.stdout.slice(0, 300)}`);
        const full = list.json.items.find((c) => c.id === admin.id) || {};
        h.same(full.scopes, [...all].sort(), 'client list: the scopes as given');
        const table = cli(['client', 'list']);
        h.ok(table.status === 0 && table.stdout.includes(reader.id) && /active/.test(table.stdout), 'client list prints a table');
        const plain = cli(['client', 'create', '--name', 'plain', '--scope', 'balances:read']);
        const m = /client id: (ocgc_[0-9a-f]{24})\nsecret: +([0-9a-f]{64})\n/.exec(plain.stdout);
        h.ok(plain.status === 0 && m, 'client create without --json prints the id and the secret once', plain.stdout);
        if (m) noteSecret(m[2]);
        const out = path.join(env.dir, 'client.secret');
        const f = cli(['client', 'create', '--name', 'to-file', '--scope', 'payments:read', '--secret-out', out]);
        const st = fs.existsSync(out) ? fs.statSync(out) : null;
        const fileSecret = st ? fs.readFileSync(out, 'utf8').trim() : '';
        if (fileSecret) noteSecret(fileSecret);
        h.ok(f.status === 0 && st && (st.mode & 0o777) === 0o600 && /^[0-9a-f]{64}$/.test(fileSecret) && !f.stdout.includes(fileSecret),
            'client create --secret-out: the secret in a new 0600 file, not on stdout', `${f.status} ${f.stdout} ${f.stderr}`);
        const again = cli(['client', 'create', '--name', 'to-file', '--scope', 'payments:read', '--secret-out', out]);
        h.is(again.status, 1, 'client create --secret-out onto an existing file → exit 1');
        h.is(h.sql("SELECT count(*) FROM admin_clients WHERE name = 'to-file' AND revoked_at IS NULL"), '1',
            'and the client made for it is revoked (nobody holds its secret)');
        h.is(cli(['client', 'create', '--name', 'x', '--scope', 'payments:write']).status, 2, 'client create with an unknown scope → exit 2');
        h.is(cli(['client', 'create', '--scope', 'payments:read']).status, 2, 'client create without --name → exit 2');
        h.is(cli(['client', 'create', '--name', 'x', '--scope', 'payments:read'], { extraEnv: { OCGATE_ADMIN_SEALING_KEY_FILE: '' } }).status, 2,
            'client create without a sealing key → exit 2');
        const loose = path.join(env.dir, 'loose.key');
        fs.copyFileSync(process.env.OCGATE_ADMIN_SEALING_KEY_FILE, loose);
        fs.chmodSync(loose, 0o640);
        const lr = cli(['client', 'create', '--name', 'x', '--scope', 'payments:read', '--sealing-key', loose]);
        h.ok(lr.status === 1 && /group or others/.test(lr.stderr), 'client create with a group-readable sealing key → exit 1', lr.stderr);
        {
            // Without the option or the variable, the key named by the server's configuration.
            const conf = path.join(env.dir, 'ocgate.conf');
            fs.writeFileSync(conf, [`database_url = ${process.env.OCGATE_DATABASE_URL}`, `ocid = ${env.ocid}`,
                `private_key_file = ${process.env.OCGATE_PRIVATE_KEY_FILE}`, `public_url = ${env.publicUrl}`,
                'currencies = USD', `admin_sealing_key_file = ${process.env.OCGATE_ADMIN_SEALING_KEY_FILE}`, ''].join('\n'));
            const bare = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OCGATE_') || k === 'OCGATE_DATABASE_URL'));
            let out = '';
            let rc = 0;
            try {
                out = cp.execFileSync(env.bin, ['client', 'create', '--name', 'via-config', '--scope', 'balances:read', '--config', conf, '--json'],
                    { env: bare, encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'] });
            } catch (e) {
                rc = e.status;
            }
            let made = null;
            try { made = JSON.parse(out); } catch { made = null; }
            if (made && made.secret) noteSecret(made.secret);
            h.ok(rc === 0 && made && /^ocgc_/.test(made.id), 'client create --config: the sealing key named by the configuration', `${rc} ${out}`);
            if (made) {
                const res = await api({ id: made.id, secret: made.secret }, 'GET', '/admin/v1/balances');
                h.is(res.status, 200, 'and that client authenticates (sealed under the key the server uses)');
            }
        }
        h.is(cli(['client', 'revoke', 'ocgc_000000000000000000000000']).status, 1, 'client revoke of an unknown id → exit 1');
        h.is(cli(['client', 'revoke', 'nonsense']).status, 2, 'client revoke of a malformed id → exit 2');
    }

    // --- data: payments, proofs, exceptions -----------------------------------------------
    const app = participant(['payment_app']);
    const merchantA = participant(['merchant']);
    const merchantB = participant(['merchant']);
    const provider = participant(['settlement_provider']);
    await sync(provider);
    const settled = [];
    for (const [merchant, amount, currency] of [[merchantA, '15.00', 'USD'], [merchantA, '7.50', 'USD'],
        [merchantB, '1000', 'UGX'], [merchantB, '2.25', 'USD'], [merchantA, '12', 'USDT']]) {
        const txid = await createOk(app, merchant, { amount, currency });
        const e = proofFor(provider, txid, amount, currency);
        const res = await webhook(provider, e);
        if (res.status !== 200) throw new Error(`webhook for ${txid} → ${short(res)}`);
        settled.push({ txid, merchant: merchant.ocid, amount, currency, envelope: e });
    }
    const pendingA = await createOk(app, merchantA, { amount: '3.00' });
    const target999 = await createOk(app, merchantB, { amount: '9.99' });
    const unmatched = proofFor(provider, `no_such_payment_${rand()}`, '5.00');
    h.is((await webhook(provider, unmatched)).status, 200, 'setup: an unmatched proof');
    const mismatch = proofFor(provider, target999, '1.00');
    h.is((await webhook(provider, mismatch)).status, 400, 'setup: an amount mismatch');
    const duplicate = proofFor(provider, settled[0].txid, '15.00');
    h.is((await webhook(provider, duplicate)).status, 200, 'setup: a duplicate payment');
    const expiresAt = oc.nowSeconds() + 2;
    const latePay = await createOk(app, merchantA, { amount: '4.00', expiresAt });
    // Two seconds past expiry, not one: the gateway reads time(2), whose coarse clock can lag a
    // few milliseconds behind Node's, which once put a proof sent at x.007 s in the second before.
    await h.waitFor(() => oc.nowSeconds() >= expiresAt + 2, { timeoutMs: 6000, intervalMs: 100 });
    const late = proofFor(provider, latePay, '4.00');
    h.is((await webhook(provider, late)).status, 200, 'setup: a late proof');
    const [xUnmatched, xMismatch, xDuplicate, xLate] = [unmatched, mismatch, duplicate, late].map(exceptionId);
    h.checkInvariants('after setup');
    {
        const osUser = (await import('node:os')).userInfo().username;
        h.is(h.sql(`SELECT actor || '|' || action || '|' || (result->>'result') FROM admin_audit WHERE target = 'participant:${provider.ocid}'`),
            `${osUser}|participant.create|done`, 'ocgate participant add runs the API\'s SQL function: audited under the OS user');
    }

    // --- authentication and authorization ------------------------------------------------------
    const P = '/admin/v1/payments';
    {
        const good = await api(admin, 'GET', P);
        h.ok(good.status === 200 && good.json && Array.isArray(good.json.items) && /^[0-9a-f]{16}$/.test(good.headers['x-request-id'] || ''),
            'a signed GET → 200 with a request id', short(good));
        isError(await api(null, 'GET', P), 401, 'INVALID_SIGNATURE', 'no signature headers');
        isError(await api(null, 'GET', P, { headers: { 'X-OCG-Client': admin.id, 'X-OCG-Timestamp': String(oc.nowSeconds()) } }),
            401, 'INVALID_SIGNATURE', 'no X-OCG-Signature');
        isError(await api(admin, 'GET', P, { signWith: reader.secret }), 401, 'INVALID_SIGNATURE', 'signed with another secret');
        isError(await api(admin, 'GET', P, { signTarget: `${P}?limit=1` }), 401, 'INVALID_SIGNATURE', 'signature over another target');
        isError(await api(admin, 'GET', `${P}?limit=2`, { signTarget: P }), 401, 'INVALID_SIGNATURE', 'a query added after signing');
        isError(await api(admin, 'GET', P, { headers: { 'X-OCG-Signature': '00'.repeat(32) } }), 401, 'INVALID_SIGNATURE', 'a zero signature');
        isError(await api(admin, 'GET', P, { headers: { 'X-OCG-Signature': 'xyz' } }), 401, 'INVALID_SIGNATURE', 'a malformed signature');
        const upper = sign(admin.secret, 'GET', P, String(oc.nowSeconds()), '').toUpperCase();
        h.is((await api(admin, 'GET', P, { headers: { 'X-OCG-Signature': upper } })).status, 200, 'the signature in upper-case hex → 200');
        isError(await api(admin, 'GET', P, { timestamp: oc.nowSeconds() - 301 }), 401, 'TIMESTAMP_EXPIRED', 'a timestamp 301 s old');
        isError(await api(admin, 'GET', P, { timestamp: oc.nowSeconds() + 301 }), 401, 'TIMESTAMP_EXPIRED', 'a timestamp 301 s ahead');
        h.is((await api(admin, 'GET', P, { timestamp: oc.nowSeconds() - 250 })).status, 200, 'a timestamp 250 s old → 200');
        isError(await api(admin, 'GET', P, { timestamp: 'yesterday' }), 401, 'TIMESTAMP_EXPIRED', 'a timestamp that is no number');
        isError(await api({ id: 'ocgc_0123456789abcdef01234567', secret: admin.secret }, 'GET', P), 401, 'UNKNOWN_OCID', 'an unknown client');
        isError(await api({ id: 'admin', secret: admin.secret }, 'GET', P), 401, 'UNKNOWN_OCID', 'a malformed client id');
        isError(await api(reader, 'GET', '/admin/v1/balances'), 403, 'UNAUTHORIZED', 'payments:read only, reading balances');
        isError(await api(reader, 'GET', '/admin/v1/exceptions'), 403, 'UNAUTHORIZED', 'payments:read only, reading exceptions');
        const before = state();
        isError(await api(reader, 'POST', `/admin/v1/exceptions/${xDuplicate}/resolve`, { body: '{"action":"refund"}', idem: 'k-reader' }),
            403, 'UNAUTHORIZED', 'payments:read only, resolving an exception');
        unchangedSince(before, 'a resolution without the scope');
        isError(await api(admin, 'GET', '/admin/v1/nothing'), 404, 'NOT_FOUND', 'an unknown path');
        const big = JSON.stringify({ action: 'dismiss', reason: 'x'.repeat(70 * 1024) });
        isError(await api(admin, 'POST', `/admin/v1/exceptions/${xDuplicate}/resolve`, { body: big, idem: 'big' }),
            413, 'PAYLOAD_TOO_LARGE', 'a body over body_limit');
        isError(await api(admin, 'POST', '/admin/v1/participants', { body: '{}', idem: 'x'.repeat(201) }),
            400, 'BAD_REQUEST', 'an Idempotency-Key of 201 characters');
        isError(await api(admin, 'POST', P, { body: '{}', idem: 'x' }), 404, 'NOT_FOUND', 'POST on a read-only path');

        h.is((await api(doomed, 'GET', P)).status, 200, 'a client about to be revoked → 200');
        const rv = cli(['client', 'revoke', doomed.id]);
        h.ok(rv.status === 0 && /revoked/.test(rv.stdout), 'ocgate client revoke → exit 0', `${rv.status} ${rv.stdout} ${rv.stderr}`);
        isError(await api(doomed, 'GET', P), 401, 'UNKNOWN_OCID', 'the revoked client, its very next request');
        const rv2 = cli(['client', 'revoke', doomed.id, '--json']);
        h.ok(rv2.status === 0 && rv2.json && rv2.json.result === 'already_done', 'revoking again → already_done');
        const listed = cli(['client', 'list', '--json']).json.items.find((c) => c.id === doomed.id) || {};
        h.ok(Number.isSafeInteger(listed.revokedAt) && typeof listed.revokedBy === 'string', 'client list shows when and by whom it was revoked');

        // A client whose sealed secret was moved onto another row does not authenticate: the
        // id is bound as associated data.
        const stolen = newClient('ops-moved', ['payments:read']);
        h.sql(`UPDATE admin_clients SET sealed_secret = (SELECT sealed_secret FROM admin_clients WHERE id = ${q(reader.id)}) WHERE id = ${q(stolen.id)}`);
        const moved = await api({ id: stolen.id, secret: reader.secret }, 'GET', P);
        h.ok(moved.status === 500 && code(moved) === 'INTERNAL', 'a sealed secret copied onto another client does not open (500, logged)', short(moved));
    }

    // --- the connection cap: 128 open connections, more are closed unanswered ------------------
    {
        const net = await import('node:net');
        const socks = await Promise.all(Array.from({ length: 140 }, () => new Promise((resolve) => {
            const s = net.connect(adminPort, '127.0.0.1', () => resolve(s));
            s.gone = false;
            s.on('close', () => { s.gone = true; });
            s.on('error', () => resolve(s));
        })));
        const gone = await h.waitFor(() => socks.filter((s) => s.gone).length >= 12, { timeoutMs: 5000 });
        const count = socks.filter((s) => s.gone).length;
        h.ok(gone && count <= 13, `140 idle connections: the ones past 128 are closed (${count})`);
        let refused = false;
        try {
            const r = await api(admin, 'GET', P);
            refused = r.status !== 200;
        } catch {
            refused = true;
        }
        h.ok(refused, 'a request while 128 connections are open is not served');
        for (const s of socks) s.destroy();
        const back = await h.waitFor(async () => (await api(admin, 'GET', P).catch(() => ({ status: 0 }))).status === 200, { timeoutMs: 5000 });
        h.ok(back, 'once they close, requests are served again');
    }

    // --- payments: list, filters, pagination, one payment ---------------------------------------
    {
        const allDb = h.sql('SELECT txid FROM payments ORDER BY created_at, txid').split('\n');
        for (const limit of [1, 3, 1000]) {
            const { items, pages } = await allPages(reader, P, limit);
            h.same(items.map((p) => p.txid), allDb, `GET payments limit=${limit}: ${pages} pages cover every payment once, in order`);
        }
        const filters = [
            ['status=completed', "status = 'completed'"],
            ['status=expired', "status = 'pending_settlement' AND expires_at < now()"],
            [`merchant=${merchantA.ocid}`, `merchant_ocid = ${merchantA.ocid}`],
            ['currency=UGX', "currency = 'UGX'"],
            [`merchant=${merchantB.ocid}&currency=USD&status=completed`, `merchant_ocid = ${merchantB.ocid} AND currency = 'USD' AND status = 'completed'`],
            [`from=${oc.nowSeconds() + 3600}`, 'false'],
            ['to=2000-01-01T00:00:00Z', 'false'],
            [`from=2000-01-01&to=${oc.nowSeconds() + 3600}`, 'true'],
        ];
        for (const [query, where] of filters) {
            const want = h.sql(`SELECT coalesce(string_agg(txid, ',' ORDER BY created_at, txid), '') FROM payments WHERE ${where}`);
            const { items } = await allPages(reader, `${P}?${query}`, 2);
            h.is(items.map((p) => p.txid).join(','), want, `GET payments?${query}: exactly the matching payments, paged by 2`);
        }
        isError(await api(reader, 'GET', `${P}?status=nonsense`), 400, 'BAD_REQUEST', 'payments?status=nonsense');
        isError(await api(reader, 'GET', `${P}?cursor=forged`), 400, 'BAD_REQUEST', 'payments with a forged cursor');
        isError(await api(reader, 'GET', `${P}?limit=0`), 400, 'BAD_REQUEST', 'payments?limit=0');
        isError(await api(reader, 'GET', `${P}?merchant=abc`), 400, 'BAD_REQUEST', 'payments?merchant=abc');
        isError(await api(reader, 'GET', `${P}?colour=red`), 400, 'BAD_REQUEST', 'an unknown query parameter');
        isError(await api(reader, 'GET', `${P}?limit=1&limit=2`), 400, 'BAD_REQUEST', 'a repeated query parameter');
        isError(await api(reader, 'GET', `${P}?%FF%FE=1`), 400, 'BAD_REQUEST', 'a query parameter name that is not UTF-8');
        isError(await api(reader, 'GET', `${P}?currency=%FF`), 400, 'BAD_REQUEST', 'a query value that is not UTF-8');

        const s = settled[0];
        const one = await api(reader, 'GET', `${P}/${s.txid}`);
        const doc = one.json || {};
        h.ok(one.status === 200 && doc.payment && doc.payment.txid === s.txid && doc.payment.status === 'completed' &&
            doc.payment.amount === '15.00', 'GET payments/{txid}: the payment', short(one));
        h.same((doc.proofs || []).map((p) => p.txid).sort(), [s.envelope.proof.txid, duplicate.proof.txid].sort(),
            'GET payments/{txid}: both proofs naming it');
        const credited = (doc.proofs || []).find((p) => p.txid === s.envelope.proof.txid) || {};
        h.ok(credited.outcome === 'credited' && credited.signature === s.envelope.signature &&
            oc.canonicalStrict(credited.proof) === oc.canonicalStrict(s.envelope.proof), 'GET payments/{txid}: the proof as received');
        h.same((doc.ledger || []).map((t) => t.kind).sort(), ['settlement', 'suspense'], 'GET payments/{txid}: its ledger transactions');
        h.same((doc.exceptions || []).map((x) => x.id), [xDuplicate], 'GET payments/{txid}: its exception');
        h.ok(doc.delivery && doc.delivery.id === h.sql(`SELECT id FROM deliveries WHERE payment_txid = ${q(s.txid)}`) &&
            Array.isArray(doc.delivery.attemptLog), 'GET payments/{txid}: its delivery with every attempt');
        isError(await api(reader, 'GET', `${P}/pay_does_not_exist`), 404, 'PAYMENT_NOT_FOUND', 'an unknown txid');
        isError(await api(reader, 'GET', `${P}/a%2Fb`), 404, 'NOT_FOUND', 'an encoded path segment');
    }

    // --- balances and ledger --------------------------------------------------------------------
    function expected(extra = []) {
        const sums = new Map();
        for (const s of [...settled, ...extra]) {
            const k = `${s.merchant} ${s.currency}`;
            sums.set(k, (sums.get(k) || 0n) + units(s.amount));
        }
        return [...sums.entries()].map(([k, v]) => `${k}=${v}`).sort().join(', ');
    }
    async function checkBalances(extra, name) {
        const res = await api(admin, 'GET', '/admin/v1/balances');
        const got = (res.json ? res.json.merchants : []).filter((m) => [merchantA.ocid, merchantB.ocid].includes(m.merchant))
            .map((m) => `${m.merchant} ${m.currency}=${units(m.balance)}`).sort().join(', ');
        h.is(got, expected(extra), `${name}: each merchant's balance per currency is the sum of its credited amounts`);
        return res.json || {};
    }
    {
        const doc = await checkBalances([], 'GET balances');
        const susp = (doc.suspense || []).find((x) => x.currency === 'USD');
        h.ok(susp && units(susp.balance) === units(h.sql("SELECT trim_scale(sum(amount))::text FROM exceptions WHERE status = 'open' AND currency = 'USD'")),
            'GET balances: suspense USD equals the open exceptions');
        const onlyA = await api(admin, 'GET', `/admin/v1/balances?merchant=${merchantA.ocid}`);
        h.same((onlyA.json.merchants || []).map((m) => `${m.merchant} ${m.currency} ${m.balance}`).sort(),
            [`${merchantA.ocid} USD 22.5`, `${merchantA.ocid} USDT 12`], 'GET balances?merchant=: only that merchant');
        const entries = await allPages(admin, '/admin/v1/ledger', 4);
        h.same(entries.items.map((e) => e.id), h.sql('SELECT id FROM ledger_entries ORDER BY id').split('\n').map(Number),
            `GET ledger: ${entries.pages} pages of 4 cover every entry once`);
        const acct = await allPages(admin, `/admin/v1/ledger?account=merchant:${merchantA.ocid}`, 2);
        h.is(String(acct.items.reduce((a, e) => a + units(e.amount), 0n)), String(units('22.5') + units('12')),
            'GET ledger?account=merchant:A: its entries sum to its credits');
    }

    // --- exceptions -----------------------------------------------------------------------------
    const X = '/admin/v1/exceptions';
    {
        const open = await allPages(admin, `${X}?status=open`, 1);
        h.same(open.items.map((x) => x.id).sort((a, b) => a - b), [xUnmatched, xMismatch, xDuplicate, xLate].sort((a, b) => a - b),
            'GET exceptions?status=open, one per page: the four open exceptions');
        const lateOnly = await api(admin, 'GET', `${X}?kind=late`);
        h.same(lateOnly.json.items.map((x) => x.id), [xLate], 'GET exceptions?kind=late');
        isError(await api(admin, 'GET', `${X}?kind=nonsense`), 400, 'BAD_REQUEST', 'exceptions?kind=nonsense');
    }
    const ledgerOf = (kind, where) => h.sql(`SELECT string_agg(e.account || ' ' || trim_scale(e.amount) || ' ' || e.currency, ', ' ORDER BY e.amount)
        FROM ledger_transactions t JOIN ledger_entries e ON e.ledger_tx_id = t.id WHERE t.kind = '${kind}' AND ${where}`);
    const actor = `client:${admin.id}`;
    {
        // Mutations need an Idempotency-Key.
        const before = state();
        isError(await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: JSON.stringify({ action: 'attach', txid: latePay }) }),
            400, 'BAD_REQUEST', 'a resolution without Idempotency-Key');
        unchangedSince(before, 'a mutation without Idempotency-Key');
        isError(await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: '{"action":"attach",', idem: 'bad-json' }),
            400, 'BAD_REQUEST', 'a resolution with a broken body');
        isError(await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: '{"action":"attach","action":"refund"}', idem: 'dup-keys' }),
            400, 'BAD_REQUEST', 'a resolution body with a duplicate key');
        isError(await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: '{"action":"refund","amount":"1"}', idem: 'extra' }),
            400, 'BAD_REQUEST', 'a resolution body with an unknown field');
        isError(await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: '{"action":"attach","txid":"x"}', signBody: '{"action":"refund"}', idem: 'tamper' }),
            401, 'INVALID_SIGNATURE', 'a body changed after signing');
        unchangedSince(before, 'refused resolutions');

        // attach: the late proof to its expired payment.
        const body = JSON.stringify({ action: 'attach', txid: latePay, reason: 'customer paid late' });
        const r = await api(admin, 'POST', `${X}/${xLate}/resolve`, { body, idem: 'attach-late-1' });
        h.ok(r.status === 200 && r.json && r.json.result === 'done' && r.json.payment && r.json.payment.status === 'completed' &&
            r.headers['idempotent-replayed'] === undefined, 'POST exceptions/{id}/resolve attach → 200 done', short(r));
        h.is(ledgerOf('attach', `t.payment_txid = ${q(latePay)}`), `suspense -4 USD, merchant:${merchantA.ocid} 4 USD`,
            'attach: suspense → merchant');
        h.is(h.sql(`SELECT count(*) || ' ' || min(state) FROM deliveries WHERE payment_txid = ${q(latePay)}`), '1 pending',
            'attach: the notification enqueued');
        h.is(h.sql(`SELECT status || '|' || resolved_by || '|' || resolution_note FROM exceptions WHERE id = ${xLate}`),
            `attached|${actor}|customer paid late`, 'attach: resolved by client:<id>, with the reason');
        h.is(h.sql(`SELECT count(*) FROM admin_audit WHERE actor = ${q(actor)} AND target = 'exception:${xLate}'`), '1',
            'attach: one audit row under client:<id>');
        const before2 = state();
        const replay = await api(admin, 'POST', `${X}/${xLate}/resolve`, { body, idem: 'attach-late-1' });
        h.ok(replay.status === 200 && replay.body === r.body && replay.headers['idempotent-replayed'] === 'true',
            'the same Idempotency-Key and body again → the stored answer, byte for byte, marked replayed', short(replay));
        unchangedSince(before2, 'an idempotent replay');
        h.is(h.sql(`SELECT count(*) FROM admin_audit WHERE target = 'exception:${xLate}'`), '1', 'a replay adds no audit row');
        isError(await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: JSON.stringify({ action: 'refund' }), idem: 'attach-late-1' }),
            409, 'IDEMPOTENCY_CONFLICT', 'the same Idempotency-Key with another body');
        isError(await api(admin, 'POST', `${X}/${xDuplicate}/resolve`, { body, idem: 'attach-late-1' }),
            409, 'IDEMPOTENCY_CONFLICT', 'the same Idempotency-Key on another path');
        unchangedSince(before2, 'an Idempotency-Key conflict');
        // Keys are kept 24 h: one just younger still conflicts, one older is forgotten.
        h.sql(`UPDATE admin_idempotency SET created_at = now() - interval '23 hours 59 minutes' WHERE key = 'attach-late-1'`);
        isError(await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: JSON.stringify({ action: 'refund' }), idem: 'attach-late-1' }),
            409, 'IDEMPOTENCY_CONFLICT', 'a key used 23 h 59 min ago with another body');
        h.sql(`UPDATE admin_idempotency SET created_at = now() - interval '24 hours 1 minute' WHERE key = 'attach-late-1'`);
        const expired = await api(admin, 'POST', `${X}/${xLate}/resolve`, { body: JSON.stringify({ action: 'refund' }), idem: 'attach-late-1' });
        h.ok(expired.status === 409 && code(expired) === 'INVALID_STATE' && expired.json.result === 'invalid_state',
            'the key 24 h later is forgotten: the new request runs (and is refused on its merits: already attached)', short(expired));
        h.is(h.sql("SELECT count(*) FROM admin_idempotency WHERE key = 'attach-late-1' AND created_at > now() - interval '1 minute'"), '1',
            'and the key now stores the new answer');
        const otherKey = await api(admin, 'POST', `${X}/${xLate}/resolve`, { body, idem: 'attach-late-2' });
        h.ok(otherKey.status === 200 && otherKey.json.result === 'already_done', 'a new key for the same attach → already_done (the operation is idempotent too)', short(otherKey));
        unchangedSince(before2, 'the same attach under a new key');
        // Another client's keys are its own.
        const ops2 = newClient('ops-second', ['exceptions:write']);
        const own = await api(ops2, 'POST', `${X}/${xLate}/resolve`, { body, idem: 'attach-late-1' });
        h.ok(own.status === 200 && own.json.result === 'already_done', 'Idempotency-Keys are per client', short(own));

        // Concurrent requests with one key: one runs, the others get its answer.
        const cBody = JSON.stringify({ action: 'refund', reason: 'payer paid twice' });
        const burst = await Promise.all([0, 1, 2, 3].map(() => api(admin, 'POST', `${X}/${xDuplicate}/resolve`, { body: cBody, idem: 'refund-dup' })));
        h.ok(burst.every((b) => b.status === 200 && b.body === burst[0].body && b.json.result === 'done') &&
            burst.filter((b) => b.headers['idempotent-replayed'] !== 'true').length === 1,
        'four concurrent refunds under one key: one ran, three got its stored answer', burst.map(short).join('\n'));
        h.is(ledgerOf('refund', `t.exception_id = ${xDuplicate}`), 'suspense -15 USD, refunds_payable 15 USD', 'refund: suspense → refunds payable, once');

        // dismiss needs a reason.
        const before3 = state();
        const nr = await api(admin, 'POST', `${X}/${xUnmatched}/resolve`, { body: '{"action":"dismiss"}', idem: 'dismiss-1' });
        h.ok(nr.status === 400 && code(nr) === 'BAD_REQUEST' && nr.json.result === 'reason_required', 'dismiss without a reason → 400 BAD_REQUEST (reason_required)', short(nr));
        unchangedSince(before3, 'dismiss without a reason');
        const d = await api(admin, 'POST', `${X}/${xUnmatched}/resolve`, { body: '{"action":"dismiss","reason":"provider test transfer"}', idem: 'dismiss-2' });
        h.ok(d.status === 200 && d.json.result === 'done', 'dismiss with a reason → 200 done', short(d));
        h.is(ledgerOf('dismiss', `t.exception_id = ${xUnmatched}`), `suspense -5 USD, clearing:${provider.ocid} 5 USD`, 'dismiss: the reversal to clearing');

        const before4 = state();
        const mm = await api(admin, 'POST', `${X}/${xMismatch}/resolve`, { body: JSON.stringify({ action: 'attach', txid: target999 }), idem: 'mm' });
        h.ok(mm.status === 400 && code(mm) === 'AMOUNT_MISMATCH' && mm.json.result === 'mismatch', 'attach 1.00 to a 9.99 payment → 400 AMOUNT_MISMATCH', short(mm));
        const done = await api(admin, 'POST', `${X}/${xMismatch}/resolve`, { body: JSON.stringify({ action: 'attach', txid: settled[1].txid }), idem: 'mm2' });
        isError(done, 409, 'INVALID_STATE', 'attach to a completed payment');
        isError(await api(admin, 'POST', `${X}/999999999/resolve`, { body: '{"action":"refund"}', idem: 'nf' }), 404, 'NOT_FOUND', 'resolve an unknown exception');
        isError(await api(admin, 'POST', `${X}/abc/resolve`, { body: '{"action":"refund"}', idem: 'nf2' }), 404, 'NOT_FOUND', 'resolve a non-numeric id');
        isError(await api(admin, 'POST', `${X}/${xMismatch}/resolve`, { body: '{"action":"explode"}', idem: 'bad-action' }), 400, 'BAD_REQUEST', 'an unknown action');
        unchangedSince(before4, 'refused resolutions');
        await checkBalances([{ merchant: merchantA.ocid, currency: 'USD', amount: '4.00' }], 'balances after the resolutions');
    }

    // --- deliveries -----------------------------------------------------------------------------
    const D = '/admin/v1/deliveries';
    {
        const { items, pages } = await allPages(admin, D, 2);
        h.same(items.map((x) => x.id), h.sql('SELECT id FROM deliveries ORDER BY created_at, id').split('\n'),
            `GET deliveries: ${pages} pages of 2 cover every delivery once`);
        const byA = await allPages(admin, `${D}?merchant=${merchantA.ocid}&state=pending`, 50);
        h.same(byA.items.map((x) => x.id).sort(), h.sql(`SELECT id FROM deliveries WHERE merchant_ocid = ${merchantA.ocid} AND state = 'pending'`).split('\n').sort(),
            'GET deliveries?merchant=&state=pending');
        isError(await api(admin, 'GET', `${D}?state=lost`), 400, 'BAD_REQUEST', 'deliveries?state=lost');
        const newest = await allPages(admin, `${D}?order=newest`, 3);
        h.same(newest.items.map((x) => x.id), h.sql('SELECT id FROM deliveries ORDER BY created_at DESC, id DESC').split('\n'),
            `GET deliveries?order=newest: ${newest.pages} pages of 3, newest first`);
        isError(await api(admin, 'GET', `${D}?order=random`), 400, 'BAD_REQUEST', 'deliveries?order=random');
        const oldCursor = (await api(admin, 'GET', `${D}?limit=1`)).json.next_cursor;
        isError(await api(admin, 'GET', `${D}?order=newest&cursor=${oldCursor}`), 400, 'BAD_REQUEST', 'an oldest-first cursor with order=newest');
        const id = items[0].id;
        const one = await api(admin, 'GET', `${D}/${id}`);
        h.ok(one.status === 200 && one.json.id === id && Array.isArray(one.json.attemptLog) && one.json.state === 'pending',
            'GET deliveries/{id}: the delivery with its attempt log', short(one));
        isError(await api(admin, 'GET', `${D}/00000000-0000-0000-0000-000000000000`), 404, 'NOT_FOUND', 'an unknown delivery');
        isError(await api(admin, 'GET', `${D}/not-a-uuid`), 404, 'NOT_FOUND', 'a delivery id that is no UUID');
        const before = state();
        isError(await api(admin, 'POST', `${D}/${id}/retry`, { idem: 'retry-pending' }), 409, 'INVALID_STATE', 'retry of a pending delivery');
        unchangedSince(before, 'retry of a pending delivery');
        h.sql(`UPDATE deliveries SET state = 'dead', attempts = 8, last_error = 'test' WHERE id = '${id}'`);
        const rt = await api(admin, 'POST', `${D}/${id}/retry`, { idem: 'retry-dead' });
        h.ok(rt.status === 200 && rt.json.result === 'done' && rt.json.delivery.state === 'pending', 'retry of a dead delivery → 200, pending again', short(rt));
        h.is(h.sql(`SELECT state FROM deliveries WHERE id = '${id}'`), 'pending', 'retry: the row is pending and due');
        h.is(h.sql(`SELECT actor FROM admin_audit WHERE target = 'delivery:${id}' ORDER BY id DESC LIMIT 1`), actor, 'retry: audited under client:<id>');
        isError(await api(admin, 'POST', `${D}/${id}/retry`, { body: '{"now":true}', idem: 'retry-body' }), 400, 'BAD_REQUEST', 'retry with fields');
    }

    // --- participants ---------------------------------------------------------------------------
    const PT = '/admin/v1/participants';
    {
        const { items } = await allPages(admin, PT, 3);
        h.same(items.map((p) => p.ocid), h.sql('SELECT ocid FROM participants ORDER BY ocid').split('\n').map(Number),
            'GET participants: every participant, paged by 3');
        const one = await api(admin, 'GET', `${PT}/${provider.ocid}`);
        h.ok(one.status === 200 && one.json.publicKey === provider.pub && one.json.roles[0] === 'settlement_provider' && one.json.enabled === true,
            'GET participants/{ocid}', short(one));
        isError(await api(admin, 'GET', `${PT}/99999999`), 404, 'NOT_FOUND', 'an unknown participant');

        const priv = oc.randomPrivateKey();
        const pub = oc.publicKey(priv);
        const ocid = 69001;
        const createBody = JSON.stringify({ ocid, name: 'api-made provider', roles: ['settlement_provider'], publicKey: `04${pub.toUpperCase()}` });
        const c = await api(admin, 'POST', PT, { body: createBody, idem: 'create-69001' });
        h.ok(c.status === 201 && c.json.result === 'done' && c.json.participant.publicKey === pub && c.json.participant.enabled === true,
            'POST participants → 201, the key stored in its 128-hex form', short(c));
        const made = { ocid, priv, pub, roles: ['settlement_provider'] };
        await sync(made);
        h.ok(true, 'the gateway accepts requests from the participant made through the API');
        const replay = await api(admin, 'POST', PT, { body: createBody, idem: 'create-69001' });
        h.ok(replay.status === 201 && replay.body === c.body, 'creating again under the same key → the stored 201');
        isError(await api(admin, 'POST', PT, { body: createBody, idem: 'create-69001-b' }), 409, 'INVALID_STATE', 'creating an existing OCID');
        const before = state();
        isError(await api(admin, 'POST', PT, { body: JSON.stringify({ ocid: 69002, name: 'x', roles: ['merchant'], publicKey: '12' }), idem: 'bad-key' }),
            400, 'BAD_REQUEST', 'a participant with a bad public key');
        isError(await api(admin, 'POST', PT, { body: JSON.stringify({ ocid: 69002, name: 'x', roles: ['wizard'], publicKey: pub }), idem: 'bad-role' }),
            400, 'BAD_REQUEST', 'a participant with an unknown role');
        isError(await api(admin, 'POST', PT, { body: JSON.stringify({ ocid: 69002, name: 'x', roles: ['merchant'] }), idem: 'no-key' }),
            400, 'BAD_REQUEST', 'a participant without a public key');
        isError(await api(admin, 'POST', PT, { body: JSON.stringify({ ocid: 69002, name: 'x', roles: ['merchant'], publicKey: pub, endpoint: 'ftp://x' }), idem: 'bad-endpoint' }),
            400, 'BAD_REQUEST', 'a participant with a bad endpoint');
        unchangedSince(before, 'refused participant creations');

        const up = await api(admin, 'POST', `${PT}/${ocid}`, { body: JSON.stringify({ name: 'renamed', endpoint: 'https://provider.example/oc' }), idem: 'update-69001' });
        h.ok(up.status === 200 && up.json.participant.name === 'renamed' && up.json.participant.endpoint === 'https://provider.example/oc' &&
            up.json.participant.publicKey === pub, 'POST participants/{ocid} updates the given fields only', short(up));
        isError(await api(admin, 'POST', `${PT}/99999999`, { body: '{"name":"x"}', idem: 'update-none' }), 404, 'NOT_FOUND', 'update of an unknown participant');
        isError(await api(admin, 'POST', `${PT}/${ocid}`, { body: '{}', idem: 'update-empty' }), 400, 'BAD_REQUEST', 'an update with no field');
        const dis = await api(admin, 'POST', `${PT}/${ocid}/disable`, { idem: 'disable-69001' });
        h.ok(dis.status === 200 && dis.json.participant.enabled === false, 'POST participants/{ocid}/disable → enabled false', short(dis));
        const refused = await h.waitFor(async () => (await h.signedCall({ as: made, method: 'GET', path: h.url('/capabilities'), unsigned: true })).status === 401,
            { timeoutMs: 5000, intervalMs: 50 });
        h.ok(refused, 'the gateway refuses the disabled participant within seconds');
        h.is(h.sql(`SELECT string_agg(action, ',' ORDER BY id) FROM admin_audit WHERE target = 'participant:${ocid}' AND actor = ${q(actor)}`),
            'participant.create,participant.create,participant.update,participant.update',
            'participants: every change (and the refused second create) audited under client:<id>');
    }

    // --- CLI remote mode: the same answers through the API ----------------------------------------
    {
        const secretFile = path.join(env.dir, 'remote.secret');
        fs.writeFileSync(secretFile, `${admin.secret}\n`, { mode: 0o600 });
        const remote = ['--admin-url', `http://127.0.0.1:${adminPort}`, '--client', admin.id, '--client-secret-file', secretFile];
        const noDb = { OCGATE_DATABASE_URL: '' };
        const pairs = [
            ['payment', 'list', '--limit', '3'],
            ['payment', 'list', '--status', 'completed', '--merchant', String(merchantA.ocid)],
            ['payment', 'show', settled[0].txid],
            ['balance'],
            ['balance', '--merchant', String(merchantB.ocid)],
            ['exception', 'list', '--status', 'open'],
            ['participant', 'list'],
            ['delivery', 'list'],
            ['delivery', 'list', '--limit', '2', '--state', 'pending', '--merchant', String(merchantA.ocid)],
            ['delivery', 'show', h.sql('SELECT id FROM deliveries ORDER BY created_at LIMIT 1')],
            ['participant', 'show', '--ocid', String(provider.ocid)],
        ];
        for (const args of pairs) {
            const local = cli([...args, '--json']);
            const far = cli([...args, '--json', ...remote], { extraEnv: noDb });
            h.ok(far.status === 0 && local.status === 0 && far.stdout === local.stdout,
                `remote mode: ocgate ${args.join(' ')} --json prints what the database mode prints`, `${far.status} ${far.stderr}\n${far.stdout.slice(0, 200)}\n${local.stdout.slice(0, 200)}`);
            const farTable = cli([...args, ...remote], { extraEnv: noDb });
            const localTable = cli(args);
            h.ok(farTable.status === 0 && farTable.stdout === localTable.stdout, `remote mode: ocgate ${args.join(' ')} prints the same table`, farTable.stderr);
        }
        const x = (await api(admin, 'GET', `${X}?status=open`)).json.items[0];
        const rr = cli(['exception', 'resolve', String(x.id), '--refund', '--reason', 'remote refund', '--json', ...remote], { extraEnv: noDb });
        h.ok(rr.status === 0 && rr.json && rr.json.result === 'done', 'remote mode: exception resolve --refund → done', `${rr.status} ${rr.stderr} ${rr.stdout}`);
        h.is(h.sql(`SELECT resolved_by FROM exceptions WHERE id = ${x.id}`), actor, 'remote mode: the actor is the API client');
        const again = cli(['exception', 'resolve', String(x.id), '--dismiss', '--reason', 'r', '--json', ...remote], { extraEnv: noDb });
        h.ok(again.status === 1 && again.json && again.json.result === 'invalid_state', 'remote mode: a refused resolution → exit 1 with the same answer', `${again.status} ${again.stdout} ${again.stderr}`);
        const nf = cli(['payment', 'show', 'pay_nope', ...remote], { extraEnv: noDb });
        h.ok(nf.status === 1 && /PAYMENT_NOT_FOUND|no payment/.test(nf.stderr), 'remote mode: an unknown payment → exit 1', nf.stderr);
        const badSecret = path.join(env.dir, 'wrong.secret');
        fs.writeFileSync(badSecret, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
        const bad = cli(['balance', '--admin-url', `http://127.0.0.1:${adminPort}`, '--client', admin.id, '--client-secret-file', badSecret], { extraEnv: noDb });
        h.ok(bad.status === 1 && /INVALID_SIGNATURE/.test(bad.stderr), 'remote mode with a wrong secret → exit 1 naming INVALID_SIGNATURE', bad.stderr);
        fs.chmodSync(secretFile, 0o644);
        const loose = cli(['balance', ...remote], { extraEnv: noDb });
        h.ok(loose.status === 2 && /group or others/.test(loose.stderr), 'remote mode refuses a secret file readable by others', loose.stderr);
        fs.chmodSync(secretFile, 0o600);
        const half = cli(['balance', '--admin-url', `http://127.0.0.1:${adminPort}`], { extraEnv: noDb });
        h.is(half.status, 2, 'remote mode without --client → exit 2');
        const pk = oc.publicKey(oc.randomPrivateKey());
        const add = cli(['participant', 'add', '--ocid', '69100', '--name', 'remote-made', '--roles', 'merchant,payment_app',
            '--public-key', pk, '--endpoint', 'https://m.example/oc', ...remote], { extraEnv: noDb });
        h.ok(add.status === 0 && /participant 69100 added/.test(add.stdout), 'remote mode: participant add', `${add.status} ${add.stderr}`);
        const upd = cli(['participant', 'update', '--ocid', '69100', '--no-endpoint', '--form', 'legacy', ...remote], { extraEnv: noDb });
        h.ok(upd.status === 0 && /updated/.test(upd.stdout), 'remote mode: participant update --no-endpoint', `${upd.status} ${upd.stderr}`);
        const dis = cli(['participant', 'disable', '--ocid', '69100', ...remote], { extraEnv: noDb });
        h.ok(dis.status === 0 && /disabled/.test(dis.stdout), 'remote mode: participant disable', `${dis.status} ${dis.stderr}`);
        h.is(h.sql("SELECT name || '|' || array_to_string(roles, ',') || '|' || coalesce(endpoint, 'none') || '|' || canonical_form || '|' || enabled FROM participants WHERE ocid = 69100"),
            'remote-made|merchant,payment_app|none|legacy|false', 'remote mode: the participant as added, updated and disabled');
        h.is(h.sql("SELECT string_agg(DISTINCT actor, ',') FROM admin_audit WHERE target = 'participant:69100'"), actor,
            'remote mode: participant changes audited under client:<id>');
        const dupAdd = cli(['participant', 'add', '--ocid', '69100', '--name', 'x', '--roles', 'merchant', '--public-key', pk, ...remote], { extraEnv: noDb });
        h.ok(dupAdd.status === 1 && /already exists/.test(dupAdd.stderr), 'remote mode: adding an existing OCID → exit 1', dupAdd.stderr);
        const nfShow = cli(['participant', 'show', '--ocid', '99999998', ...remote], { extraEnv: noDb });
        h.is(nfShow.status, 1, 'remote mode: participant show of an unknown OCID → exit 1');
        const dl = cli(['delivery', 'retry', '00000000-0000-0000-0000-000000000000', ...remote], { extraEnv: noDb });
        h.is(dl.status, 1, 'remote mode: delivery retry of an unknown id → exit 1');
    }

    // --- a figure, not a check: sequential signed reads (noisy on a shared machine) ------------
    {
        const times = [];
        for (let i = 0; i < 200; i += 1) {
            const t0 = process.hrtime.bigint();
            const r = await api(admin, 'GET', '/admin/v1/payments?limit=1', { headers: {} });
            times.push(Number(process.hrtime.bigint() - t0) / 1e6);
            if (r.status !== 200) throw new Error(`timing run: ${short(r)}`);
        }
        times.sort((a, b) => a - b);
        h.diag(`200 sequential GET /admin/v1/payments?limit=1 (new connection each): p50 ${times[100].toFixed(2)} ms, ` +
            `p99 ${times[197].toFixed(2)} ms, max ${times[199].toFixed(2)} ms`);
    }

    // --- the log: one line per admin request, no secret, no body --------------------------------
    {
        const text = gw.logText();
        const lines = text.split('\n').filter((l) => l.includes('"msg":"admin request"'));
        h.ok(lines.length >= 100, `one JSON log line per admin request (${lines.length})`);
        const parsed = lines.map((l) => { try { return JSON.parse(l); } catch { return null; } });
        h.ok(parsed.every((p) => p && /^[0-9a-f]{16}$/.test(p.request_id) && Number.isInteger(p.status) && typeof p.route === 'string'),
            'every admin log line is JSON with a request id, route and status');
        h.ok(parsed.some((p) => p && p.status === 401 && p.code === 'INVALID_SIGNATURE') &&
            parsed.some((p) => p && p.status === 200 && p.client === admin.id && p.authenticated === true),
        'the log names the code and the client');
        const leaked = secretsMade.filter((s) => text.includes(s));
        h.is(leaked.length, 0, 'no client secret appears in the gateway log');
        h.ok(!text.includes('provider test transfer') && !text.includes('customer paid late'), 'no request body appears in the log');
    }
    h.checkInvariants('after the admin API scenario');
}

// --- main -----------------------------------------------------------------------------------

import('../node/harness.js').then((harness) => harness.run(async () => {
    h = harness;
    oc = h.oc;
    env = h.env;
    cp = await import('node:child_process');
    crypto = await import('node:crypto');
    fs = await import('node:fs');
    path = await import('node:path');

    const keyFile = path.join(env.dir, 'sealing.key');
    const kg = cli(['keygen', '--sealing-key', '--out', keyFile]);
    const st = fs.existsSync(keyFile) ? fs.statSync(keyFile) : null;
    h.ok(kg.status === 0 && kg.stdout === '' && st && (st.mode & 0o777) === 0o600 &&
        /^[0-9a-f]{64}\n$/.test(fs.readFileSync(keyFile, 'utf8')), 'keygen --sealing-key: 64 hex digits in a new 0600 file, nothing printed');
    noteSecret(fs.readFileSync(keyFile, 'utf8').trim());
    h.is(cli(['keygen', '--sealing-key', '--out', keyFile]).status, 1, 'keygen --sealing-key refuses to overwrite');
    process.env.OCGATE_ADMIN_SEALING_KEY_FILE = keyFile;
    adminPort = await h.freePort();
    process.env.OCGATE_ADMIN_LISTEN = `127.0.0.1:${adminPort}`;

    // A sealing key readable by others keeps the gateway from starting.
    const loose = path.join(env.dir, 'loose-sealing.key');
    fs.copyFileSync(keyFile, loose);
    fs.chmodSync(loose, 0o644);
    let refused = false;
    try {
        await h.startGateway({ OCGATE_ADMIN_SEALING_KEY_FILE: loose }, { readyTimeoutMs: 3000 });
    } catch (e) {
        refused = /group or others/.test(String(e.message));
    }
    h.ok(refused, 'ocgate serve refuses a sealing key file readable by others');

    const gw = await h.startGateway({ OCGATE_WORKER: 'false' });
    const up = await h.waitFor(async () => {
        const r = await oc.request({ port: adminPort, method: 'GET', path: '/admin/v1/payments', timeoutMs: 1000 }).catch(() => null);
        return r && r.status === 401;
    }, { timeoutMs: 5000 });
    h.ok(up, `the admin listener answers on 127.0.0.1:${adminPort}`);
    await scenario(gw);
    h.is(await gw.stop('SIGTERM'), 0, 'SIGTERM → ocgate exits 0');
}));
