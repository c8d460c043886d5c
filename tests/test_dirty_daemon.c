/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dirty bitmaps through ioasidd's memfd, from a raw connection: what the
 * daemon refuses (a descriptor that is not a memfd sealed against
 * shrinking, one too small for the range, one it cannot write, another
 * session's IOAS) leaves the bitmap and the dirty state alone, and what
 * it takes comes back in the memfd, not in the reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proto_fixture.h"

#define MiB (1ULL << 20)
#define PG 4096ULL
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define NIC "0000:00:01.0"

TestSuite(dirty_daemon, .init = setup_daemon, .fini = stop_quietly,
	  .timeout = 60);

static uint32_t call_id(int s, struct ioasid_op *op)
{
	cr_assert_eq(codec_call(s, op), 0, "%s: %s", proto_cmd_name(op->cmd),
		     op->errmsg);
	return op->out_id;
}

/* An IOAS with 1 MiB at @iova, the NIC attached, tracking on, 3 pages
 * written. */
static uint32_t dirty_ioas(int s, int mem, uint64_t iova)
{
	struct ioasid_op op;
	uint32_t ioas, dev;
	uint8_t buf[16] = { 1 };

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	ioas = call_id(s, &op);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_BIND);
	snprintf(op.name, sizeof(op.name), "%s", NIC);
	dev = call_id(s, &op);
	ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
	op.ioas_id = ioas;
	op.fd = mem;
	op.iova = iova;
	op.length = MiB;
	op.flags = RW | IOASID_MAP_FIXED_IOVA;
	call_id(s, &op);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_ATTACH);
	op.dev_id = dev;
	op.ioas_id = ioas;
	call_id(s, &op);
	ioasid_op_init(&op, IOASID_CMD_DIRTY_START);
	op.ioas_id = ioas;
	call_id(s, &op);
	for (unsigned int p = 1; p < 100; p += 40) {
		ioasid_op_init(&op, IOASID_CMD_DEVICE_DMA);
		op.dev_id = dev;
		op.iova = iova + p * PG;
		op.length = sizeof(buf);
		op.flags = IOASID_DMA_WRITE;
		op.in = buf;
		op.in_len = sizeof(buf);
		call_id(s, &op);
	}
	return ioas;
}

