/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sessions that outlive their connection (ioasid_session(3)), against a
 * real ioasidd on the simulated IOMMU: a client that dies leaves its
 * named session whole for the policy's linger; a process of the same uid
 * with the name and token takes it over (its mappings still carry device
 * DMA); unclaimed it is torn down when the linger ends.  Every refusal:
 * wrong, replayed or another uid's token, a connected session, bad
 * names, embedded contexts, unsafe token files.  Clients of other uids
 * are real processes (fork + setresuid).
 *
 * Nothing here sleeps to synchronise: waits poll the daemon's session
 * list for the state wanted, bounded by SETTLE_TRIES.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <libioasid.h>

#include "daemon_fixture.h"
#include "helpers.h"
#include "policy.h"

#define NIC	"0000:00:01.0"		/* built-in sim topology */
#define RW	(IOASID_MAP_READ | IOASID_MAP_WRITE)
#define NOBODY	65534
/* polls every 2 ms for up to 30 s: a bound for a hang, not a timing */
#define SETTLE_TRIES	15000

static struct daemon_fixture d;

/* root and nobody may linger; root keeps what it has without a section */
#define CONFIG(linger, extra) \
	"[daemon]\nsocket-mode = 0666\n" extra \
	"[user 0]\nlinger = " linger "\ndevices = all\nobserve = yes\n" \
	"[user 65534]\nlinger = " linger "\ndevices = none\n"

static void start(const char *config)
{
	struct daemon_opts o = { .config = config, .log_level = "debug" };

	cr_assert_eq(daemon_start(&d, &o), 0, "ioasidd must start");
}

static void stop_quietly(void)
{
	if (d.pid > 0)
		daemon_stop(&d);
}

static void expect_clean_exit(void)
{
	cr_assert_eq(daemon_stop(&d), 0, "ioasidd must exit cleanly");
}

