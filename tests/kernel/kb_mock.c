/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_mock - the iommufd backend on the kernel's selftest mock devices
 * (tests/vm guest: Linux 7.3 with CONFIG_IOMMUFD_TEST).  URI
 * "iommufd:mock" adds the mock IOMMU "iommufd_mock" and devices mock0,
 * mock1 to the inventory; binding one makes the kernel create it
 * (IOMMU_TEST_OP_MOCK_DOMAIN) in the session's iommufd, so bind, attach
 * (IOMMU_HWPT_ALLOC + replace), map, unmap and cuts run the kernel's
 * real iommufd code.  What landed is proven twice: the mock domain's
 * page table is checked against the memfd's pages
 * (IOMMU_TEST_OP_MD_CHECK_MAP on the HWPT), and the device's "DMA"
 * (ioasid_device_dma: IOMMU_TEST_OP_ACCESS_RW through the IOAS it is
 * attached to) moves bytes into and out of the memfd.
 *
 *  1. URIs: "iommufd:mock", "iommufd:mock=3"; bad arguments refused.
 *  2. Inventory: the unit and devices, their flags; a VFIO file refused.
 *  3. DMA and the HWPT: map, attach, CHECK_MAP, writes and reads; a
 *     read-only mapping refuses a write (EACCES, a PERMISSION record);
 *     unmap, a cut inside a mapping, replace to another IOAS, detach
 *     (BLOCKED); unbind removes the kernel's device.
 *  4. PASIDs: a mock device has 20-bit PASIDs behind a PASID-capable mock
 *     IOMMU; attach (IOMMU_TEST_OP_PASID_ATTACH), replace, detach, each
 *     checked with IOMMU_TEST_OP_PASID_CHECK_HWPT, and DMA tagged with
 *     the PASID landing in that PASID's IOAS only.  A real device whose
 *     IOMMU (QEMU's VT-d) gives it no PASIDs is refused with the reason.
 *  5. Dirty tracking: start on an IOAS with mock0 attached (the kernel's
 *     HWPT tracks: IOMMU_TEST_OP_DIRTY is refused before and after),
 *     bits set by the mock (IOMMU_TEST_OP_DIRTY) read exactly, without
 *     and with clear (IOMMU_HWPT_GET_DIRTY_BITMAP), and returned by
 *     ioasid_unmap_get_dirty; with edu (QEMU's VT-d: no tracking) in the
 *     same IOAS the start is refused and changes nothing, the fallback
 *     reports the mapped pages.
 *  6. Nested: a selftest nested HWPT over a nest-parent HWPT, mock1
 *     attached to it, its IOTLB slots invalidated one, several (a bad
 *     one stopping the request, per-entry errors) and all, each checked
 *     with IOMMU_TEST_OP_MD_CHECK_IOTLB; DMA through it.
 *  7. A PASID on a nested HWPT: attached (IOMMU_TEST_OP_PASID_ATTACH with
 *     the nested HWPT, allocated IOMMU_HWPT_ALLOC_PASID), checked with
 *     PASID_CHECK_HWPT against the HWPT the device itself then joins on
 *     the same table; DMA tagged with it in the parent's memfd; the table
 *     held; replace to an IOAS and back, detach.
 *  8. Through a real ioasidd (--backend iommufd:mock): two clients, each
 *     its own mock device and iommufd; neither reaches the other's.
 *
 * Other suites that need mock devices (dirty tracking, nested tables,
 * faults, PASID) open their context with kb_mock_ctx() and find a device
 * with kb_mock_device() (kbtest.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "../daemon_fixture.h"
#include "kbtest.h"

#define IOVA	0x1000000ull	/* the mock IOMMU's aperture starts here */
#define LEN	(16 * KB_PAGE)

static struct ioasid_ctx *ctx;

static void suite_uris(void)
{
	static const char *const bad[] = {
		"iommufd:mock=0", "iommufd:mock=17", "iommufd:mock=x",
		"iommufd:mocks", "iommufd:mock=2x",
	};
	struct ioasid_ctx *c = NULL;
	uint32_t nr = 8;
	struct ioasid_device_info d[8];
	int r, mocks = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = ioasid_new(bad[i], &c);
		tap_ok(r == -EINVAL && strstr(ioasid_last_error(NULL), "mock=N"),
		       "ioasid_new(\"%s\") refused with EINVAL and the form "
		       "(%d: %s)", bad[i], r, ioasid_last_error(NULL));
		if (r == 0)
			ioasid_unref(c);
	}
	r = ioasid_new("iommufd:mock=3", &c);
	if (!tap_ok(r == 0, "ioasid_new(\"iommufd:mock=3\") (%s)",
		    r ? ioasid_last_error(NULL) : "ok"))
		return;
	r = ioasid_device_list(c, d, &nr);
	for (uint32_t i = 0; r == 0 && i < nr; i++)
		mocks += !!(d[i].flags & IOASID_DEVICE_MOCK);
	tap_ok(r == 0 && mocks == 3, "mock=3 offers 3 mock devices (%d)",
	       mocks);
	ioasid_unref(c);
}

static void suite_inventory(void)
{
	struct ioasid_iommu_info units[8];
	struct ioasid_device_info d;
	uint32_t nr = 8, dev = 0;
	const struct ioasid_iommu_info *u = NULL;
	int r;

	r = ioasid_iommu_list(ctx, units, &nr);
	for (uint32_t i = 0; r == 0 && i < nr; i++)
		if (!strcmp(units[i].name, "iommufd_mock"))
			u = &units[i];
	tap_ok(u && !strcmp(u->kind, "iommufd-mock") && u->nr_devices == 2 &&
	       u->addr_width == 31 && (u->flags & IOASID_IOMMU_PASID) &&
	       (u->flags & IOASID_IOMMU_DIRTY_TRACKING) &&
	       (u->flags & IOASID_IOMMU_NESTING) &&
	       (u->flags & IOASID_IOMMU_VIOMMU),
	       "unit iommufd_mock, kind iommufd-mock, 2 devices, 31-bit "
	       "aperture; PASIDs, dirty tracking, nesting and vIOMMUs, as the "
	       "kernel's mock does them (probed at open) (%s)",
	       u ? u->kind : "missing");
	r = ioasid_device_get_info(ctx, "mock0", &d);
	tap_ok(r == 0 && (d.flags & IOASID_DEVICE_MOCK) &&
	       !(d.flags & IOASID_DEVICE_VFIO) && !strcmp(d.iommu,
							   "iommufd_mock"),
	       "mock0: flags MOCK, not VFIO, behind iommufd_mock (%s)",
	       kb_err(ctx));
	r = ioasid_device_bind(ctx, "mock0", 0, &dev);
	tap_ok(r == -EINVAL && strstr(ioasid_last_error(ctx), "no VFIO file"),
	       "bind with a VFIO file refused: EINVAL (%s)", kb_err(ctx));
	if (r == 0)
		ioasid_device_unbind(ctx, dev);
}

static int dma(uint32_t dev, uint64_t iova, void *buf, uint64_t len,
	       bool write)
{
	uint64_t done = 0;

	return ioasid_device_dma(ctx, dev, iova, buf, len,
				 write ? IOASID_DMA_WRITE : 0, &done);
}

/* One fault record of @dev with @reason at @iova (and none left). */
static bool fault_is(uint32_t dev, uint32_t reason, uint64_t iova)
{
	struct ioasid_fault f[4];
	uint32_t nr = 4;

	if (ioasid_fault_read(ctx, f, &nr) < 0 || nr != 1)
		return false;
	return f[0].dev_id == dev && f[0].reason == reason &&
	       f[0].iova == iova;
}

static void dma_lands(uint32_t dev, int m, uint64_t iova, uint64_t off,
		      uint8_t seed, const char *what)
{
	uint8_t out[1024], in[1024];

	kb_pattern(out, sizeof(out), seed);
	memset(in, 0, sizeof(in));
	tap_ok(dma(dev, iova, out, sizeof(out), true) == 0 &&
	       kb_file_equals(m, off, out, sizeof(out)) &&
	       dma(dev, iova, in, sizeof(in), false) == 0 &&
	       !memcmp(in, out, sizeof(in)), "%s: a write at 0x%llx lands at "
	       "offset 0x%llx of the memfd, a read brings it back (%s)", what,
	       (unsigned long long)iova, (unsigned long long)off, kb_err(ctx));
}

static void dma_blocked(uint32_t dev, uint64_t iova, uint32_t reason,
			const char *what)
{
	uint8_t b[64] = { 0 };
	int r = dma(dev, iova, b, sizeof(b), true);

	tap_ok(r == -EFAULT && fault_is(dev, reason, iova), "%s: a write at "
	       "0x%llx faults: EFAULT, one record of reason %u (%d, %s)", what,
	       (unsigned long long)iova, reason, r, kb_err(ctx));
}

static void suite_dma(void)
{
	uint32_t dev = 0, ioas = 0, ioas2 = 0;
	uint64_t iova = IOVA, iova2 = IOVA, ro = IOVA + LEN;
	int m = kb_memfd(LEN, 0), m2 = kb_memfd(LEN, 0);
	uint8_t b[64] = { 0 };
	void *p = MAP_FAILED;
	int r;

	if (!tap_ok(ioasid_device_bind(ctx, "mock0", -1, &dev) == 0 &&
		    iommufd_test_mock_stdev_id(kb_be_device(ctx, dev)) &&
		    ioasid_ioas_alloc(ctx, 0, &ioas) == 0 &&
		    ioasid_map_file(ctx, ioas, m, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova) == 0 &&
		    ioasid_device_attach(ctx, dev, ioas, 0) == 0,
		    "mock0 bound (the kernel made it: a selftest object), a "
		    "memfd mapped at 0x%llx, attached (%s)",
		    (unsigned long long)IOVA, kb_err(ctx)))
		goto out;
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	tap_ok(p != MAP_FAILED &&
	       kb_mock_check_map(ctx, dev, IOVA, LEN, p) == 0,
	       "the mock domain's page table maps 0x%llx+0x%llx to the "
	       "memfd's pages (IOMMU_TEST_OP_MD_CHECK_MAP on the HWPT)",
	       (unsigned long long)IOVA, (unsigned long long)LEN);
	dma_lands(dev, m, IOVA + 0x1800, 0x1800, 1, "attached");
	r = dma(dev, IOVA - KB_PAGE, b, sizeof(b), false);
	tap_ok(r == -EFAULT && fault_is(dev, IOASID_FAULT_NOT_PRESENT,
					IOVA - KB_PAGE),
	       "a read below the mapping: EFAULT, a NOT_PRESENT record (%s)",
	       kb_err(ctx));

	/* a read-only mapping */
	tap_ok(ioasid_map_file(ctx, ioas, m, 0, KB_PAGE, IOASID_MAP_READ |
			       IOASID_MAP_FIXED_IOVA, &ro) == 0 &&
	       dma(dev, ro, b, sizeof(b), false) == 0 &&
	       dma(dev, ro, b, sizeof(b), true) == -EACCES &&
	       fault_is(dev, IOASID_FAULT_PERMISSION, ro),
	       "a read-only mapping: reads work, a write is EACCES with a "
	       "PERMISSION record (%s)", kb_err(ctx));

	/* a cut inside the mapping: the kept pages stay, the cut is gone */
	tap_ok(ioasid_unmap(ctx, ioas, IOVA + 4 * KB_PAGE, KB_PAGE, 0,
			    NULL) == 0, "unmap one page inside the mapping "
	       "(%s)", kb_err(ctx));
	dma_lands(dev, m, IOVA + 3 * KB_PAGE, 3 * KB_PAGE, 2, "after a cut");
	dma_lands(dev, m, IOVA + 5 * KB_PAGE, 5 * KB_PAGE, 3, "after a cut");
	dma_blocked(dev, IOVA + 4 * KB_PAGE, IOASID_FAULT_NOT_PRESENT,
		    "the cut page");
	tap_ok(kb_mock_check_map(ctx, dev, IOVA + 4 * KB_PAGE, KB_PAGE,
			 (uint8_t *)p + 4 * KB_PAGE) < 0 &&
	       kb_mock_check_map(ctx, dev, IOVA + 5 * KB_PAGE, KB_PAGE,
			 (uint8_t *)p + 5 * KB_PAGE) == 0,
	       "CHECK_MAP: the cut page is gone from the HWPT, the next one "
	       "is there");

	/* replace to another IOAS */
	tap_ok(ioasid_ioas_alloc(ctx, 0, &ioas2) == 0 &&
	       ioasid_map_file(ctx, ioas2, m2, 0, LEN, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova2) == 0 &&
	       ioasid_device_replace(ctx, dev, ioas2, 0) == 0,
	       "replace onto a second IOAS (%s)", kb_err(ctx));
	dma_lands(dev, m2, IOVA + 0x800, 0x800, 4, "replaced");
	tap_ok(kb_file_is(m, 0x800, 0, 1024), "the first IOAS's memfd is "
	       "untouched by it");

	/* detach: the device translates nothing */
	tap_ok(ioasid_device_detach(ctx, dev) == 0, "detach (%s)",
	       kb_err(ctx));
	dma_blocked(dev, IOVA, IOASID_FAULT_BLOCKED, "detached");
	tap_ok(ioasid_device_attach(ctx, dev, ioas, 0) == 0,
	       "attach again (%s)", kb_err(ctx));
	dma_lands(dev, m, IOVA + 0x2000, 0x2000, 5, "attached again");
	tap_ok(ioasid_unmap_all(ctx, ioas, NULL) == 0, "unmap all (%s)",
	       kb_err(ctx));
	dma_blocked(dev, IOVA, IOASID_FAULT_NOT_PRESENT, "unmapped");
out:
	if (p != MAP_FAILED)
		munmap(p, LEN);
	if (dev) {
		struct be_device *bd = kb_be_device(ctx, dev);
		int ifd = bd ? iommufd_test_device_iommufd(bd) : -1;
		uint32_t stdev = bd ? iommufd_test_mock_stdev_id(bd) : 0;
		struct ifd_destroy d = { .size = sizeof(d), .id = stdev };

		r = ioasid_device_unbind(ctx, dev);
		tap_ok(r == 0 && ifd >= 0 && ioctl(ifd, IFD_DESTROY, &d) < 0 &&
		       errno == ENOENT, "unbind; the kernel's mock device is "
		       "gone (IOMMU_DESTROY of it: ENOENT)");
	}
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	if (ioas2)
		ioasid_ioas_destroy(ctx, ioas2);
	close(m);
	close(m2);
}

/* PASID_CHECK_HWPT: @pasid of @dev is on @hwpt (0: attached nowhere). */
static int pasid_on(uint32_t dev, uint32_t pasid, uint32_t hwpt)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_PASID_CHECK_HWPT,
		.pasid = { .pasid = pasid, .pt_id = hwpt },
	};

	if (!bd)
		return -ENOENT;
	c.id = iommufd_test_mock_stdev_id(bd);
	if (ioctl(iommufd_test_device_iommufd(bd), IFD_TEST_CMD, &c) < 0)
		return -errno;
	return 0;
}

