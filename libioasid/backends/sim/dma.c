/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated DMA engine: translation through IOTLB and page table, guarded
 * copies, fault records, traffic counters.  See dma.h for the contract.
 */
#include "dma.h"
#include "guarded_copy.h"
#include "nested.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FAULT_QUEUE_LEN	256

/* One DMA request, with counters batched until the end of the call. */
struct dma_op {
	struct sim_dev *dev;
	char *buf;
	unsigned int access;	/* SIM_ACCESS_READ or SIM_ACCESS_WRITE */
	bool no_snoop;
	uint64_t hits;
	uint64_t misses;
	uint64_t bytes[2];	/* [non-coherent] */
	/* set when a chunk faults */
	uint64_t fault_iova;
	uint32_t fault_domid;
	int fault_reason;	/* 0: none or not recordable */
	uint8_t fault_stage;	/* nested: 1 or 2 */
	uint64_t fault_stage_addr;
};

/* ------------------------------------------------------------------ */
/* Device lifetime and attachment                                      */
/* ------------------------------------------------------------------ */

int sim_dev_create(uint32_t id, unsigned int flags,
		   unsigned int fault_queue_len, struct sim_dev **out)
{
	struct sim_dev *dev;
	int ret;

	if (flags & ~SIM_DEV_NO_SNOOP_CAPABLE)
		return -EINVAL;
	ret = sim_guard_init();
	if (ret)
		return ret;
	if (posix_memalign((void **)&dev, 64, sizeof(*dev)))
		return -ENOMEM;
	memset(dev, 0, sizeof(*dev));
	dev->fault_cap = fault_queue_len ? fault_queue_len :
					   DEFAULT_FAULT_QUEUE_LEN;
	dev->faults = calloc(dev->fault_cap, sizeof(*dev->faults));
	if (!dev->faults) {
		free(dev);
		return -ENOMEM;
	}
	dev->id = id;
	dev->flags = flags;
	dev->fault_eventfd = -1;
	pthread_mutex_init(&dev->attach_lock, NULL);
	pthread_mutex_init(&dev->fault_lock, NULL);
	sim_iotlb_init(&dev->iotlb);
	*out = dev;
	return 0;
}

void sim_dev_destroy(struct sim_dev *dev)
{
	if (!dev)
		return;
	sim_dev_detach(dev);
	pthread_mutex_destroy(&dev->attach_lock);
	pthread_mutex_destroy(&dev->fault_lock);
	free(dev->faults);
	free(dev);
}

int sim_dev_attach(struct sim_dev *dev, struct sim_domain *dom)
{
	struct sim_domain *old;
	int ret;

	pthread_mutex_lock(&dev->attach_lock);
	old = __atomic_load_n(&dev->domain, __ATOMIC_RELAXED);
	if (old == dom) {
		pthread_mutex_unlock(&dev->attach_lock);
		return 0;
	}
	/* Be on the new domain's invalidation list before DMA can use it. */
	if (dom) {
		ret = sim_domain_attach_iotlb(dom, &dev->iotlb);
		if (ret) {
			pthread_mutex_unlock(&dev->attach_lock);
			return ret;
		}
	}
	__atomic_store_n(&dev->domain, dom, __ATOMIC_RELEASE);
	/* Leave the old list only now; this also flushes the whole IOTLB
	 * and bumps its generation so racing fills are refused. */
	if (old)
		sim_domain_detach_iotlb(old, &dev->iotlb);
	/* DMA that loaded the old domain pointer finishes before we return. */
	sim_gp_synchronize();
	pthread_mutex_unlock(&dev->attach_lock);
	return 0;
}

int sim_dev_detach(struct sim_dev *dev)
{
	return sim_dev_attach(dev, NULL);
}

/* ------------------------------------------------------------------ */
/* Fault queue                                                         */
/* ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void notify_fault(int efd)
{
	uint64_t one = 1;

	if (efd >= 0 && write(efd, &one, sizeof(one)) < 0) {
		/* Counter saturated or fd gone: the record is still queued. */
	}
}

