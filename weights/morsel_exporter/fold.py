"""Graph rewrites after translation: BatchNormalization folding, activation fusion, dead-op
removal, and the logits/output-kind decision. All arithmetic in float64."""

import numpy as np

from . import ir

FOLD_INTO = (ir.CONV2D, ir.DEPTHWISE_CONV2D, ir.DENSE, ir.GROUPED_CONV2D, ir.CONV2D_TRANSPOSE)
# AFFINE ops that are a per-channel scale and shift of their input and nothing else: a
# BatchNormalization, ConvNeXt's LayerScale (x * gamma), InceptionResNetV2's CustomScaleLayer
# residual scale (r * scale).
FOLDABLE_AFFINE = ("BatchNormalization", "LayerScale", "CustomScaleLayer",
                   "Custom>CustomScaleLayer")
# Ops whose kernels apply a fused activation (kernels/kernels.h takes an mk_activation).
FUSABLE = (ir.CONV2D, ir.DEPTHWISE_CONV2D, ir.DENSE, ir.AFFINE, ir.ADD, ir.MULTIPLY,
           ir.GROUPED_CONV2D, ir.CONV2D_TRANSPOSE, ir.LAYER_NORM)
# Layers whose only job is an activation; their ACTIVATION op may be fused into its producer.
ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "ELU")


def _protected(g):
    return {id(g.output), id(g.input)} | ({id(g.logits)} if g.logits is not None else set())


def fold_batchnorm(g):
    """AFFINE ops from BatchNormalization (or a LayerScale / CustomScaleLayer scale) right after
    a conv/depthwise/dense whose output feeds only that op and has a linear activation:
    W' = W * s per output channel, b' = b * s + shift (= (b - mean) * s + beta). Depthwise
    output channel c*M + m; a transposed conv's kernel is [KH, KW, Cout, Cin]."""
    n = 0
    while True:
        cons = g.consumers()
        prot = _protected(g)
        for bn in g.ops:
            if bn.type != ir.AFFINE or bn.class_name not in FOLDABLE_AFFINE:
                continue
            x = bn.inputs[0]
            p = x.producer
            if (p is None or p.type not in FOLD_INTO or not p.act.is_linear()
                    or len(cons.get(id(x), [])) != 1 or id(x) in prot):
                continue
            s, t = bn.inputs[1].data, bn.inputs[2].data
            w = p.inputs[1].data
            if p.type == ir.DEPTHWISE_CONV2D:
                kh, kw, cin, m = w.shape
                w2 = w * s.reshape(1, 1, cin, m)
            elif p.type == ir.CONV2D_TRANSPOSE:
                w2 = w * s.reshape(1, 1, -1, 1)
            else:
                w2 = w * s  # last axis = output channels (HWIO / [Cin, Cout])
            b = p.inputs[2].data if len(p.inputs) > 2 else np.zeros_like(s)
            b2 = b * s + t
            p.inputs[1] = ir.Tensor(f"{p.inputs[1].name}*{bn.name}", w2.shape, w2)
            bias = ir.Tensor(f"{p.name}/bias+{bn.name}", b2.shape, b2)
            if len(p.inputs) > 2:
                p.inputs[2] = bias
            else:
                p.inputs.append(bias)
            p.output = bn.output
            bn.output.producer = p
            g.ops.remove(bn)
            n += 1
            break
        else:
            return n


def fuse_activations(g):
    """An ACTIVATION op from an activation layer, reading the output of an op with a linear
    activation that nothing else reads, becomes that op's fused activation. Softmax is never
    fused (it stays the final op so the pre-softmax tensor remains the logits)."""
    n = 0
    while True:
        cons = g.consumers()
        prot = _protected(g)
        for a in g.ops:
            if (a.type != ir.ACTIVATION or a.class_name not in ACTIVATION_LAYERS
                    or a.act.code == ir.SOFTMAX):
                continue
            x = a.inputs[0]
            p = x.producer
            if (p is None or p.type not in FUSABLE or not p.act.is_linear()
                    or len(cons.get(id(x), [])) != 1 or id(x) in prot):
                continue
            p.act = a.act
            p.output = a.output
            a.output.producer = p
            g.ops.remove(a)
            n += 1
            break
        else:
            return n


def remove_dead(g):
    live = {id(g.output)}
    keep = []
    for op in reversed(g.ops):
        if id(op.output) in live:
            keep.append(op)
            for t in op.inputs:
                live.add(id(t))
    dropped = len(g.ops) - len(keep)
    g.ops = list(reversed(keep))
    return dropped


def sink_softmax(g):
    """softmax -> Reshape at the end (e.g. Keras MobileNet v1: act_softmax then reshape_2)
    becomes Reshape -> softmax when the reshape keeps the last axis: softmax over the last
    axis commutes with it, and the pre-softmax tensor then has the output's shape."""
    last = g.output.producer
    if last is None or last.type != ir.RESHAPE:
        return False
    x = last.inputs[0]
    sm = x.producer
    cons = g.consumers()
    if (sm is None or sm.type != ir.ACTIVATION or sm.act.code != ir.SOFTMAX
            or len(cons.get(id(x), [])) != 1 or x.shape[-1] != last.output.shape[-1]
            or sm.inputs[0] is g.input):
        return False
    pre = sm.inputs[0]
    mid = ir.Tensor(f"{last.name}/logits", last.output.shape)
    out = last.output
    last.inputs = [pre]
    last.output = mid
    mid.producer = last
    sm.inputs = [mid]
    sm.output = out
    out.producer = sm
    i, j = g.ops.index(sm), g.ops.index(last)
    g.ops[i], g.ops[j] = last, sm
    return True


def _split_final_activation(g, last):
    """op(act=sigmoid) -> op(linear) then ACTIVATION(sigmoid), so that the pre-sigmoid values
    (the logits of a multi-label head) stay addressable. Same arithmetic, one more pass over
    the (small) output."""
    pre = ir.Tensor(f"{last.name}/logits", last.output.shape)
    out = last.output
    act = last.act
    last.act = ir.Act()
    last.output = pre
    pre.producer = last
    op = ir.Op(ir.ACTIVATION, last.name, last.class_name, [pre], out, act)
    g.ops.insert(g.ops.index(last) + 1, op)
    return op


def finish(g):
    """Sets logits / output kind: a final softmax ACTIVATION -> probabilities; a final sigmoid
    -> independent sigmoids (a sigmoid fused into the last conv/dense is split off first); in
    both cases the logits are the activation's input. Anything else -> raw scores."""
    last = g.output.producer
    g.logits = None
    if last is None:
        g.output_kind = 2
        return
    if last.type != ir.ACTIVATION and last.act.code == ir.SIGMOID:
        last = _split_final_activation(g, last)
    if last.type == ir.ACTIVATION and last.act.code in (ir.SOFTMAX, ir.SIGMOID):
        g.output_kind = 0 if last.act.code == ir.SOFTMAX else 1
        g.logits = last.inputs[0]
        if g.logits is g.input:
            g.logits = None
    elif last.act.code == ir.SOFTMAX:
        g.output_kind = 0
    else:
        g.output_kind = 2


def optimize(g):
    remove_dead(g)
    sink_softmax(g)
    finish(g)
    nb = fold_batchnorm(g)
    na = fuse_activations(g)
    remove_dead(g)
    finish(g)
    return nb, na
