/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fail-nth, like the kernel's iommufd_fail_nth: every public call runs
 * with its 1st, 2nd, ... allocation failing until it succeeds.  Each
 * failure must return -ENOMEM with a reason, and leave the state -- every
 * IOAS, its info, mapping walk, IOVA ranges, files and domains, every
 * device, VM and the status -- exactly as it was.  Leaks show under
 * ASan/LSan (each test is a process of its own).
 *
 * The failures come from the allocator itself: this program is linked
 * with -Wl,--wrap for malloc, calloc, realloc, strdup, aligned_alloc,
 * posix_memalign, realpath and nlmsg_alloc_size (tests/failnth.c), so
 * every allocation of the library's own code (not libnl's or libudev's
 * internal ones) can fail, as it would when memory runs out.
 *
 * Embedded by default; through ioasidd (IOASID_TEST_URI, the conformance
 * run) the failures hit the client side of the library, and with
 * IOASID_FAILNTH_CTL naming the daemon's shared counters
 * (tests/conformance-test_fail_nth_daemon.sh, tests/ioasidd-failnth) the
 * daemon's side of each request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "failnth.h"
#include "helpers.h"
#include "snapshot.h"

#define MiB (1ULL << 20)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA
#define NIC "0000:00:01.0"		/* sim0, group 1 */
#define GPU0 "0000:00:03.0"		/* sim0 */
#define MAX_N 100000

struct fx {
	struct ioasid_ctx *ctx;
	uint32_t ioas, ioas2, rioas;	/* rioas: restricted */
	uint32_t dev, dev2, vm;
	int fd, kvm_fd, vm_fd;
	bool remote;
	void *user;			/* 1 MiB of anonymous memory */
	uint32_t scratch;		/* what the call under test made */
	int scratch_fd;
};

static struct fx F = { .fd = -1, .kvm_fd = -1, .vm_fd = -1,
		       .scratch_fd = -1 };

/*
 * The daemon's counters ($IOASID_FAILNTH_CTL, tests/ioasidd-failnth):
 * when set, the failures are armed in the daemon, not in this process.
 */
static struct failnth_ctl *daemon_ctl;

static void arm(uint64_t n)
{
	if (daemon_ctl)
		failnth_ctl_arm(daemon_ctl, n);
	else
		failnth_arm(n);
}

static bool disarm(void)
{
	return daemon_ctl ? failnth_ctl_disarm(daemon_ctl) : failnth_disarm();
}

/*
 * Run @call with its n-th allocation failing, for n = 1, 2, ... until it
 * returns without the failure having come (it must then succeed) or
 * succeeds in spite of it.  @call returns 0 for the outcome it has when
 * nothing fails.
 */
static unsigned int fail_nth_from(const char *name, int (*call)(struct fx *),
				  uint64_t first)
{
	unsigned int failures = 0;

	for (uint64_t n = first; n < MAX_N; n++) {
		struct snap before, after;
		bool hit;
		int r;

		snapshot_take(F.ctx, &before, SNAP_STATUS);
		arm(n);
		r = call(&F);
		hit = disarm();
		if (!hit && getenv("FAILNTH_VERBOSE"))
			fprintf(stderr, "%s: %u allocation failures, then "
				"success\n", name, failures);
		if (!hit) {
			cr_assert_eq(r, 0, "%s: %d (%s) with no allocation "
				     "failing (n=%lu)", name, r,
				     ioasid_last_error(F.ctx),
				     (unsigned long)n);
			snapshot_free(&before);
			return failures;
		}
		if (r == 0) {	/* it could do without that allocation */
			snapshot_free(&before);
			return failures;
		}
		cr_assert_eq(r, -ENOMEM, "%s with allocation %lu failing: "
			     "%d (%s), not -ENOMEM", name, (unsigned long)n,
			     r, ioasid_last_error(F.ctx));
		cr_assert(F.ctx == NULL || ioasid_last_error(F.ctx)[0],
			  "%s: -ENOMEM without a reason", name);
		snapshot_take(F.ctx, &after, SNAP_STATUS);
		cr_assert(snapshot_equal(&before, &after),
			  "%s with allocation %lu failing returned -ENOMEM "
			  "but changed the state", name, (unsigned long)n);
		snapshot_free(&before);
		snapshot_free(&after);
		failures++;
	}
	cr_assert_fail("%s: still failing after %d allocations", name, MAX_N);
	return failures;
}

#define FAIL_NTH(call) fail_nth_from(#call, call, 1)

/* ---- fixture ---------------------------------------------------------- */

