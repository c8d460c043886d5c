/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl sim: print the machine the backend offers (its IOMMU units
 * and devices, read through the library's inventory calls) in the syntax
 * of ioasid-topology(5), so that it can be fed back with --uri sim:FILE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char group_usage[] =
	"Usage: ioasidctl sim [show|unplug|plug] ...\n"
	"\n"
	"The machine the backend offers (without a subcommand: show), and\n"
	"simulated hotplug.\n"
	"\n"
	"Subcommands:\n";

static const char usage[] =
	"Usage: ioasidctl sim show [--json]\n"
	"\n"
	"Print the IOMMU units and devices of the backend as an\n"
	"ioasid-topology(5) file: with the sim backend, the simulated\n"
	"machine; with a real one, a simulated copy of it.  Reserved IOVA\n"
	"ranges are not reported by libioasid and are left out.\n";

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

static void print_iommu(const struct ioasid_iommu_info *u)
{
	char sizes[64];

	if (!(u->flags & IOASID_IOMMU_CAPS_KNOWN))
		printf("# %s: capabilities unknown\n", u->name);
	page_sizes_str(u->page_sizes ? u->page_sizes : 1ULL << 12, sizes,
		       sizeof(sizes));
	printf("iommu %s snoop-control=%s page-sizes=%s address-width=%u "
	       "dirty-tracking=%s nesting=%s pasid=%s\n", u->name,
	       yes_no(u->flags & IOASID_IOMMU_SNOOP_CONTROL), sizes,
	       u->addr_width ? u->addr_width : 48,
	       yes_no(u->flags & IOASID_IOMMU_DIRTY_TRACKING),
	       yes_no(u->flags & IOASID_IOMMU_NESTING),
	       yes_no(u->flags & IOASID_IOMMU_PASID));
}

static void print_device(const struct ioasid_device_info *d)
{
	const char *no_snoop = "no";

	if (!d->iommu[0]) {
		printf("# %s: behind no IOMMU the backend knows\n", d->name);
		return;
	}
	if (d->flags & IOASID_DEVICE_NO_SNOOP_UNKNOWN)
		no_snoop = "unknown";
	else if (d->flags & IOASID_DEVICE_NO_SNOOP)
		no_snoop = "yes";
	printf("device %s vendor=0x%04x device=0x%04x class=0x%06x iommu=%s",
	       d->name, d->vendor, d->device, d->class_code, d->iommu);
	if (d->group != UINT32_MAX)
		printf(" group=%u", d->group);
	printf(" no-snoop=%s translates=%s ats=%s\n", no_snoop,
	       yes_no(d->flags & IOASID_DEVICE_TRANSLATES),
	       yes_no(d->flags & IOASID_DEVICE_ATS));
}

static void print_topology(const struct ioasid_status *st,
			   const struct ioasid_iommu_info *u, uint32_t nu,
			   const struct ioasid_device_info *d, uint32_t nd)
{
	printf("# ioasid-topology(5) of backend %s (%s), read through "
	       "libioasid\n", st->backend, st->topology[0] ? st->topology :
	       "no topology file");
	printf("# %u IOMMU unit(s), %u device(s); reserved= ranges are not "
	       "reported\n\n", nu, nd);
	for (uint32_t i = 0; i < nu; i++)
		print_iommu(&u[i]);
	putchar('\n');
	for (uint32_t i = 0; i < nd; i++)
		print_device(&d[i]);
}

static void print_json(const struct ioasid_status *st,
		       const struct ioasid_iommu_info *u, uint32_t nu,
		       const struct ioasid_device_info *d, uint32_t nd)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "backend", st->backend);
	json_str(&j, "topology", st->topology);
	json_arr_begin(&j, "iommus");
	for (uint32_t i = 0; i < nu; i++)
		json_iommu(&j, &u[i]);
	json_arr_end(&j);
	json_arr_begin(&j, "devices");
	for (uint32_t i = 0; i < nd; i++)
		json_device(&j, &d[i]);
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

static int sim_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_iommu_info *u = NULL;
	struct ioasid_device_info *d = NULL;
	struct ioasid_status st;
	uint32_t nu = 0, nd = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_get_status(ctl->ctx, &st);
	if (r == 0)
		r = ctl_list_iommus(ctl, &u, &nu);
	if (r == 0)
		r = ctl_list_devices(ctl, &d, &nd);
	if (r < 0)
		r = ctl_fail(ctl, r, "cannot read the inventory");
	else if (ctl->json)
		print_json(&st, u, nu, d, nd);
	else
		print_topology(&st, u, nu, d, nd);
	free(u);
	free(d);
	return r;
}

/* ---- hotplug ------------------------------------------------------------- */

static const char unplug_usage[] =
	"Usage: ioasidctl sim unplug DEVICE [--json]\n"
	"\n"
	"Make a simulated device disappear, as a hot-unplug would: if a\n"
	"session has it bound, it is detached and unbound, and every client\n"
	"subscribed to device events (ioasidctl monitor) hears of it.\n";

static const char plug_usage[] =
	"Usage: ioasidctl sim plug DEVICE [--json]\n"
	"\n"
	"Plug an unplugged simulated device back in.\n";

static int hotplug(struct ctl *ctl, int argc, char **argv, const char *help,
		   int present)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	char name[IOASID_NAME_MAX];
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, help)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?: ctl_open(ctl);
	if (r)
		return r;
	if (strlen(argv[optind]) >= sizeof(name))
		return ctl_usage(ctl, "'%s' is not a device name", argv[optind]);
	ctl_device_name(argv[optind], name, sizeof(name));
	/* an observer is read-only: hotplug from the session's own view */
	if (ctl->observer && ioasid_set_observer(ctl->ctx, 0) == 0)
		ctl->observer = false;
	r = ioasid_sim_hotplug(ctl->ctx, name, present);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot %s %s", argv[0], name);
	if (!ctl->json) {
		printf("%s %s\n", name, present ? "plugged in" : "unplugged");
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "device", name);
	json_bool(&j, "present", present);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

static int sim_unplug(struct ctl *ctl, int argc, char **argv)
{
	return hotplug(ctl, argc, argv, unplug_usage, 0);
}

static int sim_plug(struct ctl *ctl, int argc, char **argv)
{
	return hotplug(ctl, argc, argv, plug_usage, 1);
}

static const struct cmd sim_cmds[] = {
	{ "show", sim_show, "print the topology (ioasid-topology(5))" },
	{ "unplug", sim_unplug, "hot-unplug a simulated device" },
	{ "plug", sim_plug, "plug a simulated device back in" },
};

int cmd_sim(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch_group(ctl, sim_cmds, ARRAY_SIZE(sim_cmds), "ioasidctl sim",
				  group_usage, "show", argc, argv);
}
