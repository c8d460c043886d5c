/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IOAS operations through the public API (embedded, simulated IOMMU):
 * map, lookup and unmap of n 4 KiB mappings of one memfd, sequential and
 * random IOVAs, with and without a device attached (with one, every map
 * and unmap also programs page tables and invalidates IOTLBs).
 *
 * One JSON object per line:
 *   {"bench":"ioas","metric":"map_ns","value":..,"unit":"ns","n":..,
 *    "pattern":"random","layer":"api","domain":"none",
 *    "lookup_order":"random","reps":3}
 * pattern is the order of the maps and unmaps; lookups always go in a
 * random order of their own.  Medians of --reps runs (default 3).  Sizes
 * 65536 and 1048576, with and without a device, each repetition the two
 * side by side; then map_device_ratio and unmap_device_ratio ("unit":
 * "ratio", domain "sim"): with a device over without, the median of the
 * per-repetition ratios.  --quick: 65536 only, --full adds 16777216
 * (without a device, one run).  --n N runs that one size only (with the
 * device side), --pattern sequential|random that one order only; e.g.
 * --n 1048576 --pattern random for the 1M random-order ratios alone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libioasid.h>

#include "bench.h"

#define PAGE 4096ULL
#define BASE (1ULL << 32)

#define now_ns bench_now_ns
#define median bench_median

static void emit(const char *metric, double value, const char *unit,
		 uint64_t n, const char *pattern, const char *domain, int reps)
{
	/* ratios to two places, times to a tenth of a nanosecond */
	int places = strcmp(unit, "ratio") ? 1 : 2;

	printf("{\"bench\":\"ioas\",\"metric\":\"%s\",\"value\":%.*f,"
	       "\"unit\":\"%s\",\"n\":%llu,\"pattern\":\"%s\",\"layer\":\"api\","
	       "\"domain\":\"%s\",\"lookup_order\":\"random\",\"reps\":%d}\n",
	       metric, places, value, unit, (unsigned long long)n, pattern,
	       domain, reps);
	fflush(stdout);
}

/* A permutation of 0..n-1 (random) or the identity (sequential). */
static uint64_t *order(uint64_t n, int random, uint64_t s)
{
	uint64_t *v = malloc(n * sizeof(*v));

	if (!v)
		return NULL;
	for (uint64_t i = 0; i < n; i++)
		v[i] = i;
	for (uint64_t i = n - 1; random && i > 0; i--) {
		uint64_t j, t;

		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		j = s % (i + 1);
		t = v[i], v[i] = v[j], v[j] = t;
	}
	return v;
}

struct run {
	double map, lookup, unmap;
};

static int one_run(uint64_t n, int random, int with_domain, struct run *out)
{
	struct ioasid_ctx *ctx;
	struct ioasid_mapping m;
	uint64_t *ord = order(n, random, 0x9e3779b97f4a7c15ULL), iova;
	uint64_t *lord = order(n, 1, 0x2545f4914f6cdd1dULL);
	uint32_t ioas, dev;
	int fd, r = -1;
	double t;

	fd = memfd_create("bench-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (!ord || !lord || fd < 0 || ftruncate(fd, (off_t)(n * PAGE)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0 ||
	    ioasid_new("sim", &ctx) < 0)
		goto out;
	if (ioasid_ioas_alloc(ctx, 0, &ioas) < 0)
		goto unref;
	if (with_domain && (ioasid_device_bind(ctx, "0000:00:01.0", -1, &dev) ||
			    ioasid_device_attach(ctx, dev, ioas, 0)))
		goto unref;
	/* every other page, so no two mappings touch */
	t = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		iova = BASE + ord[i] * 2 * PAGE;
		if (ioasid_map_file(ctx, ioas, fd, ord[i] * PAGE, PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova))
			goto unref;
	}
	out->map = (now_ns() - t) / (double)n;
	t = now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (ioasid_lookup(ctx, ioas, BASE + lord[i] * 2 * PAGE, &m))
			goto unref;
	out->lookup = (now_ns() - t) / (double)n;
	t = now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (ioasid_unmap(ctx, ioas, BASE + ord[i] * 2 * PAGE, PAGE, 0,
				 NULL))
			goto unref;
	out->unmap = (now_ns() - t) / (double)n;
	r = 0;
