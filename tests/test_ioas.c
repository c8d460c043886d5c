/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address spaces through the public API: every rule and errno of
 * ioasid_ioas_*, map/unmap/copy, ranges and files, plus a randomized
 * comparison against a per-page model.  Runs unchanged against ioasidd
 * when IOASID_TEST_URI=unix:PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA

static uint64_t nr_mappings(struct ioasid_ctx *ctx, uint32_t ioas)
{
	struct ioasid_ioas_info info;

	cr_assert_eq(ioasid_ioas_get_info(ctx, ioas, &info), 0);
	return info.nr_mappings;
}

static int map_fixed(struct ioasid_ctx *ctx, uint32_t ioas, int fd,
		     uint64_t off, uint64_t len, uint64_t iova, uint32_t prot)
{
	return ioasid_map_file(ctx, ioas, fd, off, len, prot | FIXED, &iova);
}

/* ---- IOAS objects -------------------------------------------------------- */

Test(ioas, alloc_list_destroy)
{
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t a, b, ids[4], nr = 4;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &a), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &b), 0);
	cr_assert_neq(a, 0);
	cr_assert_neq(a, b);
	cr_assert_eq(ioasid_ioas_list(ctx, ids, &nr), 0);
	cr_assert_eq(nr, 2);
	nr = 1;
	cr_assert_eq(ioasid_ioas_list(ctx, ids, &nr), -EMSGSIZE);
	cr_assert_eq(nr, 2, "EMSGSIZE reports the number needed");
	cr_assert_eq(ioasid_ioas_destroy(ctx, a), 0);
	cr_assert_eq(ioasid_ioas_destroy(ctx, a), -ENOENT);
	cr_assert_eq(ioasid_ioas_destroy(ctx, 0), -ENOENT);
	nr = 4;
	cr_assert_eq(ioasid_ioas_list(ctx, ids, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(ids[0], b);
	ioasid_unref(ctx);
}

Test(ioas, alloc_errors)
{
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t id = 77;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 1U << 30, &id), -EOPNOTSUPP);
	cr_assert_eq(id, 77, "out-parameter untouched on error");
	cr_assert_str_neq(ioasid_last_error(ctx), "");
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, NULL), -EINVAL);
	cr_assert_eq(ioasid_ioas_alloc(NULL, 0, &id), -EINVAL);
	cr_assert_eq(ioasid_ioas_get_info(ctx, 12345, &(struct ioasid_ioas_info){0}),
		     -ENOENT);
	ioasid_unref(ctx);
}

Test(ioas, page_granular_flag)
{
	struct ioasid_ctx *ctx = test_ctx();
	struct ioasid_ioas_info info = { .size = sizeof(info) };
	uint32_t pg, plain, restricted;

	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_PAGE_GRANULAR, &pg), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ioas_get_info(ctx, pg, &info), 0);
	cr_assert_eq(info.flags, IOASID_IOAS_PAGE_GRANULAR);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &plain), 0);
	cr_assert_eq(ioasid_ioas_get_info(ctx, plain, &info), 0);
	cr_assert_eq(info.flags, 0, "large pages are the default");
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_RESTRICTED,
				       &restricted), 0);
	cr_assert_eq(ioasid_ioas_get_info(ctx, restricted, &info), 0);
	cr_assert_eq(info.flags,
		     IOASID_IOAS_RESTRICTED | IOASID_IOAS_PAGE_GRANULAR,
		     "restricted implies page-granular: 0x%x", info.flags);
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT << 1,
				       &plain), -EOPNOTSUPP);
	ioasid_unref(ctx);
}

Test(ioas, snoop_mode)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	struct ioasid_ioas_info info;

	cr_assert_eq(ioasid_ioas_get_info(ctx, ioas, &info), 0);
	cr_assert_eq(info.snoop_mode, IOASID_SNOOP_AUTO);
	cr_assert_eq(ioasid_ioas_set_snoop_mode(ctx, ioas, IOASID_SNOOP_ENFORCE), 0);
	cr_assert_eq(ioasid_ioas_set_snoop_mode(ctx, ioas, 99), -EINVAL);
	cr_assert_eq(ioasid_ioas_get_info(ctx, ioas, &info), 0);
	cr_assert_eq(info.snoop_mode, IOASID_SNOOP_ENFORCE);
	ioasid_unref(ctx);
}

/* ---- map_file -------------------------------------------------------------- */

Test(map, file_fixed_and_lookup)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(8 * MiB);
	struct ioasid_mapping m;
	struct ioasid_file_info fi;
	uint64_t iova = 0x100000;

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 2 * MiB, 4 * MiB,
				     RW | FIXED, &iova), 0);
	cr_assert_eq(iova, 0x100000);
	close(fd);	/* the library keeps its own reference */
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000 + 5 * 4096, &m), 0);
	cr_assert_eq(m.iova, 0x100000);
	cr_assert_eq(m.length, 4 * MiB);
	cr_assert_eq(m.offset, 2 * MiB);
	cr_assert_eq(m.flags & RW, RW);
	cr_assert_eq(ioasid_file_get_info(ctx, ioas, m.file_id, &fi), 0);
	cr_assert_eq(fi.kind, IOASID_FILE_MEMFD);
	cr_assert_eq(fi.page_size, 4096);
	cr_assert_eq(fi.file_size, 8 * MiB);
	cr_assert(strstr(fi.name, "test-ram"), "name %s", fi.name);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000 - 4096, &m), -ENOENT);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000 + 4 * MiB, &m), -ENOENT);
	cr_assert_eq(ioasid_file_get_info(ctx, ioas, 999, &fi), -ENOENT);
	ioasid_unref(ctx);
}

Test(map, same_inode_is_one_file)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(64 * 4096), fd2 = dup(fd);
	struct ioasid_mapping m1, m2;
	struct ioasid_file_info fi;
	char path[64];
	int fd3;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd3 = open(path, O_RDWR);
	cr_assert(fd3 >= 0);
	for (int i = 0; i < 48; i++)
		cr_assert_eq(map_fixed(ctx, ioas, i % 3 == 0 ? fd : i % 3 == 1 ? fd2 : fd3,
				       (uint64_t)i * 4096, 4096,
				       0x10000000 + (uint64_t)i * 8192, RW), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x10000000, &m1), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x10000000 + 47 * 8192, &m2), 0);
	cr_assert_eq(m1.file_id, m2.file_id);
	cr_assert_eq(ioasid_file_get_info(ctx, ioas, m1.file_id, &fi), 0);
	cr_assert_eq(fi.nr_mappings, 48);
	close(fd);
	close(fd2);
	close(fd3);
	ioasid_unref(ctx);
}

/*
 * ioasid_map_file_id: more of a file the IOAS holds, by the id its
 * mappings report, with the descriptor closed; the held reference's
 * access (a read-only first map stays read-only), seals and size still
 * checked; an id the IOAS does not hold (never, another IOAS's, or after
 * the last mapping of it went) is ENOENT and maps nothing.
 */
