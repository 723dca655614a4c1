"""Reading the three Keras containers into one shape: a Keras model config (dict with
`class_name` and `config`) plus the stored weights, left in the form the container keeps them
(weights.py maps them onto layers).

The container is recognised by its first bytes, never by the file name:
  PK\\x03\\x04            Keras 3 `.keras` zip (config.json + model.weights.h5 + metadata.json)
  \\x89HDF\\r\\n\\x1a\\n     legacy whole-model HDF5 `.h5` (Keras 2 writers and Keras 3's legacy writer)
  a directory or a JSON file   TF.js layers format (model.json + binary shards)
"""

import io
import json
import math
import os
import zipfile

import numpy as np

from .errors import ExportError

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class H5Groups:
    """Legacy .h5 weights: one group per top-level layer, each an ordered list of
    (weight name, array) taken in the order of the group's `weight_names` attribute."""

    kind = "h5-groups"

    def __init__(self, groups, layer_names):
        self.groups = groups            # layer name -> [(weight name, ndarray)]
        self.layer_names = layer_names  # top-level layer names, as saved


class NamedWeights:
    """TF.js weights: one flat list of (weight name, array) from the manifest."""

    kind = "named"

    def __init__(self, entries):
        self.entries = entries


class K3Store:
    """Keras 3 zip weights: `model.weights.h5` keyed by saving path (`layers/<key>/vars/<i>`)."""

    kind = "keras3-paths"

    def __init__(self, h5file):
        self.h5 = h5file

    def group(self, path):
        try:
            g = self.h5[path]
        except KeyError:
            return None
        return g

    def vars_at(self, path):
        """The arrays under `path/vars` in index order, or None when the path is absent."""
        g = self.group(path + "/vars")
        if g is None:
            return None
        keys = sorted((k for k in g.keys()), key=lambda k: int(k) if k.isdigit() else 1 << 30)
        return [np.asarray(g[k][()]) for k in keys]

    def name_at(self, path):
        """The layer name Keras recorded next to the variables (newer Keras 3 writers)."""
        g = self.group(path + "/vars")
        if g is None:
            return None
        n = g.attrs.get("name")
        if isinstance(n, bytes):
            n = n.decode("utf8")
        return n

    def children(self, path):
        g = self.group(path)
        return [] if g is None else list(g.keys())


class Source:
    """What the exporter read: config, weights and provenance."""

    def __init__(self, path, fmt, keras_version, model_config, weights, extra=None):
        self.path = path
        self.filename = os.path.basename(os.path.normpath(path))
        self.format = fmt                    # keras-v3-zip | keras-h5 | tfjs-layers
        self.keras_version = keras_version or ""
        self.model_config = model_config     # {"class_name": ..., "config": ...}
        self.weights = weights
        self.extra = extra or {}

    def drop_weights(self):
        """After weights.assign the tree holds its own arrays; the file's copy (for a .keras
        zip, the whole weights image read into memory) is no longer needed."""
        h5 = getattr(self.weights, "h5", None)
        if h5 is not None:
            h5.close()
        self.weights = None

    @property
    def keras3(self):
        """True when the file was written by Keras 3 (its semantics apply, e.g. hard_sigmoid).
        A .keras zip without a recorded version is taken as Keras 3's."""
        major = self.keras_version.split(".")[0]
        if major.isdigit():
            return int(major) >= 3
        return self.format == "keras-v3-zip"


def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf8")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v[()])
    return str(v) if v is not None else ""


def _attr_list(group, name):
    """A list-valued HDF5 attribute, including Keras's chunked form (name0, name1, ...)."""
    if name in group.attrs:
        vals = group.attrs[name]
    else:
        vals, k = [], 0
        while f"{name}{k}" in group.attrs:
            vals.extend(list(group.attrs[f"{name}{k}"]))
            k += 1
    return [_text(v) for v in np.atleast_1d(vals)] if len(vals) else []


