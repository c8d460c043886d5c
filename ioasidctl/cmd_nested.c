/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl nested: nested (stage-1) tables over a nest-parent IOAS:
 * list, create, attach, invalidate, destroy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char group_usage[] =
	"Usage: ioasidctl nested [list|create|attach|invalidate|destroy] ...\n"
	"\n"
	"Nested (stage-1) tables: a guest's own I/O page table over an\n"
	"address space created with --nest-parent (without a subcommand:\n"
	"list).  A table lives as long as the session that made it: use a\n"
	"batch or a named session (--session) to keep one.\n"
	"\n"
	"Subcommands:\n";

static const char *type_name(uint32_t type)
{
	switch (type) {
	case IOASID_NESTED_VTD_S1:
		return "vtd-s1";
	case IOASID_NESTED_SELFTEST:
		return "selftest";
	default:
		return "unknown";
	}
}

static void json_nested(struct json *j, const struct ioasid_nested_info *n)
{
	json_obj_begin(j, NULL);
	json_u64(j, "nested", n->nested_id);
	json_u64(j, "ioas", n->ioas_id);
	json_u64(j, "domain", n->domain_id);
	json_str(j, "type", type_name(n->type));
	json_str(j, "iommu", n->iommu);
	json_u64(j, "pgtbl_addr", n->pgtbl_addr);
	json_u64(j, "addr_width", n->addr_width);
	json_u64(j, "nr_devices", n->nr_devices);
	json_u64(j, "nr_invalidations", n->nr_invalidations);
	json_obj_end(j);
}

void json_nested_array(struct json *j, const struct ioasid_nested_info *v,
		       uint32_t nr)
{
	json_arr_begin(j, "nested");
	for (uint32_t i = 0; i < nr; i++)
		json_nested(j, &v[i]);
	json_arr_end(j);
}

int nested_table(const struct ioasid_nested_info *v, uint32_t nr,
		 const char *indent)
{
	static const char *const hdr[] = {
		">NESTED", "TYPE", "IOMMU", ">DOMAIN", "ROOT", ">WIDTH",
		">DEVICES", ">INVALIDATIONS",
	};
	struct table t;
	int r;

	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < nr; i++) {
		table_cell(&t, "%u", v[i].nested_id);
		table_cell(&t, "%s", type_name(v[i].type));
		table_cell(&t, "%s", v[i].iommu);
		table_cell(&t, "%u", v[i].domain_id);
		table_cell(&t, "0x%llx", (unsigned long long)v[i].pgtbl_addr);
		table_cell(&t, "%u", v[i].addr_width);
		table_cell(&t, "%u", v[i].nr_devices);
		table_cell(&t, "%llu",
			   (unsigned long long)v[i].nr_invalidations);
	}
	r = table_print(&t, stdout, indent);
	table_free(&t);
	return r;
}

/* ---- list ---------------------------------------------------------------- */

static const char list_usage[] =
	"Usage: ioasidctl nested list [IOAS] [--json]\n"
	"\n"
	"List the nested tables over an address space (or over each of\n"
	"this session's): type, IOMMU, the stage-2 domain under it, the\n"
	"stage-1 root (guest-physical), devices and the invalidation\n"
	"entries done.\n";

/* The tables over @ioas appended to *@v. */
static int gather_nested(struct ctl *ctl, uint32_t ioas,
			 struct ioasid_nested_info **v, uint32_t *nr)
{
	struct ioasid_nested_info *one = NULL, *all;
	uint32_t n = 0;
	int r;

	r = ctl_list_nested(ctl, ioas, &one, &n);
	if (r < 0)
		return r;
	all = realloc(*v, (*nr + n + 1) * sizeof(*all));
	if (!all) {
		free(one);
		return -ENOMEM;
	}
	memcpy(all + *nr, one, n * sizeof(*one));
	*v = all;
	*nr += n;
	free(one);
	return 0;
}