Test(map, by_file_id)
{
	uint32_t ioas, other;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd_unsealed(16 * 4096), ro;
	struct ioasid_mapping m;
	uint64_t iova = 0x200000, before;
	uint32_t id, ro_id;
	char path[64];

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x100000, RW), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000, &m), 0);
	id = m.file_id;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(ro, 0);
	close(fd);
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id, 4 * 4096, 2 * 4096,
					RW | FIXED, &iova), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(iova, 0x200000);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x201000, &m), 0);
	cr_assert_eq(m.file_id, id, "the same file");
	cr_assert_eq(m.offset, 4 * 4096);
	cr_assert_eq(m.length, 2 * 4096);
	cr_assert_eq(m.flags & RW, RW);
	iova = 0;
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id, 8 * 4096, 4096,
					IOASID_MAP_READ, &iova), 0);
	cr_assert_neq(iova, 0, "an IOVA chosen");

	/* refusals change nothing */
	before = nr_mappings(ctx, ioas);
	iova = 0x300000;
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id + 100, 0, 4096,
					RW | FIXED, &iova), -ENOENT);
	cr_assert(strstr(ioasid_last_error(ctx), "holds no file"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(ioasid_map_file_id(ctx, other, id, 0, 4096, RW | FIXED,
					&iova), -ENOENT, "another IOAS's");
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id, 16 * 4096, 4096,
					RW | FIXED, &iova), -EINVAL,
		     "beyond the file's end");
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id, 0, 4096, RW | FIXED,
					NULL), -EINVAL);
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id, 0, 4096,
					RW | FIXED | (1U << 30), &iova),
		     -EOPNOTSUPP);
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id, 0, 4096, RW | FIXED,
					&(uint64_t){ 0x100000 }), -EEXIST);
	cr_assert_eq(iova, 0x300000, "untouched on error");
	cr_assert_eq(nr_mappings(ctx, ioas), before);

	/* a file first mapped read-only is held read-only */
	cr_assert_eq(map_fixed(ctx, other, ro, 0, 4096, 0x100000,
			       IOASID_MAP_READ), 0);
	cr_assert_eq(ioasid_lookup(ctx, other, 0x100000, &m), 0);
	ro_id = m.file_id;
	cr_assert_eq(ioasid_map_file_id(ctx, other, ro_id, 4096, 4096,
					RW | FIXED, &iova), -EACCES);
	cr_assert_eq(ioasid_map_file_id(ctx, other, ro_id, 4096, 4096,
					IOASID_MAP_READ | FIXED, &iova), 0);

	/* the last mapping of it gone, the id names nothing */
	cr_assert_eq(ioasid_unmap_all(ctx, ioas, NULL), 0);
	iova = 0x100000;
	cr_assert_eq(ioasid_map_file_id(ctx, ioas, id, 0, 4096, RW | FIXED,
					&iova), -ENOENT);
	cr_assert_eq(nr_mappings(ctx, ioas), 0);
	close(ro);
	ioasid_unref(ctx);
}

/*
 * A map that fails takes no file id, whatever failed (the file's range,
 * an IOVA taken): the next file gets the id after the last one mapped,
 * as a replay of the maps that succeeded gives it (the crash journal).
 */
Test(map, a_failed_map_takes_no_file_id)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int a = test_memfd(4 * 4096), x = test_memfd(4 * 4096);
	int b = test_memfd(4 * 4096);
	struct ioasid_mapping m;
	uint32_t ida;

	cr_assert_eq(map_fixed(ctx, ioas, a, 0, 4096, 0x100000, RW), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x100000, &m), 0);
	ida = m.file_id;
	cr_assert_eq(map_fixed(ctx, ioas, x, 8 * 4096, 4096, 0x200000, RW),
		     -EINVAL, "beyond the file's end");
	cr_assert_eq(map_fixed(ctx, ioas, x, 0, 4096, 0x100000, RW), -EEXIST);
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, x,
					   (struct ioasid_map_entry[]){
						{ 0x300000, 0, 4096 },
						{ 0x100000, 4096, 4096 } },
					   2, RW | FIXED, NULL), -EEXIST,
		     "a batch undone");
	cr_assert_eq(map_fixed(ctx, ioas, b, 0, 4096, 0x400000, RW), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x400000, &m), 0);
	cr_assert_eq(m.file_id, ida + 1, "file %u after %u: the failures "
		     "took no id", m.file_id, ida);
	close(a);
	close(x);
	close(b);
	ioasid_unref(ctx);
}

Test(map, allocated_iova_is_aligned_and_never_zero)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(16 * MiB);
	uint64_t a = 0, b = 0, c = 0;

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW, &a), 0);
	cr_assert_neq(a, 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 2 * MiB, 4 * MiB, RW, &b), 0);
	cr_assert_eq(b % (2 * MiB), 0, "2 MiB aligned: 0x%llx", (unsigned long long)b);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 8 * MiB, 8 * MiB, RW, &c), 0);
	cr_assert_eq(c % (8 * MiB), 0);
	cr_assert(c + 8 * MiB <= b || c >= b + 4 * MiB, "no overlap");
	close(fd);
	ioasid_unref(ctx);
}

Test(map, argument_errors_change_nothing)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(4 * MiB);
	uint64_t iova = 0x200000;
	int fds_before;

	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, MiB, 0x200000, RW), 0);
	fds_before = test_count_fds();

	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 0, 0x800000, RW), -EINVAL);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 100, 4096, 0x800000, RW), -EINVAL);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4000, 0x800000, RW), -EINVAL);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x800010, RW), -EINVAL);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x800000, 0), -EINVAL);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x800000, RW | (1U << 20)),
		     -EOPNOTSUPP);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 4 * MiB, 4096, 0x800000, RW), -EINVAL);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 8 * MiB, 0x800000, RW), -EINVAL);
	cr_assert_eq(map_fixed(ctx, ioas, fd, UINT64_MAX - 4095, 8192, 0x800000, RW),
		     -EOVERFLOW);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 8192, UINT64_MAX - 4095, RW),
		     -EOVERFLOW);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x200000 + MiB - 4096, RW),
		     -EEXIST);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 2 * MiB, 0x100000, RW), -EEXIST);
	cr_assert_eq(map_fixed(ctx, ioas, -1, 0, 4096, 0x800000, RW), -EBADF);
	cr_assert_eq(map_fixed(ctx, ioas, 9999, 0, 4096, 0x800000, RW), -EBADF);
	cr_assert_eq(map_fixed(ctx, 4242, fd, 0, 4096, 0x800000, RW), -ENOENT);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW, NULL), -EINVAL);
	cr_assert_eq(iova, 0x200000);

	cr_assert_eq(nr_mappings(ctx, ioas), 1, "failed maps left nothing");
	cr_assert_eq(test_count_fds(), fds_before, "failed maps leak no fd");
	close(fd);
	ioasid_unref(ctx);
}

