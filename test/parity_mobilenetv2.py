#!/usr/bin/env python3
"""Parity: a full MobileNetV2 (ImageNet architecture, random weights) with a Dense +
BatchNormalization + Dropout head, saved by Keras 3 as .keras and .h5 and by tf_keras as a
Keras-2 .h5, exported, then run by Morsel (`morsel run`) and compared with Keras's model(x).

Every BatchNormalization (52 in the base, 3 in the head) gets non-trivial statistics so that
folding is really exercised; the head's BN layers follow a Dense with relu, so they cannot be
folded and become AFFINE ops. A float64 numpy pass over the parsed file (npref.py) is checked
too, as an independent check of the exporter's translation.

    python test/parity_mobilenetv2.py [--npref-only]

--npref-only (development) skips the Morsel engine; ctest never passes it. Without it a missing
MORSEL_BIN is a failure.
"""

import os
import subprocess
import sys
import tempfile

import harness  # noqa: E402,F401  (sys.path and environment)
from harness import HERE, ROOT  # noqa: E402,F401

import numpy as np  # noqa: E402

import npref  # noqa: E402
import parity_models as P  # noqa: E402

TOL = 1e-5
N_INPUTS = 5
rng = np.random.default_rng(1234)


def build(k):
    """The test model in Keras `k` (keras 3 or tf_keras): MobileNetV2 base used as a layer."""
    L = k.layers
    base = k.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3),
                                      include_top=False)
    inp = k.Input((224, 224, 3), name="image")
    x = base(inp, training=False)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    for i, units in enumerate((1024, 512, 256), 1):
        x = L.Dense(units, activation="relu", name=f"fc{i}")(x)
        x = L.BatchNormalization(name=f"fc{i}_bn")(x)
        x = L.Dropout(0.5, name=f"fc{i}_drop")(x)
    out = L.Dense(11, activation="softmax", name="predictions")(x)
    return k.Model(inp, out, name="mobilenetv2_food11_head")


def leaves(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from leaves(layer)
        else:
            yield layer


def randomize(model, k):
    """Random non-trivial BN statistics everywhere; small random Dense biases."""
    n_bn = 0
    for layer in leaves(model):
        if isinstance(layer, k.layers.BatchNormalization):
            vals = []
            for v in layer.weights:
                role = v.name.split("/")[-1].split(":")[0]
                lo, hi = {"gamma": (0.5, 1.5), "beta": (-0.5, 0.5), "moving_mean": (-0.5, 0.5),
                          "moving_variance": (0.5, 2.0)}[role]
                vals.append(rng.uniform(lo, hi, tuple(v.shape)).astype(np.float32))
            layer.set_weights(vals)
            n_bn += 1
        elif isinstance(layer, k.layers.Dense):
            w, b = layer.get_weights()
            layer.set_weights([w, rng.uniform(-0.1, 0.1, b.shape).astype(np.float32)])
    return n_bn


def copy_weights(src, dst):
    """Layer by layer, by name (the architectures are identical)."""
    by_name = {l.name: l for l in leaves(dst)}
    n = 0
    for l in leaves(src):
        if l.weights:
            by_name[l.name].set_weights(l.get_weights())
            n += 1
    return n


def export(path, out):
    cmd = [sys.executable, harness.EXPORTER, path, "-o", out,
           "--preprocess", "tf", "--name", os.path.basename(path)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    print("  " + "\n  ".join(r.stdout.strip().splitlines()))
    if r.returncode != 0:
        print(r.stderr)
        raise SystemExit(f"FAIL: export of {path} failed")


def main():
    npref_only = "--npref-only" in sys.argv[1:]
    try:
        import keras
        import tf_keras
    except ImportError as e:
        raise SystemExit(f"FAIL: keras and tf_keras are required ({e})")
    binary = None if npref_only else npref.morsel_bin()
    keras.utils.set_random_seed(1234)
    tf_keras.utils.set_random_seed(1234)

    tmp = tempfile.mkdtemp(prefix="morsel_parity_mnv2_")
    m3 = build(keras)
    n_bn = randomize(m3, keras)
    # Statistics near the real ones, or the random ones kill every unit (outputs that do not
    # depend on the input fail npref.Agreement).
    xs = rng.uniform(-1, 1, (N_INPUTS, 224, 224, 3)).astype(np.float32)
    P.fit_bn_statistics(m3, keras, xs, rng)
    m2 = build(tf_keras)
    n_copied = copy_weights(m3, m2)
    print(f"MobileNetV2 + head: {m3.count_params():,} parameters, {n_bn} BatchNormalization "
          f"layers randomized, {n_copied} weighted layers copied to the tf_keras twin")

    files = [("keras 3 .keras", os.path.join(tmp, "mnv2.keras"), m3, keras),
             ("keras 3 .h5", os.path.join(tmp, "mnv2_k3.h5"), m3, keras),
             ("tf_keras (Keras 2) .h5", os.path.join(tmp, "mnv2_k2.h5"), m2, tf_keras)]
    m3.save(files[0][1])
    m3.save(files[1][1])
    m2.save(files[2][1])

    rows, failures = [], []
    for title, path, model, k in files:
        out = path + ".morsel"
        print(f"\n== {title}: export {os.path.basename(path)}")
        export(path, out)
        parsed = npref.read(out)
        if parsed.selftest is None:
            failures.append(f"{title}: no self-test embedded")
        ref_p, ref_l = npref.keras_outputs(model, xs, k.activations.linear)
        print(f"  Keras logits range [{ref_l.min():.3f}, {ref_l.max():.3f}], top-1 classes "
              f"{[int(c) for c in np.argmax(ref_p, axis=1)]}")
        npa = npref.Agreement(f"{title} / numpy ref")
        for i in range(N_INPUTS):
            npa.add(npref.run(parsed, xs[i]), npref.run(parsed, xs[i], "logits"),
                    ref_p[i], ref_l[i])
        rows.append(npa)
        if binary:
            mo = npref.Agreement(f"{title} / morsel")
            for i in range(N_INPUTS):
                try:
                    p = npref.morsel_run(binary, out, xs[i])
                    lg = npref.morsel_run(binary, out, xs[i], logits=True)
                except RuntimeError as e:
                    failures.append(f"{title}: {e}")
                    break
                mo.add(p, lg, ref_p[i], ref_l[i])
            rows.append(mo)
            rc, msg = npref.morsel_verify(binary, out)
            print(f"  morsel verify: exit {rc}: {msg.splitlines()[-1] if msg else ''}")
            if rc != 0:
                failures.append(f"{title}: morsel verify failed ({msg})")

    print()
    npref.print_table(rows, TOL)
    failures += [f"{r.name}: outside tolerance {TOL:g}" for r in rows if not r.ok(TOL)]
    if npref_only:
        print("\nNOTE: --npref-only: the Morsel engine was NOT checked")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nparity_mobilenetv2: all formats agree with Keras")
    return 0


if __name__ == "__main__":
    sys.exit(main())
