/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices: the inventory as a session sees it, bind and unbind, the
 * device's VFIO file, and hotplug.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/pasid.h"
#include "core/base.h"
#include "core/device.h"
#include "core/domain.h"
#include "core/nested.h"
#include "core/viommu.h"
#include "core/fault.h"
#include "core/ioas.h"
#include "core/vm.h"
#include "util/log.h"
#include "util/macros.h"

int devices_init(struct core *core)
{
	core->nr_devices = core->inv.nr_devices;
	core->devices = calloc(core->nr_devices ? core->nr_devices : 1,
			       sizeof(*core->devices));
	if (!core->devices)
		return -ENOMEM;
	for (uint32_t i = 0; i < core->nr_devices; i++) {
		struct device *dev = &core->devices[i];

		dev->inv = &core->inv.devices[i];
		dev->unit = inventory_find_iommu(&core->inv,
						 dev->inv->info.iommu);
		dev->vfio_fd = -1;
		pthread_rwlock_init(&dev->lock, NULL);
	}
	return 0;
}

void devices_release(struct core *core)
{
	for (uint32_t i = 0; i < core->nr_devices; i++)
		pthread_rwlock_destroy(&core->devices[i].lock);
	free(core->devices);
	core->devices = NULL;
}

static struct device *find_by_name(struct core *core, const char *name)
{
	for (uint32_t i = 0; i < core->nr_devices; i++)
		if (!strcmp(core->devices[i].inv->info.name, name))
			return &core->devices[i];
	return NULL;
}

/* ---- listing ----------------------------------------------------------- */

static uint32_t platform_flags(const struct device *dev)
{
	uint32_t f = 0;

	if (!dev->ioas)
		return 0;
	if (!(dev->ioas->flags & IOASID_IOAS_IDENTITY))
		f |= IOASID_PLATFORM_IOVA | IOASID_PLATFORM_ACCESS_PLATFORM;
	if (dev->ioas->flags & IOASID_IOAS_RESTRICTED)
		f |= IOASID_PLATFORM_RESTRICTED |
		     IOASID_PLATFORM_ACCESS_PLATFORM;
	return f;
}

/* What @s may see of @dev: another session's bindings stay hidden. */
static void fill_info(struct session *s, const struct device *dev,
		      struct ioasid_device_info *info)
{
	*info = dev->inv->info;
	info->size = sizeof(*info);
	info->flags &= ~(uint32_t)(IOASID_DEVICE_BOUND |
				   IOASID_DEVICE_ATTACHED |
				   IOASID_DEVICE_NONCOHERENT |
				   IOASID_DEVICE_NO_SNOOP_HINTED |
				   IOASID_DEVICE_GROUP_VIABLE |
				   IOASID_DEVICE_KVM_FILE |
				   IOASID_DEVICE_OTHER_SESSION);
	info->dev_id = info->ioas_id = info->domain_id = info->vm_id = 0;
	info->platform = 0;
	info->nested_id = 0;
	if (dev->removed)
		info->flags |= IOASID_DEVICE_REMOVED;
	if (!dev->owner || (dev->owner != s && !s->observer))
		return;
	info->flags |= IOASID_DEVICE_BOUND;
	if (dev->owner != s)
		info->flags |= IOASID_DEVICE_OTHER_SESSION;
	info->dev_id = dev->dev_id;
	if (dev->ioas) {
		info->flags |= IOASID_DEVICE_ATTACHED;
		info->ioas_id = dev->ioas->id;
		info->domain_id = dev->domain->id;
		info->nested_id = dev->nested ? dev->nested->id : 0;
	}
	if (dev->noncoherent)
		info->flags |= IOASID_DEVICE_NONCOHERENT;
	if (dev->hinted)
		info->flags |= IOASID_DEVICE_NO_SNOOP_HINTED;
	if (dev->group_viable)
		info->flags |= IOASID_DEVICE_GROUP_VIABLE;
	if (dev->kvm_file)
		info->flags |= IOASID_DEVICE_KVM_FILE;
	info->vm_id = dev->vm ? dev->vm->id : 0;
	info->nr_pasids = dev->owner ? dev->nr_pasids : 0;
	info->platform = platform_flags(dev);
}

