/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark of the simulated IOMMU DMA path.  Prints JSON lines:
 *   copy_ratio_vs_memcpy   DMA (translate + guarded copy) vs plain memcpy of
 *                          the same size into the same memory, medians;
 *                          "leaf" 2M (a domain that may use 2 MiB leaves:
 *                          the IOTLB always hits) and 4K (4 KiB leaves
 *                          only, as for page-granular address spaces)
 *   translations_per_s     sim_dev_translate() with IOTLB hits / misses
 *   dma_gbps_during_split  DMA throughput while another thread splits
 *                          2 MiB leaves by punching 4 KiB holes
 * Build (out of tree):
 *   gcc -std=gnu11 -O2 -I libioasid bench/bench_sim_dma.c \
 *       libioasid/backends/sim/{pgtable,iotlb,dma,guarded_copy}.c \
 *       -lpthread -o bench_sim_dma
 * Usage: bench_sim_dma [--quick] [--reps N]   (N runs per median, default 31;
 * --quick: 7)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "backends/sim/dma.h"
#include "backends/sim/iotlb.h"
#include "backends/sim/pgtable.h"
#include "bench.h"

#define MEM_SIZE	(64UL << 20)
#define IOVA		(1ULL << 32)
#define RW		(SIM_PROT_READ | SIM_PROT_WRITE)
#define ALL_SIZES	(SIM_SZ_4K | SIM_SZ_2M | SIM_SZ_1G)
#define MAX_RUNS	31
static int RUNS = MAX_RUNS;
#define WINDOW		(8UL << 20)	/* rotate destinations over 8 MiB */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static void *xmap_aligned(size_t size, size_t align)
{
	uint8_t *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	return (void *)a;
}

