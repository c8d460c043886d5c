/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Intel VT-d: from the raw Capability (CAP_REG) and Extended Capability
 * (ECAP_REG) registers, as sysfs prints them in intel-iommu/cap and ecap,
 * to the facts the core needs.  Bit positions are those of the VT-d
 * specification ("Intel Virtualization Technology for Directed I/O
 * Architecture Specification", register descriptions 11.4.2/11.4.3).
 */
#include <stdio.h>
#include <string.h>

#include "discovery/discovery.h"
#include "util/macros.h"

/* CAP_REG */
#define VTD_CAP_SAGAW_SHIFT	8	/* bits 12:8, supported AGAWs */
#define VTD_CAP_SAGAW_MASK	0x1fULL
#define VTD_CAP_MGAW_SHIFT	16	/* bits 21:16, max guest addr width-1 */
#define VTD_CAP_MGAW_MASK	0x3fULL
#define VTD_CAP_SLLPS_2M	(1ULL << 34)	/* second-level 2 MiB pages */
#define VTD_CAP_SLLPS_1G	(1ULL << 35)	/* second-level 1 GiB pages */

/* ECAP_REG */
#define VTD_ECAP_SC		(1ULL << 7)	/* snoop control */
#define VTD_ECAP_NEST		(1ULL << 26)	/* nested translation */
#define VTD_ECAP_PASID		(1ULL << 40)
#define VTD_ECAP_SMTS		(1ULL << 43)	/* scalable mode */
#define VTD_ECAP_SSADS		(1ULL << 45)	/* second-stage A/D bits */

/*
 * The widest adjusted guest address width SAGAW offers: bit 0 is 30 bits
 * (2-level), 1 is 39 (3-level), 2 is 48 (4-level), 3 is 57 (5-level);
 * bit 4 is reserved.  0 when none is set (first-stage only hardware).
 */
static uint32_t sagaw_max_width(uint64_t cap)
{
	uint64_t sagaw = (cap >> VTD_CAP_SAGAW_SHIFT) & VTD_CAP_SAGAW_MASK;

	for (int level = 3; level >= 0; level--)
		if (sagaw & (1ULL << level))
			return 30 + 9 * (uint32_t)level;
	return 0;
}

static uint32_t vtd_addr_width(uint64_t cap)
{
	uint32_t mgaw = (uint32_t)((cap >> VTD_CAP_MGAW_SHIFT) &
				   VTD_CAP_MGAW_MASK) + 1;
	uint32_t agaw = sagaw_max_width(cap);

	return agaw ? min_t(uint32_t, mgaw, agaw) : mgaw;
}

static uint64_t vtd_page_sizes(uint64_t cap)
{
	uint64_t sizes = SZ_4K;

	if (cap & VTD_CAP_SLLPS_2M)
		sizes |= SZ_2M;
	if (cap & VTD_CAP_SLLPS_1G)
		sizes |= SZ_1G;
	return sizes;
}

/* Features Linux offers only in scalable mode. */
static uint32_t vtd_scalable_flags(uint64_t ecap)
{
	uint32_t flags = 0;

	if (!(ecap & VTD_ECAP_SMTS))
		return 0;
	if (ecap & VTD_ECAP_SSADS)
		flags |= IOASID_IOMMU_DIRTY_TRACKING;
	if (ecap & VTD_ECAP_NEST)
		flags |= IOASID_IOMMU_NESTING;
	if (ecap & VTD_ECAP_PASID)
		flags |= IOASID_IOMMU_PASID;
	return flags;
}

void vtd_decode(uint64_t cap, uint64_t ecap, struct ioasid_iommu_info *info)
{
	snprintf(info->kind, sizeof(info->kind), "intel-vtd");
	info->cap = cap;
	info->ecap = ecap;
	info->flags |= IOASID_IOMMU_CAPS_KNOWN;
	if (ecap & VTD_ECAP_SC)
		info->flags |= IOASID_IOMMU_SNOOP_CONTROL;
	info->flags |= vtd_scalable_flags(ecap);
	info->page_sizes = vtd_page_sizes(cap);
	info->addr_width = vtd_addr_width(cap);
}