static void setup(void)
{
	uint64_t iova;
	char *remote_uri = getenv("IOASID_TEST_URI");

	F.remote = remote_uri && strncmp(remote_uri, "unix:", 5) == 0;
	if (F.remote && getenv("IOASID_FAILNTH_CTL")) {
		daemon_ctl = failnth_map(getenv("IOASID_FAILNTH_CTL"));
		cr_assert(daemon_ctl, "cannot map $IOASID_FAILNTH_CTL: %s",
			  strerror(errno));
	}
	F.ctx = test_ctx();
	F.fd = test_memfd(16 * MiB);
	cr_assert_eq(ioasid_ioas_alloc(F.ctx, 0, &F.ioas), 0);
	cr_assert_eq(ioasid_ioas_alloc(F.ctx, 0, &F.ioas2), 0);
	cr_assert_eq(ioasid_ioas_alloc(F.ctx, IOASID_IOAS_RESTRICTED,
				       &F.rioas), 0);
	/* something in every IOAS, so calls walk real state */
	iova = 0x100000;
	cr_assert_eq(ioasid_map_file(F.ctx, F.ioas, F.fd, 0, 4 * MiB,
				     RW | FIXED, &iova), 0);
	iova = 0x1000000;
	cr_assert_eq(ioasid_map_file(F.ctx, F.ioas, F.fd, 4 * MiB, MiB,
				     IOASID_MAP_READ | FIXED, &iova), 0);
	iova = 0x100000;
	cr_assert_eq(ioasid_map_file(F.ctx, F.ioas2, F.fd, 8 * MiB, MiB,
				     RW | FIXED, &iova), 0);
	iova = 0;
	cr_assert_eq(ioasid_map_file(F.ctx, F.rioas, F.fd, 0, 8 * MiB,
				     RW | FIXED, &iova), 0);
	F.user = mmap(NULL, MiB, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(F.user != MAP_FAILED);
}

static void teardown(void)
{
	ioasid_unref(F.ctx);
	F.ctx = NULL;
	if (F.fd >= 0)
		close(F.fd);
	if (F.scratch_fd >= 0)
		close(F.scratch_fd);
	if (F.vm_fd >= 0)
		close(F.vm_fd);
	if (F.kvm_fd >= 0)
		close(F.kvm_fd);
	if (F.user && F.user != MAP_FAILED)
		munmap(F.user, MiB);
}

static void bind_attach(uint32_t *dev, const char *name, uint32_t ioas)
{
	cr_assert_eq(ioasid_device_bind(F.ctx, name, -1, dev), 0, "%s: %s",
		     name, ioasid_last_error(F.ctx));
	if (ioas)
		cr_assert_eq(ioasid_device_attach(F.ctx, *dev, ioas, 0), 0,
			     "%s", ioasid_last_error(F.ctx));
}

static bool kvm_vm(void)
{
	F.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (F.kvm_fd < 0)
		return false;
	F.vm_fd = ioctl(F.kvm_fd, 0xAE01 /* KVM_CREATE_VM */, 0);
	return F.vm_fd >= 0;
}

TestSuite(fail_nth, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the calls ------------------------------------------------------ */

static int c_new(struct fx *f)
{
	struct ioasid_ctx *ctx = NULL;
	const char *uri = getenv("IOASID_TEST_URI");
	int r = ioasid_new(uri ? uri : "sim", &ctx);

	if (r < 0 && ctx)
		return -EFAULT;		/* a failure must not hand one out */
	ioasid_unref(ctx);
	(void)f;
	return r;
}

Test(fail_nth, new)
{
	int r;

	if (!daemon_ctl) {
		FAIL_NTH(c_new);
		return;
	}
	/*
	 * In the daemon, a connection's first allocation is the daemon's
	 * record of it: without that it can only close the connection
	 * (ECONNRESET, as ioasid_new(3) says).  Every later one is answered
	 * with ENOMEM.
	 */
	arm(1);
	r = c_new(&F);
	cr_assert(disarm(), "the daemon allocated nothing for a connection");
	cr_assert_eq(r, -ECONNRESET, "%d (%s)", r, ioasid_last_error(NULL));
	fail_nth_from("c_new", c_new, 2);
}

/* Export, then import: each failure closes what it opened. */
static int c_export_import(struct fx *f)
{
	struct ioasid_ctx *copy = NULL;
	int fds = test_count_fds(), memfd = -1, r;

	r = ioasid_ctx_export(f->ctx, &memfd);
	if (r == 0) {
		r = ioasid_ctx_import(memfd, &copy);
		if (r < 0 && copy)
			r = -EFAULT;	/* a failure must not hand one out */
		if (r < 0)
			ioasid_ctx_export_abandon(memfd);
		close(memfd);
	}
	ioasid_unref(copy);
	if (test_count_fds() != fds)
		return -EBADFD;		/* a descriptor leaked */
	return r;
}

Test(fail_nth, ctx_export_import)
{
	if (F.remote)
		cr_skip_test("a context on ioasidd is not exported");
	FAIL_NTH(c_export_import);
}

static int c_ioas_alloc(struct fx *f)
{
	return ioasid_ioas_alloc(f->ctx, 0, &f->scratch);
}

static int c_ioas_alloc_restricted(struct fx *f)
{
	return ioasid_ioas_alloc(f->ctx, IOASID_IOAS_RESTRICTED, &f->scratch);
}

static int c_ioas_destroy(struct fx *f)
{
	return ioasid_ioas_destroy(f->ctx, f->ioas2);
}

static int c_ioas_snoop(struct fx *f)
{
	return ioasid_ioas_set_snoop_mode(f->ctx, f->ioas,
					  IOASID_SNOOP_ENFORCE);
}

Test(fail_nth, ioas_alloc) { FAIL_NTH(c_ioas_alloc); }
Test(fail_nth, ioas_alloc_restricted) { FAIL_NTH(c_ioas_alloc_restricted); }
Test(fail_nth, ioas_destroy) { FAIL_NTH(c_ioas_destroy); }
Test(fail_nth, ioas_set_snoop_mode) { FAIL_NTH(c_ioas_snoop); }

static int c_map_file(struct fx *f)
{
	uint64_t iova = 0;

	return ioasid_map_file(f->ctx, f->ioas, f->fd, 8 * MiB, 2 * MiB, RW,
			       &iova);
}

/* a file the IOAS has not seen yet: a new file entry */
static int c_map_new_file(struct fx *f)
{
	uint64_t iova = 0x4000000;

	return ioasid_map_file(f->ctx, f->ioas, f->scratch_fd, 0, MiB,
			       RW | FIXED, &iova);
}

static int c_map_batch(struct fx *f)
{
	struct ioasid_map_entry e[8];
	uint64_t iovas[8];

	for (int i = 0; i < 8; i++)
		e[i] = (struct ioasid_map_entry){
			.iova = 0x8000000 + (uint64_t)i * 0x200000,
			.offset = (uint64_t)i * 0x100000, .length = 0x100000 };
	return ioasid_map_file_batch(f->ctx, f->ioas, f->fd, e, 8, RW | FIXED,
				     iovas);
}

static int c_map_user(struct fx *f)
{
	uint64_t iova = 0;
	int r = ioasid_map_user(f->ctx, f->ioas, f->user, MiB, RW, &iova);

	return f->remote && r == -EOPNOTSUPP ? 0 : r;
}

/* far from everything: new page-table levels in an attached domain */
static int c_map_far(struct fx *f)
{
	uint64_t iova = 0x7f0000000000ULL;

	return ioasid_map_file(f->ctx, f->ioas, f->fd, 8 * MiB, 2 * MiB,
			       RW | FIXED, &iova);
}

/* many small pieces: tree nodes split */
static int c_map_batch_many(struct fx *f)
{
	struct ioasid_map_entry e[300];
	uint64_t iovas[300];

	for (int i = 0; i < 300; i++)
		e[i] = (struct ioasid_map_entry){
			.iova = 0x20000000 + (uint64_t)i * 0x2000,
			.offset = (uint64_t)(i % 64) * 0x1000,
			.length = 0x1000 };
	return ioasid_map_file_batch(f->ctx, f->ioas, f->fd, e, 300,
				     RW | FIXED, iovas);
}

/* a page out of the middle of the mapping at 0x30000000 */
static int c_unmap_many_cuts(struct fx *f)
{
	return ioasid_unmap(f->ctx, f->ioas, 0x30001000, 0x1000, 0, NULL);
}

Test(fail_nth, map_file) { FAIL_NTH(c_map_file); }
Test(fail_nth, map_file_batch_many) { FAIL_NTH(c_map_batch_many); }
Test(fail_nth, map_far_with_device)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_map_far);
}
Test(fail_nth, map_batch_many_with_device)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_map_batch_many);
}
Test(fail_nth, unmap_in_full_tree)
{
	uint64_t iova = 0x30000000;

	/* a 3-page mapping among 300 others, cut in the middle */
	bind_attach(&F.dev, NIC, F.ioas);
	cr_assert_eq(c_map_batch_many(&F), 0);
	cr_assert_eq(ioasid_map_file(F.ctx, F.ioas, F.fd, 0, 0x3000,
				     RW | FIXED, &iova), 0);
	FAIL_NTH(c_unmap_many_cuts);
}
Test(fail_nth, map_file_new_file)
{
	F.scratch_fd = test_memfd(MiB);
	FAIL_NTH(c_map_new_file);
}
Test(fail_nth, map_file_batch) { FAIL_NTH(c_map_batch); }

