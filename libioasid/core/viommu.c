/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vIOMMUs (viommu.h): allocation over a nest-parent IOAS, vDEVICEs,
 * invalidation of device caches by virtual ID with an error per entry,
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
#include "core/viommu.h"
#include "util/macros.h"

/* Most entries one invalidation request may carry. */
#define VIOMMU_INVAL_MAX	4096
/* The selftest mock's device cache entries (MOCK_DEV_CACHE_ID_MAX). */
#define SELFTEST_CACHE_ID_MAX	3

static int check_alloc(struct session *s, struct ioas *parent,
		       struct device *dev, struct ioasid_op *op)
{
	const struct backend_ops *ops = core_ops(s->core);
	int r;

	if (op->flags)
		return op_fail(op, EOPNOTSUPP, "unknown vIOMMU flags 0x%x",
			       op->flags);
	if (op->mode != IOASID_VIOMMU_SIM && op->mode != IOASID_VIOMMU_SELFTEST)
		return op_fail(op, EOPNOTSUPP, "unknown vIOMMU type %u",
			       op->mode);
	r = core_space_quota(s, op);
	if (r < 0)
		return r;
	if (!(parent->flags & IOASID_IOAS_NEST_PARENT))
		return op_fail(op, EINVAL, "IOAS %u is not a nesting parent: "
			       "allocate it with IOASID_IOAS_NEST_PARENT",
			       parent->id);
	if (!dev)
		return device_not_bound(op, op->dev_id);
	if (!ops->viommu_alloc)
		return op_fail(op, EOPNOTSUPP, "the %s backend has no vIOMMUs",
			       ops->name);
	if (!(dev->unit->info.flags & IOASID_IOMMU_NESTING))
		return op_fail(op, EOPNOTSUPP, "IOMMU %s of device %s has no "
			       "nested translation", dev->unit->info.name,
			       dev->inv->info.name);
	return 0;
}

int viommu_alloc(struct session *s, struct ioas *parent, struct ioasid_op *op)
{
	struct device *dev = device_find_bound(s, op->dev_id);
	char why[IOASID_ERRMSG_MAX] = "";
	struct core *core = s->core;
	struct viommu *v;
	int r;

	r = check_alloc(s, parent, dev, op);
	if (r < 0)
		return r;
	v = calloc(1, sizeof(*v));
	if (!v)
		return op_fail(op, ENOMEM, "out of memory");
	r = domain_get_parent(s, dev, parent, &v->s2, op);
	if (r < 0) {
		free(v);
		return r;
	}
	r = core_ops(core)->viommu_alloc(v->s2->be, dev->be, op->mode, &v->be,
					 why, sizeof(why));
	if (r < 0) {
		domain_put_parent(core, v->s2);
		free(v);
		return op_fail(op, -r, "cannot allocate a vIOMMU over IOAS %u "
			       "on %s: %s", parent->id, dev->unit->info.name,
			       why[0] ? why : strerror(-r));
	}
	v->id = core_alloc_id(core);
	v->owner = s;
	v->parent = parent;
	v->unit = dev->unit;
	v->type = op->mode;
	v->dev_id = dev->dev_id;
	v->next = core->viommus;
	core->viommus = v;
	parent->nr_viommus++;
	s->nr_viommus++;
	op->out_id = v->id;
	return 0;
}

static int viommu_not_found(struct ioasid_op *op, uint32_t id)
{
	return op_fail(op, ENOENT, "no vIOMMU %u", id);
}

static bool virt_id_used(const struct viommu *v, uint64_t virt_id)
{
	for (const struct vdevice *vd = v->vdevices; vd; vd = vd->next)
		if (vd->virt_id == virt_id)
			return true;
	return false;
}

