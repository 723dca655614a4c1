#!/usr/bin/env python3
"""Builds a small labelled image set for `morsel eval` from the two real seed photos:

  $MORSEL_SHARED/images/seed/noodles.jpg     Food-11 "Noodles/Pasta"   (class 6)
  $MORSEL_SHARED/images/seed/test_image.jpeg Food-11 "Vegetable/Fruit" (class 10)

(MORSEL_SHARED defaults to /work/shared.) Each photo gives 18 variants -- crops, flips, small
rotations, scales, JPEG re-encodes at qualities 10..95, a grey and a darker copy, one PNG --
written twice, in both layouts `morsel eval` reads:

  OUTDIR/folders/<class>/...      one sub-folder per class, as Keras flow_from_directory wants.
                                  A label with '/' cannot be a folder name, so the folders use
                                  the rule of `morsel eval`: '/', '-', '_' and ' ' are one
                                  separator and case is ignored when no folder name matches
                                  exactly: "Noodles-Pasta" (separator), "vegetable_fruit"
                                  (case and separator), "Egg" (exact).
  OUTDIR/flat/<index>_<n>.<ext>   Food-11 style names, the number before '_' being the class.

"Egg" holds three noodle crops filed there on purpose: a class with images that the model never
predicts, so the report's zero_division=0 precision is exercised. Each layout also gets one
corrupt file (the unreadable-image path), the flat one an image whose name has no class index,
and the folders a text file that must be ignored. OUTDIR/manifest.json pairs every image's two
paths with its true class.

    python test/make_eval_set.py OUTDIR
"""

import io
import json
import os
import shutil
import sys

from PIL import Image, ImageEnhance, ImageOps

SHARED = os.environ.get("MORSEL_SHARED") or "/work/shared"
SEEDS = [("noodles.jpg", 6, "Noodles-Pasta"), ("test_image.jpeg", 10, "vegetable_fruit")]
MISFILED = (3, "Egg")  # class index, folder: gets the first three noodle crops


def fail(msg):
    print(f"make_eval_set: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def crop(im, fx0, fy0, fx1, fy1):
    w, h = im.size
    return im.crop((int(fx0 * w), int(fy0 * h), int(fx1 * w), int(fy1 * h)))


def scale(im, f):
    w, h = im.size
    return im.resize((max(8, int(w * f)), max(8, int(h * f))), Image.BICUBIC)


def rotate(im, deg):
    return im.rotate(deg, resample=Image.BICUBIC, expand=False, fillcolor=(128, 128, 128))


def variants(im):
    """(name, image, format, JPEG quality): 18 deterministic variants of one photo."""
    return [
        ("orig_q95", im, "JPEG", 95),
        ("hflip", ImageOps.mirror(im), "JPEG", 90),
        ("vflip", ImageOps.flip(im), "JPEG", 90),
        ("crop_center80", crop(im, 0.1, 0.1, 0.9, 0.9), "JPEG", 90),
        ("crop_topleft70", crop(im, 0.0, 0.0, 0.7, 0.7), "JPEG", 90),
        ("crop_botright70", crop(im, 0.3, 0.3, 1.0, 1.0), "JPEG", 90),
        ("crop_strip", crop(im, 0.0, 0.25, 1.0, 0.75), "JPEG", 90),
        ("rot_p8", rotate(im, 8), "JPEG", 90),
        ("rot_m12", rotate(im, -12), "JPEG", 90),
        ("rot_90", im.transpose(Image.ROTATE_90), "JPEG", 90),
        ("scale50", scale(im, 0.5), "JPEG", 90),
        ("scale20", scale(im, 0.2), "JPEG", 90),
        ("q10", im, "JPEG", 10),
        ("q30", im, "JPEG", 30),
        ("q60", im, "JPEG", 60),
        ("grey", ImageOps.grayscale(im).convert("RGB"), "JPEG", 85),
        ("dark", ImageEnhance.Brightness(im).enhance(0.6), "JPEG", 85),
        ("png", scale(im, 0.6), "PNG", None),
    ]


def encode(im, fmt, quality):
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.save(buf, "JPEG", quality=quality)
    else:
        im.save(buf, "PNG")
    return buf.getvalue()


def main():
    if len(sys.argv) != 2:
        fail("usage: make_eval_set.py OUTDIR")
    out = sys.argv[1]
    folders, flat = os.path.join(out, "folders"), os.path.join(out, "flat")
    for d in (folders, flat):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    manifest, counters = [], {}

    def put(data, cls, folder, stem, ext):
        os.makedirs(os.path.join(folders, folder), exist_ok=True)
        fpath = os.path.join(folders, folder, f"{stem}.{ext}")
        n = counters.get(cls, 0)
        counters[cls] = n + 1
        qpath = os.path.join(flat, f"{cls}_{n}.{ext}")
        for p in (fpath, qpath):
            with open(p, "wb") as f:
                f.write(data)
        manifest.append({"folders_path": fpath, "flat_path": qpath, "true": cls})

    for seed, cls, folder in SEEDS:
        src = os.path.join(SHARED, "images", "seed", seed)
        if not os.path.isfile(src):
            fail(f"missing seed photo {src} (set MORSEL_SHARED to the shared folder)")
        im = Image.open(src).convert("RGB")
        for i, (name, v, fmt, q) in enumerate(variants(im)):
            ext = "png" if fmt == "PNG" else ("JPEG" if i % 5 == 4 else "jpg")  # mixed case too
            put(encode(v, fmt, q), cls, folder, f"{os.path.splitext(seed)[0]}_{name}", ext)
        if cls == 6:
            for j, box in enumerate([(0, 0, 0.5, 0.5), (0.5, 0, 1, 0.5), (0.25, 0.25, 0.75, 0.75)]):
                put(encode(crop(im, *box), "JPEG", 88), MISFILED[0], MISFILED[1],
                    f"misfiled_noodles_{j}", "jpg")

    # The unreadable-image path, the no-class path, and files that are not images.
    corrupt = b"\xff\xd8\xff\xe0 this is not really a JPEG file " * 8
    with open(os.path.join(folders, "Noodles-Pasta", "zz_corrupt.jpg"), "wb") as f:
        f.write(corrupt)
    with open(os.path.join(flat, "6_999.jpg"), "wb") as f:
        f.write(corrupt)
    shutil.copyfile(manifest[0]["flat_path"], os.path.join(flat, "IMG_0001.jpg"))
    with open(os.path.join(folders, "Noodles-Pasta", "notes.txt"), "w") as f:
        f.write("not an image; morsel eval ignores it\n")

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"images": manifest,
                   "corrupt": [os.path.join(folders, "Noodles-Pasta", "zz_corrupt.jpg"),
                               os.path.join(flat, "6_999.jpg")],
                   "unlabelled": [os.path.join(flat, "IMG_0001.jpg")]}, f, indent=1)
    print(f"make_eval_set: {len(manifest)} images in {folders} and {flat}")


if __name__ == "__main__":
    main()
