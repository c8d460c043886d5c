/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tests for the simulated IOMMU page tables (libioasid/backends/sim).
 * The page table never dereferences the "hva" of a leaf, so most tests use
 * made-up, suitably aligned addresses.  Build:
 *   gcc -std=gnu11 -I libioasid tests/test_sim_pgtable.c \
 *       libioasid/backends/sim/pgtable.c -lcriterion -lpthread
 */
#include "tsan_runner.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/sim/pgtable.h"

#define SZ_4K	SIM_SZ_4K
#define SZ_2M	SIM_SZ_2M
#define SZ_1G	SIM_SZ_1G
#define ALL_SIZES (SZ_4K | SZ_2M | SZ_1G)
#define RW	(SIM_PROT_READ | SIM_PROT_WRITE)
/* a DMA write with dirty tracking on (A/D set) */
#define WRITE_TRACKED	(SIM_ACCESS_WRITE | SIM_ACCESS_TRACK)
#define HVA_BASE 0x100000000000ULL	/* 16 TiB: 1 GiB aligned, fake */

static struct sim_pgtable *new_pgt(unsigned int aw, uint64_t mask,
				   unsigned int flags)
{
	struct sim_pgtable *pgt = NULL;

	cr_assert_eq(sim_pgtable_create(aw, mask, flags, &pgt), 0);
	return pgt;
}

static struct sim_pgt_stats stats(struct sim_pgtable *pgt)
{
	struct sim_pgt_stats st;

	sim_pgtable_stats(pgt, &st);
	return st;
}

/* Walk and check level and translated address of one IOVA. */
static void expect_leaf(struct sim_pgtable *pgt, uint64_t iova,
			unsigned int level, uint64_t hva)
{
	struct sim_xlate x;

	cr_assert_eq(sim_pgtable_walk(pgt, iova, &x), 0, "iova %#lx",
		     (unsigned long)iova);
	cr_assert_eq(x.level, level, "iova %#lx level %u want %u",
		     (unsigned long)iova, x.level, level);
	cr_assert_eq(x.size, 1ULL << (12 + 9 * (level - 1)));
	cr_assert_eq(x.hva + (iova - x.iova), hva, "iova %#lx",
		     (unsigned long)iova);
}

Test(sim_pgtable, create_params)
{
	struct sim_pgtable *pgt;

	cr_assert_eq(sim_pgtable_create(29, ALL_SIZES, 0, &pgt), -EINVAL);
	cr_assert_eq(sim_pgtable_create(58, ALL_SIZES, 0, &pgt), -EINVAL);
	cr_assert_eq(sim_pgtable_create(48, SZ_2M, 0, &pgt), -EINVAL);
	cr_assert_eq(sim_pgtable_create(48, SZ_4K | SZ_1G, 0, &pgt), -EINVAL);
	cr_assert_eq(sim_pgtable_create(48, SZ_4K | (1ULL << 16), 0, &pgt),
		     -EINVAL);
	cr_assert_eq(sim_pgtable_create(48, SZ_4K, 0x80, &pgt), -EINVAL);

	pgt = new_pgt(39, ALL_SIZES, 0);
	cr_assert_eq(sim_pgtable_levels(pgt), 3);
	sim_pgtable_destroy(pgt);
	pgt = new_pgt(48, ALL_SIZES, 0);
	cr_assert_eq(sim_pgtable_levels(pgt), 4);
	sim_pgtable_destroy(pgt);
	pgt = new_pgt(57, ALL_SIZES, 0);
	cr_assert_eq(sim_pgtable_levels(pgt), 5);
	cr_assert_eq(sim_pgtable_addr_width(pgt), 57);
	/* Top of a 57-bit space is reachable through 5 levels. */
	cr_assert_eq(sim_pgtable_map(pgt, (1ULL << 57) - SZ_4K, SZ_4K,
				     HVA_BASE, RW), 0);
	expect_leaf(pgt, (1ULL << 57) - SZ_4K, 1, HVA_BASE);
	cr_assert_eq(stats(pgt).tables, 5);
	sim_pgtable_destroy(pgt);
}

Test(sim_pgtable, large_leaf_selection)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	uint64_t iova = SZ_1G, len = SZ_1G + SZ_2M + SZ_4K;
	struct sim_pgt_stats st;

	cr_assert_eq(sim_pgtable_map(pgt, iova, len, HVA_BASE, RW), 0);
	st = stats(pgt);
	cr_assert_eq(st.leaves_1g, 1);
	cr_assert_eq(st.leaves_2m, 1);
	cr_assert_eq(st.leaves_4k, 1);
	cr_assert_eq(st.mapped_bytes, len);
	expect_leaf(pgt, iova, 3, HVA_BASE);
	expect_leaf(pgt, iova + 0x12345000, 3, HVA_BASE + 0x12345000);
	expect_leaf(pgt, iova + SZ_1G + 0x1000, 2, HVA_BASE + SZ_1G + 0x1000);
	expect_leaf(pgt, iova + SZ_1G + SZ_2M, 1, HVA_BASE + SZ_1G + SZ_2M);
	/* root, L3 table for the 1 GiB slot row, L2 table, L1 table */
	cr_assert_eq(st.tables, 4);
	sim_pgtable_destroy(pgt);
}

