/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ioasidd internals: the server (one epoll loop), its clients, and the
 * systemd glue.
 *
 *   main.c    options, backend, socket, privileges, signals
 *   server.c  the epoll loop: listening socket, signalfd, client sockets,
 *             each session's event_fd; accepting and reaping clients
 *   client.c  one connection: SO_PEERCRED verdict, session, requests in,
 *             replies and events out (with back-pressure)
 *   sessions.c named sessions: tokens, lingering after a disconnect,
 *             reclaim, the linger timer
 *   policy.c  ioasidd.conf
 *   fastpath.c  each client's shared view of its mappings (proto/view.h)
 *   ring.c    each client's request ring (proto/ring.h)
 *   upgrade.c live upgrade: the state image of everything above, a
 *             successor started with it, and the successor's adoption
 *   sd.c      sd_notify, socket activation and the fd store (libsystemd,
 *             optional)
 *   journal.c every acknowledged change, for a restart after a crash
 *   fileid.c  how the fd store's files are told apart (inode or kcmp(2))
 */
#ifndef IOASIDD_H
#define IOASIDD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
#include "policy.h"
#include "util/log.h"

struct client;
struct named;
struct image;			/* proto/image.h */
struct image_writer;
struct image_rec;
struct nl_msg;

/* What an epoll registration stands for. */
enum watch_kind {
	WATCH_LISTEN,
	WATCH_SIGNAL,
	WATCH_CLIENT,		/* a client's socket */
	WATCH_EVENTS,		/* a client session's event_fd */
	WATCH_RING,		/* a client's ring doorbell */
	WATCH_TIMER,		/* the earliest end of a linger */
};

struct watch {
	enum watch_kind kind;
	struct client *client;
	int fd;
	uint32_t events;		/* what epoll currently waits for */
	bool added;
};

struct server {
	const struct log_sink *log;	/* the daemon's (stderr/journal) */
	struct core *core;		/* the daemon owns it */
	struct policy *policy;
	const char *config_path;	/* for SIGHUP reloads */
	bool config_missing_ok;
	int epfd;
	int listen_fd;
	int signal_fd;
	int timer_fd;
	struct watch listen_w, signal_w, timer_w;
	bool listen_paused;		/* out of fds: not accepting */
	bool stop;
	struct client *clients;		/* doubly linked */
	struct client *dead;		/* freed after each epoll batch */
	uint32_t nr_clients;
	uint64_t nr_accepted;
	/* the fast path: off (--no-fastpath), and its size limit */
	bool no_fastpath;
	uint64_t fastpath_max_mappings;
	uint64_t ring_spin_ns;		/* --ring-spin-us */
	struct named *named;		/* named sessions (sessions.c) */
	uint32_t nr_lingering;		/* of them, without a connection */
	/* live upgrade (upgrade.c) */
	const char *backend_uri;	/* the core's, for the image */
	char backend_uri_buf[4096];	/* a successor's copy of it */
	char *const *argv;		/* how it was started: the successor's */
	char self_exe[4096];		/* the binary it was started from */
	bool upgrading;			/* a successor is being started */
	bool upgrade_signalled;		/* SIGUSR2: upgrade after this batch */
	bool upgrade_adopted;		/* this process is a successor */
	bool socket_created;		/* ours to unlink at the end */
	/* one request is handled at a time: shared buffers */
	unsigned char *rxbuf;		/* IOASID_MAX_MSG */
	unsigned char *outbuf;		/* PROTO_DECODE_BUF */
	/* crash survival (journal.c): NULL without an fd store */
	struct journal *journal;
	bool compact_due;
	/* crash survival on iommufd (kstate.c): NULL without an fd store */
	struct kstate *kstate;
};

#define log_err(srv, ...)	err((srv)->log, __VA_ARGS__)
#define log_warn(srv, ...)	warn((srv)->log, __VA_ARGS__)
#define log_info(srv, ...)	info((srv)->log, __VA_ARGS__)
#define log_dbg(srv, ...)	dbg((srv)->log, __VA_ARGS__)

