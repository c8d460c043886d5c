/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ioasidd wire codec: struct ioasid_op <-> one netlink-format message.
 *
 * Shared by the two ends of the socket and by nothing else (see README in
 * this directory): transport/remote.c encodes requests and decodes
 * replies and events; ioasidd decodes requests and encodes replies and
 * events.  Both sides validate with the same per-command policy table.
 *
 * Message layout (uapi/ioasid/proto.h):
 *
 *   struct nlmsghdr   nlmsg_len = packet length, nlmsg_type =
 *                     IOASID_MSG_TYPE, NLM_F_REQUEST on requests,
 *                     nlmsg_seq chosen by the client and echoed
 *   struct genlmsghdr cmd = enum ioasid_cmd, version =
 *                     IOASID_PROTO_VERSION, reserved = 0
 *   struct nlattr...  4-byte aligned, each attribute at most once
 *
 * Error convention: functions return 0 or a negative errno and write a
 * sentence into the caller's buffer (op->errmsg or @why).  libnl's NLE_*
 * codes never escape this file.
 */
#ifndef IOASID_PROTO_CODEC_H
#define IOASID_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <ioasid/ioasid.h>
#include <ioasid/proto.h>

#include "op/op.h"

struct nl_msg;

/* Bytes before the first attribute. */
#define PROTO_HDRLEN		(NLMSG_HDRLEN + GENL_HDRLEN)
/*
 * Largest DATA or OUT_DATA payload: what a netlink attribute can hold
 * (nla_len is 16 bits), rounded down to 8 bytes.  Any op whose payloads
 * fit also fits one packet (IOASID_MAX_MSG).  Larger device DMA and dirty
 * bitmaps are split by the remote transport; other larger inputs fail
 * with E2BIG.
 */
#define PROTO_MAX_PAYLOAD	(UINT16_MAX - NLA_HDRLEN - 3)
/* DEVICE_DMA larger than this is split into several messages. */
#define PROTO_DMA_CHUNK		(60 * 1024)
/* Room for the ancillary data of one message. */
#define PROTO_CMSG_SPACE	CMSG_SPACE(sizeof(int) * IOASID_MAX_FDS)

enum proto_cmd_flags {
	PROTO_CMD_REQUEST	= 1 << 0, /* a client may send it */
	PROTO_CMD_LOCAL		= 1 << 1, /* refused over the socket */
	PROTO_CMD_FROM_DAEMON	= 1 << 2, /* REPLY and EVENT */
	/* results are meaningful on failure too (lists on EMSGSIZE, DMA) */
	PROTO_CMD_OUT_PARTIAL	= 1 << 3,
	PROTO_CMD_NAME_OUT	= 1 << 4, /* the reply carries op->name */
	/* a successful reply carries one descriptor (op->out_fd) */
	PROTO_CMD_FD_OUT	= 1 << 5,
	/* a successful reply names a new object by OUT_ID (never 0) */
	PROTO_CMD_NEW_ID	= 1 << 6,
};

/*
 * Which attributes a command may and must carry (1ULL << IOASID_ATTR_*),
 * from its row in <ioasid/ops.def>.
 */
struct proto_cmd_policy {
	const char *name;
	uint32_t flags;
	uint64_t allowed;
	uint64_t required;
	bool core;		/* libioasid's core runs it (a handler) */
};

/* NULL for a command number the protocol does not know. */
const struct proto_cmd_policy *proto_cmd_policy(uint32_t cmd);
/* "IOAS_ID", "DATA", ...; "?" for unknown numbers. */
const char *proto_attr_name(uint32_t attr);
const char *proto_cmd_name(uint32_t cmd);
/*
 * Whether a successful @cmd changes state a session keeps (what ioasidd
 * journals and counts for struct ioasid_session_resume): every command
 * the core runs (one with a handler in <ioasid/ops.def>) but reads, DMA,
 * dirty-bit reads and simulated hot-plug.  Commands ioasidd or the
 * library answer themselves never count.
 */
bool proto_cmd_changes_state(uint32_t cmd);

/* Who sent the message being parsed. */
enum proto_side {
	PROTO_FROM_CLIENT,	/* requests */
	PROTO_FROM_DAEMON,	/* replies and events */
};

/* A validated message; attribute pointers point into the caller's buffer. */
struct proto_msg {
	uint32_t seq;
	uint32_t cmd;
	uint32_t version;
	const struct nlattr *attr[__IOASID_ATTR_MAX];
};

/*
 * proto_parse - validate one received packet strictly
 * @buf, @len: the packet exactly as received
 * @nfds: descriptors that came with it (SCM_RIGHTS)
 *
 * Returns 0; -EBADMSG for a framing violation (the connection cannot be
 * trusted any more and must be closed; @m->seq is not valid); any other
 * negative errno for a well-framed but invalid message, which deserves an
 * error reply with @why to @m->seq.
 */
