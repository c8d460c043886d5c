#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Adds up every test case of the given build directories and prints one
# closing line: "N passed, N failed, N skipped".
#   criterion programs:  their "Synthesis" line, plus one skip per [SKIP]
#   other tests:         their automake result (.trs)
#   tests/vm:            its own "N passed, N failed, N skipped" line
# Exits non-zero when anything failed or no test ran at all.
set -euo pipefail

pass=0 fail=0 skip=0
for dir in "$@"; do
	[ -d "$dir/tests" ] || continue
	while IFS= read -r trs; do
		log=${trs%.trs}.log
		if grep -q 'Synthesis: Tested:' "$log" 2>/dev/null; then
			line=$(grep 'Synthesis: Tested:' "$log" | tail -1)
			p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
			f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
			c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line")
			s=$(grep -c '^\[SKIP\]' "$log" || true)
			pass=$((pass + p)) fail=$((fail + f + c)) skip=$((skip + s))
		elif line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" 2>/dev/null | tail -1); then
			p=${line%% passed*}
			f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
			s=$(sed -n 's/.* \([0-9]*\) skipped.*/\1/p' <<<"$line")
			pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + ${s:-0}))
		else
			case $(sed -n 's/^:test-result: //p' "$trs" | head -1) in
			PASS|XFAIL) pass=$((pass + 1)) ;;
			SKIP) skip=$((skip + 1)) ;;
			*) fail=$((fail + 1)) ;;
			esac
		fi
		# a whole program that failed without a count still fails
		if grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs" &&
		   ! grep -q 'Failing: [1-9]\|Crashing: [1-9]\| [1-9][0-9]* failed' "$log"; then
			fail=$((fail + 1))
		fi
	done < <(find "$dir/tests" -name '*.trs' | sort)
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
