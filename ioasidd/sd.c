/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * systemd integration: readiness (Type=notify) and socket activation
 * (ioasidd.socket, ListenSequentialPacket=).  Compiled to no-ops without
 * libsystemd (configure --without-libsystemd).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioasidd.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

int sd_activation_fd(char *errmsg, size_t errlen)
{
	int n = sd_listen_fds(1);
	int fd = SD_LISTEN_FDS_START;
	int flags;

	if (n < 0) {
		snprintf(errmsg, errlen, "sd_listen_fds: %s", strerror(-n));
		return n;
	}
	if (n == 0)
		return -ENOENT;
	if (n > 1) {
		snprintf(errmsg, errlen, "systemd passed %d sockets, ioasidd "
			 "takes one", n);
		return -EINVAL;
	}
	if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
		snprintf(errmsg, errlen, "the socket systemd passed is not a "
			 "listening AF_UNIX SOCK_SEQPACKET socket (use "
			 "ListenSequentialPacket=)");
		return -EINVAL;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(errmsg, errlen, "cannot set up the passed socket: %m");
		return -errno;
	}
	return fd;
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

#else /* !HAVE_LIBSYSTEMD */

int sd_activation_fd(char *errmsg, size_t errlen)
{
	return -ENOENT;
}

void sd_ready(const char *status)
{
}

void sd_stopping(void)
{
}

#endif
