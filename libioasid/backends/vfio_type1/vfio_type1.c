/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The legacy VFIO type1 backend: containers and groups.
 *
 *   be_ioas    a container (/dev/vfio/vfio): one address space shared by
 *              every group in it.  Type1 has no IOMMU until a group is in
 *              the container (VFIO_SET_IOMMU needs one), so mappings made
 *              before are kept in the backend's record (kcommon.h: kmap)
 *              and programmed when the first group arrives; when the last
 *              group leaves, the kernel drops them and the record stays.
 *   be_domain  implicit: type1 creates its IOMMU domains itself, one per
 *              compatible set of groups, and makes each enforce cache
 *              coherency where the IOMMU can.  A be_domain records the
 *              class (unit, coherency) the core asked for; the backend
 *              refuses the classes type1 cannot produce, so the core's
 *              "one domain per coherency class" model holds.
 *   be_device  a device reached through its group (/dev/vfio/N); groups
 *              are shared by their devices.
 *
 * Memory is mapped by address (VFIO_IOMMU_MAP_DMA): files are mapped into
 * this process first (backends/filemap.h).  See README in this directory.
 *
 * Where /dev/vfio/vfio is iommufd's emulation of the container
 * (CONFIG_IOMMUFD_VFIO_CONTAINER, drivers/iommu/iommufd/vfio_compat.c),
 * the containers ask for VFIO_TYPE1_IOMMU (v1): the emulation then turns
 * large pages off (iopt_disable_large_pages) and its VFIO_IOMMU_UNMAP_DMA
 * cuts the kernel's areas at both ends of any page-aligned range, so
 * every cut is one atomic call, as on a page-granular iommufd IOAS.  Real
 * type1 cannot cut (v2 refuses a bisecting unmap, v1 unmaps whole
 * mappings or nothing): there cuts stay composed (kcommon.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "backends/backend.h"
#include "backends/filemap.h"
#include "backends/iommufd/abi.h"
#include "backends/kcommon/kcommon.h"
#include "backends/vfio_type1/vfio_type1.h"
#include "discovery/discovery.h"
#include "util/log.h"
#include "util/macros.h"

#define CONTAINER_PATH "/dev/vfio/vfio"

struct vt1_group {
	uint32_t number;
	int fd;
	bool own_fd;
	unsigned int refs;		/* devices opened through it */
	unsigned int attached;		/* of those, attached */
	struct be_ioas *container;	/* the container it is in, or NULL */
	bool enforce;			/* the class it joined with */
	/* a predecessor's, already in a container (the hand-over, below) */
	bool in_kernel_container;
	/* taken over from a predecessor by this tenant (its descriptor) */
	struct be_tenant *adopted_by;
	struct vt1_group *next;
};

struct backend {
	const struct log_sink *log;
	/* /dev/vfio/vfio is iommufd's emulation (iommufd_compat()) */
	bool iommufd_compat;
	struct vt1_group *groups;
	struct khotplug hotplug;
	char desc[IOASID_PATH_MAX];
};

/*
 * A session's containers, and what handing them over needs (below):
 * while adopting a predecessor's, the object the next allocation takes
 * over and what the kernel had lost.
 */
struct be_tenant {
	struct backend *be;
	struct be_ioas *ioases;
	bool adopting;
	struct be_kobj pending;
	unsigned int nr_rebuilt;
	char lost[256];
};

struct be_ioas {
	struct backend *be;
	struct be_tenant *tenant;
	struct be_ioas *next;		/* in the tenant's list */
	int fd;				/* the container */
	bool live;			/* VFIO_SET_IOMMU done */
	bool adopted;			/* a predecessor's: maps take over */
	/* hand-over begun: the kernel forgot our addresses (-EBUSY) */
	bool frozen;
	unsigned int nr_groups, nr_enforcing;
	struct kmap map;
	/* VFIO_IOMMU_GET_INFO at the last VFIO_SET_IOMMU */
	uint64_t pgsizes;
	int64_t dma_avail;
	struct ioasid_iova_range *ranges;
	uint32_t nr_ranges;
};

struct be_domain {
	struct be_ioas *ioas;
	const struct inv_iommu *unit;
	bool enforce;
};

struct be_device {
	struct backend *be;
	const struct inv_device *inv;
	const struct inv_iommu *unit;
	struct vt1_group *group;
	struct be_domain *domain;
};

/*
 * A failed import: the predecessor's group stays in its container, which
 * keeps its mappings, for another try (the image's descriptors keep both).
 */
static bool still_adopting(const struct vt1_group *g)
{
	return g->adopted_by && g->adopted_by->adopting;
}

/* ---- open ---------------------------------------------------------------- */

static int probe_container(int fd, char *errmsg, size_t errlen)
{
	int v = ioctl(fd, VFIO_GET_API_VERSION);

	if (v != VFIO_API_VERSION) {
		snprintf(errmsg, errlen, CONTAINER_PATH " speaks VFIO API "
			 "version %d, not %d", v, VFIO_API_VERSION);
		return -ENODEV;
	}
	if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1) {
		snprintf(errmsg, errlen, "this kernel's VFIO has no type1v2 "
			 "IOMMU driver (CONFIG_VFIO_IOMMU_TYPE1)");
		return -ENODEV;
	}
	return 0;
}

