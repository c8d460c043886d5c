/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Remote transport: the core lives in ioasidd, reached over an AF_UNIX
 * SOCK_SEQPACKET socket ("unix:PATH", or "unix:@NAME" for an abstract
 * socket).  Each op becomes one request message (proto/codec.c) with its
 * descriptors as SCM_RIGHTS; the reply is decoded back into the op, so the
 * public API cannot tell this transport from the embedded one.
 *
 * The fast path: lookups and mapping walks are answered from the
 * session's shared view (proto/view.h) when the daemon gives one: asked
 * for at the first lookup (IOASID_CMD_VIEW), mapped read-only once its
 * seals say it cannot shrink, read without a lock.  Whatever the view
 * cannot say (an IOAS it has no slot for, a writer that kept it busy) is
 * asked over the socket as before; a view found inconsistent is dropped
 * for good.
 *
 * The request ring (proto/ring.h): maps, unmaps and single-range
 * conversions go through the session's ring once the daemon gave one
 * (asked for at the first of them, IOASID_CMD_RING with our doorbell
 * eventfd and one it writes when we wait): the request is written into
 * the ring, the doorbell rung only if the daemon sleeps, and the
 * completion awaited spinning (yielding) for up to RING_CLIENT_SPIN_NS,
 * then in poll() on that eventfd and the socket.  A map names its file
 * by the number the daemon gave it (IOASID_CMD_FILE_REGISTER, once per
 * file: the descriptor's device, inode and access mode are checked at
 * every call, so a descriptor number reused for another file registers
 * that one).  Anything else, and whatever the ring cannot carry, goes
 * over the socket.  IOASID_NO_FASTPATH=1 in the environment: neither the
 * view nor the ring is asked for.
 *
 * Resuming (libioasid(3), RESUMING): a context of a named session counts
 * the session's changes as ioasidd does; when a call finds the connection
 * lost it dials again for up to $IOASID_RECONNECT seconds, reclaims the
 * session and, by comparing the counts, returns the recorded result of
 * the call in flight or sends it again (resume()).
 *
 * Threads: one request is in flight per context (r->lock); the daemon
 * serves a client's requests in order anyway.
 *
 * Descriptors from the daemon: only a successful reply to a command that
 * returns one (DEVICE_GET_FD) may carry one, named by OUT_FD_INDEX; it
 * becomes op->out_fd.  Anything else - a descriptor with an event, with
 * another reply, unnamed, more than one, or truncated ancillary data
 * (MSG_CTRUNC) - is closed at once and breaks the connection (-EPROTO):
 * the daemon no longer speaks the protocol.
 *
 * Events: the daemon sends IOASID_CMD_EVENT messages whenever the
 * session has some, interleaved with replies.  Whatever reads the socket
 * (a call waiting for its reply, or event_read()) queues them here.  The
 * descriptor handed out by event_fd() is an epoll set of the socket and
 * an eventfd that is readable while the local queue is not empty: it
 * polls readable both for queued events and for events still in the
 * socket (it may also wake while another thread waits for a reply;
 * event_read() then says -EAGAIN).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <netlink/msg.h>

#include "proto/codec.h"
#include "proto/ring.h"
#include "proto/view.h"
#include "transport/kvm_client.h"
#include "transport/transport.h"
#include "util/log.h"
#include "util/macros.h"
#include "util/tokenfile.h"

#define EVENT_QUEUE_LEN	1024
#define RING_CLIENT_FILES	32	/* the daemon keeps 64 */

struct remote {
	const struct log_sink *log;	/* the context's */
	char *open_err;			/* while opening: why it failed */
	size_t open_errlen;
	pthread_mutex_t lock;		/* one request at a time */
	int sock;
	int event_efd;			/* -1 until event_fd() */
	int event_epfd;
	uint32_t seq;
	bool broken;			/* framing lost or daemon gone */
	char broken_why[128];
	char backend[IOASID_NAME_MAX];
	uint32_t session_id;
	/* a named session's reclaim token (SESSION_NAME, _RECLAIM) */
	bool named;
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
	/*
	 * Resuming a named session after a lost connection: where to dial,
	 * its name, for how long (0: never), and the changes ioasidd
	 * recorded for it as we count them (known: the daemon told us at
	 * the last name or reclaim).  inflight: a request went out whose
	 * answer has not come.
	 */
	char path[108];
	char sess_name[IOASID_NAME_MAX];
	uint32_t reconnect_ms;
	/* the URI's token-file=: rewritten with each token a resume gets */
	char *token_file;
	bool resume_known;
	uint64_t changes;
	bool inflight;
	struct ioasid_event *events;	/* ring */
	uint32_t ev_head, ev_len;
	uint64_t ev_dropped;
	uint64_t ev_reported;		/* of them, told to ioasidd */
	bool no_report;			/* ioasidd does not take the count */
	unsigned char *rxbuf;		/* IOASID_MAX_MSG */
	struct kvm_client kvm;		/* KVM's side, done in this process */
	/* the fast path: r->view is NULL, or &r->view_r once mapped */
	bool no_fastpath;
	bool view_tried;		/* asked once (atomic) */
	const struct view_reader *view;	/* atomic */
	struct view_reader view_r;
	void *view_map;
	size_t view_len;
	uint32_t view_hint;		/* atomic, any value is safe */
	/* the request ring (r->lock): on once mapped */
	bool ring_tried, ring_on;
	struct ring_producer ring;
	void *ring_map;
	int ring_bell;			/* our doorbell eventfd */
	int ring_done;			/* the daemon's: completions */
	uint64_t ring_seq;
	struct ring_file {
		int fd;			/* -1: free */
		dev_t dev;
		ino_t ino;
		int mode;		/* O_ACCMODE */
		uint32_t id;		/* the daemon's number */
		uint64_t used;
	} files[RING_CLIENT_FILES];
	uint64_t files_clock;
	/* dirty bitmaps over one message (r->lock): bitmap_shared() */
	int bm_fd;
	void *bm_map;
	size_t bm_size;
};

/* The bitmap memfd grows in steps of this (a 32 GiB guest's bitmap). */
#define BITMAP_MEMFD_ROUND	((size_t)1 << 20)


/* A view larger than this is not mapped (the daemon's are far smaller). */
#define VIEW_MAP_MAX	((size_t)1 << 32)

/* ---- the connection ------------------------------------------------------ */

static void mark_broken(struct remote *r, const char *why)
{
	if (r->broken)
		return;
	r->broken = true;
	snprintf(r->broken_why, sizeof(r->broken_why), "%s", why);
	err(r->log, "connection to ioasidd lost: %s", why);
}

