#!/usr/bin/env bash
# The C suite under the sanitizers and valgrind (issue 10). One stage per call:
#   sanitize.sh asan-build SRC SAN_BUILD FIXTURES  clang build with ASan + UBSan (MORSEL_FUZZ=ON:
#                                                  also the fuzz targets), fixtures read from
#                                                  the main build
#   sanitize.sh asan       SAN_BUILD FIXTURES      the C tests (label c) of that build
#   sanitize.sh tsan SRC TSAN_BUILD FIXTURES IMAGE the thread test under ThreadSanitizer
#   sanitize.sh valgrind BUILD FIXTURES IMAGE      memcheck on the main build's C tests and CLI
set -euo pipefail
mode=$1
shift
jobs=$(nproc)
[ "$jobs" -gt 2 ] && jobs=2
need_clang() { command -v clang >/dev/null || { echo "FAIL clang is not installed (setup.sh)"; exit 1; }; }
configure() { # SRC BUILD FIXTURES FLAGS...
  local src=$1 b=$2 fx=$3
  shift 3
  cmake -S "$src" -B "$b" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMORSEL_FIXTURES_DIR="$fx" "$@" >/dev/null
}

case $mode in
asan-build)
  need_clang
  configure "$1" "$2" "$3" -DMORSEL_FUZZ=ON
  if cmake --build "$2" -j"$jobs" >"$2.log" 2>&1; then
    echo "ok   clang ASan + UBSan build (library, C tests, fuzz targets) in $2"
  else
    grep -E "error" "$2.log" | head -30
    echo "FAIL ASan build (log $2.log)"
    exit 1
  fi ;;
asan)
  # The fixture setup tests are the main build's: their files are read from there.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
  # The format test's sweep over food11.morsel takes over 25 min in this build: here it runs on
  # tiny.morsel (every op type); the plain build's `format` test sweeps both files.
  ctest --test-dir "$1" -L '^c$' -E '^format$' -FS '.*' --output-on-failure -j"$jobs"
  "$1/test/test_format" "$2/tiny.morsel" | tail -3 ;;
tsan)
  need_clang
  configure "$1" "$2" "$3" -DMORSEL_SANITIZE_THREAD=ON -DMORSEL_BUILD_SERVER=OFF
  cmake --build "$2" -j"$jobs" --target test_threads >"$2.log" 2>&1 ||
    { grep error "$2.log" | head -20; echo "FAIL TSan build"; exit 1; }
  # halt_on_error: a race report fails the test even when the answers happen to agree.
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
  # Sized for CI (TSan is 5-15x slower); 16 x 200 on tiny.morsel passes too (4 min).
  echo "== tiny.morsel: 8 threads x 60 rounds"
  "$2/test/test_threads" "$3/tiny.morsel" "$4" 8 60
  echo "== food11.morsel (MobileNetV2 224): 4 threads x 6 rounds"
  "$2/test/test_threads" "$3/food11.morsel" "$4" 4 6 ;;
valgrind)
  command -v valgrind >/dev/null || { echo "FAIL valgrind is not installed (setup.sh)"; exit 1; }
  b=$1 fx=$2 img=$3 failed=0
  vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)
  run() {
    local t0=$SECONDS
    if "${vg[@]}" "$@" >"$b/valgrind.out" 2>&1; then
      echo "ok   valgrind $(basename "$1") ${*:2} ($((SECONDS - t0)) s)"
    else
      grep -E '^==[0-9]+==' "$b/valgrind.out" | head -60
      echo "FAIL valgrind $*"
      failed=$((failed + 1))
    fi
  }
  # A quick subset (the ASan stage runs every C test): on 2 busy cores valgrind takes 7 min on
  # test_k_gemm, 6 on test_k_resample, 10 on test_format's truncation sweep, over 8 on
  # test_image's 600 fixtures.
  run "$b/test/test_kernels"
  run "$b/test/test_k_eltwise"
  # Image decoding (libjpeg-turbo's SIMD reads row padding: image_jpeg.c zeroes it), 25 s:
  # every DCT-scaled decode (the 1/8-scale cases found it), every JPEG and PNG kind.
  for sel in fast_ jpg png; do
    run "$b/test/test_image" "$fx/images" "$sel"
  done
  # The CLI end to end: a real model on a real photo.
  run "$b/morsel" info "$fx/food11.morsel"
  run "$b/morsel" classify --model "$fx/food11.morsel" "$img"
  run "$b/test/test_threads" "$fx/tiny.morsel" "$img" 4 6
  [ $failed -eq 0 ] || { echo "$failed under valgrind failed"; exit 1; }
  echo "valgrind memcheck: no error in the C tests" ;;
*)
  echo "usage: see the head of $0"; exit 2 ;;
esac
