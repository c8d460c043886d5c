/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fast path through a real ioasidd: lookups and walks answered from
 * the session's shared view (libioasid/proto/view.h).
 *
 *  - the view answers while the daemon is stopped (SIGSTOP): no round
 *    trip behind it;
 *  - after every kind of change (map, batch, cut, copy, unmap, unmap
 *    all, destroy) the view's walk equals the daemon's, as an observer
 *    without the fast path (IOASID_NO_FASTPATH=1) sees it over the socket;
 *  - a second session's view holds none of the first's mappings.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "daemon_fixture.h"
#include "helpers.h"
#include "libioasid.h"

#define PG	4096ULL

static struct daemon_fixture d;

static void start(void)
{
	struct daemon_opts o = {
		.config = "[default]\nobserve = yes\nmax-mappings = unlimited\n",
	};

	cr_assert_eq(daemon_start(&d, &o), 0, "ioasidd must start");
}

static void stop(void)
{
	if (d.pid > 0)
		kill(d.pid, SIGCONT);
	cr_assert_eq(daemon_stop(&d), 0, "ioasidd must exit cleanly");
}

static struct ioasid_ctx *connect_ctx(bool fastpath)
{
	struct ioasid_ctx *ctx = NULL;
	int r;

	if (!fastpath)
		setenv("IOASID_NO_FASTPATH", "1", 1);
	r = ioasid_new(d.uri, &ctx);
	unsetenv("IOASID_NO_FASTPATH");
	cr_assert_eq(r, 0, "ioasid_new(%s): %d %s", d.uri, r,
		     ioasid_last_error(NULL));
	return ctx;
}

static uint64_t map_at(struct ioasid_ctx *ctx, uint32_t ioas, int fd,
		       uint64_t iova, uint64_t off, uint64_t len)
{
	int r = ioasid_map_file(ctx, ioas, fd, off, len,
				IOASID_MAP_READ | IOASID_MAP_WRITE |
				IOASID_MAP_FIXED_IOVA, &iova);

	cr_assert_eq(r, 0, "map 0x%llx: %s", (unsigned long long)iova,
		     ioasid_last_error(ctx));
	return iova;
}

/* Every mapping both contexts list for @ioas, and lookups inside them. */
#define ANY	UINT32_MAX

static void same_walk(struct ioasid_ctx *fast, struct ioasid_ctx *slow,
		      uint32_t ioas, uint32_t expect)
{
	struct ioasid_mapping a, b;
	uint64_t iova = 0;
	uint32_t n = 0;
	int ra, rb;

	for (;;) {
		ra = ioasid_mapping_next(fast, ioas, iova, &a);
		rb = ioasid_mapping_next(slow, ioas, iova, &b);
		cr_assert_eq(ra, rb, "next(0x%llx): %d against %d (%s)",
			     (unsigned long long)iova, ra, rb,
			     ioasid_last_error(fast));
		if (ra < 0)
			break;
		cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0,
			     "mapping at 0x%llx differs",
			     (unsigned long long)a.iova);
		ra = ioasid_lookup(fast, ioas, a.iova + a.length - 1, &a);
		cr_assert_eq(ra, 0);
		cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
		n++;
		iova = a.iova + a.length;
	}
	cr_assert_eq(ra, -ENOENT);
	cr_assert(expect == ANY || n == expect, "%u mappings, expected %u", n,
		  expect);
	/* a hole answers -ENOENT with the daemon's words */
	ra = ioasid_lookup(fast, ioas, 1ULL << 47, &a);
	rb = ioasid_lookup(slow, ioas, 1ULL << 47, &b);
	cr_assert_eq(ra, -ENOENT);
	cr_assert_eq(rb, -ENOENT);
}

Test(fastpath, answers_while_the_daemon_sleeps, .init = start, .fini = stop,
     .timeout = 60)
{
	struct ioasid_ctx *ctx = connect_ctx(true);
	struct ioasid_mapping m;
	int fd = test_memfd(64 * PG);
	uint32_t ioas;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	map_at(ctx, ioas, fd, 0x100000, 0, 4 * PG);
	map_at(ctx, ioas, fd, 0x200000, 8 * PG, PG);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000, &m), 0);
	/* nothing can answer over the socket now */
	cr_assert_eq(kill(d.pid, SIGSTOP), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000 + 3 * PG + 5, &m), 0);
	cr_assert_eq(m.iova, 0x100000);
	cr_assert_eq(m.length, 4 * PG);
	cr_assert_eq(m.offset, 0);
	cr_assert_neq(m.file_id, 0);
	cr_assert_eq(m.flags & (IOASID_MAP_READ | IOASID_MAP_WRITE),
		     IOASID_MAP_READ | IOASID_MAP_WRITE);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000 + 4 * PG, &m), -ENOENT);
	cr_assert(strstr(ioasid_last_error(ctx), "is not mapped in IOAS"),
		  "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_mapping_next(ctx, ioas, 0x100000 + 4 * PG, &m), 0);
	cr_assert_eq(m.iova, 0x200000);
	cr_assert_eq(m.offset, 8 * PG);
	cr_assert_eq(ioasid_mapping_next(ctx, ioas, 0x200000 + PG, &m),
		     -ENOENT);
	cr_assert_eq(kill(d.pid, SIGCONT), 0);
	close(fd);
	ioasid_unref(ctx);
}

