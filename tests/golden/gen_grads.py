#!/usr/bin/python3
"""Golden gradients for every differentiable op: tests/golden/grads/<case>/.

Each case folder holds a one-op model file (model.kiln) whose `output` is the
op's result y, its inputs as <name>.npy, parameter values as
weights.safetensors when the op has parameters, the upstream gradient
dy.npy (same shape as y), and what PyTorch computes in train mode (or eval
mode when the file `eval` exists):
    y.npy                      the forward output
    <input>.grad.npy           dL/d<input> for every f32 input
    <param>.grad.npy           dL/d<param> for every parameter ("y.weight")
    <buffer>.npy               buffers after the step ("y.running_mean")
with L = sum(y * dy).  tests/test_grads.c runs kiln's gradient rules on the
same graph and compares (1e-5 abs + 1e-4 rel), then checks a few elements
against central finite differences of kiln's own forward.

Dropout masks come from kiln's Philox stream, not torch's, so dropout cases
carry no expected values (the file `dropout` holds p); the test checks the
mask's properties instead.

Regenerate (deterministic, removes stale cases):
    /usr/bin/python3 tests/golden/gen_grads.py
"""
import os
import shutil
import sys

sys.dont_write_bytecode = True  # importing gen_ops must not leave a __pycache__

import numpy as np
import torch
import torch.nn.functional as F

from gen_ops import write_safetensors, rand, dims

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grads")
N = 4

cases = []


def case(fn):
    cases.append(fn)
    return fn


def away_from_zero(x, margin=0.05):
    """Keeps kinks (relu at 0) out of the finite-difference step."""
    x = x.copy()
    x[np.abs(x) < margin] += 2 * margin
    return x


def save(d, name, v):
    v = v.detach().numpy() if isinstance(v, torch.Tensor) else v
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(v))


def emit(name, src, inputs, fn, weights=None, buffers=None, eval_mode=False, extra=None):
    """fn(tensors by name, incl. weights/buffers) -> y; grads via autograd."""
    d = os.path.join(OUT, name)
    os.makedirs(d)
    with open(os.path.join(d, "model.kiln"), "w") as f:
        f.write(src.strip() + "\n")
    if eval_mode:
        open(os.path.join(d, "eval"), "w").close()
    t = {}
    for k, v in inputs.items():
        save(d, k, v)
        t[k] = torch.from_numpy(v.copy())
        if v.dtype == np.float32:
            t[k].requires_grad_(True)
    for k, v in (weights or {}).items():
        t[k] = torch.from_numpy(v.copy()).requires_grad_(True)
    for k, v in (buffers or {}).items():
        t[k] = torch.from_numpy(v.copy())
    if weights or buffers:
        write_safetensors(os.path.join(d, "weights.safetensors"),
                          {**(weights or {}), **(buffers or {})})
    y = fn(t)
    rs = np.random.RandomState(len(name))
    dy = rs.uniform(-1, 1, size=tuple(y.shape)).astype(np.float32)
    save(d, "dy", dy)
    save(d, "y", y)
    (y * torch.from_numpy(dy)).sum().backward()
    for k, v in t.items():
        if v.requires_grad:
            save(d, k + ".grad", v.grad)
    for k in buffers or {}:
        save(d, k, t[k])  # updated in place by train-mode batchnorm
    for k, v in (extra or {}).items():
        with open(os.path.join(d, k), "w") as f:
            f.write(v)


def unary(name, x, call, fn):
    src = f"model g_{name}\ninput x: f32[{dims(x.shape)}]\ny = {call}\noutput y\n"
    emit(name, src, {"x": x}, lambda t: fn(t["x"]))


def binary(name, op, a, b, fn, b_batched=True):
    bdecl = dims(b.shape) if b_batched else ", ".join(str(s) for s in b.shape)
    src = (f"model g_{name}\ninput a: f32[{dims(a.shape)}]\ninput b: f32[{bdecl}]\n"
           f"y = {op}(a, b)\noutput y\n")
    emit(name, src, {"a": a, "b": b}, lambda t: fn(t["a"], t["b"]))


