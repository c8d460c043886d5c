/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ioasidd protocol against a real daemon (tests/daemon_fixture.c): one
 * ioasidd per test in a private directory.
 *
 *   codec     encoder/decoder and policy table, no daemon
 *   policy    ioasidd.conf parser and verdicts, no daemon
 *   framing   packets whose netlink header does not add up: disconnect
 *   invalid   well-framed but invalid requests: an error reply with an
 *             errno and a reason
 *   daemon    sessions, isolation, quotas, uids, events, descriptors,
 *             back-pressure, shutdown, reload, socket activation
 *
 * Every malformed-message test keeps a second, well-behaved client
 * connected and checks that it still works afterwards, and that the
 * daemon holds no more descriptors than before.
 */
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

#include "daemon_fixture.h"
#include "helpers.h"
#include "policy.h"
#include "proto/codec.h"

#define MiB	(1ULL << 20)
#define GiB	(1ULL << 30)
#define RW	(IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED	IOASID_MAP_FIXED_IOVA
#define NIC	"0000:00:01.0"		/* built-in sim topology */

static struct daemon_fixture d;
static unsigned char rxbuf[IOASID_MAX_MSG] __attribute__((aligned(8)));

/* ---- daemon per test ----------------------------------------------------- */

static void start_daemon(const char *config)
{
	struct daemon_opts o = { .config = config, .log_level = "debug" };

	cr_assert_eq(daemon_start(&d, &o), 0, "ioasidd must start");
}

static void setup_daemon(void)
{
	start_daemon(NULL);
}

static void stop_quietly(void)
{
	if (d.pid > 0)
		daemon_stop(&d);
}

/* The end of every daemon test: no crash, no leak, clean exit. */
static void expect_clean_exit(void)
{
	cr_assert_eq(daemon_stop(&d), 0, "ioasidd must exit cleanly (status "
		     "0: no crash, no sanitizer report)");
}

static void restart_daemon(const char *config)
{
	expect_clean_exit();
	start_daemon(config);
}

