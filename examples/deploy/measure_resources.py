#!/usr/bin/env python3
"""Measures what examples/deploy/RESOURCES.md derives the pods' requests and limits from:
morsel-serve with the Deployment's own args (read from k8s/deployment.yaml), pinned to one
CPU as a 1-CPU limit leaves it (one worker), siege on the other CPU.

  - start-up time and RSS after start;
  - CPU-seconds per request (utime + stime from /proc/PID/stat over a siege run, divided by
    the 200 answers) and peak RSS (VmHWM) at the users' siege -c 10 and at overload, -c 100;
  - the memory worst case: queue + workers full of the largest images the args admit
    (--max-pixels noise JPEGs posted to /v1/classify at once), peak RSS.

    python examples/deploy/measure_resources.py MODEL.morsel IMAGE [--serve BIN] [--seconds 20]
"""

import argparse
import io
import os
import sys
import threading
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples", "loadtest"))
import tools  # noqa: E402


def manifest_args():
    with open(os.path.join(HERE, "k8s", "deployment.yaml")) as fh:
        dep = [d for d in yaml.safe_load_all(fh) if d and d["kind"] == "Deployment"][0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    args = list(c.get("args", []))
    for e in c.get("env", []):
        args += ["--" + e["name"][len("MORSEL_"):].lower().replace("_", "-"), e["value"]]
    return [a for a in args]


def flag(args, name, default):
    return int(args[args.index(name) + 1]) if name in args else default


def noise_jpeg(pixels):
    import numpy as np
    from PIL import Image
    side = int(pixels ** 0.5)
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=75)
    return buf.getvalue(), side


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("image")
    ap.add_argument("--serve", default=os.path.join(ROOT, "build", "examples", "server",
                                                     "morsel-serve"))
    ap.add_argument("--seconds", type=int, default=20)
    a = ap.parse_args()
    args = manifest_args()
    print("manifest args:", " ".join(args))
    rc = "/tmp/morsel-measure.siegerc"
    with open(rc, "w") as fh:
        fh.write(tools.SIEGERC)
    port = tools.free_port()
    s = tools.Server("morsel-serve", [a.serve, "--model", a.model, "--test-image", a.image,
                                      "--host", "127.0.0.1", "--port", str(port), "--log", "off"]
                     + [x for x in args if x not in ("json",) and x != "--log"],
                     0, port, "/tmp/morsel-measure.log", "/readyz")
    s.wait_ready(30)
    print(f"start-up {s.start_s * 1e3:.0f} ms, RSS after start "
          f"{s.rss_after_start_kib / 1024:.1f} MiB")
    try:
        for c in (10, 100):
            cpu0, codes0 = tools.cpu_seconds(s.pid), tools.status_counts(s.url(""))
            r = tools.siege(rc, s.url("/test"), c, a.seconds)
            cpu = tools.cpu_seconds(s.pid) - cpu0
            codes = {k: v - codes0.get(k, 0) for k, v in tools.status_counts(s.url("")).items()}
            ok = codes.get("200", 0)
            print(f"siege -c {c}: {r['transaction_rate']:.1f} trans/s, {cpu / r['elapsed_time']:.2f}"
                  f" CPU busy, {cpu / max(ok, 1) * 1e3:.1f} ms CPU per 200 answer, answers {codes},"
                  f" peak RSS {s.peak_rss_kib() / 1024:.1f} MiB")
        pixels = flag(args, "--max-pixels", 40 << 20)
        body, side = noise_jpeg(min(pixels, 4096 * 4096))
        # The largest image the args admit is also bounded by --max-body (else it is a 413).
        while len(body) > flag(args, "--max-body", 16 << 20):
            body, side = noise_jpeg(int(side * side * 0.8))
        n = flag(args, "--queue", 16) + 2
        print(f"worst case: {n} x POST /v1/classify of a {side}x{side} noise JPEG "
              f"({len(body) / 2**20:.1f} MiB) at once")
        results = []

        def post():
            req = urllib.request.Request(s.url("/v1/classify"), data=body,
                                         headers={"Content-Type": "image/jpeg"})
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    results.append(r.status)
            except urllib.error.HTTPError as e:
                results.append(e.code)
            except (urllib.error.URLError, OSError):
                # --max-body-total: a body over the budget is answered 503 before it is read,
                # and the connection closed, so the client's upload breaks off.
                results.append("closed")
        threads = [threading.Thread(target=post) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"  answers {sorted(results, key=str)}; peak RSS {s.peak_rss_kib() / 1024:.1f} MiB")
    finally:
        s.stop()


if __name__ == "__main__":
    main()
