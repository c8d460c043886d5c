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
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <libioasid.h>

#include "helpers.h"
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
	char buf[16] = "";
	uint64_t done = 0;

	cr_assert_eq(ioasid_lookup(ctx, h->ioas, h->iova, &m), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(m.iova, h->iova);
	cr_assert_eq(m.length, 1 << 20);
	cr_assert_eq(ioasid_ioas_get_info(ctx, h->ioas, &info), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(info.nr_mappings, nr_mappings);
	cr_assert_eq(ioasid_device_dma(ctx, h->dev, h->iova + 4096,
				       (void *)"after the crash", 16,
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(done, 16);
	cr_assert_eq(pread(memfd, buf, 16, 4096), 16);
	cr_assert_str_eq(buf, "after the crash");
}

static void check_reclaimed(struct ioasid_ctx *ctx, const struct held *h,
			    int memfd)
{
	check_mapped(ctx, h, memfd, 1);
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
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	check_reclaimed(ctx, &h, memfd);
	/* the ids go on after the rebuilt ones: nothing is named twice */
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	cr_assert_gt(other, h.ioas);
	cr_assert_gt(other, h.dev);

	/* twice: the rebuilt journal is itself one a restart reads */
	ioasid_session_token(ctx, h.token, sizeof(h.token));
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	check_reclaimed(ctx, &h, memfd);
	cr_assert_eq(ioasid_ioas_get_info(ctx, other,
					  &(struct ioasid_ioas_info){}), 0,
		     "an IOAS made after the first restart is kept too");
	ioasid_unref(ctx);
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
	buf[8] = 2;
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
	cr_assert_eq(sup_crash_restart(&s), 0);
	ioasid_unref(ctx);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm2", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	check_reclaimed(ctx, &h, memfd);
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
	cr_assert(sup_log_has(&s, "version 2 is newer than this ioasidd "
			      "reads (1)"), "the log says why");
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
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	check_reclaimed(ctx, &h, memfd);
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
