#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Debian packages, built, installed into a clean Debian root, used and
# removed again (run as root on Debian, from scripts/setup.sh test):
#
#   scripts/check-packages.sh BUILDDIR
#
#  1. make dist in BUILDDIR (a configured tree); the tarball is the native
#     source package: dpkg-buildpackage -us -uc -b in BUILDDIR/deb/src;
#  2. lintian on the .changes: no error or warning;
#  3. a minbase root of this host's release made by debootstrap from the
#     mirror apt uses here (read from its sources), cached in
#     BUILDDIR/deb/base and copied afresh for each run;
#  4. apt installs the four packages there, their dependencies from the
#     mirror; ioasidctl --version, ioasidd --help, and examples/vmm_flow.c
#     built with pkg-config --cflags --libs libioasid against
#     libioasid-dev, then run on the simulated IOMMU;
#  5. apt purges them (and what they pulled in): nothing they owned (dpkg
#     -L before) is left, and the root's files are those from before
#     (the group kvm ioasid-daemon creates when it is missing stays, as
#     Debian's system groups do).
#
# Writes BUILDDIR/tests/check-packages.{log,trs} (scripts/test-summary.sh
# counts it) and says how long each step took.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
work=$build/deb
log=$build/tests/check-packages.log
trs=$build/tests/check-packages.trs
jobs=$(nproc 2>/dev/null || echo 2)
pkgs=(ioasid-daemon ioasid-tools libioasid-dev)
mkdir -p "$build/tests" "$work"
: > "$log"

say() { echo "check-packages: $*" | tee -a "$log"; }
result() {	# result PASS|FAIL|SKIP MESSAGE
	printf ':test-result: %s\n' "$1" > "$trs"
	say "$1: $2"
	case $1 in PASS) exit 0 ;; SKIP) exit 0 ;; *) exit 1 ;; esac
}
fail() { result FAIL "$*"; }
# run STEP CMD...: CMD's output into the log; on failure its end is shown
run() {
	local step=$1; shift
	if ! "$@" >> "$log" 2>&1; then
		tail -n 40 "$log" >&2
		fail "$step failed (the whole log: $log)"
	fi
}
t0=$SECONDS start=$SECONDS
lap() { say "$1 ($((SECONDS - t0)) s)"; t0=$SECONDS; }

[ "$(id -u)" -eq 0 ] || result SKIP "needs root (debootstrap and chroot)"
for tool in dpkg-buildpackage dh lintian debootstrap chroot; do
	command -v "$tool" > /dev/null ||
		result SKIP "no $tool (Debian: dpkg-dev, debhelper, lintian, debootstrap)"
done
. /etc/os-release
codename=${VERSION_CODENAME:-}
[ "${ID:-}" = debian ] && [ -n "$codename" ] ||
	result SKIP "not a Debian host (debootstrap makes a root of the host's release)"
arch=$(dpkg --print-architecture)