@case
def linear_cases(rs):
    for name, k, out, bias in [("linear", 8, 5, True), ("linear_nobias", 6, 3, False)]:
        x = rand(rs, N, k)
        w = rand(rs, out, k, lo=-0.5, hi=0.5)
        wts = {"y.weight": w}
        if bias:
            wts["y.bias"] = rand(rs, out, lo=-0.5, hi=0.5)
        call = f"linear(x, {out})" if bias else f"linear(x, {out}, bias=false)"
        src = f"model g_{name}\ninput x: f32[N, {k}]\ny = {call}\noutput y\n"
        emit(name, src, {"x": x},
             lambda t, bias=bias: F.linear(t["x"], t["y.weight"], t["y.bias"] if bias else None),
             wts)


@case
def matmul_cases(rs):
    binary("matmul_batched", "matmul", rand(rs, N, 3, 6), rand(rs, N, 6, 5), torch.matmul)
    binary("matmul_shared_b", "matmul", rand(rs, N, 3, 6), rand(rs, 6, 5), torch.matmul,
           b_batched=False)
    binary("matmul_bcast", "matmul", rand(rs, N, 1, 3, 4), rand(rs, 2, 4, 5), torch.matmul,
           b_batched=False)


@case
def binary_cases(rs):
    binary("add_same", "add", rand(rs, N, 3, 4), rand(rs, N, 3, 4), torch.add)
    binary("add_bias_row", "add", rand(rs, N, 3, 4), rand(rs, 4), torch.add, b_batched=False)
    binary("sub_bcast_1", "sub", rand(rs, N, 5), rand(rs, 1, 5), torch.sub, b_batched=False)
    binary("mul_outer", "mul", rand(rs, N, 3, 1), rand(rs, N, 1, 4), torch.mul)
    binary("mul_batch_bcast", "mul", rand(rs, N, 2, 3), rand(rs, 1, 2, 3), torch.mul,
           b_batched=False)
    binary("div_per_sample", "div", rand(rs, N, 3, 4), rand(rs, N, 1, 1, lo=0.5, hi=2.0),
           torch.div)
    binary("div_mid", "div", rand(rs, N, 3, 4), rand(rs, 3, 1, lo=0.5, hi=2.0), torch.div,
           b_batched=False)


@case
def activation_cases(rs):
    x = away_from_zero(rand(rs, N, 3, 5, lo=-4, hi=4))
    unary("relu", x, "relu(x)", torch.relu)
    unary("leaky_relu_slope", x, "leaky_relu(x, negative_slope=0.2)",
          lambda t: F.leaky_relu(t, 0.2))
    unary("gelu", x, "gelu(x)", F.gelu)
    unary("sigmoid", x, "sigmoid(x)", torch.sigmoid)
    unary("tanh", x, "tanh(x)", torch.tanh)


@case
def softmax_cases(rs):
    x = rand(rs, N, 3, 4, lo=-3, hi=3)
    unary("softmax_dim1", x, "softmax(x, dim=1)", lambda t: torch.softmax(t, 1))
    unary("softmax_last", x, "softmax(x)", lambda t: torch.softmax(t, -1))
    unary("log_softmax_last", x, "log_softmax(x)", lambda t: torch.log_softmax(t, -1))
    unary("log_softmax_dim1", x, "log_softmax(x, dim=1)", lambda t: torch.log_softmax(t, 1))


@case
def batchnorm_cases(rs):
    for name, shape, ev in [("batchnorm_train_2d", (N, 6), False),
                            ("batchnorm_train_4d", (N, 3, 4, 5), False),
                            ("batchnorm_eval_4d", (N, 3, 2, 3), True)]:
        c = shape[1]
        x = rand(rs, *shape)
        wts = {"y.weight": rand(rs, c, lo=0.5, hi=1.5), "y.bias": rand(rs, c, lo=-0.5, hi=0.5)}
        bufs = {"y.running_mean": rand(rs, c, lo=-1, hi=1),
                "y.running_var": rand(rs, c, lo=0.2, hi=3.0)}
        src = f"model g_{name}\ninput x: f32[{dims(shape)}]\ny = batchnorm(x)\noutput y\n"
        emit(name, src, {"x": x},
             lambda t, ev=ev: F.batch_norm(t["x"], t["y.running_mean"], t["y.running_var"],
                                           t["y.weight"], t["y.bias"], training=not ev,
                                           momentum=0.1, eps=1e-5),
             wts, bufs, eval_mode=ev)


