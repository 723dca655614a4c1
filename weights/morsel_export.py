#!/usr/bin/env python3
"""Export a Keras image classifier to a .morsel file (see weights/FORMAT.md).

    python weights/morsel_export.py INPUT -o OUT.morsel [--labels FILE] [--name NAME]
        [--preprocess unit|tf|caffe|torch|raw|scale:S,offset:O]
        [--resize nearest|bilinear|bicubic|lanczos|box] [--crop none|center]
        [--license TEXT] [--input-size HxW] [--no-selftest]

INPUT is recognised by its content: a Keras 3 .keras zip, a legacy whole-model .h5 (Keras 2 or
Keras 3 writer), or a TF.js layers model (a directory holding model.json, or the model.json).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from morsel_exporter.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
