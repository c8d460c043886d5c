#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# ioasidctl end to end: runs the built ioasidctl on the simulated IOMMU
# (--uri sim, embedded) or, when IOASID_TEST_URI is set (see
# tests/conformance-test_ioasidctl.sh), through a running ioasidd, and
# checks tables, JSON (with tests/json_check), messages and exit statuses,
# --help at every level, and batch mode.  Prints one "ok"/"not ok" line
# per check and ends with "N passed, N failed, N skipped".
set -u

builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
CTL=${IOASIDCTL:-$builddir/ioasidctl/ioasidctl}
JC=${JSON_CHECK:-$builddir/tests/json_check}
URI=${IOASID_TEST_URI:-sim}
case $URI in unix:*) daemon=yes ;; *) daemon=no ;; esac
# an observer's ioas list ends with the owner's pid and uid
owner=
[ $daemon = yes ] && owner='( +[0-9]+ +[0-9]+)?'

for tool in "$CTL" "$JC" "${PROM_CHECK:-$builddir/tests/prom_check}"; do
	if [ ! -x "$tool" ]; then
		echo "$0: $tool is not built" >&2
		exit 99
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_ioasidctl-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 99' INT TERM

pass=0 fail=0 skip=0 n=0
rc=0

# ---- helpers ------------------------------------------------------------

# run ARGS...: ioasidctl on $URI; stdout, stderr and status kept.
run() {
	"$CTL" --uri "$URI" "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null
	rc=$?
}

# batch [OPTIONS...] < script: one session for all lines.
batch() {
	"$CTL" --uri "$URI" batch "$@" > "$tmp/out" 2> "$tmp/err"
	rc=$?
}

# raw ARGS...: ioasidctl without --uri.
raw() {
	"$CTL" "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null
	rc=$?
}

ok() {
	n=$((n + 1)) pass=$((pass + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1)) fail=$((fail + 1))
	echo "not ok $n - $1: $2"
	echo "# status $rc; stdout:"
	sed 's/^/#   /' "$tmp/out" | head -40
	echo "# stderr:"
	sed 's/^/#   /' "$tmp/err" | head -20
}

skipped() {
	n=$((n + 1)) skip=$((skip + 1))
	echo "ok $n - $1 # SKIP $2"
}

# t NAME STATUS [-o RE] [-O RE] [-e RE] [-E RE] [-j PATH VALUE] [-J]
#   -o/-e: stdout/stderr has a line matching RE (grep -E);
#   -O/-E: no line matches; -j: JSON value at PATH of stdout is VALUE;
#   -J: stdout is valid JSON (one or more documents).
t() {
	name=$1 want=$2
	shift 2
	if [ "$rc" != "$want" ]; then
		not_ok "$name" "exit status $rc, expected $want"
		return
	fi
	while [ $# -gt 0 ]; do
		case $1 in
		-o) grep -Eq -- "$2" "$tmp/out" ||
			{ not_ok "$name" "stdout lacks /$2/"; return; } ;;
		-O) ! grep -Eq -- "$2" "$tmp/out" ||
			{ not_ok "$name" "stdout has /$2/"; return; } ;;
		-e) grep -Eq -- "$2" "$tmp/err" ||
			{ not_ok "$name" "stderr lacks /$2/"; return; } ;;
		-E) ! grep -Eq -- "$2" "$tmp/err" ||
			{ not_ok "$name" "stderr has /$2/"; return; } ;;
		-J) "$JC" < "$tmp/out" 2> "$tmp/jc" ||
			{ not_ok "$name" "invalid JSON: $(cat "$tmp/jc")"; return; }
		    shift; continue ;;
		-j) got=$("$JC" "$2" < "$tmp/out" 2>&1)
		    [ "$got" = "$3" ] ||
			{ not_ok "$name" "JSON $2 is '$got', expected '$3'"; return; }
		    shift ;;
		*) echo "t: bad option $1" >&2; exit 99 ;;
		esac
		shift 2
	done
	ok "$name"
}

# ---- help at every level ---------------------------------------------------

raw --help
t "ioasidctl --help" 0 -o '^Usage: ioasidctl' -o '^  batch ' -o 'Exit status'
raw help
t "ioasidctl help" 0 -o '^  ioas +list, show'
raw --version
t "ioasidctl --version" 0 -o '^ioasidctl [0-9]'
for cmd in status devices iommus ioas map unmap attach detach replace kvm \
	   monitor faults dma sim batch script session nested dirty viommu \
	   vdevice; do
	raw "$cmd" --help
	t "$cmd --help" 0 -o "^Usage: ioasidctl ($cmd|script|batch)" -E .
done
for sub in list show create destroy snoop allow; do
	raw ioas "$sub" --help
	t "ioas $sub --help" 0 -o "^Usage: ioasidctl ioas $sub"
done
for sub in show create add remove policy; do
	raw kvm "$sub" --help
	t "kvm $sub --help" 0 -o "^Usage: ioasidctl kvm $sub"
done
for sub in show unplug plug; do
	raw sim "$sub" --help
	t "sim $sub --help" 0 -o "^Usage: ioasidctl sim $sub"
done
raw help ioas create
t "help ioas create" 0 -o '^Usage: ioasidctl ioas create' -o '--snoop'
raw ioas help
t "ioas help" 0 -o '^  destroy'

# ---- usage errors: exit 2 -----------------------------------------------------

raw
t "no command" 2 -e '^Usage: ioasidctl'
run frobnicate
t "unknown command" 2 -e "'frobnicate' is not a command of ioasidctl"
run ioas frobnicate
t "unknown ioas subcommand" 2 -e "'frobnicate' is not a command of ioasidctl ioas"
run devices --frob
t "unknown option" 2 -e "devices: option '--frob' is not known" \
	-e "Try 'ioasidctl devices --help'"
run map 1 --memfd --length
t "option without its argument" 2 -e "option '--length' needs an argument"
raw --uri
t "--uri without URI" 2 -e "needs an argument"
run ioas show
t "missing argument: what it takes" 2 \
	-e '^ioasidctl: ioas show: too few arguments \(ioasidctl ioas show IOAS '
run ioas show 1 2
t "extra argument: which" 2 -e "^ioasidctl: ioas show: unexpected argument '2'\$"
printf 'attach 00:01.0\n' | batch
t "batch: a missing argument says what it takes" 2 \
	-e '^ioasidctl: line 1: attach: too few arguments \(ioasidctl attach DEVICE IOAS'
run ioas show zero
t "bad IOAS id" 2 -e "'zero' is not a valid IOAS id"
run ioas show 0
t "IOAS id 0" 2 -e "'0' is not a valid IOAS id"
run ioas create --snoop sometimes
t "bad snoop mode" 2 -e "snoop mode 'sometimes' is not auto, enforce or allow"
run map 1
t "map without a source" 2 -e 'exactly one of FILE, --fd N, --memfd and --file-id F'
run map 1 --memfd
t "map --memfd without --length" 2 -e '--memfd needs --length'
run map 1 --file-id 1
t "map --file-id without --length" 2 -e '--file-id needs --length'
run map 1 --file-id 0 --length 4K
t "map --file-id 0" 2 -e "'0' is not a valid file id"
run map 1 --file-id 1 --memfd --length 4K
t "map --file-id with another source" 2 -e 'exactly one of FILE'
run map 1 --memfd --length 2Q
t "bad size" 2 -e "'2Q' is not a valid length"
run map 1 --memfd --length 1.0000001K
t "fractional bytes" 2 -e "not a valid length"
run map 1 --memfd --length 2M --prot x
t "bad --prot" 2 -e "--prot 'x' is not rw, r or w"
run map 1 --fd 999 --length 4K
t "--fd not open" 2 -e 'fd 999 is not open'
run unmap 1 --all --missing-ok
t "unmap --all --missing-ok" 2 -e 'exclude each other'
run unmap 1 0x1000
t "unmap without length" 2 -e 'too few arguments'
run ioas allow 1 5-3
t "reversed range" 2 -e "'5-3' is not a valid range"
run monitor --count 0
t "monitor --count 0" 2 -e "'0' is not a valid count"
run dma 00:01.0 0 0
t "dma of 0 bytes" 2 -e 'length must be between 1 and 64M'
run kvm policy 1 sometimes
t "bad kvm policy" 2 -e "policy 'sometimes' is not forbid or allow"

# ---- cannot reach: exit 3 ----------------------------------------------------

raw --uri "unix:$tmp/no-such.sock" status
t "no daemon" 3 -e "cannot reach unix:$tmp/no-such.sock" -e '--uri sim'
raw --uri bogus status
t "unknown backend" 3 -e 'cannot reach bogus: unknown backend'
raw --uri "sim:$tmp/missing.topology" status
t "missing topology" 3 -e "cannot reach sim:$tmp/missing.topology"
IOASID_URI="unix:$tmp/env.sock" "$CTL" status > "$tmp/out" 2> "$tmp/err"
rc=$?
t "IOASID_URI is the default" 3 -e "cannot reach unix:$tmp/env.sock"

# ---- status, devices, iommus, sim ------------------------------------------------

run status
t "status" 0 -o '^backend: +sim$' -o '^devices: +7$' -o '^iommus: +2$'
run status --json
t "status --json" 0 -J -j .backend sim -j .nr_devices 7 -j .nr_iommus 2
if [ $daemon = yes ]; then
	t "status --json through ioasidd" 0 -j .daemon true
	run status
	t "status: served by ioasidd" 0 -o '^served by: +ioasidd \(pid [0-9]+\)'
else
	t "status --json embedded" 0 -j .daemon false -j .nr_sessions 1 \
		-j .topology built-in -j .nr_ioas 0
fi

run devices
t "devices table" 0 \
	-o '^DEVICE +ID +CLASS +DRIVER +GROUP +IOMMU +FLAGS +DEV +IOAS +DOMAIN +NESTED +VM +PASIDS +STATE$' \
	-o '^0000:01:00\.0 +1002:740f +038000 +vfio-pci-sim +4 +sim1 +no-snoop,translates,simulated +- +- +- +- +- +- +-$' \
	-o '^0000:00:03\.0 .* +0/20-bit +-$' \
	-o '^0000:01:01\.0 .* simulated +-' \
	-o '^0000:01:02\.0 .*no-snoop-unknown'
run --json devices
t "devices --json" 0 -J -j '.devices#' 7 -j '.devices[4].name' 0000:01:00.0 \
	-j '.devices[3].pasid_bits' 20 -j '.devices[3].pasids' 0 \
	-j '.devices[4].vendor' 1002 -j '.devices[4].flags[0]' no-snoop \
	-j '.devices[4].group' 4 -j '.devices[4].dev_id' null \
	-j '.devices[4].state#' 0
run devices 00:03.0 0000:01:00.0
t "devices DEVICE..." 0 -o '^0000:00:03\.0' -o '^0000:01:00\.0' -O '^0000:00:01\.0'
run devices 0000:99:00.0
t "devices: unknown device" 1 -e 'no device 0000:99:00.0'

run iommus
t "iommus table" 0 -o '^IOMMU +KIND +SNOOP-CONTROL +PAGE-SIZES' \
	-o '^sim0 +sim +yes +4K,2M,1G +48 +yes +yes +yes +yes +4$' \
	-o '^sim1 +sim +no +4K,2M +39 +no +no +no +no +3$'
run iommus --json
t "iommus --json" 0 -J -j '.iommus#' 2 -j '.iommus[1].snoop_control' false \
	-j '.iommus[0].viommu' true -j '.iommus[1].viommu' false \
	-j '.iommus[0].page_sizes[2]' 1073741824 -j '.iommus[1].addr_width' 39

run sim
t "sim" 0 -o '^iommu sim1 snoop-control=no page-sizes=4K,2M address-width=39' \
	-o '^device 0000:01:01\.0 .* translates=no' \
	-o '^device 0000:01:02\.0 .* no-snoop=unknown'
