/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Enumeration of IOMMU units and PCI devices into a struct inventory.
 *
 * Two ways to find the objects (libudev for the running system, readdir
 * for a recorded tree under a sysroot), one way to read each of them
 * (discovery_read_iommu / discovery_read_device).  See discovery.h.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libudev.h>

#include "discovery/discovery.h"
#include "util/log.h"
#include "util/macros.h"

/* The x86 interrupt (MSI) window every VT-d and AMD-Vi device has. */
#define X86_MSI_START	0xfee00000ULL
#define X86_MSI_LAST	0xfeefffffULL
/* AMD: the HyperTransport hole, unless EFR2 says it is ignored. */
#define AMD_HT_START	0xfd00000000ULL
#define AMD_HT_LAST	0xffffffffffULL
#define AMD_EFR2_HT_RANGE_IGNORE (1ULL << 11)

/* Enough for any config space (4 KiB) and any reserved_regions file. */
#define CONFIG_MAX	4096
#define RESV_TEXT_MAX	16384

struct scan {
	const struct log_sink *log;
	const char *sysroot;		/* NULL: the running system */
	char root_real[PATH_MAX];	/* realpath(sysroot), "" for "/" */
	struct inventory *inv;
	char *errmsg;
	size_t errlen;
};

static int set_error(char *errmsg, size_t errlen, int ret, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

static int set_error(char *errmsg, size_t errlen, int ret, const char *fmt,
		     ...)
{
	va_list ap;

	if (errmsg && errlen) {
		va_start(ap, fmt);
		vsnprintf(errmsg, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static bool is_running_system(const char *sysroot)
{
	return !sysroot || !sysroot[0] || !strcmp(sysroot, "/");
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static int copy_name(char *dst, size_t size, const char *src)
{
	if (strlen(src) >= size)
		return -ENAMETOOLONG;
	strcpy(dst, src);
	return 0;
}

/* path + "/" + leaf, as a running-system path. */
static int join(char *buf, size_t size, const char *path, const char *leaf)
{
	int n = snprintf(buf, size, "%s/%s", path, leaf);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int check_dir(const char *sysroot, const char *path)
{
	char full[PATH_MAX];
	struct stat st;
	int ret;

	ret = sysfs_path(full, sizeof(full), sysroot, path);
	if (ret)
		return ret;
	if (stat(full, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* ---- reserved regions -------------------------------------------------- */

/*
 * One "0xSTART 0xLAST type" line (exactly three words); *skip for types
 * that do not count.  @line is clobbered.
 */
static int parse_reserved_line(char *line, uint64_t *start, uint64_t *last,
			       bool *skip)
{
	char *word[4], *save = NULL;
	int n = 0;

	for (char *w = strtok_r(line, " \t", &save); w && n < 4;
	     w = strtok_r(NULL, " \t", &save))
		word[n++] = w;
	if (n != 3)
		return -EINVAL;
	if (parse_u64(word[0], 16, start) || parse_u64(word[1], 16, last))
		return -EINVAL;
	if (*start > *last)
		return -EINVAL;
	*skip = !strcmp(word[2], "direct-relaxable");
	return 0;
}

int discovery_parse_reserved(const char *text,
			     struct ioasid_iova_range **ranges, uint32_t *nr,
			     char *errmsg, size_t errlen)
{
	unsigned int lineno = 0;
	const char *p = text;

	while (*p) {
		const char *eol = strchr(p, '\n');
		char line[128], copy[128];
		uint64_t start, last;
		bool skip;
		size_t len;
		int ret;

		if (!eol)
			eol = p + strlen(p);
		len = (size_t)(eol - p);
		lineno++;
		if (len >= sizeof(line))
			return set_error(errmsg, errlen, -EINVAL,
					 "line %u: too long", lineno);
		memcpy(line, p, len);
		line[len] = '\0';
		p = *eol ? eol + 1 : eol;
		if (!len)
			continue;
		memcpy(copy, line, len + 1);
		if (parse_reserved_line(copy, &start, &last, &skip))
			return set_error(errmsg, errlen, -EINVAL,
					 "line %u: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"%s\"",
					 lineno, line);
		if (skip)
			continue;
		ret = inventory_add_range(ranges, nr, start, last);
		if (ret)
			return set_error(errmsg, errlen, ret,
					 "out of memory");
	}
	return 0;
}

/* The group's reserved_regions; a missing file means none. */
static int read_group_reserved(const struct log_sink *log, const char *sysroot,
			       struct inv_device *dev, char *errmsg,
			       size_t errlen)
{
	char path[128], why[192];
	char *text;
	int n, ret;

	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%u/reserved_regions",
		 dev->info.group);
	text = malloc(RESV_TEXT_MAX);
	if (!text)
		return set_error(errmsg, errlen, -ENOMEM, "out of memory");
	n = sysfs_read_text(sysroot, path, text, RESV_TEXT_MAX);
	if (n < 0) {
		dbg(log, "%s: %s: %s", dev->info.name, path, strerror(-n));
		free(text);
		return 0;
	}
	ret = discovery_parse_reserved(text, &dev->reserved, &dev->nr_reserved,
				       why, sizeof(why));
	free(text);
	if (ret)
		return set_error(errmsg, errlen, ret, "%s: %s", path, why);
	return 0;
}

/* ---- one IOMMU unit ------------------------------------------------------ */

static bool read_vtd(const struct log_sink *log, const char *sysroot,
		     const char *syspath, struct inv_iommu *unit)
{
	char path[PATH_MAX];
	uint64_t cap, ecap;
	int ret;

	if (join(path, sizeof(path), syspath, "intel-iommu") ||
	    check_dir(sysroot, path))
		return false;
	ret = join(path, sizeof(path), syspath, "intel-iommu/cap");
	if (!ret)
		ret = sysfs_read_hex(sysroot, path, &cap);
	if (!ret)
		ret = join(path, sizeof(path), syspath, "intel-iommu/ecap");
	if (!ret)
		ret = sysfs_read_hex(sysroot, path, &ecap);
	if (ret) {
		warn(log, "%s: VT-d registers unreadable: %s",
		     unit->info.name, strerror(-ret));
		return false;
	}
	vtd_decode(cap, ecap, &unit->info);
	return true;
}

static bool read_amd(const struct log_sink *log, const char *sysroot,
		     const char *syspath, struct inv_iommu *unit,
		     uint64_t *efr2)
{
	char path[PATH_MAX], text[80];
	uint64_t cap = 0, efr;
	int ret;

	if (join(path, sizeof(path), syspath, "amd-iommu") ||
	    check_dir(sysroot, path))
		return false;
	ret = join(path, sizeof(path), syspath, "amd-iommu/features");
	if (!ret)
		ret = sysfs_read_text(sysroot, path, text, sizeof(text));
	if (ret >= 0)
		ret = amd_parse_features(text, &efr, efr2);
	if (ret < 0) {
		warn(log, "%s: AMD-Vi features unreadable: %s",
		     unit->info.name, strerror(-ret));
		return false;
	}
	/* the capability header is informative only */
	if (!join(path, sizeof(path), syspath, "amd-iommu/cap"))
		sysfs_read_hex(sysroot, path, &cap);
	amd_decode((uint32_t)cap, efr, &unit->info);
	return true;
}

/* Regions the architecture reserves for every device behind the unit. */
static int add_unit_reserved(struct inv_iommu *unit, uint64_t efr2)
{
	int ret = 0;

	if (!strcmp(unit->info.kind, "intel-vtd") ||
	    !strcmp(unit->info.kind, "amd-vi"))
		ret = inventory_add_range(&unit->reserved, &unit->nr_reserved,
					  X86_MSI_START, X86_MSI_LAST);
	if (!ret && !strcmp(unit->info.kind, "amd-vi") &&
	    !(efr2 & AMD_EFR2_HT_RANGE_IGNORE))
		ret = inventory_add_range(&unit->reserved, &unit->nr_reserved,
					  AMD_HT_START, AMD_HT_LAST);
	return ret;
}

static void set_unknown_unit(struct inv_iommu *unit)
{
	snprintf(unit->info.kind, sizeof(unit->info.kind), "unknown");
}

int discovery_read_iommu(const struct log_sink *log, const char *sysroot,
			 const char *syspath, struct inv_iommu *unit,
			 char *errmsg, size_t errlen)
{
	uint64_t efr2 = 0;
	int ret;

	ret = check_dir(sysroot, syspath);
	if (ret)
		return set_error(errmsg, errlen, ret, "%s: %s", syspath,
				 strerror(-ret));
	ret = copy_name(unit->info.name, sizeof(unit->info.name),
			base_name(syspath));
	if (ret)
		return set_error(errmsg, errlen, ret, "%s: name too long",
				 syspath);
	unit->info.size = sizeof(unit->info);
	if (!read_vtd(log, sysroot, syspath, unit) &&
	    !read_amd(log, sysroot, syspath, unit, &efr2))
		set_unknown_unit(unit);
	ret = add_unit_reserved(unit, efr2);
	if (ret)
		return set_error(errmsg, errlen, ret, "out of memory");
	dbg(log, "%s: kind %s flags %#x", unit->info.name, unit->info.kind,
	    unit->info.flags);
	return 0;
}

/* ---- one PCI device ------------------------------------------------------ */

static void read_ids(const struct log_sink *log, const char *sysroot,
		     const char *syspath, struct inv_device *dev)
{
	static const char *const names[] = { "vendor", "device", "class" };
	static const uint64_t max[] = { 0xffff, 0xffff, 0xffffff };
	uint64_t val[ARRAY_SIZE(names)] = { 0 };
	char path[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int ret = join(path, sizeof(path), syspath, names[i]);

		if (!ret)
			ret = sysfs_read_hex(sysroot, path, &val[i]);
		if (!ret && val[i] > max[i])
			ret = -ERANGE;
		if (ret) {
			warn(log, "%s: %s unreadable: %s", dev->info.name,
			     names[i], strerror(-ret));
			val[i] = 0;
		}
	}
	dev->info.vendor = (uint16_t)val[0];
	dev->info.device = (uint16_t)val[1];
	dev->info.class_code = (uint32_t)val[2];
}

/* Optional link: its last component into @buf, or "" when absent. */
static void read_link(const struct log_sink *log, const char *sysroot,
		      const char *syspath, const char *leaf, char *buf,
		      size_t size)
{
	char path[PATH_MAX];
	int ret;

	buf[0] = '\0';
	ret = join(path, sizeof(path), syspath, leaf);
	if (!ret)
		ret = sysfs_link_name(sysroot, path, buf, size);
	if (ret && ret != -ENOENT)
		warn(log, "%s: %s: %s", syspath, leaf, strerror(-ret));
	if (ret)
		buf[0] = '\0';
}

static void read_group(const struct log_sink *log, const char *sysroot,
		       const char *syspath, struct inv_device *dev)
{
	char name[32];
	uint64_t group;

	dev->info.group = ~0U;
	read_link(log, sysroot, syspath, "iommu_group", name, sizeof(name));
	if (!name[0])
		return;
	if (parse_u64(name, 10, &group) || group >= UINT32_MAX) {
		warn(log, "%s: iommu_group \"%s\" is not a group number",
		     dev->info.name, name);
		return;
	}
	dev->info.group = (uint32_t)group;
}

/* "vfioN", digits only after the prefix. */
static bool is_vfio_cdev_name(const char *name)
{
	if (strncmp(name, "vfio", 4) || !name[4])
		return false;
	for (const char *p = name + 4; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* The VFIO cdev lives in the vfio-dev class: SYSPATH/vfio-dev/vfioN. */
static void read_vfio_cdev(const char *sysroot, const char *syspath,
			   struct inv_device *dev)
{
	char path[PATH_MAX], full[PATH_MAX];
	struct dirent *de;
	DIR *dir;

	if (join(path, sizeof(path), syspath, "vfio-dev") ||
	    sysfs_path(full, sizeof(full), sysroot, path))
		return;
	dir = opendir(full);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (!is_vfio_cdev_name(de->d_name) ||
		    strlen(de->d_name) >= sizeof(dev->info.vfio_cdev))
			continue;
		strcpy(dev->info.vfio_cdev, de->d_name);
		snprintf(dev->vfio_dev_path, sizeof(dev->vfio_dev_path),
			 "/dev/vfio/devices/%s", dev->info.vfio_cdev);
		break;
	}
	closedir(dir);
}

static void read_config(const struct log_sink *log, const char *sysroot,
			const char *syspath, struct inv_device *dev)
{
	struct pcie_config_info cfg;
	char path[PATH_MAX];
	uint8_t *bytes;
	ssize_t len = -ENOMEM;

	bytes = calloc(1, CONFIG_MAX);
	if (bytes && !join(path, sizeof(path), syspath, "config"))
		len = sysfs_read_binary(sysroot, path, bytes, CONFIG_MAX);
	if (len < 0) {
		dbg(log, "%s: config unreadable: %s", dev->info.name,
		    strerror((int)-len));
		len = 0;
	}
	pcie_parse_config(bytes, (size_t)len, &cfg);
	free(bytes);
	if (cfg.malformed)
		warn(log, "%s: malformed capability list", dev->info.name);
	dev->info.flags |= cfg.flags;
	dev->pcie_cap_offset = cfg.pcie_cap_offset;
	dev->pcie_devctl = cfg.devctl;
	dev->info.pasid_bits = cfg.pasid_bits;
}

/*
 * VFIO's no-IOMMU mode makes a fake group (named "vfio-noiommu") so that
 * unsafe userspace drivers can work: there is no translation behind it.
 */
static bool is_noiommu_group(const char *sysroot, uint32_t group)
{
	char path[96], name[32];

	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%u/name", group);
	return sysfs_read_text(sysroot, path, name, sizeof(name)) > 0 &&
	       !strcmp(name, "vfio-noiommu");
}

/* Flags and device nodes that follow from what was read. */
static void derive_flags(const char *sysroot, struct inv_device *dev)
{
	bool grouped = dev->info.group != ~0U;
	bool noiommu = grouped && is_noiommu_group(sysroot, dev->info.group);

	/* vfio-pci, or a vfio-pci variant driver (it has a VFIO cdev) */
	if (!strcmp(dev->info.driver, "vfio-pci") || dev->info.vfio_cdev[0])
		dev->info.flags |= IOASID_DEVICE_VFIO;
	/* IOVAs work behind an IOMMU, or with the device's own ATS */
	if ((grouped && !noiommu) || (dev->info.flags & IOASID_DEVICE_ATS))
		dev->info.flags |= IOASID_DEVICE_TRANSLATES;
	if ((dev->info.flags & IOASID_DEVICE_VFIO) && grouped)
		snprintf(dev->group_dev_path, sizeof(dev->group_dev_path),
			 noiommu ? "/dev/vfio/noiommu-%u" : "/dev/vfio/%u",
			 dev->info.group);
}

int discovery_read_device(const struct log_sink *log, const char *sysroot,
			  const char *syspath, struct inv_device *dev,
			  char *errmsg, size_t errlen)
{
	int ret;

	ret = check_dir(sysroot, syspath);
	if (ret)
		return set_error(errmsg, errlen, ret, "%s: %s", syspath,
				 strerror(-ret));
	if (copy_name(dev->info.name, sizeof(dev->info.name),
		      base_name(syspath)) ||
	    copy_name(dev->syspath, sizeof(dev->syspath), syspath))
		return set_error(errmsg, errlen, -ENAMETOOLONG,
				 "%s: name too long", syspath);
	dev->info.size = sizeof(dev->info);
	read_ids(log, sysroot, syspath, dev);
	read_link(log, sysroot, syspath, "driver", dev->info.driver,
		  sizeof(dev->info.driver));
	read_link(log, sysroot, syspath, "iommu", dev->info.iommu,
		  sizeof(dev->info.iommu));
	read_group(log, sysroot, syspath, dev);
	read_vfio_cdev(sysroot, syspath, dev);
	read_config(log, sysroot, syspath, dev);
	derive_flags(sysroot, dev);
	if (dev->info.group != ~0U)
		return read_group_reserved(log, sysroot, dev, errmsg, errlen);
	return 0;
}

/* ---- the scan -------------------------------------------------------------- */

static int scan_error(struct scan *s, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int scan_error(struct scan *s, int ret, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->errmsg && s->errlen)
		snprintf(s->errmsg, s->errlen, "%s", msg);
	err(s->log, "%s", msg);
	return ret;
}

static int add_iommu(struct scan *s, const char *syspath)
{
	struct inv_iommu unit = { 0 }, *slot;
	int ret;

	ret = discovery_read_iommu(s->log, s->sysroot, syspath, &unit,
				   s->errmsg, s->errlen);
	if (ret == -ENOENT || ret == -ENAMETOOLONG) {
		warn(s->log, "%s skipped: %s", syspath, strerror(-ret));
		return 0;
	}
	if (!ret && inventory_find_iommu(s->inv, unit.info.name)) {
		dbg(s->log, "%s listed twice", syspath);
		free(unit.reserved);
		return 0;
	}
	if (!ret)
		ret = inventory_add_iommu(s->inv, &slot);
	if (ret) {
		free(unit.reserved);
		return ret;
	}
	*slot = unit;
	return 0;
}

static int add_device(struct scan *s, const char *syspath)
{
	struct inv_device dev = { 0 }, *slot;
	int ret;

	ret = discovery_read_device(s->log, s->sysroot, syspath, &dev,
				    s->errmsg, s->errlen);
	if (ret == -ENOENT || ret == -ENAMETOOLONG) {
		warn(s->log, "%s skipped: %s", syspath, strerror(-ret));
		return 0;
	}
	if (!ret && inventory_find_device(s->inv, dev.info.name)) {
		free(dev.reserved);
		return 0;
	}
	if (!ret)
		ret = inventory_add_device(s->inv, &slot);
	if (ret) {
		free(dev.reserved);
		return ret;
	}
	*slot = dev;
	return 0;
}

typedef int (*add_fn)(struct scan *s, const char *syspath);

/* Running system: let libudev list the subsystem. */
static int enumerate_udev(struct scan *s, struct udev *udev,
			  const char *subsystem, add_fn add)
{
	struct udev_enumerate *e;
	struct udev_list_entry *entry;
	int ret;

	e = udev_enumerate_new(udev);
	if (!e)
		return scan_error(s, errno ? -errno : -ENOMEM,
				  "udev_enumerate_new failed");
	ret = udev_enumerate_add_match_subsystem(e, subsystem);
	if (!ret)
		ret = udev_enumerate_scan_devices(e);
	if (ret < 0) {
		udev_enumerate_unref(e);
		return scan_error(s, ret, "listing %s devices: %s", subsystem,
				  strerror(-ret));
	}
	udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
		ret = add(s, udev_list_entry_get_name(entry));
		if (ret)
			break;
	}
	udev_enumerate_unref(e);
	return ret;
}

/*
 * Recorded tree: the real path of SYSROOT/dir/name with the sysroot cut
 * off, i.e. the syspath the running system would have reported.
 */
static int resolve_syspath(struct scan *s, const char *full, char *syspath,
			   size_t size)
{
	char real[PATH_MAX];
	size_t rootlen = strlen(s->root_real);

	if (!realpath(full, real))
		return -errno;
	if (strncmp(real, s->root_real, rootlen) || real[rootlen] != '/')
		return -EXDEV;		/* points out of the tree */
	return copy_name(syspath, size, real + rootlen);
}

static int enumerate_dir(struct scan *s, const char *dirpath, add_fn add)
{
	char full[PATH_MAX], entry[PATH_MAX], syspath[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if (sysfs_path(full, sizeof(full), s->sysroot, dirpath))
		return scan_error(s, -ENAMETOOLONG, "sysroot path too long");
	dir = opendir(full);
	if (!dir && errno == ENOENT)
		return 0;		/* no such subsystem: nothing to list */
	if (!dir)
		return scan_error(s, -errno, "%s: %s", full, strerror(errno));
	while (!ret && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (join(entry, sizeof(entry), full, de->d_name) ||
		    resolve_syspath(s, entry, syspath, sizeof(syspath))) {
			warn(s->log, "%s/%s: skipped (dangling or outside the tree)",
			     dirpath, de->d_name);
			continue;
		}
		ret = add(s, syspath);
	}
	closedir(dir);
	return ret;
}

static int scan_running(struct scan *s)
{
	struct udev *udev;
	int ret;

	errno = 0;
	udev = udev_new();
	if (!udev)
		return scan_error(s, errno ? -errno : -ENOMEM,
				  "udev_new failed");
	ret = enumerate_udev(s, udev, "iommu", add_iommu);
	if (!ret)
		ret = enumerate_udev(s, udev, "pci", add_device);
	udev_unref(udev);
	return ret;
}

static int scan_tree(struct scan *s)
{
	int ret;

	if (!realpath(s->sysroot, s->root_real))
		return scan_error(s, -errno, "%s: %s", s->sysroot,
				  strerror(errno));
	if (!strcmp(s->root_real, "/"))
		s->root_real[0] = '\0';
	/* from here on, independent of the working directory */
	s->sysroot = s->root_real;
	ret = enumerate_dir(s, "/sys/class/iommu", add_iommu);
	if (!ret)
		ret = enumerate_dir(s, "/sys/bus/pci/devices", add_device);
	return ret;
}

/* A device names a unit class/iommu did not list: keep it consistent. */
static int add_missing_units(struct scan *s)
{
	for (uint32_t i = 0; i < s->inv->nr_devices; i++) {
		const char *name = s->inv->devices[i].info.iommu;
		struct inv_iommu *unit;
		int ret;

		if (!name[0] || inventory_find_iommu(s->inv, name))
			continue;
		warn(s->log, "%s: IOMMU %s is not in class/iommu",
		     s->inv->devices[i].info.name, name);
		ret = inventory_add_iommu(s->inv, &unit);
		if (ret)
			return scan_error(s, ret, "out of memory");
		strcpy(unit->info.name, name);
		set_unknown_unit(unit);
	}
	return 0;
}

int discovery_scan(const struct log_sink *log, const char *sysroot,
		   struct inventory *inv, char *errmsg, size_t errlen)
{
	struct scan s = {
		.log = log,
		.sysroot = is_running_system(sysroot) ? NULL : sysroot,
		.inv = inv,
		.errmsg = errmsg,
		.errlen = errlen,
	};
	int ret;

	memset(inv, 0, sizeof(*inv));
	ret = check_dir(s.sysroot, "/sys");
	if (ret)
		return scan_error(&s, ret, "%s/sys: %s",
				  s.sysroot ? s.sysroot : "", strerror(-ret));
	ret = s.sysroot ? scan_tree(&s) : scan_running(&s);
	if (!ret)
		ret = add_missing_units(&s);
	if (ret) {
		inventory_release(inv);
		return ret;
	}
	inventory_sort(inv);
	inventory_count_devices(inv);
	info(log, "discovered %u IOMMU units, %u PCI devices",
	     inv->nr_iommus, inv->nr_devices);
	return 0;
}
