/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: ioasidd's per-message path (ioasidd/client.c: receive,
 * parse, serve, reply, events) on a real simulated core, several steps
 * per input, two clients.
 *
 * Each input gets a fresh core ("sim", the built-in topology) and a
 * server with two clients connected over socketpairs, both judged by a
 * policy that lets the caller's uid bind every device and observe.  The
 * input is a sequence of records:
 *
 *   byte 0     bit 7: client B (else A)
 *              bit 0-1: descriptors to pass (0..2)
 *              bit 2-3, 4-5: what each is: 0 a 2 MiB memfd sealed
 *              against shrinking, 1 a pipe, 2 /dev/null, 3 the memfd
 *              also sealed against writes
 *   byte 1-2   packet length, LE
 *   ...        the packet, sent as one SOCK_SEQPACKET message
 *
 * After each record the daemon handles what its client's socket holds
 * exactly as its epoll loop would (client_on_socket(), then the session's
 * events), and the harness drains the replies (closing every descriptor
 * they carry).  At the end both clients disconnect: their sessions are
 * torn down, and LeakSanitizer sees anything that outlived them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/attr.h>

#include "ioasidd.h"
#include "proto/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS	64

static void quiet(void *data, int priority, const char *file, int line,
		  const char *fn, const char *format, va_list args)
{
	(void)data; (void)priority; (void)file; (void)line; (void)fn;
	(void)format; (void)args;
}

static struct log_sink sink = { .fn = quiet, .priority = -1 };

/*
 * No service manager here, so no fd store and no journal (srv->journal
 * stays NULL); journal.c and upgrade.c still link against these.
 */
int sd_fdstore(const char *name, int fd)
{
	return -ENOTCONN;
}

void sd_fdstore_remove(const char *name)
{
}

/* upgrade.c's, likewise */
void sd_mainpid(void)
{
}

static struct policy *policy;

static void init_policy(void)
{
	char text[512], errmsg[256];

	if (policy)
		return;
	snprintf(text, sizeof(text),
		 "[default]\n"
		 "devices = all\n"
		 "observe = yes\n"
		 "max-ioas = 16\n"
		 "max-mappings = 256\n"
		 "max-bytes-mapped = 1G\n"
		 "max-vms = 2\n"
		 "[user %u]\n"
		 "devices = all\n", (unsigned int)getuid());
	if (policy_parse(text, "fuzz", &policy, errmsg, sizeof(errmsg)) < 0) {
		fprintf(stderr, "fuzz_daemon: policy: %s\n", errmsg);
		abort();
	}
}

static int make_fd(unsigned int kind)
{
	int fd, p[2];

	switch (kind) {
	case 0:
	case 3:
		fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd >= 0 && ftruncate(fd, 2 << 20) < 0) {
			close(fd);
			return -1;
		}
		if (fd >= 0)
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK |
			      (kind == 3 ? F_SEAL_WRITE : 0));
		return fd;
	case 1:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[1]);
		return p[0];
	default:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	}
}

static void send_record(int sock, const uint8_t *pkt, size_t len,
			uint8_t flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * IOASID_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)pkt, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[IOASID_MAX_FDS];
	unsigned int n = flags & 3, got = 0;
	struct cmsghdr *cm;

	if (n > IOASID_MAX_FDS)
		n = IOASID_MAX_FDS;
	for (unsigned int i = 0; i < n; i++) {
		int fd = make_fd((flags >> (2 + 2 * i)) & 3);

		if (fd >= 0)
			fds[got++] = fd;
	}
	if (got) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * got);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * got);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * got);
	}
	(void)sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (unsigned int i = 0; i < got; i++)
		close(fds[i]);
}

/* $FUZZ_VERBOSE: print what the daemon answers (to check seeds). */
static bool verbose;

