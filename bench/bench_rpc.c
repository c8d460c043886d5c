/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench_rpc: what going through ioasidd costs.
 *
 *   roundtrip_ns (raw)      SOCK_SEQPACKET ping-pong between two processes
 *                           with messages the size of an IOAS_INFO request
 *                           and reply: the floor for any daemon
 *   roundtrip_ns (ioasidd)  ioasid_ioas_get_info() through a real ioasidd
 *   ratio_vs_raw            ioasidd rate / raw rate (target >= 0.7)
 *   batched_maps_per_s      4 KiB mappings per second with MAP_BATCH (2048
 *                           ranges of one fd per message; target >= 1 M/s)
 *   pipelined_maps_per_s    MAP_FILE requests kept in flight (one mapping
 *                           and one SCM_RIGHTS descriptor per message)
 *   concurrent_ops_per_s    IOAS_INFO from N clients at once, in total
 *   lookup_ns               ioasid_lookup() of n 4 KiB mappings in random
 *                           order: embedded, through ioasidd's shared view
 *                           ("transport":"ioasidd_view", the fast path) and
 *                           over the socket ("ioasidd_socket",
 *                           IOASID_NO_FASTPATH=1; --lookups of them)
 *   view_ratio_vs_embedded  view / embedded (target <= 2)
 *   single_calls_per_s      ioasid_map_file() and ioasid_unmap() of one
 *                           page, back to back, each call waiting for its
 *                           result: embedded, through ioasidd's request
 *                           ring ("ioasidd_ring", the fast path) and over
 *                           the socket ("ioasidd_socket"); target >= 1 M/s
 *   lone_call_ns            one ioasid_unmap() (of nothing) gap_us after
 *                           the end of the previous call (target <= 10 us):
 *                           within the daemon's spin (daemon_spin_us) it
 *                           still looks at the ring, after it sleeps;
 *                           gap_us 0, 50, 200, 2000, 20000 (--gaps);
 *                           lone_call_p90_ns its 90th percentile;
 *                           transport "raw_eventfd": the same calls
 *                           between two bare processes, an echo that
 *                           sleeps in read() on an eventfd and a client
 *                           that waits as the library does, the floor of
 *                           any server that sleeps when idle, measured in
 *                           turn with ioasidd's in each run;
 *                           lone_call_ratio_vs_raw the median of the
 *                           per-run ratios
 *   daemon_cpu_per_lone_call_ns  CPU time ioasidd spent per lone call
 *                           (its CPU clock, over 200 ms of such calls):
 *                           what its bounded spin
 *                           after each burst costs; daemon_cpu_pct the
 *                           same as a share of the time between calls
 *   client_sleeps_per_lone_call  the client's voluntary context switches
 *                           per call (its getrusage): 0 when it found its
 *                           completion while spinning, 1 when it slept
 *                           and paid a second wakeup
 *   daemon_sleeps_per_lone_call  the daemon's (/proc/PID/status): 1 when
 *                           every call found it asleep
 *   daemon_idle_cpu_pct     ioasidd's CPU share over --idle-seconds after
 *                           one call, the client connected and silent
 *
 * calls and idle run twice: against the daemon with its default spin and
 * against a second one started with --ring-spin-us 0 (daemon_spin_us).
 *
 * Round trips and maps are measured twice, pinned with sched_setaffinity:
 * "placement":"one_cpu" (client, daemon and the raw echo process on CPU
 * 0) and "two_cpus" (client on CPU 0, daemon and echo process on CPU 1);
 * without a second CPU the second placement is skipped (said on stderr).
 * Unpinned, the scheduler's choice decides the figure from run to run.
 * concurrent_ops_per_s runs unpinned ("placement":"any").
 *
 * One JSON object per line; every figure is the median of --runs runs.
 * Usage: bench_rpc [--runs N] [--iters N] [--mappings N] [--lookups N]
 *                  [--idle-seconds S] [--gaps US,...] [--only PART,...]
 *                  [--quick]
 * PART: roundtrips, maps, lookups, calls, idle, concurrency.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include "../tests/daemon_fixture.h"
#include "bench_pin.h"
#include "libioasid.h"
#include "proto/codec.h"
#include "proto/ring.h"

#define MAX_RUNS	31

static int runs = 5;
static int iters = 20000;
static int nr_lookup_maps = 65536;
static int socket_lookups = 5000;
static double seconds = 1.0;
static struct daemon_fixture ioasidd;
static struct daemon_fixture nospin;	/* --ring-spin-us 0 */
static struct daemon_fixture *dmn = &ioasidd;	/* the one measured */
static unsigned int daemon_spin_us = RING_DAEMON_SPIN_NS / 1000;
static double idle_seconds = 10.0;
static const char *only;		/* --only: comma-separated parts */
static const char *placement = "any";
static int peer_cpu = -1;	/* daemon and echo process; -1: unpinned */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_rpc: %s: %s\n", what, strerror(errno));
	if (ioasidd.pid > 0)
		daemon_stop(&ioasidd);
	if (nospin.pid > 0)
		daemon_stop(&nospin);
	exit(1);
}

/* ---- placement ----------------------------------------------------------- */