Test(map, file_kinds)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int pipefd[2], sv[2], dir, zero, disk, unsealed, ro;
	char tmpl[] = "/var/tmp/ioasid-test-XXXXXX";
	char path[64];

	cr_assert_eq(pipe(pipefd), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	dir = open("/", O_RDONLY | O_DIRECTORY);
	zero = open("/dev/zero", O_RDWR);
	disk = mkstemp(tmpl);
	cr_assert(disk >= 0);
	unlink(tmpl);
	cr_assert_eq(ftruncate(disk, 1 << 20), 0);
	unsealed = test_memfd_unsealed(MiB);
	ro = test_memfd(MiB);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ro);
	close(ro);
	ro = -1;

	cr_assert_eq(map_fixed(ctx, ioas, pipefd[0], 0, 4096, 0x100000, RW), -EOPNOTSUPP);
	cr_assert_eq(map_fixed(ctx, ioas, sv[0], 0, 4096, 0x100000, RW), -EOPNOTSUPP);
	cr_assert_eq(map_fixed(ctx, ioas, dir, 0, 4096, 0x100000, RW), -EOPNOTSUPP);
	cr_assert_eq(map_fixed(ctx, ioas, zero, 0, 4096, 0x100000, RW), -EOPNOTSUPP);
	cr_assert_eq(map_fixed(ctx, ioas, disk, 0, 4096, 0x100000, RW), -EOPNOTSUPP);
	cr_assert_str_neq(ioasid_last_error(ctx), "");
	cr_assert_eq(nr_mappings(ctx, ioas), 0);
	/* one rule: no seal is asked, of a memfd as of a tmpfs file */
	cr_assert_eq(map_fixed(ctx, ioas, unsealed, 0, 4096, 0x100000, RW), 0,
		     "an unsealed memfd maps: %s", ioasid_last_error(ctx));
	cr_assert_eq(nr_mappings(ctx, ioas), 1);
	close(pipefd[0]);
	close(pipefd[1]);
	close(sv[0]);
	close(sv[1]);
	close(dir);
	close(zero);
	close(disk);
	close(unsealed);
	ioasid_unref(ctx);
}

Test(map, read_only_file)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(MiB), ro;
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	cr_assert(ro >= 0);
	cr_assert_eq(map_fixed(ctx, ioas, ro, 0, 4096, 0x100000, RW), -EACCES);
	cr_assert_eq(map_fixed(ctx, ioas, ro, 0, 4096, 0x100000,
			       IOASID_MAP_READ), 0);
	/* same inode already known read-only: a writable fd may map RW */
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x200000, RW), 0);
	/* ... but the read-only fd still may not */
	cr_assert_eq(map_fixed(ctx, ioas, ro, 0, 4096, 0x300000, RW), -EACCES);
	close(ro);
	close(fd);
	ioasid_unref(ctx);
}

/*
 * A write-sealed memfd: write() is refused, so must DMA writes be (the
 * kernel's IOMMU_IOAS_MAP_FILE does not look at seals).  EACCES, as for
 * a read-only descriptor; reading stays possible.
 */
static void write_sealed(int seal, const char *name)
{
	uint32_t ioas, other;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	struct ioasid_mapping m;
	int fd = test_memfd(MiB), fd2;
	char path[64];
	uint64_t iova = 0x100000;

	cr_assert_eq(fcntl(fd, F_ADD_SEALS, seal), 0);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x100000, RW), -EACCES);
	cr_assert(strstr(ioasid_last_error(ctx), "sealed against writing") &&
		  strstr(ioasid_last_error(ctx), name),
		  "the reason names the seal: %s", ioasid_last_error(ctx));
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x100000,
			       IOASID_MAP_WRITE), -EACCES);
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd,
					   &(struct ioasid_map_entry){
						   .iova = 0x100000,
						   .length = 4096 },
					   1, RW | FIXED, NULL), -EACCES);
	cr_assert_eq(nr_mappings(ctx, ioas), 0, "nothing mapped");
	/* the seal is the inode's: another descriptor of it is no way round */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR);
	cr_assert(fd2 >= 0);
	cr_assert_eq(map_fixed(ctx, ioas, fd2, 0, 4096, 0x100000, RW), -EACCES);
	close(fd2);
	/* reading is what the seal leaves */
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, IOASID_MAP_READ |
				     FIXED, &iova), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_lookup(ctx, ioas, iova, &m), 0);
	cr_assert_eq(m.flags & RW, IOASID_MAP_READ);
	/* and a copy of it may not add writing either */
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	iova = 0x100000;
	cr_assert_eq(ioasid_copy(ctx, other, ioas, 0x100000, MiB, RW | FIXED,
				 &iova), -EACCES);
	cr_assert_eq(nr_mappings(ctx, other), 0);
	close(fd);
	ioasid_unref(ctx);
}

Test(map, write_sealed_memfd)
{
	write_sealed(F_SEAL_WRITE, "F_SEAL_WRITE");
}

Test(map, future_write_sealed_memfd)
{
	write_sealed(F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE");
}

/*
 * Sealed after a writable mapping: F_SEAL_WRITE is refused while the
 * pages are mapped writable (the library's shared mapping of the file);
 * F_SEAL_FUTURE_WRITE is taken and leaves that mapping, as it leaves
 * mmap(2)'s, but a copy of it cannot be writable.
 */
Test(map, sealed_after_a_writable_mapping)
{
	uint32_t ioas, other;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(MiB);
	uint64_t iova = 0x100000;

	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, MiB, 0x100000, RW), 0);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	cr_assert_eq(errno, EBUSY);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x400000, RW), -EACCES);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	cr_assert_eq(ioasid_copy(ctx, other, ioas, 0x100000, MiB, RW | FIXED,
				 &iova), -EACCES);
	cr_assert(strstr(ioasid_last_error(ctx), "F_SEAL_FUTURE_WRITE"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(ioasid_copy(ctx, other, ioas, 0x100000, MiB,
				 IOASID_MAP_READ | FIXED, &iova), 0);
	cr_assert_eq(nr_mappings(ctx, ioas), 1, "the first mapping stays");
	close(fd);
	ioasid_unref(ctx);
}

/* vm.nr_hugepages; -1 when unreadable. */
static long nr_huge_pages(void)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
	long n = -1;

	if (f && fscanf(f, "%ld", &n) != 1)
		n = -1;
	if (f)
		fclose(f);
	return n;
}

static bool set_nr_huge_pages(long n)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "w");
	bool ok = f && fprintf(f, "%ld\n", n) > 0;

	if (f && fclose(f) != 0)
		ok = false;
	return ok;
}

