/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libioasid against a lying daemon: a real socket server in this process
 * that answers HELLO properly and every later request with a reply
 * crafted by the test (too long, too many, a length beyond the caller's
 * array, ids and counts that cannot be, stray descriptors...).
 *
 * Every lie must end in a clear negative errno (EPROTO), leave the
 * caller's memory beyond its buffers untouched (canaries), break the
 * connection (later calls say ECONNRESET), and leak no descriptor.
 * The honest shapes next to each lie pass, so a check that refused
 * everything would fail here too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <netlink/attr.h>

#include "libioasid.h"
#include "proto/codec.h"

#define CANARY	0xa5

/* ---- raw replies --------------------------------------------------------- */

struct raw {
	unsigned char b[IOASID_MAX_MSG] __attribute__((aligned(8)));
	size_t len;
	int fds[4];
	int nfds;
};

static void raw_begin(struct raw *m, uint8_t cmd, uint32_t seq)
{
	struct nlmsghdr *h = (struct nlmsghdr *)m->b;
	struct genlmsghdr *g = (struct genlmsghdr *)(m->b + NLMSG_HDRLEN);

	memset(m->b, 0, PROTO_HDRLEN);
	m->nfds = 0;
	h->nlmsg_type = IOASID_MSG_TYPE;
	h->nlmsg_seq = seq;
	g->cmd = cmd;
	g->version = IOASID_PROTO_VERSION;
	m->len = PROTO_HDRLEN;
	h->nlmsg_len = (uint32_t)m->len;
}

static void raw_attr(struct raw *m, uint16_t type, const void *data,
		     uint16_t len)
{
	struct nlattr *a = (struct nlattr *)(m->b + m->len);

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memset(m->b + m->len + NLA_HDRLEN, 0, NLA_ALIGN(len));
	if (len)
		memcpy(m->b + m->len + NLA_HDRLEN, data, len);
	m->len += NLA_ALIGN(NLA_HDRLEN + len);
	((struct nlmsghdr *)m->b)->nlmsg_len = (uint32_t)m->len;
}

static void raw_u32(struct raw *m, uint16_t type, uint32_t v)
{
	raw_attr(m, type, &v, sizeof(v));
}

static void raw_u64(struct raw *m, uint16_t type, uint64_t v)
{
	raw_attr(m, type, &v, sizeof(v));
}

/* OUT_DATA of @len bytes of @fill. */
static void raw_data(struct raw *m, uint16_t len, int fill)
{
	static unsigned char buf[PROTO_MAX_PAYLOAD];

	memset(buf, fill, len);
	raw_attr(m, IOASID_ATTR_OUT_DATA, buf, len);
}

/* A descriptor with the reply: one end of a fresh pipe. */
static void raw_fd(struct raw *m)
{
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[1]);
	m->fds[m->nfds++] = p[0];
}

static uint32_t get_u32_attr(const struct proto_msg *m, int a)
{
	return m->attr[a] ? nla_get_u32((struct nlattr *)m->attr[a]) : 0;
}

/* ---- the liar ------------------------------------------------------------ */

/* Builds the reply to @req (seq and REPLY header already in @r). */
typedef void lie_fn(struct raw *r, const struct proto_msg *req);

static struct {
	char dir[64];
	char path[108];
	char uri[128];
	int lsock;
	pthread_t thread;
	lie_fn *lie;
	uint32_t requests;	/* after HELLO */
	bool event_with_fd;	/* an event carrying a descriptor first */
} L;

