// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ioasidctl --session NAME: keep state in ioasidd across commands, and
 * ioasidctl session list|drop, and ioasidctl daemon upgrade.
 *
 * --session NAME opens "unix:PATH?session=NAME&token-file=FILE": the
 * library reclaims the session when FILE holds its token, else names a
 * new one, and leaves the current token in FILE.  FILE is --token-file,
 * else $XDG_RUNTIME_DIR/ioasidctl/sessions/NAME (the directory made mode
 * 0700).  A session whose policy grants no linger would end with the
 * command: that is refused, and the file removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioasidctl.h"

/* $XDG_RUNTIME_DIR/ioasidctl/sessions/NAME; 0 or an exit status. */
static int default_token_file(struct ctl *ctl, const char *name, char *buf,
			      size_t len)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	char dir[4096];

	if (!run || !*run)
		return ctl_usage(ctl, "--session needs $XDG_RUNTIME_DIR for its "
				 "token file, or --token-file FILE");
	if (strchr(name, '/') || name[0] == '.')
		return ctl_usage(ctl, "session name \"%s\": no '/' and no "
				 "leading '.'", name);
	snprintf(dir, sizeof(dir), "%s/ioasidctl", run);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ctl_syserr(ctl, errno, "cannot create %s", dir);
	snprintf(dir, sizeof(dir), "%s/ioasidctl/sessions", run);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ctl_syserr(ctl, errno, "cannot create %s", dir);
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len)
		return ctl_usage(ctl, "$XDG_RUNTIME_DIR is too long");
	return EXIT_OK;
}

int ctl_session_uri(struct ctl *ctl)
{
	int r;

	ctl->base_uri = ctl->uri;
	if (!ctl->session)
		return EXIT_OK;
	if (strncmp(ctl->uri, "unix:", 5) || strchr(ctl->uri, '?'))
		return ctl_usage(ctl, "--session keeps state in ioasidd: it "
				 "needs a plain unix:PATH URI, not \"%s\"",
				 ctl->uri);
	if (!ctl->token_file) {
		r = default_token_file(ctl, ctl->session, ctl->token_path,
				       sizeof(ctl->token_path));
		if (r)
			return r;
		ctl->token_file = ctl->token_path;
	}
	snprintf(ctl->session_uri, sizeof(ctl->session_uri),
		 "%s?session=%s&token-file=%s", ctl->uri, ctl->session,
		 ctl->token_file);
	if (strlen(ctl->session_uri) + 1 >= sizeof(ctl->session_uri))
		return ctl_usage(ctl, "the token file's path is too long");
	ctl->uri = ctl->session_uri;
	ctl->own_only = true;
	return EXIT_OK;
}