static int nested_list_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_nested_info *v = NULL;
	uint32_t ioas = 0, nr = 0, *ids = NULL, nr_ids = 0;
	int c, r, status = EXIT_OK;
	struct json j;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, list_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 1);
	if (r == 0 && optind < argc)
		r = ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas);
	if (r == 0)
		r = ctl_open(ctl);
	if (r)
		return r;
	if (ioas) {
		r = gather_nested(ctl, ioas, &v, &nr);
	} else {
		r = ctl_list_ioas(ctl, &ids, &nr_ids);
		for (uint32_t i = 0; r == 0 && i < nr_ids; i++)
			r = gather_nested(ctl, ids[i], &v, &nr);
		free(ids);
	}
	if (r < 0) {
		free(v);
		return ioas ? ctl_fail(ctl, r, "cannot list the nested tables "
				       "of IOAS %u", ioas) :
			      ctl_fail(ctl, r, "cannot list nested tables");
	}
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_nested_array(&j, v, nr);
		json_obj_end(&j);
		json_finish(&j);
	} else if (!nr) {
		printf("no nested tables\n");
	} else if (nested_table(v, nr, "") < 0) {
		status = ctl_syserr(ctl, ENOMEM, "nested list");
	}
	free(v);
	return status;
}

/* ---- stage-1 data (create, and viommu nested) ----------------------------- */

int nested_data_opt(struct ctl *ctl, int c, const char *arg,
		    struct nested_data *d)
{
	uint64_t v;
	int r;

	if ((c == OPT_NESTED_SELFTEST && d->type == IOASID_NESTED_VTD_S1) ||
	    (c != OPT_NESTED_SELFTEST && d->type == IOASID_NESTED_SELFTEST))
		return ctl_usage(ctl, "--selftest is the mock's table, --root "
				 "and --width a VT-d one's: not both");
	switch (c) {
	case OPT_NESTED_ROOT:
		r = ctl_parse_size(ctl, "root address", arg, &v);
		if (r)
			return r;
		d->type = IOASID_NESTED_VTD_S1;
		d->u.vtd.pgtbl_addr = v;
		return 0;
	case OPT_NESTED_WIDTH:
		r = ctl_parse_size(ctl, "width", arg, &v);
		if (r)
			return r;
		if (v != 48 && v != 57)
			return ctl_usage(ctl, "width %s is not 48 or 57", arg);
		d->u.vtd.addr_width = (uint32_t)v;
		d->have_width = true;
		return 0;
	case OPT_NESTED_SELFTEST:
		r = ctl_parse_size(ctl, "IOTLB value", arg, &v);
		if (r)
			return r;
		if (v > UINT32_MAX)
			return ctl_usage(ctl, "IOTLB value %s does not fit in "
					 "32 bits", arg);
		d->type = IOASID_NESTED_SELFTEST;
		d->u.selftest.iotlb = (uint32_t)v;
		return 0;
	}
	return ctl_usage(ctl, "option %d is not a nested table's", c);
}

int nested_data_done(struct ctl *ctl, struct nested_data *d)
{
	if (!d->type)
		return ctl_usage(ctl, "--root GPA is required (the guest-"
				 "physical address of the table's root), or "
				 "--selftest IOTLB for the kernel's selftest "
				 "mock IOMMU");
	if (d->type == IOASID_NESTED_VTD_S1 && !d->have_width)
		d->u.vtd.addr_width = 48;
	return 0;
}

size_t nested_data_size(const struct nested_data *d)
{
	return d->type == IOASID_NESTED_SELFTEST ? sizeof(d->u.selftest) :
						    sizeof(d->u.vtd);
}

void nested_data_print(FILE *f, const struct nested_data *d)
{
	if (d->type == IOASID_NESTED_SELFTEST)
		fprintf(f, " (selftest, IOTLB 0x%x)", d->u.selftest.iotlb);
	else
		fprintf(f, " (root 0x%llx, %u-bit)",
			(unsigned long long)d->u.vtd.pgtbl_addr,
			d->u.vtd.addr_width);
}

void nested_data_json(struct json *j, const struct nested_data *d)
{
	json_str(j, "type", type_name(d->type));
	if (d->type == IOASID_NESTED_SELFTEST) {
		json_u64(j, "iotlb", d->u.selftest.iotlb);
		return;
	}
	json_u64(j, "pgtbl_addr", d->u.vtd.pgtbl_addr);
	json_u64(j, "addr_width", d->u.vtd.addr_width);
}

/* ---- create -------------------------------------------------------------- */

static const char create_usage[] =
	"Usage: ioasidctl nested create IOAS DEVICE --root GPA [--width 48|57]\n"
	"                              [--json]\n"
	"       ioasidctl nested create IOAS DEVICE --selftest IOTLB [--json]\n"
	"\n"
	"Create a VT-d first-stage table over a nest-parent address space for\n"
	"the IOMMU of DEVICE (bound to this session first if needed) and\n"
	"print its id.  GPA is the guest-physical address of the table's\n"
	"root, an IOVA of the parent; --width is its input width (48: 4\n"
	"levels, the default; 57: 5 levels).  --selftest makes the kernel's\n"
	"selftest mock IOMMU's table instead (iommufd with the mock devices,\n"
	"the context iommufd:mock): IOTLB is the value its IOTLB slots start\n"
	"with.\n";

