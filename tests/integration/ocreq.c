/* ocreq: a test-only HTTP client that signs one request with ocgate's own auth code and
 * prints the raw response (status line, headers, blank line, body) on stdout.
 *
 *   ocreq OCID KEYFILE METHOD http://127.0.0.1:PORT/path[?query] [BODYFILE]
 *
 * Environment (all optional):
 *   OCREQ_TIME_OFFSET   seconds added to the X-OC-Timestamp (a stale or future request)
 *   OCREQ_NONCE         a fixed X-OC-Nonce instead of a fresh one (replays)
 *   OCREQ_GATEWAY_KEY   the gateway's 128-hex public key: the response signature is then
 *                       verified and ocreq exits 3 when it is missing or does not verify
 *   OCREQ_HEADER        one extra "Name: value" header
 * Exit status: 0 when a response was printed, 1 on a connection or I/O failure, 2 on usage,
 * 3 on a bad response signature. Blocking I/O with a 10 s socket timeout: tests only. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "proto/keys.h"
#include "proto/sigstr.h"
#include "util/alloc.h"
#include "util/buf.h"

#define OCREQ_MAX_RESPONSE (8 * 1024 * 1024)

static int usage(void)
{
    fputs("usage: ocreq OCID KEYFILE METHOD http://127.0.0.1:PORT/path [BODYFILE]\n", stderr);
    return 2;
}

static int read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    Buf b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_put(&b, chunk, n);
    int err = ferror(f);
    fclose(f);
    if (err) {
        buf_deinit(&b);
        return -EIO;
    }
    if (b.len == 0) {
        *out = NULL;
        *out_len = 0;
        return 0;
    }
    return buf_finish(&b, out, out_len);
}

/* Signs with a caller-chosen nonce (auth_outbound_headers always draws a fresh one). */
static int sign_with_nonce(const PrivateKey *key, int64_t ocid, int64_t now, const char *nonce,
                           const char *method, const char *target, const void *body,
                           size_t body_len, AuthOutboundHeaders *h)
{
    snprintf(h->ocid, sizeof(h->ocid), "%" PRId64, ocid);
    snprintf(h->timestamp, sizeof(h->timestamp), "%" PRId64, now);
    snprintf(h->nonce, sizeof(h->nonce), "%s", nonce);
    char sig[128];
    memset(sig, '0', sizeof(sig));
    SigHeaders sh;
    if (sigstr_parse_headers(h->ocid, strlen(h->ocid), h->timestamp, strlen(h->timestamp),
                             nonce, strlen(nonce), sig, sizeof(sig), &sh) != 0)
        return -EINVAL;
    char *msg;
    size_t msg_len;
    if (sigstr_request(&sh, method, target, body, body_len, &msg, &msg_len) != 0)
        return -EINVAL;
    int r = sig_sign(key, msg, msg_len, h->signature);
    oc_free(msg);
    return r;
}

