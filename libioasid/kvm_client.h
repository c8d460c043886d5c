/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-vfio registrations done in the VMM, for contexts on ioasidd.
 *
 * KVM serves a VM, and its kvm-vfio device, only in the process that
 * created the VM: ioctls from ioasidd fail with EIO.  So through ioasidd
 * the library does what the core does embedded, here in the VMM:
 *
 *   vm_bind     keeps a duplicate of the VM's kvm-vfio fd (created here
 *               or given by the VMM), per vm_id;
 *   set_vm      gets the device's VFIO file from the daemon
 *               (DEVICE_GET_FD), does KVM_DEV_VFIO_FILE_ADD on the new
 *               VM's kvm-vfio fd, tells the daemon it did
 *               (IOASID_SET_VM_CLIENT_REGISTERED: the core keeps its
 *               coherency account without touching KVM), then
 *               KVM_DEV_VFIO_FILE_DEL on the old VM's - the core's order;
 *   unbinds     after the daemon answered, FILE_DEL of what the device
 *               or VM had registered here;
 *   release     FILE_DEL of everything still registered, as the core's
 *               session teardown does.
 *
 * Devices without a VFIO file (simulated) have nothing to register: for
 * them set_vm is the daemon's alone, as before.  Embedded contexts never
 * come here.  One lock serialises these calls (each is a few requests).
 */
#ifndef IOASID_KVM_CLIENT_H
#define IOASID_KVM_CLIENT_H

#include <pthread.h>
#include <stdint.h>

struct ioasid_ctx;
struct kvm_client_vm;
struct kvm_client_dev;

struct kvm_client {
	pthread_mutex_t lock;
	struct kvm_client_vm *vms;	/* VMs bound through this context */
	struct kvm_client_dev *devs;	/* devices registered with one */
};

void kvm_client_init(struct kvm_client *kc);
/* Remove every registration from KVM and close every descriptor. */
void kvm_client_release(struct kvm_client *kc);

/* The remote halves of ioasid_vm_bind(), _vm_unbind(), _device_set_vm()
 * and _device_unbind(): same arguments, same results. */
int kvm_client_vm_bind(struct ioasid_ctx *ctx, int kvm_vm_fd,
		       int kvm_vfio_fd, uint32_t *vm_id);
int kvm_client_vm_unbind(struct ioasid_ctx *ctx, uint32_t vm_id);
int kvm_client_set_vm(struct ioasid_ctx *ctx, uint32_t dev_id,
		      uint32_t vm_id);
int kvm_client_device_unbind(struct ioasid_ctx *ctx, uint32_t dev_id);

#endif
