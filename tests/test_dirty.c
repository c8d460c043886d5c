/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dirty tracking for live migration through the public API, on the
 * simulated IOMMU: start/stop per IOAS (all or nothing, the fallback for
 * domains that cannot track, domains that come later), read with and
 * without clear, the unmap that returns the dirty bits of what it
 * removes, bitmaps for a 64 GiB guest, and what other sessions cannot
 * see.  Runs unchanged against ioasidd (tests/conformance-test_dirty.sh),
 * where bitmaps over one message go through a memfd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define PG 4096ULL
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA
#define FALLBACK IOASID_DIRTY_START_FALLBACK

/* Devices of the built-in topology (libioasid/backends/sim/topology.c) */
#define NIC "0000:00:01.0"	/* sim0: dirty tracking */
#define NVME "0000:01:02.0"	/* sim1: none */

static uint32_t bind(struct ioasid_ctx *ctx, const char *name)
{
	uint32_t id = 0;

	cr_assert_eq(ioasid_device_bind(ctx, name, -1, &id), 0, "bind %s: %s",
		     name, ioasid_last_error(ctx));
	return id;
}

static uint32_t dirty_flags(struct ioasid_ctx *ctx, uint32_t ioas)
{
	struct ioasid_ioas_info info;

	cr_assert_eq(ioasid_ioas_get_info(ctx, ioas, &info), 0);
	return info.dirty_flags;
}

/* How many domains of @ioas track now, and how many could. */
static void domains_tracking(struct ioasid_ctx *ctx, uint32_t ioas,
			     uint32_t *on, uint32_t *can)
{
	struct ioasid_domain_info d[4];
	uint32_t nr = 4;

	cr_assert_eq(ioasid_domain_list(ctx, ioas, d, &nr), 0);
	*on = *can = 0;
	for (uint32_t i = 0; i < nr; i++) {
		*on += !!(d[i].flags & IOASID_DOMAIN_DIRTY_ON);
		*can += !!(d[i].flags & IOASID_DOMAIN_DIRTY_TRACKING);
	}
}

static void dma_write(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova)
{
	uint8_t buf[64] = { 0x5a };
	uint64_t done = 0;

	cr_assert_eq(ioasid_device_dma(ctx, dev, iova, buf, sizeof(buf),
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
}

static void expect_error(struct ioasid_ctx *ctx, int r, int want,
			 const char *needle)
{
	cr_assert_eq(r, want, "got %d (%s), want %d", r,
		     ioasid_last_error(ctx), want);
	cr_assert(strstr(ioasid_last_error(ctx), needle), "reason '%s' lacks "
		  "'%s'", ioasid_last_error(ctx), needle);
}

static unsigned int popcount(const uint64_t *bm, size_t words)
{
	unsigned int n = 0;

	for (size_t i = 0; i < words; i++)
		n += (unsigned int)__builtin_popcountll(bm[i]);
	return n;
}

/* ---- start and stop -------------------------------------------------- */

Test(dirty, start_stop_and_their_errors)
{
	uint32_t ioas, on, can;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(MiB);
	uint64_t iova = 16 * MiB, bm[4];

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(dirty_flags(ctx, ioas), 0);
	expect_error(ctx, ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0),
		     -EINVAL, "not on");
	expect_error(ctx, ioasid_dirty_stop(ctx, ioas), -EINVAL, "not on");
	expect_error(ctx, ioasid_dirty_start(ctx, ioas, 0x80), -EOPNOTSUPP,
		     "unknown");
	expect_error(ctx, ioasid_dirty_start(ctx, 999999, 0), -ENOENT, "");
	cr_assert_eq(dirty_flags(ctx, ioas), 0, "refusals change nothing");

	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(dirty_flags(ctx, ioas), IOASID_IOAS_DIRTY_ON);
	domains_tracking(ctx, ioas, &on, &can);
	cr_assert_eq(on, 1);
	cr_assert_eq(can, 1);
	expect_error(ctx, ioasid_dirty_start(ctx, ioas, 0), -EBUSY,
		     "already on");
	cr_assert_eq(ioasid_dirty_stop(ctx, ioas), 0);
	cr_assert_eq(dirty_flags(ctx, ioas), 0);
	domains_tracking(ctx, ioas, &on, &can);
	cr_assert_eq(on, 0, "stop turns every domain off");
	close(fd);
	ioasid_unref(ctx);
}

/* Writes while stopped are never reported; a start begins clean. */
Test(dirty, writes_count_only_while_on)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(MiB);
	uint64_t iova = 16 * MiB, bm[4];

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	dma_write(ctx, nic, iova + 3 * PG);		/* before: not seen */
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(popcount(bm, 4), 0, "a start begins clean");
	dma_write(ctx, nic, iova + 5 * PG);
	dma_write(ctx, nic, iova + 70 * PG);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm,
				       IOASID_DIRTY_NO_CLEAR), 0);
	cr_assert_eq(bm[0], 1ULL << 5);
	cr_assert_eq(bm[1], 1ULL << 6);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(bm[0], 1ULL << 5, "NO_CLEAR kept them");
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(popcount(bm, 4), 0, "cleared by the read");
	/* stopped: a write leaves no trace, not even after a restart */
	cr_assert_eq(ioasid_dirty_stop(ctx, ioas), 0);
	dma_write(ctx, nic, iova + 9 * PG);
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(popcount(bm, 4), 0);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- domains that cannot track --------------------------------------- */

