#!/usr/bin/python3
"""Per-image decode + preprocess time: torchvision's PIL pipeline
(Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet)) vs kiln's
(bench/image_pipeline.c, built as build/image_pipeline), in one run on the
same files, plus how far kiln's tensors are from PIL's.

usage: /usr/bin/python3 bench/image_pipeline.py [--n 100] [--reps 7] [--build build]

The two sides are measured interleaved: each repetition times 3 PIL passes
over the files, then 3 passes of each kiln configuration (a fresh process
each, after its own warm-up pass), taking each side's median pass; the
medians over the repetitions are reported, so load from other processes
hits both sides alike.  Wall time and CPU time (process time: on a busy
machine it leaves out the waits for a core) are both reported.  One thread
each (torch.set_num_threads(1)); files in the page cache.

kiln configurations:
  dataset   what the image-folder dataset does for eval and feature caching
            (kn_image_load_crop): only the JPEG window the center crop reads
            is decoded, DCT-scaled while the shorter side stays >= 2 x 256,
            each row streamed through resize + crop as it is decoded
  window    the same window decoded into an image, then resized: the same
            work, timed as decode and resize stages
  full      whole-image decode, no DCT scaling, then resize
  dct256    as dataset, DCT scaling down to a shorter side of 256 (less
            accurate: shown for the accuracy it costs)

torchvision is used when importable, else its transforms are replicated
with PIL + numpy + torch (the same calls torchvision makes)."""
import argparse, glob, os, statistics, subprocess, sys, tempfile, time
import numpy as np
from PIL import Image

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
PASSES = 3  # per repetition and side, median taken: both sides run warm
LEVEL = 1 / 255 / 0.225  # one 8-bit level in normalized units (largest of the 3 channels)
CONFIGS = [("dataset", []), ("window", ["--window"]), ("full", ["--full", "--min-short", "0"]),
           ("dct256", ["--min-short", "256"])]


def pil_pipeline():
    try:
        import torchvision.transforms as T
        return "torchvision", T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    except ImportError:
        pass
    import torch
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)

    def run(im):
        w, h = im.size  # torchvision.transforms.functional.resize, PIL path
        short, long = (w, h) if w <= h else (h, w)
        ns, nl = 256, int(256 * long / short)
        ow, oh = (ns, nl) if w <= h else (nl, ns)
        if (ow, oh) != (w, h):
            im = im.resize((ow, oh), Image.BILINEAR)
        top, left = int(round((oh - 224) / 2.0)), int(round((ow - 224) / 2.0))  # center_crop
        im = im.crop((left, top, left + 224, top + 224))
        x = torch.from_numpy(np.array(im, np.uint8, copy=True)).view(224, 224, 3).permute(2, 0, 1).contiguous()
        x = x.to(dtype=torch.float32).div(255)  # to_tensor
        return x.sub_(mean).div_(std)  # normalize
    return "PIL+torch (torchvision replicated)", run


def kiln_pass(exe, args, files, out=None, passes=PASSES):
    """Median stage times of `passes` timed passes in a fresh process (after
    its warm-up pass)."""
    cmd = [exe, "--repeat", str(passes)] + args + (["--out", out] if out else []) + files
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    v = r.stdout.split()
    return {v[i]: float(v[i + 1]) for i in range(0, len(v), 2)}


def accuracy(exe, args, files, refs):
    with tempfile.TemporaryDirectory() as d:
        kiln_pass(exe, args, files, d, 1)
        errs = np.stack([np.abs(np.load(os.path.join(d, "%03d.npy" % i)) - r) for i, r in enumerate(refs)])
    return errs.max(), errs.mean(), 100.0 * (errs > 1e-6).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--build", default="build")
    ap.add_argument("--data", default=os.environ.get("KILN_DATA", "/work/shared/data"))
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.data, "clothing-small/train/*/*.jpg")))[: a.n]
    if not files:
        sys.exit("no clothing photos under %s/clothing-small" % a.data)
    import torch
    torch.set_num_threads(1)
    name, tf = pil_pipeline()
    exe = os.path.join(a.build, "image_pipeline")
    refs = [tf(Image.open(f).convert("RGB")).numpy() for f in files]  # also PIL's warm-up pass
    pil, pil_cpu, kiln = [], [], {c: [] for c, _ in CONFIGS}
    for _ in range(a.reps):
        ts, cs = [], []
        for _ in range(PASSES):
            t0, c0 = time.perf_counter(), time.process_time()
            for f in files:
                tf(Image.open(f).convert("RGB"))
            ts.append((time.perf_counter() - t0) * 1000 / len(files))
            cs.append((time.process_time() - c0) * 1000 / len(files))
        pil.append(statistics.median(ts))
        pil_cpu.append(statistics.median(cs))
        for c, args in CONFIGS:
            kiln[c].append(kiln_pass(exe, args, files))
    p, pc = statistics.median(pil), statistics.median(pil_cpu)
    sizes = sorted({Image.open(f).size for f in files}, key=lambda s: -sum(1 for f in files if Image.open(f).size == s))
    print("%d photos (%s; e.g. %dx%d), %d interleaved repetitions, medians" % (
        len(files), os.path.dirname(os.path.dirname(os.path.dirname(files[0]))), *sizes[0], a.reps))
    print("%-36s %7.3f ms/image        (CPU %.3f ms/image)" % (name, p, pc))
    for c, args in CONFIGS:
        med = {k: statistics.median(r[k] for r in kiln[c]) for k in kiln[c][0]}
        mx, mean, frac = accuracy(exe, args, files, refs)
        stages = ("decode+resize+crop %.3f" % med["decode_ms"] if not med["resize_crop_ms"] else
                  "decode %.3f, resize+crop %.3f" % (med["decode_ms"], med["resize_crop_ms"]))
        print("%-36s %7.3f ms/image  %4.1fx  (CPU %.3f ms/image %4.1fx; %s, to CHW %.3f)" % (
            "kiln " + c, med["kiln_ms_per_image"], p / med["kiln_ms_per_image"], med["kiln_cpu_ms_per_image"],
            pc / med["kiln_cpu_ms_per_image"], stages, med["to_chw_ms"]))
        print("%-36s max|err| %.4f (%.1f levels)  mean|err| %.5f  %.2f%% of values differ" % (
            "", mx, mx / LEVEL, mean, frac))


if __name__ == "__main__":
    main()
