/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl viommu, vdevice: vIOMMUs over a nest-parent IOAS (list,
 * create, nested tables on them, device-cache invalidation, destroy) and
 * the vDEVICEs that give devices virtual IDs on them (list, create,
 * destroy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const struct {
	const char *name;
	uint32_t type;
} viommu_types[] = {
	{ "sim", IOASID_VIOMMU_SIM },
	{ "selftest", IOASID_VIOMMU_SELFTEST },
};

static const char *type_name(uint32_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(viommu_types); i++)
		if (viommu_types[i].type == type)
			return viommu_types[i].name;
	return "unknown";
}

/* ---- tables and JSON (also for ioas show) -------------------------------- */

static void json_viommu(struct json *j, const struct ioasid_viommu_info *v)
{
	json_obj_begin(j, NULL);
	json_u64(j, "viommu", v->viommu_id);
	json_u64(j, "ioas", v->ioas_id);
	json_u64(j, "domain", v->domain_id);
	json_str(j, "type", type_name(v->type));
	json_str(j, "iommu", v->iommu);
	json_u64(j, "nr_vdevices", v->nr_vdevices);
	json_u64(j, "nr_nested", v->nr_nested);
	json_u64(j, "nr_invalidations", v->nr_invalidations);
	json_obj_end(j);
}

void json_viommu_array(struct json *j, const struct ioasid_viommu_info *v,
		       uint32_t nr)
{
	json_arr_begin(j, "viommus");
	for (uint32_t i = 0; i < nr; i++)
		json_viommu(j, &v[i]);
	json_arr_end(j);
}

int viommu_table(const struct ioasid_viommu_info *v, uint32_t nr,
		 const char *indent)
{
	static const char *const hdr[] = {
		">VIOMMU", "TYPE", "IOMMU", ">IOAS", ">DOMAIN", ">VDEVICES",
		">NESTED", ">INVALIDATIONS",
	};
	struct table t;
	int r;

	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < nr; i++) {
		table_cell(&t, "%u", v[i].viommu_id);
		table_cell(&t, "%s", type_name(v[i].type));
		table_cell(&t, "%s", v[i].iommu);
		table_cell(&t, "%u", v[i].ioas_id);
		table_cell(&t, "%u", v[i].domain_id);
		table_cell(&t, "%u", v[i].nr_vdevices);
		table_cell(&t, "%u", v[i].nr_nested);
		table_cell(&t, "%llu",
			   (unsigned long long)v[i].nr_invalidations);
	}
	r = table_print(&t, stdout, indent);
	table_free(&t);
	return r;
}

void json_vdevice_array(struct json *j, const struct ioasid_vdevice_info *v,
			uint32_t nr, const struct ioasid_device_info *devs,
			uint32_t nr_devs)
{
	json_arr_begin(j, "vdevices");
	for (uint32_t i = 0; i < nr; i++) {
		const char *name = ctl_name_of_device(devs, nr_devs,
						      v[i].dev_id, "-");

		json_obj_begin(j, NULL);
		json_u64(j, "vdevice", v[i].vdevice_id);
		json_u64(j, "viommu", v[i].viommu_id);
		if (strcmp(name, "-"))
			json_str(j, "device", name);
		else
			json_null(j, "device");
		json_u64(j, "dev_id", v[i].dev_id);
		json_u64(j, "virt_id", v[i].virt_id);
		json_obj_end(j);
	}
	json_arr_end(j);
}

int vdevice_table(const struct ioasid_vdevice_info *v, uint32_t nr,
		  const struct ioasid_device_info *devs, uint32_t nr_devs,
		  const char *indent)
{
	static const char *const hdr[] = {
		">VDEVICE", ">VIOMMU", "DEVICE", ">DEV", ">VIRT_ID",
	};
	struct table t;
	int r;

	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < nr; i++) {
		table_cell(&t, "%u", v[i].vdevice_id);
		table_cell(&t, "%u", v[i].viommu_id);
		table_cell(&t, "%s", ctl_name_of_device(devs, nr_devs,
							    v[i].dev_id, "-"));
		table_cell(&t, "%u", v[i].dev_id);
		table_cell(&t, "%s", hex_str(v[i].virt_id, false).s);
	}
	r = table_print(&t, stdout, indent);
	table_free(&t);
	return r;
}