static void setup(void)
{
	start(CONFIG("60", ""));
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct ioasid_ctx *connect_ctx(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(d.uri, &ctx);

	cr_assert_eq(r, 0, "ioasid_new: %d %s", r, ioasid_last_error(NULL));
	return ctx;
}

/* Wait until @name is in @state (0: gone); bounded. */
static void wait_state(struct ioasid_ctx *ctx, const char *name,
		       uint32_t state, struct ioasid_session_info *out)
{
	struct ioasid_session_info si;

	for (int i = 0; i < SETTLE_TRIES; i++) {
		bool there = test_find_session(ctx, name, &si);

		if (!state && !there)
			return;
		if (state && there && si.state == state) {
			if (out)
				*out = si;
			return;
		}
		sleep_ms(2);
	}
	cr_assert_fail("session %s never reached state %u", name, state);
}

struct held {
	char token[IOASID_SESSION_TOKEN_HEX];
	uint32_t ioas, dev;
	uint64_t iova;
};

/*
 * A VMM that names its session @name, maps @memfd, binds and attaches
 * the NIC (with @device), tells the parent what it holds and dies
 * without closing anything.
 */
static void vmm_dies(const char *name, int memfd, bool device,
		     struct held *h)
{
	int p[2];
	pid_t pid;
	int status;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ioasid_ctx *ctx;
		struct held mine = { .iova = 1 << 20 };
		uint32_t linger = 0;

		close(p[0]);
		if (ioasid_new(d.uri, &ctx) < 0 ||
		    ioasid_session_name(ctx, name, &linger) < 0 ||
		    linger == 0 ||
		    ioasid_session_token(ctx, mine.token,
					 sizeof(mine.token)) < 0 ||
		    ioasid_ioas_alloc(ctx, 0, &mine.ioas) < 0 ||
		    ioasid_map_file(ctx, mine.ioas, memfd, 0, 1 << 20,
				    RW | IOASID_MAP_FIXED_IOVA,
				    &mine.iova) < 0)
			_exit(1);
		if (device && (ioasid_device_bind(ctx, NIC, -1, &mine.dev) < 0 ||
			       ioasid_device_attach(ctx, mine.dev, mine.ioas,
						    0) < 0))
			_exit(2);
		if (write(p[1], &mine, sizeof(mine)) != sizeof(mine))
			_exit(3);
		_exit(0);	/* a crash: nothing released */
	}
	close(p[1]);
	cr_assert_eq(read(p[0], h, sizeof(*h)), (ssize_t)sizeof(*h),
		     "the VMM must set up its session");
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TestSuite(linger, .fini = stop_quietly, .timeout = 120);

/* The whole session survives; a successor's DMA lands in the same memfd. */
Test(linger, session_survives_and_its_device_dma_lands_after_reclaim)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_session_info si;
	struct ioasid_ioas_info info;
	struct ioasid_mapping m;
	uint32_t own;
	struct ioasid_ctx *ctx, *watch;
	char token2[IOASID_SESSION_TOKEN_HEX];
	struct held h;

	setup();
	watch = connect_ctx();
	vmm_dies("vm1", memfd, true, &h);
	wait_state(watch, "vm1", IOASID_SESSION_LINGERING, &si);
	cr_assert_eq(si.nr_ioas, 1);
	cr_assert_eq(si.nr_mappings, 1);
	cr_assert_eq(si.nr_devices, 1);
	cr_assert_eq(si.linger_s, 60);
	cr_assert(si.expires_in_s >= 1 && si.expires_in_s <= 60);

	ctx = connect_ctx();
	/*
	 * Before: an IOAS of its own, looked up (the shared view has a slot
	 * for it), then destroyed, so the context may still reclaim.
	 */
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &own), 0);
	cr_assert_eq(ioasid_map_file(ctx, own, memfd, 0, 4096,
				     RW | IOASID_MAP_FIXED_IOVA,
				     &(uint64_t){ 0 }), 0);
	cr_assert_eq(ioasid_lookup(ctx, own, 0, &m), 0);
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, h.iova, &m), -ENOENT);
	cr_assert_eq(ioasid_ioas_destroy(ctx, own), 0);
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	/* the old view does not answer for the reclaimed session */
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, h.iova, &m), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(m.iova, h.iova);
	cr_assert_eq(ioasid_lookup(ctx, own, 0, &m), -ENOENT);
	/* a request ring set up before (the map above) serves the new one */
	cr_assert_eq(ioasid_map_file(ctx, h.ioas, memfd, 8192, 4096,
				     RW | IOASID_MAP_FIXED_IOVA,
				     &(uint64_t){ 1 << 30 }), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_lookup(ctx, h.ioas, 1 << 30, &m), 0);
	cr_assert_eq(ioasid_unmap(ctx, h.ioas, 1 << 30, 4096, 0, NULL), 0, "%s",
		     ioasid_last_error(ctx));
	/* the same ids, the same mapping, the same attached device */
	cr_assert_eq(ioasid_ioas_get_info(ctx, h.ioas, &info), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(info.nr_mappings, 1);
	test_dma_lands(ctx, h.dev, h.iova + 4096, memfd, 4096,
		       "after the crash");
	/* single use: a new token, and the session is connected again */
	cr_assert_eq(ioasid_session_token(ctx, token2, sizeof(token2)), 0);
	cr_assert_str_neq(token2, h.token);
	cr_assert(test_find_session(watch, "vm1", &si));
	cr_assert_eq(si.state, IOASID_SESSION_CONNECTED);
	cr_assert_eq(si.pid, (uint32_t)getpid());

	/* the reclaimed session lingers again; the old token is spent */
	ioasid_unref(ctx);
	wait_state(watch, "vm1", IOASID_SESSION_LINGERING, NULL);
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), -EACCES);
	cr_assert(strstr(ioasid_last_error(ctx), "wrong token"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", token2), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_detach(ctx, h.dev), 0);
	ioasid_unref(ctx);
	wait_state(watch, "vm1", IOASID_SESSION_LINGERING, NULL);
	cr_assert_eq(ioasid_session_drop(watch, "vm1"), 0, "%s",
		     ioasid_last_error(watch));
	cr_assert_not(test_find_session(watch, "vm1", NULL));
	ioasid_unref(watch);
	close(memfd);
	expect_clean_exit();
}

/* A VMM subscribed to device events dies; they wait for its successor. */
static void subscriber_dies(const char *name, char *token, size_t len)
{
	int p[2], status;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ioasid_ctx *ctx;
		char tok[IOASID_SESSION_TOKEN_HEX];

		close(p[0]);
		if (ioasid_new(d.uri, &ctx) < 0 ||
		    ioasid_session_name(ctx, name, NULL) < 0 ||
		    ioasid_event_subscribe(ctx, IOASID_EVENT_GROUP_DEVICE) < 0 ||
		    ioasid_session_token(ctx, tok, sizeof(tok)) < 0 ||
		    write(p[1], tok, sizeof(tok)) != sizeof(tok))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], token, len), (ssize_t)len);
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(linger, events_queued_while_lingering_reach_the_successor)
{
	char token[IOASID_SESSION_TOKEN_HEX];
	struct ioasid_ctx *ctx, *admin;
	struct ioasid_event ev;
	struct pollfd pfd;
	int r = -EAGAIN;

	setup();
	admin = connect_ctx();
	subscriber_dies("ears", token, sizeof(token));
	wait_state(admin, "ears", IOASID_SESSION_LINGERING, NULL);
	cr_assert_eq(ioasid_sim_hotplug(admin, "0000:00:02.1", 0), 0, "%s",
		     ioasid_last_error(admin));
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "ears", token), 0, "%s",
		     ioasid_last_error(ctx));
	pfd = (struct pollfd){ .fd = ioasid_event_get_fd(ctx),
			       .events = POLLIN };
	cr_assert_geq(pfd.fd, 0);
	/* bounded: 30 s for a hang, the event is already queued */
	for (int i = 0; i < 30 && r == -EAGAIN; i++) {
		cr_assert_geq(poll(&pfd, 1, 1000), 0);
		r = ioasid_event_read(ctx, &ev);
	}
	cr_assert_eq(r, 0, "the event queued while lingering arrives");
	cr_assert_eq(ev.type, IOASID_EVENT_DEVICE_REMOVED);
	cr_assert_str_eq(ev.name, "0000:00:02.1");
	cr_assert_eq(ioasid_sim_hotplug(admin, "0000:00:02.1", 1), 0);
	ioasid_unref(ctx);
	ioasid_unref(admin);
	expect_clean_exit();
}

