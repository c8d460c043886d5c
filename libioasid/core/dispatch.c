/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Command dispatch: the table comes from <ioasid/ops.def>, one row per
 * command (its handler and how it runs).  Mutating commands run under
 * core->lock; queries marked CONCURRENT take only the object-table read
 * lock, so DMA threads and lookups never wait behind a long map or unmap.
 * The handlers here are the ones that work on the session's tables
 * rather than on one object.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/device.h"
#include "core/domain.h"
#include "core/fault.h"
#include "core/dispatch.h"
#include "core/ioas.h"
#include "core/iopf.h"
#include "core/nested.h"
#include "core/pasid.h"
#include "core/viommu.h"
#include "core/vm.h"
#include "util/macros.h"

enum {
	CONCURRENT	= 1 << 0,	/* no core->lock */
	NEEDS_IOAS	= 1 << 1,	/* op->ioas_id must name an IOAS */
	READ_ONLY	= 1 << 2,	/* an observer may run it on any IOAS */
};

struct command {
	dispatch_fn *fn;
	uint32_t flags;
};

static struct ioas *find_ioas(struct session *s, uint32_t id)
{
	struct ioas *ioas;

	HASH_FIND(hh, s->core->ioas_table, &id, sizeof(id), ioas);
	return ioas && ioas->owner == s ? ioas : NULL;
}

/* An observer may read any session's IOAS; others only their own. */
static struct ioas *find_ioas_to_read(struct session *s, uint32_t id)
{
	struct ioas *ioas;

	if (!s->observer)
		return find_ioas(s, id);
	HASH_FIND(hh, s->core->ioas_table, &id, sizeof(id), ioas);
	return ioas;
}

/* ---- handlers ---------------------------------------------------------- */

static int dispatch_ioas_alloc(struct session *s, struct ioas *unused,
			       struct ioasid_op *op)
{
	struct ioas *ioas;
	int r;

	r = core_space_quota(s, op);
	if (r < 0)
		return r;
	r = ioas_create(s, op->flags, &ioas, op);
	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&s->core->objects_lock);
	r = hash_add(hh, s->core->ioas_table, id, sizeof(ioas->id), ioas);
	pthread_rwlock_unlock(&s->core->objects_lock);
	if (r < 0) {
		ioas_destroy(ioas);
		return op_fail(op, ENOMEM, "out of memory");
	}
	s->nr_ioas++;
	op->out_id = ioas->id;
	return 0;
}

static void ioas_remove(struct session *s, struct ioas *ioas)
{
	pthread_rwlock_wrlock(&s->core->objects_lock);
	HASH_DELETE(hh, s->core->ioas_table, ioas);
	pthread_rwlock_unlock(&s->core->objects_lock);
	s->nr_ioas--;
}

static int dispatch_ioas_destroy(struct session *s, struct ioas *ioas,
				 struct ioasid_op *op)
{
	struct ioasid_op unmap;

	if (ioas->nr_devices)
		return op_fail(op, EBUSY, "IOAS %u still has %u device(s) "
			       "attached", ioas->id, ioas->nr_devices);
	if (ioas->nr_nested)
		return op_fail(op, EBUSY, "IOAS %u is the parent of %u nested "
			       "table(s)", ioas->id, ioas->nr_nested);
	if (ioas->nr_pasids)
		return op_fail(op, EBUSY, "IOAS %u still has %u device "
			       "PASID(s) attached", ioas->id, ioas->nr_pasids);
	if (ioas->nr_viommus)
		return op_fail(op, EBUSY, "IOAS %u is the parent of %u "
			       "vIOMMU(s)", ioas->id, ioas->nr_viommus);
	ioasid_op_init(&unmap, IOASID_CMD_UNMAP);
	unmap.iova = 0;
	unmap.length = UINT64_MAX;
	ioas_unmap(s, ioas, &unmap);	/* keeps the session's counters right */
	iopf_target_gone(s->core, ioas->fq);
	ioas_remove(s, ioas);
	ioas_destroy(ioas);
	return 0;
}

static int dispatch_ioas_list(struct session *s, struct ioas *unused,
			      struct ioasid_op *op)
{
	uint32_t *ids = op->out, cap = op->out_cap / sizeof(*ids), n = 0;
	struct ioas *ioas, *tmp;

	HASH_ITER(hh, s->core->ioas_table, ioas, tmp) {
		if (ioas->owner != s && !s->observer)
			continue;
		if (n < cap)
			ids[n] = ioas->id;
		n++;
	}
	op->out_len = n * (uint32_t)sizeof(*ids);
	if (n > cap)
		return op_fail(op, EMSGSIZE, "%u address spaces do not fit in "
			       "%u", n, cap);
	return 0;
}

/* IOAS_ID is the destination; the source must be the caller's too. */
static int dispatch_copy(struct session *s, struct ioas *dst,
			 struct ioasid_op *op)
{
	struct ioas *src = find_ioas(s, op->ioas_id2);

