/* Differential test of the strict reader and the canonical writer against Node: reads the
 * records gen-canon.js wrote (one JSON array per line: [input, strict, legacy-or-null]), runs
 * each input through json_read_strict and canon_write in both forms and compares byte for
 * byte. TAP: one point per 1000 documents, details of the first mismatches, and a count.
 * Usage: canon-diff <records file> [<expected number of documents>] */
#include "tests/unit/testlib.h"

#include <errno.h>
#include <stdbool.h>

#include "proto/canon.h"
#include "proto/json.h"
#include "util/alloc.h"

#define DIFF_BLOCK 1000
#define DIFF_MAX_DETAILS 5

typedef struct DiffStats {
    size_t docs;
    size_t bad;          /* documents with any mismatch, in all */
    size_t block_bad;    /* ... in the current block */
    size_t block_first;  /* number of the block's first document */
    size_t details;      /* mismatches printed so far */
} DiffStats;

/* Prints a mismatch as TAP comments; the record line is JSON, so it is a single line. */
static void diff_report(DiffStats *st, size_t line_no, const char *record, const char *what,
                        const char *got, size_t got_len, const char *want, size_t want_len)
{
    if (st->details++ >= DIFF_MAX_DETAILS)
        return;
    printf("# line %zu: %s\n", line_no, what);
    printf("#   record: %.400s\n", record);
    if (got)
        printf("#   got:    %.*s\n", (int)(got_len > 400 ? 400 : got_len), got);
    if (want)
        printf("#   want:   %.*s\n", (int)(want_len > 400 ? 400 : want_len), want);
}

static bool diff_form(DiffStats *st, size_t line_no, const char *record, const json_t *value,
                      CanonForm form, const json_t *want)
{
    char *out = NULL;
    size_t out_len = 0;
    int r = canon_write(value, form, &out, &out_len);
    bool ok;
    char what[96];
    if (json_is_null(want)) {
        /* Node's legacy form needs an object; so does ours. */
        ok = r == CANON_E_NOT_OBJECT;
        snprintf(what, sizeof(what), "%s form: want CANON_E_NOT_OBJECT, got %d",
                 canon_form_name(form), r);
        if (!ok)
            diff_report(st, line_no, record, what, r == 0 ? out : NULL, out_len, NULL, 0);
    } else {
        const char *w = json_string_value(want);
        size_t w_len = json_string_length(want);
        ok = r == 0 && out_len == w_len && memcmp(out, w, w_len) == 0;
        snprintf(what, sizeof(what), "%s form differs from Node (canon_write returned %d)",
                 canon_form_name(form), r);
        if (!ok)
            diff_report(st, line_no, record, what, r == 0 ? out : NULL, out_len, w, w_len);
    }
    if (r == 0)
        oc_free(out);
    return ok;
}

static bool diff_record(DiffStats *st, size_t line_no, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *rec = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    const json_t *input = json_array_get(rec, 0);
    const json_t *strict = json_array_get(rec, 1);
    const json_t *legacy = json_array_get(rec, 2);
    if (!json_is_array(rec) || json_array_size(rec) != 3 || !json_is_string(input) ||
        !json_is_string(strict) || !(json_is_string(legacy) || json_is_null(legacy))) {
        diff_report(st, line_no, line, "malformed record", NULL, 0, NULL, 0);
        json_decref(rec);
        return false;
    }

    json_t *value = NULL;
    JsonReadError err = { 0, 0, NULL };
    int r = json_read_strict(json_string_value(input), json_string_length(input), 0, &value,
                             &err);
    if (r != 0) {
        char what[160];
        snprintf(what, sizeof(what), "json_read_strict refused the input: %d at %zu (%s)", r,
                 r > 0 ? err.offset : 0, r > 0 && err.reason ? err.reason : "-");
        diff_report(st, line_no, line, what, NULL, 0, NULL, 0);
        json_decref(rec);
        return false;
    }
    bool ok = diff_form(st, line_no, line, value, CANON_STRICT, strict);
    ok = diff_form(st, line_no, line, value, CANON_LEGACY, legacy) && ok;
    json_decref(value);
    json_decref(rec);
    return ok;
}

static void diff_close_block(DiffStats *st)
{
    CHECK(st->block_bad == 0, "documents %zu..%zu: strict and legacy forms equal Node's",
          st->block_first, st->docs);
    st->bad += st->block_bad;
    st->block_bad = 0;
    st->block_first = st->docs + 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        printf("Bail out! usage: canon-diff <records file> [<expected count>]\n");
        return 1;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        printf("Bail out! cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    DiffStats st = { 0, 0, 0, 1, 0 };
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t line_no = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        line_no++;
        size_t len = (size_t)n;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        st.docs++;
        if (!diff_record(&st, line_no, line, len))
            st.block_bad++;
        if (st.docs % DIFF_BLOCK == 0)
            diff_close_block(&st);
    }
    bool read_error = ferror(f);
    free(line);
    fclose(f);
    if (st.docs % DIFF_BLOCK != 0)
        diff_close_block(&st);

    CHECK(!read_error, "read %s without I/O errors", argv[1]);
    if (argc == 3) {
        size_t want = strtoul(argv[2], NULL, 10);
        CHECK(st.docs == want && want > 0, "compared %zu documents (expected %zu)", st.docs, want);
    } else {
        CHECK(st.docs > 0, "compared %zu documents", st.docs);
    }
    if (st.bad)
        printf("# %zu of %zu documents differ\n", st.bad, st.docs);
    return tl_done();
}
