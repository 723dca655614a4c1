"""Raw operations recorded in a model graph, as `preprocess_input` (or any arithmetic on a
symbolic tensor) leaves them:

  Keras 2 (tf_keras)  TFOpLambda / SlicingOpLambda layers; config `function` names the TF API
                      (`math.truediv`, `__operators__.add`, `nn.bias_add`, ...). The node holds
                      the first positional argument (a tensor, or ["_CONSTANT_VALUE", -1, v])
                      and the other arguments by keyword (graph.call_arguments).
  Keras 3             operations with `module` keras.src.ops.numpy / core / image and their
                      class name (`TrueDivide`, `Subtract`, `GetItem`, `Stack`, `Resize`, ...);
                      the node holds the positional arguments, constants inline (numbers, or
                      {"class_name": "__tensor__", "config": {"value": ...}}).

Exported: +, -, *, / between a tensor and a constant that is a scalar or one value per channel
(-> AFFINE; `c / x` is not affine and is refused), + and * of two tensors (ADD / MULTIPLY,
including a per-channel [1, 1, C] gate times an [H, W, C] tensor),
negation, tf.nn.bias_add, a cast to float32 (identity), x[..., ::-1] and other channel
selections (an exact 0/1 DENSE; Keras 3's GetItem + Stack form of the caffe preprocessing
included), spatial slices x[:, a:b, c:d] (CROP), and tf.image.resize / keras.ops.image.resize
with bilinear or nearest (RESIZE). Anything else stops the export naming the layer and the op.
"""

import numpy as np

from . import ir
from .common import HINTS
from .errors import UnsupportedLayer
from .graph import TF_OP_CLASSES, KLayer, call_arguments
from .resize_crop import RESIZE_METHODS, crop, resize, t_resizing

K2_FUNCTIONS = {
    "math.add": "add", "__operators__.add": "add", "math.add_v2": "add",
    "math.subtract": "sub", "__operators__.sub": "sub",
    "math.multiply": "mul", "__operators__.mul": "mul",
    "math.truediv": "div", "math.divide": "div", "__operators__.truediv": "div",
    "math.scalar_mul": "scalar_mul", "compat.v1.math.scalar_mul": "scalar_mul",
    "nn.bias_add": "bias_add",
    "math.negative": "neg", "__operators__.neg": "neg",
    "cast": "cast", "dtypes.cast": "cast", "identity": "identity",
    "image.resize": "resize",
    "__operators__.getitem": "getitem",
}
MERGE_LAYERS = ("Add", "Subtract", "Multiply")  # keras.layers classes named like an op
K3_CLASSES = {
    "Add": "add", "Subtract": "sub", "Multiply": "mul", "Divide": "div", "TrueDivide": "div",
    "Negative": "neg", "Cast": "cast", "GetItem": "getitem", "Stack": "stack",
    "Resize": "resize",
}


def _unsupported(layer, why):
    if module_lost(layer):
        why += " (a keras.ops call whose module Keras 3's legacy .h5 writer dropped)"
    return UnsupportedLayer(layer.name, layer.class_name, why)  # layers.py adds the class list


# Keras 3's legacy .h5 writer drops the `module` of a keras.ops call: `x + 3.0` in MobileNetV3's
# hard-swish becomes class "Add" with no module, a name it shares with the Add layer. Two marks
# tell an op from a layer: its config (an op's has no "trainable"; every layer's has) and its
# call (a merge layer takes ONE positional argument, the list of its inputs,
# keras.layers.Add()([a, b]); an op takes its operands apart, keras.ops.add(x, 3.0)).

def _lost_marks(layer):
    """(op config, op call) for a module-less layer of a Keras 3 graph, else None."""
    nodes = layer.inbound
    if layer.module or not nodes or not all(isinstance(n, dict) and
                                            isinstance(n.get("args"), list) for n in nodes):
        return None  # a .keras file (modules kept) or a Keras 2 file (no keras.ops)
    op_call = all(not (len(n["args"]) == 1 and isinstance(n["args"][0], list)) for n in nodes)
    return "trainable" not in layer.cfg, op_call


def module_lost(layer):
    """A keras.ops call this module translates, saved without its module."""
    marks = _lost_marks(layer)
    if marks is None or layer.class_name not in K3_CLASSES or not marks[0]:
        return False
    return marks[1] or layer.class_name not in MERGE_LAYERS


