/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A session as the ops that rebuild it (core_session_export()), and
 * replaying them with the same ids (core_replay()): the core's side of
 * the state image (proto/image.h has the format and the list of ops).
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
#include "core/pasid.h"
#include "core/viommu.h"
#include "core/iova_tree.h"
#include "core/sharedmap.h"
#include "core/vm.h"
#include "util/hash.h"
#include "util/macros.h"

/* Ranges per CONVERT op: what one codec attribute carries. */
#define CONVERT_BATCH	4000
/* Pages of a dirty bitmap read at a time (128 MiB: 4 KiB of bits). */
#define DIRTY_CHUNK_PAGES	32768u

_Static_assert(CORE_DIRTY_MAX_RUNS <= CONVERT_BATCH, "dirty runs buffer");

struct export {
	struct session *s;
	core_export_fn emit;
	void *arg;
	struct ioasid_op *why;
	struct ioasid_op op;
	struct ioasid_kobj kobj;
	struct ioas *ioas;
	struct ioasid_iova_range runs[CONVERT_BATCH];
	uint32_t nr_runs;
	/* export_dirty_bits(): one chunk's bits, the domain being read */
	uint64_t bitmap[DIRTY_CHUNK_PAGES / 64];
	const struct domain *domain;
};

static struct ioasid_op *op_new(struct export *x, uint32_t cmd)
{
	ioasid_op_init(&x->op, cmd);
	return &x->op;
}

/* The kernel object behind @obj, for a backend that hands them over. */
static const struct ioasid_kobj *kobj_of(struct export *x, const void *obj,
					 uint32_t kind)
{
	const struct backend_ops *ops = core_ops(x->s->core);
	struct be_kobj k;

	if (!ops->kobj || !obj || ops->kobj(obj, kind, &k) < 0)
		return NULL;
	_Static_assert(sizeof(k) == sizeof(x->kobj), "be_kobj layout");
	_Static_assert((int)BE_KOBJ_TENANT == (int)IOASID_KOBJ_TENANT &&
		       (int)BE_KOBJ_IOAS == (int)IOASID_KOBJ_IOAS &&
		       (int)BE_KOBJ_DOMAIN == (int)IOASID_KOBJ_DOMAIN &&
		       (int)BE_KOBJ_DEVICE == (int)IOASID_KOBJ_DEVICE &&
		       (int)BE_KOBJ_NESTED == (int)IOASID_KOBJ_NESTED &&
		       (int)BE_KOBJ_VIOMMU == (int)IOASID_KOBJ_VIOMMU &&
		       (int)BE_KOBJ_VDEVICE == (int)IOASID_KOBJ_VDEVICE &&
		       (int)BE_KOBJ_FAULT == (int)IOASID_KOBJ_FAULT,
		       "kobj kinds");
	memcpy(&x->kobj, &k, sizeof(k));
	return &x->kobj;
}

static int emit_k(struct export *x, uint32_t expect_id,
		  const struct ioasid_kobj *k)
{
	int r = x->emit(x->arg, &x->op, expect_id, NULL, k, NULL);

	if (r < 0 && x->why != &x->op)
		snprintf(x->why->errmsg, sizeof(x->why->errmsg), "%s",
			 x->op.errmsg[0] ? x->op.errmsg : strerror(-r));
	return r;
}