static uint32_t held_file_id;	/* F.fd's id in F.ioas */

static int c_map_file_id(struct fx *f)
{
	uint64_t iova = 0;

	return ioasid_map_file_id(f->ctx, f->ioas, held_file_id, 8 * MiB,
				  2 * MiB, RW, &iova);
}
Test(fail_nth, map_file_id)
{
	struct ioasid_mapping m;

	cr_assert_eq(ioasid_lookup(F.ctx, F.ioas, 0x100000, &m), 0);
	held_file_id = m.file_id;
	FAIL_NTH(c_map_file_id);
}
Test(fail_nth, map_user) { FAIL_NTH(c_map_user); }

static int c_unmap_cut(struct fx *f)
{
	uint64_t done;

	/* a page out of the middle: two pieces */
	return ioasid_unmap(f->ctx, f->ioas, 0x200000, 0x1000, 0, &done);
}

static int c_unmap_whole(struct fx *f)
{
	return ioasid_unmap(f->ctx, f->ioas, 0x1000000, MiB, 0, NULL);
}

static int c_unmap_all(struct fx *f)
{
	uint64_t done;

	return ioasid_unmap_all(f->ctx, f->ioas, &done);
}

Test(fail_nth, unmap_cut) { FAIL_NTH(c_unmap_cut); }
Test(fail_nth, unmap_whole) { FAIL_NTH(c_unmap_whole); }
Test(fail_nth, unmap_all) { FAIL_NTH(c_unmap_all); }