/* A memfd of @size bytes, filled with 0xee, with @seals. */
static int bitmap_memfd(size_t size, int seals)
{
	int fd = memfd_create("bitmap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *m;

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	m = mmap(NULL, size, PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	memset(m, 0xee, size);
	munmap(m, size);
	if (seals)
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static uint64_t word0(int fd)
{
	uint64_t w = 0;

	cr_assert_eq(pread(fd, &w, sizeof(w), 0), (ssize_t)sizeof(w));
	return w;
}

/* DIRTY_READ (NO_CLEAR unless @clear) of 1 MiB with the bitmap in @fd. */
static int read_into(int s, uint32_t ioas, uint64_t iova, int fd,
		     bool clear, struct ioasid_op *op)
{
	static uint64_t unused[4];

	ioasid_op_init(op, IOASID_CMD_DIRTY_READ);
	op->ioas_id = ioas;
	op->iova = iova;
	op->length = MiB;
	op->flags = clear ? 0 : IOASID_DIRTY_NO_CLEAR;
	op->fd = fd;
	op->out = unused;
	op->out_cap = sizeof(unused);
	return codec_call(s, op);
}

Test(dirty_daemon, bitmap_memfd_is_checked)
{
	int mem = test_memfd(MiB), s = raw_connect(), fd, ro;
	const uint64_t iova = 32 * MiB;
	const uint64_t want = (1ULL << 1) | (1ULL << 41);
	uint32_t ioas = dirty_ioas(s, mem, iova);
	struct ioasid_op op;
	char path[64];
	int p[2];

	/* not sealed against shrinking */
	fd = bitmap_memfd(32, 0);
	cr_assert_eq(read_into(s, ioas, iova, fd, true, &op), -EINVAL);
	cr_assert(strstr(op.errmsg, "F_SEAL_SHRINK"), "%s", op.errmsg);
	cr_assert_eq(word0(fd), 0xeeeeeeeeeeeeeeeeULL, "untouched");
	close(fd);
	/* not a memfd at all */
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(read_into(s, ioas, iova, p[0], true, &op), -EINVAL);
	close(p[0]);
	close(p[1]);
	/* too small: 1 MiB needs 32 bytes */
	fd = bitmap_memfd(16, F_SEAL_SHRINK);
	cr_assert_eq(read_into(s, ioas, iova, fd, true, &op), -EMSGSIZE);
	cr_assert(strstr(op.errmsg, "needs 32"), "%s", op.errmsg);
	close(fd);
	/* read-only, or sealed against writes */
	fd = bitmap_memfd(32, F_SEAL_SHRINK);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(ro, 0);
	cr_assert_eq(read_into(s, ioas, iova, ro, true, &op), -EACCES);
	close(ro);
	close(fd);
	fd = bitmap_memfd(32, F_SEAL_SHRINK | F_SEAL_WRITE);
	cr_assert_eq(read_into(s, ioas, iova, fd, true, &op), -EACCES);
	close(fd);
	/* none of it cleared anything: a good one gets the three pages */
	fd = bitmap_memfd(4096, F_SEAL_SHRINK);
	cr_assert_eq(read_into(s, ioas, iova, fd, true, &op), 0, "%s",
		     op.errmsg);
	cr_assert_eq(op.out_len, 0, "the bits are in the memfd, not the reply");
	cr_assert_eq(word0(fd), want, "0x%llx",
		     (unsigned long long)word0(fd));
	close(fd);
	close(s);
	close(mem);
	expect_clean_exit();
}

/* Another session's IOAS: ENOENT, its memfd untouched, the owner's bits
 * still there; an unmap with GET_DIRTY fills the memfd. */
Test(dirty_daemon, bitmaps_are_the_sessions_own)
{
	int mem = test_memfd(MiB), s = raw_connect(), t = raw_connect(), fd;
	const uint64_t iova = 32 * MiB;
	uint32_t ioas = dirty_ioas(s, mem, iova);
	struct ioasid_op op;

	fd = bitmap_memfd(4096, F_SEAL_SHRINK);
	cr_assert_eq(read_into(t, ioas, iova, fd, true, &op), -ENOENT);
	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas;
	op.iova = iova;
	op.length = MiB;
	op.flags = IOASID_UNMAP_GET_DIRTY;
	op.fd = fd;
	cr_assert_eq(codec_call(t, &op), -ENOENT);
	cr_assert_eq(word0(fd), 0xeeeeeeeeeeeeeeeeULL, "untouched");
	ioasid_op_init(&op, IOASID_CMD_DIRTY_STOP);
	op.ioas_id = ioas;
	cr_assert_eq(codec_call(t, &op), -ENOENT);

	/* the owner's unmap returns the three pages, through the memfd */
	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas;
	op.iova = iova;
	op.length = MiB;
	op.flags = IOASID_UNMAP_GET_DIRTY;
	op.fd = fd;
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	cr_assert_eq(op.out_bytes, MiB);
	cr_assert_eq(word0(fd), (1ULL << 1) | (1ULL << 41), "0x%llx",
		     (unsigned long long)word0(fd));
	{
		uint64_t w1 = 0;

		cr_assert_eq(pread(fd, &w1, 8, 8), 8);
		cr_assert_eq(w1, 1ULL << (81 - 64));
	}
	/* an unmap with GET_DIRTY but no bitmap at all is refused */
	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas;
	op.iova = iova;
	op.length = MiB;
	op.flags = IOASID_UNMAP_GET_DIRTY | IOASID_UNMAP_MISSING_OK;
	cr_assert_eq(codec_call(s, &op), -EMSGSIZE);
	close(fd);
	close(t);
	close(s);
	close(mem);
	expect_clean_exit();
}
