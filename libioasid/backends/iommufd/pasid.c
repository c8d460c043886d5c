/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's PASIDs: a device's PASIDs attached to HWPTs,
 * paging or nested (VFIO_DEVICE_ATTACH_IOMMUFD_PT with a PASID, or the mock's
 * IOMMU_TEST_OP_PASID_*), and PASID-tagged mock DMA.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/iommufd/priv.h"

/* ---- PASIDs -------------------------------------------------------------- */

static struct ifd_pasid *find_pasid(struct be_device *dev, uint32_t pasid)
{
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		if (dev->pasids[i].pasid == pasid)
			return &dev->pasids[i];
	return NULL;
}


/*
 * The kernel attaches, and replaces without a gap: a real device with
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT and VFIO_DEVICE_ATTACH_PASID (6.15; it
 * replaces a PASID already attached), a mock one with
 * IOMMU_TEST_OP_PASID_ATTACH / _REPLACE, its DMA access following.
 */
static int kernel_pasid_attach(struct be_device *dev, uint32_t pasid,
			       uint32_t hwpt, bool replace)
{
	struct kvfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .flags = KVFIO_DEVICE_ATTACH_PASID,
		.pt_id = hwpt, .pasid = pasid,
	};
	struct ifd_test_cmd c = {
		.op = replace ? IFD_TEST_OP_PASID_REPLACE :
				IFD_TEST_OP_PASID_ATTACH,
		.id = dev->stdev_id, .pasid = { .pasid = pasid, .pt_id = hwpt },
	};

	if (dev->mock)
		return iommufd_mock_cmd(dev->tenant, &c);
	return kioctl(dev->fd, KVFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}

static int kernel_pasid_detach(struct be_device *dev, uint32_t pasid)
{
	struct kvfio_device_detach_iommufd_pt d = {
		.argsz = sizeof(d), .flags = KVFIO_DEVICE_DETACH_PASID,
		.pasid = pasid,
	};
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_PASID_DETACH, .id = dev->stdev_id,
		.pasid = { .pasid = pasid },
	};

	if (dev->mock)
		return iommufd_mock_cmd(dev->tenant, &c);
	return kioctl(dev->fd, KVFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
}

/*
 * @pasid on HWPT @hwpt: a domain's (@d) or a nested HWPT's (@n, over @d);
 * a mock device's DMA access for it goes to @d's IOAS (the mock's nested
 * domain translates through its parent).
 */
static int pasid_on(struct be_device *dev, uint32_t pasid,
		    struct be_domain *d, struct be_nested *n, uint32_t hwpt)
{
	struct ifd_pasid *p = find_pasid(dev, pasid), *v;
	int fd = -1, r;

	if (!dev->max_pasid_log2) {
		warn(dev->be->log, "iommufd: the kernel gives %s no PASIDs "
		     "(IOMMU_GET_HW_INFO: out_max_pasid_log2 0)",
		     dev->inv->info.name);
		return -EOPNOTSUPP;
	}
	if (!p) {
		v = realloc(dev->pasids, (dev->nr_pasids + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		dev->pasids = v;
		if (dev->mock) {
			r = iommufd_mock_pasid_access(dev, d->ioas->id, &fd);
			if (r < 0)
				return r;
		}
	}
	/*
	 * A successor's attach of a PASID the predecessor attached: a
	 * replace by the same HWPT (a real device's attach replaces anyway);
	 * one the kernel no longer has attached is attached again.
	 */
	if (!p && dev->mock && dev->tenant->adopting) {
		r = kernel_pasid_attach(dev, pasid, hwpt, true);
		if (r < 0)
			r = kernel_pasid_attach(dev, pasid, hwpt, false);
	} else {
		r = kernel_pasid_attach(dev, pasid, hwpt, p != NULL);
	}
	if (r == 0 && p && p->access_fd >= 0)
		r = iommufd_mock_access_move(dev, p->access_fd, d->ioas->id);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;	/* EINVAL: incompatible, the core tries on */
	}
	if (!p) {
		p = &dev->pasids[dev->nr_pasids++];
		p->pasid = pasid;
		p->access_fd = fd;
	}
	p->domain = d;
	p->nested = n;
	return 0;
}

int iommufd_pasid_attach(struct be_device *dev, uint32_t pasid,
			 struct be_domain *d)
{
	if (iommufd_crosses_mock(dev, d))
		return -EINVAL;	/* incompatible: the core tries on */
	return pasid_on(dev, pasid, d, NULL, d->hwpt_id);
}

/* The nested HWPT was allocated PASID-capable (nested.c) for such devices. */
int iommufd_pasid_attach_nested(struct be_device *dev, uint32_t pasid,
				struct be_nested *n)
{
	return pasid_on(dev, pasid, n->parent, n, n->hwpt_id);
}

const struct be_nested *iommufd_pasid_nested(struct be_device *dev,
					    uint32_t pasid)
{
	const struct ifd_pasid *p = find_pasid(dev, pasid);

	return p ? p->nested : NULL;
}

int iommufd_pasid_move(struct be_device *dev, uint32_t pasid,
		       uint32_t hwpt_id)
{
	return kernel_pasid_attach(dev, pasid, hwpt_id, true);
}

int iommufd_pasid_detach(struct be_device *dev, uint32_t pasid)
{
	struct ifd_pasid *p = find_pasid(dev, pasid);
	int r;

	if (!p)
		return -ENOENT;
	/* a replay given up: the predecessor's PASID stays (as detach) */
	r = dev->tenant->adopting ? 0 : kernel_pasid_detach(dev, pasid);
	if (r < 0) {
		err(dev->be->log, "iommufd: detach of PASID %u of %s: %s", pasid,
		    dev->inv->info.name, strerror(-r));
		return r;
	}
	if (p->access_fd >= 0)
		close(p->access_fd);
	*p = dev->pasids[--dev->nr_pasids];
	return 0;
}


int iommufd_dma_pasid(struct be_device *dev, uint32_t pasid,
		      uint64_t iova, void *buf, uint64_t length,
		      uint32_t flags, uint64_t *done)
{
	struct ifd_pasid *p = find_pasid(dev, pasid);

	*done = 0;
	if (!dev->mock)
		return -EOPNOTSUPP;
	/* a PASID attached nowhere: the empty access of the device */
	return iommufd_mock_dma_via(dev, p ? p->access_fd : -1, iova, buf,
				    length, flags, done, p ? p->domain : NULL,
				    true, pasid);
}
