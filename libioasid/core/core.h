/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core: every object a client can name, and the rules between them.
 *
 *   core        one per embedded context, or one per ioasidd; owns the
 *               backend, the inventory and the id namespace.
 *   session     one per client (embedded: exactly one).  Every object
 *               belongs to the session that created it; another session
 *               naming it gets -ENOENT.
 *
 * This header is the core's door: the transports and ioasidd see only
 * these functions and opaque structs.  The layout and the leaf helpers
 * (ids, events, time) are in core/base.h, for core/ itself.
 *
 * Entry point: core_call() runs one struct ioasid_op for a session.
 * Locking: the core's lock serialises ops; lookups and DMA take only read
 * locks (see ioas.h) so they run beside map and unmap.
 */
#ifndef IOASID_CORE_H
#define IOASID_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "inventory/inventory.h"
#include "op/op.h"

struct log_sink;
struct backend;
struct backend_ops;
struct ioas;
struct device;
struct domain;
struct nested;
struct vm;
struct core;
struct session;

/* Per-session limits (ioasidd policy; unlimited when embedded). */
struct session_limits {
	uint32_t max_ioas;
	uint64_t max_mappings;
	uint64_t max_bytes_mapped;
	uint32_t max_vms;
	/* bytes of shared/private page state, all restricted IOASes */
	uint64_t max_conversion_state;
	uint32_t allow_noncoherent;	/* may a VM need WBINVD? */
	uint32_t trust_hints;		/* honour "no no-snoop" hints */
	uint32_t may_observe;		/* may see every session's objects */
	uint32_t may_get_fds;		/* may receive devices' VFIO files */
	/* device names the session may bind; NULL: all */
	char **devices;
	uint32_t nr_devices;
};

int core_new(const struct log_sink *log, const char *uri, struct core **core,
	     char *errmsg, size_t errlen);
void core_free(struct core *core);
const char *core_backend_name(const struct core *core);

/* A new session owned by this process ("embedded") until told otherwise. */
int core_session_new(struct core *core, const struct session_limits *limits,
		     struct session **session);
/* Who the session is for; @name NULL keeps the name. */
void core_session_set_owner(struct session *session, uint32_t pid,
			    uint32_t uid, const char *name);
/* What a session holds now (for ioasidd's session list). */
struct core_session_usage {
	uint32_t nr_ioas;
	uint64_t nr_mappings;
	uint32_t nr_devices;		/* bound */
	uint32_t nr_vms;
	uint64_t bytes_mapped;
	uint64_t state_bytes;		/* shared/private page state */
	uint64_t faults_lost, events_lost;	/* queues were full */
	/* the limits the session runs under (UINT*_MAX: none) */
	uint32_t max_ioas, max_vms;
	uint64_t max_mappings, max_bytes_mapped, max_conversion_state;
};
void core_session_usage(struct session *session,
			struct core_session_usage *usage);
uint32_t core_session_pid(const struct session *session);
/* Tears down every object of the session. */
void core_session_free(struct session *session);

int core_call(struct session *session, struct ioasid_op *op);
/* Take the oldest queued event of @session: 0, or -EAGAIN. */
int core_session_pop_event(struct session *session, struct ioasid_event *ev);
/* Count an event the session was not given (ioasid_status events_lost). */
void core_session_event_lost(struct session *session);
/* Count @n events its client's own queue dropped (saturating). */
void core_session_events_dropped(struct session *session, uint64_t n);
/* Whether events are queued (a hint, read without the lock). */
bool core_session_has_events(const struct session *session);
/* The session's id, and its eventfd (readable while events are queued). */
uint32_t core_session_id(const struct session *session);
int core_session_event_fd(const struct session *session);
/*
 * The id the next object gets is one more than core_next_id(); ioasidd's
 * journal sets it back so a replayed change makes the objects it made.
 */
uint32_t core_next_id(struct core *core);
void core_set_next_id(struct core *core, uint32_t id);
/*
 * Likewise the session counter (a new session's id is one more): a live
 * upgrade's successor takes it over, so that it never gives a new
 * session the id of one that ended (ioasidd's journal keys sessions by
 * it).  Setting it never takes it back below what it is.
 */
