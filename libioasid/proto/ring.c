/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request ring's two ends (the protocol is described in ring.h).
 * Every word of shared memory is accessed with one atomic operation.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "proto/ring.h"

#define LD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define ST(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

static struct ring_header *hdr(unsigned char *base)
{
	return (struct ring_header *)base;
}

static struct ring_sqe *sqe_at(unsigned char *base, uint32_t i)
{
	return (struct ring_sqe *)(base + RING_SQ_OFF) + (i % RING_ENTRIES);
}

static struct ring_cqe *cqe_at(unsigned char *base, uint32_t i)
{
	return (struct ring_cqe *)(base + RING_CQ_OFF) + (i % RING_ENTRIES);
}

/* Our CPU + 1, 0 if unknown (what the hints hold). */
static uint32_t cpu_hint(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (uint32_t)cpu + 1;
}

void ring_relax(bool same_cpu)
{
	if (same_cpu) {
		sched_yield();
		return;
	}
	for (int i = 0; i < 4; i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ __volatile__("yield");
#else
		__asm__ __volatile__("" ::: "memory");
#endif
	}
}

/* ---- daemon -------------------------------------------------------------- */

void ring_consumer_init(struct ring_consumer *rc, void *base)
{
	struct ring_header *h = base;

	memset(rc, 0, sizeof(*rc));
	rc->base = base;
	h->entries = RING_ENTRIES;
	h->version = RING_VERSION;
	h->flags = RING_NEED_WAKEUP;
	__atomic_store_n(&h->magic, RING_MAGIC, __ATOMIC_RELEASE);
}

void ring_break(struct ring_consumer *rc)
{
	rc->broken = true;
	__atomic_fetch_or(&hdr(rc->base)->flags, RING_BROKEN,
			  __ATOMIC_SEQ_CST);
}

bool ring_consumer_same_cpu(struct ring_consumer *rc)
{
	struct ring_header *h = hdr(rc->base);
	uint32_t me = cpu_hint(), peer;

	if (LD(&h->daemon_cpu) != me)
		ST(&h->daemon_cpu, me);
	peer = LD(&h->client_cpu);	/* the client's word: only a hint */
	return !me || !peer || peer == me;
}

bool ring_pending(const struct ring_consumer *rc)
{
	/* seq_cst: ordered after ring_set_need_wakeup()'s store */
	return !rc->broken &&
	       __atomic_load_n(&hdr(rc->base)->sq_tail, __ATOMIC_SEQ_CST) !=
	       rc->sq_head;
}

int ring_take(struct ring_consumer *rc, struct ring_sqe *out)
{
	struct ring_header *h = hdr(rc->base);
	const struct ring_sqe *s;
	uint32_t tail, head;

	if (rc->broken)
		return -EPROTO;
	tail = __atomic_load_n(&h->sq_tail, __ATOMIC_ACQUIRE);
	if (tail == rc->sq_head)
		return -EAGAIN;
	if (tail - rc->sq_head > RING_ENTRIES)
		goto broken;
	head = __atomic_load_n(&h->cq_head, __ATOMIC_ACQUIRE);
	if (rc->cq_tail - head > RING_ENTRIES)
		goto broken;
	if (rc->cq_tail - head == RING_ENTRIES)
		return -ENOSPC;
	/* one copy, word by word; only the copy is looked at */
	s = sqe_at(rc->base, rc->sq_head);
	*out = (struct ring_sqe){
		.cmd = LD(&s->cmd), .flags = LD(&s->flags),
		.ioas_id = LD(&s->ioas_id), .file = LD(&s->file),
		.iova = LD(&s->iova), .length = LD(&s->length),
		.offset = LD(&s->offset), .user_data = LD(&s->user_data),
	};
	rc->sq_head++;
	__atomic_store_n(&h->sq_head, rc->sq_head, __ATOMIC_RELEASE);
	return 0;
broken:
	ring_break(rc);
	return -EPROTO;
}

void ring_complete(struct ring_consumer *rc, const struct ring_cqe *cqe)
{
	struct ring_cqe *c = cqe_at(rc->base, rc->cq_tail);
	const uint64_t *src = (const void *)cqe->errmsg;
	uint64_t *dst = (void *)c->errmsg;

	ST(&c->user_data, cqe->user_data);
	ST(&c->result, cqe->result);
	ST(&c->out_id, cqe->out_id);
	ST(&c->out_iova, cqe->out_iova);
	ST(&c->out_bytes, cqe->out_bytes);
	/*
	 * The message only with an error: a success writes the one cache
	 * line of the entry's head, not the four more the client would
	 * have to fetch from this CPU.
	 */
	for (size_t i = 0; cqe->result < 0 && i < RING_ERRMSG / 8; i++)
		ST(&dst[i], src[i]);
	rc->cq_tail++;
	/* seq_cst against the client's cq_waiting store and cq_tail load */
	__atomic_store_n(&hdr(rc->base)->cq_tail, rc->cq_tail,
			 __ATOMIC_SEQ_CST);
}

