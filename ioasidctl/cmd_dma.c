/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl dma: make a simulated device read or write memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

#define DMA_MAX (64ULL << 20)

static const char usage[] =
	"Usage: ioasidctl dma DEVICE IOVA LENGTH [--write [--fill BYTE]]\n"
	"                     [--no-snoop] [--json]\n"
	"\n"
	"Make a simulated device (or a kernel mock device of iommufd:mock) do\n"
	"DMA through its IOMMU: read LENGTH bytes at IOVA (the default; the\n"
	"first bytes are printed in hex) or write them (--write, all set to\n"
	"BYTE, default 0xa5).  A translation or permission fault stops it,\n"
	"and queues a fault record and event.\n"
	"At most 64M at a time.\n"
	"\n"
	"  --no-snoop   set the No-Snoop attribute on the transfer\n";

enum { OPT_WRITE = 0x300, OPT_FILL, OPT_NO_SNOOP };

struct dma_args {
	uint64_t iova, length;
	uint32_t flags, fill;
};

static void print_result(struct ctl *ctl, const char *dev,
			 const struct dma_args *a, const unsigned char *buf,
			 uint64_t done)
{
	bool wr = a->flags & IOASID_DMA_WRITE;
	char hex[16 * 3 + 1] = "";
	struct json j;

	size_t used = 0;

	for (uint64_t i = 0; !wr && i < done && i < 16; i++)
		used += (size_t)snprintf(hex + used, sizeof(hex) - used, "%s%02x",
					 i ? " " : "", buf[i]);
	if (!ctl->json) {
		printf("%s %s %s at IOVA %s%s%s\n", dev, wr ? "wrote" : "read",
		       size_str(done).s, hex_str(a->iova, false).s,
		       hex[0] ? ": " : "", hex);
		return;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "device", dev);
	json_str(&j, "access", wr ? "write" : "read");
	json_u64(&j, "iova", a->iova);
	json_u64(&j, "bytes", done);
	if (!wr)
		json_str(&j, "first_bytes", hex);
	json_obj_end(&j);
	json_finish(&j);
}

static int parse(struct ctl *ctl, int argc, char **argv, struct dma_args *a)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "write", no_argument, NULL, OPT_WRITE },
		{ "fill", required_argument, NULL, OPT_FILL },
		{ "no-snoop", no_argument, NULL, OPT_NO_SNOOP },
		{ 0 },
	};
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1) {
		if (c == OPT_WRITE)
			a->flags |= IOASID_DMA_WRITE;
		else if (c == OPT_NO_SNOOP)
			a->flags |= IOASID_DMA_NO_SNOOP;
		else if (c == OPT_FILL && (str_to_u32(optarg, &a->fill) < 0 ||
					   a->fill > 0xff))
			return ctl_usage(ctl, "--fill '%s' is not a byte",
					 optarg);
		else if (c != OPT_FILL)
			return c;	/* CTL_OPT_HELP or CTL_OPT_ERROR */
	}
	r = ctl_nargs(ctl, argc, 3, 3) ?:
	    ctl_parse_size(ctl, "IOVA", argv[optind + 1], &a->iova) ?:
	    ctl_parse_size(ctl, "length", argv[optind + 2], &a->length);
	if (r)
		return r;
	if (!a->length || a->length > DMA_MAX)
		return ctl_usage(ctl, "length must be between 1 and 64M");
	return EXIT_OK;
}

int cmd_dma(struct ctl *ctl, int argc, char **argv)
{
	struct dma_args a = { .fill = 0xa5 };
	struct ioasid_device_info info;
	unsigned char *buf;
	uint64_t done = 0;
	uint32_t dev_id;
	int r;

	r = parse(ctl, argc, argv, &a);
	if (r < 0)
		return ctl_opt_status(r);
	r = r ?: ctl_open(ctl) ?: ctl_bind(ctl, argv[optind], &dev_id, &info);
	if (r)
		return r;
	buf = malloc(a.length);
	if (!buf)
		return ctl_syserr(ctl, ENOMEM, "dma");
	memset(buf, (int)a.fill, a.length);
	r = ioasid_device_dma(ctl->ctx, dev_id, a.iova, buf, a.length, a.flags,
			      &done);
	if (r < 0) {
		r = ctl_fail(ctl, r, "DMA %s %s at %s by %s",
			     a.flags & IOASID_DMA_WRITE ? "write" : "read",
			     size_str(a.length).s, hex_str(a.iova, false).s,
			     info.name);
	} else {
		ctl_set_result(ctl, done);
		print_result(ctl, info.name, &a, buf, done);
		r = EXIT_OK;
	}
	free(buf);
	return r;
}