	if (!src)
		return op_fail(op, ENOENT, "no IOAS %u", op->ioas_id2);
	return ioas_copy(dst, src, op);
}

static int dispatch_subscribe(struct session *s, struct ioas *unused,
			      struct ioasid_op *op)
{
	const uint32_t known = IOASID_EVENT_GROUP_FAULT |
			       IOASID_EVENT_GROUP_DEVICE |
			       IOASID_EVENT_GROUP_COHERENCY |
			       IOASID_EVENT_GROUP_SESSION;

	if (op->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "unknown event groups 0x%x",
			       op->flags & ~known);
	pthread_mutex_lock(&s->core->event_lock);
	s->event_groups = op->flags;
	pthread_mutex_unlock(&s->core->event_lock);
	return 0;
}

static int dispatch_observe(struct session *s, struct ioas *unused,
			    struct ioasid_op *op)
{
	if (op->flags > 1)
		return op_fail(op, EOPNOTSUPP, "unknown observe flags 0x%x",
			       op->flags);
	if (op->flags && !s->limits.may_observe)
		return op_fail(op, EPERM, "policy does not let this client see "
			       "other clients' objects");
	s->observer = op->flags;
	return 0;
}

static int dispatch_status(struct session *s, struct ioas *unused,
			   struct ioasid_op *op)
{
	struct core *core = s->core;
	struct ioasid_status st = {
		.size = sizeof(st),
		.nr_iommus = core->inv.nr_iommus,
		.nr_devices = core->nr_devices,
		.nr_ioas = HASH_COUNT(core->ioas_table),
		.nr_vms = HASH_COUNT(core->vms),
		.pid = (uint32_t)getpid(),
	};
	struct ioas *ioas, *tmp;

	for (struct session *x = core->sessions; x; x = x->next)
		st.nr_sessions++;
	for (struct domain *d = core->domains; d; d = d->next)
		st.nr_domains++;
	HASH_ITER(hh, core->ioas_table, ioas, tmp) {
		uint64_t nr, bytes;

		ioas_count(ioas, &nr, &bytes);
		st.nr_mappings += nr;
		st.bytes_mapped += bytes;
	}
	st.faults_lost = fault_lost_count(s);
	pthread_mutex_lock(&core->event_lock);
	st.events_lost = s->ev_dropped;
	pthread_mutex_unlock(&core->event_lock);
	snprintf(st.backend, sizeof(st.backend), "%s", core->be_ops->name);
	snprintf(st.topology, sizeof(st.topology), "%s",
		 core->be_ops->describe ? core->be_ops->describe(core->be) :
					  "");
	return op_out_struct(op, &st, sizeof(st));
}

static const struct command commands[__IOASID_CMD_MAX] = {
#define C(f)	f
#define IOASID_OP(name, nr, wire, required, optional, handler, core) \
	[IOASID_CMD_##name] = { handler, (core) },
#include <ioasid/ops.def>
#undef IOASID_OP
#undef C
};

static int run(struct session *s, const struct command *c,
	       struct ioasid_op *op)
{
	struct ioas *ioas = NULL;
	uint32_t mark = 0;
	int r;

	if (c->flags & NEEDS_IOAS) {
		ioas = c->flags & READ_ONLY ? find_ioas_to_read(s, op->ioas_id) :
					      find_ioas(s, op->ioas_id);
		if (!ioas)
			return op_fail(op, ENOENT, "no IOAS %u", op->ioas_id);
		mark = ioas->files.next_id;
	}
	r = c->fn(s, ioas, op);
	/*
	 * A map, batch or copy that failed takes no file id (file.h).  Not
	 * without core->lock: a map beside it may have taken one.
	 */
	if (r < 0 && ioas && !(c->flags & CONCURRENT))
		file_ids_rollback(&ioas->files, mark);
	return r;
}

/* The core's single entry: which handler, under which lock. */
int core_call(struct session *s, struct ioasid_op *op)
{
	const struct command *c;
	int r;

	if (op->cmd >= ARRAY_SIZE(commands) || !commands[op->cmd].fn)
		return op_fail(op, EOPNOTSUPP, "unknown command %u", op->cmd);
	c = &commands[op->cmd];
	if (c->flags & CONCURRENT) {
		pthread_rwlock_rdlock(&s->core->objects_lock);
		r = run(s, c, op);
		pthread_rwlock_unlock(&s->core->objects_lock);
		return r;
	}
	pthread_mutex_lock(&s->core->lock);
	r = run(s, c, op);
	pthread_mutex_unlock(&s->core->lock);
	return r;
}

void dispatch_release_session(struct session *s)
{
	struct ioas *ioas, *tmp;

	devices_release_session(s->core, s);
	vm_release_session(s->core, s);
	iopf_release_session(s->core, s);
	nested_release_session(s->core, s);
	viommu_release_session(s->core, s);
	HASH_ITER(hh, s->core->ioas_table, ioas, tmp) {
		if (ioas->owner != s)
			continue;
		ioas_remove(s, ioas);
		ioas_destroy(ioas);
	}
}
