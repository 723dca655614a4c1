"""The .morsel binary writer (weights/FORMAT.md, version 1.2). Little-endian throughout;
CRC-32 is zlib.crc32; every section and every constant tensor starts on a 64-byte boundary."""

import math
import struct
import zlib

import numpy as np

from . import ir

MAGIC = b"\x89MORSEL\n"
VERSION = (1, 2)  # the newest version this writer knows; files say the oldest that reads them
# The minor version that introduced each op type (FORMAT.md): a file is stamped with the
# highest one it uses, so files without the 1.1 / 1.2 ops still open in older readers.
OP_MINOR = {ir.RESIZE: 1, ir.CROP: 1, ir.GROUPED_CONV2D: 2, ir.LAYER_NORM: 2,
            ir.CONV2D_TRANSPOSE: 2}
ALIGN = 64
NO_TENSOR = 0xFFFFFFFF

STRINGS, TENSORS, OPS, MODEL, WEIGHTS, SELFTEST = 1, 2, 3, 4, 5, 6

RESIZE = {"nearest": 0, "bilinear": 1, "bicubic": 2, "lanczos": 3, "box": 4}
CROP = {"none": 0, "center": 1}


def _align(n, a=ALIGN):
    return (n + a - 1) // a * a


class Strings:
    def __init__(self):
        self.buf = bytearray(b"\0")
        self.index = {"": 0}

    def add(self, s):
        s = "" if s is None else str(s)
        if "\0" in s:
            s = s.replace("\0", " ")
        if s not in self.index:
            self.index[s] = len(self.buf)
            self.buf += s.encode("utf8") + b"\0"
        return self.index[s]


def _f32(v):
    return struct.pack("<f", float(v))