static void record_fault(struct sim_dev *dev, const struct dma_op *op)
{
	struct sim_fault f = {
		.iova = op->fault_iova,
		.timestamp_ns = now_ns(),
		.dev_id = dev->id,
		.domain_id = op->fault_domid,
		.access = op->access,
		.reason = op->fault_reason,
		.stage = op->fault_stage,
		.stage_addr = op->fault_stage_addr,
	};
	bool queued = false;
	int efd;

	pthread_mutex_lock(&dev->fault_lock);
	if (dev->fault_count == dev->fault_cap) {
		/* Like a hardware fault log: keep the oldest, count drops. */
		dev->nr_overflows++;
	} else {
		dev->faults[(dev->fault_head + dev->fault_count) %
			    dev->fault_cap] = f;
		dev->fault_count++;
		dev->nr_faults++;
		queued = true;
	}
	efd = dev->fault_eventfd;
	pthread_mutex_unlock(&dev->fault_lock);
	if (queued)
		notify_fault(efd);
}

unsigned int sim_dev_read_faults(struct sim_dev *dev, struct sim_fault *out,
				 unsigned int max)
{
	unsigned int n, i;

	pthread_mutex_lock(&dev->fault_lock);
	n = dev->fault_count < max ? dev->fault_count : max;
	for (i = 0; i < n; i++)
		out[i] = dev->faults[(dev->fault_head + i) % dev->fault_cap];
	dev->fault_head = (dev->fault_head + n) % dev->fault_cap;
	dev->fault_count -= n;
	pthread_mutex_unlock(&dev->fault_lock);
	return n;
}

void sim_dev_set_fault_eventfd(struct sim_dev *dev, int efd)
{
	pthread_mutex_lock(&dev->fault_lock);
	dev->fault_eventfd = efd;
	pthread_mutex_unlock(&dev->fault_lock);
}

/* ------------------------------------------------------------------ */
/* Translation                                                         */
/* ------------------------------------------------------------------ */

static int xlate_error_reason(int err)
{
	switch (err) {
	case -ERANGE:
		return SIM_FAULT_OUT_OF_RANGE;
	case -EACCES:
		return SIM_FAULT_PERMISSION;
	case -EILSEQ:
		return SIM_FAULT_RESERVED;
	case -EFAULT:
		return SIM_FAULT_BUS_ERROR;
	default:
		return SIM_FAULT_NOT_PRESENT;
	}
}

static unsigned int access_perm(unsigned int access)
{
	return access == SIM_ACCESS_WRITE ? SIM_PTE_W : SIM_PTE_R;
}

/*
 * IOTLB, then page walk on a miss.  Inside a read section.  Returns 0 or
 * an enum sim_fault_reason.  With dirty tracking on, a write through an
 * entry that did not set D walks again so the leaf gets its dirty bit (as
 * hardware does), and so does every write while a read-and-clear runs
 * (iotlb.h); with tracking off nothing is walked or written for it.
 */
