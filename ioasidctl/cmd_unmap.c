/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl unmap: remove a range, or every mapping, from an IOAS. */
#include <stdio.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl unmap IOAS IOVA LENGTH [--missing-ok] [--json]\n"
	"       ioasidctl unmap IOAS --all [--json]\n"
	"\n"
	"Remove every mapped byte in [IOVA, IOVA + LENGTH).  The range may\n"
	"cut through mappings at any 4 KiB boundary: the pieces outside it\n"
	"stay mapped.  --all removes every mapping.\n"
	"\n"
	"  --missing-ok   nothing mapped in the range is not an error\n"
	"  --all          unmap everything\n";

enum { OPT_MISSING_OK = 0x300, OPT_ALL };

static void print_result(struct ctl *ctl, uint32_t ioas, uint64_t bytes)
{
	struct json j;

	if (!ctl->json) {
		printf("unmapped %s from IOAS %u\n", size_str(bytes).s, ioas);
		return;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "ioas", ioas);
	json_u64(&j, "unmapped", bytes);
	json_obj_end(&j);
	json_finish(&j);
}

static int unmap_range(struct ctl *ctl, uint32_t ioas, char **args,
		       uint32_t flags)
{
	uint64_t iova, length, bytes = 0;
	int r;

	r = ctl_parse_size(ctl, "IOVA", args[0], &iova) ?:
	    ctl_parse_size(ctl, "length", args[1], &length) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_unmap(ctl->ctx, ioas, iova, length, flags, &bytes);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot unmap %s at %s from IOAS %u",
				size_str(length).s, hex_str(iova, false).s,
				ioas);
	ctl_set_result(ctl, bytes);
	print_result(ctl, ioas, bytes);
	return EXIT_OK;
}

static int unmap_all(struct ctl *ctl, uint32_t ioas)
{
	uint64_t bytes = 0;
	int r;

	r = ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_unmap_all(ctl->ctx, ioas, &bytes);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot unmap IOAS %u", ioas);
	ctl_set_result(ctl, bytes);
	print_result(ctl, ioas, bytes);
	return EXIT_OK;
}

int cmd_unmap(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "missing-ok", no_argument, NULL, OPT_MISSING_OK },
		{ "all", no_argument, NULL, OPT_ALL },
		{ 0 },
	};
	bool all = false;
	uint32_t flags = 0, ioas;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1) {
		if (c == OPT_MISSING_OK)
			flags |= IOASID_UNMAP_MISSING_OK;
		else if (c == OPT_ALL)
			all = true;
		else
			return ctl_opt_status(c);
	}
	if (all && flags)
		return ctl_usage(ctl, "--all and --missing-ok exclude each "
				 "other");
	r = ctl_nargs(ctl, argc, all ? 1 : 3, all ? 1 : 3) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas);
	if (r)
		return r;
	if (all)
		return unmap_all(ctl, ioas);
	return unmap_range(ctl, ioas, argv + optind + 1, flags);
}
