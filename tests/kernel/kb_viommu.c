/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_viommu - vIOMMUs and vDEVICEs on the iommufd backend, proven on the
 * kernel's selftest mock devices (tests/vm guest: CONFIG_IOMMUFD_TEST).
 *
 * ioasid_viommu_alloc() of IOASID_VIOMMU_SELFTEST is IOMMU_VIOMMU_ALLOC
 * (IOMMU_VIOMMU_TYPE_SELFTEST) over the nest-parent HWPT of the parent
 * IOAS; ioasid_vdevice_alloc() is IOMMU_VDEVICE_ALLOC with the virtual
 * ID; ioasid_viommu_nested_alloc() is IOMMU_HWPT_ALLOC with the vIOMMU as
 * pt_id; ioasid_viommu_invalidate() is IOMMU_HWPT_INVALIDATE on the
 * vIOMMU with IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST entries, which clear
 * cache entries of the mock device the virtual ID names.  Each mock
 * device's four cache entries are read with IOMMU_TEST_OP_DEV_CHECK_CACHE,
 * so every invalidation is checked to change exactly the entries it
 * named, of the device it named, and a refused one nothing more than
 * the entries done before it.
 *
 *  1. Allocation: refusals (no nest parent, the sim's type), then a
 *     vIOMMU that the kernel knows as one; vDEVICEs for two devices;
 *     duplicates refused by the library and by the kernel alike.
 *  2. Invalidation by virtual ID: one entry, all of a device, a wrong
 *     virtual ID, a bad entry, unknown flags; the kernel's own count of
 *     entries done (entry_num) through the backend.
 *  3. Nested HWPTs on the vIOMMU: MD_CHECK_IOTLB, attach (and the
 *     kernel's refusal of a device without a vDEVICE), DMA, their own
 *     invalidation, EBUSY while they hold the vIOMMU.
 *  4. Destroy in each order the API allows (vDEVICE or nested table
 *     first, unbind with a vDEVICE, the session's end with everything
 *     alive): each IOMMU_DESTROY succeeds (no error logged), and the
 *     kernel's objects are gone.
 *  5. A real device (edu behind QEMU's VT-d): refused with the reason,
 *     by the core (no nesting) and by the backend itself.
 *  6. Through a real ioasidd (--backend iommufd:mock): a client's vIOMMU
 *     in the daemon's iommufd, invalidation errors carried back, another
 *     client reaching none of it.
 */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "core/base.h"
#include "core/viommu.h"
#include "ctx.h"
#include "../daemon_fixture.h"
#include "kbtest.h"

#define IOVA	0x1000000ull	/* the mock IOMMU's aperture starts here */
#define LEN	(16 * KB_PAGE)
#define RW	(IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA)
#define D	IFD_MOCK_DEV_CACHE_DEFAULT
#define V0	0x10ull		/* the virtual IDs of mock0 and mock1 */
#define V1	0x20ull
#define ITLB	0xbadbeef	/* the nested tables' IOTLB value */

static struct ioasid_ctx *ctx;
static unsigned int destroy_errors;	/* IOMMU_DESTROY failures logged */

static void log_fn(void *data, int priority, const char *file, int line,
		   const char *fn, const char *format, va_list args)
{
	unsigned int *errors = data;
	char msg[512];

	vsnprintf(msg, sizeof(msg), format, args);
	printf("# lib: %s\n", msg);
	fflush(stdout);
	if (priority <= LOG_ERR && strstr(msg, "IOMMU_DESTROY"))
		(*errors)++;
}

/* ---- white box: the kernel's ids ----------------------------------------- */

static int kfd(struct ioasid_ctx *c, uint32_t dev)
{
	struct be_device *bd = kb_be_device(c, dev);

	return bd ? iommufd_test_device_iommufd(bd) : -1;
}

static uint32_t kdev(struct ioasid_ctx *c, uint32_t dev)
{
	struct be_device *bd = kb_be_device(c, dev);

	return bd ? iommufd_test_dev_id(bd) : 0;
}

static int kioctl_raw(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

static int kdestroy(int fd, uint32_t id)
{
	struct ifd_destroy d = { .size = sizeof(d), .id = id };

	return kioctl_raw(fd, IFD_DESTROY, &d);
}

/* IOMMU_TEST_OP_DEV_CHECK_CACHE: entry @id of mock device @dev holds @v. */
static int cache_is(uint32_t dev, uint32_t id, uint32_t v)
{
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_DEV_CHECK_CACHE,
		.id = kdev(ctx, dev),
		.check_dev_cache = { .id = id, .cache = v },
	};

	return kioctl_raw(kfd(ctx, dev), IFD_TEST_CMD, &c);
}

/* All four entries of @dev hold @v[0..3]. */
static bool caches(uint32_t dev, const uint32_t v[4])
{
	for (uint32_t i = 0; i < IFD_MOCK_DEV_CACHE_NUM; i++)
		if (cache_is(dev, i, v[i]) < 0)
			return false;
	return true;
}

#define CACHES(dev, a, b, c, d)	caches(dev, (const uint32_t[]){ a, b, c, d })

/* IOMMU_TEST_OP_MD_CHECK_IOTLB of the nested HWPT @dev is attached to. */
static int iotlb_is(uint32_t dev, uint32_t slot, uint32_t v)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_MD_CHECK_IOTLB,
		.check_iotlb = { .id = slot, .iotlb = v },
	};

	if (!bd || !(c.id = iommufd_test_nested_hwpt_id(bd)))
		return -ENOENT;
	return kioctl_raw(kfd(ctx, dev), IFD_TEST_CMD, &c);
}

/* IOMMU_HWPT_INVALIDATE of kernel vIOMMU @kv, straight to the kernel. */
static int raw_inval(int fd, uint32_t kv,
		     const struct ifd_viommu_invalidate_selftest *e,
		     uint32_t nr, uint32_t *done)
{
	struct ifd_hwpt_invalidate inv = {
		.size = sizeof(inv), .hwpt_id = kv,
		.data_uptr = (uint64_t)(uintptr_t)e,
		.data_type = IFD_VIOMMU_INVALIDATE_DATA_SELFTEST,
		.entry_len = sizeof(*e), .entry_num = nr,
	};
	int r = kioctl_raw(fd, IFD_HWPT_INVALIDATE, &inv);

	*done = inv.entry_num;
	return r;
}

static int inval(uint32_t v, const struct ioasid_viommu_inval *e,
		 uint32_t *nr, int32_t *errs)
{
	return ioasid_viommu_invalidate(ctx, v, e, nr, errs);
}

#define ENTRY(vid, id)	{ .virt_id = (vid), .cache_id = (id) }
#define ALL(vid)	{ .virt_id = (vid), .flags = IOASID_VIOMMU_INVAL_ALL }

/* ---- the suites ------------------------------------------------------------ */

struct env {
	uint32_t dev[3];	/* mock0, mock1, mock2 */
	uint32_t parent, plain;
	int memfd;
};

static bool env_up(struct env *e)
{
	uint64_t iova = IOVA;
	char name[8];

	*e = (struct env){ .memfd = kb_memfd(LEN, 0) };
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "mock%d", i);
		if (ioasid_device_bind(ctx, name, -1, &e->dev[i]) < 0)
			return false;
	}
	return ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT,
				 &e->parent) == 0 &&
	       ioasid_ioas_alloc(ctx, 0, &e->plain) == 0 &&
	       ioasid_map_file(ctx, e->parent, e->memfd, 0, LEN, RW,
			       &iova) == 0;
}

