/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated topology format: the built-in topology's exact contents,
 * the format's defaults, and every error the parser reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "backends/sim/topology.h"
#include "discovery/discovery.h"
#include "util/macros.h"

#define MSI_START 0xfee00000ULL
#define MSI_LAST  0xfeefffffULL

static const char *srcdir(void)
{
	const char *dir = getenv("top_srcdir");

	if (!dir || !*dir)
		dir = getenv("srcdir");
	return dir && *dir ? dir : ".";
}

static void parse_ok(const char *text, struct inventory *inv)
{
	char err[256] = "";
	int ret = topology_parse(text, inv, err, sizeof(err));

	cr_assert_eq(ret, 0, "parse failed: %d %s", ret, err);
}

static void assert_msi_only(const struct ioasid_iova_range *r, uint32_t nr)
{
	cr_assert_eq(nr, 1);
	cr_assert_eq(r[0].start, MSI_START);
	cr_assert_eq(r[0].last, MSI_LAST);
}

/* ---- the built-in topology -------------------------------------------- */

Test(default_topology, units)
{
	struct inventory inv;
	struct inv_iommu *u;

	parse_ok(topology_default, &inv);
	cr_assert_eq(inv.nr_iommus, 2);

	u = &inv.iommus[0];
	cr_assert_str_eq(u->info.name, "sim0");
	cr_assert_str_eq(u->info.kind, "sim");
	cr_assert_eq(u->info.size, sizeof(u->info));
	cr_assert_eq(u->info.flags,
		     IOASID_IOMMU_SIMULATED | IOASID_IOMMU_CAPS_KNOWN |
		     IOASID_IOMMU_SNOOP_CONTROL | IOASID_IOMMU_DIRTY_TRACKING |
		     IOASID_IOMMU_NESTING | IOASID_IOMMU_VIOMMU |
		     IOASID_IOMMU_PASID);
	cr_assert_eq(u->info.page_sizes, SZ_4K | SZ_2M | SZ_1G);
	cr_assert_eq(u->info.addr_width, 48);
	cr_assert_eq(u->info.cap, 0);
	cr_assert_eq(u->info.ecap, 0);
	cr_assert_eq(u->info.nr_devices, 4);
	assert_msi_only(u->reserved, u->nr_reserved);

	u = &inv.iommus[1];
	cr_assert_str_eq(u->info.name, "sim1");
	cr_assert_str_eq(u->info.kind, "sim");
	cr_assert_eq(u->info.flags,
		     IOASID_IOMMU_SIMULATED | IOASID_IOMMU_CAPS_KNOWN);
	cr_assert_eq(u->info.page_sizes, SZ_4K | SZ_2M);
	cr_assert_eq(u->info.addr_width, 39);
	cr_assert_eq(u->info.nr_devices, 3);
	assert_msi_only(u->reserved, u->nr_reserved);
	inventory_release(&inv);
}

struct expect_dev {
	const char *name;
	uint16_t vendor, device;
	uint32_t class_code;
	const char *iommu;
	uint32_t group;
	uint32_t flags;		/* besides SIMULATED */
	uint16_t devctl;
};

#define TR IOASID_DEVICE_TRANSLATES
static const struct expect_dev default_devices[] = {
	{ "0000:00:01.0", 0x8086, 0x1572, 0x020000, "sim0", 1, TR, 0 },
	{ "0000:00:02.0", 0x15b3, 0x101d, 0x020000, "sim0", 2,
	  TR | IOASID_DEVICE_ATS, 0 },
	{ "0000:00:02.1", 0x15b3, 0x101d, 0x020000, "sim0", 2,
	  TR | IOASID_DEVICE_ATS, 0 },
	{ "0000:00:03.0", 0x10de, 0x2330, 0x030200, "sim0", 3,
	  TR | IOASID_DEVICE_ATS | IOASID_DEVICE_NO_SNOOP, 0x0800 },
	{ "0000:01:00.0", 0x1002, 0x740f, 0x038000, "sim1", 4,
	  TR | IOASID_DEVICE_NO_SNOOP, 0x0800 },
	{ "0000:01:01.0", 0x1af4, 0x1041, 0x020000, "sim1", 5, 0, 0 },
	{ "0000:01:02.0", 0x8086, 0x0a54, 0x010802, "sim1", 6,
	  TR | IOASID_DEVICE_NO_SNOOP_UNKNOWN, 0 },
};

