/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recoverable faults: fault queues, page requests and their answers
 * (core/iopf.h says who holds what).
 *
 * A page request lives in the queue's table of requests from the moment
 * the device asks until the device has seen the answer: outstanding
 * (PENDING) until the VMM answers or the timeout passes, then - for an
 * answer the device must see (invalid, timed out; success while a DMA
 * waits for it) - until the device's next DMA at that page, or another
 * timeout.  Its record waits in the ring until the VMM reads it; the
 * ring never holds more records than the table holds requests, so both
 * have the queue's depth.  A request that finds the table full is lost:
 * counted, reported by an overflow record at the next read, and the
 * device's DMA fails.
 *
 * On a kernel backend (iommufd) the kernel keeps the requests: the queue
 * holds the backend's FAULT object (fq->be), whose fd is the one the VMM
 * polls; reads and answers go to it, the cookies are the kernel's, and
 * the ring and table here stay empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/device.h"
#include "core/ioas.h"
#include "core/iopf.h"
#include "core/nested.h"

#define PAGE_MASK_4K	(~(uint64_t)4095)

enum req_state {
	REQ_PENDING,
	REQ_SUCCESS,		/* answered: retry */
	REQ_INVALID,		/* answered: fail */
	REQ_TIMEDOUT,
};

struct page_req {
	uint32_t cookie;
	uint32_t dev_id;
	uint32_t pasid;		/* with has_pasid */
	bool has_pasid;
	bool write;
	uint8_t state;		/* enum req_state */
	uint32_t waiters;	/* DMAs waiting for the answer */
	uint64_t addr;
	uint64_t deadline_ns;	/* PENDING: then it times out; else: dropped */
};

struct fault_queue {
	uint32_t id;
	struct session *owner;
	struct ioas *ioas;		/* the target: one of the two */
	struct nested *nested;
	int efd;			/* readable while records wait */
	uint32_t depth;
	uint32_t timeout_ms;
	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t answered;	/* for DMAs that wait */
	struct ioasid_page_request *ring;
	uint32_t head, len;
	struct page_req *reqs;		/* unordered, nr_reqs of depth */
	uint32_t nr_reqs;
	uint32_t next_cookie;
	uint64_t requests, responses, lost, lost_unreported, timeouts;
	/* each change of the above (core_fault_queues_changed()) */
	uint64_t gen, journaled_gen;
	struct be_fault *be;		/* kernel backends: the kernel's queue */
	struct core *core;
	struct fault_queue *next;	/* in core->fault_queues */
};

static uint32_t target_id(const struct fault_queue *fq)
{
	return fq->nested ? fq->nested->id : fq->ioas->id;
}

static struct fault_queue *find_queue(struct session *s, uint32_t id)
{
	for (struct fault_queue *fq = s->core->fault_queues; id && fq;
	     fq = fq->next)
		if (fq->id == id && fq->owner == s)
			return fq;
	return NULL;
}

uint32_t iopf_id_holders(const struct core *core, uint32_t id)
{
	uint32_t n = 0;

	for (const struct fault_queue *fq = core->fault_queues; fq;
	     fq = fq->next)
		n += fq->id == id;
	return n;
}

static int queue_not_found(struct ioasid_op *op, uint32_t id)
{
	return op_fail(op, ENOENT, "no fault queue %u", id);
}

/* The eventfd says "records wait" exactly while some do (lock held). */
static void signal_records(struct fault_queue *fq)
{
	uint64_t v = 1;

	if (write(fq->efd, &v, sizeof(v)) < 0) {
		/* saturated: it is readable anyway */
	}
}