static int c_copy_other(struct fx *f)
{
	uint64_t iova = 0x6000000;

	return ioasid_copy(f->ctx, f->ioas2, f->ioas, 0x100000, 2 * MiB, RW | FIXED,
			   &iova);
}

static int c_copy_same(struct fx *f)
{
	uint64_t iova = 0x7000000;

	return ioasid_copy(f->ctx, f->ioas, f->ioas, 0x200000, MiB, RW | FIXED,
			   &iova);
}

Test(fail_nth, copy_other_ioas) { FAIL_NTH(c_copy_other); }
Test(fail_nth, copy_same_ioas) { FAIL_NTH(c_copy_same); }

static int c_allow(struct fx *f)
{
	struct ioasid_iova_range r[2] = { { 0, 0x3fffffff },
					  { 0x80000000, 0xffffffff } };

	return ioasid_allow_iovas(f->ctx, f->ioas, r, 2);
}

static int c_ranges(struct fx *f)
{
	struct ioasid_iova_range r[16];
	uint32_t nr = 16;

	return ioasid_iova_ranges(f->ctx, f->ioas, r, &nr, NULL);
}

Test(fail_nth, allow_iovas) { FAIL_NTH(c_allow); }
Test(fail_nth, iova_ranges) { FAIL_NTH(c_ranges); }

static int c_queries(struct fx *f)
{
	struct ioasid_mapping m;
	struct ioasid_ioas_info ii;
	struct ioasid_file_info fi;
	uint32_t ids[8], nr = 8;
	int r;

	r = ioasid_lookup(f->ctx, f->ioas, 0x180000, &m);
	if (r == 0)
		r = ioasid_mapping_next(f->ctx, f->ioas, 0x500000, &m);
	if (r == 0)
		r = ioasid_file_get_info(f->ctx, f->ioas, m.file_id, &fi);
	if (r == 0)
		r = ioasid_ioas_get_info(f->ctx, f->ioas, &ii);
	if (r == 0)
		r = ioasid_ioas_list(f->ctx, ids, &nr);
	return r;
}

/* With tracking on (the test starts it): a read, then an unmap of
 * what it read, which changes the state only as the last step. */
static int c_dirty(struct fx *f)
{
	uint64_t bitmap[16];
	int r;

	r = ioasid_dirty_read(f->ctx, f->ioas, 0x100000, 4 * MiB, bitmap, 0);
	if (r == 0)
		r = ioasid_unmap_get_dirty(f->ctx, f->ioas, 0x100000, 0x4000,
					   0, bitmap, NULL);
	return r;
}

static int c_dirty_start(struct fx *f)
{
	return ioasid_dirty_start(f->ctx, f->ioas, 0);
}

static int c_dirty_stop(struct fx *f)
{
	return ioasid_dirty_stop(f->ctx, f->ioas);
}

Test(fail_nth, queries) { FAIL_NTH(c_queries); }
Test(fail_nth, dirty_read)
{
	cr_assert_eq(ioasid_dirty_start(F.ctx, F.ioas, 0), 0);
	FAIL_NTH(c_dirty);
}

Test(fail_nth, dirty_start) { FAIL_NTH(c_dirty_start); }

Test(fail_nth, dirty_stop)
{
	cr_assert_eq(ioasid_dirty_start(F.ctx, F.ioas, 0), 0);
	FAIL_NTH(c_dirty_stop);
}

/* tracking on with pages written: the image's DIRTY record */
Test(fail_nth, ctx_export_import_dirty)
{
	uint8_t buf[64] = { 1 };
	uint64_t done;

	if (F.remote)
		cr_skip_test("a context on ioasidd is not exported");
	bind_attach(&F.dev, NIC, F.ioas);
	cr_assert_eq(ioasid_dirty_start(F.ctx, F.ioas, 0), 0);
	for (uint64_t iova = 0x101000; iova < 0x500000; iova += 0x81000)
		cr_assert_eq(ioasid_device_dma(F.ctx, F.dev, iova, buf,
					       sizeof(buf), IOASID_DMA_WRITE,
					       &done), 0, "%s",
			     ioasid_last_error(F.ctx));
	FAIL_NTH(c_export_import);
}

static int c_convert_shared(struct fx *f)
{
	struct ioasid_iova_range r[2] = { { 0x1000, 0x3fff },
					  { 0x300000, 0x4fffff } };

	return ioasid_convert(f->ctx, f->rioas, r, 2, IOASID_CONVERT_SHARED,
			      NULL);
}

