#!/usr/bin/env bash
# mkinitrd.sh - build the rig's initramfs: static busybox, tests/vm/init as
# /init, and the given test programs (run in the given order by /init).
#
# Usage: mkinitrd.sh -o OUT.cpio.gz [--add SRC=DEST]... [--xfail FILE] PROG...
#   PROG          an executable (static, dynamic - its shared libraries are
#                 collected with ldd - or a #!/bin/sh script); installed as
#                 /tests/<basename>
#   --add S=D     also copy file S to path D inside the image (data files,
#                 or programs the tests start: an executable's shared
#                 libraries come along)
#   --xfail FILE  list of known-failing case names (see tests/vm/init)
# Environment: BUSYBOX (default: busybox from PATH; must be static,
#   Debian's busybox-static), IOASID_VM_CACHE (scratch space).
# Exit status: 0 ok, 77 no static busybox, 1 error.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="" progs=() adds=()
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--xfail) adds+=("$2=/tests/xfail"); shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; progs+=("$@"); break ;;
	-*) die "unknown option $1" ;;
	*) progs+=("$1"); shift ;;
	esac
done
[ -n "$out" ] || die "usage: mkinitrd.sh -o OUT.cpio.gz PROG..."

bb=${BUSYBOX:-$(command -v busybox || true)}
if [ -z "$bb" ] || [ ! -x "$bb" ]; then skip "busybox not found (apt-get install busybox-static)"; fi
if ldd "$bb" >/dev/null 2>&1; then
	skip "$bb is dynamically linked (apt-get install busybox-static)"
fi
for t in cpio gzip; do command -v "$t" >/dev/null || skip "$t not found"; done

mkdir -p "$IOASID_VM_CACHE/tmp"
stage=$(mktemp -d "$IOASID_VM_CACHE/tmp/initrd.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,tests,lib,lib64}
cp "$bb" "$stage/bin/busybox"
# Applet links, e.g. "usr/bin/awk" -> /bin/busybox.
"$bb" --list-full | while read -r applet; do
	[ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done
[ -e "$stage/bin/sh" ] || die "busybox has no sh applet"
install -m 0755 "$vm_dir/init" "$stage/init"
echo 'root:x:0:0:root:/tmp:/bin/sh' >"$stage/etc/passwd"
echo 'root:x:0:' >"$stage/etc/group"

# copy_libs FILE: the shared libraries FILE needs, at the same paths.
copy_libs() {
	local lib
	# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
	# "/lib64/ld-linux-x86-64.so.2 (0x...)"
	{ ldd "$1" 2>/dev/null || true; } | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }' | while read -r lib; do
		[ -e "$stage$lib" ] && continue
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done
}

: >"$stage/tests/list"
for p in "${progs[@]}"; do
	if [ ! -f "$p" ] || [ ! -x "$p" ]; then die "not an executable file: $p"; fi
	name=$(basename "$p")
	[ -e "$stage/tests/$name" ] && die "two test programs named $name"
	cp -L "$p" "$stage/tests/$name"
	copy_libs "$p"
	echo "$name" >>"$stage/tests/list"
done
for a in "${adds[@]}"; do
	src=${a%%=*} dst=${a#*=}
	[ -e "$src" ] || die "--add: no such file $src"
	mkdir -p "$stage$(dirname "$dst")"
	cp -L "$src" "$stage$dst"
	if [ -x "$src" ]; then copy_libs "$src"; fi
done

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner 0:0 --quiet) | gzip -n -6 >"$out.tmp"
mv "$out.tmp" "$out"
log "$out: $(du -h "$out" | cut -f1), tests: ${progs[*]:-none}"