static int emit(struct export *x, uint32_t expect_id)
{
	return emit_k(x, expect_id, NULL);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The session's IOASes, in id order: *out (free it), *nr. */
static int session_ioas_ids(struct session *s, uint32_t **out, uint32_t *nr)
{
	struct ioas *ioas, *tmp;
	uint32_t n = 0, *ids;

	ids = malloc(sizeof(*ids) * (HASH_COUNT(s->core->ioas_table) + 1));
	if (!ids)
		return -ENOMEM;
	HASH_ITER(hh, s->core->ioas_table, ioas, tmp)
		if (ioas->owner == s)
			ids[n++] = ioas->id;
	qsort(ids, n, sizeof(*ids), cmp_u32);
	*out = ids;
	*nr = n;
	return 0;
}

static struct ioas *find_ioas(struct core *core, uint32_t id)
{
	struct ioas *ioas;

	HASH_FIND(hh, core->ioas_table, &id, sizeof(id), ioas);
	return ioas;
}

static int export_ioas(struct export *x, struct ioas *ioas)
{
	struct ioasid_op *op;
	int r;

	op = op_new(x, IOASID_CMD_IOAS_ALLOC);

	op->flags = ioas->flags;
	r = emit_k(x, ioas->id, kobj_of(x, ioas->be, BE_KOBJ_IOAS));
	if (r == 0 && ioas->snoop_mode != IOASID_SNOOP_AUTO) {
		op = op_new(x, IOASID_CMD_IOAS_SET_SNOOP);
		op->ioas_id = ioas->id;
		op->mode = ioas->snoop_mode;
		r = emit(x, 0);
	}
	if (r == 0 && ioas->nr_allowed) {
		op = op_new(x, IOASID_CMD_ALLOW_IOVAS);
		op->ioas_id = ioas->id;
		op->in = ioas->allowed;
		op->in_len = ioas->nr_allowed * (uint32_t)sizeof(*ioas->allowed);
		r = emit(x, 0);
	}
	return r;
}

static int export_mappings(struct export *x, struct ioas *ioas)
{
	struct iova_tree_iter it;
	struct iova_area a;
	int r = 0;

	iova_tree_iter_start(&it, ioas->tree, 0);
	while (r == 0 && iova_tree_iter_next(&it, &a) == 0) {
		struct file_ref *f = a.backing;
		struct ioasid_op *op;

		if (a.kind != IOVA_AREA_MAPPING)
			continue;
		if (!f)
			return op_fail(x->why, EOPNOTSUPP, "IOAS %u maps "
				       "0x%llx by address: only mappings of "
				       "files can be handed over", ioas->id,
				       (unsigned long long)a.iova);
		op = op_new(x, IOASID_CMD_MAP_FILE);
		op->ioas_id = ioas->id;
		op->fd = f->fd;
		op->offset = a.offset;
		op->iova = a.iova;
		op->length = a.length;
		op->flags = (a.prot & (IOASID_MAP_READ | IOASID_MAP_WRITE)) |
			    IOASID_MAP_FIXED_IOVA;
		r = emit(x, f->id);
	}
	return r;
}

static int flush_runs(struct export *x)
{
	struct ioasid_op *op;

	if (!x->nr_runs)
		return 0;
	op = op_new(x, IOASID_CMD_CONVERT);
	op->ioas_id = x->ioas->id;
	op->flags = IOASID_CONVERT_SHARED;
	op->in = x->runs;
	op->in_len = x->nr_runs * (uint32_t)sizeof(x->runs[0]);
	x->nr_runs = 0;
	return emit(x, 0);
}

static int shared_run(void *arg, uint64_t iova, uint64_t length)
{
	struct export *x = arg;

	x->runs[x->nr_runs].start = iova;
	x->runs[x->nr_runs].last = iova + length - 1;
	if (++x->nr_runs < CONVERT_BATCH)
		return 0;
	return flush_runs(x);
}

/* A restricted IOAS's shared runs (every other page is private). */
static int export_conversions(struct export *x, struct ioas *ioas)
{
	int r;

	if (!ioas->shared)
		return 0;
	x->ioas = ioas;
	x->nr_runs = 0;
	r = sharedmap_for_each_shared(ioas->shared, shared_run, x);
	if (r == -ENOMEM)
		return op_fail(x->why, ENOMEM, "out of memory");
	return r ? r : flush_runs(x);
}

static int export_counters(struct export *x, struct ioas *ioas)
{
	struct core_ioas_counters c = {
		.ioas_id = ioas->id,
		.nr_conversions = __atomic_load_n(&ioas->nr_conversions,
						  __ATOMIC_RELAXED),
		.nr_faults = __atomic_load_n(&ioas->nr_faults,
					     __ATOMIC_RELAXED),
		.next_file_id = file_ids_gap(&ioas->files),
	};
	int r = x->emit(x->arg, NULL, 0, &c, NULL, NULL);

	if (r < 0)
		op_fail(x->why, -r, "cannot write IOAS %u's counters: %s",
			ioas->id, strerror(-r));
	return r;
}

static int put_nest_counters(struct export *x, uint32_t kind, uint32_t id,
			     uint64_t nr_invalidations)
{
	struct core_ioas_counters c = {
		.ioas_id = id, .kind = kind,
		.nr_conversions = nr_invalidations,
	};
	int r = x->emit(x->arg, NULL, 0, &c, NULL, NULL);

	if (r < 0)
		op_fail(x->why, -r, "cannot write the counters of %s %u: %s",
			kind == CORE_COUNTERS_NESTED ? "nested table" :
			"vIOMMU", id, strerror(-r));
	return r;
}

/* Each nested table's and vIOMMU's invalidations (after their ops). */
static int export_nest_counters(struct export *x)
{
	int r = 0;

	for (struct nested *n = x->s->core->nested; n && r == 0; n = n->next)
		if (n->owner == x->s)
			r = put_nest_counters(x, CORE_COUNTERS_NESTED, n->id,
					      n->nr_invalidations);
	for (struct viommu *v = x->s->core->viommus; v && r == 0; v = v->next)
		if (v->owner == x->s)
			r = put_nest_counters(x, CORE_COUNTERS_VIOMMU, v->id,
					      v->nr_invalidations);
	return r;
}

/* ---- dirty tracking: on, and the bits not read yet ------------------- */

static int flush_dirty_runs(struct export *x)
{
	struct core_dirty_bits d = {
		.ioas_id = x->ioas->id, .domain_id = x->domain->id,
		.nr_runs = x->nr_runs, .runs = x->runs,
	};
	int r;

	if (!x->nr_runs)
		return 0;
	x->nr_runs = 0;
	r = x->emit(x->arg, NULL, 0, NULL, NULL, &d);
	if (r < 0)
		op_fail(x->why, -r, "cannot write the dirty pages of domain "
			"%u of IOAS %u: %s", d.domain_id, d.ioas_id,
			strerror(-r));
	return r;
}

/* Page @iova is dirty: extend the last run, or start one. */
static int dirty_page(struct export *x, uint64_t iova)
{
	if (x->nr_runs && x->runs[x->nr_runs - 1].last + 1 == iova) {
		x->runs[x->nr_runs - 1].last = iova + SZ_4K - 1;
		return 0;
	}
	if (x->nr_runs == CORE_DIRTY_MAX_RUNS) {
		int r = flush_dirty_runs(x);

		if (r < 0)
			return r;
	}
	x->runs[x->nr_runs++] = (struct ioasid_iova_range){
		iova, iova + SZ_4K - 1 };
	return 0;
}

/* One mapping of the IOAS: its dirty pages in the domain, kept. */
static int dirty_area(struct export *x, const struct iova_area *a)
{
	const struct backend_ops *ops = core_ops(x->s->core);
	uint64_t done = 0;
	int r = 0;

	while (r == 0 && done < a->length) {
		uint64_t len = min_t(uint64_t, a->length - done,
				     (uint64_t)DIRTY_CHUNK_PAGES * SZ_4K);
		uint64_t iova = a->iova + done;

		memset(x->bitmap, 0, sizeof(x->bitmap));
		r = ops->read_dirty(x->domain->be, iova, len, x->bitmap,
				    false);
		if (r < 0)
			return op_fail(x->why, -r, "cannot read the dirty bits "
				       "of domain %u of IOAS %u: %s",
				       x->domain->id, x->ioas->id,
				       strerror(-r));
		for (uint64_t p = 0; r == 0 && p < len / SZ_4K; p++)
			if (x->bitmap[p / 64] & (1ULL << (p % 64)))
				r = dirty_page(x, iova + p * SZ_4K);
		done += len;
	}
	return r;
}

/*
 * A replayable backend's bits (in this process, the simulator's page
 * tables): each tracking domain's pages, read without clearing.  A
 * kernel backend's stay in the objects the successor adopts.
 */
static int export_dirty_bits(struct export *x, struct ioas *ioas)
{
	struct iova_tree_iter it;
	struct iova_area a;
	int r = 0;

	x->ioas = ioas;
	for (const struct domain *d = x->s->core->domains; d && r == 0;
	     d = d->next) {
		if (d->ioas != ioas || !d->tracking)
			continue;
		x->domain = d;
		x->nr_runs = 0;
		iova_tree_iter_start(&it, ioas->tree, 0);
		while (r == 0 && iova_tree_iter_next(&it, &a) == 0)
			if (a.kind == IOVA_AREA_MAPPING)
				r = dirty_area(x, &a);
		if (r == 0)
			r = flush_dirty_runs(x);
	}
	return r;
}

/*
 * An IOAS that tracks dirty pages: DIRTY_START (the fallback as it was)
 * once its domains and mappings are there, which turns each domain on
 * as it was (the ones whose IOMMU can; the others count as untracked),
 * then the bits not read yet.
 */
static int export_dirty(struct export *x, struct ioas *ioas)
{
	struct ioasid_op *op;
	int r;

	if (!ioas->dirty_on)
		return 0;
	op = op_new(x, IOASID_CMD_DIRTY_START);
	op->ioas_id = ioas->id;
	op->flags = ioas->dirty_fallback ? IOASID_DIRTY_START_FALLBACK : 0;
	r = emit(x, 0);
	if (r == 0 && core_ops(x->s->core)->replayable)
		r = export_dirty_bits(x, ioas);
	return r;
}

static int cmp_attach(const void *a, const void *b)
{
	const struct device *x = *(const struct device *const *)a;
	const struct device *y = *(const struct device *const *)b;

	if (x->domain->id != y->domain->id)
		return x->domain->id < y->domain->id ? -1 : 1;
	return cmp_u32(&x->dev_id, &y->dev_id);
}

static int export_devices(struct export *x)
{
	struct core *core = x->s->core;
	struct device **att;
	uint32_t n = 0;
	int r = 0;

	att = calloc(core->nr_devices + 1, sizeof(*att));
	if (!att)
		return op_fail(x->why, ENOMEM, "out of memory");
	/* binds in id order, so the ids come back in the same order */
	for (uint32_t i = 0; i < core->nr_devices; i++)
		if (core->devices[i].owner == x->s)
			att[n++] = &core->devices[i];
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			if (att[j]->dev_id < att[i]->dev_id) {
				struct device *t = att[i];

				att[i] = att[j];
				att[j] = t;
			}
	for (uint32_t i = 0; i < n && r == 0; i++) {
		struct ioasid_op *op = op_new(x, IOASID_CMD_DEVICE_BIND);

		snprintf(op->name, sizeof(op->name), "%s",
			 att[i]->inv->info.name);
		op->fd = att[i]->vfio_fd;
		r = emit_k(x, att[i]->dev_id,
			   kobj_of(x, att[i]->be, BE_KOBJ_DEVICE));
	}
	/* attaches: a domain's first device makes it, in domain id order */
	{
		uint32_t k = 0;

		/* on a nested table: after the table (export_nesting()) */
		for (uint32_t i = 0; i < n; i++)
			if (att[i]->ioas && att[i]->domain && !att[i]->nested)
				att[k++] = att[i];
		n = k;
	}
	qsort(att, n, sizeof(*att), cmp_attach);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		struct ioasid_op *op = op_new(x, IOASID_CMD_DEVICE_ATTACH);

		op->dev_id = att[i]->dev_id;
		op->ioas_id = att[i]->ioas->id;
		op->flags = att[i]->hinted ? IOASID_ATTACH_NO_SNOOP_UNUSED : 0;
		r = emit_k(x, att[i]->domain->id,
			   kobj_of(x, att[i]->domain->be, BE_KOBJ_DOMAIN));
	}
	free(att);
	return r;
}