def sniff(path):
    """'zip' | 'hdf5' | 'tfjs'; raises ExportError for anything else."""
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "model.json")):
            raise ExportError(f"{path}: a directory without model.json (expected a TF.js layers "
                              "model directory)")
        return "tfjs"
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if head.lstrip()[:1] == b"{":
        return "tfjs"
    raise ExportError(
        f"{path}: not a Keras model file (first bytes {head[:8]!r}); expected a Keras 3 .keras "
        "zip, a legacy Keras .h5 (HDF5) file, or a TF.js layers model.json")


def read(path):
    kind = sniff(path)
    if kind == "zip":
        return _read_keras_zip(path)
    if kind == "hdf5":
        return _read_h5(path)
    return _read_tfjs(path)


# ---- Keras 3 .keras zip --------------------------------------------------------------------

def _read_keras_zip(path):
    import h5py

    try:
        z = zipfile.ZipFile(path)
        names = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise ExportError(f"{path}: a zip file that cannot be read ({e})")
    if "config.json" not in names:
        raise ExportError(f"{path}: a zip file but not a Keras .keras model (no config.json "
                          f"among its members {names[:8]})")
    try:
        config = json.loads(z.read("config.json"))
        meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
    except (ValueError, zipfile.BadZipFile, OSError) as e:
        raise ExportError(f"{path}: unreadable config.json/metadata.json in the .keras zip ({e})")
    if not isinstance(config, dict) or "class_name" not in config:
        raise ExportError(f"{path}: config.json is not a Keras model config")
    if "model.weights.h5" in names:
        try:
            h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        except (OSError, zipfile.BadZipFile) as e:
            raise ExportError(f"{path}: model.weights.h5 inside the zip cannot be read ({e})")
        weights = K3Store(h5)
    elif "model.weights.npz" in names or "model.weights.json" in names:
        raise ExportError(f"{path}: weights stored as npz or sharded h5 are not supported; "
                          "re-save with model.save('file.keras')")
    else:
        raise ExportError(f"{path}: the .keras zip holds no model.weights.h5")
    return Source(path, "keras-v3-zip", meta.get("keras_version", ""), config, weights)


# ---- legacy HDF5 ---------------------------------------------------------------------------

def _read_h5(path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ExportError(f"{path}: HDF5 file cannot be opened, it is truncated or corrupt ({e})")
    try:
        root_attrs = dict(f.attrs)
        if "model_config" not in root_attrs:
            if "layer_names" in root_attrs or "model_weights" not in f:
                raise ExportError(
                    f"{path}: an HDF5 file without a model config (a weights-only file from "
                    "save_weights?); export needs the whole model saved with model.save()")
        try:
            config = json.loads(_text(root_attrs["model_config"]))
        except ValueError as e:
            raise ExportError(f"{path}: model_config attribute is not valid JSON ({e})")
        mw = f["model_weights"] if "model_weights" in f else f
        keras_version = _text(mw.attrs.get("keras_version", root_attrs.get("keras_version", "")))
        layer_names = _attr_list(mw, "layer_names")
        groups = {}
        for lname in list(mw.keys()):
            g = mw[lname]
            if not isinstance(g, h5py.Group):
                continue
            wnames = _attr_list(g, "weight_names")
            entries = []
            for wn in wnames:
                if wn not in g:
                    raise ExportError(f"{path}: weight '{wn}' listed for layer '{lname}' is "
                                      "missing from the file")
                entries.append((wn, np.asarray(g[wn][()])))
            groups[lname] = entries
    except ExportError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise ExportError(f"{path}: HDF5 file cannot be read, it is truncated or corrupt ({e})")
    finally:
        f.close()
    return Source(path, "keras-h5", keras_version, config, H5Groups(groups, layer_names),
                  extra={"backend": _text(root_attrs.get("backend", ""))})


# ---- TF.js layers format -------------------------------------------------------------------

_TFJS_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.uint8,
                "uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def _tfjs_weight_entry(mj, gi, w):
    """(name, shape, quantization or None) of one weightsManifest entry, or a clear error: the
    JSON is the user's (or anyone's) file, not something to trust."""
    if not isinstance(w, dict) or not isinstance(w.get("name"), str):
        raise ExportError(f"{mj}: weight group {gi}: an entry without a 'name' string")
    name, shape, q = w["name"], w.get("shape", []), w.get("quantization")
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 31
                       for d in shape)):
        raise ExportError(f"{mj}: weight {name}: shape {str(shape)[:80]} is not a list of sizes")
    if q is not None and (not isinstance(q, dict) or (
            q.get("dtype") in ("uint8", "uint16")
            and not all(isinstance(q.get(k), (int, float)) and not isinstance(q.get(k), bool)
                        for k in ("min", "scale")))):
        raise ExportError(f"{mj}: weight {name}: quantization {str(q)[:80]} lacks a numeric "
                          "min and scale")
    return name, shape, q


