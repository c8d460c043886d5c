/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json_check - validate JSON on standard input and pick values out of it,
 * for tests/test_ioasidctl.sh (python3 and jq are not guaranteed).
 *
 *   json_check                    exit 0 when stdin is one or more JSON
 *                                 documents (RFC 8259), 1 otherwise
 *   json_check -n                 print the number of documents
 *   json_check [-d N] PATH...     print the value at each PATH of document
 *                                 N (default 0), one per line
 *   json_check -l                 list every leaf of every document, one
 *                                 per line: "DOC PATH KIND VALUE", KIND
 *                                 null, bool, number or string (to check
 *                                 how a kind of value is encoded everywhere)
 *
 * PATH: .key and [index] steps, e.g. .devices[0].name; a trailing # gives
 * the number of members of an object or array.  Strings are printed
 * unescaped, numbers and literals as written, objects and arrays as
 * "{...}" / "[...]".  A missing path prints nothing and exits 1.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEPTH 64

enum kind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct node {
	enum kind kind;
	char *text;			/* number/literal text, string value */
	char *key;			/* member name inside an object */
	struct node **kids;
	size_t nr;
};

struct parser {
	const char *s;
	size_t pos, len;
	const char *err;
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "json_check: out of memory\n");
		exit(2);
	}
	return p;
}

static struct node *new_node(enum kind kind)
{
	struct node *n = xrealloc(NULL, sizeof(*n));

	*n = (struct node){ .kind = kind };
	return n;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]))
		p->pos++;
}

static bool fail(struct parser *p, const char *why)
{
	if (!p->err)
		p->err = why;
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool read_hex4(struct parser *p, unsigned int *cp)
{
	*cp = 0;
	for (int i = 0; i < 4; i++) {
		int v = p->pos < p->len ? hexval(p->s[p->pos]) : -1;

		if (v < 0)
			return fail(p, "bad \\u escape");
		*cp = *cp << 4 | (unsigned int)v;
		p->pos++;
	}
	return true;
}

static void put_utf8(char **buf, size_t *len, unsigned int cp)
{
	char out[4];
	size_t n;

	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		out[0] = (char)(0xf0 | cp >> 18);
		out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, out, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static bool escape(struct parser *p, char **buf, size_t *len)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned int cp, lo;
	const char *e;

	if (p->pos >= p->len)
		return fail(p, "truncated escape");
	e = strchr(from, p->s[p->pos]);
	if (e && *e) {
		p->pos++;
		put_utf8(buf, len, (unsigned char)to[e - from]);
		return true;
	}
	if (p->s[p->pos++] != 'u' || !read_hex4(p, &cp))
		return fail(p, "bad escape");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(p, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->pos + 2 > p->len || p->s[p->pos] != '\\' ||
		    p->s[p->pos + 1] != 'u')
			return fail(p, "lone high surrogate");
		p->pos += 2;
		if (!read_hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
			return fail(p, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	put_utf8(buf, len, cp);
	return true;
}

/* Checks one UTF-8 sequence at the cursor and copies it. */
static bool utf8(struct parser *p, char **buf, size_t *len)
{
	const unsigned char *s = (const unsigned char *)p->s + p->pos;
	size_t n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;

	if (s[0] < 0xc2 || s[0] > 0xf4 || p->pos + n > p->len)
		return fail(p, "invalid UTF-8");
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return fail(p, "invalid UTF-8");
	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	p->pos += n;
	return true;
}

static bool string(struct parser *p, char **out)
{
	char *buf = xrealloc(NULL, 1);
	size_t len = 0;
	bool ok = true;

	buf[0] = '\0';
	p->pos++;			/* the opening quote */
	while (ok) {
		unsigned char c;

		if (p->pos >= p->len) {
			ok = fail(p, "unterminated string");
			break;
		}
		c = (unsigned char)p->s[p->pos];
		if (c == '"')
			break;
		if (c < 0x20) {
			ok = fail(p, "control character in string");
		} else if (c == '\\') {
			p->pos++;
			ok = escape(p, &buf, &len);
		} else if (c >= 0x80) {
			ok = utf8(p, &buf, &len);
		} else {
			put_utf8(&buf, &len, c);
			p->pos++;
		}
	}
	if (!ok) {
		free(buf);
		return false;
	}
	p->pos++;
	*out = buf;
	return true;
}

static size_t digits(struct parser *p)
{
	size_t n = 0;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		p->pos++;
		n++;
	}
	return n;
}

static bool number(struct parser *p, struct node *n)
{
	size_t start = p->pos;

	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else if (!digits(p))
		return fail(p, "bad number");
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (!digits(p))
			return fail(p, "bad fraction");
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && strchr("+-", p->s[p->pos]))
			p->pos++;
		if (!digits(p))
			return fail(p, "bad exponent");
	}
	n->text = strndup(p->s + start, p->pos - start);
	return true;
}

static bool literal(struct parser *p, struct node *n)
{
	static const char *const words[] = { "true", "false", "null" };

	for (size_t i = 0; i < 3; i++) {
		size_t len = strlen(words[i]);

		if (p->len - p->pos >= len &&
		    !strncmp(p->s + p->pos, words[i], len)) {
			n->kind = i < 2 ? J_BOOL : J_NULL;
			n->text = strdup(words[i]);
			p->pos += len;
			return true;
		}
	}
	return fail(p, "unexpected character");
}

static bool value(struct parser *p, struct node **out, int depth);

