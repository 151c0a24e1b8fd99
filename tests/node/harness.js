// Helpers for integration scenarios run by tests/integration/run-node.sh, which provides a
// throwaway PostgreSQL (PG* variables), a migrated schema, a gateway key and these variables:
//   OCG_TEST_BIN, OCG_TEST_DIR, GATEWAY_PORT, GATEWAY_OCID, GATEWAY_PUBKEY, GATEWAY_BASE
//   and the gateway's own configuration (OCGATE_*), inherited by startGateway().
// (Harness variables use the OCG_TEST_ prefix because ocgate refuses unknown OCGATE_* ones.)
// A scenario prints TAP through ok()/is() and ends with done() (run() does it for you):
//
//   import('../node/harness.js').then((h) => h.run(async () => {
//       const gw = await h.startGateway();
//       ...
//       h.is(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
//   }));
//
// Every request is signed and every gateway signature checked with oc.js, never with ocgate.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as oc from './oc.js';

export { oc };

// --- environment ---------------------------------------------------------------------------

function need(name) {
    const v = process.env[name];
    if (v === undefined || v === '') {
        throw new Error(`${name} is not set: run scenarios through tests/integration/run-node.sh`);
    }
    return v;
}

// Read lazily so that importing this file never fails; using a helper without the harness does.
export const env = {
    get bin() { return need('OCG_TEST_BIN'); },
    get dir() { return need('OCG_TEST_DIR'); },
    get port() { return Number(need('GATEWAY_PORT')); },
    get ocid() { return need('GATEWAY_OCID'); },
    get pubkey() { return need('GATEWAY_PUBKEY'); },
    get base() { return need('GATEWAY_BASE'); },
    get publicUrl() { return need('OCGATE_PUBLIC_URL'); },
    get currencies() { return need('OCGATE_CURRENCIES').split(','); },
};

// A path under the gateway's base path: url('/payment/create') → '/opencharge/payment/create'.
export function url(p) {
    return env.base + p;
}

// --- the whole-suite log scan (tests/logscan/logscan.py) --------------------------------------
// When tests/run sets OCG_TEST_LOG_DIR, every secret a scenario creates is appended to
// OCG_TEST_SECRETS_FILE and the X-Request-Id of every answer the harness receives to
// $OCG_TEST_LOG_DIR/requests.list; run-node.sh copies the gateway logs there at the end. The
// scan then looks for every secret in every log and for a log line per request id. Without
// the variables nothing is written.

// Records a private key (hex) or client secret a scenario created.
export function recordSecret(secret) {
    const file = process.env.OCG_TEST_SECRETS_FILE;
    if (file && secret) fs.appendFileSync(file, `${secret}\n`, { mode: 0o600 });
}

// Kept in memory and written once when the scenario ends (flushRequestIds, from done() and
// on exit): a synchronous write per request would stall the fake merchants that share this
// process's event loop, and with them the timing checks.
const requestIds = [];

function recordRequestId(id) {
    if (process.env.OCG_TEST_LOG_DIR && typeof id === 'string' && /^[0-9a-f]{16}$/.test(id)) {
        requestIds.push(id);
    }
}

function flushRequestIds() {
    const dir = process.env.OCG_TEST_LOG_DIR;
    if (!dir || requestIds.length === 0) return;
    const text = requestIds.join('\n') + '\n';
    requestIds.length = 0;
    try {
        fs.appendFileSync(path.join(dir, 'requests.list'), text);
    } catch (e) {
        console.log(`# cannot record request ids in ${dir}: ${e.message}`);
    }
}
process.on('exit', flushRequestIds);

// --- TAP -----------------------------------------------------------------------------------

let testNo = 0;
let failed = 0;
let finished = false;

export function diag(msg) {
    for (const line of String(msg).split('\n')) console.log(`# ${line}`);
}

export function ok(cond, name, detail) {
    testNo += 1;
    if (cond) {
        console.log(`ok ${testNo} - ${name}`);
    } else {
        failed += 1;
        console.log(`not ok ${testNo} - ${name}`);
        if (detail !== undefined) diag(detail instanceof Error ? detail.stack : detail);
    }
    return !!cond;
}