static int check_vdevice(const struct viommu *v, const struct device *dev,
			 uint64_t virt_id, struct ioasid_op *op)
{
	if (dev->unit != v->unit)
		return op_fail(op, EINVAL, "device %s is behind IOMMU %s, "
			       "vIOMMU %u slices %s", dev->inv->info.name,
			       dev->unit->info.name, v->id, v->unit->info.name);
	if (dev->vdev)
		return op_fail(op, EEXIST, "device %s already has vDEVICE %u "
			       "(on vIOMMU %u)", dev->inv->info.name,
			       dev->vdev->id, dev->vdev->viommu->id);
	if (virt_id_used(v, virt_id))
		return op_fail(op, EEXIST, "virtual ID 0x%llx is taken on "
			       "vIOMMU %u", (unsigned long long)virt_id, v->id);
	if (v->type == IOASID_VIOMMU_SELFTEST && virt_id > UINT32_MAX)
		return op_fail(op, EINVAL, "virtual ID 0x%llx: a selftest "
			       "vIOMMU's invalidation names 32-bit IDs",
			       (unsigned long long)virt_id);
	return 0;
}

int viommu_vdevice_alloc(struct session *s, struct ioas *unused,
			 struct ioasid_op *op)
{
	struct viommu *v = viommu_find(s, op->ioas_id2);
	struct device *dev = device_find_bound(s, op->dev_id);
	char why[IOASID_ERRMSG_MAX] = "";
	struct vdevice *vd;
	int r;

	if (!v)
		return viommu_not_found(op, op->ioas_id2);
	if (!dev)
		return device_not_bound(op, op->dev_id);
	r = check_vdevice(v, dev, op->offset, op);
	if (r < 0)
		return r;
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return op_fail(op, ENOMEM, "out of memory");
	r = core_ops(s->core)->vdevice_alloc(v->be, dev->be, op->offset,
					     &vd->be, why, sizeof(why));
	if (r < 0) {
		free(vd);
		return op_fail(op, -r, "cannot give device %s virtual ID "
			       "0x%llx on vIOMMU %u: %s", dev->inv->info.name,
			       (unsigned long long)op->offset, v->id,
			       why[0] ? why : strerror(-r));
	}
	vd->id = core_alloc_id(s->core);
	vd->viommu = v;
	vd->dev = dev;
	vd->virt_id = op->offset;
	vd->next = v->vdevices;
	v->vdevices = vd;
	v->nr_vdevices++;
	dev->vdev = vd;
	op->out_id = vd->id;
	return 0;
}

static void vdevice_free(struct core *core, struct vdevice *vd)
{
	struct viommu *v = vd->viommu;
	struct vdevice **p = &v->vdevices;

	while (*p && *p != vd)
		p = &(*p)->next;
	if (*p)
		*p = vd->next;
	core_ops(core)->vdevice_free(vd->be);
	vd->dev->vdev = NULL;
	v->nr_vdevices--;
	free(vd);
}

static struct vdevice *vdevice_find(struct session *s, uint32_t id)
{
	for (struct viommu *v = s->core->viommus; id && v; v = v->next) {
		if (v->owner != s)
			continue;
		for (struct vdevice *vd = v->vdevices; vd; vd = vd->next)
			if (vd->id == id)
				return vd;
	}
	return NULL;
}

static void viommu_free(struct core *core, struct viommu *v)
{
	struct viommu **p = &core->viommus;

	while (*p && *p != v)
		p = &(*p)->next;
	if (*p)
		*p = v->next;
	core_ops(core)->viommu_free(v->be);
	v->parent->nr_viommus--;
	v->owner->nr_viommus--;
	domain_put_parent(core, v->s2);
	free(v);
}

static int destroy_viommu(struct session *s, struct ioasid_op *op)
{
	struct viommu *v = viommu_find(s, op->ioas_id2);

	if (!v)
		return viommu_not_found(op, op->ioas_id2);
	if (v->nr_vdevices || v->nr_nested)
		return op_fail(op, EBUSY, "vIOMMU %u still has %u vDEVICE(s) "
			       "and %u nested table(s)", v->id, v->nr_vdevices,
			       v->nr_nested);
	viommu_free(s->core, v);
	return 0;
}

