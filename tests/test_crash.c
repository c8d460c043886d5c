/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Crash survival (ioasidd(8), CRASH SURVIVAL): ioasidd under a service
 * manager with a file descriptor store (tests/supervisor.c plays
 * systemd), killed with SIGKILL and started again: every named session
 * comes back from the journal, whole, with the ids its client knows, and
 * lingers until its token reclaims it.  And what must not come back: an
 * unnamed session, a session whose journal is damaged, truncated or from
 * a newer ioasidd, or whose files the store lost - each named in the
 * log, while the daemon starts with the rest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <libioasid.h>

#include "daemon_fixture.h"
#include "helpers.h"
#include "snapshot.h"
#include "supervisor.h"

#define NIC	"0000:00:01.0"		/* built-in sim topology */
#define NIC2	"0000:00:03.0"
#define RW	(IOASID_MAP_READ | IOASID_MAP_WRITE)
#define NOBODY	65534

#define CONFIG \
	"[daemon]\nsocket-mode = 0666\n" \
	"[user 0]\nlinger = 60\ndevices = all\nobserve = yes\n" \
	"[user 65534]\nlinger = 60\ndevices = none\n"

static struct supervisor s;

static void start(void)
{
	cr_assert_eq(sup_start(&s, CONFIG), 0, "ioasidd must start");
}

static void fini(void)
{
	if (s.dir[0])
		sup_stop(&s);
}

static struct ioasid_ctx *connect_ctx(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(s.uri, &ctx);

	cr_assert_eq(r, 0, "ioasid_new: %d %s", r, ioasid_last_error(NULL));
	return ctx;
}

struct held {
	char token[IOASID_SESSION_TOKEN_HEX];
	uint32_t ioas, dev;
	uint64_t iova;
};

/* A VMM's session "@name": an IOAS, @memfd mapped, the NIC attached. */
static struct ioasid_ctx *vmm_on(const char *name, int memfd,
			       const char *dev, struct held *h)
{
	struct ioasid_ctx *ctx = connect_ctx();
	uint32_t linger = 0;

	h->iova = 1 << 20;
	cr_assert_eq(ioasid_session_name(ctx, name, &linger), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(linger, 60);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &h->ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, h->ioas, memfd, 0, 1 << 20,
				     RW | IOASID_MAP_FIXED_IOVA, &h->iova), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_bind(ctx, dev, -1, &h->dev), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_attach(ctx, h->dev, h->ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_session_token(ctx, h->token, sizeof(h->token)),
		     0);
	return ctx;
}

static struct ioasid_ctx *vmm(const char *name, int memfd, struct held *h)
{
	return vmm_on(name, memfd, NIC, h);
}

/* After the crash: the device still reaches the memfd through h. */
static void check_mapped(struct ioasid_ctx *ctx, const struct held *h,
			 int memfd, uint64_t nr_mappings)
{
	struct ioasid_ioas_info info;
	struct ioasid_mapping m;

	cr_assert_eq(ioasid_lookup(ctx, h->ioas, h->iova, &m), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(m.iova, h->iova);
	cr_assert_eq(m.length, 1 << 20);
	cr_assert_eq(ioasid_ioas_get_info(ctx, h->ioas, &info), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(info.nr_mappings, nr_mappings);
	test_dma_lands(ctx, h->dev, h->iova + 4096, memfd, 4096,
		       "after the crash");
}

static void check_reclaimed(struct ioasid_ctx *ctx, const struct held *h,
			    int memfd)
{
	check_mapped(ctx, h, memfd, 1);
}

/* @name reclaimed with its token on @ctx, and all of it is there. */
static void reclaim_checked(struct ioasid_ctx *ctx, const char *name,
			    const struct held *h, int memfd)
{
	cr_assert_eq(ioasid_session_reclaim(ctx, name, h->token), 0,
		     "reclaim %s: %s", name, ioasid_last_error(ctx));
	check_reclaimed(ctx, h, memfd);
}

/* The daemon crashes and restarts; a new connection takes @name back. */
static struct ioasid_ctx *crash_and_reclaim(struct ioasid_ctx *old,
					    const char *name,
					    const struct held *h, int memfd)
{
	struct ioasid_ctx *ctx;

	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(old);
	ctx = connect_ctx();
	reclaim_checked(ctx, name, h, memfd);
	return ctx;
}

TestSuite(crash, .fini = fini, .timeout = 120);

Test(crash, a_named_session_comes_back_whole_and_lingers)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_session_info si;
	struct ioasid_ctx *ctx, *unnamed;
	uint32_t other;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	/* an unnamed session's objects die with the daemon */
	unnamed = connect_ctx();
	cr_assert_eq(ioasid_ioas_alloc(unnamed, 0, &other), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	cr_assert(sup_log_has(&s, "session \"vm1\" of uid 0 rebuilt from the "
			      "journal"), "the log says what came back");
	ioasid_unref(ctx);
	ioasid_unref(unnamed);

	ctx = connect_ctx();
	cr_assert(test_find_session(ctx, "vm1", &si), "vm1 must be listed");
	cr_assert_eq(si.state, IOASID_SESSION_LINGERING);
	cr_assert_eq(si.nr_ioas, 1);
	cr_assert_eq(si.nr_mappings, 1);
	cr_assert_eq(si.nr_devices, 1);
	reclaim_checked(ctx, "vm1", &h, memfd);
	/* the ids go on after the rebuilt ones: nothing is named twice */
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	cr_assert_gt(other, h.ioas);
	cr_assert_gt(other, h.dev);

	/* twice: the rebuilt journal is itself one a restart reads */
	ioasid_session_token(ctx, h.token, sizeof(h.token));
	ctx = crash_and_reclaim(ctx, "vm1", &h, memfd);
	cr_assert_eq(ioasid_ioas_get_info(ctx, other,
					  &(struct ioasid_ioas_info){}), 0,
		     "an IOAS made after the first restart is kept too");
	ioasid_unref(ctx);
	close(memfd);
}

/*
 * A map by file id (no descriptor: the journal stores no file for it) is
 * replayed by that id, which the rebuilt IOAS gives the same file: the
 * mapping is there after two crashes, DMA lands in the memfd through it,
 * and the id still maps more.
 */
Test(crash, a_map_by_file_id_comes_back)
{
	int memfd = test_memfd(1 << 20);
	uint64_t iova = 16 << 20;
	struct ioasid_mapping m;
	struct ioasid_ctx *ctx;
	uint32_t file_id;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, h.iova, &m), 0);
	file_id = m.file_id;
	cr_assert_eq(ioasid_map_file_id(ctx, h.ioas, file_id, 8192, 4096,
					RW | IOASID_MAP_FIXED_IOVA, &iova), 0,
		     "%s", ioasid_last_error(ctx));
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(sup_crash_restart(&s), 0);
		ioasid_unref(ctx);
		ctx = connect_ctx();
		cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0,
			     "%s", ioasid_last_error(ctx));
		check_mapped(ctx, &h, memfd, 2);
		cr_assert_eq(ioasid_lookup(ctx, h.ioas, 16 << 20, &m), 0,
			     "the map by id came back: %s",
			     ioasid_last_error(ctx));
		cr_assert_eq(m.file_id, file_id);
		cr_assert_eq(m.offset, 8192);
		test_dma_lands(ctx, h.dev, 16 << 20, memfd, 8192,
			       "through the map by id");
		cr_assert_eq(ioasid_session_token(ctx, h.token,
						  sizeof(h.token)), 0);
	}
	iova = 32 << 20;
	cr_assert_eq(ioasid_map_file_id(ctx, h.ioas, file_id, 0, 4096,
					RW | IOASID_MAP_FIXED_IOVA, &iova), 0,
		     "%s", ioasid_last_error(ctx));
	ioasid_unref(ctx);
	close(memfd);
}

/*
 * Maps of new files that failed (beyond the file, an IOVA taken) are not
 * journaled and took no file id, so after a crash every file has the id
 * it had, and a map by id made before it still maps the file it named:
 * DMA through it lands in that file, not in the one after it.
 */
Test(crash, file_ids_survive_failed_maps)
{
	int a = test_memfd(1 << 20), x = test_memfd(1 << 20);
	int b = test_memfd(1 << 20), c = test_memfd(1 << 20);
	struct ioasid_mapping m;
	struct ioasid_ctx *ctx;
	uint32_t idb, idc;
	uint64_t iova;
	struct held h;

	start();
	ctx = vmm("vm1", a, &h);
	iova = 4 << 20;
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, x, 2 << 20, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova),
		     -EINVAL);
	iova = h.iova;
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, x, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova),
		     -EEXIST);
	iova = 8 << 20;
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, b, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0);
	iova = 12 << 20;
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, c, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0);
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 8 << 20, &m), 0);
	idb = m.file_id;
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 12 << 20, &m), 0);
	idc = m.file_id;
	iova = 16 << 20;
	cr_assert_eq(ioasid_map_file_id(ctx, h.ioas, idb, 4096, 4096,
					RW | IOASID_MAP_FIXED_IOVA, &iova), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 8 << 20, &m), 0);
	cr_assert_eq(m.file_id, idb, "B's id %u, before the crash %u",
		     m.file_id, idb);
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 12 << 20, &m), 0);
	cr_assert_eq(m.file_id, idc);
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 16 << 20, &m), 0);
	cr_assert_eq(m.file_id, idb, "the map by id maps B again");
	test_dma_lands(ctx, h.dev, 16 << 20, b, 4096, "into B");
	ioasid_unref(ctx);
	close(a);
	close(x);
	close(b);
	close(c);
}

/*
 * A fault queue survives a crash: its id, its eventfd (the very one the
 * VMM polls), its page requests and the records not read yet, each
 * journaled (J_FAULTQ) before the reply of the DMA that raised it or the
 * answer that settled it.  A record read since is read again (a read is
 * not journaled: one a crash cut off would lose its records).
 */
static const char *journal_name(void);

static int dma_to(struct ioasid_ctx *ctx, const struct held *h, uint64_t iova)
{
	char buf[16] = "page request";

	return ioasid_device_dma(ctx, h->dev, iova, buf, sizeof(buf),
				 IOASID_DMA_WRITE, NULL);
}

