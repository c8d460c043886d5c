#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The shared library exports exactly the symbols libioasid.sym lists, all
# named ioasid_* and versioned LIBIOASID_* (the simulator-only calls in
# LIBIOASID_SIM_*); each is declared in the header.
set -eu
so="${top_builddir:-.}/libioasid/.libs/libioasid.so"
sym="${top_srcdir:-.}/libioasid/libioasid.sym"
hdr="${top_srcdir:-.}/libioasid/libioasid.h"
[ -f "$so" ] || { echo "SKIP: $so not built (static-only build?)"; exit 77; }

exported=$(nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "D" || $2 == "B" {print $3}' | sort)
bad=$(echo "$exported" | grep -v '^ioasid_[a-z0-9_]*@@LIBIOASID_\(SIM_\)\?[0-9_]*$' || true)
[ -z "$bad" ] || { echo "FAIL: unexpected exports:"; echo "$bad"; exit 1; }

listed=$(sed -n 's/^[[:space:]]*\(ioasid_[a-z0-9_]*\);$/\1/p' "$sym" | sort)
names=$(echo "$exported" | sed 's/@@.*//' | sort)
if [ "$listed" != "$names" ]; then
	echo "FAIL: libioasid.sym and the library disagree:"
	diff <(echo "$listed") <(echo "$names") 2>/dev/null || { echo "listed: $listed"; echo "exported: $names"; }
	exit 1
fi
for s in $names; do
	grep -q "\b$s(" "$hdr" || { echo "FAIL: $s is not declared in libioasid.h"; exit 1; }
done
# the simulator-only calls are in their own node, and only they
sim=$(echo "$exported" | sed -n 's/@@LIBIOASID_SIM_[0-9_]*$//p' | sort | tr '\n' ' ')
[ "$sim" = "ioasid_device_dma ioasid_device_dma_pasid ioasid_sim_hotplug " ] || {
	echo "FAIL: LIBIOASID_SIM_* holds \"$sim\", not the simulator-only calls"
	exit 1
}
echo "ok: $(echo "$names" | wc -l) symbols, all ioasid_*, all versioned"