export function is(got, want, name) {
    return ok(Object.is(got, want), name, `got:  ${JSON.stringify(got)}\nwant: ${JSON.stringify(want)}`);
}

// Deep equality through JSON text (enough for protocol values: no undefined, no cycles).
export function same(got, want, name) {
    const g = JSON.stringify(got);
    const w = JSON.stringify(want);
    return ok(g === w, name, `got:  ${g}\nwant: ${w}`);
}

export function skip(name, reason) {
    testNo += 1;
    console.log(`ok ${testNo} - ${name} # SKIP ${reason}`);
}

export function failures() {
    return failed;
}

// Prints the plan and sets the exit status (1 if anything failed or nothing was tested).
export function done() {
    flushRequestIds();
    if (finished) return;
    finished = true;
    console.log(`1..${testNo}`);
    if (failed) diag(`${failed} of ${testNo} failed`);
    process.exitCode = failed || testNo === 0 ? 1 : 0;
}

// Runs a scenario: an exception is a failure (with its stack), and whatever happens every
// gateway it started is stopped and the plan printed.
export async function run(main) {
    try {
        await main();
    } catch (e) {
        ok(false, 'scenario ran to its end without throwing', e);
    } finally {
        await stopAllGateways();
        oc.closeAgents();
        done();
    }
}

// --- waiting -------------------------------------------------------------------------------

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls fn() (sync or async) every intervalMs until it returns a truthy value, which it
// returns, or until timeoutMs has passed, when it returns the last falsy value. Exceptions
// thrown by fn count as "not yet".
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 100 } = {}) {
    const end = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (last) return last;
        } catch {
            last = undefined;
        }
        if (Date.now() >= end) return last;
        await sleep(intervalMs);
    }
}

// A TCP port on 127.0.0.1 that nothing listens on right now (for a second instance or a fake
// merchant). The kernel picks it; another process could take it before we use it, but only
// the ephemeral range is involved and run-node.sh's own port is outside it.
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

// --- the gateway process -------------------------------------------------------------------

const running = new Set();
let gatewaySeq = 0;

function signalNumber(signal) {
    return os.constants.signals[signal] ?? 0;
}

function tail(file, lines = 30) {
    try {
        return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
        return '(no log)';
    }
}

// Starts `$OCG_TEST_BIN serve` with process.env plus extraEnv (a value of undefined removes the
// variable) and waits, at most readyTimeoutMs, until <base>/metadata.json answers 200.
// stdout and stderr go to OCG_TEST_DIR/gateway-N.log; the pid is appended to
// OCG_TEST_DIR/pids so run-node.sh can kill it if this process dies first.
// Returns {proc, pid, port, log, logText(), exited, stop(signal = 'SIGTERM', timeoutMs)}.
// stop() resolves to the exit code, or 128 + signal number if a signal ended the process
// (so SIGKILL gives 137); a process still alive after timeoutMs is SIGKILLed.
// Caveat: readiness is "something answers on the port"; give each instance its own port.
export async function startGateway(extraEnv = {}, { readyTimeoutMs = 10000 } = {}) {
    const childEnv = { ...process.env };
    for (const [k, v] of Object.entries(extraEnv)) {
        if (v === undefined) delete childEnv[k];
        else childEnv[k] = String(v);
    }
    const listen = childEnv.OCGATE_LISTEN || '';
    const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
    const base = childEnv.OCGATE_BASE_PATH ?? env.base;
    gatewaySeq += 1;
    const log = path.join(env.dir, `gateway-${gatewaySeq}.log`);
    const fd = fs.openSync(log, 'a', 0o600);
    const proc = spawn(env.bin, ['serve'], { env: childEnv, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);

    let exitCode = null;
    const exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
            exitCode = code !== null ? code : 128 + signalNumber(signal);
            running.delete(gw);
            resolve(exitCode);
        });
        proc.on('error', (e) => {   // could not exec at all
            exitCode = 127;
            running.delete(gw);
            diag(`cannot run ${env.bin}: ${e.message}`);
            resolve(exitCode);
        });
    });
    const gw = {
        proc, pid: proc.pid, port, log, exited,
        logText: () => { try { return fs.readFileSync(log, 'utf8'); } catch { return ''; } },
        stop: (signal = 'SIGTERM', timeoutMs = 10000) => stopGateway(gw, signal, timeoutMs),
    };
    if (proc.pid !== undefined) {
        fs.appendFileSync(path.join(env.dir, 'pids'), `${proc.pid}\n`);
        running.add(gw);
    }

    const ready = await waitFor(async () => {
        if (exitCode !== null) return 'exited';
        const res = await oc.request({ port, method: 'GET', path: `${base}/metadata.json`, timeoutMs: 1000 });
        return res.status === 200 ? 'ready' : false;
    }, { timeoutMs: readyTimeoutMs, intervalMs: 100 });
    if (ready === 'ready' && exitCode === null) return gw;
    if (exitCode === null) await stopGateway(gw, 'SIGKILL', 5000);
    throw new Error(`ocgate serve (${log}) ${exitCode !== null && ready === 'exited'
        ? `exited with ${exitCode} before it was ready`
        : `did not answer ${base}/metadata.json with 200 within ${readyTimeoutMs} ms`}; log tail:\n${tail(log)}`);
}

