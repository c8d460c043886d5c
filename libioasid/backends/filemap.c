/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/filemap.h"
#include "core/file.h"
#include "util/macros.h"

struct filemap_chunk {
	void *base;
	uint64_t length;
	struct filemap_chunk *next;
};

static void filemap_release(struct file_ref *file)
{
	struct filemap_chunk *c = file->be_data, *next;

	for (; c; c = next) {
		next = c->next;
		munmap(c->base, c->length);
		free(c);
	}
	file->be_data = NULL;
}

/*
 * Writable unless the descriptor or a write seal forbids it (then the
 * core maps the file for reading only, and mmap(PROT_WRITE) would fail).
 */
static int file_prot(const struct file_ref *file)
{
	int seals = fcntl(file->fd, F_GET_SEALS);

	if (file->accmode == O_RDONLY ||
	    (seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))))
		return PROT_READ;
	return PROT_READ | PROT_WRITE;
}

/* Map the whole file at an address ≡ 0 (mod 1 GiB). */
static int map_file(struct file_ref *file, struct filemap_chunk **out)
{
	int prot = file_prot(file);
	struct filemap_chunk *c;
	struct stat st;
	uint8_t *area, *base;
	uint64_t len, slack = SZ_1G;

	if (fstat(file->fd, &st) < 0)
		return -errno;
	len = ALIGN_UP((uint64_t)st.st_size, file->page_size);
	if (!len)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* reserve address space, then place the file at an aligned spot */
	area = mmap(NULL, len + slack, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED) {
		free(c);
		return -ENOMEM;
	}
	base = (uint8_t *)ALIGN_UP((uintptr_t)area, SZ_1G);
	if (mmap(base, len, prot, MAP_SHARED | MAP_FIXED, file->fd, 0) ==
	    MAP_FAILED) {
		int e = errno;

		munmap(area, len + slack);
		free(c);
		/* guest_memfd without GUEST_MEMFD_FLAG_MMAP cannot be mapped */
		return e == ENODEV || e == EINVAL ? -EOPNOTSUPP : -e;
	}
	if (base > area)
		munmap(area, (size_t)(base - area));
	munmap(base + len, (size_t)(area + len + slack - (base + len)));
	c->base = base;
	c->length = len;
	*out = c;
	return 0;
}

/*
 * A private guest_memfd page SIGBUSes when touched.  Handing its address
 * to write() on a pipe makes the kernel read it in its user-copy path
 * instead, which fails with EFAULT: no signal, no handler needed.
 * guest_memfd shares or hides whole files on the kernels we know, so the
 * first page of the range speaks for it.
 */
static int probe_shared(const void *addr)
{
	int p[2], r = 0;
	char byte;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return 0;	/* cannot tell: DMA faults will */
	if (write(p[1], addr, 1) != 1)
		r = -EPERM;
	else if (read(p[0], &byte, 1) != 1)
		r = 0;
	close(p[0]);
	close(p[1]);
	return r;
}

int filemap_hva(const struct be_backing *b, uint64_t length, uint64_t *hva)
{
	struct file_ref *file = b->file;
	struct filemap_chunk *c;
	int r;

	if (!file) {
		*hva = (uint64_t)(uintptr_t)b->hva;
		return 0;
	}
	for (c = file->be_data; c; c = c->next)
		if (b->offset + length <= c->length)
			break;
	if (!c) {
		r = map_file(file, &c);
		if (r < 0)
			return r;
		c->next = file->be_data;
		file->be_data = c;
		file->be_release = filemap_release;
	}
	*hva = (uint64_t)(uintptr_t)c->base + b->offset;
	if (file->kind == IOASID_FILE_GUEST_MEMFD)
		return probe_shared((const void *)(uintptr_t)*hva);
	return 0;
}
