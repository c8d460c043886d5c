#!/usr/bin/env bash
# build-kernel.sh - provide a guest kernel (bzImage) and its uAPI headers for
# the VM test rig.
#
# Order of preference:
#   1. a kernel in the cache built from (or checked against) the same
#      tests/vm/config-fragment (matched by the sha256 of its sorted option
#      lines, so comments do not matter);
#   2. $SHARED_VM_DIR/bzImage, when $SHARED_VM_DIR/config-full has every
#      option of tests/vm/config-fragment with the same value (copied into
#      the cache);
#   3. a build from Debian's linux-source-7.3 package (trixie-backports),
#      fetched with a private apt state under the cache.
# uAPI headers (make headers_install) always come from the same source
# package; they are needed to build the guest test programs.
#
# Usage: build-kernel.sh [--from-source] [--need-source] [--offline] [--refresh]
#   --from-source  ignore the cache and $SHARED_VM_DIR; build from source
#   --need-source  also make sure the extracted source tree is kept (selftests)
#   --offline      never call apt; exit 77 if what is needed is not cached
#   --refresh      ask apt for the newest source version and build it if it
#                  is not the cached one
# Environment: SHARED_VM_DIR, IOASID_VM_CACHE, IOASID_VM_KPKG,
#   IOASID_VM_SUITE, IOASID_VM_OFFLINE=1, JOBS, IOASID_VM_KEEP_BUILD=1.
# Output: shell assignments on stdout (also written to $IOASID_VM_CACHE/current.env):
#   KERNEL_IMAGE KERNEL_CONFIG KERNEL_RELEASE KERNEL_ORIGIN KERNEL_SRC_VERSION
#   KERNEL_HEADERS (an include directory) KERNEL_SRC (may be empty)
# Exit status: 0 ok, 77 no kernel can be had (offline, no apt source), 1 error.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

from_source=0 need_source=0 refresh=0
offline=${IOASID_VM_OFFLINE:-0}
for a in "$@"; do
	case $a in
	--from-source) from_source=1 ;;
	--need-source) need_source=1 ;;
	--offline) offline=1 ;;
	--refresh) refresh=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $a" ;;
	esac
done

[ -r "$vm_fragment" ] || die "missing $vm_fragment"
mkdir -p "$IOASID_VM_CACHE" || skip "cannot create cache directory $IOASID_VM_CACHE (set IOASID_VM_CACHE)"
exec 9>"$IOASID_VM_CACHE/.build-kernel.lock"
flock 9

frag_sha=$(fragment_sha "$vm_fragment")
frag_key=${frag_sha:0:16}
jobs=${JOBS:-$(nproc)}
kpkg=$IOASID_VM_KPKG
apt_dir=$IOASID_VM_CACHE/apt

# --- helpers ---------------------------------------------------------------

# Kernel release string from a bzImage's setup header (kernel_version field).
bzimage_release() {
	local off
	off=$(od -An -tu2 -j526 -N2 "$1" | tr -d ' ')
	if [ -z "$off" ] || [ "$off" -eq 0 ]; then echo unknown; return; fi
	dd if="$1" bs=1 skip=$((off + 512)) count=200 2>/dev/null | tr '\0' '\n' | head -n1 | cut -d' ' -f1
}

apt_opts=()
apt_setup() {
	[ "${#apt_opts[@]}" -eq 0 ] || return 0
	[ "$offline" = 1 ] && skip "offline and the kernel/headers are not cached in $IOASID_VM_CACHE"
	command -v apt-get >/dev/null || skip "no apt-get: cannot fetch $kpkg"
	local sys=/etc/apt/sources.list.d/debian.sources
	[ -r "$sys" ] || skip "no $sys to derive the $IOASID_VM_SUITE source from"
	mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	# Copy the Debian (not -security) stanza, same URI and Signed-By, new suite.
	awk -v suite="$IOASID_VM_SUITE" 'BEGIN { RS = ""; ORS = "\n\n" }
		/URIs:[ \t]*[^ \t\n]*\/debian\/?[ \t]*(\n|$)/ && !done {
			gsub(/Suites:[^\n]*/, "Suites: " suite); print; done = 1 }' \
		"$sys" >"$apt_dir/sources.list.d/ioasid-vm.sources"
	[ -s "$apt_dir/sources.list.d/ioasid-vm.sources" ] || skip "no Debian entry in $sys"
	apt_opts=(
		-o "Dir::Etc::SourceList=/dev/null"
		-o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
		-o "Dir::State::Lists=$apt_dir/lists"
		-o "Dir::Cache=$apt_dir/cache"
		-o "APT::Sandbox::User=root"
	)
	log "apt-get update ($IOASID_VM_SUITE, private state in $apt_dir)"
	apt-get "${apt_opts[@]}" -qq update >&2 || skip "apt-get update of $IOASID_VM_SUITE failed (no network?)"
}