/* Unclaimed: everything goes when the linger ends, as without one. */
Test(linger, unclaimed_session_is_torn_down_when_the_linger_ends)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *watch;
	struct ioasid_status st;
	uint32_t dev;
	struct held h;

	start(CONFIG("1", ""));
	watch = connect_ctx();
	vmm_dies("short", memfd, true, &h);
	wait_state(watch, "short", 0, NULL);
	cr_assert_eq(ioasid_get_status(watch, &st), 0);
	cr_assert_eq(st.nr_ioas, 0, "the IOAS went with the session");
	cr_assert_eq(st.nr_mappings, 0);
	/* the device is free again */
	cr_assert_eq(ioasid_device_bind(watch, NIC, -1, &dev), 0, "%s",
		     ioasid_last_error(watch));
	cr_assert_eq(ioasid_session_reclaim(connect_ctx(), "short", h.token),
		     -ENOENT);
	ioasid_unref(watch);
	close(memfd);
	expect_clean_exit();
}

/* linger = 0 (the default): a named session ends with its connection. */
Test(linger, without_linger_a_named_session_ends_with_its_connection)
{
	struct ioasid_ctx *ctx, *watch;
	uint32_t linger = 99, ioas;

	start("[daemon]\nsocket-mode = 0666\n");
	watch = connect_ctx();
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_name(ctx, "brief", &linger), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(linger, 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert(test_find_session(watch, "brief", NULL));
	ioasid_unref(ctx);		/* returns after the teardown */
	cr_assert_not(test_find_session(watch, "brief", NULL));
	ioasid_unref(watch);
	expect_clean_exit();
}

/* ---- refusals ------------------------------------------------------------ */

Test(linger, bad_names_and_double_names)
{
	struct ioasid_ctx *a, *b;
	static const char *const bad[] = {
		"a/b", "-lead", ".hidden", "sp ace", "semi;colon", "é",
	};

	setup();
	a = connect_ctx();
	b = connect_ctx();
	cr_assert_eq(ioasid_session_name(a, "", NULL), -EINVAL);
	cr_assert_eq(ioasid_session_name(a, NULL, NULL), -EINVAL);
	cr_assert_eq(ioasid_session_name(a, "0123456789012345678901234567890"
					 "1", NULL), -EINVAL);
	cr_assert(strstr(ioasid_last_error(a), "longer than 31"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(ioasid_session_name(a, bad[i], NULL), -EINVAL,
			     "%s", bad[i]);
		cr_assert(strstr(ioasid_last_error(a), "only letters"), "%s",
			  ioasid_last_error(a));
	}
	cr_assert_eq(ioasid_session_name(NULL, "x", NULL), -EINVAL);
	cr_assert_eq(ioasid_session_name(a, "vm.1_x-2", NULL), 0, "%s",
		     ioasid_last_error(a));
	cr_assert_eq(ioasid_session_name(a, "other", NULL), -EBUSY);
	cr_assert_eq(ioasid_session_name(b, "vm.1_x-2", NULL), -EEXIST);
	cr_assert(strstr(ioasid_last_error(b), "already has a session"));
	/* nothing named b: it is still free to take another name */
	cr_assert_eq(ioasid_session_name(b, "vm2", NULL), 0);
	ioasid_unref(a);
	ioasid_unref(b);
	expect_clean_exit();
}

Test(linger, bad_reclaims_give_nothing_away)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx, *live;
	char wrong[IOASID_SESSION_TOKEN_HEX], live_token[sizeof(wrong)];
	char small[8];
	uint32_t ioas;
	struct held h;

	setup();
	ctx = connect_ctx();
	live = connect_ctx();
	vmm_dies("vm1", memfd, false, &h);
	wait_state(ctx, "vm1", IOASID_SESSION_LINGERING, NULL);

	/* token text */
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", NULL), -EINVAL);
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", "abc"), -EINVAL);
	snprintf(wrong, sizeof(wrong), "%s", h.token);
	wrong[5] = 'g';
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", wrong), -EINVAL);
	cr_assert(strstr(ioasid_last_error(ctx), "64 hex digits"));
	/* a well-formed wrong token */
	wrong[5] = h.token[5] == '0' ? '1' : '0';
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", wrong), -EACCES);
	/* unknown name */
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm9", h.token), -ENOENT);
	/* a connected session is not up for reclaim, even with its token */
	cr_assert_eq(ioasid_session_name(live, "live", NULL), 0);
	cr_assert_eq(ioasid_session_token(live, live_token,
					  sizeof(live_token)), 0);
	cr_assert_eq(ioasid_session_reclaim(ctx, "live", live_token), -EBUSY);
	cr_assert(strstr(ioasid_last_error(ctx), "still connected"));
	cr_assert_eq(ioasid_session_drop(ctx, "live"), -EBUSY);
	/* a named connection cannot take another session */
	cr_assert_eq(ioasid_session_reclaim(live, "vm1", h.token), -EBUSY);
	/* only a fresh connection reclaims */
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), -ENOTEMPTY);
	cr_assert_eq(ioasid_ioas_destroy(ctx, ioas), 0);
	/* token buffers */
	cr_assert_eq(ioasid_session_token(ctx, small, sizeof(small)), -ERANGE);
	cr_assert_eq(ioasid_session_token(ctx, wrong, sizeof(wrong)), -ENOENT);
	cr_assert_eq(ioasid_session_token(ctx, NULL, 99), -EINVAL);
	/* after all that, the right token still works */
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", h.token), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_session_drop(ctx, "nope"), -ENOENT);
	ioasid_unref(live);
	ioasid_unref(ctx);
	close(memfd);
	expect_clean_exit();
}