static void env_down(struct env *e)
{
	for (int i = 0; i < 3; i++)
		if (e->dev[i])
			ioasid_device_unbind(ctx, e->dev[i]);
	if (e->parent)
		ioasid_ioas_destroy(ctx, e->parent);
	if (e->plain)
		ioasid_ioas_destroy(ctx, e->plain);
	close(e->memfd);
}

/* 1 and 2: allocation, vDEVICEs, invalidation by virtual ID. */
static void suite_invalidate(struct env *e, uint32_t *out_v,
			     uint32_t vd[2])
{
	struct ioasid_viommu_inval one[] = { ENTRY(V0, 2) };
	struct ioasid_viommu_inval all1[] = { ALL(V1) };
	struct ioasid_viommu_inval wrong[] = {
		ENTRY(V0, 0), ENTRY(0x99, 1), ENTRY(V0, 3),
	};
	struct ioasid_viommu_inval bad[] = { ENTRY(V0, 0), ENTRY(V0, 9) };
	struct ioasid_viommu_inval flags[] = {
		{ .virt_id = V0, .cache_id = 3, .flags = 0x80 },
	};
	struct ioasid_viommu_inval be_bad[] = {
		ENTRY(V0, 1), ENTRY(V0, 7), ENTRY(V0, 3),
	};
	struct ioasid_vdevice_info vdi[4];
	struct ioasid_viommu_info vi;
	uint32_t v = 0, x = 0, nr, done = 0, kv;
	uint32_t *d = e->dev;
	int32_t errs[3];
	char why[256] = "";
	int r, fd = kfd(ctx, d[0]);

	r = ioasid_viommu_alloc(ctx, e->plain, d[0], IOASID_VIOMMU_SELFTEST,
				0, &x);
	tap_ok(r == -EINVAL, "a vIOMMU over an IOAS that is no nest parent: "
	       "EINVAL (%s)", kb_err(ctx));
	r = ioasid_viommu_alloc(ctx, e->parent, d[0], IOASID_VIOMMU_SIM, 0,
				&x);
	tap_ok(r == -EOPNOTSUPP && strstr(ioasid_last_error(ctx),
					  "IOASID_VIOMMU_SELFTEST"),
	       "the simulator's type on iommufd: EOPNOTSUPP, naming the type "
	       "it has (%s)", kb_err(ctx));
	r = ioasid_viommu_alloc(ctx, e->parent, d[0], IOASID_VIOMMU_SELFTEST,
				0, &v);
	kv = kb_k_viommu(ctx, v);
	if (!tap_ok(r == 0 && v && kv, "IOMMU_VIOMMU_ALLOC (selftest type) "
		    "over the parent's nest-parent HWPT: vIOMMU %u, kernel id "
		    "%u (%s)", v, kv, kb_err(ctx)))
		return;
	*out_v = v;
	tap_ok(raw_inval(fd, kv, NULL, 0, &done) == 0, "the kernel knows id "
	       "%u as a vIOMMU of the selftest invalidation type (an empty "
	       "IOMMU_HWPT_INVALIDATE)", kv);
	r = ioasid_vdevice_alloc(ctx, v, d[0], V0, &vd[0]);
	tap_ok(r == 0 && ioasid_vdevice_alloc(ctx, v, d[1], V1, &vd[1]) == 0,
	       "IOMMU_VDEVICE_ALLOC: mock0 as 0x%llx, mock1 as 0x%llx (%s)",
	       V0, V1, kb_err(ctx));
	/* duplicates: the core refuses; the kernel would too */
	r = ioasid_vdevice_alloc(ctx, v, d[0], 0x30, &x);
	tap_ok(r == -EEXIST, "a second vDEVICE for mock0: EEXIST (%s)",
	       kb_err(ctx));
	r = ioasid_vdevice_alloc(ctx, v, d[2], V0, &x);
	tap_ok(r == -EEXIST, "mock2 with mock0's virtual ID: EEXIST (%s)",
	       kb_err(ctx));
	r = ioasid_vdevice_alloc(ctx, v, d[2], 1ull << 32, &x);
	tap_ok(r == -EINVAL, "a virtual ID above 32 bits on a selftest "
	       "vIOMMU: EINVAL (%s)", kb_err(ctx));
	{
		struct ifd_vdevice_alloc a = {
			.size = sizeof(a), .viommu_id = kv,
			.dev_id = kdev(ctx, d[0]), .virt_id = 0x30,
		};
		struct ifd_vdevice_alloc b = {
			.size = sizeof(a), .viommu_id = kv,
			.dev_id = kdev(ctx, d[2]), .virt_id = V0,
		};
		int ra = kioctl_raw(fd, IFD_VDEVICE_ALLOC, &a);
		int rb = kioctl_raw(fd, IFD_VDEVICE_ALLOC, &b);

		tap_ok(ra == -EEXIST && rb == -EEXIST, "the kernel agrees: "
		       "both duplicates EEXIST (%d, %d)", ra, rb);
		if (ra == 0)
			kdestroy(fd, a.out_vdevice_id);
		if (rb == 0)
			kdestroy(fd, b.out_vdevice_id);
	}
	nr = 4;
	r = ioasid_vdevice_list(ctx, e->parent, vdi, &nr);
	tap_ok(r == 0 && nr == 2, "the refusals changed nothing: 2 vDEVICEs "
	       "(%u)", nr);

	tap_ok(CACHES(d[0], D, D, D, D) && CACHES(d[1], D, D, D, D) &&
	       CACHES(d[2], D, D, D, D), "every mock device's 4 cache "
	       "entries hold 0x%x (IOMMU_TEST_OP_DEV_CHECK_CACHE)", D);
	tap_ok(cache_is(d[0], 0, 0) == -EINVAL, "DEV_CHECK_CACHE tells a "
	       "wrong value (EINVAL): the checks can fail");
	nr = 1;
	r = inval(v, one, &nr, errs);
	tap_ok(r == 0 && nr == 1 && errs[0] == 0 &&
	       CACHES(d[0], D, D, 0, D) && CACHES(d[1], D, D, D, D) &&
	       CACHES(d[2], D, D, D, D),
	       "invalidate entry 2 of virtual ID 0x%llx: mock0's entry 2 "
	       "cleared, nothing else (%s)", V0, kb_err(ctx));
	nr = 1;
	r = inval(v, all1, &nr, errs);
	tap_ok(r == 0 && nr == 1 && CACHES(d[1], 0, 0, 0, 0) &&
	       CACHES(d[0], D, D, 0, D) && CACHES(d[2], D, D, D, D),
	       "invalidate all of 0x%llx: mock1's 4 entries cleared, mock0's "
	       "and mock2's kept (%s)", V1, kb_err(ctx));
	nr = 3;
	r = inval(v, wrong, &nr, errs);
	tap_ok(r == -EINVAL && nr == 1 && errs[0] == 0 &&
	       errs[1] == -EINVAL && errs[2] == -ECANCELED &&
	       CACHES(d[0], 0, D, 0, D),
	       "entries 0x%llx/0, 0x99/1 (no such virtual ID), 0x%llx/3: done "
	       "1, errors 0 / EINVAL / ECANCELED, entry 3 kept (%d, %u, %s)",
	       V0, V0, r, nr, kb_err(ctx));
	nr = 2;
	r = inval(v, bad, &nr, errs);
	tap_ok(r == -EINVAL && nr == 1 && errs[0] == 0 &&
	       errs[1] == -EINVAL && CACHES(d[0], 0, D, 0, D),
	       "entries 0 and 9 (no such entry): done 1, errors 0 / EINVAL, "
	       "entries 1 and 3 kept (%d, %u, %s)", r, nr, kb_err(ctx));
	nr = 1;
	r = inval(v, flags, &nr, errs);
	tap_ok(r == -EOPNOTSUPP && nr == 0 && errs[0] == -EOPNOTSUPP &&
	       CACHES(d[0], 0, D, 0, D), "unknown flags: EOPNOTSUPP, nothing "
	       "done (%s)", kb_err(ctx));
	/* the kernel's own count: the backend without the core's checks */
	r = backend_iommufd.viommu_invalidate(kb_core_viommu(ctx, v)->be,
					      be_bad, 3, &done, why,
					      sizeof(why));
	tap_ok(r == -EINVAL && done == 1 && CACHES(d[0], 0, 0, 0, D),
	       "the kernel refusing entry 1 (cache 7) of 3: the backend says "
	       "done 1 (entry_num) and EINVAL; entry 0 done (cache 1 "
	       "cleared), entry 2 not (cache 3 kept) (%d, done %u, %s)", r,
	       done, why);
	nr = 1;
	r = ioasid_viommu_list(ctx, e->parent, &vi, &nr);
	tap_ok(r == 0 && nr == 1 && vi.viommu_id == v &&
	       vi.type == IOASID_VIOMMU_SELFTEST && vi.nr_vdevices == 2 &&
	       !strcmp(vi.iommu, "iommufd_mock") && vi.nr_invalidations == 4,
	       "ioasid_viommu_list: selftest type on iommufd_mock, 2 "
	       "vDEVICEs, 4 entries done (%llu)",
	       (unsigned long long)vi.nr_invalidations);
}

