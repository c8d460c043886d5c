/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl batch: run many subcommands in one session.
 *
 * Objects belong to the session (the connection to ioasidd, or the
 * embedded context) and vanish with it, so a one-shot "ioasidctl map"
 * cannot leave anything behind.  A batch keeps one session for all its
 * lines: create, map, attach and show in one process.
 *
 * A line is a subcommand with the usual syntax, split like a shell would
 * (blanks, '...', "...", \, # comments), plus:
 *   NAME=COMMAND ...   store what COMMAND made (IOAS or VM id, IOVA, device
 *                      id, bytes) in NAME; later lines use $NAME or ${NAME}
 *   -COMMAND ...       a failure of this line does not stop the batch
 *   !COMMAND ...       this line must fail (for tests): success stops it
 *   echo WORDS...      print the words (not in --json mode)
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl batch [--keep-going] [--echo] [FILE|-]\n"
	"       ioasidctl script FILE\n"
	"\n"
	"Run subcommands, one per line of FILE (default: standard input), in\n"
	"one session, so that what earlier lines create still exists for the\n"
	"later ones.  Lines use the syntax of the command line, plus:\n"
	"\n"
	"  # comment           ignored\n"
	"  NAME=COMMAND ...    store the id, IOVA or byte count COMMAND made\n"
	"                      in NAME; later lines say $NAME or ${NAME}\n"
	"  -COMMAND ...        go on even if this line fails\n"
	"  !COMMAND ...        this line must fail (a success stops the batch)\n"
	"  echo WORDS...       print WORDS (not with --json)\n"
	"\n"
	"The session is subscribed to every event group from its start, so\n"
	"'monitor' prints the events earlier lines caused.  The batch stops at\n"
	"the first failing line with its exit status, unless --keep-going.\n"
	"\n"
	"  -k, --keep-going   run every line; exit with the first failure\n"
	"  -x, --echo         print each line (after \"> \") before running it\n";

#define MAX_VARS	64
#define MAX_WORDS	128

struct var {
	char name[32];
	char value[24];
};

struct batch {
	struct ctl *ctl;
	bool keep_going, echo;
	struct var vars[MAX_VARS];
	unsigned int nr_vars;
};

/* A word being built, and the words of the line. */
struct words {
	char *v[MAX_WORDS];
	int nr;
	char *cur;
	size_t len, cap;
	bool in_word;
};

static void words_free(struct words *w)
{
	for (int i = 0; i < w->nr; i++)
		free(w->v[i]);
	free(w->cur);
	*w = (struct words){ 0 };
}

static int put_char(struct words *w, char c)
{
	if (w->len + 2 > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		char *s = realloc(w->cur, cap);

		if (!s)
			return -ENOMEM;
		w->cur = s;
		w->cap = cap;
	}
	w->cur[w->len++] = c;
	w->cur[w->len] = '\0';
	w->in_word = true;
	return 0;
}

static int put_str(struct words *w, const char *s)
{
	int r = 0;

	w->in_word = true;
	while (*s && r == 0)
		r = put_char(w, *s++);
	return r;
}

static int end_word(struct words *w)
{
	if (!w->in_word)
		return 0;
	if (w->nr == MAX_WORDS)
		return -E2BIG;
	w->v[w->nr++] = w->cur ? w->cur : strdup("");
	w->cur = NULL;
	w->len = w->cap = 0;
	w->in_word = false;
	return w->v[w->nr - 1] ? 0 : -ENOMEM;
}

/* ---- variables ----------------------------------------------------------- */

static const char *var_get(const struct batch *b, const char *name)
{
	for (unsigned int i = 0; i < b->nr_vars; i++)
		if (!strcmp(b->vars[i].name, name))
			return b->vars[i].value;
	return NULL;
}

static int var_set(struct batch *b, const char *name, uint64_t value,
		   bool hex)
{
	struct var *v = NULL;

	for (unsigned int i = 0; i < b->nr_vars && !v; i++)
		if (!strcmp(b->vars[i].name, name))
			v = &b->vars[i];
	if (!v) {
		if (b->nr_vars == MAX_VARS)
			return -ENOSPC;
		v = &b->vars[b->nr_vars++];
		snprintf(v->name, sizeof(v->name), "%s", name);
	}
	snprintf(v->value, sizeof(v->value), hex ? "0x%llx" : "%llu",
		 (unsigned long long)value);
	return 0;
}

static bool is_name(const char *s, size_t len)
{
	if (!len || len >= sizeof(((struct var *)0)->name) ||
	    isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* $NAME or ${NAME} at *p (which points at '$'); advances *p. */
static int expand(struct batch *b, const char **p, struct words *w)
{
	const char *s = *p + 1, *value;
	bool brace = *s == '{';
	char name[32];
	size_t len;

	s += brace;
	for (len = 0; isalnum((unsigned char)s[len]) || s[len] == '_'; len++)
		;
	if (!len && !brace) {		/* a lone '$' */
		(*p)++;
		return put_char(w, '$');
	}
	if (!is_name(s, len) || (brace && s[len] != '}'))
		return ctl_usage(b->ctl, "bad variable reference at '%.20s'",
				 *p);
	memcpy(name, s, len);
	name[len] = '\0';
	value = var_get(b, name);
	if (!value)
		return ctl_usage(b->ctl, "$%s is not set (set it with "
				 "%s=COMMAND ...)", name, name);
	*p = s + len + brace;
	return put_str(w, value) ? -ENOMEM : 0;
}

/* ---- splitting a line ---------------------------------------------------- */

/* Inside "...": backslash escapes \ " $ only; $ expands. */
static int double_quoted(struct batch *b, const char **p, struct words *w)
{
	const char *s = *p + 1;
	int r = 0;

	w->in_word = true;
	while (*s && *s != '"' && r == 0) {
		if (*s == '\\' && s[1] && strchr("\\\"$", s[1])) {
			r = put_char(w, s[1]);
			s += 2;
		} else if (*s == '$') {
			r = expand(b, &s, w);
		} else {
			r = put_char(w, *s++);
		}
	}
	if (r)
		return r;
	if (*s != '"')
		return ctl_usage(b->ctl, "unterminated \" quote");
	*p = s + 1;
	return 0;
}

static int single_quoted(struct batch *b, const char **p, struct words *w)
{
	const char *s = *p + 1;
	int r = 0;

	w->in_word = true;
	while (*s && *s != '\'' && r == 0)
		r = put_char(w, *s++);
	if (r)
		return r;
	if (*s != '\'')
		return ctl_usage(b->ctl, "unterminated ' quote");
	*p = s + 1;
	return 0;
}

static int split_char(struct batch *b, const char **p, struct words *w)
{
	const char *s = *p;

	switch (*s) {
	case '\'':
		return single_quoted(b, p, w);
	case '"':
		return double_quoted(b, p, w);
	case '$':
		return expand(b, p, w);
	case '\\':
		if (!s[1])
			return ctl_usage(b->ctl, "line ends with a backslash");
		*p = s + 2;
		return put_char(w, s[1]);
	case '#':
		if (!w->in_word) {
			*p = s + strlen(s);
			return 0;
		}
		break;
	case ' ':
	case '\t':
	case '\n':
	case '\r':
		*p = s + 1;
		return end_word(w);
	}
	*p = s + 1;
	return put_char(w, *s);
}

/* Splits @line into words; EXIT_OK, EXIT_USAGE or -errno. */
static int split(struct batch *b, const char *line, struct words *w)
{
	int r = 0;

	while (*line && r == 0)
		r = split_char(b, &line, w);
	if (r == 0)
		r = end_word(w);
	if (r == -E2BIG)
		return ctl_usage(b->ctl, "more than %d words", MAX_WORDS);
	return r;
}

/* ---- running a line ------------------------------------------------------ */

enum line_mode { MUST_PASS, MAY_FAIL, MUST_FAIL };

struct line {
	enum line_mode mode;
	char assign[32];		/* NAME of NAME=..., or "" */
	int argc;
	char **argv;
};

/* "-cmd", "!cmd", "NAME=cmd", "NAME= cmd": strips them off the words. */
static int parse_prefixes(struct batch *b, struct words *w, struct line *l)
{
	char *first = w->v[0], *eq;

	l->argv = w->v;
	l->argc = w->nr;
	if (first[0] == '-' && first[1] != '-') {
		l->mode = MAY_FAIL;
		memmove(first, first + 1, strlen(first));
	} else if (first[0] == '!') {
		l->mode = MUST_FAIL;
		memmove(first, first + 1, strlen(first));
	}
	eq = strchr(first, '=');
	if (eq && is_name(first, (size_t)(eq - first))) {
		memcpy(l->assign, first, (size_t)(eq - first));
		l->assign[eq - first] = '\0';
		memmove(first, eq + 1, strlen(eq));
	}
	if (!first[0]) {		/* "-", "!", "NAME=" then a space */
		l->argv++;
		l->argc--;
	}
	if (l->argc < 1)
		return ctl_usage(b->ctl, "no command on the line");
	return EXIT_OK;
}

static int run_echo(struct ctl *ctl, int argc, char **argv)
{
	if (ctl->json)
		return EXIT_OK;
	for (int i = 1; i < argc; i++)
		printf("%s%s", i > 1 ? " " : "", argv[i]);
	putchar('\n');
	return EXIT_OK;
}

static int run_line(struct batch *b, const struct line *l)
{
	struct ctl *ctl = b->ctl;
	bool json = ctl->json;
	int st;

	if (!strcmp(l->argv[0], "batch") || !strcmp(l->argv[0], "script"))
		return ctl_usage(ctl, "a batch cannot run another batch");
	if (!strcmp(l->argv[0], "echo"))
		st = run_echo(ctl, l->argc, l->argv);
	else
		st = ctl_run(ctl, l->argc, l->argv);
	ctl->json = json;		/* a line's --json is its own */
	if (st == EXIT_OK && l->assign[0]) {
		if (!ctl->has_result) {
			ctl_err(ctl, "'%s' makes nothing to store in %s",
				ctl->cmd, l->assign);
			return EXIT_USAGE;
		}
		if (var_set(b, l->assign, ctl->result, ctl->result_is_addr)) {
			ctl_err(ctl, "more than %d variables", MAX_VARS);
			return EXIT_USAGE;
		}
	}
	return st;
}

/* The status of one line after its prefix is taken into account. */
static int judge(struct batch *b, const struct line *l, int st)
{
	if (st == EXIT_UNREACHABLE)
		return st;		/* no session left to go on with */
	switch (l->mode) {
	case MAY_FAIL:
		return EXIT_OK;
	case MUST_FAIL:
		if (st == EXIT_OK) {
			ctl_err(b->ctl, "'%s' was expected to fail but "
				"succeeded", b->ctl->cmd);
			return EXIT_FAIL;
		}
		return EXIT_OK;
	default:
		return st;
	}
}

/*
 * The prefix as written, before the line is split: a line that cannot be
 * split (an unset $var) still fails the way its '-' or '!' says.
 */
static enum line_mode raw_mode(const char *text)
{
	text += strspn(text, " \t");
	if (text[0] == '-' && text[1] != '-')
		return MAY_FAIL;
	return text[0] == '!' ? MUST_FAIL : MUST_PASS;
}

static int do_line(struct batch *b, const char *text)
{
	struct words w = { 0 };
	struct line l = { .mode = MUST_PASS };
	int st;

	snprintf(b->ctl->cmd, sizeof(b->ctl->cmd), "batch");
	st = split(b, text, &w);
	if (st < 0)
		st = ctl_syserr(b->ctl, -st, "batch");
	if (st) {
		words_free(&w);
		l.mode = raw_mode(text);
		return judge(b, &l, st);
	}
	if (!w.nr) {
		words_free(&w);
		return st;
	}
	st = parse_prefixes(b, &w, &l);
	if (st == EXIT_OK) {
		if (b->echo && !b->ctl->json)
			printf("> %.*s\n", (int)strcspn(text, "\n"), text);
		st = judge(b, &l, run_line(b, &l));
		fflush(stdout);
	}
	words_free(&w);
	return st;
}

static int run_file(struct batch *b, FILE *f)
{
	struct ctl *ctl = b->ctl;
	char *text = NULL;
	size_t cap = 0;
	int first = EXIT_OK, st;

	while (getline(&text, &cap, f) >= 0) {
		ctl->line++;
		st = do_line(b, text);
		if (st && !first)
			first = st;
		if (st && (!b->keep_going || st == EXIT_UNREACHABLE))
			break;
	}
	free(text);
	ctl->line = 0;
	return first;
}

int cmd_batch(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "keep-going", no_argument, NULL, 'k' },
		{ "echo", no_argument, NULL, 'x' },
		{ 0 },
	};
	struct batch *b;
	const char *path;
	FILE *f = stdin;
	int c, st;

	b = calloc(1, sizeof(*b));
	if (!b)
		return ctl_syserr(ctl, ENOMEM, "batch");
	b->ctl = ctl;
	while ((c = ctl_opt(ctl, argc, argv, "hkx", opts, usage)) != -1) {
		if (c == 'k') {
			b->keep_going = true;
		} else if (c == 'x') {
			b->echo = true;
		} else {
			free(b);
			return ctl_opt_status(c);
		}
	}
	st = ctl_nargs(ctl, argc, !strcmp(argv[0], "script"), 1);
	path = optind < argc ? argv[optind] : "-";
	if (st == EXIT_OK && strcmp(path, "-")) {
		f = fopen(path, "re");
		if (!f)
			st = ctl_syserr(ctl, errno, "cannot open %s", path);
	}
	if (st == EXIT_OK) {
		ctl->batch = true;
		st = ctl->ctx ? ctl_subscribe_all(ctl) : EXIT_OK;
		if (st == EXIT_OK)
			st = run_file(b, f);
		ctl->batch = false;
	}
	if (f && f != stdin)
		fclose(f);
	free(b);
	return st;
}