static int send_packet(int sock, const void *buf, size_t len, const int *fds,
		       unsigned int nfds)
{
	union {
		char buf[PROTO_CMSG_SPACE];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EMSGSIZE;
}

static void close_fds(int *fds, unsigned int nfds)
{
	for (unsigned int i = 0; i < nfds; i++)
		close_fd(fds[i]);
}

/*
 * Receive and validate one message from the daemon into @m, with the
 * descriptors it named in @fds (the caller owns them: *@nfds of them).
 * Returns 0, -EAGAIN (non-blocking and nothing there) or another negative
 * errno after which the connection is unusable (reason in r->broken_why;
 * no descriptor left open).
 */
static int recv_one(struct remote *r, bool block, struct proto_msg *m,
		    int *fds, unsigned int *nfds)
{
	union {
		char buf[PROTO_CMSG_SPACE];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = r->rxbuf, .iov_len = IOASID_MAX_MSG };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	char why[IOASID_ERRMSG_MAX];
	ssize_t n;
	int ret;

	*nfds = 0;
	do {
		n = recvmsg(r->sock, &mh, MSG_CMSG_CLOEXEC |
			    (block ? 0 : MSG_DONTWAIT));
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (n <= 0) {
		ret = n < 0 ? -errno : -ECONNRESET;
		snprintf(why, sizeof(why), "%s", n < 0 ? strerror(errno) :
			 "ioasidd closed the connection");
		mark_broken(r, why);
		return ret;
	}
	if (!proto_collect_fds(&mh, fds, nfds) ||
	    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		close_fds(fds, *nfds);
		*nfds = 0;
		mark_broken(r, mh.msg_flags & MSG_TRUNC ? "truncated message" :
			    "unexpected ancillary data or too many "
			    "descriptors");
		return -EPROTO;
	}
	ret = proto_parse(r->rxbuf, (size_t)n, *nfds, PROTO_FROM_DAEMON, m,
			  why, sizeof(why));
	if (ret < 0) {
		close_fds(fds, *nfds);
		*nfds = 0;
		mark_broken(r, why);
		return -EPROTO;
	}
	return 0;
}

/* ---- the local event queue ----------------------------------------------- */

static void queue_event(struct remote *r, const struct proto_msg *m)
{
	struct ioasid_event ev;
	uint64_t one = 1;

	if (proto_decode_event(m, &ev) < 0) {
		warn(r->log, "dropping a malformed event from ioasidd");
		return;
	}
	if (r->ev_len == EVENT_QUEUE_LEN) {
		if (r->ev_dropped++ == 0)
			warn(r->log, "event queue full: dropping events until "
			     "ioasid_event_read() catches up");
		return;
	}
	r->events[(r->ev_head + r->ev_len) % EVENT_QUEUE_LEN] = ev;
	if (r->ev_len++ == 0 && r->event_efd >= 0 &&
	    write(r->event_efd, &one, sizeof(one)) < 0)
		warn(r->log, "cannot signal the event fd: %m");
}

static int pop_event(struct remote *r, struct ioasid_event *ev)
{
	uint64_t count;

	if (!r->ev_len)
		return -EAGAIN;
	*ev = r->events[r->ev_head];
	r->ev_head = (r->ev_head + 1) % EVENT_QUEUE_LEN;
	/* keep the eventfd readable exactly while events are queued */
	if (--r->ev_len == 0 && r->event_efd >= 0 &&
	    read(r->event_efd, &count, sizeof(count)) < 0)
		count = 0;
	return 0;
}

/* Queue every event already in the socket (no request in flight). */
static void drain_events(struct remote *r)
{
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	struct proto_msg m;

	while (!r->broken && recv_one(r, false, &m, fds, &nfds) == 0) {
		/* events name no descriptor (proto_parse), replies may */
		close_fds(fds, nfds);
		if (m.cmd != IOASID_CMD_EVENT) {
			mark_broken(r, "reply without a request");
			break;
		}
		queue_event(r, &m);
	}
}

/* ---- requests ------------------------------------------------------------ */

static uint32_t next_seq(struct remote *r)
{
	if (++r->seq == 0)	/* 0 marks events */
		++r->seq;
	return r->seq;
}

static int send_request(struct remote *r, struct ioasid_op *op, uint32_t seq)
{
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	struct nl_msg *msg;
	const void *buf;
	size_t len;
	int ret;

	ret = proto_encode_request(op, seq, &msg, fds, &nfds);
	if (ret < 0)
		return ret;
	buf = proto_msg_data(msg, &len);
	ret = send_packet(r->sock, buf, len, fds, nfds);
	nlmsg_free(msg);
	if (ret == -EBADF)
		return op_fail(op, EBADF, "a descriptor passed to %s is not "
			       "open", proto_cmd_name(op->cmd));
	if (ret == -EMSGSIZE)
		return op_fail(op, EMSGSIZE, "a %zu-byte %s message does not "
			       "fit the socket buffer", len,
			       proto_cmd_name(op->cmd));
	if (ret < 0) {
		mark_broken(r, strerror(-ret));
		return op_fail(op, ECONNRESET, "connection to ioasidd lost: %s",
			       strerror(-ret));
	}
	return 0;
}

/* Decode the reply; the descriptor it names goes to op->out_fd. */
static int take_reply(struct remote *r, const struct proto_msg *m,
		      int *fds, unsigned int nfds, struct ioasid_op *op)
{
	int ret;

	if (proto_decode_reply(m, fds, op, &ret) < 0) {
		close_fds(fds, nfds);
		mark_broken(r, op->errmsg);
		return -EPROTO;
	}
	for (unsigned int i = 0; i < nfds; i++)
		if (fds[i] != op->out_fd)
			close(fds[i]);
	return ret;
}

/* Wait for the reply to @seq, queueing the events that come first. */
static int wait_reply(struct remote *r, struct ioasid_op *op, uint32_t seq)
{
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	struct proto_msg m;
	int ret;

	for (;;) {
		ret = recv_one(r, true, &m, fds, &nfds);
		if (ret < 0)
			return op_fail(op, ret == -EPROTO ? EPROTO : ECONNRESET,
				       "connection to ioasidd lost: %s",
				       r->broken_why);
		if (m.cmd == IOASID_CMD_EVENT) {
			close_fds(fds, nfds);	/* none: proto_parse */
			queue_event(r, &m);
			continue;
		}
		if (m.seq != seq) {
			close_fds(fds, nfds);
			mark_broken(r, "reply to a request never sent");
			return op_fail(op, EPROTO, "ioasidd replied out of "
				       "order (seq %u, expected %u)", m.seq,
				       seq);
		}
		return take_reply(r, &m, fds, nfds, op);
	}
}

/*
 * Tell ioasidd how many events this process's own queue dropped since
 * the last time, so that the session's events_lost -- what observers'
 * session lists and metrics show -- counts them too; before the next
 * request, when the reader catches up, and at the end.  A daemon that
 * does not take the count is not asked again.  r->lock held.
 */
static void report_dropped(struct remote *r)
{
	uint64_t n = r->ev_dropped - r->ev_reported;
	struct ioasid_op op;
	uint32_t seq;

	if (!n || r->broken || r->no_report)
		return;
	ioasid_op_init(&op, IOASID_CMD_EVENTS_DROPPED);
	op.length = n;
	seq = next_seq(r);
	if (send_request(r, &op, seq) < 0)
		return;
	if (wait_reply(r, &op, seq) == 0)
		r->ev_reported += n;
	else if (!r->broken)
		r->no_report = true;
}

/* One request and its reply; r->lock held. */
static int roundtrip(struct remote *r, struct ioasid_op *op)
{
	uint32_t seq;
	int ret;

	if (r->broken)
		return op_fail(op, ECONNRESET, "connection to ioasidd lost: %s",
			       r->broken_why);
	report_dropped(r);
	seq = next_seq(r);
	ret = send_request(r, op, seq);
	if (ret < 0)
		return ret;
	r->inflight = true;
	ret = wait_reply(r, op, seq);
	if (r->broken)
		return ret;
	r->inflight = false;
	if (ret >= 0 && proto_cmd_changes_state(op->cmd))
		r->changes++;
	return ret;
}

static int resume(struct remote *r, struct ioasid_op *op);

/* A named session's context gets its session back, when it can. */
static bool resumable(const struct remote *r)
{
	return r->broken && r->named && r->resume_known && r->reconnect_ms;
}

static int locked_roundtrip(struct remote *r, struct ioasid_op *op)
{
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = roundtrip(r, op);
	if (ret == -ECONNRESET && resumable(r))
		ret = resume(r, op);
	pthread_mutex_unlock(&r->lock);
	/* the daemon saw a smaller buffer than the caller has: say why */
	if (ret == -EMSGSIZE && op->out_cap > PROTO_MAX_PAYLOAD &&
	    op->out_len > PROTO_MAX_PAYLOAD && op->out_len <= op->out_cap)
		op_fail(op, EMSGSIZE, "the result (%u bytes) is larger than "
			"one ioasidd message carries (%u bytes)", op->out_len,
			(unsigned int)PROTO_MAX_PAYLOAD);
	return ret;
}

/*
 * Device DMA larger than one message: one request per chunk, transparently.
 * The result is the bytes done in total; it stops at the first failure or
 * short transfer, as a single DMA would.
 */
static int dma_chunked(struct remote *r, struct ioasid_op *op)
{
	uint64_t done = 0;
	int ret = 0;

	if (op->iova + op->length < op->iova)
		return op_fail(op, EOVERFLOW, "iova + length overflows");
	while (done < op->length) {
		uint32_t n = (uint32_t)min_t(uint64_t, op->length - done,
					     PROTO_DMA_CHUNK);
		struct ioasid_op sub = *op;

		sub.iova = op->iova + done;
		sub.length = n;
		sub.in = op->in_len ? (const char *)op->in + done : NULL;
		sub.in_len = op->in_len > done ?
			min_t(uint32_t, op->in_len - (uint32_t)done, n) : 0;
		sub.out = op->out_cap ? (char *)op->out + done : op->out;
		sub.out_cap = op->out_cap > done ?
			min_t(uint32_t, op->out_cap - (uint32_t)done, n) : 0;
		sub.out_bytes = sub.out_len = 0;
		ret = locked_roundtrip(r, &sub);
		done += min_t(uint64_t, sub.out_bytes, n);
		if (ret < 0 || sub.out_bytes < n) {
			memcpy(op->errmsg, sub.errmsg, sizeof(op->errmsg));
			break;
		}
	}
	op->out_bytes = done;
	op->out_len = op->out_cap ? (uint32_t)min_t(uint64_t, done,
						    op->out_cap) : 0;
	return ret;
}

/* Only consistent requests are split; the core judges the others. */
static bool dma_needs_chunks(const struct ioasid_op *op)
{
	bool write = op->flags & IOASID_DMA_WRITE;

	if (op->cmd != IOASID_CMD_DEVICE_DMA || op->length <= PROTO_DMA_CHUNK)
		return false;
	return write ? op->in_len == op->length && !op->out_cap :
		       op->out_cap >= op->length && !op->in_len;
}

/*
 * Dirty bitmaps larger than one message (60 KiB of bitmap covers 1.875
 * GiB of IOVA; a 1 TiB guest needs 32 MiB) travel through shared memory:
 * a memfd of this connection, sealed against shrinking, that the daemon
 * maps and writes (ioasidd/client.c checks the seal and the size), then
 * one copy into the caller's bitmap.  One request whatever the size, so
 * an unmap that returns its dirty bits stays one step.
 */
static bool bitmap_needs_memfd(const struct ioasid_op *op)
{
	bool dirty_out = op->cmd == IOASID_CMD_DIRTY_READ ||
			 (op->cmd == IOASID_CMD_UNMAP &&
			  (op->flags & IOASID_UNMAP_GET_DIRTY));

	return dirty_out && op->out && op->out_cap > PROTO_MAX_PAYLOAD;
}

/* The connection's bitmap memfd, at least @size bytes.  r->lock held. */
static int bitmap_memfd(struct remote *r, size_t size, struct ioasid_op *op)
{
	size_t want = (size + BITMAP_MEMFD_ROUND - 1) &
		      ~(size_t)(BITMAP_MEMFD_ROUND - 1);
	void *map;
	int fd;

	if (r->bm_fd >= 0 && r->bm_size >= size)
		return 0;
	fd = memfd_create("ioasid-dirty-bitmap", MFD_CLOEXEC |
			  MFD_ALLOW_SEALING);
	if (fd < 0)
		return op_fail(op, errno, "cannot make a memfd for the dirty "
			       "bitmap: %m");
	if (ftruncate(fd, (off_t)want) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		int e = errno;

		close(fd);
		return op_fail(op, e, "cannot size or seal the dirty bitmap's "
			       "memfd: %s", strerror(e));
	}
	map = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		int e = errno;

		close(fd);
		return op_fail(op, e, "cannot map the dirty bitmap's memfd: "
			       "%s", strerror(e));
	}
	if (r->bm_map)
		munmap(r->bm_map, r->bm_size);
	close_fd(r->bm_fd);
	r->bm_fd = fd;
	r->bm_map = map;
	r->bm_size = want;
	return 0;
}

static int bitmap_shared(struct remote *r, struct ioasid_op *op)
{
	struct ioasid_op sub = *op;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = bitmap_memfd(r, op->out_cap, op);
	if (ret == 0) {
		sub.fd = r->bm_fd;
		sub.out = r->bm_map;	/* a daemon sends no OUT_DATA here */
		ret = roundtrip(r, &sub);
		if (ret == 0)
			memcpy(op->out, r->bm_map, op->out_cap);
		op->out_bytes = sub.out_bytes;
		op->out_len = ret == 0 ? op->out_cap : 0;
		memcpy(op->errmsg, sub.errmsg, sizeof(op->errmsg));
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int remote_event_read(void *priv, struct ioasid_event *ev);

/* The kvm client's requests: one roundtrip each. */
static int kvm_send(void *priv, struct ioasid_op *op)
{
	return locked_roundtrip(priv, op);
}

int remote_transport_send(void *priv, struct ioasid_op *op)
{
	return locked_roundtrip(priv, op);
}

/*
 * A status answered by ioasidd says so (a field an older daemon lacks),
 * and its events_lost adds the events this process's own queue dropped
 * (ioasid_event_read() fell behind) and did not tell the daemon yet
 * (report_dropped()) to those the daemon counted.
 */
static int status_call(struct remote *r, struct ioasid_op *op)
{
	const uint32_t flags_end = offsetof(struct ioasid_status, flags) +
				   sizeof(uint32_t);
	const uint32_t lost_end = offsetof(struct ioasid_status, events_lost) +
				  sizeof(uint64_t);
	uint32_t end = op->out_cap >= lost_end ? lost_end : flags_end, flags;
	int ret = locked_roundtrip(r, op);

	if (ret < 0 || op->out_cap < flags_end)
		return ret;
	if (op->out_len < end) {
		memset((char *)op->out + op->out_len, 0, end - op->out_len);
		op->out_len = end;
	}
	memcpy(&flags, (char *)op->out + flags_end - sizeof(flags),
	       sizeof(flags));
	flags |= 1;
	memcpy((char *)op->out + flags_end - sizeof(flags), &flags,
	       sizeof(flags));
	if (end == lost_end) {
		struct ioasid_status *st = op->out;

		pthread_mutex_lock(&r->lock);
		st->events_lost += r->ev_dropped - r->ev_reported;
		pthread_mutex_unlock(&r->lock);
	}
	return 0;
}

/* ---- the fast path ----------------------------------------------------- */

/* Map the view the daemon passed (takes @fd); r->lock held. */
static void view_map(struct remote *r, int fd)
{
	char why[IOASID_ERRMSG_MAX];
	struct stat st;
	void *map;
	int seals;

	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) < 0 ||
	    st.st_size < (off_t)VIEW_HEADER_SIZE ||
	    (uint64_t)st.st_size > VIEW_MAP_MAX) {
		warn(r->log, "ioasidd passed a shared view that is not a "
		     "sealed memfd of a sane size: lookups go through the "
		     "socket");
		close(fd);
		return;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		warn(r->log, "cannot map ioasidd's shared view: %m");
		return;
	}
	if (view_reader_init(&r->view_r, map, (size_t)st.st_size, why,
			     sizeof(why)) < 0) {
		warn(r->log, "ioasidd's shared view is unusable: %s", why);
		munmap(map, (size_t)st.st_size);
		return;
	}
	r->view_map = map;
	r->view_len = (size_t)st.st_size;
	__atomic_store_n(&r->view, &r->view_r, __ATOMIC_RELEASE);
}

/* Ask for the view once; r->lock held. */
static void view_setup(struct remote *r)
{
	struct ioasid_op op;
	int ret;

	if (r->view_tried)
		return;
	ioasid_op_init(&op, IOASID_CMD_VIEW);
	ret = roundtrip(r, &op);
	__atomic_store_n(&r->view_tried, true, __ATOMIC_RELEASE);
	if (ret < 0) {
		dbg(r->log, "no shared view from ioasidd: %s", op.errmsg);
		return;
	}
	if (op.out_fd < 0) {
		warn(r->log, "ioasidd answered VIEW without a descriptor");
		return;
	}
	view_map(r, op.out_fd);
}

/*
 * LOOKUP or MAPPING_NEXT from the view: 0 or -ENOENT (the answer), or
 * -EAGAIN (ask the daemon).
 */
static int view_call(struct remote *r, struct ioasid_op *op)
{
	const struct view_reader *v;
	bool next = op->cmd == IOASID_CMD_MAPPING_NEXT;
	struct ioasid_mapping m;
	uint32_t hint;
	int ret;

	v = __atomic_load_n(&r->view, __ATOMIC_ACQUIRE);
	if (!v) {
		if (r->no_fastpath ||
		    __atomic_load_n(&r->view_tried, __ATOMIC_ACQUIRE))
			return -EAGAIN;
		pthread_mutex_lock(&r->lock);
		view_setup(r);
		pthread_mutex_unlock(&r->lock);
		v = __atomic_load_n(&r->view, __ATOMIC_ACQUIRE);
		if (!v)
			return -EAGAIN;
	}
	hint = __atomic_load_n(&r->view_hint, __ATOMIC_RELAXED);
	ret = view_find(v, op->ioas_id, op->iova, next, &m, &hint);
	__atomic_store_n(&r->view_hint, hint, __ATOMIC_RELAXED);
	if (ret == 0) {
		op->out_len = min_t(uint32_t, sizeof(m), op->out_cap);
		memcpy(op->out, &m, op->out_len);
		return 0;
	}
	if (ret == -ENOENT)
		return next ?
		       op_fail(op, ENOENT, "no mapping at or after IOVA 0x%llx "
			       "in IOAS %u", (unsigned long long)op->iova,
			       op->ioas_id) :
		       op_fail(op, ENOENT, "IOVA 0x%llx is not mapped in IOAS "
			       "%u", (unsigned long long)op->iova, op->ioas_id);
	if (ret == -EPROTO &&
	    __atomic_exchange_n(&r->view, NULL, __ATOMIC_ACQ_REL))
		warn(r->log, "ioasidd's shared view is inconsistent: lookups "
		     "go through the socket from now on");
	return -EAGAIN;
}

/* ---- the request ring ------------------------------------------------ */

static uint64_t ring_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Ask for the ring once; r->lock held. */
static void ring_setup(struct remote *r)
{
	struct ioasid_op op;
	struct stat st;
	void *map;
	int ret, seals;

	r->ring_tried = true;
	r->ring_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->ring_done = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->ring_bell < 0 || r->ring_done < 0)
		goto fail;
	ioasid_op_init(&op, IOASID_CMD_RING);
	op.fd = r->ring_bell;
	op.fd2 = r->ring_done;
	ret = roundtrip(r, &op);
	if (ret < 0 || op.out_fd < 0) {
		dbg(r->log, "no request ring from ioasidd: %s", op.errmsg);
		goto fail;
	}
	seals = fcntl(op.out_fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) ||
	    fstat(op.out_fd, &st) < 0 || st.st_size < (off_t)RING_SIZE) {
		warn(r->log, "ioasidd passed a request ring that is not a "
		     "sealed memfd of its size: not using it");
		close(op.out_fd);
		goto fail;
	}
	map = mmap(NULL, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   op.out_fd, 0);
	close(op.out_fd);
	if (map == MAP_FAILED || ring_producer_init(&r->ring, map,
						    RING_SIZE) < 0) {
		warn(r->log, "cannot use ioasidd's request ring");
		if (map != MAP_FAILED)
			munmap(map, RING_SIZE);
		goto fail;
	}
	r->ring_map = map;
	r->ring_on = true;
	return;
