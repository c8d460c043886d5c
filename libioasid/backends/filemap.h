/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backing files mapped into this process, for every backend that needs an
 * address: the simulated IOMMU's page tables point at it, VFIO type1
 * MAP_DMA and iommufd IOMMU_IOAS_MAP (guest_memfd) take it.
 *
 * A file is mapped into this process once (MAP_SHARED, whole file, at an
 * address congruent to file offsets modulo 1 GiB so that 2 MiB and 1 GiB
 * leaves can be used); the mapping lives as long as the IOAS's file_ref
 * and is released with it.  A file that grew after it was mapped gets a
 * further mapping of its new size; old ones stay until the file_ref goes.
 * User (HVA) mappings point at the caller's memory directly.
 */
#ifndef IOASID_BACKEND_FILEMAP_H
#define IOASID_BACKEND_FILEMAP_H

#include <stdint.h>

#include "backends/backend.h"

/*
 * Host address of the first byte of @b, valid for @length bytes.
 * -EOPNOTSUPP: a guest_memfd without GUEST_MEMFD_FLAG_MMAP; -EPERM: its
 * pages there are private (touching them would SIGBUS).
 */
int filemap_hva(const struct be_backing *b, uint64_t length, uint64_t *hva);

#endif
