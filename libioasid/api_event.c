/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for faults, events and status: the "faults,
 * events, status" section of libioasid.h.  Events are read from the
 * context's transport; the others pack ops, and the rules live in the
 * core (uapi/ioasid/ops.def names each command's handler).
 */
#include <errno.h>
#include <unistd.h>

#include "ctx.h"
#include "util/macros.h"

/*
 * ioasid_fault_read - take queued DMA fault records of this client's
 * devices, oldest first; *@nr in: room, out: records taken (0: none)
 *
 * Errors: -EINVAL.
 */
IOASID_EXPORT int ioasid_fault_read(struct ioasid_ctx *ctx,
				    struct ioasid_fault *faults, uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FAULT_READ);
	return api_call_array(ctx, &op, faults, sizeof(*faults), nr);
}

/*
 * ioasid_fault_queue_alloc - a queue for the page requests of the devices
 * attached to @target_id (an IOAS or a nested table)
 * @depth: records and outstanding requests at most (0: the default)
 * @timeout_ms: an unanswered request then fails (0: the default)
 * @fd: out: an eventfd the caller owns, readable while records wait
 *
 * Errors: -EINVAL (NULL out-parameter, depth or timeout too large),
 * -ENOENT, -EEXIST (the target has one), -EOPNOTSUPP (flags, backend),
 * -EMFILE, -ENOMEM.
 */
IOASID_EXPORT int ioasid_fault_queue_alloc(struct ioasid_ctx *ctx,
					   uint32_t target_id, uint32_t depth,
					   uint32_t timeout_ms, uint32_t flags,
					   uint32_t *fault_id, int *fd)
{
	struct ioasid_op op;
	int r;

	if (!fault_id || !fd)
		return api_reject(-EINVAL, __func__, "%s is NULL",
				  fault_id ? "fd" : "fault_id");
	ioasid_op_init(&op, IOASID_CMD_FAULT_QUEUE_ALLOC);
	op.ioas_id = target_id;
	op.mode = depth;
	op.length = timeout_ms;
	op.flags = flags;
	r = api_call(ctx, &op);
	if (r == 0 && op.out_fd < 0)
		r = api_reject(-EPROTO, __func__, "the fault queue came "
			       "without its descriptor");
	if (r == 0) {
		*fault_id = op.out_id;
		*fd = op.out_fd;
	} else {
		close_fd(op.out_fd);
	}
	return r;
}

/*
 * ioasid_fault_queue_destroy - free a fault queue
 *
 * Errors: -ENOENT, -EBUSY (devices are attached to its target).
 */
IOASID_EXPORT int ioasid_fault_queue_destroy(struct ioasid_ctx *ctx,
					     uint32_t fault_id)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FAULT_QUEUE_DESTROY);
	op.ioas_id2 = fault_id;
	return api_call(ctx, &op);
}

/*
 * ioasid_fault_queue_read - take waiting page request records, oldest
 * first (an overflow record first when requests were lost)
 *
 * Errors: -EINVAL (NULL, or no room for one record), -ENOENT.
 */
IOASID_EXPORT int ioasid_fault_queue_read(struct ioasid_ctx *ctx,
					  uint32_t fault_id,
					  struct ioasid_page_request *requests,
					  uint32_t *nr)
{
	struct ioasid_op op;

	if (nr && !*nr)
		return api_reject(-EINVAL, __func__, "no room for one record");
	ioasid_op_init(&op, IOASID_CMD_FAULT_QUEUE_READ);
	op.ioas_id2 = fault_id;
	return api_call_array(ctx, &op, requests, sizeof(*requests), nr);
}

/*
 * ioasid_fault_respond - answer the page request @cookie of @fault_id
 *
 * Errors: -EINVAL (unknown code), -ENOENT (no such queue, or no such
 * outstanding request), -EALREADY (answered already), -ETIMEDOUT (it
 * timed out unanswered).  Nothing changes on error.
 */
IOASID_EXPORT int ioasid_fault_respond(struct ioasid_ctx *ctx,
				       uint32_t fault_id, uint32_t cookie,
				       uint32_t code)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FAULT_RESPOND);
	op.ioas_id2 = fault_id;
	op.mode = cookie;
	op.flags = code;
	return api_call(ctx, &op);
}