Test(sim_pgtable, leaf_selection_respects_alignment_and_mask)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	struct sim_pgt_stats st;

	/* iova 2 MiB aligned, hva only 4 KiB congruent: 4 KiB leaves. */
	cr_assert_eq(sim_pgtable_map(pgt, SZ_2M, SZ_2M, HVA_BASE + SZ_4K, RW),
		     0);
	st = stats(pgt);
	cr_assert_eq(st.leaves_4k, 512);
	cr_assert_eq(st.leaves_2m, 0);
	expect_leaf(pgt, SZ_2M + 5 * SZ_4K, 1, HVA_BASE + 6 * SZ_4K);
	/* Unaligned start then aligned middle: 4K head, 2M body, 4K tail. */
	cr_assert_eq(sim_pgtable_map(pgt, 4 * SZ_2M - SZ_4K,
				     SZ_4K + 2 * SZ_2M + SZ_4K,
				     HVA_BASE + 4 * SZ_2M - SZ_4K, RW), 0);
	st = stats(pgt);
	cr_assert_eq(st.leaves_4k, 514);
	cr_assert_eq(st.leaves_2m, 2);
	sim_pgtable_destroy(pgt);

	/* A unit without 1 GiB support never uses 1 GiB leaves. */
	pgt = new_pgt(48, SZ_4K | SZ_2M, 0);
	cr_assert_eq(sim_pgtable_map(pgt, SZ_1G, SZ_1G, HVA_BASE, RW), 0);
	st = stats(pgt);
	cr_assert_eq(st.leaves_1g, 0);
	cr_assert_eq(st.leaves_2m, 512);
	expect_leaf(pgt, SZ_1G + 7 * SZ_2M, 2, HVA_BASE + 7 * SZ_2M);
	sim_pgtable_destroy(pgt);

	pgt = new_pgt(39, SZ_4K, 0);
	cr_assert_eq(sim_pgtable_map(pgt, 0, 2 * SZ_2M, HVA_BASE, RW), 0);
	st = stats(pgt);
	cr_assert_eq(st.leaves_4k, 1024);
	cr_assert_eq(st.leaves_2m + st.leaves_1g, 0);
	sim_pgtable_destroy(pgt);
}

Test(sim_pgtable, snoop_bit)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES,
					  SIM_PGT_ENFORCE_COHERENCY);
	struct sim_xlate x;

	cr_assert(sim_pgtable_enforces_coherency(pgt));
	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_2M, HVA_BASE, SIM_PROT_READ),
		     0);
	cr_assert_eq(sim_pgtable_walk(pgt, 0x1000, &x), 0);
	cr_assert(x.pte & SIM_PTE_SNP);
	cr_assert(x.pte & SIM_PTE_PS);
	cr_assert(!(x.pte & SIM_PTE_W));
	sim_pgtable_destroy(pgt);

	pgt = new_pgt(48, ALL_SIZES, 0);
	cr_assert(!sim_pgtable_enforces_coherency(pgt));
	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_4K, HVA_BASE, RW), 0);
	cr_assert_eq(sim_pgtable_map(pgt, SZ_4K, SZ_4K, HVA_BASE,
				     RW | SIM_PROT_SNOOP), 0);
	cr_assert_eq(sim_pgtable_walk(pgt, 0, &x), 0);
	cr_assert(!(x.pte & SIM_PTE_SNP));
	cr_assert_eq(sim_pgtable_walk(pgt, SZ_4K, &x), 0);
	cr_assert(x.pte & SIM_PTE_SNP);
	sim_pgtable_destroy(pgt);
}

Test(sim_pgtable, errors)
{
	struct sim_pgtable *pgt = new_pgt(39, ALL_SIZES, 0);
	uint64_t top = 1ULL << 39;
	struct sim_pgt_stats before, after;
	struct sim_xlate x;

	cr_assert_eq(sim_pgtable_map(pgt, 0x1001, SZ_4K, HVA_BASE, RW),
		     -EINVAL);
	cr_assert_eq(sim_pgtable_map(pgt, 0, 0x1001, HVA_BASE, RW), -EINVAL);
	cr_assert_eq(sim_pgtable_map(pgt, 0, 0, HVA_BASE, RW), -EINVAL);
	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_4K, HVA_BASE + 1, RW),
		     -EINVAL);
	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_4K, HVA_BASE, 0), -EINVAL);
	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_4K, HVA_BASE, RW | SIM_PTE_D),
		     -EINVAL);
	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_4K, 1ULL << 52, RW), -EINVAL);
	cr_assert_eq(sim_pgtable_map(pgt, top, SZ_4K, HVA_BASE, RW), -ERANGE);
	cr_assert_eq(sim_pgtable_map(pgt, top - SZ_4K, 2 * SZ_4K, HVA_BASE,
				     RW), -ERANGE);
	cr_assert_eq(sim_pgtable_map(pgt, SZ_4K, UINT64_MAX - SZ_4K + 1,
				     HVA_BASE, RW), -ERANGE);
	cr_assert_eq(sim_pgtable_unmap(pgt, 0x800, SZ_4K), -EINVAL);
	cr_assert_eq(sim_pgtable_unmap(pgt, 0, 0), -EINVAL);
	cr_assert_eq(sim_pgtable_unmap(pgt, top, SZ_4K), -ERANGE);
	cr_assert_eq(sim_pgtable_walk(pgt, top, &x), -ERANGE);
	cr_assert_eq(sim_pgtable_walk(pgt, 0, &x), -ENOENT);

	/* -EEXIST, including a page inside an existing large leaf, and
	 * nothing changes on failure (checked up front). */
	cr_assert_eq(sim_pgtable_map(pgt, SZ_2M, SZ_2M, HVA_BASE, RW), 0);
	cr_assert_eq(sim_pgtable_map(pgt, 8 * SZ_2M, SZ_4K, HVA_BASE, RW), 0);
	before = stats(pgt);
	cr_assert_eq(sim_pgtable_map(pgt, SZ_2M + SZ_4K, SZ_4K, HVA_BASE, RW),
		     -EEXIST);
	cr_assert_eq(sim_pgtable_map(pgt, 0, 4 * SZ_2M, HVA_BASE, RW),
		     -EEXIST);
	cr_assert_eq(sim_pgtable_map(pgt, 6 * SZ_2M, 4 * SZ_2M, HVA_BASE, RW),
		     -EEXIST);
	after = stats(pgt);
	cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0);
	cr_assert_eq(sim_pgtable_walk(pgt, 0, &x), -ENOENT);
	cr_assert_eq(sim_pgtable_walk(pgt, 6 * SZ_2M, &x), -ENOENT);
	/* Unmapping a hole is not an error: 0 bytes. */
	cr_assert_eq(sim_pgtable_unmap(pgt, 100 * SZ_2M, SZ_2M), 0);
	sim_pgtable_destroy(pgt);
}

