/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for IOMMUs, devices, domains, VMs, faults, events
 * and status.  The rules live in core/device.c, core/vm.c and
 * core/coherency.c; this file only packs arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "util/macros.h"

/*
 * ioasid_iommu_list - the IOMMU units the backend knows
 *
 * Errors: -EINVAL, -EMSGSIZE (*@nr set to the number needed).
 */
IOASID_EXPORT int ioasid_iommu_list(struct ioasid_ctx *ctx,
				    struct ioasid_iommu_info *iommus,
				    uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOMMU_LIST);
	return api_call_array(ctx, &op, iommus, sizeof(*iommus), nr);
}

/*
 * ioasid_device_list - every device the backend offers
 *
 * Binding, attachment and coherency fields are filled only for devices
 * bound by this client.  Errors: -EINVAL, -EMSGSIZE.
 */
IOASID_EXPORT int ioasid_device_list(struct ioasid_ctx *ctx,
				     struct ioasid_device_info *devices,
				     uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_LIST);
	return api_call_array(ctx, &op, devices, sizeof(*devices), nr);
}

/*
 * ioasid_device_get_info - one device by name ("0000:00:03.0")
 *
 * Errors: -EINVAL (NULL or too long name), -ENOENT (no such device).
 */
IOASID_EXPORT int ioasid_device_get_info(struct ioasid_ctx *ctx,
					 const char *name,
					 struct ioasid_device_info *info)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_INFO);
	if (api_set_name(&op, name) < 0)
		return api_reject(-EINVAL, __func__, "%s",
				  api_name_problem(name));
	return api_call_struct(ctx, &op, info, sizeof(*info));
}

/*
 * ioasid_device_bind - take a device for this client
 * @vfio_fd: the device's VFIO cdev fd (real devices; the library keeps a
 *           dup), or -1 to let the backend open it / for simulated devices
 * @dev_id: out: the device's id
 *
 * Errors: -EINVAL, -ENOENT (no such device), -EPERM (policy does not
 * allow it), -EBUSY (already bound), -ENODEV (no IOMMU for it), -EBADF,
 * and the backend's errors (e.g. -EACCES opening the VFIO device).
 */
IOASID_EXPORT int ioasid_device_bind(struct ioasid_ctx *ctx, const char *name,
				     int vfio_fd, uint32_t *dev_id)
{
	struct ioasid_op op;
	int r;

	if (!dev_id)
		return api_reject(-EINVAL, __func__, "dev_id is NULL");
	ioasid_op_init(&op, IOASID_CMD_DEVICE_BIND);
	if (api_set_name(&op, name) < 0)
		return api_reject(-EINVAL, __func__, "%s",
				  api_name_problem(name));
	op.fd = vfio_fd;
	r = api_call(ctx, &op);
	if (r == 0)
		*dev_id = op.out_id;
	return r;
}

/*
 * ioasid_device_unbind - give a device back (detaching it first)
 *
 * It leaves its VM too; through ioasidd the library then removes its VFIO
 * file from the VM's kvm-vfio device itself.
 * Errors: -ENOENT (not bound by this client), -EBUSY (attached, and the
 * backend cannot detach it: as ioasid_device_detach(); still bound).
 */
IOASID_EXPORT int ioasid_device_unbind(struct ioasid_ctx *ctx, uint32_t dev_id)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_UNBIND);
	op.dev_id = dev_id;
	return api_call(ctx, &op);
}

/*
 * ioasid_device_get_fd - the device's VFIO file, for the VMM's own use
 * @fd: out: a new descriptor (close-on-exec) the caller owns: the VFIO
 *      cdev with the iommufd backend, the VFIO group with vfio-type1 -
 *      the file the backend registers with kvm-vfio
 *
 * For BAR mmap, config space and interrupts, as libvirt hands QEMU its
 * devices' fds.  Through ioasidd the daemon passes it (SCM_RIGHTS).
 * Errors: -EINVAL (NULL @fd), -ENOENT (not bound by this client),
 * -EOPNOTSUPP (a simulated device: it has no VFIO file), -EMFILE.
 */
IOASID_EXPORT int ioasid_device_get_fd(struct ioasid_ctx *ctx, uint32_t dev_id,
				       int *fd)
{
	struct ioasid_op op;
	int r;

	if (!fd)
		return api_reject(-EINVAL, __func__, "fd is NULL");
	ioasid_op_init(&op, IOASID_CMD_DEVICE_GET_FD);
	op.dev_id = dev_id;
	r = api_call(ctx, &op);
	if (r == 0)
		*fd = op.out_fd;
	else
		close_fd(op.out_fd);
	return r;
}

static int attach_op(struct ioasid_ctx *ctx, uint32_t cmd, uint32_t dev_id,
		     uint32_t ioas_id, uint32_t flags)
{
	struct ioasid_op op;

	ioasid_op_init(&op, cmd);
	op.dev_id = dev_id;
	op.ioas_id = ioas_id;
	op.flags = flags;
	return api_call(ctx, &op);
}

