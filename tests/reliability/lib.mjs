// Shared by the reliability scenarios (tests/reliability/README.md): PostgreSQL control for
// the run-node.sh cluster, and the checks run after a crash, an outage or a merchant outage,
// against the load driver's records (load.mjs) and the database. Every check is one TAP point
// whose detail names the first offenders, so a failure says what was lost.

import cp from 'node:child_process';
import fs from 'node:fs';
import { resendWebhook } from './load.mjs';

let h;
export function init(harness) {
    h = harness;
}

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const firstFew = (xs, n = 8) => xs.slice(0, n).join('\n') + (xs.length > n ? `\n... ${xs.length - n} more` : '');

// --- PostgreSQL (tests/pg/pgtest.sh's cluster: PGHOST is its folder) ------------------------

export function pgCtl(args, what) {
    const dir = process.env.PGHOST;
    if (!dir || !fs.existsSync(`${dir}/data`)) throw new Error('PGHOST is not a pgtest.sh cluster folder');
    const bin = `${process.env.PGTEST_BIN || '/usr/lib/postgresql/15/bin'}/pg_ctl`;
    const all = ['-D', `${dir}/data`, ...args];
    const [file, argv] = process.getuid && process.getuid() === 0
        ? ['runuser', ['-u', 'postgres', '--', bin, ...all]] : [bin, all];
    const out = `${h.env.dir}/pg_ctl.out`;
    const fd = fs.openSync(out, 'a', 0o644);
    try {
        // Output to a file, not a pipe: the postmaster must not inherit a pipe we wait on.
        cp.execFileSync(file, argv, { stdio: ['ignore', fd, fd], timeout: 60000 });
    } catch (e) {
        throw new Error(`pg_ctl ${what} failed: ${e.message}\n${fs.readFileSync(out, 'utf8').slice(-2000)}`);
    } finally {
        fs.closeSync(fd);
    }
}

// mode: 'fast' (sessions terminated, transactions rolled back) or 'immediate' (no shutdown
// checkpoint: crash recovery on the next start).
export function pgStop(mode) {
    pgCtl(['-m', mode, '-w', 'stop'], `stop -m ${mode}`);
}

// Starts the cluster again with the options tests/pg/pgtest.sh gives it.
export function pgStart() {
    const dir = process.env.PGHOST;
    pgCtl(['-l', `${dir}/server.log`, '-w', '-t', '60', '-o',
        `-c listen_addresses='' -k ${dir} -p ${process.env.PGPORT} -c fsync=off -c synchronous_commit=off ` +
        '-c full_page_writes=off -c max_connections=200', 'start'], 'start');
}

// pgtest.sh runs PostgreSQL with synchronous_commit=off (fast tests), under which a commit
// is acknowledged before its WAL is written, so an immediate stop may lose it: a property of
// that setting, not of ocgate. Scenarios that stop PostgreSQL the hard way turn durable
// commits back on for every new session of the database (a database setting outranks the
// command line's).
export function durableCommits() {
    h.sql(`ALTER DATABASE ${process.env.PGDATABASE || 'postgres'} SET synchronous_commit = on`);
}

// --- the CLI ---------------------------------------------------------------------------------

