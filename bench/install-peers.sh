#!/usr/bin/env bash
# bench/install-peers.sh — install the allocators alloc_bench compares objmem
# with: mimalloc, jemalloc and tcmalloc (Debian/Ubuntu packages). `make bench`
# runs it first. It never fails the build: without root, without apt-get or
# without network it says why and exits 0, and alloc_bench then skips every
# peer whose library is missing.
set -u

pkgs=(libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: ${pkgs[*]} already installed"
  exit 0
fi

echo "install-peers: missing ${missing[*]}"
. "$(dirname "$0")/../cmake/apt.sh"
if ! apt_install install-peers "${missing[@]}"; then
  echo "install-peers: skipping (alloc_bench skips missing peers)"
  exit 0
fi
echo "install-peers: installed ${missing[*]}"
exit 0
