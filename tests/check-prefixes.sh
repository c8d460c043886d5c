#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every function a file of libioasid/core/ defines without "static" starts
# with one of the prefixes its row in docs/architecture.md gives (the
# table between the prefixes:begin and prefixes:end markers), and every
# .c file of core/ has a row.  A name outside its module's prefixes fails
# with file:line.
#
# Table rows:  | `file` | `prefix_` ... |   (a prefix without "_" at its
# end is one whole name, e.g. `core_call`)
set -eu
cd "${top_srcdir:-.}"
doc=docs/architecture.md
[ -f "$doc" ] || { echo "FAIL: $doc not found"; exit 1; }
files=$(find libioasid/core -name '*.c' | LC_ALL=C sort)
missing=0
for f in $files; do
	grep -q "^| \`$f\` |" "$doc" && continue
	echo "FAIL: $f has no row in the prefixes table of $doc"
	missing=1
done
[ "$missing" = 0 ] || exit 1

# shellcheck disable=SC2086 # word splitting of the file list
awk -v doc="$doc" '
FNR == 1 { part++ }
part == 1 {
	if ($0 ~ /<!-- prefixes:begin -->/) { intable = 1; next }
	if ($0 ~ /<!-- prefixes:end -->/) { intable = 0; next }
	if (!intable || $0 !~ /^\|/ || $0 ~ /^\|[ \t]*-/)
		next
	sub(/^[ \t]*\|/, "")
	n = split($0, c, "|")
	f = c[1]
	gsub(/[ \t`]/, "", f)
	if (f == "file")
		next
	rows++
	m = split(c[2], w, /[ \t,]+/)
	for (k = 1; k <= m; k++) {
		p = w[k]
		gsub(/`/, "", p)
		if (p != "")
			prefixes[f] = prefixes[f] " " p
	}
	next
}
# A definition: a line at column 0 that is not static and names a
# function, whose signature (maybe over several lines) is followed by "{".
function check(name, line,   i, n, p) {
	n = split(prefixes[FILENAME], p, " ")
	for (i = 1; i <= n; i++)
		if ((p[i] ~ /_$/ && index(name, p[i]) == 1) || name == p[i])
			return
	printf "%s:%d: FAIL: %s is not static and does not start with" \
	       "%s (%s, prefixes table)\n", FILENAME, line, name,
	       prefixes[FILENAME], doc
	bad++
}
FNR == 1 { sig = ""; pending = ""; checked++ }
sig != "" {
	sig = sig " " $0
	if ($0 ~ /\)[ \t]*$/ || $0 ~ /;[ \t]*$/) { pending = sig; sig = "" }
	next
}
pending != "" {
	if ($0 ~ /^\{/ && pending !~ /;[ \t]*$/) {
		match(pending, /[A-Za-z_][A-Za-z_0-9]*\(/)
		check(substr(pending, RSTART, RLENGTH - 1), at)
		defs++
	}
	pending = ""
}
/^[A-Za-z_]/ && !/^(static|typedef|extern)/ && /[A-Za-z_0-9]\(/ {
	at = FNR
	if ($0 ~ /\)[ \t]*$/ || $0 ~ /;[ \t]*$/)
		pending = $0
	else
		sig = $0
}
END {
	if (!rows) {
		printf "FAIL: %s has no prefixes table\n", doc
		exit 1
	}
	if (bad)
		exit 1
	printf "ok: %d files, %d exported functions, each with its " \
	       "module prefix\n", checked, defs
}
' "$doc" $files
