#!/usr/bin/env python3
"""Writes the image fixtures test_image.c checks Morsel against, with Pillow as the oracle.

usage: gen_image_fixtures.py OUTDIR

OUTDIR/manifest.txt, one case a line (whitespace separated, names without spaces):
  decode  NAME FILE W H REF            Pillow's Image.open(FILE).convert('RGB') pixels in REF
  corrupt NAME FILE EXPECT             Pillow refuses FILE; Morsel must fail with EXPECT
                                       (image | limit)
  resize  NAME SRC SW SH FILTER CROP DW DH REF
                                       SRC: raw RGB source (SW x SH). REF: Pillow's
                                       resize((DW, DH), FILTER) (CROP 0) or
                                       ImageOps.fit(src, (DW, DH), FILTER) (CROP 1)
  e2e     NAME FILE FILTER CROP DW DH REF
                                       the whole path: open + convert('RGB') + resize/fit
Raw RGB files (.rgb) are rows of W*3 bytes, no header.

Encoded PNG variants Pillow cannot write (1/2/4-bit grey, 16-bit colour, interlaced, tRNS on
grey/RGB, ...) are produced by a small PNG writer below; the reference is still what Pillow
decodes from them.
"""
import io
import os
import struct
import sys
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}

# convert('RGB') of a palette image with tRNS bytes is exactly what is being tested
warnings.filterwarnings("ignore", message="Palette images with Transparency")

rng = np.random.default_rng(20240611)
out_dir = None
manifest = []


def die(msg):
    print(f"gen_image_fixtures: {msg}", file=sys.stderr)
    sys.exit(1)


def write(name, data):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)