/* 3: nested HWPTs on the vIOMMU; 4: its first destroy order. */
static void suite_nested(struct env *e, uint32_t v, uint32_t vd[2])
{
	struct ioasid_nested_selftest st = { .iotlb = ITLB };
	struct ioasid_nested_inval slot1 = { .addr = KB_PAGE, .npages = 1 };
	struct ioasid_viommu_inval all0[] = { ALL(V0) };
	struct ifd_viommu_invalidate_selftest raw0 = { .vdev_id = V0 };
	struct be_device *bd;
	uint32_t *d = e->dev, n = 0, nr, kv = kb_k_viommu(ctx, v), done, x;
	uint8_t out[512];
	int32_t err;
	int r, fd = kfd(ctx, d[0]);
	uint64_t did;

	r = ioasid_viommu_nested_alloc(ctx, v, d[0], IOASID_NESTED_SELFTEST,
				       &st, sizeof(st), 0, &n);
	if (!tap_ok(r == 0 && n, "IOMMU_HWPT_ALLOC on the vIOMMU: a selftest "
		    "nested HWPT (%s)", kb_err(ctx)))
		return;
	tap_ok(kdestroy(fd, kv) == -EBUSY, "the kernel's vIOMMU is held: a "
	       "raw IOMMU_DESTROY of it is EBUSY");
	r = ioasid_device_attach_nested(ctx, d[2], n, 0);
	tap_ok(r == -ENOENT, "mock2 (no vDEVICE) cannot attach to it: ENOENT "
	       "(%s)", kb_err(ctx));
	bd = kb_be_device(ctx, d[2]);
	r = ioasid_device_attach_nested(ctx, d[0], n, 0);
	tap_ok(r == 0 && iommufd_test_nested_hwpt_id(kb_be_device(ctx, d[0])) &&
	       iotlb_is(d[0], 0, ITLB) == 0 && iotlb_is(d[0], 3, ITLB) == 0,
	       "mock0 (vDEVICE 0x%llx) attached to it; its IOTLB slots hold "
	       "0x%x (MD_CHECK_IOTLB) (%s)", V0, ITLB, kb_err(ctx));
	{
		struct ifd_test_cmd c = {
			.size = sizeof(c),
			.op = IFD_TEST_OP_MOCK_DOMAIN_REPLACE,
			.id = iommufd_test_mock_stdev_id(bd),
			.mock_domain_replace.pt_id = iommufd_test_nested_hwpt_id(
				kb_be_device(ctx, d[0])),
		};

		r = kioctl_raw(fd, IFD_TEST_CMD, &c);
		tap_ok(r == -ENOENT, "the kernel agrees: a raw replace of "
		       "mock2 onto it is ENOENT (%d)", r);
	}
	kb_pattern(out, sizeof(out), 3);
	r = ioasid_device_dma(ctx, d[0], IOVA + KB_PAGE, out, sizeof(out),
			      IOASID_DMA_WRITE, &did);
	tap_ok(r == 0 && kb_file_equals(e->memfd, KB_PAGE, out, sizeof(out)),
	       "mock0's DMA through the nested HWPT lands in the parent's "
	       "memfd (%s)", kb_err(ctx));
	nr = 1;
	r = ioasid_nested_invalidate(ctx, n, &slot1, &nr, &err);
	tap_ok(r == 0 && iotlb_is(d[0], 1, 0) == 0 &&
	       iotlb_is(d[0], 0, ITLB) == 0, "the nested table's own "
	       "invalidation: IOTLB slot 1 cleared, slot 0 kept (%s)",
	       kb_err(ctx));
	nr = 1;
	r = ioasid_viommu_invalidate(ctx, v, all0, &nr, &err);
	tap_ok(r == 0 && iotlb_is(d[0], 0, ITLB) == 0, "a device-cache "
	       "invalidation through the vIOMMU leaves the nested IOTLB (%s)",
	       kb_err(ctx));
	tap_ok(ioasid_viommu_destroy(ctx, v) == -EBUSY &&
	       ioasid_ioas_destroy(ctx, e->parent) == -EBUSY,
	       "the vIOMMU (vDEVICEs, a nested table) and the parent IOAS "
	       "(a vIOMMU) cannot go: EBUSY");
	/* order 1: vDEVICEs first, with mock0 still attached */
	r = ioasid_vdevice_destroy(ctx, vd[0]);
	tap_ok(r == 0, "mock0's vDEVICE destroyed while mock0 stays "
	       "attached (%s)", kb_err(ctx));
	nr = 1;
	r = ioasid_viommu_invalidate(ctx, v, all0, &nr, &err);
	tap_ok(r == -EINVAL && raw_inval(fd, kv, &raw0, 1, &done) == -EINVAL,
	       "0x%llx names nothing now, in the library and in the kernel "
	       "(EINVAL) (%s)", V0, kb_err(ctx));
	r = ioasid_vdevice_alloc(ctx, v, d[2], V0, &x);
	tap_ok(r == 0 && ioasid_vdevice_destroy(ctx, x) == 0, "the virtual "
	       "ID is free again: mock2 gets 0x%llx and lets it go (%s)", V0,
	       kb_err(ctx));
	tap_ok(ioasid_vdevice_destroy(ctx, vd[1]) == 0 &&
	       ioasid_viommu_destroy(ctx, v) == -EBUSY,
	       "mock1's vDEVICE goes; the vIOMMU still has its nested table: "
	       "EBUSY (%s)", kb_err(ctx));
	tap_ok(ioasid_device_detach(ctx, d[0]) == 0 &&
	       ioasid_nested_destroy(ctx, n) == 0 &&
	       ioasid_viommu_destroy(ctx, v) == 0,
	       "mock0 detached, the nested table, then the vIOMMU go (%s)",
	       kb_err(ctx));
	tap_ok(kdestroy(fd, kv) == -ENOENT && destroy_errors == 0,
	       "the kernel's vIOMMU is gone (a raw IOMMU_DESTROY: ENOENT), "
	       "and every IOMMU_DESTROY succeeded (%u failed)",
	       destroy_errors);
}

