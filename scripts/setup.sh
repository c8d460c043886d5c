#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# One-command set-up for a fresh Debian 12 machine (run as root):
#
#   scripts/setup.sh demo   install what is missing, build, run the demo
#   scripts/setup.sh test   install what is missing, build, run every test
#
# Builds in ./build (plain), ./build-san (ASan+UBSan) and ./build-tsan
# (ThreadSanitizer, the concurrent simulated hardware only).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

# Debian packages the build, the tests and the demo need.
packages=(
	build-essential autoconf automake libtool pkg-config
	libnl-3-dev libudev-dev uthash-dev libsystemd-dev
	libcriterion-dev scdoc umockdev libumockdev-dev
	qemu-system-x86 busybox-static cpio xz-utils
)

install_missing() {
	local missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "setup: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages and not root: ${missing[*]}" >&2
		exit 1
	fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

configure_in() {
	local dir=$1; shift
	[ -x configure ] || autoreconf -fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ]; then
		(cd "$dir" && "$top/configure" "$@")
	fi
}

build() {
	configure_in build --enable-werror
	make -C build -j"$jobs"
}

run_demo() {
	build
	make -C build -j"$jobs" examples
	"$top/scripts/demo.sh" "$top/build"
}

run_tests() {
	local rc=0
	# hugetlbfs tests need a few free 2 MiB pages (best effort, as root)
	if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 16 ]; then
		echo 16 > /proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
	build
	# 1. the whole suite on a plain build, then make distcheck
	make -C build -j"$jobs" check || rc=1
	# 2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
	configure_in build-san --enable-asan --enable-ubsan --enable-werror
	make -C build-san -j"$jobs" check || rc=1
	# 3. the lock-free simulated hardware under ThreadSanitizer (criterion
	#    cannot run under TSan: these two tests bring their own runner)
	configure_in build-tsan --enable-tsan --enable-werror
	make -C build-tsan -j"$jobs"
	make -C build-tsan check TESTS="tests/test_sim_pgtable tests/test_sim_dma" || rc=1
	# 4. the real Linux iommufd/VFIO stack in QEMU
	make -C build check-vm || rc=1
	# 5. the release tarball builds and passes its own tests
	make -C build -j"$jobs" distcheck || rc=1
	# (a failed distcheck leaves its build tree: count its tests too)
	"$top/scripts/test-summary.sh" build build-san build-tsan \
		build/ioasid-*/_build/sub || rc=1
	return $rc
}

install_missing
case "${1:-}" in
demo)	run_demo ;;
test)	run_tests ;;
*)	echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
