/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared/private conversion of a 64 GiB confidential guest: random 4 KiB
 * flips in the upper half while a device thread DMAs into the lower half,
 * which stays shared.  Through the public API, embedded and (when the
 * ioasidd binary is given with --daemon PATH or $IOASIDD) through the
 * daemon, with the same three loads in both places: single flips, batches
 * of 1024 without the device thread, and batches of 1024 with it.
 *
 * One JSON object per line (bench "convert"):
 *   flips_per_s            mode embedded|daemon, batch (ranges per call)
 *   metadata_bits_per_page bits of shared/private state per guest page
 *   dma_gbps_during_storm  the device thread's throughput meanwhile
 *   faults_on_unchanged_pages  DMA faults on pages that never changed (0)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libioasid.h>

#define GiB (1ULL << 30)
#define GUEST (64 * GiB)
#define PAGES (GUEST / 4096)
#define BASE (1ULL << 40)
#define NIC "0000:00:01.0"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct dma_thread {
	struct ioasid_ctx *ctx;
	uint32_t dev;
	volatile int stop;
	uint64_t bytes, faults;
};

/* The device's buffers: 1 GiB of the lower half, which stays shared. */
#define DMA_PAGES (GiB / 4096)

/* 64 KiB reads spread over the device's buffers. */
static void *dma_loop(void *arg)
{
	struct dma_thread *d = arg;
	static uint8_t buf[64 * 1024];
	uint64_t x = 88172645463325252ULL, done;

	while (!d->stop) {
		uint64_t page;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		page = (x % (DMA_PAGES - 16)) & ~15ULL;
		if (ioasid_device_dma(d->ctx, d->dev, BASE + page * 4096, buf,
				      sizeof(buf), 0, &done) == 0)
			d->bytes += sizeof(buf);
		else
			d->faults++;
	}
	return NULL;
}

static int with_dma;
static uint64_t cur_flips;

static void emit(const char *metric, double value, const char *unit,
		 const char *mode, int batch)
{
	printf("{\"bench\":\"convert\",\"metric\":\"%s\",\"value\":%.3f,"
	       "\"unit\":\"%s\",\"mode\":\"%s\",\"batch\":%d,"
	       "\"dma\":%s,\"flips\":%llu,\"guest_bytes\":%llu}\n", metric,
	       value, unit, mode, batch, with_dma ? "true" : "false",
	       (unsigned long long)cur_flips, (unsigned long long)GUEST);
	fflush(stdout);
}

static void emit_phase(const char *metric, double value, const char *unit,
		       const char *mode, int batch, const char *phase)
{
	printf("{\"bench\":\"convert\",\"metric\":\"%s\",\"value\":%.3f,"
	       "\"unit\":\"%s\",\"mode\":\"%s\",\"batch\":%d,"
	       "\"dma\":%s,\"phase\":\"%s\",\"flips\":%llu,"
	       "\"guest_bytes\":%llu}\n",
	       metric, value, unit, mode, batch, with_dma ? "true" : "false",
	       phase, (unsigned long long)cur_flips, (unsigned long long)GUEST);
	fflush(stdout);
}

