/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl dirty: dirty tracking of an IOAS (live migration). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char start_usage[] =
	"Usage: ioasidctl dirty start IOAS [--fallback] [--json]\n"
	"\n"
	"Track the pages devices write through every domain of the IOAS, and\n"
	"through every domain it gets later.  All or nothing: a domain whose\n"
	"IOMMU cannot track refuses it, unless --fallback, with which such a\n"
	"domain reports every mapped page as dirty.  It keeps going after\n"
	"this command only in ioasidd (use --session or a batch).\n"
	"\n"
	"  --fallback   untracked domains report everything mapped\n";

static const char stop_usage[] =
	"Usage: ioasidctl dirty stop IOAS [--json]\n"
	"\n"
	"Stop dirty tracking of the IOAS.\n";

static const char read_usage[] =
	"Usage: ioasidctl dirty read IOAS [RANGE] [--clear] [--json]\n"
	"\n"
	"Print the pages devices wrote since tracking started or since the\n"
	"last read that cleared, as runs of 4 KiB pages.  RANGE is START-LAST\n"
	"(inclusive) or START+LENGTH in whole 4 KiB pages; without it, from\n"
	"the first mapping of the IOAS to the end of its last.\n"
	"\n"
	"  --clear   clear what it reports (read-and-clear); else it stays\n";

enum { OPT_FALLBACK = 0x300, OPT_CLEAR };

static void print_state(struct ctl *ctl, uint32_t ioas, const char *what)
{
	struct ioasid_ioas_info info;
	struct json j;

	if (ioasid_ioas_get_info(ctl->ctx, ioas, &info) < 0)
		info.dirty_flags = 0;
	if (!ctl->json) {
		printf("IOAS %u: dirty tracking %s%s\n", ioas, what,
		       info.dirty_flags & IOASID_IOAS_DIRTY_UNTRACKED ?
		       " (a domain cannot track: every mapped page reads as "
		       "dirty)" : "");
		return;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "ioas", ioas);
	json_bool(&j, "tracking", info.dirty_flags & IOASID_IOAS_DIRTY_ON);
	json_bool(&j, "fallback", info.dirty_flags & IOASID_IOAS_DIRTY_FALLBACK);
	json_bool(&j, "untracked_domains",
		  info.dirty_flags & IOASID_IOAS_DIRTY_UNTRACKED);
	json_obj_end(&j);
	json_finish(&j);
}

static int dirty_start(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "fallback", no_argument, NULL, OPT_FALLBACK },
		{ 0 },
	};
	uint32_t ioas, flags = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, start_usage)) != -1) {
		if (c != OPT_FALLBACK)
			return ctl_opt_status(c);
		flags |= IOASID_DIRTY_START_FALLBACK;
	}
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_dirty_start(ctl->ctx, ioas, flags);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot start dirty tracking of IOAS %u",
				ioas);
	print_state(ctl, ioas, "on");
	return EXIT_OK;
}

static int dirty_stop(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t ioas;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, stop_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_dirty_stop(ctl->ctx, ioas);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot stop dirty tracking of IOAS %u",
				ioas);
	print_state(ctl, ioas, "off");
	return EXIT_OK;
}

/* From the first mapping to the end of the last: 0, or 1 when none. */
static int mapped_span(struct ctl *ctl, uint32_t ioas,
		       struct ioasid_iova_range *span)
{
	struct ioasid_mapping m;
	bool any = false;

	ioasid_mapping_foreach(ctl->ctx, ioas, &m) {
		if (!any)
			span->start = m.iova;
		span->last = m.iova + m.length - 1;
		any = true;
	}
	return any ? 0 : 1;
}