/* ---- another uid --------------------------------------------------------- */

static struct held root_held;

static int run_as_nobody(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY,
							NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(100);
		_exit(fn());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* nobody holds root's name and token: the session does not exist for it */
static int nobody_tries_roots_token(void)
{
	struct ioasid_session_info v[4];
	struct ioasid_ctx *ctx;
	uint32_t nr = 4;

	if (ioasid_new(d.uri, &ctx) < 0)
		return 1;
	if (ioasid_session_reclaim(ctx, "vm1", root_held.token) != -ENOENT)
		return 2;
	if (ioasid_session_drop(ctx, "vm1") != -ENOENT)
		return 3;
	/* root's sessions, lingering or connected, are not listed: its own */
	if (ioasid_session_list(ctx, v, &nr) < 0 || nr != 1 ||
	    v[0].uid != NOBODY || v[0].pid != (uint32_t)getpid() ||
	    v[0].flags != IOASID_SESSION_SELF || v[0].name[0])
		return 4;
	/* the same name is free for nobody, and its own */
	if (ioasid_session_name(ctx, "vm1", NULL) < 0)
		return 5;
	nr = 4;
	if (ioasid_session_list(ctx, v, &nr) < 0 || nr != 1 ||
	    v[0].uid != NOBODY || v[0].state != IOASID_SESSION_CONNECTED ||
	    v[0].flags != (IOASID_SESSION_SELF | IOASID_SESSION_NAMED))
		return 6;
	ioasid_unref(ctx);
	return 0;
}

/* An unprivileged user's own session lingers and comes back to it. */
static int nobody_lingers_and_reclaims(void)
{
	char token[IOASID_SESSION_TOKEN_HEX];
	struct ioasid_ctx *ctx;
	uint32_t ioas, ids[4], nr = 4, linger = 0;

	if (ioasid_new(d.uri, &ctx) < 0 ||
	    ioasid_session_name(ctx, "mine", &linger) < 0 || linger != 60 ||
	    ioasid_session_token(ctx, token, sizeof(token)) < 0 ||
	    ioasid_ioas_alloc(ctx, 0, &ioas) < 0)
		return 1;
	ioasid_unref(ctx);
	if (ioasid_new(d.uri, &ctx) < 0)
		return 2;
	if (ioasid_session_reclaim(ctx, "mine", root_held.token) != -EACCES)
		return 3;	/* root's token is not this session's */
	if (ioasid_session_reclaim(ctx, "mine", token) < 0)
		return 4;
	if (ioasid_ioas_list(ctx, ids, &nr) < 0 || nr != 1 || ids[0] != ioas)
		return 5;
	ioasid_unref(ctx);
	return 0;
}

Test(linger, another_uids_token_reclaims_nothing)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	struct ioasid_session_info si;

	setup();
	ctx = connect_ctx();
	vmm_dies("vm1", memfd, false, &root_held);
	wait_state(ctx, "vm1", IOASID_SESSION_LINGERING, NULL);
	cr_assert_eq(run_as_nobody(nobody_tries_roots_token), 0);
	cr_assert_eq(run_as_nobody(nobody_lingers_and_reclaims), 0);
	/* root's session is untouched and still root's to reclaim */
	cr_assert(test_find_session(ctx, "vm1", &si));
	cr_assert_eq(si.state, IOASID_SESSION_LINGERING);
	cr_assert_eq(si.uid, 0);
	cr_assert_eq(ioasid_session_reclaim(ctx, "vm1", root_held.token), 0,
		     "%s", ioasid_last_error(ctx));
	ioasid_unref(ctx);
	close(memfd);
	expect_clean_exit();
}

