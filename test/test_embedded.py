#!/usr/bin/env python3
"""examples/embedded: a model linked into the executable, opened in place.

Builds the morsel_embedded target (its model, $MORSEL_EMBED_MODEL, is the fixture ctest exports),
runs it from an empty directory with $MORSEL_MODEL pointing nowhere, and checks that
  - the executable holds the model file's bytes (it needs no file);
  - its probabilities are exactly those of `morsel classify --model <the same file>` on the
    seed photos (same library, same kernels: identical floats), and, through --rgb, on the
    photos' pixels as Pillow decodes them;
  - the model was borrowed, not copied: an allocation-counting LD_PRELOAD shim
    (test/alloc_shim.c) sums the bytes the process allocates, which must be at least the model's
    size below what the same program allocates with --copy (MORSEL_MEMORY_COPY) on the same
    inputs -- were BORROW to copy too, the two sums would be equal and the check would fail.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

import harness
from harness import check, finish


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def probs(stdout):
    """{image: {class index: probability}} from JSON lines."""
    out = {}
    for line in stdout.splitlines():
        r = json.loads(line)
        out[r["image"]] = {t["index"]: t["probability"] for t in r["top"]}
    return out


def main():
    cli = harness.morsel_bin()
    build = harness.env_path("MORSEL_BUILD_DIR")
    model = harness.env_path("MORSEL_EMBED_MODEL")
    shim = harness.env_path("MORSEL_ALLOC_SHIM")
    photos = sorted(os.path.join(harness.SHARED, "images", "seed", f)
                    for f in os.listdir(os.path.join(harness.SHARED, "images", "seed"))
                    if f.lower().endswith((".jpg", ".jpeg")))
    if not os.path.isfile(model) or not photos or not os.path.isfile(shim):
        raise SystemExit(f"FAIL: need {model}, seed photos in {harness.SHARED} and {shim}")
    from PIL import Image  # a missing Pillow is a failure, not a skip

    r = run(["cmake", "--build", build, "--target", "morsel_embedded"])
    if not check(r.returncode == 0, "cmake --build --target morsel_embedded",
                 r.stdout[-2000:] + r.stderr[-2000:]):
        return finish()
    exe = os.path.join(build, "examples", "embedded", "morsel_embedded")
    blob = open(model, "rb").read()
    check(open(exe, "rb").read().find(blob) >= 0,
          f"the executable holds the {len(blob)}-byte model file")

    ref = run([cli, "classify", "--model", model, "--json", "--top", "1000"] + photos)
    check(ref.returncode == 0, "morsel classify on the seed photos", ref.stderr)
    want = probs(ref.stdout)

    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "empty")
        os.mkdir(work)
        env = dict(os.environ, MORSEL_MODEL=os.path.join(tmp, "no-such.morsel"),
                   LD_PRELOAD=shim)

        def embedded(args, tag):
            stats = os.path.join(tmp, f"stats-{tag}")
            r = run([exe, "--top", "1000"] + args, cwd=work,
                    env=dict(env, MORSEL_ALLOC_STATS=stats))
            with open(stats, "rb") as f:
                calls, nbytes, largest = struct.unpack("<3Q", f.read(24))
            return r, calls, nbytes, largest

        r, calls, nbytes, largest = embedded(photos, "borrow")
        check(r.returncode == 0 and not [f for f in os.listdir(work) if f.endswith(".morsel")],
              "morsel_embedded classifies from a directory holding no .morsel file", r.stderr)
        got = probs(r.stdout)
        check(got == want and len(got) == len(photos),
              f"probabilities identical to morsel classify on {len(photos)} photos, every class",
              f"embedded {got}\nclassify {want}")
        # Same program, same inputs, the buffer copied instead: the heap grows by the model.
        rc, _, cbytes, _ = embedded(["--copy"] + photos, "copy")
        check(rc.returncode == 0 and probs(rc.stdout) == want, "--copy gives the same answers",
              rc.stderr)
        check(cbytes - nbytes >= len(blob),
              f"borrowed, not copied: with MORSEL_MEMORY_BORROW the process allocates {nbytes} B "
              f"({calls} allocations), {cbytes - nbytes} B less than with MORSEL_MEMORY_COPY "
              f"(the model is {len(blob)} B)")

        # Raw RGB (what a build without image decoders takes): Pillow's pixels of each photo.
        for p in photos:
            img = Image.open(p).convert("RGB")
            raw = os.path.join(tmp, os.path.basename(p) + ".rgb")
            with open(raw, "wb") as f:
                f.write(img.tobytes())
            r, _, _, _ = embedded(["--rgb", f"{img.width}x{img.height}", raw], "rgb")
            got = probs(r.stdout).get(raw)
            check(r.returncode == 0 and got == want[p],
                  f"--rgb {img.width}x{img.height} on Pillow's pixels of {os.path.basename(p)} "
                  "gives the probabilities of classifying the file", r.stderr + str(got))
        r, _, _, _ = embedded(["--rgb", "7x5", raw], "short")
        check(r.returncode == 1 and "7x5 RGB is 105" in r.stderr,
              "--rgb with the wrong size: status 1 and both sizes named", r.stderr)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
