/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for vIOMMUs: the "vIOMMUs" section of libioasid.h.
 * They only pack arguments; the rules live in the core (core/viommu.c,
 * and core/nested.c for the nested tables on a vIOMMU).
 */
#include <errno.h>
#include <stdlib.h>

#include "ctx.h"
#include "util/macros.h"

/*
 * ioasid_viommu_alloc - a vIOMMU over a nest-parent IOAS
 * @ioas_id: the parent, allocated with IOASID_IOAS_NEST_PARENT: its
 *           mappings are the stage 2 of every nested table on the vIOMMU
 * @dev_id: a bound device behind the IOMMU the vIOMMU is a slice of
 * @type: enum ioasid_viommu_type
 * @flags: 0
 * @viommu_id: out: the new vIOMMU
 *
 * Errors: -EINVAL (NULL @viommu_id; the parent is not a nesting parent;
 * the parent's domain does not fit the device's IOMMU), -ENOENT (IOAS or
 * device), -EOPNOTSUPP (unknown @type or flags; the backend, the
 * device's IOMMU or, on iommufd, the kernel has no vIOMMU of @type),
 * -ENOSPC (the session's max-ioas quota, which counts IOASes, nested
 * tables and vIOMMUs together), -ENOMEM.
 */
IOASID_EXPORT int ioasid_viommu_alloc(struct ioasid_ctx *ctx, uint32_t ioas_id,
				      uint32_t dev_id, uint32_t type,
				      uint32_t flags, uint32_t *viommu_id)
{
	struct ioasid_op op;
	int r;

	if (!viommu_id)
		return api_reject(-EINVAL, __func__, "viommu_id is NULL");
	ioasid_op_init(&op, IOASID_CMD_VIOMMU_ALLOC);
	op.ioas_id = ioas_id;
	op.dev_id = dev_id;
	op.mode = type;
	op.flags = flags;
	r = api_call(ctx, &op);
	if (r == 0)
		*viommu_id = op.out_id;
	return r;
}

static int destroy(struct ioasid_ctx *ctx, uint32_t id, uint32_t kind)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_VIOMMU_DESTROY);
	op.ioas_id2 = id;
	op.mode = kind;
	return api_call(ctx, &op);
}

/*
 * ioasid_viommu_destroy - free a vIOMMU
 *
 * Errors: -ENOENT (not this context's vIOMMU), -EBUSY (it still has
 * vDEVICEs or nested tables).
 */
IOASID_EXPORT int ioasid_viommu_destroy(struct ioasid_ctx *ctx,
					uint32_t viommu_id)
{
	return destroy(ctx, viommu_id, IOASID_VIOMMU_OBJ_VIOMMU);
}

/*
 * ioasid_vdevice_alloc - give a bound device a virtual ID on a vIOMMU
 * @virt_id: the ID the guest knows the device by on its vIOMMU (a
 *           virtual BDF, stream ID, device ID)
 * @vdevice_id: out: the new vDEVICE
 *
 * A device has at most one vDEVICE; it goes with the device's unbind.
 * Invalidations through the vIOMMU name devices by @virt_id, and a
 * device attaches to a nested table on the vIOMMU only with its vDEVICE
 * there.  Errors: -EINVAL (NULL @vdevice_id; the device is behind
 * another IOMMU; a selftest vIOMMU's ID above 2^32 - 1), -ENOENT (vIOMMU
 * or device), -EEXIST (the device has a vDEVICE; @virt_id is taken on
 * the vIOMMU), -ENOMEM.
 */
IOASID_EXPORT int ioasid_vdevice_alloc(struct ioasid_ctx *ctx,
				       uint32_t viommu_id, uint32_t dev_id,
				       uint64_t virt_id, uint32_t *vdevice_id)
{
	struct ioasid_op op;
	int r;

	if (!vdevice_id)
		return api_reject(-EINVAL, __func__, "vdevice_id is NULL");
	ioasid_op_init(&op, IOASID_CMD_VDEVICE_ALLOC);
	op.ioas_id2 = viommu_id;
	op.dev_id = dev_id;
	op.offset = virt_id;
	r = api_call(ctx, &op);
	if (r == 0)
		*vdevice_id = op.out_id;
	return r;
}

/*
 * ioasid_vdevice_destroy - take a device's virtual ID back
 *
 * Errors: -ENOENT (not this context's vDEVICE).
 */
IOASID_EXPORT int ioasid_vdevice_destroy(struct ioasid_ctx *ctx,
					 uint32_t vdevice_id)
{
	return destroy(ctx, vdevice_id, IOASID_VIOMMU_OBJ_VDEVICE);
}

