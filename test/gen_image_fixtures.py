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
  decodeopt NAME FILE EXIF FAST TW TH W H REF
                                       decode with morsel_decode_options {exif_orientation
                                       EXIF, jpeg_fast_scale FAST} for a TW x TH target. REF:
                                       EXIF 1: ImageOps.exif_transpose(im).convert('RGB') (plain
                                       convert('RGB') when Pillow raises on the EXIF); FAST 1:
                                       after im.draft('RGB', target in stored orientation)
  exifblock NAME FILE EXPECT           an Exif APP1 payload; EXPECT: the orientation Pillow's
                                       Exif().load() reports (-1: it raises; 0: no tag; 1: a tag
                                       exif_transpose does nothing for; 2..8)
  bench   NAME FILE TW TH              a big JPEG: decode+preprocess timed plain and fast
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
# the malformed EXIF blocks are made on purpose
warnings.filterwarnings("ignore", category=UserWarning, module="PIL.TiffImagePlugin")

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


# ---- EXIF orientation, JPEG DCT scaling (decode options), timing ----------------------------

TIFF_FMT = {1: "B", 3: "H", 4: "I", 5: "II", 6: "b", 8: "h", 9: "i", 10: "ii", 11: "f",
            12: "d", 13: "I", 16: "Q"}
ORIENT = 0x0112
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
             6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}


def exif_payload(entries, big=False, header=None, ifd_offset=8, count=None, cut=None,
                 prefix=b"Exif\0\0"):
    """An Exif APP1 payload: prefix + TIFF header + IFD0 with entries [(tag, type, values)]
    (values: a list of numbers / (num, den) pairs, or bytes for ASCII/UNDEFINED) or raw
    (tag, type, count, offset); values longer than 4 bytes go after the IFD. count overrides the
    entry count; cut truncates the payload."""
    e = ">" if big else "<"
    ifd_end = ifd_offset + 2 + 12 * len(entries) + 4
    ifd = struct.pack(e + "H", len(entries) if count is None else count)
    extra = b""
    for entry in entries:
        if len(entry) == 4:  # raw: (tag, type, count, offset or inline value)
            ifd += struct.pack(e + "HHII", *entry)
            continue
        tag, typ, vals = entry
        if isinstance(vals, bytes):
            raw, cnt = vals, len(vals)
        else:
            fmt = TIFF_FMT[typ]
            raw = b"".join(struct.pack(e + fmt, *(v if isinstance(v, tuple) else (v,)))
                           for v in vals)
            cnt = len(vals)
        if len(raw) <= 4:
            ifd += struct.pack(e + "HHI", tag, typ, cnt) + raw.ljust(4, b"\0")
        else:
            ifd += struct.pack(e + "HHII", tag, typ, cnt, ifd_end + len(extra))
            extra += raw
    ifd += struct.pack(e + "I", 0)
    if header is None:
        header = (b"MM\0*" if big else b"II*\0") + struct.pack(e + "I", ifd_offset)
    data = prefix + header + b"\0" * (ifd_offset - 8) + ifd + extra
    return data if cut is None else data[:cut]


def with_app1(jpeg, *payloads):
    """The JPEG with APP1 segments inserted after SOI (and after a leading JFIF APP0)."""
    at = 2
    if jpeg[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", jpeg[4:6])[0]
    segs = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in payloads)
    return jpeg[:at] + segs + jpeg[at:]


def xmp_payload(text):
    return b"http://ns.adobe.com/xap/1.0/\0" + text.encode()


def pillow_orientation_of_block(blob):
    """-1: Pillow cannot read the block; 0: no Orientation tag; 1: one exif_transpose ignores;
    2..8: the transpose it applies."""
    e = Image.Exif()
    try:
        e.load(blob)
    except Exception:  # noqa: BLE001 - Pillow cannot read it: Morsel ignores it
        return -1
    if ORIENT not in e:
        return 0
    return {k: k for k in range(1, 9)}.get(e.get(ORIENT), 1)


