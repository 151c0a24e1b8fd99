/* ocgate: one binary, many subcommands. main only dispatches; each subcommand lives in
 * src/cli/ and returns its exit status (cli.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "ocgate-config.h"

static void usage(FILE *out)
{
    fputs("usage: ocgate <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve [--config F]  run the gateway (config: F, OCGATE_CONFIG, OCGATE_* variables)\n"
          "  keygen --out FILE   write a new private key (0600) and print its public key\n"
          "  keygen --sealing-key --out FILE  write a new admin sealing key (0600)\n"
          "  key show|rotate     the gateway key: print its public key / replace it (SIGHUP)\n"
          "  migrate [--check]   apply the schema migrations (OCGATE_DATABASE_URL)\n"
          "  worker [--config F] run only the merchant delivery worker (no listener)\n"
          "  participant ...     add, list, show, update or disable participants\n"
          "  payment list|show   payments with their proofs, ledger and notification\n"
          "  balance             merchant balances, suspense and refunds payable\n"
          "  exception ...       list or resolve (attach, refund, dismiss) exceptions\n"
          "  ledger check|entries  check invariants I1-I3 (exit 3: violated) / list entries\n"
          "  delivery ...        list, show or retry merchant notifications\n"
          "  client ...          create, list or revoke admin API clients\n"
          "  config check|keys   validate the configuration / list its keys\n"
          "  sim provider|merchant  play a settlement provider or a merchant against a gateway\n"
          "  version             print the version\n"
          "  help                show this text\n"
          "\n"
          "exit status: 0 success, 1 failure, 2 usage error, 3 ledger check found violations\n",
          out);
}

int main(int argc, char **argv)
{
    /* A peer closing a socket must never kill the process. */
    signal(SIGPIPE, SIG_IGN);

    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "keygen") == 0)
        return cli_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "key") == 0)
        return cli_key(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return cli_config(argc - 1, argv + 1);
    if (strcmp(cmd, "participant") == 0)
        return cli_participant(argc - 1, argv + 1);
    if (strcmp(cmd, "payment") == 0)
        return cli_payment(argc - 1, argv + 1);
    if (strcmp(cmd, "balance") == 0)
        return cli_balance(argc - 1, argv + 1);
    if (strcmp(cmd, "exception") == 0)
        return cli_exception(argc - 1, argv + 1);
    if (strcmp(cmd, "ledger") == 0)
        return cli_ledger(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0)
        return cli_worker(argc - 1, argv + 1);
    if (strcmp(cmd, "delivery") == 0)
        return cli_delivery(argc - 1, argv + 1);
    if (strcmp(cmd, "client") == 0)
        return cli_client(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0)
        return cli_sim(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0)
        return cli_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ocgate %s\n", OCGATE_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "ocgate: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