static struct ioasid_page_request read_one(struct ioasid_ctx *ctx,
					   uint32_t fq, int efd)
{
	struct ioasid_page_request rec;
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint32_t nr = 1;

	cr_assert_eq(poll(&p, 1, 0), 1, "the VMM's eventfd says one waits");
	cr_assert_eq(ioasid_fault_queue_read(ctx, fq, &rec, &nr), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(nr, 1);
	return rec;
}

/* After a reclaim: its new token, then a crash and a reclaim again. */
static struct ioasid_ctx *crash_again(struct ioasid_ctx *ctx, struct held *h,
				      int memfd, uint64_t nr_mappings)
{
	cr_assert_eq(ioasid_session_token(ctx, h->token, sizeof(h->token)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h->token), 0, "%s",
		     ioasid_last_error(ctx));
	check_mapped(ctx, h, memfd, nr_mappings);
	return ctx;
}

Test(crash, a_fault_queue_survives_a_crash_with_its_requests)
{
	uint64_t at = 16ull << 20, at2 = 20ull << 20, iova;
	int memfd = test_memfd(1 << 20), page = test_memfd(4096), efd;
	struct ioasid_page_request rec, again;
	struct ioasid_fault_queue_info fi;
	struct ioasid_ctx *ctx;
	uint32_t fq;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	cr_assert_eq(ioasid_fault_queue_alloc(ctx, h.ioas, 0, 0, 0, &fq,
					      &efd), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(dma_to(ctx, &h, at), -EINPROGRESS, "%s",
		     ioasid_last_error(ctx));
	ctx = crash_and_reclaim(ctx, "vm1", &h, memfd);
	cr_assert_eq(ioasid_fault_queue_info(ctx, fq, &fi), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(fi.queued, 1, "the record not read yet");
	cr_assert_eq(fi.outstanding, 1, "the request not answered yet");
	cr_assert_eq(fi.requests, 1);
	rec = read_one(ctx, fq, efd);
	cr_assert_eq(rec.addr, at);
	cr_assert_eq(rec.fault_id, fq);
	/* read, not answered: after a crash it is read again */
	ctx = crash_again(ctx, &h, memfd, 1);
	again = read_one(ctx, fq, efd);
	cr_assert_eq(again.cookie, rec.cookie, "the same request");
	cr_assert_eq(again.addr, at);
	/* answered after the page is there: the device's DMA goes through */
	iova = at;
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, page, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0);
	cr_assert_eq(ioasid_fault_respond(ctx, fq, rec.cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0,
		     "%s", ioasid_last_error(ctx));
	ctx = crash_again(ctx, &h, memfd, 2);
	cr_assert_eq(ioasid_fault_respond(ctx, fq, rec.cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS),
		     -ENOENT, "answered before the crash: answered for good");
	cr_assert_eq(dma_to(ctx, &h, at), 0, "%s", ioasid_last_error(ctx));
	/* a new request after the crash does not take an old cookie */
	cr_assert_eq(dma_to(ctx, &h, at2), -EINPROGRESS);
	again = read_one(ctx, fq, efd);
	cr_assert_neq(again.cookie, rec.cookie, "cookies are not reused");
	cr_assert_eq(ioasid_fault_respond(ctx, fq, again.cookie,
					  IOASID_PAGE_RESPONSE_INVALID), 0);
	ctx = crash_again(ctx, &h, memfd, 2);
	cr_assert_eq(dma_to(ctx, &h, at2), -EFAULT, "answered invalid "
		     "before the crash, the device sees it after");
	/* destroyed (its target without devices), it stays destroyed */
	cr_assert_eq(ioasid_device_detach(ctx, h.dev), 0);
	cr_assert_eq(ioasid_fault_queue_destroy(ctx, fq), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_attach(ctx, h.dev, h.ioas, 0), 0);
	close(efd);
	ctx = crash_again(ctx, &h, memfd, 2);
	cr_assert_eq(ioasid_fault_queue_info(ctx, fq, &fi), -ENOENT);
	ioasid_unref(ctx);
	close(page);
	close(memfd);
}

/*
 * Compacted with a fault queue: the session is written as its state, the
 * queue as a state image carries it (FAULT_QUEUE_ALLOC with its eventfd
 * and requests), and a crash after it brings the request back.
 */
Test(crash, a_fault_queue_survives_a_compaction)
{
	int memfd = test_memfd(1 << 20), efd;
	struct ioasid_page_request rec;
	struct ioasid_fault_queue_info fi;
	struct ioasid_ctx *ctx;
	const char *name;
	uint32_t fq;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	cr_assert_eq(ioasid_fault_queue_alloc(ctx, h.ioas, 0, 0, 0, &fq,
					      &efd), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(dma_to(ctx, &h, 16ull << 20), -EINPROGRESS);
	name = journal_name();
	for (int i = 0; i < 100 && !strcmp(journal_name(), name); i++)
		for (int k = 0; k < 100; k++) {
			uint64_t iova = 4ull << 20;

			cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd, 0,
						     4096, RW |
						     IOASID_MAP_FIXED_IOVA,
						     &iova), 0);
			cr_assert_eq(ioasid_unmap(ctx, h.ioas, iova, 4096, 0,
						  NULL), 0);
		}
	cr_assert_str_neq(journal_name(), name, "compacted");
	cr_assert(sup_log_has(&s, "1 as their state"), "as its state");
	ctx = crash_and_reclaim(ctx, "vm1", &h, memfd);
	cr_assert_eq(ioasid_fault_queue_info(ctx, fq, &fi), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(fi.outstanding, 1);
	rec = read_one(ctx, fq, efd);
	cr_assert_eq(rec.addr, 16ull << 20);
	ioasid_unref(ctx);
	close(efd);
	close(memfd);
}

/* ---- the journal as the store hands it back ------------------------------ */

/* The stored journal's name: journal.0 or journal.1. */
static const char *journal_name(void)
{
	sup_poll(&s);
	if (sup_fd(&s, "journal.0") >= 0)
		return "journal.0";
	cr_assert_geq(sup_fd(&s, "journal.1"), 0, "a journal is stored");
	return "journal.1";
}

/* A copy of the stored journal in *@len bytes (malloc'ed). */
static unsigned char *journal_copy(size_t *len)
{
	int fd = sup_fd(&s, journal_name());
	struct stat st;
	unsigned char *buf;

	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	cr_assert_not_null(buf);
	cr_assert_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	*len = (size_t)st.st_size;
	return buf;
}

/* The store gets @buf as its journal instead. */
static void journal_put(const unsigned char *buf, size_t len)
{
	int fd = memfd_create("journal", MFD_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	cr_assert_eq(sup_replace(&s, journal_name(), fd), 0);
}

/* Record layout (ioasidd/journal.c): len at 4, type at 16, key at 20. */
#define HDR_SIZE	64
#define REC_OP		5

static uint32_t u32_at(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* The crash, with the journal changed by @edit before the restart. */
static void crash_with(void (*edit)(unsigned char *, size_t *, uint32_t),
		       uint32_t arg)
{
	unsigned char *buf;
	size_t len;

	sup_kill(&s);
	buf = journal_copy(&len);
	buf = realloc(buf, len + 64);
	edit(buf, &len, arg);
	journal_put(buf, len);
	free(buf);
	cr_assert_eq(sup_restart(&s), 0, "ioasidd starts whatever the "
		     "journal holds");
}

static void truncate_header(unsigned char *buf, size_t *len, uint32_t arg)
{
	*len = 10;
}

static void newer_version(unsigned char *buf, size_t *len, uint32_t arg)
{
	buf[8] = 6;
}

/*
 * Version @arg: 1 (before J_OPEN had the groups), 2 (before compaction
 * wrote a session's state), 3 (before J_DIRTY), 4 (before J_FAULTQ): a
 * journal not compacted
 * yet has the same records, still read.
 */
static void old_version(unsigned char *buf, size_t *len, uint32_t arg)
{
	cr_assert_eq(buf[8], 5, "this ioasidd writes version 5");
	buf[8] = (unsigned char)arg;
}

/* A header 4 bytes longer: every record 4 bytes off its alignment. */
static void misaligning_header(unsigned char *buf, size_t *len, uint32_t arg)
{
	uint32_t size = HDR_SIZE + 4;

	memmove(buf + HDR_SIZE + 4, buf + HDR_SIZE, *len - HDR_SIZE);
	memset(buf + HDR_SIZE, 0, 4);
	memcpy(buf + 12, &size, 4);
	*len += 4;
}

/* Flip a byte in the next-to-last change of session @key. */
static void damage_session(unsigned char *buf, size_t *len, uint32_t key)
{
	size_t off = HDR_SIZE, hits[64];
	unsigned int n = 0;

	while (off + 32 <= *len) {
		uint32_t rl = u32_at(buf + off + 4);

		cr_assert(rl >= 32 && off + rl <= *len, "a whole record");
		if (u32_at(buf + off + 20) == key &&
		    (buf[off + 16] | buf[off + 17] << 8) == REC_OP && n < 64)
			hits[n++] = off;
		off += rl;
	}
	cr_assert_geq(n, 2, "session %u made two changes", key);
	buf[hits[n - 2] + 40] ^= 0x55;
}

/* A record cut short by the crash: its length reaches past the end. */
static void torn_tail(unsigned char *buf, size_t *len, uint32_t arg)
{
	static const unsigned char rec[24] = { 'J', 'R', 'E', 'C', 0, 1 };

	memcpy(buf + *len, rec, sizeof(rec));
	*len += sizeof(rec);
}

Test(crash, a_truncated_journal_starts_an_empty_daemon)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	crash_with(truncate_header, 0);
	ioasid_unref(ctx);
	cr_assert(sup_log_has(&s, "truncated"), "the log says why");
	ctx = connect_ctx();
	cr_assert_not(test_find_session(ctx, "vm1", NULL));
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), -ENOENT);
	/* and a new journal works: a session made now survives a crash */
	ioasid_unref(ctx);
	ctx = vmm("vm2", memfd, &h);
	ctx = crash_and_reclaim(ctx, "vm2", &h, memfd);
	ioasid_unref(ctx);
	close(memfd);
}

Test(crash, a_journal_from_a_newer_ioasidd_is_not_read)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	crash_with(newer_version, 0);
	ioasid_unref(ctx);
	cr_assert(sup_log_has(&s, "version 6 is newer than this ioasidd "
			      "reads (5)"), "the log says why");
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), -ENOENT);
	ioasid_unref(ctx);
	close(memfd);
}

static void old_version_read(uint32_t version)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	crash_with(old_version, version);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	reclaim_checked(ctx, "vm1", &h, memfd);
	ioasid_unref(ctx);
	close(memfd);
}

Test(crash, a_journal_of_version_1_is_still_read)
{
	old_version_read(1);
}

Test(crash, a_journal_of_version_2_is_still_read)
{
	old_version_read(2);
}

Test(crash, a_journal_of_version_3_is_still_read)
{
	old_version_read(3);
}

Test(crash, a_journal_of_version_4_is_still_read)
{
	old_version_read(4);
}

Test(crash, a_header_that_misaligns_the_records_is_not_read)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	crash_with(misaligning_header, 0);
	ioasid_unref(ctx);
	cr_assert(sup_log_has(&s, "bad header (size 68)"), "the log says why");
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), -ENOENT);
	ioasid_unref(ctx);
	close(memfd);
}

Test(crash, a_write_the_crash_cut_short_is_ignored)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	crash_with(torn_tail, 0);
	ioasid_unref(ctx);
	cr_assert_not(sup_log_has(&s, "damaged"));
	ctx = connect_ctx();
	reclaim_checked(ctx, "vm1", &h, memfd);
	ioasid_unref(ctx);
	close(memfd);
}

/*
 * vm1 and vm2, each with its memfd and device; @crash kills ioasidd and
 * starts it again somehow; session @lost (1 or 2) must not come back,
 * with @why in the log, and the other must.
 */
static void one_of_two_lost(void (*crash)(uint32_t key2), int lost,
			    const char *why)
{
	int memfd[2] = { test_memfd(1 << 20), test_memfd(1 << 20) };
	struct ioasid_ctx *ctx, *ctx2;
	struct ioasid_session_info si;
	struct held h[2];
	int kept = lost == 1 ? 1 : 0;

	start();
	ctx = vmm("vm1", memfd[0], &h[0]);
	ctx2 = vmm_on("vm2", memfd[1], NIC2, &h[1]);
	cr_assert(test_find_session(ctx, "vm2", &si));
	crash(si.id);
	ioasid_unref(ctx);
	ioasid_unref(ctx2);
	cr_assert(sup_log_has(&s, why), "the log says \"%s\"", why);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, lost == 1 ? "vm1" : "vm2",
					    h[lost - 1].token), -ENOENT);
	cr_assert_eq(ioasid_session_reclaim(ctx, kept ? "vm2" : "vm1",
					    h[kept].token), 0, "%s",
		     ioasid_last_error(ctx));
	check_reclaimed(ctx, &h[kept], memfd[kept]);
	ioasid_unref(ctx);
	close(memfd[0]);
	close(memfd[1]);
}

