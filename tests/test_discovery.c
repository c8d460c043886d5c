/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * discovery/: the parsers on their own (config-space walk, VT-d and AMD
 * decoding, reserved regions), whole scans of recorded trees under an
 * injected sysroot, trees built here to break things on purpose, the
 * real /sys of this machine, and the libudev paths (enumeration and
 * hotplug) against umockdev testbeds.
 *
 * The umockdev tests (built with -DHAVE_UMOCKDEV and libumockdev) need
 * libumockdev-preload: main() re-executes the binary under
 * umockdev-wrapper when it is installed (set IOASID_TEST_NO_REEXEC=1 to
 * prevent that; UMOCKDEV_WRAPPER names the wrapper); without it those
 * tests are skipped, saying why.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#ifdef HAVE_UMOCKDEV
#include <umockdev.h>
#endif

#include "discovery/discovery.h"
#include "util/macros.h"

#define MSI_START	0xfee00000ULL
#define MSI_LAST	0xfeefffffULL
#define QEMU_VTD_CAP	0xd2008c22260286ULL
#define QEMU_ECAP_SC_ON	0xf00fcaULL
#define QEMU_ECAP_SC_OFF 0xf00f4aULL

/* ---- helpers ---------------------------------------------------------- */

static const char *data_dir(void)
{
	static char dir[PATH_MAX / 2];
	const char *src = getenv("top_srcdir");

	if (!src || !*src)
		src = getenv("srcdir");
	snprintf(dir, sizeof(dir), "%s/tests/data", src && *src ? src : ".");
	return dir;
}

/*
 * The recorded trees are kept as tar archives: sysfs is full of symlinks,
 * and a release tarball (automake's dist) would turn them into copies.
 * Each test process unpacks the tree it needs into a private directory.
 */
static char unpacked[PATH_MAX / 2];

static void remove_unpacked(void)
{
	char cmd[PATH_MAX];

	if (!unpacked[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", unpacked);
	if (system(cmd) != 0)
		fprintf(stderr, "test_discovery: cannot remove %s\n", unpacked);
	unpacked[0] = '\0';
}

static void data_tree(char *buf, size_t size, const char *name)
{
	char cmd[PATH_MAX * 2];

	if (!unpacked[0]) {
		snprintf(unpacked, sizeof(unpacked), "/tmp/ioasid-sysfs-XXXXXX");
		cr_assert(mkdtemp(unpacked), "mkdtemp: %s", strerror(errno));
		atexit(remove_unpacked);
	}
	snprintf(buf, size, "%s/%s", unpacked, name);
	if (access(buf, F_OK) == 0)
		return;
	snprintf(cmd, sizeof(cmd), "tar -xJf '%s/%s.tar.xz' -C '%s'", data_dir(),
		 name, unpacked);
	cr_assert_eq(system(cmd), 0, "cannot unpack %s", name);
}

static int scan(const char *root, struct inventory *inv, char *err,
		size_t errlen)
{
	err[0] = '\0';
	return discovery_scan(NULL, root, inv, err, errlen);
}

static void scan_ok(const char *root, struct inventory *inv)
{
	char err[512];
	int ret = scan(root, inv, err, sizeof(err));

	cr_assert_eq(ret, 0, "scan of %s: %d %s", root ? root : "/", ret, err);
}

static void assert_range(const struct ioasid_iova_range *r, uint64_t start,
			 uint64_t last)
{
	cr_assert_eq(r->start, start, "start %#llx, want %#llx",
		     (unsigned long long)r->start, (unsigned long long)start);
	cr_assert_eq(r->last, last, "last %#llx, want %#llx",
		     (unsigned long long)r->last, (unsigned long long)last);
}

/* A PCI config space to fill: header, then capabilities. */
struct cfg {
	uint8_t b[4096];
};

static void cfg_header(struct cfg *c, uint16_t vendor, uint16_t device)
{
	memset(c, 0, sizeof(*c));
	c->b[0] = vendor & 0xff;
	c->b[1] = vendor >> 8;
	c->b[2] = device & 0xff;
	c->b[3] = device >> 8;
}

/* Standard capability @id at @pos, linked from @prev (0: list head). */
static void cfg_cap(struct cfg *c, uint8_t prev, uint8_t pos, uint8_t id)
{
	c->b[6] |= 0x10;			/* status: capability list */
	c->b[prev ? prev + 1 : 0x34] = pos;
	c->b[pos] = id;
	c->b[pos + 1] = 0;
}

static void cfg_u16(struct cfg *c, size_t off, uint16_t v)
{
	c->b[off] = v & 0xff;
	c->b[off + 1] = v >> 8;
}

static void cfg_u32(struct cfg *c, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		c->b[off + i] = (v >> (8 * i)) & 0xff;
}

static void cfg_ext(struct cfg *c, size_t pos, uint16_t id, size_t next)
{
	cfg_u32(c, pos, id | 1u << 16 | (uint32_t)next << 20);
}

/* A PCIe endpoint: MSI at 0x40, Express at 0x60 with @devctl. */
static void cfg_pcie(struct cfg *c, uint16_t devctl)
{
	cfg_header(c, 0x8086, 0x1572);
	cfg_cap(c, 0, 0x40, 0x05);
	cfg_cap(c, 0x40, 0x60, 0x10);
	cfg_u16(c, 0x60 + 2, 0x0002);
	cfg_u16(c, 0x60 + 8, devctl);
}

static struct pcie_config_info walk(const struct cfg *c, size_t len)
{
	struct pcie_config_info info;

	pcie_parse_config(c->b, len, &info);
	return info;
}

/* ---- scratch trees ---------------------------------------------------- */

static char tree[256];

static void tree_path(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", tree, rel);
}

static void mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
	mkdir(tmp, 0755);
}

static void put(const char *rel, const void *data, size_t len)
{
	char path[PATH_MAX], dir[PATH_MAX];
	FILE *f;

	tree_path(path, sizeof(path), rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void put_text(const char *rel, const char *text)
{
	put(rel, text, strlen(text));
}

static void put_link(const char *rel, const char *target)
{
	char path[PATH_MAX], dir[PATH_MAX];

	tree_path(path, sizeof(path), rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	cr_assert_eq(symlink(target, path), 0, "%s: %s", path, strerror(errno));
}

#define DEVDIR "sys/devices/pci0000:00/"

/* A PCI device in the tree, listed in bus/pci/devices. */
static void put_device(const char *name, const char *vendor,
		       const char *device, const char *class_code)
{
	char rel[PATH_MAX], target[PATH_MAX];

	snprintf(target, sizeof(target), "%s/" DEVDIR "%s", tree, name);
	mkdirs(target);
	snprintf(rel, sizeof(rel), DEVDIR "%s/vendor", name);
	if (vendor)
		put_text(rel, vendor);
	snprintf(rel, sizeof(rel), DEVDIR "%s/device", name);
	if (device)
		put_text(rel, device);
	snprintf(rel, sizeof(rel), DEVDIR "%s/class", name);
	if (class_code)
		put_text(rel, class_code);
	snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s", name);
	snprintf(target, sizeof(target), "../../../devices/pci0000:00/%s", name);
	put_link(rel, target);
}

static void put_dev_attr(const char *name, const char *attr, const void *data,
			 size_t len)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), DEVDIR "%s/%s", name, attr);
	put(rel, data, len);
}

static void put_dev_link(const char *name, const char *attr,
			 const char *target)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), DEVDIR "%s/%s", name, attr);
	put_link(rel, target);
}

/* Device @name in IOMMU group @group behind unit @unit. */
static void put_grouped(const char *name, int group, const char *unit)
{
	char target[PATH_MAX];

	snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%d",
		 group);
	put_dev_link(name, "iommu_group", target);
	snprintf(target, sizeof(target), "../../virtual/iommu/%s", unit);
	put_dev_link(name, "iommu", target);
}

static void put_unit(const char *name, const char *dir, const char *attr1,
		     const char *val1, const char *attr2, const char *val2)
{
	char rel[PATH_MAX], target[PATH_MAX];

	snprintf(rel, sizeof(rel), "sys/devices/virtual/iommu/%s/%s/%s", name,
		 dir, attr1);
	put_text(rel, val1);
	if (attr2) {
		snprintf(rel, sizeof(rel), "sys/devices/virtual/iommu/%s/%s/%s",
			 name, dir, attr2);
		put_text(rel, val2);
	}
	snprintf(rel, sizeof(rel), "sys/class/iommu/%s", name);
	snprintf(target, sizeof(target), "../../devices/virtual/iommu/%s", name);
	put_link(rel, target);
}

static void put_reserved(int group, const char *text)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/reserved_regions",
		 group);
	put_text(rel, text);
}