/*
 * Is this container file iommufd's emulation?  Its fd is an iommufd, so
 * it answers iommufd's own ioctls: IOMMU_GET_HW_INFO of device id 0 (no
 * such object) is ENOENT from iommufd_get_hw_info(), while VFIO's real
 * container answers an unknown ioctl with EINVAL before it has an IOMMU
 * driver (vfio_fops_unl_ioctl()).  VFIO_CHECK_EXTENSION cannot tell them
 * apart on a fresh container (both say 1 for TYPE1, TYPE1v2, UNMAP_ALL
 * and 0 for UPDATE_VADDR until real type1 has an IOMMU).
 */
static bool iommufd_compat(int fd)
{
	struct ifd_hw_info hi = { .size = sizeof(hi) };

	return ioctl(fd, IFD_GET_HW_INFO, &hi) < 0 && errno == ENOENT;
}

static int vt1_open(const struct log_sink *log, const char *arg,
		    struct backend **out, char *errmsg, size_t errlen)
{
	struct backend *be;
	int fd, r;

	if (arg && *arg) {
		snprintf(errmsg, errlen, "the vfio-type1 backend takes no "
			 "argument (got \"%s\")", arg);
		return -EINVAL;
	}
	fd = open(CONTAINER_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = errno;
		if (r == ENOENT || r == ENODEV || r == ENXIO) {
			snprintf(errmsg, errlen, "this kernel has no "
				 CONTAINER_PATH " (CONFIG_VFIO_CONTAINER)");
			return -ENODEV;
		}
		snprintf(errmsg, errlen, "cannot open " CONTAINER_PATH ": %s",
			 strerror(r));
		return -r;
	}
	r = probe_container(fd, errmsg, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	be = calloc(1, sizeof(*be));
	if (!be) {
		close(fd);
		return -ENOMEM;
	}
	be->log = log;
	be->iommufd_compat = iommufd_compat(fd);
	close(fd);
	if (be->iommufd_compat) {
		snprintf(be->desc, sizeof(be->desc), CONTAINER_PATH " (iommufd's "
			 "VFIO container emulation, type1 v1: the kernel cuts)");
		info(log, "vfio-type1: " CONTAINER_PATH " is served by iommufd "
		     "(CONFIG_IOMMUFD_VFIO_CONTAINER): containers use "
		     "VFIO_TYPE1_IOMMU, large pages off, and cuts are the "
		     "kernel's own");
	} else {
		snprintf(be->desc, sizeof(be->desc), CONTAINER_PATH " (type1v2)");
	}
	*out = be;
	return 0;
}

static void vt1_close(struct backend *be)
{
	khotplug_release(&be->hotplug);
	free(be);
}

static const char *vt1_describe(struct backend *be)
{
	return be->desc;
}

static bool has_group(const struct inv_device *d)
{
	return (d->info.flags & IOASID_DEVICE_VFIO) && d->group_dev_path[0];
}

static int vt1_inventory(struct backend *be, struct inventory *inv)
{
	char msg[256];
	int r = kinv_scan(be->log, inv, has_group, msg, sizeof(msg));

	if (r < 0)
		err(be->log, "vfio-type1: %s", msg);
	return r;
}

/* A device is usable while a VFIO driver has it (and so its group). */
static bool usable(const char *name)
{
	char path[128], driver[64];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", name);
	return sysfs_link_name(NULL, path, driver, sizeof(driver)) >= 0 &&
	       strstr(driver, "vfio");
}

static int vt1_hotplug_fd(struct backend *be)
{
	return khotplug_fd(&be->hotplug, be->log);
}

static int vt1_hotplug_read(struct backend *be, char *name, size_t len,
			    bool *present)
{
	return khotplug_read(&be->hotplug, name, len, present, usable);
}

/* ---- kernel mappings ----------------------------------------------------- */

static int adopt_map(struct be_ioas *ioas, const struct kmap_entry *e,
		     uint64_t hva);

static int kmap_do_map(void *arg, const struct kmap_entry *e)
{
	struct be_ioas *ioas = arg;
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = kprot(e->prot, VFIO_DMA_MAP_FLAG_READ,
			       VFIO_DMA_MAP_FLAG_WRITE),
		.iova = e->iova,
		.size = e->length,
	};
	uint64_t hva;
	int r;

	/* the address is needed, and checked, even before the IOMMU is up */
	r = filemap_hva(&e->backing, e->length, &hva);
	if (r < 0 || !ioas->live)
		return r;
	if (ioas->adopted && ioas->tenant && ioas->tenant->adopting &&
	    adopt_map(ioas, e, hva) == 0)
		return 0;
	m.vaddr = hva;
	return kioctl(ioas->fd, VFIO_IOMMU_MAP_DMA, &m);
}

static int kmap_do_unmap(void *arg, uint64_t iova, uint64_t length)
{
	struct be_ioas *ioas = arg;
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .iova = iova, .size = length,
	};

	if (!ioas->live)
		return 0;
	if (ioas->adopted && ioas->tenant && ioas->tenant->adopting)
		return 0;	/* an import undoing itself: leave the kernel's */
	return kioctl(ioas->fd, VFIO_IOMMU_UNMAP_DMA, &u);
}