static void drain_signal(struct fault_queue *fq)
{
	uint64_t v;

	if (read(fq->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled */
	}
}

static void req_remove(struct fault_queue *fq, struct page_req *r)
{
	*r = fq->reqs[--fq->nr_reqs];
	fq->gen++;
}

/* Time out what waited too long, drop answers nobody came for. */
static void reap(struct fault_queue *fq, uint64_t now)
{
	uint32_t i = 0;

	while (i < fq->nr_reqs) {
		struct page_req *r = &fq->reqs[i];

		if (now < r->deadline_ns) {
			i++;
			continue;
		}
		if (r->state == REQ_PENDING) {
			fq->gen++;
			r->state = REQ_TIMEDOUT;
			r->deadline_ns = now + fq->timeout_ms * 1000000ULL;
			fq->timeouts++;
			pthread_cond_broadcast(&fq->answered);
			i++;
			continue;
		}
		if (r->waiters) {
			i++;
			continue;
		}
		req_remove(fq, r);	/* the last moved here: look again */
	}
}

static struct page_req *find_req(struct fault_queue *fq, uint32_t dev_id,
				 bool has_pasid, uint32_t pasid, uint64_t addr)
{
	for (uint32_t i = 0; i < fq->nr_reqs; i++) {
		struct page_req *r = &fq->reqs[i];

		if (r->dev_id == dev_id && r->addr == addr &&
		    r->has_pasid == has_pasid && (!has_pasid ||
						  r->pasid == pasid))
			return r;
	}
	return NULL;
}

static struct page_req *find_cookie(struct fault_queue *fq, uint32_t cookie)
{
	for (uint32_t i = 0; i < fq->nr_reqs; i++)
		if (fq->reqs[i].cookie == cookie)
			return &fq->reqs[i];
	return NULL;
}

/* A new request and its record (lock held); NULL: the queue is full. */
static struct page_req *queue_request(struct fault_queue *fq,
				      const struct device *dev, bool has_pasid,
				      uint32_t pasid, uint64_t addr,
				      bool write, uint64_t now)
{
	struct page_req *r;

	fq->gen++;
	if (fq->nr_reqs == fq->depth || fq->len == fq->depth) {
		fq->lost++;
		if (!fq->lost_unreported++)
			signal_records(fq);
		return NULL;
	}
	if (++fq->next_cookie == 0)
		fq->next_cookie = 1;
	r = &fq->reqs[fq->nr_reqs++];
	*r = (struct page_req){
		.cookie = fq->next_cookie, .dev_id = dev->dev_id,
		.pasid = has_pasid ? pasid : 0, .has_pasid = has_pasid,
		.write = write, .state = REQ_PENDING, .addr = addr,
		.deadline_ns = now + fq->timeout_ms * 1000000ULL,
	};
	fq->ring[(fq->head + fq->len++) % fq->depth] =
		(struct ioasid_page_request){
		.size = sizeof(struct ioasid_page_request),
		.flags = has_pasid ? IOASID_PAGE_REQUEST_PASID : 0,
		.fault_id = fq->id, .target_id = target_id(fq),
		.dev_id = dev->dev_id, .pasid = r->pasid, .addr = addr,
		.perm = write ? IOASID_MAP_WRITE : IOASID_MAP_READ,
		.cookie = r->cookie, .timestamp_ns = now,
	};
	fq->requests++;
	signal_records(fq);
	return r;
}

/* The device sees the answer to @r (lock held): what its DMA returns. */
static int take_answer(struct fault_queue *fq, struct page_req *r,
		       struct ioasid_op *op)
{
	uint8_t state = r->state;
	uint64_t addr = r->addr;
	uint32_t cookie = r->cookie;

	if (!r->waiters)
		req_remove(fq, r);
	switch (state) {
	case REQ_SUCCESS:
		return 0;
	case REQ_INVALID:
		return op_fail(op, EFAULT, "the page request for IOVA 0x%llx "
			       "(cookie %u, fault queue %u) was answered "
			       "invalid", (unsigned long long)addr, cookie,
			       fq->id);
	default:
		return op_fail(op, ETIMEDOUT, "the page request for IOVA "
			       "0x%llx (cookie %u, fault queue %u) was not "
			       "answered within %u ms",
			       (unsigned long long)addr, cookie, fq->id,
			       fq->timeout_ms);
	}
}

static int wait_answer(struct fault_queue *fq, struct page_req **rp,
		       struct ioasid_op *op)
{
	uint32_t cookie = (*rp)->cookie;
	struct page_req *r = *rp;
	struct timespec ts;
	uint64_t dl;
	int ret;

	r->waiters++;
	for (;;) {
		dl = r->deadline_ns;
		ts.tv_sec = (time_t)(dl / 1000000000ULL);
		ts.tv_nsec = (long)(dl % 1000000000ULL);
		pthread_cond_timedwait(&fq->answered, &fq->lock, &ts);
		reap(fq, core_now_ns());
		r = find_cookie(fq, cookie);	/* the table moves */
		if (!r)
			return op_fail(op, EFAULT, "the page request (cookie "
				       "%u) went away unanswered", cookie);
		if (r->state != REQ_PENDING)
			break;
	}
	r->waiters--;
	ret = take_answer(fq, r, op);
	*rp = NULL;
	return ret;
}

int iopf_request(struct fault_queue *fq, const struct device *dev,
		 bool has_pasid, uint32_t pasid, uint64_t addr, bool write,
		 bool wait, struct ioasid_op *op)
{
	uint64_t now = core_now_ns();
	struct page_req *r;
	int ret;

	addr &= PAGE_MASK_4K;
	if (fq->be) {		/* the backend raised it in the kernel */
		__atomic_add_fetch(&fq->requests, 1, __ATOMIC_RELAXED);
		return op_fail(op, EINPROGRESS, "IOVA 0x%llx is not present: a "
			       "page request is outstanding on fault queue %u "
			       "(the kernel's); retry after the answer",
			       (unsigned long long)addr, fq->id);
	}
	pthread_mutex_lock(&fq->lock);
	reap(fq, now);
	r = find_req(fq, dev->dev_id, has_pasid, pasid, addr);
	if (r && r->state != REQ_PENDING) {
		/* the answer to the device's last request at this page */
		ret = take_answer(fq, r, op);
		if (ret < 0 || r->waiters)
			goto out;
		r = NULL;		/* success, yet not present: ask again */
	}
	if (!r) {
		r = queue_request(fq, dev, has_pasid, pasid, addr, write, now);
		if (!r) {
			ret = op_fail(op, EFAULT, "page request for IOVA 0x%llx "
				      "lost: fault queue %u is full (%u "
				      "requests outstanding)",
				      (unsigned long long)addr, fq->id,
				      fq->depth);
			goto out;
		}
	}
	if (wait) {
		ret = wait_answer(fq, &r, op);
		goto out;
	}
	ret = op_fail(op, EINPROGRESS, "IOVA 0x%llx is not present: page "
		      "request %u is outstanding on fault queue %u; retry "
		      "after the answer", (unsigned long long)addr, r->cookie,
		      fq->id);
out:
	pthread_mutex_unlock(&fq->lock);
	return ret;
}

static void queue_free(struct core *core, struct fault_queue *fq)
{
	struct fault_queue **p = &core->fault_queues;

	while (*p && *p != fq)
		p = &(*p)->next;
	if (*p)
		*p = fq->next;
	if (fq->nested)
		__atomic_store_n(&fq->nested->fq, NULL, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&fq->ioas->fq, NULL, __ATOMIC_RELEASE);
	if (fq->be)
		core_ops(core)->fault_free(fq->be);
	close(fq->efd);
	pthread_cond_destroy(&fq->answered);
	pthread_mutex_destroy(&fq->lock);
	free(fq->ring);
	free(fq->reqs);
	free(fq);
}

void iopf_target_gone(struct core *core, struct fault_queue *fq)
{
	if (fq)
		queue_free(core, fq);
}

void iopf_release_session(struct core *core, struct session *s)
{
	struct fault_queue *fq = core->fault_queues, *next;

	for (; fq; fq = next) {
		next = fq->next;
		if (fq->owner == s)
			queue_free(core, fq);
	}
}

/* IOAS_ID: the target (an IOAS or a nested table of the session). */
static int find_target(struct session *s, struct ioasid_op *op,
		       struct ioas **ioas, struct nested **nested)
{
	struct ioas *a = NULL;

	*nested = nested_find(s, op->ioas_id);
	if (*nested)
		return 0;
	if (op->ioas_id)
		HASH_FIND(hh, s->core->ioas_table, &op->ioas_id,
			  sizeof(op->ioas_id), a);
	if (!a || a->owner != s)
		return op_fail(op, ENOENT, "no IOAS or nested table %u",
			       op->ioas_id);
	*ioas = a;
	return 0;
}

static int check_alloc(struct session *s, struct ioasid_op *op,
		       struct fault_queue *have)
{
	if (op->flags)
		return op_fail(op, EOPNOTSUPP, "unknown fault queue flags "
			       "0x%x", op->flags);
	if (op->mode > IOASID_FAULT_QUEUE_DEPTH_MAX)
		return op_fail(op, EINVAL, "depth %u exceeds %u", op->mode,
			       IOASID_FAULT_QUEUE_DEPTH_MAX);
	if (op->length > IOASID_FAULT_TIMEOUT_MS_MAX)
		return op_fail(op, EINVAL, "timeout %llu ms exceeds %u ms",
			       (unsigned long long)op->length,
			       IOASID_FAULT_TIMEOUT_MS_MAX);
	if (have)
		return op_fail(op, EEXIST, "%u already has fault queue %u",
			       op->ioas_id, have->id);
	if (!core_ops(s->core)->dma_page_requests &&
	    !core_ops(s->core)->fault_alloc)
		return op_fail(op, EOPNOTSUPP, "the %s backend has no fault "
			       "queues", core_ops(s->core)->name);
	return 0;
}

/*
 * A kernel backend's queue: the kernel's FAULT object and its fd.  The
 * target's tables that exist already (its devices attached) are
 * replaced by ones that carry it, all or nothing (the backend).
 */
static int kernel_queue(struct session *s, struct ioas *ioas,
			struct nested *nested, struct fault_queue *fq,
			struct ioasid_op *op)
{
	char why[IOASID_ERRMSG_MAX] = "";
	uint32_t target = nested ? nested->id : ioas->id;
	int r;

	r = core_ops(s->core)->fault_alloc(nested ? nested->parent->be :
						    ioas->be,
					   nested ? nested->be : NULL,
					   &fq->be, &fq->efd, why,
					   sizeof(why));
	if (r < 0)
		return op_fail(op, -r, "cannot give %s %u a fault queue in "
			       "the kernel: %s", nested ? "nested table" :
			       "IOAS", target, why[0] ? why : strerror(-r));
	return 0;
}

/* A queue queue_new() made that nobody got (no descriptor yet). */
static void queue_discard(struct fault_queue *fq)
{
	free(fq->ring);
	free(fq->reqs);
	free(fq);
}

/* A queue of @op's depth and timeout, empty, not anyone's yet; or NULL. */
static struct fault_queue *queue_new(const struct ioasid_op *op)
{
	struct fault_queue *fq = calloc(1, sizeof(*fq));

	if (!fq)
		return NULL;
	fq->depth = op->mode ? op->mode : IOASID_FAULT_QUEUE_DEPTH_DEFAULT;
	fq->timeout_ms = op->length ? (uint32_t)op->length :
				      IOASID_FAULT_TIMEOUT_MS_DEFAULT;
	fq->ring = calloc(fq->depth, sizeof(*fq->ring));
	fq->reqs = calloc(fq->depth, sizeof(*fq->reqs));
	fq->efd = -1;
	if (!fq->ring || !fq->reqs) {
		queue_discard(fq);
		return NULL;
	}
	return fq;
}

/* @fq, made, becomes the target's: its id, lock, place in the core. */
static void queue_link(struct session *s, struct ioas *ioas,
		       struct nested *nested, struct fault_queue *fq)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&fq->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fq->answered, &ca);
	pthread_condattr_destroy(&ca);
	fq->id = core_alloc_id(s->core);
	fq->owner = s;
	fq->core = s->core;
	fq->ioas = nested ? nested->parent : ioas;
	fq->nested = nested;
	fq->next = s->core->fault_queues;
	s->core->fault_queues = fq;
	if (nested)
		__atomic_store_n(&nested->fq, fq, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&ioas->fq, fq, __ATOMIC_RELEASE);
}

