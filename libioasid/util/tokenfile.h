/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Token files (the URI's token-file=): a session's reclaim token as hex
 * text, written to a new file of mode 0600 beside the old one and renamed
 * over it, so the file always holds a whole token.  Used when a context
 * opens its session (api_session.c) and whenever a reclaim hands it a new
 * token (transport/remote.c, after resuming).
 */
#ifndef IOASID_UTIL_TOKENFILE_H
#define IOASID_UTIL_TOKENFILE_H

#include <stddef.h>

/* @n bytes of @t as 2 * @n lowercase hex digits and a NUL into @hex. */
void token_hex(const unsigned char *t, size_t n, char *hex);
/*
 * A new file "@path.XXXXXX" (mode 0600, O_CLOEXEC) for the next token,
 * its name into @tmp: the descriptor, or -errno (-ENAMETOOLONG).
 */
int token_file_temp(const char *path, char *tmp, size_t len);
/*
 * @hex and a newline into @fd (a token_file_temp() file named @tmp),
 * synced, then renamed over @path: 0 or -errno.  @fd stays open; on an
 * error @tmp is the caller's to unlink.
 */
int token_file_commit(int fd, const char *tmp, const char *path,
		      const char *hex);

#endif
