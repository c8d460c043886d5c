/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM: the per-VM kvm-vfio pseudo-device and guest_memfd.
 *
 * KVM learns of non-coherent DMA only through the kvm-vfio device: a VFIO
 * device fd added with KVM_DEV_VFIO_FILE_ADD makes the kernel ask the
 * IOMMU whether the device's DMA is coherent and register non-coherent
 * DMA (WBINVD becomes a real flush) when it is not.  KVM allows one
 * kvm-vfio device per VM.
 *
 * The ABI numbers are defined here because Debian 12's headers predate
 * the FILE_* names and guest_memfd; the values are the kernel's.
 * Who may include: core/ (vm.c), backends, tests.
 */
#ifndef IOASID_KVM_H
#define IOASID_KVM_H

#include <stdbool.h>
#include <stdint.h>

#define KVM_DEV_TYPE_VFIO_NR		4	/* enum kvm_device_type */
#define KVM_DEV_VFIO_FILE_GROUP		1
#define KVM_DEV_VFIO_FILE_ADD_ATTR	1
#define KVM_DEV_VFIO_FILE_DEL_ATTR	2

#define GUEST_MEMFD_FLAG_MMAP		(1ULL << 0)
#define GUEST_MEMFD_FLAG_INIT_SHARED	(1ULL << 1)

/* Is @fd a KVM VM (anon_inode:kvm-vm)? a kvm-vfio device? */
bool kvm_is_vm_fd(int fd);
bool kvm_is_vfio_device_fd(int fd);
/* Create the VM's kvm-vfio device: -EBUSY when the VM already has one. */
int kvm_vfio_create(int vm_fd, int *kvm_vfio_fd);
/* KVM_DEV_VFIO_FILE_ADD / _DEL of a VFIO (group or cdev) fd. */
int kvm_vfio_file_add(int kvm_vfio_fd, int vfio_fd);
int kvm_vfio_file_del(int kvm_vfio_fd, int vfio_fd);
/* KVM_CREATE_GUEST_MEMFD of @size bytes with GUEST_MEMFD_FLAG_* @flags. */
int kvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags,
			   int *fd);

#endif