export function cli(...args) {
    const r = cp.spawnSync(h.env.bin, args, { env: process.env, encoding: 'utf8', timeout: 120000 });
    return { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

// --- checks ----------------------------------------------------------------------------------

// A summary line of the records: answers by op and status/code.
export function summarize(records) {
    const by = new Map();
    for (const r of records) {
        const k = `${r.op} ${r.status}${r.code ? ` ${r.code}` : ''}`;
        by.set(k, (by.get(k) || 0) + 1);
    }
    return [...by.entries()].sort().map(([k, v]) => `${k}: ${v}`).join(', ');
}

// Every answer ocgate wrote carries a valid gateway signature, and none is a 500.
export function checkAnswers(records, label) {
    const unsigned = records.filter((r) => r.status > 0 && !r.sigOk);
    h.ok(unsigned.length === 0, `${label}: every answer carries a valid gateway signature`,
        firstFew(unsigned.map((r) => JSON.stringify(r))));
    const internal = records.filter((r) => r.status >= 500 && r.status !== 503);
    h.ok(internal.length === 0, `${label}: no 5xx other than 503 UNAVAILABLE`,
        firstFew(internal.map((r) => JSON.stringify(r))));
}

// Every create answered 200 is a stored payment; every webhook answered 200 accepted is a
// credited proof that completed its payment. Returns the number of violations.
export function checkAnsweredCommitted(records, provider, label) {
    const payments = new Map(h.sql('SELECT txid, status FROM payments').split('\n').filter(Boolean)
        .map((l) => l.split('|')));
    const proofs = new Map(h.sql(`SELECT txid, outcome, coalesce(payment_txid, '') FROM proofs WHERE issuer = ${provider.ocid}`)
        .split('\n').filter(Boolean).map((l) => { const [t, o, p] = l.split('|'); return [t, { outcome: o, payment: p }]; }));
    const lostCreates = records.filter((r) => r.op === 'create' && r.status === 200 && !payments.has(r.txid));
    const okWebhooks = records.filter((r) => r.op === 'webhook' && r.status === 200 && r.code === 'accepted');
    const lostSettles = okWebhooks.filter((r) => {
        const p = proofs.get(r.proofTxid);
        return !p || p.outcome !== 'credited' || p.payment !== r.txid || payments.get(r.txid) !== 'completed';
    });
    const creates = records.filter((r) => r.op === 'create' && r.status === 200).length;
    h.ok(lostCreates.length === 0, `${label}: all ${creates} creates answered 200 are stored payments`,
        firstFew(lostCreates.map((r) => `payment ${r.txid} answered 200 at ${r.t} is missing`)));
    h.ok(lostSettles.length === 0, `${label}: all ${okWebhooks.length} webhooks answered 200 accepted are credited, their payment completed`,
        firstFew(lostSettles.map((r) => `proof ${r.proofTxid} for ${r.txid}: ${JSON.stringify(proofs.get(r.proofTxid))}, payment ${payments.get(r.txid)}`)));
    return lostCreates.length + lostSettles.length;
}

// Sends again every webhook that was not answered 200 accepted (its outcome unknown to the
// caller, as after a crash or an outage); each must now be 200 accepted — stored once if it
// had been committed, settled now if not. Returns the proof txids resent.
export async function resendUnanswered(records, ctx, label) {
    const answered = new Set(records.filter((r) => r.op === 'webhook' && r.status === 200 && r.code === 'accepted')
        .map((r) => r.proofTxid));
    const todo = [...new Set(records.filter((r) => r.op === 'webhook' && !answered.has(r.proofTxid))
        .map((r) => r.proofTxid))];
    const bad = [];
    for (let i = 0; i < todo.length; i += 16) {
        const res = await Promise.all(todo.slice(i, i + 16).map((proofTxid) => resendWebhook({ ...ctx, proofTxid })));
        res.forEach((r, k) => {
            if (r.status !== 200 || r.code !== 'accepted' || !r.sigOk) bad.push(`${todo[i + k]}: ${r.status} ${r.body.slice(0, 200)} ${r.err || ''}`);
        });
    }
    h.ok(bad.length === 0, `${label}: the ${todo.length} webhooks without a 200 answer, sent again, are all 200 accepted`, firstFew(bad));
    const notDone = todo.length === 0 ? [] : h.sql(`SELECT pr.txid || ' ' || p.status FROM proofs pr JOIN payments p ON p.txid = pr.payment_txid
        WHERE pr.txid IN (${todo.map(q).join(',')}) AND (p.status <> 'completed' OR pr.outcome <> 'credited')`).split('\n').filter(Boolean);
    const stored = todo.length === 0 ? 0 : Number(h.sql(`SELECT count(*) FROM proofs WHERE txid IN (${todo.map(q).join(',')})`));
    h.ok(notDone.length === 0 && stored === todo.length, `${label}: each resent proof is stored once and credited`,
        `stored ${stored} of ${todo.length}\n${firstFew(notDone)}`);
    return todo;
}

export function ledgerCheck(label) {
    const r = cli('ledger', 'check');
    h.ok(r.status === 0, `${label}: ocgate ledger check exits 0`, `exit ${r.status}\n${r.stdout.slice(-1500)}\n${r.stderr.slice(-1500)}`);
}

// Waits (bounded) until no delivery is pending or in flight, then expects every one to be in
// state want ('delivered') and, if merchant receipts are given, each delivery id to have been
// accepted by its merchant at least once. Returns {waitedMs, duplicates}.
export async function checkDeliveriesEnd({ label, timeoutMs, merchants = [], want = 'delivered' }) {
    const t0 = Date.now();
    const open = () => Number(h.sql("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'in_flight')"));
    const settled = await h.waitFor(() => open() === 0, { timeoutMs, intervalMs: 250 });
    const waitedMs = Date.now() - t0;
    const states = h.sql('SELECT state || \'=\' || count(*) FROM deliveries GROUP BY state ORDER BY state').split('\n').join(' ');
    h.ok(settled, `${label}: no delivery left pending or in flight within ${timeoutMs} ms`, states);
    const other = h.sql(`SELECT id || ' ' || state || ' attempts ' || attempts || ' ' || coalesce(last_error, '')
        FROM deliveries WHERE state <> ${q(want)} LIMIT 20`).split('\n').filter(Boolean);
    const total = Number(h.sql('SELECT count(*) FROM deliveries'));
    h.ok(other.length === 0, `${label}: all ${total} deliveries end ${want}`, `${states}\n${firstFew(other)}`);
    let duplicates = 0;
    if (merchants.length) {
        const accepted = new Map();
        for (const m of merchants) {
            for (const r of m.receipts) {
                if (r.answered === 200 && r.outcome === 'accepted' && r.requestOk && r.proofOk) {
                    accepted.set(r.id, (accepted.get(r.id) || 0) + 1);
                }
            }
        }
        const ids = h.sql("SELECT id FROM deliveries WHERE state = 'delivered'").split('\n').filter(Boolean);
        const missing = ids.filter((id) => !accepted.has(id));
        duplicates = [...accepted.values()].reduce((a, v) => a + (v - 1), 0);
        h.ok(missing.length === 0, `${label}: each delivered notification reached its merchant, correctly signed, and was accepted`,
            firstFew(missing.map((id) => `delivery ${id} delivered in the database but never accepted by a merchant`)));
    }
    return { waitedMs, duplicates };
}

// Percentile (0..100) of a numeric array, nearest-rank.
export function percentile(xs, p) {
    if (xs.length === 0) return NaN;
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

// Waits (bounded) until the gateway on port answers each participant's signed GET
// /capabilities with 200: registered through the CLI a moment ago, they reach a running
// gateway within about a second (design.md "discovery"). True if all are known.
export async function waitKnown(participants, port) {
    let all = true;
    for (const p of participants) {
        all = !!(await h.waitFor(async () => (await h.signedCall({ as: p, method: 'GET',
            path: h.url('/capabilities'), port, unsigned: true })).status === 200,
        { timeoutMs: 5000, intervalMs: 50 })) && all;
    }
    return all;
}