static int dma_translate(struct dma_op *op, struct sim_domain *dom,
			 uint64_t iova, struct sim_iotlb_hit *h)
{
	struct sim_iotlb *tlb = &op->dev->iotlb;
	/* the D bits are stage 2's: a nested domain's parent's */
	const struct sim_domain *s2 = dom->parent ? dom->parent : dom;
	uint32_t state = __atomic_load_n(&s2->dirty_state, __ATOMIC_ACQUIRE);
	bool write = op->access == SIM_ACCESS_WRITE;
	bool track = write && (state & SIM_DOMAIN_TRACKING);
	unsigned int access;
	struct sim_xlate x;
	uint64_t gen;
	int ret;

	/*
	 * A hit without the permission walks again, as a hit that must set
	 * D does: the walk says which stage refuses (nested domains).  A
	 * nested domain's cached "D already set" is never trusted: the D
	 * bit is the parent's, whose read-and-clear cannot flush this IOTLB.
	 */
	if (sim_iotlb_lookup(tlb, dom->id, iova, h) &&
	    (h->flags & access_perm(op->access)) &&
	    (!track || (h->dirty && !(state & SIM_DOMAIN_CLEARING) &&
			!dom->parent))) {
		op->hits++;
		return 0;
	}
	op->misses++;
	gen = sim_iotlb_gen(tlb);
	access = op->access | (state & SIM_DOMAIN_TRACKING ? SIM_ACCESS_TRACK :
						   0);
	if (dom->parent) {
		struct sim_nested_fault nf;

		ret = sim_nested_translate(dom, iova, access, &x, &nf);
		if (ret) {
			op->fault_stage = nf.stage;
			op->fault_stage_addr = nf.addr;
		}
	} else {
		ret = sim_pgtable_translate(dom->pgt, iova, access, &x);
	}
	if (ret)
		return xlate_error_reason(ret);
	sim_iotlb_fill(tlb, gen, dom->id, &x, track);
	h->iova = x.iova;
	h->hva = x.hva;
	h->size = x.size;
	h->flags = x.pte;
	h->dirty = track;
	return 0;
}

static void account_snoop(struct dma_op *op, const struct sim_iotlb_hit *h,
			  size_t n)
{
	op->bytes[op->no_snoop && !(h->flags & SIM_PTE_SNP)] += n;
}

/* ------------------------------------------------------------------ */
/* Data movement                                                       */
/* ------------------------------------------------------------------ */

static int copy_reason(const struct sim_guard_fault *gf, bool mem_is_dst)
{
	if (gf->on_dst != mem_is_dst)
		return 0;	/* the caller's buffer faulted */
	return gf->signo == SIGBUS ? SIM_FAULT_BUS_ERROR : SIM_FAULT_SEGV;
}

/*
 * Move one chunk starting at iova (at most `want` bytes, never crossing
 * the translated page).  Returns bytes moved; on a fault fills
 * op->fault_* and returns fewer bytes than the chunk (possibly 0) with
 * *err set.
 */
static size_t dma_chunk(struct dma_op *op, uint64_t iova, char *buf,
			size_t want, int *err)
{
	bool write = op->access == SIM_ACCESS_WRITE;
	struct sim_guard_fault gf;
	struct sim_iotlb_hit h;
	struct sim_domain *dom;
	size_t n, done = 0;
	void *mem;

	sim_gp_read_lock();
	dom = __atomic_load_n(&op->dev->domain, __ATOMIC_ACQUIRE);
	op->fault_domid = dom ? dom->id : 0;
	op->fault_iova = iova;
	if (!dom) {
		op->fault_reason = SIM_FAULT_BLOCKED;
		goto out_fault;
	}
	op->fault_reason = dma_translate(op, dom, iova, &h);
	if (op->fault_reason)
		goto out_fault;
	n = h.iova + h.size - iova;
	n = n < want ? n : want;
	mem = (void *)(uintptr_t)(h.hva + (iova - h.iova));
	if (write)
		*err = sim_guarded_copy(mem, buf, n, &done, &gf);
	else
		*err = sim_guarded_copy(buf, mem, n, &done, &gf);
	account_snoop(op, &h, done);
	sim_gp_read_unlock();
	if (*err) {
		op->fault_iova = iova + done;
		op->fault_reason = *err == -EFAULT ? copy_reason(&gf, write) : 0;
	}
	return done;

out_fault:
	sim_gp_read_unlock();
	*err = op->fault_reason == SIM_FAULT_PERMISSION ? -EACCES : -EFAULT;
	return 0;
}

/* Once per call: a few relaxed atomic adds, not one per chunk. */
static void dma_account(struct sim_dev *dev, const struct dma_op *op)
{
	uint64_t *t = dev->traffic[op->access == SIM_ACCESS_WRITE];

	sim_iotlb_account(&dev->iotlb, op->hits, op->misses);
	if (op->bytes[0])
		__atomic_fetch_add(&t[0], op->bytes[0], __ATOMIC_RELAXED);
	if (op->bytes[1])
		__atomic_fetch_add(&t[1], op->bytes[1], __ATOMIC_RELAXED);
}