int device_list(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct ioasid_device_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out);
	struct core *core = s->core;

	for (uint32_t i = 0; i < core->nr_devices && i < cap; i++)
		fill_info(s, &core->devices[i], &out[i]);
	return op_out_array(op, core->nr_devices, sizeof(*out));
}

int device_info(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct device *dev = find_by_name(s->core, op->name);
	struct ioasid_device_info info;

	if (!dev)
		return op_fail(op, ENOENT, "no device %s", op->name);
	fill_info(s, dev, &info);
	return op_out_struct(op, &info, sizeof(info));
}

int device_iommu_list(struct session *s, struct ioas *unused,
		      struct ioasid_op *op)
{
	struct ioasid_iommu_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out);
	struct inventory *inv = &s->core->inv;

	for (uint32_t i = 0; i < inv->nr_iommus && i < cap; i++) {
		out[i] = inv->iommus[i].info;
		out[i].size = sizeof(*out);
		out[i].nr_devices = 0;
		for (uint32_t d = 0; d < inv->nr_devices; d++)
			if (!strcmp(inv->devices[d].info.iommu,
				    out[i].name))
				out[i].nr_devices++;
	}
	return op_out_array(op, inv->nr_iommus, sizeof(*out));
}

/* ---- bind ------------------------------------------------------------ */

static bool policy_allows(const struct session *s, const char *name)
{
	if (!s->limits.devices)
		return true;
	for (uint32_t i = 0; i < s->limits.nr_devices; i++)
		if (!fnmatch(s->limits.devices[i], name, 0))
			return true;
	return false;
}

/*
 * A VFIO file (a cdev /dev/vfio/devices/vfioN, a group /dev/vfio/N) is a
 * character device; the kernel refuses anything else where it wants one
 * (KVM_DEV_VFIO_FILE_ADD: EINVAL).  Every backend, the simulator too,
 * refuses the same way.
 */
static int check_vfio_file(struct ioasid_op *op)
{
	struct stat st;

	if (fstat(op->fd, &st) < 0)
		return op_fail(op, EBADF, "vfio_fd %d: %s", op->fd,
			       strerror(errno));
	if (!S_ISCHR(st.st_mode))
		return op_fail(op, EINVAL, "vfio_fd %d is not a VFIO device "
			       "file (not a character device)", op->fd);
	return 0;
}

/*
 * EBUSY, saying by whom: this session; another session of the same user,
 * or any to an observer (the administrator), by pid, name and uid; else
 * only that it is another user's (whose is the administrator's to see).
 */
static int bound_elsewhere(struct session *s, const struct device *dev,
			   struct ioasid_op *op)
{
	const struct session *o = dev->owner;

	if (o == s)
		return op_fail(op, EBUSY, "device %s is already bound by this "
			       "session (dev %u)", op->name, dev->dev_id);
	if (o->uid == s->uid || s->observer)
		return op_fail(op, EBUSY, "device %s is already bound by "
			       "session %u of pid %u (%s), uid %u", op->name,
			       o->id, o->pid, o->name, o->uid);
	return op_fail(op, EBUSY, "device %s is already bound by another "
		       "user's session", op->name);
}

/* May @s bind @dev (found by op->name)? */
static int check_bind(struct session *s, const struct device *dev,
		      struct ioasid_op *op)
{
	if (!dev)
		return op_fail(op, ENOENT, "no device %s", op->name);
	if (!policy_allows(s, op->name))
		return op_fail(op, EPERM, "policy does not allow this client "
			       "to use device %s", op->name);
	if (dev->owner)
		return bound_elsewhere(s, dev, op);
	if (dev->removed)
		return op_fail(op, ENODEV, "device %s was unplugged", op->name);
	if (!dev->unit)
		return op_fail(op, ENODEV, "device %s is not behind an IOMMU "
			       "this backend knows", op->name);
	return 0;
}

/* Our own copy of the caller's VFIO file, if it passed one: *@fd or -1. */
static int take_vfio_file(struct ioasid_op *op, int *fd)
{
	int r;

	*fd = -1;
	if (op->fd < 0)
		return 0;
	r = check_vfio_file(op);
	if (r < 0)
		return r;
	*fd = fcntl(op->fd, F_DUPFD_CLOEXEC, 3);
	if (*fd < 0)
		return op_fail(op, EBADF, "fd %d: %s", op->fd,
			       strerror(errno));
	return 0;
}

/*
 * The backend's side of the bind: the session's tenant, then the device
 * under a new id (*@id).
 */
