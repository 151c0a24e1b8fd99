/* `ocgate worker [--config FILE]`: the merchant delivery worker alone, without the HTTP
 * listener, for deployments that scale delivery separately from the API (set `worker = false`
 * on the serve instances then, or keep both: claims are safe across any number of workers).
 * Same start-up checks as serve (cli_startup); one event loop with its own pool, the
 * participants watch and the worker; SIGTERM or SIGINT stops it at once (attempts in flight
 * are retaken by any worker when their lease ends); SIGHUP re-reads private_key_file, so
 * every attempt made after it is signed with the new key (docs/key-rotation.md). */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/startup.h"
#include "deliver/deliver.h"
#include "directory/directory.h"
#include "obs/log.h"
#include "store/pool.h"
#include "util/alloc.h"

#define WORKER_DIRECTORY_POLL_MS 500
#define WORKER_DB_CONNECT_TIMEOUT_MS 2000
#define WORKER_DB_MAX_QUEUE 1024

static void worker_usage(FILE *out)
{
    fputs("usage: ocgate worker [--config FILE]\n"
          "  Runs only the merchant delivery worker (no HTTP listener). FILE (or\n"
          "  OCGATE_CONFIG) holds `key = value` lines; OCGATE_* variables override them.\n"
          "  Stops on SIGTERM or SIGINT; SIGHUP re-reads private_key_file.\n",
          out);
}

typedef struct WorkerRun {
    struct event_base *base;
    Deliverer *deliverer;
    Directory *dir;
    const Config *cfg;
    PrivateKey *key;    /* the deliverer signs with it; replaced on this thread only */
} WorkerRun;

/* SIGHUP: the deliverer runs on this same loop, so replacing the key here can never race
 * with a signature. A file that cannot be used changes nothing. */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    WorkerRun *w = arg;
    char file[512];
    log_json_str(w->cfg->private_key_file, file, sizeof(file));
    PrivateKey k;
    int r = key_load_private_file(w->cfg->private_key_file, &k);
    if (r != 0) {
        log_json(LOG_ERROR, "gateway key reload failed; keeping the current key",
                 "\"file\":%s,\"code\":%d", file, r);
        return;
    }
    char pub[KEY_PUBLIC_HEX_LEN + 1];
    key_format_public(&k.pub, pub);
    *w->key = k;
    key_private_wipe(&k);
    log_json(LOG_INFO, "gateway key reloaded", "\"file\":%s,\"public_key\":\"%s\"", file, pub);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    WorkerRun *w = arg;
    log_json(LOG_INFO, "shutting down", "\"signal\":%d", (int)sig);
    deliverer_free(w->deliverer);
    w->deliverer = NULL;
    directory_unwatch(w->dir);
    event_base_loopexit(w->base, NULL);
}

int cli_worker(int argc, char **argv)
{
    const char *config_path = NULL;
    int done = cli_parse_config_option(argc, argv, worker_usage, &config_path);
    if (done >= 0)
        return done;
    /* SIGHUP means "reload the key" (docs/key-rotation.md); one arriving before the handler
     * is installed must not kill the process. The key is read after this, so none is lost. */
    signal(SIGHUP, SIG_IGN);

    int status = CLI_EXIT_FAILURE;
    CliStartup st;
    WorkerRun w = { 0 };
    DbPool *pool = NULL;
    DbStatement *statements = NULL;
    struct event *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL;
    if (cli_startup("ocgate worker", config_path, &st) != 0)
        goto out;
    const Config *cfg = &st.cfg;
    w.dir = st.dir;
    w.cfg = cfg;
    w.key = &st.key;

    /* deliverer_wake is documented thread-safe; keep it so even with a single loop. */
    if (evthread_use_pthreads() != 0 || !(w.base = event_base_new())) {
        fprintf(stderr, "ocgate worker: cannot create the event loop\n");
        goto out;
    }
    size_t n_statements = directory_statement_count + deliver_statement_count;
    statements = oc_calloc(n_statements, sizeof(*statements));
    if (!statements) {
        fprintf(stderr, "ocgate worker: out of memory\n");
        goto out;
    }
    memcpy(statements, directory_statements, directory_statement_count * sizeof(*statements));
    memcpy(statements + directory_statement_count, deliver_statements,
           deliver_statement_count * sizeof(*statements));
    DbConnParams conn;
    db_conn_params_init(&conn, NULL, cfg->database_url, st.password, "ocgate-worker");
    DbPoolOptions po = {
        .conn_keywords = conn.keywords,
        .conn_values = conn.values,
        .size = cfg->pool_size,
        .statements = statements,
        .n_statements = n_statements,
        .max_queue = WORKER_DB_MAX_QUEUE,
        .query_timeout_ms = cfg->db_timeout_ms,
        .connect_timeout_ms = WORKER_DB_CONNECT_TIMEOUT_MS,
    };
    pool = db_pool_new(w.base, &po);
    if (!pool) {
        fprintf(stderr, "ocgate worker: cannot create the database pool\n");
        goto out;
    }
    int r = directory_watch(st.dir, w.base, pool, WORKER_DIRECTORY_POLL_MS);
    if (r != 0) {
        fprintf(stderr, "ocgate worker: cannot watch the participants table: %s\n",
                strerror(-r));
        goto out;
    }
    w.deliverer = deliverer_new(w.base, pool, cfg, &st.key, st.dir);
    if (!w.deliverer) {
        fprintf(stderr, "ocgate worker: cannot start the delivery worker (is delivery_ca_file "
                "a readable PEM bundle?)\n");
        goto out;
    }
    sig_term = evsignal_new(w.base, SIGTERM, on_signal, &w);
    sig_int = evsignal_new(w.base, SIGINT, on_signal, &w);
    sig_hup = evsignal_new(w.base, SIGHUP, on_reload, &w);
    if (!sig_term || !sig_int || !sig_hup || event_add(sig_term, NULL) != 0 ||
        event_add(sig_int, NULL) != 0 || event_add(sig_hup, NULL) != 0) {
        fprintf(stderr, "ocgate worker: cannot install signal handlers\n");
        goto out;
    }
    log_json(LOG_INFO, "worker running", "\"schema_version\":%d", st.schema_version);
    if (event_base_dispatch(w.base) < 0) {
        fprintf(stderr, "ocgate worker: the event loop failed\n");
        goto out;
    }
    log_json(LOG_INFO, "stopped", "\"exit\":0");
    status = CLI_EXIT_OK;

out:
    /* The worker and the watch first (their queries are then failed by the pool, not run
     * after them), the pool before the directory and the password it may still use. */
    deliverer_free(w.deliverer);
    if (st.dir)
        directory_unwatch(st.dir);
    if (sig_term)
        event_free(sig_term);
    if (sig_int)
        event_free(sig_int);
    if (sig_hup)
        event_free(sig_hup);
    db_pool_free(pool);
    oc_free(statements);
    if (w.base)
        event_base_free(w.base);
    cli_startup_deinit(&st);
    return status;
}
