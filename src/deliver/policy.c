/* The delivery worker's pure decisions (policy.h): answer classification per design.md
 * "outbound retries", Retry-After, jittered delays and stored excerpts. */
#include "deliver/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/utf8.h"

const char *deliver_outcome_name(DeliverOutcome outcome)
{
    switch (outcome) {
    case DELIVER_DELIVERED:
        return "delivered";
    case DELIVER_REJECTED:
        return "rejected";
    case DELIVER_DEAD:
        return "dead";
    case DELIVER_RETRY:
        return "retry";
    }
    return "retry";
}

static const char *net_error_kind(NetError e)
{
    switch (e) {
    case NET_OK:
        return "ok";
    case NET_E_URL:
        return "unusable URL";
    case NET_E_DNS:
        return "DNS error";
    case NET_E_BLOCKED:
        return "blocked by the outbound address guard";
    case NET_E_CONNECT:
        return "connection error";
    case NET_E_TLS:
        return "TLS error";
    case NET_E_TIMEOUT:
        return "timeout";
    case NET_E_TOO_LARGE:
        return "answer too large";
    case NET_E_PROTOCOL:
        return "malformed HTTP answer";
    case NET_E_CANCELLED:
        return "cancelled";
    }
    return "network error";
}

/* The "status" member of a JSON object body, or NULL. Duplicate keys make the answer
 * ambiguous, so they are refused like anything else that is not a plain object. */
static DeliverOutcome body_status(const char *body, size_t len, bool *recognised)
{
    *recognised = false;
    if (!body || len == 0)
        return DELIVER_RETRY;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    DeliverOutcome o = DELIVER_RETRY;
    const char *s = json_is_object(v) ? json_string_value(json_object_get(v, "status")) : NULL;
    if (s && strcmp(s, "accepted") == 0) {
        o = DELIVER_DELIVERED;
        *recognised = true;
    } else if (s && strcmp(s, "rejected") == 0) {
        o = DELIVER_REJECTED;
        *recognised = true;
    }
    json_decref(v);
    return o;
}

void deliver_classify(const HttpClientResponse *resp, int attempt, int max_attempts,
                      int64_t now, DeliverVerdict *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = DELIVER_RETRY;
    if (resp->error != NET_OK) {
        /* Refusals that never left the host say nothing about the merchant's health. */
        out->merchant_failure = resp->error != NET_E_URL && resp->error != NET_E_BLOCKED &&
                                resp->error != NET_E_CANCELLED;
        char detail[DELIVER_EXCERPT_MAX + 1];
        deliver_excerpt(resp->error_text, strnlen(resp->error_text, sizeof(resp->error_text)),
                        detail);
        if (detail[0])
            snprintf(out->error, sizeof(out->error), "%s: %.150s", net_error_kind(resp->error),
                     detail);
        else
            snprintf(out->error, sizeof(out->error), "%s", net_error_kind(resp->error));
    } else {
        int st = resp->status;
        if (st >= 200 && st <= 299) {
            bool recognised;
            out->outcome = body_status(resp->body, resp->body_len, &recognised);
            if (out->outcome == DELIVER_REJECTED)
                snprintf(out->error, sizeof(out->error), "HTTP %d: the merchant rejected it",
                         st);
            else if (!recognised) {
                out->merchant_failure = true;
                snprintf(out->error, sizeof(out->error),
                         "HTTP %d without {\"status\":\"accepted\"}", st);
            }
        } else if (st == 410) {
            out->outcome = DELIVER_DEAD;
            snprintf(out->error, sizeof(out->error), "HTTP 410: the merchant says gone");
        } else if (st == 429 || st == 503) {
            out->merchant_failure = true;
            unsigned s;
            if (resp->retry_after && deliver_parse_retry_after(resp->retry_after, now, &s) == 0) {
                out->has_retry_after = true;
                out->retry_after_s = s;
                snprintf(out->error, sizeof(out->error), "HTTP %d, Retry-After %u s", st, s);
            } else {
                snprintf(out->error, sizeof(out->error), "HTTP %d", st);
            }
        } else if (st >= 300 && st <= 399) {
            out->merchant_failure = true;
            snprintf(out->error, sizeof(out->error), "HTTP %d: redirects are not followed", st);
        } else if (st >= 400 && st <= 499) {
            out->merchant_failure = true;
            if (attempt >= DELIVER_4XX_DEAD_AFTER) {
                out->outcome = DELIVER_DEAD;
                snprintf(out->error, sizeof(out->error), "HTTP %d on attempt %d (a 4xx from "
                         "attempt %d on is final)", st, attempt, DELIVER_4XX_DEAD_AFTER);
            } else {
                snprintf(out->error, sizeof(out->error), "HTTP %d", st);
            }
        } else {
            out->merchant_failure = true;
            snprintf(out->error, sizeof(out->error), "HTTP %d", st);
        }
    }
    if (out->outcome == DELIVER_RETRY && attempt >= max_attempts) {
        out->outcome = DELIVER_DEAD;
        size_t n = strlen(out->error);
        snprintf(out->error + n, sizeof(out->error) - n, " (last attempt of the schedule)");
    }
}

