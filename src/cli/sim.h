/* `ocgate sim`: a settlement provider and a merchant receiver to exercise a gateway by hand
 * or from tests. The provider signs proofs and POSTs them (and, as a payment app, payment
 * creations) with X-OC-* headers; the merchant receiver verifies what the gateway forwards.
 * Both can misbehave on purpose. They reuse the gateway's own protocol code (proto/, auth/,
 * net/), so they are a convenience, not an independent check: the Node client in tests/node
 * is that. Shared helpers of sim.c, sim-provider.c and sim-merchant.c. */
#pragma once

#include <stdint.h>

#include "proto/keys.h"
#include "util/macro.h"

int sim_provider(int argc, char **argv);
int sim_merchant(int argc, char **argv);

/* Loads a private key file for role ("provider", "payment app"), printing why not on stderr
 * (never the key). Returns 0 or -1; key is wiped on failure. */
OC_MUST_CHECK int sim_load_key(const char *prog, const char *role, const char *path,
                               PrivateKey *key);

/* Parses a decimal OCID (0..2^53-1) given to option; prints a usage error and returns -1 if
 * it is not one. */
OC_MUST_CHECK int sim_parse_ocid(const char *prog, const char *option, const char *s,
                                 int64_t *out);

/* Parses a non-negative decimal number up to max given to option; prints a usage error and
 * returns -1 if it is not one. */
OC_MUST_CHECK int sim_parse_uint(const char *prog, const char *option, const char *s,
                                 unsigned max, unsigned *out);
