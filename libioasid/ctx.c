/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Context: reference counting, logging, last-error text and the choice of
 * transport from the URI.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctx.h"
#include "util/log.h"
#include "util/macros.h"

static __thread char last_error[IOASID_ERRMSG_MAX];

void ctx_set_error(const char *msg)
{
	snprintf(last_error, sizeof(last_error), "%s", msg);
}

int api_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_failv(last_error, sizeof(last_error), -err, fmt, ap);
	va_end(ap);
	return err;
}

int api_reject(int err, const char *fn, const char *fmt, ...)
{
	int n = snprintf(last_error, sizeof(last_error), "%s: ", fn);
	va_list ap;

	if (n < 0 || (size_t)n >= sizeof(last_error))
		return err;
	va_start(ap, fmt);
	vsnprintf(last_error + n, sizeof(last_error) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

static void log_stderr(void *data, int priority, const char *file, int line,
		       const char *fn, const char *format, va_list args)
{
	fprintf(stderr, "libioasid: %s: ", fn);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
}

static void log_null(void *data, int priority, const char *file, int line,
		     const char *fn, const char *format, va_list args)
{
}

/* $IOASID_LOG: a syslog priority as a number or a name ("debug"). */
static int log_priority_from_env(const char *s)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "err", "warning", "notice", "info",
		"debug",
	};
	char *end;
	long prio = strtol(s, &end, 10);

	if (end != s && *end == '\0' && prio >= 0 && prio <= LOG_DEBUG)
		return (int)prio;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(s, names[i]))
			return (int)i;
	return LOG_ERR;
}

static const struct transport_ops *transport_for(const char **uri)
{
	if (!strncmp(*uri, "unix:", 5)) {
		*uri += 5;
		return &transport_remote;
	}
	return &transport_embedded;
}

/*
 * ioasid_new - create a context
 * @uri: where the address spaces live (see libioasid.h); NULL: $IOASID_URI
 *       or "sim"
 * @ctx: the new context, with one reference
 *
 * Returns 0, -EINVAL for a NULL @ctx or an unknown URI, -ENOMEM, -ENOENT
 * for a topology file or socket that does not exist, -ECONNREFUSED when no
 * daemon listens, -ENODEV when the kernel lacks the backend, or the error
 * of the backend's set-up.
 */
IOASID_EXPORT int ioasid_new(const char *uri, struct ioasid_ctx **ctx)
{
	const char *env = getenv("IOASID_LOG");
	char errmsg[IOASID_ERRMSG_MAX] = "", path[256];
	const char *query;
	struct ioasid_ctx *c;
	int r;

	if (!ctx)
		return api_reject(-EINVAL, __func__, "ctx is NULL");
	if (!uri)
		uri = getenv("IOASID_URI");
	if (!uri || !*uri)
		uri = "sim";

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->refcount = 1;
	c->log.fn = env ? log_stderr : log_null;
	c->log.priority = env ? log_priority_from_env(env) : LOG_ERR;
	c->transport = transport_for(&uri);
	/* unix:PATH?session=NAME&token-file=FILE */
	query = c->transport == &transport_remote ? strchr(uri, '?') : NULL;
	if (query) {
		if ((size_t)(query - uri) >= sizeof(path)) {
			free(c);
			return api_reject(-ENAMETOOLONG, __func__, "socket path "
					  "too long");
		}
		memcpy(path, uri, (size_t)(query - uri));
		path[query - uri] = '\0';
		uri = path;
		query++;
	}

	r = c->transport->open(&c->log, uri, &c->transport_priv, errmsg,
			       sizeof(errmsg));
	if (r < 0) {
		ctx_set_error(errmsg[0] ? errmsg : strerror(-r));
		free(c);
		return r;
	}
	info(&c->log, "context %p on %s (%s)", (void *)c, c->transport->name,
	     c->transport->backend_name(c->transport_priv));
	if (query) {
		r = ctx_open_session(c, query);
		if (r < 0) {
			char why[IOASID_ERRMSG_MAX];

			snprintf(why, sizeof(why), "%s", last_error);
			ioasid_unref(c);
			ctx_set_error(why);
			return r;
		}
	}
	*ctx = c;
	return 0;
}

