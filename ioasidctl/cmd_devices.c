/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl devices: what the backend offers, and this session's state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl devices [--json] [DEVICE...]\n"
	"\n"
	"List the devices the backend offers (or only those named): PCI\n"
	"name, vendor:device, class, driver, IOMMU group and unit, what the\n"
	"device can do, and its state in this session (bound, attached, on\n"
	"which IOAS and domain, through which nested table, coherent or\n"
	"not), and its PASIDs: the width it has and how many are attached\n"
	"(PASIDS, \"-\" without the capability).  Through ioasidd, another\n"
	"client's bindings show only when the daemon lets ioasidctl observe.\n";

#define CAP_MASK	0x3fU		/* bits 0-5: what the device is */
#define STATE_SHIFT	6		/* bits 6-13: its state here */
#define NR_STATE	8

static void id_cell(struct table *t, uint32_t id)
{
	if (id)
		table_cell(t, "%u", id);
	else
		table_cell(t, "-");
}

static void add_row(struct table *t, const struct ioasid_device_info *d)
{
	char caps[128], state[128];

	flag_words(d->flags & CAP_MASK, device_cap_names, 6, caps,
		   sizeof(caps));
	flag_words(d->flags >> STATE_SHIFT, device_cap_names + STATE_SHIFT,
		   NR_STATE, state, sizeof(state));
	table_cell(t, "%s", d->name);
	table_cell(t, "%04x:%04x", d->vendor, d->device);
	table_cell(t, "%06x", d->class_code);
	table_cell(t, "%s", d->driver[0] ? d->driver : "-");
	if (d->group == UINT32_MAX)
		table_cell(t, "-");
	else
		table_cell(t, "%u", d->group);
	table_cell(t, "%s", d->iommu[0] ? d->iommu : "-");
	table_cell(t, "%s", caps);
	id_cell(t, d->dev_id);
	id_cell(t, d->ioas_id);
	id_cell(t, d->domain_id);
	id_cell(t, d->nested_id);
	id_cell(t, d->vm_id);
	if (d->pasid_bits)
		table_cell(t, "%u/%u-bit", d->nr_pasids, d->pasid_bits);
	else
		table_cell(t, "-");
	table_cell(t, "%s", state);
}

static int print_table(const struct ioasid_device_info *v, uint32_t nr,
		       const bool *shown)
{
	static const char *const hdr[] = {
		"DEVICE", "ID", "CLASS", "DRIVER", ">GROUP", "IOMMU", "FLAGS",
		">DEV", ">IOAS", ">DOMAIN", ">NESTED", ">VM", ">PASIDS", "STATE",
	};
	struct table t;
	int r;

	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < nr; i++)
		if (shown[i])
			add_row(&t, &v[i]);
	r = table_print(&t, stdout, "");
	table_free(&t);
	return r;
}

void json_device(struct json *j, const struct ioasid_device_info *d)
{
	char id[8];

	json_obj_begin(j, NULL);
	json_str(j, "name", d->name);
	snprintf(id, sizeof(id), "%04x", d->vendor);
	json_str(j, "vendor", id);
	snprintf(id, sizeof(id), "%04x", d->device);
	json_str(j, "device", id);
	snprintf(id, sizeof(id), "%06x", d->class_code);
	json_str(j, "class", id);
	json_str(j, "driver", d->driver);
	if (d->group == UINT32_MAX)
		json_null(j, "group");
	else
		json_u64(j, "group", d->group);
	json_str(j, "iommu", d->iommu);
	json_str(j, "vfio_cdev", d->vfio_cdev);
	json_flag_words(j, "flags", d->flags & CAP_MASK, device_cap_names, 6);
	json_flag_words(j, "state", d->flags >> STATE_SHIFT,
			device_cap_names + STATE_SHIFT, NR_STATE);
	json_id(j, "dev_id", d->dev_id);
	json_id(j, "ioas", d->ioas_id);
	json_id(j, "domain", d->domain_id);
	json_id(j, "nested", d->nested_id);
	json_id(j, "vm", d->vm_id);
	json_u64(j, "pasid_bits", d->pasid_bits);
	json_u64(j, "pasids", d->nr_pasids);
	json_flag_words(j, "platform", d->platform, platform_names,
			ARRAY_SIZE(platform_names));
	json_obj_end(j);
}

static void print_json(const struct ioasid_device_info *v, uint32_t nr,
		       const bool *shown)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_arr_begin(&j, "devices");
	for (uint32_t i = 0; i < nr; i++)
		if (shown[i])
			json_device(&j, &v[i]);
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

/* Marks the devices named on the command line (all when none is). */
static int select_devices(struct ctl *ctl, int argc, char **argv,
			  const struct ioasid_device_info *v, uint32_t nr,
			  bool *shown)
{
	char name[IOASID_NAME_MAX];

	for (uint32_t i = 0; i < nr; i++)
		shown[i] = optind == argc;
	for (int a = optind; a < argc; a++) {
		uint32_t i;

		ctl_device_name(argv[a], name, sizeof(name));
		for (i = 0; i < nr && strcmp(v[i].name, name); i++)
			;
		if (i == nr) {
			ctl_err(ctl, "devices: no device %s", name);
			return EXIT_FAIL;
		}
		shown[i] = true;
	}
	return EXIT_OK;
}

int cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_device_info *v = NULL;
	bool *shown = NULL;
	uint32_t nr = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_open(ctl);
	if (r)
		return r;
	r = ctl_list_devices(ctl, &v, &nr);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot list devices");
	ctl_note_session_view(ctl, "device bindings");
	shown = calloc(nr ? nr : 1, sizeof(*shown));
	if (!shown)
		r = ctl_syserr(ctl, ENOMEM, "devices");
	else
		r = select_devices(ctl, argc, argv, v, nr, shown);
	if (r == EXIT_OK && ctl->json)
		print_json(v, nr, shown);
	else if (r == EXIT_OK && print_table(v, nr, shown) < 0)
		r = ctl_syserr(ctl, ENOMEM, "devices");
	free(shown);
	free(v);
	return r;
}
