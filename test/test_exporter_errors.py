#!/usr/bin/env python3
"""The exporter refuses what it cannot export with a clean, specific message (no traceback,
non-zero exit, no output file): Lambda layers, unsupported layer classes, unsupported options,
truncated / random / non-Keras files, a label file of the wrong length.

The small models are built with Keras here (TensorFlow is a test dependency)."""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import harness  # noqa: E402,F401  (sys.path and environment)
from harness import HERE, ROOT  # noqa: E402,F401
EXPORTER = harness.EXPORTER

failures = []


def export(path, *extra):
    out = path + ".morsel"
    if os.path.exists(out):
        os.remove(out)
    r = subprocess.run([sys.executable, EXPORTER, path, "-o", out, "--no-selftest", *extra],
                       capture_output=True, text=True)
    return r, out


def expect_error(title, path, must_contain, *extra, must_not=(), check=None):
    r, out = export(path, *extra)
    msg = r.stderr.strip()
    problems = []
    if r.returncode == 0:
        problems.append("exit status 0")
    if "Traceback" in r.stderr or "Traceback" in r.stdout:
        problems.append("a Python traceback instead of a clean message")
    if os.path.exists(out):
        problems.append("an output file was written")
    for s in must_contain:
        if s.lower() not in msg.lower():
            problems.append(f"message lacks {s!r}")
    for s in must_not:
        if s.lower() in msg.lower():
            problems.append(f"message has {s!r}")
    if check is not None:
        problems += check(msg)
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    print(f"[{status}] {title}\n    exit {r.returncode}: {msg.splitlines()[0] if msg else '(no message)'}")
    if problems:
        print("    full stderr:\n" + "\n".join("      " + l for l in msg.splitlines()))
        failures.append(title)


def expect_export(title, path):
    r, out = export(path)
    if r.returncode != 0 or not os.path.exists(out):
        print(f"[FAIL] {title}: did not export:\n{r.stderr}")
        failures.append(title)
    else:
        print(f"[ok] {title}: exports")


