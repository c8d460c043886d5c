/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One client connection.
 *
 * Life: accept -> SO_PEERCRED/SO_PEERGROUPS -> policy verdict -> a core
 * session with the verdict's limits (or, when denied, no session: the
 * first request is answered with EACCES and the connection closed).
 * Every request is one packet: received with its SCM_RIGHTS descriptors,
 * validated (proto/codec.c), run through core_call() on the session,
 * answered, and its descriptors closed (the core dups what it keeps).
 * A reply may carry one descriptor the command returns (DEVICE_GET_FD):
 * the daemon owns it until the reply is sent (or dropped), then closes
 * its copy.
 *
 * Framing violations (short or mis-sized packets, truncated data or
 * ancillary data) disconnect the client; everything else gets an error
 * reply.  Disconnecting tears the session down (core_session_free()), so
 * no object outlives its client.
 *
 * Events before replies: the events a request caused for its own session
 * are sent ahead of its reply, so when a call returns on the client its
 * events are already queued there, as with an embedded context.
 *
 * Back-pressure: replies and events are sent without blocking.  When the
 * client does not read, what did not fit is queued (at most one reply and
 * the events that precede it), and the client's requests and events are
 * not looked at until it drains: a slow client never stalls the daemon or
 * the other clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netlink/msg.h>

#include "ioasidd.h"
#include "proto/image.h"
#include "proto/codec.h"
#include "util/macros.h"

#define EVENTS_PER_WAKEUP	64
#define MAX_PEER_GROUPS		65536

/* A message the client's socket had no room for yet. */
struct outmsg {
	struct outmsg *next;
	int fd;				/* passed with it (ours); -1 */
	size_t len;
	unsigned char data[];
};

struct client {
	struct server *srv;
	struct client *next, *prev;
	uint64_t id;			/* for messages */
	int fd;
	struct ucred cred;
	/* NULL when the policy denies this peer */
	struct session *session;
	struct session_limits limits;	/* owns its device list */
	char policy_label[64];
	/* The name the client gave in HELLO ("qemu[1234]"), for the log. */
	char name[IOASID_NAME_MAX];
	char hello[IOASID_NAME_MAX];	/* that name, kept for session lists */
	/* its named-session record (SESSION_NAME or _RECLAIM), or NULL */
	struct named *named;
	uint32_t linger_s;		/* what its policy grants */
	struct watch sock_w, ev_w;
	/* messages that did not fit the socket yet, oldest first */
	struct outmsg *out_head, **out_tail;
	bool close_after_send;
	int deny_errno;
	char deny_why[160];
	bool dead;
	uint64_t nr_requests;
	struct fastpath *fastpath;	/* NULL until the client asks */
	struct ring *ring;		/* likewise */
	struct watch ring_w;
};

/* ---- epoll interest ------------------------------------------------------ */

/* Read requests and forward events only while nothing waits to be sent. */
static void rearm(struct client *c)
{
	bool pending = c->out_head != NULL;
	uint32_t sock = pending ? EPOLLOUT : EPOLLIN;

	if (server_watch(c->srv, &c->sock_w, sock) < 0) {
		client_kill(c, "cannot watch the socket");
		return;
	}
	if (c->session &&
	    server_watch(c->srv, &c->ev_w, pending ? 0 : EPOLLIN) < 0)
		client_kill(c, "cannot watch the event queue");
	if (c->ring && c->ring_w.added &&
	    server_watch(c->srv, &c->ring_w, pending ? 0 : EPOLLIN) < 0)
		client_kill(c, "cannot watch the ring's doorbell");
}

/* ---- sending ------------------------------------------------------------- */

/* Takes @fd. */
static void keep_pending(struct client *c, const void *buf, size_t len,
			 int fd)
{
	struct outmsg *m = malloc(sizeof(*m) + len);

	if (!m) {
		close_fd(fd);
		client_kill(c, "out of memory for a pending message");
		return;
	}
	m->next = NULL;
	m->fd = fd;
	m->len = len;
	memcpy(m->data, buf, len);
	if (!c->out_head)
		c->out_tail = &c->out_head;
	*c->out_tail = m;
	c->out_tail = &m->next;
	rearm(c);
}

static void free_pending(struct client *c)
{
	while (c->out_head) {
		struct outmsg *m = c->out_head;

		c->out_head = m->next;
		close_fd(m->fd);
		free(m);
	}
}

static void after_send(struct client *c)
{
	if (c->close_after_send)
		client_kill(c, c->deny_why);
}

/* One packet and, unless @fd is -1, that descriptor as SCM_RIGHTS. */
static ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (fd >= 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Send one packet (with @fd, which it takes) without blocking; keep it
 * when the client is slow.
 */
static void send_packet(struct client *c, const void *buf, size_t len,
			int fd)
{
	ssize_t n;

	if (c->dead) {
		close_fd(fd);
		return;
	}
	if (c->out_head) {		/* keep the order */
		keep_pending(c, buf, len, fd);
		return;
	}
	n = send_with_fd(c->fd, buf, len, fd);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		keep_pending(c, buf, len, fd);
		return;
	}
	close_fd(fd);		/* the client has its own now, or none */
	if (n == (ssize_t)len) {
		after_send(c);
		return;
	}
	if (n < 0 && errno == EMSGSIZE)
		log_err(c->srv, "client %llu: a %zu-byte message does not fit "
			"the socket buffer", (unsigned long long)c->id, len);
	client_kill(c, n < 0 ? strerror(errno) : "short send");
}

