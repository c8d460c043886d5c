/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Linux iommufd backend: /dev/iommu and VFIO device cdevs.
 *
 *   be_ioas    a kernel IOAS (IOMMU_IOAS_ALLOC) and the backend's record of
 *              the mappings it holds (kcommon.h: kmap)
 *   be_domain  a kernel HWPT allocated from that IOAS for a device of the
 *              unit (IOMMU_HWPT_ALLOC); the kernel mirrors the IOAS into it
 *   be_device  a VFIO cdev bound to its tenant's iommufd
 *              (VFIO_DEVICE_BIND_IOMMUFD)
 *   be_tenant  one session's own /dev/iommu: its IOASes, HWPTs and bound
 *              devices live there, so a device file handed out can name
 *              no other session's IOAS or HWPT (kernel object ids are per
 *              iommufd: iommufd_get_object(idev->ictx, ...))
 *
 * Files are mapped by fd and offset (IOMMU_IOAS_MAP_FILE) except
 * guest_memfd, which the kernel refuses there: it is mapped into this
 * process and given by address (IOMMU_IOAS_MAP), as user memory is.
 * Everything the backend allocates in the kernel is IOMMU_DESTROYed when
 * its object goes.  See README in this directory for the whole mapping
 * of seam operations to ioctls and for what is not atomic.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "backends/filemap.h"
#include "backends/kcommon/kcommon.h"
#include "core/file.h"
#include "util/bitmap.h"
#include "util/log.h"
#include "util/macros.h"

#define IOMMUFD_PATH "/dev/iommu"
/* "iommufd:mock": the selftest driver's mock devices (see mock_*) */
#define MOCK_UNIT	"iommufd_mock"
#define MOCK_MAX	16
#define MOCK_DEFAULT	2
#define MOCK_GROUP_BASE	0x80000000u	/* not sysfs groups: one each */
#define MOCK_FAULTS	16		/* DMA fault records kept per device */

_Static_assert(sizeof(struct ifd_test_cmd) == 72,
	       "struct iommu_test_cmd of drivers/iommu/iommufd/iommufd_test.h");

struct backend {
	const struct log_sink *log;
	uint64_t calls[IOMMUFD_CALL_NR];	/* the trace: ioctls issued */
	uint32_t nr_tenants;		/* open now */
	bool no_map_file;		/* kernel before 6.13 */
	uint32_t nr_mock;		/* "iommufd:mock[=N]": mock devices */
	struct khotplug hotplug;
	char desc[IOASID_PATH_MAX];
};

/* One session's iommufd. */
struct be_tenant {
	struct backend *be;
	int fd;				/* its own /dev/iommu */
	struct be_device *devices;	/* bound to it */
	/* mock devices: the empty IOAS a detached one is parked on */
	uint32_t park_ioas;
	uint32_t nr_parked;		/* mock devices using it */
};

struct be_ioas {
	struct backend *be;
	struct be_tenant *tenant;	/* the iommufd it lives in */
	uint32_t id;			/* kernel IOAS */
	bool page_granular;		/* IOMMU_OPTION_HUGE_PAGES 0: cuts split */
	bool nest_parent;		/* its HWPTs: IOMMU_HWPT_ALLOC_NEST_PARENT */
	struct kmap map;
	struct be_domain *domains;	/* its HWPTs (unmap_dirty) */
};

/* Every mapping ioctl goes through here, so the trace is complete. */
static int traced(struct be_tenant *t, enum iommufd_call c, unsigned long req,
		  void *arg)
{
	t->be->calls[c]++;
	return kioctl(t->fd, req, arg);
}

struct be_domain {
	struct be_ioas *ioas;
	const struct inv_iommu *unit;
	uint32_t hwpt_id;
	bool enforce;
	bool can_track;			/* allocated with DIRTY_TRACKING */
	bool dirty;			/* dirty tracking on */
	struct be_domain *next;		/* in be_ioas.domains */
};

/* A PASID of a device attached to a HWPT (and, mock, its DMA access). */
struct ifd_pasid {
	uint32_t pasid;
	struct be_domain *domain;
	int access_fd;			/* mock devices; -1 */
};

struct be_device {
	struct backend *be;
	struct be_tenant *tenant;	/* bound to its iommufd */
	const struct inv_device *inv;
	const struct inv_iommu *unit;
	int fd;				/* the VFIO cdev */
	bool own_fd;			/* opened here, else the core's */
	uint32_t dev_id;		/* the kernel's, from BIND_IOMMUFD */
	struct be_domain *domain;
	/* IOMMU_GET_HW_INFO */
	uint32_t hw_type;
	uint64_t hw_caps;
	uint64_t cap, ecap;		/* VT-d registers */
	struct be_device *next;
	uint8_t max_pasid_log2;		/* GET_HW_INFO: 0, no PASIDs */
	struct ifd_pasid *pasids;	/* attached PASIDs, in no order */
	uint32_t nr_pasids;
	/* a mock device of the kernel's selftest driver ("iommufd:mock") */
	bool mock;
	uint32_t park_hwpt;		/* its PASID-capable HWPT on the park */
	uint32_t core_id;		/* the core's dev_id, in fault records */
	uint32_t stdev_id;		/* its selftest object */
	int access_fd;			/* its DMA: an access on its IOAS */
	pthread_mutex_t fault_lock;	/* ->dma runs beside everything */
	struct ioasid_fault faults[MOCK_FAULTS];
	uint32_t fault_head, fault_len;
	uint64_t faults_lost;
};

static void destroy_object(struct be_tenant *t, uint32_t id, const char *what)
{
	struct ifd_destroy d = { .size = sizeof(d), .id = id };
	int r = kioctl(t->fd, IFD_DESTROY, &d);

	if (r < 0)
		err(t->be->log, "iommufd: IOMMU_DESTROY of %s %u: %s", what, id,
		    strerror(-r));
}

/* ---- open ---------------------------------------------------------------- */

static int open_error(int e, char *errmsg, size_t errlen)
{
	if (e == ENOENT || e == ENODEV || e == ENXIO) {
		snprintf(errmsg, errlen, "this kernel has no " IOMMUFD_PATH
			 " (CONFIG_IOMMUFD)");
		return -ENODEV;
	}
	snprintf(errmsg, errlen, "cannot open " IOMMUFD_PATH ": %s",
		 strerror(e));
	return -e;
}

/*
 * iommufd before 6.6 has no IOMMU_GET_HW_INFO, IOMMU_HWPT_ALLOC nor VFIO
 * cdevs: ask for the hardware info of device id 0, which cannot exist.
 */
static int probe(int fd, char *errmsg, size_t errlen)
{
	struct ifd_hw_info hi = { .size = sizeof(hi) };
	int r = kioctl(fd, IFD_GET_HW_INFO, &hi);

	if (r == -ENOTTY || r == -EOPNOTSUPP) {
		snprintf(errmsg, errlen, "this kernel's iommufd predates "
			 "Linux 6.6 (no IOMMU_GET_HW_INFO / IOMMU_HWPT_ALLOC "
			 "/ VFIO device cdevs)");
		return -ENODEV;
	}
	return 0;
}

/* "" or NULL: real devices only; "mock" or "mock=N": N mock devices too. */
static int parse_arg(const char *arg, uint32_t *nr_mock, char *errmsg,
		     size_t errlen)
{
	char *end;
	unsigned long n;

	*nr_mock = 0;
	if (!arg || !*arg)
		return 0;
	if (!strcmp(arg, "mock")) {
		*nr_mock = MOCK_DEFAULT;
		return 0;
	}
	if (!strncmp(arg, "mock=", 5) && arg[5] >= '0' && arg[5] <= '9') {
		errno = 0;
		n = strtoul(arg + 5, &end, 10);
		if (!*end && !errno && n >= 1 && n <= MOCK_MAX) {
			*nr_mock = (uint32_t)n;
			return 0;
		}
	}
	snprintf(errmsg, errlen, "the iommufd backend's argument is \"mock\" "
		 "or \"mock=N\" (1 to %u mock devices of the kernel's selftest "
		 "driver), not \"%s\"", MOCK_MAX, arg);
	return -EINVAL;
}

/*
 * The selftest driver answers IOMMU_TEST_CMD; without CONFIG_IOMMUFD_TEST
 * the command does not exist (ENOTTY).  Op 0 is no op: EOPNOTSUPP.
 */