static void kmap_lost(void *arg, const struct kmap_entry *e)
{
	struct be_ioas *ioas = arg;

	err(ioas->be->log, "vfio-type1: a container lost IOVA 0x%llx-0x%llx "
	    "while undoing a failed unmap", (unsigned long long)e->iova,
	    (unsigned long long)(e->iova + e->length - 1));
}

static const struct kmap_ops vt1_kmap_ops = {
	.map = kmap_do_map,
	.unmap = kmap_do_unmap,
	.lost = kmap_lost,
	/* iommufd's emulation with VFIO_TYPE1_IOMMU: the same call cuts */
	.cut = kmap_do_unmap,
};

/* ---- address spaces (containers) ----------------------------------------- */

static bool adopt_container(struct be_tenant *t, struct be_ioas *ioas);

static int vt1_ioas_alloc(struct backend *be, struct be_tenant *tenant,
			  uint32_t flags, struct be_ioas **out)
{
	struct be_ioas *ioas = calloc(1, sizeof(*ioas));

	if (!ioas)
		return -ENOMEM;
	ioas->be = be;
	ioas->dma_avail = -1;
	/* every container is its own kernel object: a predecessor's, or new */
	if (!adopt_container(tenant, ioas))
		ioas->fd = open(CONTAINER_PATH, O_RDWR | O_CLOEXEC);
	if (ioas->fd < 0) {
		int r = -errno;

		free(ioas);
		return r;
	}
	ioas->tenant = tenant;
	if (tenant) {
		ioas->next = tenant->ioases;
		tenant->ioases = ioas;
	}
	/*
	 * iommufd's emulation cuts, so restricted containers are mapped by
	 * runs there; real type1 maps them page by page, so that
	 * conversions only ever unmap whole mappings.
	 */
	ioas->map.kernel_cuts = be->iommufd_compat;
	ioas->map.per_page = (flags & IOASID_IOAS_RESTRICTED) &&
			     !be->iommufd_compat;
	*out = ioas;
	return 0;
}

static void vt1_ioas_free(struct be_ioas *ioas)
{
	/* groups have left (the core detached every device): nothing mapped */
	if (ioas->tenant) {
		struct be_ioas **p = &ioas->tenant->ioases;

		while (*p && *p != ioas)
			p = &(*p)->next;
		if (*p)
			*p = ioas->next;
	}
	close(ioas->fd);
	kmap_release(&ioas->map);
	free(ioas->ranges);
	free(ioas);
}

static int vt1_map(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		   const struct be_backing *backing, uint32_t prot)
{
	if (ioas->frozen)
		return -EBUSY;
	return kmap_map(&ioas->map, &vt1_kmap_ops, ioas, iova, length, backing,
			prot);
}

static int vt1_unmap(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		     const struct be_piece *old, uint32_t nr_old)
{
	if (ioas->frozen)
		return -EBUSY;
	return kmap_unmap(&ioas->map, &vt1_kmap_ops, ioas, iova, length);
}

static size_t vt1_take_lost(struct be_ioas *ioas,
			    struct ioasid_iova_range *out, size_t cap)
{
	return kmap_take_lost(&ioas->map, out, cap);
}

static int vt1_hide_batch(struct be_ioas *ioas,
			  const struct ioasid_iova_range *runs, uint32_t nr)
{
	int r = ioas->frozen ? -EBUSY : 0;

	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = kmap_unmap(&ioas->map, &vt1_kmap_ops, ioas, runs[i].start,
			       runs[i].last - runs[i].start + 1);
	return r;
}

/* ---- VFIO_IOMMU_GET_INFO ------------------------------------------------- */

static void take_ranges(struct be_ioas *ioas,
			const struct vfio_iommu_type1_info_cap_iova_range *c,
			const char *end)
{
	const char *past = (const char *)&c->iova_ranges[c->nr_iovas];
	struct ioasid_iova_range *v;

	if (past > end || !c->nr_iovas)
		return;
	v = calloc(c->nr_iovas, sizeof(*v));
	if (!v)
		return;
	for (uint32_t i = 0; i < c->nr_iovas; i++)
		v[i] = (struct ioasid_iova_range){ c->iova_ranges[i].start,
						   c->iova_ranges[i].end };
	free(ioas->ranges);
	ioas->ranges = v;
	ioas->nr_ranges = c->nr_iovas;
}

/* Walk the capability chain: DMA_AVAIL and IOVA_RANGE. */
static void parse_caps(struct be_ioas *ioas,
		       const struct vfio_iommu_type1_info *info)
{
	const char *base = (const char *)info, *end = base + info->argsz;
	uint32_t off = info->cap_offset;

	for (int n = 0; off && n < 64; n++) {
		const struct vfio_info_cap_header *h;

		h = (const void *)(base + off);

		if (off < sizeof(*info) || base + off + sizeof(*h) > end)
			break;
		if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL &&
		    base + off + sizeof(struct vfio_iommu_type1_info_dma_avail)
		    <= end)
			ioas->dma_avail = ((const struct
				vfio_iommu_type1_info_dma_avail *)h)->avail;
		else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE &&
			 base + off + sizeof(struct
				vfio_iommu_type1_info_cap_iova_range) <= end)
			take_ranges(ioas, (const void *)h, end);
		off = h->next;
	}
}

