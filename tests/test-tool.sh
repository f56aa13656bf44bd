#!/usr/bin/env bash
# tests/test-tool.sh — drives the built `objmem` tool through every
# subcommand: --help, bad arguments (usage error on stderr, exit 2), and
# what each one promises. Registered with CTest by the top-level
# CMakeLists.txt (tool block):
#   test-tool.sh OBJMEM_BINARY LEAKY_PROGRAM WORK_DIR plain|sanitized
# LEAKY_PROGRAM is tests/tool-leaky.c built against objmem: it leaks a known
# amount from a known function, for `objmem trace`.
# Prints "N passed, N failed" like the C tests and exits non-zero on failure.
set -u

tool=$1
leaky=$2
work=$3
build=${4:-plain}
rm -rf "$work" && mkdir -p "$work" || exit 1

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# run NAME CMD...: runs CMD with stdout/stderr in $work/NAME.out/.err, sets rc.
run() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
}

# expect_rc NAME WANT: the last run's exit status was WANT.
expect_rc() {
  if [ "$rc" -eq "$2" ]; then ok; else bad "$1: exit $rc, expected $2"; sed 's/^/  | /' "$work/$1.err" | head -20; fi
}

# expect_in NAME FILE-SUFFIX PATTERN: grep -E PATTERN in $work/NAME.FILE-SUFFIX.
expect_in() {
  if grep -Eq -- "$3" "$work/$1.$2"; then ok; else bad "$1: no /$3/ in its $2"; sed 's/^/  | /' "$work/$1.$2" | head -40; fi
}

# A usage error: exit 2, the complaint and a usage line on stderr, nothing on stdout.
expect_usage_error() {
  local name=$1; shift
  run "$name" "$@"
  expect_rc "$name" 2
  expect_in "$name" err "usage: objmem"
  if [ -s "$work/$name.out" ]; then bad "$name: wrote to stdout"; else ok; fi
}

# --help: usage on stdout, exit 0.
expect_help() {
  local name=$1; shift
  run "$name" "$@"
  expect_rc "$name" 0
  expect_in "$name" out "^usage: objmem"
}

# ---- top level ---------------------------------------------------------------------
expect_help top-help "$tool" --help
expect_in top-help out "demo|stats"
expect_usage_error top-none "$tool"
expect_usage_error top-unknown "$tool" frobnicate
expect_in top-unknown err "unknown command 'frobnicate'"
expect_help help-demo "$tool" help demo
expect_usage_error help-unknown "$tool" help frobnicate
run version "$tool" --version
expect_rc version 0
expect_in version out "^objmem [0-9]+\.[0-9]+\.[0-9]+$"

# ---- demo --------------------------------------------------------------------------
expect_help demo-help "$tool" demo --help
expect_usage_error demo-flag "$tool" demo --frobnicate
expect_usage_error demo-blocks "$tool" demo --blocks 0
run demo "$tool" demo --blocks 20000
expect_rc demo 0
expect_in demo out "^\[14/14\] Threads"
expect_in demo out "[0-9.]+ (KiB|MiB)"
expect_in demo out "[0-9.]+ ns"

# ---- stats -------------------------------------------------------------------------
expect_help stats-help "$tool" stats --help
expect_usage_error stats-flag "$tool" stats --frobnicate
expect_usage_error stats-two-files "$tool" stats a.json b.json
run stats "$tool" stats
expect_rc stats 0
expect_in stats out "small blocks \(up to 512 B\)"
expect_in stats out "large blocks in use +[1-9]"
expect_in stats out "medium arenas mapped now +[1-9]"
run stats-json "$tool" stats --json
expect_rc stats-json 0
cp "$work/stats-json.out" "$work/snapshot.json"
# The round trip: the file's tables, and the file written back byte for byte.
run stats-file "$tool" stats "$work/snapshot.json"
expect_rc stats-file 0
arenas=$(sed -n 's/.*"arenas_current":\([0-9]*\).*/\1/p' "$work/snapshot.json")
expect_in stats-file out "arenas mapped now +$arenas "
used=$(sed -n 's/.*"pools_used":\([0-9]*\).*/\1/p' "$work/snapshot.json")
shown=$(sed -n 's/^ *pools in use *\([0-9,]*\)$/\1/p' "$work/stats-file.out" | tr -d ,)
if [ -n "$used" ] && [ "$shown" = "$used" ]; then ok; else bad "stats FILE shows $shown pools in use, the file says $used"; fi
run stats-file-json "$tool" stats --json "$work/snapshot.json"
expect_rc stats-file-json 0
if cmp -s "$work/stats-file-json.out" "$work/snapshot.json"; then ok; else bad "stats --json FILE does not reproduce FILE"; fi
# Malformed snapshots: a clear message naming the file, exit 1.
printf '{"arena_size":1048576,' >"$work/truncated.json"
run stats-truncated "$tool" stats "$work/truncated.json"
expect_rc stats-truncated 1
expect_in stats-truncated err "truncated.json:1:[0-9]+: not a stats snapshot"
sed 's/"purges":[0-9]*,//' "$work/snapshot.json" >"$work/missing.json"
run stats-missing "$tool" stats "$work/missing.json"
expect_rc stats-missing 1
expect_in stats-missing err "no member \"purges\""
printf '[1, 2, 3]\n' >"$work/array.json"
run stats-array "$tool" stats "$work/array.json"
expect_rc stats-array 1
run stats-nofile "$tool" stats "$work/does-not-exist.json"
expect_rc stats-nofile 1
expect_in stats-nofile err "cannot open .*does-not-exist.json"

