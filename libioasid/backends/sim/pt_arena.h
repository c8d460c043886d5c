/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Page-table pages for one simulated page table.
 *
 * A table page from aligned_alloc(4096, 4096) costs malloc about twice
 * its size, and each lands on a 4 KiB host page of its own.  Past its
 * first PT_ARENA_SMALL pages a table takes its pages from 2 MiB chunks
 * advised MADV_HUGEPAGE instead: 4 KiB each, a few huge TLB entries for
 * all of them.  Measured with 1M random 4 KiB leaves, every other page (a
 * 4,096-leaf-table tree, sim_pgtable_* alone, medians of 8): peak RSS 42.6
 * MB with malloc, 26.5 MB with chunks (8 MB of it the driver's own); map
 * 214 -> 188 ns; walk (74 / 78 ns) and unmap (119 / 116 ns) unchanged, a
 * cache miss, not a TLB miss, being their cost there.  Small tables (most
 * domains of most tests) never pay for a chunk.
 *
 * Memory bound: a new chunk is mapped only when no chunk has a free page,
 * so the chunks never hold more than the table's peak page count rounded
 * up to a chunk; an empty chunk is unmapped at once.
 *
 * One writer: the caller serialises every call on one arena (the page
 * table's writer lock).  Pages go back only once no walker can read them
 * (after the page table's grace period).
 */
#ifndef IOASID_SIM_PT_ARENA_H
#define IOASID_SIM_PT_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define PT_ARENA_PAGE	4096u
#define PT_ARENA_SMALL	64u	/* pages from malloc before the first chunk */

struct pt_chunk;

struct pt_arena {
	struct pt_chunk **chunks;	/* sorted by address, for free */
	size_t nr_chunks, cap;
	struct pt_chunk *partial;	/* chunks with a free page */
	uint64_t nr_pages;		/* live pages, both kinds */
};

/* A page (not zeroed) or NULL when memory is out. */
void *pt_arena_alloc(struct pt_arena *a);
void pt_arena_free(struct pt_arena *a, void *page);
/* Every chunk back; pages from malloc must have been freed already. */
void pt_arena_destroy(struct pt_arena *a);
/* How many chunks the arena maps (tests, statistics). */
size_t pt_arena_chunks(const struct pt_arena *a);

#endif
