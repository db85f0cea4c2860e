#!/usr/bin/python3
"""gen_train_step.py — whole-model training steps of fmnist_mlp in PyTorch.

tests/test_train_step.c trains models/fmnist_mlp.kiln through its compiled
executable (train phase + update phase + runtime loop) and compares with the
files written here, under tests/golden/train_step/:

  grads/<param>.npy      gradient of every parameter for the first batch
                         (what `EXE train --dump-grads DIR --steps 1` writes)
  retain/<value>.npy     intermediates of that step (`--retain fc0,bn3,fc4`)
  <case>/config.txt      `optimizer SETTING` (the model file's), `steps K`
  <case>/abs_tol/<t>.npy Adam cases: per-element absolute tolerance (below)
  <case>/after/<t>.npy   every parameter and batchnorm running statistic after
                         K optimizer steps
  index/<t>.npy          for tensors of more than SAMPLE elements, the sorted
                         flat indexes (int64) that the files above keep: a
                         fixed random sample, so the goldens stay small

The model is fmnist_mlp with dropout disabled (p=0.0: PyTorch cannot draw
kiln's masks) and without `shuffle`, so batch b is train samples
[64b, 64b+64).  Start weights are the PyTorch checkpoint of gen_fmnist.py
(trained one epoch, so batchnorm running statistics are not trivial).
Learning rates and decays are float32 values, so kiln's float and torch's
double agree.

Run with Debian's python (torch + numpy), from any directory:
  /usr/bin/python3 tests/golden/gen_train_step.py [--data DIR]
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_fmnist import FmnistMlp, normalize, read_idx  # noqa: E402

OUT = os.path.join(HERE, "train_step")
START = os.path.join(HERE, "fmnist", "fmnist_mlp.safetensors")
BATCH = 64
RETAIN = ["fc0", "bn3", "fc4"]
SAMPLE = 2048

# case -> (model-file optimizer setting, torch optimizer factory, steps, lr).
#
# Adam cases take one step and get a per-element absolute tolerance.  Adam's
# step is lr * g / (sqrt(g^2) + eps): it does not shrink with g, so where the
# exact gradient is (almost) 0 the float rounding noise of the gradient
# decides the step.  That happens a lot here: the fc biases in front of a
# batchnorm have an exact gradient of 0 (the batchnorm subtracts the batch
# mean), and so do fc0 weights of pixels that are constant over the batch.
# kiln's and PyTorch's gradients agree to GRAD_NOISE (measured: 7.5e-9 at
# worst over every parameter), so an element's step may differ by about
# lr * min(1, GRAD_NOISE / |g|); the tolerance is PARAM_ABS plus that.  After
# more steps the noise reaches the running means and through them every
# layer, so one step is what can be compared exactly.
CASES = {
    "sgd": ("sgd(lr=0.1)", lambda p: torch.optim.SGD(p, lr=0.1), 3, 0.1),
    "momentum": ("sgd(lr=0.05, momentum=0.9, weight_decay=0.001)",
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.001), 3, 0.05),
    "nesterov": ("sgd(lr=0.05, momentum=0.9, nesterov=1)",
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True), 3, 0.05),
    "adam": ("adam(lr=0.001)", lambda p: torch.optim.Adam(p, lr=0.001), 1, 0.001),
    "adamw": ("adamw(lr=0.01, weight_decay=0.1)", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
              1, 0.01),
}
GRAD_NOISE = 2e-8
PARAM_ABS = 1e-6


def f32(x):
    return float(np.float32(x))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + hlen + a:8 + hlen + b], dtype="<f4").reshape(t["shape"])
    return out


def kiln_name(torch_name):
    kind, idx, field = torch_name.split(".")
    return f"{kind}{idx}.{field}"


def fresh_model(start):
    model = FmnistMlp()
    model.drop.p = 0.0
    state = model.state_dict()
    for name in state:
        if not name.endswith("num_batches_tracked"):
            state[name] = torch.from_numpy(start[kiln_name(name)].copy())
    model.load_state_dict(state)
    model.train()
    return model


def sample_index(name, numel):
    """Fixed flat indexes kept for tensor `name`, or None to keep it whole."""
    if numel <= SAMPLE:
        return None
    path = os.path.join(OUT, "index", name + ".npy")
    if not os.path.exists(path):
        rng = np.random.RandomState(numel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, np.sort(rng.choice(numel, SAMPLE, replace=False)).astype(np.int64))
    return np.load(path)


def save_npy(path, t):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    a = t.detach().cpu().numpy().astype(np.float32)
    idx = sample_index(os.path.basename(path)[:-4], a.size)
    np.save(path, np.ascontiguousarray(a if idx is None else a.reshape(-1)[idx]))


def first_step_inspection(start, x, y):
    """Gradients and intermediates of the first batch, as --dump-grads and --retain see them."""
    model = fresh_model(start)
    seen = {}
    h = x
    for i in range(4):
        fc = model.fc[i](h)
        bn = model.bn[i](fc)
        seen[f"fc{i}"], seen[f"bn{i}"] = fc, bn
        h = F.relu(bn)
    seen["fc4"] = model.fc[4](h)
    F.cross_entropy(seen["fc4"], y).backward()
    for name, p in model.named_parameters():
        save_npy(os.path.join(OUT, "grads", kiln_name(name) + ".npy"), p.grad)
    for name in RETAIN:
        save_npy(os.path.join(OUT, "retain", name + ".npy"), seen[name])


def train_case(name, setting, make_opt, steps, lr, start, x, y):
    model = fresh_model(start)
    opt = make_opt(model.parameters())
    for b in range(steps):
        sl = slice(b * BATCH, (b + 1) * BATCH)
        loss = F.cross_entropy(model(x[sl]), y[sl])
        opt.zero_grad()
        loss.backward()
        if name.startswith("adam"):
            assert steps == 1, "the Adam tolerance below holds for one step"
            for pname, p in model.named_parameters():
                tol = PARAM_ABS + lr * torch.clamp(GRAD_NOISE / p.grad.abs(), max=1.0)
                save_npy(os.path.join(OUT, name, "abs_tol", kiln_name(pname) + ".npy"), tol)
        opt.step()
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.txt"), "w") as f:
        f.write(f"optimizer {setting}\nsteps {steps}\n")
    for tname, t in model.state_dict().items():
        if not tname.endswith("num_batches_tracked"):
            save_npy(os.path.join(folder, "after", kiln_name(tname) + ".npy"), t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    n = BATCH * max(c[2] for c in CASES.values())
    x = torch.from_numpy(normalize(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))[:n]))
    y = torch.from_numpy(read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))[:n].astype(np.int64))
    start = read_safetensors(START)

    shutil.rmtree(OUT, ignore_errors=True)
    first_step_inspection(start, x[:BATCH], y[:BATCH])
    for name, (setting, make_opt, steps, lr) in CASES.items():
        train_case(name, setting, make_opt, steps, lr, start, x, y)
    print(f"wrote {OUT}: grads, retain and {len(CASES)} optimizer cases", file=sys.stderr)


if __name__ == "__main__":
    main()
