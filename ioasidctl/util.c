/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl helpers: sizes, tables, JSON, errno names. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

/* ---- time ------------------------------------------------------------- */

/* The wall-clock time of a CLOCK_MONOTONIC stamp, as clock_gettime(). */
struct timespec mono_to_wall(uint64_t mono_ns)
{
	struct timespec now_real, now_mono, t;
	int64_t ns;

	clock_gettime(CLOCK_REALTIME, &now_real);
	clock_gettime(CLOCK_MONOTONIC, &now_mono);
	ns = (int64_t)now_real.tv_sec * 1000000000LL + now_real.tv_nsec -
	     ((int64_t)now_mono.tv_sec * 1000000000LL + now_mono.tv_nsec) +
	     (int64_t)mono_ns;
	t.tv_sec = (time_t)(ns / 1000000000LL);
	t.tv_nsec = (long)(ns % 1000000000LL);
	return t;
}

/* "2026-12-02T10:00:00.123456+01:00", local time (ISO 8601). */
void mono_iso_time(uint64_t mono_ns, char *buf, size_t len)
{
	struct timespec t = mono_to_wall(mono_ns);
	struct tm tm;
	char date[32], zone[8];

	localtime_r(&t.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);	/* +0100 */
	snprintf(buf, len, "%s.%06ld%.3s:%s", date, t.tv_nsec / 1000, zone,
		 zone + 3);
}

/* ---- numbers and sizes ------------------------------------------------ */

static const char size_units[] = "KMGTPE";