def pillow_rgb(data):
    """Pillow's decode, or the exception it raises."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB"), None
    except Exception as e:  # noqa: BLE001 - any failure is "Pillow refuses it"
        return None, e


def add_decode(name, ext, data):
    im, e = pillow_rgb(data)
    if im is None:
        die(f"Pillow cannot decode fixture {name}: {e!r}")
    fname = f"dec_{name}.{ext}"
    write(fname, data)
    write(f"dec_{name}.rgb", np.asarray(im, dtype=np.uint8).tobytes())
    manifest.append(f"decode {name} {fname} {im.width} {im.height} dec_{name}.rgb")


def add_corrupt(name, ext, data, expect="image", morsel_rule=False):
    """If Pillow still decodes the damaged file, it becomes a decode case (Morsel must then give
    the same pixels); otherwise Morsel must fail with `expect`. morsel_rule: a limit of Morsel's
    own that Pillow does not have -- always a corrupt case."""
    im, e = pillow_rgb(data) if not morsel_rule else (None, None)
    if im is not None:
        add_decode(name, ext, data)
        return
    fname = f"bad_{name}.{ext}"
    write(fname, data)
    manifest.append(f"corrupt {name} {fname} {expect}")


# ---- content ------------------------------------------------------------------------------

def smooth_noise(h, w, c, noise=40):
    """Random but image-like: a smooth random field plus noise (JPEG-friendly yet not constant)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((h, w, c))
    for ch in range(c):
        fx, fy, ph = rng.uniform(0.01, 0.2), rng.uniform(0.01, 0.2), rng.uniform(0, 6.3)
        out[..., ch] = 128 + 90 * np.sin(xx * fx + ph) * np.cos(yy * fy - ph)
    out += rng.normal(0, noise, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def noise(h, w, c=None, hi=256, dtype=np.uint8):
    shape = (h, w) if c is None else (h, w, c)
    return rng.integers(0, hi, shape, dtype=np.int64).astype(dtype)


# ---- a small PNG writer (all filters, Adam7, any colour type / bit depth) -------------------

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(tag, data):
    return (struct.pack(">I", len(data)) + tag + data +
            struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def pack_row(row, bit_depth):
    """row: 1-D array of samples."""
    if bit_depth == 16:
        return row.astype(">u2").tobytes()
    if bit_depth == 8:
        return row.astype(np.uint8).tobytes()
    per = 8 // bit_depth
    vals = list(row.astype(np.int64))
    out = bytearray()
    for i in range(0, len(vals), per):
        byte = 0
        group = vals[i:i + per]
        for j in range(per):
            v = group[j] if j < len(group) else 0
            byte |= v << (8 - bit_depth * (j + 1))
        out.append(byte)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ftype, cur, prev, bpp):
    out = bytearray([ftype])
    for i, x in enumerate(cur):
        a = cur[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = (0, a, b, (a + b) // 2, paeth(a, b, c))[ftype]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def encode_png(samples, color_type, bit_depth, interlace=False, palette=None, trns=None,
               idat_split=997):
    """samples: (h, w) or (h, w, channels) integer array."""
    h, w = samples.shape[:2]
    ch = CHANNELS[color_type]
    flat = samples.reshape(h, w, ch)
    bpp = max(1, ch * bit_depth // 8)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    ftype = 0
    for x0, y0, dx, dy in passes:
        sub = flat[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(len(pack_row(sub[0].reshape(-1), bit_depth)))
        for r in sub:
            cur = pack_row(r.reshape(-1), bit_depth)
            raw += filter_row(ftype, cur, prev, bpp)
            ftype = (ftype + 1) % 5
            prev = cur
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                      1 if interlace else 0))
    if palette is not None:
        body += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        body += chunk(b"tRNS", trns)
    z = zlib.compress(bytes(raw), 6)
    for i in range(0, len(z), idat_split):
        body += chunk(b"IDAT", z[i:i + idat_split])
    body += chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def pillow_png(im, **kw):
    b = io.BytesIO()
    im.save(b, "PNG", **kw)
    return b.getvalue()


def pillow_jpeg(im, **kw):
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


# ---- decode fixtures ------------------------------------------------------------------------

def gen_png():
    sizes = [(1, 1), (3, 5), (37, 23), (64, 17)]  # (w, h)
    for w, h in sizes:
        tag = f"{w}x{h}"
        for bd in (1, 2, 4, 8):
            add_decode(f"png_gray{bd}_{tag}", "png", encode_png(noise(h, w, hi=1 << bd), 0, bd))
        # 16-bit grey: half the values below 256, so Pillow's clip rule is exercised both ways.
        g16 = noise(h, w, hi=65536, dtype=np.uint16)
        g16[::2] = noise((h + 1) // 2, w, hi=256, dtype=np.uint16)
        add_decode(f"png_gray16_{tag}", "png", encode_png(g16, 0, 16))
        add_decode(f"png_ga8_{tag}", "png", encode_png(noise(h, w, 2), 4, 8))
        add_decode(f"png_ga16_{tag}", "png", encode_png(noise(h, w, 2, 65536), 4, 16))
        add_decode(f"png_rgb8_{tag}", "png", encode_png(noise(h, w, 3), 2, 8))
        add_decode(f"png_rgb16_{tag}", "png", encode_png(noise(h, w, 3, 65536), 2, 16))
        add_decode(f"png_rgba8_{tag}", "png", encode_png(noise(h, w, 4), 6, 8))
        add_decode(f"png_rgba16_{tag}", "png", encode_png(noise(h, w, 4, 65536), 6, 16))
        for bd in (1, 2, 4, 8):
            n = 1 << bd
            pal = noise(n, 1, 3)
            idx = noise(h, w, hi=n)
            add_decode(f"png_pal{bd}_{tag}", "png", encode_png(idx, 3, bd, palette=pal))
            trns = bytes(noise(1, n, hi=256).reshape(-1)[: max(1, n // 2)])
            add_decode(f"png_pal{bd}_trns_{tag}", "png",
                       encode_png(idx, 3, bd, palette=pal, trns=trns))
        add_decode(f"png_gray8_trns_{tag}", "png",
                   encode_png(noise(h, w), 0, 8, trns=struct.pack(">H", 7)))
        add_decode(f"png_rgb8_trns_{tag}", "png",
                   encode_png(noise(h, w, 3), 2, 8, trns=struct.pack(">HHH", 1, 2, 3)))
        # Pillow's own encoder too
        add_decode(f"pil_L_{tag}", "png", pillow_png(Image.fromarray(noise(h, w))))
        add_decode(f"pil_RGB_{tag}", "png", pillow_png(Image.fromarray(noise(h, w, 3))))
        add_decode(f"pil_RGBA_{tag}", "png", pillow_png(Image.fromarray(noise(h, w, 4))))
        add_decode(f"pil_LA_{tag}", "png",
                   pillow_png(Image.fromarray(noise(h, w, 2), mode="LA")))
        add_decode(f"pil_1_{tag}", "png",
                   pillow_png(Image.fromarray(noise(h, w, hi=2).astype(bool))))
        add_decode(f"pil_I16_{tag}", "png",
                   pillow_png(Image.fromarray(noise(h, w, hi=1024, dtype=np.uint16))))
        p = Image.fromarray(noise(h, w, 3)).quantize(colors=200)
        add_decode(f"pil_P_{tag}", "png", pillow_png(p))
        add_decode(f"pil_P_trns_{tag}", "png", pillow_png(p, transparency=3))
    # interlaced (Adam7), sizes that leave some passes empty or partial
    for w, h in [(1, 1), (3, 5), (7, 9), (37, 23), (64, 17)]:
        tag = f"{w}x{h}"
        add_decode(f"png_i_gray1_{tag}", "png", encode_png(noise(h, w, hi=2), 0, 1, True))
        add_decode(f"png_i_gray4_{tag}", "png", encode_png(noise(h, w, hi=16), 0, 4, True))
        add_decode(f"png_i_gray8_{tag}", "png", encode_png(noise(h, w), 0, 8, True))
        add_decode(f"png_i_gray16_{tag}", "png",
                   encode_png(noise(h, w, hi=512, dtype=np.uint16), 0, 16, True))
        add_decode(f"png_i_ga8_{tag}", "png", encode_png(noise(h, w, 2), 4, 8, True))
        add_decode(f"png_i_rgb8_{tag}", "png", encode_png(noise(h, w, 3), 2, 8, True))
        add_decode(f"png_i_rgb16_{tag}", "png", encode_png(noise(h, w, 3, 65536), 2, 16, True))
        add_decode(f"png_i_rgba16_{tag}", "png", encode_png(noise(h, w, 4, 65536), 6, 16, True))
        pal = noise(16, 1, 3)
        add_decode(f"png_i_pal4_{tag}", "png",
                   encode_png(noise(h, w, hi=16), 3, 4, True, palette=pal))
    # tRNS on 16-bit images, IDAT split into 1-byte chunks, an empty IDAT chunk
    add_decode("png_gray16_trns", "png",
               encode_png(noise(9, 13, hi=65536, dtype=np.uint16), 0, 16,
                          trns=struct.pack(">H", 300)))
    add_decode("png_rgb16_trns", "png",
               encode_png(noise(9, 13, 3, 65536), 2, 16, trns=struct.pack(">HHH", 1, 2, 3)))
    add_decode("png_idat1", "png", encode_png(noise(7, 5, 3), 2, 8, idat_split=1))
    data = encode_png(noise(7, 5, 3), 2, 8)
    at = data.find(b"IDAT") - 4
    add_decode("png_empty_idat", "png", data[:at] + chunk(b"IDAT", b"") + data[at:])
    # a palette shorter than the indices used (Pillow: black)
    idx = noise(9, 11, hi=16)
    add_decode("png_pal_short", "png", encode_png(idx, 3, 4, palette=noise(5, 1, 3)))
    # bigger ones
    big = smooth_noise(481, 640, 3)
    add_decode("png_rgb8_640x481", "png", encode_png(big, 2, 8))
    add_decode("png_i_rgba8_640x481", "png",
               encode_png(np.dstack([big, noise(481, 640)]), 6, 8, True))
    add_decode("pil_RGB_640x481", "png", pillow_png(Image.fromarray(big)))


def gen_jpeg():
    sizes = [(1, 1), (3, 5), (8, 8), (16, 16), (17, 15), (37, 23), (640, 481)]
    for w, h in sizes:
        tag = f"{w}x{h}"
        rgb = Image.fromarray(smooth_noise(h, w, 3))
        add_decode(f"jpg_420_{tag}", "jpg", pillow_jpeg(rgb, quality=90))
        add_decode(f"jpg_444_{tag}", "jpg", pillow_jpeg(rgb, quality=95, subsampling=0))
        add_decode(f"jpg_422_{tag}", "jpg", pillow_jpeg(rgb, quality=85, subsampling=1))
        add_decode(f"jpg_prog_{tag}", "jpg", pillow_jpeg(rgb, quality=80, progressive=True))
        add_decode(f"jpg_prog444_{tag}", "jpg",
                   pillow_jpeg(rgb, quality=80, progressive=True, subsampling=0))
        add_decode(f"jpg_opt_{tag}", "jpg", pillow_jpeg(rgb, quality=75, optimize=True))
        add_decode(f"jpg_gray_{tag}", "jpg",
                   pillow_jpeg(Image.fromarray(smooth_noise(h, w, 1)[..., 0]), quality=90))
        add_decode(f"jpg_grayprog_{tag}", "jpg",
                   pillow_jpeg(Image.fromarray(smooth_noise(h, w, 1)[..., 0]), quality=90,
                               progressive=True))
        cmyk = Image.fromarray(smooth_noise(h, w, 4), mode="CMYK")
        add_decode(f"jpg_cmyk_{tag}", "jpg", pillow_jpeg(cmyk, quality=90))
        add_decode(f"jpg_q20_{tag}", "jpg", pillow_jpeg(rgb, quality=20))
        add_decode(f"jpg_rst_{tag}", "jpg", pillow_jpeg(rgb, quality=90, restart_marker_blocks=2))
    shared = os.environ.get("MORSEL_SHARED", "/work/shared")
    for fn in ("noodles.jpg", "test_image.jpeg"):
        p = os.path.join(shared, "images", "seed", fn)
        if not os.path.isfile(p):
            die(f"missing real photo {p} (set MORSEL_SHARED)")
        with open(p, "rb") as f:
            add_decode("photo_" + fn.split(".")[0], "jpg", f.read())


# ---- corrupt inputs -------------------------------------------------------------------------

def gen_corrupt():
    rgb = Image.fromarray(smooth_noise(481, 640, 3))
    base = pillow_jpeg(rgb, quality=90)
    prog = pillow_jpeg(rgb, quality=90, progressive=True)
    small_rgb = Image.fromarray(smooth_noise(150, 200, 3))
    png = pillow_png(small_rgb)
    ipng = encode_png(np.asarray(small_rgb), 2, 8, True)
    with open(os.path.join(os.environ.get("MORSEL_SHARED", "/work/shared"), "images", "seed",
                           "noodles.jpg"), "rb") as f:
        photo = f.read()
    for name, data, ext in (("jpg", base, "jpg"), ("prog", prog, "jpg"), ("photo", photo, "jpg"),
                            ("png", png, "png"), ("ipng", ipng, "png")):
        n = len(data)
        for cut in sorted({2, 3, 8, 20, 33, 100, 400, n // 4, n // 2, 3 * n // 4, n - 100,
                           n - 13, n - 12, n - 2, n - 1}):
            add_corrupt(f"{name}_cut{cut}", ext, data[:cut])
    # damaged bodies
    b = bytearray(base)
    b[len(b) // 2: len(b) // 2 + 64] = bytes(rng.integers(0, 256, 64, dtype=np.uint8))
    add_corrupt("jpg_garbled", "jpg", bytes(b))
    b = bytearray(png)
    b[len(b) // 2] ^= 0xFF  # IDAT payload: CRC mismatch
    add_corrupt("png_badcrc", "png", bytes(b))
    z = zlib.compress(b"\x00" * 100)
    bad_ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0))
    bad_ihdr = bad_ihdr[:-4] + b"\0\0\0\0"
    add_corrupt("png_badihdrcrc", "png",
                b"\x89PNG\r\n\x1a\n" + bad_ihdr + chunk(b"IDAT", z) + chunk(b"IEND", b""))
    add_corrupt("png_badzlib", "png",
                b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0,
                                                                  0, 0)) +
                chunk(b"IDAT", b"\x78\x9c" + bytes(rng.integers(0, 256, 200, dtype=np.uint8))) +
                chunk(b"IEND", b""))
    add_corrupt("png_short_idat", "png",
                b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0,
                                                                  0, 0)) +
                chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    add_corrupt("png_badtype", "png",
                b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 5, 0,
                                                                  0, 0)) +
                chunk(b"IDAT", z) + chunk(b"IEND", b""))
    # decompression bombs: valid headers, absurd sizes
    add_corrupt("png_bomb", "png",
                b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8,
                                                                  2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""), "limit")
    small = bytearray(pillow_jpeg(Image.fromarray(smooth_noise(16, 16, 3)), quality=90))
    sof = small.find(b"\xff\xc0")
    if sof < 0:
        die("no SOF0 in the small JPEG")
    small[sof + 5: sof + 9] = struct.pack(">HH", 65000, 65000)
    add_corrupt("jpg_bomb", "jpg", bytes(small), "limit")
    # a progressive JPEG whose first scan is repeated 1100 times: libjpeg only warns about the
    # bogus progression; Morsel's scan limit (1000) refuses it as a CPU bomb
    sp = pillow_jpeg(Image.fromarray(smooth_noise(16, 16, 3)), quality=90, progressive=True)
    sos = sp.find(b"\xff\xda")
    end = sos + 2 + struct.unpack(">H", sp[sos + 2:sos + 4])[0]
    while not (sp[end] == 0xFF and sp[end + 1] not in (0x00, *range(0xD0, 0xD8))):
        end += 1
    add_corrupt("jpg_scanbomb", "jpg", sp[:sos] + sp[sos:end] * 1100 + sp[sos:], "image",
                morsel_rule=True)
    # not images at all
    add_corrupt("empty", "bin", b"")
    add_corrupt("random", "bin", bytes(rng.integers(0, 256, 1000, dtype=np.uint8)))
    add_corrupt("random_jpgmagic", "jpg",
                b"\xff\xd8\xff" + bytes(rng.integers(0, 256, 1000, dtype=np.uint8)))
    add_corrupt("random_pngmagic", "png",
                b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 1000, dtype=np.uint8)))
    add_corrupt("gif", "gif", b"GIF89a" + b"\0" * 30)
    add_corrupt("jpg_magic_only", "jpg", b"\xff\xd8\xff")