/*
 * ioasid_ctx_export - the context's state as an image for a successor
 * @memfd: out: a sealed memfd holding the image, without FD_CLOEXEC
 *
 * For a process that execs its next version (a VMM's live update): every
 * IOAS with its flags, snoop mode and allowed ranges, every mapping (its
 * file kept open without FD_CLOEXEC, its number in the image), the shared
 * pages of each restricted IOAS, the bound devices and their attachments,
 * the VMs and the event subscription.  Nothing in @ctx changes: it keeps
 * working (and DMA keeps landing) until it is released.  The new image
 * passes the number to ioasid_ctx_import(); a hand-over given up closes
 * the kept files with ioasid_ctx_export_abandon().
 *
 * On iommufd the kernel objects are handed over, not described: the
 * session's /dev/iommu, device cdevs and mapped files stay open across
 * exec and the import adopts them (ioasid_ctx_export(3)).  On VFIO type1
 * the containers and groups likewise, and the export also makes the
 * kernel forget this process's addresses of the mappings: @ctx then
 * refuses changes (-EBUSY) until the exec or the abandon.
 *
 * Returns 0; -EINVAL for a NULL argument; -EOPNOTSUPP for a context on
 * ioasidd (its session is handed over by name and reclaim token,
 * ioasid_session(3)), for a VFIO type1 container without
 * VFIO_UPDATE_VADDR, for nested stage-1 tables and for a mapping by
 * address (ioasid_map_user(),
 * whose memory does not survive exec); -EBUSY for a type1 hand-over
 * already under way; -ENOMEM; -EMFILE when the files cannot be kept open.
 */
IOASID_EXPORT int ioasid_ctx_export(struct ioasid_ctx *ctx, int *memfd)
{
	char errmsg[IOASID_ERRMSG_MAX] = "";
	int r;

	if (!ctx || !memfd)
		return api_reject(-EINVAL, __func__, "%s is NULL",
				  ctx ? "memfd" : "ctx");
	if (!ctx->transport->export_image)
		return api_reject(-EOPNOTSUPP, __func__, "a context on ioasidd "
				  "is handed over by its session name and "
				  "reclaim token (ioasid_session_name)");
	r = ctx->transport->export_image(ctx->transport_priv, memfd, errmsg,
					 sizeof(errmsg));
	if (r < 0)
		return api_reject(r, __func__, "%s",
				  errmsg[0] ? errmsg : strerror(-r));
	return 0;
}

/*
 * ioasid_ctx_import - a context rebuilt from ioasid_ctx_export()'s image
 * @memfd: the image (the caller keeps and closes it)
 * @ctx: the new context, with one reference
 *
 * Creates the same backend, then replays the image: every object gets
 * its old id, every mapping its IOVA, file, offset and access.  On
 * success the files the image kept open are closed (the context holds
 * its own references); on failure nothing is left built and they stay
 * open (ioasid_ctx_export_abandon() closes them).
 *
 * Returns 0; -EINVAL for a NULL @ctx, a @memfd that is not an image, or
 * an image of ioasidd (several sessions); -EPROTONOSUPPORT for an image
 * of a newer format version; -EBADMSG for a truncated or corrupt image
 * (a CRC, a record, a descriptor that was not inherited or is another
 * file); -EFBIG beyond 1 GiB; -EPROTO when an object cannot get its old
 * id back; -ENOMEM; or the error of the call that rebuilds a record (a
 * device the backend no longer has: -ENOENT).  ioasid_last_error() names
 * the record.
 */
