/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's own header, shared by the files of this directory
 * only (README: which file holds what): its objects and the functions one
 * file calls in another.  Nothing outside backends/iommufd/ includes it;
 * the seam is backend_iommufd (backend.h), the white-box hooks iommufd.h.
 */
#ifndef IOASID_BACKEND_IOMMUFD_PRIV_H
#define IOASID_BACKEND_IOMMUFD_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "backends/filemap.h"
#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "backends/kcommon/kcommon.h"
#include "core/file.h"
#include "util/log.h"
#include "util/macros.h"

#define IOMMUFD_PATH "/dev/iommu"
/* "iommufd:mock": the selftest driver's mock devices (mock.c) */
#define MOCK_UNIT	"iommufd_mock"
#define MOCK_KIND	"iommufd-mock"
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
	bool mock_dirty;		/* the kernel's mock tracks dirty pages */
	bool mock_nesting;		/* and has nested (selftest) HWPTs */
	/* and vIOMMUs (viommu.c): 0, or why not (the probe's -errno) */
	int mock_viommu;
	char mock_viommu_why[128];
	/* iommufd_test_refault_fail(): the next replacement goes wrong */
	bool refault_bad_fault_id;
	uint32_t refault_fail_move;
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
	/*
	 * FAULT objects of freed queues the kernel would not destroy yet:
	 * it refuses while a descriptor of one is open (the caller's) or a
	 * HWPT holds it; tried again with each queue allocated or freed.
	 */
	uint32_t *dead_faults;
	uint32_t nr_dead_faults;
	/*
	 * Adopting a predecessor's objects (->adopt until ->adopt_end,
	 * adopt.c): the object of each kind the next allocation of that
	 * kind takes over (kind 0: none), an empty IOAS that
	 * IOMMU_IOAS_COPY checks mappings into, what had to be rebuilt.
	 */
	bool adopting;
	struct be_kobj pending[BE_KOBJ_LAST + 1];
	uint32_t check_ioas;
	uint32_t nr_rebuilt;
	char lost[256];			/* the first things not adopted */
};

struct be_ioas {
	struct backend *be;
	struct be_tenant *tenant;	/* the iommufd it lives in */
	uint32_t id;			/* kernel IOAS */
	bool page_granular;		/* IOMMU_OPTION_HUGE_PAGES 0: cuts split */
	bool nest_parent;		/* its HWPTs: IOMMU_HWPT_ALLOC_NEST_PARENT */
	bool adopted;			/* a predecessor's: maps check first */
	struct kmap map;
	struct be_domain *domains;	/* its HWPTs (unmap_dirty) */
	struct be_fault *fault;		/* fault queue its HWPTs get (fault.c) */
};

/* Every mapping ioctl goes through here, so the trace is complete. */
static inline int traced(struct be_tenant *t, enum iommufd_call c,
			 unsigned long req, void *arg)
{
	t->be->calls[c]++;
	return kioctl(t->fd, req, arg);
}

/* A HWPT's be_kobj id[1] (0 in images before dirty tracking was kept). */
#define IOMMUFD_KOBJ_DOMAIN_DIRTY	(1u << 0)	/* tracking on */
/* allocated with its IOAS's fault queue: id[2] is the FAULT object */
#define IOMMUFD_KOBJ_DOMAIN_FAULT	(1u << 1)

struct be_domain {
	struct be_ioas *ioas;
	const struct inv_iommu *unit;
	uint32_t hwpt_id;
	bool enforce;
	bool can_track;			/* allocated with DIRTY_TRACKING */
	bool dirty;			/* dirty tracking on */
	bool fault;			/* allocated with its IOAS's fault queue */
	/* adopted: the FAULT object the predecessor's HWPT carries, or 0 */
	uint32_t adopted_fault;
	struct be_domain *next;		/* in be_ioas.domains */
};

/* A PASID of a device attached to a HWPT (and, mock, its DMA access). */
struct ifd_pasid {
	uint32_t pasid;
	struct be_domain *domain;	/* on a nested HWPT: its parent */
	struct be_nested *nested;	/* the nested HWPT it is on, or NULL */
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
	struct be_nested *nested;	/* the nested HWPT it is on, or NULL */
	int access_fd;			/* its DMA: an access on its IOAS */
	pthread_mutex_t fault_lock;	/* ->dma runs beside everything */
	struct ioasid_fault faults[MOCK_FAULTS];
	uint32_t fault_head, fault_len;
	uint64_t faults_lost;
};

