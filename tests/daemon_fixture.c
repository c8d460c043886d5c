/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A real ioasidd per test or benchmark (see daemon_fixture.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_fixture.h"

/* bounds for a hang: start-up and an ASan exit on a loaded 2-core CI */
#define START_TIMEOUT_MS	60000
#define STOP_TIMEOUT_MS		30000

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

const char *daemon_binary(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("IOASIDD");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env)
		return env;
	/* tests/x and bench/x live one level below the build directory */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		snprintf(path, sizeof(path), "%s/../ioasidd/ioasidd",
			 dirname(exe));
		if (access(path, X_OK) == 0)
			return path;
	}
	env = getenv("top_builddir");
	snprintf(path, sizeof(path), "%s/ioasidd/ioasidd", env ? env : ".");
	return path;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	int r = 0;

	if (!f)
		return -errno;
	if (fputs(text, f) < 0)
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

int daemon_write_config(struct daemon_fixture *d, const char *text)
{
	return write_file(d->config, text ? text : "");
}

void daemon_dump_log(const struct daemon_fixture *d, FILE *f)
{
	FILE *in = fopen(d->log, "re");
	char line[1024];

	if (!in)
		return;
	fprintf(f, "---- ioasidd log (%s) ----\n", d->log);
	while (fgets(line, sizeof(line), in))
		fputs(line, f);
	fprintf(f, "---- end of ioasidd log ----\n");
	fclose(in);
}

/* A listening socket as systemd would pass it. */
static int activation_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, 128) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static void exec_daemon(const struct daemon_fixture *d,
			const struct daemon_opts *o, int listen_fd)
{
	char pid[32];
	sigset_t none;
	int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (log < 0)
		_exit(126);
	dup2(log, 1);
	dup2(log, 2);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (listen_fd >= 0) {
		if (dup2(listen_fd, 3) < 0)
			_exit(126);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_PID", pid, 1);
	}
	close_range(listen_fd >= 0 ? 4 : 3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	/* never outlive the test that started it */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	execl(daemon_binary(), "ioasidd", "--socket", d->sock,
	      "--backend", o->backend ? o->backend : "sim",
	      "--config", d->config,
	      "--log-level", o->log_level ? o->log_level : "info",
	      o->ring_spin_us ? "--ring-spin-us" : (char *)NULL,
	      o->ring_spin_us, (char *)NULL);
	fprintf(stderr, "cannot run %s: %s\n", daemon_binary(),
		strerror(errno));
	_exit(127);
}

static bool can_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool daemon_alive(struct daemon_fixture *d)
{
	int status;

	if (d->pid <= 0)
		return false;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		d->pid = -1;
		d->status = exit_code(status);
		return false;
	}
	return true;
}

static int wait_ready(struct daemon_fixture *d)
{
	for (int ms = 0; ms < START_TIMEOUT_MS; ms += 2) {
		if (!daemon_alive(d)) {
			fprintf(stderr, "ioasidd exited during start-up\n");
			daemon_dump_log(d, stderr);
			return -ECHILD;
		}
		if (can_connect(d->sock))
			return 0;
		sleep_ms(2);
	}
	fprintf(stderr, "ioasidd did not listen within %d ms\n",
		START_TIMEOUT_MS);
	daemon_dump_log(d, stderr);
	return -ETIMEDOUT;
}

static int set_paths(struct daemon_fixture *d)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/ioasidd-test-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	/* reachable by the unprivileged uid some tests switch to */
	if (chmod(d->dir, 0755) < 0)
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/ioasidd.sock", d->dir);
	snprintf(d->uri, sizeof(d->uri), "unix:%s", d->sock);
	snprintf(d->config, sizeof(d->config), "%s/ioasidd.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/ioasidd.log", d->dir);
	return 0;
}

int daemon_start(struct daemon_fixture *d, const struct daemon_opts *opts)
{
	static const struct daemon_opts defaults;
	const struct daemon_opts *o = opts ? opts : &defaults;
	int listen_fd = -1, r;

	memset(d, 0, sizeof(*d));
	d->pid = -1;
	d->status = -1;
	r = set_paths(d);
	if (r == 0)
		r = daemon_write_config(d, o->config);
	if (r == 0 && o->socket_activation) {
		r = listen_fd = activation_socket(d->sock);
		d->activated = true;
	}
	if (r < 0)
		return r;
	fflush(NULL);
	d->pid = fork();
	if (d->pid == 0)
		exec_daemon(d, o, listen_fd);
	r = d->pid < 0 ? -errno : 0;
	d->status = 0;
	if (listen_fd >= 0)
		close(listen_fd);
	if (r == 0 && !o->no_wait)
		r = wait_ready(d);
	return r;
}

static int wait_exit(struct daemon_fixture *d, int timeout_ms)
{
	int status;

	for (int ms = 0; ms < timeout_ms; ms += 2) {
		pid_t p = waitpid(d->pid, &status, WNOHANG);

		if (p == d->pid) {
			d->pid = -1;
			d->status = exit_code(status);
			return d->status;
		}
		if (p < 0)
			return -errno;
		sleep_ms(2);
	}
	return -ETIMEDOUT;
}

static void remove_dir(struct daemon_fixture *d)
{
	unlink(d->sock);
	unlink(d->config);
	unlink(d->log);
	rmdir(d->dir);
}

int daemon_stop(struct daemon_fixture *d)
{
	int r = d->status;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		r = wait_exit(d, STOP_TIMEOUT_MS);
		if (r == -ETIMEDOUT) {
			fprintf(stderr, "ioasidd ignored SIGTERM\n");
			kill(d->pid, SIGKILL);
			wait_exit(d, STOP_TIMEOUT_MS);
			r = 128 + SIGKILL;
		}
	}
	if (r != 0)
		daemon_dump_log(d, stderr);
	if (d->dir[0])
		remove_dir(d);
	return r;
}

int daemon_count_fds(const struct daemon_fixture *d)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}
