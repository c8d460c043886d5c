/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for address spaces and mappings: the "address
 * spaces" section of libioasid.h.  Each one checks its pointers, fills a
 * struct ioasid_op and runs it through the context's transport; the
 * rules live in the core (uapi/ioasid/ops.def names each command's
 * handler).
 */
#include <errno.h>

#include "ctx.h"
#include "util/macros.h"

/*
 * ioasid_ioas_alloc - create an address space
 * @flags: IOASID_IOAS_IDENTITY, IOASID_IOAS_RESTRICTED
 *
 * Errors: -EINVAL (NULL pointer), -EOPNOTSUPP (unknown flags), -ENOSPC
 * (the session's IOAS quota is used up), -ENOMEM.
 */
IOASID_EXPORT int ioasid_ioas_alloc(struct ioasid_ctx *ctx, uint32_t flags,
				    uint32_t *ioas_id)
{
	struct ioasid_op op;
	int r;

	if (!ioas_id)
		return api_reject(-EINVAL, __func__, "ioas_id is NULL");
	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	op.flags = flags;
	r = api_call(ctx, &op);
	if (r == 0)
		*ioas_id = op.out_id;
	return r;
}

/*
 * ioasid_ioas_destroy - destroy an address space and all its mappings
 *
 * Errors: -ENOENT (no such IOAS), -EBUSY (devices are attached).
 */
IOASID_EXPORT int ioasid_ioas_destroy(struct ioasid_ctx *ctx, uint32_t ioas_id)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_DESTROY);
	op.ioas_id = ioas_id;
	return api_call(ctx, &op);
}

/*
 * ioasid_ioas_set_snoop_mode - choose the coherency policy of an IOAS
 * @mode: IOASID_SNOOP_AUTO, IOASID_SNOOP_ENFORCE or IOASID_SNOOP_ALLOW
 *
 * Errors: -ENOENT, -EINVAL (unknown mode), -EBUSY (devices are attached:
 * domains already exist with their coherency fixed).
 */
IOASID_EXPORT int ioasid_ioas_set_snoop_mode(struct ioasid_ctx *ctx,
					     uint32_t ioas_id, uint32_t mode)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_SET_SNOOP);
	op.ioas_id = ioas_id;
	op.mode = mode;
	return api_call(ctx, &op);
}

/*
 * ioasid_ioas_get_info - flags, snoop mode and counters of an IOAS
 *
 * Errors: -EINVAL (NULL @info), -ENOENT.
 */
IOASID_EXPORT int ioasid_ioas_get_info(struct ioasid_ctx *ctx, uint32_t ioas_id,
				       struct ioasid_ioas_info *info)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.ioas_id = ioas_id;
	return api_call_struct(ctx, &op, info, sizeof(*info));
}

/*
 * ioasid_ioas_list - the ids of the caller's address spaces
 * @ids: room for *@nr ids
 * @nr: in: capacity; out: number of IOASes
 *
 * Errors: -EINVAL, -EMSGSIZE (*@nr set to the number needed; nothing
 * else written beyond the capacity).
 */
IOASID_EXPORT int ioasid_ioas_list(struct ioasid_ctx *ctx, uint32_t *ids,
				   uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_LIST);
	return api_call_array(ctx, &op, ids, sizeof(*ids), nr);
}

/*
 * ioasid_map_file - map part of a file into an IOAS
 * @fd: memfd, tmpfs/hugetlbfs file or guest_memfd; the library keeps its
 *      own reference, so the caller may close @fd afterwards
 * @offset, @length: multiples of the file's page size, inside the file
 * @flags: IOASID_MAP_READ, IOASID_MAP_WRITE, IOASID_MAP_FIXED_IOVA
 * @iova: in (FIXED_IOVA): where; out: where it was mapped
 *
 * Errors: -EINVAL (NULL @iova, zero or unaligned length/offset/iova,
 * range beyond the file, unsealed memfd, no READ/WRITE), -EOPNOTSUPP
 * (unknown flags, unsupported kind of file), -EBADF (@fd not open),
 * -EACCES (file's open mode lacks the access asked, or WRITE asked of a
 * file sealed with F_SEAL_WRITE or F_SEAL_FUTURE_WRITE), -EOVERFLOW (iova +
 * length or offset + length wraps), -EEXIST (overlaps a mapping),
 * -EINVAL also for reserved or not allowed IOVA (as iommufd), -ENOSPC (no free IOVA of
 * that size, or quota), -ENOENT (no such IOAS), -EPERM (private pages of
 * a guest_memfd), -ENOMEM.
 */