Test(sim_pgtable, split_in_place)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	uint64_t iova = 4 * SZ_1G, hole = iova + 300 * SZ_2M + 17 * SZ_4K;
	struct sim_pgt_stats st;
	struct sim_xlate x;
	uint64_t bm[8] = { 0 };

	cr_assert_eq(sim_pgtable_map(pgt, iova, SZ_1G, HVA_BASE, RW), 0);
	cr_assert_eq(stats(pgt).leaves_1g, 1);
	/* Dirty the 1 GiB leaf before the split: children inherit D. */
	cr_assert_eq(sim_pgtable_translate(pgt, iova, WRITE_TRACKED, &x), 0);
	cr_assert(x.pte & SIM_PTE_D);

	cr_assert_eq(sim_pgtable_unmap(pgt, hole, SZ_4K), (int64_t)SZ_4K);
	st = stats(pgt);
	cr_assert_eq(st.splits, 2);
	cr_assert_eq(st.leaves_1g, 0);
	cr_assert_eq(st.leaves_2m, 511);
	cr_assert_eq(st.leaves_4k, 511);
	cr_assert_eq(st.mapped_bytes, SZ_1G - SZ_4K);
	cr_assert_eq(sim_pgtable_walk(pgt, hole, &x), -ENOENT);
	expect_leaf(pgt, hole - SZ_4K, 1, HVA_BASE + (hole - SZ_4K - iova));
	expect_leaf(pgt, hole + SZ_4K, 1, HVA_BASE + (hole + SZ_4K - iova));
	expect_leaf(pgt, iova, 2, HVA_BASE);
	expect_leaf(pgt, iova + SZ_1G - SZ_4K, 2, HVA_BASE + SZ_1G - SZ_4K);
	cr_assert_eq(sim_pgtable_walk(pgt, hole + SZ_4K, &x), 0);
	cr_assert(x.pte & SIM_PTE_D, "D lost by the split");
	cr_assert(x.pte & SIM_PTE_W);

	/* Dirty state survives: the two pages around the hole report. */
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, hole - SZ_4K,
						      3 * SZ_4K, bm, 0), 0);
	cr_assert_eq(bm[0], 0x5);

	/* Unmap across a 2 MiB boundary: tail of one leaf, head of next. */
	cr_assert_eq(sim_pgtable_unmap(pgt, iova + 3 * SZ_2M - SZ_4K,
				       2 * SZ_4K), (int64_t)(2 * SZ_4K));
	st = stats(pgt);
	cr_assert_eq(st.splits, 4);
	cr_assert_eq(st.mapped_bytes, SZ_1G - 3 * SZ_4K);
	/* Remapping the hole works and uses a 4 KiB leaf. */
	cr_assert_eq(sim_pgtable_map(pgt, hole, SZ_4K, HVA_BASE, RW), 0);
	expect_leaf(pgt, hole, 1, HVA_BASE);
	/* Unmapping everything frees all tables but the root. */
	cr_assert_eq(sim_pgtable_unmap(pgt, 0, 1ULL << 47),
		     (int64_t)(SZ_1G - 2 * SZ_4K));
	cr_assert_eq(stats(pgt).tables, 1);
	cr_assert_eq(stats(pgt).mapped_bytes, 0);
	sim_pgtable_destroy(pgt);
}