/* 4: the other orders. */
static void suite_orders(struct env *e)
{
	struct ioasid_nested_selftest st = { .iotlb = ITLB };
	uint32_t *d = e->dev, v = 0, vd = 0, n = 0, kv;
	int fd = kfd(ctx, d[0]), r;

	/* order 2: the nested table before the vDEVICE */
	r = ioasid_viommu_alloc(ctx, e->parent, d[0], IOASID_VIOMMU_SELFTEST,
				0, &v);
	if (r == 0)
		r = ioasid_vdevice_alloc(ctx, v, d[0], V0, &vd);
	if (r == 0)
		r = ioasid_viommu_nested_alloc(ctx, v, d[0],
					       IOASID_NESTED_SELFTEST, &st,
					       sizeof(st), 0, &n);
	if (r == 0)
		r = ioasid_device_attach_nested(ctx, d[0], n, 0);
	kv = kb_k_viommu(ctx, v);
	if (!tap_ok(r == 0, "again: vIOMMU, vDEVICE, nested table, mock0 "
		    "attached (%s)", kb_err(ctx)))
		return;
	tap_ok(ioasid_device_replace(ctx, d[0], e->parent, 0) == 0 &&
	       ioasid_nested_destroy(ctx, n) == 0 &&
	       ioasid_viommu_destroy(ctx, v) == -EBUSY &&
	       ioasid_vdevice_destroy(ctx, vd) == 0 &&
	       ioasid_viommu_destroy(ctx, v) == 0 &&
	       kdestroy(fd, kv) == -ENOENT && destroy_errors == 0,
	       "mock0 replaced onto the parent, the nested table goes, the "
	       "vIOMMU only after the vDEVICE; all gone in the kernel (%u "
	       "IOMMU_DESTROY failed) (%s)", destroy_errors, kb_err(ctx));
	/* order 3: the device's unbind takes its vDEVICE */
	v = vd = 0;
	r = ioasid_viommu_alloc(ctx, e->parent, d[0], IOASID_VIOMMU_SELFTEST,
				0, &v);
	if (r == 0)
		r = ioasid_vdevice_alloc(ctx, v, d[1], V1, &vd);
	kv = kb_k_viommu(ctx, v);
	if (!tap_ok(r == 0, "a vIOMMU, mock1's vDEVICE (%s)", kb_err(ctx)))
		return;
	r = ioasid_device_unbind(ctx, d[1]);
	d[1] = 0;
	tap_ok(r == 0 && ioasid_vdevice_destroy(ctx, vd) == -ENOENT &&
	       ioasid_viommu_destroy(ctx, v) == 0 &&
	       kdestroy(fd, kv) == -ENOENT && destroy_errors == 0,
	       "mock1 unbound: its vDEVICE went first, the vIOMMU goes, all "
	       "gone in the kernel (%u IOMMU_DESTROY failed) (%s)",
	       destroy_errors, kb_err(ctx));
}

