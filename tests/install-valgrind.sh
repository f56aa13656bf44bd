#!/usr/bin/env bash
# tests/install-valgrind.sh — install valgrind (memcheck and its client
# request header valgrind/memcheck.h) for `make valgrind` (Debian/Ubuntu
# package "valgrind"). Like bench/install-peers.sh it never fails by
# itself: without root, apt-get or network it says why and exits 0, and
# `make valgrind` then stops at its own check that valgrind runs.
set -u

if command -v valgrind >/dev/null 2>&1 && [ -f /usr/include/valgrind/memcheck.h ]; then
  echo "install-valgrind: $(valgrind --version) already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-valgrind: no apt-get here; install valgrind by hand"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-valgrind: not root; skipping (as root: apt-get install valgrind)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
  echo "install-valgrind: apt-get update failed; skipping"
  exit 0
fi
if ! apt-get install -y -qq --no-install-recommends valgrind; then
  echo "install-valgrind: apt-get install valgrind failed; skipping"
  exit 0
fi
echo "install-valgrind: $(valgrind --version) installed"