/* Takes @fd (-1: none). */
static void send_msg(struct client *c, struct nl_msg *msg, int fd)
{
	const void *buf;
	size_t len;

	buf = proto_msg_data(msg, &len);
	send_packet(c, buf, len, fd);
	nlmsg_free(msg);
}

static void flush_pending(struct client *c)
{
	while (c->out_head) {
		struct outmsg *m = c->out_head;
		ssize_t n = send_with_fd(c->fd, m->data, m->len, m->fd);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n != (ssize_t)m->len) {
			client_kill(c, n < 0 ? strerror(errno) : "short send");
			return;
		}
		c->out_head = m->next;
		close_fd(m->fd);
		free(m);
	}
	rearm(c);
	after_send(c);
}

static void reply_error(struct client *c, uint32_t seq, int err,
			const char *why)
{
	struct nl_msg *msg;

	if (proto_encode_error(seq, err, why, &msg) < 0) {
		client_kill(c, "out of memory for a reply");
		return;
	}
	send_msg(c, msg, -1);
}

/*
 * Send up to @max of the session's queued events as EVENT messages;
 * @queue: also when the socket is full (they then wait in order).
 */
static void forward_events(struct client *c, int max, bool queue)
{
	struct ioasid_event ev;
	struct nl_msg *msg;

	for (int i = 0; i < max; i++) {
		if (c->dead || !c->session || (c->out_head && !queue))
			return;
		/*
		 * A hint, read without the lock: popping an empty queue costs
		 * a read() of the eventfd.  An event queued right after this
		 * (from another thread) makes event_fd readable: not lost.
		 */
		if (!core_session_has_events(c->session))
			return;
		if (core_session_pop_event(c->session, &ev) < 0)
			return;
		if (proto_encode_event(&ev, &msg) < 0) {
			log_warn(c->srv, "client %llu: event dropped: out of "
				 "memory", (unsigned long long)c->id);
			core_session_event_lost(c->session);
			continue;
		}
		send_msg(c, msg, -1);
	}
}

/* ---- commands the daemon answers itself ---------------------------------- */

static int do_hello(struct client *c, struct ioasid_op *op)
{
	if (op->name[0]) {
		snprintf(c->name, sizeof(c->name), "%s", op->name);
		snprintf(c->hello, sizeof(c->hello), "%s", op->name);
		core_session_set_owner(c->session, (uint32_t)c->cred.pid,
				       c->cred.uid, c->name);
		log_info(c->srv, "client %llu is \"%s\"",
			 (unsigned long long)c->id, c->name);
	}
	snprintf(op->name, sizeof(op->name), "%s",
		 core_backend_name(c->srv->core));
	op->out_id = core_session_id(c->session);
	return 0;
}

static int do_session_name(struct client *c, struct ioasid_op *op)
{
	int r;

	if (c->named)
		return op_fail(op, EBUSY, "this session is already named "
			       "\"%s\"", c->name);
	r = sessions_name(c->srv, c->cred.uid, c->linger_s, c->session, op,
			  &c->named);
	if (r < 0)
		return r;
	snprintf(c->name, sizeof(c->name), "%s", op->name);
	journal_session_named(c->srv->journal, c->session, c->name,
			      c->linger_s, op->out);
	kstate_changed(c->srv, c->named, c->cred.gid);
	core_session_set_owner(c->session, (uint32_t)c->cred.pid, c->cred.uid,
			       c->name);
	log_info(c->srv, "client %llu named its session \"%s\" (linger %u s)",
		 (unsigned long long)c->id, c->name, c->linger_s);
	return 0;
}

/*
 * Take over a lingering session: only from a connection whose own
 * session is unnamed and empty, which is then freed.
 */
static int do_session_reclaim(struct client *c, struct ioasid_op *op)
{
	struct core_session_usage u;
	struct session_limits limits;
	struct session *s;
	struct named *n;
	int r;

	if (c->named)
		return op_fail(op, EBUSY, "this connection already holds the "
			       "named session \"%s\"", c->name);
	r = sessions_reclaim_check(c->srv, c->cred.uid, op, &n);
	if (r < 0)
		return r;
	core_session_usage(c->session, &u);
	if (u.nr_ioas || u.nr_devices || u.nr_vms)
		return op_fail(op, ENOTEMPTY, "this connection's own session "
			       "already holds objects (%u IOAS, %u device(s), "
			       "%u VM(s)): reclaim before creating any",
			       u.nr_ioas, u.nr_devices, u.nr_vms);
	r = sessions_take(c->srv, n, op, &s, &limits);
	if (r < 0)
		return r;
	journal_session_token(c->srv->journal, s, op->out);
	if (c->srv->journal)
		journal_test_kill_after_token();
	server_unwatch(c->srv, &c->ev_w);
	/* the old session's view goes; VIEW makes one of the new session */
	fastpath_free(c->fastpath);
	c->fastpath = NULL;
	journal_session_end(c->srv->journal, c->session);
	kstate_end(c->srv, c->session);
	core_session_free(c->session);
	policy_limits_release(&c->limits);
	c->session = s;
	c->limits = limits;
	c->named = n;
	c->linger_s = op->out_bytes > UINT32_MAX ? UINT32_MAX :
		      (uint32_t)op->out_bytes;
	snprintf(c->name, sizeof(c->name), "%s", op->name);
	core_session_set_owner(s, (uint32_t)c->cred.pid, c->cred.uid, c->name);
	c->ev_w = (struct watch){ .kind = WATCH_EVENTS, .client = c,
				  .fd = core_session_event_fd(s) };
	if (server_watch(c->srv, &c->ev_w, c->out_head ? 0 : EPOLLIN) < 0)
		client_kill(c, "cannot watch the event queue");
	kstate_changed(c->srv, c->named, c->cred.gid);	/* its new token */
	if (c->srv->kstate)
		journal_test_kill_after_token();
	return 0;
}

