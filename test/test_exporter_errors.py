#!/usr/bin/env python3
"""The exporter refuses what it cannot export with a clean, specific message (no traceback,
non-zero exit, no output file): Lambda layers, unsupported layer classes, unsupported options,
truncated / random / non-Keras files, a label file of the wrong length.

The small models are built with Keras here (TensorFlow is a test dependency)."""

import os
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


def expect_error(title, path, must_contain, *extra):
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
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    print(f"[{status}] {title}\n    exit {r.returncode}: {msg.splitlines()[0] if msg else '(no message)'}")
    if problems:
        print("    full stderr:\n" + "\n".join("      " + l for l in msg.splitlines()))
        failures.append(title)


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

    # 5. Wrong label count (and the good file itself exports).
    labels = os.path.join(tmp, "labels.txt")
    with open(labels, "w") as f:
        f.write("a\nb\n")
    expect_error("label count mismatch", good, ["2 labels for 3 outputs"], "--labels", labels)
    r, out = export(good)
    if r.returncode != 0 or not os.path.exists(out):
        print(f"[FAIL] control: a valid model did not export:\n{r.stderr}")
        failures.append("control")
    else:
        print("[ok] control: the same small model exports")

    if failures:
        print(f"\n{len(failures)} FAILED: {', '.join(failures)}")
        return 1
    print("\nall exporter error cases behave")
    return 0


if __name__ == "__main__":
    sys.exit(main())