static void make_tree(void)
{
	char sys[PATH_MAX];

	strcpy(tree, "/tmp/ioasid-sysfs-XXXXXX");
	cr_assert_not_null(mkdtemp(tree));
	tree_path(sys, sizeof(sys), "sys");
	cr_assert_eq(mkdir(sys, 0755), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static void remove_tree(void)
{
	if (tree[0])
		nftw(tree, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tree[0] = '\0';
}

/* ---- config space walk --------------------------------------------------- */

Test(pcie, unreadable_config_is_unknown)
{
	struct pcie_config_info info;

	pcie_parse_config(NULL, 0, &info);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
	pcie_parse_config((const uint8_t *)"\x86\x80", 2, &info);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
}

Test(pcie, unprivileged_64_bytes_is_unknown)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_pcie(&c, 0x0800);
	info = walk(&c, 64);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
	cr_assert_eq(info.pcie_cap_offset, 0);
	cr_assert_not(info.malformed);
}

Test(pcie, no_capability_list_is_conventional_pci)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 0x8086, 0x29c0);
	/* even 64 bytes are enough to know there is no list */
	info = walk(&c, 64);
	cr_assert_eq(info.flags, 0);
	info = walk(&c, 256);
	cr_assert_eq(info.flags, 0);
	cr_assert_eq(info.pcie_cap_offset, 0);
}

Test(pcie, capabilities_without_express)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 0x1234, 0x11e8);
	cfg_cap(&c, 0, 0x40, 0x05);
	cfg_cap(&c, 0x40, 0x50, 0x11);
	info = walk(&c, 256);
	cr_assert_eq(info.flags, 0);
	cr_assert_eq(info.pcie_cap_offset, 0);
	cr_assert_not(info.malformed);
}

Test(pcie, enable_no_snoop_set_and_clear)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_pcie(&c, 0x2810);
	info = walk(&c, 256);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP);
	cr_assert_eq(info.pcie_cap_offset, 0x60);
	cr_assert_eq(info.devctl, 0x2810);

	cfg_pcie(&c, 0x2010);
	info = walk(&c, 4096);
	cr_assert_eq(info.flags, 0);
	cr_assert_eq(info.devctl, 0x2010);
}

Test(pcie, devctl_cut_off_is_unknown)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_pcie(&c, 0x0800);
	info = walk(&c, 0x60 + 9);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
	cr_assert_eq(info.pcie_cap_offset, 0x60);
	info = walk(&c, 0x60 + 10);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP);
}

Test(pcie, express_capability_running_past_0xff)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 1, 2);
	cfg_cap(&c, 0, 0xfc, 0x10);
	cfg_u16(&c, 0x104, 0x0800);
	info = walk(&c, 4096);
	cr_assert(info.malformed);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
}

Test(pcie, self_loop_terminates)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 1, 2);
	cfg_cap(&c, 0, 0x40, 0x05);
	c.b[0x41] = 0x40;
	info = walk(&c, 256);
	cr_assert(info.malformed);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
}

Test(pcie, long_loop_terminates)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 1, 2);
	/* 0x40 -> 0x44 -> ... -> 0xfc -> 0x40: every slot, then a loop */
	c.b[6] = 0x10;
	c.b[0x34] = 0x40;
	for (int pos = 0x40; pos <= 0xfc; pos += 4) {
		c.b[pos] = 0x09;
		c.b[pos + 1] = pos == 0xfc ? 0x40 : pos + 4;
	}
	info = walk(&c, 256);
	cr_assert(info.malformed);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
}

Test(pcie, pointer_into_the_header)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 1, 2);
	cfg_cap(&c, 0, 0x40, 0x05);
	c.b[0x41] = 0x10;
	info = walk(&c, 256);
	cr_assert(info.malformed);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);

	cfg_header(&c, 1, 2);
	c.b[6] = 0x10;
	c.b[0x34] = 0x3c;
	info = walk(&c, 256);
	cr_assert(info.malformed);
}

Test(pcie, all_ones_is_a_gone_device)
{
	struct cfg c;
	struct pcie_config_info info;

	memset(&c, 0xff, sizeof(c));
	info = walk(&c, 256);
	cr_assert(info.malformed);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);
}

Test(pcie, pointer_low_bits_are_ignored)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_pcie(&c, 0x0800);
	c.b[0x34] = 0x43;
	c.b[0x41] = 0x63;
	info = walk(&c, 256);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP);
	cr_assert_eq(info.pcie_cap_offset, 0x60);
}

Test(pcie, cardbus_list_starts_at_0x14)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 1, 2);
	c.b[0x0e] = 0x02;
	c.b[6] = 0x10;
	c.b[0x14] = 0x80;
	c.b[0x80] = 0x10;
	cfg_u16(&c, 0x88, 0x0800);
	info = walk(&c, 256);
	cr_assert_eq(info.pcie_cap_offset, 0x80);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP);
}

Test(pcie, pasid_extended_capability)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_pcie(&c, 0);
	cfg_ext(&c, 0x100, 0x000f, 0x180);	/* ATS */
	cfg_ext(&c, 0x180, 0x001b, 0);		/* PASID */
	cfg_u16(&c, 0x184, 0x1406);		/* width 20, exec, priv */
	info = walk(&c, 4096);
	cr_assert_eq(info.pasid_offset, 0x180);
	cr_assert_eq(info.pasid_bits, 20);
	cr_assert_not(info.malformed);
	/* a read that stops inside the capability gives no width */
	info = walk(&c, 0x185);
	cr_assert_eq(info.pasid_bits, 0);
	/* none: 0 */
	cfg_ext(&c, 0x180, 0x0003, 0);		/* DSN instead */
	info = walk(&c, 4096);
	cr_assert_eq(info.pasid_bits, 0);
	cr_assert_eq(info.pasid_offset, 0);
}

Test(pcie, ats_extended_capability)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_pcie(&c, 0);
	cfg_ext(&c, 0x100, 0x0001, 0x148);	/* AER */
	cfg_ext(&c, 0x148, 0x0003, 0x200);	/* DSN */
	cfg_ext(&c, 0x200, 0x000f, 0);		/* ATS */
	info = walk(&c, 4096);
	cr_assert_eq(info.flags, IOASID_DEVICE_ATS);
	cr_assert_eq(info.ats_offset, 0x200);
	cr_assert_not(info.malformed);
	/* 256 bytes (or a cut read) do not reach it */
	info = walk(&c, 256);
	cr_assert_eq(info.flags, 0);
	info = walk(&c, 0x202);
	cr_assert_eq(info.flags, 0);
	info = walk(&c, 0x204);
	cr_assert_eq(info.flags, IOASID_DEVICE_ATS);
}

Test(pcie, extended_list_loops_and_bad_pointers)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_pcie(&c, 0x0800);
	cfg_ext(&c, 0x100, 0x0001, 0x140);
	cfg_ext(&c, 0x140, 0x0003, 0x100);	/* loop back */
	info = walk(&c, 4096);
	cr_assert(info.malformed);
	/* the no-snoop answer was already certain */
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP);

	cfg_ext(&c, 0x140, 0x0003, 0x0c0);	/* into standard space */
	info = walk(&c, 4096);
	cr_assert(info.malformed);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP);

	cfg_u32(&c, 0x100, 0xffffffff);		/* no extended space */
	info = walk(&c, 4096);
	cr_assert_not(info.malformed);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP);

	cfg_ext(&c, 0x100, 0x000f, 0xffc);	/* ATS, then the last dword */
	cfg_ext(&c, 0xffc, 0x0001, 0);
	info = walk(&c, 4096);
	cr_assert_eq(info.flags, IOASID_DEVICE_NO_SNOOP | IOASID_DEVICE_ATS);
}

Test(pcie, extended_space_ignored_without_express)
{
	struct cfg c;
	struct pcie_config_info info;

	cfg_header(&c, 1, 2);
	cfg_ext(&c, 0x100, 0x000f, 0);
	info = walk(&c, 4096);
	cr_assert_eq(info.flags, 0);
}

Test(pcie, longer_than_4k_is_clamped)
{
	static uint8_t big[8192];
	struct pcie_config_info info;

	memset(big, 0xff, sizeof(big));
	pcie_parse_config(big, sizeof(big), &info);
	cr_assert(info.malformed);
}

