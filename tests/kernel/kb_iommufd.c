/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_iommufd - the iommufd backend against the real kernel (tests/vm
 * guest: Linux 7.3, emulated VT-d with snoop-control on or off, QEMU's edu
 * device bound to vfio-pci).  Through the public API with URI "iommufd",
 * the edu device bound with a cdev fd this test opened (so it can drive
 * edu's DMA engine through BAR0):
 *
 *  1. DMA: a memfd mapped by fd+offset, edu DMA into and out of it;
 *     unmap, DMA blocked (memory untouched, DMAR fault in the kernel log);
 *     an unmap that cuts inside a mapping (the composed path): DMA to the
 *     kept pages works, to the cut page is blocked.  ioasid_copy (one
 *     IOMMU_IOAS_COPY).  Also user memory,
 *     hugetlbfs, guest_memfd and a restricted IOAS (page-granular
 *     conversions), and replace between IOASes.
 *  2. Coherency: the domain enforces iff the unit has snoop control, as
 *     IOMMU_GET_HW_INFO says; snoop modes "allow"/"enforce".  Nested
 *     translation: refused with a reason (QEMU's VT-d has no nesting).
 *  3. KVM: a VM bound, edu put in it (KVM_DEV_VFIO_FILE_ADD), kprobes on
 *     kvm_arch_[un]register_noncoherent_dma show the kernel's verdict;
 *     the library's verdict is compared with it.
 *  4. Through a real ioasidd started here (backend iommufd; the rig puts
 *     the daemon at /usr/sbin/ioasidd): the daemon opens and binds edu,
 *     ioasid_device_get_fd() passes its cdev to this process, which maps
 *     BAR0 and makes edu DMA through the daemon's IOAS; set_vm registers
 *     non-coherent DMA with KVM from this process (the kprobes again).
 *  5. Two clients of one ioasidd, each with its own iommufd: the second
 *     (with the rig's second edu) cannot attach its device to anything
 *     of the first's, by any id; the first's DMA keeps landing.
 * Raw cross-checks use the kernel's own <linux/iommufd.h> (7.3 headers),
 * not the backend's definitions.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#include <linux/vfio.h>
#define HAVE_KERNEL_IOMMUFD_H 1
#endif
#include <linux/kvm.h>

#include <sys/stat.h>

#include "backends/iommufd/iommufd.h"
#include "ctx.h"
#include "../daemon_fixture.h"
#include "kbtest.h"
#include "kvm/kvm.h"

#define IOVA		0x4000000ull	/* below edu's 28-bit DMA mask */
#define LEN		(16 * KB_PAGE)
#define XFER		1024u

static struct ioasid_ctx *ctx;
static struct ioasid_device_info edu_info;
static struct ioasid_iommu_info unit;
static struct edu edu;
static uint32_t dev;
static int cdev = -1;
static int sc = -1;		/* the unit's snoop control, as the library sees it */

/* The backend's trace: ioctls of kind @c issued so far. */
static uint64_t calls(enum iommufd_call c)
{
	return iommufd_test_calls(kb_backend(ctx), c);
}

/* A snapshot of the trace, to assert what one operation issued. */
struct trace {
	uint64_t v[IOMMUFD_CALL_NR];
};

static struct trace trace_now(void)
{
	struct trace t;

	for (int c = 0; c < IOMMUFD_CALL_NR; c++)
		t.v[c] = calls((enum iommufd_call)c);
	return t;
}

static uint64_t since(const struct trace *t, enum iommufd_call c)
{
	return calls(c) - t->v[c];
}

/* The calls of kind @c a storm issued (storm_run() leaves the counts). */
static uint64_t issued(const struct trace *t, enum iommufd_call c)
{
	return t->v[c];
}

#ifdef HAVE_KERNEL_IOMMUFD_H
/* ---- raw cross-checks (kernel headers) ----------------------------------- */

static void raw_hw_info(void)
{
	struct iommu_hw_info_vtd vtd = { 0 };
	struct iommu_hw_info hi = {
		.size = sizeof(hi),
		.dev_id = iommufd_test_dev_id(kb_be_device(ctx, dev)),
		.data_len = sizeof(vtd),
		.data_uptr = (uint64_t)(uintptr_t)&vtd,
	};
	int fd = iommufd_test_device_iommufd(kb_be_device(ctx, dev));
	int r = ioctl(fd, IOMMU_GET_HW_INFO, &hi);
	int ksc;

	if (!tap_ok(r == 0 && hi.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD,
		    "raw IOMMU_GET_HW_INFO on the backend's dev_id: VT-d (%s)",
		    r ? strerror(errno) : "ok"))
		return;
	ksc = !!(vtd.ecap_reg & (1ull << 7));
	tap_diag("kernel: cap 0x%llx ecap 0x%llx caps 0x%llx; library: cap "
		 "0x%llx ecap 0x%llx", (unsigned long long)vtd.cap_reg,
		 (unsigned long long)vtd.ecap_reg,
		 (unsigned long long)hi.out_capabilities,
		 (unsigned long long)unit.cap, (unsigned long long)unit.ecap);
	tap_ok(vtd.cap_reg == unit.cap && vtd.ecap_reg == unit.ecap,
	       "GET_HW_INFO cap/ecap equal what discovery read from sysfs");
	tap_ok(ksc == sc, "snoop control: kernel ecap.SC=%d, library %d", ksc,
	       sc);
	tap_ok(!!(hi.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING) ==
	       !!(unit.flags & IOASID_IOMMU_DIRTY_TRACKING),
	       "dirty tracking: kernel %d, library %d",
	       !!(hi.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING),
	       !!(unit.flags & IOASID_IOMMU_DIRTY_TRACKING));
}

static void raw_iova_ranges(uint32_t ioas)
{
	struct iommu_iova_range kr[16];
	struct ioasid_iova_range lr[16];
	struct iommu_ioas_iova_ranges q = {
		.size = sizeof(q),
		.ioas_id = iommufd_test_ioas_id(kb_be_ioas(ctx, ioas)),
		.num_iovas = 16, .allowed_iovas = (uint64_t)(uintptr_t)kr,
	};
	uint32_t nr = 16;
	uint64_t align = 0;
	int r = ioctl(iommufd_test_ioas_fd(kb_be_ioas(ctx, ioas)),
		      IOMMU_IOAS_IOVA_RANGES, &q);
	bool same;

	if (!tap_ok(r == 0 && ioasid_iova_ranges(ctx, ioas, lr, &nr, &align)
		    == 0, "IOVA ranges from the kernel (IOMMU_IOAS_IOVA_RANGES) "
		    "and from the library"))
		return;
	same = q.num_iovas == nr && q.out_iova_alignment == align;
	for (uint32_t i = 0; i < nr && i < q.num_iovas; i++) {
		tap_diag("range %u: kernel 0x%llx-0x%llx library 0x%llx-0x%llx",
			 i, (unsigned long long)kr[i].start,
			 (unsigned long long)kr[i].last,
			 (unsigned long long)lr[i].start,
			 (unsigned long long)lr[i].last);
		same = same && kr[i].start == lr[i].start &&
		       kr[i].last == lr[i].last;
	}
	tap_ok(same, "after attach the kernel's allowed IOVA ranges (%u, "
	       "alignment 0x%llx) equal what the core computed from sysfs "
	       "reserved_regions and the address width (%u, 0x%llx)",
	       q.num_iovas, (unsigned long long)q.out_iova_alignment, nr,
	       (unsigned long long)align);
}

/* The kernel cannot cut: a sub-range unmap of a real mapping is ENOENT. */
static void raw_cut_refused(uint32_t ioas, uint64_t iova)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u),
		.ioas_id = iommufd_test_ioas_id(kb_be_ioas(ctx, ioas)),
		.iova = iova, .length = KB_PAGE,
	};
	int r = ioctl(iommufd_test_ioas_fd(kb_be_ioas(ctx, ioas)),
		      IOMMU_IOAS_UNMAP, &u);

	tap_ok(r < 0 && errno == ENOENT, "raw IOMMU_IOAS_UNMAP of one page "
	       "inside a kernel mapping fails with ENOENT (%s)",
	       r ? strerror(errno) : "succeeded");
}
#else
static void raw_hw_info(void)
{
	tap_skip("built without the 7.3 uAPI headers", "raw GET_HW_INFO");
}

static void raw_iova_ranges(uint32_t ioas)
{
	tap_skip("built without the 7.3 uAPI headers", "raw IOVA ranges");
}

static void raw_cut_refused(uint32_t ioas, uint64_t iova)
{
	tap_skip("built without the 7.3 uAPI headers", "raw sub-range unmap");
}
#endif

/* ---- DMA through edu ----------------------------------------------------- */

/* Device reads @src into its buffer and writes it to @dst. */
static int dma_copy(uint64_t src, uint64_t dst, uint32_t len)
{
	return edu_to_buf(&edu, src, 0, len) || edu_to_mem(&edu, 0, dst, len);
}

/* Put @pat into the device buffer through a page mapped at @via. */
static int load_buffer(int memfd, uint64_t file_off, uint64_t via,
		       const uint8_t *pat, uint32_t len)
{
	if (pwrite(memfd, pat, len, (off_t)file_off) != (ssize_t)len)
		return -1;
	return edu_to_buf(&edu, via, 0, len);
}

/*
 * The device writes to @iova, which must be blocked: memory untouched and
 * a DMAR fault in the kernel log.  A blocked write need not print: the
 * kernel rate-limits fault messages (dmar_fault() takes 3 of a burst of
 * 10 per 5 s for each fault: the status line, the record, the check for
 * a next record; so the 4th fault within 5 s is not printed),
 * and QEMU's VT-d records no new fault while the guest has not yet
 * cleared the previous one ("compression of faults").  If none shows,
 * wait out both once (the rate limit's window; the handler meanwhile
 * clears the record) and retry.  Memory untouched is the assertion; the
 * message is reported as a diagnostic (kb_fault_logged()).
 */