/* The session's bound devices, in id order: *out (free it), *nr. */
static int session_devices(struct export *x, struct device ***out,
			   uint32_t *nr)
{
	struct core *core = x->s->core;
	struct device **v;
	uint32_t n = 0;

	v = calloc(core->nr_devices + 1, sizeof(*v));
	if (!v)
		return op_fail(x->why, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < core->nr_devices; i++)
		if (core->devices[i].owner == x->s)
			v[n++] = &core->devices[i];
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			if (v[j]->dev_id < v[i]->dev_id) {
				struct device *t = v[i];

				v[i] = v[j];
				v[j] = t;
			}
	*out = v;
	*nr = n;
	return 0;
}

struct pasid_ref {
	struct device *dev;
	const struct pasid_att *att;
};

static int cmp_pasid_ref(const void *a, const void *b)
{
	const struct pasid_ref *x = a, *y = b;

	if (x->att->domain->id != y->att->domain->id)
		return x->att->domain->id < y->att->domain->id ? -1 : 1;
	if (x->dev->dev_id != y->dev->dev_id)
		return x->dev->dev_id < y->dev->dev_id ? -1 : 1;
	return cmp_u32(&x->att->pasid, &y->att->pasid);
}

/*
 * The PASIDs attached to IOASes (@nested false) or to nested tables
 * (true): an attach each, the IOASes' in domain id order with the domain
 * as the id they make (as DEVICE_ATTACH), before any nested table, so
 * that a domain they share with one exists when the table comes.
 */
static int export_pasids(struct export *x, bool nested)
{
	struct pasid_ref *refs;
	struct device **devs;
	uint32_t nr_devs, n = 0, total = 0;
	int r;

	r = session_devices(x, &devs, &nr_devs);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < nr_devs; i++)
		total += devs[i]->nr_pasids;
	refs = calloc(total + 1, sizeof(*refs));
	if (!refs) {
		free(devs);
		return op_fail(x->why, ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < nr_devs; i++)
		for (uint32_t j = 0; j < devs[i]->nr_pasids; j++)
			if (!devs[i]->pasids[j].nested == !nested)
				refs[n++] = (struct pasid_ref){
					devs[i], &devs[i]->pasids[j],
				};
	qsort(refs, n, sizeof(*refs), cmp_pasid_ref);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		const struct pasid_att *att = refs[i].att;
		struct ioasid_op *op;

		if (nested) {
			op = op_new(x, IOASID_CMD_DEVICE_PASID_ATTACH_NESTED);
			op->ioas_id2 = att->nested->id;
		} else {
			op = op_new(x, IOASID_CMD_DEVICE_PASID_ATTACH);
			op->ioas_id = att->ioas->id;
		}
		op->dev_id = refs[i].dev->dev_id;
		op->mode = att->pasid;
		if (nested)
			r = emit(x, 0);
		else
			r = emit_k(x, att->domain->id,
				   kobj_of(x, att->domain->be,
					   BE_KOBJ_DOMAIN));
	}
	free(refs);
	free(devs);
	return r;
}