/* Digits of @s in @base up to the first non-digit; -ERANGE on overflow. */
static int scan_digits(const char **s, unsigned int base, uint64_t *out,
		       unsigned int *ndigits)
{
	uint64_t v = 0;
	unsigned int n = 0;

	for (;; (*s)++, n++) {
		unsigned int d;
		char c = **s;

		if (c >= '0' && c <= '9')
			d = (unsigned int)(c - '0');
		else if (base == 16 && isxdigit((unsigned char)c))
			d = (unsigned int)(tolower((unsigned char)c) - 'a' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	*ndigits = n;
	return 0;
}

int str_to_u64(const char *s, uint64_t *out)
{
	unsigned int base = 10, n;
	uint64_t v;
	int r;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	r = scan_digits(&s, base, &v, &n);
	if (r < 0)
		return r;
	if (!n || *s)
		return -EINVAL;
	*out = v;
	return 0;
}

int str_to_u32(const char *s, uint32_t *out)
{
	uint64_t v;
	int r = str_to_u64(s, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

/* "K", "KiB" or "KB" style suffix: the shift, or -1. */
static int unit_shift(const char *s)
{
	const char *u;

	if (!*s || !strcasecmp(s, "B"))
		return 0;
	u = strchr(size_units, toupper((unsigned char)*s));
	if (!u)
		return -1;
	s++;
	if (!strcmp(s, "") || !strcasecmp(s, "iB") || !strcasecmp(s, "B"))
		return 10 * (int)(u - size_units + 1);
	return -1;
}

/* value * 2^shift + fraction (digits after the point) * 2^shift */
static int scale(uint64_t whole, uint64_t frac, unsigned int frac_digits,
		 int shift, uint64_t *out)
{
	uint64_t den = 1, part;

	if (shift && whole > (UINT64_MAX >> shift))
		return -ERANGE;
	whole <<= shift;
	if (!frac_digits) {
		*out = whole;
		return 0;
	}
	for (unsigned int i = 0; i < frac_digits; i++) {
		if (den > UINT64_MAX / 10)
			return -ERANGE;
		den *= 10;
	}
	/* frac < den <= 10^19 and shift <= 60: split to stay in range */
	if (frac > (UINT64_MAX >> shift))
		return -ERANGE;
	part = frac << shift;
	if (part % den)
		return -ERANGE;		/* not a whole number of bytes */
	if (whole > UINT64_MAX - part / den)
		return -ERANGE;
	*out = whole + part / den;
	return 0;
}

static int one_size(const char *s, uint64_t *out);

static int sum_of_sizes(const char *s, uint64_t *out);

/*
 * A size, sizes joined by '+', or a size less sizes joined by '-', as
 * size_str() prints them (2M+4K, 16E-512G, 4G-4K-1B: the first may be 16E
 * itself, 2^64).
 */
int str_to_size(const char *s, uint64_t *out)
{
	const char *minus = s ? strchr(s, '-') : NULL;
	char top[32], less[64];
	uint64_t a, b;
	size_t len;
	int r;

	if (!minus)
		return sum_of_sizes(s, out);
	len = (size_t)(minus - s);
	if (!len || len >= sizeof(top) || memchr(s, '+', len) ||
	    strchr(minus, '+') || strlen(minus + 1) >= sizeof(less))
		return -EINVAL;
	memcpy(top, s, len);
	top[len] = '\0';
	/* what follows is subtracted part by part: a sum of its parts */
	snprintf(less, sizeof(less), "%s", minus + 1);
	for (char *p = less; *p; p++)
		if (*p == '-')
			*p = '+';
	r = sum_of_sizes(less, &b);
	if (r < 0)
		return r;
	if (!b)
		return -EINVAL;
	if (!strcmp(top, "16E") || !strcasecmp(top, "16EiB")) {
		*out = 0 - b;		/* 2^64 - b */
		return 0;
	}
	r = one_size(top, &a);
	if (r < 0)
		return r;
	if (b > a)
		return -ERANGE;
	*out = a - b;
	return 0;
}

static int sum_of_sizes(const char *s, uint64_t *out)
{
	char buf[64], *part, *save = NULL;
	uint64_t sum = 0, v;
	int r;

	if (!s || !strchr(s, '+'))
		return one_size(s, out);
	if (strlen(s) >= sizeof(buf) || s[0] == '+' || s[strlen(s) - 1] == '+' ||
	    strstr(s, "++"))
		return -EINVAL;
	strcpy(buf, s);
	for (part = strtok_r(buf, "+", &save); part;
	     part = strtok_r(NULL, "+", &save)) {
		r = one_size(part, &v);
		if (r < 0)
			return r;
		if (sum > UINT64_MAX - v)
			return -ERANGE;
		sum += v;
	}
	*out = sum;
	return 0;
}

static int one_size(const char *s, uint64_t *out)
{
	uint64_t whole, frac = 0;
	unsigned int n, nfrac = 0;
	int shift, r;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return str_to_u64(s, out);
	r = scan_digits(&s, 10, &whole, &n);
	if (r < 0)
		return r;
	if (!n)
		return -EINVAL;
	if (*s == '.') {
		s++;
		r = scan_digits(&s, 10, &frac, &nfrac);
		if (r < 0)
			return r;
		if (!nfrac)
			return -EINVAL;
	}
	shift = unit_shift(s);
	if (shift < 0 || (nfrac && !shift))
		return -EINVAL;
	return scale(whole, frac, nfrac, shift, out);
}

/* The parts of @bytes, largest unit first, joined by @sep; how many. */
static int size_parts(uint64_t bytes, char sep, char *buf, size_t len,
		      int max)
{
	size_t used = 0;
	uint64_t left = bytes;
	int parts = 0;

	buf[0] = '\0';
	for (int i = (int)sizeof(size_units) - 2; i >= -1 && left; i--) {
		unsigned int shift = 10 * (unsigned int)(i + 1);
		uint64_t n = left >> shift;

		if (!n)
			continue;
		if (++parts > max)
			break;
		used += (size_t)snprintf(buf + used, len - used, "%.*s%llu%c",
					 used ? 1 : 0, &sep,
					 (unsigned long long)n,
					 i < 0 ? 'B' : size_units[i]);
		left -= n << shift;
	}
	return parts;
}

/*
 * Exact: the whole units of the largest unit that fits, then what is left
 * in smaller units, joined by '+' (2M+4K, 4K+1B).  A size that needs more
 * than three parts is the next whole number of that largest unit less at
 * most two parts, when that does it (16E-512G: from 512 GiB below the top
 * of a 64-bit space to its end; 4G-4K-1B), else it is given in bytes
 * (so that a size never looks rounder than it is, and every page counts).
 * str_to_size() reads all of them.
 */
struct str32 size_str(uint64_t bytes)
{
	struct str32 out, rest;

	if (!bytes || size_parts(bytes, '+', out.s, sizeof(out.s), 3) <= 3) {
		if (!bytes)
			snprintf(out.s, sizeof(out.s), "0B");
		return out;
	}
	for (int i = (int)sizeof(size_units) - 2; i >= 0; i--) {
		unsigned int shift = 10 * (unsigned int)(i + 1);
		uint64_t n = bytes >> shift, up;

		if (!n)
			continue;
		/* (n + 1) units, less bytes: modulo 2^64 when that is 16E */
		up = (n + 1) << shift;
		if (size_parts(up - bytes, '-', rest.s, sizeof(rest.s), 2) <= 2) {
			/* at most "1024E-1023P-1023T": it fits */
			char tmp[64];

			snprintf(tmp, sizeof(tmp), "%llu%c-%s",
				 (unsigned long long)(n + 1), size_units[i],
				 rest.s);
			memcpy(out.s, tmp, sizeof(out.s) - 1);
			out.s[sizeof(out.s) - 1] = '\0';
			return out;
		}
		break;
	}
	snprintf(out.s, sizeof(out.s), "%lluB", (unsigned long long)bytes);
	return out;
}

struct str32 hex_str(uint64_t v, bool wide)
{
	struct str32 out;

	snprintf(out.s, sizeof(out.s), wide ? "0x%016llx" : "0x%llx",
		 (unsigned long long)v);
	return out;
}

void page_sizes_str(uint64_t mask, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned int bit = 0; bit < 64 && used < len; bit++) {
		if (!(mask & (1ULL << bit)))
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 used ? "," : "",
					 size_str(1ULL << bit).s);
	}
	if (!buf[0])
		snprintf(buf, len, "-");
}

/* ---- errno ------------------------------------------------------------ */

#define E(x) { x, #x }
static const struct {
	int num;
	const char *name;
} errno_names[] = {
	E(EPERM), E(ENOENT), E(EINTR), E(EIO), E(E2BIG), E(EBADF),
	E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY), E(EEXIST),
	E(ENODEV), E(EINVAL), E(ENOSPC), E(EPIPE), E(ERANGE), E(EPROTO),
	E(EOVERFLOW), E(EMSGSIZE), E(EPROTONOSUPPORT), E(EOPNOTSUPP),
	E(EADDRINUSE), E(ENOTCONN), E(ECONNRESET), E(ECONNREFUSED),
	E(ETIMEDOUT),
};
#undef E

struct str32 errno_name(int errnum)
{
	struct str32 out;

	if (errnum < 0)
		errnum = -errnum;
	for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++) {
		if (errno_names[i].num == errnum) {
			snprintf(out.s, sizeof(out.s), "%s",
				 errno_names[i].name);
			return out;
		}
	}
	snprintf(out.s, sizeof(out.s), "E%d", errnum);
	return out;
}

