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
	fq = calloc(1, sizeof(*fq));
	if (!fq)
		return op_fail(op, ENOMEM, "out of memory");
	fq->depth = op->mode ? op->mode : IOASID_FAULT_QUEUE_DEPTH_DEFAULT;
	fq->timeout_ms = op->length ? (uint32_t)op->length :
				      IOASID_FAULT_TIMEOUT_MS_DEFAULT;
	fq->ring = calloc(fq->depth, sizeof(*fq->ring));
	fq->reqs = calloc(fq->depth, sizeof(*fq->reqs));
	fq->efd = -1;
	if (!fq->ring || !fq->reqs) {
		r = ENOMEM;
		goto fail;
	}
	if (core_ops(s->core)->fault_alloc) {
		r = kernel_queue(s, ioas, nested, fq, op);
		if (r < 0) {
			free(fq->ring);
			free(fq->reqs);
			free(fq);
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
	pthread_mutex_init(&fq->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&fq->answered, &ca);
		pthread_condattr_destroy(&ca);
	}
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
	op->out_id = fq->id;
	op->out_fd = fd;
	return 0;
fail:
	if (fq->efd >= 0)
		close(fq->efd);
	free(fq->ring);
	free(fq->reqs);
	free(fq);
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
