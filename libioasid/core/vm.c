/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMs: a KVM VM fd tied to a session, its kvm-vfio device, and the VFIO
 * files registered with it.  For real VFIO devices the kernel registers
 * non-coherent DMA itself once the device fd is added to kvm-vfio; for
 * simulated devices the core keeps the same state (coherency.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/coherency.h"
#include "core/device.h"
#include "core/vm.h"
#include "kvm/kvm.h"
#include "util/log.h"
#include "util/macros.h"

static struct vm *find_vm(struct session *s, uint32_t id)
{
	struct vm *vm;

	HASH_FIND(hh, s->core->vms, &id, sizeof(id), vm);
	return vm && vm->owner == s ? vm : NULL;
}

/* An observer may read any session's VM. */
static struct vm *find_vm_to_read(struct session *s, uint32_t id)
{
	struct vm *vm;

	if (!s->observer)
		return find_vm(s, id);
	HASH_FIND(hh, s->core->vms, &id, sizeof(id), vm);
	return vm;
}

/* The VFIO file KVM should know about: the caller's, or the backend's. */
static int kvm_file(struct core *core, const struct device *dev)
{
	if (dev->vfio_fd >= 0)
		return dev->vfio_fd;
	return dev->be ? core_ops(core)->device_vfio_fd(dev->be) : -1;
}

static int dup_fd(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static int check_bind(struct session *s, struct ioasid_op *op)
{
	if (s->nr_vms >= s->limits.max_vms)
		return op_fail(op, ENOSPC, "quota of %u VMs reached",
			       s->limits.max_vms);
	if (!kvm_is_vm_fd(op->fd))
		return op_fail(op, EINVAL, "fd %d is not a KVM VM", op->fd);
	if (op->fd2 >= 0 && !kvm_is_vfio_device_fd(op->fd2))
		return op_fail(op, EINVAL, "fd %d is not a kvm-vfio device",
			       op->fd2);
	return 0;
}

/* A VM with an id, in the table but not yet owned: no fds. */
static int vm_new(struct core *core, struct vm **out, struct ioasid_op *op)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return op_fail(op, ENOMEM, "out of memory");
	vm->id = core_alloc_id(core);
	vm->kvm_fd = vm->kvm_vfio_fd = -1;
	if (hash_add(hh, core->vms, id, sizeof(vm->id), vm) < 0) {
		free(vm);
		return op_fail(op, ENOMEM, "out of memory");
	}
	*out = vm;
	return 0;
}

/* Undo vm_new() and whatever fds the VM got. */
static void vm_drop(struct core *core, struct vm *vm)
{
	HASH_DELETE(hh, core->vms, vm);
	close_fd(vm->kvm_fd);
	close_fd(vm->kvm_vfio_fd);
	free(vm);
}

/* The VM's kvm-vfio device, made here: KVM allows one per VM. */
static int create_kvm_vfio(struct vm *vm, struct ioasid_op *op)
{
	int r = kvm_vfio_create(vm->kvm_fd, &vm->kvm_vfio_fd);

	/* KVM says EBUSY: it allows one kvm-vfio device per VM */
	if (r == -EBUSY || r == -EEXIST)
		return op_fail(op, EEXIST, "the VM already has its kvm-vfio "
			       "device (KVM allows one): pass its fd");
	if (r == -EIO)		/* KVM serves only the VM's process */
		return op_fail(op, EIO, "only the VM's own process can create "
			       "its kvm-vfio device: create it "
			       "(KVM_CREATE_DEVICE) and pass its fd");
	if (r < 0)
		return op_fail(op, -r, "cannot create the VM's kvm-vfio "
			       "device: %s", strerror(-r));
	vm->flags |= IOASID_VM_KVM_VFIO_CREATED;
	return 0;
}

/* Our own copies of the VM fd and of its kvm-vfio device (or a new one). */
static int take_fds(struct vm *vm, struct ioasid_op *op)
{
	vm->kvm_fd = dup_fd(op->fd);
	if (vm->kvm_fd < 0)
		return op_fail(op, errno, "cannot keep the VM fd: %s",
			       strerror(errno));
	if (op->flags & ~(uint32_t)IOASID_VM_KVM_VFIO_CREATED)
		return op_fail(op, EOPNOTSUPP, "unknown VM bind flags 0x%x",
			       op->flags);
	if (op->fd2 < 0)
		return create_kvm_vfio(vm, op);
	vm->kvm_vfio_fd = dup_fd(op->fd2);
	if (vm->kvm_vfio_fd < 0)
		return op_fail(op, errno, "cannot keep the kvm-vfio fd: %s",
			       strerror(errno));
	/* the library made it on the caller's side (through ioasidd) */
	vm->flags |= op->flags & IOASID_VM_KVM_VFIO_CREATED;
	return 0;
}

int vm_bind(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct vm *vm = NULL;
	int r;

	r = check_bind(s, op);
	if (r == 0)
		r = vm_new(s->core, &vm, op);
	if (r < 0)
		return r;
	/* in the table before kvm_vfio_create(), which cannot be undone */
	r = take_fds(vm, op);
	if (r < 0) {
		vm_drop(s->core, vm);
		return r;
	}
	vm->owner = s;
	s->nr_vms++;
	op->out_id = vm->id;
	return 0;
}

/*
 * Out of its VM: FILE_DEL from kvm-vfio, unless the client registered the
 * device itself (ioasidd), which then removes it itself too.
 */
void vm_remove_device(struct core *core, struct device *dev)
{
	struct vm *vm = dev->vm;
	int vfio_fd = kvm_file(core, dev);

	if (vfio_fd >= 0 && !dev->kvm_by_client &&
	    kvm_vfio_file_del(vm->kvm_vfio_fd, vfio_fd) < 0)
		warn(core->log, "kvm-vfio FILE_DEL of %s failed",
		     dev->inv->info.name);
	dev->kvm_by_client = false;
	dev->kvm_file = false;
	coherency_leave_vm(core, dev);
}

static void vm_free(struct core *core, struct vm *vm)
{
	for (uint32_t i = 0; i < core->nr_devices; i++)
		if (core->devices[i].vm == vm)
			vm_remove_device(core, &core->devices[i]);
	HASH_DELETE(hh, core->vms, vm);
	vm->owner->nr_vms--;
	close(vm->kvm_vfio_fd);
	close(vm->kvm_fd);
	free(vm);
}

int vm_unbind(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct vm *vm = find_vm(s, op->vm_id);

	if (!vm)
		return op_fail(op, ENOENT, "no VM %u", op->vm_id);
	vm_free(s->core, vm);
	return 0;
}

void vm_release_session(struct core *core, struct session *s)
{
	struct vm *vm, *tmp;

	HASH_ITER(hh, core->vms, vm, tmp)
		if (vm->owner == s)
			vm_free(core, vm);
}

int vm_info(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct vm *vm = find_vm_to_read(s, op->vm_id);
	struct ioasid_vm_info info;
	uint32_t nr_kvm_files = 0;

	if (!vm)
		return op_fail(op, ENOENT, "no VM %u", op->vm_id);
	for (uint32_t i = 0; i < s->core->nr_devices; i++)
		if (s->core->devices[i].vm == vm &&
		    s->core->devices[i].kvm_file)
			nr_kvm_files++;
	info = (struct ioasid_vm_info){
		.size = sizeof(info),
		.flags = vm->flags,
		.vm_id = vm->id,
		.nr_devices = vm->nr_devices,
		.nr_noncoherent = vm->nr_noncoherent,
		.nr_kvm_files = nr_kvm_files,
		.registrations = vm->registrations,
		.owner_pid = vm->owner->pid,
		.owner_uid = vm->owner->uid,
	};
	return op_out_struct(op, &info, sizeof(info));
}

int vm_list(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	uint32_t *ids = op->out, cap = op->out_cap / sizeof(*ids), n = 0;
	struct vm *vm, *tmp;

	HASH_ITER(hh, s->core->vms, vm, tmp) {
		if (vm->owner != s && !s->observer)
			continue;
		if (n < cap)
			ids[n] = vm->id;
		n++;
	}
	op->out_len = n * (uint32_t)sizeof(*ids);
	if (n > cap)
		return op_fail(op, EMSGSIZE, "%u VMs do not fit in %u", n, cap);
	return 0;
}

int vm_set_policy(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct vm *vm = find_vm(s, op->vm_id);

	if (!vm)
		return op_fail(op, ENOENT, "no VM %u", op->vm_id);
	if (op->flags & ~(uint32_t)IOASID_VM_FORBID_NONCOHERENT)
		return op_fail(op, EOPNOTSUPP, "unknown VM policy flags 0x%x",
			       op->flags);
	if ((op->flags & IOASID_VM_FORBID_NONCOHERENT) && vm->nr_noncoherent)
		return op_fail(op, EBUSY, "VM %u already has %u non-coherent "
			       "device(s)", vm->id, vm->nr_noncoherent);
	vm->flags = (vm->flags & ~(uint32_t)IOASID_VM_FORBID_NONCOHERENT) |
		    op->flags;
	return 0;
}

/* What the client may claim it did with kvm-vfio (ioasidd). */
static int check_client_registered(struct session *s, struct device *dev,
				   struct vm *vm, struct ioasid_op *op)
{
	if (!(op->flags & IOASID_SET_VM_CLIENT_REGISTERED))
		return 0;
	if (!vm)
		return op_fail(op, EINVAL, "device %s: a client registration "
			       "with kvm-vfio needs a VM", dev->inv->info.name);
	if (s->core->be_ops->device_vfio_fd(dev->be) < 0)
		return op_fail(op, EINVAL, "device %s has no VFIO file: there "
			       "is nothing the client could have added to VM "
			       "%u's kvm-vfio device", dev->inv->info.name,
			       vm->id);
	return 0;
}

static int check_set_vm(struct session *s, struct device *dev, struct vm *vm,
			struct ioasid_op *op)
{
	const uint32_t known = IOASID_SET_VM_CLIENT_REGISTERED;

	if (op->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "unknown set_vm flags 0x%x",
			       op->flags & ~known);
	if (!dev)
		return device_not_bound(op, op->dev_id);
	if (op->vm_id && !vm)
		return op_fail(op, ENOENT, "no VM %u", op->vm_id);
	return check_client_registered(s, dev, vm, op);
}

/* QEMU's order: the VFIO fd joins kvm-vfio, then the kernel judges. */
static int kvm_add(struct core *core, struct device *dev, struct vm *vm,
		   struct ioasid_op *op)
{
	int fd = kvm_file(core, dev), r;

	if (fd < 0 || (op->flags & IOASID_SET_VM_CLIENT_REGISTERED))
		return 0;
	r = kvm_vfio_file_add(vm->kvm_vfio_fd, fd);
	if (r == -EIO)		/* KVM serves only the VM's own process */
		return op_fail(op, EIO, "KVM refused device %s: only the "
			       "VMM's process may add it to VM %u's kvm-vfio "
			       "device (libioasid does so through ioasidd)",
			       dev->inv->info.name, vm->id);
	if (r < 0)
		return op_fail(op, -r, "KVM refused device %s: %s",
			       dev->inv->info.name, strerror(-r));
	return 0;
}

int vm_set_device(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct vm *vm = op->vm_id ? find_vm(s, op->vm_id) : NULL;
	struct device *dev = device_find_bound(s, op->dev_id);
	int r;

	r = check_set_vm(s, dev, vm, op);
	if (r < 0)
		return r;
	if (dev->vm == vm)
		return 0;
	if (vm && dev->noncoherent &&
	    (vm->flags & IOASID_VM_FORBID_NONCOHERENT))
		return op_fail(op, EPERM, "device %s does non-coherent DMA and "
			       "VM %u forbids anything that needs WBINVD",
			       dev->inv->info.name, vm->id);
	if (vm) {
		r = kvm_add(s->core, dev, vm, op);
		if (r < 0)
			return r;
	}
	if (dev->vm)
		vm_remove_device(s->core, dev);
	if (vm) {
		coherency_join_vm(s->core, dev, vm);
		dev->kvm_by_client = op->flags &
				     IOASID_SET_VM_CLIENT_REGISTERED;
		/* kvm_add() did FILE_ADD, or the client did (it was checked) */
		dev->kvm_file = dev->kvm_by_client ||
				kvm_file(s->core, dev) >= 0;
	}
	return 0;
}
