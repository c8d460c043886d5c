/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's mock devices ("iommufd:mock"): the kernel's
 * selftest driver (CONFIG_IOMMUFD_TEST), its inventory, devices, DMA
 * through in-kernel accesses, and the fault records of that DMA.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/iommufd/priv.h"

/* ---- mock devices ("iommufd:mock") --------------------------------------- */

/*
 * With CONFIG_IOMMUFD_TEST the kernel's selftest driver makes devices
 * behind a mock IOMMU on request (IOMMU_TEST_OP_MOCK_DOMAIN): each is
 * bound to the iommufd that asked, with a dev_id like a VFIO cdev's, so
 * HWPT_ALLOC, IOAS mappings and everything the kernel does with an
 * attached device run its real code.  The URI "iommufd:mock[=N]" offers
 * N of them (unit "iommufd_mock", devices "mock0"...), never otherwise:
 * a production kernel has no such driver and a production daemon must
 * not pretend to have devices.
 *
 * A mock device exists from its bind to its unbind.  The kernel attaches
 * it at creation, so it is created on (and, detached, moved back to) an
 * empty IOAS of its tenant that nobody maps: it translates nothing there,
 * which is what detached means.  Its "DMA" (->dma, for tests) is an
 * in-kernel access (IOMMU_TEST_OP_CREATE_ACCESS / ACCESS_RW) kept on the
 * IOAS the device is attached to: it reads and writes the pages the
 * kernel's IOAS holds at an IOVA, with the mapping's permissions.
 */

int iommufd_mock_cmd(struct be_tenant *t, struct ifd_test_cmd *c)
{
	c->size = sizeof(*c);
	return kioctl(t->fd, IFD_TEST_CMD, c);
}

/*
 * What the kernel's mock IOMMU really does, asked once at open on a
 * throwaway device in the probing iommufd (closing it destroys them all):
 * dirty tracking when GET_HW_INFO says so and a HWPT allocated with
 * IOMMU_HWPT_ALLOC_DIRTY_TRACKING starts tracking; nesting when a nested
 * HWPT (IOMMU_HWPT_DATA_SELFTEST) can be had over a nest-parent one.
 * The unit advertises only these (iommufd_mock_inventory).
 */
void iommufd_mock_probe(int fd, bool *dirty, bool *nesting)
{
	struct ifd_ioas_alloc a = { .size = sizeof(a) };
	struct ifd_test_cmd c = { .size = sizeof(c),
				  .op = IFD_TEST_OP_MOCK_DOMAIN };
	struct ifd_hw_info hi = { .size = sizeof(hi) };
	struct ifd_hwpt_alloc h = { .size = sizeof(h) };
	struct ifd_hwpt_set_dirty_tracking s = {
		.size = sizeof(s), .flags = IFD_HWPT_DIRTY_TRACKING_ENABLE,
	};
	uint32_t iotlb = 0;

	*dirty = *nesting = false;
	if (kioctl(fd, IFD_IOAS_ALLOC, &a) < 0)
		return;
	c.id = a.out_ioas_id;
	if (kioctl(fd, IFD_TEST_CMD, &c) < 0)
		return;
	hi.dev_id = c.mock_domain.out_idev_id;
	h.dev_id = c.mock_domain.out_idev_id;
	h.pt_id = a.out_ioas_id;
	h.flags = IFD_HWPT_ALLOC_DIRTY_TRACKING;
	if (kioctl(fd, IFD_GET_HW_INFO, &hi) == 0 &&
	    (hi.out_capabilities & IFD_HW_CAP_DIRTY_TRACKING) &&
	    kioctl(fd, IFD_HWPT_ALLOC, &h) == 0) {
		s.hwpt_id = h.out_hwpt_id;
		*dirty = kioctl(fd, IFD_HWPT_SET_DIRTY_TRACKING, &s) == 0;
	}
	h = (struct ifd_hwpt_alloc){
		.size = sizeof(h), .dev_id = c.mock_domain.out_idev_id,
		.pt_id = a.out_ioas_id, .flags = IFD_HWPT_ALLOC_NEST_PARENT,
	};
	if (kioctl(fd, IFD_HWPT_ALLOC, &h) < 0)
		return;
	h = (struct ifd_hwpt_alloc){
		.size = sizeof(h), .dev_id = c.mock_domain.out_idev_id,
		.pt_id = h.out_hwpt_id, .data_type = IFD_HWPT_DATA_SELFTEST,
		.data_len = sizeof(iotlb),
		.data_uptr = (uint64_t)(uintptr_t)&iotlb,
	};
	*nesting = kioctl(fd, IFD_HWPT_ALLOC, &h) == 0;
}

