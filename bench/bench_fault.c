/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Recoverable fault round trip on the simulated IOMMU: a device's DMA
 * to a page that is not mapped becomes a page request on the IOAS's
 * fault queue; the handler polls the queue's eventfd, reads the record,
 * maps the page, answers success, and the device's DMA then completes.
 * One JSON line per figure:
 *
 *   roundtrip_ns        one page: DMA -> -EINPROGRESS, poll, read,
 *                       map 4 KiB, respond, DMA retried and done
 *                       (median and p99 over the pages), one thread
 *   roundtrip_wait_ns   the same with an embedded device thread whose
 *                       DMA waits for the answers (IOASID_DMA_PAGE_WAIT)
 *                       while the main thread handles them: wall time per
 *                       page over the whole DMA (embedded only: ioasidd
 *                       refuses waiting DMA)
 *   map_ns              of roundtrip_ns, the handler's 4 KiB map alone
 *                       (median): the rest is the fault machinery
 *   step_ns             each step of roundtrip_ns, median ("step"):
 *                       fault_dma (the DMA that raises the request),
 *                       poll (until the queue's eventfd is readable),
 *                       read, map, respond, retry_dma
 *   dma_mapped_ns       for scale: the same 64-byte DMA to a mapped page
 *
 * "via":"embedded" (a "sim" context) and "via":"ioasidd" (a real ioasidd
 * started for the run, $IOASIDD or the build tree's; the eventfd comes
 * over SCM_RIGHTS and every call is a round trip to the daemon), the
 * latter twice, pinned: "placement":"one_cpu" (the benchmark and ioasidd
 * on CPU 0) and "two_cpus" (ioasidd on CPU 1).
 * --quick: 512 pages per repetition (default 4096); --reps N (default 3).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libioasid.h>

#include "bench.h"
#include "bench_pin.h"
#include "../tests/daemon_fixture.h"

#define PG 4096ull
#define IOVA 0x10000000ull
#define NIC "0000:00:01.0"
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA)

struct rig {
	struct ioasid_ctx *ctx;
	uint32_t dev, ioas, fq;
	int mem, fd;
	uint64_t pages;
};

static void die(struct ioasid_ctx *ctx, const char *what, int r)
{
	fprintf(stderr, "bench_fault: %s: %s (%s)\n", what, strerror(-r),
		ctx ? ioasid_last_error(ctx) : "");
	exit(1);
}

static void rig_up(struct rig *r, const char *uri, uint64_t pages)
{
	int ret;

	r->pages = pages;
	ret = ioasid_new(uri, &r->ctx);
	if (ret < 0)
		die(NULL, "ioasid_new", ret);
	r->mem = memfd_create("bench_fault", MFD_CLOEXEC);
	if (r->mem < 0 || ftruncate(r->mem, (off_t)(pages * PG)) < 0)
		die(NULL, "memfd", -errno);
	if ((ret = ioasid_device_bind(r->ctx, NIC, -1, &r->dev)) < 0)
		die(r->ctx, "bind", ret);
	if ((ret = ioasid_ioas_alloc(r->ctx, 0, &r->ioas)) < 0)
		die(r->ctx, "ioas_alloc", ret);
	if ((ret = ioasid_device_attach(r->ctx, r->dev, r->ioas, 0)) < 0)
		die(r->ctx, "attach", ret);
	ret = ioasid_fault_queue_alloc(r->ctx, r->ioas, 0, 0, 0, &r->fq,
				       &r->fd);
	if (ret < 0)
		die(r->ctx, "fault_queue_alloc", ret);
}

static void rig_down(struct rig *r)
{
	close(r->fd);
	close(r->mem);
	ioasid_unref(r->ctx);
}

static void unmap_all(struct rig *r)
{
	int ret = ioasid_unmap_all(r->ctx, r->ioas, NULL);

	if (ret < 0)
		die(r->ctx, "unmap_all", ret);
}

/* The steps of one round trip, timed each (step_ns). */
enum step { S_FAULT, S_POLL, S_READ, S_MAP, S_RESPOND, S_RETRY, S_NR };
static const char *const step_name[S_NR] = {
	[S_FAULT] = "fault_dma", [S_POLL] = "poll", [S_READ] = "read",
	[S_MAP] = "map", [S_RESPOND] = "respond", [S_RETRY] = "retry_dma",
};

/* Time since *t0, which moves to now. */
static double lap(double *t0)
{
	double now = bench_now_ns(), d = now - *t0;

	*t0 = now;
	return d;
}

