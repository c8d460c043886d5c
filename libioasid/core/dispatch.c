/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Command dispatch.  Mutating commands run under core->lock; queries
 * marked CONCURRENT take only the object-table read lock, so DMA threads
 * and lookups never wait behind a long map or unmap.
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
#include "core/vm.h"
#include "util/macros.h"

enum {
	CONCURRENT	= 1 << 0,	/* no core->lock */
	NEEDS_IOAS	= 1 << 1,	/* op->ioas_id must name an IOAS */
	READ_ONLY	= 1 << 2,	/* an observer may run it on any IOAS */
};

typedef int (*handler_fn)(struct session *s, struct ioas *ioas,
			  struct ioasid_op *op);

struct command {
	handler_fn fn;
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

static int do_ioas_alloc(struct session *s, struct ioas *unused,
			 struct ioasid_op *op)
{
	struct ioas *ioas;
	int r;

	if (s->nr_ioas >= s->limits.max_ioas)
		return op_fail(op, ENOSPC, "quota of %u address spaces "
			       "reached", s->limits.max_ioas);
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

static int do_ioas_destroy(struct session *s, struct ioas *ioas,
			   struct ioasid_op *op)
{
	struct ioasid_op unmap;

	if (ioas->nr_devices)
		return op_fail(op, EBUSY, "IOAS %u still has %u device(s) "
			       "attached", ioas->id, ioas->nr_devices);
	ioasid_op_init(&unmap, IOASID_CMD_UNMAP);
	unmap.iova = 0;
	unmap.length = UINT64_MAX;
	ioas_unmap(ioas, &unmap);	/* keeps the session's counters right */
	ioas_remove(s, ioas);
	ioas_destroy(ioas);
	return 0;
}

static int do_ioas_set_snoop(struct session *s, struct ioas *ioas,
			     struct ioasid_op *op)
{
	if (op->mode > IOASID_SNOOP_ALLOW)
		return op_fail(op, EINVAL, "unknown snoop mode %u", op->mode);
	if (ioas->nr_domains)
		return op_fail(op, EBUSY, "IOAS %u already has domains; their "
			       "coherency is fixed", ioas->id);
	ioas->snoop_mode = op->mode;
	return 0;
}

static int do_ioas_info(struct session *s, struct ioas *ioas,
			struct ioasid_op *op)
{
	struct ioasid_ioas_info info;

