/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for faults, events and status: the "faults,
 * events, status" section of libioasid.h.  Events are read from the
 * context's transport; the others pack ops, and the rules live in the
 * core (uapi/ioasid/ops.def names each command's handler).
 */
#include <errno.h>

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
 * Errors: -EINVAL, -EAGAIN (none queued), -ECONNRESET (daemon gone).
 */
IOASID_EXPORT int ioasid_event_read(struct ioasid_ctx *ctx,
				    struct ioasid_event *event)
{
	if (!ctx)
		return api_reject(-EINVAL, __func__, "ctx is NULL");
	if (!event)
		return api_reject(-EINVAL, __func__, "event is NULL");
	return ctx->transport->event_read(ctx->transport_priv, event);
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
