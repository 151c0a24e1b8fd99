/* Participant snapshots (directory.h). A snapshot is built from one SELECT that also returns
 * the table's version, so the version and the rows always agree; readers hold a reference,
 * so a reload never frees a participant a request is still using. */
#include "directory/directory.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "util/alloc.h"

#define DIR_SQL_VERSION "SELECT version FROM directory_version"
#define DIR_SQL_LOAD                                                                        \
    "SELECT v.version, p.ocid, p.name, array_to_string(p.roles, ','), p.public_key, "      \
    "p.endpoint, p.canonical_form, p.enabled "                                              \
    "FROM directory_version v LEFT JOIN participants p ON true ORDER BY p.ocid"

const DbStatement directory_statements[] = {
    { "dir_version", DIR_SQL_VERSION, 0 },
    { "dir_load", DIR_SQL_LOAD, 0 },
};
const size_t directory_statement_count = OC_ARRAY_LEN(directory_statements);

struct DirSnapshot {
    atomic_int refs;
    long long version;
    Participant *items;   /* ascending ocid */
    size_t count;
};

struct Directory {
    pthread_mutex_t lock;
    DirSnapshot *current;
    /* directory_watch state, used only on the watching loop */
    struct event *timer;
    DbPool *pool;
    int busy;
};

static const struct {
    const char *name;
    unsigned bit;
} role_names[] = {
    { "settlement_provider", ROLE_SETTLEMENT_PROVIDER },
    { "payment_app", ROLE_PAYMENT_APP },
    { "merchant", ROLE_MERCHANT },
};

int roles_parse(const char *text, unsigned *out)
{
    unsigned roles = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        unsigned bit = 0;
        for (size_t i = 0; i < OC_ARRAY_LEN(role_names); i++)
            if (strlen(role_names[i].name) == len && memcmp(role_names[i].name, p, len) == 0)
                bit = role_names[i].bit;
        if (!bit)
            return -EINVAL;
        roles |= bit;
        p += len;
        if (*p == ',')
            p++;
    }
    if (!roles)
        return -EINVAL;
    *out = roles;
    return 0;
}

void roles_format(unsigned roles, char *out, size_t out_len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < OC_ARRAY_LEN(role_names); i++) {
        if (!(roles & role_names[i].bit))
            continue;
        int n = snprintf(out + o, out_len - o, "%s%s", o ? "," : "", role_names[i].name);
        if (n < 0 || (size_t)n >= out_len - o)
            return;
        o += (size_t)n;
    }
}

static void snapshot_free(DirSnapshot *snap)
{
    if (!snap)
        return;
    for (size_t i = 0; i < snap->count; i++) {
        oc_free(snap->items[i].name);
        oc_free(snap->items[i].endpoint);
    }
    oc_free(snap->items);
    oc_free(snap);
}

void dirsnap_release(DirSnapshot *snap)
{
    if (snap && atomic_fetch_sub(&snap->refs, 1) == 1)
        snapshot_free(snap);
}

/* Builds a snapshot from the rows of DIR_SQL_LOAD. A row whose key does not parse is left
 * out and logged: one bad row must not take every participant offline. */
static int snapshot_from_result(const PGresult *res, DirSnapshot **out)
{
    int rows = PQntuples(res);
    if (rows < 1)
        return -EIO;
    DirSnapshot *snap = oc_calloc(1, sizeof(*snap));
    if (!snap)
        return -ENOMEM;
    atomic_init(&snap->refs, 1);
    snap->version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snap->items = oc_calloc((size_t)rows, sizeof(Participant));
    if (!snap->items) {
        oc_free(snap);
        return -ENOMEM;
    }
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 1))
            continue; /* the LEFT JOIN's row for an empty table */
        Participant *p = &snap->items[snap->count];
        p->ocid = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        const char *key = PQgetvalue(res, i, 4);
        if (roles_parse(PQgetvalue(res, i, 3), &p->roles) != 0 ||
            key_parse_public(key, strlen(key), &p->key) != 0) {
            log_json(LOG_ERROR, "participant unusable", "\"ocid\":%lld", (long long)p->ocid);
            continue;
        }
        key_format_public(&p->key, p->public_key_hex);
        p->name = oc_strndup(PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2));
        p->endpoint = PQgetisnull(res, i, 5)
                          ? NULL
                          : oc_strndup(PQgetvalue(res, i, 5), (size_t)PQgetlength(res, i, 5));
        p->form = strcmp(PQgetvalue(res, i, 6), "legacy") == 0 ? CANON_LEGACY : CANON_STRICT;
        p->enabled = strcmp(PQgetvalue(res, i, 7), "t") == 0;
        snap->count++;
        if (!p->name || (!PQgetisnull(res, i, 5) && !p->endpoint)) {
            snapshot_free(snap);
            return -ENOMEM;
        }
    }
    *out = snap;
    return 0;
}