/* Wait for a record, map its page, answer success; the page index.
 * @steps (may be NULL): the S_POLL..S_RESPOND times. */
static uint64_t handle_one(struct rig *r, double *steps)
{
	double t0 = bench_now_ns(), dummy[S_NR];
	struct ioasid_page_request q;
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	uint32_t nr;
	uint64_t iova;
	int ret;

	if (!steps)
		steps = dummy;
	steps[S_POLL] = steps[S_READ] = 0;
	for (;;) {
		if (poll(&p, 1, 10000) != 1)
			die(r->ctx, "poll: no page request", -ETIMEDOUT);
		steps[S_POLL] += lap(&t0);
		nr = 1;
		ret = ioasid_fault_queue_read(r->ctx, r->fq, &q, &nr);
		if (ret < 0)
			die(r->ctx, "fault_queue_read", ret);
		steps[S_READ] += lap(&t0);
		if (nr == 1 && !(q.flags & IOASID_PAGE_REQUEST_OVERFLOW))
			break;
	}
	iova = q.addr;
	ret = ioasid_map_file(r->ctx, r->ioas, r->mem, q.addr - IOVA, PG, RW,
			      &iova);
	if (ret < 0)
		die(r->ctx, "map_file", ret);
	steps[S_MAP] = lap(&t0);
	ret = ioasid_fault_respond(r->ctx, r->fq, q.cookie,
				   IOASID_PAGE_RESPONSE_SUCCESS);
	if (ret < 0)
		die(r->ctx, "fault_respond", ret);
	steps[S_RESPOND] = lap(&t0);
	return (q.addr - IOVA) / PG;
}

/* "any" (embedded: unpinned), "one_cpu" or "two_cpus" (place()) */
static const char *placement = "any";

static void emit(const char *via, const char *metric, double v,
		 const char *stat, uint64_t pages, int reps)
{
	printf("{\"bench\":\"fault\",\"metric\":\"%s\",\"value\":%.0f,"
	       "\"unit\":\"ns\",\"stat\":\"%s\",\"via\":\"%s\","
	       "\"placement\":\"%s\",\"pages\":%llu,\"reps\":%d,"
	       "\"backend\":\"sim\"}\n", metric, v, stat, via, placement,
	       (unsigned long long)pages, reps);
	fflush(stdout);
}

static void emit_step(const char *via, enum step st, double v, uint64_t pages,
		      int reps)
{
	printf("{\"bench\":\"fault\",\"metric\":\"step_ns\",\"value\":%.0f,"
	       "\"unit\":\"ns\",\"stat\":\"median\",\"step\":\"%s\","
	       "\"via\":\"%s\",\"placement\":\"%s\",\"pages\":%llu,"
	       "\"reps\":%d,\"backend\":\"sim\"}\n", v, step_name[st], via,
	       placement, (unsigned long long)pages, reps);
	fflush(stdout);
}

static void bench_roundtrip(const char *via, const char *uri, uint64_t pages,
			    int reps)
{
	double *t = calloc(pages * reps, sizeof(*t));
	double *m = calloc(pages * reps, sizeof(*m));
	double *sp = calloc(pages * reps * S_NR, sizeof(*sp)), t1;
	double *col = calloc(pages * reps, sizeof(*col));
	uint8_t buf[64] = { 1 };
	struct rig r;
	uint64_t k = 0, done;
	int ret;

	if (!t || !m || !sp || !col)
		die(NULL, "calloc", -ENOMEM);
	rig_up(&r, uri, pages);
	for (int rep = 0; rep < reps; rep++) {
		for (uint64_t i = 0; i < pages; i++, k++) {
			double t0 = bench_now_ns(), *s = &sp[k * S_NR];

			t1 = t0;
			ret = ioasid_device_dma(r.ctx, r.dev, IOVA + i * PG,
						buf, sizeof(buf),
						IOASID_DMA_WRITE, &done);
			if (ret != -EINPROGRESS)
				die(r.ctx, "first DMA", ret);
			s[S_FAULT] = lap(&t1);
			handle_one(&r, s);
			t1 = bench_now_ns();
			ret = ioasid_device_dma(r.ctx, r.dev, IOVA + i * PG,
						buf, sizeof(buf),
						IOASID_DMA_WRITE, &done);
			if (ret < 0)
				die(r.ctx, "retried DMA", ret);
			s[S_RETRY] = lap(&t1);
			t[k] = bench_now_ns() - t0;
			t0 = bench_now_ns();
			ret = ioasid_device_dma(r.ctx, r.dev, IOVA + i * PG,
						buf, sizeof(buf),
						IOASID_DMA_WRITE, &done);
			if (ret < 0)
				die(r.ctx, "mapped DMA", ret);
			m[k] = bench_now_ns() - t0;
		}
		unmap_all(&r);
	}
	emit(via, "roundtrip_ns", bench_median(t, (int)k), "median", pages,
	     reps);
	emit(via, "roundtrip_ns", t[(k * 99) / 100], "p99", pages, reps);
	for (int st = 0; st < S_NR; st++) {
		for (uint64_t j = 0; j < k; j++)
			col[j] = sp[j * S_NR + st];
		if (st == S_MAP)
			emit(via, "map_ns", bench_median(col, (int)k),
			     "median", pages, reps);
		emit_step(via, st, bench_median(col, (int)k), pages, reps);
	}
	emit(via, "dma_mapped_ns", bench_median(m, (int)k), "median", pages,
	     reps);
	rig_down(&r);
	free(sp);
	free(col);
	free(t);
	free(m);
}