static int iopf_alloc_carried(struct session *s, struct ioas *ioas,
			      struct nested *nested, struct ioasid_op *op);

int iopf_alloc(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct nested *nested = NULL;
	struct ioas *ioas = NULL;
	struct fault_queue *fq;
	int r, fd;

	r = find_target(s, op, &ioas, &nested);
	if (r < 0)
		return r;
	r = check_alloc(s, op, nested ? nested->fq : ioas->fq);
	if (r < 0)
		return r;
	if (op->fd >= 0 || op->in_len)
		return iopf_alloc_carried(s, ioas, nested, op);
	fq = queue_new(op);
	if (!fq)
		return op_fail(op, ENOMEM, "out of memory");
	if (core_ops(s->core)->fault_alloc) {
		r = kernel_queue(s, ioas, nested, fq, op);
		if (r < 0) {
			queue_discard(fq);
			return r;
		}
	} else {
		fq->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fq->efd < 0) {
			r = errno;
			goto fail;
		}
	}
	fd = fcntl(fq->efd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		r = errno;
		if (fq->be)
			core_ops(s->core)->fault_free(fq->be);
		fq->be = NULL;
		goto fail;
	}
	queue_link(s, ioas, nested, fq);
	op->out_id = fq->id;
	op->out_fd = fd;
	return 0;
