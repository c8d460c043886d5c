/* SPDX-License-Identifier: MIT */
/*
 * iommufd_smoke - proof of the VM rig against the raw kernel ABI.
 *
 * Runs inside the QEMU guest (q35 + emulated VT-d + "edu" PCI device bound to
 * vfio-pci). Uses only <linux/iommufd.h>, <linux/vfio.h>, <linux/kvm.h> as
 * installed by "make headers_install" of the guest kernel's source.
 *
 *  - /dev/iommu: IOMMU_IOAS_ALLOC, IOMMU_GET_HW_INFO (VT-d ecap.SC, bit 7),
 *    IOMMU_IOAS_MAP_FILE of a memfd at a fixed IOVA, IOMMU_IOAS_UNMAP;
 *  - the edu device's VFIO cdev: VFIO_DEVICE_BIND_IOMMUFD,
 *    VFIO_DEVICE_ATTACH_IOMMUFD_PT, BAR0 mmap, its DMA engine writing into
 *    and reading from the memfd through the IOMMU, and being blocked after
 *    the unmap (memory untouched, DMAR fault in the kernel log if visible);
 *  - /dev/kvm: the kvm-vfio device's KVM_DEV_VFIO_FILE_ADD/DEL of the cdev
 *    fd, observed with kprobe events on kvm_arch_[un]register_noncoherent_dma:
 *    registered iff the IOMMU cannot enforce snooping.
 *
 * Environment: IOASID_EXPECT_SNOOP=on|off (set by the rig's /init from the
 * kernel command line) adds a check that ecap.SC is what QEMU was told.
 * Output: TAP-like lines, see tap.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/kvm.h>
#include <linux/vfio.h>

#include "tap.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_ID_REG 0x00
#define EDU_ID_VALUE_MASK 0xff0000ffu /* major.minor in bits 31..16, 0xed */
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_START 0x1
#define EDU_DMA_TO_RAM 0x2 /* direction bit: device buffer -> RAM */
#define EDU_BUF_ADDR 0x40000
#define EDU_BUF_SIZE 4096
/*
 * Bytes per transfer. QEMU before 8.2.1 (Debian 12 has 7.2) has an
 * off-by-one in edu_check_range(): a transfer that ends exactly at the end
 * of the device buffer (0x41000) is "out of bounds" and hw_error() aborts
 * QEMU. Keep every transfer strictly inside the buffer.
 */
#define XFER 2048

#define TEST_IOVA 0x4000000ull /* 64 MiB: below edu's 28-bit DMA mask */
#define TEST_LEN (64 * 1024ul)
#define PAGE 4096ul

#define VTD_ECAP_SC (1ull << 7)

#define TRACEFS "/sys/kernel/tracing"
#define KP_GROUP "ioasid_smoke"

static int iommufd = -1, devfd = -1, memfd = -1;
static volatile uint8_t *bar0;
static uint32_t ioas_id, dev_id;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_hex_file(const char *path, unsigned long *val)
{
	char buf[64];
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	*val = strtoul(buf, NULL, 16);
	return 0;
}

/* Find the edu device and its VFIO cdev name (vfioN). */
static int find_edu(char *bdf, size_t bdflen, char *cdev, size_t cdevlen)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p[512];
		unsigned long v, dv;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		if (read_hex_file(p, &v) || v != EDU_VENDOR)
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/device", e->d_name);
		if (read_hex_file(p, &dv) || dv != EDU_DEVICE)
			continue;
		snprintf(bdf, bdflen, "%s", e->d_name);
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vfio-dev", e->d_name);
		DIR *vd = opendir(p);
		if (vd) {
			struct dirent *ve;

			while ((ve = readdir(vd)))
				if (!strncmp(ve->d_name, "vfio", 4)) {
					snprintf(cdev, cdevlen, "/dev/vfio/devices/%s", ve->d_name);
					found = 0;
					break;
				}
			closedir(vd);
		}
		/* the rig's second edu has no driver: the bound one it is */
		if (found == 0)
			break;
	}
	closedir(d);
	return found;
}

/* --- edu DMA engine ------------------------------------------------------ */

static uint64_t edu_rd64(unsigned off)
{
	return *(volatile uint64_t *)(bar0 + off);
}

static void edu_wr64(unsigned off, uint64_t v)
{
	*(volatile uint64_t *)(bar0 + off) = v;
}

