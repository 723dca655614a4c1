"""From a Keras model config to one flat Morsel graph.

Two steps:
  parse_tree()  the config as a tree of KLayer: models (Sequential / Functional / old `Model`,
                nested to any depth) hold their layers; every other layer is a leaf.
  Builder       "calls" the top model on the input tensor the way Keras would, descending
                into nested models, so a nested model (a base model used as a layer, Sequential
                in Sequential, a shared model called several times) simply becomes more ops.
                Leaves are translated by layers.py; shapes are inferred as ops are emitted.

Config dialects handled (Keras 2 and Keras 3 serialisations differ):
  - Sequential config as a dict with `layers`, or the pre-2.2.3 bare list of layers (no
    InputLayer: the input shape is the first layer's `batch_input_shape`);
  - Functional `inbound_nodes` as Keras 2 lists [[name, node, tensor, kwargs], ...] or Keras 3
    dicts {"args": [...keras tensors...], "kwargs": {...}};
  - `batch_input_shape` (Keras 2) / `batch_shape` (Keras 3) on InputLayer;
  - node indices: in a Keras 2 config a nested model's first node (the one linking its own
    Input to its outputs) is not saved, so references to the model's calls start at 1
    (tf.keras functional.py, `_should_skip_first_node`); Keras 3 configs start at 0.
"""

import numpy as np

from . import ir
from .errors import ExportError, UnsupportedLayer

MODEL_CLASSES = ("Sequential", "Functional", "Model")


class KLayer:
    """One layer of the config tree."""

    def __init__(self, entry, parent):
        self.entry = entry
        self.class_name = entry.get("class_name", "?")
        cfg = entry.get("config", {})
        self.cfg = cfg if isinstance(cfg, dict) else {"layers": cfg}
        self.name = entry.get("name") or self.cfg.get("name") or self.class_name.lower()
        self.module = entry.get("module") or ""  # Keras 3: "keras.src.ops.numpy" for raw ops
        self.parent = parent
        self.children = None        # list of KLayer for models
        self.inbound = entry.get("inbound_nodes", [])
        self.weights = {}           # role -> ndarray (leaves; filled by weights.py)
        self.k3path = None          # saving path in a Keras 3 .keras zip (weights.py)
        self.node_offset = 0        # how this layer's calls are numbered in the parent config
        if self.is_model:
            self.children = [KLayer(e, self) for e in self.layer_entries()]

    @property
    def is_model(self):
        return self.class_name in MODEL_CLASSES or (
            isinstance(self.cfg.get("layers"), list) and "input_layers" in self.cfg)

    @property
    def is_sequential(self):
        return self.class_name == "Sequential"

    def layer_entries(self):
        layers = self.cfg.get("layers", [])
        if not isinstance(layers, list):
            raise ExportError(f"model '{self.name}': config has no layer list")
        return layers

    def walk(self):
        yield self
        for c in self.children or []:
            yield from c.walk()

    def leaves(self):
        return [l for l in self.walk() if not l.is_model]

    def path(self):
        p, n = [], self
        while n is not None:
            p.append(n.name)
            n = n.parent
        return "/".join(reversed(p))


def parse_tree(model_config):
    if not isinstance(model_config, dict) or "class_name" not in model_config:
        raise ExportError("the file's model config is not a Keras model config")
    top = KLayer(model_config, None)
    if not top.is_model:
        raise ExportError(f"the top-level object is a {top.class_name}, not a Keras model")
    for m in top.walk():
        if m.is_model and not m.is_sequential:
            _set_node_offsets(m)
    return top


def _batch_shape(cfg):
    for k in ("batch_shape", "batch_input_shape"):
        if cfg.get(k) is not None:
            return list(cfg[k])
    if cfg.get("input_shape") is not None:
        return [None] + list(cfg["input_shape"])
    return None


def sequential_input_shape(model):
    """Per-sample input shape of a Sequential from its InputLayer, first layer or build config."""
    if model.children:
        first = model.children[0]
        s = _batch_shape(first.cfg)
        if s is not None:
            return s[1:]
    for src in (model.cfg.get("build_input_shape"),
                (model.entry.get("build_config") or {}).get("input_shape")):
        if src is not None:
            return list(src)[1:]
    return None


# ---- inbound node parsing --------------------------------------------------------------------

def _is_keras3_node(node):
    return isinstance(node, dict)


