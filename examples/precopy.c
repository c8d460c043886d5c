/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A live migration's pre-copy loop with a device that keeps writing guest
 * memory (the simulated NIC 0000:00:01.0 of the built-in topology):
 *
 *   1. start dirty tracking of the guest's IOAS;
 *   2. copy all of guest RAM to the "destination" while the device writes;
 *   3. read-and-clear the dirty bitmap, copy what it names, again, until
 *      the dirty set is small (it converges: the device rewrites a small
 *      working set) or stops shrinking;
 *   4. copy the last round's pages, stop the device (it writes back its
 *      descriptors as it stops), and take the last dirty bits with the
 *      unmap of guest RAM (ioasid_unmap_get_dirty: the final state of
 *      what leaves the IOAS), copy those pages;
 *   5. stop tracking and check the destination byte for byte.
 *
 * The device writes at a fixed rate measured in the migration's own
 * progress: one 64-byte DMA write per RATE pages copied, to a page of its
 * working set (HOT pages), so a run is reproducible; times are measured
 * and printed, never judged.  Exits 0 only when the loop converged and the
 * destination equals the source.
 *
 * The IOAS is page-granular (4 KiB IOPTEs): with 2 MiB IOPTEs the dirty
 * granularity is 2 MiB, and each write of the device dirties 512 pages.
 *
 * Usage: precopy [URI]   (default: $IOASID_URI, else "sim")
 */
#define _GNU_SOURCE	/* memfd_create(); the examples build on their own */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libioasid.h>

#define NIC		"0000:00:01.0"
#define PAGE		4096ULL
#define RAM_BYTES	(32ULL << 20)		/* 8192 pages */
#define RAM_IOVA	(1ULL << 30)
#define PAGES		(RAM_BYTES / PAGE)
#define RATE		16			/* pages copied per device write */
#define HOT		128			/* the device's working set */
#define CONVERGED	32			/* dirty pages small enough */
#define MAX_ROUNDS	10
#define DESCRIPTORS	4			/* written back when stopped */

static struct ioasid_ctx *ctx;
static uint32_t ioas, nic;
static uint64_t writes, copied_since;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(const char *what, int r)
{
	fprintf(stderr, "precopy: %s: %s (%s)\n", what, strerror(-r),
		ioasid_last_error(ctx));
	return 1;
}

/* The device's share of the traffic: one write per RATE pages copied. */
static int device_keeps_writing(void)
{
	uint8_t stamp[64];
	uint64_t done;
	int r;

	while (copied_since >= RATE) {
		uint64_t page = HOT + (writes * 37) % HOT;	/* pages 128..255 */

		copied_since -= RATE;
		memset(stamp, (int)(writes & 0xff), sizeof(stamp));
		memcpy(stamp, &writes, sizeof(writes));
		r = ioasid_device_dma(ctx, nic, RAM_IOVA + page * PAGE +
				      (writes % 32) * 64, stamp, sizeof(stamp),
				      IOASID_DMA_WRITE, &done);
		if (r < 0)
			return r;
		writes++;
	}
	return 0;
}

/* Copy one page to the destination; the device writes meanwhile. */
static int copy_page(uint8_t *dst, const uint8_t *ram, uint64_t page,
		     bool device_on)
{
	memcpy(dst + page * PAGE, ram + page * PAGE, PAGE);
	copied_since++;
	return device_on ? device_keeps_writing() : 0;
}

static uint64_t popcount(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

static int copy_dirty(uint8_t *dst, const uint8_t *ram, const uint64_t *bm,
		      bool device_on)
{
	int r = 0;

	for (uint64_t p = 0; p < PAGES && r == 0; p++)
		if (bm[p / 64] & (1ULL << (p % 64)))
			r = copy_page(dst, ram, p, device_on);
	return r;
}

static int setup(const char *uri, int *fd, uint8_t **ram)
{
	uint64_t iova = RAM_IOVA;
	int r;

	r = ioasid_new(uri, &ctx);
	if (r < 0) {
		fprintf(stderr, "precopy: cannot open %s: %s\n",
			uri ? uri : "the default backend", strerror(-r));
		return r;
	}
	*fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*fd < 0 || ftruncate(*fd, RAM_BYTES) < 0)
		return -errno;
	*ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, *fd,
		    0);
	if (*ram == MAP_FAILED)
		return -errno;
	for (uint64_t p = 0; p < PAGES; p++)	/* a guest that ran a while */
		memset(*ram + p * PAGE, (int)(p * 7 + 1), PAGE);
	/*
	 * 4 KiB IOPTEs only: a write through a 2 MiB IOPTE dirties all its
	 * 512 pages (as on real IOMMUs), which would make every round copy
	 * 2 MiB per page the device touched.
	 */
	r = ioasid_ioas_alloc(ctx, IOASID_IOAS_PAGE_GRANULAR, &ioas) ?:
	    ioasid_map_file(ctx, ioas, *fd, 0, RAM_BYTES, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA, &iova) ?:
	    ioasid_device_bind(ctx, NIC, -1, &nic) ?:
	    ioasid_device_attach(ctx, nic, ioas, 0);
	return r;
}