/* Returns 0 when the engine finished, -1 on timeout. */
static int edu_dma(uint64_t src, uint64_t dst, uint64_t count, bool to_ram)
{
	double deadline;

	edu_wr64(EDU_DMA_SRC, src);
	edu_wr64(EDU_DMA_DST, dst);
	edu_wr64(EDU_DMA_CNT, count);
	edu_wr64(EDU_DMA_CMD, EDU_DMA_START | (to_ram ? EDU_DMA_TO_RAM : 0));
	deadline = now() + 60.0;	/* ~100 ms of virtual time: a hang */
	while (edu_rd64(EDU_DMA_CMD) & EDU_DMA_START) {
		if (now() > deadline)
			return -1;
		usleep(1000);
	}
	return 0;
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

static bool memfd_equals(off_t off, const uint8_t *want, size_t len)
{
	uint8_t got[EDU_BUF_SIZE];

	if (len > sizeof(got) || pread(memfd, got, len, off) != (ssize_t)len)
		return false;
	return memcmp(got, want, len) == 0;
}

static int pci_enable_bus_master(void)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	uint16_t cmd;

	if (ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return -1;
	if (pread(devfd, &cmd, 2, ri.offset + 4) != 2)
		return -1;
	cmd |= 0x6; /* memory space + bus master */
	if (pwrite(devfd, &cmd, 2, ri.offset + 4) != 2)
		return -1;
	return 0;
}

/*
 * Look for a DMAR fault at IOVA fault_addr reported after our marker in the
 * kernel log, e.g. "DMAR: [DMA Write NO_PASID] Request device [0000:00:03.0]
 * fault addr 0x4005000 [fault reason 0x05] PTE Write access is not set".
 */
static bool klog_has_dmar_fault_after(const char *marker, uint64_t fault_addr)
{
	int n = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *p;
	bool hit = false;

	if (n <= 0)
		return false;
	buf = calloc(1, n + 1);
	if (!buf)
		return false;
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, n);
	if (n > 0) {
		buf[n] = 0;
		char want[64];

		snprintf(want, sizeof(want), "fault addr 0x%llx ", (unsigned long long)fault_addr);
		p = strstr(buf, marker);
		p = p ? strchr(p, '\n') : NULL;
		while (p && *++p) {
			char *eol = strchr(p, '\n');

			if (eol)
				*eol = 0;
			if (strstr(p, "DMAR") && strstr(p, want)) {
				tap_diag("klog: %s", p);
				hit = true;
				break;
			}
			p = eol;
		}
	}
	free(buf);
	return hit;
}

static void kmsg(const char *s)
{
	int fd = open("/dev/kmsg", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0)
			tap_diag("write /dev/kmsg: %s", strerror(errno));
		close(fd);
	}
}

/* --- kprobes via tracefs ------------------------------------------------- */

static int write_file(const char *path, const char *s, bool append)
{
	int fd = open(path, O_WRONLY | (append ? O_APPEND : O_TRUNC));
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s));
	close(fd);
	return r == (ssize_t)strlen(s) ? 0 : -1;
}

static bool kprobes_ready;

static void kprobes_remove(void)
{
	write_file(TRACEFS "/events/" KP_GROUP "/enable", "0", false);
	write_file(TRACEFS "/kprobe_events", "-:" KP_GROUP "/ncdma_reg\n", true);
	write_file(TRACEFS "/kprobe_events", "-:" KP_GROUP "/ncdma_unreg\n", true);
}

static int kprobes_setup(void)
{
	kprobes_remove();
	if (write_file(TRACEFS "/kprobe_events",
		       "p:" KP_GROUP "/ncdma_reg kvm_arch_register_noncoherent_dma\n", true))
		return -1;
	if (write_file(TRACEFS "/kprobe_events",
		       "p:" KP_GROUP "/ncdma_unreg kvm_arch_unregister_noncoherent_dma\n", true))
		return -1;
	if (write_file(TRACEFS "/events/" KP_GROUP "/enable", "1", false))
		return -1;
	kprobes_ready = true;
	return 0;
}

/* Count hits of each probe in the trace buffer, then clear it. */
static void kprobes_count(int *reg, int *unreg)
{
	char line[1024];
	FILE *f = fopen(TRACEFS "/trace", "r");

	*reg = *unreg = 0;
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (line[0] == '#')
				continue;
			if (strstr(line, "ncdma_reg:"))
				(*reg)++;
			else if (strstr(line, "ncdma_unreg:"))
				(*unreg)++;
		}
		fclose(f);
	}
	write_file(TRACEFS "/trace", "", false);
}