static const char *find_header(const char *headers, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = headers, *end = headers + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < eol && *v == ' ')
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Verifies the response's X-OC-* signature over "<ocid>\n<ts>\n<status>\n<sha256(body)>". */
static int verify_response(const char *pub_hex, const char *resp, size_t len)
{
    PublicKey pk;
    if (key_parse_public(pub_hex, strlen(pub_hex), &pk) != 0) {
        fprintf(stderr, "ocreq: OCREQ_GATEWAY_KEY is not a public key\n");
        return 2;
    }
    const char *sep = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(resp + i, "\r\n\r\n", 4) == 0) {
            sep = resp + i;
            break;
        }
    int status = 0;
    if (!sep || sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return 3;
    size_t hlen = (size_t)(sep - resp);
    const char *body = sep + 4;
    size_t body_len = len - hlen - 4;
    size_t il, tl, sl;
    const char *id = find_header(resp, hlen, "X-OC-ID", &il);
    const char *ts = find_header(resp, hlen, "X-OC-Timestamp", &tl);
    const char *sig = find_header(resp, hlen, "X-OC-Signature", &sl);
    if (!id || !ts || !sig)
        return 3;
    int64_t ocid, when;
    if (sigstr_parse_decimal(id, il, 16, &ocid) != 0 ||
        sigstr_parse_decimal(ts, tl, 12, &when) != 0)
        return 3;
    char *msg;
    size_t msg_len;
    if (sigstr_response(ocid, when, status, body, body_len, &msg, &msg_len) != 0)
        return 3;
    int r = sig_verify(&pk, msg, msg_len, sig, sl);
    oc_free(msg);
    return r == 0 ? 0 : 3;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6)
        return usage();
    int64_t ocid;
    if (sigstr_parse_decimal(argv[1], strlen(argv[1]), 16, &ocid) != 0)
        return usage();
    const char *method = argv[3], *url = argv[4];
    unsigned a, b, c, d, port;
    int off = 0;
    if (sscanf(url, "http://%u.%u.%u.%u:%u%n", &a, &b, &c, &d, &port, &off) != 5 ||
        url[off] != '/' || a > 255 || b > 255 || c > 255 || d > 255 || port > 65535)
        return usage();
    const char *target = url + off;

    PrivateKey key;
    int r = key_load_private_file(argv[2], &key);
    if (r != 0) {
        fprintf(stderr, "ocreq: cannot load %s (%d)\n", argv[2], r);
        return 1;
    }
    char *body = NULL;
    size_t body_len = 0;
    if (argc == 6 && (r = read_file(argv[5], &body, &body_len)) != 0) {
        fprintf(stderr, "ocreq: cannot read %s: %s\n", argv[5], strerror(-r));
        return 1;
    }

    const char *offset_env = getenv("OCREQ_TIME_OFFSET");
    int64_t now = (int64_t)time(NULL) + (offset_env ? strtoll(offset_env, NULL, 10) : 0);
    AuthOutboundHeaders h;
    const char *nonce = getenv("OCREQ_NONCE");
    r = nonce ? sign_with_nonce(&key, ocid, now, nonce, method, target, body, body_len, &h)
              : auth_outbound_headers(&key, ocid, now, method, target, body, body_len, &h);
    key_private_wipe(&key);
    if (r != 0) {
        fprintf(stderr, "ocreq: cannot sign (%d)\n", r);
        return 1;
    }

    Buf req = BUF_INIT;
    buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %u.%u.%u.%u:%u\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nX-OC-ID: %s\r\nX-OC-Timestamp: %s\r\n"
                     "X-OC-Nonce: %s\r\nX-OC-Signature: %s\r\n",
               method, target, a, b, c, d, port, h.ocid, h.timestamp, h.nonce, h.signature);
    const char *extra = getenv("OCREQ_HEADER");
    if (extra && *extra)
        buf_printf(&req, "%s\r\n", extra);
    if (body_len || strcmp(method, "POST") == 0)
        buf_printf(&req, "Content-Length: %zu\r\n", body_len);
    buf_puts(&req, "\r\n");
    if (body_len)
        buf_put(&req, body, body_len);
    char *wire;
    size_t wire_len;
    if (buf_finish(&req, &wire, &wire_len) != 0)
        return 1;

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl((a << 24) | (b << 16) | (c << 8) | d);
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "ocreq: connect: %s\n", strerror(errno));
        return 1;
    }
    for (size_t sent = 0; sent < wire_len;) {
        ssize_t n = send(fd, wire + sent, wire_len - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            fprintf(stderr, "ocreq: send: %s\n", strerror(errno));
            break; /* the server may have answered already (e.g. 413); read it */
        }
        sent += (size_t)n;
    }
    Buf resp = BUF_INIT;
    char chunk[65536];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || resp.len + (size_t)n > OCREQ_MAX_RESPONSE)
            break;
        buf_put(&resp, chunk, (size_t)n);
    }
    close(fd);
    char *out;
    size_t out_len;
    if (resp.len == 0 || buf_finish(&resp, &out, &out_len) != 0) {
        fprintf(stderr, "ocreq: no response\n");
        return 1;
    }
    fwrite(out, 1, out_len, stdout);
    fflush(stdout);
    const char *gw = getenv("OCREQ_GATEWAY_KEY");
    r = gw && *gw ? verify_response(gw, out, out_len) : 0;
    if (r == 3)
        fprintf(stderr, "ocreq: the response signature is missing or does not verify\n");
    oc_free(out);
    oc_free(wire);
    oc_free(body);
    return r;
}
