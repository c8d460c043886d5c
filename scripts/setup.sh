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
	libcriterion-dev scdoc umockdev libumockdev-dev man-db bash-completion
	libxml2-utils librsvg2-bin
	qemu-system-x86 busybox-static cpio xz-utils systemd
	clang libclang-rt-14-dev
	dpkg-dev debhelper lintian debootstrap
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
	quietly build/setup.log apt-get update -q
	quietly build/setup.log env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# quietly LOG CMD...: run CMD with its output appended to LOG; on failure
# show the log's end and where the whole log is, and fail.
quietly() {
	local log=$1; shift
	mkdir -p "$(dirname "$log")"
	if ! "$@" >> "$log" 2>&1; then
		echo "setup: '$*' failed; the end of $log:" >&2
		tail -n 40 "$log" >&2
		return 1
	fi
}

# configure_in DIR CONFIGURE-ARGS...: autoreconf (once) and configure DIR,
# their output in DIR/setup.log (shown when one fails).
configure_in() {
	local dir=$1; shift
	mkdir -p "$dir"
	local log=$dir/setup.log
	[ -x configure ] || quietly "$log" autoreconf -fi
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ]; then
		quietly "$log" sh -c 'cd "$1" && shift && exec "$@"' sh "$dir" \
			"$top/configure" "$@"
	fi
}

build() {
	configure_in build --enable-werror
	make -C build -j"$jobs"
}

# The demo shows the demo: the build's output goes to build/setup.log.
run_demo() {
	echo "setup: building ioasid (log: build/setup.log)"
	configure_in build --enable-werror
	# two runs: automake's 'all' re-enters make, so 'all examples' in one
	# parallel run builds the same objects twice at once
	quietly build/setup.log make -C build -j"$jobs" V=0 all
	quietly build/setup.log make -C build -j"$jobs" V=0 examples
	"$top/scripts/demo.sh" "$top/build"
}

# stage NAME CMD...: run one stage of the suite; a failure is remembered
# by name, so the closing line cannot read as green when a stage did not
# build or did not run its tests
stage() {
	local name=$1
	shift
	"$@" && return 0
	failed_stages+=("$name")
	echo "setup: stage '$name' failed" >&2
}

run_tests() {
	local rc=0
	failed_stages=()
	# hugetlbfs tests need a few free 2 MiB pages (best effort, as root)
	if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 16 ]; then
		echo 16 > /proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
	build
	# 1. the whole suite on a plain build, then make distcheck
	stage "make check" make -C build -j"$jobs" check VERBOSE=1
	# 2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
	configure_in build-san --enable-asan --enable-ubsan --enable-werror
	stage "ASan+UBSan make check" make -C build-san -j"$jobs" check VERBOSE=1
	# 3. the lock-free simulated hardware under ThreadSanitizer (criterion
	#    cannot run under TSan: these tests bring their own runner), and the
	#    shared view's seqcount against a busy writer
	configure_in build-tsan --enable-tsan --enable-werror
	make -C build-tsan -j"$jobs"
	stage "TSan" make -C build-tsan check VERBOSE=1 TESTS="tests/test_sim_pgtable tests/test_sim_dma tests/test_view"
	# 3b. a short smoke run of each fuzz target (libFuzzer, clang); a
	#     crash is a bug: its input lands in build/fuzz/artifacts/
	stage "fuzz smoke" make -C build fuzz FUZZ_SECONDS=25
	# 4. the real Linux iommufd/VFIO stack in QEMU
	stage "check-vm" make -C build check-vm
	# 5. the release tarball builds and passes its own tests
	stage "distcheck" make -C build -j"$jobs" distcheck VERBOSE=1
	# 6. the Debian packages: built from the tarball, lintian, installed
	#    into a clean debootstrapped root, used, purged
	stage "packages" "$top/scripts/check-packages.sh" build
	# (a failed distcheck leaves its build tree: count its tests too)
	"$top/scripts/test-summary.sh" build build-san build-tsan \
		build/ioasid-*/_build/sub || rc=1
	if [ ${#failed_stages[@]} -gt 0 ]; then
		printf 'failed stages (%d):' ${#failed_stages[@]}
		printf " '%s'" "${failed_stages[@]}"
		echo
		rc=1
	fi
	return $rc
}

# (tests source this file for its functions: SETUP_NO_MAIN=1)
[ -n "${SETUP_NO_MAIN:-}" ] && return 0
install_missing
case "${1:-}" in
demo)	run_demo ;;
test)	run_tests ;;
*)	echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
