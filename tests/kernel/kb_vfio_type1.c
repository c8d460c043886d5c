/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_vfio_type1 - the legacy VFIO type1 backend against the real kernel
 * (tests/vm guest).  The edu device is bound with its group fd, which
 * this test opened; once attached (the group is in a container with an
 * IOMMU) the test gets the device fd from that group fd to drive edu.
 *
 *  - mappings made before the first attach reach the kernel at attach;
 *  - VFIO_IOMMU_GET_INFO: DMA_AVAIL (the mapping cap) and IOVA_RANGE,
 *    compared with the core's ranges; VFIO_DMA_CC_IOMMU vs snoop control;
 *  - DMA into a memfd, the composed cut (type1 v2 refuses to bisect),
 *    DMA blocked after unmap;
 *  - replace between containers: refused while a device fd is open
 *    (VFIO_GROUP_UNSET_CONTAINER says EBUSY), works after;
 *  - detach (and unbind) refused with EBUSY then too, nothing changed:
 *    the device still attached, its DMA reaching the IOAS;
 *  - kvm-vfio with the group fd: the kernel's verdict through kprobes;
 *  - ioasid_device_get_fd(): the group, what kvm-vfio gets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/vfio.h>

#include "backends/vfio_type1/vfio_type1.h"
#include "kbtest.h"

#define IOVA		0x4000000ull
#define LEN		(16 * KB_PAGE)
#define XFER		1024u

static struct ioasid_ctx *ctx;
static struct ioasid_device_info edu_info;
static struct edu edu;
static uint32_t dev;
static int group = -1, devfd = -1;
static int sc = -1;

static int open_device_fd(void)
{
	devfd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, edu_info.name);
	if (devfd < 0)
		return -1;
	if (edu_open(&edu, devfd) < 0) {
		close(devfd);
		devfd = -1;
		return -1;
	}
	return 0;
}

static void close_device_fd(void)
{
	edu_close(&edu);
	if (devfd >= 0)
		close(devfd);
	devfd = -1;
}

/* As kb_iommufd's: memory untouched, DMAR fault (waiting out the limit). */
static void blocked_write(const char *what, int memfd, uint64_t off,
			  uint64_t iova, uint8_t fill)
{
	char marker[128];
	bool fault = false;

	for (int attempt = 0; attempt < 2 && !fault; attempt++) {
		if (attempt)
			usleep(5100 * 1000);
		snprintf(marker, sizeof(marker), "ioasid-kb-type1: %s at "
			 "0x%llx (%d)", what, (unsigned long long)iova, attempt);
		kb_kmsg(marker);
		edu_to_mem(&edu, 0, iova, XFER);
		fault = kb_dmar_fault_after(marker, iova, attempt ?
					    KB_FAULT_RETRY_MS :
					    KB_FAULT_FIRST_MS);
	}
	tap_ok(kb_file_is(memfd, off, fill, KB_PAGE),
	       "%s: memory behind IOVA 0x%llx untouched", what,
	       (unsigned long long)iova);
	kb_fault_logged(fault, what, iova);
}

