/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the protocol tests share (see proto_fixture.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>

#include "proto_fixture.h"

struct daemon_fixture d;
unsigned char rxbuf[IOASID_MAX_MSG] __attribute__((aligned(8)));

/* ---- daemon per test ----------------------------------------------------- */

void start_daemon(const char *config)
{
	struct daemon_opts o = { .config = config, .log_level = "debug" };

	cr_assert_eq(daemon_start(&d, &o), 0, "ioasidd must start");
}

void setup_daemon(void)
{
	start_daemon(NULL);
}

void stop_quietly(void)
{
	if (d.pid > 0)
		daemon_stop(&d);
}

/* The end of every daemon test: no crash, no leak, clean exit. */
void expect_clean_exit(void)
{
	cr_assert_eq(daemon_stop(&d), 0, "ioasidd must exit cleanly (status "
		     "0: no crash, no sanitizer report)");
}

void restart_daemon(const char *config)
{
	expect_clean_exit();
	start_daemon(config);
}

char *user_section(const char *body)
{
	static char text[1024];

	snprintf(text, sizeof(text), "[user %u]\n%s", (unsigned)getuid(),
		 body);
	return text;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- libioasid clients --------------------------------------------------- */

struct ioasid_ctx *remote_ctx(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(d.uri, &ctx);

	cr_assert_eq(r, 0, "ioasid_new(%s): %d %s", d.uri, r,
		     ioasid_last_error(NULL));
	return ctx;
}

/* A well-behaved client must keep working whatever the others send. */
void bystander_ok(struct ioasid_ctx *ctx)
{
	struct ioasid_ioas_info info;
	uint32_t id;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &id), 0, "bystander: %s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ioas_get_info(ctx, id, &info), 0);
	cr_assert_eq(info.ioas_id, id);
	cr_assert_eq(ioasid_ioas_destroy(ctx, id), 0);
}

/*
 * Wait until the daemon has exactly @sessions sessions: connections that
 * went away (the fixture's readiness probe, killed clients) are reaped
 * asynchronously.  Then its descriptor count means something.
 */
int settled_fds(struct ioasid_ctx *ctx, uint32_t sessions)
{
	struct ioasid_status st = { 0 };

	for (int i = 0; i < SETTLE_TRIES; i++) {
		cr_assert_eq(ioasid_get_status(ctx, &st), 0);
		if (st.nr_sessions == sessions)
			return daemon_count_fds(&d);
		sleep_ms(2);
	}
	cr_assert_fail("ioasidd has %u sessions, expected %u", st.nr_sessions,
		       sessions);
	return -1;
}

/* Descriptors of the daemon settle back to @want (closing is async). */
void expect_daemon_fds(int want)
{
	int n = -1;

	for (int i = 0; i < SETTLE_TRIES; i++) {
		n = daemon_count_fds(&d);
		if (n == want)
			return;
		sleep_ms(2);
	}
	cr_assert_eq(n, want, "ioasidd holds %d descriptors, expected %d", n,
		     want);
}

/* ---- raw messages -------------------------------------------------------- */

struct nlmsghdr *raw_hdr(struct raw *m)
{
	return (struct nlmsghdr *)m->b;
}

void raw_begin(struct raw *m, uint8_t cmd, uint32_t seq)
{
	struct genlmsghdr *g;

	memset(m, 0, sizeof(*m));
	raw_hdr(m)->nlmsg_type = IOASID_MSG_TYPE;
	raw_hdr(m)->nlmsg_flags = NLM_F_REQUEST;
	raw_hdr(m)->nlmsg_seq = seq;
	g = (struct genlmsghdr *)(m->b + NLMSG_HDRLEN);
	g->cmd = cmd;
	g->version = IOASID_PROTO_VERSION;
	m->len = NLMSG_HDRLEN + GENL_HDRLEN;
	raw_hdr(m)->nlmsg_len = (uint32_t)m->len;
}

void raw_attr(struct raw *m, uint16_t type, const void *data,
		     uint16_t len)
{
	struct nlattr *a = (struct nlattr *)(m->b + m->len);

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy(m->b + m->len + NLA_HDRLEN, data, len);
	m->len += NLA_ALIGN(NLA_HDRLEN + len);
	raw_hdr(m)->nlmsg_len = (uint32_t)m->len;
}

void raw_u32(struct raw *m, uint16_t type, uint32_t v)
{
	raw_attr(m, type, &v, sizeof(v));
}

void raw_u64(struct raw *m, uint16_t type, uint64_t v)
{
	raw_attr(m, type, &v, sizeof(v));
}

void raw_str(struct raw *m, uint16_t type, const char *s)
{
	raw_attr(m, type, s, (uint16_t)(strlen(s) + 1));
}

int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int sndbuf = 2 * IOASID_MAX_MSG;

	cr_assert(s >= 0);
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.sock);
	cr_assert_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0,
		     "connect: %s", strerror(errno));
	return s;
}

