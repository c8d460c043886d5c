/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl convert: shared/private conversion in a restricted IOAS. */
#include <stdio.h>
#include <string.h>

#include "ioasidctl.h"

#define MAX_RANGES 256

static const char usage[] =
	"Usage: ioasidctl convert IOAS private|shared RANGE... [--json]\n"
	"\n"
	"Make pages of a restricted address space private (no DMA reaches\n"
	"them once this returns) or shared (mapped pages become reachable\n"
	"again), all ranges at once or none.  Pages of a restricted IOAS\n"
	"start private.  RANGE is START-LAST (inclusive) or START+LENGTH in\n"
	"whole 4 KiB pages, e.g. 0x100000+2M.\n";

static void print_result(struct ctl *ctl, uint32_t ioas, const char *to,
			 uint64_t bytes)
{
	struct json j;

	if (!ctl->json) {
		printf("converted %s of IOAS %u to %s\n", size_str(bytes).s,
		       ioas, to);
		return;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "ioas", ioas);
	json_str(&j, "to", to);
	json_u64(&j, "converted", bytes);
	json_obj_end(&j);
	json_finish(&j);
}

int cmd_convert(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_iova_range ranges[MAX_RANGES];
	uint32_t ioas, flags = 0, nr = 0;
	uint64_t bytes = 0;
	const char *to;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 3, 2 + MAX_RANGES) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &ioas);
	if (r)
		return r;
	to = argv[optind + 1];
	if (!strcmp(to, "private"))
		flags = IOASID_CONVERT_PRIVATE;
	else if (!strcmp(to, "shared"))
		flags = IOASID_CONVERT_SHARED;
	else
		return ctl_usage(ctl, "'%s' is not private or shared", to);
	for (int a = optind + 2; !r && a < argc; a++)
		r = ctl_parse_range(ctl, argv[a], &ranges[nr++]);
	if (r || (r = ctl_open(ctl)))
		return r;
	r = ioasid_convert(ctl->ctx, ioas, ranges, nr, flags, &bytes);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot convert IOAS %u to %s", ioas, to);
	ctl_set_result(ctl, bytes);
	print_result(ctl, ioas, to, bytes);
	return EXIT_OK;
}