# Sets $cand to apt's candidate version of the source package. Not to be
# called in a subshell: apt_setup's state must survive for the download.
cand=""
candidate_version() {
	apt_setup
	cand=$(apt-cache "${apt_opts[@]}" policy "$kpkg" | awk '/Candidate:/ { print $2 }')
	if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then skip "$kpkg not found in $IOASID_VM_SUITE"; fi
}

# Newest version for which the source tree (or headers) is cached.
newest_cached() { # subdir
	local d=$IOASID_VM_CACHE/$1
	[ -d "$d" ] || return 0
	find "$d" -mindepth 2 -maxdepth 2 -name .done -printf '%h\n' | xargs -r -n1 basename | sort -V | tail -n1
}

install_build_deps() {
	local need=() p
	for p in bc bison flex libelf-dev libssl-dev cpio rsync make gcc; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
	done
	[ "${#need[@]}" -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing build dependencies (install as root): ${need[*]}"
	log "installing build dependencies: ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2 ||
		{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2; } ||
		die "cannot install ${need[*]}"
}

# fetch_source VERSION -> extracted tree in $IOASID_VM_CACHE/src/VERSION/
fetch_source() {
	local ver=$1 d=$IOASID_VM_CACHE/src/$1
	if [ -e "$d/.done" ]; then return 0; fi
	apt_setup
	rm -rf "$d"
	mkdir -p "$d/dl"
	log "downloading $kpkg=$ver"
	local t0=$SECONDS
	(cd "$d/dl" && apt-get "${apt_opts[@]}" -qq download "$kpkg=$ver" >&2) ||
		die "apt-get download $kpkg=$ver failed"
	log "extracting (download took $((SECONDS - t0)) s)"
	dpkg-deb -x "$d"/dl/*.deb "$d/pkg"
	local tarball
	tarball=$(find "$d/pkg/usr/src" -maxdepth 1 -name "linux-source-*.tar.*" | head -n1)
	[ -n "$tarball" ] || die "no source tarball in the $kpkg package"
	tar -xf "$tarball" -C "$d"
	rm -rf "$d/dl" "$d/pkg"
	local tree
	tree=$(find "$d" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
	[ -f "$tree/Makefile" ] || die "unexpected layout of the source tarball"
	ln -sfn "$(basename "$tree")" "$d/linux"
	touch "$d/.done"
	log "source ready in $d/linux ($((SECONDS - t0)) s)"
}

# headers VERSION -> $IOASID_VM_CACHE/headers/VERSION/include
make_headers() {
	local ver=$1 d=$IOASID_VM_CACHE/headers/$1
	if [ -e "$d/.done" ]; then return 0; fi
	fetch_source "$ver"
	install_build_deps
	rm -rf "$d"
	mkdir -p "$d"
	log "make headers_install ($ver)"
	make -s -C "$IOASID_VM_CACHE/src/$ver/linux" O="$d/obj" INSTALL_HDR_PATH="$d" headers_install >&2
	rm -rf "$d/obj"
	[ -f "$d/include/linux/iommufd.h" ] || die "headers_install did not produce linux/iommufd.h"
	touch "$d/.done"
}

# build VERSION -> $IOASID_VM_CACHE/kernel/<fragkey>-<version>/
build_kernel() {
	local ver=$1 key out b t0
	key=$frag_key-$ver
	out=$IOASID_VM_CACHE/kernel/$key
	b=$IOASID_VM_CACHE/build/$key
	fetch_source "$ver"
	install_build_deps
	local src=$IOASID_VM_CACHE/src/$ver/linux
	t0=$SECONDS
	mkdir -p "$b"
	log "configuring ($src, O=$b)"
	make -s -C "$src" O="$b" KCONFIG_ALLCONFIG="$vm_fragment" allnoconfig >&2
	config_matches "$vm_fragment" "$b/.config" ||
		die "config-fragment options were dropped by Kconfig (unmet dependencies?), see above"
	log "make -j$jobs bzImage (log: $b/build.log)"
	if ! make -C "$src" O="$b" -j"$jobs" bzImage >"$b/build.log" 2>&1; then
		tail -n 30 "$b/build.log" >&2
		die "kernel build failed, see $b/build.log"
	fi
	local secs=$((SECONDS - t0))
	rm -rf "$out"
	mkdir -p "$out"
	cp "$b/arch/x86/boot/bzImage" "$out/bzImage"
	cp "$b/.config" "$out/config"
	cp "$vm_fragment" "$out/config-fragment"
	cat >"$out/info" <<-EOF
		origin=built
		fragment_sha256=$frag_sha
		source_version=$ver
		build_seconds=$secs
		built_on=$(date -u +%Y-%m-%dT%H:%M:%SZ)
		jobs=$jobs
	EOF
	if [ "${IOASID_VM_KEEP_BUILD:-0}" != 1 ]; then rm -rf "$b"; fi
	log "kernel built in $secs s -> $out"
	echo "$out"
}

# A cached kernel dir made for this fragment (newest source version first).
cached_kernel() {
	local d best="" bestv=""
	for d in "$IOASID_VM_CACHE"/kernel/*/; do
		if [ ! -f "$d/info" ] || [ ! -f "$d/bzImage" ]; then continue; fi
		grep -qx "fragment_sha256=$frag_sha" "$d/info" || continue
		local v
		v=$(sed -n 's/^source_version=//p' "$d/info")
		if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$bestv" "$v" | sort -V | tail -n1)" = "$v" ]; then
			best=${d%/} bestv=$v
		fi
	done
	echo "$best"
}