void raw_send(int s, const struct raw *m, const int *fds, int nfds)
{
	cr_assert_eq(send_fds(s, m->b, m->len, fds, nfds), (ssize_t)m->len,
		     "send: %s", strerror(errno));
}

void bytes_send(int s, const void *buf, size_t len)
{
	cr_assert_eq(send_fds(s, buf, len, NULL, 0), (ssize_t)len, "send: %s",
		     strerror(errno));
}

/* One packet: its length, 0 at end of connection, -errno on timeout. */
/* The descriptors the last raw_recv() got (ours to close). */
int rx_fds[8];
unsigned int rx_nfds;

static void rx_collect(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR(mh, cm)) {
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; cm->cmsg_type == SCM_RIGHTS && i < n; i++)
			memcpy(&rx_fds[rx_nfds++],
			       CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
}

void rx_close(void)
{
	for (unsigned int i = 0; i < rx_nfds; i++)
		close(rx_fds[i]);
	rx_nfds = 0;
}

ssize_t raw_recv(int s, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = rxbuf, .iov_len = sizeof(rxbuf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control),
	};
	struct pollfd p = { .fd = s, .events = POLLIN };
	ssize_t n;

	rx_close();
	if (poll(&p, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	if (n >= 0)
		rx_collect(&mh);
	return n < 0 ? -errno : n;
}

/* The next message must be the reply to @seq; returns its errno. */
int reply_errno(int s, uint32_t seq, struct proto_msg *m)
{
	char why[256];
	ssize_t n = raw_recv(s, 5000);

	cr_assert_gt(n, 0, "expected a reply to seq %u, got %zd", seq, n);
	cr_assert_eq(proto_parse(rxbuf, (size_t)n, rx_nfds, PROTO_FROM_DAEMON,
				 m, why, sizeof(why)), 0,
		     "the reply itself must be valid: %s", why);
	cr_assert_eq(m->cmd, IOASID_CMD_REPLY);
	cr_assert_eq(m->seq, seq, "reply to seq %u, expected %u", m->seq, seq);
	return (int)nla_get_u32((struct nlattr *)m->attr[IOASID_ATTR_ERRNO]);
}

/* An error reply with @err and a reason containing @part. */
void expect_error(int s, uint32_t seq, int err, const char *part)
{
	struct proto_msg m;
	const char *reason;
	int e = reply_errno(s, seq, &m);

	cr_assert_eq(e, err, "errno %d (%s), expected %d (%s)", e,
		     strerror(e), err, strerror(err));
	cr_assert(m.attr[IOASID_ATTR_ERRMSG], "an error carries a reason");
	reason = nla_data(m.attr[IOASID_ATTR_ERRMSG]);
	cr_assert_gt(strlen(reason), 5, "a readable reason");
	if (part)
		cr_assert(strstr(reason, part), "reason \"%s\" should mention "
			  "\"%s\"", reason, part);
}

void expect_ok(int s, uint32_t seq)
{
	struct proto_msg m;

	cr_assert_eq(reply_errno(s, seq, &m), 0);
}

/* An op over a raw connection with the codec; its result. */
int codec_call(int s, struct ioasid_op *op)
{
	static uint32_t seq = 50000;
	int fds[IOASID_MAX_FDS], r;
	unsigned int nfds;
	struct nl_msg *msg;
	struct proto_msg m;
	const void *buf;
	size_t len;

	cr_assert_eq(proto_encode_request(op, ++seq, &msg, fds, &nfds), 0,
		     "%s", op->errmsg);
	buf = proto_msg_data(msg, &len);
	cr_assert_eq(send_fds(s, buf, len, fds, (int)nfds), (ssize_t)len);
	nlmsg_free(msg);
	reply_errno(s, seq, &m);
	cr_assert_eq(proto_decode_reply(&m, rx_fds, op, &r), 0, "%s",
		     op->errmsg);
	/* the descriptor the reply named is the caller's now */
	for (unsigned int i = 0; i < rx_nfds; i++)
		if (rx_fds[i] == op->out_fd)
			rx_fds[i] = rx_fds[--rx_nfds];
	rx_close();
	return r;
}

void expect_disconnect(int s)
{
	ssize_t n = raw_recv(s, 5000);

	cr_assert(n == 0 || n == -ECONNRESET, "expected a disconnect, got "
		  "%zd", n);
}