static void crash_damaging(uint32_t key2)
{
	crash_with(damage_session, key2);
	cr_assert(sup_log_has(&s, "damaged at offset"));
}

Test(crash, damage_costs_only_the_sessions_it_touches)
{
	one_of_two_lost(crash_damaging, 2, "session \"vm2\" of uid 0 not "
			"rebuilt: the journal is damaged");
}

static void crash_losing_f1(uint32_t key2)
{
	sup_kill(&s);
	cr_assert_eq(sup_drop(&s, "f1"), 1, "vm1's memfd is f1");
	cr_assert_eq(sup_restart(&s), 0);
}

Test(crash, a_file_the_store_lost_costs_its_session_only)
{
	one_of_two_lost(crash_losing_f1, 1, "session \"vm1\" of uid 0 not "
			"rebuilt: file f1 (for MAP_FILE");
}

/* ---- supplementary groups ------------------------------------------------ */

/* Only the supplementary group GROUP_OK lets nobody in. */
#define GROUP_OK	4242
#define GROUP_CONFIG \
	"[daemon]\nsocket-mode = 0666\n" \
	"[default]\nallow = no\n" \
	"[user 0]\nlinger = 60\ndevices = all\nobserve = yes\n" \
	"[group 4242]\nallow = yes\nlinger = 60\ndevices = none\n"

/*
 * As nobody with GROUP_OK among its supplementary groups: either make
 * session "grp" with a mapping and write its token and IOAS to @out, or
 * (@held set) reclaim it and find the mapping.  The exit status says which step
 * failed.
 */
struct grp_held {
	char token[IOASID_SESSION_TOKEN_HEX];
	uint32_t ioas;
};

static int as_group_member(int out, const struct grp_held *held)
{
	struct grp_held h;
	struct ioasid_ctx *ctx;
	struct ioasid_mapping m;
	uint32_t linger = 0;
	uint64_t iova = 1 << 20;
	gid_t g = GROUP_OK;
	int memfd;

	if (setgroups(1, &g) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		return 100;
	if (ioasid_new(s.uri, &ctx) < 0)
		return 1;
	if (held)
		return ioasid_session_reclaim(ctx, "grp", held->token) < 0 ?
		       2 : ioasid_lookup(ctx, held->ioas, iova, &m) < 0 ? 3 :
		       m.length != 1 << 20 ? 4 : 0;
	memfd = memfd_create("grp", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 1 << 20) < 0)
		return 5;
	if (ioasid_session_name(ctx, "grp", &linger) < 0 || linger != 60)
		return 6;
	if (ioasid_ioas_alloc(ctx, 0, &h.ioas) < 0)
		return 7;
	if (ioasid_map_file(ctx, h.ioas, memfd, 0, 1 << 20,
			    RW | IOASID_MAP_FIXED_IOVA, &iova) < 0)
		return 8;
	if (ioasid_session_token(ctx, h.token, sizeof(h.token)) < 0 ||
	    write(out, &h, sizeof(h)) != (ssize_t)sizeof(h))
		return 9;
	return 0;			/* exits: the session lingers */
}

static void run_as_group_member(int out, const struct grp_held *held)
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(as_group_member(out, held));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "%s: step %d failed",
		     held ? "reclaim" : "setup", WEXITSTATUS(status));
}

/*
 * A session the policy lets in by a supplementary group only comes back
 * after a crash: the journal keeps the groups, not just uid and gid.
 */
Test(crash, a_session_allowed_by_a_supplementary_group_comes_back)
{
	struct grp_held h;
	int p[2];

	if (geteuid() != 0)
		cr_skip_test("needs root: the client is nobody with a "
			     "supplementary group (setgroups)");
	cr_assert_eq(sup_start(&s, GROUP_CONFIG), 0, "ioasidd must start");
	cr_assert_eq(pipe(p), 0);
	run_as_group_member(p[1], NULL);
	cr_assert_eq(read(p[0], &h, sizeof(h)), (ssize_t)sizeof(h));
	close(p[0]);
	close(p[1]);
	cr_assert_eq(sup_crash_restart(&s), 0);
	cr_assert_not(sup_log_has(&s, "not rebuilt"), "the log: %s",
		      "a session was lost");
	run_as_group_member(-1, &h);
}

/* ---- tokens after a restart ---------------------------------------------- */

static struct held root_held;

static int nobody_tries(void)
{
	struct ioasid_ctx *ctx;

	if (ioasid_new(s.uri, &ctx) < 0)
		return 1;
	if (ioasid_session_reclaim(ctx, "vm1", root_held.token) != -ENOENT)
		return 2;
	ioasid_unref(ctx);
	return 0;
}

Test(crash, a_rebuilt_session_goes_to_its_token_only)
{
	int memfd = test_memfd(1 << 20);
	char old[IOASID_SESSION_TOKEN_HEX], wrong[IOASID_SESSION_TOKEN_HEX];
	struct ioasid_ctx *ctx, *ctx2;
	int status;
	pid_t pid;

	start();
	ctx = vmm("vm1", memfd, &root_held);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);

	/* another uid with the very token: no such session for it */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 ||
		    setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(100);
		_exit(nobody_tries());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "nobody: step %d failed",
		     WEXITSTATUS(status));

	ctx = connect_ctx();
	snprintf(wrong, sizeof(wrong), "%s", root_held.token);
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", wrong), -EACCES);
	cr_assert(strstr(ioasid_last_error(ctx), "wrong token"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", root_held.token), 0,
		     "%s", ioasid_last_error(ctx));
	snprintf(old, sizeof(old), "%s", root_held.token);
	cr_assert_eq(ioasid_session_token(ctx, root_held.token,
					  sizeof(root_held.token)), 0);
	/* its requests show it has the new token: the old one is spent */
	check_reclaimed(ctx, &root_held, memfd);

	/* connected: nobody takes it, not even with the current token */
	ctx2 = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx2, "vm1", root_held.token),
		     -EBUSY);

	/* the spent token stays spent across another crash */
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ioasid_unref(ctx2);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", old), -EACCES);
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", root_held.token), 0,
		     "%s", ioasid_last_error(ctx));
	check_reclaimed(ctx, &root_held, memfd);
	ioasid_unref(ctx);
	close(memfd);
}

/*
 * A reclaim whose reply (the new token) died with the daemon, which had
 * journaled the new token first: the token the client still holds takes
 * the session again.  Once the reclaimer has made a request it has the
 * new one, and the old token is spent, across a crash too.
 */
Test(crash, a_reclaim_whose_reply_was_lost_takes_the_old_token_again)
{
	int memfd = test_memfd(1 << 20);
	char old[IOASID_SESSION_TOKEN_HEX];
	struct ioasid_ctx *ctx;
	struct held h;
	int r;

	start();
	ctx = vmm("vm1", memfd, &h);
	/* the next start dies right after journaling a reclaim's token */
	setenv("IOASIDD_TEST_KILL_AFTER_TOKEN", "1", 1);
	cr_assert_eq(sup_crash_restart(&s), 0);
	unsetenv("IOASIDD_TEST_KILL_AFTER_TOKEN");
	ioasid_unref(ctx);
	ctx = connect_ctx();
	r = ioasid_session_reclaim(ctx, "vm1", h.token);
	cr_assert_lt(r, 0, "the daemon died before its reply: %d", r);
	cr_assert_eq(sup_wait_exit(&s), 0);
	cr_assert_eq(sup_restart(&s), 0);
	ioasid_unref(ctx);

	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert(sup_log_has(&s, "reply did not reach its client"));
	snprintf(old, sizeof(old), "%s", h.token);
	cr_assert_eq(ioasid_session_token(ctx, h.token, sizeof(h.token)), 0);
	cr_assert_str_neq(old, h.token);
	check_reclaimed(ctx, &h, memfd);

	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", old), -EACCES,
		     "the old token is spent once the new one was used");
	reclaim_checked(ctx, "vm1", &h, memfd);
	ioasid_unref(ctx);
	close(memfd);
}

/* ---- clients that resume on their own ------------------------------------ */

Test(crash, a_named_context_resumes_its_session_on_its_own)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx, *unnamed, *never;
	uint64_t iova = 1 << 30;
	struct ioasid_mapping m;
	uint32_t ioas, more;
	struct held h, h2;

	start();
	ctx = vmm("vm1", memfd, &h);
	/* the ring carries maps from here on */
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0);
	unnamed = connect_ctx();
	cr_assert_eq(ioasid_ioas_alloc(unnamed, 0, &ioas), 0);
	setenv("IOASID_RECONNECT", "0", 1);
	never = vmm_on("vm2", memfd, NIC2, &h2);
	unsetenv("IOASID_RECONNECT");

	cr_assert_eq(sup_crash_restart(&s), 0);
	/* the very context goes on: same ids, same mappings */
	check_mapped(ctx, &h, memfd, 2);
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 1 << 30, &m), 0, "%s",
		     ioasid_last_error(ctx));
	iova = 2u << 30;
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd, 4096, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &more), 0);
	/* and a second crash, the same */
	cr_assert_eq(sup_crash_restart(&s), 0);
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 2u << 30, &m), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ioas_get_info(ctx, more,
					  &(struct ioasid_ioas_info){}), 0);

	/* unnamed, or named without reconnecting: ECONNRESET as before */
	cr_assert_eq(ioasid_ioas_get_info(unnamed, ioas,
					  &(struct ioasid_ioas_info){}),
		     -ECONNRESET);
	cr_assert_eq(ioasid_ioas_get_info(never, h2.ioas,
					  &(struct ioasid_ioas_info){}),
		     -ECONNRESET);
	/* that one's session is still there for a new context */
	ioasid_unref(never);
	never = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(never, "vm2", h2.token), 0, "%s",
		     ioasid_last_error(never));
	ioasid_unref(never);
	ioasid_unref(unnamed);
	ioasid_unref(ctx);
	close(memfd);
}

/* The token @file holds (without its newline) into @hex. */
static void token_in(const char *file, char *hex, size_t len)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	cr_assert_geq(fd, 0, "%s: %m", file);
	n = read(fd, hex, len - 1);
	close(fd);
	cr_assert_eq(n, IOASID_SESSION_TOKEN_HEX, "a token and its newline");
	hex[n - 1] = '\0';
}

/*
 * The URI says how long to dial again (reconnect=, over a disabling
 * $IOASID_RECONNECT) and where the token lives (token-file=): the resume
 * after a crash spends the token in the file, so the file gets the new
 * one, and a successor process that opens the same URI reclaims with it.
 */