async function stopGateway(gw, signal, timeoutMs) {
    if (gw.proc.exitCode === null && gw.proc.signalCode === null) {
        try { gw.proc.kill(signal); } catch { /* already gone */ }
    }
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(() => resolve('late'), timeoutMs); });
    const first = await Promise.race([gw.exited, late]);
    clearTimeout(timer);
    if (first !== 'late') return first;
    diag(`pid ${gw.pid} still running ${timeoutMs} ms after ${signal}: SIGKILL`);
    try { gw.proc.kill('SIGKILL'); } catch { /* already gone */ }
    return gw.exited;
}

async function stopAllGateways() {
    await Promise.all([...running].map((gw) => stopGateway(gw, 'SIGTERM', 10000)));
}

// Last resort when the scenario process is ending abnormally: leave no gateway behind.
function killAllNow() {
    for (const gw of running) {
        try { gw.proc.kill('SIGKILL'); } catch { /* ignore */ }
    }
}
process.on('exit', killAllNow);
// 'exit' handlers do not run when a signal ends the process (run-node.sh's timeout sends
// SIGTERM), so handle those too and say why the plan is cut short.
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        console.log(`Bail out! scenario interrupted by ${sig}`);
        killAllNow();
        process.exit(1);
    });
}

// --- CLI and database ----------------------------------------------------------------------

function execOrThrow(file, args, what, timeoutMs = 30000) {
    try {
        return execFileSync(file, args, {
            env: process.env, encoding: 'utf8', timeout: timeoutMs,
            stdio: ['ignore', 'pipe', 'pipe'],
        });
    } catch (e) {
        const why = e.signal ? `killed by ${e.signal}` : `exit ${e.status}`;
        throw new Error(`${what} failed (${why}): ${(e.stderr || '').trim() || e.message}`);
    }
}

// `ocgate participant add`; throws with ocgate's stderr if it exits non-zero.
export function addParticipant({ ocid, name, roles, publicKey, endpoint, form }) {
    const args = ['participant', 'add', '--ocid', String(ocid), '--name', name,
        '--roles', roles.join(','), '--public-key', publicKey];
    if (endpoint !== undefined) args.push('--endpoint', endpoint);
    if (form !== undefined) args.push('--form', form);
    return execOrThrow(env.bin, args, `ocgate ${args.slice(0, 4).join(' ')}`).trim();
}

// A participant with a fresh key pair, registered through the CLI: {ocid, priv, pub, ...}.
export function newParticipant({ ocid, name = `p${ocid}`, roles, endpoint, form }) {
    const priv = oc.randomPrivateKey();
    recordSecret(priv);
    const pub = oc.publicKey(priv);
    addParticipant({ ocid, name, roles, publicKey: pub, endpoint, form });
    return { ocid, name, roles, endpoint, form, priv, pub };
}

// One statement through psql, as the harness's PostgreSQL superuser; returns stdout trimmed
// (unaligned, tuples only: columns separated by '|', rows by newlines). Throws on SQL errors.
export function sql(query) {
    return execOrThrow('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', query], 'psql').trim();
}

