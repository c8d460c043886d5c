/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The backend seam: what the core asks of "hardware".
 *
 * Shaped after iommufd's objects so that the kernel backends fit without
 * special cases:
 *
 *   be_ioas    an address space as the hardware side sees it.  iommufd: a
 *              kernel IOAS (the kernel mirrors it into HWPTs); sim: a list
 *              of domains the backend mirrors every map/unmap into.
 *   be_domain  a hardware page table (iommufd HWPT, VT-d domain) created
 *              from a be_ioas for one IOMMU unit, with its coherency fixed
 *              at creation (BE_DOMAIN_ENFORCE_COHERENCY).
 *   be_device  a device bound to the backend (VFIO cdev bound to iommufd;
 *              a simulated device), attached to at most one domain.
 *   be_nested  a nested (stage-1) table over a domain of a nest-parent
 *              IOAS (iommufd: a nested HWPT), in the vendor's format.
 *   be_viommu  a vIOMMU over such a domain (iommufd: IOMMU_VIOMMU_ALLOC),
 *              be_vdevice a device's virtual ID on it (IOMMU_VDEVICE_ALLOC).
 *
 * Who calls: only core/ (base.c, core.c, dispatch.c, ioas.c, convert.c,
 * device.c, domain.c, fault.c, vm.c); docs/architecture.md's layer table
 * (tests/check-layers.sh) keeps everything above the core from including
 * this.
 * Backends call nothing above this seam; they may use util/, discovery/,
 * inventory/, kvm/ and core/file.h.  All calls come with the core lock held, except ->dma and
 * ->read_dirty, which may run concurrently with ->map/->unmap on other
 * threads (the backend must make that safe, as hardware does).
 *
 * Errors: negative errno; -EINVAL from ->attach means "this domain is not
 * compatible with the device, try another" (the iommufd convention).
 */
#ifndef IOASID_BACKEND_H
#define IOASID_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include <ioasid/ioasid.h>

#include "inventory/inventory.h"

struct log_sink;
struct backend;
struct be_ioas;
struct be_domain;
struct be_device;
struct be_tenant;
struct be_nested;
struct be_viommu;
struct be_vdevice;
struct file_ref;

/* What a range of IOVA points at. */
struct be_backing {
	struct file_ref *file;	/* NULL for user (HVA) mappings */
	int fd;			/* the core's fd for file, else -1 */
	uint64_t offset;	/* file offset of the first byte */
	void *hva;		/* user mappings: the address */
};

/* A piece of mapping as the core had it before an unmap. */
struct be_piece {
	uint64_t iova;
	uint64_t length;
	struct be_backing backing;
	uint32_t prot;		/* IOASID_MAP_READ | IOASID_MAP_WRITE */
};

/* Walks the mappings of an IOAS: calls fn for each piece until non-zero. */
struct be_replay {
	int (*each)(const struct be_replay *replay,
		    int (*fn)(void *arg, const struct be_piece *piece),
		    void *arg);
	void *ioas;
};

/*
 * A kernel object a successor process adopts instead of re-creating it
 * (->kobj, ->adopt): what the kernel knows it by and the descriptors that
 * keep it alive.  iommufd: TENANT fd[0] its /dev/iommu; IOAS id[0] the
 * kernel IOAS; DOMAIN id[0] the HWPT; DEVICE id[0] its dev_id, fd[0] its
 * VFIO cdev (mock devices: id[1] selftest object, id[2] park HWPT, id[3]
 * park IOAS, fd[0] its DMA access); NESTED id[0] the nested HWPT;
 * VIOMMU id[0] the vIOMMU; VDEVICE id[0] the vDEVICE; FAULT id[0] the
 * FAULT object of a fault queue (its fd travels as the queue's op's
 * descriptor).  vfio-type1: IOAS
 * fd[0] the container; DEVICE fd[0] its group (no TENANT or DOMAIN
 * records).  Unused ids are 0, fds -1.  A backend that says -EINVAL for a
 * kind cannot hand such objects over (core/export.c refuses them).
 */
