/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ioasidd.conf parser and the per-client verdict (see policy.h). */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy.h"
#include "util/macros.h"

#define LINE_MAX_LEN	4096
#define MAX_SECTIONS	4096
#define MAX_DEVICES	1024

enum policy_key {
	K_ALLOW		= 1 << 0,
	K_DEVICES	= 1 << 1,
	K_MAX_IOAS	= 1 << 2,
	K_MAX_MAPPINGS	= 1 << 3,
	K_MAX_BYTES	= 1 << 4,
	K_MAX_VMS	= 1 << 5,
	K_NONCOHERENT	= 1 << 6,
	K_HINTS		= 1 << 7,
	K_OBSERVE	= 1 << 8,
	K_DEVICE_FDS	= 1 << 9,
	K_MAX_CONVERT	= 1 << 10,
	K_LINGER	= 1 << 11,
};

enum daemon_key {
	D_SOCKET_GROUP	= 1 << 0,
	D_SOCKET_MODE	= 1 << 1,
	D_MAX_CLIENTS	= 1 << 2,
};

/* What a client gets when the file says nothing. */
static const struct policy_limits builtin = {
	.allow = true,
	.max_ioas = 64,
	.max_mappings = 4194304,	/* a 16 GiB guest in 4 KiB pages */
	.max_bytes_mapped = POLICY_UNLIMITED,
	.max_vms = 8,
	.max_conversion_state = 64ULL << 20,	/* 2 TiB shared */
};

/* Root, unless a [user root] section exists. */
static const struct policy_limits root_all = {
	.allow = true,
	.max_ioas = POLICY_UNLIMITED,
	.max_mappings = POLICY_UNLIMITED,
	.max_bytes_mapped = POLICY_UNLIMITED,
	.max_vms = POLICY_UNLIMITED,
	.max_conversion_state = POLICY_UNLIMITED,
	.allow_noncoherent = true,
	.trust_hints = true,
	.observe = true,
	.device_fds = true,
	.all_devices = true,
};

struct parser {
	const char *name;
	unsigned int line;
	char *err;
	size_t errlen;
	struct policy *p;
	struct policy_section *cur;	/* NULL: none yet or [daemon] */
	bool in_daemon, seen_daemon, seen_default;
	uint32_t daemon_set;
};

static int perr(struct parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int perr(struct parser *ps, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "%s:%u: %s", ps->name, ps->line, msg);
	return -EINVAL;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* ---- values -------------------------------------------------------------- */

static int parse_bool(struct parser *ps, const char *key, const char *v,
		      bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
			*out = !strcasecmp(v, yes[i]);
			return 0;
		}
	}
	return perr(ps, "%s: \"%s\" is not yes or no", key, v);
}

static int suffix_shift(char c)
{
	switch (c) {
	case 'K': case 'k': return 10;
	case 'M': case 'm': return 20;
	case 'G': case 'g': return 30;
	case 'T': case 't': return 40;
	}
	return -1;
}

/* A count: digits, "unlimited", and for sizes a K/M/G/T suffix. */
static int parse_count(struct parser *ps, const char *key, const char *v,
		       bool size, uint64_t max, uint64_t *out)
{
	unsigned long long n;
	char *end;
	int shift = 0;

	if (!strcasecmp(v, "unlimited")) {
		*out = POLICY_UNLIMITED;
		return 0;
	}
	if (!isdigit((unsigned char)*v))
		return perr(ps, "%s: \"%s\" is not a number", key, v);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (size && *end && (shift = suffix_shift(*end)) >= 0)
		end++;
	if (*end || errno || shift < 0)
		return perr(ps, "%s: \"%s\" is not a number%s", key, v,
			    size ? " (suffixes: K M G T)" : "");
	if (shift && n > (UINT64_MAX >> shift))
		return perr(ps, "%s: %s is too large", key, v);
	n <<= shift;
	if (n > max)
		return perr(ps, "%s: %s is above the maximum %llu", key, v,
			    (unsigned long long)max);
	*out = n;
	return 0;
}

static void free_devices(struct policy_limits *l)
{
	for (uint32_t i = 0; i < l->nr_devices; i++)
		free(l->devices[i]);
	free(l->devices);
	l->devices = NULL;
	l->nr_devices = 0;
}

static int valid_device_token(const char *t)
{
	if (strlen(t) >= IOASID_NAME_MAX)
		return 0;
	for (; *t; t++)
		if (!isgraph((unsigned char)*t))
			return 0;
	return 1;
}

