/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The parts of the Linux iommufd and VFIO cdev uAPI this backend uses.
 *
 * Debian 12's linux-libc-dev (6.1) predates IOMMU_IOAS_MAP_FILE (6.13),
 * IOMMU_GET_HW_INFO (6.6), dirty tracking (6.7) and the VFIO device cdev
 * ioctls (6.6), so the numbers and layouts are defined here from the
 * kernel's documented ABI (Documentation/userspace-api/iommufd.rst and the
 * uAPI headers it describes).  Names carry an "ifd_"/"IFD_" prefix so that
 * this file never clashes with a newer <linux/iommufd.h> included beside
 * it.  The guest tests use the kernel's own header, so a mistake here
 * would show up as a disagreement there.
 *
 * Every iommufd command structure starts with a __u32 size; the kernel
 * accepts older (smaller) structures and refuses unknown non-zero tail
 * bytes with E2BIG.
 */
#ifndef IOASID_IOMMUFD_ABI_H
#define IOASID_IOMMUFD_ABI_H

#include <stdint.h>
#include <sys/ioctl.h>

/* ioctl type ';', commands numbered from 0x80, no size encoded (_IO). */
#define IFD_TYPE			';'
#define IFD_CMD(nr)			_IO(IFD_TYPE, (nr))

#define IFD_DESTROY			IFD_CMD(0x80)
#define IFD_IOAS_ALLOC			IFD_CMD(0x81)
#define IFD_IOAS_ALLOW_IOVAS		IFD_CMD(0x82)
#define IFD_IOAS_COPY			IFD_CMD(0x83)
#define IFD_IOAS_IOVA_RANGES		IFD_CMD(0x84)
#define IFD_IOAS_MAP			IFD_CMD(0x85)
#define IFD_IOAS_UNMAP			IFD_CMD(0x86)
#define IFD_OPTION			IFD_CMD(0x87)
#define IFD_VFIO_IOAS			IFD_CMD(0x88)
#define IFD_HWPT_ALLOC			IFD_CMD(0x89)
#define IFD_GET_HW_INFO			IFD_CMD(0x8a)
#define IFD_HWPT_SET_DIRTY_TRACKING	IFD_CMD(0x8b)
#define IFD_HWPT_GET_DIRTY_BITMAP	IFD_CMD(0x8c)
#define IFD_IOAS_MAP_FILE		IFD_CMD(0x8f)
#define IFD_HWPT_INVALIDATE		IFD_CMD(0x8d)
#define IFD_FAULT_QUEUE_ALLOC		IFD_CMD(0x8e)	/* 6.11 */
#define IFD_VIOMMU_ALLOC		IFD_CMD(0x90)	/* 6.13 */
#define IFD_VDEVICE_ALLOC		IFD_CMD(0x91)	/* 6.13 */
#define IFD_IOAS_CHANGE_PROCESS		IFD_CMD(0x92)	/* 6.13 */

/* Flags of IOAS_MAP, IOAS_MAP_FILE and IOAS_COPY. */
#define IFD_MAP_FIXED_IOVA		(1u << 0)
#define IFD_MAP_WRITEABLE		(1u << 1)
#define IFD_MAP_READABLE		(1u << 2)

/* Flags of HWPT_ALLOC. */
#define IFD_HWPT_ALLOC_NEST_PARENT	(1u << 0)
#define IFD_HWPT_ALLOC_DIRTY_TRACKING	(1u << 1)
#define IFD_HWPT_FAULT_ID_VALID		(1u << 2)	/* 6.11: fault_id */
#define IFD_HWPT_ALLOC_PASID		(1u << 3)	/* 6.15: PASID-capable */

/* HWPT_ALLOC data_type of a nested HWPT; HWPT_INVALIDATE data_type. */
#define IFD_HWPT_DATA_VTD_S1		1
#define IFD_HWPT_DATA_SELFTEST		0xdead
#define IFD_HWPT_INVALIDATE_DATA_VTD_S1	0
#define IFD_HWPT_INVALIDATE_DATA_SELFTEST 0xdeadbeef
#define IFD_VTD_INV_FLAGS_LEAF		(1u << 0)
#define IFD_TEST_INVALIDATE_FLAG_ALL	(1u << 0)

/* GET_HW_INFO: out_data_type and out_capabilities. */
#define IFD_HW_INFO_TYPE_NONE		0
#define IFD_HW_INFO_TYPE_INTEL_VTD	1
#define IFD_HW_INFO_TYPE_ARM_SMMUV3	2
#define IFD_HW_INFO_TYPE_AMD		4
#define IFD_HW_CAP_DIRTY_TRACKING	(1ull << 0)