enum be_kobj_kind {
	BE_KOBJ_TENANT = 1,
	BE_KOBJ_IOAS,
	BE_KOBJ_DOMAIN,
	BE_KOBJ_DEVICE,
	BE_KOBJ_NESTED,		/* be_nested */
	BE_KOBJ_VIOMMU,		/* be_viommu */
	BE_KOBJ_VDEVICE,	/* be_vdevice */
	BE_KOBJ_FAULT,		/* be_fault */
	BE_KOBJ_LAST = BE_KOBJ_FAULT,
};

struct be_kobj {
	uint32_t kind;			/* enum be_kobj_kind */
	uint32_t id[4];
	int fd[2];
};

enum be_domain_flags {
	BE_DOMAIN_ENFORCE_COHERENCY	= 1 << 0,
	BE_DOMAIN_DIRTY_TRACKING	= 1 << 1,
};

struct be_fault;

/* ->dma flag beside enum ioasid_dma_flags: see ->dma. */
#define BE_DMA_PAGE_REQUEST	(1u << 31)

struct backend_ops {
	const char *name;
	/* ->unmap needs the whole pieces (kernel backends cannot cut) */
	bool unmap_wants_pieces;
	/*
	 * A successor process rebuilds this backend's state by replaying
	 * the ops of a state image (the simulator: nothing lives outside
	 * the process); kernel backends would have to adopt their kernel
	 * objects instead (core/export.c refuses them).
	 */
	bool replayable;
	/*
	 * ->dma (and ->dma_pasid) take BE_DMA_PAGE_REQUEST: the device can
	 * issue page requests (core/iopf.c queues them).
	 */
	bool dma_page_requests;
	/*
	 * Kernel backends that can hand their objects over (iommufd,
	 * vfio-type1):
	 * ->kobj says what the object is in the kernel; in a successor,
	 * ->adopt before the op that would create it makes the next
	 * ->tenant_open/->ioas_alloc/->domain_alloc/->device_open take that
	 * object over (checking that the kernel still has it) and the maps
	 * and attaches that follow check the kernel's state instead of
	 * changing it (re-doing what the kernel lost);
	 * ->adopt_end ends that mode and moves pinned-page accounting to
	 * the calling process.  @obj: a be_tenant, be_ioas, be_domain or
	 * be_device by kind.  ->adopt_end returns the number of objects or
	 * mappings it had to rebuild (0: all adopted) or -errno, with what
	 * it could not take over in @why.  Several objects may be announced
	 * before one op (a NESTED_ALLOC that makes its stage-2 domain: the
	 * DOMAIN and the NESTED), one of each kind; each allocation takes
	 * the one of its kind.
	 */
	int (*kobj)(const void *obj, uint32_t kind, struct be_kobj *out);
	int (*adopt)(struct backend *be, struct be_tenant *tenant,
		     const struct be_kobj *k);
	int (*adopt_end)(struct be_tenant *tenant, char *why, size_t len);
	/*
	 * Optional, for backends whose kernel objects remember this
	 * process's addresses (vfio-type1): ->handover_begin, after the
	 * image is written, makes the kernel forget them while it keeps
	 * the pinned pages and the IOMMU mappings (the devices' DMA goes
	 * on), so that a successor can register its own; until then the
	 * tenant's mappings and attachments cannot change (-EBUSY).
	 * ->handover_cancel gives this process its addresses back (a
	 * hand-over given up).  Both: 0 or -errno with the reason in @why;
	 * a failed ->handover_begin leaves nothing changed.
	 */
	int (*handover_begin)(struct be_tenant *tenant, char *why, size_t len);
	int (*handover_cancel)(struct be_tenant *tenant, char *why,
			       size_t len);

	/* arg: what followed "name:" in the URI, or NULL. */
	int (*open)(const struct log_sink *log, const char *arg,
		    struct backend **be, char *errmsg, size_t errlen);
	void (*close)(struct backend *be);
	/* Fill @inv with the units and devices this backend offers. */
	int (*inventory)(struct backend *be, struct inventory *inv);

