#!/usr/bin/env bash
# run.sh - boot the rig's guest in QEMU (TCG, q35, emulated VT-d, edu device)
# and run test programs in it.
#
# Usage: run.sh [options] [PROG...]
#   --snoop on|off     VT-d snoop-control (ecap.SC) of the emulated IOMMU (on)
#   --selftests        run the kernel's iommufd selftests instead of the
#                      rig's own guest programs (tests/vm/guest/*.c)
#   --no-default       run only the PROGs given (no guest/*.c programs)
#   --kernel FILE      bzImage (default: from build-kernel.sh)
#   --initrd FILE      a ready initramfs from mkinitrd.sh (then no programs
#                      are built and PROG/--selftests are not allowed)
#   --log FILE         serial console log (default under $IOASID_VM_LOGS)
#   --timeout SECS     kill QEMU after SECS (default 300, 900 with --selftests)
#   --append ARGS      extra kernel command line
#   --quiet            do not copy the console to stdout
#   PROG...            extra static (or ldd-collectable) test programs
# Environment: QEMU (default qemu-system-x86_64), IOASID_VM_ACCEL (tcg),
#   IOASID_VM_MEM (1024), IOASID_VM_SMP (2), IOASID_VM_CACHE, and those of
#   build-kernel.sh / build-guest.sh.
# The guest's /init prints "N passed, N failed, N skipped" last; run.sh exits
# 0 if it is there with 0 failed (and something passed), 1 otherwise
# (including a timeout or a missing line), 77 if QEMU is missing or the
# kernel or programs cannot be had (or everything was skipped).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

snoop=on selftests=0 defaults=1 kernel="" initrd="" logf="" tmo="" append="" quiet=0
progs=()
while [ $# -gt 0 ]; do
	case $1 in
	--snoop) snoop=$2; shift 2 ;;
	--snoop=*) snoop=${1#*=}; shift ;;
	--selftests) selftests=1; shift ;;
	--no-default) defaults=0; shift ;;
	--kernel) kernel=$2; shift 2 ;;
	--initrd) initrd=$2; shift 2 ;;
	--log) logf=$2; shift 2 ;;
	--timeout) tmo=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--quiet) quiet=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; progs+=("$@"); break ;;
	-*) die "unknown option $1" ;;
	*) progs+=("$1"); shift ;;
	esac
done
case $snoop in on | off) ;; *) die "--snoop must be on or off" ;; esac
mode=smoke
[ "$selftests" = 1 ] && mode=selftests
[ "$defaults" = 0 ] && [ "$selftests" = 0 ] && mode=custom
if [ -z "$tmo" ]; then
	tmo=300
	[ "$selftests" = 1 ] && tmo=900
fi

