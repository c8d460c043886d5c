/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl: helpers every subcommand uses on top of libioasid: opening
 * the context, options, messages, argument parsing and the library's
 * list calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ioasid/proto.h>

#include "ioasidctl.h"

/* ---- context ------------------------------------------------------------- */

/*
 * Through ioasidd, ask to see every client's objects (read-only): the
 * point of ioasidctl is to show the daemon's state, not its own empty
 * session.  The daemon's policy may refuse; then lists are per session.
 */
static void observe(struct ctl *ctl)
{
	const char *why;

	if (ctl->own_only || !ioasid_is_remote(ctl->ctx))
		return;
	if (ioasid_set_observer(ctl->ctx, 1) == 0) {
		ctl->observer = true;
		return;
	}
	why = ioasid_last_error(ctl->ctx);
	snprintf(ctl->observe_why, sizeof(ctl->observe_why), "%s",
		 why && *why ? why : "the daemon does not offer it");
}

int ctl_open(struct ctl *ctl)
{
	const char *why;
	int r;

	if (ctl->ctx)
		return EXIT_OK;
	if (!ctl->base_uri)
		ctl->base_uri = ctl->uri;
	r = ioasid_new(ctl->base_uri, &ctl->ctx);
	if (r == 0 && ctl->session) {
		/* reachable: what fails now is the session's, exit 1 */
		ioasid_unref(ctl->ctx);
		r = ioasid_new(ctl->uri, &ctl->ctx);
		if (r < 0) {
			why = ioasid_last_error(NULL);
			ctl_err(ctl, "session %s: %s", ctl->session,
				why && *why ? why : strerror(-r));
			if (r == -ENOENT || r == -EACCES)
				fprintf(stderr, "(ioasidctl session drop %s, or "
					"removing %s, starts session %s "
					"afresh.)\n", ctl->session,
					ctl->token_file, ctl->session);
			ctl->ctx = NULL;
			return EXIT_FAIL;
		}
	}
	if (r < 0) {
		why = ioasid_last_error(NULL);
		ctl_err(ctl, "cannot reach %s: %s", ctl->base_uri,
			why && *why ? why : strerror(-r));
		if (!strncmp(ctl->base_uri, "unix:", 5))
			fprintf(stderr, "(\"--uri sim\" runs the simulated "
				"IOMMU inside ioasidctl, without ioasidd.)\n");
		ctl->ctx = NULL;
		return EXIT_UNREACHABLE;
	}
	r = ctl_session_check(ctl);
	if (r)
		return r;
	observe(ctl);
	if (ctl->batch)
		return ctl_subscribe_all(ctl);
	return EXIT_OK;
}

void ctl_note_session_view(struct ctl *ctl, const char *what)
{
	static bool said;

	if (said || ctl->observer || ctl->own_only || ctl->json ||
	    !ioasid_is_remote(ctl->ctx))
		return;
	said = true;
	fprintf(stderr, "ioasidctl: only this session's %s are shown: %s\n",
		what, ctl->observe_why);
}

int ctl_subscribe_all(struct ctl *ctl)
{
	const uint32_t old = IOASID_EVENT_GROUP_FAULT |
			     IOASID_EVENT_GROUP_DEVICE |
			     IOASID_EVENT_GROUP_COHERENCY;
	int r;

	if (ctl->subscribed)
		return EXIT_OK;
	r = ioasid_event_subscribe(ctl->ctx,
				   old | IOASID_EVENT_GROUP_SESSION);
	if (r == -EOPNOTSUPP)	/* a daemon older than session events */
		r = ioasid_event_subscribe(ctl->ctx, old);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot subscribe to events");
	ctl->subscribed = true;
	return EXIT_OK;
}

/* ---- messages ------------------------------------------------------------ */

/*
 * With --json an error is one JSON object on a line of stderr (stdout
 * keeps only results): {"error":{"errno":2,"name":"ENOENT","message":...}}
 * plus "line" in a batch; ioasidctl(8) documents it.
 */
static void json_error(struct ctl *ctl, const char *msg)
{
	int e = ctl->err > 0 ? ctl->err : EINVAL;

	fprintf(stderr, "{\"error\":{\"errno\":%d,\"name\":\"%s\",", e,
		errno_name(-e).s);
	if (ctl->line)
		fprintf(stderr, "\"line\":%u,", ctl->line);
	fputs("\"message\":\"", stderr);
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(stderr, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(stderr, "\\u%04x", *p);
		else
			fputc(*p, stderr);
	}
	fputs("\"}}\n", stderr);
}

