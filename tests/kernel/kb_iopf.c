/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_iopf - recoverable faults on the iommufd backend, proven on the
 * kernel's selftest mock devices (tests/vm guest: CONFIG_IOMMUFD_TEST).
 *
 * ioasid_fault_queue_alloc() on an IOAS is IOMMU_FAULT_QUEUE_ALLOC; the
 * HWPT the attach then allocates carries IOMMU_HWPT_FAULT_ID_VALID and
 * the FAULT object's id.  A mock device's DMA to a page the IOAS does
 * not map raises a page request in the kernel
 * (IOMMU_TEST_OP_TRIGGER_IOPF, as the kernel's selftest does); the fault
 * fd polls readable, ioasid_fault_queue_read() reads the kernel's struct
 * iommu_hwpt_pgfault, the page is mapped, ioasid_fault_respond() writes
 * struct iommu_hwpt_page_response with the kernel's cookie, and the
 * device's retried DMA lands.  Then the refusals: a cookie the kernel
 * does not know (ENOENT, from the kernel's EINVAL), answered twice, a
 * nest-parent IOAS (EOPNOTSUPP).
 *
 * A queue on a nested table: the nested HWPT is replaced by one with
 * IOMMU_HWPT_FAULT_ID_VALID, the attached device moved to it
 * (IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE), the old one destroyed; the round
 * trip through it; destroyed, the table's HWPT is replaced again by one
 * without the id (and when the kernel refuses that one, the queue stays
 * and works); the same for a nested table on a vIOMMU.  A queue added to an IOAS whose devices and a PASID
 * are attached: their HWPT is replaced the same way, every attachment
 * moved (the kernel's IOMMU_DESTROY and PASID_CHECK_HWPT say where they
 * are), the mappings kept (MD_CHECK_MAP).  And the failure paths, made
 * to happen by iommufd_test_refault_fail(): the kernel refusing the new
 * HWPT (a FAULT id it has not) and refusing the second move (after the
 * first was done), and dirty tracking on (EBUSY, its bits would be
 * lost): each leaves every device and the PASID on the old HWPT with
 * its mappings, and no queue; so does VT-d's own refusal of edu (no
 * PRI) on a HWPT with a queue, edu's DMA working after.  A freed
 * queue's FAULT object, which the
 * kernel keeps while our descriptor of it is open, goes at the next
 * queue's allocation once it is closed.  Through ioasidd: a queue added
 * to a client's IOAS and to its nested table with its device attached,
 * the kernel's fault fd passed over the socket, the round trip; another
 * client sees none of it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/mman.h>

#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "../daemon_fixture.h"
#include "kbtest.h"

#define IOVA	0x1000000ull	/* the mock IOMMU's aperture starts here */
#define PG	4096ull
#define LEN	(16 * PG)
#define RW	(IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA)

static struct ioasid_ctx *ctx;

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void suite_round_trip(void)
{
	struct ioasid_page_request q[4];
	struct ioasid_fault_queue_info info;
	uint32_t dev = 0, ioas = 0, fq = 0, nr = 4, other = 0, ofq;
	uint64_t iova = IOVA, done = 0;
	int m = kb_memfd(LEN, 0), fd = -1, ofd, r;
	uint8_t out[64];

	kb_pattern(out, sizeof(out), 7);
	if (!tap_ok(ioasid_device_bind(ctx, "mock0", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(ctx, 0, &ioas) == 0 &&
		    ioasid_map_file(ctx, ioas, m, 0, PG, RW, &iova) == 0,
		    "mock0 bound, page 0 of a memfd mapped at 0x%llx (%s)",
		    (unsigned long long)IOVA, kb_err(ctx)))
		goto out;
	r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fd);
	if (!tap_ok(r == 0 && fd >= 0, "IOMMU_FAULT_QUEUE_ALLOC: fault queue "
		    "%u, its fd %d (%d, %s)", fq, fd, r, kb_err(ctx)))
		goto out;
	tap_ok(ioasid_device_attach(ctx, dev, ioas, 0) == 0,
	       "attach: the HWPT is allocated with IOMMU_HWPT_FAULT_ID_VALID "
	       "(%s)", kb_err(ctx));
	tap_ok(!readable(fd, 0), "the fault fd is not readable yet");
	r = ioasid_device_dma(ctx, dev, IOVA + 2 * PG, out, sizeof(out),
			      IOASID_DMA_WRITE, &done);
	tap_ok(r == -EINPROGRESS && done == 0, "a DMA to an unmapped page: "
	       "-EINPROGRESS, a page request in the kernel (%d, %s)", r,
	       kb_err(ctx));
	tap_ok(readable(fd, 5000), "the kernel's fault fd polls readable");
	r = ioasid_fault_queue_read(ctx, fq, q, &nr);
	tap_ok(r == 0 && nr == 1 && q[0].dev_id == dev &&
	       q[0].addr == IOVA + 2 * PG && (q[0].perm & IOASID_MAP_WRITE) &&
	       q[0].fault_id == fq && q[0].target_id == ioas &&
	       !(q[0].flags & IOASID_PAGE_REQUEST_PASID),
	       "one struct iommu_hwpt_pgfault: our device, the page, write, "
	       "no PASID (%d, nr %u, dev %u, addr 0x%llx, cookie %u)", r, nr,
	       q[0].dev_id, (unsigned long long)q[0].addr, q[0].cookie);
	tap_ok(!readable(fd, 0), "read: not readable any more");
	r = ioasid_fault_respond(ctx, fq, q[0].cookie + 100,
				 IOASID_PAGE_RESPONSE_SUCCESS);
	tap_ok(r == -ENOENT, "a cookie the kernel does not know: ENOENT (%d, "
	       "%s)", r, kb_err(ctx));
	iova = IOVA + 2 * PG;
	tap_ok(ioasid_map_file(ctx, ioas, m, 2 * PG, PG, RW, &iova) == 0 &&
	       ioasid_fault_respond(ctx, fq, q[0].cookie,
				    IOASID_PAGE_RESPONSE_SUCCESS) == 0,
	       "the page mapped, the answer written to the fault fd (%s)",
	       kb_err(ctx));
	r = ioasid_fault_respond(ctx, fq, q[0].cookie,
				 IOASID_PAGE_RESPONSE_SUCCESS);
	tap_ok(r == -ENOENT, "answered twice: ENOENT (%d)", r);
	r = ioasid_device_dma(ctx, dev, IOVA + 2 * PG, out, sizeof(out),
			      IOASID_DMA_WRITE, &done);
	tap_ok(r == 0 && kb_file_equals(m, 2 * PG, out, sizeof(out)),
	       "the device's retried DMA lands in the page (%d, %s)", r,
	       kb_err(ctx));
	tap_ok(ioasid_fault_queue_info(ctx, fq, &info) == 0 &&
	       info.requests == 1 && info.responses == 1 &&
	       info.outstanding == 0, "info: 1 request, 1 response, none "
	       "outstanding");
	/* refusals */
	r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &ofq, &ofd);
	tap_ok(r == -EEXIST, "a second queue on the IOAS: EEXIST (%d)", r);
	if (ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &other) == 0) {
		r = ioasid_fault_queue_alloc(ctx, other, 0, 0, 0, &ofq, &ofd);
		tap_ok(r == -EOPNOTSUPP, "a nest-parent IOAS: EOPNOTSUPP, as "
		       "the kernel (%d, %s)", r, kb_err(ctx));
		ioasid_ioas_destroy(ctx, other);
	}
	tap_ok(ioasid_fault_queue_destroy(ctx, fq) == -EBUSY,
	       "destroy while mock0 is attached: EBUSY");
	tap_ok(ioasid_device_detach(ctx, dev) == 0 &&
	       ioasid_fault_queue_destroy(ctx, fq) == 0,
	       "detached: the queue goes (%s)", kb_err(ctx));
	tap_ok(iommufd_test_dead_faults(kb_be_ioas(ctx, ioas)) == 1,
	       "its FAULT object waits: the kernel refuses IOMMU_DESTROY "
	       "while our descriptor of it is open");
	close(fd);
	fd = -1;
	r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &ofq, &ofd);
	tap_ok(r == 0 && iommufd_test_dead_faults(kb_be_ioas(ctx, ioas)) == 0,
	       "descriptor closed: the next queue's allocation destroys it "
	       "(%d, %s)", r, kb_err(ctx));
	if (r == 0) {
		ioasid_fault_queue_destroy(ctx, ofq);
		close(ofd);
	}
