#!/usr/bin/env python3
"""Every op and activation the exporter translates, each against the Keras that defines it: a
small model per op (input -> the op -> flatten -> dense softmax) built in Keras 3 and, where
Keras 2 spells it too, in tf_keras, saved (.keras / .h5), exported, run by libmorsel on 12
random inputs and compared with Keras at 1e-5 (max |Δprob| and logits relative error), with
finite outputs that depend on the input.

Covered: GELU, tanh, hard_sigmoid (Keras 3 relu6(x+3)/6 and Keras 2 clip(0.2x+0.5)), hard_swish,
the 'leaky_relu' string, the Softmax layer, dilated Conv2D and DepthwiseConv2D,
GlobalMaxPooling2D and DepthwiseConv2D with depth_multiplier > 1; and the layers of issue 11:
grouped Conv2D (general, and groups == channels as depthwise), Cropping2D, UpSampling2D
(nearest, bilinear), LayerNormalization (on [H, W, C] and on a vector), ConvNeXt's LayerScale
(folded, and not), InceptionResNetV2's CustomScaleLayer and Conv2DTranspose ('same', 'valid'
with a kernel smaller than the stride, output_padding), also from Keras 3 legacy .h5 files
("k3h5"); and `x * gate` of an [H, W, C] tensor by a [1, 1, C] one written as an operator (RegNetY).
LayerNormalization and LayerScale get random gamma/beta. The first convolution's
kernel is scaled so its outputs span about ±6: every piece of the piecewise activations
(both clip ends of hard_sigmoid, the negative side of leaky_relu) is reached.

Fused activations, once: every op that carries an activation (Conv2D, DepthwiseConv2D, Dense,
Add, Multiply, BatchNormalization, AveragePooling2D, Reshape) with a non-idempotent one (sigmoid,
leaky_relu: applied twice, either shows), and each file run with every kernel set this CPU has
(MORSEL_ISA = scalar, avx2, avx512, neon) against the exported file evaluated in float64
(npref.run) at 1e-5: lib/ops/common.c splits an activation between what a SIMD kernel fuses
(kact) and a tail (tact), and a kernel set that fused and also ran the tail, or neither, fails
here. A kernel set the CPU lacks must be refused by the library, not skipped quietly.

    python test/parity_ops.py        (needs MORSEL_BIN / MORSEL_LIB, keras, tf_keras)
"""

import os
import subprocess
import sys
import tempfile

import harness
from harness import check, finish

import numpy as np  # noqa: E402

import npref  # noqa: E402
import parity_models as P  # noqa: E402
from morsel_exporter.selftest import app_custom_objects  # noqa: E402

TOL = 1e-5
N_INPUTS = 12
SHAPE = (12, 12, 3)


def conv_act(act):
    return lambda k, x: k.layers.Conv2D(6, 3, activation=act, name="op")(x)


def softmax_layer(k, x):
    x = k.layers.Conv2D(6, 3, name="conv")(x)
    return k.layers.Softmax(name="op")(x)


def dilated_conv(k, x):
    return k.layers.Conv2D(5, 3, dilation_rate=2, activation="relu", name="op")(x)


def dilated_depthwise(k, x):
    x = k.layers.Conv2D(6, 1, name="conv")(x)
    return k.layers.DepthwiseConv2D(3, dilation_rate=(2, 3), padding="same", name="op")(x)


def depth_multiplier(k, x):
    x = k.layers.Conv2D(4, 1, name="conv")(x)
    return k.layers.DepthwiseConv2D(3, depth_multiplier=3, strides=2, name="op")(x)


def global_max(k, x):
    x = k.layers.Conv2D(8, 3, name="conv")(x)  # linear: a saturating one makes every max 1
    return k.layers.GlobalMaxPooling2D(name="op")(x)


def conv(k, x, n=6):
    return k.layers.Conv2D(n, 3, padding="same")(x)


def dense_act(act):
    return lambda k, x: k.layers.Dense(7, activation=act, name="op")(k.layers.Flatten()(x))


def depthwise_act(act):
    return lambda k, x: k.layers.DepthwiseConv2D(3, activation=act, name="op")(conv(k, x))


def then_act(op, act):
    """An op without an activation argument, then an Activation layer (the exporter fuses it
    into the op when it can: the point of the test either way)."""
    return lambda k, x: k.layers.Activation(act, name="act")(op(k, x))


def add(k, x):
    return k.layers.Add(name="op")([conv(k, x), conv(k, x)])


def multiply(k, x):
    return k.layers.Multiply(name="op")([conv(k, x), conv(k, x)])


def batchnorm(k, x):
    return k.layers.BatchNormalization(name="op")(conv(k, x))