static void vmsg(struct ctl *ctl, const char *fmt, va_list ap)
{
	char msg[1024];

	fflush(stdout);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (ctl->json) {
		json_error(ctl, msg);
	} else {
		fputs("ioasidctl: ", stderr);
		if (ctl->line)
			fprintf(stderr, "line %u: ", ctl->line);
		fprintf(stderr, "%s\n", msg);
	}
	ctl->err = 0;
}

void ctl_err(struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(ctl, fmt, ap);
	va_end(ap);
}

int ctl_usage(struct ctl *ctl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl->err = EINVAL;
	ctl_err(ctl, "%s: %s", ctl->cmd[0] ? ctl->cmd : "usage", msg);
	if (!ctl->json)
		fprintf(stderr, "Try 'ioasidctl %s%s--help'.\n", ctl->cmd,
			ctl->cmd[0] ? " " : "");
	return EXIT_USAGE;
}

static bool connection_lost(int r)
{
	return r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN ||
	       r == -ECONNREFUSED;
}

/*
 * An object that is not there, in a context that lives only as long as
 * this one command: say so once, the likeliest reason (a newcomer's
 * "ioas create" then "ioas show 1" as two commands).
 */
static void embedded_hint(struct ctl *ctl, int r)
{
	static bool said;

	if (r != -ENOENT || said || ctl->json || ctl->batch || !ctl->ctx ||
	    ioasid_is_remote(ctl->ctx))
		return;
	said = true;
	fprintf(stderr, "ioasidctl: (%s runs inside this ioasidctl: it starts "
		"empty and its objects end with the command; run the commands "
		"in one 'batch', or keep them in ioasidd with --session NAME)\n",
		ctl->uri);
}

int ctl_fail(struct ctl *ctl, int r, const char *fmt, ...)
{
	const char *why = ioasid_last_error(ctl->ctx);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl->err = -r;
	/* the library's sentence (alone when it already names the object:
	 * "no IOAS 99", not "IOAS 99: no IOAS 99"); its argument checks
	 * leave none */
	if (why && *why && strstr(why, msg))
		ctl_err(ctl, "%s", why);
	else if (why && *why)
		ctl_err(ctl, "%s: %s", msg, why);
	else
		ctl_err(ctl, "%s: %s (%s)", msg, strerror(-r),
			errno_name(r).s);
	embedded_hint(ctl, r);
	return connection_lost(r) ? EXIT_UNREACHABLE : EXIT_FAIL;
}

int ctl_syserr(struct ctl *ctl, int errnum, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl->err = errnum;
	ctl_err(ctl, "%s: %s", msg, strerror(errnum));
	return EXIT_FAIL;
}

void ctl_set_result(struct ctl *ctl, uint64_t value)
{
	ctl->has_result = true;
	ctl->result_is_addr = false;
	ctl->result = value;
}

void ctl_set_result_addr(struct ctl *ctl, uint64_t iova)
{
	ctl_set_result(ctl, iova);
	ctl->result_is_addr = true;
}

/* ---- options ------------------------------------------------------------- */

/* Edit distance of two short strings (for "did you mean"). */
static unsigned int distance(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b);
	unsigned int row[64], prev, tmp;

	if (la >= 64 || lb >= 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned int)j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (unsigned int)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned int best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

/* The long option nearest to --@arg (at most 2 edits), or NULL. */
static const char *nearest_option(const char *arg,
				  const struct option *longopts)
{
	size_t len = strcspn(arg, "=");
	const char *best = NULL;
	unsigned int best_d = 3;

	for (const struct option *o = longopts; o && o->name; o++) {
		unsigned int d = distance(arg, len, o->name);

		if (d < best_d) {
			best_d = d;
			best = o->name;
		}
	}
	return best;
}