out:
	if (fd >= 0)
		close(fd);
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	close(m);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* IOMMU_DESTROY of kernel object @id in @dev's iommufd: 0 or -errno. */
static int kdestroy(uint32_t dev, uint32_t id)
{
	struct ifd_destroy d = { .size = sizeof(d), .id = id };
	struct be_device *bd = kb_be_device(ctx, dev);

	if (!bd)
		return -ENOENT;
	return ioctl(iommufd_test_device_iommufd(bd), IFD_DESTROY, &d) < 0 ?
	       -errno : 0;
}

/* The kernel HWPT the device is attached to (its nested one first). */
static uint32_t hwpt_of(uint32_t dev)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct be_domain *bdom = kb_be_domain(ctx, dev);

	if (bd && iommufd_test_nested_hwpt_id(bd))
		return iommufd_test_nested_hwpt_id(bd);
	return bdom ? iommufd_test_hwpt_id(bdom) : 0;
}

/*
 * PASID_CHECK_HWPT: @pasid of @dev is on HWPT @hwpt, as the kernel's
 * attach handle says (PASID 0, IOMMU_NO_PASID: the device itself).
 */
static bool pasid_on(uint32_t dev, uint32_t pasid, uint32_t hwpt)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_PASID_CHECK_HWPT,
		.id = bd ? iommufd_test_mock_stdev_id(bd) : 0,
		.pasid = { .pasid = pasid, .pt_id = hwpt },
	};

	return bd && ioctl(iommufd_test_device_iommufd(bd), IFD_TEST_CMD,
			   &c) == 0;
}

static int dma(uint32_t dev, uint64_t iova, uint8_t seed)
{
	uint8_t b[64];
	uint64_t done = 0;

	kb_pattern(b, sizeof(b), seed);
	return ioasid_device_dma(ctx, dev, iova, b, sizeof(b),
				 IOASID_DMA_WRITE, &done);
}