IOASID_EXPORT int ioasid_ctx_import(int memfd, struct ioasid_ctx **ctx)
{
	const char *env = getenv("IOASID_LOG");
	char errmsg[IOASID_ERRMSG_MAX] = "";
	struct ioasid_ctx *c;
	int r;

	if (!ctx)
		return api_reject(-EINVAL, __func__, "ctx is NULL");
	c = calloc(1, sizeof(*c));
	if (!c)
		return api_reject(-ENOMEM, __func__, "out of memory");
	c->refcount = 1;
	c->log.fn = env ? log_stderr : log_null;
	c->log.priority = env ? log_priority_from_env(env) : LOG_ERR;
	c->transport = &transport_embedded;
	r = c->transport->import_image(&c->log, memfd, &c->transport_priv,
				       errmsg, sizeof(errmsg));
	if (r < 0) {
		free(c);
		return api_reject(r, __func__, "%s",
				  errmsg[0] ? errmsg : strerror(-r));
	}
	info(&c->log, "context %p imported (%s)", (void *)c,
	     c->transport->backend_name(c->transport_priv));
	*ctx = c;
	return 0;
}

/*
 * ioasid_ctx_export_abandon - close the files an exported image keeps
 * open, when no successor will import it (the caller closes @memfd).
 *
 * On VFIO type1 the context of this process that made the image first
 * gets its addresses back (ioasid_ctx_export(3)).
 *
 * Returns 0, or the errors of ioasid_ctx_import() about the image itself
 * (-EINVAL, -EPROTONOSUPPORT, -EBADMSG, -EFBIG, -ENOMEM), or -errno when
 * the kernel refuses a type1 mapping its address back; then nothing is
 * closed.
 */
IOASID_EXPORT int ioasid_ctx_export_abandon(int memfd)
{
	char errmsg[IOASID_ERRMSG_MAX] = "";
	int r = embedded_image_abandon(memfd, errmsg, sizeof(errmsg));

	if (r < 0)
		return api_reject(r, __func__, "%s", errmsg);
	return 0;
}

/* ioasid_ref - take a reference; returns @ctx (NULL stays NULL). */
IOASID_EXPORT struct ioasid_ctx *ioasid_ref(struct ioasid_ctx *ctx)
{
	if (ctx)
		__atomic_add_fetch(&ctx->refcount, 1, __ATOMIC_RELAXED);
	return ctx;
}

/*
 * ioasid_unref - drop a reference
 *
 * Returns NULL when this freed the context (tearing down every object the
 * context created), @ctx otherwise.
 */
