/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated backend's topology: which IOMMU units and devices the
 * "sim" backend pretends to have, as a small line-oriented text format
 * (documented in ioasid-topology(5)), parsed into the same struct
 * inventory that discovery/ fills from sysfs.
 *
 * Who may include this: backends/sim/ and the tests.
 *
 * What the parser fills in, beyond what the file says:
 *  - units: kind "sim", flags IOASID_IOMMU_SIMULATED|IOASID_IOMMU_CAPS_KNOWN,
 *    cap = ecap = 0;
 *  - devices: flags IOASID_DEVICE_SIMULATED, driver "vfio-pci-sim" (not
 *    IOASID_DEVICE_VFIO: there is no VFIO file behind them), empty
 *    syspath/vfio_cdev/dev paths; a device whose no-snoop is known looks
 *    like a PCIe function with its Express capability at 0x40
 *    (pcie_cap_offset 0x40, pcie_devctl 0x0800 when no-snoop=yes);
 *  - reserved regions: a device's list is its group's, i.e. the union
 *    of its unit's regions and the reserved= of every group member, as
 *    sysfs reserved_regions would show it;
 *  - groups: a device without group= is alone in a group numbered after
 *    the highest explicit group, in file order;
 *  - units and devices keep file order; every unit's nr_devices is set.
 */
#ifndef IOASID_SIM_TOPOLOGY_H
#define IOASID_SIM_TOPOLOGY_H

#include <stddef.h>

#include "inventory/inventory.h"

/* The built-in topology (also shipped as default.topology). */
extern const char topology_default[];

/*
 * Parse @text into @inv (which must be zeroed).  On failure @inv is left
 * empty and @errmsg (may be NULL) says "line N: what was wrong".
 * -EINVAL for any syntax or consistency error, -ENOMEM.
 */
int topology_parse(const char *text, struct inventory *inv, char *errmsg,
		   size_t errlen);

/*
 * Read and parse a topology file (at most 1 MiB, no NUL bytes); errors
 * are prefixed with the path.  -errno of open/read, -EFBIG, -EINVAL,
 * -ENOMEM.
 */
int topology_load(const char *path, struct inventory *inv, char *errmsg,
		  size_t errlen);

#endif