def avgpool(k, x):
    return k.layers.AveragePooling2D(2, name="op")(conv(k, x))


def reshape(k, x):
    return k.layers.Reshape((6, 24, 6), name="op")(conv(k, x))




def grouped(k, x):
    x = k.layers.Conv2D(8, 1, name="conv")(x)
    return k.layers.Conv2D(6, 3, groups=2, strides=2, padding="same", name="op")(x)


def grouped_depthwise(k, x):
    """ConvNeXt's depthwise convolution: groups == input channels, 2 filters per group."""
    x = k.layers.Conv2D(5, 1, name="conv")(x)
    return k.layers.Conv2D(10, 3, groups=5, padding="same", activation="relu", name="op")(x)


def cropping(k, x):
    x = k.layers.Conv2D(4, 3, name="conv")(x)
    return k.layers.Cropping2D(((1, 2), (0, 3)), name="op")(x)


def pad_then_max_pool(k, x):
    """A ZeroPadding2D that stays an op (its reader is a pool, not a conv), as ResNet50V2's
    pool1_pad: the conv's negative outputs make the zero rows and columns count in the max.
    Threads split it by output rows."""
    x = k.layers.Conv2D(5, 3, name="conv")(x)
    x = k.layers.ZeroPadding2D(((2, 1), (1, 3)), name="op")(x)
    return k.layers.MaxPooling2D(3, strides=2)(x)


def upsampling(interpolation, size):
    def body(k, x):
        x = k.layers.Conv2D(4, 3, strides=2, name="conv")(x)
        return k.layers.UpSampling2D(size, interpolation=interpolation, name="op")(x)
    return body


def layer_norm(k, x):
    x = k.layers.Conv2D(6, 3, name="conv")(x)
    return k.layers.LayerNormalization(epsilon=1e-6, name="op")(x)


def layer_norm_vector(k, x):
    x = k.layers.Conv2D(6, 3, name="conv")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.layers.LayerNormalization(center=False, name="op")(x)


def conv_transpose(kernel, strides, padding, output_padding=None, act=None):
    def body(k, x):
        x = k.layers.Conv2D(4, 3, strides=2, name="conv")(x)
        return k.layers.Conv2DTranspose(3, kernel, strides=strides, padding=padding,
                                        output_padding=output_padding, activation=act,
                                        name="op")(x)
    return body


def layer_scale(fold):
    def body(k, x):
        LS = app_custom_objects(k.__name__)["LayerScale"]
        x = k.layers.Conv2D(6, 3, activation=None if fold else "relu", name="conv")(x)
        return LS(1e-1, 6, name="op")(x)
    return body


def custom_scale(k, x):
    CS = app_custom_objects(k.__name__)["CustomScaleLayer"]
    x = k.layers.Conv2D(6, 3, activation="relu", name="conv")(x)
    r = k.layers.Conv2D(6, 1, name="up")(x)
    y = CS(0.17, name="op")([x, r])
    return k.layers.Activation("relu", name="op_relu")(y)


def se_gate_product(k, x):
    """x * gate written as an operator (tf_keras RegNetY's squeeze-and-excitation): a
    TFOpLambda multiply (tf_keras) or a keras.ops node (Keras 3) of [H,W,C] by [1,1,C]."""
    x = k.layers.Conv2D(6, 3, name="conv")(x)
    g = k.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    g = k.layers.Conv2D(6, 1, activation="sigmoid", name="excite")(g)
    return x * g


def winograd_by_channels(k, x):
    """A 3x3 stride-1 conv of 32 -> 96 channels on 6x6: Winograd, and so few tiles (9) that two
    threads split it by output channels (op_conv2d.c), each transforming every input tile."""
    x = k.layers.Conv2D(32, 3, strides=2, padding="same", name="conv")(x)
    return k.layers.Conv2D(96, 3, padding="same", activation="relu", name="op")(x)


ALL = ("k3", "k3h5", "k2")
# Cases also run on 2 threads, which must give the 1-thread logits bit for bit.
TWO_THREADS = {"Conv2D 3x3 Winograd by channels", "ZeroPadding2D + MaxPooling2D"}

