/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark of libioasid/core/iova_tree.c. Prints one JSON object per line:
 *   {"bench":"ioas","layer":"tree","metric":"map_ns","value":123.4,"unit":"ns",
 *    "n":1048576,"pattern":"random","reps":5,"min":120.1}
 * "value" is the median over "reps" repetitions, "min" the best one (on a
 * shared machine the minimum is the least disturbed measurement).
 *
 * Metrics, for n = 65536 and 1048576 (--quick: 65536 only, --full adds
 * 16777216) and pattern (the n areas are 4 KiB mappings):
 *   sequential   adjacent pages, inserted and removed in ascending order
 *   random       adjacent pages, inserted and removed in random order
 *   random_gaps  irregular layout (1-8 page strides, 1 in 97 with a 4 MiB
 *                hole), touched in random order: shows what lookups cost
 *                when the interpolation guess of the tree is off
 * Lookups always go in a random order of their own, independent of the
 * insertion order (so "sequential" lookups are not an ascending scan).
 *   map_ns             insert n 4 KiB mappings (fixed IOVA), per insert
 *   bytes_per_mapping  all node memory the tree accounts / n
 *   heap_bytes_per_mapping  malloc's own view (mallinfo2), chunk overhead
 *                      included; a tree past 128 nodes takes the rest of
 *                      its nodes from 2 MiB chunks it maps itself, which
 *                      malloc does not see: from 65536 on this is only
 *                      the first 128 nodes and the tree itself, and
 *                      bytes_per_mapping (the chunks counted whole) is the
 *                      figure for the node memory
 *   lookup_ns          n lookups, independent (throughput), per lookup
 *   lookup_latency_ns  n lookups, each depending on the previous result
 *   unmap_ns           remove each of the n mappings, per removal
 * plus
 *   split_storm_s      100,000 distinct random 4 KiB punches out of one
 *                      64 GiB mapping
 *   alloc_iova_ns      allocation (lowest fit + insert) among 1,048,576
 *                      areas whose holes are almost all too small
 *   dram_latency_ns    calibration: one dependent random load (pointer
 *                      chase) in a buffer of "buffer_bytes", at least 4x
 *                      the last-level cache ("llc_bytes", from sysfs) and
 *                      256 MiB, on huge pages where the kernel allows: what
 *                      a DRAM miss costs on this machine right now
 *
 * Usage: bench_iova_tree [--quick | --full] [--reps N]
 * Build: gcc -O2 -o bench_iova_tree bench/bench_iova_tree.c \
 *            libioasid/core/iova_tree.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>

#include "../libioasid/core/iova_tree.h"
#include "bench.h"

#define PG	IOVA_TREE_PAGE_SIZE
#define GiB	(1ULL << 30)
#define MiB	(1ULL << 20)

static uint64_t rng = 0x1234567;
static int reps_override;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define now_ns bench_now_ns
#define median bench_median

/* One JSON line: median and min of the @reps values in @v */
static void emit(const char *metric, double *v, int reps, const char *unit,
		 uint64_t n, const char *pattern, const char *extra)
{
	double med = median(v, reps);

	printf("{\"bench\":\"ioas\",\"layer\":\"tree\",\"metric\":\"%s\",\"value\":%.4g,"
	       "\"unit\":\"%s\",\"n\":%" PRIu64 ",\"pattern\":\"%s\","
	       "\"reps\":%d,\"min\":%.4g%s%s}\n", metric, med, unit, n,
	       pattern, reps, v[0], extra ? "," : "", extra ? extra : "");
	fflush(stdout);
}

static size_t heap_used(void)
{
#ifdef __GLIBC__
	return mallinfo2().uordblks;
#else
	return 0;
#endif
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "bench_iova_tree: %s failed: %d\n", what, ret);
	exit(1);
}

