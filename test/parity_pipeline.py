#!/usr/bin/env python3
"""Pipeline parity: the user's Python pipeline against `morsel classify` on image files.

Python (the oracle, as the users write it):
    Image.open(f).convert('RGB') -> resize((224, 224), F) or ImageOps.fit(img, (224, 224), F)
    -> x/255 (unit) | keras.applications.imagenet_utils.preprocess_input(x, mode='tf'|'caffe'|
       'torch') | x (raw) -> the Keras model
Morsel:
    morsel classify --json --top <classes> --model M --resize F --crop C --preprocess P IMAGES...

Models:
  nsfwjs     the shipped default weights/nsfwjs_mobilenet_v2.morsel (made by setup.sh); the
             Keras reference is rebuilt from its TF.js model.json with the exporter's own loader
             (weights/morsel_exporter: containers/graph/weights + selftest's config rebuild).
  food11     MobileNetV2 (keras.applications, weights=None, 224x224, include_top=False) + the
             seeds' Food-11 head (GAP -> Dense 1024 relu -> BN -> Dropout -> Dense 512 relu -> BN
             -> Dropout -> Dense 256 relu -> BN -> Dropout -> Dense 11 softmax). Every BN gets
             random gamma/beta and moving mean/variance, set relative to the statistics of its
             real input on photos (so that the network's output depends on the image), the first
             BN per preprocessing mode (one .keras per mode), and the last Dense is scaled so that
             the probabilities are far from uniform (printed). Saved as .keras, exported per mode.
  food11-tm  the real Food-11 Teachable Machine model ($MORSEL_FIXTURES/food11.morsel, else
             exported here from $MORSEL_SHARED/models/real/food11-tm-mobilenetv2), loaded by
             tf_keras: a trained network on top of the two synthetic-weight ones.

Every (filter x crop x preprocess) row must agree within max |Δprob| <= 1e-4 on every image and
pick the same top-1. Images: the seed photos and generated ones with odd sizes and modes. The
"sens." column is the largest change of a probability Keras itself shows when only the resize
filter changes (nearest <-> bilinear) on the same images: it must be >= 100x the tolerance,
otherwise the row would be vacuous.

Also: `--exif` against ImageOps.exif_transpose; `--fast-jpeg` against the same pipeline with
Image.draft('RGB', (224, 224)) (which is what it computes), plus the probability change it
causes against the exact pipeline and its decode+preprocess speedup.

    python test/parity_pipeline.py
Ends with "N passed, M failed"; exits non-zero on any failure. Needs MORSEL_BIN.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import harness  # noqa: E402,F401  (sys.path and environment)
from harness import HERE, ROOT  # noqa: E402,F401

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import npref  # noqa: E402

warnings.filterwarnings("ignore", message="Palette images with Transparency")

TOL = 1e-4
SENS_MIN = 100 * TOL
SIZE = 224
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
CROPS = {"none": False, "center": True}
MODES = ["unit", "tf", "caffe", "torch", "raw"]
SHARED = harness.SHARED
ORIENT = 0x0112

rng = np.random.default_rng(20240611)


def fail(msg):
    print(f"parity_pipeline: FAIL: {msg}")
    print("0 passed, 1 failed")
    sys.exit(1)


# ---- the Python pipeline -------------------------------------------------------------------

def py_pixels(path, filt, crop, exif=False, draft=False):
    """uint8 [224, 224, 3]: Pillow open -> (draft) -> (exif_transpose) -> RGB -> resize/fit."""
    with Image.open(path) as im:
        if draft:
            im.draft("RGB", (SIZE, SIZE))
        if exif:
            im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        f = FILTERS[filt]
        im = ImageOps.fit(im, (SIZE, SIZE), f) if crop else im.resize((SIZE, SIZE), f)
        return np.asarray(im, dtype=np.uint8)


def py_scale(px, mode):
    from keras.applications import imagenet_utils
    x = px.astype(np.float32)
    if mode == "unit":
        return x / 255.0
    if mode == "raw":
        return x
    return imagenet_utils.preprocess_input(x, mode=mode)


def keras_predict(model, x):
    out = [np.asarray(model(x[i:i + 24], training=False), dtype=np.float64)
           for i in range(0, len(x), 24)]
    return np.concatenate(out)


# ---- Morsel ----------------------------------------------------------------------------------

def morsel_classify(binary, model, n_classes, paths, flags):
    """probabilities [len(paths), n_classes] and per-image timings (dicts)."""
    cmd = [binary, "classify", "--json", "--top", str(n_classes), "--model", model, *flags,
           "--", *paths]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode < 0:
        raise RuntimeError(f"morsel classify crashed (signal {-r.returncode}): {r.stderr}")
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    if r.returncode != 0 or len(lines) != len(paths):
        raise RuntimeError(f"morsel classify exit {r.returncode}, {len(lines)}/{len(paths)} "
                           f"results: {r.stderr.strip()[:500]}")
    probs = np.zeros((len(paths), n_classes))
    for i, obj in enumerate(lines):
        if obj["image"] != paths[i]:
            raise RuntimeError(f"result {i} is for {obj['image']}, expected {paths[i]}")
        for t in obj["top"]:
            probs[i, t["index"]] = t["probability"]
    return probs, [obj["timings_ms"] for obj in lines]


# ---- images ----------------------------------------------------------------------------------

def make_images(tmp):
    """Generated test images (odd sizes, every decoder path), derived from the seed photos."""
    from gen_image_fixtures import encode_png
    seed = os.path.join(SHARED, "images", "seed")
    noodles = Image.open(os.path.join(seed, "noodles.jpg")).convert("RGB")
    parsley = Image.open(os.path.join(seed, "test_image.jpeg")).convert("RGB")
    out = []

    def save(name, im, **kw):
        p = os.path.join(tmp, name)
        im.save(p, **kw)
        out.append(p)

    bic = Image.Resampling.BICUBIC
    save("up_37x23.jpg", noodles.resize((37, 23), bic), quality=92)
    save("odd_641x479.jpg", parsley.crop((100, 200, 1180, 1000)).resize((641, 479), bic),
         quality=90)
    save("strip_1000x97.jpg", noodles.crop((0, 150, 500, 199)).resize((1000, 97), bic),
         quality=88)
    save("tall_97x1000.png", parsley.crop((500, 0, 600, 1280)).resize((97, 1000), bic))
    rgba = noodles.resize((320, 240), bic).convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (240, 320), dtype=np.uint8)))
    save("rgba_320x240.png", rgba)
    save("gray_300x200.jpg", parsley.resize((300, 200), bic).convert("L"), quality=90)
    save("palette_250x190.png", noodles.resize((250, 190), bic).quantize(256), transparency=0)
    la = noodles.resize((64, 48), bic).convert("LA")
    save("la_64x48.png", la)
    save("cmyk_200x150.jpg", noodles.resize((200, 150), bic).convert("CMYK"), quality=90)
    save("prog_333x222.jpg", parsley.resize((333, 222), bic), quality=85, progressive=True)
    save("tiny_3x2.png", noodles.resize((3, 2), bic))
    # 16-bit: RGB (Pillow keeps the high byte) and grey (Pillow's I;16 -> RGB clips at 255)
    a = np.asarray(parsley.resize((150, 113), bic), dtype=np.int64) * 257
    a = np.minimum(a + rng.integers(0, 257, a.shape), 65535).astype(np.uint16)
    p = os.path.join(tmp, "rgb16_150x113.png")
    with open(p, "wb") as f:
        f.write(encode_png(a, 2, 16))
    out.append(p)
    g = np.asarray(noodles.resize((120, 90), bic).convert("L"), dtype=np.uint16) + 60
    p = os.path.join(tmp, "gray16_120x90.png")
    with open(p, "wb") as f:
        f.write(encode_png(g, 0, 16))
    out.append(p)
    p = os.path.join(tmp, "interlaced_199x149.png")
    with open(p, "wb") as f:
        f.write(encode_png(np.asarray(parsley.resize((199, 149), bic)), 2, 8, interlace=True))
    out.append(p)
    # EXIF orientation 6 / 3 / 8: ignored by default, like PIL's Image.open
    exif_paths = []
    for o, src in ((6, noodles), (3, parsley.resize((400, 300), bic)), (8, noodles)):
        ex = Image.Exif()
        ex[ORIENT] = o
        name = f"exif{o}_{src.width}x{src.height}.jpg"
        save(name, src, quality=90, exif=ex)
        exif_paths.append(out[-1])
    return out, exif_paths


def make_big_jpeg(tmp):
    """A camera-size 4000x3000 JPEG (the noodles photo upscaled, with sensor-like noise)."""
    with Image.open(os.path.join(SHARED, "images", "seed", "noodles.jpg")) as im:
        big = np.asarray(im.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC),
                         dtype=np.int16)
    big = np.clip(big + rng.normal(0, 3, big.shape), 0, 255).astype(np.uint8)
    p = os.path.join(tmp, "camera_4000x3000.jpg")
    Image.fromarray(big).save(p, quality=90)
    return p


# ---- models ----------------------------------------------------------------------------------

class Case:
    """A model under test: a Keras callable per mode and a .morsel file per mode."""

    def __init__(self, name, n_classes, modes, keras_for, file_for, stored):
        self.name, self.n_classes, self.modes = name, n_classes, modes
        self.keras_for, self.file_for, self.stored = keras_for, file_for, stored


def load_nsfwjs():
    model_file = os.path.join(ROOT, "weights", "nsfwjs_mobilenet_v2.morsel")
    if not os.path.isfile(model_file):
        fail(f"{model_file} is missing: `bash setup.sh` (weights/get_default_model.sh) makes it")
    tfjs = os.path.join(ROOT, ".deps", "nsfwjs-4.4.0-mobilenet_v2-tfjs", "model.json")
    if not os.path.isfile(tfjs):
        fail(f"{tfjs} is missing: weights/get_default_model.sh downloads it (the Keras "
             "reference is rebuilt from it)")
    from morsel_exporter import containers, graph, selftest, weights
    src = containers.read(tfjs)
    tree = graph.parse_tree(src.model_config)
    weights.assign(tree, src)
    # selftest's own loader: the Keras model rebuilt from the TF.js topology + the weights the
    # exporter resolved (dequantized) -- the same reference `morsel verify` was made with. The
    # model itself when the helper is there (batched calls), else its one-image callable.
    build = getattr(selftest, "_build_from_config", None)
    if build is not None:
        kmodel, how = build(src, tree, "the TF.js topology")
    else:
        run, how = selftest.load_reference(src, tree)

        def kmodel(x, training=False):
            return np.stack([run(xi) for xi in x])
    print(f"nsfwjs: {model_file}; Keras reference: {how}")
    return Case("nsfwjs", 5, MODES, lambda mode: kmodel, lambda mode: model_file,
                ("bilinear", "none", "unit"))


def build_food11(tmp, cal_pixels):
    """The synthetic-weight MobileNetV2 + Food-11 head, one .keras/.morsel per mode."""
    import keras
    keras.utils.set_random_seed(20240611)
    L = keras.layers
    base = keras.applications.MobileNetV2(weights=None, input_shape=(SIZE, SIZE, 3),
                                          include_top=False)
    x = L.GlobalAveragePooling2D(name="gap")(base.output)
    for i, units in enumerate((1024, 512, 256), 1):
        x = L.Dense(units, activation="relu", name=f"fc{i}")(x)
        x = L.BatchNormalization(name=f"fc{i}_bn")(x)
        x = L.Dropout(0.5, name=f"fc{i}_drop")(x)
    out = L.Dense(11, activation="softmax", name="predictions")(x)
    model = keras.Model(base.input, out, name="mobilenetv2_food11")
    bns = [l for l in model.layers if isinstance(l, L.BatchNormalization)]
    # random non-trivial BN parameters, relative to each BN's real input statistics (mean mu,
    # deviation sd): moving mean = mu + U(-0.5, 0.5) sd, moving variance = sd^2 U(0.5, 2),
    # gamma U(0.5, 1.5), beta U(-0.5, 0.5). Plain random statistics (as in parity_mobilenetv2)
    # make the output independent of the image: a pipeline comparison on that proves nothing.
    draws = {l.name: [rng.uniform(lo, hi, l.weights[0].shape[0]).astype(np.float32)
                      for lo, hi in ((0.5, 1.5), (-0.5, 0.5), (-0.5, 0.5), (0.5, 2.0))]
             for l in bns}

    def bn_weights(layer, a):
        axes = tuple(range(a.ndim - 1))
        mu, sd = a.mean(axes), a.std(axes)
        # a channel is normalized by at least 5x its layer's RMS deviation: dividing nearly
        # constant channels by their own tiny deviation makes the network chaotic (float32
        # rounding would then move its probabilities by more than the tolerance; with 1x, a
        # 1e-5 input perturbation moves them by ~1e-3, with 5x by ~5e-5)
        sd = np.sqrt(sd * sd + 25.0 * float((sd * sd).mean())) + 1e-3
        g, b, u, v = draws[layer.name]
        return [g, b, (mu + u * sd).astype(np.float32), (sd * sd * v).astype(np.float32)]

    # one forward pass layer by layer, calibrating each BN on its actual input (mode tf)
    values = {id(model.inputs[0]): py_scale(cal_pixels, "tf")}
    for layer in model.layers[1:]:
        node = layer._inbound_nodes[0]
        ins = [values[id(t)] for t in node.input_tensors]
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights(bn_weights(layer, np.asarray(ins[0])))
        values[id(node.output_tensors[0])] = layer(ins if len(ins) > 1 else ins[0],
                                                   training=False)
    # the first BN per preprocessing mode, so each mode's network sees comparable activations
    conv1 = keras.Model(model.inputs[0], bns[0].input)
    first_bn = {m: bn_weights(bns[0], np.asarray(conv1(py_scale(cal_pixels, m),
                                                         training=False))) for m in MODES}
    # the last Dense scaled to logits of standard deviation 2.5: far from uniform
    bns[0].set_weights(first_bn["tf"])
    pre = keras.Model(model.inputs[0], model.get_layer("predictions").input)
    h = np.asarray(pre(py_scale(cal_pixels, "tf"), training=False))
    w, b = model.get_layer("predictions").get_weights()
    model.get_layer("predictions").set_weights([w * np.float32(2.5 / (h @ w).std()), b])

    files = {}
    procs = []
    export = os.path.join(ROOT, "weights", "morsel_export.py")
    for m in MODES + ["stored"]:
        bns[0].set_weights(first_bn["caffe" if m == "stored" else m])
        path = os.path.join(tmp, f"food11_{m}.keras")
        model.save(path)
        files[m] = path[:-6] + ".morsel"
        extra = (["--preprocess", "caffe", "--resize", "bicubic", "--crop", "center"]
                 if m == "stored" else ["--preprocess", m])
        procs.append((m, subprocess.Popen(
            [sys.executable, export, path, "-o", files[m], "--no-selftest", "-q",
             "--labels", os.path.join(SHARED, "models", "real", "food11-tm-mobilenetv2",
                                      "labels.txt"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for m, p in procs:
        text = p.communicate()[0]
        if p.returncode != 0:
            fail(f"export of food11_{m}.keras failed: {text}")
    n_bn = len(bns)
    print(f"food11: MobileNetV2 + Food-11 head, {model.count_params():,} parameters, {n_bn} "
          f"BatchNormalization layers randomized; saved and exported per mode: "
          f"{', '.join(MODES)} (+ one with caffe/bicubic/centre stored in the file)")

    def keras_for(mode):
        bns[0].set_weights(first_bn["caffe" if mode == "stored" else mode])
        return model

    return Case("food11", 11, MODES, keras_for, lambda mode: files[mode],
                ("bicubic", "center", "caffe"))


def load_food11_tm(tmp):
    src = os.path.join(SHARED, "models", "real", "food11-tm-mobilenetv2", "keras_model.h5")
    if not os.path.isfile(src):
        fail(f"{src} is missing (MORSEL_SHARED={SHARED!r})")
    path = os.path.join(os.environ.get("MORSEL_FIXTURES", ""), "food11.morsel")
    if not os.path.isfile(path):
        path = os.path.join(tmp, "food11_tm.morsel")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "weights", "morsel_export.py"),
                            src, "-o", path, "--no-selftest", "-q", "--labels",
                            os.path.join(os.path.dirname(src), "labels.txt"), "--preprocess",
                            "tf", "--resize", "lanczos", "--crop", "center"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"export of {src} failed: {r.stderr}")
    import tf_keras
    kmodel = tf_keras.models.load_model(src, compile=False)
    print(f"food11-tm: {path}; Keras reference: tf_keras {tf_keras.__version__} loads {src}")
    return Case("food11-tm", 11, ["tf"], lambda mode: kmodel, lambda mode: path,
                ("lanczos", "center", "tf"))


# ---- the table -------------------------------------------------------------------------------

class Row:
    def __init__(self, model, filt, crop, mode, ref, got, sens=None, note=""):
        self.model, self.filt, self.crop, self.mode, self.note = model, filt, crop, mode, note
        self.n = len(ref)
        self.dprob = float(np.abs(ref - got).max())
        self.top1 = int((ref.argmax(1) == got.argmax(1)).sum())
        self.sens = sens
        self.p1 = ref.max(1)
        self.maxp = float(self.p1.mean())
        self.ok = self.dprob <= TOL and self.top1 == self.n and (sens is None or
                                                                 sens >= SENS_MIN)

    def line(self):
        sens = "-" if self.sens is None else f"{self.sens:.3f}"
        return (f"{self.model:<10} {self.filt:<9} {self.crop:<7} {self.mode:<7} {self.n:>6} "
                f"{self.dprob:>11.2e} {self.top1:>4}/{self.n:<3} {self.maxp:>7.3f} {sens:>7}  "
                f"{'ok' if self.ok else 'FAIL'}{'  ' + self.note if self.note else ''}")


HEADER = (f"{'model':<10} {'filter':<9} {'crop':<7} {'preproc':<7} {'images':>6} "
          f"{'max|Δprob|':>11} {'top-1':>8} {'mean p1':>7} {'sens.':>7}  verdict")


def main():
    binary = npref.morsel_bin()
    t_start = time.time()
    seeds = sorted(glob.glob(os.path.join(SHARED, "images", "seed", "*.jpg")) +
                   glob.glob(os.path.join(SHARED, "images", "seed", "*.jpeg")))
    if not seeds:
        fail(f"no seed photos in {SHARED}/images/seed (set MORSEL_SHARED)")
    with tempfile.TemporaryDirectory(prefix="morsel_parity_pipeline_") as tmp:
        return run(binary, t_start, seeds, tmp)


def run(binary, t_start, seeds, tmp):
    generated, exif_images = make_images(tmp)
    images = seeds + generated
    print(f"{len(images)} images: {len(seeds)} seed photos + {len(generated)} generated "
          f"({', '.join(os.path.basename(p) for p in generated)})")

    pixels = {(f, c): np.stack([py_pixels(p, f, CROPS[c]) for p in images])
              for f in FILTERS for c in CROPS}
    cal = np.stack([pixels[("bicubic", "none")][i] for i in range(len(seeds))] +
                   [pixels[("bicubic", "center")][images.index(p)] for p in generated[:6]])
    cases = [load_nsfwjs(), build_food11(tmp, cal), load_food11_tm(tmp)]
    print(f"setup {time.time() - t_start:.1f} s\n")

    rows = []
    pool = ThreadPoolExecutor(max_workers=2)
    for case in cases:
        # all Morsel runs of this model in the background while Keras computes its references
        jobs = {}
        for f in FILTERS:
            for c in CROPS:
                for m in case.modes:
                    flags = ["--resize", f, "--crop", c, "--preprocess", m]
                    jobs[(f, c, m)] = pool.submit(morsel_classify, binary, case.file_for(m),
                                                  case.n_classes, images, flags)
        jobs["stored"] = pool.submit(morsel_classify, binary, case.file_for("stored"),
                                     case.n_classes, images, [])
        refs = {}
        for m in case.modes:
            km = case.keras_for(m)
            for f in FILTERS:
                for c in CROPS:
                    refs[(f, c, m)] = keras_predict(km, py_scale(pixels[(f, c)], m))
        for m in case.modes:
            for c in CROPS:
                base = refs[("bilinear", c, m)]
                sens = float(np.abs(refs[("nearest", c, m)] - base).max())
                for f in FILTERS:
                    try:
                        got = jobs[(f, c, m)].result()[0]
                    except RuntimeError as e:
                        fail(f"{case.name} {f}/{c}/{m}: {e}")
                    rows.append(Row(case.name, f, c, m, refs[(f, c, m)], got, sens))
        f, c, m = case.stored
        ref = keras_predict(case.keras_for("stored"), py_scale(pixels[(f, c)], m))
        rows.append(Row(case.name, f, c, m, ref, jobs["stored"].result()[0],
                        note="(no overrides: the file's own preprocessing)"))
    print(f"pipeline parity ({len(images)} images each; tolerance {TOL:g}; sens. must be >= "
          f"{SENS_MIN:g}):")
    print(HEADER)
    for r in rows:
        print(r.line())
    for case in cases[:2]:
        mp = [r.maxp for r in rows if r.model == case.name]
        p1 = np.concatenate([r.p1 for r in rows if r.model == case.name])
        print(f"{case.name}: top-1 probability (Keras) over all rows and images: min "
              f"{p1.min():.3f}, median {np.median(p1):.3f}, max {p1.max():.3f}; mean per row "
              f"{min(mp):.3f} .. {max(mp):.3f} (uniform would be {1 / case.n_classes:.3f})")

    # EXIF orientation: --exif against ImageOps.exif_transpose
    print("\n--exif against ImageOps.exif_transpose (images with orientation 6, 3, 8):")
    print(HEADER)
    exif_rows = []
    for case in cases:
        for f, c, m in (("bilinear", "none", case.modes[0]), ("lanczos", "center", "tf")):
            px = np.stack([py_pixels(p, f, CROPS[c], exif=True) for p in exif_images])
            ref = keras_predict(case.keras_for(m), py_scale(px, m))
            got = morsel_classify(binary, case.file_for(m), case.n_classes, exif_images,
                                  ["--resize", f, "--crop", c, "--preprocess", m, "--exif"])[0]
            plain = keras_predict(case.keras_for(m), py_scale(np.stack(
                [py_pixels(p, f, CROPS[c]) for p in exif_images]), m))
            exif_rows.append(Row(case.name, f, c, m, ref, got, note=f"(vs EXIF ignored: "
                                 f"max |Δprob| {np.abs(ref - plain).max():.3f})"))
            print(exif_rows[-1].line())
    rows += exif_rows

    # --fast-jpeg: parity with the draft() pipeline, change against the exact pipeline, speed
    big = make_big_jpeg(tmp)
    jpegs = [p for p in images if p.endswith((".jpg", ".jpeg"))] + [big]
    print(f"\n--fast-jpeg against Pillow's Image.draft('RGB', (224, 224)) pipeline, on "
          f"{len(jpegs)} JPEGs (incl. {os.path.basename(big)}); 'vs exact' = the probability "
          "change the fast mode causes against the Pillow-exact pipeline:")
    print(HEADER)
    fast_rows = []
    for case in cases:
        f, c, m = case.stored
        km = case.keras_for("stored")
        exact = keras_predict(km, py_scale(np.stack([py_pixels(p, f, CROPS[c])
                                                     for p in jpegs]), m))
        ref = keras_predict(km, py_scale(np.stack([py_pixels(p, f, CROPS[c], draft=True)
                                                   for p in jpegs]), m))
        got = morsel_classify(binary, case.file_for("stored"), case.n_classes, jpegs,
                              ["--fast-jpeg"])[0]
        fast_rows.append(Row(case.name, f, c, m, ref, got,
                             note=f"(vs exact: max |Δprob| {np.abs(got - exact).max():.2e}, "
                                  f"mean {np.abs(got - exact).max(1).mean():.2e}, "
                                  f"top-1 same on {int((got.argmax(1) == exact.argmax(1)).sum())}"
                                  f"/{len(jpegs)})"))
        print(fast_rows[-1].line())
    rows += fast_rows

    # speed: decode + preprocess from classify's own timings, median of 7 runs per image
    print("\n--fast-jpeg speed (morsel classify timings, decode + preprocess, median of 7):")
    tm = cases[2]
    for p in (os.path.join(SHARED, "images", "seed", "test_image.jpeg"), big):
        if not os.path.isfile(p):
            continue
        with Image.open(p) as im:
            size = f"{im.width}x{im.height}"
        res = {}
        for flags in ([], ["--fast-jpeg"]):
            t = morsel_classify(binary, tm.file_for("tf"), tm.n_classes, [p] * 7, flags)[1]
            d = sorted(x["decode"] for x in t)[3]
            pp = sorted(x["preprocess"] for x in t)[3]
            res[bool(flags)] = (d, pp)
        (d0, p0), (d1, p1) = res[False], res[True]
        print(f"  {os.path.basename(p)} ({size}, {tm.name} lanczos + centre crop): exact "
              f"{d0:.1f} + {p0:.1f} = {d0 + p0:.1f} ms; fast {d1:.1f} + {p1:.1f} = "
              f"{d1 + p1:.1f} ms; speedup {(d0 + p0) / (d1 + p1):.1f}x")
    pool.shutdown()

    failed = [r for r in rows if not r.ok]
    for r in failed:
        print(f"FAILED: {r.line()}")
    print(f"\nparity_pipeline: {time.time() - t_start:.0f} s")
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
