/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ioasidd wire codec (see codec.h).
 *
 * Messages are built with libnl-3.  They are parsed by hand with libnl's
 * accessors only: libnl 3.7's nla_parse() trusts nlmsg_len, ignores
 * unknown, duplicate and truncated attributes and checks minimum lengths
 * only, while a daemon serving unprivileged clients must reject all of
 * that.  The policy table below is the single statement of which
 * attribute each command carries; both ends use it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>

#include "proto/codec.h"
#include "util/macros.h"

#define BIT(a)	(1ULL << IOASID_ATTR_##a)

_Static_assert(__IOASID_ATTR_MAX <= 64, "attribute masks are 64-bit");
_Static_assert(PROTO_DMA_CHUNK <= PROTO_MAX_PAYLOAD, "DMA chunk fits");
_Static_assert(PROTO_MAX_PAYLOAD % 8 == 0, "whole u64 words");
_Static_assert(NLA_HDRLEN + PROTO_MAX_PAYLOAD <= UINT16_MAX, "fits nla_len");
_Static_assert(2 * NLA_HDRLEN + 2 * PROTO_MAX_PAYLOAD + 1024 <= IOASID_MAX_MSG,
	       "a request with DATA and its reply fit a packet");

/* ---- attributes ---------------------------------------------------------- */

enum attr_type {
	AT_U32 = 1,
	AT_U64,
	AT_STRING,	/* NUL-terminated, no inner NUL; max counts the NUL */
	AT_BINARY,	/* 0..max bytes */
	AT_FD,		/* u32 index into the SCM_RIGHTS array */
};

struct attr_def {
	const char *name;
	enum attr_type type;
	uint32_t max;
};

static const struct attr_def attr_defs[__IOASID_ATTR_MAX] = {
	[IOASID_ATTR_ERRNO]	= { "ERRNO", AT_U32, 0 },
	[IOASID_ATTR_ERRMSG]	= { "ERRMSG", AT_STRING,
				    IOASID_ERRMSG_MAX },
	[IOASID_ATTR_IOAS_ID]	= { "IOAS_ID", AT_U32, 0 },
	[IOASID_ATTR_IOAS_ID2]	= { "IOAS_ID2", AT_U32, 0 },
	[IOASID_ATTR_DEV_ID]	= { "DEV_ID", AT_U32, 0 },
	[IOASID_ATTR_VM_ID]	= { "VM_ID", AT_U32, 0 },
	[IOASID_ATTR_FLAGS]	= { "FLAGS", AT_U32, 0 },
	[IOASID_ATTR_MODE]	= { "MODE", AT_U32, 0 },
	[IOASID_ATTR_IOVA]	= { "IOVA", AT_U64, 0 },
	[IOASID_ATTR_LENGTH]	= { "LENGTH", AT_U64, 0 },
	[IOASID_ATTR_OFFSET]	= { "OFFSET", AT_U64, 0 },
	[IOASID_ATTR_NAME]	= { "NAME", AT_STRING, IOASID_NAME_MAX },
	[IOASID_ATTR_FD_INDEX]	= { "FD_INDEX", AT_FD, 0 },
	[IOASID_ATTR_DATA]	= { "DATA", AT_BINARY, PROTO_MAX_PAYLOAD },
	[IOASID_ATTR_OUT_ID]	= { "OUT_ID", AT_U32, 0 },
	[IOASID_ATTR_OUT_IOVA]	= { "OUT_IOVA", AT_U64, 0 },
	[IOASID_ATTR_OUT_BYTES]	= { "OUT_BYTES", AT_U64, 0 },
	[IOASID_ATTR_OUT_DATA]	= { "OUT_DATA", AT_BINARY,
				    PROTO_MAX_PAYLOAD },
	[IOASID_ATTR_OUT_CAP]	= { "OUT_CAP", AT_U32, 0 },
	[IOASID_ATTR_FILE_ID]	= { "FILE_ID", AT_U32, 0 },
	[IOASID_ATTR_FD_INDEX2]	= { "FD_INDEX2", AT_FD, 0 },
	[IOASID_ATTR_OUT_LEN]	= { "OUT_LEN", AT_U32, 0 },
	[IOASID_ATTR_OUT_FD_INDEX] = { "OUT_FD_INDEX", AT_FD, 0 },
};

const char *proto_attr_name(uint32_t attr)
{
	if (attr >= ARRAY_SIZE(attr_defs) || !attr_defs[attr].name)
		return "?";
	return attr_defs[attr].name;
}

/* ---- per-command policy -------------------------------------------------- */

