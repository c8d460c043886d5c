/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domains: IOMMU groups, attaching devices to address spaces through
 * domains chosen by capability and coherency class (attach, replace,
 * detach), the domains' lifetime and listing, and their dirty bits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/coherency.h"
#include "core/device.h"
#include "core/domain.h"
#include "core/ioas.h"
#include "core/nested.h"
#include "core/vm.h"
#include "util/log.h"
#include "util/macros.h"

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
int domain_want_enforce(const struct device *dev, const struct ioas *ioas,
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

/* Free @d once neither a device nor a nested table uses it. */
static void domain_release(struct core *core, struct domain *d)
{
	struct domain **p = &core->domains;

	if (d->nr_devices || d->nr_nested)
		return;
	while (*p && *p != d)
		p = &(*p)->next;
	if (*p)
		*p = d->next;
	d->ioas->nr_domains--;
	if (d->ioas->dirty_on && !d->tracking)
		d->ioas->nr_untracked--;
	core_ops(core)->domain_free(d->be);
	free(d);
}

void domain_put(struct core *core, struct domain *d)
{
	d->nr_devices--;
	domain_release(core, d);
}

/*
 * An existing domain of @ioas of the right class that takes @dev: 0 and
 * *@out, 1 when none does (the backend said EINVAL, incompatible, to
 * all), -errno when the backend failed otherwise.
 */
static int attach_existing(struct core *core, struct device *dev,
			   struct ioas *ioas, bool enforce,
			   const struct domain_join *join,
			   struct domain **out, struct ioasid_op *op)
{
	int r;

	for (struct domain *d = core->domains; d; d = d->next) {
		if (d->ioas != ioas || d->enforce != enforce)
			continue;
		r = join->fn(core, dev, d->be, join->arg);
		if (r == 0) {
			d->nr_devices++;
			*out = d;
			return 0;
		}
		if (r != -EINVAL)	/* EINVAL: incompatible, try on */
			return op_fail(op, -r, "attach failed: %s",
				       strerror(-r));
	}
	return 1;
}

/* Whether a domain on @unit can track dirty pages at all. */
static bool unit_tracks(struct core *core, const struct inv_iommu *unit)
{
	return core_ops(core)->set_dirty_tracking &&
	       core_ops(core)->read_dirty &&
	       (unit->info.flags & IOASID_IOMMU_DIRTY_TRACKING);
}

/*
 * A new domain of an IOAS that tracks dirty pages tracks too: 0 with
 * d->tracking set, 0 untracked under the fallback, -errno (reason in
 * @op) when it cannot and the IOAS has no fallback.
 */
static int dirty_join(struct core *core, struct domain *d,
		      const struct device *dev, struct ioas *ioas,
		      struct ioasid_op *op)
{
	int r = -EOPNOTSUPP;

	if (!ioas->dirty_on)
		return 0;
	if (unit_tracks(core, d->unit))
		r = core_ops(core)->set_dirty_tracking(d->be, true);
	if (r == 0) {
		d->tracking = true;
		return 0;
	}
	if (r == -EOPNOTSUPP && ioas->dirty_fallback) {
		ioas->nr_untracked++;
		return 0;
	}
	if (r == -EOPNOTSUPP)
		return op_fail(op, EOPNOTSUPP, "device %s cannot join IOAS %u: "
			       "the IOAS tracks dirty pages and IOMMU %s has no "
			       "dirty tracking (start it with "
			       "IOASID_DIRTY_START_FALLBACK to report such "
			       "devices' pages as always dirty)",
			       dev->inv->info.name, ioas->id,
			       d->unit->info.name);
	return op_fail(op, -r, "device %s cannot join IOAS %u: dirty tracking "
		       "on its new domain failed: %s", dev->inv->info.name,
		       ioas->id, strerror(-r));
}

/*
 * A new backend domain for @ioas on the device's unit, tracking dirty
 * pages if the IOAS does, with @dev in it (the attach comes last: a
 * replace moves the device only into a domain that is complete).
 */
/*
 * The backend's ->set_dirtied hook of domain @cookie: a DMA write made
 * [iova, iova+size) dirty; whoever core_set_dirtied() named hears it
 * as the domain's dirty pages (a state image's J_DIRTY, in ioasidd).
 * The DMA holds its device's read lock, so the domain and its IOAS
 * stay while this runs.
 */
static void domain_dirtied(void *cookie, uint64_t iova, uint64_t size)
{
	const struct domain *d = cookie;
	struct core *core = d->ioas->core;
	core_dirtied_fn fn = __atomic_load_n(&core->dirtied, __ATOMIC_ACQUIRE);
	struct ioasid_iova_range run = { iova, iova + size - 1 };

	if (fn)
		fn(core->dirtied_arg, d->ioas->owner, &(struct core_dirty_bits){
			.ioas_id = d->ioas->id, .domain_id = d->id,
			.nr_runs = 1, .runs = &run });
}

static void hear_dirtied(struct core *core, struct domain *d)
{
	if (core_ops(core)->set_dirtied)
		core_ops(core)->set_dirtied(d->be, domain_dirtied, d);
}

static int be_domain_new(struct core *core, struct device *dev,
			 struct ioas *ioas, struct domain *d,
			 const struct domain_join *join, struct ioasid_op *op)
{
	struct be_replay replay;
	int r;

	ioas_replay(ioas, &replay);
	r = core_ops(core)->domain_alloc(ioas->be, dev->unit, d->enforce ?
					 BE_DOMAIN_ENFORCE_COHERENCY : 0,
					 &replay, &d->be);
	if (r < 0)
		return op_fail(op, -r, "cannot create a domain on %s for "
			       "device %s: %s", dev->unit->info.name,
			       dev->inv->info.name, strerror(-r));
	hear_dirtied(core, d);
	r = dirty_join(core, d, dev, ioas, op);
	if (r == 0) {
		r = join->fn(core, dev, d->be, join->arg);
		if (r < 0)
			op_fail(op, -r, "cannot create a domain on %s for "
				"device %s: %s", dev->unit->info.name,
				dev->inv->info.name, strerror(-r));
		if (r < 0 && !d->tracking && ioas->dirty_on)
			ioas->nr_untracked--;
	}
	if (r < 0)
		core_ops(core)->domain_free(d->be);
	return r;
}

static int attach_new(struct core *core, struct device *dev,
		      struct ioas *ioas, bool enforce,
		      const struct domain_join *join, struct domain **out,
		      struct ioasid_op *op)
{
	struct domain *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return op_fail(op, ENOMEM, "out of memory");
	d->unit = dev->unit;
	d->enforce = enforce;
	r = be_domain_new(core, dev, ioas, d, join, op);
	if (r < 0) {
		free(d);
		return r;
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

int domain_join_any(struct core *core, struct device *dev, struct ioas *ioas,
		    bool enforce, const struct domain_join *join,
		    struct domain **out, struct ioasid_op *op)
{
	int r = attach_existing(core, dev, ioas, enforce, join, out, op);

	if (r <= 0)
		return r;
	return attach_new(core, dev, ioas, enforce, join, out, op);
}

static int join_rid(struct core *core, struct device *dev,
		    struct be_domain *d, void *unused)
{
	return core_ops(core)->attach(dev->be, d);
}

/* Try the IOAS's domains of the right class; else create one. */
static int attach_to_domain(struct core *core, struct device *dev,
			    struct ioas *ioas, bool enforce,
			    struct domain **out, struct ioasid_op *op)
{
	static const struct domain_join rid = { .fn = join_rid };

	return domain_join_any(core, dev, ioas, enforce, &rid, out, op);
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
/* Through nested table @n: its stage-2 domain, the backend's nested attach. */
static int attach_nested_domain(struct core *core, struct device *dev,
				struct nested *n, bool enforce,
				struct domain **out, struct ioasid_op *op)
{
	int r;

	if (n->s2->enforce != enforce)
		return op_fail(op, EINVAL, "nested table %u: its stage-2 domain "
			       "%u %s cache coherency and IOAS %u's snoop mode "
			       "now asks otherwise", n->id, n->s2->id,
			       n->s2->enforce ? "enforces" : "does not enforce",
			       n->parent->id);
	r = core_ops(core)->attach_nested(dev->be, n->be);
	if (r == -EINVAL)
		return op_fail(op, EINVAL, "device %s cannot use nested table "
			       "%u: it was made for IOMMU %s, the device is "
			       "behind %s", dev->inv->info.name, n->id,
			       n->s2->unit->info.name, dev->unit->info.name);
	if (r < 0)
		return op_fail(op, -r, "attaching device %s to nested table %u "
			       "failed: %s", dev->inv->info.name, n->id,
			       strerror(-r));
	n->s2->nr_devices++;
	*out = n->s2;
	return 0;
}

static int join(struct session *s, struct device *dev, struct ioas *ioas,
		struct nested *n, struct ioasid_op *op)
{
	struct ioasid_iova_range *res = NULL;
	bool enforce = false, hinted;
	struct domain *d = NULL;
	uint32_t nr = 0;
	int r;

	r = check_attach(s, dev, ioas, op);
	if (r == 0)
		r = domain_want_enforce(dev, ioas, &enforce, op);
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
	if (n)
		r = attach_nested_domain(s->core, dev, n, enforce, &d, op);
	else
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
	dev->nested = n;
	if (n)
		n->nr_devices++;
	return 0;
}

/* The device left domain @d (and nested table @n, if it used one). */
static void leave_domain(struct core *core, struct domain *d,
			 struct nested *n)
{
	if (n)
		n->nr_devices--;
	domain_put(core, d);
}

static void leave(struct core *core, struct device *dev, struct ioas *ioas,
		  struct domain *d, struct nested *n)
{
	struct ioasid_op scratch;

	leave_domain(core, d, n);
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

int domain_attach(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);
	int r;

	if (!dev)
		return device_not_bound(op, op->dev_id);
	if (op->flags & ~(uint32_t)IOASID_ATTACH_NO_SNOOP_UNUSED)
		return op_fail(op, EOPNOTSUPP, "unknown attach flags 0x%x",
			       op->flags);
	if (dev->ioas)
		return op_fail(op, EBUSY, "device %s is already attached to "
			       "IOAS %u (use replace)", dev->inv->info.name,
			       dev->ioas->id);
	r = join(s, dev, ioas, NULL, op);
	if (r < 0)
		return r;
	dev->ioas = ioas;
	attached(s->core, dev, NULL);
	return 0;
}

int domain_replace(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);
	struct domain *old_domain;
	struct nested *old_nested;
	struct ioas *old;
	int r;

	if (!dev)
		return device_not_bound(op, op->dev_id);
	if (!dev->ioas)
		return op_fail(op, EINVAL, "device %s is not attached: "
			       "nothing to replace", dev->inv->info.name);
	old = dev->ioas;
	old_domain = dev->domain;
	old_nested = dev->nested;
	/* from a nested table to its parent itself is a move too */
	if (old == ioas && !old_nested)
		return 0;
	/* the backend moves the device without a window (sim_dev_attach,
	 * VFIO_DEVICE_ATTACH_IOMMUFD_PT replace) */
	r = join(s, dev, ioas, NULL, op);
	if (r < 0)
		return r;
	dev->ioas = ioas;
	if (old == ioas)
		leave_domain(s->core, old_domain, old_nested);
	else
		leave(s->core, dev, old, old_domain, old_nested);
	attached(s->core, dev, old);
	return 0;
}

int domain_attach_nested(struct session *s, struct device *dev,
			 struct nested *n, bool replace, struct ioasid_op *op)
{
	struct domain *old_domain = dev->domain;
	struct nested *old_nested = dev->nested;
	struct ioas *old = dev->ioas;
	int r;

	if (!replace && old)
		return op_fail(op, EBUSY, "device %s is already attached to "
			       "IOAS %u (use replace)", dev->inv->info.name,
			       old->id);
	if (replace && !old)
		return op_fail(op, EINVAL, "device %s is not attached: "
			       "nothing to replace", dev->inv->info.name);
	if (old_nested == n)
		return 0;
	r = join(s, dev, n->parent, n, op);
	if (r < 0)
		return r;
	dev->ioas = n->parent;
	if (old == n->parent)
		leave_domain(s->core, old_domain, old_nested);
	else if (old)
		leave(s->core, dev, old, old_domain, old_nested);
	attached(s->core, dev, old);
	return 0;
}

int domain_get_parent(struct session *s, struct device *dev,
		      struct ioas *ioas, struct domain **out,
		      struct ioasid_op *op)
{
	struct core *core = s->core;
	struct be_replay replay;
	bool enforce = false;
	struct domain *d;
	int r;

	r = domain_want_enforce(dev, ioas, &enforce, op);
	if (r < 0)
		return r;
	for (d = core->domains; d; d = d->next)
		if (d->ioas == ioas && d->unit == dev->unit &&
		    d->enforce == enforce)
			break;
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return op_fail(op, ENOMEM, "out of memory");
		ioas_replay(ioas, &replay);
		r = core_ops(core)->domain_alloc(ioas->be, dev->unit, enforce ?
						 BE_DOMAIN_ENFORCE_COHERENCY :
						 0, &replay, &d->be);
		if (r < 0) {
			free(d);
			return op_fail(op, -r, "cannot create a stage-2 domain "
				       "of IOAS %u on %s: %s", ioas->id,
				       dev->unit->info.name, strerror(-r));
		}
		hear_dirtied(core, d);
		if (core->replay_domain_id) {
			d->id = core->replay_domain_id;
			core->replay_domain_id = 0;
		} else {
			d->id = core_alloc_id(core);
		}
		d->ioas = ioas;
		d->unit = dev->unit;
		d->enforce = enforce;
		d->next = core->domains;
		core->domains = d;
		ioas->nr_domains++;
	}
	d->nr_nested++;
	*out = d;
	return 0;
}

void domain_put_parent(struct core *core, struct domain *d)
{
	d->nr_nested--;
	domain_release(core, d);
}

/*
 * 0, or -errno when the backend refuses (the device is still attached,
 * nothing changed): with @op, the reason goes there, else to the log.
 */
int domain_detach_device(struct core *core, struct device *dev,
			 struct ioasid_op *op)
{
	struct ioas *ioas = dev->ioas;
	char why[IOASID_ERRMSG_MAX] = "";
	int r;

	r = core_ops(core)->detach(dev->be, why, sizeof(why));
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
	leave(core, dev, ioas, dev->domain, dev->nested);
	dev->ioas = NULL;
	dev->domain = NULL;
	dev->nested = NULL;
	dev->hinted = false;
	update_group(core, dev->inv->info.group);
	coherency_update(core, dev);
	return 0;
}

int domain_detach(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);

	if (!dev)
		return device_not_bound(op, op->dev_id);
	if (!dev->ioas)
		return op_fail(op, EINVAL, "device %s is not attached",
			       dev->inv->info.name);
	return domain_detach_device(s->core, dev, op);
}

/* ---- listing and dirty bits -------------------------------------------- */

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
			if (unit_tracks(s->core, d->unit))
				out[n].flags |= IOASID_DOMAIN_DIRTY_TRACKING;
			if (d->tracking)
				out[n].flags |= IOASID_DOMAIN_DIRTY_ON;
			snprintf(out[n].iommu, sizeof(out[n].iommu), "%s",
				 d->unit->info.name);
		}
		n++;
	}
	return op_out_array(op, n, sizeof(*out));
}

