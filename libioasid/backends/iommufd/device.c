/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's devices: VFIO cdevs bound to a session's iommufd
 * (or mock devices, mock.c), their IOMMU_GET_HW_INFO, attach, replace
 * and detach.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/iommufd/priv.h"

/* ---- devices ------------------------------------------------------------- */

/*
 * Bind the cdev to the session's iommufd: from then on the kernel resolves
 * the device's ATTACH_IOMMUFD_PT ids in that iommufd only, so whoever
 * holds the device file (a VMM given it by ioasid_device_get_fd) can put
 * it in this session's IOASes and HWPTs and nowhere else.
 */
static int bind_device(struct backend *be, struct be_device *dev)
{
	struct kvfio_device_bind_iommufd b = {
		.argsz = sizeof(b), .iommufd = dev->tenant->fd,
	};
	int r = kioctl(dev->fd, KVFIO_DEVICE_BIND_IOMMUFD, &b);

	if (r == -EINVAL || r == -EBUSY)
		warn(be->log, "iommufd: VFIO_DEVICE_BIND_IOMMUFD of %s: %s "
		     "(the device is bound through another open file, or its "
		     "group is in use through the legacy VFIO interface)",
		     dev->inv->info.name, strerror(-r));
	else if (r < 0)
		warn(be->log, "iommufd: VFIO_DEVICE_BIND_IOMMUFD of %s: %s",
		     dev->inv->info.name, strerror(-r));
	if (r == 0)
		dev->dev_id = b.out_devid;
	return r;
}

/* Ask the kernel about the IOMMU; check it says what sysfs said. */
static void hw_info(struct backend *be, struct be_device *dev)
{
	struct ifd_hw_info_vtd vtd = { 0 };
	struct ifd_hw_info hi = {
		.size = sizeof(hi), .dev_id = dev->dev_id,
		.data_len = sizeof(vtd), .data_uptr = (uint64_t)(uintptr_t)&vtd,
	};
	const struct ioasid_iommu_info *u = &dev->unit->info;
	int r = kioctl(dev->tenant->fd, IFD_GET_HW_INFO, &hi);

	if (r < 0) {
		warn(be->log, "iommufd: IOMMU_GET_HW_INFO for %s: %s",
		     dev->inv->info.name, strerror(-r));
		return;
	}
	dev->hw_type = hi.out_data_type;
	dev->hw_caps = hi.out_capabilities;
	dev->max_pasid_log2 = hi.out_max_pasid_log2;
	if (dev->hw_type != IFD_HW_INFO_TYPE_INTEL_VTD)
		return;
	dev->cap = vtd.cap_reg;
	dev->ecap = vtd.ecap_reg;
	if ((u->flags & IOASID_IOMMU_CAPS_KNOWN) &&
	    (u->cap != dev->cap || u->ecap != dev->ecap))
		warn(be->log, "iommufd: %s: the kernel reports VT-d cap 0x%llx "
		     "ecap 0x%llx, sysfs said cap 0x%llx ecap 0x%llx",
		     u->name, (unsigned long long)dev->cap,
		     (unsigned long long)dev->ecap, (unsigned long long)u->cap,
		     (unsigned long long)u->ecap);
}

/*
 * Open the device's cdev: its name now (a rebind to vfio-pci may have
 * given it another one since the inventory was read), else the inventory's.
 */
static int open_cdev(struct backend *be, const struct inv_device *inv, int *fd)
{
	char path[300];	/* "/dev/vfio/devices/" + a directory entry */

	if (!iommufd_cdev_now(inv->info.name, path, sizeof(path)))
		snprintf(path, sizeof(path), "%s", inv->vfio_dev_path);
	if (!path[0])
		return -ENODEV;
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0) {
		warn(be->log, "iommufd: cannot open %s: %s", path,
		     strerror(errno));
		return -errno;
	}
	return 0;
}