def pillow_decode_opt(data, exif, fast, tw, th):
    """(RGB image, note) the way decode options define it, with Pillow."""
    note = ""
    with Image.open(io.BytesIO(data)) as im:
        if fast:
            o = 1
            if exif:
                try:
                    o = {k: k for k in range(1, 9)}.get(im.getexif().get(ORIENT, 1), 1)
                except Exception:  # noqa: BLE001
                    o = 1
            im.draft("RGB", (th, tw) if o >= 5 else (tw, th))
        if exif:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    im = ImageOps.exif_transpose(im)
            except Exception as ex:  # noqa: BLE001
                # exif_transpose can fail after transposing, when it rewrites odd metadata: the
                # reference is then the transpose it computed (Morsel has no metadata to write)
                note = f"Pillow raised {type(ex).__name__}"
                try:
                    method = TRANSPOSE.get(im.getexif().get(ORIENT, 1))
                except Exception:  # noqa: BLE001
                    method = None
                if method is not None:
                    im = im.transpose(method)
                    note += f" after transposing ({method.name})"
        return im.convert("RGB"), note


def add_decodeopt(name, data, exif, fast, tw=0, th=0, write_file=True):
    im, note = pillow_decode_opt(data, exif, fast, tw, th)
    fname = f"opt_{name}.jpg"
    if write_file:
        write(fname, data)
    ref = f"opt_{name}_{exif}{fast}_{tw}x{th}.rgb"
    write(ref, np.asarray(im, dtype=np.uint8).tobytes())
    manifest.append(f"decodeopt {name}_e{exif}f{fast}_{tw}x{th} {fname} {exif} {fast} {tw} {th} "
                    f"{im.width} {im.height} {ref}")
    return note


def add_exif_case(name, data):
    """Decoded with EXIF applied and ignored."""
    add_decodeopt(name, data, 1, 0)
    add_decodeopt(name, data, 0, 0, write_file=False)


