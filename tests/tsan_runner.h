/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Criterion, or under ThreadSanitizer a minimal stand-in for it.
 *
 * Criterion's sandbox maps its shared arena at random fixed addresses that
 * collide with ThreadSanitizer's shadow memory (Criterion issue #274), so
 * TSan builds run the same tests with this runner: each test in a forked
 * child, assertions exit(1), skips exit(77).  Only the macros the
 * simulated-hardware tests use exist.
 */
#ifndef IOASID_TESTS_TSAN_RUNNER_H
#define IOASID_TESTS_TSAN_RUNNER_H

#if defined(__SANITIZE_THREAD__) && !defined(SIM_TEST_FORCE_CRITERION)
/*
 * Criterion's sandbox maps its shared arena at random fixed addresses that
 * collide with ThreadSanitizer's shadow memory (Criterion issue #274), so
 * TSan builds run the same tests with this minimal stand-in: each test in
 * a forked child, assertions exit(1), skips exit(77).
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
struct shim_test {
	const char *name;
	void (*fn)(void);
	struct shim_test *next;
};
static struct shim_test *shim_tests, **shim_tail = &shim_tests;
#define Test(s, n, ...)							\
	static void s##_##n(void);					\
	static struct shim_test s##_##n##_t = { #s "::" #n, s##_##n, NULL }; \
	__attribute__((constructor)) static void s##_##n##_reg(void)	\
	{ *shim_tail = &s##_##n##_t; shim_tail = &s##_##n##_t.next; }	\
	static void s##_##n(void)
#define cr_assert(c, ...) do { if (!(c)) {				\
	fprintf(stderr, "%s:%d: assertion failed: %s\n",		\
		__FILE__, __LINE__, #c); _exit(1); } } while (0)
#define cr_assert_eq(a, b, ...)  cr_assert((a) == (b))
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b))
#define cr_assert_lt(a, b, ...)  cr_assert((a) < (b))
#define cr_assert_gt(a, b, ...)  cr_assert((a) > (b))
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b))
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b))
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL)
#define cr_assert_not(c, ...)    cr_assert(!(c))
#define cr_assert_arr_eq(a, b, n, ...) cr_assert(memcmp((a), (b), (n)) == 0)
#define cr_skip_test(...) do { fprintf(stderr, __VA_ARGS__);		\
	fputc('\n', stderr); _exit(77); } while (0)
int main(void)
{
	int st, failed = 0, n = 0;
	struct shim_test *t;
	pid_t pid;

	for (t = shim_tests; t; t = t->next, n++) {
		pid = fork();
		if (pid == 0) {
			alarm(300);
			t->fn();
			_exit(0);
		}
		waitpid(pid, &st, 0);
		st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		fprintf(stderr, "[%s] %s\n", st == 0 ? "PASS" : st == 77 ?
			"SKIP" : "FAIL", t->name);
		failed += st != 0 && st != 77;
	}
	fprintf(stderr, "Tested: %d | Failing: %d\n", n, failed);
	return failed != 0;
}
#else
#include <criterion/criterion.h>
#endif

#endif
