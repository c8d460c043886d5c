/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Faults: DMA requests to (simulated) devices, and fault records: the
 * core's own, queued per session, and the backend's, read per device.
 */
#include <errno.h>
#include <stdio.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/device.h"
#include "core/fault.h"
#include "core/ioas.h"
#include "core/iopf.h"
#include "core/nested.h"
#include "core/pasid.h"

/* Queue a record for @s, the session that owns the device. */
static void record_core_fault(struct session *s, const struct device *dev,
			      uint64_t iova, uint32_t flags, uint32_t reason)
{
	struct ioasid_fault f = {
		.size = sizeof(f),
		.flags = flags & IOASID_DMA_WRITE ? IOASID_MAP_WRITE :
						   IOASID_MAP_READ,
		.dev_id = dev->dev_id,
		.reason = reason,
		.iova = iova,
		.timestamp_ns = core_now_ns(),
	};

	pthread_mutex_lock(&s->core->event_lock);
	if (s->fault_len < SESSION_FAULT_RING) {
		s->faults[(s->fault_head + s->fault_len) %
			  SESSION_FAULT_RING] = f;
		s->fault_len++;
	} else {
		s->faults_lost++;
	}
	pthread_mutex_unlock(&s->core->event_lock);
}

void fault_purge_device(struct session *s, uint32_t dev_id)
{
	uint32_t kept = 0;

	pthread_mutex_lock(&s->core->event_lock);
	for (uint32_t i = 0; i < s->fault_len; i++) {
		struct ioasid_fault *f = &s->faults[(s->fault_head + i) %
						    SESSION_FAULT_RING];

		if (f->dev_id != dev_id)
			s->faults[(s->fault_head + kept++) %
				  SESSION_FAULT_RING] = *f;
	}
	s->fault_len = kept;
	pthread_mutex_unlock(&s->core->event_lock);
}

void fault_take_lost(struct core *core, struct device *dev)
{
	uint64_t n;

	if (!dev->owner || !dev->be || !core_ops(core)->take_faults_lost)
		return;
	n = core_ops(core)->take_faults_lost(dev->be);
	if (!n)
		return;
	pthread_mutex_lock(&core->event_lock);
	dev->owner->faults_lost += n;
	pthread_mutex_unlock(&core->event_lock);
}

uint64_t fault_lost_count(struct session *s)
{
	struct core *core = s->core;
	uint64_t n;

	for (uint32_t i = 0; i < core->nr_devices; i++)
		if (core->devices[i].owner == s)
			fault_take_lost(core, &core->devices[i]);
	pthread_mutex_lock(&core->event_lock);
	n = s->faults_lost;
	pthread_mutex_unlock(&core->event_lock);
	return n;
}

static void fault_event(struct session *s, const struct device *dev,
			uint64_t iova)
{
	struct ioasid_event ev = {
		.type = IOASID_EVENT_FAULT,
		.id = dev->dev_id,
		.iova = iova,
	};

	snprintf(ev.name, sizeof(ev.name), "%s", dev->inv->info.name);
	core_emit_to(s, IOASID_EVENT_GROUP_FAULT, &ev);
}

/* The request, and where its data comes from or goes: 0 and *@buf. */
static int check_dma(struct core *core, struct ioasid_op *op, void **buf)
{
	const uint32_t known = IOASID_DMA_WRITE | IOASID_DMA_NO_SNOOP |
			       IOASID_DMA_PAGE_WAIT;

	if (op->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "unknown DMA flags 0x%x",
			       op->flags);
	if (!core_ops(core)->dma)
		return op_fail(op, EOPNOTSUPP, "the %s backend cannot start "
			       "DMA: only simulated devices can",
			       core_ops(core)->name);
	if (op->cmd == IOASID_CMD_DEVICE_DMA_PASID && !core_ops(core)->dma_pasid)
		return op_fail(op, EOPNOTSUPP, "the %s backend cannot start "
			       "DMA tagged with a PASID", core_ops(core)->name);
	if (op->cmd == IOASID_CMD_DEVICE_DMA_PASID && op->mode == 0)
		return op_fail(op, EINVAL, "PASID 0 stands for DMA without a "
			       "PASID (ioasid_device_dma)");
	if (!(op->flags & IOASID_DMA_WRITE)) {
		if (op->out_cap < op->length)
			return op_fail(op, EINVAL, "DMA buffer too small");
		*buf = op->out;
		return 0;
	}
	if (op->in_len != op->length)
		return op_fail(op, EINVAL, "DMA data is %u bytes, length is "
			       "%llu", op->in_len,
			       (unsigned long long)op->length);
	*buf = (void *)op->in;
	return 0;
}