static int open_device(struct session *s, struct device *dev, int vfio_fd,
		       uint32_t *id, struct ioasid_op *op)
{
	struct core *core = s->core;
	struct be_tenant *tenant;
	int r;

	r = core_session_tenant(s, &tenant);
	if (r < 0)
		return op_fail(op, -r, "cannot bind device %s: the %s backend "
			       "cannot open this session's own kernel context: "
			       "%s", op->name, core_ops(core)->name,
			       strerror(-r));
	*id = core_alloc_id(core);
	r = core_ops(core)->device_open(core->be, tenant, dev->inv, dev->unit,
					*id, vfio_fd, &dev->be);
	if (r < 0)
		return op_fail(op, -r, "cannot bind device %s: %s", op->name,
			       strerror(-r));
	return 0;
}

int device_bind(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct device *dev = find_by_name(s->core, op->name);
	int vfio_fd = -1, r;
	uint32_t id = 0;

	r = check_bind(s, dev, op);
	if (r == 0 && op->fd >= 0 &&
	    (dev->inv->info.flags & IOASID_DEVICE_MOCK))
		r = op_fail(op, EINVAL, "device %s is a mock device of the "
			    "kernel's iommufd selftest driver: it has no VFIO "
			    "file to pass (vfio_fd must be -1)", op->name);
	if (r == 0)
		r = take_vfio_file(op, &vfio_fd);
	if (r < 0)
		return r;
	r = open_device(s, dev, vfio_fd, &id, op);
	if (r < 0) {
		close_fd(vfio_fd);
		return r;
	}
	pthread_rwlock_wrlock(&dev->lock);
	dev->dev_id = id;
	dev->owner = s;
	dev->vfio_fd = vfio_fd;
	pthread_rwlock_unlock(&dev->lock);
	op->out_id = dev->dev_id;
	return 0;
}

/* Cannot be refused (teardown, hotplug): what the backend keeps is logged. */
static void unbind_device(struct core *core, struct device *dev)
{
	viommu_device_gone(core, dev);
	pasid_release_device(core, dev);
	if (dev->ioas && domain_detach_device(core, dev, NULL) < 0)
		err(core->log, "device %s stays attached in the kernel after "
		    "its unbind", dev->inv->info.name);
	if (dev->vm)
		vm_remove_device(core, dev);
	pthread_rwlock_wrlock(&dev->lock);
	fault_purge_device(dev->owner, dev->dev_id);
	fault_take_lost(core, dev);
	core_ops(core)->device_close(dev->be);
	dev->be = NULL;
	dev->owner = NULL;
	dev->dev_id = 0;
	dev->hinted = false;
	close_fd(dev->vfio_fd);
	pthread_rwlock_unlock(&dev->lock);
}

/*
 * What the VMM needs besides the IOMMU side: the device's VFIO file (the
 * cdev with iommufd, the group with type1) for its BARs, config space and
 * interrupts, and for kvm-vfio.  Whatever the backend registers with KVM.
 */
int device_get_fd(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);
	int fd, e;

	if (!dev)
		return device_not_bound(op, op->dev_id);
	/*
	 * a cdev bound to a shared iommufd could reach others' page tables;
	 * the policy answers first, so a client without the right learns
	 * nothing about the backend
	 */
	if (!s->limits.may_get_fds)
		return op_fail(op, EPERM, "policy does not hand VFIO files to "
			       "this client (device-fds in ioasidd.conf)");
	fd = core_ops(s->core)->device_vfio_fd(dev->be);
	if (fd < 0)
		return op_fail(op, EOPNOTSUPP, "device %s has no VFIO file to "
			       "hand out: it is simulated by the %s backend",
			       dev->inv->info.name, core_ops(s->core)->name);
	op->out_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (op->out_fd < 0) {
		e = errno;
		return op_fail(op, e, "cannot duplicate the VFIO file of "
			       "device %s: %s", dev->inv->info.name,
			       strerror(e));
	}
	return 0;
}

int device_unbind(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);

	if (!dev)
		return device_not_bound(op, op->dev_id);
	/* a refused detach refuses the unbind: nothing changes */
	if (dev->ioas) {
		int r = domain_detach_device(s->core, dev, op);

		if (r < 0)
			return r;
	}
	unbind_device(s->core, dev);
	return 0;
}