static int dma_run(struct dma_op *op, uint64_t iova, size_t len,
		   unsigned int flags, size_t *done)
{
	size_t off = 0, want, n;
	int err = 0;

	*done = 0;
	if (flags & ~(SIM_DMA_NO_SNOOP | SIM_DMA_PAGE_REQUEST) ||
	    (len && !op->buf))
		return -EINVAL;
	op->no_snoop = (flags & SIM_DMA_NO_SNOOP) &&
		       (op->dev->flags & SIM_DEV_NO_SNOOP_CAPABLE);
	while (off < len && !err) {
		want = len - off < SIM_DMA_CHUNK_MAX ? len - off :
						       SIM_DMA_CHUNK_MAX;
		n = dma_chunk(op, iova + off, op->buf + off, want, &err);
		off += n;
	}
	dma_account(op->dev, op);
	if (err && op->fault_reason == SIM_FAULT_NOT_PRESENT &&
	    (flags & SIM_DMA_PAGE_REQUEST))
		err = -EAGAIN;		/* a page request, not a fault */
	else if (err && op->fault_reason)
		record_fault(op->dev, op);
	*done = off;
	return err;
}

int sim_dma_read(struct sim_dev *dev, uint64_t iova, void *buf, size_t len,
		 unsigned int flags, size_t *done)
{
	struct dma_op op = {
		.dev = dev, .buf = buf, .access = SIM_ACCESS_READ,
	};

	return dma_run(&op, iova, len, flags, done);
}

int sim_dma_write(struct sim_dev *dev, uint64_t iova, const void *buf,
		  size_t len, unsigned int flags, size_t *done)
{
	struct dma_op op = {
		.dev = dev, .buf = (char *)buf, .access = SIM_ACCESS_WRITE,
	};

	return dma_run(&op, iova, len, flags, done);
}

int sim_dev_translate(struct sim_dev *dev, uint64_t iova, unsigned int access,
		      uint64_t *hva, uint64_t *page_size)
{
	struct dma_op op = { .dev = dev };
	struct sim_iotlb_hit h;
	struct sim_domain *dom;
	int reason;

	if (access != SIM_ACCESS_READ && access != SIM_ACCESS_WRITE)
		return -EINVAL;
	op.access = access;
	sim_gp_read_lock();
	dom = __atomic_load_n(&dev->domain, __ATOMIC_ACQUIRE);
	reason = dom ? dma_translate(&op, dom, iova, &h) : SIM_FAULT_BLOCKED;
	sim_gp_read_unlock();
	sim_iotlb_account(&dev->iotlb, op.hits, op.misses);
	if (reason)
		return reason == SIM_FAULT_PERMISSION ? -EACCES : -EFAULT;
	*hva = h.hva + (iova - h.iova);
	if (page_size)
		*page_size = h.size;
	return 0;
}

static uint64_t load64(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void sim_dev_get_stats(struct sim_dev *dev, struct sim_dev_stats *st)
{
	uint64_t rs = load64(&dev->traffic[0][0]);
	uint64_t rn = load64(&dev->traffic[0][1]);
	uint64_t ws = load64(&dev->traffic[1][0]);
	uint64_t wn = load64(&dev->traffic[1][1]);

	st->bytes_read = rs + rn;
	st->bytes_written = ws + wn;
	st->snooped_bytes = rs + ws;
	st->noncoherent_bytes = rn + wn;
	st->iotlb_hits = load64(&dev->iotlb.hits);
	st->iotlb_misses = load64(&dev->iotlb.misses);
	st->iotlb_invalidations = load64(&dev->iotlb.invalidations);
	pthread_mutex_lock(&dev->fault_lock);
	st->faults = dev->nr_faults;
	st->fault_overflows = dev->nr_overflows;
	pthread_mutex_unlock(&dev->fault_lock);
}
