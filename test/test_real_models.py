#!/usr/bin/env python3
"""Real model files made by other people ($MORSEL_SHARED/models/real/, default /work/shared;
each folder's PROVENANCE.md says where it comes from and how its inputs are prepared): every
one either exports and matches Keras to 1e-5 on 20 inputs in its input range -- 10 variants of
the seed photos (crop, flip, brightness) and 10 uniform random tensors -- with Keras's outputs
informative (not uniform, not saturated, parity_models.informative; or, for a model sure of
every answer, logits compared and more than one top-1 across the inputs) (Morsel
through libmorsel and `morsel verify` on the self-test the exporter embeds), or is refused
with the clear message the exporter owes it (the multi-GPU model's Lambda layers: the message
names the layer and class, says what to do and offers --submodel; the inner model is then
exported with --submodel and must match Keras too).

Then the ImageNet MobileNet alpha 0.75 of $MORSEL_SHARED/models/imagenet/, built with
keras.applications.MobileNet(alpha=0.75, weights=<mobilenet_7_5_224_tf.h5>) by Keras 3 (saved
as .keras) and by tf_keras (saved as .h5), plus the verbatim TF.js directory it was
reconstructed from: each exported with the 1000 ImageNet labels, must match Keras on random
inputs and on the photo, and `morsel classify --top 5 noodles.jpg` must give Keras's top-5
(Keras on the pixels keras.applications.mobilenet.preprocess_input expects: Pillow RGB,
bilinear resize to 224, x/127.5 - 1).

    python test/test_real_models.py

Logits or probabilities further than 1e-5 from Keras's are arbitrated by Keras itself in
float64 on the source weights (parity_models.keras_float64): the row passes (ok*, the distances
printed) only when Morsel is within 1e-5 of the float64 logits and probabilities, or within
parity_models.F32_SPREAD (4) times
Keras's own float32 distance from them (float32 rounding order decides which engine lands closer;
a translation error is far beyond it). Outputs must be finite and depend on the
input.

Prints one table, ends with `N passed, M failed`; exit status 1 on any failure. Every file is
required: a missing one is a failure.
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import harness  # noqa: E402,F401  (sys.path and environment)
from harness import HERE, ROOT  # noqa: E402,F401

import numpy as np  # noqa: E402

import npref  # noqa: E402
import parity_models as P  # noqa: E402

TOL = 1e-5
N_INPUTS = 20
EXPORTER = harness.EXPORTER
SHARED = harness.SHARED
REAL = os.path.join(SHARED, "models", "real")
IMAGENET = os.path.join(SHARED, "models", "imagenet")
PHOTO = os.path.join(SHARED, "images", "seed", "noodles.jpg")

# What each known file is (from its PROVENANCE.md): the Keras that loads it, the input range
# its training code feeds, the exporter's --preprocess, and the expected outcome.
KNOWN = {
    "food11-tm-mobilenetv2/keras_model.h5":
        dict(keras="tf_keras", lo=-1.0, hi=1.0, pp="tf", labels="labels.txt"),
    "food101-st-mobilenetv2-a035/mobilenet_v2_0.35_224_fft.h5":
        dict(keras="tf_keras", lo=-1.0, hi=1.0, pp="tf", labels="labels.txt"),
    "food101-st-mobilenetv1-a025/mobilenet_v1_0.25_224_fft.h5":
        dict(keras="tf_keras", lo=-1.0, hi=1.0, pp="tf", labels="labels.txt"),
    "fruit-fresh-keras3/fruit_model.keras":
        dict(keras="keras", lo=0.0, hi=255.0, pp=None, labels="labels.txt"),
    "fruit-fresh-keras3/fruit_model.h5":
        dict(keras="keras", lo=0.0, hi=255.0, pp=None, labels="labels.txt"),
    "fruits-keras215-legacy/fruit_model.h5":
        dict(keras="tf_keras", lo=0.0, hi=1.0, pp="unit", labels=None),
    "recipify-multigpu-lambda/food_model.h5":
        dict(keras=None, lo=0.0, hi=1.0, pp="unit", labels=None,
             refuse=["'lambda_3'", "class Lambda", "rebuild the model", "Rescaling",
                     "--submodel"],
             submodel="model_2"),
}


class Row:
    def __init__(self, model, file, how):
        self.model, self.file, self.how = model, file, how
        self.outcome = "-"
        self.mb = None
        self.agree = None
        self.verify = "-"
        self.note = ""
        self.errors = []
        self.f64 = None

    @property
    def ok(self):
        if self.errors:
            return False
        a = self.agree
        if a is None:
            return True
        if a.top1 != a.n or a.problems():
            return False
        return ((a.rel <= TOL or P.arbitrated_ok(self.f64, TOL))
                and (a.dprob <= TOL or P.arbitrated_probs_ok(self.f64, TOL)))


def inputs(rng, shape, lo, hi, n=N_INPUTS):
    """n // 2 variants of the seed photos (random crop of 60-100 % of each side, a mirror, a
    brightness factor in 0.7..1.3, bilinear resize to the model's input; every other one blended
    with a variant of the other photo) mapped from 0..255 to
    the model's input range [lo, hi], then uniform random tensors in [lo, hi]: the photos make a
    trained model's outputs informative, the noise covers the range."""
    from PIL import Image, ImageEnhance
    h, w = int(shape[0]), int(shape[1])
    photos = [Image.open(os.path.join(SHARED, "images", "seed", f)).convert("RGB")
              for f in ("noodles.jpg", "test_image.jpeg")]
    def variant(img):
        fw, fh = rng.uniform(0.6, 1.0, 2)
        cw, ch = max(1, int(img.width * fw)), max(1, int(img.height * fh))
        x0 = int(rng.integers(0, img.width - cw + 1))
        y0 = int(rng.integers(0, img.height - ch + 1))
        v = img.crop((x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            v = v.transpose(Image.FLIP_LEFT_RIGHT)
        v = ImageEnhance.Brightness(v).enhance(float(rng.uniform(0.7, 1.3)))
        return v.resize((w, h), Image.BILINEAR)

    xs = []
    for i in range(n // 2):
        v = variant(photos[i % len(photos)])
        if i % 2:  # a blend of both photos: a trained model is unsure between their classes
            v = Image.blend(v, variant(photos[(i + 1) % len(photos)]), float(rng.uniform(0.3, 0.7)))
        px = np.asarray(v, np.float32)
        xs.append(lo + px * np.float32((hi - lo) / 255.0))
    noise = rng.uniform(lo, hi, (n - len(xs),) + tuple(shape)).astype(np.float32)
    return np.concatenate([np.stack(xs).astype(np.float32), noise])


def export(src, out, *extra, selftest=True):
    cmd = [sys.executable, EXPORTER, src, "-o", out, "-q", *extra]
    if not selftest:
        cmd.append("--no-selftest")
    return subprocess.run(cmd, capture_output=True, text=True)


def load_keras(name, path):
    k = __import__(name)
    m = k.models.load_model(path, compile=False)
    return m, k


def compare(row, engine, out, ref, k, xs):
    parsed = npref.read(out)
    n_out = parsed.tensors[parsed.output]["size"]
    has_logits = parsed.logits != 0xFFFFFFFF
    rp, rl = P.keras_outputs(ref, k, xs)
    mp, ml = engine.run(out, xs, n_out, has_logits)
    a = npref.Agreement(row.model)
    for i in range(len(xs)):
        a.add(mp[i], ml[i] if has_logits else None, rp[i], rl[i])
    row.agree = a
    if has_logits and (a.rel > TOL or a.dprob > TOL):
        row.f64 = P.arbitrate(ref, k, xs, ml, rl, TOL, mp, rp)
    row.mb = os.path.getsize(out) / 1e6
    desc, informative = P.informative(rp)
    # A trained model may be sure of everything (food11-tm: max p >= 0.9999 on most photos and
    # noise): its probabilities then say little, but its logits are compared at 1e-5 too, and
    # are informative when the answer changes with the input.
    tops = len(set(np.argmax(rp, axis=-1).tolist()))
    by_logits = not informative and has_logits and tops > 1
    row.note = (row.note + "; " if row.note else "") + desc + \
        (f" (saturated: judged on logits, {tops} top-1)" if by_logits else "")
    if not (informative or by_logits):
        row.errors.append(f"Keras's outputs are not informative ({desc}, {tops} top-1): a 1e-5 "
                          "bound on uniform or saturated probabilities says little")
    if not has_logits:
        row.errors.append("no logits kept")
    return parsed


def verify(binary, out, row):
    r = subprocess.run([binary, "verify", out], capture_output=True, text=True)
    row.verify = "ok" if r.returncode == 0 else "FAIL"
    if r.returncode != 0:
        row.errors.append(f"morsel verify: {(r.stdout + r.stderr).strip()[:300]}")


def submodel_reference(tf_keras, path, name):
    """tf_keras rebuilds nested model `name` from the file's config and takes its weights from
    the file's HDF5 group by layer name (independently of the exporter)."""
    import h5py
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        sub = [l for l in cfg["config"]["layers"] if l.get("name") == name]
        if len(sub) != 1:
            raise RuntimeError(f"{name}: {len(sub)} layers of that name")
        model = tf_keras.models.model_from_json(json.dumps(
            {"class_name": "Functional", "config": sub[0]["config"]}))
        g = f["model_weights"][name]
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
        stored = {n.split(":")[0]: np.asarray(g[n]) for n in names}
    values = []
    for v in model.weights:
        key = v.name.split(":")[0]
        cands = [n for n in stored if n == key or n.endswith("/" + key)]
        if len(cands) != 1:
            raise RuntimeError(f"{name}: weight {key} matches {cands}")
        values.append(stored[cands[0]])
    P.set_all_weights(model, values)
    return model


def run_real(rel, spec, tmp, engine, binary, rng, rows):
    src = os.path.join(REAL, rel)
    folder = os.path.dirname(src)
    row = Row(rel.split("/")[0], os.path.basename(rel), spec.get("keras") or "-")
    rows.append(row)
    out = os.path.join(tmp, re.sub(r"\W+", "_", rel) + ".morsel")
    extra = []
    if spec.get("pp"):
        extra += ["--preprocess", spec["pp"]]
    if spec.get("labels"):
        extra += ["--labels", os.path.join(folder, spec["labels"])]
    r = export(src, out, *extra)
    if spec.get("refuse"):
        msg = r.stderr.strip()
        row.outcome = "refused"
        row.note = msg.splitlines()[0][len("morsel_export: error: "):][:70] if msg else ""
        if r.returncode == 0 or os.path.exists(out):
            row.errors.append("exported a model it must refuse")
        if "Traceback" in r.stderr:
            row.errors.append("a traceback instead of a message")
        for s in spec["refuse"]:
            if s not in msg:
                row.errors.append(f"message lacks {s!r}")
        print(f"  refusal message:\n    " + "\n    ".join(msg.splitlines()[:2]) + "\n    ...\n    "
              + "\n    ".join(msg.splitlines()[-1:]))
        if spec.get("submodel"):
            import tf_keras
            sub = Row(row.model, f"--submodel {spec['submodel']}", "tf_keras (rebuilt)")
            rows.append(sub)
            out2 = out.replace(".morsel", "_sub.morsel")
            r2 = export(src, out2, "--submodel", spec["submodel"], *extra)
            if r2.returncode != 0:
                sub.errors.append(f"export --submodel failed: {r2.stderr.strip()[:300]}")
                return
            sub.outcome = "exported"
            ref = submodel_reference(tf_keras, src, spec["submodel"])
            xs = inputs(rng, ref.input_shape[1:], spec["lo"], spec["hi"])
            compare(sub, engine, out2, ref, tf_keras, xs)
            verify(binary, out2, sub)
        return
    if r.returncode != 0:
        row.outcome = "FAILED"
        row.errors.append(f"export failed: {r.stderr.strip()[:400]}")
        return
    row.outcome = "exported"
    names = [spec["keras"]] if spec.get("keras") else ["tf_keras", "keras"]
    ref = k = None
    for name in names:
        try:
            ref, k = load_keras(name, src)
            row.how = name
            break
        except Exception as e:  # the other Keras may load it
            err = f"{name}: {type(e).__name__}: {str(e)[:160]}"
    if ref is None:
        row.errors.append(f"no Keras loads the file ({err})")
        return
    xs = inputs(rng, ref.input_shape[1:], spec["lo"], spec["hi"])
    parsed = compare(row, engine, out, ref, k, xs)
    if spec.get("labels"):
        with open(os.path.join(folder, spec["labels"]), encoding="utf-8-sig") as f:
            want = [l.rstrip("\r\n") for l in f if l.strip()]
        if parsed.labels != want:
            row.errors.append("labels differ from labels.txt")
    if parsed.selftest is None:
        row.errors.append("no self-test embedded")
    verify(binary, out, row)


# ---- ImageNet MobileNet alpha 0.75 -------------------------------------------------------------

def photo_tensor():
    from PIL import Image
    img = Image.open(PHOTO).convert("RGB").resize((224, 224), Image.BILINEAR)
    return (np.asarray(img, np.float32) / 127.5 - 1.0)


def classify_top5(binary, model):
    r = subprocess.run([binary, "classify", "--model", model, "--top", "5", "--json", PHOTO],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"morsel classify failed: {r.stderr.strip()}")
    top = json.loads(r.stdout.strip().splitlines()[0])["top"]
    return [int(t["index"]) for t in top], [float(t["probability"]) for t in top]


def run_imagenet(tmp, engine, binary, rng, rows):
    import keras
    import tf_keras
    weights = os.path.join(IMAGENET, "mobilenet_7_5_224_tf.h5")
    with open(os.path.join(IMAGENET, "imagenet_class_index.json")) as f:
        idx = json.load(f)
    names = [idx[str(i)][1] for i in range(1000)]
    labels = os.path.join(tmp, "imagenet_labels.txt")
    with open(labels, "w") as f:
        f.write("\n".join(names) + "\n")
    x_photo = photo_tensor()
    xs = inputs(rng, (224, 224, 3), -1.0, 1.0)
    k3 = keras.applications.MobileNet(alpha=0.75, weights=weights)
    k2 = tf_keras.applications.MobileNet(alpha=0.75, weights=weights)
    src3, src2 = os.path.join(tmp, "mobilenet_075.keras"), os.path.join(tmp, "mobilenet_075.h5")
    k3.save(src3)
    k2.save(src2)
    tfjs = os.path.join(IMAGENET, "tfjs", "mobilenet_v1_0.75_224")
    variants = [("keras 3 .keras", src3, k3, keras), ("tf_keras .h5", src2, k2, tf_keras),
                ("TF.js (verbatim)", tfjs, k2, tf_keras)]
    k_top = None
    for title, src, ref, k in variants:
        row = Row("imagenet MobileNet a0.75", title,
                  f"{k.__name__} MobileNet(weights=.h5)")
        rows.append(row)
        out = os.path.join(tmp, re.sub(r"\W+", "_", title) + ".morsel")
        r = export(src, out, "--labels", labels, "--preprocess", "tf", "--resize", "bilinear",
                   "--name", "mobilenet_0.75_224_imagenet")
        if r.returncode != 0:
            row.outcome = "FAILED"
            row.errors.append(f"export failed: {r.stderr.strip()[:400]}")
            continue
        row.outcome = "exported"
        parsed = compare(row, engine, out, ref, k, xs)
        if parsed.labels != names:
            row.errors.append("labels differ from imagenet_class_index.json")
        verify(binary, out, row)
        # The photo: Keras on Pillow pixels vs Morsel on the same tensor, and morsel classify
        # (its own JPEG decoding and bilinear resize) for the top-5.
        kp = np.asarray(ref(x_photo[None], training=False), np.float64)[0]
        k_top = [int(i) for i in np.argsort(-kp)[:5]]
        mp, _ = engine.run(out, x_photo[None], 1000, False)
        d = float(np.abs(mp[0] - kp).max())
        m_top, m_p = classify_top5(binary, out)
        row.note = (f"photo Δp {d:.1e}; top-5 Keras {[names[i] for i in k_top]} "
                    f"{[round(float(kp[i]), 3) for i in k_top]}; morsel classify "
                    f"{[names[i] for i in m_top]} {[round(p, 3) for p in m_p]}")
        if d > TOL:
            row.errors.append(f"photo tensor: max|Δp| {d:.2e} > {TOL:g}")
        if m_top != k_top:
            row.errors.append("morsel classify top-5 differs from Keras's")
    return k_top, names


def print_table(rows):
    hdr = (f"{'model':<28} {'file':<36} {'Keras':<20} {'outcome':<9} {'MB':>6} "
           f"{'max|Δp|':>9} {'logit rel':>9} {'top-1':>6} {'verify':>6} verdict  note")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        a = r.agree
        print(f"{r.model:<28} {r.file:<36} {r.how:<20} {r.outcome:<9} "
              f"{('-' if r.mb is None else f'{r.mb:6.2f}'):>6} "
              f"{('-' if a is None else f'{a.dprob:9.1e}'):>9} "
              f"{('-' if a is None else f'{a.rel:9.1e}'):>9} "
              f"{('-' if a is None else f'{a.top1}/{a.n}'):>6} {r.verify:>6} "
              f"{('ok*' if r.f64 else 'ok') if r.ok else 'FAIL':<7}  "
              f"{r.note}")
        if r.f64:
            print(f"    * vs Keras float64 on {r.f64[2]} inputs: logits Morsel "
                  f"{r.f64[0]:.1e}, Keras float32 {r.f64[1]:.1e}; max|Δp| Morsel "
                  f"{r.f64[4]:.1e}, Keras float32 {r.f64[5]:.1e}"
                  + (f" ({r.f64[3]})" if r.f64[3] else ""))
        for p in (r.agree.problems() if r.agree else []):
            print(f"    ^ {p}")
        for e in r.errors:
            print(f"    ^ {e}")


def main():
    t0 = time.time()
    try:
        import keras  # noqa: F401
        import tf_keras  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as e:
        print(f"FAIL: keras, tf_keras and Pillow are required ({e})")
        return 1
    try:
        binary, engine = P.open_engine()
    except (RuntimeError, OSError) as e:
        print(f"FAIL: {e}")
        return 1
    missing = [p for p in [REAL, IMAGENET, PHOTO] if not os.path.exists(p)]
    missing += [os.path.join(REAL, rel) for rel in KNOWN
                if not os.path.isfile(os.path.join(REAL, rel))]
    if missing:
        print(f"FAIL: missing {missing} (MORSEL_SHARED={SHARED!r})")
        return 1
    tmp = tempfile.mkdtemp(prefix="morsel_real_")
    rng = np.random.default_rng(77)
    rows = []
    found = sorted(os.path.relpath(p, REAL) for p in glob.glob(os.path.join(REAL, "*", "*"))
                   if p.endswith((".h5", ".keras", "model.json")))
    for rel in found:
        spec = KNOWN.get(rel)
        if spec is None:  # a file added later: it must at least export or be refused cleanly
            spec = dict(keras=None, lo=0.0, hi=1.0, pp="unit", labels=None)
            if os.path.isfile(os.path.join(REAL, os.path.dirname(rel), "labels.txt")):
                spec["labels"] = "labels.txt"
        print(f"== {rel}", flush=True)
        try:
            run_real(rel, spec, tmp, engine, binary, rng, rows)
        except Exception as e:
            r = Row(rel.split("/")[0], os.path.basename(rel), "-")
            r.errors.append(f"{type(e).__name__}: {str(e)[:400]}")
            rows.append(r)
    print("== imagenet MobileNet alpha 0.75", flush=True)
    try:
        run_imagenet(tmp, engine, binary, rng, rows)
    except Exception as e:
        r = Row("imagenet MobileNet a0.75", "-", "-")
        r.errors.append(f"{type(e).__name__}: {str(e)[:400]}")
        rows.append(r)

    print(f"\n==== real model files (Morsel vs Keras, {N_INPUTS} random inputs in each model's "
          f"input range; pass: max|Δp| <= {TOL:g}, logit rel <= {TOL:g}, all top-1, "
          "morsel verify; or the expected refusal)\n")
    print_table(rows)
    n_ok = sum(r.ok for r in rows)
    print(f"\ntotal {time.time() - t0:.0f} s")
    arb = [r for r in rows if r.f64]
    print(f"arbitrated rows (logits or probabilities > {TOL:g} from Keras, judged by Keras "
          "float64): "
          f"{len(arb)}, {sum(r.ok for r in arb)} of them ok*")
    print(f"{n_ok} passed, {len(rows) - n_ok} failed")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if n_ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
