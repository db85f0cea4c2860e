#!/bin/bash
# Builds the libFuzzer targets (the ONNX importer, the model-file frontend)
# with clang -fsanitize=fuzzer,address,undefined from the same sources as
# kiln, then runs each for a bounded time on a seed corpus of the committed
# models.  Exit 77 (ctest: skipped) when clang or libFuzzer is missing.
#   tests/fuzz/run.sh SRC_DIR BUILD_DIR [MAX_SECONDS] [RUNS]   (per target)
# A fixed seed and run count keep CI reproducible; raise them locally to
# search longer (tests/fuzz/run.sh . build 600 100000000).
set -euo pipefail
src=$1 build=$2 secs=${3:-60} runs=${4:-150000}
clang=$(command -v clang || true)
if [ -z "$clang" ]; then echo "skipped: clang is not installed (Debian package clang)"; exit 77; fi
out=$build/fuzz
mkdir -p "$out"
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
     "$clang" -x c -fsanitize=fuzzer - -o "$out/probe" 2>/dev/null; then
  echo "skipped: clang cannot link libFuzzer here"; exit 77
fi
pb=$build/generated/onnx
common=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -w
        -I"$src" -I"$pb" -I"$build/generated" $(pkg-config --cflags libprotobuf-c))
libs=($(pkg-config --libs libprotobuf-c) -lm)
ir=("$src"/ir/*.c "$src"/ir/ops/*.c)
"$clang" "${common[@]}" "$src/tests/fuzz/fuzz_onnx.c" "$src"/frontend/*.c "${ir[@]}" "$pb/onnx.pb-c.c" \
  "${libs[@]}" -o "$out/fuzz_onnx"
"$clang" "${common[@]}" "$src/tests/fuzz/fuzz_parser.c" "$src"/frontend/*.c "${ir[@]}" "$pb/onnx.pb-c.c" \
  "${libs[@]}" -o "$out/fuzz_parser"

# Seeds: every committed ONNX model and model file.
rm -rf "$out/corpus_onnx" "$out/corpus_parser"
mkdir -p "$out/corpus_onnx" "$out/corpus_parser"
find "$src/tests/golden" -name '*.onnx' -size -2M -exec cp {} "$out/corpus_onnx/" \; 2>/dev/null || true
i=0; for f in "$src"/models/*.kiln $(find "$src/tests/golden" -name model.kiln | head -200); do
  cp "$f" "$out/corpus_parser/$i.kiln"; i=$((i + 1)); done
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export LSAN_OPTIONS=suppressions=$src/tests/lsan.supp
for t in onnx parser; do
  echo "== fuzz_$t: $runs runs, at most $secs s =="
  (cd "$out" && ./fuzz_$t -seed=1 -runs="$runs" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -print_final_stats=1 "corpus_$t" > "fuzz_$t.log" 2>&1) && status=0 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss)|ERROR|SUMMARY|^    #[0-9]" "$out/fuzz_$t.log" | head -20
  if [ "$status" -ne 0 ]; then echo "fuzz_$t found a crash (exit $status); the reproducer is crash-* in $out, the log $out/fuzz_$t.log"; exit 1; fi
done
echo "fuzz: no crash"
