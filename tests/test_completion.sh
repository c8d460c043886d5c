#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The bash completion of ioasidctl, in a real interactive bash on a pseudo
# terminal (script(1)): each case types a partial command line, TAB, then
# goes to the start of the line and prefixes "echo RESULTn", so that bash
# prints the completed line.  Readline handles the keys in order, so no
# waiting is involved.  Runs with bash-completion loaded (when installed)
# and without it.  Devices come from the built ioasidctl on --uri sim.
set -u
srcdir=$(cd "${top_srcdir:-.}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
command -v script > /dev/null || { echo "SKIP: script(1) not found"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0

# CASE: typed text | the expected completed line
cases=(
	"ioasidctl --uri sim attach 0000:00:03|ioasidctl --uri sim attach 0000:00:03.0"
	"ioasidctl --uri sim attach 0000:00:0|ioasidctl --uri sim attach 0000:00:0"
	"ioasidctl --uri sim detach 0000:00:02.|ioasidctl --uri sim detach 0000:00:02."
	"ioasidctl --uri sim dma 0000:00:01|ioasidctl --uri sim dma 0000:00:01.0"
	"ioasidctl --uri sim kvm add 0000:00:03|ioasidctl --uri sim kvm add 0000:00:03.0"
	"ioasidctl sim unp|ioasidctl sim unplug"
	"ioasidctl nested inv|ioasidctl nested invalidate"
	"ioasidctl --uri sim nested attach 0000:00:03|ioasidctl --uri sim nested attach 0000:00:03.0"
	"ioasidctl ioas create --nest-p|ioasidctl ioas create --nest-parent"
	"ioasidctl sim sh|ioasidctl sim show"
	"ioasidctl sim pl|ioasidctl sim plug"
	"ioasidctl --uri sim sim unplug 0000:00:02.1|ioasidctl --uri sim sim unplug 0000:00:02.1"
	"ioasidctl --uri sim sim plug 0000:00:03|ioasidctl --uri sim sim plug 0000:00:03.0"
	"ioasidctl ioas cr|ioasidctl ioas create"
	"ioasidctl --js|ioasidctl --json"
	"ioasidctl status --format prom|ioasidctl status --format prometheus"
	"ioasidctl ioas show 1 --sv|ioasidctl ioas show 1 --svg"
	"ioasidctl monitor --time mono|ioasidctl monitor --time monotonic"
	"ioasidctl sho|ioasidctl show"
	"ioasidctl show io|ioasidctl show ioas"
	"ioasidctl daemon up|ioasidctl daemon upgrade"
	"ioasidctl daemon upgrade --bin|ioasidctl daemon upgrade --binary"
	"ioasidctl dir|ioasidctl dirty"
	"ioasidctl dirty st|ioasidctl dirty st"
	"ioasidctl dirty re|ioasidctl dirty read"
	"ioasidctl dirty read 1 --cl|ioasidctl dirty read 1 --clear"
	"ioasidctl dirty start 1 --fa|ioasidctl dirty start 1 --fallback"
	"ioasidctl vi|ioasidctl viommu"
	"ioasidctl viommu inv|ioasidctl viommu invalidate"
	"ioasidctl viommu invalidate 4 --dev|ioasidctl viommu invalidate 4 --device-cache"
	"ioasidctl viommu create 1 00:01.0 --type sel|ioasidctl viommu create 1 00:01.0 --type selftest"
	"ioasidctl --uri sim viommu create 1 0000:00:03|ioasidctl --uri sim viommu create 1 0000:00:03.0"
	"ioasidctl viommu nested 4 00:01.0 --ro|ioasidctl viommu nested 4 00:01.0 --root"
	"ioasidctl vd|ioasidctl vdevice"
	"ioasidctl vdevice cr|ioasidctl vdevice create"
	"ioasidctl --uri sim vdevice create 4 0000:00:03|ioasidctl --uri sim vdevice create 4 0000:00:03.0"
)

run_bash() {	# run_bash LABEL RCFILE
	local label=$1 rc=$2 keys=$tmp/keys i=0 c typed want got
	: > "$keys"
	for c in "${cases[@]}"; do
		i=$((i + 1))
		printf '%s\t\001echo RESULT%d \r' "${c%%|*}" $i >> "$keys"
	done
	printf 'exit\r' >> "$keys"
	TERM=dumb timeout 60 script -qec "bash --noprofile --rcfile '$rc' -i" /dev/null \
		< "$keys" > "$tmp/out" 2>&1
	tr -d '\r' < "$tmp/out" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' > "$tmp/clean"
	i=0
	for c in "${cases[@]}"; do
		i=$((i + 1)) n=$((n + 1))
		typed=${c%%|*} want=${c#*|}
		got=$(grep -a -o "^RESULT$i .*" "$tmp/clean" | head -1)
		got=${got#RESULT$i }
		if [ "$got" = "$want" ]; then
			echo "ok $n - $label: '$typed<TAB>' gives '$want'"
		else
			echo "not ok $n - $label: '$typed<TAB>' gives '$got', expected '$want'"
			fail=$((fail + 1))
		fi
	done
}

for variant in plain bash-completion; do
	rc=$tmp/rc-$variant
	{
		echo "PS1='\$ '"
		echo "PATH='$builddir/ioasidctl':\$PATH"
		if [ $variant = bash-completion ]; then
			bc=/usr/share/bash-completion/bash_completion
			if [ ! -r $bc ]; then
				echo "# SKIP $variant: $bc not installed"
				continue
			fi
			echo ". $bc"
		fi
		echo ". '$srcdir/completion/ioasidctl'"
	} > "$rc"
	if grep -q '^# SKIP' "$rc"; then
		echo "ok $((n + 1)) # SKIP $variant: bash-completion is not installed"
		n=$((n + 1))
		continue
	fi
	run_bash "$variant" "$rc"
done
echo "1..$n"
echo "$((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
