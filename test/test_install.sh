#!/usr/bin/env bash
# What a user who links Morsel does: install to a prefix, then build examples/minimal.c against
# it three ways (pkg-config shared, pkg-config static, CMake find_package) and run each build.
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
# Static: the archive itself plus its private dependencies from the .pc file.
cc -std=c11 -Wall -Werror "$src/examples/minimal.c" $(pkg-config --cflags morsel) "$libdir/libmorsel.a" \
   $(pkg-config --libs-only-l --static morsel | sed 's/-lmorsel//') -o "$tmp/static_pc"
run "static library" "$tmp/static_pc"
mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(morsel REQUIRED)
add_executable(minimal "$src/examples/minimal.c")
target_link_libraries(minimal PRIVATE morsel::morsel)
CM
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
run "CMake find_package(morsel)" env LD_LIBRARY_PATH="$libdir" "$tmp/consumer/build/minimal"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