def main():
    try:
        import keras
    except ImportError as e:
        print(f"FAIL: keras is required for this test ({e})")
        return 1
    L = keras.layers
    tmp = tempfile.mkdtemp(prefix="morsel_errors_")
    supported_sample = ["supported layer classes:", "Conv2D", "DepthwiseConv2D",
                        "BatchNormalization", "Dense"]

    # 1. Lambda, in both Keras 3 containers.
    i = keras.Input((16, 16, 3))
    x = L.Lambda(lambda t: t / 255.0, name="my_scaler")(i)
    x = L.Conv2D(4, 3)(x)
    x = L.GlobalAveragePooling2D()(x)
    m = keras.Model(i, L.Dense(2, activation="softmax")(x))
    for ext in (".keras", ".h5"):
        p = os.path.join(tmp, "lambda" + ext)
        m.save(p)
        expect_error(f"Lambda layer ({ext})", p,
                     ["'my_scaler'", "class Lambda", "rebuild", "Rescaling"] + supported_sample)

    # Every blocking layer named, with its reason; the supported list once, last, by kind.
    i = keras.Input((16, 16, 3))
    x = L.Lambda(lambda t: t / 255.0, name="first_lambda")(i)
    x = L.Conv2D(4, 3)(x)
    x = L.Lambda(lambda t: t * 2.0, name="second_lambda")(x)
    m = keras.Model(i, L.GlobalAveragePooling2D()(x))
    p = os.path.join(tmp, "two_lambdas.keras")
    m.save(p)

    def once_last(msg):
        lines = msg.splitlines()
        at = [n for n, l in enumerate(lines) if l.startswith("supported layer classes:")]
        if len(at) != 1:
            return [f"'supported layer classes:' appears {len(at)} times"]
        rest = lines[at[0] + 1:]
        if not rest or not all(l.startswith("  ") and ": " in l for l in rest):
            return ["the supported list is not last, or not grouped as '  kind: classes'"]
        return []
    expect_error("two Lambda layers", p, ["'first_lambda' (class Lambda)",
                                          "'second_lambda' (class Lambda)",
                                          "convolution and dense: ", "pooling: "],
                 check=once_last)

    # The --submodel hint: given for a base network wrapped by a head with a blocking layer,
    # not when the blocking layer sits inside the nested model.
    bi = keras.Input((16, 16, 3))
    bx = L.Conv2D(4, 3)(bi)
    bx = L.Conv2D(4, 3)(bx)
    base = keras.Model(bi, L.GlobalAveragePooling2D()(bx), name="base_net")
    i = keras.Input((16, 16, 3))
    x = L.Lambda(lambda t: t * 2.0, name="head_lambda")(base(i))
    m = keras.Model(i, L.Dense(2)(x))
    p = os.path.join(tmp, "wrapped.keras")
    m.save(p)
    expect_error("Lambda in the head of a wrapped base", p,
                 ["'head_lambda'", "--submodel", "'base_net'"], check=once_last)
    bi = keras.Input((16, 16, 3))
    bx = L.Lambda(lambda t: t * 2.0, name="inner_lambda")(bi)
    inner = keras.Model(bi, L.Conv2D(4, 3)(bx), name="stem")
    i = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3)(inner(i))
    m = keras.Model(i, L.Dense(2)(L.GlobalAveragePooling2D()(x)))
    p = os.path.join(tmp, "inner_block.keras")
    m.save(p)
    expect_error("Lambda inside a nested block", p, ["'inner_lambda'"],
                 must_not=["--submodel"], check=once_last)

    # 2. Unsupported classes: LSTM and Conv3D.
    i = keras.Input((8, 8, 3))
    x = L.Reshape((8, 24))(i)
    x = L.LSTM(4, name="the_lstm")(x)
    m = keras.Model(i, L.Dense(2)(x))
    p = os.path.join(tmp, "lstm.keras")
    m.save(p)
    expect_error("LSTM layer", p, ["unsupported layer 'the_lstm'", "class LSTM"]
                 + supported_sample)

    i = keras.Input((4, 8, 8, 3))
    x = L.Conv3D(2, 3, name="vol_conv")(i)
    m = keras.Model(i, L.Dense(2)(L.Flatten()(x)))
    p = os.path.join(tmp, "conv3d.h5")
    m.save(p)
    expect_error("Conv3D layer (.h5)", p, ["unsupported layer 'vol_conv'", "class Conv3D"]
                 + supported_sample)

    # 3. A supported class with an unsupported option.
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3)(i)
    x = L.ReLU(threshold=0.5, name="thresh_relu")(x)
    m = keras.Model(i, L.GlobalAveragePooling2D()(x))
    p = os.path.join(tmp, "relu_threshold.keras")
    m.save(p)
    expect_error("ReLU with threshold", p, ["'thresh_relu'", "class ReLU", "threshold"])

    # Options of the issue 11 layers that stay refused, each with its reason.
    for title, layer, needle in [
            ("LayerNormalization rms_scaling", L.LayerNormalization(rms_scaling=True, name="ln"),
             "rms_scaling"),
            ("LayerNormalization over H", L.LayerNormalization(axis=1, name="ln"), "axis"),
            ("UpSampling2D bicubic", L.UpSampling2D(interpolation="bicubic", name="up"),
             "interpolation 'bicubic'"),
            ("Conv2DTranspose dilated", L.Conv2DTranspose(2, 3, dilation_rate=2, name="tc"),
             "dilation_rate")]:
        i = keras.Input((8, 8, 3))
        x = layer(L.Conv2D(4, 3)(i))
        m = keras.Model(i, L.GlobalAveragePooling2D()(x))
        p = os.path.join(tmp, title.replace(" ", "_") + ".keras")
        m.save(p)
        expect_error(title, p, [f"'{layer.name}'", f"class {type(layer).__name__}", needle])

    # Every option-level refusal at once (issue 11), and nothing said about a layer that only
    # sees a refused layer's output (its input is not what Keras computes): two branches, each
    # with a refused option, merged by an Add whose inputs then differ in shape.
    i = keras.Input((8, 8, 3))
    a = L.ReLU(threshold=0.5, name="thresh_relu")(L.Conv2D(4, 3, name="c1")(i))
    b = L.UpSampling2D(interpolation="bicubic", name="up")(L.Conv2D(4, 3, name="c2")(i))
    x = L.Conv2D(4, 1, name="after_up")(b)
    m = keras.Model(i, L.GlobalAveragePooling2D()(L.Add(name="merge")([a, L.Cropping2D(3)(x)])))
    p = os.path.join(tmp, "two_options.keras")
    m.save(p)

    def named_once(msg):
        return [f"{n} named {msg.count(n)} times" for n in ("'thresh_relu'", "'up'")
                if msg.count(n) != 1] + (["'merge' blamed"] if "'merge'" in msg else [])
    expect_error("two refused options in one model", p,
                 ["'thresh_relu' (class ReLU)", "threshold", "'up' (class UpSampling2D)",
                  "interpolation 'bicubic'", "downstream of a refused one"], check=named_once)

    # 4. Broken containers.
    i = keras.Input((8, 8, 3))
    m = keras.Model(i, L.Dense(3)(L.Flatten()(L.Conv2D(4, 3)(i))))
    good = os.path.join(tmp, "good.h5")
    m.save(good)
    with open(good, "rb") as f:
        data = f.read()
    trunc = os.path.join(tmp, "truncated.h5")
    with open(trunc, "wb") as f:
        f.write(data[:len(data) // 2])
    expect_error("truncated .h5", trunc, ["truncated or corrupt"])

    rnd = os.path.join(tmp, "random.h5")
    with open(rnd, "wb") as f:
        f.write(os.urandom(4096))
    expect_error("random bytes", rnd, ["not a Keras model file"])

    zp = os.path.join(tmp, "notkeras.keras")
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("readme.txt", "hello")
        z.writestr("data.bin", os.urandom(100))
    expect_error("zip that is not a .keras file", zp, ["not a Keras .keras model",
                                                       "config.json"])

    # 4b. Keras 3's legacy .h5 writer drops the module of a keras.ops call (issue 11): `x + 3.0`
    # then reads as class Add with no module. Recovered when the config and the call both say
    # "op"; refused naming the cause when they disagree or the op is not exportable at all.
    import h5py
    import json
    import numpy as np
    i = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(i)
    hs = x * (keras.layers.ReLU(6.0, name="relu6")(x + 3.0) * (1.0 / 6.0))  # hard-swish
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(hs)
    opsh5 = os.path.join(tmp, "ops_k3.h5")
    keras.Model(i, keras.layers.Dense(3, activation="softmax", name="out")(pooled)).save(opsh5)
    expect_export("a Keras 3 .h5 with keras.ops x + 3.0 (module dropped)", opsh5)

    def edit_config(src, dst, fn):
        shutil.copy(src, dst)
        with h5py.File(dst, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            fn(cfg["config"]["layers"])
            f.attrs["model_config"] = json.dumps(cfg)

    def op_add_as_layer(layers):  # the op's config gains a layer's "trainable"
        next(l for l in layers if l["class_name"] == "Add")["config"]["trainable"] = True
    amb = os.path.join(tmp, "ops_ambiguous_k3.h5")
    edit_config(opsh5, amb, op_add_as_layer)
    expect_error("Keras 3 .h5: Add that is neither clearly a layer nor an op", amb,
                 ["class Add", "cannot tell the Add layer from a keras.ops call",
                  "save the model as .keras"])
    i = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(i)
    x = keras.ops.sqrt(keras.ops.abs(x)) - np.ones((10, 10, 4), np.float32)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    sq = os.path.join(tmp, "sqrt_k3.h5")
    keras.Model(i, keras.layers.Dense(3, name="out")(pooled)).save(sq)
    expect_error("Keras 3 .h5: keras.ops.sqrt, module dropped", sq,
                 ["'sqrt' (class Sqrt)", "keras.ops call", "not supported in any format",
                  "'absolute' (class Absolute)"], must_not=["save the model as .keras"])

    def drop_unsupported(layers):  # leaves the per-pixel constant: refused when translated
        for l in layers:
            if l["class_name"] == "Subtract":
                l["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["conv", 0, 0]
        layers[:] = [l for l in layers if l["class_name"] not in ("Sqrt", "Absolute")]
    pix = os.path.join(tmp, "perpixel_k3.h5")
    edit_config(sq, pix, drop_unsupported)
    expect_error("Keras 3 .h5: keras.ops subtract of a per-pixel constant", pix,
                 ["'subtract' (class Subtract)", "only scalars and one value per channel",
                  "module Keras 3's legacy .h5 writer dropped"])

    # 5. Wrong label count (and the good file itself exports).
    labels = os.path.join(tmp, "labels.txt")
    with open(labels, "w") as f:
        f.write("a\nb\n")
    expect_error("label count mismatch", good, ["2 labels for 3 outputs"], "--labels", labels)
    expect_export("control: the same small model", good)

    if failures:
        print(f"\n{len(failures)} FAILED: {', '.join(failures)}")
        return 1
    print("\nall exporter error cases behave")
    return 0


if __name__ == "__main__":
    sys.exit(main())