/* The range and the bitmap's room: 0 and *@bytes, the bitmap's size. */
static int check_dirty_args(struct ioasid_op *op, uint64_t *bytes)
{
	uint64_t words;

	if (op->flags & ~(uint32_t)IOASID_DIRTY_NO_CLEAR)
		return op_fail(op, EOPNOTSUPP, "unknown dirty flags 0x%x",
			       op->flags);
	if (!op->length || !IS_ALIGNED(op->iova | op->length, SZ_4K))
		return op_fail(op, EINVAL, "range must be 4 KiB aligned and "
			       "not empty");
	if (op->iova + (op->length - 1) < op->iova)
		return op_fail(op, EOVERFLOW, "range wraps");
	words = (op->length / SZ_4K + 63) / 64;
	if (words > op->out_cap / 8)
		return op_fail(op, EMSGSIZE, "the bitmap needs %llu bytes",
			       (unsigned long long)(words * 8));
	*bytes = words * 8;
	return 0;
}

/*
 * Turn every domain of @ioas on: 0, or -errno with every domain as it
 * was (the ones turned on are turned off again).  Under the fallback a
 * domain that cannot track stays off and is counted in nr_untracked.
 */
static int dirty_start_domains(struct core *core, struct ioas *ioas,
			       bool fallback, uint32_t *untracked,
			       struct ioasid_op *op)
{
	struct domain *d, *undo;
	int r = 0;

