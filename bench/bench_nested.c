/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark of nested (two-stage) translation on the simulated IOMMU.
 * Prints JSON lines:
 *   translations_per_s   sim_dev_translate() of a device on a nested
 *                        domain (stage 1: a VT-d first-stage table of 4 KiB
 *                        leaves in guest memory, every entry read through
 *                        stage 2), "iotlb": "hit" (64 pages, all cached)
 *                        or "miss" (12,288 pages through a 256-entry
 *                        IOTLB: every lookup walks 4 stage-1 levels, each
 *                        read translated by stage 2, then stage 2 once
 *                        more); "stages": 2; cached translations of the
 *                        stage-2 domain alone ("stages": 1) for
 *                        comparison; with the measured hit rate
 *   invalidations_per_s  sim_nested_invalidate() of one page and of
 *                        everything (one device attached: its IOTLB and a
 *                        grace period), and ioasid_nested_invalidate()
 *                        through the public API, embedded (one entry)
 * Usage: bench_nested [--quick] [--reps N]   (N runs per median, default
 * 15; --quick: 5)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libioasid.h>

#include "backends/sim/dma.h"
#include "backends/sim/iotlb.h"
#include "backends/sim/nested.h"
#include "backends/sim/pgtable.h"
#include "bench.h"

#define MEM_SIZE	(64ULL << 20)	/* guest memory: GPA 0..64M */
#define DATA_GPA	(16ULL << 20)	/* data pages from here */
#define DATA_PAGES	((MEM_SIZE - DATA_GPA) / SIM_SZ_4K)	/* 12288 */
#define GVA		(1ULL << 30)	/* stage-1 inputs from here */
#define RW		(SIM_PROT_READ | SIM_PROT_WRITE)
#define S1_RWX		(SIM_S1_P | SIM_S1_RW | SIM_S1_US)
#define MAX_RUNS	15

static int RUNS = MAX_RUNS;

struct env {
	uint8_t *mem;			/* guest memory (host side) */
	uint64_t next_table;		/* GPA of the next free table page */
	struct sim_domain *s2, *nested;
	struct sim_dev *dev, *dev_s2;
};

static void check(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "bench_nested: %s: %d\n", what, r);
		exit(1);
	}
}

static uint64_t *table_at(struct env *e, uint64_t gpa)
{
	return (uint64_t *)(e->mem + gpa);
}

static uint64_t new_table(struct env *e)
{
	uint64_t gpa = e->next_table;

	e->next_table += SIM_SZ_4K;
	if (e->next_table > DATA_GPA) {
		fprintf(stderr, "bench_nested: out of table pages\n");
		exit(1);
	}
	return gpa;
}

/* The stage-1 entry for @gva at @level (4: root), tables made on the way. */
static uint64_t *s1_slot(struct env *e, uint64_t root, uint64_t gva,
			 unsigned int level)
{
	uint64_t table = root;

	for (unsigned int l = 4; l > level; l--) {
		uint64_t *slot = table_at(e, table) +
				 ((gva >> (12 + 9 * (l - 1))) & 511);

		if (!(*slot & SIM_S1_P))
			*slot = new_table(e) | S1_RWX;
		table = *slot & SIM_S1_ADDR_MASK;
	}
	return table_at(e, table) + ((gva >> (12 + 9 * (level - 1))) & 511);
}