static bool dma_lands(uint32_t dev, int m, uint64_t iova, uint8_t seed)
{
	uint8_t b[64];

	kb_pattern(b, sizeof(b), seed);
	return dma(dev, iova, seed) == 0 &&
	       kb_file_equals(m, iova - IOVA, b, sizeof(b));
}

/*
 * A DMA to unmapped @iova raises a page request on queue @fq (target
 * @target), read from its fd; the page is mapped and the answer written;
 * the kernel has taken it (a second answer: ENOENT), the retry lands.
 */
static void round_trip(const char *what, uint32_t dev, uint32_t map_on,
		       uint32_t target, uint32_t fq, int fd, int m,
		       uint64_t iova)
{
	struct ioasid_page_request q[4];
	uint32_t nr = 4;
	uint64_t at = iova;
	int r = dma(dev, iova, 3);

	tap_ok(r == -EINPROGRESS, "%s: a DMA to an unmapped page: a page "
	       "request in the kernel (%d, %s)", what, r, kb_err(ctx));
	tap_ok(readable(fd, 5000), "%s: the fault fd polls readable", what);
	r = ioasid_fault_queue_read(ctx, fq, q, &nr);
	if (!tap_ok(r == 0 && nr == 1 && q[0].dev_id == dev &&
		    q[0].addr == iova && q[0].fault_id == fq &&
		    q[0].target_id == target,
		    "%s: the kernel's record: our device, the page, queue %u, "
		    "target %u (%d, nr %u, target %u)", what, fq, target, r,
		    nr, nr ? q[0].target_id : 0))
		return;
	tap_ok(ioasid_map_file(ctx, map_on, m, iova - IOVA, PG, RW, &at) == 0 &&
	       ioasid_fault_respond(ctx, fq, q[0].cookie,
				    IOASID_PAGE_RESPONSE_SUCCESS) == 0,
	       "%s: the page mapped, answered success (%s)", what, kb_err(ctx));
	r = ioasid_fault_respond(ctx, fq, q[0].cookie,
				 IOASID_PAGE_RESPONSE_SUCCESS);
	tap_ok(r == -ENOENT, "%s: the kernel took the answer: its cookie is "
	       "gone (ENOENT, %d)", what, r);
	tap_ok(dma_lands(dev, m, iova, 4), "%s: the retried DMA lands (%s)",
	       what, kb_err(ctx));
}

