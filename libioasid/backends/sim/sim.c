/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated IOMMU backend: the topology file gives the units and
 * devices; each be_ioas mirrors its mappings into sim_domains (real
 * multi-level page tables, iotlb.h); each device is a sim_dev with an
 * IOTLB and a DMA engine (dma.h).  Backing files are mapped into this
 * process once (filemap.c) and the page tables point at those mappings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/sim/dma.h"
#include "backends/filemap.h"
#include "backends/sim/guarded_copy.h"
#include "backends/sim/nested.h"
#include "backends/sim/pgtable.h"
#include "backends/sim/topology.h"
#include "util/log.h"
#include "util/macros.h"

struct backend {
	const struct log_sink *log;
	char source[IOASID_PATH_MAX];	/* "built-in" or the file */
	struct inventory topo;
	struct be_device *devices;	/* open devices, for fault reads */
	struct be_nested *nested;	/* for fault records' nested ids */
	uint32_t next_domain_id;
};

struct be_nested {
	struct backend *be;
	struct sim_domain *dom;		/* nested.h */
	struct be_domain *parent;
	uint32_t nested_id;		/* the core's */
	struct be_nested *next;
};

struct be_domain {
	struct sim_domain *dom;
	struct be_ioas *ioas;
	uint32_t addr_width;
	uint64_t page_sizes;
	bool enforce;
	bool can_track;		/* the unit has dirty-tracking=yes */
	struct be_domain *next;
};

struct be_ioas {
	struct backend *be;
	struct be_domain *domains;
	bool page_granular;	/* 4 KiB leaves only (IOASID_IOAS_PAGE_GRANULAR) */
};

/*
 * One attached PASID: a DMA engine of its own (its own IOTLB, on its
 * domain's invalidation list), so DMA tagged with the PASID translates
 * through that domain and is tagged apart from the device's other DMA.
 */
struct sim_pasid {
	uint32_t pasid;
	struct sim_dev *dev;
	struct be_domain *domain;	/* on a nested table: its parent */
	struct be_nested *nested;	/* attached through it, or NULL */
	uint64_t overflows_taken;
};

struct be_device {
	struct backend *be;
	struct sim_dev *dev;
	const struct inv_iommu *unit;
	struct be_domain *domain;
	struct be_nested *nested;	/* attached through it, or NULL */
	uint32_t id;			/* the core's dev_id */
	struct sim_pasid *pasids;	/* attached, in no order */
	uint32_t nr_pasids;
	struct sim_dev *no_pasid;	/* never attached: DMA of a PASID
					   attached nowhere is blocked */
	uint64_t no_pasid_taken;	/* of its log's drops, told */
	uint64_t pasid_lost;		/* records of detached PASIDs */
	uint64_t overflows_taken;	/* of the log's drops, told the core */
	struct be_device *next;
};

/* ---- backend ------------------------------------------------------------ */

static int sim_open(const struct log_sink *log, const char *arg,
		    struct backend **out, char *errmsg, size_t errlen)
{
	struct backend *be = calloc(1, sizeof(*be));
	int r;

	if (!be)
		return -ENOMEM;
	be->log = log;
	if (arg && *arg) {
		snprintf(be->source, sizeof(be->source), "%s", arg);
		r = topology_load(arg, &be->topo, errmsg, errlen);
	} else {
		snprintf(be->source, sizeof(be->source), "built-in");
		r = topology_parse(topology_default, &be->topo, errmsg, errlen);
	}
	if (r == 0)
		r = sim_guard_init();
	if (r < 0) {
		inventory_release(&be->topo);
		free(be);
		return r;
	}
	*out = be;
	return 0;
}

static void sim_close(struct backend *be)
{
	inventory_release(&be->topo);
	free(be);
}

static const char *sim_describe(struct backend *be)
{
	return be->source;
}

/* Deep copy of the topology (the core owns and frees its inventory). */
static int copy_ranges(struct ioasid_iova_range **dst, uint32_t *nr_dst,
		       const struct ioasid_iova_range *src, uint32_t nr)
{
	*dst = NULL;
	*nr_dst = 0;
	if (!nr)
		return 0;
	*dst = malloc(nr * sizeof(*src));
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, nr * sizeof(*src));
	*nr_dst = nr;
	return 0;
}

