/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ioasidd - the privileged owner of IOMMU state for unprivileged VMMs.
 *
 * Start-up: options, policy (ioasidd.conf), the backend as an embedded
 * libioasid context, the listening socket (created here, or passed by
 * systemd), then privileges are narrowed to what the backends need and
 * the epoll loop runs until SIGTERM/SIGINT.  It always runs in the
 * foreground: systemd (Type=notify) or the caller supervises it.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>
#include <linux/capability.h>

#include "ioasidd.h"
#include "util/macros.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/ioasidd.conf"

struct options {
	const char *socket_path;
	const char *backend;
	const char *config;
	bool config_given;
	const char *socket_group;	/* overrides [daemon] socket-group */
	int log_level;
	bool keep_caps;
	bool no_fastpath;
	long ring_spin_us;		/* -1: default */
};

/* ---- logging ------------------------------------------------------------- */

static bool log_to_journal;
static int log_level = LOG_INFO;

static const char *const level_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* journald reads "<N>" priority prefixes from a service's stderr. */
static void log_fn(void *data, int priority, const char *file, int line,
		   const char *fn, const char *format, va_list args)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), format, args);
	if (log_to_journal)
		fprintf(stderr, "<%d>%s\n", priority, msg);
	else
		fprintf(stderr, "ioasidd: %s: %s\n",
			priority >= 0 && priority <= LOG_DEBUG ?
			level_names[priority] : "?", msg);
}

static struct log_sink daemon_log = { .fn = log_fn };

static void say(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Before the context exists. */
static void say(int priority, const char *fmt, ...)
{
	va_list ap;

	if (priority > log_level)
		return;
	va_start(ap, fmt);
	log_fn(NULL, priority, __FILE__, __LINE__, __func__, fmt, ap);
	va_end(ap);
}

static int parse_level(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && !*end && n >= 0 && n <= LOG_DEBUG)
		return (int)n;
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (!strcasecmp(s, level_names[i]))
			return (int)i;
	if (!strcasecmp(s, "error"))
		return LOG_ERR;
	if (!strcasecmp(s, "warn"))
		return LOG_WARNING;
	return -1;
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ioasidd [OPTIONS]\n"
"Own the IOMMU state and serve libioasid clients over a socket.\n"
"\n"
"  -s, --socket PATH        listen on PATH (default %s)\n"
"  -b, --backend URI        auto (the default: iommufd or vfio-type1, as the\n"
"                           host has; never the simulator), iommufd,\n"
"                           vfio-type1, sim, sim:TOPOLOGY, iommufd:mock[=N]\n"
"  -c, --config FILE        policy (default %s; a missing default\n"
"                           file means built-in defaults)\n"
"  -g, --socket-group GROUP group of the socket (overrides the config)\n"
"  -l, --log-level LEVEL    err, warning, notice, info (default), debug\n"
"      --keep-capabilities  do not narrow root's capabilities\n"
"      --no-fastpath        no shared view of mappings and no request ring\n"
"                           for clients: every call is a round trip\n"
"      --ring-spin-us N     how long to keep looking at a client's request\n"
"                           ring after it emptied (default 20; 0: not at all)\n"
"  -f, --foreground         accepted for compatibility: always foreground\n"
"  -h, --help               this text\n"
"  -V, --version            version and protocol version\n",
		IOASID_DEFAULT_SOCKET, DEFAULT_CONFIG);
}

enum { OPT_KEEP_CAPS = 256, OPT_NO_FASTPATH, OPT_RING_SPIN };