Test(sim_pgtable, dirty_bits)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	uint64_t bm[16];
	struct sim_xlate x;
	unsigned int i;

	/* [0, 2M): one 2 MiB leaf; [2M, 2M+64K): 4 KiB leaves */
	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_2M + 16 * SZ_4K, HVA_BASE, RW),
		     0);
	cr_assert_eq(sim_pgtable_translate(pgt, 5 * SZ_4K, SIM_ACCESS_READ |
					   SIM_ACCESS_TRACK, &x), 0);
	cr_assert(x.pte & SIM_PTE_A);
	cr_assert(!(x.pte & SIM_PTE_D));
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_2M +
						      16 * SZ_4K, bm, 0), 0);
	for (i = 0; i < 9; i++)
		cr_assert_eq(bm[i], 0);

	cr_assert_eq(sim_pgtable_translate(pgt, SZ_2M + 3 * SZ_4K,
					   WRITE_TRACKED, &x), 0);
	cr_assert_eq(sim_pgtable_translate(pgt, 100 * SZ_4K,
					   WRITE_TRACKED, &x), 0);
	/* NO_CLEAR: read twice, same answer. */
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_2M +
			16 * SZ_4K, bm, SIM_DIRTY_NO_CLEAR), 0);
	for (i = 0; i < 8; i++)
		cr_assert_eq(bm[i], ~0ULL, "2M leaf marks all its pages");
	cr_assert_eq(bm[8], 1ULL << 3);
	/* A partial range over the dirty 2 MiB leaf reports but keeps D. */
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, SZ_4K, 2 * SZ_4K,
						      bm, 0), 0);
	cr_assert_eq(bm[0], 0x3);
	cr_assert_eq(sim_pgtable_walk(pgt, 0, &x), 0);
	cr_assert(x.pte & SIM_PTE_D);
	/* Full range clears. */
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_2M +
			16 * SZ_4K, bm, 0), 0);
	cr_assert_eq(bm[0], ~0ULL);
	cr_assert_eq(bm[8], 1ULL << 3);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_2M +
			16 * SZ_4K, bm, 0), 0);
	for (i = 0; i < 9; i++)
		cr_assert_eq(bm[i], 0);
	/* Permission is checked before A/D are set. */
	cr_assert_eq(sim_pgtable_map(pgt, SZ_1G, SZ_4K, HVA_BASE,
				     SIM_PROT_READ), 0);
	cr_assert_eq(sim_pgtable_translate(pgt, SZ_1G, WRITE_TRACKED, &x),
		     -EACCES);
	cr_assert(!(x.pte & (SIM_PTE_A | SIM_PTE_D)));
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_4K, NULL, 0),
		     -EINVAL);
	sim_pgtable_destroy(pgt);
}

/* Without dirty tracking a walk writes nothing into the table. */
Test(sim_pgtable, untracked_walk_sets_no_bits)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	uint64_t bm[8] = { 0 };
	struct sim_xlate x;

	cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_2M, HVA_BASE, RW), 0);
	cr_assert_eq(sim_pgtable_translate(pgt, 3 * SZ_4K, SIM_ACCESS_WRITE,
					   &x), 0);
	cr_assert_not(x.pte & (SIM_PTE_A | SIM_PTE_D));
	cr_assert_eq(sim_pgtable_walk(pgt, 3 * SZ_4K, &x), 0);
	cr_assert_not(x.pte & (SIM_PTE_A | SIM_PTE_D), "the leaf is clean");
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_2M, bm, 0),
		     0);
	for (unsigned int i = 0; i < 8; i++)
		cr_assert_eq(bm[i], 0);
	/* DISCARD clears without a bitmap, and only so */
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_2M, NULL,
						      SIM_DIRTY_DISCARD), 0);
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, 0, SZ_2M, bm,
						      SIM_DIRTY_DISCARD),
		     -EINVAL);
	sim_pgtable_destroy(pgt);
}

/*
 * An unmap that collects dirty bits reports exactly the dirty pages it
 * removes: a 4 KiB leaf, pieces of a split dirty 2 MiB leaf (all dirty),
 * a whole table unlinked at once, and nothing clean.
 */
Test(sim_pgtable, unmap_dirty_reports_what_it_removes)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	uint64_t base = SZ_1G, bm[2 * 512 / 64 + 1];
	struct sim_xlate x;

	/* [base, +2M): a 2 MiB leaf; [base+2M, +4M): 4 KiB leaves */
	cr_assert_eq(sim_pgtable_map(pgt, base, SZ_2M, HVA_BASE, RW), 0);
	for (uint64_t o = SZ_2M; o < 2 * SZ_2M; o += SZ_4K)
		cr_assert_eq(sim_pgtable_map(pgt, base + o, SZ_4K,
					     HVA_BASE + o, RW), 0);
	cr_assert_eq(stats(pgt).leaves_4k, 512);
	cr_assert_eq(sim_pgtable_translate(pgt, base + 9 * SZ_4K,
					   WRITE_TRACKED, &x), 0);
	/* cut 8 pages out of the dirty 2 MiB leaf: all 8 are dirty */
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_unmap_dirty(pgt, base + 4 * SZ_4K,
					     8 * SZ_4K, bm, base),
		     (int64_t)(8 * SZ_4K));
	cr_assert_eq(bm[0], 0xffULL << 4, "0x%llx",
		     (unsigned long long)bm[0]);
	/* the pieces left keep D: a read reports them */
	cr_assert_eq(sim_pgtable_walk(pgt, base + 20 * SZ_4K, &x), 0);
	cr_assert(x.pte & SIM_PTE_D);
	/* a clean range reports nothing */
	cr_assert_eq(sim_pgtable_read_and_clear_dirty(pgt, base, SZ_2M, NULL,
						      SIM_DIRTY_DISCARD), 0);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_unmap_dirty(pgt, base + 100 * SZ_4K,
					     SZ_4K, bm, base),
		     (int64_t)SZ_4K);
	for (unsigned int i = 0; i < sizeof(bm) / 8; i++)
		cr_assert_eq(bm[i], 0);
	/* one dirty 4 KiB page; its whole table goes at once */
	cr_assert_eq(sim_pgtable_translate(pgt, base + SZ_2M + 3 * SZ_4K,
					   WRITE_TRACKED, &x), 0);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_pgtable_unmap_dirty(pgt, base + SZ_2M, SZ_2M, bm,
					     base + SZ_2M), (int64_t)SZ_2M);
	cr_assert_eq(x.level, 1);
	cr_assert_eq(bm[0], 1ULL << 3, "0x%llx", (unsigned long long)bm[0]);
	for (unsigned int i = 1; i < sizeof(bm) / 8; i++)
		cr_assert_eq(bm[i], 0);
	cr_assert_eq(sim_pgtable_unmap_dirty(pgt, base, SZ_4K, NULL, base),
		     -EINVAL);
	cr_assert_eq(sim_pgtable_unmap_dirty(pgt, base, SZ_4K, bm, base + 1),
		     -EINVAL);
	sim_pgtable_destroy(pgt);
}

