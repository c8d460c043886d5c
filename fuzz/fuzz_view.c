/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: the shared view (libioasid/proto/view.c).
 *
 * The input drives a writer (inserts and removes in up to four slots)
 * and a reader of a private copy of the view, which the input may also
 * scribble on, as a hostile daemon could.  The copy is mapped in front of
 * a PROT_NONE page, so a read past the view faults.  Oracles: the reader
 * never returns anything but 0, -ENOENT, -EAGAIN or -EPROTO; while the
 * copy is intact, its answers are those of a plain list of the entries.
 *
 * Input: one byte (number of slots - 1, low two bits), then records of
 * nine bytes, an opcode and a little-endian u64 argument:
 *   op % 4 == 0  insert [arg & ~0xfff, + ((arg & 0xf) + 1) pages) into
 *                slot (op >> 2) % slots, if it overlaps nothing there
 *   op % 4 == 1  remove that range from that slot
 *   op % 4 == 2  write the argument's low 4 (op & 4) or 8 bytes at byte
 *                (arg >> 32) of the copy: the copy is now corrupt
 *   op % 4 == 3  look up arg in IOAS (op >> 3) % 5 (slot s holds IOAS
 *                s + 1), the next mapping when op & 4
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "proto/view.h"

#define PG		4096ULL
#define MAX_ENTRIES	256
#define MAX_SLOTS	4

struct list {
	struct ioasid_mapping m[MAX_ENTRIES];
	uint32_t n;
};

static uint64_t last_of(const struct ioasid_mapping *m)
{
	return m->iova + m->length - 1;
}

static bool overlaps(const struct list *l, uint64_t lo, uint64_t last)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->m[i].iova <= last && last_of(&l->m[i]) >= lo)
			return true;
	return false;
}

static void list_remove(struct list *l, uint64_t lo, uint64_t last)
{
	uint32_t out = 0;

	for (uint32_t i = 0; i < l->n; i++)
		if (!(l->m[i].iova <= last && last_of(&l->m[i]) >= lo))
			l->m[out++] = l->m[i];
	l->n = out;
}

/* The list's answer: 0 with *m, or -ENOENT. */
static int list_find(const struct list *l, uint64_t iova, bool next,
		     struct ioasid_mapping *m)
{
	const struct ioasid_mapping *best = NULL;

	for (uint32_t i = 0; i < l->n; i++) {
		const struct ioasid_mapping *e = &l->m[i];

		if (next ? last_of(e) >= iova && (!best || e->iova < best->iova)
			 : e->iova <= iova && iova <= last_of(e))
			best = e;
	}
	if (!best)
		return -ENOENT;
	*m = *best;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct list lists[MAX_SLOTS];
	struct view_writer w;
	struct view_reader v;
	unsigned char *area, *copy;
	char why[128];
	uint32_t nslots, hint = 0;
	int slots[MAX_SLOTS];
	bool stale = true, corrupt = false;
	size_t pos = 1;

	if (size < 1)
		return 0;
	nslots = (data[0] & 3) + 1;
	if (view_writer_create(&w, nslots, MAX_ENTRIES, why, sizeof(why)) < 0)
		abort();
	for (uint32_t s = 0; s < nslots; s++) {
		slots[s] = view_slot_open(&w, s + 1);
		lists[s].n = 0;
		if (slots[s] < 0)
			abort();
	}
	area = mmap(NULL, w.size + PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	if (area == MAP_FAILED)
		abort();
	copy = mmap(area, w.size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (copy != area)
		abort();
	while (pos + 9 <= size) {
		uint8_t op = data[pos];
		uint64_t arg;
		uint32_t s = (op >> 2) % nslots;
		uint64_t lo, last;

		memcpy(&arg, data + pos + 1, 8);
		pos += 9;
		lo = arg & ~(PG - 1);
		last = lo + ((arg & 0xf) + 1) * PG - 1;
		if (last < lo)
			last = UINT64_MAX;
		switch (op % 4) {
		case 0: {
			struct ioasid_mapping m = {
				.size = sizeof(m), .iova = lo,
				.length = last - lo + 1, .offset = arg >> 20,
				.file_id = op, .flags = 1,
			};

			if (!m.length || overlaps(&lists[s], lo, last) ||
			    lists[s].n == MAX_ENTRIES)
				break;
			view_write_begin(&w, slots[s]);
			if (view_insert(&w, slots[s], &m) == 0)
				lists[s].m[lists[s].n++] = m;
			view_write_end(&w, slots[s]);
			stale = true;
			break;
		}
		case 1:
			view_write_begin(&w, slots[s]);
			view_remove(&w, slots[s], lo, last);
			view_write_end(&w, slots[s]);
			list_remove(&lists[s], lo, last);
			stale = true;
			break;
		case 2:
			if (stale) {
				memcpy(copy, w.base, w.size);
				stale = false;
			}
			memcpy(copy + (arg >> 32) % (w.size - 7), &arg,
			       op & 4 ? 4 : 8);
			corrupt = true;
			break;
		case 3: {
			uint32_t ioas = (op >> 3) % 5;
			bool next = op & 4;
			struct ioasid_mapping got, want;
			int r, rw;

			if (stale) {
				memcpy(copy, w.base, w.size);
				stale = false;
				corrupt = false;
			}
			/* the header too may be corrupt: init checks it */
			if (view_reader_init(&v, copy, w.size, why,
					     sizeof(why)) < 0)
				break;
			r = view_find(&v, ioas, arg, next, &got, &hint);
			if (r != 0 && r != -ENOENT && r != -EAGAIN &&
			    r != -EPROTO)
				abort();
			if (corrupt)
				break;
			if (!ioas || ioas > nslots) {
				if (r != -EAGAIN)
					abort();
				break;
			}
			rw = list_find(&lists[ioas - 1], arg, next, &want);
			if (r != rw || (r == 0 && memcmp(&got, &want,
							  sizeof(got))))
				abort();
			break;
		}
		}
	}
	munmap(area, w.size + PG);
	view_writer_destroy(&w);
	return 0;
}