static int probe_mock(int fd, char *errmsg, size_t errlen)
{
	struct ifd_test_cmd c = { .size = sizeof(c), .op = 0 };
	int r = kioctl(fd, IFD_TEST_CMD, &c);

	if (r == -EOPNOTSUPP)
		return 0;
	snprintf(errmsg, errlen, "\"iommufd:mock\" needs the kernel's iommufd "
		 "selftest driver (CONFIG_IOMMUFD_TEST), which this kernel "
		 "does not have (IOMMU_TEST_CMD: %s)",
		 strerror(r < 0 ? -r : EINVAL));
	return -EOPNOTSUPP;
}

static int iommufd_open(const struct log_sink *log, const char *arg,
			struct backend **out, char *errmsg, size_t errlen)
{
	struct backend *be;
	int fd, r;

	uint32_t nr_mock = 0;

	r = parse_arg(arg, &nr_mock, errmsg, errlen);
	if (r < 0)
		return r;
	/* only to probe: every session opens its own (tenant_open) */
	fd = open(IOMMUFD_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return open_error(errno, errmsg, errlen);
	r = probe(fd, errmsg, errlen);
	if (r == 0 && nr_mock)
		r = probe_mock(fd, errmsg, errlen);
	close(fd);
	if (r < 0)
		return r;
	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->log = log;
	be->nr_mock = nr_mock;
	snprintf(be->desc, sizeof(be->desc), IOMMUFD_PATH " (one per session%s)",
		 nr_mock ? "; selftest mock devices" : "");
	if (nr_mock)
		warn(log, "iommufd: offering %u mock device(s) of the kernel's "
		     "selftest driver (CONFIG_IOMMUFD_TEST): for tests only",
		     nr_mock);
	*out = be;
	return 0;
}

static void iommufd_close(struct backend *be)
{
	if (be->nr_tenants)
		err(be->log, "iommufd: %u session iommufd(s) still open at "
		    "close", be->nr_tenants);
	khotplug_release(&be->hotplug);
	free(be);
}

/* ---- tenants: one /dev/iommu per session --------------------------------- */

static int iommufd_tenant_open(struct backend *be, struct be_tenant **out)
{
	struct be_tenant *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->be = be;
	t->fd = open(IOMMUFD_PATH, O_RDWR | O_CLOEXEC);
	if (t->fd < 0) {
		int e = errno;

		err(be->log, "iommufd: cannot open " IOMMUFD_PATH " for a "
		    "session: %s", strerror(e));
		free(t);
		return -e;
	}
	be->nr_tenants++;
	*out = t;
	return 0;
}

/*
 * After the session's last IOAS and device went.  A device file the
 * session handed out stays bound to this iommufd (the kernel keeps the
 * context while a device is bound to it), with no IOAS or HWPT left in
 * it to attach to.
 */
static void iommufd_tenant_close(struct be_tenant *t)
{
	if (t->devices)
		err(t->be->log, "iommufd: a session's iommufd closed with "
		    "devices still bound");
	t->be->nr_tenants--;
	close(t->fd);
	free(t);
}

static const char *iommufd_describe(struct backend *be)
{
	return be->desc;
}

static bool has_cdev(const struct inv_device *d)
{
	return d->info.vfio_cdev[0] && d->vfio_dev_path[0];
}

static int mock_inventory(struct backend *be, struct inventory *inv);

static int iommufd_inventory(struct backend *be, struct inventory *inv)
{
	char msg[256];
	int r = kinv_scan(be->log, inv, has_cdev, msg, sizeof(msg));

	if (r < 0)
		err(be->log, "iommufd: %s", msg);
	if (r == 0 && be->nr_mock)
		r = mock_inventory(be, inv);
	else if (r == 0 && !inv->nr_devices)
		notice(be->log, "iommufd: no device has a VFIO cdev (bind one "
		       "to vfio-pci; CONFIG_VFIO_DEVICE_CDEV)");
	return r;
}

/* A device is usable while its VFIO cdev exists. */
static bool cdev_now(const char *name, char *path, size_t len)
{
	char dir[128];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/vfio-dev", name);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d)))
		if (!strncmp(e->d_name, "vfio", 4)) {
			if (path)
				snprintf(path, len, "/dev/vfio/devices/%s",
					 e->d_name);
			found = true;
		}
	closedir(d);
	return found;
}

static bool usable(const char *name)
{
	return cdev_now(name, NULL, 0);
}

static int iommufd_hotplug_fd(struct backend *be)
{
	return khotplug_fd(&be->hotplug, be->log);
}

static int iommufd_hotplug_read(struct backend *be, char *name, size_t len,
				bool *present)
{
	return khotplug_read(&be->hotplug, name, len, present, usable);
}

/* ---- kernel mappings ----------------------------------------------------- */

static int map_by_address(struct be_ioas *ioas, const struct kmap_entry *e,
			  uint32_t flags)
{
	struct ifd_ioas_map m = {
		.size = sizeof(m), .flags = flags, .ioas_id = ioas->id,
		.length = e->length, .iova = e->iova,
	};
	uint64_t hva;
	int r;

	r = filemap_hva(&e->backing, e->length, &hva);
	if (r < 0)
		return r;
	m.user_va = hva;
	return traced(ioas->tenant, IOMMUFD_CALL_MAP, IFD_IOAS_MAP, &m);
}

static int map_by_file(struct be_ioas *ioas, const struct kmap_entry *e,
		       uint32_t flags)
{
	struct ifd_ioas_map_file m = {
		.size = sizeof(m), .flags = flags, .ioas_id = ioas->id,
		.fd = e->backing.fd, .start = e->backing.offset,
		.length = e->length, .iova = e->iova,
	};

	return traced(ioas->tenant, IOMMUFD_CALL_MAP_FILE, IFD_IOAS_MAP_FILE, &m);
}

static bool by_file(const struct backend *be, const struct be_backing *b)
{
	return b->file && b->file->kind != IOASID_FILE_GUEST_MEMFD &&
	       !be->no_map_file;
}

static int kmap_do_map(void *arg, const struct kmap_entry *e)
{
	struct be_ioas *ioas = arg;
	uint32_t flags = IFD_MAP_FIXED_IOVA |
			 kprot(e->prot, IFD_MAP_READABLE, IFD_MAP_WRITEABLE);
	int r;

	if (!by_file(ioas->be, &e->backing))
		return map_by_address(ioas, e, flags);
	r = map_by_file(ioas, e, flags);
	if (r == -ENOTTY) {
		notice(ioas->be->log, "iommufd: no IOMMU_IOAS_MAP_FILE (Linux "
		       "before 6.13): mapping files by address");
		ioas->be->no_map_file = true;
		snprintf(ioas->be->desc, sizeof(ioas->be->desc), IOMMUFD_PATH
			 " (one per session; files mapped by address)");
		r = map_by_address(ioas, e, flags);
	}
	return r;
}

static int kmap_do_unmap(void *arg, uint64_t iova, uint64_t length)
{
	struct be_ioas *ioas = arg;
	struct ifd_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = ioas->id, .iova = iova,
		.length = length,
	};
	int r = traced(ioas->tenant, IOMMUFD_CALL_UNMAP, IFD_IOAS_UNMAP, &u);

	/*
	 * The record only asks for ranges of whole kernel mappings, so ENOENT
	 * (a cut, or nothing there) means the record is wrong: report it
	 * rather than let the core believe a still-mapped range is gone.
	 */
	if (r < 0)
		err(ioas->be->log, "iommufd: IOMMU_IOAS_UNMAP 0x%llx+0x%llx of "
		    "IOAS %u: %s", (unsigned long long)iova,
		    (unsigned long long)length, ioas->id, strerror(-r));
	return r;
}

/*
 * The kernel's own split (page-granular IOASes): make the IOAS this fd's
 * compatibility IOAS (a per-fd pointer: set before every cut, under the
 * core's lock like every seam call), then the VFIO-compatibility unmap on
 * the iommufd itself cuts the areas at both ends of the range and removes
 * only the range.  The areas outside keep their pages and IOPTEs.
 */