static void blocked_write(const char *what, int memfd, uint64_t off,
			  uint64_t iova, uint8_t fill)
{
	char marker[128];
	bool fault = false;
	int r = 0;

	for (int attempt = 0; attempt < 2 && !fault; attempt++) {
		if (attempt)
			usleep(5100 * 1000);
		snprintf(marker, sizeof(marker), "ioasid-kb: %s at 0x%llx (%d)",
			 what, (unsigned long long)iova, attempt);
		kb_kmsg(marker);
		r |= edu_to_mem(&edu, 0, iova, XFER);
		fault = kb_dmar_fault_after(marker, iova, attempt ?
					    KB_FAULT_RETRY_MS :
					    KB_FAULT_FIRST_MS);
	}
	tap_ok(r == 0, "%s: edu DMA to IOVA 0x%llx completes as the device "
	       "sees it", what, (unsigned long long)iova);
	tap_ok(kb_file_is(memfd, off, fill, KB_PAGE),
	       "%s: memory behind IOVA 0x%llx untouched", what,
	       (unsigned long long)iova);
	kb_fault_logged(fault, what, iova);
}

static void suite_dma(uint32_t ioas)
{
	uint8_t pat[XFER], pat2[XFER];
	uint64_t iova = IOVA, unmapped = 0;
	int m = kb_memfd(LEN, 0x5a);
	struct trace t = trace_now();

	if (!tap_ok(m >= 0, "memfd of %llu KiB", LEN / 1024))
		return;
	tap_ok(ioasid_map_file(ctx, ioas, m, 0, LEN, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova) == 0 && iova == IOVA,
	       "map_file memfd at IOVA 0x%llx (%s)", IOVA,
	       kb_err(ctx));
	tap_ok(iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == 1 &&
	       since(&t, IOMMUFD_CALL_MAP_FILE) == 1 &&
	       since(&t, IOMMUFD_CALL_MAP) == 0,
	       "one kernel mapping, by IOMMU_IOAS_MAP_FILE (trace: %llu "
	       "MAP_FILE, %llu MAP)",
	       (unsigned long long)since(&t, IOMMUFD_CALL_MAP_FILE),
	       (unsigned long long)since(&t, IOMMUFD_CALL_MAP));

	/* memory -> device -> memory */
	kb_pattern(pat, sizeof(pat), 0x11);
	tap_ok(load_buffer(m, 0, IOVA, pat, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, KB_PAGE, pat, XFER),
	       "edu DMA reads memfd page 0 and writes it to page 1");
	tap_ok(kb_file_is(m, KB_PAGE + XFER, 0x5a, KB_PAGE - XFER),
	       "the rest of page 1 untouched");

	/* the composed unmap: cut page 3 out of the 16-page mapping */
	t = trace_now();
	tap_ok(ioasid_unmap(ctx, ioas, IOVA + 3 * KB_PAGE, KB_PAGE, 0,
			    &unmapped) == 0 && unmapped == KB_PAGE,
	       "unmap one page inside the mapping (%s)",
	       kb_err(ctx));
	tap_ok(since(&t, IOMMUFD_CALL_UNMAP) == 1 &&
	       since(&t, IOMMUFD_CALL_MAP_FILE) == 2 &&
	       since(&t, IOMMUFD_CALL_CUT) == 0 &&
	       since(&t, IOMMUFD_CALL_MAP) == 0,
	       "large-page IOAS: the cut was composed (1 IOMMU_IOAS_UNMAP, "
	       "2 IOMMU_IOAS_MAP_FILE; issued %llu, %llu)",
	       (unsigned long long)since(&t, IOMMUFD_CALL_UNMAP),
	       (unsigned long long)since(&t, IOMMUFD_CALL_MAP_FILE));
	tap_ok(iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == 2,
	       "the kernel now holds the two pieces around the cut");
	raw_cut_refused(ioas, IOVA + 5 * KB_PAGE);
	kb_pattern(pat2, sizeof(pat2), 0x77);
	tap_ok(load_buffer(m, 0, IOVA, pat2, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + 2 * KB_PAGE, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + 4 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 2 * KB_PAGE, pat2, XFER) &&
	       kb_file_equals(m, 4 * KB_PAGE, pat2, XFER),
	       "DMA to the kept pages on both sides of the cut works");
	blocked_write("cut page", m, 3 * KB_PAGE, IOVA + 3 * KB_PAGE, 0x5a);

	/* unmap everything, DMA again */
	tap_ok(ioasid_unmap(ctx, ioas, IOVA, LEN, 0, &unmapped) == 0 &&
	       unmapped == LEN - KB_PAGE, "unmap the rest (%llu bytes)",
	       (unsigned long long)unmapped);
	tap_ok(iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == 0,
	       "no kernel mapping left");
	kb_file_fill(m, 6 * KB_PAGE, 0x5a, KB_PAGE);
	blocked_write("after unmap", m, 6 * KB_PAGE, IOVA + 6 * KB_PAGE, 0x5a);
	close(m);
}

/*
 * ioasid_copy: one IOMMU_IOAS_COPY (the destination maps the source's
 * pinned pages), never maps of the backing; DMA through the copy reaches
 * the source's memory; a later composed cut of the copy maps its pieces
 * back from the destination's own record; bad input changes nothing and
 * reaches no kernel call.
 */
#define COPY_SRC	0x6000000ull
#define COPY_DST	0x7000000ull

static void suite_copy(uint32_t ioas)
{
	uint8_t pat[XFER];
	uint64_t iova = COPY_SRC, dst = COPY_DST, unmapped = 0, before;
	uint32_t flags = IOASID_MAP_READ | IOASID_MAP_WRITE |
			 IOASID_MAP_FIXED_IOVA;
	int m = kb_memfd(LEN, 0x5a);
	struct trace t;
	uint32_t src = 0;
	int r;

	if (!tap_ok(m >= 0 && ioasid_ioas_alloc(ctx, 0, &src) == 0 &&
		    ioasid_map_file(ctx, src, m, 0, LEN / 2, flags, &iova) == 0 &&
		    (iova = COPY_SRC + LEN / 2,
		     ioasid_map_file(ctx, src, m, LEN / 2, LEN / 2, flags,
				     &iova) == 0),
		    "copy: a second IOAS with the memfd in two mappings (%s)",
		    kb_err(ctx)))
		goto out;
	t = trace_now();
	r = ioasid_copy(ctx, ioas, src, COPY_SRC + KB_PAGE, LEN - 2 * KB_PAGE,
			flags, &dst);
	tap_ok(r == 0 && dst == COPY_DST, "ioasid_copy of 14 pages across "
	       "both mappings into edu's IOAS at 0x%llx (%s)",
	       (unsigned long long)COPY_DST, kb_err(ctx));
	tap_ok(since(&t, IOMMUFD_CALL_COPY) == 1 &&
	       since(&t, IOMMUFD_CALL_MAP_FILE) == 0 &&
	       since(&t, IOMMUFD_CALL_MAP) == 0,
	       "trace: 1 IOMMU_IOAS_COPY, no map of the backing (issued %llu "
	       "COPY, %llu MAP_FILE, %llu MAP)",
	       (unsigned long long)since(&t, IOMMUFD_CALL_COPY),
	       (unsigned long long)since(&t, IOMMUFD_CALL_MAP_FILE),
	       (unsigned long long)since(&t, IOMMUFD_CALL_MAP));
	tap_ok(iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == 2,
	       "the destination records the kernel's 2 areas (one per "
	       "source mapping)");
	kb_pattern(pat, sizeof(pat), 0x21);
	tap_ok(load_buffer(m, KB_PAGE, COPY_DST, pat, XFER) == 0 &&
	       edu_to_mem(&edu, 0, COPY_DST + 9 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 10 * KB_PAGE, pat, XFER),
	       "edu DMA through the copy reads memfd page 1 and writes page 10 "
	       "(the source's pages themselves)");

	/* bad input: refused before any kernel call, nothing changed */
	before = iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas));
	t = trace_now();
	dst = COPY_DST + LEN;
	r = ioasid_copy(ctx, ioas, src, COPY_SRC + LEN, KB_PAGE, flags, &dst);
	tap_ok(r == -ENOENT, "copy of an unmapped source range: ENOENT (%d: "
	       "%s)", r, kb_err(ctx));
	dst = COPY_DST;
	r = ioasid_copy(ctx, ioas, src, COPY_SRC, KB_PAGE, flags, &dst);
	tap_ok(r == -EEXIST, "copy onto a mapped destination: EEXIST (%d: %s)",
	       r, kb_err(ctx));
	tap_ok(since(&t, IOMMUFD_CALL_COPY) == 0 &&
	       iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == before,
	       "neither reached the kernel; the destination still has %llu "
	       "kernel mappings", (unsigned long long)before);

	/* a composed cut of the copy maps its pieces back from the record */
	t = trace_now();
	tap_ok(ioasid_unmap(ctx, ioas, COPY_DST + 3 * KB_PAGE, KB_PAGE, 0,
			    &unmapped) == 0 && unmapped == KB_PAGE &&
	       since(&t, IOMMUFD_CALL_UNMAP) == 1 &&
	       since(&t, IOMMUFD_CALL_MAP_FILE) == 2,
	       "cut one page out of the copy (large-page IOAS: 1 UNMAP, 2 "
	       "MAP_FILE of the destination's pieces) (%s)", kb_err(ctx));
	kb_pattern(pat, sizeof(pat), 0x43);
	tap_ok(load_buffer(m, KB_PAGE, COPY_DST, pat, XFER) == 0 &&
	       edu_to_mem(&edu, 0, COPY_DST + 4 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 5 * KB_PAGE, pat, XFER),
	       "DMA to the kept pages of the copy still lands in the memfd");
	tap_ok(ioasid_unmap(ctx, ioas, COPY_DST, LEN, 0, &unmapped) == 0 &&
	       unmapped == LEN - 3 * KB_PAGE &&
	       iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == 0,
	       "unmap the copy (%llu bytes)", (unsigned long long)unmapped);
out:
	if (src)
		ioasid_ioas_destroy(ctx, src);
	if (m >= 0)
		close(m);
}