/* A row of <ioasid/ops.def> each: @required must be present, @optional may. */
static const struct proto_cmd_policy policies[__IOASID_CMD_MAX] = {
#define W(f)	PROTO_CMD_##f
#define A(a)	BIT(a)
/* the handler column is 0 or a function's name: "0" has two bytes */
#define IOASID_OP(name, nr, wire, required, optional, handler, core) \
	[IOASID_CMD_##name] = { #name, (wire), (required) | (optional), \
				(required), sizeof(#handler) > 2 },
#include <ioasid/ops.def>
#undef IOASID_OP
#undef A
#undef W
};

const struct proto_cmd_policy *proto_cmd_policy(uint32_t cmd)
{
	if (cmd >= ARRAY_SIZE(policies) || !policies[cmd].name)
		return NULL;
	return &policies[cmd];
}

const char *proto_cmd_name(uint32_t cmd)
{
	const struct proto_cmd_policy *p = proto_cmd_policy(cmd);

	return p ? p->name : "?";
}

bool proto_cmd_changes_state(uint32_t cmd)
{
	const struct proto_cmd_policy *p = proto_cmd_policy(cmd);

	/* answered by ioasidd or the library; through ioasidd, MAP_USER */
	if (!p || !p->core || cmd == IOASID_CMD_MAP_USER)
		return false;
	switch (cmd) {
	/* reads */
	case IOASID_CMD_IOAS_INFO:
	case IOASID_CMD_IOAS_LIST:
	case IOASID_CMD_IOVA_RANGES:
	case IOASID_CMD_LOOKUP:
	case IOASID_CMD_MAPPING_NEXT:
	case IOASID_CMD_FILE_INFO:
	case IOASID_CMD_IOMMU_LIST:
	case IOASID_CMD_DEVICE_LIST:
	case IOASID_CMD_DOMAIN_LIST:
	case IOASID_CMD_DEVICE_INFO:
	case IOASID_CMD_VM_INFO:
	case IOASID_CMD_VM_LIST:
	case IOASID_CMD_DEVICE_GET_FD:
	case IOASID_CMD_FAULT_READ:
	case IOASID_CMD_STATUS:
	case IOASID_CMD_NESTED_LIST:
	case IOASID_CMD_DEVICE_PASID_LIST:
	case IOASID_CMD_VIOMMU_LIST:
	/* the data is in the files; the host's devices; dirty bits; a
	 * nested table's caches (nothing of them outlives a restart) */
	case IOASID_CMD_NESTED_INVALIDATE:
	case IOASID_CMD_VIOMMU_INVALIDATE:
	case IOASID_CMD_DEVICE_DMA:
	case IOASID_CMD_DEVICE_DMA_PASID:
	case IOASID_CMD_SIM_HOTPLUG:
	case IOASID_CMD_DIRTY_READ:
	/* a fault queue's records: a read that a crash cut off is read
	 * again (ioasidd's journal keeps them unread); allocating a queue,
	 * destroying it and answering its requests are changes */
	case IOASID_CMD_FAULT_QUEUE_READ:
	case IOASID_CMD_FAULT_QUEUE_INFO:
	case IOASID_CMD_FAULT_QUEUE_LIST:
		return false;
	}
	return true;
}

/* ---- helpers ------------------------------------------------------------- */

static int why_fail(char *why, size_t len, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int why_fail(char *why, size_t len, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

int proto_nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_SUCCESS:
		return 0;
	case NLE_INTR:
		return -EINTR;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM:
		/* the only way nla_put() fails on a sized message */
		return -EMSGSIZE;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_RANGE:
		return -ERANGE;
	case NLE_MSGSIZE:
	case NLE_MSG_OVERFLOW:
		return -EMSGSIZE;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_NOATTR:
	case NLE_MISSING_ATTR:
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_MSG_TRUNC:
	case NLE_MSG_TOOSHORT:
	case NLE_ATTRSIZE:
	case NLE_PARSE_ERR:
		return -EBADMSG;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_NOACCESS:
	case NLE_PERM:
		return -EPERM;
	case NLE_NODEV:
		return -ENODEV;
	default:
		return -EPROTO;
	}
}

static uint32_t get_u32(const struct nlattr *a)
{
	return nla_get_u32((struct nlattr *)a);
}

static uint64_t get_u64(const struct nlattr *a)
{
	uint64_t v;

	memcpy(&v, nla_data(a), sizeof(v));	/* only 4-byte aligned */
	return v;
}

/* A message with the netlink and genetlink headers filled in. */
static struct nl_msg *new_msg(uint32_t cmd, uint32_t seq, int flags,
			      size_t attr_room)
{
	struct nl_msg *msg;
	struct genlmsghdr *g;

	msg = nlmsg_alloc_size(NLMSG_ALIGN(PROTO_HDRLEN) + attr_room);
	if (!msg)
		return NULL;
	if (!nlmsg_put(msg, 0, seq, IOASID_MSG_TYPE, GENL_HDRLEN, flags)) {
		nlmsg_free(msg);
		return NULL;
	}
	g = nlmsg_data(nlmsg_hdr(msg));
	g->cmd = (uint8_t)cmd;
	g->version = IOASID_PROTO_VERSION;
	g->reserved = 0;
	return msg;
}

const void *proto_msg_data(struct nl_msg *msg, size_t *len)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	*len = nlh->nlmsg_len;
	return nlh;
}

/* nla_put() with a non-NULL pointer even for empty payloads. */
static int put_bytes(struct nl_msg *msg, int attr, const void *data,
		     uint32_t len)
{
	static const char empty;

	return nla_put(msg, attr, (int)len, len ? data : &empty);
}

static int put_string(struct nl_msg *msg, int attr, const char *s,
		      size_t max)
{
	size_t n = strnlen(s, max - 1);
	char buf[IOASID_ERRMSG_MAX];

	if (max > sizeof(buf))
		return -NLE_RANGE;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return nla_put(msg, attr, (int)n + 1, buf);
}

/* ---- parsing ------------------------------------------------------------- */

static int check_string(const struct nlattr *a, const struct attr_def *d,
			char *why, size_t whylen)
{
	const char *s = nla_data(a);
	int len = nla_len(a);

	if (len < 1 || (uint32_t)len > d->max)
		return why_fail(why, whylen, EINVAL, "string attribute %s of "
				"%d bytes (1 to %u allowed)", d->name, len,
				d->max);
	if (memchr(s, '\0', (size_t)len) != s + len - 1)
		return why_fail(why, whylen, EINVAL, "string attribute %s is "
				"not a NUL-terminated string", d->name);
	return 0;
}

/* Exact sizes for fixed-size attributes, bounds for the others. */
static int check_attr(const struct nlattr *a, const struct attr_def *d,
		      char *why, size_t whylen)
{
	int len = nla_len(a);

	switch (d->type) {
	case AT_U32:
	case AT_FD:
		if (len != 4)
			break;
		return 0;
	case AT_U64:
		if (len != 8)
			break;
		return 0;
	case AT_STRING:
		return check_string(a, d, why, whylen);
	case AT_BINARY:
		if ((uint32_t)len > d->max)
			return why_fail(why, whylen, EINVAL, "attribute %s of "
					"%d bytes exceeds %u", d->name, len,
					d->max);
		return 0;
	}
	return why_fail(why, whylen, EINVAL, "attribute %s has %d bytes, "
			"expected %d", d->name, len,
			d->type == AT_U64 ? 8 : 4);
}

/* Walk the attributes: every byte accounted for, each known and once. */
static int parse_attrs(const struct nlmsghdr *nlh,
		       const struct proto_cmd_policy *pol,
		       struct proto_msg *m, char *why, size_t whylen)
{
	const struct nlattr *a = nlmsg_attrdata(nlh, GENL_HDRLEN);
	int rem = nlmsg_attrlen(nlh, GENL_HDRLEN);
	int r;

	while (rem > 0) {
		uint32_t type;

		if (rem < NLA_HDRLEN)
			return why_fail(why, whylen, EINVAL, "%d stray bytes "
					"after the last attribute", rem);
		if (a->nla_len < NLA_HDRLEN || a->nla_len > rem)
			return why_fail(why, whylen, EINVAL, "attribute type "
					"%u claims %u bytes, %d remain",
					a->nla_type, a->nla_len, rem);
		if ((int)NLA_ALIGN(a->nla_len) > rem)
			return why_fail(why, whylen, EINVAL, "attribute %s "
					"lacks its alignment padding",
					proto_attr_name(a->nla_type));
		type = a->nla_type;
		if (type & ~NLA_TYPE_MASK)
			return why_fail(why, whylen, EINVAL, "attribute type "
					"%#x has nested/byte-order flags",
					type);
		if (!type || type >= __IOASID_ATTR_MAX ||
		    !attr_defs[type].name)
			return why_fail(why, whylen, EINVAL, "unknown "
					"attribute type %u", type);
		if (!(pol->allowed & (1ULL << type)))
			return why_fail(why, whylen, EINVAL, "attribute %s "
					"does not belong in %s",
					attr_defs[type].name, pol->name);
		if (m->attr[type])
			return why_fail(why, whylen, EINVAL, "duplicate "
					"attribute %s", attr_defs[type].name);
		r = check_attr(a, &attr_defs[type], why, whylen);
		if (r < 0)
			return r;
		m->attr[type] = a;
		rem -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)((const char *)a +
					    NLA_ALIGN(a->nla_len));
	}
	return 0;
}