IOASID_EXPORT int ioasid_map_file(struct ioasid_ctx *ctx, uint32_t ioas_id,
				  int fd, uint64_t offset, uint64_t length,
				  uint32_t flags, uint64_t *iova)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
	op.ioas_id = ioas_id;
	op.fd = fd;
	op.offset = offset;
	op.length = length;
	op.flags = flags;
	return api_call_iova(ctx, &op, iova, "iova");
}

/*
 * ioasid_map_file_id - map more of a file the IOAS holds, by its file id
 * @file_id: as the IOAS's mappings name it (struct ioasid_mapping's
 *           file_id, ioasid_file_get_info()); held while a mapping uses it
 * @offset, @length, @flags, @iova: as ioasid_map_file()'s
 *
 * No descriptor, and no system call to learn the file again: the IOAS's
 * own reference is mapped, with its access mode (the descriptor's the
 * file was first mapped with).  Seals and size are checked as at any map.
 * Errors: as ioasid_map_file() without -EBADF; -ENOENT also when the IOAS
 * holds no file @file_id (the last mapping of it was unmapped, or it is
 * another IOAS's).
 */
IOASID_EXPORT int ioasid_map_file_id(struct ioasid_ctx *ctx, uint32_t ioas_id,
				     uint32_t file_id, uint64_t offset,
				     uint64_t length, uint32_t flags,
				     uint64_t *iova)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_MAP_FILE_ID);
	op.ioas_id = ioas_id;
	op.file_id = file_id;
	op.offset = offset;
	op.length = length;
	op.flags = flags;
	return api_call_iova(ctx, &op, iova, "iova");
}

/*
 * ioasid_map_user - map host virtual memory into an IOAS (legacy path)
 *
 * The memory must stay mapped until it is unmapped from the IOAS.  Only
 * embedded contexts can do this: the daemon cannot reach the caller's
 * address space (-EOPNOTSUPP over ioasidd; use ioasid_map_file()).
 * Errors: as ioasid_map_file() without the file checks; -EINVAL for an
 * unaligned or NULL @vaddr; -EFAULT when part of the range is not mapped
 * in this process, or lacks the access @flags ask for (as pinning).
 */
IOASID_EXPORT int ioasid_map_user(struct ioasid_ctx *ctx, uint32_t ioas_id,
				  void *vaddr, uint64_t length, uint32_t flags,
				  uint64_t *iova)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_MAP_USER);
	op.ioas_id = ioas_id;
	op.offset = (uint64_t)(uintptr_t)vaddr;
	op.length = length;
	op.flags = flags;
	return api_call_iova(ctx, &op, iova, "iova");
}

/*
 * ioasid_unmap - remove every mapping byte in [iova, iova + length)
 * @flags: IOASID_UNMAP_MISSING_OK
 * @unmapped: bytes removed (may be NULL)
 *
 * Unlike the kernel, the range may cut through mappings at any page
 * boundary; the pieces outside keep their file, offset and protection.
 * Errors: -EINVAL (zero or unaligned), -EOVERFLOW, -ENOENT (no such IOAS,
 * or nothing mapped in the range without MISSING_OK), -EOPNOTSUPP
 * (unknown flags), -ENOMEM.
 */
IOASID_EXPORT int ioasid_unmap(struct ioasid_ctx *ctx, uint32_t ioas_id,
			       uint64_t iova, uint64_t length, uint32_t flags,
			       uint64_t *unmapped)
{
	struct ioasid_op op;
	int r;

	if (flags & IOASID_UNMAP_GET_DIRTY)
		return api_reject(-EINVAL, __func__, "IOASID_UNMAP_GET_DIRTY "
				  "needs a bitmap: ioasid_unmap_get_dirty()");
	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas_id;
	op.iova = iova;
	op.length = length;
	op.flags = flags;
	r = api_call(ctx, &op);
	if (r == 0 && unmapped)
		*unmapped = op.out_bytes;
	return r;
}