static int c_convert_private(struct fx *f)
{
	struct ioasid_iova_range r = { 0x2000, 0x2fff };

	return ioasid_convert(f->ctx, f->rioas, &r, 1, IOASID_CONVERT_PRIVATE,
			      NULL);
}

Test(fail_nth, convert_shared) { FAIL_NTH(c_convert_shared); }
Test(fail_nth, convert_private)
{
	cr_assert_eq(c_convert_shared(&F), 0);
	FAIL_NTH(c_convert_private);
}

/* ---- devices -------------------------------------------------------------- */

static int c_dev_queries(struct fx *f)
{
	struct ioasid_iommu_info iommus[16];
	struct ioasid_device_info devs[64], info;
	uint32_t nr = 16;
	int r;

	r = ioasid_iommu_list(f->ctx, iommus, &nr);
	nr = 64;
	if (r == 0)
		r = ioasid_device_list(f->ctx, devs, &nr);
	if (r == 0)
		r = ioasid_device_get_info(f->ctx, NIC, &info);
	return r;
}

static int c_bind(struct fx *f)
{
	return ioasid_device_bind(f->ctx, NIC, -1, &f->scratch);
}

static int c_unbind(struct fx *f)
{
	return ioasid_device_unbind(f->ctx, f->dev);
}

static int c_attach(struct fx *f)
{
	return ioasid_device_attach(f->ctx, f->dev, f->ioas, 0);
}

static int c_replace(struct fx *f)
{
	return ioasid_device_replace(f->ctx, f->dev, f->ioas2, 0);
}

static int c_detach(struct fx *f)
{
	return ioasid_device_detach(f->ctx, f->dev);
}

static int c_get_fd(struct fx *f)
{
	int fd = -1, r = ioasid_device_get_fd(f->ctx, f->dev, &fd);

	if (fd >= 0)
		close(fd);
	/* the sim has no VFIO file to give; a policy without device-fds none */
	return r == -EOPNOTSUPP || r == -ENODEV || r == -EPERM ? 0 : r;
}

static int c_dma(struct fx *f)
{
	char buf[8192];
	uint64_t done;

	memset(buf, 0x5a, sizeof(buf));
	return ioasid_device_dma(f->ctx, f->dev, 0x100000, buf, sizeof(buf),
				 IOASID_DMA_WRITE, &done);
}

static int c_domains(struct fx *f)
{
	struct ioasid_domain_info d[8];
	uint32_t nr = 8;

	return ioasid_domain_list(f->ctx, f->ioas, d, &nr);
}

Test(fail_nth, device_queries) { FAIL_NTH(c_dev_queries); }
Test(fail_nth, device_bind) { FAIL_NTH(c_bind); }
Test(fail_nth, device_unbind)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_unbind);
}
Test(fail_nth, device_attach)
{
	bind_attach(&F.dev, NIC, 0);
	FAIL_NTH(c_attach);
}
Test(fail_nth, device_attach_second)
{
	/* a second device of the same IOMMU: the domain is shared */
	bind_attach(&F.dev2, GPU0, F.ioas);
	bind_attach(&F.dev, NIC, 0);
	FAIL_NTH(c_attach);
}
Test(fail_nth, device_replace)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_replace);
}
Test(fail_nth, device_detach)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_detach);
}
Test(fail_nth, device_get_fd)
{
	bind_attach(&F.dev, NIC, 0);
	FAIL_NTH(c_get_fd);
}
Test(fail_nth, device_dma)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_dma);
}
static int c_pasid_attach(struct fx *f)
{
	return ioasid_device_pasid_attach(f->ctx, f->dev, 5, f->ioas2, 0);
}

static int c_pasid_replace(struct fx *f)
{
	return ioasid_device_pasid_replace(f->ctx, f->dev, 5, f->ioas, 0);
}

static int c_pasid_detach(struct fx *f)
{
	return ioasid_device_pasid_detach(f->ctx, f->dev, 5);
}

static int c_pasid_list_dma(struct fx *f)
{
	struct ioasid_pasid_info p[4];
	uint32_t nr = 4;
	char buf[4096];
	int r = ioasid_device_pasid_list(f->ctx, f->dev, p, &nr);

	memset(buf, 0x5a, sizeof(buf));
	if (r == 0)
		r = ioasid_device_dma_pasid(f->ctx, f->dev, 5, 0x100000, buf,
					    sizeof(buf), IOASID_DMA_WRITE,
					    NULL);
	return r;
}

/* GPU0 has PASIDs; its own requests on ioas, PASID 5 on ioas2 */
Test(fail_nth, device_pasid_attach)
{
	bind_attach(&F.dev, GPU0, F.ioas);
	FAIL_NTH(c_pasid_attach);
}
Test(fail_nth, device_pasid_replace)
{
	bind_attach(&F.dev, GPU0, F.ioas);
	cr_assert_eq(c_pasid_attach(&F), 0);
	FAIL_NTH(c_pasid_replace);
}
Test(fail_nth, device_pasid_detach)
{
	bind_attach(&F.dev, GPU0, F.ioas);
	cr_assert_eq(c_pasid_attach(&F), 0);
	FAIL_NTH(c_pasid_detach);
}
Test(fail_nth, device_pasid_list_dma)
{
	bind_attach(&F.dev, GPU0, F.ioas);
	cr_assert_eq(ioasid_device_pasid_attach(F.ctx, F.dev, 5, F.ioas, 0), 0);
	FAIL_NTH(c_pasid_list_dma);
}
Test(fail_nth, domain_list)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_domains);
}
Test(fail_nth, map_with_device)
{
	/* the mapping goes into a domain too */
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_map_file);
}
Test(fail_nth, unmap_cut_with_device)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_unmap_cut);
}
Test(fail_nth, copy_with_device)
{
	bind_attach(&F.dev, NIC, F.ioas2);
	FAIL_NTH(c_copy_other);
}