static void check_info(uint32_t ioas)
{
	struct be_ioas *b = kb_be_ioas(ctx, ioas);
	const struct ioasid_iova_range *kr;
	struct ioasid_iova_range lr[16];
	struct ioasid_domain_info d[2];
	uint32_t knr, nr = 16, dnr = 2;
	int64_t avail = vfio_type1_test_dma_avail(b);
	struct ioasid_status st;
	bool same;

	tap_ok(avail > 0, "VFIO_IOMMU_GET_INFO has DMA_AVAIL: %lld more "
	       "mappings allowed (dma_entry_limit)", (long long)avail);
	if (ioasid_get_status(ctx, &st) == 0)
		tap_diag("status: %s", st.topology);
	if (vfio_type1_test_iova_ranges(b, &kr, &knr) == 0 &&
	    ioasid_iova_ranges(ctx, ioas, lr, &nr, NULL) == 0) {
		same = knr == nr;
		for (uint32_t i = 0; i < knr && i < nr; i++) {
			tap_diag("range %u: kernel 0x%llx-0x%llx library "
				 "0x%llx-0x%llx", i,
				 (unsigned long long)kr[i].start,
				 (unsigned long long)kr[i].last,
				 (unsigned long long)lr[i].start,
				 (unsigned long long)lr[i].last);
			same = same && kr[i].start == lr[i].start &&
			       kr[i].last == lr[i].last;
		}
		tap_ok(same, "IOVA_RANGE capability (%u ranges) equals the "
		       "core's ranges (%u)", knr, nr);
	} else {
		tap_ok(0, "IOVA ranges from GET_INFO and the library");
	}
	tap_ok(vfio_type1_test_cc(b) == sc, "VFIO_CHECK_EXTENSION("
	       "VFIO_DMA_CC_IOMMU) = %d, snoop control %d",
	       vfio_type1_test_cc(b), sc);
	tap_ok(ioasid_domain_list(ctx, ioas, d, &dnr) == 0 && dnr == 1 &&
	       !!(d[0].flags & IOASID_DOMAIN_ENFORCE_COHERENCY) == sc,
	       "the implicit domain is reported %s",
	       sc ? "coherent" : "non-coherent");
}

static void suite_dma(uint32_t ioas, int m)
{
	uint8_t pat[XFER];
	uint64_t unmapped = 0;
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .iova = IOVA + 5 * KB_PAGE,
		.size = KB_PAGE,
	};
	int r;

	kb_pattern(pat, sizeof(pat), 0x3c);
	if (pwrite(m, pat, XFER, 0) != XFER)
		tap_diag("pwrite: %s", strerror(errno));
	tap_ok(edu_to_buf(&edu, IOVA, 0, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, KB_PAGE, pat, XFER),
	       "edu DMA through the container (mapped before attach)");
	tap_ok(ioasid_unmap(ctx, ioas, IOVA + 3 * KB_PAGE, KB_PAGE, 0,
			    &unmapped) == 0 && unmapped == KB_PAGE,
	       "unmap one page inside the mapping (composed) (%s)",
	       kb_err(ctx));
	r = ioctl(vfio_type1_test_container_fd(kb_be_ioas(ctx, ioas)),
		  VFIO_IOMMU_UNMAP_DMA, &u);
	tap_ok(r < 0 && errno == EINVAL, "raw VFIO_IOMMU_UNMAP_DMA bisecting "
	       "a mapping fails with EINVAL (%s)",
	       r ? strerror(errno) : "succeeded");
	tap_ok(edu_to_mem(&edu, 0, IOVA + 2 * KB_PAGE, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + 4 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 2 * KB_PAGE, pat, XFER) &&
	       kb_file_equals(m, 4 * KB_PAGE, pat, XFER),
	       "DMA to the kept pages around the cut works");
	blocked_write("cut page", m, 3 * KB_PAGE, IOVA + 3 * KB_PAGE, 0x5a);
	tap_ok(ioasid_unmap(ctx, ioas, IOVA, LEN, 0, &unmapped) == 0 &&
	       unmapped == LEN - KB_PAGE, "unmap the rest");
	blocked_write("after unmap", m, 6 * KB_PAGE, IOVA + 6 * KB_PAGE, 0x5a);
}

