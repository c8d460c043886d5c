/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl ioas: list, create, destroy, snoop, allow (and show, in
 * cmd_ioas_show.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char *const ioas_flag_names[] = { "identity", "restricted",
						     "page-granular",
						     "nest-parent" };

static const char group_usage[] =
	"Usage: ioasidctl ioas [list|show|create|destroy|snoop|allow] ...\n"
	"\n"
	"I/O address spaces of this session (without a subcommand: list).\n"
	"\n"
	"Subcommands:\n";

/* ---- shared -------------------------------------------------------------- */

void ioas_flags_str(uint32_t flags, char *buf, size_t len)
{
	flag_words(flags, ioas_flag_names, ARRAY_SIZE(ioas_flag_names), buf,
		   len);
}

void json_ioas_fields(struct json *j, const struct ioasid_ioas_info *info)
{
	json_u64(j, "ioas", info->ioas_id);
	json_flag_words(j, "flags", info->flags, ioas_flag_names,
			ARRAY_SIZE(ioas_flag_names));
	json_str(j, "snoop_mode", snoop_mode_name(info->snoop_mode));
	json_u64(j, "nr_mappings", info->nr_mappings);
	json_u64(j, "bytes_mapped", info->bytes_mapped);
	json_u64(j, "bytes_private", info->bytes_private);
	json_u64(j, "bytes_shared", info->bytes_shared);
	json_u64(j, "state_bytes", info->state_bytes);
	json_u64(j, "nr_devices", info->nr_devices);
	json_u64(j, "nr_domains", info->nr_domains);
	json_u64(j, "bytes_pinned", info->bytes_pinned);
	json_u64(j, "nr_conversions", info->nr_conversions);
	json_u64(j, "nr_faults", info->nr_faults);
	json_bool(j, "dirty_tracking", info->dirty_flags & IOASID_IOAS_DIRTY_ON);
	json_bool(j, "dirty_fallback",
		  info->dirty_flags & IOASID_IOAS_DIRTY_FALLBACK);
}

void json_owner_fields(struct json *j, uint32_t pid, uint32_t uid)
{
	json_u64(j, "owner_pid", pid);
	json_u64(j, "owner_uid", uid);
}

static int parse_mode(struct ctl *ctl, const char *arg, uint32_t *mode)
{
	static const uint32_t modes[] = {
		IOASID_SNOOP_AUTO, IOASID_SNOOP_ENFORCE, IOASID_SNOOP_ALLOW,
	};

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		if (!strcmp(arg, snoop_mode_name(modes[i]))) {
			*mode = modes[i];
			return EXIT_OK;
		}
	}
	return ctl_usage(ctl, "snoop mode '%s' is not auto, enforce or allow",
			 arg);
}

/* ---- list ---------------------------------------------------------------- */

static const char list_usage[] =
	"Usage: ioasidctl ioas list [--json]\n"
	"\n"
	"List the address spaces: flags, snoop mode, mappings, bytes mapped\n"
	"(and of them private), devices and domains.  Through ioasidd, those\n"
	"of every client when the daemon lets ioasidctl observe (with the\n"
	"pid and uid of the client that created each), else those of this\n"
	"session.\n";

static void add_row(struct table *t, const struct ioasid_ioas_info *info,
		    bool owner)
{
	char flags[64];

	ioas_flags_str(info->flags, flags, sizeof(flags));
	table_cell(t, "%u", info->ioas_id);
	table_cell(t, "%s", flags);
	table_cell(t, "%s", snoop_mode_name(info->snoop_mode));
	table_cell(t, "%llu", (unsigned long long)info->nr_mappings);
	table_cell(t, "%s", size_str(info->bytes_mapped).s);
	table_cell(t, "%s", size_str(info->bytes_private).s);
	table_cell(t, "%u", info->nr_devices);
	table_cell(t, "%u", info->nr_domains);
	if (!owner)
		return;
	table_cell(t, "%u", info->owner_pid);
	table_cell(t, "%u", info->owner_uid);
}

