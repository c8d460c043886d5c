#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# sysfs-record.sh - copy the parts of sysfs that libioasid/discovery reads,
# as a tree that tests/test_discovery.c can scan under an injected sysroot.
#
# Usage: sysfs-record.sh OUTDIR     write OUTDIR/sys/... (OUTDIR must not exist)
#        sysfs-record.sh --console  print the tree as a base64 tar.gz between
#                                   "### SYSFS-RECORD BEGIN/END" lines (for
#                                   the VM rig, whose only way out is the
#                                   serial console); ends with "ok 1 - ..."
# Environment: SYSFS (default /sys).
#
# Copied: for every PCI device, vendor, device, class, config (as much as
# the reader may read: run as root for the full space), the driver, iommu
# and iommu_group links (as links), vfio-dev/*/dev; every IOMMU unit's
# uevent and intel-iommu/ or amd-iommu/ attributes; every IOMMU group's
# reserved_regions, type and name. Plain POSIX sh + busybox applets.
set -eu

SYS=${SYSFS:-/sys}

# copy_file SRC DST: a readable attribute (skipped when unreadable).
copy_file() {
	[ -r "$1" ] || return 0
	mkdir -p "$(dirname "$2")"
	cat "$1" >"$2" 2>/dev/null || rm -f "$2"
}

# copy_link SRC DST: a symlink as the same (relative) symlink.
copy_link() {
	[ -L "$1" ] || return 0
	mkdir -p "$(dirname "$2")"
	ln -s "$(readlink "$1")" "$2"
}

record_device() { # OUT DEVLINK
	real=$(readlink -f "$2")
	rel=${real#"$SYS"/}
	dst=$1/sys/$rel
	mkdir -p "$dst"
	for a in vendor device class config; do
		copy_file "$2/$a" "$dst/$a"
	done
	for l in driver iommu iommu_group; do
		copy_link "$2/$l" "$dst/$l"
	done
	if [ -L "$2/driver" ]; then
		drv=$(basename "$(readlink "$2/driver")")
		mkdir -p "$1/sys/bus/pci/drivers/$drv"
		: >"$1/sys/bus/pci/drivers/$drv/uevent"
	fi
	for v in "$2"/vfio-dev/vfio*; do
		[ -e "$v" ] || continue
		copy_file "$v/dev" "$dst/vfio-dev/${v##*/}/dev"
	done
	mkdir -p "$1/sys/bus/pci/devices"
	ln -s "../../../$rel" "$1/sys/bus/pci/devices/${2##*/}"
}

record_unit() { # OUT CLASSLINK
	real=$(readlink -f "$2")
	rel=${real#"$SYS"/}
	for sub in intel-iommu amd-iommu; do
		[ -d "$2/$sub" ] || continue
		for f in "$2/$sub"/*; do
			copy_file "$f" "$1/sys/$rel/$sub/${f##*/}"
		done
	done
	# uevent too, so that no unit directory is empty (git drops those)
	copy_file "$2/uevent" "$1/sys/$rel/uevent"
	copy_link "$2" "$1/sys/class/iommu/${2##*/}"
}

record_group() { # OUT GROUPDIR
	dst=$1/sys/kernel/iommu_groups/${2##*/}
	mkdir -p "$dst"
	for a in reserved_regions type name; do
		copy_file "$2/$a" "$dst/$a"
	done
	for d in "$2"/devices/*; do
		copy_link "$d" "$dst/devices/${d##*/}"
	done
}

record() { # OUT
	mkdir -p "$1/sys"
	for d in "$SYS"/bus/pci/devices/*; do
		[ -e "$d" ] && record_device "$1" "$d"
	done
	for u in "$SYS"/class/iommu/*; do
		[ -e "$u" ] && record_unit "$1" "$u"
	done
	for g in "$SYS"/kernel/iommu_groups/*; do
		[ -d "$g" ] && record_group "$1" "$g"
	done
	return 0
}

case ${1:-} in
--console)
	tmp=$(mktemp -d)
	record "$tmp/root"
	echo "### SYSFS-RECORD BEGIN"
	tar -C "$tmp/root" -czf - . | base64
	echo "### SYSFS-RECORD END"
	rm -rf "$tmp"
	echo "ok 1 - sysfs recorded"
	;;
"" | -*)
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
*)
	[ ! -e "$1" ] || { echo "sysfs-record.sh: $1 exists" >&2; exit 1; }
	record "$1"
	;;
esac