/* Every first pointer over a few fill patterns, then random bytes. */
Test(pcie, arbitrary_bytes_never_crash_or_hang)
{
	static const uint8_t fills[] = { 0x00, 0x10, 0x40, 0x44, 0xfc, 0xff };
	struct cfg c;
	unsigned int seed = 12345;

	for (size_t f = 0; f < ARRAY_SIZE(fills); f++) {
		for (int ptr = 0; ptr < 256; ptr++) {
			struct pcie_config_info info;

			memset(&c, fills[f], sizeof(c));
			c.b[6] = 0x10;
			c.b[0x34] = (uint8_t)ptr;
			info = walk(&c, 4096);
			if (info.pcie_cap_offset)
				cr_assert(info.pcie_cap_offset >= 0x40 &&
					  info.pcie_cap_offset <= 0xfc);
		}
	}
	for (int round = 0; round < 20000; round++) {
		struct pcie_config_info info;
		size_t len = (size_t)rand_r(&seed) % 4097;

		for (size_t i = 0; i < len; i++)
			c.b[i] = (uint8_t)rand_r(&seed);
		/* bias towards capability lists that look plausible */
		if (len > 0x40) {
			c.b[6] |= 0x10;
			c.b[0x34] |= 0x40;
		}
		info = walk(&c, len);
		if (info.flags & IOASID_DEVICE_NO_SNOOP)
			cr_assert(info.devctl & 0x0800);
		if (info.flags & IOASID_DEVICE_ATS)
			cr_assert(info.ats_offset >= 0x100 &&
				  info.ats_offset + 4u <= len);
		cr_assert_not((info.flags & IOASID_DEVICE_NO_SNOOP) &&
			      (info.flags & IOASID_DEVICE_NO_SNOOP_UNKNOWN));
	}
}

/* ---- VT-d and AMD decoding ---------------------------------------------- */

Test(vtd, qemu_snoop_control_on)
{
	struct ioasid_iommu_info info = { 0 };

	vtd_decode(QEMU_VTD_CAP, QEMU_ECAP_SC_ON, &info);
	cr_assert_str_eq(info.kind, "intel-vtd");
	cr_assert_eq(info.flags, IOASID_IOMMU_CAPS_KNOWN |
		     IOASID_IOMMU_SNOOP_CONTROL);
	cr_assert_eq(info.page_sizes, SZ_4K | SZ_2M | SZ_1G);
	cr_assert_eq(info.addr_width, 39);
	cr_assert_eq(info.cap, QEMU_VTD_CAP);
	cr_assert_eq(info.ecap, QEMU_ECAP_SC_ON);
}

Test(vtd, qemu_snoop_control_off)
{
	struct ioasid_iommu_info info = { 0 };

	vtd_decode(QEMU_VTD_CAP, QEMU_ECAP_SC_OFF, &info);
	cr_assert_eq(info.flags, IOASID_IOMMU_CAPS_KNOWN);
	cr_assert_eq(info.ecap, QEMU_ECAP_SC_OFF);
}

Test(vtd, scalable_mode_features)
{
	const uint64_t smts = 1ULL << 43, ssads = 1ULL << 45,
		       nest = 1ULL << 26, pasid = 1ULL << 40;
	struct ioasid_iommu_info info = { 0 };

	vtd_decode(QEMU_VTD_CAP, ssads | nest | pasid, &info);
	cr_assert_eq(info.flags, IOASID_IOMMU_CAPS_KNOWN,
		     "features need scalable mode");
	memset(&info, 0, sizeof(info));
	vtd_decode(QEMU_VTD_CAP, smts | ssads | nest | pasid, &info);
	cr_assert_eq(info.flags, IOASID_IOMMU_CAPS_KNOWN |
		     IOASID_IOMMU_DIRTY_TRACKING | IOASID_IOMMU_NESTING |
		     IOASID_IOMMU_PASID);
	memset(&info, 0, sizeof(info));
	vtd_decode(QEMU_VTD_CAP, smts | ssads, &info);
	cr_assert_eq(info.flags, IOASID_IOMMU_CAPS_KNOWN |
		     IOASID_IOMMU_DIRTY_TRACKING);
}

static uint64_t vtd_cap(unsigned int mgaw, unsigned int sagaw, bool sp2m,
			bool sp1g)
{
	return (uint64_t)(mgaw - 1) << 16 | (uint64_t)sagaw << 8 |
	       (sp2m ? 1ULL << 34 : 0) | (sp1g ? 1ULL << 35 : 0);
}

Test(vtd, address_width_and_page_sizes)
{
	struct ioasid_iommu_info info = { 0 };

	vtd_decode(vtd_cap(48, 0x4 | 0x2, true, false), 0, &info);
	cr_assert_eq(info.addr_width, 48);
	cr_assert_eq(info.page_sizes, SZ_4K | SZ_2M);
	/* MGAW wider than any page-table depth offered */
	vtd_decode(vtd_cap(57, 0x4, false, false), 0, &info);
	cr_assert_eq(info.addr_width, 48);
	cr_assert_eq(info.page_sizes, SZ_4K);
	vtd_decode(vtd_cap(57, 0x8 | 0x4, false, true), 0, &info);
	cr_assert_eq(info.addr_width, 57);
	cr_assert_eq(info.page_sizes, SZ_4K | SZ_1G);
	/* no SAGAW (first-stage only): MGAW alone */
	vtd_decode(vtd_cap(46, 0, false, false), 0, &info);
	cr_assert_eq(info.addr_width, 46);
	/* reserved SAGAW bit 4 is not a width */
	vtd_decode(vtd_cap(39, 0x10 | 0x2, false, false), 0, &info);
	cr_assert_eq(info.addr_width, 39);
}

Test(amd, decode)
{
	const uint64_t gt = 1ULL << 4, ppr = 1ULL << 1, hdsup = 1ULL << 52,
		       giosup = 1ULL << 48, hats_5 = 1ULL << 10;
	struct ioasid_iommu_info info = { 0 };

	amd_decode(0x190b001, 0, &info);
	cr_assert_str_eq(info.kind, "amd-vi");
	cr_assert_eq(info.flags, IOASID_IOMMU_CAPS_KNOWN |
		     IOASID_IOMMU_SNOOP_CONTROL);
	cr_assert_eq(info.addr_width, 48);
	cr_assert(info.page_sizes & SZ_4K);
	cr_assert(info.page_sizes & SZ_2M);
	cr_assert(info.page_sizes & SZ_1G);
	cr_assert(info.page_sizes & 0x2000, "AMD v1 maps 8K pages too");
	cr_assert_not(info.page_sizes & 0xfff);
	cr_assert_not(info.page_sizes & (1ULL << 39), "no 512G pages");
	cr_assert_not(info.page_sizes >> 48);
	cr_assert_eq(info.cap, 0x190b001);

	memset(&info, 0, sizeof(info));
	amd_decode(0, gt | ppr | hdsup | giosup | hats_5, &info);
	cr_assert_eq(info.flags, IOASID_IOMMU_CAPS_KNOWN |
		     IOASID_IOMMU_SNOOP_CONTROL | IOASID_IOMMU_DIRTY_TRACKING |
		     IOASID_IOMMU_PASID | IOASID_IOMMU_NESTING);
	cr_assert_eq(info.addr_width, 57);

	memset(&info, 0, sizeof(info));
	amd_decode(0, 2ULL << 10, &info);
	cr_assert_eq(info.addr_width, 64);
	cr_assert(info.page_sizes & (1ULL << 63));
}

Test(amd, features_text)
{
	uint64_t efr, efr2;

	cr_assert_eq(amd_parse_features("25bf732fa2295afe", &efr, &efr2), 0);
	cr_assert_eq(efr, 0x25bf732fa2295afeULL);
	cr_assert_eq(efr2, 0);
	/* newer kernels: efr:efr2 */
	cr_assert_eq(amd_parse_features("25bf732fa2295afe:53", &efr, &efr2), 0);
	cr_assert_eq(efr, 0x25bf732fa2295afeULL);
	cr_assert_eq(efr2, 0x53);
	/* some kernels printed efr2 first: told apart by the high bits */
	cr_assert_eq(amd_parse_features("53:25bf732fa2295afe", &efr, &efr2), 0);
	cr_assert_eq(efr, 0x25bf732fa2295afeULL);
	cr_assert_eq(efr2, 0x53);
	cr_assert_eq(amd_parse_features("", &efr, &efr2), -EINVAL);
	cr_assert_eq(amd_parse_features("xyz", &efr, &efr2), -EINVAL);
	cr_assert_eq(amd_parse_features("12:", &efr, &efr2), -EINVAL);
	cr_assert_eq(amd_parse_features(":12", &efr, &efr2), -EINVAL);
	cr_assert_eq(amd_parse_features("1:2:3", &efr, &efr2), -EINVAL);
	cr_assert_eq(amd_parse_features("11111111111111111", &efr, &efr2),
		     -EINVAL);
}

/* ---- reserved regions and ranges ----------------------------------------- */