static void suite_replace(uint32_t ioas)
{
	uint64_t iova = IOVA;
	uint8_t pat[XFER];
	uint32_t other;
	int m = kb_memfd(4 * KB_PAGE, 0x11), r;

	if (!tap_ok(m >= 0 && ioasid_ioas_alloc(ctx, 0, &other) == 0 &&
		    ioasid_map_file(ctx, other, m, 0, 4 * KB_PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova) == 0,
		    "a second container with a mapping"))
		return;
	r = ioasid_device_replace(ctx, dev, other, 0);
	tap_ok(r == -EBUSY, "replace while the device fd is open: the group "
	       "cannot leave its container (%d: %s)", r,
	       kb_err(ctx));
	close_device_fd();
	tap_ok(ioasid_device_replace(ctx, dev, other, 0) == 0,
	       "replace after closing the device fd (group moves: "
	       "UNSET_CONTAINER + SET_CONTAINER) (%s)", kb_err(ctx));
	tap_ok(open_device_fd() == 0, "device fd again");
	kb_pattern(pat, sizeof(pat), 0x4d);
	if (pwrite(m, pat, XFER, 0) != XFER)
		tap_diag("pwrite: %s", strerror(errno));
	tap_ok(edu_to_buf(&edu, IOVA, 0, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + 2 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 2 * KB_PAGE, pat, XFER),
	       "DMA in the second container");
	close_device_fd();
	tap_ok(ioasid_device_replace(ctx, dev, ioas, 0) == 0,
	       "back to the first container");
	ioasid_ioas_destroy(ctx, other);
	close(m);
}

static bool attached_to(uint32_t ioas)
{
	struct ioasid_device_info di;

	return ioasid_device_get_info(ctx, edu_info.name, &di) == 0 &&
	       di.ioas_id == ioas;
}

/*
 * Detach while a device fd of the group is open: the kernel keeps the
 * group in its container (VFIO_GROUP_UNSET_CONTAINER: EBUSY) and edu's
 * DMA still reaches the IOAS, so the detach must fail and change nothing
 * (it used to report success).
 */
static void suite_detach_busy(uint32_t ioas, int m)
{
	uint64_t iova = IOVA;
	uint8_t pat[XFER];
	int r;

	if (!tap_ok(open_device_fd() == 0 &&
		    ioasid_map_file(ctx, ioas, m, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova) == 0,
		    "device fd open, memfd mapped (%s)", kb_err(ctx)))
		return;
	r = ioasid_device_detach(ctx, dev);
	tap_ok(r == -EBUSY && strstr(ioasid_last_error(ctx), "device fd") &&
	       strstr(ioasid_last_error(ctx), "VFIO_GROUP_UNSET_CONTAINER"),
	       "detach while a device fd of the group is open: %d (%s)", r,
	       kb_err(ctx));
	tap_ok(attached_to(ioas), "the core still has edu attached to IOAS "
	       "%u", ioas);
	kb_pattern(pat, sizeof(pat), 0x6e);
	tap_ok(pwrite(m, pat, XFER, 0) == XFER &&
	       edu_to_buf(&edu, IOVA, 0, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + 2 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 2 * KB_PAGE, pat, XFER),
	       "and so has the kernel: edu's DMA reaches the IOAS");
	r = ioasid_ioas_destroy(ctx, ioas);
	tap_ok(r == -EBUSY, "the IOAS cannot be destroyed under it (%d)", r);
	r = ioasid_device_unbind(ctx, dev);
	tap_ok(r == -EBUSY && attached_to(ioas), "unbind (which detaches "
	       "first) is refused the same way: %d (%s)", r, kb_err(ctx));
	close_device_fd();
	tap_ok(ioasid_device_detach(ctx, dev) == 0 && attached_to(0),
	       "detach once the device fd is closed (%s)", kb_err(ctx));
	tap_ok(ioasid_device_attach(ctx, dev, ioas, 0) == 0, "attach again "
	       "(%s)", kb_err(ctx));
	ioasid_unmap(ctx, ioas, IOVA, LEN, 0, NULL);
}

