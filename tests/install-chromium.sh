#!/usr/bin/env bash
# tests/install-chromium.sh — install Debian's `chromium`, the browser the
# report test (tests/browser-report.sh) renders om_write_report's HTML with.
# `make test` runs it first. It never fails the build: without root, without
# apt-get or without network it says why and exits 0, and the browser test
# then reports itself SKIPPED (CTest's skip code), never passed.
set -u
. "$(dirname "$0")/../cmake/apt.sh"

if command -v chromium >/dev/null 2>&1; then
  echo "install-chromium: chromium already installed ($(command -v chromium))"
  exit 0
fi
echo "install-chromium: chromium is missing"
if ! apt_install install-chromium chromium; then
  echo "install-chromium: skipping (the browser test will be SKIPPED)"
  exit 0
fi
echo "install-chromium: installed $(command -v chromium)"
