/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: the state image importer (libioasid/proto/image.c,
 * the replay in libioasid/transport/embedded.c and core/export.c), the
 * way ioasid_ctx_import() reads a file a predecessor left.
 *
 * Input: one mode byte, then the image.  Mode bit 0 clear: the image as
 * it is (the checks of magic, version, sizes and CRCs are the target).
 * Set: the harness first points every FD record at its own memfd (4 MiB,
 * at descriptor 500) and recomputes every CRC, so the input reaches the
 * records' meaning: the codec's parser and the replay on a fresh
 * simulated core.
 *
 * Oracles: an import fails with a negative errno and a reason and leaves
 * nothing open (FUZZ_VERBOSE=1 prints each result); one that succeeds exports again, and importing that
 * export and exporting once more gives the same records (export after
 * import is a fixed point), descriptors aside.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libioasid.h"
#include "proto/image.h"
#include "util/crc32c.h"

#define FILE_FD		500
#define ALIGN8(x)	(((x) + 7) & ~(size_t)7)

static void die(const char *what)
{
	fprintf(stderr, "fuzz_image: %s\n", what);
	abort();
}

/* The harness's file at FILE_FD (an import closes it: make it again). */
static void harness_file(struct stat *st)
{
	if (fcntl(FILE_FD, F_GETFD) < 0) {
		int fd = memfd_create("fuzz-ram", MFD_ALLOW_SEALING);

		if (fd < 0 || ftruncate(fd, 4 << 20) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0 ||
		    dup2(fd, FILE_FD) < 0)
			die("memfd");
		close(fd);
	}
	if (fstat(FILE_FD, st) < 0)
		die("fstat");
}

/* Mode 1: FD records name the harness's file, every CRC right. */
static void fix_up(uint8_t *buf, size_t len, const struct stat *st)
{
	struct image_header *h = (struct image_header *)buf;
	size_t pos = sizeof(*h), end;

	if (len < sizeof(*h))
		return;
	end = h->size < len ? (size_t)h->size : len;
	if (end < sizeof(*h))
		return;
	while (pos + sizeof(struct image_record) <= end) {
		struct image_record *r = (struct image_record *)(buf + pos);
		uint8_t *p = buf + pos + sizeof(*r);

		if (r->len > end - pos - sizeof(*r))
			break;
		if (r->type == IMAGE_REC_FD &&
		    r->len == sizeof(struct image_fd)) {
			struct image_fd f;

			memcpy(&f, p, sizeof(f));
			f.fd = FILE_FD;
			f.type = S_IFREG;
			f.dev = (uint64_t)st->st_dev;
			f.ino = (uint64_t)st->st_ino;
			memcpy(p, &f, sizeof(f));
		}
		r->crc = crc32c(0, p, r->len);
		pos += sizeof(*r) + ALIGN8((size_t)r->len);
	}
	h->records_crc = crc32c(0, buf + sizeof(*h), end - sizeof(*h));
	h->crc = 0;
	h->crc = crc32c(0, h, sizeof(*h));
}

static int memfd_of(const uint8_t *buf, size_t len)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);

	if (fd < 0 || (len && write(fd, buf, len) != (ssize_t)len))
		die("memfd of the image");
	return fd;
}

static int export_of(struct ioasid_ctx *ctx)
{
	int memfd;

	if (ioasid_ctx_export(ctx, &memfd) < 0) {
		fprintf(stderr, "%s\n", ioasid_last_error(ctx));
		die("an imported context does not export");
	}
	return memfd;
}

/* The records of two images, FD numbers masked; false when they differ. */
static bool same_records(int a, int b)
{
	char why[256];
	struct image *x, *y;
	struct image_rec rx, ry;
	bool same = true;

	if (image_read(a, &x, why, sizeof(why)) < 0 ||
	    image_read(b, &y, why, sizeof(why)) < 0)
		die("an export does not read back");
	while (same) {
		int nx = image_next(x, &rx), ny = image_next(y, &ry);

		if (nx != ny)
			same = false;
		if (!nx || !same)
			break;
		if (rx.type != ry.type || rx.len != ry.len) {
			same = false;
		} else if (rx.type == IMAGE_REC_FD) {
			struct image_fd fx, fy;

			memcpy(&fx, rx.payload, sizeof(fx));
			memcpy(&fy, ry.payload, sizeof(fy));
			same = fx.dev == fy.dev && fx.ino == fy.ino &&
			       fx.type == fy.type;
		} else {
			same = !memcmp(rx.payload, ry.payload, rx.len);
		}
	}
	image_free(x);
	image_free(y);
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ioasid_ctx *ctx = NULL, *again = NULL;
	struct stat st;
	uint8_t *buf;
	int fd, r;

	if (size < 1)
		return 0;
	harness_file(&st);
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1)
		fix_up(buf, size - 1, &st);
	fd = memfd_of(buf, size - 1);
	free(buf);
	r = ioasid_ctx_import(fd, &ctx);
	close(fd);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "import: %d %s\n", r, ioasid_last_error(NULL));
	if (r > 0 || (r < 0 && (ctx || !ioasid_last_error(NULL)[0])))
		die("a failed import without a reason, or left a context");
	if (r == 0) {
		int a = export_of(ctx), b;

		if (ioasid_ctx_import(a, &again) < 0) {
			fprintf(stderr, "%s\n", ioasid_last_error(NULL));
			die("an export does not import");
		}
		b = export_of(again);
		a = (close(a), export_of(ctx));
		if (!same_records(a, b))
			die("export after import is not a fixed point");
		ioasid_ctx_export_abandon(a);
		ioasid_ctx_export_abandon(b);
		close(a);
		close(b);
		ioasid_unref(again);
		ioasid_unref(ctx);
	}
	return 0;
}