/* "none", "*"/"all", or names and globs separated by blanks or commas. */
static int parse_devices(struct parser *ps, char *v, struct policy_limits *l)
{
	char *save = NULL;

	free_devices(l);
	l->all_devices = false;
	if (!strcasecmp(v, "none"))
		return 0;
	if (!strcmp(v, "*") || !strcasecmp(v, "all")) {
		l->all_devices = true;
		return 0;
	}
	for (char *t = strtok_r(v, " \t,", &save); t;
	     t = strtok_r(NULL, " \t,", &save)) {
		char **grown;

		if (!valid_device_token(t) || !strcasecmp(t, "none") ||
		    !strcasecmp(t, "all"))
			return perr(ps, "devices: bad device name or pattern "
				    "\"%s\"", t);
		if (l->nr_devices == MAX_DEVICES)
			return perr(ps, "devices: more than %d entries",
				    MAX_DEVICES);
		grown = realloc(l->devices, (l->nr_devices + 1) *
				sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		l->devices = grown;
		l->devices[l->nr_devices] = strdup(t);
		if (!l->devices[l->nr_devices])
			return -ENOMEM;
		l->nr_devices++;
	}
	return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static int set_once(struct parser *ps, uint32_t *set, uint32_t bit,
		    const char *key)
{
	if (*set & bit)
		return perr(ps, "%s given twice in this section", key);
	*set |= bit;
	return 0;
}

/* The keys of a limits section that take one number or one yes/no. */
enum key_kind { KEY_COUNT, KEY_SIZE, KEY_BOOL };

#define LIMIT(f)	offsetof(struct policy_limits, f)

static const struct limit_keydef {
	const char *name;
	uint32_t bit;
	enum key_kind kind;
	uint64_t max;		/* counts and sizes */
	size_t off;		/* the field in struct policy_limits */
} limit_keys[] = {
	{ "max-ioas", K_MAX_IOAS, KEY_COUNT, UINT32_MAX, LIMIT(max_ioas) },
	{ "max-mappings", K_MAX_MAPPINGS, KEY_COUNT, UINT64_MAX,
	  LIMIT(max_mappings) },
	{ "max-bytes-mapped", K_MAX_BYTES, KEY_SIZE, UINT64_MAX,
	  LIMIT(max_bytes_mapped) },
	{ "max-vms", K_MAX_VMS, KEY_COUNT, UINT32_MAX, LIMIT(max_vms) },
	{ "max-conversion-state", K_MAX_CONVERT, KEY_SIZE, UINT64_MAX,
	  LIMIT(max_conversion_state) },
	{ "allow", K_ALLOW, KEY_BOOL, 0, LIMIT(allow) },
	{ "allow-noncoherent", K_NONCOHERENT, KEY_BOOL, 0,
	  LIMIT(allow_noncoherent) },
	{ "trust-hints", K_HINTS, KEY_BOOL, 0, LIMIT(trust_hints) },
	{ "observe", K_OBSERVE, KEY_BOOL, 0, LIMIT(observe) },
	{ "device-fds", K_DEVICE_FDS, KEY_BOOL, 0, LIMIT(device_fds) },
};

static const struct limit_keydef *find_limit_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(limit_keys); i++)
		if (!strcmp(key, limit_keys[i].name))
			return &limit_keys[i];
	return NULL;
}

static int parse_limit(struct parser *ps, const struct limit_keydef *k,
		       const char *v, struct policy_limits *l)
{
	void *field = (char *)l + k->off;

	if (k->kind == KEY_BOOL)
		return parse_bool(ps, k->name, v, field);
	return parse_count(ps, k->name, v, k->kind == KEY_SIZE, k->max,
			   field);
}

static int limit_key(struct parser *ps, const char *key, char *v,
		     struct policy_limits *l)
{
	const struct limit_keydef *k = find_limit_key(key);

	if (k)
		return set_once(ps, &l->set, k->bit, key) ?:
		       parse_limit(ps, k, v, l);
	/* seconds, never "unlimited" */
	if (!strcmp(key, "linger")) {
		if (set_once(ps, &l->set, K_LINGER, key) ||
		    parse_count(ps, key, v, false, IOASID_SESSION_LINGER_MAX,
				&l->linger))
			return -EINVAL;
		if (l->linger == POLICY_UNLIMITED)
			return perr(ps, "linger: seconds, at most %u",
				    IOASID_SESSION_LINGER_MAX);
		return 0;
	}
	if (!strcmp(key, "devices"))
		return set_once(ps, &l->set, K_DEVICES, key) ?:
		       parse_devices(ps, v, l);
	return perr(ps, "unknown key \"%s\"", key);
}

