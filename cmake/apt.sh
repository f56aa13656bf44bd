# cmake/apt.sh — sourced by the project's install scripts (bench/install-peers.sh,
# tests/install-chromium.sh, tests/install-valgrind.sh, fuzz/install-clang.sh).
#
# apt_install WHO PACKAGE...: installs the Debian packages with apt-get.
# Returns 0 when they are installed; otherwise prints "WHO: <reason>" (no
# apt-get here, not root, apt-get update or install failed) and returns 1,
# leaving the decision (skip, or fail) to the caller.
apt_install() {
  local who=$1
  shift
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$who: no apt-get here (needed: $*)"
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "$who: not root (as root: apt-get install $*)"
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get update -qq; then
    echo "$who: apt-get update failed"
    return 1
  fi
  if ! apt-get install -y -qq --no-install-recommends "$@"; then
    echo "$who: apt-get install $* failed"
    return 1
  fi
}
