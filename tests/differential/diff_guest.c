/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diff_guest - the differential scenarios on the iommufd backend, in the
 * tests/vm guest (make check-vm).  Results go to the serial console as
 * "# DIFF ..." lines (TAP diagnostics) between the rig's BEGIN/END
 * markers; compare.sh takes them from the boot's log and matches them
 * with diff_sim's.  One TAP line per scenario says it ran.
 *
 * The edu device moves data through its own 4 KiB buffer only, so a
 * device write is: data -> staging page -> buffer -> IOVA, and a device
 * read: IOVA -> buffer -> staging page (diff.h).
 *
 * Then the mock scenarios on "iommufd:mock"'s mock0 (dirty tracking,
 * nested tables and a selftest vIOMMU, which QEMU's VT-d lacks): its DMA
 * is the library's (an in-kernel access), and the page it dirties is
 * marked by the mock IOMMU itself (IOMMU_TEST_OP_DIRTY on the device's
 * HWPT).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "../kernel/kbtest.h"
#include "diff.h"

static struct edu edu;

static void edu_write(struct diff_env *e, uint64_t iova, const uint8_t *data,
		      uint32_t len)
{
	if (pwrite(e->stage_fd, data, len, 0) != (ssize_t)len)
		return;
	edu_to_buf(&edu, DIFF_STAGE_IOVA, 0, len);
	edu_to_mem(&edu, 0, iova, len);
}

static void edu_read(struct diff_env *e, uint64_t iova, uint8_t *out,
		     uint32_t len)
{
	uint8_t marker[DIFF_PROBE_LEN];

	if (len > sizeof(marker))
		return;
	memset(marker, 0xee, len);
	if (pwrite(e->stage_fd, marker, len, 0) != (ssize_t)len)
		return;
	edu_to_buf(&edu, DIFF_STAGE_IOVA, 0, len);	/* buffer = marker */
	edu_to_buf(&edu, iova, 0, len);
	edu_to_mem(&edu, 0, DIFF_STAGE_IOVA, len);
	if (pread(e->stage_fd, out, len, 0) != (ssize_t)len)
		memset(out, 0, len);
}

static const struct diff_dma edu_dma = {
	.write = edu_write,
	.read = edu_read,
};

static void mock_write(struct diff_env *e, uint64_t iova, const uint8_t *data,
		       uint32_t len)
{
	ioasid_device_dma(e->ctx, e->dev, iova, (void *)data, len,
			  IOASID_DMA_WRITE, NULL);
}

static void mock_read(struct diff_env *e, uint64_t iova, uint8_t *out,
		      uint32_t len)
{
	ioasid_device_dma(e->ctx, e->dev, iova, out, len, 0, NULL);
}

/* IOMMU_TEST_OP_DIRTY of the one page on the device's HWPT. */
static void mock_dirty(struct diff_env *e, uint64_t iova)
{
	struct be_device *bd = kb_be_device(e->ctx, e->dev);
	struct be_domain *bdom = kb_be_domain(e->ctx, e->dev);
	uint64_t bit = 1;
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_DIRTY,
		.dirty = { .iova = iova, .length = 4096, .page_size = 4096,
			   .uptr = (uint64_t)(uintptr_t)&bit },
	};

	if (!bd || !bdom)
		return;
	c.id = iommufd_test_hwpt_id(bdom);
	if (ioctl(iommufd_test_device_iommufd(bd), IFD_TEST_CMD, &c) < 0)
		tap_diag("IOMMU_TEST_OP_DIRTY at 0x%llx: %s",
			 (unsigned long long)iova, strerror(errno));
}

static const struct diff_dma mock_dma = {
	.write = mock_write,
	.read = mock_read,
	.dirty = mock_dirty,
};

static const struct ioasid_nested_selftest mock_st = { .iotlb = 0xbadbeef };

/*
 * A scenario's verdict is not decided here: its DIFF lines are compared
 * with the simulator's by tests/differential/compare.sh after the boot.
 * Here only skips are reported, and at the end that every scenario ran.
 */
static unsigned int nr_ran, nr_skipped;