static void print_runs(struct ctl *ctl, uint32_t ioas,
		       const struct ioasid_iova_range *range,
		       const uint64_t *bm, uint64_t pages, bool clear)
{
	uint64_t dirty = 0, p = 0;
	struct json j;

	for (uint64_t i = 0; i < (pages + 63) / 64; i++)
		dirty += (uint64_t)__builtin_popcountll(bm[i]);
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_u64(&j, "ioas", ioas);
		json_u64(&j, "iova", range->start);
		json_u64(&j, "length", range->last - range->start + 1);
		json_u64(&j, "page_size", 4096);
		json_u64(&j, "pages", pages);
		json_u64(&j, "dirty_pages", dirty);
		json_bool(&j, "cleared", clear);
		json_arr_begin(&j, "dirty");
	} else {
		printf("IOAS %u: %llu of %llu pages dirty in %s-%s%s\n", ioas,
		       (unsigned long long)dirty, (unsigned long long)pages,
		       hex_str(range->start, false).s,
		       hex_str(range->last, false).s,
		       clear ? " (cleared)" : "");
	}
	while (p < pages) {
		uint64_t q;

		if (!(bm[p / 64] & (1ULL << (p % 64)))) {
			p++;
			continue;
		}
		for (q = p; q < pages && (bm[q / 64] & (1ULL << (q % 64)));)
			q++;
		if (ctl->json) {
			json_obj_begin(&j, NULL);
			json_u64(&j, "start", range->start + p * 4096);
			json_u64(&j, "last", range->start + q * 4096 - 1);
			json_u64(&j, "pages", q - p);
			json_obj_end(&j);
		} else {
			printf("  %s-%s  %s\n",
			       hex_str(range->start + p * 4096, false).s,
			       hex_str(range->start + q * 4096 - 1, false).s,
			       size_str((q - p) * 4096).s);
		}
		p = q;
	}
	if (ctl->json) {
		json_arr_end(&j);
		json_obj_end(&j);
		json_finish(&j);
	}
}

static int dirty_read(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "clear", no_argument, NULL, OPT_CLEAR },
		{ 0 },
	};
	struct ioasid_iova_range range = { 0, 0 };
	bool clear = false;
	uint64_t *bm, pages;
	uint32_t ioas;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, read_usage)) != -1) {
		if (c != OPT_CLEAR)
			return ctl_opt_status(c);
		clear = true;
	}
	r = ctl_nargs(ctl, argc, 1, 2) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas);
	if (!r && optind + 1 < argc)
		r = ctl_parse_range(ctl, argv[optind + 1], &range);
	if (r || (r = ctl_open(ctl)))
		return r;
	if (optind + 1 >= argc && mapped_span(ctl, ioas, &range)) {
		r = ioasid_dirty_read(ctl->ctx, ioas, 0, 4096, &pages, 0);
		if (r < 0)
			return ctl_fail(ctl, r, "cannot read the dirty pages of "
					"IOAS %u", ioas);
		return ctl_usage(ctl, "IOAS %u maps nothing: give a RANGE",
				 ioas);
	}
	pages = (range.last - range.start) / 4096 + 1;
	bm = calloc((pages + 63) / 64, sizeof(*bm));
	if (!bm)
		return ctl_syserr(ctl, ENOMEM, "cannot allocate a bitmap of %llu "
				  "pages", (unsigned long long)pages);
	r = ioasid_dirty_read(ctl->ctx, ioas, range.start,
			      range.last - range.start + 1, bm,
			      clear ? 0 : IOASID_DIRTY_NO_CLEAR);
	if (r < 0) {
		free(bm);
		return ctl_fail(ctl, r, "cannot read the dirty pages of IOAS %u",
				ioas);
	}
	print_runs(ctl, ioas, &range, bm, pages, clear);
	free(bm);
	return EXIT_OK;
}

static const struct cmd dirty_cmds[] = {
	{ "start", dirty_start, "track the pages devices write" },
	{ "stop", dirty_stop, "stop tracking" },
	{ "read", dirty_read, "print the dirty pages (--clear: and clear)" },
};

static const char group_usage[] =
	"Usage: ioasidctl dirty start|stop|read IOAS ... [--json]\n"
	"\n"
	"Dirty tracking for live migration (ioasid_dirty_read(3)).\n"
	"\n"
	"Subcommands:\n";

int cmd_dirty(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, dirty_cmds, ARRAY_SIZE(dirty_cmds),
			    "ioasidctl dirty", group_usage, argc - 1,
			    argv + 1);
}