/* SET_DIRTY_TRACKING flags; GET_DIRTY_BITMAP flags. */
#define IFD_HWPT_DIRTY_TRACKING_ENABLE	(1u << 0)
#define IFD_HWPT_GET_DIRTY_NO_CLEAR	(1u << 0)

struct ifd_destroy {
	uint32_t size;
	uint32_t id;
};

struct ifd_ioas_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_ioas_id;
};

struct ifd_iova_range {
	uint64_t start;
	uint64_t last;		/* inclusive */
};

struct ifd_ioas_iova_ranges {
	uint32_t size;
	uint32_t ioas_id;
	uint32_t num_iovas;	/* in: room; out: how many there are */
	uint32_t reserved;
	uint64_t allowed_iovas;	/* user pointer: ifd_iova_range[] */
	uint64_t out_iova_alignment;
};

struct ifd_ioas_map {
	uint32_t size;
	uint32_t flags;
	uint32_t ioas_id;
	uint32_t reserved;
	uint64_t user_va;
	uint64_t length;
	uint64_t iova;
};

struct ifd_ioas_map_file {
	uint32_t size;
	uint32_t flags;
	uint32_t ioas_id;
	int32_t fd;
	uint64_t start;		/* file offset */
	uint64_t length;
	uint64_t iova;
};

struct ifd_ioas_unmap {
	uint32_t size;
	uint32_t ioas_id;
	uint64_t iova;
	uint64_t length;	/* in: range; out: bytes unmapped */
};

struct ifd_ioas_copy {
	uint32_t size;
	uint32_t flags;		/* IFD_MAP_* (FIXED_IOVA, READABLE, ...) */
	uint32_t dst_ioas_id;
	uint32_t src_ioas_id;
	uint64_t length;
	uint64_t dst_iova;
	uint64_t src_iova;
};

struct ifd_ioas_change_process {
	uint32_t size;
	uint32_t reserved;	/* 0 */
};

/* IOMMU_OPTION: IOMMU_OPTION_HUGE_PAGES of an IOAS (val64 0: 4 KiB IOPTEs). */
#define IFD_OPTION_HUGE_PAGES		1
#define IFD_OPTION_OP_SET		0
struct ifd_option {
	uint32_t size;
	uint32_t option_id;
	uint16_t op;
	uint16_t reserved;
	uint32_t object_id;
	uint64_t val64;
};

/* IOMMU_VFIO_IOAS: the fd's compatibility IOAS (the target of VFIO ioctls). */
#define IFD_VFIO_IOAS_SET		1
struct ifd_vfio_ioas {
	uint32_t size;
	uint32_t ioas_id;
	uint16_t op;
	uint16_t reserved;
};

/*
 * VFIO_IOMMU_UNMAP_DMA (type ';', base 100 + 14), answered by iommufd on
 * the /dev/iommu fd itself for its compatibility IOAS: on an IOAS with
 * huge pages off it cuts the areas at both ends of the range first
 * (drivers/iommu/iommufd/vfio_compat.c).
 */
#define KVFIO_IOMMU_UNMAP_DMA		_IO(';', 100 + 14)
struct kvfio_dma_unmap {
	uint32_t argsz;
	uint32_t flags;
	uint64_t iova;
	uint64_t size;		/* in: range; out: bytes unmapped */
};

struct ifd_hwpt_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pt_id;		/* the IOAS the HWPT mirrors */
	uint32_t out_hwpt_id;
	uint32_t reserved;
	uint32_t data_type;	/* 0: none (a paging domain) */
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t fault_id;
	uint32_t reserved2;
};

/* FAULT_QUEUE_ALLOC: struct iommu_fault_alloc */
struct ifd_fault_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_fault_id;
	uint32_t out_fault_fd;
};

/* What the fault fd reads: struct iommu_hwpt_pgfault */
#define IFD_PGFAULT_FLAGS_PASID_VALID	(1u << 0)
#define IFD_PGFAULT_FLAGS_LAST_PAGE	(1u << 1)
#define IFD_PGFAULT_PERM_READ		(1u << 0)
#define IFD_PGFAULT_PERM_WRITE		(1u << 1)
struct ifd_hwpt_pgfault {
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pasid;
	uint32_t grpid;
	uint32_t perm;
	uint32_t reserved;
	uint64_t addr;
	uint32_t length;
	uint32_t cookie;
};

/* What it takes: struct iommu_hwpt_page_response */
#define IFD_PAGE_RESP_SUCCESS		0
#define IFD_PAGE_RESP_INVALID		1
struct ifd_hwpt_page_response {
	uint32_t cookie;
	uint32_t code;
};