@case
def dropout_cases(rs):
    x = away_from_zero(rand(rs, N, 64))
    d = os.path.join(OUT, "dropout_train")
    os.makedirs(d)
    with open(os.path.join(d, "model.kiln"), "w") as f:
        f.write("model g_dropout_train\ninput x: f32[N, 64]\ny = dropout(x, p=0.3)\noutput y\n")
    with open(os.path.join(d, "dropout"), "w") as f:
        f.write("0.3\n")
    save(d, "x", x)
    save(d, "dy", rand(rs, N, 64, lo=-1, hi=1))


@case
def reshape_cases(rs):
    x = rand(rs, N, 2, 3, 4)
    unary("flatten", x, "flatten(x)", lambda t: torch.flatten(t, 1))
    unary("reshape_infer", rand(rs, N, 12), "reshape(x, shape=(3, -1))",
          lambda t: t.reshape(N, 3, -1))


@case
def reduce_cases(rs):
    x = rand(rs, N, 3, 5)
    unary("sum_all", x, "sum(x)", torch.sum)
    unary("sum_dim1", x, "sum(x, dim=1)", lambda t: t.sum(1))
    unary("sum_dims12", x, "sum(x, dim=(1, 2))", lambda t: t.sum((1, 2)))
    unary("mean_all", x, "mean(x)", torch.mean)
    unary("mean_batch", x, "mean(x, dim=0)", lambda t: t.mean(0))
    unary("mean_dim1_keepdim", x, "mean(x, dim=1, keepdim=true)", lambda t: t.mean(1, keepdim=True))


@case
def loss_cases(rs):
    for name, ls in [("cross_entropy", None), ("cross_entropy_smooth", 0.1)]:
        logits = rand(rs, N, 5, lo=-3, hi=3)
        t = rs.randint(0, 5, size=(N,)).astype(np.int64)
        call = "cross_entropy(logits, t)" if ls is None else \
            f"cross_entropy(logits, t, label_smoothing={ls})"
        src = (f"model g_{name}\ninput logits: f32[N, 5]\nlabel t: i64[N]\n"
               f"loss = {call}\noutput loss\n")
        emit(name, src, {"logits": logits, "t": t},
             lambda tt, ls=ls: F.cross_entropy(tt["logits"], tt["t"], label_smoothing=ls or 0.0))
    a, b = rand(rs, N, 3, 2), rand(rs, N, 3, 2)
    src = "model g_mse\ninput a: f32[N, 3, 2]\ninput b: f32[N, 3, 2]\nloss = mse(a, b)\noutput loss\n"
    emit("mse", src, {"a": a, "b": b}, lambda t: F.mse_loss(t["a"], t["b"]))


