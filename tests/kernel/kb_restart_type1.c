/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_restart_type1 - handing the VFIO type1 backend's containers to a
 * successor process (tests/vm guest, edu behind emulated VT-d):
 *
 *  1. A VMM's own re-exec, embedded (ioasid_ctx_export() + exec +
 *     ioasid_ctx_import()): edu DMAs into a memfd before the export,
 *     after it (the kernel forgot the addresses: VFIO_DMA_UNMAP_FLAG_VADDR),
 *     after the exec and before the import (no process has the mappings'
 *     addresses), and after it; every transfer is checked, none may be
 *     wrong, no DMAR fault.  The successor's container still has the
 *     mapping (a raw VFIO_IOMMU_MAP_DMA of it fails with EEXIST), nothing
 *     was made again, the locked memory is charged to it (VmLck), and it
 *     maps, DMAs into and unmaps a new range.
 *  2. The kernel lost a mapping after the export (unmapped behind the
 *     library): the import makes it again, logs it, DMA into it lands.
 *  3. The kernel has another mapping there (half of it, mapped behind the
 *     library): the import fails, naming it, and leaves the container
 *     alone (no device fd open, the group still gives it: DMA lands).
 *  4. A hand-over given up (ioasid_ctx_export_abandon()): the process gets
 *     its addresses back (the kernel accepts forgetting them again), and
 *     maps and exports as before; also with a container no group is in.
 *  5. Through a real ioasidd --backend vfio-type1: a live upgrade under
 *     edu's DMA loop: adopted, every transfer lands, and the client maps
 *     and unmaps afterwards; an upgrade to a binary that fails gives the
 *     daemon its addresses back (it maps, the client goes on, and a
 *     second upgrade succeeds).
 *  6. The same daemon under a service manager with an fd store: kill -9
 *     under edu's DMA loop, restart: the container adopted from the
 *     store (the dead daemon's addresses replaced), nothing made again,
 *     every transfer lands, the client reclaims and maps;
 *     then a live upgrade there under the DMA loop (the successor goes
 *     on with the store's entries under their names) and kill -9 of the
 *     successor: restarted from what it stored, nothing made again, no
 *     transfer wrong, no DMAR fault.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "backends/vfio_type1/vfio_type1.h"
#include "../daemon_fixture.h"
#include "../supervisor.h"
#include "kbtest.h"

#define IOVA	0x4000000ull
#define LEN	(16 * KB_PAGE)
#define IOVA2	(IOVA + LEN)
#define IOVA3	(IOVA + 4 * LEN)
#define XFER	1024u
#define ROUNDS	6		/* transfers per phase (~100 ms each) */
#define SUCC_LOG "/tmp/kb_restart_type1.successor.log"
#define MARK	"kb_restart_type1: embedded hand-over"

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
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	strcat(line, "\n");
	if (write(report_fd, line, strlen(line)) < 0)
		_exit(2);
}

static bool file_contains(const char *path, const char *needle)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, needle) != NULL;
}

static long vm_lck_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * @n transfers of edu's buffer (the pattern, loaded once) to pages
 * 1..15 of the memfd at IOVA, each checked: the number wrong.
 */
static unsigned int transfers(struct edu *e, int mem, const uint8_t *pat,
			      unsigned int n, unsigned int *done)
{
	static const uint8_t zero[XFER];
	unsigned int bad = 0;

	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = (1 + (*done + i) % 15) * KB_PAGE;

		if (pwrite(mem, zero, XFER, (off_t)off) != XFER ||
		    edu_to_mem(e, 0, IOVA + off, XFER) < 0 ||
		    !kb_file_equals(mem, off, pat, XFER))
			bad++;
	}
	*done += n - bad;
	return bad;
}

/* Does the container have a mapping at @iova (a new one fails EEXIST)? */
static int raw_map(int cfd, uint64_t iova, uint64_t len, void *va)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)va, .iova = iova, .size = len,
	};

	return ioctl(cfd, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

static int raw_unmap(int cfd, uint64_t iova, uint64_t len, uint32_t flags)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .flags = flags, .iova = iova, .size = len,
	};

	return ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &u) < 0 ? -errno : 0;
}