/*
 * ioasid_device_attach - attach a bound device to an IOAS
 * @flags: IOASID_ATTACH_NO_SNOOP_UNUSED (a hint; honoured when trusted)
 *
 * Reuses a domain of the IOAS when the device's IOMMU accepts it and it
 * has the coherency class the IOAS's snoop mode asks for; otherwise
 * creates one.  The device's and its IOMMU's reserved regions leave the
 * IOAS's allowed ranges.
 * Errors: -ENOENT (device or IOAS), -EBUSY (already attached: use
 * replace), -EOPNOTSUPP (unknown flags; the device cannot translate and
 * the IOAS is not identity), -EINVAL (enforce mode on an IOMMU without
 * snoop control; a group-mate is attached to another IOAS), -EPERM
 * (the attach would make DMA non-coherent where policy forbids it),
 * -EADDRINUSE (mappings lie in the device's reserved regions), -ENOMEM.
 */
IOASID_EXPORT int ioasid_device_attach(struct ioasid_ctx *ctx, uint32_t dev_id,
				       uint32_t ioas_id, uint32_t flags)
{
	return attach_op(ctx, IOASID_CMD_DEVICE_ATTACH, dev_id, ioas_id, flags);
}

/*
 * ioasid_device_replace - move an attached device to another IOAS
 *
 * The device's DMA switches from the old translation to the new one with
 * no window without translation.  Errors: as ioasid_device_attach(), and
 * -EINVAL when the device is not attached.  On failure the device stays
 * where it was.
 */
IOASID_EXPORT int ioasid_device_replace(struct ioasid_ctx *ctx,
					uint32_t dev_id, uint32_t ioas_id,
					uint32_t flags)
{
	return attach_op(ctx, IOASID_CMD_DEVICE_REPLACE, dev_id, ioas_id,
			 flags);
}

/*
 * ioasid_device_detach - stop a device's DMA and leave its IOAS
 *
 * Errors: -ENOENT, -EINVAL (not attached), -EBUSY (vfio-type1: a device
 * fd of the group is open, so the kernel keeps the group in its container
 * and its DMA still reaches the IOAS; the device stays attached).
 */
IOASID_EXPORT int ioasid_device_detach(struct ioasid_ctx *ctx, uint32_t dev_id)
{
	return attach_op(ctx, IOASID_CMD_DEVICE_DETACH, dev_id, 0, 0);
}

/*
 * ioasid_device_dma - make a simulated device do DMA
 * @flags: IOASID_DMA_WRITE (device writes @buf to memory; else it reads
 *         memory into @buf), IOASID_DMA_NO_SNOOP
 * @done: out: bytes moved before a fault (may be NULL)
 *
 * Errors: -ENOENT, -EINVAL (NULL buffer), -EOPNOTSUPP (unknown flags, or
 * a backend whose devices are real), -EFAULT (translation fault, bus
 * error, group not viable: a fault record is queued), -EACCES
 * (permission fault: a fault record is queued).
 */
IOASID_EXPORT int ioasid_device_dma(struct ioasid_ctx *ctx, uint32_t dev_id,
				    uint64_t iova, void *buf, uint64_t length,
				    uint32_t flags, uint64_t *done)
{
	struct ioasid_op op;
	int r;

	if (!buf)
		return api_reject(-EINVAL, __func__, "buf is NULL");
	if (length > UINT32_MAX)
		return api_reject(-EINVAL, __func__, "length %llu exceeds one "
				  "transfer (%u bytes)",
				  (unsigned long long)length, UINT32_MAX);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_DMA);
	op.dev_id = dev_id;
	op.iova = iova;
	op.length = length;
	op.flags = flags;
	if (flags & IOASID_DMA_WRITE) {
		op.in = buf;
		op.in_len = (uint32_t)length;
	} else {
		op.out = buf;
		op.out_cap = (uint32_t)length;
	}
	r = api_call(ctx, &op);
	if (done)
		*done = op.out_bytes;
	return r;
}

/*
 * ioasid_domain_list - the hardware domains an IOAS is mirrored into
 *
 * Errors: -EINVAL, -ENOENT, -EMSGSIZE.
 */
IOASID_EXPORT int ioasid_domain_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
				     struct ioasid_domain_info *domains,
				     uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DOMAIN_LIST);
	op.ioas_id = ioas_id;
	return api_call_array(ctx, &op, domains, sizeof(*domains), nr);
}

/*
 * ioasid_dirty_read - which pages devices wrote since the last read
 * @bitmap: length / 4 KiB bits, zeroed and then set for dirty pages
 * @flags: IOASID_DIRTY_NO_CLEAR keeps the dirty state
 *
 * Errors: -EINVAL (NULL, empty or unaligned range), -EOVERFLOW, -ENOENT,
 * -EOPNOTSUPP (unknown flags; backend without dirty tracking).
 */
