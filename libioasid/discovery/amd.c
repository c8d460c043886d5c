/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * AMD-Vi: from the Extended Feature Register (sysfs amd-iommu/features)
 * to the facts the core needs.  Bit positions follow the AMD I/O
 * Virtualization Technology (IOMMU) Specification, EFR description.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "discovery/discovery.h"
#include "util/macros.h"

#define AMD_EFR_PPR		(1ULL << 1)	/* peripheral page requests */
#define AMD_EFR_GT		(1ULL << 4)	/* guest (v2) translation */
#define AMD_EFR_HATS_SHIFT	10		/* bits 11:10 host levels */
#define AMD_EFR_GIOSUP		(1ULL << 48)	/* guest I/O protection */
#define AMD_EFR_HDSUP		(1ULL << 52)	/* host dirty bit */

/* EFR2 only defines bits below this; EFR always has some above. */
#define AMD_EFR2_DEFINED_MASK	0xffffULL

/* Host page-table levels: HATS 0, 1, 2 = 4, 5, 6 levels. */
static uint32_t amd_addr_width(uint64_t efr)
{
	switch ((efr >> AMD_EFR_HATS_SHIFT) & 3) {
	case 1:
		return 57;
	case 2:
		return 64;
	default:
		return 48;
	}
}

/* The v1 page table maps every power of two from 4K but 512G. */
static uint64_t amd_page_sizes(uint32_t addr_width)
{
	uint64_t sizes = ~(SZ_4K - 1) & ~(1ULL << 39);

	if (addr_width < 64)
		sizes &= (1ULL << addr_width) - 1;
	return sizes;
}

void amd_decode(uint32_t cap, uint64_t efr, struct ioasid_iommu_info *info)
{
	snprintf(info->kind, sizeof(info->kind), "amd-vi");
	info->cap = cap;
	info->ecap = efr;
	/* AMD-Vi can always force DMA to snoop (the FC bit in its PTEs) */
	info->flags |= IOASID_IOMMU_CAPS_KNOWN | IOASID_IOMMU_SNOOP_CONTROL;
	if (efr & AMD_EFR_HDSUP)
		info->flags |= IOASID_IOMMU_DIRTY_TRACKING;
	if ((efr & AMD_EFR_GT) && (efr & AMD_EFR_PPR))
		info->flags |= IOASID_IOMMU_PASID;
	if ((efr & AMD_EFR_GT) && (efr & AMD_EFR_GIOSUP))
		info->flags |= IOASID_IOMMU_NESTING;
	info->addr_width = amd_addr_width(efr);
	info->page_sizes = amd_page_sizes(info->addr_width);
}

int amd_parse_features(const char *text, uint64_t *efr, uint64_t *efr2)
{
	char first[32], second[32];
	const char *colon = strchr(text, ':');
	uint64_t a, b = 0;
	size_t n;
	int ret;

	n = colon ? (size_t)(colon - text) : strlen(text);
	if (n >= sizeof(first))
		return -EINVAL;
	memcpy(first, text, n);
	first[n] = '\0';
	ret = parse_u64(first, 16, &a);
	if (ret)
		return -EINVAL;
	if (colon) {
		if (strlen(colon + 1) >= sizeof(second))
			return -EINVAL;
		strcpy(second, colon + 1);
		if (parse_u64(second, 16, &b))
			return -EINVAL;
		/* which one is EFR: the one with high bits (see header) */
		if (!(a & ~AMD_EFR2_DEFINED_MASK) &&
		    (b & ~AMD_EFR2_DEFINED_MASK)) {
			uint64_t t = a;

			a = b;
			b = t;
		}
	}
	*efr = a;
	*efr2 = b;
	return 0;
}