/* ---- faults, events, status, observer, hotplug ---------------------------- */

static int c_fault_read(struct fx *f)
{
	struct ioasid_fault faults[8];
	uint32_t nr = 8;

	return ioasid_fault_read(f->ctx, faults, &nr);
}

static int c_fault_after_dma(struct fx *f)
{
	char buf[4096];
	uint64_t done;
	int r;

	/* DMA to unmapped IOVA: a fault record */
	r = ioasid_device_dma(f->ctx, f->dev, 0x40000000, buf, sizeof(buf),
			      IOASID_DMA_WRITE, &done);
	return r == -EFAULT || r == -EIO || r == -ENOENT ? 0 : r;
}

static int c_events(struct fx *f)
{
	struct ioasid_event ev;
	int r = ioasid_event_subscribe(f->ctx, IOASID_EVENT_GROUP_FAULT |
				       IOASID_EVENT_GROUP_DEVICE);

	if (r == 0)
		r = ioasid_event_get_fd(f->ctx) >= 0 ? 0 : -EBADF;
	if (r == 0)
		r = ioasid_event_read(f->ctx, &ev);
	return r == -EAGAIN ? 0 : r;
}

static int c_status(struct fx *f)
{
	struct ioasid_status st;

	return ioasid_get_status(f->ctx, &st);
}

static int c_observer(struct fx *f)
{
	return ioasid_set_observer(f->ctx, 1);
}

static int c_unplug(struct fx *f)
{
	return ioasid_sim_hotplug(f->ctx, GPU0, 0);
}

Test(fail_nth, fault_read)
{
	bind_attach(&F.dev, NIC, F.ioas);
	cr_assert_eq(c_fault_after_dma(&F), 0);
	FAIL_NTH(c_fault_read);
}
Test(fail_nth, fault_record)
{
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_fault_after_dma);
}
Test(fail_nth, events) { FAIL_NTH(c_events); }
Test(fail_nth, get_status) { FAIL_NTH(c_status); }
Test(fail_nth, set_observer) { FAIL_NTH(c_observer); }
Test(fail_nth, sim_hotplug)
{
	bind_attach(&F.dev, GPU0, F.ioas);
	FAIL_NTH(c_unplug);
}

/* ---- KVM ---------------------------------------------------------------------- */

static int c_vm_bind(struct fx *f)
{
	return ioasid_vm_bind(f->ctx, f->vm_fd, -1, &f->scratch);
}

static int c_vm_ops(struct fx *f)
{
	struct ioasid_vm_info vi;
	uint32_t ids[4], nr = 4;
	int r = ioasid_vm_get_info(f->ctx, f->vm, &vi);

	if (r == 0)
		r = ioasid_vm_list(f->ctx, ids, &nr);
	return r;
}

static int c_vm_policy(struct fx *f)
{
	return ioasid_vm_set_policy(f->ctx, f->vm,
				    IOASID_VM_FORBID_NONCOHERENT);
}

static int c_set_vm(struct fx *f)
{
	return ioasid_device_set_vm(f->ctx, f->dev, f->vm);
}

static int c_vm_unbind(struct fx *f)
{
	return ioasid_vm_unbind(f->ctx, f->vm);
}

static void need_vm(void)
{
	if (!kvm_vm())
		cr_skip_test("no KVM VM: /dev/kvm is missing or refused");
}

static void bound_vm(void)
{
	need_vm();
	cr_assert_eq(ioasid_vm_bind(F.ctx, F.vm_fd, -1, &F.vm), 0, "%s",
		     ioasid_last_error(F.ctx));
}

Test(fail_nth, vm_bind)
{
	need_vm();
	FAIL_NTH(c_vm_bind);
}
Test(fail_nth, vm_queries)
{
	bound_vm();
	FAIL_NTH(c_vm_ops);
}
Test(fail_nth, vm_set_policy)
{
	bound_vm();
	FAIL_NTH(c_vm_policy);
}
Test(fail_nth, device_set_vm)
{
	bound_vm();
	bind_attach(&F.dev, NIC, F.ioas);
	FAIL_NTH(c_set_vm);
}
Test(fail_nth, vm_unbind)
{
	bound_vm();
	bind_attach(&F.dev, NIC, F.ioas);
	cr_assert_eq(c_set_vm(&F), 0, "%s", ioasid_last_error(F.ctx));
	FAIL_NTH(c_vm_unbind);
}