static int opt_error(struct ctl *ctl, int c, char **argv,
		     const struct option *longopts, const char *what)
{
	const char *arg = argv[optind - 1];
	const char *near;

	if (c == '?' && arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9')
		ctl_usage(ctl, "'%s' is not an option, nor a valid argument "
			  "(ids, sizes and addresses are never negative)", arg);
	else if (optopt && optopt < 0x100 && (arg[0] != '-' || arg[1] != '-'))
		ctl_usage(ctl, "option '-%c' %s", optopt, what);
	else if (c == '?' && arg[0] == '-' && arg[1] == '-' &&
		 (near = nearest_option(arg + 2, longopts)))
		ctl_usage(ctl, "option '%s' %s; did you mean '--%s'?", arg,
			  what, near);
	else
		ctl_usage(ctl, "option '%s' %s", arg, what);
	return CTL_OPT_ERROR;
}

int ctl_opt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
	    const struct option *longopts, const char *usage)
{
	char spec[64];
	int c;

	/* a leading '+' (stop at the first argument) must stay first */
	if (shortopts[0] == '+')
		snprintf(spec, sizeof(spec), "+:%s", shortopts + 1);
	else
		snprintf(spec, sizeof(spec), ":%s", shortopts);
	opterr = 0;
	ctl->usage = usage;
	ctl->argv = argv;
	for (;;) {
		c = getopt_long(argc, argv, spec, longopts, NULL);
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return CTL_OPT_HELP;
		case OPT_JSON:
			ctl->json = true;
			continue;
		case ':':
			return opt_error(ctl, c, argv, longopts,
					 "needs an argument");
		case '?':
			return opt_error(ctl, c, argv, longopts, "is not known");
		default:
			return c;
		}
	}
}

int ctl_opt_status(int opt)
{
	return opt == CTL_OPT_HELP ? EXIT_OK : EXIT_USAGE;
}

int ctl_nargs(struct ctl *ctl, int argc, int min, int max)
{
	const char *u = ctl->usage, *end;
	int n = argc - optind;

	/* the arguments it takes: the usage's first line */
	if (u && !strncmp(u, "Usage: ", 7)) {
		u += 7;
		end = strchr(u, '\n');
	} else {
		u = NULL;
		end = NULL;
	}
	if (n < min && u)
		return ctl_usage(ctl, "too few arguments (%.*s)",
				 (int)(end ? end - u : (long)strlen(u)), u);
	if (n < min)
		return ctl_usage(ctl, "too few arguments");
	if (n > max && ctl->argv)
		return ctl_usage(ctl, "unexpected argument '%s'",
				 ctl->argv[optind + max]);
	if (n > max)
		return ctl_usage(ctl, "unexpected argument");
	return EXIT_OK;
}

/* ---- arguments ----------------------------------------------------------- */

int ctl_parse_id(struct ctl *ctl, const char *what, const char *arg,
		 uint32_t *id)
{
	if (str_to_u32(arg, id) < 0 || !*id)
		return ctl_usage(ctl, "'%s' is not a valid %s (a number "
				 "greater than 0)", arg, what);
	return EXIT_OK;
}

int ctl_parse_size(struct ctl *ctl, const char *what, const char *arg,
		   uint64_t *v)
{
	if (str_to_size(arg, v) < 0)
		return ctl_usage(ctl, "'%s' is not a valid %s (bytes, 0x hex, "
				 "or a size like 4K, 2M, 1.5G)", arg, what);
	return EXIT_OK;
}

int ctl_parse_range(struct ctl *ctl, const char *arg,
		    struct ioasid_iova_range *range)
{
	const char *sep = strpbrk(arg, "-+");
	char start[32];
	uint64_t a, b;

	if (!sep || (size_t)(sep - arg) >= sizeof(start))
		return ctl_usage(ctl, "'%s' is not a range (START-LAST or "
				 "START+LENGTH)", arg);
	memcpy(start, arg, (size_t)(sep - arg));
	start[sep - arg] = '\0';
	if (str_to_size(start, &a) < 0 || str_to_size(sep + 1, &b) < 0 ||
	    (*sep == '+' && (!b || a + (b - 1) < a)) ||
	    (*sep == '-' && b < a))
		return ctl_usage(ctl, "'%s' is not a valid range", arg);
	range->start = a;
	range->last = *sep == '+' ? a + (b - 1) : b;
	return EXIT_OK;
}

void ctl_device_name(const char *arg, char *name, size_t len)
{
	unsigned int bus, dev, fn;
	char end;

	/* "BB:DD.F" without the PCI domain: assume domain 0000 */
	if (strlen(arg) == 7 &&
	    sscanf(arg, "%2x:%2x.%1x%c", &bus, &dev, &fn, &end) == 3)
		snprintf(name, len, "0000:%s", arg);
	else
		snprintf(name, len, "%s", arg);
}