	/*
	 * Optional: a tenant is where one session's kernel objects live,
	 * isolated from every other session's (iommufd: a /dev/iommu of its
	 * own, so that a device file bound in it can reach only its IOASes
	 * and HWPTs).  The core opens one per session at the session's first
	 * IOAS or device and closes it after the session's last object went;
	 * backends without tenants get NULL in ->ioas_alloc/->device_open.
	 */
	int (*tenant_open)(struct backend *be, struct be_tenant **tenant);
	void (*tenant_close)(struct be_tenant *tenant);

	/*
	 * @flags: the IOAS's IOASID_IOAS_* flags, so a backend can lay out
	 * its mappings for the IOAS's kind (the kernel backends map a
	 * RESTRICTED IOAS page by page, so that conversions never cut a
	 * kernel mapping).
	 */
	int (*ioas_alloc)(struct backend *be, struct be_tenant *tenant,
			  uint32_t flags, struct be_ioas **ioas);
	void (*ioas_free)(struct be_ioas *ioas);
	/* Map [iova, iova+length) everywhere the IOAS is mirrored. */
	int (*map)(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		   const struct be_backing *backing, uint32_t prot);
	/*
	 * Remove [iova, iova+length); @old lists the pieces that covered it
	 * (whole, before the cut) for backends that cannot cut mappings.
	 * When it returns, no DMA can reach the range (IOTLBs invalidated).
	 */
	int (*unmap)(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		     const struct be_piece *old, uint32_t nr_old);
	/*
	 * Optional hint, before the core looks up what an unmap at @iova
	 * removes (and then calls ->unmap): start loading what ->unmap
	 * reads first (the simulator: the page-table entry), so that its
	 * cache misses overlap with those of the core's own lookup.
	 * Changes nothing; no ->unmap need follow.
	 */
	void (*unmap_prefetch)(struct be_ioas *ioas, uint64_t iova);
	/*
	 * Optional, after a failed ->unmap: the ranges the hardware lost
	 * anyway (a composed cut whose kept pieces could be put back neither
	 * cut nor whole), up to @cap into @out; returns how many it stored
	 * and forgets those (the core calls until 0).  The core drops them
	 * too, so that its view matches the hardware's.
	 */
	size_t (*take_lost)(struct be_ioas *ioas, struct ioasid_iova_range *out,
			    size_t cap);
	/*
	 * Optional: hide many page runs that lie inside mappings (private
	 * conversion) with one invalidation.  The mappings stay; the core
	 * maps the runs back with ->map when they are shared again.
	 */
	int (*hide_batch)(struct be_ioas *ioas,
			  const struct ioasid_iova_range *runs, uint32_t nr);
	/*
	 * Optional: the hardware copies [src_iova, src_iova+length) of @src
	 * to @dst_iova in @dst (iommufd: IOMMU_IOAS_COPY, the same pinned
	 * pages), both IOASes of one tenant and neither restricted.  @pieces
	 * are the mappings the copy makes in @dst as the core records them
	 * (IOVA in @dst, @dst's file references), in IOVA order.  All or
	 * nothing; the core falls back to ->map of each piece without it.
	 */
	int (*copy)(struct be_ioas *dst, uint64_t dst_iova, struct be_ioas *src,
		    uint64_t src_iova, uint64_t length, uint32_t prot,
		    const struct be_piece *pieces, uint32_t nr_pieces);

	/*
	 * A new domain must start with every mapping of the IOAS: backends
	 * that keep no copy (sim) fill it from @replay; the kernel mirrors
	 * its own IOAS into a new HWPT and ignores it.
	 */
	int (*domain_alloc)(struct be_ioas *ioas, const struct inv_iommu *unit,
			    uint32_t flags, const struct be_replay *replay,
			    struct be_domain **domain);
	void (*domain_free)(struct be_domain *domain);