Test(fastpath, follows_every_change, .init = start, .fini = stop,
     .timeout = 120)
{
	struct ioasid_ctx *fast = connect_ctx(true);
	struct ioasid_ctx *slow = connect_ctx(false);
	struct ioasid_ctx *other = connect_ctx(true);
	struct ioasid_map_entry e[300];
	struct ioasid_mapping m;
	uint64_t iovas[300], unmapped, dst;
	int fd = test_memfd(1024 * PG);
	uint32_t ioas, ioas2, mine;

	cr_assert_eq(ioasid_set_observer(slow, 1), 0, "%s",
		     ioasid_last_error(slow));
	cr_assert_eq(ioasid_ioas_alloc(fast, 0, &ioas), 0);
	/* maps before the view exists: the first lookup fills its slot */
	for (uint64_t i = 0; i < 100; i++)
		map_at(fast, ioas, fd, (1 + 2 * i) * PG, i * PG, PG);
	same_walk(fast, slow, ioas, 100);
	/* more than one chunk of the view, in both directions */
	for (uint64_t i = 0; i < 200; i++)
		map_at(fast, ioas, fd, 0x10000000 - i * 2 * PG, 0, PG);
	same_walk(fast, slow, ioas, 300);
	/* a batch where IOVAs are chosen by the daemon */
	for (int i = 0; i < 300; i++)
		e[i] = (struct ioasid_map_entry){ .offset = (uint64_t)i * PG,
						  .length = PG };
	cr_assert_eq(ioasid_map_file_batch(fast, ioas, fd, e, 300,
					   IOASID_MAP_READ, iovas), 0,
		     "%s", ioasid_last_error(fast));
	same_walk(fast, slow, ioas, ANY);
	/* a cut in the middle of a large mapping */
	map_at(fast, ioas, fd, 1ULL << 40, 0, 64 * PG);
	cr_assert_eq(ioasid_unmap(fast, ioas, (1ULL << 40) + 10 * PG, 3 * PG,
				  0, &unmapped), 0, "%s",
		     ioasid_last_error(fast));
	same_walk(fast, slow, ioas, ANY);
	/* a range spanning many mappings */
	cr_assert_eq(ioasid_unmap(fast, ioas, 0, 100 * PG,
				  IOASID_UNMAP_MISSING_OK, &unmapped), 0,
		     "%s", ioasid_last_error(fast));
	same_walk(fast, slow, ioas, ANY);
	/* a refused unmap changes nothing */
	cr_assert_lt(ioasid_unmap(fast, ioas, 5, PG, 0, &unmapped), 0);
	same_walk(fast, slow, ioas, ANY);
	/* a copy into a second IOAS, allocated after the view */
	cr_assert_eq(ioasid_ioas_alloc(fast, 0, &ioas2), 0);
	same_walk(fast, slow, ioas2, 0);
	cr_assert_eq(ioasid_copy(fast, ioas2, ioas, 1ULL << 40, 10 * PG,
				 IOASID_MAP_READ, &dst), 0, "%s",
		     ioasid_last_error(fast));
	same_walk(fast, slow, ioas2, 1);
	/* another session sees none of it, and has a view of its own */
	cr_assert_eq(ioasid_lookup(other, ioas, 1ULL << 40, &m), -ENOENT);
	cr_assert_eq(ioasid_ioas_alloc(other, 0, &mine), 0);
	map_at(other, mine, fd, 1ULL << 40, 0, PG);
	cr_assert_eq(ioasid_lookup(other, mine, 1ULL << 40, &m), 0);
	same_walk(fast, slow, ioas, ANY);
	/* everything goes, then the IOAS */
	cr_assert_eq(ioasid_unmap_all(fast, ioas, &unmapped), 0);
	same_walk(fast, slow, ioas, 0);
	map_at(fast, ioas, fd, PG, 0, PG);
	same_walk(fast, slow, ioas, 1);
	cr_assert_eq(ioasid_ioas_destroy(fast, ioas), 0);
	cr_assert_eq(ioasid_lookup(fast, ioas, PG, &m), -ENOENT);
	cr_assert(strstr(ioasid_last_error(fast), "no IOAS"), "%s",
		  ioasid_last_error(fast));
	close(fd);
	ioasid_unref(other);
	ioasid_unref(slow);
	ioasid_unref(fast);
}