/* server.c */
int server_init(struct server *srv, struct core *core,
		const struct log_sink *log, int listen_fd, struct policy *policy);
int server_run(struct server *srv);
void server_fini(struct server *srv);
/* Register @w (for w->fd) or change what it waits for; 0 or -errno. */
int server_watch(struct server *srv, struct watch *w, uint32_t events);
void server_unwatch(struct server *srv, struct watch *w);
/* Is a watched descriptor ready (without taking its event)? */
bool server_has_work(const struct server *srv);

/* client.c */
/* The limits a session of verdict @res gets (the caller releases them). */
int server_session_limits(struct server *srv, const struct policy_result *res,
			  struct session_limits *limits);
int client_new(struct server *srv, int fd, struct client **out);
/* Disconnect: the session and its objects go away after this batch. */
void client_kill(struct client *c, const char *why);
void client_free(struct client *c);
/* Free the clients killed since the last call; true if there were any. */
bool clients_reap(struct server *srv);
void client_on_socket(struct client *c, uint32_t events);
void client_on_events(struct client *c);
void client_on_ring(struct client *c);
/* What a session list says of a connected client (sessions.c). */
struct client_who {
	struct session *session;	/* NULL: the policy denied it */
	const struct named *named;	/* NULL: unnamed */
	uint32_t uid, pid;
	const char *hello;		/* the name it gave at HELLO, or "" */
	const struct client *next;
};
void client_who(const struct client *c, struct client_who *w);

/*
 * fastpath.c: a client's shared view.  fastpath_before() keeps what
 * a request asked (the op's fields may be results afterwards);
 * fastpath_after() patches the view from the core once it ran.
 */
#define FASTPATH_MAX_IOAS	16
#define FASTPATH_MAX_MAPPINGS	(1u << 20)
struct fastpath;
struct fastpath_req {
	uint32_t cmd, ioas_id, flags, in_len;
	uint64_t iova, length;
	const void *in;
};
int fastpath_new(struct server *srv, struct session *session,
		 const struct session_limits *limits, struct fastpath **out,
		 char *why, size_t whylen);
void fastpath_free(struct fastpath *fp);
/* Turn every slot off for good: lookups go to the daemon (an upgrade). */
void fastpath_retire(struct fastpath *fp);
int fastpath_fd(const struct fastpath *fp);
void fastpath_before(const struct ioasid_op *op, struct fastpath_req *req);
void fastpath_after(struct fastpath *fp, const struct fastpath_req *req,
		    const struct ioasid_op *op, int result);

/*
 * ring.c: a client's request ring.  ring_serve() runs each request with
 * @run (as the socket's requests run) and spins, bounded, until @stop
 * says so (the client went away, or does not read its socket).  Returns
 * -EPROTO once the client broke it.
 */
#define RING_MAX_FILES		64
struct ring;
int ring_new(struct server *srv, int doorbell, int done, struct ring **out,
	     char *why, size_t whylen);
void ring_free(struct ring *rg);
/* The memfd, once, for the reply (which closes it). */
int ring_take_memfd(struct ring *rg);
int ring_doorbell(const struct ring *rg);
int ring_file_register(struct ring *rg, int fd, uint32_t *id);
int ring_file_unregister(struct ring *rg, uint32_t id);
int ring_serve(struct ring *rg, int (*run)(void *, struct ioasid_op *),
	       bool (*stop)(void *), void *arg);
void ring_break_now(struct ring *rg);

/*
 * sessions.c: named sessions.  Every function that takes an op returns 0
 * or a negative errno with the reason in it.
 */
int sessions_init(struct server *srv);
void sessions_fini(struct server *srv);
void sessions_on_timer(struct server *srv);
int session_name_check(struct ioasid_op *op);
/* Name @session (connected, of @uid) op->name; the reply gets the token. */
int sessions_name(struct server *srv, uint32_t uid, uint32_t linger_s,
		  struct session *session, struct ioasid_op *op,
		  struct named **out);
