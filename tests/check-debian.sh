#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# debian/ cannot drift from the tree it packages:
#  - debian/libioasidN.symbols is what debian/gen-symbols makes of
#    libioasid/libioasid.sym, N is the soname's major number
#    (configure.ac's libtool current - age), debian/control's library
#    package is named after it and the built library has that soname;
#  - debian/changelog's version is configure.ac's (a native package);
#  - every build dependency is a package scripts/setup.sh installs.
# (scripts/check-packages.sh builds, installs and removes the packages.)
set -u
srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
deb=$srcdir/debian
[ -f "$deb/control" ] || { echo "SKIP: no debian/ in $srcdir"; exit 77; }
fail=0 n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }

ltnum() {
	sed -n "s/^AC_SUBST(\[LIBIOASID_$1\], \[\([0-9]*\)\])$/\1/p" "$srcdir/configure.ac"
}
major=$(( $(ltnum CURRENT) - $(ltnum AGE) ))
pkg=libioasid$major

# ---- the symbols file ----------------------------------------------------
if ! gen=$("$deb/gen-symbols" "$srcdir" 2>&1); then
	bad "debian/gen-symbols fails: $gen"
elif [ ! -f "$deb/$pkg.symbols" ]; then
	bad "no debian/$pkg.symbols (the soname is libioasid.so.$major): run make debian-symbols"
elif d=$(diff -u "$deb/$pkg.symbols" - <<<"$gen"); then
	ok "debian/$pkg.symbols is what libioasid.sym gives"
else
	bad "debian/$pkg.symbols is stale (make debian-symbols rewrites it):"
	printf '%s\n' "$d"
fi
# every symbol of the version script is in it, with its node
nsym=$(grep -c '^[[:space:]]*ioasid_[a-z0-9_]*;' "$srcdir/libioasid/libioasid.sym")
nlisted=$(grep -c '^ ioasid_[a-z0-9_]*@LIBIOASID_' "$deb/$pkg.symbols" 2>/dev/null)
[ "$nsym" -gt 0 ] && [ "$nsym" = "$nlisted" ] &&
	ok "it lists all $nsym symbols of libioasid.sym" ||
	bad "libioasid.sym has $nsym symbols, debian/$pkg.symbols ${nlisted:-0}"

# ---- package names -------------------------------------------------------
pkgs=$(sed -n 's/^Package: *//p' "$deb/control" | sort | tr '\n' ' ')
want=$(printf '%s\n' ioasid-daemon ioasid-tools libioasid-dev "$pkg" | sort | tr '\n' ' ')
[ "$pkgs" = "$want" ] && ok "debian/control builds $want" ||
	bad "debian/control builds \"$pkgs\", not \"$want\" (named after the soname)"
for p in $want; do
	[ -f "$deb/$p.install" ] || bad "no debian/$p.install"
done
grep -q "^Depends: $pkg (= \${binary:Version})" "$deb/control" &&
	ok "libioasid-dev depends on $pkg" || bad "libioasid-dev does not depend on $pkg"
so=$builddir/libioasid/.libs/libioasid.so
if [ -f "$so" ]; then
	soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
	[ "$soname" = "libioasid.so.$major" ] &&
		ok "the built library's soname is $soname" ||
		bad "the built library's soname is '$soname', not libioasid.so.$major"
fi

# ---- version ---------------------------------------------------------------
version=$(sed -n 's/^AC_INIT(\[ioasid\], \[\([^]]*\)\].*/\1/p' "$srcdir/configure.ac")
dversion=$(sed -n '1s/^ioasid (\([^)]*\)).*/\1/p' "$deb/changelog")
[ -n "$version" ] && [ "$version" = "$dversion" ] &&
	ok "debian/changelog's version is configure.ac's ($version)" ||
	bad "debian/changelog says '$dversion', configure.ac '$version'"
grep -qx '3.0 (native)' "$deb/source/format" &&
	ok "a native source package" || bad "debian/source/format is not 3.0 (native)"

# ---- build dependencies ----------------------------------------------------
setup=$(sed -n '/^packages=(/,/^)/p' "$srcdir/scripts/setup.sh" | tr -s ' \t\n' '\n')
bdeps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$deb/control" | sed '$d' |
	sed 's/^Build-Depends://; s/#.*//' | tr ',' '\n' |
	sed 's/[[(<].*//; s/[[:space:]]//g' | grep -v '^$')
missing=
for b in $bdeps; do
	[ "$b" = debhelper-compat ] && continue
	grep -qx "$b" <<<"$setup" || missing="$missing $b"
done
[ -n "$bdeps" ] && [ -z "$missing" ] &&
	ok "scripts/setup.sh installs every build dependency" ||
	bad "build dependencies scripts/setup.sh does not install:${missing:- (none found)}"

echo "1..$n"
echo "$((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