static int check_required(const struct proto_cmd_policy *pol,
			  const struct proto_msg *m, char *why, size_t whylen)
{
	for (uint32_t i = 1; i < __IOASID_ATTR_MAX; i++)
		if ((pol->required & (1ULL << i)) && !m->attr[i])
			return why_fail(why, whylen, EINVAL, "%s needs "
					"attribute %s", pol->name,
					proto_attr_name(i));
	return 0;
}

/* Descriptor indexes name distinct received fds; no fd goes unnamed. */
static int check_fds(const struct proto_msg *m, unsigned int nfds,
		     char *why, size_t whylen)
{
	static const uint32_t fd_attrs[] = {
		IOASID_ATTR_FD_INDEX, IOASID_ATTR_FD_INDEX2,
		IOASID_ATTR_OUT_FD_INDEX,
	};
	unsigned int named = 0;
	uint32_t seen = 0;

	for (size_t i = 0; i < ARRAY_SIZE(fd_attrs); i++) {
		const struct nlattr *a = m->attr[fd_attrs[i]];
		uint32_t idx;

		if (!a)
			continue;
		idx = get_u32(a);
		if (idx >= nfds)
			return why_fail(why, whylen, EINVAL, "%s is %u but %u "
					"descriptor(s) came with the message",
					proto_attr_name(fd_attrs[i]), idx,
					nfds);
		if (seen & (1U << idx))
			return why_fail(why, whylen, EINVAL, "descriptor %u "
					"named twice", idx);
		seen |= 1U << idx;
		named++;
	}
	if (nfds > named)
		return why_fail(why, whylen, EINVAL, "%u descriptor(s) sent "
				"but %s names %u", nfds, proto_cmd_name(m->cmd),
				named);
	return 0;
}

