/* SPDX-License-Identifier: LGPL-2.1-or-later WITH Linux-syscall-note */
/*
 * ioasid wire ABI: the values and structures shared by libioasid, ioasidd
 * and anything else that speaks the ioasidd protocol.
 *
 * Rules (the same as the Linux iommufd uAPI):
 *  - fixed-width types only, no libc types, explicit padding;
 *  - every structure starts with __u32 size (bytes the writer filled in)
 *    and, where it has options, __u32 flags;
 *  - enums have explicit values and values are never reused;
 *  - a reader that gets a larger structure than it knows accepts it when
 *    the unknown tail is zero and fails with E2BIG otherwise; a reader that
 *    gets a smaller one zero-fills the rest.
 */
#ifndef _UAPI_IOASID_IOASID_H
#define _UAPI_IOASID_IOASID_H

#include <linux/types.h>

#define IOASID_NAME_MAX		32	/* device, IOMMU, driver names */
#define IOASID_PATH_MAX		96	/* backing descriptions, node paths */

/* ---- mapping ------------------------------------------------------- */

/* Flags of map_file / map_user / copy. */
enum ioasid_map_flags {
	IOASID_MAP_READ		= 1 << 0, /* device may read */
	IOASID_MAP_WRITE	= 1 << 1, /* device may write */
	IOASID_MAP_FIXED_IOVA	= 1 << 2, /* use *iova, do not allocate */
};

/* Flags of unmap. */
enum ioasid_unmap_flags {
	/* Nothing mapped in the range is success (0 bytes), not ENOENT. */
	IOASID_UNMAP_MISSING_OK	= 1 << 0,
	/* Return the dirty bits of what is removed (ioasid_unmap_get_dirty) */
	IOASID_UNMAP_GET_DIRTY	= 1 << 1,
};

/* Flags of ioas_alloc and ioasid_ioas_info.flags. */
enum ioasid_ioas_flags {
	/* IOVA equals guest-physical address; devices need not translate. */
	IOASID_IOAS_IDENTITY	= 1 << 0,
	/* Only pages marked shared are reachable by DMA (confidential). */
	IOASID_IOAS_RESTRICTED	= 1 << 1,
	/*
	 * Every IOPTE maps one 4 KiB page, never a large page, so that every
	 * cut of a mapping is atomic (pages that stay are never unmapped,
	 * not even for a moment).  Without it IOPTEs are as large as the
	 * alignment allows and a cut on a kernel backend is composed.
	 * Implied by (and reported for) IOASID_IOAS_RESTRICTED.
	 */
	IOASID_IOAS_PAGE_GRANULAR = 1 << 2,
	/*
	 * A nesting parent: its domains are stage-2 tables that nested
	 * (stage-1) tables can be allocated over (ioasid_nested_alloc; the
	 * kernel's IOMMU_HWPT_ALLOC_NEST_PARENT).  Fixed at allocation.
	 */
	IOASID_IOAS_NEST_PARENT	= 1 << 3,
};

/* Per-IOAS policy for cache coherency (the /dev/ioasid RFC v2 idea). */
enum ioasid_snoop_mode {
	IOASID_SNOOP_AUTO	= 0, /* enforce where the IOMMU can (kernel) */
	IOASID_SNOOP_ENFORCE	= 1, /* refuse devices that cannot snoop */
	IOASID_SNOOP_ALLOW	= 2, /* never enforce: no-snoop for speed */
};

/* Backing of a mapping, in ioasid_mapping.flags besides READ/WRITE. */
enum ioasid_mapping_flags {
	IOASID_MAPPING_USER	= 1 << 8, /* host virtual address, no file */
};

/* One range of a batch mapping of one file (IOASID_CMD_MAP_BATCH). */
struct ioasid_map_entry {
	__u64 iova;		/* with IOASID_MAP_FIXED_IOVA */
	__u64 offset;		/* into the file */
	__u64 length;
};