static void ran(struct diff_env *e, const char *name, const char *skip)
{
	if (skip) {
		tap_skip(skip, "diff: %s", name);
		nr_skipped++;
	} else {
		nr_ran++;
	}
}

/* The mock scenarios, in the same results (keys "mock_..."). */
static void run_mock(const struct diff_env *edu_env)
{
	struct diff_env e = {
		.backend = "iommufd:mock", .dma = &mock_dma, .prefix = "# ",
		.out = stdout, .stage_fd = edu_env->stage_fd,
		.nested_type = IOASID_NESTED_SELFTEST, .nested_data = &mock_st,
		.nested_len = sizeof(mock_st),
		.viommu_type = IOASID_VIOMMU_SELFTEST,
	};
	int r = kb_mock_ctx(&e.ctx);

	nr_ran = nr_skipped = 0;
	if (r == -EOPNOTSUPP || r == -ENODEV) {
		tap_skip(ioasid_last_error(NULL), "diff: the mock scenarios");
		return;
	}
	snprintf(e.dev_name, sizeof(e.dev_name), "mock0");
	if (!tap_ok(r == 0 && ioasid_device_bind(e.ctx, "mock0", -1,
						 &e.dev) == 0,
		    "iommufd:mock, mock0 bound (%s)",
		    r ? ioasid_last_error(NULL) : kb_err(e.ctx))) {
		if (r == 0)
			ioasid_unref(e.ctx);
		return;
	}
	printf("# DIFF-BEGIN %u mock scenarios\n", diff_nr_mock_scenarios());
	diff_run_mock(&e, ran);
	printf("# DIFF-END\n");
	tap_ok(nr_ran + nr_skipped == diff_nr_mock_scenarios() && nr_ran > 0,
	       "all %u mock scenarios ran (%u skipped); compare.sh judges "
	       "their results", diff_nr_mock_scenarios(), nr_skipped);
	ioasid_device_unbind(e.ctx, e.dev);
	ioasid_unref(e.ctx);
}

int main(void)
{
	struct diff_env e = {
		.backend = "iommufd", .dma = &edu_dma, .prefix = "# ",
		.out = stdout,
	};
	char path[96];
	int cdev = -1, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	r = ioasid_new("iommufd", &e.ctx);
	if (!tap_ok(r == 0, "ioasid_new(\"iommufd\") (%s)",
		    r ? strerror(-r) : "ok"))
		return tap_done();
	if (!tap_ok(diff_find_device(e.ctx, e.dev_name, sizeof(e.dev_name)) ==
		    0, "edu in the inventory"))
		goto out;
	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio0");
	{
		struct ioasid_device_info di;

		if (ioasid_device_get_info(e.ctx, e.dev_name, &di) == 0)
			snprintf(path, sizeof(path), "/dev/vfio/devices/%s",
				 di.vfio_cdev);
	}
	cdev = open(path, O_RDWR | O_CLOEXEC);
	e.stage_fd = kb_memfd(4096, 0);
	if (!tap_ok(cdev >= 0 && e.stage_fd >= 0 &&
		    ioasid_device_bind(e.ctx, e.dev_name, cdev, &e.dev) == 0 &&
		    edu_open(&edu, cdev) == 0,
		    "edu bound with our cdev, BAR0 mapped (%s)",
		    kb_err(e.ctx)))
		goto out;
	printf("# DIFF-BEGIN %u scenarios\n", diff_nr_scenarios());
	diff_run_all(&e, ran);
	printf("# DIFF-END\n");
	tap_ok(nr_ran + nr_skipped == diff_nr_scenarios() && nr_ran > 0,
	       "all %u scenarios ran (%u skipped); compare.sh judges their "
	       "results", diff_nr_scenarios(), nr_skipped);
	edu_close(&edu);
	ioasid_device_unbind(e.ctx, e.dev);
	run_mock(&e);
out:
	ioasid_unref(e.ctx);
	if (cdev >= 0)
		close(cdev);
	if (e.stage_fd > 0)
		close(e.stage_fd);
	return tap_done();
}
