"""One translation per Keras layer class (identified by `class_name`, never by layer names).

Each translator receives the Builder (graph.py), the KLayer and its input tensors, emits Morsel
ops and returns the output tensors. Activations are [H, W, C] / [C] without the batch axis.
"""

import math

import numpy as np

from . import common, ir, layers_extra, tfops
from .activations import activation_spec, emit_biased, hard_silu
from .common import HINTS  # noqa: F401 (re-exported)
from .common import check_channels_last as _check_channels_last
from .common import conv_geometry
from .common import need_rank3 as _need_rank3
from .common import pad_pairs
from .common import weight as _w
from .common import same_pads, window_attrs  # noqa: F401 (re-exported)
from .common import tuple2 as _tuple2
from .errors import ExportError, UnsupportedLayer  # noqa: F401 (re-exported)
from .graph import TF_OP_CLASSES
from .resize_crop import (RESIZE_METHODS, crop, crop_to_aspect, resize,  # noqa: F401
                          t_center_crop, t_random_crop, t_resizing)

# Layers that do nothing at inference (model(x, training=False)): dropped, their output is
# their input. RandomCrop is not here: tf_keras resizes at inference (t_random_crop).
IDENTITY_CLASSES = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianNoise", "GaussianDropout", "ActivityRegularization",
    # Random augmentation: every one returns its input unchanged when training=False
    # (checked against Keras 3.15 and tf_keras 2.21 by test/parity_table.py's preproc rows).
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
    "RandomBrightness", "RandomHeight", "RandomWidth", "RandomGrayscale", "RandomHue",
    "RandomSaturation", "RandomSharpness", "RandomColorJitter", "RandomColorDegeneration",
    "RandomPosterization", "RandomInvert", "RandomErasing", "RandomGaussianBlur",
    "RandomPerspective", "RandomShear", "RandomElasticTransform", "Solarization", "AugMix",
    "CutMix", "MixUp", "RandAugment",
)



def _unsupported(layer, why=""):
    return common.unsupported(layer, why).naming(supported_classes())


# ---- weights ---------------------------------------------------------------------------------

def weight_roles(layer):
    """The variables a layer owns, in creation order (Keras 3 `vars/<i>` order; legacy .h5
    ordering is derived from this plus the trainable flags). [(role, trainable_variable)]."""
    c, cfg = layer.class_name, layer.cfg
    bias = [("bias", True)] if cfg.get("use_bias", True) else []
    if c in ("Conv2D", "Dense"):
        return [("kernel", True)] + bias
    if c == "DepthwiseConv2D":
        return [("depthwise_kernel", True)] + bias
    if c == "SeparableConv2D":
        return [("depthwise_kernel", True), ("pointwise_kernel", True)] + bias
    if c == "BatchNormalization":
        r = []
        if cfg.get("scale", True):
            r.append(("gamma", True))
        if cfg.get("center", True):
            r.append(("beta", True))
        return r + [("moving_mean", False), ("moving_variance", False)]
    if c in layers_extra.WEIGHT_ROLES:
        return layers_extra.WEIGHT_ROLES[c](cfg)
    if c == "Normalization":
        if cfg.get("mean") is not None and cfg.get("variance") is not None:
            return []
        return [("mean", False), ("variance", False), ("count", False)]
    return []


# Names variables have had across Keras versions -> the role used here.
ROLE_ALIASES = {
    ("DepthwiseConv2D", "kernel"): "depthwise_kernel",
    ("Normalization", "adapt_mean"): "mean",
    ("Normalization", "adapt_variance"): "variance",
    ("LayerScale", "variable"): "gamma",  # Keras 3 ConvNeXt's add_weight has no name
}


# ---- translators -----------------------------------------------------------------------------