/*
 * The device a nested table or vIOMMU is allocated for again: the one it
 * was, else another of the session's behind @unit.
 */
static struct device *alloc_device(struct export *x, uint32_t dev_id,
				   const struct inv_iommu *unit)
{
	struct device *dev = device_find_bound(x->s, dev_id);
	struct core *core = x->s->core;

	if (dev && dev->unit == unit)
		return dev;
	for (uint32_t i = 0; i < core->nr_devices; i++)
		if (core->devices[i].owner == x->s &&
		    core->devices[i].unit == unit)
			return &core->devices[i];
	return NULL;
}

/* Is @d made by an op emitted before the nesting object @id's? */
static bool domain_made_before(struct export *x, const struct domain *d,
			       uint32_t id)
{
	struct core *core = x->s->core;

	for (uint32_t i = 0; i < core->nr_devices; i++) {
		const struct device *dev = &core->devices[i];

		if (dev->owner != x->s)
			continue;
		if (dev->domain == d && !dev->nested)
			return true;
		for (uint32_t j = 0; j < dev->nr_pasids; j++)
			if (dev->pasids[j].domain == d &&
			    !dev->pasids[j].nested)
				return true;
	}
	for (struct nested *n = core->nested; n; n = n->next)
		if (n->owner == x->s && n->s2 == d && n->id < id)
			return true;
	for (struct viommu *v = core->viommus; v; v = v->next)
		if (v->owner == x->s && v->s2 == d && v->id < id)
			return true;
	return false;
}

/*
 * The replay makes stage-2 domain @d with object @id when no earlier op
 * did: it gets the id before @id (core->replay_domain_id), which must be
 * the one it has.
 */
static int check_s2(struct export *x, const struct domain *d, uint32_t id,
		    const char *what)
{
	if (d->id == id - 1 || domain_made_before(x, d, id))
		return 0;
	return op_fail(x->why, EOPNOTSUPP, "%s %u: its stage-2 domain %u was "
		       "made for an object since destroyed, and no device or "
		       "PASID attachment makes it before %s %u: the state "
		       "image cannot give it that id again (attach a device "
		       "of IOAS %u, export, and detach it after the import)",
		       what, id, d->id, what, id, d->ioas->id);
}

/*
 * Kernel backends: the stage-2 HWPT the next op makes (when no earlier
 * op did), announced before the op's own object.
 */
static int emit_s2_kobj(struct export *x, const struct domain *d,
			uint32_t id)
{
	const struct ioasid_kobj *k;
	int r;

	if (domain_made_before(x, d, id))
		return 0;
	k = kobj_of(x, d->be, BE_KOBJ_DOMAIN);
	if (!k)
		return 0;
	r = x->emit(x->arg, NULL, 0, NULL, k, NULL);
	if (r < 0)
		return op_fail(x->why, -r, "cannot keep the HWPT of stage-2 "
			       "domain %u: %s", d->id, strerror(-r));
	return 0;
}

static int export_viommu(struct export *x, const struct viommu *v)
{
	struct device *dev = alloc_device(x, v->dev_id, v->unit);
	struct ioasid_op *op;
	int r;

	if (!dev)
		return op_fail(x->why, EOPNOTSUPP, "vIOMMU %u: the session "
			       "has no device behind IOMMU %s to allocate it "
			       "for again", v->id, v->unit->info.name);
	r = check_s2(x, v->s2, v->id, "vIOMMU");
	if (r < 0)
		return r;
	r = emit_s2_kobj(x, v->s2, v->id);
	if (r < 0)
		return r;
	op = op_new(x, IOASID_CMD_VIOMMU_ALLOC);
	op->ioas_id = v->parent->id;
	op->dev_id = dev->dev_id;
	op->mode = v->type;
	return emit_k(x, v->id, kobj_of(x, v->be, BE_KOBJ_VIOMMU));
}

static int export_vdevice(struct export *x, const struct vdevice *vd)
{
	struct ioasid_op *op = op_new(x, IOASID_CMD_VDEVICE_ALLOC);

	op->ioas_id2 = vd->viommu->id;
	op->dev_id = vd->dev->dev_id;
	op->offset = vd->virt_id;
	return emit_k(x, vd->id, kobj_of(x, vd->be, BE_KOBJ_VDEVICE));
}

static int export_nested(struct export *x, const struct nested *n)
{
	const struct inv_iommu *unit = n->viommu ? n->viommu->unit :
				       n->s2->unit;
	struct device *dev = alloc_device(x, n->dev_id, unit);
	struct ioasid_op *op;
	int r;

	if (!dev)
		return op_fail(x->why, EOPNOTSUPP, "nested table %u: the "
			       "session has no device behind IOMMU %s to "
			       "allocate it for again", n->id,
			       unit->info.name);
	if (!n->viommu) {
		r = check_s2(x, n->s2, n->id, "nested table");
		if (r == 0)
			r = emit_s2_kobj(x, n->s2, n->id);
		if (r < 0)
			return r;
		op = op_new(x, IOASID_CMD_NESTED_ALLOC);
		op->ioas_id = n->parent->id;
	} else {
		op = op_new(x, IOASID_CMD_VIOMMU_NESTED_ALLOC);
		op->ioas_id2 = n->viommu->id;
	}
	op->dev_id = dev->dev_id;
	op->mode = n->type;
	if (n->type == IOASID_NESTED_VTD_S1) {
		op->in = &n->vtd;
		op->in_len = sizeof(n->vtd);
	} else {
		op->in = &n->st;
		op->in_len = sizeof(n->st);
	}
	return emit_k(x, n->id, kobj_of(x, n->be, BE_KOBJ_NESTED));
}

