/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kb_systemd - crash survival, live upgrade and lingering sessions under
 * systemd 252 as PID 1 (the tests/vm boot made with mkinitrd.sh --systemd),
 * running the shipped ioasidd.service and ioasidd.socket as the build
 * generated them, socket-activated, with the policy and the backend in
 * the files the unit names (SYSCONFDIR/ioasidd.conf, EnvironmentFile
 * SYSCONFDIR/default/ioasidd):
 *
 *  1. sim: a named session maps a memfd at 8 IOVAs and attaches a device;
 *     systemctl kill -s KILL of the main process: systemd restarts it
 *     (NRestarts, a new MainPID), the fd store held the journal and the
 *     files (NFileDescriptorStore), the log says the session was rebuilt,
 *     the client's next call reclaims on its own and every mapping it was
 *     acknowledged is there as it recorded it; it maps again.
 *  2. sim: SIGUSR2 (live upgrade) through systemd: the successor sends
 *     MAINPID= and systemd tracks it (MainPID, no restart, still
 *     active), the client's calls go on; then kill -9 of the successor:
 *     systemd restarts it and the session is rebuilt from the journal the
 *     successor took over.
 *  3. iommufd with edu: edu DMA-ing into the memfd in a loop through
 *     kill -9, the restart and the reclaim: every transfer checked, 0
 *     wrong, no DMAR fault; the same IOAS, mapping and HWPT (the log:
 *     nothing made again); then SIGUSR2, a live upgrade while crash
 *     survival is on, the client calling on meanwhile: systemd follows
 *     the successor (no restart), every kernel object adopted, the fd
 *     store's entries taken over (as many as before), 0 failed calls,
 *     the same IOAS; then kill -9 of the successor: restarted from what
 *     it stored, nothing made again, the client reclaims; edu's DMA
 *     checked throughout: 0 wrong, no DMAR fault.
 *  4. iommufd with edu, linger: a VMM process names its session and is
 *     killed; edu keeps DMA-ing (its cdev held here); a new process with
 *     the token takes the session over; a second VMM killed and never
 *     claimed: when the linger ends the session is gone and edu's DMA no
 *     longer lands.
 *
 * Everything is skipped (with the reason) outside such a boot.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kbtest.h"

#define UNIT		"ioasidd.service"
#define URI		"unix:/run/ioasidd/ioasidd.sock"	/* ioasidd.socket */
#define CONF		SYSCONFDIR "/ioasidd.conf"
#define ENVFILE		SYSCONFDIR "/default/ioasidd"
#define POLICY		"[user 0]\nlinger = 60\ndevices = all\n" \
			"device-fds = yes\n"
