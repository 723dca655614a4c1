#!/usr/bin/env bash
# What a user who links Morsel does: install to a prefix, then build examples/minimal.c against
# it four ways (pkg-config shared and --static, CMake morsel::morsel and morsel::morsel_static),
# run each build, and check with nm that only morsel_* symbols are exported.
# usage: test_install.sh BUILD_DIR SOURCE_DIR MODEL IMAGE
set -euo pipefail
build=$1 src=$2 model=$3 image=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -1 | xargs dirname)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
fails=0 passes=0
run() {  # name, binary (+ env)
  local name=$1; shift
  if out=$("$@" "$model" "$image" 2>&1); then
    echo "ok   $name: $out"; passes=$((passes+1))
  else
    echo "FAIL $name: $out"; fails=$((fails+1))
  fi
}
cc -std=c11 -Wall -Werror "$src/examples/minimal.c" $(pkg-config --cflags --libs morsel) -o "$tmp/shared_pc"
run "pkg-config, shared library" env LD_LIBRARY_PATH="$libdir" "$tmp/shared_pc"
# Static: `pkg-config --static` verbatim, in a copy of the prefix without the shared library
# (the .pc file finds its prefix from where it lies), so -lmorsel can only be the archive.
cp -a "$tmp/prefix" "$tmp/static"
rm -f "$tmp"/static/lib*/libmorsel.so*
slibdir=$(ls -d "$tmp"/static/lib*/pkgconfig | head -1 | xargs dirname)
cc -std=c11 -Wall -Werror "$src/examples/minimal.c" \
   $(PKG_CONFIG_PATH="$slibdir/pkgconfig" pkg-config --cflags --static --libs morsel) -o "$tmp/static_pc"
run "pkg-config --static, static library" "$tmp/static_pc"
if ldd "$tmp/static_pc" | grep -q libmorsel; then
  echo "FAIL the static consumer still needs libmorsel.so"; fails=$((fails+1))
fi
# Only morsel_* may be global in what we install: internal names (mf_, mk_, mi_: mimalloc's)
# would clash with a program's.
check_exports() {  # name, nm output of defined globals
  local name=$1 others
  others=$(awk 'NF>=3 {print $NF}' | grep -v '^morsel_' | sort -u | head -20 || true)
  if [ -z "$others" ]; then
    echo "ok   $name exports only morsel_* symbols"; passes=$((passes+1))
  else
    echo "FAIL $name exports non-morsel_ symbols: $others"; fails=$((fails+1))
  fi
}
check_exports libmorsel.a < <(nm -g --defined-only "$libdir/libmorsel.a" 2>/dev/null)
check_exports libmorsel.so < <(nm -D --defined-only "$libdir/libmorsel.so")
mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(morsel REQUIRED)
add_executable(minimal "$src/examples/minimal.c")
target_link_libraries(minimal PRIVATE morsel::morsel)
add_executable(minimal_static "$src/examples/minimal.c")
target_link_libraries(minimal_static PRIVATE morsel::morsel_static)
CM
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
run "CMake find_package(morsel)" env LD_LIBRARY_PATH="$libdir" "$tmp/consumer/build/minimal"
run "CMake morsel::morsel_static" "$tmp/consumer/build/minimal_static"
if grep -rqE '/lib(openblas|blas|png|jpeg)[^";]*\.so' "$tmp"/prefix/lib*/cmake/morsel/; then
  echo "FAIL the CMake package names its dependencies by absolute .so paths"; fails=$((fails+1))
fi
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
