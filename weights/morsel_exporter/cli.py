"""`python weights/morsel_export.py INPUT -o OUT.morsel [options]`: the exporter's command."""

import argparse
import mmap
import os
import sys

import numpy as np

from . import containers, fold, graph, ir, layers, weights, writer
from .errors import ExportError

EXPORTER_VERSION = "morsel-export 0.1.0"

IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)

PRESETS = {
    "unit": "x/255",
    "tf": "x/127.5 - 1",
    "caffe": "BGR, x - ImageNet mean (103.939, 116.779, 123.68)",
    "torch": "(x/255 - ImageNet mean) / std",
    "raw": "x (0..255)",
}


def parse_preprocess(mode):
    """MODE -> {'scale': [3], 'offset': [3], 'bgr': bool, 'desc': str}.
    Model input = pixel(0..255) * scale + offset, per channel in model order."""
    m = mode.strip().lower()
    if m == "unit":
        return {"scale": [1 / 255.0] * 3, "offset": [0.0] * 3, "bgr": False}
    if m == "tf":
        return {"scale": [1 / 127.5] * 3, "offset": [-1.0] * 3, "bgr": False}
    if m == "caffe":
        return {"scale": [1.0] * 3, "offset": [-v for v in IMAGENET_MEAN_BGR], "bgr": True}
    if m == "torch":
        return {"scale": [1 / (255.0 * s) for s in TORCH_STD],
                "offset": [-mu / s for mu, s in zip(TORCH_MEAN, TORCH_STD)], "bgr": False}
    if m == "raw":
        return {"scale": [1.0] * 3, "offset": [0.0] * 3, "bgr": False}
    if m.startswith("scale:"):
        # scale:S,offset:O[,bgr]
        toks = [t for t in m.split(",") if t]
        bgr = "bgr" in toks
        try:
            parts = dict(t.split(":", 1) for t in toks if t != "bgr")
            s, o = float(parts.pop("scale")), float(parts.pop("offset", 0.0))
            if parts:
                raise ValueError
        except (ValueError, KeyError):
            raise ExportError(f"--preprocess {mode!r}: expected scale:S,offset:O[,bgr]")
        return {"scale": [s] * 3, "offset": [o] * 3, "bgr": bgr}
    raise ExportError(f"--preprocess {mode!r}: expected unit, tf, caffe, torch, raw or "
                      "scale:S,offset:O[,bgr]")


def _describe_pp(pp):
    return (f"input = pixel * [{', '.join(f'{v:.6g}' for v in pp['scale'])}] + "
            f"[{', '.join(f'{v:.6g}' for v in pp['offset'])}]"
            f"{' (BGR order)' if pp['bgr'] else ''}")


# Ops that scale the model's own input: the preprocessing layers and preprocess_input's raw
# ops (Keras 2 TFOpLambda, Keras 3 keras.ops classes).
SCALING_CLASSES = ("Rescaling", "Normalization", "TFOpLambda", "SlicingOpLambda",
                   "TrueDivide", "Divide", "Subtract", "Add", "Multiply", "GetItem")
# Ops that only move or resample pixels (in-model Resizing / CenterCrop / channel flips).
GEOMETRY = (ir.RESIZE, ir.CROP)


def _own_input_scaling(g):
    """The op that rescales the model's own input, or None: the first op after the input
    (looking through in-model resizing and cropping) is an AFFINE from Rescaling,
    Normalization or preprocess_input's arithmetic, or the exact channel-flip DENSE that
    preprocess_input's caffe mode starts with."""
    x = g.input
    while True:
        readers = [op for op in g.ops if x in op.inputs]
        if len(readers) != 1:
            return None
        op = readers[0]
        if op.type in GEOMETRY:
            x = op.output
            continue
        if op.class_name in SCALING_CLASSES and (
                op.type == ir.AFFINE or (op.type == ir.DENSE and op.class_name != "Dense")):
            return op
        return None


