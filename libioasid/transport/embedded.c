/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Embedded transport: the core lives in this process, one session. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "proto/codec.h"
#include "proto/image.h"
#include "transport/transport.h"
#include "util/log.h"

struct embedded {
	struct core *core;
	struct session *session;
	int epoll_fd;		/* the session's events + the hotplug source */
	char *uri;		/* the core's, for a state image */
	/*
	 * Exported with a hand-over begun in the kernel (vfio-type1: the
	 * addresses forgotten, core_handover_begin()): the image's memfd,
	 * which ioasid_ctx_export_abandon() is given to give them back.
	 */
	bool handing_over;
	dev_t image_dev;
	ino_t image_ino;
	struct embedded *next_handing_over;
};

/* The contexts of this process with a hand-over begun (embedded_export). */
static pthread_mutex_t handing_lock = PTHREAD_MUTEX_INITIALIZER;
static struct embedded *handing_over;

/* handing_lock held */
static void handing_over_unlink(struct embedded *e)
{
	struct embedded **p;

	for (p = &handing_over; *p && *p != e; p = &(*p)->next_handing_over)
		;
	if (*p)
		*p = e->next_handing_over;
	e->handing_over = false;
}

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

/* The core and its one session, not yet the event fd. */
static int embedded_core_new(const struct log_sink *log, const char *uri,
			     struct embedded **out, char *errmsg,
			     size_t errlen)
{
	struct embedded *e;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e || !(e->uri = strdup(uri))) {
		free(e);
		return -ENOMEM;
	}
	r = core_new(log, uri, &e->core, errmsg, errlen);
	if (r == 0) {
		r = core_session_new(e->core, NULL, &e->session);
		if (r < 0)
			core_free(e->core);
	}
	if (r < 0) {
		free(e->uri);
		free(e);
		return r;
	}
	*out = e;
	return 0;
}

static void embedded_free(struct embedded *e)
{
	pthread_mutex_lock(&handing_lock);
	if (e->handing_over)
		handing_over_unlink(e);
	pthread_mutex_unlock(&handing_lock);
	core_session_free(e->session);
	core_free(e->core);
	free(e->uri);
	free(e);
}

static int embedded_open(const struct log_sink *log, const char *uri,
			 void **priv, char *errmsg, size_t errlen)
{
	struct embedded *e = NULL;
	int r;

	r = embedded_core_new(log, uri, &e, errmsg, errlen);
	if (r < 0)
		goto fail;
	r = make_event_fd(e);
	if (r < 0) {
		embedded_free(e);
		e = NULL;
		goto fail;
	}
	*priv = e;
	return 0;
fail:
	err(log, "cannot open %s: %s", uri, errmsg[0] ? errmsg : strerror(-r));
	return r;
}

