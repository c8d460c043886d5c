// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Linked into tests/ioasidd-failnth only: ioasidd's own sources built with
 * the wrapped allocators of tests/failnth.c.  When $IOASID_FAILNTH_CTL
 * names a file, the daemon's counters live there, so a test
 * (tests/test_fail_nth through tests/conformance-test_fail_nth_daemon.sh)
 * makes the n-th allocation of the daemon's side of a request fail.
 * Nothing in ioasidd knows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failnth.h"

__attribute__((constructor)) static void failnth_daemon_attach(void)
{
	const char *path = getenv("IOASID_FAILNTH_CTL");
	int r;

	if (!path || !*path)
		return;
	r = failnth_attach(path);
	if (r < 0) {
		fprintf(stderr, "ioasidd-failnth: cannot attach to %s: %s\n",
			path, strerror(-r));
		_exit(99);
	}
}