/*
 * The status says who answered, and counts clients: the core also counts
 * the daemon's own embedded session, which is nobody's.
 */
static void fix_status(struct server *srv, struct ioasid_op *op)
{
	struct ioasid_status *st = op->out;
	uint32_t n = 0;

	if (op->out_len < offsetof(struct ioasid_status, nr_ioas))
		return;
	for (struct client *c = srv->clients; c; c = c->next)
		n += c->session != NULL;
	st->flags |= 1;
	st->nr_sessions = n;
}

/* The session's shared view (the reply passes a copy of its memfd). */
static int do_view(struct client *c, struct ioasid_op *op)
{
	char why[IOASID_ERRMSG_MAX];
	int r;

	if (c->srv->no_fastpath)
		return op_fail(op, EOPNOTSUPP, "this ioasidd runs without the "
			       "fast path (--no-fastpath)");
	if (!c->fastpath) {
		r = fastpath_new(c->srv, c->session, &c->limits, &c->fastpath,
				 why, sizeof(why));
		if (r < 0) {
			log_warn(c->srv, "client %llu: no fast path: %s",
				 (unsigned long long)c->id, why);
			return op_fail(op, -r, "no shared view: %s", why);
		}
	}
	op->out_fd = fcntl(fastpath_fd(c->fastpath), F_DUPFD_CLOEXEC, 0);
	if (op->out_fd < 0)
		return op_fail(op, errno, "cannot pass the shared view: %m");
	return 0;
}

/*
 * The session's request ring; op->fd is the client's doorbell, op->fd2
 * the eventfd we write when it waits for a completion.
 */
static int do_ring(struct client *c, struct ioasid_op *op)
{
	char why[IOASID_ERRMSG_MAX];
	int r;

	if (c->srv->no_fastpath)
		return op_fail(op, EOPNOTSUPP, "this ioasidd runs without the "
			       "fast path (--no-fastpath)");
	if (c->ring)
		return op_fail(op, EBUSY, "the session has its ring already");
	r = ring_new(c->srv, op->fd, op->fd2, &c->ring, why, sizeof(why));
	if (r < 0)
		return op_fail(op, -r, "no request ring: %s", why);
	c->ring_w = (struct watch){ .kind = WATCH_RING, .client = c,
				    .fd = ring_doorbell(c->ring) };
	r = server_watch(c->srv, &c->ring_w, EPOLLIN);
	if (r == 0)
		op->out_fd = ring_take_memfd(c->ring);
	if (r < 0) {
		server_unwatch(c->srv, &c->ring_w);
		ring_free(c->ring);
		c->ring = NULL;
		return op_fail(op, -r, "cannot set up the request ring: %s",
			       strerror(-r));
	}
	return 0;
}

static int do_file_register(struct client *c, struct ioasid_op *op)
{
	int r;

	if (!c->ring)
		return op_fail(op, ENOENT, "the session has no request ring");
	r = ring_file_register(c->ring, op->fd, &op->out_id);
	if (r == -ENOSPC)
		return op_fail(op, ENOSPC, "%u files are registered already",
			       RING_MAX_FILES);
	if (r < 0)
		return op_fail(op, -r, "cannot keep the file: %s",
			       strerror(-r));
	return 0;
}

static int run_core(struct client *c, struct ioasid_op *op);

/*
 * A dirty bitmap in the client's memfd (DIRTY_READ, UNMAP with
 * IOASID_UNMAP_GET_DIRTY and FD_INDEX): the core writes into our mapping
 * of it, nothing comes back in the reply.  The memfd must be sealed
 * against shrinking (else a client could make our writes fault) and hold
 * the range's bitmap; it is mapped for this request only.
 */