# Keras 2 (tf_keras) records raw TensorFlow calls (`x / 127.5`, `tf.nn.bias_add`, ...) as
# TFOpLambda / SlicingOpLambda layers whose node holds one positional argument (a tensor
# reference, or ["_CONSTANT_VALUE", -1, value] when it is a constant) and the others as keyword
# arguments, where tensors appear as [layer name, node index, tensor index] lists.
TF_OP_CLASSES = ("TFOpLambda", "SlicingOpLambda")
K2_CONSTANT = "_CONSTANT_VALUE"


def _k2_ref(v):
    return (isinstance(v, (list, tuple)) and len(v) == 3 and isinstance(v[0], str)
            and v[0] != K2_CONSTANT and isinstance(v[1], int) and isinstance(v[2], int))


def _k2_entries(node):
    """A Keras 2 node is a list of [name, node, tensor, kwargs] entries; tf_keras writes a
    TFOpLambda call's single entry unwrapped."""
    if isinstance(node, (list, tuple)) and node and isinstance(node[0], str):
        return [node]
    return node


def node_refs(node, deep=False):
    """[(layer name, node index, tensor index)] a call reads, in argument order. deep: also
    the tensors a Keras 2 TFOpLambda call passes as keyword arguments."""
    refs = []
    if _is_keras3_node(node):
        def walk(v):
            if isinstance(v, dict):
                if v.get("class_name") == "__keras_tensor__":
                    h = v["config"]["keras_history"]
                    refs.append(_tensor_ref(h))
                else:
                    for x in v.values():
                        walk(x)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    walk(x)
        walk(node.get("args", []))
        # Tensors passed as keyword arguments would be dropped by reading only args: refuse.
        before = len(refs)
        walk(node.get("kwargs", {}) or {})
        if len(refs) != before:
            raise ExportError(f"a layer call passes tensors as keyword arguments "
                              f"({refs[before:]}); not supported")
        return refs
    for r in _k2_entries(node):
        if isinstance(r, (list, tuple)) and len(r) >= 3 and r[0] == K2_CONSTANT and deep:
            pass  # a constant first argument of a TFOpLambda call
        elif isinstance(r, (list, tuple)) and len(r) >= 3 and isinstance(r[0], str):
            refs.append(_tensor_ref(r))
        else:
            raise ExportError(f"unrecognised inbound node entry {r!r}")
        if deep and len(r) > 3 and isinstance(r[3], dict):
            for v in r[3].values():
                if _k2_ref(v):
                    refs.append(_tensor_ref(v))
    return refs


def _tensor_ref(r):
    """(layer name, node index, tensor index) of a reference Keras wrote as a list; anything
    else (a hostile or corrupt file: a dict where an index belongs) is an ExportError."""
    if not (isinstance(r, (list, tuple)) and len(r) >= 3 and isinstance(r[0], str)
            and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1 << 31
                    for i in r[1:3])):
        raise ExportError(f"malformed tensor reference {r!r:.200} in an inbound node")
    return (r[0], r[1], r[2])


def layer_node_refs(layer, node):
    return node_refs(node, deep=layer.class_name in TF_OP_CLASSES)


