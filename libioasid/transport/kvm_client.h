/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-vfio registrations done in the VMM, for the remote transport.
 *
 * KVM serves a VM, and its kvm-vfio device, only in the process that
 * created the VM: ioctls from ioasidd fail with EIO.  So through ioasidd
 * the remote transport does what the core does embedded, here in the VMM,
 * when it carries one of these four ops (the API packs them the same way
 * for both transports):
 *
 *   VM_BIND        keeps a duplicate of the VM's kvm-vfio fd (created
 *                  here or given by the VMM), per vm_id;
 *   DEVICE_SET_VM  gets the device's VFIO file from the daemon
 *                  (DEVICE_GET_FD), does KVM_DEV_VFIO_FILE_ADD on the
 *                  new VM's kvm-vfio fd, tells the daemon it did
 *                  (IOASID_SET_VM_CLIENT_REGISTERED: the core keeps its
 *                  coherency account without touching KVM), then
 *                  KVM_DEV_VFIO_FILE_DEL on the old VM's - the core's
 *                  order;
 *   VM_UNBIND,     after the daemon answered, FILE_DEL of what the VM or
 *   DEVICE_UNBIND  device had registered here;
 *   release        (the transport closes) FILE_DEL of everything still
 *                  registered, as the core's session teardown does.
 *
 * Devices without a VFIO file (simulated) have nothing to register: for
 * them DEVICE_SET_VM is the daemon's alone.  Every request these send to
 * the daemon goes through the transport's @send; every failure is
 * written to the caller's op.  One lock serialises these calls (each is
 * a few requests).
 */
#ifndef IOASID_KVM_CLIENT_H
#define IOASID_KVM_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "op/op.h"

struct log_sink;
struct kvm_client_vm;
struct kvm_client_dev;

struct kvm_client {
	pthread_mutex_t lock;
	struct kvm_client_vm *vms;	/* VMs bound through this connection */
	struct kvm_client_dev *devs;	/* devices registered with one */
	const struct log_sink *log;
	/* one request to the daemon and its reply (the transport's) */
	int (*send)(void *priv, struct ioasid_op *op);
	void *priv;
};

void kvm_client_init(struct kvm_client *kc, const struct log_sink *log,
		     int (*send)(void *priv, struct ioasid_op *op),
		     void *priv);
/* Remove every registration from KVM and close every descriptor. */
void kvm_client_release(struct kvm_client *kc);

/* Is @op one whose KVM side runs here (the four above)? */
bool kvm_client_handles(const struct ioasid_op *op);
/* Run such an op: the same arguments and results as the core's. */
int kvm_client_call(struct kvm_client *kc, struct ioasid_op *op);

#endif