static int raw_set_vaddr(int cfd, uint64_t iova, uint64_t len, void *va)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_VADDR,
		.vaddr = (uintptr_t)va, .iova = iova, .size = len,
	};

	return ioctl(cfd, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

/* ---- the successor (the exec'd image) ------------------------------------ */

/*
 * Map a page of @mem at IOVA3, have edu DMA the pattern to @off in it,
 * check it landed, unmap: 0 or the first error (-EIO: it did not land).
 */
static int map_dma_unmap(struct ioasid_ctx *c, uint32_t ioas, struct edu *e,
			 int mem, const uint8_t *pat, uint64_t off)
{
	uint64_t iova = IOVA3;
	int r;

	r = ioasid_map_file(c, ioas, mem, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = edu_to_mem(e, 0, IOVA3 + off, XFER);
	if (r == 0 && !kb_file_equals(mem, off, pat, XFER))
		r = -EIO;
	if (r == 0)
		r = ioasid_unmap(c, ioas, IOVA3, KB_PAGE, 0, NULL);
	return r;
}

struct handover {
	int image, pipe, mem, mem2, devfd;
	uint32_t dev, ioas;
	int scenario;
	unsigned int done;		/* transfers checked so far */
	const char *name;		/* edu's */
};

/* The inherited group descriptor (/dev/vfio/N), or -1. */
static int inherited_group(void)
{
	char path[64], target[64];

	for (int fd = 3; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strncmp(target, "/dev/vfio/", 10) &&
		    target[10] >= '0' && target[10] <= '9')
			return fd;
	}
	return -1;
}

static int successor(struct handover *h)
{
	struct ioasid_ctx *ctx = NULL;
	uint8_t pat[XFER];
	uint64_t iova = IOVA3;
	struct edu e;
	unsigned int bad;
	long lck_before = vm_lck_kb();
	void *va;
	int r, cfd;

	report_fd = h->pipe;
	kb_pattern(pat, XFER, 0x91);
	r = edu_open(&e, h->devfd);
	bad = r == 0 ? transfers(&e, h->mem, pat, ROUNDS, &h->done) : ROUNDS;
	report(r == 0 && !bad, "scenario %d: after the exec, before the "
	       "import (no process has the mappings' addresses): %u "
	       "transfers landed so far, %u wrong", h->scenario, h->done, bad);
	if (h->scenario == 3) {
		int group;

		/* no device fd open: the kernel would let the group go */
		edu_close(&e);
		close(h->devfd);
		r = ioasid_ctx_import(h->image, &ctx);
		report(r < 0 && strstr(ioasid_last_error(NULL), "0x4010000"),
		       "an image whose mapping is another in the container: "
		       "the import fails (%d: %s)", r, ioasid_last_error(NULL));
		/* the group is still in the container with its IOMMU */
		group = inherited_group();
		h->devfd = group < 0 ? -1 :
			   ioctl(group, VFIO_GROUP_GET_DEVICE_FD, h->name);
		r = h->devfd < 0 ? -errno : edu_open(&e, h->devfd);
		bad = r == 0 ? transfers(&e, h->mem, pat, ROUNDS, &h->done) :
			       ROUNDS;
		report(r == 0 && !bad, "and leaves the container alone: the "
		       "inherited group gives its device again, %u transfers "
		       "landed in all, %u wrong (%s)", h->done, bad,
		       strerror(-r));
		r = ioasid_ctx_export_abandon(h->image);
		report(r == 0, "the image abandoned (%s)",
		       r ? ioasid_last_error(NULL) : "ok");
		close(h->image);
		edu_close(&e);
		close(h->devfd);
		return 0;
	}
	r = ioasid_ctx_import(h->image, &ctx);
	report(r == 0, "scenario %d: the successor imports the context (%s)",
	       h->scenario, r ? ioasid_last_error(NULL) : "ok");
	close(h->image);
	if (r < 0)
		return 1;
	cfd = vfio_type1_test_container_fd(kb_be_ioas(ctx, h->ioas));
	va = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, h->mem, 0);
	r = va == MAP_FAILED ? -errno : raw_map(cfd, IOVA, LEN, va);
	report(r == -EEXIST, "the adopted container still has IOVA 0x%llx+"
	       "0x%llx (a raw VFIO_IOMMU_MAP_DMA of it: %s)",
	       (unsigned long long)IOVA, (unsigned long long)LEN,
	       strerror(-r));
	if (va != MAP_FAILED)
		munmap(va, LEN);
	if (h->scenario == 1) {
		report(!file_contains(SUCC_LOG, "made again"), "nothing made "
		       "again: every mapping registered with the successor's "
		       "address (VFIO_DMA_MAP_FLAG_VADDR)");
		report(lck_before == 0 && vm_lck_kb() >= (long)(2 * LEN / 1024),
		       "the locked memory is charged to the new image (VmLck "
		       "%ld kB before the import, %ld kB after; %llu kB "
		       "mapped)", lck_before, vm_lck_kb(),
		       (unsigned long long)(2 * LEN / 1024));
	} else {
		report(file_contains(SUCC_LOG, "made again") &&
		       file_contains(SUCC_LOG, "0x4010000+0x10000: not in the "
				     "kernel"), "the log names the mapping "
		       "made again (container mapping 0x4010000+0x10000: not "
		       "in the kernel)");
		r = edu_to_mem(&e, 0, IOVA2, XFER);
		report(r == 0 && kb_file_equals(h->mem2, 0, pat, XFER),
		       "DMA into the re-made mapping lands in its memfd");
	}
	bad = transfers(&e, h->mem, pat, ROUNDS, &h->done);
	report(!bad, "after the import: %u transfers landed in all, %u "
	       "wrong", h->done, bad);
	r = ioasid_map_file(ctx, h->ioas, h->mem2, 0, KB_PAGE,
			    IOASID_MAP_READ | IOASID_MAP_WRITE |
			    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = edu_to_mem(&e, 0, IOVA3 + 0x100, XFER);
	if (r == 0 && !kb_file_equals(h->mem2, 0x100, pat, XFER))
		r = -EIO;
	if (r == 0)
		r = ioasid_unmap(ctx, h->ioas, IOVA3, KB_PAGE, 0, NULL);
	report(r == 0, "the successor maps a new page, edu DMAs into it, "
	       "it unmaps it (%s)", kb_err(ctx));
	report(!kb_any_dmar_fault_after(MARK),
	       "no DMAR fault in the kernel log "
	       "since the predecessor started");
	edu_close(&e);
	close(h->devfd);
	ioasid_unref(ctx);
	return 0;
}

/* ---- the predecessor ----------------------------------------------------- */

/* Bind edu, map two memfds, attach, open edu through the group. */
static int setup(const char *name, struct ioasid_ctx **ctx, uint32_t *dev,
		 uint32_t *ioas, int mem, int mem2, struct edu *e,
		 int *devfd, const uint8_t *pat)
{
	uint64_t iova = IOVA, iova2 = IOVA2;
	int group = -1, r;

	r = ioasid_new("vfio-type1", ctx);
	if (r == 0)
		r = ioasid_device_bind(*ctx, name, -1, dev);
	if (r == 0)
		r = ioasid_ioas_alloc(*ctx, 0, ioas);
	if (r == 0)
		r = ioasid_map_file(*ctx, *ioas, mem, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova);
	if (r == 0)
		r = ioasid_map_file(*ctx, *ioas, mem2, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova2);
	if (r == 0)
		r = ioasid_device_attach(*ctx, *dev, *ioas, 0);
	if (r == 0)
		r = ioasid_device_get_fd(*ctx, *dev, &group);
	if (r == 0) {
		*devfd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name);
		r = *devfd < 0 ? -errno : edu_open(e, *devfd);
		close(group);
	}
	if (r == 0 && (pwrite(mem, pat, XFER, 0) != XFER ||
		       edu_to_buf(e, IOVA, 0, XFER) < 0))
		r = -EIO;
	return r;
}

