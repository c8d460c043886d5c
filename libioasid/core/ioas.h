/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * struct ioas: one I/O address space.
 *
 * The mapping bookkeeping (iova_tree) is the source of truth; the backend
 * mirrors it into hardware (be_ioas and its domains).  IOVA that mappings
 * may not use (outside the allowed ranges, reserved regions of attached
 * devices and IOMMUs, beyond the domains' address width) is kept in the
 * tree as BLOCKED areas, so the allocator skips it at no extra cost.
 *
 * Locking: every mutation runs under core->lock and takes ioas->lock for
 * writing around tree changes; ioas_lookup() and ioas_next() take only
 * ioas->lock for reading, so DMA threads and lookups run beside map/unmap.
 */
#ifndef IOASID_CORE_IOAS_H
#define IOASID_CORE_IOAS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/hash.h"

#include "core/file.h"
#include "op/op.h"

struct core;
struct session;
struct iova_tree;
struct be_ioas;
struct be_replay;
struct backend_ops;
struct sharedmap;

/* A set of IOVA ranges a device or IOMMU reserves in this IOAS. */
struct ioas_reservation {
	const void *owner;		/* the device that brought it */
	struct ioasid_iova_range *ranges;
	uint32_t nr;
	struct ioas_reservation *next;
};

struct fault_queue;

struct ioas {
	uint32_t id;
	struct core *core;
	struct session *owner;
	uint32_t flags;			/* enum ioasid_ioas_flags */
	uint32_t snoop_mode;		/* enum ioasid_snoop_mode */
	pthread_rwlock_t lock;
	struct iova_tree *tree;
	struct file_table files;
	struct be_ioas *be;
	/* allowed ranges (ALLOW_IOVAS); nr_allowed 0 means everything */
	struct ioasid_iova_range *allowed;
	uint32_t nr_allowed;
	struct ioas_reservation *reservations;
	/* the merged blocked set now in the tree */
	struct ioasid_iova_range *blocked;
	uint32_t nr_blocked;
	uint32_t nr_devices;
	uint32_t nr_pasids;		/* device PASIDs attached to it */
	uint32_t nr_domains;
	uint32_t nr_nested;		/* nested tables over it */
	uint32_t nr_viommus;		/* vIOMMUs over it */
	/* its fault queue (iopf.c), NULL; read by DMA: atomic */
	struct fault_queue *fq;
	/*
	 * Dirty tracking (domain.c): started, with the caller's fallback,
	 * and how many of its domains cannot track (with the fallback they
	 * report every mapped page as dirty).
	 */
	bool dirty_on;
	bool dirty_fallback;
	uint32_t nr_untracked;
	/* restricted IOAS: the shared pages (all others are private) */
	struct sharedmap *shared;
	/* monitoring: conversions done, DMA faults of its devices (atomic) */
	uint64_t nr_conversions;
	uint64_t nr_faults;
	UT_hash_handle hh;
};

int ioas_create(struct session *s, uint32_t flags, struct ioas **ioas,
		struct ioasid_op *op);
/* Tears down mappings and files; the caller checked nr_devices == 0. */
void ioas_destroy(struct ioas *ioas);

int ioas_map_file(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* MAP_FILE_ID: more of a file the IOAS holds, through its own reference. */
int ioas_map_file_id(struct session *s, struct ioas *ioas,
		     struct ioasid_op *op);
int ioas_map_user(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* Many ranges of one file (struct ioasid_map_entry), all or nothing. */
int ioas_map_batch(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int ioas_unmap(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/*
 * Set the bits of @bitmap (bit i = page @iova + i * 4 KiB) of every page
 * of [@iova, @iova + @length) that is mapped: what a domain without
 * dirty tracking reports under the fallback.  0 or -ENOMEM.
 */
int ioas_mark_mapped(struct ioas *ioas, uint64_t iova, uint64_t length,
		     uint64_t *bitmap);
int ioas_copy(struct ioas *dst, struct ioas *src, struct ioasid_op *op);
int ioas_iova_ranges(struct session *s, struct ioas *ioas,
		     struct ioasid_op *op);
int ioas_allow_iovas(struct session *s, struct ioas *ioas,
		     struct ioasid_op *op);
int ioas_lookup(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int ioas_next(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int ioas_file_info(struct session *s, struct ioas *ioas, struct ioasid_op *op);
void ioas_fill_info(struct ioas *ioas, struct ioasid_ioas_info *info);
int ioas_info(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* Only before the IOAS has domains: their coherency is fixed. */
int ioas_set_snoop(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* Just the counters, O(1): for daemon-wide status. */
void ioas_count(struct ioas *ioas, uint64_t *nr_mappings, uint64_t *bytes);

/*
 * Add (or with nr == 0, remove) the reserved ranges @owner brings.  Fails
 * with -EADDRINUSE, changing nothing, when a mapping lies in them.
 */
int ioas_set_reservation(struct ioas *ioas, const void *owner,
			 const struct ioasid_iova_range *ranges, uint32_t nr,
			 struct ioasid_op *op);

/*
 * Convert pages of a restricted IOAS to private (unreachable by DMA when
 * the call returns) or shared, for a batch of ranges; all or nothing.
 */
int ioas_convert(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* Conversion state of every restricted IOAS of @s, bytes (core->lock). */
uint64_t ioas_session_state_bytes(struct session *s);
/* Is @iova a private page of a restricted IOAS? */
bool ioas_is_private(struct ioas *ioas, uint64_t iova);

/* Internal to core/ioas*.c: how tree areas reach the backend. */
struct iova_area;
struct be_backing;
void ioas_area_backing(const struct iova_area *a, struct be_backing *b);
int ioas_map_visible(struct ioas *ioas, const struct iova_area *a);

/* A be_replay that walks this IOAS (for new domains). */
void ioas_replay(struct ioas *ioas, struct be_replay *replay);

#endif
