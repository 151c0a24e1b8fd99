/* `ocgate keygen --out FILE`: makes a new secp256k1 private key in a fresh 0600 file and prints
 * the 128-hex public key that participants register. The private key never reaches stdout,
 * stderr or the command line, and an existing file is never overwritten. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "proto/keys.h"

static void keygen_usage(FILE *out)
{
    fputs("usage: ocgate keygen --out FILE\n"
          "  Writes a new private key to FILE (mode 0600; FILE must not exist) and prints\n"
          "  the public key (128 hex digits) on stdout.\n",
          out);
}

int cli_keygen(int argc, char **argv)
{
    static const struct option options[] = {
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *out_path = NULL;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            out_path = optarg;
            break;
        case 'h':
            keygen_usage(stdout);
            return CLI_EXIT_OK;
        default:
            keygen_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!out_path || optind != argc) {
        keygen_usage(stderr);
        return CLI_EXIT_USAGE;
    }

    PrivateKey key;
    int r = key_generate_file(out_path, &key);
    if (r != 0) {
        if (r == KEY_E_EXISTS)
            fprintf(stderr, "ocgate keygen: %s already exists; refusing to overwrite it\n",
                    out_path);
        else if (r < 0)
            fprintf(stderr, "ocgate keygen: cannot write %s: %s\n", out_path, strerror(-r));
        else
            fprintf(stderr, "ocgate keygen: cannot create a key in %s (code %d)\n", out_path, r);
        return CLI_EXIT_FAILURE;
    }
    char pub[KEY_PUBLIC_HEX_LEN + 1];
    key_format_public(&key.pub, pub);
    key_private_wipe(&key);
    printf("%s\n", pub);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