if [ $daemon = no ]; then
	cp "$tmp/out" "$tmp/copy.topology"
	raw --uri "sim:$tmp/copy.topology" sim
	grep -v '^#' "$tmp/out" > "$tmp/round2"
	grep -v '^#' "$tmp/copy.topology" > "$tmp/round1"
	if cmp -s "$tmp/round1" "$tmp/round2"; then
		ok "sim output reads back as a topology"
	else
		rc=1
		not_ok "sim output reads back as a topology" "differs"
	fi
	raw --uri "sim:$tmp/copy.topology" status --json
	t "status shows the topology file" 0 -j .topology "$tmp/copy.topology"
fi
run sim --json
t "sim --json" 0 -J -j '.iommus#' 2 -j '.devices#' 7

# ---- one-shot commands: state dies with the session ------------------------------

run ioas create
t "ioas create" 0 -o '^IOAS [0-9]+ created \(snoop mode auto\)$'
run ioas list
t "ioas list: the one-shot IOAS is gone" 0 -o '^IOAS +FLAGS +SNOOP' -O '^ +[0-9]'
if [ $daemon = no ]; then
	t "ioas list: embedded, nobody else's: no owners" 0 -O ' PID +UID'
fi
run ioas create --identity --restricted --snoop enforce --json
t "ioas create --json" 0 -J -j .snoop_mode enforce -j '.flags[0]' identity \
	-j '.flags[1]' restricted -j '.flags[2]' page-granular \
	-j .nr_mappings 0
run ioas create --page-granular --json
t "ioas create --page-granular" 0 -J -j '.flags[0]' page-granular
run ioas show 4242
t "ioas show: no such IOAS" 1 -e 'ioas show|IOAS 4242' -e 'no IOAS 4242'
run attach 0000:99:00.0 1
t "attach: no such device" 1 -e '^ioasidctl: no device 0000:99:00.0$'
run detach 00:01.0
t "detach: not bound" 1 -e 'not bound to this session, so there is nothing to detach' \
	-E 'another ioasidctl or VMM session owns'
if [ $daemon = no ]; then
	run detach 00:01.0
	t "detach, embedded: the context starts empty" 1 \
		-e "embedded context starts empty: attach and detach in one 'batch'"
	run ioas show 1
	t "embedded: a missing object says the context lives one command" 1 \
		-e '^ioasidctl: no IOAS 1$' \
		-e "^ioasidctl: \(sim runs inside this ioasidctl: it starts empty and its objects end with the command; run the commands in one 'batch', or keep them in ioasidd with --session NAME\)$"
	printf 'ioas show 77\n' | batch
	t "embedded batch: no such hint (the batch is one context)" 1 \
		-e 'no IOAS 77' -E 'runs inside this ioasidctl'
	run session list
	t "embedded: session list says sessions are ioasidd's" 1 \
		-e "^ioasidctl: session list: sessions are ioasidd's \(--uri unix:PATH\); sim runs inside this ioasidctl" \
		-E 'ioasid_session_list:'
	run daemon upgrade
	t "embedded: daemon upgrade says there is no ioasidd" 1 \
		-e "^ioasidctl: daemon upgrade: sim runs inside this ioasidctl: there is no ioasidd to upgrade" \
		-E 'have names and outlive'
else
	run ioas show 4243
	t "through ioasidd: no embedded hint" 1 -e 'no IOAS 4243' \
		-E 'runs inside this ioasidctl'
fi
run kvm
t "kvm: no VM" 0 -o 'no VMs in this session'
run faults
t "faults: none" 0 -o '^no faults queued$'
run faults --json
t "faults --json: none" 0 -J -j '.faults#' 0
t "faults --json: nothing lost" 0 -J -j '.records_lost' 0

# ---- batch: one session --------------------------------------------------------

batch -x <<'EOF'
# a plain IOAS and one that insists on snooping
a=ioas create
e=ioas create --snoop enforce
iova=map $a --memfd --length 2M
map $a --memfd --length 64K --iova 0x40000000 --prot r
attach 00:01.0 $a
attach 0000:01:00.0 $a
echo a=$a iova=$iova
ioas list
ioas show $a
EOF
t "batch: create, map, attach, show" 0 \
	-o '^> a=ioas create$' \
	-o '^mapped 2M of a new memfd at IOVA 0x200000-0x3fffff in IOAS [0-9]+ \(rw\)$' \
	-o '^mapped 64K of a new memfd at IOVA 0x40000000-0x4000ffff in IOAS [0-9]+ \(r-\)$' \
	-o '^0000:00:01\.0 \(dev [0-9]+\) attached to IOAS [0-9]+, domain [0-9]+ on sim0, coherent$' \
	-o '^0000:01:00\.0 \(dev [0-9]+\) attached to IOAS [0-9]+, domain [0-9]+ on sim1, non-coherent' \
	-o '^a=[0-9]+ iova=0x200000$' \
	-o "^ +[0-9]+ +- +auto +2 +2M\\+64K +0B +2 +2$owner\$" \
	-o "^ +[0-9]+ +- +enforce +0 +0B +0B +0 +0$owner\$"
t "ioas show: the drawing" 0 \
	-o '^  0 {63}4G$' \
	-o '^  \|#\.{15}#\.{46}r\|$' \
	-o 'one column: 64M'
t "ioas show: the ranges" 0 \
	-o '^  0x0000000000200000  0x00000000003fffff  mapped +2M$' \
	-o '^  0x00000000fee00000  0x00000000feefffff  reserved +1M$' \
	-o '^  0x0000008000000000  0xffffffffffffffff  disallowed +16E-512G$'
t "ioas show: mappings, domains, devices" 0 \
	-o '^  0x0000000040000000 +64K +r- +0x0 +/memfd:ioasidctl \(deleted\) \(memfd, file 2\)$' \
	-o '^ +[0-9]+ +sim0 +enforced +yes +4K,2M,1G +1$' \
	-o '^ +[0-9]+ +sim1 +not-enforced +no +4K,2M +1$' \
	-o '^  0000:01:00\.0 +[0-9]+ +[0-9]+ +- +no +iova,access-platform$'

# more of a file the IOAS holds, by its id, and only of what it has
batch -x <<'EOF'
a=ioas create
map $a --memfd --length 64K --iova 0x40000000 --prot r
map $a --file-id 1 --offset 0x1000 --length 8K --iova 0x50000000 --prot r
map $a --file-id 1 --length 4K --json --prot r
map $a --file-id 1 --offset 64K --length 4K
EOF
t "map --file-id: more of a held file, inside it" 1 \
	-o '^mapped 8K of file 1 \(offset 0x1000\) at IOVA 0x50000000-0x50001fff in IOAS [0-9]+ \(r-\)$' \
	-o '"file_id": 1' \
	-e 'cannot map 4K into IOAS [0-9]+: .*beyond'
batch <<'EOF'
a=ioas create
map $a --file-id 3 --length 4K
EOF
t "map --file-id: an id the IOAS does not hold" 1 -e 'IOAS [0-9]+ holds no file 3'


batch --json <<'EOF'
a=ioas create
map $a --memfd --length 2M
map $a --memfd --length 4K --iova 0x10000000
attach 00:03.0 $a
ioas show $a
EOF
t "batch --json: one document per command" 0 -J
docs=$("$JC" -n < "$tmp/out")
[ "$docs" = 5 ] && ok "batch --json: 5 documents" ||
	not_ok "batch --json: 5 documents" "got $docs"
"$JC" -d 4 .nr_mappings '.mappings#' '.mappings[1].iova' \
	'.mappings[0].prot' '.files[0].kind' '.domains[0].iommu' \
	'.domains[0].enforce_coherency' '.devices[0].name' \
	'.segments[0].kind' '.allowed_ranges#' < "$tmp/out" > "$tmp/vals" 2>&1
if [ "$(tr '\n' ' ' < "$tmp/vals")" = \
     "2 2 268435456 rw memfd sim0 true 0000:00:03.0 free 2 " ]; then
	ok "ioas show --json fields"
else
	rc=1
	not_ok "ioas show --json fields" "$(tr '\n' ' ' < "$tmp/vals")"
fi

# cutting a mapping in the middle leaves two pieces with their offsets
batch <<'EOF'
a=ioas create
b=ioas create
attach 00:03.0 $a
attach 00:03.0 $b --pasid 5
devices 00:03.0
ioas show $b
ioas show $b --json
replace 00:03.0 $a --pasid 5
ioas show $a
detach 00:03.0 --pasid 5
EOF
t "PASIDs: attach --pasid, shown in devices and ioas show, replace, detach" 0 \
	-o '^0000:00:03\.0 \(dev [0-9]+\) PASID 5 attached to IOAS [0-9]+$' \
	-o '^0000:00:03\.0 .* +1/20-bit +' \
	-o '^  PASIDS$' -o '^  0000:00:03\.0 +[0-9]+ +5 +[0-9]+ +-$' \
	-o '"pasid": 5' \
	-o '^0000:00:03\.0 \(dev [0-9]+\) PASID 5 moved to IOAS [0-9]+$' \
	-o '^0000:00:03\.0 \(dev [0-9]+\) PASID 5 detached$'
batch <<'EOF'
a=ioas create
attach 00:01.0 $a --pasid 5
EOF
t "attach --pasid: a device without the capability" 1 \
	-e 'no PASID capability'
run attach 00:03.0 1 --pasid 0
t "attach --pasid 0: usage" 2 -e "'0' is not a valid PASID"
batch <<'EOF'
a=ioas create
map $a --memfd --length 1M --iova 0x100000
unmap $a 0x140000 64K
ioas show $a
unmap $a 0x0 0x1000 --missing-ok
bytes=unmap $a --all
echo bytes=$bytes
EOF
t "unmap cuts a mapping" 0 -o '^unmapped 64K from IOAS [0-9]+$' \
	-o '^  0x0000000000100000 +256K +rw +0x0 ' \
	-o '^  0x0000000000150000 +704K +rw +0x50000 ' \
	-o '^unmapped 0B from IOAS' -o '^unmapped 960K from IOAS' \
	-o '^bytes=983040$'

# ---- errors inside a session: messages and statuses --------------------------------

batch <<'EOF'
a=ioas create
e=ioas create --snoop enforce
i=ioas create --identity
map $a --memfd --length 1M --iova 0x100000
!attach 0000:01:00.0 $e
!attach 0000:01:01.0 $a
attach 0000:01:01.0 $i
!map $a --memfd --length 4K --iova 0x100000
!map $a --memfd --length 6K
!unmap $a 0x800000 4K
!ioas destroy $i
!ioas snoop $i allow
attach 00:02.0 $a
!attach 00:02.1 $e
!replace 00:01.0 $a
attach 00:01.0 $a
replace 00:01.0 $e
detach 00:01.0
!detach 00:01.0
-ioas show 4242
ioas destroy $e
EOF
t "batch: error paths keep the session going" 0 \
	-e "line 5: attach 0000:01:00\.0 to IOAS [0-9]+: device 0000:01:00\.0 cannot join IOAS [0-9]+: its IOMMU sim1 has no snoop control and the IOAS is in enforce mode$" \
	-e 'line 6: attach 0000:01:01\.0 to IOAS [0-9]+: device 0000:01:01\.0 does not support IOVA translation' \
	-e 'line 8: cannot map 4K into IOAS [0-9]+: IOVA 0x100000-0x100fff overlaps an existing mapping' \
	-e 'line 9: cannot map 6K into IOAS [0-9]+: .*multiple' \
	-e 'line 10: cannot unmap 4K at 0x800000 from IOAS [0-9]+: nothing is mapped at IOVA 0x800000-0x800fff' \
	-e 'line 11: cannot destroy IOAS [0-9]+: IOAS [0-9]+ still has 1 device\(s\) attached' \
	-e 'line 12: IOAS [0-9]+: snoop mode allow: IOAS [0-9]+ already has domains' \
	-e 'line 14: attach 0000:00:02\.1 to IOAS [0-9]+: .*same IOMMU group 2' \
	-e 'line 15: replace 0000:00:01\.0 to IOAS [0-9]+: device 0000:00:01\.0 is not attached' \
	-e 'line 19: detach 0000:00:01\.0: device 0000:00:01\.0 is not attached' \
	-e 'line 20: no IOAS 4242' \
	-o '^0000:00:01\.0 \(dev [0-9]+\) moved to IOAS [0-9]+, domain [0-9]+ on sim0, coherent$' \
	-o '^0000:00:01\.0 \(dev [0-9]+\) detached from IOAS [0-9]+$' \
	-o '^IOAS [0-9]+ destroyed$'