fail:
	if (fq->efd >= 0)
		close(fq->efd);
	queue_discard(fq);
	return op_fail(op, r, "cannot allocate the fault queue: %s",
		       strerror(r));
}

int iopf_destroy(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct fault_queue *fq = find_queue(s, op->ioas_id2);
	uint32_t n;

	if (!fq)
		return queue_not_found(op, op->ioas_id2);
	n = fq->nested ? fq->nested->nr_devices :
			 fq->ioas->nr_devices + fq->ioas->nr_pasids;
	if (n)
		return op_fail(op, EBUSY, "fault queue %u: %u device(s) or "
			       "PASID(s) are still attached to %u", fq->id, n,
			       target_id(fq));
	if (fq->be && core_ops(s->core)->fault_unhook) {
		char why[IOASID_ERRMSG_MAX] = "";
		int r = core_ops(s->core)->fault_unhook(fq->be, why,
							sizeof(why));

		if (r < 0)
			return op_fail(op, -r, "fault queue %u stays: %s",
				       fq->id, why[0] ? why : strerror(-r));
	}
	queue_free(s->core, fq);
	return 0;
}

int iopf_read(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct fault_queue *fq = find_queue(s, op->ioas_id2);
	struct ioasid_page_request *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), n = 0;

	if (!fq)
		return queue_not_found(op, op->ioas_id2);
	if (!cap)
		return op_fail(op, EINVAL, "no room for one record");
	if (fq->be) {
		int r = core_ops(s->core)->fault_read(fq->be, out, cap, &n);

		if (r < 0)
			return op_fail(op, -r, "cannot read the kernel's fault "
				       "queue: %s", strerror(-r));
		for (uint32_t i = 0; i < n; i++) {
			out[i].fault_id = fq->id;
			out[i].target_id = target_id(fq);
			out[i].timestamp_ns = core_now_ns();
		}
		op->out_len = n * (uint32_t)sizeof(*out);
		return 0;
	}
	pthread_mutex_lock(&fq->lock);
	reap(fq, core_now_ns());
	if (fq->lost_unreported || fq->len)
		fq->gen++;
	if (fq->lost_unreported) {
		out[n++] = (struct ioasid_page_request){
			.size = sizeof(*out),
			.flags = IOASID_PAGE_REQUEST_OVERFLOW,
			.fault_id = fq->id, .target_id = target_id(fq),
			.lost = fq->lost_unreported,
			.timestamp_ns = core_now_ns(),
		};
		fq->lost_unreported = 0;
	}
	for (; fq->len && n < cap; n++) {
		out[n] = fq->ring[fq->head];
		fq->head = (fq->head + 1) % fq->depth;
		fq->len--;
	}
	if (!fq->len)
		drain_signal(fq);
	pthread_mutex_unlock(&fq->lock);
	op->out_len = n * (uint32_t)sizeof(*out);
	return 0;
}

int iopf_respond(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct fault_queue *fq = find_queue(s, op->ioas_id2);
	struct ioasid_event ev = { .type = IOASID_EVENT_PAGE_RESPONSE };
	struct page_req *r;
	int ret = 0;

	if (!fq)
		return queue_not_found(op, op->ioas_id2);
	if (op->flags != IOASID_PAGE_RESPONSE_SUCCESS &&
	    op->flags != IOASID_PAGE_RESPONSE_INVALID)
		return op_fail(op, EINVAL, "response code %u is neither "
			       "success (0) nor invalid (1)", op->flags);
	if (fq->be) {
		ret = op->mode ? core_ops(s->core)->fault_respond(fq->be,
						op->mode, op->flags) : -ENOENT;
		if (ret == -ENOENT)
			return op_fail(op, ENOENT, "fault queue %u has no "
				       "outstanding page request %u (the "
				       "kernel's cookies)", fq->id, op->mode);
		if (ret < 0)
			return op_fail(op, -ret, "cannot answer page request "
				       "%u: %s", op->mode, strerror(-ret));
		fq->responses++;
		ev.arg = op->flags;
		core_emit_to(s, IOASID_EVENT_GROUP_FAULT, &ev);
		return 0;
	}
	pthread_mutex_lock(&fq->lock);
	reap(fq, core_now_ns());
	r = op->mode ? find_cookie(fq, op->mode) : NULL;
	if (!r) {
		ret = op_fail(op, ENOENT, "fault queue %u has no outstanding "
			      "page request %u", fq->id, op->mode);
	} else if (r->state == REQ_TIMEDOUT) {
		ret = op_fail(op, ETIMEDOUT, "page request %u timed out "
			      "unanswered (%u ms): the device saw it fail",
			      r->cookie, fq->timeout_ms);
	} else if (r->state != REQ_PENDING) {
		ret = op_fail(op, EALREADY, "page request %u was answered "
			      "already", r->cookie);
	} else {
		ev.id = r->dev_id;
		ev.iova = r->addr;
		ev.arg = op->flags;
		fq->responses++;
		fq->gen++;
		if (op->flags == IOASID_PAGE_RESPONSE_SUCCESS && !r->waiters) {
			req_remove(fq, r);	/* the device just retries */
		} else {
			r->state = op->flags == IOASID_PAGE_RESPONSE_SUCCESS ?
				   REQ_SUCCESS : REQ_INVALID;
			r->deadline_ns = core_now_ns() +
					 fq->timeout_ms * 1000000ULL;
			pthread_cond_broadcast(&fq->answered);
		}
	}
	pthread_mutex_unlock(&fq->lock);
	if (!ret)
		core_emit_to(s, IOASID_EVENT_GROUP_FAULT, &ev);
	return ret;
}

