"""Test helper: an independent reader of .morsel files (every structural rule of
weights/FORMAT.md is checked) and a float64 numpy forward pass over the parsed graph.

It shares no code with the exporter: it reads only the bytes, so comparing its output with
Keras checks the exporter's translation (padding, folding, fusion, weight mapping) on its own.
"""

import math
import struct
import zlib

import numpy as np

MAGIC = b"\x89MORSEL\n"
SECTION_NAMES = {1: "STRINGS", 2: "TENSORS", 3: "OPS", 4: "MODEL", 5: "WEIGHTS", 6: "SELFTEST"}
OP_NAMES = {1: "conv2d", 2: "depthwise_conv2d", 3: "dense", 4: "affine", 5: "add",
            6: "multiply", 7: "global_avg_pool", 8: "avg_pool", 9: "max_pool", 10: "pad",
            11: "reshape", 12: "activation", 13: "concat", 14: "global_max_pool",
            15: "resize", 16: "crop", 17: "grouped_conv2d", 18: "layer_norm",
            19: "conv2d_transpose"}


class FormatError(Exception):
    pass


def _check(cond, msg):
    if not cond:
        raise FormatError(msg)


class Model:
    pass


def parse(data):
    """Parses and validates a .morsel image (bytes). Returns a Model."""
    data = bytes(data)
    _check(len(data) >= 64, "shorter than the header")
    _check(data[:8] == MAGIC, "bad magic")
    major, minor, nsec, fsize, hcrc = struct.unpack_from("<HHIQI", data, 8)
    _check(major == 1, f"major version {major}")
    _check(data[28:64] == b"\0" * 36, "header reserved bytes not zero")
    _check(fsize == len(data), f"file_size {fsize} != {len(data)}")
    _check(1 <= nsec <= 64, f"section_count {nsec}")
    tend = 64 + 32 * nsec
    _check(tend <= len(data), "section table past the end")
    hdr = bytearray(data[:64])
    hdr[24:28] = b"\0\0\0\0"
    _check(zlib.crc32(bytes(hdr) + data[64:tend]) & 0xFFFFFFFF == hcrc, "header CRC mismatch")
    secs = {}
    for i in range(nsec):
        kind, crc, off, size, count = struct.unpack_from("<IIQQQ", data, 64 + 32 * i)
        _check(kind not in secs, f"section kind {kind} twice")
        _check(off % 64 == 0, f"section {kind} offset {off} not 64-aligned")
        _check(off >= tend and off + size <= len(data), f"section {kind} outside the file")
        body = data[off:off + size]
        _check(zlib.crc32(body) & 0xFFFFFFFF == crc, f"section {SECTION_NAMES.get(kind)} CRC")
        secs[kind] = (off, size, count, body)
    spans = sorted((o, o + s) for (o, s, _, _) in secs.values() if s)
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        _check(a1 <= b0, "sections overlap")
    for k in (1, 2, 3, 4, 5):
        _check(k in secs, f"required section {SECTION_NAMES[k]} missing")

    m = Model()
    m.version = (major, minor)
    m.sections = {SECTION_NAMES.get(k, k): (o, s, c) for k, (o, s, c, _) in secs.items()}
    sbody = secs[1][3]
    _check(len(sbody) >= 1 and sbody[0] == 0, "STRINGS must start with NUL")

    def string(off):
        _check(off < len(sbody), f"string offset {off} outside STRINGS")
        end = sbody.find(b"\0", off)
        _check(end >= 0, "unterminated string")
        return sbody[off:end].decode("utf8")

    woff, wsize, _, _ = secs[5]
    toff, tsize, tcount, tbody = secs[2]
    _check(tcount >= 1 and tsize == 64 * tcount, "TENSORS size/count")
    m.tensors = []
    for i in range(tcount):
        r = tbody[64 * i:64 * (i + 1)]
        name, kind, dtype, rank = struct.unpack_from("<IIII", r, 0)
        dims = struct.unpack_from("<4I", r, 16)
        doff, dsize = struct.unpack_from("<QQ", r, 32)
        _check(r[48:64] == b"\0" * 16, "tensor reserved not zero")
        _check(kind in (0, 1) and dtype == 1, f"tensor {i} kind/dtype")
        _check(1 <= rank <= 4, f"tensor {i} rank {rank}")
        _check(all(d >= 1 for d in dims) and all(d == 1 for d in dims[rank:]),
               f"tensor {i} dims {dims}")
        shape = tuple(dims[:rank])
        n = int(np.prod(shape))
        t = {"name": string(name), "const": kind == 1, "shape": shape, "size": n}
        if kind == 1:
            _check(doff % 64 == 0, f"constant {t['name']} not 64-aligned")
            _check(dsize == 4 * n, f"constant {t['name']} size")
            _check(woff <= doff and doff + dsize <= woff + wsize,
                   f"constant {t['name']} outside WEIGHTS")
            t["data"] = np.frombuffer(data, "<f4", n, doff).astype(np.float64).reshape(shape)
        else:
            _check(doff == 0 and dsize == 0, f"activation {t['name']} has data")
        m.tensors.append(t)

    ooff, osize, ocount, obody = secs[3]
    _check(ocount >= 1 and osize == 128 * ocount, "OPS size/count")
    m.ops = []
    for i in range(ocount):
        r = obody[128 * i:128 * (i + 1)]
        typ, name, cls, act = struct.unpack_from("<IIII", r, 0)
        alpha, amax = struct.unpack_from("<ff", r, 16)
        nin = struct.unpack_from("<I", r, 24)[0]
        ins = struct.unpack_from("<8I", r, 28)
        out = struct.unpack_from("<I", r, 60)[0]
        iattr = struct.unpack_from("<12i", r, 64)
        fattr = struct.unpack_from("<4f", r, 112)
        _check(typ in OP_NAMES, f"op {i} type {typ}")
        _check(0 <= act <= 9, f"op {i} activation {act}")
        _check(1 <= nin <= 8, f"op {i} n_inputs {nin}")
        _check(all(x == 0 for x in ins[nin:]), f"op {i} unused inputs not 0")
        _check(all(x < tcount for x in ins[:nin]) and out < tcount, f"op {i} tensor index")
        m.ops.append({"type": typ, "name": string(name), "class": string(cls), "act": act,
                      "alpha": alpha, "max": amax, "inputs": list(ins[:nin]), "output": out,
                      "iattr": list(iattr), "fattr": list(fattr)})

    moff, msize, mcount, mbody = secs[4]
    _check(mcount == 1 and msize >= 128, "MODEL record")
    (m.input, m.output, m.logits, nlab, m.output_kind, m.resize, m.crop,
     m.bgr) = struct.unpack_from("<8I", mbody, 0)
    m.scale = struct.unpack_from("<3f", mbody, 32)
    m.offset = struct.unpack_from("<3f", mbody, 44)
    strs = struct.unpack_from("<6I", mbody, 56)
    (m.name, m.source, m.keras_version, m.exporter_version, m.source_format,
     m.license) = [string(s) for s in strs]
    _check(mbody[80:128] == b"\0" * 48, "MODEL reserved not zero")
    _check(msize == 128 + 4 * nlab, "MODEL size vs labels")
    m.labels = [string(o) for o in struct.unpack_from(f"<{nlab}I", mbody, 128)]
    _check(m.input < tcount and m.output < tcount, "MODEL tensor index")
    _check(m.logits == 0xFFFFFFFF or m.logits < tcount, "MODEL logits index")
    _check(m.output_kind <= 2 and m.resize <= 4 and m.crop <= 1 and m.bgr <= 1, "MODEL enums")
    if nlab:
        _check(nlab == m.tensors[m.output]["shape"][-1], "label count != output size")

    # Topological order and shapes.
    produced = {m.input}
    _check(not m.tensors[m.input]["const"], "input is a constant")
    for op in m.ops:
        _check(op["output"] not in produced and not m.tensors[op["output"]]["const"],
               f"op {op['name']} output not fresh")
        for j, t in enumerate(op["inputs"]):
            _check(m.tensors[t]["const"] or t in produced,
                   f"op {op['name']} reads tensor {m.tensors[t]['name']} before it is made")
        produced.add(op["output"])
        out_shape = infer_shape(m, op)
        _check(out_shape == m.tensors[op["output"]]["shape"],
               f"op {op['name']} ({OP_NAMES[op['type']]}): stored shape "
               f"{m.tensors[op['output']]['shape']} != computed {out_shape}")
    _check(m.output in produced, "no op produces the output")
    _check(m.logits == 0xFFFFFFFF or m.logits in produced, "no op produces the logits")

    m.selftest = None
    if 6 in secs:
        soff, ssize, scount, sbody2 = secs[6]
        _check(scount == 1 and ssize >= 64, "SELFTEST record")
        nin, nout, tol = struct.unpack_from("<IIf", sbody2, 0)
        _check(nin == m.tensors[m.input]["size"] and nout == m.tensors[m.output]["size"],
               "SELFTEST counts")
        _check(64 + 4 * (nin + nout) <= ssize, "SELFTEST data past its section")
        x = np.frombuffer(sbody2, "<f4", nin, 64).reshape(m.tensors[m.input]["shape"])
        y = np.frombuffer(sbody2, "<f4", nout, 64 + 4 * nin)
        m.selftest = (x.copy(), y.copy(), tol)
    return m