struct ioasid_iova_range {
	__u64 start;
	__u64 last;	/* inclusive */
};

/* One mapping (or a piece left by a partial unmap). */
struct ioasid_mapping {
	__u32 size;
	__u32 flags;		/* IOASID_MAP_READ/WRITE, IOASID_MAPPING_* */
	__u64 iova;
	__u64 length;
	__u64 offset;		/* into the file, or the user address */
	__u32 file_id;		/* 0 for IOASID_MAPPING_USER */
	__u32 __reserved;
};

enum ioasid_file_kind {
	IOASID_FILE_MEMFD	= 1,
	IOASID_FILE_TMPFS	= 2,
	IOASID_FILE_HUGETLBFS	= 3,
	IOASID_FILE_GUEST_MEMFD	= 4,
	IOASID_FILE_MEMFD_HUGETLB = 5,	/* a memfd_create(MFD_HUGETLB) */
};

/* A file the IOAS holds a reference on (one per inode). */
struct ioasid_file_info {
	__u32 size;
	__u32 kind;		/* enum ioasid_file_kind */
	__u64 dev;
	__u64 ino;
	__u64 file_size;
	__u64 page_size;
	__u32 file_id;
	__u32 nr_mappings;
	char name[IOASID_PATH_MAX];
};

struct ioasid_ioas_info {
	__u32 size;
	__u32 flags;		/* enum ioasid_ioas_flags */
	__u32 ioas_id;
	__u32 snoop_mode;	/* enum ioasid_snoop_mode */
	__u64 nr_mappings;
	__u64 bytes_mapped;
	__u64 bytes_private;	/* restricted IOAS: mapped but private */
	__u32 nr_devices;
	__u32 nr_domains;
	__u64 state_bytes;	/* memory the shared/private state uses */
	__u64 bytes_shared;	/* restricted IOAS: pages marked shared */
	__u32 owner_pid;	/* the client that created it (observers) */
	__u32 owner_uid;
	/* counters for monitoring (0 from an older daemon) */
	__u64 nr_conversions;	/* ioasid_convert() calls that changed it */
	__u64 nr_faults;	/* DMA faults of its devices (simulated) */
	__u64 bytes_pinned;	/* kernel backends: mapped into its domains */
	__u32 owner_session;	/* the creating session's id */
	__u32 dirty_flags;	/* enum ioasid_ioas_dirty_flags */
};

/* ioasid_ioas_info.dirty_flags: the IOAS's dirty tracking. */
enum ioasid_ioas_dirty_flags {
	IOASID_IOAS_DIRTY_ON		= 1 << 0, /* ioasid_dirty_start() */
	IOASID_IOAS_DIRTY_FALLBACK	= 1 << 1, /* started with the fallback */
	/* a domain cannot track: every mapped page reads as dirty */
	IOASID_IOAS_DIRTY_UNTRACKED	= 1 << 2,
};

/* ---- IOMMUs, domains, devices --------------------------------------- */

enum ioasid_iommu_flags {
	IOASID_IOMMU_CAPS_KNOWN		= 1 << 0, /* else: capabilities unknown */
	IOASID_IOMMU_SNOOP_CONTROL	= 1 << 1, /* can force DMA to snoop */
	IOASID_IOMMU_DIRTY_TRACKING	= 1 << 2,
	IOASID_IOMMU_NESTING		= 1 << 3, /* nested tables (ioasid_nested_alloc) */
	IOASID_IOMMU_PASID		= 1 << 4,
	IOASID_IOMMU_SIMULATED		= 1 << 5,
	IOASID_IOMMU_VIOMMU		= 1 << 6, /* vIOMMUs (ioasid_viommu_alloc) */
};

