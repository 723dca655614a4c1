"""Morsel exporter: Keras (.keras zip, legacy .h5, TF.js layers) -> .morsel (FORMAT.md).

Needs only Python 3, numpy and h5py; TensorFlow/Keras are imported lazily for the optional
self-test (selftest.py)."""

from .cli import EXPORTER_VERSION, export, main  # noqa: F401