	/* @dev_id: the core's id, used in fault records. */
	int (*device_open)(struct backend *be, struct be_tenant *tenant,
			   const struct inv_device *dev,
			   const struct inv_iommu *unit, uint32_t dev_id,
			   int vfio_fd, struct be_device **device);
	void (*device_close)(struct be_device *device);
	/* Attach, or move from the current domain without a gap (replace). */
	int (*attach)(struct be_device *device, struct be_domain *domain);
	/*
	 * 0, or -errno with the device still attached (nothing changed) and
	 * the reason in @why: the kernel may refuse (VFIO type1: a group
	 * stays in its container while a device fd of it is open).
	 */
	int (*detach)(struct be_device *device, char *why, size_t len);
	/* The VFIO device fd for kvm-vfio, or -1 (simulated devices). */
	int (*device_vfio_fd)(struct be_device *device);

	/*
	 * Optional: device-initiated DMA (simulated and mock devices).  With
	 * BE_DMA_PAGE_REQUEST in @flags, a translation that is not present
	 * ends the DMA with -EAGAIN at *@done and leaves no fault record:
	 * the core turns it into a page request.
	 */
	int (*dma)(struct be_device *device, uint64_t iova, void *buf,
		   uint64_t length, uint32_t flags, uint64_t *done);
	/*
	 * Optional PASIDs (core/pasid.c checks the PASID, the device's
	 * capability and the unit's support first).  ->pasid_attach puts
	 * @pasid of the device in @domain, or moves it there from its
	 * current domain without a gap; -EINVAL: this domain is not
	 * compatible, try another.  ->pasid_detach: DMA tagged with @pasid
	 * is blocked when it returns.  ->dma_pasid: ->dma tagged with
	 * @pasid, translated by that PASID's domain (blocked if none).
	 * The core calls ->pasid_attach and ->pasid_detach with the
	 * device's DMA excluded (its device lock), so a backend's table of
	 * PASIDs needs no lock of its own against ->dma_pasid.
	 */
	int (*pasid_attach)(struct be_device *device, uint32_t pasid,
			    struct be_domain *domain);
	int (*pasid_detach)(struct be_device *device, uint32_t pasid);
	int (*dma_pasid)(struct be_device *device, uint32_t pasid,
			 uint64_t iova, void *buf, uint64_t length,
			 uint32_t flags, uint64_t *done);
	/*
	 * Optional: turn the domain's dirty tracking on or off.  -EOPNOTSUPP
	 * when its hardware cannot track (the core then refuses, or with the
	 * caller's fallback treats every mapped page as dirty).  Domains are
	 * created with tracking off; turning it on starts from clean.
	 */
	int (*set_dirty_tracking)(struct be_domain *domain, bool on);
	/* Optional: read (and clear) dirty bits, one bit per 4 KiB; bits
	 * are ORed into @bitmap.  A dirty large IOPTE marks all its pages. */
	int (*read_dirty)(struct be_domain *domain, uint64_t iova,
			  uint64_t length, uint64_t *bitmap, bool clear);
	/*
	 * Optional, a replayable backend's (the bits live in this process):
	 * make the pages of [iova, iova+length) of a tracking domain dirty
	 * again, as a state image had them (core_replay_dirty()); a large
	 * IOPTE becomes dirty as a whole.  A kernel backend has none: its
	 * objects keep their bits across a hand-over.
	 */
	int (*mark_dirty)(struct be_domain *domain, uint64_t iova,
			  uint64_t length);
	/*
	 * Optional, a replayable backend's: from now on, each time a DMA
	 * write makes a clean page (or large IOPTE) of @domain dirty, call
	 * @fn(@cookie, its IOVA, its size) from the DMA's thread before the
	 * data moves (the core journals it: a rebuilt domain has the bits
	 * back).  Bits marked (->mark_dirty) are not told.  Set once, right
	 * after ->domain_alloc, before any DMA.
	 */
	void (*set_dirtied)(struct be_domain *domain,
			    void (*fn)(void *cookie, uint64_t iova,
				       uint64_t size),
			    void *cookie);
	/*
	 * Optional: ->unmap that also ORs the tracking domains' dirty bits
	 * of the range into @bitmap (bit i = page @bitmap_iova + i * 4 KiB,
	 * @bitmap_iova <= @iova).
	 * unmap_dirty_atomic: the bits are taken in the same step as the
	 * removal (sim); otherwise a write between the read and the unmap
	 * is not reported (iommufd: GET_DIRTY_BITMAP, then IOAS_UNMAP).
	 */
	int (*unmap_dirty)(struct be_ioas *ioas, uint64_t iova, uint64_t length,
			   const struct be_piece *old, uint32_t nr_old,
			   uint64_t *bitmap, uint64_t bitmap_iova);
	bool unmap_dirty_atomic;
	/* Optional: counters of a device's DMA (simulated devices). */
	int (*device_stats)(struct be_device *device,
			    uint64_t *snooped_bytes, uint64_t *noncoherent_bytes);
	/*
	 * Optional hotplug.  Real backends: a pollable fd (a udev monitor)
	 * and a reader that says which device came or went.  The simulated
	 * backend instead unplugs on request (->simulate_hotplug).
	 */
	int (*hotplug_fd)(struct backend *be);
	int (*hotplug_read)(struct backend *be, char *name, size_t len,
			    bool *present);
	int (*simulate_hotplug)(struct backend *be, const char *name,
				bool present);
	/* Optional: where the topology came from ("built-in", a path). */
	const char *(*describe)(struct backend *be);
	/*
	 * Optional (kernel backends): a fault queue in the kernel for the
	 * HWPTs of @ioas (@nested NULL) or for nested table @nested (@ioas:
	 * its parent); iommufd: a FAULT object of IOMMU_FAULT_QUEUE_ALLOC,
	 * HWPTs with IOMMU_HWPT_FAULT_ID_VALID.  Tables that exist already
	 * are replaced by ones that carry it, their devices and PASIDs moved
	 * over without a gap, mappings kept; all or nothing (-errno, reason
	 * in @why: every device where it was, the old tables kept).
	 * *@fd: a new descriptor of the caller, readable while the kernel
	 * holds page requests.  ->fault_read takes up to @cap of them
	 * (dev_id: the core's ids; the kernel's cookies); ->fault_respond
	 * answers one, -ENOENT when the kernel has no such request.
	 * ->fault_unhook, before ->fault_free of a queue whose target stays
	 * (nothing attached to it): its tables stop carrying the queue, all
	 * or nothing as above.  ->fault_free alone: the target goes too.
	 */
	int (*fault_alloc)(struct be_ioas *ioas, struct be_nested *nested,
			   struct be_fault **fault, int *fd, char *why,
			   size_t whylen);
	/*
	 * Optional (kernel backends that hand their queues over): in a
	 * successor's replay, take over the predecessor's queue of @ioas
	 * (or @nested) that ->adopt announced (BE_KOBJ_FAULT): @carried_fd
	 * is its fd from the state image (the caller's, not kept), checked
	 * to be one; *@fd a descriptor of it for the core.  The target's
	 * HWPTs that carry it keep it; any that does not is replaced by
	 * one that does.  On failure nothing is kept, with why in @why.
	 */
	int (*fault_adopt)(struct be_ioas *ioas, struct be_nested *nested,
			   int carried_fd, struct be_fault **fault, int *fd,
			   char *why, size_t whylen);
	int (*fault_unhook)(struct be_fault *fault, char *why, size_t whylen);
	void (*fault_free)(struct be_fault *fault);
	int (*fault_read)(struct be_fault *fault,
			  struct ioasid_page_request *out, uint32_t cap,
			  uint32_t *n);
	int (*fault_respond)(struct be_fault *fault, uint32_t cookie,
			     uint32_t code);

