#!/usr/bin/python3
"""compare_clothing.py — the clothing transfer-learning recipe in PyTorch,
as the reference for models/clothing_transfer.kiln.

Same ONNX weights: MobileNetV2 is read from mobilenetv2.onnx with python3-onnx
and its graph up to the global average pool (`gap_202`) is executed op by op
with torch (Conv, Clip, Add, Mul, GlobalAveragePool: the only ops before the
cut), in eval mode, so no kiln code is involved.  Same preprocessing:
torchvision's Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize
(ImageNet) replicated with PIL + numpy, call for call (torchvision is not in
Debian's python3-torch).  Same recipe: a Linear(1280, 10) head (PyTorch's
default init), Adam(lr), batch 32, 10 epochs, shuffled with torch's RNG,
best validation accuracy and test accuracy at the best epoch.

The backbone runs once per image (features cached as kiln does), so the
script takes a few minutes.  Prints one line per seed and the mean; with
--kiln-json FILE (the JSON lines of `EXE sweep --json` or `train --json`)
it also prints kiln's mean and the gap, and exits 1 when it is over
--max-gap points.

  /usr/bin/python3 tests/compare_clothing.py [--data DIR] [--seeds 0,1,2] [--lr 0.01]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from PIL import Image

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def preprocess(path, resize=256, crop=224):
    """torchvision Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize, PIL path."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    ns, nl = resize, int(resize * long / short)
    ow, oh = (ns, nl) if w <= h else (nl, ns)
    if (ow, oh) != (w, h):
        im = im.resize((ow, oh), Image.BILINEAR)
    top, left = int(round((oh - crop) / 2.0)), int(round((ow - crop) / 2.0))
    im = im.crop((left, top, left + crop, top + crop))
    x = np.array(im, np.uint8).astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    return (x - MEAN[:, None, None]) / STD[:, None, None]


class OnnxBackbone:
    """The ONNX graph up to `until`, executed with torch ops."""

    def __init__(self, path, until):
        g = onnx.load(path).graph
        self.w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
        self.input = g.input[0].name
        need, nodes = {until}, []
        for n in reversed(g.node):  # only the nodes the cut depends on
            if any(o in need for o in n.output):
                nodes.append(n)
                need.update(n.input)
        self.nodes = list(reversed(nodes))
        self.until = until

    def _val(self, env, name):
        return env[name] if name in env else self.w[name]

    def __call__(self, x):
        env = {self.input: x}
        for n in self.nodes:
            a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
            ins = [self._val(env, i) if i else None for i in n.input]
            if n.op_type == "Conv":
                pads = list(a.get("pads", [0, 0, 0, 0]))  # top, left, bottom, right
                x0 = F.pad(ins[0], (pads[1], pads[3], pads[0], pads[2]))
                y = F.conv2d(x0, ins[1], ins[2] if len(ins) > 2 else None, stride=tuple(a.get("strides", [1, 1])),
                             dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1))
            elif n.op_type == "Clip":
                lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min", float("-inf"))
                hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max", float("inf"))
                y = torch.clamp(ins[0], float(lo), float(hi))
            elif n.op_type == "Add":
                y = ins[0] + ins[1]
            elif n.op_type == "Mul":
                y = ins[0] * ins[1]
            elif n.op_type == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            else:
                raise SystemExit(f"compare_clothing: op {n.op_type} ({n.name}) not in this reference")
            env[n.output[0]] = y
        return env[self.until]


def split_files(root, split, classes):
    files, labels = [], []
    for c, name in enumerate(classes):
        d = os.path.join(root, split, name)
        for f in sorted(os.listdir(d)):
            files.append(os.path.join(d, f))
            labels.append(c)
    return files, torch.tensor(labels)


def features(backbone, files, batch=32):
    out = []
    with torch.no_grad():
        for i in range(0, len(files), batch):
            x = torch.from_numpy(np.stack([preprocess(f) for f in files[i:i + batch]]))
            out.append(backbone(x).flatten(1))
    return torch.cat(out)


def train_head(seed, lr, feats, epochs=10, batch=32):
    torch.manual_seed(seed)
    head = torch.nn.Linear(1280, 10)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    (xtr, ytr), (xva, yva), (xte, yte) = feats
    best, best_epoch, best_test = -1.0, 0, 0.0
    for e in range(1, epochs + 1):
        perm = torch.randperm(len(xtr), generator=gen)
        for b in range(0, len(xtr), batch):
            idx = perm[b:b + batch]
            loss = F.cross_entropy(head(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = (head(xva).argmax(1) == yva).float().mean().item()
            if val > best:
                best, best_epoch = val, e
                best_test = (head(xte).argmax(1) == yte).float().mean().item()
    return best, best_epoch, best_test


def kiln_mean(path, lr):
    vals, tests = [], []
    with open(path) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event") == "sweep" and abs(ev.get("lr", -1) - lr) < 1e-9 * max(1, lr):
                vals.append(ev["best_val_acc"])
                tests.append(ev["test_acc"])
    return (sum(vals) / len(vals), sum(tests) / len(tests), len(vals)) if vals else None


def main():
    default_data = os.environ.get("KILN_DATA", os.path.join(SRC, "..", "shared", "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--kiln-json", help="JSON lines of `EXE sweep --json` to compare with")
    ap.add_argument("--max-gap", type=float, default=2.0, help="allowed gap of mean best val accuracy, points")
    args = ap.parse_args()
    root = os.path.join(args.data, "clothing-small")
    onnx_path = os.path.join(args.data, "mobilenetv2", "mobilenetv2.onnx")
    if not os.path.isdir(root) or not os.path.exists(onnx_path):
        sys.exit(f"compare_clothing: need {root} and {onnx_path}")
    torch.set_num_threads(os.cpu_count())
    classes = sorted(os.listdir(os.path.join(root, "train")))
    backbone = OnnxBackbone(onnx_path, "gap_202")
    t0 = time.time()
    feats = []
    for split in ("train", "validation", "test"):
        files, labels = split_files(root, split, classes)
        feats.append((features(backbone, files), labels))
    print(f"pytorch: backbone features for {sum(len(f[1]) for f in feats)} images in {time.time() - t0:.1f} s",
          file=sys.stderr)
    vals, tests = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        best, epoch, test = train_head(seed, args.lr, feats)
        vals.append(best)
        tests.append(test)
        print(f"pytorch seed {seed}: best val {best:.4f} (epoch {epoch}), test {test:.4f}", flush=True)
    pv, pt = sum(vals) / len(vals), sum(tests) / len(tests)
    print(f"pytorch mean over {len(vals)} seeds: best val {pv:.4f}, test {pt:.4f}")
    if args.kiln_json:
        k = kiln_mean(args.kiln_json, args.lr)
        if not k:
            sys.exit(f"compare_clothing: no sweep lines with lr {args.lr} in {args.kiln_json}")
        gap = 100 * (k[0] - pv)
        print(f"kiln mean over {k[2]} runs: best val {k[0]:.4f}, test {k[1]:.4f}; gap {gap:+.2f} points")
        return 0 if abs(gap) <= args.max_gap else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
