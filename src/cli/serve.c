/* `ocgate serve [--config FILE]`: the daemon. Loads and checks everything that can be checked
 * before accepting a request — configuration, the gateway key, the schema version, the
 * participants (cli_startup, shared with `ocgate worker`) — then serves until SIGTERM/SIGINT
 * and drains. Start-up may block (files, one synchronous database connection); nothing after
 * http_server_run does. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/api.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/notify.h"
#include "cli/startup.h"
#include "conf/conf.h"
#include "directory/directory.h"
#include "http/server.h"
#include "obs/log.h"
#include "proto/keys.h"
#include "store/pool.h"
#include "store/migrate.h"

#define SERVE_DIRECTORY_POLL_MS 500

static void serve_usage(FILE *out)
{
    fputs("usage: ocgate serve [--config FILE]\n"
          "  Serves the Opencharge merchant-gateway API. FILE (or OCGATE_CONFIG) holds\n"
          "  `key = value` lines; OCGATE_* environment variables override them.\n"
          "  Stops on SIGTERM or SIGINT after letting requests in flight finish (10 s at most).\n",
          out);
}

static const char *key_error_text(int r)
{
    switch (r) {
    case KEY_E_PERMISSIONS:
        return "it is readable by group or others; refusing it (chmod 600)";
    case KEY_E_FORMAT:
        return "it does not hold a valid secp256k1 private key (64 hex digits)";
    case KEY_E_FILE:
        return "it is missing, not a regular file, or too large";
    default:
        return r < 0 ? strerror(-r) : "unusable";
    }
}

/* The start-up connection: blocking, with the same parameters as the pools. */
static PGconn *connect_sync(const Config *cfg, const char *password)
{
    DbConnParams conn;
    db_conn_params_init(&conn, "10", cfg->database_url, password, "ocgate");
    return PQconnectdbParams(conn.keywords, conn.values, 1);
}

int cli_startup(const char *prog, const char *config_path, CliStartup *st)
{
    char err[1024];
    PGconn *conn = NULL;
    int status = -1;
    memset(st, 0, sizeof(*st));
    config_path = cli_config_path(config_path);

    int r = conf_load(config_path, environ, &st->cfg, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", prog, r == -ENOMEM ? "out of memory" : err);
        return -1;
    }
    st->have_cfg = true;
    const Config *cfg = &st->cfg;
    if (log_set_level(cfg->log_level) != 0) {
        fprintf(stderr, "%s: log_level '%s' is not error, warn, info or debug\n", prog,
                cfg->log_level);
        return -1;
    }

    r = key_load_private_file(cfg->private_key_file, &st->key);
    if (r != 0) {
        fprintf(stderr, "%s: cannot use the private key file %s: %s\n", prog,
                cfg->private_key_file, key_error_text(r));
        return -1;
    }
    st->have_key = true;

    if (cfg->database_password_file) {
        r = cli_read_password_file(cfg->database_password_file, st->password,
                               sizeof(st->password));
        if (r != 0) {
            fprintf(stderr, "%s: cannot use the database password file %s: %s\n", prog,
                    cfg->database_password_file,
                    r == -EACCES ? "it is readable by group or others; refusing it (chmod 600)"
                    : r == -E2BIG ? "it is too long"
                                  : strerror(-r));
            return -1;
        }
    }

    conn = connect_sync(cfg, st->password);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "%s: cannot connect to the database: %s", prog, PQerrorMessage(conn));
        goto out;
    }
    r = migrate_check(conn, migrations_embedded, migrations_embedded_count,
                      &st->schema_version, err, sizeof(err));
    if (r == MIGRATE_E_BEHIND) {
        fprintf(stderr, "%s: %s; run `ocgate migrate` first (ocgate refuses to start on a "
                "schema that is behind)\n", prog, err);
        goto out;
    }
    if (r != 0) {
        fprintf(stderr, "%s: the database schema does not match this binary: %s\n", prog, err);
        goto out;
    }
    st->dir = directory_new();
    if (!st->dir) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto out;
    }
    r = directory_load_sync(st->dir, conn, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        goto out;
    }
    status = 0;
out:
    PQfinish(conn);
    return status;
}