# ---- 1. build ---------------------------------------------------------------
version=$(sed -n 's/^AC_INIT(\[ioasid\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
lib=$(sed -n 's/^Package: \(libioasid[0-9][0-9]*\)$/\1/p' "$top/debian/control")
pkgs+=("$lib")
run "make dist" make -C "$build" dist
rm -rf "$work/src"
mkdir -p "$work/src"
run "unpacking the tarball" tar -C "$work/src" -xJf "$build/ioasid-$version.tar.xz"
# the suite ran on this tree already: nocheck (and none of its build deps)
(cd "$work/src/ioasid-$version" &&
	DEB_BUILD_OPTIONS="nocheck parallel=$jobs" \
	run "dpkg-buildpackage" dpkg-buildpackage -us -uc -b -Pnocheck)
changes=$work/src/ioasid_${version}_$arch.changes
debs=()
for p in "${pkgs[@]}"; do
	debs+=("$work/src/${p}_${version}_$arch.deb")
	[ -f "${debs[-1]}" ] || fail "dpkg-buildpackage made no ${debs[-1]##*/}"
done
lap "built ${pkgs[*]}"

# ---- 2. lintian ---------------------------------------------------------------
if ! lintian --info --pedantic --fail-on error,warning "$changes" >> "$log" 2>&1; then
	grep -E '^[EW]: ' "$log" >&2 || tail -n 20 "$log" >&2
	fail "lintian found errors or warnings"
fi
lap "lintian: no errors, no warnings ($(grep -c '^[IPX]: ' "$log" || true) info/pedantic tags)"

# ---- 3. a clean root ------------------------------------------------------------
# The mirror apt uses on this host: the entries of its sources for this
# release (deb822 .sources and one-line .list files), main only.
apt_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
			if ($2 ~ /^\[/) i++; print $i, $(i + 1) }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'function flush() {
			if (types ~ /(^| )deb( |$)/ && enabled != "no")
				for (u in uris) for (s in suites) print u, s
			types = ""; enabled = ""; delete uris; delete suites }
		/^[ \t]*$/ { flush(); next }
		/^#/ { next }
		{ key = tolower($1); sub(/:$/, "", key) }
		key == "types" { types = substr($0, index($0, ":") + 1) }
		key == "enabled" { enabled = tolower($2) }
		key == "uris" { for (i = 2; i <= NF; i++) uris[$i] }
		key == "suites" { for (i = 2; i <= NF; i++) suites[$i] }
		END { flush() }' "$f"
	done
}
sources=$(apt_sources | awk -v c="$codename" '$2 == c || index($2, c "-") == 1' |
	awk '!seen[$0]++')
mirror=$(awk -v c="$codename" '$2 == c { print $1; exit }' <<<"$sources")
[ -n "$mirror" ] || fail "no '$codename' entry in this host's apt sources"
# a proxy apt is told to use serves debootstrap too
proxy=$(apt-config shell p Acquire::http::Proxy 2>/dev/null | sed -n "s/^p='\(.*\)'$/\1/p")
[ -n "$proxy" ] && export http_proxy=$proxy

base=$work/base
root=$work/root
# debootstrap once per build tree; what the checks need is in the base:
# gcc and pkg-config (the packages' own dependencies are not)
if [ ! -f "$base/.complete" ]; then
	rm -rf "$base"
	run "debootstrap $codename from $mirror" debootstrap --variant=minbase \
		--include=gcc,libc6-dev,pkg-config "$codename" "$base" "$mirror"
	awk '{ print "deb", $1, $2, "main" }' <<<"$sources" > "$base/etc/apt/sources.list"
	touch "$base/.complete"
	lap "debootstrap: a minbase $codename root from $mirror"
fi
# Nothing is mounted in the root: apt, dpkg, the maintainer scripts, gcc
# and the example need neither /proc nor more of /dev than debootstrap's.
rm -rf "$root"
cp -a "$base" "$root"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 HOME=/root "$@"; }
run "apt-get update in the root" in_root apt-get update -q

# what the root holds before (volatile parts of apt, dpkg and the logs,
# /run and the backups any change of the user database leaves aside)
snapshot() {
	(cd "$root" && find . -xdev \( -path ./proc -o -path ./tmp -o \
		-path ./run -o -path ./var/cache -o -path ./var/log -o \
		-path ./var/lib/apt -o -path ./var/lib/dpkg \) -prune -o -print) |
		grep -Ev '^\./etc/(passwd|group|shadow|gshadow)-$' | LC_ALL=C sort
}
snapshot > "$work/before.list"

# ---- 4. install and use ---------------------------------------------------------
mkdir -p "$root/tmp/debs"
cp "${debs[@]}" "$root/tmp/debs/"
in_debs=()
for d in "${debs[@]}"; do in_debs+=("/tmp/debs/${d##*/}"); done
run "apt-get install of the packages" in_root apt-get install -y -q \
	--no-install-recommends "${in_debs[@]}"
