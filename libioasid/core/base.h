/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core's leaf: the layout of struct core and struct session, object
 * ids, event queues, the clock and a growable range array.  Every core/ file may include this;
 * it calls nothing else in core/.  Outside core/, only core/core.h.
 */
#ifndef IOASID_CORE_BASE_H
#define IOASID_CORE_BASE_H

#include "core/core.h"

#define SESSION_FAULT_RING 256

struct session {
	struct core *core;
	uint32_t id;
	/* who: ioasidd knows it from SO_PEERCRED and HELLO (observers) */
	uint32_t pid;
	uint32_t uid;
	char name[IOASID_NAME_MAX];
	struct session_limits limits;
	uint32_t nr_ioas;
	uint32_t nr_nested;		/* nested tables: max_ioas counts them */
	uint32_t nr_viommus;		/* vIOMMUs: max_ioas counts them */
	uint64_t nr_mappings;
	uint64_t bytes_mapped;
	uint32_t nr_vms;
	uint32_t event_groups;		/* subscribed ioasid_event_group */
	bool observer;			/* read-only view of every session */
	bool announced;			/* observers heard it start */
	/* queued events for this session (ring) */
	struct ioasid_event *events;
	uint32_t ev_head, ev_len, ev_cap;
	uint64_t ev_dropped;
	int event_fd;			/* eventfd, readable when events queued */
	/*
	 * fault records the core itself makes (group not viable) for this
	 * session's devices; under core->event_lock.  Full: the oldest stay
	 * and faults_lost counts the rest.
	 */
	struct ioasid_fault faults[SESSION_FAULT_RING];
	uint32_t fault_head, fault_len;
	uint64_t faults_lost;
	/* the backend's tenant (core_session_tenant), NULL until needed */
	struct be_tenant *tenant;
	struct session *next;
};

struct core {
	const struct log_sink *log;		/* for messages only (not a ref) */
	pthread_mutex_t lock;		/* serialises ops */
	/* the session list and their event queues; taken inside lock */
	pthread_mutex_t event_lock;
	pthread_rwlock_t objects_lock;	/* id tables; write to add/remove */
	const struct backend_ops *be_ops;
	struct backend *be;
	struct inventory inv;
	struct device *devices;		/* array, one per inventory device */
	uint32_t nr_devices;
	struct ioas *ioas_table;	/* uthash by id */
	struct domain *domains;		/* list */
	struct nested *nested;		/* list of nested tables */
	struct viommu *viommus;		/* list (viommu.c) */
	struct fault_queue *fault_queues;	/* list (iopf.c) */
	struct vm *vms;			/* uthash by id */
	struct session *sessions;
	uint32_t next_id;		/* shared id space for all objects */
	/*
	 * core_replay() runs an op of a state image: the op restores state
	 * rather than asks for a change (a CONVERT may name unmapped pages,
	 * whose shared state outlives their mapping).  Only importers,
	 * before anyone else calls, set it.
	 */
	bool replaying;
	/*
	 * core_replay() of an op that makes a nested table or a vIOMMU:
	 * the id a stage-2 domain the op makes takes (the one just before
	 * the op's own object, as when the two were made in one go), and
	 * 0 once taken or otherwise (core/export.c).
	 */
	uint32_t replay_domain_id;
	uint32_t next_session_id;
	/* core_set_dirtied(): told of the pages DMA writes make dirty */
	core_dirtied_fn dirtied;
	void *dirtied_arg;
};

/* The backend's operations (backends/backend.h has the struct). */
static inline const struct backend_ops *core_ops(const struct core *core)
{
	return core->be_ops;
}

/*
 * Whether @s may make one more address-space object: max_ioas counts
 * IOASes, nested tables and vIOMMUs together.  0, or -ENOSPC with the
 * reason in @op.
 */
int core_space_quota(struct session *s, struct ioasid_op *op);
/* Allocate a fresh object id (never 0). */
uint32_t core_alloc_id(struct core *core);
/* Queue an event to every session subscribed to @group (any thread). */
void core_emit(struct core *core, uint32_t group,
	       const struct ioasid_event *ev);
/*
 * Queue an event about @s's objects to @s if it subscribed to @group (0:
 * always), and to every other session that observes and subscribed to
 * @group (not for 0); the event carries @s's id, pid and uid.
 */
void core_emit_to(struct session *s, uint32_t group,
		  const struct ioasid_event *ev);
/*
 * The session's tenant in the backend, opened at the first call (iommufd:
 * the session's own /dev/iommu); *tenant NULL for backends without.
 * 0 or -errno (nothing opened).  Core lock held.
 */
int core_session_tenant(struct session *s, struct be_tenant **tenant);
/* Session @s started (@start) or ends: to observers subscribed to it. */
void core_emit_session(struct session *s, bool start);
/* CLOCK_MONOTONIC in nanoseconds (event timestamps). */
uint64_t core_now_ns(void);

/* A growable array of IOVA ranges (start from { 0 }; free(v) at the end). */
struct core_ranges {
	struct ioasid_iova_range *v;
	uint32_t nr, cap;
};
/* Append [@start, @last]: 0, or -ENOMEM with the array unchanged. */
int core_ranges_push(struct core_ranges *r, uint64_t start, uint64_t last);

#endif
