/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shared view of a session's mappings: layout, reader, writer.
 * The protocol is described in view.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/view.h"
#include "util/macros.h"

/*
 * Every shared word: read with acquire, written with release.  That is
 * the seqcount's ordering without fences (which ThreadSanitizer cannot
 * follow): a reader that sees a word the writer stored after making the
 * count odd sees that count too (the release store carries it), and its
 * second load of the count comes after every data load; on x86 both are
 * plain moves.
 */
#define LD(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ST(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* Offsets of the three regions; false if the parameters are too large. */
static bool layout(uint32_t nr_slots, uint32_t idx_cap, uint32_t nr_chunks,
		   uint64_t *slots, uint64_t *index, uint64_t *chunks,
		   uint64_t *size)
{
	if (!nr_slots || nr_slots > VIEW_MAX_SLOTS || !idx_cap ||
	    idx_cap > VIEW_MAX_IDX_CAP || !nr_chunks ||
	    nr_chunks > VIEW_MAX_CHUNKS)
		return false;
	/* bounded above: no product below can overflow 64 bits */
	*slots = VIEW_HEADER_SIZE;
	*index = align_up(*slots + (uint64_t)nr_slots * VIEW_SLOT_SIZE, 4096);
	*chunks = align_up(*index + (uint64_t)nr_slots * idx_cap *
			   VIEW_INDEX_SIZE, 4096);
	*size = *chunks + (uint64_t)nr_chunks * VIEW_CHUNK_SIZE;
	return true;
}

uint64_t view_size(uint32_t nr_slots, uint32_t idx_cap, uint32_t nr_chunks)
{
	uint64_t s, i, c, size;

	return layout(nr_slots, idx_cap, nr_chunks, &s, &i, &c, &size) ?
	       size : 0;
}

/* ---- reader ---------------------------------------------------------------- */

int view_reader_init(struct view_reader *v, const void *base, size_t size,
		     char *why, size_t whylen)
{
	const struct view_header *h = base;
	uint64_t total;

	memset(v, 0, sizeof(*v));
	if (size < VIEW_HEADER_SIZE) {
		snprintf(why, whylen, "the view is %zu bytes, less than its "
			 "header", size);
		return -EPROTO;
	}
	if (LD(&h->magic) != VIEW_MAGIC || LD(&h->version) != VIEW_VERSION ||
	    LD(&h->chunk_entries) != VIEW_CHUNK_ENTRIES) {
		snprintf(why, whylen, "not a version %u view", VIEW_VERSION);
		return -EPROTO;
	}
	v->nr_slots = LD(&h->nr_slots);
	v->idx_cap = LD(&h->idx_cap);
	v->nr_chunks = LD(&h->nr_chunks);
	if (!layout(v->nr_slots, v->idx_cap, v->nr_chunks, &v->slots_off,
		    &v->index_off, &v->chunks_off, &total) || total > size) {
		snprintf(why, whylen, "the view's layout (%u slots, %u index "
			 "entries, %u chunks) does not fit its %zu bytes",
			 v->nr_slots, v->idx_cap, v->nr_chunks, size);
		memset(v, 0, sizeof(*v));
		return -EPROTO;
	}
	v->base = base;
	v->size = size;
	return 0;
}

static const struct view_slot *rslot(const struct view_reader *v, uint32_t i)
{
	return (const void *)(v->base + v->slots_off +
			      (uint64_t)i * VIEW_SLOT_SIZE);
}

static const struct view_index *ridx(const struct view_reader *v,
				       uint32_t slot)
{
	return (const void *)(v->base + v->index_off +
			      (uint64_t)slot * v->idx_cap * VIEW_INDEX_SIZE);
}

/* Chunk @c, or NULL when @c is out of range. */
static const struct view_chunk *rchunk(const struct view_reader *v,
				       uint32_t c)
{
	if (c >= v->nr_chunks)
		return NULL;
	return (const void *)(v->base + v->chunks_off +
			      (uint64_t)c * VIEW_CHUNK_SIZE);
}

static void read_entry(const struct view_entry *e, struct ioasid_mapping *m)
{
	*m = (struct ioasid_mapping){
		.size = sizeof(*m),
		.iova = LD(&e->iova),
		.length = LD(&e->length),
		.offset = LD(&e->offset),
		.file_id = LD(&e->file_id),
		.flags = LD(&e->flags),
	};
}

enum { FOUND, MISSING, INCONSISTENT };

