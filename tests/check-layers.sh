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
#
# Calls too, where the objects are built (the library's and ioasidd's, in
# $top_builddir; without them only the includes are checked): every symbol
# an object uses from another object of the tree (nm -u against nm
# --defined-only) must come from its own layer, from a layer it may
# include, or be declared in a header it may include (a door such as
# core/core.h).  A crossing fails with the object's source file, the
# symbol and where it is defined.
set -eu
bdir=$(cd "${top_builddir:-.}" && pwd)
cd "${top_srcdir:-.}"
doc=docs/architecture.md
[ -f "$doc" ] || { echo "FAIL: $doc not found"; exit 1; }
dirs=$(for d in libioasid ioasidd ioasidctl examples; do [ -d "$d" ] && echo "$d"; done)
# shellcheck disable=SC2086 # word splitting of the directory list
files=$(find $dirs -name '*.[ch]' | LC_ALL=C sort)

# "D source symbol" and "U source symbol" for every built object, named by
# the source file it was compiled from (one per source: libtool may leave
# the same object twice).
symbols() {
	local o src seen=" "
	while read -r o; do
		case $o in
		*/libioasid_internal_la-*.o)
			src=${o#"$bdir"/}
			src=${src%/.libs/*}/${o##*/libioasid_internal_la-}
			src=${src/\/.libs\//\/} ;;
		*/ioasidd/ioasidd-*.o) src=ioasidd/${o##*/ioasidd-} ;;
		*) continue ;;
		esac
		src=${src%.o}.c
		case $seen in *" $src "*) continue ;; esac
		seen="$seen$src "
		nm --defined-only -g "$o" | awk -v s="$src" 'NF == 3 { print "D", s, $3 }'
		nm -u "$o" | awk -v s="$src" '{ print "U", s, $NF }'
	done < <(find "$bdir/libioasid" "$bdir/ioasidd" -name '*.o' 2>/dev/null |
		 LC_ALL=C sort)
}
if command -v nm >/dev/null; then syms=$(symbols); else syms=; fi

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
part == 3 {
	if ($1 == "D")
		defsrc[$3] = $2
	else if ($1 == "U")
		uses[++nuses] = $2 " " $3
	next
}
part >= 4 {
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
	if (FILENAME ~ /\.h$/) {
		line = $0
		while (match(line, /[A-Za-z_][A-Za-z0-9_]*/)) {
			word = substr(line, RSTART, RLENGTH)
			if (!((FILENAME, word) in declared)) {
				declared[FILENAME, word] = 1
				declhdrs[word] = declhdrs[word] " " FILENAME
			}
			line = substr(line, RSTART + RLENGTH)
		}
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
# May @a (a layer) use @sym: declared in a header of its own layer or of
# one it may include?
function door(a, sym,   n, h, k, hl) {
	n = split(declhdrs[sym], h, " ")
	for (k = 1; k <= n; k++) {
		hl = layer_of(h[k])
		if (hl == a || may[a, hl] || mayfile[a, h[k]])
			return 1
	}
	return 0
}
END {
	for (u = 1; u <= nuses; u++) {
		split(uses[u], w, " ")
		src = w[1]; sym = w[2]
		if (!(sym in defsrc))
			continue
		ncalls++
		a = layer_of(src); b = layer_of(defsrc[sym])
		if (!a || !b || a == b || may[a, b] || door(a, sym))
			continue
		printf "%s: FAIL: layer %s calls %s, defined in %s (layer %s) " \
		       "and declared in no header it may include; %s says %s " \
		       "may include: %s\n", src, lname[a], sym, defsrc[sym],
		       lname[b], doc, lname[a], mayraw[a]
		bad++
	}
	if (bad)
		exit 1
	printf "ok: %d files, %d layers, every include allowed", checked,
	       nlayers
	if (ncalls)
		printf "; %d uses between objects, every one allowed", ncalls
	printf "\n"
}
' "$doc" <(find $dirs uapi -type f | LC_ALL=C sort) <(echo "$syms") $files