static void suite_user_memory(uint32_t ioas)
{
	uint8_t pat[XFER];
	uint64_t iova = IOVA + 0x100000;
	uint8_t *buf = mmap(NULL, 4 * KB_PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (!tap_ok(buf != MAP_FAILED, "anonymous buffer"))
		return;
	memset(buf, 0x33, 4 * KB_PAGE);
	kb_pattern(pat, sizeof(pat), 0x42);
	memcpy(buf, pat, XFER);
	tap_ok(ioasid_map_user(ctx, ioas, buf, 4 * KB_PAGE, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova) == 0, "map_user of an anonymous buffer "
	       "(IOMMU_IOAS_MAP) (%s)", kb_err(ctx));
	tap_ok(dma_copy(iova, iova + 2 * KB_PAGE, XFER) == 0 &&
	       !memcmp(buf + 2 * KB_PAGE, pat, XFER),
	       "edu DMA copies inside user memory");
	tap_ok(ioasid_unmap(ctx, ioas, iova, 4 * KB_PAGE, 0, NULL) == 0,
	       "unmap user memory");
	munmap(buf, 4 * KB_PAGE);
}

/*
 * A memfd sealed against writing.  The kernel's IOMMU_IOAS_MAP_FILE does
 * not look at seals: mapped writable, edu's writes landed where write()
 * is refused.  The library maps such a file readable only.
 */
static void suite_write_seal(uint32_t ioas)
{
	uint64_t sealed_iova = IOVA + 0x800000, dst_iova = IOVA + 0x900000;
	uint64_t nr0 = iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)), iova;
	uint8_t pat[XFER];
	int sealed, dst = kb_memfd(LEN, 0x00), r;

	kb_pattern(pat, sizeof(pat), 0x2c);
	sealed = kb_write_sealed_memfd(LEN, 0x5a, pat, XFER);
	if (!tap_ok(sealed >= 0 && dst >= 0, "memfd sealed with F_SEAL_WRITE"))
		goto out;
	kb_writable_map_refused(ctx, ioas, sealed, sealed_iova, LEN,
				"F_SEAL_WRITE");
	tap_ok(iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == nr0,
	       "no kernel mapping made");
	iova = sealed_iova;
	tap_ok(ioasid_map_file(ctx, ioas, sealed, 0, LEN, IOASID_MAP_READ |
			       IOASID_MAP_FIXED_IOVA, &iova) == 0,
	       "mapped readable only (%s)", kb_err(ctx));
	iova = dst_iova;
	tap_ok(ioasid_map_file(ctx, ioas, dst, 0, LEN, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova) == 0, "a second memfd mapped writable "
	       "(%s)", kb_err(ctx));
	tap_ok(dma_copy(sealed_iova, dst_iova, XFER) == 0 &&
	       kb_file_equals(dst, 0, pat, XFER),
	       "edu reads the sealed memfd (copied into the second one)");
	blocked_write("write-sealed memfd", sealed, KB_PAGE,
		      sealed_iova + KB_PAGE, 0x5a);

	/* sealing what is mapped writable: the kernel's own rules */
	r = fcntl(dst, F_ADD_SEALS, F_SEAL_WRITE);
	tap_ok(r < 0 && errno == EBUSY, "F_SEAL_WRITE of a memfd whose "
	       "pages iommufd pins is refused with EBUSY (%s)",
	       r ? strerror(errno) : "taken");
	tap_ok(fcntl(dst, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == 0,
	       "F_SEAL_FUTURE_WRITE is taken");
	kb_writable_map_refused(ctx, ioas, dst, dst_iova + LEN, LEN,
				"F_SEAL_FUTURE_WRITE");
	tap_ok(edu_to_mem(&edu, 0, dst_iova + KB_PAGE, XFER) == 0 &&
	       kb_file_equals(dst, KB_PAGE, pat, XFER),
	       "the mapping made before the seal stays writable (as mmap's)");
	ioasid_unmap(ctx, ioas, sealed_iova, LEN, 0, NULL);
	ioasid_unmap(ctx, ioas, dst_iova, LEN, 0, NULL);
	tap_ok(iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == nr0,
	       "unmapped");
out:
	if (sealed >= 0)
		close(sealed);
	if (dst >= 0)
		close(dst);
}

/*
 * A cut of user memory the process has unmapped meanwhile: on a large-page
 * IOAS the composed cut cannot map the kept pieces back (EFAULT), nor the
 * whole mapping: the call fails, says what the kernel lost, and the
 * library no longer lists it.  On a page-granular IOAS the kernel cuts:
 * nothing needs the memory again, the cut works and the rest stays.
 */
static void user_memory_gone(uint32_t plain, uint32_t flags,
			     const char *what)
{
	struct ioasid_ioas_info info = { .size = sizeof(info) };
	uint64_t iova = IOVA + 0x400000;
	uint32_t ioas;
	void *buf = mmap(NULL, 8 * KB_PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int r;

	if (!tap_ok(buf != MAP_FAILED &&
		    ioasid_ioas_alloc(ctx, flags, &ioas) == 0 &&
		    ioasid_device_replace(ctx, dev, ioas, 0) == 0 &&
		    ioasid_map_user(ctx, ioas, buf, 8 * KB_PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova) == 0,
		    "%s: user memory mapped (%s)", what, kb_err(ctx)))
		return;
	munmap(buf, 8 * KB_PAGE);
	r = ioasid_unmap(ctx, ioas, iova + 3 * KB_PAGE, KB_PAGE, 0, NULL);
	ioasid_ioas_get_info(ctx, ioas, &info);
	if (flags & IOASID_IOAS_PAGE_GRANULAR)
		tap_ok(r == 0 && info.nr_mappings == 2 &&
		       info.bytes_mapped == 7 * KB_PAGE &&
		       iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == 2,
		       "%s: the kernel cuts without the memory: %d, %llu "
		       "mappings, %llu bytes left", what, r,
		       (unsigned long long)info.nr_mappings,
		       (unsigned long long)info.bytes_mapped);
	else
		tap_ok(r == -EFAULT && info.nr_mappings == 0 &&
		       info.bytes_mapped == 0 &&
		       iommufd_test_nr_mappings(kb_be_ioas(ctx, ioas)) == 0 &&
		       strstr(ioasid_last_error(ctx), "the kernel lost") &&
		       strstr(ioasid_last_error(ctx), "(32768 bytes)"),
		       "%s: the composed cut fails (%s), the library drops "
		       "what the kernel lost (%llu mappings, %llu bytes left): %s",
		       what, strerror(-r),
		       (unsigned long long)info.nr_mappings,
		       (unsigned long long)info.bytes_mapped, kb_err(ctx));
	tap_ok(ioasid_device_replace(ctx, dev, plain, 0) == 0 &&
	       ioasid_ioas_destroy(ctx, ioas) == 0, "%s: edu back, IOAS "
	       "destroyed (%s)", what, kb_err(ctx));
}

static void suite_hugetlb(uint32_t ioas)
{
	uint64_t iova = IOVA + 0x200000;	/* 2 MiB aligned */
	uint8_t pat[XFER], *p;
	int m = memfd_create("ioasid-kb-huge", MFD_CLOEXEC | MFD_HUGETLB |
			     MFD_ALLOW_SEALING);

	if (m < 0 || ftruncate(m, 0x200000) ||
	    fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK)) {
		tap_skip("no hugetlbfs memfd", "hugetlbfs mapping");
		if (m >= 0)
			close(m);
		return;
	}
	/* hugetlbfs has no write(): go through a mapping */
	p = mmap(NULL, 0x200000, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	if (p == MAP_FAILED) {
		tap_skip("cannot mmap the huge page", "hugetlbfs mapping");
		close(m);
		return;
	}
	kb_pattern(pat, sizeof(pat), 0x99);
	memcpy(p + 0x1000, pat, XFER);
	tap_ok(ioasid_map_file(ctx, ioas, m, 0, 0x200000, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova) == 0, "map_file of a 2 MiB hugetlbfs "
	       "memfd (%s)", kb_err(ctx));
	tap_ok(dma_copy(iova + 0x1000, iova + 0x1ff000, XFER) == 0 &&
	       !memcmp(p + 0x1ff000, pat, XFER),
	       "edu DMA inside the huge page");
	tap_ok(ioasid_unmap(ctx, ioas, iova, 0x200000, 0, NULL) == 0,
	       "unmap the huge page");
	munmap(p, 0x200000);
	close(m);
}

/* A private guest_memfd page cannot back DMA: refused, no signal. */
static void private_guest_memfd(uint32_t ioas, int vm)
{
	uint64_t iova = IOVA + 0x500000;
	int g = -1, r;

	if (kvm_create_guest_memfd(vm, 4 * KB_PAGE, GUEST_MEMFD_FLAG_MMAP,
				   &g) < 0) {
		tap_skip("no private guest_memfd with MMAP", "private "
			 "guest_memfd refused");
		return;
	}
	r = ioasid_map_file(ctx, ioas, g, 0, 4 * KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA, &iova);
	tap_ok(r == -EPERM, "a private guest_memfd is refused with EPERM (%d: "
	       "%s)", r, kb_err(ctx));
	close(g);
}

static void suite_guest_memfd(uint32_t ioas)
{
	uint64_t iova = IOVA + 0x400000;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1, g = -1, r;
	uint8_t pat[XFER], *p;

	if (kvm >= 0)
		vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0 || kvm_create_guest_memfd(vm, 4 * KB_PAGE,
					     GUEST_MEMFD_FLAG_MMAP |
					     GUEST_MEMFD_FLAG_INIT_SHARED,
					     &g) < 0) {
		tap_skip("no guest_memfd with MMAP|INIT_SHARED", "guest_memfd");
		goto out;
	}
	r = ioasid_map_file(ctx, ioas, g, 0, 4 * KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA, &iova);
	if (!tap_ok(r == 0, "map_file of a shared guest_memfd (mmap + "
		    "IOMMU_IOAS_MAP: MAP_FILE refuses guest_memfd) (%s)",
		    kb_err(ctx)))
		goto out;
	p = mmap(NULL, 4 * KB_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0);
	if (p != MAP_FAILED) {
		kb_pattern(pat, sizeof(pat), 0x5c);
		memcpy(p, pat, XFER);
		tap_ok(dma_copy(iova, iova + 3 * KB_PAGE, XFER) == 0 &&
		       !memcmp(p + 3 * KB_PAGE, pat, XFER),
		       "edu DMA inside guest_memfd");
		munmap(p, 4 * KB_PAGE);
	}
	tap_ok(ioasid_unmap(ctx, ioas, iova, 4 * KB_PAGE, 0, NULL) == 0,
	       "unmap guest_memfd");
	private_guest_memfd(ioas, vm);
out:
	if (g >= 0)
		close(g);
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
}