static void predecessor(const char *edu, int scenario, int pipe_w,
			const char *self)
{
	struct handover h = { .pipe = pipe_w, .scenario = scenario };
	struct ioasid_ctx *ctx = NULL;
	uint8_t pat[XFER];
	uint64_t iova = IOVA3;
	unsigned int bad;
	struct edu e;
	char a[9][24], *argv[13];
	int r;

	report_fd = pipe_w;
	kb_pattern(pat, XFER, 0x91);
	h.mem = kb_memfd(LEN, 0);
	h.mem2 = kb_memfd(LEN, 0);
	r = setup(edu, &ctx, &h.dev, &h.ioas, h.mem, h.mem2, &e, &h.devfd,
		  pat);
	report(r == 0, "scenario %d: edu bound through vfio-type1, two "
	       "memfds mapped, attached, BAR0 mapped (%s)", scenario,
	       r ? kb_err(ctx) : "ok");
	if (r < 0)
		_exit(1);
	bad = transfers(&e, h.mem, pat, ROUNDS, &h.done);
	r = ioasid_ctx_export(ctx, &h.image);
	report(r == 0 && !bad, "scenario %d: %u transfers landed, %u wrong; "
	       "the context exported (%s)", scenario, h.done, bad,
	       r ? kb_err(ctx) : "ok");
	if (r < 0)
		_exit(1);
	r = ioasid_map_file(ctx, h.ioas, h.mem, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_FIXED_IOVA, &iova);
	report(r == -EBUSY, "while the hand-over is under way a map is "
	       "refused with EBUSY (%s)", strerror(-r));
	bad = transfers(&e, h.mem, pat, ROUNDS, &h.done);
	report(!bad, "after the export (the kernel forgot the addresses): %u "
	       "transfers landed so far, %u wrong", h.done, bad);
	if (scenario >= 2) {
		int cfd = vfio_type1_test_container_fd(kb_be_ioas(ctx, h.ioas));
		void *va = MAP_FAILED;

		r = raw_unmap(cfd, IOVA2, LEN, 0);
		if (r == 0 && scenario == 3) {
			va = mmap(NULL, LEN / 2, PROT_READ | PROT_WRITE,
				  MAP_SHARED, h.mem2, 0);
			r = va == MAP_FAILED ? -errno :
			    raw_map(cfd, IOVA2, LEN / 2, va);
		}
		report(r == 0, "behind the library: 0x%llx+0x%llx unmapped%s "
		       "(%s)", (unsigned long long)IOVA2,
		       (unsigned long long)LEN, scenario == 3 ? ", its first "
		       "half mapped again" : "", strerror(-r));
	}
	edu_close(&e);
	r = open(SUCC_LOG, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (r >= 0) {
		dup2(r, 2);
		close(r);
	}
	setenv("IOASID_LOG", "info", 1);
	fcntl(h.mem, F_SETFD, 0);
	fcntl(h.mem2, F_SETFD, 0);
	fcntl(h.devfd, F_SETFD, 0);
	snprintf(a[0], sizeof(a[0]), "%d", h.image);
	snprintf(a[1], sizeof(a[1]), "%d", h.pipe);
	snprintf(a[2], sizeof(a[2]), "%d", h.mem);
	snprintf(a[3], sizeof(a[3]), "%d", h.mem2);
	snprintf(a[4], sizeof(a[4]), "%d", h.devfd);
	snprintf(a[5], sizeof(a[5]), "%u", h.dev);
	snprintf(a[6], sizeof(a[6]), "%u", h.ioas);
	snprintf(a[7], sizeof(a[7]), "%d", h.scenario);
	snprintf(a[8], sizeof(a[8]), "%u", h.done);
	argv[0] = (char *)self;
	argv[1] = (char *)"--successor";
	for (int i = 0; i < 9; i++)
		argv[2 + i] = a[i];
	argv[11] = (char *)edu;
	argv[12] = NULL;
	/* exec without releasing ctx: its containers go on */
	execv("/proc/self/exe", argv);
	report(0, "exec of the successor: %s", strerror(errno));
	_exit(1);
}

/* Fork, let the child run @scenario across its exec, print its lines. */
static void run_scenario(const char *edu, int scenario, const char *self)
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
		predecessor(edu, scenario, fds[1], self);
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
		tap_ok(line[0] == '1', "%s", line + 2);
		n++;
	}
	tap_ok(n > 7 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "scenario %d: %d checks reported, the successor exited 0 "
	       "(status 0x%x)", scenario, n, status);
	if (tap_failed) {
		int fd = open(SUCC_LOG, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			while ((got = read(fd, buf, sizeof(buf) - 1)) > 0) {
				buf[got] = 0;
				printf("# successor: %s", buf);
			}
			close(fd);
		}
	}
}