unref:
	ioasid_unref(ctx);
out:
	if (fd >= 0)
		close(fd);
	free(ord);
	free(lord);
	return r;
}

struct series {
	double map[16], lookup[16], unmap[16];
};

static void emit_series(struct series *v, uint64_t n, const char *pattern,
			const char *domain, int reps)
{
	emit("map_ns", median(v->map, reps), "ns", n, pattern, domain, reps);
	emit("lookup_ns", median(v->lookup, reps), "ns", n, pattern, domain,
	     reps);
	emit("unmap_ns", median(v->unmap, reps), "ns", n, pattern, domain,
	     reps);
}

/*
 * @pairs: each repetition runs without a device and then with one, side by
 * side, so the ratios (median of the per-repetition ratios) compare runs
 * that saw the same machine.
 */
static int measure(uint64_t n, int random, int pairs, int reps)
{
	const char *pattern = random ? "random" : "sequential";
	struct series v[2];
	double map_ratio[16], unmap_ratio[16];
	struct run run;

	for (int i = 0; i < reps; i++) {
		for (int dom = 0; dom <= pairs; dom++) {
			if (one_run(n, random, dom, &run) < 0) {
				fprintf(stderr, "bench_ioas: run n=%llu "
					"failed\n", (unsigned long long)n);
				return -1;
			}
			v[dom].map[i] = run.map;
			v[dom].lookup[i] = run.lookup;
			v[dom].unmap[i] = run.unmap;
		}
		if (pairs) {
			map_ratio[i] = v[1].map[i] / v[0].map[i];
			unmap_ratio[i] = v[1].unmap[i] / v[0].unmap[i];
		}
	}
	emit_series(&v[0], n, pattern, "none", reps);
	if (!pairs)
		return 0;
	emit_series(&v[1], n, pattern, "sim", reps);
	emit("map_device_ratio", median(map_ratio, reps), "ratio", n, pattern,
	     "sim", reps);
	emit("unmap_device_ratio", median(unmap_ratio, reps), "ratio", n,
	     pattern, "sim", reps);
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--quick | --full] [--reps N] [--n N] "
		"[--pattern sequential|random]\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int only_pattern = -1, nrest = 0;
	struct bench_opts o;
	uint64_t only_n = 0;

	if (!rest)
		return 1;
	/* take out --n and --pattern; bench_parse() reads the rest */
	rest[nrest++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc) {
			char *end;

			only_n = strtoull(argv[++i], &end, 0);
			if (*end || only_n < 1 || only_n > bench_sizes[2])
				usage(argv[0]);
		} else if (!strcmp(argv[i], "--pattern") && i + 1 < argc) {
			i++;
			if (!strcmp(argv[i], "sequential"))
				only_pattern = 0;
			else if (!strcmp(argv[i], "random"))
				only_pattern = 1;
			else
				usage(argv[0]);
		} else {
			rest[nrest++] = argv[i];
		}
	}
	if (bench_parse(nrest, rest, &o) != nrest)
		usage(argv[0]);
	free(rest);
	if (!o.reps)
		o.reps = 3;
	for (int random = 0; only_n && random < 2; random++)
		if ((only_pattern < 0 || only_pattern == random) &&
		    measure(only_n, random, 1, o.reps))
			return 1;
	for (int s = 0; !only_n && s < o.sizes; s++)
		for (int random = 0; random < 2; random++)
			if ((only_pattern < 0 || only_pattern == random) &&
			    measure(bench_sizes[s], random, s < 2,
				    s == 2 ? 1 : o.reps))
				return 1;
	return 0;
}