def read(path):
    with open(path, "rb") as f:
        return parse(f.read())


def _window_out(shape, a, pool):
    h, w = shape[0], shape[1]
    dh, dw = (1, 1) if pool else (a[8], a[9])
    eh, ew = (a[0] - 1) * dh + 1, (a[1] - 1) * dw + 1
    return ((h + a[4] + a[5] - eh) // a[2] + 1, (w + a[6] + a[7] - ew) // a[3] + 1)


def infer_shape(m, op):
    T = lambda i: m.tensors[op["inputs"][i]]  # noqa: E731
    x = T(0)["shape"]
    a, t = op["iattr"], op["type"]
    if t in (1, 2):
        w = T(1)["shape"]
        _check(len(x) == 3 and len(w) == 4 and w[0] == a[0] and w[1] == a[1] and w[2] == x[2],
               f"op {op['name']}: kernel {w} vs input {x}")
        cout = w[3] if t == 1 else w[2] * w[3]
        if len(op["inputs"]) == 3:
            _check(T(2)["shape"] == (cout,), f"op {op['name']}: bias shape")
        return _window_out(x, a, False) + (cout,)
    if t == 3:
        w = T(1)["shape"]
        _check(len(w) == 2 and w[0] == x[-1], f"op {op['name']}: dense kernel {w} vs {x}")
        return x[:-1] + (w[1],)
    if t == 4:
        _check(T(1)["shape"] == (x[-1],) and T(2)["shape"] == (x[-1],), "affine vectors")
        return x
    if t in (5, 6):
        shapes = [T(i)["shape"] for i in range(len(op["inputs"]))]
        big = max(shapes, key=lambda s: int(np.prod(s)))
        for s in shapes:
            _check(s == big or (t == 6 and int(np.prod(s)) == big[-1] and s[-1] == big[-1]),
                   f"op {op['name']}: shapes {shapes}")
        return big
    if t in (7, 14):
        _check(len(x) == 3, "global pool input rank")
        return m.tensors[op["output"]]["shape"] if m.tensors[op["output"]]["shape"] == (
            1, 1, x[2]) else (x[2],)
    if t in (8, 9):
        _check(len(x) == 3, "pool input rank")
        return _window_out(x, a, True) + (x[2],)
    if t == 10:
        return (x[0] + a[4] + a[5], x[1] + a[6] + a[7], x[2])
    if t == 11:
        y = m.tensors[op["output"]]["shape"]
        _check(int(np.prod(y)) == int(np.prod(x)), "reshape count")
        return y
    if t == 12:
        return x
    if t == 13:
        ax = a[0]
        out = list(x)
        out[ax] = sum(T(i)["shape"][ax] for i in range(len(op["inputs"])))
        return tuple(out)
    if t == 15:
        y = m.tensors[op["output"]]["shape"]
        _check(len(x) == 3 and len(y) == 3 and y[2] == x[2] and a[0] in (0, 1),
               f"op {op['name']}: resize {x} -> {y} method {a[0]}")
        return y
    if t == 16:
        y = m.tensors[op["output"]]["shape"]
        _check(len(x) == 3 and len(y) == 3 and y[2] == x[2] and a[0] >= 0 and a[1] >= 0
               and a[0] + y[0] <= x[0] and a[1] + y[1] <= x[1], f"op {op['name']}: crop box")
        return y
    if t == 17:
        w, g = T(1)["shape"], a[10]
        _check(len(x) == 3 and len(w) == 4 and g >= 1 and x[2] % g == 0 and w[3] % g == 0
               and w[:3] == (a[0], a[1], x[2] // g), f"op {op['name']}: grouped kernel {w}, "
               f"groups {g}, input {x}")
        if len(op["inputs"]) == 3:
            _check(T(2)["shape"] == (w[3],), f"op {op['name']}: bias shape")
        return _window_out(x, a, False) + (w[3],)
    if t == 18:
        _check(T(1)["shape"] == (x[-1],) and T(2)["shape"] == (x[-1],)
               and op["fattr"][0] >= 0, f"op {op['name']}: layer norm gamma/beta/epsilon")
        return x
    if t == 19:
        w = T(1)["shape"]
        _check(len(x) == 3 and len(w) == 4 and w[0] == a[0] and w[1] == a[1] and w[3] == x[2],
               f"op {op['name']}: transposed kernel {w} vs input {x}")
        for k, s, c0, c1 in ((a[0], a[2], a[4], a[5]), (a[1], a[3], a[6], a[7])):
            _check(k >= 1 and s >= 1 and 0 <= c0 < k and -s < c1 < k,
                   f"op {op['name']}: transposed conv attributes {a[:8]}")
        if len(op["inputs"]) == 3:
            _check(T(2)["shape"] == (w[2],), f"op {op['name']}: bias shape")
        return ((x[0] - 1) * a[2] + a[0] - a[4] - a[5], (x[1] - 1) * a[3] + a[1] - a[6] - a[7],
                w[2])
    raise FormatError(f"op type {t}")


def _resize_taps(n_in, n_out, nearest):
    """TF's half-pixel source coordinates, computed in float32 as its kernels do (they decide
    which pixels are read and the interpolation weights); the blend itself is done in float64
    by the caller."""
    f = np.float32
    scale = f(n_in) / f(n_out)
    i = np.arange(n_out, dtype=np.float32)
    if nearest:
        src = np.floor((i + f(0.5)) * scale).astype(np.int64)
        return np.clip(src, 0, n_in - 1), None, None
    src = (i + f(0.5)) * scale - f(0.5)
    fl = np.floor(src)
    lo = np.clip(fl.astype(np.int64), 0, n_in - 1)
    hi = np.clip(np.ceil(src).astype(np.int64), 0, n_in - 1)
    return lo, hi, (src - fl).astype(np.float64)


def resize(x, oh, ow, method):
    """tf.image.resize (half_pixel_centers, no antialias) in float64 on float32 coordinates."""
    h, w = x.shape[0], x.shape[1]
    if (oh, ow) == (h, w):
        return x.copy()
    if method == 0:
        ys, _, _ = _resize_taps(h, oh, True)
        xs, _, _ = _resize_taps(w, ow, True)
        return x[ys][:, xs]
    ylo, yhi, yl = _resize_taps(h, oh, False)
    xlo, xhi, xl = _resize_taps(w, ow, False)
    xl = xl[None, :, None]
    top = x[ylo][:, xlo] + (x[ylo][:, xhi] - x[ylo][:, xlo]) * xl
    bot = x[yhi][:, xlo] + (x[yhi][:, xhi] - x[yhi][:, xlo]) * xl
    return top + (bot - top) * yl[:, None, None]


# ---- numpy forward pass (float64) ------------------------------------------------------------

def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def activation(code, alpha, amax, x):
    if code == 0:
        return x
    if code == 1:
        y = np.maximum(x, 0) + alpha * np.minimum(x, 0)
        return np.minimum(y, amax) if math.isfinite(amax) else y
    if code == 2:
        return 1 / (1 + np.exp(-x))
    if code == 3:
        return np.tanh(x)
    if code == 4:
        return x / (1 + np.exp(-x))
    if code == 5:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if code == 6:
        return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))
    if code == 7:
        return np.clip(x / 6 + 0.5, 0, 1)
    if code == 8:
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if code == 9:
        return np.clip(0.2 * x + 0.5, 0, 1)
    raise ValueError(code)


