#!/usr/bin/python3
"""compare_torch.py — kiln vs PyTorch, same recipe, several seeds.

For each seed, trains the model twice with the recipe of its model file
(Adam 1e-3, batch 64, shuffled, train = first 55,000 images, validation =
last 5,000, test = t10k, best-validation weights evaluated on test):

  * kiln:    `kiln build MODEL`, then `EXE train --seed S --epochs E --json`
  * PyTorch: the same network in torch.nn, the same data split and recipe

and prints one line per (tool, seed), the mean test accuracy of each tool,
the gap in points, and the median seconds per epoch of each tool (measured in
the same run, so the ratio means something on a shared machine even when the
absolute numbers do not).

Run with Debian's python (it has torch and numpy):
  /usr/bin/python3 tests/compare_torch.py [--model fmnist_mlp|mnist_mlp]
      [--seeds 0,1,2] [--epochs 10] [--kiln build/kiln] [--json]
Exit status 1 when the mean accuracies differ by more than --max-gap points.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _best_blas_env():
    """Debian's OpenBLAS 0.3.21 misdetects recent Xeons and falls back to SSE3
    kernels; name the core from the CPU's flags so neither tool runs crippled.
    Must run before torch (and its OpenMP runtime) is loaded."""
    flags = open("/proc/cpuinfo").read()
    if "OPENBLAS_CORETYPE" not in os.environ:
        os.environ["OPENBLAS_CORETYPE"] = ("SKYLAKEX" if " avx512f" in flags else
                                           "HASWELL" if " avx2" in flags else "")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


_best_blas_env()
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
from gen_fmnist import read_idx  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"

# model -> (data folder, mean, std)
DATA = {
    "fmnist_mlp": (FASHION, 0.2860, 0.3530),
    "mnist_mlp": (os.path.join(os.environ.get("KILN_DATA", os.path.join(SRC, "..", "shared", "data")),
                               "mnist"), 0.1307, 0.3081),
}


def load(folder, mean, std):
    def images(name):
        x = read_idx(os.path.join(folder, name)).reshape(-1, 784).astype(np.float32) / np.float32(255)
        return torch.from_numpy(((x - np.float32(mean)) / np.float32(std)).astype(np.float32))

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(folder, name)).astype(np.int64))

    xtr, ytr = images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz")
    xte, yte = images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz")
    return (xtr[:55000], ytr[:55000]), (xtr[55000:], ytr[55000:]), (xte, yte)


class FmnistMlp(nn.Module):
    """models/fmnist_mlp.kiln: 784-512-256-128-64-10, linear-bn-relu-dropout(0.3)."""

    def __init__(self):
        super().__init__()
        w = [784, 512, 256, 128, 64]
        self.fc = nn.ModuleList(nn.Linear(w[i], w[i + 1]) for i in range(4))
        self.bn = nn.ModuleList(nn.BatchNorm1d(w[i + 1]) for i in range(4))
        self.out = nn.Linear(64, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        for fc, bn in zip(self.fc, self.bn):
            x = self.drop(F.relu(bn(fc(x))))
        return self.out(x)


class MnistMlp(nn.Module):
    """models/mnist_mlp.kiln: 784-128-relu-10."""

    def __init__(self):
        super().__init__()
        self.fc0, self.fc1 = nn.Linear(784, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.fc1(F.relu(self.fc0(x)))


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    return correct / len(x)


def train_torch(name, seed, epochs, data):
    torch.manual_seed(seed)
    (xtr, ytr), (xva, yva), (xte, yte) = data
    model = FmnistMlp() if name == "fmnist_mlp" else MnistMlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    best_acc, best_state, secs = -1.0, None, []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for b in range(0, len(xtr), 64):
            idx = perm[b:b + 64]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        secs.append(time.perf_counter() - t0)
        vacc = accuracy(model, xva, yva)
        if vacc > best_acc:
            best_acc = vacc
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return accuracy(model, xte, yte), statistics.median(secs)


def train_kiln(exe, seed, epochs, data_dir):
    cmd = [exe, "train", "--seed", str(seed), "--epochs", str(epochs), "--json", "--data", data_dir]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    secs, acc = [], None
    for line in out.splitlines():
        ev = json.loads(line)
        if ev.get("event") == "epoch":
            secs.append(ev["seconds"])
        elif ev.get("event") == "eval" and ev.get("split") == "test":
            acc = ev["accuracy"]
    if acc is None:
        sys.exit(f"compare_torch: {exe} printed no test accuracy")
    return acc, statistics.median(secs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fmnist_mlp", choices=sorted(DATA))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--kiln", default=os.path.join(SRC, "build", "kiln"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--max-gap", type=float, default=0.5, help="allowed gap of the means, in points")
    ap.add_argument("--json", action="store_true", help="one JSON object per run on stdout")
    args = ap.parse_args()

    folder, mean, std = DATA[args.model]
    if not os.path.exists(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")):
        sys.exit(f"compare_torch: no data in {folder}")
    torch.set_num_threads(args.threads)
    data = load(folder, mean, std)
    seeds = [int(s) for s in args.seeds.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, args.model)
        subprocess.run([args.kiln, "build", os.path.join(SRC, "models", args.model + ".kiln"), "-o", exe],
                       check=True, stdout=subprocess.DEVNULL)
        runs = []
        for seed in seeds:  # interleaved, so both tools see the same machine load
            for tool in ("kiln", "pytorch"):
                if tool == "kiln":
                    acc, sec = train_kiln(exe, seed, args.epochs, folder)
                else:
                    acc, sec = train_torch(args.model, seed, args.epochs, data)
                run = {"model": args.model, "tool": tool, "seed": seed, "epochs": args.epochs,
                       "test_acc": acc, "s_per_epoch": round(sec, 3)}
                runs.append(run)
                print(json.dumps(run) if args.json else
                      f"{tool:8s} seed {seed}: test {acc:.4f}  {sec:.2f} s/epoch", flush=True)

    mean_acc = {t: statistics.mean(r["test_acc"] for r in runs if r["tool"] == t) for t in ("kiln", "pytorch")}
    sec = {t: statistics.median(r["s_per_epoch"] for r in runs if r["tool"] == t) for t in ("kiln", "pytorch")}
    gap = 100 * (mean_acc["kiln"] - mean_acc["pytorch"])
    summary = {"model": args.model, "openblas_coretype": os.environ["OPENBLAS_CORETYPE"], "seeds": seeds, "epochs": args.epochs, "threads": args.threads,
               "kiln_mean_acc": round(mean_acc["kiln"], 5), "pytorch_mean_acc": round(mean_acc["pytorch"], 5),
               "gap_points": round(gap, 3), "kiln_s_per_epoch": sec["kiln"], "pytorch_s_per_epoch": sec["pytorch"],
               "speed_ratio_torch_over_kiln": round(sec["pytorch"] / sec["kiln"], 3)}
    print(json.dumps(summary) if args.json else
          f"mean test accuracy: kiln {mean_acc['kiln']:.4f}, pytorch {mean_acc['pytorch']:.4f} "
          f"(gap {gap:+.2f} points)\nseconds/epoch (median): kiln {sec['kiln']:.2f}, "
          f"pytorch {sec['pytorch']:.2f} (pytorch/kiln {sec['pytorch'] / sec['kiln']:.2f}x)")
    return 0 if abs(gap) <= args.max_gap else 1


if __name__ == "__main__":
    sys.exit(main())
