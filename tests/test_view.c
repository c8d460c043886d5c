/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shared view (libioasid/proto/view.c) on its own: the writer against
 * a per-page reference model, the seals that keep a client from writing
 * it or shrinking it, a full view, and a reader that survives a view
 * scribbled over at random (mapped with a guard page behind it: a read
 * outside the view would fault).  Under ThreadSanitizer (the tsan_runner),
 * a writer thread that keeps splitting and merging chunks against readers
 * that must always find the mappings it never touches.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../libioasid/proto/view.h"
#include "tsan_runner.h"

#define PG	4096ULL
#define PAGES	4096u

static char why[256];

/* ---- reference: page -> mapping number (0: none) ---------------------- */

struct ref {
	uint32_t page[PAGES];
	struct ioasid_mapping m[PAGES * 2 + 1];
	uint32_t nr;
};

static void ref_map(struct ref *r, uint32_t first, uint32_t n,
		    struct ioasid_mapping *out)
{
	uint32_t id = ++r->nr;

	r->m[id] = (struct ioasid_mapping){
		.size = sizeof(*out), .flags = 3, .iova = first * PG,
		.length = n * PG, .offset = id * PG, .file_id = id,
	};
	for (uint32_t p = first; p < first + n; p++)
		r->page[p] = id;
	*out = r->m[id];
}

static bool ref_free(const struct ref *r, uint32_t first, uint32_t n)
{
	for (uint32_t p = first; p < first + n; p++)
		if (r->page[p])
			return false;
	return true;
}

/* The writer's remove drops whole entries: so does the reference. */
static void ref_remove(struct ref *r, uint32_t first, uint32_t n)
{
	for (uint32_t p = first; p < first + n; p++) {
		uint32_t id = r->page[p];

		if (!id)
			continue;
		for (uint64_t q = r->m[id].iova / PG;
		     q < (r->m[id].iova + r->m[id].length) / PG; q++)
			r->page[q] = 0;
	}
}

static void check_against(const struct view_reader *v, const struct ref *r,
			  uint32_t ioas)
{
	struct ioasid_mapping m;
	uint32_t hint = 0;

	for (uint32_t p = 0; p < PAGES; p += 1 + rand() % 7) {
		uint64_t iova = p * PG + (uint64_t)(rand() % PG);
		int ret = view_find(v, ioas, iova, false, &m, &hint);
		uint32_t id = r->page[p], nx = 0;

		if (id) {
			cr_assert_eq(ret, 0, "page %u: %d", p, ret);
			cr_assert_eq(m.iova, r->m[id].iova);
			cr_assert_eq(m.length, r->m[id].length);
			cr_assert_eq(m.file_id, id);
			cr_assert_eq(m.offset, r->m[id].offset);
			cr_assert_eq(m.flags, 3);
		} else {
			cr_assert_eq(ret, -ENOENT, "page %u: %d", p, ret);
		}
		for (uint32_t q = p; q < PAGES && !nx; q++)
			nx = r->page[q];
		ret = view_find(v, ioas, iova, true, &m, &hint);
		if (nx) {
			cr_assert_eq(ret, 0, "next from page %u: %d", p, ret);
			cr_assert_eq(m.file_id, nx);
		} else {
			cr_assert_eq(ret, -ENOENT);
		}
	}
}

static void reader_for(const struct view_writer *w, struct view_reader *v)
{
	cr_assert_eq(view_reader_init(v, w->base, w->size, why, sizeof(why)),
		     0, "%s", why);
}