static int kmap_do_cut(void *arg, uint64_t iova, uint64_t length)
{
	struct be_ioas *ioas = arg;
	struct backend *be = ioas->be;
	struct be_tenant *t = ioas->tenant;
	struct ifd_vfio_ioas v = {
		.size = sizeof(v), .ioas_id = ioas->id, .op = IFD_VFIO_IOAS_SET,
	};
	struct kvfio_dma_unmap u = {
		.argsz = sizeof(u), .iova = iova, .size = length,
	};
	int r = traced(t, IOMMUFD_CALL_VFIO_IOAS, IFD_VFIO_IOAS, &v);

	if (r == 0)
		r = traced(t, IOMMUFD_CALL_CUT, KVFIO_IOMMU_UNMAP_DMA, &u);
	if (r < 0) {
		/*
		 * A split alone changes no translation; the kernel unmaps
		 * areas in IOVA order and stops at the first it cannot
		 * remove (EBUSY: an in-kernel access, which this backend
		 * never creates), so u.size says how far it got.
		 */
		err(be->log, "iommufd: cut of IOVA 0x%llx+0x%llx from IOAS %u "
		    "(VFIO_IOMMU_UNMAP_DMA on the iommufd): %s%s",
		    (unsigned long long)iova, (unsigned long long)length,
		    ioas->id, strerror(-r),
		    u.size ? "; part of the range was unmapped" : "");
	}
	return r;
}

static void kmap_lost(void *arg, const struct kmap_entry *e)
{
	struct be_ioas *ioas = arg;

	err(ioas->be->log, "iommufd: IOAS %u lost IOVA 0x%llx-0x%llx while "
	    "undoing a failed unmap", ioas->id, (unsigned long long)e->iova,
	    (unsigned long long)(e->iova + e->length - 1));
}

static const struct kmap_ops iommufd_kmap_ops = {
	.map = kmap_do_map,
	.unmap = kmap_do_unmap,
	.lost = kmap_lost,
	.cut = kmap_do_cut,
};

/* ---- address spaces ------------------------------------------------------ */

static int disable_huge_pages(struct be_tenant *t, uint32_t ioas_id)
{
	struct backend *be = t->be;
	struct ifd_option o = {
		.size = sizeof(o), .option_id = IFD_OPTION_HUGE_PAGES,
		.op = IFD_OPTION_OP_SET, .object_id = ioas_id, .val64 = 0,
	};
	int r = traced(t, IOMMUFD_CALL_OPTION, IFD_OPTION, &o);

	if (r < 0) {
		err(be->log, "iommufd: IOMMU_OPTION_HUGE_PAGES off for IOAS %u: "
		    "%s: a page-granular IOAS cannot be had", ioas_id,
		    strerror(-r));
		return -EOPNOTSUPP;
	}
	return 0;
}

static int iommufd_ioas_alloc(struct backend *be, struct be_tenant *t,
			      uint32_t flags, struct be_ioas **out)
{
	struct ifd_ioas_alloc a = { .size = sizeof(a) };
	struct be_ioas *ioas = calloc(1, sizeof(*ioas));
	int r;

	if (!ioas)
		return -ENOMEM;
	r = traced(t, IOMMUFD_CALL_IOAS_ALLOC, IFD_IOAS_ALLOC, &a);
	if (r < 0) {
		free(ioas);
		return r;
	}
	ioas->be = be;
	ioas->tenant = t;
	ioas->id = a.out_ioas_id;
	ioas->nest_parent = flags & IOASID_IOAS_NEST_PARENT;
	/*
	 * Page-granular (restricted IOASes always are): 4 KiB IOPTEs, so the
	 * kernel can split its areas and every cut is one atomic call.  The
	 * option must be set before any domain holds mappings: now.  A
	 * restricted IOAS is then mapped by runs, not page by page.
	 */
	if (flags & IOASID_IOAS_PAGE_GRANULAR) {
		r = disable_huge_pages(t, ioas->id);
		if (r < 0) {
			destroy_object(t, ioas->id, "IOAS");
			free(ioas);
			return r;
		}
		ioas->page_granular = true;
		ioas->map.kernel_cuts = true;
	}
	*out = ioas;
	return 0;
}

static void iommufd_ioas_free(struct be_ioas *ioas)
{
	/* the kernel drops the mappings with the IOAS */
	destroy_object(ioas->tenant, ioas->id, "IOAS");
	kmap_release(&ioas->map);
	free(ioas);
}

static int iommufd_map(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		       const struct be_backing *backing, uint32_t prot)
{
	return kmap_map(&ioas->map, &iommufd_kmap_ops, ioas, iova, length,
			backing, prot);
}

static int iommufd_unmap(struct be_ioas *ioas, uint64_t iova, uint64_t length,
			 const struct be_piece *old, uint32_t nr_old)
{
	/* the record of kernel mappings knows more than @old: see kmap.c */
	return kmap_unmap(&ioas->map, &iommufd_kmap_ops, ioas, iova, length);
}

static size_t iommufd_take_lost(struct be_ioas *ioas,
				struct ioasid_iova_range *out, size_t cap)
{
	return kmap_take_lost(&ioas->map, out, cap);
}

static int iommufd_hide_batch(struct be_ioas *ioas,
			      const struct ioasid_iova_range *runs,
			      uint32_t nr)
{
	int r = 0;

	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = kmap_unmap(&ioas->map, &iommufd_kmap_ops, ioas,
			       runs[i].start, runs[i].last - runs[i].start + 1);
	return r;
}

struct copy_call {
	struct be_ioas *dst, *src;
	struct ifd_ioas_copy c;
};

static int do_copy(void *arg)
{
	struct copy_call *cc = arg;

	return traced(cc->dst->tenant, IOMMUFD_CALL_COPY, IFD_IOAS_COPY,
		      &cc->c);
}

/*
 * IOMMU_IOAS_COPY: the destination maps the source's pages themselves
 * (the kernel shares the pinned iopt_pages, so they are pinned and
 * accounted once), one kernel call whatever the number of pieces.  Both
 * IOASes are in one iommufd: the kernel looks both ids up in the fd it
 * is called on, so no session can copy from another's.
 */
static int iommufd_copy(struct be_ioas *dst, uint64_t dst_iova,
			struct be_ioas *src, uint64_t src_iova, uint64_t length,
			uint32_t prot, const struct be_piece *pieces,
			uint32_t nr_pieces)
{
	struct copy_call cc = {
		.dst = dst, .src = src,
		.c = {
			.size = sizeof(cc.c), .dst_ioas_id = dst->id,
			.src_ioas_id = src->id, .length = length,
			.dst_iova = dst_iova, .src_iova = src_iova,
			.flags = IFD_MAP_FIXED_IOVA |
				 kprot(prot, IFD_MAP_READABLE,
				       IFD_MAP_WRITEABLE),
		},
	};
	int r;

	if (dst->tenant != src->tenant)
		return -EXDEV;
	r = kmap_copy(&dst->map, &src->map, dst_iova, src_iova, length, prot,
		      pieces, nr_pieces, do_copy, &cc);
	if (r < 0)
		err(dst->be->log, "iommufd: IOMMU_IOAS_COPY of IOVA 0x%llx+0x%llx "
		    "of IOAS %u to 0x%llx of IOAS %u: %s",
		    (unsigned long long)src_iova, (unsigned long long)length,
		    src->id, (unsigned long long)dst_iova, dst->id,
		    strerror(-r));
	return r;
}

/* ---- domains (HWPTs) ----------------------------------------------------- */

/*
 * A device bound to @t behind @unit: HWPT_ALLOC needs one (of the same
 * iommufd) to pick the driver.
 */
static struct be_device *device_on(struct be_tenant *t,
				   const struct inv_iommu *unit)
{
	for (struct be_device *d = t->devices; d; d = d->next)
		if (d->unit == unit)
			return d;
	return NULL;
}

/*
 * Can the kernel enforce coherency for @dev?  The kernel decides by the
 * driver's IOMMU_CAP_ENFORCE_CACHE_COHERENCY; for VT-d that is ecap.SC,
 * which GET_HW_INFO gives us; otherwise trust what sysfs said.
 */
static bool kernel_can_enforce(const struct be_device *dev)
{
	if (dev->hw_type == IFD_HW_INFO_TYPE_INTEL_VTD)
		return dev->ecap & VTD_ECAP_SC;
	if (dev->hw_type == IFD_HW_INFO_TYPE_AMD)
		return true;
	if (dev->mock)	/* no IOMMU_CAP_ENFORCE_CACHE_COHERENCY */
		return false;
	return dev->unit->info.flags & IOASID_IOMMU_SNOOP_CONTROL;
}

