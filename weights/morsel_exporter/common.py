"""What the translators of layers.py, activations.py, tfops.py and resize_crop.py share: the
hints that go with a refusal and the checks and window arithmetic of 2-D layers. Imports nothing
of the exporter but errors.py, so the translator modules need not import each other."""

from .errors import UnsupportedLayer

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


def tuple2(v, what, layer):
    if isinstance(v, (int, float)):
        return int(v), int(v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return int(v[0]), int(v[1])
    raise unsupported(layer, f"{what} {v!r} is not a 2-D value")


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