static long free_huge_pages(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long n = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

Test(map, hugetlb_memfd_page_size)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = memfd_create("huge", MFD_HUGETLB | MFD_ALLOW_SEALING);
	struct ioasid_mapping m;
	struct ioasid_file_info fi;
	long reserved = nr_huge_pages(), raised = -1;

	if (fd < 0)
		cr_skip_test("no hugetlbfs memfd: %s", strerror(errno));
	/* as root, reserve the two pages it needs (given back below) */
	if (free_huge_pages() < 2 && geteuid() == 0 && reserved >= 0 &&
	    set_nr_huge_pages(reserved + 2))
		raised = reserved;
	if (free_huge_pages() < 2) {
		close(fd);
		if (raised >= 0)
			set_nr_huge_pages(raised);
		cr_skip_test("no free 2 MiB huge pages (vm.nr_hugepages %ld%s)",
			     reserved, geteuid() ? ", and not root to raise it" :
			     ": raising it gave none");
	}
	/*
	 * Take the pages now: the pool is the machine's, and another test
	 * run may empty it between the count above and the map's mmap().
	 */
	if (ftruncate(fd, 4 * MiB) < 0 || fallocate(fd, 0, 0, 4 * MiB) < 0) {
		int e = errno;

		close(fd);
		if (raised >= 0)
			set_nr_huge_pages(raised);
		cr_skip_test("no 2 huge pages for this test (pool in use): %s",
			     strerror(e));
	}
	cr_assert_eq(map_fixed(ctx, ioas, fd, 4096, 2 * MiB, 0x200000, RW), -EINVAL,
		     "offset must be 2 MiB aligned");
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, MiB, 0x200000, RW), -EINVAL,
		     "length must be 2 MiB aligned");
	cr_assert_eq(map_fixed(ctx, ioas, fd, 2 * MiB, 2 * MiB, 0x200000, RW), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x200000, &m), 0);
	cr_assert_eq(ioasid_file_get_info(ctx, ioas, m.file_id, &fi), 0);
	cr_assert_eq(fi.page_size, 2 * MiB);
	cr_assert_eq(fi.kind, IOASID_FILE_MEMFD_HUGETLB, "kind %u", fi.kind);
	close(fd);
	ioasid_unref(ctx);
	if (raised >= 0)	/* pages still held become surplus, then go */
		cr_assert(set_nr_huge_pages(raised), "vm.nr_hugepages back");
}

Test(map, guest_memfd_kind)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx;
	struct ioasid_mapping m;
	struct ioasid_file_info fi;
	struct { uint64_t size, flags, reserved[6]; } gm = { .size = 2 * MiB };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, fd, plain;

	if (kvm < 0)
		cr_skip_test("no /dev/kvm: %s", strerror(errno));
	vm = ioctl(kvm, 0xAE01 /* KVM_CREATE_VM */, 0);
	cr_assert(vm >= 0);
	gm.flags = 3;	/* GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED */
	fd = ioctl(vm, _IOWR(0xAE, 0xd4, gm), &gm);
	gm.flags = 0;
	plain = ioctl(vm, _IOWR(0xAE, 0xd4, gm), &gm);
	if (fd < 0 || plain < 0) {
		close(vm);
		close(kvm);
		cr_skip_test("KVM lacks mmap-able guest_memfd: %s", strerror(errno));
	}
	ctx = test_ctx_ioas(&ioas);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 2 * MiB, 0x400000, RW), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x400000, &m), 0);
	cr_assert_eq(ioasid_file_get_info(ctx, ioas, m.file_id, &fi), 0);
	cr_assert_eq(fi.kind, IOASID_FILE_GUEST_MEMFD);
	/* without GUEST_MEMFD_FLAG_MMAP the simulated IOMMU cannot reach it */
	cr_assert_eq(map_fixed(ctx, ioas, plain, 0, 2 * MiB, 0x800000, RW),
		     -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(ctx), "GUEST_MEMFD_FLAG_MMAP"));
	close(fd);
	close(plain);
	close(vm);
	close(kvm);
	ioasid_unref(ctx);
}

/* ---- map_user ------------------------------------------------------------------ */

Test(map, user_memory)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	void *buf = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ioasid_mapping m;
	uint64_t iova = 0;
	int r;

	cr_assert(buf != MAP_FAILED);
	r = ioasid_map_user(ctx, ioas, buf, 8 * 4096, RW, &iova);
	if (ioasid_is_remote(ctx)) {
		cr_assert_eq(r, -EOPNOTSUPP);
	} else {
		cr_assert_eq(r, 0);
		cr_assert_eq(ioasid_lookup(ctx, ioas, iova, &m), 0);
		cr_assert(m.flags & IOASID_MAPPING_USER);
		cr_assert_eq(m.offset, (uint64_t)(uintptr_t)buf);
		cr_assert_eq(m.file_id, 0);
	}
	cr_assert_eq(ioasid_map_user(ctx, ioas, (char *)buf + 1, 4096, RW, &iova),
		     ioasid_is_remote(ctx) ? -EOPNOTSUPP : -EINVAL);
	cr_assert_eq(ioasid_map_user(ctx, ioas, NULL, 4096, RW, &iova),
		     ioasid_is_remote(ctx) ? -EOPNOTSUPP : -EINVAL);
	munmap(buf, 8 * 4096);
	ioasid_unref(ctx);
}

/*
 * A line of /proc/self/maps longer than the checker's buffer (a file whose
 * path is over 4 KiB) before the range does not stop the range check.
 */