static int dma_pasid(uint32_t dev, uint32_t pasid, uint64_t iova, uint8_t v)
{
	uint8_t b[512];

	memset(b, v, sizeof(b));
	return ioasid_device_dma_pasid(ctx, dev, pasid, iova, b, sizeof(b),
				       IOASID_DMA_WRITE, NULL);
}

static void suite_pasid(void)
{
	struct ioasid_device_info info;
	uint32_t dev = 0, a = 0, b = 0, hwpt = 0;
	uint64_t iova = IOVA;
	int ma = kb_memfd(LEN, 0), mb = kb_memfd(LEN, 0), r;

	r = ioasid_device_get_info(ctx, "mock1", &info);
	tap_ok(r == 0 && info.pasid_bits == 20, "mock1: 20-bit PASIDs (%u)",
	       info.pasid_bits);
	if (!tap_ok(ioasid_device_bind(ctx, "mock1", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(ctx, 0, &a) == 0 &&
		    ioasid_ioas_alloc(ctx, 0, &b) == 0 &&
		    ioasid_map_file(ctx, a, ma, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova) == 0 &&
		    (iova = IOVA, ioasid_map_file(ctx, b, mb, 0, LEN,
						  IOASID_MAP_READ |
						  IOASID_MAP_WRITE |
						  IOASID_MAP_FIXED_IOVA,
						  &iova) == 0) &&
		    ioasid_device_attach(ctx, dev, a, 0) == 0,
		    "mock1 bound and attached to IOAS A, B mapped alike (%s)",
		    kb_err(ctx)))
		goto out;
	hwpt = iommufd_test_hwpt_id(kb_be_domain(ctx, dev));
	/* not 1024: the mock fails every second attach of that one on
	 * purpose (IOMMU_TEST_PASID_RESERVED) */
	r = ioasid_device_pasid_attach(ctx, dev, 0x300, a, 0);
	tap_ok(r == 0 && pasid_on(dev, 0x300, hwpt) == 0,
	       "PASID 0x300 attached to A: the kernel has it on the device's "
	       "HWPT %u (PASID_CHECK_HWPT) (%s)", hwpt, kb_err(ctx));
	tap_ok(dma_pasid(dev, 0x300, IOVA + 0x1000, 0x41) == 0 &&
	       kb_file_is(ma, 0x1000, 0x41, 512) && kb_file_is(mb, 0x1000, 0,
							      512),
	       "DMA tagged 0x300 lands in A's memfd (%s)", kb_err(ctx));
	r = ioasid_device_pasid_replace(ctx, dev, 0x300, b, 0);
	tap_ok(r == 0 && pasid_on(dev, 0x300, hwpt) == -EINVAL,
	       "replaced to B: no longer on A's HWPT (%s)", kb_err(ctx));
	tap_ok(dma_pasid(dev, 0x300, IOVA + 0x2000, 0x42) == 0 &&
	       kb_file_is(mb, 0x2000, 0x42, 512) && kb_file_is(ma, 0x2000, 0,
							      512),
	       "DMA tagged 0x300 lands in B's memfd now, the device's own in "
	       "A (%s)", kb_err(ctx));
	dma_lands(dev, ma, IOVA + 0x3000, 0x3000, 6, "the device itself");
	r = ioasid_device_pasid_detach(ctx, dev, 0x300);
	tap_ok(r == 0 && pasid_on(dev, 0x300, 0) == 0 &&
	       dma_pasid(dev, 0x300, IOVA, 1) == -EFAULT &&
	       fault_is(dev, IOASID_FAULT_BLOCKED, IOVA),
	       "detached: the kernel has it nowhere, tagged DMA is blocked "
	       "(%s)", kb_err(ctx));
	r = ioasid_device_pasid_attach(ctx, dev, 1u << 20, a, 0);
	tap_ok(r == -EINVAL, "PASID 2^20: EINVAL (%s)", kb_err(ctx));
	tap_ok(ioasid_device_pasid_attach(ctx, dev, 7, b, 0) == 0 &&
	       ioasid_device_unbind(ctx, dev) == 0 &&
	       ioasid_ioas_destroy(ctx, b) == 0,
	       "unbind with a PASID attached detaches it: its IOAS can go "
	       "(%s)", kb_err(ctx));
	dev = 0;
	b = 0;
out:
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (a)
		ioasid_ioas_destroy(ctx, a);
	if (b)
		ioasid_ioas_destroy(ctx, b);
	close(ma);
	close(mb);
}

/* ---- dirty tracking on the mock's HWPTs ---------------------------------- */

/* The kernel's iommufd and the HWPT of @dev's domain. */
static int dev_hwpt(uint32_t dev, int *ifd, uint32_t *hwpt)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct be_domain *bdom = kb_be_domain(ctx, dev);

	if (!bd || !bdom)
		return -ENOENT;
	*ifd = iommufd_test_device_iommufd(bd);
	*hwpt = iommufd_test_hwpt_id(bdom);
	return 0;
}