Test(sim_pgtable, teardown_and_churn_bounded)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	struct sim_pgt_stats st;
	uint64_t iova;
	unsigned int i;

	srand(7);
	/* Random 4 KiB map/unmap churn over a 1 TiB space. */
	for (i = 0; i < 20000; i++) {
		iova = ((uint64_t)rand() % (1ULL << 28)) << 12;
		if (sim_pgtable_map(pgt, iova, SZ_4K, HVA_BASE, RW) == 0)
			cr_assert_eq(sim_pgtable_unmap(pgt, iova, SZ_4K),
				     (int64_t)SZ_4K);
		st = stats(pgt);
		cr_assert_eq(st.tables, 1, "empty tables must be unlinked");
		cr_assert_eq(st.bad_counts, 0);
		cr_assert_lt(st.pending, SIM_PGT_RECLAIM_BATCH + 8,
			     "retired pages must be freed");
	}
	/* Tear down a populated table: ASan/LSan checks nothing leaks. */
	for (i = 0; i < 64; i++)
		cr_assert_eq(sim_pgtable_map(pgt, (uint64_t)i * SZ_1G + SZ_4K *
					     (i + 1), SZ_2M, HVA_BASE, RW), 0);
	cr_assert_gt(stats(pgt).tables, 64);
	sim_pgtable_destroy(pgt);
}

/*
 * Leaf tables emptied in random order, one 4 KiB page at a time (every
 * other page mapped, as bench_ioas does): each table goes exactly when its
 * last page does, and not one unmap earlier, which is what the count of
 * present entries in the entry above a table decides.
 */
Test(sim_pgtable, random_order_unmap_unlinks_each_table_last)
{
	enum { TABLES = 8, PER = 256, N = TABLES * PER };
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	unsigned int left[TABLES], ord[N], i, j, t, live = TABLES;
	struct sim_pgt_stats st;

	for (i = 0; i < N; i++) {
		ord[i] = i;
		cr_assert_eq(sim_pgtable_map(pgt, (uint64_t)i * 2 * SZ_4K, SZ_4K,
					     HVA_BASE + (uint64_t)i * SZ_4K,
					     RW), 0);
	}
	/* 8 leaf tables + one each of level 2 and 3 + the root */
	cr_assert_eq(stats(pgt).tables, TABLES + 3);
	srand(99);
	for (i = N - 1; i > 0; i--) {
		j = (unsigned int)rand() % (i + 1);
		t = ord[i], ord[i] = ord[j], ord[j] = t;
	}
	for (t = 0; t < TABLES; t++)
		left[t] = PER;
	for (i = 0; i < N; i++) {
		t = ord[i] / PER;
		cr_assert_eq(sim_pgtable_unmap(pgt, (uint64_t)ord[i] * 2 * SZ_4K,
					       SZ_4K), (int64_t)SZ_4K);
		live -= --left[t] == 0;
		st = stats(pgt);
		cr_assert_eq(st.bad_counts, 0, "unmap %u", i);
		cr_assert_eq(st.leaves_4k, N - i - 1);
		cr_assert_eq(st.tables, live ? live + 3 : 1, "unmap %u: %u "
			     "leaf tables hold pages", i, live);
		if (i % 97 == 0)
			for (j = i + 1; j < N; j++)
				expect_leaf(pgt, (uint64_t)ord[j] * 2 * SZ_4K,
					    1, HVA_BASE + (uint64_t)ord[j] *
					    SZ_4K);
	}
	sim_pgtable_destroy(pgt);
}

/*
 * sim_pgtable_prefetch() is a hint: wherever it is pointed (a 4 KiB leaf,
 * a large leaf, a hole, a missing table, past the address width) the
 * table translates and counts as before, and no A/D bit appears.
 */
