#!/usr/bin/env python3
"""The parity table: every seed architecture x every way Keras users save a model, exported to
.morsel and run by Morsel, against Keras computing the same inputs in this run.

Architectures come from keras.applications.*(weights=None, include_top=False) with the heads
users put on them (parity_models.py): MobileNet alpha 0.25/0.75/1.0, MobileNetV2 alpha
0.35/1.0/1.4, ResNet50, ResNet50V2, ResNet101V2, Xception, VGG16, InceptionV3, EfficientNetB0,
at small input sizes in every format and once each at the architecture's real default size
(224, 299 for Xception and InceptionV3) as a Keras 3 .keras file. Plus: models nested three
deep with shared layers and nested models called twice; in-model preprocessing and
augmentation (Resizing bilinear/nearest, CenterCrop both ways, Rescaling, Normalization, every
random augmentation layer); preprocess_input inside the model (Keras 2 TFOpLambda, Keras 3
ops); TF.js layers directories (float32 multi-shard, uint8 and uint16 quantized) and the real
nsfwjs TF.js model that becomes Morsel's default model.

Formats: `.keras` (Keras 3 zip), `.h5 K3` (legacy HDF5 written by Keras 3), `.h5 K2` (written by
tf_keras, i.e. TF 2.x Keras 2), `tfjs` (model.json + shards written here from the tf_keras
model; no tensorflowjs package needed), `tfjs u8` / `tfjs u16` (affine-quantized weights; the
reference Keras model then holds the dequantized weights).

Every BatchNormalization gets random gamma/beta and moving statistics fitted to what its input
really is on this row's inputs, each mean then shifted up by 0..0.5 sigma (fit_bn_statistics:
purely random statistics kill every unit and the outputs stop depending on the input); every
Normalization a random mean/variance and every bias a random value; the last Dense is scaled so
that the outputs are neither uniform nor saturated (column `outputs`; a row fails when they are,
as a 1e-5 bound on a uniform softmax would be vacuous, and when they do not move with the
input). The reference is Keras loading the saved file (the TF.js
rows: tf_keras rebuilding the topology and taking the weights as stored).

Every case draws its own networks and inputs: each comes from an rng seeded by SEED, the CRC-32
of the case's 'title @ size' and of the stream ('inputs', 'k3/<draw>' for the Keras 3 network,
'k2/<draw>' for the tf_keras one; case_rng), so a row is the same whatever --only selects and
whichever rows ran before it. Once its BN statistics are fitted and its head calibrated, each
network is probed (parity_models.conditioning, printed as the row's `probe:` line): its inputs
are moved by 1e-6 of their range and the largest relative logit change is measured. Above
parity_models.PROBE_MAX (1.5e-5; measured: below it Keras-f32 stayed within 6.1e-6 of
Keras-f64, above it reached 1e-5..1e-4) the network amplifies float32 rounding into a good part
of the tolerance, and is redrawn from the next stream, DRAWS (3) networks at most; when all are
above it the best-conditioned one is kept and judged as below, and when even that one is above
parity_models.PROBE_CHAOTIC (1e-3) the network is chaotic and its rows fail without being run.
The probe costs two float32 passes, and comes before the float64 arbitration rather than
replacing it: it says how much rounding can move the outputs, not which float32 engine is
closer to the exact ones.

A row whose probabilities or logits are further than 1e-5 from Keras's is arbitrated by Keras
itself computing in float64 on the source weights (parity_models.keras_float64; not a float64
run of the exported file, which would carry an exporter error along): it passes (verdict ok*,
both distances printed) only when Morsel's probabilities and logits are within 1e-5 of the
float64 ones on all inputs, or within parity_models.F32_SPREAD (4) times Keras's own float32
distance from them, and never when that distance exceeds parity_models.CHAOTIC (1e-3: the
random network is then chaotic and the row proves nothing): on an ill-conditioned model Keras-f32 itself lands 1-3e-5 from the exact
outputs (InceptionV3 @ 75 .h5 K2: 2.4e-5, Morsel 2.0e-5), which of two float32 engines is closer
is a matter of rounding order, and a translation error is orders of magnitude further. (VGG16 at
64 px, logits up to 6: Keras-f32 is 1.9e-5 from float64 in logits and 5.7e-6 in probabilities;
the exported file evaluated in float64 is 9e-7 from Keras-f64; Morsel 2.4e-5 with the scalar
kernels, 3.6e-5 with AVX2 since the GEMMs sum each K block apart.) Every row also needs finite outputs that depend on the input (npref.Agreement),
and one exported file with a single early conv weight altered and the checksums recomputed
must fail the same comparison (the mutation check).

Columns: MB = .morsel size; export s = exporter wall time (--no-selftest, a fresh Python);
max|Δp| = largest probability difference over 20 random inputs; logit rel = max |Δlogit| /
max |logit| (pre-softmax / pre-sigmoid values, MORSEL_OUTPUT_LOGITS); top-1 = argmax agreement;
ms = `morsel bench --threads 1 --runs 5` median; Keras ms = one model(x) call in this process
(TensorFlow's default threads); verify = `morsel verify` of a file exported with its
self-test (rows where that is done). Pass: max|Δp| <= 1e-5, logit rel <= 1e-5, 20/20 top-1,
informative outputs.

    python test/parity_table.py [--only REGEX] [--quick] [--more] [--apps] [--list] [--keep DIR]

--apps replaces the table by every keras.applications classifier (parity_apps.py: enumerated
from the installed Keras and tf_keras, smallest input in every format, then default size with
3 inputs; ctest parity_apps_full, label full, and the subset parity_apps_ci). A Keras-3 .h5
row whose file Keras cannot reload (MobileNetV3, ConvNeXt) is compared with the Keras object
that wrote it (same weights), and the row says so.

--quick skips the default-size rows (development); --more adds ConvNeXtTiny, NASNetMobile,
InceptionResNetV2 and tf_keras's RegNetX002 / RegNetY002 at small inputs (minutes each, so not
in the ctest run). ctest runs the full table. Needs MORSEL_BIN
(the CLI) and MORSEL_LIB (libmorsel.so; default: next to MORSEL_BIN), keras, tf_keras, and the
nsfwjs TF.js directory that weights/get_default_model.sh unpacks into .deps/ (setup.sh runs it).
"""

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import harness  # noqa: E402,F401  (sys.path and environment)
from harness import HERE, ROOT  # noqa: E402,F401

