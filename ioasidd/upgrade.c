/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Live upgrade: ioasidd re-executes a binary (its own, or a given one) on
 * SIGUSR2 or DAEMON_UPGRADE without dropping a connection or a session.
 *
 * The predecessor, in its one thread (so no request is half run):
 *   1. quiesces: sends what it can of each client's queued replies and
 *      events; what does not fit stays queued and goes into the image;
 *   2. writes the state image (proto/image.h): the core URI, this
 *      file's state record, every connection (socket, its session's id,
 *      its request ring with the daemon's private indexes, queued
 *      messages: client.c), every named session with its token and
 *      deadline (sessions.c), then each session's ops (core/export.c)
 *      and each of its IOASes' file id counter, then the core's id
 *      and session counters;
 *   3. forks; the child clears FD_CLOEXEC on exactly the descriptors the
 *      image names and execs the new binary with the same arguments and
 *      IOASIDD_UPGRADE=IMAGE_FD,STATUS_FD;
 *   4. waits (at most UPGRADE_TIMEOUT_MS) for the successor's verdict on
 *      the status socket: "R" (it rebuilt everything and is ready), or
 *      "F" with an errno and a reason, or nothing (it died).
 *   On "R" it turns every shared view off (the successor cannot write
 *   views: their memfds refuse new writable mappings), answers "G" and
 *   exits at once, tearing nothing down: the successor holds every
 *   descriptor.  On anything else it kills the child and goes on
 *   serving as if nothing happened; nothing it had was touched.
 *
 * The successor reads the image with image_read() (a newer format
 * version, a corrupt or truncated image: "F" and exit), creates its core
 * on the same backend, adopts the listening socket and every connection
 * (each client judged again by the policy from SO_PEERCRED), rebuilds
 * every session by replaying its ops with their ids, maps each request
 * ring again where the predecessor left it, says "R", waits for "G"
 * (the predecessor's exit without it: it may have died before it turned
 * the views off, so this one exits too, and the service manager's
 * restart rebuilds from the journal or the store, untouched since the
 * image), goes on with the crash journal or the kernel state's fd
 * store entries (journal.c, kstate.c: it writes the store only from
 * here on),
 * answers the client that asked for the upgrade, and serves.  Requests a
 * client sent meanwhile wait in its socket or ring and are served then:
 * a client sees a delay, never an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ioasidd.h"
#include "proto/image.h"
#include "proto/codec.h"
#include "util/macros.h"

#define UPGRADE_ENV		"IOASIDD_UPGRADE"
#define UPGRADE_TIMEOUT_MS	60000

extern char **environ;

struct upgrade_state {
	uint64_t nr_accepted;
	uint64_t requester;		/* client id, 0: a signal asked */
	uint32_t seq;			/* of the requester's DAEMON_UPGRADE */
	uint32_t listen_fd;		/* FD record index */
	uint32_t pid;			/* the predecessor's */
	uint32_t socket_created;	/* it made the socket file (unlinks it) */
};

/*
 * Tests only: $IOASIDD_TEST_KILL_IN_UPGRADE=WHO:WHEN makes the daemon
 * SIGKILL itself at that step of the handover (tests/test_crash.c):
 * old:image (written, nothing forked), old:ready (the successor said
 * "R", no "G" yet), new:read (the image read), new:adopted (every session
 * rebuilt, nothing said), new:ready ("R" said), new:go ("G" heard).
 */
static void test_kill_in_upgrade(const char *when)
{
	const char *env = getenv("IOASIDD_TEST_KILL_IN_UPGRADE");

	if (env && !strcmp(env, when))
		raise(SIGKILL);
}

/* ---- the predecessor ----------------------------------------------------- */

