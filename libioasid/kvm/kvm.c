/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvm/kvm.h"

struct kvm_create_guest_memfd_abi {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};

#define KVM_CREATE_GUEST_MEMFD_ABI \
	_IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd_abi)

static bool fd_is(int fd, const char *what)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	return !strcmp(link, what);
}

bool kvm_is_vm_fd(int fd)
{
	return fd >= 0 && fd_is(fd, "anon_inode:kvm-vm");
}

bool kvm_is_vfio_device_fd(int fd)
{
	return fd >= 0 && fd_is(fd, "anon_inode:kvm-vfio");
}

int kvm_vfio_create(int vm_fd, int *kvm_vfio_fd)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO_NR };

	if (ioctl(vm_fd, KVM_CREATE_DEVICE, &cd) < 0)
		return -errno;
	*kvm_vfio_fd = (int)cd.fd;
	return 0;
}

static int file_attr(int kvm_vfio_fd, uint64_t attr, int vfio_fd)
{
	int32_t fd = vfio_fd;
	struct kvm_device_attr a = {
		.group = KVM_DEV_VFIO_FILE_GROUP,
		.attr = attr,
		.addr = (uint64_t)(uintptr_t)&fd,
	};

	return ioctl(kvm_vfio_fd, KVM_SET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

int kvm_vfio_file_add(int kvm_vfio_fd, int vfio_fd)
{
	return file_attr(kvm_vfio_fd, KVM_DEV_VFIO_FILE_ADD_ATTR, vfio_fd);
}

int kvm_vfio_file_del(int kvm_vfio_fd, int vfio_fd)
{
	return file_attr(kvm_vfio_fd, KVM_DEV_VFIO_FILE_DEL_ATTR, vfio_fd);
}

int kvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags, int *fd)
{
	struct kvm_create_guest_memfd_abi gm = { .size = size, .flags = flags };
	int r = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD_ABI, &gm);

	if (r < 0)
		return -errno;
	*fd = r;
	return 0;
}
