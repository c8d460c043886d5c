/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl attach, detach, replace: devices in and out of an IOAS. */
#include <stdio.h>
#include <string.h>

#include "ioasidctl.h"

static const char attach_usage[] =
	"Usage: ioasidctl attach DEVICE IOAS [--pasid N] [--no-snoop-unused]\n"
	"                        [--json]\n"
	"\n"
	"Attach a device (PCI name, e.g. 0000:00:03.0 or 00:03.0) to an\n"
	"address space, binding it to this session first if needed.  The\n"
	"device joins a domain of the IOAS that its IOMMU accepts and whose\n"
	"coherency the IOAS's snoop mode asks for, or a new one.\n"
	"\n"
	"  --pasid N           attach only the DMA the device tags with PASID\n"
	"                      N (1 .. 2^width-1; see PASIDS in 'devices')\n"
	"  --no-snoop-unused   promise that the device will not issue\n"
	"                      no-snoop DMA (honoured when policy trusts\n"
	"                      this client's hints)\n";

static const char replace_usage[] =
	"Usage: ioasidctl replace DEVICE IOAS [--pasid N] [--no-snoop-unused]\n"
	"                         [--json]\n"
	"\n"
	"Move an attached device (or, --pasid, one of its PASIDs) to another\n"
	"address space without a window in which its DMA is not translated.\n"
	"On failure it stays where it was.\n";

static const char detach_usage[] =
	"Usage: ioasidctl detach DEVICE [--pasid N] [--json]\n"
	"\n"
	"Stop a device's DMA (or, --pasid, the DMA it tags with PASID N) and\n"
	"take it out of its address space.  It stays bound to this session.\n";

enum { OPT_HINT = 0x300, OPT_PASID };

/* The device's new state: one line, or its JSON object. */
static int print_state(struct ctl *ctl, const char *verb,
		       const struct ioasid_device_info *d)
{
	struct json j;

	if (ctl->json) {
		json_init(&j, stdout, true);
		json_device(&j, d);
		json_finish(&j);
		return EXIT_OK;
	}
	if (!d->ioas_id) {
		printf("%s %s (dev %u)\n", d->name, verb, d->dev_id);
		return EXIT_OK;
	}
	printf("%s (dev %u) %s IOAS %u, domain %u on %s, %s", d->name,
	       d->dev_id, verb, d->ioas_id, d->domain_id, d->iommu,
	       d->flags & IOASID_DEVICE_NONCOHERENT ?
	       "non-coherent: its no-snoop DMA bypasses CPU caches" :
	       "coherent");
	/* attached, but the kernel would not let its DMA through yet */
	if (!(d->flags & IOASID_DEVICE_GROUP_VIABLE))
		printf("; its DMA is blocked: IOMMU group %u is not viable "
		       "until all its devices are attached to IOAS %u",
		       d->group, d->ioas_id);
	putchar('\n');
	return EXIT_OK;
}

typedef int (*attach_fn)(struct ioasid_ctx *ctx, uint32_t dev_id,
			 uint32_t ioas_id, uint32_t flags);
typedef int (*pasid_fn)(struct ioasid_ctx *ctx, uint32_t dev_id,
			uint32_t pasid, uint32_t ioas_id, uint32_t flags);

/* PASID 1 .. 2^32-1 (the library says what the device takes). */
static int parse_pasid(struct ctl *ctl, const char *s, uint32_t *pasid)
{
	return ctl_parse_id(ctl, "PASID", s, pasid);
}

static int pasid_done(struct ctl *ctl, const char *verb,
		      const struct ioasid_device_info *d, uint32_t pasid,
		      uint32_t ioas)
{
	if (ctl->json)
		return print_state(ctl, verb, d);
	if (ioas)
		printf("%s (dev %u) PASID %u %s IOAS %u\n", d->name, d->dev_id,
		       pasid, verb, ioas);
	else
		printf("%s (dev %u) PASID %u %s\n", d->name, d->dev_id, pasid,
		       verb);
	return EXIT_OK;
}

