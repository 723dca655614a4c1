"""Test helper for parity_table.py and test_real_models.py: the seed architectures with the heads
people put on them, non-trivial random statistics, the wiring / preprocessing test models, and
a small TF.js layers-format writer (model.json + binary shards, optionally uint8/uint16
quantized as the tensorflowjs converter does it), all written for either Keras: `k` is the
`keras` (3) or `tf_keras` (2) module.

Nothing here is copied from Keras or TF.js; the TF.js manifest layout and the affine
quantization (value = min + scale * q, with min nudged so that 0 is representable) follow the
tensorflowjs converter's documented format.
"""

import json
import math
import os

import numpy as np

# name -> (keras.applications function, default input size, preprocess mode of its
#          preprocess_input, smallest size the architecture builds at)
ARCHS = {
    "MobileNet": ("MobileNet", 224, "tf", 32),
    "MobileNetV2": ("MobileNetV2", 224, "tf", 32),
    "ResNet50": ("ResNet50", 224, "caffe", 32),
    "ResNet50V2": ("ResNet50V2", 224, "tf", 32),
    "ResNet101V2": ("ResNet101V2", 224, "tf", 32),
    "Xception": ("Xception", 299, "tf", 71),
    "VGG16": ("VGG16", 224, "caffe", 32),
    "InceptionV3": ("InceptionV3", 299, "tf", 75),
    "EfficientNetB0": ("EfficientNetB0", 224, "raw", 32),
    # Issue 11: LayerNormalization, LayerScale, depthwise convs saved as grouped Conv2D
    # (ConvNeXt, which normalizes its own input); Cropping2D (NASNet); CustomScaleLayer
    # (InceptionResNetV2).
    "ConvNeXtTiny": ("ConvNeXtTiny", 224, "raw", 32),
    "NASNetMobile": ("NASNetMobile", 224, "tf", 32),
    "InceptionResNetV2": ("InceptionResNetV2", 299, "tf", 75),
    # tf_keras only: grouped convolutions, and RegNetY's SE gate as a TFOpLambda multiply.
    "RegNetX002": ("RegNetX002", 224, "raw", 32),
    "RegNetY002": ("RegNetY002", 224, "raw", 32),
}

IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68])
IMAGENET_MEAN_RGB_UNIT = np.array([0.485, 0.456, 0.406])  # preprocess_input mode "torch"
IMAGENET_STD_RGB_UNIT = np.array([0.229, 0.224, 0.225])


def preprocess(pixels, mode):
    """pixels [N,H,W,3] in 0..255 (RGB) -> the model input preprocess_input would give."""
    p = np.asarray(pixels, np.float64)
    if mode == "tf":
        x = p / 127.5 - 1.0
    elif mode == "caffe":
        x = p[..., ::-1] - IMAGENET_MEAN_BGR
    elif mode == "unit":
        x = p / 255.0
    elif mode == "torch":
        x = (p / 255.0 - IMAGENET_MEAN_RGB_UNIT) / IMAGENET_STD_RGB_UNIT
    elif mode == "raw":
        x = p
    else:
        raise ValueError(mode)
    return x.astype(np.float32)


def random_inputs(rng, n, size, mode):
    pixels = rng.uniform(0.0, 255.0, (n, size[0], size[1], 3))
    return preprocess(pixels, mode)


# ---- heads -----------------------------------------------------------------------------------

def head(k, x, kind, n_classes):
    """The heads seen in users' models. Explicit names, so both Kerases agree."""
    L, R = k.layers, k.regularizers
    if kind == "gap_dense_bn":
        x = L.GlobalAveragePooling2D(name="head_gap")(x)
        x = L.Dense(128, activation="relu", kernel_regularizer=R.l2(1e-4), name="head_fc1")(x)
        x = L.BatchNormalization(name="head_bn1")(x)
        x = L.Dropout(0.3, name="head_drop1")(x)
        return L.Dense(n_classes, activation="softmax", name="predictions")(x)
    if kind == "flatten_sigmoid":
        x = L.Flatten(name="head_flatten")(x)
        x = L.Dense(64, kernel_regularizer=R.l1_l2(1e-5, 1e-4), name="head_fc1")(x)
        x = L.BatchNormalization(name="head_bn1")(x)
        x = L.Activation("relu", name="head_relu1")(x)
        x = L.Dropout(0.5, name="head_drop1")(x)
        return L.Dense(n_classes, activation="sigmoid", name="predictions")(x)
    if kind == "spatial_stack":
        x = L.SpatialDropout2D(0.2, name="head_sdrop")(x)
        x = L.GlobalAveragePooling2D(name="head_gap")(x)
        x = L.BatchNormalization(name="head_bn0")(x)
        x = L.Dense(256, activation="relu", kernel_regularizer=R.l1(1e-5), name="head_fc1")(x)
        x = L.BatchNormalization(name="head_bn1")(x)
        x = L.Dropout(0.4, name="head_drop1")(x)
        x = L.Dense(96, activation="elu", bias_regularizer=R.l2(1e-4), name="head_fc2")(x)
        x = L.BatchNormalization(name="head_bn2")(x)
        x = L.Dropout(0.2, name="head_drop2")(x)
        return L.Dense(n_classes, activation="softmax", use_bias=False, name="predictions")(x)
    raise ValueError(kind)


