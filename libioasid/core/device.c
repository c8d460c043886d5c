/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices: listing, binding, and attaching them to address spaces through
 * domains chosen by capability and coherency class.
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
#include "core/base.h"
#include "core/device.h"
#include "core/ioas.h"
#include "util/log.h"
#include "util/macros.h"

static const struct backend_ops *ops(struct core *core)
{
	return core->be_ops;
}

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

/* The session's bound device @dev_id, or NULL. */
static struct device *find_bound(struct session *s, uint32_t dev_id)
{
	struct core *core = s->core;

	for (uint32_t i = 0; dev_id && i < core->nr_devices; i++)
		if (core->devices[i].dev_id == dev_id &&
		    core->devices[i].owner == s)
			return &core->devices[i];
	return NULL;
}

static int no_device(struct ioasid_op *op, uint32_t dev_id)
{
	return op_fail(op, ENOENT, "no bound device %u", dev_id);
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
				   IOASID_DEVICE_GROUP_VIABLE);
	info->dev_id = info->ioas_id = info->domain_id = info->vm_id = 0;
	info->platform = 0;
	if (dev->removed)
		info->flags |= IOASID_DEVICE_REMOVED;
	if (!dev->owner || (dev->owner != s && !s->observer))
		return;
	info->flags |= IOASID_DEVICE_BOUND;
	info->dev_id = dev->dev_id;
	if (dev->ioas) {
		info->flags |= IOASID_DEVICE_ATTACHED;
		info->ioas_id = dev->ioas->id;
		info->domain_id = dev->domain->id;
	}
	if (dev->noncoherent)
		info->flags |= IOASID_DEVICE_NONCOHERENT;
	if (dev->hinted)
		info->flags |= IOASID_DEVICE_NO_SNOOP_HINTED;
	if (dev->group_viable)
		info->flags |= IOASID_DEVICE_GROUP_VIABLE;
	info->vm_id = dev->vm ? dev->vm->id : 0;
	info->platform = platform_flags(dev);
}

static int out_array(struct ioasid_op *op, uint32_t n, uint32_t elem)
{
	op->out_len = n * elem;
	if (op->out_len > op->out_cap)
		return op_fail(op, EMSGSIZE, "%u entries do not fit in %u", n,
			       op->out_cap / elem);
	return 0;
}

int device_list(struct session *s, struct ioasid_op *op)
{
	struct ioasid_device_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out);
	struct core *core = s->core;

	for (uint32_t i = 0; i < core->nr_devices && i < cap; i++)
		fill_info(s, &core->devices[i], &out[i]);
	return out_array(op, core->nr_devices, sizeof(*out));
}

int device_info(struct session *s, struct ioasid_op *op)
{
	struct device *dev = find_by_name(s->core, op->name);
	struct ioasid_device_info info;

	if (!dev)
		return op_fail(op, ENOENT, "no device %s", op->name);
	fill_info(s, dev, &info);
	/* an older, smaller caller gets the part it knows */
	op->out_len = min_t(uint32_t, sizeof(info), op->out_cap);
	memcpy(op->out, &info, op->out_len);
	return 0;
}

int iommu_list(struct session *s, struct ioasid_op *op)
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
	return out_array(op, inv->nr_iommus, sizeof(*out));
}

int domain_list(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct ioasid_domain_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), n = 0;

	for (struct domain *d = s->core->domains; d; d = d->next) {
		if (d->ioas != ioas)
			continue;
		if (n < cap) {
			out[n] = (struct ioasid_domain_info){
				.size = sizeof(*out),
				.flags = d->enforce ?
					 IOASID_DOMAIN_ENFORCE_COHERENCY : 0,
				.domain_id = d->id,
				.ioas_id = ioas->id,
				/* what its IOPTEs may be */
				.page_sizes = ioas->flags &
					      IOASID_IOAS_PAGE_GRANULAR ?
					      SZ_4K : d->unit->info.page_sizes,
				.nr_devices = d->nr_devices,
			};
			if (d->unit->info.flags & IOASID_IOMMU_DIRTY_TRACKING)
				out[n].flags |= IOASID_DOMAIN_DIRTY_TRACKING;
			snprintf(out[n].iommu, sizeof(out[n].iommu), "%s",
				 d->unit->info.name);
		}
		n++;
	}
	return out_array(op, n, sizeof(*out));
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