/* ---- a hand-over given up ------------------------------------------------ */

static void suite_abandon(const char *edu)
{
	struct ioasid_ctx *ctx = NULL;
	uint8_t pat[XFER];
	uint64_t iova = IOVA3;
	uint64_t iova2 = IOVA;
	unsigned int done = 0, bad;
	uint32_t dev, ioas, ioas2;
	struct edu e;
	int mem = kb_memfd(LEN, 0), mem2 = kb_memfd(LEN, 0), devfd = -1;
	int image = -1, cfd, r;
	void *va;

	kb_pattern(pat, XFER, 0x91);
	r = setup(edu, &ctx, &dev, &ioas, mem, mem2, &e, &devfd, pat);
	if (!tap_ok(r == 0, "abandon: edu through vfio-type1 (%s)",
		    r ? kb_err(ctx) : "ok"))
		goto out;
	cfd = vfio_type1_test_container_fd(kb_be_ioas(ctx, ioas));
	/* and a container no group is in (no IOMMU: only the record) */
	r = ioasid_ioas_alloc(ctx, 0, &ioas2);
	if (r == 0)
		r = ioasid_map_file(ctx, ioas2, mem2, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_FIXED_IOVA, &iova2);
	if (r == 0)
		r = ioasid_ctx_export(ctx, &image);
	tap_ok(r == 0, "abandon: exported, with a second container no group "
	       "is in (%s)", kb_err(ctx));
	va = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0);
	/* the kernel has no address for it: registering one is accepted */
	r = raw_set_vaddr(cfd, IOVA, LEN, va);
	if (r == 0)
		r = raw_unmap(cfd, IOVA, LEN, VFIO_DMA_UNMAP_FLAG_VADDR);
	tap_ok(r == 0, "the export made the kernel forget the address of "
	       "0x%llx+0x%llx (VFIO_DMA_MAP_FLAG_VADDR accepted: %s)",
	       (unsigned long long)IOVA, (unsigned long long)LEN,
	       strerror(-r));
	r = ioasid_ctx_export_abandon(image);
	tap_ok(r == 0, "ioasid_ctx_export_abandon() (%s)",
	       r ? ioasid_last_error(NULL) : "ok");
	close(image);
	r = raw_set_vaddr(cfd, IOVA, LEN, va);
	tap_ok(r == -EINVAL, "the abandon gave the mappings this process's "
	       "addresses back (a further VFIO_DMA_MAP_FLAG_VADDR: %s)",
	       strerror(-r));
	if (va != MAP_FAILED)
		munmap(va, LEN);
	bad = transfers(&e, mem, pat, ROUNDS, &done);
	tap_ok(!bad, "edu's DMA lands throughout: %u transfers, %u wrong",
	       done, bad);
	r = ioasid_map_file(ctx, ioas, mem2, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_unmap(ctx, ioas, IOVA3, KB_PAGE, 0, NULL);
	tap_ok(r == 0, "after the abandon the context maps and unmaps (%s)",
	       kb_err(ctx));
	r = ioasid_ctx_export(ctx, &image);
	if (r == 0)
		r = ioasid_ctx_export_abandon(image);
	tap_ok(r == 0, "and exports and abandons again (%s)", kb_err(ctx));
	if (image >= 0)
		close(image);
	edu_close(&e);
out:
	if (devfd >= 0)
		close(devfd);
	if (ctx)
		ioasid_unref(ctx);
	close(mem);
	close(mem2);
}

