/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sharedmap: which 4 KiB pages of a restricted IOAS are shared (reachable
 * by DMA).  A sparse bitmap, one bit per page, allocated 1 GiB of IOVA
 * (32 KiB of bits) at a time and only where some page is shared: the state
 * of a 1 TiB guest costs at most 32 MiB, a bit per page, and nothing for
 * ranges that are entirely private (the default).
 *
 * Not locked: the IOAS's lock covers it.
 */
#ifndef IOASID_CORE_SHAREDMAP_H
#define IOASID_CORE_SHAREDMAP_H

#include <stdbool.h>
#include <stdint.h>

struct sharedmap;

int sharedmap_new(struct sharedmap **map);
void sharedmap_free(struct sharedmap *map);
/* Make sure setting bits in [iova, iova+length) cannot fail. -ENOMEM. */
int sharedmap_reserve(struct sharedmap *map, uint64_t iova, uint64_t length);
/*
 * Bytes sharedmap_reserve() of [iova, iova+length) would allocate, or
 * more than @budget when it would allocate more than @budget (counting
 * stops there, so a huge range costs no time).
 */
uint64_t sharedmap_reserve_cost(const struct sharedmap *map, uint64_t iova,
				uint64_t length, uint64_t budget);
/*
 * Set or clear the pages of [iova, iova+length); call reserve first.
 * Leaves that become empty stay until sharedmap_trim(), so clearing and
 * setting back (an undo) never needs memory.
 */
void sharedmap_set(struct sharedmap *map, uint64_t iova, uint64_t length,
		   bool shared);
/* Free leaves with no shared page. */
void sharedmap_trim(struct sharedmap *map);
bool sharedmap_test(const struct sharedmap *map, uint64_t iova);
/*
 * Call fn for each maximal run of pages in [iova, iova+length) whose state
 * is @shared, in order.  Stops at and returns fn's first non-zero result.
 */
int sharedmap_for_each_run(const struct sharedmap *map, uint64_t iova,
			   uint64_t length, bool shared,
			   int (*fn)(void *arg, uint64_t iova, uint64_t length),
			   void *arg);
/*
 * Call fn for each run of shared pages, in order, in time proportional to
 * the memory the map uses (a run across a 1 GiB boundary comes in two).
 * Stops at fn's first non-zero result; -ENOMEM.
 */
int sharedmap_for_each_shared(const struct sharedmap *map,
			      int (*fn)(void *arg, uint64_t iova,
					uint64_t length),
			      void *arg);
/* Bytes of memory the map uses; pages marked shared. */
uint64_t sharedmap_mem_bytes(const struct sharedmap *map);
uint64_t sharedmap_shared_pages(const struct sharedmap *map);

#endif
