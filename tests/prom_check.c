// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * prom_check - a strict parser of the Prometheus text exposition format
 * (version 0.0.4) for tests/test_ioasidctl.sh.
 *
 *   prom_check                      exit 0 when stdin is valid, else print
 *                                   the first error (with its line) and
 *                                   exit 1
 *   prom_check NAME [LABEL=VALUE]... print the value of the one series of
 *                                   NAME whose labels include these; exit
 *                                   1 when none or more than one matches
 *   prom_check -n NAME              print the number of series of NAME
 *
 * Checked: every line is a "# HELP", "# TYPE", other comment or sample
 * line; metric and label names are valid, label values are quoted with
 * only \\, \" and \n escapes, no label name repeats or starts with "__";
 * values are floats as Go's ParseFloat reads them (NaN, +Inf, -Inf too)
 * and the optional timestamp an integer; HELP and TYPE come at most once
 * per family and before its samples; a family's lines are contiguous; a
 * series (name and label set) appears once; TYPE is counter, gauge,
 * histogram, summary or untyped, and a counter's name ends in "_total";
 * the text ends with a newline.  Every sample belongs to a family that
 * has HELP and TYPE (stricter than the format: ioasidctl documents all).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE	4096
#define MAX_FAMILIES	256
#define MAX_SERIES	8192

struct family {
	char name[128];
	bool help, type, samples, closed;
	char kind[16];
};

struct series {
	char *key;			/* name{sorted labels} */
	char *labels;			/* as written, for lookups */
	char name[128];
	char value[64];
};

static struct family fams[MAX_FAMILIES];
static size_t nr_fams;
static struct family *current;
static struct series ser[MAX_SERIES];
static size_t nr_ser;
static unsigned int lineno;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "prom_check: line %u: ", lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static bool name_char(char c, bool first, bool colon)
{
	if (isalpha((unsigned char)c) || c == '_' || (colon && c == ':'))
		return true;
	return !first && isdigit((unsigned char)c);
}

/* A metric (colon) or label name at *p: its length, 0 when none. */
static size_t scan_name(const char *p, bool colon)
{
	size_t n = 0;

	while (p[n] && name_char(p[n], n == 0, colon))
		n++;
	return n;
}

static struct family *family(const char *name, size_t len)
{
	for (size_t i = 0; i < nr_fams; i++)
		if (strlen(fams[i].name) == len &&
		    !strncmp(fams[i].name, name, len))
			return &fams[i];
	if (nr_fams == MAX_FAMILIES || len >= sizeof(fams[0].name))
		die("%s", "too many families or too long a name");
	memcpy(fams[nr_fams].name, name, len);
	fams[nr_fams].name[len] = '\0';
	return &fams[nr_fams++];
}

/* The family @name belongs to: histogram/summary suffixes fold. */
static struct family *family_of_sample(const char *name, size_t len)
{
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		size_t l = strlen(sfx[i]);

		if (len > l && !strncmp(name + len - l, sfx[i], l)) {
			for (size_t f = 0; f < nr_fams; f++)
				if (strlen(fams[f].name) == len - l &&
				    !strncmp(fams[f].name, name, len - l) &&
				    (!strcmp(fams[f].kind, "histogram") ||
				     !strcmp(fams[f].kind, "summary")))
					return &fams[f];
		}
	}
	return family(name, len);
}

/* Makes @f the family being written; a family seen before is an error. */
static void enter(struct family *f)
{
	if (f == current)
		return;
	if (f->closed || f->samples)
		die("family %s is not contiguous", f->name);
	if (current)
		current->closed = true;
	current = f;
}

static bool valid_float(const char *s)
{
	char *end;

	if (!strcmp(s, "NaN") || !strcmp(s, "+Inf") || !strcmp(s, "-Inf") ||
	    !strcmp(s, "Inf"))
		return true;
	if (!*s || isspace((unsigned char)*s))
		return false;
	for (const char *c = s; *c; c++)	/* no hex, no "inf" words */
		if (!strchr("0123456789+-.eE", *c))
			return false;
	errno = 0;
	strtod(s, &end);
	return *end == '\0';
}

