#!/usr/bin/env python3
"""atheris target: any bytes as a TF.js layers model.json given to the exporter, through the
whole config-to-file path: read (containers), parse_tree, check_supported, assign weights,
Builder, fold, writer. The weights come from one shard the harness writes once (w.bin, 16 MiB
of small floats), so the fuzzed manifest decides their names, shapes and dtypes.

The exporter's contract (errors.py, cli.main): a bad or unsupported file ends in ExportError,
which the command prints as one message. Any other exception escaping is a crash. The
self-test (which needs Keras) is not run.

    PYTHONPATH=weights python fuzz_exporter.py [libFuzzer flags] CORPUS...
"""
import os
import sys
import tempfile

import atheris
# Imported first so that only the exporter's own modules are instrumented.
import argparse, json, re, zipfile  # noqa: E401,F401
import h5py  # noqa: F401
import numpy as np

with atheris.instrument_imports():
    from morsel_exporter import cli, containers, fold, graph, layers, weights, writer
    from morsel_exporter.errors import ExportError

COLLECT = os.environ.get("MORSEL_FUZZ_COLLECT")  # a file: survey mode (see one_input)
SEEN = set()
WORK = tempfile.mkdtemp(prefix="fuzz_exporter.")
MODEL_JSON = os.path.join(WORK, "model.json")
np.full(4 << 20, 0.03125, "<f4").tofile(os.path.join(WORK, "w.bin"))


def one_input(data):
    with open(MODEL_JSON, "wb") as f:
        f.write(data)
    try:
        src = containers.read(MODEL_JSON)
        tree = graph.parse_tree(src.model_config)
        layers.check_supported(tree)
        weights.assign(tree, src)
        g = graph.Builder(keras3=src.keras3, translate=layers.translate).build(tree, None)
        fold.optimize(g)
        if not g.ops or g.output is g.input:
            return
        meta = {"preprocess": cli.parse_preprocess("unit"),
                "resize": "bilinear", "crop": "none", "labels": [], "name": "fuzz",
                "source": "model.json", "keras_version": src.keras_version,
                "exporter_version": "fuzz", "source_format": src.format, "license": ""}
        writer.build(g, meta, None)
    except ExportError:
        pass
    except Exception as e:
        if not COLLECT:
            raise
        # Survey mode: note each distinct escape (type and innermost exporter line) once and
        # go on, so one run lists them all instead of stopping at the first.
        tb = e.__traceback__
        where = "?"
        while tb:
            if "morsel_exporter" in tb.tb_frame.f_code.co_filename:
                where = f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
            tb = tb.tb_next
        key = f"{type(e).__name__} at {where}"
        if key not in SEEN:
            SEEN.add(key)
            with open(COLLECT, "a") as f:
                f.write(f"{key}: {str(e)[:120]!r}\n")
            with open(os.path.join(os.path.dirname(COLLECT), f"crash-{len(SEEN)}.json"), "wb") as f:
                f.write(data)


def main():
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