printf 'a=ioas create\nioas show $a\nioas show 4242\nioas list\n' > "$tmp/stop.batch"
run batch "$tmp/stop.batch"
t "batch stops at the first failure" 1 -e '^ioasidctl: line 3: no IOAS 4242$' \
	-O '^IOAS +FLAGS'
run batch --keep-going "$tmp/stop.batch"
t "batch --keep-going" 1 -o '^IOAS +FLAGS'
run script "$tmp/stop.batch"
t "script FILE" 1 -e 'line 3'
run script
t "script needs a FILE" 2 -e 'too few arguments'
run batch "$tmp/none.batch"
t "batch: missing file" 1 -e "cannot open $tmp/none.batch"

printf 'ioas show $nope\n' | "$CTL" --uri "$URI" batch > "$tmp/out" 2> "$tmp/err"; rc=$?
t "batch: unset variable" 2 -e 'line 1: batch: \$nope is not set'
printf -- '-ioas show $nope\n!ioas show ${nope}\necho after\n' |
	"$CTL" --uri "$URI" batch > "$tmp/out" 2> "$tmp/err"; rc=$?
t "batch: '-' and '!' lines survive an unset variable" 0 -o '^after$' \
	-e 'line 1: batch: \$nope is not set' -e 'line 2: batch: \$nope is not set'

# attached, but its group is not viable: its DMA is blocked, and it says so
batch <<'EOF'
a=ioas create
attach 00:02.0 $a
attach 00:02.1 $a
EOF
t "attach: a group not yet viable is said to block DMA" 0 \
	-o '^0000:00:02\.0 \(dev [0-9]+\) attached to IOAS [0-9]+, domain [0-9]+ on sim0, coherent; its DMA is blocked: IOMMU group 2 is not viable until all its devices are attached to IOAS [0-9]+$' \
	-o '^0000:00:02\.1 \(dev [0-9]+\) attached to IOAS [0-9]+, domain [0-9]+ on sim0, coherent$'
printf 'x=ioas list\n' | "$CTL" --uri "$URI" batch > "$tmp/out" 2> "$tmp/err"; rc=$?
t "batch: nothing to store" 2 -e "line 1: 'ioas list' makes nothing to store in x"
printf '!ioas create\n' | "$CTL" --uri "$URI" batch > "$tmp/out" 2> "$tmp/err"; rc=$?
t "batch: ! on a success" 1 -e "'ioas create' was expected to fail but succeeded"
printf 'echo "unterminated\n' | "$CTL" --uri "$URI" batch > "$tmp/out" 2> "$tmp/err"; rc=$?
t "batch: unterminated quote" 2 -e 'unterminated " quote'
printf 'batch\n' | "$CTL" --uri "$URI" batch > "$tmp/out" 2> "$tmp/err"; rc=$?
t "batch: no nesting" 2 -e 'cannot run another batch'
printf "echo 'a  b' \"c \\\\\$d\" e\\\\ f # comment\n" |
	"$CTL" --uri "$URI" batch > "$tmp/out" 2> "$tmp/err"; rc=$?
t "batch: quoting" 0 -o '^a  b c \$d e f$'

# ---- files, inherited fds, JSON escaping ----------------------------------------------

shm=
for d in /dev/shm "${XDG_RUNTIME_DIR:-}"; do
	[ -n "$d" ] && [ -d "$d" ] && [ -w "$d" ] &&
		[ "$(stat -f -c %T "$d" 2>/dev/null)" = tmpfs ] && { shm=$d; break; }
done
if [ -n "$shm" ]; then
	f="$shm/ioasidctl-test-$$"
	bad=$(printf '%s/ioasidctl "q"\tx\377-%s' "$shm" $$)
	truncate -s 4M "$f" && truncate -s 8K "$bad"
	cat > "$tmp/files.batch" <<EOF
a=ioas create
map \$a "$f" --offset 1M --length 1M --iova 0x200000
map \$a --fd 3 --length 2M --prot r
map \$a "$f"
map \$a '$bad'
ioas show \$a
EOF
	"$CTL" --uri "$URI" batch "$tmp/files.batch" > "$tmp/out" 2> "$tmp/err" 3< "$f"
	rc=$?
	t "map FILE and --fd" 0 \
		-o "^mapped 1M of $f at IOVA 0x200000-0x2fffff" \
		-o '^mapped 2M of the inherited fd at IOVA ' \
		-o "^mapped 4M of $f at IOVA" \
		-o "^  0x0000000000200000 +1M +rw +0x100000 +$f \(tmpfs, file 1\)$"
	"$CTL" --uri "$URI" --json batch "$tmp/files.batch" > "$tmp/out" 2> "$tmp/err" 3< "$f"
	rc=$?
	t "JSON escapes file names" 0 -J -o '\\"q\\"\\tx\\ufffd-'
	run map 1 --fd 0 --length 4K
	t "--fd 0 that is /dev/null" 1 -e 'cannot map 4K into IOAS 1'
	rm -f "$f" "$bad"
else
	skipped "map FILE and --fd" "no writable tmpfs"
	skipped "JSON escapes file names" "no writable tmpfs"
fi
printf 'a=ioas create\nmap $a %s/README.md --prot r --length 4K\n' "$srcdir" > "$tmp/disk.batch"
run batch "$tmp/disk.batch"
if [ "$(stat -f -c %T "$srcdir/README.md" 2>/dev/null)" = tmpfs ]; then
	skipped "map of a disk file" "the source tree is on tmpfs"
else
	t "map of a disk file" 1 -e 'cannot back DMA'
fi

# ---- confidential memory: convert --------------------------------------------------

batch <<'EOF'
r=ioas create --restricted
map $r --memfd --length 2M --iova 0x200000
attach 00:01.0 $r
!dma 00:01.0 0x200000 4K
bytes=convert $r shared 0x200000+1M
dma 00:01.0 0x200000 4K
convert $r private 0x200000-0x200fff
!dma 00:01.0 0x200000 4K
!convert $r shared 0x200001+4K
p=ioas create
!convert $p shared 0+4K
echo bytes=$bytes
ioas list
faults
EOF
t "convert" 0 \
	-o '^converted 1M of IOAS [0-9]+ to shared$' \
	-o '^0000:00:01\.0 read 4K at IOVA 0x200000: ' \
	-o '^converted 4K of IOAS [0-9]+ to private$' \
	-e 'line 9: cannot convert IOAS [0-9]+ to shared: range 0 is not made of whole 4 KiB pages' \
	-e 'line 11: cannot convert IOAS [0-9]+ to shared: IOAS [0-9]+ is not restricted' \
	-o '^bytes=1048576$' \
	-o "^ +[0-9]+ +restricted,page-granular +auto +1 +2M +1M\\+4K +1 +1$owner\$" \
	-o ' read +0x0000000000200000 +private$'
run convert 1 both 0+4K
t "convert: bad state" 2 -e "'both' is not private or shared"
run convert 1 shared
t "convert: no range" 2 -e 'too few arguments'

# ---- simulated hotplug ------------------------------------------------------------------

batch <<'EOF'
a=ioas create
attach 00:01.0 $a
sim unplug 00:01.0
!attach 00:01.0 $a
sim plug 00:01.0
attach 00:01.0 $a
monitor
EOF
t "sim unplug, plug" 0 -o '^0000:00:01\.0 unplugged$' -o '^0000:00:01\.0 plugged in$' \
	-e 'line 4: cannot bind 0000:00:01\.0: device 0000:00:01\.0 was unplugged' \
	-o ' device-removed device 0000:00:01\.0 \(dev [0-9]+: detached and unbound\)$' \
	-o ' device-added device 0000:00:01\.0$'
run sim unplug 0000:99:00.0
t "sim unplug: no such device" 1 -e 'cannot unplug 0000:99:00\.0: no device 0000:99:00\.0'

# ---- events, faults, DMA -----------------------------------------------------------------

batch <<'EOF'
a=ioas create
map $a --memfd --length 1M --iova 0x100000
attach 00:01.0 $a
attach 01:00.0 $a
dma 00:01.0 0x100000 4K --write --fill 0x5a
dma 00:01.0 0x100000 16
!dma 00:01.0 0x900000 4K
dma 00:01.0 0x100000 4K --write --no-snoop
monitor
faults
EOF
t "dma, monitor, faults" 0 \
	-o '^0000:00:01\.0 wrote 4K at IOVA 0x100000$' \
	-o '^0000:00:01\.0 read 16B at IOVA 0x100000: 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a$' \
	-e 'line 7: DMA read 4K at 0x900000 by 0000:00:01\.0: DMA fault at IOVA 0x900000' \
	-o '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2} device-coherency device 0000:01:00\.0 \(dev [0-9]+\): non-coherent$' \
	-o '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2} fault device 0000:00:01\.0 \(dev [0-9]+\) at IOVA 0x900000$' \
	-o '^ +TIME +DEVICE +DEV +ACCESS +IOVA +REASON$' \
	-o '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2} +0000:00:01\.0 +[0-9]+ +read +0x0000000000900000 +not-present$'

# faults: --time monotonic keeps the library's seconds; JSON has both
batch <<'EOF'
a=ioas create
attach 00:01.0 $a
!dma 00:01.0 0x900000 4K
faults --time monotonic
!dma 00:01.0 0x900000 4K
faults --json
EOF
t "faults --time monotonic" 0 \
	-o '^ *[0-9]+\.[0-9]{6} +0000:00:01\.0 +[0-9]+ +read +0x0000000000900000 +not-present$'
sed -n '/^{/,$p' "$tmp/out" > "$tmp/fj"
if "$JC" .faults[0].time < "$tmp/fj" > "$tmp/ft" 2>&1 &&
   grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2}$' "$tmp/ft" &&
   "$JC" .faults[0].timestamp_ns < "$tmp/fj" | grep -qE '^[1-9][0-9]*$'; then
	ok "faults --json: wall-clock time and monotonic timestamp_ns"
else
	rc=1
	not_ok "faults --json: wall-clock time and monotonic timestamp_ns" "$(cat "$tmp/fj")"
fi
run faults --time utc
t "faults --time: not a format" 2 -e "--time 'utc' is not iso or monotonic"

batch --json <<'EOF'
a=ioas create
attach 01:00.0 $a
detach 01:00.0
monitor
EOF
tail -n 2 "$tmp/out" > "$tmp/mon"
if [ "$(wc -l < "$tmp/mon")" -eq 2 ] && head -1 "$tmp/mon" | "$JC" &&
   [ "$("$JC" .type .arg < "$tmp/mon" | tr '\n' ' ')" = "device-coherency 1 " ] &&
   [ "$(tail -1 "$tmp/mon" | "$JC" .arg)" = 0 ]; then
	ok "monitor --json: one object per line"
else
	rc=1
	not_ok "monitor --json: one object per line" "$(cat "$tmp/mon")"
fi

# a full event queue: monitor says how many were lost, status counts them
{
	printf 'a=ioas create\nattach 00:01.0 $a\n'
	i=0
	while [ $i -lt 1100 ]; do
		printf '!dma 00:01.0 0x900000 1\n'
		i=$((i + 1))
	done
	printf 'status\nmonitor\n'
} > "$tmp/lost.batch"
run batch "$tmp/lost.batch"
t "events lost: status and monitor" 0 \
	-o '^lost: +844 fault records, 76 events \(of this session, dropped when its queues were full\)$' \
	-o '^events-lost 76 \(the queue was full; 76 in all\)$'
if [ "$(grep -c ' fault device 0000:00:01\.0 ' "$tmp/out")" = 1024 ]; then
	ok "monitor: the 1024 queued events"
else
	rc=1
	not_ok "monitor: the 1024 queued events" "$(grep -c ' fault ' "$tmp/out")"
fi
run status --json
t "status --json: nothing lost in a new session" 0 -j .faults_lost 0 \
	-j .events_lost 0