static int sim_inventory(struct backend *be, struct inventory *inv)
{
	const struct inventory *t = &be->topo;
	int r = 0;

	*inv = (struct inventory){ 0 };
	inv->iommus = calloc(t->nr_iommus ? t->nr_iommus : 1,
			     sizeof(*inv->iommus));
	inv->devices = calloc(t->nr_devices ? t->nr_devices : 1,
			      sizeof(*inv->devices));
	if (!inv->iommus || !inv->devices)
		r = -ENOMEM;
	for (uint32_t i = 0; r == 0 && i < t->nr_iommus; i++) {
		inv->iommus[i] = t->iommus[i];
		r = copy_ranges(&inv->iommus[i].reserved,
				&inv->iommus[i].nr_reserved,
				t->iommus[i].reserved, t->iommus[i].nr_reserved);
		inv->nr_iommus++;
	}
	for (uint32_t i = 0; r == 0 && i < t->nr_devices; i++) {
		inv->devices[i] = t->devices[i];
		r = copy_ranges(&inv->devices[i].reserved,
				&inv->devices[i].nr_reserved,
				t->devices[i].reserved,
				t->devices[i].nr_reserved);
		inv->nr_devices++;
	}
	if (r < 0)
		inventory_release(inv);
	return r;
}

/* ---- address spaces and domains ------------------------------------------- */

static int sim_ioas_alloc(struct backend *be, struct be_tenant *tenant,
			  uint32_t flags, struct be_ioas **out)
{
	struct be_ioas *ioas = calloc(1, sizeof(*ioas));

	if (!ioas)
		return -ENOMEM;
	ioas->be = be;
	ioas->page_granular = flags & IOASID_IOAS_PAGE_GRANULAR;
	*out = ioas;
	return 0;
}

static void sim_ioas_free(struct be_ioas *ioas)
{
	/* the core frees domains (detaching devices) before the IOAS */
	free(ioas);
}

static uint64_t pte_prot(uint32_t prot)
{
	return (prot & IOASID_MAP_READ ? SIM_PROT_READ : 0) |
	       (prot & IOASID_MAP_WRITE ? SIM_PROT_WRITE : 0);
}

static uint64_t domain_limit(const struct be_domain *d)
{
	return d->addr_width >= 64 ? UINT64_MAX : (1ULL << d->addr_width);
}

static int domain_map(struct be_domain *d, uint64_t iova, uint64_t length,
		      const struct be_backing *b, uint32_t prot)
{
	uint64_t hva;
	int r;

	r = filemap_hva(b, length, &hva);
	if (r < 0)
		return r;
	return sim_domain_map(d->dom, iova, length, hva, pte_prot(prot));
}

/* Unmap [iova, iova+length) from @d, clipped to what it can address. */
static int domain_unmap(struct be_domain *d, uint64_t iova, uint64_t length)
{
	uint64_t limit = domain_limit(d);
	int64_t r;

	if (iova >= limit)
		return 0;
	if (length > limit - iova)
		length = limit - iova;
	r = sim_domain_unmap(d->dom, iova, length);
	return r < 0 ? (int)r : 0;
}

/* domain_unmap() that collects the removed pages' dirty bits. */
static int domain_unmap_dirty(struct be_domain *d, uint64_t iova,
			      uint64_t length, uint64_t *bitmap,
			      uint64_t bitmap_iova)
{
	uint64_t limit = domain_limit(d);
	int64_t r;

	if (iova >= limit)
		return 0;
	if (length > limit - iova)
		length = limit - iova;
	r = sim_domain_unmap_dirty(d->dom, iova, length, bitmap, bitmap_iova);
	return r < 0 ? (int)r : 0;
}

static int sim_map(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		   const struct be_backing *backing, uint32_t prot)
{
	struct be_domain *d, *undo;
	uint64_t hva;
	int r;

	/* even with no domain yet: the memory must be there to map */
	r = filemap_hva(backing, length, &hva);
	if (r < 0)
		return r;
	for (d = ioas->domains; d; d = d->next) {
		r = domain_map(d, iova, length, backing, prot);
		if (r < 0)
			break;
	}
	if (r == 0)
		return 0;
	/* all or nothing: take it out of the domains that got it */
	for (undo = ioas->domains; undo != d; undo = undo->next)
		domain_unmap(undo, iova, length);
	return r;
}

