/* SPDX-License-Identifier: LGPL-2.1-or-later WITH Linux-syscall-note */
/*
 * The ioasidd protocol.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET, one message per packet, file
 * descriptors as SCM_RIGHTS ancillary data (at most IOASID_MAX_FDS per
 * message, only where the command says so).  Requests name theirs with
 * FD_INDEX/FD_INDEX2; a reply carries at most one, named by OUT_FD_INDEX,
 * and only on success of a command that returns a descriptor
 * (DEVICE_GET_FD).  Every descriptor that comes with a message must be
 * named by it exactly once.
 *
 * Framing: each packet is one netlink message: struct nlmsghdr, then a
 * generic-netlink style header (struct genlmsghdr: cmd, version), then
 * attributes (struct nlattr, 4-byte aligned).  nlmsg_len must equal the
 * packet length.  nlmsg_seq is chosen by the client and echoed.
 *
 * Replies: a message with cmd IOASID_CMD_REPLY carrying IOASID_ATTR_ERRNO
 * (u32, positive errno or 0), optionally IOASID_ATTR_ERRMSG (string) and
 * the command's result attributes.  Events arrive unsolicited with cmd
 * IOASID_CMD_EVENT and nlmsg_seq 0.
 *
 * Validation (strict; unlike libnl's parser): unknown commands, unknown,
 * duplicate or wrongly sized attributes, a missing required attribute,
 * trailing bytes and fds where none belong all get EINVAL with a reason; a
 * packet whose netlink header does not add up (shorter than struct
 * nlmsghdr, nlmsg_len != packet length, truncated data or ancillary data)
 * closes the connection.  Requests carry NLM_F_REQUEST, nlmsg_type
 * IOASID_MSG_TYPE and genlmsghdr.version IOASID_PROTO_VERSION.
 */
#ifndef _UAPI_IOASID_PROTO_H
#define _UAPI_IOASID_PROTO_H

#include <linux/types.h>

#define IOASID_PROTO_VERSION	1
#define IOASID_DEFAULT_SOCKET	"/run/ioasidd/ioasidd.sock"
#define IOASID_MAX_MSG		(256 * 1024)	/* largest packet */
#define IOASID_MAX_FDS		2	/* FD_INDEX and FD_INDEX2 */
/* nlmsg_type of every message (there is no genl family to resolve). */
#define IOASID_MSG_TYPE		0x10	/* NLMSG_MIN_TYPE */

/*
 * The commands, their numbers and their attributes: one row each in
 * <ioasid/ops.def>.
 */
enum ioasid_cmd {
	IOASID_CMD_UNSPEC		= 0,
#define IOASID_OP(name, nr, wire, required, optional, handler, core) \
	IOASID_CMD_##name = nr,
#include <ioasid/ops.def>
#undef IOASID_OP
	__IOASID_CMD_MAX,
};

enum ioasid_attr {
	IOASID_ATTR_UNSPEC		= 0,
	IOASID_ATTR_ERRNO		= 1,	/* u32 */
	IOASID_ATTR_ERRMSG		= 2,	/* string */
	IOASID_ATTR_IOAS_ID		= 3,	/* u32 */
	IOASID_ATTR_IOAS_ID2		= 4,	/* u32: copy source */
	IOASID_ATTR_DEV_ID		= 5,	/* u32 */
	IOASID_ATTR_VM_ID		= 6,	/* u32 */
	IOASID_ATTR_FLAGS		= 7,	/* u32 */
	IOASID_ATTR_MODE		= 8,	/* u32 */
	IOASID_ATTR_IOVA		= 9,	/* u64 */
	IOASID_ATTR_LENGTH		= 10,	/* u64 */
	IOASID_ATTR_OFFSET		= 11,	/* u64 */
	IOASID_ATTR_NAME		= 12,	/* string */
	IOASID_ATTR_FD_INDEX		= 13,	/* u32: index into SCM_RIGHTS */
	IOASID_ATTR_DATA		= 14,	/* binary: ranges, DMA data */
	IOASID_ATTR_OUT_ID		= 15,	/* u32 */
	IOASID_ATTR_OUT_IOVA		= 16,	/* u64 */
	IOASID_ATTR_OUT_BYTES		= 17,	/* u64 */
	IOASID_ATTR_OUT_DATA		= 18,	/* binary: structs, arrays */
	IOASID_ATTR_OUT_CAP		= 19,	/* u32: room the client has */
	IOASID_ATTR_FILE_ID		= 20,	/* u32 */
	IOASID_ATTR_FD_INDEX2		= 21,	/* u32 */
	/* u32: bytes the result needs (may exceed OUT_DATA: EMSGSIZE) */
	IOASID_ATTR_OUT_LEN		= 22,
	/* u32: index into the reply's SCM_RIGHTS (a returned descriptor) */
	IOASID_ATTR_OUT_FD_INDEX	= 23,
	__IOASID_ATTR_MAX,
};

/*
 * The reply to SESSION_NAME and SESSION_RECLAIM: OUT_DATA is the token
 * (IOASID_SESSION_TOKEN_LEN bytes), then, when OUT_CAP has room for it,
 * this: how many changes of the session ioasidd has recorded since it was
 * named (successful requests that change state; the ones
 * proto_cmd_changes_state() names) and the results of the last one.  A
 * client that lost its connection with a change in flight compares the
 * count with its own: one more, the change took effect (these are its
 * results); the same, it did not (send it again); fewer, ioasidd lost
 * acknowledged changes.
 */
struct ioasid_session_resume {
	__u64 changes;
	__u64 last_out_iova;
	__u64 last_out_bytes;
	__u32 last_out_id;
	__u32 __reserved;
};

#endif /* _UAPI_IOASID_PROTO_H */
