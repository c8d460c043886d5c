/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's vIOMMUs: IOMMU_VIOMMU_ALLOC over the nest-parent
 * HWPT of a domain, IOMMU_VDEVICE_ALLOC of a device's virtual ID on it,
 * nested HWPTs allocated on it (IOMMU_HWPT_ALLOC with the vIOMMU as
 * pt_id), and IOMMU_HWPT_INVALIDATE of device caches through it.
 *
 * The kernel's vIOMMU types are its drivers' (ARM SMMUv3, Tegra241
 * CMDQV, AMD); the library's API names only the selftest mock's
 * (IOASID_VIOMMU_SELFTEST = IOMMU_VIOMMU_TYPE_SELFTEST), so vIOMMUs here
 * are for "iommufd:mock" devices and a real device is refused with the
 * reason.  Its nested HWPTs on a vIOMMU and its invalidations are the
 * selftest's (IOMMU_HWPT_DATA_SELFTEST, IOMMU_VIOMMU_INVALIDATE_DATA_
 * SELFTEST).
 *
 * What holds what, in the kernel as in the core: a vIOMMU holds its
 * parent HWPT, a vDEVICE and a nested HWPT on it hold the vIOMMU; the
 * core frees vDEVICEs and nested tables first, a vDEVICE before its
 * device's unbind, and each free here is one IOMMU_DESTROY.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/iommufd/priv.h"

struct be_viommu {
	struct be_tenant *tenant;
	struct be_domain *parent;	/* its nest-parent HWPT's domain */
	const struct inv_iommu *unit;
	uint32_t viommu_id;		/* the kernel's */
};

struct be_vdevice {
	struct be_viommu *viommu;
	uint32_t vdevice_id;		/* the kernel's */
	uint64_t virt_id;
};

static int vdevice_make(int fd, uint32_t viommu_id, uint32_t dev_id,
			uint64_t virt_id, uint32_t *out)
{
	struct ifd_vdevice_alloc a = {
		.size = sizeof(a), .viommu_id = viommu_id, .dev_id = dev_id,
		.virt_id = virt_id,
	};
	int r = kioctl(fd, IFD_VDEVICE_ALLOC, &a);

	if (r == 0)
		*out = a.out_vdevice_id;
	return r;
}

static int viommu_make(int fd, uint32_t dev_id, uint32_t hwpt_id,
		       uint32_t *out)
{
	struct ifd_viommu_alloc a = {
		.size = sizeof(a), .type = IFD_VIOMMU_TYPE_SELFTEST,
		.dev_id = dev_id, .hwpt_id = hwpt_id,
	};
	int r = kioctl(fd, IFD_VIOMMU_ALLOC, &a);

	if (r == 0)
		*out = a.out_viommu_id;
	return r;
}

/* 0, or -EOPNOTSUPP with why @dev can have no vIOMMU of @type here. */
static int refuse(const struct be_device *dev, uint32_t type, char *why,
		  size_t whylen)
{
	const struct backend *be = dev->be;

	if (type != IOASID_VIOMMU_SELFTEST) {
		snprintf(why, whylen, "the iommufd backend has vIOMMUs of type "
			 "%u (IOASID_VIOMMU_SELFTEST, the kernel's selftest "
			 "mock IOMMU) only, not %u", IOASID_VIOMMU_SELFTEST,
			 type);
		return -EOPNOTSUPP;
	}
	if (!dev->mock) {
		snprintf(why, whylen, "%s is behind %s (%s): "
			 "IOASID_VIOMMU_SELFTEST is the kernel's selftest mock "
			 "IOMMU's, and the library knows no vIOMMU type of "
			 "this IOMMU's kernel driver", dev->inv->info.name,
			 dev->unit->info.name, dev->unit->info.kind);
		return -EOPNOTSUPP;
	}
	if (be->mock_viommu < 0) {
		snprintf(why, whylen, "the kernel's mock IOMMU gave no vIOMMU "
			 "when the backend opened (%s)", be->mock_viommu_why);
		return -EOPNOTSUPP;
	}
	return 0;
}