static int get_info(struct be_ioas *ioas)
{
	struct vfio_iommu_type1_info *info;
	uint32_t size = sizeof(*info);
	int r;

	for (int tries = 0; tries < 3; tries++) {
		info = calloc(1, size);
		if (!info)
			return -ENOMEM;
		info->argsz = size;
		r = kioctl(ioas->fd, VFIO_IOMMU_GET_INFO, info);
		if (r == 0 && info->argsz > size) {
			size = info->argsz;	/* room for the caps */
			free(info);
			continue;
		}
		break;
	}
	if (r == 0) {
		ioas->pgsizes = info->flags & VFIO_IOMMU_INFO_PGSIZES ?
				info->iova_pgsizes : 0;
		ioas->dma_avail = -1;
		if (info->flags & VFIO_IOMMU_INFO_CAPS)
			parse_caps(ioas, info);
	}
	free(info);
	return r;
}

static void report_info(struct be_ioas *ioas)
{
	struct backend *be = ioas->be;

	if (ioas->dma_avail >= 0)
		snprintf(be->desc, sizeof(be->desc), CONTAINER_PATH
			 " (type1v2): %lld more DMA mappings allowed",
			 (long long)ioas->dma_avail);
	info(be->log, "vfio-type1: container up: page sizes 0x%llx, %lld "
	     "mappings available (dma_entry_limit), %u IOVA range(s)",
	     (unsigned long long)ioas->pgsizes, (long long)ioas->dma_avail,
	     ioas->nr_ranges);
}

/* ---- groups in containers ------------------------------------------------ */

/* The first group in a container: set up the IOMMU, program the record. */
static int bring_up(struct be_ioas *ioas)
{
	unsigned long type = ioas->be->iommufd_compat ? VFIO_TYPE1_IOMMU :
							VFIO_TYPE1v2_IOMMU;
	int r = kioctl(ioas->fd, VFIO_SET_IOMMU, (void *)type);

	if (r < 0)
		return r;
	if (ioas->live)		/* iommufd's emulation kept its mappings */
		goto info;
	ioas->live = true;
	r = kmap_replay(&ioas->map, &vt1_kmap_ops, ioas);
	if (r < 0) {
		warn(ioas->be->log, "vfio-type1: cannot program the %zu "
		     "mapping(s) made before the first attach: %s",
		     ioas->map.nr, strerror(-r));
		return r;
	}
info:
	if (get_info(ioas) == 0)
		report_info(ioas);
	return 0;
}

static void group_left(struct vt1_group *g)
{
	struct be_ioas *ioas = g->container;

	ioas->nr_groups--;
	if (g->enforce)
		ioas->nr_enforcing--;
	/*
	 * Real type1 tore the IOMMU down with the last group.  iommufd's
	 * emulation keeps its IOAS, and the mappings in it, in the container
	 * file: they are not programmed again.
	 */
	if (!ioas->nr_groups && !ioas->be->iommufd_compat)
		ioas->live = false;
	g->container = NULL;
}

/* -errno with the reason in @why (when not NULL, else logged). */
static int group_leave(struct backend *be, struct vt1_group *g, char *why,
		       size_t len)
{
	int r = kioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER, NULL);
	char buf[256];

	if (r == 0) {
		group_left(g);
		return 0;
	}
	if (r == -EBUSY)
		snprintf(buf, sizeof(buf), "a device fd of VFIO group %u is "
			 "open, so the kernel keeps the group in its container "
			 "(VFIO_GROUP_UNSET_CONTAINER: EBUSY), where DMA still "
			 "reaches: close the device fds first", g->number);
	else
		snprintf(buf, sizeof(buf), "VFIO group %u cannot leave its "
			 "container (VFIO_GROUP_UNSET_CONTAINER: %s)",
			 g->number, strerror(-r));
	if (why)
		snprintf(why, len, "%s", buf);
	else
		err(be->log, "vfio-type1: %s", buf);
	return r;
}

static int group_join(struct backend *be, struct vt1_group *g,
		      struct be_ioas *ioas, bool enforce)
{
	int r;

	/*
	 * A predecessor's group already in the adopted container: the
	 * kernel says only that it is in one (VFIO_GROUP_SET_CONTAINER
	 * answers EINVAL whichever), so it is taken as the image says.
	 */
	if (g->in_kernel_container && ioas->adopted && ioas->live) {
		g->in_kernel_container = false;
		g->container = ioas;
		g->enforce = enforce;
		ioas->nr_groups++;
		if (enforce)
			ioas->nr_enforcing++;
		return 0;
	}
	r = kioctl(g->fd, VFIO_GROUP_SET_CONTAINER, &ioas->fd);
	if (r < 0)
		return r;
	g->container = ioas;
	g->enforce = enforce;
	ioas->nr_groups++;
	if (enforce)
		ioas->nr_enforcing++;
	if (ioas->live)
		return 0;
	r = bring_up(ioas);
	/* unsetting the only group drops the IOMMU again */
	if (r < 0 && kioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER, NULL) == 0)
		group_left(g);
	return r;
}