/* 4: a session that ends with everything alive. */
static void suite_session_end(void)
{
	struct ioasid_nested_selftest st = { .iotlb = ITLB };
	struct ioasid_ctx *c = NULL;
	unsigned int errors = 0;
	uint32_t dev = 0, parent = 0, v = 0, vd = 0, n = 0;
	int r = kb_mock_ctx(&c);

	if (!tap_ok(r == 0, "a second context (%d)", r))
		return;
	ioasid_set_log_fn(c, log_fn, &errors);
	ioasid_set_log_priority(c, LOG_NOTICE);
	r = ioasid_device_bind(c, "mock0", -1, &dev);
	if (r == 0)
		r = ioasid_ioas_alloc(c, IOASID_IOAS_NEST_PARENT, &parent);
	if (r == 0)
		r = ioasid_viommu_alloc(c, parent, dev, IOASID_VIOMMU_SELFTEST,
					0, &v);
	if (r == 0)
		r = ioasid_vdevice_alloc(c, v, dev, V0, &vd);
	if (r == 0)
		r = ioasid_viommu_nested_alloc(c, v, dev,
					       IOASID_NESTED_SELFTEST, &st,
					       sizeof(st), 0, &n);
	if (r == 0)
		r = ioasid_device_attach_nested(c, dev, n, 0);
	tap_ok(r == 0, "there: mock0 attached to a nested table on a vIOMMU, "
	       "with a vDEVICE (%s)", r ? ioasid_last_error(c) : "ok");
	ioasid_unref(c);
	tap_ok(errors == 0, "the context ends with all of it alive: every "
	       "IOMMU_DESTROY in an order the kernel takes (%u failed)",
	       errors);
}