const char *cli_config_path(const char *path)
{
    if (path)
        return path;
    const char *env = getenv("OCGATE_CONFIG");
    return env && *env ? env : NULL;
}

int cli_parse_config_option(int argc, char **argv, void (*usage)(FILE *),
                            const char **config_path)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;
    *config_path = NULL;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            *config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

void cli_startup_deinit(CliStartup *st)
{
    if (!st)
        return;
    directory_free(st->dir);
    st->dir = NULL;
    OPENSSL_cleanse(st->password, sizeof(st->password));
    if (st->have_key)
        key_private_wipe(&st->key);
    st->have_key = false;
    if (st->have_cfg)
        conf_deinit(&st->cfg);
    st->have_cfg = false;
}

int cli_serve(int argc, char **argv)
{
    const char *config_path = NULL;
    int done = cli_parse_config_option(argc, argv, serve_usage, &config_path);
    if (done >= 0)
        return done;
    /* SIGHUP means "reload the key" (docs/key-rotation.md); one arriving before the handler
     * is installed must not kill the process. The key is read after this, so none is lost. */
    signal(SIGHUP, SIG_IGN);

    int status = CLI_EXIT_FAILURE;
    char err[1024];
    CliStartup st;
    HttpServer *srv = NULL;
    AdminApi *admin = NULL;
    if (cli_startup("ocgate serve", config_path, &st) != 0)
        goto out;
    const Config *cfg = &st.cfg;

    HttpServerOptions so = {
        .cfg = cfg,
        .gateway_key = &st.key,
        .directory = st.dir,
        .db_password = st.password,
    };
    int r = http_server_new(&so, &srv, err, sizeof(err));
    if (r == 0 && cfg->admin_sealing_key_file) {
        AdminApiOptions ao = { .cfg = cfg, .db_password = st.password };
        r = admin_api_new(&ao, &admin, err, sizeof(err));
    }
    OPENSSL_cleanse(st.password, sizeof(st.password)); /* the servers keep their own copy */
    if (r != 0) {
        fprintf(stderr, "ocgate serve: %s\n", err);
        goto out;
    }
    r = directory_watch(st.dir, http_server_loop_base(srv, 0), http_server_loop_pool(srv, 0),
                        SERVE_DIRECTORY_POLL_MS);
    if (r != 0) {
        fprintf(stderr, "ocgate serve: cannot watch the participants table: %s\n",
                strerror(-r));
        goto out;
    }
    char address[80], base_path[256];
    http_server_address(srv, address, sizeof(address));
    log_json_str(cfg->base_path, base_path, sizeof(base_path));
    log_json(LOG_INFO, "listening", "\"address\":\"%s\",\"tls\":%s,\"threads\":%u,"
             "\"base_path\":%s,\"schema_version\":%d,\"worker\":%s", address,
             cfg->tls_cert_file ? "true" : "false", cfg->threads, base_path,
             st.schema_version, cfg->worker ? "true" : "false");
    if (admin) {
        admin_api_address(admin, address, sizeof(address));
        r = admin_api_start(admin);
        if (r != 0) {
            fprintf(stderr, "ocgate serve: cannot start the admin API: %s\n", strerror(-r));
            goto out;
        }
        log_json(LOG_INFO, "admin API listening", "\"address\":\"%s\"", address);
    }
    /* Schema checked and listener bound: connections queue in the backlog until the loops run. */
    if ((r = cli_notify("READY=1\nSTATUS=serving")) != 0)
        log_json(LOG_WARN, "cannot notify systemd", "\"error\":\"%s\"", strerror(-r));
    r = http_server_run(srv);
    admin_api_stop(admin);
    if (r != 0) {
        fprintf(stderr, "ocgate serve: cannot start: %s\n", strerror(-r));
        goto out;
    }
    log_json(LOG_INFO, "stopped", "\"exit\":0");
    status = CLI_EXIT_OK;

out:
    /* The directory's timer and pending query belong to loop 0: stop it before the pools
     * go, and free the directory after them. */
    if (st.dir)
        directory_unwatch(st.dir);
    admin_api_free(admin);
    http_server_free(srv);
    cli_startup_deinit(&st);
    return status;
}