def read_labels(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = [l.rstrip("\r\n") for l in f]
    except OSError as e:
        raise ExportError(f"--labels {path}: {e}")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="morsel_export.py",
        description="Export a Keras image classifier (.keras, .h5 or TF.js layers) to .morsel")
    ap.add_argument("input", help="Keras 3 .keras, legacy .h5, or a TF.js model dir/model.json")
    ap.add_argument("-o", "--output", required=True, help="the .morsel file to write")
    ap.add_argument("--labels", help="text file, one class label per line, in output order")
    ap.add_argument("--name", help="model name stored in the file (default: the file's stem)")
    ap.add_argument("--preprocess", help="unit | tf | caffe | torch | raw | scale:S,offset:O[,bgr] "
                    "(default: raw if the model rescales its own input, else unit)")
    ap.add_argument("--resize", default="bilinear", choices=sorted(writer.RESIZE),
                    help="resize filter the classifier uses (default bilinear)")
    ap.add_argument("--crop", default="none", choices=sorted(writer.CROP),
                    help="none: stretch to the input size; center: resize the short side then "
                    "centre-crop (Pillow ImageOps.fit)")
    ap.add_argument("--license", default="", help="license / attribution of the weights")
    ap.add_argument("--input-size", help="HxW, for models saved with an unknown input size")
    ap.add_argument("--submodel", help="export only the nested model of this name (e.g. the "
                    "real classifier inside a multi_gpu_model wrapper)")
    ap.add_argument("--no-selftest", action="store_true",
                    help="do not run Keras to embed a self-test vector")
    ap.add_argument("-q", "--quiet", action="store_true")
    return ap.parse_args(argv)


def _warn(msg):
    print(f"warning: {msg}", file=sys.stderr)


def _wrapped_classifiers(top, blocking):
    """Nested models worth exporting alone: none of the blocking layers inside, and at least
    half of the model's leaf layers (a base network wrapped by a head with a custom layer, not
    one of the small internal blocks ConvNeXt or EfficientNet keep as nested Sequentials)."""
    if not blocking:
        return []
    total = len(top.leaves())
    out = []
    for m in top.walk():
        if m is top or not m.is_model:
            continue
        inside = {id(l) for l in m.walk()}
        if not any(id(l) in inside for l in blocking) and 2 * len(m.leaves()) >= total:
            out.append(m.name)
    return out