Test(sim_pgtable, prefetch_changes_nothing)
{
	struct sim_pgtable *pgt = new_pgt(39, ALL_SIZES, 0);
	const uint64_t at[] = { 0, SZ_4K, 2 * SZ_4K, SZ_2M, SZ_2M + SZ_4K,
				SZ_1G, SZ_1G + 5 * SZ_2M, 7 * SZ_1G,
				1ULL << 39, UINT64_MAX & ~(SZ_4K - 1) };
	struct sim_pgt_stats before, after;
	struct sim_xlate x;

	cr_assert_eq(sim_pgtable_map(pgt, 0, 2 * SZ_4K, HVA_BASE, RW), 0);
	cr_assert_eq(sim_pgtable_map(pgt, SZ_2M, SZ_2M, HVA_BASE, RW), 0);
	cr_assert_eq(sim_pgtable_map(pgt, SZ_1G, SZ_1G, HVA_BASE, RW), 0);
	before = stats(pgt);
	for (unsigned int i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		sim_pgtable_prefetch(pgt, at[i]);
	after = stats(pgt);
	cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0);
	cr_assert_eq(after.bad_counts, 0);
	expect_leaf(pgt, SZ_4K, 1, HVA_BASE + SZ_4K);
	expect_leaf(pgt, SZ_2M + SZ_4K, 2, HVA_BASE + SZ_4K);
	expect_leaf(pgt, SZ_1G + 5 * SZ_2M, 3, HVA_BASE + 5 * SZ_2M);
	cr_assert_eq(sim_pgtable_walk(pgt, 2 * SZ_4K, &x), -ENOENT);
	cr_assert_eq(sim_pgtable_walk(pgt, 0, &x), 0);
	cr_assert_eq(x.pte & (SIM_PTE_A | SIM_PTE_D), 0);
	cr_assert_eq(sim_pgtable_unmap(pgt, SZ_4K, SZ_4K), (int64_t)SZ_4K);
	sim_pgtable_destroy(pgt);
}

/*
 * A large table takes its pages from 2 MiB chunks (pt_arena.h): no more
 * chunks than its pages need beyond the first PT_ARENA_SMALL, none kept
 * once it is empty, and a refill never maps more than the peak did.
 */
static uint64_t chunks_for(uint64_t tables)
{
	return tables <= 64 ? 0 : (tables - 64 + 511) / 512;
}

static void map_strided(struct sim_pgtable *pgt, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)	/* a leaf table each */
		cr_assert_eq(sim_pgtable_map(pgt, (uint64_t)i * SZ_2M, SZ_4K,
					     HVA_BASE, RW), 0);
}

static void unmap_strided(struct sim_pgtable *pgt, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		cr_assert_eq(sim_pgtable_unmap(pgt, (uint64_t)i * SZ_2M, SZ_4K),
			     (int64_t)SZ_4K);
	sim_gp_synchronize();
	sim_pgtable_reclaim(pgt);
}

Test(sim_pgtable, large_table_pages_from_chunks)
{
	struct sim_pgtable *pgt = new_pgt(48, ALL_SIZES, 0);
	struct sim_pgt_stats st;
	uint64_t peak;

	map_strided(pgt, 20);
	cr_assert_eq(stats(pgt).chunks, 0, "a small table maps no chunk");
	unmap_strided(pgt, 20);

	map_strided(pgt, 1200);
	st = stats(pgt);
	cr_assert_gt(st.tables, 1200);
	cr_assert_eq(st.chunks, chunks_for(st.tables), "%lu tables, %lu chunks",
		     (unsigned long)st.tables, (unsigned long)st.chunks);
	peak = st.chunks;
	for (unsigned int i = 0; i < 1200; i += 97)
		expect_leaf(pgt, (uint64_t)i * SZ_2M, 1, HVA_BASE);

	unmap_strided(pgt, 1200);
	st = stats(pgt);
	cr_assert_eq(st.tables, 1);
	/* at most the chunk of the few freed tables kept for reuse */
	cr_assert_leq(st.chunks, 1, "empty chunks must be unmapped");

	map_strided(pgt, 1200);
	cr_assert_leq(stats(pgt).chunks, peak, "a refill must reuse chunks");
	sim_pgtable_destroy(pgt);	/* ASan: every page and chunk back */
}

Test(sim_pgtable, enomem_all_or_nothing)
{
	struct sim_pgtable *pgt;
	struct sim_pgt_stats st;
	struct sim_xlate x;
	int n, ret;

	/* map: needs several tables; fail each allocation in turn. */
	for (n = 0;; n++) {
		pgt = new_pgt(48, ALL_SIZES, 0);
		cr_assert_eq(sim_pgtable_map(pgt, 0, SZ_4K, HVA_BASE, RW), 0);
		sim_pgtable_fail_alloc_after(pgt, n);
		ret = sim_pgtable_map(pgt, 512 * SZ_1G - SZ_4K,
				      2 * SZ_4K + SZ_1G, HVA_BASE, RW);
		if (!ret)
			break;
		cr_assert_eq(ret, -ENOMEM);
		st = stats(pgt);
		cr_assert_eq(st.mapped_bytes, SZ_4K);
		cr_assert_eq(st.tables, 4);
		sim_pgtable_destroy(pgt);
	}
	cr_assert_geq(n, 5, "expected >= 5 allocations, got %d", n);
	sim_pgtable_destroy(pgt);

	/* unmap that must split twice: fails cleanly, then succeeds. */
	for (n = 0;; n++) {
		pgt = new_pgt(48, ALL_SIZES, 0);
		cr_assert_eq(sim_pgtable_map(pgt, SZ_1G, SZ_1G, HVA_BASE, RW),
			     0);
		sim_pgtable_fail_alloc_after(pgt, n);
		ret = sim_pgtable_unmap(pgt, SZ_1G + SZ_2M + SZ_4K, SZ_4K);
		if (ret >= 0)
			break;
		cr_assert_eq(ret, -ENOMEM);
		st = stats(pgt);
		cr_assert_eq(st.leaves_1g, 1);
		cr_assert_eq(st.splits, 0);
		expect_leaf(pgt, SZ_1G + SZ_2M + SZ_4K, 3,
			    HVA_BASE + SZ_2M + SZ_4K);
		sim_pgtable_destroy(pgt);
	}
	cr_assert_eq(ret, (int64_t)SZ_4K);
	cr_assert_geq(n, 2);
	cr_assert_eq(sim_pgtable_walk(pgt, SZ_1G + SZ_2M + SZ_4K, &x), -ENOENT);
	sim_pgtable_destroy(pgt);
}

