/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A service manager for tests (supervisor.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_fixture.h"
#include "supervisor.h"

#define GUARD_MS	30000
#define KCMP_FILE_	0		/* <linux/kcmp.h>'s KCMP_FILE */

/*
 * Whether @a and @b are the same open file, as systemd's fd store tells
 * (same_fd(): kcmp(2)); false where kcmp is not there.
 */
static bool same_open_file(int a, int b)
{
#ifdef SYS_kcmp
	pid_t self = getpid();

	return syscall(SYS_kcmp, self, self, KCMP_FILE_, a, b) == 0;
#else
	return false;
#endif
}

static void put_fd(struct supervisor *s, int fd, const char *name)
{
	if (s->nr_store == SUP_MAX_FDS) {	/* as systemd: refused */
		close(fd);
		return;
	}
	/* as systemd: a file stored already keeps its name, once */
	for (unsigned int i = 0; i < s->nr_store; i++)
		if (same_open_file(s->store[i].fd, fd)) {
			close(fd);
			return;
		}
	s->store[s->nr_store].fd = fd;
	snprintf(s->store[s->nr_store].name,
		 sizeof(s->store[s->nr_store].name), "%s", name);
	s->nr_store++;
}

int sup_drop(struct supervisor *s, const char *name)
{
	unsigned int i = 0, n = 0;

	while (i < s->nr_store) {
		if (strcmp(s->store[i].name, name)) {
			i++;
			continue;
		}
		close(s->store[i].fd);
		memmove(&s->store[i], &s->store[i + 1],
			(s->nr_store - i - 1) * sizeof(s->store[0]));
		s->nr_store--;
		n++;
	}
	return n;
}

/* A field "KEY=value" of a notification, or NULL. */
static const char *field(const char *msg, const char *key, char *val,
			 size_t len)
{
	size_t kl = strlen(key);

	for (const char *l = msg; l && *l; l = strchr(l, '\n'),
	     l = l ? l + 1 : NULL) {
		if (!strncmp(l, key, kl) && l[kl] == '=') {
			const char *e = strchr(l, '\n');
			size_t n = e ? (size_t)(e - l - kl - 1) :
				       strlen(l + kl + 1);

			if (n >= len)
				n = len - 1;
			memcpy(val, l + kl + 1, n);
			val[n] = '\0';
			return val;
		}
	}
	return NULL;
}

/* Reap a main process that was replaced (MAINPID=) once it has exited. */
static void reap_replaced(struct supervisor *s, bool wait)
{
	int status;

	if (s->replaced > 0 &&
	    waitpid(s->replaced, &status, wait ? 0 : WNOHANG) != 0)
		s->replaced = -1;
}

/*
 * MAINPID=@pid: as systemd, watch @pid as the main process from now on
 * (a live upgrade's successor; we are the subreaper, so it becomes our
 * child when its parent, the old main process, exits).
 */
static void follow(struct supervisor *s, pid_t pid)
{
	int fd;

	if (pid <= 0 || pid == s->pid)
		return;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return;			/* gone already: nothing to follow */
	reap_replaced(s, false);
	/* back to the old one (a refused successor): that one was killed */
	s->replaced = pid == s->replaced ? -1 : s->pid;
	if (s->pidfd >= 0)
		close(s->pidfd);
	s->pid = pid;
	s->pidfd = fd;
	s->mainpid_changes++;
}

/* One notification: 1 when it said READY=1, 0 other, -EAGAIN none. */
static int one_notification(struct supervisor *s)
{
	char buf[4096], name[256], v[16];
	union {
		char buf[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	int fds[64], nfds = 0, ready = 0;
	ssize_t n = recvmsg(s->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return -EAGAIN;
	buf[n] = '\0';
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
	     cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS) {
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) /
				      sizeof(int));

			memcpy(fds + nfds, CMSG_DATA(cm), sizeof(int) * k);
			nfds += k;
		}
	if (!field(buf, "FDNAME", name, sizeof(name)))
		snprintf(name, sizeof(name), "stored");
	if (field(buf, "FDSTORE", v, sizeof(v)) && !strcmp(v, "1")) {
		for (int i = 0; i < nfds; i++)
			put_fd(s, fds[i], name);
		nfds = 0;
	}
	if (field(buf, "FDSTOREREMOVE", v, sizeof(v)) && !strcmp(v, "1"))
		sup_drop(s, name);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (field(buf, "READY", v, sizeof(v)) && !strcmp(v, "1"))
		ready = 1;
	if (field(buf, "MAINPID", v, sizeof(v)))
		follow(s, (pid_t)strtol(v, NULL, 10));
	return ready;
}

void sup_poll(struct supervisor *s)
{
	while (one_notification(s) >= 0)
		;
}

static void exec_daemon(struct supervisor *s)
{
	char names[SUP_MAX_FDS * 257] = "", num[32];
	int log = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		       0644);
	int tmp[SUP_MAX_FDS];
	sigset_t none;

	if (log < 0)
		_exit(126);
	dup2(log, 1);
	dup2(log, 2);
	/* out of the way of 3.., then in place, in the store's order */
	for (unsigned int i = 0; i < s->nr_store; i++) {
		tmp[i] = fcntl(s->store[i].fd, F_DUPFD_CLOEXEC,
			       3 + SUP_MAX_FDS + 16);
		if (tmp[i] < 0)
			_exit(126);
		if (i)
			strcat(names, ":");
		strcat(names, s->store[i].name);
	}
	for (unsigned int i = 0; i < s->nr_store; i++)
		if (dup2(tmp[i], 3 + (int)i) < 0)
			_exit(126);
	close_range(3 + s->nr_store, ~0U, 0);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("FDSTORE");
	unsetenv("JOURNAL_STREAM");
	setenv("NOTIFY_SOCKET", s->notify, 1);
	if (s->nr_store) {
		snprintf(num, sizeof(num), "%u", s->nr_store);
		setenv("LISTEN_FDS", num, 1);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		setenv("LISTEN_PID", num, 1);
		setenv("LISTEN_FDNAMES", names, 1);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	execl(daemon_binary(), "ioasidd", "--socket", s->sock, "--backend",
	      s->backend ? s->backend : "sim", "--config", s->config, "--log-level", "debug",
	      (char *)NULL);
	_exit(127);
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) :
	       128 + WTERMSIG(status);
}