/* The lingering session op->name of @uid, if op->in is its token. */
int sessions_reclaim_check(struct server *srv, uint32_t uid,
			   struct ioasid_op *op, struct named **out);
/*
 * Hand @n's session and limits over; a new token goes in the reply.  The
 * token presented stays good for a reclaim until
 * sessions_token_delivered(): the reply may never reach the client.
 */
int sessions_take(struct server *srv, struct named *n, struct ioasid_op *op,
		  struct session **session, struct session_limits *limits);
/*
 * @n's client sent a request after its reclaim: it has the new token, the
 * one it presented is spent.  The token, for the journal to say so, when
 * that was still open; else NULL.
 */
const unsigned char *sessions_token_delivered(struct named *n);
/*
 * @n's connection is gone: true when its session lingers (it took
 * @limits), false when @n is forgotten and the caller frees the session.
 */
bool sessions_disconnected(struct server *srv, struct named *n,
			   struct session_limits *limits);
/*
 * Every session @uid may see (every uid's when @all): the named ones,
 * connected or lingering, then each connected client's unnamed one;
 * @self is the caller's.
 */
int sessions_list(struct server *srv, uint32_t uid, bool all,
		  const struct session *self, struct ioasid_op *op);
int sessions_drop(struct server *srv, uint32_t uid, struct ioasid_op *op);
/*
 * A session the journal rebuilt after a crash: it lingers for @linger_s
 * from now, reclaimable with @token, or with @prev_token (NULL: none)
 * when the journal ends with a reclaim whose reply may have been lost.
 * Takes @session and @limits.
 */
int sessions_restore(struct server *srv, const char *name, uint32_t uid,
		     uint32_t linger_s, const unsigned char *token,
		     const unsigned char *prev_token,
		     const struct ioasid_session_resume *resume,
		     struct session *session, struct session_limits *limits);
/* @op, a change (proto_cmd_changes_state()), succeeded on @n's session. */
void sessions_changed(struct named *n, const struct ioasid_op *op);
/* What kstate.c stores of a named session. */
struct sessions_ident {
	struct session *session;
	const char *name;
	uint32_t uid, linger_s;
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
	/* the token its last reclaim presented, until the reply is known */
	bool prev_ok;
	unsigned char prev_token[IOASID_SESSION_TOKEN_LEN];
	struct ioasid_session_resume resume;
};
void sessions_ident(const struct named *n, struct sessions_ident *out);
/* The named session whose core session has id @sid, or NULL. */
struct named *sessions_find_by_session(struct server *srv, uint32_t sid);

/*
 * ring.c, client.c, sessions.c: their part of the state image.  A
 * successor takes each descriptor the image names with @take (a copy of
 * its own, or -errno).
 */
typedef int (*image_take_fn)(void *arg, uint32_t idx);
struct ring_image {
	uint32_t memfd, doorbell, done;	/* FD record indexes */
	uint32_t sq_head, cq_tail;	/* the daemon's private indexes */
	uint32_t broken;
	int32_t files[RING_MAX_FILES];	/* FD record indexes, -1 */
};
int ring_export(const struct ring *rg, struct image_writer *w,
		struct ring_image *ri);
int ring_adopt(struct server *srv, const struct ring_image *ri,
	       image_take_fn take, void *arg, struct ring **out);