int ctl_device_info(struct ctl *ctl, const char *arg,
		    struct ioasid_device_info *info)
{
	char name[IOASID_NAME_MAX];
	int r;

	if (strlen(arg) >= sizeof(name))
		return ctl_usage(ctl, "'%s' is not a device name", arg);
	ctl_device_name(arg, name, sizeof(name));
	r = ioasid_device_get_info(ctl->ctx, name, info);
	if (r < 0)
		return ctl_fail(ctl, r, "device %s", name);
	return EXIT_OK;
}

int ctl_bind(struct ctl *ctl, const char *arg, uint32_t *dev_id,
	     struct ioasid_device_info *info)
{
	int r, st;

	st = ctl_device_info(ctl, arg, info);
	if (st)
		return st;
	/* bound here; another session's (observed) answers EBUSY below */
	if ((info->flags & IOASID_DEVICE_BOUND) &&
	    !(info->flags & IOASID_DEVICE_OTHER_SESSION)) {
		*dev_id = info->dev_id;
		return EXIT_OK;
	}
	r = ioasid_device_bind(ctl->ctx, info->name, -1, dev_id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot bind %s", info->name);
	r = ioasid_device_get_info(ctl->ctx, info->name, info);
	if (r < 0)
		return ctl_fail(ctl, r, "device %s", info->name);
	return EXIT_OK;
}

/* ---- lists --------------------------------------------------------------- */

typedef int (*list_fn)(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr);

/* Calls @fn until the array is big enough (the list may grow meanwhile). */
static int list_all(struct ctl *ctl, list_fn fn, uint32_t arg, size_t elem,
		    void **out, uint32_t *nr_out)
{
	uint32_t cap = 16, nr;
	void *v = NULL;
	int r;

	for (int tries = 0; tries < 8; tries++) {
		void *bigger = realloc(v, cap * elem);

		if (!bigger) {
			free(v);
			return -ENOMEM;
		}
		v = bigger;
		nr = cap;
		r = fn(ctl, arg, v, &nr);
		if (r == 0) {
			*out = v;
			*nr_out = nr;
			return 0;
		}
		if (r != -EMSGSIZE)
			break;
		cap = nr > cap ? nr + 16 : cap * 2;
	}
	free(v);
	return r;
}

static int devices_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_device_list(ctl->ctx, v, nr);
}

static int iommus_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_iommu_list(ctl->ctx, v, nr);
}

static int ioas_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_ioas_list(ctl->ctx, v, nr);
}

static int domains_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_domain_list(ctl->ctx, arg, v, nr);
}

static int nested_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_nested_list(ctl->ctx, arg, v, nr);
}

static int viommus_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_viommu_list(ctl->ctx, arg, v, nr);
}

static int vdevices_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_vdevice_list(ctl->ctx, arg, v, nr);
}

static int vms_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_vm_list(ctl->ctx, v, nr);
}

static int sessions_fn(struct ctl *ctl, uint32_t arg, void *v, uint32_t *nr)
{
	return ioasid_session_list(ctl->ctx, v, nr);
}

const char *ctl_name_of_device(const struct ioasid_device_info *d,
			       uint32_t nr, uint32_t dev_id, const char *none)
{
	for (uint32_t i = 0; i < nr; i++)
		if (d[i].dev_id == dev_id)
			return d[i].name;
	return none;
}

int ctl_list_devices(struct ctl *ctl, struct ioasid_device_info **v,
		     uint32_t *nr)
{
	return list_all(ctl, devices_fn, 0, sizeof(**v), (void **)v, nr);
}

int ctl_list_iommus(struct ctl *ctl, struct ioasid_iommu_info **v,
		    uint32_t *nr)
{
	return list_all(ctl, iommus_fn, 0, sizeof(**v), (void **)v, nr);
}

int ctl_list_ioas(struct ctl *ctl, uint32_t **ids, uint32_t *nr)
{
	return list_all(ctl, ioas_fn, 0, sizeof(**ids), (void **)ids, nr);
}

int ctl_list_domains(struct ctl *ctl, uint32_t ioas_id,
		     struct ioasid_domain_info **v, uint32_t *nr)
{
	return list_all(ctl, domains_fn, ioas_id, sizeof(**v), (void **)v, nr);
}

int ctl_list_nested(struct ctl *ctl, uint32_t ioas_id,
		    struct ioasid_nested_info **v, uint32_t *nr)
{
	return list_all(ctl, nested_fn, ioas_id, sizeof(**v), (void **)v, nr);
}

