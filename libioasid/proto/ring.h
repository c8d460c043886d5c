/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request ring: one per client that asks (IOASID_CMD_RING), a
 * submission queue the client fills and a completion queue the daemon
 * fills, in one memfd both map read-write, so that a map, unmap or
 * single-range conversion costs no socket round trip and a burst of them
 * one wakeup at most.
 *
 * The daemon creates the memfd and seals it against shrinking and growing
 * before passing it (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL): neither
 * side can make the other fault.  The client can write all of it, so the
 * daemon treats it as input:
 *
 *   - what the daemon writes (sq_head, cq_tail, flags, the completions) it
 *     never reads back: its own copies are private (struct ring_consumer);
 *   - what the client writes it reads once per use: the producer index
 *     sq_tail (more than RING_ENTRIES ahead of the daemon's sq_head breaks
 *     the ring: -EPROTO), the consumer index cq_head (likewise; a client
 *     that lies about it overwrites its own completions), and each request,
 *     copied out word by word before anything looks at it (no TOCTOU);
 *   - a request only names what the session may name anyway: IOAS ids
 *     checked by the core, and files by their number in the client's own
 *     table of registered files (IOASID_CMD_FILE_REGISTER), or for
 *     MAP_FILE_ID by their id in the request's IOAS, which the core looks
 *     up in that IOAS's own table.
 *
 * A broken ring is the client's own loss: the daemon sets RING_BROKEN,
 * stops reading it and serves the client over the socket as before.
 *
 * Wakeups.  The daemon sets RING_NEED_WAKEUP before it stops looking at
 * the ring (then looks once more); a client that published a request and
 * sees the flag writes the doorbell (an eventfd it passed with
 * IOASID_CMD_RING).  Both sides store and then load with seq_cst
 * ordering, so either the daemon sees the request or the client sees the
 * flag (the same for cq_tail against cq_waiting).  A client waiting for
 * its completion sets cq_waiting, looks once more and sleeps in poll() on
 * a second eventfd it passed (and on its socket, for events and
 * hang-ups); the daemon writes that eventfd after posting when cq_waiting
 * is set, and when the ring breaks.  Each side spins a bounded time first
 * (ioasidd --ring-spin-us, the client RING_CLIENT_SPIN_NS).  Each side
 * says on which CPU it runs (daemon_cpu, client_cpu: hints, never
 * trusted for anything else): while the other side is on the same CPU,
 * or its CPU is unknown, the spinner yields the CPU between looks so the
 * two take turns; on different CPUs it spins with the CPU's pause
 * instruction and no system call, so a request or a completion is seen
 * within a cache miss of its arrival.
 */
#ifndef IOASID_PROTO_RING_H
#define IOASID_PROTO_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC		0x474e5249u	/* "IRNG" */
#define RING_VERSION		1u
#define RING_ENTRIES		64u		/* a power of two */
#define RING_ERRMSG		256u		/* = IOASID_ERRMSG_MAX */

/* How long each side spins before sleeping (ioasidd: --ring-spin-us). */
#define RING_DAEMON_SPIN_NS	20000u
#define RING_CLIENT_SPIN_NS	50000u

/* flags (daemon-written) */
#define RING_NEED_WAKEUP	(1u << 0)
#define RING_BROKEN		(1u << 1)

/* The only commands a request may carry (uapi/ioasid/proto.h numbers). */
#define RING_CMD_MAP_FILE	20u	/* file = registered file number */
#define RING_CMD_UNMAP		22u
#define RING_CMD_CONVERT	30u	/* one range: iova, length */
#define RING_CMD_MAP_FILE_ID	32u	/* file = the IOAS's file id */

struct ring_header {
	/* set by the daemon before it passes the ring */
	uint32_t magic, version, entries, reserved0;
	uint8_t pad0[48];
	/* daemon-written, never read back by it */
	uint32_t sq_head;
	uint32_t cq_tail;
	uint32_t flags;
	uint32_t daemon_cpu;		/* a hint: its CPU + 1, 0 unknown */
	uint8_t pad1[48];
	/* client-written, read once per use by the daemon */
	uint32_t sq_tail;
	uint32_t cq_head;
	uint32_t cq_waiting;
	uint32_t client_cpu;		/* a hint: its CPU + 1, 0 unknown */
	uint8_t pad2[48];
};