static void comment(char *line)
{
	char *p = line + 1, *name;
	size_t len;
	struct family *f;
	bool help;

	while (*p == ' ' || *p == '\t')
		p++;
	help = !strncmp(p, "HELP", 4) && (p[4] == ' ' || p[4] == '\t');
	if (!help && !(!strncmp(p, "TYPE", 4) && (p[4] == ' ' || p[4] == '\t')))
		return;			/* a plain comment */
	p += 4;
	while (*p == ' ' || *p == '\t')
		p++;
	name = p;
	len = scan_name(p, true);
	if (!len)
		die("%s without a metric name", help ? "HELP" : "TYPE");
	p += len;
	if (*p && *p != ' ' && *p != '\t')
		die("bad metric name in '%s'", line);
	while (*p == ' ' || *p == '\t')
		p++;
	f = family(name, len);
	enter(f);
	if (help) {
		if (f->help)
			die("second HELP for %s", f->name);
		f->help = true;
		for (; *p; p++)
			if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
				die("bad escape in HELP of %s", f->name);
			else if (*p == '\\')
				p++;
		return;
	}
	if (f->type)
		die("second TYPE for %s", f->name);
	if (f->samples)
		die("TYPE of %s after its samples", f->name);
	if (strcmp(p, "counter") && strcmp(p, "gauge") &&
	    strcmp(p, "histogram") && strcmp(p, "summary") &&
	    strcmp(p, "untyped"))
		die("unknown TYPE '%s'", p);
	if (!strcmp(p, "counter") &&
	    (len < 6 || strncmp(name + len - 6, "_total", 6)))
		die("counter %s does not end in _total", f->name);
	f->type = true;
	snprintf(f->kind, sizeof(f->kind), "%s", p);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sample(char *line)
{
	char *p = line, *labels[64], key[MAX_LINE + 128], *end;
	size_t len = scan_name(p, true), nl = 0, used;
	struct family *f;
	struct series *s;
	const char *lstart = "";
	size_t llen = 0;

	if (!len)
		die("bad metric name in '%s'", line);
	f = family_of_sample(p, len);
	enter(f);
	if (!f->help || !f->type)
		die("sample of %s without HELP and TYPE", f->name);
	f->samples = true;
	if (nr_ser == MAX_SERIES || len >= sizeof(ser[0].name))
		die("%s", "too many series");
	s = &ser[nr_ser];
	memcpy(s->name, p, len);
	s->name[len] = '\0';
	p += len;
	if (*p == '{') {
		lstart = ++p;
		while (*p != '}') {
			size_t ln = scan_name(p, false);
			char *lab = p;

			if (!ln)
				die("bad label name in '%s'", line);
			if (!strncmp(p, "__", 2))
				die("reserved label name in '%s'", line);
			p += ln;
			if (*p++ != '=' || *p++ != '"')
				die("label without =\"value\" in '%s'", line);
			while (*p && *p != '"') {
				if (*p == '\\') {
					if (p[1] != '\\' && p[1] != '"' &&
					    p[1] != 'n')
						die("bad escape in '%s'", line);
					p++;
				} else if (*p == '\n') {
					die("%s", "newline in a label value");
				}
				p++;
			}
			if (*p++ != '"')
				die("unterminated label value in '%s'", line);
			if (nl == 64)
				die("%s", "too many labels");
			labels[nl] = strndup(lab, (size_t)(p - lab));
			for (size_t i = 0; i < nl; i++)
				if (!strncmp(labels[i], lab, ln + 1))
					die("repeated label in '%s'", line);
			nl++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				die("',' or '}' expected in '%s'", line);
		}
		llen = (size_t)(p - lstart);
		p++;
	}
	if (*p != ' ' && *p != '\t')
		die("no value in '%s'", line);
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strcspn(p, " \t");
	if ((size_t)(end - p) >= sizeof(s->value))
		die("value too long in '%s'", line);
	memcpy(s->value, p, (size_t)(end - p));
	s->value[end - p] = '\0';
	if (!valid_float(s->value))
		die("bad value '%s'", s->value);
	p = end;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p) {			/* a timestamp: an integer (ms) */
		if (*p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			die("bad timestamp in '%s'", line);
		while (isdigit((unsigned char)*p))
			p++;
		if (*p)
			die("trailing text in '%s'", line);
	}
	qsort(labels, nl, sizeof(labels[0]), cmp_str);
	used = (size_t)snprintf(key, sizeof(key), "%s{", s->name);
	for (size_t i = 0; i < nl; i++) {
		used += (size_t)snprintf(key + used, sizeof(key) - used, "%s%s",
					 i ? "," : "", labels[i]);
		free(labels[i]);
	}
	snprintf(key + used, sizeof(key) - used, "}");
	for (size_t i = 0; i < nr_ser; i++)
		if (!strcmp(ser[i].key, key))
			die("series %s appears twice", key);
	s->key = strdup(key);
	s->labels = strndup(lstart, llen);
	nr_ser++;
}

/* Does @s carry LABEL="VALUE" for @want "LABEL=VALUE"? */
static bool has_label(const struct series *s, const char *want)
{
	const char *eq = strchr(want, '=');
	char pat[512];

	if (!eq)
		return false;
	snprintf(pat, sizeof(pat), "%.*s=\"%s\"", (int)(eq - want), want,
		 eq + 1);
	for (const char *p = s->labels; (p = strstr(p, pat)); p++)
		if ((p == s->labels || p[-1] == ',') &&
		    (p[strlen(pat)] == ',' || !p[strlen(pat)]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static char line[MAX_LINE + 2];
	bool count = argc > 1 && !strcmp(argv[1], "-n");
	int a = count ? 2 : 1, found = 0, last = 0;
	size_t n;

	while (fgets(line, sizeof(line), stdin)) {
		lineno++;
		n = strlen(line);
		last = n && line[n - 1] == '\n';
		if (!last && !feof(stdin))
			die("%s", "line too long");
		if (last)
			line[--n] = '\0';
		if (!n)
			continue;
		if (line[0] == '#')
			comment(line);
		else
			sample(line);
	}
	if (!lineno)
		die("%s", "no input");
	if (!last)
		die("%s", "the text does not end with a newline");
	if (a >= argc)
		return 0;
	for (size_t i = 0; i < nr_ser; i++) {
		bool match = !strcmp(ser[i].name, argv[a]);

		for (int l = a + 1; match && l < argc; l++)
			match = has_label(&ser[i], argv[l]);
		if (!match)
			continue;
		if (!count && found++ == 0)
			printf("%s\n", ser[i].value);
		else if (count)
			found++;
	}
	if (count) {
		printf("%d\n", found);
		return 0;
	}
	if (found != 1)
		fprintf(stderr, "prom_check: %d series match %s\n", found,
			argv[a]);
	return found == 1 ? 0 : 1;
}