/* What a page-granular layout costs: 2 MiB to shared and back. */
static void convert_cost(uint32_t rio)
{
	struct ioasid_iova_range r = { 0x8000000, 0x81fffff };
	uint64_t iova = r.start;
	struct timespec t0, t1, t2;
	int m = kb_memfd(0x200000, 0);
	struct trace t, t_mid;

	if (m < 0 || ioasid_map_file(ctx, rio, m, 0, 0x200000, IOASID_MAP_READ |
				     IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				     &iova) < 0) {
		tap_skip("cannot map 2 MiB", "conversion cost");
		if (m >= 0)
			close(m);
		return;
	}
	t = trace_now();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tap_ok(ioasid_convert(ctx, rio, &r, 1, IOASID_CONVERT_SHARED, NULL) ==
	       0 && iommufd_test_nr_mappings(kb_be_ioas(ctx, rio)) == 1 + 2,
	       "2 MiB to shared: one more kernel mapping");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	t_mid = trace_now();
	tap_ok(since(&t, IOMMUFD_CALL_MAP_FILE) == 1 &&
	       since(&t, IOMMUFD_CALL_MAP) == 0,
	       "2 MiB to shared: one IOMMU_IOAS_MAP_FILE (%llu)",
	       (unsigned long long)since(&t, IOMMUFD_CALL_MAP_FILE));
	tap_ok(ioasid_convert(ctx, rio, &r, 1, IOASID_CONVERT_PRIVATE, NULL) ==
	       0, "and back to private");
	clock_gettime(CLOCK_MONOTONIC, &t2);
	tap_ok(since(&t_mid, IOMMUFD_CALL_CUT) == 1 &&
	       since(&t_mid, IOMMUFD_CALL_UNMAP) == 0,
	       "2 MiB to private: one VFIO_IOMMU_UNMAP_DMA (%llu)",
	       (unsigned long long)since(&t_mid, IOMMUFD_CALL_CUT));
	tap_diag("{\"bench\":\"kb_iommufd\",\"metric\":\"convert_2m_to_shared\","
		 "\"value\":%.2f,\"unit\":\"ms\",\"calls\":%llu}",
		 ((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6),
		 (unsigned long long)(since(&t, IOMMUFD_CALL_MAP_FILE)));
	tap_diag("{\"bench\":\"kb_iommufd\",\"metric\":\"convert_2m_to_private\","
		 "\"value\":%.2f,\"unit\":\"ms\",\"calls\":%llu}",
		 ((double)(t2.tv_sec - t1.tv_sec) * 1e3 +
		  (double)(t2.tv_nsec - t1.tv_nsec) / 1e6),
		 (unsigned long long)(since(&t_mid, IOMMUFD_CALL_CUT)));
	ioasid_unmap(ctx, rio, r.start, 0x200000, 0, NULL);
	close(m);
}

/* A restricted IOAS: mapped by runs, conversions cut by the kernel. */
static void suite_restricted(uint32_t plain)
{
	struct ioasid_iova_range shared = { IOVA, IOVA + 4 * KB_PAGE - 1 };
	struct ioasid_iova_range priv = { IOVA + 2 * KB_PAGE,
					  IOVA + 3 * KB_PAGE - 1 };
	uint64_t iova = IOVA;
	uint8_t pat[XFER];
	uint32_t rio;
	int m = kb_memfd(8 * KB_PAGE, 0x6b);
	struct trace t;

	if (!tap_ok(m >= 0 && ioasid_ioas_alloc(ctx, IOASID_IOAS_RESTRICTED,
						&rio) == 0,
		    "restricted IOAS"))
		return;
	tap_ok(ioasid_map_file(ctx, rio, m, 0, 8 * KB_PAGE, IOASID_MAP_READ |
			       IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			       &iova) == 0, "map 8 private pages");
	t = trace_now();
	tap_ok(ioasid_convert(ctx, rio, &shared, 1, IOASID_CONVERT_SHARED,
			      NULL) == 0, "convert 4 pages to shared");
	tap_ok(iommufd_test_nr_mappings(kb_be_ioas(ctx, rio)) == 1 &&
	       since(&t, IOMMUFD_CALL_MAP_FILE) == 1,
	       "one kernel mapping for the run, one IOMMU_IOAS_MAP_FILE "
	       "(%llu)", (unsigned long long)since(&t, IOMMUFD_CALL_MAP_FILE));
	tap_ok(ioasid_device_replace(ctx, dev, rio, 0) == 0,
	       "replace edu's attachment to the restricted IOAS "
	       "(VFIO_DEVICE_ATTACH_IOMMUFD_PT again) (%s)",
	       kb_err(ctx));
	kb_pattern(pat, sizeof(pat), 0x21);
	tap_ok(load_buffer(m, 0, IOVA, pat, XFER) == 0 &&
	       edu_to_mem(&edu, 0, IOVA + 3 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, 3 * KB_PAGE, pat, XFER),
	       "DMA between shared pages works");
	t = trace_now();
	tap_ok(ioasid_convert(ctx, rio, &priv, 1, IOASID_CONVERT_PRIVATE,
			      NULL) == 0 &&
	       iommufd_test_nr_mappings(kb_be_ioas(ctx, rio)) == 2 &&
	       since(&t, IOMMUFD_CALL_CUT) == 1 &&
	       since(&t, IOMMUFD_CALL_UNMAP) == 0 &&
	       since(&t, IOMMUFD_CALL_MAP_FILE) == 0,
	       "page 2 to private: the kernel cut it out of the run (one "
	       "VFIO_IOMMU_UNMAP_DMA, no remap), two pieces left");
	kb_file_fill(m, 2 * KB_PAGE, 0x6b, KB_PAGE);
	blocked_write("private page", m, 2 * KB_PAGE, IOVA + 2 * KB_PAGE, 0x6b);
	tap_ok(edu_to_mem(&edu, 0, IOVA + KB_PAGE, XFER) == 0 &&
	       kb_file_equals(m, KB_PAGE, pat, XFER),
	       "DMA to the shared page next to it still works");
	convert_cost(rio);
	tap_ok(ioasid_device_replace(ctx, dev, plain, 0) == 0,
	       "replace back to the plain IOAS");
	tap_ok(ioasid_ioas_destroy(ctx, rio) == 0, "destroy the restricted "
	       "IOAS (IOMMU_DESTROY)");
	close(m);
}

/* ---- cut and conversion storms under concurrent DMA ------------------------ */

#define STORM_IOVA	0x6000000ull
#define STORM_PAGES	128u
#define STORM_CUTS	200u	/* at least; more until the DMA thread did enough */
#define STORM_DMAS	10u	/* DMAs to kept pages during the storm, at least */
#define STORM_MAX_CUTS	200000u	/* a bound only if edu stalled */
#define STORM_XFER	256u

/* Pages 4, 12, 20, ... stay mapped (and shared) throughout. */
static bool kept(uint32_t page)
{
	return page % 8 == 4;
}

struct storm {
	int memfd;
	uint8_t pat[STORM_XFER];
	atomic_bool stop;
	atomic_uint dmas, faults, wrong;
};

/* edu writes its buffer to kept pages, round robin, checking the bytes. */
static void *storm_dma(void *arg)
{
	struct storm *st = arg;

	for (uint32_t k = 4; !atomic_load(&st->stop); k = (k + 8) % STORM_PAGES) {
		uint64_t off = (uint64_t)k * KB_PAGE;

		kb_file_fill(st->memfd, off, 0, STORM_XFER);
		if (edu_to_mem(&edu, 0, STORM_IOVA + off, STORM_XFER) < 0) {
			atomic_fetch_add(&st->wrong, 1);
			break;
		}
		atomic_fetch_add(&st->dmas, 1);
		if (kb_file_is(st->memfd, off, 0, STORM_XFER))
			atomic_fetch_add(&st->faults, 1);	/* blocked */
		else if (!kb_file_equals(st->memfd, off, st->pat, STORM_XFER))
			atomic_fetch_add(&st->wrong, 1);
	}
	return NULL;
}

/* A random range of 1-3 cuttable pages (page 0 and the last included). */
static void storm_pick(uint32_t *first, uint32_t *n)
{
	uint32_t p, len = 1 + (uint32_t)(rand() % 3);

	do
		p = (uint32_t)rand() % STORM_PAGES;
	while (kept(p));
	*first = p;
	for (*n = 1; *n < len && p + *n < STORM_PAGES && !kept(p + *n); (*n)++)
		;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

enum storm_kind { STORM_CUT, STORM_CONVERT };

/*
 * Cut (unmap + map back) or convert (to private + back to shared) random
 * ranges of a 128-page mapping while edu DMAs into the kept pages.
 * Returns how many concurrent DMAs to kept pages faulted.
 */
static unsigned int storm_run(uint32_t ioas, enum storm_kind kind,
			      const char *what, struct trace *t,
			      uint32_t *nr_ops)
{
	struct storm st = { .memfd = kb_memfd(STORM_PAGES * KB_PAGE, 0x3c) };
	uint64_t iova = STORM_IOVA;
	uint32_t ops = 0, errors = 0;
	struct timespec t0;
	pthread_t thr;
	int r;

	kb_pattern(st.pat, sizeof(st.pat), 0x5d);
	if (st.memfd < 0 ||
	    ioasid_map_file(ctx, ioas, st.memfd, 0, STORM_PAGES * KB_PAGE,
			    IOASID_MAP_READ | IOASID_MAP_WRITE |
			    IOASID_MAP_FIXED_IOVA, &iova) < 0) {
		tap_ok(0, "%s: map %u pages (%s)", what, STORM_PAGES,
		       kb_err(ctx));
		return 0;
	}
	if (kind == STORM_CONVERT) {
		struct ioasid_iova_range all = {
			STORM_IOVA, STORM_IOVA + STORM_PAGES * KB_PAGE - 1,
		};

		tap_ok(ioasid_convert(ctx, ioas, &all, 1, IOASID_CONVERT_SHARED,
				      NULL) == 0, "%s: all pages to shared", what);
	}
	/* edu's buffer gets the pattern from kept page 4 */
	tap_ok(load_buffer(st.memfd, 4 * KB_PAGE, STORM_IOVA + 4 * KB_PAGE,
			   st.pat, STORM_XFER) == 0, "%s: edu buffer loaded", what);
	*t = trace_now();
	srand(15);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = pthread_create(&thr, NULL, storm_dma, &st);
	while (r == 0 && ops < STORM_MAX_CUTS &&
	       (ops < STORM_CUTS || atomic_load(&st.dmas) < STORM_DMAS)) {
		uint32_t p, n;
		uint64_t at, len, back;

		storm_pick(&p, &n);
		at = STORM_IOVA + (uint64_t)p * KB_PAGE;
		len = (uint64_t)n * KB_PAGE;
		back = at;
		if (kind == STORM_CUT) {
			errors += ioasid_unmap(ctx, ioas, at, len, 0, NULL) != 0;
			errors += ioasid_map_file(ctx, ioas, st.memfd,
						  (uint64_t)p * KB_PAGE, len,
						  IOASID_MAP_READ |
						  IOASID_MAP_WRITE |
						  IOASID_MAP_FIXED_IOVA,
						  &back) != 0;
		} else {
			struct ioasid_iova_range rg = { at, at + len - 1 };

			errors += ioasid_convert(ctx, ioas, &rg, 1,
						 IOASID_CONVERT_PRIVATE,
						 NULL) != 0;
			errors += ioasid_convert(ctx, ioas, &rg, 1,
						 IOASID_CONVERT_SHARED,
						 NULL) != 0;
		}
		ops++;
	}
	/* what the storm's calls issued: @t becomes that, per kind */
	for (int c = 0; c < IOMMUFD_CALL_NR; c++)
		t->v[c] = calls((enum iommufd_call)c) - t->v[c];
	atomic_store(&st.stop, true);
	if (r == 0)
		pthread_join(thr, NULL);
	tap_ok(r == 0 && errors == 0 && ops >= STORM_CUTS,
	       "%s: %u random cuts of 1-3 pages (first and last pages "
	       "included), each undone, %u failed, in %.0f ms", what, ops,
	       errors, ms_since(&t0));
	tap_ok(atomic_load(&st.dmas) >= STORM_DMAS && atomic_load(&st.wrong) == 0,
	       "%s: %u concurrent edu DMAs to kept pages, %u with wrong bytes",
	       what, atomic_load(&st.dmas), atomic_load(&st.wrong));
	*nr_ops = ops;
	/* leave one range cut: DMA to it must be blocked */
	if (kind == STORM_CUT)
		ioasid_unmap(ctx, ioas, STORM_IOVA + KB_PAGE, KB_PAGE, 0, NULL);
	else
		ioasid_convert(ctx, ioas, &(struct ioasid_iova_range){
				STORM_IOVA + KB_PAGE,
				STORM_IOVA + 2 * KB_PAGE - 1 }, 1,
			       IOASID_CONVERT_PRIVATE, NULL);
	kb_file_fill(st.memfd, KB_PAGE, 0x3c, KB_PAGE);
	blocked_write(what, st.memfd, KB_PAGE, STORM_IOVA + KB_PAGE, 0x3c);
	ioasid_unmap(ctx, ioas, STORM_IOVA, STORM_PAGES * KB_PAGE,
		     IOASID_UNMAP_MISSING_OK, NULL);
	close(st.memfd);
	return atomic_load(&st.faults);
}

/* Run a storm on a fresh IOAS of @flags with edu moved onto it. */
static unsigned int storm_on(uint32_t plain, uint32_t flags,
			     enum storm_kind kind, const char *what,
			     struct trace *t, uint32_t *ops)
{
	unsigned int faults = 0;
	uint32_t ioas;

	if (!tap_ok(ioasid_ioas_alloc(ctx, flags, &ioas) == 0 &&
		    ioasid_device_replace(ctx, dev, ioas, 0) == 0,
		    "%s: IOAS (flags 0x%x), edu on it (%s)", what, flags,
		    kb_err(ctx)))
		return 0;
	faults = storm_run(ioas, kind, what, t, ops);
	tap_ok(ioasid_device_replace(ctx, dev, plain, 0) == 0 &&
	       ioasid_ioas_destroy(ctx, ioas) == 0, "%s: edu back, IOAS "
	       "destroyed", what);
	return faults;
}

static void suite_storms(uint32_t plain)
{
	struct trace t;
	unsigned int faults;
	uint32_t ops = 0;

	faults = storm_on(plain, IOASID_IOAS_PAGE_GRANULAR, STORM_CUT,
			  "page-granular cut storm", &t, &ops);
	tap_ok(faults == 0, "page-granular: no concurrent DMA to a kept page "
	       "faulted (%u did)", faults);
	tap_ok(issued(&t, IOMMUFD_CALL_CUT) == ops &&
	       issued(&t, IOMMUFD_CALL_VFIO_IOAS) == ops &&
	       issued(&t, IOMMUFD_CALL_UNMAP) == 0 &&
	       issued(&t, IOMMUFD_CALL_MAP_FILE) == ops &&
	       issued(&t, IOMMUFD_CALL_MAP) == 0,
	       "page-granular: each cut was one VFIO_IOMMU_UNMAP_DMA on the "
	       "iommufd (after IOMMU_VFIO_IOAS), no remap: %llu cuts, %llu "
	       "IOMMU_IOAS_UNMAP, %llu MAP_FILE for %u map-backs",
	       (unsigned long long)issued(&t, IOMMUFD_CALL_CUT),
	       (unsigned long long)issued(&t, IOMMUFD_CALL_UNMAP),
	       (unsigned long long)issued(&t, IOMMUFD_CALL_MAP_FILE), ops);

	faults = storm_on(plain, 0, STORM_CUT, "large-page cut storm", &t,
			  &ops);
	tap_ok(issued(&t, IOMMUFD_CALL_CUT) == 0 &&
	       issued(&t, IOMMUFD_CALL_UNMAP) == ops &&
	       issued(&t, IOMMUFD_CALL_MAP_FILE) > ops,
	       "large-page: every cut composed (%llu IOMMU_IOAS_UNMAP, %llu "
	       "MAP_FILE incl. remaps, 0 compat unmaps)",
	       (unsigned long long)issued(&t, IOMMUFD_CALL_UNMAP),
	       (unsigned long long)issued(&t, IOMMUFD_CALL_MAP_FILE));
	tap_diag("{\"bench\":\"kb_iommufd\",\"metric\":\"large_page_cut_window"
		 "_faults\",\"value\":%u,\"unit\":\"DMAs\",\"cuts\":%u}",
		 faults, ops);

	faults = storm_on(plain, IOASID_IOAS_RESTRICTED, STORM_CONVERT,
			  "restricted conversion storm", &t, &ops);
	tap_ok(faults == 0, "restricted: no concurrent DMA to a kept shared "
	       "page faulted (%u did)", faults);
	tap_ok(issued(&t, IOMMUFD_CALL_CUT) == ops &&
	       issued(&t, IOMMUFD_CALL_MAP_FILE) == ops &&
	       issued(&t, IOMMUFD_CALL_UNMAP) == 0 &&
	       issued(&t, IOMMUFD_CALL_MAP) == 0,
	       "restricted: to private one compat unmap, to shared one "
	       "IOMMU_IOAS_MAP_FILE per run (%llu, %llu for %u round trips)",
	       (unsigned long long)issued(&t, IOMMUFD_CALL_CUT),
	       (unsigned long long)issued(&t, IOMMUFD_CALL_MAP_FILE), ops);
}

/* ---- coherency ----------------------------------------------------------- */

static void suite_coherency(uint32_t ioas)
{
	struct ioasid_domain_info d[4];
	struct ioasid_device_info di;
	uint32_t nr = 4, other;
	int r;

	tap_ok(ioasid_domain_list(ctx, ioas, d, &nr) == 0 && nr == 1,
	       "one domain (HWPT) on the IOAS");
	tap_ok(!!(d[0].flags & IOASID_DOMAIN_ENFORCE_COHERENCY) == sc,
	       "the domain %s coherency, as the unit's snoop control (%d)",
	       d[0].flags & IOASID_DOMAIN_ENFORCE_COHERENCY ? "enforces" :
	       "does not enforce", sc);
	tap_ok(ioasid_device_get_info(ctx, edu_info.name, &di) == 0 &&
	       !(di.flags & IOASID_DEVICE_NONCOHERENT),
	       "edu is coherent in the library's view (it cannot issue "
	       "no-snoop: no PCI Express capability, so no Enable No Snoop)");
	tap_ok(!(edu_info.flags & (IOASID_DEVICE_NO_SNOOP |
				  IOASID_DEVICE_NO_SNOOP_UNKNOWN)),
	       "inventory: edu has neither NO_SNOOP nor NO_SNOOP_UNKNOWN");

	/* snoop modes on a second IOAS, by replacing edu's attachment */
	if (!tap_ok(ioasid_ioas_alloc(ctx, 0, &other) == 0, "second IOAS"))
		return;
	ioasid_ioas_set_snoop_mode(ctx, other, IOASID_SNOOP_ALLOW);
	r = ioasid_device_replace(ctx, dev, other, 0);
	if (sc)
		tap_ok(r == -EOPNOTSUPP, "snoop mode allow on a unit with snoop "
		       "control is refused: a kernel HWPT always enforces there "
		       "(%d: %s)", r, kb_err(ctx));
	else
		tap_ok(r == 0, "snoop mode allow without snoop control works "
		       "(%s)", kb_err(ctx));
	if (r == 0)
		ioasid_device_replace(ctx, dev, ioas, 0);
	ioasid_ioas_destroy(ctx, other);
	if (ioasid_ioas_alloc(ctx, 0, &other) < 0)
		return;
	ioasid_ioas_set_snoop_mode(ctx, other, IOASID_SNOOP_ENFORCE);
	r = ioasid_device_replace(ctx, dev, other, 0);
	tap_ok(sc ? r == 0 : r == -EINVAL, "snoop mode enforce %s (%d: %s)",
	       sc ? "works with snoop control" : "is refused without it", r,
	       kb_err(ctx));
	if (r == 0)
		ioasid_device_replace(ctx, dev, ioas, 0);
	ioasid_ioas_destroy(ctx, other);
}

/* ---- nested translation --------------------------------------------------- */

/*
 * QEMU 7.2's VT-d has no nesting: a nested table for edu is refused with
 * a reason (before the kernel when the unit does not advertise nesting,
 * by IOMMU_HWPT_ALLOC otherwise), and nothing is left behind.
 */
static void suite_nested(void)
{
	struct ioasid_nested_vtd_s1 s1 = { .pgtbl_addr = 0x100000,
					   .addr_width = 48 };
	bool nesting = unit.flags & IOASID_IOMMU_NESTING;
	uint32_t parent, nested = 0, nr = 0;
	const char *why;
	int r;

	if (!tap_ok(ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT,
				      &parent) == 0, "a nest-parent IOAS (%s)",
		    kb_err(ctx)))
		return;
	r = ioasid_nested_alloc(ctx, parent, dev, IOASID_NESTED_VTD_S1, &s1,
				sizeof(s1), 0, &nested);
	why = kb_err(ctx);
	tap_ok(r == -EOPNOTSUPP && nested == 0 && strcmp(why, "-"),
	       "a VT-d stage-1 table over it for edu is refused on a unit "
	       "%s nesting (%d: %s)", nesting ? "advertising" : "without",
	       r, why);
	if (!nesting)
		tap_ok(strstr(why, "no nested translation") != NULL,
		       "the reason names the missing capability");
	tap_ok(ioasid_domain_list(ctx, parent, NULL, &nr) == 0 && nr == 0,
	       "no HWPT left behind (%u)", nr);
	if (r == 0)
		ioasid_nested_destroy(ctx, nested);
	tap_ok(ioasid_ioas_destroy(ctx, parent) == 0,
	       "the parent is destroyed (%s)", kb_err(ctx));
}

/* ---- the VFIO file ------------------------------------------------------- */

/* Does @fd refer to the character device @path? */
static bool same_cdev(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
	       S_ISCHR(a.st_mode) && a.st_rdev == b.st_rdev;
}

/* Embedded: a dup of the cdev the library holds. */
static void suite_vfio_fd(void)
{
	char path[96];
	int fd = -1, r;

	kb_cdev_path(&edu_info, path, sizeof(path));
	r = ioasid_device_get_fd(ctx, dev, &fd);
	if (!tap_ok(r == 0 && fd >= 0 && fd != cdev, "get_fd: a new "
		    "descriptor of edu's VFIO file (%s)", kb_err(ctx)))
		return;
	tap_ok(same_cdev(fd, path) && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
	       "it is %s, close-on-exec", path);
	close(fd);
	tap_ok(ioasid_device_get_fd(ctx, 4242, &fd) == -ENOENT,
	       "get_fd of an unknown device: ENOENT");
}

/* ---- KVM ----------------------------------------------------------------- */

static void check_kernel(const char *when, int want_reg, int want_unreg)
{
	int reg, unreg;

	kb_kprobes_count(&reg, &unreg);
	tap_ok(reg == want_reg && unreg == want_unreg, "%s: kernel register/"
	       "unregister hits %d/%d, expected %d/%d", when, reg, unreg,
	       want_reg, want_unreg);
}

static void check_library(uint32_t vm, const char *when)
{
	struct ioasid_vm_info vi;
	bool kernel_wbinvd = !sc;

	if (ioasid_vm_get_info(ctx, vm, &vi) < 0)
		return;
	/*
	 * The library judges from the domain and the device (edu cannot
	 * issue no-snoop): no WBINVD.  The kernel judges from the unit's
	 * capability.  They agree with snoop control, and differ, as
	 * documented, without it.
	 */
	tap_ok(!(vi.flags & IOASID_VM_WBINVD_NEEDED) && vi.nr_noncoherent == 0,
	       "%s: library verdict: WBINVD not needed (kernel: %s)%s", when,
	       kernel_wbinvd ? "registered" : "not registered",
	       kernel_wbinvd ? " - the documented difference (docs/"
	       "kernel-backends.md): edu cannot issue no-snoop" : " - agree");
	tap_ok(vi.nr_kvm_files == 1, "%s: KVM was told: the cdev is in the "
	       "VM's kvm-vfio device (nr_kvm_files %u)", when,
	       vi.nr_kvm_files);
}

static void suite_kvm(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vmfd = -1;
	int want = !sc;
	uint32_t vm;

	if (kvm >= 0)
		vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vmfd < 0) {
		tap_skip("no /dev/kvm", "KVM forwarding");
		goto out;
	}
	if (kb_kprobes_setup() < 0) {
		tap_skip("no kprobe events", "KVM forwarding");
		goto out;
	}
	if (!tap_ok(ioasid_vm_bind(ctx, vmfd, -1, &vm) == 0,
		    "vm_bind (the library creates the kvm-vfio device) (%s)",
		    kb_err(ctx)))
		goto out_kp;
	check_kernel("vm_bind", 0, 0);
	tap_ok(ioasid_device_set_vm(ctx, dev, vm) == 0, "device_set_vm "
	       "(KVM_DEV_VFIO_FILE_ADD of the cdev) (%s)",
	       kb_err(ctx));
	check_kernel("set_vm", want, 0);
	check_library(vm, "in the VM");
	tap_ok(ioasid_device_set_vm(ctx, dev, 0) == 0, "device out of the VM "
	       "(KVM_DEV_VFIO_FILE_DEL)");
	check_kernel("set_vm 0", 0, want);
	tap_ok(ioasid_device_set_vm(ctx, dev, vm) == 0, "device into the VM "
	       "again");
	check_kernel("set_vm again", want, 0);
	tap_ok(ioasid_device_detach(ctx, dev) == 0, "detach edu");
	check_kernel("detach (the kernel judges by capability, not by "
		     "attachment)", 0, 0);
	check_library(vm, "detached");
	tap_ok(ioasid_vm_unbind(ctx, vm) == 0, "vm_unbind");
	check_kernel("vm_unbind", 0, want);
out_kp:
	kb_kprobes_remove();
out:
	if (vmfd >= 0)
		close(vmfd);
	if (kvm >= 0)
		close(kvm);
}