/* kb_mock_dirty() at IOVA (bit n: IOVA + n pages). */
static int mock_dirty(uint32_t dev, uint64_t bits)
{
	return kb_mock_dirty(ctx, dev, IOVA, bits);
}

static uint64_t bits_of(const uint64_t *bm)
{
	return bm[0];
}

#define BIT(n)	(1ull << (n))

static void suite_dirty(void)
{
	struct ifd_hw_info hi = { .size = sizeof(hi) };
	struct ioasid_domain_info di[2];
	struct ioasid_ioas_info ii;
	uint32_t dev = 0, ioas = 0, nr = 2;
	uint64_t iova = IOVA, bm[1] = { 0 }, unmapped = 0;
	int m = kb_memfd(64 * KB_PAGE, 0), r, ifd = -1;
	void *p = MAP_FAILED;
	uint32_t hwpt = 0;

	if (!tap_ok(ioasid_device_bind(ctx, "mock0", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(ctx, IOASID_IOAS_PAGE_GRANULAR,
				      &ioas) == 0 &&
		    ioasid_map_file(ctx, ioas, m, 0, 64 * KB_PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova) == 0 &&
		    ioasid_device_attach(ctx, dev, ioas, 0) == 0 &&
		    dev_hwpt(dev, &ifd, &hwpt) == 0,
		    "dirty: mock0 attached to a page-granular IOAS with 64 "
		    "pages mapped at 0x%llx (%s)", (unsigned long long)IOVA,
		    kb_err(ctx)))
		goto out;
	hi.dev_id = iommufd_test_dev_id(kb_be_device(ctx, dev));
	r = ioctl(ifd, IFD_GET_HW_INFO, &hi) < 0 ? -errno : 0;
	tap_ok(r == 0 && (hi.out_capabilities & IFD_HW_CAP_DIRTY_TRACKING),
	       "the kernel says the mock IOMMU tracks dirty pages "
	       "(IOMMU_GET_HW_INFO: IOMMU_HW_CAP_DIRTY_TRACKING) (%d)", r);
	r = ioasid_domain_list(ctx, ioas, di, &nr);
	tap_ok(r == 0 && nr == 1 &&
	       (di[0].flags & IOASID_DOMAIN_DIRTY_TRACKING) &&
	       !(di[0].flags & IOASID_DOMAIN_DIRTY_ON),
	       "its domain can track (allocated with "
	       "IOMMU_HWPT_ALLOC_DIRTY_TRACKING), off until started (%s)",
	       kb_err(ctx));
	r = mock_dirty(dev, BIT(0));
	tap_ok(r == -EINVAL, "before ioasid_dirty_start the kernel's HWPT is "
	       "not tracking: IOMMU_TEST_OP_DIRTY refused, EINVAL (%d)", r);
	r = ioasid_dirty_start(ctx, ioas, 0);
	nr = 2;
	tap_ok(r == 0 && ioasid_domain_list(ctx, ioas, di, &nr) == 0 &&
	       (di[0].flags & IOASID_DOMAIN_DIRTY_ON) &&
	       ioasid_ioas_get_info(ctx, ioas, &ii) == 0 &&
	       ii.dirty_flags == IOASID_IOAS_DIRTY_ON,
	       "ioasid_dirty_start: the domain tracks, the IOAS says DIRTY_ON "
	       "only (%s)", kb_err(ctx));
	r = ioasid_dirty_read(ctx, ioas, IOVA, 64 * KB_PAGE, bm, 0);
	tap_ok(r == 0 && bits_of(bm) == 0, "started clean: nothing dirty "
	       "(%s, 0x%llx)", kb_err(ctx), (unsigned long long)bits_of(bm));
	r = mock_dirty(dev, BIT(1) | BIT(3) | BIT(8) | BIT(63));
	tap_ok(r == 4, "the mock IOMMU marks pages 1, 3, 8 and 63 dirty in "
	       "the HWPT (IOMMU_TEST_OP_DIRTY: %d set)", r);
	bm[0] = ~0ull;
	r = ioasid_dirty_read(ctx, ioas, IOVA, 64 * KB_PAGE, bm,
			      IOASID_DIRTY_NO_CLEAR);
	tap_ok(r == 0 && bits_of(bm) == (BIT(1) | BIT(3) | BIT(8) | BIT(63)),
	       "read without clear (IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR): "
	       "exactly those bits (0x%llx, %s)",
	       (unsigned long long)bits_of(bm), kb_err(ctx));
	r = ioasid_dirty_read(ctx, ioas, IOVA, 64 * KB_PAGE, bm, 0);
	tap_ok(r == 0 && bits_of(bm) == (BIT(1) | BIT(3) | BIT(8) | BIT(63)),
	       "they are still there: read and clear returns them (0x%llx)",
	       (unsigned long long)bits_of(bm));
	r = ioasid_dirty_read(ctx, ioas, IOVA, 64 * KB_PAGE, bm, 0);
	tap_ok(r == 0 && bits_of(bm) == 0, "cleared in the kernel: the next "
	       "read is empty (0x%llx)", (unsigned long long)bits_of(bm));
	r = mock_dirty(dev, BIT(8) | BIT(9));
	r = r == 2 ? ioasid_dirty_read(ctx, ioas, IOVA + 8 * KB_PAGE,
				       KB_PAGE, bm, 0) : r;
	tap_ok(r == 0 && bits_of(bm) == BIT(0), "a read of page 8 alone: bit "
	       "0 of the caller's bitmap (0x%llx, %s)",
	       (unsigned long long)bits_of(bm), kb_err(ctx));
	r = ioasid_dirty_read(ctx, ioas, IOVA, 64 * KB_PAGE, bm, 0);
	tap_ok(r == 0 && bits_of(bm) == BIT(9), "page 9 was left dirty by "
	       "it (0x%llx)", (unsigned long long)bits_of(bm));

	/* unmap returning the bits of what it removes */
	r = mock_dirty(dev, BIT(2) | BIT(5) | BIT(6) | BIT(20));
	bm[0] = ~0ull;
	r = r == 4 ? ioasid_unmap_get_dirty(ctx, ioas, IOVA + 4 * KB_PAGE,
					    4 * KB_PAGE, 0, bm, &unmapped) : r;
	tap_ok(r == 0 && unmapped == 4 * KB_PAGE &&
	       bits_of(bm) == (BIT(1) | BIT(2)),
	       "ioasid_unmap_get_dirty of pages 4-7: 4 pages gone, the bits "
	       "of 5 and 6 (0x%llx, %s)", (unsigned long long)bits_of(bm),
	       kb_err(ctx));
	p = mmap(NULL, 64 * KB_PAGE, PROT_READ, MAP_SHARED, m, 0);
	tap_ok(p != MAP_FAILED &&
	       kb_mock_check_map(ctx, dev, IOVA + 4 * KB_PAGE, KB_PAGE,
			 (uint8_t *)p + 4 * KB_PAGE) < 0 &&
	       kb_mock_check_map(ctx, dev, IOVA + 8 * KB_PAGE, KB_PAGE,
			 (uint8_t *)p + 8 * KB_PAGE) == 0,
	       "the unmapped pages are gone from the HWPT, the next one is "
	       "there (CHECK_MAP)");
	r = ioasid_dirty_read(ctx, ioas, IOVA, 64 * KB_PAGE, bm, 0);
	tap_ok(r == 0 && bits_of(bm) == (BIT(2) | BIT(20)),
	       "the dirty pages outside it stay dirty: 2 and 20 (0x%llx)",
	       (unsigned long long)bits_of(bm));

	r = ioasid_dirty_stop(ctx, ioas);
	tap_ok(r == 0 && mock_dirty(dev, BIT(0)) == -EINVAL,
	       "ioasid_dirty_stop: the kernel's HWPT stops tracking "
	       "(IOMMU_TEST_OP_DIRTY: EINVAL) (%s)", kb_err(ctx));
	r = ioasid_dirty_read(ctx, ioas, IOVA, 64 * KB_PAGE, bm, 0);
	tap_ok(r == -EINVAL, "a read while stopped: EINVAL (%s)", kb_err(ctx));
out:
	if (p != MAP_FAILED)
		munmap(p, 64 * KB_PAGE);
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	close(m);
}

/*
 * ---- dirty granularity: a mark reads dirty over its whole IOPTE ----------
 *
 * An IOAS that is not page-granular lets iommufd map pages of a file that
 * happen to be physically contiguous with one larger IOPTE (the mock's
 * AMDv1 format has every power-of-two size), and the kernel reports dirty
 * per IOPTE.  The pages' PFNs (/proc/self/pagemap, root) bound what one
 * mark may read dirty.
 */
#define GRANULE_PAGES	16u
#define PAGEMAP_PFN	((1ull << 55) - 1)
#define SHMEM_THP	"/sys/kernel/mm/transparent_hugepage/shmem_enabled"

/* The PFN of each of the first @n pages of @fd; 0, or -errno. */
static int file_pfns(int fd, unsigned int n, uint64_t *pfn)
{
	volatile const uint8_t *p;
	int pm, r = 0;

	p = mmap(NULL, n * KB_PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		r = -errno;
	for (unsigned int i = 0; r == 0 && i < n; i++) {
		off_t at = (off_t)(((uintptr_t)p / KB_PAGE + i) * 8);
		uint64_t e = 0;

		(void)p[i * KB_PAGE];	/* mapped in this process */
		if (pread(pm, &e, sizeof(e), at) != (ssize_t)sizeof(e))
			r = -EIO;
		else if (!(e >> 63) || !(e & PAGEMAP_PFN))
			r = -EPERM;	/* not present, or PFNs hidden */
		else
			pfn[i] = e & PAGEMAP_PFN;
	}
	if (pm >= 0)
		close(pm);
	munmap((void *)p, n * KB_PAGE);
	return r;
}

/*
 * The most a mark on page @i may read dirty: the largest naturally
 * aligned block around it whose pages run on from an equally aligned PFN
 * (no IOPTE over page @i can reach past it).
 */
static uint64_t iopte_bound(const uint64_t *pfn, unsigned int n,
			    unsigned int i)
{
	uint64_t bound = BIT(i);

	for (unsigned int sz = 2; sz <= n && sz < 64; sz *= 2) {
		unsigned int s = i & ~(sz - 1);
		bool run = pfn[s] % sz == 0;

		for (unsigned int j = 1; run && j < sz; j++)
			run = pfn[s + j] == pfn[s] + j;
		if (!run)
			break;
		bound = (BIT(sz) - 1) << s;
	}
	return bound;
}

/*
 * @m mapped at IOVA in a new IOAS (not page-granular), mock0 attached and
 * tracking: the PFNs of its pages once pinned, then the pages of @marked
 * marked dirty in the HWPT and read back into @bm.  Torn down after.
 */
static int granule_read(int m, uint64_t marked, uint64_t *pfn, uint64_t *bm)
{
	uint32_t dev = 0, ioas = 0;
	uint64_t iova = IOVA;
	int r;

	r = ioasid_device_bind(ctx, "mock0", -1, &dev);
	r = r ? r : ioasid_ioas_alloc(ctx, 0, &ioas);
	r = r ? r : ioasid_map_file(ctx, ioas, m, 0, GRANULE_PAGES * KB_PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova);
	r = r ? r : ioasid_device_attach(ctx, dev, ioas, 0);
	r = r ? r : ioasid_dirty_start(ctx, ioas, 0);
	r = r ? r : file_pfns(m, GRANULE_PAGES, pfn);
	r = r ? r : (mock_dirty(dev, marked) == __builtin_popcountll(marked) ?
		     0 : -EIO);
	r = r ? r : ioasid_dirty_read(ctx, ioas, IOVA, GRANULE_PAGES * KB_PAGE,
				      bm, 0);
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	return r;
}

/* Order-0 pages of a plain memfd: whatever contiguity chance gave. */
static void granule_chance(void)
{
	const uint64_t marked = BIT(1) | BIT(3) | BIT(8) | BIT(15);
	uint64_t pfn[GRANULE_PAGES], bound = 0, bm[1] = { 0 };
	int m = kb_memfd(GRANULE_PAGES * KB_PAGE, 0), r;

	r = m < 0 ? -EIO : granule_read(m, marked, pfn, bm);
	for (unsigned int i = 0; r == 0 && i < GRANULE_PAGES; i++)
		if (marked & BIT(i))
			bound |= iopte_bound(pfn, GRANULE_PAGES, i);
	tap_ok(r == 0 && (bm[0] & marked) == marked && !(bm[0] & ~bound),
	       "dirty granularity, a plain memfd in an IOAS that is not "
	       "page-granular: pages 1, 3, 8, 15 marked read 0x%llx, none "
	       "lost and none outside their pages' physically contiguous "
	       "runs (at most 0x%llx) (%s)", (unsigned long long)bm[0],
	       (unsigned long long)bound, r ? strerror(-r) : "ok");
	if (m >= 0)
		close(m);
}

/* The word in brackets of a sysfs choice ("always [never] ..."). */
static int thp_get(char *word, size_t len)
{
	char buf[128], *a, *b;
	FILE *f = fopen(SHMEM_THP, "re");
	bool ok = f && fgets(buf, sizeof(buf), f);

	if (f)
		fclose(f);
	a = ok ? strchr(buf, '[') : NULL;
	b = a ? strchr(a, ']') : NULL;
	if (!b || (size_t)(b - a) > len)
		return -ENOENT;
	snprintf(word, len, "%.*s", (int)(b - a - 1), a + 1);
	return 0;
}

static int thp_set(const char *word)
{
	FILE *f = fopen(SHMEM_THP, "we");
	int r = f && fputs(word, f) >= 0 ? 0 : -EIO;

	if (f && fclose(f))
		r = -EIO;
	return r;
}

/* A memfd made in one huge folio: one mark reads the whole 64 KiB IOPTE. */
static void granule_forced(void)
{
	uint64_t pfn[GRANULE_PAGES], bm[1] = { 0 };
	char was[32];
	int m, r;

	if (thp_get(was, sizeof(was)) < 0 || thp_set("always") < 0) {
		tap_skip("no writable " SHMEM_THP, "dirty granularity, one huge "
			 "folio");
		return;
	}
	m = kb_memfd(GRANULE_PAGES * KB_PAGE, 0);
	if (thp_set(was) < 0)
		tap_diag("%s left at \"always\" (was \"%s\")", SHMEM_THP, was);
	r = m < 0 ? -EIO : granule_read(m, BIT(1), pfn, bm);
	if (r == 0 && iopte_bound(pfn, GRANULE_PAGES, 0) !=
	    BIT(GRANULE_PAGES) - 1)
		tap_skip("the memfd's pages did not get one aligned physical "
			 "run", "dirty granularity, one huge folio");
	else
		tap_ok(r == 0 && bm[0] == BIT(GRANULE_PAGES) - 1,
		       "dirty granularity, a memfd in one huge folio "
		       "(shmem_enabled always): page 1 marked, its 64 KiB "
		       "IOPTE reads dirty whole (0x%llx, %s)",
		       (unsigned long long)bm[0], r ? strerror(-r) : "ok");
	if (m >= 0)
		close(m);
}

static void suite_dirty_granule(void)
{
	granule_chance();
	granule_forced();
}

/*
 * edu behind QEMU's VT-d (no dirty tracking) beside a mock device in one
 * IOAS: a start is refused with the reason and changes nothing (the mock
 * HWPT is left not tracking, as the kernel says); the fallback reports
 * edu's mapped pages as always dirty, ORed with the mock's real bits.
 */
static void suite_dirty_edu(void)
{
	struct ioasid_device_info info;
	struct ioasid_ioas_info ii;
	uint32_t dev = 0, edu = 0, ioas = 0;
	uint64_t iova = IOVA, bm[1];
	int m = kb_memfd(8 * KB_PAGE, 0), r;

	if (kb_find_edu(ctx, &info) < 0) {
		tap_skip("no edu device with a VFIO cdev", "dirty: edu refused");
		close(m);
		return;
	}
	if (!tap_ok(ioasid_device_bind(ctx, "mock0", -1, &dev) == 0 &&
		    ioasid_device_bind(ctx, info.name, -1, &edu) == 0 &&
		    ioasid_ioas_alloc(ctx, IOASID_IOAS_PAGE_GRANULAR,
				      &ioas) == 0 &&
		    ioasid_map_file(ctx, ioas, m, 0, 8 * KB_PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova) == 0 &&
		    ioasid_device_attach(ctx, dev, ioas, 0) == 0 &&
		    ioasid_device_attach(ctx, edu, ioas, 0) == 0,
		    "dirty: mock0 and %s attached to one IOAS, 8 pages mapped "
		    "(%s)", info.name, kb_err(ctx)))
		goto out;
	r = ioasid_dirty_start(ctx, ioas, 0);
	tap_ok(r == -EOPNOTSUPP &&
	       strstr(ioasid_last_error(ctx), "has no dirty tracking") &&
	       strstr(ioasid_last_error(ctx), "nothing was started"),
	       "start with %s's VT-d domain: EOPNOTSUPP, the reason names its "
	       "IOMMU (%s)", info.name, kb_err(ctx));
	r = mock_dirty(dev, BIT(0));
	ii.dirty_flags = ~0u;
	ioasid_ioas_get_info(ctx, ioas, &ii);
	tap_ok(r == -EINVAL && ii.dirty_flags == 0, "nothing was started: "
	       "the mock's HWPT is not tracking in the kernel (%d)", r);
	r = ioasid_dirty_start(ctx, ioas, IOASID_DIRTY_START_FALLBACK);
	if (r == 0)
		r = ioasid_ioas_get_info(ctx, ioas, &ii);
	tap_ok(r == 0 && ii.dirty_flags == (IOASID_IOAS_DIRTY_ON |
				  IOASID_IOAS_DIRTY_FALLBACK |
				  IOASID_IOAS_DIRTY_UNTRACKED),
	       "with IOASID_DIRTY_START_FALLBACK: on, edu's domain untracked "
	       "(dirty_flags 0x%x, %s)", ii.dirty_flags, kb_err(ctx));
	tap_ok(mock_dirty(dev, BIT(1)) == 1, "the mock's HWPT tracks in the "
	       "kernel (IOMMU_TEST_OP_DIRTY accepted)");
	r = ioasid_dirty_read(ctx, ioas, IOVA, 16 * KB_PAGE, bm, 0);
	tap_ok(r == 0 && bm[0] == 0xff, "every mapped page reads dirty "
	       "(0x%llx), not the unmapped ones after them (%s)",
	       (unsigned long long)bm[0], kb_err(ctx));
	r = ioasid_dirty_read(ctx, ioas, IOVA, 16 * KB_PAGE, bm, 0);
	tap_ok(r == 0 && bm[0] == 0xff, "and again in the next round "
	       "(0x%llx)", (unsigned long long)bm[0]);
	tap_ok(ioasid_dirty_stop(ctx, ioas) == 0 &&
	       mock_dirty(dev, BIT(0)) == -EINVAL, "stop: the mock's HWPT "
	       "stops tracking (%s)", kb_err(ctx));
out:
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (edu)
		ioasid_device_unbind(ctx, edu);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	close(m);
}

/*
 * edu attached first, then mock0 and a PASID of mock0, to one IOAS: the
 * core offers the mock device edu's VT-d HWPT first when both are in one
 * coherency class (snoop control off); the backend must say incompatible
 * without asking the kernel (Linux 7.3 oopses), and the mock device gets
 * a HWPT of its own IOMMU.
 */
static void suite_mixed_units(void)
{
	struct ioasid_domain_info d[4];
	struct ioasid_device_info info;
	uint32_t dev = 0, edu = 0, ioas = 0, nr = 4;
	uint64_t iova = IOVA;
	int m = kb_memfd(4 * KB_PAGE, 0), r;
	bool two_units;

	if (kb_find_edu(ctx, &info) < 0) {
		tap_skip("no edu device with a VFIO cdev", "mixed units: mock0 "
			 "after edu in one IOAS");
		close(m);
		return;
	}
	r = ioasid_device_bind(ctx, info.name, -1, &edu);
	r = r ? r : ioasid_device_bind(ctx, "mock0", -1, &dev);
	r = r ? r : ioasid_ioas_alloc(ctx, 0, &ioas);
	r = r ? r : ioasid_map_file(ctx, ioas, m, 0, 4 * KB_PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova);
	r = r ? r : ioasid_device_attach(ctx, edu, ioas, 0);
	if (!tap_ok(r == 0, "mixed units: %s attached to an IOAS first (%d, "
		    "%s)", info.name, r, kb_err(ctx)))
		goto out;
	r = ioasid_device_attach(ctx, dev, ioas, 0);
	r = r ? r : ioasid_device_pasid_attach(ctx, dev, 0x77, ioas, 0);
	r = r ? r : ioasid_domain_list(ctx, ioas, d, &nr);
	two_units = nr == 2 && strcmp(d[0].iommu, d[1].iommu) != 0 &&
		    (!strcmp(d[0].iommu, "iommufd_mock") ||
		     !strcmp(d[1].iommu, "iommufd_mock"));
	tap_ok(r == 0 && two_units, "then mock0 and its PASID 0x77: a domain "
	       "of the mock IOMMU beside %s's, not %s's HWPT (%d, %u domains, "
	       "%s)", info.name, info.name, r, nr, kb_err(ctx));
	tap_ok(dma_pasid(dev, 0x77, IOVA + KB_PAGE, 0x3c) == 0 &&
	       kb_file_is(m, KB_PAGE, 0x3c, 512),
	       "mock0's DMA tagged 0x77 lands in the IOAS's memfd (%s)",
	       kb_err(ctx));
out:
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (edu)
		ioasid_device_unbind(ctx, edu);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	close(m);
}

/* ---- nested HWPTs on the mock -------------------------------------------- */

/* IOMMU_TEST_OP_MD_CHECK_IOTLB: slot @slot of the nested HWPT holds @v. */
static int iotlb_is(uint32_t dev, uint32_t slot, uint32_t v)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_MD_CHECK_IOTLB,
		.check_iotlb = { .id = slot, .iotlb = v },
	};

	if (!bd || !(c.id = iommufd_test_nested_hwpt_id(bd)))
		return -ENOENT;
	if (ioctl(iommufd_test_device_iommufd(bd), IFD_TEST_CMD, &c) < 0)
		return -errno;
	return 0;
}