import numpy as np  # noqa: E402

import npref  # noqa: E402
import parity_models as P  # noqa: E402
from morsel_exporter.selftest import app_custom_objects  # noqa: E402
from parity_apps import N_DEFAULT  # noqa: E402

TOL = 1e-5
N_INPUTS = 20
EXPORTER = harness.EXPORTER
NSFWJS_DIR = os.path.join(ROOT, ".deps", "nsfwjs-4.4.0-mobilenet_v2-tfjs")

K3F = [".keras", ".h5 K3", ".h5 K2"]
SEED = 20240611
DRAWS = 3  # networks drawn per case and Keras before a chaotic one fails its rows


def case_rng(case, stream):
    """The rng of one stream of a case ('inputs', 'k3/0', 'k2/1', ...): seeded by SEED, the
    CRC-32 of 'title @ size' and of the stream's name, so every row draws the same network and
    inputs whatever --only selects (and whichever of its case's formats run with it)."""
    return np.random.default_rng([SEED, zlib.crc32(f"{case.title} @ {case.size}".encode()),
                                  zlib.crc32(stream.encode())])


class Case:
    def __init__(self, title, size, formats, build=None, mode="tf", n_inputs=N_INPUTS, **kw):
        self.title = title
        self.n_inputs = n_inputs
        self.size = size            # printed input size
        self.formats = formats
        self.build = build          # build(k) -> model; None: build_arch from kw
        self.mode = mode            # preprocessing of the random inputs / --preprocess
        self.kw = kw
        self.sigmoid = kw.get("head_kind") == "flatten_sigmoid"


def arch(title, name, size, head_kind, n_classes, formats=K3F, alpha=None, nested=True):
    return Case(title, size, formats, None, P.ARCHS[name][2], arch=name, alpha=alpha,
                head_kind=head_kind, n_classes=n_classes, nested=nested)


def app_case(title, name, size, mode, formats, head_kind, extra, n_inputs=N_INPUTS):
    """A parity_apps row: any keras.applications classifier, nested as users do."""
    return Case(title, size, formats, None, mode, n_inputs, arch=name, alpha=None,
                head_kind=head_kind, n_classes=11, nested=True, extra=extra)


def more_cases():
    """The keras.applications models of issue 11 at small inputs, opt-in (--more): each takes
    minutes over its three formats, too much for every CI run. ConvNeXt has no '.h5 K3' row:
    Keras 3.15 cannot reload its own legacy .h5 of it (functional_from_config: "TypeError: too
    many positional arguments"), so there is no reference to compare with."""
    return [
        arch("ConvNeXtTiny", "ConvNeXtTiny", 32, "gap_dense_bn", 11,
             formats=[".keras", ".h5 K2"]),
        arch("NASNetMobile", "NASNetMobile", 32, "gap_dense_bn", 11),
        arch("InceptionResNetV2", "InceptionResNetV2", 75, "spatial_stack", 11, nested=False),
        arch("RegNetX002 (tf_keras)", "RegNetX002", 32, "gap_dense_bn", 11, [".h5 K2"]),
        arch("RegNetY002 (tf_keras)", "RegNetY002", 32, "gap_dense_bn", 11, [".h5 K2"]),
    ]