/* order[i] = index of the i-th area touched */
static void make_order(uint64_t *order, uint64_t n, bool random)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		order[i] = i;
	if (!random)
		return;
	for (i = n - 1; i > 0; i--) {
		uint64_t j = rnd() % (i + 1), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
}

/*
 * IOVA of area i: adjacent 4 KiB mappings, as QEMU makes for confidential
 * guests, or an irregular layout when @gaps is set.
 */
static uint64_t *gaps;

static inline uint64_t area_iova(uint64_t i)
{
	return gaps ? gaps[i] : (i + 1) * PG;
}

static void make_gaps(uint64_t n)
{
	uint64_t i, x = PG;

	gaps = malloc(n * sizeof(*gaps));
	if (!gaps)
		die("malloc", -ENOMEM);
	for (i = 0; i < n; i++) {
		gaps[i] = x;
		x += PG * (1 + rnd() % 8);
		if (rnd() % 97 == 0)
			x += 4 * MiB;
	}
}

#define LOOKUP_ORDER "\"lookup_order\":\"random\""

struct run {
	double map_ns, lookup_ns, lat_ns, unmap_ns, bpm, heap_bpm;
};

static void one_run(uint64_t n, const uint64_t *order, const uint64_t *lorder,
		    uint64_t *keys, struct run *r)
{
	struct iova_tree_stats st;
	struct iova_tree *t;
	struct iova_area a = {
		.length = PG, .kind = IOVA_AREA_MAPPING,
		.prot = IOVA_PROT_READ | IOVA_PROT_WRITE,
		.backing = (void *)0x1000,
	};
	size_t heap0;
	uint64_t i, acc = 0, rm;
	double t0;
	int ret;

	heap0 = heap_used();
	ret = iova_tree_new(NULL, &t);
	if (ret)
		die("new", ret);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		a.iova = area_iova(order[i]);
		a.offset = a.iova;
		ret = iova_tree_insert(t, &a);
		if (ret)
			die("insert", ret);
	}
	r->map_ns = (now_ns() - t0) / (double)n;
	iova_tree_stats(t, &st);
	r->bpm = (double)st.mem_bytes / (double)n;
	r->heap_bpm = (double)(heap_used() - heap0) / (double)n;

	/* lookup keys: their own random order, random byte inside the page */
	for (i = 0; i < n; i++)
		keys[i] = area_iova(lorder[i]) + (rnd() & (PG - 1));
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		struct iova_area out;

		if (iova_tree_lookup(t, keys[i], &out))
			die("lookup", -ENOENT);
		acc += out.offset;
	}
	r->lookup_ns = (now_ns() - t0) / (double)n;

	/* dependent chain: the next key needs the previous result */
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		struct iova_area out;

		if (iova_tree_lookup(t, keys[i] + (acc & 1), &out))
			die("lookup", -ENOENT);
		acc = out.offset;
	}
	r->lat_ns = (now_ns() - t0) / (double)n;
	if (acc == 1)
		fprintf(stderr, "(unlikely)\n");

	t0 = now_ns();
	for (i = 0; i < n; i++) {
		ret = iova_tree_remove(t, area_iova(order[i]), PG,
				       IOVA_TREE_MAPPINGS, NULL, NULL, &rm);
		if (ret || rm != PG)
			die("remove", ret);
	}
	r->unmap_ns = (now_ns() - t0) / (double)n;
	if (iova_tree_count(t))
		die("count", -1);
	iova_tree_free(t);
}

