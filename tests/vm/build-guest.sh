#!/usr/bin/env bash
# build-guest.sh - build the guest test programs, statically linked, against
# the uAPI headers of the guest kernel (make headers_install output).
#
# Usage: build-guest.sh [--selftests] [--out DIR]
#   default      every tests/vm/guest/*.c -> DIR/<name>
#   --selftests  instead: the kernel's tools/testing/selftests/iommu/
#                iommufd and iommufd_fail_nth from the same source tree
#                (needs libcap's static library: Debian libcap-dev)
#   --out DIR    output directory (default $IOASID_VM_CACHE/guest)
# Needs $IOASID_VM_CACHE/current.env from build-kernel.sh (run first; this
# script runs it when the file is missing or lacks what is needed).
# Environment: CC (default cc), CFLAGS (added), IOASID_VM_CACHE.
# Prints the paths of the built programs, one per line, on stdout.
# Exit status: 0 ok, 77 cannot be had (e.g. no kernel/headers), 1 error.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

selftests=0 out=""
while [ $# -gt 0 ]; do
	case $1 in
	--selftests) selftests=1; shift ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1" ;;
	esac
done
out=${out:-$IOASID_VM_CACHE/guest}
cc=${CC:-cc}
command -v "$cc" >/dev/null || skip "no C compiler ($cc)"

KERNEL_HEADERS="" KERNEL_SRC=""
# shellcheck disable=SC1090
[ -r "$vm_env_file" ] && . "$vm_env_file"
if [ ! -d "$KERNEL_HEADERS/linux" ] || { [ "$selftests" = 1 ] && [ ! -d "$KERNEL_SRC" ]; }; then
	args=()
	[ "$selftests" = 1 ] && args+=(--need-source)
	"$vm_dir/build-kernel.sh" "${args[@]}" >/dev/null
	# shellcheck disable=SC1090
	. "$vm_env_file"
fi
[ -f "$KERNEL_HEADERS/linux/iommufd.h" ] || die "no linux/iommufd.h under $KERNEL_HEADERS"

mkdir -p "$out"
# -isystem: the kernel's uAPI headers take precedence over the distribution's
# (Debian 12's linux-libc-dev is 6.1: no IOMMU_IOAS_MAP_FILE, no VFIO cdev).
base=(-static -O2 -g -Wall -isystem "$KERNEL_HEADERS")
read -r -a extra <<<"${CFLAGS:-}"

if [ "$selftests" = 0 ]; then
	for src in "$vm_dir"/guest/*.c; do
		name=$(basename "$src" .c)
		"$cc" "${base[@]}" -Wextra -std=gnu11 "${extra[@]}" -o "$out/$name" "$src" ||
			die "compiling $src failed"
		echo "$out/$name"
	done
	exit 0
fi

# Kernel selftests.
st=$KERNEL_SRC/tools/testing/selftests
[ -f "$st/iommu/iommufd.c" ] || die "no $st/iommu/iommufd.c"
libcap_a=$("$cc" -print-file-name=libcap.a)
if [ ! -f "$libcap_a" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing libcap-dev (static libcap for the selftests)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libcap-dev >&2 ||
			skip "cannot install libcap-dev"
	else
		skip "no static libcap (apt-get install libcap-dev)"
	fi
fi
mkdir -p "$out/selftests"
for t in iommufd iommufd_fail_nth; do
	# As tools/testing/selftests/iommu/Makefile, plus -static.
	"$cc" "${base[@]}" -Wno-unused-function -D_GNU_SOURCE -I"$st" "${extra[@]}" \
		-o "$out/selftests/$t" "$st/iommu/$t.c" -lcap -lpthread ||
		die "compiling $t failed"
	echo "$out/selftests/$t"
done