	ioas_fill_info(ioas, &info);
	return op_out_struct(op, &info, sizeof(info));
}

static int do_ioas_list(struct session *s, struct ioas *unused,
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

static int do_map_file(struct session *s, struct ioas *ioas,
		       struct ioasid_op *op)
{
	return ioas_map_file(ioas, op);
}

static int do_map_batch(struct session *s, struct ioas *ioas,
			struct ioasid_op *op)
{
	return ioas_map_batch(ioas, op);
}

static int do_map_user(struct session *s, struct ioas *ioas,
		       struct ioasid_op *op)
{
	return ioas_map_user(ioas, op);
}

static int do_unmap(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	return ioas_unmap(ioas, op);
}

static int do_copy(struct session *s, struct ioas *dst, struct ioasid_op *op)
{
	struct ioas *src = find_ioas(s, op->ioas_id2);

	if (!src)
		return op_fail(op, ENOENT, "no IOAS %u", op->ioas_id2);
	return ioas_copy(dst, src, op);
}

static int do_iova_ranges(struct session *s, struct ioas *ioas,
			  struct ioasid_op *op)
{
	return ioas_iova_ranges(ioas, op);
}

static int do_allow_iovas(struct session *s, struct ioas *ioas,
			  struct ioasid_op *op)
{
	return ioas_allow_iovas(ioas, op);
}

static int do_lookup(struct session *s, struct ioas *ioas,
		     struct ioasid_op *op)
{
	return ioas_lookup(ioas, op);
}

static int do_mapping_next(struct session *s, struct ioas *ioas,
			   struct ioasid_op *op)
{
	return ioas_next(ioas, op);
}

static int do_file_info(struct session *s, struct ioas *ioas,
			struct ioasid_op *op)
{
	return ioas_file_info(ioas, op);
}

static int do_convert(struct session *s, struct ioas *ioas,
		      struct ioasid_op *op)
{
	return ioas_convert(ioas, op);
}

static int do_dirty_read(struct session *s, struct ioas *ioas,
			 struct ioasid_op *op)
{
	return domain_dirty_read(s, ioas, op);
}

static int do_domain_list(struct session *s, struct ioas *ioas,
			  struct ioasid_op *op)
{
	return domain_list(s, ioas, op);
}

static int do_device_attach(struct session *s, struct ioas *ioas,
			    struct ioasid_op *op)
{
	return domain_attach(s, ioas, op);
}

static int do_device_replace(struct session *s, struct ioas *ioas,
			     struct ioasid_op *op)
{
	return domain_replace(s, ioas, op);
}

/* Handlers that need no IOAS share one shape. */
#define SESSION_HANDLER(name, fn)					\
	static int name(struct session *s, struct ioas *unused,		\
			struct ioasid_op *op)				\
	{								\
		return fn(s, op);					\
	}

SESSION_HANDLER(do_iommu_list, device_iommu_list)
SESSION_HANDLER(do_device_list, device_list)
SESSION_HANDLER(do_device_info, device_info)
SESSION_HANDLER(do_device_bind, device_bind)
SESSION_HANDLER(do_device_unbind, device_unbind)
SESSION_HANDLER(do_device_detach, domain_detach)
SESSION_HANDLER(do_device_dma, fault_dma)
SESSION_HANDLER(do_device_set_vm, vm_set_device)
SESSION_HANDLER(do_device_get_fd, device_get_fd)
SESSION_HANDLER(do_fault_read, fault_read)
SESSION_HANDLER(do_vm_bind, vm_bind)
SESSION_HANDLER(do_vm_unbind, vm_unbind)
SESSION_HANDLER(do_vm_info, vm_info)
SESSION_HANDLER(do_vm_list, vm_list)
SESSION_HANDLER(do_vm_set_policy, vm_set_policy)
SESSION_HANDLER(do_sim_hotplug, device_sim_hotplug)

static int do_subscribe(struct session *s, struct ioas *unused,
			struct ioasid_op *op)
{
	const uint32_t known = IOASID_EVENT_GROUP_FAULT |
			       IOASID_EVENT_GROUP_DEVICE |
			       IOASID_EVENT_GROUP_COHERENCY;

	if (op->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "unknown event groups 0x%x",
			       op->flags & ~known);
	pthread_mutex_lock(&s->core->event_lock);
	s->event_groups = op->flags;
	pthread_mutex_unlock(&s->core->event_lock);
	return 0;
}

static int do_observe(struct session *s, struct ioas *unused,
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

static int do_status(struct session *s, struct ioas *unused,
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
	pthread_mutex_lock(&core->event_lock);
	st.faults_lost = s->faults_lost;
	pthread_mutex_unlock(&core->event_lock);
	snprintf(st.backend, sizeof(st.backend), "%s", core->be_ops->name);
	snprintf(st.topology, sizeof(st.topology), "%s",
		 core->be_ops->describe ? core->be_ops->describe(core->be) :
					  "");
	return op_out_struct(op, &st, sizeof(st));
}

static const struct command commands[__IOASID_CMD_MAX] = {
	[IOASID_CMD_DIRTY_READ]		= { do_dirty_read, NEEDS_IOAS },
	[IOASID_CMD_CONVERT]		= { do_convert, NEEDS_IOAS },
	[IOASID_CMD_IOMMU_LIST]		= { do_iommu_list, 0 },
	[IOASID_CMD_DEVICE_LIST]	= { do_device_list, 0 },
	[IOASID_CMD_DEVICE_INFO]	= { do_device_info, 0 },
	[IOASID_CMD_DEVICE_BIND]	= { do_device_bind, 0 },
	[IOASID_CMD_DEVICE_UNBIND]	= { do_device_unbind, 0 },
	[IOASID_CMD_DEVICE_ATTACH]	= { do_device_attach, NEEDS_IOAS },
	[IOASID_CMD_DEVICE_DETACH]	= { do_device_detach, 0 },
	[IOASID_CMD_DEVICE_REPLACE]	= { do_device_replace, NEEDS_IOAS },
	[IOASID_CMD_DEVICE_DMA]		= { do_device_dma, CONCURRENT },
	[IOASID_CMD_DOMAIN_LIST]	= { do_domain_list,
					    NEEDS_IOAS | READ_ONLY },
	[IOASID_CMD_VM_BIND]		= { do_vm_bind, 0 },
	[IOASID_CMD_VM_UNBIND]		= { do_vm_unbind, 0 },
	[IOASID_CMD_VM_INFO]		= { do_vm_info, 0 },
	[IOASID_CMD_VM_LIST]		= { do_vm_list, 0 },
	[IOASID_CMD_VM_SET_POLICY]	= { do_vm_set_policy, 0 },
	[IOASID_CMD_DEVICE_SET_VM]	= { do_device_set_vm, 0 },
	[IOASID_CMD_DEVICE_GET_FD]	= { do_device_get_fd, 0 },
	[IOASID_CMD_FAULT_READ]		= { do_fault_read, 0 },
	[IOASID_CMD_SUBSCRIBE]		= { do_subscribe, 0 },
	[IOASID_CMD_STATUS]		= { do_status, 0 },
	[IOASID_CMD_OBSERVE]		= { do_observe, 0 },
	[IOASID_CMD_SIM_HOTPLUG]	= { do_sim_hotplug, 0 },
	[IOASID_CMD_IOAS_ALLOC]		= { do_ioas_alloc, 0 },
	[IOASID_CMD_IOAS_DESTROY]	= { do_ioas_destroy, NEEDS_IOAS },
	[IOASID_CMD_IOAS_SET_SNOOP]	= { do_ioas_set_snoop, NEEDS_IOAS },
	[IOASID_CMD_IOAS_INFO]		= { do_ioas_info, NEEDS_IOAS | READ_ONLY },
	[IOASID_CMD_IOAS_LIST]		= { do_ioas_list, 0 },
	[IOASID_CMD_MAP_FILE]		= { do_map_file, NEEDS_IOAS },
	[IOASID_CMD_MAP_USER]		= { do_map_user, NEEDS_IOAS },
	[IOASID_CMD_MAP_BATCH]		= { do_map_batch, NEEDS_IOAS },
	[IOASID_CMD_UNMAP]		= { do_unmap, NEEDS_IOAS },
	[IOASID_CMD_COPY]		= { do_copy, NEEDS_IOAS },
	[IOASID_CMD_IOVA_RANGES]	= { do_iova_ranges, NEEDS_IOAS | READ_ONLY },
	[IOASID_CMD_ALLOW_IOVAS]	= { do_allow_iovas, NEEDS_IOAS },
	[IOASID_CMD_LOOKUP]		= { do_lookup, NEEDS_IOAS |
					    CONCURRENT | READ_ONLY },
	[IOASID_CMD_MAPPING_NEXT]	= { do_mapping_next, NEEDS_IOAS |
					    CONCURRENT | READ_ONLY },
	[IOASID_CMD_FILE_INFO]		= { do_file_info, NEEDS_IOAS | READ_ONLY },
};

static int run(struct session *s, const struct command *c,
	       struct ioasid_op *op)
{
	struct ioas *ioas = NULL;

	if (c->flags & NEEDS_IOAS) {
		ioas = c->flags & READ_ONLY ? find_ioas_to_read(s, op->ioas_id) :
					      find_ioas(s, op->ioas_id);
		if (!ioas)
			return op_fail(op, ENOENT, "no IOAS %u", op->ioas_id);
	}
	return c->fn(s, ioas, op);
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
	HASH_ITER(hh, s->core->ioas_table, ioas, tmp) {
		if (ioas->owner != s)
			continue;
		ioas_remove(s, ioas);
		ioas_destroy(ioas);
	}
}