int iommufd_device_open(struct backend *be, struct be_tenant *t,
			const struct inv_device *inv,
			const struct inv_iommu *unit, uint32_t dev_id,
			int vfio_fd, struct be_device **out)
{
	struct be_device *dev = calloc(1, sizeof(*dev));
	int r;

	if (!dev)
		return -ENOMEM;
	dev->be = be;
	dev->tenant = t;
	dev->inv = inv;
	dev->unit = unit;
	dev->fd = vfio_fd;
	dev->access_fd = -1;
	dev->core_id = dev_id;
	if (iommufd_adopt_device(t, dev))
		goto bound;
	if (inv->info.flags & IOASID_DEVICE_MOCK) {
		/* the core passes no file for one */
		r = iommufd_mock_open(dev);
		if (r < 0) {
			free(dev);
			return r;
		}
		goto bound;
	}
	if (dev->fd < 0) {
		r = open_cdev(be, inv, &dev->fd);
		if (r < 0) {
			free(dev);
			return r;
		}
		dev->own_fd = true;
	}
	r = bind_device(be, dev);
	if (r < 0) {
		if (dev->own_fd)
			close(dev->fd);
		free(dev);
		return r;
	}
bound:
	hw_info(be, dev);
	dev->next = t->devices;
	t->devices = dev;
	*out = dev;
	return 0;
}

int iommufd_detach(struct be_device *dev, char *why, size_t len)
{
	struct kvfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };
	int r;

	/*
	 * A replay given up (its core freed before ->adopt_end) leaves the
	 * predecessor's device where it is: a mock one parked would take
	 * the predecessor's HWPT, and its fault queue, from it.
	 */
	if (dev->tenant->adopting)
		r = 0;
	else if (dev->mock)
		r = iommufd_mock_attach(dev, dev->park_hwpt,
					dev->tenant->park_ioas);
	else
		r = kioctl(dev->fd, KVFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
	if (r < 0) {
		snprintf(why, len, "%s: %s", dev->mock ?
			 "IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE to the empty IOAS" :
			 "VFIO_DEVICE_DETACH_IOMMUFD_PT", strerror(-r));
		err(dev->be->log, "iommufd: %s of %s", why,
		    dev->inv->info.name);
		return r;	/* still attached, as the kernel says */
	}
	dev->domain = NULL;
	dev->nested = NULL;
	return 0;
}

void iommufd_device_close(struct be_device *dev)
{
	struct be_device **p = &dev->tenant->devices;

	char why[128];

	if (dev->domain && !dev->tenant->adopting)
		iommufd_detach(dev, why, sizeof(why));	/* logged */
	while (*p && *p != dev)
		p = &(*p)->next;
	if (*p)
		*p = dev->next;
	/*
	 * Closing the cdev unbinds it.  A caller's fd stays bound (to this
	 * iommufd, detached) until the caller closes it too.
	 */
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		if (dev->pasids[i].access_fd >= 0)
			close(dev->pasids[i].access_fd);
	free(dev->pasids);
	if (dev->mock)
		iommufd_mock_close(dev);
	else if (dev->own_fd)
		close(dev->fd);
	free(dev);
}

/*
 * Attach to HWPT @pt_id (of IOAS @ioas_id), or replace the current one
 * without a gap (the kernel's replace): a real device with
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT, a mock one with
 * IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, its DMA access moving to @ioas_id.
 */
int iommufd_attach_pt(struct be_device *dev, uint32_t pt_id, uint32_t ioas_id)
{
	struct kvfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .pt_id = pt_id,
	};

	if (dev->mock)
		return iommufd_mock_attach(dev, pt_id, ioas_id);
	return kioctl(dev->fd, KVFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}

/*
 * A mock device and a real IOMMU's HWPT, or a real device and the mock's:
 * incompatible, without asking the kernel.  Linux 7.3 does not refuse a
 * mock device offered a VT-d HWPT (the core offers every domain of the
 * IOAS's coherency class in turn): it oopses.
 */
bool iommufd_crosses_mock(const struct be_device *dev,
			  const struct be_domain *d)
{
	return dev->mock != !strcmp(d->unit->info.kind, MOCK_KIND);
}

int iommufd_attach(struct be_device *dev, struct be_domain *d)
{
	int r;

	if (iommufd_crosses_mock(dev, d))
		return -EINVAL;	/* incompatible: the core tries on */
	r = iommufd_attach_pt(dev, d->hwpt_id, d->ioas->id);
	if (r < 0)
		return r;	/* EINVAL: incompatible, the core tries on */
	dev->domain = d;
	dev->nested = NULL;
	return 0;
}

int iommufd_device_vfio_fd(struct be_device *dev)
{
	return dev->mock ? -1 : dev->fd;
}
