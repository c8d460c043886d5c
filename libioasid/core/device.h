/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices, the domains they are attached through, and VMs.
 *
 * Every inventory device has a struct device for the life of the core;
 * binding gives it to one session (dev_id != 0).  Attaching puts it in a
 * domain of an IOAS: an existing domain of the same coherency class that
 * the backend accepts, or a new one (the iommufd/QEMU loop).
 *
 * Coherency (docs/coherency.md): a device is non-coherent when it may
 * issue no-snoop DMA (PCIe "Enable No Snoop" set or unknown, and no trusted
 * hint that it won't) and its domain does not enforce snooping.  A VM with
 * at least one non-coherent device needs WBINVD to really flush.
 */
#ifndef IOASID_CORE_DEVICE_H
#define IOASID_CORE_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/hash.h"

#include "inventory/inventory.h"
#include "op/op.h"

struct core;
struct session;
struct ioas;
struct vm;
struct be_device;
struct be_domain;

struct domain {
	uint32_t id;
	struct ioas *ioas;
	const struct inv_iommu *unit;	/* the unit it was created for */
	bool enforce;			/* coherency, fixed at creation */
	struct be_domain *be;
	uint32_t nr_devices;
	struct domain *next;		/* in core->domains */
};

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
	struct vm *vm;
	bool hinted;			/* trusted "no no-snoop" hint */
	bool removed;			/* hot-unplugged */
	/* who unplugged it (simulated), so it may plug it back */
	const struct session *unplugged_by;
	bool noncoherent;
	bool group_viable;		/* read by DMA without the core lock */
	/* in its VM's kvm-vfio by the client (ioasidd), not by us */
	bool kvm_by_client;
};

struct vm {
	uint32_t id;
	struct session *owner;
	int kvm_fd;			/* our dup of the VM fd */
	int kvm_vfio_fd;		/* the VM's kvm-vfio device */
	uint32_t flags;			/* enum ioasid_vm_flags */
	uint32_t nr_devices;
	uint32_t nr_noncoherent;
	uint64_t registrations;
	UT_hash_handle hh;
};

int devices_init(struct core *core);
void devices_release(struct core *core);
/* Undo everything @s holds: detach and unbind devices, unbind VMs. */
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
int device_sim_hotplug(struct session *s, struct ioasid_op *op);

int device_list(struct session *s, struct ioasid_op *op);
int device_info(struct session *s, struct ioasid_op *op);
int iommu_list(struct session *s, struct ioasid_op *op);
int device_bind(struct session *s, struct ioasid_op *op);
int device_unbind(struct session *s, struct ioasid_op *op);
int device_attach(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int device_replace(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int device_detach(struct session *s, struct ioasid_op *op);
int device_dma(struct session *s, struct ioasid_op *op);
int device_set_vm(struct session *s, struct ioasid_op *op);
/* A new descriptor of the device's VFIO file, in op->out_fd. */
int device_get_fd(struct session *s, struct ioasid_op *op);
/* The VFIO file KVM should know about: the caller's, or the backend's. */
int device_vfio_file(struct core *core, const struct device *dev);
int domain_list(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int fault_read(struct session *s, struct ioasid_op *op);
int dirty_read(struct session *s, struct ioas *ioas, struct ioasid_op *op);

int vm_bind(struct session *s, struct ioasid_op *op);
int vm_unbind(struct session *s, struct ioasid_op *op);
int vm_info(struct session *s, struct ioasid_op *op);
int vm_list(struct session *s, struct ioasid_op *op);
int vm_set_policy(struct session *s, struct ioasid_op *op);

/* Coherency bookkeeping (coherency.c). */
bool device_may_nosnoop(const struct device *dev);
/* Recompute @dev's coherency and its VM's registration; emits events. */
void coherency_update(struct core *core, struct device *dev);
void vm_remove_device(struct core *core, struct device *dev);
void coherency_join_vm(struct core *core, struct device *dev, struct vm *vm);
void coherency_leave_vm(struct core *core, struct device *dev);
/* Unbind every VM of @s. */
void vms_release_session(struct core *core, struct session *s);

#endif
