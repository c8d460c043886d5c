/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * discovery/: what the running system (or a recorded copy of its sysfs)
 * says about IOMMU units and PCI devices, as a struct inventory.
 *
 * Who may include this: the kernel backends (backends/kcommon,
 * backends/vfio_type1) and the tests.  Never a
 * public header.  See README in this directory.
 *
 * Errors are negative errno values.  Nothing here exits, aborts or
 * prints; messages go to the optional log sink (NULL: none)
 * and, for failures, to the caller's errmsg buffer.
 *
 * The sysfs root
 * --------------
 * Every function that reads sysfs takes a "sysroot": the directory that
 * stands for "/" (so sysfs is SYSROOT/sys).  NULL, "" and "/" mean the
 * running system.  Two paths lead to the same per-object readers:
 *
 *  - running system: libudev enumerates subsystem "iommu" and "pci"
 *    (udev_enumerate); each device's syspath is then read by the shared
 *    readers below with plain open/pread/readlink.  libudev always looks
 *    at /sys, which is what umockdev-wrapper redirects, so the libudev
 *    path is tested with umockdev testbeds.
 *  - any other sysroot (recorded trees): the same readers are called on
 *    the entries of SYSROOT/sys/class/iommu and SYSROOT/sys/bus/pci/devices
 *    found with readdir.  libudev is not used at all.
 *
 * So attribute reading, the config-space walk, the VT-d/AMD decoding and
 * the reserved-region parsing are one code, exercised by both paths.
 * Device syspaths in the inventory are always given as the running system
 * would see them ("/sys/devices/pci0000:00/0000:00:03.0"), with the
 * sysroot stripped.
 */
#ifndef IOASID_DISCOVERY_H
#define IOASID_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ioasid/ioasid.h>

#include "inventory/inventory.h"
#include "util/parse.h"

struct log_sink;

/* ---- scanning -------------------------------------------------------- */

/*
 * Fill @inv (which must be empty: zeroed) with the IOMMU units of
 * SYSROOT/sys/class/iommu and the PCI devices of SYSROOT/sys/bus/pci, as
 * described above; units and devices come sorted by name and every
 * unit's nr_devices is set.  On failure @inv is left empty.
 *
 * Per object, what is missing gets a default rather than an error: an
 * unreadable attribute leaves its field 0 (logged), a missing config
 * space gives IOASID_DEVICE_NO_SNOOP_UNKNOWN, a device without
 * iommu_group gets group ~0U and no unit, a unit without readable
 * registers gets kind "unknown" without IOASID_IOMMU_CAPS_KNOWN, and an
 * object that disappears during the scan, or whose name does not fit
 * IOASID_NAME_MAX, is skipped (logged).  Directory entries that are
 * dangling links or lead out of SYSROOT are skipped too.  A device whose
 * `iommu` link names a unit absent from class/iommu gets that unit added
 * as kind "unknown".
 *
 * Returns 0, or
 *   -ENOENT   SYSROOT/sys does not exist
 *   -ENOTDIR  SYSROOT/sys is not a directory
 *   -EINVAL   a reserved_regions file is not in the kernel's format
 *   -ENOMEM   out of memory
 *   other     libudev or readdir failures, as their errno
 * with a sentence in @errmsg (may be NULL).
 */
int discovery_scan(const struct log_sink *log, const char *sysroot,
		   struct inventory *inv, char *errmsg, size_t errlen);

/*
 * Read one PCI device (syspath as the running system names it, e.g.
 * "/sys/devices/pci0000:00/0000:00:03.0") into @dev, which must be
 * zeroed.  Used by discovery_scan() for both paths, and by ioasidd for a
 * single hot-plugged device.  What it fills in:
 *   name, vendor, device, class_code   the directory name and attributes
 *   driver                 last component of the `driver` link, or ""
 *   iommu                  last component of the `iommu` link, or ""
 *   group                  the `iommu_group` link's number, or ~0U
 *   vfio_cdev, vfio_dev_path   from SYSPATH/vfio-dev/vfioN
 *   group_dev_path         "/dev/vfio/N" ("/dev/vfio/noiommu-N" for a
 *                          VFIO no-IOMMU group) for VFIO devices
 *   reserved               the group's reserved_regions, merged
 *   pcie_cap_offset, pcie_devctl, and flags:
 *     VFIO        driver vfio-pci, or any driver with a VFIO cdev (variant
 *                 drivers such as mlx5_vfio_pci)
 *     NO_SNOOP, NO_SNOOP_UNKNOWN, ATS   from pcie_parse_config()
 *     TRANSLATES  in an IOMMU group (not a no-IOMMU one), or ATS
 * -ENOENT (device gone), -ENAMETOOLONG, -EINVAL (reserved_regions), -ENOMEM.
 */
