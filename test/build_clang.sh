#!/usr/bin/env bash
# Warnings are errors under both compilers: the suite's own build is gcc (Debian's cc); this
# builds the library, the CLI and the C tests again with clang and -Werror.
# usage: build_clang.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
command -v clang >/dev/null || { echo "FAIL clang is not installed (setup.sh installs it)"; exit 1; }
cmake -S "$1" -B "$2" -DCMAKE_C_COMPILER=clang -DMORSEL_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
  -DMORSEL_ASAN_TESTS=OFF >/dev/null
if cmake --build "$2" -j"$(nproc)" >"$2.log" 2>&1; then
  echo "ok   clang $(clang -dumpversion) builds every target with -Werror"
  echo "1 passed, 0 failed"
else
  grep -E "error|warning" "$2.log" | head -40
  echo "FAIL clang build"
  echo "0 passed, 1 failed"
  exit 1
fi
