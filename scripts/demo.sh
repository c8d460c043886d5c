#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The README demo, on a configured and built build directory ($1):
#   1. start ioasidd on the simulated IOMMU, on a private socket;
#   2. run the example VMM flow against it (a real KVM VM, guest RAM in a
#      memfd mapped by fd + offset, two simulated devices, DMA checked in
#      the memfd) and keep its state alive;
#   3. show that state from outside with ioasidctl: status, devices, the
#      address space drawn to scale, the VM's coherency (WBINVD), and
#      the daemon's sessions (the VMM's and ioasidctl's own);
#   4. stop the VMM (it tears down) and the daemon.
set -euo pipefail

build=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d)
sock=$dir/ioasidd.sock
daemon_pid='' vmm_pid=''

cleanup() {
	[ -n "$vmm_pid" ] && kill "$vmm_pid" 2>/dev/null && wait "$vmm_pid" 2>/dev/null
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

# wait_for PID CONDITION-COMMAND...: until the condition holds; fails at
# once when PID (the process that makes it true) has died, and after 120 s
# at the latest, so a slow machine only makes the demo slower
wait_for() {
	local pid=$1
	shift
	for _ in $(seq 1200); do
		"$@" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "demo: process $pid died before: $*" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "demo: timed out waiting for: $*" >&2
	return 1
}

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

ctl() {
	section "ioasidctl $*"
	"$build/ioasidctl/ioasidctl" --uri "unix:$sock" "$@"
}

section "ioasidd on the simulated IOMMU (built-in topology), socket $sock"
"$build/ioasidd/ioasidd" --socket "$sock" --backend sim --log-level notice \
	2> "$dir/ioasidd.log" &
daemon_pid=$!
wait_for "$daemon_pid" test -S "$sock" || { cat "$dir/ioasidd.log"; exit 1; }
echo "ioasidd running (pid $daemon_pid)"

section "the example VMM flow, connected to ioasidd"
"$build/examples/vmm_flow" --keep "unix:$sock" > "$dir/vmm.log" 2>&1 &
vmm_pid=$!
wait_for "$vmm_pid" grep -q "holding the state" "$dir/vmm.log" || { cat "$dir/vmm.log"; exit 1; }
cat "$dir/vmm.log"

ctl status
ctl devices
ctl iommus
ioas=$("$build/ioasidctl/ioasidctl" --uri "unix:$sock" --json ioas list |
	sed -n 's/.*"ioas": \([0-9]*\).*/\1/p' | head -n1)
ctl ioas show "${ioas:-1}"
ctl kvm
ctl session list

section "the VMM stops: its objects go with its session"
kill -TERM "$vmm_pid"
wait "$vmm_pid" 2>/dev/null || true
vmm_pid=''
sed '1,/^holding the state/d' "$dir/vmm.log"
ctl status
