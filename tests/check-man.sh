#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The manual covers the library and builds:
#  - every symbol of libioasid/libioasid.sym has a page: man/SYM.3.scd, or a
#    line "SYM TARGET" in man/man3-links whose target page exists and names
#    SYM in its NAME section;
#  - every name in the NAME section of a man3 page is its own page or has a
#    link, so that "man NAME" finds it;
#  - every *ioasid...*(N) reference of a page names a page there is;
#  - no NAME section has a line that scdoc reads as a list item;
#  - every man/*.scd page builds with scdoc (skipped without scdoc), and the
#    pages and .so links the build made are there and point at the right
#    page (when the build made them).
set -u

srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
sym=$srcdir/libioasid/libioasid.sym
man=$srcdir/man
links=$man/man3-links
fail=0 checked=0

err() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}

# The function names of a page's NAME section, one per line.
names_of() {
	awk '/^# NAME/ { on = 1; next } /^# / { on = 0 } on' "$1" |
		tr '\n' ' ' | sed 's/ - .*//' | tr ',' '\n' |
		sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | grep -v '^$'
}

# The target of a link NAME in man3-links, or nothing.
link_target() {
	awk -v n="$1" '$1 == n { print $2 }' "$links"
}

for f in "$sym" "$links"; do
	[ -r "$f" ] || { echo "FAIL: cannot read $f"; exit 1; }
done

# ---- every exported symbol has a page ------------------------------------
for s in $(sed -n 's/^[[:space:]]*\(ioasid_[a-z0-9_]*\);$/\1/p' "$sym"); do
	checked=$((checked + 1))
	if [ -f "$man/$s.3.scd" ]; then
		names_of "$man/$s.3.scd" | grep -qx "$s" ||
			err "man/$s.3.scd does not name $s in its NAME section"
		continue
	fi
	t=$(link_target "$s")
	if [ -z "$t" ]; then
		err "$s has no man page (add man/$s.3.scd or a line to man/man3-links)"
	elif [ ! -f "$man/$t.3.scd" ]; then
		err "$s links to $t.3, which has no man/$t.3.scd"
	elif ! names_of "$man/$t.3.scd" | grep -qx "$s"; then
		err "$s links to $t.3, whose NAME section does not list it"
	fi
done

# ---- every name a page lists is findable ----------------------------------
for page in "$man"/*.3.scd; do
	base=$(basename "$page" .3.scd)
	for n in $(names_of "$page"); do
		[ "$n" = "$base" ] && continue
		[ -f "$man/$n.3.scd" ] && continue
		[ "$(link_target "$n")" = "$base" ] ||
			err "$base.3 names $n, but man/man3-links has no '$n $base'"
	done
done

# ---- every NAME section is one whatis entry ----------------------------------
# ("name, name - what": a line that starts with "- " is a list item for
# scdoc, and the built page's NAME then fails whatis and lintian)
for page in "$man"/*.scd; do
	checked=$((checked + 1))
	awk '/^# NAME/ { on = 1; next } /^# / { on = 0 } on' "$page" |
		grep -q '^[[:space:]]*- ' &&
		err "$(basename "$page"): a NAME line starts with '- ' (a list" \
		    "item for scdoc): end the line before it with ' -'"
done

# ---- every link points at a page --------------------------------------------
while read -r name target rest; do
	case $name in ''|'#'*) continue ;; esac
	[ -f "$man/$target.3.scd" ] ||
		err "man3-links: $name points at $target.3, which does not exist"
done < "$links"

# ---- every page of this project a page refers to exists --------------------------
# (*ioasidctl*(8), not (1): a reader follows the reference)
for page in "$man"/*.scd; do
	for ref in $(grep -oE '\*(lib)?ioasid[a-z0-9_.-]*\*\([1-9]\)' "$page" |
		     tr -d '*' | sort -u); do
		checked=$((checked + 1))
		n=${ref%(*} sec=${ref#*(}
		sec=${sec%)}
		[ -f "$man/$n.$sec.scd" ] && continue
		[ "$sec" = 3 ] && [ -n "$(link_target "$n")" ] && continue
		err "$(basename "$page") refers to $ref, which is no page"
	done
done

# ---- the pages build ------------------------------------------------------------
scdoc=${SCDOC:-$(command -v scdoc 2>/dev/null)}
if [ -z "$scdoc" ]; then
	echo "SKIP: scdoc not found: pages not built"
else
	for page in "$man"/*.scd; do
		checked=$((checked + 1))
		out=$("$scdoc" < "$page" 2>&1 > /dev/null) ||
			err "$(basename "$page") does not build: $out"
	done
fi

# ---- what the build made (when it made man pages) -----------------------------
if [ -f "$builddir/man/libioasid.3" ]; then
	for page in "$man"/*.scd; do
		p=$(basename "$page" .scd)
		[ -s "$builddir/man/$p" ] || err "the build did not make man/$p"
	done
	while read -r name target rest; do
		case $name in ''|'#'*) continue ;; esac
		checked=$((checked + 1))
		got=$(readlink "$builddir/man/$name.3" 2>/dev/null)
		[ "$got" = "$target.3" ] ||
			err "man/$name.3 links to '$got', expected '$target.3' (MAN3_LINKS in Makefile.am?)"
	done < "$links"
	# every page, aliases included, opens with "man -l" from the build tree
	# (here and from elsewhere: the command a reader types)
	if command -v man > /dev/null 2>&1; then
		for page in "$builddir"/man/*.[0-9]; do
			checked=$((checked + 1))
			abs=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
			out=$(cd / && MANWIDTH=80 man -l "$abs" 2>&1 > /dev/null)
			[ -z "$out" ] || err "man -l $page: $out"
			n=$(MANWIDTH=80 man -l "$page" 2>/dev/null | grep -c .)
			[ "$n" -gt 5 ] || err "man -l $page shows $n lines"
		done
	else
		echo "SKIP: man not found: pages not opened"
	fi
fi

if [ $fail -ne 0 ]; then
	echo "$fail problem(s)"
	exit 1
fi
echo "ok: $checked checks, every symbol of libioasid.sym has a man page"
