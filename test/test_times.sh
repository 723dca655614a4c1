#!/usr/bin/env bash
# Per-test times of the last ctest run, slowest first, with each test's labels and result.
#   usage: test_times.sh BUILD_DIR
set -euo pipefail
log=$1/Testing/Temporary/LastTest.log
[ -f "$log" ] || { echo "no $log"; exit 0; }
awk '
  / Test: /          { split($0, a, " Test: "); name = a[2] }
  /^Test time =/     { t[name] = $4 }
  /^Test Passed\./   { r[name] = "passed" }
  /^Test Failed\./   { r[name] = "FAILED" }
  /^Test Failed/ && !/\.$/ { r[name] = "FAILED" }
  END { for (n in t) printf "%9.1f s  %-7s %s\n", t[n], (n in r ? r[n] : "?"), n }
' "$log" | sort -rn
awk '/^Test time =/ { s += $4 } END { printf "%9.1f s  sum of test times\n", s }' "$log"
