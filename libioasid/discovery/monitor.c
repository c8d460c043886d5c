/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PCI hotplug: a libudev netlink monitor filtered to subsystem "pci".
 *
 * "kernel" monitors get the raw uevents and need no udevd; "udev"
 * monitors get them after udevd ran its rules and re-broadcast them, so
 * they need udevd.  What happens where nothing arrives is in
 * discovery.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libudev.h>

#include "discovery/discovery.h"
#include "util/log.h"
#include "util/macros.h"

/* Bound on skipped (filtered, malformed) messages per receive call. */
#define MONITOR_SKIP_MAX	64

struct discovery_monitor {
	const struct log_sink *log;
	struct udev *udev;
	struct udev_monitor *monitor;
	const char *source;
};

/* udevd runs when its control socket exists (what libudev checks too). */
static const char *pick_source(enum discovery_monitor_source source)
{
	switch (source) {
	case DISCOVERY_MONITOR_AUTO:
		return access("/run/udev/control", F_OK) ? "kernel" : "udev";
	case DISCOVERY_MONITOR_KERNEL:
		return "kernel";
	case DISCOVERY_MONITOR_UDEV:
		return "udev";
	}
	return NULL;
}

static int open_monitor(struct discovery_monitor *m)
{
	int ret;

	errno = 0;
	m->udev = udev_new();
	if (!m->udev)
		return errno ? -errno : -ENOMEM;
	errno = 0;
	m->monitor = udev_monitor_new_from_netlink(m->udev, m->source);
	if (!m->monitor)
		return errno ? -errno : -ENOMEM;
	ret = udev_monitor_filter_add_match_subsystem_devtype(m->monitor,
							      "pci", NULL);
	if (ret < 0)
		return ret;
	return udev_monitor_enable_receiving(m->monitor);
}

int discovery_monitor_new(const struct log_sink *log,
			  enum discovery_monitor_source source,
			  struct discovery_monitor **mon)
{
	struct discovery_monitor *m;
	int ret;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->log = log;
	m->source = pick_source(source);
	if (!m->source) {
		free(m);
		return -EINVAL;
	}
	ret = open_monitor(m);
	if (ret < 0) {
		err(log, "cannot listen for %s uevents: %s", m->source,
		    strerror(-ret));
		discovery_monitor_free(m);
		return ret;
	}
	dbg(log, "listening for PCI %s uevents", m->source);
	*mon = m;
	return 0;
}

int discovery_monitor_fd(const struct discovery_monitor *mon)
{
	return udev_monitor_get_fd(mon->monitor);
}

const char *discovery_monitor_source_name(const struct discovery_monitor *mon)
{
	return mon->source;
}

static const struct {
	const char *name;
	enum discovery_event_action action;
} actions[] = {
	{ "add", DISCOVERY_EVENT_ADD },
	{ "remove", DISCOVERY_EVENT_REMOVE },
	{ "bind", DISCOVERY_EVENT_BIND },
	{ "unbind", DISCOVERY_EVENT_UNBIND },
	{ "change", DISCOVERY_EVENT_CHANGE },
};

static int action_of(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(actions); i++)
		if (!strcmp(name, actions[i].name))
			return (int)actions[i].action;
	return 0;
}

static void copy_string(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Fill @ev from @dev; false for actions and devices we do not report. */
static bool event_from(struct udev_device *dev, struct discovery_event *ev)
{
	const char *name = udev_device_get_sysname(dev);
	int action = action_of(udev_device_get_action(dev));

	if (!action || !name || strlen(name) >= sizeof(ev->name))
		return false;
	memset(ev, 0, sizeof(*ev));
	ev->action = (enum discovery_event_action)action;
	copy_string(ev->name, sizeof(ev->name), name);
	copy_string(ev->syspath, sizeof(ev->syspath),
		    udev_device_get_syspath(dev));
	copy_string(ev->driver, sizeof(ev->driver),
		    udev_device_get_property_value(dev, "DRIVER"));
	return true;
}

int discovery_monitor_receive(struct discovery_monitor *mon,
			      struct discovery_event *ev)
{
	for (int i = 0; i < MONITOR_SKIP_MAX; i++) {
		struct udev_device *dev;
		bool ok;

		errno = 0;
		dev = udev_monitor_receive_device(mon->monitor);
		if (!dev && (errno == EAGAIN || errno == EWOULDBLOCK ||
			     errno == 0))
			return -EAGAIN;
		if (!dev) {
			/* a message libudev refused; it is consumed */
			dbg(mon->log, "uevent dropped: %s", strerror(errno));
			continue;
		}
		ok = event_from(dev, ev);
		udev_device_unref(dev);
		if (ok) {
			dbg(mon->log, "uevent %d %s", ev->action, ev->name);
			return 0;
		}
	}
	return -EAGAIN;
}

void discovery_monitor_free(struct discovery_monitor *mon)
{
	if (!mon)
		return;
	if (mon->monitor)
		udev_monitor_unref(mon->monitor);
	if (mon->udev)
		udev_unref(mon->udev);
	free(mon);
}
