#!/usr/bin/env bash
# The test command (README): builds if needed and runs the whole suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMORSEL_PYTHON="$PWD/.venv/bin/python" >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --timeout 3000 "$@"