fail:
	close_fd(r->ring_bell);
	close_fd(r->ring_done);
}

/*
 * The daemon's number for @fd, registering it if needed; -EAGAIN: let
 * the socket carry this map (it then says what is wrong with @fd).
 */
static int ring_file(struct remote *r, int fd, uint32_t *id)
{
	struct ring_file *e, *lru = &r->files[0];
	struct ioasid_op op;
	struct stat st;
	int mode;

	if (fd < 0 || fstat(fd, &st) < 0 || (mode = fcntl(fd, F_GETFL)) < 0)
		return -EAGAIN;
	mode &= O_ACCMODE;
	for (int i = 0; i < RING_CLIENT_FILES; i++) {
		e = &r->files[i];
		if (e->id && e->fd == fd && e->dev == st.st_dev &&
		    e->ino == st.st_ino && e->mode == mode) {
			e->used = ++r->files_clock;
			*id = e->id;
			return 0;
		}
		if (!e->id || (lru->id && e->used < lru->used))
			lru = e;
	}
	if (lru->id) {
		ioasid_op_init(&op, IOASID_CMD_FILE_UNREGISTER);
		op.file_id = lru->id;
		roundtrip(r, &op);		/* nothing to do if it fails */
		lru->id = 0;
	}
	ioasid_op_init(&op, IOASID_CMD_FILE_REGISTER);
	op.fd = fd;
	if (roundtrip(r, &op) < 0 || !op.out_id)
		return -EAGAIN;
	*lru = (struct ring_file){ .fd = fd, .dev = st.st_dev,
				   .ino = st.st_ino, .mode = mode,
				   .id = op.out_id,
				   .used = ++r->files_clock };
	*id = op.out_id;
	return 0;
}