/* Values the policy cannot express. */
static int check_values(const struct proto_msg *m, char *why, size_t whylen)
{
	const struct nlattr *a = m->attr[IOASID_ATTR_OUT_CAP];

	if (a && get_u32(a) > PROTO_MAX_PAYLOAD)
		return why_fail(why, whylen, EINVAL, "OUT_CAP %u exceeds the "
				"largest result (%u bytes)", get_u32(a),
				PROTO_MAX_PAYLOAD);
	a = m->attr[IOASID_ATTR_ERRNO];
	if (a && get_u32(a) >= 4096)
		return why_fail(why, whylen, EINVAL, "ERRNO %u is not an "
				"errno", get_u32(a));
	return 0;
}

static int check_header(const struct nlmsghdr *nlh, size_t len,
			enum proto_side side, struct proto_msg *m,
			char *why, size_t whylen)
{
	int want = side == PROTO_FROM_CLIENT ? NLM_F_REQUEST : 0;
	const struct genlmsghdr *g;

	if (nlh->nlmsg_type != IOASID_MSG_TYPE)
		return why_fail(why, whylen, EINVAL, "message type %u (ioasidd "
				"messages use %u)", nlh->nlmsg_type,
				IOASID_MSG_TYPE);
	if (nlh->nlmsg_flags != want)
		return why_fail(why, whylen, EINVAL, "message flags %#x, "
				"expected %#x", nlh->nlmsg_flags, want);
	if (len < PROTO_HDRLEN)
		return why_fail(why, whylen, EINVAL, "message of %zu bytes "
				"has no room for the genetlink header", len);
	g = nlmsg_data(nlh);
	m->cmd = g->cmd;
	m->version = g->version;
	if (g->version != IOASID_PROTO_VERSION)
		return why_fail(why, whylen, EPROTONOSUPPORT, "protocol "
				"version %u (this side speaks %u)", g->version,
				IOASID_PROTO_VERSION);
	if (g->reserved)
		return why_fail(why, whylen, EINVAL, "genetlink reserved "
				"field is %u, must be 0", g->reserved);
	return 0;
}

int proto_parse(const void *buf, size_t len, unsigned int nfds,
		enum proto_side side, struct proto_msg *m, char *why,
		size_t whylen)
{
	const struct nlmsghdr *nlh = buf;
	const struct proto_cmd_policy *pol;
	uint32_t need;
	int r;

	memset(m, 0, sizeof(*m));
	/* framing: without these nothing else in the packet can be trusted */
	if (len < NLMSG_HDRLEN)
		return why_fail(why, whylen, EBADMSG, "packet of %zu bytes is "
				"shorter than a netlink header", len);
	if (nlh->nlmsg_len != len || len > IOASID_MAX_MSG)
		return why_fail(why, whylen, EBADMSG, "nlmsg_len %u but the "
				"packet has %zu bytes", nlh->nlmsg_len, len);
	m->seq = nlh->nlmsg_seq;

	r = check_header(nlh, len, side, m, why, whylen);
	if (r < 0)
		return r;
	pol = proto_cmd_policy(m->cmd);
	need = side == PROTO_FROM_CLIENT ? PROTO_CMD_REQUEST :
					   PROTO_CMD_FROM_DAEMON;
	if (!pol || !(pol->flags & need))
		return why_fail(why, whylen, EINVAL, "unknown command %u",
				m->cmd);
	r = parse_attrs(nlh, pol, m, why, whylen);
	if (r < 0)
		return r;
	r = check_required(pol, m, why, whylen);
	if (r < 0)
		return r;
	r = check_fds(m, nfds, why, whylen);
	if (r < 0)
		return r;
	return check_values(m, why, whylen);
}

/* ---- requests ------------------------------------------------------------ */

/* The attributes whose op fields hold something other than the default. */
static uint64_t op_fields(const struct ioasid_op *op)
{
	uint64_t f = 0;

	f |= op->ioas_id ? BIT(IOAS_ID) : 0;
	f |= op->ioas_id2 ? BIT(IOAS_ID2) : 0;
	f |= op->dev_id ? BIT(DEV_ID) : 0;
	f |= op->vm_id ? BIT(VM_ID) : 0;
	f |= op->file_id ? BIT(FILE_ID) : 0;
	f |= op->flags ? BIT(FLAGS) : 0;
	f |= op->mode ? BIT(MODE) : 0;
	f |= op->iova ? BIT(IOVA) : 0;
	f |= op->length ? BIT(LENGTH) : 0;
	f |= op->offset ? BIT(OFFSET) : 0;
	f |= op->fd >= 0 ? BIT(FD_INDEX) : 0;
	f |= op->fd2 >= 0 ? BIT(FD_INDEX2) : 0;
	f |= op->name[0] ? BIT(NAME) : 0;
	f |= op->in_len ? BIT(DATA) : 0;
	f |= op->out_cap ? BIT(OUT_CAP) : 0;
	return f;
}