/* ---- through ioasidd ----------------------------------------------------- */

#define GUEST_IOASIDD	"/usr/sbin/ioasidd"

struct remote {
	struct daemon_fixture d;
	struct ioasid_ctx *ctx;
	uint32_t dev, ioas, vm;
	int fd;			/* edu's cdev, from the daemon */
	int vmfd;
	struct edu edu;
	int mem;
};

static int start_daemon(struct remote *rm)
{
	struct daemon_opts o = { .backend = "iommufd", .log_level = "info" };
	int r;

	if (!getenv("IOASIDD") && access(GUEST_IOASIDD, X_OK) == 0)
		setenv("IOASIDD", GUEST_IOASIDD, 0);
	if (access(daemon_binary(), X_OK) < 0) {
		tap_skip("no ioasidd in this guest", "through ioasidd");
		return -1;
	}
	r = daemon_start(&rm->d, &o);
	if (!tap_ok(r == 0, "ioasidd --backend iommufd started (%s)",
		    r ? strerror(-r) : "ok"))
		return -1;
	r = ioasid_new(rm->d.uri, &rm->ctx);
	if (!tap_ok(r == 0, "connected to it (%s)",
		    r ? ioasid_last_error(NULL) : "ok"))
		return -1;
	kb_log_to_tap(rm->ctx, LOG_NOTICE);
	return 0;
}

