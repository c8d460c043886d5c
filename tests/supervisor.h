/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A service manager for tests: runs ioasidd as systemd runs a Type=notify
 * service with FileDescriptorStoreMax= and Restart=on-failure, speaking
 * the same protocols (sd_notify(3), sd_listen_fds(3)):
 *
 *   NOTIFY_SOCKET  a datagram socket; READY=1 ends a start, FDSTORE=1 with
 *                  FDNAME= keeps the descriptors that came with it
 *                  (as systemd, one that is an open file the store
 *                  holds already is dropped: that one keeps its name),
 *                  FDSTOREREMOVE=1 with FDNAME= drops every one of that
 *                  name;
 *                  MAINPID= makes another process the one watched (a
 *                  live upgrade's successor; as systemd, the test is
 *                  the subreaper that inherits it);
 *   LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
 *                  on every start the store's descriptors, from fd 3, in
 *                  the order they were stored, and their names.
 *
 * As systemd does, the notifications a dead daemon sent are all read
 * before it is started again.  Every wait is on an event (a READY=1, the
 * daemon's exit through a pidfd), bounded by a 30 s guard against hangs.
 * The daemon's log (every start's) is one file, appended.
 *
 * Not systemd itself: systemd is not PID 1 where make check runs; the
 * QEMU tier is where the real one is meant to be.
 */
#ifndef IOASID_TESTS_SUPERVISOR_H
#define IOASID_TESTS_SUPERVISOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define SUP_MAX_FDS	256

struct sup_fd {
	int fd;
	char name[256];
};

struct supervisor {
	pid_t pid;
	int pidfd;
	char dir[64];
	char sock[108];
	char uri[128];
	char config[128];
	char log[128];
	char notify[108];
	int notify_fd;
	struct sup_fd store[SUP_MAX_FDS];
	unsigned int nr_store;
	unsigned int starts;
	unsigned int mainpid_changes;	/* MAINPID= of another process */
	pid_t replaced;			/* the main process before, to reap */
	int last_status;		/* as daemon_stop() counts it */
	const char *backend;		/* --backend; "sim" */
};

/* Start ioasidd (sim backend) with @config; 0 once it said READY=1. */
int sup_start(struct supervisor *s, const char *config);
/* The same on backend @backend (e.g. "iommufd:mock"). */
int sup_start_backend(struct supervisor *s, const char *config,
		      const char *backend);
/* SIGKILL, its exit and its last notifications; not started again. */
void sup_kill(struct supervisor *s);
/* sup_kill(), then a new start and READY=1. */
int sup_crash_restart(struct supervisor *s);
/* Wait for the daemon to exit by itself; 0, or -ETIMEDOUT. */
int sup_wait_exit(struct supervisor *s);
/* Start again after an exit the caller caused or saw (no kill). */
int sup_restart(struct supervisor *s);
/*
 * Wait until a MAINPID= names another process than @old (a live
 * upgrade's successor took over); 0, or -ETIMEDOUT.
 */
int sup_wait_mainpid(struct supervisor *s, pid_t old);
/* SIGTERM; wait; the store is emptied (a clean stop flushes it). */
int sup_stop(struct supervisor *s);
/* The stored descriptor named @name (the first), or -1. */
int sup_fd(const struct supervisor *s, const char *name);
/* Drop every stored descriptor named @name; how many went. */
int sup_drop(struct supervisor *s, const char *name);
/* Replace the first stored @name by @fd (taken). */
int sup_replace(struct supervisor *s, const char *name, int fd);
/* Read pending notifications without waiting. */
void sup_poll(struct supervisor *s);
/*
 * The service manager reads the daemon's notifications as they come (a
 * datagram queue that fills blocks the daemon): while a client works, a
 * thread does it; stopped around every other supervisor call.  Start
 * with .stop = -1.
 */
struct sup_poller {
	struct supervisor *s;
	pthread_t thread;
	int stop;			/* eventfd */
	bool running;
};
void sup_poller_start(struct sup_poller *p, struct supervisor *s);
void sup_poller_stop(struct sup_poller *p);
/* Whether the daemon's log has a line containing @text. */
bool sup_log_has(const struct supervisor *s, const char *text);
/* How many of the daemon's log lines contain @text. */
unsigned int sup_log_count(const struct supervisor *s, const char *text);
/*
 * The store's names in order, space-separated, but those starting with
 * @skip (NULL: none); cut at @len.
 */
void sup_store_names(const struct supervisor *s, const char *skip,
		     char *buf, size_t len);
void sup_dump_log(const struct supervisor *s, FILE *f);

#endif