static char *user_section(const char *body)
{
	static char text[1024];

	snprintf(text, sizeof(text), "[user %u]\n%s", (unsigned)getuid(),
		 body);
	return text;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Waits for the daemon (reaping, reloading, exiting) poll every 2 ms for
 * up to 30 s: a bound for a hang, not an expected time; under sanitizers
 * on a loaded 2-core machine a few seconds happen.
 */
#define SETTLE_TRIES	15000

/* ---- libioasid clients --------------------------------------------------- */

static struct ioasid_ctx *remote_ctx(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(d.uri, &ctx);

	cr_assert_eq(r, 0, "ioasid_new(%s): %d %s", d.uri, r,
		     ioasid_last_error(NULL));
	return ctx;
}

/* A well-behaved client must keep working whatever the others send. */
static void bystander_ok(struct ioasid_ctx *ctx)
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
static int settled_fds(struct ioasid_ctx *ctx, uint32_t sessions)
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
static void expect_daemon_fds(int want)
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

struct raw {
	unsigned char b[8192] __attribute__((aligned(8)));
	size_t len;
};

static struct nlmsghdr *raw_hdr(struct raw *m)
{
	return (struct nlmsghdr *)m->b;
}

static void raw_begin(struct raw *m, uint8_t cmd, uint32_t seq)
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

static void raw_attr(struct raw *m, uint16_t type, const void *data,
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

static void raw_u32(struct raw *m, uint16_t type, uint32_t v)
{
	raw_attr(m, type, &v, sizeof(v));
}

static void raw_u64(struct raw *m, uint16_t type, uint64_t v)
{
	raw_attr(m, type, &v, sizeof(v));
}

static void raw_str(struct raw *m, uint16_t type, const char *s)
{
	raw_attr(m, type, s, (uint16_t)(strlen(s) + 1));
}

static int raw_connect(void)
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

static ssize_t send_fds(int s, const void *buf, size_t len, const int *fds,
			int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control = { { 0 } };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (nfds) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL);
}

static void raw_send(int s, const struct raw *m, const int *fds, int nfds)
{
	cr_assert_eq(send_fds(s, m->b, m->len, fds, nfds), (ssize_t)m->len,
		     "send: %s", strerror(errno));
}

static void bytes_send(int s, const void *buf, size_t len)
{
	cr_assert_eq(send_fds(s, buf, len, NULL, 0), (ssize_t)len, "send: %s",
		     strerror(errno));
}

/* One packet: its length, 0 at end of connection, -errno on timeout. */
/* The descriptors the last raw_recv() got (ours to close). */
static int rx_fds[8];
static unsigned int rx_nfds;

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

static void rx_close(void)
{
	for (unsigned int i = 0; i < rx_nfds; i++)
		close(rx_fds[i]);
	rx_nfds = 0;
}

static ssize_t raw_recv(int s, int timeout_ms)
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
static int reply_errno(int s, uint32_t seq, struct proto_msg *m)
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
static void expect_error(int s, uint32_t seq, int err, const char *part)
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

static void expect_ok(int s, uint32_t seq)
{
	struct proto_msg m;

	cr_assert_eq(reply_errno(s, seq, &m), 0);
}

/* An op over a raw connection with the codec; its result. */
static int codec_call(int s, struct ioasid_op *op)
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

static void expect_disconnect(int s)
{
	ssize_t n = raw_recv(s, 5000);

	cr_assert(n == 0 || n == -ECONNRESET, "expected a disconnect, got "
		  "%zd", n);
}

/* ========================================================================== */
/* codec                                                                      */
/* ========================================================================== */

/* Every command of uapi/ioasid/proto.h. */
static const uint32_t all_commands[] = {
	IOASID_CMD_REPLY, IOASID_CMD_EVENT, IOASID_CMD_HELLO,
	IOASID_CMD_IOAS_ALLOC, IOASID_CMD_IOAS_DESTROY,
	IOASID_CMD_IOAS_SET_SNOOP, IOASID_CMD_IOAS_INFO, IOASID_CMD_IOAS_LIST,
	IOASID_CMD_MAP_FILE, IOASID_CMD_MAP_USER, IOASID_CMD_UNMAP,
	IOASID_CMD_COPY, IOASID_CMD_IOVA_RANGES, IOASID_CMD_ALLOW_IOVAS,
	IOASID_CMD_LOOKUP, IOASID_CMD_MAPPING_NEXT, IOASID_CMD_FILE_INFO,
	IOASID_CMD_MAP_BATCH, IOASID_CMD_CONVERT, IOASID_CMD_DIRTY_READ,
	IOASID_CMD_IOMMU_LIST, IOASID_CMD_DEVICE_LIST, IOASID_CMD_DEVICE_BIND,
	IOASID_CMD_DEVICE_UNBIND, IOASID_CMD_DEVICE_ATTACH,
	IOASID_CMD_DEVICE_DETACH, IOASID_CMD_DEVICE_REPLACE,
	IOASID_CMD_DEVICE_DMA, IOASID_CMD_DOMAIN_LIST, IOASID_CMD_DEVICE_INFO,
	IOASID_CMD_VM_BIND, IOASID_CMD_VM_UNBIND, IOASID_CMD_VM_INFO,
	IOASID_CMD_VM_SET_POLICY, IOASID_CMD_DEVICE_SET_VM, IOASID_CMD_VM_LIST,
	IOASID_CMD_FAULT_READ, IOASID_CMD_SUBSCRIBE, IOASID_CMD_STATUS,
	IOASID_CMD_EVENT_READ, IOASID_CMD_OBSERVE, IOASID_CMD_SIM_HOTPLUG,
	IOASID_CMD_DEVICE_GET_FD,
};

Test(codec, every_command_and_attribute_is_described)
{
	for (uint32_t a = 1; a < __IOASID_ATTR_MAX; a++)
		cr_assert_str_neq(proto_attr_name(a), "?", "attribute %u", a);
	for (size_t i = 0; i < sizeof(all_commands) / sizeof(all_commands[0]);
	     i++)
		cr_assert_not_null(proto_cmd_policy(all_commands[i]),
				   "command %u", all_commands[i]);
	cr_assert_null(proto_cmd_policy(0));
	cr_assert_null(proto_cmd_policy(__IOASID_CMD_MAX));
	cr_assert_null(proto_cmd_policy(255));
}

/* Every request field travels and comes back unchanged. */
Test(codec, request_roundtrip_for_every_command)
{
	int memfd = test_memfd(MiB), memfd2 = test_memfd(MiB);
	char data[64] = "payload";
	static char outbuf[PROTO_MAX_PAYLOAD];

	for (uint32_t c = 1; c < __IOASID_CMD_MAX; c++) {
		const struct proto_cmd_policy *pol = proto_cmd_policy(c);
		struct ioasid_op op, back;
		struct nl_msg *msg;
		struct proto_msg m;
		int fds[IOASID_MAX_FDS];
		unsigned int nfds;
		const void *buf;
		char why[256];
		size_t len;

		if (!pol || !(pol->flags & PROTO_CMD_REQUEST))
			continue;
		ioasid_op_init(&op, c);
#define SET(attr, field, v) \
	if (pol->allowed & (1ULL << IOASID_ATTR_##attr)) op.field = v
		SET(IOAS_ID, ioas_id, 11);
		SET(IOAS_ID2, ioas_id2, 12);
		SET(DEV_ID, dev_id, 13);
		SET(VM_ID, vm_id, 14);
		SET(FILE_ID, file_id, 15);
		SET(FLAGS, flags, 16);
		SET(MODE, mode, 17);
		SET(IOVA, iova, 1ULL << 40);
		SET(LENGTH, length, 1ULL << 41);
		SET(OFFSET, offset, 1ULL << 42);
		SET(FD_INDEX, fd, memfd);
		SET(FD_INDEX2, fd2, memfd2);
		SET(OUT_CAP, out_cap, 4096);
#undef SET
		if (pol->allowed & (1ULL << IOASID_ATTR_NAME))
			snprintf(op.name, sizeof(op.name), "dev-%u", c);
		if (pol->allowed & (1ULL << IOASID_ATTR_DATA)) {
			op.in = data;
			op.in_len = sizeof(data);
		}
		cr_assert_eq(proto_encode_request(&op, 1000 + c, &msg, fds,
						  &nfds), 0, "%s: %s",
			     pol->name, op.errmsg);
		buf = proto_msg_data(msg, &len);
		cr_assert_eq(proto_parse(buf, len, nfds, PROTO_FROM_CLIENT, &m,
					 why, sizeof(why)), 0, "%s: %s",
			     pol->name, why);
		cr_assert_eq(m.seq, 1000 + c);
		cr_assert_eq(m.cmd, c);
		proto_decode_request(&m, fds, &back, outbuf);
		cr_assert_eq(back.ioas_id, op.ioas_id, "%s", pol->name);
		cr_assert_eq(back.ioas_id2, op.ioas_id2);
		cr_assert_eq(back.dev_id, op.dev_id);
		cr_assert_eq(back.vm_id, op.vm_id);
		cr_assert_eq(back.file_id, op.file_id);
		cr_assert_eq(back.flags, op.flags);
		cr_assert_eq(back.mode, op.mode);
		cr_assert_eq(back.iova, op.iova);
		cr_assert_eq(back.length, op.length);
		cr_assert_eq(back.offset, op.offset);
		cr_assert_eq(back.fd, op.fd, "%s", pol->name);
		cr_assert_eq(back.fd2, op.fd2);
		cr_assert_str_eq(back.name, op.name);
		cr_assert_eq(back.in_len, op.in_len);
		if (op.in_len)
			cr_assert_arr_eq(back.in, op.in, op.in_len);
		cr_assert_eq(back.out_cap, op.out_cap);
		nlmsg_free(msg);
	}
	close(memfd);
	close(memfd2);
}

/* An optional attribute at its default stays home: older daemons. */
Test(codec, optional_defaults_are_not_sent)
{
	int fds[IOASID_MAX_FDS];
	struct ioasid_op op, back;
	unsigned int nfds;
	struct nl_msg *msg;
	struct proto_msg m;
	static char outbuf[PROTO_MAX_PAYLOAD];
	const void *buf;
	char why[256];
	size_t len;

	for (uint32_t flags = 0; flags < 2; flags++) {
		ioasid_op_init(&op, IOASID_CMD_DEVICE_SET_VM);
		op.dev_id = 3;
		op.flags = flags;
		cr_assert_eq(proto_encode_request(&op, 9, &msg, fds, &nfds),
			     0, "%s", op.errmsg);
		buf = proto_msg_data(msg, &len);
		cr_assert_eq(proto_parse(buf, len, nfds, PROTO_FROM_CLIENT, &m,
					 why, sizeof(why)), 0, "%s", why);
		cr_assert_eq(!!m.attr[IOASID_ATTR_FLAGS], flags,
			     "FLAGS %u sent: %d", flags,
			     !!m.attr[IOASID_ATTR_FLAGS]);
		cr_assert(m.attr[IOASID_ATTR_VM_ID], "required: always");
		proto_decode_request(&m, fds, &back, outbuf);
		cr_assert_eq(back.flags, flags);
		cr_assert_eq(back.vm_id, 0);
		nlmsg_free(msg);
	}
}

/* An op field the command does not carry is an error, never lost. */
Test(codec, encoder_refuses_what_cannot_travel)
{
	struct ioasid_op op;
	struct nl_msg *msg;
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	static char big[PROTO_MAX_PAYLOAD + 1];

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	op.iova = 5;
	cr_assert_eq(proto_encode_request(&op, 1, &msg, fds, &nfds), -EINVAL);
	cr_assert(strstr(op.errmsg, "IOVA"), "%s", op.errmsg);

	ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
	cr_assert_eq(proto_encode_request(&op, 1, &msg, fds, &nfds), -EBADF);
	op.fd = 9999;
	cr_assert_eq(proto_encode_request(&op, 1, &msg, fds, &nfds), -EBADF);

	ioasid_op_init(&op, IOASID_CMD_ALLOW_IOVAS);
	op.in = big;
	op.in_len = sizeof(big);
	cr_assert_eq(proto_encode_request(&op, 1, &msg, fds, &nfds), -E2BIG);

	ioasid_op_init(&op, IOASID_CMD_REPLY);
	cr_assert_eq(proto_encode_request(&op, 1, &msg, fds, &nfds),
		     -EOPNOTSUPP);
	ioasid_op_init(&op, 200);
	cr_assert_eq(proto_encode_request(&op, 1, &msg, fds, &nfds),
		     -EOPNOTSUPP);
}

static void reply_roundtrip(struct ioasid_op *op, int result,
			    struct ioasid_op *back, int *back_result)
{
	struct nl_msg *msg;
	struct proto_msg m;
	const void *buf;
	char why[256];
	size_t len;

	cr_assert_eq(proto_encode_reply(op, result, 77, &msg), 0);
	buf = proto_msg_data(msg, &len);
	cr_assert_eq(proto_parse(buf, len, 0, PROTO_FROM_DAEMON, &m, why,
				 sizeof(why)), 0, "%s", why);
	cr_assert_eq(m.seq, 77);
	cr_assert_eq(proto_decode_reply(&m, NULL, back, back_result), 0, "%s",
		     back->errmsg);
	nlmsg_free(msg);
}

Test(codec, replies_carry_results_and_partial_lists)
{
	uint32_t ids[4] = { 1, 2, 3, 4 }, got[4] = { 0 };
	struct ioasid_ioas_info info = { .ioas_id = 9 }, info_back = { 0 };
	struct ioasid_op op, back;
	int r;

	/* a list that did not fit: the part that fits travels */
	ioasid_op_init(&op, IOASID_CMD_IOAS_LIST);
	op.out = ids;
	op.out_cap = 8;
	op.out_len = 16;
	snprintf(op.errmsg, sizeof(op.errmsg), "4 do not fit in 2");
	ioasid_op_init(&back, IOASID_CMD_IOAS_LIST);
	back.out = got;
	back.out_cap = 8;
	reply_roundtrip(&op, -EMSGSIZE, &back, &r);
	cr_assert_eq(r, -EMSGSIZE);
	cr_assert_eq(back.out_len, 16, "the size needed comes back");
	cr_assert_eq(got[0], 1);
	cr_assert_eq(got[1], 2);
	cr_assert_eq(got[2], 0, "nothing beyond the capacity");
	cr_assert_str_eq(back.errmsg, "4 do not fit in 2");

	/* a struct that did not fit: nothing written */
	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.out = &info;
	op.out_cap = 8;
	op.out_len = sizeof(info);
	ioasid_op_init(&back, IOASID_CMD_IOAS_INFO);
	back.out = &info_back;
	back.out_cap = 8;
	reply_roundtrip(&op, -EMSGSIZE, &back, &r);
	cr_assert_eq(r, -EMSGSIZE);
	cr_assert_eq(info_back.ioas_id, 0, "out-parameters untouched");

	/* success: scalars and the struct */
	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.out = &info;
	op.out_cap = sizeof(info);
	op.out_len = sizeof(info);
	op.out_id = 5;
	op.out_iova = 1ULL << 44;
	op.out_bytes = 1ULL << 33;
	ioasid_op_init(&back, IOASID_CMD_IOAS_INFO);
	back.out = &info_back;
	back.out_cap = sizeof(info_back);
	reply_roundtrip(&op, 0, &back, &r);
	cr_assert_eq(r, 0);
	cr_assert_eq(info_back.ioas_id, 9);
	cr_assert_eq(back.out_id, 5);
	cr_assert_eq(back.out_iova, 1ULL << 44);
	cr_assert_eq(back.out_bytes, 1ULL << 33);

	/* more result than the request had room for: a protocol error */
	ioasid_op_init(&back, IOASID_CMD_IOAS_INFO);
	back.out = &info_back;
	back.out_cap = 4;
	{
		struct nl_msg *msg;
		struct proto_msg m;
		const void *buf;
		char why[256];
		size_t len;

		cr_assert_eq(proto_encode_reply(&op, 0, 1, &msg), 0);
		buf = proto_msg_data(msg, &len);
		cr_assert_eq(proto_parse(buf, len, 0, PROTO_FROM_DAEMON, &m,
					 why, sizeof(why)), 0);
		cr_assert_eq(proto_decode_reply(&m, NULL, &back, &r), -EPROTO);
		nlmsg_free(msg);
	}
}

/* Build @op's reply, parse it as a client that got @nfds descriptors. */
static int parse_reply(const struct ioasid_op *op, int result,
		       unsigned int nfds, struct proto_msg *m,
		       struct nl_msg **msg, char *why, size_t whylen)
{
	const void *buf;
	size_t len;

	cr_assert_eq(proto_encode_reply(op, result, 5, msg), 0);
	buf = proto_msg_data(*msg, &len);
	return proto_parse(buf, len, nfds, PROTO_FROM_DAEMON, m, why, whylen);
}

/* A raw reply with @err naming descriptor 0 (what no daemon may send). */
static void raw_reply_with_fd(struct raw *r, uint32_t err)
{
	raw_begin(r, IOASID_CMD_REPLY, 5);
	raw_hdr(r)->nlmsg_flags = 0;
	raw_u32(r, IOASID_ATTR_ERRNO, err);
	raw_u32(r, IOASID_ATTR_OUT_FD_INDEX, 0);
}

/* A descriptor comes back only in the successful reply of DEVICE_GET_FD. */
Test(codec, reply_descriptors_only_where_the_command_returns_one)
{
	int fds[1] = { 1234 }, r;
	struct ioasid_op op, back;
	struct proto_msg m;
	struct nl_msg *msg;
	struct raw raw;
	char why[256];

	ioasid_op_init(&op, IOASID_CMD_DEVICE_GET_FD);
	cr_assert_eq(op.out_fd, -1, "no descriptor by default");
	op.out_fd = 77;
	cr_assert_eq(proto_reply_fd(&op, 0), 77);
	cr_assert_eq(proto_reply_fd(&op, -ENOENT), -1, "not with an error");
	/* success: OUT_FD_INDEX names the one descriptor */
	cr_assert_eq(parse_reply(&op, 0, 1, &m, &msg, why, sizeof(why)), 0,
		     "%s", why);
	ioasid_op_init(&back, IOASID_CMD_DEVICE_GET_FD);
	cr_assert_eq(proto_decode_reply(&m, fds, &back, &r), 0, "%s",
		     back.errmsg);
	cr_assert_eq(r, 0);
	cr_assert_eq(back.out_fd, 1234, "the received descriptor");
	/* the same reply decoded for a command that returns none */
	ioasid_op_init(&back, IOASID_CMD_IOAS_ALLOC);
	cr_assert_eq(proto_decode_reply(&m, fds, &back, &r), -EPROTO);
	cr_assert(strstr(back.errmsg, "none belongs"), "%s", back.errmsg);
	cr_assert_eq(back.out_fd, -1);
	nlmsg_free(msg);
	/* named but not sent, or sent twice as many */
	cr_assert_eq(parse_reply(&op, 0, 0, &m, &msg, why, sizeof(why)),
		     -EINVAL);
	cr_assert(strstr(why, "OUT_FD_INDEX is 0 but 0"), "%s", why);
	nlmsg_free(msg);
	cr_assert_eq(parse_reply(&op, 0, 2, &m, &msg, why, sizeof(why)),
		     -EINVAL);
	cr_assert(strstr(why, "2 descriptor(s) sent"), "%s", why);
	nlmsg_free(msg);

	/* an error carries no descriptor, even if the op had one */
	cr_assert_eq(parse_reply(&op, -EOPNOTSUPP, 0, &m, &msg, why,
				 sizeof(why)), 0, "%s", why);
	ioasid_op_init(&back, IOASID_CMD_DEVICE_GET_FD);
	cr_assert_eq(proto_decode_reply(&m, NULL, &back, &r), 0);
	cr_assert_eq(r, -EOPNOTSUPP);
	cr_assert_eq(back.out_fd, -1);
	nlmsg_free(msg);

	/* success without the descriptor */
	op.out_fd = -1;
	cr_assert_eq(parse_reply(&op, 0, 0, &m, &msg, why, sizeof(why)), 0);
	cr_assert_eq(proto_decode_reply(&m, NULL, &back, &r), -EPROTO);
	cr_assert(strstr(back.errmsg, "no descriptor"), "%s", back.errmsg);
	nlmsg_free(msg);

	/* an error that names a descriptor */
	raw_reply_with_fd(&raw, ENOENT);
	cr_assert_eq(proto_parse(raw.b, raw.len, 1, PROTO_FROM_DAEMON, &m, why,
				 sizeof(why)), 0, "%s", why);
	ioasid_op_init(&back, IOASID_CMD_DEVICE_GET_FD);
	cr_assert_eq(proto_decode_reply(&m, fds, &back, &r), -EPROTO);
	cr_assert(strstr(back.errmsg, "with an error"), "%s", back.errmsg);
	cr_assert_eq(back.out_fd, -1);

	/* requests never carry OUT_FD_INDEX */
	raw_begin(&raw, IOASID_CMD_DEVICE_GET_FD, 6);
	raw_u32(&raw, IOASID_ATTR_DEV_ID, 1);
	raw_u32(&raw, IOASID_ATTR_OUT_FD_INDEX, 0);
	cr_assert_eq(proto_parse(raw.b, raw.len, 1, PROTO_FROM_CLIENT, &m, why,
				 sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "OUT_FD_INDEX does not belong"), "%s", why);
	/* nor does an event */
	raw_begin(&raw, IOASID_CMD_EVENT, 0);
	raw_hdr(&raw)->nlmsg_flags = 0;
	raw_attr(&raw, IOASID_ATTR_OUT_DATA, "12345678", 8);
	cr_assert_eq(proto_parse(raw.b, raw.len, 1, PROTO_FROM_DAEMON, &m, why,
				 sizeof(why)), -EINVAL, "unnamed descriptor");
}

Test(codec, events_follow_the_abi_size_rules)
{
	struct ioasid_event ev = { .size = sizeof(ev), .type = 1, .id = 7 };
	struct ioasid_event out;
	struct nl_msg *msg;
	struct proto_msg m = { .cmd = IOASID_CMD_EVENT };
	unsigned char big[sizeof(ev) + 8 + NLA_HDRLEN] = { 0 };
	struct nlattr *a = (struct nlattr *)big;
	const void *buf;
	char why[128];
	size_t len;

	cr_assert_eq(proto_encode_event(&ev, &msg), 0);
	buf = proto_msg_data(msg, &len);
	cr_assert_eq(proto_parse(buf, len, 0, PROTO_FROM_DAEMON, &m, why,
				 sizeof(why)), 0, "%s", why);
	cr_assert_eq(m.seq, 0, "events have seq 0");
	cr_assert_eq(proto_decode_event(&m, &out), 0);
	cr_assert_eq(out.id, 7);
	nlmsg_free(msg);

	/* a longer event from a newer daemon: zero tail accepted */
	a->nla_type = IOASID_ATTR_OUT_DATA;
	a->nla_len = (uint16_t)(NLA_HDRLEN + sizeof(ev) + 8);
	memcpy(big + NLA_HDRLEN, &ev, sizeof(ev));
	m.cmd = IOASID_CMD_EVENT;
	m.attr[IOASID_ATTR_OUT_DATA] = a;
	cr_assert_eq(proto_decode_event(&m, &out), 0);
	big[NLA_HDRLEN + sizeof(ev) + 3] = 1;
	cr_assert_eq(proto_decode_event(&m, &out), -E2BIG);
	/* a shorter one is zero-filled */
	a->nla_len = NLA_HDRLEN + 16;
	cr_assert_eq(proto_decode_event(&m, &out), 0);
	cr_assert_eq(out.id, 7);
	cr_assert_eq(out.timestamp_ns, 0);
}

Test(codec, libnl_errors_become_errnos)
{
	cr_assert_eq(proto_nle_errno(-NLE_NOMEM), -EMSGSIZE);
	cr_assert_eq(proto_nle_errno(NLE_INVAL), -EINVAL);
	cr_assert_eq(proto_nle_errno(-NLE_RANGE), -ERANGE);
	cr_assert_eq(proto_nle_errno(-NLE_MSG_TRUNC), -EBADMSG);
	cr_assert_eq(proto_nle_errno(0), 0);
	for (int e = 1; e <= NLE_MAX + 5; e++)
		cr_assert_lt(proto_nle_errno(-e), 0, "NLE %d", e);
}

/* ========================================================================== */
/* policy                                                                     */
/* ========================================================================== */

static struct policy *parse_ok(const char *text)
{
	struct policy *p = NULL;
	char err[320] = "";

	cr_assert_eq(policy_parse(text, "t.conf", &p, err, sizeof(err)), 0,
		     "%s", err);
	return p;
}

static void parse_fails(const char *text, const char *where,
			const char *part)
{
	struct policy *p = NULL;
	char err[320] = "";

	cr_assert_eq(policy_parse(text, "t.conf", &p, err, sizeof(err)),
		     -EINVAL, "should fail: %s", text);
	cr_assert(strstr(err, where), "\"%s\" should name %s", err, where);
	cr_assert(strstr(err, part), "\"%s\" should say %s", err, part);
	cr_assert_null(p);
}

Test(policy, sections_values_and_precedence)
{
	struct policy *p = parse_ok(
		"# comment\n"
		"[daemon]\n"
		"socket-mode = 0640\n"
		"max-clients = 10\n"
		"[default]\n"
		"max-ioas = 4   # trailing comment\n"
		"max-bytes-mapped = 64K\n"
		"devices = none\n"
		"\n"
		"[group 4242]\n"
		"devices = 0000:00:0[12].* 0000:01:00.0\n"
		"max-mappings = unlimited\n"
		"[user 1000]\n"
		"max-ioas = 1\n"
		"allow-noncoherent = yes\n"
		"trust-hints = on\n"
		"observe = yes\n"
		"[user 1001]\n"
		"allow = no\n");
	struct policy_result res;
	gid_t groups[] = { 7, 4242 };

	cr_assert_eq(p->socket_mode, 0640);
	cr_assert_eq(p->max_clients, 10);

	policy_lookup(p, 1000, 4242, groups, 2, &res);
	cr_assert(res.allow);
	cr_assert_str_eq(res.label, "user 1000", "user beats group");
	cr_assert_eq(res.lim.max_ioas, 1);
	cr_assert_eq(res.lim.max_bytes_mapped, 64 * 1024, "from [default]");
	cr_assert(res.lim.allow_noncoherent);
	cr_assert(res.lim.trust_hints);
	cr_assert(res.lim.observe);
	cr_assert_eq(res.lim.nr_devices, 0);
	cr_assert(!res.lim.all_devices);

	policy_lookup(p, 2000, 100, groups, 2, &res);
	cr_assert_str_eq(res.label, "group 4242", "supplementary group");
	cr_assert_eq(res.lim.max_ioas, 4);
	cr_assert_eq(res.lim.max_mappings, POLICY_UNLIMITED);
	cr_assert_eq(res.lim.nr_devices, 2);
	cr_assert(!res.lim.allow_noncoherent, "built-in default");
	cr_assert(!res.lim.observe, "built-in default");

	policy_lookup(p, 2000, 100, NULL, 0, &res);
	cr_assert_str_eq(res.label, "default");
	cr_assert_eq(res.lim.max_mappings, 4194304, "built-in default");

	policy_lookup(p, 1001, 100, NULL, 0, &res);
	cr_assert(!res.allow);

	policy_lookup(p, 0, 0, NULL, 0, &res);
	cr_assert(res.allow, "root gets everything");
	cr_assert(res.lim.all_devices);
	cr_assert(res.lim.observe);
	cr_assert_eq(res.lim.max_ioas, POLICY_UNLIMITED);
	policy_free(p);

	p = parse_ok("[user 0]\nmax-ioas = 3\n");
	policy_lookup(p, 0, 0, NULL, 0, &res);
	cr_assert_eq(res.lim.max_ioas, 3, "unless configured otherwise");
	policy_free(p);
}

Test(policy, session_limits_expand_globs)
{
	struct policy *p = parse_ok("[default]\n"
				    "devices = 0000:00:0[12].* 0000:09:00.0\n"
				    "max-ioas = unlimited\n");
	const char *names[] = { "0000:00:01.0", "0000:00:02.1",
				"0000:00:03.0" };
	struct session_limits l;
	struct policy_result res;

	policy_lookup(p, 1234, 1234, NULL, 0, &res);
	cr_assert_eq(policy_session_limits(&res, names, 3, &l), 0);
	cr_assert_eq(l.max_ioas, UINT32_MAX);
	/* the pattern, its two matches and the plain name */
	cr_assert_eq(l.nr_devices, 4);
	cr_assert_str_eq(l.devices[0], "0000:00:0[12].*");
	cr_assert_str_eq(l.devices[1], "0000:00:01.0");
	cr_assert_str_eq(l.devices[2], "0000:00:02.1");
	cr_assert_str_eq(l.devices[3], "0000:09:00.0");
	policy_limits_release(&l);

	policy_free(p);
	p = parse_ok("[default]\ndevices = none\n");
	policy_lookup(p, 1234, 1234, NULL, 0, &res);
	cr_assert_eq(policy_session_limits(&res, names, 3, &l), 0);
	cr_assert_not_null(l.devices, "none is an empty list, not NULL");
	cr_assert_eq(l.nr_devices, 0);
	policy_limits_release(&l);
	policy_free(p);

	p = parse_ok("[default]\ndevices = *\n");
	policy_lookup(p, 1234, 1234, NULL, 0, &res);
	cr_assert_eq(policy_session_limits(&res, names, 3, &l), 0);
	cr_assert_null(l.devices, "all devices");
	policy_free(p);
}

Test(policy, strict_errors_with_line_numbers)
{
	parse_fails("[default]\n\nfoo = 1\n", "t.conf:3:", "unknown key");
	parse_fails("[default]\nmax-ioas = 1\nmax-ioas = 2\n", ":3:", "twice");
	parse_fails("[default]\n[default]\n", ":2:", "twice");
	parse_fails("[user 5]\n[user 5]\n", ":2:", "already");
	parse_fails("max-ioas = 1\n", ":1:", "outside");
	parse_fails("[default]\nallow = maybe\n", ":2:", "yes or no");
	parse_fails("[default]\nmax-ioas = -1\n", ":2:", "not a number");
	parse_fails("[default]\nmax-ioas = 12x\n", ":2:", "not a number");
	parse_fails("[default]\nmax-ioas = 99999999999\n", ":2:", "maximum");
	parse_fails("[default]\nmax-bytes-mapped = 4Q\n", ":2:", "suffix");
	parse_fails("[user no-such-user-here]\n", ":1:", "no user");
	parse_fails("[group no-such-group-here]\n", ":1:", "no group");
	parse_fails("[frobnicate]\n", ":1:", "unknown section");
	parse_fails("[default\n", ":1:", "]");
	parse_fails("[default x]\n", ":1:", "no argument");
	parse_fails("[user]\n", ":1:", "name");
	parse_fails("[default]\nmax-ioas =\n", ":2:", "missing value");
	parse_fails("[default]\njust words\n", ":2:", "key = value");
	parse_fails("[daemon]\nsocket-mode = 0999\n", ":2:", "octal");
	parse_fails("[daemon]\nmax-clients = 0\n", ":2:", "max-clients");
	parse_fails("[daemon]\nmax-ioas = 1\n", ":2:", "[daemon]");
	parse_fails("[default]\ndevices = a b\tc none\n", ":2:", "devices");
}

Test(policy, missing_default_file_means_builtin)
{
	struct policy *p = NULL;
	char err[320];

	cr_assert_eq(policy_load("/nonexistent/ioasidd.conf", true, &p, err,
				 sizeof(err)), 0);
	cr_assert_eq(p->socket_mode, 0660);
	policy_free(p);
	cr_assert_eq(policy_load("/nonexistent/ioasidd.conf", false, &p, err,
				 sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/ioasidd.conf"));
}

/* ========================================================================== */
/* framing violations: disconnect, others unaffected                          */
/* ========================================================================== */

TestSuite(framing, .init = setup_daemon, .fini = stop_quietly, .timeout = 60);

/* Send @buf on a fresh connection; it must be dropped, others must not. */
static void expect_framing_drop(const void *buf, size_t len)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int fds = settled_fds(ctx, 1);
	int s = raw_connect();

	bytes_send(s, buf, len);
	expect_disconnect(s);
	close(s);
	bystander_ok(ctx);
	expect_daemon_fds(fds);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(framing, truncated_header)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 1);
	expect_framing_drop(m.b, 10);
}

Test(framing, empty_packet)
{
	expect_framing_drop("", 0);
}

Test(framing, nlmsg_len_larger_than_packet)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 1);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	raw_hdr(&m)->nlmsg_len += 4;
	expect_framing_drop(m.b, m.len);
}

Test(framing, nlmsg_len_smaller_than_packet)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 1);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	raw_hdr(&m)->nlmsg_len -= 8;
	expect_framing_drop(m.b, m.len);
}

