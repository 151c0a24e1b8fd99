/* Start-up shared by the long-running commands (`ocgate serve`, `ocgate worker`): everything
 * that can be checked before the first event loop runs — configuration, the gateway key, the
 * database password file, the schema version and the participants. Blocking (files, one
 * synchronous connection): call it before any loop runs, never on one. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "conf/conf.h"
#include "directory/directory.h"
#include "proto/keys.h"

#define CLI_PASSWORD_MAX 1024

typedef struct CliStartup {
    Config cfg;
    bool have_cfg;
    PrivateKey key;
    bool have_key;
    char password[CLI_PASSWORD_MAX];  /* "" = none; wiped by cli_startup_deinit */
    Directory *dir;                   /* loaded */
    int schema_version;               /* migrations applied */
} CliStartup;

/* The configuration file to load: path when given, else OCGATE_CONFIG when set and not empty,
 * else NULL (none). */
const char *cli_config_path(const char *path);

/* Parses `[--config FILE] [--help]` and nothing else (serve, worker). Returns -1 to go on,
 * with *config_path set (NULL when not given); else the exit status, after printing usage on
 * stdout for --help or on stderr for anything unexpected. */
int cli_parse_config_option(int argc, char **argv, void (*usage)(FILE *),
                            const char **config_path);

/* Loads the configuration (config_path, else OCGATE_CONFIG, else none, plus OCGATE_*),
 * applies its log level, loads the private key, reads the password file, checks that the
 * schema is current and loads the participants. Prints the reason, prefixed with prog, on
 * stderr and returns -1 on failure; 0 on success. Call cli_startup_deinit either way. */
int cli_startup(const char *prog, const char *config_path, CliStartup *st);

/* Frees the directory, wipes the key and password, frees the configuration. Call after
 * every pool that uses the directory or the password is gone. Accepts a zeroed struct. */
void cli_startup_deinit(CliStartup *st);
