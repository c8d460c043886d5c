/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The core object and its sessions; ids and events are in base.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/device.h"
#include "core/dispatch.h"
#include "core/fault.h"
#include "core/ioas.h"
#include "util/log.h"
#include "util/macros.h"

#define EVENT_QUEUE_LEN 1024

static const struct session_limits unlimited = {
	.max_ioas = UINT32_MAX,
	.max_mappings = UINT64_MAX,
	.max_bytes_mapped = UINT64_MAX,
	.max_vms = UINT32_MAX,
	.max_conversion_state = UINT64_MAX,
	.allow_noncoherent = 1,
	.trust_hints = 1,
	.may_observe = 1,
	.may_get_fds = 1,
};

/* "name" or "name:arg" → backend ops and arg. */
static const struct backend_ops *parse_uri(const char *uri, char *name,
					   size_t len, const char **arg)
{
	const char *colon = strchr(uri, ':');
	size_t n = colon ? (size_t)(colon - uri) : strlen(uri);

	if (n >= len)
		return NULL;
	memcpy(name, uri, n);
	name[n] = '\0';
	*arg = colon ? colon + 1 : NULL;
	return backend_find(name);
}

static struct core *core_alloc(const struct log_sink *log,
			       const struct backend_ops *ops)
{
	struct core *core = calloc(1, sizeof(*core));

	if (!core)
		return NULL;
	core->log = log;
	core->be_ops = ops;
	pthread_mutex_init(&core->lock, NULL);
	pthread_mutex_init(&core->event_lock, NULL);
	pthread_rwlock_init(&core->objects_lock, NULL);
	return core;
}

static void core_dealloc(struct core *core)
{
	pthread_mutex_destroy(&core->lock);
	pthread_mutex_destroy(&core->event_lock);
	pthread_rwlock_destroy(&core->objects_lock);
	free(core);
}

/* Open the backend, list its devices, give each its struct device. */
static int core_open_backend(struct core *core, const char *arg,
			     char *errmsg, size_t errlen)
{
	const struct backend_ops *ops = core->be_ops;
	int r;

	r = ops->open(core->log, arg, &core->be, errmsg, errlen);
	if (r < 0)
		return r;
	r = ops->inventory(core->be, &core->inv);
	if (r < 0) {
		snprintf(errmsg, errlen, "cannot list devices: %s",
			 strerror(-r));
		goto close;
	}
	r = devices_init(core);
	if (r < 0) {
		snprintf(errmsg, errlen, "out of memory");
		inventory_release(&core->inv);
		goto close;
	}
	return 0;
close:
	ops->close(core->be);
	return r;
}

int core_new(const struct log_sink *log, const char *uri, struct core **out,
	     char *errmsg, size_t errlen)
{
	const struct backend_ops *ops;
	const char *arg;
	struct core *core;
	char name[32];
	int r;

	ops = parse_uri(uri, name, sizeof(name), &arg);
	if (!ops) {
		snprintf(errmsg, errlen, "unknown backend in \"%s\" (known: "
			 "sim, iommufd, vfio-type1, unix:PATH)", uri);
		return -EINVAL;
	}
	core = core_alloc(log, ops);
	if (!core)
		return -ENOMEM;
	r = core_open_backend(core, arg, errmsg, errlen);
	if (r < 0) {
		core_dealloc(core);
		return r;
	}
	*out = core;
	return 0;
}

void core_free(struct core *core)
{
	while (core->sessions)
		core_session_free(core->sessions);
	devices_release(core);
	inventory_release(&core->inv);
	core->be_ops->close(core->be);
	core_dealloc(core);
}

const char *core_backend_name(const struct core *core)
{
	return core->be_ops->name;
}

int core_session_new(struct core *core, const struct session_limits *limits,
		     struct session **out)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->events = calloc(EVENT_QUEUE_LEN, sizeof(*s->events));
	s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->events || s->event_fd < 0) {
		free(s->events);
		if (s->event_fd >= 0)
			close(s->event_fd);
		free(s);
		return -ENOMEM;
	}
	s->ev_cap = EVENT_QUEUE_LEN;
	s->core = core;
	s->limits = limits ? *limits : unlimited;
	s->pid = (uint32_t)getpid();
	s->uid = (uint32_t)getuid();
	snprintf(s->name, sizeof(s->name), "embedded");
	pthread_mutex_lock(&core->lock);
	pthread_mutex_lock(&core->event_lock);
	s->id = ++core->next_session_id;
	s->next = core->sessions;
	core->sessions = s;
	pthread_mutex_unlock(&core->event_lock);
	pthread_mutex_unlock(&core->lock);
	*out = s;
	return 0;
}

