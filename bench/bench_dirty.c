/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty tracking for a pre-copy migration.  Prints JSON lines:
 *
 *   read_clear_round_ms     one ioasid_dirty_read() read-and-clear of all
 *                           of a 64 GiB guest (a sparse memfd mapped at
 *                           64 GiB), after the simulated NIC wrote
 *                           `writes_per_round` random pages; median over
 *                           `rounds`.  mode embedded|daemon; leaf 4K (a
 *                           page-granular IOAS: 16,777,216 IOPTEs) or 1G
 *                           (64 IOPTEs: each write marks 262,144 pages).
 *   bitmap_bytes_per_round  what one round moves through ioasidd: the
 *                           bitmap, written by the daemon into the
 *                           connection's memfd (`via`: shared memory,
 *                           not the socket, which carries one request
 *                           and one reply of a few dozen bytes).
 *   dma_write_ns            simulated DMA, 64 bytes into each of `pages`
 *                           4 KiB pages (IOTLB misses: every write walks)
 *                           or into 64 pages over and over (hits), with
 *                           tracking never started, on, and stopped again;
 *                           median over `reps` passes (at least 15), the
 *                           three taking turns; dma_write_ratio_vs_never: on or stopped
 *                           over never, the median of the turns' ratios.
 *   dirty_bits_set          D bits in the page table after the passes with
 *                           tracking stopped (cleared first) and never
 *                           started: none.
 *
 * Usage: bench_dirty [--quick] [--reps N] [--daemon PATH]
 *   (the daemon: --daemon or $IOASIDD; without it, embedded only)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libioasid.h>

#include "backends/sim/dma.h"
#include "backends/sim/iotlb.h"
#include "backends/sim/pgtable.h"
#include "bench.h"

#define GUEST_BYTES	(64ULL << 30)
#define GUEST_IOVA	(64ULL << 30)
#define PAGE		4096ULL
#define NIC		"0000:00:01.0"

#define MAX_REPS 32
/* tracking_cost(): passes are a millisecond or two; take enough turns */
#define MIN_TURNS 15
static int rounds = 5, writes_per_round = 1024, reps = 9;

static int fail(struct ioasid_ctx *ctx, const char *what, int r)
{
	fprintf(stderr, "bench_dirty: %s: %s (%s)\n", what, strerror(-r),
		ctx ? ioasid_last_error(ctx) : "");
	return 1;
}