Test(default_topology, devices)
{
	struct inventory inv;

	parse_ok(topology_default, &inv);
	cr_assert_eq(inv.nr_devices, ARRAY_SIZE(default_devices));
	for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++) {
		const struct expect_dev *e = &default_devices[i];
		const struct inv_device *d = &inv.devices[i];
		bool known = !(e->flags & IOASID_DEVICE_NO_SNOOP_UNKNOWN);

		cr_assert_str_eq(d->info.name, e->name);
		cr_assert_eq(d->info.size, sizeof(d->info));
		cr_assert_eq(d->info.vendor, e->vendor, "%s", e->name);
		cr_assert_eq(d->info.device, e->device, "%s", e->name);
		cr_assert_eq(d->info.class_code, e->class_code, "%s", e->name);
		cr_assert_str_eq(d->info.iommu, e->iommu);
		cr_assert_str_eq(d->info.driver, "vfio-pci-sim");
		cr_assert_str_eq(d->info.vfio_cdev, "");
		cr_assert_eq(d->info.group, e->group, "%s", e->name);
		cr_assert_eq(d->info.flags, IOASID_DEVICE_SIMULATED | e->flags,
			     "%s: flags %#x", e->name, d->info.flags);
		cr_assert_eq(d->info.dev_id, 0);
		cr_assert_eq(d->pcie_cap_offset, known ? 0x40 : 0, "%s", e->name);
		cr_assert_eq(d->pcie_devctl, e->devctl, "%s", e->name);
		cr_assert_str_eq(d->syspath, "");
		cr_assert_str_eq(d->vfio_dev_path, "");
		cr_assert_str_eq(d->group_dev_path, "");
		assert_msi_only(d->reserved, d->nr_reserved);
	}
	inventory_release(&inv);
}

