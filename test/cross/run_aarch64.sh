#!/usr/bin/env bash
# The aarch64 build under emulation: cross-builds the tree into build-aarch64/ (Debian's
# gcc-aarch64-linux-gnu and arm64 libraries, installed by setup.sh), then runs under qemu-user
#   - test_kernels, test_k_neon (NEON vs the scalar references), test_k_eltwise, test_k_resample;
#   - test_format (tiny.morsel) and test_image on the fixtures the x86 build made;
#   - end to end: a .morsel exported on x86 classifies every seed photo under qemu, with the
#     NEON kernels and with the scalar ones, each probability within 1e-5 of the x86 build's;
#   - the same with examples/embedded (the model linked into the executable) and, on raw frames,
#     examples/camera;
#   - the armhf minimal build's test_kernels and test_k_neon under qemu-arm (build-armhf/), and
#     `morsel run` (a raw float32 tensor, no image libraries) with the NEON and the scalar
#     kernels, each output within 1e-5 of the x86 build's, and morsel_embedded on a raw frame.
# usage: run_aarch64.sh SOURCE_DIR X86_BUILD_DIR [SHARED_DIR]
# A missing toolchain is a failure, not a skip: setup.sh installs it.
set -uo pipefail
src=$(cd "$1" && pwd)
x86=$(cd "$2" && pwd)
shared=${3:-$src/../shared}
out=${MORSEL_AARCH64_BUILD:-$src/build-aarch64}
fixtures=$x86/fixtures
tol=1e-5

