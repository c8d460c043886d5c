#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run a test program against a freshly started ioasidd:
#
#     tests/conformance.sh PROGRAM [ARGS...]
#
# Starts $IOASIDD (default: $top_builddir/ioasidd/ioasidd) on a private
# socket, with a policy that gives the invoking user every device and no
# quotas, and runs PROGRAM with IOASID_TEST_URI=unix:SOCKET -- the test
# programs' test_ctx() then talks to the daemon instead of an embedded
# core.  Afterwards the daemon gets SIGTERM; the run fails when PROGRAM
# failed or when ioasidd did not exit with status 0 (a crash, or a
# sanitizer report in an ASan build).  $IOASIDD_BACKEND picks the backend
# (default sim).
set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 PROGRAM [ARGS...]" >&2
	exit 99
fi
prog=$1
shift
builddir=${top_builddir:-.}
daemon=${IOASIDD:-$builddir/ioasidd/ioasidd}
if [ ! -x "$daemon" ]; then
	echo "$0: no ioasidd at $daemon (build it first)" >&2
	exit 99
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/ioasidd-conformance-XXXXXX") || exit 99
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

cat > "$dir/ioasidd.conf" <<CONF
# conformance: the test user may do everything an embedded context can
[user $(id -u)]
devices = *
max-ioas = unlimited
max-mappings = unlimited
max-bytes-mapped = unlimited
max-vms = unlimited
allow-noncoherent = yes
trust-hints = yes
observe = yes
CONF

"$daemon" --socket "$dir/ioasidd.sock" --config "$dir/ioasidd.conf" \
	--backend "${IOASIDD_BACKEND:-sim}" --log-level notice \
	2> "$dir/ioasidd.log" &
pid=$!

# ready once it says so (the line follows listen())
tries=0
until grep -q "Serving backend" "$dir/ioasidd.log" 2>/dev/null; do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "$0: ioasidd exited during start-up:" >&2
		cat "$dir/ioasidd.log" >&2
		pid=
		exit 99
	fi
	tries=$((tries + 1))
	if [ $tries -gt 6000 ]; then
		echo "$0: ioasidd did not start within 60 s" >&2
		exit 99
	fi
	sleep 0.01
done

# One daemon serves every test: devices are shared, so one test at a time.
echo "# $prog through ioasidd ($dir/ioasidd.sock)"
CRITERION_JOBS=${CRITERION_JOBS:-1} IOASID_TEST_URI="unix:$dir/ioasidd.sock" \
	"$prog" "$@"
rc=$?

kill -TERM "$pid"
wait "$pid"
drc=$?
pid=
if [ $drc -ne 0 ]; then
	echo "$0: ioasidd exited with status $drc:" >&2
	cat "$dir/ioasidd.log" >&2
	[ $rc -eq 0 ] && rc=1
fi
exit $rc