static void directory_swap(Directory *dir, DirSnapshot *snap)
{
    pthread_mutex_lock(&dir->lock);
    DirSnapshot *old = dir->current;
    dir->current = snap;
    pthread_mutex_unlock(&dir->lock);
    dirsnap_release(old);
}

Directory *directory_new(void)
{
    Directory *dir = oc_calloc(1, sizeof(*dir));
    if (!dir)
        return NULL;
    pthread_mutex_init(&dir->lock, NULL);
    return dir;
}

void directory_unwatch(Directory *dir)
{
    if (dir && dir->timer) {
        event_free(dir->timer);
        dir->timer = NULL;
    }
}

void directory_free(Directory *dir)
{
    if (!dir)
        return;
    directory_unwatch(dir);
    dirsnap_release(dir->current);
    pthread_mutex_destroy(&dir->lock);
    oc_free(dir);
}

int directory_load_sync(Directory *dir, PGconn *conn, char *err, size_t err_len)
{
    PGresult *res = PQexec(conn, DIR_SQL_LOAD);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, err_len, "loading participants: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -EIO;
    }
    DirSnapshot *snap = NULL;
    int r = snapshot_from_result(res, &snap);
    PQclear(res);
    if (r != 0) {
        snprintf(err, err_len, "loading participants: %s", strerror(-r));
        return r;
    }
    directory_swap(dir, snap);
    return 0;
}

DirSnapshot *directory_acquire(Directory *dir)
{
    pthread_mutex_lock(&dir->lock);
    DirSnapshot *snap = dir->current;
    if (snap)
        atomic_fetch_add(&snap->refs, 1);
    pthread_mutex_unlock(&dir->lock);
    return snap;
}

const Participant *dirsnap_find(const DirSnapshot *snap, int64_t ocid)
{
    size_t lo = 0, hi = snap ? snap->count : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (snap->items[mid].ocid < ocid)
            lo = mid + 1;
        else if (snap->items[mid].ocid > ocid)
            hi = mid;
        else
            return &snap->items[mid];
    }
    return NULL;
}

size_t dirsnap_count_with_role(const DirSnapshot *snap, unsigned roles)
{
    size_t n = 0;
    for (size_t i = 0; snap && i < snap->count; i++)
        if (snap->items[i].enabled && (snap->items[i].roles & roles) == roles)
            n++;
    return n;
}

const Participant *dirsnap_with_role_at(const DirSnapshot *snap, unsigned roles, size_t index)
{
    for (size_t i = 0; snap && i < snap->count; i++) {
        if (snap->items[i].enabled && (snap->items[i].roles & roles) == roles) {
            if (index == 0)
                return &snap->items[i];
            index--;
        }
    }
    return NULL;
}

/* ---- watching for changes ---- */

static void on_load(void *userdata, DbError err, const PGresult *res)
{
    Directory *dir = userdata;
    dir->busy = 0;
    if (err != DB_OK)
        return; /* try again on the next tick */
    DirSnapshot *snap = NULL;
    if (snapshot_from_result(res, &snap) == 0) {
        log_json(LOG_INFO, "participants reloaded", "\"version\":%lld,\"count\":%zu",
                 snap->version, snap->count);
        directory_swap(dir, snap);
    }
}

static void on_version(void *userdata, DbError err, const PGresult *res)
{
    Directory *dir = userdata;
    if (err != DB_OK || PQntuples(res) != 1) {
        dir->busy = 0;
        return;
    }
    long long version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    DirSnapshot *snap = directory_acquire(dir);
    long long have = snap ? snap->version : -1;
    dirsnap_release(snap);
    if (version == have) {
        dir->busy = 0;
        return;
    }
    if (db_pool_query(dir->pool, "dir_load", 0, NULL, on_load, dir) != 0)
        dir->busy = 0;
}

static void watch_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Directory *dir = arg;
    /* One check at a time: a slow database must not pile up polls. */
    if (dir->busy)
        return;
    dir->busy = 1;
    if (db_pool_query(dir->pool, "dir_version", 0, NULL, on_version, dir) != 0)
        dir->busy = 0;
}

int directory_watch(Directory *dir, struct event_base *base, DbPool *pool, unsigned interval_ms)
{
    if (dir->timer)
        return -EALREADY;
    dir->pool = pool;
    dir->timer = event_new(base, -1, EV_PERSIST, watch_tick, dir);
    if (!dir->timer)
        return -ENOMEM;
    struct timeval tv = { interval_ms / 1000, (int)(interval_ms % 1000) * 1000 };
    if (event_add(dir->timer, &tv) != 0) {
        event_free(dir->timer);
        dir->timer = NULL;
        return -ENOMEM;
    }
    return 0;
}
