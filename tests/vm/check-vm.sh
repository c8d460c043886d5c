#!/usr/bin/env bash
# check-vm.sh - the real-kernel tests, for `make check-vm`.
#
# build-kernel.sh -> build-guest.sh -> mkinitrd.sh -> run.sh with VT-d
# snoop-control=on and =off (and, with --selftests or IOASID_VM_SELFTESTS=1,
# the kernel's iommufd selftests; with --systemd-prog, a third boot with
# systemd as PID 1).
#
# Usage: check-vm.sh [--selftests] [--add SRC=DEST]... [--systemd-prog PROG]...
#                    [--systemd-add SRC=DEST]... [PROG...]
#   PROG...      extra guest test programs (static, or dynamic with their
#                libraries collected by ldd) run in both boots after the
#                rig's own tests/vm/guest programs; also IOASID_VM_PROGS
#                (space-separated)
#   --add S=D    also put file S at D in the guest (not run; an executable
#                brings its libraries), e.g. ioasidd for the programs
#   --systemd-prog P  a program for the systemd boot (mkinitrd.sh --systemd,
#                snoop-control=on): only P runs there, after the rig checks
#   --systemd-add S=D a file for the systemd boot only (units, the daemon
#                where the unit's ExecStart= names it)
# Environment: V=1 (copy the guest console to stdout), IOASID_VM_OFFLINE=1
#   (never fetch/build a kernel: skip unless cached or shared), QEMU,
#   SHARED_VM_DIR, IOASID_VM_CACHE, IOASID_VM_LOGS (the boots' logs,
#   default $IOASID_VM_CACHE/logs), JOBS, CC.
# Guest programs and the initramfs are built in a private directory per
# run, so runs from several trees at once do not overwrite each other's.
# Exit status: 0 all passed, 1 a failure, 77 skipped (reason on stderr):
# no QEMU, or no kernel can be had.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

selftests=${IOASID_VM_SELFTESTS:-0}
progs=() adds=() sd_progs=() sd_adds=()
while [ $# -gt 0 ]; do
	case $1 in
	--selftests) selftests=1 ;;
	--add) [ $# -ge 2 ] || die "--add needs SRC=DEST"; adds+=(--add "$2"); shift ;;
	--systemd-prog) [ $# -ge 2 ] || die "--systemd-prog needs PROG"; sd_progs+=("$2"); shift ;;
	--systemd-add) [ $# -ge 2 ] || die "--systemd-add needs SRC=DEST"; sd_adds+=(--add "$2"); shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) progs+=("$1") ;;
	esac
	shift
done
if [ -n "${IOASID_VM_PROGS:-}" ]; then
	read -r -a more <<<"$IOASID_VM_PROGS"
	progs+=("${more[@]}")
fi

qemu=${QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null || skip "$qemu not found (apt-get install qemu-system-x86)"

t_all=$SECONDS
timings=()
step() { # name start
	timings+=("$(printf '%-28s %4d s' "$1" $((SECONDS - $2)))")
}

# 1. kernel (+ headers)
t=$SECONDS
rc=0
"$vm_dir/build-kernel.sh" >/dev/null || rc=$?
case $rc in
0) ;;
77) skip "no guest kernel can be had (see above)" ;;
*) die "build-kernel.sh failed ($rc)" ;;
esac
# shellcheck disable=SC1090
. "$vm_env_file"
step "kernel ($KERNEL_ORIGIN)" "$t"