# (title, body, Kerases that spell it: "k3" .keras, "k3h5" Keras 3 legacy .h5, "k2" tf_keras .h5)
OPS = [
    ("gelu", conv_act("gelu"), ("k3", "k2")),
    ("tanh", conv_act("tanh"), ("k3", "k2")),
    ("hard_sigmoid", conv_act("hard_sigmoid"), ("k3", "k2")),
    ("hard_swish", conv_act("hard_swish"), ("k3",)),
    ("'leaky_relu' string", conv_act("leaky_relu"), ("k3",)),
    ("Softmax layer", softmax_layer, ("k3", "k2")),
    ("dilated Conv2D", dilated_conv, ("k3", "k2")),
    ("dilated DepthwiseConv2D", dilated_depthwise, ("k3", "k2")),
    ("GlobalMaxPooling2D", global_max, ("k3", "k2")),
    ("depth_multiplier 3", depth_multiplier, ("k3", "k2")),
    # fused activations, once
    ("Conv2D sigmoid", conv_act("sigmoid"), ("k3",)),
    ("Dense sigmoid", dense_act("sigmoid"), ("k3",)),
    ("Dense leaky_relu", dense_act("leaky_relu"), ("k3",)),
    ("DepthwiseConv2D sigmoid", depthwise_act("sigmoid"), ("k3",)),
    ("DepthwiseConv2D leaky_relu", depthwise_act("leaky_relu"), ("k3",)),
    ("Add + sigmoid", then_act(add, "sigmoid"), ("k3",)),
    ("Add + leaky_relu", then_act(add, "leaky_relu"), ("k3",)),
    ("Multiply + sigmoid", then_act(multiply, "sigmoid"), ("k3",)),
    ("Multiply + leaky_relu", then_act(multiply, "leaky_relu"), ("k3",)),
    ("BatchNorm + leaky_relu", then_act(batchnorm, "leaky_relu"), ("k3",)),
    ("AveragePooling2D + sigmoid", then_act(avgpool, "sigmoid"), ("k3",)),
    ("AveragePooling2D + leaky_relu", then_act(avgpool, "leaky_relu"), ("k3",)),
    ("Reshape + sigmoid", then_act(reshape, "sigmoid"), ("k3",)),
    ("Reshape + leaky_relu", then_act(reshape, "leaky_relu"), ("k3",)),
    ("grouped Conv2D", grouped, ALL),
    ("Conv2D groups=channels", grouped_depthwise, ALL),
    ("Cropping2D", cropping, ALL),
    ("ZeroPadding2D + MaxPooling2D", pad_then_max_pool, ALL),
    ("UpSampling2D nearest", upsampling("nearest", (2, 3)), ALL),
    ("UpSampling2D bilinear", upsampling("bilinear", 2), ALL),
    ("LayerNormalization", layer_norm, ALL),
    ("LayerNormalization [C]", layer_norm_vector, ALL),
    ("LayerScale folded", layer_scale(True), ALL),
    ("LayerScale after relu", layer_scale(False), ("k3", "k2")),
    ("CustomScaleLayer", custom_scale, ALL),
    ("Conv2DTranspose same s2", conv_transpose(3, 2, "same", act="relu"), ALL),
    ("Conv2DTranspose valid k2 s3", conv_transpose(2, 3, "valid"), ALL),
    ("Conv2DTranspose outpad", conv_transpose((3, 4), (2, 3), "same", (1, 2)), ALL),
    ("Conv2DTranspose valid outpad", conv_transpose(3, 2, "valid", 1), ALL),
    ("x * SE gate operator", se_gate_product, ("k3", "k2")),
    ("Conv2D 3x3 Winograd by channels", winograd_by_channels, ("k3",)),
]

ISAS = ("scalar", "avx2", "avx512", "neon")