static int check_coherency(struct backend *be, const struct be_device *dev,
			   bool enforce)
{
	bool can = kernel_can_enforce(dev);

	if (enforce && !can) {
		info(be->log, "iommufd: %s cannot enforce cache coherency",
		     dev->unit->info.name);
		return -EINVAL;
	}
	if (!enforce && can) {
		/*
		 * iommufd_hwpt_paging_alloc() turns enforcement on for every
		 * HWPT allocated for a device whose IOMMU can enforce, and
		 * there is no flag to ask otherwise: "allow" cannot be had.
		 */
		warn(be->log, "iommufd: a HWPT for %s always enforces cache "
		     "coherency (the kernel offers no way to let no-snoop DMA "
		     "through on a unit with snoop control): snoop mode "
		     "\"allow\" is not supported by this backend",
		     dev->unit->info.name);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int hwpt_alloc(struct be_tenant *t, struct be_device *dev,
		      struct be_ioas *ioas, bool dirty, uint32_t *hwpt_id)
{
	struct ifd_hwpt_alloc h = {
		.size = sizeof(h), .dev_id = dev->dev_id, .pt_id = ioas->id,
		.flags = (dirty ? IFD_HWPT_ALLOC_DIRTY_TRACKING : 0) |
			 (ioas->nest_parent ? IFD_HWPT_ALLOC_NEST_PARENT : 0),
	};
	int r;

	/*
	 * A device with PASIDs: every HWPT of it can take them (the kernel
	 * refuses a PASID attach while the device itself is on a HWPT
	 * allocated without IOMMU_HWPT_ALLOC_PASID, and the reverse).
	 */
	if (dev->max_pasid_log2)
		h.flags |= IFD_HWPT_ALLOC_PASID;
	r = kioctl(t->fd, IFD_HWPT_ALLOC, &h);

	if (r == 0)
		*hwpt_id = h.out_hwpt_id;
	return r;
}

static int set_dirty_tracking(struct be_tenant *t, uint32_t hwpt_id, bool on)
{
	struct ifd_hwpt_set_dirty_tracking s = {
		.size = sizeof(s), .hwpt_id = hwpt_id,
		.flags = on ? IFD_HWPT_DIRTY_TRACKING_ENABLE : 0,
	};

	return kioctl(t->fd, IFD_HWPT_SET_DIRTY_TRACKING, &s);
}

static int iommufd_domain_alloc(struct be_ioas *ioas,
				const struct inv_iommu *unit, uint32_t flags,
				const struct be_replay *replay,
				struct be_domain **out)
{
	struct backend *be = ioas->be;
	struct be_device *dev = device_on(ioas->tenant, unit);
	bool enforce = flags & BE_DOMAIN_ENFORCE_COHERENCY;
	bool dirty;
	struct be_domain *d;
	int r;

	if (!dev) {
		err(be->log, "iommufd: no device of this session bound behind "
		    "%s to allocate a HWPT for", unit->info.name);
		return -ENODEV;
	}
	r = check_coherency(be, dev, enforce);
	if (r < 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/*
	 * Able to track wherever the IOMMU can (the kernel wants the flag
	 * at allocation); off until the core starts it (->set_dirty_tracking)
	 */
	dirty = dev->hw_caps & IFD_HW_CAP_DIRTY_TRACKING;
	r = hwpt_alloc(ioas->tenant, dev, ioas, dirty, &d->hwpt_id);
	if (r < 0) {
		if (ioas->nest_parent)
			err(be->log, "iommufd: the kernel refuses a nest-parent "
			    "HWPT on %s: %s (no nesting on this IOMMU?)",
			    unit->info.name, strerror(-r));
		free(d);
		return r;
	}
	d->ioas = ioas;
	d->unit = unit;
	d->enforce = enforce;
	d->can_track = dirty;
	d->next = ioas->domains;
	ioas->domains = d;
	dbg(be->log, "iommufd: HWPT %u on IOAS %u for %s (%s%s)", d->hwpt_id,
	    ioas->id, unit->info.name, enforce ? "coherent" : "non-coherent",
	    dirty ? ", can track dirty pages" : "");
	*out = d;
	return 0;
}

static void iommufd_domain_free(struct be_domain *d)
{
	struct be_domain **p = &d->ioas->domains;

	while (*p && *p != d)
		p = &(*p)->next;
	if (*p)
		*p = d->next;
	destroy_object(d->ioas->tenant, d->hwpt_id, "HWPT");
	free(d);
}

/* IOMMU_HWPT_SET_DIRTY_TRACKING; -EOPNOTSUPP where the IOMMU cannot. */
static int iommufd_set_dirty_tracking(struct be_domain *d, bool on)
{
	int r;

	if (on && !d->can_track)
		return -EOPNOTSUPP;
	if (d->dirty == on)
		return 0;
	r = set_dirty_tracking(d->ioas->tenant, d->hwpt_id, on);
	if (r == 0)
		d->dirty = on;
	return r;
}

/*
 * IOMMU_HWPT_GET_DIRTY_BITMAP of one run of IOVA the kernel has mapped
 * without a hole (it refuses ranges with holes), ORed into @bitmap
 * whose bit 0 is @bitmap_iova.
 */
static int dirty_run(struct be_domain *d, uint64_t iova, uint64_t length,
		     bool clear, uint64_t *bitmap, uint64_t bitmap_iova)
{
	uint64_t pages = length / SZ_4K;
	struct ifd_hwpt_get_dirty_bitmap g = {
		.size = sizeof(g), .hwpt_id = d->hwpt_id,
		.flags = clear ? 0 : IFD_HWPT_GET_DIRTY_NO_CLEAR,
		.iova = iova, .length = length, .page_size = SZ_4K,
	};
	uint64_t *tmp = calloc((pages + 63) / 64, sizeof(*tmp));
	int r;

	if (!tmp)
		return -ENOMEM;
	g.data = (uint64_t)(uintptr_t)tmp;
	r = kioctl(d->ioas->tenant->fd, IFD_HWPT_GET_DIRTY_BITMAP, &g);
	if (r == 0)
		bitmap_or_at(bitmap, (iova - bitmap_iova) / SZ_4K, tmp, pages);
	free(tmp);
	return r;
}

/* The dirty bits of what the kernel has mapped in [iova, iova+length). */
static int dirty_range(struct be_domain *d, uint64_t iova, uint64_t length,
		       bool clear, uint64_t *bitmap, uint64_t bitmap_iova)
{
	const struct kmap *m = &d->ioas->map;
	uint64_t end = iova + length, lo = 0, hi = 0;
	int r = 0;

	if (!d->dirty)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < m->nr && r == 0; i++) {
		uint64_t s = m->v[i].iova, e = s + m->v[i].length;

		if (e <= iova || s >= end)
			continue;
		s = s > iova ? s : iova;
		e = e < end ? e : end;
		if (hi == s) {		/* contiguous with the run */
			hi = e;
			continue;
		}
		if (hi > lo)
			r = dirty_run(d, lo, hi - lo, clear, bitmap,
				      bitmap_iova);
		lo = s;
		hi = e;
	}
	if (r == 0 && hi > lo)
		r = dirty_run(d, lo, hi - lo, clear, bitmap, bitmap_iova);
	return r;
}

static int iommufd_read_dirty(struct be_domain *d, uint64_t iova,
			      uint64_t length, uint64_t *bitmap, bool clear)
{
	return dirty_range(d, iova, length, clear, bitmap, iova);
}

/*
 * Not atomic: the kernel has no unmap that returns dirty bits, so each
 * tracking HWPT's bits are read and cleared (IOMMU_HWPT_GET_DIRTY_BITMAP)
 * and then the range is unmapped (IOMMU_IOAS_UNMAP).  A device write
 * between the two is lost; the caller must have stopped the device's DMA
 * to the range if that matters.
 */
static int iommufd_unmap_dirty(struct be_ioas *ioas, uint64_t iova,
			       uint64_t length, const struct be_piece *old,
			       uint32_t nr_old, uint64_t *bitmap,
			       uint64_t bitmap_iova)
{
	int r = 0;

	for (struct be_domain *d = ioas->domains; d && r == 0; d = d->next)
		if (d->dirty)
			r = dirty_range(d, iova, length, true, bitmap,
					bitmap_iova);
	if (r < 0)
		return r;
	return iommufd_unmap(ioas, iova, length, old, nr_old);
}

/* ---- devices ------------------------------------------------------------- */

/*
 * Bind the cdev to the session's iommufd: from then on the kernel resolves
 * the device's ATTACH_IOMMUFD_PT ids in that iommufd only, so whoever
 * holds the device file (a VMM given it by ioasid_device_get_fd) can put
 * it in this session's IOASes and HWPTs and nowhere else.
 */
static int bind_device(struct backend *be, struct be_device *dev)
{
	struct kvfio_device_bind_iommufd b = {
		.argsz = sizeof(b), .iommufd = dev->tenant->fd,
	};
	int r = kioctl(dev->fd, KVFIO_DEVICE_BIND_IOMMUFD, &b);

	if (r == -EINVAL || r == -EBUSY)
		warn(be->log, "iommufd: VFIO_DEVICE_BIND_IOMMUFD of %s: %s "
		     "(the device is bound through another open file, or its "
		     "group is in use through the legacy VFIO interface)",
		     dev->inv->info.name, strerror(-r));
	else if (r < 0)
		warn(be->log, "iommufd: VFIO_DEVICE_BIND_IOMMUFD of %s: %s",
		     dev->inv->info.name, strerror(-r));
	if (r == 0)
		dev->dev_id = b.out_devid;
	return r;
}

/* Ask the kernel about the IOMMU; check it says what sysfs said. */
static void hw_info(struct backend *be, struct be_device *dev)
{
	struct ifd_hw_info_vtd vtd = { 0 };
	struct ifd_hw_info hi = {
		.size = sizeof(hi), .dev_id = dev->dev_id,
		.data_len = sizeof(vtd), .data_uptr = (uint64_t)(uintptr_t)&vtd,
	};
	const struct ioasid_iommu_info *u = &dev->unit->info;
	int r = kioctl(dev->tenant->fd, IFD_GET_HW_INFO, &hi);

	if (r < 0) {
		warn(be->log, "iommufd: IOMMU_GET_HW_INFO for %s: %s",
		     dev->inv->info.name, strerror(-r));
		return;
	}
	dev->hw_type = hi.out_data_type;
	dev->hw_caps = hi.out_capabilities;
	dev->max_pasid_log2 = hi.out_max_pasid_log2;
	if (dev->hw_type != IFD_HW_INFO_TYPE_INTEL_VTD)
		return;
	dev->cap = vtd.cap_reg;
	dev->ecap = vtd.ecap_reg;
	if ((u->flags & IOASID_IOMMU_CAPS_KNOWN) &&
	    (u->cap != dev->cap || u->ecap != dev->ecap))
		warn(be->log, "iommufd: %s: the kernel reports VT-d cap 0x%llx "
		     "ecap 0x%llx, sysfs said cap 0x%llx ecap 0x%llx",
		     u->name, (unsigned long long)dev->cap,
		     (unsigned long long)dev->ecap, (unsigned long long)u->cap,
		     (unsigned long long)u->ecap);
}

/*
 * Open the device's cdev: its name now (a rebind to vfio-pci may have
 * given it another one since the inventory was read), else the inventory's.
 */
static int open_cdev(struct backend *be, const struct inv_device *inv, int *fd)
{
	char path[300];	/* "/dev/vfio/devices/" + a directory entry */

	if (!cdev_now(inv->info.name, path, sizeof(path)))
		snprintf(path, sizeof(path), "%s", inv->vfio_dev_path);
	if (!path[0])
		return -ENODEV;
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0) {
		warn(be->log, "iommufd: cannot open %s: %s", path,
		     strerror(errno));
		return -errno;
	}
	return 0;
}

static int mock_open(struct be_device *dev);
static void mock_close(struct be_device *dev);
static int mock_attach(struct be_device *dev, uint32_t pt_id, uint32_t ioas_id);

static int iommufd_device_open(struct backend *be, struct be_tenant *t,
			       const struct inv_device *inv,
			       const struct inv_iommu *unit, uint32_t dev_id,
			       int vfio_fd, struct be_device **out)
{
	struct be_device *dev = calloc(1, sizeof(*dev));
	int r;

	if (!dev)
		return -ENOMEM;
	dev->be = be;
	dev->tenant = t;
	dev->inv = inv;
	dev->unit = unit;
	dev->fd = vfio_fd;
	dev->access_fd = -1;
	dev->core_id = dev_id;
	if (inv->info.flags & IOASID_DEVICE_MOCK) {
		r = mock_open(dev);	/* the core passes no file for one */
		if (r < 0) {
			free(dev);
			return r;
		}
		goto bound;
	}
	if (dev->fd < 0) {
		r = open_cdev(be, inv, &dev->fd);
		if (r < 0) {
			free(dev);
			return r;
		}
		dev->own_fd = true;
	}
	r = bind_device(be, dev);
	if (r < 0) {
		if (dev->own_fd)
			close(dev->fd);
		free(dev);
		return r;
	}
bound:
	hw_info(be, dev);
	dev->next = t->devices;
	t->devices = dev;
	*out = dev;
	return 0;
}

static int iommufd_detach(struct be_device *dev, char *why, size_t len)
{
	struct kvfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };
	int r;

	if (dev->mock)
		r = mock_attach(dev, dev->park_hwpt, dev->tenant->park_ioas);
	else
		r = kioctl(dev->fd, KVFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
	if (r < 0) {
		snprintf(why, len, "%s: %s", dev->mock ?
			 "IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE to the empty IOAS" :
			 "VFIO_DEVICE_DETACH_IOMMUFD_PT", strerror(-r));
		err(dev->be->log, "iommufd: %s of %s", why,
		    dev->inv->info.name);
		return r;	/* still attached, as the kernel says */
	}
	dev->domain = NULL;
	return 0;
}

static void iommufd_device_close(struct be_device *dev)
{
	struct be_device **p = &dev->tenant->devices;

	char why[128];

	if (dev->domain)
		iommufd_detach(dev, why, sizeof(why));	/* logged */
	while (*p && *p != dev)
		p = &(*p)->next;
	if (*p)
		*p = dev->next;
	/*
	 * Closing the cdev unbinds it.  A caller's fd stays bound (to this
	 * iommufd, detached) until the caller closes it too.
	 */
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		if (dev->pasids[i].access_fd >= 0)
			close(dev->pasids[i].access_fd);
	free(dev->pasids);
	if (dev->mock)
		mock_close(dev);
	else if (dev->own_fd)
		close(dev->fd);
	free(dev);
}

/* Attach, or replace the current HWPT without a gap (the kernel's replace). */
static int iommufd_attach(struct be_device *dev, struct be_domain *d)
{
	struct kvfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .pt_id = d->hwpt_id,
	};
	int r;

	if (dev->mock)
		r = mock_attach(dev, d->hwpt_id, d->ioas->id);
	else
		r = kioctl(dev->fd, KVFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
	if (r < 0)
		return r;	/* EINVAL: incompatible, the core tries on */
	dev->domain = d;
	return 0;
}

static int iommufd_device_vfio_fd(struct be_device *dev)
{
	return dev->mock ? -1 : dev->fd;
}

/* ---- PASIDs -------------------------------------------------------------- */

static struct ifd_pasid *find_pasid(struct be_device *dev, uint32_t pasid)
{
	for (uint32_t i = 0; i < dev->nr_pasids; i++)
		if (dev->pasids[i].pasid == pasid)
			return &dev->pasids[i];
	return NULL;
}

static int mock_cmd(struct be_tenant *t, struct ifd_test_cmd *c);
static int mock_pasid_access(struct be_device *dev, uint32_t ioas_id,
			     int *fd);
static int mock_access_move(struct be_device *dev, int fd, uint32_t ioas_id);

/*
 * The kernel attaches, and replaces without a gap: a real device with
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT and VFIO_DEVICE_ATTACH_PASID (6.15; it
 * replaces a PASID already attached), a mock one with
 * IOMMU_TEST_OP_PASID_ATTACH / _REPLACE, its DMA access following.
 */
static int kernel_pasid_attach(struct be_device *dev, uint32_t pasid,
			       uint32_t hwpt, bool replace)
{
	struct kvfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .flags = KVFIO_DEVICE_ATTACH_PASID,
		.pt_id = hwpt, .pasid = pasid,
	};
	struct ifd_test_cmd c = {
		.op = replace ? IFD_TEST_OP_PASID_REPLACE :
				IFD_TEST_OP_PASID_ATTACH,
		.id = dev->stdev_id, .pasid = { .pasid = pasid, .pt_id = hwpt },
	};

	if (dev->mock)
		return mock_cmd(dev->tenant, &c);
	return kioctl(dev->fd, KVFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}

static int kernel_pasid_detach(struct be_device *dev, uint32_t pasid)
{
	struct kvfio_device_detach_iommufd_pt d = {
		.argsz = sizeof(d), .flags = KVFIO_DEVICE_DETACH_PASID,
		.pasid = pasid,
	};
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_PASID_DETACH, .id = dev->stdev_id,
		.pasid = { .pasid = pasid },
	};

	if (dev->mock)
		return mock_cmd(dev->tenant, &c);
	return kioctl(dev->fd, KVFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
}

static int iommufd_pasid_attach(struct be_device *dev, uint32_t pasid,
				struct be_domain *d)
{
	struct ifd_pasid *p = find_pasid(dev, pasid), *v;
	int fd = -1, r;

	if (!dev->max_pasid_log2) {
		warn(dev->be->log, "iommufd: the kernel gives %s no PASIDs "
		     "(IOMMU_GET_HW_INFO: out_max_pasid_log2 0)",
		     dev->inv->info.name);
		return -EOPNOTSUPP;
	}
	if (!p) {
		v = realloc(dev->pasids, (dev->nr_pasids + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		dev->pasids = v;
		if (dev->mock) {
			r = mock_pasid_access(dev, d->ioas->id, &fd);
			if (r < 0)
				return r;
		}
	}
	r = kernel_pasid_attach(dev, pasid, d->hwpt_id, p != NULL);
	if (r == 0 && p && p->access_fd >= 0)
		r = mock_access_move(dev, p->access_fd, d->ioas->id);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;	/* EINVAL: incompatible, the core tries on */
	}
	if (!p) {
		p = &dev->pasids[dev->nr_pasids++];
		p->pasid = pasid;
		p->access_fd = fd;
	}
	p->domain = d;
	return 0;
}

static int iommufd_pasid_detach(struct be_device *dev, uint32_t pasid)
{
	struct ifd_pasid *p = find_pasid(dev, pasid);
	int r;

	if (!p)
		return -ENOENT;
	r = kernel_pasid_detach(dev, pasid);
	if (r < 0) {
		err(dev->be->log, "iommufd: detach of PASID %u of %s: %s", pasid,
		    dev->inv->info.name, strerror(-r));
		return r;
	}
	if (p->access_fd >= 0)
		close(p->access_fd);
	*p = dev->pasids[--dev->nr_pasids];
	return 0;
}

static int mock_dma_via(struct be_device *dev, int access_fd, uint64_t iova,
			void *buf, uint64_t length, uint32_t flags,
			uint64_t *done, bool attached);

static int iommufd_dma_pasid(struct be_device *dev, uint32_t pasid,
			     uint64_t iova, void *buf, uint64_t length,
			     uint32_t flags, uint64_t *done)
{
	struct ifd_pasid *p = find_pasid(dev, pasid);

	*done = 0;
	if (!dev->mock)
		return -EOPNOTSUPP;
	/* a PASID attached nowhere: the empty access of the device */
	return mock_dma_via(dev, p ? p->access_fd : -1, iova, buf, length,
			    flags, done, p != NULL);
}

/* ---- mock devices ("iommufd:mock") --------------------------------------- */

/*
 * With CONFIG_IOMMUFD_TEST the kernel's selftest driver makes devices
 * behind a mock IOMMU on request (IOMMU_TEST_OP_MOCK_DOMAIN): each is
 * bound to the iommufd that asked, with a dev_id like a VFIO cdev's, so
 * HWPT_ALLOC, IOAS mappings and everything the kernel does with an
 * attached device run its real code.  The URI "iommufd:mock[=N]" offers
 * N of them (unit "iommufd_mock", devices "mock0"...), never otherwise:
 * a production kernel has no such driver and a production daemon must
 * not pretend to have devices.
 *
 * A mock device exists from its bind to its unbind.  The kernel attaches
 * it at creation, so it is created on (and, detached, moved back to) an
 * empty IOAS of its tenant that nobody maps: it translates nothing there,
 * which is what detached means.  Its "DMA" (->dma, for tests) is an
 * in-kernel access (IOMMU_TEST_OP_CREATE_ACCESS / ACCESS_RW) kept on the
 * IOAS the device is attached to: it reads and writes the pages the
 * kernel's IOAS holds at an IOVA, with the mapping's permissions.
 */

static int mock_cmd(struct be_tenant *t, struct ifd_test_cmd *c)
{
	c->size = sizeof(*c);
	return kioctl(t->fd, IFD_TEST_CMD, c);
}

static int mock_inventory(struct backend *be, struct inventory *inv)
{
	struct inv_iommu *u;
	struct inv_device *d;
	int r;

	r = inventory_add_iommu(inv, &u);
	if (r < 0)
		goto fail;
	snprintf(u->info.name, sizeof(u->info.name), MOCK_UNIT);
	snprintf(u->info.kind, sizeof(u->info.kind), "iommufd-mock");
	/* capabilities: what the library can use of the mock IOMMU */
	u->info.flags = IOASID_IOMMU_CAPS_KNOWN | IOASID_IOMMU_PASID;
	u->info.page_sizes = SZ_4K;
	u->info.addr_width = 31;	/* MOCK_APERTURE_LAST + 1 */
	r = inventory_add_range(&u->reserved, &u->nr_reserved, 0,
				IFD_MOCK_APERTURE_START - 1);
	for (uint32_t i = 0; r == 0 && i < be->nr_mock; i++) {
		r = inventory_add_device(inv, &d);
		if (r < 0)
			break;
		snprintf(d->info.name, sizeof(d->info.name), "mock%u", i);
		snprintf(d->info.driver, sizeof(d->info.driver), "iommufd_mock");
		snprintf(d->info.iommu, sizeof(d->info.iommu), MOCK_UNIT);
		d->info.flags = IOASID_DEVICE_MOCK | IOASID_DEVICE_TRANSLATES;
		d->info.group = MOCK_GROUP_BASE + i;
		d->info.pasid_bits = IFD_MOCK_PASID_WIDTH;
	}
	if (r < 0)
		goto fail;
	inventory_count_devices(inv);
	return 0;
fail:
	inventory_release(inv);
	return r;
}

/* The tenant's empty IOAS, for as long as one of its mock devices lives. */
static int park_get(struct be_tenant *t)
{
	struct ifd_ioas_alloc a = { .size = sizeof(a) };
	int r;

	if (t->nr_parked) {
		t->nr_parked++;
		return 0;
	}
	r = kioctl(t->fd, IFD_IOAS_ALLOC, &a);
	if (r < 0)
		return r;
	t->park_ioas = a.out_ioas_id;
	t->nr_parked = 1;
	return 0;
}

static void park_put(struct be_tenant *t)
{
	if (--t->nr_parked)
		return;
	destroy_object(t, t->park_ioas, "IOAS (mock devices' empty one)");
	t->park_ioas = 0;
}

static int mock_replace(struct be_device *dev, uint32_t pt_id);

static int mock_create(struct be_device *dev)
{
	struct be_tenant *t = dev->tenant;
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_MOCK_DOMAIN_FLAGS, .id = t->park_ioas,
		.mock_domain.dev_flags = IFD_MOCK_DEVICE_PASID,
	};
	struct ifd_hwpt_alloc h = {
		.size = sizeof(h), .pt_id = t->park_ioas,
		.flags = IFD_HWPT_ALLOC_PASID,
	};
	int r = mock_cmd(t, &c);

	if (r < 0) {
		err(dev->be->log, "iommufd: IOMMU_TEST_OP_MOCK_DOMAIN for %s: %s",
		    dev->inv->info.name, strerror(-r));
		return r;
	}
	dev->stdev_id = c.mock_domain.out_stdev_id;
	dev->dev_id = c.mock_domain.out_idev_id;
	/*
	 * Parked on a PASID-capable HWPT of its own: the kernel's automatic
	 * one is not, and a device whose PASIDs are attached may move only
	 * between PASID-capable HWPTs.
	 */
	h.dev_id = dev->dev_id;
	r = kioctl(t->fd, IFD_HWPT_ALLOC, &h);
	if (r == 0) {
		dev->park_hwpt = h.out_hwpt_id;
		r = mock_replace(dev, dev->park_hwpt);
		if (r < 0)
			destroy_object(t, dev->park_hwpt, "HWPT");
	}
	if (r < 0) {
		err(dev->be->log, "iommufd: a PASID-capable HWPT to park %s on: "
		    "%s", dev->inv->info.name, strerror(-r));
		destroy_object(t, dev->stdev_id, "mock device");
		return r;
	}
	c = (struct ifd_test_cmd){
		.op = IFD_TEST_OP_CREATE_ACCESS, .id = t->park_ioas,
	};
	r = mock_cmd(t, &c);
	if (r < 0) {
		err(dev->be->log, "iommufd: IOMMU_TEST_OP_CREATE_ACCESS for %s: "
		    "%s", dev->inv->info.name, strerror(-r));
		destroy_object(t, dev->stdev_id, "mock device");
		destroy_object(t, dev->park_hwpt, "HWPT");
		return r;
	}
	dev->access_fd = (int)c.create_access.out_access_fd;
	return 0;
}

/* Bind: the kernel makes the device, bound to the tenant's iommufd. */
static int mock_open(struct be_device *dev)
{
	int r = park_get(dev->tenant);

	if (r < 0)
		return r;
	r = mock_create(dev);
	if (r < 0) {
		park_put(dev->tenant);
		return r;
	}
	dev->mock = true;
	dev->fd = -1;
	pthread_mutex_init(&dev->fault_lock, NULL);
	return 0;
}

static void mock_close(struct be_device *dev)
{
	close(dev->access_fd);
	/* detaches, unbinds and removes the kernel's device */
	destroy_object(dev->tenant, dev->stdev_id, "mock device");
	destroy_object(dev->tenant, dev->park_hwpt, "HWPT");
	park_put(dev->tenant);
	pthread_mutex_destroy(&dev->fault_lock);
}

static int mock_replace(struct be_device *dev, uint32_t pt_id)
{
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_MOCK_DOMAIN_REPLACE, .id = dev->stdev_id,
		.mock_domain_replace.pt_id = pt_id,
	};

	return mock_cmd(dev->tenant, &c);
}

