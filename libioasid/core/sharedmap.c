/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

#include "core/sharedmap.h"

#define PAGE_SHIFT	12
#define LEAF_SHIFT	30			/* 1 GiB of IOVA per leaf */
#define LEAF_PAGES	(1ULL << (LEAF_SHIFT - PAGE_SHIFT))
#define LEAF_WORDS	(LEAF_PAGES / 64)

struct leaf {
	uint64_t index;				/* iova >> LEAF_SHIFT */
	uint64_t count;				/* shared pages in it */
	UT_hash_handle hh;
	uint64_t bits[LEAF_WORDS];
};

struct sharedmap {
	struct leaf *leaves;
	uint64_t nr_leaves;
	uint64_t shared;
};

int sharedmap_new(struct sharedmap **map)
{
	*map = calloc(1, sizeof(**map));
	return *map ? 0 : -ENOMEM;
}

void sharedmap_free(struct sharedmap *map)
{
	struct leaf *l, *tmp;

	if (!map)
		return;
	HASH_ITER(hh, map->leaves, l, tmp) {
		HASH_DEL(map->leaves, l);
		free(l);
	}
	free(map);
}

static struct leaf *find(const struct sharedmap *map, uint64_t index)
{
	struct leaf *l;

	HASH_FIND(hh, map->leaves, &index, sizeof(index), l);
	return l;
}

int sharedmap_reserve(struct sharedmap *map, uint64_t iova, uint64_t length)
{
	uint64_t first = iova >> LEAF_SHIFT;
	uint64_t last = (iova + length - 1) >> LEAF_SHIFT;

	for (uint64_t i = first; i <= last && i >= first; i++) {
		struct leaf *l;

		if (find(map, i))
			continue;
		l = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
		l->index = i;
		if (hash_add(hh, map->leaves, index, sizeof(l->index), l) < 0) {
			free(l);
			return -ENOMEM;
		}
		map->nr_leaves++;
	}
	return 0;
}

uint64_t sharedmap_reserve_cost(const struct sharedmap *map, uint64_t iova,
				uint64_t length, uint64_t budget)
{
	uint64_t first = iova >> LEAF_SHIFT;
	uint64_t last = (iova + length - 1) >> LEAF_SHIFT;
	uint64_t cost = 0;

	for (uint64_t i = first; i <= last && i >= first; i++) {
		if (find(map, i))
			continue;
		cost += sizeof(struct leaf);
		if (cost > budget)
			break;
	}
	return cost;
}

void sharedmap_trim(struct sharedmap *map)
{
	struct leaf *l, *tmp;

	HASH_ITER(hh, map->leaves, l, tmp) {
		if (l->count)
			continue;
		HASH_DEL(map->leaves, l);
		map->nr_leaves--;
		free(l);
	}
}

/* Set/clear bits [from, to) of one word, counting the changes. */
static uint64_t update_word(uint64_t *w, unsigned int from, unsigned int to,
			    bool shared)
{
	uint64_t mask = (to == 64 ? ~0ULL : ((1ULL << to) - 1)) &
			~((1ULL << from) - 1);
	uint64_t before = *w;

	*w = shared ? before | mask : before & ~mask;
	return (uint64_t)__builtin_popcountll(before ^ *w);
}

void sharedmap_set(struct sharedmap *map, uint64_t iova, uint64_t length,
		   bool shared)
{
	uint64_t page = iova >> PAGE_SHIFT, end = page + (length >> PAGE_SHIFT);

	while (page < end) {
		uint64_t index = page / LEAF_PAGES;
		uint64_t in = page % LEAF_PAGES;
		uint64_t n = LEAF_PAGES - in < end - page ? LEAF_PAGES - in :
							     end - page;
		struct leaf *l = find(map, index);
		uint64_t changed = 0;

		for (uint64_t p = in; l && p < in + n;) {
			unsigned int from = p % 64;
			unsigned int to = (in + n - p) + from > 64 ?
					  64 : (unsigned int)(in + n - p) + from;

			changed += update_word(&l->bits[p / 64], from, to,
					       shared);
			p += to - from;
		}
		if (l) {
			l->count = shared ? l->count + changed :
					    l->count - changed;
			map->shared = shared ? map->shared + changed :
					       map->shared - changed;
		}
		page += n;
	}
}

bool sharedmap_test(const struct sharedmap *map, uint64_t iova)
{
	uint64_t page = iova >> PAGE_SHIFT;
	struct leaf *l = find(map, page / LEAF_PAGES);

	if (!l)
		return false;
	page %= LEAF_PAGES;
	return (l->bits[page / 64] >> (page % 64)) & 1;
}

/* Next page >= page (and < end) whose state is @shared, or end. */
static uint64_t next_in_state(const struct sharedmap *map, uint64_t page,
			      uint64_t end, bool shared)
{
	while (page < end) {
		struct leaf *l = find(map, page / LEAF_PAGES);
		uint64_t leaf_end = (page / LEAF_PAGES + 1) * LEAF_PAGES;

		if (!l) {
			if (!shared)
				return page;
			page = leaf_end;
			continue;
		}
		for (; page < end && page < leaf_end;) {
			uint64_t in = page % LEAF_PAGES;
			uint64_t w = l->bits[in / 64];

			w = (shared ? w : ~w) >> (in % 64);
			if (w)
				return page + (uint64_t)__builtin_ctzll(w) < end ?
				       page + (uint64_t)__builtin_ctzll(w) : end;
			page += 64 - in % 64;
		}
	}
	return end;
}

int sharedmap_for_each_run(const struct sharedmap *map, uint64_t iova,
			   uint64_t length, bool shared,
			   int (*fn)(void *arg, uint64_t iova, uint64_t length),
			   void *arg)
{
	uint64_t page = iova >> PAGE_SHIFT, end = page + (length >> PAGE_SHIFT);

	while (page < end) {
		uint64_t start = next_in_state(map, page, end, shared);
		uint64_t stop;
		int r;

		if (start >= end)
			break;
		stop = next_in_state(map, start, end, !shared);
		r = fn(arg, start << PAGE_SHIFT, (stop - start) << PAGE_SHIFT);
		if (r)
			return r;
		page = stop;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int sharedmap_for_each_shared(const struct sharedmap *map,
			      int (*fn)(void *arg, uint64_t iova,
					uint64_t length),
			      void *arg)
{
	struct leaf *l, *tmp;
	uint64_t *idx, n = 0;
	int r = 0;

	idx = malloc(sizeof(*idx) * (map->nr_leaves + 1));
	if (!idx)
		return -ENOMEM;
	HASH_ITER(hh, map->leaves, l, tmp)
		idx[n++] = l->index;
	qsort(idx, n, sizeof(*idx), cmp_u64);
	for (uint64_t i = 0; i < n && r == 0; i++)
		r = sharedmap_for_each_run(map, idx[i] << LEAF_SHIFT,
					   1ULL << LEAF_SHIFT, true, fn, arg);
	free(idx);
	return r;
}

uint64_t sharedmap_mem_bytes(const struct sharedmap *map)
{
	return sizeof(*map) + map->nr_leaves * sizeof(struct leaf);
}

uint64_t sharedmap_shared_pages(const struct sharedmap *map)
{
	return map->shared;
}