# ---- resize references ----------------------------------------------------------------------

def gen_resize():
    shared = os.environ.get("MORSEL_SHARED", "/work/shared")
    sources = {
        "noise320x241": Image.fromarray(noise(241, 320, 3)),
        "smooth320x240": Image.fromarray(smooth_noise(240, 320, 3)),
        "up50x40": Image.fromarray(noise(40, 50, 3)),
        "tall37x90": Image.fromarray(noise(90, 37, 3)),
        "tiny3x5": Image.fromarray(noise(5, 3, 3)),
        "one1x1": Image.fromarray(noise(1, 1, 3)),
        # wide/tall enough that the horizontal weights come in several blocks
        "wide12000x4": Image.fromarray(noise(4, 12000, 3)),
        "tall5x9000": Image.fromarray(noise(9000, 5, 3)),
    }
    for fn in ("noodles.jpg", "test_image.jpeg"):
        p = os.path.join(shared, "images", "seed", fn)
        if not os.path.isfile(p):
            die(f"missing real photo {p} (set MORSEL_SHARED)")
        with Image.open(p) as im:
            sources["photo_" + fn.split(".")[0]] = im.convert("RGB")
    targets = {
        # same size (a copy), vertical-first orders, one axis only
        "noise320x241": [(224, 224), (96, 96), (160, 120), (320, 241), (321, 150),
                         (300, 50), (50, 241), (320, 100)],
        # (240, 240) fit: integral box of the output size -> Pillow's crop path
        "smooth320x240": [(224, 224), (240, 240), (160, 120), (320, 240)],
        "up50x40": [(224, 224), (50, 40), (100, 80)],
        "tall37x90": [(224, 224), (37, 37), (20, 50)],
        "tiny3x5": [(1, 1), (224, 224), (2, 7)],
        "one1x1": [(224, 224), (1, 1), (1, 5)],
        "wide12000x4": [(224, 2), (300, 4), (1000, 3)],
        "tall5x9000": [(2, 224), (5, 300)],
        "photo_noodles": [(224, 224), (96, 96), (299, 299), (160, 120)],
        "photo_test_image": [(224, 224), (96, 96), (128, 96), (224, 60), (7, 3)],
    }
    for sname, im in sources.items():
        src = f"src_{sname}.rgb"
        write(src, np.asarray(im, dtype=np.uint8).tobytes())
        for dw, dh in targets[sname]:
            for fname, f in FILTERS.items():
                for crop in (0, 1):
                    out = (ImageOps.fit(im, (dw, dh), f) if crop else im.resize((dw, dh), f))
                    ref = f"rs_{sname}_{dw}x{dh}_{fname}_{crop}.rgb"
                    write(ref, np.asarray(out.convert("RGB"), dtype=np.uint8).tobytes())
                    manifest.append(f"resize {sname}_{dw}x{dh}_{fname}_{crop} {src} {im.width} "
                                    f"{im.height} {fname} {crop} {dw} {dh} {ref}")