def lost_module_problem(layer, known_layer):
    """Why a module-less layer of a Keras 3 .h5 cannot be exported, or None: an Add/Multiply/
    Subtract whose marks disagree (the file cannot say whether it is the layer or the op), or
    an op class that is no layer and no op this module translates."""
    marks = _lost_marks(layer)
    if marks is None:
        return None
    if layer.class_name in MERGE_LAYERS and marks[0] != marks[1]:
        return (f"cannot tell the {layer.class_name} layer from a keras.ops call: Keras 3's "
                f"legacy .h5 writer drops an op's module; save the model as .keras")
    if marks[0] and not known_layer and layer.class_name not in K3_CLASSES:
        hint = HINTS["TFOpLambda"]
        return (f"a keras.ops call ({layer.class_name}; Keras 3's legacy .h5 writer dropped "
                f"its module) that is not supported in any format; "
                f"{hint[hint.find('only'):]}")
    return None


def _kind(layer):
    if layer.class_name in TF_OP_CLASSES:
        return K2_FUNCTIONS.get(str(layer.cfg.get("function", "")))
    return K3_CLASSES.get(layer.class_name)


def _describe(layer):
    if layer.class_name in TF_OP_CLASSES:
        return f"tf.{layer.cfg.get('function', '?')}"
    return f"keras.ops {layer.class_name} ({layer.module or 'module not saved'})"


def check(layer):
    """None when the op is one this module can translate (its arguments are checked later)."""
    if _kind(layer) is None:
        hint = HINTS["TFOpLambda"]
        return f"the raw op {_describe(layer)} is not supported; {hint[hint.find('only'):]}"
    return None


def _is_tensor(v):
    return isinstance(v, ir.Tensor)


def _const(layer, v):
    """A constant argument as float64 (numbers, nested lists, Keras 3 __tensor__ dicts)."""
    if isinstance(v, dict):
        if v.get("class_name") in ("__tensor__", "__numpy__"):
            v = (v.get("config") or {}).get("value")
        else:
            raise _unsupported(layer, f"argument {v!r} is not a constant")
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise _unsupported(layer, f"argument {v!r} is not a numeric constant")
    return a


def _per_channel(layer, a, x):
    """A constant broadcast against x ([..., C] without the batch axis) that varies only along
    the channel axis -> a [C] vector."""
    c = x.shape[-1]
    if a.size == 1:
        return np.full(c, float(a.reshape(-1)[0]))
    if a.ndim >= 1 and a.shape[-1] == c and a.size == c and a.ndim <= len(x.shape) + 1:
        return a.reshape(c).copy()
    raise _unsupported(layer, f"a constant of shape {list(a.shape)} against a tensor of shape "
                              f"{list(x.shape)}: only scalars and one value per channel")


def _affine(b, layer, x, scale, shift):
    sc = b.new_const(f"{layer.name}/scale", scale)
    sh = b.new_const(f"{layer.name}/shift", shift)
    return b.emit(ir.AFFINE, layer, [x, sc, sh], x.shape)


def _binary(b, layer, kind, lhs, rhs):
    if _is_tensor(lhs) and _is_tensor(rhs):
        if kind in ("add", "mul") and lhs.shape == rhs.shape:
            return b.emit(ir.ADD if kind == "add" else ir.MULTIPLY, layer, [lhs, rhs],
                          lhs.shape)
        big, small = (lhs, rhs) if lhs.size >= rhs.size else (rhs, lhs)
        if (kind == "mul" and len(big.shape) == 3 and small.size == big.shape[-1]
                and small.shape[-1] == big.shape[-1] and len(small.shape) in (1, 3)):
            # A per-channel gate (squeeze-and-excitation as `x * se`, tf_keras RegNetY): the
            # MULTIPLY op's [1, 1, C] broadcast; the product commutes exactly.
            return b.emit(ir.MULTIPLY, layer, [big, small], big.shape)
        raise _unsupported(layer, f"{kind} of two tensors of shapes {list(lhs.shape)} and "
                                  f"{list(rhs.shape)}")
    if not _is_tensor(lhs) and not _is_tensor(rhs):
        raise _unsupported(layer, "an op on constants only")
    x, k = (lhs, rhs) if _is_tensor(lhs) else (rhs, lhs)
    k = _per_channel(layer, _const(layer, k), x)
    one, zero = np.ones_like(k), np.zeros_like(k)
    if kind == "add":
        return _affine(b, layer, x, one, k)
    if kind == "mul":
        return _affine(b, layer, x, k, zero)
    if kind == "sub":
        return _affine(b, layer, x, one, -k) if x is lhs else _affine(b, layer, x, -one, k)
    if kind == "div":
        if x is not lhs:
            raise _unsupported(layer, "a constant divided by a tensor is not affine")
        if np.any(k == 0):
            raise _unsupported(layer, "division by zero")
        # Keras divides in float32; x * (1/k) differs from x / k by at most one rounding.
        return _affine(b, layer, x, 1.0 / k, zero)
    raise AssertionError(kind)


