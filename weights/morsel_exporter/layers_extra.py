"""Translators for the layers of issue 11: Conv2DTranspose, Cropping2D, UpSampling2D,
LayerNormalization, and the two scale layers keras.applications ships (ConvNeXt's LayerScale,
InceptionResNetV2's CustomScaleLayer). Grouped Conv2D is in layers.t_conv2d."""

import numpy as np

from . import ir
from .activations import emit_biased
from .common import (check_channels_last, conv_geometry, need_rank3, pad_pairs, tuple2,
                     unsupported, weight)
from .resize_crop import RESIZE_METHODS, crop, resize


def t_cropping2d(b, layer, x):
    """Cropping2D(((top, bottom), (left, right))): the CROP op's box."""
    check_channels_last(layer)
    need_rank3(layer, x)
    t, bo, l, r = pad_pairs(layer, layer.cfg.get("cropping", ((0, 0), (0, 0))), "cropping")
    h, w = x.shape[0] - t - bo, x.shape[1] - l - r
    if h < 1 or w < 1:
        raise unsupported(layer, f"cropping {(t, bo, l, r)} leaves nothing of {list(x.shape)}")
    return [crop(b, layer, x, t, l, h, w)]


def t_upsampling2d(b, layer, x):
    """UpSampling2D(size, interpolation). Keras 3 repeats rows and columns for 'nearest'
    (ops.repeat) and calls ops.image.resize to (H*sh, W*sw) for the others; tf_keras calls
    tf.image.resize for both. At an integer factor TF's half-pixel nearest picks source
    floor((i + 0.5) / f) = i // f, the repeat, so both are the RESIZE op."""
    check_channels_last(layer)
    need_rank3(layer, x)
    sh, sw = tuple2(layer.cfg.get("size", 2), "size", layer)
    m = str(layer.cfg.get("interpolation", "nearest")).lower()
    if m not in RESIZE_METHODS:
        raise unsupported(layer, f"interpolation '{m}' (nearest and bilinear are supported)")
    if sh < 1 or sw < 1:
        raise unsupported(layer, f"size {(sh, sw)}")
    return [resize(b, layer, x, x.shape[0] * sh, x.shape[1] * sw, RESIZE_METHODS[m])]


def _last_axis(layer, rank):
    axis = layer.cfg.get("axis", -1)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    if len(axes) != 1 or axes[0] not in (-1, rank):
        raise unsupported(layer, f"axis {axis} (only the last, channel, axis is supported)")


def t_layer_norm(b, layer, x):
    """LayerNormalization over the channel axis: (x - mean) * rsqrt(var + eps) * gamma + beta,
    var the biased variance (Keras 3 ops.layer_normalization via ops.moments; tf_keras
    tf.nn.moments + batch_normalization, or fused_batch_norm, the same formula)."""
    cfg = layer.cfg
    _last_axis(layer, len(x.shape))
    if cfg.get("rms_scaling"):
        raise unsupported(layer, "rms_scaling=True")
    c = x.shape[-1]
    try:
        eps = float(cfg.get("epsilon", 1e-3))
    except (TypeError, ValueError):
        eps = -1.0
    if not eps >= 0.0 or eps == float("inf"):
        raise unsupported(layer, f"epsilon {cfg.get('epsilon')!r}")
    gamma = weight(layer, "gamma", (c,)) if cfg.get("scale", True) else np.ones(c)
    beta = weight(layer, "beta", (c,)) if cfg.get("center", True) else np.zeros(c)
    g = b.const(layer, "gamma", gamma)
    bt = b.const(layer, "beta", beta)
    return [b.emit(ir.LAYER_NORM, layer, [x, g, bt], x.shape, fattr=[eps])]


def t_layer_scale(b, layer, x):
    """ConvNeXt's LayerScale: x * gamma per channel. An AFFINE with zero shift, which
    fold.fold_scales multiplies into the Dense before it when that is exact."""
    c = x.shape[-1]
    g = b.const(layer, "gamma", weight(layer, "gamma", (c,)))
    return [b.emit(ir.AFFINE, layer, [x, g, b.new_const(f"{layer.name}/zero", np.zeros(c))],
                   x.shape)]