static bool iotlb_all(uint32_t dev, const uint32_t v[4])
{
	for (uint32_t i = 0; i < 4; i++)
		if (iotlb_is(dev, i, v[i]) < 0)
			return false;
	return true;
}

#define SLOT(n)	{ .addr = (n) * KB_PAGE, .npages = 1 }

static void suite_nested(void)
{
	const uint32_t V = 0xbadbeef;
	struct ioasid_nested_selftest st = { .iotlb = V };
	struct ioasid_nested_inval one[] = { SLOT(1) };
	struct ioasid_nested_inval bad[] = { SLOT(2), SLOT(9), SLOT(3) };
	struct ioasid_nested_inval all[] = { { .flags =
					       IOASID_NESTED_INVAL_ALL } };
	struct ioasid_nested_info ni;
	uint32_t dev = 0, parent = 0, plain = 0, nested = 0, nr;
	uint64_t iova = IOVA;
	int32_t errs[3];
	int m = kb_memfd(LEN, 0), r;

	if (!tap_ok(ioasid_device_bind(ctx, "mock1", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT,
				      &parent) == 0 &&
		    ioasid_ioas_alloc(ctx, 0, &plain) == 0 &&
		    ioasid_map_file(ctx, parent, m, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova) == 0,
		    "nested: mock1 bound, a nest-parent IOAS with a memfd "
		    "mapped (%s)", kb_err(ctx)))
		goto out;
	r = ioasid_nested_alloc(ctx, plain, dev, IOASID_NESTED_SELFTEST, &st,
				sizeof(st), 0, &nested);
	tap_ok(r == -EINVAL && strstr(ioasid_last_error(ctx), "nesting "
					 "parent"),
	       "a nested table over an IOAS that is no nest parent: EINVAL "
	       "(%s)", kb_err(ctx));
	r = ioasid_nested_alloc(ctx, parent, dev, IOASID_NESTED_SELFTEST, &st,
				sizeof(st), 0, &nested);
	if (!tap_ok(r == 0 && nested, "ioasid_nested_alloc: a selftest "
		    "nested HWPT (IOMMU_HWPT_DATA_SELFTEST, iotlb 0x%x) over "
		    "the parent's nest-parent HWPT (%s)", V, kb_err(ctx)))
		goto out;
	r = ioasid_device_attach_nested(ctx, dev, nested, 0);
	tap_ok(r == 0 && iommufd_test_nested_hwpt_id(kb_be_device(ctx, dev)),
	       "the mock device attached to it (IOMMU_TEST_OP_MOCK_DOMAIN_"
	       "REPLACE to the nested HWPT) (%s)", kb_err(ctx));
	tap_ok(iotlb_all(dev, (const uint32_t[]){ V, V, V, V }),
	       "the kernel's nested domain: all 4 IOTLB slots hold 0x%x "
	       "(IOMMU_TEST_OP_MD_CHECK_IOTLB)", V);
	tap_ok(iotlb_is(dev, 0, V + 1) == -EINVAL, "MD_CHECK_IOTLB tells a "
	       "wrong value (EINVAL): the checks can fail");
	dma_lands(dev, m, IOVA + 0x1000, 0x1000, 7, "nested");

	nr = 1;
	r = ioasid_nested_invalidate(ctx, nested, one, &nr, errs);
	tap_ok(r == 0 && nr == 1 && errs[0] == 0 &&
	       iotlb_all(dev, (const uint32_t[]){ V, 0, V, V }),
	       "invalidate slot 1 (IOMMU_HWPT_INVALIDATE_DATA_SELFTEST): the "
	       "kernel cleared slot 1 only (%s)", kb_err(ctx));
	nr = 3;
	r = ioasid_nested_invalidate(ctx, nested, bad, &nr, errs);
	tap_ok(r == -EINVAL && nr == 1 && errs[0] == 0 &&
	       errs[1] == -EINVAL && errs[2] == -ECANCELED &&
	       iotlb_all(dev, (const uint32_t[]){ V, 0, 0, V }),
	       "slots 2, 9 (no such slot), 3: the kernel did 2 and stopped "
	       "at 9: done 1, errors 0 / EINVAL / ECANCELED, slot 3 kept "
	       "(%d, done %u, %s)", r, nr, kb_err(ctx));
	nr = 1;
	r = ioasid_nested_invalidate(ctx, nested, all, &nr, errs);
	tap_ok(r == 0 && nr == 1 &&
	       iotlb_all(dev, (const uint32_t[]){ 0, 0, 0, 0 }),
	       "invalidate all: every slot cleared (%s)", kb_err(ctx));
	nr = 1;
	r = ioasid_nested_list(ctx, parent, &ni, &nr);
	tap_ok(r == 0 && nr == 1 && ni.nested_id == nested &&
	       ni.type == IOASID_NESTED_SELFTEST && ni.nr_devices == 1 &&
	       ni.nr_invalidations == 3,
	       "ioasid_nested_list: the table, selftest type, 1 device, 3 "
	       "entries processed (%llu, %s)",
	       (unsigned long long)ni.nr_invalidations, kb_err(ctx));
	r = ioasid_nested_destroy(ctx, nested);
	tap_ok(r == -EBUSY, "destroy while the device is on it: EBUSY (%s)",
	       kb_err(ctx));
	r = ioasid_device_replace(ctx, dev, parent, 0);
	tap_ok(r == 0 && !iommufd_test_nested_hwpt_id(kb_be_device(ctx, dev)),
	       "replace onto the parent IOAS itself (%s)", kb_err(ctx));
	dma_lands(dev, m, IOVA + 0x2000, 0x2000, 8, "on the parent");
	r = ioasid_nested_destroy(ctx, nested);
	tap_ok(r == 0, "then the nested table goes (%s)", kb_err(ctx));
	nested = 0;
out:
	if (nested) {
		ioasid_device_detach(ctx, dev);
		ioasid_nested_destroy(ctx, nested);
	}
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (parent)
		ioasid_ioas_destroy(ctx, parent);
	if (plain)
		ioasid_ioas_destroy(ctx, plain);
	close(m);
}