def _channel_matrix(b, layer, x, picks):
    """y[..., j] = x[..., picks[j]] as a DENSE with a 0/1 kernel and no bias: every output is
    one product by 1 plus products by 0, which float arithmetic computes exactly."""
    c = x.shape[-1]
    w = np.zeros((c, len(picks)))
    for j, p in enumerate(picks):
        w[p, j] = 1.0
    wt = b.new_const(f"{layer.name}/select", w)
    return b.emit(ir.DENSE, layer, [x, wt], x.shape[:-1] + (len(picks),))


# -- indexing --

def _key_items(layer, key):
    """Normalises a slice key (Keras 2 slice_spec or Keras 3 GetItem key) to a list of
    'ellipsis' / int / (start, stop, step)."""
    if not isinstance(key, (list, tuple)):
        key = [key]
    out = []
    for k in key:
        if isinstance(k, dict) and k.get("class_name") == "__ellipsis__":
            out.append("ellipsis")
        elif isinstance(k, dict) and k.get("class_name") == "__slice__":
            c = k.get("config") or {}
            out.append((c.get("start"), c.get("stop"), c.get("step")))
        elif isinstance(k, dict) and set(k) <= {"start", "stop", "step"}:
            out.append((k.get("start"), k.get("stop"), k.get("step")))
        elif isinstance(k, int) and not isinstance(k, bool):
            out.append(k)
        elif k is None:
            raise _unsupported(layer, "indexing with None (a new axis)")
        else:
            raise _unsupported(layer, f"index {k!r}")
    return out


def _getitem(b, layer, x, key):
    """x[key] for x [H, W, C] (the batch axis is the first of the key)."""
    items = _key_items(layer, key)
    rank = len(x.shape) + 1
    if items.count("ellipsis") > 1:
        raise _unsupported(layer, "more than one Ellipsis")
    if "ellipsis" in items:
        i = items.index("ellipsis")
        fill = rank - (len(items) - 1)
        items = items[:i] + [(None, None, None)] * fill + items[i + 1:]
    items += [(None, None, None)] * (rank - len(items))
    if len(items) != rank:
        raise _unsupported(layer, f"{len(items)} indices for a tensor of rank {rank}")
    if items[0] != (None, None, None):
        raise _unsupported(layer, "indexing the batch axis")
    if len(x.shape) != 3:
        raise _unsupported(layer, f"indexing a tensor of shape {list(x.shape)}")
    # Spatial axes: plain slices only -> CROP.
    box = []
    for ax in (1, 2):
        it = items[ax]
        n = x.shape[ax - 1]
        if not isinstance(it, tuple) or it[2] not in (None, 1):
            raise _unsupported(layer, f"index {it!r} on a spatial axis (only a[b:c] slices)")
        start, stop, _ = slice(it[0], it[1]).indices(n)
        if stop <= start:
            raise _unsupported(layer, "an empty slice")
        box.append((start, stop - start))
    y = crop(b, layer, x, box[0][0], box[1][0], box[0][1], box[1][1],
             out_name=f"{layer.name}/crop")
    # Channel axis.
    c = x.shape[2]
    it = items[3]
    if isinstance(it, int):
        ch = it + c if it < 0 else it
        if not 0 <= ch < c:
            raise _unsupported(layer, f"channel index {it} out of range for {c} channels")
        sel = _channel_matrix(b, layer, y, [ch])
        return b.emit(ir.RESHAPE, layer, [sel], y.shape[:2])  # the channel axis is dropped
    picks = list(range(c))[slice(*it)]
    if not picks:
        raise _unsupported(layer, "an empty channel slice")
    if picks == list(range(c)):
        return y
    return _channel_matrix(b, layer, y, picks)


def _stack(b, layer, xs, axis):
    """keras.ops.stack(xs, axis=-1) of [H, W] maps -> [H, W, n] (CONCAT of [H, W, 1])."""
    if not xs or not all(_is_tensor(t) for t in xs):
        raise _unsupported(layer, "stack of non-tensors")
    shape = xs[0].shape
    if any(t.shape != shape for t in xs) or len(shape) != 2 or axis not in (-1, 3):
        raise _unsupported(layer, f"stack on axis {axis} of shapes "
                                  f"{[list(t.shape) for t in xs]} (only the channel axis of "
                                  "[H, W] maps)")
    cols = []
    for t in xs:
        p = t.producer
        if p is not None and p.type == ir.RESHAPE and p.inputs[0].shape == shape + (1,):
            cols.append(p.inputs[0])  # undo the channel drop of a GetItem
        else:
            cols.append(b.emit(ir.RESHAPE, layer, [t], shape + (1,),
                               out_name=f"{layer.name}/col"))
    if len(cols) == 1:
        return cols[0]
    if len(cols) > 8:
        raise _unsupported(layer, f"stack of {len(cols)} tensors (at most 8)")
    return b.emit(ir.CONCAT, layer, cols, shape + (len(cols),), iattr=[2])