# ---- KVM -------------------------------------------------------------------------------------

printf 'vm=kvm create\n' > "$tmp/kvm.batch"
run batch "$tmp/kvm.batch"
if [ $rc -ne 0 ]; then
	skipped "kvm" "cannot create a KVM VM here: $(head -1 "$tmp/err")"
else
	batch <<'EOF'
a=ioas create
vm=kvm create
attach 01:00.0 $a
attach 00:03.0 $a
attach 01:02.0 $a --no-snoop-unused
kvm add 01:00.0 $vm
kvm add 00:03.0 $vm
kvm add 01:02.0 $vm
kvm
!kvm policy $vm forbid
kvm remove 01:00.0
kvm policy $vm forbid
!kvm add 01:00.0 $vm
monitor
EOF
	t "kvm show: WBINVD and why" 0 \
		-o '^VM [0-9]+ created: 0 device\(s\), 0 non-coherent, WBINVD not needed, KVM told of 0 device\(s\)$' \
		-o '^0000:01:00\.0 added to VM [0-9]+: 1 device\(s\), 1 non-coherent, WBINVD needed, KVM told of 0 device\(s\)$' \
		-o '^VM [0-9]+: WBINVD needed \(a device.s DMA may bypass CPU caches\)$' \
		-o '^  KVM told: no \(no device of the VM has a VFIO file, so no KVM_DEV_VFIO_FILE_ADD ran;$' \
		-O 'registered with KVM' \
		-o '^  0000:01:00\.0 +[0-9]+ +[0-9]+ +[0-9]+ +sim1 +no +no-file +Enable No Snoop is set, and domain [0-9]+ does not force snooping: its IOMMU sim1 has no snoop control$' \
		-o '^  0000:00:03\.0 .* sim0 +yes +no-file +domain [0-9]+ on sim0 forces snooping$' \
		-o '^  0000:01:02\.0 .* yes +no-file +the VMM promised it issues no no-snoop DMA$' \
		-e 'line 10: VM [0-9]+: policy forbid: VM [0-9]+ already has 1 non-coherent device' \
		-e 'line 13: cannot put 0000:01:00\.0 in VM [0-9]+: .*forbids anything that needs WBINVD' \
		-o 'vm-coherency VM [0-9]+: WBINVD needed' \
		-o 'vm-coherency VM [0-9]+: WBINVD no longer needed'
	batch --json <<'EOF'
a=ioas create --snoop allow
vm=kvm create
attach 00:03.0 $a
kvm add 00:03.0 $vm
kvm show
EOF
	"$JC" -d 4 '.vms[0].kvm_told' '.vms[0].nr_kvm_files' \
		'.vms[0].devices[0].kvm_file' \
		'.vms[0].wbinvd_needed' '.vms[0].devices[0].name' \
		'.vms[0].devices[0].coherent' '.vms[0].devices[0].reason' \
		< "$tmp/out" > "$tmp/vals" 2>&1
	if [ "$(tr '\n' '|' < "$tmp/vals")" = "false|0|false|true|0000:00:03.0|false|Enable No Snoop is set, and domain $("$JC" -d 2 .domain < "$tmp/out") does not force snooping: IOAS $("$JC" -d 0 .ioas < "$tmp/out") is in snoop mode allow|" ]; then
		ok "kvm --json: snoop mode allow"
	else
		rc=1
		not_ok "kvm --json: snoop mode allow" "$(cat "$tmp/vals")"
	fi
fi

# ---- through ioasidd: sessions ------------------------------------------------------------------

# ---- status --format=prometheus ------------------------------------------------

