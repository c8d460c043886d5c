#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/test_fail_nth through tests/ioasidd-failnth (ioasidd built with the
# wrapped allocators): the test arms the daemon's counters, in a file both
# map ($IOASID_FAILNTH_CTL), so the n-th allocation of the daemon's side of
# each request fails; the client must get -ENOMEM and find nothing changed,
# and the daemon must live on and exit cleanly (no leak under ASan).
builddir=${top_builddir:-.}
ctl=$(mktemp "${TMPDIR:-/tmp}/ioasid-failnth-XXXXXX") || exit 99
trap 'rm -f "$ctl"' EXIT
IOASID_FAILNTH_CTL=$ctl IOASIDD=$builddir/tests/ioasidd-failnth \
	"$(dirname "$0")/conformance.sh" "$builddir/tests/test_fail_nth" "$@"