/* Every argument the caller set must travel; required fds must be open. */
static int check_request(struct ioasid_op *op,
			 const struct proto_cmd_policy *pol)
{
	uint64_t extra = op_fields(op) & ~pol->allowed;
	uint32_t first = extra ? (uint32_t)__builtin_ctzll(extra) : 0;
	int fd;

	if (extra)
		return op_fail(op, EINVAL, "%s does not carry %s to ioasidd",
			       pol->name, proto_attr_name(first));
	if (op->in_len > PROTO_MAX_PAYLOAD)
		return op_fail(op, E2BIG, "%u bytes of input exceed one "
			       "ioasidd message (%u)", op->in_len,
			       PROTO_MAX_PAYLOAD);
	if (op->name[0] && strnlen(op->name, sizeof(op->name)) >=
	    sizeof(op->name))
		return op_fail(op, EINVAL, "name is not NUL-terminated");
	for (int i = 0; i < 2; i++) {
		fd = i ? op->fd2 : op->fd;
		if (!(pol->allowed & (i ? BIT(FD_INDEX2) : BIT(FD_INDEX))))
			continue;
		if (fd < 0 && !(pol->required &
				(i ? BIT(FD_INDEX2) : BIT(FD_INDEX))))
			continue;
		if (fd < 0 || fcntl(fd, F_GETFD) < 0)
			return op_fail(op, EBADF, "fd %d is not an open file",
				       fd);
	}
	return 0;
}

static int put_fd(struct nl_msg *msg, int attr, int fd, int fds[],
		  unsigned int *nfds)
{
	if (fd < 0)
		return 0;
	fds[*nfds] = fd;
	return nla_put_u32(msg, attr, (*nfds)++);
}

/* Put request attribute @a of @op; absent optional attributes are skipped. */
static int put_request_attr(struct nl_msg *msg, uint32_t a,
			    const struct ioasid_op *op, bool required,
			    int fds[], unsigned int *nfds)
{
	switch (a) {
	case IOASID_ATTR_IOAS_ID:
		return nla_put_u32(msg, a, op->ioas_id);
	case IOASID_ATTR_IOAS_ID2:
		return nla_put_u32(msg, a, op->ioas_id2);
	case IOASID_ATTR_DEV_ID:
		return nla_put_u32(msg, a, op->dev_id);
	case IOASID_ATTR_VM_ID:
		return nla_put_u32(msg, a, op->vm_id);
	case IOASID_ATTR_FILE_ID:
		return nla_put_u32(msg, a, op->file_id);
	case IOASID_ATTR_FLAGS:
		return nla_put_u32(msg, a, op->flags);
	case IOASID_ATTR_MODE:
		return nla_put_u32(msg, a, op->mode);
	case IOASID_ATTR_IOVA:
		return nla_put_u64(msg, a, op->iova);
	case IOASID_ATTR_LENGTH:
		return nla_put_u64(msg, a, op->length);
	case IOASID_ATTR_OFFSET:
		return nla_put_u64(msg, a, op->offset);
	case IOASID_ATTR_NAME:
		if (!op->name[0] && !required)
			return 0;
		return put_string(msg, a, op->name, sizeof(op->name));
	case IOASID_ATTR_FD_INDEX:
		return put_fd(msg, a, op->fd, fds, nfds);
	case IOASID_ATTR_FD_INDEX2:
		return put_fd(msg, a, op->fd2, fds, nfds);
	case IOASID_ATTR_DATA:
		if (!op->in_len && !required)
			return 0;
		return put_bytes(msg, a, op->in, op->in_len);
	case IOASID_ATTR_OUT_CAP:
		return nla_put_u32(msg, a, min_t(uint32_t, op->out_cap,
						 PROTO_MAX_PAYLOAD));
	}
	return -NLE_INVAL;
}

int proto_encode_request(struct ioasid_op *op, uint32_t seq,
			 struct nl_msg **out, int fds[IOASID_MAX_FDS],
			 unsigned int *nfds)
{
	const struct proto_cmd_policy *pol = proto_cmd_policy(op->cmd);
	struct nl_msg *msg;
	uint64_t send;
	int r;

	*nfds = 0;
	if (!pol || !(pol->flags & PROTO_CMD_REQUEST))
		return op_fail(op, EOPNOTSUPP, "command %u does not exist in "
			       "the ioasidd protocol", op->cmd);
	r = check_request(op, pol);
	if (r < 0)
		return r;
	msg = new_msg(op->cmd, seq, NLM_F_REQUEST,
		      512 + NLA_HDRLEN + NLA_ALIGN(op->in_len));
	if (!msg)
		return op_fail(op, ENOMEM, "out of memory for a message");
	/*
	 * An optional attribute left at its default is not sent (absent
	 * decodes to the default): a daemon that predates it still takes
	 * the request when the caller does not use it.
	 */
	send = pol->required | (pol->allowed & op_fields(op));
	for (uint32_t a = 1; a < __IOASID_ATTR_MAX; a++) {
		if (!(send & (1ULL << a)))
			continue;
		r = put_request_attr(msg, a, op,
				     pol->required & (1ULL << a), fds, nfds);
		if (r < 0) {
			nlmsg_free(msg);
			*nfds = 0;
			r = proto_nle_errno(r);
			return op_fail(op, -r, "cannot build %s: %s",
				       pol->name, strerror(-r));
		}
	}
	*out = msg;
	return 0;
}

