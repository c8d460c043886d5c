/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Named sessions that outlive their connection.
 *
 * A client may name its session (SESSION_NAME): it gets a reclaim token,
 * IOASID_SESSION_TOKEN_LEN bytes from getrandom(2) that the daemon keeps
 * and never logs.  When its connection drops and its policy grants
 * `linger = SECONDS`, the session stays whole for that long: its core
 * session (IOASes, mappings, bound and attached devices, domains, VMs) is
 * simply not freed, so devices keep translating through it.  A process of
 * the same uid presenting the name and the token (SESSION_RECLAIM) takes
 * it over on its own connection; the token is then replaced by a new one
 * (single use).  Unclaimed, it is torn down when the linger ends, exactly
 * as a disconnect without linger tears down at once.
 *
 * Names are per uid: another uid's session of the same name does not
 * exist for the caller (ENOENT), so nothing tells a client whether
 * another user has one.  Tokens are compared in constant time.
 *
 * One timerfd in the epoll loop fires at the earliest deadline.  At most
 * max-clients sessions linger at once (the connection limit counts
 * connections only, so a successor can always connect to reclaim); a
 * named session that disconnects when that many linger is torn down at
 * once, and the log says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ioasidd.h"
#include "proto/image.h"
#include "util/macros.h"

struct named {
	struct named *next;
	char name[IOASID_NAME_MAX];
	uint32_t uid;
	uint32_t linger_s;
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
	/*
	 * The token its last reclaim spent, still taken while the reclaimer
	 * may not have its new one: that reply can be lost with the
	 * connection or with the daemon (the new token is journaled first).
	 * Forgotten at the reclaimer's next request, which proves the reply
	 * arrived (a client waits for each reply).
	 */
	unsigned char prev_token[IOASID_SESSION_TOKEN_LEN];
	bool prev_ok;
	struct session *session;	/* connected: the client's */
	bool lingering;
	uint64_t bad_tokens;		/* wrong tokens presented */
	/* changes since it was named, and the last one's results */
	struct ioasid_session_resume resume;
	/* while lingering: the session's limits (owned) and its end */
	struct session_limits limits;
	uint64_t deadline_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- names and tokens ---------------------------------------------------- */

static bool name_char(char ch, bool first)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return true;
	return !first && (ch == '.' || ch == '_' || ch == '-');
}

/* 0, or -EINVAL with the reason in @op. */
int session_name_check(struct ioasid_op *op)
{
	const char *n = op->name;
	size_t len = strnlen(n, sizeof(op->name));

	if (!len)
		return op_fail(op, EINVAL, "a session name is required");
	for (size_t i = 0; i < len; i++)
		if (!name_char(n[i], i == 0))
			return op_fail(op, EINVAL, "session name \"%s\": only "
				       "letters, digits, '.', '_' and '-' "
				       "(not first) are allowed", n);
	return 0;
}