/*
 * The daemon's descriptors once it has finished every request sent so
 * far.  It closes its copy of a descriptor a reply passes only after
 * sendmsg(), so this process can hold the reply (and count) before that
 * close.  ioasidd serves requests in one thread and reads a connection's
 * next request only when the previous one is done (sent or queued, its
 * descriptors closed): the reply to a further request on the same
 * connection orders the count after the close.
 */
static int settled_fds(struct remote *rm)
{
	struct ioasid_status st;

	if (ioasid_get_status(rm->ctx, &st) < 0)
		return -1;
	return daemon_count_fds(&rm->d);
}

/* The daemon binds edu; its cdev comes over the socket. */
static int remote_fd(struct remote *rm)
{
	char path[96];
	int before, after, r;

	r = ioasid_device_bind(rm->ctx, edu_info.name, -1, &rm->dev);
	if (!tap_ok(r == 0, "the daemon opens and binds edu (%s)",
		    kb_err(rm->ctx)))
		return -1;
	before = settled_fds(rm);
	r = ioasid_device_get_fd(rm->ctx, rm->dev, &rm->fd);
	kb_cdev_path(&edu_info, path, sizeof(path));
	if (!tap_ok(r == 0 && same_cdev(rm->fd, path), "get_fd through "
		    "ioasidd: %s, passed with SCM_RIGHTS (%s)", path,
		    kb_err(rm->ctx)))
		return -1;
	tap_ok(fcntl(rm->fd, F_GETFD) & FD_CLOEXEC, "received close-on-exec");
	after = settled_fds(rm);
	tap_ok(before >= 0 && after == before, "the daemon kept no copy of "
	       "what it sent (%d descriptors, before %d)", after, before);
	return 0;
}

/* BAR0 and DMA through the received cdev, into the daemon's IOAS. */
static void remote_dma(struct remote *rm)
{
	uint8_t pat[XFER];
	uint64_t iova = IOVA;

	rm->mem = kb_memfd(LEN, 0x5a);
	if (!tap_ok(rm->mem >= 0 &&
		    ioasid_ioas_alloc(rm->ctx, 0, &rm->ioas) == 0 &&
		    ioasid_map_file(rm->ctx, rm->ioas, rm->mem, 0, LEN,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova) == 0 &&
		    ioasid_device_attach(rm->ctx, rm->dev, rm->ioas, 0) == 0,
		    "the daemon maps a memfd and attaches edu (%s)",
		    kb_err(rm->ctx)))
		return;
	if (!tap_ok(edu_open(&rm->edu, rm->fd) == 0, "edu BAR0 mapped and "
		    "bus mastering on, through the received cdev"))
		return;
	kb_pattern(pat, sizeof(pat), 0x3c);
	tap_ok(pwrite(rm->mem, pat, XFER, 0) == XFER &&
	       edu_to_buf(&rm->edu, IOVA, 0, XFER) == 0 &&
	       edu_to_mem(&rm->edu, 0, IOVA + KB_PAGE, XFER) == 0 &&
	       kb_file_equals(rm->mem, KB_PAGE, pat, XFER),
	       "edu DMA through the daemon's IOAS: page 0 copied to page 1");
	edu_close(&rm->edu);
}

