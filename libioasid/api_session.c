/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Public API: named sessions that outlive their connection to ioasidd
 * (ioasid_session(3)), and the URI parameters that open one
 * ("unix:PATH?session=NAME&token-file=FILE").
 *
 * The daemon keeps every rule (names, tokens, linger, who may reclaim);
 * the library packs requests, keeps the current token (the remote
 * transport) and, for token-file=, keeps it in a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "transport/transport.h"
#include "util/macros.h"
#include "util/tokenfile.h"

static int need_remote(const char *fn, struct ioasid_ctx *ctx)
{
	if (!ctx)
		return api_reject(-EINVAL, fn, "ctx is NULL");
	if (!ioasid_is_remote(ctx))
		return api_reject(-EOPNOTSUPP, fn, "an embedded context ends "
				  "with its process; only sessions in ioasidd "
				  "(unix:PATH) have names and outlive their "
				  "connection");
	return 0;
}

static int set_session_name(const char *fn, struct ioasid_op *op,
			    const char *name)
{
	if (api_set_name(op, name) < 0)
		return api_reject(-EINVAL, fn, "%s", api_name_problem(name));
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int token_from_hex(const char *hex, unsigned char *t)
{
	if (strlen(hex) != 2 * IOASID_SESSION_TOKEN_LEN)
		return -EINVAL;
	for (int i = 0; i < IOASID_SESSION_TOKEN_LEN; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		t[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/*
 * ioasid_session_name - name this context's session in ioasidd
 * @name: 1 to 31 letters, digits, '.', '_' or '-' (not first); unique
 *        among the caller's uid's sessions
 * @linger_s: out (may be NULL): seconds the session outlives its
 *            connection (policy linger; 0: it ends with the connection)
 *
 * The daemon draws a reclaim token; ioasid_session_token() gives it.
 * Returns 0, -EINVAL (NULL ctx, bad name), -EOPNOTSUPP (embedded
 * context), -EBUSY (already named), -EEXIST (the uid has a session of that
 * name), -ENOMEM, -ECONNRESET.
 */
IOASID_EXPORT int ioasid_session_name(struct ioasid_ctx *ctx, const char *name,
				      uint32_t *linger_s)
{
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
	struct ioasid_op op;
	int r;

	r = need_remote(__func__, ctx);
	if (r < 0)
		return r;
	ioasid_op_init(&op, IOASID_CMD_SESSION_NAME);
	r = set_session_name(__func__, &op, name);
	if (r < 0)
		return r;
	op.out = token;
	op.out_cap = sizeof(token);
	r = api_call(ctx, &op);
	explicit_bzero(token, sizeof(token));	/* the transport kept it */
	if (r == 0 && linger_s)
		*linger_s = (uint32_t)op.out_bytes;
	return r;
}

/*
 * ioasid_session_token - the current reclaim token, as hex text
 * @token: room for IOASID_SESSION_TOKEN_HEX bytes
 *
 * Returns 0, -EINVAL (NULL argument), -EOPNOTSUPP (embedded), -ENOENT
 * (the session has no name), -ERANGE (@size too small).
 */
IOASID_EXPORT int ioasid_session_token(struct ioasid_ctx *ctx, char *token,
				       size_t size)
{
	unsigned char raw[IOASID_SESSION_TOKEN_LEN];
	struct ioasid_op op;
	int r;

	r = need_remote(__func__, ctx);
	if (r < 0)
		return r;
	if (!token)
		return api_reject(-EINVAL, __func__, "token is NULL");
	if (size < IOASID_SESSION_TOKEN_HEX)
		return api_reject(-ERANGE, __func__, "a token needs %d bytes "
				  "of room, not %zu", IOASID_SESSION_TOKEN_HEX,
				  size);
	ioasid_op_init(&op, IOASID_CMD_SESSION_TOKEN);
	op.out = raw;
	op.out_cap = sizeof(raw);
	r = api_call(ctx, &op);
	if (r == 0)
		token_hex(raw, IOASID_SESSION_TOKEN_LEN, token);
	explicit_bzero(raw, sizeof(raw));
	return r;
}

/*
 * ioasid_session_reclaim - take over a lingering session
 * @name, @token: as ioasid_session_name() and ioasid_session_token() gave
 *
 * @ctx must be a fresh context: unnamed, with no IOAS, device or VM.  Its
 * own session is freed and @ctx goes on with the reclaimed one (every id
 * of it valid again); the token is replaced (ioasid_session_token()).
 * Returns 0, -EINVAL (NULL ctx, bad name, token not 64 hex digits),
 * -EOPNOTSUPP (embedded), -ENOENT (the uid has no session of that name),
 * -EBUSY (that session is still connected, or @ctx is named), -EACCES
 * (wrong token), -ENOTEMPTY (@ctx holds objects), -ECONNRESET.
 */
IOASID_EXPORT int ioasid_session_reclaim(struct ioasid_ctx *ctx,
					 const char *name, const char *token)
{
	unsigned char raw[IOASID_SESSION_TOKEN_LEN], fresh[sizeof(raw)];
	struct ioasid_op op;
	int r;

	r = need_remote(__func__, ctx);
	if (r < 0)
		return r;
	ioasid_op_init(&op, IOASID_CMD_SESSION_RECLAIM);
	r = set_session_name(__func__, &op, name);
	if (r < 0)
		return r;
	if (!token || token_from_hex(token, raw) < 0)
		return api_reject(-EINVAL, __func__, "a token is %d hex "
				  "digits", 2 * IOASID_SESSION_TOKEN_LEN);
	op.in = raw;
	op.in_len = sizeof(raw);
	op.out = fresh;
	op.out_cap = sizeof(fresh);
	r = api_call(ctx, &op);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(fresh, sizeof(fresh));
	return r;
}

/*
 * ioasid_session_list - the caller's uid's sessions in ioasidd (every uid's
 * for a client the policy lets observe): the named ones, connected and
 * lingering, then each connection's unnamed one (flags say which, and
 * which is the caller's)
 *
 * Returns 0, -EINVAL, -EOPNOTSUPP (embedded), -EMSGSIZE (*@nr set to the
 * number there are), -ECONNRESET.
 */
IOASID_EXPORT int ioasid_session_list(struct ioasid_ctx *ctx,
				      struct ioasid_session_info *sessions,
				      uint32_t *nr)
{
	struct ioasid_op op;
	int r = need_remote(__func__, ctx);

	if (r < 0)
		return r;
	ioasid_op_init(&op, IOASID_CMD_SESSION_LIST);
	return api_call_array(ctx, &op, sessions, sizeof(*sessions), nr);
}

/*
 * ioasid_session_drop - tear a lingering session of the caller's uid down
 * now
 *
 * Returns 0, -EINVAL, -EOPNOTSUPP (embedded), -ENOENT (no such session),
 * -EBUSY (it is connected), -ECONNRESET.
 */
IOASID_EXPORT int ioasid_session_drop(struct ioasid_ctx *ctx, const char *name)
{
	struct ioasid_op op;
	int r = need_remote(__func__, ctx);

	if (r < 0)
		return r;
	ioasid_op_init(&op, IOASID_CMD_SESSION_DROP);
	r = set_session_name(__func__, &op, name);
	return r < 0 ? r : api_call(ctx, &op);
}

/* ---- token files (URI token-file=) --------------------------------------- */

/*
 * Read the token kept in @path: 0, -ENOENT (no file: a new session), or
 * another error (the file is unsafe or unreadable).
 */
static int read_token_file(const char *path, char *hex, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	ssize_t n;

	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0)
		return api_fail(-errno, "cannot open token file %s: %m", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return api_fail(-EINVAL, "token file %s is not a regular file",
				path);
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return api_fail(-EACCES, "token file %s must belong to uid %u "
				"and be readable by nobody else (mode 0600)",
				path, (unsigned int)geteuid());
	}
	n = read(fd, hex, len - 1);
	close(fd);
	if (n < 0)
		return api_fail(-errno, "cannot read token file %s: %m", path);
	hex[n] = '\0';
	hex[strcspn(hex, "\n")] = '\0';
	return 0;
}

/* A new file beside @path, mode 0600, for the token to come. */
static int make_temp(const char *path, char *tmp, size_t len)
{
	int fd = token_file_temp(path, tmp, len);

	if (fd == -ENAMETOOLONG)
		return api_fail(fd, "token file name %s is too long", path);
	if (fd < 0)
		return api_fail(fd, "cannot create a token file beside %s: %s",
				path, strerror(-fd));
	return fd;
}

static int write_token(struct ioasid_ctx *ctx, int fd, const char *tmp,
		       const char *path)
{
	char hex[IOASID_SESSION_TOKEN_HEX];
	int r;

	r = ioasid_session_token(ctx, hex, sizeof(hex));
	if (r < 0)
		return r;
	r = token_file_commit(fd, tmp, path, hex);
	explicit_bzero(hex, sizeof(hex));
	if (r < 0)
		return api_fail(r, "cannot write token file %s: %s", path,
				strerror(-r));
	return 0;
}

/*
 * Name the session @name, or reclaim it when @token_file holds its token;
 * afterwards @token_file holds the current token.
 */
static int open_session(struct ioasid_ctx *ctx, const char *name,
			const char *token_file)
{
	char hex[2 * IOASID_SESSION_TOKEN_HEX], tmp[4096];
	int r, fd;

	if (!token_file)
		return ioasid_session_name(ctx, name, NULL);
	r = read_token_file(token_file, hex, sizeof(hex));
	if (r < 0 && r != -ENOENT)
		return r;
	fd = make_temp(token_file, tmp, sizeof(tmp));
	if (fd < 0) {
		explicit_bzero(hex, sizeof(hex));
		return fd;
	}
	if (r == -ENOENT)
		r = ioasid_session_name(ctx, name, NULL);
	else
		r = ioasid_session_reclaim(ctx, name, hex);
	explicit_bzero(hex, sizeof(hex));
	if (r == 0)
		r = write_token(ctx, fd, tmp, token_file);
	close(fd);
	if (r < 0)
		unlink(tmp);
	return r;
}

/*
 * "session=NAME&token-file=FILE&reconnect=SECONDS" after the '?' of a
 * unix: URI: open the session they name on the new context, and tell the
 * transport how long to dial again after a lost connection and which
 * file to keep the token in when a resume gets a new one.
 */
int ctx_open_session(struct ioasid_ctx *ctx, const char *query)
{
	char buf[4096], *save = NULL, *name = NULL, *file = NULL;
	char *reconnect = NULL, why[IOASID_ERRMSG_MAX], *kept;
	int r;

	if (strlen(query) >= sizeof(buf))
		return api_fail(-EINVAL, "URI parameters too long");
	snprintf(buf, sizeof(buf), "%s", query);
	for (char *kv = strtok_r(buf, "&", &save); kv;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq || eq == kv || !eq[1])
			return api_fail(-EINVAL, "URI parameter \"%s\" is not "
					"KEY=VALUE", kv);
		*eq = '\0';
		if (!strcmp(kv, "session") && !name)
			name = eq + 1;
		else if (!strcmp(kv, "token-file") && !file)
			file = eq + 1;
		else if (!strcmp(kv, "reconnect") && !reconnect)
			reconnect = eq + 1;
		else
			return api_fail(-EINVAL, "unknown or repeated URI "
					"parameter \"%s\" (known: session, "
					"token-file, reconnect)", kv);
	}
	if (!name && file)
		return api_fail(-EINVAL, "URI parameter token-file without "
				"session=NAME");
	if (!name && !reconnect)
		return api_fail(-EINVAL, "URI parameters without session=NAME");
	r = remote_session_options(ctx->transport_priv, reconnect, NULL, why,
				   sizeof(why));
	if (r < 0)
		return api_fail(r, "%s", why);
	if (!name)
		return 0;
	r = open_session(ctx, name, file);
	if (r < 0 || !file)
		return r;
	/* the file exists now: keep its full name, whatever the cwd becomes */
	kept = realpath(file, NULL);
	r = remote_session_options(ctx->transport_priv, NULL,
				   kept ? kept : file, why, sizeof(why));
	free(kept);
	return r < 0 ? api_fail(r, "%s", why) : 0;
}

/*
 * ioasid_daemon_upgrade - have ioasidd re-execute itself (ioasidd(8), LIVE
 * UPGRADE): @binary, or the binary it was started from when NULL; *@pid
 * (may be NULL) is the new process's pid.  Every connection, this one
 * too, and every session carry over; the call returns once the new
 * process serves.
 *
 * Returns 0, -EINVAL (NULL @ctx, an empty or too long @binary),
 * -EOPNOTSUPP for an embedded context, -EPERM unless the caller is root,
 * -EBUSY while another upgrade runs, -EAGAIN while a client's connection
 * is being torn down (ask again), -ENOEXEC when the new binary did not
 * take over (it cannot be run, died, or refused the state: the old
 * process keeps serving, ioasid_last_error() says why), -EPROTONOSUPPORT
 * when it cannot read the state's format version, -ETIMEDOUT when it did
 * not answer in time, -EOPNOTSUPP on a kernel backend, -ENOMEM.
 */
IOASID_EXPORT int ioasid_daemon_upgrade(struct ioasid_ctx *ctx,
					const char *binary, uint32_t *pid)
{
	struct ioasid_op op;
	int r = need_remote(__func__, ctx);

	if (r < 0)
		return r;
	ioasid_op_init(&op, IOASID_CMD_DAEMON_UPGRADE);
	if (binary) {
		size_t len = strlen(binary);

		if (!len || len >= 4096)
			return api_reject(-EINVAL, __func__, "the binary's "
					  "path is empty or longer than 4095 "
					  "bytes");
		op.in = binary;
		op.in_len = (uint32_t)len + 1;
	}
	r = api_call(ctx, &op);
	if (r == 0 && pid)
		*pid = op.out_id;
	return r;
}
