/* `ocgate migrate [--check]`: applies the embedded schema migrations, or (--check) only says
 * whether the database is current. The database URL comes from OCGATE_DATABASE_URL (a
 * password belongs in a libpq password file, never in the URL or on the command line). */
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/db.h"
#include "store/migrate.h"

static void migrate_usage(FILE *out)
{
    fputs("usage: ocgate migrate [--check]\n"
          "  Applies the schema migrations built into this binary to the database named by\n"
          "  OCGATE_DATABASE_URL. --check changes nothing and exits 1 if any are missing.\n",
          out);
}

static void report_applied(const Migration *m, void *userdata)
{
    (void)userdata;
    printf("applied %04d_%s\n", m->version, m->name);
    fflush(stdout);
}

int cli_migrate(int argc, char **argv)
{
    static const struct option options[] = {
        { "check", no_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int check_only = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "ch", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            check_only = 1;
            break;
        case 'h':
            migrate_usage(stdout);
            return CLI_EXIT_OK;
        default:
            migrate_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        migrate_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int usage_error;
    PGconn *conn = cli_db_connect("ocgate migrate", &usage_error);
    if (!conn)
        return usage_error ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    char err[1024];
    int applied = 0, r;
    if (check_only) {
        r = migrate_check(conn, migrations_embedded, migrations_embedded_count, &applied, err,
                          sizeof(err));
        if (!r)
            printf("schema current: %d migrations applied\n", applied);
    } else {
        r = migrate_apply(conn, migrations_embedded, migrations_embedded_count, report_applied,
                          NULL, err, sizeof(err));
        if (!r)
            printf("schema current: %zu migrations\n", migrations_embedded_count);
    }
    PQfinish(conn);
    if (r) {
        fprintf(stderr, "ocgate migrate: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}