/* Does the kernel's coherency for the container match the classes? */
static void check_cc(struct be_ioas *ioas)
{
	int cc = ioctl(ioas->fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU);
	int want = ioas->nr_groups == ioas->nr_enforcing;

	if (cc >= 0 && cc != want)
		warn(ioas->be->log, "vfio-type1: VFIO_DMA_CC_IOMMU says %d, "
		     "but %u of %u group(s) joined as coherent", cc,
		     ioas->nr_enforcing, ioas->nr_groups);
}

/* ---- domains ------------------------------------------------------------- */

static int vt1_domain_alloc(struct be_ioas *ioas, const struct inv_iommu *unit,
			    uint32_t flags, const struct be_replay *replay,
			    struct be_domain **out)
{
	bool enforce = flags & BE_DOMAIN_ENFORCE_COHERENCY;
	bool can = unit->info.flags & IOASID_IOMMU_SNOOP_CONTROL;
	struct be_domain *d;

	if (enforce && !can)
		return -EINVAL;
	if (!enforce && can) {
		/* vfio_iommu_type1 enforces wherever the IOMMU can */
		warn(ioas->be->log, "vfio-type1: type1 makes every domain "
		     "on %s enforce cache coherency: snoop mode \"allow\" "
		     "is not supported by this backend", unit->info.name);
		return -EOPNOTSUPP;
	}
	if (flags & BE_DOMAIN_DIRTY_TRACKING)
		return -EOPNOTSUPP;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ioas = ioas;
	d->unit = unit;
	d->enforce = enforce;
	*out = d;
	return 0;
}

static void vt1_domain_free(struct be_domain *d)
{
	free(d);
}

/* ---- devices ------------------------------------------------------------- */

static struct vt1_group *find_group(struct backend *be, uint32_t number)
{
	struct vt1_group *g;

	for (g = be->groups; g && g->number != number; g = g->next)
		;
	return g;
}

static int check_viable(struct backend *be, int fd, uint32_t number,
			bool *in_container)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int r = kioctl(fd, VFIO_GROUP_GET_STATUS, &st);

	if (r < 0)
		return r == -ENOTTY ? -EINVAL : r;	/* not a group fd */
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		warn(be->log, "vfio-type1: group %u is not viable: every "
		     "device in it must be bound to a VFIO driver", number);
		return -EBUSY;
	}
	*in_container = st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET;
	return 0;
}

static void adopt_group(struct be_tenant *t, const struct inv_device *inv,
			int *fd);

static int group_get(struct backend *be, struct be_tenant *t,
		     const struct inv_device *inv, int vfio_fd,
		     struct vt1_group **out)
{
	struct vt1_group *g = find_group(be, inv->info.group);
	int r, adopted = -1;