Test(view, model)
{
	static struct ref ref;
	struct view_writer w;
	struct view_reader v;
	struct ioasid_mapping m;
	int slot;

	srand(19);
	memset(&ref, 0, sizeof(ref));
	cr_assert_eq(view_writer_create(&w, 4, 100000, why, sizeof(why)), 0,
		     "%s", why);
	reader_for(&w, &v);
	slot = view_slot_open(&w, 7);
	cr_assert_geq(slot, 0);
	check_against(&v, &ref, 7);
	/* ascending fill: the append path */
	view_write_begin(&w, slot);
	for (uint32_t p = 0; p < 1024; p += 2) {
		ref_map(&ref, p, 1, &m);
		cr_assert_eq(view_insert(&w, slot, &m), 0);
	}
	view_write_end(&w, slot);
	check_against(&v, &ref, 7);
	for (int round = 0; round < 6000; round++) {
		uint32_t first = (uint32_t)rand() % PAGES;
		uint32_t n = 1 + (uint32_t)rand() % (rand() % 8 ? 3 : 64);

		if (first + n > PAGES)
			n = PAGES - first;
		view_write_begin(&w, slot);
		if (rand() % 3) {
			if (ref_free(&ref, first, n)) {
				ref_map(&ref, first, n, &m);
				cr_assert_eq(view_insert(&w, slot, &m), 0);
			}
		} else {
			ref_remove(&ref, first, n);
			view_remove(&w, slot, first * PG,
				    (first + n) * PG - 1);
		}
		view_write_end(&w, slot);
		if (round % 500 == 0)
			check_against(&v, &ref, 7);
	}
	check_against(&v, &ref, 7);
	/* other IOASes: no slot means the reader cannot say */
	cr_assert_eq(view_find(&v, 8, 0, false, &m, &(uint32_t){0}), -EAGAIN);
	/* an emptied slot answers; a closed one cannot say */
	view_write_begin(&w, slot);
	view_remove(&w, slot, 0, UINT64_MAX);
	view_write_end(&w, slot);
	cr_assert_eq(view_find(&v, 7, 0, true, &m, &(uint32_t){0}), -ENOENT);
	cr_assert_eq(w.nr_entries, 0);
	view_slot_close(&w, slot);
	cr_assert_eq(view_find(&v, 7, 0, true, &m, &(uint32_t){0}), -EAGAIN);
	cr_assert_eq(w.nr_free, w.nr_chunks, "every chunk back");
	view_writer_destroy(&w);
}

Test(view, full_turns_off)
{
	struct view_writer w;
	struct view_reader v;
	struct ioasid_mapping m = { .size = sizeof(m), .length = PG };
	int slot, r = 0;
	uint32_t i;

	cr_assert_eq(view_writer_create(&w, 1, 200, why, sizeof(why)), 0);
	reader_for(&w, &v);
	slot = view_slot_open(&w, 1);
	cr_assert_eq(view_slot_open(&w, 2), -ENOSPC, "one slot only");
	view_write_begin(&w, slot);
	for (i = 0; i < 100000 && r == 0; i++) {
		m.iova = i * 2 * PG;
		r = view_insert(&w, slot, &m);
	}
	cr_assert_eq(r, -ENOSPC);
	cr_assert_eq(i - 1, 200, "held %u", i - 1);
	view_slot_off(&w, slot);
	view_write_end(&w, slot);
	/* off: the reader asks the daemon, for every address */
	cr_assert_eq(view_find(&v, 1, 0, false, &m, &(uint32_t){0}), -EAGAIN);
	cr_assert_eq(view_find(&v, 1, 1ULL << 40, true, &m, &(uint32_t){0}),
		     -EAGAIN);
	view_writer_destroy(&w);
}

/* What the client gets cannot be written, grown or shrunk. */
Test(view, sealed)
{
	struct view_writer w;
	char byte = 1;
	int seals;

	cr_assert_eq(view_writer_create(&w, 2, 1000, why, sizeof(why)), 0);
	seals = fcntl(w.fd, F_GET_SEALS);
	cr_assert(seals & F_SEAL_SHRINK);
	cr_assert(seals & F_SEAL_GROW);
	cr_assert(seals & F_SEAL_FUTURE_WRITE);
	cr_assert(seals & F_SEAL_SEAL);
	cr_assert_eq(mmap(NULL, w.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			  w.fd, 0), MAP_FAILED);
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(pwrite(w.fd, &byte, 1, 0), -1);
	cr_assert_eq(ftruncate(w.fd, 4096), -1);
	cr_assert_eq(fcntl(w.fd, F_ADD_SEALS, 0), -1, "sealed for good");
	{
		void *ro = mmap(NULL, w.size, PROT_READ, MAP_SHARED, w.fd, 0);

		cr_assert_neq(ro, MAP_FAILED);
		cr_assert_eq(mprotect(ro, 4096, PROT_READ | PROT_WRITE), -1,
			     "no way to make it writable");
		munmap(ro, w.size);
	}
	view_writer_destroy(&w);
}

