#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The README's demo (scripts/demo.sh) on this build: it runs, and what it
# narrates is what happened, in the order it happened: each coherency
# verdict follows the attach that caused it, the stop shows the verdict
# after the GPU's detach, and "KVM told" agrees with ioasidctl kvm.
set -u
srcdir=$(cd "${top_srcdir:-.}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0 skipped=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }
out=$tmp/out

if ! "$srcdir/scripts/demo.sh" "$builddir" > "$out" 2>&1; then
	bad "the demo runs"
	sed 's/^/#   /' "$out"
	exit 1
fi
ok "the demo runs"
sed -i 's/\x1b\[[0-9;]*m//g' "$out"

# the line number of the first line matching RE after line FROM (0: none)
at() { awk -v re="$2" -v from="$1" 'NR > from && $0 ~ re { print NR; exit }' "$out"; }

for s in status devices iommus 'ioas show' kvm 'session list'; do
	[ "$(at 0 "^== ioasidctl $s")" ] && ok "section ioasidctl $s" ||
		bad "section ioasidctl $s missing"
done
nic=$(at 0 '^attached the NIC .*: coherent')
gpu=$(at 0 '^attached the GPU .*: non-coherent')
dma=$(at 0 '^NIC wrote [0-9]+ bytes at IOVA 0x[0-9a-f]+: guest RAM matches$')
[ "$nic" ] && [ "$gpu" ] && [ "$dma" ] && [ "$nic" -lt "$dma" ] &&
	[ "$dma" -lt "$gpu" ] && ok "NIC attached, its DMA checked, then the GPU" ||
	bad "attach and DMA lines out of order: nic '$nic' dma '$dma' gpu '$gpu'"
stop=$(at 0 '^== the VMM stops')
if [ -c /dev/kvm ] && grep -q '^VM [0-9]*:' "$out"; then
	v1=$(at "$nic" '^VM [0-9]+: ')
	v2=$(at "$gpu" '^VM [0-9]+: ')
	[ "$v1" ] && [ "$v1" -lt "$gpu" ] &&
		sed -n "${v1}p" "$out" | grep -q '0 non-coherent: WBINVD not needed' &&
		ok "after the NIC alone: WBINVD not needed" ||
		bad "the verdict after the NIC's attach: line '$v1'"
	[ "$v2" ] && [ "$v2" -lt "$stop" ] &&
		sed -n "${v2}p" "$out" | grep -q '1 non-coherent: WBINVD needed' &&
		ok "after the GPU: WBINVD needed" ||
		bad "the verdict after the GPU's attach: line '$v2'"
	det=$(at "$stop" '^detached the GPU$')
	v3=$([ "$det" ] && at "$det" '^VM [0-9]+: ')
	[ "$v3" ] && sed -n "${v3}p" "$out" |
		grep -q '0 non-coherent: WBINVD not needed' &&
		ok "the stop shows the verdict after the GPU's detach" ||
		bad "the stop lacks the detach and its verdict"
	# the VMM and ioasidctl kvm say the same of KVM
	if grep -q 'KVM not told' "$out"; then
		grep -q '^  KVM told: no ' "$out" &&
			ok "KVM not told, as ioasidctl kvm says" ||
			bad "the VMM says KVM was not told, ioasidctl kvm disagrees"
	else
		grep -q '^  KVM told: yes' "$out" &&
			ok "KVM told, as ioasidctl kvm says" ||
			bad "the VMM says KVM was told, ioasidctl kvm disagrees"
	fi
else
	echo "ok $((n + 1)) - the VM's verdicts # SKIP no /dev/kvm"
	n=$((n + 1)) skipped=$((skipped + 1))
fi
# the VMM's session, unnamed, with what it holds, and ioasidctl's own
grep -qE '^- +connected +[0-9]+ +[0-9]+ +[0-9]+ +- +- +1 +[12] +2 +[01] +vmm_flow\[[0-9]+\]$' "$out" &&
	ok "session list: the VMM's session and what it holds" ||
	bad "session list lacks the VMM's session"
grep -qE '^- +connected .* ioasidctl\[[0-9]+\] \*$' "$out" &&
	ok "session list: ioasidctl's own, marked" ||
	bad "session list lacks ioasidctl's own session"
[ "$(at "$stop" '^torn down$')" ] && ok "the VMM tears down" ||
	bad "the stop lacks 'torn down'"
last=$(at "$stop" '^ioas: +0$')
[ "$last" ] && ok "nothing is left in ioasidd" || bad "the last status shows objects"

[ $fail -eq 0 ] || sed 's/^/#   /' "$out"
echo "$((n - fail - skipped)) passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ]