def cpu_isas():
    """The kernel sets this CPU can run, from /proc/cpuinfo (scalar always)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(" ".join(line.split(":", 1)[1] for line in f
                                 if line.split(":")[0].strip() in ("flags", "Features")).split())
    except OSError:
        flags = set()
    have = {"scalar"}
    if {"avx2", "fma"} <= flags:
        have.add("avx2")
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        have.add("avx512")
    if "asimd" in flags or "neon" in flags:
        have.add("neon")
    return have


def per_isa(engine, out, parsed, xs, what, have):
    """The file under every kernel set against itself in float64; a set this CPU lacks must be
    refused. Returns the table cells."""
    ref_l = np.stack([npref.run(parsed, x, "logits").reshape(-1) for x in xs])
    ref_p = np.stack([npref.run(parsed, x).reshape(-1) for x in xs])
    cells = []
    old = os.environ.get("MORSEL_ISA")
    for isa in ISAS:
        os.environ["MORSEL_ISA"] = isa
        try:
            mp, ml = engine.run(out, xs, ref_p.shape[1], True)
        except RuntimeError as e:
            refused = "not available on this CPU or build" in str(e)
            check(isa not in have and refused, f"{what}: {isa} kernels refused here",
                  f"{e} (cpuinfo says {'yes' if isa in have else 'no'})")
            cells.append(f"{isa} -")
            continue
        finally:
            if old is None:
                os.environ.pop("MORSEL_ISA", None)
            else:
                os.environ["MORSEL_ISA"] = old
        rel = float((np.abs(ml - ref_l).max(1) / np.abs(ref_l).max(1)).max())
        dp = float(np.abs(mp - ref_p).max())
        check(rel <= TOL and dp <= TOL, f"{what}: {isa} kernels vs the file in float64",
              f"logit rel {rel:.1e}, max|Δp| {dp:.1e}")
        cells.append(f"{isa} {max(rel, dp):.0e}")
    return " ".join(cells)


def build(k, body, rng):
    k.utils.set_random_seed(int(rng.integers(1 << 30)))
    i = k.Input(SHAPE, name="image")
    x = body(k, i)
    if len(x.shape) > 2:
        x = k.layers.Flatten(name="flat")(x)
    out = k.layers.Dense(5, activation="softmax", name="head")(x)
    m = k.Model(i, out)
    P.randomize(m, k, rng)
    for layer in P.leaves(m):
        if type(layer).__name__ in ("LayerNormalization", "LayerScale"):
            layer.set_weights([rng.uniform(lo, hi, tuple(v.shape)).astype(np.float32)
                               for v, (lo, hi) in zip(layer.weights, [(0.5, 1.5), (-0.5, 0.5)])])
    first = next(layer for layer in m.layers if layer.get_weights())
    w = first.get_weights()
    first.set_weights([w[0] * np.float32(3.0)] + w[1:])
    return m


def export(src, out):
    r = subprocess.run([sys.executable, harness.EXPORTER, src, "-o", out, "-q",
                        "--no-selftest", "--preprocess", "raw"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"export failed: {r.stderr.strip()[-500:]}")


def main():
    try:
        import keras
        import tf_keras
    except ImportError as e:
        print(f"FAIL: keras and tf_keras are required ({e})")
        return 1
    _, engine = P.open_engine()
    kerases = {"k3": (keras, ".keras"), "k3h5": (keras, ".h5"), "k2": (tf_keras, ".h5")}
    rng = np.random.default_rng(4242)
    xs = rng.uniform(-2, 2, (N_INPUTS,) + SHAPE).astype(np.float32)
    tmp = tempfile.mkdtemp(prefix="morsel_parity_ops_")
    have = cpu_isas()
    print(f"kernel sets on this CPU: {', '.join(i for i in ISAS if i in have)}")
    print(f"{'op':<29} {'Keras':<15} {'max|Δp|':>9} {'logit rel':>9} {'top-1':>6}  "
          f"{'top-1s':>6} verdict  per kernel set vs the file in float64")
    for title, body, which in OPS:
        for key in which:
            k, ext = kerases[key]
            what = f"{title} ({k.__name__}{ext})"
            try:
                m = build(k, body, rng)
                P.calibrate(m, k, xs)
                src = os.path.join(tmp, f"{title}_{key}{ext}".replace(" ", "_").replace("'", ""))
                m.save(src)
                ref = k.models.load_model(src, compile=False,
                                          custom_objects=app_custom_objects(k.__name__))
                out = src + ".morsel"
                export(src, out)
                parsed = npref.read(out)
                n_out = parsed.tensors[parsed.output]["size"]
                has_logits = parsed.logits != 0xFFFFFFFF
                rp, rl = P.keras_outputs(ref, k, xs)
                mp, ml = engine.run(out, xs, n_out, has_logits)
                a = npref.Agreement(what)
                for i in range(N_INPUTS):
                    a.add(mp[i], ml[i] if has_logits else None, rp[i], rl[i])
                ok = a.ok(TOL) and has_logits
                isas = per_isa(engine, out, parsed, xs, what, have) if has_logits else "-"
                print(f"{title:<29} {k.__name__ + ext:<15} {a.dprob:9.1e} {a.rel:9.1e} "
                      f"{a.top1:>3}/{a.n:<2}  {a.spread[0]:>6} {'ok' if ok else 'FAIL':<7}  "
                      f"{isas}", flush=True)
                check(ok, what, "; ".join(a.problems() + ([] if has_logits else ["no logits"])))
                if title in TWO_THREADS:
                    _, ml2 = engine.run(out, xs, n_out, True, threads=2)
                    check(np.array_equal(ml2, ml), f"{what}: 2 threads give the 1-thread logits",
                          f"max |Δ| {float(np.abs(ml2 - ml).max()):.1e}")
            except Exception as e:
                check(False, what, f"{type(e).__name__}: {str(e).strip()[:400]}")
            k.backend.clear_session()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