/* 0: run; 1: exit successfully (help, version); -1: usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "backend", required_argument, NULL, 'b' },
		{ "config", required_argument, NULL, 'c' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "keep-capabilities", no_argument, NULL, OPT_KEEP_CAPS },
		{ "no-fastpath", no_argument, NULL, OPT_NO_FASTPATH },
		{ "ring-spin-us", required_argument, NULL, OPT_RING_SPIN },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "s:b:c:g:l:fhV", longopts,
				NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'b':
			o->backend = optarg;
			break;
		case 'c':
			o->config = optarg;
			o->config_given = true;
			break;
		case 'g':
			o->socket_group = optarg;
			break;
		case 'l':
			o->log_level = parse_level(optarg);
			if (o->log_level < 0) {
				fprintf(stderr, "ioasidd: unknown log level "
					"\"%s\" (known: err, warning, notice, "
					"info, debug)\n", optarg);
				return -1;
			}
			break;
		case OPT_KEEP_CAPS:
			o->keep_caps = true;
			break;
		case OPT_NO_FASTPATH:
			o->no_fastpath = true;
			break;
		case OPT_RING_SPIN: {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > 1000000 ||
			    optarg[0] == '-') {
				fprintf(stderr, "ioasidd: --ring-spin-us wants "
					"0 to 1000000, not \"%s\"\n", optarg);
				return -1;
			}
			o->ring_spin_us = (long)v;
			break;
		}
		case 'f':
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("ioasidd %s (protocol %d)\n", PACKAGE_VERSION,
			       IOASID_PROTO_VERSION);
			return 1;
		default:	/* getopt said which option, and why */
			fprintf(stderr, "Try 'ioasidd --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ioasidd: unexpected argument \"%s\"\n"
			"Try 'ioasidd --help'.\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* ---- the socket ---------------------------------------------------------- */

static int resolve_gid(const char *name, gid_t *gid)
{
	struct group *g;
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(name, &end, 10);
	if (*name && !*end && !errno && n < UINT32_MAX) {
		*gid = (gid_t)n;
		return 0;
	}
	g = getgrnam(name);
	if (!g)
		return -ENOENT;
	*gid = g->gr_gid;
	return 0;
}

/* A leftover socket file is removed; a live daemon on it is an error. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		say(LOG_ERR, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0) {
		say(LOG_ERR, "another ioasidd is already listening on %s",
		    path);
		return -EADDRINUSE;
	}
	return unlink(path) < 0 ? -errno : 0;
}

/* The parent directory, when missing (e.g. /run/ioasidd without systemd). */
static void make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) == 0)
		say(LOG_INFO, "created %s", dir);
}

/* Owner root, group @group (or ours), mode from the policy. */
static int set_socket_access(const char *path, const char *group,
			     mode_t mode)
{
	gid_t gid;

	if (group && *group) {
		if (resolve_gid(group, &gid) < 0) {
			say(LOG_ERR, "socket group \"%s\" does not exist",
			    group);
			return -ENOENT;
		}
		if (chown(path, (uid_t)-1, gid) < 0) {
			say(LOG_ERR, "cannot give %s to group %s: %m", path,
			    group);
			return -errno;
		}
	}
	if (chmod(path, mode) < 0) {
		say(LOG_ERR, "cannot chmod %s: %m", path);
		return -errno;
	}
	return 0;
}