IOASID_EXPORT int ioasid_dirty_read(struct ioasid_ctx *ctx, uint32_t ioas_id,
				    uint64_t iova, uint64_t length,
				    uint64_t *bitmap, uint32_t flags)
{
	struct ioasid_op op;
	uint64_t words = (length / 4096 + 63) / 64;

	if (!bitmap)
		return api_reject(-EINVAL, __func__, "bitmap is NULL");
	if (words > UINT32_MAX / 8)
		return api_reject(-EINVAL, __func__, "length %llu needs a "
				  "bitmap larger than 4 GiB",
				  (unsigned long long)length);
	ioasid_op_init(&op, IOASID_CMD_DIRTY_READ);
	op.ioas_id = ioas_id;
	op.iova = iova;
	op.length = length;
	op.flags = flags;
	op.out = bitmap;
	op.out_cap = (uint32_t)(words * 8);
	return api_call(ctx, &op);
}

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

/*
 * ioasid_fault_read - take queued DMA fault records of this client's
 * devices, oldest first; *@nr in: room, out: records taken (0: none)
 *
 * Errors: -EINVAL.
 */
IOASID_EXPORT int ioasid_fault_read(struct ioasid_ctx *ctx,
				    struct ioasid_fault *faults, uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FAULT_READ);
	return api_call_array(ctx, &op, faults, sizeof(*faults), nr);
}

/*
 * ioasid_event_subscribe - receive events of these groups
 *
 * Errors: -EINVAL (NULL ctx), -EOPNOTSUPP (unknown groups).
 */
IOASID_EXPORT int ioasid_event_subscribe(struct ioasid_ctx *ctx,
					 uint32_t groups)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_SUBSCRIBE);
	op.flags = groups;
	return api_call(ctx, &op);
}

/*
 * ioasid_event_get_fd - a descriptor for poll(): readable while events
 * are queued.  Owned by the context.  Returns it, or -EINVAL.
 */
IOASID_EXPORT int ioasid_event_get_fd(struct ioasid_ctx *ctx)
{
	if (!ctx)
		return api_reject(-EINVAL, __func__, "ctx is NULL");
	return ctx->transport->event_fd(ctx->transport_priv);
}

/*
 * ioasid_event_read - take the oldest queued event
 *
 * Errors: -EINVAL, -EAGAIN (none queued), -ECONNRESET (daemon gone).
 */
IOASID_EXPORT int ioasid_event_read(struct ioasid_ctx *ctx,
				    struct ioasid_event *event)
{
	if (!ctx)
		return api_reject(-EINVAL, __func__, "ctx is NULL");
	if (!event)
		return api_reject(-EINVAL, __func__, "event is NULL");
	return ctx->transport->event_read(ctx->transport_priv, event);
}

/*
 * ioasid_get_status - backend, topology and object counts
 *
 * Errors: -EINVAL.
 */
IOASID_EXPORT int ioasid_get_status(struct ioasid_ctx *ctx,
				    struct ioasid_status *status)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_STATUS);
	return api_call_struct(ctx, &op, status, sizeof(*status));
}

/*
 * ioasid_set_observer - see every client's objects, read-only
 * @on: 1 to see all address spaces, mappings, domains, devices and VMs of
 *      every client of ioasidd (lists, info, lookups); 0 to see only ours
 *
 * Observing changes nothing anyone can do: mutations still need
 * ownership.  Embedded contexts have one client, so it changes nothing.
 * Errors: -EINVAL, -EOPNOTSUPP (on not 0 or 1), -EPERM (ioasidd's policy
 * does not let this user observe).
 */
IOASID_EXPORT int ioasid_set_observer(struct ioasid_ctx *ctx, int on)
{
	struct ioasid_op op;

	if (on != 0 && on != 1)
		return api_reject(-EOPNOTSUPP, __func__, "on is %d, not 0 "
				  "or 1", on);
	ioasid_op_init(&op, IOASID_CMD_OBSERVE);
	op.flags = (uint32_t)on;
	return api_call(ctx, &op);
}

/*
 * ioasid_sim_hotplug - unplug (@present 0) or plug back (1) a simulated
 * device, as a real hot-unplug would: a bound device is detached and
 * unbound, and IOASID_EVENT_DEVICE_REMOVED / _ADDED events go to its owner
 * and to every client subscribed to device events.
 *
 * Errors: -EINVAL (NULL name), -ENOENT (no such device), -EOPNOTSUPP
 * (not the simulated backend, or @present not 0/1), -EPERM (another
 * client's device, without the right to observe).
 */
IOASID_EXPORT int ioasid_sim_hotplug(struct ioasid_ctx *ctx, const char *name,
				     int present)
{
	struct ioasid_op op;

	if (present != 0 && present != 1)
		return api_reject(-EOPNOTSUPP, __func__, "present is %d, not "
				  "0 or 1", present);
	ioasid_op_init(&op, IOASID_CMD_SIM_HOTPLUG);
	if (api_set_name(&op, name) < 0)
		return api_reject(-EINVAL, __func__, "%s",
				  api_name_problem(name));
	op.flags = (uint32_t)present;
	return api_call(ctx, &op);
}
