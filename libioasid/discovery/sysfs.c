/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small sysfs readers.  Paths are given as the running system sees them
 * ("/sys/..."); the sysroot, if any, is put in front, so recorded trees
 * are read with exactly the code that reads the real one.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discovery/discovery.h"
#include "util/parse.h"

/* NULL, "" and "/" all mean the running system. */
static const char *root_prefix(const char *sysroot)
{
	if (!sysroot || !strcmp(sysroot, "/"))
		return "";
	return sysroot;
}

int sysfs_path(char *buf, size_t size, const char *sysroot, const char *path)
{
	int n = snprintf(buf, size, "%s%s", root_prefix(sysroot), path);

	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int open_attr(const char *sysroot, const char *path)
{
	char full[4096];
	int ret, fd;

	ret = sysfs_path(full, sizeof(full), sysroot, path);
	if (ret)
		return ret;
	/* a recorded tree must not make us follow links or block on FIFOs */
	fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	return fd;
}

/*
 * Read from offset 0 until @size bytes or end of file.  sysfs returns an
 * attribute in one read, but binary attributes (config) may come in
 * pieces and a short read is legitimate (unprivileged: 64 bytes).
 */
static ssize_t read_all(int fd, void *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, (char *)buf + done, size - done,
				  (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t sysfs_read_binary(const char *sysroot, const char *path, void *buf,
			  size_t size)
{
	ssize_t n;
	int fd;

	fd = open_attr(sysroot, path);
	if (fd < 0)
		return fd;
	n = read_all(fd, buf, size);
	close(fd);
	return n;
}

int sysfs_read_text(const char *sysroot, const char *path, char *buf,
		    size_t size)
{
	ssize_t n;

	if (size == 0)
		return -EINVAL;
	n = sysfs_read_binary(sysroot, path, buf, size - 1);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	/* a NUL inside means binary junk: treat it as the end */
	n = (ssize_t)strlen(buf);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	return (int)n;
}

int sysfs_read_hex(const char *sysroot, const char *path, uint64_t *val)
{
	char text[64];
	int n;

	n = sysfs_read_text(sysroot, path, text, sizeof(text));
	if (n < 0)
		return n;
	return parse_u64(text, 16, val);
}

int sysfs_link_name(const char *sysroot, const char *path, char *buf,
		    size_t size)
{
	char full[4096], target[4096];
	const char *base;
	ssize_t n;
	int ret;

	ret = sysfs_path(full, sizeof(full), sysroot, path);
	if (ret)
		return ret;
	n = readlink(full, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	while (n > 1 && target[n - 1] == '/')
		target[--n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (!*base)
		return -EINVAL;
	if (strlen(base) >= size)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}