/* ---- gathering ----------------------------------------------------------- */

/* Appends the @nr_one entries of @one (freed) to *@v, *@nr. */
static int append(void **v, uint32_t *nr, void *one, uint32_t nr_one,
		  size_t elem)
{
	char *all = realloc(*v, (*nr + nr_one + 1) * elem);

	if (!all) {
		free(one);
		return -ENOMEM;
	}
	memcpy(all + *nr * elem, one, nr_one * elem);
	*v = all;
	*nr += nr_one;
	free(one);
	return 0;
}

/* The vIOMMUs over @ioas, or over every IOAS this context sees (0). */
static int gather_viommus(struct ctl *ctl, uint32_t ioas,
			  struct ioasid_viommu_info **v, uint32_t *nr)
{
	uint32_t *ids = NULL, nr_ids = 0;
	int r;

	*v = NULL;
	*nr = 0;
	if (ioas)
		return ctl_list_viommus(ctl, ioas, v, nr);
	r = ctl_list_ioas(ctl, &ids, &nr_ids);
	for (uint32_t i = 0; r == 0 && i < nr_ids; i++) {
		struct ioasid_viommu_info *one = NULL;
		uint32_t n = 0;

		r = ctl_list_viommus(ctl, ids[i], &one, &n);
		if (r == 0)
			r = append((void **)v, nr, one, n, sizeof(*one));
	}
	free(ids);
	if (r < 0) {
		free(*v);
		*v = NULL;
	}
	return r;
}

/* The vIOMMU @id as its list shows it: 0, -ENOENT or the list's error. */
static int find_viommu(struct ctl *ctl, uint32_t id,
		       struct ioasid_viommu_info *info)
{
	struct ioasid_viommu_info *v;
	uint32_t nr;
	int r;

	r = gather_viommus(ctl, 0, &v, &nr);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (uint32_t i = 0; i < nr; i++) {
		if (v[i].viommu_id == id) {
			*info = v[i];
			r = 0;
			break;
		}
	}
	free(v);
	return r;
}

/* ---- viommu list --------------------------------------------------------- */

static const char viommu_group_usage[] =
	"Usage: ioasidctl viommu [list|create|nested|invalidate|destroy] ...\n"
	"\n"
	"vIOMMUs: a VM's slice of an IOMMU over an address space created\n"
	"with --nest-parent, holding the virtual IDs of its devices\n"
	"(ioasidctl vdevice) and nested tables (without a subcommand: list).\n"
	"A vIOMMU lives as long as the session that made it: use a batch or\n"
	"a named session (--session) to keep one.\n"
	"\n"
	"Subcommands:\n";

static const char list_usage[] =
	"Usage: ioasidctl viommu list [IOAS] [--json]\n"
	"\n"
	"List the vIOMMUs over an address space (or over each of this\n"
	"session's): type, IOMMU, the parent's stage-2 domain it holds, its\n"
	"vDEVICEs and nested tables, and the invalidation entries done.\n";

static int viommu_list_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_viommu_info *v = NULL;
	uint32_t ioas = 0, nr = 0;
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
	r = gather_viommus(ctl, ioas, &v, &nr);
	if (r < 0)
		return ioas ? ctl_fail(ctl, r, "cannot list the vIOMMUs of IOAS "
				       "%u", ioas) :
			      ctl_fail(ctl, r, "cannot list vIOMMUs");
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_viommu_array(&j, v, nr);
		json_obj_end(&j);
		json_finish(&j);
	} else if (!nr) {
		printf("no vIOMMUs\n");
	} else if (viommu_table(v, nr, "") < 0) {
		status = ctl_syserr(ctl, ENOMEM, "viommu list");
	}
	free(v);
	return status;
}

/* ---- viommu create ------------------------------------------------------- */

static const char create_usage[] =
	"Usage: ioasidctl viommu create IOAS DEVICE [--type sim|selftest]\n"
	"                               [--json]\n"
	"\n"
	"Create a vIOMMU over a nest-parent address space for the IOMMU of\n"
	"DEVICE (bound to this session first if needed) and print its id.\n"
	"--type: sim, the simulated IOMMU's (the default), or selftest, the\n"
	"kernel's iommufd selftest mock IOMMU's.\n";