/* One of the session's vIOMMUs, vDEVICEs or nested tables. */
struct nest_obj {
	uint32_t id;
	const struct viommu *viommu;
	const struct vdevice *vdev;
	const struct nested *nested;
};

static int cmp_nest_obj(const void *a, const void *b)
{
	return cmp_u32(&((const struct nest_obj *)a)->id,
		       &((const struct nest_obj *)b)->id);
}

static int nest_objs(struct export *x, struct nest_obj **out, uint32_t *nr)
{
	struct core *core = x->s->core;
	struct nest_obj *v;
	uint32_t n = 0, total = 1;

	for (struct viommu *vi = core->viommus; vi; vi = vi->next)
		total += 1 + vi->nr_vdevices;
	for (struct nested *ne = core->nested; ne; ne = ne->next)
		total++;
	v = calloc(total, sizeof(*v));
	if (!v)
		return op_fail(x->why, ENOMEM, "out of memory");
	for (struct viommu *vi = core->viommus; vi; vi = vi->next) {
		if (vi->owner != x->s)
			continue;
		v[n++] = (struct nest_obj){ .id = vi->id, .viommu = vi };
		for (struct vdevice *vd = vi->vdevices; vd; vd = vd->next)
			v[n++] = (struct nest_obj){ .id = vd->id, .vdev = vd };
	}
	for (struct nested *ne = core->nested; ne; ne = ne->next)
		if (ne->owner == x->s)
			v[n++] = (struct nest_obj){ .id = ne->id, .nested = ne };
	qsort(v, n, sizeof(*v), cmp_nest_obj);
	*out = v;
	*nr = n;
	return 0;
}

/*
 * vIOMMUs, vDEVICEs and nested tables in id order (each made after what
 * it needs: a vDEVICE after its vIOMMU, a table after the vIOMMU it is
 * on), then the devices and PASIDs attached to the tables.
 */
static int export_nesting(struct export *x)
{
	struct device **devs = NULL;
	struct nest_obj *objs = NULL;
	uint32_t nr = 0, nr_devs = 0;
	int r;

	r = nest_objs(x, &objs, &nr);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < nr && r == 0; i++) {
		if (objs[i].viommu)
			r = export_viommu(x, objs[i].viommu);
		else if (objs[i].vdev)
			r = export_vdevice(x, objs[i].vdev);
		else
			r = export_nested(x, objs[i].nested);
	}
	free(objs);
	if (r == 0)
		r = session_devices(x, &devs, &nr_devs);
	if (r < 0)
		return r;
	for (uint32_t i = 0; r == 0 && i < nr_devs; i++) {
		struct ioasid_op *op;

		if (!devs[i]->nested)
			continue;
		op = op_new(x, IOASID_CMD_NESTED_ATTACH);
		op->dev_id = devs[i]->dev_id;
		op->ioas_id2 = devs[i]->nested->id;
		op->flags = devs[i]->hinted ? IOASID_ATTACH_NO_SNOOP_UNUSED : 0;
		r = emit(x, 0);
	}
	free(devs);
	return r ? r : export_pasids(x, true);
}

static int export_vms(struct export *x)
{
	struct core *core = x->s->core;
	struct vm *vm, *tmp;
	uint32_t *ids, n = 0;
	int r = 0;

	ids = malloc(sizeof(*ids) * (HASH_COUNT(core->vms) + 1));
	if (!ids)
		return op_fail(x->why, ENOMEM, "out of memory");
	HASH_ITER(hh, core->vms, vm, tmp)
		if (vm->owner == x->s)
			ids[n++] = vm->id;
	qsort(ids, n, sizeof(*ids), cmp_u32);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		struct ioasid_op *op = op_new(x, IOASID_CMD_VM_BIND);

		HASH_FIND(hh, core->vms, &ids[i], sizeof(ids[i]), vm);
		op->fd = vm->kvm_fd;
		op->fd2 = vm->kvm_vfio_fd;
		op->flags = vm->flags & IOASID_VM_KVM_VFIO_CREATED;
		r = emit(x, vm->id);
		if (r == 0 && (vm->flags & IOASID_VM_FORBID_NONCOHERENT)) {
			op = op_new(x, IOASID_CMD_VM_SET_POLICY);
			op->vm_id = vm->id;
			op->flags = IOASID_VM_FORBID_NONCOHERENT;
			r = emit(x, 0);
		}
	}
	free(ids);
	for (uint32_t i = 0; i < core->nr_devices && r == 0; i++) {
		struct device *dev = &core->devices[i];
		struct ioasid_op *op;

		if (dev->owner != x->s || !dev->vm)
			continue;
		op = op_new(x, IOASID_CMD_DEVICE_SET_VM);
		op->dev_id = dev->dev_id;
		op->vm_id = dev->vm->id;
		op->flags = dev->kvm_by_client ?
			    IOASID_SET_VM_CLIENT_REGISTERED : 0;
		r = emit(x, 0);
	}
	return r;
}

static int emit_fault_queue(void *arg, struct ioasid_op *op,
			    uint32_t expect_id, const struct ioasid_kobj *k)
{
	struct export *x = arg;

	x->op = *op;
	if (k)
		x->kobj = *k;
	return emit_k(x, expect_id, k ? &x->kobj : NULL);
}

/* After the VMs: a queue's carried requests name bound devices. */
static int export_fault_queues(struct export *x)
{
	return iopf_export(x->s, emit_fault_queue, x, x->why);
}

/*
 * What a kernel backend cannot hand over: a nested table, vIOMMU or
 * vDEVICE whose kernel object its ->kobj does not name (iommufd names
 * them; vfio-type1 has none).  A replayable backend (the simulator)
 * makes everything again.
 */
