# Sourced by integration tests: starts a throwaway PostgreSQL 15 cluster in a fresh temp
# folder (Unix socket only, no TCP port, so parallel tests never collide) and stops and
# removes it on exit. PostgreSQL refuses to run as root, so as root the cluster belongs to
# the unprivileged 'postgres' user that Debian's package creates.
#
#   . tests/pg/pgtest.sh; pgtest_start     → exports PGHOST PGPORT PGUSER PGDATABASE
#                                             and OCGATE_DATABASE_URL
#   pgtest_stop                            → also run by the EXIT trap pgtest_start sets

PGTEST_BIN=${PGTEST_BIN:-/usr/lib/postgresql/15/bin}

pgtest_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pgtest_start() {
    PGTEST_DIR=$(mktemp -d /tmp/ocgate-pg.XXXXXX)
    chmod 0755 "$PGTEST_DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PGTEST_DIR"
    pgtest_as_owner "$PGTEST_BIN/initdb" -D "$PGTEST_DIR/data" -U ocgate_admin \
        --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$PGTEST_DIR/initdb.log" 2>&1 || {
        cat "$PGTEST_DIR/initdb.log" >&2
        return 1
    }
    PGPORT=$(( 20000 + RANDOM % 20000 ))
    pgtest_as_owner "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DIR/data" -l "$PGTEST_DIR/server.log" -w \
        -o "-c listen_addresses='' -k $PGTEST_DIR -p $PGPORT -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || {
        cat "$PGTEST_DIR/server.log" >&2
        return 1
    }
    export PGHOST=$PGTEST_DIR PGPORT PGUSER=ocgate_admin PGDATABASE=postgres
    export OCGATE_DATABASE_URL="postgresql:///postgres?host=$PGTEST_DIR&port=$PGPORT&user=ocgate_admin"
    trap pgtest_stop EXIT
}

pgtest_stop() {
    [ -n "${PGTEST_DIR:-}" ] && [ -d "$PGTEST_DIR" ] || return 0
    pgtest_as_owner "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DIR/data" -m immediate stop \
        >/dev/null 2>&1 || true
    rm -rf "$PGTEST_DIR"
    PGTEST_DIR=
}