/* two == 0: everything on CPU 0; two == 1: client on 0, peers on 1. */
static int place(int two)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (two && cpus < 2) {
		fprintf(stderr, "bench_rpc: one CPU online, no two_cpus "
			"placement\n");
		return -1;
	}
	peer_cpu = two;
	placement = two ? "two_cpus" : "one_cpu";
	if (bench_pin_task(0, 0) < 0 ||
	    bench_pin_process(dmn->pid, peer_cpu) < 0) {
		fprintf(stderr, "bench_rpc: sched_setaffinity: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

static void unplace(void)
{
	peer_cpu = -1;
	placement = "any";
	bench_pin_task(0, -1);
	bench_pin_process(dmn->pid, -1);
}

/* ---- message sizes of a small request ------------------------------------ */

static size_t encoded_len(struct nl_msg *msg)
{
	size_t len;

	proto_msg_data(msg, &len);
	nlmsg_free(msg);
	return len;
}

/* The bytes an IOAS_INFO request and its reply take on the wire. */
static void info_sizes(size_t *req, size_t *rep)
{
	struct ioasid_ioas_info info = { .size = sizeof(info) };
	struct ioasid_op op;
	struct nl_msg *msg;
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;

	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.ioas_id = 1;
	op.out = &info;
	op.out_cap = op.out_len = sizeof(info);
	if (proto_encode_request(&op, 1, &msg, fds, &nfds) < 0)
		die("encode");
	*req = encoded_len(msg);
	if (proto_encode_reply(&op, 0, 1, &msg) < 0)
		die("encode");
	*rep = encoded_len(msg);
}

/* ---- raw ping-pong and IOAS_INFO, interleaved --------------------------- */

/*
 * The host is shared: load comes and goes.  So each run alternates short
 * blocks of raw ping-pong and of IOAS_INFO through ioasidd, and the ratio
 * compares the two totals of the same run.
 */
#define BLOCKS 10

struct pingpong {
	int s;
	pid_t child;
	size_t req, rep;
	char buf[4096];
};

static void echo_child(int s, size_t rep_len)
{
	char buf[4096] = { 0 };

	while (recv(s, buf, sizeof(buf), 0) > 0)
		if (send(s, buf, rep_len, 0) < 0)
			break;
	_exit(0);
}

static void raw_open(struct pingpong *p, size_t req, size_t rep)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		die("socketpair");
	p->child = fork();
	if (p->child < 0)
		die("fork");
	if (p->child == 0) {
		close(sv[0]);
		if (peer_cpu >= 0)
			bench_pin_task(0, peer_cpu);
		echo_child(sv[1], rep);
	}
	close(sv[1]);
	p->s = sv[0];
	p->req = req;
	p->rep = rep;
	memset(p->buf, 0, sizeof(p->buf));
}

static uint64_t raw_block(struct pingpong *p, int n)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++)
		if (send(p->s, p->buf, p->req, 0) < 0 ||
		    recv(p->s, p->buf, sizeof(p->buf), 0) <= 0)
			die("ping-pong");
	return now_ns() - t0;
}

static void raw_close(struct pingpong *p)
{
	close(p->s);
	waitpid(p->child, NULL, 0);
}

static uint64_t info_block(struct ioasid_ctx *ctx, uint32_t ioas, int n)
{
	struct ioasid_ioas_info info;
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++)
		if (ioasid_ioas_get_info(ctx, ioas, &info) < 0)
			die("IOAS_INFO");
	return now_ns() - t0;
}

static struct ioasid_ctx *client(uint32_t *ioas);

/* One run: ns per round trip, raw and through ioasidd. */
static void roundtrip_run(size_t req, size_t rep, double *raw, double *rpc)
{
	uint64_t traw = 0, trpc = 0;
	struct pingpong p;
	uint32_t ioas;
	struct ioasid_ctx *ctx = client(&ioas);
	int n = iters / BLOCKS;

	raw_open(&p, req, rep);
	raw_block(&p, n);		/* warm up */
	info_block(ctx, ioas, n);
	for (int b = 0; b < BLOCKS; b++) {
		traw += raw_block(&p, n);
		trpc += info_block(ctx, ioas, n);
	}
	raw_close(&p);
	ioasid_unref(ctx);
	*raw = (double)traw / (n * BLOCKS);
	*rpc = (double)trpc / (n * BLOCKS);
}

/* ---- through ioasidd ------------------------------------------------------ */

static struct ioasid_ctx *client(uint32_t *ioas)
{
	struct ioasid_ctx *ctx;

	if (ioasid_new(ioasidd.uri, &ctx) < 0 ||
	    ioasid_ioas_alloc(ctx, 0, ioas) < 0) {
		fprintf(stderr, "bench_rpc: %s\n", ioasid_last_error(NULL));
		daemon_stop(&ioasidd);
		exit(1);
	}
	return ctx;
}

/* ---- many clients -------------------------------------------------------- */

struct worker {
	pthread_t thread;
	pthread_barrier_t *start;
	volatile bool *stop;
	uint64_t ops;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct ioasid_ioas_info info;
	uint32_t ioas;
	struct ioasid_ctx *ctx = client(&ioas);

	pthread_barrier_wait(w->start);
	while (!*w->stop) {
		if (ioasid_ioas_get_info(ctx, ioas, &info) < 0)
			break;
		w->ops++;
	}
	ioasid_unref(ctx);
	return NULL;
}