/* A write-sealed memfd: readable only (type1 maps by address). */
static void suite_write_seal(uint32_t ioas, int m)
{
	uint64_t sealed_iova = IOVA + 0x100000, iova = sealed_iova;
	uint8_t pat[XFER];
	int sealed;

	kb_pattern(pat, sizeof(pat), 0x71);
	sealed = kb_write_sealed_memfd(LEN, 0x5a, pat, XFER);
	if (!tap_ok(sealed >= 0, "memfd sealed with F_SEAL_WRITE"))
		return;
	kb_writable_map_refused(ctx, ioas, sealed, sealed_iova, LEN,
				"F_SEAL_WRITE");
	tap_ok(ioasid_map_file(ctx, ioas, sealed, 0, LEN, IOASID_MAP_READ |
			       IOASID_MAP_FIXED_IOVA, &iova) == 0,
	       "mapped readable only (%s)", kb_err(ctx));
	iova = IOVA;
	tap_ok(ioasid_map_file(ctx, ioas, m, 0, LEN, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova) == 0 && open_device_fd() == 0 &&
	       edu_to_buf(&edu, sealed_iova, 0, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + 3 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 3 * KB_PAGE, pat, XFER),
	       "edu reads the sealed memfd (%s)", kb_err(ctx));
	close_device_fd();
	ioasid_unmap(ctx, ioas, IOVA, LEN, 0, NULL);
	ioasid_unmap(ctx, ioas, sealed_iova, LEN, 0, NULL);
	close(sealed);
}

static void suite_coherency(void)
{
	uint32_t other;
	int r;

	if (ioasid_ioas_alloc(ctx, 0, &other) < 0)
		return;
	ioasid_ioas_set_snoop_mode(ctx, other, IOASID_SNOOP_ALLOW);
	r = ioasid_device_replace(ctx, dev, other, 0);
	if (sc)
		tap_ok(r == -EOPNOTSUPP, "snoop mode allow refused: type1 "
		       "enforces wherever the IOMMU can (%d: %s)", r,
		       kb_err(ctx));
	else
		tap_ok(r == 0, "snoop mode allow without snoop control");
	if (r == 0)
		r = ioasid_device_detach(ctx, dev);
	ioasid_ioas_destroy(ctx, other);
}

static void check_kernel(const char *when, int want_reg, int want_unreg)
{
	int reg, unreg;

	kb_kprobes_count(&reg, &unreg);
	tap_ok(reg == want_reg && unreg == want_unreg, "%s: kernel register/"
	       "unregister hits %d/%d, expected %d/%d", when, reg, unreg,
	       want_reg, want_unreg);
}

static void suite_kvm(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vmfd = -1;
	struct ioasid_vm_info vi;
	uint32_t vm;

	if (kvm >= 0)
		vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vmfd < 0 || kb_kprobes_setup() < 0) {
		tap_skip("no /dev/kvm or kprobes", "kvm-vfio with the group");
		goto out;
	}
	tap_ok(ioasid_vm_bind(ctx, vmfd, -1, &vm) == 0 &&
	       ioasid_device_set_vm(ctx, dev, vm) == 0,
	       "VM bound, edu in it (FILE_ADD of the group fd) (%s)",
	       kb_err(ctx));
	check_kernel("group FILE_ADD", !sc, 0);
	tap_ok(ioasid_vm_get_info(ctx, vm, &vi) == 0 &&
	       !(vi.flags & IOASID_VM_WBINVD_NEEDED) && vi.nr_kvm_files == 1,
	       "library: no WBINVD (edu cannot issue no-snoop), KVM told (the "
	       "group fd is in kvm-vfio)%s",
	       sc ? "" : "; the kernel registered by capability (documented)");
	tap_ok(ioasid_vm_unbind(ctx, vm) == 0, "vm_unbind");
	check_kernel("group FILE_DEL", 0, !sc);
	kb_kprobes_remove();
out:
	if (vmfd >= 0)
		close(vmfd);
	if (kvm >= 0)
		close(kvm);
}