/*
 * 5: a real device.  QEMU's VT-d has no nesting, so the core refuses
 * first; the backend's own refusal is asked directly, over a mock's
 * nest-parent domain.
 */
static void suite_real_device(void)
{
	struct ioasid_device_info edu;
	struct be_viommu *bv = NULL;
	struct be_domain *bdom;
	uint32_t dev = 0, parent = 0, v = 0, mock = 0;
	char why[256] = "";
	int r;

	if (kb_find_edu(ctx, &edu) < 0) {
		tap_skip("no edu device with a VFIO cdev", "a real device's "
			 "vIOMMU is refused");
		return;
	}
	if (ioasid_device_bind(ctx, edu.name, -1, &dev) < 0) {
		tap_skip(ioasid_last_error(ctx), "a real device's vIOMMU is "
			 "refused");
		return;
	}
	r = ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &parent);
	if (r == 0)
		r = ioasid_viommu_alloc(ctx, parent, dev,
					IOASID_VIOMMU_SELFTEST, 0, &v);
	tap_ok(r == -EOPNOTSUPP, "%s behind QEMU's VT-d: no vIOMMU, "
	       "EOPNOTSUPP with the reason (%s)", edu.name, kb_err(ctx));
	r = ioasid_device_bind(ctx, "mock0", -1, &mock);
	if (r == 0)
		r = ioasid_device_attach(ctx, mock, parent, 0);
	bdom = kb_be_domain(ctx, mock);
	if (r == 0 && bdom) {
		r = backend_iommufd.viommu_alloc(bdom, kb_be_device(ctx, dev),
						 IOASID_VIOMMU_SELFTEST, &bv,
						 why, sizeof(why));
		tap_ok(r == -EOPNOTSUPP && strstr(why, "selftest mock") &&
		       strstr(why, edu.name), "the backend itself refuses "
		       "a real device the selftest type: EOPNOTSUPP (%s)",
		       why);
		if (r == 0)
			backend_iommufd.viommu_free(bv);
	} else {
		tap_ok(0, "mock0 on the nest-parent IOAS (%s)", kb_err(ctx));
	}
	if (mock)
		ioasid_device_unbind(ctx, mock);
	if (parent)
		ioasid_ioas_destroy(ctx, parent);
	ioasid_device_unbind(ctx, dev);
}