static void bench_scale(uint64_t n, const char *pat)
{
	int reps = n <= 65536 ? 7 : n <= 1048576 ? 5 : 1, k;
	uint64_t *order = malloc(n * sizeof(*order));
	uint64_t *keys = malloc(n * sizeof(*keys));
	uint64_t *lorder = malloc(n * sizeof(*lorder));
	double v[6][16];
	struct run r;

	if (reps_override)
		reps = reps_override > 16 ? 16 : reps_override;
	if (!order || !keys || !lorder)
		die("malloc", -ENOMEM);
	make_order(order, n, strcmp(pat, "sequential"));
	make_order(lorder, n, true);
	if (!strcmp(pat, "random_gaps"))
		make_gaps(n);
	for (k = 0; k < reps; k++) {
		one_run(n, order, lorder, keys, &r);
		v[0][k] = r.map_ns;
		v[1][k] = r.lookup_ns;
		v[2][k] = r.lat_ns;
		v[3][k] = r.unmap_ns;
		v[4][k] = r.bpm;
		v[5][k] = r.heap_bpm;
	}
	emit("map_ns", v[0], reps, "ns", n, pat, NULL);
	emit("lookup_ns", v[1], reps, "ns", n, pat, LOOKUP_ORDER);
	emit("lookup_latency_ns", v[2], reps, "ns", n, pat, LOOKUP_ORDER);
	emit("unmap_ns", v[3], reps, "ns", n, pat, NULL);
	emit("bytes_per_mapping", v[4], reps, "bytes", n, pat, NULL);
	emit("heap_bytes_per_mapping", v[5], reps, "bytes", n, pat, NULL);
	free(order);
	free(lorder);
	free(keys);
	free(gaps);
	gaps = NULL;
}

/* 100,000 distinct random 4 KiB punches out of one 64 GiB mapping */
static void bench_split_storm(void)
{
	const uint64_t pages = 64 * GiB / PG, punches = 100000;
	uint8_t *hit = malloc(pages / 8);
	uint64_t *pg = malloc(punches * sizeof(*pg));
	int reps = reps_override ? reps_override : 5, k;
	double v[16], bpa = 0;
	char extra[96];
	uint64_t i, rm;
	int ret;

	if (reps > 16)
		reps = 16;
	if (!hit || !pg)
		die("malloc", -ENOMEM);
	memset(hit, 0, pages / 8);
	for (i = 0; i < punches;) {
		uint64_t p = rnd() % pages;

		if (hit[p / 8] & (1 << (p % 8)))
			continue;
		hit[p / 8] |= 1 << (p % 8);
		pg[i++] = p;
	}
	for (k = 0; k < reps; k++) {
		struct iova_area a = {
			.iova = GiB, .length = 64 * GiB,
			.kind = IOVA_AREA_MAPPING, .backing = (void *)0x1000,
		};
		struct iova_tree_stats st;
		struct iova_tree *t;
		double t0;

		if ((ret = iova_tree_new(NULL, &t)) ||
		    (ret = iova_tree_insert(t, &a)))
			die("storm setup", ret);
		t0 = now_ns();
		for (i = 0; i < punches; i++) {
			ret = iova_tree_remove(t, GiB + pg[i] * PG, PG,
					       IOVA_TREE_MAPPINGS, NULL, NULL,
					       &rm);
			if (ret || rm != PG)
				die("punch", ret);
		}
		v[k] = (now_ns() - t0) / 1e9;
		iova_tree_stats(t, &st);
		bpa = (double)st.mem_bytes / (double)iova_tree_count(t);
		iova_tree_free(t);
	}
	snprintf(extra, sizeof(extra),
		 "\"punches\":%" PRIu64 ",\"bytes_per_area_after\":%.1f",
		 punches, bpa);
	emit("split_storm_s", v, reps, "s", 1, "random", extra);
	free(hit);
	free(pg);
}

/*
 * Fragmented space: 1,048,576 one-page areas separated by holes of 0-2
 * pages; 1 hole in 1024 is 8-15 pages. Then allocate 4-page areas (4 KiB
 * alignment): the lowest fit is the first big hole left, so a linear
 * scanner walks ~1000 areas per call and ~all areas once the big holes are
 * used up; the augmented tree goes straight there. Second variant: 2 MiB
 * long, 2 MiB aligned allocations, which only fit after the last area.
 */