/* The fault queue that takes @dev's page requests for this DMA, or NULL. */
static struct fault_queue *dma_queue(struct core *core,
				     const struct device *dev,
				     const struct ioasid_op *op)
{
	struct ioas *ioas = dev->ioas;

	if (!core_ops(core)->dma_page_requests)
		return NULL;
	if (op->cmd == IOASID_CMD_DEVICE_DMA_PASID) {
		ioas = NULL;
		for (uint32_t i = 0; i < dev->nr_pasids; i++) {
			if (dev->pasids[i].pasid != op->mode)
				continue;
			if (dev->pasids[i].nested)	/* the table's queue */
				return __atomic_load_n(&dev->pasids[i].nested->fq,
						       __ATOMIC_ACQUIRE);
			ioas = dev->pasids[i].ioas;
		}
	} else if (dev->nested) {
		return __atomic_load_n(&dev->nested->fq, __ATOMIC_ACQUIRE);
	}
	return ioas ? __atomic_load_n(&ioas->fq, __ATOMIC_ACQUIRE) : NULL;
}

static int dma_once(struct session *s, struct device *dev, void *buf,
		    uint64_t off, uint32_t flags, uint64_t *got,
		    struct ioasid_op *op)
{
	if (op->cmd == IOASID_CMD_DEVICE_DMA_PASID)
		return core_ops(s->core)->dma_pasid(dev->be, op->mode,
						    op->iova + off,
						    (char *)buf + off,
						    op->length - off, flags,
						    got);
	return core_ops(s->core)->dma(dev->be, op->iova + off, (char *)buf + off,
				      op->length - off, flags, got);
}

/*
 * The DMA, page requests and retries included: a page that is not
 * present on a target with a fault queue is asked for; answered success
 * (waiting with IOASID_DMA_PAGE_WAIT), the device goes on from there.
 */
static int dma_with_requests(struct session *s, struct device *dev,
			     void *buf, uint64_t *done, struct ioasid_op *op)
{
	bool wait = op->flags & IOASID_DMA_PAGE_WAIT;
	uint32_t flags = op->flags & ~(uint32_t)IOASID_DMA_PAGE_WAIT;
	struct fault_queue *fq;
	uint64_t got, at;
	int r;

	for (;;) {
		fq = dma_queue(s->core, dev, op);
		got = 0;
		r = dma_once(s, dev, buf, *done, fq ? flags | BE_DMA_PAGE_REQUEST :
						      flags, &got, op);
		*done += got;
		if (r != -EAGAIN || !fq)
			return r;
		at = op->iova + *done;
		if (dev->ioas && ioas_is_private(dev->ioas, at)) {
			record_core_fault(s, dev, at, op->flags,
					  IOASID_FAULT_PRIVATE);
			return op_fail(op, EFAULT, "DMA fault at IOVA 0x%llx "
				       "after %llu bytes: a private page",
				       (unsigned long long)at,
				       (unsigned long long)*done);
		}
		r = iopf_request(fq, dev, op->cmd == IOASID_CMD_DEVICE_DMA_PASID,
				 op->mode, at, op->flags & IOASID_DMA_WRITE,
				 wait, op);
		if (r < 0)
			return r;
	}
}

