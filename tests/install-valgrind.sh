#!/usr/bin/env bash
# tests/install-valgrind.sh — install valgrind (memcheck and its client
# request header valgrind/memcheck.h) for `make valgrind` (Debian/Ubuntu
# package "valgrind"). Like bench/install-peers.sh it never fails by
# itself: without root, apt-get or network it says why and exits 0, and
# `make valgrind` then stops at its own check that valgrind runs.
set -u
. "$(dirname "$0")/../cmake/apt.sh"

if command -v valgrind >/dev/null 2>&1 && [ -f /usr/include/valgrind/memcheck.h ]; then
  echo "install-valgrind: $(valgrind --version) already installed"
  exit 0
fi
if ! apt_install install-valgrind valgrind; then
  echo "install-valgrind: skipping"
  exit 0
fi
echo "install-valgrind: $(valgrind --version) installed"