	/* a predecessor's group: its descriptor (the kernel opens one only) */
	adopt_group(t, inv, &adopted);
	if (g) {
		if (adopted >= 0)
			close(adopted);	/* a group-mate's: the same file */
		g->refs++;
		*out = g;
		return 0;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->number = inv->info.group;
	g->fd = vfio_fd;
	if (adopted >= 0) {
		g->adopted_by = t;
		if (g->fd >= 0) {
			close(adopted);	/* the core's own is the same file */
		} else {
			g->fd = adopted;
			g->own_fd = true;
		}
	}
	if (g->fd < 0) {
		g->fd = open(inv->group_dev_path, O_RDWR | O_CLOEXEC);
		if (g->fd < 0) {
			r = -errno;
			warn(be->log, "vfio-type1: cannot open %s: %s%s",
			     inv->group_dev_path, strerror(-r), r == -EBUSY ?
			     " (open elsewhere, or its device is bound to "
			     "iommufd through its cdev)" : "");
			free(g);
			return r;
		}
		g->own_fd = true;
	}
	r = check_viable(be, g->fd, g->number, &g->in_kernel_container);
	if (r < 0) {
		if (g->own_fd)
			close(g->fd);
		free(g);
		return r;
	}
	if (adopted < 0)
		g->in_kernel_container = false;	/* not a predecessor's */
	g->refs = 1;
	g->next = be->groups;
	be->groups = g;
	*out = g;
	return 0;
}

static void group_put(struct backend *be, struct vt1_group *g)
{
	struct vt1_group **p = &be->groups;

	if (--g->refs)
		return;
	if (g->container && !still_adopting(g))
		group_leave(be, g, NULL, 0);	/* logged */
	while (*p && *p != g)
		p = &(*p)->next;
	if (*p)
		*p = g->next;
	if (g->own_fd)
		close(g->fd);
	free(g);
}

/*
 * @vfio_fd, when given, must be the device's group (/dev/vfio/N): type1
 * hands out device fds only once the group is in a container with an
 * IOMMU, which is after attach.  The caller gets its device fd from its
 * own group fd then (VFIO_GROUP_GET_DEVICE_FD), and must close it before
 * the device is detached.
 */
static int vt1_device_open(struct backend *be, struct be_tenant *tenant,
			   const struct inv_device *inv,
			   const struct inv_iommu *unit, uint32_t dev_id,
			   int vfio_fd, struct be_device **out)
{
	struct be_device *dev = calloc(1, sizeof(*dev));
	int r;

	if (!dev)
		return -ENOMEM;
	r = group_get(be, tenant, inv, vfio_fd, &dev->group);
	if (r < 0) {
		free(dev);
		return r;
	}
	dev->be = be;
	dev->inv = inv;
	dev->unit = unit;
	*out = dev;
	return 0;
}

/*
 * The last attached device of a group takes the group out of the
 * container.  The kernel refuses (EBUSY) while a device fd of the group
 * is open: then nothing changes and the caller learns why, since the
 * group's devices would still reach the container's mappings.
 */
static int vt1_detach(struct be_device *dev, char *why, size_t len)
{
	struct vt1_group *g = dev->group;
	int r;

	if (g->container && g->container->frozen) {
		snprintf(why, len, "a hand-over of VFIO group %u's container "
			 "is under way", g->number);
		return -EBUSY;
	}
	if (g->attached == 1 && g->container && !still_adopting(g)) {
		r = group_leave(dev->be, g, why, len);
		if (r < 0)
			return r;
	}
	if (g->attached)
		g->attached--;	/* else group-mates still use the container */
	dev->domain = NULL;
	return 0;
}

static void vt1_device_close(struct be_device *dev)
{
	char why[256];

	/* closing cannot be refused: what remains is logged */
	if (dev->domain && !still_adopting(dev->group) &&
	    vt1_detach(dev, why, sizeof(why)) < 0) {
		err(dev->be->log, "vfio-type1: %s", why);
		dev->domain = NULL;
		dev->group->attached--;
	}
	group_put(dev->be, dev->group);
	free(dev);
}

/*
 * Attach: the group joins the domain's container.  A replace to another
 * container must leave the old one first: type1 cannot move a group
 * without a gap (DMA is blocked in between).
 */
static int vt1_attach(struct be_device *dev, struct be_domain *d)
{
	struct vt1_group *g = dev->group;
	struct be_ioas *old = g->container;
	int r;

	if ((old && old->frozen) || d->ioas->frozen)
		return -EBUSY;		/* a hand-over is under way */
	if (old == d->ioas) {
		if (g->enforce != d->enforce)
			return -EINVAL;	/* not the class it is in */
		if (!dev->domain)
			g->attached++;
		dev->domain = d;
		return 0;
	}
	if (old && g->attached > (dev->domain ? 1u : 0u))
		return -EBUSY;		/* group-mates stay there */
	if (old) {
		r = group_leave(dev->be, g, NULL, 0);
		if (r < 0)
			return r;
	}
	r = group_join(dev->be, g, d->ioas, d->enforce);
	if (r < 0) {
		if (old && group_join(dev->be, g, old, g->enforce) < 0)
			err(dev->be->log, "vfio-type1: group %u lost its "
			    "container after a failed replace", g->number);
		return r;
	}
	check_cc(d->ioas);
	if (!dev->domain)
		g->attached++;
	dev->domain = d;
	return 0;
}

static int vt1_device_vfio_fd(struct be_device *dev)
{
	/* kvm-vfio takes the group, as QEMU passes it */
	return dev->group->fd;
}

/* ---- hand-over: a successor takes the containers over -------------------- */

/*
 * The kernel's containers live as long as their files are open, in
 * whichever process, and keep their IOMMU mappings and pinned pages; but
 * type1 knows each mapping by the address it was mapped from, in the
 * process that mapped it.  So the predecessor, after writing its image,
 * makes the kernel forget its addresses (->handover_begin:
 * VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_VADDR |
 * VFIO_DMA_UNMAP_FLAG_ALL; the pages stay pinned and mapped, so the
 * devices' DMA goes on; only the kernel's own accesses to them, mdev
 * pinning and new attaches, wait or are refused), and the successor,
 * given the container and group descriptors, maps the same files and
 * registers each mapping with its own address (VFIO_IOMMU_MAP_DMA with
 * VFIO_DMA_MAP_FLAG_VADDR: same IOVA and size, else the kernel refuses;
 * it also moves the locked-memory charge to the caller).  That
 * registration is the check that the kernel still has the mapping: ENOENT
 * (it has none there) makes it again; a mapping whose address the kernel
 * still holds (a predecessor that could not forget it: a crash) is made
 * to forget it first.  What was made again is counted and logged; nothing
 * is ever unmapped.  A hand-over given up gives the predecessor its
 * addresses back the same way (->handover_cancel).
 */

static void note_lost(struct be_tenant *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note_lost(struct be_tenant *t, const char *fmt, ...)
{
	size_t len = strlen(t->lost);
	va_list ap;

	t->nr_rebuilt++;
	if (len + 2 >= sizeof(t->lost))
		return;
	if (len)
		t->lost[len++] = ';', t->lost[len++] = ' ';
	t->lost[len] = 0;
	va_start(ap, fmt);
	vsnprintf(t->lost + len, sizeof(t->lost) - len, fmt, ap);
	va_end(ap);
}

static int vt1_tenant_open(struct backend *be, struct be_tenant **out)
{
	struct be_tenant *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->be = be;
	*out = t;
	return 0;
}

static void vt1_tenant_close(struct be_tenant *t)
{
	free(t);
}

static int vt1_kobj(const void *obj, uint32_t kind, struct be_kobj *out)
{
	*out = (struct be_kobj){ .kind = kind, .fd = { -1, -1 } };
	switch (kind) {
	case BE_KOBJ_IOAS:
		out->fd[0] = ((const struct be_ioas *)obj)->fd;
		return 0;
	case BE_KOBJ_DEVICE:
		out->fd[0] = ((const struct be_device *)obj)->group->fd;
		return 0;
	}
	return -EINVAL;		/* no session file; domains are implicit */
}

static int vt1_adopt(struct backend *be, struct be_tenant *t,
		     const struct be_kobj *k)
{
	(void)be;
	if (!t)
		return -EINVAL;
	if (k->kind != BE_KOBJ_IOAS && k->kind != BE_KOBJ_DEVICE)
		return -EINVAL;
	if (k->fd[0] < 0)
		return -EBADF;
	t->adopting = true;
	t->pending = *k;
	return 0;
}

static bool take_pending(struct be_tenant *t, uint32_t kind,
			 struct be_kobj *k)
{
	if (!t || !t->adopting || t->pending.kind != kind)
		return false;
	*k = t->pending;
	t->pending.kind = 0;
	return true;
}

/* The predecessor's container, if the image announced one. */
static bool adopt_container(struct be_tenant *t, struct be_ioas *ioas)
{
	struct be_kobj k;
	int fd;

	if (!take_pending(t, BE_KOBJ_IOAS, &k))
		return false;
	fd = fcntl(k.fd[0], F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || ioctl(fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		note_lost(t, "a container descriptor that is not one");
		if (fd >= 0)
			close(fd);
		return false;
	}
	ioas->fd = fd;
	ioas->adopted = true;
	/* an IOMMU set up: GET_INFO answers (else no group was in it) */
	if (get_info(ioas) == 0)
		ioas->live = true;
	return true;
}

/* The predecessor's group descriptor in *@fd (ours), if announced. */
static void adopt_group(struct be_tenant *t, const struct inv_device *inv,
			int *fd)
{
	struct be_kobj k;

	if (!take_pending(t, BE_KOBJ_DEVICE, &k))
		return;
	*fd = fcntl(k.fd[0], F_DUPFD_CLOEXEC, 3);
	if (*fd < 0)
		note_lost(t, "group of %s: %s", inv->info.name,
			  strerror(errno));
}

static int set_vaddr(int fd, const struct kmap_entry *e, uint64_t hva)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_VADDR,
		.iova = e->iova, .size = e->length, .vaddr = hva,
	};

	return kioctl(fd, VFIO_IOMMU_MAP_DMA, &m);
}

static int forget_vaddr(int fd, uint64_t iova, uint64_t length)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .flags = VFIO_DMA_UNMAP_FLAG_VADDR,
		.iova = iova, .size = length,
	};

	return kioctl(fd, VFIO_IOMMU_UNMAP_DMA, &u);
}

