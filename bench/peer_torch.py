#!/usr/bin/python3
"""peer_torch.py — the PyTorch side of bench/run: times one workload in this
process and prints one JSON object on stdout.

bench/run starts a fresh process per repetition with the environment already
set (OMP_WAIT_POLICY, OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS), so this file
only builds the model, warms up, times and reports.  It does not pick thread
counts or core types itself and knows nothing of kiln.

  peer_torch.py mlp_infer  --batch B --iters N --warmup W --threads T [--variant auto|eager|jit] [--cuda]
  peer_torch.py mnv2_infer --batch B --iters N --warmup W --threads T [--variant ...] [--cuda]  (torchvision)
  peer_torch.py mlp_train  --batch B --iters N --warmup W --threads T [--cuda]
  peer_torch.py matmul     --n N --iters N --warmup W --threads T [--cuda]

--cuda runs on the GPU (tests/gpu/check.sh) in strict fp32 (TF32 off for
cuBLAS and cuDNN, as kiln's kernels and cuBLAS calls are fp32), timing each
call to its torch.cuda.synchronize().
  peer_torch.py export_mlp OUT.onnx        # the MLP in eval mode, dynamic batch
  peer_torch.py export_matmul OUT.onnx N   # Y = A @ B, A and B inputs
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

MLP_DIMS = [784, 512, 256, 128, 64, 10]


def fmnist_mlp():
    """The models/fmnist_mlp.kiln architecture: each hidden layer is
    Linear -> BatchNorm1d -> ReLU -> Dropout(0.3)."""
    layers = []
    for i in range(len(MLP_DIMS) - 2):
        layers += [nn.Linear(MLP_DIMS[i], MLP_DIMS[i + 1]), nn.BatchNorm1d(MLP_DIMS[i + 1]),
                   nn.ReLU(), nn.Dropout(0.3)]
    layers.append(nn.Linear(MLP_DIMS[-2], MLP_DIMS[-1]))
    return nn.Sequential(*layers)


def device(a):
    """'cuda' (strict fp32) or 'cpu'; None when --cuda finds no GPU (reported)."""
    if not a.cuda:
        return "cpu"
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device (or torch built without CUDA)"}), flush=True)
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return "cuda"


def sync_of(dev):
    return torch.cuda.synchronize if dev == "cuda" else None


def time_calls(fn, iters, warmup, sync=None):
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(ms, items, **extra):
    med = statistics.median(ms)
    out = {"ms_median": round(med, 4), "ms_min": round(min(ms), 4),
           "items_per_s": round(items * 1e3 / med, 1) if med > 0 else 0,
           "peak_rss_mb": round(peak_rss_mb(), 1), "threads": torch.get_num_threads()}
    out.update(extra)
    print(json.dumps(out), flush=True)


def mlp_infer(a):
    dev = device(a)
    if dev is None:
        return
    torch.manual_seed(0)
    model = fmnist_mlp().eval().to(dev)
    x = torch.randn(a.batch, MLP_DIMS[0]).to(dev)
    variants = {"eager": model}
    if a.variant in ("auto", "jit"):
        with torch.no_grad():
            scripted = torch.jit.script(model)
            variants["jit"] = torch.jit.optimize_for_inference(torch.jit.freeze(scripted))
    if a.variant != "auto":
        variants = {a.variant: variants[a.variant]}
    timings = {}
    with torch.inference_mode():
        for name, m in variants.items():
            timings[name] = time_calls(lambda: m(x), a.iters, a.warmup, sync_of(dev))
    best = min(timings, key=lambda k: statistics.median(timings[k]))
    others = {k: round(statistics.median(v), 4) for k, v in timings.items()}
    report(timings[best], a.batch, variant=best, variant_ms_median=others, device=dev)


def mlp_train(a):
    dev = device(a)
    if dev is None:
        return
    torch.manual_seed(0)
    model = fmnist_mlp().train().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(a.batch, MLP_DIMS[0]).to(dev)
    y = torch.randint(0, MLP_DIMS[-1], (a.batch,)).to(dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    report(time_calls(step, a.iters, a.warmup, sync_of(dev)), a.batch, variant="eager", device=dev)


def head_train(a):
    """clothing_transfer's head on cached features: Linear(1280, 10), Adam 0.01
    (the model file's recipe), cross-entropy, features as the cache holds them."""
    torch.manual_seed(0)
    head = nn.Linear(1280, 10)
    opt = torch.optim.Adam(head.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(a.batch, 1280)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(head(x), y).backward()
        opt.step()

    report(time_calls(step, a.iters, a.warmup), a.batch, variant="eager")


def mnv2_infer(a):
    try:
        import torchvision
    except ImportError:
        print(json.dumps({"skipped": "not installed (torchvision, for MobileNetV2)"}), flush=True)
        return
    dev = device(a)
    if dev is None:
        return
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2().eval().to(dev)
    x = torch.randn(a.batch, 3, 224, 224).to(dev)
    variants = {"eager": model}
    if a.variant in ("auto", "jit"):
        with torch.no_grad():
            variants["jit"] = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))
    if a.variant != "auto":
        variants = {a.variant: variants[a.variant]}
    timings = {}
    with torch.inference_mode():
        for name, m in variants.items():
            timings[name] = time_calls(lambda: m(x), a.iters, a.warmup, sync_of(dev))
    best = min(timings, key=lambda k: statistics.median(timings[k]))
    report(timings[best], a.batch, variant=best, device=dev,
           variant_ms_median={k: round(statistics.median(v), 4) for k, v in timings.items()})


def matmul(a):
    dev = device(a)
    if dev is None:
        return
    g = torch.Generator().manual_seed(0)
    A = torch.randn(a.n, a.n, generator=g).to(dev)
    B = torch.randn(a.n, a.n, generator=g).to(dev)
    C = torch.empty(a.n, a.n, device=dev)
    ms = time_calls(lambda: torch.mm(A, B, out=C), a.iters, a.warmup, sync_of(dev))
    report(ms, a.n, variant="torch.mm " + dev)


def export_mlp(path):
    torch.manual_seed(0)
    model = fmnist_mlp().eval()
    torch.onnx.export(model, torch.randn(1, MLP_DIMS[0]), path, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
                      opset_version=13)


class MatMul(nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)


def export_matmul(path, n):
    torch.onnx.export(MatMul(), (torch.randn(n, n), torch.randn(n, n)), path,
                      input_names=["a", "b"], output_names=["y"], opset_version=13)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["mlp_infer", "mlp_train", "head_train", "mnv2_infer", "matmul", "export_mlp", "export_matmul"])
    p.add_argument("args", nargs="*")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--variant", choices=["auto", "eager", "jit"], default="auto")
    p.add_argument("--cuda", action="store_true")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    if a.what == "export_mlp":
        export_mlp(a.args[0])
    elif a.what == "export_matmul":
        export_matmul(a.args[0], int(a.args[1]))
    else:
        {"mlp_infer": mlp_infer, "mlp_train": mlp_train, "head_train": head_train, "mnv2_infer": mnv2_infer, "matmul": matmul}[a.what](a)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line naming the failure; bench/run reports it as skipped
        print(f"peer_torch: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