/* ---- a PASID on a nested HWPT ---------------------------------------------- */

static void suite_pasid_nested(void)
{
	struct ioasid_nested_selftest st = { .iotlb = 0x5a5a };
	const uint32_t PASID = 0x500;	/* not 1024 (suite_pasid) */
	struct ioasid_pasid_info p;
	uint32_t dev = 0, parent = 0, plain = 0, nested = 0, hwpt = 0, own = 0;
	uint32_t nr = 1;
	uint64_t iova = IOVA;
	int m = kb_memfd(LEN, 0), mp = kb_memfd(LEN, 0), r;

	if (!tap_ok(ioasid_device_bind(ctx, "mock1", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT,
				      &parent) == 0 &&
		    ioasid_ioas_alloc(ctx, 0, &plain) == 0 &&
		    ioasid_map_file(ctx, parent, m, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova) == 0 &&
		    (iova = IOVA, ioasid_map_file(ctx, plain, mp, 0, LEN,
						  IOASID_MAP_READ |
						  IOASID_MAP_WRITE |
						  IOASID_MAP_FIXED_IOVA,
						  &iova) == 0) &&
		    ioasid_device_attach(ctx, dev, plain, 0) == 0 &&
		    ioasid_nested_alloc(ctx, parent, dev,
					IOASID_NESTED_SELFTEST, &st,
					sizeof(st), 0, &nested) == 0,
		    "PASID on nested: mock1 on a plain IOAS, a selftest nested "
		    "table over a nest parent, both with a memfd (%s)",
		    kb_err(ctx)))
		goto out;
	own = iommufd_test_hwpt_id(kb_be_domain(ctx, dev));
	r = ioasid_device_pasid_attach_nested(ctx, dev, PASID, nested, 0);
	hwpt = iommufd_test_pasid_hwpt_id(kb_be_device(ctx, dev), PASID);
	tap_ok(r == 0 && hwpt && hwpt != own && pasid_on(dev, PASID, hwpt) == 0 &&
	       pasid_on(dev, PASID, own) == -EINVAL,
	       "PASID 0x%x attached to the nested table: the kernel has it on "
	       "HWPT %u, not on the device's own %u (PASID_CHECK_HWPT) (%s)",
	       PASID, hwpt, own, kb_err(ctx));
	tap_ok(dma_pasid(dev, PASID, IOVA + 0x1000, 0x51) == 0 &&
	       kb_file_is(m, 0x1000, 0x51, 512) &&
	       kb_file_is(mp, 0x1000, 0, 512),
	       "DMA tagged 0x%x lands in the parent's memfd (the mock's stage "
	       "1 passes addresses through), not the plain IOAS's (%s)", PASID,
	       kb_err(ctx));
	r = ioasid_device_pasid_list(ctx, dev, &p, &nr);
	tap_ok(r == 0 && nr == 1 && p.pasid == PASID && p.nested_id == nested &&
	       p.ioas_id == parent,
	       "ioasid_device_pasid_list: PASID 0x%x on nested table %u over "
	       "IOAS %u (%s)", p.pasid, p.nested_id, p.ioas_id, kb_err(ctx));
	r = ioasid_nested_destroy(ctx, nested);
	tap_ok(r == -EBUSY && strstr(ioasid_last_error(ctx), "PASID"),
	       "the table is held: destroy EBUSY (%s)", kb_err(ctx));
	/* the same table for the device itself: the HWPT it joins is that */
	r = ioasid_device_replace_nested(ctx, dev, nested, 0);
	tap_ok(r == 0 &&
	       iommufd_test_nested_hwpt_id(kb_be_device(ctx, dev)) == hwpt,
	       "the device itself moved to the table joins HWPT %u too: the "
	       "PASID is on the nested HWPT (PASID-capable, so the move with a "
	       "PASID attached is allowed) (%s)", hwpt, kb_err(ctx));
	r = ioasid_device_replace(ctx, dev, plain, 0);
	own = iommufd_test_hwpt_id(kb_be_domain(ctx, dev));
	tap_ok(r == 0 && pasid_on(dev, PASID, hwpt) == 0,
	       "the device back on the plain IOAS, the PASID stays (%s)",
	       kb_err(ctx));
	r = ioasid_device_pasid_replace(ctx, dev, PASID, plain, 0);
	tap_ok(r == 0 && pasid_on(dev, PASID, hwpt) == -EINVAL &&
	       pasid_on(dev, PASID, own) == 0 &&
	       dma_pasid(dev, PASID, IOVA + 0x2000, 0x52) == 0 &&
	       kb_file_is(mp, 0x2000, 0x52, 512) &&
	       kb_file_is(m, 0x2000, 0, 512),
	       "replaced to the plain IOAS: on its HWPT, DMA in its memfd (%s)",
	       kb_err(ctx));
	r = ioasid_device_pasid_replace_nested(ctx, dev, PASID, nested, 0);
	tap_ok(r == 0 && pasid_on(dev, PASID, hwpt) == 0 &&
	       dma_pasid(dev, PASID, IOVA + 0x3000, 0x53) == 0 &&
	       kb_file_is(m, 0x3000, 0x53, 512),
	       "replaced back to the nested table (IOMMU_TEST_OP_PASID_REPLACE) "
	       "(%s)", kb_err(ctx));
	r = ioasid_device_pasid_detach(ctx, dev, PASID);
	tap_ok(r == 0 && pasid_on(dev, PASID, 0) == 0 &&
	       dma_pasid(dev, PASID, IOVA, 1) == -EFAULT &&
	       fault_is(dev, IOASID_FAULT_BLOCKED, IOVA),
	       "detached: the kernel has it nowhere, tagged DMA is blocked "
	       "(%s)", kb_err(ctx));
	r = ioasid_nested_destroy(ctx, nested);
	tap_ok(r == 0, "then the nested table goes (%s)", kb_err(ctx));
	nested = 0;
out:
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (nested)
		ioasid_nested_destroy(ctx, nested);
	if (parent)
		ioasid_ioas_destroy(ctx, parent);
	if (plain)
		ioasid_ioas_destroy(ctx, plain);
	close(m);
	close(mp);
}

