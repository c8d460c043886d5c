/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PASIDs: a bound device's PASIDs attached to domains of IOASes (the
 * device's own requests, without a PASID, are domain.c's attachment).
 *
 * A PASID attachment takes a domain of the IOAS like the device's own:
 * an existing one of the coherency class the IOAS's snoop mode asks for
 * that the backend accepts for the PASID, else a new one; it holds the
 * domain (nr_devices counts attachments) and the IOAS (nr_pasids: no
 * destroy while one is attached).  On a nested table the PASID holds
 * the table (nr_pasids: no destroy while one is attached) and its
 * stage-2 domain, and counts on the parent IOAS.  A device that may do
 * no-snoop DMA gets PASIDs only in domains that enforce snooping, so the
 * coherency verdict (coherency.c) stays the one of its own attachment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/coherency.h"
#include "core/device.h"
#include "core/domain.h"
#include "core/ioas.h"
#include "core/nested.h"
#include "core/pasid.h"
#include "core/viommu.h"
#include "util/log.h"

static struct pasid_att *find_att(struct device *dev, uint32_t pasid)
{
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		if (dev->pasids[i].pasid == pasid)
			return &dev->pasids[i];
	return NULL;
}

/* Can @dev's @pasid be attached at all: backend, IOMMU, device, number. */
static int check_pasid(struct core *core, const struct device *dev,
		       uint32_t pasid, struct ioasid_op *op)
{
	uint32_t bits = dev->inv->info.pasid_bits;

	if (!core_ops(core)->pasid_attach)
		return op_fail(op, EOPNOTSUPP, "the %s backend cannot attach "
			       "PASIDs", core_ops(core)->name);
	if (!(dev->unit->info.flags & IOASID_IOMMU_PASID))
		return op_fail(op, EOPNOTSUPP, "device %s: its IOMMU %s does "
			       "not support PASIDs", dev->inv->info.name,
			       dev->unit->info.name);
	if (!bits)
		return op_fail(op, EOPNOTSUPP, "device %s has no PASID "
			       "capability (no PCIe PASID extended capability, "
			       "or one its IOMMU cannot use)",
			       dev->inv->info.name);
	if (pasid == 0)
		return op_fail(op, EINVAL, "PASID 0 stands for the device's "
			       "requests without a PASID: attach the device "
			       "itself (ioasid_device_attach)");
	if (bits < 32 && pasid >> bits)
		return op_fail(op, EINVAL, "PASID %u is beyond device %s's "
			       "%u-bit PASID width", pasid,
			       dev->inv->info.name, bits);
	return 0;
}

/* The domain class the PASID's domain in @ioas must have. */
static int pasid_enforce(const struct device *dev, const struct ioas *ioas,
			 bool *enforce, struct ioasid_op *op)
{
	int r = domain_want_enforce(dev, ioas, enforce, op);

	if (r < 0)
		return r;
	if (!*enforce && coherency_may_nosnoop(dev))
		return op_fail(op, EPERM, "device %s may do no-snoop DMA: its "
			       "PASIDs go only into domains that enforce "
			       "snooping, which IOAS %u's does not (snoop mode, "
			       "or its IOMMU %s has no snoop control)",
			       dev->inv->info.name, ioas->id,
			       dev->unit->info.name);
	if (!(dev->inv->info.flags & IOASID_DEVICE_TRANSLATES) &&
	    !(ioas->flags & IOASID_IOAS_IDENTITY))
		return op_fail(op, EOPNOTSUPP, "device %s does not support IOVA "
			       "translation: it can only join an identity "
			       "IOAS", dev->inv->info.name);
	return 0;
}

/* The backend's PASID calls exclude the device's DMA (backend.h). */
static int join_pasid(struct core *core, struct device *dev,
		      struct be_domain *d, void *arg)
{
	int r;

	pthread_rwlock_wrlock(&dev->lock);
	r = core_ops(core)->pasid_attach(dev->be, *(uint32_t *)arg, d);
	pthread_rwlock_unlock(&dev->lock);
	return r;
}