static void send_raw(int s, struct raw *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} control = { { 0 } };
	struct iovec iov = { .iov_base = m->b, .iov_len = m->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (m->nfds) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)m->nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)m->nfds);
		memcpy(CMSG_DATA(cm), m->fds, sizeof(int) * (size_t)m->nfds);
	}
	/* the client may have hung up already: not this thread's business */
	(void)sendmsg(s, &mh, MSG_NOSIGNAL);
	for (int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static void *liar_main(void *arg)
{
	static unsigned char buf[IOASID_MAX_MSG] __attribute__((aligned(8)));
	static struct raw out;
	int c = accept4(L.lsock, NULL, NULL, SOCK_CLOEXEC);

	(void)arg;
	if (c < 0)
		return NULL;
	for (;;) {
		char control[PROTO_CMSG_SPACE], why[256];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control,
			.msg_controllen = sizeof(control),
		};
		int fds[IOASID_MAX_FDS];
		unsigned int nfds;
		struct proto_msg m;
		ssize_t n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);

		if (n <= 0)
			break;
		proto_collect_fds(&mh, fds, &nfds);
		for (unsigned int i = 0; i < nfds; i++)
			close(fds[i]);
		if (proto_parse(buf, (size_t)n, nfds, PROTO_FROM_CLIENT, &m,
				why, sizeof(why)) < 0)
			break;
		raw_begin(&out, IOASID_CMD_REPLY, m.seq);
		if (m.cmd == IOASID_CMD_HELLO) {
			raw_u32(&out, IOASID_ATTR_ERRNO, 0);
			raw_u32(&out, IOASID_ATTR_OUT_ID, 1);
			raw_attr(&out, IOASID_ATTR_NAME, "sim", 4);
		} else {
			L.requests++;
			L.lie(&out, &m);
		}
		if (L.event_with_fd && m.cmd != IOASID_CMD_HELLO) {
			static struct raw ev;

			raw_begin(&ev, IOASID_CMD_EVENT, 0);
			raw_data(&ev, 8, 0);
			raw_fd(&ev);
			send_raw(c, &ev);
		}
		send_raw(c, &out);
	}
	close(c);
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the DIR's own */
}

static int fds_before;

static struct ioasid_ctx *liar_start(lie_fn *lie)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ioasid_ctx *ctx = NULL;
	int r;

	fds_before = count_fds();
	snprintf(L.dir, sizeof(L.dir), "/tmp/ioasid-liar.XXXXXX");
	cr_assert(mkdtemp(L.dir));
	snprintf(L.path, sizeof(L.path), "%s/sock", L.dir);
	snprintf(L.uri, sizeof(L.uri), "unix:%s", L.path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", L.path);
	L.lie = lie;
	L.requests = 0;
	L.event_with_fd = false;
	L.lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert(L.lsock >= 0);
	cr_assert_eq(bind(L.lsock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(L.lsock, 1), 0);
	cr_assert_eq(pthread_create(&L.thread, NULL, liar_main, NULL), 0);
	r = ioasid_new(L.uri, &ctx);
	cr_assert_eq(r, 0, "ioasid_new(%s): %d %s", L.uri, r,
		     ioasid_last_error(NULL));
	return ctx;
}

/* The lie was caught: EPROTO with a reason, and the connection is gone. */
static void expect_caught(struct ioasid_ctx *ctx, int r, const char *part)
{
	uint32_t id;

	cr_assert_eq(r, -EPROTO, "a lie must be -EPROTO, got %d (%s)", r,
		     ioasid_last_error(ctx));
	cr_assert(strstr(ioasid_last_error(ctx), part), "\"%s\" not in \"%s\"",
		  part, ioasid_last_error(ctx));
	r = ioasid_ioas_alloc(ctx, 0, &id);
	cr_assert_eq(r, -ECONNRESET, "after a lie: %d (%s)", r,
		     ioasid_last_error(ctx));
}

static void liar_stop(struct ioasid_ctx *ctx)
{
	ioasid_unref(ctx);
	pthread_join(L.thread, NULL);
	close(L.lsock);
	unlink(L.path);
	rmdir(L.dir);
	cr_assert_eq(count_fds(), fds_before, "descriptors leaked: %d, "
		     "before %d", count_fds(), fds_before);
}

static void canary_check(const void *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		cr_assert_eq(((const unsigned char *)p)[i], CANARY,
			     "byte %zu beyond the buffer was written", i);
}

/* ---- lists ---------------------------------------------------------------- */

/* The case: room for 4, a success that says 1000. */
static void lie_len_1000(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 1000 * 4);
	raw_data(r, 16, 0x11);
}

