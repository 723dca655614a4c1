# Cross build for 32-bit ARM (armhf: ARMv7, VFPv3-D16 hard float) with Debian's
# gcc-arm-linux-gnueabihf. Only the minimal build (no OpenBLAS, no libpng/libjpeg): adding the
# armhf dpkg architecture for those libraries breaks apt-get update on our machines.
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake
# NEON is optional on ARMv7: kernels/arm/*_neon.c get -mfpu=neon-vfpv4 and run only when
# getauxval(AT_HWCAP) reports NEON (lib/ops/isa.c).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm;-L;/usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(MORSEL_MINIMAL ON CACHE BOOL "" FORCE)
set(MORSEL_BUILD_SERVER OFF CACHE BOOL "" FORCE)