static void suite_nested(void)
{
	struct ioasid_nested_selftest st = { .iotlb = 0 };
	uint32_t dev = 0, parent = 0, nested = 0, fq = 0, old, now;
	uint64_t iova = IOVA, done = 0, t0;
	int m = kb_memfd(LEN, 0), fd = -1, r;
	uint8_t out[64];

	if (!tap_ok(ioasid_device_bind(ctx, "mock0", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT,
				      &parent) == 0 &&
		    ioasid_map_file(ctx, parent, m, 0, PG, RW, &iova) == 0,
		    "nested: mock0 bound, a nest-parent IOAS with page 0 mapped "
		    "(%s)", kb_err(ctx)))
		goto out;
	r = ioasid_nested_alloc(ctx, parent, dev, IOASID_NESTED_SELFTEST, &st,
				sizeof(st), 0, &nested);
	if (r == -EOPNOTSUPP) {
		tap_skip(kb_err(ctx), "nested: the kernel's mock has no "
			 "nested HWPTs");
		goto out;
	}
	if (!tap_ok(r == 0 && ioasid_device_attach_nested(ctx, dev, nested,
							   0) == 0,
		    "nested: a selftest nested table, mock0 attached to it (%s)",
		    kb_err(ctx)))
		goto out;
	old = hwpt_of(dev);
	tap_ok(pasid_on(dev, 0, old) &&
	       !pasid_on(dev, 0, iommufd_test_hwpt_id(kb_be_domain(ctx, dev))),
	       "the kernel's attach handle of mock0 is nested HWPT %u, not "
	       "its parent (PASID_CHECK_HWPT with IOMMU_NO_PASID)", old);
	r = dma(dev, IOVA + 2 * PG, 1);
	tap_ok(r == -EFAULT, "nested, no queue yet: a DMA to an unmapped page "
	       "is a fault (%d)", r);
	t0 = now_us();
	r = ioasid_fault_queue_alloc(ctx, nested, 0, 0, 0, &fq, &fd);
	tap_diag("a queue added to a nested table over 1 attachment: %llu us "
		 "(1 nested HWPT allocated, 1 replace, 1 destroyed)",
		 (unsigned long long)(now_us() - t0));
	if (!tap_ok(r == 0 && fd >= 0, "a fault queue on the nested table "
		    "while mock0 is attached (%d, %s)", r, kb_err(ctx)))
		goto out;
	now = hwpt_of(dev);
	tap_ok(now && now != old && kdestroy(dev, old) == -ENOENT &&
	       pasid_on(dev, 0, now) && kdestroy(dev, now) == -EBUSY,
	       "a new nested HWPT (%u, IOMMU_HWPT_FAULT_ID_VALID) holds the "
	       "device, the kernel says (IOMMU_DESTROY: EBUSY); the old one "
	       "(%u) is gone (ENOENT)", now, old);
	tap_ok(dma_lands(dev, m, IOVA + 0x100, 5), "the mapping stays: a DMA "
	       "to page 0 through the new nested HWPT lands (%s)", kb_err(ctx));
	round_trip("nested", dev, parent, nested, fq, fd, m, IOVA + 2 * PG);
	tap_ok(ioasid_fault_queue_destroy(ctx, fq) == -EBUSY,
	       "nested: destroy while mock0 is on the table: EBUSY");
	tap_ok(ioasid_device_detach(ctx, dev) == 0, "nested: mock0 detached "
	       "(%s)", kb_err(ctx));
	iommufd_test_refault_fail(kb_backend(ctx), true, 0);
	r = ioasid_fault_queue_destroy(ctx, fq);
	tap_ok(r == -ENOENT && strstr(ioasid_last_error(ctx), "stays"),
	       "the kernel refuses the HWPT without the fault id: the queue "
	       "stays (%d, %s)", r, kb_err(ctx));
	r = ioasid_device_attach_nested(ctx, dev, nested, 0);
	tap_ok(r == 0 && hwpt_of(dev) == now && pasid_on(dev, 0, now) &&
	       dma(dev, IOVA + 4 * PG, 1) == -EINPROGRESS && readable(fd, 5000),
	       "and works: mock0 back on HWPT %u, a page request reaches "
	       "the fd (%d, %s)", now, r, kb_err(ctx));
	{
		struct ioasid_page_request q[2];
		uint32_t nr = 2;
		int rr = ioasid_fault_queue_read(ctx, fq, q, &nr);

		rr = rr ? rr : nr != 1 ? -EIO :
		     ioasid_fault_respond(ctx, fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_INVALID);
		tap_ok(rr == 0, "read (%u record) and answered invalid (%d, "
		       "%s)", nr, rr, kb_err(ctx));
	}
	r = ioasid_device_detach(ctx, dev);
	r = r ? r : ioasid_fault_queue_destroy(ctx, fq);
	tap_ok(r == 0, "detached, the queue goes (%d, %s)", r, kb_err(ctx));
	if (!r)
		fq = 0;
	r = ioasid_device_attach_nested(ctx, dev, nested, 0);
	tap_ok(r == 0 && hwpt_of(dev) != now && pasid_on(dev, 0, hwpt_of(dev)) &&
	       kdestroy(dev, now) == -ENOENT,
	       "the table's HWPT was replaced by one without the fault id "
	       "(%u, the queue's %u gone) (%s)", hwpt_of(dev), now,
	       kb_err(ctx));
	kb_pattern(out, sizeof(out), 6);
	r = ioasid_device_dma(ctx, dev, IOVA + 5 * PG, out, sizeof(out),
			      IOASID_DMA_WRITE, &done);
	tap_ok(r == -EFAULT, "no queue any more: a DMA to an unmapped page "
	       "is a fault again (%d)", r);
out:
	if (fd >= 0)
		close(fd);
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (nested)
		ioasid_nested_destroy(ctx, nested);
	if (parent)
		ioasid_ioas_destroy(ctx, parent);
	close(m);
}

/*
 * A nested table on a vIOMMU (IOMMU_HWPT_ALLOC on the vIOMMU): its
 * queue replaces the HWPT on the vIOMMU too, the device (with its
 * vDEVICE) moved; the round trip; destroyed, replaced back.
 */