def gen_exif():
    base = pillow_jpeg(Image.fromarray(smooth_noise(35, 61, 3)), quality=90)
    for o in range(1, 9):
        im = Image.open(io.BytesIO(base))
        ex = Image.Exif()
        ex[ORIENT] = o
        b = io.BytesIO()
        im.save(b, "JPEG", quality=90, exif=ex)
        add_exif_case(f"exif_pil_o{o}", b.getvalue())
        for big in (False, True):
            entries = [(0x010F, 2, b"Morsel\0"), (ORIENT, 3, [o]), (0x011A, 5, [(72, 1)])]
            add_exif_case(f"exif_{'mm' if big else 'ii'}_o{o}",
                          with_app1(base, exif_payload(entries, big)))
    # other JPEG kinds, rotated
    big = Image.fromarray(smooth_noise(481, 640, 3))
    small = Image.fromarray(smooth_noise(23, 37, 3))
    kinds = [
        ("420_640x481_o6", pillow_jpeg(big, quality=90), 6),
        ("420_640x481_o7", pillow_jpeg(big, quality=90), 7),
        ("prog_640x481_o5", pillow_jpeg(big, quality=85, progressive=True), 5),
        ("gray_37x23_o8", pillow_jpeg(Image.fromarray(smooth_noise(23, 37, 1)[..., 0])), 8),
        ("cmyk_37x23_o6", pillow_jpeg(Image.fromarray(smooth_noise(23, 37, 4), mode="CMYK")), 6),
        ("422_37x23_o3", pillow_jpeg(small, quality=90, subsampling=1), 3),
        ("444_37x23_o2", pillow_jpeg(small, quality=90, subsampling=0), 2),
        ("420_1x1_o6", pillow_jpeg(Image.fromarray(noise(1, 1, 3))), 6),
        ("420_1x5_o8", pillow_jpeg(Image.fromarray(noise(5, 1, 3))), 8),
    ]
    for name, jpg, o in kinds:
        add_exif_case(f"exif_{name}", with_app1(jpg, exif_payload([(ORIENT, 3, [o])], o % 2 == 0)))
    # value types and odd entries: Pillow's reading is the reference
    typed = {
        "long6": [(ORIENT, 4, [6])], "sshort8": [(ORIENT, 8, [8])], "slong5": [(ORIENT, 9, [5])],
        "sbyte7": [(ORIENT, 6, [7])], "byte6": [(ORIENT, 1, [6])],
        "undef6": [(ORIENT, 7, b"\x06")], "ascii6": [(ORIENT, 2, b"6\0")],
        "rational6": [(ORIENT, 5, [(12, 2)])], "srational7": [(ORIENT, 10, [(-14, -2)])],
        "rational_nan": [(ORIENT, 5, [(6, 0)])], "rational_frac": [(ORIENT, 5, [(13, 2)])],
        "float6": [(ORIENT, 11, [6.0])], "double8": [(ORIENT, 12, [8.0])],
        "long8_3": [(ORIENT, 16, [3])], "ifd_type6": [(ORIENT, 13, [6])],
        "count2": [(ORIENT, 3, [6, 3])], "count3_outofline": [(ORIENT, 3, [5, 1, 1])],
        "count0": [(ORIENT, 3, [])], "unknown_type": [(ORIENT, 99, b"\x06\0\0\0")],
        "dup_first_wins": [(ORIENT, 3, [3]), (ORIENT, 3, [6])],
        "dup_after_unknown": [(ORIENT, 99, b"\x08\0\0\0"), (ORIENT, 3, [6])],
        "o0": [(ORIENT, 3, [0])], "o9": [(ORIENT, 3, [9])], "o65535": [(ORIENT, 3, [65535])],
        "many_tags": [(0x010E, 2, b"a description that is long\0"), (0x010F, 2, b"Cam\0"),
                      (0x0110, 2, b"Model X\0"), (ORIENT, 3, [8]), (0x011A, 5, [(300, 1)]),
                      (0x011B, 5, [(300, 1)]), (0x0128, 3, [2]), (0x8769, 4, [0])],
        # the out-of-line budget: once the out-of-line bytes of the tags read so far exceed the
        # block (62 / 50 bytes here), Pillow skips further out-of-line values (all at offset 8)
        "budget_over": [(0x010D + i, 2, 24, 8) for i in range(3)] + [(ORIENT, 3, 3, 8)],
        "budget_ok": [(0x010D + i, 2, 20, 8) for i in range(2)] + [(ORIENT, 3, 3, 8)],
        # an out-of-line value past the end stops Pillow's IFD reading (entries before it stay)
        "stop_at_bad_offset": [(ORIENT, 3, [6]), (0x010E, 2, 30, 4000), (ORIENT + 1, 3, [3])],
        "stop_before_orient": [(0x010E, 2, 30, 4000), (ORIENT, 3, [6])],
    }
    blobs = {}
    for name, entries in typed.items():
        for big in (False, True):
            p = exif_payload(entries, big)
            blobs[f"{name}_{'mm' if big else 'ii'}"] = p
    # headers, offsets, truncation
    ok = [(ORIENT, 3, [6]), (0x011A, 5, [(72, 1)])]
    blobs.update({
        "hdr_bad": exif_payload(ok, header=b"XX*\0\x08\0\0\0"),
        "hdr_mm_swapped": exif_payload(ok, True, header=b"MM*\0\0\0\0\x08"),
        "hdr_ii_swapped": exif_payload(ok, header=b"II\0*\x08\0\0\0"),
        "hdr_bigtiff": exif_payload(ok, header=b"II+\0\x08\0\0\0"),
        "hdr_mm_bigtiff_magic": exif_payload(ok, True, header=b"MM\0+\0\0\0\x08"),
        "ifd_at_12": exif_payload(ok, ifd_offset=12),
        "ifd_past_end": exif_payload(ok, header=b"II*\0\xff\0\0\0"),
        "ifd_offset_max": exif_payload(ok, header=b"II*\0\xff\xff\xff\xff"),
        "ifd_at_end": exif_payload([], header=b"II*\0\x08\0\0\0", cut=6 + 8),
        "count_ffff": exif_payload(ok, count=0xFFFF),
        "cut_in_entry1": exif_payload(ok, cut=6 + 8 + 2 + 7),
        "cut_in_entry2": exif_payload(ok, cut=6 + 8 + 2 + 12 + 5),
        "cut_no_next": exif_payload(ok, cut=6 + 8 + 2 + 24),
        "cut_7": exif_payload(ok, cut=7),
        "cut_10": exif_payload(ok, cut=10),
        "cut_13": exif_payload(ok, cut=13),
        "empty": b"Exif\0\0",
        "double_prefix": b"Exif\0\0" + exif_payload(ok),
        "triple_prefix": b"Exif\0\0Exif\0\0" + exif_payload(ok),
        "outofline_past_end": exif_payload([(ORIENT, 3, [5, 1, 1])], cut=6 + 8 + 2 + 12 + 4 + 3),
    })
    for i in range(6):
        blobs[f"garbage{i}"] = b"Exif\0\0" + bytes(rng.integers(0, 256, 40 + 30 * i,
                                                                dtype=np.uint8))
        blobs[f"garbage_ifd{i}"] = (b"Exif\0\0" + (b"MM\0*\0\0\0\x08" if i % 2 else
                                                   b"II*\0\x08\0\0\0") +
                                    bytes(rng.integers(0, 256, 16 + 60 * i, dtype=np.uint8)))
    # differential: random byte mutations of well-formed blocks, Pillow's reading the reference
    for base_name in ("many_tags_ii", "many_tags_mm", "count3_outofline_mm", "budget_ok_ii"):
        base_blob = blobs[base_name]
        for i in range(50):
            m = bytearray(base_blob)
            for _ in range(int(rng.integers(1, 4))):
                # mostly the header and IFD (where the structure is), sometimes anywhere
                hi = len(m) if rng.random() < 0.2 else min(len(m), 6 + 8 + 2 + 12 * 5)
                m[int(rng.integers(6, hi))] = int(rng.integers(0, 256))
            blobs[f"mut_{base_name}_{i}"] = bytes(m)
    notes = []
    for name, blob in blobs.items():
        write(f"exif_{name}.bin", blob)
        manifest.append(f"exifblock {name} exif_{name}.bin {pillow_orientation_of_block(blob)}")
        note = add_decodeopt(f"exif_{name}", with_app1(base, blob), 1, 0)
        if note:
            notes.append(f"{name}: {note}")
    # several segments: Pillow concatenates the Exif ones and reads the last XMP one
    whole = exif_payload([(0x010F, 2, b"Morsel camera\0"), (ORIENT, 3, [7])])
    add_exif_case("exif_split2", with_app1(base, whole[:20], b"Exif\0\0" + whole[20:]))
    add_exif_case("exif_split3", with_app1(base, whole[:9], b"Exif\0\0" + whole[9:30],
                                           b"Exif\0\0" + whole[30:]))
    add_exif_case("xmp_attr6", with_app1(base, xmp_payload(
        '<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>')))
    add_exif_case("xmp_elem8", with_app1(base, xmp_payload(
        "<x:xmpmeta><tiff:Orientation>8</tiff:Orientation></x:xmpmeta>")))
    add_exif_case("xmp_digit0", with_app1(base, xmp_payload('tiff:Orientation="0"')))
    add_exif_case("xmp_nomatch_then5", with_app1(base, xmp_payload(
        'tiff:Orientation= tiff:Orientation="x" tiff:Orientation>5')))
    add_exif_case("xmp_last_wins", with_app1(base, xmp_payload('tiff:Orientation="6"'),
                                             xmp_payload('tiff:Orientation="3"')))
    add_exif_case("xmp_cut", with_app1(base, xmp_payload('tiff:Orientation="')))
    add_exif_case("exif_noorient_xmp5", with_app1(base, exif_payload([(0x010F, 2, b"Cam\0")]),
                                                  xmp_payload('tiff:Orientation="5"')))
    add_exif_case("exif_o1_xmp6", with_app1(base, exif_payload([(ORIENT, 3, [1])]),
                                            xmp_payload('tiff:Orientation="6"')))
    add_exif_case("exif_bad_xmp2", with_app1(base, blobs["hdr_bad"],
                                             xmp_payload('tiff:Orientation="2"')))
    if notes:
        print("gen_image_fixtures: Pillow's exif_transpose raised on: " + "; ".join(notes))


