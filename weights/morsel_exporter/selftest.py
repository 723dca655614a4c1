"""The optional self-test vector: Keras itself runs the source model on one deterministic input
and its output is stored in the file (SELFTEST section) for `morsel verify`.

TensorFlow/Keras are imported here only, lazily: exporting never needs them."""

import json
import os
import re

import numpy as np

from .layers import ROLE_ALIASES

TOLERANCE = 1e-4
SEED = 20240611


class Unavailable(Exception):
    """Keras could not be imported or could not load this model."""


def selftest_input(shape, scale, offset, seed=SEED):
    """Uniform random values over what the preprocessing produces from pixels 0..255."""
    rng = np.random.default_rng(seed)
    c = shape[-1]
    lo = np.array([min(offset[i % 3], 255.0 * scale[i % 3] + offset[i % 3]) for i in range(c)])
    hi = np.array([max(offset[i % 3], 255.0 * scale[i % 3] + offset[i % 3]) for i in range(c)])
    u = rng.random(tuple(shape))
    return (lo + u * (hi - lo)).astype(np.float32)


def _quiet():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _import(name):
    _quiet()
    try:
        if name == "keras":
            import keras
            if not keras.__version__.startswith("3"):
                raise Unavailable(f"keras {keras.__version__} is not Keras 3")
            return keras
        import tf_keras
        return tf_keras
    except ImportError as e:
        raise Unavailable(f"{name} not importable ({e})")


# Layer classes keras.applications defines without exporting them; a legacy .h5 file names
# them and Keras cannot reload it without being told what they are (they are Keras's own code).
APP_LAYERS = {"LayerScale": "convnext", "CustomScaleLayer": "inception_resnet_v2"}


def app_custom_objects(name):
    """{class name: class} of APP_LAYERS for `name` ("keras" or "tf_keras") where present."""
    import importlib
    root = "keras.src.applications" if name == "keras" else "tf_keras.src.applications"
    out = {}
    for cls, module in APP_LAYERS.items():
        try:
            out[cls] = getattr(importlib.import_module(f"{root}.{module}"), cls)
        except (ImportError, AttributeError):
            pass
    return out


def _load_file(source):
    errors = []
    order = ["keras", "tf_keras"] if source.keras3 else ["tf_keras", "keras"]
    for name in order:
        try:
            k = _import(name)
            kwargs = {"compile": False, "custom_objects": app_custom_objects(name)}
            if name == "keras":
                kwargs["safe_mode"] = True
            m = k.models.load_model(source.path, **kwargs)
            return m, f"{name} {k.__version__}"
        except Unavailable as e:
            errors.append(str(e))
        except Exception as e:  # Keras raises many kinds; any means "cannot load"
            errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    raise Unavailable("; ".join(errors))


def _role_of(layer_cls, var_name):
    v = re.sub(r":\d+$", "", var_name).split("/")[-1]
    return ROLE_ALIASES.get((layer_cls, v), v)


def _set_tree_weights(kmodel, tree):
    """Copies the resolved weights (weights.py) into a Keras model built from the config."""
    def rel(node):
        names = []
        while node is not None and node is not tree:
            names.append(node.name)
            node = node.parent
        return "/".join([tree.name] + list(reversed(names)))

    by_path = {rel(l): l for l in tree.walk()}

    def visit(kl, prefix):
        path = f"{prefix}/{kl.name}" if prefix else kl.name
        sub = getattr(kl, "layers", None)
        if sub is not None and hasattr(kl, "inputs"):
            for c in sub:
                visit(c, path)
            return
        if not kl.weights:
            return
        node = by_path.get(path)
        if node is None:
            raise Unavailable(f"layer {path} not in the config tree")
        vals = []
        for w in kl.weights:
            role = _role_of(node.class_name, w.name)
            if role not in node.weights:
                raise Unavailable(f"no weight {role} for {path}")
            vals.append(np.asarray(node.weights[role]).reshape(tuple(w.shape)))
        kl.set_weights(vals)
        # Normalization caches mean/variance as tensors when built; set_weights alone leaves
        # the layer computing with the old values (keras/tf_keras finalize_state()).
        if hasattr(kl, "finalize_state") and node.class_name == "Normalization":
            kl.finalize_state()

    visit(kmodel, "")


def _build_from_config(source, tree, why):
    errors = []
    for name in (["keras", "tf_keras"] if source.keras3 else ["tf_keras", "keras"]):
        try:
            k = _import(name)
            m = k.models.model_from_json(json.dumps(tree.entry))
            _set_tree_weights(m, tree)
            return m, f"{name} {k.__version__} (model rebuilt from {why})"
        except Unavailable as e:
            errors.append(str(e))
        except Exception as e:
            errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    raise Unavailable("; ".join(errors))


def load_reference(source, tree):
    """(callable x[H,W,C] -> output ndarray, description). `tree` is the exported (sub)model;
    when it is the whole file, Keras loads the file itself; otherwise (TF.js, --submodel, or a
    file Keras cannot load) Keras rebuilds the model from its config and gets the weights the
    exporter resolved."""
    if source.format == "tfjs-layers":
        m, how = _build_from_config(source, tree, "the TF.js topology")
    elif tree.parent is not None:
        m, how = _build_from_config(source, tree, f"the config of nested model '{tree.name}'")
    else:
        try:
            m, how = _load_file(source)
        except Unavailable as e:
            try:
                m, how = _build_from_config(source, tree, "its config, as loading the file "
                                            "failed")
            except Unavailable as e2:
                raise Unavailable(f"{e}; rebuilding from the config: {e2}")
    if isinstance(m.outputs, (list, tuple)) and len(m.outputs) != 1:
        raise Unavailable(f"the Keras model has {len(m.outputs)} outputs")

    def run(x):
        y = m(np.asarray(x, np.float32)[None], training=False)
        if isinstance(y, (list, tuple)):
            y = y[0]
        return np.asarray(y)[0]

    return run, how


def make(source, tree, graph, preprocess, tolerance=TOLERANCE):
    """(input, output, tolerance, description). Raises Unavailable."""
    run, how = load_reference(source, tree)
    x = selftest_input(graph.input.shape, preprocess["scale"], preprocess["offset"])
    y = run(x).astype(np.float32)
    if y.size != graph.output.size:
        raise Unavailable(f"Keras output has {y.size} values, the exported graph "
                          f"{graph.output.size}")
    if not np.all(np.isfinite(y)):
        raise Unavailable("Keras output is not finite")
    return x, y.reshape(graph.output.shape), float(tolerance), how