Test(crash, the_uri_resumes_and_keeps_the_token_file_current)
{
	char uri[512], file[256], before[80], after[80];
	char now[IOASID_SESSION_TOKEN_HEX];
	struct ioasid_ctx *ctx;
	uint32_t ioas, ids[4], nr = 4;

	start();
	snprintf(file, sizeof(file), "%s/vm.token", s.dir);
	snprintf(uri, sizeof(uri), "%s?session=tf&token-file=%s&reconnect=30",
		 s.uri, file);
	setenv("IOASID_RECONNECT", "0", 1);
	cr_assert_eq(ioasid_new(uri, &ctx), 0, "%s", ioasid_last_error(NULL));
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	token_in(file, before, sizeof(before));
	cr_assert_eq(sup_crash_restart(&s), 0);
	cr_assert_eq(ioasid_ioas_get_info(ctx, ioas,
					  &(struct ioasid_ioas_info){}), 0,
		     "resumed by the URI's reconnect=: %s",
		     ioasid_last_error(ctx));
	token_in(file, after, sizeof(after));
	cr_assert_str_neq(before, after, "the file has the new token");
	cr_assert_eq(ioasid_session_token(ctx, now, sizeof(now)), 0);
	cr_assert_str_eq(after, now);
	/* the successor process: the same URI, the file's token */
	ioasid_unref(ctx);
	cr_assert_eq(ioasid_new(uri, &ctx), 0, "%s", ioasid_last_error(NULL));
	cr_assert_eq(ioasid_ioas_list(ctx, ids, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(ids[0], ioas);
	ioasid_unref(ctx);
	/* reconnect= alone is fine, a bad one is refused */
	snprintf(uri, sizeof(uri), "%s?reconnect=2.5", s.uri);
	cr_assert_eq(ioasid_new(uri, &ctx), 0, "%s", ioasid_last_error(NULL));
	ioasid_unref(ctx);
	snprintf(uri, sizeof(uri), "%s?session=x&reconnect=3601", s.uri);
	cr_assert_eq(ioasid_new(uri, &ctx), -EINVAL);
	cr_assert(strstr(ioasid_last_error(NULL), "reconnect=3601"), "%s",
		  ioasid_last_error(NULL));
	ctx = connect_ctx();
	cr_assert_not(test_find_session(ctx, "x", NULL), "nothing was named");
	ioasid_unref(ctx);
	unsetenv("IOASID_RECONNECT");
}

/*
 * A context that only waits for events sees its connection go (its event
 * fd polls readable) and regains its session in ioasid_event_read(),
 * which then says -EAGAIN (nothing queued), not -ECONNRESET.
 */
Test(crash, event_read_resumes_by_itself)
{
	char t1[IOASID_SESSION_TOKEN_HEX], t2[IOASID_SESSION_TOKEN_HEX];
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	struct ioasid_event ev;
	struct pollfd p;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	p.fd = ioasid_event_get_fd(ctx);
	p.events = POLLIN;
	cr_assert_geq(p.fd, 0);
	cr_assert_eq(ioasid_event_read(ctx, &ev), -EAGAIN);
	cr_assert_eq(ioasid_session_token(ctx, t1, sizeof(t1)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	cr_assert_eq(poll(&p, 1, 30000), 1, "the lost connection wakes it");
	cr_assert_eq(ioasid_event_read(ctx, &ev), -EAGAIN, "%s",
		     ioasid_last_error(ctx));
	/* it was event_read that reclaimed: the token is a new one */
	cr_assert_eq(ioasid_session_token(ctx, t2, sizeof(t2)), 0);
	cr_assert_str_neq(t1, t2);
	check_mapped(ctx, &h, memfd, 1);
	ioasid_unref(ctx);
	close(memfd);
}

/* ---- a change whose results fill a buffer, cut off by the crash -------- */

struct dirty_call {
	struct ioasid_ctx *ctx;
	uint32_t ioas;
	uint64_t iova, bitmap[4], unmapped;
	int r;
	char why[256];
};

static void *unmap_dirty(void *arg)
{
	struct dirty_call *c = arg;

	c->r = ioasid_unmap_get_dirty(c->ctx, c->ioas, c->iova, 1 << 20, 0,
				      c->bitmap, &c->unmapped);
	snprintf(c->why, sizeof(c->why), "%s", ioasid_last_error(c->ctx));
	return NULL;
}

/*
 * The daemon records an unmap that returns its dirty bits and dies
 * before its reply: the resumed call knows the unmap took effect, but the
 * bits were never sent, so it must not return success over the caller's
 * untouched bitmap (a migration would lose those pages).
 */
Test(crash, results_lost_with_the_reply_are_not_made_up)
{
	int memfd = test_memfd(1 << 20);
	struct dirty_call c = { .r = 0 };
	struct held h;
	pthread_t t;

	setenv("IOASID_RECONNECT", "30", 1);
	start();
	c.ctx = vmm("dirty", memfd, &h);
	c.ioas = h.ioas;
	c.iova = h.iova;
	cr_assert_eq(ioasid_dirty_start(c.ctx, h.ioas, 0), 0, "%s",
		     ioasid_last_error(c.ctx));
	/* the next start kills itself right after its first change record */
	setenv("IOASIDD_TEST_KILL_AFTER_RECORD", "1", 1);
	cr_assert_eq(sup_crash_restart(&s), 0);
	unsetenv("IOASIDD_TEST_KILL_AFTER_RECORD");
	memset(c.bitmap, 0x55, sizeof(c.bitmap));
	cr_assert_eq(pthread_create(&t, NULL, unmap_dirty, &c), 0);
	cr_assert_eq(sup_wait_exit(&s), 0, "the daemon kills itself after "
		     "recording the unmap");
	cr_assert_eq(sup_restart(&s), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(c.r, -ECONNRESET, "the unmap returned %d (%s), bitmap "
		     "%#llx", c.r, c.why, (unsigned long long)c.bitmap[0]);
	cr_assert(strstr(c.why, "results were lost"), "%s", c.why);
	unsetenv("IOASID_RECONNECT");
	ioasid_unref(c.ctx);
	close(memfd);
}

struct fault_call {
	struct ioasid_ctx *ctx;
	uint32_t ioas, fq, cookie;
	int efd, r;
	char why[256];
};

static void *alloc_queue(void *arg)
{
	struct fault_call *c = arg;

	c->fq = 0;
	c->efd = -1;
	c->r = ioasid_fault_queue_alloc(c->ctx, c->ioas, 0, 0, 0, &c->fq,
					&c->efd);
	snprintf(c->why, sizeof(c->why), "%s", ioasid_last_error(c->ctx));
	return NULL;
}

static void *answer(void *arg)
{
	struct fault_call *c = arg;

	c->r = ioasid_fault_respond(c->ctx, c->fq, c->cookie,
				    IOASID_PAGE_RESPONSE_INVALID);
	snprintf(c->why, sizeof(c->why), "%s", ioasid_last_error(c->ctx));
	return NULL;
}

/* The next start kills itself after its first change record: @fn's. */
static void cut_off(struct fault_call *c, void *(*fn)(void *))
{
	pthread_t t;

	setenv("IOASIDD_TEST_KILL_AFTER_RECORD", "1", 1);
	cr_assert_eq(sup_crash_restart(&s), 0);
	unsetenv("IOASIDD_TEST_KILL_AFTER_RECORD");
	cr_assert_eq(pthread_create(&t, NULL, fn, c), 0);
	cr_assert_eq(sup_wait_exit(&s), 0, "the daemon kills itself after "
		     "recording the call");
	cr_assert_eq(sup_restart(&s), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

/*
 * A fault queue's allocation and an answer, each recorded and cut off
 * before its reply: the answer resumes as given (it was), the allocation
 * fails with ECONNRESET and the queue's id, since its eventfd never
 * reached the VMM; the queue is there to destroy.
 */
Test(crash, fault_queue_calls_cut_off_by_a_crash_resume)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_page_request rec;
	struct ioasid_fault_queue_info fi;
	struct fault_call c = { .r = 0 };
	struct held h;
	uint32_t fq;
	int efd;

	setenv("IOASID_RECONNECT", "30", 1);
	start();
	c.ctx = vmm("vm1", memfd, &h);
	c.ioas = h.ioas;
	cut_off(&c, alloc_queue);
	cr_assert_eq(c.r, -ECONNRESET, "the allocation returned %d (%s)", c.r,
		     c.why);
	cr_assert(strstr(c.why, "eventfd was lost"), "%s", c.why);
	cr_assert_eq(c.fq, 0, "out-parameters untouched on error");
	{
		uint32_t nr = 1;

		cr_assert_eq(ioasid_fault_queue_list(c.ctx, &fi, &nr), 0);
		cr_assert_eq(nr, 1, "the queue was made");
		cr_assert_eq(fi.target_id, h.ioas);
		c.fq = fi.fault_id;
	}
	{
		char named[64];

		snprintf(named, sizeof(named), "fault queue %u was made",
			 c.fq);
		cr_assert(strstr(c.why, named), "%s", c.why);
	}
	cr_assert_eq(ioasid_device_detach(c.ctx, h.dev), 0);
	cr_assert_eq(ioasid_fault_queue_destroy(c.ctx, c.fq), 0);
	cr_assert_eq(ioasid_device_attach(c.ctx, h.dev, h.ioas, 0), 0);
	cr_assert_eq(ioasid_fault_queue_alloc(c.ctx, h.ioas, 0, 0, 0, &fq,
					      &efd), 0, "%s",
		     ioasid_last_error(c.ctx));
	cr_assert_eq(dma_to(c.ctx, &h, 16ull << 20), -EINPROGRESS);
	rec = read_one(c.ctx, fq, efd);
	c.fq = fq;
	c.cookie = rec.cookie;
	cut_off(&c, answer);
	cr_assert_eq(c.r, 0, "the answer resumed as given: %s", c.why);
	cr_assert_eq(dma_to(c.ctx, &h, 16ull << 20), -EFAULT, "the device "
		     "sees the answer");
	cr_assert_eq(ioasid_fault_queue_info(c.ctx, fq, &fi), 0);
	cr_assert_eq(fi.responses, 1, "answered once");
	unsetenv("IOASID_RECONNECT");
	ioasid_unref(c.ctx);
	close(efd);
	close(memfd);
}

/* ---- under load: 20 crashes at random moments ---------------------------- */

/*
 * N clients, each with a named session, a restricted IOAS, a device and
 * a memfd, run random maps, unmaps, cuts (a page out of a mapping),
 * conversions, attaches and detaches and device DMA through ioasidd;
 * each does the same, call for call, on an embedded simulated context
 * of its own with a memfd of its own (its record of what was
 * acknowledged): every result must be the same.  Meanwhile ioasidd is
 * killed with SIGKILL 20 times, each after a random number of calls
 * (seeded, printed: IOASID_TEST_SEED=N repeats a run), and started again
 * by the supervisor; the clients resume on their own.  At the end each
 * compares the daemon's state with its record: every page looked up,
 * the IOAS's counters, DMA to every page, the memfds' bytes.
 */
#define LOAD_CLIENTS	3
#define LOAD_CRASHES	20
#define LOAD_SLOTS	16
#define SLOT		(64 * 1024)
#define PAGE		4096
#define LOAD_BASE	0x10000000ull

/* the built-in topology's devices in a group of their own, coherent */
static const char *const load_devs[LOAD_CLIENTS] = {
	"0000:00:01.0", "0000:00:02.0", "0000:00:03.0",
};

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

struct pair {
	struct ioasid_ctx *ctx[2];	/* ioasidd, the record */
	uint32_t ioas[2], dev[2];
	int memfd[2];
	bool attached;
	int id;
	unsigned long calls;
};

/* Both results must agree; else say what differed and fail. */
static bool same(struct pair *p, const char *what, int r0, int r1,
		 uint64_t v0, uint64_t v1)
{
	if (r0 == r1 && v0 == v1)
		return true;
	fprintf(stderr, "client %d, call %lu (%s): ioasidd %d (%s) value "
		"%llu, record %d value %llu\n", p->id, p->calls, what, r0,
		r0 < 0 ? ioasid_last_error(p->ctx[0]) : "ok",
		(unsigned long long)v0, r1, (unsigned long long)v1);
	return false;
}

static bool one_call(struct pair *p, uint64_t *x)
{
	uint64_t slot = rnd(x) % LOAD_SLOTS, page = rnd(x) % (SLOT / PAGE);
	uint64_t iova = LOAD_BASE + slot * SLOT, v[2] = { 0, 0 };
	struct ioasid_iova_range range;
	unsigned char buf[PAGE];
	const char *what = "?";
	int r[2] = { 0, 0 };
	uint32_t conv;

	p->calls++;
	/*
	 * The record first, ioasidd last: ioasid_last_error() is per thread,
	 * so same() then quotes the daemon's reason, not the record's.
	 */
	switch (rnd(x) % 6) {
	case 0:
		what = "map";
		for (int k = 1; k >= 0; k--) {
			v[k] = iova;
			r[k] = ioasid_map_file(p->ctx[k], p->ioas[k],
					       p->memfd[k], slot * SLOT, SLOT,
					       RW | IOASID_MAP_FIXED_IOVA, &v[k]);
		}
		break;
	case 1:
		what = "unmap";
		for (int k = 1; k >= 0; k--)
			r[k] = ioasid_unmap(p->ctx[k], p->ioas[k], iova, SLOT,
					    0, &v[k]);
		break;
	case 2:
		what = "cut";
		for (int k = 1; k >= 0; k--)
			r[k] = ioasid_unmap(p->ctx[k], p->ioas[k],
					    iova + page * PAGE, PAGE, 0, &v[k]);
		break;
	case 3:
		what = "convert";
		range.start = iova + page * PAGE;
		range.last = range.start + (1 + rnd(x) % 4) * PAGE - 1;
		conv = rnd(x) & 1 ? IOASID_CONVERT_SHARED :
				     IOASID_CONVERT_PRIVATE;
		for (int k = 1; k >= 0; k--)
			r[k] = ioasid_convert(p->ctx[k], p->ioas[k], &range, 1,
					      conv, &v[k]);
		break;
	case 4:
		what = p->attached ? "detach" : "attach";
		for (int k = 1; k >= 0; k--)
			r[k] = p->attached ?
			       ioasid_device_detach(p->ctx[k], p->dev[k]) :
			       ioasid_device_attach(p->ctx[k], p->dev[k],
						    p->ioas[k], 0);
		if (r[0] == 0 && r[1] == 0)
			p->attached = !p->attached;
		break;
	case 5:
		what = "dma";
		memset(buf, (int)(p->calls & 0xff), sizeof(buf));
		for (int k = 1; k >= 0; k--)
			r[k] = ioasid_device_dma(p->ctx[k], p->dev[k],
						 iova + page * PAGE, buf,
						 PAGE, IOASID_DMA_WRITE, &v[k]);
		break;
	}
	return same(p, what, r[0], r[1], v[0], v[1]);
}

/* The daemon's state against the record, page by page. */
static bool same_state(struct pair *p)
{
	struct ioasid_ioas_info info[2];
	static unsigned char a[LOAD_SLOTS * SLOT], b[LOAD_SLOTS * SLOT];
	unsigned char buf[PAGE];
	bool ok = true;
	int r[2];

	for (uint64_t pg = 0; pg < LOAD_SLOTS * SLOT / PAGE && ok; pg++) {
		uint64_t iova = LOAD_BASE + pg * PAGE, done[2] = { 0, 0 };
		struct ioasid_mapping m[2] = {};

		for (int k = 0; k < 2; k++)
			r[k] = ioasid_lookup(p->ctx[k], p->ioas[k], iova,
					     &m[k]);
		ok = same(p, "lookup", r[0], r[1], m[0].iova, m[1].iova) &&
		     same(p, "lookup length", 0, 0, m[0].length,
			  m[1].length) &&
		     same(p, "lookup offset", 0, 0, m[0].offset,
			  m[1].offset);
		if (!ok || !p->attached)
			continue;
		for (int k = 0; k < 2; k++)
			r[k] = ioasid_device_dma(p->ctx[k], p->dev[k], iova,
						 buf, PAGE, 0, &done[k]);
		ok = same(p, "dma read", r[0], r[1], done[0], done[1]);
	}
	for (int k = 0; k < 2 && ok; k++)
		r[k] = ioasid_ioas_get_info(p->ctx[k], p->ioas[k], &info[k]);
	ok = ok && same(p, "info", r[0], r[1], 0, 0) &&
	     same(p, "nr_mappings", 0, 0, info[0].nr_mappings,
		  info[1].nr_mappings) &&
	     same(p, "bytes_mapped", 0, 0, info[0].bytes_mapped,
		  info[1].bytes_mapped) &&
	     same(p, "bytes_shared", 0, 0, info[0].bytes_shared,
		  info[1].bytes_shared) &&
	     same(p, "nr_devices", 0, 0, info[0].nr_devices,
		  info[1].nr_devices);
	if (ok && (pread(p->memfd[0], a, sizeof(a), 0) != sizeof(a) ||
		   pread(p->memfd[1], b, sizeof(b), 0) != sizeof(b) ||
		   memcmp(a, b, sizeof(a)))) {
		fprintf(stderr, "client %d: the memfds differ: a DMA landed "
			"on one side only\n", p->id);
		ok = false;
	}
	return ok;
}

static int load_client(int id, int ready, int tick,
		       const volatile int *stop, uint64_t seed)
{
	struct pair p = { .id = id };
	uint64_t x = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(id + 1));
	char name[16];

	snprintf(name, sizeof(name), "load%d", id);
	if (ioasid_new(s.uri, &p.ctx[0]) < 0 ||
	    ioasid_session_name(p.ctx[0], name, NULL) < 0 ||
	    ioasid_new("sim", &p.ctx[1]) < 0)
		return 10;
	for (int k = 0; k < 2; k++) {
		p.memfd[k] = test_memfd(LOAD_SLOTS * SLOT);
		if (ioasid_ioas_alloc(p.ctx[k], IOASID_IOAS_RESTRICTED,
				      &p.ioas[k]) < 0 ||
		    ioasid_device_bind(p.ctx[k], load_devs[id], -1,
				       &p.dev[k]) < 0)
			return 11;
	}
	/* named now: from here on a crash is the library's to ride out */
	if (write(ready, "r", 1) != 1)
		return 13;
	close(ready);
	while (!*stop) {
		if (!one_call(&p, &x))
			return 1;
		if (write(tick, "x", 1) != 1)
			return 12;
	}
	if (!same_state(&p))
		return 2;
	fprintf(stderr, "client %d: %lu calls, the state is the record's\n",
		id, p.calls);
	return 0;
}

/* Read @n ticks (calls done); false when the clients stopped. */
static bool ticks(int fd, unsigned int n)
{
	char buf[64];

	while (n) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t got;

		/* a bound for a hang, not a timing */
		if (poll(&pf, 1, 30000) != 1)
			return false;
		got = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (got <= 0)
			return false;
		n -= (unsigned int)got;
	}
	return true;
}

Test(crash, twenty_crashes_under_load_lose_nothing, .timeout = 300)
{
	const char *env = getenv("IOASID_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) :
			(uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	volatile int *stop = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t x = seed | 1;
	pid_t pid[LOAD_CLIENTS];
	int tick[2], ready[2], status;
	char drain[256];

	fprintf(stderr, "load: seed %llu (IOASID_TEST_SEED=%llu repeats "
		"this run)\n", (unsigned long long)seed,
		(unsigned long long)seed);
	cr_assert_neq((void *)stop, MAP_FAILED);
	*stop = 0;
	/* a bound for a slow machine, not a timing: restarts take ms */
	setenv("IOASID_RECONNECT", "30", 1);
	start();
	cr_assert_eq(pipe(tick), 0);
	cr_assert_eq(pipe(ready), 0);
	for (int i = 0; i < LOAD_CLIENTS; i++) {
		pid[i] = fork();
		cr_assert_geq(pid[i], 0);
		if (pid[i] == 0) {
			close(tick[0]);
			close(ready[0]);
			_exit(load_client(i, ready[1], tick[1], stop, seed));
		}
	}
	close(tick[1]);
	close(ready[1]);
	/*
	 * No crash before every client has connected and named its session:
	 * an unnamed session has nothing to reclaim, so a crash during its
	 * set-up fails that client by design, not by a loss.
	 */
	cr_assert(ticks(ready[0], LOAD_CLIENTS), "the clients set up");
	close(ready[0]);
	/*
	 * Every other crash, the daemon kills itself right after recording
	 * its Nth change, before the reply leaves (a moment a kill from
	 * outside hardly ever hits); the others come from here after N calls.
	 */
	for (int k = 0; k < LOAD_CRASHES; k++) {
		unsigned int n = 1 + (unsigned int)(rnd(&x) % 80);
		char num[16];

		if (k & 1) {
			cr_assert_eq(sup_wait_exit(&s), 0, "crash %d: the daemon "
				     "kills itself", k);
			unsetenv("IOASIDD_TEST_KILL_AFTER_RECORD");
			cr_assert_eq(sup_restart(&s), 0, "restart %d", k + 1);
			continue;
		}
		cr_assert(ticks(tick[0], n), "the clients go on (crash %d)", k);
		snprintf(num, sizeof(num), "%u", 1 + (unsigned int)(rnd(&x) % 40));
		setenv("IOASIDD_TEST_KILL_AFTER_RECORD", num, 1);
		cr_assert_eq(sup_crash_restart(&s), 0, "restart %d", k + 1);
	}
	unsetenv("IOASIDD_TEST_KILL_AFTER_RECORD");
	/* calls after the last restart too */
	cr_assert(ticks(tick[0], 4 * LOAD_CLIENTS), "the clients go on");
	*stop = 1;
	while (read(tick[0], drain, sizeof(drain)) > 0)
		;
	for (int i = 0; i < LOAD_CLIENTS; i++) {
		cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "client %d: status %d (seed %llu)", i,
			  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			  (unsigned long long)seed);
	}
	cr_assert_eq(s.starts, LOAD_CRASHES + 1);
	close(tick[0]);
}

/*
 * Live upgrades with the journal on (ioasidd(8), LIVE UPGRADE): the same
 * load, clients that do not ride anything out (IOASID_RECONNECT=0: a
 * dropped connection fails their next call, and the client with it), and
 * SIGUSR2 at seeded random moments.  The successor takes the journal
 * over: a session named before the upgrades and one named after come
 * back from a crash after them.
 */
#define LOAD_UPGRADES	6

Test(crash, upgrades_under_load_fail_no_call_and_keep_the_journal,
     .timeout = 300)
{
	const char *env = getenv("IOASID_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) :
			(uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	volatile int *stop = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int memfd = test_memfd(1 << 20), memfd2 = test_memfd(1 << 20);
	struct ioasid_ctx *before, *after;
	uint64_t x = seed | 1;
	pid_t pid[LOAD_CLIENTS];
	int tick[2], ready[2], status;
	struct held h1, h2;
	char drain[256];

	fprintf(stderr, "upgrades: seed %llu (IOASID_TEST_SEED=%llu repeats "
		"this run)\n", (unsigned long long)seed,
		(unsigned long long)seed);
	cr_assert_neq((void *)stop, MAP_FAILED);
	*stop = 0;
	setenv("IOASID_RECONNECT", "0", 1);
	/* sim1's devices may do non-coherent DMA: one for "before" */
	cr_assert_eq(sup_start(&s, "[daemon]\nsocket-mode = 0666\n"
			       "[user 0]\nlinger = 60\ndevices = all\n"
			       "observe = yes\nallow-noncoherent = yes\n"), 0);
	before = vmm_on("before", memfd, "0000:01:02.0", &h1);
	cr_assert_eq(pipe(tick), 0);
	cr_assert_eq(pipe(ready), 0);
	for (int i = 0; i < LOAD_CLIENTS; i++) {
		pid[i] = fork();
		cr_assert_geq(pid[i], 0);
		if (pid[i] == 0) {
			close(tick[0]);
			close(ready[0]);
			_exit(load_client(i, ready[1], tick[1], stop, seed));
		}
	}
	close(tick[1]);
	close(ready[1]);
	cr_assert(ticks(ready[0], LOAD_CLIENTS), "the clients set up");
	close(ready[0]);
	for (int k = 0; k < LOAD_UPGRADES; k++) {
		pid_t old = s.pid;

		cr_assert(ticks(tick[0], 1 + (unsigned int)(rnd(&x) % 60)),
			  "the clients go on (upgrade %d)", k);
		cr_assert_eq(kill(s.pid, SIGUSR2), 0);
		cr_assert_eq(sup_wait_mainpid(&s, old), 0, "upgrade %d: a "
			     "successor takes over", k);
	}
	cr_assert(ticks(tick[0], 4 * LOAD_CLIENTS), "the clients go on");
	*stop = 1;
	while (read(tick[0], drain, sizeof(drain)) > 0)
		;
	for (int i = 0; i < LOAD_CLIENTS; i++) {
		cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "client %d: status %d (seed %llu)", i,
			  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			  (unsigned long long)seed);
	}
	close(tick[0]);
	cr_assert_eq(s.mainpid_changes, LOAD_UPGRADES);
	cr_assert_eq(s.starts, 1, "no restart: upgrades only");
	cr_assert(sup_log_has(&s, "journal: taken over"), "the log says so");
	/* the one context that saw all of it goes on as if nothing happened */
	check_mapped(before, &h1, memfd, 1);

	/* a crash now: the successor's journal has every session */
	after = connect_ctx();
	cr_assert_eq(ioasid_session_drop(after, "load0"), 0, "%s",
		     ioasid_last_error(after));
	ioasid_unref(after);
	after = vmm_on("after", memfd2, load_devs[0], &h2);
	unsetenv("IOASID_RECONNECT");
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(before);
	ioasid_unref(after);
	before = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(before, "before", h1.token), 0,
		     "%s", ioasid_last_error(before));
	check_reclaimed(before, &h1, memfd);
	after = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(after, "after", h2.token), 0,
		     "%s", ioasid_last_error(after));
	check_reclaimed(after, &h2, memfd2);
	ioasid_unref(before);
	ioasid_unref(after);
	close(memfd);
	close(memfd2);
}

/*
 * An upgrade that hands the journal over writes image version 2; a
 * binary that reads only version 1 refuses it, and the old process goes
 * on serving, and journaling: a crash after that still rebuilds.
 */
Test(crash, a_successor_that_cannot_take_the_journal_refuses)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	char path[4096];
	uint32_t newpid = 0;
	struct held h;
	pid_t old;

	snprintf(path, sizeof(path), "%s", daemon_binary());
	*strrchr(path, '/') = '\0';
	*strrchr(path, '/') = '\0';
	strncat(path, "/tests/ioasidd-failnth", sizeof(path) - strlen(path) - 1);
	if (access(path, X_OK) < 0)
		cr_skip_test("no %s", path);
	setenv("IOASIDD", path, 1);
	setenv("IOASIDD_TEST_IMAGE_MAX_VERSION", "1", 1);
	start();
	unsetenv("IOASIDD");
	old = s.pid;
	ctx = vmm("vm1", memfd, &h);
	cr_assert_eq(ioasid_daemon_upgrade(ctx, NULL, &newpid),
		     -EPROTONOSUPPORT, "%s", ioasid_last_error(ctx));
	cr_assert(strstr(ioasid_last_error(ctx), "version 2"), "%s",
		  ioasid_last_error(ctx));
	unsetenv("IOASIDD_TEST_IMAGE_MAX_VERSION");
	sup_poll(&s);
	cr_assert_eq(s.pid, old, "the old process is the main one again");
	/* it serves and journals on */
	check_mapped(ctx, &h, memfd, 1);
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA,
				     &(uint64_t){ 1 << 30 }), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	check_mapped(ctx, &h, memfd, 2);
	ioasid_unref(ctx);
	close(memfd);
}

/* ---- compaction ---------------------------------------------------------- */

static off_t journal_size(void)
{
	struct stat st;

	cr_assert_eq(fstat(sup_fd(&s, journal_name()), &st), 0);
	return st.st_size;
}

/*
 * Past 1 MiB (and four times its size after the last compaction) the
 * journal is written anew without the sessions that ended; a crash after
 * that rebuilds from the new one.
 */
Test(crash, a_grown_journal_is_compacted_and_still_rebuilds)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx, *gone;
	const char *before;
	uint32_t ioas;
	struct held h;

	start();
	ctx = vmm("vm1", memfd, &h);
	before = journal_name();
	gone = connect_ctx();
	cr_assert_eq(ioasid_ioas_alloc(gone, 0, &ioas), 0);
	/* ~160 bytes a record: not quite 1 MiB of an unnamed session's */
	for (int i = 0; i < 3200; i++) {
		uint64_t iova = 1ull << 32;

		cr_assert_eq(ioasid_map_file(gone, ioas, memfd, 0, 4096,
					     RW | IOASID_MAP_FIXED_IOVA,
					     &iova), 0, "%s",
			     ioasid_last_error(gone));
		cr_assert_eq(ioasid_unmap(gone, ioas, iova, 4096, 0, NULL), 0);
	}
	ioasid_unref(gone);	/* returns once its session is torn down */
	cr_assert_str_eq(journal_name(), before, "not compacted yet");
	/* vm1's changes take it past 1 MiB */
	for (int i = 0; i < 200; i++) {
		uint64_t iova = 2ull << 32;

		cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd, 0, 4096,
					     RW | IOASID_MAP_FIXED_IOVA,
					     &iova), 0, "%s",
			     ioasid_last_error(ctx));
		cr_assert_eq(ioasid_unmap(ctx, h.ioas, iova, 4096, 0, NULL), 0);
	}
	/* one more round trip: the compaction after a batch is done */
	cr_assert_eq(ioasid_ioas_get_info(ctx, h.ioas,
					  &(struct ioasid_ioas_info){}), 0);
	cr_assert_str_neq(journal_name(), before, "a new journal is stored");
	cr_assert_lt(journal_size(), 256 << 10, "without the ended session");
	cr_assert(sup_log_has(&s, "journal compacted"));

	cr_assert_eq(sup_crash_restart(&s), 0);
	check_reclaimed(ctx, &h, memfd);
	ioasid_unref(ctx);
	close(memfd);
}