/* The DMA itself, under the device's read lock (bind/unbind wait). */
static int run_dma(struct session *s, struct device *dev, void *buf,
		   uint64_t *done, struct ioasid_op *op)
{
	int r;

	if (dev->owner != s)
		return device_not_bound(op, op->dev_id);
	if (dev->ioas &&
	    !__atomic_load_n(&dev->group_viable, __ATOMIC_ACQUIRE)) {
		record_core_fault(s, dev, op->iova, op->flags,
				  IOASID_FAULT_GROUP_NOT_VIABLE);
		return op_fail(op, EFAULT, "IOMMU group %u of device %s is not "
			       "viable: all its devices must be attached to "
			       "one IOAS before any may do DMA",
			       dev->inv->info.group, dev->inv->info.name);
	}
	r = dma_with_requests(s, dev, buf, done, op);
	if (r < 0 && !op->errmsg[0])
		op_fail(op, -r, "DMA fault at IOVA 0x%llx after %llu bytes",
			(unsigned long long)(op->iova + *done),
			(unsigned long long)*done);
	return r;
}

int fault_dma(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);
	uint64_t done = 0;
	void *buf = NULL;
	int r;

	if (!dev)
		return device_not_bound(op, op->dev_id);
	r = check_dma(s->core, op, &buf);
	if (r < 0)
		return r;
	if (op->cmd == IOASID_CMD_DEVICE_DMA_PASID && !dev->inv->info.pasid_bits)
		return op_fail(op, EOPNOTSUPP, "device %s has no PASID "
			       "capability: it tags no DMA with a PASID",
			       dev->inv->info.name);
	if (!(dev->inv->info.flags &
	      (IOASID_DEVICE_SIMULATED | IOASID_DEVICE_MOCK)))
		return op_fail(op, EOPNOTSUPP, "device %s is a real device: "
			       "only simulated devices and the kernel's mock "
			       "devices (\"iommufd:mock\") take DMA requests",
			       dev->inv->info.name);
	pthread_rwlock_rdlock(&dev->lock);
	r = run_dma(s, dev, buf, &done, op);
	if (r == -EINPROGRESS) {	/* a page request, not a fault */
		pthread_rwlock_unlock(&dev->lock);
		op->out_bytes = done;
		if (!(op->flags & IOASID_DMA_WRITE))
			op->out_len = (uint32_t)done;
		return r;
	}
	if (r < 0 && r != -ENOENT && dev->ioas)	/* counted for monitoring */
		__atomic_add_fetch(&dev->ioas->nr_faults, 1, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&dev->lock);
	op->out_bytes = done;
	if (!(op->flags & IOASID_DMA_WRITE))
		op->out_len = (uint32_t)done;
	if (r < 0 && r != -ENOENT)
		fault_event(s, dev, op->iova + done);
	return r;
}

int fault_read(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct ioasid_fault *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), n = 0, got;
	struct core *core = s->core;

	/* the core's own records first (all of this session's devices) */
	pthread_mutex_lock(&core->event_lock);
	for (; s->fault_len && n < cap; n++) {
		out[n] = s->faults[s->fault_head];
		s->fault_head = (s->fault_head + 1) % SESSION_FAULT_RING;
		s->fault_len--;
	}
	pthread_mutex_unlock(&core->event_lock);
	for (uint32_t i = 0; i < core->nr_devices && n < cap; i++) {
		struct device *dev = &core->devices[i];

		if (dev->owner != s || !core_ops(core)->read_faults)
			continue;
		if (core_ops(core)->read_faults(dev->be, out + n, cap - n,
						&got))
			continue;
		/* a hole that is a private page of a confidential guest */
		for (uint32_t j = n; j < n + got; j++)
			if (out[j].reason == IOASID_FAULT_NOT_PRESENT &&
			    dev->ioas &&
			    ioas_is_private(dev->ioas, out[j].iova))
				out[j].reason = IOASID_FAULT_PRIVATE;
		n += got;
	}
	op->out_len = n * (uint32_t)sizeof(*out);
	return 0;
}