static bool members(struct parser *p, struct node *n, int depth, char close)
{
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return true;
	}
	for (;;) {
		char *key = NULL;
		struct node *kid;

		skip_ws(p);
		if (close == '}') {
			if (p->pos >= p->len || p->s[p->pos] != '"' ||
			    !string(p, &key))
				return fail(p, "object key expected");
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos++] != ':') {
				free(key);
				return fail(p, "':' expected");
			}
		}
		if (!value(p, &kid, depth + 1)) {
			free(key);
			return false;
		}
		kid->key = key;
		n->kids = xrealloc(n->kids, (n->nr + 1) * sizeof(*n->kids));
		n->kids[n->nr++] = kid;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			return true;
		}
		return fail(p, "',' or end of container expected");
	}
}

static bool value(struct parser *p, struct node **out, int depth)
{
	struct node *n;
	char c;

	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, "value expected");
	if (depth > MAX_DEPTH)
		return fail(p, "nested too deep");
	c = p->s[p->pos];
	n = new_node(J_NUM);
	*out = n;
	if (c == '{' || c == '[') {
		n->kind = c == '{' ? J_OBJ : J_ARR;
		p->pos++;
		return members(p, n, depth, c == '{' ? '}' : ']');
	}
	if (c == '"') {
		n->kind = J_STR;
		return string(p, &n->text);
	}
	if (c == '-' || (c >= '0' && c <= '9'))
		return number(p, n);
	return literal(p, n);
}

/* ---- paths -------------------------------------------------------------- */

static const struct node *step(const struct node *n, const char **path)
{
	const char *s = *path;
	char key[256];
	size_t len;

	if (*s == '.') {
		s++;
		len = strcspn(s, ".[#");
		if (!n || n->kind != J_OBJ || len >= sizeof(key))
			return NULL;
		memcpy(key, s, len);
		key[len] = '\0';
		*path = s + len;
		for (size_t i = 0; i < n->nr; i++)
			if (!strcmp(n->kids[i]->key, key))
				return n->kids[i];
		return NULL;
	}
	if (*s == '[') {
		char *end;
		unsigned long idx = strtoul(s + 1, &end, 10);

		if (*end != ']' || !n || n->kind != J_ARR || idx >= n->nr)
			return NULL;
		*path = end + 1;
		return n->kids[idx];
	}
	return NULL;
}

static bool query(const struct node *n, const char *path)
{
	while (n && *path && *path != '#')
		n = step(n, &path);
	if (!n)
		return false;
	if (*path == '#') {
		if (n->kind != J_ARR && n->kind != J_OBJ)
			return false;
		printf("%zu\n", n->nr);
	} else if (n->kind == J_ARR || n->kind == J_OBJ) {
		printf("%s\n", n->kind == J_ARR ? "[...]" : "{...}");
	} else {
		printf("%s\n", n->text);
	}
	return true;
}

static const char *const kind_names[] = {
	[J_NULL] = "null", [J_BOOL] = "bool", [J_NUM] = "number",
	[J_STR] = "string",
};

/* Prints every leaf under @n, its path built in @path (of @len bytes). */
static void list_leaves(size_t doc, const struct node *n, char *path,
			size_t used, size_t len)
{
	if (n->kind != J_ARR && n->kind != J_OBJ) {
		printf("%zu %s %s %s\n", doc, used ? path : ".",
		       kind_names[n->kind], n->text ? n->text : "");
		return;
	}
	for (size_t i = 0; i < n->nr; i++) {
		int w = n->kind == J_OBJ ?
			snprintf(path + used, len - used, ".%s", n->kids[i]->key) :
			snprintf(path + used, len - used, "[%zu]", i);

		if (w < 0 || (size_t)w >= len - used)
			continue;	/* too deep to name: not listed */
		list_leaves(doc, n->kids[i], path, used + (size_t)w, len);
		path[used] = '\0';
	}
}

static void free_node(struct node *n)
{
	for (size_t i = 0; i < n->nr; i++)
		free_node(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n->key);
	free(n);
}

/* Leaves without freeing a half-built tree (no leak report for it). */
static void die(void)
{
	fflush(stdout);
	_exit(1);
}

static char *read_all(size_t *len)
{
	size_t cap = 65536, n;
	char *buf = xrealloc(NULL, cap);

	*len = 0;
	while ((n = fread(buf + *len, 1, cap - *len, stdin)) > 0) {
		*len += n;
		if (*len == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	return buf;
}

int main(int argc, char **argv)
{
	struct parser p = { 0 };
	struct node *docs[4096];
	size_t nr = 0, want = 0;
	bool count = false, leaves = false, ok = true;
	int a = 1;

	if (a < argc && !strcmp(argv[a], "-n")) {
		count = true;
		a++;
	} else if (a < argc && !strcmp(argv[a], "-l")) {
		leaves = true;
		a++;
	} else if (a + 1 < argc && !strcmp(argv[a], "-d")) {
		want = strtoul(argv[a + 1], NULL, 10);
		a += 2;
	}
	p.s = read_all(&p.len);
	for (skip_ws(&p); p.pos < p.len && nr < 4096; skip_ws(&p)) {
		if (!value(&p, &docs[nr++], 0)) {
			fprintf(stderr, "json_check: invalid JSON at byte %zu: "
				"%s\n", p.pos, p.err);
			die();
		}
	}
	if (!nr) {
		fprintf(stderr, "json_check: no JSON document\n");
		return 1;
	}
	if (count)
		printf("%zu\n", nr);
	for (size_t i = 0; leaves && i < nr; i++) {
		char path[4096] = "";

		list_leaves(i, docs[i], path, 0, sizeof(path));
	}
	for (; a < argc; a++) {
		if (want >= nr || !query(docs[want], argv[a])) {
			fprintf(stderr, "json_check: no %s in document %zu\n",
				argv[a], want);
			ok = false;
		}
	}
	for (size_t i = 0; i < nr; i++)
		free_node(docs[i]);
	free((char *)p.s);
	return ok ? 0 : 1;
}