def call_arguments(node, tensors):
    """The call's arguments with tensor references replaced by `tensors` (in node_refs order):
    (args list, kwargs dict). Keras 3: the recorded args/kwargs; Keras 2 TFOpLambda: the first
    entry is the first positional argument, its dict the keyword arguments."""
    it = iter(tensors)
    if _is_keras3_node(node):
        def sub(v):
            if isinstance(v, dict):
                if v.get("class_name") == "__keras_tensor__":
                    return next(it)
                return {k: sub(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [sub(x) for x in v]
            return v
        return sub(node.get("args", [])), sub(node.get("kwargs", {}) or {})
    node = _k2_entries(node)
    if len(node) != 1:
        raise ExportError(f"a TensorFlow op call with {len(node)} inbound entries")
    r = node[0]
    first = r[2] if r[0] == K2_CONSTANT else next(it)
    kwargs = {}
    for k, v in (r[3] if len(r) > 3 and isinstance(r[3], dict) else {}).items():
        kwargs[k] = next(it) if _k2_ref(v) else v
    return [first], kwargs


def _io_refs(spec):
    """input_layers / output_layers: [[name, node, tensor], ...] or one [name, node, tensor]."""
    if spec and isinstance(spec[0], str):
        spec = [spec]
    return [(s[0], int(s[1]), int(s[2])) for s in spec]


def _set_node_offsets(model):
    """How a nested model's calls are numbered in `model`'s config (see module docstring)."""
    used = {}
    for c in model.children:
        for node in c.inbound:
            for (n, k, _) in layer_node_refs(c, node):
                used.setdefault(n, set()).add(k)
    for (n, k, _) in _io_refs(model.cfg.get("output_layers", [])):
        used.setdefault(n, set()).add(k)
    for c in model.children:
        if not c.is_model or not c.inbound:
            continue
        keras3 = _is_keras3_node(c.inbound[0])
        ks = used.get(c.name, set())
        if keras3:
            c.node_offset = 0
        elif 0 in ks:
            c.node_offset = 0
        elif ks and max(ks) >= len(c.inbound):
            c.node_offset = 1
        else:
            has_input = (not c.is_sequential) or (
                bool(c.children) and _batch_shape(c.children[0].cfg) is not None)
            c.node_offset = 1 if has_input else 0


# ---- flattening ------------------------------------------------------------------------------

class Builder:
    """Emits ops into a Graph while walking the model. `translate(builder, layer, inputs, node)`
    (layers.translate) turns one layer into ops and calls back into the builder."""

    def __init__(self, keras3, translate):
        self.graph = ir.Graph()
        self.keras3 = keras3
        self.translate = translate
        self._names = {}
        self._consts = {}
        # Refusals found while translating (an option, a shape): collected so that one message
        # names every blocking layer. A refused layer passes its first input on as a stand-in;
        # what is computed from a stand-in is "tainted", and a layer refusing tainted inputs is
        # not reported (its inputs are not what Keras computes) but counted as unchecked.
        self._refusals = []
        self._tainted = {}  # id(tensor) -> tensor
        self._unchecked = 0

    def unique(self, name):
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        return name if n == 0 else f"{name}#{n + 1}"

    def tensor(self, name, shape):
        return ir.Tensor(self.unique(name), shape)

    def const(self, layer, role, array, shape=None):
        """A constant from a layer's weights, shared between calls of the same layer."""
        key = (id(layer), role, shape)
        if key not in self._consts:
            a = np.asarray(array, dtype=np.float64)
            if shape is not None:
                a = a.reshape(shape)
            self._consts[key] = ir.Tensor(f"{layer.name}/{role}", a.shape, a)
        return self._consts[key]

    def new_const(self, name, array):
        a = np.asarray(array, dtype=np.float64)
        return ir.Tensor(name, a.shape, a)

    def emit(self, type_, layer, inputs, out_shape, act=None, iattr=None, fattr=None,
             out_name=None):
        out = self.tensor(out_name or layer.name, out_shape)
        for d in out.shape:
            if d < 1:
                raise ExportError(f"layer '{layer.name}' ({layer.class_name}) would produce "
                                  f"an empty tensor of shape {list(out_shape)}")
        op = ir.Op(type_, layer.name, layer.class_name, inputs, out, act, iattr, fattr)
        return self.graph.add(op)

    # -- models --

    def build(self, top, input_shape_override=None):
        if top.is_sequential:
            shape = sequential_input_shape(top)
            in_name = top.children[0].name if top.children and \
                top.children[0].class_name == "InputLayer" else "input"
            in_shapes, in_names = [shape], [in_name]
        else:
            refs = _io_refs(top.cfg.get("input_layers", []))
            if len(refs) != 1:
                raise ExportError(f"the model has {len(refs)} inputs; Morsel models take one "
                                  "image input")
            by_name = {c.name: c for c in top.children}
            il = by_name.get(refs[0][0])
            if il is None:
                raise ExportError(f"input layer '{refs[0][0]}' not found in the config")
            s = _batch_shape(il.cfg)
            in_shapes = [None if s is None else s[1:]]
            in_names = [il.name]
        shape = in_shapes[0]
        if input_shape_override is not None:
            if shape is None or len(shape) != 3:
                raise ExportError("--input-size needs an image model with an [H, W, C] input")
            shape = [input_shape_override[0], input_shape_override[1], shape[2]]
        if shape is None:
            raise ExportError("the model's input shape is not recorded in the file")
        if len(shape) != 3 or any(d is None for d in shape):
            raise ExportError(
                f"the model input has shape {['?' if d is None else d for d in shape]}; Morsel "
                "needs a fixed [height, width, channels] image input (pass --input-size HxW, "
                "or re-save the model with a fixed input_shape)")
        x = self.tensor(in_names[0], shape)
        self.graph.input = x
        outs = self.call_model(top, [x])
        if self._refusals:
            self._raise_refusals()
        if len(outs) != 1:
            raise ExportError(f"the model has {len(outs)} outputs; Morsel supports one")
        self.graph.output = outs[0]
        return self.graph

    def call(self, layer, inputs, node=None):
        if layer.is_model:
            return self.call_model(layer, inputs)
        tainted = any(id(t) in self._tainted for t in inputs)
        try:
            outs = self.translate(self, layer, inputs, node)
        except UnsupportedLayer as e:
            if tainted:
                self._unchecked += 1
            elif not any(r.blockers == e.blockers for r in self._refusals):  # shared layers
                self._refusals.append(e)
            outs = inputs[:1]
            tainted = True
        except ExportError:
            if not tainted:
                raise
            self._unchecked += 1
            outs = inputs[:1]
        if tainted:
            self._tainted.update((id(t), t) for t in outs)
        return outs

    def _raise_refusals(self):
        first = self._refusals[0]
        for e in self._refusals[1:]:
            for b in e.blockers:
                first.also(*b)
            for n in e.notes:
                if n not in first.notes:
                    first.note(n)
        if self._unchecked:
            first.note(f"({self._unchecked} more layer(s) downstream of a refused one stopped "
                       "too; not named, as their inputs are not what Keras computes)")
        raise first

    def call_model(self, model, inputs):
        if model.is_sequential:
            if len(inputs) != 1:
                raise ExportError(f"Sequential '{model.name}' called with {len(inputs)} inputs")
            x = inputs
            for c in model.children:
                if c.class_name == "InputLayer":
                    continue
                x = self.call(c, x)
                if len(x) != 1:
                    raise ExportError(f"layer '{c.name}' in Sequential '{model.name}' gives "
                                      f"{len(x)} outputs")
            return x
        return self._call_functional(model, inputs)

    def _call_functional(self, model, inputs):
        cfg = model.cfg
        in_refs = _io_refs(cfg.get("input_layers", []))
        out_refs = _io_refs(cfg.get("output_layers", []))
        if len(in_refs) != len(inputs):
            raise ExportError(f"model '{model.name}' takes {len(in_refs)} inputs, called with "
                              f"{len(inputs)}")
        by_name = {c.name: c for c in model.children}
        avail = {}
        for (n, k, t), x in zip(in_refs, inputs):
            if n not in by_name:
                raise ExportError(f"model '{model.name}': input layer '{n}' not in its config")
            avail[(n, 0, t)] = x
        # Pending calls: (layer, config node position, refs). Processed in config order,
        # deferring calls whose inputs are not yet available (as Keras's from_config does).
        pending = []
        for c in model.children:
            if c.class_name == "InputLayer":
                continue
            for i, node in enumerate(c.inbound):
                pending.append((c, i + c.node_offset, layer_node_refs(c, node), node))
        def norm(ref):
            n, k, t = ref
            layer = by_name.get(n)
            if layer is not None and layer.class_name == "InputLayer":
                k = 0  # an InputLayer has only its own node
            return (n, k, t)

        while pending:
            progress = False
            rest = []
            for (layer, k, refs, node) in pending:
                rr = [norm(r) for r in refs]
                if all(r in avail for r in rr):
                    outs = self.call(layer, [avail[r] for r in rr], node)
                    for j, o in enumerate(outs):
                        avail[(layer.name, k, j)] = o
                    progress = True
                else:
                    rest.append((layer, k, refs, node))
            pending = rest
            if not progress:
                missing = sorted({str(r) for (_, _, refs, _) in pending for r in map(norm, refs)
                                  if r not in avail})
                raise ExportError(f"model '{model.name}': cannot resolve layer inputs "
                                  f"{missing[:5]} (unsupported graph wiring)")
        outs = []
        for r in out_refs:
            r = norm(r)
            if r not in avail:
                raise ExportError(f"model '{model.name}': output {r} is never computed")
            outs.append(avail[r])
        return outs