/*
 * Register our address for a kernel mapping of exactly @e's range:
 * 0, -ENOENT (the kernel has none there), or another -errno (it has
 * another layout there).
 */
static int take_mapping(int fd, const struct kmap_entry *e, uint64_t hva)
{
	int r = set_vaddr(fd, e, hva);

	/* EINVAL: its address is still known, or another layout */
	if (r == -EINVAL && forget_vaddr(fd, e->iova, e->length) == 0) {
		r = set_vaddr(fd, e, hva);
		if (r < 0)
			return r;
	}
	return r;
}

/* 0: taken over; <0: the caller maps it again (counted, logged). */
static int adopt_map(struct be_ioas *ioas, const struct kmap_entry *e,
		     uint64_t hva)
{
	int r = take_mapping(ioas->fd, e, hva);

	if (r < 0)
		note_lost(ioas->tenant, "container mapping 0x%llx+0x%llx: %s",
			  (unsigned long long)e->iova,
			  (unsigned long long)e->length, r == -ENOENT ?
			  "not in the kernel" : strerror(-r));
	return r;
}

static int vt1_adopt_end(struct be_tenant *t, char *why, size_t len)
{
	int r;

	if (!t->adopting)
		return 0;
	t->adopting = false;
	t->pending.kind = 0;
	snprintf(why, len, "%s", t->lost);
	r = (int)t->nr_rebuilt;
	t->nr_rebuilt = 0;
	t->lost[0] = 0;
	return r;
}

/* Give @ioas's kernel mappings our addresses back (a hand-over given up). */
static int thaw(struct be_ioas *ioas, char *why, size_t len)
{
	int r = 0;

	/* without an IOMMU the kernel has no mappings (the record) */
	for (size_t i = 0; ioas->live && i < ioas->map.nr; i++) {
		const struct kmap_entry *e = &ioas->map.v[i];
		uint64_t hva;
		int q = filemap_hva(&e->backing, e->length, &hva);

		if (q == 0)
			q = take_mapping(ioas->fd, e, hva);
		if (q < 0 && r == 0) {
			snprintf(why, len, "container mapping 0x%llx+0x%llx "
				 "keeps no address: %s",
				 (unsigned long long)e->iova,
				 (unsigned long long)e->length, strerror(-q));
			r = q;
		}
	}
	if (r == 0)
		ioas->frozen = false;
	return r;
}

