/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A minimal VMM flow against the public libioasid API:
 *
 *   1. create a real KVM VM and back "guest RAM" with a memfd (and with a
 *      guest_memfd where KVM offers one),
 *   2. bind the VM and two simulated devices: a NIC behind an IOMMU with
 *      snoop control and a GPU that issues no-snoop DMA behind one without,
 *   3. map guest RAM by fd + offset at IOVA == guest-physical address,
 *   4. attach the NIC, let it DMA into guest RAM and check the bytes in
 *      the memfd,
 *   5. attach the GPU and show the VM's coherency state after each
 *      attach and after the GPU's detach (the GPU makes WBINVD needed),
 *   6. tear everything down.
 *
 * Usage: vmm_flow [URI]    (default: $IOASID_URI, else the embedded "sim";
 *                           "unix:/run/ioasidd/ioasidd.sock" for ioasidd)
 *        vmm_flow --keep URI   stay connected until SIGINT/SIGTERM, so
 *                           ioasidctl can show the state from outside
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <libioasid.h>

#define MiB (1ULL << 20)
#define RAM_SIZE (64 * MiB)
#define GMEM_GPA (1ULL << 32)	/* guest_memfd range above 4 GiB */
#define GMEM_SIZE (2 * MiB)

#define NIC "0000:00:01.0"	/* behind sim0: snoop control */
#define GPU "0000:01:00.0"	/* behind sim1: no snoop control, no-snoop */

/* KVM_CREATE_GUEST_MEMFD is newer than Debian 12's headers. */
struct gmem_args {
	uint64_t size, flags, reserved[6];
};
#define CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct gmem_args)
#define GMEM_MMAP (1ULL << 0)
#define GMEM_INIT_SHARED (1ULL << 1)

static struct ioasid_ctx *ctx;

static int fail(const char *what, int r)
{
	fprintf(stderr, "vmm_flow: %s: %s (%s)\n", what, strerror(-r),
		ioasid_last_error(ctx));
	return 1;
}

static int make_ram(void)
{
	int fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, RAM_SIZE) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		perror("vmm_flow: guest RAM memfd");
		return -1;
	}
	return fd;
}

static int dma_check(uint32_t dev, int ram)
{
	static uint8_t out[256 * 1024], in[sizeof(out)];
	uint64_t done = 0, gpa = 0x100000;
	int r;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 13 + 5);
	r = ioasid_device_dma(ctx, dev, gpa, out, sizeof(out),
			      IOASID_DMA_WRITE, &done);
	if (r < 0)
		return fail("device DMA write", r);
	if (pread(ram, in, sizeof(in), (off_t)gpa) != (ssize_t)sizeof(in) ||
	    memcmp(in, out, sizeof(in))) {
		fprintf(stderr, "vmm_flow: guest RAM does not hold the DMA'd "
			"bytes\n");
		return 1;
	}
	printf("NIC wrote %llu bytes at IOVA 0x%llx: guest RAM matches\n",
	       (unsigned long long)done, (unsigned long long)gpa);
	return 0;
}

static void show_vm(uint32_t vm)
{
	struct ioasid_vm_info info;

	if (ioasid_vm_get_info(ctx, vm, &info) < 0)
		return;
	printf("VM %u: %u devices, %u non-coherent: WBINVD %s\n", vm,
	       info.nr_devices, info.nr_noncoherent,
	       info.flags & IOASID_VM_WBINVD_NEEDED ?
	       "needed (a device's DMA may bypass CPU caches)" :
	       "not needed");
	/* only a VFIO file in the VM's kvm-vfio device tells KVM */
	if (info.nr_kvm_files)
		printf("VM %u: KVM told through %u VFIO file(s)\n", vm,
		       info.nr_kvm_files);
	else if (info.nr_devices)
		printf("VM %u: KVM not told (no device has a VFIO file)\n",
		       vm);
}

/* What the library judged of a device just attached. */
static void say_attached(const char *what, const char *name, uint32_t dev,
			 uint32_t ioas)
{
	struct ioasid_device_info info;
	int nc;

	if (ioasid_device_get_info(ctx, name, &info) < 0)
		return;
	nc = !!(info.flags & IOASID_DEVICE_NONCOHERENT);
	printf("attached the %s %s (dev %u) to IOAS %u: %s\n", what, name,
	       dev, ioas, nc ? "non-coherent (it may issue no-snoop DMA and "
	       "its domain does not force snooping)" : "coherent (its DMA "
	       "snoops CPU caches)");
}