/* A chunk's count, or -1 when it cannot be one (empty or too large). */
static int rcount(const struct view_chunk *c)
{
	uint32_t n = c ? LD(&c->count) : 0;

	return n && n <= VIEW_CHUNK_ENTRIES ? (int)n : -1;
}

/* Last position in [0, n) whose key is <= @iova, or -1 (keys via @key). */
#define LAST_LE(n, key, iova) ({					\
	uint32_t _lo = 0, _hi = (n);					\
	while (_lo < _hi) {						\
		uint32_t _mid = _lo + (_hi - _lo) / 2;			\
		if ((key(_mid)) <= (iova))				\
			_lo = _mid + 1;					\
		else							\
			_hi = _mid;					\
	}								\
	(int64_t)_lo - 1;						\
})

/*
 * One attempt on slot @s (its count read as even).  Everything read is
 * checked before it is used as an index; a result is only a candidate
 * until the caller checked the seqcount.
 */
static int search(const struct view_reader *v, uint32_t s, uint64_t iova,
		  bool next, struct ioasid_mapping *m)
{
	const struct view_index *idx = ridx(v, s);
	const struct view_chunk *c;
	uint32_t n = LD(&rslot(v, s)->nr_index);
	int64_t k, j;
	int cnt;

	if (n > v->idx_cap)
		return INCONSISTENT;
	if (!n)
		return MISSING;
#define IDX_KEY(i) LD(&idx[i].first)
	k = LAST_LE(n, IDX_KEY, iova);
#undef IDX_KEY
	if (k < 0) {			/* before the first chunk */
		if (!next)
			return MISSING;
		c = rchunk(v, LD(&idx[0].chunk));
		if (rcount(c) < 0)
			return INCONSISTENT;
		read_entry(&c->e[0], m);
		return FOUND;
	}
	c = rchunk(v, LD(&idx[k].chunk));
	cnt = rcount(c);
	if (cnt < 0)
		return INCONSISTENT;
#define ENT_KEY(i) LD(&c->e[i].iova)
	j = LAST_LE((uint32_t)cnt, ENT_KEY, iova);
#undef ENT_KEY
	if (j >= 0) {
		read_entry(&c->e[j], m);
		if (m->length && iova - m->iova < m->length)
			return FOUND;
	}
	if (!next)
		return MISSING;
	if (j + 1 < cnt) {
		read_entry(&c->e[j + 1], m);
		return FOUND;
	}
	if ((uint64_t)k + 1 >= n)
		return MISSING;
	c = rchunk(v, LD(&idx[k + 1].chunk));
	if (rcount(c) < 0)
		return INCONSISTENT;
	read_entry(&c->e[0], m);
	return FOUND;
}

/* What a found entry must be to be an answer to the question. */
static bool plausible(const struct ioasid_mapping *m, uint64_t iova,
		      bool next)
{
	uint64_t last = m->iova + m->length - 1;

	if (!m->length || last < m->iova)
		return false;
	return next ? last >= iova : m->iova <= iova && iova <= last;
}

int view_find(const struct view_reader *v, uint32_t ioas_id, uint64_t iova,
	      bool next, struct ioasid_mapping *m, uint32_t *slot_hint)
{
	uint32_t tries = 0;

	if (!v->base || !ioas_id)
		return -EAGAIN;
	while (tries < VIEW_MAX_RETRIES) {
		bool busy = false;

		for (uint32_t i = 0; i < v->nr_slots; i++) {
			uint32_t s = (*slot_hint + i) % v->nr_slots;
			const struct view_slot *sl = rslot(v, s);
			uint32_t seq, state;
			int r;

			seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
			if (seq & 1) {
				busy = true;
				continue;
			}
			if (LD(&sl->ioas_id) != ioas_id)
				continue;
			state = LD(&sl->state);
			r = state == VIEW_SLOT_ON ?
			    search(v, s, iova, next, m) : MISSING;
			if (LD(&sl->seq) != seq) {
				busy = true;
				break;
			}
			if (state != VIEW_SLOT_ON)
				return state == VIEW_SLOT_OFF ? -EAGAIN :
				       -EPROTO;
			*slot_hint = s;
			if (r == INCONSISTENT ||
			    (r == FOUND && !plausible(m, iova, next)))
				return -EPROTO;
			return r == FOUND ? 0 : -ENOENT;
		}
		if (!busy)
			return -EAGAIN;		/* no slot for this IOAS */
		tries++;
	}
	return -EAGAIN;
}

