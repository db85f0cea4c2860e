#!/usr/bin/python3
"""Small ONNX models and their expected outputs: tests/golden/onnx/<case>/.

Each case folder holds model.onnx (built with onnx.helper, so every
attribute is explicit), its inputs as <input name>.npy, the outputs PyTorch
computes as <output name>.npy, and io.txt listing "in NAME" / "out NAME".
tests/test_onnx_import.c builds every case with `kiln build` and compares.
bad/ holds models the importer must reject with a clear message.
../onnx_splice/ holds a graph spliced into model files by
tests/test_onnx_splice.c (not a golden case: its head is unsupported).

Inputs come from numpy's seeded RandomState; torch only computes the
expected outputs, on the CPU in float32.  Regenerate (deterministic, removes
stale cases) with Debian's python (python3-onnx, python3-torch):
    /usr/bin/python3 tests/golden/gen_onnx.py
"""
import os
import shutil

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
rng = np.random.RandomState(0)


def rand(*shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def save(case, nodes, inputs, outputs, inits, feeds, expect, opset=13):
    d = os.path.join(OUT, case)
    os.makedirs(d)
    outs = [vi(n, ["N"] + list(expect[n].shape[1:])) for n in outputs]
    g = helper.make_graph(nodes, case, [vi(n, s) for n, s in inputs], outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln gen_onnx.py")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(d, "model.onnx"))
    with open(os.path.join(d, "io.txt"), "w") as f:
        for n, _ in inputs:
            np.save(os.path.join(d, n + ".npy"), feeds[n])
            f.write("in %s\n" % n)
        for n in outputs:
            np.save(os.path.join(d, n + ".npy"), expect[n].astype(np.float32))
            f.write("out %s\n" % n)


def t(a):
    return torch.from_numpy(a)


def gemm():
    """Gemm with transB=1 (linear) and with transB=0, alpha, beta, 2-D C."""
    x, w1, b1, w2, b2 = rand(2, 4), rand(3, 4), rand(3), rand(3, 5), rand(1, 5)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], alpha=0.5, beta=2.0, name="fc2")]
    h = F.relu(t(x) @ t(w1).T + t(b1))
    y = 0.5 * (h @ t(w2)) + 2.0 * t(b2)
    save("gemm", nodes, [("x", ["N", 4])], ["y"], [init("w1", w1), init("b1", b1), init("w2", w2), init("b2", b2)],
         {"x": x}, {"y": y.numpy()})


def conv_groups():
    """Grouped conv with asymmetric pads and stride 2, ReLU6 as Clip with
    min/max inputs, then a depthwise conv with dilation 2."""
    x, w, b, wd = rand(2, 4, 7, 7), rand(6, 2, 3, 3), rand(6), rand(6, 1, 3, 3)
    lo, hi = np.array(0.0, np.float32), np.array(6.0, np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=2, kernel_shape=[3, 3], pads=[0, 0, 1, 1],
                              strides=[2, 2]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
             helper.make_node("Conv", ["r", "wd"], ["y"], group=6, pads=[2, 2, 2, 2], dilations=[2, 2])]
    c = F.conv2d(F.pad(t(x), (0, 1, 0, 1)), t(w), t(b), stride=2, groups=2)
    y = F.conv2d(torch.clamp(c, 0, 6), t(wd), None, padding=2, dilation=2, groups=6)
    save("conv_groups", nodes, [("x", ["N", 4, 7, 7])], ["y"],
         [init("w", w), init("b", b), init("wd", wd), init("lo", lo), init("hi", hi)], {"x": x}, {"y": y.numpy()})