/* ---- through ioasidd: a live upgrade under edu's DMA loop ---------------- */

struct dma_loop {
	struct edu edu;
	int mem;
	const uint8_t *pat;
	pthread_t thread;
	int stop;
	unsigned int done, bad;
	bool running;
};

static void *dma_loop_run(void *arg)
{
	struct dma_loop *l = arg;

	for (;;) {
		struct pollfd f = { .fd = l->stop, .events = POLLIN };
		unsigned int done = __atomic_load_n(&l->done, __ATOMIC_RELAXED);
		unsigned int bad;

		if (poll(&f, 1, 0) > 0)
			break;
		bad = transfers(&l->edu, l->mem, l->pat, 1, &done);
		__atomic_store_n(&l->done, done, __ATOMIC_RELAXED);
		__atomic_add_fetch(&l->bad, bad, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void dma_loop_start(struct dma_loop *l)
{
	if (l->stop >= 0)
		close(l->stop);
	l->stop = eventfd(0, EFD_CLOEXEC);
	l->running = l->stop >= 0 &&
		     pthread_create(&l->thread, NULL, dma_loop_run, l) == 0;
}

static void dma_loop_stop(struct dma_loop *l)
{
	uint64_t one = 1;

	if (l->running && write(l->stop, &one, sizeof(one)) == sizeof(one))
		pthread_join(l->thread, NULL);
	l->running = false;
}

/* Wait for @n transfers more than @from (or a wrong one): true if done. */
static bool dma_progress(struct dma_loop *l, unsigned int from,
			 unsigned int n)
{
	while (l->running &&
	       __atomic_load_n(&l->done, __ATOMIC_RELAXED) < from + n &&
	       !__atomic_load_n(&l->bad, __ATOMIC_RELAXED))
		sched_yield();
	return __atomic_load_n(&l->done, __ATOMIC_RELAXED) >= from + n &&
	       !__atomic_load_n(&l->bad, __ATOMIC_RELAXED);
}

/*
 * Through ioasidd (@c): @edu bound, an IOAS with l->mem mapped at IOVA,
 * edu attached; its device fd opened here from the group the daemon
 * passes, and one transfer of l->pat through it.  0 or -errno.
 */
static int edu_through_daemon(struct ioasid_ctx *c, const char *edu,
			      struct dma_loop *l, uint32_t *dev,
			      uint32_t *ioas, int *group, int *devfd)
{
	uint64_t iova = IOVA;
	int r = ioasid_device_bind(c, edu, -1, dev);

	if (r == 0)
		r = ioasid_ioas_alloc(c, 0, ioas);
	if (r == 0)
		r = ioasid_map_file(c, *ioas, l->mem, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova);
	if (r == 0)
		r = ioasid_device_attach(c, *dev, *ioas, 0);
	if (r == 0)
		r = ioasid_device_get_fd(c, *dev, group);
	if (r == 0) {
		*devfd = ioctl(*group, VFIO_GROUP_GET_DEVICE_FD, edu);
		r = *devfd < 0 ? -errno : edu_open(&l->edu, *devfd);
	}
	if (r == 0 && (pwrite(l->mem, l->pat, XFER, 0) != XFER ||
		       edu_to_buf(&l->edu, IOVA, 0, XFER) < 0))
		r = -EIO;
	return r;
}

static void suite_upgrade(const char *edu)
{
	struct daemon_opts o = { .backend = "vfio-type1", .log_level = "info" };
	struct ioasid_ctx *c = NULL;
	struct daemon_fixture d;
	struct dma_loop l = { .stop = -1 };
	uint8_t pat[XFER];
	uint32_t dev, ioas, pid = 0;
	unsigned int before;
	uint64_t one = 1;
	int group = -1, devfd = -1, r;

	if (!getenv("IOASIDD") && access("/usr/sbin/ioasidd", X_OK) == 0)
		setenv("IOASIDD", "/usr/sbin/ioasidd", 0);
	if (access(daemon_binary(), X_OK) < 0 || getuid() != 0 ||
	    daemon_start(&d, &o) < 0) {
		tap_skip("no ioasidd in this guest, or not root", "edu across "
			 "a live upgrade of ioasidd --backend vfio-type1");
		return;
	}
	kb_pattern(pat, XFER, 0x91);
	l.pat = pat;
	l.mem = kb_memfd(LEN, 0);
	r = ioasid_new(d.uri, &c);
	if (r == 0)
		r = edu_through_daemon(c, edu, &l, &dev, &ioas, &group, &devfd);
	if (!tap_ok(r == 0, "edu through ioasidd --backend vfio-type1: the "
		    "group passed, its device fd here, a memfd mapped (%s)",
		    r ? kb_err(c) : "ok"))
		goto out;
	kb_kmsg("kb_restart_type1: edu across an upgrade");
	l.stop = eventfd(0, EFD_CLOEXEC);
	l.running = l.stop >= 0 &&
		    pthread_create(&l.thread, NULL, dma_loop_run, &l) == 0;
	r = ioasid_daemon_upgrade(c, NULL, &pid);
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	while (l.running &&
	       __atomic_load_n(&l.done, __ATOMIC_RELAXED) < before + 4 &&
	       !__atomic_load_n(&l.bad, __ATOMIC_RELAXED))
		sched_yield();
	if (l.running && write(l.stop, &one, sizeof(one)) == sizeof(one))
		pthread_join(l.thread, NULL);
	tap_ok(r == 0 && file_contains(d.log, "every kernel object adopted") &&
	       !l.bad && l.done >= before + 4 &&
	       !kb_any_dmar_fault_after("kb_restart_type1: edu across an "
					"upgrade"),
	       "a live upgrade under edu's DMA loop: the container adopted "
	       "(pid %u), %u transfers landed, %u wrong, no DMAR fault (%s)",
	       pid, l.done, l.bad, r ? kb_err(c) : "ok");
	tap_ok(file_contains(d.log, "hand-over begun"), "the predecessor "
	       "made the kernel forget its addresses (its log)");
	r = map_dma_unmap(c, ioas, &l.edu, l.mem, pat, 0x200);
	tap_ok(r == 0, "after the upgrade the client maps a page, edu DMAs "
	       "into it, the client unmaps it (%s)", kb_err(c));
	r = ioasid_daemon_upgrade(c, "/bin/false", &pid);
	tap_ok(r < 0 && file_contains(d.log, "hand-over given up"),
	       "an upgrade to a binary that fails is refused (%s) and the "
	       "daemon takes its addresses back (its log)", kb_err(c));
	r = map_dma_unmap(c, ioas, &l.edu, l.mem, pat, 0x300);
	tap_ok(r == 0 && !transfers(&l.edu, l.mem, pat, 2, &l.done),
	       "and serves on: a map, DMA into it and an unmap work (%s)",
	       kb_err(c));
	/* only mappings with this daemon's addresses can be handed again */
	r = ioasid_daemon_upgrade(c, NULL, &pid);
	tap_ok(r == 0 && !transfers(&l.edu, l.mem, pat, 2, &l.done),
	       "and a second upgrade succeeds, DMA landing (%s)", kb_err(c));
	edu_close(&l.edu);
out:
	if (l.stop >= 0)
		close(l.stop);
	if (devfd >= 0)
		close(devfd);
	if (group >= 0)
		close(group);
	if (c)
		ioasid_unref(c);
	close(l.mem);
	tap_ok(daemon_stop(&d) == 0, "ioasidd stops cleanly after the "
	       "upgrade");
}

/* ---- through ioasidd under a service manager: kill -9 and restart -------- */

#define CRASH_CONF "[user 0]\nlinger = 60\ndevices = all\ndevice-fds = yes\n"

static void suite_crash(const char *edu)
{
	struct ioasid_ctx *c = NULL;
	struct supervisor s;
	struct sup_poller pl = { .stop = -1 };
	struct dma_loop l = { .stop = -1 };
	uint8_t pat[XFER];
	uint32_t dev, ioas, linger = 0, pid = 0;
	unsigned int before, rebuilt;
	char names[1024], names2[1024];
	int group = -1, devfd = -1, r;
	pid_t old;
	bool ok;

	if (!getenv("IOASIDD") && access("/usr/sbin/ioasidd", X_OK) == 0)
		setenv("IOASIDD", "/usr/sbin/ioasidd", 0);
	if (access(daemon_binary(), X_OK) < 0) {
		tap_skip("no ioasidd in this guest", "edu across a crash of "
			 "ioasidd --backend vfio-type1");
		return;
	}
	if (!tap_ok(sup_start_backend(&s, CRASH_CONF, "vfio-type1") == 0,
		    "ioasidd --backend vfio-type1 under a service manager "
		    "with an fd store"))
		return;
	sup_poller_start(&pl, &s);
	kb_pattern(pat, XFER, 0x91);
	l.pat = pat;
	l.mem = kb_memfd(LEN, 0);
	r = ioasid_new(s.uri, &c);
	if (r == 0)
		r = ioasid_session_name(c, "vm-type1", &linger);
	if (r == 0)
		r = edu_through_daemon(c, edu, &l, &dev, &ioas, &group, &devfd);
	if (!tap_ok(r == 0, "a named session binds edu, maps a memfd, "
		    "attaches; its device fd here (%s)", r ? kb_err(c) : "ok"))
		goto out;
	kb_kmsg("kb_restart_type1: edu across a crash");
	dma_loop_start(&l);
	sup_poller_stop(&pl);
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	sup_kill(&s);
	tap_ok(dma_progress(&l, before, 4), "edu keeps DMA-ing while "
	       "ioasidd is dead (%u transfers landed, %u wrong)", l.done,
	       l.bad);
	r = sup_crash_restart(&s);
	sup_poller_start(&pl, &s);
	tap_ok(r == 0 && sup_log_has(&s, "kernel state: session \"vm-type1\"")
	       && sup_log_has(&s, "0 record(s) failed, 0 made again"),
	       "restarted: the container and edu's group adopted from the fd "
	       "store, nothing made again (the log)");
	r = ioasid_get_status(c, &(struct ioasid_status){ 0 });
	tap_ok(r == 0, "the client reclaims on its own (%s)", kb_err(c));
	dma_loop_stop(&l);
	tap_ok(!l.bad &&
	       !kb_any_dmar_fault_after("kb_restart_type1: edu across a "
					   "crash"),
	       "edu's DMA went on through the kill and the restart: %u "
	       "transfers, %u wrong, no DMAR fault", l.done, l.bad);
	r = map_dma_unmap(c, ioas, &l.edu, l.mem, pat, 0x200);
	tap_ok(r == 0, "after the restart the client maps a page, edu DMAs "
	       "into it, the client unmaps it (%s)", kb_err(c));

	/* a live upgrade there, then kill -9 of the successor */
	sup_poller_stop(&pl);
	sup_store_names(&s, "kimg", names, sizeof(names));
	old = s.pid;
	sup_poller_start(&pl, &s);
	kb_kmsg("kb_restart_type1: edu across an upgrade and a crash");
	dma_loop_start(&l);
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	r = ioasid_daemon_upgrade(c, NULL, &pid);
	ok = dma_progress(&l, before, 4);
	sup_poller_stop(&pl);
	if (r == 0)
		r = sup_wait_mainpid(&s, old);
	sup_store_names(&s, "kimg", names2, sizeof(names2));
	tap_ok(r == 0 && ok && s.pid != old &&
	       sup_log_has(&s, "kernel state: taken over (1 session(s)") &&
	       !sup_log_has(&s, "left the store") && !strcmp(names, names2),
	       "a live upgrade with the fd store under edu's DMA loop: the "
	       "successor (pid %u) goes on with the store's entries under "
	       "their names (%s); %u transfers, %u wrong (%s)", pid, names2,
	       l.done, l.bad, r ? kb_err(c) : "ok");
	rebuilt = sup_log_count(&s, "0 record(s) failed, 0 made again");
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	sup_kill(&s);
	ok = dma_progress(&l, before, 4);
	tap_ok(ok, "kill -9 of the successor: edu keeps DMA-ing (%u "
	       "transfers, %u wrong)", l.done, l.bad);
	r = sup_crash_restart(&s);
	sup_poller_start(&pl, &s);
	tap_ok(r == 0 && sup_log_count(&s, "0 record(s) failed, 0 made "
				       "again") == rebuilt + 1,
	       "restarted: the container and edu's group adopted from what "
	       "the successor stored, nothing made again (the log)");
	r = ioasid_get_status(c, &(struct ioasid_status){ 0 });
	tap_ok(r == 0, "the client reclaims on its own (%s)", kb_err(c));
	dma_loop_stop(&l);
	tap_ok(!l.bad &&
	       !kb_any_dmar_fault_after("kb_restart_type1: edu across an "
					   "upgrade and a crash"),
	       "edu's DMA went on through the upgrade, the kill and the "
	       "restart: %u transfers, %u wrong, no DMAR fault", l.done,
	       l.bad);
	r = map_dma_unmap(c, ioas, &l.edu, l.mem, pat, 0x300);
	tap_ok(r == 0, "and the client maps a page, edu DMAs into it, the "
	       "client unmaps it (%s)", kb_err(c));
	edu_close(&l.edu);
out:
	if (l.stop >= 0)
		close(l.stop);
	if (devfd >= 0)
		close(devfd);
	if (group >= 0)
		close(group);
	if (c)
		ioasid_unref(c);
	sup_poller_stop(&pl);
	if (tap_failed)
		sup_dump_log(&s, stdout);
	close(l.mem);
	tap_ok(sup_stop(&s) == 0, "ioasidd stops cleanly");
	if (pl.stop >= 0)
		close(pl.stop);
}

int main(int argc, char **argv)
{
	struct ioasid_device_info info;
	struct ioasid_ctx *probe = NULL;
	int r;

	if (argc == 12 && !strcmp(argv[1], "--successor")) {
		struct handover h = {
			.image = atoi(argv[2]), .pipe = atoi(argv[3]),
			.mem = atoi(argv[4]), .mem2 = atoi(argv[5]),
			.devfd = atoi(argv[6]),
			.dev = (uint32_t)strtoul(argv[7], NULL, 10),
			.ioas = (uint32_t)strtoul(argv[8], NULL, 10),
			.scenario = atoi(argv[9]),
			.done = (unsigned int)strtoul(argv[10], NULL, 10),
			.name = argv[11],
		};

		return successor(&h);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	r = ioasid_new("vfio-type1", &probe);
	if (r < 0 || kb_find_edu(probe, &info)) {
		printf("1..0 # SKIP no vfio-type1 or no edu device (%s)\n",
		       r < 0 ? ioasid_last_error(NULL) : "edu");
		if (probe)
			ioasid_unref(probe);
		return 77;
	}
	ioasid_unref(probe);
	kb_kmsg(MARK);
	run_scenario(info.name, 1, argv[0]);
	run_scenario(info.name, 2, argv[0]);
	run_scenario(info.name, 3, argv[0]);
	suite_abandon(info.name);
	suite_upgrade(info.name);
	suite_crash(info.name);
	return tap_done();
}