/* ------------------------------------------------------------------ */
/* Randomized against a per-page reference                             */
/* ------------------------------------------------------------------ */

#define R_PAGES (1UL << 20)		/* 4 GiB of IOVA */

struct ref {
	uint64_t *pte;			/* hva | prot, 0 = hole */
	uint64_t present;
};

static bool ref_any(struct ref *r, uint64_t first, uint64_t n)
{
	for (uint64_t i = first; i < first + n; i++)
		if (r->pte[i])
			return true;
	return false;
}

static void ref_check_page(struct sim_pgtable *pgt, struct ref *r,
			   uint64_t pg)
{
	struct sim_xlate x;
	int ret = sim_pgtable_walk(pgt, pg << 12, &x);

	if (!r->pte[pg]) {
		cr_assert_eq(ret, -ENOENT, "page %#lx should be a hole",
			     (unsigned long)pg);
		return;
	}
	cr_assert_eq(ret, 0, "page %#lx should be mapped", (unsigned long)pg);
	cr_assert_eq(x.hva + ((pg << 12) - x.iova), r->pte[pg] & ~0xfffULL,
		     "page %#lx hva", (unsigned long)pg);
	cr_assert_eq(x.pte & RW, r->pte[pg] & RW);
	/* The leaf chosen must be allowed by its alignment. */
	cr_assert_eq(x.iova & (x.size - 1), 0);
	cr_assert_eq(x.hva & (x.size - 1), 0);
}

static void ref_check_range(struct sim_pgtable *pgt, struct ref *r,
			    uint64_t first, uint64_t n)
{
	uint64_t lo = first > 600 ? first - 600 : 0;
	uint64_t hi = first + n + 600 < R_PAGES ? first + n + 600 : R_PAGES;

	for (uint64_t pg = lo; pg < hi; pg++)
		ref_check_page(pgt, r, pg);
}

static uint64_t rnd64(void)
{
	return ((uint64_t)rand() << 31) ^ (uint64_t)rand();
}

/* Pick a range: small, 2 MiB-ish or 1 GiB-ish, sometimes misaligned. */
static void pick_range(uint64_t *first, uint64_t *n)
{
	int kind = rand() % 10;

	if (kind < 5) {
		*n = 1 + rand() % 64;
		*first = rnd64() % (R_PAGES - *n);
	} else if (kind < 9) {
		*n = 512 * (1 + rand() % 3) + (rand() % 4 ? 0 : rand() % 3);
		*first = (rnd64() % (R_PAGES / 512 - 4)) * 512 +
			 (rand() % 4 ? 0 : rand() % 512);
	} else {
		*n = (1UL << 18) + (rand() % 2 ? 0 : 512);
		*first = (uint64_t)(rand() % 3) << 18;
	}
}

Test(sim_pgtable, randomized_vs_reference, .timeout = 120)
{
	struct sim_pgtable *pgt = new_pgt(39, ALL_SIZES, 0);
	struct ref r = { .pte = calloc(R_PAGES, sizeof(uint64_t)) };
	struct sim_pgt_stats st;
	uint64_t first, n, hva, prot, i, cnt;
	int64_t bytes;
	unsigned int op;
	int ret;

	cr_assert_not_null(r.pte);
	srand(12345);
	for (op = 0; op < 3000; op++) {
		pick_range(&first, &n);
		if (rand() % 2) {
			/* hva congruent to iova (large leaves possible) or
			 * shifted by some pages (4 KiB leaves only). */
			hva = HVA_BASE + (first << 12) +
			      (rand() % 3 ? 0 : (uint64_t)(1 + rand() % 7) << 12);
			prot = rand() % 4 ? RW : SIM_PROT_READ;
			ret = sim_pgtable_map(pgt, first << 12, n << 12, hva,
					      prot);
			if (ref_any(&r, first, n)) {
				cr_assert_eq(ret, -EEXIST, "op %u", op);
			} else {
				cr_assert_eq(ret, 0, "op %u", op);
				for (i = 0; i < n; i++)
					r.pte[first + i] = (hva + (i << 12)) |
							   prot;
				r.present += n;
			}
		} else {
			bytes = sim_pgtable_unmap(pgt, first << 12, n << 12);
			for (i = 0, cnt = 0; i < n; i++) {
				cnt += r.pte[first + i] != 0;
				r.pte[first + i] = 0;
			}
			r.present -= cnt;
			cr_assert_eq(bytes, (int64_t)(cnt << 12), "op %u", op);
		}
		st = stats(pgt);
		cr_assert_eq(st.mapped_bytes, r.present << 12, "op %u", op);
		cr_assert_eq(st.bad_counts, 0, "op %u: a table's count of "
			     "present entries is wrong", op);
		ref_check_range(pgt, &r, first, n > 2048 ? 2048 : n);
		if (op % 1000 == 999)
			for (i = 0; i < R_PAGES; i++)
				ref_check_page(pgt, &r, i);
	}
	cr_assert_geq(sim_pgtable_unmap(pgt, 0, R_PAGES << 12), 0);
	cr_assert_eq(stats(pgt).tables, 1);
	free(r.pte);
	sim_pgtable_destroy(pgt);
}