static void suite_viommu(void)
{
	struct ioasid_nested_selftest st = { .iotlb = 0 };
	uint32_t dev = 0, parent = 0, v = 0, vd = 0, nested = 0, fq = 0;
	uint32_t old, now;
	uint64_t iova = IOVA;
	int m = kb_memfd(LEN, 0), fd = -1, r;

	if (!tap_ok(ioasid_device_bind(ctx, "mock0", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT,
				      &parent) == 0 &&
		    ioasid_map_file(ctx, parent, m, 0, PG, RW, &iova) == 0,
		    "vIOMMU: mock0 bound, a nest-parent IOAS with page 0 mapped "
		    "(%s)", kb_err(ctx)))
		goto out;
	r = ioasid_viommu_alloc(ctx, parent, dev, IOASID_VIOMMU_SELFTEST, 0,
				&v);
	if (r == -EOPNOTSUPP) {
		tap_skip(kb_err(ctx), "vIOMMU: the kernel's mock has none");
		goto out;
	}
	r = r ? r : ioasid_vdevice_alloc(ctx, v, dev, 0x99, &vd);
	r = r ? r : ioasid_viommu_nested_alloc(ctx, v, dev,
					       IOASID_NESTED_SELFTEST, &st,
					       sizeof(st), 0, &nested);
	r = r ? r : ioasid_device_attach_nested(ctx, dev, nested, 0);
	if (!tap_ok(r == 0, "vIOMMU: a selftest vIOMMU, mock0's vDEVICE, a "
		    "nested table on it, mock0 attached (%d, %s)", r,
		    kb_err(ctx)))
		goto out;
	old = hwpt_of(dev);
	r = ioasid_fault_queue_alloc(ctx, nested, 0, 0, 0, &fq, &fd);
	now = hwpt_of(dev);
	tap_ok(r == 0 && now != old && pasid_on(dev, 0, now) &&
	       kdestroy(dev, old) == -ENOENT,
	       "vIOMMU: a queue on the table: a new HWPT on the vIOMMU (%u) "
	       "holds mock0, the old one (%u) is gone (%d, %s)", now, old, r,
	       kb_err(ctx));
	if (r < 0)
		goto out;
	round_trip("vIOMMU", dev, parent, nested, fq, fd, m, IOVA + 2 * PG);
	r = ioasid_device_detach(ctx, dev);
	r = r ? r : ioasid_fault_queue_destroy(ctx, fq);
	r = r ? r : ioasid_device_attach_nested(ctx, dev, nested, 0);
	tap_ok(r == 0 && hwpt_of(dev) != now && pasid_on(dev, 0, hwpt_of(dev)) &&
	       kdestroy(dev, now) == -ENOENT,
	       "vIOMMU: the queue destroyed, the table's HWPT replaced by one "
	       "without it on the vIOMMU (%d, %s)", r, kb_err(ctx));
	if (r == 0)
		fq = 0;
out:
	if (fd >= 0)
		close(fd);
	if (dev)
		ioasid_device_detach(ctx, dev);
	if (fq)
		ioasid_fault_queue_destroy(ctx, fq);
	if (nested)
		ioasid_nested_destroy(ctx, nested);
	if (vd)
		ioasid_vdevice_destroy(ctx, vd);
	if (v)
		ioasid_viommu_destroy(ctx, v);
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (parent)
		ioasid_ioas_destroy(ctx, parent);
	close(m);
}

#define PASID	0x42

/* mock0, mock1 and mock1's PASID on HWPT @hwpt, the mapping there. */
static bool all_on(uint32_t d0, uint32_t d1, uint32_t hwpt, void *p)
{
	return hwpt_of(d0) == hwpt && hwpt_of(d1) == hwpt &&
	       pasid_on(d0, 0, hwpt) && pasid_on(d1, 0, hwpt) &&
	       pasid_on(d1, PASID, hwpt) && kdestroy(d0, hwpt) == -EBUSY &&
	       kb_mock_check_map(ctx, d0, IOVA, PG, p) == 0;
}

/* No queue: the allocation failed, everything where it was. */
static void nothing_moved(const char *what, uint32_t d0, uint32_t d1,
			  uint32_t old, void *p, int m)
{
	struct ioasid_fault_queue_info qi;
	uint32_t nr = 1;
	int r;

	tap_ok(all_on(d0, d1, old, p), "%s: mock0, mock1 and its PASID are "
	       "on the old HWPT %u as the kernel says, page 0 mapped there",
	       what, old);
	r = ioasid_fault_queue_list(ctx, &qi, &nr);
	tap_ok(r == 0 && nr == 0, "%s: no queue (%d, %u)", what, r, nr);
	tap_ok(dma_lands(d0, m, IOVA + 0x200, 9) && dma(d1, IOVA + 3 * PG,
							 1) == -EFAULT,
	       "%s: mock0's DMA lands, an unmapped page is a fault (%s)", what,
	       kb_err(ctx));
}

