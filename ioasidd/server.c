/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The server: one thread, one level-triggered epoll loop over
 *
 *   - the listening socket (accept, SO_PEERCRED, policy -> a client),
 *   - a signalfd (SIGTERM/SIGINT: clean shutdown; SIGHUP: reload the
 *     policy for new clients; SIGUSR2: live upgrade, upgrade.c),
 *   - every client socket (one request per wakeup, for fairness),
 *   - every client session's event_fd (queued events become EVENT
 *     messages).
 *
 * Clients that die during a batch are only unlinked; they are freed after
 * the batch, since later entries of the same batch may still point at
 * them.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioasidd.h"
#include "proto/codec.h"
#include "proto/ring.h"
#include "util/macros.h"

#define MAX_EVENTS	64
#define ACCEPTS_PER_WAKEUP 16

int server_watch(struct server *srv, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->added && w->events == events)
		return 0;
	if (epoll_ctl(srv->epfd, w->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		      w->fd, &ev) < 0)
		return -errno;
	w->added = true;
	w->events = events;
	return 0;
}

void server_unwatch(struct server *srv, struct watch *w)
{
	if (!w->added)
		return;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_DEL, w->fd, NULL) < 0)
		log_warn(srv, "cannot stop watching fd %d: %m", w->fd);
	w->added = false;
}

/*
 * Is anything the daemon watches ready now?  poll() on the epoll
 * descriptor says so without taking the events (they are level-triggered
 * and stay for the next epoll_wait()).
 */
bool server_has_work(const struct server *srv)
{
	struct pollfd p = { .fd = srv->epfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* ---- accepting ----------------------------------------------------------- */

/* Out of descriptors: stop accepting until a client goes away. */
static void pause_listen(struct server *srv)
{
	if (srv->listen_paused)
		return;
	log_warn(srv, "cannot accept clients: %m; pausing until one leaves");
	srv->listen_paused = server_watch(srv, &srv->listen_w, 0) == 0;
}

static void resume_listen(struct server *srv)
{
	if (srv->listen_paused &&
	    server_watch(srv, &srv->listen_w, EPOLLIN) == 0)
		srv->listen_paused = false;
}

static void accept_one(struct server *srv, int fd)
{
	struct client *c;
	int r;

	if (srv->nr_clients >= srv->policy->max_clients) {
		log_warn(srv, "refusing a client: %u clients connected "
			 "(max-clients)", srv->nr_clients);
		close(fd);
		return;
	}
	r = client_new(srv, fd, &c);
	if (r < 0)
		log_err(srv, "cannot set up a client: %s", strerror(-r));
}

static void on_listen(struct server *srv)
{
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		int fd = accept4(srv->listen_fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd >= 0) {
			accept_one(srv, fd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			pause_listen(srv);
		else if (errno != EAGAIN && errno != EINTR &&
			 errno != ECONNABORTED)
			log_err(srv, "accept: %m");
		return;
	}
}

/* ---- signals ------------------------------------------------------------- */

static void reload_policy(struct server *srv)
{
	char errmsg[320];
	struct policy *p;
	int r;

	r = policy_load(srv->config_path, srv->config_missing_ok, &p, errmsg,
			sizeof(errmsg));
	if (r < 0) {
		log_err(srv, "keeping the old policy: %s", errmsg);
		return;
	}
	policy_free(srv->policy);
	srv->policy = p;
	log_info(srv, "policy reloaded from %s; it applies to new clients",
		 srv->config_path);
}

static void on_signal(struct server *srv)
{
	struct signalfd_siginfo si;

	while (read(srv->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload_policy(srv);
			continue;
		}
		if (si.ssi_signo == SIGUSR2) {
			/* after this batch, once dead clients are reaped */
			srv->upgrade_signalled = true;
			continue;
		}
		log_info(srv, "%s: shutting down",
			 strsignal((int)si.ssi_signo));
		srv->stop = true;
	}
}

/* ---- the loop ------------------------------------------------------------ */

static void serve_watch(struct server *srv, struct watch *w, uint32_t events)
{
	switch (w->kind) {
	case WATCH_LISTEN:
		on_listen(srv);
		break;
	case WATCH_SIGNAL:
		on_signal(srv);
		break;
	case WATCH_CLIENT:
		client_on_socket(w->client, events);
		break;
	case WATCH_EVENTS:
		client_on_events(w->client);
		break;
	case WATCH_RING:
		client_on_ring(w->client);
		break;
	case WATCH_TIMER:
		sessions_on_timer(srv);
		break;
	}
}

static void reap(struct server *srv)
{
	if (clients_reap(srv))
		resume_listen(srv);
}

int server_run(struct server *srv)
{
	struct epoll_event evs[MAX_EVENTS];

	while (!srv->stop) {
		int n = epoll_wait(srv->epfd, evs, MAX_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err(srv, "epoll_wait: %m");
			return -errno;
		}
		for (int i = 0; i < n; i++)
			serve_watch(srv, evs[i].data.ptr, evs[i].events);
		reap(srv);
		if (srv->compact_due)
			journal_compact(srv->journal);
		if (srv->upgrade_signalled) {
			char why[IOASID_ERRMSG_MAX];

			srv->upgrade_signalled = false;
			/* returns only when the upgrade failed (logged) */
			upgrade_start(srv, NULL, NULL, 0, why, sizeof(why));
		}
	}
	return 0;
}

/* ---- set-up and tear-down ------------------------------------------------ */

static int open_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int server_init(struct server *srv, struct core *core,
		const struct log_sink *log, int listen_fd, struct policy *policy)
{
	memset(srv, 0, sizeof(*srv));
	srv->log = log;
	srv->core = core;
	srv->policy = policy;
	srv->listen_fd = listen_fd;
	srv->signal_fd = -1;
	srv->fastpath_max_mappings = FASTPATH_MAX_MAPPINGS;
	srv->ring_spin_ns = RING_DAEMON_SPIN_NS;
	srv->timer_fd = -1;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0)
		return -errno;
	srv->signal_fd = open_signalfd();
	if (srv->signal_fd < 0)
		return -errno;
	srv->rxbuf = malloc(IOASID_MAX_MSG);
	srv->outbuf = malloc(PROTO_DECODE_BUF);
	if (!srv->rxbuf || !srv->outbuf)
		return -ENOMEM;
	srv->listen_w = (struct watch){ .kind = WATCH_LISTEN, .fd = listen_fd };
	srv->signal_w = (struct watch){ .kind = WATCH_SIGNAL,
					.fd = srv->signal_fd };
	if (server_watch(srv, &srv->signal_w, EPOLLIN) < 0 ||
	    (listen_fd >= 0 &&
	     server_watch(srv, &srv->listen_w, EPOLLIN) < 0))
		return -errno;
	return sessions_init(srv);
}

int server_adopt_listen(struct server *srv, int fd)
{
	srv->listen_fd = fd;
	srv->listen_w = (struct watch){ .kind = WATCH_LISTEN, .fd = fd };
	return server_watch(srv, &srv->listen_w, EPOLLIN);
}

/* Disconnects every client (tearing their sessions down). */
void server_fini(struct server *srv)
{
	while (srv->clients)
		client_kill(srv->clients, "ioasidd is shutting down");
	reap(srv);
	sessions_fini(srv);
	close_fd(srv->signal_fd);
	close_fd(srv->epfd);
	free(srv->rxbuf);
	free(srv->outbuf);
	srv->rxbuf = srv->outbuf = NULL;
}
