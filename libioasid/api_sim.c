/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points of the simulated IOMMU only: the "simulator only"
 * section of libioasid.h, exported in the LIBIOASID_SIM_1 version node
 * (VMMs need not link against them).  They only pack arguments; the
 * rules live in the core (uapi/ioasid/ops.def names each command's
 * handler).
 */
#include <errno.h>

#include "ctx.h"
#include "util/macros.h"

static int dma_op(struct ioasid_ctx *ctx, uint32_t cmd, uint32_t dev_id,
		  uint32_t pasid, uint64_t iova, void *buf, uint64_t length,
		  uint32_t flags, uint64_t *done, const char *func)
{
	struct ioasid_op op;
	int r;

	if (!buf)
		return api_reject(-EINVAL, func, "buf is NULL");
	if (length > UINT32_MAX)
		return api_reject(-EINVAL, func, "length %llu exceeds one "
				  "transfer (%u bytes)",
				  (unsigned long long)length, UINT32_MAX);
	ioasid_op_init(&op, cmd);
	op.dev_id = dev_id;
	op.mode = pasid;
	op.iova = iova;
	op.length = length;
	op.flags = flags;
	if (flags & IOASID_DMA_WRITE) {
		op.in = buf;
		op.in_len = (uint32_t)length;
	} else {
		op.out = buf;
		op.out_cap = (uint32_t)length;
	}
	r = api_call(ctx, &op);
	if (done)
		*done = op.out_bytes;
	return r;
}

/*
 * ioasid_device_dma - make a simulated (or iommufd:mock) device do DMA
 * @flags: IOASID_DMA_WRITE (device writes @buf to memory; else it reads
 *         memory into @buf), IOASID_DMA_NO_SNOOP
 * @done: out: bytes moved before a fault (may be NULL)
 *
 * Errors: -ENOENT, -EINVAL (NULL buffer), -EOPNOTSUPP (unknown flags, or
 * a backend whose devices are real), -EFAULT (translation fault, bus
 * error, group not viable: a fault record is queued), -EACCES
 * (permission fault: a fault record is queued).
 */
IOASID_EXPORT int ioasid_device_dma(struct ioasid_ctx *ctx, uint32_t dev_id,
				    uint64_t iova, void *buf, uint64_t length,
				    uint32_t flags, uint64_t *done)
{
	return dma_op(ctx, IOASID_CMD_DEVICE_DMA, dev_id, 0, iova, buf, length,
		      flags, done, __func__);
}

/*
 * ioasid_device_dma_pasid - ioasid_device_dma() tagged with @pasid
 *
 * Translated by the domain the device's @pasid is attached to
 * (ioasid_device_pasid_attach); a PASID attached nowhere is blocked.
 * Errors: those of ioasid_device_dma(), and -EINVAL (@pasid 0),
 * -EOPNOTSUPP (a backend without PASID-tagged DMA).
 */
IOASID_EXPORT int ioasid_device_dma_pasid(struct ioasid_ctx *ctx,
					  uint32_t dev_id, uint32_t pasid,
					  uint64_t iova, void *buf,
					  uint64_t length, uint32_t flags,
					  uint64_t *done)
{
	return dma_op(ctx, IOASID_CMD_DEVICE_DMA_PASID, dev_id, pasid, iova,
		      buf, length, flags, done, __func__);
}

/*
 * ioasid_sim_hotplug - unplug (@present 0) or plug back (1) a simulated
 * device, as a real hot-unplug would: a bound device is detached and
 * unbound, and IOASID_EVENT_DEVICE_REMOVED / _ADDED events go to its owner
 * and to every client subscribed to device events.
 *
 * Errors: -EINVAL (NULL name), -ENOENT (no such device), -EOPNOTSUPP
 * (not the simulated backend, or @present not 0/1), -EPERM (another
 * client's device, without the right to observe).
 */
IOASID_EXPORT int ioasid_sim_hotplug(struct ioasid_ctx *ctx, const char *name,
				     int present)
{
	struct ioasid_op op;

	if (present != 0 && present != 1)
		return api_reject(-EOPNOTSUPP, __func__, "present is %d, not "
				  "0 or 1", present);
	ioasid_op_init(&op, IOASID_CMD_SIM_HOTPLUG);
	if (api_set_name(&op, name) < 0)
		return api_reject(-EINVAL, __func__, "%s",
				  api_name_problem(name));
	op.flags = (uint32_t)present;
	return api_call(ctx, &op);
}
