/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shared view: a read-only copy of a session's mappings that ioasidd
 * keeps in a sealed memfd and a client reads without a round trip
 * (ioasid_lookup(), ioasid_mapping_next()).
 *
 * One writer (the daemon, one thread), any number of readers (the client
 * process, any thread).  The daemon creates the memfd, maps it read-write,
 * and seals it (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
 * F_SEAL_SEAL) before passing it: the client can map it only read-only,
 * cannot write it, and cannot make it shorter under the daemon; nor can
 * the daemon make it shorter under the client (which checks the seals
 * before mapping it), so a read inside the size never faults.
 *
 * Layout (every offset follows from the three numbers in the header; the
 * reader recomputes them and checks they fit the file's size):
 *
 *   header      4 KiB: magic, version, nr_slots, idx_cap, nr_chunks
 *   slots       nr_slots x 64 bytes: one per IOAS (ioas_id, state,
 *               seqcount, number of index entries)
 *   indexes     nr_slots x idx_cap x 16 bytes: per slot, the sorted
 *               first IOVA of each chunk and the chunk's number
 *   chunks      nr_chunks x 2 KiB, shared by all slots: up to 63 sorted
 *               entries (iova, length, offset, file_id, flags)
 *
 * A two-level sorted array: lookups are two binary searches; an insert
 * moves at most one chunk's entries and, when a chunk splits, one slot's
 * index (appends at the right edge split without moving anything).
 *
 * Seqcount (per slot): the writer makes the count odd, changes the slot,
 * and makes it even again.  A reader takes the count, retries while it is
 * odd, reads, and retries if the count changed.  Every shared word is
 * stored with release and loaded with acquire ordering (no fences), so a
 * reader that saw any new word sees the count changed.  Every word is
 * read once, and every index and count is checked against the sizes the
 * reader computed itself before it is used, so a torn read or a corrupt
 * view costs a retry or an error, never a read outside the mapping.
 * After VIEW_MAX_RETRIES torn reads the reader gives up (-EAGAIN) and the
 * caller asks the daemon instead.
 */
#ifndef IOASID_PROTO_VIEW_H
#define IOASID_PROTO_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ioasid/ioasid.h>

#define VIEW_MAGIC		0x57564f49u	/* "IOVW" */
#define VIEW_VERSION		1u
#define VIEW_HEADER_SIZE	4096u
#define VIEW_SLOT_SIZE		64u
#define VIEW_INDEX_SIZE		16u
#define VIEW_CHUNK_SIZE		2048u
#define VIEW_CHUNK_ENTRIES	63u
#define VIEW_MAX_RETRIES	64u

/* What a reader accepts (a larger header is a corrupt one). */
#define VIEW_MAX_SLOTS		1024u
#define VIEW_MAX_IDX_CAP	(1u << 20)
#define VIEW_MAX_CHUNKS		(1u << 22)

/* Slot states. */
enum {
	VIEW_SLOT_FREE	= 0,
	VIEW_SLOT_ON	= 1,	/* complete: a miss is an answer */
	VIEW_SLOT_OFF	= 2,	/* did not fit: ask the daemon */
};

struct view_header {
	uint32_t magic;
	uint32_t version;
	uint32_t nr_slots;
	uint32_t idx_cap;	/* index entries per slot */
	uint32_t nr_chunks;
	uint32_t chunk_entries;	/* VIEW_CHUNK_ENTRIES */
	uint64_t size;		/* bytes, as the writer made it */
};

struct view_slot {
	uint32_t seq;
	uint32_t ioas_id;
	uint32_t state;
	uint32_t nr_index;
	uint64_t nr_entries;
	uint64_t gen;		/* changes of this slot, for callers */
	uint64_t reserved[4];
};

struct view_index {
	uint64_t first;		/* IOVA of the chunk's first entry */
	uint32_t chunk;
	uint32_t reserved;
};

struct view_entry {
	uint64_t iova;
	uint64_t length;
	uint64_t offset;
	uint32_t file_id;
	uint32_t flags;		/* struct ioasid_mapping's */
};

struct view_chunk {
	uint32_t count;
	uint32_t reserved[7];
	struct view_entry e[VIEW_CHUNK_ENTRIES];
};

_Static_assert(sizeof(struct view_header) <= VIEW_HEADER_SIZE, "header");
_Static_assert(sizeof(struct view_slot) == VIEW_SLOT_SIZE, "slot");
_Static_assert(sizeof(struct view_index) == VIEW_INDEX_SIZE, "index");
_Static_assert(sizeof(struct view_chunk) == VIEW_CHUNK_SIZE, "chunk");

/* Bytes of a view with these parameters (0 if they are out of range). */
uint64_t view_size(uint32_t nr_slots, uint32_t idx_cap, uint32_t nr_chunks);

/* ---- reader (the client) -------------------------------------------------- */

struct view_reader {
	const unsigned char *base;
	size_t size;
	uint32_t nr_slots, idx_cap, nr_chunks;
	uint64_t slots_off, index_off, chunks_off;
};

/*
 * Check the header of @size bytes at @base and remember the layout.
 * 0, or -EPROTO (not a view this reader understands, or larger than
 * @size) with the reason in @why.
 */
int view_reader_init(struct view_reader *v, const void *base, size_t size,
		     char *why, size_t whylen);

/*
 * The mapping of IOAS @ioas_id containing @iova (@next false), or the
 * first that ends at or after it (@next true).  0 with *@m filled;
 * -ENOENT: the view is complete for that IOAS and has none; -EAGAIN: the
 * view cannot say (no slot for the IOAS, the slot is off, or the writer
 * kept changing it); -EPROTO: the view is inconsistent while no writer
 * touched it (a corrupt or hostile daemon).  *@slot_hint: where to look
 * first (updated; any value is safe).
 */
int view_find(const struct view_reader *v, uint32_t ioas_id, uint64_t iova,
	      bool next, struct ioasid_mapping *m, uint32_t *slot_hint);

/* ---- writer (ioasidd) ------------------------------------------------------ */

struct view_writer {
	unsigned char *base;	/* read-write mapping */
	size_t size;
	int fd;			/* the sealed memfd */
	uint32_t nr_slots, idx_cap, nr_chunks;
	uint64_t index_off, chunks_off;
	uint32_t *free_chunks;	/* private: never read from the file */
	uint32_t nr_free;
	uint64_t nr_entries, max_entries;
};

/*
 * A view for up to @max_entries mappings in up to @nr_slots IOASes.
 * 0 or a negative errno with @why set (no memfd, no sealing).
 */
int view_writer_create(struct view_writer *w, uint32_t nr_slots,
		       uint64_t max_entries, char *why, size_t whylen);
void view_writer_destroy(struct view_writer *w);

/* The slot of @ioas_id, or -1. */
int view_slot_find(const struct view_writer *w, uint32_t ioas_id);
/* A free slot, now ON and empty for @ioas_id; -ENOSPC when none. */
int view_slot_open(struct view_writer *w, uint32_t ioas_id);
/* Empty the slot and free it (readers then ask the daemon). */
void view_slot_close(struct view_writer *w, int slot);

/* Every change between these two (per slot; not nested). */
void view_write_begin(struct view_writer *w, int slot);
void view_write_end(struct view_writer *w, int slot);

/* Inside a write: empty the slot; it stays OFF (readers ask the daemon). */
void view_slot_off(struct view_writer *w, int slot);
/* Inside a write: add @m (it overlaps no entry); -ENOSPC: no room. */
int view_insert(struct view_writer *w, int slot, const struct ioasid_mapping *m);
/* Inside a write: drop every entry overlapping [@lo, @last]. */
void view_remove(struct view_writer *w, int slot, uint64_t lo, uint64_t last);
/*
 * Widen [*@lo, *@last] to cover every entry overlapping it; true if it
 * changed.
 */
bool view_widen(const struct view_writer *w, int slot, uint64_t *lo,
		uint64_t *last);
/* The slot's state (VIEW_SLOT_*). */
uint32_t view_slot_state(const struct view_writer *w, int slot);

#endif