# ==== conv / pooling (ir/ops/conv.c, ir/ops/pool.c) ====
@case
def conv_pool_cases(rs):
    for name, shape, out, k, kw in [
            ("conv2d", (N, 3, 7, 7), 4, (3, 3), dict(padding=1)),
            ("conv2d_strided_dilated_groups", (N, 4, 9, 8), 6, (3, 2),
             dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)),
            ("conv2d_depthwise", (N, 4, 7, 7), 4, (3, 3), dict(stride=2, padding=1, groups=4)),
            ("conv2d_1x1", (N, 6, 5, 5), 3, (1, 1), {})]:
        x = rand(rs, *shape)
        args = ", ".join([f"kernel={k}"] + [f"{a}={v}" for a, v in kw.items()])
        g = kw.get("groups", 1)
        wts = {"y.weight": rand(rs, out, shape[1] // g, *k, lo=-0.5, hi=0.5),
               "y.bias": rand(rs, out, lo=-0.5, hi=0.5)}
        src = f"model g_{name}\ninput x: f32[{dims(shape)}]\ny = conv2d(x, {out}, {args})\noutput y\n"
        emit(name, src, {"x": x}, lambda t, kw=kw: F.conv2d(t["x"], t["y.weight"], t["y.bias"], **kw),
             weights=wts)
    # Distinct values (a shuffled grid) keep every window's maximum unique,
    # so finite differences do not cross a tie.
    x = (rs.permutation(N * 3 * 8 * 9).reshape(N, 3, 8, 9) * 0.01 - 1.0).astype(np.float32)
    unary("max_pool2d", x, "max_pool2d(x, 2)", lambda t: F.max_pool2d(t, 2))
    unary("max_pool2d_pad_overlap", x, "max_pool2d(x, kernel=3, stride=2, padding=1)",
          lambda t: F.max_pool2d(t, 3, 2, 1))
    x = rand(rs, N, 3, 7, 9)
    unary("avg_pool2d", x, "avg_pool2d(x, 2)", lambda t: F.avg_pool2d(t, 2))
    unary("avg_pool2d_pad_exclude", x, "avg_pool2d(x, kernel=3, stride=2, padding=1, count_include_pad=false)",
          lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False))
    unary("global_avg_pool", x, "global_avg_pool(x)", lambda t: F.adaptive_avg_pool2d(t, 1))


# ==== ONNX-import ops: layout (clip.c, transpose.c, concat.c, pad.c) ====
def model(name, decls, call, inputs, fn):
    """A one-op model with the given input declarations (f32 unless stated)."""
    src = f"model g_{name}\n" + "".join(f"{d}\n" for d in decls) + f"y = {call}\noutput y\n"
    emit(name, src, inputs, fn)


@case
def layout_cases(rs):
    x = rand(rs, N, 3, 5)
    x[np.abs(x + 0.5) < 0.05] += 0.2  # keep finite differences off the bounds
    x[np.abs(x - 0.8) < 0.05] += 0.2
    unary("clip", x, "clip(x, min=-0.5, max=0.8)", lambda t: torch.clamp(t, -0.5, 0.8))
    unary("clip_min_only", x, "clip(x, min=-0.5)", lambda t: torch.clamp(t, min=-0.5))
    unary("transpose_021", rand(rs, N, 3, 4), "transpose(x, perm=(0, 2, 1))", lambda t: t.permute(0, 2, 1))
    unary("transpose_0312", rand(rs, N, 2, 3, 4), "transpose(x, perm=(0, 3, 1, 2))",
          lambda t: t.permute(0, 3, 1, 2))
    a, b = rand(rs, N, 2, 4), rand(rs, N, 3, 4)
    model("concat_dim1", [f"input a: f32[{dims(a.shape)}]", f"input b: f32[{dims(b.shape)}]"],
          "concat(a, b, dim=1)", {"a": a, "b": b}, lambda t: torch.cat([t["a"], t["b"]], 1))
    a, b = rand(rs, N, 3, 2), rand(rs, N, 3, 5)
    model("concat_last", [f"input a: f32[{dims(a.shape)}]", f"input b: f32[{dims(b.shape)}]"],
          "concat(a, b, dim=-1)", {"a": a, "b": b}, lambda t: torch.cat([t["a"], t["b"]], -1))
    unary("slice_mid", rand(rs, N, 3, 6), "slice(x, dim=2, start=1, len=3)", lambda t: t[:, :, 1:4])
    unary("pad_const", rand(rs, N, 3, 4), "pad(x, pads=(0, 1, 2, 0, 0, 1), value=0.5)",
          lambda t: F.pad(t, (2, 1, 1, 0), value=0.5))


