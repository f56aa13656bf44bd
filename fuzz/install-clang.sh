#!/usr/bin/env bash
# fuzz/install-clang.sh — make sure clang with libFuzzer is there for
# `make fuzz` (Debian/Ubuntu: clang and libclang-rt-<version>-dev, the
# version matching clang). Exit 0 when a test program links with
# -fsanitize=fuzzer,address,undefined; otherwise try to install the
# packages (as root, with apt-get and network) and test again; exit 1 with
# the reason when it still cannot, and `make fuzz` says it skipped.
set -u

probe() {
  command -v clang >/dev/null 2>&1 || return 1
  local dir
  dir=$(mktemp -d) || return 1
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$dir/probe.c"
  clang -fsanitize=fuzzer,address,undefined "$dir/probe.c" -o "$dir/probe" >/dev/null 2>&1
  local rc=$?
  rm -rf "$dir"
  return $rc
}

if probe; then
  echo "install-clang: clang with libFuzzer is ready"
  exit 0
fi
. "$(dirname "$0")/../cmake/apt.sh"
apt_install install-clang clang || { echo "install-clang: no clang with libFuzzer"; exit 1; }
major=$(clang -dumpversion | cut -d. -f1)
apt_install install-clang "libclang-rt-$major-dev" || apt_install install-clang libclang-rt-dev ||
  { echo "install-clang: cannot install libclang-rt-$major-dev"; exit 1; }
if probe; then
  echo "install-clang: installed clang $major with libFuzzer"
  exit 0
fi
echo "install-clang: clang installed but a libFuzzer program still does not link"
exit 1