static int make_socket(const char *path, const char *group, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, r;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		say(LOG_ERR, "bad socket path \"%s\"", path);
		return -EINVAL;
	}
	memcpy(sa.sun_path, path, strlen(path));
	make_parent(path);
	r = clear_stale(path, &sa);
	if (r < 0) {
		if (r != -EADDRINUSE && r != -EEXIST)
			say(LOG_ERR, "cannot remove old socket %s: %s", path,
			    strerror(-r));
		return r;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);	/* born 0600: never wider than intended */
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		say(LOG_ERR, "cannot bind %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	/* group and mode first: nobody connects before they hold */
	r = set_socket_access(path, group, mode);
	if (r == 0 && listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		say(LOG_ERR, "cannot listen on %s: %s", path, strerror(-r));
	}
	if (r < 0) {
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

/* ---- privileges ---------------------------------------------------------- */

/*
 * Root keeps only what the backends need once the socket exists:
 *   CAP_IPC_LOCK      pin guest memory beyond RLIMIT_MEMLOCK (iommufd,
 *                     VFIO type1 account pinned pages)
 *   CAP_SYS_RESOURCE  raise RLIMIT_MEMLOCK / RLIMIT_NOFILE
 *   CAP_SYS_ADMIN     read PCI config space past 64 bytes in sysfs (the
 *                     PCIe Device Control register: "Enable No Snoop")
 *   CAP_SYS_RAWIO     VFIO device regions on some platforms
 * Everything else leaves the bounding, permitted and effective sets;
 * /dev/iommu and the VFIO device nodes stay reachable: uid 0 owns them.
 */
static const int kept_caps[] = {
	CAP_IPC_LOCK, CAP_SYS_RESOURCE, CAP_SYS_ADMIN, CAP_SYS_RAWIO,
};

static bool cap_kept(int cap)
{
	for (size_t i = 0; i < ARRAY_SIZE(kept_caps); i++)
		if (kept_caps[i] == cap)
			return true;
	return false;
}

static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	return last;
}

static int drop_capabilities(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = {};
	uint64_t keep = 0;
	bool bset_ok = true;

	for (int cap = 0; cap <= last_cap(); cap++) {
		if (cap_kept(cap)) {
			keep |= 1ULL << cap;
			continue;
		}
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EPERM)
			bset_ok = false;
	}
	if (!bset_ok)
		say(LOG_WARNING, "cannot narrow the capability bounding set "
		    "(no CAP_SETPCAP); narrowing the permitted set only");
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	data[0].permitted &= (uint32_t)keep;
	data[1].permitted &= (uint32_t)(keep >> 32);
	data[0].effective = data[0].permitted;
	data[1].effective = data[1].permitted;
	data[0].inheritable = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/* ---- main ---------------------------------------------------------------- */

static void block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

/*
 * Without --backend (or with "auto" or an empty one): the host's IOMMU
 * interface, iommufd before VFIO type1.  Never the simulator: on a host
 * with neither, start-up fails and says how to ask for it.
 * $IOASIDD_DEV_DIR (tests only) replaces /dev in the probe.
 */
static const char *auto_backend(void)
{
	const char *dev = getenv("IOASIDD_DEV_DIR");
	char path[PATH_MAX];

	if (!dev || !*dev)
		dev = "/dev";
	snprintf(path, sizeof(path), "%s/iommu", dev);
	if (access(path, F_OK) == 0)
		return "iommufd";
	snprintf(path, sizeof(path), "%s/vfio/vfio", dev);
	if (access(path, F_OK) == 0)
		return "vfio-type1";
	say(LOG_ERR, "no IOMMU interface on this host (neither %s/iommu nor "
	    "%s/vfio/vfio); to serve the simulated IOMMU, start ioasidd "
	    "with --backend sim", dev, dev);
	return NULL;
}

/* The daemon owns the core itself; the core logs through daemon_log. */
static int open_backend(const struct options *o, struct core **core,
			const char **used)
{
	const char *uri = o->backend;
	char errmsg[IOASID_ERRMSG_MAX] = "";
	int r;

	if (!uri || !*uri || !strcmp(uri, "auto")) {
		uri = auto_backend();
		if (!uri)
			return -ENODEV;
		say(LOG_NOTICE, "backend %s (chosen from this host's devices)",
		    uri);
	}

	if (!strncmp(uri, "unix:", 5)) {
		say(LOG_ERR, "backend \"%s\" is not a local backend: ioasidd "
		    "serves auto, iommufd, vfio-type1, sim, sim:TOPOLOGY or "
		    "iommufd:mock", uri);
		return -EINVAL;
	}
	daemon_log.priority = log_level;
	*used = uri;
	r = core_new(&daemon_log, uri, core, errmsg, sizeof(errmsg));
	if (r < 0 && strstr(errmsg, "unknown backend"))
		say(LOG_ERR, "cannot open backend \"%s\": ioasidd serves auto "
		    "(the host's), iommufd, vfio-type1, sim, sim:TOPOLOGY or "
		    "iommufd:mock", uri);
	else if (r < 0)
		say(LOG_ERR, "cannot open backend \"%s\": %s", uri,
		    errmsg[0] ? errmsg : strerror(-r));
	return r;
}

static int load_policy(const struct options *o, struct policy **p)
{
	char errmsg[320];
	int r = policy_load(o->config, !o->config_given, p, errmsg,
			    sizeof(errmsg));

	if (r < 0)
		say(LOG_ERR, "%s", errmsg);
	else if (!(*p)->path[0])
		say(LOG_INFO, "no %s: built-in policy", o->config);
	return r;
}

/*
 * The socket systemd passed (socket activation, or ours from the fd store
 * after a crash), or one of our own (*created), which then goes to the
 * fd store when there is one: clients that connect while a crashed
 * ioasidd restarts wait in its backlog.  @sfds: the store's other
 * descriptors, for the journal.
 */
static int get_socket(const struct options *o, const struct policy *p,
		      bool *created, struct sd_fds *sfds)
{
	char errmsg[256];
	int r = sd_take_fds(sfds, errmsg, sizeof(errmsg));
	int fd;

	*created = false;
	if (r < 0) {
		say(LOG_ERR, "%s", errmsg);
		return r;
	}
	if (sfds->listen_fd >= 0) {
		fd = sfds->listen_fd;
		sfds->listen_fd = -1;
		/* ours: its file goes when we stop */
		*created = sfds->listen_from_store;
		say(LOG_INFO, "%s", *created ? "listening socket from the fd "
		    "store" : "socket-activated");
		return fd;
	}
	fd = make_socket(o->socket_path, o->socket_group ? o->socket_group :
			 p->socket_group, p->socket_mode);
	*created = fd >= 0;
	if (fd >= 0 && sd_has_fdstore() && sd_fdstore("listen", fd) < 0)
		say(LOG_WARNING, "cannot put the listening socket in the fd "
		    "store");
	return fd;
}

/* Crash survival, when a service manager keeps our descriptors. */
static int start_journal(struct server *srv, struct sd_fds *sfds)
{
	int r;

	bool sim = !strcmp(core_backend_name(srv->core), "sim");

	/* iommufd, vfio-type1: the kernel objects survive (kstate.c) */
	if (sd_has_fdstore() &&
	    (!strcmp(core_backend_name(srv->core), "iommufd") ||
	     !strcmp(core_backend_name(srv->core), "vfio-type1"))) {
		return kstate_start(srv, sfds->fds, sfds->names, sfds->nr);
	}
	if (!sd_has_fdstore() || !sim) {
		if (sd_has_fdstore())
			say(LOG_NOTICE, "no crash survival on backend %s: its "
			    "kernel objects cannot be taken over (the "
			    "simulated backend rebuilds from a journal, "
			    "iommufd and vfio-type1 keep their objects in "
			    "the fd store)", core_backend_name(srv->core));
		for (unsigned int i = 0; i < sfds->nr; i++) {
			sd_fdstore_remove(sfds->names[i]);
			close(sfds->fds[i]);
		}
		return 0;
	}
	r = journal_new(srv, &srv->journal);
	if (r < 0)
		return r;
	r = journal_start(srv->journal, sfds->fds, sfds->names, sfds->nr);
	if (r < 0) {
		journal_free(srv->journal);
		srv->journal = NULL;
	}
	return 0;
}

/* The binary we run from, for an upgrade that names none. */
static void find_self(struct server *srv)
{
	const char *del = " (deleted)";
	ssize_t n = readlink("/proc/self/exe", srv->self_exe,
			     sizeof(srv->self_exe) - 1);
	size_t len;

	srv->self_exe[n > 0 ? n : 0] = '\0';
	len = strlen(srv->self_exe);
	/* replaced on disk since: the new file has the same name */
	if (len > strlen(del) && !strcmp(srv->self_exe + len - strlen(del),
					 del))
		srv->self_exe[len - strlen(del)] = '\0';
}

/*
 * Run the server; @core NULL: this process is a live upgrade's successor
 * and takes the core, the socket and the clients over (upgrade.c), and
 * *@core is the core it made.
 */
static int serve(const struct options *o, struct core **core,
		 struct policy *policy, int listen_fd, char *const *argv,
		 const char *backend_uri, bool *created, struct sd_fds *sfds)
{
	char status[128], why[IOASID_ERRMSG_MAX];
	struct server srv;
	int r;

	r = server_init(&srv, *core, &daemon_log, listen_fd, policy);
	srv.config_path = o->config;
	srv.config_missing_ok = !o->config_given;
	srv.no_fastpath = o->no_fastpath;
	srv.argv = argv;
	srv.backend_uri = backend_uri;
	srv.socket_created = *created;
	find_self(&srv);
	if (o->ring_spin_us >= 0)
		srv.ring_spin_ns = (uint64_t)o->ring_spin_us * 1000;
	if (r == 0 && !*core) {
		r = upgrade_adopt(&srv, core, why, sizeof(why));
		if (r < 0) {
			/* the predecessor keeps serving: touch nothing */
			say(LOG_ERR, "upgrade refused: %s", why);
			_exit(EXIT_FAILURE);
		}
		*created = srv.socket_created;
		srv.upgrade_adopted = true;
	}
	if (r == 0 && !srv.upgrade_adopted)
		r = start_journal(&srv, sfds);
	if (r < 0) {
		say(LOG_ERR, "cannot set up the event loop: %s", strerror(-r));
	} else {
		snprintf(status, sizeof(status), "Serving backend %s, %u "
			 "device(s)", core_backend_name(srv.core),
			 core_nr_devices(srv.core));
		say(LOG_NOTICE, "%s on %s", status, o->socket_path);
		sd_ready(status);
		r = server_run(&srv);
		sd_stopping();
	}
	server_fini(&srv);
	journal_free(srv.journal);
	kstate_free(srv.kstate);
	policy_free(srv.policy);	/* may have been reloaded */
	return r;
}

int main(int argc, char **argv)
{
	struct options o = {
		.socket_path = IOASID_DEFAULT_SOCKET,
		.backend = "auto",
		.config = DEFAULT_CONFIG,
		.log_level = LOG_INFO,
		.ring_spin_us = -1,
	};
	struct core *core = NULL;
	struct policy *policy = NULL;
	struct sd_fds sfds = { .listen_fd = -1 };
	const char *uri = NULL;
	bool created = false;
	int fd = -1, r;

	r = parse_options(argc, argv, &o);
	if (r)
		return r > 0 ? EXIT_SUCCESS : 2;
	log_level = o.log_level;
	/* a live upgrade's successor makes no backend: set it here */
	daemon_log.priority = log_level;
	log_to_journal = getenv("JOURNAL_STREAM") != NULL;
	signal(SIGPIPE, SIG_IGN);
	/*
	 * From here on SIGTERM/SIGINT/SIGHUP wait for the event loop's
	 * signalfd: a stop request during start-up is a clean shutdown.
	 */
	block_signals();

	r = load_policy(&o, &policy);
	if (r == 0 && upgrade_requested()) {
		/* a live upgrade's successor: core and socket come handed */
		r = serve(&o, &core, policy, -1, argv, NULL, &created, &sfds);
		policy = NULL;
		goto out;
	}
	if (r == 0)
		r = open_backend(&o, &core, &uri);
	if (r == 0)
		r = fd = get_socket(&o, policy, &created, &sfds);
	if (r >= 0 && geteuid() == 0 && !o.keep_caps &&
	    (r = drop_capabilities()) < 0)
		say(LOG_ERR, "cannot drop capabilities: %s", strerror(-r));
	if (r >= 0) {
		r = serve(&o, &core, policy, fd, argv, uri, &created, &sfds);
		policy = NULL;		/* serve() freed it */
	}
out:
	sd_fds_release(&sfds);
	close_fd(fd);
	if (created)
		unlink(o.socket_path);
	if (core)
		core_free(core);
	policy_free(policy);
	say(r < 0 ? LOG_ERR : LOG_INFO, "exiting%s", r < 0 ? " on error" : "");
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
