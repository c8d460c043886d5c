# shellcheck shell=bash
# Common settings for the VM test rig scripts (sourced, not executed).
#
# Everything is derived from this file's location or from environment
# variables; nothing about the machine is hard-coded.

vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_top=$(cd "$vm_dir/../.." && pwd)

# Directory with a prebuilt kernel (bzImage + config-full), beside the checkout.
: "${SHARED_VM_DIR:=$repo_top/../shared/vm}"
# Scratch and cache: kernel sources, builds, headers, initramfs, logs.
# Default /var/cache/ioasid-vm; if that cannot be written (not root), the
# user's cache directory.
if [ -z "${IOASID_VM_CACHE:-}" ]; then
	IOASID_VM_CACHE=/var/cache/ioasid-vm
	if ! mkdir -p "$IOASID_VM_CACHE" 2>/dev/null || [ ! -w "$IOASID_VM_CACHE" ]; then
		IOASID_VM_CACHE=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ioasid-vm
	fi
fi
export IOASID_VM_CACHE
# Serial logs of the boots.  Runs that may overlap (two build trees on one
# machine) each need their own: make check-vm puts them in its build tree.
: "${IOASID_VM_LOGS:=$IOASID_VM_CACHE/logs}"
export IOASID_VM_LOGS
# Debian package that carries the kernel source, and the suite it lives in.
: "${IOASID_VM_KPKG:=linux-source-7.3}"
: "${IOASID_VM_SUITE:=trixie-backports}"

# shellcheck disable=SC2034 # used by the scripts that source this file
vm_fragment=$vm_dir/config-fragment
# shellcheck disable=SC2034
vm_env_file=$IOASID_VM_CACHE/current.env

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }

# config_matches FRAGMENT CONFIG
# True when every option of FRAGMENT has the same value in the full CONFIG
# ("=n" and "# CONFIG_X is not set" mean: absent or not set). Prints the
# options that differ on stderr.
config_matches() {
	awk '
	FNR == NR {
		if ($0 ~ /^CONFIG_[A-Za-z0-9_]+=/) {
			i = index($0, "="); opt = substr($0, 1, i - 1); val = substr($0, i + 1)
			want[opt] = val
		} else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set/) {
			want[$2] = "n"
		}
		next
	}
	/^CONFIG_[A-Za-z0-9_]+=/ { i = index($0, "="); have[substr($0, 1, i - 1)] = substr($0, i + 1) }
	END {
		bad = 0
		for (o in want) {
			h = (o in have) ? have[o] : "n"
			if (h != want[o]) { printf "  %s: want %s, have %s\n", o, want[o], h > "/dev/stderr"; bad = 1 }
		}
		exit bad
	}' "$1" "$2"
}

# run_dir: a private directory for one run's guest programs and initramfs
# (the kernel cache is shared and locked; these are not), removed at exit.
make_run_dir() {
	mkdir -p "$IOASID_VM_CACHE/run"
	run_dir=$(mktemp -d "$IOASID_VM_CACHE/run/${0##*/}.XXXXXX")
	# shellcheck disable=SC2064 # expand now: the directory of this run
	trap "rm -rf '$run_dir'" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Checksum of a config fragment's options only (comments and order do not
# matter): the cache key of kernels built from it.
fragment_sha() {
	grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set)' "$1" | LC_ALL=C sort | sha256sum | cut -d' ' -f1
}
