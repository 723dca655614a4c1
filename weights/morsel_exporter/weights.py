"""Putting each container's stored weights onto the layers of the config tree.

Every weighted leaf layer ends with `layer.weights = {role: ndarray}` where role is one of
kernel, bias, depthwise_kernel, pointwise_kernel, gamma, beta, moving_mean, moving_variance,
mean, variance, count (layers.weight_roles lists what each class owns).

  legacy .h5   one group per top-level layer (a nested model's weights sit in the group of the
               top-level model that contains it), listed by the `weight_names` attribute.
               Matched by name first (`.../<layer name>/<role>:0`); when names are ambiguous,
               by Keras's own legacy order (each layer's trainable weights, then the
               non-trainable ones; a frozen layer's weights all count as non-trainable) with
               every position's role checked.
  .keras zip   `layers/<key>/vars/<i>`: <key> is the snake_case class name plus a per-container
               counter, in the container's layer order (a Functional's layers include its
               InputLayers, a Sequential's do not); checked against the layer name Keras
               records next to the variables when present.
  TF.js        manifest names `<layer name>/<role>`.
"""

import re

from .errors import ExportError
from .layers import ROLE_ALIASES, weight_roles


def _expected(layer):
    return [r for r, _ in weight_roles(layer)]


def _split(weight_name):
    wn = re.sub(r":\d+$", "", weight_name)
    parts = wn.split("/")
    return parts[:-1], parts[-1]


def _norm_role(layer, role):
    exp = set(_expected(layer))
    r = ROLE_ALIASES.get((layer.class_name, role), role)
    if r not in exp:
        m = re.match(r"^(.*)_\d+$", role)  # TF1-era uniquified names: kernel_1
        if m:
            r2 = ROLE_ALIASES.get((layer.class_name, m.group(1)), m.group(1))
            if r2 in exp:
                return r2
    return r


def _weighted(layer):
    return [l for l in layer.walk() if not l.is_model and _expected(l)]


def _by_name(leaves, entries):
    names = [l.name for l in leaves]
    if not leaves or len(set(names)) != len(names):
        return None
    idx = {l.name: l for l in leaves}
    got = {n: {} for n in names}
    for wn, arr in entries:
        scopes, role = _split(wn)
        owner = scopes[-1] if scopes else None
        if owner not in idx:
            if len(leaves) != 1:
                return None
            owner = leaves[0].name
        layer = idx[owner]
        r = _norm_role(layer, role)
        if r in got[owner]:
            return None
        got[owner][r] = arr
    for l in leaves:
        if set(got[l.name]) != set(_expected(l)):
            return None
    return got


def _legacy_order(node, parent_trainable=True):
    """(trainable, non_trainable) lists of (leaf, role) in Keras's legacy h5 order."""
    trainable = bool(node.cfg.get("trainable", True)) and parent_trainable
    if node.is_model:
        T, N = [], []
        for c in node.children:
            t, n = _legacy_order(c, trainable)
            T += t
            N += n
        return (T, N) if trainable else ([], T + N)
    roles = weight_roles(node)
    if trainable:
        return ([(node, r) for r, tv in roles if tv], [(node, r) for r, tv in roles if not tv])
    return [], [(node, r) for r, _ in roles]


def _positional(top_layer, entries):
    T, N = _legacy_order(top_layer)
    seq = T + N
    if len(seq) != len(entries):
        return None
    got = {}
    for (leaf, role), (wn, arr) in zip(seq, entries):
        _, r = _split(wn)
        if _norm_role(leaf, r) != role:
            return None
        got.setdefault(leaf.name, {})[role] = arr
    return got


def _assign_h5(tree, store):
    children = [c for c in tree.children if c.class_name != "InputLayer"]
    for t in children:
        leaves = _weighted(t)
        entries = store.groups.get(t.name)
        if not leaves:
            continue
        if entries is None:
            raise ExportError(f"the file holds no weights for layer '{t.name}' "
                              f"({t.class_name}); layers with weights in the file: "
                              f"{sorted(k for k, v in store.groups.items() if v)[:10]}")
        got = _by_name(leaves, entries) or _positional(t, entries)
        if got is None:
            listed = ", ".join(wn for wn, _ in entries[:8])
            raise ExportError(f"cannot match the stored weights of '{t.name}' ({t.class_name}) "
                              f"to its layers (stored: {listed}{' ...' if len(entries) > 8 else ''})")
        for l in leaves:
            l.weights = got[l.name]


def snake_case(name):
    """Keras 3's key for a saved child: CamelCase class name -> snake_case ('ReLU' -> 're_lu',
    'Conv2D' -> 'conv2d')."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(?<=.)([A-Z][a-z]+)", r"_\1", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _k3_paths(model, prefix):
    used = {}
    kids = list(model.children)
    if model.is_sequential and kids and kids[0].class_name == "InputLayer":
        kids = kids[1:]
    for c in kids:
        base = snake_case(c.class_name)
        n = used.get(base)
        used[base] = 0 if n is None else n + 1
        key = base if n is None else f"{base}_{n + 1}"
        c.k3path = f"{prefix}layers/{key}"
        if c.is_model:
            _k3_paths(c, c.k3path + "/")


def _k3_locate(store, layer):
    """The layer's saving path, confirmed by the recorded layer name when there is one."""
    path = layer.k3path
    rec = store.name_at(path)
    if rec is None or rec == layer.name:
        return path
    parent = path.rsplit("/", 1)[0]
    hits = [f"{parent}/{k}" for k in store.children(parent)
            if store.name_at(f"{parent}/{k}") == layer.name]
    if len(hits) == 1:
        return hits[0]
    raise ExportError(f"weights of layer '{layer.name}' ({layer.class_name}) not found in "
                      f"model.weights.h5 (expected at {path}, which holds '{rec}')")


def _assign_k3(tree, store):
    _k3_paths(tree, "")
    for l in _weighted(tree):
        path = _k3_locate(store, l)
        arrays = store.vars_at(path)
        roles = _expected(l)
        if arrays is None or len(arrays) != len(roles):
            n = "no" if arrays is None else len(arrays)
            raise ExportError(f"layer '{l.name}' ({l.class_name}): {n} stored variables at "
                              f"{path}, expected {len(roles)} ({', '.join(roles)})")
        l.weights = dict(zip(roles, arrays))


def _assign_named(tree, entries):
    leaves = _weighted(tree)
    got = _by_name(leaves, entries)
    if got is None:
        raise ExportError("cannot match the TF.js manifest's weight names to the model's layers")
    for l in leaves:
        l.weights = got[l.name]


def assign(tree, source):
    kind = source.weights.kind
    if kind == "h5-groups":
        _assign_h5(tree, source.weights)
    elif kind == "keras3-paths":
        _assign_k3(tree, source.weights)
    elif kind == "named":
        _assign_named(tree, source.weights.entries)
    else:
        raise ExportError(f"unknown weight store {kind}")
    for l in _weighted(tree):
        missing = set(_expected(l)) - set(l.weights)
        if missing:
            raise ExportError(f"layer '{l.name}' ({l.class_name}): weights {sorted(missing)} "
                              "not found in the file")
