#!/usr/bin/env python3
"""examples/camera: raw RGB24 frames on stdin, one JSON line per frame.

Frames are made from the seed photos with Pillow (320x240, some mirrored or rotated), and fed
one at a time to morsel_camera with the Food-11 fixture, under an allocation-counting
LD_PRELOAD shim (test/alloc_shim.c). Checks:
  - each line's probabilities against Keras on the same frame with the model's preprocessing
    (Teachable Machine's: ImageOps.fit to 224x224 with LANCZOS, x/127.5 - 1), within 1e-5,
    the model parity tolerance (measured: 5e-10; Morsel resamples as Pillow does);
  - the frame index, inference ms and frames-per-second fields;
  - no allocation per frame: the process's allocation count after frame 1's line equals the
    count after frame N's (frames 2..N allocated nothing);
  - at the end of the input: status 0 and a summary; a last frame cut short: status 1, the
    frames before it answered, and a message naming the byte counts; bad flags: status 2.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

import harness
from harness import check, finish

TOL = 1e-5
W, H = 320, 240


def frames(photos):
    from PIL import Image
    out = []
    for p in photos:
        img = Image.open(p).convert("RGB").resize((W, H), Image.Resampling.BILINEAR)
        out += [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                img.transpose(Image.Transpose.ROTATE_180)]
    return out


def keras_probs(imgs):
    import numpy as np
    from PIL import Image, ImageOps
    from parity_food11_real import load_keras
    src = os.path.join(harness.SHARED, "models", "real", "food11-tm-mobilenetv2", "keras_model.h5")
    kmodel, _, how = load_keras(src)
    x = np.stack([np.asarray(ImageOps.fit(i, (224, 224), Image.Resampling.LANCZOS))
                  for i in imgs]).astype(np.float32) / 127.5 - 1
    print(f"oracle: {how} on {len(imgs)} frames")
    return np.asarray(kmodel(x, training=False))


def read_stats(path):
    with open(path, "rb") as f:
        return struct.unpack("<3Q", f.read(24))[0]


def main():
    fixtures = harness.env_path("MORSEL_FIXTURES")
    camera = harness.env_path("MORSEL_CAMERA")
    shim = harness.env_path("MORSEL_ALLOC_SHIM")
    model = os.path.join(fixtures, "food11.morsel")
    seed = os.path.join(harness.SHARED, "images", "seed")
    photos = sorted(os.path.join(seed, f) for f in os.listdir(seed)
                    if f.lower().endswith((".jpg", ".jpeg")))
    for p in (model, camera, shim):
        if not os.path.isfile(p):
            raise SystemExit(f"FAIL: {p} is missing")
    imgs = frames(photos)
    cmd = [camera, "--model", model, "--width", str(W), "--height", str(H), "--top", "11"]

    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "stats")
        env = dict(os.environ, LD_PRELOAD=shim, MORSEL_ALLOC_STATS=stats)
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, text=False)
        lines, counts = [], []
        for img in imgs:  # one frame, then its line: the count read after it is exact
            p.stdin.write(img.tobytes())
            p.stdin.flush()
            line = p.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
            counts.append(read_stats(stats))
        p.stdin.close()
        rest, err = p.stdout.read(), p.stderr.read().decode()
        rc = p.wait()
    check(rc == 0 and len(lines) == len(imgs) and not rest.strip(),
          f"{len(imgs)} frames in, {len(lines)} lines out, status {rc} at the end of input", err)
    check(f"{len(imgs)} frames" in err and "peak RSS" in err, "a summary on stderr at the end",
          err)
    check([r["frame"] for r in lines] == list(range(1, len(imgs) + 1))
          and all(r["inference_ms"] > 0 and r["fps"] > 0 and len(r["top"]) == 11 for r in lines),
          "frame indices 1..N, inference_ms > 0, fps > 0, 11 classes per line",
          lines[:1])
    check(len(counts) == len(imgs) and counts[0] == counts[-1],
          f"no allocation per frame: {counts[0] if counts else '?'} allocations after frame 1, "
          f"{counts[-1] if counts else '?'} after frame {len(counts)}", counts)

    kp = keras_probs(imgs[:len(lines)])
    worst = 0.0
    for r, want in zip(lines, kp):
        got = {t["index"]: t["probability"] for t in r["top"]}
        worst = max(worst, max(abs(got[i] - float(want[i])) for i in range(len(want))))
    check(lines and worst <= TOL,
          f"probabilities of {len(lines)} frames within {TOL:g} of Keras on the same pixels "
          f"(max |diff| {worst:.2e})")

    # A last frame cut short, and missing flags.
    whole = b"".join(i.tobytes() for i in imgs[:2])
    r = subprocess.run(cmd, input=whole + b"\x80" * 1000, capture_output=True)
    err = r.stderr.decode()
    check(r.returncode == 1 and len(r.stdout.splitlines()) == 2
          and f"truncated frame 3: 1000 of {W * H * 3} bytes" in err,
          "a truncated last frame: status 1 after answering the whole ones, sizes named", err)
    r = subprocess.run([camera, "--model", model, "--width", str(W)], input=b"",
                       capture_output=True)
    check(r.returncode == 2 and b"--height" in r.stderr, "a missing --height: status 2, named",
          r.stderr)
    r = subprocess.run(cmd, input=b"", capture_output=True)
    check(r.returncode == 0 and not r.stdout and b"0 frames" in r.stderr,
          "empty input: no line, status 0", r.stderr)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