/*
 * A VMM that maps and unmaps for ever (a guest vIOMMU: one map and one
 * unmap per DMA buffer): compaction writes each live session as its
 * state, not its history, so the journal after it is about the size of
 * the state, however many changes came before; a crash after that
 * rebuilds the very same session, ids and file ids included.
 */
#define CYCLES		200000
#define LIVE_MAPS	4

/* A map and its unmap; the file id the map gave (a new one each time). */
static uint32_t map_unmap(struct ioasid_ctx *ctx, uint32_t ioas, int memfd)
{
	uint64_t iova = 2ull << 32;
	struct ioasid_mapping m = { .file_id = 0 };

	cr_assert_eq(ioasid_map_file(ctx, ioas, memfd, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_lookup(ctx, ioas, iova, &m), 0);
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova, 4096, 0, NULL), 0);
	return m.file_id;
}

/* How many files the store holds (f<N>); its names in @names. */
static unsigned int stored_files(char *names, size_t len)
{
	char *save = NULL, copy[4096];
	unsigned int n = 0;

	sup_poll(&s);
	sup_store_names(&s, NULL, names, len);
	snprintf(copy, sizeof(copy), "%s", names);
	names = copy;
	for (char *w = strtok_r(names, " ", &save); w;
	     w = strtok_r(NULL, " ", &save))
		n += w[0] == 'f';
	return n;
}

