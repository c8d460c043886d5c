/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Embedded transport: the core lives in this process, one session. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/core.h"
#include "transport/transport.h"
#include "util/log.h"

struct embedded {
	struct core *core;
	struct session *session;
	int epoll_fd;		/* the session's events + the hotplug source */
};

/* One descriptor for the caller's poll(): events queued or hotplug. */
static int make_event_fd(struct embedded *e)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int hotplug = core_hotplug_fd(e->core);

	e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epoll_fd < 0)
		return -errno;
	if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, core_session_event_fd(e->session), &ev) ||
	    (hotplug >= 0 &&
	     epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, hotplug, &ev))) {
		close(e->epoll_fd);
		return -errno;
	}
	return 0;
}

static int embedded_open(const struct log_sink *log, const char *uri,
			 void **priv, char *errmsg, size_t errlen)
{
	struct embedded *e;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	r = core_new(log, uri, &e->core, errmsg, errlen);
	if (r < 0)
		goto fail;
	r = core_session_new(e->core, NULL, &e->session);
	if (r == 0) {
		r = make_event_fd(e);
		if (r < 0)
			core_session_free(e->session);
	}
	if (r < 0) {
		core_free(e->core);
		goto fail;
	}
	*priv = e;
	return 0;
fail:
	err(log, "cannot open %s: %s", uri, errmsg[0] ? errmsg : strerror(-r));
	free(e);
	return r;
}

static void embedded_close(void *priv)
{
	struct embedded *e = priv;

	close(e->epoll_fd);
	core_session_free(e->session);
	core_free(e->core);
	free(e);
}

static int embedded_call(void *priv, struct ioasid_op *op)
{
	struct embedded *e = priv;

	return core_call(e->session, op);
}

static const char *embedded_backend_name(void *priv)
{
	struct embedded *e = priv;

	return core_backend_name(e->core);
}

static int embedded_event_fd(void *priv)
{
	struct embedded *e = priv;

	return e->epoll_fd;
}

static int embedded_event_read(void *priv, struct ioasid_event *ev)
{
	struct embedded *e = priv;

	if (core_hotplug_fd(e->core) >= 0)
		core_hotplug_poll(e->core);
	return core_session_pop_event(e->session, ev);
}

struct core *embedded_transport_core(void *priv)
{
	struct embedded *e = priv;

	return e->core;
}

const struct transport_ops transport_embedded = {
	.name = "embedded",
	.open = embedded_open,
	.close = embedded_close,
	.call = embedded_call,
	.backend_name = embedded_backend_name,
	.event_fd = embedded_event_fd,
	.event_read = embedded_event_read,
};