static void fill_info(struct fault_queue *fq, struct ioasid_fault_queue_info *i)
{
	uint32_t outstanding = 0;

	pthread_mutex_lock(&fq->lock);
	reap(fq, core_now_ns());
	for (uint32_t k = 0; k < fq->nr_reqs; k++)
		outstanding += fq->reqs[k].state == REQ_PENDING;
	*i = (struct ioasid_fault_queue_info){
		.size = sizeof(*i), .fault_id = fq->id,
		.target_id = target_id(fq), .depth = fq->depth,
		.timeout_ms = fq->timeout_ms, .queued = fq->len,
		.outstanding = outstanding, .requests = fq->requests,
		.responses = fq->responses, .lost = fq->lost,
		.timeouts = fq->timeouts,
	};
	if (fq->be)	/* the kernel's: what was asked and not answered */
		i->outstanding = (uint32_t)(__atomic_load_n(&fq->requests,
					    __ATOMIC_RELAXED) - fq->responses);
	pthread_mutex_unlock(&fq->lock);
}

int iopf_info(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct fault_queue *fq = find_queue(s, op->ioas_id2);
	struct ioasid_fault_queue_info info;

	if (!fq)
		return queue_not_found(op, op->ioas_id2);
	fill_info(fq, &info);
	return op_out_struct(op, &info, sizeof(info));
}

int iopf_list(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct ioasid_fault_queue_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), n = 0;

	for (struct fault_queue *fq = s->core->fault_queues; fq;
	     fq = fq->next) {
		if (fq->owner != s && !s->observer)
			continue;
		if (n < cap)
			fill_info(fq, &out[n]);
		n++;
	}
	return op_out_array(op, n, sizeof(*out));
}

/*
 * ---- a queue in the state image (core/export.c) ----------------------
 *
 * A queue travels as its FAULT_QUEUE_ALLOC op (expect_id its id), with
 * its eventfd as FD_INDEX - the same open file, so the descriptors the
 * VMM holds stay the ones that signal - and, as DATA, its requests and
 * the records not read yet: a struct carried_queue, then nr struct
 * carried_req.  A deadline travels as the time it had left: the
 * successor's clock starts that much again at the import, so a request
 * never times out sooner than it would have (the hand-over's own time
 * is added to it).  Requests a DMA waited for travel without the waiter
 * (it was the predecessor's thread); the device sees the answer at its
 * next DMA at that page, as for any other.  Only a replay (s->core->
 * replaying) may hand a queue a descriptor or a state.
 *
 * A kernel backend's queue (iommufd) keeps its requests in the kernel:
 * the op's descriptor is the kernel's fault fd (the same open file, so
 * the requests not read yet and the cookies of those read stay valid,
 * and the VMM's descriptors of it too), a KOBJ record before the op
 * names the FAULT object, and DATA carries the counters and no request
 * (one is refused).  The successor's backend adopts the object
 * (->fault_adopt), checking the fd and the id with the kernel.
 */
#define CARRIED_VERSION		1
#define CARRIED_HAS_PASID	0x1
#define CARRIED_WRITE		0x2
#define CARRIED_QUEUED		0x4	/* a record of it waits, at ring_pos */
#define CARRIED_FLAGS		0x7
#define REQ_RECORD_ONLY		0xff	/* its record waits, it went */
#define RING_POS_NONE		0xffff

struct carried_queue {
	uint32_t version;		/* CARRIED_VERSION */
	uint32_t nr;			/* struct carried_req that follow */
	uint32_t next_cookie;
	uint32_t reserved;		/* 0 */
	uint64_t requests, responses, lost, lost_unreported, timeouts;
};

struct carried_req {
	uint32_t cookie;
	uint32_t dev_id;
	uint32_t pasid;
	uint8_t state;			/* enum req_state, REQ_RECORD_ONLY */
	uint8_t flags;			/* CARRIED_* */
	uint16_t ring_pos;		/* with CARRIED_QUEUED */
	uint64_t addr;
	uint64_t remaining_ns;		/* of its deadline */
	uint64_t timestamp_ns;		/* of its record */
};

/*
 * What one op's DATA holds (a codec attribute: under 64 KiB), about 1600
 * requests and records: more does not travel (iopf_export()).
 */
#define CARRIED_MAX_BYTES	(64 * 1024 - 512)
#define CARRIED_MAX_REQS \
	((CARRIED_MAX_BYTES - sizeof(struct carried_queue)) / \
	 sizeof(struct carried_req))

static struct carried_req carry_req(const struct page_req *r, uint64_t now)
{
	return (struct carried_req){
		.cookie = r->cookie, .dev_id = r->dev_id, .pasid = r->pasid,
		.state = r->state, .ring_pos = RING_POS_NONE, .addr = r->addr,
		.flags = (r->has_pasid ? CARRIED_HAS_PASID : 0) |
			 (r->write ? CARRIED_WRITE : 0),
		.remaining_ns = r->deadline_ns > now ? r->deadline_ns - now : 0,
	};
}

/* The ring's record @pos on its request's entry, or on one of its own. */
static void carry_record(struct carried_req *v, uint32_t *nr, uint32_t pos,
			 const struct ioasid_page_request *rec)
{
	struct carried_req *e = NULL;

	for (uint32_t i = 0; i < *nr && !e; i++)
		if (v[i].cookie == rec->cookie && v[i].state !=
		    REQ_RECORD_ONLY && !(v[i].flags & CARRIED_QUEUED))
			e = &v[i];
	if (!e) {
		e = &v[(*nr)++];
		*e = (struct carried_req){
			.cookie = rec->cookie, .dev_id = rec->dev_id,
			.pasid = rec->pasid, .state = REQ_RECORD_ONLY,
			.addr = rec->addr,
			.flags = (rec->flags & IOASID_PAGE_REQUEST_PASID ?
				  CARRIED_HAS_PASID : 0) |
				 (rec->perm & IOASID_MAP_WRITE ?
				  CARRIED_WRITE : 0),
		};
	}
	e->flags |= CARRIED_QUEUED;
	e->ring_pos = (uint16_t)pos;
	e->timestamp_ns = rec->timestamp_ns;
}