struct ioasid_iommu_info {
	__u32 size;
	__u32 flags;		/* enum ioasid_iommu_flags */
	char name[IOASID_NAME_MAX];	/* "dmar0", "ivhd0", "sim0" */
	char kind[16];		/* "intel-vtd", "amd-vi", "sim", "unknown" */
	__u64 page_sizes;	/* bit n set: 2^n-byte pages supported */
	__u64 cap;		/* raw capability registers where known */
	__u64 ecap;
	__u32 addr_width;	/* input address bits */
	__u32 nr_devices;
};

enum ioasid_domain_flags {
	IOASID_DOMAIN_ENFORCE_COHERENCY	= 1 << 0,
	IOASID_DOMAIN_DIRTY_TRACKING	= 1 << 1, /* its IOMMU can track */
	IOASID_DOMAIN_DIRTY_ON		= 1 << 2, /* tracking now */
};

struct ioasid_domain_info {
	__u32 size;
	__u32 flags;		/* enum ioasid_domain_flags */
	__u32 domain_id;
	__u32 ioas_id;
	char iommu[IOASID_NAME_MAX];
	__u64 page_sizes;
	__u32 nr_devices;
	__u32 __reserved;
};

enum ioasid_device_flags {
	IOASID_DEVICE_VFIO		= 1 << 0, /* bound to vfio-pci */
	IOASID_DEVICE_NO_SNOOP		= 1 << 1, /* "Enable No Snoop" set */
	IOASID_DEVICE_NO_SNOOP_UNKNOWN	= 1 << 2, /* config space unreadable */
	IOASID_DEVICE_ATS		= 1 << 3,
	IOASID_DEVICE_TRANSLATES	= 1 << 4, /* can use IOVAs */
	IOASID_DEVICE_SIMULATED		= 1 << 5,
	IOASID_DEVICE_BOUND		= 1 << 6, /* bound to this context */
	IOASID_DEVICE_ATTACHED		= 1 << 7,
	IOASID_DEVICE_NONCOHERENT	= 1 << 8, /* DMA may bypass caches now */
	IOASID_DEVICE_NO_SNOOP_HINTED	= 1 << 9, /* VMM said it won't */
	IOASID_DEVICE_GROUP_VIABLE	= 1 << 10, /* whole group on one IOAS */
	IOASID_DEVICE_REMOVED		= 1 << 11, /* hot-unplugged */
	IOASID_DEVICE_KVM_FILE		= 1 << 12, /* its VFIO file is in its
						      VM's kvm-vfio device */
	IOASID_DEVICE_OTHER_SESSION	= 1 << 13, /* bound by another session
						      (shown to an observer) */
	IOASID_DEVICE_MOCK		= 1 << 14, /* the kernel's selftest mock
						      device ("iommufd:mock") */
};

struct ioasid_device_info {
	__u32 size;
	__u32 flags;		/* enum ioasid_device_flags */
	char name[IOASID_NAME_MAX];	/* PCI address, "0000:00:03.0" */
	char driver[IOASID_NAME_MAX];
	char iommu[IOASID_NAME_MAX];
	char vfio_cdev[IOASID_NAME_MAX];	/* "vfio0", or empty */
	__u16 vendor;
	__u16 device;
	__u32 class_code;
	__u32 group;		/* IOMMU group number, ~0U when none */
	__u32 dev_id;		/* 0 when not bound */
	__u32 ioas_id;		/* 0 when not attached */
	__u32 domain_id;
	__u32 vm_id;
	__u32 platform;		/* enum ioasid_platform_flags, when attached */
	/* the nested table it is attached to (ioas_id: its parent), or 0 */
	__u32 nested_id;
	__u32 __reserved;
	/* PASIDs (0 from an older daemon) */
	__u32 pasid_bits;	/* the device's PASID width (PCIe PASID
				   capability, Max PASID Width); 0: none */
	__u32 nr_pasids;	/* PASIDs attached now */
};

