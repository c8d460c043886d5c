/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Messages that break the protocol, against a real ioasidd
 * (tests/daemon_fixture.c: one per test, in a private directory) and
 * from a fake one:
 *
 *   framing   packets whose netlink header does not add up: disconnect
 *   invalid   well-framed but invalid requests: an error reply with an
 *             errno and a reason
 *   fake      a daemon that breaks the rules: the client closes what it
 *             did not ask for
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

#include "proto_fixture.h"

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
