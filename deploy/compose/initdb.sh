#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (mounted into
# /docker-entrypoint-initdb.d by compose.yaml) as the postgres user: creates the service role
# `ocgate`, whose password is the db_password_postgres secret (a copy of ocgate's
# db_password owned by this container's user), and gives it row access only
# (deploy/service-role.sql).
# The schema owner is POSTGRES_USER; the migrate service connects as it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v pw="$(cat /run/secrets/db_password_postgres)" <<'SQL'
CREATE ROLE ocgate LOGIN PASSWORD :'pw';
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v service_role=ocgate -f /ocgate/service-role.sql
