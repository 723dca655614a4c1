"""In-model resizing and cropping: Resizing, CenterCrop, RandomCrop and the resize/crop ops
that tfops.py also emits for tf.image.resize, keras.ops.image.resize and spatial slices."""

import numpy as np

from . import ir
from .common import check_channels_last as _check_channels_last
from .common import need_rank3 as _need_rank3
from .common import unsupported as _unsupported


# ---- in-model resizing and cropping ----------------------------------------------------------
#
# Keras (TensorFlow backend) resizes with tf.image.resize, antialias=False by default:
# ResizeBilinear / ResizeNearestNeighbor with half_pixel_centers=True (TF image_ops_impl
# resize_images_v2). The RESIZE kernel reproduces those float32 computations
# (kernels/resize.c); other methods (bicubic, area, lanczos, antialias) are refused.

RESIZE_METHODS = {"bilinear": ir.RESIZE_BILINEAR, "nearest": ir.RESIZE_NEAREST}


def resize(b, layer, x, oh, ow, method, out_name=None):
    """RESIZE to (oh, ow); a same-size resize is the identity in TF (both methods)."""
    _need_rank3(layer, x)
    if (oh, ow) == x.shape[:2]:
        return x
    if oh < 1 or ow < 1:
        raise _unsupported(layer, f"resize to {oh}x{ow}")
    return b.emit(ir.RESIZE, layer, [x], (oh, ow, x.shape[2]), iattr=[method],
                  out_name=out_name)


def crop(b, layer, x, top, left, h, w, out_name=None):
    _need_rank3(layer, x)
    if not (0 <= top and 0 <= left and h >= 1 and w >= 1 and top + h <= x.shape[0]
            and left + w <= x.shape[1]):
        raise _unsupported(layer, f"crop box ({top}, {left}) {h}x{w} outside its input "
                                  f"{list(x.shape)}")
    if (top, left, h, w) == (0, 0) + x.shape[:2]:
        return x
    return b.emit(ir.CROP, layer, [x], (h, w, x.shape[2]), iattr=[top, left],
                  out_name=out_name)


def _aspect(a, b_, c, f32):
    """int(a * b / c) as Keras computes it: in float32 (TF tensors) or in double (Keras 3's
    smart_resize on static shapes)."""
    if f32:
        return int(np.float32(a * b_) / np.float32(c))
    return int(float(a * b_) / c)


def crop_to_aspect(b, layer, x, th, tw, f32):
    """The largest centred window of aspect th:tw (keras smart_resize / Resizing
    crop_to_aspect_ratio): crop_h = min(H, int(W*th/tw)), crop_w = min(W, int(H*tw/th)), both
    at least 1, start = int((H - crop_h) / 2)."""
    H, W = x.shape[0], x.shape[1]
    ch = max(min(H, _aspect(W, th, tw, f32)), 1)
    cw = max(min(W, _aspect(H, tw, th, f32)), 1)
    return crop(b, layer, x, (H - ch) // 2, (W - cw) // 2, ch, cw,
                out_name=f"{layer.name}/crop")


def _method(layer, name="interpolation"):
    m = str(layer.cfg.get(name, "bilinear")).lower()
    if m not in RESIZE_METHODS:
        raise _unsupported(layer, f"interpolation '{m}' (bilinear and nearest are supported)")
    return RESIZE_METHODS[m]


def t_resizing(b, layer, x):
    """Resizing(height, width, interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio)."""
    _check_channels_last(layer)
    _need_rank3(layer, x)
    cfg = layer.cfg
    th, tw = int(cfg["height"]), int(cfg["width"])
    method = _method(layer)
    if cfg.get("antialias"):
        raise _unsupported(layer, "antialias=True (tf.image.resize's scale-and-translate "
                                  "kernels); re-save with antialias=False")
    if cfg.get("crop_to_aspect_ratio"):
        # Keras 3 resize() and tf_keras smart_resize both compute the box on float32 tensors.
        x = crop_to_aspect(b, layer, x, th, tw, True)
    elif cfg.get("pad_to_aspect_ratio"):
        # Keras 3 TF backend resize(): pad_h = max(H, int(W*th/tw)) (float32), start =
        # int((pad_h - H) / 2) rows of fill_value on BOTH sides; likewise the width.
        H, W = x.shape[0], x.shape[1]
        ph = max(H, _aspect(W, th, tw, True))
        pw = max(W, _aspect(H, tw, th, True))
        hs, ws = (ph - H) // 2, (pw - W) // 2
        if hs or ws:
            fill = float(cfg.get("fill_value", 0.0) or 0.0)
            x = b.emit(ir.PAD, layer, [x], (H + 2 * hs, W + 2 * ws, x.shape[2]),
                       iattr=[0, 0, 0, 0, hs, hs, ws, ws], fattr=[fill],
                       out_name=f"{layer.name}/pad")
    return [resize(b, layer, x, th, tw, method)]


def t_center_crop(b, layer, x):
    """CenterCrop(height, width): a centred crop at ((H-h)//2, (W-w)//2) when the input is at
    least the target size in both axes; otherwise Keras resizes with smart_resize (crop to the
    target aspect ratio, then bilinear)."""
    _check_channels_last(layer)
    _need_rank3(layer, x)
    th, tw = int(layer.cfg["height"]), int(layer.cfg["width"])
    H, W = x.shape[0], x.shape[1]
    if H >= th and W >= tw:
        return [crop(b, layer, x, (H - th) // 2, (W - tw) // 2, th, tw)]
    x = crop_to_aspect(b, layer, x, th, tw, not b.keras3)
    return [resize(b, layer, x, th, tw, ir.RESIZE_BILINEAR)]


def t_random_crop(b, layer, x):
    """RandomCrop at inference: Keras 3 returns its input unchanged (transform_images with
    training=False); tf_keras resizes with smart_resize (crop to aspect ratio, bilinear)."""
    _check_channels_last(layer)
    _need_rank3(layer, x)
    if b.keras3:
        return [x]
    th, tw = int(layer.cfg["height"]), int(layer.cfg["width"])
    x = crop_to_aspect(b, layer, x, th, tw, True)
    return [resize(b, layer, x, th, tw, ir.RESIZE_BILINEAR)]
