#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# ioasidd without --backend takes the host's IOMMU interface and never the
# simulator: $IOASIDD_DEV_DIR stands for /dev (a directory with or without
# "iommu" and "vfio/vfio"); no kernel interface is opened for real here
# (these hosts have none, so the chosen backend fails to open, after the
# log says which it chose).
set -u
builddir=${top_builddir:-.}
D=$builddir/ioasidd/ioasidd
[ -x "$D" ] || { echo "$D is not built"; exit 99; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_ioasidd_backend-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 n=0
check() {	# check NAME COMMAND...
	n=$((n + 1)); name=$1; shift
	if "$@"; then pass=$((pass + 1)); echo "ok $n - $name"
	else fail=$((fail + 1)); echo "not ok $n - $name"; sed 's/^/#   /' "$tmp/log"; fi
}
start() {	# start DEVDIR ARGS...: run ioasidd until it gives up (a daemon
		# that serves instead is stopped after 30 s and fails the checks)
	dev=$1; shift
	IOASIDD_DEV_DIR=$dev timeout 30 "$D" --socket "$tmp/s.sock" --config "$tmp/none.conf" \
		"$@" > "$tmp/log" 2>&1 < /dev/null
	rc=$?
}
: > "$tmp/none.conf"

mkdir -p "$tmp/empty"
start "$tmp/empty"
check "no IOMMU interface: ioasidd refuses to start" [ "$rc" = 1 ]
check "and names --backend sim" grep -q 'no IOMMU interface on this host.*--backend sim' "$tmp/log"
check "and chooses no backend" sh -c "! grep -q '(chosen' '$tmp/log'"
[ -e "$tmp/s.sock" ] && check "no socket was made" false || check "no socket was made" true

start "$tmp/empty" --backend=
check "an empty --backend is auto too" grep -q 'no IOMMU interface on this host' "$tmp/log"

mkdir -p "$tmp/vfio/vfio"; : > "$tmp/vfio/vfio/vfio"
start "$tmp/vfio"
check "/dev/vfio/vfio: vfio-type1 is chosen" grep -q 'backend vfio-type1 (chosen' "$tmp/log"

mkdir -p "$tmp/both/vfio"; : > "$tmp/both/iommu"; : > "$tmp/both/vfio/vfio"
start "$tmp/both" --backend auto
check "/dev/iommu: iommufd is chosen first" grep -q 'backend iommufd (chosen' "$tmp/log"

"$D" --help > "$tmp/log" 2>&1
check "--help says auto is the default" grep -q 'auto (the default' "$tmp/log"
check "--help names no other default backend" sh -c "! grep -q '(default sim)' '$tmp/log'"

# an operator's typos: what ioasidd serves, and where the help is
start "$tmp/empty" --backend simm
check "an unknown backend: what ioasidd serves" \
	grep -q 'cannot open backend "simm": ioasidd serves auto (the host.s), iommufd, vfio-type1, sim, sim:TOPOLOGY or iommufd:mock$' "$tmp/log"
start "$tmp/empty" --backend unix:/run/x.sock
check "a unix: URI is no backend for ioasidd" \
	grep -q 'not a local backend: ioasidd serves auto' "$tmp/log"
start "$tmp/empty" --backnd sim
check "an unknown option: one line and where the help is" \
	sh -c "[ \$(wc -l < '$tmp/log') = 2 ] && grep -q \"^Try 'ioasidd --help'.\\\$\" '$tmp/log'"
start "$tmp/empty" --log-level loud
check "an unknown log level lists the known ones" \
	grep -q 'unknown log level "loud" (known: err, warning, notice, info, debug)' "$tmp/log"

# every option --help names has its entry in ioasidd(8)
"$D" --help > "$tmp/help" 2>&1
missing=
for o in $(grep -oE -- '--[a-z][a-z-]+' "$tmp/help" | sort -u); do
	grep -q -- "^\*[^ ]*$o\*\|, \*$o\*" "${top_srcdir:-.}/man/ioasidd.8.scd" ||
		missing="$missing $o"
done
echo "$missing" > "$tmp/log"
check "ioasidd(8) has every option of --help" [ -z "$missing" ]

echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