Test(crash, a_session_that_maps_for_ever_compacts_to_its_state)
{
	int memfd = test_memfd(1 << 20), memfd2 = test_memfd(1 << 20);
	int cycled = test_memfd(1 << 20);
	struct sup_poller poller = { .stop = -1 };
	char names[4096];
	uint32_t file_id;
	struct snap before, after;
	struct ioasid_ctx *ctx;
	const char *name;
	struct held h;
	off_t size;

	start();
	ctx = vmm("vm1", memfd, &h);
	for (int i = 1; i < LIVE_MAPS; i++) {
		uint64_t iova = (uint64_t)(4 + i) << 20;

		cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd2, 0, 1 << 20,
					     RW | IOASID_MAP_FIXED_IOVA,
					     &iova), 0, "%s",
			     ioasid_last_error(ctx));
	}
	/* the store's notifications are read as they come */
	sup_poller_start(&poller, &s);
	for (int i = 0; i < CYCLES; i++)
		map_unmap(ctx, h.ioas, cycled);
	sup_poller_stop(&poller);
	/* on until the next compaction: right after it, only the state */
	name = journal_name();
	for (int i = 0; i < 20000 && !strcmp(journal_name(), name); i++) {
		map_unmap(ctx, h.ioas, cycled);
		/* a round trip: the compaction after the batch is done */
		cr_assert_eq(ioasid_ioas_get_info(ctx, h.ioas,
					&(struct ioasid_ioas_info){}), 0);
	}
	size = journal_size();
	/* (the cycled file is mapped at the compaction when a map began it) */
	cr_assert_lt(size, 4096 + 512 * (LIVE_MAPS + 1), "%lld bytes after %d "
		     "changes: the journal is the size of the state, not "
		     "of the history", (long long)size, 2 * CYCLES);
	cr_assert_str_neq(journal_name(), name, "compacted within 1 MiB");
	cr_assert(sup_log_has(&s, "1 as their state"), "compacted as state");
	/* the next new file's id, as the crash must leave it */
	file_id = map_unmap(ctx, h.ioas, cycled);
	snapshot_take(ctx, &before, 0);
	cr_assert_eq(ioasid_session_token(ctx, h.token, sizeof(h.token)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	snapshot_take(ctx, &after, 0);
	cr_assert(snapshot_equal(&before, &after), "the same session after "
		  "the crash");
	check_mapped(ctx, &h, memfd, LIVE_MAPS);
	/* the compaction after the restore: the mapped files stay, only */
	cr_assert_eq(stored_files(names, sizeof(names)), 2, "the mapped files "
		     "only: %s", names);
	/* a new file gets the id it would have had: the counter came back */
	cr_assert_eq(map_unmap(ctx, h.ioas, cycled), file_id + 1);
	snapshot_free(&before);
	snapshot_free(&after);
	ioasid_unref(ctx);
	close(memfd);
	close(memfd2);
	close(cycled);
}

/*
 * Dirty tracking in a compacted journal (version 4): the session is
 * written as its state, with the pages not read yet at the compaction
 * (J_DIRTY); a crash right after it brings tracking back on with exactly
 * those pages (a 2 MiB leaf and 4 KiB pages, one read and cleared
 * before).  Pages DMA makes dirty after the compaction: the next test.
 */
Test(crash, dirty_pages_come_back_from_a_compacted_journal, .timeout = 120)
{
	int memfd = test_memfd(1 << 20), ram = test_memfd(4 << 20);
	int cycled = test_memfd(1 << 20);
	uint64_t want[32] = { 0 }, got[32], iova = 4 << 20;
	struct ioasid_ctx *ctx;
	const char *name;
	unsigned int n = 0;
	uint32_t flags;
	struct held h;

	start();
	ctx = vmm("vm-dirty", memfd, &h);
	/* 2 MiB aligned: 2 MiB leaves; then 4 KiB ones */
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, ram, 0, 2 << 20,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0);
	cr_assert_eq(ioasid_dirty_start(ctx, h.ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	test_dma_lands(ctx, h.dev, h.iova + 0x2000, memfd, 0x2000, "a write");
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, got, 0), 0);
	test_dma_lands(ctx, h.dev, h.iova + 0x5000, memfd, 0x5000, "a write");
	test_dma_lands(ctx, h.dev, h.iova + 0x9000, memfd, 0x9000, "a write");
	test_dma_lands(ctx, h.dev, (4 << 20) + 0x3000, ram, 0x3000, "a write");
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, want,
				       IOASID_DIRTY_NO_CLEAR), 0);
	for (size_t i = 0; i < 32; i++)
		n += (unsigned int)__builtin_popcountll(want[i]);
	memset(got, 0, sizeof(got));
	cr_assert_eq(n, 2 + 512, "%u dirty pages", n);
	/* changes until a compaction, none of them in the tracked range */
	name = journal_name();
	for (int i = 0; i < 20000 && !strcmp(journal_name(), name); i++) {
		map_unmap(ctx, h.ioas, cycled);
		cr_assert_eq(ioasid_ioas_get_info(ctx, h.ioas,
					&(struct ioasid_ioas_info){}), 0);
	}
	cr_assert_str_neq(journal_name(), name, "compacted within 1 MiB");
	cr_assert(sup_log_has(&s, "1 as their state"), "compacted as state, "
		  "not kept as its history");
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm-dirty", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	{
		struct ioasid_ioas_info info;

		cr_assert_eq(ioasid_ioas_get_info(ctx, h.ioas, &info), 0);
		flags = info.dirty_flags;
	}
	cr_assert_eq(flags, IOASID_IOAS_DIRTY_ON, "tracking is on again");
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, got,
				       IOASID_DIRTY_NO_CLEAR), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_arr_eq(got, want, sizeof(want), "the pages not read yet");
	/* the compaction after the restore wrote them again: a second crash */
	cr_assert_eq(ioasid_session_token(ctx, h.token, sizeof(h.token)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm-dirty", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, got, 0), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_arr_eq(got, want, sizeof(want), "after a second crash");
	ioasid_unref(ctx);
	close(memfd);
	close(ram);
	close(cycled);
}

/*
 * Pages DMA made dirty after the last compaction: each one a write made
 * dirty is journaled (J_DIRTY) before the DMA's reply, so a crash loses
 * none.  A read that clears is not journaled: the page read and cleared
 * since the compaction comes back dirty too (one copy more, never one
 * page less).
 */
static unsigned int popcount_of(const uint64_t *bm, size_t words)
{
	unsigned int n = 0;

	for (size_t i = 0; i < words; i++)
		n += (unsigned int)__builtin_popcountll(bm[i]);
	return n;
}

Test(crash, pages_dma_made_dirty_survive_a_crash, .timeout = 120)
{
	int memfd = test_memfd(1 << 20), ram = test_memfd(4 << 20);
	uint64_t want[32] = { 0 }, got[32], iova = 4 << 20, read_page;
	struct ioasid_ctx *ctx;
	struct held h;

	start();
	ctx = vmm("vm-dma-dirty", memfd, &h);
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, ram, 0, 2 << 20,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0);
	cr_assert_eq(ioasid_dirty_start(ctx, h.ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	/* made dirty, read and cleared: journaled dirty, its clear not */
	test_dma_lands(ctx, h.dev, h.iova + 0x2000, memfd, 0x2000, "a write");
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, got, 0), 0);
	read_page = (h.iova + 0x2000) >> 12;
	cr_assert(got[read_page / 64] & (1ull << (read_page % 64)));
	/* 4 KiB leaves, two of them contiguous (one record), a 2 MiB leaf */
	test_dma_lands(ctx, h.dev, h.iova + 0x5000, memfd, 0x5000, "a write");
	test_dma_lands(ctx, h.dev, h.iova + 0x6000, memfd, 0x6000, "a write");
	test_dma_lands(ctx, h.dev, h.iova + 0x9000, memfd, 0x9000, "a write");
	test_dma_lands(ctx, h.dev, (4 << 20) + 0x3000, ram, 0x3000, "a write");
	/* a read without clearing changes nothing */
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, want,
				       IOASID_DIRTY_NO_CLEAR), 0);
	cr_assert_eq(popcount_of(want, 32), 3 + 512, "dirty before the crash");
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm-dma-dirty", h.token), 0,
		     "%s", ioasid_last_error(ctx));
	memset(got, 0, sizeof(got));
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, got,
				       IOASID_DIRTY_NO_CLEAR), 0, "%s",
		     ioasid_last_error(ctx));
	want[read_page / 64] |= 1ull << (read_page % 64);
	cr_assert_arr_eq(got, want, sizeof(want), "every page DMA made dirty, "
			 "and the one read since the compaction");
	/* and the rebuilt domain tracks: a new write is seen, and kept */
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, got, 0), 0);
	test_dma_lands(ctx, h.dev, h.iova + 0xb000, memfd, 0xb000, "a write");
	cr_assert_eq(ioasid_session_token(ctx, h.token, sizeof(h.token)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm-dma-dirty", h.token), 0,
		     "%s", ioasid_last_error(ctx));
	memset(got, 0, sizeof(got));
	cr_assert_eq(ioasid_dirty_read(ctx, h.ioas, 0, 8 << 20, got, 0), 0);
	read_page = (h.iova + 0xb000) >> 12;
	want[read_page / 64] |= 1ull << (read_page % 64);
	cr_assert_arr_eq(got, want, sizeof(want), "the restore's compaction "
			 "(the pages then, read since) and the write after it");
	ioasid_unref(ctx);
	close(memfd);
	close(ram);
}