static void bench_alloc(void)
{
	const uint64_t n = 1048576, allocs = 100000;
	int reps = reps_override ? reps_override : 3, k, v2;
	double v[2][16];
	uint64_t i, x;
	int ret;

	if (reps > 16)
		reps = 16;
	for (k = 0; k < reps; k++) {
		for (v2 = 0; v2 < 2; v2++) {
			struct iova_area a = {
				.length = PG, .kind = IOVA_AREA_MAPPING,
				.backing = (void *)0x1000,
			};
			uint64_t len = v2 ? 2 * MiB : 4 * PG;
			uint64_t align = v2 ? 2 * MiB : PG;
			uint64_t iova = 16 * PG;
			struct iova_tree *t;
			double t0;

			ret = iova_tree_new(NULL, &t);
			if (ret)
				die("new", ret);
			for (i = 0; i < n; i++) {
				a.iova = iova;
				if ((ret = iova_tree_insert(t, &a)))
					die("alloc setup", ret);
				iova += PG * (1 + rnd() % 3);
				if (rnd() % 1024 == 0)
					iova += PG * (8 + rnd() % 8);
			}
			a.length = len;
			t0 = now_ns();
			for (i = 0; i < allocs; i++) {
				ret = iova_tree_alloc(t, 0, UINT64_MAX, align,
						      &a, &x);
				if (ret)
					die("alloc", ret);
			}
			v[v2][k] = (now_ns() - t0) / (double)allocs;
			iova_tree_free(t);
		}
	}
	emit("alloc_iova_ns", v[0], reps, "ns", n, "fragmented",
	     "\"length\":16384,\"align\":4096,\"allocs\":100000");
	emit("alloc_iova_ns", v[1], reps, "ns", n, "fragmented",
	     "\"length\":2097152,\"align\":2097152,\"allocs\":100000");
}

/*
 * Calibration: latency of one dependent random load in a buffer well past
 * the last-level cache.  Huge pages where possible, so that the figure is
 * a DRAM miss rather than a DRAM miss plus a page walk.
 */
static void bench_dram(void)
{
	uint64_t llc = bench_llc_bytes(), i, j, x, cur;
	size_t sz = 256 * MiB, lines, hops = 2000000;
	double v[16], t0;
	int reps = 3, k;
	char extra[96];
	uint64_t *buf;

	while (sz < 4 * llc)
		sz *= 2;
	lines = sz / 64;
	buf = mmap(NULL, sz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap", -ENOMEM);
	madvise(buf, sz, MADV_HUGEPAGE);
	/* one cycle through every line (Sattolo), one word per line */
	for (i = 0; i < lines; i++)
		buf[i * 8] = i * 8;
	for (i = lines - 1; i > 0; i--) {
		j = rnd() % i;
		x = buf[i * 8];
		buf[i * 8] = buf[j * 8];
		buf[j * 8] = x;
	}
	for (k = 0; k < reps; k++) {
		cur = 0;
		t0 = now_ns();
		for (i = 0; i < hops; i++)
			cur = buf[cur];
		v[k] = (now_ns() - t0) / (double)hops;
		if (cur == UINT64_MAX)
			fprintf(stderr, "(unlikely)\n");
	}
	snprintf(extra, sizeof(extra),
		 "\"buffer_bytes\":%zu,\"llc_bytes\":%" PRIu64, sz, llc);
	emit("dram_latency_ns", v, reps, "ns", hops, "pointer_chase", extra);
	munmap(buf, sz);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	int s;

	if (bench_parse(argc, argv, &o) != argc) {
		fprintf(stderr, "usage: %s [--quick | --full] [--reps N]\n",
			argv[0]);
		return 2;
	}
	reps_override = o.reps;
	for (s = 0; s < o.sizes; s++) {
		bench_scale(bench_sizes[s], "sequential");
		bench_scale(bench_sizes[s], "random");
		bench_scale(bench_sizes[s], "random_gaps");
	}
	bench_split_storm();
	bench_alloc();
	bench_dram();
	return 0;
}