static int list_print(struct ctl *ctl, const struct ioasid_ioas_info *v,
		      uint32_t nr)
{
	static const char *const hdr[] = {
		">IOAS", "FLAGS", "SNOOP", ">MAPPINGS", ">MAPPED", ">PRIVATE",
		">DEVICES", ">DOMAINS", ">PID", ">UID",
	};
	/* whose they are matters only when they may be anyone's */
	size_t cols = ctl->observer ? ARRAY_SIZE(hdr) : ARRAY_SIZE(hdr) - 2;
	struct table t;
	struct json j;
	int r;

	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_arr_begin(&j, "ioas");
		for (uint32_t i = 0; i < nr; i++) {
			json_obj_begin(&j, NULL);
			json_ioas_fields(&j, &v[i]);
			if (ctl->observer)
				json_owner_fields(&j, v[i].owner_pid,
						  v[i].owner_uid);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_finish(&j);
		return EXIT_OK;
	}
	table_init(&t, hdr, cols);
	for (uint32_t i = 0; i < nr; i++)
		add_row(&t, &v[i], ctl->observer);
	r = table_print(&t, stdout, "");
	table_free(&t);
	return r < 0 ? ctl_syserr(ctl, ENOMEM, "ioas list") : EXIT_OK;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int ioas_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_ioas_info *infos = NULL;
	uint32_t *ids = NULL, nr = 0, n = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, list_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ctl_list_ioas(ctl, &ids, &nr);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot list address spaces");
	ctl_note_session_view(ctl, "address spaces");
	qsort(ids, nr, sizeof(*ids), cmp_u32);
	infos = calloc(nr ? nr : 1, sizeof(*infos));
	if (!infos) {
		free(ids);
		return ctl_syserr(ctl, ENOMEM, "ioas list");
	}
	/* an IOAS destroyed meanwhile (another thread) is skipped */
	for (uint32_t i = 0; i < nr; i++)
		if (ioasid_ioas_get_info(ctl->ctx, ids[i], &infos[n]) == 0)
			n++;
	r = list_print(ctl, infos, n);
	free(infos);
	free(ids);
	return r;
}

/* ---- create -------------------------------------------------------------- */

static const char create_usage[] =
	"Usage: ioasidctl ioas create [--identity] [--restricted]\n"
	"                             [--page-granular] [--nest-parent]\n"
	"                             [--snoop auto|enforce|allow] [--json]\n"
	"\n"
	"Create an address space and print its id.\n"
	"\n"
	"  --identity    IOVA equals guest-physical address: devices that\n"
	"                cannot translate may join it\n"
	"  --restricted  only pages marked shared are reachable by DMA\n"
	"                (confidential guests; implies --page-granular)\n"
	"  --page-granular  4 KiB IOPTEs only, so that every cut of a\n"
	"                mapping is atomic (no window for the pages that\n"
	"                stay); the default allows large IOPTEs\n"
	"  --nest-parent  nested (stage-1) tables may be created over it\n"
	"                ('ioasidctl nested create')\n"
	"  --snoop MODE  cache coherency policy: auto (enforce where the\n"
	"                IOMMU can; the default), enforce (refuse devices\n"
	"                whose IOMMU cannot), allow (never enforce)\n";

static int create_print(struct ctl *ctl, uint32_t id)
{
	struct ioasid_ioas_info info;
	struct json j;
	int r;

	r = ioasid_ioas_get_info(ctl->ctx, id, &info);
	if (r < 0)
		return ctl_fail(ctl, r, "IOAS %u", id);
	if (!ctl->json) {
		printf("IOAS %u created (snoop mode %s)\n", id,
		       snoop_mode_name(info.snoop_mode));
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_ioas_fields(&j, &info);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

static int ioas_create(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_IDENTITY = 0x300, OPT_RESTRICTED, OPT_SNOOP,
	       OPT_PAGE_GRANULAR, OPT_NEST_PARENT };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "identity", no_argument, NULL, OPT_IDENTITY },
		{ "restricted", no_argument, NULL, OPT_RESTRICTED },
		{ "page-granular", no_argument, NULL, OPT_PAGE_GRANULAR },
		{ "nest-parent", no_argument, NULL, OPT_NEST_PARENT },
		{ "snoop", required_argument, NULL, OPT_SNOOP },
		{ 0 },
	};
	uint32_t flags = 0, mode = IOASID_SNOOP_AUTO, id;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, create_usage)) != -1) {
		switch (c) {
		case OPT_IDENTITY:
			flags |= IOASID_IOAS_IDENTITY;
			break;
		case OPT_RESTRICTED:
			flags |= IOASID_IOAS_RESTRICTED;
			break;
		case OPT_PAGE_GRANULAR:
			flags |= IOASID_IOAS_PAGE_GRANULAR;
			break;
		case OPT_NEST_PARENT:
			flags |= IOASID_IOAS_NEST_PARENT;
			break;
		case OPT_SNOOP:
			r = parse_mode(ctl, optarg, &mode);
			if (r)
				return r;
			break;
		default:
			return ctl_opt_status(c);
		}
	}
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_ioas_alloc(ctl->ctx, flags, &id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot create an IOAS");
	if (mode != IOASID_SNOOP_AUTO) {
		r = ioasid_ioas_set_snoop_mode(ctl->ctx, id, mode);
		if (r < 0) {
			r = ctl_fail(ctl, r, "IOAS %u: snoop mode %s", id,
				     snoop_mode_name(mode));
			ioasid_ioas_destroy(ctl->ctx, id);
			return r;
		}
	}
	ctl_set_result(ctl, id);
	return create_print(ctl, id);
}

