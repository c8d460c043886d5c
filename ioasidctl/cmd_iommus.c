/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl iommus: the IOMMU units and their capabilities. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl iommus [--json]\n"
	"\n"
	"List the IOMMU units: kind, whether they can force DMA to snoop\n"
	"(snoop control), page sizes, input address width, dirty tracking,\n"
	"nesting, vIOMMUs, PASID support and how many devices sit behind\n"
	"each.\n";

static const char *yes_no(uint32_t flags, uint32_t bit)
{
	if (!(flags & IOASID_IOMMU_CAPS_KNOWN))
		return "?";
	return flags & bit ? "yes" : "no";
}

static void add_row(struct table *t, const struct ioasid_iommu_info *u)
{
	char sizes[64];

	page_sizes_str(u->page_sizes, sizes, sizeof(sizes));
	table_cell(t, "%s", u->name);
	table_cell(t, "%s", u->kind);
	table_cell(t, "%s", yes_no(u->flags, IOASID_IOMMU_SNOOP_CONTROL));
	table_cell(t, "%s", sizes);
	table_cell(t, "%u", u->addr_width);
	table_cell(t, "%s", yes_no(u->flags, IOASID_IOMMU_DIRTY_TRACKING));
	table_cell(t, "%s", yes_no(u->flags, IOASID_IOMMU_NESTING));
	table_cell(t, "%s", yes_no(u->flags, IOASID_IOMMU_VIOMMU));
	table_cell(t, "%s", yes_no(u->flags, IOASID_IOMMU_PASID));
	table_cell(t, "%u", u->nr_devices);
}

static int print_table(const struct ioasid_iommu_info *v, uint32_t nr)
{
	static const char *const hdr[] = {
		"IOMMU", "KIND", "SNOOP-CONTROL", "PAGE-SIZES", ">ADDR-BITS",
		"DIRTY", "NESTING", "VIOMMU", "PASID", ">DEVICES",
	};
	struct table t;
	int r;

	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < nr; i++)
		add_row(&t, &v[i]);
	r = table_print(&t, stdout, "");
	table_free(&t);
	return r;
}

static void json_cap(struct json *j, const char *key, uint32_t flags,
		     uint32_t bit)
{
	if (flags & IOASID_IOMMU_CAPS_KNOWN)
		json_bool(j, key, flags & bit);
	else
		json_null(j, key);
}

void json_iommu(struct json *j, const struct ioasid_iommu_info *u)
{
	json_obj_begin(j, NULL);
	json_str(j, "name", u->name);
	json_str(j, "kind", u->kind);
	json_bool(j, "caps_known", u->flags & IOASID_IOMMU_CAPS_KNOWN);
	json_cap(j, "snoop_control", u->flags, IOASID_IOMMU_SNOOP_CONTROL);
	json_cap(j, "dirty_tracking", u->flags, IOASID_IOMMU_DIRTY_TRACKING);
	json_cap(j, "nesting", u->flags, IOASID_IOMMU_NESTING);
	json_cap(j, "viommu", u->flags, IOASID_IOMMU_VIOMMU);
	json_cap(j, "pasid", u->flags, IOASID_IOMMU_PASID);
	json_bool(j, "simulated", u->flags & IOASID_IOMMU_SIMULATED);
	json_arr_begin(j, "page_sizes");
	for (unsigned int bit = 0; bit < 64; bit++)
		if (u->page_sizes & (1ULL << bit))
			json_u64(j, NULL, 1ULL << bit);
	json_arr_end(j);
	json_u64(j, "addr_width", u->addr_width);
	json_u64(j, "cap", u->cap);
	json_u64(j, "ecap", u->ecap);
	json_u64(j, "nr_devices", u->nr_devices);
	json_obj_end(j);
}

static void print_json(const struct ioasid_iommu_info *v, uint32_t nr)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_arr_begin(&j, "iommus");
	for (uint32_t i = 0; i < nr; i++)
		json_iommu(&j, &v[i]);
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

int cmd_iommus(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_iommu_info *v = NULL;
	uint32_t nr = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ctl_list_iommus(ctl, &v, &nr);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot list IOMMUs");
	if (ctl->json)
		print_json(v, nr);
	else if (print_table(v, nr) < 0)
		r = ctl_syserr(ctl, ENOMEM, "iommus");
	free(v);
	return r;
}