int discovery_read_device(const struct log_sink *log, const char *sysroot,
			  const char *syspath, struct inv_device *dev,
			  char *errmsg, size_t errlen);
/* Read one IOMMU unit (e.g. "/sys/devices/virtual/iommu/dmar0"). */
int discovery_read_iommu(const struct log_sink *log, const char *sysroot,
			 const char *syspath, struct inv_iommu *unit,
			 char *errmsg, size_t errlen);

/* ---- the parsers both paths share (exposed for tests) --------------- */

/* What the config-space walk found. */
struct pcie_config_info {
	/*
	 * IOASID_DEVICE_NO_SNOOP, IOASID_DEVICE_NO_SNOOP_UNKNOWN,
	 * IOASID_DEVICE_ATS.
	 */
	uint32_t flags;
	uint16_t pcie_cap_offset;	/* 0: no PCI Express capability */
	uint16_t devctl;		/* Device Control, when known */
	uint16_t ats_offset;		/* 0: no ATS extended capability */
	uint16_t pasid_offset;		/* 0: no PASID extended capability */
	uint8_t pasid_bits;		/* its Max PASID Width */
	bool malformed;			/* a pointer loop or out of range */
};

/*
 * Walk @len bytes of a type-0/1 config space (as read from sysfs
 * `config`; unprivileged readers get 64 bytes, root 256 or 4096).
 * Decides Enable No Snoop from the PCI Express capability's Device
 * Control register (cap+8, bit 11) and ATS from extended capability
 * 0x000F.  When the answer cannot be known (short read, truncated or
 * malformed capability list before the Express capability was found)
 * it sets IOASID_DEVICE_NO_SNOOP_UNKNOWN instead of guessing.  Every
 * pointer is bound-checked and every loop is bounded, whatever the
 * bytes.  A device without capability list or without an Express
 * capability (conventional PCI) has neither NO_SNOOP nor UNKNOWN.
 */
void pcie_parse_config(const uint8_t *cfg, size_t len,
		       struct pcie_config_info *out);

/*
 * Intel VT-d: decode the capability and extended capability registers
 * (sysfs intel-iommu/cap and ecap) into kind "intel-vtd", flags,
 * page_sizes and addr_width; the raw registers go to cap/ecap.
 *   SNOOP_CONTROL  ecap bit 7 (SC)
 *   page sizes     4K, plus cap SLLPS bits 34 (2M) and 35 (1G)
 *   addr_width     cap MGAW (bits 16..21) + 1, limited to the widest
 *                  width SAGAW (bits 8..12) offers (30/39/48/57)
 *   DIRTY_TRACKING ecap SSADS/SLADS bit 45, with scalable mode (SMTS, 43)
 *   NESTING        ecap NEST bit 26, with scalable mode
 *   PASID          ecap PASID bit 40, with scalable mode
 * (These mirror what Linux requires before offering the feature; the
 * scalable-mode kernel switch itself is not visible in sysfs.)
 */
void vtd_decode(uint64_t cap, uint64_t ecap, struct ioasid_iommu_info *info);

/*
 * AMD-Vi: decode the extended feature registers (sysfs amd-iommu/
 * features) into kind "amd-vi".  AMD IOMMUs always honour forced
 * coherency (IOMMU_CAP_ENFORCE_CACHE_COHERENCY), page sizes are those
 * of the v1 page table (every power of two from 4K, except 512G, up to
 * addr_width), addr_width from HATS (4/5/6 levels: 48/57/64 bits),
 * DIRTY_TRACKING from HDSUP (EFR bit 52), PASID from GT (4) and PPR (1),
 * NESTING from GT and GIOSUP (48).  The raw EFR goes to ecap, the cap
 * header to cap.
 */
void amd_decode(uint32_t cap, uint64_t efr, struct ioasid_iommu_info *info);
/*
 * Parse amd-iommu/features: "efr" (older kernels) or "X:Y" (newer ones;
 * the order of the two registers changed between kernel versions, so
 * the one that has bits above 15 set is taken as EFR, since EFR2 only
 * defines low bits; the first one if that does not decide).
 * -EINVAL on anything else.
 */
int amd_parse_features(const char *text, uint64_t *efr, uint64_t *efr2);

