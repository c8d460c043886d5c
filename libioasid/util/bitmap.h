/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bitmaps of 64-bit words, bit n in word n / 64 at position n % 64 (the
 * layout of dirty bitmaps: iommufd's IOMMU_HWPT_GET_DIRTY_BITMAP and
 * ioasid_dirty_read()).
 */
#ifndef IOASID_UTIL_BITMAP_H
#define IOASID_UTIL_BITMAP_H

#include <stdint.h>

/* Set bits [first, first + n). */
static inline void bitmap_set_range(uint64_t *bitmap, uint64_t first,
				    uint64_t n)
{
	uint64_t bit = first, last = first + n;

	for (; bit < last && (bit & 63); bit++)
		bitmap[bit / 64] |= 1ULL << (bit & 63);
	for (; bit + 64 <= last; bit += 64)
		bitmap[bit / 64] = ~0ULL;
	for (; bit < last; bit++)
		bitmap[bit / 64] |= 1ULL << (bit & 63);
}

/* OR the @nbits bits of @src into @dst from bit @at on. */
static inline void bitmap_or_at(uint64_t *dst, uint64_t at,
				const uint64_t *src, uint64_t nbits)
{
	unsigned int sh = (unsigned int)(at & 63);
	uint64_t *d = dst + at / 64;

	for (uint64_t i = 0; i * 64 < nbits; i++) {
		uint64_t v = src[i];

		if (nbits - i * 64 < 64)
			v &= (1ULL << (nbits - i * 64)) - 1;
		if (!v)
			continue;
		d[i] |= v << sh;
		if (sh && (v >> (64 - sh)))
			d[i + 1] |= v >> (64 - sh);
	}
}

/* Bytes of a bitmap with a bit per 4 KiB page of @length bytes. */
static inline uint64_t bitmap_bytes_4k(uint64_t length)
{
	return (length / 4096 + 63) / 64 * 8;
}

#endif
