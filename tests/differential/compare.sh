#!/usr/bin/env bash
# compare.sh - the differential comparison, after `make check-vm` booted the
# guest with snoop-control=on and =off.
#
# For each boot: the "# DIFF" lines diff_guest printed (iommufd backend,
# real VT-d and edu) are taken from the boot's serial log
# ($IOASID_VM_LOGS/check-snoop-{on,off}.log, between the rig's
# "### BEGIN diff_guest" / "### END diff_guest"), diff_sim runs the same
# scenarios on the simulated IOMMU with the matching topology
# (edu-sc-{on,off}.topology), and every result key is compared.  The
# "mock_" keys come from diff_guest's second run, on iommufd:mock's mock0
# (dirty tracking and nested tables on the kernel's mock IOMMU), matched
# with diff_sim --mock on mock.topology.
#
# A key whose values differ fails the comparison unless deliberate.list
# names it for that boot - and every entry there must also be explained in
# docs/kernel-backends.md, and must still differ (a stale entry fails too,
# so the list and the docs stay true).
#
# Usage: compare.sh [--log-dir DIR] [--keep DIR]
# Environment: top_srcdir, top_builddir (set by make), IOASID_VM_LOGS
#   (default $IOASID_VM_CACHE/logs, as tests/vm/check-vm.sh).
# Exit status: 0 equal up to the deliberate list, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${top_srcdir:-$here/../..}
top_builddir=${top_builddir:-.}
# shellcheck source=../vm/lib.sh
. "$top_srcdir/tests/vm/lib.sh"

log_dir=$IOASID_VM_LOGS
keep=""
while [ $# -gt 0 ]; do
	case $1 in
	--log-dir) log_dir=$2; shift 2 ;;
	--keep) keep=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1" ;;
	esac
done

sim=$top_builddir/tests/differential/diff_sim
list=$top_srcdir/tests/differential/deliberate.list
doc=$top_srcdir/docs/kernel-backends.md
[ -x "$sim" ] || die "$sim not built (make tests/differential/diff_sim)"
[ -r "$list" ] || die "no $list"

work=$(mktemp -d "${TMPDIR:-/tmp}/ioasid-diff.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Every deliberate entry must be explained in the docs.
bad=0
while read -r key snoop _; do
	case $key in '' | '#'*) continue ;; esac
	case $snoop in on | off | any) ;; *) log "deliberate.list: $key: boot must be on, off or any"; bad=1 ;; esac
	if ! grep -qF -- "\`$key\`" "$doc"; then
		log "deliberate.list: $key is not explained in docs/kernel-backends.md"
		bad=1
	fi
done <"$list"

fail=$bad
for snoop in on off; do
	logf=$log_dir/check-snoop-$snoop.log
	guest=$work/guest-$snoop.results
	simr=$work/sim-$snoop.results
	if [ ! -r "$logf" ]; then
		echo "compare: no $logf"
		fail=1
		continue
	fi
	awk '/^### BEGIN diff_guest$/ { f = 1; next }
	     /^### END diff_guest/ { f = 0 }
	     f && /^# DIFF / { sub(/^# /, ""); print }' "$logf" >"$guest"
	if [ ! -s "$guest" ]; then
		echo "compare: snoop=$snoop: diff_guest printed no results in $logf"
		fail=1
		continue
	fi
	"$sim" "$top_srcdir/tests/differential/edu-sc-$snoop.topology" "$simr" >/dev/null
	# the mock scenarios (diff_guest's iommufd:mock run) against a sim
	# unit that tracks and nests
	"$sim" --mock "$top_srcdir/tests/differential/mock.topology" "$work/sim-mock.results" >/dev/null
	cat "$work/sim-mock.results" >>"$simr"
	if [ -n "$keep" ]; then
		mkdir -p "$keep"
		cp "$guest" "$simr" "$keep/"
	fi
	awk -v snoop="$snoop" -v listf="$list" '
		BEGIN {
			while ((getline l < listf) > 0) {
				split(l, w, /[ \t]+/)
				if (w[1] == "" || w[1] ~ /^#/) continue
				if (w[2] == snoop || w[2] == "any") want[w[1]] = 1
			}
		}
		function val(line) { sub(/^DIFF [^ ]+ ?/, "", line); return line }
		FNR == NR { s[$2] = val($0); order[++n] = $2; next }
		{ g[$2] = val($0); if (!($2 in s)) order[++n] = $2 }
		END {
			eq = del = bad = stale = 0
			for (i = 1; i <= n; i++) {
				k = order[i]
				if (seen[k]++) continue
				if ((k in s) && (k in g) && s[k] == g[k]) {
					eq++
					if (k in want) {
						printf "  STALE deliberate entry %s: both say \"%s\"\n", k, s[k]
						stale++
					}
					continue
				}
				sv = (k in s) ? s[k] : "(missing)"
				gv = (k in g) ? g[k] : "(missing)"
				if (k in want) {
					printf "  deliberate %s\n      sim:     %s\n      iommufd: %s\n", k, sv, gv
					del++
				} else {
					printf "  UNEXPECTED %s\n      sim:     %s\n      iommufd: %s\n", k, sv, gv
					bad++
				}
			}
			for (k in want)
				if (!(k in seen)) {
					printf "  STALE deliberate entry %s: no such result\n", k
					stale++
				}
			printf "differential snoop=%s: %d results, %d equal, %d deliberate differences, %d unexpected, %d stale list entries\n", snoop, eq + del + bad, eq, del, bad, stale
			exit (bad || stale) ? 1 : 0
		}' "$simr" "$guest" || fail=1
done
if [ "$fail" = 0 ]; then
	echo "differential: PASS (sim and iommufd agree up to tests/differential/deliberate.list)"
else
	echo "differential: FAIL"
fi
exit "$fail"