Test(framing, huge_nlmsg_len)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 1);
	raw_hdr(&m)->nlmsg_len = 0xffffffff;
	expect_framing_drop(m.b, m.len);
}

Test(framing, packet_larger_than_the_maximum)
{
	size_t len = IOASID_MAX_MSG + 4096;
	unsigned char *big = calloc(1, len);
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 1);
	memcpy(big, m.b, m.len);
	((struct nlmsghdr *)big)->nlmsg_len = (uint32_t)len;
	expect_framing_drop(big, len);
	free(big);
}

/* More descriptors than any message may carry: all of them closed. */
Test(framing, too_many_descriptors)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int before = settled_fds(ctx, 1);
	int fds[IOASID_MAX_FDS + 2];
	int s = raw_connect();
	struct raw m;

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		fds[i] = test_memfd(4096);
	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 1);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	raw_send(s, &m, fds, IOASID_MAX_FDS + 2);
	expect_disconnect(s);
	close(s);
	bystander_ok(ctx);
	expect_daemon_fds(before);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close(fds[i]);
	ioasid_unref(ctx);
	expect_clean_exit();
}

/* ========================================================================== */
/* invalid requests: error reply with errno and reason                        */
/* ========================================================================== */

TestSuite(invalid, .init = setup_daemon, .fini = stop_quietly, .timeout = 60);

