"""Keras activations -> Morsel activation codes (FORMAT.md "Activation codes")."""

from . import ir
from .common import weight
from .errors import UnsupportedLayer


def _unsupported(layer, why):
    return UnsupportedLayer(layer.name, layer.class_name, why)  # layers.py adds the class list


def activation_spec(layer, spec, keras3):
    """Keras activation (string or serialized dict) -> Act, or "hard_silu".

    hard_sigmoid differs between the two Kerases: Keras 3 relu6(x + 3) / 6 (code 7), Keras 2 /
    tf_keras clip(0.2x + 0.5, 0, 1) (tf_keras backend.hard_sigmoid; code 9), so the Keras that
    wrote the file decides.
    """
    if isinstance(spec, dict):
        c = spec.get("config")
        spec = c if isinstance(c, str) else (c or {}).get("name", spec.get("class_name"))
    name = (spec or "linear")
    if not isinstance(name, str):
        raise _unsupported(layer, f"activation {spec!r}")
    name = name.lower()
    if name in ("linear", "none"):
        return ir.Act()
    if name == "relu":
        return ir.Act(ir.RELU)
    if name == "relu6":
        return ir.Act(ir.RELU, 0.0, 6.0)
    if name == "leaky_relu" and keras3:
        return ir.Act(ir.RELU, 0.2)  # keras.activations.leaky_relu default slope
    if name == "sigmoid":
        return ir.Act(ir.SIGMOID)
    if name == "tanh":
        return ir.Act(ir.TANH)
    if name in ("swish", "silu"):
        return ir.Act(ir.SWISH)
    if name == "softmax":
        return ir.Act(ir.SOFTMAX)
    if name == "elu":
        return ir.Act(ir.ELU, 1.0)
    if name == "gelu":
        return ir.Act(ir.GELU)  # default approximate=False: the erf form
    if name == "hard_sigmoid":
        return ir.Act(ir.HARD_SIGMOID if keras3 else ir.HARD_SIGMOID_K2)
    if name in ("hard_silu", "hard_swish") and keras3:
        return "hard_silu"
    raise _unsupported(layer, f"activation '{name}' (supported: linear, relu, relu6, sigmoid, "
                              "tanh, swish/silu, softmax, elu, hard_sigmoid, gelu)")


def emit_with_activation(b, type_, layer, inputs, out_shape, act, iattr=None, fattr=None):
    """Emit an op followed by its activation. Softmax always becomes its own ACTIVATION op so
    the pre-softmax tensor stays addressable (MODEL record `logits`)."""
    if act == "hard_silu":
        y = b.emit(type_, layer, inputs, out_shape, None, iattr, fattr,
                   out_name=f"{layer.name}/pre_act")
        return hard_silu(b, layer, y)
    if act.code == ir.SOFTMAX:
        y = b.emit(type_, layer, inputs, out_shape, None, iattr, fattr,
                   out_name=f"{layer.name}/logits")
        return b.emit(ir.ACTIVATION, layer, [y], out_shape, ir.Act(ir.SOFTMAX))
    return b.emit(type_, layer, inputs, out_shape, act, iattr, fattr)


def emit_biased(b, type_, layer, ins, out_shape, iattr=None):
    """A conv / dense style op: its inputs plus the layer's bias [Cout] when use_bias, with the
    layer's activation."""
    cfg = layer.cfg
    if cfg.get("use_bias", True):
        ins = ins + [b.const(layer, "bias", weight(layer, "bias", (out_shape[-1],)))]
    act = activation_spec(layer, cfg.get("activation"), b.keras3)
    return emit_with_activation(b, type_, layer, ins, out_shape, act, iattr)


def hard_silu(b, layer, x):
    """Keras 3 hard_silu(x) = x * hard_sigmoid(x)."""
    hs = b.emit(ir.ACTIVATION, layer, [x], x.shape, ir.Act(ir.HARD_SIGMOID),
                out_name=f"{layer.name}/hard_sigmoid")
    return b.emit(ir.MULTIPLY, layer, [x, hs], x.shape)