/*
 * A crash in the middle of a compaction (ioasidd kills itself when the
 * new journal is written but not stored, or stored with the old one not
 * yet removed): one whole journal is left, and it rebuilds the session.
 */
static void crash_in_compaction(const char *when)
{
	int memfd = test_memfd(1 << 20);
	struct snap before, after;
	struct ioasid_ctx *ctx;
	bool mapped = false;
	struct held h;
	int r = 0;

	setenv("IOASIDD_TEST_KILL_IN_COMPACTION", when, 1);
	setenv("IOASID_RECONNECT", "0", 1);
	start();
	unsetenv("IOASIDD_TEST_KILL_IN_COMPACTION");
	ctx = vmm("vm1", memfd, &h);
	snapshot_take(ctx, &before, 0);
	cr_assert_eq(ioasid_session_token(ctx, h.token, sizeof(h.token)), 0);
	/* past 1 MiB the compaction comes, and the daemon dies in it */
	for (int i = 0; r == 0; i++) {
		uint64_t iova = 2ull << 32;

		cr_assert_lt(i, 20000, "no compaction within 1 MiB");
		r = ioasid_map_file(ctx, h.ioas, memfd, 0, 4096,
				    RW | IOASID_MAP_FIXED_IOVA, &iova);
		mapped = r == 0;
		if (r == 0)
			r = ioasid_unmap(ctx, h.ioas, iova, 4096, 0, NULL);
	}
	cr_assert_eq(sup_wait_exit(&s), 0, "the daemon kills itself (%s)",
		     when);
	unsetenv("IOASID_RECONNECT");
	cr_assert_eq(sup_restart(&s), 0);
	cr_assert(sup_log_has(&s, "journal: 1 session(s) rebuilt"));
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	/* the compaction came after a map: acknowledged, so it came back */
	if (mapped)
		cr_assert_eq(ioasid_unmap(ctx, h.ioas, 2ull << 32, 4096, 0,
					  NULL), 0, "%s",
			     ioasid_last_error(ctx));
	snapshot_take(ctx, &after, 0);
	cr_assert(snapshot_equal(&before, &after), "the same session after "
		  "a crash in the compaction (%s)", when);
	check_reclaimed(ctx, &h, memfd);
	snapshot_free(&before);
	snapshot_free(&after);
	ioasid_unref(ctx);
	close(memfd);
}

Test(crash, a_crash_before_the_compacted_journal_is_stored)
{
	crash_in_compaction("written");
}

Test(crash, a_crash_before_the_old_journal_is_removed)
{
	crash_in_compaction("stored");
}

/* ---- nested tables --------------------------------------------------------- */

/*
 * A nested table and its attachment come back too: the guest's stage-1
 * table is in the memfd (the store keeps it), the rebuilt table walks it.
 * Guest memory at GPA 1M: root at 1M, then one table per level; GVA
 * 0x200000 -> GPA 1M + 0x10000.
 */