int device_bind(struct session *s, struct ioasid_op *op)
{
	struct core *core = s->core;
	struct device *dev = find_by_name(core, op->name);
	int vfio_fd = -1, r;
	uint32_t id;

	if (!dev)
		return op_fail(op, ENOENT, "no device %s", op->name);
	if (!policy_allows(s, op->name))
		return op_fail(op, EPERM, "policy does not allow this client "
			       "to use device %s", op->name);
	if (dev->owner)
		return op_fail(op, EBUSY, "device %s is already bound",
			       op->name);
	if (dev->removed)
		return op_fail(op, ENODEV, "device %s was unplugged", op->name);
	if (!dev->unit)
		return op_fail(op, ENODEV, "device %s is not behind an IOMMU "
			       "this backend knows", op->name);
	if (op->fd >= 0) {
		r = check_vfio_file(op);
		if (r < 0)
			return r;
		vfio_fd = fcntl(op->fd, F_DUPFD_CLOEXEC, 3);
		if (vfio_fd < 0)
			return op_fail(op, EBADF, "fd %d: %s", op->fd,
				       strerror(errno));
	}
	id = core_alloc_id(core);
	r = ops(core)->device_open(core->be, dev->inv, dev->unit, id, vfio_fd,
				   &dev->be);
	if (r < 0) {
		close_fd(vfio_fd);
		return op_fail(op, -r, "cannot bind device %s: %s", op->name,
			       strerror(-r));
	}
	pthread_rwlock_wrlock(&dev->lock);
	dev->dev_id = id;
	dev->owner = s;
	dev->vfio_fd = vfio_fd;
	pthread_rwlock_unlock(&dev->lock);
	op->out_id = dev->dev_id;
	return 0;
}

static int detach_device(struct core *core, struct device *dev,
			 struct ioasid_op *op);

static void purge_core_faults(struct session *s, uint32_t dev_id);

/* Cannot be refused (teardown, hotplug): what the backend keeps is logged. */
static void unbind_device(struct core *core, struct device *dev)
{
	if (dev->ioas && detach_device(core, dev, NULL) < 0)
		err(core->log, "device %s stays attached in the kernel after "
		    "its unbind", dev->inv->info.name);
	if (dev->vm)
		vm_remove_device(core, dev);
	pthread_rwlock_wrlock(&dev->lock);
	purge_core_faults(dev->owner, dev->dev_id);
	ops(core)->device_close(dev->be);
	dev->be = NULL;
	dev->owner = NULL;
	dev->dev_id = 0;
	dev->hinted = false;
	close_fd(dev->vfio_fd);
	pthread_rwlock_unlock(&dev->lock);
}

int device_vfio_file(struct core *core, const struct device *dev)
{
	if (dev->vfio_fd >= 0)
		return dev->vfio_fd;
	return dev->be ? ops(core)->device_vfio_fd(dev->be) : -1;
}

/*
 * What the VMM needs besides the IOMMU side: the device's VFIO file (the
 * cdev with iommufd, the group with type1) for its BARs, config space and
 * interrupts, and for kvm-vfio.  Whatever the backend registers with KVM.
 */
int device_get_fd(struct session *s, struct ioasid_op *op)
{
	struct device *dev = find_bound(s, op->dev_id);
	int fd, e;

	if (!dev)
		return no_device(op, op->dev_id);
	/*
	 * a cdev bound to a shared iommufd could reach others' page tables;
	 * the policy answers first, so a client without the right learns
	 * nothing about the backend
	 */
	if (!s->limits.may_get_fds)
		return op_fail(op, EPERM, "policy does not hand VFIO files to "
			       "this client (device-fds in ioasidd.conf)");
	fd = ops(s->core)->device_vfio_fd(dev->be);
	if (fd < 0)
		return op_fail(op, EOPNOTSUPP, "device %s has no VFIO file to "
			       "hand out: it is simulated by the %s backend",
			       dev->inv->info.name, ops(s->core)->name);
	op->out_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (op->out_fd < 0) {
		e = errno;
		return op_fail(op, e, "cannot duplicate the VFIO file of "
			       "device %s: %s", dev->inv->info.name,
			       strerror(e));
	}
	return 0;
}

int device_unbind(struct session *s, struct ioasid_op *op)
{
	struct device *dev = find_bound(s, op->dev_id);

	if (!dev)
		return no_device(op, op->dev_id);
	/* a refused detach refuses the unbind: nothing changes */
	if (dev->ioas) {
		int r = detach_device(s->core, dev, op);

		if (r < 0)
			return r;
	}
	unbind_device(s->core, dev);
	return 0;
}

