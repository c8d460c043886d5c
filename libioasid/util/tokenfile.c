/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/tokenfile.h"

void token_hex(const unsigned char *t, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[t[i] >> 4];
		hex[2 * i + 1] = digits[t[i] & 15];
	}
	hex[2 * n] = '\0';
}

int token_file_temp(const char *path, char *tmp, size_t len)
{
	int fd;

	if ((size_t)snprintf(tmp, len, "%s.XXXXXX", path) >= len)
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int token_file_commit(int fd, const char *tmp, const char *path,
		      const char *hex)
{
	size_t len = strlen(hex);
	char *line = malloc(len + 1);
	int r;

	if (!line)
		return -ENOMEM;
	memcpy(line, hex, len);
	line[len++] = '\n';
	errno = 0;
	r = write(fd, line, len) == (ssize_t)len && fsync(fd) == 0 ? 0 :
	    errno ? -errno : -EIO;
	explicit_bzero(line, len);
	free(line);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	return r;
}
