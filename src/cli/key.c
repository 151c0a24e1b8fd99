/* `ocgate key show|rotate`: the gateway's own signing key (docs/key-rotation.md).
 * `show` prints the public key of the configured private_key_file, as metadata.json will
 * publish it. `rotate` replaces that file with a fresh key in a way that leaves a usable key
 * at the path at every instant (write FILE.new, hard-link the old key to FILE.old, rename the
 * new one over FILE), prints the new public key, and leaves the running processes to pick it
 * up on SIGHUP (or a restart): they sign every response, metadata document and merchant
 * delivery made after that with the new key. Private key bytes never reach stdout, stderr or
 * the command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/startup.h"
#include "conf/conf.h"
#include "proto/keys.h"

extern char **environ;

static void key_usage(FILE *out)
{
    fputs("usage: ocgate key show [--key-file FILE | --config FILE]\n"
          "       ocgate key rotate [--key-file FILE | --config FILE]\n"
          "  show    prints the public key (128 hex digits) of the gateway's private key file\n"
          "  rotate  replaces the private key file with a new key (mode 0600), keeps the\n"
          "          previous one as FILE.old, and prints the new public key on stdout.\n"
          "          Then send SIGHUP to every `ocgate serve` and `ocgate worker` using FILE\n"
          "          (or restart them), and delete FILE.old once they all run with the new key.\n"
          "  The file is --key-file, else the private_key_file of the configuration that\n"
          "  `ocgate serve` would load (--config FILE or OCGATE_CONFIG, and OCGATE_* variables).\n",
          out);
}

static const char *key_problem(int r)
{
    switch (r) {
    case KEY_E_PERMISSIONS:
        return "it is readable or writable by group or others; refusing it (chmod 600)";
    case KEY_E_FORMAT:
        return "it does not hold a valid secp256k1 private key (64 hex digits)";
    case KEY_E_FILE:
        return "it is not a regular file, or too large";
    case KEY_E_EXISTS:
        return "it already exists";
    default:
        return r < 0 ? strerror(-r) : "unusable";
    }
}

/* The key file named by --key-file, or the configuration's private_key_file. Returns a
 * malloc'd path, or NULL after printing why. */
static char *resolve_key_file(const char *key_file, const char *config_path)
{
    if (key_file)
        return strdup(key_file);
    Config cfg;
    char err[512];
    int r = conf_load(cli_config_path(config_path), environ, &cfg, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "ocgate key: %s\n", r == -ENOMEM ? "out of memory" : err);
        return NULL;
    }
    char *path = strdup(cfg.private_key_file);
    conf_deinit(&cfg);
    if (!path)
        fprintf(stderr, "ocgate key: out of memory\n");
    return path;
}

/* Makes a rename in path's directory durable. */
static int sync_parent(const char *path)
{
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return -ENAMETOOLONG;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

static int key_show(const char *path)
{
    PrivateKey key;
    int r = key_load_private_file(path, &key);
    if (r != 0) {
        fprintf(stderr, "ocgate key show: cannot use %s: %s\n", path, key_problem(r));
        return CLI_EXIT_FAILURE;
    }
    char pub[KEY_PUBLIC_HEX_LEN + 1];
    key_format_public(&key.pub, pub);
    key_private_wipe(&key);
    printf("%s\n", pub);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static int key_rotate(const char *path)
{
    char new_path[PATH_MAX], old_path[PATH_MAX];
    if (snprintf(new_path, sizeof(new_path), "%s.new", path) >= (int)sizeof(new_path) ||
        snprintf(old_path, sizeof(old_path), "%s.old", path) >= (int)sizeof(old_path)) {
        fprintf(stderr, "ocgate key rotate: the path %s is too long\n", path);
        return CLI_EXIT_FAILURE;
    }
    /* The current key must be one a server would load: rotating away from a file nobody
     * can use would hide the problem, and its public key is printed for the record. */
    PrivateKey old_key, new_key;
    int r = key_load_private_file(path, &old_key);
    if (r != 0) {
        fprintf(stderr, "ocgate key rotate: cannot use the current key file %s: %s\n", path,
                key_problem(r));
        return CLI_EXIT_FAILURE;
    }
    char old_pub[KEY_PUBLIC_HEX_LEN + 1], new_pub[KEY_PUBLIC_HEX_LEN + 1];
    key_format_public(&old_key.pub, old_pub);
    key_private_wipe(&old_key);

    struct stat st;
    if (lstat(old_path, &st) == 0 || errno != ENOENT) {
        fprintf(stderr, "ocgate key rotate: %s exists (the key before the last rotation); "
                "delete it once no process uses it, then rotate again\n", old_path);
        return CLI_EXIT_FAILURE;
    }
    r = key_generate_file(new_path, &new_key);
    if (r != 0) {
        fprintf(stderr, "ocgate key rotate: cannot write %s: %s%s\n", new_path, key_problem(r),
                r == KEY_E_EXISTS ? " (left by an interrupted rotation? delete it)" : "");
        return CLI_EXIT_FAILURE;
    }
    key_format_public(&new_key.pub, new_pub);
    key_private_wipe(&new_key);

    /* link, not rename: FILE must name a valid key at every instant, for a process that
     * restarts or reloads in the middle of this. */
    if (link(path, old_path) != 0) {
        int e = errno;
        (void)unlink(new_path);
        fprintf(stderr, "ocgate key rotate: cannot keep the current key as %s: %s; nothing "
                "changed\n", old_path, strerror(e));
        return CLI_EXIT_FAILURE;
    }
    if (rename(new_path, path) != 0) {
        int e = errno;
        (void)unlink(new_path);
        (void)unlink(old_path);
        fprintf(stderr, "ocgate key rotate: cannot replace %s: %s; nothing changed\n", path,
                strerror(e));
        return CLI_EXIT_FAILURE;
    }
    r = sync_parent(path);
    if (r != 0)
        fprintf(stderr, "ocgate key rotate: warning: cannot sync the directory of %s: %s\n",
                path, strerror(-r));
    fprintf(stderr,
            "ocgate key rotate: %s now holds a new key; the previous one (public key %s) is "
            "kept in %s.\n"
            "Next: send SIGHUP to every ocgate serve and ocgate worker using %s (or restart "
            "them), check metadata.json publishes the new public key, then delete %s.\n",
            path, old_pub, old_path, path, old_path);
    printf("%s\n", new_pub);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cli_key(int argc, char **argv)
{
    static const struct option options[] = {
        { "key-file", required_argument, NULL, 'k' },
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    if (argc < 2) {
        key_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        key_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(sub, "show") != 0 && strcmp(sub, "rotate") != 0) {
        fprintf(stderr, "ocgate key: unknown command '%s'\n", sub);
        key_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *key_file = NULL, *config_path = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "k:c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_file = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            key_usage(stdout);
            return CLI_EXIT_OK;
        default:
            key_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (key_file && config_path) || (key_file && !*key_file)) {
        key_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char *path = resolve_key_file(key_file, config_path);
    if (!path)
        return CLI_EXIT_FAILURE;
    int status = strcmp(sub, "show") == 0 ? key_show(path) : key_rotate(path);
    free(path);
    return status;
}