/* ---- groups ------------------------------------------------------------ */

/* A group is viable when all its devices are attached to one IOAS. */
static void update_group(struct core *core, uint32_t group)
{
	struct ioas *ioas = NULL;
	bool viable = true, first = true;

	if (group == UINT32_MAX)
		return;
	for (uint32_t i = 0; i < core->nr_devices; i++) {
		struct device *d = &core->devices[i];

		if (d->inv->info.group != group)
			continue;
		if (!d->ioas || (!first && d->ioas != ioas))
			viable = false;
		ioas = d->ioas;
		first = false;
	}
	for (uint32_t i = 0; i < core->nr_devices; i++)
		if (core->devices[i].inv->info.group == group)
			__atomic_store_n(&core->devices[i].group_viable,
					 viable, __ATOMIC_RELEASE);
}

/* A group-mate attached elsewhere blocks the attach (as iommufd). */
static const struct device *group_conflict(struct core *core,
					   const struct device *dev,
					   const struct ioas *ioas)
{
	uint32_t group = dev->inv->info.group;

	for (uint32_t i = 0; group != UINT32_MAX && i < core->nr_devices; i++) {
		const struct device *d = &core->devices[i];

		if (d != dev && d->inv->info.group == group && d->ioas &&
		    d->ioas != ioas)
			return d;
	}
	return NULL;
}

/* ---- attach ------------------------------------------------------------ */

/* Which coherency class the device's domain in @ioas must have. */
static int want_enforce(const struct device *dev, const struct ioas *ioas,
			bool *enforce, struct ioasid_op *op)
{
	bool can = dev->unit->info.flags & IOASID_IOMMU_SNOOP_CONTROL;

	switch (ioas->snoop_mode) {
	case IOASID_SNOOP_ENFORCE:
		if (!can)
			return op_fail(op, EINVAL,
				       "device %s cannot join IOAS %u: its "
				       "IOMMU %s has no snoop control and the "
				       "IOAS is in enforce mode",
				       dev->inv->info.name, ioas->id,
				       dev->unit->info.name);
		*enforce = true;
		return 0;
	case IOASID_SNOOP_ALLOW:
		*enforce = false;
		return 0;
	default:
		*enforce = can;
		return 0;
	}
}

/* Reserved ranges the device brings: its group's, its unit's, aperture. */
static int device_reservation(const struct device *dev,
			      struct ioasid_iova_range **out, uint32_t *nr)
{
	const struct inv_device *inv = dev->inv;
	const struct inv_iommu *unit = dev->unit;
	uint32_t n = inv->nr_reserved + unit->nr_reserved + 1, i = 0;
	struct ioasid_iova_range *v = calloc(n, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (uint32_t k = 0; k < inv->nr_reserved; k++)
		v[i++] = inv->reserved[k];
	for (uint32_t k = 0; k < unit->nr_reserved; k++)
		v[i++] = unit->reserved[k];
	if (unit->info.addr_width && unit->info.addr_width < 64)
		v[i++] = (struct ioasid_iova_range){
			1ULL << unit->info.addr_width, UINT64_MAX };
	*out = v;
	*nr = i;
	return 0;
}

static void domain_put(struct core *core, struct domain *d)
{
	struct domain **p = &core->domains;

	if (--d->nr_devices)
		return;
	while (*p && *p != d)
		p = &(*p)->next;
	if (*p)
		*p = d->next;
	d->ioas->nr_domains--;
	ops(core)->domain_free(d->be);
	free(d);
}

/* Try the IOAS's domains of the right class; else create one. */
static int attach_to_domain(struct core *core, struct device *dev,
			    struct ioas *ioas, bool enforce,
			    struct domain **out, struct ioasid_op *op)
{
	struct be_replay replay;
	struct domain *d;
	int r;

