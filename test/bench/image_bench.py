#!/usr/bin/env python3
"""Decode and resize (bicubic to 224x224) timings of Morsel against Pillow on the same files in
the same run: medians, interleaved per file, and their ratio (< 1: Morsel faster).

usage: image_bench.py BUILD_DIR [RUNS]   (the venv python, Pillow installed)
Files: ../shared/images/seed/{noodles.jpg,test_image.jpeg} and a 1280x960 JPEG made here from
test_image.jpeg. Morsel's resize includes the u8 -> float32 step of the pipeline; Pillow's does
not, so the comparison is slightly unfavourable to Morsel.
"""
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image


def pillow_times(path, runs):
    data = open(path, "rb").read()
    dec, rs = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        im = Image.open(io.BytesIO(data)).convert("RGB")
        t1 = time.perf_counter()
        im.resize((224, 224), Image.Resampling.BICUBIC)
        t2 = time.perf_counter()
        dec.append((t1 - t0) * 1e3)
        rs.append((t2 - t1) * 1e3)
    return statistics.median(dec), statistics.median(rs)


def main():
    build = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 31
    here = os.path.dirname(os.path.abspath(__file__))
    seed = os.path.join(here, "..", "..", "..", "shared", "images", "seed")
    files = [os.path.abspath(os.path.join(seed, n)) for n in ("noodles.jpg", "test_image.jpeg")]
    with tempfile.TemporaryDirectory() as tmp:
        big = os.path.join(tmp, "photo_1280x960.jpg")
        Image.open(files[1]).convert("RGB").resize((1280, 960), Image.Resampling.LANCZOS).save(
            big, quality=90)
        files.append(big)
        rows = []
        rounds = 5  # Morsel and Pillow alternate, so both see the same machine load
        for path in files:
            m_dec, m_rs0, m_rs, p_dec, p_rs = [], [], [], [], []
            for _ in range(rounds):
                out = subprocess.run([os.path.join(build, "test", "test_image"), "--bench",
                                      str(max(1, runs // rounds)), path], check=True,
                                     capture_output=True, text=True).stdout.split()
                w, h, isa = int(out[1]), int(out[2]), out[6]
                m_dec.append(float(out[3]))
                m_rs0.append(float(out[4]))
                m_rs.append(float(out[5]))
                d, r = pillow_times(path, max(1, runs // rounds))
                p_dec.append(d)
                p_rs.append(r)
            med = statistics.median
            rows.append((os.path.basename(path), w, h, med(m_dec), med(p_dec), med(m_rs0),
                         med(m_rs), med(p_rs), isa))
    print(f"medians of 5 alternating rounds x {max(1, runs // 5)} runs, ms (ratio = Morsel / Pillow)")
    print(f"{'file':<22}{'size':>10} | {'decode':>7}{'Pillow':>8}{'ratio':>7} | "
          f"{'resize':>7}{'scalar':>8}{'Pillow':>8}{'ratio':>7}")
    for name, w, h, md, pd, mrs0, mrs, prs, isa in rows:
        print(f"{name:<22}{f'{w}x{h}':>10} | {md:7.3f}{pd:8.3f}{md / pd:7.2f} | "
              f"{mrs:7.3f}{mrs0:8.3f}{prs:8.3f}{mrs / prs:7.2f}")
    print(f"resize = bicubic to 224x224 with Morsel's {rows[0][8]} rows ('scalar': the oracle rows)")


if __name__ == "__main__":
    main()
