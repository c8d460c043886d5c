/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * systemd integration: readiness (Type=notify), socket activation
 * (ioasidd.socket, ListenSequentialPacket=) and the file descriptor
 * store (FileDescriptorStoreMax=: the journal, its files and the
 * listening socket survive a crash; journal.c).  libsystemd's sd-daemon
 * does the talking (it is a dependency already, Debian packages it).
 * Compiled to no-ops without libsystemd (configure --without-libsystemd):
 * then there is no fd store and so no crash survival.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioasidd.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

static bool is_listener(int fd)
{
	return sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0;
}

int sd_take_fds(struct sd_fds *out, char *errmsg, size_t errlen)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	int flags;

	memset(out, 0, sizeof(*out));
	out->listen_fd = -1;
	if (n < 0) {
		snprintf(errmsg, errlen, "sd_listen_fds: %s", strerror(-n));
		return n;
	}
	if (n > 0) {
		out->fds = calloc((size_t)n, sizeof(int));
		out->names = calloc((size_t)n, sizeof(char *));
		if (!out->fds || !out->names) {
			free(out->fds);
			free(out->names);
			for (int i = 0; i < n; i++)
				free(names[i]);
			free(names);
			memset(out, 0, sizeof(*out));
			out->listen_fd = -1;
			snprintf(errmsg, errlen, "out of memory for %d passed "
				 "descriptors", n);
			return -ENOMEM;
		}
	}
	/*
	 * The listening socket: the store's "listen", or the socket unit's
	 * (named after it); everything else goes to the journal.
	 */
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "";

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (out->listen_fd < 0 && is_listener(fd) &&
		    strncmp(name, "journal.", 8) &&
		    !(name[0] == 'f' && name[1] >= '0' && name[1] <= '9')) {
			out->listen_fd = fd;
			out->listen_from_store = !strcmp(name, "listen");
			free(names ? names[i] : NULL);
			continue;
		}
		if (!strncmp(name, "journal.", 8) || name[0] == 'f' ||
		    sd_is_socket(fd, AF_UNSPEC, 0, -1) <= 0)
			goto keep;
		snprintf(errmsg, errlen, "the socket systemd passed (\"%s\") "
			 "is not a listening AF_UNIX SOCK_SEQPACKET socket (use "
			 "ListenSequentialPacket=)", name);
		for (int k = i; k < n; k++)
			free(names ? names[k] : NULL);
		free(names);
		return -EINVAL;
keep:
		out->fds[out->nr] = fd;
		out->names[out->nr++] = names && names[i] ? names[i] :
					strdup("unknown");
	}
	free(names);
	if (out->listen_fd >= 0) {
		flags = fcntl(out->listen_fd, F_GETFL);
		if (flags < 0 || fcntl(out->listen_fd, F_SETFL,
				       flags | O_NONBLOCK) < 0) {
			snprintf(errmsg, errlen, "cannot set up the passed "
				 "socket: %m");
			return -errno;
		}
	}
	return 0;
}

bool sd_has_fdstore(void)
{
	const char *max = getenv("FDSTORE");

	/* systemd >= 254 says how many it keeps; 252 says nothing */
	return getenv("NOTIFY_SOCKET") && (!max || strcmp(max, "0"));
}

int sd_fdstore(const char *name, int fd)
{
	char msg[64 + 256];
	int r;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	return r > 0 ? 0 : r < 0 ? r : -ENOTCONN;
}

void sd_fdstore_remove(const char *name)
{
	sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}

void sd_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%lu", status,
		   (unsigned long)getpid());
}

void sd_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
}

void sd_mainpid(void)
{
	sd_notifyf(0, "MAINPID=%lu", (unsigned long)getpid());
}

#else /* !HAVE_LIBSYSTEMD */

int sd_take_fds(struct sd_fds *out, char *errmsg, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->listen_fd = -1;
	return 0;
}

bool sd_has_fdstore(void)
{
	return false;
}

int sd_fdstore(const char *name, int fd)
{
	return -ENOTCONN;
}

void sd_fdstore_remove(const char *name)
{
}

void sd_ready(const char *status)
{
}

void sd_stopping(void)
{
}

void sd_mainpid(void)
{
}

#endif

void sd_fds_release(struct sd_fds *f)
{
	for (unsigned int i = 0; i < f->nr; i++)
		free(f->names[i]);
	free(f->names);
	free(f->fds);
	memset(f, 0, sizeof(*f));
	f->listen_fd = -1;
}