static int viommu_create_cmd(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_TYPE = 0x300 };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "type", required_argument, NULL, OPT_TYPE },
		{ 0 },
	};
	struct ioasid_viommu_info vi = { 0 };
	struct ioasid_device_info info;
	uint32_t type = IOASID_VIOMMU_SIM, ioas, dev_id, id = 0;
	bool have_info;
	struct json j;
	size_t i;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, create_usage)) != -1) {
		if (c != OPT_TYPE)
			return ctl_opt_status(c);
		for (i = 0; i < ARRAY_SIZE(viommu_types); i++)
			if (!strcmp(optarg, viommu_types[i].name))
				break;
		if (i == ARRAY_SIZE(viommu_types))
			return ctl_usage(ctl, "'%s' is not a vIOMMU type (sim "
					 "or selftest)", optarg);
		type = viommu_types[i].type;
	}
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas) ?:
	    ctl_open(ctl) ?: ctl_bind(ctl, argv[optind + 1], &dev_id, &info);
	if (r)
		return r;
	r = ioasid_viommu_alloc(ctl->ctx, ioas, dev_id, type, 0, &id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot create a %s vIOMMU over IOAS %u "
				"for %s", type_name(type), ioas, info.name);
	ctl_set_result(ctl, id);
	/* the domain it holds; it exists, so the list names it */
	have_info = find_viommu(ctl, id, &vi) == 0;
	if (!ctl->json) {
		printf("vIOMMU %u (%s) created over IOAS %u for %s", id,
		       type_name(type), ioas, info.iommu);
		if (have_info)
			printf(", domain %u", vi.domain_id);
		printf("\n");
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "viommu", id);
	json_u64(&j, "ioas", ioas);
	json_str(&j, "type", type_name(type));
	json_str(&j, "iommu", info.iommu);
	json_id(&j, "domain", have_info ? vi.domain_id : 0);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

/* ---- viommu nested ------------------------------------------------------- */

static const char nested_usage[] =
	"Usage: ioasidctl viommu nested VIOMMU DEVICE --root GPA\n"
	"                               [--width 48|57] [--json]\n"
	"       ioasidctl viommu nested VIOMMU DEVICE --selftest IOTLB [--json]\n"
	"\n"
	"Create a VT-d first-stage table on a vIOMMU (over its parent\n"
	"address space) for DEVICE (bound to this session first if needed)\n"
	"and print its id, as 'ioasidctl nested create' does over an IOAS.\n"
	"GPA is the guest-physical address of the table's root, an IOVA of\n"
	"the parent; --width is its input width (48: 4 levels, the default;\n"
	"57: 5 levels).  --selftest makes the kernel's selftest mock IOMMU's\n"
	"table instead (a selftest vIOMMU): IOTLB is the value its IOTLB\n"
	"slots start with.  A device attaches to it ('ioasidctl nested\n"
	"attach') only with a vDEVICE on the vIOMMU ('ioasidctl vdevice\n"
	"create').\n";

static int viommu_nested_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		NESTED_DATA_OPTS,
		{ 0 },
	};
	struct ioasid_viommu_info vi = { 0 };
	struct nested_data nd = { 0 };
	struct ioasid_device_info info;
	uint32_t viommu, dev_id, id = 0;
	bool have_info;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, nested_usage)) != -1) {
		if (c < OPT_NESTED_ROOT || c > OPT_NESTED_SELFTEST)
			return ctl_opt_status(c);
		r = nested_data_opt(ctl, c, optarg, &nd);
		if (r)
			return r;
	}
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "vIOMMU id", argv[optind], &viommu) ?:
	    nested_data_done(ctl, &nd);
	if (r)
		return r;
	r = ctl_open(ctl) ?: ctl_bind(ctl, argv[optind + 1], &dev_id, &info);
	if (r)
		return r;
	r = ioasid_viommu_nested_alloc(ctl->ctx, viommu, dev_id, nd.type,
				       &nd.u, nested_data_size(&nd), 0, &id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot create a nested table on vIOMMU "
				"%u for %s", viommu, info.name);
	ctl_set_result(ctl, id);
	have_info = find_viommu(ctl, viommu, &vi) == 0;
	if (!ctl->json) {
		printf("nested table %u created on vIOMMU %u", id, viommu);
		if (have_info)
			printf(" over IOAS %u", vi.ioas_id);
		printf(" for %s", info.iommu);
		nested_data_print(stdout, &nd);
		putchar('\n');
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "nested", id);
	json_u64(&j, "viommu", viommu);
	json_id(&j, "ioas", have_info ? vi.ioas_id : 0);
	json_str(&j, "iommu", info.iommu);
	nested_data_json(&j, &nd);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

