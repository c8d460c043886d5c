#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The library never ends its process: no object of libioasid calls exit(),
# abort() or anything that does (assert, err), and no source includes
# <uthash.h> directly -- util/hash.h configures it so that running out of
# memory is an error (-ENOMEM), not exit().
set -eu
top_srcdir="${top_srcdir:-.}"
lib="${top_builddir:-.}/libioasid/.libs/libioasid-internal.a"
[ -f "$lib" ] || { echo "SKIP: $lib not built" >&2; exit 77; }
command -v nm >/dev/null || { echo "SKIP: no nm" >&2; exit 77; }

fail=0
forbidden='^(exit|_exit|_Exit|quick_exit|abort|__assert_fail|__assert_perror_fail|__assert|err|errx|verr|verrx|error|error_at_line)$'
# nm -A: "archive:member: U symbol"
bad=$(nm -A -u "$lib" | awk '{print $1, $NF}' | sed 's/^[^:]*://' |
      awk -v re="$forbidden" '$2 ~ re' | sort -u)
if [ -n "$bad" ]; then
	echo "FAIL: library objects that can end the process:"
	echo "$bad" | sed 's/^/  /'
	fail=1
fi

direct=$(cd "$top_srcdir" && grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]uthash\.h[>"]' \
	--include='*.c' --include='*.h' --include='*.cc' \
	libioasid ioasidd ioasidctl tests bench examples 2>/dev/null |
	grep -v '^libioasid/util/hash\.h$' || true)
if [ -n "$direct" ]; then
	echo "FAIL: include \"util/hash.h\" instead of <uthash.h> in:"
	echo "$direct" | sed 's/^/  /'
	fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "ok: $(nm -u "$lib" | awk 'NF == 2 {print $2}' | sort -u | wc -l) undefined symbols, none ends the process; uthash only through util/hash.h"
