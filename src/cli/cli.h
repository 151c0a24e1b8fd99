/* Subcommands of the one ocgate binary. Each takes the arguments after its own name and
 * returns the process exit status: 0 success, 1 failure (message on stderr), 2 usage error. */
#pragma once

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

int cli_keygen(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_participant(int argc, char **argv);
/* `ocgate config check [--file PATH]` | `ocgate config keys [--markdown]` */
int cli_config(int argc, char **argv);
