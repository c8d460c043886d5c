// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Benchmark of libioasid/core/iova_tree.c. Prints one JSON object per line:
 *   {"bench":"ioas","layer":"tree","metric":"map_ns","value":123.4,"unit":"ns",
 *    "n":1048576,"pattern":"random","reps":5,"min":120.1}
 * "value" is the median over "reps" repetitions, "min" the best one (on a
 * shared machine the minimum is the least disturbed measurement).
 *
 * Metrics, for n = 65536, 1048576, 16777216 (--quick: up to 1048576) and
 * pattern (the n areas are 4 KiB mappings):
 *   sequential   adjacent pages, touched in ascending IOVA order
 *   random       adjacent pages, touched in random order
 *   random_gaps  irregular layout (1-8 page strides, 1 in 97 with a 4 MiB
 *                hole), touched in random order: shows what lookups cost
 *                when the interpolation guess of the tree is off
 *   map_ns             insert n 4 KiB mappings (fixed IOVA), per insert
 *   bytes_per_mapping  all node memory the tree accounts / n
 *   heap_bytes_per_mapping  malloc's own view (mallinfo2), chunk overhead
 *                      included
 *   lookup_ns          n lookups, independent (throughput), per lookup
 *   lookup_latency_ns  n lookups, each depending on the previous result
 *   unmap_ns           remove each of the n mappings, per removal
 * plus
 *   split_storm_s      100,000 distinct random 4 KiB punches out of one
 *                      64 GiB mapping
 *   alloc_iova_ns      allocation (lowest fit + insert) among 1,048,576
 *                      areas whose holes are almost all too small
 *   dram_latency_ns    calibration: one dependent random load in a 256 MiB
 *                      buffer (pointer chase), i.e. what a cache miss costs
 *                      on this machine right now
 *
 * Usage: bench_iova_tree [--quick] [--reps N]
 * Build: gcc -O2 -o bench_iova_tree bench/bench_iova_tree.c \
 *            libioasid/core/iova_tree.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../libioasid/core/iova_tree.h"

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

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts @v */
static double median(double *v, int k)
{
	qsort(v, k, sizeof(*v), cmp_double);
	return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

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

struct run {
	double map_ns, lookup_ns, lat_ns, unmap_ns, bpm, heap_bpm;
};

static void one_run(uint64_t n, const uint64_t *order, uint64_t *keys,
		    struct run *r)
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

	/* lookup keys: same order, random byte inside the page */
	for (i = 0; i < n; i++)
		keys[i] = area_iova(order[i]) + (rnd() & (PG - 1));
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
	double v[6][16];
	struct run r;

	if (reps_override)
		reps = reps_override > 16 ? 16 : reps_override;
	if (!order || !keys)
		die("malloc", -ENOMEM);
	make_order(order, n, strcmp(pat, "sequential"));
	if (!strcmp(pat, "random_gaps"))
		make_gaps(n);
	for (k = 0; k < reps; k++) {
		one_run(n, order, keys, &r);
		v[0][k] = r.map_ns;
		v[1][k] = r.lookup_ns;
		v[2][k] = r.lat_ns;
		v[3][k] = r.unmap_ns;
		v[4][k] = r.bpm;
		v[5][k] = r.heap_bpm;
	}
	emit("map_ns", v[0], reps, "ns", n, pat, NULL);
	emit("lookup_ns", v[1], reps, "ns", n, pat, NULL);
	emit("lookup_latency_ns", v[2], reps, "ns", n, pat, NULL);
	emit("unmap_ns", v[3], reps, "ns", n, pat, NULL);
	emit("bytes_per_mapping", v[4], reps, "bytes", n, pat, NULL);
	emit("heap_bytes_per_mapping", v[5], reps, "bytes", n, pat, NULL);
	free(order);
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

/* Calibration: latency of one dependent random load into 256 MiB */
static void bench_dram(void)
{
	const size_t sz = 256 * MiB, lines = sz / 64, hops = 2000000;
	uint64_t *buf = malloc(sz), *perm = malloc(lines * sizeof(*perm));
	uint64_t i, cur;
	double v[16], t0;
	int reps = 3, k;

	if (!buf || !perm)
		die("malloc", -ENOMEM);
	make_order(perm, lines, true);
	for (i = 0; i < lines; i++)
		buf[perm[i] * 8] = perm[(i + 1) % lines] * 8;
	for (k = 0; k < reps; k++) {
		cur = perm[0] * 8;
		t0 = now_ns();
		for (i = 0; i < hops; i++)
			cur = buf[cur];
		v[k] = (now_ns() - t0) / (double)hops;
		if (cur == UINT64_MAX)
			fprintf(stderr, "(unlikely)\n");
	}
	emit("dram_latency_ns", v, reps, "ns", sz, "pointer_chase", NULL);
	free(buf);
	free(perm);
}

int main(int argc, char **argv)
{
	uint64_t sizes[] = { 65536, 1048576, 16777216 };
	uint64_t max_n = UINT64_MAX;
	unsigned int s;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			max_n = 1048576;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps_override = atoi(argv[++i]);
			if (reps_override < 1)
				reps_override = 1;
		} else {
			fprintf(stderr, "usage: %s [--quick] [--reps N]\n",
				argv[0]);
			return 2;
		}
	}
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		if (sizes[s] > max_n)
			continue;
		bench_scale(sizes[s], "sequential");
		bench_scale(sizes[s], "random");
		bench_scale(sizes[s], "random_gaps");
	}
	bench_split_storm();
	bench_alloc();
	bench_dram();
	return 0;
}