static int mock_access_on(struct be_device *dev, uint32_t ioas_id)
{
	return mock_access_move(dev, dev->access_fd, ioas_id);
}

/*
 * Attach (replace without a gap) to HWPT or IOAS @pt_id of IOAS @ioas_id,
 * and move the device's DMA access there too; all or nothing.
 */
static int mock_attach(struct be_device *dev, uint32_t pt_id, uint32_t ioas_id)
{
	uint32_t old_pt = dev->domain ? dev->domain->hwpt_id : dev->park_hwpt;
	int r = mock_replace(dev, pt_id);

	if (r < 0)
		return r;
	r = mock_access_on(dev, ioas_id);
	if (r < 0) {
		err(dev->be->log, "iommufd: IOMMU_TEST_OP_ACCESS_REPLACE_IOAS "
		    "of %s to IOAS %u: %s", dev->inv->info.name, ioas_id,
		    strerror(-r));
		if (mock_replace(dev, old_pt) < 0)
			err(dev->be->log, "iommufd: %s could not be put back "
			    "on %u", dev->inv->info.name, old_pt);
	}
	return r;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mock_fault(struct be_device *dev, uint64_t iova, uint32_t flags,
		       uint32_t reason)
{
	struct ioasid_fault f = {
		.size = sizeof(f),
		.flags = flags & IOASID_DMA_WRITE ? IOASID_MAP_WRITE :
						   IOASID_MAP_READ,
		.dev_id = dev->core_id,
		.reason = reason,
		.iova = iova,
		.timestamp_ns = mono_ns(),
	};

	pthread_mutex_lock(&dev->fault_lock);
	if (dev->fault_len < MOCK_FAULTS) {
		dev->faults[(dev->fault_head + dev->fault_len++) %
			    MOCK_FAULTS] = f;
	} else {
		dev->faults_lost++;
	}
	pthread_mutex_unlock(&dev->fault_lock);
}

/*
 * A mock device's DMA: IOMMU_TEST_OP_ACCESS_RW through access @access_fd,
 * kept on the IOAS the device (or its PASID) is attached to, in pieces
 * the driver takes (16 MiB); -1: attached nowhere, blocked.  A real
 * device's DMA is the device's own business: -EOPNOTSUPP.
 */
static int mock_dma_via(struct be_device *dev, int access_fd, uint64_t iova,
			void *buf, uint64_t length, uint32_t flags,
			uint64_t *done, bool attached)
{
	*done = 0;
	if (flags & IOASID_DMA_NO_SNOOP)
		return -EOPNOTSUPP;	/* the mock has no such attribute */
	if (access_fd < 0) {
		mock_fault(dev, iova, flags, IOASID_FAULT_BLOCKED);
		return -EFAULT;
	}
	while (*done < length) {
		uint64_t n = length - *done;
		struct ifd_test_cmd c = { .op = IFD_TEST_OP_ACCESS_RW,
					  .id = (uint32_t)access_fd };
		int r;

		if (n > IFD_MOCK_ACCESS_RW_MAX)
			n = IFD_MOCK_ACCESS_RW_MAX;
		c.access_rw.iova = iova + *done;
		c.access_rw.length = n;
		c.access_rw.uptr = (uint64_t)(uintptr_t)((uint8_t *)buf + *done);
		c.access_rw.flags = flags & IOASID_DMA_WRITE ?
				    IFD_MOCK_ACCESS_RW_WRITE : 0;
		r = mock_cmd(dev->tenant, &c);
		if (r == -EPERM) {
			mock_fault(dev, iova + *done, flags,
				   IOASID_FAULT_PERMISSION);
			return -EACCES;
		}
		if (r == -ENOENT || r == -EINVAL || r == -EFAULT) {
			mock_fault(dev, iova + *done, flags, attached ?
				   IOASID_FAULT_NOT_PRESENT :
				   IOASID_FAULT_BLOCKED);
			return -EFAULT;
		}
		if (r < 0)
			return r;
		*done += n;
	}
	return 0;
}

static int iommufd_dma(struct be_device *dev, uint64_t iova, void *buf,
		       uint64_t length, uint32_t flags, uint64_t *done)
{
	*done = 0;
	if (!dev->mock)
		return -EOPNOTSUPP;
	return mock_dma_via(dev, dev->access_fd, iova, buf, length, flags,
			    done, dev->domain != NULL);
}

/* A DMA access for a PASID, on IOAS @ioas_id. */
static int mock_pasid_access(struct be_device *dev, uint32_t ioas_id, int *fd)
{
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_CREATE_ACCESS, .id = ioas_id,
	};
	int r = mock_cmd(dev->tenant, &c);

	if (r < 0)
		return r;
	*fd = (int)c.create_access.out_access_fd;
	return 0;
}

