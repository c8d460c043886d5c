#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run the benchmarks and rewrite docs/benchmarks.md from what they print.
#
#   scripts/bench-report.sh [BUILD_DIR [make bench arguments...]]
#
# BUILD_DIR defaults to ./build (a configured build tree).  Examples:
#   scripts/bench-report.sh
#   scripts/bench-report.sh build BENCH_IOVA_TREE_ARGS=--full
#   scripts/bench-report.sh build bench-quick     (a short run)
#   BENCH_SCHED="chrt -f 1" scripts/bench-report.sh build bench-quick
#                       (real-time priority: on a machine busy with other
#                       work, the figures are then the programs' own)
#
# The machine is described by what the benchmarks read: /proc/cpuinfo,
# the cache entries of sysfs, /proc/meminfo, uname and the compiler.
# The raw JSON lines are kept in docs/benchmarks.json next to the page.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
target=bench
case "${1:-}" in
bench|bench-quick) target=$1; shift ;;
esac
[ -f "$build/Makefile" ] || {
	echo "bench-report: $build is not a configured build tree" >&2
	exit 2
}

out=$top/docs/benchmarks.md
json=$top/docs/benchmarks.json
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.md"' EXIT

# BENCH_SCHED: a command to run the benchmarks under, e.g. "chrt -f 1"
# on a machine shared with other work (said in the Run section).
sched=${BENCH_SCHED:-}
if [ -n "$sched" ]; then
	sched_text="\`$sched\` (the benchmarks, ioasidd included, ran under it,
  ahead of the machine's other work)"
else
	sched_text="the default policy, shared with that load"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date -u '+%Y-%m-%d %H:%M UTC')
$sched make -s -C "$build" "$target" "$@" >"$tmp"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
end=$(date -u '+%H:%M UTC')
grep '^{' "$tmp" >"$json"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
ncpu=$(grep -c '^processor' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
caches=
for d in /sys/devices/system/cpu/cpu0/cache/index*; do
	[ -r "$d/size" ] || continue
	c="L$(cat "$d/level") $(cat "$d/type") $(cat "$d/size")"
	c="$c (shared by CPUs $(cat "$d/shared_cpu_list"))"
	caches="$caches
  - $c"
done
cc=$(sed -n 's/^CC = //p' "$build/Makefile" | head -n1)
ccver=$(${cc:-cc} --version 2>/dev/null | head -n1)
commit=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)