uint32_t core_next_session_id(struct core *core);
void core_set_next_session_id(struct core *core, uint32_t id);

/*
 * The state image's side in the core (proto/image.h): core_session_export()
 * calls @fn with each op that rebuilds @session (and, for an op that
 * makes an object, the id it made), in the order to replay them, under
 * the core's lock (@fn must not call the core).  0, or -errno with the
 * reason in @why: -EOPNOTSUPP for a backend that cannot hand its kernel
 * objects over (neither replayable nor ->kobj) or a mapping by address,
 * or what @fn returned.
 */
/* Whose counters (the image's enum image_counters_kind has the same). */
enum core_counters_kind {
	CORE_COUNTERS_IOAS = 0,
	CORE_COUNTERS_NESTED = 1,	/* nr_conversions: nr_invalidations */
	CORE_COUNTERS_VIOMMU = 2,	/* likewise */
};

struct core_ioas_counters {
	uint32_t ioas_id;		/* or the nested table's, the vIOMMU's */
	uint32_t kind;			/* enum core_counters_kind */
	uint64_t nr_conversions, nr_faults;
	/*
	 * An IOAS's file id counter where a file that went took its id
	 * along (it is above every live file's), else 0; a replay never
	 * lets it below a file the IOAS has (-EINVAL).
	 */
	uint32_t next_file_id;
};
/*
 * A tracking domain's dirty pages not read yet, on a backend whose bits
 * live in this process (the simulator's page tables; a kernel backend's
 * stay in its kernel objects): runs of 4 KiB pages, [start, last] each,
 * in IOVA order, disjoint, every page mapped; at most CORE_DIRTY_MAX_RUNS
 * a record (an IOAS's pages may take several).
 */
#define CORE_DIRTY_MAX_RUNS	4000

struct core_dirty_bits {
	uint32_t ioas_id, domain_id;
	uint32_t nr_runs;
	const struct ioasid_iova_range *runs;
};
/*
 * One op (@c and @dirty NULL), an IOAS's monitoring counters (@op NULL),
 * last, or a domain's dirty pages (@dirty; @op, @c, @k NULL), after the
 * DIRTY_START of its IOAS, which comes after every op that makes the
 * IOAS's domains and mappings.
 * Kernel backends that hand their objects over (iommufd, vfio-type1)
 * pass with an op that makes one the kernel object it is (@k, else
 * NULL), for the successor to adopt (core_adopt()); and first, with @op
 * and @c NULL, the session's own kernel descriptor (iommufd's) as @k
 * alone.
 */
typedef int (*core_export_fn)(void *arg, struct ioasid_op *op,
			      uint32_t expect_id,
			      const struct core_ioas_counters *c,
			      const struct ioasid_kobj *k,
			      const struct core_dirty_bits *dirty);
int core_session_export(struct session *session, core_export_fn fn,
			void *arg, struct ioasid_op *why);
/*
 * A successor's side: before replaying the op an image gave @k with, the
 * backend takes the kernel object over instead of making it again (the
 * session's iommufd: at once).  0, or -errno with the reason in @why.
 * core_adopt_end() after the session's last op: the backend stops
 * adopting and moves pinned-page accounting to this process
 * (IOMMU_IOAS_CHANGE_PROCESS); returns how many objects or mappings it
 * had to make again (0: everything was adopted) with what in @why, or
 * -errno.
 */
int core_adopt(struct session *session, const struct ioasid_kobj *k,
	       struct ioasid_op *why);
int core_adopt_end(struct session *session, struct ioasid_op *why);
/*
 * The predecessor's side, after its image is written: a backend whose
 * kernel objects remember this process's addresses (vfio-type1) makes
 * the kernel forget them, DMA going on, so that the successor can
 * register its own (backend_ops ->handover_begin); until
 * core_handover_cancel() gives them back (a hand-over given up) the
 * session's mappings cannot change.  core_handover_begin(): 1 when it
 * began one, 0 when the backend needs none; core_handover_cancel(): 0;
 * both -errno with the reason in @why.
 */
