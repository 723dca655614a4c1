"""The exporter's in-memory graph: tensors and ops mirroring the .morsel records (FORMAT.md).

Constants are kept as float64 numpy arrays until the writer casts them to float32, so that
folding (fold.py) is computed in float64 from the file's float32 values."""

import math

import numpy as np

# Op types (FORMAT.md, "Op types").
CONV2D = 1
DEPTHWISE_CONV2D = 2
DENSE = 3
AFFINE = 4
ADD = 5
MULTIPLY = 6
GLOBAL_AVG_POOL = 7
AVG_POOL = 8
MAX_POOL = 9
PAD = 10
RESHAPE = 11
ACTIVATION = 12
CONCAT = 13
GLOBAL_MAX_POOL = 14
RESIZE = 15  # format 1.1
CROP = 16    # format 1.1
GROUPED_CONV2D = 17    # format 1.2
LAYER_NORM = 18        # format 1.2
CONV2D_TRANSPOSE = 19  # format 1.2

OP_NAMES = {
    CONV2D: "conv2d", DEPTHWISE_CONV2D: "depthwise_conv2d", DENSE: "dense", AFFINE: "affine",
    ADD: "add", MULTIPLY: "multiply", GLOBAL_AVG_POOL: "global_avg_pool", AVG_POOL: "avg_pool",
    MAX_POOL: "max_pool", PAD: "pad", RESHAPE: "reshape", ACTIVATION: "activation",
    CONCAT: "concat", GLOBAL_MAX_POOL: "global_max_pool", RESIZE: "resize", CROP: "crop",
    GROUPED_CONV2D: "grouped_conv2d", LAYER_NORM: "layer_norm",
    CONV2D_TRANSPOSE: "conv2d_transpose",
}

# RESIZE methods (iattr 0).
RESIZE_NEAREST = 0
RESIZE_BILINEAR = 1

# Activation codes (FORMAT.md, "Activation codes").
LINEAR = 0
RELU = 1
SIGMOID = 2
TANH = 3
SWISH = 4
SOFTMAX = 5
ELU = 6
HARD_SIGMOID = 7
GELU = 8
HARD_SIGMOID_K2 = 9  # Keras 2 / tf_keras: clip(0.2x + 0.5, 0, 1)

ACT_NAMES = {LINEAR: "linear", RELU: "relu", SIGMOID: "sigmoid", TANH: "tanh", SWISH: "swish",
             SOFTMAX: "softmax", ELU: "elu", HARD_SIGMOID: "hard_sigmoid", GELU: "gelu",
             HARD_SIGMOID_K2: "hard_sigmoid_k2"}


class Act:
    """A fused activation: code, alpha (RELU negative slope / ELU alpha), max (RELU clip)."""

    __slots__ = ("code", "alpha", "max")

    def __init__(self, code=LINEAR, alpha=0.0, max=math.inf):
        self.code = code
        self.alpha = float(alpha)
        self.max = float(max)

    def is_linear(self):
        return self.code == LINEAR

    def __repr__(self):
        s = ACT_NAMES[self.code]
        if self.code == RELU:
            s += f"(alpha={self.alpha:g}, max={self.max:g})"
        elif self.code == ELU:
            s += f"(alpha={self.alpha:g})"
        return s


class Tensor:
    __slots__ = ("name", "shape", "data", "producer")

    def __init__(self, name, shape, data=None):
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.data = None if data is None else np.asarray(data, dtype=np.float64)
        if self.data is not None and self.data.shape != self.shape:
            raise ValueError(f"constant {name}: data shape {self.data.shape} != {self.shape}")
        self.producer = None

    @property
    def is_const(self):
        return self.data is not None

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self):
        return f"Tensor({self.name}, {list(self.shape)}{', const' if self.is_const else ''})"


class Op:
    __slots__ = ("type", "name", "class_name", "act", "inputs", "output", "iattr", "fattr")

    def __init__(self, type_, name, class_name, inputs, output, act=None, iattr=None,
                 fattr=None):
        self.type = type_
        self.name = name
        self.class_name = class_name
        self.act = act or Act()
        self.inputs = list(inputs)
        self.output = output
        self.iattr = list(iattr or [])
        self.fattr = list(fattr or [])
        output.producer = self

    def __repr__(self):
        return (f"Op({OP_NAMES[self.type]} {self.name} [{self.class_name}] act={self.act} "
                f"in={[t.name for t in self.inputs]} out={self.output.shape})")


class Graph:
    """Ops in topological order; `input` is the model input activation, `output` its output."""

    def __init__(self):
        self.ops = []
        self.input = None
        self.output = None
        self.logits = None
        self.notes = []  # facts the command prints (e.g. "the model rescales its own input")

    def add(self, op):
        self.ops.append(op)
        return op.output

    def consumers(self):
        """tensor id -> list of ops reading it."""
        cons = {}
        for op in self.ops:
            for t in op.inputs:
                cons.setdefault(id(t), []).append(op)
        return cons

    def tensors(self):
        """Every tensor the ops use, input first, in first-use order (no duplicates)."""
        seen, out = set(), []

        def visit(t):
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)

        visit(self.input)
        for op in self.ops:
            for t in op.inputs:
                visit(t)
            visit(op.output)
        return out
