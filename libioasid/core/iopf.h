/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recoverable faults (I/O page faults): a fault queue per IOAS or nested
 * table takes the page requests of the devices attached to it, readable
 * through an eventfd the VMM polls; the VMM answers each request by its
 * cookie and the device retries (success) or fails (invalid).
 *
 * A queue belongs to its session and to one target; the target holds it
 * (ioas->fq, nested->fq) and frees it when it goes.  Queue state is
 * under the queue's own lock: DMA (without the core lock) queues
 * requests while the VMM reads and answers them under the core lock.
 * Memory is bounded: at most IOASID_FAULT_QUEUE_DEPTH_MAX records and
 * outstanding requests per queue, one queue per target, and targets are
 * under the session's max_ioas quota.
 */
#ifndef IOASID_CORE_IOPF_H
#define IOASID_CORE_IOPF_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"
#include "op/op.h"

struct fault_queue;
struct device;

int iopf_alloc(struct session *s, struct ioas *unused, struct ioasid_op *op);
int iopf_destroy(struct session *s, struct ioas *unused, struct ioasid_op *op);
int iopf_read(struct session *s, struct ioas *unused, struct ioasid_op *op);
int iopf_respond(struct session *s, struct ioas *unused, struct ioasid_op *op);
int iopf_info(struct session *s, struct ioas *unused, struct ioasid_op *op);
int iopf_list(struct session *s, struct ioas *unused, struct ioasid_op *op);

/*
 * A DMA of @dev (PASID @pasid when @has_pasid) found @addr not present
 * and its target has queue @fq: the page request.  Returns 0 when the
 * request was answered success and the device retries now (only with
 * @wait, which waits for the answer); -EINPROGRESS: outstanding, the
 * device retries after the answer; -EFAULT: answered invalid, or lost
 * (the queue is full); -ETIMEDOUT: unanswered in time.  Reason in @op.
 * Runs without the core lock (DMA), under the device's read lock.
 */
int iopf_request(struct fault_queue *fq, const struct device *dev,
		 bool has_pasid, uint32_t pasid, uint64_t addr, bool write,
		 bool wait, struct ioasid_op *op);
/* The target of @fq goes (IOAS or nested table destroyed): free it. */
void iopf_target_gone(struct core *core, struct fault_queue *fq);
/* How many fault queues, of any session, have id @id (core lock held)? */
uint32_t iopf_id_holders(const struct core *core, uint32_t id);
/*
 * @s's fault queues for the state image (core lock held), in id order:
 * each as the FAULT_QUEUE_ALLOC op that makes it again, given to @emit
 * with its id; the op carries the queue's eventfd (FD) and its requests
 * and unread records (DATA), which only a replay takes.  A kernel
 * backend's queue comes with its kernel object (@k, a KOBJ record
 * before the op; the op's descriptor is the kernel's fault fd, its DATA
 * the counters only: the requests are the kernel's); a backend whose
 * ->kobj cannot name it is refused (-EOPNOTSUPP), so is a state bigger
 * than one op carries (-E2BIG).  Reason in @why.
 */
typedef int (*iopf_emit_fn)(void *arg, struct ioasid_op *op,
			    uint32_t expect_id, const struct ioasid_kobj *k);
int iopf_export(struct session *s, iopf_emit_fn emit, void *arg,
		struct ioasid_op *why);
/* core_fault_queues_changed(), core_replay_fault_state() (core.h) */
int iopf_journal_changed(struct session *s, core_fault_state_fn emit,
			 void *arg);
int iopf_journal_replay(struct session *s, uint32_t fault_id,
			const void *state, uint32_t len, struct ioasid_op *why);
/* Free @s's fault queues (before its IOASes and nested tables go). */
void iopf_release_session(struct core *core, struct session *s);

#endif