/* A decimal id: 1 when @s is one (in *@id), 0 when it is a name, -EINVAL. */
static int parse_id(const char *s, uint32_t *id)
{
	unsigned long n;
	char *end;

	if (!isdigit((unsigned char)*s))
		return 0;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end || errno || n >= UINT32_MAX)
		return -EINVAL;
	*id = (uint32_t)n;
	return 1;
}

static int resolve_group(const char *s, uint32_t *gid)
{
	struct group *g;
	int r = parse_id(s, gid);

	if (r)
		return r < 0 ? r : 0;
	g = getgrnam(s);
	if (!g)
		return -ENOENT;
	*gid = g->gr_gid;
	return 0;
}

static int resolve_user(const char *s, uint32_t *uid)
{
	struct passwd *pw;
	int r = parse_id(s, uid);

	if (r)
		return r < 0 ? r : 0;
	pw = getpwnam(s);
	if (!pw)
		return -ENOENT;
	*uid = pw->pw_uid;
	return 0;
}

static int daemon_key(struct parser *ps, const char *key, char *v)
{
	struct policy *p = ps->p;
	uint64_t n;
	uint32_t gid;
	char *end;

	if (!strcmp(key, "socket-group")) {
		if (set_once(ps, &ps->daemon_set, D_SOCKET_GROUP, key))
			return -EINVAL;
		if (strlen(v) >= sizeof(p->socket_group) ||
		    resolve_group(v, &gid) < 0)
			return perr(ps, "socket-group: no group \"%s\"", v);
		snprintf(p->socket_group, sizeof(p->socket_group), "%s", v);
		return 0;
	}
	if (!strcmp(key, "socket-mode")) {
		if (set_once(ps, &ps->daemon_set, D_SOCKET_MODE, key))
			return -EINVAL;
		errno = 0;
		n = strtoull(v, &end, 8);
		if (!isdigit((unsigned char)*v) || *end || errno || n > 0777)
			return perr(ps, "socket-mode: \"%s\" is not an octal "
				    "mode like 0660", v);
		p->socket_mode = (uint32_t)n;
		return 0;
	}
	if (!strcmp(key, "max-clients")) {
		if (set_once(ps, &ps->daemon_set, D_MAX_CLIENTS, key) ||
		    parse_count(ps, key, v, false, 65536, &n))
			return -EINVAL;
		if (!n || n == POLICY_UNLIMITED)
			return perr(ps, "max-clients: must be 1 to 65536");
		p->max_clients = (uint32_t)n;
		return 0;
	}
	return perr(ps, "unknown key \"%s\" in [daemon]", key);
}

/* ---- sections ------------------------------------------------------------ */

static struct policy_section *find_section(struct policy *p,
					   enum policy_section_kind kind,
					   uint32_t id)
{
	for (size_t i = 0; i < p->nr_sections; i++)
		if (p->sections[i].kind == kind && p->sections[i].id == id)
			return &p->sections[i];
	return NULL;
}