static int be_pasid_detach(struct core *core, struct device *dev,
			   uint32_t pasid)
{
	int r;

	pthread_rwlock_wrlock(&dev->lock);
	r = core_ops(core)->pasid_detach(dev->be, pasid);
	pthread_rwlock_unlock(&dev->lock);
	return r;
}

/* Put the PASID in a domain of @ioas: 0 and *@out, else nothing changed. */
static int pasid_join(struct session *s, struct device *dev, uint32_t pasid,
		      struct ioas *ioas, struct domain **out,
		      struct ioasid_op *op)
{
	struct domain_join join = { .fn = join_pasid, .arg = &pasid };
	bool enforce = false;
	int r = pasid_enforce(dev, ioas, &enforce, op);

	if (r < 0)
		return r;
	return domain_join_any(s->core, dev, ioas, enforce, &join, out, op);
}

/* The device @op names, bound by @s, and its PASID checked. */
static int pasid_device(struct session *s, struct ioasid_op *op,
			struct device **dev)
{
	uint32_t known = op->cmd == IOASID_CMD_DEVICE_PASID_ATTACH_NESTED ?
			 IOASID_NESTED_ATTACH_REPLACE : 0;

	*dev = device_find_bound(s, op->dev_id);
	if (!*dev)
		return device_not_bound(op, op->dev_id);
	if (op->cmd != IOASID_CMD_DEVICE_PASID_DETACH && (op->flags & ~known))
		return op_fail(op, EOPNOTSUPP, "unknown PASID attach flags "
			       "0x%x", op->flags & ~known);
	return check_pasid(s->core, *dev, op->mode, op);
}

/* What attachment @att holds: its IOAS, its domain, its nested table. */
static void att_release(struct core *core, struct pasid_att *att)
{
	att->ioas->nr_pasids--;
	if (att->nested)
		att->nested->nr_pasids--;
	domain_put(core, att->domain);
}

/* Room for one more PASID of @dev (first: after the backend, no failing). */
static int att_room(struct device *dev, struct ioasid_op *op)
{
	struct pasid_att *v;

	if (dev->nr_pasids >= PASID_MAX_PER_DEVICE)
		return op_fail(op, ENOSPC, "device %s has %u PASIDs attached, "
			       "the most one device may have", dev->inv->info.name,
			       dev->nr_pasids);
	v = realloc(dev->pasids, (dev->nr_pasids + 1) * sizeof(*v));
	if (!v)
		return op_fail(op, ENOMEM, "out of memory");
	dev->pasids = v;
	return 0;
}

static const char *att_where(const struct pasid_att *att, char *buf,
			     size_t len)
{
	if (att->nested)
		snprintf(buf, len, "nested table %u", att->nested->id);
	else
		snprintf(buf, len, "IOAS %u", att->ioas->id);
	return buf;
}

int pasid_attach(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct pasid_att *att;
	struct domain *d = NULL;
	struct device *dev;
	char where[48];
	int r = pasid_device(s, op, &dev);

	if (r < 0)
		return r;
	att = find_att(dev, op->mode);
	if (att)
		return op_fail(op, EBUSY, "PASID %u of device %s is already "
			       "attached to %s (use replace)", op->mode,
			       dev->inv->info.name,
			       att_where(att, where, sizeof(where)));
	/* room first: after the backend's attach nothing may fail */
	r = att_room(dev, op);
	if (r < 0)
		return r;
	r = pasid_join(s, dev, op->mode, ioas, &d, op);
	if (r < 0)
		return r;
	dev->pasids[dev->nr_pasids++] = (struct pasid_att){
		.pasid = op->mode, .ioas = ioas, .domain = d,
	};
	ioas->nr_pasids++;
	info(s->core->log, "device %s PASID %u on IOAS %u domain %u",
	     dev->inv->info.name, op->mode, ioas->id, d->id);
	return 0;
}