/* Map a guest_memfd range too, where KVM has guest_memfd with mmap. */
static void map_gmem(int vm_fd, uint32_t ioas)
{
	struct gmem_args args = { .size = GMEM_SIZE,
				  .flags = GMEM_MMAP | GMEM_INIT_SHARED };
	uint64_t iova = GMEM_GPA;
	int gmem = vm_fd >= 0 ? ioctl(vm_fd, CREATE_GUEST_MEMFD, &args) : -1;
	int r;

	if (gmem < 0) {
		printf("guest_memfd: not offered by this KVM, skipped\n");
		return;
	}
	r = ioasid_map_file(ctx, ioas, gmem, 0, GMEM_SIZE,
			    IOASID_MAP_READ | IOASID_MAP_WRITE |
			    IOASID_MAP_FIXED_IOVA, &iova);
	printf("guest_memfd: %s at IOVA 0x%llx%s%s\n",
	       r ? "not mapped" : "2 MiB mapped", (unsigned long long)iova,
	       r ? ": " : "", r ? ioasid_last_error(ctx) : "");
	close(gmem);
}

static void wait_for_signal(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("holding the state; stop with SIGINT or SIGTERM\n");
	fflush(stdout);
	sigwait(&set, &sig);
}

int main(int argc, char **argv)
{
	uint32_t ioas, vm = 0, nic, gpu;
	int keep = argc > 1 && !strcmp(argv[1], "--keep");
	const char *uri = argc > 1 + keep ? argv[1 + keep] : NULL;
	int kvm, vm_fd = -1, ram, r;
	uint64_t iova = 0;

	r = ioasid_new(uri, &ctx);
	if (r < 0) {
		fprintf(stderr, "vmm_flow: cannot open %s: %s\n",
			uri ? uri : "the default backend",
			ioasid_last_error(NULL));
		return 1;
	}
	printf("backend: %s (%s)\n", ioasid_get_backend(ctx),
	       ioasid_is_remote(ctx) ? "through ioasidd" : "embedded");

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm >= 0)
		vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		printf("KVM: not available (%s), coherency shown per device "
		       "only\n", strerror(errno));

	ram = make_ram();
	if (ram < 0)
		return 1;
	if ((r = ioasid_ioas_alloc(ctx, 0, &ioas)) < 0)
		return fail("IOAS alloc", r);
	if (vm_fd >= 0 && (r = ioasid_vm_bind(ctx, vm_fd, -1, &vm)) < 0)
		return fail("VM bind", r);
	if ((r = ioasid_device_bind(ctx, NIC, -1, &nic)) < 0 ||
	    (r = ioasid_device_bind(ctx, GPU, -1, &gpu)) < 0)
		return fail("device bind", r);
	if (vm && ((r = ioasid_device_set_vm(ctx, nic, vm)) < 0 ||
		   (r = ioasid_device_set_vm(ctx, gpu, vm)) < 0))
		return fail("device to VM", r);

	r = ioasid_map_file(ctx, ioas, ram, 0, RAM_SIZE,
			    IOASID_MAP_READ | IOASID_MAP_WRITE |
			    IOASID_MAP_FIXED_IOVA, &iova);
	if (r < 0)
		return fail("map guest RAM", r);
	printf("IOAS %u: guest RAM (%llu MiB memfd) mapped at IOVA 0x%llx\n",
	       ioas, (unsigned long long)(RAM_SIZE / MiB),
	       (unsigned long long)iova);
	map_gmem(vm_fd, ioas);

	if ((r = ioasid_device_attach(ctx, nic, ioas, 0)) < 0)
		return fail("attach NIC", r);
	say_attached("NIC", NIC, nic, ioas);
	if (vm)
		show_vm(vm);
	if (dma_check(nic, ram))
		return 1;
	if ((r = ioasid_device_attach(ctx, gpu, ioas, 0)) < 0)
		return fail("attach GPU", r);
	say_attached("GPU", GPU, gpu, ioas);
	if (vm)
		show_vm(vm);

	if (keep)
		wait_for_signal();
	if ((r = ioasid_device_detach(ctx, gpu)) < 0)
		return fail("detach GPU", r);
	printf("detached the GPU\n");
	if (vm)
		show_vm(vm);
	ioasid_unref(ctx);
	close(ram);
	if (vm_fd >= 0)
		close(vm_fd);
	if (kvm >= 0)
		close(kvm);
	printf("torn down\n");
	return 0;
}