def reshape_shape_chain():
    """x.view(x.size(0), -1) as PyTorch exports it: Shape -> Gather ->
    Unsqueeze -> Concat -> Reshape, then BatchNormalization on the result
    of a reshape back to 4-D."""
    x = rand(3, 2, 3, 4)
    sc, bi, mu, var = rand(2), rand(2), rand(2), np.abs(rand(2)) + 0.5
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [], [0])),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Constant", [], ["ax"], value=helper.make_tensor("ax", TensorProto.INT64, [1], [0])),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Constant", [], ["m1"], value=helper.make_tensor("m1", TensorProto.INT64, [1], [-1])),
             helper.make_node("Concat", ["n1", "m1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["flat"]),
             helper.make_node("Reshape", ["flat", "shp4"], ["x4"]),
             helper.make_node("BatchNormalization", ["x4", "sc", "bi", "mu", "var"], ["bn"], epsilon=1e-3),
             helper.make_node("Flatten", ["bn"], ["y"], axis=1)]
    bn = F.batch_norm(t(x), t(mu), t(var), t(sc), t(bi), training=False, eps=1e-3)
    save("reshape_shape_chain", nodes, [("x", ["N", 2, 3, 4])], ["flat", "y"],
         [init("shp4", np.array([-1, 2, 3, 4], np.int64)), init("sc", sc), init("bi", bi), init("mu", mu),
          init("var", var)], {"x": x}, {"flat": x.reshape(3, -1), "y": bn.reshape(3, -1).numpy()})


def concat_transpose():
    """Transpose, Concat of runtime tensors, Pad, Softmax, Sigmoid, Tanh,
    LeakyRelu, Sub/Div with broadcast constants, Identity to the output."""
    x, k = rand(2, 3, 4), rand(4, 1) + 2.0
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("Sigmoid", ["xt"], ["s"]),
             helper.make_node("Tanh", ["xt"], ["th"]),
             helper.make_node("LeakyRelu", ["xt"], ["lr"], alpha=0.2),
             helper.make_node("Concat", ["s", "th", "lr"], ["c"], axis=2),
             helper.make_node("Sub", ["c", "k"], ["d"]),
             helper.make_node("Div", ["d", "k"], ["q"]),
             helper.make_node("Pad", ["q", "pads"], ["p"], mode="constant"),
             helper.make_node("Softmax", ["p"], ["sm"], axis=-1),
             helper.make_node("Identity", ["sm"], ["y"])]
    xt = t(x).permute(0, 2, 1)
    c = torch.cat([torch.sigmoid(xt), torch.tanh(xt), F.leaky_relu(xt, 0.2)], dim=2)
    q = (c - t(k)) / t(k)
    p = F.pad(q, (1, 2, 0, 1))  # last dim (1, 2), middle dim (0, 1)
    y = torch.softmax(p, dim=-1)
    save("concat_transpose", nodes, [("x", ["N", 3, 4])], ["y"],
         [init("k", k), init("pads", np.array([0, 0, 1, 0, 1, 2], np.int64))], {"x": x}, {"y": y.numpy()})


def pool_matmul():
    """MaxPool, AveragePool with pads, GlobalAveragePool, ReduceMean,
    Squeeze, MatMul, Add, Mul."""
    x, w = rand(2, 3, 8, 8), rand(3, 5)
    nodes = [helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["ap"], ["g"]),
             helper.make_node("ReduceMean", ["ap"], ["rm"], axes=[2, 3], keepdims=1),
             helper.make_node("Mul", ["g", "rm"], ["gm"]),
             helper.make_node("Squeeze", ["gm", "sq"], ["v"]),
             helper.make_node("MatMul", ["v", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "mm"], ["y"])]
    mp = F.max_pool2d(t(x), 2, 2)
    ap = F.avg_pool2d(mp, 3, 1, padding=1, count_include_pad=False)
    g = ap.mean(dim=(2, 3), keepdim=True)
    v = (g * g).reshape(2, 3)
    y = 2 * (v @ t(w))
    save("pool_matmul", nodes, [("x", ["N", 3, 8, 8])], ["y"],
         [init("w", w), init("sq", np.array([2, 3], np.int64))], {"x": x}, {"y": y.numpy()})


def qdq_weights():
    """Quantized weights fold at import: DequantizeLinear(QuantizeLinear(W))
    per axis with uint8 zero points, and an int8 initializer dequantized per
    tensor, feeding MatMul and Add."""
    x, w = rand(2, 4), rand(4, 3)
    s, zp = np.array([0.01, 0.02, 0.015], np.float32), np.array([120, 128, 135], np.uint8)
    b8, bs, bzp = np.array([-7, 0, 100], np.int8), np.array(0.05, np.float32), np.array(3, np.int8)
    nodes = [helper.make_node("QuantizeLinear", ["w", "s", "zp"], ["wq"], axis=1),
             helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["wd"], axis=1),
             helper.make_node("DequantizeLinear", ["b8", "bs", "bzp"], ["bd"]),
             helper.make_node("MatMul", ["x", "wd"], ["mm"]),
             helper.make_node("Add", ["mm", "bd"], ["y"])]
    q = np.clip(np.round(w / s) + zp.astype(np.float32), 0, 255)  # np.round is half-to-even, as ONNX
    wd = ((q - zp.astype(np.float32)) * s).astype(np.float32)
    bd = ((b8.astype(np.float32) - float(bzp)) * bs).astype(np.float32)
    y = x @ wd + bd
    save("qdq_weights", nodes, [("x", ["N", 4])], ["y"],
         [init("w", w), init("s", s), init("zp", zp), init("b8", b8), init("bs", bs), init("bzp", bzp)],
         {"x": x}, {"y": y})