static void suite_late(void)
{
	uint32_t d0 = 0, d1 = 0, ioas = 0, fq = 0, old, now;
	uint64_t iova = IOVA, t0;
	int m = kb_memfd(LEN, 0), fd = -1, r;
	void *p = MAP_FAILED;

	if (!tap_ok(ioasid_device_bind(ctx, "mock0", -1, &d0) == 0 &&
		    ioasid_device_bind(ctx, "mock1", -1, &d1) == 0 &&
		    ioasid_ioas_alloc(ctx, 0, &ioas) == 0 &&
		    ioasid_map_file(ctx, ioas, m, 0, PG, RW, &iova) == 0 &&
		    ioasid_device_attach(ctx, d0, ioas, 0) == 0 &&
		    ioasid_device_attach(ctx, d1, ioas, 0) == 0 &&
		    ioasid_device_pasid_attach(ctx, d1, PASID, ioas, 0) == 0,
		    "late: mock0 and mock1 attached to an IOAS, mock1's PASID "
		    "0x%x too, page 0 mapped (%s)", PASID, kb_err(ctx)))
		goto out;
	p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	old = hwpt_of(d0);
	if (!tap_ok(p != MAP_FAILED && all_on(d0, d1, old, p),
		    "all three on one HWPT (%u), page 0 mapped there", old))
		goto out;

	iommufd_test_refault_fail(kb_backend(ctx), true, 0);
	r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fd);
	tap_ok(r == -ENOENT && strstr(ioasid_last_error(ctx), "HWPT_ALLOC"),
	       "the kernel refuses the new HWPT (a FAULT id it has not): "
	       "ENOENT (%d, %s)", r, kb_err(ctx));
	nothing_moved("refused HWPT", d0, d1, old, p, m);

	iommufd_test_refault_fail(kb_backend(ctx), false, 2);
	r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fd);
	tap_ok(r == -ENOENT && strstr(ioasid_last_error(ctx), "refused to "
					 "move"),
	       "the kernel refuses the second move, after the first: ENOENT "
	       "(%d, %s)", r, kb_err(ctx));
	nothing_moved("refused move", d0, d1, old, p, m);

	r = ioasid_dirty_start(ctx, ioas, 0);
	if (r == 0) {
		r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fd);
		tap_ok(r == -EBUSY && strstr(ioasid_last_error(ctx), "dirty"),
		       "dirty tracking on: EBUSY, its bits would go with the "
		       "HWPT (%d, %s)", r, kb_err(ctx));
		nothing_moved("dirty tracking on", d0, d1, old, p, m);
		ioasid_dirty_stop(ctx, ioas);
	} else {
		tap_skip(kb_err(ctx), "dirty tracking: the mock cannot");
	}

	t0 = now_us();
	r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fd);
	tap_diag("a queue added over 3 attachments: %llu us (1 HWPT "
		 "allocated, 3 replaces, 1 HWPT destroyed)",
		 (unsigned long long)(now_us() - t0));
	if (!tap_ok(r == 0 && fd >= 0, "a fault queue on the IOAS while "
		    "three attachments are on it (%d, %s)", r, kb_err(ctx)))
		goto out;
	now = hwpt_of(d0);
	tap_ok(now != old && all_on(d0, d1, now, p) &&
	       kdestroy(d0, old) == -ENOENT,
	       "all three moved to a new HWPT (%u, the kernel says), the "
	       "mapping there (MD_CHECK_MAP); the old one (%u) is gone", now,
	       old);
	round_trip("late, mock1", d1, ioas, ioas, fq, fd, m, IOVA + 3 * PG);
	tap_ok(dma_lands(d0, m, IOVA + 0x300, 11), "mock0's DMA lands too "
	       "(%s)", kb_err(ctx));
	tap_ok(ioasid_device_detach(ctx, d0) == 0 &&
	       ioasid_device_detach(ctx, d1) == 0 &&
	       ioasid_device_pasid_detach(ctx, d1, PASID) == 0 &&
	       ioasid_fault_queue_destroy(ctx, fq) == 0,
	       "late: detached, the queue goes (%s)", kb_err(ctx));
out:
	if (p != MAP_FAILED)
		munmap(p, PG);
	if (fd >= 0)
		close(fd);
	if (d0)
		ioasid_device_unbind(ctx, d0);
	if (d1)
		ioasid_device_unbind(ctx, d1);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	close(m);
}

/*
 * mock1's own requests on a plain IOAS, its PASID on a nested table: a
 * queue added to the table later moves the PASID to the table's new
 * HWPT (the device stays where it is), and a DMA tagged with the PASID
 * to an unmapped page is a page request on the table's queue.
 */
static void suite_nested_pasid(void)
{
	struct ioasid_nested_selftest st = { .iotlb = 0 };
	struct be_device *bd;
	uint32_t dev = 0, parent = 0, plain = 0, nested = 0, fq = 0;
	uint32_t own, old, now;
	uint64_t iova = IOVA, done = 0;
	int m = kb_memfd(LEN, 0), fd = -1, r;
	uint8_t b[64];

	r = ioasid_device_bind(ctx, "mock1", -1, &dev);
	r = r ? r : ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &parent);
	r = r ? r : ioasid_ioas_alloc(ctx, 0, &plain);
	r = r ? r : ioasid_map_file(ctx, parent, m, 0, PG, RW, &iova);
	r = r ? r : ioasid_device_attach(ctx, dev, plain, 0);
	r = r ? r : ioasid_nested_alloc(ctx, parent, dev,
					IOASID_NESTED_SELFTEST, &st,
					sizeof(st), 0, &nested);
	if (r == -EOPNOTSUPP) {
		tap_skip(kb_err(ctx), "nested PASID: the kernel's mock has no "
			 "nested HWPTs");
		goto out;
	}
	r = r ? r : ioasid_device_pasid_attach_nested(ctx, dev, PASID, nested,
						      0);
	if (!tap_ok(r == 0, "nested PASID: mock1 on a plain IOAS, its PASID "
		    "0x%x on a selftest nested table (%d, %s)", PASID, r,
		    kb_err(ctx)))
		goto out;
	bd = kb_be_device(ctx, dev);
	own = hwpt_of(dev);
	old = iommufd_test_pasid_hwpt_id(bd, PASID);
	r = ioasid_fault_queue_alloc(ctx, nested, 0, 0, 0, &fq, &fd);
	if (!tap_ok(r == 0 && fd >= 0, "a queue on the nested table while the "
		    "PASID is on it (%d, %s)", r, kb_err(ctx)))
		goto out;
	now = iommufd_test_pasid_hwpt_id(bd, PASID);
	tap_ok(now && now != old && pasid_on(dev, PASID, now) &&
	       kdestroy(dev, old) == -ENOENT && hwpt_of(dev) == own &&
	       pasid_on(dev, 0, own),
	       "the PASID moved to the table's new HWPT %u (the old %u gone), "
	       "the device itself stays on HWPT %u, the kernel says", now,
	       old, own);
	kb_pattern(b, sizeof(b), 7);
	r = ioasid_device_dma_pasid(ctx, dev, PASID, IOVA + 2 * PG, b,
				    sizeof(b), IOASID_DMA_WRITE, &done);
	tap_ok(r == -EINPROGRESS && readable(fd, 5000),
	       "a DMA tagged 0x%x to an unmapped page: a page request on the "
	       "table's queue (%d, %s)", PASID, r, kb_err(ctx));
	{
		struct ioasid_page_request q[2];
		uint32_t nr = 2;

		r = ioasid_fault_queue_read(ctx, fq, q, &nr);
		tap_ok(r == 0 && nr == 1 && q[0].dev_id == dev &&
		       q[0].target_id == nested &&
		       q[0].addr == IOVA + 2 * PG,
		       "the record: mock1, the nested table, the page (%d, nr "
		       "%u)", r, nr);
		if (r == 0 && nr == 1)
			ioasid_fault_respond(ctx, fq, q[0].cookie,
					     IOASID_PAGE_RESPONSE_INVALID);
	}
	r = ioasid_device_dma(ctx, dev, IOVA + 2 * PG, b, sizeof(b),
			      IOASID_DMA_WRITE, &done);
	tap_ok(r == -EFAULT, "the device's own DMA (plain IOAS, no queue) to "
	       "an unmapped page is still a fault (%d)", r);
