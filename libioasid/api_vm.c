/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for KVM VMs: the "KVM" section of libioasid.h.
 * They pack the same ops embedded and through ioasidd (where the remote
 * transport does KVM's side in this process: transport/kvm_client.c);
 * the rules live in the core (uapi/ioasid/ops.def names each command's
 * handler).
 */
#include <errno.h>

#include "ctx.h"
#include "util/macros.h"

/*
 * ioasid_vm_bind - tie a KVM VM to this context
 * @kvm_vm_fd: from KVM_CREATE_VM (the library keeps a dup)
 * @kvm_vfio_fd: the VM's kvm-vfio device, or -1 to create it
 *
 * KVM serves a VM only in the process that created it, so through ioasidd
 * the kvm-vfio device is created here, in the VMM, and the library keeps
 * a dup of it for ioasid_device_set_vm().
 * Errors: -EINVAL (not a KVM VM / kvm-vfio fd), -EEXIST (the VM already
 * has a kvm-vfio device and @kvm_vfio_fd was -1), -ENOSPC (VM quota),
 * -ENOMEM.
 */
IOASID_EXPORT int ioasid_vm_bind(struct ioasid_ctx *ctx, int kvm_vm_fd,
				 int kvm_vfio_fd, uint32_t *vm_id)
{
	struct ioasid_op op;
	int r;

	if (!vm_id)
		return api_reject(-EINVAL, __func__, "vm_id is NULL");
	ioasid_op_init(&op, IOASID_CMD_VM_BIND);
	op.fd = kvm_vm_fd;
	op.fd2 = kvm_vfio_fd;
	r = api_call(ctx, &op);
	if (r == 0)
		*vm_id = op.out_id;
	return r;
}

/* ioasid_vm_unbind - forget a VM (its devices leave it).  -ENOENT. */
IOASID_EXPORT int ioasid_vm_unbind(struct ioasid_ctx *ctx, uint32_t vm_id)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_VM_UNBIND);
	op.vm_id = vm_id;
	return api_call(ctx, &op);
}

/*
 * ioasid_vm_get_info - a VM's coherency state: WBINVD needed or not, how
 * many devices and how many of them non-coherent.
 *
 * Errors: -EINVAL, -ENOENT.
 */
IOASID_EXPORT int ioasid_vm_get_info(struct ioasid_ctx *ctx, uint32_t vm_id,
				     struct ioasid_vm_info *info)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_VM_INFO);
	op.vm_id = vm_id;
	return api_call_struct(ctx, &op, info, sizeof(*info));
}

/* ioasid_vm_list - ids of this client's VMs.  -EINVAL, -EMSGSIZE. */
IOASID_EXPORT int ioasid_vm_list(struct ioasid_ctx *ctx, uint32_t *ids,
				 uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_VM_LIST);
	return api_call_array(ctx, &op, ids, sizeof(*ids), nr);
}

/*
 * ioasid_vm_set_policy - forbid (IOASID_VM_FORBID_NONCOHERENT) or allow
 * (0) anything that would make the VM need WBINVD
 *
 * Errors: -ENOENT, -EOPNOTSUPP (unknown flags), -EBUSY (forbidding while
 * the VM already has non-coherent devices).
 */
IOASID_EXPORT int ioasid_vm_set_policy(struct ioasid_ctx *ctx, uint32_t vm_id,
				       uint32_t flags)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_VM_SET_POLICY);
	op.vm_id = vm_id;
	op.flags = flags;
	return api_call(ctx, &op);
}

/*
 * ioasid_device_set_vm - put a bound device in a VM (@vm_id 0: none)
 *
 * Real VFIO devices are added to the VM's kvm-vfio device (and removed
 * from the previous VM's): through ioasidd by the library, in this
 * process, since KVM serves the VM nowhere else.  Errors: -ENOENT
 * (device or VM), -EPERM (the device is non-coherent and the VM forbids
 * it), and KVM's errors.
 */
IOASID_EXPORT int ioasid_device_set_vm(struct ioasid_ctx *ctx,
				       uint32_t dev_id, uint32_t vm_id)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_SET_VM);
	op.dev_id = dev_id;
	op.vm_id = vm_id;
	return api_call(ctx, &op);
}