def t_custom_scale(b, layer, *xs):
    """InceptionResNetV2's CustomScaleLayer(scale)([x, r]) = x + r * scale: the residual r is
    scaled by an AFFINE (folded into the conv that makes it) and added to x."""
    if len(xs) != 2 or xs[0].shape != xs[1].shape:
        raise unsupported(layer, f"expects two inputs of one shape, got "
                                 f"{[list(t.shape) for t in xs]}")
    try:
        s = float(layer.cfg["scale"])
    except (KeyError, TypeError, ValueError):
        raise unsupported(layer, f"scale {layer.cfg.get('scale')!r} is not a number")
    c = xs[1].shape[-1]
    r = b.emit(ir.AFFINE, layer, [xs[1], b.new_const(f"{layer.name}/scale", np.full(c, s)),
                                  b.new_const(f"{layer.name}/zero", np.zeros(c))],
               xs[1].shape, out_name=f"{layer.name}/scaled")
    return [b.emit(ir.ADD, layer, [xs[0], r], xs[0].shape)]


def _transpose_axis(n, k, s, padding, out_pad):
    """Output size and the rows cut from the full (n-1)*s + k of one axis. The size is Keras's
    (keras backend_utils _get_output_shape_given_tf_padding = tf_keras deconv_output_length);
    the cut at the start is TensorFlow's 'same' padding of the conv this op is the gradient of,
    max((n-1)*s + k - out, 0) // 2, and nothing for 'valid'."""
    if padding == "valid":
        out = (n - 1) * s + k + (max(k, s) - k if out_pad is None else out_pad)
        top = 0
    else:
        out = n * s if out_pad is None else (n - 1) * s + k % 2 + out_pad
        top = max((n - 1) * s + k - out, 0) // 2
    return out, top, (n - 1) * s + k - top - out


def t_conv_transpose(b, layer, x):
    k, s, d = conv_geometry(layer, x)
    cfg = layer.cfg
    if d != (1, 1):
        raise unsupported(layer, "dilation_rate other than 1")
    padding = cfg.get("padding", "valid")
    if padding not in ("same", "valid"):
        raise unsupported(layer, f"padding '{padding}'")
    op = cfg.get("output_padding")
    op = (None, None) if op is None else tuple2(op, "output_padding", layer)
    if any(p is not None and not 0 <= p < st for p, st in zip(op, s)):
        raise unsupported(layer, f"output_padding {op} (must be below the strides {s})")
    f = int(cfg["filters"])
    c = x.shape[2]
    oh, ct, cb = _transpose_axis(x.shape[0], k[0], s[0], padding, op[0])
    ow, cl, cr = _transpose_axis(x.shape[1], k[1], s[1], padding, op[1])
    if oh < 1 or ow < 1:
        raise unsupported(layer, f"output of {oh}x{ow}")
    w = b.const(layer, "kernel", weight(layer, "kernel", (k[0], k[1], f, c)))
    iattr = [k[0], k[1], s[0], s[1], ct, cb, cl, cr]
    return [emit_biased(b, ir.CONV2D_TRANSPOSE, layer, [x, w], (oh, ow, f), iattr)]


TRANSLATORS = {
    "Conv2DTranspose": t_conv_transpose, "Convolution2DTranspose": t_conv_transpose,
    "Cropping2D": t_cropping2d,
    "UpSampling2D": t_upsampling2d,
    "LayerNormalization": t_layer_norm,
    "LayerScale": t_layer_scale,
    "CustomScaleLayer": t_custom_scale,
    # tf_keras registers its copy as a serializable custom object (package "Custom").
    "Custom>CustomScaleLayer": t_custom_scale,
}
MULTI_INPUT = (t_custom_scale,)

WEIGHT_ROLES = {
    "Conv2DTranspose": lambda cfg: [("kernel", True)] + (
        [("bias", True)] if cfg.get("use_bias", True) else []),
    # keras LayerNormalization.build: gamma when scale or rms_scaling, beta when center and
    # not rms_scaling.
    "LayerNormalization": lambda cfg: (
        [("gamma", True)] if cfg.get("scale", True) or cfg.get("rms_scaling") else [])
    + ([("beta", True)] if cfg.get("center", True) and not cfg.get("rms_scaling") else []),
    "LayerScale": lambda cfg: [("gamma", True)],
}
WEIGHT_ROLES["Convolution2DTranspose"] = WEIGHT_ROLES["Conv2DTranspose"]