struct ring_sqe {
	uint32_t cmd;
	uint32_t flags;
	uint32_t ioas_id;
	uint32_t file;
	uint64_t iova;
	uint64_t length;
	uint64_t offset;
	uint64_t user_data;
	uint64_t reserved[2];
};

struct ring_cqe {
	uint64_t user_data;
	int32_t result;			/* 0 or a negative errno; errmsg */
					/* is written only when negative */
	uint32_t out_id;
	uint64_t out_iova;
	uint64_t out_bytes;
	char errmsg[RING_ERRMSG];
};

#define RING_SQ_OFF		4096u
#define RING_CQ_OFF		(RING_SQ_OFF + RING_ENTRIES * sizeof(struct ring_sqe))
#define RING_SIZE		(((RING_CQ_OFF + RING_ENTRIES * \
				   sizeof(struct ring_cqe)) + 4095) / 4096 * 4096)

_Static_assert(sizeof(struct ring_header) == 192, "header");
_Static_assert(sizeof(struct ring_sqe) == 64, "sqe");
_Static_assert(sizeof(struct ring_cqe) == 288, "cqe");
_Static_assert((RING_ENTRIES & (RING_ENTRIES - 1)) == 0, "power of two");

/* ---- the daemon's side --------------------------------------------------- */

struct ring_consumer {
	unsigned char *base;		/* RING_SIZE bytes, shared */
	uint32_t sq_head, cq_tail;	/* private: the truth */
	bool broken;
};

/* Write the header of a fresh ring at @base (RING_SIZE bytes). */
void ring_consumer_init(struct ring_consumer *rc, void *base);
/*
 * Copy out the next request: 0; -EAGAIN: none; -ENOSPC: no room for its
 * completion yet (the client has not consumed); -EPROTO: the client's
 * indexes are impossible (the ring is then broken for good).
 */
int ring_take(struct ring_consumer *rc, struct ring_sqe *out);
/* Post a completion (ring_take() made room for it). */
void ring_complete(struct ring_consumer *rc, const struct ring_cqe *cqe);
/* Does the client wait on cq_tail (wake it after ring_complete())? */
bool ring_client_waits(const struct ring_consumer *rc);
/* RING_NEED_WAKEUP on or off (seq_cst), and RING_BROKEN. */
void ring_set_need_wakeup(struct ring_consumer *rc, bool on);
void ring_break(struct ring_consumer *rc);
/* Is a request published (a hint: ring_take() decides)? */
bool ring_pending(const struct ring_consumer *rc);
/* Say where the daemon runs now; is the client on this CPU (or unknown)? */
bool ring_consumer_same_cpu(struct ring_consumer *rc);

/*
 * One turn of a spin waiting for the other side: sched_yield() when it
 * may be on this CPU (@same_cpu), else a few pause instructions.
 */
void ring_relax(bool same_cpu);

/* ---- the client's side --------------------------------------------------- */

struct ring_producer {
	unsigned char *base;
	uint32_t sq_tail, cq_head;	/* private */
};

/* Check a ring the daemon passed: 0 or -EPROTO. */
int ring_producer_init(struct ring_producer *rp, void *base, size_t size);
/*
 * Publish @sqe; true when the daemon asked to be woken (write the
 * doorbell).  At most one request in flight per producer.
 */
bool ring_submit(struct ring_producer *rp, const struct ring_sqe *sqe);
/* The completion, if posted: 0, or -EAGAIN. */
int ring_reap(struct ring_producer *rp, struct ring_cqe *cqe);
/* The daemon's flags (RING_BROKEN: back to the socket). */
uint32_t ring_flags(const struct ring_producer *rp);
/* cq_waiting: the client is about to sleep (seq_cst). */
void ring_set_waiting(struct ring_producer *rp, bool on);
/* Say where the client runs now; is the daemon on this CPU (or unknown)? */
bool ring_producer_same_cpu(struct ring_producer *rp);

#endif