/* ---- limits -------------------------------------------------------------- */

/* The daemon's start-up probe may still count as a client: retry. */
static struct ioasid_ctx *connect_retry(void)
{
	struct ioasid_ctx *ctx = NULL;

	for (int i = 0; i < SETTLE_TRIES; i++) {
		if (ioasid_new(d.uri, &ctx) == 0)
			return ctx;
		sleep_ms(2);
	}
	cr_assert_fail("cannot connect: %s", ioasid_last_error(NULL));
	return NULL;
}

/* At most max-clients sessions linger; connections are counted apart. */
Test(linger, lingering_sessions_are_bounded_by_max_clients)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *watch, *ctx;
	struct held a, b, c;

	start(CONFIG("60", "max-clients = 2\n"));
	watch = connect_retry();
	vmm_dies("first", memfd, false, &a);
	wait_state(watch, "first", IOASID_SESSION_LINGERING, NULL);
	vmm_dies("second", memfd, false, &b);
	wait_state(watch, "second", IOASID_SESSION_LINGERING, NULL);
	vmm_dies("third", memfd, false, &c);	/* two linger: torn down */
	wait_state(watch, "third", 0, NULL);
	cr_assert(test_find_session(watch, "first", NULL));
	cr_assert(test_find_session(watch, "second", NULL));
	/* a successor can connect and reclaim although two linger */
	ctx = connect_ctx();
	cr_assert_eq(ioasid_session_reclaim(ctx, "first", a.token), 0, "%s",
		     ioasid_last_error(ctx));
	ioasid_unref(ctx);
	ioasid_unref(watch);
	close(memfd);
	expect_clean_exit();
}