static void ring_off(struct remote *r, const char *why)
{
	r->ring_on = false;
	warn(r->log, "request ring dropped: %s; calls go through the socket",
	     why);
}

/*
 * Wait for the completion of the one request in flight: spin, then sleep
 * on the completion eventfd and the socket (events that arrive meanwhile
 * are queued, so a daemon waiting for us to read them is not stuck).
 */
static int ring_wait(struct remote *r, struct ring_cqe *c)
{
	struct pollfd p[2] = {
		{ .fd = r->ring_done, .events = POLLIN },
		{ .fd = r->sock, .events = POLLIN },
	};
	uint64_t t0 = ring_now(), count;
	bool same = ring_producer_same_cpu(&r->ring);

	for (;;) {
		if (ring_reap(&r->ring, c) == 0)
			return 0;
		if (ring_flags(&r->ring) & RING_BROKEN)
			return -EPROTO;
		if (ring_now() - t0 < RING_CLIENT_SPIN_NS) {
			/* a daemon on this CPU runs; on another, no syscall */
			ring_relax(same);
			continue;
		}
		ring_set_waiting(&r->ring, true);
		if (ring_reap(&r->ring, c) == 0) {
			ring_set_waiting(&r->ring, false);
			return 0;
		}
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			ring_set_waiting(&r->ring, false);
			return -ECONNRESET;
		}
		ring_set_waiting(&r->ring, false);
		if (p[0].revents & POLLIN &&
		    read(r->ring_done, &count, sizeof(count)) < 0)
			count = 0;
		if (p[1].revents) {
			drain_events(r);
			if (r->broken)
				return -ECONNRESET;
		}
	}
}