# ==== table-driven elementwise math (ir/ops/unary.c) ====
def off_points(x, points, margin=0.05):
    """Moves elements away from kinks and jumps of piecewise functions."""
    x = x.copy()
    for p in points:
        x[np.abs(x - p) < margin] += 2 * margin
    return x


@case
def unary_table_cases(rs):
    def u(name, call, fn, lo=-2.0, hi=2.0, kinks=(0.0,), shape=(N, 3, 4)):
        unary(name, off_points(rand(rs, *shape, lo=lo, hi=hi), kinks), call, fn)

    u("abs", "abs(x)", torch.abs)
    u("neg", "neg(x)", torch.neg)
    u("exp", "exp(x)", torch.exp)
    u("log", "log(x)", torch.log, lo=0.3, hi=3.0)
    u("sqrt", "sqrt(x)", torch.sqrt, lo=0.3, hi=3.0)
    u("reciprocal", "reciprocal(x)", torch.reciprocal, lo=0.5, hi=3.0)
    steps = [k + 0.5 * j for k in range(-3, 4) for j in range(2)]  # integers and halves
    u("floor", "floor(x)", torch.floor, kinks=steps)
    u("ceil", "ceil(x)", torch.ceil, kinks=steps)
    u("round", "round(x)", torch.round, kinks=steps)
    u("sign", "sign(x)", torch.sign)
    u("sin", "sin(x)", torch.sin)
    u("cos", "cos(x)", torch.cos)
    u("tan", "tan(x)", torch.tan, lo=-1.2, hi=1.2)
    u("asin", "asin(x)", torch.asin, lo=-0.9, hi=0.9)
    u("acos", "acos(x)", torch.acos, lo=-0.9, hi=0.9)
    u("atan", "atan(x)", torch.atan)
    u("sinh", "sinh(x)", torch.sinh)
    u("cosh", "cosh(x)", torch.cosh)
    u("asinh", "asinh(x)", torch.asinh)
    u("acosh", "acosh(x)", torch.acosh, lo=1.2, hi=3.0)
    u("atanh", "atanh(x)", torch.atanh, lo=-0.9, hi=0.9)
    u("erf", "erf(x)", torch.erf)
    u("softsign", "softsign(x)", F.softsign)
    u("softplus", "softplus(x)", F.softplus, lo=-4.0, hi=4.0)
    u("elu", "elu(x, alpha=0.7)", lambda t: F.elu(t, 0.7))
    u("selu", "selu(x)", torch.selu)
    u("celu", "celu(x, alpha=1.5)", lambda t: F.celu(t, 1.5))
    u("hard_sigmoid", "hard_sigmoid(x)", lambda t: torch.clamp(0.2 * t + 0.5, 0.0, 1.0),
      lo=-4.0, hi=4.0, kinks=(-2.5, 2.5))
    u("hard_swish", "hard_swish(x)", F.hardswish, lo=-5.0, hi=5.0, kinks=(-3.0, 3.0))
    u("thresholded_relu", "thresholded_relu(x, alpha=0.5)", lambda t: torch.where(t > 0.5, t, 0.0 * t),
      kinks=(0.5,))
    u("shrink", "shrink(x, lambd=0.5, bias=0.2)",
      lambda t: torch.where(t < -0.5, t + 0.2, torch.where(t > 0.5, t - 0.2, 0.0 * t)), kinks=(-0.5, 0.5))