def _taps(xp, a, oh, ow, dil):
    """Yields (i, j, view[oh, ow, C]) for each kernel tap over the padded input."""
    kh, kw, sh, sw = a[0], a[1], a[2], a[3]
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dil[0], j * dil[1]
            yield i, j, xp[r0:r0 + sh * (oh - 1) + 1:sh, c0:c0 + sw * (ow - 1) + 1:sw, :]


def _pad(x, a, value=0.0):
    return np.pad(x, ((a[4], a[5]), (a[6], a[7]), (0, 0)), constant_values=value)


def _grouped_conv(x, w, a, out_shape):
    """Each group's slice of channels through CONV2D's arithmetic."""
    g, oh, ow = a[10], out_shape[0], out_shape[1]
    cig, cog = x.shape[2] // g, w.shape[3] // g
    xp = _pad(x, a)
    y = np.zeros(out_shape)
    for i, j, v in _taps(xp, a, oh, ow, (a[8], a[9])):
        for k in range(g):
            y[..., k * cog:(k + 1) * cog] += (v[..., k * cig:(k + 1) * cig]
                                              @ w[i, j][:, k * cog:(k + 1) * cog])
    return y


def _conv_transpose(x, w, a, out_shape):
    """The full (H-1)*sh + kh output, each tap (i, j) adding x . W[i, j]^T at stride offsets,
    then the crop window (a negative bottom/right crop extends it with zero rows)."""
    kh, kw, sh, sw = a[0], a[1], a[2], a[3]
    h, wd = x.shape[0], x.shape[1]
    full = np.zeros(((h - 1) * sh + kh + sh, (wd - 1) * sw + kw + sw, w.shape[2]))
    for i in range(kh):
        for j in range(kw):
            full[i:i + (h - 1) * sh + 1:sh, j:j + (wd - 1) * sw + 1:sw] += x @ w[i, j].T
    return full[a[4]:a[4] + out_shape[0], a[6]:a[6] + out_shape[1]]


