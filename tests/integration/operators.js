// Operator views and exception resolution end to end (design.md "money in the ledger",
// invariants I1-I4): payments created and settled through a real `ocgate serve` with proofs
// signed by tests/node/oc.js, exceptions of every kind produced by the gateway itself
// (unmatched, amount mismatch, late, duplicate payment), then the operator CLI
// (`ocgate payment|balance|exception|ledger ... --json`) checked against the database:
// filters and cursor pagination, the payment view, balances, and each resolution (attach,
// refund, dismiss) with its refusals, idempotency and audit trail; `ocgate ledger check` and
// the harness invariant queries after everything.
//   tests/integration/run-node.sh build/ocgate tests/integration/operators.js
//
// The gateway runs without its delivery worker, so merchant notifications stay pending and
// "nothing changed" can be checked on every table. Valid as CommonJS and as an ES module (no
// require, no top-level await), like smoke.js.

let h;
let oc;
let env;
let cp;   // node:child_process
let os;   // node:os

// --- participants ---------------------------------------------------------------------------

let nextOcid = 50000;

function participant(roles) {
    nextOcid += 1;
    return h.newParticipant({ ocid: nextOcid, roles });
}

// Waits (bounded) until the gateway knows p (participants reach it within a second).
async function sync(p) {
    const known = await h.waitFor(async () => (await h.signedCall({ as: p, method: 'GET',
        path: h.url('/capabilities'), unsigned: true })).status === 200, { timeoutMs: 5000, intervalMs: 50 });
    if (!known) throw new Error(`participant ${p.ocid} still unknown to the gateway 5 s after registration`);
}

// --- small helpers --------------------------------------------------------------------------

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const rand = () => oc.newNonce().slice(4, 16);
const short = (res) => (res ? `${res.status} ${String(res.body).slice(0, 300)}` : 'no response');

// Decimal strings as integers of 10^-18 units, so sums are exact.
function units(s) {
    const m = /^(-?)([0-9]+)(?:\.([0-9]{1,18}))?$/.exec(String(s));
    if (!m) throw new Error(`not a decimal amount: ${s}`);
    const v = BigInt(m[2]) * 10n ** 18n + BigInt(((m[3] || '') + '0'.repeat(18)).slice(0, 18));
    return m[1] ? -v : v;
}

function fingerprintDiff(a, b) {
    const pa = Object.fromEntries(a.split(' ').map((x) => x.split('=')));
    const pb = Object.fromEntries(b.split(' ').map((x) => x.split('=')));
    return Object.keys({ ...pa, ...pb }).filter((k) => pa[k] !== pb[k]).join(', ') || '(none)';
}

// Every table except the audit trail, which records refused attempts too.
const state = () => h.fingerprint({ exclude: ['admin_audit'] });

function unchangedSince(before, name) {
    const after = state();
    return h.ok(before === after, `${name}: nothing changed`, `tables changed: ${fingerprintDiff(before, after)}`);
}

// --- the CLI --------------------------------------------------------------------------------

// Runs `ocgate args...` and returns {status, stdout, stderr, json (parsed stdout or undefined)}.
function cli(...args) {
    let status = 0;
    let stdout;
    let stderr = '';
    try {
        stdout = cp.execFileSync(env.bin, args, {
            env: process.env, encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'],
        });
    } catch (e) {
        if (e.status === null || e.status === undefined) throw e;   // killed or not run
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

// cli() without blocking the event loop, so several run at once.
function cliAsync(...args) {
    return new Promise((resolve) => {
        cp.execFile(env.bin, args, { env: process.env, encoding: 'utf8', timeout: 30000 }, (err, stdout, stderr) => {
            let json;
            try {
                json = JSON.parse(stdout);
            } catch {
                json = undefined;
            }
            resolve({ status: err ? (err.code ?? -1) : 0, stdout, stderr, json });
        });
    });
}

// Runs a --json command that must succeed; returns its parsed output.
function cliJson(...args) {
    const r = cli(...args, '--json');
    if (r.status !== 0 || r.json === undefined) {
        throw new Error(`ocgate ${args.join(' ')} --json → exit ${r.status}: ${r.stderr.trim()} ${r.stdout.slice(0, 300)}`);
    }
    return r.json;
}

// Every page of a list command; returns {items, pages}. Bounded by maxPages.
function allPages(args, { limit, maxPages = 100 } = {}) {
    const items = [];
    let cursor = null;
    let pages = 0;
    do {
        const page = cliJson(...args, '--limit', String(limit), ...(cursor ? ['--cursor', cursor] : []));
        pages += 1;
        items.push(...page.items);
        if (page.items.length > limit) throw new Error(`page of ${page.items.length} items with --limit ${limit}`);
        cursor = page.next_cursor;
    } while (cursor && pages < maxPages);
    return { items, pages };
}

// --- API calls ------------------------------------------------------------------------------

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
        from: { ocid: 4242, reference: `wallet ${proofSeq} — ☕` },
        to: { ocid: Number(env.ocid), reference },
        amount,
        currency,
    });
    return oc.signProof(provider.priv, proof, 'strict');
}