	for (d = core->domains; d; d = d->next) {
		if (d->ioas != ioas || d->enforce != enforce)
			continue;
		r = ops(core)->attach(dev->be, d->be);
		if (r == 0) {
			d->nr_devices++;
			*out = d;
			return 0;
		}
		if (r != -EINVAL)	/* EINVAL: incompatible, try on */
			return op_fail(op, -r, "attach failed: %s",
				       strerror(-r));
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return op_fail(op, ENOMEM, "out of memory");
	ioas_replay(ioas, &replay);
	r = ops(core)->domain_alloc(ioas->be, dev->unit,
				    enforce ? BE_DOMAIN_ENFORCE_COHERENCY : 0,
				    &replay, &d->be);
	if (r == 0) {
		r = ops(core)->attach(dev->be, d->be);
		if (r < 0)
			ops(core)->domain_free(d->be);
	}
	if (r < 0) {
		free(d);
		return op_fail(op, -r, "cannot create a domain on %s for "
			       "device %s: %s", dev->unit->info.name,
			       dev->inv->info.name, strerror(-r));
	}
	d->id = core_alloc_id(core);
	d->ioas = ioas;
	d->unit = dev->unit;
	d->enforce = enforce;
	d->nr_devices = 1;
	d->next = core->domains;
	core->domains = d;
	ioas->nr_domains++;
	*out = d;
	return 0;
}

static int check_attach(struct session *s, struct device *dev,
			struct ioas *ioas, struct ioasid_op *op)
{
	const struct device *mate;

	if (op->flags & ~(uint32_t)IOASID_ATTACH_NO_SNOOP_UNUSED)
		return op_fail(op, EOPNOTSUPP, "unknown attach flags 0x%x",
			       op->flags);
	if (!(dev->inv->info.flags & IOASID_DEVICE_TRANSLATES) &&
	    !(ioas->flags & IOASID_IOAS_IDENTITY))
		return op_fail(op, EOPNOTSUPP,
			       "device %s does not support IOVA translation: "
			       "it can only join an identity IOAS",
			       dev->inv->info.name);
	mate = group_conflict(s->core, dev, ioas);
	if (mate)
		return op_fail(op, EINVAL,
			       "device %s cannot join IOAS %u: %s of the same "
			       "IOMMU group %u is attached to IOAS %u",
			       dev->inv->info.name, ioas->id,
			       mate->inv->info.name, dev->inv->info.group,
			       mate->ioas->id);
	return 0;
}

/* Would this attach make DMA non-coherent where policy forbids it? */
static int check_coherency_policy(struct session *s, struct device *dev,
				  bool enforce, bool hinted,
				  struct ioasid_op *op)
{
	bool may = (dev->inv->info.flags & (IOASID_DEVICE_NO_SNOOP |
					    IOASID_DEVICE_NO_SNOOP_UNKNOWN)) &&
		   !hinted;

	if (!may || enforce)
		return 0;
	if (!s->limits.allow_noncoherent)
		return op_fail(op, EPERM,
			       "device %s would do non-coherent DMA (no-snoop "
			       "enabled, domain does not enforce snooping) and "
			       "policy forbids it for this client",
			       dev->inv->info.name);
	if (dev->vm && (dev->vm->flags & IOASID_VM_FORBID_NONCOHERENT))
		return op_fail(op, EPERM,
			       "device %s would do non-coherent DMA and VM %u "
			       "forbids anything that needs WBINVD",
			       dev->inv->info.name, dev->vm->id);
	return 0;
}

/*
 * The common part of attach and replace.  On success the device is in a
 * domain of @ioas; the old attachment (replace) is released by the
 * caller.  On failure nothing changed.
 */
static int join(struct session *s, struct device *dev, struct ioas *ioas,
		struct ioasid_op *op)
{
	struct ioasid_iova_range *res = NULL;
	bool enforce = false, hinted;
	struct domain *d = NULL;
	uint32_t nr = 0;
	int r;

	r = check_attach(s, dev, ioas, op);
	if (r == 0)
		r = want_enforce(dev, ioas, &enforce, op);
	if (r < 0)
		return r;
	hinted = (op->flags & IOASID_ATTACH_NO_SNOOP_UNUSED) &&
		 s->limits.trust_hints;
	r = check_coherency_policy(s, dev, enforce, hinted, op);
	if (r < 0)
		return r;
	if (device_reservation(dev, &res, &nr) < 0)
		return op_fail(op, ENOMEM, "out of memory");
	if (dev->ioas != ioas)
		r = ioas_set_reservation(ioas, dev, res, nr, op);
	free(res);
	if (r < 0)
		return r;
	r = attach_to_domain(s->core, dev, ioas, enforce, &d, op);
	if (r < 0) {
		if (dev->ioas != ioas)
			ioas_set_reservation(ioas, dev, NULL, 0, op);
		return r;
	}
	dev->hinted = hinted;
	if (dev->ioas != ioas)
		ioas->nr_devices++;
	dev->domain = d;
	return 0;
}

static void leave(struct core *core, struct device *dev, struct ioas *ioas,
		  struct domain *d)
{
	struct ioasid_op scratch;

