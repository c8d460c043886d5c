/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backing files of an IOAS.
 *
 * The IOAS keeps its own reference (a dup of the caller's fd), one per
 * inode: thousands of mappings of one memfd hold one file_ref.  Each
 * mapping piece counts one use; the file is closed with the last piece.
 *
 * Accepted files (anything else is refused with a reason):
 *   memfd (tmpfs or hugetlbfs)  must carry F_SEAL_SHRINK, so it can never
 *                               shrink under a live mapping;
 *   other tmpfs / hugetlbfs     accepted; if truncated later, DMA to the
 *                               lost pages ends in fault records;
 *   guest_memfd                 shared ranges only (confidential guests).
 * A file sealed against writing (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE) is
 * mapped readable only: write() refuses, so must DMA (the kernel's
 * IOMMU_IOAS_MAP_FILE does not look at seals; the backends that map by
 * address map such a file PROT_READ, backends/filemap.c).  The seals are
 * read at every map and copy until they cannot change any more (F_SEAL_SEAL,
 * or a write seal seen): a seal added after a writable mapping leaves that
 * mapping (as it leaves mmap(2)'s writable mappings) but no new one is
 * writable.
 */
#ifndef IOASID_CORE_FILE_H
#define IOASID_CORE_FILE_H

#include <stdint.h>
#include <sys/types.h>

#include "util/hash.h"

#include "op/op.h"

struct file_key {
	uint64_t dev;
	uint64_t ino;
};

struct file_ref {
	struct file_key key;
	struct file_table *table;	/* the IOAS's table it lives in */
	uint32_t id;
	uint32_t kind;			/* enum ioasid_file_kind */
	int fd;				/* our own reference */
	int accmode;			/* O_RDONLY / O_WRONLY / O_RDWR */
	int seals;			/* last seen (file.c: file_seals()) */
	uint64_t size_floor;		/* with F_SEAL_SHRINK: size at least */
	uint64_t page_size;
	uint64_t uses;			/* mapping pieces */
	char name[IOASID_PATH_MAX];
	/* a backend's per-file state (sim: the file mapped in memory) */
	void *be_data;
	void (*be_release)(struct file_ref *file);
	UT_hash_handle hh;		/* by key */
	UT_hash_handle hh_id;		/* by id */
};

struct file_table {
	struct file_ref *by_key;
	struct file_ref *by_id;
	uint32_t next_id;
};

/*
 * Find or create the file_ref for @fd; checks kind, access against
 * @prot (open mode and write seals), alignment of offset/length to the
 * file's page size and that [offset, offset+length) is inside the file.
 * @known: what the caller knows for sure of @fd (op->fd_ident), or NULL.
 * Does not take a use.
 */
int file_lookup_or_add(struct file_table *t, int fd,
		       const struct ioasid_fd_ident *known, uint64_t offset,
		       uint64_t length, uint32_t prot, struct file_ref **file,
		       struct ioasid_op *op);
/*
 * -EACCES with a reason when @prot asks for writing and @file is sealed
 * against it; 0 otherwise.
 */
int file_check_write_seals(struct file_ref *file, uint32_t prot,
			   struct ioasid_op *op);
/* Current size of the file (it may have changed since mapping). */
int file_size(const struct file_ref *file, uint64_t *size);
void file_get(struct file_ref *file);
/* Drop a use; the last one removes the file from its table and closes it. */
void file_put(struct file_ref *file);
/* Free a file that never got a use (after a failed map). */
void file_drop_unused(struct file_ref *file);
/* The file_ref in @t for the same inode as @src (taken from another IOAS). */
int file_import(struct file_table *t, struct file_ref *src,
		struct file_ref **file, struct ioasid_op *op);
struct file_ref *file_find_id(struct file_table *t, uint32_t id);
/*
 * After an op that failed: give back the ids it took (@mark: next_id
 * before it), unless a file it made is still there.  A failed op then
 * leaves the counter as it found it, so replaying only the ops that
 * succeeded (the crash journal, a resumed call) gives every file the id
 * it had.
 */
void file_ids_rollback(struct file_table *t, uint32_t mark);
/* The counter where it is above every live file's id (a state image
 * carries it then), else 0. */
uint32_t file_ids_gap(const struct file_table *t);
/* Set the counter to @next: 0, or -EINVAL below a live file's id. */
int file_ids_set(struct file_table *t, uint32_t next);
void file_table_release(struct file_table *t);
void file_fill_info(const struct file_ref *file, struct ioasid_file_info *i);

#endif