die() { echo "FAIL: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v $tool >/dev/null || die "$tool not found (setup.sh installs gcc-aarch64-linux-gnu and qemu-user)"
done
[ -e /usr/lib/aarch64-linux-gnu/libopenblas.so ] && [ -e /usr/include/aarch64-linux-gnu/cblas.h ] ||
  die "arm64 OpenBLAS missing (setup.sh: dpkg --add-architecture arm64; apt-get install libopenblas-dev:arm64 ...)"
for f in "$fixtures/tiny.morsel" "$fixtures/food11.morsel" "$x86/morsel" "$x86/morsel_camera"; do
  [ -e "$f" ] || die "$f missing: run the x86 build and its export_fixtures test first"
done

mkdir -p "$out" "${MORSEL_ARMHF_BUILD:-$src/build-armhf}"
cmake -S "$src" -B "$out" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/toolchains/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DMORSEL_EMBED_MODEL="$fixtures/food11.morsel" \
  >"$out/cross-configure.log" 2>&1 || { cat "$out/cross-configure.log"; die "configure"; }
cmake --build "$out" -j2 --target morsel_cli morsel_embedded morsel_camera test_kernels \
  test_k_neon test_k_eltwise test_k_resample test_format test_image >"$out/cross-build.log" 2>&1 ||
  { tail -30 "$out/cross-build.log"; die "cross build"; }

# OpenBLAS's thread pool spins for minutes at start-up under qemu-user; one thread starts at once
# (the library calls BLAS from its own threads anyway).
export OPENBLAS_NUM_THREADS=1
run() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$@"; }
passed=0 failed=0
step() { # name, command...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}
quiet() { local log; log=$(mktemp); if "$@" >"$log" 2>&1; then tail -3 "$log"; rm -f "$log"; else cat "$log"; rm -f "$log"; return 1; fi; }

step "aarch64 test_kernels" quiet run "$out/test/test_kernels"
step "aarch64 test_k_neon" quiet run "$out/test/test_k_neon"
step "aarch64 test_k_eltwise (NEON act/softmax/eltwise/pools)" quiet run "$out/test/test_k_eltwise"
step "aarch64 test_k_resample" quiet run "$out/test/test_k_resample"
# tiny.morsel only: on food11 the bit-flip sweep runs ~1300 inferences (~45 min under qemu);
# food11 itself is loaded and run by the end-to-end check below.
step "aarch64 test_format (tiny.morsel)" quiet run "$out/test/test_format" "$fixtures/tiny.morsel"
if [ -d "$fixtures/images" ]; then
  step "aarch64 test_image" quiet run "$out/test/test_image" "$fixtures/images"
else
  echo "FAIL aarch64 test_image: $fixtures/images missing (the image_fixtures test makes it)"
  failed=$((failed + 1))
fi

# End to end: every class's probability, x86 (its default kernels) against aarch64.
photos=("$shared"/images/seed/*.jp*g)
[ -e "${photos[0]}" ] || die "no seed photos in $shared/images/seed"
compare() { # label, x86 json, arm json
  python3 - "$1" "$2" "$3" "$tol" <<'PY'
import json, sys
label, a, b, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ra = [json.loads(l) for l in open(a) if l.strip()]
rb = [json.loads(l) for l in open(b) if l.strip()]
assert len(ra) == len(rb) and ra, f"{label}: {len(ra)} x86 results, {len(rb)} ARM"
worst = 0.0
for x, y in zip(ra, rb):
    px = {t["index"]: t["probability"] for t in x["top"]}
    py = {t["index"]: t["probability"] for t in y["top"]}
    what = x.get("image", x.get("frame"))
    assert px.keys() == py.keys(), f"{label}: classes differ for {what}"
    assert x["top"][0]["index"] == y["top"][0]["index"], f"{label}: top-1 differs for {what}"
    worst = max(worst, max(abs(px[i] - py[i]) for i in px))
print(f"     {label}: {len(ra)} inputs, max |p_x86 - p_arm| = {worst:.3g} (tolerance {tol:g})")
sys.exit(0 if worst <= tol else 1)
PY
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=$fixtures/food11.morsel
"$x86/morsel" classify --model "$model" --json --top 11 "${photos[@]}" >"$tmp/x86.json" || die "x86 classify"
for isa in neon scalar; do
  if MORSEL_ISA=$isa run "$out/morsel" classify --model "$model" --json --top 11 "${photos[@]}" >"$tmp/$isa.json"; then
    step "aarch64 ($isa kernels) classifies like x86" compare "food11 $isa" "$tmp/x86.json" "$tmp/$isa.json"
  else
    echo "FAIL aarch64 ($isa kernels) classify"; failed=$((failed + 1))
  fi
done
# The model inside the executable (.incbin, cross-assembled), run from a directory without it.
if (cd "$tmp" && run "$out/examples/embedded/morsel_embedded" --top 11 "${photos[@]}" >"$tmp/embedded.json"); then
  step "aarch64 morsel_embedded classifies like x86" compare "food11 embedded" "$tmp/x86.json" "$tmp/embedded.json"
else
  echo "FAIL aarch64 morsel_embedded"; failed=$((failed + 1))
fi
# The camera loop on three raw 96x72 frames (the photos' bytes read as pixels: any bytes are RGB).
cat "${photos[@]}" | head -c $((96 * 72 * 3 * 3)) >"$tmp/frames.rgb"
cam=(--model "$model" --width 96 --height 72 --top 11)
if "$x86/morsel_camera" "${cam[@]}" <"$tmp/frames.rgb" >"$tmp/cam_x86.json" &&
   run "$out/morsel_camera" "${cam[@]}" <"$tmp/frames.rgb" >"$tmp/cam_arm.json"; then
  step "aarch64 morsel_camera answers like x86" compare "food11 camera" "$tmp/cam_x86.json" "$tmp/cam_arm.json"
else
  echo "FAIL aarch64 morsel_camera"; failed=$((failed + 1))
fi

# armhf (32-bit ARMv7): the minimal build only (no arm32 OpenBLAS/libpng/libjpeg here), NEON
# chosen at run time; qemu-arm's default CPU reports NEON.
command -v arm-linux-gnueabihf-gcc >/dev/null && command -v qemu-arm >/dev/null ||
  die "arm-linux-gnueabihf-gcc or qemu-arm not found (setup.sh installs gcc-arm-linux-gnueabihf, qemu-user)"
hf=${MORSEL_ARMHF_BUILD:-$src/build-armhf}
if cmake -S "$src" -B "$hf" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/toolchains/arm-linux-gnueabihf.cmake" \
     -DCMAKE_BUILD_TYPE=Release -DMORSEL_EMBED_MODEL="$model" >"$hf/cross-configure.log" 2>&1 &&
   cmake --build "$hf" -j2 --target test_kernels test_k_neon morsel_cli morsel_embedded \
     >"$hf/cross-build.log" 2>&1; then
  runhf() { qemu-arm -L /usr/arm-linux-gnueabihf "$@"; }
  step "armhf test_kernels" quiet runhf "$hf/test/test_kernels"
  step "armhf test_k_neon" quiet runhf "$hf/test/test_k_neon"
  # End to end without image libraries: one raw tensor (food11's 224x224x3 input, uniform in
  # [-1, 1], the model's input range) through `morsel run`, against the x86 build's output.
  python3 -c 'import array, random, sys; r = random.Random(9)
array.array("f", [r.uniform(-1, 1) for _ in range(224 * 224 * 3)]).tofile(open(sys.argv[1], "wb"))' "$tmp/in.f32"
  "$x86/morsel" run "$model" "$tmp/in.f32" "$tmp/run_x86.f32" || die "x86 morsel run"
  close() { # label, a.f32, b.f32
    python3 - "$@" "$tol" <<'PY'
import array, sys
label, fa, fb, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
a, b = array.array("f"), array.array("f")
a.frombytes(open(fa, "rb").read()); b.frombytes(open(fb, "rb").read())
assert len(a) == len(b) and a, f"{label}: {len(a)} x86 outputs, {len(b)} armhf"
worst = max(abs(x - y) for x, y in zip(a, b))
print(f"     {label}: {len(a)} outputs, max |x86 - armhf| = {worst:.3g} (tolerance {tol:g})")
sys.exit(0 if worst <= tol else 1)
PY
  }
  # (Not `| grep -q`: under pipefail its early exit would fail the pipeline with SIGPIPE.)
  neon_chosen() { [[ $(runhf "$hf/morsel" info "$model") =~ $'\n'kernels\ +neon ]]; }
  step "armhf chooses the NEON kernels (qemu-arm's CPU reports NEON)" neon_chosen
  for isa in neon scalar; do
    if MORSEL_ISA=$isa runhf "$hf/morsel" run "$model" "$tmp/in.f32" "$tmp/run_$isa.f32"; then
      step "armhf morsel run ($isa kernels) like x86" close "food11 armhf $isa" "$tmp/run_x86.f32" "$tmp/run_$isa.f32"
    else
      echo "FAIL armhf morsel run ($isa)"; failed=$((failed + 1))
    fi
  done
  # The model linked into an ARMv7 executable, on the camera check's first raw frame (no image
  # libraries here: --rgb), against x86's answer for that frame.
  head -c $((96 * 72 * 3)) "$tmp/frames.rgb" >"$tmp/frame1.rgb"
  head -n 1 "$tmp/cam_x86.json" >"$tmp/cam1_x86.json"
  if (cd "$tmp" && runhf "$hf/examples/embedded/morsel_embedded" --top 11 --rgb 96x72 frame1.rgb >"$tmp/embedded_hf.json"); then
    step "armhf morsel_embedded (--rgb) answers like x86" compare "food11 armhf embedded" "$tmp/cam1_x86.json" "$tmp/embedded_hf.json"
  else
    echo "FAIL armhf morsel_embedded"; failed=$((failed + 1))
  fi
else
  tail -30 "$hf/cross-build.log" 2>/dev/null; echo "FAIL armhf minimal cross build"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