out:
	if (fd >= 0)
		close(fd);
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (fq)
		ioasid_fault_queue_destroy(ctx, fq);
	if (nested)
		ioasid_nested_destroy(ctx, nested);
	if (plain)
		ioasid_ioas_destroy(ctx, plain);
	if (parent)
		ioasid_ioas_destroy(ctx, parent);
	close(m);
}

/*
 * A refusal of the real kernel: VT-d enables I/O page faults on a
 * device that joins a HWPT with a fault queue, and edu has no PRI
 * (intel_iommu_enable_iopf: ENODEV), so the replace is refused and edu
 * stays on its HWPT, DMA working: the driver blocked edu before it
 * refused, and the backend attaches it to that HWPT again (without,
 * edu's next DMA faults: "Present bit in context entry is clear").
 * (edu alone: a mock device and a VT-d
 * one in one IOAS of the same coherency class make the core offer the
 * mock device the VT-d HWPT, which Linux 7.3's IOMMU_TEST_OP_MOCK_
 * DOMAIN_REPLACE does not refuse but oopses on.)
 */
static void suite_edu(void)
{
	struct ioasid_device_info info;
	uint32_t edu = 0, ioas = 0, fq = 0, old;
	struct edu e = { 0 };
	uint64_t iova = IOVA;
	int m = kb_memfd(LEN, 0), fd = -1, efd = -1, r;
	uint8_t pat[64];

	if (kb_find_edu(ctx, &info) < 0) {
		tap_skip("no edu device in this guest", "edu refuses a queue");
		close(m);
		return;
	}
	if (!tap_ok(ioasid_device_bind(ctx, info.name, -1, &edu) == 0 &&
		    ioasid_ioas_alloc(ctx, 0, &ioas) == 0 &&
		    ioasid_map_file(ctx, ioas, m, 0, PG, RW, &iova) == 0 &&
		    ioasid_device_attach(ctx, edu, ioas, 0) == 0 &&
		    ioasid_device_get_fd(ctx, edu, &efd) == 0 &&
		    edu_open(&e, efd) == 0,
		    "edu (VT-d, no PRI) attached to an IOAS, page 0 mapped (%s)",
		    kb_err(ctx)))
		goto out;
	old = hwpt_of(edu);
	kb_pattern(pat, sizeof(pat), 12);
	if (pwrite(m, pat, sizeof(pat), 0) != (ssize_t)sizeof(pat))
		pat[0] ^= 1;
	tap_ok(edu_to_buf(&e, IOVA, 0, sizeof(pat)) == 0 &&
	       edu_to_mem(&e, 0, IOVA + 0x400, sizeof(pat)) == 0 &&
	       kb_file_equals(m, 0x400, pat, sizeof(pat)),
	       "edu copies within page 0 (%s)", kb_err(ctx));
	r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fd);
	tap_ok(r == -ENODEV && strstr(ioasid_last_error(ctx), info.name),
	       "a queue: VT-d refuses edu on a HWPT with one (no PRI to "
	       "enable): ENODEV (%d, %s)", r, kb_err(ctx));
	tap_ok(hwpt_of(edu) == old && kdestroy(edu, old) == -EBUSY,
	       "edu is on its old HWPT %u, the kernel says (IOMMU_DESTROY: "
	       "EBUSY)", old);
	kb_pattern(pat, sizeof(pat), 13);
	if (pwrite(m, pat, sizeof(pat), 0) != (ssize_t)sizeof(pat))
		pat[0] ^= 1;
	tap_ok(edu_to_buf(&e, IOVA, 0, sizeof(pat)) == 0 &&
	       edu_to_mem(&e, 0, IOVA + 0x800, sizeof(pat)) == 0 &&
	       kb_file_equals(m, 0x800, pat, sizeof(pat)),
	       "edu copies within page 0 through it: the mapping is there "
	       "(%s)", kb_err(ctx));