static void env_init(struct env *e)
{
	void *p = mmap(NULL, MEM_SIZE + SIM_SZ_2M, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	uint64_t root;

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(e, 0, sizeof(*e));
	e->mem = (uint8_t *)(((uintptr_t)p + SIM_SZ_2M - 1) &
			     ~(uintptr_t)(SIM_SZ_2M - 1));
	e->next_table = SIM_SZ_4K;	/* GPA 0 stays unused */
	root = new_table(e);
	for (uint64_t i = 0; i < DATA_PAGES; i++)
		*s1_slot(e, root, GVA + i * SIM_SZ_4K, 1) =
			(DATA_GPA + i * SIM_SZ_4K) | S1_RWX;
	/* stage 2: GPA 0.. -> the memory, 2 MiB leaves where it can */
	check(sim_domain_create(48, SIM_SZ_4K | SIM_SZ_2M | SIM_SZ_1G, 0,
				&e->s2), "stage-2 domain");
	check(sim_domain_map(e->s2, 0, MEM_SIZE, (uintptr_t)e->mem, RW),
	      "stage-2 map");
	check(sim_nested_create(e->s2, root, 48, &e->nested), "nested");
	check(sim_dev_create(1, 0, 0, &e->dev), "device");
	check(sim_dev_attach(e->dev, e->nested), "attach nested");
	check(sim_dev_create(2, 0, 0, &e->dev_s2), "device");
	check(sim_dev_attach(e->dev_s2, e->s2), "attach stage 2");
}

static void env_fini(struct env *e)
{
	sim_dev_destroy(e->dev);
	sim_dev_destroy(e->dev_s2);
	sim_domain_destroy(e->nested);
	sim_domain_destroy(e->s2);
}

static void bench_translate(const char *kind, int stages, struct sim_dev *dev,
			    uint64_t base, uint64_t pages, unsigned long iters)
{
	struct sim_dev_stats s0, s1;
	double t[MAX_RUNS], med;
	uint64_t hva, p = 0;

	sim_dev_get_stats(dev, &s0);
	for (int r = 0; r < RUNS; r++) {
		double t0 = bench_now_ns();

		for (unsigned long i = 0; i < iters; i++) {
			check(sim_dev_translate(dev, base + p * SIM_SZ_4K,
						SIM_ACCESS_READ, &hva, NULL),
			      "translate");
			p = p + 1 == pages ? 0 : p + 1;
		}
		t[r] = bench_now_ns() - t0;
	}
	sim_dev_get_stats(dev, &s1);
	med = bench_median(t, RUNS);
	printf("{\"bench\":\"nested\",\"metric\":\"translations_per_s\","
	       "\"value\":%.0f,\"unit\":\"1/s\",\"stages\":%d,"
	       "\"iotlb\":\"%s\",\"hit_rate\":%.4f,\"pages\":%llu,"
	       "\"leaf\":4096}\n", iters * 1e9 / med, stages, kind,
	       (double)(s1.iotlb_hits - s0.iotlb_hits) /
	       (double)((s1.iotlb_hits - s0.iotlb_hits) +
			(s1.iotlb_misses - s0.iotlb_misses)),
	       (unsigned long long)pages);
}

static void bench_translations(struct env *e)
{
	bench_translate("hit", 2, e->dev, GVA, 64, 1000000);
	bench_translate("miss", 2, e->dev, GVA, DATA_PAGES, 100000);
	/* the same pages on stage 2 alone, cached (bench_sim_dma has its
	 * misses) */
	bench_translate("hit", 1, e->dev_s2, DATA_GPA, 64, 1000000);
}

static void bench_inval(const char *what, struct env *e, bool all,
			unsigned long iters)
{
	double t[MAX_RUNS], med;
	uint64_t hva;

	for (int r = 0; r < RUNS; r++) {
		double t0 = bench_now_ns();

		for (unsigned long i = 0; i < iters; i++) {
			if (all)
				sim_nested_invalidate(e->nested, 0, UINT64_MAX);
			else
				sim_nested_invalidate(e->nested, GVA,
						      GVA + SIM_SZ_4K - 1);
		}
		t[r] = bench_now_ns() - t0;
		/* refill so the next run drops something */
		check(sim_dev_translate(e->dev, GVA, SIM_ACCESS_READ, &hva,
					NULL), "translate");
	}
	med = bench_median(t, RUNS);
	printf("{\"bench\":\"nested\",\"metric\":\"invalidations_per_s\","
	       "\"value\":%.0f,\"unit\":\"1/s\",\"layer\":\"sim\","
	       "\"range\":\"%s\",\"devices\":1}\n", iters * 1e9 / med, what);
}

/* Through the public API, embedded: the core's checks and lock too. */
static void bench_inval_api(unsigned long iters)
{
	struct ioasid_nested_vtd_s1 s1 = { .pgtbl_addr = 0x100000,
					   .addr_width = 48 };
	struct ioasid_nested_inval inv = { .addr = GVA, .npages = 1 };
	uint32_t ioas, dev, nested, nr;
	struct ioasid_ctx *ctx = NULL;
	double t[MAX_RUNS], med;
	uint64_t iova = 0x100000;
	int fd = memfd_create("bench_nested", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, 2 << 20) < 0) {
		perror("memfd");
		exit(1);
	}
	check(ioasid_new("sim", &ctx), "ioasid_new");
	check(ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &ioas), "ioas");
	check(ioasid_map_file(ctx, ioas, fd, 0, 2 << 20,
			      IOASID_MAP_READ | IOASID_MAP_WRITE |
			      IOASID_MAP_FIXED_IOVA, &iova), "map");
	check(ioasid_device_bind(ctx, "0000:00:01.0", -1, &dev), "bind");
	check(ioasid_nested_alloc(ctx, ioas, dev, IOASID_NESTED_VTD_S1, &s1,
				  sizeof(s1), 0, &nested), "nested alloc");
	check(ioasid_device_attach_nested(ctx, dev, nested, 0), "attach");
	for (int r = 0; r < RUNS; r++) {
		double t0 = bench_now_ns();

		for (unsigned long i = 0; i < iters; i++) {
			nr = 1;
			check(ioasid_nested_invalidate(ctx, nested, &inv, &nr,
						       NULL), "invalidate");
		}
		t[r] = bench_now_ns() - t0;
	}
	med = bench_median(t, RUNS);
	printf("{\"bench\":\"nested\",\"metric\":\"invalidations_per_s\","
	       "\"value\":%.0f,\"unit\":\"1/s\",\"layer\":\"api-embedded\","
	       "\"range\":\"page\",\"devices\":1}\n", iters * 1e9 / med);
	ioasid_unref(ctx);
	close(fd);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct env e;

	if (bench_parse(argc, argv, &o) != argc) {
		fprintf(stderr, "usage: %s [--quick] [--reps N]\n", argv[0]);
		return 2;
	}
	RUNS = o.reps ? o.reps : o.sizes == BENCH_QUICK ? 5 : MAX_RUNS;
	env_init(&e);
	bench_translations(&e);
	bench_inval("page", &e, false, 20000);
	bench_inval("all", &e, true, 20000);
	bench_inval_api(20000);
	fflush(stdout);
	env_fini(&e);
	return 0;
}