static uint64_t popcount(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/* ---- rounds over a 64 GiB guest, through the public API ------------------ */

static int guest(struct ioasid_ctx *ctx, bool granular, uint32_t *ioas,
		 uint32_t *nic, int *fd)
{
	uint64_t iova = GUEST_IOVA;

	*fd = memfd_create("bench-guest", MFD_CLOEXEC);
	if (*fd < 0 || ftruncate(*fd, (off_t)GUEST_BYTES) < 0)
		return -errno;
	return ioasid_ioas_alloc(ctx, granular ? IOASID_IOAS_PAGE_GRANULAR : 0,
				 ioas) ?:
	       ioasid_map_file(ctx, *ioas, *fd, 0, GUEST_BYTES,
			       IOASID_MAP_READ | IOASID_MAP_WRITE |
			       IOASID_MAP_FIXED_IOVA, &iova) ?:
	       ioasid_device_bind(ctx, NIC, -1, nic) ?:
	       ioasid_device_attach(ctx, *nic, *ioas, 0) ?:
	       ioasid_dirty_start(ctx, *ioas, 0);
}

static int run_rounds(const char *uri, const char *mode, bool granular)
{
	const uint64_t words = GUEST_BYTES / PAGE / 64;
	uint64_t *bm = malloc(words * 8), seed = 1, dirty = 0;
	double *ms = calloc((size_t)rounds, sizeof(*ms));
	struct ioasid_ctx *ctx = NULL;
	uint32_t ioas = 0, nic = 0;
	int fd = -1, r;

	if (!bm || !ms)
		return 1;
	r = ioasid_new(uri, &ctx);
	if (r < 0)
		return fail(NULL, "ioasid_new", r);
	r = guest(ctx, granular, &ioas, &nic, &fd);
	if (r < 0)
		return fail(ctx, "setting up the guest", r);
	for (int k = 0; k < rounds; k++) {
		double t;

		for (int w = 0; w < writes_per_round; w++) {
			uint64_t page, v = (uint64_t)w, done;

			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			page = (seed >> 24) % (GUEST_BYTES / PAGE);
			r = ioasid_device_dma(ctx, nic, GUEST_IOVA + page * PAGE,
					      &v, sizeof(v), IOASID_DMA_WRITE,
					      &done);
			if (r < 0)
				return fail(ctx, "device DMA", r);
		}
		t = bench_now_ns();
		r = ioasid_dirty_read(ctx, ioas, GUEST_IOVA, GUEST_BYTES, bm, 0);
		ms[k] = (bench_now_ns() - t) / 1e6;
		if (r < 0)
			return fail(ctx, "ioasid_dirty_read", r);
		dirty += popcount(bm, words);
	}
	printf("{\"bench\":\"dirty\",\"metric\":\"read_clear_round_ms\","
	       "\"value\":%.3f,\"unit\":\"ms\",\"mode\":\"%s\","
	       "\"guest_bytes\":%llu,\"leaf\":\"%s\",\"writes_per_round\":%d,"
	       "\"dirty_pages_per_round\":%llu,\"bitmap_bytes\":%llu,"
	       "\"rounds\":%d}\n", bench_median(ms, rounds), mode,
	       (unsigned long long)GUEST_BYTES, granular ? "4K" : "1G",
	       writes_per_round, (unsigned long long)(dirty / (uint64_t)rounds),
	       (unsigned long long)(words * 8), rounds);
	if (!strcmp(mode, "daemon") && granular)
		printf("{\"bench\":\"dirty\",\"metric\":\"bitmap_bytes_per_round\","
		       "\"value\":%llu,\"unit\":\"bytes\",\"mode\":\"daemon\","
		       "\"via\":\"memfd\",\"guest_bytes\":%llu}\n",
		       (unsigned long long)(words * 8),
		       (unsigned long long)GUEST_BYTES);
	fflush(stdout);
	ioasid_unref(ctx);
	close(fd);
	free(ms);
	free(bm);
	return 0;
}

/* ---- the cost of tracking while stopped, on the simulator itself -------- */

#define SIM_PAGES	16384		/* 64 MiB of 4 KiB IOPTEs */
#define SIM_IOVA	(1ULL << 32)
#define HOT_PAGES	64		/* fit the IOTLB: hits */

struct simdev {
	struct sim_domain *dom;
	struct sim_dev *dev;
	uint8_t *mem;
};

static void sim_setup(struct simdev *s)
{
	s->mem = mmap(NULL, SIM_PAGES * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (s->mem == MAP_FAILED ||
	    sim_domain_create(48, SIM_SZ_4K, 0, &s->dom) ||
	    sim_dev_create(1, 0, 0, &s->dev)) {
		fprintf(stderr, "bench_dirty: cannot set up the simulator\n");
		exit(1);
	}
	for (uint64_t p = 0; p < SIM_PAGES; p++)
		if (sim_domain_map(s->dom, SIM_IOVA + p * PAGE, PAGE,
				   (uintptr_t)s->mem + p * PAGE,
				   SIM_PROT_READ | SIM_PROT_WRITE)) {
			fprintf(stderr, "bench_dirty: map failed\n");
			exit(1);
		}
	sim_dev_attach(s->dev, s->dom);
}

/* One pass: ns per 64-byte write, over all pages or the hot few. */
static double pass(struct simdev *s, bool hot)
{
	uint64_t n = hot ? 64 * HOT_PAGES : SIM_PAGES, v = 0;
	double t = bench_now_ns();
	size_t done;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t page = hot ? i % HOT_PAGES : i;

		sim_dma_write(s->dev, SIM_IOVA + page * PAGE, &v, sizeof(v), 0,
			      &done);
	}
	return (bench_now_ns() - t) / (double)n;
}

static uint64_t dirty_bits(struct simdev *s)
{
	static uint64_t bm[SIM_PAGES / 64];

	memset(bm, 0, sizeof(bm));
	sim_domain_read_and_clear_dirty(s->dom, SIM_IOVA, SIM_PAGES * PAGE, bm,
					SIM_DIRTY_NO_CLEAR);
	return popcount(bm, SIM_PAGES / 64);
}

static void simdev_free(struct simdev *s)
{
	sim_dev_destroy(s->dev);
	sim_domain_destroy(s->dom);
	munmap(s->mem, SIM_PAGES * PAGE);
}

enum { NEVER, ON, STOPPED, NR_STATES };

/*
 * The three states side by side, each on a domain of its own: "never"
 * as made; "on" started, a read-and-clear before each pass (a pre-copy
 * round); "stopped" started, written, cleared and stopped before the
 * passes, so every D bit counted afterwards was set while stopped.  The
 * passes take turns (never, on, stopped, never, ...), so a change of the
 * machine's load falls on all three, and each turn starts with the next
 * state, so that no place in the turn favours one; the ratios are the
 * medians of the per-turn ratios.
 */
static void tracking_cost_of(bool hot)
{
	static const char *const states[] = { "never", "on", "stopped" };
	int turns = reps > MIN_TURNS ? reps : MIN_TURNS;
	struct simdev s[NR_STATES];
	double v[NR_STATES][MAX_REPS], ratio[NR_STATES][MAX_REPS];

	for (int st = 0; st < NR_STATES; st++) {
		sim_setup(&s[st]);
		if (st != NEVER)
			sim_domain_set_dirty_tracking(s[st].dom, true);
		pass(&s[st], hot);		/* warm */
		if (st == STOPPED) {
			sim_domain_read_and_clear_dirty(s[st].dom, SIM_IOVA,
					SIM_PAGES * PAGE, NULL,
					SIM_DIRTY_DISCARD);
			sim_domain_set_dirty_tracking(s[st].dom, false);
		}
	}
	for (int k = 0; k < turns; k++) {
		/* each turn starts with another state: no order favours one */
		for (int i = 0, st = k % NR_STATES; i < NR_STATES;
		     i++, st = (st + 1) % NR_STATES) {
			if (st == ON)	/* a pre-copy round */
				sim_domain_read_and_clear_dirty(s[st].dom,
						SIM_IOVA, SIM_PAGES * PAGE,
						NULL, SIM_DIRTY_DISCARD);
			v[st][k] = pass(&s[st], hot);
		}
		for (int st = 0; st < NR_STATES; st++)
			ratio[st][k] = v[st][k] / v[NEVER][k];
	}
	for (int st = 0; st < NR_STATES; st++) {
		printf("{\"bench\":\"dirty\",\"metric\":\"dma_write_ns\","
		       "\"value\":%.1f,\"unit\":\"ns\",\"tracking\":"
		       "\"%s\",\"iotlb\":\"%s\",\"pages\":%d,"
		       "\"bytes_per_write\":8,\"reps\":%d}\n",
		       bench_median(v[st], turns), states[st],
		       hot ? "hits" : "misses",
		       hot ? HOT_PAGES : SIM_PAGES, turns);
		if (st != NEVER)
			printf("{\"bench\":\"dirty\",\"metric\":"
			       "\"dma_write_ratio_vs_never\",\"value\":%.3f,"
			       "\"unit\":\"x\",\"tracking\":\"%s\","
			       "\"iotlb\":\"%s\",\"reps\":%d}\n",
			       bench_median(ratio[st], turns), states[st],
			       hot ? "hits" : "misses", turns);
		if (st != ON)
			printf("{\"bench\":\"dirty\",\"metric\":"
			       "\"dirty_bits_set\",\"value\":%llu,"
			       "\"unit\":\"pages\",\"tracking\":\"%s\","
			       "\"iotlb\":\"%s\"}\n",
			       (unsigned long long)dirty_bits(&s[st]),
			       states[st], hot ? "hits" : "misses");
	}
	for (int st = 0; st < NR_STATES; st++)
		simdev_free(&s[st]);
}

static void tracking_cost(void)
{
	tracking_cost_of(false);
	tracking_cost_of(true);
}

/* ---- the daemon ----------------------------------------------------------- */

static char sock_dir[] = "/tmp/ioasid-bench-dirty-XXXXXX";
static char sock_path[128];

static pid_t start_daemon(const char *path, char *uri, size_t len)
{
	pid_t pid;

	if (!mkdtemp(sock_dir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/sock", sock_dir);
	snprintf(uri, len, "unix:%s", sock_path);
	pid = fork();
	if (pid == 0) {
		execl(path, path, "--socket", sock_path, "--backend", "sim",
		      "--config", "/dev/null", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(sock_path, F_OK); i++)
		usleep(10000);
	return access(sock_path, F_OK) ? -1 : pid;
}

static void stop_daemon(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	unlink(sock_path);
	rmdir(sock_dir);
}

int main(int argc, char **argv)
{
	const char *daemon = getenv("IOASIDD");
	struct bench_opts o;
	char uri[160];
	int i, r = 0;
	pid_t pid;

	i = bench_parse(argc, argv, &o);
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--daemon") && i + 1 < argc) {
			daemon = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--quick] [--reps N] "
				"[--daemon PATH]\n", argv[0]);
			return 2;
		}
	}
	if (o.sizes == BENCH_QUICK) {
		rounds = 3;
		writes_per_round = 256;
		reps = 5;
	}
	if (o.reps)
		reps = rounds = o.reps;
	if (reps > MAX_REPS) {
		fprintf(stderr, "bench_dirty: --reps %d: at most %d\n", reps,
			MAX_REPS);
		return 2;
	}
	tracking_cost();
	r = run_rounds("sim", "embedded", true) ||
	    run_rounds("sim", "embedded", false);
	if (r || !daemon || !*daemon)
		return r;
	pid = start_daemon(daemon, uri, sizeof(uri));
	if (pid < 0) {
		fprintf(stderr, "bench_dirty: cannot start %s\n", daemon);
		stop_daemon(pid);
		return 1;
	}
	r = run_rounds(uri, "daemon", true);
	stop_daemon(pid);
	return r;
}