/* --- the test ------------------------------------------------------------ */

static void kvm_part(int sc)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	int32_t vfd = devfd;
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_FILE,
		.attr = KVM_DEV_VFIO_FILE_ADD,
		.addr = (uint64_t)(uintptr_t)&vfd,
	};
	int kvm, vm, reg, unreg;
	bool want_reg = !sc;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		tap_skip("no /dev/kvm in the guest", "kvm-vfio: noncoherent DMA registration");
		return;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (!tap_ok(vm >= 0, "KVM_CREATE_VM (%s)", vm < 0 ? strerror(errno) : "ok"))
		goto out_kvm;
	int r = ioctl(vm, KVM_CREATE_DEVICE, &cd);
	if (!tap_ok(r == 0, "KVM_CREATE_DEVICE KVM_DEV_TYPE_VFIO (%s)", r ? strerror(errno) : "ok"))
		goto out_vm;

	if (kprobes_setup())
		tap_diag("kprobe events on kvm_arch_[un]register_noncoherent_dma unavailable (%s)",
			 strerror(errno));
	if (kprobes_ready)
		kprobes_count(&reg, &unreg); /* clear */

	/* A non-VFIO fd is refused with EINVAL. */
	int32_t bad = memfd;
	struct kvm_device_attr battr = attr;
	battr.addr = (uint64_t)(uintptr_t)&bad;
	r = ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &battr);
	int e = errno;
	tap_ok(r == -1 && e == EINVAL, "KVM_DEV_VFIO_FILE_ADD of a memfd fails with EINVAL (%s)",
	       r ? strerror(e) : "succeeded");

	r = ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &attr);
	tap_ok(r == 0, "KVM_DEV_VFIO_FILE_ADD of the VFIO cdev fd (%s)", r ? strerror(errno) : "ok");
	if (kprobes_ready) {
		kprobes_count(&reg, &unreg);
		tap_diag("FILE_ADD: register_noncoherent_dma hits %d, unregister hits %d", reg, unreg);
		tap_ok(reg == (want_reg ? 1 : 0) && unreg == 0,
		       "FILE_ADD %s kvm_arch_register_noncoherent_dma (ecap.SC=%d)",
		       want_reg ? "calls" : "does not call", sc);
	} else {
		tap_skip("no kprobe events", "FILE_ADD noncoherent DMA registration");
	}

	attr.attr = KVM_DEV_VFIO_FILE_DEL;
	r = ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &attr);
	tap_ok(r == 0, "KVM_DEV_VFIO_FILE_DEL of the VFIO cdev fd (%s)", r ? strerror(errno) : "ok");
	if (kprobes_ready) {
		kprobes_count(&reg, &unreg);
		tap_diag("FILE_DEL: register_noncoherent_dma hits %d, unregister hits %d", reg, unreg);
		tap_ok(unreg == (want_reg ? 1 : 0) && reg == 0,
		       "FILE_DEL %s kvm_arch_unregister_noncoherent_dma (ecap.SC=%d)",
		       want_reg ? "calls" : "does not call", sc);
		kprobes_remove();
	} else {
		tap_skip("no kprobe events", "FILE_DEL noncoherent DMA unregistration");
	}
	close(cd.fd);
out_vm:
	close(vm);
out_kvm:
	close(kvm);
}