/* Every client (IMAGE_REC_DAEMON_CLIENT, _PENDING), in list order. */
enum daemon_image_rec {
	IMAGE_REC_DAEMON_STATE = 0x100,		/* struct upgrade_state */
	IMAGE_REC_DAEMON_CLIENT = 0x101,	/* client.c */
	IMAGE_REC_DAEMON_PENDING = 0x102,	/* client.c */
	IMAGE_REC_DAEMON_NAMED = 0x103,		/* sessions.c */
	IMAGE_REC_DAEMON_JOURNAL = 0x104,	/* journal.c (image version 2) */
	IMAGE_REC_DAEMON_KSTATE = 0x105,	/* kstate.c */
	IMAGE_REC_DAEMON_KSTATE_UP = 0x106,	/* kstate.c (image version 4) */
	IMAGE_REC_DAEMON_KSTATE_PREV = 0x107,	/* kstate.c */
	IMAGE_REC_DAEMON_FILE_ID = 0x108,	/* struct upgrade_file_id */
	IMAGE_REC_DAEMON_SESSION_ID = 0x109,	/* u32: the session counter */
};
/* An IOAS's file id counter, after its session's ops (upgrade.c). */
struct upgrade_file_id {
	uint32_t ioas_id, next_file_id;
};
/* The state image's writer for core_session_export() (upgrade.c). */
int daemon_put_export(void *arg, struct ioasid_op *op, uint32_t expect_id,
		      const struct core_ioas_counters *c,
		      const struct ioasid_kobj *k,
		      const struct core_dirty_bits *dirty);
/* An image's DIRTY record into @s (upgrade.c): 0, or -errno and @why. */
int daemon_replay_dirty(struct session *s, const struct image_rec *rec,
			char *why, size_t whylen);
int clients_export(struct server *srv, struct image_writer *w);
/* Before: every queued event is sent or queued; after: views retired. */
void clients_quiesce(struct server *srv);
void clients_retire_views(struct server *srv);
int clients_adopt(struct server *srv, struct image *img, image_take_fn take,
		  void *arg, char *why, size_t whylen);
/* The session (connected or lingering) that has @id, or NULL. */
struct session *server_find_session(struct server *srv, uint32_t id);
struct session *clients_find_session(struct server *srv, uint32_t id);
uint64_t client_id(const struct client *c);
void clients_for_each_session(struct server *srv,
			      void (*fn)(void *arg, struct session *s),
			      void *arg);
/* server.c: the successor's listening socket, from the image. */
int server_adopt_listen(struct server *srv, int fd);
void client_set_named(struct server *srv, struct session *s,
		      struct named *n);
int sessions_export(struct server *srv, struct image_writer *w);
int sessions_adopt(struct server *srv, struct image *img, char *why,
		   size_t whylen);
/* The lingering sessions, for the image (@fn for each). */
void sessions_for_each_lingering(struct server *srv,
				 void (*fn)(void *arg, struct session *s),
				 void *arg);
/* The reply the new process owes the client that asked for the upgrade. */
void client_send_upgrade_reply(struct server *srv, uint64_t client_id,
			       uint32_t seq);

/*
 * upgrade.c: DAEMON_UPGRADE and SIGUSR2.  upgrade_start() starts the
 * successor with everything; 0 when it took over (this process then
 * exits), else -errno with the reason and nothing changed.
 */
int upgrade_start(struct server *srv, const char *binary,
		  const struct client *requester, uint32_t seq, char *why,
		  size_t whylen);
/* In main(): true when this process is a successor ($IOASIDD_UPGRADE). */
bool upgrade_requested(void);
/* The successor's side: 0 once it serves the predecessor's clients. */
int upgrade_adopt(struct server *srv, struct core **core, char *why,
		  size_t whylen);

/*
 * sd.c: no-ops without libsystemd.  sd_take_fds() sorts what systemd
 * passed (LISTEN_FDS, LISTEN_FDNAMES): the listening socket (non-blocking
 * by then; -1 when none) and the fd store's other descriptors with their
 * names; 0, or a negative errno with @errmsg set.
 */
struct sd_fds {
	int listen_fd;
	bool listen_from_store;		/* "listen": our own, stored */
	int *fds;
	char **names;
	unsigned int nr;
};
int sd_take_fds(struct sd_fds *out, char *errmsg, size_t errlen);
void sd_fds_release(struct sd_fds *f);
/* Whether a service manager keeps descriptors for us (NOTIFY_SOCKET). */
bool sd_has_fdstore(void);
/* FDSTORE=1 with FDNAME=@name: 0 or -errno. */
int sd_fdstore(const char *name, int fd);
void sd_fdstore_remove(const char *name);
void sd_ready(const char *status);
void sd_stopping(void);
/* MAINPID=this process (a live upgrade's successor takes over, or not) */
void sd_mainpid(void);

