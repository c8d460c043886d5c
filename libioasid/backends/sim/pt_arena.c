/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Page-table pages from 2 MiB chunks; see pt_arena.h.
 */
#include "pt_arena.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define PT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PT_ASAN 1
#endif
#endif
#ifdef PT_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)	ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)	((void)(p), (void)(n))
#define UNPOISON(p, n)	((void)(p), (void)(n))
#endif

#define CHUNK_BYTES	(2u << 20)
#define CHUNK_PAGES	(CHUNK_BYTES / PT_ARENA_PAGE)

struct pt_chunk {
	uint8_t *base;
	void *free;		/* freed pages, linked through their word 0 */
	uint32_t fresh;		/* pages below this were handed out once */
	uint32_t used;
	struct pt_chunk *next, *prev;	/* on a->partial while not full */
};

static void partial_push(struct pt_arena *a, struct pt_chunk *c)
{
	c->prev = NULL;
	c->next = a->partial;
	if (a->partial)
		a->partial->prev = c;
	a->partial = c;
}

static void partial_unlink(struct pt_arena *a, struct pt_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		a->partial = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* Index of the first chunk whose base is above @p. */
static size_t chunk_upper(const struct pt_arena *a, const void *p)
{
	size_t lo = 0, hi = a->nr_chunks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((const uint8_t *)p < a->chunks[mid]->base)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static struct pt_chunk *chunk_of(const struct pt_arena *a, const void *p)
{
	size_t i = chunk_upper(a, p);
	struct pt_chunk *c;

	if (!i)
		return NULL;
	c = a->chunks[i - 1];
	return (const uint8_t *)p < c->base + CHUNK_BYTES ? c : NULL;
}

/* 2 MiB of address space aligned to 2 MiB, so one huge page can back it. */
static uint8_t *chunk_map(void)
{
	uint8_t *m = mmap(NULL, 2 * CHUNK_BYTES, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *base;

	if (m == MAP_FAILED)
		return NULL;
	base = (uint8_t *)(((uintptr_t)m + CHUNK_BYTES - 1) &
			   ~(uintptr_t)(CHUNK_BYTES - 1));
	if (base > m)
		munmap(m, (size_t)(base - m));
	munmap(base + CHUNK_BYTES, (size_t)(m + CHUNK_BYTES - base));
#ifdef MADV_HUGEPAGE
	madvise(base, CHUNK_BYTES, MADV_HUGEPAGE);	/* a hint: may fail */
#endif
	POISON(base, CHUNK_BYTES);
	return base;
}

static struct pt_chunk *chunk_new(struct pt_arena *a)
{
	struct pt_chunk *c, **v;
	size_t i;

	if (a->nr_chunks == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 8;

		v = realloc(a->chunks, cap * sizeof(*v));
		if (!v)
			return NULL;
		a->chunks = v;
		a->cap = cap;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base = chunk_map();
	if (!c->base) {
		free(c);
		return NULL;
	}
	i = chunk_upper(a, c->base);
	memmove(&a->chunks[i + 1], &a->chunks[i],
		(a->nr_chunks - i) * sizeof(*a->chunks));
	a->chunks[i] = c;
	a->nr_chunks++;
	partial_push(a, c);
	return c;
}

static void chunk_del(struct pt_arena *a, struct pt_chunk *c)
{
	size_t i = chunk_upper(a, c->base) - 1;

	partial_unlink(a, c);
	memmove(&a->chunks[i], &a->chunks[i + 1],
		(a->nr_chunks - i - 1) * sizeof(*a->chunks));
	a->nr_chunks--;
	UNPOISON(c->base, CHUNK_BYTES);
	munmap(c->base, CHUNK_BYTES);
	free(c);
}

static void *chunk_take(struct pt_arena *a, struct pt_chunk *c)
{
	uint8_t *p;

	if (c->free) {
		p = c->free;
		UNPOISON(p, PT_ARENA_PAGE);
		c->free = *(void **)p;
	} else {
		p = c->base + (size_t)c->fresh++ * PT_ARENA_PAGE;
		UNPOISON(p, PT_ARENA_PAGE);
	}
	if (++c->used == CHUNK_PAGES)
		partial_unlink(a, c);
	return p;
}

void *pt_arena_alloc(struct pt_arena *a)
{
	struct pt_chunk *c = a->partial;
	void *p = NULL;

	if (c || a->nr_pages >= PT_ARENA_SMALL) {
		if (!c)
			c = chunk_new(a);
		if (c)
			p = chunk_take(a, c);
	}
	if (!p)	/* a small table, or no chunk to be had: malloc */
		p = aligned_alloc(PT_ARENA_PAGE, PT_ARENA_PAGE);
	if (p)
		a->nr_pages++;
	return p;
}

void pt_arena_free(struct pt_arena *a, void *page)
{
	struct pt_chunk *c;

	if (!page)
		return;
	a->nr_pages--;
	c = chunk_of(a, page);
	if (!c) {
		free(page);
		return;
	}
	*(void **)page = c->free;
	c->free = page;
	POISON((uint8_t *)page + sizeof(void *),
	       PT_ARENA_PAGE - sizeof(void *));
	if (c->used-- == CHUNK_PAGES)
		partial_push(a, c);
	if (!c->used)
		chunk_del(a, c);
}

void pt_arena_destroy(struct pt_arena *a)
{
	while (a->nr_chunks)
		chunk_del(a, a->chunks[a->nr_chunks - 1]);
	free(a->chunks);
	memset(a, 0, sizeof(*a));
}

size_t pt_arena_chunks(const struct pt_arena *a)
{
	return a->nr_chunks;
}