	domain_put(core, d);
	ioasid_op_init(&scratch, IOASID_CMD_UNSPEC);
	ioas_set_reservation(ioas, dev, NULL, 0, &scratch);
	ioas->nr_devices--;
}

static void attached(struct core *core, struct device *dev, struct ioas *old)
{
	if (old)
		update_group(core, dev->inv->info.group);
	update_group(core, dev->inv->info.group);
	coherency_update(core, dev);
	info(core->log, "device %s on IOAS %u domain %u (%s)",
	     dev->inv->info.name, dev->ioas->id, dev->domain->id,
	     dev->domain->enforce ? "snoop enforced" : "snoop not enforced");
}

int device_attach(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct device *dev = find_bound(s, op->dev_id);
	int r;

	if (!dev)
		return no_device(op, op->dev_id);
	if (op->flags & ~(uint32_t)IOASID_ATTACH_NO_SNOOP_UNUSED)
		return op_fail(op, EOPNOTSUPP, "unknown attach flags 0x%x",
			       op->flags);
	if (dev->ioas)
		return op_fail(op, EBUSY, "device %s is already attached to "
			       "IOAS %u (use replace)", dev->inv->info.name,
			       dev->ioas->id);
	r = join(s, dev, ioas, op);
	if (r < 0)
		return r;
	dev->ioas = ioas;
	attached(s->core, dev, NULL);
	return 0;
}

int device_replace(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct device *dev = find_bound(s, op->dev_id);
	struct domain *old_domain;
	struct ioas *old;
	int r;

	if (!dev)
		return no_device(op, op->dev_id);
	if (!dev->ioas)
		return op_fail(op, EINVAL, "device %s is not attached: "
			       "nothing to replace", dev->inv->info.name);
	old = dev->ioas;
	old_domain = dev->domain;
	if (old == ioas)
		return 0;
	/* the backend moves the device without a window (sim_dev_attach,
	 * VFIO_DEVICE_ATTACH_IOMMUFD_PT replace) */
	r = join(s, dev, ioas, op);
	if (r < 0)
		return r;
	dev->ioas = ioas;
	leave(s->core, dev, old, old_domain);
	attached(s->core, dev, old);
	return 0;
}

/*
 * 0, or -errno when the backend refuses (the device is still attached,
 * nothing changed): with @op, the reason goes there, else to the log.
 */
static int detach_device(struct core *core, struct device *dev,
			 struct ioasid_op *op)
{
	struct ioas *ioas = dev->ioas;
	char why[IOASID_ERRMSG_MAX] = "";
	int r;