static int run_with_bitmap_fd(struct client *c, struct ioasid_op *op)
{
	uint64_t need = (op->length / 4096 + 63) / 64 * 8;
	void *saved = op->out;
	struct stat st;
	void *map;
	int seals, r;

	seals = fcntl(op->fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return op_fail(op, EINVAL, "the bitmap descriptor must be a "
			       "memfd sealed against shrinking "
			       "(F_SEAL_SHRINK)");
	if ((fcntl(op->fd, F_GETFL) & O_ACCMODE) != O_RDWR ||
	    (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return op_fail(op, EACCES, "the bitmap memfd must be open "
			       "read-write and not sealed against writes");
	if (fstat(op->fd, &st) < 0)
		return op_fail(op, errno, "cannot stat the bitmap memfd: %m");
	if (!need || need > UINT32_MAX)
		return run_core(c, op);		/* the core says why */
	if ((uint64_t)st.st_size < need)
		return op_fail(op, EMSGSIZE, "the bitmap memfd has %lld bytes; "
			       "the range needs %llu", (long long)st.st_size,
			       (unsigned long long)need);
	map = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, op->fd, 0);
	if (map == MAP_FAILED)
		return op_fail(op, errno, "cannot map the bitmap memfd: %m");
	op->out = map;
	op->out_cap = (uint32_t)need;
	r = run_core(c, op);
	munmap(map, need);
	op->out = saved;
	op->out_len = 0;
	return r;
}

static bool takes_bitmap_fd(const struct ioasid_op *op)
{
	return op->fd >= 0 && (op->cmd == IOASID_CMD_DIRTY_READ ||
			       (op->cmd == IOASID_CMD_UNMAP &&
				(op->flags & IOASID_UNMAP_GET_DIRTY)));
}

static int run_op(struct client *c, struct ioasid_op *op)
{
	const unsigned char *token;

	/* a request after the reclaim: its reply (the new token) arrived */
	token = c->named ? sessions_token_delivered(c->named) : NULL;
	if (token && c->srv->journal)	/* the same token again: delivered */
		journal_session_token(c->srv->journal, c->session, token);
	if (token)			/* stored without the old one */
		kstate_changed(c->srv, c->named, c->cred.gid);
	if (takes_bitmap_fd(op))
		return run_with_bitmap_fd(c, op);

	switch (op->cmd) {
	case IOASID_CMD_HELLO:
		return do_hello(c, op);
	case IOASID_CMD_VIEW:
		return do_view(c, op);
	case IOASID_CMD_RING:
		return do_ring(c, op);
	case IOASID_CMD_FILE_REGISTER:
		return do_file_register(c, op);
	case IOASID_CMD_FILE_UNREGISTER:
		if (!c->ring || ring_file_unregister(c->ring, op->file_id) < 0)
			return op_fail(op, ENOENT, "no registered file %u",
				       op->file_id);
		return 0;
	case IOASID_CMD_MAP_USER:
		return op_fail(op, EOPNOTSUPP, "ioasidd cannot reach the "
			       "memory of process %d: map a memfd or "
			       "guest_memfd with MAP_FILE instead",
			       (int)c->cred.pid);
	case IOASID_CMD_DEVICE_DMA:
	case IOASID_CMD_DEVICE_DMA_PASID:
		if (op->flags & IOASID_DMA_PAGE_WAIT)
			return op_fail(op, EOPNOTSUPP, "a DMA through ioasidd "
				       "does not wait for its page request's "
				       "answer (it would stall every client): "
				       "retry it after -EINPROGRESS");
		break;
	case IOASID_CMD_EVENT_READ:
		return op_fail(op, EOPNOTSUPP, "events arrive as EVENT "
			       "messages; EVENT_READ is for embedded contexts");
	case IOASID_CMD_SESSION_TOKEN:
		return op_fail(op, EOPNOTSUPP, "the library keeps the token; "
			       "ioasidd never sends it again");
	case IOASID_CMD_SESSION_NAME:
		return do_session_name(c, op);
	case IOASID_CMD_SESSION_RECLAIM:
		return do_session_reclaim(c, op);
	case IOASID_CMD_SESSION_LIST:
		return sessions_list(c->srv, c->cred.uid,
				     c->limits.may_observe, c->session, op);
	case IOASID_CMD_SESSION_DROP:
		return sessions_drop(c->srv, c->cred.uid, op);
	case IOASID_CMD_EVENTS_DROPPED:
		core_session_events_dropped(c->session, op->length);
		return 0;
	}
	return run_core(c, op);
}

/* What the core runs: journaled and counted as the session's change. */
static int run_core(struct client *c, struct ioasid_op *op)
{
	struct journal_req jreq;
	int r;

	/* recorded before the reply leaves (journal.c) */
	if (c->srv->journal)
		journal_before(c->srv->journal, op, &jreq);
	r = core_call(c->session, op);
	if (c->srv->journal)
		journal_op(c->srv->journal, c->session, &jreq, op, r);
	/* counted for a client that resumes after a lost connection */
	if (r >= 0 && c->named && proto_cmd_changes_state(op->cmd)) {
		sessions_changed(c->named, op);
		/* iommufd: stored before the reply leaves (kstate.c) */
		kstate_changed(c->srv, c->named, c->cred.gid);
	}
	if (op->cmd == IOASID_CMD_STATUS && r == 0)
		fix_status(c->srv, op);
	return r;
}

/*
 * DAEMON_UPGRADE: root only.  On success the new process has taken this
 * connection over and sends the reply; this one exits in upgrade_start().
 */
static int do_upgrade(struct client *c, struct ioasid_op *op, uint32_t seq)
{
	char binary[4096] = "", why[IOASID_ERRMSG_MAX] = "";
	int r;

	if (c->cred.uid != 0)
		return op_fail(op, EPERM, "only root may upgrade ioasidd "
			       "(uid %u asked)", c->cred.uid);
	if (op->in_len) {
		const char *p = op->in;

		if (op->in_len > sizeof(binary) || p[op->in_len - 1] ||
		    strlen(p) + 1 != op->in_len || !p[0])
			return op_fail(op, EINVAL, "the binary's path must be "
				       "one NUL-ended string under 4096 "
				       "bytes");
		memcpy(binary, p, op->in_len);
	}
	log_info(c->srv, "client %llu asks for an upgrade to %s",
		 (unsigned long long)c->id, binary[0] ? binary :
		 c->srv->self_exe);
	r = upgrade_start(c->srv, binary[0] ? binary : NULL, c, seq, why,
			  sizeof(why));
	return op_fail(op, -r, "%s", why);
}

static void close_fds(int *fds, unsigned int nfds)
{
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
}

/*
 * The descriptor the reply passes (the core's, ours to close after
 * sending); any other the op returned is closed now.
 */
static int reply_fd(struct ioasid_op *op, int result)
{
	int fd = proto_reply_fd(op, result);

	if (fd < 0)
		close_fd(op->out_fd);
	op->out_fd = -1;
	return fd;
}

/*
 * Run a valid request and answer it.  The descriptors that came with it
 * are closed before the reply leaves: the core dups what it keeps, and a
 * client that got its reply sees the daemon's descriptors settled.
 */
static void serve(struct client *c, const struct proto_msg *m, int *fds,
		  unsigned int nfds)
{
	struct fastpath_req req;
	struct ioasid_op op;
	struct nl_msg *msg;
	int r, fd;

	if (!c->session) {
		close_fds(fds, nfds);
		c->close_after_send = true;
		reply_error(c, m->seq, -c->deny_errno, c->deny_why);
		return;
	}
	proto_decode_request(m, fds, &op, c->srv->outbuf);
	/* room for the reply first: without it the request is not run */
	if (proto_reply_prepare(&op, m->seq, &msg) < 0) {
		close_fds(fds, nfds);
		reply_error(c, m->seq, -ENOMEM, "ioasidd is out of memory for "
			    "the reply: the request was not run");
		return;
	}
	fastpath_before(&op, &req);
	if (op.cmd == IOASID_CMD_DAEMON_UPGRADE)
		r = do_upgrade(c, &op, m->seq);	/* returns only on failure */
	else
		r = run_op(c, &op);
	/* the view says what the core says before the reply leaves */
	fastpath_after(c->fastpath, &req, &op, r);
	close_fds(fds, nfds);
	log_dbg(c->srv, "client %llu: %s -> %d%s%s",
		(unsigned long long)c->id, proto_cmd_name(op.cmd), r,
		r < 0 ? ": " : "", r < 0 ? op.errmsg : "");
	/* what the request caused reaches the client before its reply */
	forward_events(c, INT_MAX, true);
	if (proto_reply_finish(msg, &op, r) < 0) {
		nlmsg_free(msg);
		close_fd(op.out_fd);
		client_kill(c, "a reply does not fit the room made for it");
		return;
	}
	/* a token leaves only in the reply: no copy stays in outbuf */
	if (op.cmd == IOASID_CMD_SESSION_NAME ||
	    op.cmd == IOASID_CMD_SESSION_RECLAIM)
		explicit_bzero(c->srv->outbuf, IOASID_SESSION_TOKEN_LEN);
	fd = reply_fd(&op, r);
	send_msg(c, msg, fd);
}

/* ---- receiving ----------------------------------------------------------- */

/* One packet into srv->rxbuf: its length, -EAGAIN, or -1 (killed). */
static ssize_t receive(struct client *c, int *fds, unsigned int *nfds)
{
	union {
		char buf[PROTO_CMSG_SPACE];
		struct cmsghdr align;
	} control;
	struct iovec iov = {
		.iov_base = c->srv->rxbuf, .iov_len = IOASID_MAX_MSG,
	};
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;
	bool ok;

	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -EAGAIN;
	if (n < 0) {
		client_kill(c, strerror(errno));
		return -1;
	}
	ok = proto_collect_fds(&mh, fds, nfds);
	if (n == 0 || !ok || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		close_fds(fds, *nfds);
		client_kill(c, n == 0 ? "disconnected" :
			    (mh.msg_flags & MSG_TRUNC) ?
			    "framing: packet larger than IOASID_MAX_MSG" :
			    "framing: unexpected or too many descriptors");
		return -1;
	}
	return n;
}

static void handle_one(struct client *c)
{
	int fds[IOASID_MAX_FDS];
	unsigned int nfds = 0;
	char why[IOASID_ERRMSG_MAX];
	struct proto_msg m;
	ssize_t n;
	int r;

	n = receive(c, fds, &nfds);
	if (n < 0)
		return;
	c->nr_requests++;
	r = proto_parse(c->srv->rxbuf, (size_t)n, nfds, PROTO_FROM_CLIENT, &m,
			why, sizeof(why));
	if (r == 0) {
		serve(c, &m, fds, nfds);
		return;
	}
	close_fds(fds, nfds);
	if (r == -EBADMSG) {
		char reason[IOASID_ERRMSG_MAX + 16];

		snprintf(reason, sizeof(reason), "framing: %s", why);
		client_kill(c, reason);
		return;
	}
	log_dbg(c->srv, "client %llu: invalid request: %s",
		(unsigned long long)c->id, why);
	reply_error(c, m.seq, r, why);
}

void client_on_socket(struct client *c, uint32_t events)
{
	if (c->dead)
		return;
	if (events & EPOLLERR) {
		client_kill(c, "socket error");
		return;
	}
	if ((events & EPOLLOUT) && c->out_head)
		flush_pending(c);
	if (c->dead)
		return;
	if ((events & EPOLLIN) && !c->out_head)
		handle_one(c);
	else if (events & EPOLLHUP)
		client_kill(c, "disconnected");
}

/* One request from the ring, run as serve() runs the socket's. */
static int ring_run(void *arg, struct ioasid_op *op)
{
	struct client *c = arg;
	struct fastpath_req req;
	int r;

	c->nr_requests++;
	fastpath_before(op, &req);
	r = run_op(c, op);
	fastpath_after(c->fastpath, &req, op, r);
	log_dbg(c->srv, "client %llu: ring %s -> %d%s%s",
		(unsigned long long)c->id, proto_cmd_name(op->cmd), r,
		r < 0 ? ": " : "", r < 0 ? op->errmsg : "");
	/* its events reach the socket before its completion the ring */
	forward_events(c, INT_MAX, true);
	return r;
}

static bool ring_stop(void *arg)
{
	struct client *c = arg;

	return c->dead || c->out_head;
}

/* The client rang its doorbell. */
void client_on_ring(struct client *c)
{
	if (ring_stop(c) || !c->ring)
		return;
	if (ring_serve(c->ring, ring_run, ring_stop, c) == -EPROTO) {
		log_warn(c->srv, "client %llu broke its request ring: it is "
			 "served over the socket only", (unsigned long long)c->id);
		server_unwatch(c->srv, &c->ring_w);
	}
}

/* The session's event_fd is readable: events nobody's request caused. */
void client_on_events(struct client *c)
{
	forward_events(c, EVENTS_PER_WAKEUP, false);
}

/* ---- life cycle ---------------------------------------------------------- */

/* Supplementary groups of the peer as they were at connect(). */
static int peer_groups(int fd, gid_t **groups, size_t *nr)
{
	socklen_t len = 0;
	gid_t *g;

	*groups = NULL;
	*nr = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, NULL, &len) == 0)
		return 0;
	if (errno != ERANGE || len > MAX_PEER_GROUPS * sizeof(gid_t))
		return -errno;
	g = malloc(len ? len : 1);
	if (!g)
		return -ENOMEM;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		free(g);
		return -errno;
	}
	*groups = g;
	*nr = len / sizeof(gid_t);
	return 0;
}

