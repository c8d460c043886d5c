/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * khotplug: the kernel backends' hotplug source - a udev netlink monitor
 * (discovery/monitor.c) turned into "device NAME came / went" for the
 * core.  A device counts as present when the backend can use it (@usable:
 * bound to a VFIO driver with a cdev, or with a group node), so a driver
 * unbind is a removal and a bind to vfio-pci a return.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backends/kcommon/kcommon.h"
#include "discovery/discovery.h"
#include "util/log.h"

int khotplug_fd(struct khotplug *h, const struct log_sink *log)
{
	int r;

	if (h->mon)
		return discovery_monitor_fd(h->mon);
	if (h->failed)
		return -1;
	r = discovery_monitor_new(log, DISCOVERY_MONITOR_AUTO, &h->mon);
	if (r < 0) {
		warn(log, "no hotplug events: %s", strerror(-r));
		h->failed = true;
		return -1;
	}
	return discovery_monitor_fd(h->mon);
}

int khotplug_read(struct khotplug *h, char *name, size_t len, bool *present,
		  bool (*usable)(const char *name))
{
	struct discovery_event ev;

	while (h->mon && discovery_monitor_receive(h->mon, &ev) == 0) {
		switch (ev.action) {
		case DISCOVERY_EVENT_REMOVE:
		case DISCOVERY_EVENT_UNBIND:
			*present = false;
			break;
		case DISCOVERY_EVENT_BIND:
			*present = usable(ev.name);
			break;
		default:
			continue;	/* ADD comes before a driver binds */
		}
		snprintf(name, len, "%s", ev.name);
		return 0;
	}
	return -EAGAIN;
}

void khotplug_release(struct khotplug *h)
{
	if (h->mon)
		discovery_monitor_free(h->mon);
	h->mon = NULL;
}