int viommu_destroy(struct session *s, struct ioas *unused,
		   struct ioasid_op *op)
{
	struct vdevice *vd;

	if (op->mode == IOASID_VIOMMU_OBJ_VIOMMU)
		return destroy_viommu(s, op);
	if (op->mode != IOASID_VIOMMU_OBJ_VDEVICE)
		return op_fail(op, EOPNOTSUPP, "unknown vIOMMU object kind %u",
			       op->mode);
	vd = vdevice_find(s, op->ioas_id2);
	if (!vd)
		return op_fail(op, ENOENT, "no vDEVICE %u", op->ioas_id2);
	vdevice_free(s->core, vd);
	return 0;
}

static int check_range(const struct ioasid_viommu_inval *e, uint32_t i,
		       struct ioasid_op *op)
{
	if (e->cache_id)
		return op_fail(op, EINVAL, "entry %u: cache_id %u: a simulated "
			       "vIOMMU names a range, not a cache entry", i,
			       e->cache_id);
	if (e->flags & IOASID_VIOMMU_INVAL_ALL) {
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

static int check_cache_id(const struct ioasid_viommu_inval *e, uint32_t i,
			  struct ioasid_op *op)
{
	if (e->addr || e->npages)
		return op_fail(op, EINVAL, "entry %u: a selftest vIOMMU names "
			       "a cache entry, not a range", i);
	if (!(e->flags & IOASID_VIOMMU_INVAL_ALL) &&
	    e->cache_id > SELFTEST_CACHE_ID_MAX)
		return op_fail(op, EINVAL, "entry %u: cache_id %u: the mock "
			       "device has entries 0-%u", i, e->cache_id,
			       SELFTEST_CACHE_ID_MAX);
	return 0;
}

/* 0, or the -errno that refuses entry @e (reason in @op). */
static int check_inval(const struct viommu *v,
		       const struct ioasid_viommu_inval *e, uint32_t i,
		       struct ioasid_op *op)
{
	bool named = false;

	if (e->flags & ~(uint32_t)IOASID_VIOMMU_INVAL_ALL)
		return op_fail(op, EOPNOTSUPP, "entry %u: unknown flags 0x%x",
			       i, e->flags & ~(uint32_t)IOASID_VIOMMU_INVAL_ALL);
	for (const struct vdevice *vd = v->vdevices; vd; vd = vd->next)
		named |= vd->virt_id == e->virt_id;
	if (!named)
		return op_fail(op, EINVAL, "entry %u: no device has virtual "
			       "ID 0x%llx on vIOMMU %u", i,
			       (unsigned long long)e->virt_id, v->id);
	if (v->type == IOASID_VIOMMU_SELFTEST)
		return check_cache_id(e, i, op);
	return check_range(e, i, op);
}

/* How many of @nr entries the core lets through; *@bad: why it stopped. */
static uint32_t valid_prefix(const struct viommu *v,
			     const struct ioasid_viommu_inval *e, uint32_t nr,
			     int *bad, struct ioasid_op *op)
{
	uint32_t i;

	*bad = 0;
	for (i = 0; i < nr; i++) {
		*bad = check_inval(v, &e[i], i, op);
		if (*bad < 0)
			break;
	}
	return i;
}

/*
 * Entries in order; the first refused (by the core's checks or the
 * backend) stops the request: OUT_ID says how many were done, each done
 * entry's error is 0, the failing one's its -errno, those after it
 * -ECANCELED (not tried).
 */
int viommu_invalidate(struct session *s, struct ioas *unused,
		      struct ioasid_op *op)
{
	const struct ioasid_viommu_inval *e = op->in;
	struct viommu *v = viommu_find(s, op->ioas_id2);
	char why[IOASID_ERRMSG_MAX] = "";
	int32_t *errors = op->out;
	uint32_t nr, valid, done = 0;
	int r = 0, bad;

	if (!v)
		return viommu_not_found(op, op->ioas_id2);
	if (!e || !op->in_len || op->in_len % sizeof(*e))
		return op_fail(op, EINVAL, "invalidation data must be a "
			       "non-empty array of %zu-byte entries, got %u "
			       "bytes", sizeof(*e), op->in_len);
	nr = op->in_len / sizeof(*e);
	if (nr > VIOMMU_INVAL_MAX)
		return op_fail(op, E2BIG, "%u invalidation entries: at most %u "
			       "per request", nr, VIOMMU_INVAL_MAX);
	if (op->out_cap < nr * sizeof(*errors))
		return op_fail(op, EMSGSIZE, "room for %u entry errors needed",
			       nr);
	valid = valid_prefix(v, e, nr, &bad, op);
	if (valid)
		r = core_ops(s->core)->viommu_invalidate(v->be, e, valid, &done,
							 why, sizeof(why));
	if (r == 0 && done < valid)
		r = -EIO;	/* a backend that stopped without saying why */
	v->nr_invalidations += done;
	for (uint32_t i = 0; i < nr; i++)
		errors[i] = i < done ? 0 : -ECANCELED;
	op->out_len = nr * sizeof(*errors);
	op->out_id = done;
	if (r < 0) {
		errors[done] = r;
		return op_fail(op, -r, "entry %u: %s", done,
			       why[0] ? why : strerror(-r));
	}
	if (bad < 0)
		errors[done] = bad;
	return bad;	/* check_inval's reason, or 0 */
}

static void fill_viommu(const struct viommu *v, struct ioasid_viommu_info *out)
{
	*out = (struct ioasid_viommu_info){
		.size = sizeof(*out),
		.viommu_id = v->id,
		.ioas_id = v->parent->id,
		.domain_id = v->s2->id,
		.type = v->type,
		.nr_vdevices = v->nr_vdevices,
		.nr_nested = v->nr_nested,
		.nr_invalidations = v->nr_invalidations,
	};
	snprintf(out->iommu, sizeof(out->iommu), "%s", v->unit->info.name);
}

static int list_viommus(struct session *s, struct ioas *parent,
			struct ioasid_op *op)
{
	struct ioasid_viommu_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), k = 0;

	for (struct viommu *v = s->core->viommus; v; v = v->next) {
		if (v->parent != parent)
			continue;
		if (k < cap)
			fill_viommu(v, &out[k]);
		k++;
	}
	return op_out_array(op, k, sizeof(*out));
}

static int list_vdevices(struct session *s, struct ioas *parent,
			 struct ioasid_op *op)
{
	struct ioasid_vdevice_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), k = 0;

