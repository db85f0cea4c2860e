#!/usr/bin/python3
"""gen_fmnist.py — golden values for models/fmnist_mlp.kiln from PyTorch.

Builds the same network as models/fmnist_mlp.kiln (784-512-256-128-64-10,
Linear -> BatchNorm1d -> ReLU -> Dropout(0.3) per hidden layer), trains it one
epoch on Fashion-MNIST (Adam 1e-3, batch 64, seed 0) so that weights and
batchnorm running statistics are non-trivial, then in eval mode writes:

  fmnist/fmnist_mlp.safetensors  checkpoint under kiln's parameter names
  fmnist/x_first256.npy          normalized inputs, f32 [256, 784]
  fmnist/y_first256.npy          labels, int64 [256]
  fmnist/logits_first256.npy     eval-mode logits, f32 [256, 10]
  fmnist/reference.json          full test split: accuracy, loss, correct, n

Run with Debian's python (torch 1.13 + numpy), from any directory:
  /usr/bin/python3 tests/golden/gen_fmnist.py [--data DIR]
Deterministic: single-threaded CPU, seed 0, no torchvision.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fmnist")
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    """IDX (optionally .gz) -> numpy array, big-endian header as in the spec."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype_code == 0x08, f"{path}: not an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def normalize(images_u8):
    # Same float32 arithmetic as kiln's IDX reader: (x/255 - mean) / std.
    x = images_u8.reshape(images_u8.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return ((x - np.float32(MEAN)) / np.float32(STD)).astype(np.float32)


class FmnistMlp(nn.Module):
    WIDTHS = [784, 512, 256, 128, 64]

    def __init__(self):
        super().__init__()
        self.fc = nn.ModuleList()
        self.bn = nn.ModuleList()
        for i in range(4):
            self.fc.append(nn.Linear(self.WIDTHS[i], self.WIDTHS[i + 1]))
            self.bn.append(nn.BatchNorm1d(self.WIDTHS[i + 1]))
        self.fc.append(nn.Linear(64, 10))
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        for i in range(4):
            x = self.drop(F.relu(self.bn[i](self.fc[i](x))))
        return self.fc[4](x)


def kiln_state(model):
    """torch names (fc.0.weight, bn.1.running_var) -> kiln names (fc0.weight, bn1.running_var)."""
    out = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        kind, idx, field = name.split(".")
        out[f"{kind}{idx}.{field}"] = t.detach().cpu().contiguous().numpy().astype("<f4")
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    for name, arr in tensors.items():
        n = arr.nbytes
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + n]}
        offset += n
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)  # keep the data 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for arr in tensors.values():
            f.write(arr.tobytes(order="C"))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()

    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    xtr = torch.from_numpy(normalize(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))))
    ytr = torch.from_numpy(read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    xte_np = normalize(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")))
    yte_np = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    xte, yte = torch.from_numpy(xte_np), torch.from_numpy(yte_np)

    model = FmnistMlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    perm = torch.randperm(xtr.shape[0], generator=gen)
    total = 0.0
    steps = 0
    for b in range(0, xtr.shape[0], 64):
        idx = perm[b:b + 64]
        if idx.numel() < 2:  # BatchNorm needs more than one sample
            continue
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        steps += 1
    print(f"epoch 1: train loss {total / steps:.4f} over {steps} steps", file=sys.stderr)

    model.eval()
    with torch.no_grad():
        logits = model(xte)
        loss_sum = F.cross_entropy(logits, yte, reduction="sum").item()
        pred = logits.argmax(dim=1)
        correct = int((pred == yte).sum().item())
        top2 = logits.topk(2, dim=1).values
        margin = (top2[:, 0] - top2[:, 1])
        first = model(xte[:256]).numpy().astype(np.float32)

    n = int(yte.shape[0])
    ref = {
        "source": "pytorch %s gen_fmnist.py" % torch.__version__,
        "model": "fmnist_mlp",
        "split": "test",
        "n": n,
        "correct": correct,
        "accuracy": correct / n,
        "loss": loss_sum / n,
        "train_epochs": 1,
        "min_top2_margin": float(margin.min().item()),
        "near_ties_1e-4": int((margin < 1e-4).sum().item()),
    }
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "x_first256.npy"), np.ascontiguousarray(xte_np[:256]))
    np.save(os.path.join(OUT, "y_first256.npy"), np.ascontiguousarray(yte_np[:256]))
    np.save(os.path.join(OUT, "logits_first256.npy"), first)
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    write_safetensors(os.path.join(OUT, "fmnist_mlp.safetensors"), kiln_state(model),
                      {"source": "pytorch 1.13 gen_fmnist.py"})
    print(json.dumps(ref))


if __name__ == "__main__":
    main()
