/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMs: a KVM VM fd tied to a session, its kvm-vfio device, and the
 * devices put in it.
 */
#ifndef IOASID_CORE_VM_H
#define IOASID_CORE_VM_H

#include <stdint.h>

#include "util/hash.h"

#include "core/base.h"
#include "op/op.h"

struct device;

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

int vm_bind(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int vm_unbind(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int vm_info(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int vm_list(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int vm_set_policy(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int vm_set_device(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* Take @dev out of its VM (kvm-vfio FILE_DEL unless the client did it). */
void vm_remove_device(struct core *core, struct device *dev);
/* Unbind every VM of @s. */
void vm_release_session(struct core *core, struct session *s);

#endif
