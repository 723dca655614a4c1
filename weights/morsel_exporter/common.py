"""What the translators of layers.py, activations.py, tfops.py and resize_crop.py share: the
hints that go with a refusal and the checks and window arithmetic of 2-D layers. Imports nothing
of the exporter but errors.py, so the translator modules need not import each other."""

import numpy as np

from .errors import ExportError, UnsupportedLayer

HINTS = {
    "Lambda": "a Lambda layer holds arbitrary Python code that cannot be exported; rebuild the "
              "model without it (if it only scales the input, replace it with a Rescaling "
              "layer, or drop it and pass --preprocess)",
    "TFOpLambda": "a raw TensorFlow op recorded in the model; only arithmetic with constants "
                  "(+, -, *, / as from preprocess_input), tf.nn.bias_add, the channel flip "
                  "x[..., ::-1], tf.cast to float32 and tf.image.resize (bilinear/nearest) "
                  "are exported. Rebuild the model without it, replace it with a Rescaling "
                  "layer, or drop it and pass --preprocess",
}
HINTS["SlicingOpLambda"] = HINTS["TFOpLambda"]


def unsupported(layer, why=""):
    """The refusal for `layer`; the class's hint when no reason is given. layers.py adds the
    list of supported classes (UnsupportedLayer.naming)."""
    return UnsupportedLayer(layer.name, layer.class_name, why or HINTS.get(layer.class_name, ""))


def weight(layer, role, shape=None):
    """The layer's weight `role` from the file, checked against the shape Keras gives it."""
    if role not in layer.weights:
        raise ExportError(f"layer '{layer.name}' ({layer.class_name}): weight '{role}' missing "
                          "from the file")
    a = np.asarray(layer.weights[role])
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ExportError(f"layer '{layer.name}' ({layer.class_name}): weight '{role}' has "
                          f"shape {list(a.shape)}, expected {list(shape)}")
    return a


def pad_pairs(layer, p, what="padding"):
    """ZeroPadding2D / Cropping2D amounts: n, (rows, cols) or ((top, bottom), (left, right)),
    non-negative -> (top, bottom, left, right)."""
    def pair(v):
        return isinstance(v, (list, tuple)) and len(v) == 2
    if isinstance(p, int):
        t = bo = l = r = p
    elif pair(p) and all(isinstance(v, int) for v in p):
        t = bo = p[0]
        l = r = p[1]
    elif pair(p) and all(pair(v) and all(isinstance(u, int) for u in v) for v in p):
        (t, bo), (l, r) = p
    else:
        raise unsupported(layer, f"{what} {p!r}")
    if min(t, bo, l, r) < 0:
        raise unsupported(layer, f"negative {what} {p!r}")
    return int(t), int(bo), int(l), int(r)


def tuple2(v, what, layer):
    if isinstance(v, (int, float)):
        return int(v), int(v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return int(v[0]), int(v[1])
    raise unsupported(layer, f"{what} {v!r} is not a 2-D value")


def conv_geometry(layer, x):
    """A 2-D convolution layer's checks (channels_last, an [H, W, C] input) and its
    kernel_size, strides and dilation_rate as pairs."""
    check_channels_last(layer)
    need_rank3(layer, x)
    cfg = layer.cfg
    return (tuple2(cfg["kernel_size"], "kernel_size", layer),
            tuple2(cfg.get("strides", 1), "strides", layer),
            tuple2(cfg.get("dilation_rate", 1), "dilation_rate", layer))


def check_channels_last(layer):
    df = layer.cfg.get("data_format")
    if df not in (None, "channels_last"):
        raise unsupported(layer, f"data_format '{df}' (only channels_last is supported)")


def need_rank3(layer, x):
    if len(x.shape) != 3:
        raise unsupported(layer, f"expects an [H, W, C] input, got shape {list(x.shape)}")


def same_pads(size, k, stride, dilation=1):
    """TF/Keras 'same' padding along one axis: out = ceil(in / stride), total pad
    = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0); the smaller half goes before
    (top/left), the extra row/column after (bottom/right)."""
    out = -(-size // stride)
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def window_attrs(layer, x, k, strides, padding, dilation=(1, 1)):
    """iattr[0..9] for CONV2D / DEPTHWISE / pools, and the output (H, W)."""
    H, W = x.shape[0], x.shape[1]
    for what, v in (("kernel size", k), ("strides", strides), ("dilation", dilation)):
        if not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d < 1 << 16
                   for d in v[:2]) or len(v) < 2:
            raise ExportError(f"layer '{layer.name}' (class {layer.class_name}): {what} "
                              f"{list(v)[:4]} is not two integers from 1 to 65535")
    if padding == "same":
        pt, pb = same_pads(H, k[0], strides[0], dilation[0])
        pl, pr = same_pads(W, k[1], strides[1], dilation[1])
    elif padding == "valid":
        pt = pb = pl = pr = 0
    else:
        raise unsupported(layer, f"padding '{padding}'")
    eh, ew = (k[0] - 1) * dilation[0] + 1, (k[1] - 1) * dilation[1] + 1
    oh = (H + pt + pb - eh) // strides[0] + 1
    ow = (W + pl + pr - ew) // strides[1] + 1
    if oh < 1 or ow < 1 or H + pt + pb < eh or W + pl + pr < ew:
        raise unsupported(layer, f"window {k} larger than its input {list(x.shape)}")
    iattr = [k[0], k[1], strides[0], strides[1], pt, pb, pl, pr, dilation[0], dilation[1], 0, 0]
    return iattr, oh, ow
