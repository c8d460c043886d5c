/* SPDX-License-Identifier: MIT */
/*
 * Minimal TAP-like reporting for guest test programs of the VM rig.
 *
 * Output format (one case per line, aggregated by the initramfs /init):
 *   ok N - description
 *   ok N - description # SKIP reason
 *   not ok N - description # reason
 *   # free-form diagnostics
 * and "1..N" at the end. Exit status: 0 if no case failed, 1 otherwise.
 */
#ifndef IOASID_VM_TAP_H
#define IOASID_VM_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_vline(int ok, const char *directive, const char *fmt, va_list ap)
{
	printf("%s %d - ", ok ? "ok" : "not ok", ++tap_n);
	vprintf(fmt, ap);
	if (directive)
		printf(" # %s", directive);
	printf("\n");
	fflush(stdout);
	if (!ok)
		tap_failed++;
}

/* tap_ok(cond, fmt, ...) - one case; returns cond. */
__attribute__((format(printf, 2, 3)))
static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vline(cond, NULL, fmt, ap);
	va_end(ap);
	return cond;
}

/* tap_skip(reason, fmt, ...) - one skipped case. */
__attribute__((format(printf, 2, 3)))
static inline void tap_skip(const char *reason, const char *fmt, ...)
{
	char d[256];
	va_list ap;

	snprintf(d, sizeof(d), "SKIP %s", reason);
	va_start(ap, fmt);
	tap_vline(1, d, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2)))
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