int iommufd_mock_inventory(struct backend *be, struct inventory *inv)
{
	struct inv_iommu *u;
	struct inv_device *d;
	int r;

	r = inventory_add_iommu(inv, &u);
	if (r < 0)
		goto fail;
	snprintf(u->info.name, sizeof(u->info.name), MOCK_UNIT);
	snprintf(u->info.kind, sizeof(u->info.kind), MOCK_KIND);
	/* capabilities: what the library can use of the mock IOMMU */
	u->info.flags = IOASID_IOMMU_CAPS_KNOWN | IOASID_IOMMU_PASID |
			(be->mock_dirty ? IOASID_IOMMU_DIRTY_TRACKING : 0) |
			(be->mock_nesting ? IOASID_IOMMU_NESTING : 0) |
			(be->mock_nesting && be->mock_viommu == 0 ?
			 IOASID_IOMMU_VIOMMU : 0);
	u->info.page_sizes = SZ_4K;
	u->info.addr_width = 31;	/* MOCK_APERTURE_LAST + 1 */
	r = inventory_add_range(&u->reserved, &u->nr_reserved, 0,
				IFD_MOCK_APERTURE_START - 1);
	for (uint32_t i = 0; r == 0 && i < be->nr_mock; i++) {
		r = inventory_add_device(inv, &d);
		if (r < 0)
			break;
		snprintf(d->info.name, sizeof(d->info.name), "mock%u", i);
		snprintf(d->info.driver, sizeof(d->info.driver), "iommufd_mock");
		snprintf(d->info.iommu, sizeof(d->info.iommu), MOCK_UNIT);
		d->info.flags = IOASID_DEVICE_MOCK | IOASID_DEVICE_TRANSLATES;
		d->info.group = MOCK_GROUP_BASE + i;
		d->info.pasid_bits = IFD_MOCK_PASID_WIDTH;
	}
	if (r < 0)
		goto fail;
	inventory_count_devices(inv);
	return 0;
fail:
	inventory_release(inv);
	return r;
}

/* The tenant's empty IOAS, for as long as one of its mock devices lives. */
static int park_get(struct be_tenant *t)
{
	struct ifd_ioas_alloc a = { .size = sizeof(a) };
	int r;

	if (t->nr_parked) {
		t->nr_parked++;
		return 0;
	}
	r = kioctl(t->fd, IFD_IOAS_ALLOC, &a);
	if (r < 0)
		return r;
	t->park_ioas = a.out_ioas_id;
	t->nr_parked = 1;
	return 0;
}

static void park_put(struct be_tenant *t)
{
	if (--t->nr_parked)
		return;
	iommufd_destroy(t, t->park_ioas, "IOAS (mock devices' empty one)");
	t->park_ioas = 0;
}

static int mock_replace(struct be_device *dev, uint32_t pt_id);

static int mock_create(struct be_device *dev)
{
	struct be_tenant *t = dev->tenant;
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_MOCK_DOMAIN_FLAGS, .id = t->park_ioas,
		.mock_domain.dev_flags = IFD_MOCK_DEVICE_PASID,
	};
	struct ifd_hwpt_alloc h = {
		.size = sizeof(h), .pt_id = t->park_ioas,
		.flags = IFD_HWPT_ALLOC_PASID,
	};
	int r = iommufd_mock_cmd(t, &c);

	if (r < 0) {
		err(dev->be->log, "iommufd: IOMMU_TEST_OP_MOCK_DOMAIN for %s: %s",
		    dev->inv->info.name, strerror(-r));
		return r;
	}
	dev->stdev_id = c.mock_domain.out_stdev_id;
	dev->dev_id = c.mock_domain.out_idev_id;
	/*
	 * Parked on a PASID-capable HWPT of its own: the kernel's automatic
	 * one is not, and a device whose PASIDs are attached may move only
	 * between PASID-capable HWPTs.
	 */
	h.dev_id = dev->dev_id;
	r = kioctl(t->fd, IFD_HWPT_ALLOC, &h);
	if (r == 0) {
		dev->park_hwpt = h.out_hwpt_id;
		r = mock_replace(dev, dev->park_hwpt);
		if (r < 0)
			iommufd_destroy(t, dev->park_hwpt, "HWPT");
	}
	if (r < 0) {
		err(dev->be->log, "iommufd: a PASID-capable HWPT to park %s on: "
		    "%s", dev->inv->info.name, strerror(-r));
		iommufd_destroy(t, dev->stdev_id, "mock device");
		return r;
	}
	c = (struct ifd_test_cmd){
		.op = IFD_TEST_OP_CREATE_ACCESS, .id = t->park_ioas,
	};
	r = iommufd_mock_cmd(t, &c);
	if (r < 0) {
		err(dev->be->log, "iommufd: IOMMU_TEST_OP_CREATE_ACCESS for %s: "
		    "%s", dev->inv->info.name, strerror(-r));
		iommufd_destroy(t, dev->stdev_id, "mock device");
		iommufd_destroy(t, dev->park_hwpt, "HWPT");
		return r;
	}
	dev->access_fd = (int)c.create_access.out_access_fd;
	return 0;
}