Test(reserved, kernel_format_merged)
{
	struct ioasid_iova_range *r = NULL;
	uint32_t nr = 0;
	char err[128];

	cr_assert_eq(discovery_parse_reserved(
		"0x00000000fee00000 0x00000000feefffff msi\n"
		"0x0000000000000000 0x0000000000ffffff direct-relaxable\n"
		"0x000000007b000000 0x000000007b7fffff direct\n"
		"0x000000007b800000 0x000000007bffffff reserved\n"
		"0x0000000008000000 0x00000000080fffff msi\n"
		"0x0000000008080000 0x00000000081fffff reserved\n",
		&r, &nr, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(nr, 3);
	assert_range(&r[0], 0x8000000, 0x81fffff);
	assert_range(&r[1], 0x7b000000, 0x7bffffff);
	assert_range(&r[2], MSI_START, MSI_LAST);
	free(r);
}

Test(reserved, empty_and_blank)
{
	struct ioasid_iova_range *r = NULL;
	uint32_t nr = 0;

	cr_assert_eq(discovery_parse_reserved("", &r, &nr, NULL, 0), 0);
	cr_assert_eq(discovery_parse_reserved("\n\n", &r, &nr, NULL, 0), 0);
	cr_assert_eq(nr, 0);
	cr_assert_null(r);
}

Test(reserved, malformed_lines)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "0x1000 msi\n", "line 1: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0x1000 msi\"" },
		{ "\n0x2000 0x1000 msi\n", "line 2: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0x2000 0x1000 msi\"" },
		{ "0x1000 0x1fff msi extra\n", "line 1: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0x1000 0x1fff msi extra\"" },
		{ "0xg000 0x1fff msi\n", "line 1: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0xg000 0x1fff msi\"" },
		{ "0x1000 0x11111111111111111 msi\n", "line 1: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0x1000 0x11111111111111111 msi\"" },
		{ "0x000000000000000000000000000000001 msi\n", "line 1: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0x000000000000000000000000000000001 msi\"" },
		{ "0x1000\t0x1fff\n", "line 1: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0x1000\t0x1fff\"" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct ioasid_iova_range *r = NULL;
		uint32_t nr = 0;
		char err[256] = "";

		cr_assert_eq(discovery_parse_reserved(bad[i].text, &r, &nr, err,
						      sizeof(err)), -EINVAL,
			     "case %zu", i);
		cr_assert_str_eq(err, bad[i].msg, "case %zu", i);
		free(r);
	}
}

Test(ranges, insert_merge_and_order)
{
	struct ioasid_iova_range *r = NULL;
	uint32_t nr = 0;

	cr_assert_eq(inventory_add_range(&r, &nr, 0x5000, 0x5fff), 0);
	cr_assert_eq(inventory_add_range(&r, &nr, 0x1000, 0x1fff), 0);
	cr_assert_eq(inventory_add_range(&r, &nr, 0x9000, 0x9fff), 0);
	cr_assert_eq(nr, 3);
	assert_range(&r[0], 0x1000, 0x1fff);
	assert_range(&r[1], 0x5000, 0x5fff);
	assert_range(&r[2], 0x9000, 0x9fff);
	/* touching on the left joins */
	cr_assert_eq(inventory_add_range(&r, &nr, 0x4000, 0x4fff), 0);
	cr_assert_eq(nr, 3);
	assert_range(&r[1], 0x4000, 0x5fff);
	/* inside: nothing changes */
	cr_assert_eq(inventory_add_range(&r, &nr, 0x4100, 0x41ff), 0);
	cr_assert_eq(nr, 3);
	/* bridging all three */
	cr_assert_eq(inventory_add_range(&r, &nr, 0x1800, 0x9000), 0);
	cr_assert_eq(nr, 1);
	assert_range(&r[0], 0x1000, 0x9fff);
	/* the ends of the address space */
	cr_assert_eq(inventory_add_range(&r, &nr, UINT64_MAX, UINT64_MAX), 0);
	cr_assert_eq(inventory_add_range(&r, &nr, 0, 0), 0);
	cr_assert_eq(nr, 3);
	cr_assert_eq(inventory_add_range(&r, &nr, 0xa000, UINT64_MAX - 1), 0);
	cr_assert_eq(nr, 2);
	assert_range(&r[1], 0x1000, UINT64_MAX);
	cr_assert_eq(inventory_add_range(&r, &nr, 1, 0xfff), 0);
	cr_assert_eq(nr, 1);
	assert_range(&r[0], 0, UINT64_MAX);
	cr_assert_eq(inventory_add_range(&r, &nr, 2, 1), -EINVAL);
	free(r);
}

Test(inventory, find_release_and_add)
{
	struct inventory inv = { 0 };
	struct inv_iommu *u;
	struct inv_device *d;

	cr_assert_null(inventory_find_iommu(NULL, "x"));
	cr_assert_null(inventory_find_device(&inv, NULL));
	inventory_release(NULL);
	inventory_release(&inv);
	cr_assert_eq(inventory_add_iommu(&inv, &u), 0);
	strcpy(u->info.name, "b");
	cr_assert_eq(inventory_add_iommu(&inv, &u), 0);
	strcpy(u->info.name, "a");
	cr_assert_eq(inventory_add_device(&inv, &d), 0);
	cr_assert_eq(d->info.group, ~0U);
	cr_assert_eq(d->info.size, sizeof(d->info));
	strcpy(d->info.name, "0000:00:01.0");
	strcpy(d->info.iommu, "b");
	cr_assert_eq(inventory_add_range(&d->reserved, &d->nr_reserved, 1, 2), 0);
	inventory_sort(&inv);
	inventory_count_devices(&inv);
	cr_assert_str_eq(inv.iommus[0].info.name, "a");
	cr_assert_eq(inventory_find_iommu(&inv, "b")->info.nr_devices, 1);
	cr_assert_eq(inventory_find_iommu(&inv, "a")->info.nr_devices, 0);
	cr_assert_eq(inventory_find_device(&inv, "0000:00:01.0"), d);
	inventory_release(&inv);
	cr_assert_eq(inv.nr_iommus + inv.nr_devices, 0);
	cr_assert_null(inv.devices);
	inventory_release(&inv);
}

/* ---- recorded and written trees ------------------------------------------- */

struct want_dev {
	const char *name;
	uint16_t vendor, device;
	uint32_t class_code;
	const char *driver;
	uint32_t flags;
};

/* This machine (no IOMMU): recorded from its /sys. */
Test(trees, host_recording)
{
	static const struct want_dev want[] = {
		{ "0000:00:00.0", 0x8086, 0x0d57, 0x060000, "", 0 },
		{ "0000:00:01.0", 0x1af4, 0x1045, 0xffff00, "virtio-pci", 0 },
		{ "0000:00:02.0", 0x1af4, 0x1042, 0x018000, "virtio-pci", 0 },
		{ "0000:00:03.0", 0x1af4, 0x1041, 0x020000, "virtio-pci", 0 },
		{ "0000:00:04.0", 0x1af4, 0x1053, 0xffff00, "virtio-pci", 0 },
		{ "0000:00:05.0", 0x1af4, 0x1044, 0xffff00, "virtio-pci", 0 },
	};
	struct inventory inv;
	char root[PATH_MAX], syspath[128];

	data_tree(root, sizeof(root), "sysfs-host");
	scan_ok(root, &inv);
	cr_assert_eq(inv.nr_iommus, 0);
	cr_assert_eq(inv.nr_devices, ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		const struct inv_device *d = &inv.devices[i];

		cr_assert_str_eq(d->info.name, want[i].name);
		cr_assert_eq(d->info.vendor, want[i].vendor, "%s", d->info.name);
		cr_assert_eq(d->info.device, want[i].device, "%s", d->info.name);
		cr_assert_eq(d->info.class_code, want[i].class_code);
		cr_assert_str_eq(d->info.driver, want[i].driver);
		cr_assert_eq(d->info.flags, want[i].flags, "%s: %#x",
			     d->info.name, d->info.flags);
		cr_assert_str_eq(d->info.iommu, "");
		cr_assert_eq(d->info.group, ~0U);
		cr_assert_str_eq(d->info.vfio_cdev, "");
		cr_assert_str_eq(d->vfio_dev_path, "");
		cr_assert_str_eq(d->group_dev_path, "");
		/* virtio-pci here is conventional PCI: no Express capability */
		cr_assert_eq(d->pcie_cap_offset, 0);
		cr_assert_eq(d->nr_reserved, 0);
		snprintf(syspath, sizeof(syspath),
			 "/sys/devices/pci0000:00/%s", want[i].name);
		cr_assert_str_eq(d->syspath, syspath);
	}
	inventory_release(&inv);
}

struct want_qemu_dev {
	const char *name;
	uint16_t vendor, device;
	uint32_t class_code;
	uint32_t group;
	uint32_t flags;
	uint16_t pcie_cap_offset, devctl;
};