static int mock_access_move(struct be_device *dev, int fd, uint32_t ioas_id)
{
	struct ifd_test_cmd c = {
		.op = IFD_TEST_OP_ACCESS_REPLACE_IOAS, .id = (uint32_t)fd,
		.access_replace_ioas.ioas_id = ioas_id,
	};

	return mock_cmd(dev->tenant, &c);
}

static int iommufd_read_faults(struct be_device *dev, struct ioasid_fault *out,
			       uint32_t cap, uint32_t *nr)
{
	uint32_t n = 0;

	*nr = 0;
	if (!dev->mock)
		return 0;
	pthread_mutex_lock(&dev->fault_lock);
	for (; n < cap && dev->fault_len; n++, dev->fault_len--) {
		out[n] = dev->faults[dev->fault_head];
		dev->fault_head = (dev->fault_head + 1) % MOCK_FAULTS;
	}
	pthread_mutex_unlock(&dev->fault_lock);
	*nr = n;
	return 0;
}

static uint64_t iommufd_take_faults_lost(struct be_device *dev)
{
	uint64_t n;

	if (!dev->mock)
		return 0;
	pthread_mutex_lock(&dev->fault_lock);
	n = dev->faults_lost;
	dev->faults_lost = 0;
	pthread_mutex_unlock(&dev->fault_lock);
	return n;
}