static double concurrent_ops_per_s(int nr)
{
	struct worker *w = calloc((size_t)nr, sizeof(*w));
	pthread_barrier_t start;
	volatile bool stop = false;
	uint64_t t0, ops = 0;

	pthread_barrier_init(&start, NULL, (unsigned int)nr + 1);
	for (int i = 0; i < nr; i++) {
		w[i].start = &start;
		w[i].stop = &stop;
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now_ns();
	while (now_ns() - t0 < (uint64_t)(seconds * 1e9))
		usleep(10000);
	stop = true;
	t0 = now_ns() - t0;
	for (int i = 0; i < nr; i++) {
		pthread_join(w[i].thread, NULL);
		ops += w[i].ops;
	}
	pthread_barrier_destroy(&start);
	free(w);
	return (double)ops * 1e9 / (double)t0;
}

/* ---- mapping throughput over a raw connection ---------------------------- */

struct conn {
	int s;
	uint32_t seq;
	unsigned char *rx;
};

static void conn_open(struct conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sndbuf = 2 * IOASID_MAX_MSG;

	c->s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ioasidd.sock);
	setsockopt(c->s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (c->s < 0 || connect(c->s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	c->rx = malloc(IOASID_MAX_MSG);
	c->seq = 0;
}

static void conn_send(struct conn *c, struct ioasid_op *op)
{
	union {
		char buf[PROTO_CMSG_SPACE];
		struct cmsghdr align;
	} control = { { 0 } };
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	struct nl_msg *msg;
	size_t len;

	if (proto_encode_request(op, ++c->seq, &msg, fds, &nfds) < 0) {
		fprintf(stderr, "bench_rpc: %s\n", op->errmsg);
		exit(1);
	}
	iov.iov_base = (void *)proto_msg_data(msg, &len);
	iov.iov_len = len;
	if (nfds) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	if (sendmsg(c->s, &mh, 0) != (ssize_t)len)
		die("sendmsg");
	nlmsg_free(msg);
}

/* The next reply: its result, with @op's results filled in. */
static int conn_reply(struct conn *c, struct ioasid_op *op)
{
	struct proto_msg m;
	char why[256];
	ssize_t n;
	int r;

	do {
		n = recv(c->s, c->rx, IOASID_MAX_MSG, 0);
		if (n <= 0)
			die("recv");
		if (proto_parse(c->rx, (size_t)n, 0, PROTO_FROM_DAEMON, &m,
				why, sizeof(why)) < 0) {
			fprintf(stderr, "bench_rpc: bad reply: %s\n", why);
			exit(1);
		}
	} while (m.cmd == IOASID_CMD_EVENT);
	if (proto_decode_reply(&m, NULL, op, &r) < 0)
		die("reply");
	return r;
}

static int conn_call(struct conn *c, struct ioasid_op *op)
{
	conn_send(c, op);
	return conn_reply(c, op);
}

static uint32_t conn_ioas(struct conn *c)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	if (conn_call(c, &op) < 0)
		die("IOAS_ALLOC");
	return op.out_id;
}

static void conn_unmap_all(struct conn *c, uint32_t ioas)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas;
	op.length = UINT64_MAX;
	op.flags = IOASID_UNMAP_MISSING_OK;
	if (conn_call(c, &op) < 0)
		die("UNMAP");
}

#define MAP_BASE	0x100000000ULL
#define WINDOW		32
#define PER_MSG		2048	/* 48 KiB of entries: one attribute */

/* MAP_FILE requests, WINDOW of them in flight: 4 KiB each. */
static double pipelined_maps_per_s(struct conn *c, uint32_t ioas, int fd,
				   int n)
{
	struct ioasid_op op;
	uint64_t t0;
	int sent = 0, done = 0;

	t0 = now_ns();
	while (done < n) {
		while (sent < n && sent - done < WINDOW) {
			ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
			op.ioas_id = ioas;
			op.fd = fd;
			op.offset = 0;
			op.length = 4096;
			op.iova = MAP_BASE + (uint64_t)sent * 8192;
			op.flags = IOASID_MAP_READ | IOASID_MAP_WRITE |
				   IOASID_MAP_FIXED_IOVA;
			conn_send(c, &op);
			sent++;
		}
		ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
		if (conn_reply(c, &op) < 0) {
			fprintf(stderr, "bench_rpc: MAP_FILE: %s\n", op.errmsg);
			exit(1);
		}
		done++;
	}
	t0 = now_ns() - t0;
	conn_unmap_all(c, ioas);
	return (double)n * 1e9 / (double)t0;
}

/*
 * One MAP_BATCH message per @per_msg mappings (4 KiB each, every other
 * page of the file at every other IOVA page: nothing merges); 0 when the
 * daemon refuses MAP_BATCH.
 */
static double batched_maps_per_s(struct conn *c, uint32_t ioas, int fd,
				 int n, int per_msg)
{
	struct ioasid_map_entry *e = calloc((size_t)per_msg, sizeof(*e));
	struct ioasid_op op;
	uint64_t t0;
	int r;

	t0 = now_ns();
	for (int done = 0; done < n; done += per_msg) {
		for (int i = 0; i < per_msg; i++) {
			uint64_t k = (uint64_t)(done + i);

			e[i].iova = MAP_BASE + k * 8192;
			e[i].offset = (k % 128) * 8192;
			e[i].length = 4096;
		}
		ioasid_op_init(&op, IOASID_CMD_MAP_BATCH);
		op.ioas_id = ioas;
		op.fd = fd;
		op.flags = IOASID_MAP_READ | IOASID_MAP_WRITE |
			   IOASID_MAP_FIXED_IOVA;
		op.in = e;
		op.in_len = (uint32_t)(per_msg * sizeof(*e));
		r = conn_call(c, &op);
		if (r < 0) {
			fprintf(stderr, "bench_rpc: MAP_BATCH: %s\n",
				op.errmsg);
			free(e);
			return 0;
		}
	}
	t0 = now_ns() - t0;
	free(e);
	conn_unmap_all(c, ioas);
	return (double)n * 1e9 / (double)t0;
}

/* ---- output -------------------------------------------------------------- */

static void emit(const char *metric, double value, const char *unit,
		 const char *extra)
{
	printf("{\"bench\":\"rpc\",\"metric\":\"%s\",\"value\":%.6g,"
	       "\"unit\":\"%s\"%s%s,\"placement\":\"%s\",\"runs\":%d}\n",
	       metric, value, unit, extra ? "," : "", extra ? extra : "",
	       placement, runs);
	fflush(stdout);
}

static void bench_roundtrips(void)
{
	double raw[MAX_RUNS], rpc[MAX_RUNS], ratio[MAX_RUNS];
	size_t req, rep;

	info_sizes(&req, &rep);
	for (int i = 0; i < runs; i++) {
		roundtrip_run(req, rep, &raw[i], &rpc[i]);
		ratio[i] = raw[i] / rpc[i];
	}
	emit("roundtrip_ns", median(raw, runs), "ns",
	     "\"transport\":\"raw\"");
	emit("roundtrip_ns", median(rpc, runs), "ns",
	     "\"transport\":\"ioasidd\",\"request\":\"IOAS_INFO\"");
	emit("ratio_vs_raw", median(ratio, runs), "x",
	     "\"target\":0.7");
}

static void bench_maps(void)
{
	double pipe[MAX_RUNS], batch[MAX_RUNS];
	int n = iters * 10, fd;
	struct conn c;
	uint32_t ioas;

	fd = memfd_create("bench", MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		die("memfd");
	conn_open(&c);
	ioas = conn_ioas(&c);
	for (int i = 0; i < runs; i++) {
		pipe[i] = pipelined_maps_per_s(&c, ioas, fd, n / 4);
		batch[i] = batched_maps_per_s(&c, ioas, fd, n, PER_MSG);
	}
	emit("pipelined_maps_per_s", median(pipe, runs), "maps/s",
	     "\"transport\":\"ioasidd\",\"request\":\"MAP_FILE\","
	     "\"in_flight\":32");
	if (median(batch, runs) > 0)
		emit("batched_maps_per_s", median(batch, runs), "maps/s",
		     "\"transport\":\"ioasidd\",\"per_message\":2048,"
		     "\"target\":1e6");
	else
		printf("{\"bench\":\"rpc\",\"metric\":"
		       "\"batched_maps_per_s\",\"value\":null,\"unit\":"
		       "\"maps/s\",\"note\":\"MAP_BATCH refused\"}\n");
	close(c.s);
	free(c.rx);
	close(fd);
}

/* ---- lookups: embedded, the shared view, the socket --------------------- */

#define LOOKUP_BASE	(1ULL << 32)
#define PG		4096ULL

static struct ioasid_ctx *lookup_ctx(const char *uri, bool fastpath)
{
	struct ioasid_ctx *ctx;
	int r;

	if (!fastpath)
		setenv("IOASID_NO_FASTPATH", "1", 1);
	r = ioasid_new(uri, &ctx);
	unsetenv("IOASID_NO_FASTPATH");
	if (r < 0)
		die("ioasid_new");
	return ctx;
}

/* n mappings of one page, every other page from LOOKUP_BASE. */
static uint32_t lookup_fill(struct ioasid_ctx *ctx, int fd, int n)
{
	static struct ioasid_map_entry e[IOASID_MAP_BATCH_MAX];
	static uint64_t iovas[IOASID_MAP_BATCH_MAX];
	uint32_t ioas;

	if (ioasid_ioas_alloc(ctx, 0, &ioas) < 0)
		die("IOAS_ALLOC");
	for (int i = 0; i < n;) {
		uint32_t k = 0;

		for (; k < IOASID_MAP_BATCH_MAX && i < n; k++, i++)
			e[k] = (struct ioasid_map_entry){
				.iova = LOOKUP_BASE + (uint64_t)i * 2 * PG,
				.offset = 0, .length = PG };
		if (ioasid_map_file_batch(ctx, ioas, fd, e, k,
					  IOASID_MAP_READ |
					  IOASID_MAP_FIXED_IOVA, iovas) < 0) {
			fprintf(stderr, "bench_rpc: MAP_BATCH: %s\n",
				ioasid_last_error(ctx));
			exit(1);
		}
	}
	return ioas;
}

/* ns per lookup over @nr of @order (indexes into the n mappings). */
static double lookup_block(struct ioasid_ctx *ctx, uint32_t ioas,
			   const uint32_t *order, int nr)
{
	struct ioasid_mapping m;
	uint64_t t0 = now_ns();

	for (int i = 0; i < nr; i++)
		if (ioasid_lookup(ctx, ioas, LOOKUP_BASE +
				  (uint64_t)order[i] * 2 * PG + 17, &m) < 0)
			die("LOOKUP");
	return (double)(now_ns() - t0) / nr;
}

/* Calls per second: @nr map + unmap pairs, back to back. */
static double single_calls_per_s(struct ioasid_ctx *ctx, uint32_t ioas,
				 int fd, int nr)
{
	uint64_t t0 = now_ns(), iova;

	for (int i = 0; i < nr; i++) {
		iova = 1ULL << 44;
		if (ioasid_map_file(ctx, ioas, fd, 0, PG, IOASID_MAP_READ |
				    IOASID_MAP_FIXED_IOVA, &iova) < 0 ||
		    ioasid_unmap(ctx, ioas, iova, PG, 0, NULL) < 0)
			die("MAP/UNMAP");
	}
	return 2e9 * nr / (double)(now_ns() - t0);
}

/* The same, mapping by the file id of the page calls_ioas() holds. */
static double single_calls_by_id_per_s(struct ioasid_ctx *ctx, uint32_t ioas,
				       int nr)
{
	struct ioasid_mapping m;
	uint64_t t0, iova;

	if (ioasid_lookup(ctx, ioas, 1ULL << 40, &m) < 0)
		die("LOOKUP");
	t0 = now_ns();
	for (int i = 0; i < nr; i++) {
		iova = 1ULL << 44;
		if (ioasid_map_file_id(ctx, ioas, m.file_id, 0, PG,
				       IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
				       &iova) < 0 ||
		    ioasid_unmap(ctx, ioas, iova, PG, 0, NULL) < 0)
			die("MAP_FILE_ID/UNMAP");
	}
	return 2e9 * nr / (double)(now_ns() - t0);
}

/*
 * ioasidd's CPU time so far, ns (-1 if unknown): its process CPU clock.
 * The kernel brings a running thread's share up to date at its next tick
 * or switch, so a reading can lag by a tick: measure over 200 ms or more.
 */
static double daemon_cpu_ns(void)
{
	struct timespec ts;
	clockid_t clk;

	if (clock_getcpuclockid(dmn->pid, &clk) != 0 ||
	    clock_gettime(clk, &ts) < 0)
		return -1;
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/*
 * Wait until @gap_ns after the end of the previous call: sleeping for
 * long gaps (the client is idle, as its CPU would be), spinning on the
 * clock for gaps shorter than a timer's slack.
 */
static void quiet_for(uint64_t since, uint64_t gap_ns)
{
	uint64_t until = since + gap_ns, t;

	while ((t = now_ns()) + 100000 < until) {
		struct timespec ts = { 0, (long)(until - t - 60000) };

		nanosleep(&ts, NULL);
	}
	while (now_ns() < until)
		;
}

/* The caller's voluntary context switches: how often it slept. */
static double my_sleeps(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) < 0)
		return -1;
	return (double)ru.ru_nvcsw;
}

/* The daemon's, over all its threads: how often it went to sleep. */
static double daemon_sleeps(void)
{
	char path[64], line[128];
	double n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)dmn->pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "voluntary_ctxt_switches:", 24))
			n += atof(line + 24);
	fclose(f);
	return n;
}