/*
 * ioasid_unmap_get_dirty - unmap and return the dirty bits of what goes
 * @bitmap: length / 4 KiB bits from @iova, zeroed, then set for every page
 *	    a device wrote since the last read (and for every mapped page of
 *	    a domain without tracking under IOASID_DIRTY_START_FALLBACK)
 * @flags: IOASID_UNMAP_MISSING_OK
 *
 * On the simulator the bits are taken in the same step as the removal;
 * on iommufd they are read just before it (a write in between is not
 * reported).  Errors: as ioasid_unmap(), and -EINVAL (NULL bitmap; the
 * whole IOAS; a bitmap over 4 GiB; tracking not started), -EOPNOTSUPP
 * (the backend cannot: VFIO type1).
 */
IOASID_EXPORT int ioasid_unmap_get_dirty(struct ioasid_ctx *ctx,
					 uint32_t ioas_id, uint64_t iova,
					 uint64_t length, uint32_t flags,
					 uint64_t *bitmap, uint64_t *unmapped)
{
	uint64_t words = (length / 4096 + 63) / 64;
	struct ioasid_op op;
	int r;

	if (!bitmap)
		return api_reject(-EINVAL, __func__, "bitmap is NULL");
	if (words > UINT32_MAX / 8)
		return api_reject(-EINVAL, __func__, "length %llu needs a "
				  "bitmap larger than 4 GiB",
				  (unsigned long long)length);
	if (flags & IOASID_UNMAP_GET_DIRTY)
		flags &= ~(uint32_t)IOASID_UNMAP_GET_DIRTY;
	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas_id;
	op.iova = iova;
	op.length = length;
	op.flags = flags | IOASID_UNMAP_GET_DIRTY;
	op.out = bitmap;
	op.out_cap = (uint32_t)(words * 8);
	r = api_call(ctx, &op);
	if (r == 0 && unmapped)
		*unmapped = op.out_bytes;
	return r;
}

/*
 * ioasid_unmap_all - remove every mapping of an IOAS
 *
 * Succeeds with 0 bytes on an empty IOAS.  Errors: -ENOENT (no IOAS).
 */
IOASID_EXPORT int ioasid_unmap_all(struct ioasid_ctx *ctx, uint32_t ioas_id,
				   uint64_t *unmapped)
{
	return ioasid_unmap(ctx, ioas_id, 0, UINT64_MAX,
			    IOASID_UNMAP_MISSING_OK, unmapped);
}

/*
 * ioasid_copy - map what one IOAS maps at [src_iova, +length) into another
 * @flags: IOASID_MAP_READ/WRITE (at most the source's), FIXED_IOVA
 * @dst_iova: in (FIXED_IOVA) / out
 *
 * The range must be fully mapped in the source.  Errors: -ENOENT (no such
 * IOAS, or a hole in the source range), -EACCES (more access than the
 * source mapping, or WRITE of a file sealed against writing since), and
 * the errors of ioasid_map_file() for the target.
 */
IOASID_EXPORT int ioasid_copy(struct ioasid_ctx *ctx, uint32_t dst_ioas_id,
			      uint32_t src_ioas_id, uint64_t src_iova,
			      uint64_t length, uint32_t flags,
			      uint64_t *dst_iova)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_COPY);
	op.ioas_id = dst_ioas_id;
	op.ioas_id2 = src_ioas_id;
	op.offset = src_iova;
	op.length = length;
	op.flags = flags;
	return api_call_iova(ctx, &op, dst_iova, "dst_iova");
}

/*
 * ioasid_iova_ranges - the IOVA ranges mappings may use
 * @ranges: room for *@nr ranges (may be NULL when *@nr is 0)
 * @alignment: out: the alignment every IOVA must have (may be NULL)
 *
 * The allowed ranges minus every reserved region of attached devices and
 * their IOMMUs.  Errors: -ENOENT, -EINVAL, -EMSGSIZE (*@nr set to the
 * number needed).
 */