/* ---- through ioasidd ----------------------------------------------------- */

static void remote_client(struct daemon_fixture *d, struct ioasid_ctx **c,
			  uint32_t *dev, const char *name)
{
	if (ioasid_new(d->uri, c) < 0 ||
	    ioasid_device_bind(*c, name, -1, dev) < 0)
		*dev = 0;
}

static void suite_remote(void)
{
	struct daemon_opts o = { .backend = "iommufd:mock",
				 .log_level = "info" };
	struct ioasid_nested_selftest st = { .iotlb = ITLB };
	struct ioasid_viommu_inval e[] = { ENTRY(V0, 1), ENTRY(0x99, 0) };
	struct ioasid_ctx *a = NULL, *b = NULL;
	struct daemon_fixture d;
	uint32_t da = 0, db = 0, parent = 0, v = 0, vd = 0, n = 0, nr, x;
	int32_t errs[2];
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
	remote_client(&d, &a, &da, "mock0");
	remote_client(&d, &b, &db, "mock1");
	r = da && db ? 0 : -1;
	if (r == 0)
		r = ioasid_ioas_alloc(a, IOASID_IOAS_NEST_PARENT, &parent);
	if (r == 0)
		r = ioasid_viommu_alloc(a, parent, da, IOASID_VIOMMU_SELFTEST,
					0, &v);
	if (r == 0)
		r = ioasid_vdevice_alloc(a, v, da, V0, &vd);
	if (r == 0)
		r = ioasid_viommu_nested_alloc(a, v, da,
					       IOASID_NESTED_SELFTEST, &st,
					       sizeof(st), 0, &n);
	if (r == 0)
		r = ioasid_device_attach_nested(a, da, n, 0);
	tap_ok(r == 0, "client A, in the daemon's iommufd: a vIOMMU, mock0's "
	       "vDEVICE, a nested HWPT on the vIOMMU, mock0 on it (%s)",
	       a ? kb_err(a) : "-");
	nr = 2;
	r = a ? ioasid_viommu_invalidate(a, v, e, &nr, errs) : -1;
	tap_ok(r == -EINVAL && nr == 1 && errs[0] == 0 && errs[1] == -EINVAL,
	       "A invalidates through it: entry 0 done, a wrong virtual ID "
	       "EINVAL, the errors carried back (%d, %u)", r, nr);
	nr = 1;
	tap_ok(b && ioasid_viommu_invalidate(b, v, e, &nr, errs) == -ENOENT &&
	       ioasid_vdevice_alloc(b, v, db, V1, &x) == -ENOENT &&
	       ioasid_viommu_destroy(b, v) == -ENOENT,
	       "client B reaches none of A's vIOMMU: ENOENT");
	tap_ok(a && ioasid_device_detach(a, da) == 0 &&
	       ioasid_nested_destroy(a, n) == 0 &&
	       ioasid_vdevice_destroy(a, vd) == 0 &&
	       ioasid_viommu_destroy(a, v) == 0 &&
	       ioasid_ioas_destroy(a, parent) == 0,
	       "A takes it all down (%s)", a ? kb_err(a) : "-");
	if (a)
		ioasid_unref(a);
	if (b)
		ioasid_unref(b);
	tap_ok(daemon_stop(&d) == 0, "ioasidd stops cleanly");
}