/* One domain without tracking refuses the start for all: nothing on. */
Test(dirty, start_is_all_or_nothing)
{
	uint32_t ioas, on, can;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC), nvme = bind(ctx, NVME);
	int fd = test_memfd(MiB);
	uint64_t iova = 16 * MiB, bm[8];

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nvme, ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	expect_error(ctx, ioasid_dirty_start(ctx, ioas, 0), -EOPNOTSUPP,
		     "no dirty tracking");
	cr_assert_eq(dirty_flags(ctx, ioas), 0);
	domains_tracking(ctx, ioas, &on, &can);
	cr_assert_eq(on, 0, "the NIC's domain was turned off again");
	cr_assert_eq(can, 1, "one of the two domains could");

	/* the fallback: the untracked domain reports everything mapped */
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, FALLBACK), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(dirty_flags(ctx, ioas), IOASID_IOAS_DIRTY_ON |
		     IOASID_IOAS_DIRTY_FALLBACK | IOASID_IOAS_DIRTY_UNTRACKED);
	domains_tracking(ctx, ioas, &on, &can);
	cr_assert_eq(on, 1);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova - MiB, 2 * MiB,
					       bm, 0), 0);
		cr_assert_eq(popcount(bm, 4), 0, "below the mapping nothing");
		cr_assert_eq(popcount(bm + 4, 4), 256);
		cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0),
			     0);
		cr_assert_eq(popcount(bm, 4), 256, "every mapped page, every "
			     "round");
	}
	/* the untracked domain goes: the rest reads as tracked */
	cr_assert_eq(ioasid_device_detach(ctx, nvme), 0);
	cr_assert_eq(dirty_flags(ctx, ioas), IOASID_IOAS_DIRTY_ON |
		     IOASID_IOAS_DIRTY_FALLBACK);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(popcount(bm, 4), 0);
	close(fd);
	ioasid_unref(ctx);
}

/* A domain that comes while tracking is on tracks, or the attach fails. */
Test(dirty, later_domains_follow_the_ioas)
{
	uint32_t ioas, on, can;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC), nvme = bind(ctx, NVME);
	int fd = test_memfd(MiB);
	uint64_t iova = 16 * MiB, bm[4];

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0, "no domain yet");
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	domains_tracking(ctx, ioas, &on, &can);
	cr_assert_eq(on, 1, "the new domain tracks");
	dma_write(ctx, nic, iova);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(bm[0], 1);
	expect_error(ctx, ioasid_device_attach(ctx, nvme, ioas, 0),
		     -EOPNOTSUPP, "no dirty tracking");
	cr_assert_eq(ioasid_domain_list(ctx, ioas, NULL, &on) == -EMSGSIZE ||
		     on == 1, 1);
	/* with the fallback it joins, untracked */
	cr_assert_eq(ioasid_dirty_stop(ctx, ioas), 0);
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, FALLBACK), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nvme, ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert(dirty_flags(ctx, ioas) & IOASID_IOAS_DIRTY_UNTRACKED);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(popcount(bm, 4), 256);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- unmap that returns the dirty bits ------------------------------- */

Test(dirty, unmap_returns_the_bits_it_removes)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(MiB);
	uint64_t iova = 16 * MiB, bm[4], unmapped = 0;

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	expect_error(ctx, ioasid_unmap_get_dirty(ctx, ioas, iova, 64 * PG, 0,
						 bm, NULL), -EINVAL, "not on");
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	dma_write(ctx, nic, iova + 2 * PG);
	dma_write(ctx, nic, iova + 40 * PG);
	dma_write(ctx, nic, iova + 100 * PG);	/* stays mapped */
	memset(bm, 0xff, sizeof(bm));
	cr_assert_eq(ioasid_unmap_get_dirty(ctx, ioas, iova, 64 * PG, 0, bm,
					    &unmapped), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(unmapped, 64 * PG);
	cr_assert_eq(bm[0], (1ULL << 2) | (1ULL << 40), "0x%llx",
		     (unsigned long long)bm[0]);
	cr_assert_eq(bm[1], 0xffffffffffffffffULL, "past the bitmap untouched");
	/* the bits left with the pages: the rest still reports its own */
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(bm[0], 0);
	cr_assert_eq(bm[1], 1ULL << 36);
	/* nothing mapped: ENOENT, or 0 bytes and no bits with MISSING_OK */
	expect_error(ctx, ioasid_unmap_get_dirty(ctx, ioas, iova, 64 * PG, 0,
						 bm, NULL), -ENOENT,
		     "nothing is mapped");
	bm[0] = 7;
	cr_assert_eq(ioasid_unmap_get_dirty(ctx, ioas, iova, 64 * PG,
					    IOASID_UNMAP_MISSING_OK, bm,
					    &unmapped), 0);
	cr_assert_eq(unmapped, 0);
	cr_assert_eq(bm[0], 0);
	/* refusals */
	expect_error(ctx, ioasid_unmap_get_dirty(ctx, ioas, iova, 64 * PG, 0,
						 NULL, NULL), -EINVAL, "NULL");
	expect_error(ctx, ioasid_unmap_get_dirty(ctx, ioas, iova + 1, PG, 0,
						 bm, NULL), -EINVAL, "aligned");
	expect_error(ctx, ioasid_unmap_get_dirty(ctx, ioas, 0, UINT64_MAX, 0,
						 bm, NULL), -EINVAL, "");
	expect_error(ctx, ioasid_unmap_get_dirty(ctx, ioas, iova, PG, 0x40, bm,
						 NULL), -EOPNOTSUPP, "unknown");
	expect_error(ctx, ioasid_unmap(ctx, ioas, iova, PG,
				       IOASID_UNMAP_GET_DIRTY, NULL), -EINVAL,
		     "ioasid_unmap_get_dirty");
	close(fd);
	ioasid_unref(ctx);
}