/* A nested HWPT (nested.c) over a nest-parent HWPT. */
struct be_nested {
	struct be_tenant *tenant;
	struct be_domain *parent;
	uint32_t hwpt_id;
	uint32_t type;			/* enum ioasid_nested_type */
	/*
	 * What IOMMU_HWPT_ALLOC was given, so that a HWPT with or without
	 * a fault queue can replace it (fault.c): the object it goes over,
	 * the vendor data.
	 */
	uint32_t pt_id;
	uint32_t data_type, data_len;
	uint8_t data[32];
	struct be_fault *fault;		/* the queue its HWPT carries */
	uint32_t dead_fault;		/* a freed queue's FAULT it still holds */
	uint32_t adopted_fault;		/* as be_domain's (kobj id[1]) */
};

/* iommufd.c */
void iommufd_destroy(struct be_tenant *t, uint32_t id, const char *what);
bool iommufd_cdev_now(const char *name, char *path, size_t len);

/* The seam operations (backend_iommufd, iommufd.c), by file. */
/* iommufd.c */
int iommufd_open(const struct log_sink *log, const char *arg,
		 struct backend **out, char *errmsg, size_t errlen);
void iommufd_close(struct backend *be);
int iommufd_tenant_open(struct backend *be, struct be_tenant **out);
void iommufd_tenant_close(struct be_tenant *t);
const char *iommufd_describe(struct backend *be);
int iommufd_inventory(struct backend *be, struct inventory *inv);
int iommufd_hotplug_fd(struct backend *be);
int iommufd_hotplug_read(struct backend *be, char *name, size_t len,
			 bool *present);
/* ioas.c */
int iommufd_ioas_alloc(struct backend *be, struct be_tenant *t,
		       uint32_t flags, struct be_ioas **out);
void iommufd_ioas_free(struct be_ioas *ioas);
int iommufd_map(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		const struct be_backing *backing, uint32_t prot);
int iommufd_unmap(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		  const struct be_piece *old, uint32_t nr_old);
size_t iommufd_take_lost(struct be_ioas *ioas, struct ioasid_iova_range *out,
			 size_t cap);
int iommufd_hide_batch(struct be_ioas *ioas,
		       const struct ioasid_iova_range *runs, uint32_t nr);
int iommufd_copy(struct be_ioas *dst, uint64_t dst_iova, struct be_ioas *src,
		 uint64_t src_iova, uint64_t length, uint32_t prot,
		 const struct be_piece *pieces, uint32_t nr_pieces);
/* domain.c */
int iommufd_domain_alloc(struct be_ioas *ioas, const struct inv_iommu *unit,
			 uint32_t flags, const struct be_replay *replay,
			 struct be_domain **out);
void iommufd_domain_free(struct be_domain *d);
/* dirty.c */
int iommufd_set_dirty_tracking(struct be_domain *d, bool on);
int iommufd_read_dirty(struct be_domain *d, uint64_t iova, uint64_t length,
		       uint64_t *bitmap, bool clear);
int iommufd_unmap_dirty(struct be_ioas *ioas, uint64_t iova, uint64_t length,
			const struct be_piece *old, uint32_t nr_old,
			uint64_t *bitmap, uint64_t bitmap_iova);
/* device.c */
int iommufd_device_open(struct backend *be, struct be_tenant *t,
			const struct inv_device *inv,
			const struct inv_iommu *unit, uint32_t dev_id,
			int vfio_fd, struct be_device **out);
void iommufd_device_close(struct be_device *dev);
int iommufd_attach(struct be_device *dev, struct be_domain *d);
/* device.c: a mock device and a real HWPT, or the reverse (never tried) */
bool iommufd_crosses_mock(const struct be_device *dev,
			  const struct be_domain *d);
/* device.c: attach/replace to any HWPT (domain or nested) */
int iommufd_attach_pt(struct be_device *dev, uint32_t pt_id, uint32_t ioas_id);
int iommufd_detach(struct be_device *dev, char *why, size_t len);
int iommufd_device_vfio_fd(struct be_device *dev);
/* pasid.c */
int iommufd_pasid_attach(struct be_device *dev, uint32_t pasid,
			 struct be_domain *d);