static int attach_common(struct ctl *ctl, int argc, char **argv,
			 const char *usage, attach_fn fn, pasid_fn pfn,
			 const char *verb)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "no-snoop-unused", no_argument, NULL, OPT_HINT },
		{ "pasid", required_argument, NULL, OPT_PASID },
		{ 0 },
	};
	struct ioasid_device_info info;
	uint32_t flags = 0, ioas, dev_id, pasid = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1) {
		if (c == OPT_PASID) {
			if (parse_pasid(ctl, optarg, &pasid))
				return EXIT_USAGE;
			continue;
		}
		if (c != OPT_HINT)
			return ctl_opt_status(c);
		flags |= IOASID_ATTACH_NO_SNOOP_UNUSED;
	}
	if (pasid && flags) {
		ctl_err(ctl, "%s: --no-snoop-unused is for the device, not one "
			"of its PASIDs", argv[0]);
		return EXIT_USAGE;
	}
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind + 1], &ioas) ?:
	    ctl_open(ctl) ?: ctl_bind(ctl, argv[optind], &dev_id, &info);
	if (r)
		return r;
	if (pasid) {
		r = pfn(ctl->ctx, dev_id, pasid, ioas, 0);
		if (r < 0)
			return ctl_fail(ctl, r, "%s %s PASID %u to IOAS %u",
					argv[0], info.name, pasid, ioas);
		r = ioasid_device_get_info(ctl->ctx, info.name, &info);
		if (r < 0)
			return ctl_fail(ctl, r, "device %s", info.name);
		ctl_set_result(ctl, dev_id);
		return pasid_done(ctl, verb, &info, pasid, ioas);
	}
	r = fn(ctl->ctx, dev_id, ioas, flags);
	if (r < 0)
		return ctl_fail(ctl, r, "%s %s to IOAS %u", argv[0],
				info.name, ioas);
	r = ioasid_device_get_info(ctl->ctx, info.name, &info);
	if (r < 0)
		return ctl_fail(ctl, r, "device %s", info.name);
	ctl_set_result(ctl, dev_id);
	return print_state(ctl, verb, &info);
}

int cmd_attach(struct ctl *ctl, int argc, char **argv)
{
	return attach_common(ctl, argc, argv, attach_usage,
			     ioasid_device_attach, ioasid_device_pasid_attach,
			     "attached to");
}

int cmd_replace(struct ctl *ctl, int argc, char **argv)
{
	return attach_common(ctl, argc, argv, replace_usage,
			     ioasid_device_replace, ioasid_device_pasid_replace,
			     "moved to");
}

int cmd_detach(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "pasid", required_argument, NULL, OPT_PASID },
		{ 0 },
	};
	struct ioasid_device_info info;
	uint32_t ioas, pasid = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, detach_usage)) != -1) {
		if (c != OPT_PASID)
			return ctl_opt_status(c);
		if (parse_pasid(ctl, optarg, &pasid))
			return EXIT_USAGE;
	}
	r = ctl_nargs(ctl, argc, 1, 1) ?: ctl_open(ctl) ?:
	    ctl_device_info(ctl, argv[optind], &info);
	if (r)
		return r;
	if (info.flags & IOASID_DEVICE_OTHER_SESSION) {
		ctl_err(ctl, "detach %s: the device is bound to another "
			"session; only that session can detach it", info.name);
		return EXIT_FAIL;
	}
	if (!(info.flags & IOASID_DEVICE_BOUND)) {
		ctl_err(ctl, "detach %s: the device is not bound to this "
			"session, so there is nothing to detach%s", info.name,
			ioasid_is_remote(ctl->ctx) ? " (a device another "
			"session bound only that session can detach)" :
			" (an embedded context starts empty: attach and detach "
			"in one 'batch')");
		return EXIT_FAIL;
	}
	if (pasid) {
		r = ioasid_device_pasid_detach(ctl->ctx, info.dev_id, pasid);
		if (r < 0)
			return ctl_fail(ctl, r, "detach %s PASID %u", info.name,
					pasid);
		r = ioasid_device_get_info(ctl->ctx, info.name, &info);
		if (r < 0)
			return ctl_fail(ctl, r, "device %s", info.name);
		return pasid_done(ctl, "detached", &info, pasid, 0);
	}
	ioas = info.ioas_id;
	r = ioasid_device_detach(ctl->ctx, info.dev_id);
	if (r < 0)
		return ctl_fail(ctl, r, "detach %s", info.name);
	r = ioasid_device_get_info(ctl->ctx, info.name, &info);
	if (r < 0)
		return ctl_fail(ctl, r, "device %s", info.name);
	if (ctl->json)
		return print_state(ctl, "detached", &info);
	printf("%s (dev %u) detached from IOAS %u\n", info.name, info.dev_id,
	       ioas);
	return EXIT_OK;
}