/* HWPT_INVALIDATE: @entry_num in: entries, out: those done. */
struct ifd_hwpt_invalidate {
	uint32_t size;
	uint32_t hwpt_id;
	uint64_t data_uptr;
	uint32_t data_type;
	uint32_t entry_len;
	uint32_t entry_num;
	uint32_t reserved;
};

/* An entry of IFD_HWPT_INVALIDATE_DATA_VTD_S1 (npages ~0: everything). */
struct ifd_vtd_s1_invalidate {
	uint64_t addr;
	uint64_t npages;
	uint32_t flags;
	uint32_t reserved;
};

/* An entry of IFD_HWPT_INVALIDATE_DATA_SELFTEST. */
struct ifd_selftest_invalidate {
	uint32_t flags;
	uint32_t iotlb_id;
};

/*
 * VIOMMU_ALLOC: a vIOMMU of @type over nest-parent HWPT @hwpt_id, on the
 * IOMMU of @dev_id (6.13).  @data_len/@data_uptr, a type's own data,
 * came later: zero here, which a kernel with the shorter structure
 * accepts (a zero tail).
 */
struct ifd_viommu_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t type;
	uint32_t dev_id;
	uint32_t hwpt_id;
	uint32_t out_viommu_id;
	uint32_t data_len;
	uint32_t reserved;
	uint64_t data_uptr;
};

/* VDEVICE_ALLOC: device @dev_id known as @virt_id on vIOMMU @viommu_id. */
struct ifd_vdevice_alloc {
	uint32_t size;
	uint32_t viommu_id;
	uint32_t dev_id;
	uint32_t out_vdevice_id;
	uint64_t virt_id;
};

/* Driver data of GET_HW_INFO for Intel VT-d. */
struct ifd_hw_info_vtd {
	uint32_t flags;
	uint32_t reserved;
	uint64_t cap_reg;
	uint64_t ecap_reg;
};

struct ifd_hw_info {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t data_len;	/* in: room; out: bytes the driver has */
	uint64_t data_uptr;
	uint32_t out_data_type;
	uint8_t out_max_pasid_log2;
	uint8_t reserved[3];
	uint64_t out_capabilities;
};

struct ifd_hwpt_set_dirty_tracking {
	uint32_t size;
	uint32_t flags;
	uint32_t hwpt_id;
	uint32_t reserved;
};

struct ifd_hwpt_get_dirty_bitmap {
	uint32_t size;
	uint32_t hwpt_id;
	uint32_t flags;
	uint32_t reserved;
	uint64_t iova;
	uint64_t length;
	uint64_t page_size;
	uint64_t data;		/* user pointer to the bitmap */
};

/*
 * VFIO device cdev (/dev/vfio/devices/vfioN): type ';', base 100.
 * These structures start with argsz instead of size.
 */
#define KVFIO_DEVICE_BIND_IOMMUFD	_IO(';', 100 + 18)
#define KVFIO_DEVICE_ATTACH_IOMMUFD_PT	_IO(';', 100 + 19)
#define KVFIO_DEVICE_DETACH_IOMMUFD_PT	_IO(';', 100 + 20)

struct kvfio_device_bind_iommufd {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
};

/* flags of ATTACH/DETACH_IOMMUFD_PT (6.15): the @pasid is given */
#define KVFIO_DEVICE_ATTACH_PASID	(1u << 0)
#define KVFIO_DEVICE_DETACH_PASID	(1u << 0)

struct kvfio_device_attach_iommufd_pt {
	uint32_t argsz;
	uint32_t flags;
	uint32_t pt_id;		/* in: IOAS or HWPT; out: HWPT used */
	uint32_t pasid;		/* with KVFIO_DEVICE_ATTACH_PASID */
};

struct kvfio_device_detach_iommufd_pt {
	uint32_t argsz;
	uint32_t flags;
	uint32_t pasid;		/* with KVFIO_DEVICE_DETACH_PASID */
};

/* VT-d extended capability: snoop control (SC). */
#define VTD_ECAP_SC			(1ull << 7)

/*
 * The kernel's iommufd selftest driver (CONFIG_IOMMUFD_TEST): one more
 * iommufd command, IOMMU_TEST_CMD, whose ops make mock devices behind a
 * mock IOMMU (drivers/iommu/iommufd/iommufd_test.h; not a uAPI header:
 * the numbers below are that file's).  Used only by "iommufd:mock".
 */
#define IFD_TEST_CMD			IFD_CMD(0x80 + 32)