/* Send @m (with @fds) and expect @err with @part in the reason. */
static void expect_invalid(struct raw *m, const int *fds, int nfds, int err,
			   const char *part)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int before = settled_fds(ctx, 1);
	int s = raw_connect();

	raw_send(s, m, fds, nfds);
	expect_error(s, raw_hdr(m)->nlmsg_seq, err, part);
	/* the connection stays usable after an error reply */
	raw_begin(m, IOASID_CMD_IOAS_LIST, 4242);
	raw_u32(m, IOASID_ATTR_OUT_CAP, 64);
	raw_send(s, m, NULL, 0);
	expect_ok(s, 4242);
	close(s);
	bystander_ok(ctx);
	expect_daemon_fds(before);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(invalid, short_genl_header)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 3);
	m.len = NLMSG_HDRLEN + 2;
	raw_hdr(&m)->nlmsg_len = (uint32_t)m.len;
	expect_invalid(&m, NULL, 0, EINVAL, "genetlink");
}

Test(invalid, unknown_command)
{
	struct raw m;

	raw_begin(&m, 200, 5);
	expect_invalid(&m, NULL, 0, EINVAL, "unknown command 200");
}

Test(invalid, every_unknown_or_daemon_only_command)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int s = raw_connect();
	struct raw m;

	for (uint32_t c = 0; c < 256; c++) {
		const struct proto_cmd_policy *p = proto_cmd_policy(c);

		if (p && (p->flags & PROTO_CMD_REQUEST))
			continue;
		raw_begin(&m, (uint8_t)c, 100 + c);
		raw_send(s, &m, NULL, 0);
		expect_error(s, 100 + c, EINVAL, "unknown command");
	}
	close(s);
	bystander_ok(ctx);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(invalid, wrong_version_type_and_flags)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int s = raw_connect();
	struct raw m;

	raw_begin(&m, IOASID_CMD_HELLO, 1);
	((struct genlmsghdr *)(m.b + NLMSG_HDRLEN))->version = 99;
	raw_send(s, &m, NULL, 0);
	expect_error(s, 1, EPROTONOSUPPORT, "version 99");

	raw_begin(&m, IOASID_CMD_HELLO, 2);
	((struct genlmsghdr *)(m.b + NLMSG_HDRLEN))->reserved = 1;
	raw_send(s, &m, NULL, 0);
	expect_error(s, 2, EINVAL, "reserved");

	raw_begin(&m, IOASID_CMD_HELLO, 3);
	raw_hdr(&m)->nlmsg_type = NLMSG_ERROR;
	raw_send(s, &m, NULL, 0);
	expect_error(s, 3, EINVAL, "type");

	raw_begin(&m, IOASID_CMD_HELLO, 4);
	raw_hdr(&m)->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	raw_send(s, &m, NULL, 0);
	expect_error(s, 4, EINVAL, "flags");
	close(s);
	bystander_ok(ctx);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(invalid, missing_required_attribute)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_DESTROY, 7);
	expect_invalid(&m, NULL, 0, EINVAL, "needs attribute IOAS_ID");
}

Test(invalid, duplicate_attribute)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_DESTROY, 8);
	raw_u32(&m, IOASID_ATTR_IOAS_ID, 1);
	raw_u32(&m, IOASID_ATTR_IOAS_ID, 2);
	expect_invalid(&m, NULL, 0, EINVAL, "duplicate attribute IOAS_ID");
}

Test(invalid, wrong_attribute_size)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_DESTROY, 9);
	raw_u64(&m, IOASID_ATTR_IOAS_ID, 1);
	expect_invalid(&m, NULL, 0, EINVAL, "IOAS_ID has 8 bytes");
}

Test(invalid, short_u64_attribute)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_UNMAP, 10);
	raw_u32(&m, IOASID_ATTR_IOAS_ID, 1);
	raw_u32(&m, IOASID_ATTR_IOVA, 0);
	raw_u64(&m, IOASID_ATTR_LENGTH, 4096);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	expect_invalid(&m, NULL, 0, EINVAL, "IOVA has 4 bytes, expected 8");
}

Test(invalid, unknown_attribute)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 11);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	raw_u32(&m, 99, 0);
	expect_invalid(&m, NULL, 0, EINVAL, "unknown attribute type 99");
}

Test(invalid, attribute_zero_and_nested_flag)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int s = raw_connect();
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 1);
	raw_u32(&m, 0, 0);
	raw_send(s, &m, NULL, 0);
	expect_error(s, 1, EINVAL, "unknown attribute");
	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 2);
	raw_u32(&m, IOASID_ATTR_FLAGS | NLA_F_NESTED, 0);
	raw_send(s, &m, NULL, 0);
	expect_error(s, 2, EINVAL, "nested");
	close(s);
	bystander_ok(ctx);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(invalid, attribute_not_allowed_for_the_command)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 12);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	raw_u64(&m, IOASID_ATTR_IOVA, 0x1000);
	expect_invalid(&m, NULL, 0, EINVAL, "IOVA does not belong in "
		       "IOAS_ALLOC");
}

Test(invalid, attribute_length_beyond_the_message)
{
	struct raw m;
	struct nlattr *a;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 13);
	a = (struct nlattr *)(m.b + m.len);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	a->nla_len = 0xfff0;
	expect_invalid(&m, NULL, 0, EINVAL, "claims");
}

Test(invalid, attribute_length_below_its_header)
{
	struct raw m;
	struct nlattr *a;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 14);
	a = (struct nlattr *)(m.b + m.len);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	a->nla_len = 2;
	expect_invalid(&m, NULL, 0, EINVAL, "claims");
}

Test(invalid, stray_bytes_after_the_attributes)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 15);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	m.len += 2;
	raw_hdr(&m)->nlmsg_len = (uint32_t)m.len;
	expect_invalid(&m, NULL, 0, EINVAL, "stray");
}

