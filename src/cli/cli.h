/* Subcommands of the one ocgate binary. Each takes the arguments after its own name and
 * returns the process exit status: 0 success, 1 failure (message on stderr), 2 usage error. */
#pragma once

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

int cli_keygen(int argc, char **argv);
/* `ocgate key show|rotate`: the gateway's own key (docs/key-rotation.md) */
int cli_key(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_participant(int argc, char **argv);
/* Operator views and actions (src/admin/; `ocgate ledger check` exits 3 on violations):
 * `ocgate payment list|show`, `ocgate balance`, `ocgate exception list|resolve`,
 * `ocgate ledger check|entries` */
int cli_payment(int argc, char **argv);
int cli_balance(int argc, char **argv);
int cli_exception(int argc, char **argv);
int cli_ledger(int argc, char **argv);
/* `ocgate worker [--config FILE]`: the merchant delivery worker without the HTTP listener */
int cli_worker(int argc, char **argv);
/* `ocgate delivery list|show|retry`: the merchant notification outbox */
int cli_delivery(int argc, char **argv);
/* `ocgate client create|list|revoke`: admin API clients (docs/admin-api.md) */
int cli_client(int argc, char **argv);
/* `ocgate config check [--file PATH]` | `ocgate config keys [--markdown]` */
int cli_config(int argc, char **argv);
/* `ocgate sim provider|merchant`: a settlement provider and a merchant receiver for trying a
 * gateway by hand, able to misbehave on purpose (src/cli/sim.h) */
int cli_sim(int argc, char **argv);