static int check_nesting(struct export *x)
{
	struct session *s = x->s;
	const char *be = core_ops(s->core)->name;

	if (core_ops(s->core)->replayable)
		return 0;
	for (struct nested *n = s->core->nested; n; n = n->next)
		if (n->owner == s && !kobj_of(x, n->be, BE_KOBJ_NESTED))
			return op_fail(x->why, EOPNOTSUPP, "the session has "
				       "nested stage-1 table %u: the %s "
				       "backend cannot hand its kernel object "
				       "over", n->id, be);
	for (struct viommu *v = s->core->viommus; v; v = v->next) {
		if (v->owner != s)
			continue;
		if (!kobj_of(x, v->be, BE_KOBJ_VIOMMU))
			return op_fail(x->why, EOPNOTSUPP, "the session has "
				       "vIOMMU %u: the %s backend cannot hand "
				       "its kernel object over", v->id, be);
		for (struct vdevice *vd = v->vdevices; vd; vd = vd->next)
			if (!kobj_of(x, vd->be, BE_KOBJ_VDEVICE))
				return op_fail(x->why, EOPNOTSUPP, "the session "
					       "has vDEVICE %u: the %s backend "
					       "cannot hand its kernel object "
					       "over", vd->id, be);
	}
	return 0;
}

static int export_session(struct export *x)
{
	struct session *s = x->s;
	uint32_t *ids = NULL, nr = 0;
	int r = 0;

	if (!core_ops(s->core)->replayable && !core_ops(s->core)->kobj)
		return op_fail(x->why, EOPNOTSUPP, "the %s backend cannot "
			       "hand its kernel objects over to another "
			       "process yet (iommufd and vfio-type1 can)",
			       core_ops(s->core)->name);
	/* first: the session's own iommufd, where its objects live */
	if (s->tenant && kobj_of(x, s->tenant, BE_KOBJ_TENANT)) {
		r = x->emit(x->arg, NULL, 0, NULL, &x->kobj, NULL);
		if (r < 0)
			return op_fail(x->why, -r, "cannot keep the session's "
				       "kernel descriptor: %s", strerror(-r));
	}
	r = check_nesting(x);
	if (r < 0)
		return r;
	if (s->event_groups) {
		op_new(x, IOASID_CMD_SUBSCRIBE)->flags = s->event_groups;
		r = emit(x, 0);
	}
	if (r == 0 && session_ioas_ids(s, &ids, &nr) < 0)
		return op_fail(x->why, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = export_ioas(x, find_ioas(s->core, ids[i]));
	if (r == 0)
		r = export_devices(x);
	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = export_mappings(x, find_ioas(s->core, ids[i]));
	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = export_conversions(x, find_ioas(s->core, ids[i]));
	if (r == 0)
		r = export_pasids(x, false);
	if (r == 0)
		r = export_nesting(x);
	if (r == 0)
		r = export_vms(x);
	if (r == 0)
		r = export_fault_queues(x);
	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = export_dirty(x, find_ioas(s->core, ids[i]));
	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = export_counters(x, find_ioas(s->core, ids[i]));
	if (r == 0)
		r = export_nest_counters(x);
	free(ids);
	return r;
}

int core_session_export(struct session *s, core_export_fn fn, void *arg,
			struct ioasid_op *why)
{
	struct export *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return op_fail(why, ENOMEM, "out of memory");
	x->s = s;
	x->emit = fn;
	x->arg = arg;
	x->why = why;
	pthread_mutex_lock(&s->core->lock);
	r = export_session(x);
	pthread_mutex_unlock(&s->core->lock);
	free(x);
	return r;
}

/* A nested table's or vIOMMU's invalidations: 0, or -ENOENT. */
static int replay_nest_counters(struct session *s,
				const struct core_ioas_counters *c)
{
	struct nested *n;
	struct viommu *v;

	if (c->kind == CORE_COUNTERS_NESTED) {
		n = nested_find(s, c->ioas_id);
		if (!n)
			return -ENOENT;
		n->nr_invalidations = c->nr_conversions;
		return 0;
	}
	v = c->kind == CORE_COUNTERS_VIOMMU ? viommu_find(s, c->ioas_id) : NULL;
	if (!v)
		return -ENOENT;
	v->nr_invalidations = c->nr_conversions;
	return 0;
}

int core_replay_counters(struct session *s, const struct core_ioas_counters *c)
{
	struct ioas *ioas;
	int r = 0;

	if (c->kind != CORE_COUNTERS_IOAS) {
		pthread_mutex_lock(&s->core->lock);
		r = replay_nest_counters(s, c);
		pthread_mutex_unlock(&s->core->lock);
		return r;
	}
	pthread_mutex_lock(&s->core->lock);
	ioas = find_ioas(s->core, c->ioas_id);
	if (ioas && ioas->owner == s) {
		__atomic_store_n(&ioas->nr_conversions, c->nr_conversions,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&ioas->nr_faults, c->nr_faults,
				 __ATOMIC_RELAXED);
		if (c->next_file_id)
			r = file_ids_set(&ioas->files, c->next_file_id);
	}
	pthread_mutex_unlock(&s->core->lock);
	return ioas && ioas->owner == s ? r : -ENOENT;
}

/* Add up the mapped bytes of a run (check_dirty_runs()). */
static int count_mapped(void *arg, const struct iova_area *a)
{
	*(uint64_t *)arg += a->length;
	return 0;
}

/* The runs of an image's dirty record: 0, or -EINVAL with the reason. */
static int check_dirty_runs(struct ioas *ioas, const struct core_dirty_bits *d,
			    struct ioasid_op *why)
{
	if (!d->nr_runs || d->nr_runs > CORE_DIRTY_MAX_RUNS || !d->runs)
		return op_fail(why, EINVAL, "a dirty record of %u runs (1 to "
			       "%u)", d->nr_runs, CORE_DIRTY_MAX_RUNS);
	for (uint32_t i = 0; i < d->nr_runs; i++) {
		const struct ioasid_iova_range *run = &d->runs[i];
		uint64_t mapped = 0;

		if (!IS_ALIGNED(run->start | (run->last + 1), SZ_4K) ||
		    run->last < run->start || run->last == UINT64_MAX ||
		    (i && run->start <= d->runs[i - 1].last))
			return op_fail(why, EINVAL, "dirty run %u [0x%llx, "
				       "0x%llx] is not of whole pages after "
				       "the one before", i,
				       (unsigned long long)run->start,
				       (unsigned long long)run->last);
		if (iova_tree_for_each_piece(ioas->tree, run->start,
					     run->last - run->start + 1,
					     IOVA_TREE_MAPPINGS, count_mapped,
					     &mapped) < 0 ||
		    mapped != run->last - run->start + 1)
			return op_fail(why, EINVAL, "dirty run %u [0x%llx, "
				       "0x%llx] is not all mapped in IOAS %u",
				       i, (unsigned long long)run->start,
				       (unsigned long long)run->last, ioas->id);
	}
	return 0;
}

/* The IOAS's tracking domain a dirty record names: 0 and *out, -errno. */
static int dirty_domain(struct session *s, const struct core_dirty_bits *d,
			struct domain **out, struct ioasid_op *why)
{
	struct ioas *ioas = find_ioas(s->core, d->ioas_id);

	if (!ioas || ioas->owner != s)
		return op_fail(why, ENOENT, "dirty pages of IOAS %u, which "
			       "the session does not have", d->ioas_id);
	if (!ioas->dirty_on)
		return op_fail(why, EINVAL, "dirty pages of IOAS %u, which "
			       "does not track them", d->ioas_id);
	for (struct domain *dom = s->core->domains; dom; dom = dom->next)
		if (dom->id == d->domain_id && dom->ioas == ioas &&
		    dom->tracking) {
			*out = dom;
			return check_dirty_runs(ioas, d, why);
		}
	return op_fail(why, ENOENT, "dirty pages of domain %u, which IOAS %u "
		       "has not or which does not track", d->domain_id,
		       d->ioas_id);
}

int core_replay_dirty(struct session *s, const struct core_dirty_bits *d,
		      struct ioasid_op *why)
{
	const struct backend_ops *ops = core_ops(s->core);
	struct domain *dom = NULL;
	int r;

	if (!ops->mark_dirty)
		return op_fail(why, EOPNOTSUPP, "the %s backend keeps dirty "
			       "bits in its kernel objects: an image carries "
			       "none for it", ops->name);
	pthread_mutex_lock(&s->core->lock);
	r = dirty_domain(s, d, &dom, why);
	for (uint32_t i = 0; r == 0 && i < d->nr_runs; i++) {
		r = ops->mark_dirty(dom->be, d->runs[i].start,
				    d->runs[i].last - d->runs[i].start + 1);
		if (r < 0)
			op_fail(why, -r, "cannot mark domain %u's pages "
				"dirty: %s", dom->id, strerror(-r));
	}
	pthread_mutex_unlock(&s->core->lock);
	return r;
}

int core_fault_queues_changed(struct session *s, core_fault_state_fn fn,
			      void *arg)
{
	return iopf_journal_changed(s, fn, arg);
}

int core_replay_fault_state(struct session *s, uint32_t fault_id,
			    const void *state, uint32_t len,
			    struct ioasid_op *why)
{
	return iopf_journal_replay(s, fault_id, state, len, why);
}

int core_ioas_next_file_id(struct session *s, uint32_t ioas_id,
			   uint32_t *next)
{
	struct ioas *ioas;

	pthread_mutex_lock(&s->core->lock);
	ioas = find_ioas(s->core, ioas_id);
	if (ioas && ioas->owner == s)
		*next = ioas->files.next_id;
	pthread_mutex_unlock(&s->core->lock);
	return ioas && ioas->owner == s ? 0 : -ENOENT;
}

int core_set_ioas_next_file_id(struct session *s, uint32_t ioas_id,
			       uint32_t next)
{
	struct ioas *ioas;
	int r = -ENOENT;

	pthread_mutex_lock(&s->core->lock);
	ioas = find_ioas(s->core, ioas_id);
	/* never below a file it has: the next map would reuse an id */
	if (ioas && ioas->owner == s)
		r = file_ids_set(&ioas->files, next);
	pthread_mutex_unlock(&s->core->lock);
	return r;
}

void core_session_set_id(struct session *s, uint32_t id)
{
	pthread_mutex_lock(&s->core->event_lock);
	s->id = id;
	if (id > s->core->next_session_id)
		s->core->next_session_id = id;
	pthread_mutex_unlock(&s->core->event_lock);
}

/* The id the replayed @op made, for checking against the image's. */
static uint32_t made_id(struct session *s, const struct ioasid_op *op)
{
	struct ioas *ioas;
	struct iova_area a;
	struct device *dev;

	switch (op->cmd) {
	case IOASID_CMD_DEVICE_ATTACH:
		dev = device_find_bound(s, op->dev_id);
		return dev && dev->domain ? dev->domain->id : 0;
	case IOASID_CMD_DEVICE_PASID_ATTACH:
		dev = device_find_bound(s, op->dev_id);
		for (uint32_t i = 0; dev && i < dev->nr_pasids; i++)
			if (dev->pasids[i].pasid == op->mode)
				return dev->pasids[i].domain->id;
		return 0;
	case IOASID_CMD_MAP_FILE:
		ioas = find_ioas(s->core, op->ioas_id);
		if (!ioas || iova_tree_lookup(ioas->tree, op->iova, &a) ||
		    a.kind != IOVA_AREA_MAPPING || !a.backing)
			return 0;
		return ((struct file_ref *)a.backing)->id;
	default:
		return op->out_id;
	}
}

/*
 * Make the next id @op allocates @id: the core's counter, or for a map
 * the IOAS's file table's (a file's id is its place in that table).
 */
static void force_id(struct session *s, const struct ioasid_op *op,
		     uint32_t id, uint32_t *file_next)
{
	struct ioas *ioas;

	pthread_mutex_lock(&s->core->lock);
	if (op->cmd != IOASID_CMD_MAP_FILE) {
		s->core->next_id = id - 1;
	} else if ((ioas = find_ioas(s->core, op->ioas_id)) &&
		   ioas->owner == s) {
		*file_next = ioas->files.next_id;
		ioas->files.next_id = id - 1;
	}
	pthread_mutex_unlock(&s->core->lock);
}

static void file_next_restore(struct session *s, const struct ioasid_op *op,
			      uint32_t id, uint32_t file_next)
{
	struct ioas *ioas;

	pthread_mutex_lock(&s->core->lock);
	ioas = find_ioas(s->core, op->ioas_id);
	if (ioas && ioas->owner == s)
		ioas->files.next_id = max_t(uint32_t, file_next, id);
	pthread_mutex_unlock(&s->core->lock);
}

/* How many live objects, of any kind and any session, hold @id. */
static uint32_t id_holders(struct core *core, uint32_t id)
{
	uint32_t n = iopf_id_holders(core, id);

	for (struct ioas *i = core->ioas_table; i; i = i->hh.next)
		n += i->id == id;
	for (struct vm *vm = core->vms; vm; vm = vm->hh.next)
		n += vm->id == id;
	for (const struct domain *d = core->domains; d; d = d->next)
		n += d->id == id;
	for (const struct nested *t = core->nested; t; t = t->next)
		n += t->id == id;
	for (const struct viommu *v = core->viommus; v; v = v->next) {
		n += v->id == id;
		for (const struct vdevice *vd = v->vdevices; vd; vd = vd->next)
			n += vd->id == id;
	}
	for (uint32_t i = 0; i < core->nr_devices; i++)
		n += core->devices[i].owner && core->devices[i].dev_id == id;
	return n;
}

/*
 * After a replayed op: an id the image forced (the op's, or the stage-2
 * domain's a nested table or vIOMMU made) that another object held
 * already.  A hostile or damaged image could do it; two objects with one
 * id would be unreachable or confused for each other.
 */
static int check_unique(struct session *s, struct ioasid_op *op,
			uint32_t id, uint32_t domain_id)
{
	uint32_t n;

	pthread_mutex_lock(&s->core->lock);
	n = op->cmd == IOASID_CMD_MAP_FILE ? 1 : id_holders(s->core, id);
	if (n <= 1 && domain_id)
		n = id_holders(s->core, domain_id), id = domain_id;
	pthread_mutex_unlock(&s->core->lock);
	if (n > 1)
		return op_fail(op, EEXIST, "the image gives id %u to an object "
			       "that another one holds", id);
	return 0;
}

int core_replay(struct session *s, struct ioasid_op *op, uint32_t expect_id)
{
	uint32_t got, file_next = 0, domain_id = 0;
	int r;

	if (expect_id == UINT32_MAX)
		return op_fail(op, EINVAL, "id %u cannot be made", expect_id);
	if (expect_id)
		force_id(s, op, expect_id, &file_next);
	s->core->replaying = true;
	/* a stage-2 domain these make takes the id before theirs */
	if (expect_id > 1 && (op->cmd == IOASID_CMD_NESTED_ALLOC ||
			      op->cmd == IOASID_CMD_VIOMMU_ALLOC))
		s->core->replay_domain_id = domain_id = expect_id - 1;
	r = core_call(s, op);
	s->core->replay_domain_id = 0;
	s->core->replaying = false;
	if (expect_id && op->cmd == IOASID_CMD_MAP_FILE)
		file_next_restore(s, op, expect_id, file_next);
	if (r < 0 || !expect_id)
		return r;
	got = made_id(s, op);
	if (got != expect_id)
		return op_fail(op, EPROTO, "%s made id %u, the image says %u",
			       op->cmd == IOASID_CMD_DEVICE_ATTACH ? "the attach" :
			       op->cmd == IOASID_CMD_MAP_FILE ? "the map" : "the op", got, expect_id);
	return check_unique(s, op, expect_id, domain_id);
}

int core_adopt(struct session *s, const struct ioasid_kobj *k,
	       struct ioasid_op *why)
{
	const struct backend_ops *ops = core_ops(s->core);
	struct be_tenant *t;
	struct be_kobj bk;
	int r;

	if (!ops->adopt)
		return op_fail(why, EINVAL, "the %s backend has no kernel "
			       "objects to adopt", ops->name);
	if (k->kind < BE_KOBJ_TENANT || k->kind > BE_KOBJ_LAST)
		return op_fail(why, EINVAL, "unknown kernel object kind %u",
			       k->kind);
	memcpy(&bk, k, sizeof(bk));
	pthread_mutex_lock(&s->core->lock);
	r = core_session_tenant(s, &t);
	if (r == 0)
		r = ops->adopt(s->core->be, t, &bk);
	pthread_mutex_unlock(&s->core->lock);
	if (r < 0)
		return op_fail(why, -r, "cannot adopt the session's %s: %s",
			       k->kind == BE_KOBJ_TENANT ? "iommufd" :
			       "kernel object", strerror(-r));
	return 0;
}

int core_adopt_end(struct session *s, struct ioasid_op *why)
{
	const struct backend_ops *ops = core_ops(s->core);
	int r = 0;

	if (!ops->adopt_end)
		return 0;
	pthread_mutex_lock(&s->core->lock);
	if (s->tenant)
		r = ops->adopt_end(s->tenant, why->errmsg,
				   sizeof(why->errmsg));
	pthread_mutex_unlock(&s->core->lock);
	return r;
}

/* ->handover_begin or ->handover_cancel on the session's tenant. */
static int handover(struct session *s, bool begin, struct ioasid_op *why)
{
	const struct backend_ops *ops = core_ops(s->core);
	int (*fn)(struct be_tenant *, char *, size_t) =
		begin ? ops->handover_begin : ops->handover_cancel;
	int r = 0;

	if (!fn)
		return 0;
	why->errmsg[0] = 0;
	pthread_mutex_lock(&s->core->lock);
	if (s->tenant) {
		r = fn(s->tenant, why->errmsg, sizeof(why->errmsg));
		if (r == 0 && begin)
			r = 1;
	}
	pthread_mutex_unlock(&s->core->lock);
	if (r < 0 && !why->errmsg[0])
		snprintf(why->errmsg, sizeof(why->errmsg), "%s",
			 strerror(-r));
	return r;
}

int core_handover_begin(struct session *s, struct ioasid_op *why)
{
	return handover(s, true, why);
}

int core_handover_cancel(struct session *s, struct ioasid_op *why)
{
	return handover(s, false, why);
}