def cases(quick):
    small = [
        arch("MobileNet a0.25", "MobileNet", 64, "gap_dense_bn", 11, alpha=0.25,
             formats=K3F + ["tfjs u8"]),
        arch("MobileNet a0.75", "MobileNet", 64, "spatial_stack", 5, alpha=0.75),
        arch("MobileNet a1.0", "MobileNet", 64, "flatten_sigmoid", 6, alpha=1.0, nested=False),
        arch("MobileNetV2 a0.35", "MobileNetV2", 64, "gap_dense_bn", 101, alpha=0.35),
        arch("MobileNetV2 a1.0", "MobileNetV2", 64, "spatial_stack", 11, alpha=1.0,
             formats=K3F + ["tfjs"]),
        arch("MobileNetV2 a1.4", "MobileNetV2", 64, "flatten_sigmoid", 5, alpha=1.4,
             nested=False),
        arch("ResNet50", "ResNet50", 64, "gap_dense_bn", 11),
        arch("ResNet50V2", "ResNet50V2", 64, "spatial_stack", 11),
        arch("ResNet101V2", "ResNet101V2", 64, "gap_dense_bn", 101),
        arch("Xception", "Xception", 71, "flatten_sigmoid", 8),
        arch("VGG16", "VGG16", 64, "flatten_sigmoid", 5, nested=False),
        arch("InceptionV3", "InceptionV3", 75, "spatial_stack", 11, nested=False),
        arch("EfficientNetB0", "EfficientNetB0", 64, "gap_dense_bn", 11,
             formats=K3F + ["tfjs u16"]),
    ]
    default = [
        arch("MobileNet a1.0", "MobileNet", 224, "gap_dense_bn", 11, [".keras"], alpha=1.0),
        arch("MobileNetV2 a1.0", "MobileNetV2", 224, "gap_dense_bn", 11, [".keras"]),
        arch("ResNet50", "ResNet50", 224, "spatial_stack", 11, [".keras"]),
        arch("ResNet50V2", "ResNet50V2", 224, "gap_dense_bn", 11, [".keras"]),
        arch("ResNet101V2", "ResNet101V2", 224, "gap_dense_bn", 101, [".keras"]),
        arch("Xception", "Xception", 299, "gap_dense_bn", 11, [".keras"]),
        arch("VGG16", "VGG16", 224, "flatten_sigmoid", 5, [".keras"], nested=False),
        arch("InceptionV3", "InceptionV3", 299, "spatial_stack", 11, [".keras"]),
        arch("EfficientNetB0", "EfficientNetB0", 224, "gap_dense_bn", 11, [".keras"]),
    ]
    wiring = [
        Case("nested3 + shared", 32, K3F + ["tfjs"], P.build_nested_shared, "tf"),
        Case("preproc bilinear", "45x52", K3F, lambda k: P.build_preproc(k, "bilinear"),
             "pixels"),
        Case("preproc nearest", "20x27", K3F, lambda k: P.build_preproc(k, "nearest"),
             "pixels"),
        Case("preproc aspect K3", "41x29", [".keras"], lambda k: P.build_preproc(k, "aspect"),
             "pixels"),
        Case("preproc aspect K2", "41x29", [".h5 K2"], lambda k: P.build_preproc(k, "aspect"),
             "pixels"),
        Case("preprocess_input tf", 24, [".h5 K2"], lambda k: P.build_tfoplambda(k, "tf"),
             "pixels"),
        Case("preprocess_input caffe", 24, [".h5 K2"],
             lambda k: P.build_tfoplambda(k, "caffe"), "pixels"),
        Case("K3 ops preprocess tf", "30x34", [".keras"], lambda k: P.build_k3ops(k, "tf"),
             "pixels"),
        Case("K3 ops preprocess caffe", "30x34", [".keras"],
             lambda k: P.build_k3ops(k, "caffe"), "pixels"),
    ]
    real = [Case("nsfwjs MobileNetV2 (real)", 224, ["tfjs u8 real"], None, "unit")]
    return small + wiring + real + ([] if quick else default)


# ---- rows ------------------------------------------------------------------------------------

class Row:
    def __init__(self, case, fmt):
        self.case, self.fmt = case, fmt
        self.mb = self.export_s = self.ms = self.keras_ms = None
        self.agree = None
        self.outputs = ""
        self.informative = False
        self.verify = "-"
        self.error = None
        self.f64 = None  # P.Arbitration, when Morsel is further than TOL from Keras-f32
        self.seconds = None  # wall time of the row (export, both runs, bench)
        self.note = None  # how the reference was obtained, when not by reloading the file
        self.probe = None  # the conditioning probe of the row's network (Runner.prepare)

    @property
    def agrees(self):
        """Keras agreement; probabilities or logits further than TOL from Keras's pass only
        when Keras in float64 shows Morsel within TOL of the exact values, or within F32_SPREAD
        times Keras-f32's own distance (parity_models.parity_ok)."""
        return P.parity_ok(self.agree, self.f64, TOL)

    @property
    def ok(self):
        return (self.error is None and self.agrees and self.informative
                and self.verify in ("-", "ok"))