def run(m, x, which="output"):
    """Forward pass in float64; which = 'output' or 'logits'."""
    vals = {m.input: np.asarray(x, np.float64).reshape(m.tensors[m.input]["shape"])}

    def get(i):
        t = m.tensors[i]
        return t["data"] if t["const"] else vals[i]

    for op in m.ops:
        t, a = op["type"], op["iattr"]
        xs = [get(i) for i in op["inputs"]]
        x0 = xs[0]
        out_shape = m.tensors[op["output"]]["shape"]
        if t in (1, 2):
            oh, ow = out_shape[0], out_shape[1]
            w = xs[1]
            xp = _pad(x0, a)
            y = np.zeros(out_shape)
            for i, j, v in _taps(xp, a, oh, ow, (a[8], a[9])):
                if t == 1:
                    y += v @ w[i, j]
                else:
                    y += (v[..., :, None] * w[i, j]).reshape(oh, ow, -1)
            if len(xs) > 2:
                y += xs[2]
        elif t == 3:
            y = x0 @ xs[1] + (xs[2] if len(xs) > 2 else 0)
        elif t == 4:
            y = x0 * xs[1] + xs[2]
        elif t == 5:
            y = sum(xs[1:], xs[0].copy())
        elif t == 6:
            big = max(xs, key=lambda v: v.size).shape
            y = np.ones(big)
            for v in xs:
                y = y * (v if v.shape == big else v.reshape(-1))
        elif t == 7:
            y = x0.mean(axis=(0, 1)).reshape(out_shape)
        elif t == 14:
            y = x0.max(axis=(0, 1)).reshape(out_shape)
        elif t == 8:
            oh, ow = out_shape[0], out_shape[1]
            s = np.zeros(out_shape)
            n = np.zeros(out_shape[:2] + (1,))
            ones = _pad(np.ones(x0.shape[:2] + (1,)), a)
            for (_, _, v), (_, _, c) in zip(_taps(_pad(x0, a), a, oh, ow, (1, 1)),
                                            _taps(ones, a, oh, ow, (1, 1))):
                s += v
                n += c
            y = s / n
        elif t == 9:
            oh, ow = out_shape[0], out_shape[1]
            y = np.full(out_shape, -np.inf)
            for _, _, v in _taps(_pad(x0, a, -np.inf), a, oh, ow, (1, 1)):
                y = np.maximum(y, v)
        elif t == 10:
            y = _pad(x0, a, op["fattr"][0])
        elif t == 11:
            y = x0.reshape(out_shape)
        elif t == 12:
            y = x0
        elif t == 13:
            y = np.concatenate(xs, axis=a[0])
        elif t == 15:
            y = resize(x0, out_shape[0], out_shape[1], a[0])
        elif t == 16:
            y = x0[a[0]:a[0] + out_shape[0], a[1]:a[1] + out_shape[1]]
        elif t == 17:
            y = _grouped_conv(x0, xs[1], a, out_shape)
            if len(xs) > 2:
                y += xs[2]
        elif t == 18:
            mean = x0.mean(axis=-1, keepdims=True)
            var = ((x0 - mean) ** 2).mean(axis=-1, keepdims=True)
            y = (x0 - mean) / np.sqrt(var + op["fattr"][0]) * xs[1] + xs[2]
        elif t == 19:
            y = _conv_transpose(x0, xs[1], a, out_shape)
            if len(xs) > 2:
                y += xs[2]
        else:
            raise ValueError(t)
        y = activation(op["act"], op["alpha"], op["max"], y)
        vals[op["output"]] = y.reshape(out_shape)
    idx = m.output if which == "output" else m.logits
    return vals[idx]