def t_conv2d(b, layer, x):
    k, s, d = conv_geometry(layer, x)
    cfg = layer.cfg
    if cfg.get("lora_rank"):
        raise _unsupported(layer, "LoRA-enabled layer; merge the LoRA weights first")
    f = int(cfg["filters"])
    c = x.shape[2]
    groups = int(cfg.get("groups", 1) or 1)
    if groups < 1 or c % groups or f % groups:
        raise _unsupported(layer, f"groups={groups} does not divide {c} input channels and "
                                  f"{f} filters")
    iattr, oh, ow = window_attrs(layer, x, k, s, cfg.get("padding", "valid"), d)
    kernel = _w(layer, "kernel", (k[0], k[1], c // groups, f))
    type_ = ir.CONV2D
    if groups == c and groups > 1:
        # One input channel per group (ConvNeXt saves its depthwise convs this way): output
        # channel o reads input channel o // (f/c) through kernel[..., 0, o], which is the
        # depthwise kernel [KH, KW, C, f/c] with the same bytes (its channel c*M + m).
        w = b.const(layer, "kernel", kernel, (k[0], k[1], c, f // c))
        type_ = ir.DEPTHWISE_CONV2D
    else:
        w = b.const(layer, "kernel", kernel)
        if groups > 1:
            type_ = ir.GROUPED_CONV2D
            iattr[10] = groups
    return [emit_biased(b, type_, layer, [x, w], (oh, ow, f), iattr)]


def t_depthwise(b, layer, x):
    k, s, d = conv_geometry(layer, x)
    cfg = layer.cfg
    m = int(cfg.get("depth_multiplier", 1))
    c = x.shape[2]
    iattr, oh, ow = window_attrs(layer, x, k, s, cfg.get("padding", "valid"), d)
    w = b.const(layer, "depthwise_kernel", _w(layer, "depthwise_kernel", (k[0], k[1], c, m)))
    return [emit_biased(b, ir.DEPTHWISE_CONV2D, layer, [x, w], (oh, ow, c * m), iattr)]


def t_separable(b, layer, x):
    """SeparableConv2D = DepthwiseConv2D (strides, dilation, padding, no bias) then a 1x1
    Conv2D carrying the bias and the activation."""
    k, s, d = conv_geometry(layer, x)
    cfg = layer.cfg
    m = int(cfg.get("depth_multiplier", 1))
    f = int(cfg["filters"])
    c = x.shape[2]
    iattr, oh, ow = window_attrs(layer, x, k, s, cfg.get("padding", "valid"), d)
    dw = b.const(layer, "depthwise_kernel", _w(layer, "depthwise_kernel", (k[0], k[1], c, m)))
    mid = b.emit(ir.DEPTHWISE_CONV2D, layer, [x, dw], (oh, ow, c * m), None, iattr,
                 out_name=f"{layer.name}/depthwise")
    pw = b.const(layer, "pointwise_kernel", _w(layer, "pointwise_kernel", (1, 1, c * m, f)))
    pattr = [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0]
    return [emit_biased(b, ir.CONV2D, layer, [mid, pw], (oh, ow, f), pattr)]


def t_dense(b, layer, x):
    cfg = layer.cfg
    if cfg.get("lora_rank"):
        raise _unsupported(layer, "LoRA-enabled layer; merge the LoRA weights first")
    units = int(cfg["units"])
    cin = x.shape[-1]
    w = b.const(layer, "kernel", _w(layer, "kernel", (cin, units)))
    return [emit_biased(b, ir.DENSE, layer, [x, w], x.shape[:-1] + (units,))]


def _last_axis_only(layer, axis, rank):
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    if len(axes) != 1 or axes[0] not in (-1, rank):
        raise _unsupported(layer, f"axis {axis} (only the last, channel, axis is supported)")


def t_batchnorm(b, layer, x):
    """Inference BatchNormalization: y = (x - mean) / sqrt(var + eps) * gamma + beta, emitted
    as AFFINE scale s = gamma / sqrt(var + eps), shift = beta - mean * s (float64); fold.py
    folds it into a preceding conv/dense when it can."""
    cfg = layer.cfg
    _last_axis_only(layer, cfg.get("axis", -1), len(x.shape))
    if cfg.get("renorm"):
        raise _unsupported(layer, "batch renormalization")
    c = x.shape[-1]
    eps = float(cfg.get("epsilon", 1e-3))
    gamma = _w(layer, "gamma", (c,)).astype(np.float64) if cfg.get("scale", True) else 1.0
    beta = _w(layer, "beta", (c,)).astype(np.float64) if cfg.get("center", True) else 0.0
    mean = _w(layer, "moving_mean", (c,)).astype(np.float64)
    var = _w(layer, "moving_variance", (c,)).astype(np.float64)
    s = gamma / np.sqrt(var + eps) * np.ones(c)
    t = beta - mean * s
    sc = b.new_const(f"{layer.name}/scale", s)
    sh = b.new_const(f"{layer.name}/shift", t)
    return [b.emit(ir.AFFINE, layer, [x, sc, sh], x.shape)]


def _number(v):
    """A config number or list, unwrapping Keras 3's serialized arrays ({"config": {"value"}})."""
    if isinstance(v, dict):
        v = (v.get("config") or {}).get("value", v.get("value"))
    return np.asarray(v, np.float64)


def t_rescaling(b, layer, x):
    """Rescaling: y = x * scale + offset (scalars or per-channel lists)."""
    c = x.shape[-1]
    try:
        scale = np.broadcast_to(_number(layer.cfg.get("scale", 1.0)).reshape(-1), (c,))
        offset = np.broadcast_to(_number(layer.cfg.get("offset", 0.0)).reshape(-1), (c,))
    except (ValueError, TypeError):
        raise _unsupported(layer, "scale/offset that are not scalars or per-channel lists")
    sc = b.new_const(f"{layer.name}/scale", scale)
    sh = b.new_const(f"{layer.name}/offset", offset)
    return [b.emit(ir.AFFINE, layer, [x, sc, sh], x.shape)]


def t_normalization(b, layer, x):
    """Normalization: y = (x - mean) / max(sqrt(var), eps) with eps = backend epsilon 1e-7
    (keras/tf_keras normalization.py call()); invert=True gives x * max(sqrt(var), eps) + mean."""
    cfg = layer.cfg
    axis = cfg.get("axis", -1)
    _last_axis_only(layer, axis, len(x.shape))
    c = x.shape[-1]
    if cfg.get("mean") is not None and cfg.get("variance") is not None:
        mean, var = _number(cfg["mean"]), _number(cfg["variance"])
    else:
        mean = np.asarray(_w(layer, "mean"), np.float64)
        var = np.asarray(_w(layer, "variance"), np.float64)
    try:
        mean = np.broadcast_to(mean.reshape(-1) if mean.size == c else mean, (c,))
        var = np.broadcast_to(var.reshape(-1) if var.size == c else var, (c,))
    except ValueError:
        raise _unsupported(layer, f"mean/variance of shape {list(mean.shape)} for {c} channels")
    # float32 like Keras computes it, then the affine form in float64.
    den = np.maximum(np.sqrt(var.astype(np.float32)), np.float32(1e-7)).astype(np.float64)
    if cfg.get("invert"):
        scale, shift = den, mean
    else:
        scale, shift = 1.0 / den, -mean / den
    sc = b.new_const(f"{layer.name}/scale", scale)
    sh = b.new_const(f"{layer.name}/shift", shift)
    return [b.emit(ir.AFFINE, layer, [x, sc, sh], x.shape)]


def t_relu(b, layer, x):
    cfg = layer.cfg
    if float(cfg.get("threshold", 0.0) or 0.0) != 0.0:
        raise _unsupported(layer, f"ReLU threshold={cfg['threshold']} (only 0 is supported)")
    mv = cfg.get("max_value")
    act = ir.Act(ir.RELU, float(cfg.get("negative_slope", 0.0) or 0.0),
                 math.inf if mv is None else float(mv))
    return [b.emit(ir.ACTIVATION, layer, [x], x.shape, act)]


def t_leaky_relu(b, layer, x):
    cfg = layer.cfg
    slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
    return [b.emit(ir.ACTIVATION, layer, [x], x.shape, ir.Act(ir.RELU, float(slope)))]


def t_elu(b, layer, x):
    return [b.emit(ir.ACTIVATION, layer, [x], x.shape,
                   ir.Act(ir.ELU, float(layer.cfg.get("alpha", 1.0))))]


def t_activation(b, layer, x):
    act = activation_spec(layer, layer.cfg.get("activation"), b.keras3)
    if act == "hard_silu":
        return [hard_silu(b, layer, x)]
    if act.code == ir.LINEAR:
        return [x]
    return [b.emit(ir.ACTIVATION, layer, [x], x.shape, act)]


def t_softmax(b, layer, x):
    _last_axis_only(layer, layer.cfg.get("axis", -1), len(x.shape))
    return [b.emit(ir.ACTIVATION, layer, [x], x.shape, ir.Act(ir.SOFTMAX))]


def _merge(b, layer, xs, type_):
    if len(xs) < 2:
        raise _unsupported(layer, "needs at least two inputs")
    out = max(xs, key=lambda t: t.size).shape
    for t in xs:
        gate = (type_ == ir.MULTIPLY and t.size == out[-1] and t.shape[-1] == out[-1]
                and len(t.shape) in (1, 3))
        if t.shape != out and not gate:
            raise _unsupported(layer, f"inputs of shapes {[list(t.shape) for t in xs]} "
                                      "(broadcasting is limited to a per-channel Multiply gate)")
    # FORMAT.md allows 8 inputs per op: chain when there are more.
    acc = xs[:8]
    y = b.emit(type_, layer, acc, out)
    rest = xs[8:]
    while rest:
        y = b.emit(type_, layer, [y] + rest[:7], out)
        rest = rest[7:]
    return [y]


def t_add(b, layer, *xs):
    return _merge(b, layer, list(xs), ir.ADD)


def t_multiply(b, layer, *xs):
    return _merge(b, layer, list(xs), ir.MULTIPLY)


def t_concatenate(b, layer, *xs):
    xs = list(xs)
    rank = len(xs[0].shape)
    axis = int(layer.cfg.get("axis", -1))
    if axis == 0:
        raise _unsupported(layer, "concatenation along the batch axis (axis=0)")
    a = axis - 1 if axis > 0 else rank + axis
    if not 0 <= a < rank:
        raise _unsupported(layer, f"axis {axis} for inputs of rank {rank}")
    for t in xs:
        if len(t.shape) != rank or any(t.shape[i] != xs[0].shape[i]
                                       for i in range(rank) if i != a):
            raise _unsupported(layer, f"inputs {[list(t.shape) for t in xs]} differ off axis")
    if len(xs) == 1:
        return [xs[0]]
    if len(xs) > 8:
        raise _unsupported(layer, f"{len(xs)} inputs (at most 8)")
    out = list(xs[0].shape)
    out[a] = sum(t.shape[a] for t in xs)
    return [b.emit(ir.CONCAT, layer, xs, tuple(out), iattr=[a])]


def _global_pool(b, layer, x, type_):
    _check_channels_last(layer)
    _need_rank3(layer, x)
    keep = bool(layer.cfg.get("keepdims", False))
    out = (1, 1, x.shape[2]) if keep else (x.shape[2],)
    return [b.emit(type_, layer, [x], out)]


def t_gap(b, layer, x):
    return _global_pool(b, layer, x, ir.GLOBAL_AVG_POOL)


def t_gmp(b, layer, x):
    return _global_pool(b, layer, x, ir.GLOBAL_MAX_POOL)


def _pool(b, layer, x, type_):
    _check_channels_last(layer)
    _need_rank3(layer, x)
    cfg = layer.cfg
    k = _tuple2(cfg.get("pool_size", 2), "pool_size", layer)
    st = cfg.get("strides")
    s = k if st is None else _tuple2(st, "strides", layer)
    iattr, oh, ow = window_attrs(layer, x, k, s, cfg.get("padding", "valid"))
    return [b.emit(type_, layer, [x], (oh, ow, x.shape[2]), iattr=iattr[:8] + [0] * 4)]


def t_avgpool(b, layer, x):
    return _pool(b, layer, x, ir.AVG_POOL)


def t_maxpool(b, layer, x):
    return _pool(b, layer, x, ir.MAX_POOL)


def t_zeropad(b, layer, x):
    _check_channels_last(layer)
    _need_rank3(layer, x)
    t, bo, l, r = pad_pairs(layer, layer.cfg.get("padding", 1))
    if t == bo == l == r == 0:
        return [x]
    out = (x.shape[0] + t + bo, x.shape[1] + l + r, x.shape[2])
    return [b.emit(ir.PAD, layer, [x], out, iattr=[0, 0, 0, 0, t, bo, l, r], fattr=[0.0])]


def t_flatten(b, layer, x):
    _check_channels_last(layer)
    if len(x.shape) == 1:
        return [x]
    return [b.emit(ir.RESHAPE, layer, [x], (x.size,))]


def t_reshape(b, layer, x):
    target = [int(d) if d is not None else -1 for d in layer.cfg["target_shape"]]
    if target.count(-1) > 1:
        raise _unsupported(layer, f"target_shape {target} has more than one unknown dimension")
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        if known == 0 or x.size % known:
            raise _unsupported(layer, f"target_shape {target} does not fit {list(x.shape)}")
        target[target.index(-1)] = x.size // known
    if int(np.prod(target)) != x.size or not 1 <= len(target) <= 4:
        raise _unsupported(layer, f"target_shape {target} does not fit {list(x.shape)}")
    if tuple(target) == x.shape:
        return [x]
    return [b.emit(ir.RESHAPE, layer, [x], tuple(target))]


def t_identity(b, layer, *xs):
    if len(xs) != 1:
        raise _unsupported(layer, f"called on {len(xs)} inputs")
    return [xs[0]]


TRANSLATORS = {
    "Conv2D": t_conv2d,
    "DepthwiseConv2D": t_depthwise,
    "SeparableConv2D": t_separable,
    "Dense": t_dense,
    "BatchNormalization": t_batchnorm,
    "Rescaling": t_rescaling,
    "Normalization": t_normalization,
    "ReLU": t_relu, "LeakyReLU": t_leaky_relu, "ELU": t_elu,
    "Activation": t_activation, "Softmax": t_softmax,
    "Add": t_add, "Multiply": t_multiply, "Concatenate": t_concatenate,
    "GlobalAveragePooling2D": t_gap, "GlobalAvgPool2D": t_gap,
    "GlobalMaxPooling2D": t_gmp, "GlobalMaxPool2D": t_gmp,
    "AveragePooling2D": t_avgpool, "AvgPool2D": t_avgpool,
    "MaxPooling2D": t_maxpool, "MaxPool2D": t_maxpool,
    "ZeroPadding2D": t_zeropad,
    "Flatten": t_flatten, "Reshape": t_reshape,
    "Resizing": t_resizing, "CenterCrop": t_center_crop, "RandomCrop": t_random_crop,
}
TRANSLATORS.update(layers_extra.TRANSLATORS)
for _c in IDENTITY_CLASSES:
    TRANSLATORS[_c] = t_identity

MULTI_INPUT = (t_add, t_multiply, t_concatenate, t_identity) + layers_extra.MULTI_INPUT
STRUCTURAL = ("InputLayer", "Sequential", "Functional", "Model")


# The supported classes by kind, for the refusal message; a class not listed is "other".
KINDS = {
    "convolution and dense": ("Conv2D", "Conv2DTranspose", "Convolution2DTranspose",
                              "DepthwiseConv2D", "SeparableConv2D", "Dense"),
    "normalization and scaling": ("BatchNormalization", "LayerNormalization", "Normalization",
                                  "Rescaling", "LayerScale", "CustomScaleLayer",
                                  "Custom>CustomScaleLayer"),
    "activation": ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"),
    "merge": ("Add", "Multiply", "Concatenate"),
    "pooling": ("GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D",
                "GlobalMaxPool2D", "AveragePooling2D", "AvgPool2D", "MaxPooling2D", "MaxPool2D"),
    "shape, padding and resampling": ("ZeroPadding2D", "Cropping2D", "UpSampling2D", "Flatten",
                                      "Reshape", "Resizing", "CenterCrop", "RandomCrop"),
    "identity at inference (dropped)": IDENTITY_CLASSES,
    "model structure": STRUCTURAL,
}


def supported_classes():
    """{kind: sorted classes} of every class with a translation (plus the model classes)."""
    known = set(TRANSLATORS) | set(STRUCTURAL)
    out = {kind: sorted(set(names) & known) for kind, names in KINDS.items()}
    other = sorted(known - {c for names in KINDS.values() for c in names})
    if other:
        out["other"] = other
    return out


def check_supported(tree):
    """Refuse the model before touching weights when any layer class is unknown, a raw op is
    not exportable or a dtype policy is quantized: one error naming every such layer."""
    err = None
    for l in tree.walk():
        if l.is_model or l.class_name == "InputLayer":
            continue
        why = tfops.lost_module_problem(l, l.class_name in TRANSLATORS)
        if why is None and is_op_layer(l):
            why = tfops.check(l)
        elif why is None and l.class_name not in TRANSLATORS:
            why = common.HINTS.get(l.class_name, "no translation for this layer class")
        pol = l.cfg.get("dtype")
        pname = pol.get("config", {}).get("name") if isinstance(pol, dict) else pol
        if why is None and isinstance(pname, str) and (
                "int8" in pname or "int4" in pname or "float8" in pname):
            why = f"quantized dtype policy '{pname}'"
        if why is None:
            continue
        if err is None:
            err = common.unsupported(l, why)
            err.layers = []
        else:
            err.also(l.name, l.class_name, why)
        err.layers.append(l)
    if err is not None:
        raise err.naming(supported_classes())


def is_op_layer(layer):
    """A raw operation recorded in the graph: a Keras 2 TFOpLambda / SlicingOpLambda, or a
    Keras 3 op (`module` keras.src.ops.*, e.g. TrueDivide from `x / 127.5`, or a module a
    Keras 3 .h5 dropped: tfops.module_lost)."""
    return (layer.class_name in TF_OP_CLASSES
            or layer.module.startswith(("keras.src.ops", "keras.ops"))
            or tfops.module_lost(layer))


def translate(b, layer, inputs, node=None):
    try:
        if is_op_layer(layer):
            return tfops.translate(b, layer, inputs, node)
        fn = TRANSLATORS.get(layer.class_name)
        if fn is None:
            raise _unsupported(layer)
        if fn not in MULTI_INPUT and len(inputs) != 1:
            raise _unsupported(layer, f"called on {len(inputs)} inputs")
        return fn(b, layer, *inputs)
    except UnsupportedLayer as e:  # from activations.py / tfops.py, which do not know the list
        e.naming(supported_classes())
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
        # A config that Keras itself would not have written (a key missing, a value of the
        # wrong type): the file is damaged or hand-made, and says so instead of a traceback.
        raise ExportError(f"layer '{layer.name}' (class {layer.class_name}): malformed config "
                          f"({type(e).__name__}: {str(e)[:120]})") from e
