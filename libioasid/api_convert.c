/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry point for confidential memory: the "confidential memory"
 * section of libioasid.h (shared/private conversion of a restricted
 * IOAS).  It only packs arguments; the rules live in the core
 * (uapi/ioasid/ops.def names each command's handler).
 */
#include <errno.h>

#include "ctx.h"
#include "util/macros.h"

/*
 * ioasid_convert - shared/private conversion of a restricted IOAS
 * @ranges, @nr: the pages to convert (whole 4 KiB pages, any number of
 *               ranges, inside or across mappings and files)
 * @flags: IOASID_CONVERT_PRIVATE or IOASID_CONVERT_SHARED
 * @converted: out: bytes whose state changed (may be NULL)
 *
 * To private: when the call returns the pages are in no domain and no
 * IOTLB, so no DMA reaches them.  To shared: mapped pages become reachable
 * again.  Pages of a restricted IOAS start private.  Pages whose state does
 * not change stay reachable throughout.  All or nothing.
 * Errors: -EINVAL (NULL or empty batch, unaligned or inverted range, both
 * or neither flag, IOAS not restricted), -EOPNOTSUPP (unknown flags),
 * -ENOENT (no IOAS), -E2BIG (more than 65536 ranges), -ENOMEM.
 */
IOASID_EXPORT int ioasid_convert(struct ioasid_ctx *ctx, uint32_t ioas_id,
				 const struct ioasid_iova_range *ranges,
				 uint32_t nr, uint32_t flags,
				 uint64_t *converted)
{
	struct ioasid_op op;
	int r;

	if (!ranges)
		return api_reject(-EINVAL, __func__, "ranges is NULL");
	if (!nr)
		return api_reject(-EINVAL, __func__, "nr is 0");
	if (nr > 65536)
		return api_reject(-E2BIG, __func__, "%u ranges exceed the "
				  "limit of 65536", nr);
	ioasid_op_init(&op, IOASID_CMD_CONVERT);
	op.ioas_id = ioas_id;
	op.flags = flags;
	op.in = ranges;
	op.in_len = nr * (uint32_t)sizeof(*ranges);
	r = api_call(ctx, &op);
	if (r == 0 && converted)
		*converted = op.out_bytes;
	return r;
}
