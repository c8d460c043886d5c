/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state image (proto/image.h): ioasid_ctx_export() and
 * ioasid_ctx_import() in one process (tests/test_handover.c does it
 * across exec), and every way an image can be wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ctx.h"
#include "helpers.h"
#include "proto/image.h"
#include "snapshot.h"
#include "util/crc32c.h"

#define MiB (1ULL << 20)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA
#define NIC "0000:00:01.0"
#define GPU "0000:00:03.0"

struct state {
	struct ioasid_ctx *ctx;
	uint32_t plain, restr, spare, nic, gpu, vm;
	int ram, ram2, kvm, vm_fd;
};

/*
 * A context with something of everything: a freed IOAS (ids with a gap),
 * an IOAS with allowed ranges and a snoop mode, mappings of two files cut
 * in pieces, a restricted IOAS with shared runs, two devices attached.
 */
static void build(struct state *st)
{
	struct ioasid_iova_range allow = { 0x100000, 0x7fffffff };
	struct ioasid_iova_range shared[2] = {
		{ 0x201000, 0x203fff }, { 0x280000, 0x280fff },
	};
	uint64_t iova, converted;
	uint32_t gone;

	cr_assert_eq(ioasid_new("sim", &st->ctx), 0);
	st->ram = test_memfd(4 * MiB);
	st->ram2 = test_memfd(MiB);
	cr_assert_eq(ioasid_ioas_alloc(st->ctx, 0, &gone), 0);
	cr_assert_eq(ioasid_ioas_alloc(st->ctx, 0, &st->plain), 0);
	cr_assert_eq(ioasid_ioas_destroy(st->ctx, gone), 0);
	cr_assert_eq(ioasid_ioas_set_snoop_mode(st->ctx, st->plain,
						IOASID_SNOOP_ENFORCE), 0);
	cr_assert_eq(ioasid_allow_iovas(st->ctx, st->plain, &allow, 1), 0);
	iova = 0x100000;
	cr_assert_eq(ioasid_map_file(st->ctx, st->plain, st->ram, 0, 2 * MiB,
				     RW | FIXED, &iova), 0);
	/* a cut: the pieces keep file, offset and access */
	cr_assert_eq(ioasid_unmap(st->ctx, st->plain, 0x180000, 0x3000, 0, NULL), 0);
	iova = 0x400000;
	cr_assert_eq(ioasid_map_file(st->ctx, st->plain, st->ram2, 0x1000,
				     0x4000, IOASID_MAP_READ | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_ioas_alloc(st->ctx, 0, &st->spare), 0);
	cr_assert_eq(ioasid_ioas_alloc(st->ctx, IOASID_IOAS_RESTRICTED,
				       &st->restr), 0);
	iova = 0x200000;
	cr_assert_eq(ioasid_map_file(st->ctx, st->restr, st->ram, 2 * MiB,
				     MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_convert(st->ctx, st->restr, shared, 2,
				    IOASID_CONVERT_SHARED, &converted), 0);
	/* a shared page whose mapping went: its state stays */
	cr_assert_eq(ioasid_unmap(st->ctx, st->restr, 0x280000, 0x1000, 0,
				  NULL), 0);
	cr_assert_eq(ioasid_device_bind(st->ctx, NIC, -1, &st->nic), 0);
	cr_assert_eq(ioasid_device_bind(st->ctx, GPU, -1, &st->gpu), 0);
	cr_assert_eq(ioasid_device_attach(st->ctx, st->nic, st->restr, 0), 0,
		     "%s", ioasid_last_error(st->ctx));
	cr_assert_eq(ioasid_device_attach(st->ctx, st->gpu, st->plain, 0),
		     0, "%s", ioasid_last_error(st->ctx));
	cr_assert_eq(ioasid_event_subscribe(st->ctx, IOASID_EVENT_GROUP_DEVICE),
		     0);
	/* a VM, where the machine has KVM (its bookkeeping is carried) */
	st->vm_fd = -1;
	st->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (st->kvm >= 0)
		st->vm_fd = ioctl(st->kvm, 0xAE01 /* KVM_CREATE_VM */, 0);
	if (st->vm_fd >= 0) {
		cr_assert_eq(ioasid_vm_bind(st->ctx, st->vm_fd, -1, &st->vm),
			     0, "%s", ioasid_last_error(st->ctx));
		cr_assert_eq(ioasid_vm_set_policy(st->ctx, st->vm,
					IOASID_VM_FORBID_NONCOHERENT), 0);
		cr_assert_eq(ioasid_device_set_vm(st->ctx, st->nic, st->vm), 0,
			     "%s", ioasid_last_error(st->ctx));
	}
}

static void teardown_state(struct state *st)
{
	ioasid_unref(st->ctx);
	close(st->ram);
	close(st->ram2);
	if (st->vm_fd >= 0)
		close(st->vm_fd);
	if (st->kvm >= 0)
		close(st->kvm);
}

static int export_ok(struct ioasid_ctx *ctx)
{
	int memfd = -1;

	cr_assert_eq(ioasid_ctx_export(ctx, &memfd), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_geq(memfd, 0);
	return memfd;
}

Test(image, round_trip_is_identical)
{
	struct snap before, after, again;
	struct ioasid_ctx *copy = NULL;
	struct state st;
	uint8_t buf[4096], got[4096];
	uint64_t done;
	int memfd, seals;

	build(&st);
	snapshot_take(st.ctx, &before, SNAP_STATUS);
	memfd = export_ok(st.ctx);
	seals = fcntl(memfd, F_GET_SEALS);
	cr_assert_eq(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW |
			      F_SEAL_SEAL),
		     F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	cr_assert_eq(fcntl(memfd, F_GETFD) & FD_CLOEXEC, 0,
		     "the image is for a successor across exec");
	snapshot_take(st.ctx, &again, SNAP_STATUS);
	cr_assert(snapshot_equal(&before, &again), "export changed nothing");

	cr_assert_eq(ioasid_ctx_import(memfd, &copy), 0, "%s",
		     ioasid_last_error(NULL));
	snapshot_take(copy, &after, SNAP_STATUS);
	cr_assert(snapshot_equal(&before, &after),
		  "the imported context is the exported one");

	/* DMA through the rebuilt page tables lands in the file */
	memset(buf, 0x6b, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(copy, st.gpu, 0x100000, buf, 4096,
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(copy));
	cr_assert_eq(pread(st.ram, got, 4096, 0), 4096);
	cr_assert_arr_eq(got, buf, 4096);
	/* the shared run of the restricted IOAS too, the private page not */
	memset(buf, 0x2c, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(copy, st.nic, 0x202000, buf, 4096,
				       IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(pread(st.ram, got, 4096, 2 * MiB + 0x2000), 4096);
	cr_assert_arr_eq(got, buf, 4096);
	cr_assert_lt(ioasid_device_dma(copy, st.nic, 0x204000, buf, 4096,
				       IOASID_DMA_WRITE, &done), 0,
		     "a private page stays private");
	/* the cut hole is still a hole */
	cr_assert_lt(ioasid_device_dma(copy, st.gpu, 0x181000, buf, 4096,
				       IOASID_DMA_WRITE, &done), 0);
	/* new objects do not reuse an id */
	{
		uint32_t id;

		cr_assert_eq(ioasid_ioas_alloc(copy, 0, &id), 0);
		cr_assert_gt(id, st.gpu);
	}
	snapshot_free(&before);
	snapshot_free(&after);
	snapshot_free(&again);
	ioasid_unref(copy);
	close(memfd);
	teardown_state(&st);
}

Test(image, import_closes_the_kept_files_abandon_too)
{
	struct ioasid_ctx *copy;
	struct state st;
	int memfd, fds;

	build(&st);
	fds = test_count_fds();
	memfd = export_ok(st.ctx);
	cr_assert_gt(test_count_fds(), fds + 1, "the files are kept open");
	cr_assert_eq(ioasid_ctx_import(memfd, &copy), 0);
	ioasid_unref(copy);
	cr_assert_eq(test_count_fds(), fds + 1, "only the image is left");
	close(memfd);

	memfd = export_ok(st.ctx);
	cr_assert_eq(ioasid_ctx_export_abandon(memfd), 0);
	close(memfd);
	cr_assert_eq(test_count_fds(), fds);
	teardown_state(&st);
}

Test(image, empty_context)
{
	struct ioasid_ctx *ctx, *copy;
	struct snap a, b;
	int memfd;

	cr_assert_eq(ioasid_new("sim", &ctx), 0);
	snapshot_take(ctx, &a, SNAP_STATUS);
	memfd = export_ok(ctx);
	cr_assert_eq(ioasid_ctx_import(memfd, &copy), 0);
	snapshot_take(copy, &b, SNAP_STATUS);
	cr_assert(snapshot_equal(&a, &b));
	snapshot_free(&a);
	snapshot_free(&b);
	ioasid_unref(copy);
	ioasid_unref(ctx);
	close(memfd);
}

Test(image, refusals)
{
	struct ioasid_ctx *ctx = test_ctx(), *copy = NULL;
	int memfd = -1, fd = test_memfd(MiB), fqfd = -1;
	uint32_t ioas, fq;
	uint64_t iova = 0;
	void *p;

	cr_assert_eq(ioasid_ctx_export(NULL, &memfd), -EINVAL);
	cr_assert_eq(ioasid_ctx_export(ctx, NULL), -EINVAL);
	cr_assert_eq(ioasid_ctx_import(fd, NULL), -EINVAL);
	cr_assert_eq(ioasid_ctx_import(-1, &copy), -EBADF);
	cr_assert_eq(ioasid_ctx_import(fd, &copy), -EINVAL, "not an image");
	cr_assert_null(copy);
	if (ioasid_is_remote(ctx)) {
		cr_assert_eq(ioasid_ctx_export(ctx, &memfd), -EOPNOTSUPP);
		cr_assert(strstr(ioasid_last_error(ctx), "session"));
		goto out;
	}
	/* a mapping by address does not survive exec */
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(ioasid_map_user(ctx, ioas, p, 8192, RW, &iova), 0);
	cr_assert_eq(ioasid_ctx_export(ctx, &memfd), -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(ctx), "by address"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(memfd, -1);
	munmap(p, 8192);
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova, 8192, 0, NULL), 0);
	/* a fault queue is carried (image, fault_queue_carried) */
	cr_assert_eq(ioasid_fault_queue_alloc(ctx, ioas, 0, 0, 0, &fq, &fqfd),
		     0, "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ctx_export(ctx, &memfd), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ctx_export_abandon(memfd), 0);
	close(fqfd);
out:
	close(fd);
	ioasid_unref(ctx);
}

/* ---- fault queues ----------------------------------------------------- */

#define FQ_IOVA 0x100000ull

struct fq_rig {
	struct ioasid_ctx *ctx;
	uint32_t dev, ioas, fq;
	int mem, efd;
};

/* Page 0 at FQ_IOVA mapped, the next ones not: DMA there asks. */
static void fq_rig_up(struct fq_rig *r)
{
	uint64_t iova = FQ_IOVA;

	cr_assert_eq(ioasid_new("sim", &r->ctx), 0);
	r->mem = test_memfd(4 * 4096);
	cr_assert_eq(ioasid_device_bind(r->ctx, NIC, -1, &r->dev), 0);
	cr_assert_eq(ioasid_ioas_alloc(r->ctx, 0, &r->ioas), 0);
	cr_assert_eq(ioasid_map_file(r->ctx, r->ioas, r->mem, 0, 4096,
				     RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_attach(r->ctx, r->dev, r->ioas, 0), 0);
	cr_assert_eq(ioasid_fault_queue_alloc(r->ctx, r->ioas, 8, 60000, 0,
					      &r->fq, &r->efd), 0, "%s",
		     ioasid_last_error(r->ctx));
}

static int fq_write(struct ioasid_ctx *ctx, uint32_t dev, uint64_t pg,
		    uint8_t v)
{
	uint8_t buf[4096];
	uint64_t done;

	memset(buf, v, sizeof(buf));
	return ioasid_device_dma(ctx, dev, FQ_IOVA + pg * 4096, buf, 4096,
				 IOASID_DMA_WRITE, &done);
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * Page requests outstanding and records not read yet cross the
 * hand-over: the successor gives the unread records, takes the answers
 * to the ones read before (their cookies), the devices' retries
 * complete, and the VMM's eventfd is the one that signals.
 */
Test(image, fault_queue_carried)
{
	struct ioasid_fault_queue_info info;
	struct ioasid_page_request q[4];
	struct ioasid_ctx *copy = NULL;
	struct fq_rig r;
	uint32_t nr = 1, early;
	uint64_t iova;
	int memfd;

	fq_rig_up(&r);
	cr_assert_eq(fq_write(r.ctx, r.dev, 1, 0x11), -EINPROGRESS);
	cr_assert_eq(fq_write(r.ctx, r.dev, 2, 0x22), -EINPROGRESS);
	cr_assert_eq(ioasid_fault_queue_read(r.ctx, r.fq, q, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(q[0].addr, FQ_IOVA + 4096);
	early = q[0].cookie;

	memfd = export_ok(r.ctx);
	cr_assert_eq(ioasid_ctx_import(memfd, &copy), 0, "%s",
		     ioasid_last_error(NULL));
	close(memfd);
	ioasid_unref(r.ctx);		/* the predecessor is gone */

	cr_assert(fd_readable(r.efd), "the VMM's eventfd signals the record "
		  "that waits");
	cr_assert_eq(ioasid_fault_queue_info(copy, r.fq, &info), 0, "%s",
		     ioasid_last_error(copy));
	cr_assert_eq(info.depth, 8);
	cr_assert_eq(info.timeout_ms, 60000);
	cr_assert_eq(info.target_id, r.ioas);
	cr_assert_eq(info.outstanding, 2);
	cr_assert_eq(info.queued, 1);
	cr_assert_eq(info.requests, 2);
	nr = 4;
	cr_assert_eq(ioasid_fault_queue_read(copy, r.fq, q, &nr), 0);
	cr_assert_eq(nr, 1, "the record not read yet, only it");
	cr_assert_eq(q[0].addr, FQ_IOVA + 2 * 4096);
	cr_assert_eq(q[0].fault_id, r.fq);
	cr_assert_eq(q[0].dev_id, r.dev);
	cr_assert_neq(q[0].cookie, early);
	cr_assert(!fd_readable(r.efd), "nothing waits any more");

	/* the VMM maps the pages and answers both, one by its old cookie */
	for (uint64_t pg = 1; pg <= 2; pg++) {
		iova = FQ_IOVA + pg * 4096;
		cr_assert_eq(ioasid_map_file(copy, r.ioas, r.mem, pg * 4096,
					     4096, RW | FIXED, &iova), 0);
	}
	cr_assert_eq(ioasid_fault_respond(copy, r.fq, early,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0,
		     "%s", ioasid_last_error(copy));
	cr_assert_eq(ioasid_fault_respond(copy, r.fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0,
		     "%s", ioasid_last_error(copy));
	cr_assert_eq(fq_write(copy, r.dev, 1, 0x11), 0, "%s",
		     ioasid_last_error(copy));
	cr_assert_eq(fq_write(copy, r.dev, 2, 0x22), 0, "%s",
		     ioasid_last_error(copy));
	{
		uint8_t b[2];

		cr_assert_eq(pread(r.mem, &b[0], 1, 4096), 1);
		cr_assert_eq(pread(r.mem, &b[1], 1, 2 * 4096), 1);
		cr_assert_eq(b[0], 0x11);
		cr_assert_eq(b[1], 0x22);
	}
	/* new requests go on with the same queue and eventfd */
	cr_assert_eq(fq_write(copy, r.dev, 3, 0x33), -EINPROGRESS);
	cr_assert(fd_readable(r.efd));
	cr_assert_eq(ioasid_fault_queue_destroy(copy, r.fq), -EBUSY);
	ioasid_unref(copy);
	close(r.efd);
	close(r.mem);
}

/* A client cannot hand a queue a descriptor or a state of its own. */
Test(image, fault_queue_state_only_from_an_image)
{
	struct ioasid_ctx *ctx;
	struct ioasid_op op;
	uint32_t ioas;
	int efd = eventfd(0, EFD_CLOEXEC);

	cr_assert_eq(ioasid_new("sim", &ctx), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	ioasid_op_init(&op, IOASID_CMD_FAULT_QUEUE_ALLOC);
	op.ioas_id = ioas;
	op.fd = efd;
	cr_assert_eq(ctx_call(ctx, &op), -EINVAL);
	cr_assert(strstr(op.errmsg, "state image"), "%s", op.errmsg);
	ioasid_unref(ctx);
	close(efd);
}

/* ---- hostile images -------------------------------------------------- */

static size_t image_bytes(int memfd, uint8_t **out)
{
	struct stat st;
	uint8_t *buf;

	cr_assert_eq(fstat(memfd, &st), 0);
	buf = malloc((size_t)st.st_size);
	cr_assert_eq(pread(memfd, buf, (size_t)st.st_size, 0), st.st_size);
	*out = buf;
	return (size_t)st.st_size;
}

static int image_of(const uint8_t *buf, size_t len)
{
	int fd = memfd_create("test-image", MFD_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	return fd;
}

static void fix_header_crc(uint8_t *buf)
{
	struct image_header *h = (struct image_header *)buf;

	h->crc = 0;
	h->crc = crc32c(0, h, sizeof(*h));
}

static void fix_records_crc(uint8_t *buf)
{
	struct image_header *h = (struct image_header *)buf;

	h->records_crc = crc32c(0, buf + sizeof(*h), h->size - sizeof(*h));
	fix_header_crc(buf);
}

/* @buf imports. */
static void import_ok(const uint8_t *buf, size_t len)
{
	struct ioasid_ctx *copy;
	int fd = image_of(buf, len);

	cr_assert_eq(ioasid_ctx_import(fd, &copy), 0, "%s",
		     ioasid_last_error(NULL));
	ioasid_unref(copy);
	close(fd);
}

/* Import @buf: the error it gives, and nothing was built. */
static int import_bytes(const uint8_t *buf, size_t len)
{
	struct ioasid_ctx *copy = NULL;
	int fd = image_of(buf, len), r;

	r = ioasid_ctx_import(fd, &copy);
	cr_assert_null(copy);
	cr_assert_neq(ioasid_last_error(NULL)[0], '\0', "a reason");
	close(fd);
	return r;
}

/* The first record of @type: its header. */
static struct image_record *find_record(uint8_t *buf, uint16_t type)
{
	struct image_header *h = (struct image_header *)buf;
	size_t pos = sizeof(*h);

	while (pos < h->size) {
		struct image_record *r = (struct image_record *)(buf + pos);

		if (r->type == type)
			return r;
		pos += sizeof(*r) + ((r->len + 7) & ~7U);
	}
	cr_assert_fail("no record of type %u", type);
	return NULL;
}

static void fix_record_crc(uint8_t *buf, struct image_record *r)
{
	r->crc = crc32c(0, r + 1, r->len);
	fix_records_crc(buf);
}

/*
 * An IOAS's file id counter comes through: a file that went took its id
 * along, so the imported context gives a new file the next id, never
 * that one, and ioasid_map_file_id() of the old id stays ENOENT.  The
 * image is then version 6 (without such a gap it stays at 1).  A counter
 * below a live file's id is refused, nothing built.
 */
Test(image, the_file_id_counter_comes_through)
{
	struct ioasid_ctx *ctx, *copy = NULL;
	int x = test_memfd(MiB), y = test_memfd(MiB), w = test_memfd(MiB);
	int z = test_memfd(MiB);
	struct ioasid_mapping m;
	struct image_record *rec;
	struct image_counters *ic;
	uint64_t iova = 0x400000;
	uint8_t *orig;
	uint32_t ioas, idy, idw;
	size_t len;
	int memfd;

	cr_assert_eq(ioasid_new("sim", &ctx), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, x, 0, 4096, IOASID_MAP_READ |
				     IOASID_MAP_FIXED_IOVA,
				     &(uint64_t){ 0x100000 }), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, y, 0, 4096, IOASID_MAP_READ |
				     IOASID_MAP_FIXED_IOVA,
				     &(uint64_t){ 0x200000 }), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, w, 0, 4096, IOASID_MAP_READ |
				     IOASID_MAP_FIXED_IOVA,
				     &(uint64_t){ 0x300000 }), 0);
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x200000, &m), 0);
	idy = m.file_id;
	cr_assert_eq(ioasid_lookup(ctx, ioas, 0x300000, &m), 0);
	idw = m.file_id;
	memfd = export_ok(ctx);
	len = image_bytes(memfd, &orig);
	cr_assert_eq(((const struct image_header *)orig)->version, 1,
		     "no gap: version 1");
	free(orig);
	ioasid_ctx_export_abandon(memfd);
	close(memfd);
	/* the newest file goes, and its id with it */
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x300000, 4096, 0, NULL), 0);
	memfd = export_ok(ctx);
	len = image_bytes(memfd, &orig);
	cr_assert_eq(((const struct image_header *)orig)->version, 6);

	/* a counter below a live file's id: refused, nothing built */
	{
		uint8_t *buf = malloc(len);

		memcpy(buf, orig, len);
		rec = find_record(buf, IMAGE_REC_COUNTERS);
		ic = (struct image_counters *)(rec + 1);
		cr_assert_eq(rec->len, sizeof(*ic));
		cr_assert_eq(ic->next_file_id, idw);
		ic->next_file_id = idy - 1;
		fix_record_crc(buf, rec);
		cr_assert_eq(import_bytes(buf, len), -EBADMSG);
		cr_assert(strstr(ioasid_last_error(NULL), "file id counter"),
			  "%s", ioasid_last_error(NULL));
		free(buf);
	}

	cr_assert_eq(ioasid_ctx_import(memfd, &copy), 0, "%s",
		     ioasid_last_error(NULL));
	cr_assert_eq(ioasid_map_file_id(copy, ioas, idw, 0, 4096,
					IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
					&iova), -ENOENT, "the old id names "
		     "nothing");
	cr_assert_eq(ioasid_map_file(copy, ioas, z, 0, 4096, IOASID_MAP_READ |
				     IOASID_MAP_FIXED_IOVA, &iova), 0);
	cr_assert_eq(ioasid_lookup(copy, ioas, 0x400000, &m), 0);
	cr_assert_eq(m.file_id, idw + 1, "file %u: not %u again", m.file_id,
		     idw);
	free(orig);
	close(memfd);
	ioasid_unref(copy);
	ioasid_unref(ctx);
	close(x);
	close(y);
	close(w);
	close(z);
}

Test(image, hostile)
{
	struct image_header *h;
	struct image_record *rec;
	struct state st;
	uint8_t *orig, *buf;
	size_t len;
	int memfd, fds;

	build(&st);
	memfd = export_ok(st.ctx);
	len = image_bytes(memfd, &orig);
	buf = malloc(len);
	fds = test_count_fds();

	/* sane: the copy imports */
	{
		import_ok(orig, len);
		/* the import closed the kept files: export again */
		close(memfd);
		memfd = export_ok(st.ctx);
		free(orig);
		cr_assert_eq(image_bytes(memfd, &orig), len);
		fds = test_count_fds();
	}

	/* truncated anywhere */
	for (size_t cut = 0; cut < len; cut += len / 37 + 1) {
		int r = import_bytes(orig, cut);

		cr_assert(r == -EBADMSG || (cut == 0 && r == -EINVAL),
			  "cut at %zu: %d", cut, r);
	}
	/* each byte flipped somewhere: refused, nothing built */
	for (size_t i = 0; i < len; i += 13) {
		memcpy(buf, orig, len);
		buf[i] ^= 0x40;
		cr_assert_lt(import_bytes(buf, len), 0, "byte %zu", i);
	}
	/* not an image */
	memcpy(buf, orig, len);
	buf[0] = 'X';
	cr_assert_eq(import_bytes(buf, len), -EINVAL);
	/* an embedded context's image is version 1: older readers take it */
	cr_assert_eq(((const struct image_header *)orig)->version, 1);
	/* a newer version */
	memcpy(buf, orig, len);
	h = (struct image_header *)buf;
	h->version = IMAGE_VERSION + 1;
	fix_header_crc(buf);
	cr_assert_eq(import_bytes(buf, len), -EPROTONOSUPPORT);
	cr_assert(strstr(ioasid_last_error(NULL), "version"));
	/* an unknown record type, CRCs right */
	memcpy(buf, orig, len);
	rec = find_record(buf, IMAGE_REC_NEXT_ID);
	rec->type = 77;
	fix_records_crc(buf);
	cr_assert_eq(import_bytes(buf, len), -EBADMSG);
	/* an ioasidd record in a context's image */
	memcpy(buf, orig, len);
	rec = find_record(buf, IMAGE_REC_NEXT_ID);
	rec->type = IMAGE_REC_DAEMON_FIRST;
	fix_records_crc(buf);
	cr_assert_eq(import_bytes(buf, len), -EINVAL);
	/* a descriptor that is another file */
	memcpy(buf, orig, len);
	rec = find_record(buf, IMAGE_REC_FD);
	((struct image_fd *)(rec + 1))->fd = st.ram2 == 0 ? 1 : 0;
	fix_record_crc(buf, rec);
	cr_assert_eq(import_bytes(buf, len), -EBADMSG);
	cr_assert(strstr(ioasid_last_error(NULL), "another file"), "%s",
		  ioasid_last_error(NULL));
	/* a descriptor that was not inherited */
	memcpy(buf, orig, len);
	rec = find_record(buf, IMAGE_REC_FD);
	((struct image_fd *)(rec + 1))->fd = 1000000;
	fix_record_crc(buf, rec);
	cr_assert_eq(import_bytes(buf, len), -EBADMSG);
	/* an op the codec refuses (its message cut short), CRCs right */
	memcpy(buf, orig, len);
	rec = find_record(buf, IMAGE_REC_OP);
	((uint8_t *)(rec + 1))[sizeof(struct image_op)] ^= 0xff;
	fix_record_crc(buf, rec);
	cr_assert_eq(import_bytes(buf, len), -EBADMSG);
	/* a device the backend does not have: the op's own error */
	memcpy(buf, orig, len);
	{
		uint8_t *p = memmem(buf, len, NIC, strlen(NIC));

		cr_assert(p);
		p[strlen(NIC) - 1] = '7';
		rec = NULL;
		for (size_t pos = sizeof(*h); pos < len;) {
			struct image_record *r =
				(struct image_record *)(buf + pos);

			if ((uint8_t *)r < p && p < (uint8_t *)(r + 1) + r->len)
				rec = r;
			pos += sizeof(*r) + ((r->len + 7) & ~7U);
		}
		cr_assert(rec);
		fix_record_crc(buf, rec);
	}
	cr_assert_eq(import_bytes(buf, len), -ENOENT, "%s",
		     ioasid_last_error(NULL));
	cr_assert(strstr(ioasid_last_error(NULL), "DEVICE_BIND"), "%s",
		  ioasid_last_error(NULL));
	/* two objects given one id: refused after the second op */
	memcpy(buf, orig, len);
	{
		struct image_op *first = NULL, *second = NULL;

		for (size_t pos = sizeof(*h); pos < len && !second;) {
			struct image_record *r =
				(struct image_record *)(buf + pos);
			struct image_op *o = (struct image_op *)(r + 1);

			if (r->type == IMAGE_REC_OP && o->expect_id) {
				if (!first)
					first = o;
				else if (o->expect_id != first->expect_id)
					second = o, rec = r;
			}
			pos += sizeof(*r) + ((r->len + 7) & ~7U);
		}
		cr_assert(second, "two ops that make objects");
		second->expect_id = first->expect_id;
		fix_record_crc(buf, rec);
	}
	cr_assert_eq(import_bytes(buf, len), -EEXIST, "%s",
		     ioasid_last_error(NULL));
	cr_assert(strstr(ioasid_last_error(NULL), "another one holds"), "%s",
		  ioasid_last_error(NULL));
	cr_assert_eq(test_count_fds(), fds, "a failed import leaks nothing");

	free(buf);
	free(orig);
	cr_assert_eq(ioasid_ctx_export_abandon(memfd), 0);
	close(memfd);
	teardown_state(&st);
}

/* The record whose payload holds @p. */
static struct image_record *record_holding(uint8_t *buf, size_t len,
					   const uint8_t *p)
{
	struct image_record *rec = NULL;

	for (size_t pos = sizeof(struct image_header); pos < len;) {
		struct image_record *r = (struct image_record *)(buf + pos);

		if ((uint8_t *)r < p && p < (uint8_t *)(r + 1) + r->len)
			rec = r;
		pos += sizeof(*r) + ((r->len + 7) & ~7U);
	}
	cr_assert(rec);
	return rec;
}

/*
 * A queue's carried state that lies (core/iopf.c's struct carried_queue,
 * 56 bytes, then 40-byte requests): refused, naming what, nothing built.
 */
Test(image, hostile_fault_queue)
{
	static const struct {
		size_t off, size;
		uint64_t value;
		const char *why;
	} lies[] = {
		{ 0, 4, 7, "version 7" },
		{ 4, 4, 17, "17 requests" },
		{ 4, 4, 1, "1 requests" },
		{ 56 + 4, 4, 999, "no bound device 999" },
		{ 56 + 12, 1, 9, "unknown state 9" },
		{ 56 + 13, 1, 0x80, "unknown flags" },
		{ 56 + 24, 8, 1ULL << 62, "exceed the timeout" },
		{ 56 + 40 + 14, 2, 8, "beyond the depth" },
		{ 56 + 40, 4, 0, "bad cookie" },
	};
	const uint32_t head[4] = { 1, 2, 2, 0 };
	struct ioasid_page_request q;
	struct fq_rig r;
	uint8_t *orig, *buf, *at = NULL;
	uint32_t nr = 1;
	size_t len;
	int memfd, fds;

	fq_rig_up(&r);
	cr_assert_eq(fq_write(r.ctx, r.dev, 1, 1), -EINPROGRESS);
	cr_assert_eq(fq_write(r.ctx, r.dev, 2, 2), -EINPROGRESS);
	cr_assert_eq(ioasid_fault_queue_read(r.ctx, r.fq, &q, &nr), 0);
	memfd = export_ok(r.ctx);
	len = image_bytes(memfd, &orig);
	buf = malloc(len);
	for (size_t i = 0; i + sizeof(head) <= len && !at; i += 4)
		if (!memcmp(orig + i, head, sizeof(head)))
			at = orig + i;
	cr_assert(at, "the queue's state is in the image");
	fds = test_count_fds();
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t *p;

		memcpy(buf, orig, len);
		p = buf + (at - orig) + lies[i].off;
		memcpy(p, &lies[i].value, lies[i].size);	/* little end */
		fix_record_crc(buf, record_holding(buf, len, p));
		cr_assert_eq(import_bytes(buf, len), -EBADMSG, "lie %zu: %s",
			     i, ioasid_last_error(NULL));
		cr_assert(strstr(ioasid_last_error(NULL), lies[i].why),
			  "lie %zu: \"%s\" lacks \"%s\"", i,
			  ioasid_last_error(NULL), lies[i].why);
		cr_assert(strstr(ioasid_last_error(NULL), "FAULT_QUEUE_ALLOC"),
			  "%s", ioasid_last_error(NULL));
	}
	cr_assert_eq(test_count_fds(), fds, "a failed import leaks nothing");
	import_ok(orig, len);	/* the image as it was still imports */
	free(buf);
	free(orig);
	close(memfd);
	ioasid_unref(r.ctx);
	close(r.efd);
	close(r.mem);
}

/* ---- dirty tracking --------------------------------------------------- */

#define NVME "0000:01:02.0"	/* sim1: no dirty tracking */
#define DIRTY_IOVA 0x400000ULL	/* 2 MiB aligned: 2 MiB leaves */
#define DIRTY_LEN (8 * MiB)

struct dirty_state {
	struct ioasid_ctx *ctx;
	uint32_t ioas, fallback, nic, gpu, nvme;
	int ram;
	char topo[40];			/* the image names it: kept till the end */
};

static void dirty_teardown(struct dirty_state *st)
{
	ioasid_unref(st->ctx);
	close(st->ram);
	unlink(st->topo);
}

static void dirty_dma(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova)
{
	uint8_t buf[64];
	uint64_t done = 0;

	memset(buf, 0x3c, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(ctx, dev, iova, buf, sizeof(buf),
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
}

/*
 * Dirty tracking on two IOASes: one whose two domains (the NIC's and the
 * GPU's, on two IOMMUs whose tables differ) track, with 4 KiB and 2 MiB leaves, pages
 * written by both and some read (cleared) since; one under the fallback
 * whose only domain cannot track.
 */
static void dirty_build(struct dirty_state *st)
{
	uint64_t iova = DIRTY_IOVA, bm[DIRTY_LEN / 4096 / 64];

	static const char topo[] =
		"iommu sim0 page-sizes=4K,2M address-width=48 "
		"dirty-tracking=yes\n"
		"iommu sim1 page-sizes=4K,2M address-width=39\n"
		"iommu sim2 page-sizes=4K,2M address-width=40 "
		"dirty-tracking=yes\n"
		"device " NIC " vendor=0x8086 device=0x1572 class=0x020000 iommu=sim0 group=1\n"
		"device " GPU " vendor=0x10de device=0x2330 class=0x030200 iommu=sim2 group=3\n"
		"device " NVME " vendor=0x8086 device=0x0a54 class=0x010802 iommu=sim1 group=6\n";
	char uri[64];
	int fd;

	snprintf(st->topo, sizeof(st->topo), "/tmp/test_image_topo.XXXXXX");
	fd = mkstemp(st->topo);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, topo, strlen(topo)), (ssize_t)strlen(topo));
	close(fd);
	snprintf(uri, sizeof(uri), "sim:%s", st->topo);
	cr_assert_eq(ioasid_new(uri, &st->ctx), 0, "%s",
		     ioasid_last_error(NULL));
	st->ram = test_memfd(6 * MiB);
	cr_assert_eq(ioasid_ioas_alloc(st->ctx, 0, &st->ioas), 0);
	/* 2 MiB leaves, then 4 KiB ones (a piece not 2 MiB aligned) */
	cr_assert_eq(ioasid_map_file(st->ctx, st->ioas, st->ram, 0, 4 * MiB,
				     RW | FIXED, &iova), 0);
	iova = DIRTY_IOVA + 5 * MiB + 0x3000;
	cr_assert_eq(ioasid_map_file(st->ctx, st->ioas, st->ram, 4 * MiB,
				     MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_bind(st->ctx, NIC, -1, &st->nic), 0);
	cr_assert_eq(ioasid_device_bind(st->ctx, GPU, -1, &st->gpu), 0);
	cr_assert_eq(ioasid_device_bind(st->ctx, NVME, -1, &st->nvme), 0);
	cr_assert_eq(ioasid_device_attach(st->ctx, st->nic, st->ioas, 0), 0,
		     "%s", ioasid_last_error(st->ctx));
	cr_assert_eq(ioasid_device_attach(st->ctx, st->gpu, st->ioas, 0), 0,
		     "%s", ioasid_last_error(st->ctx));
	cr_assert_eq(ioasid_dirty_start(st->ctx, st->ioas, 0), 0, "%s",
		     ioasid_last_error(st->ctx));
	dirty_dma(st->ctx, st->nic, DIRTY_IOVA + 0x1000);
	dirty_dma(st->ctx, st->gpu, DIRTY_IOVA + 2 * MiB + 0x7000);
	dirty_dma(st->ctx, st->nic, DIRTY_IOVA + 5 * MiB + 0x4000);
	dirty_dma(st->ctx, st->gpu, DIRTY_IOVA + 5 * MiB + 0x9000);
	/* read and cleared: the page written before is clean again */
	cr_assert_eq(ioasid_dirty_read(st->ctx, st->ioas, DIRTY_IOVA + 5 * MiB,
				       MiB, bm, 0), 0);
	dirty_dma(st->ctx, st->nic, DIRTY_IOVA + 5 * MiB + 0x20000);
	dirty_dma(st->ctx, st->gpu, DIRTY_IOVA + 5 * MiB + 0xf0000);

	cr_assert_eq(ioasid_ioas_alloc(st->ctx, 0, &st->fallback), 0);
	iova = 0x100000;
	cr_assert_eq(ioasid_map_file(st->ctx, st->fallback, st->ram, 0, MiB,
				     RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_attach(st->ctx, st->nvme, st->fallback, 0),
		     0, "%s", ioasid_last_error(st->ctx));
	cr_assert_eq(ioasid_dirty_start(st->ctx, st->fallback,
					IOASID_DIRTY_START_FALLBACK), 0);
}

/* @ioas's bitmap of [DIRTY_IOVA, +DIRTY_LEN) (@flags: NO_CLEAR or 0). */
static void dirty_bitmap(struct ioasid_ctx *ctx, uint32_t ioas,
			 uint32_t flags, uint64_t *bm)
{
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, DIRTY_IOVA, DIRTY_LEN, bm,
				       flags), 0, "%s", ioasid_last_error(ctx));
}

static unsigned int bits_set(const uint64_t *bm, size_t words)
{
	unsigned int n = 0;

	for (size_t i = 0; i < words; i++)
		n += (unsigned int)__builtin_popcountll(bm[i]);
	return n;
}

#define DIRTY_WORDS (DIRTY_LEN / 4096 / 64)

/*
 * The bits not read yet come back exactly, domain by domain (a detach
 * takes its domain's along), tracking stays on as it was, and the copy
 * tracks on.
 */
Test(image, dirty_pages_survive_the_round_trip)
{
	uint64_t want[DIRTY_WORDS], got[DIRTY_WORDS];
	struct ioasid_ctx *copy = NULL;
	struct dirty_state st;
	struct snap before, after;
	struct ioasid_domain_info dom[4];
	uint32_t nr = 4;
	int memfd;

	dirty_build(&st);
	cr_assert_eq(ioasid_domain_list(st.ctx, st.ioas, dom, &nr), 0);
	cr_assert_eq(nr, 2, "the NIC and the GPU have a domain each");
	dirty_bitmap(st.ctx, st.ioas, IOASID_DIRTY_NO_CLEAR, want);
	/* a 2 MiB leaf each (512 pages), then one page of each 4 KiB leaf */
	cr_assert_eq(bits_set(want, DIRTY_WORDS), 2 * 512 + 2, "%u",
		     bits_set(want, DIRTY_WORDS));
	snapshot_take(st.ctx, &before, SNAP_STATUS);
	memfd = export_ok(st.ctx);
	{
		struct image_header h;

		cr_assert_eq(pread(memfd, &h, sizeof(h), 0), sizeof(h));
		cr_assert_eq(h.version, 5, "dirty tracking: version 5");
	}
	cr_assert_eq(ioasid_ctx_import(memfd, &copy), 0, "%s",
		     ioasid_last_error(NULL));
	snapshot_take(copy, &after, SNAP_STATUS);
	cr_assert(snapshot_equal(&before, &after), "tracking as it was");

	dirty_bitmap(copy, st.ioas, IOASID_DIRTY_NO_CLEAR, got);
	cr_assert_arr_eq(got, want, sizeof(want), "the bits not read yet");
	/* the GPU's domain goes with its bits, in both */
	cr_assert_eq(ioasid_device_detach(st.ctx, st.gpu), 0);
	cr_assert_eq(ioasid_device_detach(copy, st.gpu), 0);
	dirty_bitmap(st.ctx, st.ioas, 0, want);
	dirty_bitmap(copy, st.ioas, 0, got);
	cr_assert_arr_eq(got, want, sizeof(want), "the NIC's domain's bits");
	cr_assert_eq(bits_set(got, DIRTY_WORDS), 512 + 1);
	/* read and cleared, then written: as the original does */
	dirty_dma(st.ctx, st.nic, DIRTY_IOVA + 5 * MiB + 0x30000);
	dirty_dma(copy, st.nic, DIRTY_IOVA + 5 * MiB + 0x30000);
	dirty_bitmap(st.ctx, st.ioas, 0, want);
	dirty_bitmap(copy, st.ioas, 0, got);
	cr_assert_arr_eq(got, want, sizeof(want));
	cr_assert_eq(bits_set(got, DIRTY_WORDS), 1);
	/* the fallback's untracked domain: every mapped page, as before */
	cr_assert_eq(ioasid_dirty_read(copy, st.fallback, 0x100000, MiB, got,
				       0), 0);
	cr_assert_eq(bits_set(got, MiB / 4096 / 64), 256);
	snapshot_free(&before);
	snapshot_free(&after);
	ioasid_unref(copy);
	close(memfd);
	dirty_teardown(&st);
}

/* The DIRTY record of @buf (the first), and its runs. */
static struct image_dirty *dirty_record(uint8_t *buf, struct image_record **rec,
					struct ioasid_iova_range **runs)
{
	struct image_dirty *d;

	*rec = find_record(buf, IMAGE_REC_DIRTY);
	d = (struct image_dirty *)(*rec + 1);
	*runs = (struct ioasid_iova_range *)(d + 1);
	return d;
}

/* A DIRTY record that lies: refused with a reason, nothing built. */
Test(image, hostile_dirty_pages)
{
	struct ioasid_iova_range *runs;
	struct image_record *rec;
	struct image_dirty *d;
	struct dirty_state st;
	uint8_t *orig, *buf;
	size_t len;
	int memfd, fds;

	dirty_build(&st);
	memfd = export_ok(st.ctx);
	len = image_bytes(memfd, &orig);
	buf = malloc(len);
	fds = test_count_fds();
	memcpy(buf, orig, len);
	d = dirty_record(buf, &rec, &runs);
	cr_assert_geq(d->nr_runs, 2, "%u", d->nr_runs);

#define EXPECT_REFUSED(err, needle) do { \
		fix_record_crc(buf, rec); \
		cr_assert_eq(import_bytes(buf, len), err, "%s", \
			     ioasid_last_error(NULL)); \
		cr_assert(strstr(ioasid_last_error(NULL), needle), "%s", \
			  ioasid_last_error(NULL)); \
		memcpy(buf, orig, len); \
		d = dirty_record(buf, &rec, &runs); \
	} while (0)

	/* its size and count: the reader refuses before any replay */
	d->nr_runs++;
	EXPECT_REFUSED(-EBADMSG, "wrong size");
	d->nr_runs = 0;
	EXPECT_REFUSED(-EBADMSG, "wrong size");
	d->reserved = 1;
	EXPECT_REFUSED(-EBADMSG, "wrong size");
	/* runs out of order, overlapping, not of pages, unmapped */
	runs[1] = runs[0];
	EXPECT_REFUSED(-EINVAL, "after the one before");
	runs[0].start += 1;
	EXPECT_REFUSED(-EINVAL, "not of whole pages");
	runs[0].last = runs[0].start - 1;
	EXPECT_REFUSED(-EINVAL, "not of whole pages");
	runs[0].start = 0x1000;
	runs[0].last = 0x1fff;
	EXPECT_REFUSED(-EINVAL, "not all mapped");
	runs[d->nr_runs - 1].last = DIRTY_IOVA + 64 * MiB - 1;
	EXPECT_REFUSED(-EINVAL, "not all mapped");
	/* another domain, another IOAS, an IOAS without tracking */
	d->domain_id = 9999;
	EXPECT_REFUSED(-ENOENT, "domain 9999");
	/* (the fallback IOAS's DIRTY_START comes after this record) */
	d->ioas_id = st.fallback;
	EXPECT_REFUSED(-EINVAL, "does not track");
	d->ioas_id = 9999;
	EXPECT_REFUSED(-ENOENT, "IOAS 9999");
	/* before the DIRTY_START of its IOAS: its tracking is off */
	{
		struct image_header *h = (struct image_header *)buf;
		uint8_t *start = NULL, *p = buf + sizeof(*h);
		size_t reclen = sizeof(*rec) + ((rec->len + 7) & ~7U);

		while (p < (uint8_t *)rec) {
			struct image_record *r = (struct image_record *)p;
			size_t n = sizeof(*r) + ((r->len + 7) & ~7U);

			/* the last op before it: its IOAS's DIRTY_START */
			if (r->type == IMAGE_REC_OP)
				start = p;
			p += n;
		}
		cr_assert(start);
		/* move the DIRTY record before that op */
		memmove(start + reclen, start, (size_t)((uint8_t *)rec - start));
		memcpy(start, orig + ((uint8_t *)rec - buf), reclen);
		fix_records_crc(buf);
		cr_assert_eq(import_bytes(buf, len), -EINVAL, "%s",
			     ioasid_last_error(NULL));
		cr_assert(strstr(ioasid_last_error(NULL), "does not track"),
			  "%s", ioasid_last_error(NULL));
	}
	cr_assert_eq(test_count_fds(), fds, "a failed import leaks nothing");
#undef EXPECT_REFUSED
	free(buf);
	free(orig);
	cr_assert_eq(ioasid_ctx_export_abandon(memfd), 0);
	close(memfd);
	dirty_teardown(&st);
}