static void get_string(const struct nlattr *a, char *dst, size_t len)
{
	/* validated: NUL-terminated and no longer than the destination */
	snprintf(dst, len, "%s", (const char *)nla_data(a));
}

static void decode_request_attr(uint32_t a, const struct nlattr *na,
				const int *fds, struct ioasid_op *op,
				unsigned char *aligned)
{
	switch (a) {
	case IOASID_ATTR_IOAS_ID:   op->ioas_id = get_u32(na); break;
	case IOASID_ATTR_IOAS_ID2:  op->ioas_id2 = get_u32(na); break;
	case IOASID_ATTR_DEV_ID:    op->dev_id = get_u32(na); break;
	case IOASID_ATTR_VM_ID:	    op->vm_id = get_u32(na); break;
	case IOASID_ATTR_FILE_ID:   op->file_id = get_u32(na); break;
	case IOASID_ATTR_FLAGS:	    op->flags = get_u32(na); break;
	case IOASID_ATTR_MODE:	    op->mode = get_u32(na); break;
	case IOASID_ATTR_IOVA:	    op->iova = get_u64(na); break;
	case IOASID_ATTR_LENGTH:    op->length = get_u64(na); break;
	case IOASID_ATTR_OFFSET:    op->offset = get_u64(na); break;
	case IOASID_ATTR_FD_INDEX:  op->fd = fds[get_u32(na)]; break;
	case IOASID_ATTR_FD_INDEX2: op->fd2 = fds[get_u32(na)]; break;
	case IOASID_ATTR_OUT_CAP:   op->out_cap = get_u32(na); break;
	case IOASID_ATTR_NAME:
		get_string(na, op->name, sizeof(op->name));
		break;
	case IOASID_ATTR_DATA:
		op->in = nla_data(na);
		op->in_len = (uint32_t)nla_len(na);
		if ((uintptr_t)op->in % 8) {
			memcpy(aligned, op->in, op->in_len);
			op->in = aligned;
		}
		break;
	}
}

void proto_decode_request(const struct proto_msg *m, const int *fds,
			  struct ioasid_op *op, void *outbuf)
{
	ioasid_op_init(op, m->cmd);
	op->out = outbuf;
	for (uint32_t a = 1; a < __IOASID_ATTR_MAX; a++)
		if (m->attr[a])
			decode_request_attr(a, m->attr[a], fds, op,
					    (unsigned char *)outbuf +
					    PROTO_DECODE_BUF / 2);
}

/* ---- replies and events -------------------------------------------------- */

static int put_nonzero_u32(struct nl_msg *msg, int attr, uint32_t v)
{
	return v ? nla_put_u32(msg, attr, v) : 0;
}

static int put_nonzero_u64(struct nl_msg *msg, int attr, uint64_t v)
{
	return v ? nla_put_u64(msg, attr, v) : 0;
}

/* Result bytes worth sending: on success, or partial lists and DMA. */
static uint32_t reply_data_len(const struct ioasid_op *op, int result)
{
	const struct proto_cmd_policy *pol = proto_cmd_policy(op->cmd);

	if (!op->out || !op->out_len)
		return 0;
	if (result < 0 && !(pol && (pol->flags & PROTO_CMD_OUT_PARTIAL)))
		return 0;
	return min_t(uint32_t, min_t(uint32_t, op->out_len, op->out_cap),
		     PROTO_MAX_PAYLOAD);
}

static int put_reply_attrs(struct nl_msg *msg, const struct ioasid_op *op,
			   int result, uint32_t data_len)
{
	const struct proto_cmd_policy *pol = proto_cmd_policy(op->cmd);
	int r;

	r = nla_put_u32(msg, IOASID_ATTR_ERRNO, (uint32_t)-result);
	if (!r && result < 0 && op->errmsg[0])
		r = put_string(msg, IOASID_ATTR_ERRMSG, op->errmsg,
			       sizeof(op->errmsg));
	if (!r)
		r = put_nonzero_u32(msg, IOASID_ATTR_OUT_ID, op->out_id);
	if (!r)
		r = put_nonzero_u64(msg, IOASID_ATTR_OUT_IOVA, op->out_iova);
	if (!r)
		r = put_nonzero_u64(msg, IOASID_ATTR_OUT_BYTES, op->out_bytes);
	if (!r)
		r = put_nonzero_u32(msg, IOASID_ATTR_OUT_LEN, op->out_len);
	if (!r && data_len)
		r = put_bytes(msg, IOASID_ATTR_OUT_DATA, op->out, data_len);
	if (!r && pol && (pol->flags & PROTO_CMD_NAME_OUT) && op->name[0])
		r = put_string(msg, IOASID_ATTR_NAME, op->name,
			       sizeof(op->name));
	/* the only descriptor of a reply is its first */
	if (!r && proto_reply_fd(op, result) >= 0)
		r = nla_put_u32(msg, IOASID_ATTR_OUT_FD_INDEX, 0);
	return r;
}