Test(invalid, huge_out_cap)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_LIST, 16);
	raw_u32(&m, IOASID_ATTR_OUT_CAP, 0xffffffff);
	expect_invalid(&m, NULL, 0, EINVAL, "OUT_CAP");
}

Test(invalid, string_without_nul)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_HELLO, 17);
	raw_attr(&m, IOASID_ATTR_NAME, "abcd", 4);
	expect_invalid(&m, NULL, 0, EINVAL, "NUL-terminated");
}

Test(invalid, string_with_embedded_nul)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_HELLO, 18);
	raw_attr(&m, IOASID_ATTR_NAME, "ab\0cd", 6);
	expect_invalid(&m, NULL, 0, EINVAL, "NUL-terminated");
}

Test(invalid, string_too_long)
{
	char name[IOASID_NAME_MAX + 8];
	struct raw m;

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	raw_begin(&m, IOASID_CMD_HELLO, 19);
	raw_str(&m, IOASID_ATTR_NAME, name);
	expect_invalid(&m, NULL, 0, EINVAL, "NAME");
}

Test(invalid, descriptor_where_none_is_expected)
{
	int fd = test_memfd(4096);
	struct raw m;

	raw_begin(&m, IOASID_CMD_IOAS_ALLOC, 20);
	raw_u32(&m, IOASID_ATTR_FLAGS, 0);
	expect_invalid(&m, &fd, 1, EINVAL, "descriptor");
	close(fd);
}

Test(invalid, no_descriptor_where_one_is_required)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_MAP_FILE, 21);
	raw_u32(&m, IOASID_ATTR_IOAS_ID, 1);
	raw_u32(&m, IOASID_ATTR_FD_INDEX, 0);
	raw_u64(&m, IOASID_ATTR_OFFSET, 0);
	raw_u64(&m, IOASID_ATTR_IOVA, 0);
	raw_u64(&m, IOASID_ATTR_LENGTH, 4096);
	raw_u32(&m, IOASID_ATTR_FLAGS, RW);
	expect_invalid(&m, NULL, 0, EINVAL, "FD_INDEX is 0 but 0");
}

Test(invalid, no_fd_index_where_one_is_required)
{
	int fd = test_memfd(4096);
	struct raw m;

	raw_begin(&m, IOASID_CMD_MAP_FILE, 22);
	raw_u32(&m, IOASID_ATTR_IOAS_ID, 1);
	raw_u64(&m, IOASID_ATTR_OFFSET, 0);
	raw_u64(&m, IOASID_ATTR_IOVA, 0);
	raw_u64(&m, IOASID_ATTR_LENGTH, 4096);
	raw_u32(&m, IOASID_ATTR_FLAGS, RW);
	expect_invalid(&m, &fd, 1, EINVAL, "needs attribute FD_INDEX");
	close(fd);
}

Test(invalid, one_descriptor_named_twice)
{
	int fd = test_memfd(4096);
	struct raw m;

	raw_begin(&m, IOASID_CMD_VM_BIND, 23);
	raw_u32(&m, IOASID_ATTR_FD_INDEX, 0);
	raw_u32(&m, IOASID_ATTR_FD_INDEX2, 0);
	expect_invalid(&m, &fd, 1, EINVAL, "named twice");
	close(fd);
}

Test(invalid, map_user_cannot_cross_processes)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_MAP_USER, 24);
	raw_u32(&m, IOASID_ATTR_IOAS_ID, 1);
	raw_u64(&m, IOASID_ATTR_OFFSET, 0x10000);
	raw_u64(&m, IOASID_ATTR_IOVA, 0);
	raw_u64(&m, IOASID_ATTR_LENGTH, 4096);
	raw_u32(&m, IOASID_ATTR_FLAGS, RW);
	expect_invalid(&m, NULL, 0, EOPNOTSUPP, "memfd");
}

Test(invalid, event_read_is_embedded_only)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_EVENT_READ, 25);
	expect_invalid(&m, NULL, 0, EOPNOTSUPP, "EVENT");
}

/* ========================================================================== */
/* the daemon                                                                 */
/* ========================================================================== */

TestSuite(daemon, .init = setup_daemon, .fini = stop_quietly, .timeout = 60);

Test(daemon, hello_backend_and_status)
{
	struct ioasid_ctx *a = remote_ctx(), *b = remote_ctx();
	struct ioasid_status st;

	cr_assert(ioasid_is_remote(a));
	cr_assert_str_eq(ioasid_get_backend(a), "sim");
	cr_assert_eq(ioasid_get_status(a, &st), 0, "%s",
		     ioasid_last_error(a));
	cr_assert(st.flags & 1, "answered by ioasidd");
	cr_assert_eq(st.pid, (uint32_t)d.pid);
	cr_assert_geq(st.nr_sessions, 2);
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

Test(daemon, pipelined_requests_are_answered_in_order)
{
	int s = raw_connect();
	struct raw m;

	for (uint32_t seq = 7; seq < 12; seq++) {
		raw_begin(&m, IOASID_CMD_IOAS_LIST, seq);
		raw_u32(&m, IOASID_ATTR_OUT_CAP, 64);
		raw_send(s, &m, NULL, 0);
	}
	for (uint32_t seq = 7; seq < 12; seq++)
		expect_ok(s, seq);
	close(s);
	expect_clean_exit();
}

Test(daemon, clients_cannot_name_each_others_objects)
{
	struct ioasid_ctx *a = remote_ctx(), *b = remote_ctx();
	struct ioasid_ioas_info info;
	struct ioasid_mapping map;
	uint32_t ioas_a, ioas_b, dev_a, dev_b, ids[8], nr = 8;
	uint64_t iova = 0x100000, done;
	int fd = test_memfd(MiB);
	char buf[64];

	cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas_a), 0);
	cr_assert_eq(ioasid_ioas_alloc(b, 0, &ioas_b), 0);
	cr_assert_eq(ioasid_map_file(a, ioas_a, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_device_bind(a, NIC, -1, &dev_a), 0, "%s",
		     ioasid_last_error(a));

	cr_assert_eq(ioasid_ioas_get_info(b, ioas_a, &info), -ENOENT);
	cr_assert_eq(ioasid_lookup(b, ioas_a, 0x100000, &map), -ENOENT);
	cr_assert_eq(ioasid_map_file(b, ioas_a, fd, 0, 4096, RW, &iova),
		     -ENOENT);
	cr_assert_eq(ioasid_unmap_all(b, ioas_a, NULL), -ENOENT);
	iova = 0;
	cr_assert_eq(ioasid_copy(b, ioas_b, ioas_a, 0x100000, 4096, RW, &iova),
		     -ENOENT);
	cr_assert_eq(ioasid_ioas_destroy(b, ioas_a), -ENOENT);
	cr_assert_eq(ioasid_ioas_list(b, ids, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(ids[0], ioas_b);
	cr_assert_eq(ioasid_device_unbind(b, dev_a), -ENOENT);
	cr_assert_eq(ioasid_device_attach(b, dev_a, ioas_b, 0), -ENOENT);
	cr_assert_eq(ioasid_device_dma(b, dev_a, 0x100000, buf, sizeof(buf), 0,
				       &done), -ENOENT);
	cr_assert_neq(ioasid_device_bind(b, NIC, -1, &dev_b), 0,
		      "a device has one owner");
	cr_assert_str_neq(ioasid_last_error(b), "");
	/* A's objects are all still there */
	cr_assert_eq(ioasid_lookup(a, ioas_a, 0x100000, &map), 0);
	cr_assert_eq(ioasid_device_attach(a, dev_a, ioas_a, 0), 0);
	close(fd);
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

/* Descriptors passed in are closed after each op; teardown closes dups. */
Test(daemon, no_descriptor_leaks)
{
	struct ioasid_ctx *probe = remote_ctx();
	int before = settled_fds(probe, 1);
	struct ioasid_ctx *ctx = remote_ctx();
	int with_client = settled_fds(probe, 2);
	uint32_t ioas;
	uint64_t iova;
	int fd = test_memfd(4 * MiB);

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	for (int i = 0; i < 64; i++) {
		iova = 0x1000000 + (uint64_t)i * 0x10000;
		cr_assert_eq(ioasid_map_file(ctx, ioas, fd,
					     (uint64_t)i * 0x10000, 0x10000,
					     RW | FIXED, &iova), 0);
	}
	/* one dup per file held by the IOAS, nothing per request */
	cr_assert_leq(daemon_count_fds(&d), with_client + 1);
	/* failing requests close their descriptor too */
	iova = 0x1000000;
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 0x10000, RW | FIXED,
				     &iova), -EEXIST);
	cr_assert_eq(ioasid_map_file(ctx, 4242, fd, 0, 0x10000, RW, &iova),
		     -ENOENT);
	cr_assert_leq(daemon_count_fds(&d), with_client + 1);
	cr_assert_eq(ioasid_ioas_destroy(ctx, ioas), 0);
	expect_daemon_fds(with_client);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW, &iova), 0);
	ioasid_unref(ctx);		/* disconnect tears the IOAS down */
	expect_daemon_fds(before);
	close(fd);
	ioasid_unref(probe);
	expect_clean_exit();
}

Test(daemon, client_killed_mid_request)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int before = settled_fds(ctx, 1);
	int status;
	pid_t pid;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* a client with objects, pipelining requests, then killed */
		struct ioasid_ctx *c = NULL;
		uint32_t ioas;
		uint64_t iova = 0;
		int fd = memfd_create("x", MFD_ALLOW_SEALING), s;
		struct raw m;

		if (fd < 0 || ftruncate(fd, MiB) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0 ||
		    ioasid_new(d.uri, &c) < 0 ||
		    ioasid_ioas_alloc(c, 0, &ioas) < 0 ||
		    ioasid_map_file(c, ioas, fd, 0, MiB, RW, &iova) < 0)
			_exit(1);
		s = raw_connect();
		for (uint32_t i = 1; i < 50; i++) {
			raw_begin(&m, IOASID_CMD_MAP_FILE, i);
			raw_u32(&m, IOASID_ATTR_IOAS_ID, ioas);
			raw_u32(&m, IOASID_ATTR_FD_INDEX, 0);
			raw_u64(&m, IOASID_ATTR_OFFSET, 0);
			raw_u64(&m, IOASID_ATTR_IOVA, 0);
			raw_u64(&m, IOASID_ATTR_LENGTH, 4096);
			raw_u32(&m, IOASID_ATTR_FLAGS, RW);
			if (send_fds(s, m.b, m.len, &fd, 1) < 0)
				break;
		}
		raise(SIGKILL);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "the child got as far as its kill");
	bystander_ok(ctx);
	cr_assert(daemon_alive(&d));
	cr_assert_eq(settled_fds(ctx, 1), before, "its session and files are "
		     "gone");
	ioasid_unref(ctx);
	expect_clean_exit();
}