/* ---- viommu invalidate --------------------------------------------------- */

static const char inval_usage[] =
	"Usage: ioasidctl viommu invalidate VIOMMU --device-cache ENTRY...\n"
	"                                   [--json]\n"
	"\n"
	"Drop device caches through a vIOMMU, the device named by its\n"
	"virtual ID on it, one request entry per --device-cache (at most\n"
	"4096), done in order; the first refused stops the request.  Prints\n"
	"each entry's result.  ENTRY is one of\n"
	"\n"
	"  VIRT_ID               all of the device's cache\n"
	"  VIRT_ID:ADDR:NPAGES   its entries for NPAGES 4 KiB pages from ADDR\n"
	"                        (simulated vIOMMUs)\n"
	"  VIRT_ID:cache=N       the selftest mock device's cache entry N (0-3)\n";

#define MAX_ENTRIES 4096

/* How an entry was written, for its row of the table. */
enum entry_form { FORM_ALL, FORM_RANGE, FORM_CACHE };

/* "VIRT_ID", "VIRT_ID:ADDR:NPAGES" or "VIRT_ID:cache=N" into @e. */
static int parse_entry(struct ctl *ctl, const char *arg,
		       struct ioasid_viommu_inval *e, unsigned char *form)
{
	char buf[128], *rest, *np;
	uint64_t v, addr, npages;

	if (strlen(arg) >= sizeof(buf))
		return ctl_usage(ctl, "'%.40s...' is not a --device-cache entry",
				 arg);
	memcpy(buf, arg, strlen(arg) + 1);
	memset(e, 0, sizeof(*e));
	rest = strchr(buf, ':');
	if (rest)
		*rest++ = '\0';
	if (str_to_u64(buf, &v) < 0)
		return ctl_usage(ctl, "'%s' in --device-cache %s is not a valid "
				 "virtual ID (a number, or 0x hex)", buf, arg);
	e->virt_id = v;
	if (!rest) {
		e->flags = IOASID_VIOMMU_INVAL_ALL;
		*form = FORM_ALL;
		return EXIT_OK;
	}
	if (!strncmp(rest, "cache=", 6)) {
		if (str_to_u64(rest + 6, &v) < 0 || v > UINT32_MAX)
			return ctl_usage(ctl, "'%s' in --device-cache %s is not "
					 "a valid cache entry number", rest + 6,
					 arg);
		e->cache_id = (uint32_t)v;
		*form = FORM_CACHE;
		return EXIT_OK;
	}
	np = strchr(rest, ':');
	if (!np)
		return ctl_usage(ctl, "--device-cache %s: after the virtual ID "
				 "comes ADDR:NPAGES or cache=N", arg);
	*np++ = '\0';
	if (str_to_size(rest, &addr) < 0 || str_to_u64(np, &npages) < 0)
		return ctl_usage(ctl, "--device-cache %s: '%s:%s' is not a valid "
				 "ADDR:NPAGES", arg, rest, np);
	e->addr = addr;
	e->npages = npages;
	*form = FORM_RANGE;
	return EXIT_OK;
}

/* What an entry asks for, for the table. */
static void entry_what(const struct ioasid_viommu_inval *e,
		       unsigned char form, char *buf, size_t len)
{
	if (form == FORM_ALL)
		snprintf(buf, len, "all");
	else if (form == FORM_RANGE)
		snprintf(buf, len, "%s+%llu pages", hex_str(e->addr, false).s,
			 (unsigned long long)e->npages);
	else
		snprintf(buf, len, "cache %u", e->cache_id);
}

