/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Parser of the simulated topology format, ioasid-topology(5):
 *
 *   # comment
 *   iommu NAME [key=value]...
 *   device DDDD:BB:DD.F key=value...
 *
 * Strict on purpose: a typo in a test topology should fail loudly with
 * its line number, not silently give a different machine.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/sim/topology.h"
#include "util/macros.h"
#include "util/parse.h"

#define TOPOLOGY_FILE_MAX	(1024 * 1024)
#define SIM_DRIVER		"vfio-pci-sim"
#define SIM_PCIE_CAP		0x40
#define SIM_DEVCTL_NOSNOOP	0x0800
#define GROUP_AUTO		(~0U)

const char topology_default[] =
	"# ioasid: the built-in simulated topology (backend \"sim\").\n"
	"# Format: ioasid-topology(5).\n"
	"\n"
	"# A unit that can force DMA to snoop, with every optional feature.\n"
	"iommu sim0 snoop-control=yes page-sizes=4K,2M,1G address-width=48 dirty-tracking=yes nesting=yes pasid=yes reserved=0xfee00000-0xfeefffff\n"
	"# A unit that cannot: no-snoop DMA behind it stays non-coherent.\n"
	"iommu sim1 snoop-control=no page-sizes=4K,2M address-width=39 reserved=0xfee00000-0xfeefffff\n"
	"\n"
	"# A plain NIC, alone in its group.\n"
	"device 0000:00:01.0 vendor=0x8086 device=0x1572 class=0x020000 iommu=sim0 group=1\n"
	"# Two functions of one card without ACS between them: one group.\n"
	"device 0000:00:02.0 vendor=0x15b3 device=0x101d class=0x020000 iommu=sim0 group=2 ats=yes\n"
	"device 0000:00:02.1 vendor=0x15b3 device=0x101d class=0x020000 iommu=sim0 group=2 ats=yes\n"
	"# A GPU with Enable No Snoop set, behind the unit that can enforce.\n"
	"device 0000:00:03.0 vendor=0x10de device=0x2330 class=0x030200 iommu=sim0 group=3 no-snoop=yes ats=yes pasid=20\n"
	"# A GPU with Enable No Snoop set, behind the unit that cannot:\n"
	"# its DMA can bypass CPU caches, so its VM needs WBINVD.\n"
	"device 0000:01:00.0 vendor=0x1002 device=0x740f class=0x038000 iommu=sim1 group=4 no-snoop=yes\n"
	"# A virtio device that cannot translate (no VIRTIO_F_ACCESS_PLATFORM).\n"
	"device 0000:01:01.0 vendor=0x1af4 device=0x1041 class=0x020000 iommu=sim1 group=5 translates=no\n"
	"# An NVMe controller whose config space could not be read.\n"
	"device 0000:01:02.0 vendor=0x8086 device=0x0a54 class=0x010802 iommu=sim1 group=6 no-snoop=unknown\n";

struct parser {
	struct inventory *inv;
	unsigned int line;
	char *errmsg;
	size_t errlen;
};

static int perr(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int perr(struct parser *p, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errmsg && p->errlen)
		snprintf(p->errmsg, p->errlen, "line %u: %s", p->line, msg);
	return -EINVAL;
}

/* ---- values ---------------------------------------------------------- */

/* "0x..." hex or plain decimal; no sign, no octal, no blanks. */
static int parse_number(const char *s, uint64_t *val)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (const char *c = s + 2; *c; c++)
			if (!isxdigit((unsigned char)*c))
				return -EINVAL;
		return s[2] ? parse_u64(s + 2, 16, val) : -EINVAL;
	}
	for (const char *c = s; *c; c++)
		if (!isdigit((unsigned char)*c))
			return -EINVAL;
	return parse_u64(s, 10, val);
}

static int number_in(struct parser *p, const char *key, const char *s,
		     uint64_t max, uint64_t *val)
{
	int ret = parse_number(s, val);

	if (ret == -ERANGE || (!ret && *val > max))
		return perr(p, "%s=%s: out of range (at most %#llx)", key, s,
			    (unsigned long long)max);
	if (ret)
		return perr(p, "%s=%s: not a number (decimal or 0x hex)", key,
			    s);
	return 0;
}

