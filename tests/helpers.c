/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

int test_memfd_unsealed(uint64_t size)
{
	int fd = memfd_create("test-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert(fd >= 0, "memfd_create");
	cr_assert(ftruncate(fd, (off_t)size) == 0, "ftruncate");
	return fd;
}

int test_memfd(uint64_t size)
{
	int fd = test_memfd_unsealed(size);

	cr_assert(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0, "seal");
	return fd;
}

int test_kvm_vm(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1;

	if (kvm >= 0) {
		vm = ioctl(kvm, 0xAE01 /* KVM_CREATE_VM */, 0);
		close(kvm);
	}
	if (vm < 0)
		cr_skip_test("no KVM VM: /dev/kvm is missing or refused");
	return vm;
}

struct ioasid_ctx *test_ctx(void)
{
	struct ioasid_ctx *ctx = NULL;
	const char *uri = getenv("IOASID_TEST_URI");
	int r = ioasid_new(uri ? uri : "sim", &ctx);

	cr_assert(r == 0, "ioasid_new(%s): %d %s", uri ? uri : "sim", r,
		  ioasid_last_error(NULL));
	return ctx;
}

struct ioasid_ctx *test_ctx_ioas(uint32_t *ioas_id)
{
	struct ioasid_ctx *ctx = test_ctx();

	cr_assert(ioasid_ioas_alloc(ctx, 0, ioas_id) == 0);
	return ctx;
}

int test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

ssize_t send_fds_flags(int s, const void *buf, size_t len, const int *fds,
		       int nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control = { { 0 } };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	cr_assert(nfds >= 0 && nfds <= 8, "%d descriptors", nfds);
	if (nfds) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(s, &mh, flags);
}

ssize_t send_fds(int s, const void *buf, size_t len, const int *fds,
		 int nfds)
{
	return send_fds_flags(s, buf, len, fds, nfds, MSG_NOSIGNAL);
}

bool test_find_session(struct ioasid_ctx *ctx, const char *name,
		       struct ioasid_session_info *out)
{
	struct ioasid_session_info v[16];
	uint32_t nr = 16;

	cr_assert_eq(ioasid_session_list(ctx, v, &nr), 0, "%s",
		     ioasid_last_error(ctx));
	for (uint32_t i = 0; i < nr; i++) {
		if (strcmp(v[i].name, name) || v[i].uid != getuid())
			continue;
		if (out)
			*out = v[i];
		return true;
	}
	return false;
}

void test_dma_lands(struct ioasid_ctx *ctx, uint32_t dev_id, uint64_t iova,
		    int memfd, uint64_t offset, const char *text)
{
	size_t len = strlen(text) + 1;
	char buf[64] = "";
	uint64_t done = 0;

	cr_assert_lt(len, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(ctx, dev_id, iova, (void *)text, len,
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(done, len);
	cr_assert_eq(pread(memfd, buf, len, (off_t)offset), (ssize_t)len);
	cr_assert_str_eq(buf, text);
}

/* ---- test_nesting ----------------------------------------------------- */

#define TN_PWU		7ULL		/* present, writable, user */
#define TN_PAGE_A	0x10000ULL
#define TN_PAGE_B	0x11000ULL
#define TN_PAGE_C	0x12000ULL
#define TN_PT		0x3000ULL

static void tn_entry(int memfd, uint64_t off, uint64_t value)
{
	cr_assert_eq(pwrite(memfd, &value, 8, (off_t)off), 8);
}

static void tn_ok(struct ioasid_ctx *ctx, int r, const char *what)
{
	cr_assert_eq(r, 0, "%s: %d (%s)", what, r, ioasid_last_error(ctx));
}

void test_nesting_build(struct ioasid_ctx *ctx, int memfd,
			struct test_nesting *t)
{
	const uint64_t gpa = TEST_NESTING_GPA;
	struct ioasid_nested_vtd_s1 s1 = { .pgtbl_addr = gpa,
					   .addr_width = 48 };
	uint64_t iova = gpa;

	memset(t, 0, sizeof(*t));
	tn_entry(memfd, 0, (gpa + 0x1000) | TN_PWU);	/* PML4[0] */
	tn_entry(memfd, 0x1000, (gpa + 0x2000) | TN_PWU);	/* PDPT[0] */
	tn_entry(memfd, 0x2000 + 8, (gpa + TN_PT) | TN_PWU);	/* PD[1] */
	tn_entry(memfd, TN_PT, (gpa + TN_PAGE_A) | TN_PWU);
	tn_entry(memfd, TN_PT + 8, (gpa + TN_PAGE_B) | TN_PWU);
	tn_ok(ctx, ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &t->ioas),
	      "nest parent");
	tn_ok(ctx, ioasid_map_file(ctx, t->ioas, memfd, 0, 1 << 20,
				   IOASID_MAP_READ | IOASID_MAP_WRITE |
				   IOASID_MAP_FIXED_IOVA, &iova), "map");
	tn_ok(ctx, ioasid_device_bind(ctx, "0000:00:01.0", -1, &t->nic),
	      "bind the NIC");
	tn_ok(ctx, ioasid_device_bind(ctx, "0000:00:03.0", -1, &t->gpu),
	      "bind GPU0");
	tn_ok(ctx, ioasid_viommu_alloc(ctx, t->ioas, t->nic, IOASID_VIOMMU_SIM,
				       0, &t->viommu), "vIOMMU");
	tn_ok(ctx, ioasid_vdevice_alloc(ctx, t->viommu, t->nic, 0x100,
					&t->vnic), "the NIC's vDEVICE");
	tn_ok(ctx, ioasid_vdevice_alloc(ctx, t->viommu, t->gpu, 0x200,
					&t->vgpu), "GPU0's vDEVICE");
	tn_ok(ctx, ioasid_viommu_nested_alloc(ctx, t->viommu, t->nic,
					      IOASID_NESTED_VTD_S1, &s1,
					      sizeof(s1), 0, &t->vtable),
	      "a table on the vIOMMU");
	tn_ok(ctx, ioasid_device_attach_nested(ctx, t->nic, t->vtable, 0),
	      "the NIC on it");
	tn_ok(ctx, ioasid_device_pasid_attach_nested(ctx, t->gpu, 5,
						     t->vtable, 0),
	      "GPU0's PASID 5 on it");
	tn_ok(ctx, ioasid_nested_alloc(ctx, t->ioas, t->gpu,
				       IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
				       0, &t->table), "a plain table");
	tn_ok(ctx, ioasid_device_pasid_attach_nested(ctx, t->gpu, 6, t->table,
						     0), "GPU0's PASID 6 on it");
	tn_ok(ctx, ioasid_device_pasid_attach(ctx, t->gpu, 7, t->ioas, 0),
	      "GPU0's PASID 7 on the parent");
}

/* Device @dev (PASID @pasid, 0: none) writes @seed's page at @iova. */
static void tn_lands(struct ioasid_ctx *ctx, int memfd, uint32_t dev,
		     uint32_t pasid, uint64_t iova, uint64_t off, int seed,
		     const char *what)
{
	uint8_t buf[4096], got[4096];
	uint64_t done = 0;
	int r;

	memset(buf, seed, sizeof(buf));
	if (pasid)
		r = ioasid_device_dma_pasid(ctx, dev, pasid, iova, buf,
					    sizeof(buf), IOASID_DMA_WRITE,
					    &done);
	else
		r = ioasid_device_dma(ctx, dev, iova, buf, sizeof(buf),
				      IOASID_DMA_WRITE, &done);
	cr_assert_eq(r, 0, "%s: device %u PASID %u DMA to 0x%llx: %s", what,
		     dev, pasid, (unsigned long long)iova,
		     ioasid_last_error(ctx));
	cr_assert_eq(pread(memfd, got, sizeof(got), (off_t)off),
		     (ssize_t)sizeof(got));
	cr_assert_eq(memcmp(got, buf, sizeof(buf)), 0, "%s: device %u PASID %u "
		     "DMA to 0x%llx did not land at 0x%llx of the memfd", what,
		     dev, pasid, (unsigned long long)iova,
		     (unsigned long long)off);
}

void test_nesting_check(struct ioasid_ctx *ctx, int memfd,
			const struct test_nesting *t, const char *what)
{
	const uint64_t gva = TEST_NESTING_GVA, gpa = TEST_NESTING_GPA;
	struct ioasid_viommu_inval vi = { .virt_id = 0x100, .addr = gva,
					  .npages = 1 };
	struct ioasid_nested_inval ni = { .addr = gva, .npages = 1 };
	uint32_t nr = 1;
	int32_t err = 1;

	tn_lands(ctx, memfd, t->nic, 0, gva, TN_PAGE_A, 1, what);
	tn_lands(ctx, memfd, t->gpu, 5, gva + 4096, TN_PAGE_B, 2, what);
	tn_lands(ctx, memfd, t->gpu, 6, gva, TN_PAGE_A, 3, what);
	tn_lands(ctx, memfd, t->gpu, 7, gpa + TN_PAGE_C, TN_PAGE_C, 4, what);
	/* the guest moves the page without telling the IOMMU: stale */
	tn_entry(memfd, TN_PT, (gpa + TN_PAGE_C) | TN_PWU);
	tn_lands(ctx, memfd, t->nic, 0, gva, TN_PAGE_A, 5, what);
	tn_lands(ctx, memfd, t->gpu, 6, gva, TN_PAGE_A, 6, what);
	tn_ok(ctx, ioasid_viommu_invalidate(ctx, t->viommu, &vi, &nr, &err),
	      "invalidate through the vIOMMU");
	cr_assert_eq(err, 0);
	tn_lands(ctx, memfd, t->nic, 0, gva, TN_PAGE_C, 7, what);
	nr = 1;
	tn_ok(ctx, ioasid_nested_invalidate(ctx, t->table, &ni, &nr, &err),
	      "invalidate the plain table");
	cr_assert_eq(err, 0);
	tn_lands(ctx, memfd, t->gpu, 6, gva, TN_PAGE_C, 8, what);
	/* back as it was, every cache told */
	tn_entry(memfd, TN_PT, (gpa + TN_PAGE_A) | TN_PWU);
	nr = 1;
	tn_ok(ctx, ioasid_viommu_invalidate(ctx, t->viommu, &vi, &nr, &err),
	      "invalidate through the vIOMMU");
	nr = 1;
	tn_ok(ctx, ioasid_nested_invalidate(ctx, t->table, &ni, &nr, &err),
	      "invalidate the plain table");
	/* the GPU's PASID 5 cache on the vIOMMU: by its virtual ID */
	vi.virt_id = 0x200;
	nr = 1;
	tn_ok(ctx, ioasid_viommu_invalidate(ctx, t->viommu, &vi, &nr, &err),
	      "invalidate GPU0 through the vIOMMU");
}
