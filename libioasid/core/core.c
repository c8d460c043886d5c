/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The core object, sessions, ids and event queues. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/core.h"
#include "core/device.h"
#include "core/dispatch.h"
#include "core/ioas.h"
#include "util/log.h"
#include "util/macros.h"

#define EVENT_QUEUE_LEN 1024

static const struct session_limits unlimited = {
	.max_ioas = UINT32_MAX,
	.max_mappings = UINT64_MAX,
	.max_bytes_mapped = UINT64_MAX,
	.max_vms = UINT32_MAX,
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

int core_new(struct ioasid_ctx *log, const char *uri, struct core **out,
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
	core = calloc(1, sizeof(*core));
	if (!core)
		return -ENOMEM;
	core->log = log;
	core->be_ops = ops;
	pthread_mutex_init(&core->lock, NULL);
	pthread_mutex_init(&core->event_lock, NULL);
	pthread_rwlock_init(&core->objects_lock, NULL);
	r = ops->open(log, arg, &core->be, errmsg, errlen);
	if (r == 0) {
		r = ops->inventory(core->be, &core->inv);
		if (r < 0) {
			snprintf(errmsg, errlen, "cannot list devices: %s",
				 strerror(-r));
			ops->close(core->be);
		}
	}
	if (r == 0) {
		r = devices_init(core);
		if (r < 0) {
			snprintf(errmsg, errlen, "out of memory");
			inventory_release(&core->inv);
			ops->close(core->be);
		}
	}
	if (r < 0) {
		pthread_mutex_destroy(&core->lock);
		pthread_mutex_destroy(&core->event_lock);
		pthread_rwlock_destroy(&core->objects_lock);
		free(core);
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
	pthread_mutex_destroy(&core->lock);
	pthread_mutex_destroy(&core->event_lock);
	pthread_rwlock_destroy(&core->objects_lock);
	free(core);
}

const char *core_backend_name(const struct core *core)
{
	return core->be_ops->name;
}

uint32_t core_alloc_id(struct core *core)
{
	if (++core->next_id == 0)
		++core->next_id;
	return core->next_id;
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
	pthread_mutex_lock(&s->core->lock);
	s->pid = pid;
	s->uid = uid;
	if (name)
		snprintf(s->name, sizeof(s->name), "%s", name);
	pthread_mutex_unlock(&s->core->lock);
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
	pthread_mutex_lock(&core->event_lock);
	unlink_session(core, s);
	pthread_mutex_unlock(&core->event_lock);
	pthread_mutex_unlock(&core->lock);
	close(s->event_fd);
	free(s->events);
	free(s);
}

int core_call(struct session *s, struct ioasid_op *op)
{
	return dispatch(s, op);
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

uint64_t core_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void session_queue(struct session *s, const struct ioasid_event *ev)
{
	uint64_t one = 1;

	if (s->ev_len == s->ev_cap) {
		s->ev_dropped++;
		return;
	}
	s->events[(s->ev_head + s->ev_len) % s->ev_cap] = *ev;
	s->ev_len++;
	if (write(s->event_fd, &one, sizeof(one)) < 0)
		s->ev_dropped++;
}

int core_session_pop_event(struct session *s, struct ioasid_event *ev)
{
	uint64_t count;
	int r = -EAGAIN;

	pthread_mutex_lock(&s->core->event_lock);
	if (s->ev_len) {
		*ev = s->events[s->ev_head];
		s->ev_head = (s->ev_head + 1) % s->ev_cap;
		s->ev_len--;
		r = 0;
	}
	/* keep the eventfd readable exactly while events are queued */
	if (!s->ev_len && read(s->event_fd, &count, sizeof(count)) < 0)
		count = 0;
	pthread_mutex_unlock(&s->core->event_lock);
	return r;
}

static void stamp(struct ioasid_event *e)
{
	e->size = sizeof(*e);
	if (!e->timestamp_ns)
		e->timestamp_ns = core_now_ns();
}

void core_emit(struct core *core, uint32_t group, const struct ioasid_event *ev)
{
	struct ioasid_event e = *ev;

	stamp(&e);
	pthread_mutex_lock(&core->event_lock);
	for (struct session *s = core->sessions; s; s = s->next)
		if (s->event_groups & group)
			session_queue(s, &e);
	pthread_mutex_unlock(&core->event_lock);
}

void core_emit_to(struct session *s, uint32_t group,
		  const struct ioasid_event *ev)
{
	struct ioasid_event e = *ev;

	if (group && !(s->event_groups & group))
		return;
	stamp(&e);
	pthread_mutex_lock(&s->core->event_lock);
	session_queue(s, &e);
	pthread_mutex_unlock(&s->core->event_lock);
}
