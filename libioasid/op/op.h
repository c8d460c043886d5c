/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * struct ioasid_op: one request to the core, whoever carries it.
 *
 * Every public entry point fills an op and hands it to the context's
 * transport.  The embedded transport gives it straight to core_call(); the
 * remote transport encodes it as an ioasidd message (the fields map 1:1 to
 * IOASID_ATTR_*), and ioasidd decodes it back into an op and calls
 * core_call() for the client's session.  So the core has one entry point
 * and every operation behaves the same embedded and through the daemon.
 */
#ifndef IOASID_OP_H
#define IOASID_OP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ioasid/ioasid.h>
#include <ioasid/proto.h>

#define IOASID_ERRMSG_MAX 256

/*
 * What fstat() and fcntl(F_GETFL) would say of op->fd, from a caller that
 * holds that descriptor itself and looked once (ioasidd's registered ring
 * files): an open file keeps its inode and its access mode for good, and
 * F_SETFL cannot add or drop O_PATH.  The core then skips both calls for a
 * file it holds.  Only code in the process sets it; nothing decoded from a
 * message does.
 */
struct ioasid_fd_ident {
	uint64_t dev;
	uint64_t ino;
	int flags;			/* F_GETFL & (O_ACCMODE | O_PATH) */
};

struct ioasid_op {
	uint32_t cmd;			/* enum ioasid_cmd */

	/* arguments; which ones a command carries: <ioasid/ops.def> */
	uint32_t ioas_id;
	uint32_t ioas_id2;
	uint32_t dev_id;
	uint32_t vm_id;
	uint32_t file_id;
	uint32_t flags;
	uint32_t mode;
	uint64_t iova;
	uint64_t length;
	uint64_t offset;
	int fd;				/* -1 when absent; the caller owns it */
	int fd2;
	const struct ioasid_fd_ident *fd_ident;	/* of fd; NULL: unknown */
	char name[IOASID_NAME_MAX];
	const void *in;			/* variable-size input (ranges, data) */
	uint32_t in_len;

	/* results */
	uint32_t out_id;
	uint64_t out_iova;
	uint64_t out_bytes;
	void *out;			/* caller's buffer for structs/arrays */
	uint32_t out_cap;		/* its size */
	uint32_t out_len;		/* bytes the core wants to return */
	/*
	 * A new descriptor the command returns (DEVICE_GET_FD), -1 when
	 * none: whoever holds the op after the call owns and closes it.
	 */
	int out_fd;

	/* why it failed, for ioasid_last_error() and daemon replies */
	char errmsg[IOASID_ERRMSG_MAX];
};

/* Zero everything but the reason buffer, which only needs to be empty. */
static inline void ioasid_op_init(struct ioasid_op *op, uint32_t cmd)
{
	memset(op, 0, offsetof(struct ioasid_op, errmsg));
	op->errmsg[0] = '\0';
	op->cmd = cmd;
	op->fd = -1;
	op->fd2 = -1;
	op->out_fd = -1;
}

/*
 * A kernel object a state image hands to a successor, which adopts it
 * instead of making it again (backends/backend.h's be_kobj, same layout):
 * kind, the kernel's ids, the descriptors that keep it alive (-1: none).
 */
enum ioasid_kobj_kind {
	IOASID_KOBJ_TENANT = 1,		/* a session's iommufd */
	IOASID_KOBJ_IOAS,
	IOASID_KOBJ_DOMAIN,		/* a HWPT */
	IOASID_KOBJ_DEVICE,
	IOASID_KOBJ_NESTED,		/* a nested HWPT */
	IOASID_KOBJ_VIOMMU,
	IOASID_KOBJ_VDEVICE,
	IOASID_KOBJ_FAULT,		/* a fault queue's FAULT object */
};

struct ioasid_kobj {
	uint32_t kind;			/* enum ioasid_kobj_kind */
	uint32_t id[4];
	int fd[2];
};

/*
 * The one error setter: write a printf-style reason into @msg and return
 * -errnum.  op_fail() writes into the op's errmsg (what the core, the
 * codec and the transports use); the API writes a caller's refusal into
 * the thread's ioasid_last_error() text with op_failv() too.
 */
int op_failv(char *msg, size_t size, int errnum, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
/* Record why an op fails and return -errnum (printf-style reason). */
int op_fail(struct ioasid_op *op, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Results in op->out.  op_out_array(): @n elements of @elem bytes were
 * written (as many as fit): sets out_len, -EMSGSIZE when they did not all
 * fit.  op_out_struct(): one result structure; an older, smaller caller
 * gets the part it knows.
 */
int op_out_array(struct ioasid_op *op, uint32_t n, uint32_t elem);
int op_out_struct(struct ioasid_op *op, const void *src, uint32_t len);

#endif