int iommufd_pasid_attach_nested(struct be_device *dev, uint32_t pasid,
				struct be_nested *n);
int iommufd_pasid_detach(struct be_device *dev, uint32_t pasid);
int iommufd_dma_pasid(struct be_device *dev, uint32_t pasid, uint64_t iova,
		      void *buf, uint64_t length, uint32_t flags,
		      uint64_t *done);
/* mock.c */
int iommufd_dma(struct be_device *dev, uint64_t iova, void *buf,
		uint64_t length, uint32_t flags, uint64_t *done);
int iommufd_read_faults(struct be_device *dev, struct ioasid_fault *out,
			uint32_t cap, uint32_t *nr);
uint64_t iommufd_take_faults_lost(struct be_device *dev);
/* domain.c: a HWPT like @d's, carrying FAULT @fault_id (0: none) */
int iommufd_domain_hwpt(struct be_domain *d, uint32_t fault_id,
			uint32_t *hwpt_id);
/* a device of @t behind @unit (HWPT_ALLOC needs one), or NULL */
struct be_device *iommufd_device_on(struct be_tenant *t,
				    const struct inv_iommu *unit);
/* pasid.c: move a PASID already attached to HWPT @hwpt_id, no gap */
int iommufd_pasid_move(struct be_device *dev, uint32_t pasid,
		       uint32_t hwpt_id);
/* pasid.c: the nested table PASID @pasid of @dev is on, else NULL */
const struct be_nested *iommufd_pasid_nested(struct be_device *dev,
					    uint32_t pasid);
/* nested.c */
int iommufd_nested_make(struct be_domain *parent, uint32_t pt_id,
			struct be_device *dev, uint32_t type,
			const void *data, uint32_t len,
			uint32_t nested_id, struct be_nested **out,
			char *why, size_t whylen);
/* a HWPT like @n's for @dev, carrying FAULT @fault_id (0: none) */
int iommufd_nested_hwpt(struct be_nested *n, struct be_device *dev,
			uint32_t fault_id, uint32_t *hwpt_id);
int iommufd_nested_alloc(struct be_domain *parent, struct be_device *dev,
			 uint32_t type, const void *data, uint32_t len,
			 uint32_t nested_id, struct be_nested **out, char *why,
			 size_t whylen);
void iommufd_nested_free(struct be_nested *n);
int iommufd_attach_nested(struct be_device *dev, struct be_nested *n);
int iommufd_nested_invalidate(struct be_nested *n,
			      const struct ioasid_nested_inval *v, uint32_t nr,
			      uint32_t *done, char *why, size_t whylen);
/* viommu.c: vIOMMUs and vDEVICEs (mock devices: the selftest type) */
int iommufd_viommu_alloc(struct be_domain *parent, struct be_device *dev,
			 uint32_t type, struct be_viommu **out, char *why,
			 size_t whylen);
void iommufd_viommu_free(struct be_viommu *v);
int iommufd_vdevice_alloc(struct be_viommu *v, struct be_device *dev,
			  uint64_t virt_id, struct be_vdevice **out, char *why,
			  size_t whylen);
void iommufd_vdevice_free(struct be_vdevice *vd);
int iommufd_viommu_nested_alloc(struct be_viommu *v, struct be_device *dev,
				uint32_t type, const void *data, uint32_t len,
				uint32_t nested_id, struct be_nested **out,
				char *why, size_t whylen);
int iommufd_viommu_invalidate(struct be_viommu *v,
			      const struct ioasid_viommu_inval *e, uint32_t nr,
			      uint32_t *done, char *why, size_t whylen);
/*
 * At open, on the probing iommufd: does the kernel's mock IOMMU give a
 * vIOMMU, a vDEVICE on it, a nested HWPT on it and take its invalidation
 * type?  0, or -errno with what failed in @why.
 */
int iommufd_mock_probe_viommu(int fd, char *why, size_t whylen);

/*
 * Hand-over to a successor (adopt.c): the seam's ->kobj, ->adopt and
 * ->adopt_end, and what ioas.c, domain.c and device.c ask of it: take the
 * pending kernel object over (true) or make a new one (false, counted
 * when the kernel lost the announced one); check a mapping (0: it is
 * there, nothing to map).
 */