int proto_parse(const void *buf, size_t len, unsigned int nfds,
		enum proto_side side, struct proto_msg *m, char *why,
		size_t whylen);

/*
 * proto_encode_request - build the request for @op
 * @fds: out: the descriptors to pass with it, @nfds of them
 *
 * Checks that every argument set in @op is carried by the command (a
 * field the policy does not know would otherwise be lost silently) and
 * that required descriptors are open (-EBADF).  Errors land in
 * op->errmsg.
 */
int proto_encode_request(struct ioasid_op *op, uint32_t seq,
			 struct nl_msg **msg, int fds[IOASID_MAX_FDS],
			 unsigned int *nfds);

/*
 * Room proto_decode_request() needs at @outbuf: 64 KiB for results (of
 * which PROTO_MAX_PAYLOAD are used), then 64 KiB for an 8-aligned copy
 * of the request's DATA (an attribute's length is 16 bits).
 */
#define PROTO_DECODE_BUF	(2u * (UINT16_MAX + 1u))

/*
 * proto_decode_request - turn a parsed request into an op for core_call()
 * @fds: the descriptors received with it (indexed by FD_INDEX/FD_INDEX2)
 * @outbuf: PROTO_DECODE_BUF bytes, 8-aligned (malloc's or uint64_t[])
 *
 * op->in points into the message when the data is 8-aligned there, else
 * to a copy in @outbuf's second half: netlink aligns attributes to 4
 * bytes only, and the core reads 64-bit fields of the arrays it is
 * given.  Nothing is allocated.
 */
void proto_decode_request(const struct proto_msg *m, const int *fds,
			  struct ioasid_op *op, void *outbuf);

/*
 * The reply to @op, which returned @result (0 or -errno), for @seq.  When
 * proto_reply_fd() says so, the reply names one descriptor (OUT_FD_INDEX
 * 0): the sender must pass exactly that one with it.
 */
/*
 * The same in two steps, so that a server that has no memory for the
 * reply finds out before it runs the request: proto_reply_prepare() makes
 * room for the reply to the decoded request @op (-ENOMEM), and
 * proto_reply_finish() fills it once @op ran, allocating nothing.
 */
int proto_reply_prepare(const struct ioasid_op *op, uint32_t seq,
			struct nl_msg **msg);
int proto_reply_finish(struct nl_msg *msg, const struct ioasid_op *op,
		       int result);
int proto_encode_reply(const struct ioasid_op *op, int result, uint32_t seq,
		       struct nl_msg **msg);
/* The descriptor the reply to @op carries, or -1 (none belongs in it). */
int proto_reply_fd(const struct ioasid_op *op, int result);
/* An error reply without an op (invalid requests). */
int proto_encode_error(uint32_t seq, int result, const char *reason,
		       struct nl_msg **msg);

/*
 * proto_decode_reply - fill @op's results from a parsed reply
 * @fds: the descriptors received with it (proto_parse() checked that each
 *       is named exactly once)
 * @result: out: the op's result, 0 or -errno from the daemon
 *
 * Returns 0, or -EPROTO when the reply does not fit the request (reason
 * in op->errmsg; nothing written to op->out, op->out_fd left alone):
 * OUT_DATA longer than the OUT_CAP sent; OUT_LEN shorter than OUT_DATA,
 * different from it on success, or beyond OUT_CAP on anything but
 * EMSGSIZE; data with an error for a command without partial results;
 * DEVICE_DMA bytes beyond LENGTH; MAP_BATCH counts beyond the entries
 * sent; a new object without an id; a name where none belongs; a
 * descriptor in the reply to a command that returns none, or in an error
 * reply, or none where the command returns one.  On success op->out_fd is
 * the descriptor the reply named (the caller owns it now; it must close
 * every other one it received) or -1.  op->out is written only up to
 * op->out_cap.
 */
int proto_decode_reply(const struct proto_msg *m, const int *fds,
		       struct ioasid_op *op, int *result);

int proto_encode_event(const struct ioasid_event *ev, struct nl_msg **msg);
/* 0, or -EPROTO / -E2BIG (unknown non-zero tail) for a bad event. */
int proto_decode_event(const struct proto_msg *m, struct ioasid_event *ev);

/* The packet of a built message. */
const void *proto_msg_data(struct nl_msg *msg, size_t *len);

/* libnl's NLE_* (positive or negative) to a negative errno. */
int proto_nle_errno(int nle);

/*
 * Take every descriptor out of a received message's ancillary data into
 * @fds (at most IOASID_MAX_FDS; more are closed at once), so every path
 * can close them.  False when anything but SCM_RIGHTS came, or too many.
 */
bool proto_collect_fds(struct msghdr *mh, int *fds, unsigned int *nfds);

#endif