int server_session_limits(struct server *srv, const struct policy_result *res,
			  struct session_limits *limits)
{
	struct core *core = srv->core;
	uint32_t n = core_nr_devices(core);
	const char **names;
	int r;

	names = calloc(n + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		names[i] = core_device_name(core, i);
	r = policy_session_limits(res, names, n, limits);
	free(names);
	return r;
}

static int open_session(struct client *c, const struct policy_result *res,
			const gid_t *groups, size_t nr_groups)
{
	int r = server_session_limits(c->srv, res, &c->limits);

	if (r < 0)
		return r;
	r = core_session_new(c->srv->core, &c->limits, &c->session);
	if (r < 0)
		return r;
	journal_session_open(c->srv->journal, c->session, c->cred.uid,
			     c->cred.gid, groups, nr_groups);
	/* its name comes with HELLO */
	core_session_set_owner(c->session, (uint32_t)c->cred.pid,
			       c->cred.uid, "");
	c->ev_w = (struct watch){ .kind = WATCH_EVENTS, .client = c,
				  .fd = core_session_event_fd(c->session) };
	return server_watch(c->srv, &c->ev_w, EPOLLIN);
}

/* The client's first request gets ENOMEM, then the connection closes. */
static int deny_for_memory(struct client *c, const char *what)
{
	c->deny_errno = ENOMEM;
	snprintf(c->deny_why, sizeof(c->deny_why), "ioasidd is out of memory "
		 "for %s", what);
	return 0;
}

static int judge(struct client *c)
{
	struct policy_result res;
	gid_t *groups;
	size_t nr;
	int r;

	r = peer_groups(c->fd, &groups, &nr);
	if (r == -ENOMEM)
		return deny_for_memory(c, "the client's groups");
	if (r < 0)
		return r;
	policy_lookup(c->srv->policy, c->cred.uid, c->cred.gid, groups, nr,
		      &res);
	snprintf(c->policy_label, sizeof(c->policy_label), "%s", res.label);
	c->linger_s = (uint32_t)res.lim.linger;
	if (res.allow) {
		r = open_session(c, &res, groups, nr);
		free(groups);
		return r == -ENOMEM && !c->session ?
		       deny_for_memory(c, "a new session") : r;
	}
	free(groups);
	c->deny_errno = EACCES;
	snprintf(c->deny_why, sizeof(c->deny_why), "uid %u is not allowed "
		 "to use ioasidd (policy section [%s])", c->cred.uid,
		 res.label);
	return 0;
}

/* Into the server's list of clients. */
static void client_link(struct server *srv, struct client *c)
{
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	srv->nr_clients++;
}

/* Takes @fd: on failure it is closed. */
int client_new(struct server *srv, int fd, struct client **out)
{
	struct client *c = calloc(1, sizeof(*c));
	socklen_t len = sizeof(c->cred);
	int sndbuf = 2 * IOASID_MAX_MSG;
	int r;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->srv = srv;
	c->fd = fd;
	c->id = ++srv->nr_accepted;
	c->sock_w = (struct watch){ .kind = WATCH_CLIENT, .client = c,
				    .fd = fd };
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		r = -errno;
		client_free(c);
		return r;
	}
	/* one reply may be IOASID_MAX_MSG: above the default limit */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
		log_warn(srv, "cannot raise SO_SNDBUF: %m");
	r = judge(c);
	if (r == 0)
		r = server_watch(srv, &c->sock_w, EPOLLIN);
	if (r < 0) {
		server_unwatch(srv, &c->sock_w);
		server_unwatch(srv, &c->ev_w);
		client_free(c);
		return r;
	}
	client_link(srv, c);
	if (c->session)
		log_info(srv, "client %llu: pid %d uid %u gid %u, policy [%s], "
			 "session %u", (unsigned long long)c->id,
			 (int)c->cred.pid, c->cred.uid, c->cred.gid,
			 c->policy_label, core_session_id(c->session));
	else
		log_info(srv, "client %llu: pid %d uid %u gid %u, policy [%s]: "
			 "denied", (unsigned long long)c->id, (int)c->cred.pid,
			 c->cred.uid, c->cred.gid, c->policy_label);
	*out = c;
	return 0;
}