static int nested_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		NESTED_DATA_OPTS,
		{ 0 },
	};
	struct nested_data nd = { 0 };
	struct ioasid_device_info info;
	uint32_t ioas, dev_id, id = 0;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, create_usage)) != -1) {
		if (c < OPT_NESTED_ROOT || c > OPT_NESTED_SELFTEST)
			return ctl_opt_status(c);
		r = nested_data_opt(ctl, c, optarg, &nd);
		if (r)
			return r;
	}
	/* the arguments first: what is missing there is the likelier slip */
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas) ?:
	    nested_data_done(ctl, &nd);
	if (r)
		return r;
	r = ctl_open(ctl) ?: ctl_bind(ctl, argv[optind + 1], &dev_id, &info);
	if (r)
		return r;
	r = ioasid_nested_alloc(ctl->ctx, ioas, dev_id, nd.type, &nd.u,
				nested_data_size(&nd), 0, &id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot create a nested table over IOAS "
				"%u for %s", ioas, info.name);
	ctl_set_result(ctl, id);
	if (!ctl->json) {
		printf("nested table %u created over IOAS %u for %s", id, ioas,
		       info.iommu);
		nested_data_print(stdout, &nd);
		putchar('\n');
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "nested", id);
	json_u64(&j, "ioas", ioas);
	json_str(&j, "iommu", info.iommu);
	nested_data_json(&j, &nd);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

/* ---- attach ---------------------------------------------------------------- */

static const char attach_usage[] =
	"Usage: ioasidctl nested attach DEVICE NESTED [--pasid N] [--replace]\n"
	"                               [--json]\n"
	"\n"
	"Attach a device (bound to this session first if needed) to a nested\n"
	"table: its DMA addresses go through the table, then through the\n"
	"parent address space.  --replace moves an attached device there\n"
	"without a window; 'ioasidctl replace DEVICE IOAS' moves it back.\n"
	"\n"
	"  --pasid N   attach only the DMA the device tags with PASID N\n"
	"              (--replace: move that PASID there; 'ioasidctl replace\n"
	"              DEVICE IOAS --pasid N' moves it back, 'ioasidctl\n"
	"              detach DEVICE --pasid N' takes it off)\n";

static int nested_attach_cmd(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_REPLACE = 0x300, OPT_PASID };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "replace", no_argument, NULL, OPT_REPLACE },
		{ "pasid", required_argument, NULL, OPT_PASID },
		{ 0 },
	};
	struct ioasid_device_info info;
	uint32_t nested, dev_id, pasid = 0;
	bool replace = false;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, attach_usage)) != -1) {
		if (c == OPT_PASID) {
			if (ctl_parse_id(ctl, "PASID", optarg, &pasid))
				return EXIT_USAGE;
			continue;
		}
		if (c != OPT_REPLACE)
			return ctl_opt_status(c);
		replace = true;
	}
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "nested table id", argv[optind + 1], &nested) ?:
	    ctl_open(ctl) ?: ctl_bind(ctl, argv[optind], &dev_id, &info);
	if (r)
		return r;
	if (pasid)
		r = replace ? ioasid_device_pasid_replace_nested(ctl->ctx, dev_id,
								 pasid, nested,
								 0) :
			      ioasid_device_pasid_attach_nested(ctl->ctx, dev_id,
								pasid, nested,
								0);
	else
		r = replace ? ioasid_device_replace_nested(ctl->ctx, dev_id,
							   nested, 0) :
			      ioasid_device_attach_nested(ctl->ctx, dev_id,
							  nested, 0);
	if (r < 0 && pasid)
		return ctl_fail(ctl, r, "%s %s PASID %u to nested table %u",
				replace ? "replace" : "attach", info.name,
				pasid, nested);
	if (r < 0)
		return ctl_fail(ctl, r, "%s %s to nested table %u",
				replace ? "replace" : "attach", info.name,
				nested);
	r = ioasid_device_get_info(ctl->ctx, info.name, &info);
	if (r < 0)
		return ctl_fail(ctl, r, "device %s", info.name);
	ctl_set_result(ctl, dev_id);
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_device(&j, &info);
		json_finish(&j);
		return EXIT_OK;
	}
	if (pasid) {
		printf("%s (dev %u) PASID %u %s nested table %u\n", info.name,
		       info.dev_id, pasid, replace ? "moved to" : "attached to",
		       nested);
		return EXIT_OK;
	}
	printf("%s (dev %u) %s nested table %u over IOAS %u, domain %u on "
	       "%s\n", info.name, info.dev_id,
	       replace ? "moved to" : "attached to", info.nested_id,
	       info.ioas_id, info.domain_id, info.iommu);
	return EXIT_OK;
}

