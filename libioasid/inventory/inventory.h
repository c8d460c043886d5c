/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The inventory: IOMMU units and devices a backend can offer, as plain
 * facts.  Filled by discovery/ (real sysfs through libudev) or by the
 * simulated topology (backends/sim/topology.c); the layers above cannot
 * tell which.
 */
#ifndef IOASID_INVENTORY_H
#define IOASID_INVENTORY_H

#include <stdint.h>

#include <ioasid/ioasid.h>

struct inv_iommu {
	struct ioasid_iommu_info info;	/* name, kind, flags, caps */
	/* reserved IOVA regions every device behind this unit has */
	struct ioasid_iova_range *reserved;
	uint32_t nr_reserved;
};

struct inv_device {
	/*
	 * name, vendor, device, class_code, driver, iommu (unit name), group,
	 * vfio_cdev and the static flags: VFIO, NO_SNOOP, NO_SNOOP_UNKNOWN,
	 * ATS, TRANSLATES, SIMULATED.
	 */
	struct ioasid_device_info info;
	/* the group's reserved regions (sysfs reserved_regions), merged */
	struct ioasid_iova_range *reserved;
	uint32_t nr_reserved;
	char syspath[256];		/* real devices; empty for simulated */
	char vfio_dev_path[64];		/* "/dev/vfio/devices/vfio0" or "" */
	char group_dev_path[64];	/* "/dev/vfio/12" or "" */
	/* PCIe Device Control register, when config space was readable */
	uint16_t pcie_devctl;
	uint16_t pcie_cap_offset;	/* 0: no PCI Express capability */
};

struct inventory {
	struct inv_iommu *iommus;
	uint32_t nr_iommus;
	struct inv_device *devices;
	uint32_t nr_devices;
};

void inventory_release(struct inventory *inv);
/*
 * Append a zeroed unit / device (info.size set; device group ~0U).
 * The returned pointer is valid until the next append.  -ENOMEM,
 * -EOVERFLOW.
 */
int inventory_add_iommu(struct inventory *inv, struct inv_iommu **iommu);
int inventory_add_device(struct inventory *inv, struct inv_device **dev);
/*
 * Add [start, last] (inclusive) to a sorted list of disjoint ranges,
 * merging overlapping and adjacent ones.  -EINVAL if start > last,
 * -ENOMEM.
 */
int inventory_add_range(struct ioasid_iova_range **ranges, uint32_t *nr,
			uint64_t start, uint64_t last);
/* Set every unit's info.nr_devices from the devices behind it. */
void inventory_count_devices(struct inventory *inv);
/* Sort units and devices by name. */
void inventory_sort(struct inventory *inv);

struct inv_iommu *inventory_find_iommu(struct inventory *inv,
				       const char *name);
struct inv_device *inventory_find_device(struct inventory *inv,
					 const char *name);

#endif
