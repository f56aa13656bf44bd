#!/usr/bin/env bash
# tests/browser-report.sh TEST_REPORT_BINARY — renders om_write_report's page
# in a real browser (headless Debian chromium) and checks that it works:
#
#   1. `TEST_REPORT_BINARY FILE` runs test-report's workload (cycles
#      collected, tracing on) and leaves its report at FILE;
#   2. chromium --dump-dom: the DOM the browser built must show no script
#      error (#script-errors, filled by the page's window.onerror handler,
#      and no "Uncaught" in chromium's console log), the page's script must
#      have run to its end (body data-ready="1") and found exactly the
#      elements the C side drew (#self-check data-result="ok"), and the
#      expected elements must be there: arena rows with pool cells,
#      histogram bars, pause marks, the allocation-site table;
#   3. chromium --screenshot: the PNG, decoded with python3's zlib, must not
#      be blank: enough non-white pixels, enough saturated ones (the SVG's
#      colours, which text alone does not give), many distinct colours,
#      the variance of a drawn page;
#   4. the checks must be able to fail: a copy of the page with a script
#      error must be seen as having one (in the DOM and in chromium's log),
#      and screenshots of an empty page and of the page without its SVG
#      drawings must be judged blank.
#
# Exit 0 = passed, 77 = SKIPPED (no chromium or no python3; CTest's
# SKIP_RETURN_CODE, so it never passes silently), anything else = failed.
# tests/install-chromium.sh (run by `make test`) installs chromium.
set -u

SKIP=77
binary=${1:?usage: browser-report.sh TEST_REPORT_BINARY}

browser=""
for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then
    browser=$(command -v "$candidate")
    break
  fi
done
if [ -z "$browser" ]; then
  echo "SKIPPED: chromium is not installed (as root: bash tests/install-chromium.sh, or apt-get install chromium)"
  exit $SKIP
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIPPED: python3 is not installed (it decodes the screenshot)"
  exit $SKIP
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# chromium FLAGS… URL: one headless run with a fresh profile; its log
# (console messages included) goes to $log.
log="$work/log"
run_chromium() {
  local profile
  profile=$(mktemp -d -p "$work")
  timeout 180 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --user-data-dir="$profile" --enable-logging=stderr --v=0 \
    "$@" 2>>"$log"
}