/* ---- table ------------------------------------------------------------ */

void table_init(struct table *t, const char *const *headers,
		unsigned int ncols)
{
	*t = (struct table){ .ncols = ncols, .headers = headers };
}

void table_cell(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *cell;

	if (t->failed)
		return;
	if (t->nr_cells == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **v = realloc(t->cells, cap * sizeof(*v));

		if (!v) {
			t->failed = true;
			return;
		}
		t->cells = v;
		t->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&cell, fmt, ap) < 0)
		t->failed = true;
	else
		t->cells[t->nr_cells++] = cell;
	va_end(ap);
}

static const char *header_text(const struct table *t, unsigned int col)
{
	const char *h = t->headers[col];

	return h[0] == '>' ? h + 1 : h;
}

static void print_row(const struct table *t, FILE *f, const char *indent,
		      const char *const *cells, const size_t *width)
{
	fputs(indent, f);
	for (unsigned int c = 0; c < t->ncols; c++) {
		bool right = t->headers[c][0] == '>';
		bool last = c + 1 == t->ncols;
		int w = (int)width[c];

		if (c)
			fputs("  ", f);
		if (right)
			fprintf(f, "%*s", w, cells[c]);
		else if (last)
			fputs(cells[c], f);
		else
			fprintf(f, "%-*s", w, cells[c]);
	}
	fputc('\n', f);
}

