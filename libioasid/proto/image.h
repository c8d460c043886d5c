/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state image: a core's state as a sequence of records in a file
 * (a memfd), for a successor process to rebuild it (ioasid_ctx_export()
 * and ioasid_ctx_import() embedded, ioasidd's live upgrade).
 *
 * Layout (host byte order: an image never leaves its host):
 *
 *   struct image_header   64 bytes at offset 0
 *   records               from header_size to size, each a struct
 *                         image_record, then len payload bytes, padded
 *                         with zeros to 8 bytes
 *
 * The header says how many bytes are committed (size) and carries two
 * CRC-32Cs (util/crc32c.h): one of the header itself (crc field 0), one
 * of every record byte (records_crc, extended incrementally, so records
 * can be appended: image_writer_flush()).  Each record carries the CRC of
 * its payload too, so a reader can name the first bad one.
 *
 * Records (type; payload):
 *
 *   IMAGE_REC_CORE     the backend's URI ("sim", "sim:FILE"), NUL
 *                      ended: the core to create.  First, exactly once.
 *   IMAGE_REC_FD       struct image_fd: a descriptor the successor
 *                      inherited (its number) and the file it must be
 *                      (st_dev, st_ino); the n-th FD record is index n.
 *   IMAGE_REC_SESSION  struct image_session: the records up to the next
 *                      SESSION are this session's.
 *   IMAGE_REC_OP       struct image_op, then one request message of the
 *                      wire codec (proto/codec.h, the same strict parser
 *                      that reads the socket), whose FD_INDEX/FD_INDEX2
 *                      name the image_op's fd[0]/fd[1], indexes into the
 *                      FD records.  Replayed in order into the current
 *                      session; expect_id is the id the op created (a new
 *                      IOAS, device, VM, or the domain an attach made),
 *                      and the replay gives it that id again.
 *   IMAGE_REC_COUNTERS struct image_counters: an IOAS's monitoring
 *                      counters, after the ops that rebuilt it; since
 *                      version 3 a nested table's or vIOMMU's too (its
 *                      invalidations).
 *   IMAGE_REC_DIRTY    struct image_dirty, then nr_runs struct
 *                      ioasid_iova_range (version 5): a tracking domain's
 *                      dirty pages not read yet, on a backend whose bits
 *                      live in the process (the simulator), after the
 *                      DIRTY_START op of its IOAS; runs of 4 KiB pages in
 *                      IOVA order, 1 to IMAGE_DIRTY_MAX_RUNS a record.
 *   IMAGE_REC_NEXT_ID  u32: the core's id counter after everything.
 *   IMAGE_REC_KOBJ     struct image_kobj (kernel backends, iommufd): a
 *                      kernel object the successor adopts instead of
 *                      making it (op/op.h's ioasid_kobj, its descriptors
 *                      as FD record indexes): the session's iommufd right
 *                      after its SESSION record, else the object the next
 *                      OP record makes (IOAS, device, the attach's HWPT).
 *   0x100 - 0x1ff      ioasidd's own records (connections, tokens,
 *                      rings: ioasidd/upgrade.c).
 *   0x200 - 0x2ff      reserved for a journal of changes appended after
 *                      the image (IMAGE_REC_OP records appended the same
 *                      way replay in order too).
 *
 * Which ops describe a session (core_session_export(), core/core.c): per
 * session SUBSCRIBE; per IOAS, in id order, IOAS_ALLOC (its flags),
 * IOAS_SET_SNOOP, ALLOW_IOVAS; DEVICE_BIND per bound device; DEVICE_ATTACH
 * per device attached to an IOAS (domains in id order); MAP_FILE per
 * mapping piece (FIXED_IOVA); CONVERT (to shared) per restricted IOAS's
 * shared runs; DEVICE_PASID_ATTACH per PASID on an IOAS (expect_id its
 * domain; domains in id order); VIOMMU_ALLOC, VDEVICE_ALLOC, NESTED_ALLOC
 * and VIOMMU_NESTED_ALLOC in id order (each after what it needs);
 * NESTED_ATTACH per device on a nested table; DEVICE_PASID_ATTACH_NESTED
 * per PASID on one; VM_BIND, VM_SET_POLICY, DEVICE_SET_VM; then
 * FAULT_QUEUE_ALLOC per fault queue in id order (expect_id the queue;
 * FD_INDEX its eventfd; DATA its page requests and unread records,
 * core/iopf.c's struct carried_queue: the simulator's queues only); then
 * DIRTY_START per IOAS that tracks dirty pages, with its DIRTY records.
 * Reserved ranges come back with the attaches that brought them.
 *
 * Version rules: IMAGE_VERSION grows when a record changes meaning; a
 * reader refuses an image of a newer version (-EPROTONOSUPPORT) and reads
 * every older one it knows.  Readers refuse unknown record types below
 * 0x100 (-EBADMSG); each user says what it does with the ranges above.
 *
 * Reading is hostile by default: image_read() copies the file (nothing
 * can change under the parser), then checks magic, version, sizes, both
 * CRCs and every record's framing before the caller sees any record;
 * records are parsed by their readers with the codec's checks.
 */
#ifndef IOASID_PROTO_IMAGE_H
#define IOASID_PROTO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op/op.h"

#define IMAGE_MAGIC		"IOASIDIM"
/*
 * The newest version this build reads.  A writer writes version 1 unless
 * a record it wrote needs more (image_writer_need_version()): version 2
 * is an ioasidd image that hands its crash journal over (an older
 * successor would drop it while the fd store kept a stale one); version
 * 3 has the ops of nested tables, vIOMMUs, vDEVICEs and PASIDs and their
 * counters (image_put_op() and image_put_counters() ask for it): their
 * replay gives the stage-2 domain a NESTED_ALLOC or VIOMMU_ALLOC makes
 * the id before the op's own, and a PASID attach's expect_id is its
 * domain, which an older reader does not know; version 4 is an ioasidd
 * image that hands its kernel state's fd store entries over (as with
 * version 2: an older successor would leave them to nobody); version 5
 * has fault queues (FAULT_QUEUE_ALLOC with the queue's eventfd and its
 * carried requests and records, core/iopf.c), which an older reader
 * would refuse record by record, or make empty with a new eventfd, and
 * dirty tracking (DIRTY_START ops and DIRTY records: an older reader
 * would drop the bits, or on iommufd start the adopted HWPTs afresh,
 * which clears theirs); version 6 has an IOAS's COUNTERS record carry
 * its file id counter where a file that went took its id along (a
 * longer record, which an older reader refuses by its size; without it
 * a new file could get the id of one that went, and
 * ioasid_map_file_id() an old id map it).
 */
#define IMAGE_VERSION		6
/* The largest image a reader takes (-EFBIG beyond). */
#define IMAGE_MAX_SIZE		(1ULL << 30)

struct image_header {
	char magic[8];			/* IMAGE_MAGIC, no NUL */
	uint32_t version;
	uint32_t header_size;		/* sizeof(struct image_header) */
	uint64_t size;			/* committed bytes, header included */
	uint32_t nr_records;
	uint32_t flags;			/* 0 */
	uint32_t crc;			/* of the header with crc = 0 */
	uint32_t records_crc;		/* of bytes [header_size, size) */
	uint8_t reserved[24];		/* 0 */
};

struct image_record {
	uint16_t type;			/* enum image_rec_type */
	uint16_t flags;			/* 0 */
	uint32_t len;			/* payload bytes (before padding) */
	uint32_t crc;			/* of the payload */
	uint32_t reserved;		/* 0 */
};

enum image_rec_type {
	IMAGE_REC_CORE = 1,
	IMAGE_REC_FD = 2,
	IMAGE_REC_SESSION = 3,
	IMAGE_REC_OP = 4,
	IMAGE_REC_NEXT_ID = 5,
	IMAGE_REC_COUNTERS = 6,
	IMAGE_REC_KOBJ = 7,
	IMAGE_REC_DIRTY = 8,
	IMAGE_REC_DAEMON_FIRST = 0x100,
	IMAGE_REC_DAEMON_LAST = 0x1ff,
	IMAGE_REC_JOURNAL_FIRST = 0x200,
	IMAGE_REC_JOURNAL_LAST = 0x2ff,
};

struct image_fd {
	int32_t fd;			/* its number in the successor */
	uint32_t type;			/* st_mode & S_IFMT */
	/*
	 * fstat() of the file it must be.  Regular files (memfds, tmpfs,
	 * hugetlbfs) are one record per file; others (KVM's anonymous
	 * inodes, which all share one inode) one per descriptor.
	 */
	uint64_t dev, ino;
};

struct image_session {
	uint32_t id;			/* the session's id in the old core */
	uint32_t pid, uid;
	uint32_t flags;			/* 0 */
	char name[IOASID_NAME_MAX];	/* NUL ended, "" for none */
};

struct image_op {
	uint32_t expect_id;		/* 0: the op creates nothing */
	uint32_t nfds;			/* descriptors the message names */
	uint32_t fd[2];			/* FD record indexes */
	/* then the request message (struct nlmsghdr first) */
};

struct image_kobj {
	uint32_t kind;			/* ioasid_kobj.kind */
	uint32_t nfds;			/* 0..2 */
	uint32_t id[4];
	uint32_t fd[2];			/* FD record indexes */
};

/* Whose counters a COUNTERS record has (version 3; before: IOAS only). */
enum image_counters_kind {
	IMAGE_COUNTERS_IOAS = 0,	/* nr_conversions, nr_faults */
	IMAGE_COUNTERS_NESTED = 1,	/* nr_conversions: nr_invalidations */
	IMAGE_COUNTERS_VIOMMU = 2,	/* likewise; nr_faults 0 */
};

struct image_counters {
	uint32_t ioas_id;		/* or the nested table's, the vIOMMU's */
	uint32_t kind;			/* enum image_counters_kind */
	uint64_t nr_conversions, nr_faults;
	/* version 6, in a longer record: an IOAS's file id counter */
	uint32_t next_file_id;		/* 0: the highest live file's id */
	uint32_t reserved;
};
/* The record's length before version 6 (no next_file_id). */
#define IMAGE_COUNTERS_V5_SIZE	24u

/* Runs a DIRTY record carries at most (core.h's CORE_DIRTY_MAX_RUNS). */
#define IMAGE_DIRTY_MAX_RUNS	4000u

struct image_dirty {
	uint32_t ioas_id, domain_id;
	uint32_t nr_runs;		/* struct ioasid_iova_range after */
	uint32_t reserved;		/* 0 */
};

/* ---- writing -------------------------------------------------------- */

/* @f: the descriptor's own number, type and file. */
typedef int32_t (*image_number_fn)(void *arg, const struct image_fd *f);

struct image_writer {
	uint8_t *buf;			/* records not yet flushed */
	size_t len, cap;
	uint32_t nr_records;		/* flushed and buffered */
	/* the FD records so far (for dedup by file and for closing) */
	struct image_fd *fds;
	uint32_t nr_fds, cap_fds;
	/*
	 * true: each new file gets a descriptor of its own, without
	 * FD_CLOEXEC, for a successor across exec (image_writer_release()
	 * closes them when the hand-over is abandoned); false: the
	 * descriptor's number as given.
	 */
	bool dup_fds;
	/*
	 * NULL, or the number an FD record says for a descriptor instead of
	 * its own (ioasidd's kernel state: the name it has in the fd store,
	 * which a live upgrade's successor keeps); -errno fails the record.
	 * fds[] keep the descriptors' own numbers.
	 */
	image_number_fn number;
	void *number_arg;
	/* the file being appended to (image_writer_flush()), -1 */
	int memfd;
	uint64_t flushed;		/* committed bytes of memfd */
	uint32_t records_crc;
	uint32_t version;		/* the header's: 1 unless needed */
};

void image_writer_init(struct image_writer *w, bool dup_fds);
/* A record written needs a reader of @version (at most IMAGE_VERSION). */
void image_writer_need_version(struct image_writer *w, uint32_t version);
/* Free the buffers; @close_fds: close the descriptors dup_fds made. */
void image_writer_release(struct image_writer *w, bool close_fds);
/* Append one record: 0, -ENOMEM, -E2BIG (payload over 4 GiB). */
int image_put(struct image_writer *w, uint16_t type, const void *payload,
	      uint32_t len);
/*
 * The index of @fd's file among the FD records, adding one (with a new
 * descriptor when dup_fds) the first time the file is seen.  -errno.
 */
int image_put_fd(struct image_writer *w, int fd, uint32_t *index);
int image_put_core(struct image_writer *w, const char *uri);
int image_put_session(struct image_writer *w, const struct image_session *s);
/*
 * One op as an OP record (its descriptors become FD records): 0, or
 * -errno with the reason in op->errmsg (what the codec refuses).
 */
int image_put_op(struct image_writer *w, struct ioasid_op *op,
		 uint32_t expect_id);
int image_put_next_id(struct image_writer *w, uint32_t next_id);
/* A kernel object as a KOBJ record (its descriptors become FD records). */
int image_put_kobj(struct image_writer *w, const struct ioasid_kobj *k);
/*
 * @kind: enum image_counters_kind (not IOAS: the image is version 3);
 * @next_file_id: an IOAS's file id counter where it is above every live
 * file's id (a file that went took its id along), else 0 (then the
 * record is as version 5 wrote it; with one, the image is version 6).
 */
int image_put_counters(struct image_writer *w, uint32_t kind, uint32_t ioas_id,
		       uint64_t nr_conversions, uint64_t nr_faults,
		       uint32_t next_file_id);
/* A domain's dirty pages as a DIRTY record (the image is version 5). */
int image_put_dirty(struct image_writer *w, uint32_t ioas_id,
		    uint32_t domain_id,
		    const struct ioasid_iova_range *runs, uint32_t nr_runs);
/*
 * Write what is buffered to @w->memfd (a new image when @w->memfd is -1:
 * a memfd without FD_CLOEXEC, header first) and commit it in the header.
 * Appending needs a file without write seals.  0 or -errno.
 */
int image_writer_flush(struct image_writer *w);
/*
 * Flush into a new memfd and seal it (no write, shrink, grow, nor further
 * seals): *memfd is the caller's.  0 or -errno.
 */
int image_writer_finish(struct image_writer *w, int *memfd);

/* ---- reading -------------------------------------------------------- */

/* One record as image_next() returns it; payload points into the image. */
struct image_rec {
	uint16_t type;
	uint32_t len;
	const void *payload;
	uint32_t index;			/* 0 for the first record */
};

struct image {
	uint8_t *buf;			/* a private copy of the file */
	size_t size;
	uint32_t version;
	uint32_t nr_records;
	size_t pos;			/* image_next()'s cursor */
	uint32_t next;			/* index of the next record */
	struct image_fd *fd_table;	/* every FD record, in order */
	uint32_t nr_fds;
	uint32_t nr_missing;		/* image_read_remap(): fd -1 */
	const char *uri;		/* the CORE record */
};

/*
 * image_read - copy and validate the image in @fd (read from offset 0)
 *
 * Returns 0 (free with image_free()), or: -EINVAL not an image (magic,
 * header size); -EPROTONOSUPPORT a newer version; -EBADMSG truncated,
 * a CRC that does not match, a record that overruns or is malformed, a
 * missing or repeated CORE record, an FD record whose descriptor is not
 * open or is another file; -EFBIG larger than IMAGE_MAX_SIZE; -ENOMEM;
 * the errno of reading the file.  @why says which check failed.
 */
int image_read(int fd, struct image **img, char *why, size_t whylen);
/*
 * The same for an image whose descriptors were not inherited at their
 * numbers (ioasidd's kernel state after a crash, from the fd store):
 * @remap gives each FD record's descriptor in this process (the record
 * says the writer's number, type and file), or -1 when there is none; a
 * descriptor that is not the record's file counts as none.  Records
 * without a descriptor keep fd -1 (nr_missing counts them); the ops that
 * name them fail when replayed.  The descriptors stay the caller's.
 */
typedef int (*image_remap_fn)(void *arg, const struct image_fd *f);
int image_read_remap(int fd, struct image **img, image_remap_fn remap,
		     void *arg, char *why, size_t whylen);
void image_free(struct image *img);
/* The next record: 1, or 0 at the end. */
int image_next(struct image *img, struct image_rec *rec);
/* A COUNTERS record @rec (checked by image_read()), either length. */
void image_counters_of(const struct image_rec *rec, struct image_counters *ic);
/* Back to the first record. */
void image_rewind(struct image *img);
/*
 * Decode an OP record into @op (whose output buffer is @outbuf, at least
 * PROTO_DECODE_BUF bytes: proto_decode_request()): 0, or -EBADMSG
 * with the reason in @why.
 */
int image_op(const struct image *img, const struct image_rec *rec,
	     struct ioasid_op *op, void *outbuf, uint32_t *expect_id,
	     char *why, size_t whylen);
/* Decode a KOBJ record, descriptors as inherited numbers: 0 or -EBADMSG. */
int image_kobj(const struct image *img, const struct image_rec *rec,
	       struct ioasid_kobj *k, char *why, size_t whylen);
/*
 * A DIRTY record's header and its runs (pointing into the image, not
 * aligned for direct use: *runs is a copy the caller frees): 0, -ENOMEM.
 * Its size and count were checked by image_read(); the core checks the
 * runs themselves (core_replay_dirty()).
 */
int image_dirty(const struct image_rec *rec, struct image_dirty *d,
		struct ioasid_iova_range **runs);
/* Close every descriptor the FD records name (a hand-over given up). */
void image_close_fds(const struct image *img);

#endif
