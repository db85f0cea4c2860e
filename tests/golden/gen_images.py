#!/usr/bin/python3
"""Golden values for tests/test_runtime_image.c: torchvision's
Resize(72) -> CenterCrop(64) -> ToTensor -> Normalize(ImageNet) on PIL
images, as f32 [3,64,64] .npy files in tests/golden/images/.

Run with Debian's python3 (PIL, numpy; torchvision when importable, else
its PIL path replicated call for call):  /usr/bin/python3 tests/golden/gen_images.py

It first (re)generates the small synthetic test images it reads:
  rgb.jpg   131x97 colour JPEG (q90)         rgb.png   120x80 RGBA PNG (alpha dropped)
  gray.jpg  90x150 greyscale JPEG             cmyk.jpg  100x70 Adobe CMYK JPEG
  large.jpg 1000x750 JPEG: kiln decodes it DCT-scaled (2/8) for this resize
  rgb.bmp   77x61 24-bit BMP (rows padded to 4 bytes)
and, when $KILN_DATA/clothing-small exists, goldens for 3 real photos
(photo0..2.npy; the photos themselves are not committed)."""
import os, sys
import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
RESIZE, CROP = 72, 64
PHOTOS = ["train/dress/009b3c31-fb62-45c0-be9a-37a5c238cb88.jpg",
          "validation/hat/", "test/shoes/"]  # a folder: its first file


def transform(im):
    try:
        import torchvision.transforms as T
        t = T.Compose([T.Resize(RESIZE), T.CenterCrop(CROP), T.ToTensor(), T.Normalize(MEAN.tolist(), STD.tolist())])
        return t(im).numpy()
    except ImportError:
        pass
    w, h = im.size  # torchvision.transforms.functional.resize (PIL)
    short, long = (w, h) if w <= h else (h, w)
    ns, nl = RESIZE, int(RESIZE * long / short)
    ow, oh = (ns, nl) if w <= h else (nl, ns)
    if (ow, oh) != (w, h):
        im = im.resize((ow, oh), Image.BILINEAR)
    top, left = int(round((oh - CROP) / 2.0)), int(round((ow - CROP) / 2.0))
    im = im.crop((left, top, left + CROP, top + CROP))
    x = np.array(im, np.uint8).astype(np.float32).transpose(2, 0, 1) / np.float32(255)  # to_tensor
    return (x - MEAN[:, None, None]) / STD[:, None, None]  # normalize, float32


def scene(w, h, seed):
    """Smooth gradients plus sharp shapes: both filter regimes matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.stack([128 + 100 * np.sin(x / (7 + 3 * c) + y / (11 + c)) for c in range(3)], -1)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        d.ellipse([x0, y0, x0 + w // 4, y0 + h // 5], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        d.line([rng.integers(0, w), rng.integers(0, h), rng.integers(0, w), rng.integers(0, h)], fill=(255, 255, 255), width=2)
    return im


def make_images():
    os.makedirs(HERE, exist_ok=True)
    scene(131, 97, 1).save(os.path.join(HERE, "rgb.jpg"), quality=90)
    p = scene(120, 80, 2).convert("RGBA")
    p.putalpha(Image.fromarray((np.arange(120 * 80) % 251).reshape(80, 120).astype(np.uint8)))
    p.save(os.path.join(HERE, "rgb.png"))
    scene(90, 150, 3).convert("L").save(os.path.join(HERE, "gray.jpg"), quality=90)
    scene(100, 70, 4).convert("CMYK").save(os.path.join(HERE, "cmyk.jpg"), quality=90)
    scene(1000, 750, 5).save(os.path.join(HERE, "large.jpg"), quality=40)
    scene(77, 61, 6).save(os.path.join(HERE, "rgb.bmp"))  # 24-bit, rows padded to 4 bytes


def main():
    make_images()
    for name in ["rgb.jpg", "rgb.png", "gray.jpg", "cmyk.jpg", "large.jpg", "rgb.bmp"]:
        x = transform(Image.open(os.path.join(HERE, name)).convert("RGB"))
        suffix = "_" + name.split(".")[1] if name.endswith(("png", "bmp")) else ""
        np.save(os.path.join(HERE, name.split(".")[0] + suffix + ".npy"), x.astype(np.float32))
    root = os.path.join(os.environ.get("KILN_DATA", "/work/shared/data"), "clothing-small")
    if not os.path.isdir(root):
        print("no %s: photo goldens not regenerated" % root)
        return
    with open(os.path.join(HERE, "photos.txt"), "w") as f:
        for i, p in enumerate(PHOTOS):
            if p.endswith("/"):
                p += sorted(os.listdir(os.path.join(root, p)))[0]
            x = transform(Image.open(os.path.join(root, p)).convert("RGB"))
            np.save(os.path.join(HERE, "photo%d.npy" % i), x.astype(np.float32))
            f.write("clothing-small/%s\n" % p)
    print("goldens written to", HERE)


if __name__ == "__main__":
    sys.exit(main())
