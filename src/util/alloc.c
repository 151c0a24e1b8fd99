/* Pluggable allocator: see alloc.h for why it exists. */
#include "util/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static OcMallocFn alloc_malloc = malloc;
static OcFreeFn alloc_free = free;

void oc_set_alloc_funcs(OcMallocFn malloc_fn, OcFreeFn free_fn)
{
    alloc_malloc = malloc_fn ? malloc_fn : malloc;
    alloc_free = free_fn ? free_fn : free;
}

void *oc_malloc(size_t size)
{
    return alloc_malloc(size ? size : 1);
}

void *oc_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = oc_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *oc_realloc(void *ptr, size_t old_size, size_t new_size)
{
    void *p = oc_malloc(new_size);
    if (!p)
        return NULL;
    if (ptr) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        alloc_free(ptr);
    }
    return p;
}

char *oc_strndup(const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = oc_malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void oc_free(void *ptr)
{
    if (ptr)
        alloc_free(ptr);
}