#define LONG_DEPTH 24
Test(map, user_range_check_reads_past_a_long_maps_line)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	char tmpl[] = "/tmp/ioasid-longpath-XXXXXX", name[201];
	int dirs[LONG_DEPTH + 1], fd, i;
	uint64_t iova = 0x100000;
	void *low, *buf;
	int remote = ioasid_is_remote(ctx);

	memset(name, 'd', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	cr_assert(mkdtemp(tmpl));
	dirs[0] = open(tmpl, O_RDONLY | O_DIRECTORY);
	cr_assert(dirs[0] >= 0);
	for (i = 1; i <= LONG_DEPTH; i++) {
		cr_assert_eq(mkdirat(dirs[i - 1], name, 0700), 0);
		dirs[i] = openat(dirs[i - 1], name, O_RDONLY | O_DIRECTORY);
		cr_assert(dirs[i] >= 0);
	}
	fd = openat(dirs[LONG_DEPTH], "f", O_RDWR | O_CREAT, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	/* low in the address space: its line comes before buf's */
	low = mmap((void *)0x10000000, 4096, PROT_READ, MAP_SHARED |
		   MAP_FIXED_NOREPLACE, fd, 0);
	cr_assert(low == (void *)0x10000000, "%p", low);
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(buf != MAP_FAILED && (uintptr_t)buf > 0x10000000);
	cr_assert_eq(ioasid_map_user(ctx, ioas, buf, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova),
		     remote ? -EOPNOTSUPP : 0, "%s", ioasid_last_error(ctx));
	if (!remote)
		cr_assert_eq(ioasid_unmap(ctx, ioas, iova, 4096, 0, NULL), 0);
	cr_assert_eq(munmap(buf, 4096), 0);
	cr_assert_eq(munmap(low, 4096), 0);
	close(fd);
	cr_assert_eq(unlinkat(dirs[LONG_DEPTH], "f", 0), 0);
	for (i = LONG_DEPTH; i >= 1; i--) {
		close(dirs[i]);
		cr_assert_eq(unlinkat(dirs[i - 1], name, AT_REMOVEDIR), 0);
	}
	close(dirs[0]);
	cr_assert_eq(rmdir(tmpl), 0);
	ioasid_unref(ctx);
}

/*
 * Memory a device could not use is refused at map time, as pinning refuses
 * it on a real kernel (EFAULT), and nothing is mapped.
 */
Test(map, user_memory_must_be_mapped_with_the_access_asked)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	char *buf = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ioasid_mapping m;
	uint64_t iova = 0x100000;
	int remote = ioasid_is_remote(ctx);

	cr_assert(buf != MAP_FAILED);
	/* rw page, read-only page, hole */
	cr_assert_eq(mprotect(buf + 4096, 4096, PROT_READ), 0);
	cr_assert_eq(munmap(buf + 2 * 4096, 4096), 0);

	cr_assert_eq(ioasid_map_user(ctx, ioas, (void *)0x1000, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova),
		     remote ? -EOPNOTSUPP : -EFAULT);
	if (!remote)
		cr_assert(strstr(ioasid_last_error(ctx), "0x1000 is not mapped"),
			  "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_map_user(ctx, ioas, buf, 2 * 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova),
		     remote ? -EOPNOTSUPP : -EFAULT);
	if (!remote)
		cr_assert(strstr(ioasid_last_error(ctx),
				 "without write permission"),
			  "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_map_user(ctx, ioas, buf, 3 * 4096,
				     IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
				     &iova),
		     remote ? -EOPNOTSUPP : -EFAULT);
	if (!remote)
		cr_assert(strstr(ioasid_last_error(ctx), "is not mapped"),
			  "%s", ioasid_last_error(ctx));
	cr_assert_eq(iova, 0x100000);
	cr_assert_eq(ioasid_lookup(ctx, ioas, iova, &m), -ENOENT);

	/* the same pages, asking only for what they allow */
	cr_assert_eq(ioasid_map_user(ctx, ioas, buf, 2 * 4096,
				     IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
				     &iova),
		     remote ? -EOPNOTSUPP : 0);
	if (!remote) {
		cr_assert_eq(ioasid_lookup(ctx, ioas, iova, &m), 0);
		cr_assert_eq(m.offset, (uint64_t)(uintptr_t)buf);
		cr_assert_eq(m.length, 2 * 4096);
	}
	cr_assert_eq(ioasid_map_user(ctx, ioas, buf, 4096,
				     RW | IOASID_MAP_FIXED_IOVA,
				     &(uint64_t){ 0x200000 }),
		     remote ? -EOPNOTSUPP : 0);
	if (!remote)
		cr_assert_eq(ioasid_unmap_all(ctx, ioas, NULL), 0);
	munmap(buf, 2 * 4096);
	ioasid_unref(ctx);
}

/* ---- unmap --------------------------------------------------------------------- */

Test(unmap, cut_inside_keeps_backing)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(8 * MiB);
	struct ioasid_mapping m;
	uint64_t done = 0;

	cr_assert_eq(map_fixed(ctx, ioas, fd, MiB, 4 * MiB, 0x40000000, RW), 0);
	/* punch one page out of the middle */
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x40000000 + MiB, 4096, 0, &done), 0);
	cr_assert_eq(done, 4096);
	cr_assert_eq(nr_mappings(ctx, ioas), 2);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x40000000 + MiB, &m), -ENOENT);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x40000000, &m), 0);
	cr_assert_eq(m.length, MiB);
	cr_assert_eq(m.offset, MiB);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x40000000 + MiB + 4096, &m), 0);
	cr_assert_eq(m.iova, 0x40000000 + MiB + 4096);
	cr_assert_eq(m.length, 3 * MiB - 4096);
	cr_assert_eq(m.offset, 2 * MiB + 4096, "offset follows the cut");
	cr_assert_eq(m.flags & RW, RW);
	/* a range spanning the hole and parts of both pieces */
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x40000000 + MiB - 8192, 4 * 4096, 0,
				  &done), 0);
	cr_assert_eq(done, 3 * 4096, "the hole counts nothing");
	close(fd);
	ioasid_unref(ctx);
}

Test(unmap, missing_and_errors)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(MiB);
	uint64_t done = 1234;

	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100000, 4096, 0, &done), -ENOENT);
	cr_assert_eq(done, 1234);
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100000, 4096,
				  IOASID_UNMAP_MISSING_OK, &done), 0);
	cr_assert_eq(done, 0);
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100000, 0, 0, &done), -EINVAL);
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100001, 4096, 0, &done), -EINVAL);
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100000, 4095, 0, &done), -EINVAL);
	cr_assert_eq(ioasid_unmap(ctx, ioas, UINT64_MAX - 4095, 8192, 0, &done),
		     -EOVERFLOW);
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100000, 4096, 0x80, &done),
		     -EOPNOTSUPP);
	cr_assert_eq(ioasid_unmap(ctx, 999, 0x100000, 4096, 0, &done), -ENOENT);
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, MiB, 0x100000, RW), 0);
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100000, 0x1000, 0x80, &done),
		     -EOPNOTSUPP);
	cr_assert_eq(nr_mappings(ctx, ioas), 1);
	close(fd);
	ioasid_unref(ctx);
}

Test(unmap, all)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(MiB);
	uint64_t done;

	for (int i = 0; i < 100; i++)
		cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096,
				       (uint64_t)(i + 1) << 30, RW), 0);
	cr_assert_eq(ioasid_unmap_all(ctx, ioas, &done), 0);
	cr_assert_eq(done, 100 * 4096);
	cr_assert_eq(nr_mappings(ctx, ioas), 0);
	cr_assert_eq(ioasid_unmap_all(ctx, ioas, &done), 0);
	cr_assert_eq(done, 0);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- copy ---------------------------------------------------------------------- */

/*
 * A copy to a fixed range that is not free fails before anything goes
 * in, and what the destination had stays, in the library and in the
 * backend: its mapping is found, a device attached to it still writes
 * its file, and it unmaps and maps again.  Both ways of copying: one
 * backend call (the simulator's ->copy) and piece by piece (into a
 * restricted IOAS).
 */