def _read_tfjs(path):
    mj = os.path.join(path, "model.json") if os.path.isdir(path) else path
    base = os.path.dirname(os.path.abspath(mj))
    try:
        with open(mj, "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError) as e:
        raise ExportError(f"{mj}: not a TF.js model.json ({e})")
    if not isinstance(doc, dict) or "modelTopology" not in doc:
        raise ExportError(f"{mj}: JSON without modelTopology: not a TF.js layers model")
    if doc.get("format") == "graph-model":
        raise ExportError(f"{mj}: a TF.js graph model; only TF.js layers models (converted from "
                          "Keras) can be exported")
    topo = doc["modelTopology"]
    if isinstance(topo, dict) and "model_config" in topo:
        config = topo["model_config"]
        keras_version = topo.get("keras_version", "")
    elif isinstance(topo, dict) and "class_name" in topo:
        config = {"class_name": topo["class_name"], "config": topo["config"]}
        keras_version = topo.get("keras_version", "")
    else:
        raise ExportError(f"{mj}: modelTopology holds no Keras model config")
    if not keras_version:
        keras_version = "tfjs " + str(doc.get("generatedBy", ""))
    entries = []
    manifest = doc.get("weightsManifest", [])
    if not isinstance(manifest, list) or not all(isinstance(g, dict) for g in manifest):
        raise ExportError(f"{mj}: weightsManifest is not a list of weight groups")
    for gi, group in enumerate(manifest):
        blob = bytearray()
        paths, ws = group.get("paths", []), group.get("weights", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ExportError(f"{mj}: weight group {gi}: 'paths' is not a list of file names")
        if not isinstance(ws, list):
            raise ExportError(f"{mj}: weight group {gi}: 'weights' is not a list")
        for p in paths:
            fp = os.path.join(base, p)
            try:
                with open(fp, "rb") as f:
                    blob += f.read()
            except OSError as e:
                raise ExportError(f"{mj}: weight shard {p} cannot be read ({e})")
        off = 0
        for w in ws:
            name, shape, q = _tfjs_weight_entry(mj, gi, w)
            count = math.prod(shape)  # Python ints: no overflow on hostile shapes
            if q:
                qd = q.get("dtype")
                if qd not in ("uint8", "uint16", "float16"):
                    raise ExportError(f"{mj}: weight {name}: unknown quantization {qd}")
                dt = np.dtype(_TFJS_DTYPES[qd]).newbyteorder("<")
            else:
                wd = w.get("dtype", "float32")
                if wd not in _TFJS_DTYPES:
                    raise ExportError(f"{mj}: weight {name}: unsupported dtype {wd}")
                dt = np.dtype(_TFJS_DTYPES[wd]).newbyteorder("<")
            nbytes = count * dt.itemsize
            if off + nbytes > len(blob):
                raise ExportError(f"{mj}: weight shards of group {gi} are shorter than the "
                                  f"manifest says (at weight {name})")
            raw = np.frombuffer(bytes(blob[off:off + nbytes]), dtype=dt)
            off += nbytes
            if q and q["dtype"] in ("uint8", "uint16"):
                # TF.js affine dequantisation value = min + scale * q, computed here in float64
                # and rounded once to float32.
                vals = (float(q["min"]) + float(q["scale"]) * raw.astype(np.float64))
                vals = vals.astype(np.float32)
            else:
                vals = raw.astype(np.float32) if dt.kind == "f" else raw.astype(np.float64)
            entries.append((name, vals.reshape(shape)))
    return Source(mj, "tfjs-layers", keras_version, config, NamedWeights(entries),
                  extra={"tfjs_dir": base})