#define NIC		"0000:00:01.0"	/* the simulator's built-in topology */
#define IOVA		0x4000000ull	/* below edu's 28-bit DMA mask */
#define LEN		(16 * KB_PAGE)
#define NR_MAPS		8
#define EDU_XFER	1024u
#define WAIT_S		120		/* bounds a hang, not a wait */

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Run a shell command; its exit status, or -1. */
__attribute__((format(printf, 1, 2)))
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first line of a command's output (without the newline). */
static int sh_line(char *buf, size_t len, const char *cmd)
{
	FILE *p = popen(cmd, "r");
	int st;

	buf[0] = 0;
	if (!p)
		return -1;
	if (!fgets(buf, (int)len, p))
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	st = pclose(p);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A numeric property of ioasidd.service (systemctl show); -1 if none. */
static long prop(const char *name)
{
	char cmd[128], out[64];

	snprintf(cmd, sizeof(cmd), "systemctl show -p %s --value " UNIT, name);
	if (sh_line(out, sizeof(out), cmd) != 0 || !out[0])
		return -1;
	return strtol(out, NULL, 10);
}

static bool active(void)
{
	char out[64];

	return sh_line(out, sizeof(out), "systemctl show -p ActiveState "
		       "--value " UNIT) == 0 && !strcmp(out, "active");
}

/* Wait until the service is active with a main process other than @old. */
static long wait_new_main(long old)
{
	double end = now() + WAIT_S;

	while (now() < end) {
		long pid = prop("MainPID");

		if (pid > 0 && pid != old && active())
			return pid;
		usleep(20000);
	}
	return -1;
}

/* Does ioasidd's log (the journal, this boot) contain @needle? */
static bool log_has(const char *needle)
{
	static char buf[1 << 20];
	FILE *p = popen("journalctl -b -u " UNIT " -o cat --no-pager", "r");
	size_t n;

	if (!p)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	pclose(p);
	return strstr(buf, needle) != NULL;
}

/* How many lines of ioasidd's log (this boot) contain @needle. */
static unsigned int log_count(const char *needle)
{
	static char buf[1 << 20];
	FILE *p = popen("journalctl -b -u " UNIT " -o cat --no-pager", "r");
	unsigned int count = 0;
	size_t n;

	if (!p)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	pclose(p);
	for (const char *q = buf; (q = strstr(q, needle)); q += strlen(needle))
		count++;
	return count;
}

static void dump_log(void)
{
	printf("# ioasidd's log (journalctl -u " UNIT "):\n");
	fflush(stdout);
	sh("journalctl -b -u " UNIT " -o cat --no-pager | tail -n 40 | "
	   "sed 's/^/#   /'");
	sh("systemctl status --no-pager " UNIT " 2>&1 | sed 's/^/#   /'");
}

static int write_file(const char *path, const char *text)
{
	FILE *f;

	sh("mkdir -p \"$(dirname %s)\"", path);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

/* A fresh ioasidd.socket (the service starts at the first connection). */
static bool service_setup(const char *backend, const char *policy)
{
	char env[128];

	snprintf(env, sizeof(env), "IOASIDD_BACKEND=%s\n", backend);
	sh("systemctl stop " UNIT " ioasidd.socket >/dev/null 2>&1");
	sh("systemctl reset-failed " UNIT " >/dev/null 2>&1");
	return write_file(CONF, policy) == 0 && write_file(ENVFILE, env) == 0 &&
	       sh("systemctl start ioasidd.socket") == 0;
}

static void service_stop(void)
{
	tap_ok(sh("systemctl stop " UNIT " ioasidd.socket") == 0 &&
	       prop("MainPID") == 0, "systemctl stop: ioasidd stops cleanly");
}

static int kill_main(void)
{
	return sh("systemctl kill -s KILL --kill-who=main " UNIT);
}

/* ---- 1, 2: the simulator ------------------------------------------------ */

struct record {
	uint32_t ioas, dev;
	uint64_t iova[NR_MAPS], off[NR_MAPS], len[NR_MAPS];
};

/* Every mapping the client was acknowledged, and nothing else. */
static bool mappings_match(struct ioasid_ctx *c, const struct record *rec,
			   unsigned int *found)
{
	struct ioasid_mapping m;
	unsigned int n = 0;
	bool ok = true;

	ioasid_mapping_foreach(c, rec->ioas, &m) {
		bool known = false;

		for (unsigned int i = 0; i < NR_MAPS; i++)
			known |= m.iova == rec->iova[i] &&
				 m.length == rec->len[i] &&
				 m.offset == rec->off[i];
		ok &= known;
		n++;
	}
	*found = n;
	return ok && n == NR_MAPS;
}

static int sim_session(struct ioasid_ctx **c, const char *name, int mem,
		       struct record *rec)
{
	uint32_t linger = 0;
	int r = ioasid_new(URI, c);

	if (r == 0)
		r = ioasid_session_name(*c, name, &linger);
	if (r == 0)
		r = ioasid_ioas_alloc(*c, 0, &rec->ioas);
	for (unsigned int i = 0; r == 0 && i < NR_MAPS; i++) {
		rec->iova[i] = IOVA + i * 2 * KB_PAGE;
		rec->off[i] = (i % 4) * KB_PAGE;
		rec->len[i] = KB_PAGE * (1 + i % 2);
		r = ioasid_map_file(*c, rec->ioas, mem, rec->off[i],
				    rec->len[i], IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &rec->iova[i]);
	}
	if (r == 0)
		r = ioasid_device_bind(*c, NIC, -1, &rec->dev);
	if (r == 0)
		r = ioasid_device_attach(*c, rec->dev, rec->ioas, 0);
	return r;
}

static void suite_sim(void)
{
	struct ioasid_ctx *c = NULL;
	struct record rec = { 0 };
	uint64_t iova = IOVA + 64 * KB_PAGE;
	unsigned int found = 0;
	long pid, pid2, nstore;
	int mem = kb_memfd(LEN, 0x5a), r;
	bool ok;

	if (!tap_ok(service_setup("sim", POLICY), "sim: the shipped "
		    "ioasidd.socket started, backend and policy in the files "
		    "the unit names"))
		return;
	r = sim_session(&c, "vm-sim", mem, &rec);
	pid = prop("MainPID");
	tap_ok(r == 0 && pid > 0, "sim: socket activation started ioasidd "
	       "(pid %ld); a named session maps a memfd at %d IOVAs, a "
	       "device attached (%s)", pid, NR_MAPS, r ? kb_err(c) : "ok");
	if (r)
		goto out;
	nstore = prop("NFileDescriptorStore");
	tap_ok(nstore >= 2, "sim: systemd's fd store holds %ld descriptors "
	       "(the journal, the memfd)", nstore);

	/* a crash */
	tap_ok(kill_main() == 0, "sim: systemctl kill -s KILL of the main "
	       "process");
	pid2 = wait_new_main(pid);
	tap_ok(pid2 > 0 && prop("NRestarts") == 1, "sim: systemd restarted "
	       "it (Restart=on-failure): pid %ld, NRestarts=%ld", pid2,
	       prop("NRestarts"));
	tap_ok(log_has("session \"vm-sim\" of uid 0 rebuilt"), "sim: the log "
	       "says the session was rebuilt from the journal");
	ok = mappings_match(c, &rec, &found);
	tap_ok(ok, "sim: the client reclaims on its own; all %u mappings "
	       "it was acknowledged are there as it recorded them (%u found)",
	       NR_MAPS, found);
	r = ioasid_map_file(c, rec.ioas, mem, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_FIXED_IOVA, &iova);
	if (r == 0)
		r = ioasid_device_detach(c, rec.dev);
	if (r == 0)
		r = ioasid_device_attach(c, rec.dev, rec.ioas, 0);
	tap_ok(r == 0, "sim: its next calls succeed: map, detach, attach "
	       "(%s)", r ? kb_err(c) : "ok");
	nstore = prop("NFileDescriptorStore");
	tap_ok(nstore >= 2, "sim: the new process stored its journal again "
	       "(NFileDescriptorStore=%ld)", nstore);

	/* a live upgrade: systemd must follow MAINPID= */
	tap_ok(sh("systemctl kill -s USR2 --kill-who=main " UNIT) == 0,
	       "sim: SIGUSR2 (live upgrade) to the main process");
	pid = wait_new_main(pid2);
	tap_ok(pid > 0 && prop("NRestarts") == 1 && active() &&
	       log_has("upgrade: took over from pid"), "sim: the successor "
	       "took over: systemd tracks it (MainPID %ld, was %ld), no "
	       "restart, still active", pid, pid2);
	iova = IOVA + 80 * KB_PAGE;
	r = ioasid_map_file(c, rec.ioas, mem, 0, KB_PAGE, IOASID_MAP_READ |
			    IOASID_MAP_FIXED_IOVA, &iova);
	tap_ok(r == 0 && ioasid_unmap(c, rec.ioas, iova, KB_PAGE, 0,
				      NULL) == 0,
	       "sim: the client's calls go on through the upgrade");
	r = kill_main();
	pid2 = wait_new_main(pid);
	tap_ok(r == 0 && pid2 > 0 && prop("NRestarts") == 2, "sim: kill -9 "
	       "of the successor: systemd restarts it too (pid %ld)", pid2);
	found = 0;
	ok = !mappings_match(c, &rec, &found) && found == NR_MAPS + 1;
	tap_ok(ok, "sim: rebuilt from the journal the successor "
	       "took over: %u mappings (the %d, and the one mapped after "
	       "the first crash)", found, NR_MAPS);
out:
	if (tap_failed)
		dump_log();
	if (c)
		ioasid_unref(c);
	close(mem);
	service_stop();
}

/* ---- 3, 4: iommufd and edu ---------------------------------------------- */

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
			__atomic_add_fetch(&l->bad, 1, __ATOMIC_RELAXED);
		else
			__atomic_add_fetch(&l->done, 1, __ATOMIC_RELAXED);
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

/* Wait for @n more transfers than @from (or a wrong one). */
static bool dma_progress(struct dma_loop *l, uint64_t from, uint64_t n)
{
	double end = now() + WAIT_S;

	while (__atomic_load_n(&l->done, __ATOMIC_RELAXED) < from + n &&
	       !__atomic_load_n(&l->bad, __ATOMIC_RELAXED) && now() < end)
		sched_yield();
	return __atomic_load_n(&l->done, __ATOMIC_RELAXED) >= from + n &&
	       !__atomic_load_n(&l->bad, __ATOMIC_RELAXED);
}

/* A second client calling the daemon in a loop (a load on it). */
struct caller {
	struct ioasid_ctx *c;
	pthread_t thread;
	int stop;			/* eventfd */
	unsigned int calls, failed;
	bool running;
};

static void *caller_run(void *arg)
{
	struct caller *k = arg;

	for (;;) {
		struct pollfd f = { .fd = k->stop, .events = POLLIN };
		struct ioasid_status st;
		int r;

		if (poll(&f, 1, 0) > 0)
			break;
		r = ioasid_get_status(k->c, &st);
		__atomic_add_fetch(&k->calls, 1, __ATOMIC_RELAXED);
		if (r < 0)
			__atomic_add_fetch(&k->failed, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int caller_start(struct caller *k)
{
	int r = ioasid_new(URI, &k->c);

	k->stop = r == 0 ? eventfd(0, EFD_CLOEXEC) : -1;
	k->running = k->stop >= 0 &&
		     pthread_create(&k->thread, NULL, caller_run, k) == 0;
	return k->running ? 0 : r < 0 ? r : -EIO;
}

/* Stop it once it made @n more calls than @from (or failed one). */
static void caller_stop(struct caller *k, unsigned int from, unsigned int n)
{
	double end = now() + WAIT_S;
	uint64_t one = 1;

	while (k->running && now() < end &&
	       __atomic_load_n(&k->calls, __ATOMIC_RELAXED) < from + n &&
	       !__atomic_load_n(&k->failed, __ATOMIC_RELAXED))
		sched_yield();
	if (k->running &&
	    write(k->stop, &one, sizeof(one)) == (ssize_t)sizeof(one))
		pthread_join(k->thread, NULL);
	k->running = false;
	if (k->stop >= 0)
		close(k->stop);
	k->stop = -1;
	if (k->c)
		ioasid_unref(k->c);
	k->c = NULL;
}

/* A session that binds edu, maps @mem at IOVA, attaches; its cdev in @fd. */
static int edu_session(struct ioasid_ctx **c, const char *uri,
		       const char *name, const char *edu, int mem,
		       uint32_t *ioas, int *fd)
{
	uint64_t iova = IOVA;
	uint32_t dev, linger = 0;
	int r = ioasid_new(uri, c);

	if (r == 0 && name)
		r = ioasid_session_name(*c, name, &linger);
	if (r == 0)
		r = ioasid_device_bind(*c, edu, -1, &dev);
	if (r == 0)
		r = ioasid_ioas_alloc(*c, 0, ioas);
	if (r == 0)
		r = ioasid_map_file(*c, *ioas, mem, 0, LEN, IOASID_MAP_READ |
				    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
				    &iova);
	if (r == 0)
		r = ioasid_device_attach(*c, dev, *ioas, 0);
	if (r == 0)
		r = ioasid_device_get_fd(*c, dev, fd);
	return r;
}

static int edu_prime(struct dma_loop *l, int devfd, uint8_t *pat)
{
	int r = edu_open(&l->edu, devfd);

	kb_pattern(pat, EDU_XFER, 0x77);
	l->pat = pat;
	if (r == 0 && (pwrite(l->mem, pat, EDU_XFER, 0) != EDU_XFER ||
		       edu_to_buf(&l->edu, IOVA, 0, EDU_XFER) < 0))
		r = -EIO;
	return r;
}

static void suite_edu_crash(const char *edu)
{
	struct ioasid_ctx *c = NULL;
	struct ioasid_mapping m;
	struct dma_loop l = { .stop = -1, .mem = kb_memfd(LEN, 0) };
	uint8_t pat[EDU_XFER];
	uint64_t before, killed, down;
	uint32_t ioas = 0;
	struct caller load = { .stop = -1 };
	unsigned int calls = 0, failed = 0, rebuilt;
	long pid, pid2, nstore;
	double end;
	int fd = -1, r;
	bool ok;

	if (!tap_ok(service_setup("iommufd", POLICY), "iommufd: the shipped "
		    "ioasidd.socket started with --backend=iommufd"))
		return;
	r = edu_session(&c, URI, "vm-edu", edu, l.mem, &ioas, &fd);
	if (r == 0)
		r = edu_prime(&l, fd, pat);
	pid = prop("MainPID");
	if (!tap_ok(r == 0, "iommufd: a named session binds %s, maps a "
		    "memfd, attaches; its cdev here, BAR0 mapped (%s)", edu,
		    r ? kb_err(c) : "ok"))
		goto out;
	tap_ok(prop("NFileDescriptorStore") >= 4, "iommufd: the fd store "
	       "holds the session's image and kernel fds "
	       "(NFileDescriptorStore=%ld)", prop("NFileDescriptorStore"));
	kb_kmsg("kb_systemd: edu across a crash");
	dma_loop_start(&l);
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	r = kill_main();
	killed = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	pid2 = wait_new_main(pid);
	down = __atomic_load_n(&l.done, __ATOMIC_RELAXED) - killed;
	ok = r == 0 && dma_progress(&l, before, 8);
	tap_ok(ok, "iommufd: systemctl kill -s KILL; edu DMA-ing into the "
	       "memfd meanwhile (%llu transfers checked, %llu wrong; %llu "
	       "completed between the kill and the restarted daemon's "
	       "READY=1)", (unsigned long long)l.done,
	       (unsigned long long)l.bad, (unsigned long long)down);
	tap_ok(pid2 > 0 && prop("NRestarts") == 1 &&
	       log_has("kernel state: session \"vm-edu\"") &&
	       log_has("0 record(s) failed, 0 made again"),
	       "iommufd: systemd restarted it (pid %ld); the IOAS, HWPT and "
	       "edu's binding adopted from the stored fds, nothing made "
	       "again (the log)", pid2);
	r = ioasid_lookup(c, ioas, IOVA, &m);
	tap_ok(r == 0 && m.iova == IOVA && m.length == LEN, "iommufd: the "
	       "client reclaims on its own: the same IOAS %u maps the memfd "
	       "at 0x%llx (%s)", ioas, (unsigned long long)IOVA,
	       r ? kb_err(c) : "ok");
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	tap_ok(dma_progress(&l, before, 4), "iommufd: edu's DMA goes on "
	       "after the reclaim");

	/*
	 * A live upgrade by SIGUSR2 while the client calls on: the
	 * successor goes on with the fd store's entries (kstate.c)
	 */
	nstore = prop("NFileDescriptorStore");
	rebuilt = log_count("0 record(s) failed, 0 made again");
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	r = caller_start(&load);
	if (r == 0)
		r = sh("systemctl kill -s USR2 --kill-who=main " UNIT);
	end = now() + WAIT_S;
	while (r == 0 && (pid = prop("MainPID")) == pid2 && now() < end) {
		calls++;
		failed += ioasid_lookup(c, ioas, IOVA, &m) != 0;
	}
	pid = wait_new_main(pid2);
	for (int i = 0; i < 4; i++) {
		calls++;
		failed += ioasid_lookup(c, ioas, IOVA, &m) != 0;
	}
	caller_stop(&load, __atomic_load_n(&load.calls, __ATOMIC_RELAXED),
		    16);
	tap_ok(r == 0 && pid > 0 && prop("NRestarts") == 1 && active() &&
	       log_has("upgrade: took over from pid") &&
	       log_has("every kernel object adopted") &&
	       log_has("kernel state: taken over (1 session(s)") &&
	       !log_has("left the store"),
	       "iommufd: SIGUSR2, a live upgrade with crash survival on: the "
	       "successor (MainPID %ld, was %ld, no restart) adopted every "
	       "kernel object and goes on with the fd store's entries (the "
	       "log)", pid, pid2);
	tap_ok(failed == 0 && load.calls > 16 && load.failed == 0 &&
	       ioasid_lookup(c, ioas, IOVA, &m) == 0 &&
	       m.iova == IOVA && m.length == LEN,
	       "iommufd: the clients called on through the upgrade: %u "
	       "lookups, %u failed; a second client's loop %u calls, %u "
	       "failed; the same IOAS %u maps the memfd", calls, failed,
	       load.calls, load.failed, ioas);
	tap_ok(dma_progress(&l, before, 8) &&
	       prop("NFileDescriptorStore") == nstore, "iommufd: edu's DMA "
	       "lands through the upgrade (%llu transfers, %llu wrong); the "
	       "fd store holds as many descriptors as before (%ld, was %ld)",
	       (unsigned long long)l.done, (unsigned long long)l.bad,
	       prop("NFileDescriptorStore"), nstore);

	/* then a crash of the successor: what it stored brings it back */
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	r = kill_main();
	pid2 = wait_new_main(pid);
	tap_ok(r == 0 && pid2 > 0 && prop("NRestarts") == 2 &&
	       dma_progress(&l, before, 8) &&
	       log_count("0 record(s) failed, 0 made again") == rebuilt + 1,
	       "iommufd: kill -9 of the successor: systemd restarted it (pid "
	       "%ld); the session rebuilt from what the successor stored, "
	       "nothing made again (the log); edu DMA-ing meanwhile", pid2);
	r = ioasid_lookup(c, ioas, IOVA, &m);
	if (r == 0)
		r = ioasid_get_status(c, &(struct ioasid_status){ 0 });
	tap_ok(r == 0 && m.iova == IOVA && m.length == LEN, "iommufd: the "
	       "client reclaims on its own: the same IOAS %u maps the memfd, "
	       "its next call succeeds (%s)", ioas, r ? kb_err(c) : "ok");
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	tap_ok(dma_progress(&l, before, 4), "iommufd: edu's DMA goes on "
	       "after the second reclaim");
	dma_loop_stop(&l);
	tap_ok(!l.bad &&
	       !kb_any_dmar_fault_after("kb_systemd: edu across a crash"),
	       "iommufd: edu's DMA through the kill, the restart, the "
	       "upgrade, the second kill and restart: %llu transfers, %llu "
	       "wrong, no DMAR fault in the kernel log",
	       (unsigned long long)l.done, (unsigned long long)l.bad);
	edu_close(&l.edu);
out:
	if (fd >= 0)
		close(fd);	/* else edu stays bound to that iommufd */
	if (tap_failed)
		dump_log();
	if (c)
		ioasid_unref(c);
	close(l.mem);
	service_stop();
}

/*
 * A VMM: names its session, binds edu, maps, attaches, sends its cdev's
 * number and its token up @pipe, then waits to be killed.
 */
struct vmm {
	pid_t pid;
	int devfd;			/* a copy of its cdev, here */
	uint32_t ioas;
	char token[IOASID_SESSION_TOKEN_HEX];
};

static int vmm_start(struct vmm *v, const char *name, const char *edu,
		     int mem)
{
	int p[2], pidfd, fd = -1, r = 0;
	char line[256];
	ssize_t n;

	if (pipe(p) < 0)
		return -errno;
	v->pid = fork();
	if (v->pid == 0) {
		struct ioasid_ctx *c = NULL;
		char tok[IOASID_SESSION_TOKEN_HEX] = "";

		close(p[0]);
		r = edu_session(&c, URI, name, edu, mem, &v->ioas, &fd);
		if (r == 0)
			r = ioasid_session_token(c, tok, sizeof(tok));
		n = snprintf(line, sizeof(line), "%d %d %u %s\n", r, fd,
			     v->ioas, tok);
		if (write(p[1], line, (size_t)n) != n)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (v->pid < 0) {
		close(p[0]);
		return -errno;
	}
	n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	line[n > 0 ? n : 0] = 0;
	if (sscanf(line, "%d %d %u %64s", &r, &fd, &v->ioas, v->token) != 4)
		return -EIO;
	if (r)
		return r;
	pidfd = (int)syscall(SYS_pidfd_open, v->pid, 0);
	v->devfd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (pidfd >= 0)
		close(pidfd);
	return v->devfd < 0 ? -errno : 0;
}

static void vmm_kill(struct vmm *v)
{
	kill(v->pid, SIGKILL);
	waitpid(v->pid, NULL, 0);
}

/* Session @name's state (IOASID_SESSION_LINGERING...); 0 none, -1 error. */
static int session_state(struct ioasid_ctx *c, const char *name)
{
	struct ioasid_session_info s[16];
	uint32_t nr = 16;

	if (ioasid_session_list(c, s, &nr) < 0)
		return -1;
	for (uint32_t i = 0; i < nr; i++)
		if (!strcmp(s[i].name, name))
			return (int)s[i].state;
	return 0;
}

/* Wait until session @name is no longer in state @st; its state then. */
static int wait_state_not(struct ioasid_ctx *c, const char *name, int st)
{
	double end = now() + WAIT_S;
	int now_st;

	while ((now_st = session_state(c, name)) == st && now() < end)
		usleep(20000);
	return now_st;
}

static void suite_linger(const char *edu)
{
	struct ioasid_ctx *obs = NULL, *c = NULL;
	struct dma_loop l = { .stop = -1, .mem = kb_memfd(LEN, 0) };
	struct ioasid_mapping m;
	struct vmm v = { .devfd = -1 }, w = { .devfd = -1 };
	uint8_t pat[EDU_XFER], in[EDU_XFER];
	uint64_t before;
	double end;
	int r, st;
	bool ok;

	if (!tap_ok(service_setup("iommufd", "[user 0]\nlinger = 5\n"
				  "devices = all\ndevice-fds = yes\n"
				  "observe = yes\n"),
		    "linger: ioasidd.service with linger = 5 in ioasidd.conf"))
		return;
	r = vmm_start(&v, "vm-linger", edu, l.mem);
	if (r == 0)
		r = edu_prime(&l, v.devfd, pat);
	if (!tap_ok(r == 0, "linger: a VMM process names its session, binds "
		    "edu, maps a memfd, attaches (%s)", strerror(-r)))
		goto out;
	r = ioasid_new(URI, &obs);
	dma_loop_start(&l);
	vmm_kill(&v);
	/* the daemon sees the connection go in its own time */
	st = r == 0 ? wait_state_not(obs, "vm-linger",
				     IOASID_SESSION_CONNECTED) : -1;
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	ok = st == IOASID_SESSION_LINGERING && dma_progress(&l, before, 8);
	tap_ok(ok, "linger: the VMM "
	       "killed; its session lingers and edu keeps DMA-ing (%llu "
	       "transfers, %llu wrong)", (unsigned long long)l.done,
	       (unsigned long long)l.bad);
	r = ioasid_new(URI, &c);
	if (r == 0)
		r = ioasid_session_reclaim(c, "vm-linger", v.token);
	if (r == 0)
		r = ioasid_lookup(c, v.ioas, IOVA, &m);
	tap_ok(r == 0 && m.length == LEN, "linger: a new process with the "
	       "token takes the session over: the same IOAS %u maps the "
	       "memfd (%s)", v.ioas, r ? kb_err(c) : "ok");
	before = __atomic_load_n(&l.done, __ATOMIC_RELAXED);
	dma_progress(&l, before, 4);
	dma_loop_stop(&l);
	tap_ok(!l.bad, "linger: edu's DMA through the kill and the takeover: "
	       "%llu transfers, %llu wrong", (unsigned long long)l.done,
	       (unsigned long long)l.bad);
	edu_close(&l.edu);
	close(v.devfd);
	v.devfd = -1;
	ioasid_unref(c);	/* named, so it lingers again: drop it */
	c = NULL;
	tap_ok(ioasid_session_drop(obs, "vm-linger") == 0 &&
	       session_state(obs, "vm-linger") == 0, "linger: the session "
	       "dropped (ioasid_session_drop)");

	/* killed and never claimed */
	r = vmm_start(&w, "vm-gone", edu, l.mem);
	if (r == 0)
		r = edu_prime(&l, w.devfd, pat);
	if (!tap_ok(r == 0, "linger: a second VMM, its session named (%s)",
		    strerror(-r)))
		goto out;
	vmm_kill(&w);
	st = wait_state_not(obs, "vm-gone", IOASID_SESSION_CONNECTED);
	tap_ok(st == IOASID_SESSION_LINGERING, "linger: the second VMM "
	       "killed: its session lingers (%d)", st);
	st = wait_state_not(obs, "vm-gone", IOASID_SESSION_LINGERING);
	tap_ok(st == 0, "linger: never claimed: the session is torn down "
	       "when the linger ends (ioasid_session_list)");
	tap_diag("the log: %s", log_has("vm-gone") ? "names it" : "silent");
	kb_kmsg("kb_systemd: after the linger");
	memset(in, 0, sizeof(in));
	if (pwrite(l.mem, in, EDU_XFER, 8 * KB_PAGE) != EDU_XFER)
		r = -EIO;
	edu_to_mem(&l.edu, 0, IOVA + 8 * KB_PAGE, EDU_XFER);
	tap_ok(r == 0 && kb_file_equals(l.mem, 8 * KB_PAGE, in, EDU_XFER),
	       "linger: edu's DMA no longer lands in the memfd");
	/*
	 * The check above is the proof; the kernel's fault message is only
	 * a diagnostic (VT-d rate-limits it and drops repeats).
	 */
	end = now() + 5;
	while (!kb_any_dmar_fault_after("kb_systemd: after the linger") &&
	       now() < end)
		usleep(50000);
	tap_diag("linger: %s", kb_any_dmar_fault_after("kb_systemd: after the "
						 "linger") ?
		 "a DMAR fault in the kernel log" :
		 "no DMAR fault message in the kernel log (rate limit)");
	edu_close(&l.edu);
out:
	if (v.devfd >= 0)
		close(v.devfd);
	if (w.devfd >= 0)
		close(w.devfd);
	if (tap_failed)
		dump_log();
	if (c)
		ioasid_unref(c);
	if (obs)
		ioasid_unref(obs);
	close(l.mem);
	service_stop();
}

int main(void)
{
	struct ioasid_device_info info;
	struct ioasid_ctx *probe = NULL;
	struct stat st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	if (stat("/run/systemd/system", &st) < 0 ||
	    sh("systemctl cat " UNIT " ioasidd.socket >/dev/null 2>&1")) {
		printf("1..0 # SKIP not under systemd with ioasidd.service "
		       "installed (tests/vm: mkinitrd.sh --systemd)\n");
		return 77;
	}
	setenv("IOASID_RECONNECT", "60", 1);
	tap_diag("%s", "ioasidd.service as installed:");
	fflush(stdout);
	sh("systemctl cat " UNIT " | grep -E '^(ExecStart|EnvironmentFile|"
	   "FileDescriptorStoreMax|Restart|NotifyAccess)=' | sed 's/^/#   /'");
	suite_sim();
	if (ioasid_new("iommufd", &probe) < 0 || kb_find_edu(probe, &info)) {
		tap_skip("no edu device with a VFIO cdev", "iommufd and edu "
			 "under systemd");
	} else {
		ioasid_unref(probe);
		probe = NULL;
		suite_edu_crash(info.name);
		suite_linger(info.name);
	}
	if (probe)
		ioasid_unref(probe);
	return tap_done();
}