/* ---- live upgrade (upgrade.c) -------------------------------------------- */

/* IMAGE_REC_DAEMON_CLIENT: one connection. */
struct client_image {
	uint64_t id, nr_requests;
	uint32_t fd;			/* FD record index of its socket */
	uint32_t session_id;		/* 0: the policy denied it */
	uint32_t linger_s;
	int32_t deny_errno;
	uint32_t close_after_send;
	uint32_t has_ring;
	char name[IOASID_NAME_MAX];
	char hello[IOASID_NAME_MAX];
	char policy_label[64];
	char deny_why[160];
	struct ring_image ring;
};

/* IMAGE_REC_DAEMON_PENDING: a message not sent yet; then its bytes. */
struct pending_image {
	uint64_t client_id;
	int32_t fd;			/* FD record index, -1 */
	uint32_t reserved;
};

void clients_quiesce(struct server *srv)
{
	for (struct client *c = srv->clients; c; c = c->next) {
		if (c->out_head)
			flush_pending(c);
		forward_events(c, INT_MAX, true);
	}
}

void clients_retire_views(struct server *srv)
{
	for (struct client *c = srv->clients; c; c = c->next)
		if (c->fastpath)
			fastpath_retire(c->fastpath);
}

static int export_pending(struct image_writer *w, const struct client *c)
{
	for (const struct outmsg *m = c->out_head; m; m = m->next) {
		struct pending_image pi = { .client_id = c->id, .fd = -1 };
		size_t len = sizeof(pi) + m->len;
		unsigned char *buf;
		uint32_t idx;
		int r = 0;

		if (m->fd >= 0) {
			r = image_put_fd(w, m->fd, &idx);
			pi.fd = (int32_t)idx;
		}
		buf = r == 0 ? malloc(len) : NULL;
		if (!buf)
			return r < 0 ? r : -ENOMEM;
		memcpy(buf, &pi, sizeof(pi));
		memcpy(buf + sizeof(pi), m->data, m->len);
		r = image_put(w, IMAGE_REC_DAEMON_PENDING, buf, (uint32_t)len);
		free(buf);
		if (r < 0)
			return r;
	}
	return 0;
}