async function webhook(provider, envelope) {
    return h.signedCall({ as: provider, method: 'POST', path: h.url('/transfer/webhook'), body: JSON.stringify(envelope) });
}

async function settle(app, txid, envelope) {
    const body = JSON.stringify({ txid, proof: envelope.proof, signature: envelope.signature });
    return h.signedCall({ as: app, method: 'POST', path: h.url('/payment/settle'), body });
}

function exceptionOf(envelope) {
    const p = envelope.proof;
    return h.sql(`SELECT x.id || '|' || x.kind || '|' || x.status FROM exceptions x JOIN proofs pr ON pr.id = x.proof_id
                   WHERE pr.issuer = ${p.issuer} AND pr.txid = ${q(p.txid)}`);
}

// --- the scenario ---------------------------------------------------------------------------

async function scenario() {
    const app = participant(['payment_app']);
    const merchantA = participant(['merchant']);
    const merchantB = participant(['merchant']);
    const provider = participant(['settlement_provider']);
    await sync(provider);

    // Settled payments: {txid, merchant, amount, currency}.
    const settled = [];
    const specs = [
        [merchantA, '15.00', 'USD', 'webhook'], [merchantA, '7.50', 'USD', 'settle'],
        [merchantB, '1000', 'UGX', 'webhook'], [merchantB, '2.25', 'USD', 'webhook'],
        [merchantA, '0.10', 'USD', 'settle'], [merchantB, '12', 'USDT', 'webhook'],
    ];
    for (const [merchant, amount, currency, via] of specs) {
        const txid = await createOk(app, merchant, { amount, currency });
        const e = proofFor(provider, txid, amount, currency);
        const res = via === 'webhook' ? await webhook(provider, e) : await settle(app, txid, e);
        if (res.status !== 200) throw new Error(`${via} for ${txid} → ${short(res)}`);
        settled.push({ txid, merchant: merchant.ocid, amount, currency, envelope: e });
    }
    h.is(h.sql(`SELECT count(*) FROM payments WHERE status = 'completed' AND txid IN (${settled.map((s) => q(s.txid)).join(',')})`),
        String(settled.length), `setup: ${settled.length} payments settled through the gateway`);

    const pendingA = await createOk(app, merchantA, { amount: '3.00' });
    const target999 = await createOk(app, merchantB, { amount: '9.99' });

    // Exceptions of every kind, produced by the gateway.
    const unmatched = proofFor(provider, `no_such_payment_${rand()}`, '5.00');
    h.is((await webhook(provider, unmatched)).status, 200, 'setup: webhook with an unknown reference → 200');
    const mismatch = proofFor(provider, target999, '1.00');
    h.is((await webhook(provider, mismatch)).status, 400, 'setup: webhook with the wrong amount → 400');
    const duplicate = proofFor(provider, settled[0].txid, '15.00');
    h.is((await webhook(provider, duplicate)).status, 200, 'setup: a second proof for a completed payment → 200');
    const expiresAt = oc.nowSeconds() + 2;
    const latePay = await createOk(app, merchantA, { amount: '4.00', expiresAt });
    // Two seconds past expiry, not one: the gateway reads time(2), whose coarse clock can lag a
    // few milliseconds behind Node's, which once put a proof sent at x.007 s in the second before.
    await h.waitFor(() => oc.nowSeconds() >= expiresAt + 2, { timeoutMs: 6000, intervalMs: 100 });
    const late = proofFor(provider, latePay, '4.00');
    h.is((await webhook(provider, late)).status, 200, 'setup: webhook for an expired payment → 200');
    const [xUnmatched, xMismatch, xDuplicate, xLate] = [unmatched, mismatch, duplicate, late].map((e) => exceptionOf(e));
    h.ok(/\|unmatched\|open$/.test(xUnmatched) && /\|amount_mismatch\|open$/.test(xMismatch) &&
        /\|duplicate_payment\|open$/.test(xDuplicate) && /\|late\|open$/.test(xLate),
    'setup: one open exception of each kind', [xUnmatched, xMismatch, xDuplicate, xLate].join('\n'));
    const id = (x) => x.split('|')[0];
    h.checkInvariants('after setup');

    // --- payment list: filters and pagination ---------------------------------------------
    const allDb = h.sql('SELECT txid FROM payments ORDER BY created_at, txid').split('\n');
    for (const limit of [1, 2, 3, 50]) {
        const { items, pages } = allPages(['payment', 'list'], { limit });
        const txids = items.map((p) => p.txid);
        h.same(txids, allDb, `payment list --limit ${limit}: ${pages} pages cover every payment exactly once, in (created_at, txid) order`);
    }
    {
        const page = cliJson('payment', 'list', '--limit', String(allDb.length));
        h.is(page.next_cursor, null, 'payment list: the last page has no next cursor');
        const row = page.items.find((p) => p.txid === settled[0].txid);
        h.ok(row && row.amount === '15.00' && row.currency === 'USD' && row.status === 'completed' &&
            row.merchant === merchantA.ocid && Number.isSafeInteger(row.createdAt),
        'payment list: an item carries txid, merchant, amount as created, currency, status, times', JSON.stringify(row));
    }
    const filters = [
        [['--status', 'completed'], "status = 'completed'"],
        [['--status', 'pending_settlement'], "status = 'pending_settlement'"],
        [['--status', 'expired'], "status = 'pending_settlement' AND expires_at < now()"],
        [['--merchant', String(merchantA.ocid)], `merchant_ocid = ${merchantA.ocid}`],
        [['--currency', 'UGX'], "currency = 'UGX'"],
        [['--merchant', String(merchantB.ocid), '--currency', 'USD', '--status', 'completed'],
            `merchant_ocid = ${merchantB.ocid} AND currency = 'USD' AND status = 'completed'`],
        [['--since', String(oc.nowSeconds() + 3600)], 'false'],
        [['--until', '2000-01-01T00:00:00Z'], 'false'],
        [['--since', '2000-01-01', '--until', String(oc.nowSeconds() + 3600)], 'true'],
    ];
    for (const [args, where] of filters) {
        const want = h.sql(`SELECT coalesce(string_agg(txid, ',' ORDER BY created_at, txid), '') FROM payments WHERE ${where}`);
        const { items } = allPages(['payment', 'list', ...args], { limit: 2 });
        h.is(items.map((p) => p.txid).join(','), want, `payment list ${args.join(' ')}: exactly the matching payments, paged by 2`);
    }
    {
        const r = cli('payment', 'list', '--status', 'nonsense', '--json');
        h.ok(r.status === 2 && /status/.test(r.stderr), 'payment list --status nonsense → exit 2 naming status', `${r.status} ${r.stderr}`);
        const c = cli('payment', 'list', '--cursor', 'not-a-cursor', '--json');
        h.ok(c.status === 2 && /cursor/.test(c.stderr), 'payment list with a forged cursor → exit 2', `${c.status} ${c.stderr}`);
        const x = cliJson('exception', 'list', '--limit', '1');
        const wrong = cli('payment', 'list', '--cursor', x.next_cursor || 'x', '--json');
        h.is(wrong.status, 2, "payment list with another list's cursor → exit 2");
    }

    // --- payment show -----------------------------------------------------------------------
    {
        const s = settled[0];
        const doc = cliJson('payment', 'show', s.txid);
        h.ok(doc.payment && doc.payment.txid === s.txid && doc.payment.status === 'completed' &&
            doc.payment.amount === '15.00', 'payment show: the payment, completed', JSON.stringify(doc.payment));
        const proofTxids = (doc.proofs || []).map((p) => p.txid).sort();
        h.same(proofTxids, [s.envelope.proof.txid, duplicate.proof.txid].sort(),
            'payment show: both proofs naming it (the credited one and the duplicate)');
        const credited = (doc.proofs || []).find((p) => p.txid === s.envelope.proof.txid) || {};
        h.ok(credited.outcome === 'credited' && oc.canonicalStrict(credited.proof) === oc.canonicalStrict(s.envelope.proof) &&
            credited.signature === s.envelope.signature, 'payment show: the credited proof as received, with its signature');
        h.ok(doc.payment.completedBy === credited.id, 'payment show: completedBy is the credited proof');
        const kinds = (doc.ledger || []).map((t) => t.kind).sort();
        h.same(kinds, ['settlement', 'suspense'], 'payment show: its settlement and the duplicate\'s suspense posting');
        const st = (doc.ledger || []).find((t) => t.kind === 'settlement') || { entries: [] };
        h.same(st.entries.map((e) => `${e.account} ${e.amount} ${e.currency}`).sort(),
            [`clearing:${provider.ocid} -15 USD`, `merchant:${merchantA.ocid} 15 USD`],
            'payment show: settlement entries clearing → merchant');
        h.same((doc.exceptions || []).map((x) => `${x.id}|${x.kind}|${x.status}`), [xDuplicate],
            'payment show: the duplicate payment exception');
        const dbDelivery = h.sql(`SELECT id FROM deliveries WHERE payment_txid = ${q(s.txid)}`);
        h.ok(doc.delivery && doc.delivery.id === dbDelivery && doc.delivery.state === 'pending' &&
            Array.isArray(doc.delivery.attemptLog), 'payment show: its merchant notification with the attempt log', JSON.stringify(doc.delivery));
        const pend = cliJson('payment', 'show', pendingA);
        h.ok(pend.payment.status === 'pending_settlement' && pend.delivery === null && pend.ledger.length === 0 &&
            pend.proofs.length === 0, 'payment show of a pending payment: no proof, no ledger, no notification');
        const nf = cli('payment', 'show', 'pay_does_not_exist', '--json');
        h.ok(nf.status === 1 && /no payment/.test(nf.stderr), 'payment show of an unknown txid → exit 1', `${nf.status} ${nf.stderr}`);
        const table = cli('payment', 'show', s.txid);
        h.ok(table.status === 0 && table.stdout.includes(s.txid) && /settlement/.test(table.stdout) &&
            table.stdout.includes(dbDelivery), 'payment show without --json prints a readable view');
    }

    // --- balance ----------------------------------------------------------------------------
    function expectedBalances(extra = []) {
        const sums = new Map();
        for (const s of [...settled, ...extra]) {
            const k = `${s.merchant} ${s.currency}`;
            sums.set(k, (sums.get(k) || 0n) + units(s.amount));
        }
        return sums;
    }
    function checkBalances(extra, name) {
        const doc = cliJson('balance');
        const want = expectedBalances(extra);
        const got = new Map();
        for (const m of doc.merchants || []) {
            if (m.merchant === merchantA.ocid || m.merchant === merchantB.ocid) {
                got.set(`${m.merchant} ${m.currency}`, units(m.balance));
            }
        }
        const show = (mp) => [...mp.entries()].map(([k, v]) => `${k}=${v}`).sort().join(', ');
        h.is(show(got), show(want), `${name}: each merchant's balance per currency is the sum of its settled amounts`);
        return doc;
    }
    {
        const doc = checkBalances([], 'balance');
        const susp = (doc.suspense || []).find((s) => s.currency === 'USD');
        h.ok(susp && units(susp.balance) === units(h.sql("SELECT trim_scale(sum(amount))::text FROM exceptions WHERE status = 'open' AND currency = 'USD'")),
            'balance: suspense USD equals the open exceptions', JSON.stringify(doc.suspense));
        const onlyA = cliJson('balance', '--merchant', String(merchantA.ocid));
        h.same(onlyA.merchants.map((m) => `${m.merchant} ${m.currency} ${m.balance}`), [`${merchantA.ocid} USD 22.6`],
            'balance --merchant: only that merchant');
        const table = cli('balance');
        h.ok(table.status === 0 && table.stdout.includes(String(merchantA.ocid)) && /suspense/.test(table.stdout),
            'balance without --json prints a table');
    }

    // --- exception list ---------------------------------------------------------------------
    {
        const open = allPages(['exception', 'list', '--status', 'open'], { limit: 1 }).items;
        h.same(open.map((x) => x.id).sort((a, b) => a - b), [xUnmatched, xMismatch, xDuplicate, xLate].map((x) => Number(id(x))).sort((a, b) => a - b),
            'exception list --status open, one per page: the four open exceptions');
        const lateOnly = cliJson('exception', 'list', '--kind', 'late').items;
        h.same(lateOnly.map((x) => x.id), [Number(id(xLate))], 'exception list --kind late');
        const l = lateOnly[0] || {};
        h.ok(l.amount === '4.00' && l.currency === 'USD' && l.proofTxid === late.proof.txid && l.issuer === provider.ocid &&
            l.reference === latePay && l.merchant === merchantA.ocid && l.status === 'open',
        'exception list: an item carries amount, currency, proof, issuer, reference, merchant, status', JSON.stringify(l));
        const bad = cli('exception', 'list', '--kind', 'nonsense', '--json');
        h.is(bad.status, 2, 'exception list --kind nonsense → exit 2');
    }

    const actor = os.userInfo().username;
    const auditCount = () => Number(h.sql('SELECT count(*) FROM admin_audit'));

    // --- attach: the late proof to its expired payment -------------------------------------
    {
        h.is(h.sql(`SELECT status || ' ' || (expires_at < now())::text FROM payments WHERE txid = ${q(latePay)}`),
            'pending_settlement true', 'attach target: pending and expired');
        const audit0 = auditCount();
        const r = cli('exception', 'resolve', id(xLate), '--attach', latePay, '--json');
        h.ok(r.status === 0 && r.json && r.json.result === 'done', 'exception resolve --attach → exit 0, done', `${r.status} ${r.stderr} ${r.stdout}`);
        const pay = h.sql(`SELECT status || '|' || completed_by || '|' || (gateway_proof IS NOT NULL)::text FROM payments WHERE txid = ${q(latePay)}`);
        const proofId = h.sql(`SELECT proof_id FROM exceptions WHERE id = ${id(xLate)}`);
        h.is(pay, `completed|${proofId}|true`, 'attach: the payment is completed by the exception\'s proof');
        h.is(h.sql(`SELECT string_agg(e.account || ' ' || trim_scale(e.amount) || ' ' || e.currency, ', ' ORDER BY e.amount)
                      FROM ledger_transactions t JOIN ledger_entries e ON e.ledger_tx_id = t.id
                     WHERE t.kind = 'attach' AND t.payment_txid = ${q(latePay)}`),
        `suspense -4 USD, merchant:${merchantA.ocid} 4 USD`, 'attach: one ledger transaction suspense → merchant');
        h.is(h.sql(`SELECT count(*) || ' ' || min(state) || ' ' || min(merchant_ocid) FROM deliveries WHERE payment_txid = ${q(latePay)}`),
            `1 pending ${merchantA.ocid}`, 'attach: one merchant notification enqueued');
        h.is(h.sql(`SELECT status || '|' || attached_txid || '|' || resolved_by FROM exceptions WHERE id = ${id(xLate)}`),
            `attached|${latePay}|${actor}`, 'attach: exception attached, resolved by the OS user');
        h.ok(r.json && r.json.deliveryId === h.sql(`SELECT id FROM deliveries WHERE payment_txid = ${q(latePay)}`) &&
            r.json.payment && r.json.payment.status === 'completed', 'attach: the answer names the notification and the completed payment');
        h.is(auditCount(), audit0 + 1, 'attach: one audit row');

        // The gateway now answers /verify with a gateway proof built at attach time.
        const ver = await h.signedCall({ as: app, method: 'GET', path: h.url('/verify/' + encodeURIComponent(latePay)) });
        const j = ver.json || {};
        const completedAt = Number(h.sql(`SELECT extract(epoch FROM completed_at)::bigint FROM payments WHERE txid = ${q(latePay)}`));
        h.ok(ver.status === 200 && j.status === 'completed' && j.proof &&
            oc.verifyEmitted(env.pubkey, oc.canonicalStrict(j.proof), j.signature),
        'verify of the attached payment → completed with a valid gateway signature', short(ver));
        const want = { amount: '4.00', currency: 'USD', from: late.proof.from, issuer: Number(env.ocid),
            timestamp: completedAt, to: { ocid: merchantA.ocid }, txid: latePay };
        h.is(j.proof ? oc.canonicalStrict(j.proof) : '', oc.canonicalStrict(want),
            'attach: gateway proof = payment amount/currency/txid, provider "from" verbatim, completion time');

        const before = state();
        const again = cli('exception', 'resolve', id(xLate), '--attach', latePay, '--json');
        h.ok(again.status === 0 && again.json && again.json.result === 'already_done' &&
            again.json.deliveryId === r.json.deliveryId && again.json.ledgerTx && r.json.ledgerTx &&
            again.json.ledgerTx.id === r.json.ledgerTx.id,
        'the same attach again → exit 0, already_done with the stored outcome', `${again.status} ${again.stdout}`);
        unchangedSince(before, 'the same attach again');
        const other = cli('exception', 'resolve', id(xLate), '--refund', '--json');
        h.ok(other.status === 1 && other.json && other.json.result === 'invalid_state',
            'a different resolution of an attached exception → exit 1, invalid_state', `${other.status} ${other.stdout}`);
        unchangedSince(before, 'refund after attach');
        checkBalances([{ merchant: merchantA.ocid, currency: 'USD', amount: '4.00' }], 'balance after attach');
    }

    // --- concurrent resolutions: one payment, two exceptions, three tries each ---------------
    {
        const target = await createOk(app, merchantB, { amount: '6.00' });
        const u1 = proofFor(provider, `lost_${rand()}`, '6.00');
        const u2 = proofFor(provider, `lost_${rand()}`, '6.00');
        h.is((await webhook(provider, u1)).status, 200, 'concurrency setup: first unmatched proof');
        h.is((await webhook(provider, u2)).status, 200, 'concurrency setup: second unmatched proof');
        const [x1, x2] = [exceptionOf(u1), exceptionOf(u2)].map(id);
        const tries = [x1, x2, x1, x2, x1, x2].map((x) => cliAsync('exception', 'resolve', x, '--attach', target, '--json')
            .then((r) => ({ x, result: r.json ? r.json.result : `exit ${r.status}: ${r.stderr}` })));
        const results = await Promise.all(tries);
        const winner = h.sql(`SELECT id FROM exceptions WHERE attached_txid = ${q(target)}`);
        const loser = winner === x1 ? x2 : x1;
        const summary = results.map((r) => `${r.x === winner ? 'winner' : 'loser'}:${r.result}`).sort().join(',');
        h.ok((winner === x1 || winner === x2) && summary ===
            'loser:invalid_state,loser:invalid_state,loser:invalid_state,winner:already_done,winner:already_done,winner:done',
        'six concurrent attaches of two exceptions to one payment: one done, its repeats already_done, the other exception refused',
        `winner ${winner}; ${results.map((r) => `${r.x}:${r.result}`).join(', ')}`);
        h.is(h.sql(`SELECT count(*) FROM ledger_transactions WHERE payment_txid = ${q(target)} AND kind = 'attach'`), '1',
            'concurrent attaches: the payment is credited once');
        h.is(h.sql(`SELECT status FROM exceptions WHERE id = ${loser}`), 'open', 'concurrent attaches: the other exception stays open');
        settled.push({ txid: target, merchant: merchantB.ocid, amount: '6.00', currency: 'USD' });
        checkBalances([{ merchant: merchantA.ocid, currency: 'USD', amount: '4.00' }], 'balance after concurrent attaches');
    }

    // --- attach to a payment with a different amount -----------------------------------------
    {
        const before = state();
        const r = cli('exception', 'resolve', id(xMismatch), '--attach', target999, '--json');
        h.ok(r.status === 1 && r.json && r.json.result === 'mismatch' && /refused/.test(r.stderr),
            'attach 1.00 to a 9.99 payment → exit 1, mismatch', `${r.status} ${r.stderr} ${r.stdout}`);
        unchangedSince(before, 'refused attach');
        h.is(h.sql(`SELECT status FROM payments WHERE txid = ${q(target999)}`), 'pending_settlement', 'refused attach: payment still pending');
        const done = cli('exception', 'resolve', id(xMismatch), '--attach', settled[1].txid, '--json');
        h.ok(done.status === 1 && done.json && done.json.result === 'invalid_state',
            'attach to a completed payment → exit 1, invalid_state', `${done.status} ${done.stdout}`);
        unchangedSince(before, 'attach to a completed payment');
    }

    // --- refund the duplicate payment -----------------------------------------------------------
    {
        const r = cli('exception', 'resolve', id(xDuplicate), '--refund', '--reason', 'payer paid twice', '--json');
        h.ok(r.status === 0 && r.json && r.json.result === 'done', 'exception resolve --refund → done', `${r.status} ${r.stderr}`);
        h.is(h.sql(`SELECT string_agg(e.account || ' ' || trim_scale(e.amount) || ' ' || e.currency, ', ' ORDER BY e.amount)
                      FROM ledger_transactions t JOIN ledger_entries e ON e.ledger_tx_id = t.id
                     WHERE t.kind = 'refund' AND t.exception_id = ${id(xDuplicate)}`),
        'suspense -15 USD, refunds_payable 15 USD', 'refund: suspense → refunds payable');
        h.is(h.sql(`SELECT status || '|' || resolution_note FROM exceptions WHERE id = ${id(xDuplicate)}`),
            'refunded|payer paid twice', 'refund: exception refunded with its note');
        const before = state();
        const again = cli('exception', 'resolve', id(xDuplicate), '--refund');
        h.ok(again.status === 0 && /already refunded/.test(again.stdout), 'the same refund again → exit 0, "already"', again.stdout);
        unchangedSince(before, 'the same refund again');
    }

    // --- dismiss the unmatched proof: refused without a reason, then done ----------------
    {
        const audit0 = auditCount();
        const before = state();
        const r = cli('exception', 'resolve', id(xUnmatched), '--dismiss', '--json');
        h.ok(r.status === 1 && r.json && r.json.result === 'reason_required', 'dismiss without --reason → exit 1, reason_required',
            `${r.status} ${r.stderr} ${r.stdout}`);
        unchangedSince(before, 'dismiss without a reason');
        h.is(h.sql(`SELECT status FROM exceptions WHERE id = ${id(xUnmatched)}`), 'open', 'dismiss without a reason: still open');
        h.is(auditCount(), audit0 + 1, 'the refused attempt is in the audit trail');
        const blank = cli('exception', 'resolve', id(xUnmatched), '--dismiss', '--reason', '   ');
        h.is(blank.status, 1, 'dismiss with a blank reason → exit 1');
        unchangedSince(before, 'dismiss with a blank reason');

        const d = cli('exception', 'resolve', id(xUnmatched), '--dismiss', '--reason', 'provider test transfer', '--json');
        h.ok(d.status === 0 && d.json && d.json.result === 'done', 'dismiss with a reason → done', `${d.status} ${d.stderr}`);
        h.is(h.sql(`SELECT string_agg(e.account || ' ' || trim_scale(e.amount) || ' ' || e.currency, ', ' ORDER BY e.amount)
                      FROM ledger_transactions t JOIN ledger_entries e ON e.ledger_tx_id = t.id
                     WHERE t.kind = 'dismiss' AND t.exception_id = ${id(xUnmatched)}`),
        `suspense -5 USD, clearing:${provider.ocid} 5 USD`, 'dismiss: the reversal suspense → provider clearing');
        h.is(h.sql(`SELECT status || '|' || resolution_note || '|' || resolved_by FROM exceptions WHERE id = ${id(xUnmatched)}`),
            `dismissed|provider test transfer|${actor}`, 'dismiss: exception dismissed with reason and actor');
        const nf = cli('exception', 'resolve', '999999999', '--refund', '--json');
        h.ok(nf.status === 1 && nf.json && nf.json.result === 'not_found', 'resolve of an unknown exception → exit 1, not_found');
        const usage = cli('exception', 'resolve', id(xMismatch), '--refund', '--dismiss');
        h.is(usage.status, 2, 'two actions at once → exit 2');
    }

    // --- the audit trail -----------------------------------------------------------------------
    {
        const rows = h.sql(`SELECT actor || '|' || action || '|' || target || '|' || (result->>'result')
                              FROM admin_audit WHERE action LIKE 'exception.%' ORDER BY id`).split('\n');
        h.ok(rows.length >= 10 && rows.every((r) => r.startsWith(`${actor}|exception.`)),
            `every audit row names the OS user (${actor}) and the action`, rows.join('\n'));
        h.ok(rows.includes(`${actor}|exception.attach|exception:${id(xLate)}|done`) &&
            rows.includes(`${actor}|exception.attach|exception:${id(xLate)}|already_done`) &&
            rows.includes(`${actor}|exception.dismiss|exception:${id(xUnmatched)}|reason_required`) &&
            rows.includes(`${actor}|exception.attach|exception:${id(xMismatch)}|mismatch`) &&
            rows.includes(`${actor}|exception.refund|exception:${id(xDuplicate)}|done`),
        'the audit trail holds each resolution and each refusal with its result', rows.join('\n'));
        h.is(h.sql(`SELECT reason FROM admin_audit WHERE target = 'exception:${id(xUnmatched)}' AND result->>'result' = 'done'`),
            'provider test transfer', 'the audit row keeps the reason');
        let refused = false;
        try {
            h.sql('UPDATE admin_audit SET actor = \'someone else\'');
        } catch {
            refused = true;
        }
        h.ok(refused, 'the audit trail is append-only');
    }

    // --- the ledger check --------------------------------------------------------------------
    {
        const r = cli('ledger', 'check', '--json');
        h.ok(r.status === 0 && r.json && r.json.ok === true && Array.isArray(r.json.violations) && r.json.violations.length === 0,
            'ledger check --json → exit 0, no violation', `${r.status} ${r.stdout} ${r.stderr}`);
        const t = cli('ledger', 'check');
        h.ok(t.status === 0 && /ok/.test(t.stdout), 'ledger check → exit 0, "ok"', t.stdout);
        const entries = allPages(['ledger', 'entries', '--account', 'suspense'], { limit: 3 }).items;
        const sum = entries.reduce((a, e) => a + units(e.amount), 0n);
        h.is(String(sum), String(units(h.sql("SELECT coalesce(trim_scale(sum(amount))::text, '0') FROM exceptions WHERE status = 'open' AND currency = 'USD'"))),
            'ledger entries --account suspense: the entries sum to the open exceptions');
    }
    h.checkInvariants('after the resolutions');
}

// --- main -----------------------------------------------------------------------------------

import('../node/harness.js').then((harness) => harness.run(async () => {
    h = harness;
    oc = h.oc;
    env = h.env;
    cp = await import('node:child_process');
    os = await import('node:os');
    const gw = await h.startGateway({ OCGATE_WORKER: 'false' });
    h.diag(`gateway pid ${gw.pid}`);
    h.ok(true, 'gateway started (no delivery worker)');
    await scenario();
    h.is(await gw.stop('SIGTERM'), 0, 'SIGTERM → ocgate exits 0');
}));