def gen_e2e():
    shared = os.environ.get("MORSEL_SHARED", "/work/shared")
    files = []
    for fn in ("noodles.jpg", "test_image.jpeg"):
        files.append((fn.split(".")[0], os.path.join(shared, "images", "seed", fn)))
    for name, path in files:
        with open(path, "rb") as f:
            data = f.read()
        fname = f"e2e_{name}.jpg"
        write(fname, data)
        for fil, crop, dw, dh in (("bilinear", 0, 224, 224), ("bicubic", 1, 224, 224),
                                  ("lanczos", 1, 96, 96), ("nearest", 0, 224, 224)):
            with Image.open(io.BytesIO(data)) as im:
                im = im.convert("RGB")
                out = (ImageOps.fit(im, (dw, dh), FILTERS[fil]) if crop
                       else im.resize((dw, dh), FILTERS[fil]))
            ref = f"e2e_{name}_{fil}_{crop}_{dw}x{dh}.rgb"
            write(ref, np.asarray(out, dtype=np.uint8).tobytes())
            manifest.append(f"e2e {name}_{fil}_{crop}_{dw}x{dh} {fname} {fil} {crop} {dw} {dh} "
                            f"{ref}")


def main():
    global out_dir
    if len(sys.argv) != 2:
        die("usage: gen_image_fixtures.py OUTDIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    gen_png()
    gen_jpeg()
    gen_corrupt()
    gen_resize()
    gen_e2e()
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    kinds = {}
    for line in manifest:
        kinds[line.split()[0]] = kinds.get(line.split()[0], 0) + 1
    print(f"gen_image_fixtures: {len(manifest)} cases in {out_dir} "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