static int add_section(struct parser *ps, enum policy_section_kind kind,
		       const char *who)
{
	struct policy *p = ps->p;
	struct policy_section *s, *grown;
	uint32_t id;
	int r;

	r = kind == POLICY_USER ? resolve_user(who, &id) :
				  resolve_group(who, &id);
	if (r < 0)
		return perr(ps, "no %s \"%s\"",
			    kind == POLICY_USER ? "user" : "group", who);
	s = find_section(p, kind, id);
	if (s)
		return perr(ps, "%s already has a section at line %u",
			    who, s->line);
	if (p->nr_sections == MAX_SECTIONS)
		return perr(ps, "more than %d sections", MAX_SECTIONS);
	grown = realloc(p->sections, (p->nr_sections + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->sections = grown;
	s = &p->sections[p->nr_sections++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->id = id;
	s->line = ps->line;
	snprintf(s->label, sizeof(s->label), "%s %s",
		 kind == POLICY_USER ? "user" : "group", who);
	ps->cur = s;
	return 0;
}

static int section_line(struct parser *ps, char *line)
{
	size_t len = strlen(line);
	char *inner, *arg;

	if (line[len - 1] != ']')
		return perr(ps, "section header lacks its ']'");
	line[len - 1] = '\0';
	inner = trim(line + 1);
	arg = inner + strcspn(inner, " \t");
	if (*arg)
		*arg++ = '\0';
	arg = trim(arg);
	ps->in_daemon = false;
	ps->cur = NULL;
	if (!strcmp(inner, "daemon") || !strcmp(inner, "default")) {
		bool is_daemon = !strcmp(inner, "daemon");
		bool *seen = is_daemon ? &ps->seen_daemon : &ps->seen_default;

		if (*arg)
			return perr(ps, "[%s] takes no argument", inner);
		if (*seen)
			return perr(ps, "[%s] given twice", inner);
		*seen = true;
		ps->in_daemon = is_daemon;
		ps->cur = is_daemon ? NULL : &ps->p->def;
		return 0;
	}
	if (strcmp(inner, "user") && strcmp(inner, "group"))
		return perr(ps, "unknown section [%s] (known: daemon, "
			    "default, user NAME, group NAME)", inner);
	if (!*arg)
		return perr(ps, "[%s] needs a name or id", inner);
	return add_section(ps, inner[0] == 'u' ? POLICY_USER : POLICY_GROUP,
			   arg);
}

static int key_line(struct parser *ps, char *line)
{
	char *eq = strchr(line, '='), *key, *value;

	if (!eq)
		return perr(ps, "expected \"key = value\" or [section]");
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!*key)
		return perr(ps, "missing key before '='");
	if (!*value)
		return perr(ps, "%s: missing value", key);
	if (ps->in_daemon)
		return daemon_key(ps, key, value);
	if (!ps->cur)
		return perr(ps, "\"%s\" outside of any section", key);
	return limit_key(ps, key, value, &ps->cur->lim);
}

static int parse_line(struct parser *ps, char *raw)
{
	char *line;

	raw[strcspn(raw, "#")] = '\0';
	line = trim(raw);
	if (!*line)
		return 0;
	if (*line == '[')
		return section_line(ps, line);
	return key_line(ps, line);
}

static struct policy *policy_alloc(const char *path)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->socket_mode = 0660;
	p->max_clients = 1024;
	p->def.kind = POLICY_DEFAULT;
	snprintf(p->def.label, sizeof(p->def.label), "default");
	snprintf(p->path, sizeof(p->path), "%s", path ? path : "");
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nr_sections; i++)
		free_devices(&p->sections[i].lim);
	free_devices(&p->def.lim);
	free(p->sections);
	free(p);
}

static int parse_stream(struct parser *ps, FILE *f)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	while ((n = getline(&buf, &cap, f)) >= 0) {
		ps->line++;
		if (n > LINE_MAX_LEN) {
			r = perr(ps, "line longer than %d bytes",
				 LINE_MAX_LEN);
			break;
		}
		if ((size_t)n != strlen(buf)) {
			r = perr(ps, "NUL byte in line");
			break;
		}
		r = parse_line(ps, buf);
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}

static int parse_file(FILE *f, const char *name, const char *path,
		      struct policy **out, char *errmsg, size_t errlen)
{
	struct parser ps = {
		.name = name, .err = errmsg, .errlen = errlen,
	};
	int r;

	ps.p = policy_alloc(path);
	if (!ps.p)
		return -ENOMEM;
	r = parse_stream(&ps, f);
	if (r == -ENOMEM)
		snprintf(errmsg, errlen, "%s: out of memory", name);
	if (r < 0) {
		policy_free(ps.p);
		return r;
	}
	*out = ps.p;
	return 0;
}

int policy_parse(const char *text, const char *name, struct policy **out,
		 char *errmsg, size_t errlen)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	if (!f)
		return -errno;
	r = parse_file(f, name, NULL, out, errmsg, errlen);
	fclose(f);
	return r;
}