/* Each entry and its result (@errors: the library's, one per entry). */
static int print_entries(uint32_t viommu, const struct ioasid_viommu_inval *e,
			 const unsigned char *form, uint32_t nr, uint32_t done,
			 const int32_t *errors, bool json)
{
	static const char *const hdr[] = {
		">ENTRY", ">VIRT_ID", "WHAT", "RESULT",
	};
	char what[64];
	struct table t;
	struct json j;
	int r;

	if (json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_u64(&j, "viommu", viommu);
		json_u64(&j, "done", done);
		json_arr_begin(&j, "entries");
		for (uint32_t i = 0; i < nr; i++) {
			json_obj_begin(&j, NULL);
			json_u64(&j, "virt_id", e[i].virt_id);
			json_bool(&j, "all",
				  e[i].flags & IOASID_VIOMMU_INVAL_ALL);
			json_u64(&j, "addr", e[i].addr);
			json_u64(&j, "npages", e[i].npages);
			json_u64(&j, "cache_id", e[i].cache_id);
			json_str(&j, "result", errors[i] == -ECANCELED ?
				 "not-tried" : errors[i] ? "failed" : "done");
			if (errors[i])
				json_str(&j, "error",
					 errno_name(errors[i]).s);
			else
				json_null(&j, "error");
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_finish(&j);
		return 0;
	}
	printf("vIOMMU %u: %u of %u entries done\n", viommu, done, nr);
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < nr; i++) {
		entry_what(&e[i], form[i], what, sizeof(what));
		table_cell(&t, "%u", i);
		table_cell(&t, "%s", hex_str(e[i].virt_id, false).s);
		table_cell(&t, "%s", what);
		if (!errors[i])
			table_cell(&t, "done");
		else if (errors[i] == -ECANCELED)
			table_cell(&t, "not tried");
		else
			table_cell(&t, "failed (%s)", errno_name(errors[i]).s);
	}
	r = table_print(&t, stdout, "  ");
	table_free(&t);
	return r;
}

static int viommu_invalidate_cmd(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_DEVICE_CACHE = 0x300 };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "device-cache", required_argument, NULL, OPT_DEVICE_CACHE },
		{ 0 },
	};
	struct ioasid_viommu_inval *e = NULL;
	unsigned char *form = NULL;
	uint32_t viommu, nr = 0, done;
	int32_t *errors = NULL;
	int c, r = EXIT_OK;

	while (r == EXIT_OK &&
	       (c = ctl_opt(ctl, argc, argv, "h", opts, inval_usage)) != -1) {
		if (c != OPT_DEVICE_CACHE) {
			/* --help (0) or a usage error */
			free(form);
			free(e);
			return ctl_opt_status(c);
		}
		if (nr == MAX_ENTRIES) {
			r = ctl_usage(ctl, "more than %u --device-cache entries",
				      MAX_ENTRIES);
			break;
		}
		if (!(nr & 15)) {
			void *more_e = realloc(e, (nr + 16) * sizeof(*e));
			void *more_form;

			if (more_e)
				e = more_e;
			more_form = more_e ? realloc(form, nr + 16) : NULL;
			if (!more_form) {
				r = ctl_syserr(ctl, ENOMEM, "entries");
				break;
			}
			form = more_form;
		}
		r = parse_entry(ctl, optarg, &e[nr], &form[nr]);
		nr++;
	}
	if (r == EXIT_OK)
		r = ctl_nargs(ctl, argc, 1, 1) ?:
		    ctl_parse_id(ctl, "vIOMMU id", argv[optind], &viommu);
	if (r == EXIT_OK && !nr)
		r = ctl_usage(ctl, "--device-cache ENTRY is required (the "
			      "virtual ID of the device whose cache to drop)");
	if (r == EXIT_OK)
		r = ctl_open(ctl);
	if (r == EXIT_OK && !(errors = malloc(nr * sizeof(*errors))))
		r = ctl_syserr(ctl, ENOMEM, "entries");
	if (r != EXIT_OK)
		goto out;
	/* left as 1 where the library says nothing about an entry */
	for (uint32_t i = 0; i < nr; i++)
		errors[i] = 1;
	done = nr;
	c = ioasid_viommu_invalidate(ctl->ctx, viommu, e, &done, errors);
	/* the entries' results, unless the request as a whole was refused */
	if ((c == 0 || (done < nr && errors[done] == c)) &&
	    print_entries(viommu, e, form, nr, done, errors, ctl->json) < 0)
		r = ctl_syserr(ctl, ENOMEM, "viommu invalidate");
	if (c < 0)
		r = ctl_fail(ctl, c, "cannot invalidate through vIOMMU %u",
			     viommu);