# 2. guest programs
t=$SECONDS
rc=0
make_run_dir
mapfile -t guest < <("$vm_dir/build-guest.sh" --out "$run_dir/guest" || echo "FAILED $?")
for g in "${guest[@]}"; do
	case $g in FAILED*) rc=${g#FAILED } ;; esac
done
[ "$rc" = 77 ] && skip "guest programs cannot be built"
[ "$rc" = 0 ] || die "build-guest.sh failed ($rc)"
step "guest programs" "$t"

# 3. initramfs
t=$SECONDS
initrd=$run_dir/initrd-check.cpio.gz
"$vm_dir/mkinitrd.sh" -o "$initrd" "${adds[@]}" -- "${guest[@]}" "${progs[@]}"
sd_initrd="" sd_skip=""
if [ "${#sd_progs[@]}" -gt 0 ]; then
	sd_initrd=$run_dir/initrd-systemd.cpio.gz
	rc=0
	"$vm_dir/mkinitrd.sh" -o "$sd_initrd" --systemd "${sd_adds[@]}" -- "${sd_progs[@]}" || rc=$?
	case $rc in
	0) ;;
	77) sd_skip="no systemd to put in the guest"; sd_initrd="" ;;
	*) die "mkinitrd.sh --systemd failed ($rc)" ;;
	esac
fi
step "initramfs" "$t"

# 4. boots
quiet=(--quiet)
[ "${V:-0}" = 1 ] && quiet=()
failed=() skipped=()
tot_p=0 tot_f=0 tot_s=0
# add a boot's closing "N passed, N failed, N skipped" line to the totals
tally() {
	local line
	line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$1" 2>/dev/null | tail -n1 || true)
	[ -n "$line" ] || return 0
	tot_p=$((tot_p + $(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")))
	tot_f=$((tot_f + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
	if grep -q skipped <<<"$line"; then
		tot_s=$((tot_s + $(sed -E 's/.* ([0-9]+) skipped.*/\1/' <<<"$line")))
	fi
}
for snoop in on off; do
	t=$SECONDS
	rc=0
	"$vm_dir/run.sh" "${quiet[@]}" --kernel "$KERNEL_IMAGE" --initrd "$initrd" --snoop "$snoop" \
		--log "$IOASID_VM_LOGS/check-snoop-$snoop.log" || rc=$?
	tally "$IOASID_VM_LOGS/check-snoop-$snoop.log"
	step "boot+tests snoop=$snoop" "$t"
	case $rc in
	0) ;;
	77) skipped+=("snoop=$snoop") ;;
	*) failed+=("snoop=$snoop") ;;
	esac
done
if [ -n "$sd_initrd" ]; then
	t=$SECONDS
	rc=0
	"$vm_dir/run.sh" "${quiet[@]}" --kernel "$KERNEL_IMAGE" --initrd "$sd_initrd" --snoop on \
		--log "$IOASID_VM_LOGS/check-systemd.log" || rc=$?
	tally "$IOASID_VM_LOGS/check-systemd.log"
	step "boot+tests systemd" "$t"
	case $rc in
	0) ;;
	77) skipped+=(systemd) ;;
	*) failed+=(systemd) ;;
	esac
elif [ -n "$sd_skip" ]; then
	echo "check-vm: systemd boot skipped: $sd_skip"
	tot_s=$((tot_s + ${#sd_progs[@]}))
fi
if [ "$selftests" = 1 ]; then
	t=$SECONDS
	rc=0
	"$vm_dir/run.sh" "${quiet[@]}" --kernel "$KERNEL_IMAGE" --selftests --snoop on \
		--log "$IOASID_VM_LOGS/check-selftests.log" || rc=$?
	tally "$IOASID_VM_LOGS/check-selftests.log"
	step "kernel selftests" "$t"
	case $rc in
	0) ;;
	77) skipped+=(selftests) ;;
	*) failed+=(selftests) ;;
	esac
fi

echo "check-vm: kernel $KERNEL_RELEASE ($KERNEL_ORIGIN), logs in $IOASID_VM_LOGS"
printf '  %s\n' "${timings[@]}"
printf '  %-28s %4d s\n' total $((SECONDS - t_all))
echo "$tot_p passed, $tot_f failed, $tot_s skipped"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "check-vm: FAILED: ${failed[*]}"
	exit 1
fi
if [ "${#skipped[@]}" -gt 0 ]; then
	echo "check-vm: SKIPPED: ${skipped[*]}"
	exit 77
fi
echo "check-vm: PASS"
