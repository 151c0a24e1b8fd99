/* Allocation entry points for ocgate's own code. They forward to malloc by default; tests
 * swap in a failing allocator (together with jansson's, via json_set_alloc_funcs) to prove
 * that every allocation failure is reported as -ENOMEM and leaks nothing. */
#pragma once

#include <stddef.h>

#include "util/macro.h"

typedef void *(*OcMallocFn)(size_t size);
typedef void (*OcFreeFn)(void *ptr);

/* Install the allocator pair used by oc_malloc/oc_realloc/oc_free. Passing NULL for either
 * restores the libc default. Not thread-safe: call before any other thread allocates. */
void oc_set_alloc_funcs(OcMallocFn malloc_fn, OcFreeFn free_fn);

/* Like malloc; returns NULL on failure (never aborts). size 0 allocates 1 byte. */
OC_MUST_CHECK void *oc_malloc(size_t size);
/* Like calloc with overflow checking on n * size. */
OC_MUST_CHECK void *oc_calloc(size_t n, size_t size);
/* Like realloc: on failure returns NULL and leaves ptr valid and unchanged. Needs the old
 * size because the pluggable allocator has no realloc of its own. */
OC_MUST_CHECK void *oc_realloc(void *ptr, size_t old_size, size_t new_size);
/* Copies len bytes and appends a NUL. */
OC_MUST_CHECK char *oc_strndup(const char *s, size_t len);
/* Accepts NULL. */
void oc_free(void *ptr);