bool ring_client_waits(const struct ring_consumer *rc)
{
	return __atomic_load_n(&hdr(rc->base)->cq_waiting, __ATOMIC_SEQ_CST);
}

void ring_set_need_wakeup(struct ring_consumer *rc, bool on)
{
	struct ring_header *h = hdr(rc->base);

	if (on)
		__atomic_fetch_or(&h->flags, RING_NEED_WAKEUP,
				  __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&h->flags, ~RING_NEED_WAKEUP,
				   __ATOMIC_SEQ_CST);
}

/* ---- client -------------------------------------------------------------- */

int ring_producer_init(struct ring_producer *rp, void *base, size_t size)
{
	struct ring_header *h = base;

	memset(rp, 0, sizeof(*rp));
	if (size < RING_SIZE ||
	    __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != RING_MAGIC ||
	    LD(&h->version) != RING_VERSION || LD(&h->entries) != RING_ENTRIES)
		return -EPROTO;
	rp->base = base;
	rp->sq_tail = LD(&h->sq_tail);
	rp->cq_head = LD(&h->cq_head);
	return 0;
}

bool ring_submit(struct ring_producer *rp, const struct ring_sqe *sqe)
{
	struct ring_header *h = hdr(rp->base);
	struct ring_sqe *s = sqe_at(rp->base, rp->sq_tail);

	ST(&s->cmd, sqe->cmd);
	ST(&s->flags, sqe->flags);
	ST(&s->ioas_id, sqe->ioas_id);
	ST(&s->file, sqe->file);
	ST(&s->iova, sqe->iova);
	ST(&s->length, sqe->length);
	ST(&s->offset, sqe->offset);
	ST(&s->user_data, sqe->user_data);
	rp->sq_tail++;
	/* seq_cst store, seq_cst load: the daemon sees the request or we
	 * see its flag (it stores the flag and loads sq_tail likewise) */
	__atomic_store_n(&h->sq_tail, rp->sq_tail, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&h->flags, __ATOMIC_SEQ_CST) & RING_NEED_WAKEUP;
}

int ring_reap(struct ring_producer *rp, struct ring_cqe *cqe)
{
	struct ring_header *h = hdr(rp->base);
	const struct ring_cqe *c;
	const uint64_t *src;
	uint64_t *dst = (void *)cqe->errmsg;

	if (__atomic_load_n(&h->cq_tail, __ATOMIC_SEQ_CST) == rp->cq_head)
		return -EAGAIN;
	c = cqe_at(rp->base, rp->cq_head);
	src = (const void *)c->errmsg;
	cqe->user_data = LD(&c->user_data);
	cqe->result = LD(&c->result);
	cqe->out_id = LD(&c->out_id);
	cqe->out_iova = LD(&c->out_iova);
	cqe->out_bytes = LD(&c->out_bytes);
	/* the daemon writes the message with errors only */
	for (size_t i = 0; cqe->result < 0 && i < RING_ERRMSG / 8; i++)
		dst[i] = LD(&src[i]);
	if (cqe->result >= 0)
		cqe->errmsg[0] = '\0';
	cqe->errmsg[RING_ERRMSG - 1] = '\0';
	rp->cq_head++;
	__atomic_store_n(&h->cq_head, rp->cq_head, __ATOMIC_RELEASE);
	return 0;
}

uint32_t ring_flags(const struct ring_producer *rp)
{
	return __atomic_load_n(&hdr(rp->base)->flags, __ATOMIC_ACQUIRE);
}

bool ring_producer_same_cpu(struct ring_producer *rp)
{
	struct ring_header *h = hdr(rp->base);
	uint32_t me = cpu_hint(), peer;

	if (LD(&h->client_cpu) != me)
		ST(&h->client_cpu, me);
	peer = LD(&h->daemon_cpu);
	return !me || !peer || peer == me;
}

void ring_set_waiting(struct ring_producer *rp, bool on)
{
	__atomic_store_n(&hdr(rp->base)->cq_waiting, on, __ATOMIC_SEQ_CST);
}