out:
	free(errors);
	free(form);
	free(e);
	return r;
}

/* ---- viommu destroy ------------------------------------------------------ */

static const char destroy_usage[] =
	"Usage: ioasidctl viommu destroy VIOMMU [--json]\n"
	"\n"
	"Free a vIOMMU.  Its vDEVICEs and nested tables must be destroyed\n"
	"first.\n";

static int viommu_destroy_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct json j;
	uint32_t id;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, destroy_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "vIOMMU id", argv[optind], &id) ?:
	    ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_viommu_destroy(ctl->ctx, id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot destroy vIOMMU %u", id);
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_u64(&j, "viommu", id);
		json_bool(&j, "destroyed", true);
		json_obj_end(&j);
		json_finish(&j);
	} else {
		printf("vIOMMU %u destroyed\n", id);
	}
	return EXIT_OK;
}

static const struct cmd viommu_cmds[] = {
	{ "list", viommu_list_cmd, "list the vIOMMUs over an IOAS" },
	{ "create", viommu_create_cmd,
	  "create a vIOMMU over a nest-parent IOAS" },
	{ "nested", viommu_nested_cmd, "create a nested table on a vIOMMU" },
	{ "invalidate", viommu_invalidate_cmd,
	  "drop device caches by virtual ID" },
	{ "destroy", viommu_destroy_cmd, "free a vIOMMU" },
};

int cmd_viommu(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch_group(ctl, viommu_cmds, ARRAY_SIZE(viommu_cmds),
				  "ioasidctl viommu", viommu_group_usage,
				  "list", argc, argv);
}

/* ---- vdevice list -------------------------------------------------------- */

static const char vdevice_group_usage[] =
	"Usage: ioasidctl vdevice [list|create|destroy] ...\n"
	"\n"
	"vDEVICEs: a device's virtual ID on a vIOMMU, the ID its guest knows\n"
	"it by (without a subcommand: list).  A device has at most one, and\n"
	"an ID names one device per vIOMMU.\n"
	"\n"
	"Subcommands:\n";

static const char vlist_usage[] =
	"Usage: ioasidctl vdevice list [VIOMMU] [--json]\n"
	"\n"
	"List the vDEVICEs of a vIOMMU (or of every vIOMMU of this\n"
	"session): the vIOMMU, the device, its virtual ID.\n";

static int vdevice_list_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_vdevice_info *v = NULL, *one;
	struct ioasid_device_info *devs = NULL;
	struct ioasid_viommu_info vi;
	uint32_t viommu = 0, nr = 0, nr_one, nr_devs = 0, *ids = NULL;
	uint32_t nr_ids = 0, kept = 0;
	int c, r, status = EXIT_OK;
	struct json j;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, vlist_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 1);
	if (r == 0 && optind < argc)
		r = ctl_parse_id(ctl, "vIOMMU id", argv[optind], &viommu);
	if (r == 0)
		r = ctl_open(ctl);
	if (r)
		return r;
	if (viommu) {
		r = find_viommu(ctl, viommu, &vi);
		if (r == -ENOENT) {
			ctl->err = ENOENT;
			ctl_err(ctl, "no vIOMMU %u", viommu);
			return EXIT_FAIL;
		}
		if (r == 0)
			r = ctl_list_vdevices(ctl, vi.ioas_id, &v, &nr);
	} else {
		r = ctl_list_ioas(ctl, &ids, &nr_ids);
		for (uint32_t i = 0; r == 0 && i < nr_ids; i++) {
			one = NULL;
			nr_one = 0;
			r = ctl_list_vdevices(ctl, ids[i], &one, &nr_one);
			if (r == 0)
				r = append((void **)&v, &nr, one, nr_one,
					   sizeof(*one));
		}
		free(ids);
	}
	if (r == 0)
		r = ctl_list_devices(ctl, &devs, &nr_devs);
	if (r < 0) {
		free(v);
		return viommu ? ctl_fail(ctl, r, "cannot list the vDEVICEs of "
					 "vIOMMU %u", viommu) :
				ctl_fail(ctl, r, "cannot list vDEVICEs");
	}
	for (uint32_t i = 0; i < nr; i++)
		if (!viommu || v[i].viommu_id == viommu)
			v[kept++] = v[i];
	nr = kept;
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_vdevice_array(&j, v, nr, devs, nr_devs);
		json_obj_end(&j);
		json_finish(&j);
	} else if (!nr) {
		printf("no vDEVICEs\n");
	} else if (vdevice_table(v, nr, devs, nr_devs, "") < 0) {
		status = ctl_syserr(ctl, ENOMEM, "vdevice list");
	}
	free(devs);
	free(v);
	return status;
}