/* @fq's carried state (lock held): *buf (free it), *len. */
static int carry_queue(struct fault_queue *fq, void **buf, uint32_t *len)
{
	uint64_t now = core_now_ns();
	struct carried_queue *h;
	struct carried_req *v;
	uint32_t nr = 0;

	reap(fq, now);
	h = calloc(1, sizeof(*h) + (fq->nr_reqs + fq->len) * sizeof(*v));
	if (!h)
		return -ENOMEM;
	v = (struct carried_req *)(h + 1);
	for (uint32_t i = 0; i < fq->nr_reqs; i++)
		v[nr++] = carry_req(&fq->reqs[i], now);
	for (uint32_t i = 0; i < fq->len; i++)
		carry_record(v, &nr, i, &fq->ring[(fq->head + i) % fq->depth]);
	*h = (struct carried_queue){
		.version = CARRIED_VERSION, .nr = nr,
		.next_cookie = fq->next_cookie, .requests = fq->requests,
		.responses = fq->responses, .lost = fq->lost,
		.lost_unreported = fq->lost_unreported,
		.timeouts = fq->timeouts,
	};
	*buf = h;
	*len = (uint32_t)(sizeof(*h) + nr * sizeof(*v));
	return nr > CARRIED_MAX_REQS ? -E2BIG : 0;
}

