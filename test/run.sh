#!/usr/bin/env bash
# The test command (README): builds if needed and runs the whole suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMORSEL_PYTHON="$PWD/.venv/bin/python" >/dev/null
cmake --build build -j"$(nproc)"
cd build
# Two at a time: the heavy TensorFlow tests share a lock (test/CMakeLists.txt), the rest run
# beside them. Labels select stages: ctest -L quick | parity | sanitizer | fuzz | server.
# The `full` label (parity_apps_full: every keras.applications classifier, hours) runs only
# when a selection asks for it: bash test/run.sh -L full.
sel=(-LE full)
for a in "$@"; do
  case $a in -L | -R | --label-regex | --tests-regex) sel=() ;; esac
done
ctest --output-on-failure --timeout 3000 -j2 "${sel[@]}" "$@"
