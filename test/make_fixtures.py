#!/usr/bin/env python3
"""Writes the model fixtures the format/CLI tests use, each with its self-test vector:

  OUTDIR/food11.morsel  the real Food-11 Teachable Machine model,
                        $MORSEL_SHARED/models/real/food11-tm-mobilenetv2/keras_model.h5
                        (MORSEL_SHARED defaults to /work/shared), labels from its labels.txt,
                        preprocessing as Teachable Machine's own snippet does it: ImageOps.fit
                        centre crop with LANCZOS, x/127.5 - 1. Read in place, never copied.
  OUTDIR/tiny.morsel    a small Keras 3 model built here (fixed seed) using every op type and
                        most activations, a few KiB, so a test can afford to try every
                        truncation and many bit flips.

    python test/make_fixtures.py OUTDIR

Fails loudly (non-zero exit) when anything is missing.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("MORSEL_SOURCE_DIR") or os.path.dirname(HERE)
sys.path.insert(0, HERE)

import npref  # noqa: E402


def fail(msg):
    print(f"make_fixtures: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def build_tiny(path):
    """Every Morsel op type, folded and unfolded BatchNormalization, most activations."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as e:
        fail(f"keras is required to build tiny.morsel ({e})")
    import numpy as np
    keras.utils.set_random_seed(7)
    L = keras.layers
    i = keras.Input((12, 10, 3), name="image")
    x = L.Rescaling(1 / 127.5, offset=-1, name="scale")(i)
    x = L.Resizing(14, 11, name="resize")(x)            # RESIZE (format 1.1)
    x = L.CenterCrop(12, 10, name="center_crop")(x)     # CROP (format 1.1), back to 12x10
    x = L.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(x)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv")(x)
    x = L.BatchNormalization(name="conv_bn")(x)
    x = L.ReLU(6.0, name="conv_relu6")(x)
    x = L.Conv2D(8, 3, padding="same", groups=4, name="grouped")(x)  # GROUPED_CONV2D (1.2)
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    y = L.BatchNormalization(name="dw_bn")(y)
    y = L.LeakyReLU(0.1, name="dw_leaky")(y)
    z = L.SeparableConv2D(16, 3, padding="same", activation="elu", name="sep")(x)
    s = L.Add(name="add")([y, z])
    g = L.GlobalAveragePooling2D(keepdims=True, name="se_pool")(s)
    g = L.Conv2D(16, 1, activation="hard_sigmoid", name="se_gate")(g)
    s = L.Multiply(name="se_mul")([s, g])
    # EfficientNet's squeeze-and-excitation: reduce, excite, gate, project (+ residual add).
    e = L.GlobalAveragePooling2D(keepdims=True, name="se2_pool")(s)
    e = L.Conv2D(4, 1, activation="swish", name="se2_reduce")(e)
    e = L.Conv2D(16, 1, activation="sigmoid", name="se2_excite")(e)
    e = L.Multiply(name="se2_mul")([s, e])
    e = L.Conv2D(16, 1, name="se2_project")(e)
    s = L.Add(name="se2_add")([s, e])
    a = L.MaxPooling2D(2, padding="same", name="maxpool")(s)
    b = L.AveragePooling2D(3, strides=2, padding="same", name="avgpool")(s)
    c = L.Concatenate(name="concat")([a, b])
    c = L.Conv2D(8, 3, padding="valid", activation="gelu", name="conv_valid")(c)
    c = L.Activation("tanh", name="tanh")(c)
    f = L.Flatten(name="flatten")(c)
    f = L.Reshape((2, -1), name="reshape")(f)
    f = L.Dense(6, activation="swish", name="fc_rows")(f)
    f = L.Flatten(name="flatten2")(f)
    gm = L.GlobalMaxPooling2D(name="gmp")(s)
    u = L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1,
                          name="tconv")(x)                   # CONV2D_TRANSPOSE (1.2)
    u = L.GlobalAveragePooling2D(name="tconv_pool")(u)
    h = L.Concatenate(name="head_concat")([f, gm, u])
    h = L.LayerNormalization(name="head_ln")(h)              # LAYER_NORM (1.2)
    h = L.Dense(12, activation="sigmoid", name="fc")(h)
    h = L.BatchNormalization(name="fc_bn")(h)
    h = L.Dropout(0.2, name="drop")(h)
    out = L.Dense(5, activation="softmax", name="predictions")(h)
    model = keras.Model(i, out, name="tiny")
    rng = np.random.default_rng(7)
    for layer in model.layers:
        if isinstance(layer, L.LayerNormalization):
            layer.set_weights([rng.uniform(lo, hi, tuple(v.shape)).astype("float32")
                               for v, (lo, hi) in zip(layer.weights, [(0.5, 1.5), (-0.5, 0.5)])])
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights([rng.uniform(lo, hi, tuple(v.shape)).astype("float32")
                               for v, (lo, hi) in zip(layer.weights, [(0.5, 1.5), (-0.5, 0.5),
                                                                       (-0.5, 0.5), (0.5, 2.0)])])
    model.save(path)


