/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers for the criterion tests. */
#ifndef IOASID_TESTS_HELPERS_H
#define IOASID_TESTS_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include <libioasid.h>

/* A memfd of @size bytes, sealed against shrinking (good practice). */
int test_memfd(uint64_t size);
/* A memfd without the seal. */
int test_memfd_unsealed(uint64_t size);
/* Context for $IOASID_TEST_URI, or "sim" when unset. */
struct ioasid_ctx *test_ctx(void);
/* A context and one IOAS in it. */
struct ioasid_ctx *test_ctx_ioas(uint32_t *ioas_id);
/* Number of open file descriptors of this process. */
int test_count_fds(void);

#endif