out:
	if (e.bar0)
		edu_close(&e);
	if (efd >= 0)
		close(efd);
	if (fd >= 0)
		close(fd);
	if (edu)
		ioasid_device_unbind(ctx, edu);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	close(m);
}

/* ---- through ioasidd ----------------------------------------------------- */

/* The round trips above, on the daemon's objects (@c: a client). */
static void remote_queues(struct ioasid_ctx *c, struct ioasid_ctx *other,
			  int m)
{
	struct ioasid_nested_selftest st = { .iotlb = 0 };
	struct ioasid_ctx *embedded = ctx;
	uint32_t dev = 0, ioas = 0, parent = 0, nested = 0, fq = 0, nfq = 0;
	uint32_t nr = 1;
	uint64_t iova = IOVA;
	int fd = -1, nfd = -1, r;
	struct ioasid_page_request q;

	ctx = c;		/* what round_trip() and dma() use */
	if (!tap_ok(ioasid_device_bind(c, "mock0", -1, &dev) == 0 &&
		    ioasid_ioas_alloc(c, 0, &ioas) == 0 &&
		    ioasid_map_file(c, ioas, m, 0, PG, RW, &iova) == 0 &&
		    ioasid_device_attach(c, dev, ioas, 0) == 0,
		    "ioasidd: client A's mock0 attached to its IOAS, page 0 "
		    "mapped (%s)", kb_err(c)))
		goto out;
	r = ioasid_fault_queue_alloc(c, ioas, 0, 0, 0, &fq, &fd);
	if (!tap_ok(r == 0 && fd >= 0, "ioasidd: a queue added to the IOAS "
		    "with mock0 attached, the kernel's fd passed (%d, %s)", r,
		    kb_err(c)))
		goto out;
	tap_ok(dma_lands(dev, m, IOVA + 0x80, 12), "ioasidd: the mapping "
	       "stays (%s)", kb_err(c));
	round_trip("ioasidd, IOAS", dev, ioas, ioas, fq, fd, m, IOVA + 6 * PG);
	r = ioasid_fault_queue_read(other, fq, &q, &nr);
	tap_ok(r == -ENOENT, "ioasidd: client B cannot read A's queue: ENOENT "
	       "(%d)", r);
	iova = IOVA;
	r = ioasid_ioas_alloc(c, IOASID_IOAS_NEST_PARENT, &parent);
	r = r ? r : ioasid_map_file(c, parent, m, 0, PG, RW, &iova);
	r = r ? r : ioasid_nested_alloc(c, parent, dev, IOASID_NESTED_SELFTEST,
					&st, sizeof(st), 0, &nested);
	r = r ? r : ioasid_device_replace_nested(c, dev, nested, 0);
	r = r ? r : ioasid_fault_queue_alloc(c, nested, 0, 0, 0, &nfq, &nfd);
	if (!tap_ok(r == 0 && nfd >= 0, "ioasidd: mock0 moved onto a nested "
		    "table, a queue added to the table (%d, %s)", r, kb_err(c)))
		goto out;
	round_trip("ioasidd, nested", dev, parent, nested, nfq, nfd, m,
		   IOVA + 7 * PG);
	tap_ok(ioasid_device_detach(c, dev) == 0 &&
	       ioasid_fault_queue_destroy(c, nfq) == 0 &&
	       ioasid_fault_queue_destroy(c, fq) == 0,
	       "ioasidd: detached, both queues go (%s)", kb_err(c));
out:
	ctx = embedded;
	if (fd >= 0)
		close(fd);
	if (nfd >= 0)
		close(nfd);
	if (dev)
		ioasid_device_unbind(c, dev);
	if (nested)
		ioasid_nested_destroy(c, nested);
	if (parent)
		ioasid_ioas_destroy(c, parent);
	if (ioas)
		ioasid_ioas_destroy(c, ioas);
}

static void suite_remote(void)
{
	struct daemon_opts o = { .backend = "iommufd:mock",
				 .log_level = "info" };
	struct ioasid_ctx *a = NULL, *b = NULL;
	struct daemon_fixture d;
	int m = kb_memfd(LEN, 0);

	if (!getenv("IOASIDD") && access("/usr/sbin/ioasidd", X_OK) == 0)
		setenv("IOASIDD", "/usr/sbin/ioasidd", 0);
	if (access(daemon_binary(), X_OK) < 0) {
		tap_skip("no ioasidd in this guest", "through ioasidd");
		close(m);
		return;
	}
	if (!tap_ok(daemon_start(&d, &o) == 0, "ioasidd --backend "
		    "iommufd:mock started")) {
		close(m);
		return;
	}
	if (tap_ok(ioasid_new(d.uri, &a) == 0 && ioasid_new(d.uri, &b) == 0,
		   "clients A and B connected"))
		remote_queues(a, b, m);
	if (a)
		ioasid_unref(a);
	if (b)
		ioasid_unref(b);
	close(m);
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
	suite_round_trip();
	suite_nested();
	suite_viommu();
	suite_late();
	suite_nested_pasid();
	suite_edu();
	suite_remote();
	ioasid_unref(ctx);
	return tap_done();
}