def bad_models():
    d = os.path.join(OUT, "bad")
    os.makedirs(d)
    x = vi("x", ["N", 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["h"], name="ok_relu"),
                           helper.make_node("FancyActivation", ["h"], ["y"], name="weird_node")],
                          "unknown_op", [x], [vi("y", ["N", 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(d, "unknown_op.onnx"))
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "new_opset", [x], [vi("y", ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 99)])
    onnx.save(m, os.path.join(d, "opset_99.onnx"))


def splice_mlp():
    """A Fashion-MNIST-sized MLP backbone for onnx(..., until="feat"):
    x[N,784] -> Gemm(784->32, transB) -> Relu = feat -> Gemm(32->10) = logits
    -> Mod(logits, 2, fmod=1) = hard.  kiln has no Mod, so only a cut before it builds;
    feat.npy is the expected cut output for x.npy (numpy, float32)."""
    d = os.path.join(HERE, "onnx_splice")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    r = np.random.RandomState(7)
    x = r.uniform(0, 1, size=(4, 784)).astype(np.float32)
    w1 = (r.uniform(-1, 1, size=(32, 784)) / 28).astype(np.float32)
    b1 = r.uniform(-0.1, 0.1, size=32).astype(np.float32)
    w2 = r.uniform(-0.5, 0.5, size=(10, 32)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["feat"], name="act1"),
             helper.make_node("Gemm", ["feat", "w2", "b2"], ["logits"], transB=1, name="fc2"),
             helper.make_node("Mod", ["logits", "two"], ["hard"], fmod=1, name="mod")]
    g = helper.make_graph(nodes, "splice_mlp", [vi("x", ["N", 784])], [vi("hard", ["N", 10])],
                          [init("w1", w1), init("b1", b1), init("w2", w2), init("b2", b2),
                           init("two", np.array(2.0, np.float32))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="kiln gen_onnx.py")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(d, "mlp.onnx"))
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "feat.npy"), np.maximum(x @ w1.T + b1, 0).astype(np.float32))


def normalize_conv():
    """The image normalisation TF-converted MobileNetV2 starts with,
    Mul(x, scale) -> Add(shift) with per-channel [1,3,1,1] initializers,
    before a 3x3 stride-2 conv with TF's bottom/right padding and a Clip:
    kiln folds the pair into the conv's im2col (passes/fuse_epilogue.c),
    and the padding must stay 0 after the normalisation."""
    x, w, b = rand(2, 3, 9, 9) * 3, rand(4, 3, 3, 3), rand(4)
    scale = np.array([0.5, -2.0, 1.5], np.float32).reshape(1, 3, 1, 1)
    shift = np.array([0.25, 1.0, -0.75], np.float32).reshape(1, 3, 1, 1)
    lo, hi = np.array(0.0, np.float32), np.array(6.0, np.float32)
    nodes = [helper.make_node("Mul", ["x", "scale"], ["m"]),
             helper.make_node("Add", ["m", "shift"], ["n"]),
             helper.make_node("Conv", ["n", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[0, 0, 1, 1], strides=[2, 2]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    n = t(x) * t(scale) + t(shift)
    y = torch.clamp(F.conv2d(F.pad(n, (0, 1, 0, 1)), t(w), t(b), stride=2), 0, 6)
    save("normalize_conv", nodes, [("x", ["N", 3, 9, 9])], ["y"],
         [init("scale", scale), init("shift", shift), init("w", w), init("b", b), init("lo", lo), init("hi", hi)],
         {"x": x}, {"y": y.numpy()})


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for fn in (gemm, conv_groups, reshape_shape_chain, concat_transpose, pool_matmul, bad_models, splice_mlp,
               qdq_weights, normalize_conv):
        fn()
    print("wrote", OUT)