	*untracked = 0;
	for (d = core->domains; d; d = d->next) {
		if (d->ioas != ioas)
			continue;
		r = unit_tracks(core, d->unit) ?
		    core_ops(core)->set_dirty_tracking(d->be, true) :
		    -EOPNOTSUPP;
		if (r == 0) {
			d->tracking = true;
			continue;
		}
		if (r == -EOPNOTSUPP && fallback) {
			++*untracked;
			r = 0;
			continue;
		}
		break;
	}
	if (r == 0)
		return 0;
	for (undo = core->domains; undo != d; undo = undo->next)
		if (undo->ioas == ioas && undo->tracking) {
			core_ops(core)->set_dirty_tracking(undo->be, false);
			undo->tracking = false;
		}
	if (r == -EOPNOTSUPP && !core_ops(core)->set_dirty_tracking)
		return op_fail(op, EOPNOTSUPP, "domain %u of IOAS %u cannot "
			       "track dirty pages: the %s backend has no dirty "
			       "tracking (VFIO type1 knows only the pages it "
			       "pinned, not what devices wrote); nothing was "
			       "started; IOASID_DIRTY_START_FALLBACK reports "
			       "every mapped page as dirty", d->id, ioas->id,
			       core_ops(core)->name);
	if (r == -EOPNOTSUPP)
		return op_fail(op, EOPNOTSUPP, "domain %u of IOAS %u cannot "
			       "track dirty pages: its IOMMU %s has no dirty "
			       "tracking (nothing was started; "
			       "IOASID_DIRTY_START_FALLBACK reports its pages "
			       "as always dirty)", d->id, ioas->id,
			       d->unit->info.name);
	return op_fail(op, -r, "cannot start dirty tracking on domain %u of "
		       "IOAS %u: %s (nothing was started)", d->id, ioas->id,
		       strerror(-r));
}

