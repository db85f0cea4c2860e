#!/usr/bin/python3
"""Golden values for every operator: tests/golden/ops/<case>/.

Each case folder holds a one-op model file (model.kiln), its inputs as
<input name>.npy, parameter values as weights.safetensors when the op has
parameters, and the outputs PyTorch computes as <output name>.npy.
tests/test_ops_golden.c builds every case with `kiln build` and compares.

Inputs come from numpy's seeded RandomState (stable across torch versions);
torch only computes the expected outputs, on the CPU in float32.
Regenerate (deterministic, removes stale cases):
    /usr/bin/python3 tests/golden/gen_ops.py
"""
import json
import os
import shutil
import struct

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "ops")
N = 4  # batch size of every case

cases = []


def case(fn):
    cases.append(fn)
    return fn


def rand(rs, *shape, lo=-2.0, hi=2.0):
    return rs.uniform(lo, hi, size=shape).astype(np.float32)


def write_safetensors(path, tensors):
    """safetensors by hand: u64 LE header length, JSON header, raw data."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def emit(name, src, inputs, outputs, weights=None):
    d = os.path.join(OUT, name)
    os.makedirs(d)
    with open(os.path.join(d, "model.kiln"), "w") as f:
        f.write(src.strip() + "\n")
    for k, v in inputs.items():
        np.save(os.path.join(d, k + ".npy"), v)
    for k, v in outputs.items():
        v = v.detach().numpy() if isinstance(v, torch.Tensor) else v
        np.save(os.path.join(d, k + ".npy"), np.ascontiguousarray(v))
    if weights:
        write_safetensors(os.path.join(d, "weights.safetensors"),
                          {k: v.detach().numpy() if isinstance(v, torch.Tensor) else v
                           for k, v in weights.items()})


def dims(shape):
    return ", ".join(["N"] + [str(s) for s in shape[1:]])


def unary(name, x, call, fn):
    src = f"model case_{name}\ninput x: f32[{dims(x.shape)}]\ny = {call}\noutput y\n"
    emit(name, src, {"x": x}, {"y": fn(torch.from_numpy(x))})


def binary(name, op, a, b, fn, b_batched=True):
    bdecl = dims(b.shape) if b_batched else ", ".join(str(s) for s in b.shape)
    src = (f"model case_{name}\ninput a: f32[{dims(a.shape)}]\ninput b: f32[{bdecl}]\n"
           f"y = {op}(a, b)\noutput y\n")
    emit(name, src, {"a": a, "b": b}, {"y": fn(torch.from_numpy(a), torch.from_numpy(b))})


# ---- linear / matmul ----
@case
def linear_cases(rs):
    for name, shape, out, bias in [("linear_2d", (N, 8), 5, True),
                                   ("linear_nobias", (N, 8), 3, False)]:
        # linear takes f32[N, K] only (rank 3 is an error, see test_shapes.c)
        x = rand(rs, *shape)
        k = shape[-1]
        w = rand(rs, out, k, lo=-0.5, hi=0.5)
        b = rand(rs, out, lo=-0.5, hi=0.5) if bias else None
        call = f"linear(x, {out})" if bias else f"linear(x, {out}, bias=false)"
        src = f"model case_{name}\ninput x: f32[{dims(shape)}]\ny = {call}\noutput y\n"
        y = F.linear(torch.from_numpy(x), torch.from_numpy(w),
                     torch.from_numpy(b) if bias else None)
        weights = {"y.weight": w}
        if bias:
            weights["y.bias"] = b
        emit(name, src, {"x": x}, {"y": y}, weights)


@case
def matmul_cases(rs):
    binary("matmul_batched", "matmul", rand(rs, N, 3, 6), rand(rs, N, 6, 5), torch.matmul)
    binary("matmul_shared_b", "matmul", rand(rs, N, 3, 6), rand(rs, 6, 5), torch.matmul,
           b_batched=False)
    binary("matmul_2d", "matmul", rand(rs, N, 6), rand(rs, 6, 2), torch.matmul,
           b_batched=False)
    binary("matmul_bcast", "matmul", rand(rs, N, 1, 3, 4), rand(rs, 2, 4, 5), torch.matmul,
           b_batched=False)


# ---- elementwise binary with broadcasting ----
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


# ---- activations ----
@case
def activation_cases(rs):
    x = rand(rs, N, 3, 5, lo=-4, hi=4)
    x[0, 0, 0] = 0.0
    unary("relu", x, "relu(x)", torch.relu)
    unary("leaky_relu", x, "leaky_relu(x)", F.leaky_relu)
    unary("leaky_relu_slope", x, "leaky_relu(x, negative_slope=0.2)",
          lambda t: F.leaky_relu(t, 0.2))
    unary("gelu", x, "gelu(x)", F.gelu)
    unary("sigmoid", x, "sigmoid(x)", torch.sigmoid)
    unary("tanh", x, "tanh(x)", torch.tanh)
    unary("dropout_eval", x, "dropout(x, p=0.3)", lambda t: t.clone())


# ---- softmax family ----
@case
def softmax_cases(rs):
    x = rand(rs, N, 3, 4, lo=-3, hi=3)
    unary("softmax_last", x, "softmax(x)", lambda t: torch.softmax(t, -1))
    unary("softmax_dim1", x, "softmax(x, dim=1)", lambda t: torch.softmax(t, 1))
    unary("log_softmax_last", x, "log_softmax(x)", lambda t: torch.log_softmax(t, -1))
    unary("log_softmax_dim1", x, "log_softmax(x, dim=1)", lambda t: torch.log_softmax(t, 1))
    big = rand(rs, N, 7, lo=-1, hi=1) * 100.0 + 500.0  # would overflow expf without max
    unary("softmax_large", big, "softmax(x, dim=-1)", lambda t: torch.softmax(t, -1))
    unary("log_softmax_large", big, "log_softmax(x)", lambda t: torch.log_softmax(t, -1))


# ---- batchnorm (eval mode) ----
@case
def batchnorm_cases(rs):
    for name, shape, eps in [("batchnorm_2d", (N, 6), None), ("batchnorm_4d", (N, 3, 4, 5), 1e-3)]:
        c = shape[1]
        x = rand(rs, *shape)
        w = rand(rs, c, lo=0.5, hi=1.5)
        b = rand(rs, c, lo=-0.5, hi=0.5)
        rm = rand(rs, c, lo=-1, hi=1)
        rv = rand(rs, c, lo=0.2, hi=3.0)
        call = "batchnorm(x)" if eps is None else f"batchnorm(x, eps={eps})"
        src = f"model case_{name}\ninput x: f32[{dims(shape)}]\ny = {call}\noutput y\n"
        y = F.batch_norm(torch.from_numpy(x), torch.from_numpy(rm), torch.from_numpy(rv),
                         torch.from_numpy(w), torch.from_numpy(b), training=False,
                         eps=1e-5 if eps is None else eps)
        emit(name, src, {"x": x}, {"y": y},
             {"y.weight": w, "y.bias": b, "y.running_mean": rm, "y.running_var": rv})


# ---- flatten / reshape ----
@case
def reshape_cases(rs):
    x = rand(rs, N, 2, 3, 4)
    unary("flatten", x, "flatten(x)", lambda t: torch.flatten(t, 1))
    unary("flatten_start2", x, "flatten(x, start_dim=2)", lambda t: torch.flatten(t, 2))
    y = rand(rs, N, 12)
    unary("reshape_infer", y, "reshape(x, shape=(3, -1))", lambda t: t.reshape(N, 3, -1))
    unary("reshape_flat", x, "reshape(x, shape=(-1))", lambda t: t.reshape(N, -1))


# ---- reductions ----
@case
def reduce_cases(rs):
    x = rand(rs, N, 3, 5)
    unary("sum_all", x, "sum(x)", torch.sum)
    unary("sum_dim1", x, "sum(x, dim=1)", lambda t: t.sum(1))
    unary("sum_last_keepdim", x, "sum(x, dim=-1, keepdim=true)", lambda t: t.sum(-1, keepdim=True))
    unary("sum_dims12", x, "sum(x, dim=(1, 2))", lambda t: t.sum((1, 2)))
    unary("mean_all", x, "mean(x)", torch.mean)
    unary("mean_batch", x, "mean(x, dim=0)", lambda t: t.mean(0))
    unary("mean_dim1_keepdim", x, "mean(x, dim=1, keepdim=true)", lambda t: t.mean(1, keepdim=True))
    unary("argmax_last", x, "argmax(x, dim=-1)", lambda t: t.argmax(-1))
    unary("argmax_dim1_keepdim", x, "argmax(x, dim=1, keepdim=true)",
          lambda t: t.argmax(1, keepdim=True))
    ties = np.zeros((N, 6), np.float32)
    ties[:, 2] = ties[:, 4] = 1.0  # first maximum wins, as in torch
    unary("argmax_ties", ties, "argmax(x, dim=1)", lambda t: t.argmax(1))


# ---- losses ----
@case
def loss_cases(rs):
    for name, ls in [("cross_entropy", None), ("cross_entropy_smooth", 0.1)]:
        logits = rand(rs, N, 5, lo=-3, hi=3)
        logits[1] += 40.0  # log-sum-exp must stay finite
        t = rs.randint(0, 5, size=(N,)).astype(np.int64)
        call = "cross_entropy(logits, t)" if ls is None else \
            f"cross_entropy(logits, t, label_smoothing={ls})"
        src = (f"model case_{name}\ninput logits: f32[N, 5]\nlabel t: i64[N]\n"
               f"loss = {call}\noutput loss\n")
        loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(t),
                               label_smoothing=ls or 0.0)
        emit(name, src, {"logits": logits, "t": t}, {"loss": loss})
    a, b = rand(rs, N, 3, 2), rand(rs, N, 3, 2)
    src = "model case_mse\ninput a: f32[N, 3, 2]\ninput b: f32[N, 3, 2]\nloss = mse(a, b)\noutput loss\n"
    emit("mse", src, {"a": a, "b": b},
         {"loss": F.mse_loss(torch.from_numpy(a), torch.from_numpy(b))})


# ==== conv / pooling (ir/ops/conv.c, ir/ops/pool.c) ====
# Forward cases, then the backward ops the gradient rules build, checked
# against torch.autograd on the same geometry.

def conv_args(kw):
    return "".join(f", {k}={v}" for k, v in kw.items())


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


@case
def conv_cases(rs):
    for name, shape, out, kw in [
            ("conv_basic", (N, 3, 8, 8), 4, {}),
            ("conv_stride_pad", (N, 3, 9, 7), 5, {"kernel": "(3, 2)", "stride": "(2, 1)", "padding": "(1, 2)"}),
            ("conv_dilation_nobias", (N, 2, 10, 10), 3, {"kernel": 3, "dilation": 2, "padding": 1,
                                                         "bias": "false"}),
            ("conv_groups", (N, 4, 6, 6), 6, {"kernel": 3, "groups": 2, "padding": 1}),
            ("conv_depthwise", (N, 4, 7, 7), 4, {"kernel": 3, "groups": 4, "stride": 2, "padding": 1}),
            ("conv_1x1", (N, 6, 5, 5), 3, {"kernel": 1}),
            ("conv_1x1_stride2", (N, 6, 5, 5), 3, {"kernel": 1, "stride": 2}),
            # stride-2 depthwise kernels over parity sub-planes: even and odd
            # sizes, a 5x5 kernel (taps two sub-plane rows down), unequal pads
            ("conv_depthwise_k5_s2", (N, 3, 10, 8), 3, {"kernel": 5, "groups": 3, "stride": 2,
                                                        "padding": "(2, 1)"}),
            ("conv_depthwise_s2_nopad", (N, 5, 9, 6), 5, {"kernel": 3, "groups": 5, "stride": 2})]:
        x = rand(rs, *shape)
        k = pair(eval(str(kw.get("kernel", 3))))
        g = kw.get("groups", 1)
        bias = kw.get("bias") != "false"
        w = rand(rs, out, shape[1] // g, *k, lo=-0.5, hi=0.5)
        b = rand(rs, out, lo=-0.5, hi=0.5)
        src = (f"model case_{name}\ninput x: f32[{dims(shape)}]\n"
               f"y = conv2d(x, {out}{conv_args(kw)})\noutput y\n")
        y = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b) if bias else None,
                     stride=pair(eval(str(kw.get("stride", 1)))), padding=pair(eval(str(kw.get("padding", 0)))),
                     dilation=pair(eval(str(kw.get("dilation", 1)))), groups=g)
        weights = {"y.weight": w}
        if bias:
            weights["y.bias"] = b
        emit(name, src, {"x": x}, {"y": y}, weights)


@case
def conv_grad_cases(rs):
    for name, shape, out, k, st, pad, dil, g in [
            ("conv_grad_basic", (N, 3, 8, 8), 4, (3, 3), (1, 1), (0, 0), (1, 1), 1),
            ("conv_grad_strided", (N, 3, 9, 7), 5, (3, 2), (2, 1), (1, 2), (1, 1), 1),
            ("conv_grad_dilated_groups", (N, 4, 10, 10), 6, (3, 3), (2, 2), (1, 1), (2, 2), 2),
            ("conv_grad_depthwise", (N, 4, 7, 7), 4, (3, 3), (2, 2), (1, 1), (1, 1), 4),
            ("conv_grad_1x1", (N, 6, 5, 5), 3, (1, 1), (1, 1), (0, 0), (1, 1), 1)]:
        x = torch.from_numpy(rand(rs, *shape)).requires_grad_()
        w = torch.from_numpy(rand(rs, out, shape[1] // g, *k, lo=-0.5, hi=0.5)).requires_grad_()
        y = F.conv2d(x, w, None, st, pad, dil, g)
        dy = torch.from_numpy(rand(rs, *y.shape))
        y.backward(dy)
        geo = f"stride={st}, padding={pad}, dilation={dil}, groups={g}"
        src = (f"model case_{name}_input\ninput dy: f32[{dims(dy.shape)}]\n"
               f"input w: f32[{', '.join(str(s) for s in w.shape)}]\n"
               f"dx = conv2d_grad_input(dy, w, {geo}, input_hw={tuple(shape[2:])})\noutput dx\n")
        emit(name + "_input", src, {"dy": dy.numpy(), "w": w.detach().numpy()}, {"dx": x.grad})
        src = (f"model case_{name}_weight\ninput dy: f32[{dims(dy.shape)}]\n"
               f"input x: f32[{dims(shape)}]\n"
               f"dw = conv2d_grad_weight(dy, x, kernel={k}, {geo})\noutput dw\n")
        emit(name + "_weight", src, {"dy": dy.numpy(), "x": x.detach().numpy()}, {"dw": w.grad})


@case
def pool_cases(rs):
    x = rand(rs, N, 3, 8, 8)
    unary("max_pool2d_k2", x, "max_pool2d(x, 2)", lambda t: F.max_pool2d(t, 2))
    x = rand(rs, N, 2, 7, 9, lo=-3, hi=-1)  # all negative: padding must not win
    unary("max_pool2d_pad", x, "max_pool2d(x, kernel=3, stride=2, padding=1)",
          lambda t: F.max_pool2d(t, 3, 2, 1))
    unary("max_pool2d_rect", x, "max_pool2d(x, kernel=(2, 3), stride=(1, 2))",
          lambda t: F.max_pool2d(t, (2, 3), (1, 2)))
    x = rand(rs, N, 3, 8, 8)
    unary("avg_pool2d_k2", x, "avg_pool2d(x, 2)", lambda t: F.avg_pool2d(t, 2))
    x = rand(rs, N, 2, 7, 9)
    unary("avg_pool2d_pad", x, "avg_pool2d(x, kernel=3, stride=2, padding=1)",
          lambda t: F.avg_pool2d(t, 3, 2, 1))
    unary("avg_pool2d_pad_exclude", x, "avg_pool2d(x, kernel=3, stride=2, padding=1, count_include_pad=false)",
          lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False))
    x = rand(rs, N, 5, 6, 7)
    unary("global_avg_pool", x, "global_avg_pool(x)", lambda t: F.adaptive_avg_pool2d(t, 1))


@case
def pool_grad_cases(rs):
    for name, shape, k, st, pad in [("max_pool2d_grad_k2", (N, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
                                    ("max_pool2d_grad_overlap", (N, 2, 7, 9), (3, 3), (2, 2), (1, 1))]:
        xn = rand(rs, *shape)
        xn[0, 0, 0, :4] = 1.5  # ties inside a window: the first maximum takes the gradient
        x = torch.from_numpy(xn).requires_grad_()
        y = F.max_pool2d(x, k, st, pad)
        dy = torch.from_numpy(rand(rs, *y.shape))
        y.backward(dy)
        src = (f"model case_{name}\ninput dy: f32[{dims(dy.shape)}]\ninput x: f32[{dims(shape)}]\n"
               f"dx = max_pool2d_grad(dy, x, kernel={k}, stride={st}, padding={pad})\noutput dx\n")
        emit(name, src, {"dy": dy.numpy(), "x": xn}, {"dx": x.grad})
    for name, shape, k, st, pad, inc in [("avg_pool2d_grad_k2", (N, 3, 8, 8), (2, 2), (2, 2), (0, 0), True),
                                         ("avg_pool2d_grad_pad", (N, 2, 7, 9), (3, 3), (2, 2), (1, 1), True),
                                         ("avg_pool2d_grad_exclude", (N, 2, 7, 9), (3, 3), (2, 2), (1, 1), False),
                                         ("avg_pool2d_grad_global", (N, 5, 6, 7), (6, 7), (6, 7), (0, 0), True)]:
        x = torch.from_numpy(rand(rs, *shape)).requires_grad_()
        y = F.avg_pool2d(x, k, st, pad, count_include_pad=inc)
        dy = torch.from_numpy(rand(rs, *y.shape))
        y.backward(dy)
        src = (f"model case_{name}\ninput dy: f32[{dims(dy.shape)}]\n"
               f"dx = avg_pool2d_grad(dy, kernel={k}, stride={st}, padding={pad}, "
               f"count_include_pad={'true' if inc else 'false'}, input_hw={tuple(shape[2:])})\noutput dx\n")
        emit(name, src, {"dy": dy.numpy()}, {"dx": x.grad})


# ---- eval-mode batchnorm after a conv or linear (CPU inference folds it:
# bn_fold before the conv, the linear's epilogue; random running statistics)
@case
def folded_batchnorm_cases(rs):
    def bn_params(c):
        return (rand(rs, c, lo=0.5, hi=1.5), rand(rs, c, lo=-0.5, hi=0.5), rand(rs, c, lo=-1, hi=1),
                rand(rs, c, lo=0.2, hi=3.0))

    for name, shape, out, conv, bias in [("conv_bn_relu", (N, 3, 6, 5), 4, "kernel=3, padding=1", True),
                                         ("conv_nobias_bn_relu", (N, 3, 6, 5), 4, "kernel=3, padding=1, bias=false",
                                          False),
                                         ("conv_1x1_bn_relu", (N, 6, 4, 4), 5, "kernel=1", True),
                                         ("conv_dw_bn_relu", (N, 4, 7, 7), 4, "kernel=3, stride=2, padding=1, groups=4",
                                          True)]:
        x = rand(rs, *shape)
        g = 4 if "groups" in conv else 1
        k = 1 if "kernel=1" in conv else 3
        w = rand(rs, out, shape[1] // g, k, k, lo=-0.5, hi=0.5)
        b = rand(rs, out, lo=-0.5, hi=0.5)
        gw, gb, rm, rv = bn_params(out)
        src = (f"model case_{name}\ninput x: f32[{dims(shape)}]\nc = conv2d(x, {out}, {conv})\n"
               f"b = batchnorm(c, eps=1e-3)\ny = relu(b)\noutput y\n")
        c = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b) if bias else None,
                     stride=2 if "stride=2" in conv else 1, padding=1 if "padding=1" in conv else 0, groups=g)
        y = torch.relu(F.batch_norm(c, torch.from_numpy(rm), torch.from_numpy(rv), torch.from_numpy(gw),
                                    torch.from_numpy(gb), training=False, eps=1e-3))
        weights = {"c.weight": w, "b.weight": gw, "b.bias": gb, "b.running_mean": rm, "b.running_var": rv}
        if bias:
            weights["c.bias"] = b
        emit(name, src, {"x": x}, {"y": y}, weights)
    x = rand(rs, N, 7)
    w = rand(rs, 5, 7, lo=-0.5, hi=0.5)
    b = rand(rs, 5, lo=-0.5, hi=0.5)
    gw, gb, rm, rv = bn_params(5)
    src = ("model case_linear_bn_relu_dropout\ninput x: f32[N, 7]\nl = linear(x, 5)\nb = batchnorm(l)\n"
           "y = dropout(relu(b), p=0.3)\noutput y\n")
    y = torch.relu(F.batch_norm(torch.from_numpy(x) @ torch.from_numpy(w).T + torch.from_numpy(b),
                                torch.from_numpy(rm), torch.from_numpy(rv), torch.from_numpy(gw),
                                torch.from_numpy(gb), training=False))
    emit("linear_bn_relu_dropout", src, {"x": x}, {"y": y},
         {"l.weight": w, "l.bias": b, "b.weight": gw, "b.bias": gb, "b.running_mean": rm, "b.running_var": rv})


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for i, fn in enumerate(cases):
        fn(np.random.RandomState(1000 + i))
    n = len(os.listdir(OUT))
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"{n} cases, {size} bytes in {os.path.relpath(OUT)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