/* The entry of session @id in @v, or NULL. */
static const struct ioasid_session_info *
entry_of(const struct ioasid_session_info *v, uint32_t nr, uint32_t id)
{
	for (uint32_t i = 0; i < nr; i++)
		if (v[i].id == id)
			return &v[i];
	return NULL;
}

/* An observer sees unnamed connected sessions too, each for what it is. */
Test(linger, observer_lists_unnamed_sessions_with_what_they_hold)
{
	int memfd = test_memfd(1 << 20);
	struct ioasid_ctx *watch, *vmm;
	struct ioasid_session_info v[8], mine, vmm_si;
	const struct ioasid_session_info *e;
	char hello[IOASID_NAME_MAX];
	uint32_t nr = 8, ioas, self = 0;
	uint64_t iova = 0;

	setup();
	watch = connect_ctx();
	vmm = connect_ctx();
	cr_assert_eq(ioasid_ioas_alloc(vmm, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_file(vmm, ioas, memfd, 0, 1 << 20, RW, &iova),
		     0, "%s", ioasid_last_error(vmm));
	cr_assert_eq(ioasid_session_list(watch, v, &nr), 0, "%s",
		     ioasid_last_error(watch));
	cr_assert_eq(nr, 2, "both connections' sessions, named or not");
	for (uint32_t i = 0; i < nr; i++) {
		cr_assert_eq(v[i].size, sizeof(v[i]));
		cr_assert_eq(v[i].state, IOASID_SESSION_CONNECTED);
		cr_assert_eq(v[i].uid, getuid());
		cr_assert_eq(v[i].pid, (uint32_t)getpid());
		cr_assert_eq(v[i].name[0], '\0', "unnamed");
		cr_assert_eq(v[i].flags & IOASID_SESSION_NAMED, 0);
		if (v[i].flags & IOASID_SESSION_SELF) {
			cr_assert_eq(self, 0, "one entry is the caller's");
			self = v[i].id;
			mine = v[i];
		} else {
			vmm_si = v[i];
		}
	}
	cr_assert_neq(self, 0);
	cr_assert_eq(mine.nr_ioas, 0);
	cr_assert_eq(vmm_si.nr_ioas, 1);
	cr_assert_eq(vmm_si.nr_mappings, 1);
	cr_assert_eq(vmm_si.bytes_mapped, 1 << 20);
	snprintf(hello, sizeof(hello), "[%d]", (int)getpid());
	cr_assert(strstr(vmm_si.client, hello), "client \"%s\" is what it said "
		  "at HELLO", vmm_si.client);
	/* too small an array: EMSGSIZE and how many there are */
	nr = 1;
	cr_assert_eq(ioasid_session_list(watch, v, &nr), -EMSGSIZE);
	cr_assert_eq(nr, 2);
	/* named, it is the same entry, now named */
	cr_assert_eq(ioasid_session_name(vmm, "vmm", NULL), 0);
	nr = 8;
	cr_assert_eq(ioasid_session_list(watch, v, &nr), 0);
	e = entry_of(v, nr, vmm_si.id);
	cr_assert(e && e->flags == IOASID_SESSION_NAMED &&
		  !strcmp(e->name, "vmm") && e->linger_s == 60);
	/* gone with an unnamed connection: it is not listed any more */
	ioasid_unref(vmm);
	vmm = connect_ctx();
	nr = 8;
	for (int tries = 0; tries < SETTLE_TRIES; tries++) {
		nr = 8;
		cr_assert_eq(ioasid_session_list(watch, v, &nr), 0);
		e = entry_of(v, nr, vmm_si.id);
		if (e && e->state == IOASID_SESSION_LINGERING)
			break;
		sleep_ms(2);
	}
	cr_assert(e && e->state == IOASID_SESSION_LINGERING &&
		  e->client[0] == '\0' && e->flags == IOASID_SESSION_NAMED);
	cr_assert_eq(nr, 3, "the watcher, the new connection, the lingering");
	cr_assert_eq(ioasid_session_drop(watch, "vmm"), 0);
	ioasid_unref(vmm);
	for (int tries = 0; tries < SETTLE_TRIES; tries++) {
		nr = 8;
		cr_assert_eq(ioasid_session_list(watch, v, &nr), 0);
		if (nr == 1)
			break;
		sleep_ms(2);
	}
	cr_assert_eq(nr, 1, "an unnamed session ends with its connection");
	cr_assert_eq(v[0].id, self);
	ioasid_unref(watch);
	close(memfd);
	expect_clean_exit();
}

Test(linger, embedded_contexts_have_no_sessions_to_name)
{
	struct ioasid_ctx *ctx = NULL;
	struct ioasid_session_info v[1];
	char tok[IOASID_SESSION_TOKEN_HEX];
	uint32_t nr = 1;

	cr_assert_eq(ioasid_new("sim", &ctx), 0);
	cr_assert_eq(ioasid_session_name(ctx, "x", NULL), -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(ctx), "embedded"));
	cr_assert_eq(ioasid_session_token(ctx, tok, sizeof(tok)), -EOPNOTSUPP);
	cr_assert_eq(ioasid_session_reclaim(ctx, "x", tok), -EOPNOTSUPP);
	cr_assert_eq(ioasid_session_list(ctx, v, &nr), -EOPNOTSUPP);
	cr_assert_eq(ioasid_session_drop(ctx, "x"), -EOPNOTSUPP);
	cr_assert_eq(ioasid_new("sim?session=x", &ctx), -EINVAL,
		     "parameters are for unix: URIs only");
	ioasid_unref(ctx);
}