/* One PASID attachment of a device (ioasid_device_pasid_list). */
struct ioasid_pasid_info {
	__u32 size;
	__u32 pasid;
	__u32 ioas_id;		/* on a nested table: its parent */
	__u32 domain_id;	/* on a nested table: its stage-2 domain */
	/* the nested table it is attached to (ioas_id: its parent), or 0 */
	__u32 nested_id;
	__u32 __reserved;
};

/* Flags of device attach / replace. */
enum ioasid_attach_flags {
	/* The VMM promises the device will not issue no-snoop DMA (honoured
	 * only when policy trusts the client's hints). */
	IOASID_ATTACH_NO_SNOOP_UNUSED	= 1 << 0,
};

/* Flags of device DMA (simulated devices). */
enum ioasid_dma_flags {
	IOASID_DMA_WRITE	= 1 << 0, /* device writes memory (else reads) */
	IOASID_DMA_NO_SNOOP	= 1 << 1, /* TLP No-Snoop attribute */
	/*
	 * With a fault queue on the target: wait for the page request's
	 * answer (at most the queue's timeout) and go on, rather than
	 * return -EINPROGRESS.  Embedded contexts only.
	 */
	IOASID_DMA_PAGE_WAIT	= 1 << 2,
};

/* Flags of dirty_read. */
enum ioasid_dirty_flags {
	IOASID_DIRTY_NO_CLEAR	= 1 << 0,
};

/* Flags of dirty_start. */
enum ioasid_dirty_start_flags {
	/*
	 * A domain whose IOMMU cannot track does not refuse the start: it
	 * reports every page mapped as dirty (what QEMU does for a device
	 * without dirty tracking).
	 */
	IOASID_DIRTY_START_FALLBACK	= 1 << 0,
};

/* Flags of convert: exactly one of them. */
enum ioasid_convert_flags {
	IOASID_CONVERT_PRIVATE	= 1 << 0,
	IOASID_CONVERT_SHARED	= 1 << 1,
};

/* What a device on an IOAS needs the guest to be offered (virtio). */
enum ioasid_platform_flags {
	IOASID_PLATFORM_IOVA		= 1 << 0, /* addresses are IOVAs */
	IOASID_PLATFORM_RESTRICTED	= 1 << 1, /* only shared memory */
	/* VIRTIO_F_ACCESS_PLATFORM must be offered and not negotiated away */
	IOASID_PLATFORM_ACCESS_PLATFORM	= 1 << 2,
};

/* ---- nested (stage-1) tables ----------------------------------------- */

/* What a nested table's data is: the vendor's stage-1 format. */
enum ioasid_nested_type {
	/* Intel VT-d first-stage table: struct ioasid_nested_vtd_s1 */
	IOASID_NESTED_VTD_S1	= 1,
	/* the kernel's selftest mock IOMMU: struct ioasid_nested_selftest */
	IOASID_NESTED_SELFTEST	= 2,
};

/* Flags of struct ioasid_nested_vtd_s1 (iommufd's IOMMU_VTD_S1_*). */
enum ioasid_vtd_s1_flags {
	IOASID_VTD_S1_SRE	= 1 << 0, /* supervisor requests */
	IOASID_VTD_S1_EAFE	= 1 << 1, /* extended access flag */
	IOASID_VTD_S1_WPE	= 1 << 2, /* write protect */
};

/*
 * A VT-d first-stage table as the guest wrote it (iommufd's struct
 * iommu_hwpt_vtd_s1): its root at guest-physical @pgtbl_addr, an IOVA of
 * the parent IOAS; 4 levels for @addr_width 48, 5 for 57.
 */
struct ioasid_nested_vtd_s1 {
	__u64 flags;		/* enum ioasid_vtd_s1_flags */
	__u64 pgtbl_addr;	/* 4 KiB aligned */
	__u32 addr_width;	/* 48 or 57 */
	__u32 __reserved;
};