def build_arch(k, arch, size, alpha=None, head_kind="gap_dense_bn", n_classes=11,
               nested=True, extra=None):
    """keras.applications.<arch>(weights=None, include_top=False) plus a head. nested=True uses
    the base as a layer (a model inside the model, as transfer-learning tutorials do);
    nested=False builds one flat Functional graph (input_tensor=...)."""
    fn_name = ARCHS[arch][0] if arch in ARCHS else arch  # parity_apps: any application
    fn = getattr(k.applications, fn_name)
    kw = dict(extra or {}, **({} if alpha is None else {"alpha": alpha}))
    shape = (size, size, 3)
    inp = k.Input(shape, name="image")
    if nested:
        base = fn(weights=None, include_top=False, input_shape=shape, **kw)
        x = base(inp, training=False)
    else:
        base = fn(weights=None, include_top=False, input_tensor=inp, **kw)
        x = base.output
    out = head(k, x, head_kind, n_classes)
    name = f"{arch.lower()}{'' if alpha is None else '_a' + str(alpha)}_{head_kind}" + \
        "".join(f"_{a}" for a in (extra or {}))
    return k.Model(inp, out, name=name.replace(".", "_"))


# ---- wiring and preprocessing models ----------------------------------------------------------

def build_nested_shared(k):
    """Models nested three deep, a nested model called twice (Keras 2 node indices 1 and 2),
    a shared leaf layer called twice, Concatenate on the channel axis, Multiply with a [1,1,C]
    gate, Reshape, GlobalAveragePooling2D(keepdims=True), asymmetric kernels, a Dense without
    bias, LeakyReLU, ELU and swish."""
    L = k.layers
    # level 3: a Sequential block
    inner = k.Sequential([
        k.Input((16, 16, 8)),
        L.Conv2D(8, (1, 3), padding="same", name="inner_conv_1x3"),
        L.BatchNormalization(name="inner_bn"),
        L.LeakyReLU(0.1, name="inner_lrelu"),
        L.Conv2D(8, (3, 1), padding="same", activation="swish", name="inner_conv_3x1"),
    ], name="inner_seq")
    # level 2: a Functional calling the Sequential twice (shared weights)
    i2 = k.Input((16, 16, 8), name="mid_in")
    a = inner(i2)
    b = inner(a)
    g = L.GlobalAveragePooling2D(keepdims=True, name="mid_se_gap")(b)
    g = L.Conv2D(8, 1, activation="sigmoid", name="mid_se_conv")(g)
    b = L.Multiply(name="mid_se_mul")([b, g])
    mid = k.Model(i2, L.Add(name="mid_add")([a, b]), name="mid_block")
    # level 1: the top model calls mid twice and a shared Conv2D twice
    i = k.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", name="stem")(i)
    x = L.ELU(name="stem_elu")(x)
    shared = L.Conv2D(8, 1, name="shared_1x1")
    y1 = shared(mid(x))
    y2 = shared(mid(y1))
    x = L.Concatenate(axis=-1, name="concat")([y1, y2, x])
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool_same")(x)
    x = L.AveragePooling2D(3, strides=1, padding="same", name="avgpool_same")(x)
    x = L.Reshape((8 * 8, 24), name="reshape_tokens")(x)
    x = L.Dense(16, use_bias=False, name="token_dense")(x)
    x = L.Reshape((8, 8, 16), name="reshape_back")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(7, activation="softmax", name="predictions")(x)
    return k.Model(i, x, name="nested3_shared")


# Keras 3.15 cannot save these into a legacy .h5 ("cannot pickle 'module' object"), and
# RandomShear cannot even be loaded back from a .keras; they go into the .keras-only variant
# (RandomShear is left out: Keras has no reference for it once saved).
K3_H5_UNSAVABLE = ("RandomBrightness", "RandomSaturation", "RandomSharpness",
                   "RandomColorDegeneration", "RandomPosterization", "Solarization")
RANDOM_LAYERS = [
    ("RandomFlip", ("horizontal_and_vertical",), {}), ("RandomRotation", (0.2,),
                                                       {"fill_mode": "reflect"}),
    ("RandomZoom", (0.1,), {}), ("RandomTranslation", (0.1, 0.1), {}),
    ("RandomContrast", (0.2,), {}), ("RandomBrightness", (0.2,), {"value_range": (0, 255)}),
    ("RandomHeight", (0.2,), {}), ("RandomWidth", (0.2,), {}), ("RandomGrayscale", (), {}),
    ("RandomHue", (0.2, (0, 255)), {}), ("RandomSaturation", (0.2,), {}),
    ("RandomSharpness", (0.2,), {}), ("RandomColorJitter", (), {}),
    ("RandomColorDegeneration", (0.2,), {}), ("RandomPosterization", (4, (0, 255)), {}),
    ("RandomInvert", (), {}), ("RandomErasing", (), {}), ("RandomGaussianBlur", (), {}),
    ("RandomPerspective", (), {}), ("RandomElasticTransform", (), {}),
    ("Solarization", (0.5,), {}), ("AugMix", (), {}), ("CutMix", (), {}), ("MixUp", (), {}),
    ("RandAugment", (), {}),
]