/* ---- nested HWPTs ------------------------------------------------------- */

struct be_nested {
	struct be_tenant *tenant;
	struct be_domain *parent;
	uint32_t hwpt_id;
	uint32_t type;			/* enum ioasid_nested_type */
};

static int iommufd_nested_alloc(struct be_domain *parent,
				struct be_device *dev, uint32_t type,
				const void *data, uint32_t len,
				uint32_t nested_id, struct be_nested **out,
				char *why, size_t whylen)
{
	const struct ioasid_nested_selftest *st = data;
	uint32_t iotlb = type == IOASID_NESTED_SELFTEST ? st->iotlb : 0;
	struct ifd_hwpt_alloc h = {
		.size = sizeof(h), .dev_id = dev->dev_id,
		.pt_id = parent->hwpt_id,
	};
	struct be_nested *n;
	int r;

	if (!parent->ioas->nest_parent) {
		snprintf(why, whylen, "the parent's HWPT is not a nest parent");
		return -EINVAL;
	}
	if (type == IOASID_NESTED_VTD_S1) {
		/* struct ioasid_nested_vtd_s1 is iommu_hwpt_vtd_s1 */
		h.data_type = IFD_HWPT_DATA_VTD_S1;
		h.data_len = len;
		h.data_uptr = (uint64_t)(uintptr_t)data;
	} else {
		/* the kernel's struct iommu_hwpt_selftest is one __u32 */
		h.data_type = IFD_HWPT_DATA_SELFTEST;
		h.data_len = sizeof(iotlb);
		h.data_uptr = (uint64_t)(uintptr_t)&iotlb;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	r = kioctl(dev->tenant->fd, IFD_HWPT_ALLOC, &h);
	if (r < 0) {
		snprintf(why, whylen, "IOMMU_HWPT_ALLOC of a nested HWPT (data "
			 "type 0x%x) for %s: %s", h.data_type,
			 dev->inv->info.name, strerror(-r));
		free(n);
		return r;
	}
	n->tenant = dev->tenant;
	n->parent = parent;
	n->hwpt_id = h.out_hwpt_id;
	n->type = type;
	dbg(dev->be->log, "iommufd: nested HWPT %u (table %u) over HWPT %u",
	    n->hwpt_id, nested_id, parent->hwpt_id);
	*out = n;
	return 0;
}

static void iommufd_nested_free(struct be_nested *n)
{
	destroy_object(n->tenant, n->hwpt_id, "nested HWPT");
	free(n);
}

static int iommufd_attach_nested(struct be_device *dev, struct be_nested *n)
{
	struct kvfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .pt_id = n->hwpt_id,
	};
	int r = kioctl(dev->fd, KVFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);

	if (r < 0)
		return r;
	dev->domain = n->parent;
	return 0;
}