static void remote_vm_info(struct remote *rm, uint32_t want_devices)
{
	struct ioasid_vm_info vi;

	tap_ok(ioasid_vm_get_info(rm->ctx, rm->vm, &vi) == 0 &&
	       vi.nr_devices == want_devices &&
	       vi.nr_kvm_files == want_devices &&
	       vi.owner_pid == (uint32_t)getpid(),
	       "the daemon's account: %u device(s) in VM %u, as many VFIO "
	       "files added by the VMM, owner pid %u",
	       want_devices, rm->vm, (unsigned int)getpid());
}

/*
 * Why the library registers in the VMM: the daemon, told to do it itself
 * (no IOASID_SET_VM_CLIENT_REGISTERED, as libioasid before it), gets EIO
 * from KVM, says why, and changes nothing.
 */
static void remote_daemon_cannot(struct remote *rm)
{
	struct ioasid_op op;
	int r;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_SET_VM);
	op.dev_id = rm->dev;
	op.vm_id = rm->vm;
	r = remote_send_raw(rm->ctx, &op);
	tap_ok(r == -EIO && strstr(op.errmsg, "VMM's process"), "the daemon "
	       "itself cannot add the cdev to this VM's kvm-vfio: %d (%s)", r,
	       op.errmsg);
	check_kernel("the daemon's attempt", 0, 0);
	remote_vm_info(rm, 0);
}

/* set_vm: this process adds the cdev to kvm-vfio; the kernel judges. */
static void remote_kvm(struct remote *rm)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), want = !sc;

	if (kvm >= 0)
		rm->vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (kvm >= 0)
		close(kvm);
	if (rm->vmfd < 0 || kb_kprobes_setup() < 0) {
		tap_skip("no /dev/kvm or kprobe events", "KVM through ioasidd");
		return;
	}
	if (!tap_ok(ioasid_vm_bind(rm->ctx, rm->vmfd, -1, &rm->vm) == 0,
		    "vm_bind through ioasidd (kvm-vfio created here) (%s)",
		    kb_err(rm->ctx)))
		goto out;
	remote_daemon_cannot(rm);
	tap_ok(ioasid_device_set_vm(rm->ctx, rm->dev, rm->vm) == 0,
	       "set_vm through ioasidd: KVM_DEV_VFIO_FILE_ADD in the VMM "
	       "(%s)", kb_err(rm->ctx));
	check_kernel("ioasidd set_vm", want, 0);
	remote_vm_info(rm, 1);
	tap_ok(ioasid_device_set_vm(rm->ctx, rm->dev, 0) == 0,
	       "set_vm 0 through ioasidd (FILE_DEL in the VMM)");
	check_kernel("ioasidd set_vm 0", 0, want);
	remote_vm_info(rm, 0);
	tap_ok(ioasid_device_set_vm(rm->ctx, rm->dev, rm->vm) == 0,
	       "set_vm again");
	check_kernel("ioasidd set_vm again", want, 0);
	tap_ok(ioasid_device_unbind(rm->ctx, rm->dev) == 0, "unbind edu "
	       "while in the VM");
	rm->dev = 0;
	check_kernel("ioasidd unbind (FILE_DEL after the daemon's answer)", 0,
		     want);
	remote_vm_info(rm, 0);
	tap_ok(ioasid_vm_unbind(rm->ctx, rm->vm) == 0, "vm_unbind");
	check_kernel("ioasidd vm_unbind", 0, 0);
out:
	kb_kprobes_remove();
}

static void suite_remote(void)
{
	struct remote rm = { .fd = -1, .vmfd = -1, .mem = -1 };
	int status;

	rm.d.pid = -1;
	if (start_daemon(&rm) == 0 && remote_fd(&rm) == 0) {
		remote_dma(&rm);
		remote_kvm(&rm);
	}
	if (rm.dev)
		ioasid_device_unbind(rm.ctx, rm.dev);
	if (rm.ctx)
		ioasid_unref(rm.ctx);
	if (rm.fd >= 0)
		close(rm.fd);
	if (rm.vmfd >= 0)
		close(rm.vmfd);
	if (rm.mem >= 0)
		close(rm.mem);
	if (rm.d.pid > 0) {
		status = daemon_stop(&rm.d);
		tap_ok(status == 0, "ioasidd exits cleanly (%d)", status);
	}
}

/*
 * Two clients of one ioasidd: each session has its own iommufd, so a
 * device file bound in the second session resolves page table ids in
 * that iommufd only.  The first client maps a memfd and DMAs through its
 * IOAS; the second binds an edu with its own cdev and then with one
 * received from the daemon and tries every small object id with the raw
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT (with one iommufd per daemon, the first
 * client's IOAS and HWPT are among them and the attach succeeds).  With
 * the rig's second edu (run.sh), the first keeps edu attached, its HWPT
 * alive and DMA landing, throughout; with one edu it releases it for the
 * second (its IOAS and mapping stay) and binds again afterwards.
 */
#define TENANT_IDS	64

struct id_scan {
	int ok, enoent, einval, other;
};

#ifdef HAVE_KERNEL_IOMMUFD_H
static struct id_scan scan_attach(int fd)
{
	struct id_scan n = { 0 };

	for (uint32_t id = 1; id <= TENANT_IDS; id++) {
		struct vfio_device_attach_iommufd_pt a = {
			.argsz = sizeof(a), .pt_id = id,
		};

		if (ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a) == 0)
			n.ok++;
		else if (errno == ENOENT)
			n.enoent++;
		else if (errno == EINVAL)
			n.einval++;
		else
			n.other++;
	}
	return n;
}

static void check_scan(int fd, const char *which)
{
	struct id_scan n = scan_attach(fd);

	/* EINVAL: the id of this session's own device object, not a PT */
	tap_ok(n.ok == 0 && n.other == 0 && n.einval <= 1 &&
	       n.enoent >= TENANT_IDS - 1,
	       "second client, %s: raw VFIO_DEVICE_ATTACH_IOMMUFD_PT to ids "
	       "1..%d refused by the kernel: %d ENOENT, %d EINVAL (its own "
	       "device object), %d attached, %d other", which, TENANT_IDS,
	       n.enoent, n.einval, n.ok, n.other);
}
#else
static void check_scan(int fd, const char *which)
{
	(void)fd;
	(void)which;
	tap_skip("built without the 7.3 uAPI headers", "raw attach scan");
}
#endif

/* The VFIO cdev of PCI device @name now, or false. */
static bool cdev_of(const char *name, char *path, size_t len)
{
	char dir[160];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/vfio-dev", name);
	d = opendir(dir);
	while (d && !found && (e = readdir(d)))
		if (!strncmp(e->d_name, "vfio", 4)) {
			snprintf(path, len, "/dev/vfio/devices/%s", e->d_name);
			found = access(path, F_OK) == 0;
		}
	if (d)
		closedir(d);
	return found;
}

static int sysfs_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/*
 * The rig's second edu (run.sh gives QEMU two; /init binds only the
 * first): bound to vfio-pci here, before the daemon reads its inventory.
 * Its name in @name, or false when there is none or it does not bind.
 */
static bool second_edu_bind(char *name, size_t len)
{
	char p[320], node[300];
	bool found = false;
	struct dirent *e;
	DIR *d = opendir("/sys/bus/pci/devices");

	while (d && !found && (e = readdir(d))) {
		char v[16] = "", dv[16] = "";
		FILE *f;

		if (e->d_name[0] == '.' || !strcmp(e->d_name, edu_info.name))
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vendor",
			 e->d_name);
		if ((f = fopen(p, "re"))) {
			if (!fgets(v, sizeof(v), f))
				v[0] = 0;
			fclose(f);
		}
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/device",
			 e->d_name);
		if ((f = fopen(p, "re"))) {
			if (!fgets(dv, sizeof(dv), f))
				dv[0] = 0;
			fclose(f);
		}
		if (!strncmp(v, "0x1234", 6) && !strncmp(dv, "0x11e8", 6) &&
		    strlen(e->d_name) < len) {
			memcpy(name, e->d_name, strlen(e->d_name) + 1);
			found = true;
		}
	}
	if (d)
		closedir(d);
	if (!found)
		return false;
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver_override", name);
	if (sysfs_write(p, "vfio-pci") < 0 ||
	    sysfs_write("/sys/bus/pci/drivers_probe", name) < 0)
		return false;
	/* vfio-pci's probe makes the cdev and devtmpfs its node: wait for
	 * both, with a bound meant for a hang */
	for (int i = 0; i < 600 && !cdev_of(name, node, sizeof(node)); i++)
		usleep(100 * 1000);
	return cdev_of(name, node, sizeof(node));
}

static void second_edu_release(const char *name)
{
	char p[160];

	if (strlen(name) > 64)
		return;

	sysfs_write("/sys/bus/pci/drivers/vfio-pci/unbind", name);
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver_override", name);
	sysfs_write(p, "\n");
}

/* Client A: edu in its IOAS, its cdev received, BAR0 mapped. */
static bool first_bind(struct remote *a, const char *when)
{
	bool ok = ioasid_device_bind(a->ctx, edu_info.name, -1, &a->dev) == 0 &&
		  ioasid_device_attach(a->ctx, a->dev, a->ioas, 0) == 0 &&
		  ioasid_device_get_fd(a->ctx, a->dev, &a->fd) == 0 &&
		  edu_open(&a->edu, a->fd) == 0;

	return tap_ok(ok, "first client %s: edu bound, attached to its IOAS, "
		      "cdev received (%s)", when, kb_err(a->ctx));
}

/* DMA through A's IOAS lands in A's memfd. */
static void first_dma(struct remote *a, uint8_t seed, const char *when)
{
	uint8_t pat[XFER];

	kb_pattern(pat, sizeof(pat), seed);
	tap_ok(pwrite(a->mem, pat, XFER, 0) == XFER &&
	       edu_to_buf(&a->edu, IOVA, 0, XFER) == 0 &&
	       edu_to_mem(&a->edu, 0, IOVA + 2 * KB_PAGE, XFER) == 0 &&
	       kb_file_equals(a->mem, 2 * KB_PAGE, pat, XFER),
	       "first client %s: edu DMA through its IOAS lands in its memfd",
	       when);
}

static void first_release(struct remote *a)
{
	edu_close(&a->edu);
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	if (a->dev && ioasid_device_unbind(a->ctx, a->dev) == 0)
		a->dev = 0;
}

