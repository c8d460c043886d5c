/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core's leaf: object ids, per-session event queues, the clock, the
 * session's tenant in the backend, a growable range array.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/base.h"

int core_space_quota(struct session *s, struct ioasid_op *op)
{
	uint64_t n = (uint64_t)s->nr_ioas + s->nr_nested + s->nr_viommus;

	if (n >= s->limits.max_ioas)
		return op_fail(op, ENOSPC, "quota of %u address spaces "
			       "(IOASes, nested tables and vIOMMUs) reached",
			       s->limits.max_ioas);
	return 0;
}

uint32_t core_alloc_id(struct core *core)
{
	if (++core->next_id == 0)
		++core->next_id;
	return core->next_id;
}

int core_session_tenant(struct session *s, struct be_tenant **out)
{
	const struct backend_ops *ops = s->core->be_ops;
	int r;

	if (!s->tenant && ops->tenant_open) {
		r = ops->tenant_open(s->core->be, &s->tenant);
		if (r < 0)
			return r;
	}
	*out = s->tenant;
	return 0;
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
	/* a saturated counter stays readable: the event is still queued */
	if (write(s->event_fd, &one, sizeof(one)) < 0)
		return;
}

void core_session_event_lost(struct session *s)
{
	pthread_mutex_lock(&s->core->event_lock);
	s->ev_dropped++;
	pthread_mutex_unlock(&s->core->event_lock);
}

void core_session_events_dropped(struct session *s, uint64_t n)
{
	pthread_mutex_lock(&s->core->event_lock);
	s->ev_dropped = s->ev_dropped > UINT64_MAX - n ? UINT64_MAX :
							 s->ev_dropped + n;
	pthread_mutex_unlock(&s->core->event_lock);
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

static void label(struct ioasid_event *e, const struct session *s)
{
	e->session_id = s->id;
	e->pid = s->pid;
	e->uid = s->uid;
}

/*
 * The fan-out to observers: an administrator's monitor sees every
 * session's events.  A session that does not observe sees only its own
 * (and everyone's hotplug, core_emit()).
 */
static void queue_observers(struct core *core, const struct session *about,
			    uint32_t group, const struct ioasid_event *e)
{
	for (struct session *o = core->sessions; o; o = o->next)
		if (o != about && o->observer && (o->event_groups & group))
			session_queue(o, e);
}

void core_emit_to(struct session *s, uint32_t group,
		  const struct ioasid_event *ev)
{
	struct ioasid_event e = *ev;

	stamp(&e);
	label(&e, s);
	pthread_mutex_lock(&s->core->event_lock);
	if (!group || (s->event_groups & group))
		session_queue(s, &e);
	if (group)
		queue_observers(s->core, s, group, &e);
	pthread_mutex_unlock(&s->core->event_lock);
}

void core_emit_session(struct session *s, bool start)
{
	struct ioasid_event e = {
		.type = start ? IOASID_EVENT_SESSION_START :
				IOASID_EVENT_SESSION_END,
		.id = s->id,
	};

	snprintf(e.name, sizeof(e.name), "%s", s->name);
	stamp(&e);
	label(&e, s);
	pthread_mutex_lock(&s->core->event_lock);
	queue_observers(s->core, s, IOASID_EVENT_GROUP_SESSION, &e);
	pthread_mutex_unlock(&s->core->event_lock);
}

int core_ranges_push(struct core_ranges *r, uint64_t start, uint64_t last)
{
	if (r->nr == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 8;
		void *v = realloc(r->v, cap * sizeof(*r->v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->nr++] = (struct ioasid_iova_range){ start, last };
	return 0;
}