int main(void)
{
	char bdf[300] = "", cdev[300] = "";
	uint8_t pat[EDU_BUF_SIZE], sentinel[EDU_BUF_SIZE];
	int sc = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");

	int r = find_edu(bdf, sizeof(bdf), cdev, sizeof(cdev));
	if (!tap_ok(r == 0, "edu device bound to vfio-pci has a VFIO cdev (%s %s)", bdf[0] ? bdf : "not found",
		    cdev))
		goto done;

	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (!tap_ok(iommufd >= 0, "open /dev/iommu (%s)", strerror(errno)))
		goto done;

	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	r = ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc);
	if (!tap_ok(r == 0, "IOMMU_IOAS_ALLOC (%s)", r ? strerror(errno) : "ok"))
		goto done;
	ioas_id = alloc.out_ioas_id;

	devfd = open(cdev, O_RDWR | O_CLOEXEC);
	if (!tap_ok(devfd >= 0, "open %s (%s)", cdev, strerror(errno)))
		goto done;

	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	r = ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (!tap_ok(r == 0, "VFIO_DEVICE_BIND_IOMMUFD (%s)", r ? strerror(errno) : "ok"))
		goto done;
	dev_id = bind.out_devid;

	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = ioas_id };
	r = ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
	if (!tap_ok(r == 0, "VFIO_DEVICE_ATTACH_IOMMUFD_PT to IOAS %u (%s)", ioas_id, r ? strerror(errno) : "ok"))
		goto done;
	tap_diag("dev_id %u attached, automatic HWPT id %u", dev_id, at.pt_id);

	/* IOMMU_GET_HW_INFO: VT-d registers, snoop control. */
	struct iommu_hw_info_vtd vtd = { 0 };
	struct iommu_hw_info hi = {
		.size = sizeof(hi), .dev_id = dev_id,
		.data_len = sizeof(vtd), .data_uptr = (uint64_t)(uintptr_t)&vtd,
	};
	r = ioctl(iommufd, IOMMU_GET_HW_INFO, &hi);
	if (tap_ok(r == 0 && hi.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD,
		   "IOMMU_GET_HW_INFO returns Intel VT-d data (type %u, %s)", hi.out_data_type,
		   r ? strerror(errno) : "ok")) {
		sc = !!(vtd.ecap_reg & VTD_ECAP_SC);
		tap_diag("VT-d cap 0x%llx ecap 0x%llx: snoop control (ecap bit 7) %s; capabilities 0x%llx",
			 (unsigned long long)vtd.cap_reg, (unsigned long long)vtd.ecap_reg,
			 sc ? "supported" : "not supported", (unsigned long long)hi.out_capabilities);
		printf("# SNOOP_CONTROL=%d\n", sc);
		unsigned long sysfs_ecap;
		if (!read_hex_file("/sys/class/iommu/dmar0/intel-iommu/ecap", &sysfs_ecap))
			tap_ok(sysfs_ecap == vtd.ecap_reg, "ecap from GET_HW_INFO equals sysfs dmar0 ecap (0x%lx)",
			       sysfs_ecap);
		const char *exp = getenv("IOASID_EXPECT_SNOOP");
		if (exp && (!strcmp(exp, "on") || !strcmp(exp, "off")))
			tap_ok(sc == !strcmp(exp, "on"), "ecap.SC=%d matches QEMU snoop-control=%s", sc, exp);
		else
			tap_skip("IOASID_EXPECT_SNOOP not set", "ecap.SC matches QEMU snoop-control");
	}

	/* memfd mapped at a fixed IOVA. */
	memfd = memfd_create("ioasid-smoke", MFD_CLOEXEC);
	r = memfd >= 0 ? ftruncate(memfd, TEST_LEN) : -1;
	if (!tap_ok(r == 0, "memfd_create + ftruncate (%s)", r ? strerror(errno) : "ok"))
		goto done;
	memset(sentinel, 0x5a, sizeof(sentinel));
	for (unsigned long off = 0; off < TEST_LEN; off += PAGE)
		if (pwrite(memfd, sentinel, PAGE, off) != PAGE)
			break;

	struct iommu_ioas_map_file mf = {
		.size = sizeof(mf),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas_id, .fd = memfd, .start = 0, .length = TEST_LEN, .iova = TEST_IOVA,
	};
	r = ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &mf);
	if (!tap_ok(r == 0 && mf.iova == TEST_IOVA, "IOMMU_IOAS_MAP_FILE memfd %lu KiB at IOVA 0x%llx (%s)",
		    TEST_LEN / 1024, (unsigned long long)mf.iova, r ? strerror(errno) : "ok"))
		goto done;

	/* BAR0 */
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX };
	r = ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, &ri);
	if (!tap_ok(r == 0 && (ri.flags & VFIO_REGION_INFO_FLAG_MMAP) && ri.size >= 0x100,
		    "VFIO_DEVICE_GET_REGION_INFO BAR0: size 0x%llx flags 0x%x (%s)", (unsigned long long)ri.size,
		    ri.flags, r ? strerror(errno) : "ok"))
		goto done;
	void *m = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, devfd, ri.offset);
	if (!tap_ok(m != MAP_FAILED, "mmap BAR0 (%s)", strerror(errno)))
		goto done;
	bar0 = m;
	uint32_t id = *(volatile uint32_t *)(bar0 + EDU_ID_REG);
	tap_ok((id & EDU_ID_VALUE_MASK) == 0x010000ed, "edu identification register 0x%08x", id);
	r = pci_enable_bus_master();
	if (!tap_ok(r == 0, "enable bus mastering via the VFIO config region (%s)", r ? strerror(errno) : "ok"))
		goto done;

	/* RAM (IOVA page 0) -> device buffer -> RAM (IOVA page 1). */
	fill(pat, sizeof(pat), 0x11);
	if (pwrite(memfd, pat, sizeof(pat), 0) != sizeof(pat))
		tap_diag("pwrite memfd: %s", strerror(errno));
	tap_ok(edu_dma(TEST_IOVA, EDU_BUF_ADDR, XFER, false) == 0,
	       "edu DMA memory(IOVA 0x%llx) -> device buffer completes", (unsigned long long)TEST_IOVA);
	tap_ok(edu_dma(EDU_BUF_ADDR, TEST_IOVA + PAGE, XFER, true) == 0,
	       "edu DMA device buffer -> memory(IOVA 0x%llx) completes", (unsigned long long)TEST_IOVA + PAGE);
	tap_ok(memfd_equals(PAGE, pat, XFER), "pattern went memfd page 0 -> device -> memfd page 1");
	tap_ok(memfd_equals(PAGE + XFER, sentinel, PAGE - XFER), "rest of memfd page 1 untouched");

	/* A second pattern, written by the device into another page. */
	fill(pat, sizeof(pat), 0xa7);
	if (pwrite(memfd, pat, sizeof(pat), 2 * PAGE) != sizeof(pat))
		tap_diag("pwrite memfd: %s", strerror(errno));
	/* via the upper part of the device buffer: 0x40400..0x40bff */
	r = edu_dma(TEST_IOVA + 2 * PAGE, EDU_BUF_ADDR + 0x400, XFER, false);
	r |= edu_dma(EDU_BUF_ADDR + 0x400, TEST_IOVA + 3 * PAGE + 0x100, XFER, true);
	tap_ok(r == 0 && memfd_equals(3 * PAGE + 0x100, pat, XFER),
	       "second pattern via device buffer offset 0x400 into memfd page 3 offset 0x100");
	tap_ok(memfd_equals(3 * PAGE, sentinel, 0x100), "memfd page 3 below the transfer untouched");
	tap_ok(memfd_equals(4 * PAGE, sentinel, sizeof(sentinel)), "memfd page 4 untouched");

	/* Unmap, then let the device write again: must be blocked. */
	struct iommu_ioas_unmap um = { .size = sizeof(um), .ioas_id = ioas_id, .iova = TEST_IOVA, .length = TEST_LEN };
	r = ioctl(iommufd, IOMMU_IOAS_UNMAP, &um);
	tap_ok(r == 0 && um.length == TEST_LEN, "IOMMU_IOAS_UNMAP of the whole mapping (%s, length 0x%llx)",
	       r ? strerror(errno) : "ok", (unsigned long long)um.length);
	if (pwrite(memfd, sentinel, PAGE, 5 * PAGE) != PAGE)
		tap_diag("pwrite memfd: %s", strerror(errno));
	kmsg("ioasid-smoke: marker before the blocked DMA\n");
	tap_ok(edu_dma(EDU_BUF_ADDR, TEST_IOVA + 5 * PAGE, XFER, true) == 0,
	       "edu DMA to the unmapped IOVA completes (as seen by the device)");
	tap_ok(memfd_equals(5 * PAGE, sentinel, sizeof(sentinel)), "DMA to the unmapped IOVA left memory untouched");
	/* the fault handler is a kernel thread of a TCG guest: up to 30 s */
	bool fault = false;
	for (int i = 0; i < 600 && !fault; i++) {
		fault = klog_has_dmar_fault_after("ioasid-smoke: marker before the blocked DMA", TEST_IOVA + 5 * PAGE);
		if (!fault)
			usleep(50000);
	}
	if (!fault)
		tap_skip("no DMAR fault visible in the kernel log", "DMAR fault reported in the kernel log");
	else
		tap_ok(fault, "DMAR fault at IOVA 0x%llx reported in the kernel log", (unsigned long long)TEST_IOVA + 5 * PAGE);

	/* KVM: the kernel's coherency judgement, observed through kprobes. */
	if (sc < 0)
		tap_skip("ecap unknown", "kvm-vfio noncoherent DMA registration");
	else
		kvm_part(sc);

done:
	if (bar0)
		munmap((void *)bar0, 0x100000);
	if (devfd >= 0)
		close(devfd);
	if (memfd >= 0)
		close(memfd);
	if (iommufd >= 0)
		close(iommufd);
	return tap_done();
}