# Out of memory in the workload (the address space capped with ulimit -v,
# so that objmem's mappings fail; not under sanitizers, which need a huge
# address space): a message with the library's error, exit 1.
if [ "$build" = plain ]; then
  run stats-oom bash -c 'ulimit -v 20000 && exec "$0" stats' "$tool"
  expect_rc stats-oom 1
  expect_in stats-oom err "^objmem stats: om_mem_malloc\([0-9]+\) failed: error [0-9]+: out of memory"
fi

# ---- bench -------------------------------------------------------------------------
expect_help bench-help "$tool" bench --help
expect_usage_error bench-flag "$tool" bench --frobnicate
expect_usage_error bench-filter "$tool" bench --quick --filter pairs,nosuchthing
expect_in bench-filter err "no workload or allocator named 'nosuchthing'"
expect_usage_error bench-filter-empty "$tool" bench --quick --filter ,
expect_usage_error bench-runs "$tool" bench --runs 0
expect_usage_error bench-runs-missing "$tool" bench --runs
# Under sanitizers only glibc is a peer: the others are not built with
# them (LeakSanitizer reports tcmalloc's own start-up allocations, and
# jemalloc cannot be preloaded ahead of the ASan runtime); and no realloc
# workload: ASan's realloc copies on every call, 1 MiB grown a byte at a
# time is half a terabyte of copying.
filter=
nworkloads=8
if [ "$build" != plain ]; then
  filter="--filter glibc,pairs,churn,bulk,trees,medium,window,large"
  nworkloads=7
fi
run bench-json "$tool" bench --quick --json $filter
expect_rc bench-json 0
# Valid JSON, every workload with objmem's time and a positive ratio per
# available peer (glibc is always there).
if command -v python3 >/dev/null 2>&1; then
  if python3 - "$work/bench-json.out" "$nworkloads" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
peers = [a["name"] for a in d["allocators"] if a["available"] and a["name"] != "objmem"]
assert "glibc" in peers, peers
assert len(d["workloads"]) == int(sys.argv[2]), len(d["workloads"])
for w in d["workloads"]:
    assert w["ns_per_op"]["objmem"] > 0, w
    assert w["ops"] > 0, w
    for p in peers:
        r = w["ratios"][p]
        assert r > 0, (w["name"], p, r)
        want = w["ns_per_op"]["objmem"] / w["ns_per_op"][p]
        assert abs(r - want) <= 1e-3 * want + 1e-4, (w["name"], p, r, want)
PY
  then ok; else bad "bench --quick --json: not the promised JSON"; sed 's/^/  | /' "$work/bench-json.out" | head -20; fi
else
  expect_in bench-json out '"ratios":\{"glibc":[0-9.]+'
fi
# Text: the tables, and no progress bar when stdout is not a terminal.
run bench-text "$tool" bench --quick --filter pairs,trees,glibc
expect_rc bench-text 0
expect_in bench-text out "^ratios: objmem time / peer time"
expect_in bench-text out "^pairs +[0-9.]+ +[0-9.]+ +pair$"
expect_in bench-text out "^trees +[0-9.]+$"
if grep -q "churn\|mimalloc" "$work/bench-text.out"; then bad "bench --filter ran what it filtered out"; else ok; fi
if grep -q $'\r' "$work/bench-text.out"; then bad "bench drew a progress bar on a pipe"; else ok; fi
# On a terminal (script(1) gives it one), the bar is drawn, and full at the end.
if command -v script >/dev/null 2>&1; then
  run bench-tty script -qec "'$tool' bench --quick --filter pairs,glibc" /dev/null
  expect_rc bench-tty 0
  expect_in bench-tty out "\[#{30}\] +2/2"
  expect_in bench-tty out "ratios: objmem time / peer time"
fi

# A measurement that fails (the window workload holds ~8 MiB; capped at
# ~10 MB of address space, objmem's child runs out): named, exit 1.
if [ "$build" = plain ]; then
  run bench-fail bash -c 'ulimit -v 10000 && exec "$0" bench --quick --filter window,glibc' "$tool"
  expect_rc bench-fail 1
  expect_in bench-fail err "window on objmem: the measurement failed \(exit status 3\)"
fi