	for (struct viommu *v = s->core->viommus; v; v = v->next) {
		if (v->parent != parent)
			continue;
		for (struct vdevice *vd = v->vdevices; vd; vd = vd->next) {
			if (k < cap)
				out[k] = (struct ioasid_vdevice_info){
					.size = sizeof(out[k]),
					.vdevice_id = vd->id,
					.viommu_id = v->id,
					.dev_id = vd->dev->dev_id,
					.virt_id = vd->virt_id,
				};
			k++;
		}
	}
	return op_out_array(op, k, sizeof(*out));
}

int viommu_list(struct session *s, struct ioas *parent, struct ioasid_op *op)
{
	if (op->mode == IOASID_VIOMMU_OBJ_VIOMMU)
		return list_viommus(s, parent, op);
	if (op->mode == IOASID_VIOMMU_OBJ_VDEVICE)
		return list_vdevices(s, parent, op);
	return op_fail(op, EOPNOTSUPP, "unknown vIOMMU object kind %u",
		       op->mode);
}

void viommu_device_gone(struct core *core, struct device *dev)
{
	if (dev->vdev)
		vdevice_free(core, dev->vdev);
}

void viommu_release_session(struct core *core, struct session *s)
{
	struct viommu *v = core->viommus, *next;

	for (; v; v = next) {
		next = v->next;
		if (v->owner != s)
			continue;
		while (v->vdevices)
			vdevice_free(core, v->vdevices);
		viommu_free(core, v);
	}
}
