/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Linux iommufd backend (URI "iommufd"), see README beside this file.
 *
 * Its seam operations are reached through backend_iommufd (backend.h).
 * What follows is for white-box tests only (tests/kernel/): the kernel
 * object ids behind the backend's objects, so a test can ask the kernel
 * directly (IOMMU_IOAS_IOVA_RANGES, IOMMU_GET_HW_INFO, ...) and compare
 * with what the library says.
 */
#ifndef IOASID_BACKEND_IOMMUFD_H
#define IOASID_BACKEND_IOMMUFD_H

#include <stdbool.h>
#include <stdint.h>

struct backend;
struct be_ioas;
struct be_domain;
struct be_device;
struct be_viommu;
struct be_vdevice;

/*
 * The backend's trace: how many of each mapping ioctl it issued since it
 * was opened, so a test can check which calls an operation really made
 * (a cut by the kernel's split, a conversion by one MAP_FILE per run).
 */
enum iommufd_call {
	IOMMUFD_CALL_IOAS_ALLOC,	/* IOMMU_IOAS_ALLOC */
	IOMMUFD_CALL_OPTION,		/* IOMMU_OPTION (huge pages off) */
	IOMMUFD_CALL_MAP,		/* IOMMU_IOAS_MAP (by address) */
	IOMMUFD_CALL_MAP_FILE,		/* IOMMU_IOAS_MAP_FILE */
	IOMMUFD_CALL_UNMAP,		/* IOMMU_IOAS_UNMAP (whole areas) */
	IOMMUFD_CALL_VFIO_IOAS,		/* IOMMU_VFIO_IOAS (compat IOAS set) */
	IOMMUFD_CALL_CUT,		/* VFIO_IOMMU_UNMAP_DMA on the iommufd */
	IOMMUFD_CALL_COPY,		/* IOMMU_IOAS_COPY */
	IOMMUFD_CALL_SET_DIRTY,		/* IOMMU_HWPT_SET_DIRTY_TRACKING */
	IOMMUFD_CALL_NR
};

uint64_t iommufd_test_calls(const struct backend *be, enum iommufd_call c);

/* The /dev/iommu an IOAS lives in / a device is bound to: its session's. */
int iommufd_test_ioas_fd(const struct be_ioas *ioas);
int iommufd_test_device_iommufd(const struct be_device *device);
/* Kernel ids: IOAS, HWPT, and the device's dev_id from BIND_IOMMUFD. */
uint32_t iommufd_test_ioas_id(const struct be_ioas *ioas);
uint32_t iommufd_test_hwpt_id(const struct be_domain *domain);
uint32_t iommufd_test_dev_id(const struct be_device *device);
/* A mock device's selftest object id ("iommufd:mock"), else 0. */
uint32_t iommufd_test_mock_stdev_id(const struct be_device *device);
/* The nested HWPT the device is attached to, else 0. */
uint32_t iommufd_test_nested_hwpt_id(const struct be_device *device);
/* The kernel's ids of a vIOMMU and of a vDEVICE (viommu.c). */
uint32_t iommufd_test_viommu_id(const struct be_viommu *viommu);
uint32_t iommufd_test_vdevice_id(const struct be_vdevice *vdevice);
/*
 * The next replacement of a target's HWPTs for a fault queue (given or
 * taken away) goes wrong on purpose, so that a test sees the kernel
 * refuse and everything put back: @bad_fault_id, the new HWPTs name a
 * FAULT object that does not exist (IOMMU_HWPT_ALLOC: ENOENT); else move
 * number @fail_move (1: the first) names no HWPT (the replace: ENOENT).
 * Cleared once used.
 */
void iommufd_test_refault_fail(struct backend *be, bool bad_fault_id,
			       uint32_t fail_move);
/*
 * FAULT objects of freed queues in the IOAS's iommufd that the kernel
 * has not destroyed yet (a descriptor of one was open).
 */
uint32_t iommufd_test_dead_faults(const struct be_ioas *ioas);
/* The HWPT (paging or nested) PASID @pasid of the device is on, else 0. */
uint32_t iommufd_test_pasid_hwpt_id(const struct be_device *device,
				    uint32_t pasid);
/* How many kernel mappings the backend believes the IOAS has. */
uint64_t iommufd_test_nr_mappings(const struct be_ioas *ioas);

#endif