Test(view, bad_headers)
{
	struct view_writer w;
	struct view_reader v;
	struct view_header h;
	unsigned char *copy;

	cr_assert_eq(view_writer_create(&w, 2, 1000, why, sizeof(why)), 0);
	copy = malloc(w.size);
	memcpy(copy, w.base, w.size);
	cr_assert_eq(view_reader_init(&v, copy, 100, why, sizeof(why)),
		     -EPROTO);
	cr_assert_eq(view_reader_init(&v, copy, w.size - 1, why,
				      sizeof(why)), -EPROTO, "shorter");
	memcpy(&h, copy, sizeof(h));
	((struct view_header *)copy)->nr_chunks = UINT32_MAX;
	cr_assert_eq(view_reader_init(&v, copy, w.size, why, sizeof(why)),
		     -EPROTO);
	memcpy(copy, &h, sizeof(h));
	((struct view_header *)copy)->magic = 0;
	cr_assert_eq(view_reader_init(&v, copy, w.size, why, sizeof(why)),
		     -EPROTO);
	memcpy(copy, &h, sizeof(h));
	cr_assert_eq(view_reader_init(&v, copy, w.size, why, sizeof(why)), 0);
	free(copy);
	view_writer_destroy(&w);
}

/*
 * A hostile or broken daemon: every word of the slots, indexes and
 * chunks may be anything.  The reader answers or refuses, and never
 * reads outside the view (a PROT_NONE page follows it).
 */