/*
 * ioasid_viommu_nested_alloc - a nested table on a vIOMMU
 *
 * As ioasid_nested_alloc() over the vIOMMU's parent IOAS, the table tied
 * to the vIOMMU (which cannot go while it exists).  Errors: as
 * ioasid_nested_alloc(), with -ENOENT for the vIOMMU, -EINVAL when the
 * device is behind another IOMMU than the vIOMMU's.
 */
IOASID_EXPORT int ioasid_viommu_nested_alloc(struct ioasid_ctx *ctx,
					     uint32_t viommu_id,
					     uint32_t dev_id, uint32_t type,
					     const void *data, uint32_t len,
					     uint32_t flags,
					     uint32_t *nested_id)
{
	struct ioasid_op op;
	int r;

	if (!nested_id)
		return api_reject(-EINVAL, __func__, "nested_id is NULL");
	if (!data)
		return api_reject(-EINVAL, __func__, "data is NULL");
	ioasid_op_init(&op, IOASID_CMD_VIOMMU_NESTED_ALLOC);
	op.ioas_id2 = viommu_id;
	op.dev_id = dev_id;
	op.mode = type;
	op.flags = flags;
	op.in = data;
	op.in_len = len;
	r = api_call(ctx, &op);
	if (r == 0)
		*nested_id = op.out_id;
	return r;
}

/*
 * ioasid_viommu_invalidate - drop device caches through a vIOMMU
 * @entries: *@nr requests, each naming a device by its virtual ID
 * @nr: in: how many; out: how many were done (also on failure)
 * @errors: NULL, or room for *@nr results: 0 for each entry done, the
 *          failing entry's -errno, -ECANCELED for those not tried
 *
 * Entries are done in order; the first refused stops the request and is
 * the return value.  Errors: -EINVAL (NULL or empty @entries; no device
 * has the entry's virtual ID on the vIOMMU; on a simulated vIOMMU an
 * entry with no pages, an unaligned address, a range with
 * IOASID_VIOMMU_INVAL_ALL or a cache_id; on a selftest vIOMMU a range or
 * a cache_id above 3), -EOVERFLOW (an entry's range wraps), -EOPNOTSUPP
 * (unknown entry flags), -E2BIG (more than 4096 entries), -ENOENT (no
 * such vIOMMU), -ENOMEM, or what the IOMMU refused an entry with.
 */
IOASID_EXPORT int ioasid_viommu_invalidate(struct ioasid_ctx *ctx,
					   uint32_t viommu_id,
					   const struct ioasid_viommu_inval *entries,
					   uint32_t *nr, int32_t *errors)
{
	int32_t *buf = errors;
	struct ioasid_op op;
	int r;

	if (!nr)
		return api_reject(-EINVAL, __func__, "nr is NULL");
	if (!entries || !*nr)
		return api_reject(-EINVAL, __func__, "no entries");
	if (*nr > 4096)
		return api_reject(-E2BIG, __func__, "%u entries: at most 4096",
				  *nr);
	if (!buf) {
		buf = calloc(*nr, sizeof(*buf));
		if (!buf)
			return api_reject(-ENOMEM, __func__, "out of memory");
	}
	ioasid_op_init(&op, IOASID_CMD_VIOMMU_INVALIDATE);
	op.ioas_id2 = viommu_id;
	op.in = entries;
	op.in_len = *nr * (uint32_t)sizeof(*entries);
	op.out = buf;
	op.out_cap = *nr * (uint32_t)sizeof(*buf);
	r = api_call(ctx, &op);
	*nr = op.out_id;
	if (buf != errors)
		free(buf);
	return r;
}

/*
 * ioasid_viommu_list - the vIOMMUs over an IOAS
 *
 * Errors: -EINVAL, -ENOENT, -EMSGSIZE (*@nr set to the number needed).
 */
IOASID_EXPORT int ioasid_viommu_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
				     struct ioasid_viommu_info *viommus,
				     uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_VIOMMU_LIST);
	op.ioas_id = ioas_id;
	op.mode = IOASID_VIOMMU_OBJ_VIOMMU;
	return api_call_array(ctx, &op, viommus, sizeof(*viommus), nr);
}

/*
 * ioasid_vdevice_list - the vDEVICEs of every vIOMMU over an IOAS
 *
 * Errors: -EINVAL, -ENOENT, -EMSGSIZE (*@nr set to the number needed).
 */
IOASID_EXPORT int ioasid_vdevice_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
				      struct ioasid_vdevice_info *vdevices,
				      uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_VIOMMU_LIST);
	op.ioas_id = ioas_id;
	op.mode = IOASID_VIOMMU_OBJ_VDEVICE;
	return api_call_array(ctx, &op, vdevices, sizeof(*vdevices), nr);
}
