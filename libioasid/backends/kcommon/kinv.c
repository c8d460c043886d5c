/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kinv: the real machine's inventory, filtered to what a backend can use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "backends/kcommon/kcommon.h"
#include "discovery/discovery.h"

int kioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* Move unit @src (its reserved ranges included) into @inv. */
static int take_unit(struct inventory *inv, struct inv_iommu *src)
{
	struct inv_iommu *u;
	int r;

	if (inventory_find_iommu(inv, src->info.name))
		return 0;
	r = inventory_add_iommu(inv, &u);
	if (r < 0)
		return r;
	*u = *src;
	src->reserved = NULL;
	src->nr_reserved = 0;
	return 0;
}

static int take_device(struct inventory *inv, struct inv_device *src)
{
	struct inv_device *d;
	int r;

	r = inventory_add_device(inv, &d);
	if (r < 0)
		return r;
	*d = *src;
	src->reserved = NULL;
	src->nr_reserved = 0;
	return 0;
}

int kinv_scan(const struct log_sink *log, struct inventory *inv,
	      bool (*keep)(const struct inv_device *dev),
	      char *errmsg, size_t errlen)
{
	struct inventory all = { 0 };
	int r;

	*inv = (struct inventory){ 0 };
	r = discovery_scan(log, NULL, &all, errmsg, errlen);
	if (r < 0)
		return r;
	for (uint32_t i = 0; r == 0 && i < all.nr_devices; i++) {
		struct inv_device *d = &all.devices[i];
		struct inv_iommu *u;

		if (!keep(d))
			continue;
		u = inventory_find_iommu(&all, d->info.iommu);
		if (u)
			r = take_unit(inv, u);
		if (r == 0)
			r = take_device(inv, d);
	}
	inventory_release(&all);
	if (r < 0) {
		inventory_release(inv);
		snprintf(errmsg, errlen, "out of memory");
		return r;
	}
	inventory_count_devices(inv);
	return 0;
}