/* The selftest mock's nested data (iommufd's struct iommu_hwpt_selftest). */
struct ioasid_nested_selftest {
	__u32 iotlb;		/* the value its IOTLB slots start with */
	__u32 __reserved;
};

/* Flags of struct ioasid_nested_inval. */
enum ioasid_nested_inval_flags {
	IOASID_NESTED_INVAL_ALL		= 1 << 0, /* everything (addr, npages 0) */
	IOASID_NESTED_INVAL_LEAF	= 1 << 1, /* only leaf entries changed */
};

/*
 * One invalidation request of a nested table's caches: the 4 KiB pages
 * [addr, addr + npages * 4096) of its IOVA space, or everything.  On a
 * selftest table @addr names the mock's IOTLB slot.
 */
struct ioasid_nested_inval {
	__u64 addr;
	__u64 npages;
	__u32 flags;		/* enum ioasid_nested_inval_flags */
	__u32 __reserved;
};

/*
 * Flags of a nested attach (IOASID_CMD_NESTED_ATTACH) besides the
 * IOASID_ATTACH_* ones: move an attached device (replace).
 */
enum ioasid_nested_attach_flags {
	IOASID_NESTED_ATTACH_REPLACE	= 1 << 16,
};

struct ioasid_nested_info {
	__u32 size;
	__u32 flags;		/* 0 */
	__u32 nested_id;
	__u32 ioas_id;		/* the parent */
	__u32 domain_id;	/* the parent's stage-2 domain under it */
	__u32 type;		/* enum ioasid_nested_type */
	__u32 nr_devices;
	__u32 addr_width;	/* VT-d: the stage-1 address width */
	__u64 pgtbl_addr;	/* VT-d: the stage-1 root (guest-physical) */
	__u64 nr_invalidations;	/* requests processed */
	char iommu[IOASID_NAME_MAX];
};

/* ---- vIOMMUs and their virtual devices -------------------------------- */

/* What a vIOMMU is: whose slice of the IOMMU it models. */
enum ioasid_viommu_type {
	/*
	 * The simulated IOMMU's: nested VT-d first-stage tables on it, and
	 * invalidation of a device's IOTLB named by its virtual ID.
	 */
	IOASID_VIOMMU_SIM	= 1,
	/*
	 * The kernel's selftest mock IOMMU (iommufd's
	 * IOMMU_VIOMMU_TYPE_SELFTEST): nested selftest tables on it, and
	 * invalidation of a mock device's four cache entries.
	 */
	IOASID_VIOMMU_SELFTEST	= 2,
};

/* What ioasid_viommu_destroy() and ioasid_vdevice_destroy() free. */
enum ioasid_viommu_object {
	IOASID_VIOMMU_OBJ_VIOMMU	= 0,
	IOASID_VIOMMU_OBJ_VDEVICE	= 1,
};

/* Flags of struct ioasid_viommu_inval. */
enum ioasid_viommu_inval_flags {
	/* all of the device's cache (no range, no cache_id) */
	IOASID_VIOMMU_INVAL_ALL	= 1 << 0,
};

/*
 * One invalidation request through a vIOMMU: the caches of the device
 * whose virtual ID on the vIOMMU is @virt_id.  IOASID_VIOMMU_SIM: its
 * IOTLB's entries for the 4 KiB pages [addr, addr + npages * 4096), or
 * all of them (@cache_id 0).  IOASID_VIOMMU_SELFTEST: the mock device's
 * cache entry @cache_id (0-3), or all four (@addr, @npages 0; @virt_id
 * below 2^32).
 */
struct ioasid_viommu_inval {
	__u64 virt_id;
	__u64 addr;
	__u64 npages;
	__u32 flags;		/* enum ioasid_viommu_inval_flags */
	__u32 cache_id;
};