# check_png FILE: exit 0 when the PNG is a drawn page, 1 when blank.
check_png() {
  python3 - "$1" <<'PY'
import struct, sys, zlib

def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit("not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace != 0:
        raise SystemExit("unsupported PNG: depth %d colour %d interlace %d" % (depth, colour, interlace))
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev, at = [], bytes(stride), 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                if i < channels:
                    line[i] = (line[i] + prev[i]) & 255
                    continue
                left, up, corner = line[i - channels], prev[i], prev[i - channels]
                pa, pb, pc = abs(up - corner), abs(left - corner), abs(left + up - 2 * corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 255
        rows.append(line)
        prev = line
    return width, height, channels, rows

# Every second pixel of every second row is plenty to tell a drawn page.
width, height, channels, rows = read_png(sys.argv[1])
pixels = non_white = coloured = 0
colours = set()
total = total_sq = 0
for line in rows[::2]:
    for x in range(0, width * channels, 2 * channels):
        px = bytes(line[x:x + min(channels, 3)])
        grey = sum(px) / len(px)
        pixels += 1
        total += grey
        total_sq += grey * grey
        if grey < 240:
            non_white += 1
        if max(px) - min(px) >= 60:   # saturated: drawn in colour, not text
            coloured += 1
        colours.add(px)
mean = total / pixels
variance = total_sq / pixels - mean * mean
print("screenshot %dx%d: %.1f %% non-white pixels, %.1f %% coloured, %d distinct colours, "
      "grey variance %.0f" % (width, height, 100.0 * non_white / pixels,
                              100.0 * coloured / pixels, len(colours), variance))
drawn = (non_white / pixels >= 0.02 and coloured / pixels >= 0.01 and len(colours) >= 64
         and variance >= 100)
sys.exit(0 if drawn else 1)
PY
}

# count PATTERN FILE: occurrences of a fixed string.
count() {
  grep -o -F -- "$1" "$2" | wc -l
}

# ---- 1. The report of a real workload ----------------------------------------

page="$work/report.html"
if ! "$binary" "$page" >"$work/test-report.out" 2>&1; then
  cat "$work/test-report.out"
  echo "FAIL: $binary did not pass"
  exit 1
fi
[ -s "$page" ] || { echo "FAIL: no report at $page"; exit 1; }
echo "report: $(wc -c <"$page") bytes"

# ---- 2. The DOM the browser built ----------------------------------------------

: >"$log"
if ! run_chromium --dump-dom "file://$page" >"$work/dom.html"; then
  cat "$work/log"
  fail "chromium --dump-dom failed"
fi
dom="$work/dom.html"
grep -q 'data-ready="1"' "$dom" || fail "the page's script did not run to its end"
grep -q 'id="script-errors" data-count="0"></pre>' "$dom" ||
  fail "script errors: $(grep -o 'id="script-errors"[^<]*' "$dom")"
if grep -q 'Uncaught' "$log"; then
  grep 'Uncaught' "$log"
  fail "chromium logged an uncaught script error"
fi
grep -q 'data-result="ok"' "$dom" ||
  fail "self-check: $(grep -o 'id="self-check"[^<]*' "$dom")"
rows=$(count 'class="arena-row"' "$dom")
pools=$(count '<rect class="pool c' "$dom")
bars=$(count 'class="hist-bar' "$dom")
marks=$(count '<rect class="pause' "$dom")
sites=$(count '<tr class="site"' "$dom")
echo "DOM: $rows arena rows, $pools assigned pool cells, $bars histogram bars, $marks pause marks, $sites sites"
[ "$rows" -ge 1 ] || fail "no arena row"
[ "$pools" -ge 1 ] || fail "no pool cell of a size class"
[ "$bars" -ge 2 ] || fail "no histogram bars"
[ "$marks" -ge 1 ] || fail "no pause mark"
[ "$sites" -ge 1 ] || fail "no allocation-site row"
grep -q 'id="sites"' "$dom" || fail "no site table"

# ---- 3. The screenshot is not blank ----------------------------------------------

if run_chromium --screenshot="$work/shot.png" --window-size=1200,1600 "file://$page" >/dev/null &&
   [ -s "$work/shot.png" ]; then
  check_png "$work/shot.png" || fail "the screenshot is blank"
else
  fail "chromium --screenshot failed"
fi

# ---- 4. The checks can fail --------------------------------------------------------

broken="$work/broken.html"
sed 's|</body>|<script>reportUndefinedFunction();</script></body>|' "$page" >"$broken"
log="$work/broken.log"
run_chromium --dump-dom "file://$broken" >"$work/broken-dom.html"
grep -q 'id="script-errors" data-count="1">' "$work/broken-dom.html" ||
  fail "a script error in the page was not recorded in the DOM"
grep -q 'Uncaught' "$log" || fail "a script error in the page was not in chromium's log"
cat "$log" >>"$work/log"
log="$work/log"

printf '<!DOCTYPE html>\n<html><body></body></html>\n' >"$work/empty.html"
if run_chromium --screenshot="$work/empty.png" --window-size=1200,1600 "file://$work/empty.html" >/dev/null &&
   [ -s "$work/empty.png" ]; then
  if check_png "$work/empty.png"; then
    fail "an empty page was not judged blank"
  fi
else
  fail "chromium --screenshot of the empty page failed"
fi

# The report's text without its drawings (every <svg> removed) is not a
# drawn page either.
python3 -c 'import re, sys; sys.stdout.write(re.sub(r"<svg.*?</svg>", "", open(sys.argv[1]).read(), flags=re.S))' \
  "$page" >"$work/text-only.html"
if run_chromium --screenshot="$work/text-only.png" --window-size=1200,1600 "file://$work/text-only.html" >/dev/null &&
   [ -s "$work/text-only.png" ]; then
  if check_png "$work/text-only.png"; then
    fail "the page without its SVG drawings was judged drawn"
  fi
else
  fail "chromium --screenshot of the text-only page failed"
fi

if [ "$failures" -ne 0 ]; then
  echo "browser-report: $failures check(s) failed; chromium's log:"
  tail -n 40 "$work/log"
  exit 1
fi
echo "browser-report: passed (chromium: $("$browser" --version 2>/dev/null | head -n 1))"
exit 0