/* The kernel's entries for ours (the core checked them). */
static void *inval_entries(const struct be_nested *n,
			   const struct ioasid_nested_inval *v, uint32_t nr,
			   uint32_t *type, uint32_t *len)
{
	struct ifd_selftest_invalidate *st;
	struct ifd_vtd_s1_invalidate *vtd;
	bool all;

	if (n->type == IOASID_NESTED_SELFTEST) {
		st = calloc(nr, sizeof(*st));
		for (uint32_t i = 0; st && i < nr; i++) {
			all = v[i].flags & IOASID_NESTED_INVAL_ALL;
			st[i].flags = all ? IFD_TEST_INVALIDATE_FLAG_ALL : 0;
			st[i].iotlb_id = all ? 0 : (uint32_t)v[i].addr;
		}
		*type = IFD_HWPT_INVALIDATE_DATA_SELFTEST;
		*len = sizeof(*st);
		return st;
	}
	vtd = calloc(nr, sizeof(*vtd));
	for (uint32_t i = 0; vtd && i < nr; i++) {
		all = v[i].flags & IOASID_NESTED_INVAL_ALL;
		vtd[i].addr = all ? 0 : v[i].addr;
		vtd[i].npages = all ? UINT64_MAX : v[i].npages;
		vtd[i].flags = v[i].flags & IOASID_NESTED_INVAL_LEAF ?
			       IFD_VTD_INV_FLAGS_LEAF : 0;
	}
	*type = IFD_HWPT_INVALIDATE_DATA_VTD_S1;
	*len = sizeof(*vtd);
	return vtd;
}

static int iommufd_nested_invalidate(struct be_nested *n,
				     const struct ioasid_nested_inval *v,
				     uint32_t nr, uint32_t *done, char *why,
				     size_t whylen)
{
	struct ifd_hwpt_invalidate inv = {
		.size = sizeof(inv), .hwpt_id = n->hwpt_id, .entry_num = nr,
	};
	void *entries = inval_entries(n, v, nr, &inv.data_type,
				      &inv.entry_len);
	int r;

	*done = 0;
	if (!entries)
		return -ENOMEM;
	inv.data_uptr = (uint64_t)(uintptr_t)entries;
	r = kioctl(n->tenant->fd, IFD_HWPT_INVALIDATE, &inv);
	free(entries);
	/*
	 * The kernel says how many it handled when an entry failed; when
	 * it refused the call before any, entry_num may still read nr.
	 */
	*done = inv.entry_num < nr ? inv.entry_num : 0;
	if (r < 0)
		snprintf(why, whylen, "IOMMU_HWPT_INVALIDATE: %s",
			 strerror(-r));
	else
		*done = nr;
	return r;
}

/* ---- white-box test hooks (iommufd.h) ------------------------------------ */

int iommufd_test_ioas_fd(const struct be_ioas *ioas)
{
	return ioas->tenant->fd;
}

int iommufd_test_device_iommufd(const struct be_device *device)
{
	return device->tenant->fd;
}

uint32_t iommufd_test_ioas_id(const struct be_ioas *ioas)
{
	return ioas->id;
}

uint32_t iommufd_test_hwpt_id(const struct be_domain *domain)
{
	return domain->hwpt_id;
}

uint32_t iommufd_test_dev_id(const struct be_device *device)
{
	return device->dev_id;
}

uint64_t iommufd_test_nr_mappings(const struct be_ioas *ioas)
{
	return ioas->map.nr;
}

uint32_t iommufd_test_mock_stdev_id(const struct be_device *device)
{
	return device->mock ? device->stdev_id : 0;
}

uint64_t iommufd_test_calls(const struct backend *be, enum iommufd_call c)
{
	return c < IOMMUFD_CALL_NR ? be->calls[c] : 0;
}

const struct backend_ops backend_iommufd = {
	.name = "iommufd",
	/* kcommon's record of kernel mappings replaces the core's pieces */
	.unmap_wants_pieces = false,
	.open = iommufd_open,
	.close = iommufd_close,
	.tenant_open = iommufd_tenant_open,
	.tenant_close = iommufd_tenant_close,
	.describe = iommufd_describe,
	.inventory = iommufd_inventory,
	.ioas_alloc = iommufd_ioas_alloc,
	.ioas_free = iommufd_ioas_free,
	.map = iommufd_map,
	.unmap = iommufd_unmap,
	.take_lost = iommufd_take_lost,
	.hide_batch = iommufd_hide_batch,
	.copy = iommufd_copy,
	.domain_alloc = iommufd_domain_alloc,
	.domain_free = iommufd_domain_free,
	.device_open = iommufd_device_open,
	.device_close = iommufd_device_close,
	.attach = iommufd_attach,
	.detach = iommufd_detach,
	.device_vfio_fd = iommufd_device_vfio_fd,
	.set_dirty_tracking = iommufd_set_dirty_tracking,
	.read_dirty = iommufd_read_dirty,
	.dma = iommufd_dma,
	.pasid_attach = iommufd_pasid_attach,
	.pasid_detach = iommufd_pasid_detach,
	.dma_pasid = iommufd_dma_pasid,
	.read_faults = iommufd_read_faults,
	.take_faults_lost = iommufd_take_faults_lost,
	.unmap_dirty = iommufd_unmap_dirty,
	.unmap_dirty_atomic = false,
	.hotplug_fd = iommufd_hotplug_fd,
	.hotplug_read = iommufd_hotplug_read,
	.nested_alloc = iommufd_nested_alloc,
	.nested_free = iommufd_nested_free,
	.attach_nested = iommufd_attach_nested,
	.nested_invalidate = iommufd_nested_invalidate,
};
