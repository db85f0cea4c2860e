#!/usr/bin/python3
"""Per-image decode + preprocess time: torchvision's PIL pipeline
(Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet)) vs kiln's
(bench/image_pipeline.c, built as build/image_pipeline), in one run on the
same files, plus how far kiln's tensors are from PIL's.

usage: /usr/bin/python3 bench/image_pipeline.py [--n 100] [--build build] [--min-short 0,256,...]

torchvision is used when importable, else its transforms are replicated
with PIL + numpy + torch (the same calls torchvision makes).  Both sides
take the best of 3 passes after a warm-up pass (files in the page cache);
one thread each (torch.set_num_threads(1))."""
import argparse, glob, os, subprocess, sys, tempfile, time
import numpy as np
from PIL import Image

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--build", default="build")
    ap.add_argument("--data", default=os.environ.get("KILN_DATA", "/work/shared/data"))
    ap.add_argument("--min-short", default="0,384,256")
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.data, "clothing-small/train/*/*.jpg")))[: a.n]
    if not files:
        sys.exit("no clothing photos under %s/clothing-small" % a.data)
    import torch
    torch.set_num_threads(1)
    name, tf = pil_pipeline()
    refs = [tf(Image.open(f).convert("RGB")).numpy() for f in files]  # also the warm-up pass
    best = 1e30
    for _ in range(3):
        t0 = time.perf_counter()
        for f in files:
            tf(Image.open(f).convert("RGB"))
        best = min(best, (time.perf_counter() - t0) * 1000 / len(files))
    print("%d photos (%s)" % (len(files), os.path.dirname(os.path.dirname(os.path.dirname(files[0])))))
    print("%-44s %8.3f ms/image" % (name, best))
    exe = os.path.join(a.build, "image_pipeline")
    for ms in [int(v) for v in a.min_short.split(",")]:
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([exe, "--min-short", str(ms), "--out", d] + files, capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr)
            kms = float(out.stdout.split()[-1])
            errs = np.stack([np.abs(np.load(os.path.join(d, "%03d.npy" % i)) - r) for i, r in enumerate(refs)])
            # 1/255 of a pixel is 0.0174 after dividing by std 0.225
            print("%-44s %8.3f ms/image  %5.1fx  max|err| %.4f  mean|err| %.5f  (%.2f%% of values differ)" % (
                "kiln (DCT scaling down to short side %s)" % (ms if ms else "off"), kms, best / kms,
                errs.max(), errs.mean(), 100.0 * (errs > 1e-6).mean()))


if __name__ == "__main__":
    main()
