#!/usr/bin/env bash
# Instructions per frame of the camera loop (examples/camera), a figure for README "ARM and
# small devices": guest instructions under qemu-user, counted by a TCG plugin
# (test/cross/qemu_insns.c), for the aarch64 build and the armhf minimal build, NEON and scalar
# kernels; x86-64 natively under valgrind (its CPU model has no AVX-512: the AVX2 kernels).
# Each count is (instructions with 3 frames - with 1 frame) / 2, so loading and the warm-up
# frame cancel out. Frames are MODEL_SIZE x MODEL_SIZE: resizing is a copy, the rest inference.
# usage: insns.sh SOURCE_DIR X86_BUILD_DIR MODEL [SIZE]   (after run_aarch64.sh built the trees)
# A benchmark that prints a table, not a test. Wall time under emulation is not a speed claim.
set -euo pipefail
src=$(cd "$1" && pwd) x86=$(cd "$2" && pwd) model=$3 size=${4:-224}
a64=${MORSEL_AARCH64_BUILD:-$src/build-aarch64} hf=${MORSEL_ARMHF_BUILD:-$src/build-armhf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -shared -fPIC -O2 -Wall -o "$tmp/qemu_insns.so" "$src/test/cross/qemu_insns.c"
cmake --build "$hf" -j2 --target morsel_camera >/dev/null
export OPENBLAS_NUM_THREADS=1
head -c $((size * size * 3 * 3)) /dev/urandom >"$tmp/f3.rgb"
head -c $((size * size * 3)) "$tmp/f3.rgb" >"$tmp/f1.rgb"
cam=(--model "$model" --width "$size" --height "$size")

guest() { # label, qemu, sysroot, binary, isa
  local n1 n3
  n1=$(MORSEL_ISA=$5 "$2" -plugin "$tmp/qemu_insns.so" -L "$3" "$4" "${cam[@]}" <"$tmp/f1.rgb" 2>&1 >/dev/null | sed -n 's/^qemu_insns: //p')
  n3=$(MORSEL_ISA=$5 "$2" -plugin "$tmp/qemu_insns.so" -L "$3" "$4" "${cam[@]}" <"$tmp/f3.rgb" 2>&1 >/dev/null | sed -n 's/^qemu_insns: //p')
  printf '| %-28s | %6s | %14s |\n' "$1" "$5" "$(( (n3 - n1) / 2 ))"
}
native() { # label
  local n1 n3
  for k in 1 3; do
    MORSEL_ISA=avx2 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$k" "$x86/morsel_camera" "${cam[@]}" \
      <"$tmp/f$k.rgb" >/dev/null 2>"$tmp/cg.$k.log"
  done
  n1=$(sed -n 's/^summary: //p' "$tmp/cg.1") n3=$(sed -n 's/^summary: //p' "$tmp/cg.3")
  printf '| %-28s | %6s | %14s |\n' "$1" "avx2" "$(( (n3 - n1) / 2 ))"
}
echo "model $(basename "$model"), ${size}x${size} frames: instructions per frame"
echo "| build                        | kernels | instructions  |"
echo "|------------------------------|--------|----------------|"
for isa in neon scalar; do
  guest "aarch64 (qemu-aarch64)" qemu-aarch64 /usr/aarch64-linux-gnu "$a64/morsel_camera" $isa
done
for isa in neon scalar; do
  guest "armhf minimal (qemu-arm)" qemu-arm /usr/arm-linux-gnueabihf "$hf/morsel_camera" $isa
done
native "x86-64 (valgrind callgrind)"