int core_handover_begin(struct session *session, struct ioasid_op *why);
int core_handover_cancel(struct session *session, struct ioasid_op *why);
/*
 * Run one op of an image for @session, making the object it creates get
 * @expect_id (0: the op makes none): core_call()'s result, or -EPROTO
 * when the op made another id (an attach that joined another domain).
 */
int core_replay(struct session *session, struct ioasid_op *op,
		uint32_t expect_id);
/*
 * Put an IOAS's, nested table's or vIOMMU's counters back (after its
 * ops): 0 or -ENOENT.
 */
int core_replay_counters(struct session *session,
			 const struct core_ioas_counters *c);
/*
 * Make a domain's pages dirty again as an image had them (after the
 * DIRTY_START of its IOAS): everything checked before a bit is set (the
 * session's IOAS, tracking, its domain, tracking too, the runs in order,
 * aligned, mapped, at most CORE_DIRTY_MAX_RUNS), then the backend's
 * ->mark_dirty.  0, or -errno with the reason in @why: -ENOENT no such
 * IOAS or tracking domain, -EINVAL tracking off or a bad run,
 * -EOPNOTSUPP a backend without ->mark_dirty.
 */
int core_replay_dirty(struct session *session,
		      const struct core_dirty_bits *dirty,
		      struct ioasid_op *why);
/*
 * Be told of each page (or large IOPTE) a DMA write makes dirty on a
 * tracking domain, on a backend whose bits live in this process (the
 * simulator's ->set_dirtied; a kernel backend's bits outlive the
 * process in its kernel objects): @fn(@arg, the domain's session, its
 * pages as core_replay_dirty() takes them, one run).  Only a clean page
 * becoming dirty is told, from the DMA's thread, before its data moves
 * and before its request returns; @fn must not call into the core.
 * ioasidd journals them, so a crash keeps every bit (journal.c).  NULL
 * stops it.
 */
/*
 * A fault queue's requests and records in ioasidd's journal, on a
 * backend whose queues live in this process (the simulator's; a kernel
 * backend's are the kernel's and never given): @emit(@arg, the queue's
 * id, its state, its length) for each queue of @session whose requests,
 * records or counters changed since it was last given, the state as a
 * state image's FAULT_QUEUE_ALLOC carries it (iopf.c, struct
 * carried_queue; not bounded by an op's size here).  0, or what @emit
 * returned.
 */
typedef int (*core_fault_state_fn)(void *arg, uint32_t fault_id,
				   const void *state, uint32_t len);
int core_fault_queues_changed(struct session *session,
			      core_fault_state_fn emit, void *arg);
/*
 * Put such a state back into @session's fault queue @fault_id (made by
 * its FAULT_QUEUE_ALLOC, replayed): every request and record checked as
 * an import checks them before any replaces the queue's.  0, or -errno
 * with the reason in @why (-ENOENT no such queue, -EBADMSG a bad state);
 * nothing changed on error.
 */
int core_replay_fault_state(struct session *session, uint32_t fault_id,
			    const void *state, uint32_t len,
			    struct ioasid_op *why);
typedef void (*core_dirtied_fn)(void *arg, struct session *owner,
				const struct core_dirty_bits *pages);
void core_set_dirtied(struct core *core, core_dirtied_fn fn, void *arg);
/*
 * An IOAS's file table counter (a new file's id is one more), which the
 * ops of an image do not give back: ioasidd's journal keeps it.  0, or
 * -ENOENT when @session has no IOAS @ioas_id; setting it below a file
 * the IOAS has: -EINVAL.
 */
int core_ioas_next_file_id(struct session *session, uint32_t ioas_id,
			   uint32_t *next);
int core_set_ioas_next_file_id(struct session *session, uint32_t ioas_id,
			       uint32_t next);
/* Give @session the id it had in another core (before its first op). */
void core_session_set_id(struct session *session, uint32_t id);

/* The devices the backend found: how many, and the name of number @i. */
uint32_t core_nr_devices(const struct core *core);
const char *core_device_name(const struct core *core, uint32_t i);

/* The backend's hotplug source (-1: none), and draining it. */
int core_hotplug_fd(struct core *core);
void core_hotplug_poll(struct core *core);

#endif
