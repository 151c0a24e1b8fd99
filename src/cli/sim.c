/* `ocgate sim provider|merchant ...` (sim.h): dispatch and the helpers both roles share. */
#include "cli/sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "proto/sigstr.h"

static void sim_usage(FILE *out)
{
    fputs("usage: ocgate sim provider [options]   play a settlement provider (and payment app)\n"
          "       ocgate sim merchant [options]   play a merchant receiving notifications\n"
          "  `ocgate sim provider --help` and `ocgate sim merchant --help` list the options.\n",
          out);
}

int cli_sim(int argc, char **argv)
{
    if (argc < 2) {
        sim_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "provider") == 0)
        return sim_provider(argc - 1, argv + 1);
    if (strcmp(argv[1], "merchant") == 0)
        return sim_merchant(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        sim_usage(stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "ocgate sim: unknown role '%s'\n", argv[1]);
    sim_usage(stderr);
    return CLI_EXIT_USAGE;
}

int sim_load_key(const char *prog, const char *role, const char *path, PrivateKey *key)
{
    int r = key_load_private_file(path, key);
    if (r == 0)
        return 0;
    const char *why = r == KEY_E_PERMISSIONS ? "it is readable by group or others (chmod 600)"
                      : r == KEY_E_FORMAT    ? "it does not hold 64 hex digits of a valid key"
                      : r == KEY_E_FILE      ? "it is not a regular file or is too large"
                      : r < 0                ? strerror(-r)
                                             : "unusable";
    fprintf(stderr, "%s: cannot use the %s key file %s: %s\n", prog, role, path, why);
    return -1;
}

int sim_parse_ocid(const char *prog, const char *option, const char *s, int64_t *out)
{
    if (sigstr_parse_decimal(s, strlen(s), 16, out) == 0 && *out <= 9007199254740991LL)
        return 0;
    fprintf(stderr, "%s: %s needs a decimal OCID, not '%s'\n", prog, option, s);
    return -1;
}

int sim_parse_uint(const char *prog, const char *option, const char *s, unsigned max,
                   unsigned *out)
{
    int64_t v;
    if (sigstr_parse_decimal(s, strlen(s), 10, &v) == 0 && v <= (int64_t)max) {
        *out = (unsigned)v;
        return 0;
    }
    fprintf(stderr, "%s: %s needs a whole number from 0 to %u, not '%s'\n", prog, option, max,
            s);
    return -1;
}