/* ---- vdevice create ------------------------------------------------------ */

static const char vcreate_usage[] =
	"Usage: ioasidctl vdevice create VIOMMU DEVICE VIRT_ID [--json]\n"
	"\n"
	"Give DEVICE (bound to this session first if needed) the virtual ID\n"
	"VIRT_ID (a number, or 0x hex: a virtual BDF, a stream ID) on a\n"
	"vIOMMU and print the vDEVICE's id.  The device must be behind the\n"
	"vIOMMU's IOMMU.\n";

static int vdevice_create_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_device_info info;
	uint32_t viommu, dev_id, id = 0;
	uint64_t virt_id;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, vcreate_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 3, 3) ?:
	    ctl_parse_id(ctl, "vIOMMU id", argv[optind], &viommu);
	if (r)
		return r;
	if (str_to_u64(argv[optind + 2], &virt_id) < 0)
		return ctl_usage(ctl, "'%s' is not a valid virtual ID (a number, "
				 "or 0x hex)", argv[optind + 2]);
	r = ctl_open(ctl) ?: ctl_bind(ctl, argv[optind + 1], &dev_id, &info);
	if (r)
		return r;
	r = ioasid_vdevice_alloc(ctl->ctx, viommu, dev_id, virt_id, &id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot give %s virtual ID %s on vIOMMU "
				"%u", info.name, hex_str(virt_id, false).s,
				viommu);
	ctl_set_result(ctl, id);
	if (!ctl->json) {
		printf("vDEVICE %u created: %s (dev %u) is %s on vIOMMU %u\n",
		       id, info.name, dev_id, hex_str(virt_id, false).s,
		       viommu);
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "vdevice", id);
	json_u64(&j, "viommu", viommu);
	json_str(&j, "device", info.name);
	json_u64(&j, "dev_id", dev_id);
	json_u64(&j, "virt_id", virt_id);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

/* ---- vdevice destroy ----------------------------------------------------- */

static const char vdestroy_usage[] =
	"Usage: ioasidctl vdevice destroy VDEVICE [--json]\n"
	"\n"
	"Free a vDEVICE: its virtual ID is free again.  The device stays\n"
	"bound, and attached where it is; invalidations can no longer name\n"
	"it.\n";

static int vdevice_destroy_cmd(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct json j;
	uint32_t id;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, vdestroy_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "vDEVICE id", argv[optind], &id) ?:
	    ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_vdevice_destroy(ctl->ctx, id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot destroy vDEVICE %u", id);
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_u64(&j, "vdevice", id);
		json_bool(&j, "destroyed", true);
		json_obj_end(&j);
		json_finish(&j);
	} else {
		printf("vDEVICE %u destroyed\n", id);
	}
	return EXIT_OK;
}

static const struct cmd vdevice_cmds[] = {
	{ "list", vdevice_list_cmd, "list the vDEVICEs of a vIOMMU" },
	{ "create", vdevice_create_cmd, "give a device a virtual ID" },
	{ "destroy", vdevice_destroy_cmd, "free a vDEVICE" },
};

int cmd_vdevice(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch_group(ctl, vdevice_cmds, ARRAY_SIZE(vdevice_cmds),
				  "ioasidctl vdevice", vdevice_group_usage,
				  "list", argc, argv);
}
