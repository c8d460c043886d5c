/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The operations the workload of bench/peers/workload.c drives, one
 * structure per implementation of IOVA bookkeeping.  impl_ioasid.c is
 * libioasid/core/iova_tree.c; the workload links with exactly one
 * implementation, which defines peers_impl.
 */
#ifndef IOASID_BENCH_PEERS_H
#define IOASID_BENCH_PEERS_H

#include <stdint.h>

struct peers_impl {
	const char *name;	/* "impl" of the JSON lines */
	/* A new, empty structure for up to @n mappings; NULL on failure. */
	void *(*create)(uint64_t n);
	/* Map [iova, iova + len) to @addr; 0, or non-zero on failure. */
	int (*insert)(void *s, uint64_t iova, uint64_t len, uint64_t addr);
	/* What @iova translates to in *@out; 0, or non-zero if unmapped. */
	int (*lookup)(void *s, uint64_t iova, uint64_t *out);
	/* Remove the mapping [iova, iova + len); 0, or non-zero. */
	int (*remove)(void *s, uint64_t iova, uint64_t len);
	void (*destroy)(void *s);
};

extern const struct peers_impl peers_impl;

#endif