def export(src, out, *args):
    cmd = [sys.executable, os.path.join(ROOT, "weights", "morsel_export.py"), src, "-o", out,
           *args]
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd)
    if r.returncode != 0:
        fail(f"exporter exited with {r.returncode}")
    m = npref.read(out)  # full structural validation
    if m.selftest is None:
        fail(f"{out} has no SELFTEST section (Keras could not load the source?)")
    return m


def main():
    if len(sys.argv) != 2:
        fail("usage: make_fixtures.py OUTDIR")
    outdir = sys.argv[1]
    shared = os.environ.get("MORSEL_SHARED", "/work/shared")
    src_dir = os.path.join(shared, "models", "real", "food11-tm-mobilenetv2")
    src = os.path.join(src_dir, "keras_model.h5")
    labels = os.path.join(src_dir, "labels.txt")
    for p in (src, labels):
        if not os.path.isfile(p):
            fail(f"{p} is missing (set MORSEL_SHARED to the shared data directory)")
    os.makedirs(outdir, exist_ok=True)
    out = os.path.join(outdir, "food11.morsel")
    m = export(src, out, "--labels", labels, "--name", "food11-tm-mobilenetv2", "--preprocess",
               "tf", "--resize", "lanczos", "--crop", "center")
    if len(m.labels) != 11 or m.labels[6] != "Noodles/Pasta":
        fail(f"unexpected labels {m.labels}")
    if (m.resize, m.crop, m.bgr) != (3, 1, 0):
        fail(f"unexpected preprocessing record resize={m.resize} crop={m.crop} bgr={m.bgr}")
    print(f"make_fixtures: wrote {out} ({os.path.getsize(out):,} bytes, {len(m.ops)} ops, "
          f"self-test of {m.selftest[0].size} inputs)")

    with tempfile.TemporaryDirectory(prefix="morsel_tiny_") as tmp:
        src = os.path.join(tmp, "tiny.keras")
        labels = os.path.join(tmp, "labels.txt")
        with open(labels, "w") as f:
            f.write("alpha\nbeta\ngamma\ndelta\nepsilon\n")
        build_tiny(src)
        out = os.path.join(outdir, "tiny.morsel")
        m = export(src, out, "--labels", labels, "--name", "tiny", "--preprocess", "raw",
                   "--license", "test fixture, public domain")
    types = {op["type"] for op in m.ops}
    missing = sorted(set(npref.OP_NAMES) - types)
    if missing:
        fail(f"tiny.morsel lacks op types {[npref.OP_NAMES[t] for t in missing]}")
    size = os.path.getsize(out)
    if size > 64 * 1024:
        fail(f"tiny.morsel is {size} bytes; it should stay small")
    print(f"make_fixtures: wrote {out} ({size:,} bytes, {len(m.ops)} ops, all "
          f"{len(types)} op types)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