/* Bind: the kernel makes the device, bound to the tenant's iommufd. */
int iommufd_mock_open(struct be_device *dev)
{
	int r = park_get(dev->tenant);

	if (r < 0)
		return r;
	r = mock_create(dev);
	if (r < 0) {
		park_put(dev->tenant);
		return r;
	}
	dev->mock = true;
	dev->fd = -1;
	pthread_mutex_init(&dev->fault_lock, NULL);
	return 0;
}

void iommufd_mock_close(struct be_device *dev)
{
	close(dev->access_fd);
	/* detaches, unbinds and removes the kernel's device */
	iommufd_destroy(dev->tenant, dev->stdev_id, "mock device");
	iommufd_destroy(dev->tenant, dev->park_hwpt, "HWPT");
	park_put(dev->tenant);
	pthread_mutex_destroy(&dev->fault_lock);
}

static int mock_replace(struct be_device *dev, uint32_t pt_id)
{
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_MOCK_DOMAIN_REPLACE, .id = dev->stdev_id,
		.mock_domain_replace.pt_id = pt_id,
	};

	return iommufd_mock_cmd(dev->tenant, &c);
}

static int mock_access_on(struct be_device *dev, uint32_t ioas_id)
{
	return iommufd_mock_access_move(dev, dev->access_fd, ioas_id);
}

/*
 * Attach (replace without a gap) to HWPT or IOAS @pt_id of IOAS @ioas_id,
 * and move the device's DMA access there too; all or nothing.
 */