int daemon_put_export(void *arg, struct ioasid_op *op, uint32_t expect_id,
		      const struct core_ioas_counters *c,
		      const struct ioasid_kobj *k,
		      const struct core_dirty_bits *dirty)
{
	struct image_writer *w = arg;
	int r;

	/* the simulator's bits not read yet */
	if (dirty)
		return image_put_dirty(w, dirty->ioas_id, dirty->domain_id,
				       dirty->runs, dirty->nr_runs);
	if (c)
		return image_put_counters(w, c->kind, c->ioas_id,
					  c->nr_conversions,
					  c->nr_faults, c->next_file_id);
	/* iommufd: the kernel object the op made, for the successor */
	if (k) {
		r = image_put_kobj(w, k);
		if (r < 0 || !op)
			return r;
	}
	return image_put_op(w, op, expect_id);
}

int daemon_replay_dirty(struct session *s, const struct image_rec *rec,
			char *why, size_t whylen)
{
	struct ioasid_iova_range *runs;
	struct image_dirty id;
	struct ioasid_op op;
	int r;

	if (image_dirty(rec, &id, &runs) < 0) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	ioasid_op_init(&op, IOASID_CMD_UNSPEC);
	r = core_replay_dirty(s, &(struct core_dirty_bits){
		.ioas_id = id.ioas_id, .domain_id = id.domain_id,
		.nr_runs = id.nr_runs, .runs = runs }, &op);
	free(runs);
	if (r < 0)
		snprintf(why, whylen, "record %u: %s", rec->index, op.errmsg);
	return r;
}

struct export_arg {
	struct image_writer *w;
	struct ioasid_op why;
	int r;
	uint32_t *ioas, nr_ioas;	/* the session's, for their file ids */
};