int proto_reply_fd(const struct ioasid_op *op, int result)
{
	const struct proto_cmd_policy *pol = proto_cmd_policy(op->cmd);

	if (result < 0 || !pol || !(pol->flags & PROTO_CMD_FD_OUT))
		return -1;
	return op->out_fd;
}

int proto_encode_reply(const struct ioasid_op *op, int result, uint32_t seq,
		       struct nl_msg **out)
{
	uint32_t data_len = reply_data_len(op, result);
	struct nl_msg *msg;
	int r;

	if (result > 0 || result <= -4096)
		result = -EIO;
	msg = new_msg(IOASID_CMD_REPLY, seq, 0,
		      512 + NLA_HDRLEN + NLA_ALIGN(data_len));
	if (!msg)
		return -ENOMEM;
	r = put_reply_attrs(msg, op, result, data_len);
	if (r < 0) {
		nlmsg_free(msg);
		return proto_nle_errno(r);
	}
	*out = msg;
	return 0;
}

int proto_reply_prepare(const struct ioasid_op *op, uint32_t seq,
			struct nl_msg **out)
{
	uint32_t room = op->out ? min_t(uint32_t, op->out_cap,
					PROTO_MAX_PAYLOAD) : 0;

	*out = new_msg(IOASID_CMD_REPLY, seq, 0,
		       512 + NLA_HDRLEN + NLA_ALIGN(room));
	return *out ? 0 : -ENOMEM;
}

int proto_reply_finish(struct nl_msg *msg, const struct ioasid_op *op,
		       int result)
{
	int r;

	if (result > 0 || result <= -4096)
		result = -EIO;
	r = put_reply_attrs(msg, op, result, reply_data_len(op, result));
	return r < 0 ? proto_nle_errno(r) : 0;
}

int proto_encode_error(uint32_t seq, int result, const char *reason,
		       struct nl_msg **out)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_UNSPEC);
	snprintf(op.errmsg, sizeof(op.errmsg), "%s", reason ? reason : "");
	return proto_encode_reply(&op, result, seq, out);
}

/* A descriptor exactly where the command returns one: on success. */
static const char *check_reply_fd(const struct proto_msg *m,
				  const struct proto_cmd_policy *pol)
{
	bool has = m->attr[IOASID_ATTR_OUT_FD_INDEX];
	bool ok = !get_u32(m->attr[IOASID_ATTR_ERRNO]);

	if (!(pol && (pol->flags & PROTO_CMD_FD_OUT)))
		return has ? "a descriptor where none belongs" : NULL;
	if (has && !ok)
		return "a descriptor with an error";
	if (!has && ok)
		return "no descriptor";
	return NULL;
}

/* The capacity the daemon saw (proto_encode_request() caps OUT_CAP). */
static uint32_t sent_cap(const struct ioasid_op *op)
{
	return min_t(uint32_t, op->out_cap, PROTO_MAX_PAYLOAD);
}

/* Commands whose success names a new object by OUT_ID (never 0). */
static bool reply_names_object(uint32_t cmd)
{
	const struct proto_cmd_policy *p = proto_cmd_policy(cmd);

	return p && (p->flags & PROTO_CMD_NEW_ID);
}

/*
 * Counts and lengths of a reply against the request: a peer that lies
 * about them must not make the caller read or write beyond its buffers.
 * On success OUT_LEN is the bytes in OUT_DATA, at most the capacity sent;
 * only EMSGSIZE may report more (the size needed), and only commands
 * with partial results send data with an error.
 */
static const char *check_reply_sizes(const struct proto_msg *m,
				     const struct ioasid_op *op,
				     const struct proto_cmd_policy *pol)
{
	const struct nlattr *data = m->attr[IOASID_ATTR_OUT_DATA];
	const struct nlattr *len = m->attr[IOASID_ATTR_OUT_LEN];
	const struct nlattr *bytes = m->attr[IOASID_ATTR_OUT_BYTES];
	uint32_t err = get_u32(m->attr[IOASID_ATTR_ERRNO]);
	uint32_t dlen = data ? (uint32_t)nla_len(data) : 0;
	uint32_t olen = len ? get_u32(len) : dlen;

	if (dlen > sent_cap(op))
		return "more data than asked for";
	if (olen < dlen)
		return "data longer than its length";
	if (err && dlen && !(pol && (pol->flags & PROTO_CMD_OUT_PARTIAL)))
		return "data with an error";
	if (!err && olen != dlen)
		return "a length that is not the data's";
	if (olen > sent_cap(op) && err != EMSGSIZE)
		return "a length beyond the buffer";
	if (op->cmd == IOASID_CMD_DEVICE_DMA && bytes &&
	    get_u64(bytes) > op->length)
		return "more bytes done than asked for";
	if (op->cmd == IOASID_CMD_MAP_BATCH && m->attr[IOASID_ATTR_OUT_ID] &&
	    get_u32(m->attr[IOASID_ATTR_OUT_ID]) >
	    op->in_len / sizeof(struct ioasid_map_entry))
		return "more entries mapped than sent";
	if (op->cmd == IOASID_CMD_NESTED_INVALIDATE &&
	    m->attr[IOASID_ATTR_OUT_ID] &&
	    get_u32(m->attr[IOASID_ATTR_OUT_ID]) >
	    op->in_len / sizeof(struct ioasid_nested_inval))
		return "more entries invalidated than sent";
	if ((op->cmd == IOASID_CMD_SESSION_NAME ||
	     op->cmd == IOASID_CMD_SESSION_RECLAIM) && !err &&
	    dlen != IOASID_SESSION_TOKEN_LEN &&
	    dlen != IOASID_SESSION_TOKEN_LEN +
		    sizeof(struct ioasid_session_resume))
		return "a token of the wrong size";
	return NULL;
}