	/* Optional: take up to @cap fault records of one device. */
	int (*read_faults)(struct be_device *device,
			   struct ioasid_fault *faults, uint32_t cap,
			   uint32_t *nr);
	/*
	 * Optional: how many of the device's own fault records its log
	 * dropped (it was full) since the last call; the core counts them
	 * in the owning session's faults_lost.
	 */
	uint64_t (*take_faults_lost)(struct be_device *device);

	/*
	 * Optional: nested translation.  A nested table over @parent (a
	 * domain of an IOAS allocated with IOASID_IOAS_NEST_PARENT, which
	 * ->ioas_alloc saw) for the IOMMU of @device, from the vendor's
	 * @data of @type (the core checked its size and flags; the backend
	 * refuses what it cannot do, with the reason in @why).  @nested_id:
	 * the core's id, for fault records.
	 */
	int (*nested_alloc)(struct be_domain *parent, struct be_device *device,
			    uint32_t type, const void *data, uint32_t len,
			    uint32_t nested_id, struct be_nested **nested,
			    char *why, size_t whylen);
	void (*nested_free)(struct be_nested *nested);
	/* Attach or move (replace) a device to a nested table, no gap. */
	int (*attach_nested)(struct be_device *device,
			     struct be_nested *nested);
	/*
	 * Optional: ->pasid_attach for a nested table: @pasid of the device
	 * on @nested (the core checked it is on the device's IOMMU), or
	 * moved there from where it is without a gap; ->pasid_detach and
	 * ->dma_pasid as for a domain, DMA translating through both stages.
	 * Called with the device's DMA excluded, as ->pasid_attach.
	 */
	int (*pasid_attach_nested)(struct be_device *device, uint32_t pasid,
				   struct be_nested *nested);
	/*
	 * Invalidate the nested table's caches for each entry in order;
	 * stop at the first that fails.  *@done: the entries done.  0 or
	 * the failing entry's -errno (reason in @why).
	 */
	int (*nested_invalidate)(struct be_nested *nested,
				 const struct ioasid_nested_inval *v,
				 uint32_t nr, uint32_t *done, char *why,
				 size_t whylen);

