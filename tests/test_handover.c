/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A VMM's live update, embedded: this program builds state (IOASes,
 * mappings of memfds cut in pieces, a restricted IOAS with shared runs, two
 * simulated devices attached), takes a snapshot of it, exports the context
 * and execs itself; the new image imports the context, checks that the
 * snapshot is identical and that DMA into the mapped pages still lands in
 * the memfd.  Exit 0 passed, 1 failed, 77 skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libioasid.h>

#include "snapshot.h"

#define MiB (1ULL << 20)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA
#define NIC "0000:00:01.0"
#define GPU "0000:00:03.0"

static int failures;

#define check(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                     \
			fputc('\n', stderr);                              \
			failures++;                                       \
		}                                                         \
	} while (0)

/* A memfd the next program image inherits. */
static int inherited_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		perror("memfd");
		exit(1);
	}
	return fd;
}

static int build(struct ioasid_ctx *ctx, int ram)
{
	struct ioasid_iova_range shared = { 0x301000, 0x304fff };
	uint32_t plain, restr, dead, nic, gpu;
	uint64_t iova;
	int r = 0;

	r |= ioasid_ioas_alloc(ctx, 0, &dead);
	r |= ioasid_ioas_alloc(ctx, 0, &plain);
	r |= ioasid_ioas_destroy(ctx, dead);
	iova = 0x100000;
	r |= ioasid_map_file(ctx, plain, ram, 0, MiB, RW | FIXED, &iova);
	r |= ioasid_unmap(ctx, plain, 0x140000, 0x2000, 0, NULL);
	r |= ioasid_ioas_alloc(ctx, IOASID_IOAS_RESTRICTED, &restr);
	iova = 0x300000;
	r |= ioasid_map_file(ctx, restr, ram, MiB, MiB, RW | FIXED, &iova);
	r |= ioasid_convert(ctx, restr, &shared, 1, IOASID_CONVERT_SHARED,
			    NULL);
	r |= ioasid_device_bind(ctx, NIC, -1, &nic);
	r |= ioasid_device_bind(ctx, GPU, -1, &gpu);
	r |= ioasid_device_attach(ctx, gpu, plain, 0);
	r |= ioasid_device_attach(ctx, nic, restr, 0);
	if (r)
		fprintf(stderr, "building the state failed: %s\n",
			ioasid_last_error(ctx));
	return r ? 1 : 0;
}

/* The first image: build, snapshot, export, exec. */
static int predecessor(const char *self)
{
	char a[16], b[16], c[16];
	struct ioasid_ctx *ctx;
	int ram, snapfd, memfd;
	struct snap s;

	if (ioasid_new("sim", &ctx) < 0)
		return 1;
	ram = inherited_memfd("guest-ram", 2 * MiB);
	if (build(ctx, ram))
		return 1;
	snapshot_take(ctx, &s, SNAP_STATUS);
	snapfd = memfd_create("snapshot", 0);
	if (snapfd < 0 || write(snapfd, s.buf, s.len) != (ssize_t)s.len)
		return 1;
	snapshot_free(&s);
	if (ioasid_ctx_export(ctx, &memfd) < 0) {
		fprintf(stderr, "export: %s\n", ioasid_last_error(ctx));
		return 1;
	}
	/* the VMM's old context keeps working until the exec */
	snprintf(a, sizeof(a), "%d", memfd);
	snprintf(b, sizeof(b), "%d", snapfd);
	snprintf(c, sizeof(c), "%d", ram);
	execl(self, self, "--successor", a, b, c, (char *)NULL);
	perror("exec");
	return 1;
}

static int successor(int memfd, int snapfd, int ram)
{
	uint8_t buf[8192], got[8192];
	struct ioasid_ctx *ctx = NULL;
	struct snap want = { 0 }, now;
	uint32_t dev[8], nr = 8;
	uint64_t done;
	off_t len = lseek(snapfd, 0, SEEK_END);
	int r;

	r = ioasid_ctx_import(memfd, &ctx);
	if (r < 0) {
		fprintf(stderr, "import: %s\n", ioasid_last_error(NULL));
		return 1;
	}
	want.len = (size_t)len;
	want.buf = malloc(want.len);
	check(pread(snapfd, want.buf, want.len, 0) == (ssize_t)want.len,
	      "read the snapshot");
	snapshot_take(ctx, &now, SNAP_STATUS);
	check(snapshot_equal(&want, &now), "the state after exec is the "
	      "state before it (%zu vs %zu bytes)", want.len, now.len);

	/* the devices are bound under their old ids */
	{
		struct ioasid_device_info info[8];

		memset(info, 0, sizeof(info));
		check(ioasid_device_list(ctx, info, &nr) == 0, "device list");
		nr = 0;
		for (int i = 0; i < 8; i++)
			if (info[i].dev_id)
				dev[nr++] = info[i].dev_id;
	}
	check(nr == 2, "two bound devices, not %u", nr);
	/* DMA into the mapped pages lands in the inherited memfd */
	memset(buf, 0x7e, sizeof(buf));
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t iova = 0x100000;
		off_t off = 0;

		r = ioasid_device_dma(ctx, dev[i], 0x100000, buf, 4096,
				      IOASID_DMA_WRITE, &done);
		if (r < 0) {	/* the NIC is on the restricted IOAS */
			iova = 0x302000;
			off = (off_t)(MiB + 0x2000);
			r = ioasid_device_dma(ctx, dev[i], iova, buf, 8192,
					      IOASID_DMA_WRITE, &done);
		}
		check(r == 0, "DMA of device %u: %s", dev[i],
		      ioasid_last_error(ctx));
		check(pread(ram, got, 4096, off) == 4096 &&
		      !memcmp(got, buf, 4096),
		      "the DMA of device %u at 0x%llx landed", dev[i],
		      (unsigned long long)iova);
	}
	snapshot_free(&want);
	snapshot_free(&now);
	ioasid_unref(ctx);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "--successor")) {
		int r = successor(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));

		printf("%s: context handed over across exec\n",
		       r ? "FAIL" : "PASS");
		return r;
	}
	return predecessor("/proc/self/exe");
}