/* A client that never reads its replies stalls nobody else. */
Test(daemon, slow_reader_does_not_stall_others)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int s = raw_connect();
	uint32_t sent = 0;
	struct raw m;
	struct timespec t0, t1;

	fcntl(s, F_SETFL, O_NONBLOCK);
	for (;;) {
		raw_begin(&m, IOASID_CMD_IOAS_LIST, sent + 1);
		raw_u32(&m, IOASID_ATTR_OUT_CAP, 4096);
		if (send_fds(s, m.b, m.len, NULL, 0) < 0) {
			cr_assert_eq(errno, EAGAIN);
			break;
		}
		if (++sent == 100000)
			break;
	}
	cr_assert_gt(sent, 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20; i++)
		bystander_ok(ctx);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 3, "others are served promptly");
	/* every reply arrives, in order, once the client reads */
	fcntl(s, F_SETFL, 0);
	for (uint32_t seq = 1; seq <= sent; seq++)
		expect_ok(s, seq);
	close(s);
	bystander_ok(ctx);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(daemon, quotas_from_the_policy)
{
	struct ioasid_ctx *ctx;
	uint32_t a, b, c;
	uint64_t iova;
	int fd = test_memfd(MiB);
	struct ioasid_ioas_info info;

	restart_daemon(user_section("max-ioas = 2\nmax-mappings = 3\n"
				    "max-bytes-mapped = 64K\n"));
	ctx = remote_ctx();
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &a), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &b), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &c), -ENOSPC);
	cr_assert(strstr(ioasid_last_error(ctx), "quota"), "%s",
		  ioasid_last_error(ctx));
	for (int i = 0; i < 3; i++) {
		iova = 0x100000 + (uint64_t)i * 0x10000;
		cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 4096, RW | FIXED,
					     &iova), 0);
	}
	iova = 0x800000;
	cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 4096, RW | FIXED, &iova),
		     -ENOSPC, "mapping quota");
	cr_assert_eq(ioasid_map_file(ctx, b, fd, 0, 4096, RW | FIXED, &iova),
		     -ENOSPC, "the quota is per client, not per IOAS");
	cr_assert_eq(ioasid_unmap_all(ctx, a, NULL), 0);
	cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 68 * 1024, RW | FIXED,
				     &iova), -ENOSPC, "byte quota");
	cr_assert_str_neq(ioasid_last_error(ctx), "");
	cr_assert_eq(ioasid_ioas_get_info(ctx, a, &info), 0);
	cr_assert_eq(info.nr_mappings, 0, "nothing half-applied");
	cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 64 * 1024, RW | FIXED,
				     &iova), 0);
	close(fd);
	ioasid_unref(ctx);
	expect_clean_exit();
}

/* Run @fn as uid/gid 65534 in a child; its exit code is the verdict. */
static int as_nobody(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(100);
		_exit(fn());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int nobody_is_refused_by_policy(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(d.uri, &ctx);

	if (r != -EACCES)
		return 1;
	if (!strstr(ioasid_last_error(NULL), "not allowed"))
		return 2;
	return 0;
}

static int nobody_cannot_reach_the_socket(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(d.uri, &ctx);

	if (r != -EACCES)
		return 1;
	return strstr(ioasid_last_error(NULL), "permission denied") ? 0 : 2;
}

static int nobody_gets_default_limits(void)
{
	struct ioasid_ctx *ctx = NULL;
	uint32_t a, b, dev;

	if (ioasid_new(d.uri, &ctx) < 0)
		return 1;
	if (ioasid_ioas_alloc(ctx, 0, &a) < 0)
		return 2;
	if (ioasid_ioas_alloc(ctx, 0, &b) != -ENOSPC)
		return 3;
	if (ioasid_device_bind(ctx, NIC, -1, &dev) == 0)
		return 4;		/* devices = none */
	ioasid_unref(ctx);
	return 0;
}

Test(daemon, second_uid_is_judged_by_its_own_policy)
{
	struct ioasid_ctx *ctx;

	if (geteuid() != 0)
		cr_skip_test("needs root to switch to uid 65534");
	/* socket mode 0660, root's group: nobody cannot even connect */
	cr_assert_eq(as_nobody(nobody_cannot_reach_the_socket), 0);

	restart_daemon("[daemon]\nsocket-mode = 0666\n"
		       "[default]\nallow = no\n");
	cr_assert_eq(as_nobody(nobody_is_refused_by_policy), 0);
	ctx = remote_ctx();		/* root is still served */
	bystander_ok(ctx);
	ioasid_unref(ctx);

	restart_daemon("[daemon]\nsocket-mode = 0666\n"
		       "[default]\nmax-ioas = 1\ndevices = none\n");
	cr_assert_eq(as_nobody(nobody_gets_default_limits), 0);
	expect_clean_exit();
}

/* Events queued in the daemon arrive as EVENT messages. */
Test(daemon, fault_events_reach_subscribers)
{
	struct ioasid_ctx *a = remote_ctx(), *b = remote_ctx();
	struct ioasid_event ev;
	struct pollfd p;
	uint32_t ioas, dev;
	uint64_t done = 0;
	char buf[4096];
	int efd;

	cr_assert_eq(ioasid_event_subscribe(a, IOASID_EVENT_GROUP_FAULT), 0,
		     "%s", ioasid_last_error(a));
	cr_assert_eq(ioasid_event_subscribe(a, 1U << 20), -EOPNOTSUPP);
	efd = ioasid_event_get_fd(a);
	cr_assert_geq(efd, 0);
	cr_assert_eq(ioasid_event_read(a, &ev), -EAGAIN);
	cr_assert_geq(ioasid_event_get_fd(b), 0);

	cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas), 0);
	cr_assert_eq(ioasid_device_bind(a, NIC, -1, &dev), 0);
	cr_assert_eq(ioasid_device_attach(a, dev, ioas, 0), 0, "%s",
		     ioasid_last_error(a));
	cr_assert_lt(ioasid_device_dma(a, dev, 0x40000000, buf, sizeof(buf),
				       0, &done), 0, "unmapped: a fault");

	/* events a call causes arrive before its reply, as embedded */
	p = (struct pollfd){ .fd = efd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 0), 1, "readable as soon as the call returns");
	cr_assert_eq(ioasid_event_read(a, &ev), 0);
	cr_assert_eq(ev.type, IOASID_EVENT_FAULT);
	cr_assert_eq(ev.id, dev);
	cr_assert_str_eq(ev.name, NIC);
	cr_assert_eq(ev.iova, 0x40000000);
	cr_assert_eq(ioasid_event_read(a, &ev), -EAGAIN);
	p.revents = 0;
	cr_assert_eq(poll(&p, 1, 0), 0, "not readable once drained");
	/* b never subscribed */
	cr_assert_eq(ioasid_event_read(b, &ev), -EAGAIN);
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

/* DMA and dirty bitmaps larger than one message are split transparently. */
Test(daemon, large_dma_and_dirty_bitmaps_are_chunked)
{
	struct ioasid_ctx *ctx = remote_ctx();
	const size_t len = 600 * 1024;
	uint8_t *out = malloc(len), *in = malloc(len);
	uint64_t iova = 8 * GiB + 0x100000, done = 0, *bitmap;
	uint64_t bits = 12 * GiB / 4096, page;
	uint32_t ioas, dev;
	int fd = test_memfd(MiB);

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, &dev), 0);
	cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0, "%s", ioasid_last_error(ctx));
	bitmap = calloc(bits / 64, sizeof(*bitmap));
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, dev, iova, out, len,
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(done, len);
	cr_assert_eq(pread(fd, in, len, 0), (ssize_t)len);
	cr_assert_arr_eq(in, out, len, "the device wrote every byte");
	memset(in, 0, len);
	cr_assert_eq(ioasid_device_dma(ctx, dev, iova, in, len, 0, &done), 0);
	cr_assert_eq(done, len);
	cr_assert_arr_eq(in, out, len, "and reads them back");
	/* a fault half-way reports the bytes done, as embedded */
	cr_assert_lt(ioasid_device_dma(ctx, dev, iova + MiB - 4096, in,
				       300 * 1024, 0, &done), 0);
	cr_assert_eq(done, 4096);

	/* 12 GiB of IOVA: a 384 KiB bitmap, more than one message */
	memset(bitmap, 0, bits / 8);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, 0, 12 * GiB, bitmap, 0), 0,
		     "%s", ioasid_last_error(ctx));
	page = iova / 4096;
	cr_assert(bitmap[page / 64] & (1ULL << (page % 64)),
		  "a page the device wrote is dirty");
	page = (iova + len + 4096) / 4096;
	cr_assert_not(bitmap[page / 64] & (1ULL << (page % 64)));
	free(bitmap);
	free(in);
	free(out);
	close(fd);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(daemon, observing_other_clients_needs_the_policy)
{
	struct ioasid_ctx *a, *b;
	struct ioasid_ioas_info info;
	uint32_t ioas;

	restart_daemon(user_section("observe = no\n"));
	a = remote_ctx();
	cr_assert_eq(ioasid_set_observer(a, 1), -EPERM);
	cr_assert(strstr(ioasid_last_error(a), "policy"), "%s",
		  ioasid_last_error(a));
	ioasid_unref(a);

	restart_daemon(user_section("observe = yes\n"));
	a = remote_ctx();
	b = remote_ctx();
	cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas), 0);
	cr_assert_eq(ioasid_ioas_get_info(b, ioas, &info), -ENOENT);
	cr_assert_eq(ioasid_set_observer(b, 1), 0, "%s",
		     ioasid_last_error(b));
	cr_assert_eq(ioasid_ioas_get_info(b, ioas, &info), 0, "%s",
		     ioasid_last_error(b));
	cr_assert_eq(info.ioas_id, ioas);
	cr_assert_eq(ioasid_ioas_destroy(b, ioas), -ENOENT, "read-only");
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

static uint64_t raw_nr_mappings(int s, uint32_t ioas)
{
	struct ioasid_ioas_info info;
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.ioas_id = ioas;
	op.out = &info;
	op.out_cap = sizeof(info);
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	return info.nr_mappings;
}