int iommufd_mock_attach(struct be_device *dev, uint32_t pt_id,
			uint32_t ioas_id)
{
	uint32_t old_pt = dev->nested ? dev->nested->hwpt_id :
			  dev->domain ? dev->domain->hwpt_id : dev->park_hwpt;
	int r = mock_replace(dev, pt_id);

	if (r < 0)
		return r;
	r = mock_access_on(dev, ioas_id);
	if (r < 0) {
		err(dev->be->log, "iommufd: IOMMU_TEST_OP_ACCESS_REPLACE_IOAS "
		    "of %s to IOAS %u: %s", dev->inv->info.name, ioas_id,
		    strerror(-r));
		if (mock_replace(dev, old_pt) < 0)
			err(dev->be->log, "iommufd: %s could not be put back "
			    "on %u", dev->inv->info.name, old_pt);
	}
	return r;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mock_fault(struct be_device *dev, uint64_t iova, uint32_t flags,
		       uint32_t reason)
{
	struct ioasid_fault f = {
		.size = sizeof(f),
		.flags = flags & IOASID_DMA_WRITE ? IOASID_MAP_WRITE :
						   IOASID_MAP_READ,
		.dev_id = dev->core_id,
		.reason = reason,
		.iova = iova,
		.timestamp_ns = mono_ns(),
	};

	pthread_mutex_lock(&dev->fault_lock);
	if (dev->fault_len < MOCK_FAULTS) {
		dev->faults[(dev->fault_head + dev->fault_len++) %
			    MOCK_FAULTS] = f;
	} else {
		dev->faults_lost++;
	}
	pthread_mutex_unlock(&dev->fault_lock);
}

/*
 * A mock device's DMA: IOMMU_TEST_OP_ACCESS_RW through access @access_fd,
 * kept on the IOAS the device (or its PASID) is attached to, in pieces
 * the driver takes (16 MiB); -1: attached nowhere, blocked.  A real
 * device's DMA is the device's own business: -EOPNOTSUPP.
 */
int iommufd_mock_dma_via(struct be_device *dev, int access_fd, uint64_t iova,
			 void *buf, uint64_t length, uint32_t flags,
			 uint64_t *done, struct be_domain *dom, bool has_pasid,
			 uint32_t pasid)
{
	bool attached = dom != NULL;
	bool pri = flags & BE_DMA_PAGE_REQUEST;

	flags &= ~BE_DMA_PAGE_REQUEST;
	*done = 0;
	if (flags & IOASID_DMA_NO_SNOOP)
		return -EOPNOTSUPP;	/* the mock has no such attribute */
	if (access_fd < 0) {
		mock_fault(dev, iova, flags, IOASID_FAULT_BLOCKED);
		return -EFAULT;
	}
	while (*done < length) {
		uint64_t n = length - *done;
		struct ifd_test_cmd c = { .op = IFD_TEST_OP_ACCESS_RW,
					  .id = (uint32_t)access_fd };
		int r;

		if (n > IFD_MOCK_ACCESS_RW_MAX)
			n = IFD_MOCK_ACCESS_RW_MAX;
		c.access_rw.iova = iova + *done;
		c.access_rw.length = n;
		c.access_rw.uptr = (uint64_t)(uintptr_t)((uint8_t *)buf + *done);
		c.access_rw.flags = flags & IOASID_DMA_WRITE ?
				    IFD_MOCK_ACCESS_RW_WRITE : 0;
		r = iommufd_mock_cmd(dev->tenant, &c);
		if (r == -EPERM) {
			mock_fault(dev, iova + *done, flags,
				   IOASID_FAULT_PERMISSION);
			return -EACCES;
		}
		if ((r == -ENOENT || r == -EINVAL || r == -EFAULT) && pri &&
		    iommufd_mock_page_request(dev, dom, has_pasid, pasid,
					      iova + *done, flags) == 0)
			return -EAGAIN;	/* a page request, not a fault */
		if (r == -ENOENT || r == -EINVAL || r == -EFAULT) {
			mock_fault(dev, iova + *done, flags, attached ?
				   IOASID_FAULT_NOT_PRESENT :
				   IOASID_FAULT_BLOCKED);
			return -EFAULT;
		}
		if (r < 0)
			return r;
		*done += n;
	}
	return 0;
}

int iommufd_dma(struct be_device *dev, uint64_t iova, void *buf,
		uint64_t length, uint32_t flags, uint64_t *done)
{
	*done = 0;
	if (!dev->mock)
		return -EOPNOTSUPP;
	return iommufd_mock_dma_via(dev, dev->access_fd, iova, buf, length,
				    flags, done, dev->domain, false, 0);
}

/* A DMA access for a PASID, on IOAS @ioas_id. */
int iommufd_mock_pasid_access(struct be_device *dev, uint32_t ioas_id,
			      int *fd)
{
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_CREATE_ACCESS, .id = ioas_id,
	};
	int r = iommufd_mock_cmd(dev->tenant, &c);

	if (r < 0)
		return r;
	*fd = (int)c.create_access.out_access_fd;
	return 0;
}

int iommufd_mock_access_move(struct be_device *dev, int fd, uint32_t ioas_id)
{
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_ACCESS_REPLACE_IOAS, .id = (uint32_t)fd,
		.access_replace_ioas.ioas_id = ioas_id,
	};

	return iommufd_mock_cmd(dev->tenant, &c);
}

int iommufd_read_faults(struct be_device *dev, struct ioasid_fault *out,
			uint32_t cap, uint32_t *nr)
{
	uint32_t n = 0;

	*nr = 0;
	if (!dev->mock)
		return 0;
	pthread_mutex_lock(&dev->fault_lock);
	for (; n < cap && dev->fault_len; n++, dev->fault_len--) {
		out[n] = dev->faults[dev->fault_head];
		dev->fault_head = (dev->fault_head + 1) % MOCK_FAULTS;
	}
	pthread_mutex_unlock(&dev->fault_lock);
	*nr = n;
	return 0;
}

uint64_t iommufd_take_faults_lost(struct be_device *dev)
{
	uint64_t n;

	if (!dev->mock)
		return 0;
	pthread_mutex_lock(&dev->fault_lock);
	n = dev->faults_lost;
	dev->faults_lost = 0;
	pthread_mutex_unlock(&dev->fault_lock);
	return n;
}