IOASID_EXPORT struct ioasid_ctx *ioasid_unref(struct ioasid_ctx *ctx)
{
	if (!ctx)
		return NULL;
	if (__atomic_sub_fetch(&ctx->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return ctx;
	info(&ctx->log, "context %p released", (void *)ctx);
	ctx->transport->close(ctx->transport_priv);
	free(ctx);
	return NULL;
}

/* ioasid_set_log_fn - send log messages to @log_fn (NULL: discard them). */
IOASID_EXPORT void ioasid_set_log_fn(struct ioasid_ctx *ctx,
				     ioasid_log_fn log_fn, void *data)
{
	if (!ctx)
		return;
	ctx->log.fn = log_fn ? log_fn : log_null;
	ctx->log.data = data;
}

/* ioasid_get_log_priority - the highest syslog priority logged. */
IOASID_EXPORT int ioasid_get_log_priority(const struct ioasid_ctx *ctx)
{
	return ctx ? ctx->log.priority : -EINVAL;
}

/* ioasid_set_log_priority - log messages up to @priority (LOG_DEBUG: all). */
IOASID_EXPORT void ioasid_set_log_priority(struct ioasid_ctx *ctx,
					   int priority)
{
	if (ctx)
		ctx->log.priority = priority;
}

/* ioasid_get_backend - "sim", "iommufd", "vfio-type1"; NULL for NULL. */
IOASID_EXPORT const char *ioasid_get_backend(struct ioasid_ctx *ctx)
{
	return ctx ? ctx->transport->backend_name(ctx->transport_priv) : NULL;
}

/* ioasid_is_remote - 1 when @ctx talks to ioasidd, 0 when embedded. */
IOASID_EXPORT int ioasid_is_remote(const struct ioasid_ctx *ctx)
{
	return ctx && ctx->transport == &transport_remote;
}

/*
 * ioasid_last_error - why the last failed call on this thread failed
 *
 * A sentence for users ("device 0000:00:03.0 cannot join IOAS 2: ..."),
 * valid until the next failing call on this thread.  Never NULL.
 */
IOASID_EXPORT const char *ioasid_last_error(struct ioasid_ctx *ctx)
{
	return last_error;
}

struct core *embedded_core(struct ioasid_ctx *ctx)
{
	return ctx->transport == &transport_embedded ?
	       embedded_transport_core(ctx->transport_priv) : NULL;
}

int remote_send_raw(struct ioasid_ctx *ctx, struct ioasid_op *op)
{
	if (ctx->transport != &transport_remote)
		return op_fail(op, EINVAL, "not a context on ioasidd");
	return remote_transport_send(ctx->transport_priv, op);
}

int ctx_call(struct ioasid_ctx *ctx, struct ioasid_op *op)
{
	int r = ctx->transport->call(ctx->transport_priv, op);

	if (r < 0) {
		if (!op->errmsg[0])
			snprintf(op->errmsg, sizeof(op->errmsg), "%s",
				 strerror(-r));
		ctx_set_error(op->errmsg);
		dbg(&ctx->log, "cmd %u failed: %s", op->cmd, op->errmsg);
	}
	return r;
}

int api_call_fn(const char *fn, struct ioasid_ctx *ctx, struct ioasid_op *op)
{
	if (!ctx)
		return api_reject(-EINVAL, fn, "ctx is NULL");
	return ctx_call(ctx, op);
}

int api_call_iova_fn(const char *fn, struct ioasid_ctx *ctx,
		     struct ioasid_op *op, uint64_t *iova, const char *name)
{
	int r;

	if (!iova)
		return api_reject(-EINVAL, fn, "%s is NULL", name);
	op->iova = *iova;
	r = api_call_fn(fn, ctx, op);
	if (r == 0)
		*iova = op->out_iova;
	return r;
}

int api_call_struct_fn(const char *fn, struct ioasid_ctx *ctx,
		       struct ioasid_op *op, void *out, uint32_t size)
{
	int r;

	if (!out)
		return api_reject(-EINVAL, fn, "the result pointer is NULL");
	op->out = out;
	op->out_cap = size;
	r = api_call_fn(fn, ctx, op);
	if (r == 0 && op->out_len < size)
		memset((char *)out + op->out_len, 0, size - op->out_len);
	return r;
}

int api_call_array_fn(const char *fn, struct ioasid_ctx *ctx,
		      struct ioasid_op *op, void *array, uint32_t elem_size,
		      uint32_t *nr)
{
	int r;

	if (!nr)
		return api_reject(-EINVAL, fn, "the count pointer is NULL");
	if (!array && *nr)
		return api_reject(-EINVAL, fn, "the array is NULL but its "
				  "capacity is %u", *nr);
	if (*nr > UINT32_MAX / elem_size)
		return api_reject(-EOVERFLOW, fn, "a capacity of %u entries "
				  "overflows", *nr);
	op->out = array;
	op->out_cap = *nr * elem_size;
	r = api_call_fn(fn, ctx, op);
	/* the transport bounded a success's out_len by out_cap */
	if (r == 0 && op->out_len % elem_size)
		return api_reject(-EPROTO, fn, "a result of %u bytes is not a "
				  "whole number of %u-byte entries",
				  op->out_len, elem_size);
	if (r == 0 || r == -EMSGSIZE)
		*nr = op->out_len / elem_size;
	return r;
}

const char *api_name_problem(const char *name)
{
	if (!name)
		return "name is NULL";
	if (!*name)
		return "name is empty";
	_Static_assert(IOASID_NAME_MAX == 32, "the sentence below");
	return "name is longer than 31 bytes";
}

int api_set_name(struct ioasid_op *op, const char *name)
{
	if (!name || !*name || strlen(name) >= sizeof(op->name))
		return -EINVAL;
	snprintf(op->name, sizeof(op->name), "%s", name);
	return 0;
}