int main(int argc, char **argv)
{
	const uint64_t words = PAGES / 64;
	uint64_t *bm = calloc(words, sizeof(*bm)), dirty = PAGES, last;
	uint8_t *ram = NULL, *dst = malloc(RAM_BYTES);
	int fd = -1, r, round;
	bool converged = false;
	double t;

	if (!bm || !dst)
		return 1;
	r = setup(argc > 1 ? argv[1] : NULL, &fd, &ram);
	if (r < 0)
		return ctx ? fail("setting up the guest", r) : 1;
	printf("guest RAM %llu MiB (%llu pages) at IOVA 0x%llx; the device "
	       "writes one page of %u per %u pages copied\n",
	       (unsigned long long)(RAM_BYTES >> 20),
	       (unsigned long long)PAGES, (unsigned long long)RAM_IOVA, HOT,
	       RATE);

	r = ioasid_dirty_start(ctx, ioas, 0);
	if (r < 0)
		return fail("ioasid_dirty_start", r);

	/* round 0: everything */
	t = now_ms();
	for (uint64_t p = 0; p < PAGES && r == 0; p++)
		r = copy_page(dst, ram, p, true);
	if (r < 0)
		return fail("device DMA", r);
	printf("round 0: copied all %llu pages in %.1f ms, the device wrote "
	       "%llu times\n", (unsigned long long)PAGES, now_ms() - t,
	       (unsigned long long)writes);

	for (round = 1; round <= MAX_ROUNDS; round++) {
		last = dirty;
		t = now_ms();
		r = ioasid_dirty_read(ctx, ioas, RAM_IOVA, RAM_BYTES, bm, 0);
		if (r < 0)
			return fail("ioasid_dirty_read", r);
		dirty = popcount(bm, words);
		printf("round %d: read-and-clear of %llu pages (a %llu-byte "
		       "bitmap) in %.3f ms: %llu dirty\n", round,
		       (unsigned long long)PAGES,
		       (unsigned long long)(words * 8), now_ms() - t,
		       (unsigned long long)dirty);
		if (dirty <= CONVERGED) {
			converged = true;
			break;
		}
		if (dirty >= last) {
			printf("round %d: the dirty set stopped shrinking\n",
			       round);
			break;
		}
		r = copy_dirty(dst, ram, bm, true);
		if (r < 0)
			return fail("device DMA", r);
	}

	/*
	 * Stop-and-copy.  The last round's pages are copied while the device
	 * still runs; then it is quiesced, and on the way it writes back its
	 * DESCRIPTORS descriptor pages (as a NIC completes what it had in
	 * flight).  Those come with the unmap of guest RAM.
	 */
	r = copy_dirty(dst, ram, bm, true);
	for (uint64_t d = 0; d < DESCRIPTORS && r == 0; d++) {
		uint64_t done, v = writes++;

		r = ioasid_device_dma(ctx, nic, RAM_IOVA + (PAGES - 1 - d) *
				      PAGE, &v, sizeof(v), IOASID_DMA_WRITE,
				      &done);
	}
	if (r < 0)
		return fail("device DMA", r);
	r = ioasid_unmap_get_dirty(ctx, ioas, RAM_IOVA, RAM_BYTES, 0, bm,
				   NULL);
	if (r < 0)
		return fail("ioasid_unmap_get_dirty", r);
	printf("stop-and-copy: %llu pages from the last read, then the "
	       "device stopped; %llu more from the unmap\n",
	       (unsigned long long)dirty,
	       (unsigned long long)popcount(bm, words));
	copy_dirty(dst, ram, bm, false);
	r = ioasid_dirty_stop(ctx, ioas);
	if (r < 0)
		return fail("ioasid_dirty_stop", r);

	r = memcmp(dst, ram, RAM_BYTES) == 0;
	printf("%s after %d round(s); %llu device writes; the destination %s "
	       "the source\n", converged ? "converged" : "did not converge",
	       round > MAX_ROUNDS ? MAX_ROUNDS : round,
	       (unsigned long long)writes, r ? "equals" : "DIFFERS FROM");
	munmap(ram, RAM_BYTES);
	close(fd);
	free(dst);
	free(bm);
	ioasid_unref(ctx);
	return converged && r ? 0 : 1;
}