def fmt_num(v, f):
    return "-" if v is None else format(v, f)


def print_table(rows, out=sys.stdout):
    hdr = (f"{'architecture':<26} {'input':>6} {'format':<13} {'MB':>7} {'export s':>8} "
           f"{'max|Δp|':>9} {'logit rel':>9} {'top-1':>6} {'ms':>8} {'Keras ms':>8} "
           f"{'verify':>6}  {'outputs':<24} {'row s':>6} verdict")
    print(hdr, file=out)
    print("-" * len(hdr), file=out)
    for r in rows:
        a = r.agree
        print(f"{r.case.title:<26} {str(r.case.size):>6} {r.fmt:<13} {fmt_num(r.mb, '7.2f')} "
              f"{fmt_num(r.export_s, '8.1f')} {fmt_num(a and a.dprob, '9.1e')} "
              f"{fmt_num(a and a.rel, '9.1e')} "
              f"{(f'{a.top1}/{a.n}' if a else '-'):>6} {fmt_num(r.ms, '8.2f')} "
              f"{fmt_num(r.keras_ms, '8.1f')} {r.verify:>6}  {r.outputs:<24} "
              f"{fmt_num(r.seconds, '6.0f')} "
              f"{('ok*' if r.agree and P.needs_arbitration(r.agree, TOL) else 'ok') if r.ok else 'FAIL'}",
              file=out)
        if r.f64:
            print(f"    * {r.f64.describe()}", file=out)
        if r.probe:
            print(f"    probe: {r.probe}", file=out)
        if r.note:
            print(f"    note: {r.note}", file=out)
        for p in (r.agree.problems() if r.agree else []):
            print(f"    ^ {p}", file=out)
        if r.error:
            print(f"    ^ {r.error}", file=out)


def key_of(fmt):
    """Which Keras's network a format's row uses: 'k3' (keras) or 'k2' (tf_keras, TF.js)."""
    return "k3" if fmt in (".keras", ".h5 K3") else "k2"