/* What the brief asks the default topology to cover, said as facts. */
Test(default_topology, covers_the_interesting_cases)
{
	struct inventory inv;
	struct inv_device *gpu_nc, *gpu_c, *virtio;
	uint32_t group2 = 0;

	parse_ok(topology_default, &inv);
	/* one unit without snoop control */
	cr_assert(!(inventory_find_iommu(&inv, "sim1")->info.flags &
		    IOASID_IOMMU_SNOOP_CONTROL));
	/* a multi-device group */
	for (uint32_t i = 0; i < inv.nr_devices; i++)
		group2 += inv.devices[i].info.group == 2;
	cr_assert_eq(group2, 2);
	/* no-snoop GPUs behind each kind of unit */
	gpu_nc = inventory_find_device(&inv, "0000:01:00.0");
	gpu_c = inventory_find_device(&inv, "0000:00:03.0");
	cr_assert(gpu_nc && gpu_c);
	cr_assert(gpu_nc->info.flags & IOASID_DEVICE_NO_SNOOP);
	cr_assert_str_eq(gpu_nc->info.iommu, "sim1");
	cr_assert(gpu_c->info.flags & IOASID_DEVICE_NO_SNOOP);
	cr_assert_str_eq(gpu_c->info.iommu, "sim0");
	/* a device that cannot translate */
	virtio = inventory_find_device(&inv, "0000:01:01.0");
	cr_assert(virtio);
	cr_assert(!(virtio->info.flags &
		    (IOASID_DEVICE_TRANSLATES | IOASID_DEVICE_ATS)));
	cr_assert_null(inventory_find_device(&inv, "0000:09:00.0"));
	cr_assert_null(inventory_find_iommu(&inv, "sim9"));
	inventory_release(&inv);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	buf = calloc(1, 65536);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

/* The shipped default.topology is the built-in one, byte for byte. */
Test(default_topology, file_matches_builtin)
{
	char path[4096];
	size_t len;
	char *text;

	snprintf(path, sizeof(path), "%s/libioasid/backends/sim/default.topology",
		 srcdir());
	text = slurp(path, &len);
	cr_assert_eq(len, strlen(topology_default));
	cr_assert_str_eq(text, topology_default);
	free(text);
}

Test(default_topology, load_equals_parse)
{
	struct inventory a, b;
	char path[4096], err[256] = "";

	snprintf(path, sizeof(path), "%s/libioasid/backends/sim/default.topology",
		 srcdir());
	cr_assert_eq(topology_load(path, &a, err, sizeof(err)), 0, "%s", err);
	parse_ok(topology_default, &b);
	cr_assert_eq(a.nr_iommus, b.nr_iommus);
	cr_assert_eq(a.nr_devices, b.nr_devices);
	for (uint32_t i = 0; i < a.nr_iommus; i++)
		cr_assert_eq(memcmp(&a.iommus[i].info, &b.iommus[i].info,
				    sizeof(a.iommus[i].info)), 0);
	for (uint32_t i = 0; i < a.nr_devices; i++)
		cr_assert_eq(memcmp(&a.devices[i].info, &b.devices[i].info,
				    sizeof(a.devices[i].info)), 0);
	inventory_release(&a);
	inventory_release(&b);
}

/* ---- the format's defaults and conveniences ------------------------------ */

Test(format, iommu_defaults)
{
	struct inventory inv;
	struct inv_iommu *u;

	parse_ok("iommu u0\n", &inv);
	u = &inv.iommus[0];
	cr_assert_eq(u->info.flags, IOASID_IOMMU_SIMULATED |
		     IOASID_IOMMU_CAPS_KNOWN | IOASID_IOMMU_SNOOP_CONTROL);
	cr_assert_eq(u->info.page_sizes, SZ_4K);
	cr_assert_eq(u->info.addr_width, 48);
	cr_assert_eq(u->nr_reserved, 0);
	cr_assert_eq(u->info.nr_devices, 0);
	inventory_release(&inv);
}

Test(format, device_defaults_and_auto_groups)
{
	struct inventory inv;

	parse_ok("iommu a\niommu b\n"
		 "device 0000:00:01.0 vendor=1 device=2 iommu=a\n"
		 "device 0000:00:02.0 vendor=1 device=2 iommu=b group=7\n"
		 "device 0000:00:03.0 vendor=1 device=2 iommu=a\n", &inv);
	cr_assert_eq(inv.nr_devices, 3);
	/* without group=: alone, numbered after the highest explicit one */
	cr_assert_eq(inv.devices[0].info.group, 8);
	cr_assert_eq(inv.devices[1].info.group, 7);
	cr_assert_eq(inv.devices[2].info.group, 9);
	cr_assert_eq(inv.devices[0].info.class_code, 0);
	cr_assert_eq(inv.devices[0].info.flags,
		     IOASID_DEVICE_SIMULATED | IOASID_DEVICE_TRANSLATES);
	cr_assert_eq(inv.devices[0].pcie_cap_offset, 0x40);
	cr_assert_eq(inv.devices[0].pcie_devctl, 0);
	cr_assert_eq(inv.iommus[0].info.nr_devices, 2);
	cr_assert_eq(inv.iommus[1].info.nr_devices, 1);
	inventory_release(&inv);
}

Test(format, comments_blanks_tabs_crlf_and_decimal)
{
	struct inventory inv;

	parse_ok("# leading comment\r\n"
		 "\r\n"
		 "   \t\n"
		 "iommu\tu0 \t address-width=39   # trailing comment\r\n"
		 "device 0000:ff:1f.7 vendor=4660 device=0x11E8 class=255 iommu=u0",
		 &inv);
	cr_assert_eq(inv.nr_iommus, 1);
	cr_assert_eq(inv.iommus[0].info.addr_width, 39);
	cr_assert_eq(inv.nr_devices, 1);
	cr_assert_eq(inv.devices[0].info.vendor, 0x1234);
	cr_assert_eq(inv.devices[0].info.device, 0x11e8);
	cr_assert_eq(inv.devices[0].info.class_code, 255);
	inventory_release(&inv);
}

Test(format, empty_text_is_an_empty_machine)
{
	struct inventory inv;

	parse_ok("", &inv);
	cr_assert_eq(inv.nr_iommus, 0);
	cr_assert_eq(inv.nr_devices, 0);
	parse_ok("# nothing\n\n", &inv);
	cr_assert_eq(inv.nr_iommus + inv.nr_devices, 0);
}

Test(format, page_size_units)
{
	struct inventory inv;

	parse_ok("iommu u page-sizes=4096,0x10000,2M,1G,1T address-width=64\n",
		 &inv);
	cr_assert_eq(inv.iommus[0].info.page_sizes,
		     SZ_4K | 0x10000 | SZ_2M | SZ_1G | (1ULL << 40));
	inventory_release(&inv);
}

Test(format, group_reserved_is_shared_and_merged)
{
	struct inventory inv;
	const struct inv_device *d;

	parse_ok("iommu u reserved=0xfee00000-0xfeefffff,0x1000-0x1fff\n"
		 "device 0000:00:01.0 vendor=1 device=1 iommu=u group=3 reserved=0x2000-0x2fff\n"
		 "device 0000:00:01.1 vendor=1 device=1 iommu=u group=3 reserved=0x8000-0x8fff,0xfef00000-0xfef00fff\n"
		 "device 0000:00:02.0 vendor=1 device=1 iommu=u\n", &inv);
	/* unit ranges are sorted and merged */
	cr_assert_eq(inv.iommus[0].nr_reserved, 2);
	cr_assert_eq(inv.iommus[0].reserved[0].start, 0x1000);
	cr_assert_eq(inv.iommus[0].reserved[0].last, 0x1fff);
	for (int i = 0; i < 2; i++) {
		d = &inv.devices[i];
		/* 0x1000-0x2fff joined, 0x8000, MSI + adjacent page joined */
		cr_assert_eq(d->nr_reserved, 3, "%s", d->info.name);
		cr_assert_eq(d->reserved[0].start, 0x1000);
		cr_assert_eq(d->reserved[0].last, 0x2fff);
		cr_assert_eq(d->reserved[1].start, 0x8000);
		cr_assert_eq(d->reserved[1].last, 0x8fff);
		cr_assert_eq(d->reserved[2].start, MSI_START);
		cr_assert_eq(d->reserved[2].last, 0xfef00fff);
	}
	d = &inv.devices[2];
	cr_assert_eq(d->nr_reserved, 2);
	inventory_release(&inv);
}

/* The second example of ioasid-topology(5). */
Test(format, man_page_example)
{
	struct inventory inv;

	parse_ok("iommu dmar0 snoop-control=no page-sizes=4K,2M address-width=39\n"
		 "device 0000:00:02.0 vendor=0x8086 device=0x3e9b class=0x030000 iommu=dmar0 no-snoop=yes\n",
		 &inv);
	cr_assert_eq(inv.nr_iommus, 1);
	cr_assert_eq(inv.devices[0].info.group, 0);
	cr_assert_eq(inv.devices[0].info.flags, IOASID_DEVICE_SIMULATED |
		     IOASID_DEVICE_TRANSLATES | IOASID_DEVICE_NO_SNOOP);
	inventory_release(&inv);
}

Test(format, flags_can_be_switched_off)
{
	struct inventory inv;

	parse_ok("iommu u snoop-control=no dirty-tracking=no nesting=no pasid=no\n"
		 "device 0000:00:01.0 vendor=1 device=1 iommu=u translates=no ats=no no-snoop=no\n",
		 &inv);
	cr_assert_eq(inv.iommus[0].info.flags,
		     IOASID_IOMMU_SIMULATED | IOASID_IOMMU_CAPS_KNOWN);
	cr_assert_eq(inv.devices[0].info.flags, IOASID_DEVICE_SIMULATED);
	inventory_release(&inv);
}

/* ---- errors --------------------------------------------------------------- */

struct bad {
	const char *text;
	const char *msg;	/* the whole message, "line N: ..." */
};

#define U "iommu u\n"
#define D "device 0000:00:01.0 vendor=1 device=2 iommu=u "
static const struct bad bad_texts[] = {
	/* directives and names */
	{ "frob x\n", "line 1: unknown directive \"frob\" (expected iommu or device)" },
	{ "\n\niommu\n", "line 3: iommu needs a name" },
	{ "iommu 0u\n", "line 1: \"0u\" is not a valid iommu name (a letter, then letters, digits, _ . -; at most 31)" },
	{ "iommu u/x\n", "line 1: \"u/x\" is not a valid iommu name (a letter, then letters, digits, _ . -; at most 31)" },
	{ "iommu abcdefghijklmnopqrstuvwxyz012345\n", "line 1: \"abcdefghijklmnopqrstuvwxyz012345\" is not a valid iommu name (a letter, then letters, digits, _ . -; at most 31)" },
	{ "iommu u\niommu u\n", "line 2: duplicate iommu \"u\"" },
	{ U "device\n", "line 2: device needs a PCI address" },
	{ U "device 00:01.0 vendor=1 device=2 iommu=u\n", "line 2: \"00:01.0\" is not a PCI address like 0000:00:01.0" },
	{ U "device 0000:00:01.8 vendor=1 device=2 iommu=u\n", "line 2: \"0000:00:01.8\" is not a PCI address like 0000:00:01.0" },
	{ U "device 0000:00:20.0 vendor=1 device=2 iommu=u\n", "line 2: \"0000:00:20.0\" is not a PCI address like 0000:00:01.0" },
	{ U "device 0000:00:0A.0 vendor=1 device=2 iommu=u\n", "line 2: \"0000:00:0A.0\" is not a PCI address like 0000:00:01.0" },
	{ U D "\n" D "\n", "line 3: duplicate device \"0000:00:01.0\"" },
	/* keys */
	{ "iommu u colour=red\n", "line 1: unknown key \"colour\"" },
	{ U D "name=nic\n", "line 2: unknown key \"name\"" },
	{ "iommu u snoop-control\n", "line 1: \"snoop-control\": expected key=value" },
	{ "iommu u pasid=\n", "line 1: key \"pasid\" needs a value" },
	{ "iommu u pasid=yes pasid=no\n", "line 1: duplicate key \"pasid\"" },
	{ U D "vendor=3\n", "line 2: duplicate key \"vendor\"" },
	{ U "device 0000:00:01.0 device=2 iommu=u\n", "line 2: device 0000:00:01.0 needs vendor=" },
	{ U "device 0000:00:01.0 vendor=2 iommu=u\n", "line 2: device 0000:00:01.0 needs device=" },
	{ U "device 0000:00:01.0 vendor=1 device=2\n", "line 2: device 0000:00:01.0 needs iommu=" },
	/* values */
	{ "iommu u snoop-control=maybe\n", "line 1: snoop-control=maybe: expected yes or no" },
	{ "iommu u dirty-tracking=1\n", "line 1: dirty-tracking=1: expected yes or no" },
	{ U D "ats=true\n", "line 2: ats=true: expected yes or no" },
	{ U D "no-snoop=perhaps\n", "line 2: no-snoop=perhaps: expected yes, no or unknown" },
	{ "iommu u address-width=65\n", "line 1: address-width=65: out of range (at most 0x40)" },
	{ "iommu u address-width=11\n", "line 1: address-width=11: at least 12" },
	{ "iommu u address-width=4o\n", "line 1: address-width=4o: not a number (decimal or 0x hex)" },
	{ U "device 0000:00:01.0 vendor=0x10000 device=2 iommu=u\n", "line 2: vendor=0x10000: out of range (at most 0xffff)" },
	{ U "device 0000:00:01.0 vendor=-1 device=2 iommu=u\n", "line 2: vendor=-1: not a number (decimal or 0x hex)" },
	{ U "device 0000:00:01.0 vendor=0x device=2 iommu=u\n", "line 2: vendor=0x: not a number (decimal or 0x hex)" },
	{ U "device 0000:00:01.0 vendor=0x0x12 device=2 iommu=u\n", "line 2: vendor=0x0x12: not a number (decimal or 0x hex)" },
	{ U "device 0000:00:01.0 vendor=1 device=99999999999999999999999 iommu=u\n", "line 2: device=99999999999999999999999: out of range (at most 0xffff)" },
	{ U D "class=0x1000000\n", "line 2: class=0x1000000: out of range (at most 0xffffff)" },
	{ U D "group=4294967295\n", "line 2: group=4294967295: out of range (at most 0xfffffffe)" },
	/* page sizes */
	{ "iommu u page-sizes=3K\n", "line 1: page-sizes: \"3K\" is not a power of two of at least 4K (4K, 2M, 1G, ...)" },
	{ "iommu u page-sizes=4k\n", "line 1: page-sizes: \"4k\" is not a power of two of at least 4K (4K, 2M, 1G, ...)" },
	{ "iommu u page-sizes=2K\n", "line 1: page-sizes: \"2K\" is not a power of two of at least 4K (4K, 2M, 1G, ...)" },
	{ "iommu u page-sizes=0K\n", "line 1: page-sizes: \"0K\" is not a power of two of at least 4K (4K, 2M, 1G, ...)" },
	{ "iommu u page-sizes=4K,4096\n", "line 1: page-sizes: 4096 listed twice" },
	{ "iommu u page-sizes=4K,,2M\n", "line 1: page-sizes=4K,,2M: expected a list like 4K,2M,1G" },
	{ "iommu u page-sizes=4K,\n", "line 1: page-sizes=4K,: expected a list like 4K,2M,1G" },
	{ "iommu u page-sizes=99999999999T\n", "line 1: page-sizes: \"99999999999T\" is not a power of two of at least 4K (4K, 2M, 1G, ...)" },
	{ "iommu u page-sizes=4K,1G address-width=30\n", "line 1: a page size does not fit in address-width=30" },
	/* reserved ranges */
	{ "iommu u reserved=0x1000\n", "line 1: reserved: \"0x1000\" is not START-LAST" },
	{ "iommu u reserved=0x2000-0x1000\n", "line 1: reserved: 0x2000-0x1000 ends before it starts" },
	{ "iommu u reserved=0x1000-zz\n", "line 1: reserved: \"0x1000-zz\" is not START-LAST (numbers)" },
	{ "iommu u reserved=0x1000-0x1fff,\n", "line 1: reserved=0x1000-0x1fff,: empty range in the list" },
	{ "iommu u reserved=-0x10\n", "line 1: reserved: \"-0x10\" is not START-LAST (numbers)" },
	{ "iommu u address-width=32 reserved=0xfee00000-0x100000000\n", "line 1: reserved range 0xfee00000-0x100000000 is beyond address-width=32" },
	{ U D "reserved=1-0\n", "line 2: reserved: 1-0 ends before it starts" },
	/* consistency */
	{ "device 0000:00:01.0 vendor=1 device=2 iommu=u\n", "line 1: unknown iommu \"u\" (declare it on an earlier line)" },
	{ U D "ats=yes translates=no\n", "line 2: ats=yes needs translates=yes" },
	{ "iommu a\niommu b\n"
	  "device 0000:00:01.0 vendor=1 device=2 iommu=a group=4\n"
	  "device 0000:00:01.1 vendor=1 device=2 iommu=b group=4\n",
	  "line 4: group 4 is behind iommu a (device 0000:00:01.0), not b" },
	{ U "device 0000:00:01.0 a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 k=11 l=12 m=13 n=14 o=15 p=16 q=17 r=18 s=19 t=20 u=21 v=22 w=23 x=24 y=25 z=26 aa=1 bb=2 cc=3 dd=4 ee=5\n",
	  "line 2: more than 32 words" },
};

Test(errors, every_error_has_its_line_and_message)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_texts); i++) {
		struct inventory inv;
		char err[256] = "";
		int ret = topology_parse(bad_texts[i].text, &inv, err,
					 sizeof(err));

		cr_assert_eq(ret, -EINVAL, "case %zu: %d (%s)", i, ret, err);
		cr_assert_str_eq(err, bad_texts[i].msg, "case %zu", i);
		/* nothing half-built is left behind */
		cr_assert_eq(inv.nr_iommus, 0, "case %zu", i);
		cr_assert_eq(inv.nr_devices, 0, "case %zu", i);
		cr_assert_null(inv.iommus);
		cr_assert_null(inv.devices);
	}
}

