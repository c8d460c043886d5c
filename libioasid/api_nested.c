/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for nested translation: the "nested tables"
 * section of libioasid.h.  They only pack arguments; the rules live in
 * the core (core/nested.c; uapi/ioasid/ops.def names each handler).
 */
#include <errno.h>
#include <stdlib.h>

#include "ctx.h"
#include "util/macros.h"

/*
 * ioasid_nested_alloc - a nested (stage-1) table over a nest-parent IOAS
 * @ioas_id: the parent, allocated with IOASID_IOAS_NEST_PARENT: its
 *           mappings are the second stage (guest-physical -> memory)
 * @dev_id: a bound device behind the IOMMU the table is for
 * @type: enum ioasid_nested_type; @data, @len: its structure (the
 *        guest's stage-1 table in the vendor's format)
 * @flags: 0
 * @nested_id: out: the new table
 *
 * The table is the guest's: the library keeps no copy of its entries,
 * the IOMMU walks it (through the parent) when DMA needs it.  Errors:
 * -EINVAL (NULL @nested_id or @data; the parent is not a nesting parent;
 * @len shorter than @type's structure; bad VT-d address width or root),
 * -E2BIG (non-zero bytes past the structure), -ENOENT (IOAS or device),
 * -EOPNOTSUPP (unknown @type, flags or reserved bits; the backend or the
 * device's IOMMU has no nesting, or not in this format), -ENOSPC (the
 * session's max-ioas quota, which counts IOASes, nested tables and
 * vIOMMUs together), -ENOMEM.
 */
IOASID_EXPORT int ioasid_nested_alloc(struct ioasid_ctx *ctx, uint32_t ioas_id,
				      uint32_t dev_id, uint32_t type,
				      const void *data, uint32_t len,
				      uint32_t flags, uint32_t *nested_id)
{
	struct ioasid_op op;
	int r;

	if (!nested_id)
		return api_reject(-EINVAL, __func__, "nested_id is NULL");
	if (!data)
		return api_reject(-EINVAL, __func__, "data is NULL");
	ioasid_op_init(&op, IOASID_CMD_NESTED_ALLOC);
	op.ioas_id = ioas_id;
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
 * ioasid_nested_destroy - free a nested table
 *
 * Errors: -ENOENT (not this context's), -EBUSY (devices, or devices'
 * PASIDs, attached).
 */
IOASID_EXPORT int ioasid_nested_destroy(struct ioasid_ctx *ctx,
					uint32_t nested_id)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_NESTED_DESTROY);
	op.ioas_id2 = nested_id;
	return api_call(ctx, &op);
}

static int attach_nested(struct ioasid_ctx *ctx, uint32_t dev_id,
			 uint32_t nested_id, uint32_t flags)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_NESTED_ATTACH);
	op.dev_id = dev_id;
	op.ioas_id2 = nested_id;
	op.flags = flags;
	return api_call(ctx, &op);
}

/*
 * ioasid_device_attach_nested - attach a bound device to a nested table
 * @flags: IOASID_ATTACH_NO_SNOOP_UNUSED
 *
 * The device's DMA goes through both stages: its addresses through the
 * guest's stage-1 table, the result through the parent IOAS.  It is on
 * the parent IOAS for reserved regions, groups and coherency.  Errors:
 * -ENOENT (device or table), -EBUSY (already attached: use replace),
 * -EINVAL (the table was made for another IOMMU; a group-mate is
 * attached elsewhere), -EOPNOTSUPP (unknown flags), -EADDRINUSE, -EPERM,
 * -ENOMEM, as ioasid_device_attach().
 */
IOASID_EXPORT int ioasid_device_attach_nested(struct ioasid_ctx *ctx,
					      uint32_t dev_id,
					      uint32_t nested_id,
					      uint32_t flags)
{
	if (flags & IOASID_NESTED_ATTACH_REPLACE)
		return api_reject(-EOPNOTSUPP, __func__, "flags 0x%x: use "
				  "ioasid_device_replace_nested()", flags);
	return attach_nested(ctx, dev_id, nested_id, flags);
}

/*
 * ioasid_device_replace_nested - move an attached device to a nested table
 *
 * From an IOAS (its parent or another) or another nested table, without
 * a window without translation; ioasid_device_replace() moves it back
 * to an IOAS.  Errors: as ioasid_device_attach_nested(), and -EINVAL
 * when the device is not attached.  On failure it stays where it was.
 */
IOASID_EXPORT int ioasid_device_replace_nested(struct ioasid_ctx *ctx,
					       uint32_t dev_id,
					       uint32_t nested_id,
					       uint32_t flags)
{
	if (flags & IOASID_NESTED_ATTACH_REPLACE)
		return api_reject(-EOPNOTSUPP, __func__, "unknown flags 0x%x",
				  flags);
	return attach_nested(ctx, dev_id, nested_id,
			     flags | IOASID_NESTED_ATTACH_REPLACE);
}

