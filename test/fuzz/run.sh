#!/usr/bin/env bash
# Runs one fuzz target for a given time and prints its executions.
#   usage: test/fuzz/run.sh TARGET SECONDS
#   TARGET: fuzz_model | fuzz_image | fuzz_http | fuzz_exporter (atheris)
# Environment: MORSEL_FUZZ_BUILD (default build/fuzz: a clang -DMORSEL_FUZZ=ON build, configured
# and built here when missing), MORSEL_FIXTURES (default build/fixtures: tiny.morsel and the image
# fixtures, made by the suite's export_fixtures / image_fixtures tests), MORSEL_PYTHON.
# The working corpus lives in $MORSEL_FUZZ_BUILD/corpus/TARGET and grows across runs; it starts
# from seeds made from real files (make_seeds.py) and the committed regressions
# (test/fuzz/regress/TARGET). A crash leaves its input in $MORSEL_FUZZ_BUILD/artifacts/: add it
# to test/fuzz/regress/TARGET/ with the fix, and the suite's fuzz_regress test replays it.
set -euo pipefail
target=$1 secs=$2
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${MORSEL_FUZZ_BUILD:-$src/build/fuzz}
fixtures=${MORSEL_FIXTURES:-$src/build/fixtures}
py=${MORSEL_PYTHON:-$src/.venv/bin/python}
[ -f "$fixtures/tiny.morsel" ] || { echo "FAIL no $fixtures/tiny.morsel (run ctest -R export_fixtures)"; exit 1; }
mkdir -p "$build/corpus/$target" "$build/artifacts" "$build/seeds"
[ -d "$build/seeds/$target" ] || "$py" "$here/make_seeds.py" "$fixtures" "$build/seeds"
regress=$here/regress/$target
mkdir -p "$build/empty"
[ -d "$regress" ] || regress=$build/empty
export MORSEL_FUZZ_MODEL=$fixtures/tiny.morsel

if [ "$target" = fuzz_exporter ]; then
  # atheris: -atheris_runs is not a time limit, so libFuzzer's flags are passed through.
  run=(env PYTHONPATH="$src/weights" "$py" "$here/fuzz_exporter.py")
  extra=(-max_len=262144)
else
  if [ ! -x "$build/test/fuzz/$target" ]; then
    cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DMORSEL_FUZZ=ON -DMORSEL_BUILD_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j2 --target "$target" >"$build/build-$target.log" 2>&1 ||
      { tail -30 "$build/build-$target.log"; echo "FAIL building $target"; exit 1; }
  fi
  run=("$build/test/fuzz/$target")
  extra=(-max_len=65536 -rss_limit_mb=2048)
fi
log=$build/$target.log
set +e
nice -n 19 "${run[@]}" "${extra[@]}" -max_total_time="$secs" -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$build/artifacts/$target-" "$build/corpus/$target" "$build/seeds/$target" \
  "$regress" >"$log" 2>&1
rc=$?
set -e
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
if [ $rc -ne 0 ]; then
  grep -E 'ERROR|SUMMARY|broken contract|Traceback|Error|#[0-9]+ in ' "$log" | head -30
  ls -t "$build/artifacts/" | head -3
  echo "FAIL $target: crashed after ${execs:-?} executions in ${secs}s (log $log)"
  exit 1
fi
echo "ok   $target: ${execs:-?} executions in ${secs}s, no crash (${cov:-?}, corpus $(ls "$build/corpus/$target" | wc -l) files)"