def _random_layers(k, L, which):
    """The random augmentation layers this Keras has (identities at inference). which: 'h5safe'
    (every format) or 'k3only' (the ones Keras 3 cannot write into a legacy .h5)."""
    out = []
    for cls, args, kw in RANDOM_LAYERS:
        if hasattr(L, cls) and (cls in K3_H5_UNSAVABLE) == (which == "k3only"):
            out.append(getattr(L, cls)(*args, name="aug_" + cls.lower(), **kw))
    return out


def build_preproc(k, variant):
    """Preprocessing inside the model, on raw 0..255 pixels.
    'bilinear': augmentation, Resizing(bilinear, downscale by a different factor per axis),
        CenterCrop (a crop), Rescaling, Normalization with explicit mean/variance;
    'nearest': Resizing(nearest, upscale), CenterCrop larger than its input (Keras then
        crops to the aspect ratio and resizes bilinearly), per-channel Rescaling, adapted
        Normalization;
    'aspect': Resizing(crop_to_aspect_ratio), RandomCrop (Keras 3: identity at inference;
        tf_keras: crop to aspect + bilinear), Keras 3 Resizing(pad_to_aspect_ratio) and the
        augmentation layers Keras 3 can only save in .keras."""
    L = k.layers
    if variant == "bilinear":
        i = k.Input((45, 52, 3), name="pixels")
        x = i
        for layer in _random_layers(k, L, "h5safe"):
            x = layer(x)
        x = L.Resizing(36, 40, interpolation="bilinear", name="resize")(x)
        x = L.CenterCrop(32, 33, name="crop")(x)
        x = L.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(x)
        x = L.Normalization(mean=[0.1, -0.2, 0.05], variance=[0.5, 0.8, 1.3], name="norm")(x)
    elif variant == "nearest":
        i = k.Input((20, 27, 3), name="pixels")
        x = L.RandomFlip("horizontal", name="aug_flip")(i)
        x = L.Resizing(30, 41, interpolation="nearest", name="resize")(x)
        x = L.CenterCrop(34, 34, name="crop_up")(x)
        x = L.Rescaling([1 / 255.0, 1 / 200.0, 1 / 300.0], name="rescale")(x)
        x = L.Normalization(axis=-1, name="norm")(x)
    elif variant == "aspect":
        i = k.Input((41, 29, 3), name="pixels")
        x = i
        for layer in _random_layers(k, L, "k3only"):
            x = layer(x)
        x = L.Resizing(24, 30, crop_to_aspect_ratio=True, name="resize_crop")(x)
        x = L.RandomCrop(20, 22, name="random_crop")(x)
        if hasattr(L.Resizing(1, 1), "pad_to_aspect_ratio"):
            x = L.Resizing(28, 20, pad_to_aspect_ratio=True, fill_value=7.0,
                           name="resize_pad")(x)
        x = L.Rescaling(1 / 255.0, name="rescale")(x)
    else:
        raise ValueError(variant)
    x = L.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.Conv2D(16, 1, activation="relu6", name="pw")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, activation="softmax", name="predictions")(x)
    return k.Model(i, x, name=f"preproc_{variant}")


def build_tfoplambda(tf_keras, mode):
    """A Keras 2 (tf_keras) model that calls preprocess_input inside: TFOpLambda layers
    (tf.math.truediv/subtract for 'tf', a channel flip and tf.nn.bias_add for 'caffe', plus
    tf.__operators__.add / tf.math.multiply with constants)."""
    import tensorflow as tf
    L = tf_keras.layers
    i = tf_keras.Input((24, 24, 3), name="pixels")
    if mode == "tf":
        x = tf_keras.applications.mobilenet_v2.preprocess_input(i)
        x = x * 2.0
        x = x + 0.25
        x = tf.math.multiply(x, [0.5, 1.0, 1.5])
    elif mode == "caffe":
        x = tf_keras.applications.vgg16.preprocess_input(i)
        x = tf.math.divide(x, 64.0)
        x = 1.0 - x
    else:
        raise ValueError(mode)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(4, activation="softmax", name="predictions")(x)
    return tf_keras.Model(i, x, name=f"tfop_{mode}")


def build_k3ops(keras, mode):
    """A Keras 3 model that calls preprocess_input and other keras.ops inside: TrueDivide /
    Subtract ('tf'), or GetItem x3 + Stack + Add of a [1,1,1,3] constant ('caffe'), then a
    per-channel Multiply, a spatial slice, keras.ops.image.resize and a Cast."""
    L, ops = keras.layers, keras.ops
    i = keras.Input((30, 34, 3), name="pixels")
    if mode == "tf":
        x = keras.applications.mobilenet_v2.preprocess_input(i)
        x = x * np.array([0.5, 1.0, 1.5], np.float32)
        x = 0.25 - x
    elif mode == "caffe":
        x = keras.applications.resnet50.preprocess_input(i)
        x = x / 64.0
        x = ops.negative(x)
    else:
        raise ValueError(mode)
    x = x[:, 2:-2, 1:33, :]
    x = ops.image.resize(x, (20, 18), interpolation="bilinear")
    x = ops.cast(x, "float32")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(i, x, name=f"k3ops_{mode}")


# ---- randomisation ---------------------------------------------------------------------------

