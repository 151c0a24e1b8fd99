/* Harness helpers for the unit tests that read tests/vectors/opencharge-vectors.json through
 * jansson. The file is trusted harness input, not something under test: anything missing or
 * of the wrong type ends the run with a TAP "Bail out!" rather than a failed check, so these
 * helpers never add TAP points. Header-only like testlib.h; every function is marked unused
 * so a test that needs only some of them still builds under -Werror. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define VL_UNUSED __attribute__((unused))

/* Ends the run with "Bail out! what[: detail]". */
static VL_UNUSED __attribute__((noreturn)) void bail(const char *what, const char *detail)
{
    printf("Bail out! %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* Loads the vectors file named by argv[1] with jansson's load flags; the top level must be an
 * object. Bails out on a missing argument or a file that does not load. Caller decrefs. */
static VL_UNUSED json_t *vectors_load(int argc, char **argv, size_t flags)
{
    if (argc < 2) {
        printf("Bail out! usage: %s <opencharge-vectors.json>\n", argv[0]);
        exit(1);
    }
    json_error_t err;
    json_t *vectors = json_load_file(argv[1], flags, &err);
    if (!vectors) {
        printf("Bail out! %s:%d: %s\n", argv[1], err.line, err.text);
        exit(1);
    }
    if (!json_is_object(vectors)) {
        printf("Bail out! %s: the top level is not an object\n", argv[1]);
        exit(1);
    }
    return vectors;
}

/* The member key of obj, which must be of this type (named in the bail-out as kind). */
static VL_UNUSED const json_t *vmember(const json_t *obj, const char *key, json_type type,
                                       const char *kind)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_typeof(v) != type) {
        printf("Bail out! vectors: \"%s\" missing or not %s\n", key, kind);
        exit(1);
    }
    return v;
}

/* The string member key of obj, and its length (embedded NULs included) when len is given. */
static VL_UNUSED const char *vstr(const json_t *obj, const char *key, size_t *len)
{
    const json_t *v = vmember(obj, key, JSON_STRING, "a string");
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

/* The array member key of obj. */
static VL_UNUSED const json_t *varr(const json_t *obj, const char *key)
{
    return vmember(obj, key, JSON_ARRAY, "an array");
}

/* The object member key of obj. */
static VL_UNUSED const json_t *vobj(const json_t *obj, const char *key)
{
    return vmember(obj, key, JSON_OBJECT, "an object");
}

/* The entry of keys[] with this label. */
static VL_UNUSED const json_t *vector_key(const json_t *vectors, const char *label)
{
    size_t i;
    const json_t *k;
    json_array_foreach(varr(vectors, "keys"), i, k)
        if (strcmp(vstr(k, "label", NULL), label) == 0)
            return k;
    printf("Bail out! vectors: no key labelled \"%s\"\n", label);
    exit(1);
}
