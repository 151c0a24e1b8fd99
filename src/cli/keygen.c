/* `ocgate keygen --out FILE`: makes a new secp256k1 private key in a fresh 0600 file and prints
 * the 128-hex public key that participants register. The private key never reaches stdout,
 * stderr or the command line, and an existing file is never overwritten. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "admin/seal.h"
#include "cli/cli.h"
#include "proto/keys.h"

static void keygen_usage(FILE *out)
{
    fputs("usage: ocgate keygen [--sealing-key] --out FILE\n"
          "  Writes a new private key to FILE (mode 0600; FILE must not exist) and prints\n"
          "  the public key (128 hex digits) on stdout.\n"
          "  --sealing-key: writes instead a new admin API sealing key (32 random bytes as\n"
          "  64 hex digits, for admin_sealing_key_file) and prints nothing.\n",
          out);
}

int cli_keygen(int argc, char **argv)
{
    static const struct option options[] = {
        { "out", required_argument, NULL, 'o' },
        { "sealing-key", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *out_path = NULL;
    int opt, sealing = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            out_path = optarg;
            break;
        case 's':
            sealing = 1;
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

    if (sealing) {
        SealKey sk;
        int r = seal_key_generate_file(out_path, &sk);
        seal_key_wipe(&sk);
        if (r == 0)
            return CLI_EXIT_OK;
        if (r == SEAL_E_FILE)
            fprintf(stderr, "ocgate keygen: %s already exists; refusing to overwrite it\n",
                    out_path);
        else
            fprintf(stderr, "ocgate keygen: cannot write %s: %s\n", out_path,
                    r < 0 ? strerror(-r) : "no random bytes");
        return CLI_EXIT_FAILURE;
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