def gen_fast():
    """jpeg_fast_scale: the pixels of Pillow's im.draft('RGB', target) (same libjpeg scaling)."""
    big = Image.fromarray(smooth_noise(481, 640, 3))
    jpg = pillow_jpeg(big, quality=90)
    for tw, th in [(224, 224), (64, 64), (32, 32), (80, 60), (641, 481), (320, 240), (1, 1),
                   (300, 30)]:
        add_decodeopt("fast_420_640x481", jpg, 0, 1, tw, th, write_file=(tw, th) == (224, 224))
    for name, data in (
            ("444", pillow_jpeg(big, quality=95, subsampling=0)),
            ("422", pillow_jpeg(big, quality=85, subsampling=1)),
            ("prog", pillow_jpeg(big, quality=80, progressive=True)),
            ("gray", pillow_jpeg(Image.fromarray(smooth_noise(481, 640, 1)[..., 0]))),
            ("cmyk", pillow_jpeg(Image.fromarray(smooth_noise(481, 640, 4), mode="CMYK"))),
            ("odd_17x15", pillow_jpeg(Image.fromarray(smooth_noise(15, 17, 3)))),
            ("odd_1001x97", pillow_jpeg(Image.fromarray(smooth_noise(97, 1001, 3))))):
        add_decodeopt(f"fast_{name}", data, 0, 1, 100, 12)
        add_decodeopt(f"fast_{name}", data, 0, 1, 1, 1, write_file=False)
    shared = os.environ.get("MORSEL_SHARED", "/work/shared")
    for fn in ("noodles.jpg", "test_image.jpeg"):
        with open(os.path.join(shared, "images", "seed", fn), "rb") as f:
            data = f.read()
        add_decodeopt(f"fast_photo_{fn.split('.')[0]}", data, 0, 1, 224, 224)
        add_decodeopt(f"fast_photo_{fn.split('.')[0]}", data, 0, 1, 96, 96, write_file=False)
    # EXIF + fast: the target is swapped into the stored orientation for orientations 5..8
    wide = pillow_jpeg(Image.fromarray(smooth_noise(320, 640, 3)), quality=90)
    for o in (1, 3, 6, 8):
        data = with_app1(wide, exif_payload([(ORIENT, 3, [o])]))
        add_decodeopt(f"fast_exif_o{o}", data, 1, 1, 100, 300)
        add_decodeopt(f"fast_exif_o{o}", data, 1, 1, 300, 100, write_file=False)


def gen_bench():
    """Timing inputs: the seed photo (1280x1280) and a generated 4000x3000 camera-size JPEG."""
    shared = os.environ.get("MORSEL_SHARED", "/work/shared")
    p = os.path.join(shared, "images", "seed", "test_image.jpeg")
    with open(p, "rb") as f:
        write("bench_test_image.jpg", f.read())
    manifest.append("bench photo_test_image_1280x1280 bench_test_image.jpg 224 224")
    with Image.open(os.path.join(shared, "images", "seed", "noodles.jpg")) as im:
        big = np.asarray(im.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC),
                         dtype=np.int16)
    big = np.clip(big + rng.normal(0, 3, big.shape), 0, 255).astype(np.uint8)
    write("bench_4000x3000.jpg", pillow_jpeg(Image.fromarray(big), quality=90))
    manifest.append("bench generated_4000x3000 bench_4000x3000.jpg 224 224")


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
    gen_exif()
    gen_fast()
    gen_bench()
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    kinds = {}
    for line in manifest:
        kinds[line.split()[0]] = kinds.get(line.split()[0], 0) + 1
    print(f"gen_image_fixtures: {len(manifest)} cases in {out_dir} "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