void devices_release_session(struct core *core, struct session *s)
{
	for (uint32_t i = 0; i < core->nr_devices; i++) {
		if (core->devices[i].owner == s)
			unbind_device(core, &core->devices[i]);
		if (core->devices[i].unplugged_by == s)
			core->devices[i].unplugged_by = NULL;
	}
}


/* ---- hotplug ------------------------------------------------------------ */

static void device_event(struct core *core, struct session *owner,
			 const struct device *dev, uint32_t type, uint32_t id)
{
	struct ioasid_event ev = { .type = type, .id = id };

	snprintf(ev.name, sizeof(ev.name), "%s", dev->inv->info.name);
	if (owner) {		/* whose binding it ends, for observers */
		ev.session_id = owner->id;
		ev.pid = owner->pid;
		ev.uid = owner->uid;
	}
	core_emit(core, IOASID_EVENT_GROUP_DEVICE, &ev);
	/* the owner hears it even when not subscribed to everyone's */
	if (owner && !(owner->event_groups & IOASID_EVENT_GROUP_DEVICE))
		core_emit_to(owner, 0, &ev);
}

void devices_hotplug(struct core *core, const char *name, bool present)
{
	struct device *dev = find_by_name(core, name);
	struct session *owner;
	uint32_t id;

	if (!dev || dev->removed == !present)
		return;
	if (present) {
		dev->removed = false;
		dev->unplugged_by = NULL;
		notice(core->log, "device %s is back", name);
		device_event(core, NULL, dev, IOASID_EVENT_DEVICE_ADDED, 0);
		return;
	}
	owner = dev->owner;
	id = dev->dev_id;
	if (owner)
		unbind_device(core, dev);	/* detaches first */
	dev->removed = true;
	notice(core->log, "device %s was unplugged%s", name,
	       owner ? ": detached and unbound" : "");
	device_event(core, owner, dev, IOASID_EVENT_DEVICE_REMOVED, id);
}

void devices_hotplug_poll(struct core *core)
{
	char name[IOASID_NAME_MAX];
	bool present;

	if (!core_ops(core)->hotplug_read)
		return;
	while (core_ops(core)->hotplug_read(core->be, name, sizeof(name),
					    &present) == 0)
		devices_hotplug(core, name, present);
}

/*
 * Who may unplug (or plug back) a simulated device: never an observer (it
 * is read-only) nor a client whose devices= does not name the device; the
 * owner of a bound device; and for unbound or others' devices only an
 * administrator (policy observe = yes, while not observing).
 */
static int may_hotplug(struct session *s, const struct device *dev,
		       struct ioasid_op *op)
{
	const char *name = dev->inv->info.name;

	if (s->observer)
		return op_fail(op, EPERM, "an observer is read-only: it cannot "
			       "hotplug %s", name);
	if (!policy_allows(s, name))
		return op_fail(op, EPERM, "policy does not let this client use "
			       "device %s", name);
	if (dev->owner == s || (dev->removed && dev->unplugged_by == s))
		return 0;
	if (!s->limits.may_observe)
		return op_fail(op, EPERM, "device %s is %s: only its owner or "
			       "an administrator (observe = yes in ioasidd.conf) "
			       "may hotplug it", name,
			       dev->owner ? "bound by another client" :
					    "not bound by this client");
	return 0;
}

int device_sim_hotplug(struct session *s, struct ioas *unused,
		       struct ioasid_op *op)
{
	struct device *dev = find_by_name(s->core, op->name);
	int r;

	if (op->flags > 1)
		return op_fail(op, EOPNOTSUPP, "unknown hotplug flags 0x%x",
			       op->flags);
	if (!core_ops(s->core)->simulate_hotplug)
		return op_fail(op, EOPNOTSUPP, "the %s backend has real "
			       "devices: unplug them for real",
			       core_ops(s->core)->name);
	if (!dev)
		return op_fail(op, ENOENT, "no device %s", op->name);
	r = may_hotplug(s, dev, op);
	if (r < 0)
		return r;
	r = core_ops(s->core)->simulate_hotplug(s->core->be, op->name,
						op->flags);
	if (r < 0)
		return op_fail(op, -r, "cannot simulate that: %s",
			       strerror(-r));
	devices_hotplug(s->core, op->name, op->flags);
	if (dev->removed)
		dev->unplugged_by = s;
	return 0;
}