Test(crash, a_nested_table_comes_back)
{
	const uint64_t gpa = 1 << 20, P_W_U = 7, data = 0x10000;
	struct ioasid_nested_vtd_s1 s1 = { .pgtbl_addr = gpa,
					   .addr_width = 48 };
	uint64_t e[5] = {
		(gpa + 0x1000) | P_W_U,		/* PML4[0] -> PDPT */
		(gpa + 0x2000) | P_W_U,		/* PDPT[0] -> PD */
		(gpa + 0x3000) | P_W_U,		/* PD[1] -> PT */
		(gpa + data) | P_W_U,		/* PT[0] -> data */
	};
	struct ioasid_nested_info info;
	struct ioasid_device_info di;
	int memfd = test_memfd(1 << 20);
	uint32_t nested = 0, nr = 1;
	struct ioasid_ctx *ctx;
	char buf[16] = "";
	uint64_t done = 0;
	struct held h;

	cr_assert_eq(pwrite(memfd, &e[0], 8, 0), 8);
	cr_assert_eq(pwrite(memfd, &e[1], 8, 0x1000), 8);
	cr_assert_eq(pwrite(memfd, &e[2], 8, 0x2000 + 8), 8);
	cr_assert_eq(pwrite(memfd, &e[3], 8, 0x3000), 8);
	start();
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_name(ctx, "vm-nested", &nr), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT,
				       &h.ioas), 0);
	h.iova = gpa;
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd, 0, 1 << 20,
				     RW | IOASID_MAP_FIXED_IOVA, &h.iova), 0);
	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, &h.dev), 0);
	cr_assert_eq(ioasid_nested_alloc(ctx, h.ioas, h.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &nested), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_attach_nested(ctx, h.dev, nested, 0), 0);
	cr_assert_eq(ioasid_session_token(ctx, h.token, sizeof(h.token)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);

	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm-nested", h.token), 0,
		     "%s", ioasid_last_error(ctx));
	nr = 1;
	cr_assert_eq(ioasid_nested_list(ctx, h.ioas, &info, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(info.nested_id, nested);
	cr_assert_eq(info.pgtbl_addr, gpa);
	cr_assert_eq(info.nr_devices, 1);
	cr_assert_eq(ioasid_device_get_info(ctx, NIC, &di), 0);
	cr_assert_eq(di.nested_id, nested);
	cr_assert_eq(ioasid_device_dma(ctx, h.dev, 0x200000,
				       (void *)"through stage 1", 16,
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(pread(memfd, buf, 16, data), 16);
	cr_assert_str_eq(buf, "through stage 1");
	ioasid_unref(ctx);
	close(memfd);
}

/*
 * Everything nesting has (tests/helpers.c's test_nesting: a vIOMMU with
 * two vDEVICEs, a table on it with the NIC and a PASID, a plain table
 * with a PASID, a PASID on the parent) comes back with its ids, works,
 * and survives a second crash; a live upgrade in between hands it over
 * too (the image of version 3 and the journal).  The invalidation
 * counters are journaled only by a compaction (an invalidation is not a
 * change record): the snapshot is taken before any invalidation.
 */
Test(crash, nested_tables_pasids_and_viommus_come_back)
{
	int memfd = test_memfd(1 << 20);
	char token[IOASID_SESSION_TOKEN_HEX];
	struct snap before, after;
	struct test_nesting t;
	struct ioasid_ctx *ctx;
	uint32_t linger = 0;
	pid_t old;

	start();
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_name(ctx, "vm-nesting", &linger), 0);
	test_nesting_build(ctx, memfd, &t);
	snapshot_take(ctx, &before, 0);
	cr_assert_eq(ioasid_session_token(ctx, token, sizeof(token)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);

	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm-nesting", token), 0,
		     "%s", ioasid_last_error(ctx));
	snapshot_take(ctx, &after, 0);
	cr_assert(snapshot_equal(&before, &after),
		  "the rebuilt session has the same tables, PASIDs, vIOMMU, "
		  "vDEVICEs and ids");
	test_nesting_check(ctx, memfd, &t, "after the crash");

	/* a live upgrade: the image carries them, the journal goes on */
	old = s.pid;
	cr_assert_eq(kill(s.pid, SIGUSR2), 0);
	cr_assert_eq(sup_wait_mainpid(&s, old), 0, "the upgrade is done");
	test_nesting_check(ctx, memfd, &t, "after the upgrade");
	cr_assert_eq(ioasid_session_token(ctx, token, sizeof(token)), 0);
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm-nesting", token), 0,
		     "%s", ioasid_last_error(ctx));
	snapshot_free(&after);
	snapshot_take(ctx, &after, 0);
	cr_assert(snapshot_equal(&before, &after), "again after the upgrade "
		  "and a second crash");
	test_nesting_check(ctx, memfd, &t, "after the second crash");
	snapshot_free(&before);
	snapshot_free(&after);
	ioasid_unref(ctx);
	close(memfd);
}

/* ---- KVM VMs ------------------------------------------------------------- */

/*
 * Every KVM VM and kvm-vfio device is the one anonymous inode: each must
 * come back to the session that bound it, not to the first stored file
 * of that inode.
 */
struct held_vm {
	struct ioasid_ctx *ctx;
	char token[IOASID_SESSION_TOKEN_HEX];
	int vm_fd;
	uint32_t vm;
};

/* Whether the daemon holds our open file @fd (kcmp(2): root only). */
static bool daemon_holds(int fd)
{
	char path[64];
	struct dirent *de;
	bool found = false;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)s.pid);
	dir = opendir(path);
	cr_assert_not_null(dir, "%s: %m", path);
	while (!found && (de = readdir(dir)))
		found = de->d_name[0] != '.' &&
			syscall(SYS_kcmp, s.pid, getpid(), 0 /* KCMP_FILE */,
				atoi(de->d_name), fd) == 0;
	closedir(dir);
	return found;
}

/* How many of the store's entries are our open file @fd. */
static unsigned int stored_times(int fd)
{
	unsigned int n = 0;

	sup_poll(&s);
	for (unsigned int i = 0; i < s.nr_store; i++)
		n += syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */,
			     s.store[i].fd, fd) == 0;
	return n;
}

static void vm_session(const char *name, struct held_vm *h)
{
	uint32_t linger = 0;

	h->ctx = connect_ctx();
	h->vm_fd = test_kvm_vm();
	cr_assert_eq(ioasid_session_name(h->ctx, name, &linger), 0, "%s",
		     ioasid_last_error(h->ctx));
	cr_assert_eq(ioasid_vm_bind(h->ctx, h->vm_fd, -1, &h->vm), 0, "%s",
		     ioasid_last_error(h->ctx));
	cr_assert_eq(ioasid_session_token(h->ctx, h->token,
					  sizeof(h->token)), 0);
	cr_assert(daemon_holds(h->vm_fd), "%s: the daemon holds its VM",
		  name);
}

static void vm_reclaim(const char *name, struct held_vm *h)
{
	struct ioasid_vm_info info;
	uint32_t ids[4], nr = 4;

	ioasid_unref(h->ctx);
	h->ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(h->ctx, name, h->token), 0,
		     "%s: %s", name, ioasid_last_error(h->ctx));
	cr_assert_eq(ioasid_session_token(h->ctx, h->token,
					  sizeof(h->token)), 0);
	cr_assert_eq(ioasid_vm_list(h->ctx, ids, &nr), 0);
	cr_assert_eq(nr, 1, "%s: its VM came back", name);
	cr_assert_eq(ids[0], h->vm);
	cr_assert_eq(ioasid_vm_get_info(h->ctx, h->vm, &info), 0, "%s",
		     ioasid_last_error(h->ctx));
	cr_assert(daemon_holds(h->vm_fd), "%s: the daemon holds its VM",
		  name);
}

Test(crash, each_session_gets_its_own_kvm_vm_back)
{
	struct held_vm a, b;
	pid_t old;

	if (geteuid() != 0)
		cr_skip_test("kcmp(2) of the daemon's files needs root");
	start();
	vm_session("vmA", &a);
	cr_assert_eq(sup_crash_restart(&s), 0);
	vm_reclaim("vmA", &a);
	/* a live upgrade: the successor journals the next VM */
	old = s.pid;
	cr_assert_eq(kill(s.pid, SIGUSR2), 0);
	cr_assert_eq(sup_wait_mainpid(&s, old), 0, "the upgrade is done");
	vm_session("vmB", &b);
	cr_assert_eq(sup_crash_restart(&s), 0);
	vm_reclaim("vmA", &a);
	vm_reclaim("vmB", &b);
	/* each VM has its own entry: not one for both (the one inode) */
	cr_assert_eq(stored_times(a.vm_fd), 1, "A's VM is stored, once");
	cr_assert_eq(stored_times(b.vm_fd), 1, "B's VM is stored, once");
	ioasid_unref(a.ctx);
	ioasid_unref(b.ctx);
	close(a.vm_fd);
	close(b.vm_fd);
}

/* ---- a kill inside the upgrade window ------------------------------------ */

/*
 * Each step of the live upgrade's handover, the old or the new process
 * SIGKILLed there ($IOASIDD_TEST_KILL_IN_UPGRADE, upgrade.c): the old one
 * serves on (the new one died before it said it was ready), or both are
 * gone and the service manager's restart rebuilds from the journal.
 * Either way both sessions (the one that asked for the upgrade and one
 * that did not) come back with every acknowledged change, and what each
 * client reads afterwards (its shared view too) is what it did.
 */
struct upgrade_vmm {
	const char *name;
	struct ioasid_ctx *ctx;
	int memfd;
	struct held h;
};

static const uint64_t second_iova = 1 << 30;

static void upgrade_vmm_on(struct upgrade_vmm *v, const char *name,
			   const char *dev)
{
	uint64_t iova = second_iova;

	v->name = name;
	v->memfd = test_memfd(1 << 20);
	/* a dropped connection fails the call: the test restarts */
	setenv("IOASID_RECONNECT", "0", 1);
	v->ctx = vmm_on(name, v->memfd, dev, &v->h);
	unsetenv("IOASID_RECONNECT");
	cr_assert_eq(ioasid_map_file(v->ctx, v->h.ioas, v->memfd, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA, &iova), 0,
		     "%s", ioasid_last_error(v->ctx));
	/* the first lookup: the old process makes the view, with it */
	cr_assert_eq(ioasid_lookup(v->ctx, v->h.ioas, second_iova,
				   &(struct ioasid_mapping){ 0 }), 0);
}

static void upgrade_vmm_reclaim(struct upgrade_vmm *v, const char *when)
{
	ioasid_unref(v->ctx);
	v->ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(v->ctx, v->name, v->h.token), 0,
		     "%s: %s: %s", when, v->name, ioasid_last_error(v->ctx));
}

/* Both mappings, then the second's unmap seen as made (no stale view). */
static void upgrade_vmm_check(struct upgrade_vmm *v, const char *when)
{
	struct ioasid_mapping m;

	check_mapped(v->ctx, &v->h, v->memfd, 2);
	cr_assert_eq(ioasid_lookup(v->ctx, v->h.ioas, second_iova, &m), 0,
		     "%s: %s: %s", when, v->name, ioasid_last_error(v->ctx));
	cr_assert_eq(ioasid_unmap(v->ctx, v->h.ioas, second_iova, 4096, 0,
				  NULL), 0, "%s: %s: %s", when, v->name,
		     ioasid_last_error(v->ctx));
	cr_assert_eq(ioasid_lookup(v->ctx, v->h.ioas, second_iova, &m),
		     -ENOENT, "%s: %s: the unmap is seen", when, v->name);
	check_mapped(v->ctx, &v->h, v->memfd, 1);
	cr_assert_eq(ioasid_session_token(v->ctx, v->h.token,
					  sizeof(v->h.token)), 0);
}

static void kill_in_upgrade(const char *when, bool old_serves)
{
	struct upgrade_vmm v[2];
	uint32_t newpid = 0;
	pid_t old;

	setenv("IOASIDD_TEST_KILL_IN_UPGRADE", when, 1);
	start();
	unsetenv("IOASIDD_TEST_KILL_IN_UPGRADE");
	old = s.pid;
	upgrade_vmm_on(&v[0], "asks", NIC);
	upgrade_vmm_on(&v[1], "other", NIC2);
	cr_assert_neq(ioasid_daemon_upgrade(v[0].ctx, NULL, &newpid), 0,
		      "%s: the upgrade does not succeed", when);
	if (old_serves) {
		sup_poll(&s);
		cr_assert_eq(s.pid, old, "%s: the old process serves", when);
		cr_assert(sup_log_has(&s, "still serving"), "%s", when);
	} else {
		/* the old one, then whoever it had handed over to */
		do {
			old = s.pid;
			sup_poll(&s);
			cr_assert_eq(sup_wait_exit(&s), 0, "%s: exits", when);
		} while (s.pid > 0 && s.pid != old);
		cr_assert_eq(sup_restart(&s), 0, "%s: restarts", when);
		for (int i = 0; i < 2; i++)
			upgrade_vmm_reclaim(&v[i], when);
	}
	for (int i = 0; i < 2; i++)
		upgrade_vmm_check(&v[i], when);
	/* and the journal goes on: a crash now rebuilds that */
	cr_assert_eq(sup_crash_restart(&s), 0);
	for (int i = 0; i < 2; i++) {
		upgrade_vmm_reclaim(&v[i], when);
		check_reclaimed(v[i].ctx, &v[i].h, v[i].memfd);
		ioasid_unref(v[i].ctx);
		close(v[i].memfd);
	}
}
Test(crash, the_old_one_killed_once_the_image_is_written)
{
	kill_in_upgrade("old:image", false);
}

Test(crash, the_old_one_killed_once_the_new_one_is_ready)
{
	kill_in_upgrade("old:ready", false);
}

Test(crash, the_new_one_killed_once_it_read_the_image)
{
	kill_in_upgrade("new:read", true);
}

Test(crash, the_new_one_killed_once_it_rebuilt_everything)
{
	kill_in_upgrade("new:adopted", true);
}

Test(crash, the_new_one_killed_once_it_said_it_is_ready)
{
	kill_in_upgrade("new:ready", false);
}

Test(crash, the_new_one_killed_once_it_was_let_go)
{
	kill_in_upgrade("new:go", false);
}
