#!/bin/bash
# tests/gpu/pack.sh — packs a CUDA build of this machine for tests/gpu/check.sh
# on a GPU machine that cannot build kiln itself (no CUnit, protobuf-c,
# OpenBLAS, oneDNN there, and no network to fetch them).
#
#   tests/gpu/pack.sh [BUILD_DIR] [PACK_DIR]     (defaults: build, gpu-pack)
#
# PACK_DIR/kiln-gpu.tar.xz then holds kiln and test_cuda, the runtime
# libraries (libkiln_rt.a, libkiln_rt_cuda.a, the tests' GPU emulation),
# every shared library they and the generated executables link that is not
# part of glibc, GCC or CUDA, and Debian's Fashion-MNIST.  The source tree
# (runtime headers, models, tests) is the checkout itself.  On the GPU
# machine, in a copy of this checkout with PACK_DIR beside it:
#
#   KILN_GPU_PACK=gpu-pack/kiln-gpu.tar.xz tests/gpu/check.sh
#
# The pack must stay small enough to travel with the working tree (64 MiB
# with the checkout): the MobileNetV2 ONNX file does not fit, so check.sh
# benchmarks models/mobilenetv2.kiln (the same network) there.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
PACK=${2:-gpu-pack}
for f in "$BUILD/kiln" "$BUILD/libkiln_rt.a" "$BUILD/libkiln_rt_cuda.a" "$BUILD/tests/test_cuda" \
         "$BUILD/tests/libkiln_cuda_emu.a"; do
    [ -e "$f" ] || { echo "pack.sh: $f missing: build with the CUDA toolkit first (cmake --build $BUILD)"; exit 1; }
done
FMNIST=${KILN_FMNIST:-/usr/share/datasets/fashion-mnist}
[ -e "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "pack.sh: no Fashion-MNIST in $FMNIST (apt-get install dataset-fashion-mnist)"; exit 1; }

STAGE=$(mktemp -d /tmp/kiln-pack-XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/so" "$STAGE/data/fashion-mnist"
cp "$BUILD/kiln" "$BUILD/tests/test_cuda" "$STAGE/bin/"
cp "$BUILD/libkiln_rt.a" "$BUILD/libkiln_rt_cuda.a" "$BUILD/tests/libkiln_cuda_emu.a" "$STAGE/lib/"
cp "$FMNIST"/*.gz "$STAGE/data/fashion-mnist/"

# Shared libraries: what the two binaries load, and what `kiln build` links
# into every executable (KILN_RT_LINK_FLAGS), each with its unversioned
# name for the linker.  glibc, libgcc, libgomp and CUDA's own are the GPU
# machine's.
skip='^(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|libgomp|ld-linux-x86-64|libcudart|libcublas|libcublasLt|libnvrtc|libnvrtc-builtins|libcuda)\.so'
add_so() { # path
    local real base
    real=$(readlink -f "$1")
    base=$(basename "$1")
    [[ "$base" =~ $skip ]] && return 0
    cp -n "$real" "$STAGE/so/" 2>/dev/null || true
    local soname
    soname=$(objdump -p "$real" 2>/dev/null | awk '/SONAME/ {print $2}')
    [ -n "$soname" ] && [ "$soname" != "$(basename "$real")" ] && ln -sf "$(basename "$real")" "$STAGE/so/$soname"
    local dev=${base%%.so*}.so
    [ "$dev" != "$(basename "$real")" ] && ln -sf "$(basename "$real")" "$STAGE/so/$dev"
    return 0
}
for bin in "$BUILD/kiln" "$BUILD/tests/test_cuda"; do
    ldd "$bin" | awk '$3 ~ /^\// {print $3}' | while read -r so; do add_so "$so"; done
done
flags=$(sed -n 's/^#define KILN_RT_LINK_FLAGS "\(.*\)"$/\1/p' "$BUILD"/generated/*.h)
dirs=$(printf '%s\n' $flags | sed -n 's/^-L//p')
for lib in $(printf '%s\n' $flags | sed -n 's/^-l//p'); do
    for d in $dirs /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
        if [ -e "$d/lib$lib.so" ]; then add_so "$d/lib$lib.so"; break; fi
    done
done
# the dependencies of those (e.g. OpenBLAS's libgfortran)
for so in "$STAGE"/so/*.so.*; do
    ldd "$so" 2>/dev/null | awk '$3 ~ /^\// {print $3}' | while read -r dep; do add_so "$dep"; done
done

mkdir -p "$PACK"
tar -C "$STAGE" -cf - . | xz -T0 -6 > "$PACK/kiln-gpu.tar.xz"
size=$(du -m "$PACK/kiln-gpu.tar.xz" | cut -f1)
echo "pack.sh: $PACK/kiln-gpu.tar.xz, $size MiB ($(ls "$STAGE/so" | wc -l) shared-library names)"
echo "pack.sh: on the GPU machine: KILN_GPU_PACK=$PACK/kiln-gpu.tar.xz tests/gpu/check.sh"