/* ---- ioasidctl ----------------------------------------------------------- */

/*
 * The command line against the kernel's mock: a batch on iommufd:mock
 * (one process, one iommufd) makes a selftest vIOMMU, a vDEVICE, a
 * nested table on the vIOMMU and one over the IOAS with --selftest, and
 * lists them: ioasidctl's own output, matched line by line.
 */
static const char ctl_script[] =
	"p=ioas create --nest-parent\n"
	"map $p --memfd --length 2M --iova 0x1000000\n"
	"v=viommu create $p mock0 --type selftest\n"
	"vdevice create $v mock0 0x10\n"
	"n=viommu nested $v mock0 --selftest 0x1234\n"
	"nested attach mock0 $n\n"
	"nested list $p\n"
	"detach mock0\n"
	"nested destroy $n\n"
	"m=nested create $p mock1 --selftest 0x99\n"
	"nested destroy $m\n";

static const char *const ctl_expect[] = {
	"^vIOMMU [0-9]+ \\(selftest\\) created over IOAS [0-9]+ for "
	"iommufd_mock, domain [0-9]+$",
	"^nested table [0-9]+ created on vIOMMU [0-9]+ over IOAS [0-9]+ for "
	"iommufd_mock \\(selftest, IOTLB 0x1234\\)$",
	"^mock0 \\(dev [0-9]+\\) attached to nested table [0-9]+",
	"^ +[0-9]+ +selftest +iommufd_mock +[0-9]+ ",
	"^nested table [0-9]+ created over IOAS [0-9]+ for iommufd_mock "
	"\\(selftest, IOTLB 0x99\\)$",
};

/* Run @argv with @in on its stdin; its stdout and stderr in @out. */
static int run_ctl(char *const argv[], const char *in, char *out, size_t len)
{
	int pin[2], pout[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(pin) < 0 || pipe(pout) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(pout[1], 2);
		close(pin[1]);
		close(pout[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	if (write(pin[1], in, strlen(in)) < 0)
		perror("write");
	close(pin[1]);
	while (got + 1 < len && (n = read(pout[0], out + got,
					  len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(pout[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool has_line(const char *text, const char *pattern)
{
	regex_t re;
	bool found;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB))
		return false;
	found = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return found;
}

static void suite_ctl(void)
{
	char *argv[] = { "/usr/bin/ioasidctl", "--uri", "iommufd:mock=2",
			 "batch", "-", NULL };
	static char out[16384];
	bool all = true;
	int rc;

	if (access(argv[0], X_OK) < 0) {
		tap_skip("no ioasidctl in this guest", "ioasidctl --selftest");
		return;
	}
	rc = run_ctl(argv, ctl_script, out, sizeof(out));
	all &= tap_ok(rc == 0, "ioasidctl batch on iommufd:mock: a selftest "
		      "vIOMMU, a vDEVICE, nested tables by --selftest (exit "
		      "%d)", rc);
	for (size_t i = 0; i < sizeof(ctl_expect) / sizeof(*ctl_expect); i++)
		all &= tap_ok(has_line(out, ctl_expect[i]), "ioasidctl says: "
			      "%s", ctl_expect[i]);
	if (!all)	/* what it said, as TAP diagnostics */
		for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
			printf("# %s\n", l);
}

int main(void)
{
	struct env e;
	uint32_t v = 0, vd[2] = { 0, 0 };
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	r = ioasid_new("iommufd:mock=3", &ctx);
	if (r == -EOPNOTSUPP || r == -ENODEV) {
		printf("1..0 # SKIP %s\n", ioasid_last_error(NULL));
		return 77;
	}
	if (!tap_ok(r == 0, "ioasid_new(\"iommufd:mock=3\") (%s)",
		    r ? ioasid_last_error(NULL) : "ok"))
		return tap_done();
	ioasid_set_log_fn(ctx, log_fn, &destroy_errors);
	ioasid_set_log_priority(ctx, LOG_NOTICE);
	if (tap_ok(env_up(&e), "mock0-2 bound, a nest-parent IOAS with a "
		   "memfd mapped, a plain IOAS (%s)", kb_err(ctx))) {
		suite_invalidate(&e, &v, vd);
		if (v)
			suite_nested(&e, v, vd);
		suite_orders(&e);
	}
	env_down(&e);
	suite_session_end();
	suite_real_device();
	ioasid_unref(ctx);
	ctx = NULL;
	suite_remote();
	suite_ctl();
	return tap_done();
}