#define TR IOASID_DEVICE_TRANSLATES
static const struct want_qemu_dev qemu_devs[] = {
	{ "0000:00:00.0", 0x8086, 0x29c0, 0x060000, 0, TR, 0, 0 },
	{ "0000:00:01.0", 0x1234, 0x1111, 0x030000, 1, TR, 0, 0 },
	/* e1000e: an Express capability, Enable No Snoop clear */
	{ "0000:00:02.0", 0x8086, 0x10d3, 0x020000, 2, TR, 0xe0, 0 },
	{ "0000:00:03.0", 0x1234, 0x11e8, 0x00ff00, 3,
	  TR | IOASID_DEVICE_VFIO, 0, 0 },
	{ "0000:00:1f.0", 0x8086, 0x2918, 0x060100, 4, TR, 0, 0 },
	{ "0000:00:1f.2", 0x8086, 0x2922, 0x010601, 4, TR, 0, 0 },
	{ "0000:00:1f.3", 0x8086, 0x2930, 0x0c0500, 4, TR, 0, 0 },
};

static void check_qemu_tree(const char *name, uint64_t ecap,
			    uint32_t unit_flags)
{
	struct inventory inv;
	const struct inv_iommu *u;
	char root[PATH_MAX];

	data_tree(root, sizeof(root), name);
	scan_ok(root, &inv);
	/* the guest kernel has CONFIG_IOMMUFD_TEST: its mock unit shows */
	cr_assert_eq(inv.nr_iommus, 2);
	u = &inv.iommus[1];
	cr_assert_str_eq(u->info.name, "iommufd_selftest_iommu.0");
	cr_assert_str_eq(u->info.kind, "unknown");
	cr_assert_eq(u->info.flags, 0);
	cr_assert_eq(u->info.nr_devices, 0);
	cr_assert_eq(u->nr_reserved, 0);
	u = &inv.iommus[0];
	cr_assert_str_eq(u->info.name, "dmar0");
	cr_assert_str_eq(u->info.kind, "intel-vtd");
	cr_assert_eq(u->info.flags, unit_flags, "flags %#x", u->info.flags);
	cr_assert_eq(u->info.cap, QEMU_VTD_CAP);
	cr_assert_eq(u->info.ecap, ecap);
	cr_assert_eq(u->info.page_sizes, SZ_4K | SZ_2M | SZ_1G);
	cr_assert_eq(u->info.addr_width, 39);
	cr_assert_eq(u->info.nr_devices, ARRAY_SIZE(qemu_devs));
	cr_assert_eq(u->nr_reserved, 1);
	assert_range(&u->reserved[0], MSI_START, MSI_LAST);

	cr_assert_eq(inv.nr_devices, ARRAY_SIZE(qemu_devs));
	for (size_t i = 0; i < ARRAY_SIZE(qemu_devs); i++) {
		const struct want_qemu_dev *w = &qemu_devs[i];
		const struct inv_device *d = &inv.devices[i];
		bool edu = w->flags & IOASID_DEVICE_VFIO;

		cr_assert_str_eq(d->info.name, w->name);
		cr_assert_eq(d->info.vendor, w->vendor, "%s", w->name);
		cr_assert_eq(d->info.device, w->device, "%s", w->name);
		cr_assert_eq(d->info.class_code, w->class_code, "%s", w->name);
		cr_assert_eq(d->info.group, w->group, "%s", w->name);
		cr_assert_eq(d->info.flags, w->flags, "%s: flags %#x", w->name,
			     d->info.flags);
		cr_assert_str_eq(d->info.iommu, "dmar0");
		cr_assert_str_eq(d->info.driver, edu ? "vfio-pci" : "");
		cr_assert_str_eq(d->info.vfio_cdev, edu ? "vfio0" : "");
		cr_assert_str_eq(d->vfio_dev_path,
				 edu ? "/dev/vfio/devices/vfio0" : "");
		cr_assert_str_eq(d->group_dev_path, edu ? "/dev/vfio/3" : "");
		cr_assert_eq(d->pcie_cap_offset, w->pcie_cap_offset, "%s",
			     w->name);
		cr_assert_eq(d->pcie_devctl, w->devctl, "%s", w->name);
		cr_assert_eq(d->nr_reserved, 1, "%s", w->name);
		assert_range(&d->reserved[0], MSI_START, MSI_LAST);
	}
	inventory_release(&inv);
}

Test(trees, qemu_snoop_control_on)
{
	check_qemu_tree("sysfs-qemu-sc-on", QEMU_ECAP_SC_ON,
			IOASID_IOMMU_CAPS_KNOWN | IOASID_IOMMU_SNOOP_CONTROL);
}

Test(trees, qemu_snoop_control_off)
{
	check_qemu_tree("sysfs-qemu-sc-off", QEMU_ECAP_SC_OFF,
			IOASID_IOMMU_CAPS_KNOWN);
}