/* ---- destroy, snoop ------------------------------------------------------ */

static const char destroy_usage[] =
	"Usage: ioasidctl ioas destroy IOAS [--json]\n"
	"\n"
	"Destroy an address space and all its mappings.  Devices must be\n"
	"detached first.\n";

static void print_done(struct ctl *ctl, uint32_t id, const char *what,
		       const char *human)
{
	struct json j;

	if (!ctl->json) {
		printf("IOAS %u %s\n", id, human);
		return;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "ioas", id);
	json_bool(&j, what, true);
	json_obj_end(&j);
	json_finish(&j);
}

static int ioas_destroy(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t id;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, destroy_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &id) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_ioas_destroy(ctl->ctx, id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot destroy IOAS %u", id);
	print_done(ctl, id, "destroyed", "destroyed");
	return EXIT_OK;
}

static const char snoop_usage[] =
	"Usage: ioasidctl ioas snoop IOAS auto|enforce|allow [--json]\n"
	"\n"
	"Change the coherency policy of an address space that has no\n"
	"domain yet (no device attached).\n";

static int ioas_snoop(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t id, mode;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, snoop_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &id) ?:
	    parse_mode(ctl, argv[optind + 1], &mode) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_ioas_set_snoop_mode(ctl->ctx, id, mode);
	if (r < 0)
		return ctl_fail(ctl, r, "IOAS %u: snoop mode %s", id,
				snoop_mode_name(mode));
	print_done(ctl, id, "snoop_mode_set", "snoop mode set");
	return EXIT_OK;
}

/* ---- allow --------------------------------------------------------------- */

static const char allow_usage[] =
	"Usage: ioasidctl ioas allow IOAS [RANGE...] [--json]\n"
	"\n"
	"Restrict the IOVAs mappings may use to these ranges; without a\n"
	"range, lift the restriction.  RANGE is START-LAST (inclusive) or\n"
	"START+LENGTH, e.g. 0-0xffffffff or 4G+4G.\n";

static int ioas_allow(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_iova_range ranges[64];
	uint32_t id, nr = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, allow_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1 + (int)ARRAY_SIZE(ranges)) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &id);
	for (int a = optind + 1; !r && a < argc; a++)
		r = ctl_parse_range(ctl, argv[a], &ranges[nr++]);
	if (r || (r = ctl_open(ctl)))
		return r;
	r = ioasid_allow_iovas(ctl->ctx, id, ranges, nr);
	if (r < 0)
		return ctl_fail(ctl, r, "IOAS %u: cannot allow these IOVAs", id);
	print_done(ctl, id, "allowed_set", nr ? "allowed ranges set" :
		   "allows every IOVA");
	return EXIT_OK;
}

/* ---- the group ----------------------------------------------------------- */

static const struct cmd ioas_cmds[] = {
	{ "list", ioas_list, "list this session's address spaces" },
	{ "show", cmd_ioas_show, "draw an IOAS: ranges, mappings, domains" },
	{ "create", ioas_create, "create an address space" },
	{ "destroy", ioas_destroy, "destroy an address space" },
	{ "snoop", ioas_snoop, "set the snoop mode of an address space" },
	{ "allow", ioas_allow, "restrict the IOVAs an address space may use" },
};

int cmd_ioas(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch_group(ctl, ioas_cmds, ARRAY_SIZE(ioas_cmds), "ioasidctl ioas",
				  group_usage, "list", argc, argv);
}