PC=${PROM_CHECK:-$builddir/tests/prom_check}
batch <<'EOF'
a=ioas create
map $a --memfd --length 2M
r=ioas create --restricted
map $r --memfd --length 2M --iova 0x200000
attach 00:01.0 $a
convert $r shared 0x200000+4K
-dma 00:01.0 0x900000 4K
echo ==prometheus==
status --format prometheus
echo ==ids $a $r
EOF
sed -n '/^==prometheus==$/,/^==ids /p' "$tmp/out" | sed '1d;$d' > "$tmp/prom"
ids=$(sed -n 's/^==ids //p' "$tmp/out")
pa=${ids% *} pr=${ids#* }
if [ "$rc" != 0 ] || ! "$PC" < "$tmp/prom" 2> "$tmp/pc"; then
	not_ok "status --format prometheus: valid text format" \
		"status $rc; $(cat "$tmp/pc")"
else
	ok "status --format prometheus: valid text format"
	got=$(for q in "ioasid_ioas_mapped_bytes ioas=$pa" \
		       "ioasid_ioas_mappings ioas=$pa" \
		       "ioasid_ioas_faults_total ioas=$pa" \
		       "ioasid_ioas_devices ioas=$pa" \
		       "ioasid_ioas_conversions_total ioas=$pr" \
		       "ioasid_ioas_private_bytes ioas=$pr" \
		       "ioasid_ioas_shared_bytes ioas=$pr" \
		       "ioasid_ioas_pinned_bytes ioas=$pr" \
		       "ioasid_info backend=sim"; do
		"$PC" $q < "$tmp/prom" 2>&1
	done | tr '\n' ' ')
	[ "$got" = "2097152 1 1 1 1 2093056 4096 0 1 " ] &&
		ok "status --format prometheus: per-IOAS counters" ||
		not_ok "status --format prometheus: per-IOAS counters" "$got"
	sess=$("$PC" ioasid_ioas_mappings "ioas=$pa" < "$tmp/prom" > /dev/null &&
		sed -n "s/^ioasid_ioas_mappings{ioas=\"$pa\",session=\"\\([0-9]*\\)\".*/\\1/p" "$tmp/prom")
	got=$("$PC" ioasid_session_ioas "session=$sess" < "$tmp/prom" 2>&1)
	[ -n "$sess" ] && [ "$got" = 2 ] &&
		ok "status --format prometheus: per-session totals" ||
		not_ok "status --format prometheus: per-session totals" \
			"session '$sess': $got"
fi
run status --format yaml
t "status --format: unknown" 2 -e "format 'yaml' is not text, json or prometheus"
run status --format json
t "status --format json" 0 -J -j .backend "$("$JC" .backend < "$tmp/out")"

# the checker itself refuses what the format does not allow
for bad in 'x 1' \
	'# HELP x a\n# TYPE x gauge\nx 1\nx 2' \
	'# HELP x_c a\n# TYPE x_c counter\nx_c 1' \
	'# HELP x a\n# TYPE x gauge\nx{a="1",a="2"} 1' \
	'# HELP x a\n# TYPE x gauge\nx{a="\\q"} 1' \
	'# HELP x a\n# TYPE x gauge\nx 0x10' \
	'# HELP x a\n# TYPE x gauge\n# HELP y b\n# TYPE y gauge\ny 1\nx 1'; do
	if printf "$bad\\n" | "$PC" 2> /dev/null; then
		not_ok "prom_check refuses bad text" "accepted: $bad"
		bad=accepted
		break
	fi
done
[ "$bad" = accepted ] || ok "prom_check refuses bad text"

# ---- ioas show --svg: the same picture as the text view ------------------------

batch <<'EOF'
a=ioas create
map $a --memfd --length 2M
map $a --memfd --length 4K --iova 0x10000000
attach 00:03.0 $a
attach 01:00.0 $a
ioas show $a
echo ==json
--json ioas show $a
echo ==svg
ioas show $a --svg -
r=ioas create --restricted
map $r --memfd --length 2M --iova 0x200000
convert $r shared 0x200000+1M
echo ==restricted
ioas show $r --svg -
EOF
sed -n '/^==svg$/,/^<\/svg>$/p' "$tmp/out" | sed '1d' > "$tmp/a.svg"
sed -n '/^==json$/,/^==svg$/p' "$tmp/out" | sed '1d;$d' > "$tmp/a.json"
sed -n '/^==restricted$/,$p' "$tmp/out" | sed '1d' > "$tmp/r.svg"
sed -n '/^==json$/q;p' "$tmp/out" > "$tmp/a.txt"
if [ "$rc" != 0 ]; then
	not_ok "ioas show --svg" "status $rc"
elif ! command -v xmllint > /dev/null; then
	skipped "ioas show --svg: its facts" "no xmllint (libxml2-utils)"
elif ! xmllint --noout "$tmp/a.svg" "$tmp/r.svg" 2> "$tmp/xml"; then
	not_ok "ioas show --svg: well-formed XML" "$(cat "$tmp/xml")"
else
	ok "ioas show --svg: well-formed XML"
	x() {	# x FILE XPATH: an XPath value of the SVG (namespace-blind)
		xmllint --xpath "$2" "$1" 2> /dev/null
	}
	# the 64 columns, kind by kind, as the text view's line draws them
	cols=$(for i in $(seq 1 64); do
		x "$tmp/a.svg" "string((//*[local-name()='rect'][starts-with(@class,'col ')])[$i]/@data-kind)"
		echo
	done | sed 's/^mapped$/#/; s/^free$/./; s/^reserved$/r/; s/^disallowed$/x/' | tr -d '\n')
	line=$(sed -n 's/^  |\(.*\)|$/\1/p' "$tmp/a.txt")
	[ -n "$line" ] && [ "$cols" = "$line" ] &&
		ok "ioas show --svg: the columns of the text view" ||
		not_ok "ioas show --svg: the columns of the text view" \
			"svg '$cols', text '$line'"
	# every range, mapping, domain and device of the JSON, in order
	want= got=
	cnt=$("$JC" '.segments#' < "$tmp/a.json")
	i=0
	while [ $i -lt "$cnt" ]; do
		want="$want $("$JC" ".segments[$i].start" ".segments[$i].last" ".segments[$i].kind" < "$tmp/a.json" | tr '\n' ' ')"
		j=$((i + 1))
		got="$got $(x "$tmp/a.svg" "string((//*[@class='segment'])[$j]/@data-start)") $(x "$tmp/a.svg" "string((//*[@class='segment'])[$j]/@data-last)") $(x "$tmp/a.svg" "string((//*[@class='segment'])[$j]/@data-kind)") "
		i=$j
	done
	cnt=$("$JC" '.mappings#' < "$tmp/a.json")
	i=0
	while [ $i -lt "$cnt" ]; do
		want="$want $("$JC" ".mappings[$i].iova" ".mappings[$i].length" ".mappings[$i].prot" < "$tmp/a.json" | tr '\n' ' ')"
		j=$((i + 1))
		got="$got $(x "$tmp/a.svg" "string((//*[@class='mapping'])[$j]/@data-iova)") $(x "$tmp/a.svg" "string((//*[@class='mapping'])[$j]/@data-length)") $(x "$tmp/a.svg" "string((//*[@class='mapping'])[$j]/@data-prot)") "
		i=$j
	done
	want="$want $("$JC" '.domains#' '.devices#' < "$tmp/a.json" | tr '\n' ' ')"
	got="$got $(x "$tmp/a.svg" "count(//*[@class='domain'])") $(x "$tmp/a.svg" "count(//*[@class='device'])") "
	[ "$cnt" = 2 ] && [ "$got" = "$want" ] &&
		ok "ioas show --svg: ranges, mappings, domains, devices as the JSON" ||
		not_ok "ioas show --svg: ranges, mappings, domains, devices as the JSON" \
			"svg '$got', json '$want'"
	# the restricted IOAS: private and shared bytes
	got=$(x "$tmp/r.svg" "string(//*[@class='state']/@data-bytes-private)")-$(x "$tmp/r.svg" "string(//*[@class='state']/@data-bytes-shared)")
	[ "$got" = 1048576-1048576 ] &&
		ok "ioas show --svg: shared and private state" ||
		not_ok "ioas show --svg: shared and private state" "$got"
	if ! command -v rsvg-convert > /dev/null; then
		skipped "ioas show --svg: rendered" "no rsvg-convert (librsvg2-bin)"
	elif rsvg-convert -o "$tmp/a.png" "$tmp/a.svg" 2> "$tmp/xml" &&
	     [ "$(head -c 8 "$tmp/a.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
	     [ "$(wc -c < "$tmp/a.png")" -gt 10000 ]; then
		ok "ioas show --svg: rendered headless ($(wc -c < "$tmp/a.png") bytes of PNG)"
	else
		not_ok "ioas show --svg: rendered" "$(cat "$tmp/xml")"
	fi
fi
printf 'a=ioas create\nioas show $a --svg %s/no/such/dir/x.svg\n' "$tmp" > "$tmp/svg.batch"
run batch "$tmp/svg.batch"
t "ioas show --svg: an uncreatable file" 1 -e "cannot create $tmp/no/such/dir/x.svg"

# ---- JSON: one encoding for addresses and sizes ------------------------------

# Every read command's JSON, walked leaf by leaf (json_check -l): no value
# is a "0x..." string, and every address, offset and size is a number (or
# null when unknown).  The state covers mappings with offsets, a restricted
# IOAS with shared and private bytes, reserved holes, a fault and events.
f=$tmp/json-walk.ram
if [ "$(stat -f -c %T "$tmp" 2>/dev/null)" = tmpfs ]; then
	filemap="map \$a $f --offset 1M --length 1M --iova 0x10000000"
else
	filemap="map \$a --memfd --length 1M --iova 0x10000000"
fi
truncate -s 4M "$f"
batch --json <<EOF
a=ioas create
map \$a --memfd --length 2M
$filemap
attach 00:01.0 \$a
attach 01:00.0 \$a
r=ioas create --restricted
map \$r --memfd --length 2M --iova 0x200000
convert \$r shared 0x200000+1M
-dma 00:01.0 0x900000 4K
dma 00:01.0 0x10000000 16
unmap \$a 0x10000000 4K
status
devices
iommus
ioas list
ioas show \$a
ioas show \$r
kvm
faults
sim
monitor
dirty start \$a --fallback
dirty read \$a
EOF
if [ "$rc" != 0 ]; then
	not_ok "JSON walk: the batch ran" "status $rc"
else
	"$JC" -l < "$tmp/out" > "$tmp/leaves" 2>&1
	nleaves=$(wc -l < "$tmp/leaves")
	bad=$(awk '
	function last(p) { sub(/\[[0-9]+\]$/, "", p); sub(/.*\./, "", p); return p }
	{
		k = last($2)
		if (k == "first_bytes") next	# data, not a size
		if ($3 == "string" && $4 ~ /^0[xX][0-9a-fA-F]+$/) { print; next }
		if (k ~ /^(iova|offset|start|last|length|size|page_size|page_sizes|alignment|cap|ecap|bytes|unmapped|converted|timestamp_ns|state_bytes)$/ ||
		    k ~ /^bytes_/ || k ~ /_bytes$/)
			if ($3 != "number" && $3 != "null") print
	}' "$tmp/leaves")
	# the walk must have seen the kinds of values it judges
	seen=$(awk '{ p = $2; sub(/\[[0-9]+\]$/, "", p); sub(/.*\./, "", p); print p }' \
		"$tmp/leaves" | sort -u | grep -cxE 'iova|offset|start|last|length|size|page_sizes|cap|bytes_mapped|bytes_private|timestamp_ns')
	if [ -n "$bad" ]; then
		not_ok "JSON walk: addresses and sizes are numbers" "$bad"
	elif [ "$seen" -ne 11 ]; then
		not_ok "JSON walk: addresses and sizes are numbers" \
			"only $seen of 11 kinds of fields seen in $nleaves leaves"
	else
		ok "JSON walk: addresses and sizes are numbers ($nleaves leaves)"
	fi
	"$JC" -d 14 '.mappings[1].iova' '.segments[0].last' \
		< "$tmp/out" > "$tmp/vals" 2>&1
	[ "$(tr '\n' ' ' < "$tmp/vals")" = "268439552 2097151 " ] &&
		ok "JSON walk: exact decimal IOVAs" ||
		not_ok "JSON walk: exact decimal IOVAs" "$(cat "$tmp/vals")"
fi

# ---- nested tables ------------------------------------------------------------

for sub in list create attach invalidate destroy; do
	raw nested "$sub" --help
	t "nested $sub --help" 0 -o "^Usage: ioasidctl nested $sub"
done
# a root the parent does not map: DMA faults at stage 2, at the root
batch -x <<'EOF'
p=ioas create --nest-parent
map $p --memfd --length 2M --iova 0x40000000
n=nested create $p 00:01.0 --root 0x80000000
nested attach 00:01.0 $n
nested list $p
nested invalidate $n 0x200000 4 --leaf
nested invalidate $n --all
-dma 00:01.0 0x200000 16
faults
ioas show $p
devices 00:01.0
replace 00:01.0 $p
nested list
-nested destroy 4242
-nested invalidate $n 0x201 1
-nested create 1 00:01.0
nested destroy $n
EOF
t "nested: create, attach, list, invalidate, destroy" 0 \
	-o '^nested table [0-9]+ created over IOAS [0-9]+ for sim0 \(root 0x80000000, 48-bit\)$' \
	-o '^0000:00:01\.0 \(dev [0-9]+\) attached to nested table [0-9]+ over IOAS [0-9]+, domain [0-9]+ on sim0$' \
	-o '^NESTED +TYPE +IOMMU +DOMAIN +ROOT +WIDTH +DEVICES +INVALIDATIONS$' \
	-o '^ +[0-9]+ +vtd-s1 +sim0 +[0-9]+ +0x80000000 +48 +1 +0$' \
	-o '^nested table [0-9]+: 0x200000\+4 pages invalidated$' \
	-o '^nested table [0-9]+: everything invalidated$' \
	-o 'not-present \(nested [0-9]+, stage 2 at 0x0000000080000000\)$' \
	-o '^  NESTED TABLES$' \
	-o '^ +[0-9]+ +vtd-s1 +sim0 +[0-9]+ +0x80000000 +48 +1 +2$' \
	-o '^  0000:00:01\.0 +[0-9]+ +[0-9]+ +[0-9]+ +yes ' \
	-o '^ +[0-9]+ +vtd-s1 +sim0 +[0-9]+ +0x80000000 +48 +0 +2$' \
	-o '^nested table [0-9]+ destroyed$' \
	-e 'cannot destroy nested table 4242: no nested table 4242$' \
	-e 'cannot invalidate nested table [0-9]+: entry 0: address 0x201 is not 4 KiB aligned$' \
	-e 'nested create: --root GPA is required'
# a PASID on a nested table: ioas show of the parent names the table
batch -x <<'EOF'
p=ioas create --nest-parent
map $p --memfd --length 2M --iova 0x40000000
n=nested create $p 00:03.0 --root 0x40000000
nested attach 00:03.0 $n --pasid 7
devices 00:03.0
ioas show $p
-nested destroy $n
-nested attach 00:03.0 $n --pasid 7
replace 00:03.0 $p --pasid 7
nested attach 00:03.0 $n --pasid 7 --replace
detach 00:03.0 --pasid 7
nested destroy $n
EOF
t "nested attach --pasid: shown, busy, moved, detached" 0 \
	-o '^0000:00:03\.0 \(dev [0-9]+\) PASID 7 attached to nested table [0-9]+$' \
	-o '^0000:00:03\.0 .* +1/20-bit +' \
	-o '^  PASIDS$' \
	-o '^  DEVICE +DEV +PASID +DOMAIN +NESTED$' \
	-o '^  0000:00:03\.0 +[0-9]+ +7 +[0-9]+ +[0-9]+$' \
	-e 'cannot destroy nested table [0-9]+: nested table [0-9]+ still has 1 device PASID\(s\) attached$' \
	-e 'PASID 7 of device 0000:00:03\.0 is already attached to nested table [0-9]+ \(use replace\)$' \
	-o '^0000:00:03\.0 \(dev [0-9]+\) PASID 7 moved to IOAS [0-9]+$' \
	-o '^0000:00:03\.0 \(dev [0-9]+\) PASID 7 moved to nested table [0-9]+$' \
	-o '^0000:00:03\.0 \(dev [0-9]+\) PASID 7 detached$' \
	-o '^nested table [0-9]+ destroyed$'
batch --json <<'EOF'
p=ioas create --nest-parent
n=nested create $p 00:03.0 --root 0x1000
nested attach 00:03.0 $n --pasid 7
ioas show $p
EOF
t "nested attach --pasid --json" 0 -J
"$JC" -d 1 '.nested' < "$tmp/out" > "$tmp/vals" 2>&1
"$JC" -d 3 '.pasids[0].pasid' '.pasids[0].nested' '.pasids#' \
	< "$tmp/out" >> "$tmp/vals" 2>&1
set -- $(cat "$tmp/vals")
[ "$#" = 4 ] && [ "$2" = 7 ] && [ "$3" = "$1" ] && [ "$4" = 1 ] &&
	ok "ioas show --json: the PASID's nested table" ||
	not_ok "ioas show --json: the PASID's nested table" "$(cat "$tmp/vals")"
run nested create abc 00:01.0
t "nested create: a bad IOAS id before the missing --root" 2 \
	-e "nested create: 'abc' is not a valid IOAS id" -E 'root GPA'
batch --json <<'EOF'
p=ioas create --nest-parent
n=nested create $p 00:01.0 --root 0x1000 --width 57
nested attach 00:01.0 $n
nested list $p
devices 00:01.0
EOF
t "nested --json" 0 -J
"$JC" -d 3 '.nested[0].addr_width' '.nested[0].pgtbl_addr' '.nested[0].type' \
	< "$tmp/out" > "$tmp/vals" 2>&1
[ "$(tr '\n' ' ' < "$tmp/vals")" = "57 4096 vtd-s1 " ] &&
	ok "nested list --json: width, root, type" ||
	not_ok "nested list --json: width, root, type" "$(cat "$tmp/vals")"
# --selftest: the mock's table; the sim refuses it by type, both commands
batch <<'EOF'
p=ioas create --nest-parent
v=viommu create $p 00:01.0
-nested create $p 00:01.0 --selftest 0x1234
viommu nested $v 00:01.0 --selftest 7
EOF
t "nested create / viommu nested --selftest: the sim names the type" 1 \
	-e 'cannot create a nested table over IOAS [0-9]+ for 0000:00:01\.0: .*VT-d first-stage tables only \(type 2\)$' \
	-e 'cannot create a nested table on vIOMMU [0-9]+ for 0000:00:01\.0: .*VT-d first-stage tables only \(type 2\)$'
run nested create 1 00:01.0 --root 0x1000 --selftest 1
t "nested create: --root and --selftest together" 2 \
	-e 'nested create: --selftest is the mock.s table, --root and --width a VT-d one.s: not both'
run viommu nested 1 00:01.0 --selftest 0x100000000
t "viommu nested: a --selftest value over 32 bits" 2 \
	-e 'viommu nested: IOTLB value 0x100000000 does not fit in 32 bits'
batch <<'EOF'
a=ioas create
nested create $a 00:01.0 --root 0x1000
EOF
t "nested create: not a nesting parent" 1 \
	-e 'IOAS [0-9]+ is not a nesting parent: allocate it with IOASID_IOAS_NEST_PARENT'
batch <<'EOF'
p=ioas create --nest-parent
n=nested create $p 00:01.0 --root 0x1000
nested attach 00:01.0 $n
nested destroy $n
EOF
t "nested destroy: devices attached" 1 \
	-e 'nested table [0-9]+ still has 1 device\(s\) attached'
# ---- vIOMMUs and vDEVICEs ------------------------------------------------------

for sub in list create nested invalidate destroy; do
	raw viommu "$sub" --help
	t "viommu $sub --help" 0 -o "^Usage: ioasidctl viommu $sub" -E .
done
for sub in list create destroy; do
	raw vdevice "$sub" --help
	t "vdevice $sub --help" 0 -o "^Usage: ioasidctl vdevice $sub" -E .
done
raw help viommu invalidate
t "help viommu invalidate" 0 -o '^Usage: ioasidctl viommu invalidate' \
	-o 'VIRT_ID:ADDR:NPAGES' -o 'VIRT_ID:cache=N'
# a vIOMMU, two vDEVICEs, a table on it, device caches dropped by virtual
# ID; every refusal leaves the lists as they were
batch <<'EOF'
p=ioas create --nest-parent
map $p --memfd --length 2M --iova 0x40000000
v=viommu create $p 00:01.0
viommu list $p
d=vdevice create $v 00:01.0 0x100
g=vdevice create $v 00:03.0 0x200
-vdevice create $v 00:03.0 0x300
-vdevice create $v 00:02.0 0x100
-vdevice create $v 01:00.0 0x500
-vdevice create 4242 00:02.0 0x600
vdevice list $v
n=viommu nested $v 00:01.0 --root 0x40000000
-nested attach 00:02.0 $n
nested attach 00:01.0 $n
viommu invalidate $v --device-cache 0x100 --device-cache 0x200:0x200000:4
-viommu invalidate $v --device-cache 0x100 --device-cache 0x999 --device-cache 0x200
-viommu invalidate $v --device-cache 0x100:0x201:1
-viommu invalidate $v --device-cache 0x100:cache=1
-viommu invalidate 4242 --device-cache 0x100
-viommu destroy $v
-vdevice destroy 4242
-viommu destroy 4242
-viommu destroy $d
viommu list
ioas show $p
vdevice list
EOF
t "viommu: create, vdevice, nested, invalidate, list" 0 \
	-o '^vIOMMU [0-9]+ \(sim\) created over IOAS [0-9]+ for sim0, domain [0-9]+$' \
	-o '^VIOMMU +TYPE +IOMMU +IOAS +DOMAIN +VDEVICES +NESTED +INVALIDATIONS$' \
	-o '^ +[0-9]+ +sim +sim0 +[0-9]+ +[0-9]+ +0 +0 +0$' \
	-o '^vDEVICE [0-9]+ created: 0000:00:01\.0 \(dev [0-9]+\) is 0x100 on vIOMMU [0-9]+$' \
	-o '^vDEVICE [0-9]+ created: 0000:00:03\.0 \(dev [0-9]+\) is 0x200 on vIOMMU [0-9]+$' \
	-o '^VDEVICE +VIOMMU +DEVICE +DEV +VIRT_ID$' \
	-o '^ +[0-9]+ +[0-9]+ +0000:00:03\.0 +[0-9]+ +0x200$' \
	-o '^nested table [0-9]+ created on vIOMMU [0-9]+ over IOAS [0-9]+ for sim0 \(root 0x40000000, 48-bit\)$' \
	-o '^0000:00:01\.0 \(dev [0-9]+\) attached to nested table [0-9]+ over IOAS [0-9]+' \
	-o '^vIOMMU [0-9]+: 2 of 2 entries done$' \
	-o '^ +ENTRY +VIRT_ID +WHAT +RESULT$' \
	-o '^ +0 +0x100 +all +done$' \
	-o '^ +1 +0x200 +0x200000\+4 pages +done$' \
	-o '^vIOMMU [0-9]+: 1 of 3 entries done$' \
	-o '^ +1 +0x999 +all +failed \(EINVAL\)$' \
	-o '^ +2 +0x200 +all +not tried$' \
	-o '^ +0 +0x100 +0x201\+1 pages +failed \(EINVAL\)$' \
	-o '^ +0 +0x100 +cache 1 +failed \(EINVAL\)$' \
	-o '^ +[0-9]+ +sim +sim0 +[0-9]+ +[0-9]+ +2 +1 +3$' \
	-o '^  VIOMMUS$' -o '^  VDEVICES$' \
	-o '^   +[0-9]+ +sim +sim0 +[0-9]+ +[0-9]+ +2 +1 +3$' \
	-o '^   +[0-9]+ +[0-9]+ +0000:00:01\.0 +[0-9]+ +0x100$' \
	-O '0x300|0x500|0x600' \
	-e 'cannot give 0000:00:03\.0 virtual ID 0x300 on vIOMMU [0-9]+: device 0000:00:03\.0 already has vDEVICE [0-9]+ \(on vIOMMU [0-9]+\)$' \
	-e 'cannot give 0000:00:02\.0 virtual ID 0x100 on vIOMMU [0-9]+: .*0x100' \
	-e 'cannot give 0000:01:00\.0 virtual ID 0x500 on vIOMMU [0-9]+: .*sim1' \
	-e 'cannot give 0000:00:02\.0 virtual ID 0x600 on vIOMMU 4242: no vIOMMU 4242$' \
	-e 'attach 0000:00:02\.0 to nested table [0-9]+: .*vDEVICE' \
	-e 'cannot invalidate through vIOMMU [0-9]+: entry 1: no device has virtual ID 0x999 on vIOMMU [0-9]+$' \
	-e 'cannot invalidate through vIOMMU [0-9]+: entry 0: address 0x201 is not 4 KiB aligned$' \
	-e 'cannot invalidate through vIOMMU [0-9]+: entry 0: cache_id 1: ' \
	-e 'cannot invalidate through vIOMMU 4242: no vIOMMU 4242$' \
	-e 'cannot destroy vIOMMU [0-9]+: vIOMMU [0-9]+ still has 2 vDEVICE\(s\) and 1 nested table\(s\)$' \
	-e 'cannot destroy vDEVICE 4242: no vDEVICE 4242$' \
	-e 'cannot destroy vIOMMU 4242: no vIOMMU 4242$' \
	-e 'cannot destroy vIOMMU [0-9]+: no vIOMMU [0-9]+$'
# a refused request prints no entry table
grep -c '^vIOMMU [0-9]*: [0-9]* of' "$tmp/out" > "$tmp/vals"
[ "$(cat "$tmp/vals")" = 4 ] && ok "viommu invalidate: entry tables only for entries tried" ||
	not_ok "viommu invalidate: entry tables only for entries tried" "$(cat "$tmp/vals") tables"
# the teardown in order, and what destroy refuses on the way
batch <<'EOF'
p=ioas create --nest-parent
v=viommu create $p 00:01.0
d=vdevice create $v 00:01.0 0x100
n=viommu nested $v 00:01.0 --root 0x1000
nested attach 00:01.0 $n
vdevice destroy $d
-vdevice destroy $d
replace 00:01.0 $p
nested destroy $n
detach 00:01.0
-ioas destroy $p
viommu list $p
viommu destroy $v
viommu list $p
vdevice list
d=vdevice create $v 00:01.0 0x100
EOF
t "viommu: teardown order" 1 \
	-o '^vDEVICE [0-9]+ destroyed$' \
	-o '^ +[0-9]+ +sim +sim0 +[0-9]+ +[0-9]+ +0 +0 +0$' \
	-o '^vIOMMU [0-9]+ destroyed$' \
	-o '^no vIOMMUs$' -o '^no vDEVICEs$' \
	-e 'cannot destroy IOAS [0-9]+: .*vIOMMU' \
	-e 'cannot destroy vDEVICE [0-9]+: no vDEVICE [0-9]+$' \
	-e 'line 16: cannot give 0000:00:01\.0 virtual ID 0x100 on vIOMMU [0-9]+: no vIOMMU [0-9]+$'
batch <<'EOF'
p=ioas create --nest-parent
viommu create $p 01:00.0
EOF
t "viommu create: an IOMMU without nesting" 1 \
	-e 'cannot create a sim vIOMMU over IOAS [0-9]+ for 0000:01:00\.0: IOMMU sim1 of device 0000:01:00\.0 has no nested translation$'
batch --json <<'EOF'
p=ioas create --nest-parent
viommu create $p 01:00.0
EOF
t "viommu create --json: EOPNOTSUPP, saying why" 1 \
	-e '^\{"error":\{"errno":95,"name":"EOPNOTSUPP","line":2,"message":"cannot create a sim vIOMMU over IOAS [0-9]+ for 0000:01:00\.0: IOMMU sim1 of device 0000:01:00\.0 has no nested translation"\}\}$'
batch <<'EOF'
p=ioas create --nest-parent
viommu create $p 00:01.0 --type selftest
EOF
t "viommu create: a type the backend has not" 1 \
	-e 'cannot create a selftest vIOMMU over IOAS [0-9]+ for 0000:00:01\.0: .*IOASID_VIOMMU_SIM'
batch <<'EOF'
a=ioas create
viommu create $a 00:01.0
EOF
t "viommu create: not a nesting parent" 1 \
	-e 'cannot create a sim vIOMMU over IOAS [0-9]+ for 0000:00:01\.0: .*nest'
batch <<'EOF'
p=ioas create --nest-parent
v=viommu create $p 00:01.0
viommu nested $v 00:03.0
EOF
t "viommu nested: --root is required" 2 \
	-e 'viommu nested: --root GPA is required .*, or --selftest IOTLB'
batch <<'EOF'
p=ioas create --nest-parent
v=viommu create $p 00:01.0
vdevice list 4242
EOF
t "vdevice list: an unknown vIOMMU" 1 -e 'vdevice list: no vIOMMU 4242$|^ioasidctl: line 3: no vIOMMU 4242$'
# usage errors: exit 2, before anything is opened
for args in "viommu create 1" "viommu create x 00:01.0" \
	    "viommu create 1 00:01.0 --type vtd" "viommu destroy" \
	    "viommu destroy 0" "viommu nested 1 00:01.0 --root 0x1000 --width 40" \
	    "viommu invalidate 1" "viommu invalidate 1 --device-cache x" \
	    "viommu invalidate 1 --device-cache 0x100:0x1000" \
	    "viommu invalidate 1 --device-cache 0x100:cache=y" \
	    "vdevice create 1 00:01.0" "vdevice create 1 00:01.0 zz" \
	    "vdevice destroy" "vdevice list 1 2" "viommu frob"; do
	run $args
	t "usage: $args" 2 -e '^ioasidctl: viommu|^ioasidctl: vdevice|is not a command of ioasidctl viommu'
done
run viommu invalidate 1
t "viommu invalidate: says what is missing" 2 -e '--device-cache ENTRY is required'
run vdevice create 1 00:01.0 zz
t "vdevice create: says what is wrong" 2 -e "'zz' is not a valid virtual ID"
run viommu create 1 00:01.0 --type vtd
t "viommu create: names the types" 2 -e "'vtd' is not a vIOMMU type \(sim or selftest\)"
run --json viommu destroy 4242
t "viommu destroy --json: an error object" 1 \
	-e '^\{"error":\{"errno":2,"name":"ENOENT","message":"cannot destroy vIOMMU 4242: no vIOMMU 4242"\}\}$'
batch --json <<'EOF'
p=ioas create --nest-parent
v=viommu create $p 00:01.0
d=vdevice create $v 00:01.0 0x100
n=viommu nested $v 00:01.0 --root 0x1000 --width 57
viommu invalidate $v --device-cache 0x100 --device-cache 0x100:0x2000:2
viommu list $p
vdevice list $v
ioas show $p
-viommu invalidate $v --device-cache 0x100 --device-cache 0x7
vdevice destroy $d
nested destroy $n
viommu destroy $v
EOF
t "viommu --json" 0 -J -e '"name":"EINVAL".*entry 1: no device has virtual ID 0x7'
"$JC" -n < "$tmp/out" > "$tmp/vals"
[ "$(cat "$tmp/vals")" = 12 ] && ok "viommu --json: one document per command, the failed invalidation's too" ||
	not_ok "viommu --json: one document per command, the failed invalidation's too" "$(cat "$tmp/vals") documents"
jv() {	# jv DOC PATH...: the values, on one line
	d=$1
	shift
	"$JC" -d "$d" "$@" < "$tmp/out" 2>&1 | tr '\n' ' '
}
v=$(jv 1 .viommu)
p=$(jv 0 .ioas)
check_json() {	# check_json NAME GOT WANT
	[ "$2" = "$3" ] && ok "$1" || not_ok "$1" "'$2', expected '$3'"
}
check_json "viommu create --json" "$(jv 1 .viommu .ioas .type .iommu .domain)" \
	"$v$p""sim sim0 $(jv 5 .viommus[0].domain)"
check_json "vdevice create --json" "$(jv 2 .viommu .device .virt_id)" \
	"$v""0000:00:01.0 256 "
check_json "viommu nested --json" "$(jv 3 .viommu .ioas .iommu .pgtbl_addr .addr_width)" \
	"$v$p""sim0 4096 57 "
check_json "viommu invalidate --json" "$(jv 4 .viommu .done .entries# \
	.entries[0].virt_id .entries[0].all .entries[0].result .entries[0].error \
	.entries[1].all .entries[1].addr .entries[1].npages .entries[1].cache_id)" \
	"$v""2 2 256 true done null false 8192 2 0 "
check_json "viommu list --json" "$(jv 5 .viommus# .viommus[0].viommu \
	.viommus[0].ioas .viommus[0].type .viommus[0].iommu \
	.viommus[0].nr_vdevices .viommus[0].nr_nested .viommus[0].nr_invalidations)" \
	"1 $v$p""sim sim0 1 1 2 "
check_json "vdevice list --json" "$(jv 6 .vdevices# .vdevices[0].viommu \
	.vdevices[0].device .vdevices[0].virt_id)" "1 $v""0000:00:01.0 256 "
check_json "ioas show --json: viommus[], vdevices[]" "$(jv 7 .viommus# \
	.viommus[0].viommu .vdevices# .vdevices[0].virt_id .nested#)" \
	"1 $v""1 256 1 "
check_json "viommu invalidate --json: a failed entry" "$(jv 8 .done \
	.entries[0].result .entries[1].result .entries[1].error)" \
	"1 done failed EINVAL "
check_json "vdevice destroy, viommu destroy --json" \
	"$(jv 9 .destroyed)$(jv 11 .viommu .destroyed)" "true $v""true "
# ---- dirty tracking: start, read, clear, stop (one session) -----------------

batch --keep-going <<'EOF'
a=ioas create
map $a --memfd --length 1M --iova 0x100000
attach 00:01.0 $a
dirty read $a
dirty start $a
dma 00:01.0 0x105000 64 --write
dma 00:01.0 0x108000 8K --write
dirty read $a
dirty read $a 0x100000+64K --clear
dirty read $a
dirty start $a
dirty stop $a
dirty read $a
EOF
t "dirty: start, read, read-and-clear, stop" 1 \
	-e 'line 4: cannot read the dirty pages of IOAS [0-9]+: dirty tracking is not on' \
	-o '^IOAS [0-9]+: dirty tracking on$' \
	-o '^IOAS [0-9]+: 3 of 256 pages dirty in 0x100000-0x1fffff$' \
	-o '^  0x105000-0x105fff  4K$' \
	-o '^  0x108000-0x109fff  8K$' \
	-o '^IOAS [0-9]+: 3 of 16 pages dirty in 0x100000-0x10ffff \(cleared\)$' \
	-o '^IOAS [0-9]+: 0 of 256 pages dirty in 0x100000-0x1fffff$' \
	-e 'line 11: cannot start dirty tracking of IOAS [0-9]+: dirty tracking is already on' \
	-o '^IOAS [0-9]+: dirty tracking off$'
batch --json <<'EOF'
a=ioas create
map $a --memfd --length 1M --iova 0x100000
attach 00:01.0 $a
dirty start $a
dma 00:01.0 0x108000 8K --write
dirty read $a --clear
EOF
t "dirty read --json" 0 -J
"$JC" -d 5 .iova .length .pages .dirty_pages .cleared '.dirty[0].start' \
	'.dirty[0].last' '.dirty[0].pages' < "$tmp/out" > "$tmp/vals" 2>&1
[ "$(tr '\n' ' ' < "$tmp/vals")" = \
  "1048576 1048576 256 2 true 1081344 1089535 2 " ] &&
	ok "dirty read --json: decimal numbers, one run" ||
	not_ok "dirty read --json: decimal numbers, one run" "$(tr '\n' ' ' < "$tmp/vals")"
batch --keep-going <<'EOF'
a=ioas create
attach 00:01.0 $a
attach 0000:01:02.0 $a
dirty start $a
dirty start $a --fallback
EOF
t "dirty start: all or nothing, --fallback" 1 \
	-e 'line 4: cannot start dirty tracking of IOAS [0-9]+: domain [0-9]+ of IOAS [0-9]+ cannot track dirty pages' \
	-o '^IOAS [0-9]+: dirty tracking on \(a domain cannot track: every mapped page reads as dirty\)$'

# ---- messages: said once, near misses, --json errors ------------------------

run ioas show 99
t "an unknown IOAS is named once" 1 -e '^ioasidctl: no IOAS 99$'
run status --jsn
t "an unknown option suggests the near one" 2 -e "not known; did you mean '--json'\?"
run ioas show -5
t "'-5' is no option" 2 -e "'-5' is not an option, nor a valid argument"
run --json ioas show 99
t "--json: an error is JSON on stderr" 1 -O .
jerr() {	# jerr NAME PATH VALUE...: JSON values of stderr
	name=$1; shift
	while [ $# -gt 0 ]; do
		got=$("$JC" "$1" < "$tmp/err" 2>&1)
		[ "$got" = "$2" ] ||
			{ not_ok "$name" "stderr JSON $1 is '$got', expected '$2'"; return; }
		shift 2
	done
	ok "$name"
}
jerr "--json error object" .error.errno 2 .error.name ENOENT \
	.error.message "no IOAS 99"
run --json map 1 --memfd --lenght 4K
t "--json: a usage error is JSON too" 2 -O . -E '^Try '
jerr "--json usage error object" .error.name EINVAL \
	.error.message "map: option '--lenght' is not known; did you mean '--length'?"

if [ $daemon = yes ]; then
	batch <<'EOF'
a=ioas create
map $a --memfd --length 2M
status
EOF
	t "daemon counts other objects of this session" 0 -o '^ioas: +[1-9]' \
		-o '^mappings: +[1-9][0-9]* \(2M\)'
	run status --json
	t "daemon: the batch session is gone" 0 -j .nr_ioas 0 -j .nr_mappings 0

	# another client's objects: shown when the daemon lets us observe
	observer=$("$JC" .observer < "$tmp/out")
	# The holder keeps its session until it is killed below (monitor's
	# --timeout only bounds a forgotten holder): what follows must not
	# race its exit, however slow the machine.
	printf '%s\n' 'a=ioas create' 'map $a --memfd --length 2M' \
		'attach 00:01.0 $a' \
		'echo ready $a' 'monitor --timeout 600' > "$tmp/hold.batch"
	"$CTL" --uri "$URI" batch "$tmp/hold.batch" > "$tmp/hold" 2>&1 &
	holder=$!
	# waits for the line; 60 s bound a hang
	tries=0
	until grep -q '^ready' "$tmp/hold" || [ $tries -gt 6000 ] ||
		! kill -0 "$holder" 2> /dev/null; do
		sleep 0.01
		tries=$((tries + 1))
	done
	held=$(sed -n 's/^ready //p' "$tmp/hold")
	run ioas list
	uid=$(id -u)
	printf 'a=ioas create\nattach 00:01.0 $a\n' | "$CTL" --uri "$URI" batch \
		> "$tmp/out" 2> "$tmp/err"
	rc=$?
	t "EBUSY names the session that holds the device" 1 \
		-e "device 0000:00:01\\.0 is already bound by session [0-9]+ of pid $holder \\([^)]*\\), uid $uid\$"
	run ioas list
	if [ "$observer" = true ]; then
		t "observer: another client's IOAS, with its owner" 0 \
			-o "^ +$held +- +auto +1 +2M .* $holder +$uid *\$" \
			-o '^IOAS +FLAGS .* PID +UID *$'
		run ioas list --json
		i=0
		while [ "$("$JC" ".ioas[$i].ioas" < "$tmp/out")" != "$held" ] &&
			[ $i -lt 64 ]; do
			i=$((i + 1))
		done
		t "observer: ioas list --json owner" 0 \
			-j ".ioas[$i].owner_pid" "$holder" \
			-j ".ioas[$i].owner_uid" "$uid"
		run ioas show "$held"
		t "observer: ioas show of another client's IOAS" 0 \
			-o '^  mappings: +1, 2M mapped' \
			-o "^  owner: +pid $holder, uid $uid\$"
		run ioas show "$held" --json
		t "observer: ioas show --json owner" 0 \
			-j .owner_pid "$holder" -j .owner_uid "$uid"
	else
		t "no observer: only this session" 0 -O "^ +$held " \
			-e "only this session's address spaces are shown: "
		run ioas show "$held"
		t "no observer: another client's IOAS is not there" 1 \
			-e "no IOAS $held"
	fi
	run --own ioas list
	t "--own: only this session, no owners" 0 -O "^ +$held " -E . \
		-O ' PID +UID'
	if [ "$observer" = true ]; then
		# an administrator's monitor hears another session start,
		# fault and end; it is subscribed once it said so (status
		# opens its session, and a batch's session subscribes at once)
		printf '%s\n' 'status' 'echo subscribed' \
			'monitor --count 3 --timeout 60' > "$tmp/mon.batch"
		"$CTL" --uri "$URI" batch "$tmp/mon.batch" > "$tmp/mon" 2>&1 &
		mon=$!
		tries=0
		until grep -q '^subscribed' "$tmp/mon" || [ $tries -gt 6000 ] ||
			! kill -0 "$mon" 2> /dev/null; do
			sleep 0.01
			tries=$((tries + 1))
		done
		printf 'a=ioas create\nattach 00:03.0 $a\n-dma 00:03.0 0x900000 4K\n' |
			"$CTL" --uri "$URI" batch > /dev/null 2>&1
		wait "$mon"
		rc=$?
		cp "$tmp/mon" "$tmp/out"
		: > "$tmp/err"
		t "observer monitor: every session's events, with wall-clock time" 0 \
			-o '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2} session-start session [0-9]+: pid [0-9]+, uid '"$uid"'$' \
			-o '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2} fault device 0000:00:03\.0 \(dev [0-9]+\) at IOVA 0x900000 \[session [0-9]+, pid [0-9]+, uid '"$uid"'\]$' \
			-o '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2} session-end session [0-9]+: pid [0-9]+, uid '"$uid"', ioasidctl(\[[0-9]+\])?$'
	fi
	kill "$holder" 2> /dev/null
	wait "$holder"
fi

# ---- --session NAME: state kept in ioasidd across commands -------------------

export XDG_RUNTIME_DIR="$tmp/xdg"
mkdir -m 0700 "$XDG_RUNTIME_DIR"
tokens="$XDG_RUNTIME_DIR/ioasidctl/sessions"
raw --token-file "$tmp/tok" ioas list
t "--token-file without --session" 2 -e '--token-file goes with --session NAME'
raw --uri sim --session s1 ioas list
t "--session needs ioasidd" 2 -e 'needs a plain unix:PATH URI'
raw --session ../up ioas list
t "--session: a name that is no file name" 2 -e "no '/' and no leading '.'"

if [ $daemon = yes ]; then
	# the conformance daemon grants no linger: said, and nothing left
	run --session s0 ioas list
	t "--session without linger is refused" 1 \
		-e 'gives this user no linger .*session s0 would end'
	if [ -e "$tokens/s0" ]; then
		rc=1
		not_ok "--session without linger leaves no token" "$tokens/s0"
	else
		ok "--session without linger leaves no token"
	fi
else
	# an ioasidd of our own whose policy lets us linger
	lsock="$tmp/linger.sock"
	printf '[user %s]\nlinger = 600\ndevices = all\nmax-mappings = 100\nmax-bytes-mapped = 1G\n' \
		"$(id -u)" > "$tmp/linger.conf"
	"$builddir/ioasidd/ioasidd" --backend sim --socket "$lsock" \
		--config "$tmp/linger.conf" --log-level info \
		2> "$tmp/linger.log" &
	lpid=$!
	tries=0	# ready once it says so; 60 s bound a hang
	until grep -q 'Serving backend' "$tmp/linger.log" 2> /dev/null ||
		[ $tries -gt 6000 ] || ! kill -0 $lpid 2> /dev/null; do
		sleep 0.01
		tries=$((tries + 1))
	done
	L="unix:$lsock"
	raw --uri "$L" --session s1 ioas create
	t "--session: ioas create" 0 -o '^IOAS [0-9]+ created'
	ioas=$(sed -n 's/^IOAS \([0-9]*\) created.*/\1/p' "$tmp/out")
	mode=$(stat -c %a "$tokens/s1" 2> /dev/null)
	if [ "$mode" = 600 ]; then
		ok "--session: token file of mode 0600"
	else
		rc=1
		not_ok "--session: token file of mode 0600" "mode '$mode'"
	fi
	raw --uri "$L" --session s1 map "$ioas" --memfd --length 2M
	t "--session: map into the IOAS of the last command" 0
	raw --uri "$L" --session s1 ioas list
	t "--session: the IOAS and its mapping are still there" 0 \
		-o "^ +$ioas +- +auto +1 +2M " -E .
	raw --uri "$L" session list
	t "session list: s1 lingers with what it holds" 0 \
		-o '^NAME +STATE +ID +UID +PID +LINGER +EXPIRES' \
		-o '^s1 +lingering +[0-9]+ +[0-9]+ +[0-9]+ +600s +[0-9]+s +1 +1 +0 +0 +-$' \
		-o '^- +connected +[0-9]+ +[0-9]+ +[0-9]+ +- +- +0 +0 +0 +0 +ioasidctl\[[0-9]+\] \*$'
	raw --uri "$L" --json session list
	t "session list --json" 0 -J -j .sessions[0].name s1 \
		-j .sessions[0].state lingering -j .sessions[0].nr_ioas 1 \
		-j .sessions[0].linger_s 600 -j .sessions[0].named true \
		-j .sessions[0].self false -j .sessions[0].client "" \
		-j .sessions[1].named false -j .sessions[1].self true \
		-j .sessions[1].state connected
	# an unnamed client that stays connected (a monitor) is listed with
	# what it told ioasidd it is, to the operator and in the metrics
	"$CTL" --uri "$L" monitor > "$tmp/mon.out" 2>&1 &
	mpid=$!
	tries=0	# listed once connected; 60 s bound a hang
	until "$CTL" --uri "$L" session list 2> /dev/null |
		grep -q "ioasidctl\[$mpid\]\$" || [ $tries -gt 6000 ]; do
		sleep 0.01
		tries=$((tries + 1))
	done
	raw --uri "$L" session list
	t "session list: an unnamed connected session" 0 \
		-o "^- +connected +[0-9]+ +[0-9]+ +$mpid +- +- +0 +0 +0 +0 +ioasidctl\[$mpid\]\$"
	raw --uri "$L" status --format prometheus
	got=$("$PC" ioasid_session_info "pid=$mpid" named=no \
		"client=ioasidctl[$mpid]" state=connected < "$tmp/out" 2>&1)/$("$PC" \
		ioasid_session_events_lost_total "pid=$mpid" < "$tmp/out" 2>&1)
	[ "$got" = 1/0 ] &&
		ok "prometheus: an unnamed session, with its counters" ||
		not_ok "prometheus: an unnamed session, with its counters" "$got"
	kill $mpid
	wait $mpid 2> /dev/null
	# a second session whose fault queue overflowed (the batch of
	# "events lost" above): 1100 faults, 256 records kept; its events
	# reached the client, whose own queue dropped 76 and told ioasidd
	# at the next request (each DMA's event comes before its reply)
	raw --uri "$L" --session s2 batch "$tmp/lost.batch"
	t "--session s2: a batch of faults" 0
	raw --uri "$L" status --format prometheus
	cp "$tmp/out" "$tmp/lprom"
	if [ "$rc" != 0 ] || ! "$PC" < "$tmp/lprom" 2> "$tmp/pc"; then
		not_ok "prometheus: named sessions, valid text format" \
			"status $rc; $(cat "$tmp/pc" "$tmp/err")"
	else
		ok "prometheus: named sessions, valid text format"
		s1=$(sed -n 's/^ioasid_session_info{session="\([0-9]*\)".*name="s1".*/\1/p' "$tmp/lprom")
		s2=$(sed -n 's/^ioasid_session_info{session="\([0-9]*\)".*name="s2".*/\1/p' "$tmp/lprom")
		got=$(for q in "ioasid_session_fault_records_lost_total session=$s1" \
			       "ioasid_session_events_lost_total session=$s1" \
			       "ioasid_session_fault_records_lost_total session=$s2" \
			       "ioasid_session_events_lost_total session=$s2" \
			       "ioasid_session_info session=$s2 state=lingering"; do
			"$PC" $q < "$tmp/lprom" 2>&1
		done | tr '\n' ' ')
		[ -n "$s1" ] && [ -n "$s2" ] && [ "$got" = "0 0 844 76 1 " ] &&
			ok "prometheus: records and events lost, per session" ||
			not_ok "prometheus: records and events lost, per session" \
				"s1 '$s1' s2 '$s2': $got"
		got=$(for l in max-mappings max-bytes-mapped max-ioas; do
			for f in limit usage; do
				"$PC" ioasid_session_$f "session=$s1" "limit=$l" \
					< "$tmp/lprom" 2>&1
			done
		done | tr '\n' ' ')
		[ "$got" = "100 1 1073741824 2097152 64 1 " ] &&
			ok "prometheus: limits next to their use, per session" ||
			not_ok "prometheus: limits next to their use, per session" "$got"
	fi
	raw --uri "$L" session drop s2
	t "session drop s2" 0
	raw --uri "$L" --session s1 --token-file "$tmp/other.tok" ioas list
	t "--session: another token file cannot take the name" 1 \
		-e 'already has a session named "s1"'
	cp "$tokens/s1" "$tmp/old.tok"
	raw --uri "$L" --session s1 ioas list
	t "--session: reclaimed again" 0 -o "^ +$ioas "
	cp "$tokens/s1" "$tmp/cur.tok"
	cp "$tmp/old.tok" "$tokens/s1"
	raw --uri "$L" --session s1 ioas list
	t "--session: a spent token is refused" 1 -e 'wrong token' \
		-e 'session drop s1'
	cp "$tmp/cur.tok" "$tokens/s1"
	chmod 0644 "$tokens/s1"
	raw --uri "$L" --session s1 ioas list
	t "--session: a token file others may read is refused" 1 \
		-e 'mode 0600'
	chmod 0600 "$tokens/s1"
	raw --uri "$L" --session s1 session drop s1
	t "session drop: not from inside" 2 -e 'from inside it'
	raw --uri "$L" session drop s1
	t "session drop" 0 -o '^session s1 dropped$'
	[ -e "$tokens/s1" ] && { rc=1; not_ok "session drop removes the token" \
		"$tokens/s1"; } || ok "session drop removes the token"
	raw --uri "$L" session drop s1
	t "session drop: no such session" 1 -e 'has no session named "s1"'
	raw --uri "$L" --session s1 ioas list
	t "--session after a drop: a new, empty session" 0 -O "^ +$ioas "
	raw --uri "$L" session list
	t "session list: the new s1" 0 -o '^s1 +lingering .* +0 +0 +0 +0 +-$'
	# vIOMMUs kept by a named session between one-shot commands
	S3="--uri $L --session s3"
	raw $S3 ioas create --nest-parent
	t "--session: a nest-parent for a vIOMMU" 0 -o '^IOAS [0-9]+ created'
	vp=$(sed -n 's/^IOAS \([0-9]*\) created.*/\1/p' "$tmp/out")
	raw $S3 viommu create "$vp" 00:02.0
	t "--session: viommu create" 0 \
		-o "^vIOMMU [0-9]+ \\(sim\\) created over IOAS $vp for sim0, domain [0-9]+\$"
	vv=$(sed -n 's/^vIOMMU \([0-9]*\) .*/\1/p' "$tmp/out")
	raw $S3 vdevice create "$vv" 00:02.0 0x10
	t "--session: vdevice create" 0 \
		-o "^vDEVICE [0-9]+ created: 0000:00:02\\.0 \\(dev [0-9]+\\) is 0x10 on vIOMMU $vv\$"
	vd=$(sed -n 's/^vDEVICE \([0-9]*\) .*/\1/p' "$tmp/out")
	raw $S3 vdevice create "$vv" 00:02.0 0x11
	t "--session: a second vDEVICE for a device" 1 \
		-e "cannot give 0000:00:02\\.0 virtual ID 0x11 on vIOMMU $vv: device 0000:00:02\\.0 already has vDEVICE $vd \\(on vIOMMU $vv\\)\$"
	raw $S3 vdevice create "$vv" 00:02.1 0x10
	t "--session: a virtual ID taken" 1 -e 'virtual ID 0x10 is taken'
	raw $S3 vdevice create 4242 00:02.1 0x12
	t "--session: vdevice create on an unknown vIOMMU" 1 -e 'no vIOMMU 4242$'
	raw $S3 vdevice create "$vv" 00:02.1
	t "--session: vdevice create without a virtual ID" 2 \
		-e 'vdevice create: expected 3 arguments|vdevice create: .*argument'
	raw $S3 --json vdevice list "$vv"
	t "--session: the refusals left one vDEVICE" 0 -J -j '.vdevices#' 1 \
		-j .vdevices[0].vdevice "$vd" -j .vdevices[0].virt_id 16 \
		-j .vdevices[0].device 0000:00:02.0
	raw $S3 viommu nested "$vv" 00:02.0 --root 0x1000
	t "--session: viommu nested" 0 -o "^nested table [0-9]+ created on vIOMMU $vv over IOAS $vp for sim0"
	vn=$(sed -n 's/^nested table \([0-9]*\) .*/\1/p' "$tmp/out")
	raw $S3 nested attach 00:02.0 "$vn"
	t "--session: attach with the vDEVICE" 0
	raw $S3 viommu invalidate "$vv" --device-cache 0x10 --device-cache 0x10:0x0:1
	t "--session: viommu invalidate" 0 -o "^vIOMMU $vv: 2 of 2 entries done\$"
	raw $S3 viommu invalidate "$vv" --device-cache 0x11
	t "--session: invalidate an unknown virtual ID" 1 \
		-o '^ +0 +0x11 +all +failed \(EINVAL\)$' \
		-e "entry 0: no device has virtual ID 0x11 on vIOMMU $vv\$"
	raw $S3 viommu destroy "$vv"
	t "--session: viommu destroy while in use" 1 -e 'still has 1 vDEVICE'
	raw $S3 --json viommu list "$vp"
	t "--session: the vIOMMU as it was" 0 -J -j '.viommus#' 1 \
		-j .viommus[0].viommu "$vv" -j .viommus[0].nr_vdevices 1 \
		-j .viommus[0].nr_nested 1 -j .viommus[0].nr_invalidations 2
	raw $S3 ioas show "$vp"
	t "--session: ioas show lists the vIOMMU and vDEVICE" 0 -o '^  VIOMMUS$' \
		-o "^ +$vv +sim +sim0 +$vp +[0-9]+ +1 +1 +2\$" \
		-o "^ +$vd +$vv +0000:00:02\\.0 +[0-9]+ +0x10\$"
	raw $S3 vdevice destroy "$vd"
	t "--session: vdevice destroy" 0 -o "^vDEVICE $vd destroyed\$"
	raw $S3 vdevice destroy "$vd"
	t "--session: vdevice destroy twice" 1 -e "no vDEVICE $vd\$"
	raw $S3 detach 00:02.0
	t "--session: detach from the table" 0
	raw $S3 nested destroy "$vn"
	t "--session: nested destroy" 0
	raw $S3 viommu destroy "$vv"
	t "--session: viommu destroy" 0 -o "^vIOMMU $vv destroyed\$"
	raw $S3 viommu list "$vp"
	t "--session: no vIOMMUs left" 0 -o '^no vIOMMUs$'
	raw --uri "$L" session drop s3
	t "session drop s3" 0
	kill $lpid
	wait $lpid
	lstatus=$?
	if [ $lstatus -eq 0 ]; then
		ok "the lingering ioasidd exits cleanly"
	else
		rc=$lstatus
		not_ok "the lingering ioasidd exits cleanly" "$(cat "$tmp/linger.log")"
	fi
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