/*
 * fileid.c: how the fd store's files are told apart (journal.c,
 * kstate.c): whether (st_dev, st_ino) names @fd's file (a regular file,
 * not an anonymous inode: every KVM VM and kvm-vfio device is the one
 * anonymous inode, a character device's inode is each open's); else
 * whether @a and @b are one open file (kcmp(2)).
 */
struct stat;
bool inode_is_the_file(int fd, const struct stat *st);
bool same_open_file(int a, int b);

/*
 * journal.c: every change a session made, appended before its reply
 * leaves.  Every function takes a NULL journal (no fd store) and then
 * does nothing.
 */
struct journal;
struct journal_req {
	struct ioasid_op op;		/* the request as it came */
	uint32_t next_id;		/* the core's before it ran */
};
int journal_new(struct server *srv, struct journal **out);
/*
 * Rebuild what the store's descriptors @fds (@names) hold, or start an
 * empty journal; what cannot be rebuilt is logged.  0 or -errno (then
 * the journal is off).  Takes the descriptors.
 */
int journal_start(struct journal *j, const int *fds, char **names,
		  unsigned int n);
void journal_free(struct journal *j);
/* Live upgrade: the journal (its memfd, where it is) into the image. */
int journal_export(struct journal *j, struct image_writer *w);
/* The successor's journal from @img, or none (srv->journal NULL). */
int journal_adopt(struct server *srv, struct image *img, image_take_fn take,
		  void *arg, char *why, size_t whylen);
void journal_compact(struct journal *j);
void journal_session_open(struct journal *j, struct session *s, uint32_t uid,
			  uint32_t gid, const gid_t *groups, size_t nr_groups);
void journal_session_named(struct journal *j, struct session *s,
			   const char *name, uint32_t linger_s,
			   const unsigned char *token);
void journal_session_token(struct journal *j, struct session *s,
			   const unsigned char *token);
/*
 * Tests only: with $IOASIDD_TEST_KILL_AFTER_TOKEN set, SIGKILL right after
 * a reclaim's new token is journaled (or stored, kstate.c), before its
 * reply leaves.
 */
void journal_test_kill_after_token(void);
void journal_session_end(struct journal *j, struct session *s);
void journal_before(struct journal *j, const struct ioasid_op *op,
		    struct journal_req *req);
/* After @req ran on @s giving @res and @result: recorded if it changed. */
int journal_op(struct journal *j, struct session *s,
	       const struct journal_req *req, const struct ioasid_op *res,
	       int result);

/*
 * kstate.c: crash survival on iommufd: each named session's state image
 * and the kernel descriptors it names in the fd store.  kstate_start()
 * rebuilds what the store's descriptors @fds (@names) hold (logged) and
 * turns it on; it takes the descriptors.  The others take a server whose
 * kstate is NULL (off) and then do nothing.
 */
struct kstate;
int kstate_start(struct server *srv, const int *fds, char **names,
		 unsigned int n);
void kstate_free(struct kstate *k);
/* @n's session changed (or was named, or reclaimed): store it again. */
void kstate_changed(struct server *srv, struct named *n, uint32_t gid);
/* @s ended: its image and descriptors leave the store. */
void kstate_end(struct server *srv, struct session *s);
/*
 * Live upgrade: the store's entries into the image (none when off); the
 * successor takes them (srv->kstate, or NULL when the image has none)
 * before it says it is ready, and once it serves kstate_resume() stores
 * each session's image again, keeping the predecessor's entries under
 * their names (the log says how many).
 */
int kstate_export(const struct kstate *k, struct image_writer *w);
int kstate_adopt(struct server *srv, struct image *img, image_take_fn take,
		 void *arg, char *why, size_t whylen);
void kstate_resume(struct server *srv);

#endif