{
	cat <<EOF
# Benchmarks

This page is generated: \`scripts/bench-report.sh\` ran \`make $target\`
in a build tree and wrote every line the programs printed into the tables
below (and, unformatted, into \`docs/benchmarks.json\`).  Do not edit it by
hand; run the script again.  The comparison with QEMU's and libvfio-user's
IOVA structures is in [benchmarks-peers.md](benchmarks-peers.md).

Each figure is one JSON line: \`value\` in \`unit\` and the parameters it
was measured with.  Unless a line says otherwise, \`value\` is a median over
\`reps\` or \`runs\` repetitions (\`min\` is the best one where given).

## Run

- Commit \`$commit\`, $start to $end.
- Load average before: $load_before; after: $load_after.
- Scheduling: $sched_text.

## Machine (as the benchmarks read it)

- CPU: $cpu, $ncpu logical CPUs (/proc/cpuinfo).
- Caches of CPU 0 (sysfs):$caches
- Memory: $mem (/proc/meminfo).
- Kernel: $(uname -sr); compiler: $ccver.

EOF
	awk -f - "$json" <<'AWK'
function field(line, key,    m) {
	if (match(line, "\"" key "\":(\"[^\"]*\"|[^,}]*)")) {
		m = substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
		gsub(/"/, "", m)
		return m
	}
	return ""
}
function params(line,    rest, out, k, v) {
	rest = line
	gsub(/^{|}$/, "", rest)
	out = ""
	while (match(rest, /"[^"]*":("[^"]*"|[^,]*)/)) {
		k = substr(rest, RSTART, RLENGTH)
		rest = substr(rest, RSTART + RLENGTH)
		if (k ~ /^"(bench|metric|value|unit)":/)
			continue
		gsub(/"/, "", k)
		sub(/:/, "=", k)
		out = out (out == "" ? "" : ", ") k
	}
	return out
}
{
	b = field($0, "bench")
	if (b == "ioas" && field($0, "layer") == "tree")
		b = "iova_tree"
	if (b != cur) {
		cur = b
		printf "\n## %s\n\n| metric | value | unit | parameters |\n|---|---:|---|---|\n", b
	}
	printf "| %s | %s | %s | %s |\n", field($0, "metric"), field($0, "value"),
		field($0, "unit"), params($0)
}
AWK
	cat <<'EOF'

## What the programs measure

- **ioas** (`bench/bench_ioas.c`): map, lookup and unmap of n 4 KiB
  mappings through the public API, embedded, simulated IOMMU, with no
  device (`domain=none`) and with one attached (`domain=sim`: every map and
  unmap also programs the page table and invalidates the IOTLB).
  `pattern` is the order of maps and unmaps; lookups go in a random order
  of their own.  Each repetition runs the two side by side;
  `map_device_ratio` and `unmap_device_ratio` are the medians of their
  per-repetition ratios (with a device over without).
- **iova_tree** (`bench/bench_iova_tree.c`): the IOVA tree alone
  (`libioasid/core/iova_tree.c`), same sizes and orders, plus split storm,
  allocation, and `dram_latency_ns`: one dependent load in a buffer of
  `buffer_bytes`, at least four times the last-level cache (`llc_bytes`).
- **sim_dma** (`bench/bench_sim_dma.c`): simulated DMA against memcpy,
  with 2 MiB leaves (`leaf=2M`, the IOTLB always hits) and 4 KiB leaves
  (`leaf=4K`); translations with IOTLB hits and misses; DMA while 2 MiB
  leaves are split.
- **convert** (`bench/bench_convert.c`): shared/private conversions of a
  64 GiB guest, embedded and through ioasidd (`mode`), single calls and
  batches of 1024, without and with a device thread doing DMA (`dma`).
- **rpc** (`bench/bench_rpc.c`): round trips through ioasidd against a raw
  SOCK_SEQPACKET ping-pong, and maps per second, pinned with
  sched_setaffinity: everything on one CPU (`placement=one_cpu`), or client
  and daemon on two CPUs (`placement=two_cpus`).  In the same run and
  placement, `lookup_ns` of n 4 KiB mappings in random order embedded,
  through ioasidd's shared view (`transport=ioasidd_view`, the fast path
  of docs/architecture.md) and over the socket (`ioasidd_socket`,
  `IOASID_NO_FASTPATH=1`), their ratio (`view_ratio_vs_embedded`);
  single map and unmap calls back to back (`single_calls_per_s`, of a
  file the IOAS holds already) embedded, through the request ring
  (`ioasidd_ring`) and the socket; one call `gap_us` (0, 50, 200, 2000,
  20000; `--gaps`) after the end of the previous one (`lone_call_ns`,
  median, and `lone_call_p90_ns`), the daemon's CPU time per such call
  (`daemon_cpu_per_lone_call_ns`, its CPU clock over 200 ms of calls at
  that pace) and as a share of the time (`daemon_cpu_pct`: the price of
  its spin), how often per call the client slept for its completion
  (`client_sleeps_per_lone_call`, its voluntary context switches: a
  second wakeup) and the daemon went back to sleep
  (`daemon_sleeps_per_lone_call`), and its CPU share while its client is silent
  (`daemon_idle_cpu_pct`).  Beside each gap, the floor under a lone call:
  the same calls between two bare processes, an echo that sleeps in
  `read()` on an eventfd and answers on another, and a client that waits
  as the library does (`transport=raw_eventfd`), measured in turn with
  ioasidd's in each run; `lone_call_ratio_vs_raw` is the median of the
  per-run ratios.  These run against the daemon with its
  default spin and again against one started with `--ring-spin-us 0`
  (`daemon_spin_us`).
- **nested** (`bench/bench_nested.c`): two-stage translation on the
  simulated IOMMU (`stages=2`: a VT-d first-stage table of 4 KiB leaves
  in guest memory, each of its reads translated by stage 2) with IOTLB
  hits and misses, cached stage-2-only translations (`stages=1`) beside
  them; nested invalidations per second of one page and of everything
  (`layer=sim`) and of one entry through the public API
  (`layer=api-embedded`).
- **dirty** (`bench/bench_dirty.c`): a pre-copy migration's figures.
  `read_clear_round_ms`: one read-and-clear of a whole 64 GiB guest (a
  sparse memfd) after the simulated NIC wrote `writes_per_round` random
  pages, embedded and through ioasidd (`mode`), with 4 KiB IOPTEs
  (`leaf=4K`, a page-granular IOAS) and 1 GiB ones (each write marks
  262,144 pages); `bitmap_bytes_per_round`: the 2 MiB bitmap a round moves
  through ioasidd, by the connection's memfd (`via`); `dma_write_ns`:
  simulated DMA writes with tracking never started, on, and stopped, with
  IOTLB misses and hits, the three domains' passes taking turns;
  `dma_write_ratio_vs_never`, on or stopped over never, the median of the
  turns' ratios (1 within the noise: tracking while stopped costs
  nothing); and `dirty_bits_set` after the passes with it stopped.
- **fault** (`bench/bench_fault.c`): a recoverable fault's round trip on
  the simulated IOMMU (`roundtrip_ns`, median and p99): a DMA to a page
  that is not mapped returns `-EINPROGRESS` with a page request on the
  IOAS's fault queue, the handler polls its eventfd, reads the record,
  maps the page (`map_ns` of it), answers success, and the retried DMA
  completes; embedded and through ioasidd (`via`; the eventfd comes by
  SCM_RIGHTS); `roundtrip_wait_ns`: per page of one DMA whose device
  thread waits for each answer (`IOASID_DMA_PAGE_WAIT`, embedded only);
  `dma_mapped_ns`: the same DMA to a mapped page, for scale; `step_ns`:
  each step's median (`step`: fault_dma, poll, read, map, respond,
  retry_dma).  Through ioasidd twice, pinned (`placement`: one_cpu, the
  benchmark and ioasidd on CPU 0; two_cpus, ioasidd on CPU 1).
EOF
} >"$tmp.md"
mv "$tmp.md" "$out"
echo "bench-report: wrote $out and $json" >&2
