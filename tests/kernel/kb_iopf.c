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
 * queue for an IOAS that has a HWPT already (EBUSY), a nest-parent IOAS
 * (EOPNOTSUPP), a nested table (EOPNOTSUPP).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

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
	/* an IOAS whose HWPT exists already: the kernel took no fault id */
	tap_ok(ioasid_device_attach(ctx, dev, ioas, 0) == 0 &&
	       ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &ofq, &ofd) ==
	       -EBUSY, "an IOAS with a HWPT already: EBUSY (%s)", kb_err(ctx));
out:
	if (fd >= 0)
		close(fd);
	if (dev)
		ioasid_device_unbind(ctx, dev);
	if (ioas)
		ioasid_ioas_destroy(ctx, ioas);
	close(m);
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
	ioasid_unref(ctx);
	return tap_done();
}