/* ------------------------------------------------------------------ */
/* Concurrent walkers never see a hole while leaves are split          */
/* ------------------------------------------------------------------ */

#define C_LEAVES 8			/* 8 x 2 MiB */
#define C_PAGES (C_LEAVES * 512)
#define C_IOVA SZ_1G

struct walk_shared {
	struct sim_pgtable *pgt;
	uint8_t removing[C_PAGES];	/* set before unmap starts */
	int stop;
	unsigned long walks;
	unsigned long bad;
	unsigned long progress;		/* walks so far, all walkers */
};

static void *walker(void *arg)
{
	struct walk_shared *s = arg;
	unsigned int seed = (unsigned int)(uintptr_t)&seed;
	unsigned long walks = 0, bad = 0;
	struct sim_xlate x;
	unsigned int pg;
	int ret;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		pg = rand_r(&seed) % C_PAGES;
		sim_gp_read_lock();
		ret = sim_pgtable_walk(s->pgt, C_IOVA + (uint64_t)pg * SZ_4K,
				       &x);
		/* Checked inside the section: the writer clears removing[]
		 * only after a grace period following the remap. */
		if (ret && !__atomic_load_n(&s->removing[pg],
					    __ATOMIC_ACQUIRE))
			bad++;
		sim_gp_read_unlock();
		walks++;
		__atomic_fetch_add(&s->progress, 1, __ATOMIC_RELAXED);
		if (ret == 0 && x.hva + (C_IOVA + (uint64_t)pg * SZ_4K -
					 x.iova) != HVA_BASE + pg * SZ_4K)
			bad++;
	}
	__atomic_fetch_add(&s->walks, walks, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->bad, bad, __ATOMIC_RELAXED);
	return NULL;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

Test(sim_pgtable, concurrent_split_no_hole, .timeout = 120)
{
	struct walk_shared *s = calloc(1, sizeof(*s));
	pthread_t th[2];
	unsigned int round, k, pg;
	struct timespec t0;

	srand(99);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(sim_pgtable_create(48, ALL_SIZES, 0, &s->pgt), 0);
	cr_assert_eq(sim_pgtable_map(s->pgt, C_IOVA, C_PAGES * SZ_4K,
				     HVA_BASE, RW), 0);
	for (k = 0; k < 2; k++)
		pthread_create(&th[k], NULL, walker, s);
	/*
	 * At least 40 rounds and 500 ms, and as long as the walkers need
	 * for their 1000 walks (a loaded machine may starve them; the
	 * test's timeout bounds a hang).
	 */
	for (round = 0; round < 40 || elapsed_ms(&t0) < 500 ||
	     __atomic_load_n(&s->progress, __ATOMIC_RELAXED) <= 1000;
	     round++) {
		/* Punch holes (splitting leaves), then restore 2 MiB leaves
		 * by unmapping whole leaves and mapping them again. */
		for (k = 0; k < 24; k++) {
			pg = rand() % C_PAGES;
			__atomic_store_n(&s->removing[pg], 1, __ATOMIC_RELEASE);
			sim_pgtable_unmap(s->pgt, C_IOVA + (uint64_t)pg * SZ_4K,
					  SZ_4K);
		}
		sim_gp_synchronize();
		sim_pgtable_reclaim(s->pgt);
		for (k = 0; k < C_LEAVES; k++) {
			uint64_t off = (uint64_t)k * SZ_2M;
			bool holes = false;

			for (pg = k * 512; pg < (k + 1) * 512; pg++)
				holes |= s->removing[pg];
			if (!holes)
				continue;
			for (pg = k * 512; pg < (k + 1) * 512; pg++)
				__atomic_store_n(&s->removing[pg], 1,
						 __ATOMIC_RELEASE);
			sim_pgtable_unmap(s->pgt, C_IOVA + off, SZ_2M);
			cr_assert_eq(sim_pgtable_map(s->pgt, C_IOVA + off,
						     SZ_2M, HVA_BASE + off, RW),
				     0);
			/* Only now may walkers demand presence again. */
			sim_gp_synchronize();
			for (pg = k * 512; pg < (k + 1) * 512; pg++)
				__atomic_store_n(&s->removing[pg], 0,
						 __ATOMIC_RELEASE);
		}
	}
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	cr_assert_gt(s->walks, 1000);
	cr_assert_eq(s->bad, 0, "walkers saw %lu holes/bad translations",
		     s->bad);
	cr_assert_geq(stats(s->pgt).splits, 40);
	sim_pgtable_destroy(s->pgt);
	free(s);
}