qemu=${QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null || skip "$qemu not found (apt-get install qemu-system-x86)"
devs=$("$qemu" -device help 2>/dev/null || true)
for d in '"edu"' '"intel-iommu"'; do
	grep -q "name $d" <<<"$devs" || skip "$qemu has no $d device"
done
"$qemu" -device intel-iommu,help 2>/dev/null | grep -q snoop-control ||
	skip "$qemu's intel-iommu has no snoop-control property"

mkdir -p "$IOASID_VM_LOGS"

if [ -z "$kernel" ]; then
	rc=0
	"$vm_dir/build-kernel.sh" >/dev/null || rc=$?
	[ "$rc" = 0 ] || exit "$rc"
	# shellcheck disable=SC1090
	. "$vm_env_file"
	kernel=$KERNEL_IMAGE
fi
[ -f "$kernel" ] || die "no kernel image $kernel"

if [ -n "$initrd" ]; then
	if [ "${#progs[@]}" -ne 0 ] || [ "$selftests" = 1 ]; then die "--initrd excludes PROG and --selftests"; fi
	[ -f "$initrd" ] || die "no initramfs $initrd"
else
	all=() mk=()
	rc=0
	make_run_dir
	if [ "$selftests" = 1 ]; then
		mapfile -t built < <("$vm_dir/build-guest.sh" --selftests --out "$run_dir/guest" || echo "FAILED $?")
		mk+=(--xfail "$vm_dir/selftests.xfail")
	elif [ "$defaults" = 1 ]; then
		mapfile -t built < <("$vm_dir/build-guest.sh" --out "$run_dir/guest" || echo "FAILED $?")
	else
		built=()
	fi
	for b in "${built[@]}"; do
		case $b in FAILED*) rc=${b#FAILED }; [ "$rc" = 77 ] && exit 77; die "build-guest.sh failed" ;; esac
		all+=("$b")
	done
	all+=("${progs[@]}")
	[ "${#all[@]}" -gt 0 ] || die "no test programs to run"
	initrd=$run_dir/initrd-$mode.cpio.gz
	"$vm_dir/mkinitrd.sh" -o "$initrd" "${mk[@]}" "${all[@]}"
fi

logf=${logf:-$IOASID_VM_LOGS/run-$mode-snoop-$snoop.log}
mkdir -p "$(dirname "$logf")"
# no_timer_check: the kernel's boot-time check that the IO-APIC timer
# ticks (timer_irq_works(): 4 jiffies within a TSC-timed delay) fails when
# the host deschedules the TCG vCPUs, and with interrupt remapping that
# failure is a panic ("timer doesn't work through Interrupt-remapped
# IO-APIC"). QEMU's timer works; the check only measures the host's load.
cmdline="console=ttyS0 intel_iommu=on iommu=nopt panic=-1 no_timer_check quiet"
cmdline+=" ioasid.snoop=$snoop"
cmdline+=" ioasid.timeout=$((tmo > 60 ? tmo - 30 : tmo))${append:+ $append}"
# shellcheck disable=SC2054 # commas are QEMU's
qargs=(
	-M q35,kernel-irqchip=split -accel "${IOASID_VM_ACCEL:-tcg}" -cpu max
	-m "${IOASID_VM_MEM:-1024}" -smp "${IOASID_VM_SMP:-2}"
	-nographic -no-reboot
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	-device "intel-iommu,intremap=on,caching-mode=on,snoop-control=$snoop"
	-device edu
	-device edu	# 00:04.0, unbound: kb_iommufd's second client binds it
)
log "booting ($mode, snoop-control=$snoop, timeout ${tmo}s), log: $logf"
t0=$(date +%s.%N)
rc=0
# QEMU's own stderr (VT-d fault reports, ...) goes to $logf.stderr so it
# cannot split the console's result lines.
if [ "$quiet" = 1 ]; then
	timeout -k 10 "$tmo" "$qemu" "${qargs[@]}" </dev/null >"$logf" 2>"$logf.stderr" || rc=$?
else
	timeout -k 10 "$tmo" "$qemu" "${qargs[@]}" </dev/null 2>"$logf.stderr" | tee "$logf" || rc=$?
	rc=${PIPESTATUS[0]}
fi
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

tr -d '\r' <"$logf" >"$logf.txt"
mv "$logf.txt" "$logf"
# -a: the console is text with terminal escapes; never "Binary file matches"
summary=$(grep -aE '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$logf" | tail -n1 || true)
echo "---"
grep -aE '^not ok |^# XFAIL|^# XPASS|^ioasid-vm:|^### .* [1-9][0-9]* failed|^# .* killed by signal' "$logf" |
	sed 's/^/  /' || true
if [ -s "$logf.stderr" ]; then
	echo "  (qemu stderr: $(wc -l <"$logf.stderr") lines in $logf.stderr)"
fi
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run.sh: $mode snoop=$snoop: TIMEOUT after ${tmo}s (${summary:-no closing line}), log $logf"
	exit 1
fi
if [ -z "$summary" ]; then
	echo "run.sh: $mode snoop=$snoop: no closing 'N passed, N failed' line (qemu exit $rc), log $logf"
	tail -n 20 "$logf.stderr" >&2 || true
	exit 1
fi
read -r npass _ nfail _ nskip _ <<<"${summary//,/}"
echo "run.sh: $mode snoop=$snoop: $summary in ${secs}s (qemu exit $rc), log $logf"
[ "$nfail" = 0 ] || exit 1
[ "$rc" = 0 ] || { echo "run.sh: qemu exited with $rc" >&2; exit 1; }
if [ "$npass" = 0 ]; then
	echo "run.sh: nothing passed (${nskip:-0} skipped)" >&2
	exit 77
fi
exit 0