Test(errors, errmsg_is_optional)
{
	struct inventory inv;

	cr_assert_eq(topology_parse("frob\n", &inv, NULL, 0), -EINVAL);
	cr_assert_eq(topology_parse("frob\n", &inv, NULL, 10), -EINVAL);
}

Test(errors, errmsg_is_truncated_safely)
{
	struct inventory inv;
	char err[8];

	cr_assert_eq(topology_parse("frob\n", &inv, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "line 1:");
}

/* ---- files ------------------------------------------------------------------ */

static char tmp_path[64];

static void make_tmp(void)
{
	int fd;

	strcpy(tmp_path, "/tmp/ioasid-topology-XXXXXX");
	fd = mkstemp(tmp_path);
	cr_assert(fd >= 0);
	close(fd);
}

static void remove_tmp(void)
{
	unlink(tmp_path);
}

static void write_tmp(const void *data, size_t len)
{
	FILE *f = fopen(tmp_path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

Test(files, load_reports_path_and_line, .init = make_tmp, .fini = remove_tmp)
{
	struct inventory inv;
	char err[256], want[256];

	write_tmp("iommu u\n\nfrob\n", 14);
	cr_assert_eq(topology_load(tmp_path, &inv, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s: line 3: unknown directive \"frob\" (expected iommu or device)",
		 tmp_path);
	cr_assert_str_eq(err, want);
	cr_assert_eq(inv.nr_iommus, 0);
}

Test(files, missing_file)
{
	struct inventory inv;
	char err[256];

	cr_assert_eq(topology_load("/nonexistent/x.topology", &inv, err,
				   sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "/nonexistent/x.topology: No such file or directory");
}

Test(files, directory_is_not_a_topology)
{
	struct inventory inv;
	char err[256];

	cr_assert_eq(topology_load("/tmp", &inv, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "/tmp: not a text file");
}

Test(files, nul_byte_is_refused, .init = make_tmp, .fini = remove_tmp)
{
	struct inventory inv;
	char err[256];

	write_tmp("iommu u\n\0iommu v\n", 17);
	cr_assert_eq(topology_load(tmp_path, &inv, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not a text file"));
}

Test(files, too_big, .init = make_tmp, .fini = remove_tmp)
{
	struct inventory inv;
	char err[256];

	cr_assert_eq(truncate(tmp_path, 2 * 1024 * 1024), 0);
	cr_assert_eq(topology_load(tmp_path, &inv, err, sizeof(err)), -EFBIG);
}

Test(files, loads_a_good_file, .init = make_tmp, .fini = remove_tmp)
{
	static const char text[] =
		"iommu u snoop-control=no\n"
		"device 0000:00:01.0 vendor=1 device=2 iommu=u no-snoop=yes\n";
	struct inventory inv;
	char err[256] = "";

	write_tmp(text, sizeof(text) - 1);
	cr_assert_eq(topology_load(tmp_path, &inv, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(inv.nr_devices, 1);
	cr_assert(inv.devices[0].info.flags & IOASID_DEVICE_NO_SNOOP);
	cr_assert_eq(inv.devices[0].pcie_devctl, 0x0800);
	inventory_release(&inv);
}