static void copy_over_a_mapping(uint32_t dst_flags)
{
	uint32_t a, b, dev;
	struct ioasid_ctx *ctx = test_ctx_ioas(&a);
	int fd = test_memfd(MiB), fd2 = test_memfd(MiB);
	struct ioasid_mapping m;
	uint64_t dst = 0x200000, unmapped;

	cr_assert_eq(ioasid_ioas_alloc(ctx, dst_flags, &b), 0);
	cr_assert_eq(map_fixed(ctx, a, fd, 0, 4096, 0x100000, RW), 0);
	cr_assert_eq(map_fixed(ctx, a, fd, 4096, 4096, 0x101000, RW), 0);
	cr_assert_eq(map_fixed(ctx, b, fd2, 0, 4096, 0x201000, RW), 0);
	if (dst_flags & IOASID_IOAS_RESTRICTED) {
		struct ioasid_iova_range all = { 0x201000, 0x201fff };

		cr_assert_eq(ioasid_convert(ctx, b, &all, 1,
					    IOASID_CONVERT_SHARED, NULL), 0, "%s",
			     ioasid_last_error(ctx));
	}
	cr_assert_eq(ioasid_device_bind(ctx, "0000:00:01.0", -1, &dev), 0);
	cr_assert_eq(ioasid_device_attach(ctx, dev, b, 0), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_copy(ctx, b, a, 0x100000, 2 * 4096, RW | FIXED,
				 &dst), -EEXIST);
	cr_assert_eq(dst, 0x200000, "untouched on error");
	cr_assert_eq(nr_mappings(ctx, b), 1, "the mapping that was there "
		     "stays");
	cr_assert_eq(ioasid_lookup(ctx, b, 0x201000, &m), 0);
	cr_assert_eq(ioasid_lookup(ctx, b, 0x200000, &m), -ENOENT,
		     "nothing of the copy went in");
	test_dma_lands(ctx, dev, 0x201000, fd2, 0, "still fd2's");
	cr_assert_eq(ioasid_unmap(ctx, b, 0x201000, 4096, 0, &unmapped), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(map_fixed(ctx, b, fd2, 0, 4096, 0x201000, RW), 0,
		     "the backend has it no more: %s", ioasid_last_error(ctx));
	close(fd);
	close(fd2);
	ioasid_unref(ctx);
}

Test(copy, a_fixed_copy_over_a_mapping_changes_nothing)
{
	copy_over_a_mapping(0);
	copy_over_a_mapping(IOASID_IOAS_RESTRICTED);
}

Test(copy, shares_backing)
{
	uint32_t a, b;
	struct ioasid_ctx *ctx = test_ctx_ioas(&a);
	int fd = test_memfd(4 * MiB);
	struct ioasid_mapping m;
	uint64_t dst = 0;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &b), 0);
	cr_assert_eq(map_fixed(ctx, a, fd, 0, MiB, 0x100000, RW), 0);
	cr_assert_eq(map_fixed(ctx, a, fd, 2 * MiB, MiB, 0x200000, IOASID_MAP_READ), 0);
	cr_assert_eq(ioasid_copy(ctx, b, a, 0x180000, MiB, IOASID_MAP_READ, &dst), 0);
	cr_assert_eq(nr_mappings(ctx, b), 2);
	cr_assert_eq(ioasid_lookup(ctx, b, dst, &m), 0);
	cr_assert_eq(m.offset, 0x80000);
	cr_assert_eq(ioasid_lookup(ctx, b, dst + 0x80000, &m), 0);
	cr_assert_eq(m.offset, 2 * MiB);
	cr_assert_eq(m.flags & RW, IOASID_MAP_READ);
	/* more access than the source has */
	dst = 0x10000000;
	cr_assert_eq(ioasid_copy(ctx, b, a, 0x100000, 2 * MiB, RW | FIXED, &dst),
		     -EACCES);
	/* a hole in the source */
	cr_assert_eq(ioasid_copy(ctx, b, a, 0x100000, 3 * MiB,
				 IOASID_MAP_READ | FIXED, &dst), -ENOENT);
	cr_assert_eq(ioasid_copy(ctx, b, 777, 0x100000, MiB, IOASID_MAP_READ, &dst),
		     -ENOENT);
	cr_assert_eq(nr_mappings(ctx, b), 2, "failed copies left nothing");
	/* source unmapped: the copy stays, backed by the same file */
	cr_assert_eq(ioasid_unmap_all(ctx, a, NULL), 0);
	cr_assert_eq(ioasid_ioas_destroy(ctx, a), 0);
	cr_assert_eq(ioasid_lookup(ctx, b, 0x100000 + 0x80000 - 0x80000, &m) == 0 ||
		     nr_mappings(ctx, b) == 2, 1);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- ranges -------------------------------------------------------------------- */

Test(ranges, default_allow_and_narrow)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	struct ioasid_iova_range r[4];
	struct ioasid_iova_range allow[2] = {
		{ 0x100000, 0x1fffff }, { 0x40000000, 0x7fffffff },
	};
	uint32_t nr = 4;
	uint64_t align = 0, iova = 0;
	int fd = test_memfd(4 * MiB);

	cr_assert_eq(ioasid_iova_ranges(ctx, ioas, r, &nr, &align), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(r[0].start, 0);
	cr_assert_eq(r[0].last, UINT64_MAX);
	cr_assert_eq(align, 4096);

	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, allow, 2), 0);
	nr = 4;
	cr_assert_eq(ioasid_iova_ranges(ctx, ioas, r, &nr, NULL), 0);
	cr_assert_eq(nr, 2);
	cr_assert_eq(r[0].start, 0x100000);
	cr_assert_eq(r[0].last, 0x1fffff);
	cr_assert_eq(r[1].start, 0x40000000);
	nr = 1;
	cr_assert_eq(ioasid_iova_ranges(ctx, ioas, r, &nr, NULL), -EMSGSIZE);
	cr_assert_eq(nr, 2);

	/* outside the allowed ranges: as iommufd, EINVAL */
	cr_assert_eq(map_fixed(ctx, ioas, fd, 0, 4096, 0x300000, RW), -EINVAL);
	/* allocation lands inside them */
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 2 * MiB, RW, &iova), 0);
	cr_assert_eq(iova, 0x40000000);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW, &iova), 0);
	cr_assert(iova >= 0x100000 && iova <= 0x1fffff);
	/* narrowing over a mapping fails and changes nothing */
	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, allow, 1), -EADDRINUSE);
	nr = 4;
	cr_assert_eq(ioasid_iova_ranges(ctx, ioas, r, &nr, NULL), 0);
	cr_assert_eq(nr, 2);
	close(fd);
	ioasid_unref(ctx);
}

Test(ranges, allow_errors_and_nospc)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	struct ioasid_iova_range bad[2] = { { 0x2000, 0x1fff }, { 0, 0xfff } };
	struct ioasid_iova_range ovl[2] = { { 0x0, 0x1fffff }, { 0x100000, 0x2fffff } };
	struct ioasid_iova_range una[1] = { { 0x100, 0x1fff } };
	struct ioasid_iova_range small[1] = { { 0x100000, 0x1fffff } };
	uint64_t iova;
	int fd = test_memfd(2 * MiB);

	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, bad, 2), -EINVAL);
	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, ovl, 2), -EINVAL);
	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, una, 1), -EINVAL);
	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, NULL, 1), -EINVAL);
	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, small, 1), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 2 * MiB, RW, &iova), -ENOSPC);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW, &iova), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW, &iova), -ENOSPC);
	/* nr 0 lifts the restriction */
	cr_assert_eq(ioasid_allow_iovas(ctx, ioas, NULL, 0), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW, &iova), 0);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- teardown -------------------------------------------------------------------- */

Test(lifetime, unref_closes_every_file)
{
	int before = test_count_fds();
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(MiB);

	for (int i = 0; i < 16; i++)
		cr_assert_eq(map_fixed(ctx, ioas, fd, 0, MiB,
				       (uint64_t)(i + 1) << 24, RW), 0);
	close(fd);
	cr_assert_eq(ioasid_unref(ctx), NULL);
	cr_assert_eq(test_count_fds(), before, "no descriptor left behind");
}

