/* `ocgate config check [--file PATH]` loads the configuration exactly as `serve` will (file
 * from --file or OCGATE_CONFIG, then the OCGATE_* environment) and says whether it is valid,
 * without printing any value. `ocgate config keys [--markdown]` prints the key table; the
 * Markdown form is what docs/configuration.md embeds, and a test keeps the two identical. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/startup.h"
#include "conf/conf.h"

static void config_usage(FILE *out)
{
    fputs("usage: ocgate config check [--file PATH]\n"
          "       ocgate config keys [--markdown]\n"
          "  check  loads the configuration like `ocgate serve` (PATH, else OCGATE_CONFIG,\n"
          "         then OCGATE_* variables) and prints \"config ok\" or the first problem\n"
          "  keys   lists every key with its variable, type, default and description\n",
          out);
}

static int config_check(int argc, char **argv)
{
    static const struct option options[] = {
        { "file", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "f:h", options, NULL)) != -1) {
        switch (opt) {
        case 'f':
            path = optarg;
            break;
        case 'h':
            config_usage(stdout);
            return CLI_EXIT_OK;
        default:
            config_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc || (path && !*path)) {
        config_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    path = cli_config_path(path);

    Config cfg;
    char err[1024];
    int r = conf_load(path, environ, &cfg, err, sizeof(err));
    if (r != 0) {
        /* conf's messages name keys and lines, never values, so they are safe to print */
        fprintf(stderr, "ocgate config: %s\n", r == -ENOMEM ? "out of memory" : err);
        return CLI_EXIT_FAILURE;
    }
    conf_deinit(&cfg);
    fputs("config ok\n", stdout);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

/* A Markdown table cell: '|' would end the cell early. */
static void put_cell(const char *s, FILE *out)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void print_markdown(FILE *out)
{
    fputs("| key | environment | type | default | required | description |\n"
          "|---|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < conf_key_count(); i++) {
        const ConfKeyInfo *k = conf_key_at(i);
        fprintf(out, "| `%s` | `%s` | %s | ", k->name, k->env, k->type);
        if (k->default_text[0]) {
            fputc('`', out);
            put_cell(k->default_text, out);
            fputc('`', out);
        }
        fprintf(out, " | %s | ", k->required ? "yes" : "no");
        put_cell(k->doc, out);
        fputs(" |\n", out);
    }
}

static void print_plain(FILE *out)
{
    int w_name = (int)strlen("KEY"), w_env = (int)strlen("ENVIRONMENT");
    int w_type = (int)strlen("TYPE"), w_def = (int)strlen("DEFAULT");
    for (size_t i = 0; i < conf_key_count(); i++) {
        const ConfKeyInfo *k = conf_key_at(i);
        int n = (int)strlen(k->name), e = (int)strlen(k->env), t = (int)strlen(k->type);
        int d = k->default_text[0] ? (int)strlen(k->default_text) : 1;
        w_name = n > w_name ? n : w_name;
        w_env = e > w_env ? e : w_env;
        w_type = t > w_type ? t : w_type;
        w_def = d > w_def ? d : w_def;
    }
    fprintf(out, "%-*s  %-*s  %-*s  %-*s  %-8s  %s\n", w_name, "KEY", w_env, "ENVIRONMENT",
            w_type, "TYPE", w_def, "DEFAULT", "REQUIRED", "DESCRIPTION");
    for (size_t i = 0; i < conf_key_count(); i++) {
        const ConfKeyInfo *k = conf_key_at(i);
        fprintf(out, "%-*s  %-*s  %-*s  %-*s  %-8s  %s\n", w_name, k->name, w_env, k->env,
                w_type, k->type, w_def, k->default_text[0] ? k->default_text : "-",
                k->required ? "yes" : "no", k->doc);
    }
}

static int config_keys(int argc, char **argv)
{
    static const struct option options[] = {
        { "markdown", no_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int markdown = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "mh", options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            markdown = 1;
            break;
        case 'h':
            config_usage(stdout);
            return CLI_EXIT_OK;
        default:
            config_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        config_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (markdown)
        print_markdown(stdout);
    else
        print_plain(stdout);
    /* a truncated table (full disk, closed pipe) must not look like success */
    return fflush(stdout) == 0 && !ferror(stdout) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cli_config(int argc, char **argv)
{
    if (argc < 2) {
        config_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "check") == 0)
        return config_check(argc - 1, argv + 1);
    if (strcmp(sub, "keys") == 0)
        return config_keys(argc - 1, argv + 1);
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        config_usage(stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "ocgate config: unknown subcommand '%s'\n", sub);
    config_usage(stderr);
    return CLI_EXIT_USAGE;
}
