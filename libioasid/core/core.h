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
 * Entry point: core_call() runs one struct ioasid_op for a session.
 * Locking: core->lock serialises ops; lookups and DMA take only read
 * locks (see ioas.h) so they run beside map and unmap.
 */
#ifndef IOASID_CORE_H
#define IOASID_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/inventory.h"
#include "core/op.h"

struct ioasid_ctx;
struct backend;
struct backend_ops;
struct ioas;
struct device;
struct domain;
struct vm;

/* Per-session limits (ioasidd policy; unlimited when embedded). */
struct session_limits {
	uint32_t max_ioas;
	uint64_t max_mappings;
	uint64_t max_bytes_mapped;
	uint32_t max_vms;
	uint32_t allow_noncoherent;	/* may a VM need WBINVD? */
	uint32_t trust_hints;		/* honour "no no-snoop" hints */
	uint32_t may_observe;		/* may see every session's objects */
	uint32_t may_get_fds;		/* may receive devices' VFIO files */
	/* device names the session may bind; NULL: all */
	char **devices;
	uint32_t nr_devices;
};

struct session {
	struct core *core;
	uint32_t id;
	/* who: ioasidd knows it from SO_PEERCRED and HELLO (observers) */
	uint32_t pid;
	uint32_t uid;
	char name[IOASID_NAME_MAX];
	struct session_limits limits;
	uint32_t nr_ioas;
	uint64_t nr_mappings;
	uint64_t bytes_mapped;
	uint32_t nr_vms;
	uint32_t event_groups;		/* subscribed ioasid_event_group */
	bool observer;			/* read-only view of every session */
	/* queued events for this session (ring) */
	struct ioasid_event *events;
	uint32_t ev_head, ev_len, ev_cap;
	uint64_t ev_dropped;
	int event_fd;			/* eventfd, readable when events queued */
	struct session *next;
};

#define CORE_FAULT_RING 256

struct core {
	struct ioasid_ctx *log;		/* for messages only (not a ref) */
	pthread_mutex_t lock;		/* serialises ops */
	/* the session list and their event queues; taken inside lock */
	pthread_mutex_t event_lock;
	/* faults the core itself records (group not viable) */
	struct ioasid_fault faults[CORE_FAULT_RING];
	uint32_t fault_head, fault_len;
	pthread_rwlock_t objects_lock;	/* id tables; write to add/remove */
	const struct backend_ops *be_ops;
	struct backend *be;
	struct inventory inv;
	struct device *devices;		/* array, one per inventory device */
	uint32_t nr_devices;
	struct ioas *ioas_table;	/* uthash by id */
	struct domain *domains;		/* list */
	struct vm *vms;			/* uthash by id */
	struct session *sessions;
	uint32_t next_id;		/* shared id space for all objects */
	uint32_t next_session_id;
};

int core_new(struct ioasid_ctx *log, const char *uri, struct core **core,
	     char *errmsg, size_t errlen);
void core_free(struct core *core);
const char *core_backend_name(const struct core *core);

/* A new session owned by this process ("embedded") until told otherwise. */
int core_session_new(struct core *core, const struct session_limits *limits,
		     struct session **session);
/* Who the session is for; @name NULL keeps the name. */
void core_session_set_owner(struct session *session, uint32_t pid,
			    uint32_t uid, const char *name);
/* Tears down every object of the session. */
void core_session_free(struct session *session);

int core_call(struct session *session, struct ioasid_op *op);
/* Take the oldest queued event of @session: 0, or -EAGAIN. */
int core_session_pop_event(struct session *session, struct ioasid_event *ev);

/* Allocate a fresh object id (never 0). */
uint32_t core_alloc_id(struct core *core);
/* Queue an event to every session subscribed to @group (any thread). */
void core_emit(struct core *core, uint32_t group,
	       const struct ioasid_event *ev);
/* Queue an event to one session if it subscribed to @group (0: always). */
void core_emit_to(struct session *s, uint32_t group,
		  const struct ioasid_event *ev);
uint64_t core_now_ns(void);
/* The backend's hotplug source (-1: none), and draining it. */
int core_hotplug_fd(struct core *core);
void core_hotplug_poll(struct core *core);

#endif
