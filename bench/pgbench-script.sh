#!/usr/bin/env bash
# Prints the pgbench script that issues exactly the statements ocgate sends PostgreSQL for
# settlements, B at a time (B = the rows ocgate's delivery worker claimed per
# oc_delivery_claim call in the same run, as measured by pg_stat_statements):
#   B × oc_settle_proof     the webhook: nonce, proof, payment, ledger, outbox row (one commit each)
#   1 × oc_delivery_claim   the worker claims up to B due notifications (one commit)
#   1 × oc_delivery_finish  the B attempts recorded as delivered: one call each, one statement
#                           and one commit (the worker records the attempts that ended while a
#                           finish was in flight together; src/deliver/deliver.c)
# Statement shapes and parameters are those logged with log_statement=all during a real run;
# the strings pgbench cannot build client-side (nonce, txids) are concatenated server-side.
# Each pgbench transaction settles B payments of its own ("pgb<run>-<i>", prepared by
# bench/run.sh): i = ((k − 1) × clients + client_id) × B + j, k counting this client's
# transactions. The claim's rows come back as arrays so every claimed row can be finished,
# whoever settled it — as the worker does; the finish is the worker's own statement with
# those arrays. pgbench variables: clients, k (= 0), run.
#   bench/pgbench-script.sh B > settle.pgbench
set -euo pipefail
b=${1:-}
[[ "$b" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "usage: pgbench-script.sh B (1..999)" >&2; exit 2; }

# A proof of the size ocgate stores (strict canonical text) and a signature of the real length.
proof='{"amount":"1.00","currency":"USD","from":{"ocid":900,"reference":"payer-0"},"issuer":100,"timestamp":1795432779,"to":{"ocid":300,"reference":"pay_88b0f188f69997bc2042ad681c8f8ca9"},"txid":"bt-5544b9bc8fb5338d-0"}'
sig=b95f12e927b649c3a9bdcf3a00390fbf14e90bc2c230acbbdfa531856dd462ea33e8f1225ba1fc6dab131d75af0853c4fb31e970965f0cb40da6da38c698982b1b

echo '\set k :k + 1'
echo "\\set base ((:k - 1) * :clients + :client_id) * $b"
for ((j = 0; j < b; j++)); do
    echo "\\set i :base + $j"
    echo "SELECT result, outcome, payment_txid, gateway_proof FROM oc_settle_proof(100::bigint," \
         "'req_pgb' || :run || '_' || :i, 'webhook', NULL, NULL, 100::bigint," \
         "'bt-pgb' || :run || '-' || :i, 'pgb' || :run || '-' || :i, 1.00::numeric, '1.00'," \
         "'USD', '$proof', '$sig', 'strict', '{\"ocid\":900,\"reference\":\"payer-0\"}'," \
         "300::bigint, extract(epoch FROM now())::bigint);"
done
echo "SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempt), '{}') AS atts" \
     "FROM oc_delivery_claim('pgbench-' || :client_id, $b, 60, '{}'::bigint[], 8," \
     "'{}'::bigint[], '{}'::integer[]) \\gset"
echo "SELECT t.ord::integer, oc_delivery_finish(t.id, t.attempt, 'delivered', NULL," \
     "(extract(epoch FROM now()) * 1000)::bigint, 1, 200, NULL, '{\"status\":\"accepted\"}')" \
     "FROM unnest(:ids::uuid[], :atts::integer[]) WITH ORDINALITY AS t(id, attempt, ord)" \
     "ORDER BY t.id, t.attempt;"
