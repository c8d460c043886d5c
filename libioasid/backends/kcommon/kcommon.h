/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the two Linux backends (iommufd, vfio-type1) share:
 *
 *  kmap   the backend's own record of the mappings the kernel holds, and
 *         the map/unmap composition built on it.  Neither kernel uAPI can
 *         cut a mapping (iommufd IOMMU_IOAS_UNMAP of a sub-range fails
 *         with ENOENT, type1 v2 VFIO_IOMMU_UNMAP_DMA with EINVAL), so an
 *         unmap that cuts inside a mapping unmaps the whole kernel mappings
 *         it touches and maps back the pieces that stay.  The record is
 *         what makes that exact whatever the core's pieces look like (a
 *         restricted IOAS is mapped page by page, conversions unmap runs
 *         inside mappings, unmap-all is split in two calls).
 *  kinv   the inventory from sysfs, filtered to what a backend can use.
 *
 * Who may include this: backends/iommufd and backends/vfio_type1 only.
 */
#ifndef IOASID_KCOMMON_H
#define IOASID_KCOMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "inventory/inventory.h"

struct log_sink;

/* ---- kmap: the mappings the kernel holds ------------------------------- */

struct kmap_entry {
	uint64_t iova;
	uint64_t length;
	struct be_backing backing;	/* of the entry's first byte */
	uint32_t prot;			/* IOASID_MAP_READ, _WRITE */
};

/* Sorted by IOVA, never overlapping. */
struct kmap {
	struct kmap_entry *v;
	size_t nr, cap;
	bool per_page;		/* one kernel mapping per 4 KiB page */
	/*
	 * The kernel cuts its own mappings (ops->cut): iommufd on an IOAS
	 * with large pages off.  An unmap is then one ops->cut call, never
	 * a composition.
	 */
	bool kernel_cuts;
	/* what a failed composed unmap could not put back (kmap_take_lost) */
	struct kmap_entry *lost;
	size_t nr_lost, cap_lost;
};

/* How a backend programs the kernel for one entry / one exact range. */
struct kmap_ops {
	/* Map @e in the kernel (all of it, or nothing). */
	int (*map)(void *arg, const struct kmap_entry *e);
	/*
	 * Unmap [iova, iova+length), which covers whole kernel mappings only
	 * (holes allowed); 0 or negative errno, nothing changed on error.
	 */
	int (*unmap)(void *arg, uint64_t iova, uint64_t length);
	/*
	 * Optional: an entry could not be put back after a failed unmap (the
	 * error path of an error path): the kernel no longer has it.
	 */
	void (*lost)(void *arg, const struct kmap_entry *e);
	/*
	 * With kmap.kernel_cuts: remove exactly [iova, iova+length) from the
	 * kernel, cutting mappings that stick out (the mappings on both
	 * sides keep their IOPTEs).  0, or -errno with nothing unmapped.
	 */
	int (*cut)(void *arg, uint64_t iova, uint64_t length);
};

/*
 * Map [iova, iova+length) of @backing: one kernel mapping, or one per
 * 4 KiB page when @m->per_page.  All or nothing.
 */
int kmap_map(struct kmap *m, const struct kmap_ops *ops, void *arg,
	     uint64_t iova, uint64_t length, const struct be_backing *backing,
	     uint32_t prot);
/*
 * Take [iova, iova+length) out of the kernel.  With @m->kernel_cuts: one
 * ops->cut call, atomic.  Otherwise kernel mappings that lie inside go
 * with one unmap call; one that sticks out at either end is unmapped whole
 * and its outer piece mapped back (the non-atomic window: DMA to that
 * piece faults until it is back).  On failure nothing changed (pieces are
 * restored), -errno; except that what could not be restored either is
 * dropped from the record and listed for kmap_take_lost().
 */
int kmap_unmap(struct kmap *m, const struct kmap_ops *ops, void *arg,
	       uint64_t iova, uint64_t length);
/*
 * After a failed kmap_unmap(): the mappings the kernel lost (not in the
 * record any more), up to @cap of them into @out; returns how many it
 * stored and forgets those (call until it returns 0).
 */
size_t kmap_take_lost(struct kmap *m, struct ioasid_iova_range *out,
		      size_t cap);
/*
 * The kernel copies [src_iova, src_iova+length) of @src to @dst_iova
 * (IOMMU_IOAS_COPY, issued by @copy): the source must be covered by the
 * record without holes (-ENOENT) and the destination free (-EEXIST),
 * checked before @copy runs.  Then @dst records one entry per source
 * entry in the range (the kernel makes one area per source area), with
 * @prot and the backing of the core's @pieces in @dst.  All or nothing.
 */
int kmap_copy(struct kmap *dst, const struct kmap *src, uint64_t dst_iova,
	      uint64_t src_iova, uint64_t length, uint32_t prot,
	      const struct be_piece *pieces, uint32_t nr_pieces,
	      int (*copy)(void *arg), void *arg);
/* Program every entry again (a kernel address space that lost them). */
int kmap_replay(const struct kmap *m, const struct kmap_ops *ops, void *arg);
void kmap_release(struct kmap *m);



/* ---- kinv: inventory ---------------------------------------------------- */

/*
 * Scan sysfs (discovery_scan) and keep the devices @keep accepts and the
 * units behind them.  -ENOMEM, or discovery's errors with @errmsg.
 */
int kinv_scan(const struct log_sink *log, struct inventory *inv,
	      bool (*keep)(const struct inv_device *dev),
	      char *errmsg, size_t errlen);

/* ---- khotplug: devices that come and go -------------------------------- */

struct discovery_monitor;

struct khotplug {
	struct discovery_monitor *mon;	/* made at the first khotplug_fd() */
	bool failed;
};

/* The pollable fd (a udev netlink monitor), or -1 when there is none. */
int khotplug_fd(struct khotplug *h, const struct log_sink *log);
/*
 * The next device that came (@present: bound so that @usable says yes)
 * or went (removed, or its driver unbound): 0, or -EAGAIN.
 */
int khotplug_read(struct khotplug *h, char *name, size_t len, bool *present,
		  bool (*usable)(const char *name));
void khotplug_release(struct khotplug *h);

/* The prot of a mapping as an ioctl flag pair (READ/WRITE bits given). */
static inline uint32_t kprot(uint32_t prot, uint32_t rd, uint32_t wr)
{
	return (prot & IOASID_MAP_READ ? rd : 0) |
	       (prot & IOASID_MAP_WRITE ? wr : 0);
}

/* ioctl() that retries on EINTR; 0 or -errno. */
int kioctl(int fd, unsigned long req, void *arg);

#endif