static void check(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "%s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

struct env {
	struct sim_domain *dom;
	struct sim_dev *dev;
	struct sim_domain *dom4k;	/* same memory, 4 KiB leaves only */
	struct sim_dev *dev4k;
	uint8_t *mem;
	uint8_t *src;
};

static void env_init(struct env *e)
{
	e->mem = xmap_aligned(MEM_SIZE, SIM_SZ_2M);
	e->src = xmap_aligned(1UL << 20, 4096);
	memset(e->src, 0x5a, 1UL << 20);
	check(sim_domain_create(48, ALL_SIZES, 0, &e->dom), "domain");
	check(sim_domain_map(e->dom, IOVA, MEM_SIZE, (uintptr_t)e->mem, RW),
	      "map");
	check(sim_dev_create(1, 0, 0, &e->dev), "dev");
	check(sim_dev_attach(e->dev, e->dom), "attach");
	check(sim_domain_create(48, SIM_SZ_4K, 0, &e->dom4k), "domain4k");
	check(sim_domain_map(e->dom4k, IOVA, MEM_SIZE, (uintptr_t)e->mem, RW),
	      "map4k");
	check(sim_dev_create(4, 0, 0, &e->dev4k), "dev4k");
	check(sim_dev_attach(e->dev4k, e->dom4k), "attach4k");
}

/* ------------------------------------------------------------------ */

static uint64_t run_memcpy(struct env *e, size_t size, unsigned long iters,
			   int write)
{
	uint64_t t0 = now_ns();
	size_t off = 0;

	for (unsigned long i = 0; i < iters; i++) {
		if (write)
			memcpy(e->mem + off, e->src, size);
		else
			memcpy(e->src, e->mem + off, size);
		off = (off + size) % WINDOW;
	}
	__asm__ volatile("" ::: "memory");
	return now_ns() - t0;
}

static uint64_t run_dma(struct sim_dev *dev, struct env *e, size_t size,
			unsigned long iters, int write)
{
	uint64_t t0 = now_ns();
	size_t off = 0, done;
	int ret;

	for (unsigned long i = 0; i < iters; i++) {
		if (write)
			ret = sim_dma_write(dev, IOVA + off, e->src, size, 0,
					    &done);
		else
			ret = sim_dma_read(dev, IOVA + off, e->src, size, 0,
					   &done);
		check(ret, "dma");
		off = (off + size) % WINDOW;
	}
	return now_ns() - t0;
}

static void bench_copy_ratio(struct env *e, size_t size, int write,
			     int leaf4k)
{
	unsigned long iters = (8UL << 20) / size;
	uint64_t mc[MAX_RUNS], dm[MAX_RUNS], m_med, d_med;
	struct sim_dev *dev = leaf4k ? e->dev4k : e->dev;

	run_memcpy(e, size, iters, write);	/* warm up */
	run_dma(dev, e, size, iters, write);
	for (int r = 0; r < RUNS; r++) {
		mc[r] = run_memcpy(e, size, iters, write);
		dm[r] = run_dma(dev, e, size, iters, write);
	}
	m_med = median(mc, RUNS);
	d_med = median(dm, RUNS);
	printf("{\"bench\":\"sim_dma\",\"metric\":\"copy_ratio_vs_memcpy\","
	       "\"value\":%.3f,\"unit\":\"ratio\",\"size\":%zu,"
	       "\"op\":\"%s\",\"leaf\":\"%s\",\"dma_ns_per_op\":%.1f,"
	       "\"memcpy_ns_per_op\":%.1f,\"runs\":%d}\n",
	       (double)m_med / d_med, size, write ? "write" : "read",
	       leaf4k ? "4K" : "2M", (double)d_med / iters,
	       (double)m_med / iters, RUNS);
}

/* ------------------------------------------------------------------ */

static void bench_translate(struct env *e, const char *kind,
			    struct sim_dev *dev, uint64_t base,
			    unsigned long pages, unsigned long iters)
{
	struct sim_dev_stats s0, s1;
	uint64_t hva, t[MAX_RUNS], med;
	unsigned long p = 0;

	(void)e;
	sim_dev_get_stats(dev, &s0);
	for (int r = 0; r < RUNS; r++) {
		uint64_t t0 = now_ns();

		for (unsigned long i = 0; i < iters; i++) {
			check(sim_dev_translate(dev, base + p * SIM_SZ_4K,
						SIM_ACCESS_READ, &hva, NULL),
			      "translate");
			p = p + 1 == pages ? 0 : p + 1;
		}
		t[r] = now_ns() - t0;
	}
	sim_dev_get_stats(dev, &s1);
	med = median(t, RUNS);
	printf("{\"bench\":\"sim_dma\",\"metric\":\"translations_per_s\","
	       "\"value\":%.0f,\"unit\":\"1/s\",\"iotlb\":\"%s\","
	       "\"hit_rate\":%.4f}\n", iters * 1e9 / med, kind,
	       (double)(s1.iotlb_hits - s0.iotlb_hits) /
	       ((s1.iotlb_hits - s0.iotlb_hits) +
		(s1.iotlb_misses - s0.iotlb_misses)));
}

static void bench_translations(struct env *e)
{
	struct sim_domain *dom4k;
	struct sim_dev *dev;
	unsigned long pages = MEM_SIZE / SIM_SZ_4K;

	/* Hits: 64 pages, all resident in the IOTLB. */
	bench_translate(e, "hit", e->dev, IOVA, 64, 1000000);
	/* Misses: 16384 distinct 4 KiB leaves cycled through a 256-entry
	 * direct-mapped IOTLB: every lookup misses and walks 4 levels. */
	check(sim_domain_create(48, SIM_SZ_4K, 0, &dom4k), "domain4k");
	check(sim_domain_map(dom4k, IOVA, MEM_SIZE, (uintptr_t)e->mem, RW),
	      "map4k");
	check(sim_dev_create(2, 0, 0, &dev), "dev");
	check(sim_dev_attach(dev, dom4k), "attach");
	bench_translate(e, "miss", dev, IOVA, pages, 200000);
	sim_dev_destroy(dev);
	sim_domain_destroy(dom4k);
}

/* ------------------------------------------------------------------ */

#define SPLIT_IOVA_SPACE (8ULL << 30)	/* 4096 leaves aliasing MEM_SIZE */
#define SPLIT_LEAVES	 (SPLIT_IOVA_SPACE / SIM_SZ_2M)
#define SPLIT_CHUNK	 (64 * 1024)

struct split_run {
	struct sim_domain *dom;
	struct sim_dev *dev;
	uint8_t *src;
	int stop;
	uint64_t bytes;
	uint64_t faults;
};

static void *split_dma(void *arg)
{
	struct split_run *s = arg;
	unsigned int seed = 1;
	uint64_t bytes = 0, faults = 0, iova;
	size_t done;

	int phase;

	/* phase: 0 warm-up, 1 measuring, 2 stop */
	while ((phase = __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) != 2) {
		iova = IOVA + ((uint64_t)rand_r(&seed) %
			       (SPLIT_IOVA_SPACE / SPLIT_CHUNK)) * SPLIT_CHUNK;
		if (sim_dma_write(s->dev, iova, s->src, SPLIT_CHUNK, 0,
				  &done) && phase)
			faults++;
		if (phase)
			bytes += done;
	}
	s->bytes = bytes;
	s->faults = faults;
	return NULL;
}

static void split_setup(struct env *e, struct split_run *s)
{
	memset(s, 0, sizeof(*s));
	s->src = e->src;
	check(sim_domain_create(48, ALL_SIZES, 0, &s->dom), "domain");
	for (uint64_t o = 0; o < SPLIT_IOVA_SPACE; o += MEM_SIZE)
		check(sim_domain_map(s->dom, IOVA + o, MEM_SIZE,
				     (uintptr_t)e->mem, RW), "map");
	check(sim_dev_create(3, 0, 0, &s->dev), "dev");
	check(sim_dev_attach(s->dev, s->dom), "attach");
}

/*
 * One DMA thread writes 64 KiB at random IOVAs; meanwhile the calling
 * thread either punches one 4 KiB hole into every 2 MiB leaf (each punch
 * splits a leaf, invalidates and waits for in-flight DMA) or just waits
 * 300 ms (baseline).  Returns GB/s over the measured phase.
 */
static double split_measure(struct env *e, int punch, unsigned long *splits,
			    double *elapsed_s, uint64_t *faults)
{
	struct split_run s;
	unsigned long *order = malloc(SPLIT_LEAVES * sizeof(*order));
	unsigned int seed = 7;
	struct timespec pause = { 0, 1000000 };
	struct sim_pgt_stats st;
	uint64_t t0, t1;
	unsigned long i, j, tmp;
	pthread_t th;

	split_setup(e, &s);
	for (i = 0; i < SPLIT_LEAVES; i++)
		order[i] = i;
	for (i = SPLIT_LEAVES - 1; i > 0; i--) {
		j = rand_r(&seed) % (i + 1);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	pthread_create(&th, NULL, split_dma, &s);
	nanosleep(&pause, NULL);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	t0 = now_ns();
	for (i = 0; punch && i < SPLIT_LEAVES; i++) {
		uint64_t iova = IOVA + order[i] * SIM_SZ_2M +
				(rand_r(&seed) % 512) * SIM_SZ_4K;

		if (sim_domain_unmap(s.dom, iova, SIM_SZ_4K) != SIM_SZ_4K)
			exit(1);
	}
	if (!punch)
		while (now_ns() - t0 < 300000000ULL)
			nanosleep(&pause, NULL);
	__atomic_store_n(&s.stop, 2, __ATOMIC_RELEASE);
	t1 = now_ns();
	pthread_join(th, NULL);
	sim_pgtable_stats(s.dom->pgt, &st);
	*splits = st.splits;
	*faults = s.faults;
	*elapsed_s = (t1 - t0) / 1e9;
	sim_dev_destroy(s.dev);
	sim_domain_destroy(s.dom);
	free(order);
	return s.bytes / 1e9 / *elapsed_s;
}

static void bench_split(struct env *e)
{
	unsigned long splits, base_splits;
	double gbps, base, secs, base_secs;
	uint64_t faults, base_faults;

	base = split_measure(e, 0, &base_splits, &base_secs, &base_faults);
	gbps = split_measure(e, 1, &splits, &secs, &faults);
	printf("{\"bench\":\"sim_dma\",\"metric\":\"dma_gbps_during_split\","
	       "\"value\":%.2f,\"unit\":\"GB/s\",\"baseline_gbps\":%.2f,"
	       "\"chunk\":%d,\"splits\":%lu,\"splits_per_s\":%.0f,"
	       "\"dma_faults\":%lu}\n", gbps, base, SPLIT_CHUNK, splits,
	       splits / secs, (unsigned long)faults);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 4096, 65536, 1048576 };
	struct bench_opts o;
	struct env e;

	if (bench_parse(argc, argv, &o) != argc) {
		fprintf(stderr, "usage: %s [--quick] [--reps N]\n", argv[0]);
		return 2;
	}
	RUNS = o.reps ? o.reps : o.sizes == BENCH_QUICK ? 7 : MAX_RUNS;
	env_init(&e);
	for (unsigned int i = 0; i < 3; i++) {
		for (int leaf4k = 0; leaf4k < 2; leaf4k++) {
			bench_copy_ratio(&e, sizes[i], 1, leaf4k);
			bench_copy_ratio(&e, sizes[i], 0, leaf4k);
		}
	}
	bench_translations(&e);
	bench_split(&e);
	fflush(stdout);
	sim_dev_destroy(e.dev);
	sim_domain_destroy(e.dom);
	sim_dev_destroy(e.dev4k);
	sim_domain_destroy(e.dom4k);
	return 0;
}