static int cmp_queue_id(const void *a, const void *b)
{
	const struct fault_queue *x = *(struct fault_queue *const *)a;
	const struct fault_queue *y = *(struct fault_queue *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* One queue's op: FAULT_QUEUE_ALLOC with its eventfd and state. */
static int export_queue(struct fault_queue *fq, iopf_emit_fn emit,
			void *arg, struct ioasid_op *why)
{
	struct ioasid_op op;
	void *state = NULL;
	uint32_t len = 0;
	int r;

	const struct backend_ops *ops = core_ops(fq->core);
	struct ioasid_kobj k;
	struct be_kobj bk;

	if (fq->be) {
		if (!ops->kobj || !ops->fault_adopt ||
		    ops->kobj(fq->be, BE_KOBJ_FAULT, &bk) < 0)
			return op_fail(why, EOPNOTSUPP, "fault queue %u is the "
				       "kernel's: the %s backend cannot hand "
				       "it over (destroy it, export, and "
				       "allocate it again after the import)",
				       fq->id, ops->name);
		_Static_assert(sizeof(bk) == sizeof(k), "be_kobj layout");
		memcpy(&k, &bk, sizeof(k));
	}
	pthread_mutex_lock(&fq->lock);
	r = carry_queue(fq, &state, &len);
	pthread_mutex_unlock(&fq->lock);
	if (r == -E2BIG)
		r = op_fail(why, E2BIG, "fault queue %u holds more page "
			    "requests and records than a state image carries "
			    "(%zu): read and answer some first", fq->id,
			    CARRIED_MAX_REQS);
	else if (r < 0)
		r = op_fail(why, -r, "out of memory");
	if (r == 0) {
		ioasid_op_init(&op, IOASID_CMD_FAULT_QUEUE_ALLOC);
		op.ioas_id = target_id(fq);
		op.mode = fq->depth;
		op.length = fq->timeout_ms;
		op.fd = fq->efd;
		op.in = state;
		op.in_len = len;
		r = emit(arg, &op, fq->id, fq->be ? &k : NULL);
	}
	free(state);
	return r;
}

int iopf_export(struct session *s, iopf_emit_fn emit, void *arg,
		struct ioasid_op *why)
{
	struct fault_queue **v;
	uint32_t n = 0;
	int r = 0;

	for (struct fault_queue *fq = s->core->fault_queues; fq; fq = fq->next)
		n += fq->owner == s;
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return op_fail(why, ENOMEM, "out of memory");
	n = 0;
	for (struct fault_queue *fq = s->core->fault_queues; fq; fq = fq->next)
		if (fq->owner == s)
			v[n++] = fq;
	qsort(v, n, sizeof(*v), cmp_queue_id);
	for (uint32_t i = 0; i < n && r == 0; i++)
		r = export_queue(v[i], emit, arg, why);
	free(v);
	return r;
}

static int bad_state(struct ioasid_op *op, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad_state(struct ioasid_op *op, const char *fmt, ...)
{
	char msg[IOASID_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return op_fail(op, EBADMSG, "the fault queue's carried state: %s",
		       msg);
}

static int check_carried_req(struct session *s, const struct fault_queue *fq,
			     const struct carried_req *c, struct ioasid_op *op)
{
	if (c->state > REQ_TIMEDOUT && c->state != REQ_RECORD_ONLY)
		return bad_state(op, "request %u: unknown state %u",
				 c->cookie, c->state);
	if (c->flags & ~CARRIED_FLAGS)
		return bad_state(op, "request %u: unknown flags 0x%x",
				 c->cookie, c->flags);
	if (c->state == REQ_RECORD_ONLY && !(c->flags & CARRIED_QUEUED))
		return bad_state(op, "request %u: neither outstanding nor "
				 "waiting to be read", c->cookie);
	if (!c->cookie || (c->addr & ~PAGE_MASK_4K) ||
	    (!(c->flags & CARRIED_HAS_PASID) && c->pasid))
		return bad_state(op, "request %u: bad cookie, address or "
				 "PASID", c->cookie);
	if (c->remaining_ns > fq->timeout_ms * 1000000ULL)
		return bad_state(op, "request %u: %llu ns left exceed the "
				 "timeout (%u ms)", c->cookie,
				 (unsigned long long)c->remaining_ns,
				 fq->timeout_ms);
	if (!device_find_bound(s, c->dev_id))
		return bad_state(op, "request %u: no bound device %u",
				 c->cookie, c->dev_id);
	return 0;
}

/* Entry @c into @fq's table and ring (checked: room, unique places). */
static int restore_req(struct fault_queue *fq, const struct carried_req *c,
		       uint64_t now, struct ioasid_op *op)
{
	bool pasid = c->flags & CARRIED_HAS_PASID;

	if (c->state != REQ_RECORD_ONLY) {
		if (fq->nr_reqs == fq->depth)
			return bad_state(op, "more requests than its depth "
					 "(%u)", fq->depth);
		if (find_cookie(fq, c->cookie))
			return bad_state(op, "cookie %u twice", c->cookie);
		fq->reqs[fq->nr_reqs++] = (struct page_req){
			.cookie = c->cookie, .dev_id = c->dev_id,
			.pasid = c->pasid, .has_pasid = pasid,
			.write = c->flags & CARRIED_WRITE, .state = c->state,
			.addr = c->addr, .deadline_ns = now + c->remaining_ns,
		};
	}
	if (!(c->flags & CARRIED_QUEUED))
		return 0;
	if (c->ring_pos >= fq->depth || fq->ring[c->ring_pos].size)
		return bad_state(op, "request %u: record place %u is taken "
				 "or beyond the depth (%u)", c->cookie,
				 c->ring_pos, fq->depth);
	fq->ring[c->ring_pos] = (struct ioasid_page_request){
		.size = sizeof(struct ioasid_page_request),
		.flags = pasid ? IOASID_PAGE_REQUEST_PASID : 0,
		.dev_id = c->dev_id, .pasid = c->pasid, .addr = c->addr,
		.perm = c->flags & CARRIED_WRITE ? IOASID_MAP_WRITE :
						   IOASID_MAP_READ,
		.cookie = c->cookie, .timestamp_ns = c->timestamp_ns,
	};
	fq->len++;
	return 0;
}

/* @op's DATA into @fq (made, empty, not linked yet). */
static int restore_queue(struct session *s, struct fault_queue *fq,
			 struct ioasid_op *op)
{
	const uint8_t *in = op->in;
	struct carried_queue h;
	struct carried_req c;
	uint64_t now = core_now_ns();
	int r = 0;

	if (!op->in_len)
		return 0;
	if (op->in_len < sizeof(h))
		return bad_state(op, "%u bytes, not a header", op->in_len);
	memcpy(&h, in, sizeof(h));
	if (h.version != CARRIED_VERSION || h.reserved)
		return bad_state(op, "version %u, not %u", h.version,
				 CARRIED_VERSION);
	if (h.nr > 2 * fq->depth ||
	    op->in_len != sizeof(h) + h.nr * sizeof(c))
		return bad_state(op, "%u requests in %u bytes (depth %u)",
				 h.nr, op->in_len, fq->depth);
	if (h.lost_unreported > h.lost)
		return bad_state(op, "%llu lost unreported of %llu lost",
				 (unsigned long long)h.lost_unreported,
				 (unsigned long long)h.lost);
	for (uint32_t i = 0; i < h.nr && r == 0; i++) {
		memcpy(&c, in + sizeof(h) + i * sizeof(c), sizeof(c));
		r = check_carried_req(s, fq, &c, op);
		if (r == 0)
			r = restore_req(fq, &c, now, op);
	}
	/* places 0 .. len-1, each once: the ring as it was, oldest first */
	for (uint32_t i = 0; r == 0 && i < fq->len; i++)
		if (!fq->ring[i].size)
			r = bad_state(op, "record place %u is empty", i);
	fq->next_cookie = h.next_cookie;
	fq->requests = h.requests;
	fq->responses = h.responses;
	fq->lost = h.lost;
	fq->lost_unreported = h.lost_unreported;
	fq->timeouts = h.timeouts;
	return r;
}

/* The eventfd the image hands over (FD_INDEX), or a new one. */
static int carried_eventfd(int fd, struct ioasid_op *op)
{
	char path[64], link[64];
	ssize_t n;

	if (fd < 0) {
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		return fd < 0 ? op_fail(op, errno, "eventfd: %s",
					strerror(errno)) : fd;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0 || (link[n] = 0, strcmp(link, "anon_inode:[eventfd]")))
		return op_fail(op, EINVAL, "the fault queue's descriptor %d "
			       "is not an eventfd", fd);
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return op_fail(op, e, "cannot keep the fault queue's "
			       "eventfd: %s", strerror(e));
	}
	return fd;
}

/*
 * Restored records name @fq; its eventfd says they wait (or that the
 * requests lost are not reported yet), as its predecessor's did.
 */
static void carried_in(struct fault_queue *fq)
{
	for (uint32_t i = 0; i < fq->len; i++) {
		fq->ring[i].fault_id = fq->id;
		fq->ring[i].target_id = target_id(fq);
	}
	drain_signal(fq);	/* what the predecessor signalled: again */
	if (fq->len || fq->lost_unreported)
		signal_records(fq);
}

/*
 * A replayed FAULT_QUEUE_ALLOC of a kernel backend: the predecessor's
 * FAULT object and its fd (FD_INDEX), adopted; DATA its counters.
 */
static int adopt_kernel_queue(struct session *s, struct ioas *ioas,
			      struct nested *nested, struct ioasid_op *op)
{
	const struct backend_ops *ops = core_ops(s->core);
	char why[IOASID_ERRMSG_MAX] = "";
	uint32_t target = nested ? nested->id : ioas->id;
	struct fault_queue *fq;
	int r;

	if (!ops->fault_adopt)
		return op_fail(op, EOPNOTSUPP, "the %s backend's fault queues "
			       "are the kernel's: it cannot take one over",
			       ops->name);
	if (op->fd < 0)
		return op_fail(op, EINVAL, "the kernel's fault queue on %u "
			       "comes without its fault fd", target);
	fq = queue_new(op);
	if (!fq)
		return op_fail(op, ENOMEM, "out of memory");
	r = restore_queue(s, fq, op);
	if (r == 0 && (fq->nr_reqs || fq->len))
		r = bad_state(op, "%u requests and %u records: a kernel "
			      "queue's are the kernel's, the image carries "
			      "none", fq->nr_reqs, fq->len);
	if (r < 0) {
		queue_discard(fq);
		return r;
	}
	r = ops->fault_adopt(nested ? nested->parent->be : ioas->be,
			     nested ? nested->be : NULL, op->fd, &fq->be,
			     &fq->efd, why, sizeof(why));
	if (r < 0) {
		queue_discard(fq);
		return op_fail(op, -r, "cannot take the kernel's fault queue "
			       "on %s %u over: %s", nested ? "nested table" :
			       "IOAS", target, why[0] ? why : strerror(-r));
	}
	queue_link(s, ioas, nested, fq);
	op->out_id = fq->id;
	op->out_fd = -1;	/* the VMM's descriptors are the image's */
	return 0;
}

/* A replayed FAULT_QUEUE_ALLOC with the image's eventfd and state. */
static int iopf_alloc_carried(struct session *s, struct ioas *ioas,
			      struct nested *nested, struct ioasid_op *op)
{
	struct fault_queue *fq;
	int r;

	if (!s->core->replaying)
		return op_fail(op, EINVAL, "a fault queue's descriptor and "
			       "state come from a state image only");
	if (core_ops(s->core)->fault_alloc)
		return adopt_kernel_queue(s, ioas, nested, op);
	fq = queue_new(op);
	if (!fq)
		return op_fail(op, ENOMEM, "out of memory");
	r = restore_queue(s, fq, op);
	if (r == 0)
		r = fq->efd = carried_eventfd(op->fd, op);
	if (r < 0) {
		queue_discard(fq);
		return r;
	}
	queue_link(s, ioas, nested, fq);
	carried_in(fq);
	op->out_id = fq->id;
	op->out_fd = -1;	/* the VMM's descriptors are the image's */
	return 0;
}

/* ---- a queue in ioasidd's journal (core.h: core_fault_queues_changed) -- */

int iopf_journal_changed(struct session *s, core_fault_state_fn emit,
			 void *arg)
{
	int r = 0;

	/* ops are serialised: no queue now, none made under our feet */
	if (!__atomic_load_n(&s->core->fault_queues, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&s->core->lock);
	for (struct fault_queue *fq = s->core->fault_queues; fq && r == 0;
	     fq = fq->next) {
		void *state = NULL;
		uint32_t len = 0;

		if (fq->owner != s || fq->be ||
		    __atomic_load_n(&fq->gen, __ATOMIC_RELAXED) ==
		    fq->journaled_gen)
			continue;
		pthread_mutex_lock(&fq->lock);
		r = carry_queue(fq, &state, &len);
		fq->journaled_gen = fq->gen;
		pthread_mutex_unlock(&fq->lock);
		if (r == -E2BIG)	/* too big for an op's DATA only */
			r = 0;
		if (r == 0)
			r = emit(arg, fq->id, state, len);
		free(state);
	}
	pthread_mutex_unlock(&s->core->lock);
	return r;
}

/* @from's requests, records and counters become @fq's (both locked). */
static void take_state(struct fault_queue *fq, struct fault_queue *from)
{
	struct ioasid_page_request *ring = fq->ring;
	struct page_req *reqs = fq->reqs;

	fq->ring = from->ring;
	fq->reqs = from->reqs;
	from->ring = ring;
	from->reqs = reqs;
	fq->head = 0;
	fq->len = from->len;
	fq->nr_reqs = from->nr_reqs;
	fq->next_cookie = from->next_cookie;
	fq->requests = from->requests;
	fq->responses = from->responses;
	fq->lost = from->lost;
	fq->lost_unreported = from->lost_unreported;
	fq->timeouts = from->timeouts;
}

int iopf_journal_replay(struct session *s, uint32_t fault_id,
			const void *state, uint32_t len, struct ioasid_op *why)
{
	struct fault_queue *fq, *tmp = NULL;
	int r;

	pthread_mutex_lock(&s->core->lock);
	fq = find_queue(s, fault_id);
	if (!fq || fq->be) {
		r = op_fail(why, ENOENT, "no fault queue %u of this "
			    "simulated backend's session", fault_id);
		goto out;
	}
	ioasid_op_init(why, IOASID_CMD_FAULT_QUEUE_ALLOC);
	why->mode = fq->depth;
	why->length = fq->timeout_ms;
	why->in = state;
	why->in_len = len;
	tmp = queue_new(why);
	r = tmp ? restore_queue(s, tmp, why) :
		  op_fail(why, ENOMEM, "out of memory");
	if (r == 0 && !len)
		r = bad_state(why, "empty");
	if (r == 0) {
		pthread_mutex_lock(&fq->lock);
		take_state(fq, tmp);
		carried_in(fq);
		fq->journaled_gen = ++fq->gen;
		pthread_mutex_unlock(&fq->lock);
	}
	if (tmp)
		queue_discard(tmp);
out:
	pthread_mutex_unlock(&s->core->lock);
	return r;
}
