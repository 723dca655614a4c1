#!/usr/bin/env bash
# Fresh-machine setup: system packages, the Python environment for the exporter and the test
# oracles, the build, and the shipped default model. Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if command -v apt-get >/dev/null; then
  # The aarch64 cross build's libraries come from the arm64 architecture (never armhf: adding
  # it breaks apt-get update on these machines; armhf builds only the minimal library).
  [ "$(dpkg --print-architecture)" = arm64 ] || dpkg --print-foreign-architectures | grep -qx arm64 ||
    $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  # Build: compiler, CMake, OpenBLAS, libpng, libjpeg-turbo. Tests: clang (warnings check,
  # sanitizers, libFuzzer: libclang-rt), valgrind (memcheck),
  # python3-venv, chromium + chromium-driver (browser test). Load test: siege, wrk, haproxy.
  # libgfortran-12-dev: `pkg-config --static --libs openblas` names -lgfortran (install test).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config clang libclang-rt-14-dev valgrind libopenblas-dev libgfortran-12-dev libpng-dev libjpeg62-turbo-dev libmicrohttpd-dev libjansson-dev nettle-dev \
    chromium chromium-driver siege wrk haproxy \
    python3 python3-venv ca-certificates >/dev/null
  # Cross builds run under qemu-user (test/cross/): aarch64 in full, armhf minimal.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
    qemu-user libopenblas-dev:arm64 libpng-dev:arm64 libjpeg62-turbo-dev:arm64 >/dev/null
  # npm fetches the default model's package. Debian's nodejs and npm packages conflict with a
  # Node.js that already ships its own npm (NodeSource), so install them only when npm is absent.
  command -v npm >/dev/null ||
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      nodejs npm >/dev/null
fi

# Python: the exporter needs numpy + h5py only; TensorFlow/Keras are the tests' oracle and
# let the exporter embed a self-test vector. Versions pinned so the oracle does not drift.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r weights/requirements-test.txt

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMORSEL_PYTHON="$PWD/.venv/bin/python" >/dev/null
cmake --build build -j"$(nproc)"

MORSEL_PYTHON="$PWD/.venv/bin/python" bash weights/get_default_model.sh
echo "setup done: build/morsel, weights/nsfwjs_mobilenet_v2.morsel"