/* get_fd hands out the group: the file kvm-vfio gets with type1. */
static void suite_vfio_fd(const char *group_path)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	struct stat a, b;
	int fd = -1;

	if (!tap_ok(ioasid_device_get_fd(ctx, dev, &fd) == 0, "get_fd (%s)",
		    kb_err(ctx)))
		return;
	tap_ok(fstat(fd, &a) == 0 && stat(group_path, &b) == 0 &&
	       a.st_rdev == b.st_rdev && fd != group,
	       "get_fd: a new descriptor of %s", group_path);
	tap_ok(ioctl(fd, VFIO_GROUP_GET_STATUS, &st) == 0 &&
	       (st.flags & VFIO_GROUP_FLAGS_VIABLE) &&
	       (st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET),
	       "it is the group, viable and in its container");
	close(fd);
}

int main(void)
{
	uint64_t iova = IOVA;
	struct ioasid_iommu_info u;
	uint32_t ioas, nr = 1;
	char path[64];
	int m = -1, r;
	bool compat;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	r = ioasid_new("vfio-type1", &ctx);
	if (!tap_ok(r == 0, "ioasid_new(\"vfio-type1\") (%s)",
		    r ? strerror(-r) : "ok"))
		goto done;
	kb_log_to_tap(ctx, LOG_INFO);
	/*
	 * iommufd says so in the log at the first open of its emulated
	 * container (iommufd_fops_open); the backend must tell the same
	 * from the ioctls' answers alone (real type1 here: composed cuts).
	 */
	compat = kb_klog_contains("IOMMUFD is providing /dev/vfio/vfio");
	tap_ok(vfio_type1_test_iommufd_compat(kb_backend(ctx)) == compat,
	       "/dev/vfio/vfio is %s (kernel log), and the backend detected "
	       "it", compat ? "iommufd's VFIO container emulation" :
	       "VFIO's real type1 container");
	r = kb_find_edu(ctx, &edu_info);
	if (!tap_ok(r == 0, "edu in the inventory, group %u", edu_info.group) ||
	    ioasid_iommu_list(ctx, &u, &nr) < 0)
		goto done;
	sc = !!(u.flags & IOASID_IOMMU_SNOOP_CONTROL);
	snprintf(path, sizeof(path), "/dev/vfio/%u", edu_info.group);
	group = open(path, O_RDWR | O_CLOEXEC);
	if (!tap_ok(group >= 0 && ioasid_device_bind(ctx, edu_info.name, group,
						     &dev) == 0,
		    "bind edu with our group fd %s (%s)", path,
		    kb_err(ctx)))
		goto done;
	m = kb_memfd(LEN, 0x5a);
	tap_ok(m >= 0 && ioasid_ioas_alloc(ctx, 0, &ioas) == 0 &&
	       ioasid_map_file(ctx, ioas, m, 0, LEN, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova) == 0,
	       "container, memfd mapped before any group is in it (%s)",
	       kb_err(ctx));
	if (!tap_ok(ioasid_device_attach(ctx, dev, ioas, 0) == 0,
		    "attach: the group joins, VFIO_SET_IOMMU(TYPE1v2), the "
		    "mapping is programmed (%s)", kb_err(ctx)))
		goto done;
	if (!tap_ok(open_device_fd() == 0, "VFIO_GROUP_GET_DEVICE_FD, BAR0, "
		    "bus mastering"))
		goto done;
	check_info(ioas);
	suite_vfio_fd(path);
	suite_dma(ioas, m);
	suite_replace(ioas);
	suite_detach_busy(ioas, m);
	suite_write_seal(ioas, m);
	suite_kvm();
	close_device_fd();
	suite_coherency();
	tap_ok(ioasid_device_unbind(ctx, dev) == 0 &&
	       ioasid_ioas_destroy(ctx, ioas) == 0, "unbind, destroy");
done:
	close_device_fd();
	if (ctx)
		ioasid_unref(ctx);
	if (m >= 0)
		close(m);
	if (group >= 0)
		close(group);
	return tap_done();
}