IOASID_EXPORT int ioasid_iova_ranges(struct ioasid_ctx *ctx, uint32_t ioas_id,
				     struct ioasid_iova_range *ranges,
				     uint32_t *nr, uint64_t *alignment)
{
	struct ioasid_op op;
	int r;

	ioasid_op_init(&op, IOASID_CMD_IOVA_RANGES);
	op.ioas_id = ioas_id;
	r = api_call_array(ctx, &op, ranges, sizeof(*ranges), nr);
	if ((r == 0 || r == -EMSGSIZE) && alignment)
		*alignment = op.out_bytes;
	return r;
}

/*
 * ioasid_allow_iovas - restrict the IOAS to these ranges (nr 0: no limit)
 *
 * Errors: -ENOENT, -EINVAL (unaligned, overlapping or inverted ranges),
 * -EADDRINUSE (an existing mapping lies outside the new ranges), -E2BIG
 * (more than 4096 ranges), -ENOMEM.
 */
IOASID_EXPORT int ioasid_allow_iovas(struct ioasid_ctx *ctx, uint32_t ioas_id,
				     const struct ioasid_iova_range *ranges,
				     uint32_t nr)
{
	struct ioasid_op op;

	if (nr && !ranges)
		return api_reject(-EINVAL, __func__, "ranges is NULL but nr "
				  "is %u", nr);
	if (nr > 4096)
		return api_reject(-E2BIG, __func__, "%u ranges exceed the "
				  "limit of 4096", nr);
	ioasid_op_init(&op, IOASID_CMD_ALLOW_IOVAS);
	op.ioas_id = ioas_id;
	op.in = ranges;
	op.in_len = nr * (uint32_t)sizeof(*ranges);
	return api_call(ctx, &op);
}

/*
 * ioasid_lookup - the mapping that contains @iova
 *
 * Errors: -EINVAL (NULL @mapping), -ENOENT (no IOAS, or @iova unmapped).
 */
IOASID_EXPORT int ioasid_lookup(struct ioasid_ctx *ctx, uint32_t ioas_id,
				uint64_t iova, struct ioasid_mapping *mapping)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_LOOKUP);
	op.ioas_id = ioas_id;
	op.iova = iova;
	return api_call_struct(ctx, &op, mapping, sizeof(*mapping));
}

/*
 * ioasid_mapping_next - the first mapping that ends at or after @iova
 *
 * For walks in IOVA order (see ioasid_mapping_foreach()).
 * Errors: -EINVAL, -ENOENT (no IOAS, or no mapping at or after @iova).
 */
IOASID_EXPORT int ioasid_mapping_next(struct ioasid_ctx *ctx, uint32_t ioas_id,
				      uint64_t iova,
				      struct ioasid_mapping *mapping)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_MAPPING_NEXT);
	op.ioas_id = ioas_id;
	op.iova = iova;
	return api_call_struct(ctx, &op, mapping, sizeof(*mapping));
}

/*
 * ioasid_file_get_info - what backs mappings with this file_id
 *
 * Errors: -EINVAL, -ENOENT (no IOAS, or no such file in it).
 */
IOASID_EXPORT int ioasid_file_get_info(struct ioasid_ctx *ctx,
				       uint32_t ioas_id, uint32_t file_id,
				       struct ioasid_file_info *info)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FILE_INFO);
	op.ioas_id = ioas_id;
	op.file_id = file_id;
	return api_call_struct(ctx, &op, info, sizeof(*info));
}

/*
 * ioasid_map_file_batch - map many ranges of one file in one call
 * @fd: as ioasid_map_file(); checked once for the whole batch
 * @entries, @nr: the ranges (file offset, length, and the IOVA when
 *                @flags has IOASID_MAP_FIXED_IOVA)
 * @flags: IOASID_MAP_READ, IOASID_MAP_WRITE, IOASID_MAP_FIXED_IOVA, for
 *         every entry
 * @iovas: out: where each entry was mapped (may be NULL)
 *
 * All or nothing: if an entry cannot be mapped, the ones before it are
 * unmapped and the call fails with that entry's error (the reason names
 * it).  Through ioasidd this is one message, not one per range.
 * Errors: those of ioasid_map_file(), -EINVAL (NULL @entries or @nr 0),
 * -E2BIG (more than 2730 entries, what one message carries).
 */