/* Every domain's leaf entry for @iova on its way into the cache. */
static void sim_unmap_prefetch(struct be_ioas *ioas, uint64_t iova)
{
	for (struct be_domain *d = ioas->domains; d; d = d->next)
		if (iova < domain_limit(d))
			sim_domain_prefetch(d->dom, iova);
}

static int sim_unmap(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		     const struct be_piece *old, uint32_t nr_old)
{
	int r = 0;

	for (struct be_domain *d = ioas->domains; d; d = d->next) {
		int e = domain_unmap(d, iova, length);

		if (e < 0 && r == 0)
			r = e;
	}
	return r;
}

/*
 * Each domain's pages leave with their dirty bits in one exchange per
 * leaf (sim_pgtable_unmap_dirty()): atomic with the unmap.
 */
static int sim_unmap_dirty(struct be_ioas *ioas, uint64_t iova,
			   uint64_t length, const struct be_piece *old,
			   uint32_t nr_old, uint64_t *bitmap,
			   uint64_t bitmap_iova)
{
	int r = 0;

	for (struct be_domain *d = ioas->domains; d; d = d->next) {
		int e = domain_unmap_dirty(d, iova, length, bitmap,
					   bitmap_iova);

		if (e < 0 && r == 0)
			r = e;
	}
	return r;
}

/*
 * The hardware side of a copy (iommufd: IOMMU_IOAS_COPY): the
 * destination gets the core's pieces, all or nothing, in one seam call,
 * so the core's one-call copy path is the same here as on iommufd.
 */
static int sim_copy(struct be_ioas *dst, uint64_t dst_iova,
		    struct be_ioas *src, uint64_t src_iova, uint64_t length,
		    uint32_t prot, const struct be_piece *pieces,
		    uint32_t nr_pieces)
{
	uint32_t i;
	int r = 0;

	for (i = 0; i < nr_pieces && r == 0; i++)
		r = sim_map(dst, pieces[i].iova, pieces[i].length,
			    &pieces[i].backing, pieces[i].prot);
	if (r < 0)
		for (i--; i-- > 0;)
			sim_unmap(dst, pieces[i].iova, pieces[i].length, NULL,
				  0);
	return r;
}

static int sim_hide_batch(struct be_ioas *ioas,
			  const struct ioasid_iova_range *runs, uint32_t nr)
{
	struct sim_range *v = malloc((nr ? nr : 1) * sizeof(*v));
	int r = 0;

	if (!v)
		return -ENOMEM;
	for (struct be_domain *d = ioas->domains; d && r == 0; d = d->next) {
		uint64_t limit = domain_limit(d);
		size_t n = 0;

		for (uint32_t i = 0; i < nr; i++) {
			if (runs[i].start >= limit)
				continue;
			v[n].iova = runs[i].start;
			v[n].length = min_t(uint64_t, runs[i].last, limit - 1) -
				      runs[i].start + 1;
			n++;
		}
		if (n) {
			int64_t e = sim_domain_unmap_batch(d->dom, v, n);

			r = e < 0 ? (int)e : 0;
		}
	}
	free(v);
	return r;
}

struct replay_ctx {
	struct be_domain *d;
};

static int replay_piece(void *arg, const struct be_piece *p)
{
	struct replay_ctx *rc = arg;

	return domain_map(rc->d, p->iova, p->length, &p->backing, p->prot);
}

static int sim_domain_alloc(struct be_ioas *ioas, const struct inv_iommu *unit,
			    uint32_t flags, const struct be_replay *replay,
			    struct be_domain **out)
{
	uint64_t sizes = unit->info.page_sizes & (SIM_SZ_4K | SIM_SZ_2M |
						  SIM_SZ_1G);
	struct be_domain *d = calloc(1, sizeof(*d));
	struct replay_ctx rc = { d };
	int r;