Test(lifetime, ref_counting)
{
	struct ioasid_ctx *ctx = test_ctx();

	cr_assert_eq(ioasid_ref(ctx), ctx);
	cr_assert_eq(ioasid_unref(ctx), ctx);
	cr_assert_eq(ioasid_unref(ctx), NULL);
	cr_assert_eq(ioasid_ref(NULL), NULL);
	cr_assert_eq(ioasid_unref(NULL), NULL);
}

Test(lifetime, bad_uri)
{
	struct ioasid_ctx *ctx = (void *)1;

	cr_assert_eq(ioasid_new("nonsense", &ctx), -EINVAL);
	cr_assert_eq(ctx, (void *)1);
	cr_assert(strstr(ioasid_last_error(NULL), "nonsense"));
	cr_assert_eq(ioasid_new("sim", NULL), -EINVAL);
}

/* ---- lookups beside map/unmap ---------------------------------------------------- */

struct lookup_arg {
	struct ioasid_ctx *ctx;
	uint32_t ioas;
	volatile int stop;
	volatile uint64_t found, missed;
};

static void *lookup_loop(void *p)
{
	struct lookup_arg *a = p;
	struct ioasid_mapping m;

	while (!a->stop) {
		/* the first page is never touched: it must always be found */
		cr_assert_eq(ioasid_lookup(a->ctx, a->ioas, 0x100000, &m), 0);
		if (ioasid_lookup(a->ctx, a->ioas, 0x100000 + 4096 * (a->found % 255 + 1),
				  &m) == 0)
			a->found++;
		else
			a->missed++;
	}
	return NULL;
}

Test(concurrency, lookups_during_map_unmap)
{
	struct lookup_arg a = { 0 };
	pthread_t t;
	int fd = test_memfd(MiB);

	a.ctx = test_ctx_ioas(&a.ioas);
	cr_assert_eq(map_fixed(a.ctx, a.ioas, fd, 0, MiB, 0x100000, RW), 0);
	cr_assert_eq(pthread_create(&t, NULL, lookup_loop, &a), 0);
	/* run until the reader has raced us a while (bounded) */
	for (int i = 0; i < 2000 || (a.found + a.missed < 2000 && i < 2000000);
	     i++) {
		uint64_t off = 4096 * (uint64_t)(i % 255 + 1);

		cr_assert_eq(ioasid_unmap(a.ctx, a.ioas, 0x100000 + off, 4096, 0,
					  NULL), 0);
		cr_assert_eq(map_fixed(a.ctx, a.ioas, fd, off, 4096,
				       0x100000 + off, RW), 0);
	}
	a.stop = 1;
	pthread_join(t, NULL);
	cr_assert_gt(a.found + a.missed, 0);
	close(fd);
	ioasid_unref(a.ctx);
}

/* ---- randomized comparison with a per-page model ---------------------------------- */

#define MODEL_PAGES 512
#define MODEL_BASE 0x10000000ULL

struct model_page {
	uint32_t fd_idx;	/* 0: unmapped */
	uint64_t offset;
	uint32_t prot;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void model_compare(struct ioasid_ctx *ctx, uint32_t ioas,
			  const struct model_page *model, const uint32_t *file_ids,
			  uint64_t seed, int step)
{
	struct ioasid_mapping m;
	uint64_t pages = 0;

	for (int p = 0; p < MODEL_PAGES; p++) {
		int r = ioasid_lookup(ctx, ioas, MODEL_BASE + (uint64_t)p * 4096, &m);

		if (!model[p].fd_idx) {
			cr_assert_eq(r, -ENOENT, "seed %llu step %d page %d should be unmapped",
				     (unsigned long long)seed, step, p);
			continue;
		}
		pages++;
		cr_assert_eq(r, 0, "seed %llu step %d page %d should be mapped",
			     (unsigned long long)seed, step, p);
		cr_assert_eq(m.offset + (MODEL_BASE + (uint64_t)p * 4096 - m.iova),
			     model[p].offset, "seed %llu step %d page %d offset",
			     (unsigned long long)seed, step, p);
		cr_assert_eq(m.flags & RW, model[p].prot);
		cr_assert_eq(m.file_id, file_ids[model[p].fd_idx]);
	}
	/* the walk in IOVA order covers exactly the mapped pages */
	uint64_t walked = 0, last_end = 0;

	ioasid_mapping_foreach(ctx, ioas, &m) {
		cr_assert_geq(m.iova, last_end, "walk is ordered and disjoint");
		last_end = m.iova + m.length;
		walked += m.length / 4096;
	}
	cr_assert_eq(walked, pages, "seed %llu step %d", (unsigned long long)seed, step);
}

static void model_run(uint64_t seed)
{
	static struct model_page model[MODEL_PAGES];
	uint32_t ioas, file_ids[3] = { 0 };
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fds[3] = { -1, test_memfd(MODEL_PAGES * 4096), test_memfd(MODEL_PAGES * 4096) };
	uint64_t s = seed;

	cr_log_info("model seed %llu", (unsigned long long)seed);
	memset(model, 0, sizeof(model));
	for (int step = 0; step < 1500; step++) {
		uint64_t p = rnd(&s) % MODEL_PAGES;
		uint64_t n = 1 + rnd(&s) % 24, done = 0;
		int r;

		if (p + n > MODEL_PAGES)
			n = MODEL_PAGES - p;
		if (rnd(&s) % 2) {
			int f = 1 + (int)(rnd(&s) % 2);
			uint64_t off = (rnd(&s) % (MODEL_PAGES - n + 1)) * 4096;
			uint32_t prot = 1 + (uint32_t)(rnd(&s) % 3);
			bool free_range = true;
			struct ioasid_mapping m;

			for (uint64_t i = p; i < p + n; i++)
				free_range &= !model[i].fd_idx;
			r = map_fixed(ctx, ioas, fds[f], off, n * 4096,
				      MODEL_BASE + p * 4096, prot);
			cr_assert_eq(r, free_range ? 0 : -EEXIST,
				     "seed %llu step %d map", (unsigned long long)seed, step);
			if (r == 0) {
				for (uint64_t i = 0; i < n; i++)
					model[p + i] = (struct model_page){
						f, off + i * 4096, prot };
				cr_assert_eq(ioasid_lookup(ctx, ioas, MODEL_BASE + p * 4096, &m), 0);
				file_ids[f] = m.file_id;
			}
		} else {
			uint64_t expect = 0;

			for (uint64_t i = p; i < p + n; i++)
				expect += model[i].fd_idx ? 4096 : 0;
			r = ioasid_unmap(ctx, ioas, MODEL_BASE + p * 4096, n * 4096,
					 IOASID_UNMAP_MISSING_OK, &done);
			cr_assert_eq(r, 0);
			cr_assert_eq(done, expect, "seed %llu step %d unmap bytes",
				     (unsigned long long)seed, step);
			for (uint64_t i = p; i < p + n; i++)
				model[i].fd_idx = 0;
		}
		if (step % 10 == 0 || step > 1490)
			model_compare(ctx, ioas, model, file_ids, seed, step);
	}
	close(fds[1]);
	close(fds[2]);
	ioasid_unref(ctx);
}

Test(model, random_map_unmap_split, .timeout = 120)
{
	const char *env = getenv("IOASID_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x10a51d;

	for (int i = 0; i < 4; i++)
		model_run(seed + (uint64_t)i * 7919);
}

/* ---- batches ------------------------------------------------------------------ */

Test(map, batch_all_or_nothing)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	int fd = test_memfd(4 * MiB);
	struct ioasid_map_entry e[3] = {
		{ .iova = 0x100000, .offset = 0, .length = 4096 },
		{ .iova = 0x200000, .offset = 8192, .length = 8192 },
		{ .iova = 0x300000, .offset = MiB, .length = MiB },
	};
	uint64_t iovas[3] = { 0 };
	struct ioasid_mapping m;

	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd, e, 3, RW | FIXED, iovas),
		     0, "%s", ioasid_last_error(ctx));
	cr_assert_eq(iovas[1], 0x200000);
	cr_assert_eq(nr_mappings(ctx, ioas), 3);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x200000 + 4096, &m), 0);
	cr_assert_eq(m.offset, 8192);
	/* the last entry overlaps: the first two are undone */
	e[0].iova = 0x400000;
	e[1].iova = 0x500000;
	e[2].iova = 0x200000;
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd, e, 3, RW | FIXED, iovas),
		     -EEXIST);
	cr_assert(strstr(ioasid_last_error(ctx), "entry 2"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(nr_mappings(ctx, ioas), 3, "nothing half-applied");
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x400000, &m), -ENOENT);
	/* allocated IOVAs come back */
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd, e, 2, RW, iovas), 0);
	cr_assert_neq(iovas[0], 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, iovas[1], &m), 0);
	cr_assert_eq(m.offset, 8192);
	/* bad batches */
	e[0].length = 100;
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd, e, 1, RW, iovas), -EINVAL);
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd, NULL, 1, RW, iovas), -EINVAL);
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd, e, 0, RW, iovas), -EINVAL);
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, fd, e, IOASID_MAP_BATCH_MAX + 1,
					   RW, iovas), -E2BIG);
	cr_assert_eq(ioasid_map_file_batch(ctx, ioas, -1, e, 1, RW, iovas), -EBADF);
	cr_assert_eq(nr_mappings(ctx, ioas), 5);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- argument refusals name the argument ---------------------------------------- */