int clients_export(struct server *srv, struct image_writer *w)
{
	int r = 0;

	for (struct client *c = srv->clients; c && r == 0; c = c->next) {
		struct client_image ci = {
			.id = c->id,
			.nr_requests = c->nr_requests,
			.session_id = c->session ?
				      core_session_id(c->session) : 0,
			.linger_s = c->linger_s,
			.deny_errno = c->deny_errno,
			.close_after_send = c->close_after_send,
			.has_ring = c->ring != NULL,
		};

		if (c->dead)
			continue;
		snprintf(ci.name, sizeof(ci.name), "%s", c->name);
		snprintf(ci.hello, sizeof(ci.hello), "%s", c->hello);
		snprintf(ci.policy_label, sizeof(ci.policy_label), "%s",
			 c->policy_label);
		snprintf(ci.deny_why, sizeof(ci.deny_why), "%s", c->deny_why);
		r = image_put_fd(w, c->fd, &ci.fd);
		if (r == 0 && c->ring)
			r = ring_export(c->ring, w, &ci.ring);
		if (r == 0)
			r = image_put(w, IMAGE_REC_DAEMON_CLIENT, &ci,
				      sizeof(ci));
		if (r == 0)
			r = export_pending(w, c);
	}
	return r;
}

/* The session limits the policy gives the peer of @fd now. */
static int adopt_judge(struct client *c)
{
	socklen_t len = sizeof(c->cred);
	struct policy_result res;
	gid_t *groups;
	size_t nr;
	int r;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0)
		return -errno;
	r = peer_groups(c->fd, &groups, &nr);
	if (r < 0)
		return r;
	policy_lookup(c->srv->policy, c->cred.uid, c->cred.gid, groups, nr,
		      &res);
	r = open_session(c, &res, groups, nr);
	free(groups);
	return r;
}

static int adopt_one(struct server *srv, const struct client_image *ci,
		     image_take_fn take, void *arg, char *why, size_t whylen)
{
	struct client *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->srv = srv;
	c->id = ci->id;
	c->nr_requests = ci->nr_requests;
	c->linger_s = ci->linger_s;
	c->deny_errno = ci->deny_errno;
	c->close_after_send = ci->close_after_send;
	memcpy(c->name, ci->name, sizeof(c->name));
	memcpy(c->hello, ci->hello, sizeof(c->hello));
	memcpy(c->policy_label, ci->policy_label, sizeof(c->policy_label));
	memcpy(c->deny_why, ci->deny_why, sizeof(c->deny_why));
	c->name[sizeof(c->name) - 1] = c->hello[sizeof(c->hello) - 1] = '\0';
	c->policy_label[sizeof(c->policy_label) - 1] = '\0';
	c->deny_why[sizeof(c->deny_why) - 1] = '\0';
	c->fd = take(arg, ci->fd);
	c->sock_w = (struct watch){ .kind = WATCH_CLIENT, .client = c,
				    .fd = c->fd };
	r = c->fd < 0 ? c->fd : 0;
	if (r == 0 && ci->session_id) {
		r = adopt_judge(c);
		if (r == 0) {
			core_session_set_id(c->session, ci->session_id);
			core_session_set_owner(c->session,
					       (uint32_t)c->cred.pid,
					       c->cred.uid, c->name);
		}
	} else if (r == 0) {
		socklen_t len = sizeof(c->cred);

		r = getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &c->cred,
			       &len) < 0 ? -errno : 0;
	}
	if (r == 0 && ci->has_ring) {
		r = ring_adopt(srv, &ci->ring, take, arg, &c->ring);
		if (r == 0) {
			c->ring_w = (struct watch){ .kind = WATCH_RING,
						    .client = c,
						    .fd = ring_doorbell(c->ring) };
			r = server_watch(srv, &c->ring_w, EPOLLIN);
		}
	}
	if (r == 0)
		r = server_watch(srv, &c->sock_w, EPOLLIN);
	if (r < 0) {
		snprintf(why, whylen, "cannot take over client %llu: %s",
			 (unsigned long long)ci->id, strerror(-r));
		server_unwatch(srv, &c->sock_w);
		server_unwatch(srv, &c->ev_w);
		server_unwatch(srv, &c->ring_w);
		client_free(c);
		return r;
	}
	client_link(srv, c);
	if (c->id > srv->nr_accepted)
		srv->nr_accepted = c->id;
	return 0;
}