lap "installed ${pkgs[*]} with their dependencies"
out=$(in_root ioasidctl --version 2>&1) || fail "ioasidctl --version: $out"
say "ioasidctl --version: $out"
out=$(in_root ioasidd --help 2>&1) || fail "ioasidd --help: $out"
grep -q -- '--backend' <<<"$out" || fail "ioasidd --help does not say --backend: $out"
say "ioasidd --help: $(head -n 1 <<<"$out")"
# the daemon reads the installed policy (it is read before the backend
# opens, so a backend that cannot be opened ends it right after)
out=$(in_root ioasidd --backend unix:none 2>&1) && fail "ioasidd --backend unix:none started"
grep -q 'not a local backend' <<<"$out" ||
	fail "ioasidd did not get past /etc/ioasidd.conf: $out"
say "ioasidd reads the installed /etc/ioasidd.conf"
# socket activation: the socket is enabled, the daemon itself is not;
# the socket's group exists
[ -L "$root/etc/systemd/system/sockets.target.wants/ioasidd.socket" ] ||
	fail "ioasidd.socket is not enabled"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/ioasidd.service" ] ||
	fail "ioasidd.service is enabled (it should start on the first connection)"
in_root getent group kvm > /dev/null || fail "no group kvm for ioasidd.socket"
say "ioasidd.socket is enabled (group kvm), ioasidd.service is not"
cp "$top/examples/vmm_flow.c" "$root/tmp/"
run "building examples/vmm_flow.c against libioasid-dev" in_root sh -c \
	'gcc -Wall -Werror -o /tmp/vmm_flow /tmp/vmm_flow.c $(pkg-config --cflags --libs libioasid)'
so=$(in_root ldd /tmp/vmm_flow | awk '$1 ~ /^libioasid\.so\./ { print $3 }')
owner=$(in_root sh -c 'dpkg-query -S "$(readlink -f "$1")"' sh "${so:-/nonexistent}" 2>&1) &&
	[ "${owner%%:*}" = "$lib" ] ||
	fail "examples/vmm_flow does not load the packaged libioasid (ldd: ${so:-none}; $owner)"
rc=0
in_root /tmp/vmm_flow >> "$log" 2>&1 || rc=$?
case $rc in
0) say "examples/vmm_flow builds with pkg-config and runs" ;;
77) say "examples/vmm_flow builds with pkg-config (its run skipped: see the log)" ;;
*) tail -n 20 "$log" >&2; fail "examples/vmm_flow exits $rc" ;;
esac
rm -f "$root/tmp/vmm_flow" "$root/tmp/vmm_flow.c"

# ---- 5. remove ---------------------------------------------------------------------
in_root dpkg -L "${pkgs[@]}" | LC_ALL=C sort -u > "$work/owned.list"
run "apt-get purge of the packages" in_root apt-get purge -y -q --autoremove "${pkgs[@]}"
rm -rf "$root/tmp/debs"
left=$(in_root dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${pkgs[@]}" 2>/dev/null |
	grep -v '^un ' || true)
[ -z "$left" ] || fail "dpkg still knows: $left"
leftover=()
while IFS= read -r p; do
	[ -n "$p" ] && [ "$p" != /. ] || continue
	if [ -L "$root$p" ] || [ -e "$root$p" ]; then
		# a directory may stay if it was there before (/usr/share, or
		# /lib, a link to usr/lib) or another package still owns it
		if [ -d "$root$p" ] && { grep -qxF ".$p" "$work/before.list" ||
		   in_root dpkg-query -S "$p" > /dev/null 2>&1; }; then
			continue
		fi
		leftover+=("$p")
	fi
done < "$work/owned.list"
[ ${#leftover[@]} -eq 0 ] || fail "left after purge: ${leftover[*]}"
snapshot > "$work/after.list"
if ! d=$(diff "$work/before.list" "$work/after.list"); then
	printf '%s\n' "$d" | tee -a "$log" >&2
	fail "the root differs from before the install (< before, > after)"
fi
lap "purged: nothing of the $(wc -l < "$work/owned.list") paths they owned is left"
rm -rf "$root"
result PASS "built, lintian-clean, installed, used and purged in a clean $codename root ($((SECONDS - start)) s)"
