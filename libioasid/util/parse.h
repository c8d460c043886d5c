/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Number parsing shared by discovery/ and the simulated topology. */
#ifndef IOASID_UTIL_PARSE_H
#define IOASID_UTIL_PARSE_H

#include <stdint.h>

/*
 * Parse a whole string as a number (strtoull rules, no sign): 0,
 * -EINVAL when it is not exactly one number, -ERANGE on overflow.
 */
int parse_u64(const char *s, int base, uint64_t *val);

#endif