# ---- trace -------------------------------------------------------------------------
expect_help trace-help "$tool" trace --help
expect_usage_error trace-flag "$tool" trace --frobnicate -- "$leaky"
expect_usage_error trace-no-program "$tool" trace --
expect_usage_error trace-frames-zero "$tool" trace --frames 0 -- "$leaky"
expect_usage_error trace-frames-big "$tool" trace --frames 129 -- "$leaky"
expect_usage_error trace-frames-text "$tool" trace --frames many -- "$leaky"
expect_usage_error trace-frames-missing "$tool" trace --frames
expect_usage_error trace-top-zero "$tool" trace --top 0 -- "$leaky"
# tool-leaky leaks 25 blocks of 400 B from leaky_cache_entry and exits 3.
run trace "$tool" trace --frames 8 --top 5 -- "$leaky" 3
expect_rc trace 0
expect_in trace out "tool-leaky: leaked 25 blocks"
expect_in trace out "exited with status 3"
expect_in trace out "still live at exit: .*\(10,000 bytes\) in 25 blocks from 1 site "
expect_in trace out "^ +9\.8 KiB +25 +400 B +leaky_cache_entry"
expect_in trace out "^ +main \("
if grep -q tidy_scratch "$work/trace.out"; then bad "trace: a freed site is listed as live"; else ok; fi
# --frames 1: tracebacks of one frame, so no main below the site.
run trace-one-frame "$tool" trace --frames 1 "$leaky"
expect_rc trace-one-frame 0
expect_in trace-one-frame out "exited with status 0"
expect_in trace-one-frame out "tracebacks of up to 1 frames"
if grep -Eq "^ +main \(" "$work/trace-one-frame.out"; then bad "trace --frames 1 shows a second frame"; else ok; fi
# A program that is not there; one that is not linked with objmem.
run trace-missing "$tool" trace -- "$work/no-such-program"
expect_rc trace-missing 1
expect_in trace-missing err "cannot run '.*no-such-program': No such file"
run trace-tmpdir env TMPDIR="$work/no-such-dir" "$tool" trace -- "$leaky"
expect_rc trace-tmpdir 1
expect_in trace-tmpdir err "cannot make a directory for the snapshot"
run trace-foreign "$tool" trace -- true
expect_rc trace-foreign 1
expect_in trace-foreign err "true left no trace snapshot"
# The library side: OBJMEM_TRACE_OUTPUT that cannot be written, or is too
# long, is one line on stderr and changes nothing else.
run trace-env-unwritable env OBJMEM_TRACEMALLOC=4 OBJMEM_TRACE_OUTPUT="$work/no-such-dir/snap" "$leaky"
expect_rc trace-env-unwritable 0
expect_in trace-env-unwritable err "OBJMEM_TRACE_OUTPUT: cannot write the trace snapshot to .*no-such-dir/snap"
long=$(head -c 5000 /dev/zero | tr '\0' x)
run trace-env-long env OBJMEM_TRACEMALLOC=4 OBJMEM_TRACE_OUTPUT="$work/$long" "$leaky"
expect_rc trace-env-long 0
expect_in trace-env-long err "ignoring OBJMEM_TRACE_OUTPUT \(a path of [0-9]+ bytes; at most 4095\)"
# Without tracing on, OBJMEM_TRACE_OUTPUT writes nothing.
run trace-env-alone env -u OBJMEM_TRACEMALLOC OBJMEM_TRACE_OUTPUT="$work/alone.snap" "$leaky"
expect_rc trace-env-alone 0
if [ -e "$work/alone.snap" ]; then bad "OBJMEM_TRACE_OUTPUT without OBJMEM_TRACEMALLOC wrote a file"; else ok; fi

# ---- report ------------------------------------------------------------------------
expect_help report-help "$tool" report --help
expect_usage_error report-no-html "$tool" report
expect_in report-no-html err "--html FILE is required"
expect_usage_error report-no-file "$tool" report --html
expect_usage_error report-twice "$tool" report --html "$work/a.html" --html "$work/b.html"
expect_usage_error report-flag "$tool" report --pdf "$work/a.html"
run report "$tool" report --html "$work/report.html"
expect_rc report 0
expect_in report out "^wrote .*report.html$"
expect_in report html "<svg"
expect_in report html "Top allocation sites"
# The workload's buffers were traced: their site is on the page.
expect_in report html "workload_buffers"
run report-unwritable "$tool" report --html "$work/no-such-dir/heap.html"
expect_rc report-unwritable 1
expect_in report-unwritable err "om_write_report\(.*no-such-dir/heap.html.*\) failed: error [0-9]+: .*cannot open"
if [ -e "$work/no-such-dir/heap.html" ]; then bad "report-unwritable wrote a file"; else ok; fi
if [ "$build" = plain ]; then
  run report-oom bash -c 'ulimit -v 20000 && exec "$0" report --html "$1"' "$tool" "$work/oom.html"
  expect_rc report-oom 1
  expect_in report-oom err "^objmem report: .* failed: error [0-9]+: "
  if [ -e "$work/oom.html" ]; then bad "report-oom wrote a file"; else ok; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