/* The per-object readers, called directly on a recorded tree. */
Test(trees, read_one_device_and_unit)
{
	struct inv_device dev = { 0 };
	struct inv_iommu unit = { 0 };
	char root[PATH_MAX], err[256];

	data_tree(root, sizeof(root), "sysfs-qemu-sc-on");
	cr_assert_eq(discovery_read_device(NULL, root,
					   "/sys/devices/pci0000:00/0000:00:03.0",
					   &dev, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(dev.info.name, "0000:00:03.0");
	cr_assert(dev.info.flags & IOASID_DEVICE_VFIO);
	free(dev.reserved);
	cr_assert_eq(discovery_read_iommu(NULL, root,
					  "/sys/devices/virtual/iommu/dmar0",
					  &unit, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(unit.info.name, "dmar0");
	cr_assert(unit.info.flags & IOASID_IOMMU_SNOOP_CONTROL);
	free(unit.reserved);
	memset(&dev, 0, sizeof(dev));
	cr_assert_eq(discovery_read_device(NULL, root,
					   "/sys/devices/pci0000:00/0000:00:09.0",
					   &dev, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "0000:00:09.0"));
}

/* ---- trees written to break things ------------------------------------------ */

TestSuite(broken, .init = make_tree, .fini = remove_tree);

static struct inv_device *only_device(struct inventory *inv)
{
	cr_assert_eq(inv->nr_devices, 1);
	return &inv->devices[0];
}

Test(broken, unprivileged_reader_gets_64_bytes)
{
	struct inventory inv;
	struct cfg c;

	cfg_pcie(&c, 0x0800);
	put_device("0000:00:01.0", "0x8086", "0x1572", "0x020000");
	put_dev_attr("0000:00:01.0", "config", c.b, 64);
	scan_ok(tree, &inv);
	cr_assert_eq(only_device(&inv)->info.flags,
		     IOASID_DEVICE_NO_SNOOP_UNKNOWN);
	inventory_release(&inv);
}

Test(broken, looping_capability_list)
{
	struct inventory inv;
	struct cfg c;

	cfg_header(&c, 1, 2);
	cfg_cap(&c, 0, 0x40, 0x05);
	c.b[0x41] = 0x40;
	put_device("0000:00:01.0", "0x0001", "0x0002", "0x020000");
	put_dev_attr("0000:00:01.0", "config", c.b, 256);
	scan_ok(tree, &inv);
	cr_assert_eq(only_device(&inv)->info.flags,
		     IOASID_DEVICE_NO_SNOOP_UNKNOWN);
	inventory_release(&inv);
}

Test(broken, config_missing_unreadable_or_odd)
{
	struct inventory inv;
	char path[PATH_MAX];

	put_device("0000:00:01.0", "0x0001", "0x0002", "0x0");
	put_device("0000:00:02.0", "0x0001", "0x0002", "0x0");
	put_device("0000:00:03.0", "0x0001", "0x0002", "0x0");
	put_device("0000:00:04.0", "0x0001", "0x0002", "0x0");
	/* 02: a directory; 03: a FIFO (must not block); 04: a symlink */
	tree_path(path, sizeof(path), DEVDIR "0000:00:02.0/config");
	cr_assert_eq(mkdir(path, 0755), 0);
	tree_path(path, sizeof(path), DEVDIR "0000:00:03.0/config");
	cr_assert_eq(mkfifo(path, 0644), 0);
	put_dev_link("0000:00:04.0", "config", "/dev/zero");
	scan_ok(tree, &inv);
	cr_assert_eq(inv.nr_devices, 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(inv.devices[i].info.flags,
			     IOASID_DEVICE_NO_SNOOP_UNKNOWN, "%d", i);
	inventory_release(&inv);
}

Test(broken, missing_or_garbage_ids_read_as_zero)
{
	struct inventory inv;

	put_device("0000:00:01.0", NULL, NULL, NULL);
	put_device("0000:00:02.0", "vendor?", "0x12345678901234567890",
		   "0x0600 00");
	put_device("0000:00:03.0", "0x10000", "0x", "0x1000000");
	scan_ok(tree, &inv);
	cr_assert_eq(inv.nr_devices, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(inv.devices[i].info.vendor, 0);
		cr_assert_eq(inv.devices[i].info.device, 0);
		cr_assert_eq(inv.devices[i].info.class_code, 0);
		cr_assert_eq(inv.devices[i].info.flags,
			     IOASID_DEVICE_NO_SNOOP_UNKNOWN);
	}
	inventory_release(&inv);
}

Test(broken, unit_named_by_a_device_but_not_listed)
{
	struct inventory inv;
	struct inv_iommu *u;

	put_device("0000:00:01.0", "0x1", "0x2", "0x3");
	put_grouped("0000:00:01.0", 7, "ghost0");
	scan_ok(tree, &inv);
	cr_assert_eq(inv.nr_iommus, 1);
	u = &inv.iommus[0];
	cr_assert_str_eq(u->info.name, "ghost0");
	cr_assert_str_eq(u->info.kind, "unknown");
	cr_assert_eq(u->info.flags, 0);
	cr_assert_eq(u->info.nr_devices, 1);
	cr_assert_eq(only_device(&inv)->info.group, 7);
	inventory_release(&inv);
}

Test(broken, units_of_every_kind)
{
	struct inventory inv;

	put_unit("dmar0", "intel-iommu", "cap", "d2008c22260286\n", "ecap",
		 "f00fca\n");
	put_unit("dmar1", "intel-iommu", "cap", "not hex\n", "ecap", "0\n");
	put_unit("ivhd0", "amd-iommu", "cap", "190b001\n", "features",
		 "25bf732fa2295afe:0\n");
	put_unit("ivhd1", "amd-iommu", "cap", "0\n", "features",
		 "0:800\n");
	put_unit("smmu3.0x0000000009050000", "arm-smmu-v3", "x", "1\n", NULL,
		 NULL);
	scan_ok(tree, &inv);
	cr_assert_eq(inv.nr_iommus, 5);
	/* sorted by name */
	cr_assert_str_eq(inv.iommus[0].info.name, "dmar0");
	cr_assert_str_eq(inv.iommus[0].info.kind, "intel-vtd");
	cr_assert_eq(inv.iommus[0].nr_reserved, 1);

	cr_assert_str_eq(inv.iommus[1].info.name, "dmar1");
	cr_assert_str_eq(inv.iommus[1].info.kind, "unknown");
	cr_assert_eq(inv.iommus[1].info.flags, 0);
	cr_assert_eq(inv.iommus[1].nr_reserved, 0);

	cr_assert_str_eq(inv.iommus[2].info.name, "ivhd0");
	cr_assert_str_eq(inv.iommus[2].info.kind, "amd-vi");
	cr_assert_eq(inv.iommus[2].info.ecap, 0x25bf732fa2295afeULL);
	cr_assert_eq(inv.iommus[2].info.cap, 0x190b001);
	/* MSI window and HyperTransport hole */
	cr_assert_eq(inv.iommus[2].nr_reserved, 2);
	assert_range(&inv.iommus[2].reserved[0], MSI_START, MSI_LAST);
	assert_range(&inv.iommus[2].reserved[1], 0xfd00000000ULL,
		     0xffffffffffULL);
	/* EFR2 HT_RANGE_IGNORE (bit 11): no HyperTransport hole */
	cr_assert_str_eq(inv.iommus[3].info.name, "ivhd1");
	cr_assert_eq(inv.iommus[3].nr_reserved, 1);

	cr_assert_str_eq(inv.iommus[4].info.kind, "unknown");
	cr_assert_eq(inv.iommus[4].info.flags, 0);
	inventory_release(&inv);
}

/* The non-coherent case: No Snoop enabled behind a unit without SC. */
Test(broken, no_snoop_device_behind_vtd_without_snoop_control)
{
	struct inventory inv;
	struct inv_device *d;
	struct cfg c;

	put_unit("dmar0", "intel-iommu", "cap", "d2008c22260286\n", "ecap",
		 "f00f4a\n");
	cfg_pcie(&c, 0x2810);
	put_device("0000:01:00.0", "0x1002", "0x740f", "0x038000");
	put_dev_attr("0000:01:00.0", "config", c.b, 256);
	put_grouped("0000:01:00.0", 9, "dmar0");
	scan_ok(tree, &inv);
	d = only_device(&inv);
	cr_assert_eq(d->info.flags, IOASID_DEVICE_NO_SNOOP |
		     IOASID_DEVICE_TRANSLATES);
	cr_assert_eq(d->pcie_cap_offset, 0x60);
	cr_assert_eq(d->pcie_devctl, 0x2810);
	cr_assert_str_eq(d->info.iommu, "dmar0");
	cr_assert_eq(inv.iommus[0].info.flags, IOASID_IOMMU_CAPS_KNOWN);
	inventory_release(&inv);
}

Test(broken, reserved_regions_merged_per_group)
{
	struct inventory inv;
	const struct inv_device *d;

	put_unit("dmar0", "intel-iommu", "cap", "d2008c22260286\n", "ecap",
		 "f00fca\n");
	put_device("0000:00:02.0", "0x8086", "0x3e9b", "0x030000");
	put_grouped("0000:00:02.0", 0, "dmar0");
	put_reserved(0, "0x000000007b000000 0x000000007b7fffff direct\n"
			"0x000000007b800000 0x000000007f7fffff direct\n"
			"0x0000000000000000 0x0000000000ffffff direct-relaxable\n"
			"0x00000000fee00000 0x00000000feefffff msi\n");
	scan_ok(tree, &inv);
	d = only_device(&inv);
	cr_assert_eq(d->nr_reserved, 2);
	assert_range(&d->reserved[0], 0x7b000000, 0x7f7fffff);
	assert_range(&d->reserved[1], MSI_START, MSI_LAST);
	inventory_release(&inv);
}

Test(broken, malformed_reserved_regions_fail_the_scan)
{
	struct inventory inv;
	char err[512];

	put_device("0000:00:02.0", "0x8086", "0x3e9b", "0x030000");
	put_grouped("0000:00:02.0", 5, "dmar0");
	put_reserved(5, "0x00000000fee00000 0x00000000feefffff msi\n"
			"0x00000000fee00000 msi\n");
	cr_assert_eq(scan(tree, &inv, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "/sys/kernel/iommu_groups/5/reserved_regions: line 2: expected \"0xSTART 0xLAST type\" with START <= LAST, got \"0x00000000fee00000 msi\"");
	cr_assert_eq(inv.nr_devices + inv.nr_iommus, 0);
	cr_assert_null(inv.devices);
}

Test(broken, group_without_reserved_regions_file)
{
	struct inventory inv;

	put_device("0000:00:02.0", "0x8086", "0x3e9b", "0x030000");
	put_grouped("0000:00:02.0", 5, "dmar0");
	scan_ok(tree, &inv);
	cr_assert_eq(only_device(&inv)->nr_reserved, 0);
	cr_assert_eq(only_device(&inv)->info.group, 5);
	inventory_release(&inv);
}

Test(broken, iommu_group_not_a_number)
{
	struct inventory inv;

	put_device("0000:00:01.0", "0x1", "0x2", "0x3");
	put_dev_link("0000:00:01.0", "iommu_group",
		     "../../../kernel/iommu_groups/x7");
	put_device("0000:00:02.0", "0x1", "0x2", "0x3");
	put_dev_link("0000:00:02.0", "iommu_group",
		     "../../../kernel/iommu_groups/4294967295");
	scan_ok(tree, &inv);
	cr_assert_eq(inv.nr_devices, 2);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(inv.devices[i].info.group, ~0U);
		cr_assert_not(inv.devices[i].info.flags &
			      IOASID_DEVICE_TRANSLATES);
	}
	inventory_release(&inv);
}

Test(broken, entries_that_lead_nowhere_are_skipped)
{
	struct inventory inv;

	put_device("0000:00:01.0", "0x1", "0x2", "0x3");
	put_link("sys/bus/pci/devices/0000:00:02.0",
		 "../../../devices/pci0000:00/0000:00:02.0");
	put_link("sys/bus/pci/devices/0000:00:03.0", "/sys/devices");
	put_link("sys/bus/pci/devices/0000:00:04.0", "../../../../..");
	put_text("sys/bus/pci/devices/.hidden", "x");
	scan_ok(tree, &inv);
	cr_assert_str_eq(only_device(&inv)->info.name, "0000:00:01.0");
	inventory_release(&inv);
}

Test(broken, overlong_names_are_skipped)
{
	struct inventory inv;
	char name[80];

	memset(name, 'a', 40);
	name[40] = '\0';
	put_device(name, "0x1", "0x2", "0x3");
	put_device("0000:00:01.0", "0x1", "0x2", "0x3");
	scan_ok(tree, &inv);
	cr_assert_str_eq(only_device(&inv)->info.name, "0000:00:01.0");
	inventory_release(&inv);
}

Test(broken, vfio_variant_driver_and_ats)
{
	struct inventory inv;
	struct inv_device *d;
	struct cfg c;

	cfg_pcie(&c, 0x0010);
	cfg_ext(&c, 0x100, 0x000f, 0);
	put_device("0000:41:00.0", "0x15b3", "0x101d", "0x020000");
	put_dev_attr("0000:41:00.0", "config", c.b, sizeof(c.b));
	put_grouped("0000:41:00.0", 12, "dmar3");
	put_dev_link("0000:41:00.0", "driver",
		     "../../../bus/pci/drivers/mlx5_vfio_pci");
	put_text(DEVDIR "0000:41:00.0/vfio-dev/junk/x", "");
	put_text(DEVDIR "0000:41:00.0/vfio-dev/vfio12/dev", "511:12\n");
	scan_ok(tree, &inv);
	d = only_device(&inv);
	cr_assert_str_eq(d->info.driver, "mlx5_vfio_pci");
	cr_assert_eq(d->info.flags, IOASID_DEVICE_VFIO | IOASID_DEVICE_ATS |
		     IOASID_DEVICE_TRANSLATES);
	cr_assert_str_eq(d->info.vfio_cdev, "vfio12");
	cr_assert_str_eq(d->vfio_dev_path, "/dev/vfio/devices/vfio12");
	cr_assert_str_eq(d->group_dev_path, "/dev/vfio/12");
	cr_assert_eq(d->pcie_devctl, 0x0010);
	inventory_release(&inv);
}

Test(broken, vfio_noiommu_group)
{
	struct inventory inv;
	struct inv_device *d;

	put_device("0000:00:04.0", "0x1af4", "0x1041", "0x020000");
	put_dev_link("0000:00:04.0", "iommu_group",
		     "../../../kernel/iommu_groups/0");
	put_dev_link("0000:00:04.0", "driver", "../../../bus/pci/drivers/vfio-pci");
	put_text("sys/kernel/iommu_groups/0/name", "vfio-noiommu\n");
	scan_ok(tree, &inv);
	d = only_device(&inv);
	cr_assert_eq(d->info.group, 0);
	cr_assert_eq(d->info.flags, IOASID_DEVICE_VFIO |
		     IOASID_DEVICE_NO_SNOOP_UNKNOWN, "no translation: %#x",
		     d->info.flags);
	cr_assert_str_eq(d->group_dev_path, "/dev/vfio/noiommu-0");
	inventory_release(&inv);
}

Test(broken, ats_without_iommu_still_translates)
{
	struct inventory inv;
	struct cfg c;

	cfg_pcie(&c, 0);
	cfg_ext(&c, 0x100, 0x000f, 0);
	put_device("0000:00:01.0", "0x1", "0x2", "0x3");
	put_dev_attr("0000:00:01.0", "config", c.b, sizeof(c.b));
	scan_ok(tree, &inv);
	cr_assert_eq(only_device(&inv)->info.flags,
		     IOASID_DEVICE_ATS | IOASID_DEVICE_TRANSLATES);
	inventory_release(&inv);
}

Test(broken, roots_that_are_not_sysfs)
{
	struct inventory inv;
	char err[512], path[PATH_MAX];

	/* an empty sys/ is a machine without devices */
	scan_ok(tree, &inv);
	cr_assert_eq(inv.nr_devices + inv.nr_iommus, 0);

	cr_assert_eq(scan("/nonexistent-root", &inv, err, sizeof(err)),
		     -ENOENT);
	cr_assert_str_eq(err, "/nonexistent-root/sys: No such file or directory");

	tree_path(path, sizeof(path), "sys");
	cr_assert_eq(rmdir(path), 0);
	put_text("sys", "not a directory\n");
	cr_assert_eq(scan(tree, &inv, err, sizeof(err)), -ENOTDIR);
	cr_assert(strstr(err, "Not a directory"));
	cr_assert_eq(inv.nr_devices + inv.nr_iommus, 0);

	/* errmsg is optional */
	cr_assert_eq(discovery_scan(NULL, "/nonexistent-root", &inv, NULL, 0),
		     -ENOENT);
}

Test(broken, relative_sysroot)
{
	struct inventory inv;
	char cwd[PATH_MAX];

	put_device("0000:00:01.0", "0x1", "0x2", "0x3");
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(tree), 0);
	scan_ok(".", &inv);
	cr_assert_str_eq(only_device(&inv)->syspath,
			 "/sys/devices/pci0000:00/0000:00:01.0");
	inventory_release(&inv);
	cr_assert_eq(chdir(cwd), 0);
}

/* ---- this machine ------------------------------------------------------------ */

static bool listed_in_sys(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", name);
	return lstat(path, &st) == 0;
}

Test(host, real_sysfs)
{
	static const char *const roots[] = { NULL, "/", "" };
	struct inventory inv;

	if (access("/sys/bus", F_OK))
		cr_skip_test("no /sys/bus here: nothing certain to check");
	for (size_t r = 0; r < ARRAY_SIZE(roots); r++) {
		uint32_t listed = 0;
		struct dirent *de;
		DIR *dir;

		scan_ok(roots[r], &inv);
		for (uint32_t i = 0; i < inv.nr_devices; i++) {
			const struct inv_device *d = &inv.devices[i];

			cr_assert(d->info.name[0], "a device without a name");
			cr_assert(listed_in_sys(d->info.name), "%s",
				  d->info.name);
			cr_assert(!strncmp(d->syspath, "/sys/", 5));
			if (d->info.iommu[0])
				cr_assert_not_null(inventory_find_iommu(
					&inv, d->info.iommu));
		}
		for (uint32_t i = 0; i < inv.nr_iommus; i++)
			cr_assert(inv.iommus[i].info.name[0]);
		/* as many as bus/pci/devices lists (no hotplug expected) */
		dir = opendir("/sys/bus/pci/devices");
		while (dir && (de = readdir(dir)))
			listed += de->d_name[0] != '.';
		if (dir)
			closedir(dir);
		cr_assert_eq(inv.nr_devices, listed);
		inventory_release(&inv);
	}
}

/* ---- libudev paths under umockdev ----------------------------------------- */

#ifdef HAVE_UMOCKDEV
static bool umockdev_active(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "umockdev-preload");
}

static UMockdevTestbed *testbed;

static void need_umockdev(void)
{
	if (!umockdev_active())
		cr_skip_test("needs libumockdev-preload: umockdev-wrapper was not found or IOASID_TEST_NO_REEXEC is set");
	testbed = umockdev_testbed_new();
	cr_assert_not_null(testbed);
}

static void drop_testbed(void)
{
	if (testbed)
		g_object_unref(testbed);
	testbed = NULL;
}

TestSuite(udev, .init = need_umockdev, .fini = drop_testbed);

/* A VT-d unit and two devices, like the QEMU guest. */
static char *populate_testbed(char **unit_out)
{
	struct cfg c;
	char *unit, *dev, *plain, path[PATH_MAX];
	gchar *sys = umockdev_testbed_get_sys_dir(testbed);
	FILE *f;

	unit = umockdev_testbed_add_device(testbed, "iommu", "dmar0", NULL,
					   "intel-iommu/cap", "d2008c22260286\n",
					   "intel-iommu/ecap", "f00f4a\n",
					   NULL, NULL);
	dev = umockdev_testbed_add_device(testbed, "pci", "0000:00:03.0", NULL,
					  "vendor", "0x1234\n",
					  "device", "0x11e8\n",
					  "class", "0x00ff00\n", NULL,
					  "PCI_SLOT_NAME", "0000:00:03.0",
					  NULL);
	plain = umockdev_testbed_add_device(testbed, "pci", "0000:00:02.0", NULL,
					    "vendor", "0x8086\n",
					    "device", "0x10d3\n",
					    "class", "0x020000\n", NULL,
					    NULL);
	cr_assert(unit && dev && plain);
	cfg_pcie(&c, 0x0800);
	umockdev_testbed_set_attribute_binary(testbed, dev, "config", c.b, 256);
	umockdev_testbed_set_attribute_link(testbed, dev, "iommu_group",
					    "../../kernel/iommu_groups/3");
	umockdev_testbed_set_attribute_link(testbed, dev, "iommu", unit);
	umockdev_testbed_set_attribute_link(testbed, dev, "driver",
					    "../../bus/pci/drivers/vfio-pci");
	umockdev_testbed_set_attribute(testbed, dev, "vfio-dev/vfio0/dev",
				       "511:0\n");
	snprintf(path, sizeof(path), "%s/kernel/iommu_groups/3", sys);
	cr_assert_eq(g_mkdir_with_parents(path, 0755), 0);
	strcat(path, "/reserved_regions");
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("0x00000000fee00000 0x00000000feefffff msi\n", f);
	fclose(f);
	g_free(sys);
	g_free(plain);
	*unit_out = unit;
	return dev;
}

Test(udev, enumeration_reads_the_testbed)
{
	struct inventory inv;
	struct inv_device *d;
	char *unit, *dev = populate_testbed(&unit);

	scan_ok(NULL, &inv);
	cr_assert_eq(inv.nr_iommus, 1);
	cr_assert_str_eq(inv.iommus[0].info.name, "dmar0");
	cr_assert_str_eq(inv.iommus[0].info.kind, "intel-vtd");
	cr_assert_eq(inv.iommus[0].info.flags, IOASID_IOMMU_CAPS_KNOWN);
	cr_assert_eq(inv.iommus[0].info.nr_devices, 1);
	cr_assert_eq(inv.nr_devices, 2);

	d = &inv.devices[0];
	cr_assert_str_eq(d->info.name, "0000:00:02.0");
	cr_assert_eq(d->info.vendor, 0x8086);
	cr_assert_eq(d->info.group, ~0U);
	cr_assert_eq(d->info.flags, IOASID_DEVICE_NO_SNOOP_UNKNOWN);

	d = &inv.devices[1];
	cr_assert_str_eq(d->info.name, "0000:00:03.0");
	cr_assert_str_eq(d->syspath, dev);
	cr_assert_eq(d->info.vendor, 0x1234);
	cr_assert_eq(d->info.device, 0x11e8);
	cr_assert_eq(d->info.class_code, 0x00ff00);
	cr_assert_str_eq(d->info.driver, "vfio-pci");
	cr_assert_str_eq(d->info.iommu, "dmar0");
	cr_assert_eq(d->info.group, 3);
	cr_assert_str_eq(d->info.vfio_cdev, "vfio0");
	cr_assert_str_eq(d->group_dev_path, "/dev/vfio/3");
	cr_assert_eq(d->info.flags, IOASID_DEVICE_VFIO |
		     IOASID_DEVICE_NO_SNOOP | IOASID_DEVICE_TRANSLATES);
	cr_assert_eq(d->pcie_cap_offset, 0x60);
	cr_assert_eq(d->nr_reserved, 1);
	assert_range(&d->reserved[0], MSI_START, MSI_LAST);
	inventory_release(&inv);
	g_free(unit);
	g_free(dev);
}

static int wait_event(struct discovery_monitor *mon,
		      struct discovery_event *ev, int timeout_ms)
{
	struct pollfd pfd = { .fd = discovery_monitor_fd(mon),
			      .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	return discovery_monitor_receive(mon, ev);
}

static int next_event(struct discovery_monitor *mon,
		      struct discovery_event *ev)
{
	return wait_event(mon, ev, 2000);
}

static void hotplug_events(enum discovery_monitor_source source,
			   const char *source_name)
{
	static const struct {
		const char *action;
		enum discovery_event_action want;
	} seq[] = {
		{ "add", DISCOVERY_EVENT_ADD },
		{ "bind", DISCOVERY_EVENT_BIND },
		{ "change", DISCOVERY_EVENT_CHANGE },
		{ "unbind", DISCOVERY_EVENT_UNBIND },
		{ "remove", DISCOVERY_EVENT_REMOVE },
	};
	struct discovery_monitor *mon;
	struct discovery_event ev;
	char *unit, *dev = populate_testbed(&unit);
	int ret;

	cr_assert_eq(discovery_monitor_new(NULL, source, &mon), 0);
	cr_assert_str_eq(discovery_monitor_source_name(mon), source_name);
	cr_assert_eq(discovery_monitor_receive(mon, &ev), -EAGAIN);
	for (size_t i = 0; i < ARRAY_SIZE(seq); i++) {
		umockdev_testbed_uevent(testbed, dev, seq[i].action);
		cr_assert_eq(next_event(mon, &ev), 0, "%s", seq[i].action);
		cr_assert_eq(ev.action, seq[i].want);
		cr_assert_str_eq(ev.name, "0000:00:03.0");
		cr_assert_str_eq(ev.syspath, dev);
	}
	/* the device of an add event can be read on its own */
	umockdev_testbed_uevent(testbed, dev, "add");
	cr_assert_eq(next_event(mon, &ev), 0);
	{
		struct inv_device d = { 0 };

		cr_assert_eq(discovery_read_device(NULL, NULL, ev.syspath, &d,
						   NULL, 0), 0);
		cr_assert_eq(d.info.group, 3);
		cr_assert(d.info.flags & IOASID_DEVICE_NO_SNOOP);
		free(d.reserved);
	}
	/*
	 * other subsystems are filtered out: by the socket filter for udev
	 * messages (nothing arrives), in userspace for kernel ones
	 */
	umockdev_testbed_uevent(testbed, unit, "add");
	ret = wait_event(mon, &ev, 200);
	cr_assert(ret == -EAGAIN || ret == -ETIMEDOUT, "%d", ret);
	discovery_monitor_free(mon);
	g_free(unit);
	g_free(dev);
}

Test(udev, hotplug_kernel_uevents)
{
	hotplug_events(DISCOVERY_MONITOR_KERNEL, "kernel");
}

Test(udev, hotplug_udev_events)
{
	hotplug_events(DISCOVERY_MONITOR_UDEV, "udev");
}

#else
Test(udev, needs_umockdev)
{
	cr_skip_test("built without umockdev (libumockdev-dev): libudev enumeration and hotplug untested");
}
#endif

Test(monitor, bad_source)
{
	struct discovery_monitor *mon = NULL;

	cr_assert_eq(discovery_monitor_new(NULL, 42, &mon), -EINVAL);
	cr_assert_null(mon);
	discovery_monitor_free(NULL);
}

/* Without udevd the automatic choice is the kernel's own uevents. */
Test(monitor, automatic_source)
{
	struct discovery_monitor *mon;
	int ret = discovery_monitor_new(NULL, DISCOVERY_MONITOR_AUTO, &mon);

	if (ret == -EPERM || ret == -EACCES || ret == -EAFNOSUPPORT)
		cr_skip_test("uevent sockets not allowed here: %s",
			     strerror(-ret));
	cr_assert_eq(ret, 0);
	cr_assert_str_eq(discovery_monitor_source_name(mon),
			 access("/run/udev/control", F_OK) ? "kernel" : "udev");
	cr_assert(discovery_monitor_fd(mon) >= 0);
	discovery_monitor_free(mon);
}

/* ---- main: run under umockdev-wrapper when it exists ----------------------- */

#ifdef HAVE_UMOCKDEV
static const char *find_in_path(const char *prog, char *buf, size_t size)
{
	const char *path = getenv("PATH");
	const char *p = path ? path : "/usr/bin:/bin";

	while (*p) {
		size_t n = strcspn(p, ":");

		snprintf(buf, size, "%.*s/%s", (int)n, p, prog);
		if (n && !access(buf, X_OK))
			return buf;
		p += n + (p[n] == ':');
	}
	return NULL;
}

static void reexec_under_umockdev(int argc, char **argv)
{
	char wrapper[PATH_MAX], asan[1024];
	const char *w = getenv("UMOCKDEV_WRAPPER");
	const char *old_asan = getenv("ASAN_OPTIONS");
	char **args;

	if (umockdev_active() || getenv("IOASID_TEST_NO_REEXEC") ||
	    getenv("IOASID_TEST_REEXECED"))
		return;
	if (!w || !*w)
		w = find_in_path("umockdev-wrapper", wrapper, sizeof(wrapper));
	if (!w) {
		fprintf(stderr, "test_discovery: umockdev-wrapper not found: the udev tests will be skipped\n");
		return;
	}
	/* the preload comes before the ASan runtime: tell ASan that is fine */
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
		 old_asan ? old_asan : "", old_asan && *old_asan ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	setenv("IOASID_TEST_REEXECED", "1", 1);
	args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args)
		return;
	args[0] = (char *)w;
	args[1] = strchr(argv[0], '/') ? argv[0] : (char *)"/proc/self/exe";
	for (int i = 1; i < argc; i++)
		args[i + 1] = argv[i];
	execv(w, args);
	fprintf(stderr, "test_discovery: cannot run %s: %s\n", w,
		strerror(errno));
	free(args);
}
#else
static void reexec_under_umockdev(int argc, char **argv)
{
}
#endif

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests;
	int result = 0;

	reexec_under_umockdev(argc, argv);
	tests = criterion_initialize();
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