static int month_index(const char *m)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (memcmp(names + 3 * i, m, 3) == 0)
            return i;
    return -1;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* IMF-fixdate, the only form HTTP/1.1 senders may generate (RFC 9110 5.6.7):
 * "Sun, 06 Nov 1994 08:49:37 GMT", exactly 29 bytes. */
static int parse_http_date(const char *v, int64_t *out)
{
    static const char days[] = "MonTueWedThuFriSatSun";
    if (strlen(v) != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' ||
        v[16] != ' ' || v[19] != ':' || v[22] != ':' || v[25] != ' ' ||
        memcmp(v + 26, "GMT", 3) != 0)
        return -EINVAL;
    bool day_ok = false;
    for (int i = 0; i < 7; i++)
        day_ok |= memcmp(days + 3 * i, v, 3) == 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int mon = month_index(v + 8);
    if (!day_ok || mon < 0 || !digits(v + 5, 2, &tm.tm_mday) || !digits(v + 12, 4, &tm.tm_year)
        || !digits(v + 17, 2, &tm.tm_hour) || !digits(v + 20, 2, &tm.tm_min)
        || !digits(v + 23, 2, &tm.tm_sec))
        return -EINVAL;
    if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -EINVAL;
    tm.tm_mon = mon;
    tm.tm_year -= 1900;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out = (int64_t)t;
    return 0;
}

int deliver_parse_retry_after(const char *value, int64_t now, unsigned *seconds)
{
    if (!value)
        return -EINVAL;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len == 0 || len > 64)
        return -EINVAL;
    char v[65];
    memcpy(v, value, len);
    v[len] = '\0';
    int64_t delay;
    if (v[0] >= '0' && v[0] <= '9') {
        uint64_t n = 0;
        for (size_t i = 0; i < len; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -EINVAL;
            if (n <= DELIVER_RETRY_AFTER_MAX_S)
                n = n * 10 + (uint64_t)(v[i] - '0');
        }
        delay = n > DELIVER_RETRY_AFTER_MAX_S ? DELIVER_RETRY_AFTER_MAX_S : (int64_t)n;
    } else {
        int64_t at;
        if (parse_http_date(v, &at) != 0)
            return -EINVAL;
        delay = at - now;
    }
    /* At least a second, so a merchant answering "0" cannot make us spin through the
     * schedule; at most a day, so a typo cannot park a payment's notification for years. */
    if (delay < 1)
        delay = 1;
    if (delay > DELIVER_RETRY_AFTER_MAX_S)
        delay = DELIVER_RETRY_AFTER_MAX_S;
    *seconds = (unsigned)delay;
    return 0;
}

uint64_t deliver_jitter_ms(unsigned base_s, unsigned jitter_pct, uint64_t rnd)
{
    uint64_t base = (uint64_t)base_s * 1000;
    uint64_t spread = base * jitter_pct / 100;
    if (spread == 0)
        return base;
    return base - spread + rnd % (2 * spread + 1);
}

size_t deliver_excerpt(const char *text, size_t len, char out[DELIVER_EXCERPT_MAX + 1])
{
    size_t n = 0, i = 0;
    const unsigned char *s = (const unsigned char *)text;
    while (i < len) {
        uint32_t cp;
        size_t k = utf8_decode(s + i, len - i, &cp);
        if (k == 0) {          /* invalid byte: dropped */
            i++;
            continue;
        }
        bool control = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
        if (!control) {
            if (n + k > DELIVER_EXCERPT_MAX)
                break;
            memcpy(out + n, s + i, k);
            n += k;
        }
        i += k;
    }
    out[n] = '\0';
    return n;
}