/* Everything in a reply must fit what the request asked for. */
static const char *check_reply(const struct proto_msg *m,
			       const struct ioasid_op *op)
{
	const struct proto_cmd_policy *pol = proto_cmd_policy(op->cmd);
	const char *bad;

	if (m->cmd != IOASID_CMD_REPLY)
		return "not a reply";
	if ((bad = check_reply_sizes(m, op, pol)))
		return bad;
	if (m->attr[IOASID_ATTR_NAME] &&
	    !(pol && (pol->flags & PROTO_CMD_NAME_OUT)))
		return "a name where none belongs";
	if ((bad = check_reply_fd(m, pol)))
		return bad;
	if (!get_u32(m->attr[IOASID_ATTR_ERRNO]) &&
	    reply_names_object(op->cmd) &&
	    !(m->attr[IOASID_ATTR_OUT_ID] &&
	      get_u32(m->attr[IOASID_ATTR_OUT_ID])))
		return "no id for the new object";
	return NULL;
}

int proto_decode_reply(const struct proto_msg *m, const int *fds,
		       struct ioasid_op *op, int *result)
{
	const char *bad = check_reply(m, op);
	const struct nlattr *a;

	if (bad)
		return op_fail(op, EPROTO, "ioasidd sent a reply that does "
			       "not match %s: %s", proto_cmd_name(op->cmd),
			       bad);
	*result = -(int)get_u32(m->attr[IOASID_ATTR_ERRNO]);
	op->errmsg[0] = '\0';
	if ((a = m->attr[IOASID_ATTR_ERRMSG]))
		get_string(a, op->errmsg, sizeof(op->errmsg));
	if ((a = m->attr[IOASID_ATTR_OUT_ID]))
		op->out_id = get_u32(a);
	if ((a = m->attr[IOASID_ATTR_OUT_IOVA]))
		op->out_iova = get_u64(a);
	if ((a = m->attr[IOASID_ATTR_OUT_BYTES]))
		op->out_bytes = get_u64(a);
	op->out_len = 0;
	if ((a = m->attr[IOASID_ATTR_OUT_DATA])) {
		op->out_len = (uint32_t)nla_len(a);
		if (op->out_len)
			memcpy(op->out, nla_data(a), op->out_len);
	}
	if ((a = m->attr[IOASID_ATTR_OUT_LEN]))
		op->out_len = get_u32(a);
	if ((a = m->attr[IOASID_ATTR_NAME]))
		get_string(a, op->name, sizeof(op->name));
	if ((a = m->attr[IOASID_ATTR_OUT_FD_INDEX]))
		op->out_fd = fds[get_u32(a)];
	return 0;
}

int proto_encode_event(const struct ioasid_event *ev, struct nl_msg **out)
{
	struct nl_msg *msg = new_msg(IOASID_CMD_EVENT, 0, 0,
				     NLA_HDRLEN + NLA_ALIGN(sizeof(*ev)));
	int r;

	if (!msg)
		return -ENOMEM;
	r = nla_put(msg, IOASID_ATTR_OUT_DATA, sizeof(*ev), ev);
	if (r < 0) {
		nlmsg_free(msg);
		return proto_nle_errno(r);
	}
	*out = msg;
	return 0;
}

/* The wire-ABI rule: shorter is zero-filled, a longer tail must be zero. */
int proto_decode_event(const struct proto_msg *m, struct ioasid_event *ev)
{
	const struct nlattr *a = m->attr[IOASID_ATTR_OUT_DATA];
	const unsigned char *p;
	size_t len, n;

	if (m->cmd != IOASID_CMD_EVENT || !a)
		return -EPROTO;
	p = nla_data(a);
	len = (size_t)nla_len(a);
	if (len < 2 * sizeof(uint32_t))
		return -EPROTO;
	n = min_t(size_t, len, sizeof(*ev));
	memset(ev, 0, sizeof(*ev));
	memcpy(ev, p, n);
	for (size_t i = n; i < len; i++)
		if (p[i])
			return -E2BIG;
	ev->size = sizeof(*ev);
	return 0;
}

bool proto_collect_fds(struct msghdr *mh, int *fds, unsigned int *nfds)
{
	bool ok = true;

	*nfds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR(mh, cm)) {
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS) {
			ok = false;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			if (*nfds < IOASID_MAX_FDS) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				ok = false;
			}
		}
	}
	return ok;
}
