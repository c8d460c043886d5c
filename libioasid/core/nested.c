/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nested tables (nested.h): allocation over a nest-parent IOAS with the
 * vendor's stage-1 data, attach, invalidation with an error per entry,
 * listing, destroy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/device.h"
#include "core/domain.h"
#include "core/ioas.h"
#include "core/iopf.h"
#include "core/nested.h"
#include "core/viommu.h"
#include "util/macros.h"

/* Most entries one invalidation request may carry. */
#define NESTED_INVAL_MAX	4096

/* The size of @type's data, 0 for a type the core does not know. */
static uint32_t data_size(uint32_t type)
{
	switch (type) {
	case IOASID_NESTED_VTD_S1:
		return sizeof(struct ioasid_nested_vtd_s1);
	case IOASID_NESTED_SELFTEST:
		return sizeof(struct ioasid_nested_selftest);
	default:
		return 0;
	}
}

/* Trailing bytes past what we know must be zero (E2BIG otherwise). */
static bool tail_zero(const void *data, uint32_t known, uint32_t len)
{
	const unsigned char *p = data;

	for (uint32_t i = known; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static int check_vtd_s1(const struct ioasid_nested_vtd_s1 *s1,
			struct ioasid_op *op)
{
	const uint64_t known = IOASID_VTD_S1_SRE | IOASID_VTD_S1_EAFE |
			       IOASID_VTD_S1_WPE;

	if (s1->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "unknown VT-d stage-1 flags "
			       "0x%llx", (unsigned long long)(s1->flags & ~known));
	if (s1->__reserved)
		return op_fail(op, EOPNOTSUPP, "VT-d stage-1 data: reserved "
			       "field is not zero");
	if (s1->addr_width != 48 && s1->addr_width != 57)
		return op_fail(op, EINVAL, "VT-d stage-1 address width %u: "
			       "must be 48 (4 levels) or 57 (5 levels)",
			       s1->addr_width);
	if (!IS_ALIGNED(s1->pgtbl_addr, SZ_4K) ||
	    s1->pgtbl_addr >> 52)
		return op_fail(op, EINVAL, "VT-d stage-1 root 0x%llx: must be "
			       "4 KiB aligned and below 2^52",
			       (unsigned long long)s1->pgtbl_addr);
	return 0;
}

/* The vendor data: its type known, its size right, its fields sane. */
static int check_data(struct ioasid_op *op, void *copy)
{
	uint32_t size = data_size(op->mode);
	const struct ioasid_nested_selftest *st = copy;

	if (!size)
		return op_fail(op, EOPNOTSUPP, "unknown nested table type %u",
			       op->mode);
	if (!op->in || op->in_len < size)
		return op_fail(op, EINVAL, "nested table type %u needs %u bytes "
			       "of data, got %u", op->mode, size, op->in_len);
	if (!tail_zero(op->in, size, op->in_len))
		return op_fail(op, E2BIG, "nested table data: %u bytes past the "
			       "%u this type has are not zero", op->in_len - size,
			       size);
	memcpy(copy, op->in, size);
	if (op->mode == IOASID_NESTED_VTD_S1)
		return check_vtd_s1(copy, op);
	if (st->__reserved)
		return op_fail(op, EOPNOTSUPP, "selftest data: reserved field "
			       "is not zero");
	return 0;
}

static int check_alloc(struct session *s, struct ioas *parent,
		       struct device *dev, struct ioasid_op *op)
{
	struct core *core = s->core;
	int r;

	if (op->flags)
		return op_fail(op, EOPNOTSUPP, "unknown nested table flags 0x%x",
			       op->flags);
	/* a nested table is an address space too: max_ioas counts it */
	r = core_space_quota(s, op);
	if (r < 0)
		return r;
	if (!(parent->flags & IOASID_IOAS_NEST_PARENT))
		return op_fail(op, EINVAL, "IOAS %u is not a nesting parent: "
			       "allocate it with IOASID_IOAS_NEST_PARENT",
			       parent->id);
	if (!dev)
		return device_not_bound(op, op->dev_id);
	if (!core_ops(core)->nested_alloc)
		return op_fail(op, EOPNOTSUPP, "the %s backend has no nested "
			       "translation", core_ops(core)->name);
	if (!(dev->unit->info.flags & IOASID_IOMMU_NESTING))
		return op_fail(op, EOPNOTSUPP, "IOMMU %s of device %s has no "
			       "nested translation", dev->unit->info.name,
			       dev->inv->info.name);
	return 0;
}

/* On vIOMMU @v: its stage 2, held once more; else the parent's domain. */
static int get_s2(struct session *s, struct device *dev, struct ioas *parent,
		  struct viommu *v, struct domain **s2, struct ioasid_op *op)
{
	if (!v)
		return domain_get_parent(s, dev, parent, s2, op);
	v->s2->nr_nested++;
	*s2 = v->s2;
	return 0;
}

static int be_alloc(struct core *core, struct nested *n, struct device *dev,
		    const void *data, struct ioasid_op *op, char *why,
		    size_t whylen)
{
	if (n->viommu)
		return core_ops(core)->viommu_nested_alloc(n->viommu->be,
							   dev->be, op->mode,
							   data,
							   data_size(op->mode),
							   n->id, &n->be, why,
							   whylen);
	return core_ops(core)->nested_alloc(n->s2->be, dev->be, op->mode, data,
					    data_size(op->mode), n->id, &n->be,
					    why, whylen);
}

/* A nested table over @parent, on vIOMMU @v or none (checks done). */
static int nested_create(struct session *s, struct ioas *parent,
			 struct device *dev, struct viommu *v,
			 struct ioasid_op *op)
{
	union {
		struct ioasid_nested_vtd_s1 vtd;
		struct ioasid_nested_selftest st;
	} data = { 0 };
	char why[IOASID_ERRMSG_MAX] = "";
	struct core *core = s->core;
	struct nested *n;
	int r;

	r = check_data(op, &data);
	if (r < 0)
		return r;
	n = calloc(1, sizeof(*n));
	if (!n)
		return op_fail(op, ENOMEM, "out of memory");
	r = get_s2(s, dev, parent, v, &n->s2, op);
	if (r < 0) {
		free(n);
		return r;
	}
	n->id = core_alloc_id(core);
	n->viommu = v;
	r = be_alloc(core, n, dev, &data, op, why, sizeof(why));
	if (r < 0) {
		domain_put_parent(core, n->s2);
		free(n);
		return op_fail(op, -r, "cannot allocate a nested table over IOAS "
			       "%u on %s: %s", parent->id, dev->unit->info.name,
			       why[0] ? why : strerror(-r));
	}
	n->owner = s;
	n->parent = parent;
	n->type = op->mode;
	n->dev_id = dev->dev_id;
	if (op->mode == IOASID_NESTED_VTD_S1)
		n->vtd = data.vtd;
	else
		n->st = data.st;
	n->next = core->nested;
	core->nested = n;
	parent->nr_nested++;
	s->nr_nested++;
	if (v)
		v->nr_nested++;
	op->out_id = n->id;
	return 0;
}

int nested_alloc(struct session *s, struct ioas *parent, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);
	int r;

	r = check_alloc(s, parent, dev, op);
	if (r < 0)
		return r;
	return nested_create(s, parent, dev, NULL, op);
}

int nested_alloc_viommu(struct session *s, struct ioas *unused,
			struct ioasid_op *op)
{
	struct viommu *v = viommu_find(s, op->ioas_id2);
	struct device *dev = device_find_bound(s, op->dev_id);
	int r;

	if (!v)
		return op_fail(op, ENOENT, "no vIOMMU %u", op->ioas_id2);
	r = check_alloc(s, v->parent, dev, op);
	if (r < 0)
		return r;
	if (dev->unit != v->unit)
		return op_fail(op, EINVAL, "device %s is behind IOMMU %s, "
			       "vIOMMU %u slices %s", dev->inv->info.name,
			       dev->unit->info.name, v->id, v->unit->info.name);
	if (!core_ops(s->core)->viommu_nested_alloc)
		return op_fail(op, EOPNOTSUPP, "the %s backend has no nested "
			       "tables on vIOMMUs", core_ops(s->core)->name);
	return nested_create(s, v->parent, dev, v, op);
}

static int nested_not_found(struct ioasid_op *op, uint32_t id)
{
	return op_fail(op, ENOENT, "no nested table %u", id);
}

static void nested_free(struct core *core, struct nested *n)
{
	struct nested **p = &core->nested;

	while (*p && *p != n)
		p = &(*p)->next;
	if (*p)
		*p = n->next;
	iopf_target_gone(core, n->fq);
	core_ops(core)->nested_free(n->be);
	n->parent->nr_nested--;
	n->owner->nr_nested--;
	if (n->viommu)
		n->viommu->nr_nested--;
	domain_put_parent(core, n->s2);
	free(n);
}

int nested_destroy(struct session *s, struct ioas *unused,
		   struct ioasid_op *op)
{
	struct nested *n = nested_find(s, op->ioas_id2);

	if (!n)
		return nested_not_found(op, op->ioas_id2);
	if (n->nr_devices)
		return op_fail(op, EBUSY, "nested table %u still has %u "
			       "device(s) attached", n->id, n->nr_devices);
	if (n->nr_pasids)
		return op_fail(op, EBUSY, "nested table %u still has %u device "
			       "PASID(s) attached", n->id, n->nr_pasids);
	nested_free(s->core, n);
	return 0;
}

int nested_attach(struct session *s, struct ioas *unused,
		  struct ioasid_op *op)
{
	const uint32_t known = IOASID_ATTACH_NO_SNOOP_UNUSED |
			       IOASID_NESTED_ATTACH_REPLACE;
	struct device *dev = device_find_bound(s, op->dev_id);
	struct nested *n = nested_find(s, op->ioas_id2);
	bool replace;

	if (!dev)
		return device_not_bound(op, op->dev_id);
	if (!n)
		return nested_not_found(op, op->ioas_id2);
	if (op->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "unknown attach flags 0x%x",
			       op->flags & ~known);
	if (n->viommu && !viommu_vdevice_of(n->viommu, dev))
		return op_fail(op, ENOENT, "device %s has no vDEVICE on vIOMMU "
			       "%u, which nested table %u is on",
			       dev->inv->info.name, n->viommu->id, n->id);
	replace = op->flags & IOASID_NESTED_ATTACH_REPLACE;
	op->flags &= ~(uint32_t)IOASID_NESTED_ATTACH_REPLACE;
	return domain_attach_nested(s, dev, n, replace, op);
}

/* 0, or the -errno that refuses entry @e (reason in @op). */
static int check_inval(const struct ioasid_nested_inval *e, uint32_t i,
		       struct ioasid_op *op)
{
	const uint32_t known = IOASID_NESTED_INVAL_ALL |
			       IOASID_NESTED_INVAL_LEAF;

	if (e->flags & ~known)
		return op_fail(op, EOPNOTSUPP, "entry %u: unknown flags 0x%x",
			       i, e->flags & ~known);
	if (e->__reserved)
		return op_fail(op, EOPNOTSUPP, "entry %u: reserved field is "
			       "not zero", i);
	if (e->flags & IOASID_NESTED_INVAL_ALL) {
		if (e->addr || e->npages)
			return op_fail(op, EINVAL, "entry %u: invalidating "
				       "everything takes no range", i);
		return 0;
	}
	if (!e->npages)
		return op_fail(op, EINVAL, "entry %u: no pages", i);
	if (!IS_ALIGNED(e->addr, SZ_4K))
		return op_fail(op, EINVAL, "entry %u: address 0x%llx is not "
			       "4 KiB aligned", i, (unsigned long long)e->addr);
	if (e->npages > (UINT64_MAX >> 12) ||
	    e->addr + ((e->npages << 12) - 1) < e->addr)
		return op_fail(op, EOVERFLOW, "entry %u: range wraps", i);
	return 0;
}

/*
 * Entries in order; the first refused (by the core's checks or the
 * backend) stops the request: OUT_ID says how many were done, each done
 * entry's error is 0, the failing one's its -errno, those after it
 * -ECANCELED (not tried).
 */
int nested_invalidate(struct session *s, struct ioas *unused,
		      struct ioasid_op *op)
{
	const struct ioasid_nested_inval *v = op->in;
	struct nested *n = nested_find(s, op->ioas_id2);
	char why[IOASID_ERRMSG_MAX] = "";
	int32_t *errors = op->out;
	uint32_t nr, valid, done = 0;
	int r = 0, bad = 0;

	if (!n)
		return nested_not_found(op, op->ioas_id2);
	if (!v || !op->in_len || op->in_len % sizeof(*v))
		return op_fail(op, EINVAL, "invalidation data must be a "
			       "non-empty array of %zu-byte entries, got %u "
			       "bytes", sizeof(*v), op->in_len);
	nr = op->in_len / sizeof(*v);
	if (nr > NESTED_INVAL_MAX)
		return op_fail(op, E2BIG, "%u invalidation entries: at most %u "
			       "per request", nr, NESTED_INVAL_MAX);
	if (op->out_cap < nr * sizeof(*errors))
		return op_fail(op, EMSGSIZE, "room for %u entry errors needed",
			       nr);
	for (valid = 0; valid < nr; valid++) {
		bad = check_inval(&v[valid], valid, op);
		if (bad < 0)
			break;
	}
	if (valid)
		r = core_ops(s->core)->nested_invalidate(n->be, v, valid,
							 &done, why,
							 sizeof(why));
	if (r == 0 && done < valid)
		r = -EIO;	/* a backend that stopped without saying why */
	n->nr_invalidations += done;
	for (uint32_t i = 0; i < nr; i++)
		errors[i] = i < done ? 0 : -ECANCELED;
	op->out_len = nr * sizeof(*errors);
	op->out_id = done;
	if (r < 0) {
		errors[done] = r;
		return op_fail(op, -r, "entry %u: %s", done,
			       why[0] ? why : strerror(-r));
	}
	if (bad < 0) {
		errors[done] = bad;
		return bad;	/* check_inval's reason */
	}
	return 0;
}

int nested_list(struct session *s, struct ioas *parent, struct ioasid_op *op)
{
	struct ioasid_nested_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), k = 0;

	for (struct nested *n = s->core->nested; n; n = n->next) {
		if (n->parent != parent)
			continue;
		if (k < cap) {
			out[k] = (struct ioasid_nested_info){
				.size = sizeof(*out),
				.nested_id = n->id,
				.ioas_id = parent->id,
				.domain_id = n->s2->id,
				.type = n->type,
				.nr_devices = n->nr_devices,
				.addr_width = n->vtd.addr_width,
				.pgtbl_addr = n->vtd.pgtbl_addr,
				.nr_invalidations = n->nr_invalidations,
			};
			snprintf(out[k].iommu, sizeof(out[k].iommu), "%s",
				 n->s2->unit->info.name);
		}
		k++;
	}
	return op_out_array(op, k, sizeof(*out));
}

void nested_release_session(struct core *core, struct session *s)
{
	struct nested *n = core->nested, *next;

	for (; n; n = next) {
		next = n->next;
		if (n->owner == s)
			nested_free(core, n);
	}
}