static void show(const void *buf, size_t len, unsigned int nfds)
{
	char why[IOASID_ERRMSG_MAX];
	struct proto_msg m;
	const struct nlattr *a;

	if (proto_parse(buf, len, nfds, PROTO_FROM_DAEMON, &m, why,
			sizeof(why)) < 0) {
		fprintf(stderr, "  daemon sent an invalid message: %s\n", why);
		return;
	}
	if (m.cmd == IOASID_CMD_EVENT) {
		fprintf(stderr, "  event\n");
		return;
	}
	a = m.attr[IOASID_ATTR_ERRMSG];
	fprintf(stderr, "  reply %u: errno %u %s\n", m.seq,
		*(const uint32_t *)nla_data(m.attr[IOASID_ATTR_ERRNO]),
		a ? (const char *)nla_data(a) : "");
}

/* Read every reply and event the daemon sent; close what came with them. */
static void drain(int sock)
{
	static unsigned char buf[IOASID_MAX_MSG];
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;

	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		int fds[IOASID_MAX_FDS];
		unsigned int nfds;
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return;
		proto_collect_fds(&mh, fds, &nfds);
		if (verbose)
			show(buf, (size_t)n, nfds);
		for (unsigned int i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

struct peer {
	struct client *c;
	int sock;		/* our end */
	bool gone;
};

static bool connect_peer(struct server *srv, struct peer *p)
{
	int sv[2];

	p->c = NULL;
	p->sock = -1;
	p->gone = true;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return false;
	p->sock = sv[0];
	if (client_new(srv, sv[1], &p->c) < 0) {	/* takes sv[1] */
		close(sv[0]);
		p->sock = -1;
		return false;
	}
	p->gone = false;
	return true;
}

/* What one epoll wakeup of the daemon does for @p. */
static void serve_peer(struct server *srv, struct peer *p)
{
	for (int round = 0; round < 4 && !p->gone; round++) {
		client_on_socket(p->c, EPOLLIN);
		if (srv->dead) {	/* killed: freed after the batch */
			p->gone = true;
			break;
		}
		client_on_events(p->c);
		drain(p->sock);
		client_on_socket(p->c, EPOLLOUT);	/* flush the queue */
		drain(p->sock);
		if (srv->dead)
			p->gone = true;
	}
	clients_reap(srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errmsg[IOASID_ERRMSG_MAX];
	struct peer peers[2];
	struct server srv;
	struct core *core;
	size_t pos = 0;
	int steps = 0;

	init_policy();
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (core_new(&sink, "sim", &core, errmsg, sizeof(errmsg)) < 0) {
		fprintf(stderr, "fuzz_daemon: core: %s\n", errmsg);
		abort();
	}
	/* server_init() without a listening socket or signals */
	memset(&srv, 0, sizeof(srv));
	srv.log = &sink;
	srv.core = core;
	srv.policy = policy;
	srv.listen_fd = -1;
	srv.signal_fd = -1;
	srv.timer_fd = -1;
	srv.epfd = epoll_create1(EPOLL_CLOEXEC);
	srv.rxbuf = malloc(IOASID_MAX_MSG);
	srv.outbuf = malloc(PROTO_MAX_PAYLOAD);
	if (srv.epfd < 0 || !srv.rxbuf || !srv.outbuf)
		abort();
	connect_peer(&srv, &peers[0]);
	connect_peer(&srv, &peers[1]);

	while (pos + 3 <= size && steps++ < MAX_STEPS) {
		uint8_t flags = data[pos];
		size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
		struct peer *p = &peers[flags >> 7];

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		if (!p->gone) {
			send_record(p->sock, data + pos, len, flags);
			serve_peer(&srv, p);
		}
		pos += len;
	}

	for (int i = 0; i < 2; i++) {
		if (!peers[i].gone)
			client_kill(peers[i].c, "fuzz input done");
		if (peers[i].sock >= 0)
			close(peers[i].sock);
	}
	clients_reap(&srv);
	close(srv.epfd);
	free(srv.rxbuf);
	free(srv.outbuf);
	core_free(core);
	return 0;
}