/*
 * MAP_FILE, MAP_FILE_ID, UNMAP or a one-range CONVERT through the ring
 * (MAP_FILE_ID names the IOAS's file by its id: nothing to register or
 * look at here); -EAGAIN: it
 * goes over the socket instead.  r->lock held.
 */
static int ring_call(struct remote *r, struct ioasid_op *op)
{
	const struct ioasid_iova_range *range = op->in;
	struct ring_sqe s = {
		.cmd = op->cmd, .flags = op->flags, .ioas_id = op->ioas_id,
		.iova = op->iova, .length = op->length, .offset = op->offset,
	};
	struct ring_cqe c;
	uint64_t one = 1;
	int ret;

	if (!r->ring_tried && !r->no_fastpath && !r->broken)
		ring_setup(r);
	if (!r->ring_on || r->broken)
		return -EAGAIN;
	if (op->cmd == IOASID_CMD_CONVERT) {
		if (op->in_len != sizeof(*range) || !range ||
		    range->last < range->start ||
		    range->last - range->start == UINT64_MAX)
			return -EAGAIN;
		s.iova = range->start;
		s.length = range->last - range->start + 1;
	}
	if (op->cmd == IOASID_CMD_MAP_FILE &&
	    ring_file(r, op->fd, &s.file) < 0)
		return -EAGAIN;
	/* the IOAS's own file: nothing of ours to look at */
	if (op->cmd == IOASID_CMD_MAP_FILE_ID)
		s.file = op->file_id;
	s.user_data = ++r->ring_seq;
	r->inflight = true;
	if (ring_submit(&r->ring, &s) &&
	    write(r->ring_bell, &one, sizeof(one)) < 0 && errno != EAGAIN) {
		ring_off(r, "cannot ring the doorbell");
		return op_fail(op, EIO, "cannot reach ioasidd's request ring: "
			       "%m");
	}
	ret = ring_wait(r, &c);
	if (ret == -ECONNRESET) {
		mark_broken(r, "connection lost while waiting on the ring");
		return op_fail(op, ECONNRESET, "connection to ioasidd lost: %s",
			       r->broken_why);
	}
	if (ret < 0 || c.user_data != s.user_data ||
	    c.result > 0 || c.result < -4095) {
		ring_off(r, ret < 0 ? "ioasidd marked it broken" :
			 "a completion that answers no request");
		return op_fail(op, EPROTO, "ioasidd's request ring broke "
			       "during %s", proto_cmd_name(op->cmd));
	}
	r->inflight = false;
	if (c.result >= 0)
		r->changes++;		/* map, unmap, convert */
	op->out_id = c.out_id;
	op->out_iova = c.out_iova;
	op->out_bytes = c.out_bytes;
	if (c.result < 0)
		return op_fail(op, -c.result, "%s", c.errmsg);
	return 0;
}

static int ring_or_socket(struct remote *r, struct ioasid_op *op)
{
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = ring_call(r, op);
	if (ret == -ECONNRESET && resumable(r))
		ret = resume(r, op);
	pthread_mutex_unlock(&r->lock);
	return ret == -EAGAIN ? locked_roundtrip(r, op) : ret;
}

/*
 * The reply of SESSION_NAME or _RECLAIM in @buf (@len bytes): the token,
 * then, from a daemon that sends it, the changes it recorded.
 */
static void take_grant(struct remote *r, const unsigned char *buf,
		       uint32_t len, const char *name)
{
	struct ioasid_session_resume res;

	memcpy(r->token, buf, sizeof(r->token));
	r->named = true;
	if (name != r->sess_name)
		snprintf(r->sess_name, sizeof(r->sess_name), "%s", name);
	r->resume_known = len >= sizeof(r->token) + sizeof(res);
	if (r->resume_known) {
		memcpy(&res, buf + sizeof(r->token), sizeof(res));
		r->changes = res.changes;
	}
}