#define expect_refusal(call, err, text)					\
	do {								\
		int r_ = (call);					\
		cr_assert_eq(r_, err, "%s: %d", #call, r_);		\
		cr_assert(strstr(ioasid_last_error(ctx), text),		\
			  "%s: \"%s\" lacks \"%s\"", #call,		\
			  ioasid_last_error(ctx), text);		\
	} while (0)

Test(args, each_refusal_says_which_argument)
{
	struct ioasid_ctx *ctx = test_ctx();
	struct ioasid_iova_range range = { 0, 4095 };
	struct ioasid_map_entry ent = { .length = 4096 };
	uint32_t ids[4], nr = 4, id;
	uint64_t u64;
	int fd;

	expect_refusal(ioasid_ioas_alloc(ctx, 0, NULL), -EINVAL,
		       "ioasid_ioas_alloc: ioas_id is NULL");
	expect_refusal(ioasid_ioas_list(NULL, ids, &nr), -EINVAL,
		       "ioasid_ioas_list: ctx is NULL");
	expect_refusal(ioasid_ioas_list(ctx, ids, NULL), -EINVAL,
		       "ioasid_ioas_list: the count pointer is NULL");
	expect_refusal(ioasid_ioas_list(ctx, NULL, &nr), -EINVAL,
		       "the array is NULL but its capacity is 4");
	expect_refusal(ioasid_ioas_get_info(ctx, 1, NULL), -EINVAL,
		       "ioasid_ioas_get_info: the result pointer is NULL");
	expect_refusal(ioasid_map_file(ctx, 1, 0, 0, 4096, 0, NULL), -EINVAL,
		       "ioasid_map_file: iova is NULL");
	expect_refusal(ioasid_copy(ctx, 1, 1, 0, 4096, 0, NULL), -EINVAL,
		       "ioasid_copy: dst_iova is NULL");
	expect_refusal(ioasid_allow_iovas(ctx, 1, NULL, 1), -EINVAL,
		       "ranges is NULL but nr is 1");
	expect_refusal(ioasid_allow_iovas(ctx, 1, &range, 5000), -E2BIG,
		       "5000 ranges exceed the limit of 4096");
	expect_refusal(ioasid_convert(ctx, 1, NULL, 1, 0, &u64), -EINVAL,
		       "ioasid_convert: ranges is NULL");
	expect_refusal(ioasid_map_file_batch(ctx, 1, 0, NULL, 1, 0, &u64),
		       -EINVAL, "ioasid_map_file_batch: entries is NULL");
	expect_refusal(ioasid_map_file_batch(ctx, 1, 0, &ent, 0, 0, &u64),
		       -EINVAL, "ioasid_map_file_batch: nr is 0");
	expect_refusal(ioasid_device_get_info(ctx, NULL, NULL), -EINVAL,
		       "ioasid_device_get_info: name is NULL");
	expect_refusal(ioasid_device_bind(ctx, "", -1, &id), -EINVAL,
		       "ioasid_device_bind: name is empty");
	expect_refusal(ioasid_device_bind(ctx, "0123456789012345678901234567"
					  "8901234", -1, &id), -EINVAL,
		       "name is longer than 31 bytes");
	expect_refusal(ioasid_device_bind(ctx, "x", -1, NULL), -EINVAL,
		       "ioasid_device_bind: dev_id is NULL");
	expect_refusal(ioasid_device_get_fd(ctx, 1, NULL), -EINVAL,
		       "ioasid_device_get_fd: fd is NULL");
	expect_refusal(ioasid_device_dma(ctx, 1, 0, NULL, 8, 0, &u64), -EINVAL,
		       "ioasid_device_dma: buf is NULL");
	expect_refusal(ioasid_dirty_read(ctx, 1, 0, 4096, NULL, 0), -EINVAL,
		       "ioasid_dirty_read: bitmap is NULL");
	expect_refusal(ioasid_vm_bind(ctx, -1, -1, NULL), -EINVAL,
		       "ioasid_vm_bind: vm_id is NULL");
	expect_refusal(ioasid_event_read(ctx, NULL), -EINVAL,
		       "ioasid_event_read: event is NULL");
	expect_refusal(ioasid_event_get_fd(NULL), -EINVAL,
		       "ioasid_event_get_fd: ctx is NULL");
	expect_refusal(ioasid_set_observer(ctx, 2), -EOPNOTSUPP,
		       "on is 2, not 0 or 1");
	expect_refusal(ioasid_sim_hotplug(ctx, "x", 3), -EOPNOTSUPP,
		       "present is 3, not 0 or 1");
	expect_refusal(ioasid_new("sim", NULL), -EINVAL, "ioasid_new: ctx is "
		       "NULL");
	fd = ioasid_event_get_fd(ctx);	/* a valid call still works */
	cr_assert(fd >= 0, "%d %s", fd, ioasid_last_error(ctx));
	ioasid_unref(ctx);
}