class Runner:
    def __init__(self, tmp, engine, binary):
        self.tmp, self.engine, self.binary = tmp, engine, binary
        self.mutation = None  # the mutated-file Row, once made
        import keras
        import tf_keras
        self.keras, self.tf_keras = keras, tf_keras

    def k_of(self, fmt):
        return self.keras if fmt in (".keras", ".h5 K3") else self.tf_keras

    # -- steps --

    def export(self, src, out, mode, selftest=False):
        cmd = [sys.executable, EXPORTER, src, "-o", out, "-q"]
        if mode in ("tf", "caffe", "unit", "raw"):
            cmd += ["--preprocess", mode]
        if not selftest:
            cmd.append("--no-selftest")
        t = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.time() - t
        if r.returncode != 0:
            raise RuntimeError(f"export failed: {r.stderr.strip()[-600:]}")
        return dt

    def bench(self, path):
        r = subprocess.run([self.binary, "bench", "--model", path, "--runs", "5", "--warmup",
                            "1", "--threads", "1", "--json"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"morsel bench failed: {r.stderr.strip()}")
        return float(json.loads(r.stdout)["median_ms"])

    def verify(self, path):
        r = subprocess.run([self.binary, "verify", path], capture_output=True, text=True)
        return "ok" if r.returncode == 0 else "FAIL"

    def compare(self, row, morsel_path, ref_model, k, xs, timing=True):
        parsed = npref.read(morsel_path)  # the independent reader checks every format rule
        n_out = parsed.tensors[parsed.output]["size"]
        has_logits = parsed.logits != 0xFFFFFFFF
        ref_p, ref_l = P.keras_outputs(ref_model, k, xs)
        row.outputs, row.informative = P.informative(ref_p, row.case.sigmoid)
        mp, ml = self.engine.run(morsel_path, xs, n_out, has_logits)
        agree = npref.Agreement(row.case.title)
        for i in range(len(xs)):
            agree.add(mp[i], ml[i] if has_logits else None, ref_p[i], ref_l[i])
        row.agree = agree
        row.outputs += f", {agree.spread[0]} top-1"
        if has_logits and P.needs_arbitration(agree, TOL):
            row.f64 = P.arbitrate(ref_model, k, xs, (mp, ml), (ref_p, ref_l))
        if not has_logits:
            row.error = "the exported file keeps no logits"
        # The CLI gives the same bits as the library for the first input.
        cli = npref.morsel_run(self.binary, morsel_path, xs[0], tmpdir=self.tmp)
        if not np.array_equal(cli.reshape(-1), mp[0].reshape(-1)):
            row.error = "`morsel run` and libmorsel disagree"
        if not timing:
            return
        t = []
        for _ in range(3):
            t0 = time.perf_counter()
            ref_model(xs[:1], training=False)
            t.append((time.perf_counter() - t0) * 1e3)
        row.keras_ms = sorted(t)[1]
        row.mb = os.path.getsize(morsel_path) / 1e6
        row.ms = self.bench(morsel_path)

    # -- a case --

    def draw(self, case, key, attempt):
        """Network `attempt` of the case for one Keras ('k3' keras, 'k2' tf_keras): built
        with seeds from its own stream and randomized (P.randomize). Returns (model, rng)."""
        k = self.keras if key == "k3" else self.tf_keras
        rng = case_rng(case, f"{key}/{attempt}")
        k.utils.set_random_seed(int(rng.integers(1 << 30)))
        m = case.build(k) if case.build else P.build_arch(k, case.kw["arch"], case.size,
                                                            case.kw["alpha"],
                                                            case.kw["head_kind"],
                                                            case.kw["n_classes"],
                                                            case.kw["nested"],
                                                            case.kw.get("extra"))
        P.randomize(m, k, rng)
        return m, rng

    def prepare(self, case, keys):
        """The case's inputs and one network per Keras in `keys`, BN statistics fitted to the
        inputs and the head calibrated, then probed (P.conditioning): a network whose logits
        move by more than P.PROBE_MAX when the inputs move by P.PROBE_EPS is redrawn from the
        next stream, DRAWS networks at most. When all are above it the best-conditioned one is
        kept (drawn again: the streams are deterministic) and its rows go on to the float64
        arbitration, unless it is above P.PROBE_CHAOTIC: then it is None and its rows fail.
        Returns (xs, {key: model or None}, {key: what the probe saw})."""
        rng_in = case_rng(case, "inputs")
        xs, models, probes = None, {}, {}

        def ready(key, attempt):
            nonlocal xs
            k = self.keras if key == "k3" else self.tf_keras
            m, rng = self.draw(case, key, attempt)
            if xs is None:
                shape = tuple(m.input_shape[1:3])
                if case.mode == "pixels":
                    xs = rng_in.uniform(0, 255, (case.n_inputs,) + shape + (3,)) \
                        .astype(np.float32)
                else:
                    xs = P.random_inputs(rng_in, case.n_inputs, shape, case.mode)
            P.fit_bn_statistics(m, k, xs, rng)
            P.calibrate(m, k, xs)
            return m, P.conditioning(m, k, xs, rng)

        for key in keys:
            seen = []
            for attempt in range(DRAWS):
                m, c = ready(key, attempt)
                seen.append(c)
                if c <= P.PROBE_MAX:
                    break
                del m
                m = None
                gc.collect()
            what = f"inputs moved by {P.PROBE_EPS:g} (relative) move the logits by " + \
                ", then ".join(f"{c:.1e}" for c in seen)
            if len(seen) > 1:
                what += f" (draws over {P.PROBE_MAX:g} are redrawn)"
            if m is None:
                best = int(np.argmin(seen))
                if seen[best] > P.PROBE_CHAOTIC:
                    what += (f"; chaotic in all {DRAWS} draws (> {P.PROBE_CHAOTIC:g}): "
                             "Keras's own float32 rounding decides the outputs, the row "
                             "cannot be judged and fails")
                else:
                    m, c = ready(key, best)
                    what += (f"; ill-conditioned in all {DRAWS}: draw {best + 1} kept "
                             f"(probed again: {c:.1e}), judged with float64 arbitration "
                             "if needed")
            models[key], probes[key] = m, what
        return xs, models, probes

    def run_case(self, case, rows):
        base = os.path.join(self.tmp, re.sub(r"[^A-Za-z0-9]+", "_", f"{case.title}_{case.size}"))
        if "tfjs u8 real" in case.formats:
            return self.run_nsfwjs(case, rows, case_rng(case, "inputs"))
        keys = sorted({key_of(f) for f in case.formats}, reverse=True)  # k3 first
        xs, models, probes = self.prepare(case, keys)

        for fmt in case.formats:
            row = Row(case, fmt)
            row.probe = probes[key_of(fmt)]
            rows.append(row)
            t0 = time.time()
            if models[key_of(fmt)] is None:
                row.error = "chaotic test network (see probe)"
            else:
                try:
                    self.run_format(case, fmt, models, base, xs, row)
                except Exception as e:  # a failing row is reported, the table goes on
                    row.error = f"{type(e).__name__}: {str(e).strip()[:400]}"
            row.seconds = time.time() - t0
            progress(row, row.seconds)

    def run_format(self, case, fmt, models, base, xs, row):
        keras, tf_keras = self.keras, self.tf_keras
        selftest = case.build is not None or fmt.startswith("tfjs")
        if fmt.startswith("tfjs"):
            m = models["k2"]
            d = base + "_" + fmt.replace(" ", "_")
            quant = {"tfjs": None, "tfjs u8": "uint8", "tfjs u16": "uint16"}[fmt]
            values = P.write_tfjs(m, d, quant)
            with open(os.path.join(d, "model.json")) as f:
                topo = json.load(f)["modelTopology"]["model_config"]
            ref = tf_keras.models.model_from_json(json.dumps(topo))
            P.set_all_weights(ref, values)
            src, k = d, tf_keras
        else:
            k = self.k_of(fmt)
            m = models["k3" if k is keras else "k2"]
            src = base + {".keras": ".keras", ".h5 K3": "_k3.h5", ".h5 K2": "_k2.h5"}[fmt]
            m.save(src)
            try:
                ref = k.models.load_model(src, compile=False,
                                          custom_objects=app_custom_objects(k.__name__))
            except Exception as e:
                if fmt != ".h5 K3":
                    raise
                # Keras 3 writes legacy .h5 files it cannot read back (MobileNetV3: the
                # keras.ops call of hard-swish loses its module; ConvNeXt): the reference is
                # then the Keras object that wrote the file, i.e. the same weights.
                row.note = (f"reference: the saved Keras object (Keras cannot reload this "
                            f".h5: {type(e).__name__}: {str(e).strip().splitlines()[0][:80]})")
                ref = m
            for layer in P.leaves(ref):
                if type(layer).__name__ == "Normalization" and hasattr(layer, "finalize_state"):
                    layer.finalize_state()
        out = (src.rstrip("/") if os.path.isdir(src) else os.path.splitext(src)[0]) + \
            ("_" + fmt.split()[-1] if fmt.startswith("tfjs") else "") + ".morsel"
        row.export_s = self.export(src, out, case.mode)
        self.compare(row, out, ref, k, xs)
        if self.mutation is None and not fmt.startswith("tfjs"):
            self.mutate(row, out, ref, k, xs)
        if selftest:
            st = out.replace(".morsel", "_st.morsel")
            self.export(src, st, case.mode, selftest=True)
            row.verify = self.verify(st)
        del ref
        gc.collect()

    def mutate(self, row, out, ref, k, xs):
        """The same comparison on the file with one early conv weight altered and re-signed:
        it must fail, or the table could not see an exporter error."""
        bad = Row(row.case, row.fmt + " mutated")
        self.mutation = bad
        try:
            bad.mutation = P.mutate_early_conv(out, out + ".mutated")
            self.compare(bad, out + ".mutated", ref, k, xs, timing=False)
        except Exception as e:
            bad.error = f"{type(e).__name__}: {str(e).strip()[:400]}"

    def run_nsfwjs(self, case, rows, rng):
        """The real TF.js model (uint8-quantized weights, Keras 2.2.4 topology): Keras is
        tf_keras rebuilding the topology with the dequantized weights (the TF.js runtime is
        not available here)."""
        row = Row(case, "tfjs u8 (real)")
        rows.append(row)
        t0 = time.time()
        try:
            if not os.path.isfile(os.path.join(NSFWJS_DIR, "model.json")):
                raise RuntimeError(f"{NSFWJS_DIR}/model.json is missing: run "
                                   "weights/get_default_model.sh (setup.sh does)")
            ref = nsfwjs_reference(self.tf_keras, NSFWJS_DIR)
            xs = P.random_inputs(rng, N_INPUTS, (224, 224), "unit")
            out = os.path.join(self.tmp, "nsfwjs.morsel")
            row.export_s = self.export(NSFWJS_DIR, out, "unit")
            self.compare(row, out, ref, self.tf_keras, xs)
            st = os.path.join(self.tmp, "nsfwjs_st.morsel")
            self.export(NSFWJS_DIR, st, "unit", selftest=True)
            row.verify = self.verify(st)
        except Exception as e:
            row.error = f"{type(e).__name__}: {str(e).strip()[:400]}"
        progress(row, time.time() - t0)


def progress(row, seconds):
    a = row.agree
    print(f"   {row.fmt:<14} {'ok  ' if row.ok else 'FAIL'} "
          f"max|Δp| {fmt_num(a and a.dprob, '.1e')}"
          f" logit rel {fmt_num(a and a.rel, '.1e')} top-1 {(f'{a.top1}/{a.n}' if a else '-')}"
          f" {row.outputs} ({seconds:.0f} s)"
          + (f"\n      {row.f64.describe()}" if row.f64 else "")
          + (f"\n      probe: {row.probe}" if row.probe else "")
          + (f"\n      note: {row.note}" if row.note else "")
          + "".join(f"\n      {p}" for p in (a.problems() if a else []))
          + (f"\n      {row.error}" if row.error else ""), flush=True)


def nsfwjs_reference(tf_keras, d):
    """tf_keras model from a TF.js model.json: the topology's config, weights matched by the
    manifest's names (layer/role), uint8 values dequantized as min + scale * q."""
    with open(os.path.join(d, "model.json")) as f:
        doc = json.load(f)
    topo = doc["modelTopology"]
    cfg = topo.get("model_config", topo)
    model = tf_keras.models.model_from_json(json.dumps({"class_name": cfg["class_name"],
                                                        "config": cfg["config"]}))
    stored = {}
    for group in doc["weightsManifest"]:
        blob = b"".join(open(os.path.join(d, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            shape = w["shape"]
            n = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if q:
                dt = {"uint8": "<u1", "uint16": "<u2", "float16": "<f2"}[q["dtype"]]
                raw = np.frombuffer(blob, dt, n, off)
                off += n * np.dtype(dt).itemsize
                vals = raw.astype(np.float32) if q["dtype"] == "float16" else \
                    P.dequantize(raw, float(q["min"]), float(q["scale"]))
            else:
                raw = np.frombuffer(blob, "<f4" if w.get("dtype", "float32") == "float32"
                                    else "<i4", n, off)
                off += 4 * n
                vals = raw.astype(np.float32)
            stored[w["name"]] = vals.reshape(shape)
    values = []
    for v in model.weights:
        name = v.name.split(":")[0]
        cands = [k for k in stored if k == name or k.endswith("/" + name)
                 or name.endswith("/" + k)]
        if len(cands) != 1:
            raise RuntimeError(f"nsfwjs: weight {name} matches {cands}")
        values.append(stored[cands[0]])
    P.set_all_weights(model, values)
    return model


# ---- what the new translations refuse, and how ------------------------------------------------

def refusals(tmp):
    """The limits of the in-model preprocessing and raw-op support stop the export with a
    message naming the layer and the reason (no traceback, no output file)."""
    import keras
    import tensorflow as tf
    import tf_keras
    results = []

    def model(k, body, shape=(16, 16, 3)):
        i = k.Input(shape, name="pixels")
        x = body(i)
        x = k.layers.Conv2D(4, 3, name="conv")(x)
        x = k.layers.GlobalAveragePooling2D(name="gap")(x)
        return k.Model(i, k.layers.Dense(2, activation="softmax", name="out")(x))

    cases = [
        ("Resizing bicubic (.keras)", keras, ".keras",
         lambda i: keras.layers.Resizing(8, 8, interpolation="bicubic", name="rs_bicubic")(i),
         ["'rs_bicubic'", "class Resizing", "interpolation 'bicubic'"]),
        ("Resizing antialias (.keras)", keras, ".keras",
         lambda i: keras.layers.Resizing(8, 8, antialias=True, name="rs_aa")(i),
         ["'rs_aa'", "antialias=True"]),
        ("constant / tensor (TFOpLambda)", tf_keras, ".h5",
         lambda i: 2.0 / (i + 1.0), ["class TFOpLambda", "not affine"]),
        ("tf.math.reciprocal (TFOpLambda)", tf_keras, ".h5",
         lambda i: tf.math.reciprocal(i + 1.0), ["class TFOpLambda", "tf.math.reciprocal",
                                                   "not supported"]),
        ("per-pixel constant (TFOpLambda)", tf_keras, ".h5",
         lambda i: i - np.ones((16, 16, 3), np.float32),
         ["class TFOpLambda", "only scalars and one value per channel"]),
        ("keras.ops.sqrt (Keras 3 op)", keras, ".keras",
         lambda i: keras.ops.sqrt(i), ["class Sqrt", "not supported"]),
        ("Lambda (.keras)", keras, ".keras",
         lambda i: keras.layers.Lambda(lambda t: t * 2.0, name="my_lambda")(i),
         ["'my_lambda'", "class Lambda", "rebuild the model", "Rescaling"]),
    ]
    for title, k, ext, body, must in cases:
        row = Refusal(title)
        results.append(row)
        try:
            src = os.path.join(tmp, re.sub(r"\W+", "_", title) + ext)
            model(k, body).save(src)
            out = src + ".morsel"
            r = subprocess.run([sys.executable, EXPORTER, src, "-o", out, "--no-selftest"],
                               capture_output=True, text=True)
            msg = r.stderr.strip()
            row.message = msg.splitlines()[0] if msg else ""
            if r.returncode == 0 or os.path.exists(out):
                row.problems.append("exported")
            if "Traceback" in msg:
                row.problems.append("traceback")
            row.problems += [f"message lacks {m!r}" for m in must if m not in msg]
        except Exception as e:
            row.problems.append(f"{type(e).__name__}: {e}")
    return results


class Refusal:
    def __init__(self, title):
        self.title, self.message, self.problems = title, "", []

    @property
    def ok(self):
        return not self.problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run only the rows whose 'title @ size format' matches this "
                                   "regex (e.g. 'ResNet50 @' or 'DenseNet121 @ 32 .keras')")
    ap.add_argument("--quick", action="store_true", help="skip the default-size rows")
    ap.add_argument("--keep", help="keep the saved models and .morsel files in this directory")
    ap.add_argument("--more", action="store_true",
                    help="add the heavy rows of issue 11 (ConvNeXtTiny, NASNetMobile, "
                         "InceptionResNetV2 at small inputs); not in the default run")
    ap.add_argument("--apps", action="store_true",
                    help="instead of the table: every keras.applications classifier (and "
                         "tf_keras's extras) at its smallest input in every format and at its "
                         "default size as .keras (parity_apps.py; ctest -L full)")
    ap.add_argument("--list", action="store_true", help="print the selected rows and stop")
    args = ap.parse_args()
    t_start = time.time()
    try:
        import keras  # noqa: F401
        import tf_keras  # noqa: F401
    except ImportError as e:
        print(f"FAIL: keras and tf_keras are required ({e})")
        return 1
    if args.apps:
        import parity_apps
        every = parity_apps.app_cases(keras, tf_keras, args.quick, app_case)
    else:
        every = cases(args.quick) + (more_cases() if args.more else [])
    todo = []
    for c in every:  # --only matches "title @ size format" (one row) or a prefix of it
        c.formats = [f for f in c.formats
                     if not args.only or re.search(args.only, f"{c.title} @ {c.size} {f}")]
        if c.formats:
            todo.append(c)
    if args.list:
        for c in todo:
            print(f"{c.title} @ {c.size}: {', '.join(c.formats)} ({c.n_inputs} inputs, "
                  f"preprocess {c.mode})")
        return 0
    try:
        binary, engine = P.open_engine()
    except (RuntimeError, OSError) as e:
        print(f"FAIL: {e}")
        return 1
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        tmp = args.keep
    else:
        tmp = tempfile.mkdtemp(prefix="morsel_parity_table_")
    runner = Runner(tmp, engine, binary)
    rows = []
    print(f"parity table: {len(todo)} cases, {N_INPUTS} random inputs each (default-size "
          f"--apps rows: {N_DEFAULT}), tolerance {TOL:g}\n")
    for case in todo:
        print(f"== {case.title} @ {case.size}: {', '.join(case.formats)}", flush=True)
        try:
            runner.run_case(case, rows)
        except Exception as e:
            for fmt in case.formats:
                if not any(r.case is case and r.fmt == fmt for r in rows):
                    row = Row(case, fmt)
                    row.error = f"{type(e).__name__}: {str(e).strip()[:400]}"
                    rows.append(row)
        runner.keras.backend.clear_session()
        runner.tf_keras.backend.clear_session()
        gc.collect()
        if not args.keep:
            for f in os.listdir(tmp):
                p = os.path.join(tmp, f)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

    refused = []
    if not args.only and not args.apps:
        print("== refusals", flush=True)
        refused = refusals(tmp)

    print(f"\n==== parity table (Morsel vs Keras; {N_INPUTS} random inputs per row; pass: "
          f"max|Δp| <= {TOL:g}, logit rel <= {TOL:g}, all top-1, informative outputs; "
          "ok* = arbitrated by Keras in float64 on the source weights)\n")
    print_table(rows)
    if refused:
        print("\n==== refused with a clear message (exit 1, no output, no traceback)\n")
        for r in refused:
            print(f"{r.title:<34} {'ok' if r.ok else 'FAIL':<5} {r.message[:110]}")
            for p in r.problems:
                print(f"    ^ {p}")
    n_ok = sum(r.ok for r in rows) + sum(r.ok for r in refused)
    n_bad = len(rows) + len(refused) - n_ok
    bad = runner.mutation
    print("\n==== mutation check: one early conv weight negated, checksums recomputed; the "
          "row must FAIL\n")
    if bad is None:
        print("not run: no Keras-file row in this selection" + ("" if args.only else " (FAIL)"))
        n_bad += 0 if args.only else 1
    else:
        print(getattr(bad, "mutation", ""))
        print_table([bad])
        a = bad.agree
        # Caught by the distances themselves (not by an error or the input-dependence rule).
        caught = bad.error is None and a is not None and not a.problems() and \
            not P.parity_ok(a, bad.f64, TOL)
        print(f"mutation check: {'ok (the parity check fails on it)' if caught else 'FAIL'}")
        n_ok += caught
        n_bad += not caught
    print(f"\ntotal {time.time() - t_start:.0f} s")
    arb = [r for r in rows if r.f64]
    print(f"arbitrated rows (> {TOL:g} from Keras, judged by Keras float64): "
          f"{len(arb)}, {sum(r.ok for r in arb)} of them ok*")
    print(f"{n_ok} passed, {n_bad} failed")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if n_bad == 0 and rows else 1


if __name__ == "__main__":
    sys.exit(main())