struct device_thread {
	struct rig *r;
	uint8_t *buf;
	int ret;
};

static void *device_main(void *arg)
{
	struct device_thread *d = arg;

	d->ret = ioasid_device_dma(d->r->ctx, d->r->dev, IOVA, d->buf,
				   d->r->pages * PG, IOASID_DMA_WRITE |
				   IOASID_DMA_PAGE_WAIT, NULL);
	return NULL;
}

static void bench_wait(const char *via, const char *uri, uint64_t pages,
		       int reps)
{
	double *t = calloc(reps, sizeof(*t));
	struct device_thread d;
	struct rig r;
	pthread_t th;

	rig_up(&r, uri, pages);
	d.r = &r;
	d.buf = calloc(pages, PG);
	if (!t || !d.buf)
		die(NULL, "calloc", -ENOMEM);
	for (int rep = 0; rep < reps; rep++) {
		double t0 = bench_now_ns();

		if (pthread_create(&th, NULL, device_main, &d))
			die(NULL, "pthread_create", -EAGAIN);
		for (uint64_t i = 0; i < pages; i++)
			handle_one(&r, NULL);
		pthread_join(th, NULL);
		if (d.ret < 0)
			die(r.ctx, "waiting DMA", d.ret);
		t[rep] = (bench_now_ns() - t0) / (double)pages;
		unmap_all(&r);
	}
	emit(via, "roundtrip_wait_ns", bench_median(t, reps), "median", pages,
	     reps);
	rig_down(&r);
	free(d.buf);
	free(t);
}

/*
 * two == 0: the benchmark and ioasidd on CPU 0; two == 1: the benchmark
 * on CPU 0, ioasidd on CPU 1.  -1 when it cannot be done (said why).
 */
static int place(pid_t daemon, int two)
{
	if (two && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "bench_fault: one CPU online, no two_cpus "
			"placement\n");
		return -1;
	}
	if (bench_pin_task(0, 0) < 0 || bench_pin_process(daemon, two) < 0) {
		fprintf(stderr, "bench_fault: sched_setaffinity: %s\n",
			strerror(errno));
		return -1;
	}
	placement = two ? "two_cpus" : "one_cpu";
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon_opts o = { .log_level = "warning" };
	struct daemon_fixture dmn;
	struct bench_opts opts;
	uint64_t pages;
	int reps, i;

	i = bench_parse(argc, argv, &opts);
	if (i < argc) {
		fprintf(stderr, "usage: %s [--quick] [--reps N]\n", argv[0]);
		return 2;
	}
	pages = opts.sizes == BENCH_QUICK ? 512 : 4096;
	reps = opts.reps ? opts.reps : 3;
	signal(SIGPIPE, SIG_IGN);
	bench_roundtrip("embedded", "sim", pages, reps);
	bench_wait("embedded", "sim", pages, reps);
	if (daemon_start(&dmn, &o) < 0) {
		fprintf(stderr, "bench_fault: cannot start %s: no ioasidd "
			"figures\n", daemon_binary());
		return 1;
	}
	for (int two = 0; two < 2; two++)
		if (place(dmn.pid, two) == 0)
			bench_roundtrip("ioasidd", dmn.uri, pages, reps);
	return daemon_stop(&dmn) ? 1 : 0;
}
