/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public entry points for IOMMUs, devices and domains: the "IOMMUs,
 * devices, domains" section of libioasid.h.  They only pack arguments;
 * the rules live in the core (uapi/ioasid/ops.def names each command's
 * handler).
 */
#include <errno.h>
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

static int pasid_op(struct ioasid_ctx *ctx, uint32_t cmd, uint32_t dev_id,
		    uint32_t pasid, uint32_t ioas_id, uint32_t flags)
{
	struct ioasid_op op;

	ioasid_op_init(&op, cmd);
	op.dev_id = dev_id;
	op.mode = pasid;
	op.ioas_id = ioas_id;
	op.flags = flags;
	return api_call(ctx, &op);
}

/*
 * ioasid_device_pasid_attach - attach a PASID of a bound device to an IOAS
 * @pasid: 1 .. 2^pasid_bits - 1 (0 is the device's requests without a
 *         PASID: ioasid_device_attach)
 * @flags: 0
 *
 * DMA the device tags with @pasid then translates through a domain of
 * the IOAS: an existing one of the class the IOAS's snoop mode asks for
 * that the backend accepts for a PASID, else a new one.
 * Errors: -ENOENT (device or IOAS), -EOPNOTSUPP (unknown flags; the
 * backend cannot attach PASIDs; the device has no PASID capability or
 * its IOMMU no PASID support; a device that cannot translate and an IOAS
 * that is not identity), -EINVAL (PASID 0 or beyond the device's width;
 * enforce mode on an IOMMU without snoop control), -EBUSY (the PASID is
 * attached: use replace), -EPERM (a device that may do no-snoop DMA and
 * a domain that would not enforce snooping), -ENOSPC (64 PASIDs of the
 * device attached already), -ENOMEM.
 */
IOASID_EXPORT int ioasid_device_pasid_attach(struct ioasid_ctx *ctx,
					     uint32_t dev_id, uint32_t pasid,
					     uint32_t ioas_id, uint32_t flags)
{
	return pasid_op(ctx, IOASID_CMD_DEVICE_PASID_ATTACH, dev_id, pasid,
			ioas_id, flags);
}

/*
 * ioasid_device_pasid_replace - move an attached PASID to another IOAS
 *
 * Without a window in which the PASID's DMA is not translated.  Errors:
 * as ioasid_device_pasid_attach(), but -EINVAL when the PASID is not
 * attached (and never -EBUSY).  On failure the PASID stays where it was.
 */
IOASID_EXPORT int ioasid_device_pasid_replace(struct ioasid_ctx *ctx,
					      uint32_t dev_id, uint32_t pasid,
					      uint32_t ioas_id, uint32_t flags)
{
	return pasid_op(ctx, IOASID_CMD_DEVICE_PASID_REPLACE, dev_id, pasid,
			ioas_id, flags);
}

/*
 * ioasid_device_pasid_detach - block a PASID's DMA and leave its IOAS
 *
 * Errors: -ENOENT (device), -EOPNOTSUPP (as attach), -EINVAL (PASID 0,
 * beyond the width, or not attached), or the backend's error with the
 * PASID still attached.
 */
IOASID_EXPORT int ioasid_device_pasid_detach(struct ioasid_ctx *ctx,
					     uint32_t dev_id, uint32_t pasid)
{
	return pasid_op(ctx, IOASID_CMD_DEVICE_PASID_DETACH, dev_id, pasid, 0,
			0);
}

/*
 * ioasid_device_pasid_list - the PASIDs of a bound device and where they
 * are attached
 *
 * Errors: -EINVAL (NULL @nr, or NULL array with *@nr not 0), -ENOENT,
 * -EMSGSIZE (*@nr set to the number needed).
 */
IOASID_EXPORT int ioasid_device_pasid_list(struct ioasid_ctx *ctx,
					   uint32_t dev_id,
					   struct ioasid_pasid_info *pasids,
					   uint32_t *nr)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_PASID_LIST);
	op.dev_id = dev_id;
	return api_call_array(ctx, &op, pasids, sizeof(*pasids), nr);
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