/* ---- writer ---------------------------------------------------------------- */

static struct view_slot *wslot(const struct view_writer *w, int i)
{
	return (void *)(w->base + VIEW_HEADER_SIZE +
			(uint64_t)i * VIEW_SLOT_SIZE);
}

static struct view_index *windex(const struct view_writer *w, int slot)
{
	return (void *)(w->base + w->index_off +
			(uint64_t)slot * w->idx_cap * VIEW_INDEX_SIZE);
}

static struct view_chunk *wchunk(const struct view_writer *w, uint32_t c)
{
	return (void *)(w->base + w->chunks_off + (uint64_t)c * VIEW_CHUNK_SIZE);
}

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)

int view_writer_create(struct view_writer *w, uint32_t nr_slots,
		       uint64_t max_entries, char *why, size_t whylen)
{
	struct view_header *h;
	uint64_t size, chunks, slots_off;
	uint32_t idx_cap;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if (nr_slots > VIEW_MAX_SLOTS)
		nr_slots = VIEW_MAX_SLOTS;
	/* chunks split half full: room for every entry at half density */
	chunks = max_entries / (VIEW_CHUNK_ENTRIES / 2) + 2 * nr_slots;
	if (chunks > VIEW_MAX_CHUNKS)
		chunks = VIEW_MAX_CHUNKS;
	idx_cap = (uint32_t)min_t(uint64_t, chunks, VIEW_MAX_IDX_CAP);
	if (!layout(nr_slots, idx_cap, (uint32_t)chunks, &slots_off,
		    &w->index_off, &w->chunks_off, &size)) {
		snprintf(why, whylen, "no view of %u IOASes", nr_slots);
		return -EINVAL;
	}
	w->free_chunks = malloc(chunks * sizeof(*w->free_chunks));
	if (!w->free_chunks) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	w->fd = memfd_create("ioasid-view", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (w->fd < 0 || ftruncate(w->fd, (off_t)size) < 0) {
		int e = errno;

		snprintf(why, whylen, "cannot create the view's memfd: %s",
			 strerror(e));
		view_writer_destroy(w);
		return -e;
	}
	w->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd,
		       0);
	if (w->base == MAP_FAILED) {
		int e = errno;

		w->base = NULL;
		snprintf(why, whylen, "cannot map the view: %s", strerror(e));
		view_writer_destroy(w);
		return -e;
	}
	/* after our writable mapping: nobody else gets one */
	if (fcntl(w->fd, F_ADD_SEALS, SEALS) < 0) {
		int e = errno;

		snprintf(why, whylen, "cannot seal the view: %s", strerror(e));
		view_writer_destroy(w);
		return -e;
	}
	w->size = size;
	w->nr_slots = nr_slots;
	w->idx_cap = idx_cap;
	w->nr_chunks = (uint32_t)chunks;
	w->max_entries = max_entries;
	for (uint32_t i = 0; i < w->nr_chunks; i++)	/* low chunks first */
		w->free_chunks[i] = w->nr_chunks - 1 - i;
	w->nr_free = w->nr_chunks;
	h = (void *)w->base;
	h->nr_slots = nr_slots;
	h->idx_cap = idx_cap;
	h->nr_chunks = w->nr_chunks;
	h->chunk_entries = VIEW_CHUNK_ENTRIES;
	h->size = size;
	h->version = VIEW_VERSION;
	__atomic_store_n(&h->magic, VIEW_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

void view_writer_destroy(struct view_writer *w)
{
	if (w->base)
		munmap(w->base, w->size ? w->size : 1);
	close_fd(w->fd);
	free(w->free_chunks);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

int view_slot_find(const struct view_writer *w, uint32_t ioas_id)
{
	if (!w->base || !ioas_id)
		return -1;
	for (uint32_t i = 0; i < w->nr_slots; i++)
		if (wslot(w, (int)i)->ioas_id == ioas_id &&
		    wslot(w, (int)i)->state != VIEW_SLOT_FREE)
			return (int)i;
	return -1;
}

uint32_t view_slot_state(const struct view_writer *w, int slot)
{
	return wslot(w, slot)->state;
}

void view_write_begin(struct view_writer *w, int slot)
{
	struct view_slot *s = wslot(w, slot);

	ST(&s->seq, s->seq + 1);	/* later stores are release: after it */
}

void view_write_end(struct view_writer *w, int slot)
{
	struct view_slot *s = wslot(w, slot);

	ST(&s->gen, s->gen + 1);
	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
}

static void free_chunk(struct view_writer *w, uint32_t c)
{
	w->free_chunks[w->nr_free++] = c;
}

/* Empty the slot's entries (inside a write). */
static void clear_slot(struct view_writer *w, int slot)
{
	struct view_slot *s = wslot(w, slot);
	struct view_index *idx = windex(w, slot);

	for (uint32_t i = 0; i < s->nr_index; i++)
		free_chunk(w, idx[i].chunk);
	w->nr_entries -= s->nr_entries;
	ST(&s->nr_index, 0);
	ST(&s->nr_entries, 0);
}

int view_slot_open(struct view_writer *w, uint32_t ioas_id)
{
	for (uint32_t i = 0; i < w->nr_slots; i++) {
		struct view_slot *s = wslot(w, (int)i);

		if (s->state != VIEW_SLOT_FREE)
			continue;
		view_write_begin(w, (int)i);
		ST(&s->ioas_id, ioas_id);
		ST(&s->nr_index, 0);
		ST(&s->nr_entries, 0);
		ST(&s->state, VIEW_SLOT_ON);
		view_write_end(w, (int)i);
		return (int)i;
	}
	return -ENOSPC;
}

void view_slot_close(struct view_writer *w, int slot)
{
	struct view_slot *s = wslot(w, slot);

	view_write_begin(w, slot);
	clear_slot(w, slot);
	ST(&s->state, VIEW_SLOT_FREE);
	ST(&s->ioas_id, 0);
	view_write_end(w, slot);
}

void view_slot_off(struct view_writer *w, int slot)
{
	clear_slot(w, slot);
	ST(&wslot(w, slot)->state, VIEW_SLOT_OFF);
}

static void put_entry(struct view_entry *e, const struct ioasid_mapping *m)
{
	ST(&e->iova, m->iova);
	ST(&e->length, m->length);
	ST(&e->offset, m->offset);
	ST(&e->file_id, m->file_id);
	ST(&e->flags, m->flags);
}

static void copy_entry(struct view_entry *dst, const struct view_entry *src)
{
	ST(&dst->iova, src->iova);
	ST(&dst->length, src->length);
	ST(&dst->offset, src->offset);
	ST(&dst->file_id, src->file_id);
	ST(&dst->flags, src->flags);
}

/* Move entries [from, from + n) of @c to @to (either direction). */
static void move_entries(struct view_chunk *dst, uint32_t to,
			 const struct view_chunk *src, uint32_t from,
			 uint32_t n)
{
	if (dst == src && to > from) {
		for (uint32_t i = n; i-- > 0;)
			copy_entry(&dst->e[to + i], &src->e[from + i]);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		copy_entry(&dst->e[to + i], &src->e[from + i]);
}

static void move_index(struct view_index *idx, uint32_t to, uint32_t from,
		       uint32_t n)
{
	if (to > from) {
		for (uint32_t i = n; i-- > 0;) {
			ST(&idx[to + i].first, idx[from + i].first);
			ST(&idx[to + i].chunk, idx[from + i].chunk);
		}
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		ST(&idx[to + i].first, idx[from + i].first);
		ST(&idx[to + i].chunk, idx[from + i].chunk);
	}
}

/* Index position of the chunk that holds (or would hold) @iova. */
static uint32_t chunk_for(const struct view_index *idx, uint32_t n,
			  uint64_t iova)
{
#define KEY(i) idx[i].first
	int64_t k = LAST_LE(n, KEY, iova);
#undef KEY
	return k < 0 ? 0 : (uint32_t)k;
}

/* First position in @c whose entry starts after @iova. */
static uint32_t upper(const struct view_chunk *c, uint64_t iova)
{
#define KEY(i) c->e[i].iova
	return (uint32_t)(LAST_LE(c->count, KEY, iova) + 1);
#undef KEY
}

static void insert_at(struct view_chunk *c, uint32_t pos,
		      const struct ioasid_mapping *m)
{
	move_entries(c, pos + 1, c, pos, c->count - pos);
	put_entry(&c->e[pos], m);
	ST(&c->count, c->count + 1);
}

int view_insert(struct view_writer *w, int slot, const struct ioasid_mapping *m)
{
	struct view_slot *s = wslot(w, slot);
	struct view_index *idx = windex(w, slot);
	struct view_chunk *c, *c2;
	uint32_t n = s->nr_index, k, pos, c2no, half;

	if (w->nr_entries >= w->max_entries)
		return -ENOSPC;
	if (!n) {
		if (!w->nr_free)
			return -ENOSPC;
		c2no = w->free_chunks[--w->nr_free];
		c = wchunk(w, c2no);
		ST(&c->count, 0);
		insert_at(c, 0, m);
		ST(&idx[0].first, m->iova);
		ST(&idx[0].chunk, c2no);
		ST(&s->nr_index, 1);
		goto done;
	}
	k = chunk_for(idx, n, m->iova);
	c = wchunk(w, idx[k].chunk);
	pos = upper(c, m->iova);
	if (c->count < VIEW_CHUNK_ENTRIES) {
		insert_at(c, pos, m);
		if (pos == 0)
			ST(&idx[k].first, m->iova);
		goto done;
	}
	/* full: split it */
	if (n >= w->idx_cap || !w->nr_free)
		return -ENOSPC;
	c2no = w->free_chunks[--w->nr_free];
	c2 = wchunk(w, c2no);
	ST(&c2->count, 0);
	if (k == n - 1 && pos == c->count) {
		insert_at(c2, 0, m);		/* appending: nothing moves */
	} else {
		half = VIEW_CHUNK_ENTRIES / 2;
		move_entries(c2, 0, c, half, c->count - half);
		ST(&c2->count, c->count - half);
		ST(&c->count, half);
		if (pos <= half) {
			insert_at(c, pos, m);
			if (pos == 0)
				ST(&idx[k].first, m->iova);
		} else {
			insert_at(c2, pos - half, m);
		}
	}
	move_index(idx, k + 2, k + 1, n - k - 1);
	ST(&idx[k + 1].first, c2->e[0].iova);
	ST(&idx[k + 1].chunk, c2no);
	ST(&s->nr_index, n + 1);
done:
	w->nr_entries++;
	ST(&s->nr_entries, s->nr_entries + 1);
	return 0;
}

static uint64_t entry_last(const struct view_entry *e)
{
	return e->iova + e->length - 1;
}

/* Entries of @c overlapping [lo, last]: [*a, *b). */
static void overlapping(const struct view_chunk *c, uint64_t lo,
			uint64_t last, uint32_t *a, uint32_t *b)
{
	uint32_t i = 0;

	/* entries are disjoint and sorted: so are their ends */
	while (i < c->count && entry_last(&c->e[i]) < lo)
		i++;
	*a = i;
	while (i < c->count && c->e[i].iova <= last)
		i++;
	*b = i;
}

void view_remove(struct view_writer *w, int slot, uint64_t lo, uint64_t last)
{
	struct view_slot *s = wslot(w, slot);
	struct view_index *idx = windex(w, slot);
	uint32_t n = s->nr_index, out, j, a, b;
	uint64_t removed = 0;

	if (!n || lo > last)
		return;
	j = out = chunk_for(idx, n, lo);
	for (; j < n; j++) {
		struct view_chunk *c = wchunk(w, idx[j].chunk);

		if (idx[j].first > last)
			break;
		overlapping(c, lo, last, &a, &b);
		if (a < b) {
			move_entries(c, a, c, b, c->count - b);
			ST(&c->count, c->count - (b - a));
			removed += b - a;
		}
		if (!c->count) {
			free_chunk(w, idx[j].chunk);
			continue;
		}
		ST(&idx[out].first, c->e[0].iova);
		ST(&idx[out].chunk, idx[j].chunk);
		out++;
	}
	if (out != j)
		move_index(idx, out, j, n - j);
	ST(&s->nr_index, out + (n - j));
	w->nr_entries -= removed;
	ST(&s->nr_entries, s->nr_entries - removed);
}

bool view_widen(const struct view_writer *w, int slot, uint64_t *lo,
		uint64_t *last)
{
	const struct view_slot *s = wslot(w, slot);
	const struct view_index *idx = windex(w, slot);
	uint32_t n = s->nr_index, j, a, b;
	bool changed = false;

	if (!n)
		return false;
	for (j = chunk_for(idx, n, *lo); j < n; j++) {
		const struct view_chunk *c = wchunk(w, idx[j].chunk);

		if (idx[j].first > *last)
			break;
		overlapping(c, *lo, *last, &a, &b);
		if (a == b)
			continue;
		if (c->e[a].iova < *lo) {
			*lo = c->e[a].iova;
			changed = true;
		}
		if (entry_last(&c->e[b - 1]) > *last) {
			*last = entry_last(&c->e[b - 1]);
			changed = true;
		}
	}
	return changed;
}
