#!/bin/bash
# tests/gpu/check.sh — the CUDA backend on a machine with a GPU (issue #6).
#
# Builds kiln from this checkout into its own folder, runs the CUDA suite
# (on a GPU its kernel-vs-CPU tests run instead of skipping), trains
# fmnist_mlp for 10 epochs on the GPU (test accuracy must reach 0.88), runs
# MobileNetV2 inference on the GPU against the CPU and the reference logits
# (inside the suite), and prints a CPU/GPU bench table.  Meant to finish in
# 8 minutes on one H100.  Exit status 0 only when every check passed.
#
#   tests/gpu/check.sh [BUILD_DIR]      (default: build-gpu)
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
BUILD=${1:-build-gpu}
DATA=${KILN_DATA:-$SRC/../shared/data}
[ -d "$DATA" ] || DATA=/work/shared/data
export KILN_DATA=$DATA
start=$(date +%s)
step() { printf '\n== %s (%ds) ==\n' "$1" $(( $(date +%s) - start )); }

step "build"
cmake -S . -B "$BUILD" -DKILN_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
[ -x "$BUILD/tests/test_cuda" ] || { echo "check.sh: no test_cuda: CMake did not find the CUDA toolkit"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

step "CUDA suite (NVRTC, kernels vs CPU, MobileNetV2 logits)"
out=$(ctest --test-dir "$BUILD" -R '^test_cuda$' --output-on-failure -V 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E "Test:|skipped|passed|FAILED|ok \(" | sed 's/^[0-9]*: //'
if echo "$out" | grep -q "skipped: no CUDA device"; then
    echo "check.sh: the suite found no CUDA device"; exit 1
fi

TMP=$(mktemp -d /tmp/kiln-gpu-check-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
KILN="$BUILD/kiln"

step "fmnist_mlp: 10 epochs on the GPU"
"$KILN" build models/fmnist_mlp.kiln --target cuda -o "$TMP/fmnist_mlp"
"$TMP/fmnist_mlp" train --device cuda --epochs 10 --json > "$TMP/train.json"
acc=$(python3 -c 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
t=[e for e in ev if e.get("event")=="eval" and e.get("split")=="test"]
print(t[-1]["accuracy"] if t else 0)' "$TMP/train.json")
echo "fmnist_mlp test accuracy after 10 GPU epochs: $acc (need >= 0.88)"
python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.88 else 1)" || { echo "check.sh: accuracy too low"; exit 1; }

step "bench (median ms per call; same executables, --device cpu vs cuda)"
"$KILN" build "$DATA/mobilenetv2/mobilenetv2.onnx" --target cuda -o "$TMP/mobilenetv2"
printf '| %-26s | %10s | %10s |\n' workload "cpu ms" "cuda ms"
printf '|%s|%s|%s|\n' "----------------------------" "------------" "------------"
bench() { # name exe args...
    local name=$1 exe=$2; shift 2
    local c g
    c=$("$exe" bench --json --device cpu "$@" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["ms_median"])')
    g=$("$exe" bench --json --device cuda "$@" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["ms_median"])')
    printf '| %-26s | %10s | %10s |\n' "$name" "$c" "$g"
}
bench fmnist_mlp_infer_b1 "$TMP/fmnist_mlp" --mode infer --batch 1 --iters 50
bench fmnist_mlp_infer_b256 "$TMP/fmnist_mlp" --mode infer --batch 256 --iters 50
bench fmnist_mlp_train_b64 "$TMP/fmnist_mlp" --mode train --batch 64 --iters 50
bench mobilenetv2_infer_b1 "$TMP/mobilenetv2" --mode infer --batch 1 --iters 10
bench mobilenetv2_infer_b32 "$TMP/mobilenetv2" --mode infer --batch 32 --iters 5

step "all GPU checks passed"