static int vt1_handover_cancel(struct be_tenant *t, char *why, size_t len)
{
	int r = 0;

	for (struct be_ioas *ioas = t->ioases; ioas; ioas = ioas->next)
		if (ioas->frozen) {
			int q = thaw(ioas, why, len);

			r = r < 0 ? r : q;
		}
	if (r == 0)
		info(t->be->log, "vfio-type1: hand-over given up: the "
		     "containers' mappings have this process's addresses "
		     "again");
	return r;
}

static int vt1_handover_begin(struct be_tenant *t, char *why, size_t len)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.flags = VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL,
	};
	struct be_ioas *ioas;
	unsigned int n = 0;
	int r = 0;

	for (ioas = t->ioases; ioas && r == 0; ioas = ioas->next) {
		if (ioas->frozen) {
			snprintf(why, len, "a hand-over of this session is "
				 "already under way");
			r = -EBUSY;
		} else if (ioas->live &&
			   ioctl(ioas->fd, VFIO_CHECK_EXTENSION,
				 VFIO_UPDATE_VADDR) != 1) {
			snprintf(why, len, "this kernel's VFIO type1 cannot "
				 "give a container's mappings new addresses "
				 "(no VFIO_UPDATE_VADDR: an mdev in the "
				 "container, or iommufd's emulation)");
			r = -EOPNOTSUPP;
		}
	}
	for (ioas = t->ioases; ioas && r == 0; ioas = ioas->next) {
		/* without an IOMMU the kernel has no mappings (the record) */
		if (ioas->live) {
			r = kioctl(ioas->fd, VFIO_IOMMU_UNMAP_DMA, &u);
			if (r < 0) {
				snprintf(why, len, "the kernel cannot forget "
					 "this process's addresses for a "
					 "container (VFIO_IOMMU_UNMAP_DMA with "
					 "VFIO_DMA_UNMAP_FLAG_VADDR: %s%s)",
					 strerror(-r), r == -EINVAL ? ": some "
					 "are forgotten already" : "");
				break;
			}
		}
		ioas->frozen = true;
		n += (unsigned int)ioas->map.nr;
	}
	if (r < 0) {
		char ignored[8];

		vt1_handover_cancel(t, ignored, sizeof(ignored));
		return r;
	}
	info(t->be->log, "vfio-type1: hand-over begun: the kernel forgot "
	     "this process's addresses of %u container mapping(s); DMA goes "
	     "on", n);
	return 0;
}

/* ---- white-box test hooks (vfio_type1.h) --------------------------------- */

int vfio_type1_test_container_fd(const struct be_ioas *ioas)
{
	return ioas->fd;
}

int vfio_type1_test_group_fd(const struct be_device *device)
{
	return device->group->fd;
}

int64_t vfio_type1_test_dma_avail(const struct be_ioas *ioas)
{
	struct be_ioas *mut = (struct be_ioas *)ioas;

	if (ioas->live)
		get_info(mut);
	return ioas->dma_avail;
}

int vfio_type1_test_iova_ranges(const struct be_ioas *ioas,
				const struct ioasid_iova_range **ranges,
				uint32_t *nr)
{
	*ranges = ioas->ranges;
	*nr = ioas->nr_ranges;
	return ioas->live ? 0 : -ENODEV;
}

int vfio_type1_test_cc(const struct be_ioas *ioas)
{
	return ioctl(ioas->fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU);
}

bool vfio_type1_test_iommufd_compat(const struct backend *be)
{
	return be->iommufd_compat;
}

const struct backend_ops backend_vfio_type1 = {
	.name = "vfio-type1",
	.unmap_wants_pieces = false,	/* kcommon keeps its own record */
	.open = vt1_open,
	.close = vt1_close,
	.describe = vt1_describe,
	.inventory = vt1_inventory,
	.tenant_open = vt1_tenant_open,
	.tenant_close = vt1_tenant_close,
	.ioas_alloc = vt1_ioas_alloc,
	.ioas_free = vt1_ioas_free,
	.map = vt1_map,
	.unmap = vt1_unmap,
	.take_lost = vt1_take_lost,
	.hide_batch = vt1_hide_batch,
	.domain_alloc = vt1_domain_alloc,
	.domain_free = vt1_domain_free,
	.device_open = vt1_device_open,
	.device_close = vt1_device_close,
	.attach = vt1_attach,
	.detach = vt1_detach,
	.device_vfio_fd = vt1_device_vfio_fd,
	.kobj = vt1_kobj,
	.adopt = vt1_adopt,
	.adopt_end = vt1_adopt_end,
	.handover_begin = vt1_handover_begin,
	.handover_cancel = vt1_handover_cancel,
	.hotplug_fd = vt1_hotplug_fd,
	.hotplug_read = vt1_hotplug_read,
};