/* Room for 4 in a 16-entry array: nothing past the 4 may change. */
static int list4(struct ioasid_ctx *ctx, uint32_t *nr, uint32_t ids[16])
{
	memset(ids, CANARY, 16 * sizeof(*ids));
	*nr = 4;
	return ioasid_ioas_list(ctx, ids, nr);
}

Test(list, success_longer_than_the_array)
{
	struct ioasid_ctx *ctx = liar_start(lie_len_1000);
	uint32_t ids[16], nr;
	int r = list4(ctx, &nr, ids);

	cr_assert_eq(nr, 4, "nr became %u", nr);
	canary_check(ids, 16, sizeof(ids));
	expect_caught(ctx, r, "length");
	liar_stop(ctx);
}

static void lie_data_beyond_cap(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 32);
	raw_data(r, 32, 0x11);
}

Test(list, more_data_than_the_array)
{
	struct ioasid_ctx *ctx = liar_start(lie_data_beyond_cap);
	uint32_t ids[16], nr;
	int r = list4(ctx, &nr, ids);

	cr_assert_eq(nr, 4);
	canary_check(ids, 0, sizeof(ids));
	expect_caught(ctx, r, "more data than asked for");
	liar_stop(ctx);
}

static void lie_len_without_data(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 12);
}

Test(list, length_without_its_data)
{
	struct ioasid_ctx *ctx = liar_start(lie_len_without_data);
	uint32_t ids[16], nr;
	int r = list4(ctx, &nr, ids);

	cr_assert_eq(nr, 4);
	canary_check(ids, 0, sizeof(ids));
	expect_caught(ctx, r, "length");
	liar_stop(ctx);
}

static void lie_partial_entry(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 6);
	raw_data(r, 6, 0x11);
}

Test(list, half_an_entry)
{
	struct ioasid_ctx *ctx = liar_start(lie_partial_entry);
	uint32_t ids[16], nr;
	int r = list4(ctx, &nr, ids);

	/* caught by the API (the reply itself is well-formed) */
	cr_assert_eq(nr, 4);
	canary_check(ids, 8, sizeof(ids));
	cr_assert_eq(r, -EPROTO, "%d %s", r, ioasid_last_error(ctx));
	cr_assert(strstr(ioasid_last_error(ctx), "whole number"), "%s",
		  ioasid_last_error(ctx));
	liar_stop(ctx);
}

static void lie_partial_beyond_cap(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, EMSGSIZE);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 4000);
	raw_data(r, 20, 0x11);
}

Test(list, too_small_with_more_data_than_the_array)
{
	struct ioasid_ctx *ctx = liar_start(lie_partial_beyond_cap);
	uint32_t ids[16], nr;
	int r = list4(ctx, &nr, ids);

	canary_check(ids, 0, sizeof(ids));
	expect_caught(ctx, r, "more data than asked for");
	liar_stop(ctx);
}

/* Honest: EMSGSIZE says how many are needed; only 4 are written. */
static void honest_too_small(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, EMSGSIZE);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 1000 * 4);
	raw_data(r, 16, 0x11);
}

Test(list, too_small_reports_the_count_needed)
{
	struct ioasid_ctx *ctx = liar_start(honest_too_small);
	uint32_t ids[16], nr;

	for (int i = 0; i < 2; i++) {	/* still connected after one */
		int r = list4(ctx, &nr, ids);

		cr_assert_eq(r, -EMSGSIZE, "%d %s", r,
			     ioasid_last_error(ctx));
		cr_assert_eq(nr, 1000);
		cr_assert_eq(ids[3], 0x11111111);
		canary_check(ids, 16, sizeof(ids));
	}
	liar_stop(ctx);
}

static void honest_list(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 12);
	raw_data(r, 12, 0x22);
}