int pasid_replace(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct pasid_att *att;
	struct domain *d = NULL;
	struct device *dev;
	int r = pasid_device(s, op, &dev);

	if (r < 0)
		return r;
	att = find_att(dev, op->mode);
	if (!att)
		return op_fail(op, EINVAL, "PASID %u of device %s is not "
			       "attached: nothing to replace", op->mode,
			       dev->inv->info.name);
	/* from a nested table to its parent itself is a move too */
	if (att->ioas == ioas && !att->nested)
		return 0;
	/* the backend moves the PASID without a window */
	r = pasid_join(s, dev, op->mode, ioas, &d, op);
	if (r < 0)
		return r;
	att_release(s->core, att);
	*att = (struct pasid_att){
		.pasid = op->mode, .ioas = ioas, .domain = d,
	};
	ioas->nr_pasids++;
	info(s->core->log, "device %s PASID %u moved to IOAS %u domain %u",
	     dev->inv->info.name, op->mode, ioas->id, d->id);
	return 0;
}

/* The backend's nested attach excludes the device's DMA (backend.h). */
static int be_pasid_attach_nested(struct core *core, struct device *dev,
				  uint32_t pasid, struct nested *n)
{
	int r;

	pthread_rwlock_wrlock(&dev->lock);
	r = core_ops(core)->pasid_attach_nested(dev->be, pasid, n->be);
	pthread_rwlock_unlock(&dev->lock);
	return r;
}

/* May @dev's PASIDs use nested table @n at all (nothing changes). */
static int check_nested(struct core *core, const struct device *dev,
			const struct nested *n, struct ioasid_op *op)
{
	bool enforce = false;
	int r;

	if (!core_ops(core)->pasid_attach_nested)
		return op_fail(op, EOPNOTSUPP, "the %s backend cannot attach "
			       "PASIDs to nested tables", core_ops(core)->name);
	if (n->viommu && !viommu_vdevice_of(n->viommu, dev))
		return op_fail(op, ENOENT, "device %s has no vDEVICE on vIOMMU "
			       "%u, which nested table %u is on",
			       dev->inv->info.name, n->viommu->id, n->id);
	if (n->s2->unit != dev->unit)
		return op_fail(op, EINVAL, "device %s cannot use nested table "
			       "%u: it was made for IOMMU %s, the device is "
			       "behind %s", dev->inv->info.name, n->id,
			       n->s2->unit->info.name, dev->unit->info.name);
	r = pasid_enforce(dev, n->parent, &enforce, op);
	if (r < 0)
		return r;
	if (n->s2->enforce != enforce)
		return op_fail(op, EINVAL, "nested table %u: its stage-2 domain "
			       "%u %s cache coherency and IOAS %u's snoop mode "
			       "now asks otherwise", n->id, n->s2->id,
			       n->s2->enforce ? "enforces" : "does not enforce",
			       n->parent->id);
	return 0;
}

/* Put the PASID on @n (checked): 0, else nothing changed. */
static int join_nested(struct core *core, struct device *dev, uint32_t pasid,
		       struct nested *n, struct ioasid_op *op)
{
	int r = be_pasid_attach_nested(core, dev, pasid, n);

	if (r == -EINVAL)
		return op_fail(op, EINVAL, "device %s cannot put PASID %u on "
			       "nested table %u: the IOMMU refused the table "
			       "for it", dev->inv->info.name, pasid, n->id);
	if (r < 0)
		return op_fail(op, -r, "attaching PASID %u of device %s to "
			       "nested table %u failed: %s", pasid,
			       dev->inv->info.name, n->id, strerror(-r));
	n->s2->nr_devices++;
	n->nr_pasids++;
	n->parent->nr_pasids++;
	return 0;
}

int pasid_attach_nested(struct session *s, struct ioas *unused,
			struct ioasid_op *op)
{
	bool replace = op->flags & IOASID_NESTED_ATTACH_REPLACE;
	struct pasid_att *att;
	struct device *dev;
	struct nested *n;
	char where[48];
	int r = pasid_device(s, op, &dev);