/* daemon_put_export(), noting each IOAS (its counters come once, last). */
static int put_export(void *arg, struct ioasid_op *op, uint32_t expect_id,
		      const struct core_ioas_counters *c,
		      const struct ioasid_kobj *k,
		      const struct core_dirty_bits *dirty)
{
	struct export_arg *x = arg;
	uint32_t *p;

	if (c && c->kind == CORE_COUNTERS_IOAS) {
		p = realloc(x->ioas, (x->nr_ioas + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		x->ioas = p;
		x->ioas[x->nr_ioas++] = c->ioas_id;
	}
	return daemon_put_export(x->w, op, expect_id, c, k, dirty);
}

/*
 * Each IOAS's file id counter, which the ops do not give back (a file
 * that went took its id along), after all of them.
 */
static int put_file_ids(struct export_arg *x, struct session *s)
{
	int r = 0;

	for (uint32_t i = 0; r == 0 && i < x->nr_ioas; i++) {
		struct upgrade_file_id fi = { .ioas_id = x->ioas[i] };

		r = core_ioas_next_file_id(s, fi.ioas_id, &fi.next_file_id);
		if (r == 0)
			r = image_put(x->w, IMAGE_REC_DAEMON_FILE_ID, &fi,
				      sizeof(fi));
	}
	x->nr_ioas = 0;
	return r;
}

static void export_session(void *arg, struct session *s)
{
	struct export_arg *x = arg;
	struct core_session_usage u;
	struct image_session is = { .id = core_session_id(s) };

	if (x->r < 0)
		return;
	core_session_usage(s, &u);
	is.pid = core_session_pid(s);
	x->r = image_put_session(x->w, &is);
	if (x->r == 0)
		x->r = core_session_export(s, put_export, x, &x->why);
	else
		op_fail(&x->why, -x->r, "out of memory");
	if (x->r == 0) {
		x->r = put_file_ids(x, s);
		if (x->r < 0)
			op_fail(&x->why, -x->r, "cannot write IOAS file id "
				"counters: %s", strerror(-x->r));
	}
}

static int write_image(struct server *srv, const struct client *requester,
		       uint32_t seq, struct image_writer *w, int *memfd,
		       char *why, size_t whylen)
{
	struct upgrade_state st = {
		.nr_accepted = srv->nr_accepted,
		.requester = requester ? client_id(requester) : 0,
		.seq = seq,
		.pid = (uint32_t)getpid(),
		.socket_created = srv->socket_created,
	};
	struct export_arg x = { .w = w };
	int r;

	ioasid_op_init(&x.why, IOASID_CMD_UNSPEC);
	r = image_put_core(w, srv->backend_uri);
	if (r == 0)
		r = image_put_fd(w, srv->listen_fd, &st.listen_fd);
	if (r == 0)
		r = image_put(w, IMAGE_REC_DAEMON_STATE, &st, sizeof(st));
	if (r == 0)
		r = clients_export(srv, w);
	if (r == 0)
		r = sessions_export(srv, w);
	if (r == 0)
		r = journal_export(srv->journal, w);
	if (r == 0)
		r = kstate_export(srv->kstate, w);
	if (r < 0) {
		snprintf(why, whylen, "cannot write the state image: %s",
			 strerror(-r));
		return r;
	}
	clients_for_each_session(srv, export_session, &x);
	sessions_for_each_lingering(srv, export_session, &x);
	free(x.ioas);
	if (x.r < 0) {
		snprintf(why, whylen, "%s", x.why.errmsg);
		return x.r;
	}
	r = image_put_next_id(w, core_next_id(srv->core));
	if (r == 0) {
		uint32_t sid = core_next_session_id(srv->core);

		r = image_put(w, IMAGE_REC_DAEMON_SESSION_ID, &sid,
			      sizeof(sid));
	}
	if (r == 0)
		r = image_writer_finish(w, memfd);
	if (r < 0)
		snprintf(why, whylen, "cannot write the state image: %s",
			 strerror(-r));
	return r;
}

/*
 * After the image: a backend whose kernel objects remember our addresses
 * (vfio-type1) forgets them now, so that the successor can register its
 * own; on a failed upgrade every session gets them back.
 */
struct handover_arg {
	bool begin;
	int r;
	struct ioasid_op why;
};

static void handover_session(void *arg, struct session *s)
{
	struct handover_arg *h = arg;
	int r;

	if (h->begin && h->r < 0)
		return;
	r = h->begin ? core_handover_begin(s, &h->why) :
		       core_handover_cancel(s, &h->why);
	if (r < 0 && h->r >= 0)
		h->r = r;
}

static int handover_all(struct server *srv, bool begin, char *why,
			size_t whylen)
{
	struct handover_arg h = { .begin = begin };

	ioasid_op_init(&h.why, IOASID_CMD_UNSPEC);
	clients_for_each_session(srv, handover_session, &h);
	sessions_for_each_lingering(srv, handover_session, &h);
	if (h.r < 0 && begin) {
		snprintf(why, whylen, "%s", h.why.errmsg);
		handover_all(srv, false, NULL, 0);	/* those begun */
	} else if (h.r < 0) {
		log_err(srv, "upgrade: a session keeps no addresses for its "
			"mappings: %s", h.why.errmsg);
	}
	return h.r < 0 ? h.r : 0;
}

/* The environment for the successor: ours, with UPGRADE_ENV set. */
static char **successor_env(int memfd, int status)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], UPGRADE_ENV "=",
			    sizeof(UPGRADE_ENV)))
			env[k++] = environ[i];
	if (asprintf(&env[k], UPGRADE_ENV "=%d,%d", memfd, status) < 0) {
		free(env);
		return NULL;
	}
	return env;
}

/* The child: only async-signal-safe calls until exec. */
static void exec_successor(const char *binary, char *const *argv,
			   char **env, const struct image_writer *w,
			   int memfd, int status)
{
	char msg[64];
	int e, len;

	for (uint32_t i = 0; i < w->nr_fds; i++)
		fcntl(w->fds[i].fd, F_SETFD, 0);
	fcntl(memfd, F_SETFD, 0);
	fcntl(status, F_SETFD, 0);
	execve(binary, argv, env);
	e = errno;
	len = snprintf(msg, sizeof(msg), "F%d:cannot execute it", e);
	if (len > 0 && write(status, msg, (size_t)len) < 0)
		_exit(127);
	_exit(127);
}