/* Many ranges of one file in one message, all or nothing. */
Test(daemon, map_batch_is_all_or_nothing)
{
	struct ioasid_map_entry e[3] = {
		{ .iova = 0x100000, .offset = 0, .length = 4096 },
		{ .iova = 0x200000, .offset = 8192, .length = 8192 },
		{ .iova = 0x300000, .offset = 4096, .length = 4096 },
	};
	uint64_t iovas[3] = { 0 };
	int fd = test_memfd(MiB), s = raw_connect();
	struct ioasid_ctx *probe = remote_ctx();
	int before;
	struct ioasid_op op;
	uint32_t ioas;

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	cr_assert_eq(codec_call(s, &op), 0);
	ioas = op.out_id;
	before = settled_fds(probe, 2);

	ioasid_op_init(&op, IOASID_CMD_MAP_BATCH);
	op.ioas_id = ioas;
	op.fd = fd;
	op.flags = RW | FIXED;
	op.in = e;
	op.in_len = sizeof(e);
	op.out = iovas;
	op.out_cap = sizeof(iovas);
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	cr_assert_eq(op.out_id, 3);
	cr_assert_eq(op.out_bytes, 16384);
	cr_assert_eq(iovas[1], 0x200000);
	cr_assert_eq(raw_nr_mappings(s, ioas), 3);

	/* the third entry overlaps: the first two are undone */
	e[0].iova = 0x400000;
	e[1].iova = 0x500000;
	e[2].iova = 0x200000;
	ioasid_op_init(&op, IOASID_CMD_MAP_BATCH);
	op.ioas_id = ioas;
	op.fd = fd;
	op.flags = RW | FIXED;
	op.in = e;
	op.in_len = sizeof(e);
	cr_assert_eq(codec_call(s, &op), -EEXIST);
	cr_assert(strstr(op.errmsg, "entry 2"), "%s", op.errmsg);
	cr_assert_eq(raw_nr_mappings(s, ioas), 3, "nothing half-applied");

	/* a torn entry */
	op.cmd = IOASID_CMD_MAP_BATCH;
	op.in_len = sizeof(e[0]) + 1;
	op.errmsg[0] = '\0';
	cr_assert_eq(codec_call(s, &op), -EINVAL);
	cr_assert_str_neq(op.errmsg, "");
	cr_assert_eq(settled_fds(probe, 2), before + 1, "one dup of the file");
	close(s);
	close(fd);
	ioasid_unref(probe);
	expect_clean_exit();
}

/* ---- device descriptors and owners ------------------------------------ */

static uint32_t raw_bind(int s, const char *name)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_BIND);
	snprintf(op.name, sizeof(op.name), "%s", name);
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	return op.out_id;
}

static int raw_get_fd(int s, uint32_t dev, struct ioasid_op *op)
{
	int r;

	ioasid_op_init(op, IOASID_CMD_DEVICE_GET_FD);
	op->dev_id = dev;
	r = codec_call(s, op);
	cr_assert_eq(rx_nfds, 0, "no descriptor left over");
	return r;
}

static int raw_set_vm(int s, uint32_t dev, uint32_t vm, uint32_t flags,
		      struct ioasid_op *op)
{
	ioasid_op_init(op, IOASID_CMD_DEVICE_SET_VM);
	op->dev_id = dev;
	op->vm_id = vm;
	op->flags = flags;
	return codec_call(s, op);
}

/* A VM and its kvm-vfio device bound over @s; 0 without /dev/kvm. */
static uint32_t raw_vm(int s)
{
	struct kvm_create_device cd = { .type = 4 /* VFIO */ };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1;
	struct ioasid_op op;

	if (kvm >= 0)
		vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (kvm >= 0)
		close(kvm);
	if (vm < 0)
		return 0;
	cr_assert_eq(ioctl(vm, KVM_CREATE_DEVICE, &cd), 0);
	ioasid_op_init(&op, IOASID_CMD_VM_BIND);
	op.fd = vm;
	op.fd2 = (int)cd.fd;
	op.flags = IOASID_VM_KVM_VFIO_CREATED;
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	close((int)cd.fd);
	close(vm);
	return op.out_id;
}

/*
 * Simulated devices have no VFIO file: no descriptor in the reply, and
 * no client may claim it registered one with KVM.
 */
Test(daemon, device_get_fd_and_client_registration_are_checked)
{
	struct ioasid_ctx *probe = remote_ctx();
	int before = settled_fds(probe, 1), s = raw_connect();
	struct ioasid_op op;
	uint32_t dev, vm;

	dev = raw_bind(s, NIC);
	cr_assert_eq(raw_get_fd(s, dev, &op), -EOPNOTSUPP);
	cr_assert(strstr(op.errmsg, "no VFIO file"), "%s", op.errmsg);
	cr_assert_eq(op.out_fd, -1);
	cr_assert_eq(raw_get_fd(s, 4242, &op), -ENOENT);
	cr_assert(strstr(op.errmsg, "no bound device 4242"), "%s", op.errmsg);
	/* another client's device is not there */
	{
		int other = raw_connect();

		cr_assert_eq(raw_get_fd(other, dev, &op), -ENOENT);
		close(other);
	}
	cr_assert_eq(raw_set_vm(s, dev, 0, 2, &op), -EOPNOTSUPP);
	cr_assert(strstr(op.errmsg, "unknown set_vm flags 0x2"), "%s",
		  op.errmsg);
	cr_assert_eq(raw_set_vm(s, dev, 0, IOASID_SET_VM_CLIENT_REGISTERED,
				&op), -EINVAL);
	cr_assert(strstr(op.errmsg, "needs a VM"), "%s", op.errmsg);
	vm = raw_vm(s);
	if (vm) {
		cr_assert_eq(raw_set_vm(s, dev, vm,
					IOASID_SET_VM_CLIENT_REGISTERED, &op),
			     -EINVAL);
		cr_assert(strstr(op.errmsg, "no VFIO file"), "%s", op.errmsg);
		cr_assert_eq(raw_set_vm(s, dev, vm, 0, &op), 0, "%s",
			     op.errmsg);
	} else {
		cr_log_warn("no /dev/kvm: the VM half is not checked");
	}
	close(s);
	settled_fds(probe, 1);
	expect_daemon_fds(before);	/* its session and VM are gone */
	ioasid_unref(probe);
	expect_clean_exit();
}

/* Run @fn in a child that keeps its objects until told to go. */
static pid_t child_client(void (*fn)(int ready_fd), int *go_fd)
{
	int ready[2], go[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		fn(ready[1]);
		if (read(go[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "the child client is ready");
	close(ready[0]);
	*go_fd = go[1];
	return pid;
}

/* A client with an IOAS and (with /dev/kvm) a VM; says "1" or "0". */
static void owner_client(int ready_fd)
{
	struct ioasid_ctx *ctx = NULL;
	uint32_t ioas, vm;
	int kvm, vm_fd = -1;
	char c = '0';

	if (ioasid_new(d.uri, &ctx) < 0 || ioasid_ioas_alloc(ctx, 0, &ioas))
		_exit(3);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm >= 0)
		vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm_fd >= 0 && ioasid_vm_bind(ctx, vm_fd, -1, &vm) == 0)
		c = '1';
	if (write(ready_fd, &c, 1) != 1)
		_exit(4);
}

/* Observers see whose the IOASes and VMs are: pid and uid of the peer. */
Test(daemon, observers_see_owners)
{
	struct ioasid_ctx *admin = remote_ctx();
	struct ioasid_ioas_info info;
	struct ioasid_vm_info vi;
	uint32_t ids[8], nr = 8, mine;
	int go, status, found = 0;
	pid_t pid = child_client(owner_client, &go);

	cr_assert_eq(ioasid_ioas_alloc(admin, 0, &mine), 0);
	cr_assert_eq(ioasid_set_observer(admin, 1), 0, "%s",
		     ioasid_last_error(admin));
	cr_assert_eq(ioasid_ioas_list(admin, ids, &nr), 0);
	cr_assert_eq(nr, 2);
	for (uint32_t i = 0; i < nr; i++) {
		cr_assert_eq(ioasid_ioas_get_info(admin, ids[i], &info), 0);
		cr_assert_eq(info.owner_uid, (uint32_t)getuid());
		cr_assert_eq(info.owner_pid, ids[i] == mine ?
			     (uint32_t)getpid() : (uint32_t)pid,
			     "IOAS %u: owner pid %u", ids[i], info.owner_pid);
	}
	nr = 8;
	cr_assert_eq(ioasid_vm_list(admin, ids, &nr), 0);
	for (uint32_t i = 0; i < nr; i++) {
		cr_assert_eq(ioasid_vm_get_info(admin, ids[i], &vi), 0);
		cr_assert_eq(vi.owner_pid, (uint32_t)pid);
		cr_assert_eq(vi.owner_uid, (uint32_t)getuid());
		found++;
	}
	cr_log_info("%d VM(s) of the child seen", found);
	cr_assert_eq(write(go, "x", 1), 1);
	close(go);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ioasid_unref(admin);
	expect_clean_exit();
}

Test(daemon, map_user_is_refused_with_a_reason)
{
	struct ioasid_ctx *ctx = remote_ctx();
	void *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t iova = 0;
	uint32_t ioas;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_user(ctx, ioas, buf, 4096, RW, &iova),
		     -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(ctx), "ioasid_map_file"), "%s",
		  ioasid_last_error(ctx));
	munmap(buf, 4096);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(daemon, shutdown_disconnects_clients_cleanly)
{
	struct ioasid_ctx *ctx = remote_ctx();
	uint32_t ioas;
	struct stat st;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	expect_clean_exit();
	cr_assert_eq(stat(d.sock, &st), -1, "the socket file is removed");
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), -ECONNRESET);
	cr_assert(strstr(ioasid_last_error(ctx), "lost"), "%s",
		  ioasid_last_error(ctx));
	ioasid_unref(ctx);
}

Test(daemon, sighup_reloads_the_policy_for_new_clients)
{
	struct ioasid_ctx *old = remote_ctx(), *ctx = NULL;
	int r = 0;

	cr_assert_eq(daemon_write_config(&d, user_section("allow = no\n")), 0);
	kill(d.pid, SIGHUP);
	for (int i = 0; i < SETTLE_TRIES; i++) {
		r = ioasid_new(d.uri, &ctx);
		if (r < 0)
			break;
		ioasid_unref(ctx);
		sleep_ms(2);
	}
	cr_assert_eq(r, -EACCES, "new clients get the new policy");
	bystander_ok(old);		/* existing clients keep theirs */
	ioasid_unref(old);
	expect_clean_exit();
}