def _resize_op(b, layer, x, size, method, antialias=False, crop=False, pad=False):
    if isinstance(method, dict):
        method = (method.get("config") or {}).get("value", method)
    method = str(method or "bilinear").lower().replace("resizemethod.", "")
    if method not in RESIZE_METHODS:
        raise _unsupported(layer, f"resize method '{method}' (bilinear and nearest are "
                                  "supported)")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise _unsupported(layer, f"resize to size {size!r}")
    if antialias:
        raise _unsupported(layer, "antialias=True")
    if crop or pad:
        shim = KLayer({"class_name": "Resizing", "name": layer.name,
                       "config": {"height": h, "width": w, "interpolation": method,
                                  "crop_to_aspect_ratio": crop, "pad_to_aspect_ratio": pad,
                                  "fill_value": layer.cfg.get("fill_value", 0.0)}}, None)
        return t_resizing(b, shim, x)[0]
    return resize(b, layer, x, h, w, RESIZE_METHODS[method])


def translate(b, layer, inputs, node):
    kind = _kind(layer)
    if kind is None:
        raise _unsupported(layer, check(layer))
    if node is None:
        raise _unsupported(layer, "a raw op outside a functional graph")
    args, kwargs = call_arguments(node, inputs)
    k2 = layer.class_name in TF_OP_CLASSES
    if k2:
        first = args[0]
        if kind in ("add", "sub", "mul", "div"):
            rhs = kwargs.get("y")
            if "x" in kwargs and rhs is None:
                first, rhs = kwargs["x"], first
            return [_binary(b, layer, kind, first, rhs)]
        if kind == "scalar_mul":
            return [_binary(b, layer, "mul", kwargs.get("x"), first)]
        if kind == "bias_add":
            fmt = kwargs.get("data_format")
            if fmt not in (None, "NHWC", "N...C"):
                raise _unsupported(layer, f"bias_add data_format {fmt}")
            return [_binary(b, layer, "add", first, kwargs.get("bias"))]
        x = first
        if not _is_tensor(x):
            raise _unsupported(layer, "the op's first argument is not a tensor")
        if kind == "neg":
            return [_affine(b, layer, x, -np.ones(x.shape[-1]), np.zeros(x.shape[-1]))]
        if kind in ("cast", "identity"):
            dt = str(kwargs.get("dtype", "float32"))
            if kind == "cast" and "float32" not in dt:
                raise _unsupported(layer, f"cast to {dt} (only float32 is exact)")
            return [x]
        if kind == "resize":
            if kwargs.get("preserve_aspect_ratio"):
                raise _unsupported(layer, "preserve_aspect_ratio=True")
            return [_resize_op(b, layer, x, kwargs.get("size"), kwargs.get("method", "bilinear"),
                               kwargs.get("antialias", False))]
        if kind == "getitem":
            return [_getitem(b, layer, x, kwargs.get("slice_spec"))]
        raise AssertionError(kind)
    # Keras 3
    if kwargs:
        raise _unsupported(layer, f"keyword arguments {sorted(kwargs)}")
    if kind in ("add", "sub", "mul", "div"):
        if len(args) != 2:
            raise _unsupported(layer, f"{len(args)} arguments")
        return [_binary(b, layer, kind, args[0], args[1])]
    if kind == "stack":
        return [_stack(b, layer, args[0] if args else [], int(layer.cfg.get("axis", 0)))]
    x = args[0] if args else None
    if not _is_tensor(x):
        raise _unsupported(layer, "the op's first argument is not a tensor")
    if kind == "neg":
        return [_affine(b, layer, x, -np.ones(x.shape[-1]), np.zeros(x.shape[-1]))]
    if kind == "cast":
        dt = layer.cfg.get("dtype")
        dt = (dt.get("config") or {}).get("name", dt) if isinstance(dt, dict) else dt
        if "float32" not in str(dt):
            raise _unsupported(layer, f"cast to {dt} (only float32 is exact)")
        return [x]
    if kind == "getitem":
        return [_getitem(b, layer, x, args[1] if len(args) > 1 else None)]
    if kind == "resize":
        cfg = layer.cfg
        if cfg.get("data_format") not in (None, "channels_last"):
            raise _unsupported(layer, f"data_format {cfg.get('data_format')}")
        return [_resize_op(b, layer, x, cfg.get("size"), cfg.get("interpolation", "bilinear"),
                           cfg.get("antialias", False), bool(cfg.get("crop_to_aspect_ratio")),
                           bool(cfg.get("pad_to_aspect_ratio")))]
    raise AssertionError(kind)