void core_session_set_owner(struct session *s, uint32_t pid, uint32_t uid,
			    const char *name)
{
	bool first;

	pthread_mutex_lock(&s->core->lock);
	s->pid = pid;
	s->uid = uid;
	if (name)
		snprintf(s->name, sizeof(s->name), "%s", name);
	/* ioasidd names its client's session right after it is made */
	first = !s->announced;
	s->announced = true;
	if (first)
		core_emit_session(s, true);
	pthread_mutex_unlock(&s->core->lock);
}

void core_session_usage(struct session *s, struct core_session_usage *u)
{
	struct core *core = s->core;

	memset(u, 0, sizeof(*u));
	pthread_mutex_lock(&core->lock);
	u->nr_ioas = s->nr_ioas;
	u->nr_mappings = s->nr_mappings;
	u->nr_vms = s->nr_vms;
	u->bytes_mapped = s->bytes_mapped;
	u->state_bytes = ioas_session_state_bytes(s);
	u->max_ioas = s->limits.max_ioas;
	u->max_vms = s->limits.max_vms;
	u->max_mappings = s->limits.max_mappings;
	u->max_bytes_mapped = s->limits.max_bytes_mapped;
	u->max_conversion_state = s->limits.max_conversion_state;
	for (uint32_t i = 0; i < core->nr_devices; i++)
		u->nr_devices += core->devices[i].owner == s;
	u->faults_lost = fault_lost_count(s);
	pthread_mutex_unlock(&core->lock);
	pthread_mutex_lock(&core->event_lock);
	u->events_lost = s->ev_dropped;
	pthread_mutex_unlock(&core->event_lock);
}

uint32_t core_session_pid(const struct session *s)
{
	return s->pid;
}

static void unlink_session(struct core *core, struct session *s)
{
	struct session **p = &core->sessions;

	while (*p && *p != s)
		p = &(*p)->next;
	if (*p)
		*p = s->next;
}

void core_session_free(struct session *s)
{
	struct core *core = s->core;

	pthread_mutex_lock(&core->lock);
	dispatch_release_session(s);
	if (s->announced)
		core_emit_session(s, false);
	pthread_mutex_lock(&core->event_lock);
	unlink_session(core, s);
	pthread_mutex_unlock(&core->event_lock);
	/* after the session's last object: they live in the tenant */
	if (s->tenant)
		core->be_ops->tenant_close(s->tenant);
	pthread_mutex_unlock(&core->lock);
	close(s->event_fd);
	free(s->events);
	free(s);
}


int core_hotplug_fd(struct core *core)
{
	return core->be_ops->hotplug_fd ? core->be_ops->hotplug_fd(core->be) :
					  -1;
}

void core_hotplug_poll(struct core *core)
{
	pthread_mutex_lock(&core->lock);
	devices_hotplug_poll(core);
	pthread_mutex_unlock(&core->lock);
}

bool core_session_has_events(const struct session *s)
{
	return __atomic_load_n(&s->ev_len, __ATOMIC_ACQUIRE) != 0;
}

uint32_t core_session_id(const struct session *s)
{
	return s->id;
}

uint32_t core_next_id(struct core *core)
{
	uint32_t id;

	pthread_mutex_lock(&core->lock);
	id = core->next_id;
	pthread_mutex_unlock(&core->lock);
	return id;
}

void core_set_next_id(struct core *core, uint32_t id)
{
	pthread_mutex_lock(&core->lock);
	core->next_id = id;
	pthread_mutex_unlock(&core->lock);
}

uint32_t core_next_session_id(struct core *core)
{
	uint32_t id;

	pthread_mutex_lock(&core->lock);
	id = core->next_session_id;
	pthread_mutex_unlock(&core->lock);
	return id;
}

void core_set_next_session_id(struct core *core, uint32_t id)
{
	pthread_mutex_lock(&core->lock);
	if (id > core->next_session_id)
		core->next_session_id = id;
	pthread_mutex_unlock(&core->lock);
}

int core_session_event_fd(const struct session *s)
{
	return s->event_fd;
}

uint32_t core_nr_devices(const struct core *core)
{
	return core->inv.nr_devices;
}

const char *core_device_name(const struct core *core, uint32_t i)
{
	return i < core->inv.nr_devices ? core->inv.devices[i].info.name : NULL;
}

void core_set_dirtied(struct core *core, core_dirtied_fn fn, void *arg)
{
	core->dirtied_arg = arg;
	__atomic_store_n(&core->dirtied, fn, __ATOMIC_RELEASE);
}
