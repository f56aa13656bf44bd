#!/usr/bin/env bash
# tests/install-chromium.sh — install Debian's `chromium`, the browser the
# report test (tests/browser-report.sh) renders om_write_report's HTML with.
# `make test` runs it first. It never fails the build: without root, without
# apt-get or without network it says why and exits 0, and the browser test
# then reports itself SKIPPED (CTest's skip code), never passed.
set -u

if command -v chromium >/dev/null 2>&1; then
  echo "install-chromium: chromium already installed ($(command -v chromium))"
  exit 0
fi

echo "install-chromium: chromium is missing"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; skipping (the browser test will be SKIPPED)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: not root; skipping (as root: apt-get install chromium; the browser test will be SKIPPED)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
  echo "install-chromium: apt-get update failed; skipping (the browser test will be SKIPPED)"
  exit 0
fi
if ! apt-get install -y -qq --no-install-recommends chromium; then
  echo "install-chromium: apt-get install failed; skipping (the browser test will be SKIPPED)"
  exit 0
fi
echo "install-chromium: installed $(command -v chromium)"
exit 0
