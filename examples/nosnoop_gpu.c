/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Two GPU-like devices that issue no-snoop DMA, on the built-in simulated
 * topology:
 *
 *   0000:00:03.0  behind sim0, whose IOMMU has snoop control: its domain
 *                 forces every DMA to snoop, so the VM needs no WBINVD;
 *   0000:01:00.0  behind sim1, which has none: its no-snoop DMA bypasses
 *                 the caches, so the VM's WBINVD must really flush.
 *
 * Then the same second GPU in an IOAS in "enforce" mode (refused, with the
 * reason) and with a VM that forbids WBINVD (refused too).
 *
 * Usage: nosnoop_gpu [URI]   (default: $IOASID_URI, else "sim")
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <libioasid.h>

#define GPU_SNOOPING "0000:00:03.0"
#define GPU_NONCOHERENT "0000:01:00.0"

static struct ioasid_ctx *ctx;

static int show_vm(const char *when, uint32_t vm)
{
	struct ioasid_vm_info info;
	int r = ioasid_vm_get_info(ctx, vm, &info);

	if (r < 0)
		return r;
	printf("%-34s VM %u: %u non-coherent device(s), WBINVD %s\n", when,
	       vm, info.nr_noncoherent,
	       info.flags & IOASID_VM_WBINVD_NEEDED ? "must flush" :
						      "is a no-op");
	return 0;
}

static int attach(uint32_t dev, uint32_t ioas, const char *what)
{
	int r = ioasid_device_attach(ctx, dev, ioas, 0);

	if (r < 0)
		printf("%-34s refused: %s\n", what, ioasid_last_error(ctx));
	else
		printf("%-34s attached\n", what);
	return r;
}

int main(int argc, char **argv)
{
	uint32_t ioas, strict, vm, gpu0, gpu1;
	int kvm, vm_fd, r;

	r = ioasid_new(argc > 1 ? argv[1] : NULL, &ctx);
	if (r < 0) {
		fprintf(stderr, "nosnoop_gpu: %s\n", ioasid_last_error(NULL));
		return 1;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm_fd = kvm >= 0 ? ioctl(kvm, KVM_CREATE_VM, 0) : -1;
	if (vm_fd < 0) {
		fprintf(stderr, "nosnoop_gpu: needs /dev/kvm: %s\n",
			strerror(errno));
		return 77;
	}
	if (ioasid_ioas_alloc(ctx, 0, &ioas) ||
	    ioasid_ioas_alloc(ctx, 0, &strict) ||
	    ioasid_ioas_set_snoop_mode(ctx, strict, IOASID_SNOOP_ENFORCE) ||
	    ioasid_vm_bind(ctx, vm_fd, -1, &vm) ||
	    ioasid_device_bind(ctx, GPU_SNOOPING, -1, &gpu0) ||
	    ioasid_device_bind(ctx, GPU_NONCOHERENT, -1, &gpu1) ||
	    ioasid_device_set_vm(ctx, gpu0, vm) ||
	    ioasid_device_set_vm(ctx, gpu1, vm)) {
		fprintf(stderr, "nosnoop_gpu: set-up: %s\n",
			ioasid_last_error(ctx));
		return 1;
	}

	if (attach(gpu0, ioas, "GPU on a snoop-control IOMMU:") < 0 ||
	    show_vm("", vm) < 0)
		return 1;
	if (attach(gpu1, ioas, "GPU on an IOMMU without it:") < 0 ||
	    show_vm("", vm) < 0)
		return 1;
	if (ioasid_device_detach(ctx, gpu1) < 0 || show_vm("detached again:", vm))
		return 1;

	/* enforce mode: the second GPU cannot be made coherent, so no */
	if (attach(gpu1, strict, "same GPU, IOAS in enforce mode:") != -EINVAL)
		return 1;
	/* a VM that must never need WBINVD */
	if (ioasid_vm_set_policy(ctx, vm, IOASID_VM_FORBID_NONCOHERENT) < 0 ||
	    attach(gpu1, ioas, "same GPU, VM forbids WBINVD:") != -EPERM ||
	    show_vm("", vm) < 0)
		return 1;

	ioasid_unref(ctx);
	close(vm_fd);
	close(kvm);
	return 0;
}