static int pasid_nested(struct ioasid_ctx *ctx, uint32_t dev_id,
			uint32_t pasid, uint32_t nested_id, uint32_t flags)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_PASID_ATTACH_NESTED);
	op.dev_id = dev_id;
	op.mode = pasid;
	op.ioas_id2 = nested_id;
	op.flags = flags;
	return api_call(ctx, &op);
}

/*
 * ioasid_device_pasid_attach_nested - attach a PASID of a bound device to
 * a nested table
 * @pasid: 1 .. 2^pasid_bits - 1, as for ioasid_device_pasid_attach()
 * @flags: 0
 *
 * DMA the device tags with @pasid goes through both stages: the guest's
 * stage-1 table, then the parent IOAS.  The PASID holds the table (no
 * destroy while it is there) and its stage-2 domain; it is on the
 * parent as far as the IOAS is concerned (ioasid_device_pasid_list()
 * says both).  ioasid_device_pasid_detach() takes it off.  Errors:
 * -ENOENT (device or table not this session's; a table on a vIOMMU
 * and a device without a vDEVICE there), -EOPNOTSUPP (unknown flags;
 * the backend cannot attach PASIDs to nested tables; the device has no
 * PASID capability or its IOMMU no PASID support), -EINVAL (PASID 0 or
 * beyond the device's width; the table was made for another IOMMU; its
 * stage-2 domain's coherency is not what the parent's snoop mode asks
 * now), -EBUSY (the PASID is attached: use replace), -EPERM (a device
 * that may do no-snoop DMA and a stage 2 that does not enforce
 * snooping), -ENOSPC (64 PASIDs of the device attached already),
 * -ENOMEM, or the kernel's error.
 */
IOASID_EXPORT int ioasid_device_pasid_attach_nested(struct ioasid_ctx *ctx,
						    uint32_t dev_id,
						    uint32_t pasid,
						    uint32_t nested_id,
						    uint32_t flags)
{
	if (flags & IOASID_NESTED_ATTACH_REPLACE)
		return api_reject(-EOPNOTSUPP, __func__, "flags 0x%x: use "
				  "ioasid_device_pasid_replace_nested()",
				  flags);
	return pasid_nested(ctx, dev_id, pasid, nested_id, flags);
}

/*
 * ioasid_device_pasid_replace_nested - move an attached PASID to a nested
 * table
 *
 * From an IOAS (the parent or another) or another nested table, without
 * a window in which its DMA is not translated;
 * ioasid_device_pasid_replace() moves it back to an IOAS.  Errors: as
 * ioasid_device_pasid_attach_nested(), but -EINVAL when the PASID is
 * not attached (and never -EBUSY).  On failure it stays where it was.
 */
IOASID_EXPORT int ioasid_device_pasid_replace_nested(struct ioasid_ctx *ctx,
						     uint32_t dev_id,
						     uint32_t pasid,
						     uint32_t nested_id,
						     uint32_t flags)
{
	if (flags & IOASID_NESTED_ATTACH_REPLACE)
		return api_reject(-EOPNOTSUPP, __func__, "unknown flags 0x%x",
				  flags);
	return pasid_nested(ctx, dev_id, pasid, nested_id,
			    flags | IOASID_NESTED_ATTACH_REPLACE);
}

/*
 * ioasid_nested_invalidate - drop a nested table's cached translations
 * @entries: *@nr requests (a range of its IOVAs, or everything)
 * @nr: in: how many; out: how many were done (also on failure)
 * @errors: NULL, or room for *@nr results: 0 for each entry done, the
 *          failing entry's -errno, -ECANCELED for those not tried
 *
 * After the guest changed its stage-1 table: DMA keeps using what the
 * IOMMU cached until an invalidation covers it.  Entries are done in
 * order; the first refused stops the request and is the return value.
 * Errors: -EINVAL (NULL or empty @entries; an entry with no pages, an
 * unaligned address, or a range with IOASID_NESTED_INVAL_ALL),
 * -EOVERFLOW (an entry's range wraps), -EOPNOTSUPP (unknown entry flags
 * or reserved bits), -E2BIG (more than 4096 entries), -ENOENT (no such
 * table), -ENOMEM, or what the IOMMU refused an entry with.
 */
IOASID_EXPORT int ioasid_nested_invalidate(struct ioasid_ctx *ctx,
					   uint32_t nested_id,
					   const struct ioasid_nested_inval *entries,
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
	ioasid_op_init(&op, IOASID_CMD_NESTED_INVALIDATE);
	op.ioas_id2 = nested_id;
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
 * ioasid_nested_list - the nested tables over an IOAS
 *
 * Errors: -EINVAL, -ENOENT, -EMSGSIZE (*@nr set to the number needed).
 */
IOASID_EXPORT int ioasid_nested_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
				     struct ioasid_nested_info *tables,
				     uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_NESTED_LIST);
	op.ioas_id = ioas_id;
	return api_call_array(ctx, &op, tables, sizeof(*tables), nr);
}