int domain_dirty_start(struct session *s, struct ioas *ioas,
		       struct ioasid_op *op)
{
	bool fallback = op->flags & IOASID_DIRTY_START_FALLBACK;
	uint32_t untracked;
	int r;

	if (op->flags & ~(uint32_t)IOASID_DIRTY_START_FALLBACK)
		return op_fail(op, EOPNOTSUPP, "unknown dirty start flags "
			       "0x%x", op->flags);
	if (ioas->dirty_on)
		return op_fail(op, EBUSY, "dirty tracking is already on for "
			       "IOAS %u (stop it first)", ioas->id);
	r = dirty_start_domains(s->core, ioas, fallback, &untracked, op);
	if (r < 0)
		return r;
	ioas->dirty_on = true;
	ioas->dirty_fallback = fallback;
	ioas->nr_untracked = untracked;
	info(s->core->log, "IOAS %u: dirty tracking on%s", ioas->id,
	     untracked ? " (some domains report every page dirty)" : "");
	return 0;
}

int domain_dirty_stop(struct session *s, struct ioas *ioas,
		      struct ioasid_op *op)
{
	struct core *core = s->core;
	int r;

	if (op->flags)
		return op_fail(op, EOPNOTSUPP, "unknown dirty stop flags "
			       "0x%x", op->flags);
	if (!ioas->dirty_on)
		return op_fail(op, EINVAL, "dirty tracking is not on for IOAS "
			       "%u", ioas->id);
	for (struct domain *d = core->domains; d; d = d->next) {
		if (d->ioas != ioas || !d->tracking)
			continue;
		r = core_ops(core)->set_dirty_tracking(d->be, false);
		if (r < 0)	/* it keeps tracking, nobody reads it */
			warn(core->log, "IOAS %u: domain %u keeps tracking "
			     "dirty pages: %s", ioas->id, d->id, strerror(-r));
		d->tracking = false;
	}
	ioas->dirty_on = false;
	ioas->dirty_fallback = false;
	ioas->nr_untracked = 0;
	return 0;
}

int domain_dirty_read(struct session *s, struct ioas *ioas,
		      struct ioasid_op *op)
{
	bool clear = !(op->flags & IOASID_DIRTY_NO_CLEAR), any = false;
	struct core *core = s->core;
	uint64_t bytes = 0;
	int r;

	r = check_dirty_args(op, &bytes);
	if (r < 0)
		return r;
	if (!ioas->dirty_on)
		return op_fail(op, EINVAL, "dirty tracking is not on for IOAS "
			       "%u (ioasid_dirty_start() first)", ioas->id);
	/* the bitmap is the OR of every domain's */
	memset(op->out, 0, bytes);
	for (struct domain *d = core->domains; d && r == 0; d = d->next) {
		if (d->ioas != ioas || !d->tracking)
			continue;
		any = true;
		r = core_ops(core)->read_dirty(d->be, op->iova, op->length,
					       op->out, clear);
	}
	if (r == 0 && ioas->nr_untracked) {
		any = true;
		r = ioas_mark_mapped(ioas, op->iova, op->length, op->out);
	}
	if (r < 0)
		return op_fail(op, -r, "reading dirty bits failed: %s",
			       strerror(-r));
	op->out_len = (uint32_t)bytes;
	op->out_bytes = any;
	return 0;
}