/* A write into a 2 MiB IOPTE marks all its pages, in a read and an unmap. */
Test(dirty, large_leaf_marks_all_its_pages)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(4 * MiB);
	uint64_t iova = 2 * MiB, bm[16];

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4 * MiB, RW | FIXED,
				     &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	dma_write(ctx, nic, iova + 7 * PG);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, 2 * MiB, bm, 0), 0);
	cr_assert_eq(popcount(bm, 8), 512);
	dma_write(ctx, nic, iova + 2 * MiB + PG);
	/* an unmap of 16 pages cuts the dirty leaf: all 16 reported */
	cr_assert_eq(ioasid_unmap_get_dirty(ctx, ioas, iova + 2 * MiB + 32 * PG,
					    16 * PG, 0, bm, NULL), 0);
	cr_assert_eq(bm[0], 0xffffULL);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- a 64 GiB guest ----------------------------------------------------- */

/*
 * 64 GiB of IOVA is a 2 MiB bitmap: through ioasidd far more than one
 * message, so it goes through shared memory; the bits are where the
 * device wrote, in a read and in an unmap of the whole span.
 */
Test(dirty, bitmaps_for_64_gib)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(2 * MiB);
	const uint64_t span = 64 * GiB, words = span / PG / 64;
	uint64_t lo = 4 * GiB, hi = 60 * GiB + 3 * MiB, *bm, unmapped = 0;
	uint64_t p;

	bm = calloc(words, sizeof(*bm));
	cr_assert_not_null(bm);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &lo),
		     0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, MiB, MiB, RW | FIXED, &hi),
		     0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	dma_write(ctx, nic, lo + 5 * PG);
	dma_write(ctx, nic, hi + 200 * PG);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, 0, span, bm,
				       IOASID_DIRTY_NO_CLEAR), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(popcount(bm, words), 2);
	p = (lo + 5 * PG) / PG;
	cr_assert(bm[p / 64] & (1ULL << (p % 64)));
	p = (hi + 200 * PG) / PG;
	cr_assert(bm[p / 64] & (1ULL << (p % 64)));
	memset(bm, 0xff, words * 8);
	cr_assert_eq(ioasid_unmap_get_dirty(ctx, ioas, 0, span, 0, bm,
					    &unmapped), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(unmapped, 2 * MiB);
	cr_assert_eq(popcount(bm, words), 2, "the same two, and no others");
	cr_assert(bm[p / 64] & (1ULL << (p % 64)));
	/* too small a bitmap is refused by the library: 4 GiB and more */
	expect_error(ctx, ioasid_dirty_read(ctx, ioas, 0, 1ULL << 47, bm, 0),
		     -EINVAL, "4 GiB");
	free(bm);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- isolation --------------------------------------------------------- */

/* Another context (another session through ioasidd) sees none of it. */
Test(dirty, other_sessions_cannot_touch_it)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	struct ioasid_ctx *other = test_ctx();
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(MiB);
	uint64_t iova = 16 * MiB, bm[4];

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	dma_write(ctx, nic, iova);
	cr_assert_eq(ioasid_dirty_start(other, ioas, 0), -ENOENT);
	cr_assert_eq(ioasid_dirty_stop(other, ioas), -ENOENT);
	cr_assert_eq(ioasid_dirty_read(other, ioas, iova, MiB, bm, 0),
		     -ENOENT);
	cr_assert_eq(ioasid_unmap_get_dirty(other, ioas, iova, MiB, 0, bm,
					    NULL), -ENOENT);
	/* and nothing it tried cleared or stopped anything */
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bm, 0), 0);
	cr_assert_eq(bm[0], 1);
	ioasid_unref(other);
	close(fd);
	ioasid_unref(ctx);
}