static int setup(const char *uri, struct ioasid_ctx **ctx, uint32_t *ioas,
		 uint32_t *dev)
{
	struct ioasid_iova_range all = { BASE, BASE + GUEST - 1 };
	uint64_t iova = BASE;
	int fd, r;

	fd = memfd_create("guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)GUEST) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		return -errno;
	r = ioasid_new(uri, ctx);
	if (r == 0)
		r = ioasid_ioas_alloc(*ctx, IOASID_IOAS_RESTRICTED, ioas);
	if (r == 0)
		r = ioasid_device_bind(*ctx, NIC, -1, dev);
	if (r == 0)
		r = ioasid_device_attach(*ctx, *dev, *ioas, 0);
	if (r == 0)
		r = ioasid_map_file(*ctx, *ioas, fd, 0, GUEST,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)	/* start fully shared: 1 GiB leaves */
		r = ioasid_convert(*ctx, *ioas, &all, 1,
				   IOASID_CONVERT_SHARED, NULL);
	close(fd);
	if (r < 0)
		fprintf(stderr, "bench_convert: set-up on %s failed: %s\n", uri,
			ioasid_last_error(*ctx));
	return r;
}

/*
 * Flip random pages of the upper half, @batch ranges per call: each batch
 * goes private, then the same pages go shared again, so every flip really
 * changes a page's state.
 */
static int storm(struct ioasid_ctx *ctx, uint32_t ioas, int batch,
		 uint64_t flips, double *seconds)
{
	struct ioasid_iova_range *v = calloc((size_t)batch, sizeof(*v));
	static uint64_t x = 0x2545F4914F6CDD1DULL;
	double t;

	if (!v)
		return -ENOMEM;
	t = now_s();
	for (uint64_t done = 0; done < flips; done += 2 * (uint64_t)batch) {
		for (int i = 0; i < batch; i++) {
			uint64_t page;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			page = PAGES / 2 + x % (PAGES / 2);
			v[i].start = BASE + page * 4096;
			v[i].last = v[i].start + 4095;
		}
		if (ioasid_convert(ctx, ioas, v, (uint32_t)batch,
				   IOASID_CONVERT_PRIVATE, NULL) ||
		    ioasid_convert(ctx, ioas, v, (uint32_t)batch,
				   IOASID_CONVERT_SHARED, NULL)) {
			fprintf(stderr, "bench_convert: %s\n",
				ioasid_last_error(ctx));
			free(v);
			return -1;
		}
	}
	*seconds = now_s() - t;
	free(v);
	return 0;
}

static int run(const char *uri, const char *mode, int batch, uint64_t flips,
	       int dma)
{
	static uint8_t zero[1 << 20];
	struct dma_thread d = { 0 };
	struct ioasid_ioas_info info;
	uint32_t ioas, dev;
	pthread_t t;
	double secs;
	int r;

	with_dma = dma;
	cur_flips = flips / 4;
	if (setup(uri, &d.ctx, &ioas, &dev) < 0)
		return -1;
	d.dev = dev;
	/* cold: the first flips split the guest's 1 GiB and 2 MiB pages */
	r = storm(d.ctx, ioas, batch, flips / 4, &secs);
	if (r == 0 && !dma)
		emit_phase("flips_per_s", (double)(flips / 4) / secs, "1/s",
			   mode, batch, "cold");
	/* the buffers exist before the storm (a running guest's would) */
	for (uint64_t off = 0; with_dma && off < GiB; off += sizeof(zero)) {
		uint64_t done;

		ioasid_device_dma(d.ctx, dev, BASE + off, zero, sizeof(zero),
				  IOASID_DMA_WRITE, &done);
	}
	if (with_dma && pthread_create(&t, NULL, dma_loop, &d))
		return -1;
	cur_flips = flips;
	r = r ? r : storm(d.ctx, ioas, batch, flips, &secs);
	if (with_dma) {
		d.stop = 1;
		pthread_join(t, NULL);
	}
	if (r == 0) {
		emit_phase("flips_per_s", (double)flips / secs, "1/s", mode,
			   batch, "warm");
		if (with_dma) {
			emit("dma_gbps_during_storm", d.bytes / secs / 1e9,
			     "GB/s", mode, batch);
			emit("faults_on_unchanged_pages", (double)d.faults,
			     "count", mode, batch);
		}
		if (ioasid_ioas_get_info(d.ctx, ioas, &info) == 0)
			emit("metadata_bits_per_page",
			     info.state_bytes * 8.0 / (double)PAGES, "bit",
			     mode, batch);
	}
	ioasid_unref(d.ctx);
	return r;
}

/* The three loads, embedded and through the daemon alike. */
static int run_all(const char *uri, const char *mode, uint64_t flips,
		   int dma)
{
	return run(uri, mode, 1, flips / 10, 0) ||
	       run(uri, mode, 1024, flips, 0) ||
	       (dma && run(uri, mode, 1024, flips, 1));
}

static char sock_dir[] = "/tmp/ioasid-bench-XXXXXX";
static char sock_path[128];

/* Start ioasidd on a private socket; returns its pid or -1. */
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

/* Stop the daemon and remove its socket and directory. */
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
	uint64_t flips = 1000000;
	int dma = 1, r;
	char uri[160];
	pid_t pid;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--daemon") && i + 1 < argc) {
			daemon = argv[++i];
		} else if (!strcmp(argv[i], "--quick")) {
			flips = 40000;
		} else if (!strcmp(argv[i], "--no-dma")) {
			dma = 0;
		} else {
			fprintf(stderr, "usage: %s [--quick] [--no-dma] "
				"[--daemon PATH]\n", argv[0]);
			return 2;
		}
	}
	if (run_all("sim", "embedded", flips, dma))
		return 1;
	if (!daemon || !*daemon)
		return 0;
	pid = start_daemon(daemon, uri, sizeof(uri));
	if (pid < 0) {
		fprintf(stderr, "bench_convert: cannot start %s\n", daemon);
		stop_daemon(pid);
		return 1;
	}
	r = run_all(uri, "daemon", flips, dma);
	stop_daemon(pid);
	return r ? 1 : 0;
}