static struct client *find_client(struct server *srv, uint64_t id)
{
	for (struct client *c = srv->clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static int adopt_pending(struct server *srv, const struct image *img,
			 const struct image_rec *rec, image_take_fn take,
			 void *arg)
{
	struct pending_image pi;
	struct client *c;
	int fd = -1;

	if (rec->len <= sizeof(pi))
		return -EBADMSG;
	memcpy(&pi, rec->payload, sizeof(pi));
	c = find_client(srv, pi.client_id);
	if (!c || pi.reserved)
		return -EBADMSG;
	if (pi.fd >= 0 && (fd = take(arg, (uint32_t)pi.fd)) < 0)
		return fd;
	keep_pending(c, (const unsigned char *)rec->payload + sizeof(pi),
		     rec->len - sizeof(pi), fd);
	(void)img;
	return 0;
}

int clients_adopt(struct server *srv, struct image *img, image_take_fn take,
		  void *arg, char *why, size_t whylen)
{
	struct image_rec rec;
	int r = 0;

	image_rewind(img);
	while (r == 0 && image_next(img, &rec) > 0) {
		struct client_image ci;

		if (rec.type == IMAGE_REC_DAEMON_CLIENT) {
			if (rec.len != sizeof(ci)) {
				snprintf(why, whylen, "record %u: a client of "
					 "%u bytes", rec.index, rec.len);
				return -EBADMSG;
			}
			memcpy(&ci, rec.payload, sizeof(ci));
			r = adopt_one(srv, &ci, take, arg, why, whylen);
		} else if (rec.type == IMAGE_REC_DAEMON_PENDING) {
			r = adopt_pending(srv, img, &rec, take, arg);
			if (r < 0)
				snprintf(why, whylen, "record %u: a pending "
					 "message that names no client",
					 rec.index);
		}
	}
	return r;
}

uint64_t client_id(const struct client *c)
{
	return c->id;
}

void clients_for_each_session(struct server *srv,
			      void (*fn)(void *arg, struct session *s),
			      void *arg)
{
	for (struct client *c = srv->clients; c; c = c->next)
		if (c->session && !c->dead)
			fn(arg, c->session);
}

struct session *clients_find_session(struct server *srv, uint32_t id)
{
	for (struct client *c = srv->clients; c; c = c->next)
		if (c->session && core_session_id(c->session) == id)
			return c->session;
	return NULL;
}

void client_set_named(struct server *srv, struct session *s, struct named *n)
{
	for (struct client *c = srv->clients; c; c = c->next)
		if (c->session == s)
			c->named = n;
}

void client_send_upgrade_reply(struct server *srv, uint64_t client_id,
			       uint32_t seq)
{
	struct client *c = find_client(srv, client_id);
	struct ioasid_op op;
	struct nl_msg *msg;

	if (!c)
		return;		/* it went away meanwhile */
	ioasid_op_init(&op, IOASID_CMD_DAEMON_UPGRADE);
	op.out_id = (uint32_t)getpid();
	if (proto_encode_reply(&op, 0, seq, &msg) < 0) {
		client_kill(c, "out of memory for a reply");
		return;
	}
	send_msg(c, msg, -1);
}

void client_who(const struct client *c, struct client_who *w)
{
	w->session = c->session;
	w->named = c->named;
	w->uid = c->cred.uid;
	w->pid = (uint32_t)c->cred.pid;
	w->hello = c->hello;
	w->next = c->next;
}

void client_kill(struct client *c, const char *why)
{
	struct server *srv = c->srv;

	if (c->dead)
		return;
	c->dead = true;
	log_info(srv, "client %llu%s%s%s gone after %llu request(s): %s",
		 (unsigned long long)c->id, c->name[0] ? " (" : "", c->name,
		 c->name[0] ? ")" : "", (unsigned long long)c->nr_requests,
		 why);
	server_unwatch(srv, &c->sock_w);
	server_unwatch(srv, &c->ev_w);
	server_unwatch(srv, &c->ring_w);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nr_clients--;
	/* freed after the current epoll batch, which may still name it */
	c->next = srv->dead;
	c->prev = NULL;
	srv->dead = c;
}

bool clients_reap(struct server *srv)
{
	bool any = srv->dead != NULL;

	while (srv->dead) {
		struct client *c = srv->dead;

		srv->dead = c->next;
		client_free(c);
	}
	return any;
}

void client_free(struct client *c)
{
	/* the ring and view are the connection's; a named session may linger */
	if (c->ring)
		ring_break_now(c->ring);	/* a waiting client wakes */
	ring_free(c->ring);
	fastpath_free(c->fastpath);
	if (c->named && c->session &&
	    sessions_disconnected(c->srv, c->named, &c->limits))
		c->session = NULL;
	if (c->session) {
		journal_session_end(c->srv->journal, c->session);
		kstate_end(c->srv, c->session);
		core_session_free(c->session);
	}
	policy_limits_release(&c->limits);
	close_fd(c->fd);
	free_pending(c);
	free(c);
}