/* One lone call @gap_ns after @*end; its ns, *@end moved to its end. */
static double lone_call(struct ioasid_ctx *ctx, uint32_t ioas,
			uint64_t gap_ns, uint64_t *end)
{
	uint64_t t;

	quiet_for(*end, gap_ns);
	t = now_ns();
	if (ioasid_unmap(ctx, ioas, 1ULL << 45, PG, IOASID_UNMAP_MISSING_OK,
			 NULL) < 0)
		die("UNMAP");
	*end = now_ns();
	return (double)(*end - t);
}

/* What lone calls at one gap cost: medians over a block of them. */
struct lone {
	double ns, p90_ns;	/* latency: median and 90th percentile */
	double cpu_ns;		/* the daemon's CPU time per call */
	double client_sleeps;	/* per call: the client slept for its result */
	double daemon_sleeps;	/* per call: the daemon went back to epoll */
};

/*
 * @nr lone calls, each @gap_ns after the end of the one before (latency
 * median and p90); then a further 200 ms of calls at that pace (at least
 * @nr) for the daemon's CPU time and both sides' sleeps per call.  The
 * quiet_for() of long gaps sleeps, so the client's own sleeps are
 * counted around the call only.
 */
static void lone_calls(struct ioasid_ctx *ctx, uint32_t ioas, int nr,
		       uint64_t gap_ns, struct lone *out)
{
	double v[64], c0, d0, cs = 0;
	uint64_t end = now_ns();
	int m = (int)(200000000 / (gap_ns + 5000));

	if (nr > 64)
		nr = 64;
	if (m < nr)
		m = nr;
	lone_call(ctx, ioas, 0, &end);
	for (int i = 0; i < nr; i++)
		v[i] = lone_call(ctx, ioas, gap_ns, &end);
	c0 = daemon_cpu_ns();
	d0 = daemon_sleeps();
	for (int i = 0; i < m; i++) {
		double s0;

		quiet_for(end, gap_ns);
		s0 = my_sleeps();
		lone_call(ctx, ioas, 0, &end);
		cs += my_sleeps() - s0;
	}
	out->cpu_ns = c0 < 0 ? -1 : (daemon_cpu_ns() - c0) / m;
	out->daemon_sleeps = d0 < 0 ? -1 : (daemon_sleeps() - d0) / m;
	out->client_sleeps = cs / m;
	qsort(v, (size_t)nr, sizeof(*v), cmp_double);
	out->p90_ns = v[(nr * 9) / 10 < nr ? (nr * 9) / 10 : nr - 1];
	out->ns = median(v, nr);
}