int iommufd_viommu_alloc(struct be_domain *parent, struct be_device *dev,
			 uint32_t type, struct be_viommu **out, char *why,
			 size_t whylen)
{
	struct be_viommu *v;
	int r = refuse(dev, type, why, whylen);

	if (r < 0) {
		notice(dev->be->log, "iommufd: no vIOMMU for %s: %s",
		       dev->inv->info.name, why);
		return r;
	}
	if (!parent->ioas->nest_parent) {
		snprintf(why, whylen, "the parent's HWPT is not a nest parent");
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	r = iommufd_adopt_viommu(dev->tenant, &v->viommu_id) ? 0 :
	    viommu_make(dev->tenant->fd, dev->dev_id, parent->hwpt_id,
			&v->viommu_id);
	if (r < 0) {
		snprintf(why, whylen, "IOMMU_VIOMMU_ALLOC (selftest type) over "
			 "HWPT %u for %s: %s", parent->hwpt_id,
			 dev->inv->info.name, strerror(-r));
		free(v);
		return r;
	}
	v->tenant = dev->tenant;
	v->parent = parent;
	v->unit = dev->unit;
	dbg(dev->be->log, "iommufd: vIOMMU %u over HWPT %u", v->viommu_id,
	    parent->hwpt_id);
	*out = v;
	return 0;
}

void iommufd_viommu_free(struct be_viommu *v)
{
	iommufd_destroy(v->tenant, v->viommu_id, "vIOMMU");
	free(v);
}

int iommufd_vdevice_alloc(struct be_viommu *v, struct be_device *dev,
			  uint64_t virt_id, struct be_vdevice **out, char *why,
			  size_t whylen)
{
	struct be_vdevice *vd;
	int r;

	if (dev->unit != v->unit) {
		snprintf(why, whylen, "the device is behind another IOMMU "
			 "than the vIOMMU's");
		return -EINVAL;
	}
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	r = iommufd_adopt_vdevice(v->tenant, v->viommu_id, dev->dev_id,
				  virt_id, &vd->vdevice_id) ? 0 :
	    vdevice_make(v->tenant->fd, v->viommu_id, dev->dev_id, virt_id,
			 &vd->vdevice_id);
	if (r < 0) {
		snprintf(why, whylen, "IOMMU_VDEVICE_ALLOC of %s as 0x%llx on "
			 "vIOMMU %u: %s", dev->inv->info.name,
			 (unsigned long long)virt_id, v->viommu_id,
			 strerror(-r));
		free(vd);
		return r;
	}
	vd->viommu = v;
	vd->virt_id = virt_id;
	*out = vd;
	return 0;
}

void iommufd_vdevice_free(struct be_vdevice *vd)
{
	iommufd_destroy(vd->viommu->tenant, vd->vdevice_id, "vDEVICE");
	free(vd);
}

int iommufd_viommu_nested_alloc(struct be_viommu *v, struct be_device *dev,
				uint32_t type, const void *data, uint32_t len,
				uint32_t nested_id, struct be_nested **out,
				char *why, size_t whylen)
{
	if (dev->unit != v->unit) {
		snprintf(why, whylen, "the device is behind another IOMMU "
			 "than the vIOMMU's");
		return -EINVAL;
	}
	if (type != IOASID_NESTED_SELFTEST) {
		snprintf(why, whylen, "a selftest vIOMMU's nested tables are "
			 "selftest ones (IOASID_NESTED_SELFTEST), not type %u",
			 type);
		return -EOPNOTSUPP;
	}
	return iommufd_nested_make(v->parent, v->viommu_id, dev, type, data,
				   len, nested_id, out, why, whylen);
}

int iommufd_viommu_invalidate(struct be_viommu *v,
			      const struct ioasid_viommu_inval *e, uint32_t nr,
			      uint32_t *done, char *why, size_t whylen)
{
	struct ifd_viommu_invalidate_selftest *st = calloc(nr, sizeof(*st));
	struct ifd_hwpt_invalidate inv = {
		.size = sizeof(inv), .hwpt_id = v->viommu_id,
		.data_type = IFD_VIOMMU_INVALIDATE_DATA_SELFTEST,
		.entry_len = sizeof(*st), .entry_num = nr,
	};
	int r;

	*done = 0;
	if (!st)
		return -ENOMEM;
	/* the core kept virtual IDs of a selftest vIOMMU to 32 bits */
	for (uint32_t i = 0; i < nr; i++) {
		bool all = e[i].flags & IOASID_VIOMMU_INVAL_ALL;

		st[i].flags = all ? IFD_TEST_INVALIDATE_FLAG_ALL : 0;
		st[i].vdev_id = (uint32_t)e[i].virt_id;
		st[i].cache_id = all ? 0 : e[i].cache_id;
	}
	inv.data_uptr = (uint64_t)(uintptr_t)st;
	r = kioctl(v->tenant->fd, IFD_HWPT_INVALIDATE, &inv);
	free(st);
	if (r == 0) {
		*done = nr;
		return 0;
	}
	/* entry_num: the entries the kernel handled before the failing one */
	*done = inv.entry_num < nr ? inv.entry_num : 0;
	snprintf(why, whylen, "IOMMU_HWPT_INVALIDATE of vIOMMU %u (virtual ID "
		 "0x%llx): %s", v->viommu_id,
		 (unsigned long long)e[*done].virt_id, strerror(-r));
	return r;
}

uint32_t iommufd_test_viommu_id(const struct be_viommu *v)
{
	return v->viommu_id;
}

uint32_t iommufd_test_vdevice_id(const struct be_vdevice *vd)
{
	return vd->vdevice_id;
}

/* ---- the probe at open ---------------------------------------------------- */

static int probe_step(int r, const char *what, char *why, size_t whylen)
{
	if (r < 0)
		snprintf(why, whylen, "%s: %s", what, strerror(-r));
	return r;
}

int iommufd_mock_probe_viommu(int fd, char *why, size_t whylen)
{
	struct ifd_ioas_alloc a = { .size = sizeof(a) };
	struct ifd_test_cmd c = { .size = sizeof(c),
				  .op = IFD_TEST_OP_MOCK_DOMAIN };
	struct ifd_hwpt_alloc h = {
		.size = sizeof(h), .flags = IFD_HWPT_ALLOC_NEST_PARENT,
	};
	struct ifd_hwpt_invalidate inv = {
		.size = sizeof(inv),
		.data_type = IFD_VIOMMU_INVALIDATE_DATA_SELFTEST,
	};
	uint32_t iotlb = 0, viommu = 0, vdev = 0;
	int r;

	/* everything made here goes with the probing iommufd */
	r = probe_step(kioctl(fd, IFD_IOAS_ALLOC, &a), "IOMMU_IOAS_ALLOC",
		       why, whylen);
	if (r < 0)
		return r;
	c.id = a.out_ioas_id;
	r = probe_step(kioctl(fd, IFD_TEST_CMD, &c), "a mock device", why,
		       whylen);
	if (r < 0)
		return r;
	h.dev_id = c.mock_domain.out_idev_id;
	h.pt_id = a.out_ioas_id;
	r = probe_step(kioctl(fd, IFD_HWPT_ALLOC, &h), "a nest-parent HWPT",
		       why, whylen);
	if (r == 0)
		r = probe_step(viommu_make(fd, h.dev_id, h.out_hwpt_id,
					   &viommu),
			       "IOMMU_VIOMMU_ALLOC", why, whylen);
	if (r == 0)
		r = probe_step(vdevice_make(fd, viommu, h.dev_id, 0, &vdev),
			       "IOMMU_VDEVICE_ALLOC", why, whylen);
	if (r < 0)
		return r;
	h = (struct ifd_hwpt_alloc){
		.size = sizeof(h), .dev_id = c.mock_domain.out_idev_id,
		.pt_id = viommu, .data_type = IFD_HWPT_DATA_SELFTEST,
		.data_len = sizeof(iotlb),
		.data_uptr = (uint64_t)(uintptr_t)&iotlb,
	};
	r = probe_step(kioctl(fd, IFD_HWPT_ALLOC, &h), "a nested HWPT on the "
		       "vIOMMU", why, whylen);
	/* no entries: does the vIOMMU take the selftest invalidation type? */
	inv.hwpt_id = viommu;
	if (r == 0)
		r = probe_step(kioctl(fd, IFD_HWPT_INVALIDATE, &inv),
			       "IOMMU_HWPT_INVALIDATE of the vIOMMU", why,
			       whylen);
	return r;
}
