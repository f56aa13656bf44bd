#!/usr/bin/env bash
# check-install.sh BUILD_DIR SOURCE_DIR — the install test (CTest
# install-consumer). Installs the build into a scratch prefix, checks that
# every installed piece is there (static and shared library, headers, CMake
# package, objmem.pc, the tool, the manual page), renders the manual page
# and checks that it documents every subcommand and option the installed
# tool's help lists, then builds examples out of tree against the installed
# copy, through
# pkg-config and through find_package(objmem), and runs them. Prints
# "N passed, N failed" like every test; a check that cannot run here (no
# man or groff) says SKIPPED and does not count.
set -u
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix
passed=0 failed=0
check() {
    local what=$1; shift
    if "$@" >"$scratch/log" 2>&1; then
        passed=$((passed + 1))
        echo "ok: $what"
    else
        failed=$((failed + 1))
        echo "FAILED: $what"; cat "$scratch/log"
    fi
}
examples="$source_dir/examples/first_heap.c;$source_dir/examples/cycles_and_gc.c"

check "cmake --install" cmake --install "$build_dir" --prefix "$prefix"
libdir=$(ls -d "$prefix"/lib*/pkgconfig 2>/dev/null | head -1)
libdir=${libdir%/pkgconfig}
for f in "$libdir/libobjmem.a" "$libdir/libobjmem.so" "$prefix/include/objmem.h" \
         "$prefix/include/objmem/object.h" "$libdir/pkgconfig/objmem.pc" \
         "$libdir/cmake/objmem/objmemConfig.cmake" \
         "$libdir/cmake/objmem/objmemConfigVersion.cmake" \
         "$prefix/bin/objmem" "$prefix/share/man/man1/objmem.1"; do
    check "installed ${f#"$prefix"/}" test -e "$f"
done
# Every header of the source tree is installed, and nothing else.
check "headers match include/" diff <(cd "$source_dir/include" && find . -name '*.h' | sort) \
                                    <(cd "$prefix/include" && find . -name '*.h' | sort)
check "installed tool: objmem --help" "$prefix/bin/objmem" --help
check "installed tool: unknown command exits 2" \
    sh -c "'$prefix/bin/objmem' no-such-command; test \$? -eq 2"

page=$prefix/share/man/man1/objmem.1
rendered=$scratch/objmem.1.txt
if command -v man >/dev/null 2>&1; then
    check "man -l objmem.1 renders" sh -c "MANWIDTH=200 man -l '$page' >'$rendered' 2>&1 && grep -q 'objmem trace' '$rendered'"
    check "man page has no roff warnings" sh -c \
        "command -v groff >/dev/null || exit 0; test -z \"\$(groff -man -Tutf8 -ww -z '$page' 2>&1)\""
elif command -v groff >/dev/null 2>&1; then
    check "groff renders objmem.1" sh -c "groff -man -Tascii -rLL=200n -ww '$page' >'$rendered' 2>&1 && grep -q 'objmem trace' '$rendered'"
else
    rendered=
    echo "SKIPPED: rendering the man page (neither man nor groff is installed)"
fi
# The page is written by hand: each subcommand `objmem help` lists, and each
# option its --help names, must appear in it.
commands=$("$prefix/bin/objmem" help | awk '/^commands:/ {on = 1; next} on && NF == 0 {exit} on {print $1}')
check "objmem help lists commands" test -n "$commands"
for command in $commands; do
    check "installed tool: objmem $command --help" "$prefix/bin/objmem" "$command" --help
    if [ -n "$rendered" ]; then
        check "man page describes $command" grep -qE "^ {7}$command( |\$)" "$rendered"
    fi
    for option in $("$prefix/bin/objmem" "$command" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
        check "man page documents $command $option" grep -qF -- "\\-\\-${option#--}" "$page"
    done
done

export PKG_CONFIG_PATH=$libdir/pkgconfig
IFS=';' read -r -a sources <<<"$examples"
for src in "${sources[@]}"; do
    name=$(basename "$src" .c)
    check "pkg-config build $name" sh -c \
        "cc '$src' \$(pkg-config --cflags --libs objmem) -Wl,-rpath,'$libdir' -o '$scratch/pc-$name'"
    check "pkg-config run $name" "$scratch/pc-$name"
done
check "find_package configure" cmake -S "$source_dir/cmake/consumer" -B "$scratch/consumer" \
    -DCMAKE_PREFIX_PATH="$prefix" "-DEXAMPLE_SOURCES=$examples"
check "find_package build" cmake --build "$scratch/consumer"
for src in "${sources[@]}"; do
    name=$(basename "$src" .c)
    for link in default shared static; do
        check "find_package run $name ($link)" "$scratch/consumer/${name}_$link"
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