struct ioasid_viommu_info {
	__u32 size;
	__u32 flags;		/* 0 */
	__u32 viommu_id;
	__u32 ioas_id;		/* the nest-parent IOAS */
	__u32 domain_id;	/* the parent's stage-2 domain it holds */
	__u32 type;		/* enum ioasid_viommu_type */
	__u32 nr_vdevices;
	__u32 nr_nested;	/* nested tables allocated on it */
	__u64 nr_invalidations;	/* entries processed */
	char iommu[IOASID_NAME_MAX];
};

struct ioasid_vdevice_info {
	__u32 size;
	__u32 flags;		/* 0 */
	__u32 vdevice_id;
	__u32 viommu_id;
	__u32 dev_id;
	__u32 __reserved;
	__u64 virt_id;		/* the device's ID as the guest sees it */
};

/* ---- KVM and coherency ---------------------------------------------- */

enum ioasid_vm_flags {
	IOASID_VM_WBINVD_NEEDED		= 1 << 0, /* non-coherent DMA possible */
	IOASID_VM_FORBID_NONCOHERENT	= 1 << 1, /* policy: refuse it */
	IOASID_VM_KVM_VFIO_CREATED	= 1 << 2, /* we created the kvm-vfio fd */
};

struct ioasid_vm_info {
	__u32 size;
	__u32 flags;		/* enum ioasid_vm_flags */
	__u32 vm_id;
	__u32 nr_devices;
	__u32 nr_noncoherent;
	/*
	 * Devices of the VM whose VFIO file is in its kvm-vfio device
	 * (KVM_DEV_VFIO_FILE_ADD done, by libioasid or by the client): the
	 * only way KVM learns of a device.  0 for simulated devices.
	 */
	__u32 nr_kvm_files;
	/* times libioasid's verdict went to "WBINVD needed" (told KVM or not) */
	__u64 registrations;
	__u32 owner_pid;	/* the client that bound it (observers) */
	__u32 owner_uid;
};

/* Flags of device set_vm (IOASID_CMD_DEVICE_SET_VM). */
enum ioasid_set_vm_flags {
	/*
	 * The client itself added the device's VFIO file to the new VM's
	 * kvm-vfio device (KVM_DEV_VFIO_FILE_ADD) and will remove it: KVM
	 * serves a VM only in the process that created it, so through
	 * ioasidd libioasid does this in the VMM.  Needs a VM and a device
	 * with a VFIO file; the core then only keeps its account.
	 */
	IOASID_SET_VM_CLIENT_REGISTERED	= 1 << 0,
};

/* ---- faults and events ---------------------------------------------- */

enum ioasid_fault_reason {
	IOASID_FAULT_NOT_PRESENT	= 1,
	IOASID_FAULT_PERMISSION		= 2,
	IOASID_FAULT_BUS_ERROR		= 3, /* backing truncated */
	IOASID_FAULT_PRIVATE		= 4, /* confidential page */
	IOASID_FAULT_BLOCKED		= 5, /* device attached nowhere */
	IOASID_FAULT_GROUP_NOT_VIABLE	= 6,
	/* a stage-1 entry with a reserved bit set (nested tables) */
	IOASID_FAULT_RESERVED_BIT	= 7,
};

/* In ioasid_fault.flags besides IOASID_MAP_WRITE: where nested DMA failed. */
enum ioasid_fault_flags {
	IOASID_FAULT_STAGE1	= 1 << 8, /* the nested table's walk */
	IOASID_FAULT_STAGE2	= 1 << 9, /* the parent's translation of a
					     stage-1 table or its output */
};

struct ioasid_fault {
	__u32 size;
	__u32 flags;		/* IOASID_MAP_WRITE, enum ioasid_fault_flags */
	__u32 dev_id;
	__u32 reason;		/* enum ioasid_fault_reason */
	__u64 iova;
	__u64 timestamp_ns;	/* CLOCK_MONOTONIC */
	/*
	 * Nested DMA (0 otherwise): the address that failed at its stage -
	 * stage 1: the IOVA the device used; stage 2: the guest-physical
	 * address (a stage-1 table entry's or the stage-1 output) the
	 * parent IOAS could not translate - and the nested table.
	 */
	__u64 stage_addr;
	__u32 nested_id;
	__u32 __reserved;
};

