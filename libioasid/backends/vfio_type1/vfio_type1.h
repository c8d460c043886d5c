/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The legacy VFIO type1 backend (URI "vfio-type1"), see README beside
 * this file.  Its seam operations are reached through backend_vfio_type1
 * (backend.h); what follows is for white-box tests only (tests/kernel/).
 */
#ifndef IOASID_BACKEND_VFIO_TYPE1_H
#define IOASID_BACKEND_VFIO_TYPE1_H

#include <stdbool.h>
#include <stdint.h>

#include <ioasid/ioasid.h>

struct backend;
struct be_ioas;
struct be_device;

/* The container fd of an IOAS (-1 never: one is opened per IOAS). */
int vfio_type1_test_container_fd(const struct be_ioas *ioas);
/* The group fd a device is reached through. */
int vfio_type1_test_group_fd(const struct be_device *device);
/*
 * What VFIO_IOMMU_GET_INFO said when the container's IOMMU was set up:
 * the DMA_AVAIL capability (mappings the container may still create;
 * -1 if the kernel has no such capability or the container has no
 * IOMMU yet) and the IOVA_RANGE capability.
 */
int64_t vfio_type1_test_dma_avail(const struct be_ioas *ioas);
int vfio_type1_test_iova_ranges(const struct be_ioas *ioas,
				const struct ioasid_iova_range **ranges,
				uint32_t *nr);
/* VFIO_CHECK_EXTENSION(VFIO_DMA_CC_IOMMU) on the container now. */
int vfio_type1_test_cc(const struct be_ioas *ioas);
/* Did open find iommufd's emulation of /dev/vfio/vfio (the kernel cuts)? */
bool vfio_type1_test_iommufd_compat(const struct backend *be);

#endif