def build(g, meta, selftest=None, alloc=bytearray):
    """Returns the file image, in the zero-filled buffer alloc(size) gives (a bytearray by
    default; the exporter passes a writable mmap of the output file, so a large model's image
    lives in the page cache rather than in the process).

    meta: dict with preprocess (scale[3], offset[3], bgr), resize, crop, labels, name, source,
    keras_version, exporter_version, source_format, license.
    selftest: None or (input ndarray, output ndarray, tolerance).
    """
    strings = Strings()
    tensors = g.tensors()
    tindex = {id(t): i for i, t in enumerate(tensors)}
    consts = [t for t in tensors if t.is_const]

    # Layout: header, table, then sections each 64-aligned. Section count is known up front.
    kinds = [STRINGS, TENSORS, OPS, MODEL, WEIGHTS] + ([SELFTEST] if selftest else [])

    # OPS and MODEL reference strings; build them first (records need string offsets).
    op_recs = []
    for op in g.ops:
        if not 1 <= len(op.inputs) <= 8:
            raise ValueError(f"op {op.name} has {len(op.inputs)} inputs")
        ins = [tindex[id(t)] for t in op.inputs] + [0] * (8 - len(op.inputs))
        iattr = (list(op.iattr) + [0] * 12)[:12]
        fattr = (list(op.fattr) + [0.0] * 4)[:4]
        act_max = op.act.max if op.act.code == ir.RELU else math.inf
        rec = struct.pack("<IIII", op.type, strings.add(op.name), strings.add(op.class_name),
                          op.act.code)
        rec += _f32(op.act.alpha) + struct.pack("<f", act_max)
        rec += struct.pack("<I8II", len(op.inputs), *ins, tindex[id(op.output)])
        rec += struct.pack("<12i", *iattr) + struct.pack("<4f", *fattr)
        assert len(rec) == 128
        op_recs.append(rec)

    labels = meta.get("labels") or []
    pp = meta["preprocess"]
    model = struct.pack(
        "<IIIIIIII", tindex[id(g.input)], tindex[id(g.output)],
        NO_TENSOR if g.logits is None else tindex[id(g.logits)], len(labels), g.output_kind,
        RESIZE[meta["resize"]], CROP[meta["crop"]], 1 if pp["bgr"] else 0)
    model += struct.pack("<3f", *pp["scale"]) + struct.pack("<3f", *pp["offset"])
    model += struct.pack("<6I", *(strings.add(meta.get(k, "")) for k in (
        "name", "source", "keras_version", "exporter_version", "source_format", "license")))
    model += b"\0" * (128 - len(model))
    model += b"".join(struct.pack("<I", strings.add(l)) for l in labels)

    tensor_names = [strings.add(t.name) for t in tensors]

    # Offsets: everything after the header + table. To leave as few bytes as possible outside
    # every CRC, the sections whose size may exceed their content absorb their trailing zero
    # padding up to the next 64-byte boundary: STRINGS (extra NULs), WEIGHTS (after the last
    # constant) and SELFTEST ("then zero padding"). TENSORS and OPS are multiples of 64 already;
    # only MODEL (exactly 128 + 4 * n_labels bytes) and an odd-length section table leave gaps.
    strings.buf += b"\0" * (_align(len(strings.buf)) - len(strings.buf))
    table_end = 64 + 32 * len(kinds)
    off = _align(table_end)
    sec_off = {}

    def place(kind, size):
        nonlocal off
        sec_off[kind] = off
        off = _align(off + size)

    place(STRINGS, len(strings.buf))
    place(TENSORS, 64 * len(tensors))
    place(OPS, 128 * len(op_recs))
    place(MODEL, len(model))
    # WEIGHTS: each constant 64-aligned in the file (the section start is).
    w_start = off
    const_off = {}
    cur = w_start
    for t in consts:
        cur = _align(cur)
        const_off[id(t)] = cur
        cur += 4 * t.size
    w_size = _align(cur) - w_start
    place(WEIGHTS, w_size)
    if selftest:
        x, y, tol = selftest
        st_size = _align(64 + 4 * (x.size + y.size))
        place(SELFTEST, st_size)
    file_size = off  # every section ends 64-aligned; the last one ends the file

    # TENSORS
    trecs = bytearray()
    for t, nm in zip(tensors, tensor_names):
        if not 1 <= len(t.shape) <= 4:
            raise ValueError(f"tensor {t.name} has rank {len(t.shape)}")
        dims = list(t.shape) + [1] * (4 - len(t.shape))
        if t.is_const:
            do, ds = const_off[id(t)], 4 * t.size
        else:
            do, ds = 0, 0
        r = struct.pack("<IIII4IQQ", nm, 1 if t.is_const else 0, 1, len(t.shape), *dims, do, ds)
        trecs += r + b"\0" * (64 - len(r))

    # One buffer the size of the file, filled in place: a 1.4 GB model must not cost several
    # copies of itself (the exporter reached 10.5 GB RSS on ConvNeXtLarge when the weights,
    # the sections and the signed image were each a separate copy).
    out = alloc(file_size)
    view = memoryview(out)
    for t in consts:
        o = const_off[id(t)]
        a = np.ascontiguousarray(t.data, dtype="<f4").reshape(-1)
        np.frombuffer(view[o:o + 4 * a.size], dtype="<f4")[:] = a
        del a

    blobs = {STRINGS: bytes(strings.buf), TENSORS: bytes(trecs), OPS: b"".join(op_recs),
             MODEL: model}
    sizes = {k: len(v) for k, v in blobs.items()}
    sizes[WEIGHTS] = w_size
    counts = {STRINGS: 0, TENSORS: len(tensors), OPS: len(op_recs), MODEL: 1, WEIGHTS: 0}
    if selftest:
        x, y, tol = selftest
        st = struct.pack("<IIf", x.size, y.size, tol) + b"\0" * 52
        st += np.ascontiguousarray(x, dtype="<f4").tobytes()
        st += np.ascontiguousarray(y, dtype="<f4").tobytes()
        blobs[SELFTEST] = st + b"\0" * (st_size - len(st))
        sizes[SELFTEST] = st_size
        counts[SELFTEST] = 1

    table = bytearray()
    for k in kinds:
        o = sec_off[k]
        if k in blobs:
            out[o:o + sizes[k]] = blobs[k]
        table += struct.pack("<IIQQQ", k, 0, o, sizes[k], counts[k])
    minor = max([0] + [OP_MINOR.get(op.type, 0) for op in g.ops])
    header = bytearray(MAGIC + struct.pack("<HHIQI", VERSION[0], minor, len(kinds),
                                           file_size, 0))
    header += b"\0" * (64 - len(header))
    out[0:64] = header
    out[64:64 + len(table)] = table
    view.release()
    _sign_in_place(out)
    return out


def sign(image):
    """Recomputes every section CRC and then the header CRC (over the header with its CRC field
    zero, plus the section table) of a complete .morsel image; returns the signed bytes. The
    tests use it to re-sign files they alter on purpose."""
    out = bytearray(image)
    _sign_in_place(out)
    return bytes(out)


def _sign_in_place(out):
    view = memoryview(out)
    nsec = struct.unpack_from("<I", out, 12)[0]
    for i in range(nsec):
        rec = 64 + 32 * i
        o, size = struct.unpack_from("<QQ", out, rec + 8)
        struct.pack_into("<I", out, rec + 4, zlib.crc32(view[o:o + size]) & 0xFFFFFFFF)
    out[24:28] = b"\0\0\0\0"
    crc = zlib.crc32(view[:64 + 32 * nsec]) & 0xFFFFFFFF
    view.release()
    out[24:28] = struct.pack("<I", crc)