Test(list, honest_list_passes)
{
	struct ioasid_ctx *ctx = liar_start(honest_list);
	uint32_t ids[16], nr;
	int r = list4(ctx, &nr, ids);

	cr_assert_eq(r, 0, "%d %s", r, ioasid_last_error(ctx));
	cr_assert_eq(nr, 3);
	canary_check(ids, 12, sizeof(ids));
	liar_stop(ctx);
}

/* Another list of another element size: the same rules. */
Test(list, device_list_success_longer_than_the_array)
{
	struct ioasid_ctx *ctx = liar_start(lie_len_1000);
	struct ioasid_device_info devs[4];
	uint32_t nr = 1;
	int r;

	memset(devs, CANARY, sizeof(devs));
	r = ioasid_device_list(ctx, devs, &nr);
	cr_assert_eq(nr, 1);
	canary_check(devs, sizeof(devs[0]), sizeof(devs));
	expect_caught(ctx, r, "length");
	liar_stop(ctx);
}

/* ---- structures ----------------------------------------------------------- */

static void lie_struct_too_long(struct raw *r, const struct proto_msg *req)
{
	uint32_t cap = get_u32_attr(req, IOASID_ATTR_OUT_CAP);

	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_LEN, cap + 8);
	raw_data(r, (uint16_t)(cap + 8), 0x33);
}

Test(structure, longer_than_the_structure)
{
	struct ioasid_ctx *ctx = liar_start(lie_struct_too_long);
	struct {
		struct ioasid_ioas_info info;
		unsigned char after[64];
	} b;
	int r;

	memset(&b, CANARY, sizeof(b));
	r = ioasid_ioas_get_info(ctx, 1, &b.info);
	canary_check(&b, 0, sizeof(b));
	expect_caught(ctx, r, "more data than asked for");
	liar_stop(ctx);
}

static void lie_struct_len(struct raw *r, const struct proto_msg *req)
{
	uint32_t cap = get_u32_attr(req, IOASID_ATTR_OUT_CAP);

	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_LEN, cap * 100);
	raw_data(r, 8, 0x33);
}

Test(structure, length_beyond_the_structure)
{
	struct ioasid_ctx *ctx = liar_start(lie_struct_len);
	struct {
		struct ioasid_status st;
		unsigned char after[64];
	} b;
	int r;

	memset(&b, CANARY, sizeof(b));
	r = ioasid_get_status(ctx, &b.st);
	canary_check(&b, sizeof(b.st), sizeof(b));
	expect_caught(ctx, r, "length");
	liar_stop(ctx);
}

/* ---- ids, counts, bytes --------------------------------------------------- */

static void lie_no_id(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
}

Test(ids, a_new_object_without_an_id)
{
	struct ioasid_ctx *ctx = liar_start(lie_no_id);
	uint32_t id = 77;
	int r = ioasid_ioas_alloc(ctx, 0, &id);

	cr_assert_eq(id, 77, "the id was written: %u", id);
	expect_caught(ctx, r, "no id");
	liar_stop(ctx);
}

Test(ids, a_bound_device_without_an_id)
{
	struct ioasid_ctx *ctx = liar_start(lie_no_id);
	uint32_t id = 77;
	int r = ioasid_device_bind(ctx, "0000:00:01.0", -1, &id);

	cr_assert_eq(id, 77);
	expect_caught(ctx, r, "no id");
	liar_stop(ctx);
}

static void lie_dma_bytes(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u64(r, IOASID_ATTR_OUT_BYTES, 1 << 20);
}

Test(bytes, dma_done_more_than_asked)
{
	struct ioasid_ctx *ctx = liar_start(lie_dma_bytes);
	unsigned char buf[64];
	uint64_t done = 5;
	int r;

	memset(buf, 0, sizeof(buf));
	r = ioasid_device_dma(ctx, 1, 0x1000, buf, sizeof(buf),
			      IOASID_DMA_WRITE, &done);
	cr_assert(done <= sizeof(buf), "done became %llu",
		  (unsigned long long)done);
	expect_caught(ctx, r, "more bytes done");
	liar_stop(ctx);
}