	if (!d)
		return -ENOMEM;
	d->enforce = flags & BE_DOMAIN_ENFORCE_COHERENCY;
	if (d->enforce && !(unit->info.flags & IOASID_IOMMU_SNOOP_CONTROL)) {
		free(d);
		return -EINVAL;
	}
	d->addr_width = unit->info.addr_width;
	d->page_sizes = sizes;
	d->can_track = unit->info.flags & IOASID_IOMMU_DIRTY_TRACKING;
	d->ioas = ioas;
	/* a page-granular IOAS never gets large leaves, as on iommufd */
	r = sim_domain_create(d->addr_width,
			      ioas->page_granular ? SIM_SZ_4K : sizes | SIM_SZ_4K,
			      d->enforce ? SIM_DOMAIN_ENFORCE_COHERENCY : 0,
			      &d->dom);
	if (r == 0 && replay)
		r = replay->each(replay, replay_piece, &rc);
	if (r < 0) {
		if (d->dom)
			sim_domain_destroy(d->dom);
		free(d);
		return r;
	}
	d->next = ioas->domains;
	ioas->domains = d;
	*out = d;
	return 0;
}

static void sim_domain_free(struct be_domain *d)
{
	struct be_domain **p = &d->ioas->domains;

	while (*p && *p != d)
		p = &(*p)->next;
	if (*p)
		*p = d->next;
	sim_domain_destroy(d->dom);
	free(d);
}

/* ---- devices --------------------------------------------------------------- */

static int sim_device_open(struct backend *be, struct be_tenant *tenant,
			   const struct inv_device *inv,
			   const struct inv_iommu *unit, uint32_t dev_id,
			   int vfio_fd, struct be_device **out)
{
	struct be_device *dev = calloc(1, sizeof(*dev));
	unsigned int flags = 0;
	int r;

	if (!dev)
		return -ENOMEM;
	if (inv->info.flags & IOASID_DEVICE_NO_SNOOP)
		flags |= SIM_DEV_NO_SNOOP_CAPABLE;
	r = sim_dev_create(dev_id, flags, 0, &dev->dev);
	if (r == 0 && inv->info.pasid_bits) {
		r = sim_dev_create(dev_id, flags, 16, &dev->no_pasid);
		if (r < 0)
			sim_dev_destroy(dev->dev);
	}
	if (r < 0) {
		free(dev);
		return r;
	}
	dev->be = be;
	dev->unit = unit;
	dev->id = dev_id;
	dev->next = be->devices;
	be->devices = dev;
	*out = dev;
	return 0;
}

static void sim_device_close(struct be_device *dev)
{
	struct be_device **p = &dev->be->devices;

	while (*p && *p != dev)
		p = &(*p)->next;
	if (*p)
		*p = dev->next;
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		sim_dev_destroy(dev->pasids[i].dev);
	free(dev->pasids);
	sim_dev_destroy(dev->no_pasid);
	sim_dev_destroy(dev->dev);
	free(dev);
}

/* Like an IOMMU driver: a domain built for other hardware is refused. */
static bool compatible(const struct be_device *dev, const struct be_domain *d)
{
	const struct ioasid_iommu_info *u = &dev->unit->info;
	uint64_t sizes = u->page_sizes & (SIM_SZ_4K | SIM_SZ_2M | SIM_SZ_1G);

	if (d->enforce && !(u->flags & IOASID_IOMMU_SNOOP_CONTROL))
		return false;
	return d->addr_width == u->addr_width && d->page_sizes == sizes;
}

static int sim_attach(struct be_device *dev, struct be_domain *d)
{
	if (!compatible(dev, d))
		return -EINVAL;
	sim_dev_attach(dev->dev, d->dom);	/* replaces without a gap */
	dev->domain = d;
	dev->nested = NULL;
	return 0;
}

static int sim_detach(struct be_device *dev, char *why, size_t len)
{
	sim_dev_detach(dev->dev);
	dev->domain = NULL;
	dev->nested = NULL;
	return 0;
}

/* ---- nested tables ---------------------------------------------------------- */