/* Wait for READY=1 (1) or the daemon's exit (its status, negated - 1). */
static int wait_ready_or_exit(struct supervisor *s)
{
	struct pollfd p[2] = {
		{ .fd = s->notify_fd, .events = POLLIN },
		{ .fd = s->pidfd, .events = POLLIN },
	};
	int status;

	for (;;) {
		int r = poll(p, 2, GUARD_MS);

		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
		for (;;) {
			r = one_notification(s);
			if (r == 1)
				return 0;
			if (r < 0)
				break;
		}
		if (p[1].revents) {
			sup_poll(s);
			if (waitpid(s->pid, &status, 0) == s->pid)
				s->last_status = exit_code(status);
			s->pid = -1;
			close(s->pidfd);
			s->pidfd = -1;
			return -ECHILD;
		}
	}
}

static int spawn(struct supervisor *s)
{
	int r;

	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (s->pid == 0)
		exec_daemon(s);
	s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	if (s->pidfd < 0)
		return -errno;
	s->starts++;
	r = wait_ready_or_exit(s);
	if (r < 0) {
		fprintf(stderr, "ioasidd (start %u) did not get ready: %s\n",
			s->starts, strerror(-r));
		sup_dump_log(s, stderr);
	}
	return r;
}

int sup_start(struct supervisor *s, const char *config)
{
	return sup_start_backend(s, config, "sim");
}