/* ---- invalidate ------------------------------------------------------------ */

static const char inval_usage[] =
	"Usage: ioasidctl nested invalidate NESTED (--all | ADDR NPAGES)\n"
	"                                  [--leaf] [--json]\n"
	"\n"
	"Drop the table's cached translations of NPAGES 4 KiB pages from\n"
	"ADDR (an IOVA of the table), or all of them: after the guest\n"
	"changed its table, DMA uses the old entries until invalidated.\n"
	"--leaf: only leaf entries changed (a hint).\n";

static int nested_invalidate_cmd(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_ALL = 0x300, OPT_LEAF };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "all", no_argument, NULL, OPT_ALL },
		{ "leaf", no_argument, NULL, OPT_LEAF },
		{ 0 },
	};
	struct ioasid_nested_inval e = { 0 };
	uint64_t addr = 0, npages = 0;
	uint32_t nested, nr = 1;
	int32_t error = 0;
	bool all = false;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, inval_usage)) != -1) {
		if (c == OPT_ALL)
			all = true;
		else if (c == OPT_LEAF)
			e.flags |= IOASID_NESTED_INVAL_LEAF;
		else
			return ctl_opt_status(c);
	}
	r = all ? ctl_nargs(ctl, argc, 1, 1) : ctl_nargs(ctl, argc, 3, 3);
	if (r == 0)
		r = ctl_parse_id(ctl, "nested table id", argv[optind], &nested);
	if (r == 0 && !all)
		r = ctl_parse_size(ctl, "address", argv[optind + 1], &addr) ?:
		    ctl_parse_size(ctl, "page count", argv[optind + 2],
				   &npages);
	e.addr = addr;
	e.npages = npages;
	if (r == 0)
		r = ctl_open(ctl);
	if (r)
		return r;
	if (all)
		e.flags |= IOASID_NESTED_INVAL_ALL;
	r = ioasid_nested_invalidate(ctl->ctx, nested, &e, &nr, &error);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot invalidate nested table %u",
				nested);
	if (!ctl->json) {
		if (all)
			printf("nested table %u: everything invalidated\n",
			       nested);
		else
			printf("nested table %u: 0x%llx+%llu pages "
			       "invalidated\n", nested,
			       (unsigned long long)e.addr,
			       (unsigned long long)e.npages);
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "nested", nested);
	json_bool(&j, "all", all);
	json_u64(&j, "addr", e.addr);
	json_u64(&j, "npages", e.npages);
	json_u64(&j, "done", nr);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

/* ---- destroy --------------------------------------------------------------- */

static const char destroy_usage[] =
	"Usage: ioasidctl nested destroy NESTED [--json]\n"
	"\n"
	"Free a nested table.  Its devices must be detached (or moved)\n"
	"first.\n";

static int nested_destroy_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t nested;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, destroy_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "nested table id", argv[optind], &nested) ?:
	    ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_nested_destroy(ctl->ctx, nested);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot destroy nested table %u",
				nested);
	if (!ctl->json) {
		printf("nested table %u destroyed\n", nested);
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "nested", nested);
	json_bool(&j, "destroyed", true);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

static const struct cmd nested_cmds[] = {
	{ "list", nested_list_cmd, "list the nested tables over an IOAS" },
	{ "create", nested_create, "create a VT-d first-stage table" },
	{ "attach", nested_attach_cmd, "attach a device to a nested table" },
	{ "invalidate", nested_invalidate_cmd,
	  "drop a nested table's cached translations" },
	{ "destroy", nested_destroy_cmd, "free a nested table" },
};

int cmd_nested(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch_group(ctl, nested_cmds, ARRAY_SIZE(nested_cmds),
				  "ioasidctl nested", group_usage, "list", argc,
				  argv);
}