# ---- helpers shared by the parity tests (the `morsel` CLI and Keras side) --------------------

def morsel_bin():
    """The built CLI from $MORSEL_BIN; a missing binary is a failure, never a skip."""
    import os
    p = os.environ.get("MORSEL_BIN", "")
    if not p or not os.path.isfile(p) or not os.access(p, os.X_OK):
        raise SystemExit(f"FAIL: MORSEL_BIN={p!r} is not an executable morsel CLI (build the C "
                         "engine first; ctest sets MORSEL_BIN)")
    return p


def morsel_run(binary, model_path, x, logits=False, tmpdir=None):
    """`morsel run MODEL IN.f32 OUT.f32 [--logits]` on one input; returns the float32 output."""
    import os
    import subprocess
    import tempfile
    d = tmpdir or tempfile.mkdtemp(prefix="morsel_run_")
    fin, fout = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
    np.ascontiguousarray(x, dtype="<f4").tofile(fin)
    if os.path.exists(fout):
        os.remove(fout)
    cmd = [binary, "run", model_path, fin, fout] + (["--logits"] if logits else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return np.fromfile(fout, dtype="<f4")


def morsel_verify(binary, model_path):
    import subprocess
    r = subprocess.run([binary, "verify", model_path], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def last_leaf_layer(model):
    """The last layer in model order, descending into nested models."""
    layer = model.layers[-1]
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    return layer


def keras_outputs(model, x, linear_module):
    """(probabilities, logits) from Keras for a batch x: the logits by calling the model with
    the final layer's activation temporarily set to linear."""
    probs = np.asarray(model(x, training=False), dtype=np.float64)
    last = last_leaf_layer(model)
    saved = last.activation
    try:
        last.activation = linear_module
        logits = np.asarray(model(x, training=False), dtype=np.float64)
    finally:
        last.activation = saved
    return probs, logits


class Agreement:
    """Accumulates max |Δprob|, max logits relative error and top-1 agreement, and keeps Morsel's
    outputs to judge two things a distance cannot: every value is finite (max(0.0, nan) is 0.0,
    so a NaN would otherwise pass), and the outputs depend on the input (a network that ignores
    its input agrees with Keras trivially)."""

    # Across the inputs, a probability (or a logit, relative to the largest) must move by this
    # much somewhere, or the top-1 change: 100x the 1e-5 parity bound, so the agreement is about
    # the input, not a constant.
    MIN_SPREAD = 1e-3

    def __init__(self, name):
        self.name = name
        self.dprob = 0.0
        self.rel = 0.0
        self.top1 = 0
        self.n = 0
        self.nonfinite = 0
        self._probs = []
        self._logits = []

    def add(self, probs, logits, ref_probs, ref_logits):
        probs = np.asarray(probs, np.float64).reshape(-1)
        ref_probs = np.asarray(ref_probs, np.float64).reshape(-1)
        finite = bool(np.isfinite(probs).all())
        self._probs.append(probs)
        self.dprob = max(self.dprob, float(np.abs(probs - ref_probs).max()))
        if logits is not None:
            logits = np.asarray(logits, np.float64).reshape(-1)
            ref_logits = np.asarray(ref_logits, np.float64).reshape(-1)
            finite = finite and bool(np.isfinite(logits).all())
            self._logits.append(logits)
            self.rel = max(self.rel, float(np.abs(logits - ref_logits).max()
                                           / max(np.abs(ref_logits).max(), 1e-30)))
        if not finite:
            self.nonfinite += 1
            self.dprob = self.rel = math.inf
        self.top1 += int(np.argmax(probs) == np.argmax(ref_probs))
        self.n += 1

    @property
    def spread(self):
        """(distinct top-1s, largest range of one probability, largest range of one logit
        relative to the largest |logit|) across the inputs so far."""
        if not self._probs:
            return 0, 0.0, 0.0
        p = np.stack(self._probs)
        top = len(set(np.argmax(p, axis=-1).tolist())) if p.shape[-1] > 1 else 1
        lrel = 0.0
        if len(self._logits) == len(self._probs):
            lg = np.nan_to_num(np.stack(self._logits), nan=0.0, posinf=0.0, neginf=0.0)
            lrel = float((lg.max(axis=0) - lg.min(axis=0)).max() / max(np.abs(lg).max(), 1e-30))
        return top, float(np.nan_to_num(p.max(axis=0) - p.min(axis=0), nan=0.0).max()), lrel

    @property
    def input_dependent(self):
        top, rng, lrel = self.spread
        return self.n < 2 or top > 1 or rng >= self.MIN_SPREAD or lrel >= self.MIN_SPREAD

    def problems(self):
        """What fails the row beyond the distances: non-finite values, input independence."""
        out = []
        if self.nonfinite:
            out.append(f"{self.nonfinite}/{self.n} outputs not finite")
        if not self.input_dependent:
            top, rng, lrel = self.spread
            out.append(f"outputs do not depend on the input ({top} distinct top-1, "
                       f"probabilities move by at most {rng:.1e}, logits by {lrel:.1e} of their "
                       f"largest across {self.n} inputs)")
        return out

    def ok(self, tol=1e-5):
        return (self.dprob <= tol and self.rel <= tol and self.top1 == self.n
                and not self.problems())


def print_table(rows, tol=1e-5):
    print(f"{'format':<34} {'max|Δprob|':>12} {'logits rel.err':>15} {'top-1':>7}  verdict")
    for r in rows:
        print(f"{r.name:<34} {r.dprob:12.3e} {r.rel:15.3e} {r.top1:>3}/{r.n:<3}  "
              f"{'ok' if r.ok(tol) else 'FAIL'}")
        for p in r.problems():
            print(f"    ^ {p}")