Test(daemon, bad_config_is_refused_with_a_line_number)
{
	struct daemon_opts o = {
		.config = "[default]\nmax-ioas = lots\n", .no_wait = true,
	};
	char line[512], all[4096] = "";
	FILE *f;

	expect_clean_exit();
	cr_assert_eq(daemon_start(&d, &o), 0);
	for (int i = 0; i < SETTLE_TRIES && daemon_alive(&d); i++)
		sleep_ms(2);
	cr_assert_not(daemon_alive(&d));
	f = fopen(d.log, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		strncat(all, line, sizeof(all) - strlen(all) - 1);
	fclose(f);
	cr_assert(strstr(all, "ioasidd.conf:2:"), "log: %s", all);
	unlink(d.log);			/* expected: do not print it */
	cr_assert_eq(daemon_stop(&d), 1, "exit status 1");
}

Test(daemon, socket_activation)
{
#ifdef HAVE_LIBSYSTEMD
	struct daemon_opts o = { .socket_activation = true };
	struct ioasid_ctx *ctx;
	struct stat st;

	expect_clean_exit();
	cr_assert_eq(daemon_start(&d, &o), 0);
	ctx = remote_ctx();
	bystander_ok(ctx);
	ioasid_unref(ctx);
	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	for (int i = 0; i < SETTLE_TRIES && daemon_alive(&d); i++)
		sleep_ms(2);
	cr_assert_eq(d.status, 0);
	cr_assert_eq(stat(d.sock, &st), 0, "systemd's socket stays");
	daemon_stop(&d);
#else
	cr_skip_test("built without libsystemd");
#endif
}

Test(daemon, connect_errors_are_explained)
{
	struct ioasid_ctx *ctx = (void *)1;
	char uri[PATH_MAX + 16];

	snprintf(uri, sizeof(uri), "unix:%s/nothing-here", d.dir);
	cr_assert_eq(ioasid_new(uri, &ctx), -ENOENT);
	cr_assert(strstr(ioasid_last_error(NULL), "is ioasidd running"), "%s",
		  ioasid_last_error(NULL));
	cr_assert_eq(ctx, (void *)1);
	expect_clean_exit();
	/* a socket file nobody listens on */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path),
			 "/tmp/ioasid-dead-%d.sock", (int)getpid());
		unlink(sa.sun_path);
		cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(s);
		snprintf(uri, sizeof(uri), "unix:%s", sa.sun_path);
		cr_assert_eq(ioasid_new(uri, &ctx), -ECONNREFUSED);
		cr_assert(strstr(ioasid_last_error(NULL), "not running"));
		unlink(sa.sun_path);
	}
}

/* ========================================================================== */
/* a daemon that breaks the rules: the client closes what it did not ask for */
/* ========================================================================== */

TestSuite(fake, .timeout = 60);

enum fake_reply {
	FAKE_FD_IN_PLAIN_REPLY,		/* one in IOAS_ALLOC's reply */
	FAKE_UNNAMED_FD,		/* a descriptor no attribute names */
	FAKE_TWO_FDS,			/* DEVICE_GET_FD with two */
	FAKE_FD_WITH_ERROR,		/* DEVICE_GET_FD failed, with one */
	FAKE_TOO_MANY_FDS,		/* more than the client takes */
	FAKE_FD_WITH_EVENT,		/* an EVENT with one, then a reply */
	FAKE_NO_FD,			/* DEVICE_GET_FD succeeded without */
	FAKE_GOOD_FD,			/* DEVICE_GET_FD as it should be */
};

struct fake {
	char dir[64];
	char uri[128];
	pid_t pid;
};

static void fake_send(int s, struct raw *m, int nfds)
{
	int fds[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };

	for (int i = 0; i < nfds; i++)
		fds[i] = test_memfd(4096 * (uint64_t)(i + 1));
	/* the client may already have hung up on an earlier rule break */
	if (send_fds(s, m->b, m->len, fds, nfds) != (ssize_t)m->len &&
	    errno != EPIPE && errno != ECONNRESET)
		_exit(10);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void fake_reply_to(int s, uint32_t seq, enum fake_reply how)
{
	struct raw m;

	raw_begin(&m, IOASID_CMD_REPLY, seq);
	raw_hdr(&m)->nlmsg_flags = 0;
	raw_u32(&m, IOASID_ATTR_ERRNO, how == FAKE_FD_WITH_ERROR ? ENOENT : 0);
	if (how == FAKE_FD_IN_PLAIN_REPLY || how == FAKE_UNNAMED_FD)
		raw_u32(&m, IOASID_ATTR_OUT_ID, 7);
	if (how != FAKE_UNNAMED_FD && how != FAKE_NO_FD &&
	    how != FAKE_TOO_MANY_FDS && how != FAKE_FD_WITH_EVENT)
		raw_u32(&m, IOASID_ATTR_OUT_FD_INDEX, 0);
	switch (how) {
	case FAKE_TWO_FDS:
		fake_send(s, &m, 2);
		break;
	case FAKE_TOO_MANY_FDS:
		fake_send(s, &m, 8);
		break;
	case FAKE_NO_FD:
	case FAKE_FD_WITH_EVENT:
		fake_send(s, &m, 0);
		break;
	default:
		fake_send(s, &m, 1);
	}
}

static void fake_event(int s)
{
	struct ioasid_event ev = { .size = sizeof(ev), .type = 1 };
	struct raw m;

	raw_begin(&m, IOASID_CMD_EVENT, 0);
	raw_hdr(&m)->nlmsg_flags = 0;
	raw_attr(&m, IOASID_ATTR_OUT_DATA, &ev, sizeof(ev));
	fake_send(s, &m, 1);
}

static void fake_hello(int s, uint32_t seq)
{
	struct ioasid_op op;
	struct nl_msg *msg;
	const void *buf;
	size_t len;

	ioasid_op_init(&op, IOASID_CMD_HELLO);
	snprintf(op.name, sizeof(op.name), "sim");
	op.out_id = 1;
	if (proto_encode_reply(&op, 0, seq, &msg) < 0)
		_exit(11);
	buf = proto_msg_data(msg, &len);
	if (send(s, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		_exit(12);
	nlmsg_free(msg);
}

/* Serve one client: HELLO properly, every other request as @how says. */
static void fake_serve(int listen_fd, enum fake_reply how)
{
	int s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct proto_msg m;
	char why[256];
	ssize_t n;

	if (s < 0)
		_exit(13);
	signal(SIGPIPE, SIG_IGN);	/* a hung-up client is not our failure */
	while ((n = raw_recv(s, 10000)) > 0) {
		rx_close();
		if (proto_parse(rxbuf, (size_t)n, 0, PROTO_FROM_CLIENT, &m, why,
				sizeof(why)) < 0)
			_exit(14);
		if (m.cmd == IOASID_CMD_HELLO) {
			fake_hello(s, m.seq);
			continue;
		}
		if (how == FAKE_FD_WITH_EVENT)
			fake_event(s);
		fake_reply_to(s, m.seq, how);
	}
	_exit(0);
}

static void fake_start(struct fake *f, enum fake_reply how)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(f->dir, sizeof(f->dir), "/tmp/ioasid-fake-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", f->dir);
	snprintf(f->uri, sizeof(f->uri), "unix:%s", sa.sun_path);
	cr_assert(s >= 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(s, 4), 0);
	fflush(NULL);
	f->pid = fork();
	cr_assert_geq(f->pid, 0);
	if (f->pid == 0)
		fake_serve(s, how);
	close(s);
}

static void fake_stop(struct fake *f)
{
	char path[96];
	int status;

	cr_assert_eq(waitpid(f->pid, &status, 0), f->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the fake daemon exits cleanly (status %#x)", status);
	snprintf(path, sizeof(path), "%s/sock", f->dir);
	unlink(path);
	rmdir(f->dir);
}

/*
 * The call fails with EPROTO, every descriptor that came is closed (the
 * process has as many as before), and the connection is dropped.
 */
static void expect_refused(enum fake_reply how, bool get_fd)
{
	struct ioasid_ctx *ctx;
	struct fake f;
	int before, fd = -7, r;
	uint32_t id = 0;

	fake_start(&f, how);
	cr_assert_eq(ioasid_new(f.uri, &ctx), 0, "%s",
		     ioasid_last_error(NULL));
	before = test_count_fds();
	r = get_fd ? ioasid_device_get_fd(ctx, 1, &fd) :
		     ioasid_ioas_alloc(ctx, 0, &id);
	cr_assert_eq(r, -EPROTO, "case %d: %d (%s)", how, r,
		     ioasid_last_error(ctx));
	cr_assert_str_neq(ioasid_last_error(ctx), "");
	cr_assert_eq(test_count_fds(), before, "case %d: descriptors the "
		     "daemon should not have sent are closed", how);
	cr_assert_eq(fd, -7, "nothing stored");
	cr_assert_eq(id, 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &id), -ECONNRESET,
		     "the connection is dropped");
	ioasid_unref(ctx);
	fake_stop(&f);
}

Test(fake, descriptor_in_a_reply_that_returns_none)
{
	expect_refused(FAKE_FD_IN_PLAIN_REPLY, false);
}

Test(fake, descriptor_no_attribute_names)
{
	expect_refused(FAKE_UNNAMED_FD, false);
}

Test(fake, two_descriptors_for_one)
{
	expect_refused(FAKE_TWO_FDS, true);
}

Test(fake, descriptor_with_an_error)
{
	expect_refused(FAKE_FD_WITH_ERROR, true);
}

Test(fake, more_descriptors_than_room_msg_ctrunc)
{
	expect_refused(FAKE_TOO_MANY_FDS, true);
}

Test(fake, descriptor_with_an_event)
{
	expect_refused(FAKE_FD_WITH_EVENT, true);
}

Test(fake, no_descriptor_where_one_is_due)
{
	expect_refused(FAKE_NO_FD, true);
}

/* The rule-abiding case: the one descriptor becomes the caller's. */
Test(fake, the_descriptor_of_device_get_fd)
{
	struct ioasid_ctx *ctx;
	struct stat st;
	struct fake f;
	int before, fd = -1;

	fake_start(&f, FAKE_GOOD_FD);
	cr_assert_eq(ioasid_new(f.uri, &ctx), 0);
	before = test_count_fds();
	cr_assert_eq(ioasid_device_get_fd(ctx, 1, &fd), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(test_count_fds(), before + 1);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 4096, "the memfd the fake daemon sent");
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "close-on-exec");
	close(fd);
	cr_assert_eq(ioasid_device_get_fd(ctx, 1, &fd), 0, "still connected");
	close(fd);
	cr_assert_eq(test_count_fds(), before);
	ioasid_unref(ctx);
	fake_stop(&f);
}