/* ---- the URI and its token file ------------------------------------------ */

static void uri(char *buf, size_t len, const char *params)
{
	int n = snprintf(buf, len, "%s?%s", d.uri, params);

	cr_assert(n > 0 && (size_t)n < len);
}

Test(linger, uri_names_then_reclaims_with_its_token_file)
{
	char u[8192], file[256], params[300], before[80] = "", after[80] = "";
	struct ioasid_ctx *ctx, *second = NULL, *watch;
	struct stat st;
	uint32_t ioas, ids[4], nr = 4;
	int fd;

	setup();
	watch = connect_ctx();
	snprintf(file, sizeof(file), "%s/vm.token", d.dir);
	snprintf(params, sizeof(params), "session=uri1&token-file=%s", file);
	uri(u, sizeof(u), params);
	cr_assert_eq(ioasid_new(u, &ctx), 0, "%s", ioasid_last_error(NULL));
	cr_assert_eq(stat(file, &st), 0, "the token file exists");
	cr_assert_eq(st.st_mode & 0777, 0600);
	fd = open(file, O_RDONLY);
	cr_assert_eq(read(fd, before, sizeof(before) - 1), 65);
	close(fd);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	ioasid_unref(ctx);
	wait_state(watch, "uri1", IOASID_SESSION_LINGERING, NULL);

	/* the same URI again: the session comes back, the token rotates */
	cr_assert_eq(ioasid_new(u, &ctx), 0, "%s", ioasid_last_error(NULL));
	cr_assert_eq(ioasid_ioas_list(ctx, ids, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(ids[0], ioas);
	fd = open(file, O_RDONLY);
	cr_assert_eq(read(fd, after, sizeof(after) - 1), 65);
	close(fd);
	cr_assert_str_neq(before, after);
	/* connected: a second opener is refused, nothing else changes */
	cr_assert_eq(ioasid_new(u, &second), -EBUSY);
	ioasid_unref(ctx);
	wait_state(watch, "uri1", IOASID_SESSION_LINGERING, NULL);

	/* a token file others can read is refused before anything is sent */
	cr_assert_eq(chmod(file, 0644), 0);
	cr_assert_eq(ioasid_new(u, &ctx), -EACCES);
	cr_assert(strstr(ioasid_last_error(NULL), "mode 0600"), "%s",
		  ioasid_last_error(NULL));
	cr_assert_eq(chmod(file, 0600), 0);
	/* an old token in the file: refused, the session stays */
	fd = open(file, O_WRONLY | O_TRUNC);
	cr_assert_eq(write(fd, before, strlen(before)), (ssize_t)strlen(before));
	close(fd);
	cr_assert_eq(ioasid_new(u, &ctx), -EACCES);
	cr_assert(test_find_session(watch, "uri1", NULL));

	/* parameters */
	uri(u, sizeof(u), "session=a&bogus=1");
	cr_assert_eq(ioasid_new(u, &ctx), -EINVAL);
	cr_assert(strstr(ioasid_last_error(NULL), "unknown or repeated"));
	uri(u, sizeof(u), "token-file=/nonexistent/x");
	cr_assert_eq(ioasid_new(u, &ctx), -EINVAL);
	uri(u, sizeof(u), "session=");
	cr_assert_eq(ioasid_new(u, &ctx), -EINVAL);
	uri(u, sizeof(u), "session=ok");
	cr_assert_eq(ioasid_new(u, &ctx), 0, "%s", ioasid_last_error(NULL));
	cr_assert(test_find_session(watch, "ok", NULL));
	ioasid_unref(ctx);
	ioasid_unref(watch);
	expect_clean_exit();
}

/* ---- the policy key ------------------------------------------------------ */

Test(policy, linger_is_bounded)
{
	char err[320];
	struct policy *p;
	struct policy_result res;

	cr_assert_eq(policy_parse("[default]\nlinger = 86400\n", "t", &p, err,
				  sizeof(err)), 0, "%s", err);
	policy_lookup(p, 1000, 1000, NULL, 0, &res);
	cr_assert_eq(res.lim.linger, 86400);
	policy_free(p);
	cr_assert_eq(policy_parse("[default]\n", "t", &p, err, sizeof(err)), 0);
	policy_lookup(p, 1000, 1000, NULL, 0, &res);
	cr_assert_eq(res.lim.linger, 0, "the default: no linger");
	policy_free(p);
	cr_assert_eq(policy_parse("[default]\nlinger = 86401\n", "t", &p, err,
				  sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "t:2: linger"), "%s", err);
	cr_assert_eq(policy_parse("[default]\nlinger = unlimited\n", "t", &p,
				  err, sizeof(err)), -EINVAL);
	cr_assert_eq(policy_parse("[default]\nlinger = 5\nlinger = 6\n", "t",
				  &p, err, sizeof(err)), -EINVAL);
}