/* After ctl_open(): a session that cannot linger is useless here. */
int ctl_session_check(struct ctl *ctl)
{
	struct ioasid_session_info v[64];
	uint32_t nr = 64;
	int r;

	if (!ctl->session)
		return EXIT_OK;
	r = ioasid_session_list(ctl->ctx, v, &nr);
	if (r < 0 && r != -EMSGSIZE)
		return ctl_fail(ctl, r, "cannot list sessions");
	for (uint32_t i = 0; i < nr && i < 64; i++) {
		if (strcmp(v[i].name, ctl->session) ||
		    v[i].state != IOASID_SESSION_CONNECTED ||
		    v[i].pid != (uint32_t)getpid())
			continue;
		if (v[i].linger_s)
			return EXIT_OK;
		unlink(ctl->token_file);
		ctl_err(ctl, "ioasidd's policy gives this user no linger "
			"(linger = 0 in ioasidd.conf(5)): session %s would end "
			"with this command", ctl->session);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- session list -------------------------------------------------------- */

static const char list_usage[] =
	"Usage: ioasidctl session list [--json]\n"
	"\n"
	"List this user's sessions in ioasidd (every user's when ioasidctl\n"
	"may observe): each connection's, named or not, and the named ones\n"
	"lingering after their connection dropped, with the seconds left,\n"
	"what they hold and which process they serve (CLIENT: the name it\n"
	"gave ioasidd; a '*' marks this ioasidctl's own session).\n";

static const char *state_name(uint32_t state)
{
	return state == IOASID_SESSION_LINGERING ? "lingering" :
	       state == IOASID_SESSION_CONNECTED ? "connected" : "?";
}

static void list_json(const struct ioasid_session_info *v, uint32_t nr)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_arr_begin(&j, "sessions");
	for (uint32_t i = 0; i < nr; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "name", v[i].name);
		json_bool(&j, "named", v[i].flags & IOASID_SESSION_NAMED);
		json_bool(&j, "self", v[i].flags & IOASID_SESSION_SELF);
		json_str(&j, "state", state_name(v[i].state));
		json_str(&j, "client", v[i].client);
		json_u64(&j, "id", v[i].id);
		json_u64(&j, "uid", v[i].uid);
		json_u64(&j, "pid", v[i].pid);
		json_u64(&j, "linger_s", v[i].linger_s);
		json_u64(&j, "expires_in_s", v[i].expires_in_s);
		json_u64(&j, "nr_ioas", v[i].nr_ioas);
		json_u64(&j, "nr_mappings", v[i].nr_mappings);
		json_u64(&j, "nr_devices", v[i].nr_devices);
		json_u64(&j, "nr_vms", v[i].nr_vms);
		json_u64(&j, "bytes_mapped", v[i].bytes_mapped);
		json_u64(&j, "state_bytes", v[i].state_bytes);
		json_u64(&j, "faults_lost", v[i].faults_lost);
		json_u64(&j, "events_lost", v[i].events_lost);
		json_u64(&j, "max_ioas", v[i].max_ioas);
		json_u64(&j, "max_mappings", v[i].max_mappings);
		json_u64(&j, "max_bytes_mapped", v[i].max_bytes_mapped);
		json_u64(&j, "max_vms", v[i].max_vms);
		json_u64(&j, "max_conversion_state",
			 v[i].max_conversion_state);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

static void list_human(const struct ioasid_session_info *v, uint32_t nr)
{
	if (!nr) {
		printf("no sessions\n");
		return;
	}
	printf("%-31s %-9s %6s %6s %7s %6s %7s %4s %8s %4s %3s %s\n", "NAME",
	       "STATE", "ID", "UID", "PID", "LINGER", "EXPIRES", "IOAS",
	       "MAPPINGS", "DEVS", "VMS", "CLIENT");
	for (uint32_t i = 0; i < nr; i++) {
		bool named = v[i].flags & IOASID_SESSION_NAMED;
		char exp[16] = "-", linger[16] = "-";

		if (v[i].state == IOASID_SESSION_LINGERING)
			snprintf(exp, sizeof(exp), "%us", v[i].expires_in_s);
		if (named)
			snprintf(linger, sizeof(linger), "%us", v[i].linger_s);
		printf("%-31s %-9s %6u %6u %7u %6s %7s %4u %8llu %4u %3u %s%s\n",
		       named ? v[i].name : "-", state_name(v[i].state),
		       v[i].id, v[i].uid, v[i].pid, linger, exp, v[i].nr_ioas,
		       (unsigned long long)v[i].nr_mappings, v[i].nr_devices,
		       v[i].nr_vms, v[i].client[0] ? v[i].client : "-",
		       v[i].flags & IOASID_SESSION_SELF ? " *" : "");
	}
}

/* Sessions are ioasidd's: say so for an embedded URI (exit 1). */
static int need_daemon(struct ctl *ctl)
{
	if (ioasid_is_remote(ctl->ctx))
		return EXIT_OK;
	ctl->err = EOPNOTSUPP;
	ctl_err(ctl, "%s: sessions are ioasidd's (--uri unix:PATH); %s runs "
		"inside this ioasidctl, whose one session ends with the "
		"command", ctl->cmd, ctl->uri);
	return EXIT_FAIL;
}

static int session_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_session_info *v = NULL;
	uint32_t nr = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, list_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl) ?: need_daemon(ctl);
	if (r)
		return r;
	r = ctl_list_sessions(ctl, &v, &nr);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot list sessions");
	if (ctl->json)
		list_json(v, nr);
	else
		list_human(v, nr);
	free(v);
	return EXIT_OK;
}

/* ---- session drop -------------------------------------------------------- */

static const char drop_usage[] =
	"Usage: ioasidctl session drop NAME\n"
	"\n"
	"Tear down the lingering session NAME of this user now (everything\n"
	"it holds goes, as when its linger ends), and remove the token file\n"
	"ioasidctl keeps for it (--token-file, else\n"
	"$XDG_RUNTIME_DIR/ioasidctl/sessions/NAME).\n";