static int boolean(struct parser *p, const char *key, const char *s,
		   bool *val)
{
	if (!strcmp(s, "yes"))
		*val = true;
	else if (!strcmp(s, "no"))
		*val = false;
	else
		return perr(p, "%s=%s: expected yes or no", key, s);
	return 0;
}

/* "4K", "2M", "1G", "1T" (binary units) or a plain number of bytes. */
static int page_size(const char *s, uint64_t *size)
{
	static const char units[] = "KMGT";
	char digits[24];
	size_t n = strlen(s);
	const char *unit;
	uint64_t v;

	if (!n || n >= sizeof(digits))
		return -EINVAL;
	unit = strchr(units, s[n - 1]);
	if (!unit)
		return parse_number(s, size);
	memcpy(digits, s, n - 1);
	digits[n - 1] = '\0';
	if (parse_number(digits, &v) || v == 0)
		return -EINVAL;
	for (int i = 0; i <= unit - units; i++) {
		if (v > UINT64_MAX / 1024)
			return -ERANGE;
		v *= 1024;
	}
	*size = v;
	return 0;
}

static int page_sizes(struct parser *p, const char *s, uint64_t *mask)
{
	char list[128], *save = NULL, *item;

	if (strlen(s) >= sizeof(list))
		return perr(p, "page-sizes: list too long");
	strcpy(list, s);
	*mask = 0;
	for (item = strtok_r(list, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		uint64_t size;

		if (page_size(item, &size) || size < SZ_4K ||
		    (size & (size - 1)))
			return perr(p, "page-sizes: \"%s\" is not a power of two of at least 4K (4K, 2M, 1G, ...)",
				    item);
		if (*mask & size)
			return perr(p, "page-sizes: %s listed twice", item);
		*mask |= size;
	}
	if (!*mask || s[0] == ',' || s[strlen(s) - 1] == ',' ||
	    strstr(s, ",,"))
		return perr(p, "page-sizes=%s: expected a list like 4K,2M,1G",
			    s);
	return 0;
}

/* "START-LAST[,START-LAST]...", inclusive bounds. */
static int ranges(struct parser *p, const char *s,
		  struct ioasid_iova_range **list, uint32_t *nr)
{
	char copy[512], *save = NULL, *item;

	if (strlen(s) >= sizeof(copy))
		return perr(p, "reserved: list too long");
	if (s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,"))
		return perr(p, "reserved=%s: empty range in the list", s);
	strcpy(copy, s);
	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(item, '-');
		uint64_t start, last;

		if (!dash)
			return perr(p, "reserved: \"%s\" is not START-LAST",
				    item);
		*dash = '\0';
		if (parse_number(item, &start) || parse_number(dash + 1, &last))
			return perr(p, "reserved: \"%s-%s\" is not START-LAST (numbers)",
				    item, dash + 1);
		if (start > last)
			return perr(p, "reserved: %s-%s ends before it starts",
				    item, dash + 1);
		if (inventory_add_range(list, nr, start, last))
			return -ENOMEM;
	}
	return 0;
}

/* ---- names ---------------------------------------------------------------- */

static bool valid_unit_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= IOASID_NAME_MAX || !isalpha((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* Exactly DDDD:BB:DD.F in lower-case hex, device <= 0x1f, function <= 7. */
static bool valid_pci_name(const char *s)
{
	static const char pattern[] = "xxxx:xx:xx.x";
	unsigned int domain, bus, dev, fn;

	if (strlen(s) != sizeof(pattern) - 1)
		return false;
	for (size_t i = 0; pattern[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (pattern[i] != 'x' && c != pattern[i])
			return false;
		if (pattern[i] == 'x' && (!isxdigit(c) || isupper(c)))
			return false;
	}
	if (sscanf(s, "%4x:%2x:%2x.%1x", &domain, &bus, &dev, &fn) != 4)
		return false;
	return dev <= 0x1f && fn <= 7;
}

/* ---- key=value lists ------------------------------------------------------ */

/*
 * Split "key=value" and find key in @keys; check it is known, not
 * repeated (bit in *seen) and has a value.  Returns the key's index.
 */
static int lookup_key(struct parser *p, char *token, const char *const *keys,
		      int nr_keys, unsigned int *seen, const char **value)
{
	char *eq = strchr(token, '=');

	if (!eq)
		return perr(p, "\"%s\": expected key=value", token);
	*eq = '\0';
	*value = eq + 1;
	for (int i = 0; i < nr_keys; i++) {
		if (strcmp(token, keys[i]))
			continue;
		if (*seen & (1u << i))
			return perr(p, "duplicate key \"%s\"", token);
		*seen |= 1u << i;
		if (!**value)
			return perr(p, "key \"%s\" needs a value", token);
		return i;
	}
	return perr(p, "unknown key \"%s\"", token);
}

/* ---- iommu lines ------------------------------------------------------------ */

enum {
	IK_SNOOP, IK_PAGES, IK_WIDTH, IK_DIRTY, IK_NESTING, IK_PASID, IK_RESV,
	IK_MAX
};
static const char *const iommu_keys[IK_MAX] = {
	[IK_SNOOP] = "snoop-control",	[IK_PAGES] = "page-sizes",
	[IK_WIDTH] = "address-width",	[IK_DIRTY] = "dirty-tracking",
	[IK_NESTING] = "nesting",	[IK_PASID] = "pasid",
	[IK_RESV] = "reserved",
};

static const uint32_t iommu_flag_of[IK_MAX] = {
	[IK_SNOOP] = IOASID_IOMMU_SNOOP_CONTROL,
	[IK_DIRTY] = IOASID_IOMMU_DIRTY_TRACKING,
	[IK_NESTING] = IOASID_IOMMU_NESTING,
	[IK_PASID] = IOASID_IOMMU_PASID,
};

static int iommu_key(struct parser *p, struct inv_iommu *unit, int key,
		     const char *value)
{
	uint64_t width = 0, sizes = 0;
	bool on = false;
	int ret;

	switch (key) {
	case IK_PAGES:
		ret = page_sizes(p, value, &sizes);
		unit->info.page_sizes = sizes;
		return ret;
	case IK_WIDTH:
		ret = number_in(p, "address-width", value, 64, &width);
		if (!ret && width < 12)
			ret = perr(p, "address-width=%s: at least 12", value);
		unit->info.addr_width = (uint32_t)width;
		return ret;
	case IK_RESV:
		return ranges(p, value, &unit->reserved, &unit->nr_reserved);
	default:
		ret = boolean(p, iommu_keys[key], value, &on);
		if (on)
			unit->info.flags |= iommu_flag_of[key];
		else
			unit->info.flags &= ~iommu_flag_of[key];
		return ret;
	}
}

/* What can only be checked once the whole line is known. */
static int iommu_check(struct parser *p, const struct inv_iommu *unit)
{
	uint32_t width = unit->info.addr_width;

	if (width < 64 && unit->info.page_sizes >> width)
		return perr(p, "a page size does not fit in address-width=%u",
			    width);
	for (uint32_t i = 0; width < 64 && i < unit->nr_reserved; i++)
		if (unit->reserved[i].last >> width)
			return perr(p, "reserved range %#llx-%#llx is beyond address-width=%u",
				    (unsigned long long)unit->reserved[i].start,
				    (unsigned long long)unit->reserved[i].last,
				    width);
	return 0;
}

static int parse_iommu(struct parser *p, char **tok, int ntok)
{
	struct inv_iommu unit = { 0 }, *slot;
	unsigned int seen = 0;
	int ret = 0;

	if (ntok < 2)
		return perr(p, "iommu needs a name");
	if (!valid_unit_name(tok[1]))
		return perr(p, "\"%s\" is not a valid iommu name (a letter, then letters, digits, _ . -; at most %d)",
			    tok[1], IOASID_NAME_MAX - 1);
	if (inventory_find_iommu(p->inv, tok[1]))
		return perr(p, "duplicate iommu \"%s\"", tok[1]);
	strcpy(unit.info.name, tok[1]);
	strcpy(unit.info.kind, "sim");
	unit.info.size = sizeof(unit.info);
	unit.info.flags = IOASID_IOMMU_SIMULATED | IOASID_IOMMU_CAPS_KNOWN |
			  IOASID_IOMMU_SNOOP_CONTROL;
	unit.info.page_sizes = SZ_4K;
	unit.info.addr_width = 48;
	for (int i = 2; !ret && i < ntok; i++) {
		const char *value;
		int key = lookup_key(p, tok[i], iommu_keys, IK_MAX, &seen,
				     &value);

		ret = key < 0 ? key : iommu_key(p, &unit, key, value);
	}
	/* the simulator's vIOMMUs need nothing but nested translation */
	if (unit.info.flags & IOASID_IOMMU_NESTING)
		unit.info.flags |= IOASID_IOMMU_VIOMMU;
	if (!ret)
		ret = iommu_check(p, &unit);
	if (!ret)
		ret = inventory_add_iommu(p->inv, &slot);
	if (ret) {
		free(unit.reserved);
		return ret;
	}
	*slot = unit;
	return 0;
}

/* ---- device lines ----------------------------------------------------------- */

enum {
	DK_VENDOR, DK_DEVICE, DK_CLASS, DK_IOMMU, DK_GROUP, DK_NOSNOOP,
	DK_TRANSLATES, DK_ATS, DK_RESV, DK_PASID, DK_MAX
};
static const char *const device_keys[DK_MAX] = {
	[DK_VENDOR] = "vendor",		[DK_DEVICE] = "device",
	[DK_CLASS] = "class",		[DK_IOMMU] = "iommu",
	[DK_GROUP] = "group",		[DK_NOSNOOP] = "no-snoop",
	[DK_TRANSLATES] = "translates",	[DK_ATS] = "ats",
	[DK_RESV] = "reserved",		[DK_PASID] = "pasid",
};
#define DK_REQUIRED ((1u << DK_VENDOR) | (1u << DK_DEVICE) | (1u << DK_IOMMU))

static int no_snoop(struct parser *p, struct inv_device *dev, const char *s)
{
	if (!strcmp(s, "unknown")) {
		/* as if config space could not be read */
		dev->info.flags |= IOASID_DEVICE_NO_SNOOP_UNKNOWN;
		dev->pcie_cap_offset = 0;
	} else if (!strcmp(s, "yes")) {
		dev->info.flags |= IOASID_DEVICE_NO_SNOOP;
		dev->pcie_devctl = SIM_DEVCTL_NOSNOOP;
	} else if (strcmp(s, "no")) {
		return perr(p, "no-snoop=%s: expected yes, no or unknown", s);
	}
	return 0;
}

static int device_iommu(struct parser *p, struct inv_device *dev,
			const char *s)
{
	if (!inventory_find_iommu(p->inv, s))
		return perr(p, "unknown iommu \"%s\" (declare it on an earlier line)",
			    s);
	strcpy(dev->info.iommu, s);
	return 0;
}

static int device_flag(struct parser *p, struct inv_device *dev, int key,
		       const char *s, uint32_t flag)
{
	bool on = false;
	int ret = boolean(p, device_keys[key], s, &on);

	if (!ret && on)
		dev->info.flags |= flag;
	if (!ret && !on)
		dev->info.flags &= ~flag;
	return ret;
}

static int device_key(struct parser *p, struct inv_device *dev, int key,
		      const char *s)
{
	uint64_t v = 0;
	int ret;

	switch (key) {
	case DK_VENDOR:
	case DK_DEVICE:
		ret = number_in(p, device_keys[key], s, 0xffff, &v);
		if (key == DK_VENDOR)
			dev->info.vendor = (uint16_t)v;
		else
			dev->info.device = (uint16_t)v;
		return ret;
	case DK_CLASS:
		ret = number_in(p, "class", s, 0xffffff, &v);
		dev->info.class_code = (uint32_t)v;
		return ret;
	case DK_GROUP:
		ret = number_in(p, "group", s, UINT32_MAX - 1, &v);
		dev->info.group = (uint32_t)v;
		return ret;
	case DK_IOMMU:
		return device_iommu(p, dev, s);
	case DK_NOSNOOP:
		return no_snoop(p, dev, s);
	case DK_TRANSLATES:
		return device_flag(p, dev, key, s, IOASID_DEVICE_TRANSLATES);
	case DK_ATS:
		return device_flag(p, dev, key, s, IOASID_DEVICE_ATS);
	case DK_PASID:	/* the PASID capability's Max PASID Width */
		ret = number_in(p, "pasid", s, 20, &v);
		dev->info.pasid_bits = (uint32_t)v;
		return ret;
	default:
		return ranges(p, s, &dev->reserved, &dev->nr_reserved);
	}
}

static int device_check(struct parser *p, const struct inv_device *dev,
			unsigned int seen)
{
	if ((seen & DK_REQUIRED) != DK_REQUIRED) {
		for (int i = 0; i < DK_MAX; i++)
			if ((DK_REQUIRED & (1u << i)) && !(seen & (1u << i)))
				return perr(p, "device %s needs %s=",
					    dev->info.name, device_keys[i]);
	}
	if ((dev->info.flags & IOASID_DEVICE_ATS) &&
	    !(dev->info.flags & IOASID_DEVICE_TRANSLATES))
		return perr(p, "ats=yes needs translates=yes");
	if (dev->info.group == GROUP_AUTO)
		return 0;
	/* a group is what one IOMMU unit isolates: it cannot span two */
	for (uint32_t i = 0; i < p->inv->nr_devices; i++) {
		const struct inv_device *other = &p->inv->devices[i];

		if (other->info.group == dev->info.group &&
		    strcmp(other->info.iommu, dev->info.iommu))
			return perr(p, "group %u is behind iommu %s (device %s), not %s",
				    dev->info.group, other->info.iommu,
				    other->info.name, dev->info.iommu);
	}
	return 0;
}

static int parse_device(struct parser *p, char **tok, int ntok)
{
	struct inv_device dev = { 0 }, *slot;
	unsigned int seen = 0;
	int ret = 0;

	if (ntok < 2)
		return perr(p, "device needs a PCI address");
	if (!valid_pci_name(tok[1]))
		return perr(p, "\"%s\" is not a PCI address like 0000:00:01.0",
			    tok[1]);
	if (inventory_find_device(p->inv, tok[1]))
		return perr(p, "duplicate device \"%s\"", tok[1]);
	strcpy(dev.info.name, tok[1]);
	strcpy(dev.info.driver, SIM_DRIVER);
	dev.info.size = sizeof(dev.info);
	dev.info.group = GROUP_AUTO;
	dev.pcie_cap_offset = SIM_PCIE_CAP;
	dev.info.flags = IOASID_DEVICE_SIMULATED | IOASID_DEVICE_TRANSLATES;
	for (int i = 2; !ret && i < ntok; i++) {
		const char *value;
		int key = lookup_key(p, tok[i], device_keys, DK_MAX, &seen,
				     &value);

		ret = key < 0 ? key : device_key(p, &dev, key, value);
	}
	if (!ret)
		ret = device_check(p, &dev, seen);
	if (!ret)
		ret = inventory_add_device(p->inv, &slot);
	if (ret) {
		free(dev.reserved);
		return ret;
	}
	*slot = dev;
	return 0;
}

/* ---- lines ------------------------------------------------------------------ */

#define MAX_TOKENS 32

static int parse_line(struct parser *p, char *line)
{
	char *tok[MAX_TOKENS], *save = NULL, *hash, *t;
	int ntok = 0;

	hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	for (t = strtok_r(line, " \t\r", &save); t;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (ntok == MAX_TOKENS)
			return perr(p, "more than %d words", MAX_TOKENS);
		tok[ntok++] = t;
	}
	if (!ntok)
		return 0;
	if (!strcmp(tok[0], "iommu"))
		return parse_iommu(p, tok, ntok);
	if (!strcmp(tok[0], "device"))
		return parse_device(p, tok, ntok);
	return perr(p, "unknown directive \"%s\" (expected iommu or device)",
		    tok[0]);
}

/* ---- after the last line ------------------------------------------------------ */

static void number_auto_groups(struct inventory *inv)
{
	uint32_t next = 0;

	for (uint32_t i = 0; i < inv->nr_devices; i++)
		if (inv->devices[i].info.group != GROUP_AUTO &&
		    inv->devices[i].info.group >= next)
			next = inv->devices[i].info.group + 1;
	for (uint32_t i = 0; i < inv->nr_devices; i++)
		if (inv->devices[i].info.group == GROUP_AUTO)
			inv->devices[i].info.group = next++;
}

static int add_ranges(struct ioasid_iova_range **to, uint32_t *nr,
		      const struct ioasid_iova_range *from, uint32_t nr_from)
{
	for (uint32_t i = 0; i < nr_from; i++) {
		int ret = inventory_add_range(to, nr, from[i].start,
					      from[i].last);

		if (ret)
			return ret;
	}
	return 0;
}

/* The regions of @group: its unit's plus every member's own. */
static int group_reserved(struct inventory *inv, uint32_t group,
			  struct ioasid_iova_range **list, uint32_t *nr)
{
	int ret = 0;

	for (uint32_t i = 0; !ret && i < inv->nr_devices; i++) {
		struct inv_device *dev = &inv->devices[i];
		struct inv_iommu *unit;

		if (dev->info.group != group)
			continue;
		unit = inventory_find_iommu(inv, dev->info.iommu);
		ret = add_ranges(list, nr, unit->reserved, unit->nr_reserved);
		if (!ret)
			ret = add_ranges(list, nr, dev->reserved,
					 dev->nr_reserved);
	}
	return ret;
}

/* Give every device its group's reserved regions, as sysfs would. */
static int share_group_reserved(struct inventory *inv)
{
	struct ioasid_iova_range **merged;
	uint32_t *nr;
	int ret = 0;

	if (!inv->nr_devices)
		return 0;
	merged = calloc(inv->nr_devices, sizeof(*merged));
	nr = calloc(inv->nr_devices, sizeof(*nr));
	if (!merged || !nr)
		ret = -ENOMEM;
	for (uint32_t i = 0; !ret && i < inv->nr_devices; i++)
		ret = group_reserved(inv, inv->devices[i].info.group,
				     &merged[i], &nr[i]);
	for (uint32_t i = 0; merged && i < inv->nr_devices; i++) {
		struct inv_device *dev = &inv->devices[i];

		if (ret) {
			free(merged[i]);
			continue;
		}
		free(dev->reserved);
		dev->reserved = merged[i];
		dev->nr_reserved = nr[i];
	}
	free(merged);
	free(nr);
	return ret;
}

int topology_parse(const char *text, struct inventory *inv, char *errmsg,
		   size_t errlen)
{
	struct parser p = { .inv = inv, .errmsg = errmsg, .errlen = errlen };
	char *copy, *line, *next;
	int ret = 0;

	memset(inv, 0, sizeof(*inv));
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	for (line = copy; !ret && line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		p.line++;
		ret = parse_line(&p, line);
	}
	free(copy);
	if (!ret) {
		number_auto_groups(inv);
		ret = share_group_reserved(inv);
	}
	if (ret == -ENOMEM && errmsg && errlen)
		snprintf(errmsg, errlen, "out of memory");
	if (ret) {
		inventory_release(inv);
		return ret;
	}
	inventory_count_devices(inv);
	return 0;
}

/* ---- files ------------------------------------------------------------------ */

static int read_file(const char *path, char **text)
{
	struct stat st;
	ssize_t n;
	char *buf;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else if (st.st_size > TOPOLOGY_FILE_MAX)
		ret = -EFBIG;
	buf = ret ? NULL : malloc((size_t)st.st_size + 1);
	if (!ret && !buf)
		ret = -ENOMEM;
	if (!ret) {
		n = read(fd, buf, (size_t)st.st_size);
		if (n < 0)
			ret = -errno;
		else
			buf[n] = '\0';
		if (n >= 0 && strlen(buf) != (size_t)n)
			ret = -EINVAL;	/* a NUL byte: not a text file */
	}
	close(fd);
	if (ret) {
		free(buf);
		return ret;
	}
	*text = buf;
	return 0;
}

int topology_load(const char *path, struct inventory *inv, char *errmsg,
		  size_t errlen)
{
	char why[256] = "";
	char *text = NULL;
	int ret;

	memset(inv, 0, sizeof(*inv));
	ret = read_file(path, &text);
	if (ret) {
		if (errmsg && errlen)
			snprintf(errmsg, errlen, "%s: %s", path,
				 ret == -EINVAL ? "not a text file" :
				 strerror(-ret));
		return ret;
	}
	ret = topology_parse(text, inv, why, sizeof(why));
	free(text);
	if (ret && errmsg && errlen)
		snprintf(errmsg, errlen, "%s: %s", path, why);
	return ret;
}
