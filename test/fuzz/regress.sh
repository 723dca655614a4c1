#!/usr/bin/env bash
# Replays every committed fuzz input (test/fuzz/regress/TARGET/*: crashes found and fixed) once
# through its target in the ASan + UBSan build, so a fixed bug stays fixed.
#   usage: regress.sh FUZZ_BUILD FIXTURES PYTHON
set -euo pipefail
build=$1 fixtures=$2 py=$3
here=$(cd "$(dirname "$0")" && pwd)
export MORSEL_FUZZ_MODEL=$fixtures/tiny.morsel
failed=0 total=0
for dir in "$here"/regress/*/; do
  target=$(basename "$dir")
  files=("$dir"*)
  [ -e "${files[0]}" ] || continue
  if [ "$target" = fuzz_exporter ]; then
    run=(env PYTHONPATH="$here/../../weights" "$py" "$here/fuzz_exporter.py")
  else
    run=("$build/test/fuzz/$target")
  fi
  for f in "${files[@]}"; do
    total=$((total + 1))
    if "${run[@]}" "$f" >"$build/regress.out" 2>&1; then
      echo "ok   $target $(basename "$f")"
    else
      grep -E 'ERROR|SUMMARY|broken contract|Error' "$build/regress.out" | head -5
      echo "FAIL $target $(basename "$f")"
      failed=$((failed + 1))
    fi
  done
done
[ $total -gt 0 ] || { echo "FAIL no regression inputs under $here/regress"; exit 1; }
echo "$((total - failed)) passed, $failed failed"
[ $failed -eq 0 ]