/*
 * Recoverable faults (I/O page faults): a fault queue of an IOAS or a
 * nested table takes the page requests of the devices attached to it
 * (PCIe PRI-like: the device stalls until the request is answered).
 */
#define IOASID_FAULT_QUEUE_DEPTH_DEFAULT	256
#define IOASID_FAULT_QUEUE_DEPTH_MAX		4096
#define IOASID_FAULT_TIMEOUT_MS_DEFAULT		10000
#define IOASID_FAULT_TIMEOUT_MS_MAX		60000

enum ioasid_page_request_flags {
	IOASID_PAGE_REQUEST_PASID	= 1 << 0, /* pasid is valid */
	/*
	 * Not a request: page requests were lost since the last such record
	 * (the queue was full); lost says how many.  The devices saw those
	 * requests fail.
	 */
	IOASID_PAGE_REQUEST_OVERFLOW	= 1 << 1,
};

struct ioasid_page_request {
	__u32 size;
	__u32 flags;		/* enum ioasid_page_request_flags */
	__u32 fault_id;		/* the queue */
	__u32 target_id;	/* its IOAS or nested table */
	__u32 dev_id;
	__u32 pasid;
	__u64 addr;		/* the page (4 KiB aligned IOVA) */
	__u32 perm;		/* IOASID_MAP_READ or IOASID_MAP_WRITE */
	__u32 cookie;		/* what ioasid_fault_respond() names */
	__u64 lost;		/* IOASID_PAGE_REQUEST_OVERFLOW only */
	__u64 timestamp_ns;	/* CLOCK_MONOTONIC */
};

/* The answer to a page request (the values of iommufd's). */
enum ioasid_page_response_code {
	IOASID_PAGE_RESPONSE_SUCCESS	= 0, /* retry: the page is there */
	IOASID_PAGE_RESPONSE_INVALID	= 1, /* fail the device's request */
};

struct ioasid_fault_queue_info {
	__u32 size;
	__u32 fault_id;
	__u32 target_id;	/* IOAS or nested table */
	__u32 depth;		/* records and outstanding requests, at most */
	__u32 timeout_ms;	/* unanswered requests then fail */
	__u32 queued;		/* records not read yet */
	__u32 outstanding;	/* requests not answered yet (read or not) */
	__u32 __reserved;
	__u64 requests;		/* page requests queued */
	__u64 responses;	/* answered */
	__u64 lost;		/* dropped: the queue was full */
	__u64 timeouts;		/* failed unanswered */
};

/* Event groups a client subscribes to (bit masks). */
enum ioasid_event_group {
	IOASID_EVENT_GROUP_FAULT	= 1 << 0,
	IOASID_EVENT_GROUP_DEVICE	= 1 << 1,
	IOASID_EVENT_GROUP_COHERENCY	= 1 << 2,
	/* sessions starting and ending: observers only (ioasidd) */
	IOASID_EVENT_GROUP_SESSION	= 1 << 3,
};

enum ioasid_event_type {
	IOASID_EVENT_FAULT		= 1,
	IOASID_EVENT_DEVICE_ADDED	= 2,
	IOASID_EVENT_DEVICE_REMOVED	= 3,
	IOASID_EVENT_VM_COHERENCY	= 4, /* arg: 1 registered, 0 not */
	IOASID_EVENT_DEVICE_COHERENCY	= 5, /* arg: 1 non-coherent */
	IOASID_EVENT_SESSION_START	= 6, /* id: the session; name: its */
	IOASID_EVENT_SESSION_END	= 7, /*   client's name, if known */
	/* id: dev_id; iova: the page; arg: enum ioasid_page_response_code */
	IOASID_EVENT_PAGE_RESPONSE	= 8,
};

