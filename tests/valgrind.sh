#!/usr/bin/env bash
# tests/valgrind.sh — the test programs of a build under valgrind memcheck.
#
#   tests/valgrind.sh BUILD_DIR JOBS "POOLS_EXCLUDED ..." "MALLOC_TESTS ..."
#
# Two passes, JOBS runs at a time:
#   pools   every program BUILD_DIR/tests/test-* but POOLS_EXCLUDED, on
#           objmem's own pools, medium runs and large mappings, which a
#           build with OM_VALGRIND=ON announces to memcheck with its client
#           requests (MALLOCLIKE/FREELIKE blocks, free-list links opened and
#           closed around the allocator's own accesses);
#   malloc  the programs MALLOC_TESTS with OBJMEM_MALLOC=malloc: the domains
#           on the C library's malloc, which memcheck watches itself.
# The Makefile says why a program is left out of a pass.
# Memcheck must report no error (--error-exitcode): invalid reads and writes,
# uses of undefined values, invalid frees. Leaks are not counted here (the
# ASan run of `make test` checks them). Children forked by the death tests
# (check_run_child) misbehave on purpose: --child-silent-after-fork keeps
# their reports out of the output the tests read; the parent's exit status
# judges. tests/valgrind.supp lists the deliberate accesses memcheck may not
# count, with their reasons. Logs: BUILD_DIR/valgrind/<mode>-<test>.log.
# Exit 1 if any run fails (a memcheck error or a failed check).
set -u
build=$1
jobs=$2
excluded=" $3 "
malloc_tests=$4
suppressions="$(cd "$(dirname "$0")" && pwd)/valgrind.supp"

if ! valgrind --version >/dev/null 2>&1; then
  echo "valgrind.sh: valgrind does not run here (tests/install-valgrind.sh)" >&2
  exit 1
fi
logs="$build/valgrind"
mkdir -p "$logs"

run_one() {   # mode program
  local mode=$1 program=$2 name start rc
  name=$(basename "$program")
  start=$(date +%s)
  if [ "$mode" = malloc ]; then
    export OBJMEM_MALLOC=malloc
  else
    unset OBJMEM_MALLOC
  fi
  valgrind --tool=memcheck --error-exitcode=99 --leak-check=no --track-origins=no \
    --child-silent-after-fork=yes --suppressions="$suppressions" \
    "$program" >"$logs/$mode-$name.log" 2>&1
  rc=$?
  printf '%-7s %-22s %s  %4d s\n' "$mode" "$name" \
    "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc, $logs/$mode-$name.log)")" \
    $(( $(date +%s) - start ))
  return $rc
}
export -f run_one
export logs suppressions

list=()
for program in "$build"/tests/test-*; do
  [ -x "$program" ] || continue
  name=$(basename "$program")
  case "$excluded" in *" $name "*) continue ;; esac
  list+=("pools $program")
done
for name in $malloc_tests; do
  list+=("malloc $build/tests/$name")
done

start=$(date +%s)
printf '%s\n' "${list[@]}" | xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1"'
status=$?
echo "valgrind.sh: ${#list[@]} runs in $(( $(date +%s) - start )) s with $jobs jobs$([ $status -eq 0 ] && echo ', all clean' || echo ', SOME FAILED')"
[ $status -eq 0 ]