/* ---- the injection itself works ----------------------------------------- */

Test(fail_nth, injection_reaches_the_library)
{
	uint32_t id;

	/* the first allocation of an IOAS alloc fails: the wrapper is live */
	failnth_arm(1);
	cr_assert_eq(ioasid_ioas_alloc(F.ctx, 0, &id), -ENOMEM);
	cr_assert(failnth_disarm());
	cr_assert_gt(FAIL_NTH(c_ioas_alloc), 0);
}

/* ---- first insertions: the hash tables are created then ------------------ */

Test(fail_nth, first_ioas_alloc_of_a_context)
{
	ioasid_unref(F.ctx);
	F.ctx = test_ctx();
	FAIL_NTH(c_ioas_alloc);
}

static int c_map_first_file(struct fx *f)
{
	uint64_t iova = 0;

	return ioasid_map_file(f->ctx, f->scratch, f->fd, 0, MiB, RW, &iova);
}

Test(fail_nth, first_file_of_an_ioas)
{
	cr_assert_eq(ioasid_ioas_alloc(F.ctx, 0, &F.scratch), 0);
	FAIL_NTH(c_map_first_file);
}

Test(fail_nth, copy_into_fresh_ioas)
{
	cr_assert_eq(ioasid_ioas_alloc(F.ctx, 0, &F.ioas2), 0);
	FAIL_NTH(c_copy_other);
}

/* ---- nested tables --------------------------------------------------------- */

static uint32_t nest_parent, nested;

/* A nest parent with guest memory mapped, device @name bound. */
static void nest_setup_dev(const char *name)
{
	uint64_t iova = 0x100000;

	cr_assert_eq(ioasid_ioas_alloc(F.ctx, IOASID_IOAS_NEST_PARENT,
				       &nest_parent), 0);
	cr_assert_eq(ioasid_map_file(F.ctx, nest_parent, F.fd, 0, 4 * MiB,
				     RW | FIXED, &iova), 0);
	bind_attach(&F.dev, name, 0);
}

/* ... the NIC. */
static void nest_setup(void)
{
	nest_setup_dev(NIC);
}

static int c_nested_alloc(struct fx *f)
{
	struct ioasid_nested_vtd_s1 s1 = {
		.pgtbl_addr = 0x100000, .addr_width = 48,
	};

	return ioasid_nested_alloc(f->ctx, nest_parent, f->dev,
				   IOASID_NESTED_VTD_S1, &s1, sizeof(s1), 0,
				   &nested);
}

static int c_attach_nested(struct fx *f)
{
	return ioasid_device_attach_nested(f->ctx, f->dev, nested, 0);
}

static int c_replace_nested(struct fx *f)
{
	return ioasid_device_replace_nested(f->ctx, f->dev, nested, 0);
}

static int c_nested_invalidate(struct fx *f)
{
	struct ioasid_nested_inval v[2] = {
		{ .addr = 0x1000, .npages = 4 },
		{ .flags = IOASID_NESTED_INVAL_ALL },
	};
	uint32_t nr = 2;

	return ioasid_nested_invalidate(f->ctx, nested, v, &nr, NULL);
}

/* a new stage-2 domain of the parent, then the table */
Test(fail_nth, nested_alloc)
{
	nest_setup();
	FAIL_NTH(c_nested_alloc);
}

/* over the domain a device attached to the parent already made */
Test(fail_nth, nested_alloc_existing_domain)
{
	nest_setup();
	cr_assert_eq(ioasid_device_attach(F.ctx, F.dev, nest_parent, 0), 0);
	FAIL_NTH(c_nested_alloc);
}

Test(fail_nth, device_attach_nested)
{
	nest_setup();
	cr_assert_eq(c_nested_alloc(&F), 0);
	FAIL_NTH(c_attach_nested);
}

Test(fail_nth, device_replace_nested)
{
	nest_setup();
	cr_assert_eq(c_nested_alloc(&F), 0);
	cr_assert_eq(ioasid_device_attach(F.ctx, F.dev, nest_parent, 0), 0);
	FAIL_NTH(c_replace_nested);
}

Test(fail_nth, nested_invalidate)
{
	nest_setup();
	cr_assert_eq(c_nested_alloc(&F), 0);
	cr_assert_eq(c_attach_nested(&F), 0);
	FAIL_NTH(c_nested_invalidate);
}

static int c_pasid_attach_nested(struct fx *f)
{
	return ioasid_device_pasid_attach_nested(f->ctx, f->dev, 5, nested, 0);
}

static int c_pasid_replace_nested(struct fx *f)
{
	return ioasid_device_pasid_replace_nested(f->ctx, f->dev, 5, nested,
						  0);
}

/* GPU0 (PASIDs) and a nested table made for it */
Test(fail_nth, device_pasid_attach_nested)
{
	nest_setup_dev(GPU0);
	cr_assert_eq(c_nested_alloc(&F), 0);
	FAIL_NTH(c_pasid_attach_nested);
}

