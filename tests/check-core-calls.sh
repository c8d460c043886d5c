#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The modules of libioasid/core/ call each other as a tree, not a knot:
# from the built objects (nm), which module calls which, and no cycle
# (tsort names the loop when there is one).  docs/architecture.md draws
# the same graph.  Skips (77) when the objects are not built.
set -eu
cd "${top_builddir:-.}"
objs=$(find libioasid/core -name 'libioasid_internal_la-*.o' | LC_ALL=C sort)
[ -n "$objs" ] || { echo "SKIP: no core objects built here"; exit 77; }
command -v nm >/dev/null || { echo "SKIP: no nm"; exit 77; }

module() { local m=${1##*-}; echo "${m%.o}"; }
declare -A owner=()
for o in $objs; do
	m=$(module "$o")
	for sym in $(nm --defined-only -g "$o" | awk '$2 == "T" { print $3 }'); do
		owner[$sym]=$m
	done
done
edges=$(for o in $objs; do
	m=$(module "$o")
	for sym in $(nm -u "$o" | awk '{ print $2 }'); do
		to=${owner[$sym]:-}
		[ -n "$to" ] && [ "$to" != "$m" ] && echo "$m $to"
	done
done | LC_ALL=C sort -u)
if ! out=$(echo "$edges" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
	echo "FAIL: the calls between core/ modules have a cycle:"
	echo "$out"
	echo "calls (caller callee):"
	echo "$edges"
	exit 1
fi
echo "ok: $(echo "$objs" | wc -w) core modules, $(echo "$edges" | wc -l) call edges, no cycle"
