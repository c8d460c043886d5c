/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_restart - handing the iommufd backend's kernel objects to a
 * successor process (tests/vm guest, the kernel's selftest mock devices):
 *
 *  1. A VMM's own re-exec, embedded (ioasid_ctx_export() + exec +
 *     ioasid_ctx_import()): the successor has the same kernel IOAS, HWPT
 *     and device (same kernel ids, no IOMMU_IOAS_ALLOC, no MAP_FILE: the
 *     trace counts them), the mock domain's page table still maps the
 *     memfd (IOMMU_TEST_OP_MD_CHECK_MAP), DMA written before the exec is
 *     read back and new DMA lands, the pinned pages are charged to the
 *     new image (IOMMU_IOAS_CHANGE_PROCESS: VmPin), and it maps, unmaps
 *     and tears down as usual.  Where the mock IOMMU tracks dirty pages,
 *     tracking is on: the HWPT is adopted tracking (never started again,
 *     which would clear the kernel's bits) and a read returns the pages
 *     marked dirty before the exec, none lost and none added (the IOAS
 *     is page-granular: 4 KiB IOPTEs).
 *  2. The kernel lost part of it (an IOAS destroyed, a mapping unmapped
 *     behind the library's back after the export): the import still
 *     succeeds, makes the IOAS and the mapping again (two MAP_FILE, a new
 *     kernel IOAS id), DMA to the re-made mapping lands, the log names
 *     what was made again.
 *  3. An image whose iommufd was not inherited: -EBADMSG, nothing built.
 *  3a. Nesting, embedded across exec: a vIOMMU with a vDEVICE and a
 *     nested HWPT on it (mock0 attached), a nested HWPT over the parent
 *     with mock1's PASID on it, a PASID on the parent: the successor has
 *     the same kernel vIOMMU, vDEVICE and nested HWPTs (adopted: a slot
 *     invalidated before the exec is still clear, IOMMU_TEST_OP_MD_CHECK_
 *     IOTLB, which a HWPT made again would not be), nothing made again,
 *     and invalidates through both.
 *  4. Through a real ioasidd --backend iommufd:mock: a live upgrade
 *     (ioasid_daemon_upgrade) adopts the client's HWPT (the successor's
 *     log says so) and the client's next calls (DMA, map, unmap) work.
 *  5. The same under a service manager with an fd store (crash survival,
 *     ioasidd/kstate.c): kill -9, the device's DMA while the daemon is
 *     down, restart and reclaim; a live upgrade there, which goes on with
 *     the same store entries under the same names, then kill -9 of the
 *     successor and a restart from what it stored; then what the kernel
 *     or the store lost; then a reclaim whose reply is lost with the
 *     daemon (it dies right after storing the new token): the token
 *     presented is good after the restart, spent once the reclaimer's
 *     next request showed the reply arrived.
 *  6. edu DMA-ing in a loop across a crash and across a live upgrade.
 *
 * The successor half runs in the exec'd image ("--successor ..."): it
 * sends one line per check ("1 text" or "0 text") on an inherited pipe,
 * and this program's first image prints them as TAP lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "core/base.h"
#include "core/viommu.h"
#include "ctx.h"
#include "../daemon_fixture.h"
#include "../supervisor.h"
#include "kbtest.h"

#define IOVA	0x1000000ull	/* the mock IOMMU's aperture starts here */
#define LEN	(16 * KB_PAGE)
#define IOVA2	(IOVA + 2 * LEN)

/* What the first image tells its successor (argv, decimal). */
struct handover {
	int image, pipe, mem, mem2;
	uint32_t dev, ioas, ioas2;		/* the library's ids */
	uint32_t k_ioas, k_hwpt, k_dev, k_ioas2;	/* the kernel's */
	int scenario;				/* 1: whole, 2: damaged */
	int dirty;		/* 1: tracking on, pages DIRTY_BITS dirty */
};

/* Scenario 1's dirty pages (bit n: IOVA + n pages; LEN is 16 pages). */
#define DIRTY_BITS	((1ull << 1) | (1ull << 3) | (1ull << 8) | (1ull << 15))

static int report_fd = -1;

__attribute__((format(printf, 2, 3)))
static void report(int ok, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%d ", ok);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* in this process (no successor's pipe): a case of our own */
	if (report_fd < 0) {
		tap_ok(ok, "%s", line + n);
		return;
	}
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	strcat(line, "\n");
	if (write(report_fd, line, strlen(line)) < 0)
		_exit(3);
}

static int dma(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova,
	       void *buf, uint64_t len, bool write)
{
	uint64_t done = 0;

	return ioasid_device_dma(ctx, dev, iova, buf, len,
				 write ? IOASID_DMA_WRITE : 0, &done);
}

/* VmPin of this process, in kB; -1 unknown. */
static long vm_pin_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static bool file_contains(const char *path, const char *needle)
{
	char buf[16384];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

/* ---- the successor (after exec) ----------------------------------------- */

#define SUCC_LOG "/tmp/kb_restart.successor.log"

/* Scenario 1 with tracking: on, with every bit of the predecessor's. */
static void successor_dirty(struct ioasid_ctx *ctx, const struct handover *h)
{
	struct ioasid_ioas_info ii;
	uint64_t bm[1] = { ~0ull };
	int r;

	r = ioasid_ioas_get_info(ctx, h->ioas, &ii);
	report(r == 0 && ii.dirty_flags == IOASID_IOAS_DIRTY_ON &&
	       iommufd_test_calls(kb_backend(ctx),
				  IOMMUFD_CALL_SET_DIRTY) == 0,
	       "dirty tracking is on, the HWPT adopted tracking (%llu "
	       "IOMMU_HWPT_SET_DIRTY_TRACKING) (%s)",
	       (unsigned long long)iommufd_test_calls(kb_backend(ctx),
						      IOMMUFD_CALL_SET_DIRTY),
	       kb_err(ctx));
	r = ioasid_dirty_read(ctx, h->ioas, IOVA, LEN, bm,
			      IOASID_DIRTY_NO_CLEAR);
	/*
	 * Exactly the marked pages: the IOAS is page-granular, so each page is
	 * its own 4 KiB IOPTE.  Without that the kernel may map two pages of
	 * the memfd that happen to be physically contiguous with one 8 KiB
	 * IOPTE (the mock's AMDv1 format has every power-of-two size), and a
	 * mark on one reads both dirty: that is the IOMMU's granularity, and a
	 * boot once read 0xc10e for 0x810a that way.
	 */
	report(r == 0 && bm[0] == DIRTY_BITS, "the pages marked dirty before "
	       "the exec read dirty after it, and no other (0x%llx, %s)",
	       (unsigned long long)bm[0], kb_err(ctx));
	r = ioasid_dirty_read(ctx, h->ioas, IOVA, LEN, bm, 0);
	r = r ? r : ioasid_dirty_read(ctx, h->ioas, IOVA, LEN, bm, 0);
	report(r == 0 && bm[0] == 0, "read and cleared: the next read is "
	       "empty (0x%llx, %s)", (unsigned long long)bm[0], kb_err(ctx));
	r = kb_mock_dirty(ctx, h->dev, IOVA, 1ull << 4);
	r = r == 1 ? ioasid_dirty_read(ctx, h->ioas, IOVA, LEN, bm, 0) : r;
	report(r == 0 && bm[0] == 1ull << 4, "and it tracks on (0x%llx, %d)",
	       (unsigned long long)bm[0], r);
}

static int successor(const struct handover *h)
{
	struct ioasid_ctx *ctx = NULL;
	struct backend *be;
	uint8_t out[1024], in[1024];
	uint64_t iova = IOVA2;
	long pin_before = vm_pin_kb(), pin_after;
	void *p;
	int r;

	report_fd = h->pipe;
	r = ioasid_ctx_import(h->image, &ctx);
	report(r == 0, "scenario %d: the successor imports the context (%s)",
	       h->scenario, r ? ioasid_last_error(NULL) : "ok");
	close(h->image);
	if (r < 0)
		return 1;
	be = kb_backend(ctx);
	{
		char logbuf[400] = "";
		int lf = open(SUCC_LOG, O_RDONLY | O_CLOEXEC);

		if (lf >= 0) {
			ssize_t n = read(lf, logbuf, sizeof(logbuf) - 1);

			logbuf[n > 0 ? n : 0] = 0;
			close(lf);
		}
		if (logbuf[0])
			report(2, "the import's log: %s", logbuf);
	}
	if (h->scenario == 1) {
		report(iommufd_test_ioas_id(kb_be_ioas(ctx, h->ioas)) ==
		       h->k_ioas && kb_be_domain(ctx, h->dev) &&
		       iommufd_test_hwpt_id(kb_be_domain(ctx, h->dev)) ==
		       h->k_hwpt &&
		       iommufd_test_dev_id(kb_be_device(ctx, h->dev)) ==
		       h->k_dev, "the same kernel IOAS %u, HWPT %u and "
		       "device %u, adopted", h->k_ioas, h->k_hwpt, h->k_dev);
		report(iommufd_test_calls(be, IOMMUFD_CALL_IOAS_ALLOC) == 0 &&
		       iommufd_test_calls(be, IOMMUFD_CALL_MAP_FILE) == 0 &&
		       iommufd_test_calls(be, IOMMUFD_CALL_MAP) == 0,
		       "nothing made again: %llu IOMMU_IOAS_ALLOC, %llu "
		       "MAP_FILE, %llu MAP (the mapping checked with %llu "
		       "IOMMU_IOAS_COPY)",
		       (unsigned long long)iommufd_test_calls(be,
				IOMMUFD_CALL_IOAS_ALLOC),
		       (unsigned long long)iommufd_test_calls(be,
				IOMMUFD_CALL_MAP_FILE),
		       (unsigned long long)iommufd_test_calls(be,
				IOMMUFD_CALL_MAP),
		       (unsigned long long)iommufd_test_calls(be,
				IOMMUFD_CALL_COPY));
		p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, h->mem,
			 0);
		report(p != MAP_FAILED &&
		       kb_mock_check_map(ctx, h->dev, IOVA, LEN, p) == 0,
		       "the mock domain still maps the memfd "
		       "(IOMMU_TEST_OP_MD_CHECK_MAP)");
		if (p != MAP_FAILED)
			munmap(p, LEN);
		pin_after = vm_pin_kb();
		report(!file_contains(SUCC_LOG, "made again"),
		       "the import logged nothing it could not take over");
		report(pin_before == 0 &&
		       pin_after >= (long)(LEN / 1024),
		       "IOMMU_IOAS_CHANGE_PROCESS: the pinned pages are "
		       "charged to the new image (VmPin %ld kB before the "
		       "import, %ld kB after; %llu kB mapped)", pin_before,
		       pin_after, (unsigned long long)(LEN / 1024));
		kb_pattern(out, sizeof(out), 0x51);
		r = dma(ctx, h->dev, IOVA + 0x200, in, sizeof(in), false);
		report(r == 0 && !memcmp(in, out, sizeof(in)),
		       "DMA reads back what the predecessor's device wrote "
		       "(%s)", kb_err(ctx));
		if (h->dirty)
			successor_dirty(ctx, h);
	} else {
		report(iommufd_test_calls(be, IOMMUFD_CALL_IOAS_ALLOC) == 1 &&
		       iommufd_test_ioas_id(kb_be_ioas(ctx, h->ioas)) ==
		       h->k_ioas, "the destroyed IOAS is made again (one "
		       "IOMMU_IOAS_ALLOC: kernel IOAS %u), the other adopted "
		       "(%u)", iommufd_test_ioas_id(kb_be_ioas(ctx, h->ioas2)),
		       h->k_ioas);
		report(iommufd_test_calls(be, IOMMUFD_CALL_MAP_FILE) == 2,
		       "two mappings made again: the lost IOAS's and the one "
		       "unmapped behind the library (%llu MAP_FILE)",
		       (unsigned long long)iommufd_test_calls(be,
				IOMMUFD_CALL_MAP_FILE));
		report(file_contains(SUCC_LOG, "made again") &&
		       file_contains(SUCC_LOG, "IOAS"),
		       "the log names what was made again");
		report(vm_pin_kb() >= (long)(LEN / 1024), "the pinned pages "
		       "are charged to the new image (VmPin %ld kB)",
		       vm_pin_kb());
		kb_pattern(out, sizeof(out), 0x66);
		r = dma(ctx, h->dev, IOVA + LEN, out, sizeof(out), true);
		report(r == 0 && kb_file_equals(h->mem2, 0, out, sizeof(out)),
		       "DMA into the re-made mapping lands in its memfd (%s)",
		       kb_err(ctx));
	}
	kb_pattern(out, sizeof(out), 0x52);
	r = dma(ctx, h->dev, IOVA + 0x800, out, sizeof(out), true);
	report(r == 0 && kb_file_equals(h->mem, 0x800, out, sizeof(out)),
	       "new DMA lands in the memfd (%s)", kb_err(ctx));
	r = ioasid_map_file(ctx, h->ioas, h->mem, 0, KB_PAGE,
			    IOASID_MAP_READ | IOASID_MAP_WRITE |
			    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_unmap(ctx, h->ioas, IOVA2, KB_PAGE, 0, NULL);
	report(r == 0, "the successor maps and unmaps (%s)", kb_err(ctx));
	ioasid_unref(ctx);
	return 0;
}

/* ---- the predecessor ----------------------------------------------------- */

static int raw_destroy(int ifd, uint32_t id)
{
	struct ifd_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(ifd, IFD_DESTROY, &d) < 0 ? -errno : 0;
}

static int raw_unmap(int ifd, uint32_t ioas, uint64_t iova, uint64_t len)
{
	struct ifd_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = ioas, .iova = iova,
		.length = len,
	};

	return ioctl(ifd, IFD_IOAS_UNMAP, &u) < 0 ? -errno : 0;
}

/*
 * Without CAP_IPC_LOCK (here and in the exec'd image), so that the
 * kernel charges pinned pages to the process (IOPT_PAGES_ACCOUNT_USER:
 * VmPin); with it, nothing is charged and nothing can be seen to move.
 */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	uint32_t bit = 1u << CAP_IPC_LOCK;

	if (prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0) < 0 ||
	    syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	data[0].effective &= ~bit;
	data[0].permitted &= ~bit;
	data[0].inheritable &= ~bit;
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

/* In the forked child: build, export, (damage,) exec the successor. */
static void predecessor(int scenario, int pipe_w, const char *self)
{
	struct ioasid_ctx *ctx;
	struct handover h = { .pipe = pipe_w, .scenario = scenario };
	uint64_t iova = IOVA, iova2 = IOVA + LEN, iova3 = IOVA;
	uint8_t out[1024];
	char a[16][24], *argv[18];
	int r, ifd;

	report_fd = pipe_w;
	r = drop_ipc_lock();
	report(r == 0, "scenario %d: CAP_IPC_LOCK dropped, so pinned pages "
	       "are charged (%s)", scenario, strerror(-r));
	h.mem = kb_memfd(LEN, 0);
	h.mem2 = kb_memfd(LEN, 0);
	r = kb_mock_ctx(&ctx);
	if (r == 0)
		r = ioasid_device_bind(ctx, "mock0", -1, &h.dev);
	if (r == 0)
		r = ioasid_ioas_alloc(ctx, scenario == 1 ?
				      IOASID_IOAS_PAGE_GRANULAR : 0, &h.ioas);
	if (r == 0)
		r = ioasid_map_file(ctx, h.ioas, h.mem, 0, LEN,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0 && scenario == 2)
		r = ioasid_map_file(ctx, h.ioas, h.mem2, 0, LEN,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova2);
	if (r == 0)
		r = ioasid_device_attach(ctx, h.dev, h.ioas, 0);
	if (r == 0)
		r = ioasid_ioas_alloc(ctx, 0, &h.ioas2);
	if (r == 0)
		r = ioasid_map_file(ctx, h.ioas2, h.mem2, 0, LEN,
				    IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
				    &iova3);
	kb_pattern(out, sizeof(out), 0x51);
	if (r == 0)
		r = dma(ctx, h.dev, IOVA + 0x200, out, sizeof(out), true);
	if (r == 0 && scenario == 1) {
		/* where the mock tracks: on, pages dirty at the export */
		r = ioasid_dirty_start(ctx, h.ioas, 0);
		h.dirty = r == 0;
		if (r == 0)
			r = kb_mock_dirty(ctx, h.dev, IOVA, DIRTY_BITS) == 4 ?
			    0 : -EIO;
		else if (r == -EOPNOTSUPP)
			r = 0;
		report(r == 0, "scenario 1: dirty tracking %s (%s)",
		       h.dirty ? "on, 4 pages marked dirty" :
		       "refused: the mock IOMMU cannot track", kb_err(ctx));
	}
	if (r == 0)
		r = ioasid_ctx_export(ctx, &h.image);
	report(r == 0, "scenario %d: a mock device bound, mapped, attached, "
	       "DMA-ing; the context exported (%s)", scenario, kb_err(ctx));
	if (r < 0)
		_exit(1);
	h.k_ioas = iommufd_test_ioas_id(kb_be_ioas(ctx, h.ioas));
	h.k_ioas2 = iommufd_test_ioas_id(kb_be_ioas(ctx, h.ioas2));
	h.k_hwpt = iommufd_test_hwpt_id(kb_be_domain(ctx, h.dev));
	h.k_dev = iommufd_test_dev_id(kb_be_device(ctx, h.dev));
	if (scenario == 2) {
		ifd = iommufd_test_ioas_fd(kb_be_ioas(ctx, h.ioas));
		r = raw_destroy(ifd, h.k_ioas2);
		if (r == 0)
			r = raw_unmap(ifd, h.k_ioas, IOVA + LEN, LEN);
		report(r == 0, "behind the library: kernel IOAS %u destroyed, "
		       "0x%llx+0x%llx of IOAS %u unmapped (%s)", h.k_ioas2,
		       (unsigned long long)(IOVA + LEN),
		       (unsigned long long)LEN, h.k_ioas, strerror(-r));
	}
	/* the successor's log, to find what it says */
	r = open(SUCC_LOG, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (r >= 0) {
		dup2(r, 2);
		close(r);
	}
	setenv("IOASID_LOG", "warning", 1);
	/* the memfds stay open across exec for the successor's checks */
	fcntl(h.mem, F_SETFD, 0);
	fcntl(h.mem2, F_SETFD, 0);
	snprintf(a[0], sizeof(a[0]), "%d", h.image);
	snprintf(a[1], sizeof(a[1]), "%d", h.pipe);
	snprintf(a[2], sizeof(a[2]), "%d", h.mem);
	snprintf(a[3], sizeof(a[3]), "%d", h.mem2);
	snprintf(a[4], sizeof(a[4]), "%u", h.dev);
	snprintf(a[5], sizeof(a[5]), "%u", h.ioas);
	snprintf(a[6], sizeof(a[6]), "%u", h.ioas2);
	snprintf(a[7], sizeof(a[7]), "%u", h.k_ioas);
	snprintf(a[8], sizeof(a[8]), "%u", h.k_hwpt);
	snprintf(a[9], sizeof(a[9]), "%u", h.k_dev);
	snprintf(a[10], sizeof(a[10]), "%u", h.k_ioas2);
	snprintf(a[11], sizeof(a[11]), "%d", h.scenario);
	snprintf(a[12], sizeof(a[12]), "%d", h.dirty);
	argv[0] = (char *)self;
	argv[1] = (char *)"--successor";
	for (int i = 0; i < 13; i++)
		argv[2 + i] = a[i];
	argv[15] = NULL;
	/* exec without releasing ctx: its kernel objects go on */
	execv("/proc/self/exe", argv);
	report(0, "exec of the successor: %s", strerror(errno));
	_exit(1);
}

static void nest_predecessor(int pipe_w, const char *self);
static void fault_predecessor(int pipe_w, const char *self);

/* Fork, let the child run @scenario across its exec, print its lines. */
static void run_scenario(int scenario, const char *self)
{
	char buf[8192], *line, *save = NULL;
	size_t len = 0;
	int fds[2], status = 0, n = 0;
	ssize_t got;
	pid_t pid;

	if (pipe(fds) < 0) {
		tap_ok(0, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (scenario == 3)
			nest_predecessor(fds[1], self);
		else if (scenario == 4)
			fault_predecessor(fds[1], self);
		else
			predecessor(scenario, fds[1], self);
		_exit(1);
	}
	close(fds[1]);
	while (len < sizeof(buf) - 1 &&
	       (got = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)got;
	buf[len] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '2') {
			printf("# %s\n", line + 2);
			continue;
		}
		tap_ok(line[0] == '1', "%s", line + 2);
		n++;
	}
	tap_ok(n > 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "scenario %d: the successor reported %d checks and exited 0 "
	       "(status 0x%x)", scenario, n, status);
}

/* ---- nesting across exec ------------------------------------------------- */

#define NEST_ITLB	0xbadbeef	/* the nested HWPTs' IOTLB value */
#define NEST_VID	0x20ull
#define NEST_PASID	5u

/* What the nesting scenario's first image tells its successor. */
struct nest_handover {
	int image, pipe, mem;
	uint32_t d0, d1, viommu, vdev, n1, n2;	/* the library's ids */
	uint32_t ioas;				/* the nest parent (not sent) */
	uint32_t k_viommu, k_vdev, k_n1, k_n2;	/* the kernel's */
};

static uint32_t k_vdevice(struct ioasid_ctx *c, uint32_t viommu, uint32_t id)
{
	struct viommu *v = kb_core_viommu(c, viommu);

	for (struct vdevice *vd = v ? v->vdevices : NULL; vd; vd = vd->next)
		if (vd->id == id)
			return iommufd_test_vdevice_id(vd->be);
	return 0;
}

/* IOMMU_TEST_OP_MD_CHECK_IOTLB: slot @slot of nested HWPT @hwpt is @v. */
static int k_iotlb_is(struct ioasid_ctx *c, uint32_t dev, uint32_t hwpt,
		      uint32_t slot, uint32_t v)
{
	struct be_device *bd = kb_be_device(c, dev);
	struct ifd_test_cmd cmd = {
		.size = sizeof(cmd), .op = IFD_TEST_OP_MD_CHECK_IOTLB,
		.id = hwpt, .check_iotlb = { .id = slot, .iotlb = v },
	};

	if (!bd || !hwpt)
		return -ENOENT;
	return ioctl(iommufd_test_device_iommufd(bd), IFD_TEST_CMD, &cmd) < 0 ?
	       -errno : 0;
}

static int inval_slot(struct ioasid_ctx *c, uint32_t nested, uint32_t slot)
{
	struct ioasid_nested_inval e = { .addr = slot * KB_PAGE, .npages = 1 };
	uint32_t nr = 1;

	return ioasid_nested_invalidate(c, nested, &e, &nr, NULL);
}

static int nest_successor(const struct nest_handover *h)
{
	struct ioasid_viommu_inval vi = { .virt_id = NEST_VID, .cache_id = 1 };
	struct ioasid_ctx *ctx = NULL;
	uint8_t out[1024], in[1024];
	uint32_t n1, n2, nr = 1;
	int r;

	report_fd = h->pipe;
	r = ioasid_ctx_import(h->image, &ctx);
	report(r == 0, "nesting: the successor imports the context (%s)",
	       r ? ioasid_last_error(NULL) : "ok");
	close(h->image);
	if (r < 0)
		return 1;
	n1 = iommufd_test_nested_hwpt_id(kb_be_device(ctx, h->d0));
	n2 = iommufd_test_pasid_hwpt_id(kb_be_device(ctx, h->d1), NEST_PASID);
	report(kb_k_viommu(ctx, h->viommu) == h->k_viommu &&
	       k_vdevice(ctx, h->viommu, h->vdev) == h->k_vdev,
	       "the same kernel vIOMMU %u and vDEVICE %u (%u, %u)",
	       h->k_viommu, h->k_vdev, kb_k_viommu(ctx, h->viommu),
	       k_vdevice(ctx, h->viommu, h->vdev));
	report(n1 == h->k_n1 && n2 == h->k_n2, "the same nested HWPTs: %u "
	       "(on the vIOMMU, mock0 attached) and %u (mock1's PASID %u on "
	       "it); the successor's: %u, %u", h->k_n1, h->k_n2, NEST_PASID,
	       n1, n2);
	report(!file_contains(SUCC_LOG, "made again"),
	       "the import logged nothing it could not take over");
	report(k_iotlb_is(ctx, h->d0, n1, 0, NEST_ITLB) == 0 &&
	       k_iotlb_is(ctx, h->d1, n2, 1, 0) == 0 &&
	       k_iotlb_is(ctx, h->d1, n2, 2, NEST_ITLB) == 0,
	       "the kernel's tables are the predecessor's: the slot it "
	       "invalidated is still clear (IOMMU_TEST_OP_MD_CHECK_IOTLB)");
	kb_pattern(out, sizeof(out), 0x5a);
	r = dma(ctx, h->d0, IOVA + 0x200, in, sizeof(in), false);
	report(r == 0 && !memcmp(in, out, sizeof(in)), "mock0 on the table "
	       "on the vIOMMU reads back what the predecessor's DMA wrote "
	       "(%s)", kb_err(ctx));
	r = inval_slot(ctx, h->n2, 2);
	report(r == 0 && k_iotlb_is(ctx, h->d1, n2, 2, 0) == 0,
	       "the successor invalidates the adopted nested HWPT (%s)",
	       kb_err(ctx));
	r = ioasid_viommu_invalidate(ctx, h->viommu, &vi, &nr, NULL);
	report(r == 0 && nr == 1, "and through the adopted vIOMMU (%s)",
	       kb_err(ctx));
	r = ioasid_device_pasid_detach(ctx, h->d1, NEST_PASID);
	if (r == 0)
		r = ioasid_nested_destroy(ctx, h->n2);
	report(r == 0, "the successor detaches the PASID and destroys its "
	       "table (%s)", kb_err(ctx));
	ioasid_unref(ctx);
	return 0;
}

/*
 * In @ctx (embedded or through ioasidd): mock0 and mock1, a nest parent
 * mapping h->mem, a vIOMMU with mock0's vDEVICE, a nested HWPT on it with
 * mock0 attached, one over the parent with mock1's PASID, mock1 on the
 * parent with a PASID there too; slot 1 of the second table invalidated,
 * mock0's DMA of pattern 0x5a at IOVA + 0x200.  0 or the first error.
 */
static int nest_build(struct ioasid_ctx *ctx, struct nest_handover *hp)
{
	struct ioasid_nested_selftest st = { .iotlb = NEST_ITLB };
	struct nest_handover h = *hp;
	uint64_t iova = IOVA;
	uint8_t out[1024];
	uint32_t ioas = 0;
	int r;

	r = ioasid_device_bind(ctx, "mock0", -1, &h.d0);
	h.ioas = 0;
	if (r == 0)
		r = ioasid_device_bind(ctx, "mock1", -1, &h.d1);
	if (r == 0)
		r = ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &ioas);
	if (r == 0)
		r = ioasid_map_file(ctx, ioas, h.mem, 0, LEN,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_viommu_alloc(ctx, ioas, h.d0,
					IOASID_VIOMMU_SELFTEST, 0, &h.viommu);
	if (r == 0)
		r = ioasid_vdevice_alloc(ctx, h.viommu, h.d0, NEST_VID,
					 &h.vdev);
	if (r == 0)
		r = ioasid_viommu_nested_alloc(ctx, h.viommu, h.d0,
					       IOASID_NESTED_SELFTEST, &st,
					       sizeof(st), 0, &h.n1);
	if (r == 0)
		r = ioasid_device_attach_nested(ctx, h.d0, h.n1, 0);
	if (r == 0)
		r = ioasid_nested_alloc(ctx, ioas, h.d1,
					IOASID_NESTED_SELFTEST, &st,
					sizeof(st), 0, &h.n2);
	if (r == 0)
		r = ioasid_device_attach(ctx, h.d1, ioas, 0);
	if (r == 0)
		r = ioasid_device_pasid_attach_nested(ctx, h.d1, NEST_PASID,
						      h.n2, 0);
	if (r == 0)
		r = ioasid_device_pasid_attach(ctx, h.d1, NEST_PASID + 1, ioas,
					       0);
	if (r == 0)
		r = inval_slot(ctx, h.n2, 1);
	kb_pattern(out, sizeof(out), 0x5a);
	if (r == 0)
		r = dma(ctx, h.d0, IOVA + 0x200, out, sizeof(out), true);
	h.ioas = ioas;
	*hp = h;
	return r;
}

/* What a client sees of the nesting state, for comparing. */
struct nest_view {
	struct ioasid_nested_info tables[4];
	struct ioasid_viommu_info viommus[2];
	struct ioasid_vdevice_info vdevs[2];
	struct ioasid_pasid_info pasids[4];
	uint32_t nr[4];
	int r;
};

static void nest_look(struct ioasid_ctx *c, const struct nest_handover *h,
		      struct nest_view *v, bool no_counters)
{
	memset(v, 0, sizeof(*v));
	v->nr[0] = 4, v->nr[1] = 2, v->nr[2] = 2, v->nr[3] = 4;
	v->r = ioasid_nested_list(c, h->ioas, v->tables, &v->nr[0]);
	if (v->r == 0)
		v->r = ioasid_viommu_list(c, h->ioas, v->viommus, &v->nr[1]);
	if (v->r == 0)
		v->r = ioasid_vdevice_list(c, h->ioas, v->vdevs, &v->nr[2]);
	if (v->r == 0)
		v->r = ioasid_device_pasid_list(c, h->d1, v->pasids, &v->nr[3]);
	/* sorted by PASID: the library lists them in no order */
	if (v->nr[3] == 2 && v->pasids[0].pasid > v->pasids[1].pasid) {
		struct ioasid_pasid_info t = v->pasids[0];

		v->pasids[0] = v->pasids[1];
		v->pasids[1] = t;
	}
	for (uint32_t i = 0; no_counters && i < 4; i++)
		v->tables[i].nr_invalidations = 0;
	for (uint32_t i = 0; no_counters && i < 2; i++)
		v->viommus[i].nr_invalidations = 0;
}

/* Through @c: invalidation works on both tables' kinds, DMA reads back. */
static void nest_works(struct ioasid_ctx *c, const struct nest_handover *h,
		       const char *when)
{
	struct ioasid_viommu_inval vi = { .virt_id = NEST_VID, .cache_id = 1 };
	uint8_t out[1024], in[1024];
	uint32_t nr = 1;
	int r;

	r = inval_slot(c, h->n2, 2);
	if (r == 0)
		r = ioasid_viommu_invalidate(c, h->viommu, &vi, &nr, NULL);
	tap_ok(r == 0, "%s: the client invalidates the nested table and "
	       "through the vIOMMU (%s)", when, r ? kb_err(c) : "ok");
	kb_pattern(out, sizeof(out), 0x5a);
	r = dma(c, h->d0, IOVA + 0x200, in, sizeof(in), false);
	tap_ok(r == 0 && !memcmp(in, out, sizeof(in)), "%s: mock0 on the "
	       "table on the vIOMMU reads back what it wrote (%s)", when,
	       r ? kb_err(c) : "ok");
}

static void nest_predecessor(int pipe_w, const char *self)
{
	struct nest_handover h = { .pipe = pipe_w };
	struct ioasid_ctx *ctx;
	char a[13][24], *argv[16];
	int r;

	report_fd = pipe_w;
	h.mem = kb_memfd(LEN, 0);
	r = kb_mock_ctx(&ctx);
	if (r == 0)
		r = nest_build(ctx, &h);
	if (r == 0)
		r = ioasid_ctx_export(ctx, &h.image);
	report(r == 0, "nesting: a vIOMMU, its vDEVICE, a nested HWPT on it "
	       "with mock0, one over the parent with mock1's PASID %u, a "
	       "PASID on the parent; the context exported (%s)", NEST_PASID,
	       kb_err(ctx));
	if (r < 0)
		_exit(1);
	h.k_viommu = kb_k_viommu(ctx, h.viommu);
	h.k_vdev = k_vdevice(ctx, h.viommu, h.vdev);
	h.k_n1 = iommufd_test_nested_hwpt_id(kb_be_device(ctx, h.d0));
	h.k_n2 = iommufd_test_pasid_hwpt_id(kb_be_device(ctx, h.d1),
					    NEST_PASID);
	r = open(SUCC_LOG, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (r >= 0) {
		dup2(r, 2);
		close(r);
	}
	setenv("IOASID_LOG", "warning", 1);
	fcntl(h.mem, F_SETFD, 0);
	{
		const uint32_t v[] = {
			(uint32_t)h.image, (uint32_t)h.pipe, (uint32_t)h.mem,
			h.d0, h.d1, h.viommu, h.vdev, h.n1, h.n2, h.k_viommu,
			h.k_vdev, h.k_n1, h.k_n2,
		};

		for (int i = 0; i < 13; i++)
			snprintf(a[i], sizeof(a[i]), "%u", v[i]);
	}
	argv[0] = (char *)self;
	argv[1] = (char *)"--nest-successor";
	for (int i = 0; i < 13; i++)
		argv[2 + i] = a[i];
	argv[15] = NULL;
	execv("/proc/self/exe", argv);
	report(0, "exec of the successor: %s", strerror(errno));
	_exit(1);
}

/* ---- a fault queue across exec ------------------------------------------ */

#define FQ_PAGE	(IOVA + 2 * KB_PAGE)	/* not mapped at the export */
#define FQ_PAGE2	(IOVA + 5 * KB_PAGE)	/* a request after the import */

/* What the fault queue scenario's first image tells its successor. */
struct fault_handover {
	int image, pipe, mem, fd;	/* fd: the VMM's own fault fd */
	uint32_t dev, ioas, fq, k_hwpt;
};

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* A page request at @iova: read (one, ours), page mapped, answered. */
static void fault_round_trip(struct ioasid_ctx *ctx, uint32_t dev,
			     uint32_t ioas, uint32_t fq, int mem, uint64_t iova,
			     const char *when)
{
	struct ioasid_page_request q[4];
	uint64_t at = iova;
	uint8_t out[256];
	uint32_t nr = 4;
	int r;

	r = ioasid_fault_queue_read(ctx, fq, q, &nr);
	report(r == 0 && nr == 1 && q[0].dev_id == dev && q[0].addr == iova &&
	       (q[0].perm & IOASID_MAP_WRITE) && q[0].fault_id == fq,
	       "%s: ioasid_fault_queue_read gives the page request (nr %u, "
	       "dev %u, addr 0x%llx, cookie %u, %s)", when, nr, q[0].dev_id,
	       (unsigned long long)q[0].addr, q[0].cookie, kb_err(ctx));
	if (r < 0 || nr != 1)
		return;
	r = ioasid_map_file(ctx, ioas, mem, iova - IOVA, KB_PAGE,
			    IOASID_MAP_READ | IOASID_MAP_WRITE |
			    IOASID_MAP_FIXED_IOVA, &at);
	r = r ? r : ioasid_fault_respond(ctx, fq, q[0].cookie,
					 IOASID_PAGE_RESPONSE_SUCCESS);
	report(r == 0, "%s: the page mapped, the kernel's cookie %u answered "
	       "(%s)", when, q[0].cookie, kb_err(ctx));
	kb_pattern(out, sizeof(out), (uint8_t)(iova >> 12));
	r = dma(ctx, dev, iova + 0x80, out, sizeof(out), true);
	report(r == 0 && kb_file_equals(mem, iova - IOVA + 0x80, out,
					sizeof(out)),
	       "%s: the device's retried DMA lands in the page (%d, %s)",
	       when, r, kb_err(ctx));
}

/*
 * After @event ("the exec", "the crash"): the request raised before it
 * polls readable on the VMM's own fault fd @fd and is served, a new one
 * on the adopted queue too; then the device is detached and the queue
 * destroyed.
 */
static void fault_queue_goes_on(struct ioasid_ctx *ctx, uint32_t dev,
				uint32_t ioas, uint32_t fq, int mem, int fd,
				const char *event)
{
	char after[64], later[64];
	uint8_t out[64];
	int r;

	snprintf(after, sizeof(after), "after %s", event);
	snprintf(later, sizeof(later), "a request after %s", event);
	report(readable(fd, 5000), "the fault fd the VMM kept across %s "
	       "polls readable: the request raised before it waits", event);
	fault_round_trip(ctx, dev, ioas, fq, mem, FQ_PAGE, after);
	kb_pattern(out, sizeof(out), 9);
	r = dma(ctx, dev, FQ_PAGE2, out, sizeof(out), true);
	report(r == -EINPROGRESS && readable(fd, 5000), "a DMA to another "
	       "unmapped page raises a page request on the adopted queue "
	       "(%d, %s)", r, kb_err(ctx));
	if (r == -EINPROGRESS)
		fault_round_trip(ctx, dev, ioas, fq, mem, FQ_PAGE2, later);
	r = ioasid_device_detach(ctx, dev);
	r = r ? r : ioasid_fault_queue_destroy(ctx, fq);
	report(r == 0, "detached, the fault queue destroyed (%s)",
	       kb_err(ctx));
}

/*
 * mock0 bound and attached to an IOAS holding @mem's first page, with a
 * fault queue (*@fq, the VMM's fault fd *@fd); a DMA to an unmapped page
 * raised a page request, not read: 0, or -errno.
 */
static int fault_pending(struct ioasid_ctx *ctx, int mem, uint32_t *dev,
			 uint32_t *ioas, uint32_t *fq, int *fd)
{
	uint64_t iova = IOVA, done = 0;
	uint8_t out[64];
	int r;

	r = ioasid_device_bind(ctx, "mock0", -1, dev);
	if (r == 0)
		r = ioasid_ioas_alloc(ctx, 0, ioas);
	if (r == 0)
		r = ioasid_map_file(ctx, *ioas, mem, 0, KB_PAGE,
				    IOASID_MAP_READ | IOASID_MAP_WRITE |
				    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_fault_queue_alloc(ctx, *ioas, 0, 0, 0, fq, fd);
	if (r == 0)
		r = ioasid_device_attach(ctx, *dev, *ioas, 0);
	kb_pattern(out, sizeof(out), 8);
	if (r == 0) {
		r = ioasid_device_dma(ctx, *dev, FQ_PAGE, out, sizeof(out),
				      IOASID_DMA_WRITE, &done);
		r = r == -EINPROGRESS && readable(*fd, 5000) ? 0 :
		    r ? r : -EIO;
	}
	return r;
}

static int fault_successor(const struct fault_handover *h)
{
	struct ioasid_fault_queue_info info;
	struct ioasid_ctx *ctx = NULL;
	int r;

	report_fd = h->pipe;
	r = ioasid_ctx_import(h->image, &ctx);
	report(r == 0, "fault queue: the successor imports the context (%s)",
	       r ? ioasid_last_error(NULL) : "ok");
	close(h->image);
	if (r < 0)
		return 1;
	report(kb_be_domain(ctx, h->dev) &&
	       iommufd_test_hwpt_id(kb_be_domain(ctx, h->dev)) == h->k_hwpt &&
	       !file_contains(SUCC_LOG, "made again"),
	       "the same HWPT %u, adopted with its fault id (no replace, "
	       "nothing made again)", h->k_hwpt);
	r = ioasid_fault_queue_info(ctx, h->fq, &info);
	report(r == 0 && info.requests == 1 && info.responses == 0 &&
	       info.outstanding == 1, "fault queue %u is there, its counters "
	       "carried: %llu request(s), %llu response(s), %u outstanding "
	       "(%s)", h->fq, (unsigned long long)info.requests,
	       (unsigned long long)info.responses, info.outstanding,
	       kb_err(ctx));
	fault_queue_goes_on(ctx, h->dev, h->ioas, h->fq, h->mem, h->fd,
			    "the exec");
	close(h->fd);
	ioasid_unref(ctx);
	return 0;
}

static void fault_predecessor(int pipe_w, const char *self)
{
	struct fault_handover h = { .pipe = pipe_w, .fd = -1 };
	struct ioasid_ctx *ctx;
	char a[9][24], *argv[12];
	int r;

	report_fd = pipe_w;
	h.mem = kb_memfd(LEN, 0);
	r = kb_mock_ctx(&ctx);
	if (r == 0)
		r = fault_pending(ctx, h.mem, &h.dev, &h.ioas, &h.fq, &h.fd);
	report(r == 0, "fault queue: mock0 attached to an IOAS with a fault "
	       "queue, a DMA to an unmapped page raised a page request, not "
	       "read (%s)", kb_err(ctx));
	if (r == 0)
		r = ioasid_ctx_export(ctx, &h.image);
	report(r == 0, "fault queue: the context exported with its kernel "
	       "fault queue (%s)", kb_err(ctx));
	if (r < 0)
		_exit(1);
	h.k_hwpt = iommufd_test_hwpt_id(kb_be_domain(ctx, h.dev));
	r = open(SUCC_LOG, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (r >= 0) {
		dup2(r, 2);
		close(r);
	}
	setenv("IOASID_LOG", "warning", 1);
	fcntl(h.mem, F_SETFD, 0);
	fcntl(h.fd, F_SETFD, 0);
	{
		const uint32_t v[] = {
			(uint32_t)h.image, (uint32_t)h.pipe, (uint32_t)h.mem,
			(uint32_t)h.fd, h.dev, h.ioas, h.fq, h.k_hwpt,
		};

		for (int i = 0; i < 8; i++)
			snprintf(a[i], sizeof(a[i]), "%u", v[i]);
	}
	argv[0] = (char *)self;
	argv[1] = (char *)"--fault-successor";
	for (int i = 0; i < 8; i++)
		argv[2 + i] = a[i];
	argv[10] = NULL;
	/* exec without releasing ctx: the FAULT object and its fd go on */
	execv("/proc/self/exe", argv);
	report(0, "exec of the successor: %s", strerror(errno));
	_exit(1);
}

/*
 * An image whose fault queue's descriptor is not a fault fd: an eventfd
 * in its place (the same anonymous inode, so the image's own check of
 * the descriptor passes).  The import is refused, naming it, nothing is
 * built, and the exporter's queue still works.
 */
static void suite_fault_fd_hostile(void)
{
	struct ioasid_ctx *ctx, *ctx2 = NULL;
	struct ioasid_page_request q[2];
	uint32_t dev = 0, ioas = 0, fq = 0, nr = 2;
	uint64_t iova = IOVA, done = 0;
	int m = kb_memfd(LEN, 0), img = -1, fd = -1, victim = -1, efd, r;
	uint8_t out[64];

	r = kb_mock_ctx(&ctx);
	if (r == 0)
		r = ioasid_device_bind(ctx, "mock0", -1, &dev);
	if (r == 0)
		r = ioasid_ioas_alloc(ctx, 0, &ioas);
	if (r == 0)
		r = ioasid_map_file(ctx, ioas, m, 0, KB_PAGE, IOASID_MAP_READ |
				    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fd);
	if (r == 0)
		r = ioasid_device_attach(ctx, dev, ioas, 0);
	if (r == 0)
		r = ioasid_ctx_export(ctx, &img);
	if (!tap_ok(r == 0, "an exported context with a kernel fault queue "
		    "(%s)", r ? kb_err(ctx) : "ok"))
		goto out;
	/* the image's copy of the fault fd: the inheritable one */
	for (int i = 3; i < 1024; i++) {
		char path[32], link[64];
		int fl = fcntl(i, F_GETFD);
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
		n = readlink(path, link, sizeof(link) - 1);
		if (fl < 0 || (fl & FD_CLOEXEC) || n <= 0)
			continue;
		link[n] = 0;
		if (!strcmp(link, "anon_inode:[iommufd-pgfault]"))
			victim = i;
	}
	efd = eventfd(0, 0);
	r = victim >= 0 && efd >= 0 && dup2(efd, victim) == victim ? 0 : -1;
	if (efd >= 0)
		close(efd);
	r = r == 0 ? ioasid_ctx_import(img, &ctx2) : -EBADF;
	tap_ok(r < 0 && !ctx2 && strstr(ioasid_last_error(NULL),
					"not a fault fd"),
	       "an image whose fault fd is an eventfd: refused, nothing built "
	       "(%d, %s)", r, ioasid_last_error(NULL));
	kb_pattern(out, sizeof(out), 3);
	r = ioasid_device_dma(ctx, dev, IOVA + 3 * KB_PAGE, out, sizeof(out),
			      IOASID_DMA_WRITE, &done);
	tap_ok(r == -EINPROGRESS && readable(fd, 5000) &&
	       ioasid_fault_queue_read(ctx, fq, q, &nr) == 0 && nr == 1 &&
	       ioasid_fault_respond(ctx, fq, q[0].cookie,
				    IOASID_PAGE_RESPONSE_INVALID) == 0,
	       "the exporter's fault queue still raises, reads and answers "
	       "(%d, %s)", r, kb_err(ctx));
	ioasid_ctx_export_abandon(img);
	close(img);
out:
	if (fd >= 0)
		close(fd);
	ioasid_unref(ctx);
	close(m);
}

/* An image that names an iommufd the successor did not inherit. */
static void suite_missing_fd(void)
{
	struct ioasid_ctx *ctx, *ctx2 = NULL;
	uint64_t iova = IOVA;
	uint32_t dev, ioas;
	int m = kb_memfd(LEN, 0), img = -1, r, victim;

	r = kb_mock_ctx(&ctx);
	if (r == 0)
		r = ioasid_device_bind(ctx, "mock0", -1, &dev);
	if (r == 0)
		r = ioasid_ioas_alloc(ctx, 0, &ioas);
	if (r == 0)
		r = ioasid_map_file(ctx, ioas, m, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_ctx_export(ctx, &img);
	if (!tap_ok(r == 0, "an exported context (%s)", kb_err(ctx)))
		goto out;
	/* the image's own copy of the iommufd: inheritable, /dev/iommu */
	victim = -1;
	for (int fd = 3; fd < 1024; fd++) {
		char path[32], link[64];
		ssize_t n;
		int fl = fcntl(fd, F_GETFD);

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (fl < 0 || (fl & FD_CLOEXEC) || n <= 0)
			continue;
		link[n] = 0;
		if (!strcmp(link, "/dev/iommu"))
			victim = fd;
	}
	r = victim >= 0 ? close(victim) : -1;
	r = r == 0 ? ioasid_ctx_import(img, &ctx2) : -EBADF;
	tap_ok(r == -EBADMSG && !ctx2, "an image with a descriptor that was "
	       "not inherited: EBADMSG, nothing built (%s)",
	       ioasid_last_error(NULL));
	ioasid_ctx_export_abandon(img);
	close(img);
out:
	ioasid_unref(ctx);
	close(m);
}

/* Beyond the client's mapping: its fault queue's page request. */
#define UPG_FQ_PAGE	(IOVA + LEN + 4 * KB_PAGE)

/*
 * A live upgrade of ioasidd on iommufd:mock under a client, whose IOAS
 * has a fault queue with a page request the client reads after it.
 */
static void suite_upgrade(void)
{
	struct daemon_opts o = { .backend = "iommufd:mock",
				 .log_level = "debug" };
	struct daemon_fixture d;
	struct ioasid_ctx *c = NULL;
	uint64_t iova = IOVA, iova2 = IOVA2;
	uint8_t out[512], in[512];
	uint32_t dev = 0, ioas = 0, fq = 0;
	int m = kb_memfd(LEN, 0), ffd = -1, r;
	uint32_t pid = 0;

	if (!getenv("IOASIDD") && access("/usr/sbin/ioasidd", X_OK) == 0)
		setenv("IOASIDD", "/usr/sbin/ioasidd", 0);
	if (access(daemon_binary(), X_OK) < 0) {
		tap_skip("no ioasidd in this guest", "live upgrade on iommufd");
		return;
	}
	if (getuid() != 0) {
		tap_skip("only root may upgrade ioasidd", "live upgrade on "
			 "iommufd");
		return;
	}
	if (!tap_ok(daemon_start(&d, &o) == 0, "ioasidd --backend "
		    "iommufd:mock started"))
		return;
	r = ioasid_new(d.uri, &c);
	if (r == 0)
		r = ioasid_device_bind(c, "mock0", -1, &dev);
	if (r == 0)
		r = ioasid_ioas_alloc(c, 0, &ioas);
	if (r == 0)
		r = ioasid_map_file(c, ioas, m, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova);
	if (r == 0)
		r = ioasid_device_attach(c, dev, ioas, 0);
	kb_pattern(out, sizeof(out), 0x71);
	if (r == 0)
		r = dma(c, dev, IOVA + 0x100, out, sizeof(out), true);
	if (!tap_ok(r == 0, "a client's mock device bound, mapped, attached "
		    "and DMA-ing through ioasidd (%s)", r ? kb_err(c) : "ok"))
		goto out;
	/* a fault queue, with a page request raised and not read */
	r = ioasid_fault_queue_alloc(c, ioas, 0, 0, 0, &fq, &ffd);
	if (r == 0) {
		uint64_t done = 0;

		r = ioasid_device_dma(c, dev, UPG_FQ_PAGE, out, 64,
				      IOASID_DMA_WRITE, &done);
		r = r == -EINPROGRESS && readable(ffd, 5000) ? 0 :
		    r ? r : -EIO;
	}
	tap_ok(r == 0, "a fault queue on the client's IOAS, a page request "
	       "raised, not read (%s)", kb_err(c));
	r = ioasid_daemon_upgrade(c, NULL, &pid);
	tap_ok(r == 0 && pid > 0, "ioasid_daemon_upgrade on iommufd: "
	       "process %u serves (%s)", pid, r ? kb_err(c) : "ok");
	tap_ok(file_contains(d.log, "adopted HWPT") &&
	       file_contains(d.log, "adopted FAULT") &&
	       file_contains(d.log, "every kernel object adopted") &&
	       !file_contains(d.log, "made again"), "the successor adopted "
	       "the kernel HWPT and FAULT and made nothing again (its log)");
	daemon_dump_log(&d, stdout);
	if (ffd >= 0) {
		struct ioasid_page_request q[2];
		uint64_t at = UPG_FQ_PAGE;
		uint32_t nr = 2;

		tap_ok(readable(ffd, 5000), "the client's fault fd polls "
		       "readable after the upgrade");
		r = ioasid_fault_queue_read(c, fq, q, &nr);
		tap_ok(r == 0 && nr == 1 && q[0].dev_id == dev &&
		       q[0].addr == UPG_FQ_PAGE, "the client reads the page "
		       "request raised before the upgrade (nr %u, addr 0x%llx, "
		       "%s)", nr, (unsigned long long)q[0].addr, kb_err(c));
		r = r || nr != 1 ? -EIO :
		    ioasid_map_file(c, ioas, m, 0, KB_PAGE, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &at);
		r = r ? r : ioasid_fault_respond(c, fq, q[0].cookie,
						 IOASID_PAGE_RESPONSE_SUCCESS);
		kb_pattern(in, 64, 0x73);
		r = r ? r : dma(c, dev, UPG_FQ_PAGE + 0x40, in, 64, true);
		tap_ok(r == 0 && kb_file_equals(m, 0x40, in, 64), "mapped, "
		       "answered with the kernel's cookie: the retried DMA "
		       "lands (%s)", kb_err(c));
		r = ioasid_unmap(c, ioas, UPG_FQ_PAGE, KB_PAGE, 0, NULL);
		tap_ok(r == 0, "the page unmapped again (%s)", kb_err(c));
	}
	r = dma(c, dev, IOVA + 0x100, in, sizeof(in), false);
	tap_ok(r == 0 && !memcmp(in, out, sizeof(in)), "the client's next "
	       "DMA reads what the device wrote before the upgrade (%s)",
	       kb_err(c));
	kb_pattern(out, sizeof(out), 0x72);
	r = dma(c, dev, IOVA + 0x400, out, sizeof(out), true);
	tap_ok(r == 0 && kb_file_equals(m, 0x400, out, sizeof(out)),
	       "and new DMA lands (%s)", kb_err(c));
	r = ioasid_map_file(c, ioas, m, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_FIXED_IOVA, &iova2);
	if (r == 0)
		r = ioasid_unmap(c, ioas, IOVA2, KB_PAGE, 0, NULL);
	tap_ok(r == 0, "the client maps and unmaps after the upgrade (%s)",
	       kb_err(c));
out:
	if (ffd >= 0)
		close(ffd);
	if (c)
		ioasid_unref(c);
	close(m);
	tap_ok(daemon_stop(&d) == 0, "ioasidd stops cleanly after the "
	       "upgrade");
}


/* ---- a crash of ioasidd under a service manager -------------------------- */

#define CRASH_CONF "[user 0]\nlinger = 60\ndevices = all\n"

/* The first stored descriptor whose target (readlink) contains @what. */
static int stored(const struct supervisor *s, const char *what, char *name,
		  size_t len)
{
	for (unsigned int i = 0; i < s->nr_store; i++) {
		char path[64], link[128];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d",
			 s->store[i].fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strstr(link, what)) {
			if (name)
				snprintf(name, len, "%s", s->store[i].name);
			return s->store[i].fd;
		}
	}
	return -1;
}

static bool stored_image(const struct supervisor *s)
{
	for (unsigned int i = 0; i < s->nr_store; i++)
		if (!strncmp(s->store[i].name, "kimg", 4))
			return true;
	return false;
}

/* The stored regular file of @size bytes, or -1. */
static int stored_of_size(const struct supervisor *s, off_t size, char *name,
			  size_t len)
{
	for (unsigned int i = 0; i < s->nr_store; i++) {
		struct stat st;

		if (fstat(s->store[i].fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_size == size && strncmp(s->store[i].name, "kimg", 4)) {
			snprintf(name, len, "%s", s->store[i].name);
			return s->store[i].fd;
		}
	}
	return -1;
}

/* DMA by the mock device while ioasidd is down: its access, raw. */
static int access_write(int ifd, int access, uint64_t iova, void *buf,
			uint64_t len)
{
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_ACCESS_RW,
		.id = (uint32_t)access,
		.access_rw = { .iova = iova, .length = len,
			       .uptr = (uint64_t)(uintptr_t)buf,
			       .flags = IFD_MOCK_ACCESS_RW_WRITE },
	};

	return ioctl(ifd, IFD_TEST_CMD, &c) < 0 ? -errno : 0;
}

/* Destroy every IOAS of @ifd that nothing uses (ids 1..64): how many. */
static int destroy_unused_ioases(int ifd)
{
	int n = 0;

	for (uint32_t id = 1; id <= 64; id++) {
		struct ifd_ioas_iova_ranges q = {
			.size = sizeof(q), .ioas_id = id,
		};

		if (ioctl(ifd, IFD_IOAS_IOVA_RANGES, &q) < 0 &&
		    errno != EMSGSIZE)
			continue;
		n += raw_destroy(ifd, id) == 0;
	}
	return n;
}

/*
 * ioasidd --backend iommufd:mock under tests/supervisor.c's service
 * manager with an fd store, polled by @pl; false (said) when it cannot
 * be had.  @what names the suite.
 */
static bool crash_rig_start(struct supervisor *s, struct sup_poller *pl,
			    const char *what)
{
	if (!getenv("IOASIDD") && access("/usr/sbin/ioasidd", X_OK) == 0)
		setenv("IOASIDD", "/usr/sbin/ioasidd", 0);
	if (access(daemon_binary(), X_OK) < 0) {
		tap_skip("no ioasidd in this guest", "%s", what);
		return false;
	}
	setenv("IOASID_RECONNECT", "30", 1);
	if (!tap_ok(sup_start_backend(s, CRASH_CONF, "iommufd:mock") == 0,
		    "%s: ioasidd --backend iommufd:mock under a service "
		    "manager with an fd store (tests/supervisor.c)", what))
		return false;
	sup_poller_start(pl, s);
	return true;
}

/*
 * kill -9 of the supervised daemon and its restart from the store; true
 * when its log says session @name was rebuilt with every kernel object
 * adopted and nothing made again.
 */
static bool killed_and_rebuilt(struct supervisor *s, struct sup_poller *pl,
			       const char *name)
{
	char rebuilt[128];
	int r;

	snprintf(rebuilt, sizeof(rebuilt), "kernel state: session \"%s\" "
		 "of uid 0 rebuilt", name);
	sup_poller_stop(pl);
	sup_kill(s);
	r = sup_crash_restart(s);
	sup_poller_start(pl, s);
	return r == 0 && sup_log_has(s, rebuilt) &&
	       sup_log_has(s, "0 record(s) failed, 0 made again") &&
	       !sup_log_has(s, "not taken over");
}

static void suite_crash(void)
{
	struct sup_poller pl = { .stop = -1 };
	struct supervisor s;
	struct ioasid_ctx *c = NULL;
	uint64_t iova = IOVA, iova2 = IOVA, iova3 = IOVA2;
	uint8_t out[512], in[512];
	uint32_t dev = 0, ioas = 0, ioas2 = 0, linger = 0, pid = 0;
	int m = kb_memfd(LEN, 0), m2 = kb_memfd(2 * LEN, 0x22), r, ifd, acc;
	char name[256], names[1024], names2[1024];
	char tok[IOASID_SESSION_TOKEN_HEX], spent[IOASID_SESSION_TOKEN_HEX];
	unsigned int rebuilt;
	int r2, r3;
	pid_t old;

	if (!crash_rig_start(&s, &pl, "crash survival on iommufd"))
		return;
	r = ioasid_new(s.uri, &c);
	if (r == 0)
		r = ioasid_session_name(c, "vm1", &linger);
	if (r == 0)
		r = ioasid_device_bind(c, "mock0", -1, &dev);
	if (r == 0)
		r = ioasid_ioas_alloc(c, 0, &ioas);
	if (r == 0)
		r = ioasid_map_file(c, ioas, m, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova);
	if (r == 0)
		r = ioasid_device_attach(c, dev, ioas, 0);
	if (r == 0)
		r = ioasid_ioas_alloc(c, 0, &ioas2);
	if (r == 0)
		r = ioasid_map_file(c, ioas2, m2, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_FIXED_IOVA, &iova2);
	kb_pattern(out, sizeof(out), 0x81);
	if (r == 0)
		r = dma(c, dev, IOVA + 0x100, out, sizeof(out), true);
	if (!tap_ok(r == 0 && linger == 60, "a named session (linger %u s): "
		    "mock0 bound, mapped, attached, DMA-ing; a second IOAS "
		    "(%s)", linger, r ? kb_err(c) : "ok"))
		goto out;

	/* 1. kill -9: the kernel objects live on in the store */
	sup_poller_stop(&pl);
	sup_kill(&s);
	ifd = stored(&s, "/dev/iommu", NULL, 0);
	acc = stored(&s, "access", NULL, 0);
	tap_ok(ifd >= 0 && acc >= 0 && stored_image(&s), "killed (SIGKILL): the store "
	       "holds the session's iommufd, its device's access and its "
	       "state image");
	kb_pattern(out, sizeof(out), 0x82);
	r = ifd >= 0 && acc >= 0 ?
	    access_write(ifd, acc, IOVA + 0x800, out, sizeof(out)) : -EBADF;
	tap_ok(r == 0 && kb_file_equals(m, 0x800, out, sizeof(out)),
	       "while ioasidd is down the device's DMA lands in the memfd "
	       "(%s)", strerror(-r));
	r = sup_crash_restart(&s);
	sup_poller_start(&pl, &s);
	tap_ok(r == 0 && sup_log_has(&s, "kernel state: session \"vm1\" of "
				     "uid 0 rebuilt") &&
	       sup_log_has(&s, "0 record(s) failed, 0 made again") &&
	       !sup_log_has(&s, "not taken over"),
	       "restarted: the session rebuilt from the store, every kernel "
	       "object adopted (the log)");
	r = dma(c, dev, IOVA + 0x800, in, sizeof(in), false);
	tap_ok(r == 0 && !memcmp(in, out, sizeof(in)), "the client "
	       "reclaims on its own; its next DMA reads what landed while "
	       "the daemon was down (%s)", kb_err(c));
	r = ioasid_map_file(c, ioas, m, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_FIXED_IOVA, &iova3);
	if (r == 0)
		r = ioasid_unmap(c, ioas, IOVA2, KB_PAGE, 0, NULL);
	tap_ok(r == 0, "the same IOAS maps and unmaps (%s)", kb_err(c));

	/*
	 * 2. a live upgrade while the store holds it all, then kill -9 of
	 * the successor: the store's entries are the same ones, under the
	 * same names (the store keeps one copy of a file), and they hold
	 * what the successor stored
	 */
	sup_poller_stop(&pl);
	sup_store_names(&s, "kimg", names, sizeof(names));
	old = s.pid;
	sup_poller_start(&pl, &s);
	r = ioasid_daemon_upgrade(c, NULL, &pid);
	sup_poller_stop(&pl);
	if (r == 0)
		r = sup_wait_mainpid(&s, old);
	sup_store_names(&s, "kimg", names2, sizeof(names2));
	tap_ok(r == 0 && s.pid != old &&
	       sup_log_has(&s, "every kernel object adopted") &&
	       sup_log_has(&s, "kernel state: taken over (1 session(s)") &&
	       !sup_log_has(&s, "left the store") && stored_image(&s) &&
	       !strcmp(names, names2), "a live upgrade with crash survival "
	       "on: the successor (pid %u) adopted everything and goes on "
	       "with the store's entries under their names (%s; before: %s)",
	       pid, names2, names);
	sup_poller_start(&pl, &s);
	r = dma(c, dev, IOVA + 0x800, in, sizeof(in), false);
	tap_ok(r == 0 && !memcmp(in, out, sizeof(in)), "after the upgrade "
	       "the client's DMA reads what it read before (%s)", kb_err(c));
	iova3 = IOVA2;
	r = ioasid_map_file(c, ioas, m, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_FIXED_IOVA, &iova3);
	if (r == 0)
		r = ioasid_unmap(c, ioas, IOVA2, KB_PAGE, 0, NULL);
	tap_ok(r == 0, "and maps and unmaps: the successor stores its "
	       "changes (%s)", kb_err(c));
	sup_poller_stop(&pl);
	rebuilt = sup_log_count(&s, "0 record(s) failed, 0 made again");
	sup_kill(&s);
	ifd = stored(&s, "/dev/iommu", NULL, 0);
	acc = stored(&s, "access", NULL, 0);
	kb_pattern(out, sizeof(out), 0x83);
	r = ifd >= 0 && acc >= 0 ?
	    access_write(ifd, acc, IOVA + 0x800, out, sizeof(out)) : -EBADF;
	tap_ok(r == 0 && kb_file_equals(m, 0x800, out, sizeof(out)),
	       "kill -9 of the successor: the store holds the session's "
	       "iommufd and its device's access; the device's DMA lands "
	       "while ioasidd is down (%s)", strerror(-r));
	r = sup_crash_restart(&s);
	sup_poller_start(&pl, &s);
	tap_ok(r == 0 && sup_log_count(&s, "0 record(s) failed, 0 made "
				       "again") == rebuilt + 1 &&
	       !sup_log_has(&s, "not taken over") &&
	       !sup_log_has(&s, "not in the fd store"),
	       "restarted: the session rebuilt from what the successor "
	       "stored, every kernel object adopted (the log)");
	r = dma(c, dev, IOVA + 0x800, in, sizeof(in), false);
	tap_ok(r == 0 && !memcmp(in, out, sizeof(in)), "the client "
	       "reclaims on its own; its DMA reads what landed while the "
	       "successor was dead (%s)", kb_err(c));

	/* 3. bad input: the kernel lost an IOAS, the store lost a file */
	sup_poller_stop(&pl);
	sup_kill(&s);
	ifd = stored(&s, "/dev/iommu", NULL, 0);
	r = ifd >= 0 ? destroy_unused_ioases(ifd) : -1;
	tap_ok(r == 1, "killed again; behind it, the kernel IOAS of the "
	       "second IOAS destroyed (%d)", r);
	r = stored_of_size(&s, 2 * LEN, name, sizeof(name)) >= 0 ?
	    sup_drop(&s, name) : 0;
	tap_ok(r == 1, "and its mapped file dropped from the store (%s)",
	       name);
	r = sup_crash_restart(&s);
	sup_poller_start(&pl, &s);
	tap_ok(r == 0 && sup_log_has(&s, "not in the fd store") &&
	       sup_log_has(&s, "1 record(s) failed, 1 made again") &&
	       sup_log_has(&s, "not taken over: IOAS"), "the daemon starts anyway and "
	       "logs the missing file and the IOAS it made again");
	r = dma(c, dev, IOVA + 0x100, in, sizeof(in), false);
	kb_pattern(out, sizeof(out), 0x81);
	tap_ok(r == 0 && !memcmp(in, out, sizeof(in)), "the client reclaims "
	       "what could be rebuilt: its device still reads its memory "
	       "(%s)", kb_err(c));

	/*
	 * 4. a reclaim whose reply was lost with the daemon: it dies right
	 * after storing the reclaim's new token; the token that reclaim
	 * presented is good after the restart, until the reclaimer's next
	 * request shows the reply arrived
	 */
	r = ioasid_session_token(c, tok, sizeof(tok));
	ioasid_unref(c);
	c = NULL;
	setenv("IOASID_RECONNECT", "0", 1);
	sup_poller_stop(&pl);
	setenv("IOASIDD_TEST_KILL_AFTER_TOKEN", "1", 1);
	if (r == 0)
		r = sup_crash_restart(&s);
	unsetenv("IOASIDD_TEST_KILL_AFTER_TOKEN");
	sup_poller_start(&pl, &s);
	if (r == 0)
		r = ioasid_new(s.uri, &c);
	r2 = r == 0 ? ioasid_session_reclaim(c, "vm1", tok) : r;
	sup_poller_stop(&pl);
	r3 = sup_wait_exit(&s);
	tap_ok(r == 0 && r2 < 0 && r3 == 0, "a reclaim after a restart: "
	       "the daemon dies after storing the new token, before its "
	       "reply (IOASIDD_TEST_KILL_AFTER_TOKEN): the reclaim fails "
	       "(%d)", r2);
	if (c)
		ioasid_unref(c);
	c = NULL;
	r = sup_restart(&s);
	sup_poller_start(&pl, &s);
	if (r == 0)
		r = ioasid_new(s.uri, &c);
	if (r == 0)
		r = ioasid_session_reclaim(c, "vm1", tok);
	tap_ok(r == 0 && sup_log_has(&s, "reply did not reach its client"),
	       "restarted: the token that reclaim presented reclaims the "
	       "session again (the log: its reply did not reach its "
	       "client) (%s)", r ? kb_err(c) : "ok");
	snprintf(spent, sizeof(spent), "%s", tok);
	if (r == 0)
		r = ioasid_session_token(c, tok, sizeof(tok));
	if (r == 0)
		r = dma(c, dev, IOVA + 0x100, in, sizeof(in), false);
	tap_ok(r == 0 && strcmp(spent, tok) && !memcmp(in, out, sizeof(in)),
	       "a new token; the next request (its device reads its memory) "
	       "shows the reply arrived (%s)", r ? kb_err(c) : "ok");
	sup_poller_stop(&pl);
	r = sup_crash_restart(&s);
	sup_poller_start(&pl, &s);
	if (c)
		ioasid_unref(c);
	c = NULL;
	if (r == 0)
		r = ioasid_new(s.uri, &c);
	r2 = r == 0 ? ioasid_session_reclaim(c, "vm1", spent) : r;
	r3 = r == 0 ? ioasid_session_reclaim(c, "vm1", tok) : r;
	tap_ok(r2 == -EACCES && r3 == 0, "after the next crash the old token "
	       "is spent (%d) and the new one reclaims (%s)", r2,
	       r3 ? kb_err(c) : "ok");
	setenv("IOASID_RECONNECT", "30", 1);
out:
	if (c)
		ioasid_unref(c);
	sup_poller_stop(&pl);
	if (tap_failed)
		sup_dump_log(&s, stdout);
	close(m);
	close(m2);
	tap_ok(sup_stop(&s) == 0, "ioasidd stops cleanly");
	if (pl.stop >= 0)
		close(pl.stop);
}

/*
 * An iommufd fault queue through a crash of ioasidd: the session's state
 * image names the kernel's FAULT object by its fault fd, which the fd
 * store keeps with the rest, so after kill -9 and a restart the queue is
 * adopted with the same id and the kernel's page request raised before
 * the crash (never read) is read, answered and the device's retried DMA
 * lands; a request raised after the restart goes the same way.
 */
static void suite_crash_fault(void)
{
	struct sup_poller pl = { .stop = -1 };
	struct ioasid_fault_queue_info info;
	struct supervisor s;
	struct ioasid_ctx *c = NULL;
	uint32_t dev = 0, ioas = 0, fq = 0, linger = 0;
	int m = kb_memfd(LEN, 0), ffd = -1, r;

	if (!crash_rig_start(&s, &pl, "fault queue crash"))
		return;
	r = ioasid_new(s.uri, &c);
	if (r == 0)
		r = ioasid_session_name(c, "vmf", &linger);
	if (r == 0)
		r = fault_pending(c, m, &dev, &ioas, &fq, &ffd);
	if (!tap_ok(r == 0, "fault queue crash: a named session, mock0 on "
		    "an IOAS with a fault queue, a DMA to an unmapped page "
		    "raised a page request, not read (%s)", kb_err(c)))
		goto out;

	tap_ok(killed_and_rebuilt(&s, &pl, "vmf") &&
	       !sup_log_has(&s, "not in the fd store"),
	       "fault queue crash: killed (SIGKILL) and restarted, the "
	       "session rebuilt from the store, every kernel object adopted "
	       "(the log)");
	r = ioasid_fault_queue_info(c, fq, &info);
	tap_ok(r == 0, "the client reclaims on its own; fault queue %u is "
	       "there (%s)", fq, kb_err(c));
	fault_queue_goes_on(c, dev, ioas, fq, m, ffd, "the crash");
out:
	if (c)
		ioasid_unref(c);
	sup_poller_stop(&pl);
	if (tap_failed)
		sup_dump_log(&s, stdout);
	if (ffd >= 0)
		close(ffd);
	close(m);
	tap_ok(sup_stop(&s) == 0, "ioasidd stops cleanly");
	if (pl.stop >= 0)
		close(pl.stop);
}

/*
 * Nesting through ioasidd on iommufd:mock: a live upgrade adopts the
 * client's vIOMMU, vDEVICE, nested HWPTs and PASIDs (its log, and the
 * client sees the same tables, counters and all); then, under a service
 * manager, a kill -9 and restart rebuild them from the stored image (its
 * counters are those of the session's last change: an invalidation is
 * none, so they are not compared).
 */
static void suite_daemon_nesting(void)
{
	struct daemon_opts o = { .backend = "iommufd:mock",
				 .log_level = "debug" };
	struct sup_poller pl = { .stop = -1 };
	struct nest_view before, after;
	struct daemon_fixture d;
	struct supervisor s;
	struct nest_handover h = { 0 };
	struct ioasid_ctx *c = NULL;
	uint32_t pid = 0, linger = 0;
	int r;

	if (!getenv("IOASIDD") && access("/usr/sbin/ioasidd", X_OK) == 0)
		setenv("IOASIDD", "/usr/sbin/ioasidd", 0);
	if (access(daemon_binary(), X_OK) < 0 || getuid() != 0) {
		tap_skip("no ioasidd in this guest, or not root",
			 "nesting through ioasidd on iommufd");
		return;
	}
	/* 1. a live upgrade */
	if (!tap_ok(daemon_start(&d, &o) == 0, "nesting: ioasidd --backend "
		    "iommufd:mock started"))
		return;
	h.mem = kb_memfd(LEN, 0);
	r = ioasid_new(d.uri, &c);
	if (r == 0)
		r = nest_build(c, &h);
	tap_ok(r == 0, "nesting through ioasidd: a vIOMMU, its vDEVICE, two "
	       "nested HWPTs, PASIDs on a table and on the parent (%s)",
	       r ? kb_err(c) : "ok");
	nest_look(c, &h, &before, false);
	r = r ? r : ioasid_daemon_upgrade(c, NULL, &pid);
	tap_ok(r == 0 && pid > 0, "nesting: ioasid_daemon_upgrade on iommufd "
	       "(%s)", r ? kb_err(c) : "ok");
	tap_ok(file_contains(d.log, "every kernel object adopted") &&
	       !file_contains(d.log, "made again"), "nesting: the successor "
	       "adopted every kernel object and made nothing again (its log)");
	nest_look(c, &h, &after, false);
	tap_ok(before.r == 0 && after.r == 0 &&
	       !memcmp(&before, &after, sizeof(before)) && after.nr[0] == 2 &&
	       after.nr[3] == 2, "nesting: the client sees the same tables, "
	       "vIOMMU, vDEVICE and PASIDs after the upgrade, counters too");
	nest_works(c, &h, "after the upgrade");
	if (tap_failed)
		daemon_dump_log(&d, stdout);
	ioasid_unref(c);
	c = NULL;
	close(h.mem);
	tap_ok(daemon_stop(&d) == 0, "ioasidd stops cleanly");

	/* 2. a crash under a service manager */
	setenv("IOASID_RECONNECT", "30", 1);
	if (!tap_ok(sup_start_backend(&s, CRASH_CONF, "iommufd:mock") == 0,
		    "nesting: ioasidd --backend iommufd:mock under a service "
		    "manager with an fd store"))
		return;
	sup_poller_start(&pl, &s);
	h = (struct nest_handover){ .mem = kb_memfd(LEN, 0) };
	r = ioasid_new(s.uri, &c);
	if (r == 0)
		r = ioasid_session_name(c, "vm-nest", &linger);
	if (r == 0)
		r = nest_build(c, &h);
	tap_ok(r == 0, "nesting: the same in a named session (%s)",
	       r ? kb_err(c) : "ok");
	nest_look(c, &h, &before, true);
	tap_ok(killed_and_rebuilt(&s, &pl, "vm-nest"), "nesting: killed and "
	       "restarted, the session rebuilt from the store with every "
	       "kernel object adopted (the log)");
	nest_look(c, &h, &after, true);
	tap_ok(after.r == 0 && !memcmp(&before, &after, sizeof(before)),
	       "nesting: the client resumes and sees the same tables, "
	       "vIOMMU, vDEVICE and PASIDs (%s)", after.r ? kb_err(c) : "ok");
	nest_works(c, &h, "after the crash");
	if (c)
		ioasid_unref(c);
	sup_poller_stop(&pl);
	if (tap_failed)
		sup_dump_log(&s, stdout);
	close(h.mem);
	tap_ok(sup_stop(&s) == 0, "ioasidd stops cleanly");
	if (pl.stop >= 0)
		close(pl.stop);
}

/* ---- a real device: edu DMA-ing in a loop across a crash and an upgrade - */

#define EDU_XFER	1024u

/* edu copies its buffer to page 1..15 of the memfd, each one checked. */
struct dma_loop {
	struct edu edu;
	int mem;
	const uint8_t *pat;
	pthread_t thread;
	int stop;			/* eventfd */
	uint64_t done, bad;
	bool running;
};

static void *dma_loop_run(void *arg)
{
	struct dma_loop *l = arg;
	static const uint8_t zero[EDU_XFER];

	for (uint64_t i = 0;; i++) {
		struct pollfd f = { .fd = l->stop, .events = POLLIN };
		uint64_t off = (1 + i % 15) * KB_PAGE;

		if (poll(&f, 1, 0) > 0)
			break;
		if (pwrite(l->mem, zero, EDU_XFER, (off_t)off) != EDU_XFER ||
		    edu_to_mem(&l->edu, 0, IOVA + off, EDU_XFER) < 0 ||
		    !kb_file_equals(l->mem, off, l->pat, EDU_XFER))
			l->bad++;
		else
			l->done++;
	}
	return NULL;
}

static void dma_loop_start(struct dma_loop *l)
{
	l->stop = eventfd(0, EFD_CLOEXEC);
	l->running = l->stop >= 0 &&
		     pthread_create(&l->thread, NULL, dma_loop_run, l) == 0;
}

static void dma_loop_stop(struct dma_loop *l)
{
	uint64_t one = 1;

	if (l->running &&
	    write(l->stop, &one, sizeof(one)) == (ssize_t)sizeof(one))
		pthread_join(l->thread, NULL);
	l->running = false;
	if (l->stop >= 0)
		close(l->stop);
	l->stop = -1;
}

/* Bind edu through @uri, map a memfd, attach, open it here. */
static int edu_client(const char *uri, const char *session, const char *edu,
		      struct ioasid_ctx **c, struct dma_loop *l,
		      uint8_t *pat)
{
	uint64_t iova = IOVA;
	uint32_t dev, ioas, linger = 0;
	int fd = -1, r;

	l->mem = kb_memfd(LEN, 0);
	kb_pattern(pat, EDU_XFER, 0x91);
	r = ioasid_new(uri, c);
	if (r == 0 && session)
		r = ioasid_session_name(*c, session, &linger);
	if (r == 0)
		r = ioasid_device_bind(*c, edu, -1, &dev);
	if (r == 0)
		r = ioasid_ioas_alloc(*c, 0, &ioas);
	if (r == 0)
		r = ioasid_map_file(*c, ioas, l->mem, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova);
	if (r == 0)
		r = ioasid_device_attach(*c, dev, ioas, 0);
	if (r == 0)
		r = ioasid_device_get_fd(*c, dev, &fd);
	if (r == 0)
		r = edu_open(&l->edu, fd);
	if (r == 0 && (pwrite(l->mem, pat, EDU_XFER, 0) != EDU_XFER ||
		       edu_to_buf(&l->edu, IOVA, 0, EDU_XFER) < 0))
		r = -EIO;
	l->pat = pat;
	return r;
}

static void suite_edu(void)
{
	struct ioasid_device_info info;
	struct ioasid_ctx *probe = NULL, *c = NULL, *u = NULL;
	struct dma_loop l = { .stop = -1 }, lu = { .stop = -1 };
	struct daemon_opts o = { .backend = "iommufd", .log_level = "info" };
	struct daemon_fixture d;
	struct sup_poller pl = { .stop = -1 };
	struct supervisor s;
	uint8_t pat[EDU_XFER], patu[EDU_XFER];
	uint64_t before;
	uint32_t pid = 0;
	int r;

	if (ioasid_new("iommufd", &probe) < 0 || kb_find_edu(probe, &info)) {
		tap_skip("no edu device with a VFIO cdev", "edu across a "
			 "crash and an upgrade of ioasidd");
		if (probe)
			ioasid_unref(probe);
		return;
	}
	ioasid_unref(probe);
	if (access(daemon_binary(), X_OK) < 0) {
		tap_skip("no ioasidd in this guest", "edu across a crash");
		return;
	}

	/* a crash */
	if (!tap_ok(sup_start_backend(&s, CRASH_CONF "device-fds = yes\n",
				      "iommufd") == 0,
		    "ioasidd --backend iommufd under the service manager"))
		return;
	sup_poller_start(&pl, &s);
	r = edu_client(s.uri, "vm-edu", info.name, &c, &l, pat);
	if (!tap_ok(r == 0, "a named session binds %s, maps a memfd, "
		    "attaches it; its cdev here, BAR0 mapped (%s)", info.name,
		    r ? kb_err(c) : "ok"))
		goto crash_out;
	kb_kmsg("kb_restart: edu across a crash");
	dma_loop_start(&l);
	sup_poller_stop(&pl);
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	sup_kill(&s);
	/* as many transfers while it is down as it takes to see some */
	while (__atomic_load_n(&l.done, __ATOMIC_RELAXED) < before + 8 &&
	       !__atomic_load_n(&l.bad, __ATOMIC_RELAXED))
		sched_yield();
	tap_ok(!l.bad && l.done >= before + 8, "edu keeps DMA-ing into the "
	       "mapped pages while ioasidd is dead (%llu transfers landed "
	       "and checked, %llu wrong)", (unsigned long long)l.done,
	       (unsigned long long)l.bad);
	r = sup_crash_restart(&s);
	sup_poller_start(&pl, &s);
	tap_ok(r == 0 && sup_log_has(&s, "kernel state: session \"vm-edu\"") &&
	       sup_log_has(&s, "0 record(s) failed, 0 made again"),
	       "restarted: the IOAS, HWPT and edu's binding adopted, nothing "
	       "made again (the log)");
	r = ioasid_get_status(c, &(struct ioasid_status){ 0 });
	tap_ok(r == 0, "the client reclaims on its own (%s)", kb_err(c));
	dma_loop_stop(&l);
	tap_ok(!l.bad &&
	       !kb_any_dmar_fault_after("kb_restart: edu across a crash"),
	       "edu's DMA went on through the kill and the restart: %llu "
	       "transfers, %llu wrong, no DMAR fault in the kernel log",
	       (unsigned long long)l.done, (unsigned long long)l.bad);
	edu_close(&l.edu);
	close(l.edu.devfd);	/* else edu stays bound to that iommufd */
crash_out:
	if (c)
		ioasid_unref(c);
	sup_poller_stop(&pl);
	if (tap_failed)
		sup_dump_log(&s, stdout);
	close(l.mem);
	tap_ok(sup_stop(&s) == 0, "ioasidd stops cleanly");
	if (pl.stop >= 0)
		close(pl.stop);

	/* a live upgrade */
	if (getuid() != 0 || daemon_start(&d, &o) < 0) {
		tap_skip("cannot start ioasidd as root", "edu across an "
			 "upgrade");
		return;
	}
	r = edu_client(d.uri, NULL, info.name, &u, &lu, patu);
	if (!tap_ok(r == 0, "edu through a plain ioasidd (%s)",
		    r ? kb_err(u) : "ok"))
		goto up_out;
	kb_kmsg("kb_restart: edu across an upgrade");
	dma_loop_start(&lu);
	r = ioasid_daemon_upgrade(u, NULL, &pid);
	before = __atomic_load_n(&lu.done, __ATOMIC_RELAXED);
	while (__atomic_load_n(&lu.done, __ATOMIC_RELAXED) < before + 8 &&
	       !__atomic_load_n(&lu.bad, __ATOMIC_RELAXED))
		sched_yield();
	dma_loop_stop(&lu);
	tap_ok(r == 0 && file_contains(d.log, "every kernel object adopted") &&
	       !lu.bad && !kb_any_dmar_fault_after("kb_restart: edu across an "
					     "upgrade"),
	       "a live upgrade under edu's DMA loop: adopted, %llu transfers "
	       "landed, %llu wrong, no DMAR fault (%s)",
	       (unsigned long long)lu.done, (unsigned long long)lu.bad,
	       r ? kb_err(u) : "ok");
	edu_close(&lu.edu);
	close(lu.edu.devfd);
up_out:
	if (u)
		ioasid_unref(u);
	close(lu.mem);
	tap_ok(daemon_stop(&d) == 0, "ioasidd stops cleanly after the "
	       "upgrade");
}

int main(int argc, char **argv)
{
	struct ioasid_ctx *probe;
	int r;

	if (argc == 15 && !strcmp(argv[1], "--successor")) {
		struct handover h = {
			.image = atoi(argv[2]), .pipe = atoi(argv[3]),
			.mem = atoi(argv[4]), .mem2 = atoi(argv[5]),
			.dev = (uint32_t)strtoul(argv[6], NULL, 10),
			.ioas = (uint32_t)strtoul(argv[7], NULL, 10),
			.ioas2 = (uint32_t)strtoul(argv[8], NULL, 10),
			.k_ioas = (uint32_t)strtoul(argv[9], NULL, 10),
			.k_hwpt = (uint32_t)strtoul(argv[10], NULL, 10),
			.k_dev = (uint32_t)strtoul(argv[11], NULL, 10),
			.k_ioas2 = (uint32_t)strtoul(argv[12], NULL, 10),
			.scenario = atoi(argv[13]),
			.dirty = atoi(argv[14]),
		};

		return successor(&h);
	}
	if (argc == 15 && !strcmp(argv[1], "--nest-successor")) {
		uint32_t v[13];
		struct nest_handover h;

		for (int i = 0; i < 13; i++)
			v[i] = (uint32_t)strtoul(argv[2 + i], NULL, 10);
		h = (struct nest_handover){
			.image = (int)v[0], .pipe = (int)v[1], .mem = (int)v[2],
			.d0 = v[3], .d1 = v[4], .viommu = v[5], .vdev = v[6],
			.n1 = v[7], .n2 = v[8], .k_viommu = v[9],
			.k_vdev = v[10], .k_n1 = v[11], .k_n2 = v[12],
		};
		return nest_successor(&h);
	}
	if (argc == 10 && !strcmp(argv[1], "--fault-successor")) {
		uint32_t v[8];

		for (int i = 0; i < 8; i++)
			v[i] = (uint32_t)strtoul(argv[2 + i], NULL, 10);
		return fault_successor(&(struct fault_handover){
			.image = (int)v[0], .pipe = (int)v[1],
			.mem = (int)v[2], .fd = (int)v[3], .dev = v[4],
			.ioas = v[5], .fq = v[6], .k_hwpt = v[7],
		});
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	r = kb_mock_ctx(&probe);
	if (r == -EOPNOTSUPP || r == -ENODEV) {
		printf("1..0 # SKIP %s\n", ioasid_last_error(NULL));
		return 77;
	}
	if (!tap_ok(r == 0, "ioasid_new(\"iommufd:mock\") (%s)",
		    r ? ioasid_last_error(NULL) : "ok"))
		return tap_done();
	ioasid_unref(probe);
	run_scenario(1, argv[0]);
	run_scenario(2, argv[0]);
	run_scenario(3, argv[0]);
	run_scenario(4, argv[0]);
	suite_missing_fd();
	suite_fault_fd_hostile();
	suite_upgrade();
	suite_crash();
	suite_crash_fault();
	suite_daemon_nesting();
	suite_edu();
	return tap_done();
}
