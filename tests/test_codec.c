/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wire codec (proto/codec.c), no daemon: every command and attribute
 * described, requests and replies round-trip, the encoder refuses what
 * cannot travel, descriptors only where a command returns one, events
 * follow the ABI's size rules, libnl's errors become errnos.
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
	IOASID_CMD_DEVICE_GET_FD, IOASID_CMD_SESSION_NAME,
	IOASID_CMD_SESSION_RECLAIM, IOASID_CMD_SESSION_LIST,
	IOASID_CMD_SESSION_DROP, IOASID_CMD_SESSION_TOKEN,
	IOASID_CMD_EVENTS_DROPPED,
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
	static uint64_t outbuf[PROTO_DECODE_BUF / 8];

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
	static uint64_t outbuf[PROTO_DECODE_BUF / 8];
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

/*
 * Netlink aligns attributes to 4 bytes: a request whose DATA lands 4 bytes
 * off an 8-byte boundary (here the whole packet does) reaches the core
 * as an 8-aligned copy, whose 64-bit fields it may read in place.
 */
Test(codec, request_data_reaches_the_core_8_aligned)
{
	struct ioasid_iova_range ranges[2] = {
		{ .start = 0x1000, .last = 0x1fff },
		{ .start = 1ULL << 40, .last = (1ULL << 40) + 0xffff },
	};
	static uint64_t outbuf[PROTO_DECODE_BUF / 8];
	static uint64_t packet[IOASID_MAX_MSG / 8 + 1];
	int fds[IOASID_MAX_FDS];
	struct ioasid_op op, back;
	unsigned int nfds;
	struct nl_msg *msg;
	struct proto_msg m;
	const void *buf;
	char why[256];
	size_t len;

	for (size_t shift = 0; shift <= 4; shift += 4) {
		unsigned char *at = (unsigned char *)packet + shift;
		const struct ioasid_iova_range *got;

		ioasid_op_init(&op, IOASID_CMD_CONVERT);
		op.ioas_id = 2;
		op.in = ranges;
		op.in_len = sizeof(ranges);
		cr_assert_eq(proto_encode_request(&op, 1, &msg, fds, &nfds),
			     0, "%s", op.errmsg);
		buf = proto_msg_data(msg, &len);
		memcpy(at, buf, len);
		cr_assert_eq(proto_parse(at, len, nfds, PROTO_FROM_CLIENT, &m,
					 why, sizeof(why)), 0, "%s", why);
		proto_decode_request(&m, fds, &back, outbuf);
		cr_assert_eq((uintptr_t)back.in % 8, 0, "DATA at %p (packet "
			     "shifted by %zu)", back.in, shift);
		cr_assert_eq(back.in_len, sizeof(ranges));
		got = back.in;
		cr_assert_eq(got[1].start, ranges[1].start);
		cr_assert_eq(got[1].last, ranges[1].last);
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


/* What ioasidd journals and a resuming client counts: the same set. */
Test(codec, changes_state_is_what_the_core_changes)
{
	static const uint32_t changes[] = {
		IOASID_CMD_IOAS_ALLOC, IOASID_CMD_MAP_FILE,
		IOASID_CMD_MAP_FILE_ID, IOASID_CMD_UNMAP,
		IOASID_CMD_CONVERT, IOASID_CMD_DEVICE_ATTACH,
		IOASID_CMD_DEVICE_BIND, IOASID_CMD_VM_BIND,
		IOASID_CMD_NESTED_ALLOC, IOASID_CMD_NESTED_ATTACH,
		IOASID_CMD_NESTED_DESTROY, IOASID_CMD_DEVICE_PASID_ATTACH_NESTED,
		IOASID_CMD_FAULT_QUEUE_ALLOC, IOASID_CMD_FAULT_QUEUE_DESTROY,
		IOASID_CMD_FAULT_RESPOND,
	};
	static const uint32_t not[] = {
		IOASID_CMD_HELLO, IOASID_CMD_LOOKUP, IOASID_CMD_IOAS_INFO,
		IOASID_CMD_DEVICE_DMA, IOASID_CMD_STATUS, IOASID_CMD_VIEW,
		IOASID_CMD_RING, IOASID_CMD_FILE_REGISTER,
		IOASID_CMD_SESSION_NAME, IOASID_CMD_SESSION_RECLAIM,
		IOASID_CMD_EVENTS_DROPPED, IOASID_CMD_MAP_USER,
		IOASID_CMD_SIM_HOTPLUG, IOASID_CMD_REPLY,
		IOASID_CMD_NESTED_LIST, IOASID_CMD_NESTED_INVALIDATE,
		IOASID_CMD_FAULT_QUEUE_READ, 9999,
	};

	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
		cr_assert(proto_cmd_changes_state(changes[i]), "%s changes",
			  proto_cmd_name(changes[i]));
	for (size_t i = 0; i < sizeof(not) / sizeof(not[0]); i++)
		cr_assert_not(proto_cmd_changes_state(not[i]), "%s does not",
			      proto_cmd_name(not[i]));
}

/*
 * Lists and infos only read: counted as changes, one in flight when the
 * daemon dies would "resume" as a success with nothing in its buffer.
 */
Test(codec, no_list_or_info_changes_state)
{
	for (uint32_t cmd = 1; cmd < __IOASID_CMD_MAX; cmd++) {
		const char *name = proto_cmd_policy(cmd) ?
				   proto_cmd_name(cmd) : NULL;
		size_t len = name ? strlen(name) : 0;

		if (len < 5 || (strcmp(name + len - 5, "_LIST") &&
				strcmp(name + len - 5, "_INFO")))
			continue;
		cr_assert_not(proto_cmd_changes_state(cmd), "%s only reads",
			      name);
	}
}