	if (r < 0)
		return r;
	n = nested_find(s, op->ioas_id2);
	if (!n)
		return op_fail(op, ENOENT, "no nested table %u", op->ioas_id2);
	att = find_att(dev, op->mode);
	if (!replace && att)
		return op_fail(op, EBUSY, "PASID %u of device %s is already "
			       "attached to %s (use replace)", op->mode,
			       dev->inv->info.name,
			       att_where(att, where, sizeof(where)));
	if (replace && !att)
		return op_fail(op, EINVAL, "PASID %u of device %s is not "
			       "attached: nothing to replace", op->mode,
			       dev->inv->info.name);
	if (att && att->nested == n)
		return 0;
	r = check_nested(s->core, dev, n, op);
	if (r == 0 && !att)
		r = att_room(dev, op);
	/* the backend moves an attached PASID without a window */
	if (r == 0)
		r = join_nested(s->core, dev, op->mode, n, op);
	if (r < 0)
		return r;
	if (att)
		att_release(s->core, att);
	else
		att = &dev->pasids[dev->nr_pasids++];
	*att = (struct pasid_att){
		.pasid = op->mode, .ioas = n->parent, .domain = n->s2,
		.nested = n,
	};
	info(s->core->log, "device %s PASID %u on nested table %u (IOAS %u "
	     "domain %u)", dev->inv->info.name, op->mode, n->id,
	     n->parent->id, n->s2->id);
	return 0;
}

static void drop_att(struct core *core, struct device *dev,
		     struct pasid_att *att)
{
	att_release(core, att);
	*att = dev->pasids[--dev->nr_pasids];
}

int pasid_detach(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct pasid_att *att;
	struct device *dev;
	char where[48];
	int r = pasid_device(s, op, &dev);

	if (r < 0)
		return r;
	att = find_att(dev, op->mode);
	if (!att)
		return op_fail(op, EINVAL, "PASID %u of device %s is not "
			       "attached", op->mode, dev->inv->info.name);
	r = be_pasid_detach(s->core, dev, op->mode);
	if (r < 0)
		return op_fail(op, -r, "PASID %u of device %s stays attached "
			       "to %s: the backend could not detach it: %s",
			       op->mode, dev->inv->info.name,
			       att_where(att, where, sizeof(where)),
			       strerror(-r));
	drop_att(s->core, dev, att);
	return 0;
}

int pasid_list(struct session *s, struct ioas *unused, struct ioasid_op *op)
{
	struct ioasid_pasid_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out);
	struct device *dev = device_find_bound(s, op->dev_id);

	/* an observer (ioasidctl) sees every session's, read-only */
	for (uint32_t i = 0; !dev && s->observer && op->dev_id &&
			     i < s->core->nr_devices; i++)
		if (s->core->devices[i].dev_id == op->dev_id)
			dev = &s->core->devices[i];
	if (!dev)
		return device_not_bound(op, op->dev_id);
	for (uint32_t i = 0; i < dev->nr_pasids && i < cap; i++)
		out[i] = (struct ioasid_pasid_info){
			.size = sizeof(*out),
			.pasid = dev->pasids[i].pasid,
			.ioas_id = dev->pasids[i].ioas->id,
			.domain_id = dev->pasids[i].domain->id,
			.nested_id = dev->pasids[i].nested ?
				     dev->pasids[i].nested->id : 0,
		};
	return op_out_array(op, dev->nr_pasids, sizeof(*out));
}

void pasid_release_device(struct core *core, struct device *dev)
{
	while (dev->nr_pasids) {
		struct pasid_att *att = &dev->pasids[dev->nr_pasids - 1];
		int r = be_pasid_detach(core, dev, att->pasid);

		if (r < 0)
			err(core->log, "device %s PASID %u stays attached in "
			    "the kernel: %s", dev->inv->info.name, att->pasid,
			    strerror(-r));
		drop_att(core, dev, att);
	}
	free(dev->pasids);
	dev->pasids = NULL;
}