enum {
	IFD_TEST_OP_MOCK_DOMAIN = 2,
	IFD_TEST_OP_MD_CHECK_MAP = 3,
	IFD_TEST_OP_CREATE_ACCESS = 5,
	IFD_TEST_OP_ACCESS_RW = 8,
	IFD_TEST_OP_MOCK_DOMAIN_REPLACE = 10,
	IFD_TEST_OP_ACCESS_REPLACE_IOAS = 11,
	IFD_TEST_OP_MOCK_DOMAIN_FLAGS = 12,
	IFD_TEST_OP_DIRTY = 13,
	IFD_TEST_OP_MD_CHECK_IOTLB = 14,
	IFD_TEST_OP_TRIGGER_IOPF = 15,
	IFD_TEST_OP_DEV_CHECK_CACHE = 16,
	IFD_TEST_OP_PASID_ATTACH = 18,
	IFD_TEST_OP_PASID_REPLACE = 19,
	IFD_TEST_OP_PASID_DETACH = 20,
	IFD_TEST_OP_PASID_CHECK_HWPT = 21,
};

/* The mock IOMMU's aperture (MOCK_APERTURE_START/_LAST) and PASID width. */
#define IFD_MOCK_APERTURE_START		(1ull << 24)
#define IFD_MOCK_APERTURE_LAST		((1ull << 31) - 1)
#define IFD_MOCK_PASID_WIDTH		20
/* Mock device flags (MOCK_FLAGS_DEVICE_*). */
#define IFD_MOCK_DEVICE_NO_DIRTY	(1u << 0)
#define IFD_MOCK_DEVICE_PASID		(1u << 2)
/* ACCESS_RW flags; one call moves at most 16 MiB. */
#define IFD_MOCK_ACCESS_RW_WRITE	(1u << 0)
#define IFD_MOCK_ACCESS_RW_MAX		(16ull << 20)
/* GET_HW_INFO type of a mock device. */
#define IFD_HW_INFO_TYPE_SELFTEST	0xfeedbeef
/*
 * The mock's vIOMMU (IOMMU_VIOMMU_TYPE_SELFTEST) and its invalidation
 * (IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entries of struct
 * iommu_viommu_invalidate_selftest): a mock device's cache entries
 * 0..IFD_MOCK_DEV_CACHE_NUM - 1, named through the vDEVICE's virtual ID,
 * hold IFD_MOCK_DEV_CACHE_DEFAULT until invalidated (then 0).
 */
#define IFD_VIOMMU_TYPE_SELFTEST	0xdeadbeef
#define IFD_VIOMMU_INVALIDATE_DATA_SELFTEST 0xdeadbeef
#define IFD_MOCK_DEV_CACHE_NUM		4
#define IFD_MOCK_DEV_CACHE_DEFAULT	0xbaddad

struct ifd_viommu_invalidate_selftest {
	uint32_t flags;		/* IFD_TEST_INVALIDATE_FLAG_ALL */
	uint32_t vdev_id;	/* the virtual ID */
	uint32_t cache_id;
};

struct ifd_test_cmd {
	uint32_t size;
	uint32_t op;
	uint32_t id;
	uint32_t reserved;
	union {
		struct {
			uint32_t out_stdev_id;
			uint32_t out_hwpt_id;
			uint32_t out_idev_id;	/* the device's dev_id */
			uint32_t dev_flags;	/* MOCK_DOMAIN_FLAGS only */
		} mock_domain;
		struct {
			uint32_t pt_id;
		} mock_domain_replace;
		struct {
			uint64_t iova;
			uint64_t length;
			uint64_t uptr;
		} check_map;
		struct {
			uint32_t out_access_fd;
			uint32_t flags;
		} create_access;
		struct {
			uint64_t iova;
			uint64_t length;
			uint64_t uptr;
			uint32_t flags;
		} access_rw;
		struct {
			uint32_t ioas_id;
		} access_replace_ioas;
		struct {
			uint32_t flags;
			uint32_t reserved;
			uint64_t iova;
			uint64_t length;
			uint64_t page_size;
			uint64_t uptr;
			uint64_t out_nr_dirty;
		} dirty;
		struct {
			uint32_t id;		/* the slot */
			uint32_t iotlb;		/* the value it must hold */
		} check_iotlb;
		struct {
			uint32_t id;		/* the cache entry */
			uint32_t cache;		/* the value it must hold */
		} check_dev_cache;		/* .id: the device's dev_id */
		struct {
			uint32_t dev_id;
			uint32_t pasid;
			uint32_t grpid;
			uint32_t perm;
			uint64_t addr;
		} trigger_iopf;
		struct {
			uint32_t pasid;
			uint32_t pt_id;		/* hwpt_id for CHECK_HWPT */
		} pasid;
		uint64_t pad[6];
	};
	uint32_t last;
};

#endif