IOASID_EXPORT int ioasid_map_file_batch(struct ioasid_ctx *ctx,
					uint32_t ioas_id, int fd,
					const struct ioasid_map_entry *entries,
					uint32_t nr, uint32_t flags,
					uint64_t *iovas)
{
	uint64_t scratch[64], *out = iovas ? iovas : scratch;
	struct ioasid_op op;

	if (!entries)
		return api_reject(-EINVAL, __func__, "entries is NULL");
	if (!nr)
		return api_reject(-EINVAL, __func__, "nr is 0");
	if (nr > IOASID_MAP_BATCH_MAX)
		return api_reject(-E2BIG, __func__, "%u entries exceed the "
				  "limit of %u", nr, IOASID_MAP_BATCH_MAX);
	if (!iovas && nr > 64)
		return api_reject(-EINVAL, __func__, "iovas is NULL with %u "
				  "entries (more than 64)", nr);
	ioasid_op_init(&op, IOASID_CMD_MAP_BATCH);
	op.ioas_id = ioas_id;
	op.fd = fd;
	op.flags = flags;
	op.in = entries;
	op.in_len = nr * (uint32_t)sizeof(*entries);
	op.out = out;
	op.out_cap = nr * (uint32_t)sizeof(*out);
	return api_call(ctx, &op);
}

/*
 * ioasid_dirty_start - track the pages devices write through every domain
 * of an IOAS, and through every domain it gets later
 * @flags: IOASID_DIRTY_START_FALLBACK: a domain that cannot track reports
 *	   all its mapped pages as dirty instead of refusing the start
 *
 * All or nothing.  Errors: -ENOENT, -EBUSY (already on), -EOPNOTSUPP
 * (unknown flags; a domain cannot track and no fallback), or the
 * backend's error.
 */
IOASID_EXPORT int ioasid_dirty_start(struct ioasid_ctx *ctx, uint32_t ioas_id,
				     uint32_t flags)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DIRTY_START);
	op.ioas_id = ioas_id;
	op.flags = flags;
	return api_call(ctx, &op);
}

/*
 * ioasid_dirty_stop - stop dirty tracking; nothing is recorded after it
 *
 * Errors: -ENOENT, -EINVAL (not started).
 */
IOASID_EXPORT int ioasid_dirty_stop(struct ioasid_ctx *ctx, uint32_t ioas_id)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DIRTY_STOP);
	op.ioas_id = ioas_id;
	return api_call(ctx, &op);
}

/*
 * ioasid_dirty_read - which pages devices wrote since the last read
 * @bitmap: length / 4 KiB bits, zeroed and then set for dirty pages
 * @flags: IOASID_DIRTY_NO_CLEAR keeps the dirty state
 *
 * Errors: -EINVAL (NULL, empty or unaligned range; tracking not started),
 * -EOVERFLOW, -ENOENT, -EMSGSIZE (bitmap too small), -EOPNOTSUPP
 * (unknown flags).
 */
IOASID_EXPORT int ioasid_dirty_read(struct ioasid_ctx *ctx, uint32_t ioas_id,
				    uint64_t iova, uint64_t length,
				    uint64_t *bitmap, uint32_t flags)
{
	struct ioasid_op op;
	uint64_t words = (length / 4096 + 63) / 64;

	if (!bitmap)
		return api_reject(-EINVAL, __func__, "bitmap is NULL");
	if (words > UINT32_MAX / 8)
		return api_reject(-EINVAL, __func__, "length %llu needs a "
				  "bitmap larger than 4 GiB",
				  (unsigned long long)length);
	ioasid_op_init(&op, IOASID_CMD_DIRTY_READ);
	op.ioas_id = ioas_id;
	op.iova = iova;
	op.length = length;
	op.flags = flags;
	op.out = bitmap;
	op.out_cap = (uint32_t)(words * 8);
	return api_call(ctx, &op);
}
