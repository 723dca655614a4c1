#!/usr/bin/env python3
"""Parity on a real file: the Food-11 Teachable Machine MobileNetV2 (Keras 2.4 .h5, exported by
make_fixtures.py to $MORSEL_FIXTURES/food11.morsel) against Keras itself.

  1. >= 5 random inputs in [-1, 1]: Morsel (`morsel run`, probabilities and --logits) and the
     numpy reference over the parsed file (npref.py) vs Keras model(x);
  2. `morsel verify` passes on the file's embedded self-test;
  3. `morsel classify --top 1 --json noodles.jpg` names the same class as Keras on the pixels
     Teachable Machine's own snippet computes (Pillow: convert RGB, ImageOps.fit 224 LANCZOS,
     /127.5 - 1). Morsel decodes and resizes by itself, so the probabilities may differ a
     little; the top-1 must not.

    python test/parity_food11_real.py [--npref-only]
"""

import json
import os
import subprocess
import sys

import harness  # noqa: E402,F401  (sys.path and environment)
from harness import HERE, ROOT  # noqa: E402,F401

import numpy as np  # noqa: E402

import npref  # noqa: E402

TOL = 1e-5
N_INPUTS = 6


def load_keras(path):
    errors = []
    for name in ("tf_keras", "keras"):
        try:
            k = __import__(name)
            return k.models.load_model(path, compile=False), k, f"{name} {k.__version__}"
        except Exception as e:  # any failure: try the other Keras
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise SystemExit("FAIL: neither tf_keras nor keras loads the Food-11 model:\n  "
                     + "\n  ".join(errors))


def main():
    npref_only = "--npref-only" in sys.argv[1:]
    shared = os.environ.get("MORSEL_SHARED", "/work/shared")
    fixtures = os.environ.get("MORSEL_FIXTURES", "")
    src = os.path.join(shared, "models", "real", "food11-tm-mobilenetv2", "keras_model.h5")
    image = os.path.join(shared, "images", "seed", "noodles.jpg")
    model_path = os.path.join(fixtures, "food11.morsel")
    for p in (src, image, model_path):
        if not os.path.isfile(p):
            raise SystemExit(f"FAIL: {p} is missing (MORSEL_SHARED={shared!r}, "
                             f"MORSEL_FIXTURES={fixtures!r}; run make_fixtures.py first)")
    try:
        from PIL import Image, ImageOps
    except ImportError as e:
        raise SystemExit(f"FAIL: Pillow is required ({e})")
    binary = None if npref_only else npref.morsel_bin()

    kmodel, k, how = load_keras(src)
    parsed = npref.read(model_path)
    print(f"Keras: {how}; morsel file: {parsed.name}, {len(parsed.ops)} ops, labels "
          f"{parsed.labels}")
    failures = []

    # 1. random inputs
    rng = np.random.default_rng(11)
    xs = rng.uniform(-1, 1, (N_INPUTS, 224, 224, 3)).astype(np.float32)
    ref_p, ref_l = npref.keras_outputs(kmodel, xs, k.activations.linear)
    print(f"Keras top-1 on the random inputs: {[int(i) for i in np.argmax(ref_p, axis=1)]}, "
          f"logits range [{ref_l.min():.3f}, {ref_l.max():.3f}]")
    rows = [npref.Agreement("food11 .h5 / numpy ref")]
    for i in range(N_INPUTS):
        rows[0].add(npref.run(parsed, xs[i]), npref.run(parsed, xs[i], "logits"), ref_p[i],
                    ref_l[i])
    if binary:
        mo = npref.Agreement("food11 .h5 / morsel")
        for i in range(N_INPUTS):
            try:
                mo.add(npref.morsel_run(binary, model_path, xs[i]),
                       npref.morsel_run(binary, model_path, xs[i], logits=True),
                       ref_p[i], ref_l[i])
            except RuntimeError as e:
                failures.append(str(e))
                break
        rows.append(mo)
    npref.print_table(rows, TOL)
    failures += [f"{r.name}: outside tolerance {TOL:g}" for r in rows if not r.ok(TOL)]

    # 2. the embedded self-test
    if parsed.selftest is None:
        failures.append("food11.morsel has no self-test")
    else:
        x, y, tol = parsed.selftest
        d = float(np.abs(npref.run(parsed, x).reshape(-1) - y).max())
        print(f"self-test (numpy ref): max |Δ| {d:.3e} (tolerance {tol:g})")
        if d > tol:
            failures.append(f"numpy ref misses the self-test by {d:.3e}")
    if binary:
        rc, msg = npref.morsel_verify(binary, model_path)
        print(f"morsel verify: exit {rc}: {msg}")
        if rc != 0:
            failures.append(f"morsel verify failed: {msg}")

    # 3. a real photo: Teachable Machine's preprocessing in Pillow -> Keras, vs morsel classify
    img = ImageOps.fit(Image.open(image).convert("RGB"), (224, 224), Image.Resampling.LANCZOS)
    px = (np.asarray(img).astype(np.float32) / 127.5 - 1)[None]
    kp = np.asarray(kmodel(px, training=False))[0]
    k_top = int(np.argmax(kp))
    print(f"Keras on Pillow pixels: top-1 {k_top} {parsed.labels[k_top]!r} p={kp[k_top]:.6f}")
    npp = npref.run(parsed, px[0])
    print(f"numpy ref on the same pixels: top-1 {int(np.argmax(npp))} "
          f"p={npp[np.argmax(npp)]:.6f} (max |Δprob| vs Keras {np.abs(npp - kp).max():.2e})")
    if int(np.argmax(npp)) != k_top or np.abs(npp - kp).max() > TOL:
        failures.append("numpy ref disagrees with Keras on the photo's pixels")
    if binary:
        r = subprocess.run([binary, "classify", "--model", model_path, "--top", "1", "--json",
                            image], capture_output=True, text=True)
        try:
            top = json.loads(r.stdout.strip().splitlines()[0])["top"][0]
            m_top, m_p = int(top["index"]), float(top["probability"])
            print(f"morsel classify: top-1 {m_top} {top.get('label')!r} p={m_p:.6f} "
                  f"(Keras p={kp[k_top]:.6f}, Δ {abs(m_p - kp[m_top]):.2e})")
            if m_top != k_top:
                failures.append(f"morsel classify top-1 {m_top} != Keras top-1 {k_top}")
        except (ValueError, IndexError, KeyError) as e:
            failures.append(f"morsel classify failed (exit {r.returncode}): {e}: "
                            f"{r.stdout.strip()} {r.stderr.strip()}")

    if npref_only:
        print("\nNOTE: --npref-only: the Morsel engine was NOT checked")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nparity_food11_real: Morsel agrees with Keras on the real Food-11 model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
