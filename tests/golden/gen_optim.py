#!/usr/bin/python3
"""Golden values for the optimizer step ops (ir/ops/optim.c): tests/golden/optim/<case>/.

Each case runs torch.optim on a linear layer's two parameters (fc.weight
[3, 4], fc.bias [3]) for STEPS steps with fixed random gradients and writes:
    config.txt            one `key value` per line: op (sgd|adam), lr,
                          grad_scale, steps and the step op's attributes
    w0.npy, b0.npy        initial parameters
    gw.npy, gb.npy        the raw gradient of every step, [STEPS, ...]
    want_w.npy, want_b.npy  parameters after every step, [STEPS, ...]
kiln's update phase sees the raw gradient and ctx->grad_scale, torch sees
grad * grad_scale (what `--accumulate K` feeds it).  Learning rates are
float32 values so kiln's float ctx->lr and torch's double lr agree.
tests/test_optim.c compiles the update phase and compares.
Regenerate (deterministic, removes stale cases):
    /usr/bin/python3 tests/golden/gen_optim.py
"""
import os
import shutil

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "optim")
STEPS = 6

CASES = [
    # name, op, lr, grad_scale, attributes of the step op
    ("sgd_plain", "sgd", 0.1, 1.0, {}),
    ("sgd_weight_decay", "sgd", 0.05, 1.0, {"weight_decay": 0.01}),
    ("sgd_momentum", "sgd", 0.1, 0.5, {"momentum": 0.9}),
    ("sgd_momentum_dampening", "sgd", 0.1, 1.0, {"momentum": 0.9, "dampening": 0.25, "weight_decay": 1e-3}),
    ("sgd_nesterov", "sgd", 0.05, 1.0, {"momentum": 0.8, "nesterov": 1, "weight_decay": 1e-2}),
    ("adam", "adam", 1e-3, 1.0, {}),
    ("adam_weight_decay", "adam", 1e-2, 0.5, {"weight_decay": 0.05}),
    ("adam_betas_eps", "adam", 3e-3, 1.0, {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6}),
    ("adamw", "adam", 1e-2, 1.0, {"weight_decay": 0.1, "decoupled": 1}),
]


def torch_optimizer(op, params, lr, a):
    if op == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=a.get("momentum", 0.0),
                               dampening=a.get("dampening", 0.0), nesterov=bool(a.get("nesterov", 0)),
                               weight_decay=a.get("weight_decay", 0.0))
    kw = dict(lr=lr, betas=(a.get("beta1", 0.9), a.get("beta2", 0.999)), eps=a.get("eps", 1e-8),
              weight_decay=a.get("weight_decay", 0.0))
    return torch.optim.AdamW(params, **kw) if a.get("decoupled") else torch.optim.Adam(params, **kw)


def run_case(rs, name, op, lr, scale, attrs):
    lr = float(np.float32(lr))
    w0 = rs.uniform(-1, 1, size=(3, 4)).astype(np.float32)
    b0 = rs.uniform(-1, 1, size=(3,)).astype(np.float32)
    gw = rs.uniform(-1, 1, size=(STEPS, 3, 4)).astype(np.float32)
    gb = rs.uniform(-1, 1, size=(STEPS, 3)).astype(np.float32)
    w = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    b = torch.nn.Parameter(torch.from_numpy(b0.copy()))
    opt = torch_optimizer(op, [w, b], lr, attrs)
    want_w, want_b = [], []
    for s in range(STEPS):
        w.grad = torch.from_numpy(gw[s]) * np.float32(scale)
        b.grad = torch.from_numpy(gb[s]) * np.float32(scale)
        opt.step()
        want_w.append(w.detach().numpy().copy())
        want_b.append(b.detach().numpy().copy())
    d = os.path.join(OUT, name)
    os.makedirs(d)
    with open(os.path.join(d, "config.txt"), "w") as f:
        f.write(f"op {op}\nlr {lr!r}\ngrad_scale {scale!r}\nsteps {STEPS}\n")
        for k, v in attrs.items():
            f.write(f"{k} {v!r}\n")
    for k, v in [("w0", w0), ("b0", b0), ("gw", gw), ("gb", gb),
                 ("want_w", np.stack(want_w)), ("want_b", np.stack(want_b))]:
        np.save(os.path.join(d, k + ".npy"), v)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for i, c in enumerate(CASES):
        run_case(np.random.RandomState(2000 + i), *c)
    print(f"{len(CASES)} cases in {os.path.relpath(OUT)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
