#!/usr/bin/env bash
# Installs the build in $1 into a scratch prefix, then builds and runs
# examples/first_heap.c against it twice: through pkg-config and through
# CMake's find_package. Prints "N passed, N failed" like every test.
set -u
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
passed=0 failed=0
check() {
    local what=$1; shift
    if "$@" >"$scratch/log" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $what"; cat "$scratch/log"
    fi
}
example=$source_dir/examples/first_heap.c
check "cmake --install" cmake --install "$build_dir" --prefix "$scratch/prefix"
libdir=$(ls -d "$scratch"/prefix/lib*/pkgconfig 2>/dev/null | head -1)
libdir=${libdir%/pkgconfig}
export PKG_CONFIG_PATH=$libdir/pkgconfig
check "pkg-config build" sh -c "cc '$example' \$(pkg-config --cflags --libs objmem) -Wl,-rpath,'$libdir' -o '$scratch/pc'"
check "pkg-config run" "$scratch/pc"
check "find_package configure" cmake -S "$source_dir/cmake/consumer" -B "$scratch/consumer" \
    -DCMAKE_PREFIX_PATH="$scratch/prefix" -DEXAMPLE_SOURCE="$example"
check "find_package build" cmake --build "$scratch/consumer"
check "find_package shared run" "$scratch/consumer/consumer_shared"
check "find_package static run" "$scratch/consumer/consumer_static"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