/* The token stays here, not with the caller: ioasid_session_token(). */
static int session_call(struct remote *r, struct ioasid_op *op)
{
	unsigned char buf[IOASID_SESSION_TOKEN_LEN +
			  sizeof(struct ioasid_session_resume)];
	void *caller_out = op->out;
	uint32_t caller_cap = op->out_cap;
	int ret;

	/* room for what a resume needs, the caller gets the token */
	if (caller_cap >= IOASID_SESSION_TOKEN_LEN) {
		op->out = buf;
		op->out_cap = sizeof(buf);
	}
	ret = locked_roundtrip(r, op);
	op->out = caller_out;
	op->out_cap = caller_cap;
	if (ret < 0)
		return ret;
	if (op->out_len < IOASID_SESSION_TOKEN_LEN)
		return op_fail(op, EPROTO, "ioasidd's reply carries no token");
	memcpy(op->out, buf, IOASID_SESSION_TOKEN_LEN);
	pthread_mutex_lock(&r->lock);
	take_grant(r, buf, op->out_len, op->name);
	op->out_len = IOASID_SESSION_TOKEN_LEN;
	/*
	 * A reclaim changes the session: a view mapped before it is the
	 * old session's and no longer kept up to date.  Lookups go through
	 * the socket from now on (view_tried stays set; the mapping stays
	 * until close: another thread may be reading it).
	 */
	if (op->cmd == IOASID_CMD_SESSION_RECLAIM &&
	    __atomic_load_n(&r->view_tried, __ATOMIC_ACQUIRE))
		__atomic_store_n(&r->view, NULL, __ATOMIC_RELEASE);
	r->session_id = op->out_id;
	pthread_mutex_unlock(&r->lock);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static int session_token(struct remote *r, struct ioasid_op *op)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (!r->named)
		ret = op_fail(op, ENOENT, "this session has no name, so no "
			      "token (ioasid_session_name())");
	else if (op->out_cap < sizeof(r->token))
		ret = op_fail(op, EMSGSIZE, "result buffer too small");
	else
		memcpy(op->out, r->token, sizeof(r->token));
	op->out_len = ret ? 0 : sizeof(r->token);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int remote_call(void *priv, struct ioasid_op *op)
{
	struct remote *r = priv;
	int ret;

	if (kvm_client_handles(op))
		return kvm_client_call(&r->kvm, op);
	switch (op->cmd) {
	case IOASID_CMD_STATUS:
		return status_call(r, op);
	case IOASID_CMD_LOOKUP:
	case IOASID_CMD_MAPPING_NEXT:
		ret = view_call(r, op);
		if (ret != -EAGAIN)
			return ret;
		break;
	case IOASID_CMD_UNMAP:
		/* the ring carries no bitmap back */
		if (op->flags & IOASID_UNMAP_GET_DIRTY)
			break;
		/* fall through */
	case IOASID_CMD_MAP_FILE:
	case IOASID_CMD_MAP_FILE_ID:
	case IOASID_CMD_CONVERT:
		if (!r->no_fastpath)
			return ring_or_socket(r, op);
		break;
	case IOASID_CMD_MAP_USER:
		return op_fail(op, EOPNOTSUPP, "ioasidd cannot reach this "
			       "process's memory: map a memfd or guest_memfd "
			       "with ioasid_map_file() instead of user memory");
	case IOASID_CMD_EVENT_READ:
		if (op->out_cap < sizeof(struct ioasid_event))
			return op_fail(op, EMSGSIZE, "result buffer too small");
		op->out_len = sizeof(struct ioasid_event);
		return remote_event_read(priv, op->out);
	case IOASID_CMD_SESSION_TOKEN:
		return session_token(r, op);
	case IOASID_CMD_SESSION_NAME:
	case IOASID_CMD_SESSION_RECLAIM:
		return session_call(r, op);
	}
	if (dma_needs_chunks(op))
		return dma_chunked(r, op);
	if (bitmap_needs_memfd(op))
		return bitmap_shared(r, op);
	return locked_roundtrip(r, op);
}

/* ---- open / close -------------------------------------------------------- */

static int open_fail(struct remote *r, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int open_fail(struct remote *r, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_failv(r->open_err, r->open_errlen, -ret, fmt, ap);
	va_end(ap);
	err(r->log, "%s", r->open_err);
	return ret;
}

static int fill_addr(const char *path, struct sockaddr_un *sa,
		     socklen_t *salen)
{
	size_t len = strlen(path);

	if (!len)
		return -EINVAL;
	if (len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	if (path[0] == '@')		/* abstract namespace */
		sa->sun_path[0] = '\0';
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			     (path[0] == '@' ? 0 : 1));
	return 0;
}

static int connect_fail(struct remote *r, int e, const char *path)
{
	switch (e) {
	case ENOENT:
		return open_fail(r, -ENOENT, "no ioasidd socket at %s (is "
				 "ioasidd running?)", path);
	case ECONNREFUSED:
		return open_fail(r, -ECONNREFUSED, "nobody accepts connections "
				 "at %s (ioasidd is not running)", path);
	case EACCES:
	case EPERM:
		return open_fail(r, -e, "permission denied on %s: the socket "
				 "is for members of ioasidd's group", path);
	}
	return open_fail(r, -e, "cannot connect to %s: %s", path, strerror(e));
}

/* A connected socket in r->sock; -errno without a word (dial_fail). */
static int dial(struct remote *r, const char *path)
{
	int sndbuf = 2 * IOASID_MAX_MSG;
	struct sockaddr_un sa;
	socklen_t salen;
	int ret;

	ret = fill_addr(path, &sa, &salen);
	if (ret < 0)
		return ret;
	r->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (r->sock < 0)
		return -errno;
	/* one message may be IOASID_MAX_MSG: above the default limit */
	if (setsockopt(r->sock, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		       sizeof(sndbuf)) < 0)
		warn(r->log, "cannot raise SO_SNDBUF: %m");
	if (connect(r->sock, (struct sockaddr *)&sa, salen) < 0) {
		ret = -errno;
		close_fd(r->sock);
		return ret;
	}
	return 0;
}

static int connect_socket(struct remote *r, const char *path)
{
	int ret = dial(r, path);

	if (ret == -EINVAL || ret == -ENAMETOOLONG)
		return open_fail(r, ret, "bad ioasidd socket path \"%s\"",
				 path);
	if (ret < 0)
		return connect_fail(r, -ret, path);
	return 0;
}

/* Say hello: learns the backend; gives the daemon a name for the session. */
static int hello(struct remote *r, const char *path)
{
	struct ioasid_op op;
	int ret;

	ioasid_op_init(&op, IOASID_CMD_HELLO);
	snprintf(op.name, sizeof(op.name), "%.24s[%d]",
		 program_invocation_short_name, (int)getpid());
	ret = locked_roundtrip(r, &op);
	if (ret < 0)
		return open_fail(r, ret, "ioasidd at %s refused us: %s", path,
				 op.errmsg[0] ? op.errmsg : strerror(-ret));
	snprintf(r->backend, sizeof(r->backend), "%s", op.name);
	r->session_id = op.out_id;
	return 0;
}

#define TEARDOWN_TIMEOUT_MS	5000

/*
 * As embedded, the last unref returns once every object of the context is
 * gone: say we are done (SHUT_WR) and wait until the daemon, having torn
 * the session down, closes its end.  Events still in flight are dropped.
 * Bounded, so a wedged daemon cannot hang the caller.
 */
static void wait_teardown(struct remote *r)
{
	struct pollfd p = { .fd = r->sock, .events = POLLIN };
	struct timespec t0, t;
	ssize_t n;
	long left;

	if (r->broken || shutdown(r->sock, SHUT_WR) < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = TEARDOWN_TIMEOUT_MS -
		       ((t.tv_sec - t0.tv_sec) * 1000 +
			(t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		n = recv(r->sock, r->rxbuf, IOASID_MAX_MSG, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
}

static void remote_close(void *priv)
{
	struct remote *r = priv;

	if (!r)
		return;
	/* KVM forgets what this process registered, as with a session */
	kvm_client_release(&r->kvm);
	if (r->sock >= 0) {
		report_dropped(r);
		wait_teardown(r);
	}
	close_fd(r->sock);
	close_fd(r->event_epfd);
	close_fd(r->event_efd);
	if (r->view_map)
		munmap(r->view_map, r->view_len);
	if (r->ring_map)
		munmap(r->ring_map, RING_SIZE);
	close_fd(r->ring_bell);
	close_fd(r->ring_done);
	if (r->bm_map)
		munmap(r->bm_map, r->bm_size);
	close_fd(r->bm_fd);
	pthread_mutex_destroy(&r->lock);
	explicit_bzero(r->token, sizeof(r->token));
	free(r->events);
	free(r->rxbuf);
	free(r->token_file);
	free(r);
}

/* ---- resuming a named session after a lost connection ------------------ */

#define RECONNECT_DEFAULT_MS	5000
#define RECONNECT_MAX_MS	(3600 * 1000)

/* Seconds (decimal, e.g. 2.5), 0 to 3600, into *@ms: 0 or -EINVAL. */
static int parse_reconnect(const char *text, uint32_t *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (!*text || errno || *end || !(v >= 0) ||
	    v * 1000 > RECONNECT_MAX_MS)
		return -EINVAL;
	*ms = (uint32_t)(v * 1000);
	return 0;
}

/* $IOASID_RECONNECT: seconds (decimal, e.g. 2.5); 0 never. */
static uint32_t reconnect_ms(const struct log_sink *log)
{
	const char *env = getenv("IOASID_RECONNECT");
	uint32_t ms;

	if (!env || !*env)
		return RECONNECT_DEFAULT_MS;
	if (parse_reconnect(env, &ms) < 0) {
		warn(log, "IOASID_RECONNECT=\"%s\" is not 0 to 3600 seconds: "
		     "%u ms", env, RECONNECT_DEFAULT_MS);
		return RECONNECT_DEFAULT_MS;
	}
	return ms;
}

int remote_session_options(void *priv, const char *reconnect,
			   const char *token_file, char *why, size_t whylen)
{
	struct remote *r = priv;
	char *file = NULL;
	uint32_t ms = 0;

	if (reconnect && parse_reconnect(reconnect, &ms) < 0) {
		snprintf(why, whylen, "URI parameter reconnect=%s is not 0 to "
			 "3600 seconds", reconnect);
		return -EINVAL;
	}
	if (token_file && !(file = strdup(token_file))) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&r->lock);
	if (reconnect)
		r->reconnect_ms = ms;
	if (token_file) {
		free(r->token_file);
		r->token_file = file;
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Blocking calls on the new socket end by @deadline (0: never). */
static void socket_deadline(int sock, uint64_t deadline)
{
	uint64_t now = mono_ms(), left = deadline > now ? deadline - now : 1;
	struct timeval tv = { .tv_sec = (time_t)(left / 1000),
			      .tv_usec = (suseconds_t)(left % 1000) * 1000 };

	if (!deadline)
		tv = (struct timeval){ 0, 0 };
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* What belonged to the lost connection goes; r->lock held. */
static void drop_connection(struct remote *r)
{
	close_fd(r->sock);
	/* the ring was the connection's: asked for again on next use */
	if (r->ring_map)
		munmap(r->ring_map, RING_SIZE);
	r->ring_map = NULL;
	r->ring_on = r->ring_tried = false;
	close_fd(r->ring_bell);
	close_fd(r->ring_done);
	for (int i = 0; i < RING_CLIENT_FILES; i++)
		r->files[i].id = 0;
	/*
	 * The view: readers in other threads may hold it, so it is not
	 * mapped again: lookups go through the socket from now on (as
	 * after a reclaim).  It stays mapped until the context closes.
	 */
	__atomic_store_n(&r->view, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&r->view_tried, true, __ATOMIC_RELEASE);
}

/*
 * One try: dial, HELLO, SESSION_RECLAIM with our name and token.  0 (the
 * daemon's count of the session's changes in *@res), -EAGAIN (try again
 * a little later), or another -errno (give up; the reason in @op).
 */
static int reclaim_once(struct remote *r, uint64_t deadline,
			struct ioasid_session_resume *res,
			struct ioasid_op *why)
{
	unsigned char buf[IOASID_SESSION_TOKEN_LEN + sizeof(*res)];
	struct ioasid_op op;
	int ret;

	drop_connection(r);
	ret = dial(r, r->path);
	if (ret < 0)
		return ret == -ENOENT || ret == -ECONNREFUSED ||
		       ret == -EAGAIN ? -EAGAIN :
		       op_fail(why, -ret, "cannot reach %s: %s", r->path,
			       strerror(-ret));
	socket_deadline(r->sock, deadline);
	r->broken = false;
	ioasid_op_init(&op, IOASID_CMD_HELLO);
	snprintf(op.name, sizeof(op.name), "%.24s[%d]",
		 program_invocation_short_name, (int)getpid());
	if (roundtrip(r, &op) < 0)
		return -EAGAIN;
	snprintf(r->backend, sizeof(r->backend), "%s", op.name);
	ioasid_op_init(&op, IOASID_CMD_SESSION_RECLAIM);
	snprintf(op.name, sizeof(op.name), "%s", r->sess_name);
	op.in = r->token;
	op.in_len = sizeof(r->token);
	op.out = buf;
	op.out_cap = sizeof(buf);
	ret = roundtrip(r, &op);
	/* EBUSY: our old connection is not reaped yet */
	if (ret == -EBUSY || ret == -ECONNRESET)
		return -EAGAIN;
	if (ret < 0)
		return op_fail(why, -ret, "%s", op.errmsg);
	if (op.out_len < sizeof(buf)) {
		explicit_bzero(buf, sizeof(buf));
		return op_fail(why, EPROTO, "ioasidd does not say which "
			       "changes of the session it kept");
	}
	/* the token; the count is compared with ours by the caller */
	memcpy(r->token, buf, sizeof(r->token));
	memcpy(res, buf + IOASID_SESSION_TOKEN_LEN, sizeof(*res));
	explicit_bzero(buf, sizeof(buf));
	r->session_id = op.out_id;
	socket_deadline(r->sock, 0);
	if (r->event_epfd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN };

		epoll_ctl(r->event_epfd, EPOLL_CTL_ADD, r->sock, &ev);
	}
	return 0;
}

/* The new token into the URI's token-file=, if there is one. */
static void rewrite_token_file(struct remote *r)
{
	char hex[IOASID_SESSION_TOKEN_HEX], tmp[4096];
	int fd, ret;

	if (!r->token_file)
		return;
	fd = token_file_temp(r->token_file, tmp, sizeof(tmp));
	if (fd < 0) {
		warn(r->log, "session \"%s\" resumed with a new token, but "
		     "token file %s cannot be rewritten: %s", r->sess_name,
		     r->token_file, strerror(-fd));
		return;
	}
	token_hex(r->token, sizeof(r->token), hex);
	ret = token_file_commit(fd, tmp, r->token_file, hex);
	explicit_bzero(hex, sizeof(hex));
	close(fd);
	if (ret < 0) {
		unlink(tmp);
		warn(r->log, "session \"%s\" resumed with a new token, but "
		     "token file %s cannot be rewritten: %s", r->sess_name,
		     r->token_file, strerror(-ret));
	}
}

/*
 * The connection is lost: dial again for up to r->reconnect_ms and
 * reclaim the session; the daemon's count of its changes into *@res.
 * 0, or -ECONNRESET with the reason in @op (the context stays broken).
 * r->lock held.
 */
static int regain(struct remote *r, struct ioasid_session_resume *res,
		  struct ioasid_op *op)
{
	uint64_t deadline = mono_ms() + r->reconnect_ms, wait = 1;
	struct ioasid_op why;
	int ret;

	ioasid_op_init(&why, op->cmd);
	ret = reclaim_once(r, deadline, res, &why);
	while (ret == -EAGAIN) {
		uint64_t now = mono_ms();

		if (now >= deadline)
			break;
		/* bounded back-off while nobody accepts */
		poll(NULL, 0, (int)min_t(uint64_t, wait, deadline - now));
		wait = min_t(uint64_t, 2 * wait, 100);
		ret = reclaim_once(r, deadline, res, &why);
	}
	if (ret < 0) {
		mark_broken(r, "lost, and not resumed");
		r->resume_known = false;
		if (ret == -EAGAIN)
			return op_fail(op, ECONNRESET, "connection to ioasidd "
				       "lost and not regained within %u ms",
				       r->reconnect_ms);
		return op_fail(op, ECONNRESET, "connection to ioasidd lost; "
			       "session \"%s\" could not be reclaimed: %s",
			       r->sess_name, why.errmsg);
	}
	info(r->log, "connection to ioasidd regained: session \"%s\" "
	     "reclaimed, %llu change(s) recorded", r->sess_name,
	     (unsigned long long)res->changes);
	/* the reclaim spent the old token */
	rewrite_token_file(r);
	return 0;
}

/* ioasidd kept other than every acknowledged change: -EIO, broken. */
static int changes_lost(struct remote *r, const struct ioasid_session_resume *res,
			struct ioasid_op *op)
{
	mark_broken(r, "ioasidd lost changes");
	r->resume_known = false;
	return op_fail(op, EIO, "ioasidd kept %llu change(s) of session "
		       "\"%s\", this context had %llu acknowledged: state was "
		       "lost", (unsigned long long)res->changes, r->sess_name,
		       (unsigned long long)r->changes);
}

/*
 * The connection was lost during @op (or before it): regain it and
 * finish @op: its change took effect (the daemon counts one more: its
 * results), or it did not (sent again).  r->lock held.
 */
static int resume(struct remote *r, struct ioasid_op *op)
{
	bool change = proto_cmd_changes_state(op->cmd);
	struct ioasid_session_resume res;
	int ret;

	for (;;) {
		bool sent = r->inflight;

		r->inflight = false;
		ret = regain(r, &res, op);
		if (ret < 0)
			return ret;
		if (sent && change && res.changes == r->changes + 1) {
			/* it took effect before the connection went */
			r->changes++;
			if (op->cmd == IOASID_CMD_MAP_BATCH && op->out_cap)
				return op_fail(op, ECONNRESET, "the batch was "
					       "mapped, but its IOVAs were lost "
					       "with the connection: look "
					       "them up");
			if (op->cmd == IOASID_CMD_FAULT_QUEUE_ALLOC) {
				op->out_id = res.last_out_id;
				return op_fail(op, ECONNRESET, "fault queue %u "
					       "was made, but its eventfd was "
					       "lost with the connection: "
					       "destroy it and allocate it "
					       "again", res.last_out_id);
			}
			/* ioasidd recorded the ids, not the buffer's bytes */
			if (op->out && op->out_cap)
				return op_fail(op, ECONNRESET, "%s took effect, "
					       "but its results were lost with "
					       "the connection",
					       proto_cmd_name(op->cmd));
			op->out_id = res.last_out_id;
			op->out_iova = res.last_out_iova;
			op->out_bytes = res.last_out_bytes;
			op->out_len = 0;
			return 0;
		}
		if (res.changes != r->changes)
			return changes_lost(r, &res, op);
		ret = roundtrip(r, op);
		if (ret != -ECONNRESET || !r->broken)
			return ret;
	}
}

static int remote_open(const struct log_sink *log, const char *path,
		       void **priv, char *errmsg, size_t errlen)
{
	struct remote *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	r->log = log;
	r->open_err = errmsg;
	r->open_errlen = errlen;
	r->sock = r->event_efd = r->event_epfd = r->ring_bell = -1;
	r->bm_fd = -1;
	r->ring_done = -1;
	r->no_fastpath = getenv("IOASID_NO_FASTPATH") &&
			 strcmp(getenv("IOASID_NO_FASTPATH"), "0") != 0;
	pthread_mutex_init(&r->lock, NULL);
	kvm_client_init(&r->kvm, log, kvm_send, r);
	r->events = calloc(EVENT_QUEUE_LEN, sizeof(*r->events));
	r->rxbuf = malloc(IOASID_MAX_MSG);
	if (!r->events || !r->rxbuf) {
		remote_close(r);
		return -ENOMEM;
	}
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->reconnect_ms = reconnect_ms(log);
	ret = connect_socket(r, path);
	if (ret == 0)
		ret = hello(r, path);
	if (ret < 0) {
		remote_close(r);
		return ret;
	}
	r->open_err = NULL;
	info(log, "connected to ioasidd at %s: backend %s, session %u", path,
	     r->backend, r->session_id);
	*priv = r;
	return 0;
}

static const char *remote_backend_name(void *priv)
{
	struct remote *r = priv;

	return r->backend;
}

/* ---- events -------------------------------------------------------------- */

static int make_event_fd(struct remote *r)
{
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t one = 1;

	r->event_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->event_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->event_efd < 0 || r->event_epfd < 0 ||
	    epoll_ctl(r->event_epfd, EPOLL_CTL_ADD, r->sock, &ev) < 0 ||
	    epoll_ctl(r->event_epfd, EPOLL_CTL_ADD, r->event_efd, &ev) < 0) {
		int ret = -errno;

		close_fd(r->event_efd);
		close_fd(r->event_epfd);
		return ret;
	}
	if (r->ev_len && write(r->event_efd, &one, sizeof(one)) < 0)
		warn(r->log, "cannot signal the event fd: %m");
	return r->event_epfd;
}

static int remote_event_fd(void *priv)
{
	struct remote *r = priv;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = r->event_epfd >= 0 ? r->event_epfd : make_event_fd(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int remote_event_read(void *priv, struct ioasid_event *ev)
{
	struct remote *r = priv;
	int ret;

	pthread_mutex_lock(&r->lock);
	drain_events(r);
	ret = pop_event(r, ev);
	/*
	 * The connection went (the event fd polled readable for it): a
	 * named session is regained here as by any call, and what the new
	 * connection brought is read.
	 */
	if (ret == -EAGAIN && resumable(r)) {
		struct ioasid_session_resume res;
		struct ioasid_op why;

		ioasid_op_init(&why, IOASID_CMD_EVENT_READ);
		ret = regain(r, &res, &why);
		if (ret == 0 && res.changes != r->changes)
			ret = changes_lost(r, &res, &why);
		if (ret == 0) {
			drain_events(r);
			ret = pop_event(r, ev);
		} else {
			warn(r->log, "%s", why.errmsg);
		}
	}
	if (ret == -EAGAIN && r->broken)
		ret = -ECONNRESET;
	report_dropped(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

const struct transport_ops transport_remote = {
	.name = "remote",
	.open = remote_open,
	.close = remote_close,
	.call = remote_call,
	.backend_name = remote_backend_name,
	.event_fd = remote_event_fd,
	.event_read = remote_event_read,
};