/* The successor's verdict: 0 ("R"), or -errno with @why. */
static int await_verdict(int sock, pid_t pid, char *why, size_t whylen)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	char msg[IOASID_ERRMSG_MAX + 16];
	ssize_t n;
	int r, e;

	do
		r = poll(&p, 1, UPGRADE_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		snprintf(why, whylen, "the new ioasidd (pid %d) did not say "
			 "it took over within %d s", (int)pid,
			 UPGRADE_TIMEOUT_MS / 1000);
		return -ETIMEDOUT;
	}
	n = read(sock, msg, sizeof(msg) - 1);
	if (n <= 0) {
		snprintf(why, whylen, "the new ioasidd (pid %d) exited "
			 "before it took over", (int)pid);
		return -ENOEXEC;
	}
	msg[n] = '\0';
	if (msg[0] == 'R')
		return 0;
	if (msg[0] == 'F' && sscanf(msg + 1, "%d:", &e) == 1 && e > 0) {
		const char *colon = strchr(msg, ':');

		snprintf(why, whylen, "the new ioasidd refused: %s",
			 colon ? colon + 1 : "?");
		return e == EPROTONOSUPPORT ? -EPROTONOSUPPORT : -ENOEXEC;
	}
	snprintf(why, whylen, "the new ioasidd said something else than "
		 "its verdict");
	return -ENOEXEC;
}

int upgrade_start(struct server *srv, const char *binary,
		  const struct client *requester, uint32_t seq, char *why,
		  size_t whylen)
{
	struct image_writer w;
	int memfd = -1, sv[2] = { -1, -1 }, r, status;
	char **env = NULL;
	bool begun = false;
	pid_t pid;

	if (srv->upgrading) {
		snprintf(why, whylen, "an upgrade is already under way");
		return -EBUSY;
	}
	if (srv->dead) {
		/* a connection that just went may leave a lingering session */
		snprintf(why, whylen, "a client is being torn down right now; "
			 "ask again");
		return -EAGAIN;
	}
	if (!binary)
		binary = srv->self_exe;
	if (access(binary, X_OK) < 0) {
		snprintf(why, whylen, "%s cannot be executed: %m", binary);
		return -ENOEXEC;
	}
	srv->upgrading = true;
	clients_quiesce(srv);
	image_writer_init(&w, false);
	r = write_image(srv, requester, seq, &w, &memfd, why, whylen);
	if (r == 0) {
		r = handover_all(srv, true, why, whylen);
		begun = r == 0;
	}
	if (r == 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				 sv) < 0) {
		r = -errno;
		snprintf(why, whylen, "no status socket: %m");
	}
	if (r == 0 && !(env = successor_env(memfd, sv[1]))) {
		r = -ENOMEM;
		snprintf(why, whylen, "out of memory");
	}
	if (r < 0)
		goto out;
	test_kill_in_upgrade("old:image");
	log_info(srv, "upgrade: starting %s", binary);
	pid = fork();
	if (pid == 0)
		exec_successor(binary, srv->argv, env, &w, memfd, sv[1]);
	if (pid < 0) {
		r = -errno;
		snprintf(why, whylen, "cannot fork: %m");
		goto out;
	}
	close_fd(sv[1]);
	r = await_verdict(sv[0], pid, why, whylen);
	if (r == 0) {
		test_kill_in_upgrade("old:ready");
		/* from here the successor serves: never touch state again */
		clients_retire_views(srv);
		if (write(sv[0], "G", 1) != 1)
			log_warn(srv, "upgrade: cannot tell pid %d to go: %m",
				 (int)pid);
		log_info(srv, "upgrade: pid %d took over; exiting",
			   (int)pid);
		_exit(EXIT_SUCCESS);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* it may have said it was the main process: we are, again */
	sd_mainpid();
	log_err(srv, "upgrade to %s failed, still serving: %s", binary, why);
out:
	if (begun)
		handover_all(srv, false, NULL, 0);
	if (env) {
		for (size_t i = 0; env[i]; i++)
			if (!strncmp(env[i], UPGRADE_ENV "=",
				     sizeof(UPGRADE_ENV)))
				free(env[i]);
		free(env);
	}
	close_fd(sv[0]);
	close_fd(sv[1]);
	close_fd(memfd);
	image_writer_release(&w, false);
	srv->upgrading = false;
	return r;
}