# ==== reductions over any axes (ir/ops/reduce_axes.c), nll_loss (ir/ops/nll.c) ====
@case
def reduce_axes_cases(rs):
    # distinct values: max/min have no ties, so finite differences stay on one branch
    x = (rs.permutation(N * 3 * 4 * 5).reshape(N, 3, 4, 5) * 0.02 - 2.0).astype(np.float32)
    unary("reduce_max_13", x, "reduce_max(x, dim=(1, 3), keepdim=false)", lambda t: t.amax((1, 3)))
    unary("reduce_min_2_keep", x, "reduce_min(x, dim=2)", lambda t: t.amin(2, keepdim=True))
    unary("reduce_sum_batch_and_2", x, "reduce_sum(x, dim=(0, 2), keepdim=false)", lambda t: t.sum((0, 2)))
    unary("reduce_mean_13", x, "reduce_mean(x, dim=(1, 3))", lambda t: t.mean((1, 3), keepdim=True))
    p = rand(rs, N, 3, 4, lo=0.5, hi=1.5)
    p[1, 2, 1] = 0.0  # one zero: the product of the others is its gradient
    unary("reduce_prod_last", p, "reduce_prod(x, dim=2, keepdim=false)", lambda t: t.prod(2))
    y = off_points(rand(rs, N, 3, 4), (0.0,))
    unary("reduce_l1", y, "reduce_l1(x, dim=(1, 2), keepdim=false)", lambda t: t.abs().sum((1, 2)))
    unary("reduce_l2", y, "reduce_l2(x, dim=2)", lambda t: t.pow(2).sum(2, keepdim=True).sqrt())
    unary("reduce_sum_square", y, "reduce_sum_square(x, dim=1, keepdim=false)", lambda t: t.pow(2).sum(1))
    unary("reduce_log_sum", rand(rs, N, 3, 4, lo=0.2, hi=2.0), "reduce_log_sum(x, dim=(1, 2))",
          lambda t: t.sum((1, 2), keepdim=True).log())
    unary("reduce_log_sum_exp", rand(rs, N, 3, 4, lo=-3, hi=3), "reduce_log_sum_exp(x, dim=1, keepdim=false)",
          lambda t: torch.logsumexp(t, 1))


@case
def nll_cases(rs):
    for name, red in [("nll_loss_mean", "mean"), ("nll_loss_sum", "sum"), ("nll_loss_none", "none")]:
        x = rand(rs, N, 5, 3, lo=-3, hi=0)
        t = rs.randint(0, 5, size=(N, 3)).astype(np.int64)
        src = (f"model g_{name}\ninput x: f32[N, 5, 3]\nlabel t: i64[N, 3]\n"
               f"y = nll_loss(x, t, reduction=\"{red}\")\noutput y\n")
        emit(name, src, {"x": x, "t": t}, lambda tt, red=red: F.nll_loss(tt["x"], tt["t"], reduction=red))


# ==== max / min / pow (ir/ops/binary.c) ====
@case
def binary_func_cases(rs):
    a = rand(rs, N, 3, 4)
    b = rand(rs, 4)
    b_near = np.abs(a - b) < 0.05  # keep finite differences off the ties
    a[b_near] += 0.2
    binary("max_bcast", "max", a, b, torch.maximum, b_batched=False)
    binary("min_bcast", "min", a, b, torch.minimum, b_batched=False)
    binary("pow_same", "pow", rand(rs, N, 3, 4, lo=0.5, hi=2.0), rand(rs, N, 3, 4, lo=-2, hi=2), torch.pow)
    binary("pow_scalar_exp", "pow", rand(rs, N, 3, 4, lo=0.5, hi=2.0), rand(rs, 1, lo=1, hi=3), torch.pow,
           b_batched=False)


# ==== trilu (ir/ops/trilu.c) ====
@case
def trilu_cases(rs):
    unary("triu_k1", rand(rs, N, 3, 4), "trilu(x, k=1)", lambda t: torch.triu(t, 1))
    unary("tril_km1", rand(rs, N, 4, 3), "trilu(x, upper=false, k=-1)", lambda t: torch.tril(t, -1))


@case
def hardmax_cases(rs):
    # distinct values keep finite differences from moving the maximum; the gradient is 0
    x = (rs.permutation(N * 3 * 5).reshape(N, 3, 5) * 0.05 - 1.0).astype(np.float32)
    unary("hardmax_dim1", x, "hardmax(x, dim=1)",
          lambda t: F.one_hot(t.argmax(1), 3).permute(0, 2, 1).float() + 0.0 * t)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for i, fn in enumerate(cases):
        fn(np.random.RandomState(2000 + i))
    n = len(os.listdir(OUT))
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"{n} cases, {size} bytes in {os.path.relpath(OUT)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
