/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOMMU: per-device DMA engine and fault records.
 *
 * Integration note
 * ----------------
 * The sim backend creates one struct sim_dev per simulated device, attaches
 * it to a struct sim_domain (iotlb.h) and lets tests, examples or an
 * emulated device model issue sim_dma_read()/sim_dma_write().  Clients
 * drain faults with sim_dev_read_faults() (optionally woken by an eventfd
 * given to sim_dev_set_fault_eventfd()).
 *
 * Each DMA is cut into chunks that never cross a page of the IOMMU
 * translation and are at most SIM_DMA_CHUNK_MAX bytes.  Per chunk, inside
 * one grace-period read section: load the device's domain, look the IOVA up
 * in the device IOTLB, walk the page table on a miss (setting A, and D for
 * writes, like hardware), check R/W, copy with sim_guarded_copy().  Nothing
 * a device does can crash the process: bad IOVAs, permissions, SIGBUS on a
 * truncated file or a private guest_memfd page, SIGSEGV on a vanished hva
 * all end the DMA at the faulting IOVA with a fault record.
 *
 * Return convention of sim_dma_read/write: 0 when all bytes moved, else a
 * negative errno, with *done = bytes moved before the faulting IOVA:
 *   -EFAULT  translation or memory fault (blocked, not present, out of
 *            range, bus error, segv) -- a fault record is queued;
 *   -EACCES  permission fault (write to a read-only page, read of a
 *            write-only page) -- a fault record is queued;
 *   -EFAULT  also if the caller's own buf faults (no fault record: that is
 *            not an IOMMU event);
 *   -EINVAL  unknown flags or NULL buf (nothing done, no record).
 *
 * Locking rules
 * -------------
 *  - DMA functions are lock-free on the fast path and may run on any
 *    number of threads, on the same or different devices, concurrently
 *    with map/unmap/attach.  Counter updates are batched per call.
 *  - sim_dev_attach() serializes with other attach calls of the same device
 *    (device mutex, then the domain mutex) and returns only after in-flight
 *    DMA using the previous domain has finished.
 *  - The fault queue has its own mutex, taken only when a fault happens or
 *    is read.
 *  - Never call attach/detach/destroy from inside a DMA (e.g. a callback)
 *    or a sim_gp read section.
 */
#ifndef IOASID_SIM_DMA_H
#define IOASID_SIM_DMA_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "iotlb.h"

#define SIM_DMA_CHUNK_MAX	(64 * 1024)

/* sim_dma_read/write flags */
#define SIM_DMA_NO_SNOOP	(1U << 0)	/* TLP No-Snoop attribute */
/*
 * A translation that is not present ends the DMA with -EAGAIN and no
 * fault record: the device issues a page request instead (PRI).
 */
#define SIM_DMA_PAGE_REQUEST	(1U << 1)

/* sim_dev_create flags */
#define SIM_DEV_NO_SNOOP_CAPABLE (1U << 0)	/* PCIe DevCtl "Enable No Snoop" */

enum sim_fault_reason {
	SIM_FAULT_BLOCKED = 1,		/* device attached to no domain */
	SIM_FAULT_NOT_PRESENT = 2,	/* no translation for the IOVA */
	SIM_FAULT_OUT_OF_RANGE = 3,	/* IOVA beyond the address width */
	SIM_FAULT_PERMISSION = 4,	/* R/W not allowed by the PTE */
	SIM_FAULT_BUS_ERROR = 5,	/* SIGBUS: truncated file, private
					 * guest_memfd page, hw poison */
	SIM_FAULT_SEGV = 6,		/* SIGSEGV: hva unmapped/protected */
	SIM_FAULT_RESERVED = 7,		/* stage-1 entry: reserved bit set */
};

struct sim_fault {
	uint64_t iova;
	uint64_t timestamp_ns;		/* CLOCK_MONOTONIC */
	uint32_t dev_id;
	uint32_t domain_id;		/* 0 when blocked */
	uint8_t access;			/* SIM_ACCESS_READ or _WRITE */
	uint8_t reason;			/* enum sim_fault_reason */
	uint8_t stage;			/* nested domain: 1 or 2, else 0 */
	uint8_t pad[5];
	uint64_t stage_addr;		/* nested: what failed (nested.h) */
};

struct sim_dev_stats {
	uint64_t bytes_read;		/* memory -> device (sim_dma_read) */
	uint64_t bytes_written;		/* device -> memory (sim_dma_write) */
	uint64_t snooped_bytes;		/* coherent traffic */
	uint64_t noncoherent_bytes;	/* no-snoop into a non-enforcing domain */
	uint64_t iotlb_hits;
	uint64_t iotlb_misses;
	uint64_t iotlb_invalidations;
	uint64_t faults;		/* recorded */
	uint64_t fault_overflows;	/* dropped: queue full */
};

/* Fields are private. */
struct sim_dev {
	uint32_t id;
	unsigned int flags;
	struct sim_domain *domain;	/* NULL: DMA blocked */
	pthread_mutex_t attach_lock;
	pthread_mutex_t fault_lock;
	struct sim_fault *faults;	/* ring */
	unsigned int fault_cap;
	unsigned int fault_head;
	unsigned int fault_count;
	int fault_eventfd;
	uint64_t nr_faults;
	uint64_t nr_overflows;
	uint64_t traffic[2][2];		/* [write][non-coherent] bytes */
	struct sim_iotlb iotlb;
};

/*
 * Create a device (attached to nothing: all DMA faults "blocked").
 * fault_queue_len: capacity of the fault ring (0 = 256).
 * Returns 0, -EINVAL (unknown flags), -ENOMEM.
 */
int sim_dev_create(uint32_t id, unsigned int flags,
		   unsigned int fault_queue_len, struct sim_dev **out);

/* Detach and free. */
void sim_dev_destroy(struct sim_dev *dev);

/*
 * Attach to dom, replacing any previous attachment (dom NULL = detach).
 * On return no DMA of this device uses the previous domain.  Returns 0.
 */
int sim_dev_attach(struct sim_dev *dev, struct sim_domain *dom);
int sim_dev_detach(struct sim_dev *dev);

/* Device reads memory at iova into buf. */
int sim_dma_read(struct sim_dev *dev, uint64_t iova, void *buf, size_t len,
		 unsigned int flags, size_t *done);

/* Device writes buf into memory at iova. */
int sim_dma_write(struct sim_dev *dev, uint64_t iova, const void *buf,
		  size_t len, unsigned int flags, size_t *done);

/*
 * Translate like the DMA engine would (IOTLB, walk, A/D, permission) without
 * moving data and without a fault record: an ATS-style probe for
 * diagnostics and benchmarks.  *hva is stale as soon as the IOVA is
 * unmapped.  Returns 0, -EFAULT (blocked, not present, out of range),
 * -EACCES.
 */
int sim_dev_translate(struct sim_dev *dev, uint64_t iova, unsigned int access,
		      uint64_t *hva, uint64_t *page_size);

/* Pop up to max fault records, oldest first.  Returns the number popped. */
unsigned int sim_dev_read_faults(struct sim_dev *dev, struct sim_fault *out,
				 unsigned int max);

/* Signal each queued fault on an eventfd (-1 to stop).  Not owned. */
void sim_dev_set_fault_eventfd(struct sim_dev *dev, int efd);

void sim_dev_get_stats(struct sim_dev *dev, struct sim_dev_stats *st);

#endif /* IOASID_SIM_DMA_H */