/* ---- the successor ------------------------------------------------------- */

bool upgrade_requested(void)
{
	return getenv(UPGRADE_ENV) != NULL;
}

struct adopt {
	struct image *img;
};

static int take_fd(void *arg, uint32_t idx)
{
	struct adopt *a = arg;

	int fd;

	if (idx >= a->img->nr_fds)
		return -EBADMSG;
	fd = fcntl(a->img->fd_table[idx].fd, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

/*
 * After a session's last record: a kernel backend stops adopting and
 * takes over the pinned-page accounting; what it could not take over (or
 * had to make again) is logged.
 */
static void adopt_end(struct server *srv, struct session *s, bool *kernel)
{
	struct ioasid_op why;
	int n;

	if (!s || !*kernel)
		return;
	*kernel = false;
	ioasid_op_init(&why, IOASID_CMD_UNSPEC);
	n = core_adopt_end(s, &why);
	if (n > 0)
		log_warn(srv, "upgrade: session %u: %d kernel object(s) or "
		    "mapping(s) made again or not taken over: %s",
		    core_session_id(s), n, why.errmsg);
	else if (n < 0)
		log_warn(srv, "upgrade: session %u: %s",
		    core_session_id(s), why.errmsg);
	else
		log_info(srv, "upgrade: session %u: every kernel object "
			 "adopted", core_session_id(s));
}

/* An IOAS's file id counter, after the ops of session @s. */
static int replay_file_id(struct session *s, const struct image_rec *rec,
			  char *why, size_t whylen)
{
	struct upgrade_file_id fi;

	if (!s || rec->len != sizeof(fi)) {
		snprintf(why, whylen, "record %u: a file id counter %s",
			 rec->index, s ? "of a wrong size" :
			 "before any session");
		return -EBADMSG;
	}
	memcpy(&fi, rec->payload, sizeof(fi));
	if (core_set_ioas_next_file_id(s, fi.ioas_id, fi.next_file_id) < 0) {
		snprintf(why, whylen, "record %u: file id %u of IOAS %u does "
			 "not fit what the session has", rec->index,
			 fi.next_file_id, fi.ioas_id);
		return -EBADMSG;
	}
	return 0;
}

/* Every SESSION's ops into the session of that id. */
static int replay(struct server *srv, struct image *img, char *why,
		  size_t whylen)
{
	struct session *s = NULL;
	struct image_rec rec;
	bool kernel = false;		/* s had kernel objects to adopt */
	int r = 0;

	image_rewind(img);
	while (r == 0 && image_next(img, &rec) > 0) {
		struct image_session is;
		struct image_counters ic;
		struct ioasid_op op;
		uint32_t expect, id;

		switch (rec.type) {
		case IMAGE_REC_SESSION:
			adopt_end(srv, s, &kernel);
			memcpy(&is, rec.payload, sizeof(is));
			s = server_find_session(srv, is.id);
			if (!s) {
				snprintf(why, whylen, "record %u: session %u "
					 "has no connection or name",
					 rec.index, is.id);
				return -EBADMSG;
			}
			break;
		case IMAGE_REC_OP:
			if (!s) {
				snprintf(why, whylen, "record %u: an op before "
					 "any session", rec.index);
				return -EBADMSG;
			}
			ioasid_op_init(&op, IOASID_CMD_UNSPEC);
			r = image_op(img, &rec, &op, srv->outbuf, &expect, why,
				     whylen);
			if (r == 0)
				r = core_replay(s, &op, expect);
			if (r < 0 && !why[0])
				snprintf(why, whylen, "record %u (%s): %s",
					 rec.index, proto_cmd_name(op.cmd),
					 op.errmsg);
			break;
		case IMAGE_REC_COUNTERS: {
			struct core_ioas_counters c = { 0 };

			image_counters_of(&rec, &ic);
			c.ioas_id = ic.ioas_id;
			c.kind = ic.kind;
			c.nr_conversions = ic.nr_conversions;
			c.nr_faults = ic.nr_faults;
			c.next_file_id = ic.next_file_id;
			if (!s || core_replay_counters(s, &c) < 0) {
				snprintf(why, whylen, "record %u: counters of "
					 "an object the session lacks",
					 rec.index);
				return -EBADMSG;
			}
			break;
		}
		case IMAGE_REC_KOBJ: {
			struct ioasid_kobj k;

			if (!s) {
				snprintf(why, whylen, "record %u: a kernel "
					 "object before any session",
					 rec.index);
				return -EBADMSG;
			}
			ioasid_op_init(&op, IOASID_CMD_UNSPEC);
			r = image_kobj(img, &rec, &k, why, whylen);
			if (r == 0)
				r = core_adopt(s, &k, &op);
			kernel = true;
			if (r < 0 && !why[0])
				snprintf(why, whylen, "record %u: %s",
					 rec.index, op.errmsg);
			break;
		}
		case IMAGE_REC_NEXT_ID:
			memcpy(&id, rec.payload, sizeof(id));
			core_set_next_id(srv->core, id);
			break;
		case IMAGE_REC_DAEMON_FILE_ID:
			r = replay_file_id(s, &rec, why, whylen);
			break;
		case IMAGE_REC_DAEMON_SESSION_ID:
			if (rec.len != sizeof(id)) {
				snprintf(why, whylen, "record %u: a session "
					 "counter of %u bytes", rec.index,
					 rec.len);
				return -EBADMSG;
			}
			memcpy(&id, rec.payload, sizeof(id));
			core_set_next_session_id(srv->core, id);
			break;
		case IMAGE_REC_DIRTY:
			if (!s) {
				snprintf(why, whylen, "record %u: dirty pages "
					 "before any session", rec.index);
				return -EBADMSG;
			}
			r = daemon_replay_dirty(s, &rec, why, whylen);
			break;
		}
	}
	if (r == 0)
		adopt_end(srv, s, &kernel);
	return r;
}

static int read_state(struct image *img, struct upgrade_state *st, char *why,
		      size_t whylen)
{
	struct image_rec rec;

	image_rewind(img);
	while (image_next(img, &rec) > 0) {
		if (rec.type != IMAGE_REC_DAEMON_STATE)
			continue;
		if (rec.len != sizeof(*st))
			break;
		memcpy(st, rec.payload, sizeof(*st));
		return st->socket_created > 1 ? -EBADMSG : 0;
	}
	snprintf(why, whylen, "the image has no daemon state: not ioasidd's");
	return -EBADMSG;
}

static void say_verdict(int sock, int r, const char *why)
{
	char msg[IOASID_ERRMSG_MAX + 16];
	int len = r == 0 ? snprintf(msg, sizeof(msg), "R") :
		  snprintf(msg, sizeof(msg), "F%d:%s", -r, why);

	if (len > 0 && write(sock, msg, (size_t)len) < 0)
		return;
}

/*
 * Wait for the predecessor's "G"; false when it exited without saying
 * it: it may have died before it switched the clients' shared views off,
 * which this process cannot write (a client would read stale lookups).
 */
static bool await_go(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	ssize_t n;
	char c;

	while (poll(&p, 1, UPGRADE_TIMEOUT_MS) < 0 && errno == EINTR)
		;
	do
		n = read(sock, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 && c == 'G';
}

int upgrade_adopt(struct server *srv, struct core **core, char *why,
		  size_t whylen)
{
	const char *env = getenv(UPGRADE_ENV);
	struct upgrade_state st;
	struct adopt a = { 0 };
	int memfd = -1, sock = -1, listen_fd, r;

	why[0] = '\0';
	if (!env || sscanf(env, "%d,%d", &memfd, &sock) != 2 || memfd < 0 ||
	    sock < 0) {
		snprintf(why, whylen, "$" UPGRADE_ENV " is not IMAGE,STATUS");
		return -EINVAL;
	}
	unsetenv(UPGRADE_ENV);
	fcntl(memfd, F_SETFD, FD_CLOEXEC);
	fcntl(sock, F_SETFD, FD_CLOEXEC);
	r = image_read(memfd, &a.img, why, whylen);
	if (r == 0)
		test_kill_in_upgrade("new:read");
#ifdef IOASIDD_TEST_HOOKS
	/* tests: pretend to be a build that reads only older images */
	if (r == 0 && getenv("IOASIDD_TEST_IMAGE_MAX_VERSION") &&
	    a.img->version >
	    (uint32_t)atoi(getenv("IOASIDD_TEST_IMAGE_MAX_VERSION"))) {
		snprintf(why, whylen, "the image is of version %u, this build "
			 "reads up to %s", a.img->version,
			 getenv("IOASIDD_TEST_IMAGE_MAX_VERSION"));
		r = -EPROTONOSUPPORT;
	}
#endif
	if (r == 0)
		r = read_state(a.img, &st, why, whylen);
	if (r == 0) {
		r = core_new(srv->log, a.img->uri, core, why, whylen);
		srv->core = *core;
		snprintf(srv->backend_uri_buf, sizeof(srv->backend_uri_buf),
			 "%s", a.img->uri);
		srv->backend_uri = srv->backend_uri_buf;
	}
	if (r == 0) {
		listen_fd = take_fd(&a, st.listen_fd);
		r = listen_fd < 0 ? listen_fd : 0;
		if (r == 0)
			r = server_adopt_listen(srv, listen_fd);
	}
	if (r == 0)
		r = clients_adopt(srv, a.img, take_fd, &a, why, whylen);
	if (r == 0)
		r = sessions_adopt(srv, a.img, why, whylen);
	if (r == 0)
		r = replay(srv, a.img, why, whylen);
	if (r == 0)
		r = journal_adopt(srv, a.img, take_fd, &a, why, whylen);
	if (r == 0)
		r = kstate_adopt(srv, a.img, take_fd, &a, why, whylen);
	if (r < 0) {
		if (!why[0])
			snprintf(why, whylen, "%s", strerror(-r));
		say_verdict(sock, r, why);
		if (a.img)
			image_close_fds(a.img);
		image_free(a.img);
		close(memfd);
		close(sock);
		return r;
	}
	if (st.nr_accepted > srv->nr_accepted)
		srv->nr_accepted = st.nr_accepted;
	srv->socket_created = st.socket_created;
	image_close_fds(a.img);		/* we hold our own copies */
	image_free(a.img);
	close(memfd);
	/*
	 * The service manager follows this process before the predecessor
	 * exits (which it does on "G"): its exit is then not the service's.
	 */
	test_kill_in_upgrade("new:adopted");
	sd_mainpid();
	say_verdict(sock, 0, "");
	test_kill_in_upgrade("new:ready");
	if (!await_go(sock)) {
		/*
		 * The service manager follows us: our exit is the service's,
		 * and a restart rebuilds from the journal or the fd store,
		 * which nobody wrote since the image.
		 */
		snprintf(why, whylen, "pid %u exited before it let this "
			 "process go", st.pid);
		return -ECONNABORTED;
	}
	close(sock);
	test_kill_in_upgrade("new:go");
	/* only now: until "G" the store is the predecessor's */
	kstate_resume(srv);
	if (st.requester)
		client_send_upgrade_reply(srv, st.requester, st.seq);
	log_info(srv, "upgrade: took over from pid %u", st.pid);
	return 0;
}