int sup_start_backend(struct supervisor *s, const char *config,
		      const char *backend)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int buf = 4 << 20;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->backend = backend;
	s->pid = s->pidfd = s->notify_fd = s->replaced = -1;
	/* as systemd: orphans of the service (an upgrade's successor) are ours */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return -errno;
	snprintf(s->dir, sizeof(s->dir), "/tmp/ioasidd-sup-XXXXXX");
	if (!mkdtemp(s->dir) || chmod(s->dir, 0755) < 0)
		return -errno;
	snprintf(s->sock, sizeof(s->sock), "%s/ioasidd.sock", s->dir);
	snprintf(s->uri, sizeof(s->uri), "unix:%s", s->sock);
	snprintf(s->config, sizeof(s->config), "%s/ioasidd.conf", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/ioasidd.log", s->dir);
	snprintf(s->notify, sizeof(s->notify), "%s/notify", s->dir);
	f = fopen(s->config, "we");
	if (!f)
		return -errno;
	fputs(config ? config : "", f);
	fclose(f);
	s->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->notify_fd < 0)
		return -errno;
	setsockopt(s->notify_fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->notify);
	if (bind(s->notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return spawn(s);
}

static void reap(struct supervisor *s)
{
	struct pollfd p = { .fd = s->pidfd, .events = POLLIN };
	int status;

	if (s->pid <= 0)
		return;
	/* a followed main process may not be our child yet: its exit first */
	while (poll(&p, 1, GUARD_MS) < 0 && errno == EINTR)
		;
	reap_replaced(s, true);
	if (waitpid(s->pid, &status, 0) == s->pid)
		s->last_status = exit_code(status);
	s->pid = -1;
	close(s->pidfd);
	s->pidfd = -1;
}

void sup_kill(struct supervisor *s)
{
	if (s->pid > 0)
		kill(s->pid, SIGKILL);
	reap(s);
	sup_poll(s);		/* what it said before it died counts */
}

int sup_crash_restart(struct supervisor *s)
{
	sup_kill(s);
	return spawn(s);
}

int sup_wait_exit(struct supervisor *s)
{
	struct pollfd p = { .fd = s->pidfd, .events = POLLIN };

	if (s->pid <= 0)
		return 0;
	if (poll(&p, 1, GUARD_MS) != 1)
		return -ETIMEDOUT;
	reap(s);
	sup_poll(s);
	return 0;
}

int sup_restart(struct supervisor *s)
{
	reap(s);
	sup_poll(s);
	return spawn(s);
}

int sup_wait_mainpid(struct supervisor *s, pid_t old)
{
	struct pollfd p = { .fd = s->notify_fd, .events = POLLIN };

	sup_poll(s);
	while (s->pid == old) {
		int r = poll(&p, 1, GUARD_MS);

		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
		sup_poll(s);
	}
	return 0;
}

int sup_stop(struct supervisor *s)
{
	char path[160];
	int r = 0;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		reap(s);
		r = s->last_status;
	}
	sup_poll(s);
	while (s->nr_store)
		sup_drop(s, s->store[0].name);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	s->notify_fd = -1;
	if (r)
		sup_dump_log(s, stderr);
	if (s->dir[0]) {
		snprintf(path, sizeof(path), "%s/ioasidd.conf", s->dir);
		unlink(path);
		unlink(s->log);
		unlink(s->notify);
		unlink(s->sock);
		rmdir(s->dir);
		s->dir[0] = '\0';
	}
	return r;
}

int sup_fd(const struct supervisor *s, const char *name)
{
	for (unsigned int i = 0; i < s->nr_store; i++)
		if (!strcmp(s->store[i].name, name))
			return s->store[i].fd;
	return -1;
}

int sup_replace(struct supervisor *s, const char *name, int fd)
{
	for (unsigned int i = 0; i < s->nr_store; i++)
		if (!strcmp(s->store[i].name, name)) {
			close(s->store[i].fd);
			s->store[i].fd = fd;
			return 0;
		}
	close(fd);
	return -ENOENT;
}

bool sup_log_has(const struct supervisor *s, const char *text)
{
	return sup_log_count(s, text) > 0;
}

unsigned int sup_log_count(const struct supervisor *s, const char *text)
{
	char line[2048];
	unsigned int n = 0;
	FILE *f = fopen(s->log, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

void sup_store_names(const struct supervisor *s, const char *skip,
		     char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < s->nr_store && n + 1 < len; i++) {
		int w;

		if (skip && !strncmp(s->store[i].name, skip, strlen(skip)))
			continue;
		w = snprintf(buf + n, len - n, "%s%s", n ? " " : "",
			     s->store[i].name);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

void sup_dump_log(const struct supervisor *s, FILE *f)
{
	char line[2048];
	FILE *in = fopen(s->log, "re");

	if (!in)
		return;
	while (fgets(line, sizeof(line), in))
		fprintf(f, "ioasidd: %s", line);
	fclose(in);
}

static void *poller_loop(void *arg)
{
	struct sup_poller *p = arg;

	for (;;) {
		struct pollfd f[2] = {
			{ .fd = p->s->notify_fd, .events = POLLIN },
			{ .fd = p->stop, .events = POLLIN },
		};

		if (poll(f, 2, -1) < 0 && errno != EINTR)
			break;
		if (f[1].revents)
			break;
		if (f[0].revents)
			sup_poll(p->s);
	}
	return NULL;
}

void sup_poller_start(struct sup_poller *p, struct supervisor *s)
{
	p->s = s;
	if (p->stop < 0)
		p->stop = eventfd(0, EFD_CLOEXEC);
	p->running = p->stop >= 0 &&
		     pthread_create(&p->thread, NULL, poller_loop, p) == 0;
}

void sup_poller_stop(struct sup_poller *p)
{
	uint64_t one = 1, v;

	if (!p->running)
		return;
	if (write(p->stop, &one, sizeof(one)) == (ssize_t)sizeof(one))
		pthread_join(p->thread, NULL);
	if (read(p->stop, &v, sizeof(v)) < 0)
		v = 0;
	p->running = false;
}