/* from the parent IOAS itself to the table over it */
Test(fail_nth, device_pasid_replace_nested)
{
	nest_setup_dev(GPU0);
	cr_assert_eq(c_nested_alloc(&F), 0);
	cr_assert_eq(ioasid_device_pasid_attach(F.ctx, F.dev, 5, nest_parent,
						0), 0);
	FAIL_NTH(c_pasid_replace_nested);
}

/* from the table back to an IOAS, and off it */
Test(fail_nth, device_pasid_replace_from_nested)
{
	nest_setup_dev(GPU0);
	cr_assert_eq(c_nested_alloc(&F), 0);
	cr_assert_eq(c_pasid_attach_nested(&F), 0);
	FAIL_NTH(c_pasid_replace);
}

Test(fail_nth, device_pasid_detach_nested)
{
	nest_setup_dev(GPU0);
	cr_assert_eq(c_nested_alloc(&F), 0);
	cr_assert_eq(c_pasid_attach_nested(&F), 0);
	FAIL_NTH(c_pasid_detach);
}

/* ---- vIOMMUs ------------------------------------------------------------------ */

static uint32_t viommu, vdevice;

static int c_viommu_alloc(struct fx *f)
{
	return ioasid_viommu_alloc(f->ctx, nest_parent, f->dev,
				   IOASID_VIOMMU_SIM, 0, &viommu);
}

static int c_vdevice_alloc(struct fx *f)
{
	return ioasid_vdevice_alloc(f->ctx, viommu, f->dev, 0x100, &vdevice);
}

static int c_viommu_nested_alloc(struct fx *f)
{
	struct ioasid_nested_vtd_s1 s1 = {
		.pgtbl_addr = 0x100000, .addr_width = 48,
	};

	return ioasid_viommu_nested_alloc(f->ctx, viommu, f->dev,
					  IOASID_NESTED_VTD_S1, &s1,
					  sizeof(s1), 0, &nested);
}

static int c_viommu_invalidate(struct fx *f)
{
	struct ioasid_viommu_inval v[2] = {
		{ .virt_id = 0x100, .addr = 0x1000, .npages = 4 },
		{ .virt_id = 0x100, .flags = IOASID_VIOMMU_INVAL_ALL },
	};
	uint32_t nr = 2;

	return ioasid_viommu_invalidate(f->ctx, viommu, v, &nr, NULL);
}

static int c_viommu_list(struct fx *f)
{
	struct ioasid_viommu_info info[2];
	struct ioasid_vdevice_info vd[2];
	uint32_t nr = 2;
	int r;

	r = ioasid_viommu_list(f->ctx, nest_parent, info, &nr);
	if (r < 0)
		return r;
	nr = 2;
	return ioasid_vdevice_list(f->ctx, nest_parent, vd, &nr);
}

Test(fail_nth, viommu_alloc)
{
	nest_setup();
	FAIL_NTH(c_viommu_alloc);
}

Test(fail_nth, vdevice_alloc)
{
	nest_setup();
	cr_assert_eq(c_viommu_alloc(&F), 0);
	FAIL_NTH(c_vdevice_alloc);
}

Test(fail_nth, viommu_nested_alloc)
{
	nest_setup();
	cr_assert_eq(c_viommu_alloc(&F), 0);
	FAIL_NTH(c_viommu_nested_alloc);
}

Test(fail_nth, viommu_invalidate_and_list)
{
	nest_setup();
	cr_assert_eq(c_viommu_alloc(&F), 0);
	cr_assert_eq(c_vdevice_alloc(&F), 0);
	FAIL_NTH(c_viommu_invalidate);
	FAIL_NTH(c_viommu_list);
}

/* ---- the state image with nested tables, PASIDs and vIOMMUs -------------- */

/* a table with the device on it, PASIDs on it and on its parent */
Test(fail_nth, ctx_export_import_nested)
{
	if (F.remote)
		cr_skip_test("a context on ioasidd is not exported");
	nest_setup_dev(GPU0);
	cr_assert_eq(c_nested_alloc(&F), 0);
	cr_assert_eq(c_attach_nested(&F), 0, "%s", ioasid_last_error(F.ctx));
	cr_assert_eq(c_pasid_attach_nested(&F), 0, "%s",
		     ioasid_last_error(F.ctx));
	cr_assert_eq(ioasid_device_pasid_attach(F.ctx, F.dev, 6, nest_parent,
						0), 0, "%s",
		     ioasid_last_error(F.ctx));
	FAIL_NTH(c_export_import);
}

/* a vIOMMU, its vDEVICE, a table on it with the device attached */
Test(fail_nth, ctx_export_import_viommu)
{
	if (F.remote)
		cr_skip_test("a context on ioasidd is not exported");
	nest_setup();
	cr_assert_eq(c_viommu_alloc(&F), 0);
	cr_assert_eq(c_vdevice_alloc(&F), 0);
	cr_assert_eq(c_viommu_nested_alloc(&F), 0);
	cr_assert_eq(c_attach_nested(&F), 0, "%s", ioasid_last_error(F.ctx));
	FAIL_NTH(c_export_import);
}
