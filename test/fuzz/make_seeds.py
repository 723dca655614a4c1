#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made from real files at run time (never stored in the repo):

  fuzz_model     the suite's tiny.morsel (every op type)
  fuzz_image     the image fixtures of gen_image_fixtures.py up to 64 KiB (odd PNG/JPEG kinds),
                 and the seed photos re-encoded small by Pillow: baseline, progressive, grey,
                 EXIF-rotated JPEG; RGB, palette, grey+alpha, 16-bit, interlaced PNG
  fuzz_http      requests to morsel-serve carrying those images: multipart /predict and
                 /v1/classify, raw /v1/classify?k=, TF-Serving JSON with base64, and the GET routes
  fuzz_exporter  TF.js model.json documents holding the Keras configs of the real models in
                 $MORSEL_SHARED/models/real (Keras 2 .h5 and Keras 3 .keras), with a weights
                 manifest naming the shard fuzz_exporter.py provides

    python make_seeds.py FIXTURES OUTDIR
"""
import base64
import glob
import io
import json
import os
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("MORSEL_SHARED") or os.path.join(os.path.dirname(ROOT), "shared")


def put(outdir, name, data):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)


def encoded_photos():
    out = {}
    for p in sorted(glob.glob(os.path.join(SHARED, "images", "seed", "*.jp*g"))):
        stem = os.path.splitext(os.path.basename(p))[0]
        im = Image.open(p).convert("RGB")
        im.thumbnail((48, 40))

        def enc(img, fmt, **kw):
            b = io.BytesIO()
            img.save(b, fmt, **kw)
            return b.getvalue()
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation: rotate 90
        out[f"{stem}.jpg"] = enc(im, "JPEG", quality=80)
        out[f"{stem}_prog.jpg"] = enc(im, "JPEG", quality=60, progressive=True)
        out[f"{stem}_grey.jpg"] = enc(im.convert("L"), "JPEG")
        out[f"{stem}_exif6.jpg"] = enc(im, "JPEG", exif=exif.tobytes())
        out[f"{stem}.png"] = enc(im, "PNG")
        out[f"{stem}_p.png"] = enc(im.quantize(16), "PNG")
        out[f"{stem}_la.png"] = enc(im.convert("LA"), "PNG")
        out[f"{stem}_i16.png"] = enc(im.convert("I;16"), "PNG")
        out[f"{stem}_opt.png"] = enc(im, "PNG", optimize=True)
    return out


def image_seeds(fixtures, outdir):
    os.makedirs(outdir, exist_ok=True)
    for p in glob.glob(os.path.join(fixtures, "images", "*")):
        if p.endswith((".jpg", ".jpeg", ".png")) and os.path.getsize(p) <= 65536:
            with open(p, "rb") as f:
                put(outdir, os.path.basename(p), f.read())
    photos = encoded_photos()
    for name, data in photos.items():
        put(outdir, name, data)
    return photos


def http_seeds(photos, outdir):
    os.makedirs(outdir, exist_ok=True)
    img = photos[sorted(photos)[0]]
    png = next(v for k, v in sorted(photos.items()) if k.endswith(".png"))
    b = "XyZ123"
    part = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + img + f"\r\n--{b}--\r\n".encode()
    mp = f"multipart/form-data; boundary={b}"
    tfs = json.dumps({"instances": [{"b64": base64.b64encode(img).decode()},
                                    {"image": {"b64": base64.urlsafe_b64encode(png).decode()
                                               .rstrip("=")}}]}).encode()
    reqs = {
        "predict": ("POST /predict", mp, part),
        "classify_mp": ("POST /v1/classify?k=2", mp, part),
        "classify_raw": ("POST /v1/classify?k=3", "image/png", png),
        "tfs_predict": ("POST /v1/models/tiny:predict", "application/json", tfs),
        "tfs_status": ("GET /v1/models/tiny", "", b""),
        "tfs_meta": ("GET /v1/models/tiny/metadata", "", b""),
        "index": ("GET /", "", b""),
        "health": ("HEAD /healthz", "", b""),
        "ready": ("GET /readyz", "", b""),
        "metrics": ("GET /metrics", "", b""),
        "test": ("GET /test", "", b""),
    }
    for name, (line, ct, body) in reqs.items():
        head = f"{line} HTTP/1.1\r\nHost: localhost\r\n"
        if ct:
            head += f"Content-Type: {ct}\r\nContent-Length: {len(body)}\r\n"
        put(outdir, name, head.encode() + b"\r\n" + body)


def exporter_seeds(outdir):
    """The exporter's own reader and weight assignment give each real model's config and weight
    shapes; the seed is that config as a TF.js layers model.json."""
    sys.path.insert(0, os.path.join(ROOT, "weights"))
    from morsel_exporter import containers, graph, weights
    os.makedirs(outdir, exist_ok=True)
    files = sorted(glob.glob(os.path.join(SHARED, "models", "real", "*", "*.h5")) +
                   glob.glob(os.path.join(SHARED, "models", "real", "*", "*.keras")))
    n = 0
    for p in files:
        try:
            src = containers.read(p)
            tree = graph.parse_tree(src.model_config)
            weights.assign(tree, src)
        except Exception as e:  # a model the exporter cannot read is no seed
            print(f"make_seeds: {p}: skipped ({e})", file=sys.stderr)
            continue
        manifest = []
        for leaf in tree.walk():
            for role, arr in (getattr(leaf, "weights", None) or {}).items():
                manifest.append({"name": f"{leaf.name}/{role}", "shape": list(arr.shape),
                                 "dtype": "float32"})
        doc = {"format": "layers-model", "generatedBy": "morsel fuzz seeds",
               "modelTopology": {"keras_version": src.keras_version,
                                 "model_config": src.model_config},
               "weightsManifest": [{"paths": ["w.bin"], "weights": manifest}]}
        data = json.dumps(doc).encode()
        if len(data) > 65536:
            continue  # the MobileNetV2 configs: too slow to mutate, their layers are covered
        stem = os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p).replace(".", "_")
        put(outdir, stem + ".json", data)
        n += 1
    if n == 0:
        sys.exit("make_seeds: FAIL no real model yields an exporter seed")


def main():
    fixtures, out = sys.argv[1], sys.argv[2]
    tiny = os.path.join(fixtures, "tiny.morsel")
    os.makedirs(os.path.join(out, "fuzz_model"), exist_ok=True)
    with open(tiny, "rb") as f:
        put(os.path.join(out, "fuzz_model"), "tiny.morsel", f.read())
    photos = image_seeds(fixtures, os.path.join(out, "fuzz_image"))
    http_seeds(photos, os.path.join(out, "fuzz_http"))
    exporter_seeds(os.path.join(out, "fuzz_exporter"))
    for t in ("fuzz_model", "fuzz_image", "fuzz_http", "fuzz_exporter"):
        print(f"make_seeds: {t}: {len(os.listdir(os.path.join(out, t)))} seeds")


if __name__ == "__main__":
    main()