def export(args, log=print, warn=_warn):
    src = containers.read(args.input)
    tree = graph.parse_tree(src.model_config)
    sub = tree
    if args.submodel:
        found = [m for m in tree.walk() if m.is_model and m.name == args.submodel]
        if len(found) != 1:
            names = [m.name for m in tree.walk() if m.is_model]
            raise ExportError(f"--submodel {args.submodel!r}: {len(found)} models of that name "
                              f"(models in the file: {names})")
        sub = found[0]
        log(f"exporting nested model '{sub.name}' ({sub.class_name}) on its own")
    try:
        layers.check_supported(sub)
    except layers.UnsupportedLayer as e:
        wrapped = _wrapped_classifiers(sub, getattr(e, "layers", []))
        if wrapped and sub is tree:
            e.note(f"(the blocking layers lie outside the nested model(s) {wrapped}, which hold "
                   "most of this model's layers; --submodel NAME exports one on its own)")
        raise
    weights.assign(tree, src)
    src.drop_weights()
    size = None
    if args.input_size:
        try:
            h, w = (int(v) for v in args.input_size.lower().split("x"))
            size = (h, w)
        except ValueError:
            raise ExportError(f"--input-size {args.input_size!r}: expected HxW, e.g. 224x224")
    b = graph.Builder(keras3=src.keras3, translate=layers.translate)
    g = b.build(sub, size)
    n_ops_before = len(g.ops)
    n_bn, n_act = fold.optimize(g)
    # Folding is done in float64; what is written is float32. Rounding now rather than in the
    # writer gives the same bytes and halves what the graph holds during the self-test.
    for t in g.tensors():
        if t.is_const:
            t.data = t.data.astype(np.float32)
    if not g.ops or g.output is g.input:
        raise ExportError("the model computes nothing: its output is its input (only "
                          "inference-time identity layers)")

    # Preprocessing.
    own = _own_input_scaling(g)
    if args.preprocess:
        pp = parse_preprocess(args.preprocess)
        how = f"--preprocess {args.preprocess}"
        if own is not None and args.preprocess.strip().lower() != "raw":
            warn(f"the model scales its own input ('{own.name}', {own.class_name}) and "
                 f"--preprocess {args.preprocess} scales it again; is that intended?")
    elif own is not None:
        pp = parse_preprocess("raw")
        how = (f"default raw: the model rescales its own input (first op '{own.name}', "
               f"{own.class_name})")
        g.notes.append(f"input scaling is inside the model ('{own.name}', {own.class_name})")
    else:
        pp = parse_preprocess("unit")
        how = "default unit (x/255): the model has no Rescaling of its own; pass --preprocess " \
              "if it was trained otherwise"
    log(f"preprocess: {how}; {_describe_pp(pp)}")

    if g.input.shape[-1] != 3:
        warn(f"the model input has {g.input.shape[-1]} channels; Morsel's image pipeline feeds "
             "3 (RGB/BGR), so only `morsel run` on raw tensors will work")
    labels = read_labels(args.labels) if args.labels else []
    n_out = g.output.shape[-1]
    if labels and len(labels) != n_out:
        raise ExportError(f"--labels {args.labels}: {len(labels)} labels for {n_out} outputs")

    if src.format == "tfjs-layers":
        source_name = os.path.basename(os.path.dirname(os.path.abspath(src.path))) + \
            "/" + os.path.basename(src.path)
        stem = os.path.basename(os.path.dirname(os.path.abspath(src.path)))
    else:
        source_name = src.filename
        stem = os.path.splitext(src.filename)[0]

    st = None
    if not args.no_selftest:
        from . import selftest
        try:
            x, y, tol, ref = selftest.make(src, sub, g, pp)
            st = (x, y, tol)
            log(f"self-test: embedded Keras output from {ref} (tolerance {tol:g})")
        except selftest.Unavailable as e:
            warn(f"no self-test written: Keras could not run this model ({e})")

    meta = {
        "preprocess": pp, "resize": args.resize, "crop": args.crop, "labels": labels,
        "name": args.name or stem, "source": source_name, "keras_version": src.keras_version,
        "exporter_version": EXPORTER_VERSION, "source_format": src.format,
        "license": args.license or "",
    }
    tmp = args.output + ".tmp"
    with open(tmp, "w+b") as f:
        def alloc(n):
            f.truncate(n)  # a fresh file's extension reads as zeros, as build() expects
            return mmap.mmap(f.fileno(), n)
        image = writer.build(g, meta, st, alloc)
        n_bytes = len(image)
        image.flush()
        image.close()
    os.replace(tmp, args.output)

    consts = [t for t in g.tensors() if t.is_const]
    n_params = sum(t.size for t in consts)
    kinds = {0: "softmax probabilities", 1: "independent sigmoids", 2: "raw scores"}
    log(f"read {src.format} ({source_name}, Keras {src.keras_version or '?'}): "
        f"{sum(1 for l in sub.walk() if not l.is_model)} layers")
    log(f"graph: {len(g.ops)} ops ({n_ops_before} before folding {n_bn} BatchNormalization / "
        f"scale layers and fusing {n_act} activations), {n_params:,} parameters; input {list(g.input.shape)}, "
        f"output {list(g.output.shape)} ({kinds[g.output_kind]}"
        f"{', logits kept' if g.logits is not None else ''})")
    for note in g.notes:
        log(f"note: {note}")
    log(f"wrote {args.output} ({n_bytes:,} bytes)")
    return g


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log = (lambda *a, **k: None) if args.quiet else print
    try:
        export(args, log)
    except ExportError as e:
        print(f"morsel_export: error: {e}", file=sys.stderr)
        return 1
    return 0