static int session_drop(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	char path[4096];
	const char *name, *file = ctl->token_file;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, drop_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1);
	if (r)
		return r;
	name = argv[optind];
	if (ctl->session && !strcmp(ctl->session, name))
		return ctl_usage(ctl, "cannot drop session %s from inside it",
				 name);
	r = ctl_open(ctl) ?: need_daemon(ctl);
	if (r)
		return r;
	r = ioasid_session_drop(ctl->ctx, name);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot drop session %s", name);
	if (!file && getenv("XDG_RUNTIME_DIR") && !strchr(name, '/')) {
		snprintf(path, sizeof(path), "%s/ioasidctl/sessions/%s",
			 getenv("XDG_RUNTIME_DIR"), name);
		file = path;
	}
	if (file && unlink(file) < 0 && errno != ENOENT)
		return ctl_syserr(ctl, errno, "session %s dropped, but cannot "
				  "remove %s", name, file);
	if (!ctl->json)
		printf("session %s dropped\n", name);
	return EXIT_OK;
}

static const struct cmd session_cmds[] = {
	{ "list", session_list, "every session: named or not, connected or lingering" },
	{ "drop", session_drop, "tear a lingering session down now" },
};

static const char group_usage[] =
	"Usage: ioasidctl session [list|drop NAME] [--json]\n"
	"\n"
	"Every connection to ioasidd is a session (without a subcommand:\n"
	"list them).  Named sessions outlive the command that made them for\n"
	"the policy's linger (ioasidd.conf(5)); 'ioasidctl --session NAME ...'\n"
	"builds and inspects one across commands.\n"
	"\n"
	"Subcommands:\n";

int cmd_session(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch_group(ctl, session_cmds, ARRAY_SIZE(session_cmds),
				  "ioasidctl session", group_usage, "list",
				  argc, argv);
}

/* ---- daemon upgrade ------------------------------------------------------ */

static const char upgrade_usage[] =
	"Usage: ioasidctl daemon upgrade [--binary PATH]\n"
	"\n"
	"Have ioasidd re-execute itself (or PATH) without a gap: every\n"
	"connection and session carries over, clients see a delay at most\n"
	"(ioasidd(8), LIVE UPGRADE).  Root only.  When the new binary cannot\n"
	"take over, the old process keeps serving and this says why.\n";

static int daemon_upgrade(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS, { "binary", required_argument, NULL, 'b' }, { 0 }
	};
	const char *binary = NULL;
	uint32_t pid = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "hb:", opts, upgrade_usage)) !=
	       -1) {
		if (c != 'b')
			return ctl_opt_status(c);
		binary = optarg;
	}
	r = ctl_nargs(ctl, argc, 0, 0);
	if (r)
		return r;
	r = ctl_open(ctl);
	if (r)
		return r;
	if (!ioasid_is_remote(ctl->ctx)) {
		ctl->err = EOPNOTSUPP;
		ctl_err(ctl, "%s: %s runs inside this ioasidctl: there is no "
			"ioasidd to upgrade (--uri unix:PATH)", ctl->cmd,
			ctl->uri);
		return EXIT_FAIL;
	}
	r = ioasid_daemon_upgrade(ctl->ctx, binary, &pid);
	if (r < 0)
		return ctl_fail(ctl, r, "ioasidd was not upgraded");
	if (ctl->json)
		printf("{\"upgraded\":true,\"pid\":%u}\n", pid);
	else
		printf("ioasidd upgraded: pid %u serves\n", pid);
	return EXIT_OK;
}

static const struct cmd daemon_cmds[] = {
	{ "upgrade", daemon_upgrade, "re-execute ioasidd without a gap" },
};

static const char daemon_group_usage[] =
	"Usage: ioasidctl daemon upgrade\n"
	"\n"
	"ioasidd itself.\n"
	"\n"
	"Subcommands:\n";

int cmd_daemon(struct ctl *ctl, int argc, char **argv)
{
	/* never a default: an upgrade is asked for by name */
	if (argc < 2)
		return ctl_usage(ctl, "which daemon command? (upgrade)");
	return ctl_dispatch_group(ctl, daemon_cmds, ARRAY_SIZE(daemon_cmds),
				  "ioasidctl daemon", daemon_group_usage, NULL,
				  argc, argv);
}
