/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices: the inventory as a session sees it, binding, the device's VFIO
 * file, and hotplug.
 *
 * Every inventory device has a struct device for the life of the core;
 * binding gives it to one session (dev_id != 0).  Attaching it to an IOAS
 * is domain.c's; its DMA and fault records are fault.c's; its VM is vm.c's.
 */
#ifndef IOASID_CORE_DEVICE_H
#define IOASID_CORE_DEVICE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"
#include "inventory/inventory.h"
#include "op/op.h"

struct ioas;
struct vm;
struct be_device;

struct device {
	struct inv_device *inv;
	const struct inv_iommu *unit;
	struct session *owner;		/* NULL: not bound */
	uint32_t dev_id;
	pthread_rwlock_t lock;		/* DMA (read) vs bind/unbind */
	int vfio_fd;			/* ours, for kvm-vfio; -1 */
	struct be_device *be;
	struct ioas *ioas;
	struct domain *domain;
	struct nested *nested;		/* attached through it (nested.h) */
	struct vdevice *vdev;		/* its vDEVICE (viommu.h), NULL */
	struct vm *vm;
	bool hinted;			/* trusted "no no-snoop" hint */
	bool removed;			/* hot-unplugged */
	/* who unplugged it (simulated), so it may plug it back */
	const struct session *unplugged_by;
	bool noncoherent;
	bool group_viable;		/* read by DMA without the core lock */
	/* in its VM's kvm-vfio by the client (ioasidd), not by us */
	bool kvm_by_client;
	/* its VFIO file is in its VM's kvm-vfio (FILE_ADD done, or by the client) */
	bool kvm_file;
	/* PASIDs attached (pasid.c), in no order */
	struct pasid_att *pasids;
	uint32_t nr_pasids;
};

/*
 * The session's bound device @dev_id, or NULL.  Inline, so the modules
 * that look devices up (domain.c, fault.c, vm.c) do not call into this
 * one, which calls them.
 */
static inline struct device *device_find_bound(struct session *s,
					       uint32_t dev_id)
{
	struct core *core = s->core;

	for (uint32_t i = 0; dev_id && i < core->nr_devices; i++)
		if (core->devices[i].dev_id == dev_id &&
		    core->devices[i].owner == s)
			return &core->devices[i];
	return NULL;
}

/* The reason for a @dev_id that is not one of the session's devices. */
static inline int device_not_bound(struct ioasid_op *op, uint32_t dev_id)
{
	return op_fail(op, ENOENT, "no bound device %u", dev_id);
}

int devices_init(struct core *core);
void devices_release(struct core *core);
/* Undo everything @s holds: detach and unbind devices. */
void devices_release_session(struct core *core, struct session *s);

/*
 * A device came or went (udev, or the simulator on request): a removed
 * device is detached and unbound, its owner and every session subscribed
 * to device events are told.  Only devices of the inventory come back;
 * new ones need a restart of the core.
 */
void devices_hotplug(struct core *core, const char *name, bool present);
/* Drain the backend's hotplug source (core->lock held). */
void devices_hotplug_poll(struct core *core);
int device_sim_hotplug(struct session *s, struct ioas *ioas,
		       struct ioasid_op *op);

int device_list(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int device_info(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int device_iommu_list(struct session *s, struct ioas *ioas,
		      struct ioasid_op *op);
int device_bind(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int device_unbind(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* A new descriptor of the device's VFIO file, in op->out_fd. */
int device_get_fd(struct session *s, struct ioas *ioas, struct ioasid_op *op);

#endif