function quoteIdent(name) {
    return '"' + name.replace(/"/g, '""') + '"';
}

// The full contents of every table in the public schema (except request_nonces, which a
// verified request may legitimately touch, and any in `exclude`) as one string
// "table=md5 table=md5 ...", read in one statement (one snapshot). Equal strings before and
// after an operation mean it changed nothing; a difference names the table.
export function fingerprint({ exclude = [] } = {}) {
    const skipTables = new Set(['request_nonces', ...exclude]);
    const tables = sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        .split('\n').filter((t) => t && !skipTables.has(t));
    if (tables.length === 0) return '';
    const parts = tables.map((t) => `'${t.replace(/'/g, "''")}=' || (SELECT md5(coalesce(` +
        `string_agg(t::text, '|' ORDER BY t::text), '')) FROM public.${quoteIdent(t)} t)`);
    return sql(`SELECT ${parts.join(" || ' ' || ")}`);
}

// --- HTTP with signatures ------------------------------------------------------------------

// A request to the gateway (127.0.0.1:GATEWAY_PORT unless port is given). Every answer ocgate
// writes must be signed by the gateway: unless unsigned: true (e.g. libevent's bare 413 past
// its hard cap), a missing or bad X-OC-Signature is recorded as a TAP failure. The response
// gets .signatureOk and .json (parsed body, or undefined if it is not JSON).
// pubkey and ocid default to GATEWAY_PUBKEY and GATEWAY_OCID (pass others after a key
// rotation or for a second instance configured differently).
export async function call({ method = 'GET', path: p, body, headers = {}, port, keepAlive = false,
    timeoutMs = 10000, unsigned = false, pubkey, ocid } = {}) {
    const res = await oc.request({ port: port ?? env.port, method, path: p, body, headers, keepAlive, timeoutMs });
    recordRequestId(res.headers['x-request-id']);
    res.signatureOk = oc.verifyResponse(pubkey ?? env.pubkey, res,
        { expectOcid: ocid ?? env.ocid, maxSkewSeconds: 60 });
    if (!unsigned && !res.signatureOk) {
        ok(false, `${method} ${p} → ${res.status}: response carries a valid gateway signature`,
            `X-OC-ID: ${res.headers['x-oc-id']}\nX-OC-Timestamp: ${res.headers['x-oc-timestamp']}\n` +
            `X-OC-Signature: ${res.headers['x-oc-signature']}\nbody: ${res.body.slice(0, 300)}`);
    }
    try {
        res.json = JSON.parse(res.body);
    } catch {
        res.json = undefined;
    }
    return res;
}

// call() with X-OC-* request headers signed by `as` ({ocid, priv}) over the exact body bytes
// and path sent. timestamp and nonce may be forced (replay and clock tests); headers given
// by the caller override the signed ones (to test broken headers).
export async function signedCall({ as, method = 'GET', path: p, body = '', headers = {}, timestamp, nonce, ...rest }) {
    const signed = oc.requestHeaders({ ocid: as.ocid, priv: as.priv, method, path: p, body, timestamp, nonce });
    const sendBody = body === '' && (method === 'GET' || method === 'HEAD') ? undefined : body;
    return call({ method, path: p, body: sendBody, headers: { ...signed, ...headers }, ...rest });
}

// --- invariants (design.md I1-I4) ----------------------------------------------------------
// Each query returns one line per violation, so an empty result is a pass and a failure
// prints what is wrong. They assume the schema's conventions (migrations/0001_core.sql):
// a credit is a ledger transaction of kind settlement/attach carrying payment_txid; the
// settlement or suspense posting of a proof carries proof_id; merchant accounts are
// 'merchant:<ocid>', provider clearing 'clearing:<issuer>'.

const INVARIANTS = [
    ['I1 a payment is credited at most once', `
        SELECT payment_txid || ': ' || count(*) || ' settlement/attach ledger transactions'
          FROM ledger_transactions
         WHERE kind IN ('settlement', 'attach') AND payment_txid IS NOT NULL
         GROUP BY payment_txid HAVING count(*) > 1`],
    ['I1 every completed payment has exactly one credit, a pending one none', `
        SELECT p.txid || ' (' || p.status || '): ' || count(l.id) || ' credits'
          FROM payments p
          LEFT JOIN ledger_transactions l ON l.payment_txid = p.txid AND l.kind IN ('settlement', 'attach')
         GROUP BY p.txid, p.status
        HAVING count(l.id) <> CASE WHEN p.status = 'completed' THEN 1 ELSE 0 END`],
    ['I1 each credit puts exactly the payment amount and currency in its merchant account', `
        SELECT 'ledger tx ' || l.id || ' for ' || p.txid || ': merchant entries '
               || coalesce(string_agg(e.account || ' ' || e.amount || ' ' || e.currency, ', '), 'none')
               || '; payment ' || p.merchant_ocid || ' ' || p.amount || ' ' || p.currency
          FROM ledger_transactions l
          JOIN payments p ON p.txid = l.payment_txid
          LEFT JOIN ledger_entries e ON e.ledger_tx_id = l.id AND e.account LIKE 'merchant:%'
         WHERE l.kind IN ('settlement', 'attach')
         GROUP BY l.id, p.txid, p.merchant_ocid, p.amount, p.currency
        HAVING count(e.id) <> 1
            OR bool_or(e.account <> 'merchant:' || p.merchant_ocid OR e.currency <> p.currency
                       OR e.amount <> p.amount) IS DISTINCT FROM false`],
    ['I2 every ledger transaction has entries and sums to zero per currency', `
        SELECT 'ledger tx ' || ledger_tx_id || ' ' || currency || ' sums to ' || sum(amount)
          FROM ledger_entries GROUP BY ledger_tx_id, currency HAVING sum(amount) <> 0
        UNION ALL
        SELECT 'ledger tx ' || t.id || ' (' || t.kind || ') has no entries'
          FROM ledger_transactions t
         WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.ledger_tx_id = t.id)`],
    ['I2 merchant credits equal the completed payments (attached exceptions included)', `
        WITH ledger AS (
            SELECT substr(account, 10)::bigint AS merchant, currency, sum(amount) AS total
              FROM ledger_entries WHERE account LIKE 'merchant:%' GROUP BY 1, 2),
        completed AS (
            SELECT merchant_ocid AS merchant, currency, sum(amount) AS total
              FROM payments WHERE status = 'completed' GROUP BY 1, 2)
        SELECT 'merchant ' || coalesce(l.merchant, c.merchant) || ' ' || coalesce(l.currency, c.currency)
               || ': ledger ' || coalesce(l.total, 0) || ', completed payments ' || coalesce(c.total, 0)
          FROM ledger l FULL JOIN completed c ON c.merchant = l.merchant AND c.currency = l.currency
         WHERE coalesce(l.total, 0) <> coalesce(c.total, 0)`],
    ['I2 each completed payment is backed by its credited proof or an attached exception, and vice versa', `
        SELECT 'payment ' || p.txid || ': completed_by ' || coalesce(p.completed_by::text, 'null')
               || ' is neither a proof credited to it nor an exception attached to it'
          FROM payments p
         WHERE p.status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM proofs pr WHERE pr.id = p.completed_by
                              AND pr.outcome = 'credited' AND pr.payment_txid = p.txid)
           AND NOT EXISTS (SELECT 1 FROM exceptions x WHERE x.proof_id = p.completed_by
                              AND x.status = 'attached' AND x.attached_txid = p.txid)
        UNION ALL
        SELECT 'proof ' || pr.id || ' is credited but did not complete payment ' || coalesce(pr.payment_txid, 'null')
          FROM proofs pr
         WHERE pr.outcome = 'credited'
           AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.txid = pr.payment_txid
                              AND p.status = 'completed' AND p.completed_by = pr.id)
        UNION ALL
        SELECT 'exception ' || x.id || ' is attached but did not complete payment ' || coalesce(x.attached_txid, 'null')
          FROM exceptions x
         WHERE x.status = 'attached'
           AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.txid = x.attached_txid
                              AND p.status = 'completed' AND p.completed_by = x.proof_id)`],
    ['I2 every stored proof moved its amount once from clearing to the merchant (credited) or suspense', `
        SELECT 'proof ' || pr.id || ' (' || pr.outcome || ', ' || pr.amount || ' ' || pr.currency || '): '
               || coalesce(string_agg(t.kind || ' ' || e.account || ' ' || e.amount || ' ' || e.currency, ', '),
                           'no settlement/suspense posting')
          FROM proofs pr
          LEFT JOIN ledger_transactions t ON t.proof_id = pr.id AND t.kind IN ('settlement', 'suspense')
          LEFT JOIN ledger_entries e ON e.ledger_tx_id = t.id
         GROUP BY pr.id, pr.outcome, pr.amount, pr.currency, pr.issuer, pr.merchant_ocid
        HAVING count(DISTINCT t.id) <> 1
            OR bool_or(t.kind <> CASE WHEN pr.outcome = 'credited' THEN 'settlement' ELSE 'suspense' END) IS TRUE
            OR coalesce(sum(e.amount) FILTER (WHERE e.currency = pr.currency
                                                AND e.account = 'clearing:' || pr.issuer), 0) <> -pr.amount
            OR coalesce(sum(e.amount) FILTER (WHERE e.currency = pr.currency AND e.account =
                   CASE WHEN pr.outcome = 'credited' THEN 'merchant:' || pr.merchant_ocid ELSE 'suspense' END), 0)
               <> pr.amount
            OR bool_or(e.currency <> pr.currency) IS TRUE`],
    ['I2 suspense holds the open exceptions, refunds payable the refunded ones', `
        WITH ledger AS (
            SELECT account, currency, sum(amount) AS total FROM ledger_entries
             WHERE account IN ('suspense', 'refunds_payable') GROUP BY 1, 2),
        wanted AS (
            SELECT CASE status WHEN 'open' THEN 'suspense' ELSE 'refunds_payable' END AS account,
                   currency, sum(amount) AS total
              FROM exceptions WHERE status IN ('open', 'refunded') GROUP BY 1, 2)
        SELECT coalesce(l.account, w.account) || ' ' || coalesce(l.currency, w.currency)
               || ': ledger ' || coalesce(l.total, 0) || ', exceptions ' || coalesce(w.total, 0)
          FROM ledger l FULL JOIN wanted w ON w.account = l.account AND w.currency = l.currency
         WHERE coalesce(l.total, 0) <> coalesce(w.total, 0)`],
    ['I3 every completed payment has exactly one delivery to its merchant, a pending one none', `
        SELECT p.txid || ' (' || p.status || '): ' || count(d.id) || ' deliveries'
          FROM payments p LEFT JOIN deliveries d ON d.payment_txid = p.txid
         GROUP BY p.txid, p.status
        HAVING count(d.id) <> CASE WHEN p.status = 'completed' THEN 1 ELSE 0 END
        UNION ALL
        SELECT 'delivery ' || d.id || ' goes to ' || d.merchant_ocid || ', payment merchant is ' || p.merchant_ocid
          FROM deliveries d JOIN payments p ON p.txid = d.payment_txid
         WHERE d.merchant_ocid <> p.merchant_ocid`],
    ['I4 every uncredited proof has exactly one exception of its kind and amount, a credited one none', `
        SELECT 'proof ' || pr.id || ' (' || pr.outcome || ' ' || pr.amount || ' ' || pr.currency || '): '
               || coalesce('exception ' || x.id || ' ' || x.kind || ' ' || x.amount || ' ' || x.currency, 'no exception')
          FROM proofs pr LEFT JOIN exceptions x ON x.proof_id = pr.id
         WHERE (pr.outcome = 'credited') <> (x.id IS NULL)
            OR (x.id IS NOT NULL AND (x.kind <> pr.outcome OR x.amount <> pr.amount
                                      OR x.currency <> pr.currency))`],
];

// Runs every invariant query; one TAP point each. Returns true if all hold.
export function checkInvariants(label = '') {
    let all = true;
    for (const [name, query] of INVARIANTS) {
        const title = label ? `${label}: ${name}` : name;
        let out;
        try {
            out = sql(query);
        } catch (e) {
            all = ok(false, title, e) && all;
            continue;
        }
        const lines = out ? out.split('\n') : [];
        all = ok(lines.length === 0, title,
            lines.slice(0, 10).join('\n') + (lines.length > 10 ? `\n... ${lines.length - 10} more` : '')) && all;
    }
    return all;
}
