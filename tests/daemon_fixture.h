/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A real ioasidd for tests and benchmarks: started in a private temporary
 * directory with its own socket, policy file and log, stopped with
 * SIGTERM.  Plain C (no criterion), so benchmarks can use it too.
 *
 * The binary is $IOASIDD, else ioasidd/ioasidd next to the directory of
 * the running program (the build tree layout), else
 * $top_builddir/ioasidd/ioasidd.
 */
#ifndef IOASID_TESTS_DAEMON_FIXTURE_H
#define IOASID_TESTS_DAEMON_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

struct daemon_fixture {
	pid_t pid;
	char dir[64];			/* private temporary directory */
	char sock[108];			/* the socket (fits sun_path) */
	char uri[PATH_MAX + 8];		/* "unix:" + sock */
	char config[PATH_MAX];		/* ioasidd.conf written there */
	char log[PATH_MAX];		/* the daemon's stderr */
	bool activated;			/* socket passed as systemd */
	int status;			/* after exit: as daemon_stop() */
};

struct daemon_opts {
	const char *config;		/* policy text; NULL: empty file */
	const char *backend;		/* NULL: "sim" */
	const char *log_level;		/* NULL: "info" */
	bool socket_activation;		/* socket via LISTEN_FDS */
	bool no_wait;			/* do not wait for the socket */
	const char *ring_spin_us;	/* NULL: the default; --ring-spin-us */
};

/* Path of the ioasidd binary to run. */
const char *daemon_binary(void);

/*
 * Start ioasidd; 0 when its socket accepts connections, else -errno
 * (its log is copied to stderr).  @opts may be NULL.
 */
int daemon_start(struct daemon_fixture *d, const struct daemon_opts *opts);

/*
 * SIGTERM and wait (SIGKILL after 30 s).  Returns the exit status (0 for
 * a clean shutdown), or 128 + signal when it died of a signal.  Removes
 * the directory; copies the log to stderr when the status is not 0.
 */
int daemon_stop(struct daemon_fixture *d);

/*
 * Descriptors the daemon has open now (from /proc/PID/fd), or -errno.
 * "Now" races with the daemon's work: a reply that passes a descriptor
 * reaches the client before the daemon closes its copy, and connections
 * that went away are reaped after the daemon's current batch of events.
 * Count after a round trip on the connection whose request must have
 * finished (ioasidd reads a connection's next request only when the
 * previous one is done), or wait for the number wanted.
 */
int daemon_count_fds(const struct daemon_fixture *d);

/* Still running? */
bool daemon_alive(struct daemon_fixture *d);

/* Rewrite the policy file (then SIGHUP the daemon to reload it). */
int daemon_write_config(struct daemon_fixture *d, const char *text);

/* Copy the daemon's log to @f. */
void daemon_dump_log(const struct daemon_fixture *d, FILE *f);

#endif
