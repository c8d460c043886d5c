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

#include <stdint.h>

struct backend;
struct be_ioas;
struct be_domain;
struct be_device;

/* The /dev/iommu fd (owned by the backend). */
int iommufd_test_fd(const struct backend *be);
/* Kernel ids: IOAS, HWPT, and the device's dev_id from BIND_IOMMUFD. */
uint32_t iommufd_test_ioas_id(const struct be_ioas *ioas);
uint32_t iommufd_test_hwpt_id(const struct be_domain *domain);
uint32_t iommufd_test_dev_id(const struct be_device *device);
/* How many kernel mappings the backend believes the IOAS has. */
uint64_t iommufd_test_nr_mappings(const struct be_ioas *ioas);

#endif