	r = ops(core)->detach(dev->be, why, sizeof(why));
	if (r < 0) {
		if (!op) {
			err(core->log, "device %s cannot be detached from IOAS "
			    "%u: %s", dev->inv->info.name, ioas->id,
			    why[0] ? why : strerror(-r));
			return r;
		}
		return op_fail(op, -r, "device %s is still attached to IOAS "
			       "%u: %s", dev->inv->info.name, ioas->id,
			       why[0] ? why : strerror(-r));
	}
	leave(core, dev, ioas, dev->domain);
	dev->ioas = NULL;
	dev->domain = NULL;
	dev->hinted = false;
	update_group(core, dev->inv->info.group);
	coherency_update(core, dev);
	return 0;
}

int device_detach(struct session *s, struct ioasid_op *op)
{
	struct device *dev = find_bound(s, op->dev_id);

	if (!dev)
		return no_device(op, op->dev_id);
	if (!dev->ioas)
		return op_fail(op, EINVAL, "device %s is not attached",
			       dev->inv->info.name);
	return detach_device(s->core, dev, op);
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

/* ---- DMA and faults ----------------------------------------------------- */

/* Queue a record for @s, the session that owns the device. */
static void record_core_fault(struct session *s, const struct device *dev,
			      uint64_t iova, uint32_t flags, uint32_t reason)
{
	struct ioasid_fault f = {
		.size = sizeof(f),
		.flags = flags & IOASID_DMA_WRITE ? IOASID_MAP_WRITE :
						   IOASID_MAP_READ,
		.dev_id = dev->dev_id,
		.reason = reason,
		.iova = iova,
		.timestamp_ns = core_now_ns(),
	};

	pthread_mutex_lock(&s->core->event_lock);
	if (s->fault_len < SESSION_FAULT_RING) {
		s->faults[(s->fault_head + s->fault_len) %
			  SESSION_FAULT_RING] = f;
		s->fault_len++;
	} else {
		s->faults_lost++;
	}
	pthread_mutex_unlock(&s->core->event_lock);
}

/* Drop the queued records of a device leaving @s (unbound, unplugged). */
static void purge_core_faults(struct session *s, uint32_t dev_id)
{
	uint32_t kept = 0;

	pthread_mutex_lock(&s->core->event_lock);
	for (uint32_t i = 0; i < s->fault_len; i++) {
		struct ioasid_fault *f = &s->faults[(s->fault_head + i) %
						    SESSION_FAULT_RING];

		if (f->dev_id != dev_id)
			s->faults[(s->fault_head + kept++) %
				  SESSION_FAULT_RING] = *f;
	}
	s->fault_len = kept;
	pthread_mutex_unlock(&s->core->event_lock);
}

static void fault_event(struct session *s, const struct device *dev,
			uint64_t iova)
{
	struct ioasid_event ev = {
		.type = IOASID_EVENT_FAULT,
		.id = dev->dev_id,
		.iova = iova,
	};

	snprintf(ev.name, sizeof(ev.name), "%s", dev->inv->info.name);
	core_emit_to(s, IOASID_EVENT_GROUP_FAULT, &ev);
}

/* Runs without the core lock, beside map/unmap (CONCURRENT). */
int device_dma(struct session *s, struct ioasid_op *op)
{
	const uint32_t known = IOASID_DMA_WRITE | IOASID_DMA_NO_SNOOP;
	struct device *dev = find_bound(s, op->dev_id);
	uint64_t done = 0;
	void *buf;
	int r;

	if (!dev)
		return no_device(op, op->dev_id);
	if (op->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "unknown DMA flags 0x%x",
			       op->flags);
	if (!ops(s->core)->dma)
		return op_fail(op, EOPNOTSUPP, "the %s backend cannot start "
			       "DMA: only simulated devices can",
			       ops(s->core)->name);
	if (op->flags & IOASID_DMA_WRITE) {
		if (op->in_len != op->length)
			return op_fail(op, EINVAL, "DMA data is %u bytes, "
				       "length is %llu", op->in_len,
				       (unsigned long long)op->length);
		buf = (void *)op->in;
	} else {
		if (op->out_cap < op->length)
			return op_fail(op, EINVAL, "DMA buffer too small");
		buf = op->out;
	}
	pthread_rwlock_rdlock(&dev->lock);
	if (dev->owner != s) {
		r = no_device(op, op->dev_id);
	} else if (dev->ioas &&
		   !__atomic_load_n(&dev->group_viable, __ATOMIC_ACQUIRE)) {
		record_core_fault(s, dev, op->iova, op->flags,
				  IOASID_FAULT_GROUP_NOT_VIABLE);
		r = op_fail(op, EFAULT, "IOMMU group %u of device %s is not "
			    "viable: all its devices must be attached to one "
			    "IOAS before any may do DMA",
			    dev->inv->info.group, dev->inv->info.name);
	} else {
		r = ops(s->core)->dma(dev->be, op->iova, buf, op->length,
				      op->flags, &done);
		if (r < 0)
			op_fail(op, -r, "DMA fault at IOVA 0x%llx after %llu "
				"bytes", (unsigned long long)(op->iova + done),
				(unsigned long long)done);
	}
	pthread_rwlock_unlock(&dev->lock);
	op->out_bytes = done;
	if (!(op->flags & IOASID_DMA_WRITE))
		op->out_len = (uint32_t)done;
	if (r < 0 && r != -ENOENT)
		fault_event(s, dev, op->iova + done);
	return r;
}

int fault_read(struct session *s, struct ioasid_op *op)
{
	struct ioasid_fault *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), n = 0, got;
	struct core *core = s->core;

	/* the core's own records first (all of this session's devices) */
	pthread_mutex_lock(&core->event_lock);
	for (; s->fault_len && n < cap; n++) {
		out[n] = s->faults[s->fault_head];
		s->fault_head = (s->fault_head + 1) % SESSION_FAULT_RING;
		s->fault_len--;
	}
	pthread_mutex_unlock(&core->event_lock);
	for (uint32_t i = 0; i < core->nr_devices && n < cap; i++) {
		struct device *dev = &core->devices[i];

		if (dev->owner != s || !ops(core)->read_faults)
			continue;
		if (ops(core)->read_faults(dev->be, out + n, cap - n, &got))
			continue;
		/* a hole that is a private page of a confidential guest */
		for (uint32_t j = n; j < n + got; j++)
			if (out[j].reason == IOASID_FAULT_NOT_PRESENT &&
			    dev->ioas && ioas_is_private(dev->ioas, out[j].iova))
				out[j].reason = IOASID_FAULT_PRIVATE;
		n += got;
	}
	op->out_len = n * (uint32_t)sizeof(*out);
	return 0;
}

int dirty_read(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	uint64_t pages, words;
	bool any = false;
	int r = 0;

	if (op->flags & ~(uint32_t)IOASID_DIRTY_NO_CLEAR)
		return op_fail(op, EOPNOTSUPP, "unknown dirty flags 0x%x",
			       op->flags);
	if (!op->length || !IS_ALIGNED(op->iova | op->length, SZ_4K))
		return op_fail(op, EINVAL, "range must be 4 KiB aligned and "
			       "not empty");
	if (op->iova + (op->length - 1) < op->iova)
		return op_fail(op, EOVERFLOW, "range wraps");
	pages = op->length / SZ_4K;
	words = (pages + 63) / 64;
	if (words > op->out_cap / 8)
		return op_fail(op, EMSGSIZE, "the bitmap needs %llu bytes",
			       (unsigned long long)(words * 8));
	if (!ops(s->core)->read_dirty)
		return op_fail(op, EOPNOTSUPP, "the %s backend does not track "
			       "dirty pages", ops(s->core)->name);
	/*
	 * Only units with dirty tracking can report dirty pages (the kernel
	 * backends cannot ask the others; the simulated IOMMU follows the
	 * topology's dirty-tracking= rather than always tracking).
	 */
	for (struct domain *d = s->core->domains; d; d = d->next)
		if (d->ioas == ioas &&
		    !(d->unit->info.flags & IOASID_IOMMU_DIRTY_TRACKING))
			return op_fail(op, EOPNOTSUPP, "domain %u on %s cannot "
				       "track dirty pages: the IOMMU has no "
				       "dirty tracking", d->id,
				       d->unit->info.name);
	memset(op->out, 0, words * 8);
	for (struct domain *d = s->core->domains; d && r == 0; d = d->next) {
		if (d->ioas != ioas)
			continue;
		any = true;
		r = ops(s->core)->read_dirty(d->be, op->iova, op->length,
					     op->out,
					     !(op->flags & IOASID_DIRTY_NO_CLEAR));
	}
	if (r < 0)
		return op_fail(op, -r, "reading dirty bits failed: %s",
			       strerror(-r));
	op->out_len = (uint32_t)(words * 8);
	op->out_bytes = any;
	return 0;
}

/* ---- hotplug ------------------------------------------------------------ */

static void device_event(struct core *core, struct session *owner,
			 const struct device *dev, uint32_t type, uint32_t id)
{
	struct ioasid_event ev = { .type = type, .id = id };

	snprintf(ev.name, sizeof(ev.name), "%s", dev->inv->info.name);
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

	if (!ops(core)->hotplug_read)
		return;
	while (ops(core)->hotplug_read(core->be, name, sizeof(name),
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

int device_sim_hotplug(struct session *s, struct ioasid_op *op)
{
	struct device *dev = find_by_name(s->core, op->name);
	int r;

	if (op->flags > 1)
		return op_fail(op, EOPNOTSUPP, "unknown hotplug flags 0x%x",
			       op->flags);
	if (!ops(s->core)->simulate_hotplug)
		return op_fail(op, EOPNOTSUPP, "the %s backend has real "
			       "devices: unplug them for real",
			       ops(s->core)->name);
	if (!dev)
		return op_fail(op, ENOENT, "no device %s", op->name);
	r = may_hotplug(s, dev, op);
	if (r < 0)
		return r;
	r = ops(s->core)->simulate_hotplug(s->core->be, op->name, op->flags);
	if (r < 0)
		return op_fail(op, -r, "cannot simulate that: %s",
			       strerror(-r));
	devices_hotplug(s->core, op->name, op->flags);
	if (dev->removed)
		dev->unplugged_by = s;
	return 0;
}