	/*
	 * Optional: vIOMMUs.  A vIOMMU of @type over @parent (a domain of a
	 * nest-parent IOAS) on the IOMMU of @device (the core checked the
	 * type is known; the backend refuses one the unit has not, with the
	 * reason in @why); vDEVICEs give a device a virtual ID on
	 * it (the core checked the device is behind the same IOMMU, has no
	 * other vDEVICE and the ID is unused); nested tables on it are
	 * ->nested_alloc's, tied to it.  ->viommu_invalidate does each entry
	 * in order (the core checked their fields for the type) and stops
	 * at the first that fails: *@done the entries done, 0 or that
	 * entry's -errno (reason in @why).  The core frees the vIOMMU only
	 * after its vDEVICEs and nested tables.
	 */
	int (*viommu_alloc)(struct be_domain *parent, struct be_device *device,
			    uint32_t type, struct be_viommu **viommu,
			    char *why, size_t whylen);
	void (*viommu_free)(struct be_viommu *viommu);
	int (*vdevice_alloc)(struct be_viommu *viommu, struct be_device *device,
			     uint64_t virt_id, struct be_vdevice **vdevice,
			     char *why, size_t whylen);
	void (*vdevice_free)(struct be_vdevice *vdevice);
	int (*viommu_nested_alloc)(struct be_viommu *viommu,
				   struct be_device *device, uint32_t type,
				   const void *data, uint32_t len,
				   uint32_t nested_id,
				   struct be_nested **nested, char *why,
				   size_t whylen);
	int (*viommu_invalidate)(struct be_viommu *viommu,
				 const struct ioasid_viommu_inval *v,
				 uint32_t nr, uint32_t *done, char *why,
				 size_t whylen);
};

extern const struct backend_ops backend_sim;
extern const struct backend_ops backend_iommufd;	/* backends/iommufd/ */
extern const struct backend_ops backend_vfio_type1;	/* backends/vfio_type1/ */

const struct backend_ops *backend_find(const char *name);

#endif