static bool token_equal(const unsigned char *a, const unsigned char *b)
{
	volatile unsigned char diff = 0;

	for (size_t i = 0; i < IOASID_SESSION_TOKEN_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

static int new_token(unsigned char *t)
{
	size_t done = 0;

	while (done < IOASID_SESSION_TOKEN_LEN) {
		ssize_t n = getrandom(t + done, IOASID_SESSION_TOKEN_LEN - done,
				      0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* The reply of SESSION_NAME and SESSION_RECLAIM: token, id, linger. */
static int grant(struct named *n, struct ioasid_op *op)
{
	if (op->out_cap < IOASID_SESSION_TOKEN_LEN)
		return op_fail(op, EMSGSIZE, "a token needs %u bytes",
			       IOASID_SESSION_TOKEN_LEN);
	memcpy(op->out, n->token, IOASID_SESSION_TOKEN_LEN);
	op->out_len = IOASID_SESSION_TOKEN_LEN;
	/* a client that knows it asks for room for this */
	if (op->out_cap >= IOASID_SESSION_TOKEN_LEN + sizeof(n->resume)) {
		memcpy((char *)op->out + IOASID_SESSION_TOKEN_LEN, &n->resume,
		       sizeof(n->resume));
		op->out_len += sizeof(n->resume);
	}
	op->out_id = core_session_id(n->session);
	op->out_bytes = n->linger_s;
	return 0;
}

static struct named *find(struct server *srv, uint32_t uid, const char *name)
{
	for (struct named *n = srv->named; n; n = n->next)
		if (n->uid == uid && !strcmp(n->name, name))
			return n;
	return NULL;
}

static void unlink_named(struct server *srv, struct named *n)
{
	struct named **p = &srv->named;

	while (*p && *p != n)
		p = &(*p)->next;
	if (*p)
		*p = n->next;
}

/* ---- the timer ----------------------------------------------------------- */

static void arm_timer(struct server *srv)
{
	struct itimerspec its = {};
	uint64_t first = UINT64_MAX;

	for (struct named *n = srv->named; n; n = n->next)
		if (n->lingering && n->deadline_ns < first)
			first = n->deadline_ns;
	if (first != UINT64_MAX) {
		/* absolute; a deadline already past still fires */
		if (!first)
			first = 1;
		its.it_value.tv_sec = (time_t)(first / 1000000000ULL);
		its.it_value.tv_nsec = (long)(first % 1000000000ULL);
	}
	if (timerfd_settime(srv->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_err(srv, "cannot arm the linger timer: %m");
}

static void free_lingering(struct server *srv, struct named *n,
			   const char *why)
{
	log_info(srv, "session \"%s\" of uid %u %s: torn down", n->name,
		 n->uid, why);
	unlink_named(srv, n);
	srv->nr_lingering--;
	journal_session_end(srv->journal, n->session);
	kstate_end(srv, n->session);
	core_session_free(n->session);
	policy_limits_release(&n->limits);
	free(n);
}

void sessions_on_timer(struct server *srv)
{
	uint64_t ticks, now = now_ns();
	struct named *n, *next;

	if (read(srv->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_warn(srv, "linger timer: %m");
	for (n = srv->named; n; n = next) {
		next = n->next;
		if (n->lingering && n->deadline_ns <= now)
			free_lingering(srv, n, "was not reclaimed in time");
	}
	arm_timer(srv);
}

int sessions_init(struct server *srv)
{
	srv->timer_fd = timerfd_create(CLOCK_MONOTONIC,
				       TFD_CLOEXEC | TFD_NONBLOCK);
	if (srv->timer_fd < 0)
		return -errno;
	srv->timer_w = (struct watch){ .kind = WATCH_TIMER,
				       .fd = srv->timer_fd };
	return server_watch(srv, &srv->timer_w, EPOLLIN);
}

/* After every client is gone: what still lingers goes too. */
void sessions_fini(struct server *srv)
{
	while (srv->named) {
		struct named *n = srv->named;

		if (!n->lingering) {	/* cannot happen: clients are gone */
			unlink_named(srv, n);
			free(n);
			continue;
		}
		free_lingering(srv, n, "lingered until ioasidd stopped");
	}
	close_fd(srv->timer_fd);
}

/* ---- what clients ask ---------------------------------------------------- */

int sessions_name(struct server *srv, uint32_t uid, uint32_t linger_s,
		  struct session *session, struct ioasid_op *op,
		  struct named **out)
{
	struct named *n;
	int r;

	r = session_name_check(op);
	if (r < 0)
		return r;
	if (find(srv, uid, op->name))
		return op_fail(op, EEXIST, "uid %u already has a session "
			       "named \"%s\"", uid, op->name);
	n = calloc(1, sizeof(*n));
	if (!n)
		return op_fail(op, ENOMEM, "out of memory");
	r = new_token(n->token);
	if (r < 0) {
		free(n);
		return op_fail(op, -r, "cannot draw a token: %s",
			       strerror(-r));
	}
	snprintf(n->name, sizeof(n->name), "%s", op->name);
	n->uid = uid;
	n->linger_s = linger_s;
	n->session = session;
	r = grant(n, op);
	if (r < 0) {
		explicit_bzero(n->token, sizeof(n->token));
		free(n);
		return r;
	}
	n->next = srv->named;
	srv->named = n;
	*out = n;
	return 0;
}

int sessions_reclaim_check(struct server *srv, uint32_t uid,
			   struct ioasid_op *op, struct named **out)
{
	struct named *n;
	int r;

	r = session_name_check(op);
	if (r < 0)
		return r;
	if (op->in_len != IOASID_SESSION_TOKEN_LEN)
		return op_fail(op, EINVAL, "a token has %u bytes, not %u",
			       IOASID_SESSION_TOKEN_LEN, op->in_len);
	n = find(srv, uid, op->name);
	if (!n)
		return op_fail(op, ENOENT, "uid %u has no session named "
			       "\"%s\" (it ended, or was never named)", uid,
			       op->name);
	if (!n->lingering)
		return op_fail(op, EBUSY, "session \"%s\" is still connected: "
			       "only a session whose connection is gone can be "
			       "reclaimed", op->name);
	if (n->prev_ok && token_equal(n->prev_token, op->in)) {
		log_info(srv, "session \"%s\" of uid %u reclaimed with the "
			 "token its last reclaim spent: that reclaim's reply "
			 "did not reach its client", n->name, uid);
	} else if (!token_equal(n->token, op->in)) {
		/* logged, but a client retrying in a loop cannot flood it */
		n->bad_tokens++;
		if (!(n->bad_tokens & (n->bad_tokens - 1)))
			log_warn(srv, "uid %u presented a wrong token for "
				 "session \"%s\" (%llu so far)", uid, n->name,
				 (unsigned long long)n->bad_tokens);
		return op_fail(op, EACCES, "wrong token for session \"%s\" "
			       "(tokens are single use: a reclaim replaces "
			       "it)", op->name);
	}
	*out = n;
	return 0;
}

int sessions_take(struct server *srv, struct named *n, struct ioasid_op *op,
		  struct session **session, struct session_limits *limits)
{
	unsigned char fresh[IOASID_SESSION_TOKEN_LEN];
	int r = new_token(fresh);

	if (r < 0)
		return op_fail(op, -r, "cannot draw a token: %s",
			       strerror(-r));
	/* the token presented is the one the reclaimer surely holds */
	memcpy(n->prev_token, op->in, sizeof(n->prev_token));
	n->prev_ok = true;
	memcpy(n->token, fresh, sizeof(fresh));
	explicit_bzero(fresh, sizeof(fresh));
	n->lingering = false;
	srv->nr_lingering--;
	*session = n->session;
	*limits = n->limits;
	memset(&n->limits, 0, sizeof(n->limits));
	arm_timer(srv);
	log_info(srv, "session \"%s\" of uid %u reclaimed", n->name, n->uid);
	return grant(n, op);
}

const unsigned char *sessions_token_delivered(struct named *n)
{
	if (!n->prev_ok)
		return NULL;
	n->prev_ok = false;
	explicit_bzero(n->prev_token, sizeof(n->prev_token));
	return n->token;
}

bool sessions_disconnected(struct server *srv, struct named *n,
			   struct session_limits *limits)
{
	if (!n->linger_s || srv->nr_lingering >= srv->policy->max_clients) {
		if (n->linger_s)
			log_warn(srv, "session \"%s\" of uid %u cannot linger: "
				 "%u sessions linger already (max-clients)",
				 n->name, n->uid, srv->nr_lingering);
		unlink_named(srv, n);
		explicit_bzero(n->token, sizeof(n->token));
		free(n);
		return false;
	}
	n->lingering = true;
	n->limits = *limits;
	memset(limits, 0, sizeof(*limits));
	n->deadline_ns = now_ns() + (uint64_t)n->linger_s * 1000000000ULL;
	srv->nr_lingering++;
	arm_timer(srv);
	log_info(srv, "session \"%s\" of uid %u lingers for %u s", n->name,
		 n->uid, n->linger_s);
	return true;
}

void sessions_changed(struct named *n, const struct ioasid_op *op)
{
	n->resume.changes++;
	n->resume.last_out_id = op->out_id;
	n->resume.last_out_iova = op->out_iova;
	n->resume.last_out_bytes = op->out_bytes;
}

void sessions_ident(const struct named *n, struct sessions_ident *out)
{
	out->session = n->session;
	out->name = n->name;
	out->uid = n->uid;
	out->linger_s = n->linger_s;
	memcpy(out->token, n->token, sizeof(out->token));
	out->prev_ok = n->prev_ok;
	if (n->prev_ok)
		memcpy(out->prev_token, n->prev_token,
		       sizeof(out->prev_token));
	else
		memset(out->prev_token, 0, sizeof(out->prev_token));
	out->resume = n->resume;
}

struct named *sessions_find_by_session(struct server *srv, uint32_t sid)
{
	for (struct named *n = srv->named; n; n = n->next)
		if (n->session && core_session_id(n->session) == sid)
			return n;
	return NULL;
}

int sessions_restore(struct server *srv, const char *name, uint32_t uid,
		     uint32_t linger_s, const unsigned char *token,
		     const unsigned char *prev_token,
		     const struct ioasid_session_resume *resume,
		     struct session *session, struct session_limits *limits)
{
	struct named *n;

	if (find(srv, uid, name))
		return -EEXIST;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->uid = uid;
	n->linger_s = linger_s;
	memcpy(n->token, token, sizeof(n->token));
	if (prev_token) {
		memcpy(n->prev_token, prev_token, sizeof(n->prev_token));
		n->prev_ok = true;
	}
	n->resume = *resume;
	n->session = session;
	n->lingering = true;
	n->limits = *limits;
	memset(limits, 0, sizeof(*limits));
	n->deadline_ns = now_ns() + (uint64_t)linger_s * 1000000000ULL;
	n->next = srv->named;
	srv->named = n;
	srv->nr_lingering++;
	arm_timer(srv);
	log_info(srv, "session \"%s\" of uid %u rebuilt from the journal: "
		 "it lingers for %u s", name, uid, linger_s);
	return 0;
}

/* The facts of one session; @n is NULL when it is unnamed. */
static void fill_info(struct session *session, const struct named *n,
		      uint32_t uid, uint32_t pid, const char *hello,
		      uint64_t now, struct ioasid_session_info *si)
{
	struct core_session_usage u;

	core_session_usage(session, &u);
	memset(si, 0, sizeof(*si));
	si->size = sizeof(*si);
	si->id = core_session_id(session);
	si->state = n && n->lingering ? IOASID_SESSION_LINGERING :
					IOASID_SESSION_CONNECTED;
	si->uid = uid;
	si->pid = pid;
	if (n) {
		si->flags |= IOASID_SESSION_NAMED;
		si->linger_s = n->linger_s;
		snprintf(si->name, sizeof(si->name), "%s", n->name);
		if (n->lingering && n->deadline_ns > now)
			si->expires_in_s = (uint32_t)((n->deadline_ns - now +
						       999999999ULL) /
						      1000000000ULL);
	}
	si->nr_ioas = u.nr_ioas;
	si->nr_mappings = u.nr_mappings;
	si->nr_devices = u.nr_devices;
	si->nr_vms = u.nr_vms;
	si->faults_lost = u.faults_lost;
	si->events_lost = u.events_lost;
	si->bytes_mapped = u.bytes_mapped;
	si->state_bytes = u.state_bytes;
	si->max_mappings = u.max_mappings;
	si->max_bytes_mapped = u.max_bytes_mapped;
	si->max_conversion_state = u.max_conversion_state;
	si->max_ioas = u.max_ioas;
	si->max_vms = u.max_vms;
	snprintf(si->client, sizeof(si->client), "%s", hello);
}

/* What the live client holding @session said at HELLO, or "". */
static const char *hello_of(struct server *srv, const struct session *session)
{
	struct client_who w;

	for (const struct client *c = srv->clients; c; c = w.next) {
		client_who(c, &w);
		if (w.session == session)
			return w.hello;
	}
	return "";
}

int sessions_list(struct server *srv, uint32_t uid, bool all,
		  const struct session *self, struct ioasid_op *op)
{
	struct ioasid_session_info *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), nr = 0;
	uint64_t now = now_ns();
	struct client_who w;

	/*
	 * Named ones from their records (a connection that just dropped
	 * is there before it lingers), then each client's unnamed one.
	 */
	for (struct named *n = srv->named; n; n = n->next) {
		if (n->uid != uid && !all)
			continue;
		if (nr < cap) {
			fill_info(n->session, n, n->uid,
				  core_session_pid(n->session),
				  n->lingering ? "" : hello_of(srv, n->session),
				  now, &out[nr]);
			if (n->session == self)
				out[nr].flags |= IOASID_SESSION_SELF;
		}
		nr++;
	}
	for (const struct client *c = srv->clients; c; c = w.next) {
		client_who(c, &w);
		if (!w.session || w.named || (w.uid != uid && !all))
			continue;
		if (nr < cap) {
			fill_info(w.session, NULL, w.uid, w.pid, w.hello, now,
				  &out[nr]);
			if (w.session == self)
				out[nr].flags |= IOASID_SESSION_SELF;
		}
		nr++;
	}
	op->out_len = nr * (uint32_t)sizeof(*out);
	if (nr > cap)
		return op_fail(op, EMSGSIZE, "%u sessions do not fit in %u",
			       nr, cap);
	return 0;
}

int sessions_drop(struct server *srv, uint32_t uid, struct ioasid_op *op)
{
	struct named *n;
	int r = session_name_check(op);

	if (r < 0)
		return r;
	n = find(srv, uid, op->name);
	if (!n)
		return op_fail(op, ENOENT, "uid %u has no session named "
			       "\"%s\"", uid, op->name);
	if (!n->lingering)
		return op_fail(op, EBUSY, "session \"%s\" is connected: its "
			       "own process ends it", op->name);
	free_lingering(srv, n, "was dropped");
	arm_timer(srv);
	return 0;
}

/* ---- live upgrade (upgrade.c) -------------------------------------------- */

/* IMAGE_REC_DAEMON_NAMED: one named session. */
struct named_image {
	char name[IOASID_NAME_MAX];
	uint32_t uid, linger_s;
	uint32_t session_id;		/* the core session's (SESSION record) */
	uint32_t lingering;
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC: one host */
	uint64_t bad_tokens;
	struct ioasid_session_resume resume;	/* changes counted */
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
};

int sessions_export(struct server *srv, struct image_writer *w)
{
	int r = 0;

	for (struct named *n = srv->named; n && r == 0; n = n->next) {
		struct named_image ni = {
			.uid = n->uid,
			.linger_s = n->linger_s,
			.session_id = core_session_id(n->session),
			.lingering = n->lingering,
			.deadline_ns = n->deadline_ns,
			.bad_tokens = n->bad_tokens,
			.resume = n->resume,
		};

		snprintf(ni.name, sizeof(ni.name), "%s", n->name);
		memcpy(ni.token, n->token, sizeof(ni.token));
		r = image_put(w, IMAGE_REC_DAEMON_NAMED, &ni, sizeof(ni));
		explicit_bzero(ni.token, sizeof(ni.token));
	}
	return r;
}

struct session *server_find_session(struct server *srv, uint32_t id)
{
	for (struct named *n = srv->named; n; n = n->next)
		if (n->session && core_session_id(n->session) == id)
			return n->session;
	return clients_find_session(srv, id);
}

void sessions_for_each_lingering(struct server *srv,
				 void (*fn)(void *arg, struct session *s),
				 void *arg)
{
	for (struct named *n = srv->named; n; n = n->next)
		if (n->lingering)
			fn(arg, n->session);
}

/* A lingering session's limits, from the policy for its uid as it is now. */
static int lingering_limits(struct server *srv, uint32_t uid,
			    struct session_limits *limits)
{
	uint32_t nr = core_nr_devices(srv->core);
	struct policy_result res;
	const char **names;
	int r;

	policy_lookup(srv->policy, uid, (gid_t)-1, NULL, 0, &res);
	names = calloc(nr + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (uint32_t i = 0; i < nr; i++)
		names[i] = core_device_name(srv->core, i);
	r = policy_session_limits(&res, names, nr, limits);
	free(names);
	return r;
}

static int adopt_named(struct server *srv, const struct named_image *ni,
		       char *why, size_t whylen)
{
	struct named *n;
	int r;

	if (ni->name[sizeof(ni->name) - 1] || !ni->name[0] ||
	    ni->lingering > 1) {
		snprintf(why, whylen, "a named session record is malformed");
		return -EBADMSG;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	snprintf(n->name, sizeof(n->name), "%s", ni->name);
	n->uid = ni->uid;
	n->linger_s = ni->linger_s;
	n->deadline_ns = ni->deadline_ns;
	n->bad_tokens = ni->bad_tokens;
	n->resume = ni->resume;
	memcpy(n->token, ni->token, sizeof(n->token));
	if (ni->lingering) {
		r = lingering_limits(srv, n->uid, &n->limits);
		if (r == 0)
			r = core_session_new(srv->core, &n->limits,
					     &n->session);
		if (r < 0) {
			policy_limits_release(&n->limits);
			free(n);
			snprintf(why, whylen, "cannot make lingering session "
				 "\"%s\": %s", ni->name, strerror(-r));
			return r;
		}
		core_session_set_id(n->session, ni->session_id);
		core_session_set_owner(n->session, 0, n->uid, n->name);
		n->lingering = true;
		srv->nr_lingering++;
	} else {
		n->session = server_find_session(srv, ni->session_id);
		if (!n->session) {
			free(n);
			snprintf(why, whylen, "named session \"%s\" has no "
				 "connection in the image", ni->name);
			return -EBADMSG;
		}
		client_set_named(srv, n->session, n);
	}
	n->next = srv->named;
	srv->named = n;
	return 0;
}

int sessions_adopt(struct server *srv, struct image *img, char *why,
		   size_t whylen)
{
	struct image_rec rec;
	int r = 0;

	image_rewind(img);
	while (r == 0 && image_next(img, &rec) > 0) {
		struct named_image ni;

		if (rec.type != IMAGE_REC_DAEMON_NAMED)
			continue;
		if (rec.len != sizeof(ni)) {
			snprintf(why, whylen, "record %u: a named session of "
				 "%u bytes", rec.index, rec.len);
			return -EBADMSG;
		}
		memcpy(&ni, rec.payload, sizeof(ni));
		r = adopt_named(srv, &ni, why, whylen);
		explicit_bzero(ni.token, sizeof(ni.token));
	}
	arm_timer(srv);
	return r;
}