/*
 * Parse an iommu_groups/N/reserved_regions text ("0x... 0x... type" per
 * line, inclusive, hex) into sorted merged ranges, appending to
 * *ranges.  Types "direct-relaxable" are skipped, as iommufd does for
 * IOVA allocation; every other type (direct, reserved, msi) counts.
 * -EINVAL with "line N: ..." in errmsg on a malformed line, -ENOMEM.
 */
int discovery_parse_reserved(const char *text,
			     struct ioasid_iova_range **ranges, uint32_t *nr,
			     char *errmsg, size_t errlen);

/* ---- sysfs helpers (sysfs.c) ---------------------------------------- */
/*
 * @path is absolute as the running system sees it ("/sys/..."); sysroot
 * is prepended.  All return negative errno on failure.
 */

/* Build SYSROOT+path in @buf.  -ENAMETOOLONG. */
int sysfs_path(char *buf, size_t size, const char *sysroot, const char *path);
/*
 * Read a text attribute: at most size-1 bytes, NUL-terminated, trailing
 * newline and blanks removed.  Returns the length.
 */
int sysfs_read_text(const char *sysroot, const char *path, char *buf,
		    size_t size);
/*
 * Read a hex number ("0x1234" or "1234", as sysfs prints them); -EINVAL
 * when the text is not exactly one number, -ERANGE when it overflows.
 */
int sysfs_read_hex(const char *sysroot, const char *path, uint64_t *val);
/* Read up to @size bytes of a binary attribute with pread; the count. */
ssize_t sysfs_read_binary(const char *sysroot, const char *path, void *buf,
			  size_t size);
/* The last component of a symlink's target ("iommu_group" -> "12"). */
int sysfs_link_name(const char *sysroot, const char *path, char *buf,
		    size_t size);

/* ---- hotplug (monitor.c) -------------------------------------------- */

enum discovery_monitor_source {
	/* "udev" when udevd runs (/run/udev/control exists), else "kernel" */
	DISCOVERY_MONITOR_AUTO		= 0,
	/* raw kernel uevents: no udevd needed, events before udev rules ran */
	DISCOVERY_MONITOR_KERNEL	= 1,
	/* events as re-broadcast by udevd after its rules; needs udevd */
	DISCOVERY_MONITOR_UDEV		= 2,
};

enum discovery_event_action {
	DISCOVERY_EVENT_ADD		= 1,
	DISCOVERY_EVENT_REMOVE		= 2,
	DISCOVERY_EVENT_BIND		= 3,	/* a driver was bound */
	DISCOVERY_EVENT_UNBIND		= 4,
	DISCOVERY_EVENT_CHANGE		= 5,
};

struct discovery_event {
	enum discovery_event_action action;
	char name[IOASID_NAME_MAX];	/* "0000:00:03.0" */
	char syspath[256];		/* "/sys/devices/pci0000:00/0000:00:03.0" */
	char driver[IOASID_NAME_MAX];	/* bind: the new driver, if told */
};

struct discovery_monitor;

/*
 * Listen for PCI hotplug (and bind/unbind) events on a udev netlink
 * monitor filtered to subsystem "pci".  The fd is non-blocking and
 * pollable (POLLIN).
 *
 * Where no events can be received the monitor is still created and just
 * stays silent: in a container or network namespace without uevent
 * broadcast (netlink uevents are only delivered in the initial network
 * namespace), with "udev" when udevd does not run, or under an LSM that
 * forbids NETLINK_KOBJECT_UEVENT sockets.  Callers that must not miss
 * devices should rescan (discovery_scan) at startup and on demand.
 * Socket creation failure is an error: -EPERM/-EACCES (not allowed),
 * -EAFNOSUPPORT, -ENOMEM, -EINVAL (bad source).
 */
int discovery_monitor_new(const struct log_sink *log,
			  enum discovery_monitor_source source,
			  struct discovery_monitor **mon);
/* The pollable fd; owned by the monitor. */
int discovery_monitor_fd(const struct discovery_monitor *mon);
/* Which source was chosen ("kernel" or "udev"). */
const char *discovery_monitor_source_name(const struct discovery_monitor *mon);
/*
 * Take one event.  Returns 0 and fills @ev, or -EAGAIN when nothing is
 * pending (events of other actions are consumed and skipped).
 */
int discovery_monitor_receive(struct discovery_monitor *mon,
			      struct discovery_event *ev);
void discovery_monitor_free(struct discovery_monitor *mon);

#endif
