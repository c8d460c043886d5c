#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# scripts/setup.sh builds quietly: autoreconf's and configure's output go
# to DIR/setup.log and are shown only when a step fails.  Runs setup.sh's
# own functions (sourced) on a stand-in project whose configure is loud.
set -u
srcdir=$(cd "${top_srcdir:-.}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }

mkdir -p "$tmp/proj"
cat > "$tmp/proj/configure" <<'EOS'
#!/bin/sh
i=0; while [ $i -lt 300 ]; do echo "checking for thing $i... yes"; i=$((i + 1)); done
[ -n "${FAIL_CONFIGURE:-}" ] && { echo "configure: error: no frobnicator" >&2; exit 1; }
echo all: > Makefile
EOS
chmod +x "$tmp/proj/configure"

run() {	# run ENV... : configure_in build in the stand-in project
	(cd "$tmp/proj" && env "$@" SETUP_NO_MAIN=1 bash -c '
		set -euo pipefail; here=$PWD; . "$0"; top=$here; cd "$top"; configure_in build --enable-werror' \
		"$srcdir/scripts/setup.sh")
}

out=$(run X=1 2>&1); rc=$?
[ $rc -eq 0 ] && ok "configure_in succeeds" || bad "configure_in failed ($rc): $out"
[ -z "$out" ] && ok "a successful configure prints nothing" ||
	bad "a successful configure printed $(printf '%s\n' "$out" | wc -l) lines"
grep -q 'thing 299' "$tmp/proj/build/setup.log" 2>/dev/null &&
	ok "its output is in build/setup.log" || bad "build/setup.log lacks configure's output"

rm -rf "$tmp/proj/build"
out=$(run FAIL_CONFIGURE=1 2>&1); rc=$?
[ $rc -ne 0 ] && ok "a failing configure fails setup" || bad "a failing configure passed"
printf '%s\n' "$out" | grep -q 'no frobnicator' &&
	ok "a failing configure's error is shown" || bad "the error was not shown: $out"
printf '%s\n' "$out" | grep -q 'build/setup.log' &&
	ok "and where the whole log is" || bad "the log's place was not named"

# the demo builds with silent rules and its make output in the log too
grep -q 'quietly build/setup.log make .*V=0' "$srcdir/scripts/setup.sh" &&
	ok "the demo's make is quiet" || bad "the demo's make is not logged"

# a stage that fails is named, and only that one
out=$(SETUP_NO_MAIN=1 bash -c '
	set -euo pipefail; . "$0"; failed_stages=()
	stage "one" false 2>/dev/null; stage "two" true; stage "three" false 2>/dev/null
	echo "${#failed_stages[@]}:${failed_stages[*]}"' "$srcdir/scripts/setup.sh" 2>&1)
[ "$out" = "2:one three" ] && ok "failed stages are remembered by name" ||
	bad "stage recorded '$out', not '2:one three'"

echo "1..$n"
echo "$((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