int policy_load(const char *path, bool missing_ok, struct policy **out,
		char *errmsg, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f && errno == ENOENT && missing_ok) {
		*out = policy_alloc(NULL);
		return *out ? 0 : -ENOMEM;
	}
	if (!f) {
		r = -errno;
		snprintf(errmsg, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	r = parse_file(f, path, path, out, errmsg, errlen);
	fclose(f);
	return r;
}

/* ---- verdicts ------------------------------------------------------------ */

static void overlay(struct policy_limits *dst, const struct policy_limits *src)
{
	uint32_t s = src->set;

	if (s & K_ALLOW)
		dst->allow = src->allow;
	if (s & K_MAX_IOAS)
		dst->max_ioas = src->max_ioas;
	if (s & K_MAX_MAPPINGS)
		dst->max_mappings = src->max_mappings;
	if (s & K_MAX_BYTES)
		dst->max_bytes_mapped = src->max_bytes_mapped;
	if (s & K_MAX_VMS)
		dst->max_vms = src->max_vms;
	if (s & K_MAX_CONVERT)
		dst->max_conversion_state = src->max_conversion_state;
	if (s & K_NONCOHERENT)
		dst->allow_noncoherent = src->allow_noncoherent;
	if (s & K_HINTS)
		dst->trust_hints = src->trust_hints;
	if (s & K_OBSERVE)
		dst->observe = src->observe;
	if (s & K_DEVICE_FDS)
		dst->device_fds = src->device_fds;
	if (s & K_LINGER)
		dst->linger = src->linger;
	if (s & K_DEVICES) {
		dst->all_devices = src->all_devices;
		dst->devices = src->devices;
		dst->nr_devices = src->nr_devices;
	}
}

static bool in_groups(uint32_t id, gid_t gid, const gid_t *groups,
		      size_t nr_groups)
{
	if (id == gid)
		return true;
	for (size_t i = 0; i < nr_groups; i++)
		if (groups[i] == id)
			return true;
	return false;
}

static void verdict(const struct policy *p, const struct policy_section *s,
		    struct policy_result *res)
{
	res->lim = builtin;
	overlay(&res->lim, &p->def.lim);
	if (s)
		overlay(&res->lim, &s->lim);
	res->lim.set = 0;
	res->allow = res->lim.allow;
	snprintf(res->label, sizeof(res->label), "%s",
		 s ? s->label : "default");
}

void policy_lookup(const struct policy *p, uid_t uid, gid_t gid,
		   const gid_t *groups, size_t nr_groups,
		   struct policy_result *res)
{
	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < p->nr_sections; i++) {
		if (p->sections[i].kind == POLICY_USER &&
		    p->sections[i].id == uid)
			return verdict(p, &p->sections[i], res);
	}
	if (uid == 0) {
		res->lim = root_all;
		res->allow = true;
		snprintf(res->label, sizeof(res->label), "root");
		return;
	}
	for (size_t i = 0; i < p->nr_sections; i++) {
		if (p->sections[i].kind == POLICY_GROUP &&
		    in_groups(p->sections[i].id, gid, groups, nr_groups))
			return verdict(p, &p->sections[i], res);
	}
	verdict(p, NULL, res);
}

/* ---- session limits ------------------------------------------------------ */

static int add_name(struct session_limits *l, const char *name)
{
	char **grown;

	for (uint32_t i = 0; i < l->nr_devices; i++)
		if (!strcmp(l->devices[i], name))
			return 0;
	grown = realloc(l->devices, (l->nr_devices + 2) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	l->devices = grown;
	l->devices[l->nr_devices] = strdup(name);
	if (!l->devices[l->nr_devices])
		return -ENOMEM;
	l->devices[++l->nr_devices] = NULL;
	return 0;
}

static int add_pattern(struct session_limits *l, const char *pat,
		       const char *const *names, size_t nr_names)
{
	int r = add_name(l, pat);

	if (r < 0 || !strpbrk(pat, "*?["))
		return r;
	for (size_t i = 0; i < nr_names && r == 0; i++)
		if (!fnmatch(pat, names[i], 0))
			r = add_name(l, names[i]);
	return r;
}

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int policy_session_limits(const struct policy_result *res,
			  const char *const *names, size_t nr_names,
			  struct session_limits *l)
{
	const struct policy_limits *pl = &res->lim;
	int r = 0;

	memset(l, 0, sizeof(*l));
	l->max_ioas = clamp32(pl->max_ioas);
	l->max_mappings = pl->max_mappings;
	l->max_bytes_mapped = pl->max_bytes_mapped;
	l->max_vms = clamp32(pl->max_vms);
	l->max_conversion_state = pl->max_conversion_state;
	l->allow_noncoherent = pl->allow_noncoherent;
	l->trust_hints = pl->trust_hints;
	l->may_observe = pl->observe;
	l->may_get_fds = pl->device_fds;
	if (pl->all_devices)
		return 0;		/* devices NULL: all of them */
	/* never NULL from here on: an empty list means none */
	l->devices = calloc(1, sizeof(*l->devices));
	if (!l->devices)
		return -ENOMEM;
	for (uint32_t i = 0; i < pl->nr_devices && r == 0; i++)
		r = add_pattern(l, pl->devices[i], names, nr_names);
	if (r < 0)
		policy_limits_release(l);
	return r;
}

void policy_limits_release(struct session_limits *l)
{
	if (l->devices)
		for (uint32_t i = 0; i < l->nr_devices; i++)
			free(l->devices[i]);
	free(l->devices);
	l->devices = NULL;
	l->nr_devices = 0;
}
