/* Canonical JSON writer: the exact bytes Opencharge signatures are computed over (design.md,
 * "canonical JSON"; spec section 4.1).
 *
 * CANON_STRICT: keys sorted recursively by UTF-16 code unit, no whitespace, JSON.stringify
 *   escaping (", \, \b \f \n \r \t, other U+0000..U+001F as lowercase \u00xx, everything
 *   else raw UTF-8), integers in plain decimal. Equals RFC 8785 for the values allowed here.
 * CANON_LEGACY: the docs' sample JSON.stringify(obj, Object.keys(obj).sort()): the sorted
 *   top-level keys act as an allow-list at every depth (nested keys not among them vanish),
 *   arrays keep every element. Only for participants flagged legacy.
 *
 * Refused at any depth: reals, integers outside ±(2^53−1), array-index keys, strings or keys
 * that are not valid UTF-8. Pure: no I/O. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

typedef enum CanonForm {
    CANON_STRICT = 0,
    CANON_LEGACY = 1,
} CanonForm;

typedef enum CanonCode {
    CANON_E_REAL = 1,      /* a json_real anywhere */
    CANON_E_INT_RANGE,     /* an integer outside ±(2^53−1) */
    CANON_E_INDEX_KEY,     /* an array-index key ("0".."4294967294") */
    CANON_E_UTF8,          /* a string or key that is not valid UTF-8 */
    CANON_E_DEPTH,         /* nesting deeper than 64 (values built in code, not parsed) */
    CANON_E_NOT_OBJECT,    /* CANON_LEGACY needs an object at the top */
} CanonCode;

/* Writes the canonical form of value. Returns 0 and sets *out (NUL-terminated, free with
 * oc_free) and *out_len; a CanonCode (> 0) when the value cannot be canonicalised; or -ENOMEM.
 * *out and *out_len are untouched on failure. Both forms refuse the same values, even where
 * the legacy allow-list would drop the offending member; NULL arguments or an unknown form
 * give -EINVAL. */
OC_MUST_CHECK int canon_write(const json_t *value, CanonForm form, char **out, size_t *out_len);

/* canon_write followed by SHA-256 of the bytes; digest receives 32 bytes. */
OC_MUST_CHECK int canon_sha256(const json_t *value, CanonForm form, uint8_t digest[32]);

/* Returns <0, 0, >0 as a sorts before, equal to, after b in UTF-16 code-unit order. Both are
 * valid UTF-8 of the given lengths. */
int canon_key_cmp(const char *a, size_t a_len, const char *b, size_t b_len);

/* "strict" / "legacy" ("unknown" for any other value); parse returns -EINVAL for anything
 * else, including NULL and other capitalisations, and then leaves *out untouched. */
const char *canon_form_name(CanonForm form);
OC_MUST_CHECK int canon_form_parse(const char *name, CanonForm *out);