/*
 * The floor under a lone call: the same pattern between two bare
 * processes.  The echo process sleeps in read() on one eventfd and
 * answers on another, as a daemon that sleeps when idle must; the client
 * waits for the answer as the library waits for a completion (spinning
 * RING_CLIENT_SPIN_NS, yielding the CPU when the echo process shares it,
 * then sleeping in poll()).  Whatever a lone call costs beyond this is
 * ioasidd's and the library's own.
 */
static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

struct raw_lone {
	int req, rep;		/* eventfds: client -> echo, echo -> client */
	pid_t child;
};

static void raw_lone_echo(int req, int rep)
{
	uint64_t v;

	while (read(req, &v, sizeof(v)) == (ssize_t)sizeof(v))
		if (write(rep, &v, sizeof(v)) != (ssize_t)sizeof(v))
			break;
	_exit(0);
}

static void raw_lone_open(struct raw_lone *rl)
{
	rl->req = eventfd(0, EFD_CLOEXEC);
	rl->rep = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rl->req < 0 || rl->rep < 0)
		die("eventfd");
	rl->child = fork();
	if (rl->child < 0)
		die("fork");
	if (rl->child == 0) {
		if (peer_cpu >= 0)
			bench_pin_task(0, peer_cpu);
		raw_lone_echo(rl->req, rl->rep);
	}
}

static void raw_lone_close(struct raw_lone *rl)
{
	kill(rl->child, SIGTERM);
	waitpid(rl->child, NULL, 0);
	close(rl->req);
	close(rl->rep);
}

static void raw_lone_wait(struct raw_lone *rl)
{
	uint64_t v, until = now_ns() + RING_CLIENT_SPIN_NS;
	struct pollfd pfd = { .fd = rl->rep, .events = POLLIN };

	while (read(rl->rep, &v, sizeof(v)) < 0) {
		if (errno != EAGAIN)
			die("eventfd read");
		if (now_ns() < until) {
			if (peer_cpu == 0)
				sched_yield();
			else
				cpu_pause();
			continue;
		}
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			die("poll");
	}
}

