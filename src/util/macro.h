/* Small compiler helpers shared by every module: must-check results, array sizes and
 * scope-bound cleanup. Kept tiny on purpose; anything with behaviour lives elsewhere. */
#pragma once

#include <stddef.h>

#define OC_MUST_CHECK __attribute__((warn_unused_result))
#define OC_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define OC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define OC_UNUSED __attribute__((unused))
#define OC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define OC_CLEANUP(fn) __attribute__((cleanup(fn)))