/*
 * ioasid_fault_queue_info - a fault queue's depth, counters and state
 *
 * Errors: -EINVAL, -ENOENT.
 */
IOASID_EXPORT int ioasid_fault_queue_info(struct ioasid_ctx *ctx,
					  uint32_t fault_id,
					  struct ioasid_fault_queue_info *info)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FAULT_QUEUE_INFO);
	op.ioas_id2 = fault_id;
	return api_call_struct(ctx, &op, info, sizeof(*info));
}

/*
 * ioasid_fault_queue_list - this client's fault queues (an observer's:
 * everyone's)
 *
 * Errors: -EINVAL, -EMSGSIZE (*@nr set to how many there are).
 */
IOASID_EXPORT int ioasid_fault_queue_list(struct ioasid_ctx *ctx,
					  struct ioasid_fault_queue_info *queues,
					  uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FAULT_QUEUE_LIST);
	return api_call_array(ctx, &op, queues, sizeof(*queues), nr);
}

/*
 * ioasid_event_subscribe - receive events of these groups
 *
 * Errors: -EINVAL (NULL ctx), -EOPNOTSUPP (unknown groups).
 */
IOASID_EXPORT int ioasid_event_subscribe(struct ioasid_ctx *ctx,
					 uint32_t groups)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_SUBSCRIBE);
	op.flags = groups;
	return api_call(ctx, &op);
}

/*
 * ioasid_event_get_fd - a descriptor for poll(): readable while events
 * are queued.  Owned by the context.  Returns it, or -EINVAL.
 */
IOASID_EXPORT int ioasid_event_get_fd(struct ioasid_ctx *ctx)
{
	if (!ctx)
		return api_reject(-EINVAL, __func__, "ctx is NULL");
	return ctx->transport->event_fd(ctx->transport_priv);
}

/*
 * ioasid_event_read - take the oldest queued event
 *
 * Through ioasidd, a named session's context whose connection went
 * regains it here as any call does (libioasid(3), RESUMING), blocking
 * for up to $IOASID_RECONNECT seconds, then reads what came.
 *
 * Errors: -EINVAL, -EAGAIN (none queued), -ECONNRESET (daemon gone, not
 * resumed), -EIO (it came back without acknowledged changes).
 */
IOASID_EXPORT int ioasid_event_read(struct ioasid_ctx *ctx,
				    struct ioasid_event *event)
{
	int r;

	if (!ctx)
		return api_reject(-EINVAL, __func__, "ctx is NULL");
	if (!event)
		return api_reject(-EINVAL, __func__, "event is NULL");
	r = ctx->transport->event_read(ctx->transport_priv, event);
	if (r == -ECONNRESET)
		return api_fail(r, "the connection to ioasidd is lost and was "
				"not resumed (the context's log says why)");
	if (r == -EIO)
		return api_fail(r, "ioasidd came back without changes this "
				"context had acknowledged: state was lost");
	return r;
}

/*
 * ioasid_get_status - backend, topology and object counts
 *
 * Errors: -EINVAL.
 */
IOASID_EXPORT int ioasid_get_status(struct ioasid_ctx *ctx,
				    struct ioasid_status *status)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_STATUS);
	return api_call_struct(ctx, &op, status, sizeof(*status));
}

/*
 * ioasid_set_observer - see every client's objects, read-only
 * @on: 1 to see all address spaces, mappings, domains, devices and VMs of
 *      every client of ioasidd (lists, info, lookups); 0 to see only ours
 *
 * Observing changes nothing anyone can do: mutations still need
 * ownership.  Embedded contexts have one client, so it changes nothing.
 * Errors: -EINVAL, -EOPNOTSUPP (on not 0 or 1), -EPERM (ioasidd's policy
 * does not let this user observe).
 */
IOASID_EXPORT int ioasid_set_observer(struct ioasid_ctx *ctx, int on)
{
	struct ioasid_op op;

	if (on != 0 && on != 1)
		return api_reject(-EOPNOTSUPP, __func__, "on is %d, not 0 "
				  "or 1", on);
	ioasid_op_init(&op, IOASID_CMD_OBSERVE);
	op.flags = (uint32_t)on;
	return api_call(ctx, &op);
}