/* Median (and 90th percentile) ns of @nr raw lone calls @gap_ns apart. */
static double raw_lone_calls(struct raw_lone *rl, int nr, uint64_t gap_ns,
			     double *p90)
{
	uint64_t one = 1, end = now_ns(), t;
	double v[64];

	if (nr > 64)
		nr = 64;
	for (int i = -1; i < nr; i++) {
		quiet_for(end, i < 0 ? 0 : gap_ns);
		t = now_ns();
		if (write(rl->req, &one, sizeof(one)) != (ssize_t)sizeof(one))
			die("eventfd write");
		raw_lone_wait(rl);
		end = now_ns();
		if (i >= 0)
			v[i] = (double)(end - t);
	}
	qsort(v, (size_t)nr, sizeof(*v), cmp_double);
	*p90 = v[(nr * 9) / 10 < nr ? (nr * 9) / 10 : nr - 1];
	return median(v, nr);
}

/* Median ns of @nr lone calls @gap_ns apart; *@cpu_ns as in lone_calls(). */
static double lone_call_ns(struct ioasid_ctx *ctx, uint32_t ioas, int nr,
			   uint64_t gap_ns, double *cpu_ns)
{
	struct lone l;

	lone_calls(ctx, ioas, nr, gap_ns, &l);
	*cpu_ns = l.cpu_ns;
	return l.ns;
}