int table_print(struct table *t, FILE *f, const char *indent)
{
	const char *hdr[32];
	size_t width[32] = { 0 };

	if (t->failed || t->ncols > ARRAY_SIZE(hdr))
		return -ENOMEM;
	for (unsigned int c = 0; c < t->ncols; c++) {
		hdr[c] = header_text(t, c);
		width[c] = strlen(hdr[c]);
	}
	for (size_t i = 0; i < t->nr_cells; i++) {
		size_t len = strlen(t->cells[i]);

		if (len > width[i % t->ncols])
			width[i % t->ncols] = len;
	}
	print_row(t, f, indent, hdr, width);
	for (size_t i = 0; i + t->ncols <= t->nr_cells; i += t->ncols)
		print_row(t, f, indent, (const char *const *)&t->cells[i],
			  width);
	return 0;
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nr_cells; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nr_cells = t->cap = 0;
}

/* ---- JSON ------------------------------------------------------------- */

void json_init(struct json *j, FILE *f, bool pretty)
{
	*j = (struct json){ .f = f, .pretty = pretty };
	j->first[0] = true;
}

static void json_indent(struct json *j)
{
	if (!j->pretty)
		return;
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* Comma, line break and key before a value. */
static void json_key(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	if (j->depth)
		json_indent(j);
	j->first[j->depth] = false;
	if (key) {
		json_write_string(j->f, key);
		fputs(j->pretty ? ": " : ":", j->f);
	}
}

static void json_open(struct json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct json *j, char c)
{
	bool empty = j->first[j->depth];

	if (j->depth)
		j->depth--;
	if (!empty)
		json_indent(j);
	fputc(c, j->f);
}

void json_obj_begin(struct json *j, const char *key)
{
	json_open(j, key, '{');
}

void json_obj_end(struct json *j)
{
	json_close(j, '}');
}

void json_arr_begin(struct json *j, const char *key)
{
	json_open(j, key, '[');
}

void json_arr_end(struct json *j)
{
	json_close(j, ']');
}

void json_str(struct json *j, const char *key, const char *value)
{
	json_key(j, key);
	json_write_string(j->f, value ? value : "");
}

void json_u64(struct json *j, const char *key, uint64_t value)
{
	json_key(j, key);
	fprintf(j->f, "%llu", (unsigned long long)value);
}

void json_bool(struct json *j, const char *key, bool value)
{
	json_key(j, key);
	fputs(value ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
	json_key(j, key);
	fputs("null", j->f);
}

void json_id(struct json *j, const char *key, uint32_t id)
{
	if (id)
		json_u64(j, key, id);
	else
		json_null(j, key);
}

void json_finish(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
	json_init(j, j->f, j->pretty);
}

/* Length of the valid UTF-8 sequence at @s, or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static void json_escape_char(FILE *f, unsigned char c)
{
	switch (c) {
	case '"':
		fputs("\\\"", f);
		break;
	case '\\':
		fputs("\\\\", f);
		break;
	case '\b':
		fputs("\\b", f);
		break;
	case '\f':
		fputs("\\f", f);
		break;
	case '\n':
		fputs("\\n", f);
		break;
	case '\r':
		fputs("\\r", f);
		break;
	case '\t':
		fputs("\\t", f);
		break;
	default:
		if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

void json_write_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n = utf8_len(s);

		if (n == 0) {
			fputs("\\ufffd", f);
			s++;
		} else if (n == 1) {
			json_escape_char(f, *s++);
		} else {
			fwrite(s, 1, n, f);
			s += n;
		}
	}
	fputc('"', f);
}