int ctl_list_viommus(struct ctl *ctl, uint32_t ioas_id,
		     struct ioasid_viommu_info **v, uint32_t *nr)
{
	return list_all(ctl, viommus_fn, ioas_id, sizeof(**v), (void **)v, nr);
}

int ctl_list_vdevices(struct ctl *ctl, uint32_t ioas_id,
		      struct ioasid_vdevice_info **v, uint32_t *nr)
{
	return list_all(ctl, vdevices_fn, ioas_id, sizeof(**v), (void **)v,
			nr);
}

int ctl_list_vms(struct ctl *ctl, uint32_t **ids, uint32_t *nr)
{
	return list_all(ctl, vms_fn, 0, sizeof(**ids), (void **)ids, nr);
}

int ctl_list_sessions(struct ctl *ctl, struct ioasid_session_info **v,
		      uint32_t *nr)
{
	return list_all(ctl, sessions_fn, 0, sizeof(**v), (void **)v, nr);
}

/* ---- words for flags ----------------------------------------------------- */

/* By bit number of enum ioasid_device_flags. */
const char *const device_cap_names[14] = {
	"vfio", "no-snoop", "no-snoop-unknown", "ats", "translates",
	"simulated", "bound", "attached", "noncoherent", "no-snoop-hinted",
	"group-viable", "removed", "kvm-file", "other-session",
};

/* By bit number of enum ioasid_platform_flags. */
const char *const platform_names[3] = {
	"iova", "restricted", "access-platform",
};

const char *snoop_mode_name(uint32_t mode)
{
	switch (mode) {
	case IOASID_SNOOP_AUTO:
		return "auto";
	case IOASID_SNOOP_ENFORCE:
		return "enforce";
	case IOASID_SNOOP_ALLOW:
		return "allow";
	default:
		return "unknown";
	}
}

const char *fault_reason_name(uint32_t reason)
{
	switch (reason) {
	case IOASID_FAULT_NOT_PRESENT:
		return "not-present";
	case IOASID_FAULT_PERMISSION:
		return "permission";
	case IOASID_FAULT_BUS_ERROR:
		return "bus-error";
	case IOASID_FAULT_PRIVATE:
		return "private";
	case IOASID_FAULT_BLOCKED:
		return "blocked";
	case IOASID_FAULT_GROUP_NOT_VIABLE:
		return "group-not-viable";
	case IOASID_FAULT_RESERVED_BIT:
		return "reserved-bit";
	default:
		return "unknown";
	}
}

const char *file_kind_name(uint32_t kind)
{
	switch (kind) {
	case IOASID_FILE_MEMFD:
		return "memfd";
	case IOASID_FILE_TMPFS:
		return "tmpfs";
	case IOASID_FILE_HUGETLBFS:
		return "hugetlbfs";
	case IOASID_FILE_GUEST_MEMFD:
		return "guest_memfd";
	case IOASID_FILE_MEMFD_HUGETLB:
		return "memfd-hugetlb";
	default:
		return "unknown";
	}
}

const char *prot_str(uint32_t flags)
{
	static const char *const s[] = { "--", "r-", "-w", "rw" };

	return s[flags & (IOASID_MAP_READ | IOASID_MAP_WRITE)];
}

void flag_words(uint32_t flags, const char *const *names, size_t n,
		char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t bit = 0; bit < n && used < len; bit++)
		if (flags & (1U << bit))
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
						 used ? "," : "", names[bit]);
	if (!buf[0])
		snprintf(buf, len, "-");
}

void json_flag_words(struct json *j, const char *key, uint32_t flags,
		     const char *const *names, size_t n)
{
	json_arr_begin(j, key);
	for (size_t bit = 0; bit < n; bit++)
		if (flags & (1U << bit))
			json_str(j, NULL, names[bit]);
	json_arr_end(j);
}

int ctl_dispatch_group(struct ctl *ctl, const struct cmd *table, size_t n,
		       const char *group, const char *usage, const char *dflt,
		       int argc, char **argv)
{
	char *dflt_argv[] = { (char *)dflt, NULL };

	if (argc == 1 || (argc == 2 && !strcmp(argv[1], "--json"))) {
		if (argc == 2)
			ctl->json = true;
		argc = 1;
		argv = dflt_argv;
	} else {
		argc--;
		argv++;
	}
	return ctl_dispatch(ctl, table, n, group, usage, argc, argv);
}
