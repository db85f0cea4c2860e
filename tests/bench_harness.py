#!/usr/bin/python3
"""bench_harness.py — ctest check that bench/run works end to end: a quick run
of fmnist_mlp_infer_b1 with --json must print parseable JSON lines in the
contract's shape, with a measured kiln row.  Peers may be skipped (not
installed), but then they must say so instead of crashing."""
import json
import os
import subprocess
import sys

src = os.environ.get("KILN_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = os.path.join(os.environ.get("KILN_TEST_TMP", "/tmp"), "bench_harness")
cmd = [os.path.join(src, "bench", "run"), "--quick", "--json", "--out", out, "fmnist_mlp_infer_b1"]
p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
if p.returncode != 0:
    sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr[-3000:]}")
rows = []
for line in p.stdout.splitlines():
    try:
        rows.append(json.loads(line))
    except ValueError:
        sys.exit(f"FAIL: stdout line is not JSON: {line!r}")
tools = {r.get("tool") for r in rows}
if tools != {"kiln", "pytorch", "onnxruntime"}:
    sys.exit(f"FAIL: expected one row per tool, got {sorted(map(str, tools))}")
for r in rows:
    if r.get("workload") != "fmnist_mlp_infer_b1":
        sys.exit(f"FAIL: unexpected workload in {r}")
    if "skipped" in r:
        if not isinstance(r["skipped"], str) or not r["skipped"]:
            sys.exit(f"FAIL: skipped without a reason: {r}")
        continue
    for k in ("ms_median", "ms_min", "items_per_s", "peak_rss_mb"):
        if not isinstance(r.get(k), (int, float)) or r[k] <= 0:
            sys.exit(f"FAIL: {r['tool']}: '{k}' missing or not positive in {r}")
    if r["ms_min"] > r["ms_median"]:
        sys.exit(f"FAIL: {r['tool']}: ms_min > ms_median in {r}")
kiln = [r for r in rows if r["tool"] == "kiln"]
if "skipped" in kiln[0]:
    sys.exit(f"FAIL: kiln has no result: {kiln[0]}")
for name in ("results.jsonl", "results.csv", "results.md", "chart.svg"):
    if not os.path.getsize(os.path.join(out, name)):
        sys.exit(f"FAIL: {out}/{name} is empty")
for r in rows:
    print(json.dumps(r))
print("bench harness: ok")
