/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The workload of the comparison with QEMU's util/iova-tree.c and
 * libvfio-user's DMA controller (docs/benchmarks-peers.md), for one
 * implementation of struct peers_impl (peers.h):
 *
 *   n mappings of 4 KiB at IOVA (i + 1) x 8 KiB, so no two touch, inserted
 *   in a random order; then a lookup of a random byte of each, in another
 *   random order; then the removal of each, in insertion order.
 *
 * The orders and offsets come from a fixed seed, so every implementation
 * runs the same operations.  The lookups are checked through a sum of the
 * addresses they return.  Each phase is timed in the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID), which leaves out the time other tasks of a
 * shared machine run, not what they do to the caches.  Every repetition
 * starts from a new, empty structure.
 *
 * Prints one JSON line per metric (insert_ns, lookup_ns, remove_ns, per
 * operation): "value" is the median over "reps" repetitions, "min" the
 * best one:
 *   {"bench":"peers","metric":"insert_ns","value":349.1,"unit":"ns",
 *    "impl":"ioasid","n":1048576,"reps":3,"min":341.0}
 *
 * Usage: bench_peers [--quick | --full] [--reps N] [--n N]
 *   sizes as bench.h says (--quick 65,536; default also 1,048,576; --full
 *   also 16,777,216), or the one size --n gives; 3 repetitions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench.h"
#include "peers.h"

#define PG	4096ULL

static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void shuffle(uint32_t *a, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		a[i] = (uint32_t)i;
	for (i = n - 1; i > 0; i--) {
		uint64_t j = rnd() % (i + 1);
		uint32_t x = a[i];

		a[i] = a[j];
		a[j] = x;
	}
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline uint64_t iova_of(uint64_t i)
{
	return (i + 1) * 2 * PG;
}

static inline uint64_t addr_of(uint64_t i)
{
	return (1ULL << 40) + i * PG;
}

static void fail(const char *what, uint64_t k)
{
	fprintf(stderr, "bench_peers: %s: %s %" PRIu64 " failed\n",
		peers_impl.name, what, k);
	exit(1);
}

static void emit(const char *metric, double *v, int reps, uint64_t n)
{
	double med = bench_median(v, reps);

	printf("{\"bench\":\"peers\",\"metric\":\"%s\",\"value\":%.1f,"
	       "\"unit\":\"ns\",\"impl\":\"%s\",\"n\":%" PRIu64 ",\"reps\":%d,"
	       "\"min\":%.1f}\n", metric, med, peers_impl.name, n, reps, v[0]);
	fflush(stdout);
}

static void run(uint64_t n, int reps)
{
	const struct peers_impl *im = &peers_impl;
	uint32_t *ins = malloc(n * sizeof(*ins));
	uint32_t *lk = malloc(n * sizeof(*lk));
	uint64_t *at = malloc(n * sizeof(*at));
	double ti[16], tl[16], tr[16];
	uint64_t k, want = 0;
	int r;

	if (!ins || !lk || !at) {
		fprintf(stderr, "bench_peers: out of memory\n");
		exit(1);
	}
	rng = 0x1234567;
	shuffle(ins, n);
	shuffle(lk, n);
	for (k = 0; k < n; k++) {
		uint64_t off = rnd() & (PG - 1);

		at[k] = iova_of(lk[k]) + off;
		want += addr_of(lk[k]) + off;
	}
	for (r = 0; r < reps; r++) {
		void *s = im->create(n);
		uint64_t sum = 0, out;
		double t0, t1, t2, t3;

		if (!s)
			fail("create", 0);
		t0 = cpu_ns();
		for (k = 0; k < n; k++)
			if (im->insert(s, iova_of(ins[k]), PG, addr_of(ins[k])))
				fail("insert", k);
		t1 = cpu_ns();
		for (k = 0; k < n; k++) {
			if (im->lookup(s, at[k], &out))
				fail("lookup", k);
			sum += out;
		}
		t2 = cpu_ns();
		for (k = 0; k < n; k++)
			if (im->remove(s, iova_of(ins[k]), PG))
				fail("remove", k);
		t3 = cpu_ns();
		if (sum != want)
			fail("lookup sum", n);
		if (!im->lookup(s, at[0], &out))
			fail("lookup after removal", 0);
		im->destroy(s);
		ti[r] = (t1 - t0) / (double)n;
		tl[r] = (t2 - t1) / (double)n;
		tr[r] = (t3 - t2) / (double)n;
	}
	emit("insert_ns", ti, reps, n);
	emit("lookup_ns", tl, reps, n);
	emit("remove_ns", tr, reps, n);
	free(ins);
	free(lk);
	free(at);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	char *args[16];
	uint64_t n = 0;
	int i, k = 0, s;

	/* --n N here, the rest is bench_parse()'s */
	for (i = 0; i < argc && k < 16; i++) {
		if (i && !strcmp(argv[i], "--n") && i + 1 < argc) {
			n = strtoull(argv[++i], NULL, 0);
			if (n < 2)
				n = UINT64_MAX;	/* refused below */
		} else {
			args[k++] = argv[i];
		}
	}
	if (i != argc || bench_parse(k, args, &o) != k ||
	    n > UINT32_MAX) {
		fprintf(stderr, "usage: %s [--quick | --full] [--reps N] "
			"[--n N]\n", argv[0]);
		return 2;
	}
	if (!o.reps)
		o.reps = 3;
	if (n) {
		run(n, o.reps);
		return 0;
	}
	for (s = 0; s < o.sizes; s++)
		run(bench_sizes[s], o.reps);
	return 0;
}
