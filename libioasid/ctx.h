/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The context object (private layout). */
#ifndef IOASID_CTX_H
#define IOASID_CTX_H

#include "libioasid.h"
#include "transport/transport.h"
#include "util/log.h"

struct ioasid_ctx {
	int refcount;			/* atomic */
	struct log_sink log;		/* handed to the transport and core */
	const struct transport_ops *transport;
	void *transport_priv;
};

/* Run an op through the context's transport; keeps the error message. */
int ctx_call(struct ioasid_ctx *ctx, struct ioasid_op *op);
/* Set the thread's last-error text (ioasid_last_error()). */
void ctx_set_error(const char *msg);
/* The same with a printf-style reason (op_failv()); returns @err. */
int api_fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * An entry point refuses its arguments before anything runs: record why
 * (so ioasid_last_error() is never stale) and return @err.
 */
int api_reject(int err, const char *fn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Shared by the api_*.c entry points: run @op, with its results in ... */
int api_call_fn(const char *fn, struct ioasid_ctx *ctx, struct ioasid_op *op);
#define api_call(...)		api_call_fn(__func__, __VA_ARGS__)
/*
 * ... one structure of @size bytes at @out (a shorter one from an older
 * daemon is zero-filled: the ABI's size rule),
 */
int api_call_struct_fn(const char *fn, struct ioasid_ctx *ctx,
		       struct ioasid_op *op, void *out, uint32_t size);
#define api_call_struct(...)	api_call_struct_fn(__func__, __VA_ARGS__)
/* ... or an array: *@nr is the capacity in, the count out (EMSGSIZE too). */
int api_call_array_fn(const char *fn, struct ioasid_ctx *ctx,
		      struct ioasid_op *op, void *array, uint32_t elem_size,
		      uint32_t *nr);
#define api_call_array(...)	api_call_array_fn(__func__, __VA_ARGS__)
/*
 * ... or where it mapped: *@iova goes in as op->iova and op->out_iova
 * comes back on success (@name: the argument's, for the refusal).
 */
int api_call_iova_fn(const char *fn, struct ioasid_ctx *ctx,
		     struct ioasid_op *op, uint64_t *iova, const char *name);
#define api_call_iova(...)	api_call_iova_fn(__func__, __VA_ARGS__)
/* Copy a device name into @op: -EINVAL when NULL, empty or too long. */
int api_set_name(struct ioasid_op *op, const char *name);
/* Why api_set_name() refused @name. */
const char *api_name_problem(const char *name);

/*
 * api_session.c: open the session the URI parameters after '?' name
 * ("session=NAME&token-file=FILE"); 0 or -errno with the reason set.
 */
int ctx_open_session(struct ioasid_ctx *ctx, const char *query);

/*
 * The core behind an embedded context, NULL for a remote one.  For tests
 * that look at core state; nothing in the library or ioasidd uses it.
 */
struct core *embedded_core(struct ioasid_ctx *ctx);
/*
 * For tests: send @op to ioasidd as it is, without the KVM side the
 * remote transport does in this process (-EINVAL when embedded).
 */
int remote_send_raw(struct ioasid_ctx *ctx, struct ioasid_op *op);

#endif