static void bench_lookups(void)
{
	double emb[MAX_RUNS], view[MAX_RUNS], sock[MAX_RUNS], ratio[MAX_RUNS];
	struct ioasid_ctx *ce, *cv, *cs;
	uint32_t ie, iv, is, *order;
	int n = nr_lookup_maps, fd;
	char extra[160];

	fd = memfd_create("bench", MFD_ALLOW_SEALING);
	order = malloc(sizeof(*order) * (size_t)n);
	if (fd < 0 || !order || ftruncate(fd, 1 << 20) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		die("memfd");
	srand(19);
	for (int i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (int i = n - 1; i > 0; i--) {
		int j = rand() % (i + 1);
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	ce = lookup_ctx("sim", true);
	cv = lookup_ctx(ioasidd.uri, true);
	cs = lookup_ctx(ioasidd.uri, false);
	ie = lookup_fill(ce, fd, n);
	iv = lookup_fill(cv, fd, n);
	is = lookup_fill(cs, fd, n);
	lookup_block(cv, iv, order, 1);		/* the view is made here */
	for (int i = 0; i < runs; i++) {
		emb[i] = lookup_block(ce, ie, order, n);
		view[i] = lookup_block(cv, iv, order, n);
		sock[i] = lookup_block(cs, is, order,
				       socket_lookups < n ? socket_lookups : n);
		ratio[i] = view[i] / emb[i];
	}
	snprintf(extra, sizeof(extra), "\"transport\":\"embedded\","
		 "\"n\":%d,\"lookup_order\":\"random\"", n);
	emit("lookup_ns", median(emb, runs), "ns", extra);
	snprintf(extra, sizeof(extra), "\"transport\":\"ioasidd_view\","
		 "\"n\":%d,\"lookup_order\":\"random\"", n);
	emit("lookup_ns", median(view, runs), "ns", extra);
	snprintf(extra, sizeof(extra), "\"transport\":\"ioasidd_socket\","
		 "\"n\":%d,\"lookups\":%d,\"lookup_order\":\"random\"",
		 n, socket_lookups < n ? socket_lookups : n);
	emit("lookup_ns", median(sock, runs), "ns", extra);
	emit("view_ratio_vs_embedded", median(ratio, runs), "x",
	     "\"target\":2");
	ioasid_unref(ce);
	ioasid_unref(cv);
	ioasid_unref(cs);
	free(order);
	close(fd);
}

/* ---- single calls and lone calls ---------------------------------------- */

#define MAX_GAPS	16
static unsigned int gaps_us[MAX_GAPS] = { 0, 50, 200, 2000, 20000 };
static size_t nr_gaps = 5;

/*
 * An IOAS holding one page of @fd (fd >= 0) for good, as a VMM's IOAS
 * holds its guest memory file while it maps and unmaps pieces of it.
 */
static uint32_t calls_ioas(struct ioasid_ctx *ctx, int fd)
{
	uint64_t iova = 1ULL << 40;
	uint32_t ioas;

	if (ioasid_ioas_alloc(ctx, 0, &ioas) < 0)
		die("IOAS_ALLOC");
	if (fd >= 0 && ioasid_map_file(ctx, ioas, fd, 0, PG, IOASID_MAP_READ |
				       IOASID_MAP_FIXED_IOVA, &iova) < 0)
		die("MAP_FILE");
	return ioas;
}

/* The medians of single calls @calls, embedded, the ring, the socket. */
static void emit_single_calls(const char *calls, double *emb, double *ring,
			      double *sock)
{
	char extra[256];

	snprintf(extra, sizeof(extra), "\"transport\":\"embedded\","
		 "\"calls\":\"%s\"", calls);
	emit("single_calls_per_s", median(emb, runs), "1/s", extra);
	snprintf(extra, sizeof(extra), "\"transport\":\"ioasidd_ring\","
		 "\"calls\":\"%s\",\"target\":1e6,\"daemon_spin_us\":%u",
		 calls, daemon_spin_us);
	emit("single_calls_per_s", median(ring, runs), "1/s", extra);
	snprintf(extra, sizeof(extra), "\"transport\":\"ioasidd_socket\","
		 "\"calls\":\"%s\"", calls);
	emit("single_calls_per_s", median(sock, runs), "1/s", extra);
}

/*
 * Map and unmap calls back to back, embedded, through the ring and over
 * the socket, of one page of a file the IOAS holds already, by its
 * descriptor (map_file) and by its file id (map_file_id: no fstat() and
 * fcntl() of the descriptor), in turn in each run; then lone calls
 * through the ring after gaps of gaps_us (the
 * daemon spins --ring-spin-us after its last request, the client
 * RING_CLIENT_SPIN_NS while it waits), with the daemon's CPU time per call
 * and as a share of the time; and over the socket after 2 ms.
 */
static void bench_calls(void)
{
	double se[MAX_RUNS], sr[MAX_RUNS], ss[MAX_RUNS];
	double ide[MAX_RUNS], idr[MAX_RUNS], ids[MAX_RUNS];
	double lr[MAX_RUNS], cr[MAX_RUNS], pct[MAX_RUNS];
	struct ioasid_ctx *ce, *cv, *cs;
	struct raw_lone rl;
	uint32_t ie, iv, is;
	char extra[256];
	int fd;

	fd = memfd_create("bench", MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		die("memfd");
	ce = lookup_ctx("sim", true);
	cv = lookup_ctx(dmn->uri, true);
	cs = lookup_ctx(dmn->uri, false);
	ie = calls_ioas(ce, fd);
	iv = calls_ioas(cv, fd);
	is = calls_ioas(cs, fd);
	single_calls_per_s(cv, iv, fd, 10);	/* the ring is made here */
	for (int i = 0; i < runs; i++) {
		se[i] = single_calls_per_s(ce, ie, fd, iters);
		sr[i] = single_calls_per_s(cv, iv, fd, iters);
		ss[i] = single_calls_per_s(cs, is, fd, socket_lookups / 4 + 1);
		ide[i] = single_calls_by_id_per_s(ce, ie, iters);
		idr[i] = single_calls_by_id_per_s(cv, iv, iters);
		ids[i] = single_calls_by_id_per_s(cs, is,
						  socket_lookups / 4 + 1);
	}
	emit_single_calls("map_file+unmap", se, sr, ss);
	emit_single_calls("map_file_id+unmap", ide, idr, ids);
	raw_lone_open(&rl);
	for (size_t g = 0; g < nr_gaps; g++) {
		double p90[MAX_RUNS], csl[MAX_RUNS], dsl[MAX_RUNS];
		double rawr[MAX_RUNS], rawp90[MAX_RUNS], ratio[MAX_RUNS];

		for (int i = 0; i < runs; i++) {
			struct lone l;

			/* the floor and the call in the same run, in turn */
			rawr[i] = raw_lone_calls(&rl, 32, gaps_us[g] * 1000ull,
						 &rawp90[i]);
			lone_calls(cv, iv, 32, gaps_us[g] * 1000ull, &l);
			ratio[i] = l.ns / rawr[i];
			lr[i] = l.ns;
			p90[i] = l.p90_ns;
			cr[i] = l.cpu_ns;
			csl[i] = l.client_sleeps;
			dsl[i] = l.daemon_sleeps;
			pct[i] = 100.0 * cr[i] / (gaps_us[g] * 1000.0 + lr[i]);
		}
		snprintf(extra, sizeof(extra), "\"transport\":\"ioasidd_ring\","
			 "\"gap_us\":%u,\"target\":10000,"
			 "\"daemon_spin_us\":%u,\"client_spin_us\":%u",
			 gaps_us[g], daemon_spin_us,
			 RING_CLIENT_SPIN_NS / 1000);
		emit("lone_call_ns", median(lr, runs), "ns", extra);
		emit("lone_call_p90_ns", median(p90, runs), "ns", extra);
		emit("daemon_cpu_per_lone_call_ns", median(cr, runs), "ns",
		     extra);
		emit("daemon_cpu_pct", median(pct, runs), "%", extra);
		emit("client_sleeps_per_lone_call", median(csl, runs), "1",
		     extra);
		emit("daemon_sleeps_per_lone_call", median(dsl, runs), "1",
		     extra);
		emit("lone_call_ratio_vs_raw", median(ratio, runs), "x",
		     extra);
		snprintf(extra, sizeof(extra), "\"transport\":\"raw_eventfd\","
			 "\"gap_us\":%u,\"client_spin_us\":%u", gaps_us[g],
			 RING_CLIENT_SPIN_NS / 1000);
		emit("lone_call_ns", median(rawr, runs), "ns", extra);
		emit("lone_call_p90_ns", median(rawp90, runs), "ns", extra);
	}
	raw_lone_close(&rl);
	for (int i = 0; i < runs; i++)
		lr[i] = lone_call_ns(cs, is, 32, 2000000, &cr[i]);
	emit("lone_call_ns", median(lr, runs), "ns",
	     "\"transport\":\"ioasidd_socket\",\"gap_us\":2000");
	emit("daemon_cpu_per_lone_call_ns", median(cr, runs), "ns",
	     "\"transport\":\"ioasidd_socket\",\"gap_us\":2000");
	ioasid_unref(ce);
	ioasid_unref(cv);
	ioasid_unref(cs);
	close(fd);
}

/*
 * The daemon's CPU share over idle_seconds after one call through the
 * ring, the client connected and silent: what the spin costs an idle
 * system.
 */
static void bench_idle(void)
{
	struct ioasid_ctx *ctx = lookup_ctx(dmn->uri, true);
	uint32_t ioas = calls_ioas(ctx, -1);
	struct timespec ts = { (time_t)idle_seconds,
			       (long)((idle_seconds - (time_t)idle_seconds) *
				      1e9) };
	double c0, t0, pct;
	char extra[128];

	if (ioasid_unmap(ctx, ioas, 1ULL << 45, PG, IOASID_UNMAP_MISSING_OK,
			 NULL) < 0)
		die("UNMAP");
	c0 = daemon_cpu_ns();
	t0 = (double)now_ns();
	nanosleep(&ts, NULL);
	pct = 100.0 * (daemon_cpu_ns() - c0) / ((double)now_ns() - t0);
	snprintf(extra, sizeof(extra), "\"transport\":\"ioasidd_ring\","
		 "\"seconds\":%g,\"daemon_spin_us\":%u", idle_seconds,
		 daemon_spin_us);
	emit("daemon_idle_cpu_pct", c0 < 0 ? -1 : pct, "%", extra);
	ioasid_unref(ctx);
}

static void bench_concurrency(void)
{
	static const int clients[] = { 1, 4, 16, 64 };
	double v[MAX_RUNS];
	char extra[64];

	for (size_t k = 0; k < sizeof(clients) / sizeof(clients[0]); k++) {
		for (int i = 0; i < runs; i++)
			v[i] = concurrent_ops_per_s(clients[k]);
		snprintf(extra, sizeof(extra), "\"transport\":\"ioasidd\","
			 "\"clients\":%d", clients[k]);
		emit("concurrent_ops_per_s", median(v, runs), "ops/s", extra);
	}
}

/* Is @name among --only's parts (or is there no --only)? */
static bool part(const char *name)
{
	size_t n = strlen(name);

	for (const char *p = only; p; p = strchr(p, ',') ? strchr(p, ',') + 1 :
							   NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return true;
	return !only;
}

/* --gaps 0,50,200: the lone calls' gaps in us. */
static int parse_gaps(const char *arg)
{
	size_t n = 0;

	for (const char *p = arg; *p; ) {
		char *end;
		unsigned long v;

		if (n == MAX_GAPS || *p < '0' || *p > '9')
			return -1;
		v = strtoul(p, &end, 10);
		if (v > 1000000 || (*end && *end != ','))
			return -1;
		gaps_us[n++] = (unsigned int)v;
		p = *end ? end + 1 : end;
	}
	if (!n)
		return -1;
	nr_gaps = n;
	return 0;
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "iters", required_argument, NULL, 'i' },
		{ "quick", no_argument, NULL, 'q' },
		{ "mappings", required_argument, NULL, 'n' },
		{ "lookups", required_argument, NULL, 'l' },
		{ "only", required_argument, NULL, 'o' },
		{ "idle-seconds", required_argument, NULL, 's' },
		{ "gaps", required_argument, NULL, 'g' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "r:i:qn:l:o:s:g:", opts,
				NULL)) != -1) {
		switch (c) {
		case 'o':
			only = optarg;
			break;
		case 's':
			idle_seconds = atof(optarg);
			break;
		case 'g':
			if (parse_gaps(optarg) < 0) {
				fprintf(stderr, "bench_rpc: --gaps wants up to "
					"%d gaps in us (0 to 1000000), "
					"comma-separated\n", MAX_GAPS);
				exit(2);
			}
			break;
		case 'n':
			nr_lookup_maps = atoi(optarg);
			break;
		case 'l':
			socket_lookups = atoi(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'i':
			iters = atoi(optarg);
			break;
		case 'q':
			runs = 3;
			iters = 2000;
			seconds = 0.2;
			socket_lookups = 1000;
			break;
		default:
			fprintf(stderr, "usage: bench_rpc [--runs N] "
				"[--iters N] [--mappings N] [--lookups N] "
				"[--idle-seconds S] [--gaps US,...] "
				"[--only PART,...] [--quick]\n");
			exit(2);
		}
	}
	if (runs < 1 || runs > MAX_RUNS || iters < 10 ||
	    nr_lookup_maps < 1 || socket_lookups < 1 ||
	    !(idle_seconds > 0 && idle_seconds <= 600)) {
		fprintf(stderr, "bench_rpc: 1..%d runs, >= 10 iters, >= 1 "
			"mappings and lookups\n", MAX_RUNS);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	char config[256];
	struct daemon_opts o = { .config = config, .log_level = "warning" };
	int ret = 0;

	parse_args(argc, argv);
	snprintf(config, sizeof(config), "[user %u]\nmax-ioas = unlimited\n"
		 "max-mappings = unlimited\n", (unsigned)getuid());
	signal(SIGPIPE, SIG_IGN);
	if (daemon_start(&ioasidd, &o) < 0) {
		fprintf(stderr, "bench_rpc: cannot start %s\n",
			daemon_binary());
		return 1;
	}
	for (int two = 0; two < 2; two++) {
		if (place(two) < 0)
			continue;
		if (part("roundtrips"))
			bench_roundtrips();
		if (part("maps"))
			bench_maps();
		if (part("lookups"))
			bench_lookups();
		if (part("calls"))
			bench_calls();
		if (part("idle"))
			bench_idle();
	}
	unplace();
	if (part("concurrency"))
		bench_concurrency();
	if (part("calls") || part("idle")) {
		/* the same without the daemon's spin */
		o.ring_spin_us = "0";
		if (daemon_start(&nospin, &o) < 0) {
			fprintf(stderr, "bench_rpc: cannot start %s\n",
				daemon_binary());
			daemon_stop(&ioasidd);
			return 1;
		}
		dmn = &nospin;
		daemon_spin_us = 0;
		for (int two = 0; two < 2; two++) {
			if (place(two) < 0)
				continue;
			if (part("calls"))
				bench_calls();
			if (part("idle"))
				bench_idle();
		}
		unplace();
		dmn = &ioasidd;
		if (daemon_stop(&nospin) != 0)
			ret = 1;
	}
	if (daemon_stop(&ioasidd) != 0)
		ret = 1;
	return ret;
}