int iommufd_kobj(const void *obj, uint32_t kind, struct be_kobj *out);
int iommufd_adopt(struct backend *be, struct be_tenant *t,
		  const struct be_kobj *k);
int iommufd_adopt_end(struct be_tenant *t, char *why, size_t len);
bool iommufd_adopt_ioas(struct be_tenant *t, struct be_ioas *ioas);
bool iommufd_adopt_domain(struct be_tenant *t, struct be_domain *d);
bool iommufd_adopt_device(struct be_tenant *t, struct be_device *dev);
/* nested.c, viommu.c: the announced HWPT, vIOMMU, vDEVICE (*id). */
bool iommufd_adopt_nested(struct be_tenant *t, struct be_nested *n);
bool iommufd_adopt_viommu(struct be_tenant *t, uint32_t *viommu_id);
/*
 * A vDEVICE of @dev_id on @viommu_id as @virt_id: true with *id the
 * announced one when the kernel still has it, else false (make one).
 */
bool iommufd_adopt_vdevice(struct be_tenant *t, uint32_t viommu_id,
			   uint32_t dev_id, uint64_t virt_id, uint32_t *id);
int iommufd_adopt_map(struct be_ioas *ioas, const struct kmap_entry *e,
		      uint32_t flags);
/* fault.c: the announced object of @kind (true), taken; what was lost */
bool iommufd_adopt_take(struct be_tenant *t, uint32_t kind,
			struct be_kobj *k);
void iommufd_adopt_lost(struct be_tenant *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int iommufd_probe(int fd, char *errmsg, size_t errlen);

/*
 * Mock devices (mock.c): the selftest driver's IOMMU_TEST_CMD, and what
 * the device and PASID code asks of a mock device.
 */
int iommufd_mock_cmd(struct be_tenant *t, struct ifd_test_cmd *c);
void iommufd_mock_probe(int fd, bool *dirty, bool *nesting);
int iommufd_mock_inventory(struct backend *be, struct inventory *inv);
int iommufd_mock_open(struct be_device *dev);
void iommufd_mock_close(struct be_device *dev);
int iommufd_mock_attach(struct be_device *dev, uint32_t pt_id,
			uint32_t ioas_id);
/* a DMA access for a PASID, on IOAS @ioas_id; moved to another */
int iommufd_mock_pasid_access(struct be_device *dev, uint32_t ioas_id,
			      int *fd);
int iommufd_mock_access_move(struct be_device *dev, int fd, uint32_t ioas_id);
int iommufd_mock_dma_via(struct be_device *dev, int access_fd, uint64_t iova,
			 void *buf, uint64_t length, uint32_t flags,
			 uint64_t *done, struct be_domain *dom, bool has_pasid,
			 uint32_t pasid);

/* fault.c: fault queues (IOMMU_FAULT_QUEUE_ALLOC) */
int iommufd_fault_alloc(struct be_ioas *ioas, struct be_nested *nested,
			struct be_fault **out, int *fd, char *why,
			size_t whylen);
int iommufd_fault_adopt(struct be_ioas *ioas, struct be_nested *nested,
			int carried_fd, struct be_fault **out, int *fd,
			char *why, size_t whylen);
int iommufd_fault_unhook(struct be_fault *f, char *why, size_t whylen);
void iommufd_fault_free(struct be_fault *f);
/* The FAULT object of queue @f (its be_kobj). */
uint32_t iommufd_fault_kobj_id(const struct be_fault *f);
/* IOMMU_DESTROY of FAULT @id now, or later (be_tenant.dead_faults). */
void iommufd_fault_bury(struct be_tenant *t, uint32_t id);
int iommufd_fault_read(struct be_fault *f, struct ioasid_page_request *out,
		       uint32_t cap, uint32_t *n);
int iommufd_fault_respond(struct be_fault *f, uint32_t cookie, uint32_t code);
/* The FAULT object HWPTs of @ioas get, 0: none. */
uint32_t iommufd_fault_id(const struct be_ioas *ioas);
/* A mock device's page request at @iova on domain @d: 0 when raised,
 * -ENOENT when @d takes none (then it is a fault). */
int iommufd_mock_page_request(struct be_device *dev, struct be_domain *d,
			      bool has_pasid, uint32_t pasid, uint64_t iova,
			      uint32_t flags);

#endif
