#!/usr/bin/env bash
# mkinitrd.sh - build the rig's initramfs: static busybox, tests/vm/init as
# /init, and the given test programs (run in the given order by /init).
#
# Usage: mkinitrd.sh -o OUT.cpio.gz [--add SRC=DEST]... [--xfail FILE]
#                    [--systemd] PROG...
#   PROG          an executable (static, dynamic - its shared libraries are
#                 collected with ldd - or a #!/bin/sh script); installed as
#                 /tests/<basename>
#   --add S=D     also copy file S to path D inside the image (data files,
#                 or programs the tests start: an executable's shared
#                 libraries come along)
#   --xfail FILE  list of known-failing case names (see tests/vm/init)
#   --systemd     also the host's systemd (PID 1, journald, systemctl,
#                 journalctl, their libraries), the special units it needs
#                 and tests/vm/systemd/*: /init then execs systemd, which
#                 starts ioasid-vm-tests.service, which runs /init again
#                 for the tests (see tests/vm/README.md, "systemd boot")
# Environment: BUSYBOX (default: busybox from PATH; must be static,
#   Debian's busybox-static), SYSTEMD_LIB (default /lib/systemd),
#   IOASID_VM_CACHE (scratch space).
# Exit status: 0 ok, 77 no static busybox (or, --systemd, no systemd), 1 error.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="" progs=() adds=() systemd=0
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--xfail) adds+=("$2=/tests/xfail"); shift 2 ;;
	--systemd) systemd=1; shift ;;
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
sd_lib=${SYSTEMD_LIB:-/lib/systemd}
if [ "$systemd" = 1 ]; then
	for f in "$sd_lib/systemd" "$sd_lib/systemd-journald" "$sd_lib/system/basic.target"; do
		[ -e "$f" ] || skip "no $f (apt-get install systemd)"
	done
	for t in systemctl journalctl; do
		command -v "$t" >/dev/null || skip "$t not found (apt-get install systemd)"
	done
fi

mkdir -p "$IOASID_VM_CACHE/tmp"
stage=$(mktemp -d "$IOASID_VM_CACHE/tmp/initrd.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,tests,lib,lib64}

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

cp "$bb" "$stage/bin/busybox"
# Applet links, e.g. "usr/bin/awk" -> /bin/busybox.
"$bb" --list-full | while read -r applet; do
	[ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done
[ -e "$stage/bin/sh" ] || die "busybox has no sh applet"
install -m 0755 "$vm_dir/init" "$stage/init"
echo 'root:x:0:0:root:/tmp:/bin/sh' >"$stage/etc/passwd"
echo 'root:x:0:' >"$stage/etc/group"

if [ "$systemd" = 1 ]; then
	# PID 1 and what the tests use of it; no udev, no generators: the
	# guest has no disks, and the rig's /init binds the devices.
	for f in "$sd_lib/systemd" "$sd_lib/systemd-journald" \
		"$(command -v systemctl)" "$(command -v journalctl)"; do
		d=$f
		case $f in */systemctl | */journalctl) d=/usr/bin/${f##*/} ;; esac
		mkdir -p "$stage$(dirname "$d")"
		rm -f "$stage$d"
		cp -L "$f" "$stage$d"
		copy_libs "$f"
	done
	# The special units the default dependencies name (their .wants
	# directories stay behind), journald's, and the rig's own.
	u=$stage/lib/systemd/system
	mkdir -p "$u"
	for f in basic.target sysinit.target sockets.target timers.target \
		paths.target slices.target local-fs.target swap.target \
		shutdown.target umount.target final.target multi-user.target \
		network.target \
		systemd-journald.service systemd-journald.socket \
		systemd-journald-dev-log.socket; do
		cp "$sd_lib/system/$f" "$u/$f"
	done
	cp "$vm_dir"/systemd/* "$u/"
	ln -s ioasid-vm.target "$u/default.target"
	# journald from the start, as Debian enables it (ioasidd's log)
	mkdir -p "$u/sockets.target.wants" "$u/sysinit.target.wants"
	for f in systemd-journald.socket systemd-journald-dev-log.socket; do
		ln -s "../$f" "$u/sockets.target.wants/$f"
	done
	ln -s ../systemd-journald.service "$u/sysinit.target.wants/systemd-journald.service"
	mkdir -p "$stage/etc/systemd/system" "$stage/var/tmp" "$stage/run" \
		"$stage/var/log/journal"
	# the groups the shipped units name (ioasidd.socket: SocketGroup=kvm)
	printf '%s\n' 'kvm:x:101:' 'systemd-journal:x:102:' >>"$stage/etc/group"
	printf '%s\n' 'ID=ioasid-vm' 'NAME="ioasid VM rig"' >"$stage/etc/os-release"
	echo 5f0c6ee1e3b14b2a9d0c2a0b51f0e7a1 >"$stage/etc/machine-id"
fi

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
