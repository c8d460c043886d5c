/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PCI config-space capability walk: is "Enable No Snoop" set, is there
 * ATS, how wide are its PASIDs.  The bytes come from a sysfs `config` file, which may be short
 * (unprivileged readers see 64 bytes), recorded, or simply wrong, so
 * every offset is checked against the length and every list walk is
 * bounded by the number of slots it could visit.
 */
#include <string.h>

#include <linux/pci_regs.h>

#include "discovery/discovery.h"

/* Slots a standard capability can start at: 0x40..0xfc, dword aligned. */
#define STD_CAP_SLOTS	((PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / 4)
/* Slots an extended capability can start at: 0x100..0xffc. */
#define EXT_CAP_SLOTS	((PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 4)

static uint16_t cfg_u16(const uint8_t *cfg, size_t off)
{
	return (uint16_t)(cfg[off] | cfg[off + 1] << 8);
}

static uint32_t cfg_u32(const uint8_t *cfg, size_t off)
{
	return (uint32_t)cfg[off] | (uint32_t)cfg[off + 1] << 8 |
	       (uint32_t)cfg[off + 2] << 16 | (uint32_t)cfg[off + 3] << 24;
}

/* Where the first capability pointer lives for this header type. */
static size_t cap_list_pointer(const uint8_t *cfg)
{
	if ((cfg[PCI_HEADER_TYPE] & 0x7f) == PCI_HEADER_TYPE_CARDBUS)
		return PCI_CB_CAPABILITY_LIST;
	return PCI_CAPABILITY_LIST;
}

/* Found the Express capability at @pos: read Device Control if we can. */
static void read_express(const uint8_t *cfg, size_t len, size_t pos,
			 struct pcie_config_info *out)
{
	out->pcie_cap_offset = (uint16_t)pos;
	if (pos + PCI_EXP_DEVCTL + 2 > PCI_CFG_SPACE_SIZE) {
		/* a standard capability cannot run past 0xff */
		out->malformed = true;
		out->flags |= IOASID_DEVICE_NO_SNOOP_UNKNOWN;
		return;
	}
	if (pos + PCI_EXP_DEVCTL + 2 > len) {
		out->flags |= IOASID_DEVICE_NO_SNOOP_UNKNOWN;
		return;
	}
	out->devctl = cfg_u16(cfg, pos + PCI_EXP_DEVCTL);
	if (out->devctl & PCI_EXP_DEVCTL_NOSNOOP_EN)
		out->flags |= IOASID_DEVICE_NO_SNOOP;
}

/*
 * Follow the standard list.  Returns with pcie_cap_offset set when the
 * Express capability was found; with NO_SNOOP_UNKNOWN when the list
 * could not be followed to its end; with neither for a device that
 * really has no Express capability.
 */
static void walk_standard(const uint8_t *cfg, size_t len,
			  struct pcie_config_info *out)
{
	uint8_t seen[STD_CAP_SLOTS] = { 0 };
	size_t pos;

	if (!(cfg_u16(cfg, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return;
	pos = cfg[cap_list_pointer(cfg)] & ~3u;
	/* each slot is visited at most once, so this ends */
	while (pos) {
		if (pos < PCI_STD_HEADER_SIZEOF || pos >= PCI_CFG_SPACE_SIZE) {
			out->malformed = true;
			break;
		}
		if (pos + 2 > len)
			break;			/* truncated read */
		if (seen[(pos - PCI_STD_HEADER_SIZEOF) / 4]++) {
			out->malformed = true;	/* a loop */
			break;
		}
		if (cfg[pos] == 0xff) {
			out->malformed = true;	/* all ones: device gone */
			break;
		}
		if (cfg[pos] == PCI_CAP_ID_EXP) {
			read_express(cfg, len, pos, out);
			return;
		}
		pos = cfg[pos + 1] & ~3u;
	}
	if (pos)
		out->flags |= IOASID_DEVICE_NO_SNOOP_UNKNOWN;
}

/* Extended capabilities (PCIe only, 0x100 and up): ATS, PASID. */
static void walk_extended(const uint8_t *cfg, size_t len,
			  struct pcie_config_info *out)
{
	uint8_t seen[EXT_CAP_SLOTS] = { 0 };
	size_t pos = PCI_CFG_SPACE_SIZE;

	while (pos + 4 <= len) {
		uint32_t header = cfg_u32(cfg, pos);

		/* 0: no extended capabilities; ~0: no extended space */
		if (header == 0 || header == 0xffffffff)
			return;
		if (seen[(pos - PCI_CFG_SPACE_SIZE) / 4]++) {
			out->malformed = true;
			return;
		}
		if (PCI_EXT_CAP_ID(header) == PCI_EXT_CAP_ID_ATS &&
		    !out->ats_offset) {
			out->ats_offset = (uint16_t)pos;
			out->flags |= IOASID_DEVICE_ATS;
		}
		/* PASID capability register: Max PASID Width, bits 12:8 */
		if (PCI_EXT_CAP_ID(header) == PCI_EXT_CAP_ID_PASID &&
		    !out->pasid_offset && pos + PCI_PASID_CAP + 2 <= len) {
			out->pasid_offset = (uint16_t)pos;
			out->pasid_bits = (cfg_u16(cfg, pos + PCI_PASID_CAP) >>
					   8) & 0x1f;
		}
		pos = PCI_EXT_CAP_NEXT(header);
		if (!pos)
			return;
		if (pos < PCI_CFG_SPACE_SIZE) {
			out->malformed = true;
			return;
		}
	}
}

void pcie_parse_config(const uint8_t *cfg, size_t len,
		       struct pcie_config_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!cfg || len < PCI_STD_HEADER_SIZEOF) {
		out->flags |= IOASID_DEVICE_NO_SNOOP_UNKNOWN;
		return;
	}
	if (len > PCI_CFG_SPACE_EXP_SIZE)
		len = PCI_CFG_SPACE_EXP_SIZE;
	walk_standard(cfg, len, out);
	if (out->pcie_cap_offset)
		walk_extended(cfg, len, out);
}