/* The second client, with the PCI device @name. */
static void second_client(struct remote *a, struct ioasid_ctx *b,
			  const char *name)
{
	uint64_t dst = IOVA;
	uint32_t bdev = 0, bioas = 0;
	char path[300];
	int own = -1, recv = -1, r = -ENODEV;

	if (cdev_of(name, path, sizeof(path)))
		own = open(path, O_RDWR | O_CLOEXEC);
	if (own >= 0)
		r = ioasid_device_bind(b, name, own, &bdev);
	if (tap_ok(r == 0, "second client binds edu %s with its own cdev (%s)",
		   name, kb_err(b))) {
		check_scan(own, "its own cdev");
		ioasid_device_unbind(b, bdev);
	}
	if (own >= 0)
		close(own);		/* only then is edu free to bind again */
	bdev = 0;
	if (!tap_ok(ioasid_device_bind(b, name, -1, &bdev) == 0 &&
		    ioasid_device_get_fd(b, bdev, &recv) == 0,
		    "second client: the daemon binds edu, its cdev received "
		    "(%s)", kb_err(b)))
		goto out;
	check_scan(recv, "the received cdev");
	r = ioasid_device_attach(b, bdev, a->ioas, 0);
	tap_ok(r == -ENOENT, "second client: attaching edu to the first's "
	       "IOAS %u through the daemon: ENOENT (%d: %s)", a->ioas, r,
	       kb_err(b));
	if (a->dev)
		first_dma(a, 0x63, "while the second holds its edu");
	r = ioasid_ioas_alloc(b, 0, &bioas);
	if (tap_ok(r == 0, "second client allocates its own IOAS"))
		r = ioasid_copy(b, bioas, a->ioas, IOVA, KB_PAGE,
				IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA, &dst);
	tap_ok(r == -ENOENT, "second client: copy from the first's IOAS "
	       "refused, ENOENT (%d: %s)", r, kb_err(b));
out:
	if (recv >= 0)
		close(recv);
	if (bdev)
		ioasid_device_unbind(b, bdev);
	if (bioas)
		ioasid_ioas_destroy(b, bioas);
}

static void suite_two_clients(void)
{
	struct remote a = { .fd = -1, .vmfd = -1, .mem = -1 };
	struct ioasid_ctx *b = NULL;
	uint64_t iova = IOVA;
	char edu2[64];
	bool two;
	int status;

	a.d.pid = -1;
	two = second_edu_bind(edu2, sizeof(edu2));
	if (!two)
		tap_skip("the rig has no second edu bound to vfio-pci: the "
			 "first client releases its edu for the second",
			 "two clients with a device each");
	if (start_daemon(&a) < 0)
		goto out;
	a.mem = kb_memfd(LEN, 0x5a);
	if (!tap_ok(a.mem >= 0 && ioasid_ioas_alloc(a.ctx, 0, &a.ioas) == 0 &&
		    ioasid_map_file(a.ctx, a.ioas, a.mem, 0, LEN,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova) == 0,
		    "two clients: the first maps a memfd in its IOAS (%s)",
		    kb_err(a.ctx)))
		goto out;
	if (!first_bind(&a, "before"))
		goto out;
	first_dma(&a, 0x61, "before");
	if (!two)
		first_release(&a);
	if (!tap_ok(ioasid_new(a.d.uri, &b) == 0, "a second client connects "
		    "to the same ioasidd"))
		goto out;
	kb_log_to_tap(b, LOG_NOTICE);
	second_client(&a, b, two ? edu2 : edu_info.name);
	ioasid_unref(b);
	b = NULL;
	if (two || first_bind(&a, "after the second's attempts"))
		first_dma(&a, 0x62, "after the second's attempts");
	first_release(&a);
out:
	if (b)
		ioasid_unref(b);
	if (a.ctx)
		ioasid_unref(a.ctx);
	if (a.mem >= 0)
		close(a.mem);
	if (a.d.pid > 0) {
		status = daemon_stop(&a.d);
		tap_ok(status == 0, "ioasidd exits cleanly (%d)", status);
	}
	if (two)
		second_edu_release(edu2);
}

/* ---- main ---------------------------------------------------------------- */

static int setup(void)
{
	struct ioasid_iommu_info u[8];
	uint32_t nr = 8;
	char path[96];
	int r;

	r = ioasid_new("iommufd", &ctx);
	if (!tap_ok(r == 0, "ioasid_new(\"iommufd\") (%s)",
		    r ? strerror(-r) : "ok"))
		return -1;
	kb_log_to_tap(ctx, LOG_NOTICE);
	r = kb_find_edu(ctx, &edu_info);
	if (!tap_ok(r == 0 && edu_info.vfio_cdev[0], "edu in the inventory: "
		    "%s %s, behind %s, group %u", edu_info.name,
		    edu_info.vfio_cdev, edu_info.iommu, edu_info.group))
		return -1;
	if (ioasid_iommu_list(ctx, u, &nr) < 0)
		return -1;
	tap_ok(nr == 1 && !strcmp(u[0].name, edu_info.iommu),
	       "the backend offers one unit, edu's (%u)", nr);
	unit = u[0];
	sc = !!(unit.flags & IOASID_IOMMU_SNOOP_CONTROL);
	if (kb_expect_snoop() >= 0)
		tap_ok(sc == kb_expect_snoop(), "unit snoop control %d matches "
		       "QEMU's snoop-control", sc);
	kb_cdev_path(&edu_info, path, sizeof(path));
	cdev = open(path, O_RDWR | O_CLOEXEC);
	if (!tap_ok(cdev >= 0, "open %s", path))
		return -1;
	r = ioasid_device_bind(ctx, edu_info.name, cdev, &dev);
	if (!tap_ok(r == 0, "bind edu with our cdev fd "
		    "(VFIO_DEVICE_BIND_IOMMUFD) (%s)", kb_err(ctx)))
		return -1;
	return tap_ok(edu_open(&edu, cdev) == 0, "edu BAR0 mapped, bus "
		      "mastering on") ? 0 : -1;
}

static void rebind_fresh(void)
{
	struct ioasid_ctx *c2;
	uint32_t d2;

	close(cdev);
	cdev = -1;
	if (ioasid_new("iommufd", &c2) < 0)
		return;
	tap_ok(ioasid_device_bind(c2, edu_info.name, -1, &d2) == 0 &&
	       ioasid_device_unbind(c2, d2) == 0,
	       "after everything closed, edu binds again (the library opens "
	       "the cdev itself) (%s)", kb_err(c2));
	ioasid_unref(c2);
}

/* ---- hotplug ------------------------------------------------------------- */

static bool write_sysfs(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok;
}

/*
 * Wait for @type about edu on @c's event descriptor: up to 60 s, a bound
 * for a hang (the uevent reaches the monitor in milliseconds when idle).
 */
static bool wait_event(struct ioasid_ctx *c, uint32_t type)
{
	struct pollfd p = { .fd = ioasid_event_get_fd(c), .events = POLLIN };
	struct ioasid_event ev;

	for (int i = 0; i < 600; i++) {
		while (ioasid_event_read(c, &ev) == 0)
			if (ev.type == type && !strcmp(ev.name, edu_info.name))
				return true;
		poll(&p, 1, 100);
	}
	return false;
}

/* edu leaves vfio-pci and comes back: the backend's udev monitor tells. */
static void suite_hotplug(void)
{
	struct ioasid_ctx *c;
	uint32_t d;
	int r;

	if (ioasid_new("iommufd", &c) < 0)
		return;
	ioasid_event_subscribe(c, IOASID_EVENT_GROUP_DEVICE);
	if (!tap_ok(write_sysfs("/sys/bus/pci/drivers/vfio-pci/unbind",
				edu_info.name), "unbind edu from vfio-pci"))
		goto out;
	tap_ok(wait_event(c, IOASID_EVENT_DEVICE_REMOVED), "DEVICE_REMOVED "
	       "event (udev monitor: unbind)");
	r = ioasid_device_bind(c, edu_info.name, -1, &d);
	tap_ok(r == -ENODEV, "binding it now fails with ENODEV (%d: %s)", r,
	       kb_err(c));
	tap_ok(write_sysfs("/sys/bus/pci/drivers_probe", edu_info.name),
	       "probe edu again (driver_override is vfio-pci)");
	tap_ok(wait_event(c, IOASID_EVENT_DEVICE_ADDED), "DEVICE_ADDED event "
	       "(bind to vfio-pci)");
	r = ioasid_device_bind(c, edu_info.name, -1, &d);
	tap_ok(r == 0 && ioasid_device_unbind(c, d) == 0, "edu binds again "
	       "(its cdev looked up anew) (%s)", r ? kb_err(c) : "");
out:
	ioasid_unref(c);
}

int main(void)
{
	uint32_t ioas;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	if (setup() < 0)
		goto done;
	if (!tap_ok(ioasid_ioas_alloc(ctx, 0, &ioas) == 0 &&
		    ioasid_device_attach(ctx, dev, ioas, 0) == 0,
		    "IOAS allocated, edu attached (IOMMU_HWPT_ALLOC + "
		    "VFIO_DEVICE_ATTACH_IOMMUFD_PT) (%s)",
		    kb_err(ctx)))
		goto done;
	raw_hw_info();
	raw_iova_ranges(ioas);
	suite_dma(ioas);
	suite_copy(ioas);
	suite_user_memory(ioas);
	suite_write_seal(ioas);
	user_memory_gone(ioas, 0, "large-page IOAS, memory gone");
	user_memory_gone(ioas, IOASID_IOAS_PAGE_GRANULAR,
			 "page-granular IOAS, memory gone");
	suite_hugetlb(ioas);
	suite_guest_memfd(ioas);
	suite_restricted(ioas);
	suite_storms(ioas);
	suite_coherency(ioas);
	suite_nested();
	suite_vfio_fd();
	suite_kvm();
	edu_close(&edu);
	tap_ok(ioasid_device_unbind(ctx, dev) == 0 &&
	       ioasid_ioas_destroy(ctx, ioas) == 0, "unbind, destroy");
	ioasid_unref(ctx);
	ctx = NULL;
	rebind_fresh();
	suite_remote();
	suite_two_clients();
	suite_hotplug();
done:
	edu_close(&edu);
	if (ctx)
		ioasid_unref(ctx);
	if (cdev >= 0)
		close(cdev);
	return tap_done();
}
