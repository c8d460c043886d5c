#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every #include of every source file of the library, the daemon, the CLI
# and the examples stays inside the layer table of docs/architecture.md:
# that table (between the layers:begin and layers:end markers) is the only
# copy of the rules.  A crossing fails with file:line, the include, and
# which layers the file may include.
#
# Table rows:  | layer | `file patterns` ... | other layers or `files` ... |
# A pattern ending in "/" is a directory (and everything below it); "*"
# matches within one path component.  The first row whose pattern matches
# a file gives its layer; a file may always include its own layer.
set -eu
cd "${top_srcdir:-.}"
doc=docs/architecture.md
[ -f "$doc" ] || { echo "FAIL: $doc not found"; exit 1; }
dirs=$(for d in libioasid ioasidd ioasidctl examples; do [ -d "$d" ] && echo "$d"; done)
# shellcheck disable=SC2086 # word splitting of the directory list
files=$(find $dirs -name '*.[ch]' | LC_ALL=C sort)

awk -v doc="docs/architecture.md" '
function glob_re(p,   r) {
	r = p
	gsub(/[.+?^$(){}|]/, "\\\\&", r)
	gsub(/\*/, "[^/]*", r)
	if (r ~ /\/$/)
		return "^" r
	return "^" r "$"
}
function layer_of(path,   i, j) {
	for (i = 1; i <= nlayers; i++)
		for (j = 1; j <= npat[i]; j++)
			if (path ~ pat[i, j])
				return i
	return 0
}
# Where "#include X" from file f leads, as a path in the tree ("" for the
# system: libc, libnl, libudev, uthash, the kernel headers).
function resolve(f, x, angle,   dir, c) {
	if (angle) {
		if (x == "libioasid.h")
			return "libioasid/libioasid.h"
		if (x ~ /^ioasid\//)
			return "uapi/" x
		return ""
	}
	dir = f
	sub(/[^\/]*$/, "", dir)
	c = dir x
	while (sub(/[^\/]+\/\.\.\//, "", c))
		;
	if (c in exists)
		return c
	if (("libioasid/" x) in exists)
		return "libioasid/" x
	if (("uapi/" x) in exists)
		return "uapi/" x
	return "?" x
}
function cells(line, out,   n) {
	sub(/^[ \t]*\|/, "", line)
	sub(/\|[ \t]*$/, "", line)
	return split(line, out, "|")
}
FNR == 1 { part++ }
part == 1 {
	if ($0 ~ /<!-- layers:begin -->/) { intable = 1; next }
	if ($0 ~ /<!-- layers:end -->/) { intable = 0; next }
	if (!intable || $0 !~ /^\|/ || $0 ~ /^\|[ \t]*-/)
		next
	cells($0, c)
	name = c[1]
	gsub(/[ \t`]/, "", name)
	if (name == "layer")
		next
	nlayers++
	lname[nlayers] = name
	idx[name] = nlayers
	n = split(c[2], w, /[ \t,]+/)
	for (k = 1; k <= n; k++) {
		p = w[k]
		if (p !~ /^`.*`$/)
			continue
		gsub(/`/, "", p)
		pat[nlayers, ++npat[nlayers]] = glob_re(p)
	}
	mayraw[nlayers] = c[3]
	gsub(/^[ \t]+|[ \t]+$/, "", mayraw[nlayers])
	next
}
part == 2 { exists[$0] = 1; next }
part >= 3 {
	if (!started) {
		started = 1
		for (i = 1; i <= nlayers; i++) {
			n = split(mayraw[i], w, /[ \t,]+/)
			for (k = 1; k <= n; k++) {
				p = w[k]
				if (p ~ /^`.*`$/) {
					gsub(/`/, "", p)
					mayfile[i, p] = 1
				} else if (p in idx) {
					may[i, idx[p]] = 1
				} else if (p != "" && p != "-" && p != "nothing") {
					printf "FAIL: %s: layer %s may include " \
					       "unknown layer \"%s\"\n", doc,
					       lname[i], p
					bad++
				}
			}
		}
		if (!nlayers) {
			printf "FAIL: %s has no layer table\n", doc
			exit 1
		}
	}
	if (FNR == 1) {
		self = layer_of(FILENAME)
		if (!self) {
			printf "FAIL: %s: in no layer of %s\n", FILENAME, doc
			bad++
		}
		checked++
	}
	if (!self || $0 !~ /^[ \t]*#[ \t]*include[ \t]*[<"]/)
		next
	line = $0
	angle = line ~ /include[ \t]*</
	sub(/^[^<"]*[<"]/, "", line)
	sub(/[>"].*$/, "", line)
	to = resolve(FILENAME, line, angle)
	if (to == "")
		next
	if (to ~ /^\?/) {
		printf "%s:%d: FAIL: #include \"%s\" is no file of the " \
		       "tree\n", FILENAME, FNR, line
		bad++
		next
	}
	them = layer_of(to)
	if (them == self || may[self, them] || mayfile[self, to])
		next
	printf "%s:%d: FAIL: layer %s includes %s (layer %s); %s says " \
	       "%s may include: %s\n", FILENAME, FNR, lname[self], to,
	       them ? lname[them] : "none", doc, lname[self], mayraw[self]
	bad++
}
END {
	if (bad)
		exit 1
	printf "ok: %d files, %d layers, every include allowed\n", checked,
	       nlayers
}
' "$doc" <(find $dirs uapi -type f | LC_ALL=C sort) $files