def leaves(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and getattr(layer, "layers", None):
            yield from leaves(layer)
        else:
            yield layer


def _role(v):
    return v.name.split("/")[-1].split(":")[0]


def randomize(model, k, rng):
    """Every BatchNormalization gets random gamma/beta/moving statistics, every Normalization
    a random mean/variance, every bias a small random value. Returns counts."""
    n_bn = n_norm = n_bias = 0
    seen = set()
    for layer in leaves(model):
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        cls = type(layer).__name__
        if cls == "BatchNormalization":
            vals = []
            for v in layer.weights:
                lo, hi = {"gamma": (0.6, 1.4), "beta": (-0.3, 0.3), "moving_mean": (-0.3, 0.3),
                          "moving_variance": (0.6, 1.6)}[_role(v)]
                vals.append(rng.uniform(lo, hi, tuple(v.shape)).astype(np.float32))
            layer.set_weights(vals)
            n_bn += 1
        elif cls == "Normalization" and layer.weights:
            vals = []
            for v in layer.weights:
                r = _role(v)
                if r == "mean":
                    vals.append(rng.uniform(0.3, 0.6, tuple(v.shape)).astype(np.float32))
                elif r == "variance":
                    vals.append(rng.uniform(0.04, 0.09, tuple(v.shape)).astype(np.float32))
                else:
                    vals.append(np.asarray(v.numpy()))
            layer.set_weights(vals)
            if hasattr(layer, "finalize_state"):
                layer.finalize_state()  # Keras caches mean/variance as tensors at build
            n_norm += 1
        elif layer.weights:
            vals = []
            changed = False
            for v in layer.weights:
                a = np.asarray(v.numpy())
                if _role(v) == "bias":
                    a = rng.uniform(-0.1, 0.1, a.shape).astype(np.float32)
                    changed = True
                vals.append(a)
            if changed:
                layer.set_weights(vals)
                n_bias += 1
    return {"bn": n_bn, "norm": n_norm, "bias": n_bias}


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if getattr(layer, "layers", None):
            yield from _all_layers(layer)


def _set_training(node, value):
    """tf_keras Node: the call's kwargs and the flat argument list built from them."""
    import tensorflow as tf
    node.call_kwargs["training"] = value
    if hasattr(node, "_flat_arguments"):
        node._flat_arguments = tf.nest.flatten((node.call_args, node.call_kwargs))


def fit_bn_statistics(model, k, x, rng, shift=(0.0, 0.5), scale=(0.8, 1.25)):
    """Sets every BatchNormalization's moving mean/variance to the statistics its input really
    has on `x` (one training-mode pass with momentum 0), then moves each off them (the mean up
    by `shift` standard deviations, the variance by a factor in `scale`). Purely random
    statistics far from the real ones push every unit of a deep network below its ReLU: the
    outputs stop depending on the input and the parity check becomes vacuous. Exact statistics
    make a random deep network chaotic: float32 rounding is amplified until Keras itself is
    several 1e-5 from its float64 self. Shifting the means up by 0..0.5 sigma (measured on
    MobileNet a0.25: 7 top-1s and Keras f32-vs-f64 7e-5 unshifted, 2 top-1s and 2e-6 shifted)
    keeps the outputs input-dependent and the network well-conditioned. Returns the number of
    layers set."""
    bns = []
    seen = set()
    for layer in leaves(model):
        if type(layer).__name__ == "BatchNormalization" and id(layer) not in seen:
            seen.add(id(layer))
            bns.append((layer, layer.momentum))
            layer.momentum = 0.0
    # tf_keras keeps `base(x, training=False)` of a nested model in the graph, and that wins
    # over the outer call's training=True: lift it for this one pass.
    pinned = []
    for layer in _all_layers(model):
        for node in getattr(layer, "_inbound_nodes", []):
            kw = getattr(node, "call_kwargs", None)
            if isinstance(kw, dict) and kw.get("training") is False:
                pinned.append(node)
                _set_training(node, True)
    try:
        model(x, training=True)
    finally:
        for node in pinned:
            _set_training(node, False)
        for layer, m in bns:
            layer.momentum = m
    for layer, _ in bns:
        vals = []
        std = None
        for v in layer.weights:
            a = np.asarray(v.numpy(), np.float64)
            r = _role(v)
            if r == "moving_variance":
                std = np.sqrt(a)
        for v in layer.weights:
            a = np.asarray(v.numpy(), np.float64)
            r = _role(v)
            if r == "moving_mean":
                a = a + rng.uniform(shift[0], shift[1], a.shape) * std
            elif r == "moving_variance":
                a = a * rng.uniform(scale[0], scale[1], a.shape)
            vals.append(a.astype(np.float32))
        layer.set_weights(vals)
    return len(bns)


def last_leaf(model):
    layer = model.layers[-1]
    while hasattr(layer, "layers") and getattr(layer, "layers", None):
        layer = layer.layers[-1]
    return layer


def keras_logits(model, k, x):
    """Pre-activation outputs for a batch, float64: the model called with its last layer's
    activation set to linear."""
    last = last_leaf(model)
    saved = last.activation
    try:
        last.activation = k.activations.linear
        return np.asarray(model(x, training=False), dtype=np.float64)
    finally:
        last.activation = saved


def keras_outputs(model, k, x):
    """(probabilities, pre-activation logits) for a batch, float64 (keras_logits)."""
    return np.asarray(model(x, training=False), dtype=np.float64), keras_logits(model, k, x)


def calibrate(model, k, x, target_std=2.0):
    """Scales the last Dense layer so that the logits have a spread of about `target_std`, so
    probabilities are neither uniform (a 1e-5 bound on uniform outputs is vacuous) nor
    saturated at 0/1."""
    last = last_leaf(model)
    _, logits = keras_outputs(model, k, x)
    spread = float(np.std(logits - logits.mean(axis=-1, keepdims=True))) \
        if logits.shape[-1] > 1 else float(np.std(logits))
    if not math.isfinite(spread) or spread == 0:
        raise RuntimeError(f"{model.name}: logits have spread {spread}; cannot calibrate")
    s = target_std / spread
    last.set_weights([np.asarray(w) * np.float32(s) for w in last.get_weights()])
    return s


def informative(probs, sigmoid=False):
    """A short description and whether the outputs are informative (not uniform, not all 0/1)."""
    probs = np.asarray(probs)
    if sigmoid:
        lo, hi = float(probs.min()), float(probs.max())
        ok = hi - lo > 0.3 and float(np.mean((probs > 1e-4) & (probs < 1 - 1e-4))) > 0.5
        return f"p in [{lo:.3f}, {hi:.3f}]", ok
    mp = probs.max(axis=-1)
    n = probs.shape[-1]
    med = float(np.median(mp))
    ok = med > 1.5 / n and float(np.mean(mp < 0.9999)) > 0.5
    return f"max p median {med:.3f}", ok


# The conditioning probe (parity_table.Runner.prepare): every input value moved by PROBE_EPS
# times the inputs' largest magnitude, random signs, and the largest relative logit change taken
# (conditioning). Measured on 46 random networks (the first two draws of 21 architectures at
# their small sizes, BN statistics fitted; /work/notes/probe_s9*.log of session 9): every draw
# probed at <= 1.4e-5 had Keras-f32 within 6.1e-6 of Keras-f64 in logits and 5.9e-6 in
# probabilities (about half the 1e-5 tolerance); draws probed from 1.6e-5 up were 4e-6..1.1e-4
# off (DenseNet121 1.6e-5: 1.1e-5; MobileNetV2 a1.4 3.9e-5: 1.5e-5; EfficientNetV2S 2.4e-5:
# 1.7e-5; VGG16 5.7e-5..1.5e-4: 5.6e-5..1.1e-4; InceptionV3 3.8e-5..2.6e-4: 6.6e-6..5.4e-5).
# So a network probed over PROBE_MAX is redrawn. The probe was never below Keras-f32's own
# distance from float64 (1.0x on VGG16, where it measures the rounding noise itself, up to 7x),
# so a network probed within PROBE_CHAOTIC (= CHAOTIC) is not one arbitration calls chaotic;
# beyond it a 1e-6 input change is amplified over 1000-fold (EfficientNetV2M at 32 px: 1.2e-2 and
# 1.6e-2, Keras-f32 1.8e-3 and 6.5e-3 from float64), and such a row fails without a Morsel run.
PROBE_EPS = 1e-6
PROBE_MAX = 1.5e-5


def conditioning(model, k, xs, rng, eps=PROBE_EPS):
    """How much the model's float32 logits move when its inputs move by a relative `eps`:
    max over inputs of max |Δlogit| / max |logit|. float32 rounding is a perturbation of the
    same kind (a few 1e-8 at every layer), so a network that turns `eps` into a large logit
    change turns Keras's own rounding into output differences that no 1e-5 bound can judge."""
    xs = np.asarray(xs, np.float32)
    step = eps * float(np.abs(xs).max())
    moved = (xs + step * rng.choice([-1.0, 1.0], xs.shape)).astype(np.float32)
    return float(per_input_rel(keras_logits(model, k, moved), keras_logits(model, k, xs)).max())


def per_input_rel(a, b):
    """max |a - b| / max |b| per row (b the reference)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max(axis=-1) / np.maximum(np.abs(b).max(axis=-1), 1e-30)


def _float64_config(cfg):
    """A Keras config with every float32 dtype (Keras 2 strings, Keras 3 DTypePolicy dicts)
    replaced by float64."""
    if isinstance(cfg, list):
        return [_float64_config(v) for v in cfg]
    if not isinstance(cfg, dict):
        return cfg
    out = {}
    for key, v in cfg.items():
        if key == "dtype" and v == "float32":
            v = "float64"
        elif key == "dtype" and isinstance(v, dict) and \
                (v.get("config") or {}).get("name") == "float32":
            v = dict(v, config=dict(v["config"], name="float64"))
        out[key] = _float64_config(v)
    return out


def _grouped_as_depthwise(model):
    """The names of the Conv2D layers that are depthwise convolutions saved as grouped ones
    (groups == filters == input channels: ConvNeXt's)."""
    names = set()
    for layer in leaves(model):
        if type(layer).__name__ == "Conv2D" and getattr(layer, "groups", 1) > 1:
            kh, kw, cin_per_group, filters = tuple(layer.kernel.shape)
            if cin_per_group == 1 and layer.groups == filters:
                names.add(layer.name)
    return names


def _depthwise_config(cfg, names):
    """`cfg` with each Conv2D layer named in `names` made the equivalent DepthwiseConv2D
    (depth_multiplier 1; the kernel initializer, regularizer and constraint become the
    depthwise ones)."""
    if isinstance(cfg, list):
        return [_depthwise_config(v, names) for v in cfg]
    if not isinstance(cfg, dict):
        return cfg
    if cfg.get("class_name") == "Conv2D" and (cfg.get("config") or {}).get("name") in names:
        c = {(key.replace("kernel_", "depthwise_")
              if key in ("kernel_initializer", "kernel_regularizer", "kernel_constraint")
              else key): v
             for key, v in cfg["config"].items() if key not in ("filters", "groups")}
        return dict(cfg, class_name="DepthwiseConv2D", config=dict(c, depth_multiplier=1))
    return {key: _depthwise_config(v, names) for key, v in cfg.items()}


def keras_float64(model, k, depthwise=True):
    """The same Keras model computing in float64: rebuilt from its own config with float64
    dtypes and given its own (source) weights, so it is Keras's translation of the file with
    float32 rounding removed, independent of the exporter. With `depthwise`, each Conv2D with
    groups == filters == input channels (ConvNeXt's depthwise convolutions) becomes Keras's
    DepthwiseConv2D with the same weights ([kh,kw,1,C] read as [kh,kw,C,1]): the same
    arithmetic, but TensorFlow's float64 grouped convolution takes minutes per layer at 224 px
    (ConvNeXtXLarge), its depthwise one does not."""
    names = _grouped_as_depthwise(model) if depthwise else set()
    # The model's own layer classes (keras.applications' LayerScale, StochasticDepth, ...),
    # which tf_keras does not find by name.
    classes = {type(layer).__name__: type(layer) for layer in leaves(model)}
    floatx = k.backend.floatx()
    k.backend.set_floatx("float64")  # Keras 2 makes call-time constants in floatx
    try:
        m = type(model).from_config(_depthwise_config(_float64_config(model.get_config()),
                                                      names), custom_objects=classes)
    finally:
        k.backend.set_floatx(floatx)
    kernels = {id(layer.kernel) for layer in leaves(model) if layer.name in names}
    values = []
    for v, w in zip(model.weights, model.get_weights()):
        w = np.asarray(w)
        if id(v) in kernels:
            w = w.reshape(w.shape[:2] + (w.shape[3], 1))
        values.append(w.astype(np.float64) if w.dtype == np.float32 else w)
    m.set_weights(values)
    for layer in leaves(m):
        if type(layer).__name__ == "Normalization" and hasattr(layer, "finalize_state"):
            layer.finalize_state()
    return m


# How far a float32 engine may be from the exact (float64) outputs, as a multiple of Keras's own
# float32 distance, on models where that distance is a sizeable part of the tolerance. Measured
# on food101 MobileNetV1 0.25 (test_real_models): Keras-f32 1.3e-6..7.6e-6 from float64, the
# exported file evaluated in float64 3e-6..1.0e-5 (float32 parameters: BN folded into weights
# adds one rounding per weight, a bias shared by every pixel that global pooling does not
# average away), Morsel 2e-6..1.7e-5 with either kernel set. Which of two float32 engines lands
# closer is then a draw (InceptionV3 @ 75 .h5 K2 in parity_table: Morsel 2.0e-5, Keras-f32
# 2.4e-5 from float64, so 2.4e-5 apart in probabilities); an exporter or kernel error is
# orders of magnitude further (the mutation check: 6.8e-1).
F32_SPREAD = 4.0
# Arbitration passes nothing when Keras-f32 itself is further than this from Keras-f64: the
# random test network is then chaotic (it turns float32 rounding into output differences), any
# two float32 engines disagree, and "within F32_SPREAD x Keras's own error" would pass almost
# anything (EfficientNetV2M at 32 px: Morsel 8.5e-2 from Keras, Keras-f32 itself 3e-2 off).
# Ill-conditioned is not chaotic: VGG16 at 64 px (.h5 K2, logits up to 6) puts Keras-f32 1.1e-4
# from float64 in logits and Morsel 6.1e-5; 1e-4 failed that row.
CHAOTIC = 1e-3
PROBE_CHAOTIC = CHAOTIC  # parity_table.Runner.prepare: see PROBE_MAX


class Arbitration:
    """Distances to Keras in float64 over all inputs: largest relative logit error (rel) and
    largest probability difference (dp), for Morsel and for Keras-f32; `error` when Keras has no
    float64 twin (then the row cannot be arbitrated and fails)."""

    def __init__(self, n, m_rel=math.inf, k_rel=0.0, m_dp=math.inf, k_dp=0.0, error=None):
        self.n, self.m_rel, self.k_rel, self.m_dp, self.k_dp, self.error = \
            n, m_rel, k_rel, m_dp, k_dp, error

    def ok(self, tol):
        """Morsel within `tol` of Keras-f64, or within F32_SPREAD times Keras-f32's own
        distance, for logits and probabilities alike; never on a chaotic network."""
        return (self.error is None and not self.chaotic()
                and self.m_rel <= max(tol, F32_SPREAD * self.k_rel)
                and self.m_dp <= max(tol, F32_SPREAD * self.k_dp))

    def chaotic(self):
        return self.k_rel > CHAOTIC or self.k_dp > CHAOTIC

    def describe(self):
        return (f"vs Keras float64 on {self.n} inputs: logits Morsel {self.m_rel:.1e}, Keras "
                f"float32 {self.k_rel:.1e}; max|Δp| Morsel {self.m_dp:.1e}, Keras float32 "
                f"{self.k_dp:.1e}" + (f" ({self.error})" if self.error else "")
                + (f" (Keras-f32 over {CHAOTIC:g} from float64: a chaotic test network, the "
                   "row means nothing and fails)" if self.chaotic() else ""))


def arbitrate(ref_model, k, xs, morsel, keras):
    """When Morsel is further than the tolerance from Keras, which one is off? Keras itself in
    float64 on the source weights decides (a float64 run of the exported file could not: an
    exporter translation error would be in it too). morsel and keras are (probabilities,
    logits) over the inputs xs."""
    try:
        m64 = keras_float64(ref_model, k)
        p64, l64 = keras_outputs(m64, k, np.asarray(xs, np.float64))
    except Exception as e:  # no float64 twin: the row cannot be arbitrated and fails
        return Arbitration(len(xs), error=f"no float64 Keras twin: {type(e).__name__}: "
                           f"{str(e).strip().splitlines()[0][:200]}")

    def dp(p):
        return float(np.abs(np.asarray(p, np.float64).reshape(p64.shape) - p64).max())
    return Arbitration(len(xs), float(per_input_rel(morsel[1], l64).max()),
                       float(per_input_rel(keras[1], l64).max()), dp(morsel[0]), dp(keras[0]))


def needs_arbitration(agree, tol):
    return agree.dprob > tol or agree.rel > tol


def parity_ok(agree, f64, tol):
    """A row's verdict from its agreement with Keras-f32 (npref.Agreement) and, when that is
    further than `tol`, the float64 arbitration (None when not run)."""
    if agree is None or agree.top1 != agree.n or agree.problems():
        return False
    if not needs_arbitration(agree, tol):
        return True
    return f64 is not None and f64.ok(tol)


# ---- TF.js layers format ----------------------------------------------------------------------

def _quantize(a, dtype):
    """tensorflowjs affine quantization: q = round((a - min) / scale) with scale = (max-min)/qmax
    and min nudged so 0.0 is exactly representable; value = min + scale * q."""
    qmax = {"uint8": 255, "uint16": 65535}[dtype]
    a = np.asarray(a, np.float64)
    lo, hi = min(float(a.min()), 0.0), max(float(a.max()), 0.0)
    if hi == lo:
        scale, zmin = 1.0, lo
    else:
        scale = (hi - lo) / qmax
        zero = round(-lo / scale)
        zmin = -zero * scale
    q = np.clip(np.round((a - zmin) / scale), 0, qmax).astype(dtype)
    return q, float(zmin), float(scale)


def dequantize(q, zmin, scale):
    return (zmin + scale * np.asarray(q, np.float64)).astype(np.float32)


def write_tfjs(model, outdir, quantize=None, shard_bytes=4 * 1024 * 1024):
    """Writes `model` (a tf_keras model) as a TF.js layers model: model.json (modelTopology =
    the Keras config, weightsManifest) + group1-shard<i>of<n>.bin. quantize: None, 'uint8' or
    'uint16' (every float weight). Returns the list of arrays as the reader must see them
    (dequantized when quantized), in model.weights order, for setting into the reference."""
    os.makedirs(outdir, exist_ok=True)
    topo = json.loads(model.to_json())
    manifest, blob, seen_values = [], bytearray(), []
    for v in model.weights:
        name = v.name.split(":")[0]
        a = np.asarray(v.numpy(), np.float32)
        entry = {"name": name, "shape": list(a.shape), "dtype": "float32"}
        if quantize:
            q, zmin, scale = _quantize(a, quantize)
            entry["quantization"] = {"dtype": quantize, "min": zmin, "scale": scale}
            blob += q.astype("<" + ("u1" if quantize == "uint8" else "u2")).tobytes()
            seen_values.append(dequantize(q, zmin, scale))
        else:
            blob += a.astype("<f4").tobytes()
            seen_values.append(a)
        manifest.append(entry)
    n = max(1, -(-len(blob) // shard_bytes))
    paths = []
    for i in range(n):
        p = f"group1-shard{i + 1}of{n}.bin"
        with open(os.path.join(outdir, p), "wb") as f:
            f.write(bytes(blob[i * shard_bytes:(i + 1) * shard_bytes]))
        paths.append(p)
    doc = {
        "format": "layers-model",
        "generatedBy": f"keras v{topo.get('keras_version', '?')}",
        "convertedBy": "morsel test writer (TensorFlow.js layers format)",
        "modelTopology": {"keras_version": topo.get("keras_version"),
                          "backend": topo.get("backend", "tensorflow"),
                          "model_config": {"class_name": topo["class_name"],
                                           "config": topo["config"]}},
        "weightsManifest": [{"paths": paths, "weights": manifest}],
    }
    with open(os.path.join(outdir, "model.json"), "w") as f:
        json.dump(doc, f)
    return seen_values


def set_all_weights(model, values):
    """model.set_weights for values in model.weights order, then refreshes Normalization."""
    model.set_weights(values)
    for layer in leaves(model):
        if type(layer).__name__ == "Normalization" and hasattr(layer, "finalize_state"):
            layer.finalize_state()


# ---- the engine, in process --------------------------------------------------------------------

def open_engine():
    """The libmorsel built beside $MORSEL_BIN (or $MORSEL_LIB): (binary path, Engine)."""
    import npref
    binary = npref.morsel_bin()
    lib = os.environ.get("MORSEL_LIB") or os.path.join(os.path.dirname(binary), "libmorsel.so")
    return binary, Engine(lib)


class Engine:
    """libmorsel through ctypes (the public API of include/morsel.h): a model is opened once and
    run on many inputs, which `morsel run` (one process, one load per input) cannot do
    cheaply. Single-threaded, as `morsel run` and `morsel bench --threads 1` run, unless run()
    is given more threads."""

    def __init__(self, libpath):
        import ctypes
        self.ct = ctypes
        if not libpath or not os.path.isfile(libpath):
            raise RuntimeError(f"libmorsel not found at {libpath!r} (set MORSEL_LIB)")
        lib = ctypes.CDLL(libpath)
        P, S = ctypes.c_void_p, ctypes.c_size_t
        lib.morsel_model_open_file.argtypes = [ctypes.c_char_p, ctypes.POINTER(P), P]
        lib.morsel_model_open_file.restype = ctypes.c_int
        lib.morsel_context_create.argtypes = [P, ctypes.POINTER(P), P]
        lib.morsel_context_create.restype = ctypes.c_int
        lib.morsel_run.argtypes = [P, P, S, ctypes.c_int, P, S, P]
        lib.morsel_run.restype = ctypes.c_int
        lib.morsel_context_set_threads.argtypes = [P, ctypes.c_int, P]
        lib.morsel_context_set_threads.restype = ctypes.c_int
        lib.morsel_context_destroy.argtypes = [P]
        lib.morsel_model_close.argtypes = [P]
        try:
            lib.openblas_set_num_threads(1)
        except AttributeError:
            os.environ["OPENBLAS_NUM_THREADS"] = "1"
        self.lib = lib

    def _err(self, buf):
        return buf.raw[4:].split(b"\0", 1)[0].decode("utf8", "replace")

    def run(self, path, xs, n_out, logits, threads=1):
        """(probabilities [N, n_out], logits [N, n_out] or None) for inputs xs [N, ...]."""
        ct, lib = self.ct, self.lib
        err = ct.create_string_buffer(1024)
        m, ctx = ct.c_void_p(), ct.c_void_p()
        if lib.morsel_model_open_file(path.encode(), ct.byref(m), err):
            raise RuntimeError(f"morsel_model_open_file: {self._err(err)}")
        try:
            if lib.morsel_context_create(m, ct.byref(ctx), err):
                raise RuntimeError(f"morsel_context_create: {self._err(err)}")
            if threads > 1 and lib.morsel_context_set_threads(ctx, threads, err):
                raise RuntimeError(f"morsel_context_set_threads: {self._err(err)}")
            outs = []
            for which in ((0, 1) if logits else (0,)):
                y = np.zeros((len(xs), n_out), np.float32)
                for i, x in enumerate(xs):
                    x = np.ascontiguousarray(x, np.float32)
                    yi = np.zeros(n_out, np.float32)
                    if lib.morsel_run(ctx, x.ctypes.data, x.size, which, yi.ctypes.data, n_out,
                                      err):
                        raise RuntimeError(f"morsel_run: {self._err(err)}")
                    y[i] = yi
                outs.append(y)
            return outs[0], (outs[1] if logits else None)
        finally:
            if ctx.value:
                lib.morsel_context_destroy(ctx)
            lib.morsel_model_close(m)


# ---- the mutation check -----------------------------------------------------------------------

def mutate_early_conv(src, dst):
    """Writes `src` (a .morsel file) to `dst` with one weight of its first convolution negated
    (the largest in magnitude: a sign slip an exporter could make) and every checksum recomputed
    by the exporter's own writer, so the file is valid and only its numbers are wrong. A parity
    check that passes on `dst` cannot see translation errors. Returns a description."""
    import npref
    root = os.environ.get("MORSEL_SOURCE_DIR") or os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))
    import sys
    if os.path.join(root, "weights") not in sys.path:
        sys.path.insert(0, os.path.join(root, "weights"))
    from morsel_exporter.writer import sign
    data = bytearray(open(src, "rb").read())
    m = npref.parse(data)
    conv = next(op for op in m.ops if op["type"] in (1, 2))
    wid = conv["inputs"][1]
    rec = 64 * wid
    toff = m.sections["TENSORS"][0]
    doff = __import__("struct").unpack_from("<Q", data, toff + rec + 32)[0]
    w = np.frombuffer(bytes(data), "<f4", m.tensors[wid]["size"], doff).copy()
    j = int(np.argmax(np.abs(w)))
    w[j] = -w[j]
    data[doff:doff + 4 * w.size] = w.astype("<f4").tobytes()
    signed = sign(data)
    npref.parse(signed)  # still a valid file: every CRC and structural rule holds
    with open(dst, "wb") as f:
        f.write(signed)
    return f"{conv['name']}: weight {j} of {m.tensors[wid]['name']} negated, file re-signed"