static void lie_dma_read_data(struct raw *r, const struct proto_msg *req)
{
	uint32_t cap = get_u32_attr(req, IOASID_ATTR_OUT_CAP);

	raw_u32(r, IOASID_ATTR_ERRNO, EFAULT);
	raw_u64(r, IOASID_ATTR_OUT_BYTES, 16);
	raw_u32(r, IOASID_ATTR_OUT_LEN, cap + 64);
	raw_data(r, (uint16_t)(cap + 64), 0x44);
}

Test(bytes, dma_read_partial_beyond_the_buffer)
{
	struct ioasid_ctx *ctx = liar_start(lie_dma_read_data);
	unsigned char buf[128];
	uint64_t done = 5;
	int r;

	memset(buf, CANARY, sizeof(buf));
	r = ioasid_device_dma(ctx, 1, 0x1000, buf, 64, 0, &done);
	canary_check(buf, 0, sizeof(buf));
	expect_caught(ctx, r, "more data than asked for");
	liar_stop(ctx);
}

static void lie_batch_count(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, EINVAL);
	raw_u32(r, IOASID_ATTR_OUT_ID, 1000);
}

Test(bytes, batch_mapped_more_entries_than_sent)
{
	struct ioasid_ctx *ctx = liar_start(lie_batch_count);
	struct ioasid_map_entry e[2] = {
		{ .offset = 0, .length = 4096 },
		{ .offset = 4096, .length = 4096 },
	};
	uint64_t iovas[8];
	int fd = memfd_create("liar", MFD_CLOEXEC), r;

	cr_assert(fd >= 0);
	memset(iovas, CANARY, sizeof(iovas));
	r = ioasid_map_file_batch(ctx, 1, fd, e, 2, 0, iovas);
	close(fd);
	canary_check(iovas, 0, sizeof(iovas));
	expect_caught(ctx, r, "more entries mapped");
	liar_stop(ctx);
}

/* A refusal that claims more invalidation entries done than were sent. */
Test(bytes, nested_invalidated_more_entries_than_sent)
{
	struct ioasid_ctx *ctx = liar_start(lie_batch_count);
	struct ioasid_nested_inval e[2] = {
		{ .addr = 0, .npages = 1 },
		{ .addr = 4096, .npages = 1 },
	};
	int32_t errors[2];
	uint32_t nr = 2;
	int r;

	r = ioasid_nested_invalidate(ctx, 1, e, &nr, errors);
	cr_assert(nr <= 2, "nr done became %u of 2 sent", nr);
	expect_caught(ctx, r, "more entries invalidated");
	liar_stop(ctx);
}

static void lie_error_with_data(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, ENOENT);
	raw_u32(r, IOASID_ATTR_OUT_LEN, 8);
	raw_data(r, 8, 0x55);
}

Test(structure, data_with_an_error)
{
	struct ioasid_ctx *ctx = liar_start(lie_error_with_data);
	struct ioasid_ioas_info info;
	int r;

	memset(&info, CANARY, sizeof(info));
	r = ioasid_ioas_get_info(ctx, 1, &info);
	canary_check(&info, 0, sizeof(info));
	expect_caught(ctx, r, "data with an error");
	liar_stop(ctx);
}

static void lie_name(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_ID, 3);
	raw_attr(r, IOASID_ATTR_NAME, "evil", 5);
}

Test(ids, a_name_where_none_belongs)
{
	struct ioasid_ctx *ctx = liar_start(lie_name);
	uint32_t id = 77;
	int r = ioasid_ioas_alloc(ctx, 0, &id);

	cr_assert_eq(id, 77);
	expect_caught(ctx, r, "a name where none belongs");
	liar_stop(ctx);
}

/* ---- descriptors ---------------------------------------------------------- */

static void lie_fd_with_alloc(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_ID, 3);
	raw_u32(r, IOASID_ATTR_OUT_FD_INDEX, 0);
	raw_fd(r);
}