shared_kernel() {
	local s=$SHARED_VM_DIR
	[ -f "$s/bzImage" ] && [ -f "$s/config-full" ] || return 0
	if ! config_matches "$vm_fragment" "$s/config-full" 2>"$IOASID_VM_CACHE/shared-mismatch.txt"; then
		log "$s/bzImage does not match tests/vm/config-fragment:"
		sed 's/^/    /' "$IOASID_VM_CACHE/shared-mismatch.txt" >&2
		return 0
	fi
	local bsha out
	bsha=$(sha256_of "$s/bzImage")
	out=$IOASID_VM_CACHE/kernel/$frag_key-shared-${bsha:0:16}
	if [ ! -f "$out/info" ]; then
		mkdir -p "$out"
		cp "$s/bzImage" "$out/bzImage"
		cp "$s/config-full" "$out/config"
		cp "$vm_fragment" "$out/config-fragment"
		cat >"$out/info" <<-EOF
			origin=shared
			shared_dir=$s
			bzimage_sha256=$bsha
			fragment_sha256=$frag_sha
			source_version=
		EOF
	fi
	echo "$out"
}

# --- main ------------------------------------------------------------------

kdir=""
if [ "$from_source" = 0 ] && [ "$refresh" = 0 ]; then
	kdir=$(cached_kernel)
	[ -n "$kdir" ] || kdir=$(shared_kernel)
fi
if [ "$refresh" = 1 ] && [ "$from_source" = 0 ]; then
	candidate_version
	[ -f "$IOASID_VM_CACHE/kernel/$frag_key-$cand/info" ] && kdir=$IOASID_VM_CACHE/kernel/$frag_key-$cand
fi
if [ -z "$kdir" ]; then
	if [ "$offline" = 1 ]; then
		skip "no cached or shared kernel matches tests/vm/config-fragment and --offline forbids a build"
	fi
	[ -n "$cand" ] || candidate_version
	kdir=$(build_kernel "$cand")
fi

origin=$(sed -n 's/^origin=//p' "$kdir/info")
kver=$(sed -n 's/^source_version=//p' "$kdir/info")
# Headers (and source) version: the kernel's own; for a shared image the
# newest one cached, else apt's candidate.
hver=$kver
if [ -z "$hver" ]; then
	hver=$(newest_cached headers)
	[ "$need_source" = 1 ] && [ -n "$hver" ] && [ ! -e "$IOASID_VM_CACHE/src/$hver/.done" ] && hver=""
	[ -n "$hver" ] || hver=$(newest_cached src)
	if [ -z "$hver" ]; then
		candidate_version
		hver=$cand
	fi
fi
make_headers "$hver"
ksrc=""
if [ "$need_source" = 1 ]; then
	fetch_source "$hver"
fi
[ -e "$IOASID_VM_CACHE/src/$hver/.done" ] && ksrc=$IOASID_VM_CACHE/src/$hver/linux

release=$(bzimage_release "$kdir/bzImage")
{
	printf 'KERNEL_IMAGE=%q\n' "$kdir/bzImage"
	printf 'KERNEL_CONFIG=%q\n' "$kdir/config"
	printf 'KERNEL_RELEASE=%q\n' "$release"
	printf 'KERNEL_ORIGIN=%q\n' "$origin"
	printf 'KERNEL_SRC_VERSION=%q\n' "$hver"
	printf 'KERNEL_HEADERS=%q\n' "$IOASID_VM_CACHE/headers/$hver/include"
	printf 'KERNEL_SRC=%q\n' "$ksrc"
} >"$vm_env_file.tmp"
mv "$vm_env_file.tmp" "$vm_env_file"
log "kernel $release ($origin) $kdir/bzImage; headers $hver"
cat "$vm_env_file"