static void embedded_close(void *priv)
{
	struct embedded *e = priv;

	close(e->epoll_fd);
	embedded_free(e);
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

/* ---- the state image (proto/image.h) ---------------------------------- */

_Static_assert(CORE_DIRTY_MAX_RUNS == IMAGE_DIRTY_MAX_RUNS, "dirty runs");

static int put_export(void *arg, struct ioasid_op *op, uint32_t expect_id,
		      const struct core_ioas_counters *c,
		      const struct ioasid_kobj *k,
		      const struct core_dirty_bits *d)
{
	struct image_writer *w = arg;
	int r;

	if (d)
		return image_put_dirty(w, d->ioas_id, d->domain_id, d->runs,
				       d->nr_runs);
	if (c)
		return image_put_counters(w, c->kind, c->ioas_id,
					  c->nr_conversions,
					  c->nr_faults, c->next_file_id);
	if (k) {
		r = image_put_kobj(w, k);
		if (r < 0 || !op)
			return r;
	}
	return image_put_op(w, op, expect_id);
}

static int embedded_export(void *priv, int *memfd, char *errmsg,
			   size_t errlen)
{
	struct embedded *e = priv;
	struct image_session is = { .id = core_session_id(e->session) };
	struct image_writer w;
	struct ioasid_op why;
	bool begun = false, busy;
	struct stat st;
	int r;

	ioasid_op_init(&why, IOASID_CMD_UNSPEC);
	image_writer_init(&w, true);
	r = image_put_core(&w, e->uri);
	if (r == 0)
		r = image_put_session(&w, &is);
	if (r == 0) {
		r = core_session_export(e->session, put_export, &w, &why);
		if (r < 0)
			snprintf(errmsg, errlen, "%s", why.errmsg);
	}
	if (r == 0)
		r = image_put_next_id(&w, core_next_id(e->core));
	pthread_mutex_lock(&handing_lock);
	busy = e->handing_over;
	pthread_mutex_unlock(&handing_lock);
	if (r == 0 && busy) {
		snprintf(errmsg, errlen, "a hand-over of this context is "
			 "already under way (ioasid_ctx_export_abandon() "
			 "gives it up)");
		r = -EBUSY;
	}
	if (r == 0) {
		r = core_handover_begin(e->session, &why);
		if (r < 0)
			snprintf(errmsg, errlen, "%s", why.errmsg);
		begun = r > 0;
		r = r < 0 ? r : 0;
	}
	if (r == 0)
		r = image_writer_finish(&w, memfd);
	if (r == 0 && begun && fstat(*memfd, &st) < 0)
		r = -errno;
	if (r < 0 && !errmsg[0])
		snprintf(errmsg, errlen, "cannot write the state image: %s",
			 strerror(-r));
	if (r < 0 && begun && core_handover_cancel(e->session, &why) < 0) {
		size_t n = strlen(errmsg);

		snprintf(errmsg + n, errlen - n, "; and the context keeps no "
			 "addresses: %s", why.errmsg);
	}
	image_writer_release(&w, r < 0);
	if (r == 0 && begun) {
		e->image_dev = st.st_dev;
		e->image_ino = st.st_ino;
		pthread_mutex_lock(&handing_lock);
		e->handing_over = true;
		e->next_handing_over = handing_over;
		handing_over = e;
		pthread_mutex_unlock(&handing_lock);
	}
	return r;
}

static int refuse(char *msg, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int refuse(char *msg, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_failv(msg, len, err, fmt, ap);
	va_end(ap);
	return -err;
}

/* A DIRTY record's pages into @e's session. */
static int replay_dirty(struct embedded *e, const struct image_rec *rec,
			char *errmsg, size_t errlen)
{
	struct ioasid_iova_range *runs;
	struct image_dirty id;
	struct ioasid_op why;
	int r;

	if (image_dirty(rec, &id, &runs) < 0)
		return refuse(errmsg, errlen, ENOMEM, "out of memory");
	ioasid_op_init(&why, IOASID_CMD_UNSPEC);
	r = core_replay_dirty(e->session, &(struct core_dirty_bits){
		.ioas_id = id.ioas_id, .domain_id = id.domain_id,
		.nr_runs = id.nr_runs, .runs = runs }, &why);
	free(runs);
	if (r < 0)
		snprintf(errmsg, errlen, "record %u: %s", rec->index,
			 why.errmsg);
	return r;
}

/* Replay @img's records into @e's session (@outbuf: PROTO_DECODE_BUF). */
static int replay(struct embedded *e, struct image *img, void *outbuf,
		  char *errmsg, size_t errlen)
{
	struct image_rec rec;
	uint32_t sessions = 0;
	int r = 0;

	while (r == 0 && image_next(img, &rec) > 0) {
		struct ioasid_op op;
		uint32_t expect, id;

		switch (rec.type) {
		case IMAGE_REC_CORE:
		case IMAGE_REC_FD:
			break;
		case IMAGE_REC_SESSION:
			if (sessions++)
				return refuse(errmsg, errlen, EINVAL,
						    "the image holds several "
						    "sessions (ioasidd's)");
			memcpy(&id, rec.payload, sizeof(id));
			core_session_set_id(e->session, id);
			break;
		case IMAGE_REC_OP:
			if (!sessions)
				return refuse(errmsg, errlen, EBADMSG,
						    "record %u: an op before "
						    "any session", rec.index);
			ioasid_op_init(&op, IOASID_CMD_UNSPEC);
			r = image_op(img, &rec, &op, outbuf, &expect, errmsg,
				     errlen);
			if (r == 0)
				r = core_replay(e->session, &op, expect);
			if (r < 0 && !errmsg[0])
				snprintf(errmsg, errlen, "record %u (%s): %s",
					 rec.index, proto_cmd_name(op.cmd),
					 op.errmsg);
			break;
		case IMAGE_REC_COUNTERS: {
			struct core_ioas_counters c = { 0 };
			struct image_counters ic;

			image_counters_of(&rec, &ic);
			c.ioas_id = ic.ioas_id;
			c.kind = ic.kind;
			c.nr_conversions = ic.nr_conversions;
			c.nr_faults = ic.nr_faults;
			c.next_file_id = ic.next_file_id;
			r = core_replay_counters(e->session, &c);
			if (r < 0)
				snprintf(errmsg, errlen, "record %u: %s %u",
					 rec.index, r == -EINVAL ?
					 "a file id counter below a file of "
					 "IOAS" : "counters of an object it "
					 "does not have:", c.ioas_id);
			r = r < 0 ? -EBADMSG : 0;
			break;
		}
		case IMAGE_REC_KOBJ: {
			struct ioasid_kobj k;

			if (!sessions)
				return refuse(errmsg, errlen, EBADMSG,
					      "record %u: a kernel object "
					      "before any session", rec.index);
			ioasid_op_init(&op, IOASID_CMD_UNSPEC);
			r = image_kobj(img, &rec, &k, errmsg, errlen);
			if (r == 0)
				r = core_adopt(e->session, &k, &op);
			if (r < 0 && !errmsg[0])
				snprintf(errmsg, errlen, "record %u: %s",
					 rec.index, op.errmsg);
			break;
		}
		case IMAGE_REC_NEXT_ID:
			memcpy(&id, rec.payload, sizeof(id));
			core_set_next_id(e->core, id);
			break;
		case IMAGE_REC_DIRTY:
			if (!sessions)
				return refuse(errmsg, errlen, EBADMSG,
					      "record %u: dirty pages before "
					      "any session", rec.index);
			r = replay_dirty(e, &rec, errmsg, errlen);
			break;
		default:
			return refuse(errmsg, errlen, EINVAL,
					    "record %u is ioasidd's (type "
					    "0x%x): not a context's image",
					    rec.index, rec.type);
		}
	}
	return r;
}

/* After a replay that adopted kernel objects: say what it could not. */
static void adopted(const struct log_sink *log, struct embedded *e)
{
	struct ioasid_op why;
	int n;

	ioasid_op_init(&why, IOASID_CMD_UNSPEC);
	n = core_adopt_end(e->session, &why);
	if (n > 0)
		warn(log, "import: %d kernel object(s) or mapping(s) made "
		     "again or not taken over: %s", n, why.errmsg);
	else if (n < 0)
		warn(log, "import: %s", why.errmsg);
}

static int embedded_import(const struct log_sink *log, int memfd,
			   void **priv, char *errmsg, size_t errlen)
{
	struct embedded *e = NULL;
	struct image *img;
	void *outbuf;
	int r;

	r = image_read(memfd, &img, errmsg, errlen);
	if (r < 0)
		return r;
	outbuf = malloc(PROTO_DECODE_BUF);
	r = outbuf ? embedded_core_new(log, img->uri, &e, errmsg, errlen) :
		     -ENOMEM;
	if (r == 0) {
		r = replay(e, img, outbuf, errmsg, errlen);
		if (r == 0)
			adopted(log, e);
		if (r == 0)
			r = make_event_fd(e);
		if (r < 0)
			embedded_free(e);
	}
	if (r == 0)
		image_close_fds(img);	/* the core keeps its own */
	image_free(img);
	free(outbuf);
	if (r < 0)
		return r;
	*priv = e;
	return 0;
}

/*
 * The context of this process whose hand-over the image in @memfd began
 * gets its addresses back (vfio-type1); then the image's files close.
 */
int embedded_image_abandon(int memfd, char *errmsg, size_t errlen)
{
	struct embedded *e = NULL;
	struct ioasid_op why;
	struct image *img;
	struct stat st;
	int r = image_read(memfd, &img, errmsg, errlen);

	if (r < 0)
		return r;
	/* held throughout: the context cannot be freed meanwhile */
	pthread_mutex_lock(&handing_lock);
	if (fstat(memfd, &st) == 0)
		for (e = handing_over; e; e = e->next_handing_over)
			if (e->image_dev == st.st_dev &&
			    e->image_ino == st.st_ino)
				break;
	if (e) {
		ioasid_op_init(&why, IOASID_CMD_UNSPEC);
		r = core_handover_cancel(e->session, &why);
		if (r < 0) {
			pthread_mutex_unlock(&handing_lock);
			snprintf(errmsg, errlen, "cannot give the context its "
				 "mappings back: %s", why.errmsg);
			image_free(img);
			return r;
		}
		handing_over_unlink(e);
	}
	pthread_mutex_unlock(&handing_lock);
	image_close_fds(img);
	image_free(img);
	return 0;
}

const struct transport_ops transport_embedded = {
	.name = "embedded",
	.open = embedded_open,
	.close = embedded_close,
	.call = embedded_call,
	.backend_name = embedded_backend_name,
	.event_fd = embedded_event_fd,
	.event_read = embedded_event_read,
	.export_image = embedded_export,
	.import_image = embedded_import,
};