Test(descriptors, one_where_none_belongs_is_closed)
{
	struct ioasid_ctx *ctx = liar_start(lie_fd_with_alloc);
	uint32_t id = 77;
	int r = ioasid_ioas_alloc(ctx, 0, &id);

	cr_assert_eq(id, 77);
	expect_caught(ctx, r, "a descriptor where none belongs");
	liar_stop(ctx);		/* counts descriptors */
}

static void lie_two_fds(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_FD_INDEX, 0);
	raw_fd(r);
	raw_fd(r);
}

Test(descriptors, two_for_one_are_both_closed)
{
	struct ioasid_ctx *ctx = liar_start(lie_two_fds);
	int fd = -7, r = ioasid_device_get_fd(ctx, 1, &fd);

	cr_assert_eq(fd, -7, "fd was written: %d", fd);
	expect_caught(ctx, r, "descriptor");
	liar_stop(ctx);
}

static void lie_fd_with_error(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, EPERM);
	raw_u32(r, IOASID_ATTR_OUT_FD_INDEX, 0);
	raw_fd(r);
}

Test(descriptors, one_with_an_error_is_closed)
{
	struct ioasid_ctx *ctx = liar_start(lie_fd_with_error);
	int fd = -7, r = ioasid_device_get_fd(ctx, 1, &fd);

	cr_assert_eq(fd, -7);
	expect_caught(ctx, r, "a descriptor with an error");
	liar_stop(ctx);
}

static void lie_no_fd(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
}

Test(descriptors, none_where_one_belongs)
{
	struct ioasid_ctx *ctx = liar_start(lie_no_fd);
	int fd = -7, r = ioasid_device_get_fd(ctx, 1, &fd);

	cr_assert_eq(fd, -7);
	expect_caught(ctx, r, "no descriptor");
	liar_stop(ctx);
}

static void honest_fd(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_FD_INDEX, 0);
	raw_fd(r);
}

Test(descriptors, honest_one_is_the_callers)
{
	struct ioasid_ctx *ctx = liar_start(honest_fd);
	int fd = -7, r = ioasid_device_get_fd(ctx, 1, &fd);

	cr_assert_eq(r, 0, "%d %s", r, ioasid_last_error(ctx));
	cr_assert(fd >= 0 && fcntl(fd, F_GETFD) >= 0);
	close(fd);
	liar_stop(ctx);
}

Test(descriptors, one_with_an_event_is_closed)
{
	struct ioasid_ctx *ctx = liar_start(honest_list);
	uint32_t ids[16], nr;
	int r;

	L.event_with_fd = true;
	r = list4(ctx, &nr, ids);
	cr_assert_eq(nr, 4);
	canary_check(ids, 0, sizeof(ids));
	expect_caught(ctx, r, "descriptor");
	liar_stop(ctx);
}

/* ---- framing of replies --------------------------------------------------- */

static void lie_seq(struct raw *r, const struct proto_msg *req)
{
	((struct nlmsghdr *)r->b)->nlmsg_seq = req->seq + 1;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_ID, 3);
}

Test(framing, reply_to_another_request)
{
	struct ioasid_ctx *ctx = liar_start(lie_seq);
	uint32_t id = 77;
	int r = ioasid_ioas_alloc(ctx, 0, &id);

	cr_assert_eq(id, 77);
	expect_caught(ctx, r, "out of order");
	liar_stop(ctx);
}

static void lie_request(struct raw *r, const struct proto_msg *req)
{
	(void)req;
	((struct nlmsghdr *)r->b)->nlmsg_flags = NLM_F_REQUEST;
	raw_u32(r, IOASID_ATTR_ERRNO, 0);
	raw_u32(r, IOASID_ATTR_OUT_ID, 3);
}

Test(framing, a_request_instead_of_a_reply)
{
	struct ioasid_ctx *ctx = liar_start(lie_request);
	uint32_t id = 77;
	int r = ioasid_ioas_alloc(ctx, 0, &id);

	cr_assert_eq(id, 77);
	expect_caught(ctx, r, "flags");
	liar_stop(ctx);
}
