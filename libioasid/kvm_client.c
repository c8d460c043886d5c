/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-vfio registrations done in the VMM, for contexts on ioasidd (see
 * kvm_client.h).  The daemon decides, the VMM follows: a registration is
 * added before the daemon is asked (QEMU's order: the VFIO file joins
 * kvm-vfio, then the kernel judges) and taken back when it says no; one
 * that ends is removed once the daemon has agreed, or when it can no
 * longer disagree (the connection is gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "kvm/kvm.h"
#include "kvm_client.h"
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

void kvm_client_init(struct kvm_client *kc)
{
	pthread_mutex_init(&kc->lock, NULL);
	kc->vms = NULL;
	kc->devs = NULL;
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

/* KVM_DEV_VFIO_FILE_DEL, then forget the registration. */
static void unregister(struct ioasid_ctx *ctx, struct kvm_client *kc,
		       struct kvm_client_dev *dev)
{
	struct kvm_client_dev **p = &kc->devs;
	int r = kvm_vfio_file_del(dev->vm->kvm_vfio_fd, dev->vfio_fd);

	if (r < 0 && ctx)
		warn(&ctx->log, "kvm-vfio FILE_DEL of device %u from VM %u: %s",
		     dev->dev_id, dev->vm->vm_id, strerror(-r));
	while (*p != dev)
		p = &(*p)->next;
	*p = dev->next;
	close(dev->vfio_fd);
	free(dev);
}

/* Its devices leave it first, as in the core. */
static void forget_vm(struct ioasid_ctx *ctx, struct kvm_client *kc,
		      struct kvm_client_vm *vm)
{
	struct kvm_client_vm **p = &kc->vms;
	struct kvm_client_dev *dev = kc->devs, *next;

	for (; dev; dev = next) {
		next = dev->next;
		if (dev->vm == vm)
			unregister(ctx, kc, dev);
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
static int kvm_vfio_for_bind(int kvm_vm_fd, int kvm_vfio_fd, int *fd,
			     uint32_t *flags)
{
	int r;

	if (!kvm_is_vm_fd(kvm_vm_fd))
		return api_fail(-EINVAL, "fd %d is not a KVM VM", kvm_vm_fd);
	if (kvm_vfio_fd >= 0) {
		*fd = fcntl(kvm_vfio_fd, F_DUPFD_CLOEXEC, 3);
		if (*fd < 0)
			return api_fail(-errno, "cannot keep kvm-vfio fd %d: %s",
				    kvm_vfio_fd, strerror(errno));
		return 0;
	}
	r = kvm_vfio_create(kvm_vm_fd, fd);
	if (r == -EBUSY || r == -EEXIST)
		return api_fail(-EEXIST, "the VM already has its kvm-vfio device "
			    "(KVM allows one): pass its fd");
	if (r == -EIO)
		return api_fail(r, "only the VM's own process can create its "
			    "kvm-vfio device: bind the VM from there");
	if (r < 0)
		return api_fail(r, "cannot create the VM's kvm-vfio device: %s",
			    strerror(-r));
	*flags = IOASID_VM_KVM_VFIO_CREATED;
	return 0;
}

int kvm_client_vm_bind(struct ioasid_ctx *ctx, int kvm_vm_fd,
		       int kvm_vfio_fd, uint32_t *vm_id)
{
	struct kvm_client *kc = &ctx->kvm;
	struct kvm_client_vm *vm = calloc(1, sizeof(*vm));
	struct ioasid_op op;
	int r;

	if (!vm)
		return api_fail(-ENOMEM, "out of memory");
	ioasid_op_init(&op, IOASID_CMD_VM_BIND);
	op.fd = kvm_vm_fd;
	r = kvm_vfio_for_bind(kvm_vm_fd, kvm_vfio_fd, &op.fd2, &op.flags);
	if (r == 0)
		r = api_call(ctx, &op);
	if (r < 0) {
		close_fd(op.fd2);
		free(vm);
		return r;
	}
	vm->vm_id = op.out_id;
	vm->kvm_vfio_fd = op.fd2;
	pthread_mutex_lock(&kc->lock);
	vm->next = kc->vms;
	kc->vms = vm;
	pthread_mutex_unlock(&kc->lock);
	*vm_id = op.out_id;
	return 0;
}

/*
 * The daemon unbinds only VMs of the session, and fails only when it has
 * none by that id or the connection is gone: either way nothing of this
 * VM may stay registered here.
 */
int kvm_client_vm_unbind(struct ioasid_ctx *ctx, uint32_t vm_id)
{
	struct kvm_client *kc = &ctx->kvm;
	struct kvm_client_vm *vm;
	struct ioasid_op op;
	int r;

	ioasid_op_init(&op, IOASID_CMD_VM_UNBIND);
	op.vm_id = vm_id;
	pthread_mutex_lock(&kc->lock);
	r = api_call(ctx, &op);
	vm = find_vm(kc, vm_id);
	if (vm)
		forget_vm(ctx, kc, vm);
	pthread_mutex_unlock(&kc->lock);
	return r;
}

/* ---- devices ------------------------------------------------------------- */

static int set_vm_call(struct ioasid_ctx *ctx, uint32_t dev_id,
		       uint32_t vm_id, uint32_t flags)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_SET_VM);
	op.dev_id = dev_id;
	op.vm_id = vm_id;
	op.flags = flags;
	return api_call(ctx, &op);
}

static int kvm_add(struct kvm_client_vm *vm, uint32_t dev_id, int vfio_fd)
{
	int r = kvm_vfio_file_add(vm->kvm_vfio_fd, vfio_fd);

	if (r == -EIO)
		return api_fail(r, "KVM refused device %u: only the process that "
			    "created VM %u may add devices to it", dev_id,
			    vm->vm_id);
	if (r < 0)
		return api_fail(r, "KVM refused device %u in VM %u "
			    "(KVM_DEV_VFIO_FILE_ADD): %s", dev_id, vm->vm_id,
			    strerror(-r));
	return 0;
}

/* Out of any VM, or into one this context does not know (-ENOENT). */
static int leave(struct ioasid_ctx *ctx, struct kvm_client *kc,
		 struct kvm_client_dev *old, uint32_t dev_id, uint32_t vm_id)
{
	int r = set_vm_call(ctx, dev_id, vm_id, 0);

	if (r == 0 && old)
		unregister(ctx, kc, old);
	return r;
}

/* Move a registered device: the same file joins @vm, then leaves its old. */
static int move(struct ioasid_ctx *ctx, struct kvm_client_dev *dev,
		struct kvm_client_vm *vm)
{
	int r = kvm_add(vm, dev->dev_id, dev->vfio_fd);

	if (r < 0)
		return r;
	r = set_vm_call(ctx, dev->dev_id, vm->vm_id,
			IOASID_SET_VM_CLIENT_REGISTERED);
	if (r < 0) {
		kvm_vfio_file_del(vm->kvm_vfio_fd, dev->vfio_fd);
		return r;
	}
	if (kvm_vfio_file_del(dev->vm->kvm_vfio_fd, dev->vfio_fd) < 0)
		warn(&ctx->log, "kvm-vfio FILE_DEL of device %u from VM %u failed",
		     dev->dev_id, dev->vm->vm_id);
	dev->vm = vm;
	return 0;
}

/*
 * Is bound device @dev_id simulated?  The daemon's policy answers
 * DEVICE_GET_FD before the backend, so a client without device-fds hears
 * EPERM for simulated devices too; those have no file to register anyway.
 */
static int bound_simulated(struct ioasid_ctx *ctx, uint32_t dev_id)
{
	struct ioasid_device_info *v;
	uint32_t nr = 1024;
	int r;

	v = calloc(nr, sizeof(*v));
	if (!v)
		return api_fail(-ENOMEM, "out of memory");
	r = ioasid_device_list(ctx, v, &nr);
	for (uint32_t i = 0; r == 0 && i < nr; i++)
		if (v[i].dev_id == dev_id && (v[i].flags & IOASID_DEVICE_BOUND))
			r = !!(v[i].flags & IOASID_DEVICE_SIMULATED);
	free(v);
	return r;
}

/*
 * Register a device that is in no VM here yet.  Without a VFIO file
 * (simulated device; or a daemon that predates DEVICE_GET_FD: EINVAL)
 * there is nothing to register and the daemon decides alone.
 */
static int join(struct ioasid_ctx *ctx, struct kvm_client *kc,
		uint32_t dev_id, struct kvm_client_vm *vm)
{
	struct kvm_client_dev *dev;
	int fd = -1, r;

	r = ioasid_device_get_fd(ctx, dev_id, &fd);
	if (r == -EPERM) {
		int sim = bound_simulated(ctx, dev_id);

		if (sim < 0)
			return sim;
		r = sim ? -EOPNOTSUPP : -EPERM;
	}
	if (r == -EOPNOTSUPP || r == -EINVAL)
		return set_vm_call(ctx, dev_id, vm->vm_id, 0);
	if (r < 0)
		return r;
	dev = calloc(1, sizeof(*dev));
	r = dev ? kvm_add(vm, dev_id, fd) : api_fail(-ENOMEM, "out of memory");
	if (r == 0) {
		r = set_vm_call(ctx, dev_id, vm->vm_id,
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
		.next = kc->devs, .dev_id = dev_id, .vm = vm, .vfio_fd = fd,
	};
	kc->devs = dev;
	return 0;
}

static int set_vm_locked(struct ioasid_ctx *ctx, struct kvm_client *kc,
			 uint32_t dev_id, uint32_t vm_id)
{
	struct kvm_client_dev *dev = find_dev(kc, dev_id);
	struct kvm_client_vm *vm = vm_id ? find_vm(kc, vm_id) : NULL;

	if (!vm)
		return leave(ctx, kc, dev, dev_id, vm_id);
	if (dev && dev->vm == vm)	/* already there: the daemon agrees */
		return set_vm_call(ctx, dev_id, vm_id,
				   IOASID_SET_VM_CLIENT_REGISTERED);
	if (dev)
		return move(ctx, dev, vm);
	return join(ctx, kc, dev_id, vm);
}

int kvm_client_set_vm(struct ioasid_ctx *ctx, uint32_t dev_id,
		      uint32_t vm_id)
{
	struct kvm_client *kc = &ctx->kvm;
	int r;

	pthread_mutex_lock(&kc->lock);
	r = set_vm_locked(ctx, kc, dev_id, vm_id);
	pthread_mutex_unlock(&kc->lock);
	return r;
}

/*
 * The daemon takes the device out of its VM as it unbinds it (and fails
 * only when the device is not the session's any more: unplugged, or the
 * connection gone); its registration here goes either way.
 */
int kvm_client_device_unbind(struct ioasid_ctx *ctx, uint32_t dev_id)
{
	struct kvm_client *kc = &ctx->kvm;
	struct kvm_client_dev *dev;
	struct ioasid_op op;
	int r;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_UNBIND);
	op.dev_id = dev_id;
	pthread_mutex_lock(&kc->lock);
	r = api_call(ctx, &op);
	dev = find_dev(kc, dev_id);
	/* EBUSY: still bound, attached and in its VM; anything else: gone */
	if (dev && r != -EBUSY)
		unregister(ctx, kc, dev);
	pthread_mutex_unlock(&kc->lock);
	return r;
}