static int sim_nested_alloc(struct be_domain *parent, struct be_device *dev,
			    uint32_t type, const void *data, uint32_t len,
			    uint32_t nested_id, struct be_nested **out,
			    char *why, size_t whylen)
{
	const struct ioasid_nested_vtd_s1 *s1 = data;
	struct be_nested *n;
	int r;

	if (type != IOASID_NESTED_VTD_S1) {
		snprintf(why, whylen, "the simulated IOMMU implements VT-d "
			 "first-stage tables only (type %u)", type);
		return -EOPNOTSUPP;
	}
	if (s1->flags) {
		snprintf(why, whylen, "the simulated IOMMU implements none of "
			 "the VT-d first-stage flags (0x%llx): no supervisor "
			 "requests, write protection or extended access flag",
			 (unsigned long long)s1->flags);
		return -EOPNOTSUPP;
	}
	if (!compatible(dev, parent)) {
		snprintf(why, whylen, "the parent's domain was made for "
			 "another IOMMU than the device's");
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	r = sim_nested_create(parent->dom, s1->pgtbl_addr, s1->addr_width,
			      &n->dom);
	if (r < 0) {
		free(n);
		if (r == -EINVAL)
			snprintf(why, whylen, "stage-1 root 0x%llx or address "
				 "width %u refused",
				 (unsigned long long)s1->pgtbl_addr,
				 s1->addr_width);
		return r;
	}
	n->be = dev->be;
	n->parent = parent;
	n->nested_id = nested_id;
	n->next = dev->be->nested;
	dev->be->nested = n;
	*out = n;
	return 0;
}

static void sim_nested_free(struct be_nested *n)
{
	struct be_nested **p = &n->be->nested;

	while (*p && *p != n)
		p = &(*p)->next;
	if (*p)
		*p = n->next;
	sim_domain_destroy(n->dom);
	free(n);
}

static int sim_attach_nested(struct be_device *dev, struct be_nested *n)
{
	if (!compatible(dev, n->parent))
		return -EINVAL;
	sim_dev_attach(dev->dev, n->dom);	/* replaces without a gap */
	dev->domain = n->parent;
	dev->nested = n;
	return 0;
}

static int sim_nested_inval(struct be_nested *n,
			    const struct ioasid_nested_inval *v, uint32_t nr,
			    uint32_t *done, char *why, size_t whylen)
{
	for (*done = 0; *done < nr; (*done)++) {
		const struct ioasid_nested_inval *e = &v[*done];

		if (e->flags & IOASID_NESTED_INVAL_ALL)
			sim_nested_invalidate(n->dom, 0, UINT64_MAX);
		else
			sim_nested_invalidate(n->dom, e->addr, e->addr +
					      (e->npages << 12) - 1);
	}
	return 0;
}

/* ---- vIOMMUs ------------------------------------------------------------ */

/*
 * A vIOMMU of the simulated IOMMU: its parent domain (every nested table
 * on it is over that), its unit, and the virtual IDs it gives devices,
 * which its invalidations name devices by.
 */
struct be_viommu {
	struct be_domain *parent;
	const struct inv_iommu *unit;
	struct be_vdevice *vdevices;
};

struct be_vdevice {
	struct be_viommu *viommu;
	struct be_device *dev;
	uint64_t virt_id;
	struct be_vdevice *next;
};

static int sim_viommu_alloc(struct be_domain *parent, struct be_device *dev,
			    uint32_t type, struct be_viommu **out, char *why,
			    size_t whylen)
{
	struct be_viommu *v;

	if (type != IOASID_VIOMMU_SIM) {
		snprintf(why, whylen, "the simulated IOMMU has vIOMMUs of type "
			 "%u (IOASID_VIOMMU_SIM) only, not %u",
			 IOASID_VIOMMU_SIM, type);
		return -EOPNOTSUPP;
	}
	if (!compatible(dev, parent)) {
		snprintf(why, whylen, "the parent's domain was made for "
			 "another IOMMU than the device's");
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->parent = parent;
	v->unit = dev->unit;
	*out = v;
	return 0;
}

static void sim_viommu_free(struct be_viommu *v)
{
	free(v);
}

static int sim_vdevice_alloc(struct be_viommu *v, struct be_device *dev,
			     uint64_t virt_id, struct be_vdevice **out,
			     char *why, size_t whylen)
{
	struct be_vdevice *vd;

	if (dev->unit != v->unit) {
		snprintf(why, whylen, "the device is behind another IOMMU "
			 "than the vIOMMU's");
		return -EINVAL;
	}
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	vd->viommu = v;
	vd->dev = dev;
	vd->virt_id = virt_id;
	vd->next = v->vdevices;
	v->vdevices = vd;
	*out = vd;
	return 0;
}

static void sim_vdevice_free(struct be_vdevice *vd)
{
	struct be_vdevice **p = &vd->viommu->vdevices;

	while (*p && *p != vd)
		p = &(*p)->next;
	if (*p)
		*p = vd->next;
	free(vd);
}

static int sim_viommu_nested_alloc(struct be_viommu *v, struct be_device *dev,
				   uint32_t type, const void *data,
				   uint32_t len, uint32_t nested_id,
				   struct be_nested **out, char *why,
				   size_t whylen)
{
	if (dev->unit != v->unit) {
		snprintf(why, whylen, "the device is behind another IOMMU "
			 "than the vIOMMU's");
		return -EINVAL;
	}
	return sim_nested_alloc(v->parent, dev, type, data, len, nested_id,
				out, why, whylen);
}

/* Drop [start, last] from every IOTLB of @dev: its own, its PASIDs'. */
static void drop_device_iotlb(struct be_device *dev, uint64_t start,
			      uint64_t last)
{
	sim_iotlb_invalidate_range(&dev->dev->iotlb, start, last);
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		sim_iotlb_invalidate_range(&dev->pasids[i].dev->iotlb, start,
					   last);
	/* DMA that still holds an old translation finishes first */
	sim_gp_synchronize();
}

static int sim_viommu_inval(struct be_viommu *v,
			    const struct ioasid_viommu_inval *e, uint32_t nr,
			    uint32_t *done, char *why, size_t whylen)
{
	for (*done = 0; *done < nr; (*done)++, e++) {
		struct be_vdevice *vd = v->vdevices;

		while (vd && vd->virt_id != e->virt_id)
			vd = vd->next;
		if (!vd) {
			snprintf(why, whylen, "no device has virtual ID 0x%llx "
				 "on this vIOMMU",
				 (unsigned long long)e->virt_id);
			return -EINVAL;
		}
		if (e->flags & IOASID_VIOMMU_INVAL_ALL)
			drop_device_iotlb(vd->dev, 0, UINT64_MAX);
		else
			drop_device_iotlb(vd->dev, e->addr,
					  e->addr + (e->npages << 12) - 1);
	}
	return 0;
}

static uint32_t nested_id_of(const struct backend *be, uint32_t domid)
{
	for (const struct be_nested *n = be->nested; n; n = n->next)
		if (n->dom->id == domid)
			return n->nested_id;
	return 0;
}

static struct sim_pasid *find_pasid(struct be_device *dev, uint32_t pasid)
{
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		if (dev->pasids[i].pasid == pasid)
			return &dev->pasids[i];
	return NULL;
}

/*
 * @pasid's engine on @dom: a domain's (@d) or a nested table's (@n, over
 * @d); the two-stage walk is the engine's (dma.c) for a nested domain.
 */
static int pasid_on(struct be_device *dev, uint32_t pasid,
		    struct be_domain *d, struct be_nested *n,
		    struct sim_domain *dom)
{
	struct sim_pasid *p = find_pasid(dev, pasid), *v;
	unsigned int flags = 0;
	int r;

	if (!compatible(dev, d))
		return -EINVAL;
	if (p) {
		sim_dev_attach(p->dev, dom);	/* replaces without a gap */
		p->domain = d;
		p->nested = n;
		return 0;
	}
	v = realloc(dev->pasids, (dev->nr_pasids + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	dev->pasids = v;
	p = &v[dev->nr_pasids];
	memset(p, 0, sizeof(*p));	/* overflows_taken starts at 0 */
	if (dev->dev->flags & SIM_DEV_NO_SNOOP_CAPABLE)
		flags |= SIM_DEV_NO_SNOOP_CAPABLE;
	r = sim_dev_create(dev->id, flags, 0, &p->dev);
	if (r < 0)
		return r;
	p->pasid = pasid;
	p->domain = d;
	p->nested = n;
	sim_dev_attach(p->dev, dom);
	dev->nr_pasids++;
	return 0;
}

static int sim_pasid_attach(struct be_device *dev, uint32_t pasid,
			    struct be_domain *d)
{
	return pasid_on(dev, pasid, d, NULL, d->dom);
}

static int sim_pasid_attach_nested(struct be_device *dev, uint32_t pasid,
				   struct be_nested *n)
{
	return pasid_on(dev, pasid, n->parent, n, n->dom);
}

static int sim_pasid_detach(struct be_device *dev, uint32_t pasid)
{
	struct sim_pasid *p = find_pasid(dev, pasid);
	struct sim_dev_stats st;
	struct sim_fault f;

	if (!p)
		return -ENOENT;
	/* no DMA runs now (backend.h); what its log still holds is lost */
	sim_dev_get_stats(p->dev, &st);
	dev->pasid_lost += st.fault_overflows - p->overflows_taken;
	while (sim_dev_read_faults(p->dev, &f, 1) == 1)
		dev->pasid_lost++;
	sim_dev_destroy(p->dev);
	*p = dev->pasids[--dev->nr_pasids];
	return 0;
}

static int sim_dma_on(struct sim_dev *sd, uint64_t iova, void *buf,
		      uint64_t length, uint32_t flags, uint64_t *done)
{
	unsigned int sflags = (flags & IOASID_DMA_NO_SNOOP ? SIM_DMA_NO_SNOOP : 0) |
			      (flags & BE_DMA_PAGE_REQUEST ?
			       SIM_DMA_PAGE_REQUEST : 0);
	size_t moved = 0;
	int r;

	if (flags & IOASID_DMA_WRITE)
		r = sim_dma_write(sd, iova, buf, length, sflags, &moved);
	else
		r = sim_dma_read(sd, iova, buf, length, sflags, &moved);
	*done = moved;
	return r;
}

/* A PASID attached nowhere: blocked, as the device itself detached. */
static int sim_dma_pasid(struct be_device *dev, uint32_t pasid, uint64_t iova,
			 void *buf, uint64_t length, uint32_t flags,
			 uint64_t *done)
{
	struct sim_pasid *p = find_pasid(dev, pasid);

	if (!dev->no_pasid)
		return -EOPNOTSUPP;	/* the core checked the capability */
	return sim_dma_on(p ? p->dev : dev->no_pasid, iova, buf, length, flags,
			  done);
}

static int sim_device_vfio_fd(struct be_device *dev)
{
	return -1;
}

static int sim_dma(struct be_device *dev, uint64_t iova, void *buf,
		   uint64_t length, uint32_t flags, uint64_t *done)
{
	return sim_dma_on(dev->dev, iova, buf, length, flags, done);
}

static int sim_set_dirty_tracking(struct be_domain *d, bool on)
{
	if (on && !d->can_track)
		return -EOPNOTSUPP;
	return sim_domain_set_dirty_tracking(d->dom, on);
}

static int sim_read_dirty(struct be_domain *d, uint64_t iova, uint64_t length,
			  uint64_t *bitmap, bool clear)
{
	return sim_domain_read_and_clear_dirty(d->dom, iova, length, bitmap,
					       clear ? 0 : SIM_DIRTY_NO_CLEAR);
}

static int sim_mark_dirty(struct be_domain *d, uint64_t iova,
			  uint64_t length)
{
	return sim_domain_mark_dirty(d->dom, iova, length);
}

static void sim_set_dirtied(struct be_domain *d,
			    void (*fn)(void *cookie, uint64_t iova,
				       uint64_t size),
			    void *cookie)
{
	if (d->dom->pgt)
		sim_pgtable_set_dirtied(d->dom->pgt, fn, cookie);
}

static uint32_t fault_reason(uint8_t reason)
{
	switch (reason) {
	case SIM_FAULT_BLOCKED:		return IOASID_FAULT_BLOCKED;
	case SIM_FAULT_PERMISSION:	return IOASID_FAULT_PERMISSION;
	case SIM_FAULT_BUS_ERROR:	return IOASID_FAULT_BUS_ERROR;
	case SIM_FAULT_SEGV:		return IOASID_FAULT_BUS_ERROR;
	case SIM_FAULT_RESERVED:	return IOASID_FAULT_RESERVED_BIT;
	default:			return IOASID_FAULT_NOT_PRESENT;
	}
}

/* The records of one engine (the device's own, or a PASID's). */
static uint32_t read_engine(const struct backend *be, struct sim_dev *sd,
			    struct ioasid_fault *out, uint32_t cap)
{
	struct sim_fault f;
	uint32_t n = 0;

	while (sd && n < cap && sim_dev_read_faults(sd, &f, 1) == 1) {
		out[n++] = (struct ioasid_fault){
			.size = sizeof(*out),
			.flags = f.access == SIM_ACCESS_WRITE ?
				 IOASID_MAP_WRITE : IOASID_MAP_READ,
			.dev_id = f.dev_id,
			.reason = fault_reason(f.reason),
			.iova = f.iova,
			.timestamp_ns = f.timestamp_ns,
		};
		if (f.stage) {
			out[n - 1].flags |= f.stage == 1 ? IOASID_FAULT_STAGE1 :
							   IOASID_FAULT_STAGE2;
			out[n - 1].stage_addr = f.stage_addr;
			out[n - 1].nested_id = nested_id_of(be, f.domain_id);
		}
	}
	return n;
}

static int sim_read_faults(struct be_device *dev, struct ioasid_fault *out,
			   uint32_t cap, uint32_t *nr)
{
	uint32_t n = read_engine(dev->be, dev->dev, out, cap);

	n += read_engine(dev->be, dev->no_pasid, out + n, cap - n);
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		n += read_engine(dev->be, dev->pasids[i].dev, out + n, cap - n);
	*nr = n;
	return 0;
}

static uint64_t overflows_since(struct sim_dev *sd, uint64_t *taken)
{
	struct sim_dev_stats st;
	uint64_t n;

	if (!sd)
		return 0;
	sim_dev_get_stats(sd, &st);
	n = st.fault_overflows - *taken;
	*taken = st.fault_overflows;
	return n;
}

static uint64_t sim_take_faults_lost(struct be_device *dev)
{
	uint64_t n = overflows_since(dev->dev, &dev->overflows_taken) +
		     overflows_since(dev->no_pasid, &dev->no_pasid_taken) +
		     dev->pasid_lost;

	dev->pasid_lost = 0;
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		n += overflows_since(dev->pasids[i].dev,
				     &dev->pasids[i].overflows_taken);
	return n;
}

static int sim_device_stats(struct be_device *dev, uint64_t *snooped,
			    uint64_t *noncoherent)
{
	struct sim_dev_stats st;

	sim_dev_get_stats(dev->dev, &st);
	*snooped = st.snooped_bytes;
	*noncoherent = st.noncoherent_bytes;
	return 0;
}

/* The topology's devices can be unplugged and plugged back. */
static int sim_simulate_hotplug(struct backend *be, const char *name,
				bool present)
{
	return inventory_find_device(&be->topo, name) ? 0 : -ENOENT;
}

const struct backend_ops backend_sim = {
	.name = "sim",
	.replayable = true,
	.dma_page_requests = true,
	.open = sim_open,
	.close = sim_close,
	.describe = sim_describe,
	.inventory = sim_inventory,
	.ioas_alloc = sim_ioas_alloc,
	.ioas_free = sim_ioas_free,
	.map = sim_map,
	.unmap = sim_unmap,
	.unmap_prefetch = sim_unmap_prefetch,
	.unmap_dirty = sim_unmap_dirty,
	.unmap_dirty_atomic = true,
	.hide_batch = sim_hide_batch,
	.copy = sim_copy,
	.domain_alloc = sim_domain_alloc,
	.domain_free = sim_domain_free,
	.device_open = sim_device_open,
	.device_close = sim_device_close,
	.attach = sim_attach,
	.detach = sim_detach,
	.device_vfio_fd = sim_device_vfio_fd,
	.dma = sim_dma,
	.pasid_attach = sim_pasid_attach,
	.pasid_attach_nested = sim_pasid_attach_nested,
	.pasid_detach = sim_pasid_detach,
	.dma_pasid = sim_dma_pasid,
	.set_dirty_tracking = sim_set_dirty_tracking,
	.read_dirty = sim_read_dirty,
	.mark_dirty = sim_mark_dirty,
	.set_dirtied = sim_set_dirtied,
	.read_faults = sim_read_faults,
	.take_faults_lost = sim_take_faults_lost,
	.device_stats = sim_device_stats,
	.simulate_hotplug = sim_simulate_hotplug,
	.nested_alloc = sim_nested_alloc,
	.nested_free = sim_nested_free,
	.attach_nested = sim_attach_nested,
	.nested_invalidate = sim_nested_inval,
	.viommu_alloc = sim_viommu_alloc,
	.viommu_free = sim_viommu_free,
	.vdevice_alloc = sim_vdevice_alloc,
	.vdevice_free = sim_vdevice_free,
	.viommu_nested_alloc = sim_viommu_nested_alloc,
	.viommu_invalidate = sim_viommu_inval,
};
