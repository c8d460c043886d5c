/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-vfio registrations done in the VMM, for the remote transport (see
 * kvm_client.h).  The daemon decides, the VMM follows: a registration is
 * added before the daemon is asked (QEMU's order: the VFIO file joins
 * kvm-vfio, then the kernel judges) and taken back when it says no; one
 * that ends is removed once the daemon has agreed, or when it can no
 * longer disagree (the connection is gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvm/kvm.h"
#include "transport/kvm_client.h"
#include "util/log.h"
#include "util/macros.h"

struct kvm_client_vm {
	struct kvm_client_vm *next;
	uint32_t vm_id;
	int kvm_vfio_fd;		/* our duplicate */
};

struct kvm_client_dev {
	struct kvm_client_dev *next;
	uint32_t dev_id;
	struct kvm_client_vm *vm;	/* its VFIO file is in vm's kvm-vfio */
	int vfio_fd;			/* that file (from DEVICE_GET_FD) */
};

void kvm_client_init(struct kvm_client *kc, const struct log_sink *log,
		     int (*send)(void *priv, struct ioasid_op *op),
		     void *priv)
{
	pthread_mutex_init(&kc->lock, NULL);
	kc->vms = NULL;
	kc->devs = NULL;
	kc->log = log;
	kc->send = send;
	kc->priv = priv;
}

/* A request to the daemon on behalf of @op: its failure is @op's. */
static int request(struct kvm_client *kc, struct ioasid_op *op,
		   struct ioasid_op *sub)
{
	int r = kc->send(kc->priv, sub);

	if (r < 0)
		memcpy(op->errmsg, sub->errmsg, sizeof(op->errmsg));
	return r;
}

static struct kvm_client_vm *find_vm(struct kvm_client *kc, uint32_t vm_id)
{
	struct kvm_client_vm *vm = kc->vms;

	while (vm && vm->vm_id != vm_id)
		vm = vm->next;
	return vm;
}

static struct kvm_client_dev *find_dev(struct kvm_client *kc,
				       uint32_t dev_id)
{
	struct kvm_client_dev *dev = kc->devs;

	while (dev && dev->dev_id != dev_id)
		dev = dev->next;
	return dev;
}

/* KVM_DEV_VFIO_FILE_DEL, then forget the registration (@log: NULL, quiet). */
static void unregister(const struct log_sink *log, struct kvm_client *kc,
		       struct kvm_client_dev *dev)
{
	struct kvm_client_dev **p = &kc->devs;
	int r = kvm_vfio_file_del(dev->vm->kvm_vfio_fd, dev->vfio_fd);

	if (r < 0 && log)
		warn(log, "kvm-vfio FILE_DEL of device %u from VM %u: %s",
		     dev->dev_id, dev->vm->vm_id, strerror(-r));
	while (*p != dev)
		p = &(*p)->next;
	*p = dev->next;
	close(dev->vfio_fd);
	free(dev);
}

/* Its devices leave it first, as in the core. */
static void forget_vm(const struct log_sink *log, struct kvm_client *kc,
		      struct kvm_client_vm *vm)
{
	struct kvm_client_vm **p = &kc->vms;
	struct kvm_client_dev *dev = kc->devs, *next;

	for (; dev; dev = next) {
		next = dev->next;
		if (dev->vm == vm)
			unregister(log, kc, dev);
	}
	while (*p != vm)
		p = &(*p)->next;
	*p = vm->next;
	close(vm->kvm_vfio_fd);
	free(vm);
}

void kvm_client_release(struct kvm_client *kc)
{
	while (kc->vms)
		forget_vm(NULL, kc, kc->vms);
	pthread_mutex_destroy(&kc->lock);
}

/* ---- VMs ----------------------------------------------------------------- */

/*
 * The kvm-vfio fd to pass to the daemon and keep: a duplicate of the
 * VMM's, or one created here (KVM serves the VM only in this process).
 */
static int kvm_vfio_for_bind(struct ioasid_op *op, int *fd, uint32_t *flags)
{
	int kvm_vm_fd = op->fd, kvm_vfio_fd = op->fd2;
	int r;

	if (!kvm_is_vm_fd(kvm_vm_fd))
		return op_fail(op, EINVAL, "fd %d is not a KVM VM", kvm_vm_fd);
	if (kvm_vfio_fd >= 0) {
		*fd = fcntl(kvm_vfio_fd, F_DUPFD_CLOEXEC, 3);
		if (*fd < 0)
			return op_fail(op, errno, "cannot keep kvm-vfio fd "
				       "%d: %s", kvm_vfio_fd, strerror(errno));
		return 0;
	}
	r = kvm_vfio_create(kvm_vm_fd, fd);
	if (r == -EBUSY || r == -EEXIST)
		return op_fail(op, EEXIST, "the VM already has its kvm-vfio "
			       "device (KVM allows one): pass its fd");
	if (r == -EIO)
		return op_fail(op, EIO, "only the VM's own process can create "
			       "its kvm-vfio device: bind the VM from there");
	if (r < 0)
		return op_fail(op, -r, "cannot create the VM's kvm-vfio "
			       "device: %s", strerror(-r));
	*flags = IOASID_VM_KVM_VFIO_CREATED;
	return 0;
}

/* @op: the VMM's VM fd (fd) and kvm-vfio fd or -1 (fd2), both its own. */
static int vm_bind(struct kvm_client *kc, struct ioasid_op *op)
{
	struct kvm_client_vm *vm = calloc(1, sizeof(*vm));
	struct ioasid_op sub;
	int r;

	if (!vm)
		return op_fail(op, ENOMEM, "out of memory");
	ioasid_op_init(&sub, IOASID_CMD_VM_BIND);
	sub.fd = op->fd;
	r = kvm_vfio_for_bind(op, &sub.fd2, &sub.flags);
	if (r == 0)
		r = request(kc, op, &sub);
	if (r < 0) {
		close_fd(sub.fd2);
		free(vm);
		return r;
	}
	vm->vm_id = sub.out_id;
	vm->kvm_vfio_fd = sub.fd2;
	pthread_mutex_lock(&kc->lock);
	vm->next = kc->vms;
	kc->vms = vm;
	pthread_mutex_unlock(&kc->lock);
	op->out_id = sub.out_id;
	return 0;
}

/*
 * The daemon unbinds only VMs of the session, and fails only when it has
 * none by that id or the connection is gone: either way nothing of this
 * VM may stay registered here.
 */
static int vm_unbind(struct kvm_client *kc, struct ioasid_op *op)
{
	struct kvm_client_vm *vm;
	struct ioasid_op sub;
	int r;

	ioasid_op_init(&sub, IOASID_CMD_VM_UNBIND);
	sub.vm_id = op->vm_id;
	pthread_mutex_lock(&kc->lock);
	r = request(kc, op, &sub);
	vm = find_vm(kc, op->vm_id);
	if (vm)
		forget_vm(kc->log, kc, vm);
	pthread_mutex_unlock(&kc->lock);
	return r;
}

/* ---- devices ------------------------------------------------------------- */

/* DEVICE_SET_VM of @op's device to @vm_id, as the daemon's decision. */
static int set_vm_call(struct kvm_client *kc, struct ioasid_op *op,
		       uint32_t vm_id, uint32_t flags)
{
	struct ioasid_op sub;

	ioasid_op_init(&sub, IOASID_CMD_DEVICE_SET_VM);
	sub.dev_id = op->dev_id;
	sub.vm_id = vm_id;
	sub.flags = flags;
	return request(kc, op, &sub);
}

static int kvm_add(struct ioasid_op *op, struct kvm_client_vm *vm,
		   int vfio_fd)
{
	int r = kvm_vfio_file_add(vm->kvm_vfio_fd, vfio_fd);

	if (r == -EIO)
		return op_fail(op, EIO, "KVM refused device %u: only the "
			       "process that created VM %u may add devices "
			       "to it", op->dev_id, vm->vm_id);
	if (r < 0)
		return op_fail(op, -r, "KVM refused device %u in VM %u "
			       "(KVM_DEV_VFIO_FILE_ADD): %s", op->dev_id,
			       vm->vm_id, strerror(-r));
	return 0;
}

/* Out of any VM, or into one this connection does not know (-ENOENT). */
static int leave(struct kvm_client *kc, struct ioasid_op *op,
		 struct kvm_client_dev *old)
{
	int r = set_vm_call(kc, op, op->vm_id, 0);

	if (r == 0 && old)
		unregister(kc->log, kc, old);
	return r;
}

/* Move a registered device: the same file joins @vm, then leaves its old. */
static int move(struct kvm_client *kc, struct ioasid_op *op,
		struct kvm_client_dev *dev, struct kvm_client_vm *vm)
{
	int r = kvm_add(op, vm, dev->vfio_fd);

	if (r < 0)
		return r;
	r = set_vm_call(kc, op, vm->vm_id, IOASID_SET_VM_CLIENT_REGISTERED);
	if (r < 0) {
		kvm_vfio_file_del(vm->kvm_vfio_fd, dev->vfio_fd);
		return r;
	}
	if (kvm_vfio_file_del(dev->vm->kvm_vfio_fd, dev->vfio_fd) < 0)
		warn(kc->log, "kvm-vfio FILE_DEL of device %u from VM %u failed",
		     dev->dev_id, dev->vm->vm_id);
	dev->vm = vm;
	return 0;
}

/*
 * Is bound device @dev_id simulated?  The daemon's policy answers
 * DEVICE_GET_FD before the backend, so a client without device-fds hears
 * EPERM for simulated devices too; those have no file to register anyway.
 */
static int bound_simulated(struct kvm_client *kc, struct ioasid_op *op)
{
	struct ioasid_device_info *v;
	struct ioasid_op sub;
	uint32_t nr = 1024;
	int r;

	v = calloc(nr, sizeof(*v));
	if (!v)
		return op_fail(op, ENOMEM, "out of memory");
	ioasid_op_init(&sub, IOASID_CMD_DEVICE_LIST);
	sub.out = v;
	sub.out_cap = nr * (uint32_t)sizeof(*v);
	r = request(kc, op, &sub);
	if (r == 0 && sub.out_len % sizeof(*v))
		r = op_fail(op, EPROTO, "a device list of %u bytes is not a "
			    "whole number of entries", sub.out_len);
	nr = r == 0 ? sub.out_len / (uint32_t)sizeof(*v) : 0;
	for (uint32_t i = 0; i < nr; i++)
		if (v[i].dev_id == op->dev_id &&
		    (v[i].flags & IOASID_DEVICE_BOUND))
			r = !!(v[i].flags & IOASID_DEVICE_SIMULATED);
	free(v);
	return r;
}

/* The device's VFIO file from the daemon (DEVICE_GET_FD) into *@fd. */
static int get_fd(struct kvm_client *kc, struct ioasid_op *op, int *fd)
{
	struct ioasid_op sub;
	int r;

	ioasid_op_init(&sub, IOASID_CMD_DEVICE_GET_FD);
	sub.dev_id = op->dev_id;
	r = request(kc, op, &sub);
	if (r == 0)
		*fd = sub.out_fd;
	else
		close_fd(sub.out_fd);
	return r;
}

/*
 * Register a device that is in no VM here yet.  Without a VFIO file
 * (simulated device; or a daemon that predates DEVICE_GET_FD: EINVAL)
 * there is nothing to register and the daemon decides alone.
 */
static int join(struct kvm_client *kc, struct ioasid_op *op,
		struct kvm_client_vm *vm)
{
	struct kvm_client_dev *dev;
	int fd = -1, r;

	r = get_fd(kc, op, &fd);
	if (r == -EPERM) {
		int sim = bound_simulated(kc, op);

		if (sim < 0)
			return sim;
		r = sim ? -EOPNOTSUPP : -EPERM;
	}
	if (r == -EOPNOTSUPP || r == -EINVAL)
		return set_vm_call(kc, op, vm->vm_id, 0);
	if (r < 0)
		return r;
	dev = calloc(1, sizeof(*dev));
	r = dev ? kvm_add(op, vm, fd) : op_fail(op, ENOMEM, "out of memory");
	if (r == 0) {
		r = set_vm_call(kc, op, vm->vm_id,
				IOASID_SET_VM_CLIENT_REGISTERED);
		if (r < 0)
			kvm_vfio_file_del(vm->kvm_vfio_fd, fd);
	}
	if (r < 0) {
		close(fd);
		free(dev);
		return r;
	}
	*dev = (struct kvm_client_dev){
		.next = kc->devs, .dev_id = op->dev_id, .vm = vm, .vfio_fd = fd,
	};
	kc->devs = dev;
	return 0;
}

static int set_vm_locked(struct kvm_client *kc, struct ioasid_op *op)
{
	struct kvm_client_dev *dev = find_dev(kc, op->dev_id);
	struct kvm_client_vm *vm = op->vm_id ? find_vm(kc, op->vm_id) : NULL;

	if (!vm)
		return leave(kc, op, dev);
	if (dev && dev->vm == vm)	/* already there: the daemon agrees */
		return set_vm_call(kc, op, op->vm_id,
				   IOASID_SET_VM_CLIENT_REGISTERED);
	if (dev)
		return move(kc, op, dev, vm);
	return join(kc, op, vm);
}

static int set_vm(struct kvm_client *kc, struct ioasid_op *op)
{
	int r;

	pthread_mutex_lock(&kc->lock);
	r = set_vm_locked(kc, op);
	pthread_mutex_unlock(&kc->lock);
	return r;
}

/*
 * The daemon takes the device out of its VM as it unbinds it (and fails
 * only when the device is not the session's any more: unplugged, or the
 * connection gone); its registration here goes either way.
 */
static int device_unbind(struct kvm_client *kc, struct ioasid_op *op)
{
	struct kvm_client_dev *dev;
	struct ioasid_op sub;
	int r;

	ioasid_op_init(&sub, IOASID_CMD_DEVICE_UNBIND);
	sub.dev_id = op->dev_id;
	pthread_mutex_lock(&kc->lock);
	r = request(kc, op, &sub);
	dev = find_dev(kc, op->dev_id);
	/* EBUSY: still bound, attached and in its VM; anything else: gone */
	if (dev && r != -EBUSY)
		unregister(kc->log, kc, dev);
	pthread_mutex_unlock(&kc->lock);
	return r;
}

/* ---- the transport's door ------------------------------------------------ */

bool kvm_client_handles(const struct ioasid_op *op)
{
	switch (op->cmd) {
	case IOASID_CMD_VM_BIND:
	case IOASID_CMD_VM_UNBIND:
	case IOASID_CMD_DEVICE_SET_VM:
	case IOASID_CMD_DEVICE_UNBIND:
		return true;
	}
	return false;
}

int kvm_client_call(struct kvm_client *kc, struct ioasid_op *op)
{
	switch (op->cmd) {
	case IOASID_CMD_VM_BIND:
		return vm_bind(kc, op);
	case IOASID_CMD_VM_UNBIND:
		return vm_unbind(kc, op);
	case IOASID_CMD_DEVICE_SET_VM:
		return set_vm(kc, op);
	case IOASID_CMD_DEVICE_UNBIND:
		return device_unbind(kc, op);
	}
	return op_fail(op, EINVAL, "command %u has no KVM side", op->cmd);
}