struct ioasid_event {
	__u32 size;
	__u32 type;		/* enum ioasid_event_type */
	__u32 id;		/* vm_id or dev_id */
	__u32 arg;
	__u64 iova;		/* faults */
	__u64 timestamp_ns;
	char name[IOASID_NAME_MAX];	/* device name where relevant */
	/*
	 * The session whose device, VM or self the event concerns, and its
	 * client's pid and uid (0: none, as for the hotplug of an unbound
	 * device; also from an older daemon).  Observers receive other
	 * sessions' events too and tell them apart by these.
	 */
	__u32 session_id;
	__u32 pid;
	__u32 uid;
	__u32 __reserved;
};

/* ---- status ----------------------------------------------------------- */

struct ioasid_status {
	__u32 size;
	__u32 flags;		/* 1: answered by ioasidd */
	char backend[16];
	char topology[IOASID_PATH_MAX];	/* sim: file, or "built-in" */
	__u32 nr_iommus;
	__u32 nr_devices;
	__u32 nr_sessions;	/* clients (1 when embedded) */
	__u32 nr_ioas;		/* in the whole daemon */
	__u32 nr_domains;
	__u32 nr_vms;
	__u64 nr_mappings;
	__u64 bytes_mapped;
	__u32 pid;		/* the process holding the IOMMU state */
	__u32 __reserved;
	/* this session's fault records dropped: its queue was full */
	__u64 faults_lost;
	/* this session's events dropped: its queue was full */
	__u64 events_lost;
};

/* ---- sessions that outlive their connection (ioasidd) ---------------- */

/* A reclaim token: random bytes; as text, twice as many hex digits. */
#define IOASID_SESSION_TOKEN_LEN	32
#define IOASID_SESSION_TOKEN_HEX	(2 * IOASID_SESSION_TOKEN_LEN + 1)
/* Longest lingering time the policy may grant (seconds). */
#define IOASID_SESSION_LINGER_MAX	86400

enum ioasid_session_state {
	IOASID_SESSION_CONNECTED	= 1,
	IOASID_SESSION_LINGERING	= 2,	/* connection gone, kept */
};

/* ioasid_session_info flags */
enum ioasid_session_flags {
	IOASID_SESSION_NAMED		= 1 << 0,	/* has a name (reclaimable) */
	IOASID_SESSION_SELF		= 1 << 1,	/* the caller's own */
};

struct ioasid_session_info {
	__u32 size;
	__u32 id;		/* the core session's id */
	__u32 state;		/* enum ioasid_session_state */
	__u32 uid;
	__u32 pid;		/* the last process that held it */
	__u32 linger_s;		/* granted by the policy */
	__u32 expires_in_s;	/* LINGERING: seconds left (rounded up) */
	__u32 nr_ioas;
	__u64 nr_mappings;
	__u32 nr_devices;	/* bound */
	__u32 nr_vms;
	char name[IOASID_NAME_MAX];	/* "" when unnamed */
	/* counters and quotas for monitoring (0 from an older daemon) */
	__u64 faults_lost;	/* fault records dropped: its queue was full */
	__u64 events_lost;	/* events dropped: its queue was full */
	__u64 bytes_mapped;
	__u64 state_bytes;	/* shared/private page state it uses */
	/* the limits of ioasidd.conf(5) it runs under; all ones: none */
	__u64 max_mappings;
	__u64 max_bytes_mapped;
	__u64 max_conversion_state;
	__u32 max_ioas;
	__u32 max_vms;
	/* 0 from an older daemon, which lists named sessions only */
	__u32 flags;		/* enum ioasid_session_flags */
	__u32 __reserved;
	/* what the client said it is at HELLO ("qemu[1234]"); "" lingering */
	char client[IOASID_NAME_MAX];
};

#endif /* _UAPI_IOASID_IOASID_H */
