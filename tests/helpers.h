/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers for the criterion tests. */
#ifndef IOASID_TESTS_HELPERS_H
#define IOASID_TESTS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libioasid.h>

/* A memfd of @size bytes, sealed against shrinking (good practice). */
int test_memfd(uint64_t size);
/* A memfd without the seal. */
int test_memfd_unsealed(uint64_t size);
/* A new KVM VM's fd; skips the test when /dev/kvm cannot make one. */
int test_kvm_vm(void);
/* Context for $IOASID_TEST_URI, or "sim" when unset. */
struct ioasid_ctx *test_ctx(void);
/* A context and one IOAS in it. */
struct ioasid_ctx *test_ctx_ioas(uint32_t *ioas_id);
/*
 * The named session @name of this uid in @ctx's ioasidd (an observer
 * sees other uids' too: they are skipped), into @out (may be NULL).
 */
bool test_find_session(struct ioasid_ctx *ctx, const char *name,
		       struct ioasid_session_info *out);
/*
 * Device @dev_id writes @text (with its NUL, under 64 bytes) at @iova;
 * it must land at @offset of @memfd (the IOVA maps it there).
 */
void test_dma_lands(struct ioasid_ctx *ctx, uint32_t dev_id, uint64_t iova,
		    int memfd, uint64_t offset, const char *text);
/*
 * A guest with everything nesting has, in @ctx on the built-in sim
 * topology: a nest-parent IOAS mapping @memfd (1 MiB, its first pages a
 * VT-d stage-1 table: GVA 0x200000 -> page 0x10000, 0x201000 -> 0x11000,
 * at GPA 1 MiB), the NIC and GPU0 bound; a vIOMMU with a vDEVICE for
 * each, a table on it with the NIC attached and GPU0's PASID 5; a plain
 * table with GPU0's PASID 6; GPU0's PASID 7 on the parent itself.
 */
struct test_nesting {
	uint32_t ioas, nic, gpu, viommu, vnic, vgpu, vtable, table;
};
#define TEST_NESTING_GPA	(1ULL << 20)
#define TEST_NESTING_GVA	0x200000ULL
void test_nesting_build(struct ioasid_ctx *ctx, int memfd,
			struct test_nesting *t);
/*
 * The guest of @t works in @ctx: DMA through each table (device and
 * PASIDs) lands in @memfd, the PASID on the parent too, and the NIC's
 * stale IOTLB entry goes with an invalidation through the vIOMMU, GPU0's
 * with one of the plain table (the stage-1 tables are changed and put
 * back).  @what names the moment in the messages.
 */
void test_nesting_check(struct ioasid_ctx *ctx, int memfd,
			const struct test_nesting *t, const char *what);
/* Number of open file descriptors of this process. */
int test_count_fds(void);
/*
 * One packet on socket @s with @nfds (at most 8) descriptors as SCM_RIGHTS,
 * sent with sendmsg() @flags; sendmsg()'s result.  send_fds() sends with
 * MSG_NOSIGNAL.
 */
ssize_t send_fds_flags(int s, const void *buf, size_t len, const int *fds,
		       int nfds, int flags);
ssize_t send_fds(int s, const void *buf, size_t len, const int *fds,
		 int nfds);

#endif