/* A real device of this inventory takes no DMA request. */
static void suite_real_device(void)
{
	struct ioasid_device_info edu;
	uint32_t dev, ioas = 0;
	uint8_t b[8];
	int r;

	if (kb_find_edu(ctx, &edu) < 0) {
		tap_skip("no edu device with a VFIO cdev", "a real device's "
			 "DMA is refused");
		return;
	}
	if (ioasid_device_bind(ctx, edu.name, -1, &dev) < 0) {
		tap_skip(ioasid_last_error(ctx), "a real device's DMA is "
			 "refused");
		return;
	}
	r = dma(dev, IOVA, b, sizeof(b), false);
	tap_ok(r == -EOPNOTSUPP && strstr(ioasid_last_error(ctx), "real "
					  "device"),
	       "%s (real, beside the mocks): DMA request refused, EOPNOTSUPP "
	       "(%s)", edu.name, kb_err(ctx));
	r = ioasid_ioas_alloc(ctx, 0, &ioas);
	if (r == 0)
		r = ioasid_device_pasid_attach(ctx, dev, 1, ioas, 0);
	tap_ok(r == -EOPNOTSUPP && strstr(ioasid_last_error(ctx), "PASID"),
	       "%s: PASID attach refused, EOPNOTSUPP (edu has no PASID "
	       "capability, QEMU's VT-d no PASIDs) (%s)", edu.name,
	       kb_err(ctx));
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	ioasid_device_unbind(ctx, dev);
}