Test(view, corrupt)
{
	struct view_writer w;
	struct view_reader v;
	struct ioasid_mapping m;
	unsigned char *area, *copy;
	size_t size;
	int slot;

	srand(7);
	cr_assert_eq(view_writer_create(&w, 4, 5000, why, sizeof(why)), 0);
	for (uint32_t s = 1; s <= 3; s++) {
		slot = view_slot_open(&w, s);
		view_write_begin(&w, slot);
		for (uint32_t i = 0; i < 1500; i++) {
			m = (struct ioasid_mapping){ .size = sizeof(m),
				.iova = i * 3 * PG, .length = PG, .flags = 1 };
			cr_assert_eq(view_insert(&w, slot, &m), 0);
		}
		view_write_end(&w, slot);
	}
	size = w.size;
	area = mmap(NULL, size + PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	cr_assert_neq(area, MAP_FAILED);
	copy = mmap(area, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(copy, area);
	for (int round = 0; round < 300; round++) {
		uint32_t hint = (uint32_t)rand();	/* any value is safe */

		memcpy(copy, w.base, size);
		cr_assert_eq(view_reader_init(&v, copy, size, why,
					      sizeof(why)), 0);
		for (int k = 0; k < 1 + rand() % 64; k++) {
			/* a random word: in the slots half the time */
			size_t off = rand() % 2 ?
				VIEW_HEADER_SIZE + (size_t)rand() % (4 * 64) :
				VIEW_HEADER_SIZE + (size_t)rand() %
				(size - VIEW_HEADER_SIZE - 8);
			uint64_t val = rand() % 3 ? (uint64_t)rand() :
				       (rand() % 2 ? UINT64_MAX : 0);

			memcpy(copy + off, &val, rand() % 2 ? 4 : 8);
		}
		for (int q = 0; q < 200; q++) {
			uint64_t iova = rand() % 3 ?
				(uint64_t)(rand() % 5000) * PG :
				(uint64_t)rand() << 32;
			int ret = view_find(&v, 1 + rand() % 4, iova,
					    rand() % 2, &m, &hint);

			cr_assert(ret == 0 || ret == -ENOENT ||
				  ret == -EAGAIN || ret == -EPROTO,
				  "returned %d", ret);
		}
	}
	munmap(area, size + PG);
	view_writer_destroy(&w);
}

/* ---- one writer, two readers ------------------------------------------- */

#define ANCHORS		400
#define ANCHOR_GAP	10u		/* pages between anchors */

struct race {
	struct view_writer w;
	struct view_reader v;
	int slot;
	int done;			/* atomic */
	unsigned long wrong;		/* atomic */
};

static struct ioasid_mapping anchor(uint32_t k)
{
	return (struct ioasid_mapping){
		.size = sizeof(struct ioasid_mapping), .flags = 3,
		.iova = k * ANCHOR_GAP * PG, .length = PG, .offset = k * PG,
		.file_id = k + 1,
	};
}

static void *race_writer(void *p)
{
	struct race *r = p;
	unsigned int seed = 5;

	for (int round = 0; round < 20000; round++) {
		/* a run of pages between two anchors, there and gone */
		uint32_t k = (uint32_t)rand_r(&seed) % ANCHORS;
		uint32_t n = 1 + (uint32_t)rand_r(&seed) % (ANCHOR_GAP - 1);
		struct ioasid_mapping m = anchor(k);

		m.iova += PG;
		m.length = n * PG;
		m.file_id = 0;
		view_write_begin(&r->w, r->slot);
		/* what an earlier round left there first: no overlaps */
		view_remove(&r->w, r->slot, m.iova, m.iova + ANCHOR_GAP * PG -
			    PG - 1);
		if (view_insert(&r->w, r->slot, &m) < 0)
			__atomic_fetch_add(&r->wrong, 1, __ATOMIC_RELAXED);
		view_write_end(&r->w, r->slot);
		if (rand_r(&seed) % 3) {
			view_write_begin(&r->w, r->slot);
			view_remove(&r->w, r->slot, m.iova,
				    m.iova + m.length - 1);
			view_write_end(&r->w, r->slot);
		}
	}
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *race_reader(void *p)
{
	struct race *r = p;
	unsigned int seed = (unsigned int)(uintptr_t)&seed;
	uint32_t hint = 0;

	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
		uint32_t k = (uint32_t)rand_r(&seed) % ANCHORS;
		struct ioasid_mapping m, want = anchor(k);
		int ret = view_find(&r->v, 9, want.iova + 100, false, &m,
				    &hint);

		/* found and right, or (rarely) "ask the daemon" */
		if (ret == -EAGAIN)
			continue;
		if (ret != 0 || memcmp(&m, &want, sizeof(m)))
			__atomic_fetch_add(&r->wrong, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(view, seqcount_under_a_busy_writer)
{
	static struct race r;
	struct ioasid_mapping m;
	pthread_t wt, rt[2];

	cr_assert_eq(view_writer_create(&r.w, 2, 20000, why, sizeof(why)),
		     0);
	cr_assert_eq(view_reader_init(&r.v, r.w.base, r.w.size, why,
				      sizeof(why)), 0);
	r.slot = view_slot_open(&r.w, 9);
	view_write_begin(&r.w, r.slot);
	for (uint32_t k = 0; k < ANCHORS; k++) {
		m = anchor(k);
		cr_assert_eq(view_insert(&r.w, r.slot, &m), 0);
	}
	view_write_end(&r.w, r.slot);
	cr_assert_eq(pthread_create(&rt[0], NULL, race_reader, &r), 0);
	cr_assert_eq(pthread_create(&rt[1], NULL, race_reader, &r), 0);
	cr_assert_eq(pthread_create(&wt, NULL, race_writer, &r), 0);
	pthread_join(wt, NULL);
	pthread_join(rt[0], NULL);
	pthread_join(rt[1], NULL);
	cr_assert_eq(r.wrong, 0, "%lu wrong answers", r.wrong);
	/* quiet again: every anchor is found */
	for (uint32_t k = 0; k < ANCHORS; k++) {
		struct ioasid_mapping want = anchor(k);

		cr_assert_eq(view_find(&r.v, 9, want.iova, false, &m,
				       &(uint32_t){0}), 0);
		cr_assert_eq(memcmp(&m, &want, sizeof(m)), 0);
	}
	view_writer_destroy(&r.w);
}
