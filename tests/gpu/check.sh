#!/bin/bash
# tests/gpu/check.sh — the CUDA backend on a machine with a GPU (issue #6).
#
# Runs the CUDA suite (on a GPU its kernel-vs-CPU tests run instead of
# skipping), trains fmnist_mlp for 10 epochs on the GPU (test accuracy must
# reach 0.88), and prints a bench table: kiln on the GPU against PyTorch
# eager on the same GPU (strict fp32: TF32 off) where PyTorch sees a GPU,
# and against kiln on the CPU.  Meant to finish in 8 minutes on one H100.
# Exit status 0 only when every check passed.
#
#   tests/gpu/check.sh [BUILD_DIR]      (default: build-gpu)
#       builds kiln from this checkout first (needs the Debian packages of
#       .ci/deps and the CUDA toolkit);
#   KILN_GPU_PACK=gpu-pack/kiln-gpu.tar.xz tests/gpu/check.sh
#       uses a build packed by tests/gpu/pack.sh on another machine, for GPU
#       machines that cannot build kiln (no CUnit, protobuf-c, OpenBLAS).
#       CUDA's libraries (cudart, cuBLAS, NVRTC 13) come from this machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
BUILD=${1:-build-gpu}
DATA=${KILN_DATA:-$SRC/../shared/data}
[ -d "$DATA" ] || DATA=/work/shared/data
export KILN_DATA=$DATA
start=$(date +%s)
step() { printf '\n== %s (%ds) ==\n' "$1" $(( $(date +%s) - start )); }
die() { echo "check.sh: $*"; exit 1; }
TMP=$(mktemp -d /tmp/kiln-gpu-check-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
PY=python3
command -v "$PY" >/dev/null || PY=/usr/bin/python3

# The first file named $1 in the loader's cache, CUDA's usual folders or
# the nvidia-* Python wheels.
find_lib() {
    local f
    f=$(ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n {print $NF; exit}')
    [ -n "$f" ] && { echo "$f"; return; }
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
             /usr/local/cuda-*/lib64 /usr/local/cuda-*/targets/x86_64-linux/lib; do
        [ -e "$d/$1" ] && { echo "$d/$1"; return; }
    done
    local site
    site=$("$PY" -c 'import os, nvidia; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)
    [ -n "$site" ] && find "$site/nvidia" -name "$1" 2>/dev/null | head -1
}

if [ -n "${KILN_GPU_PACK:-}" ]; then
    step "unpack $KILN_GPU_PACK"
    P=$TMP/pack
    mkdir -p "$P" "$TMP/cuda"
    tar -xJf "$KILN_GPU_PACK" -C "$P"
    # libX.so for the linker and libX.so.13 for the loader, in one folder.
    extra=""
    for l in cudart cublas cublasLt nvrtc; do
        f=$(find_lib "lib$l.so.13")
        [ -n "$f" ] || die "lib$l.so.13 not found (CUDA 13 runtime libraries)"
        ln -sf "$f" "$TMP/cuda/lib$l.so"
        ln -sf "$f" "$TMP/cuda/lib$l.so.13"
        extra="$extra:$(dirname "$f")" # NVRTC loads its builtins from its own folder
    done
    export LD_LIBRARY_PATH="$P/so:$TMP/cuda$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LIBRARY_PATH="$P/so:$TMP/cuda${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export KILN_RT_INCLUDE=$SRC/runtime KILN_RT_LIB=$P/lib/libkiln_rt.a
    export KILN_RT_CUDA_LIBS="$P/lib/libkiln_rt_cuda.a -L$TMP/cuda -Wl,-rpath,$TMP/cuda -lcudart -lcublas -lnvrtc"
    KILN=$P/bin/kiln
    TEST_CUDA=$P/bin/test_cuda
    EMU_LIB=$P/lib/libkiln_cuda_emu.a
    FMNIST=/usr/share/datasets/fashion-mnist # where the runtime looks for it
    if [ ! -e "$FMNIST/train-images-idx3-ubyte.gz" ]; then
        mkdir -p "$FMNIST" && cp "$P"/data/fashion-mnist/*.gz "$FMNIST/" ||
            die "cannot place Fashion-MNIST in $FMNIST"
    fi
    "$KILN" --version >/dev/null || die "the packed kiln does not start here"
else
    step "build"
    cmake -S . -B "$BUILD" -DKILN_WERROR=ON >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" >/dev/null
    [ -x "$BUILD/tests/test_cuda" ] || die "no test_cuda: CMake did not find the CUDA toolkit"
    KILN=$BUILD/kiln
    TEST_CUDA=$BUILD/tests/test_cuda
    EMU_LIB=$BUILD/tests/libkiln_cuda_emu.a
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

step "CUDA suite (NVRTC, kernels vs CPU, MobileNetV2 logits)"
mkdir -p "$TMP/tests"
out=$(cd "$TMP/tests" && KILN_BIN=$KILN KILN_SRC=$SRC KILN_TEST_TMP=$TMP/tests KILN_CUDA_EMU_LIB=$EMU_LIB \
      KILN_CUDA_EMU_SHIM=$SRC/tests/support/cuda_emu_shim.h "$TEST_CUDA" 2>&1) || { echo "$out"; die "CUDA suite failed"; }
echo "$out" | grep -E "Test:|skipped|passed|FAILED|ok \(|Run Summary|asserts" || true
echo "$out" | grep -q "skipped: no CUDA device" && die "the suite found no CUDA device"

step "fmnist_mlp: 10 epochs on the GPU"
"$KILN" build models/fmnist_mlp.kiln --target cuda -o "$TMP/fmnist_mlp"
"$TMP/fmnist_mlp" train --device cuda --epochs 10 --json > "$TMP/train.json"
read -r acc epoch_s steps < <("$PY" -c 'import json, statistics, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ep = [e for e in ev if e.get("event") == "epoch"]
t = [e for e in ev if e.get("event") == "eval" and e.get("split") == "test"]
print(t[-1]["accuracy"] if t else 0, statistics.median(e["seconds"] for e in ep[1:] or ep), ep[0]["step"])' "$TMP/train.json") ||
    die "no epoch or test lines in $TMP/train.json"
echo "fmnist_mlp test accuracy after 10 GPU epochs: $acc (need >= 0.88); median epoch $epoch_s s ($steps steps of 64)"
"$PY" -c "import sys; sys.exit(0 if float('$acc') >= 0.88 else 1)" || die "accuracy too low"

step "bench: kiln cuda vs PyTorch eager cuda (fp32) vs kiln cpu; median ms per call"
"$KILN" build models/mobilenetv2.kiln --target cuda -o "$TMP/mobilenetv2"
kiln_ms() { # exe device args...
    local exe=$1 dev=$2; shift 2
    "$exe" bench --json --device "$dev" "$@" 2>/dev/null | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["ms_median"])'
}
torch_ms() { # peer_torch.py args...
    "$PY" bench/peer_torch.py "$@" --cuda 2>/dev/null |
        "$PY" -c 'import json,sys; j=json.loads(sys.stdin.readline()); print(j.get("ms_median", "-"))' 2>/dev/null || echo "-"
}
ratio() { "$PY" -c "import sys; a, b = sys.argv[1:]; print('-' if b == '-' else '%.2fx' % (float(a) / float(b)))" "$1" "$2"; }
printf '| %-24s | %10s | %12s | %10s | %12s | %14s |\n' workload "kiln cuda" "torch cuda" "kiln cpu" "kiln/torch" "kiln img/s"
printf '|%s|%s|%s|%s|%s|%s|\n' "--------------------------" "------------" "--------------" "------------" "--------------" "----------------"
row() { # name batch exe kiln-args -- torch-args
    local name=$1 batch=$2 exe=$3; shift 3
    local kargs=() targs=()
    while [ "$1" != "--" ]; do kargs+=("$1"); shift; done
    shift
    targs=("$@")
    local g t c
    g=$(kiln_ms "$exe" cuda "${kargs[@]}")
    t=$(torch_ms "${targs[@]}")
    c=$(kiln_ms "$exe" cpu "${kargs[@]}" --iters 3)
    printf '| %-24s | %10s | %12s | %10s | %12s | %14s |\n' "$name" "$g" "$t" "$c" "$(ratio "$g" "$t")" \
        "$("$PY" -c "print(round($batch * 1000 / $g))")"
}
row fmnist_mlp_infer_b1 1 "$TMP/fmnist_mlp" --mode infer --batch 1 --iters 200 -- mlp_infer --batch 1 --iters 200 --variant eager
row fmnist_mlp_infer_b256 256 "$TMP/fmnist_mlp" --mode infer --batch 256 --iters 200 -- mlp_infer --batch 256 --iters 200 --variant eager
row fmnist_mlp_train_step_b64 64 "$TMP/fmnist_mlp" --mode train --batch 64 --iters 200 -- mlp_train --batch 64 --iters 200
row mobilenetv2_infer_b1 1 "$TMP/mobilenetv2" --mode infer --batch 1 --iters 50 -- mnv2_infer --batch 1 --iters 50 --variant eager
row mobilenetv2_infer_b256 256 "$TMP/mobilenetv2" --mode infer --batch 256 --iters 10 -- mnv2_infer --batch 256 --iters 10 --variant eager
t=$(torch_ms mlp_train --batch 64 --iters 200)
if [ "$t" != "-" ]; then
    "$PY" -c "import sys; k, t, s = float('$epoch_s'), float('$t'), int('$steps')
print('fmnist_mlp epoch: kiln cuda %.3f s (train --json, data and validation included) vs PyTorch eager cuda %.3f s '
      '(%d steps x %.4f ms, preloaded data): kiln %.2fx faster' % (k, t * s / 1000, s, t, t * s / 1000 / k))"
fi

step "all GPU checks passed"