/* ---- through ioasidd ----------------------------------------------------- */

struct client {
	struct ioasid_ctx *c;
	uint32_t dev, ioas;
	int mem;
};

static int client_setup(struct client *cl, const char *uri, const char *name,
			uint8_t fill)
{
	uint64_t iova = IOVA;

	cl->mem = kb_memfd(LEN, fill);
	if (ioasid_new(uri, &cl->c) < 0)
		return -1;
	return ioasid_device_bind(cl->c, name, -1, &cl->dev) == 0 &&
	       ioasid_ioas_alloc(cl->c, 0, &cl->ioas) == 0 &&
	       ioasid_map_file(cl->c, cl->ioas, cl->mem, 0, LEN,
			       IOASID_MAP_READ | IOASID_MAP_WRITE |
			       IOASID_MAP_FIXED_IOVA, &iova) == 0 &&
	       ioasid_device_attach(cl->c, cl->dev, cl->ioas, 0) == 0 ? 0 : -1;
}

/* Dirty tracking and a nested table of the daemon's mock, per session. */
static void remote_dirty_nested(struct client *a, struct client *b)
{
	struct ioasid_nested_selftest st = { .iotlb = 7 };
	struct ioasid_nested_inval all = { .flags = IOASID_NESTED_INVAL_ALL };
	struct ioasid_iommu_info u[4];
	uint32_t nr = 4, parent = 0, n = 0, one = 1;
	uint64_t bm[1] = { ~0ull }, iova = IOVA + LEN;
	int32_t err = 1;
	int r;

	r = ioasid_iommu_list(a->c, u, &nr);
	for (uint32_t i = 0; r == 0 && i < nr; i++)
		if (!strcmp(u[i].name, "iommufd_mock"))
			r = (u[i].flags & IOASID_IOMMU_DIRTY_TRACKING) &&
			    (u[i].flags & IOASID_IOMMU_NESTING) ? 1 : -1;
	tap_ok(r == 1, "through ioasidd the mock unit tracks dirty pages and "
	       "nests (%d)", r);
	r = ioasid_dirty_start(a->c, a->ioas, 0);
	tap_ok(r == 0 && ioasid_dirty_read(a->c, a->ioas, IOVA, LEN, bm,
					   0) == 0 && bm[0] == 0 &&
	       ioasid_dirty_read(b->c, a->ioas, IOVA, LEN, bm, 0) == -ENOENT &&
	       ioasid_dirty_stop(a->c, a->ioas) == 0,
	       "A starts dirty tracking on the daemon's HWPT, reads it clean "
	       "and stops; B cannot read A's IOAS (%s)", kb_err(a->c));
	r = ioasid_ioas_alloc(a->c, IOASID_IOAS_NEST_PARENT, &parent);
	if (r == 0)
		r = ioasid_map_file(a->c, parent, a->mem, 0, LEN,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_nested_alloc(a->c, parent, a->dev,
					IOASID_NESTED_SELFTEST, &st,
					sizeof(st), 0, &n);
	if (r == 0)
		r = ioasid_device_replace_nested(a->c, a->dev, n, 0);
	if (r == 0)
		r = ioasid_nested_invalidate(a->c, n, &all, &one, &err);
	tap_ok(r == 0 && one == 1 && err == 0, "A: a selftest nested HWPT in "
	       "the daemon over a nest parent, its device moved onto it, "
	       "invalidated (%s)", kb_err(a->c));
	one = 1;
	r = ioasid_nested_invalidate(b->c, n, &all, &one, &err);
	tap_ok(r == -ENOENT, "B cannot invalidate A's nested table: ENOENT "
	       "(%d)", r);
	tap_ok(ioasid_device_replace(a->c, a->dev, a->ioas, 0) == 0 &&
	       ioasid_nested_destroy(a->c, n) == 0 &&
	       ioasid_ioas_destroy(a->c, parent) == 0,
	       "A moves its device back and destroys the table and its "
	       "parent (%s)", kb_err(a->c));
}

static void suite_remote(void)
{
	struct daemon_opts o = { .backend = "iommufd:mock",
				 .log_level = "info" };
	struct daemon_fixture d;
	struct client a = { 0 }, b = { 0 };
	uint8_t out[512], in[512];
	uint64_t done = 0;
	uint32_t other;
	int r;

	if (!getenv("IOASIDD") && access("/usr/sbin/ioasidd", X_OK) == 0)
		setenv("IOASIDD", "/usr/sbin/ioasidd", 0);
	if (access(daemon_binary(), X_OK) < 0) {
		tap_skip("no ioasidd in this guest", "through ioasidd");
		return;
	}
	if (!tap_ok(daemon_start(&d, &o) == 0, "ioasidd --backend "
		    "iommufd:mock started"))
		return;
	tap_ok(client_setup(&a, d.uri, "mock0", 0xa) == 0, "client A: mock0 "
	       "bound by the daemon, mapped, attached (%s)", kb_err(a.c));
	tap_ok(client_setup(&b, d.uri, "mock1", 0xb) == 0, "client B: mock1, "
	       "its own iommufd in the daemon (%s)", kb_err(b.c));
	kb_pattern(out, sizeof(out), 9);
	r = ioasid_device_dma(a.c, a.dev, IOVA + 0x100, out, sizeof(out),
			      IOASID_DMA_WRITE, &done);
	tap_ok(r == 0 && done == sizeof(out) &&
	       kb_file_equals(a.mem, 0x100, out, sizeof(out)),
	       "A's mock device writes through the daemon's IOAS into A's "
	       "memfd (%s)", kb_err(a.c));
	r = ioasid_device_dma(b.c, b.dev, IOVA + 0x100, in, sizeof(in), 0,
			      &done);
	tap_ok(r == 0 && kb_file_is(b.mem, 0x100, 0xb, 1) && in[0] == 0xb,
	       "B's device reads B's memory at the same IOVA (%s)",
	       kb_err(b.c));
	r = ioasid_device_dma(b.c, a.dev, IOVA, in, sizeof(in), 0, &done);
	tap_ok(r == -ENOENT, "B cannot make A's device do DMA: ENOENT (%d)",
	       r);
	r = ioasid_device_attach(b.c, b.dev, a.ioas, 0);
	tap_ok(r == -ENOENT, "B cannot attach its device to A's IOAS: ENOENT "
	       "(%d)", r);
	r = ioasid_device_bind(b.c, "mock0", -1, &other);
	tap_ok(r == -EBUSY, "B cannot bind A's mock0: EBUSY (%d)", r);
	remote_dirty_nested(&a, &b);
	if (a.c)
		ioasid_unref(a.c);
	if (b.c)
		ioasid_unref(b.c);
	close(a.mem);
	close(b.mem);
	tap_ok(daemon_stop(&d) == 0, "ioasidd stops cleanly");
}

int main(void)
{
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	r = kb_mock_ctx(&ctx);
	if (r == -EOPNOTSUPP || r == -ENODEV) {
		printf("1..0 # SKIP %s\n", ioasid_last_error(NULL));
		return 77;
	}
	if (!tap_ok(r == 0, "ioasid_new(\"iommufd:mock\") (%s)",
		    r ? ioasid_last_error(NULL) : "ok"))
		return tap_done();
	kb_log_to_tap(ctx, LOG_NOTICE);
	suite_uris();
	suite_inventory();
	suite_dma();
	suite_pasid();
	suite_dirty();
	suite_dirty_granule();
	suite_dirty_edu();
	suite_mixed_units();
	suite_nested();
	suite_pasid_nested();
	suite_real_device();
	ioasid_unref(ctx);
	ctx = NULL;
	suite_remote();
	return tap_done();
}
