#!/usr/bin/env python3
"""morsel-serve over real HTTP: every route, the users' Flask answer format, the JSON and
TF-Serving APIs, backpressure (503 + Retry-After), body and pixel limits, bad bodies, slow
clients, the connection cap, graceful SIGTERM with requests in flight, metrics, the access log
and the configuration (flags, MORSEL_* variables, CPU quota detection).

Answers are checked against `morsel classify` on the same photo. Every server runs on a free
loopback port, is bounded in time and is always stopped (try/finally).

env: MORSEL_SERVE (the binary), MORSEL_BIN (the CLI), MORSEL_FIXTURES (food11.morsel),
     MORSEL_SHARED (photos)
"""

import base64
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SERVE = os.environ.get("MORSEL_SERVE", "build/examples/server/morsel-serve")
CLI = os.environ.get("MORSEL_BIN", "build/morsel")
FIX = os.environ.get("MORSEL_FIXTURES", "build/fixtures")
SHARED = os.environ.get("MORSEL_SHARED", "/work/shared")
MODEL = os.path.join(FIX, "food11.morsel")
LABELS = os.path.join(SHARED, "models", "real", "food11-tm-mobilenetv2", "labels.txt")
SEED = os.path.join(SHARED, "images", "seed")
PHOTOS = sorted(os.path.join(SEED, f) for f in os.listdir(SEED)
                if f.lower().endswith((".jpg", ".jpeg", ".png")))
NOODLES = os.path.join(SEED, "noodles.jpg")

FLASK_RE = re.compile(r"^(?P<label>.+) \((?P<prob>[0-9.e+-]+)\), "
                      r"Inference Time : (?P<secs>[0-9.e+-]+) seconds$")
STARTUP_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+) .* started in ([0-9.]+) ms")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


class Server:
    """One morsel-serve process on a free loopback port; stop() is idempotent."""

    def __init__(self, *args, env=None, model=MODEL, wait=True):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.cmd = [SERVE, "--model", model, "--host", "127.0.0.1", "--port", "0", *args]
        self.t0 = time.monotonic()
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.errf,
                                     env=full_env, text=True)
        self.port = None
        if wait:
            self._wait_ready()

    def _wait_ready(self):
        line = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        self.wall_ms = (time.monotonic() - self.t0) * 1000
        m = STARTUP_RE.search(line)
        if not m:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} {self.stderr()[-2000:]}")
        self.port, self.startup_ms, self.line = int(m.group(1)), float(m.group(2)), line.strip()

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def chunked(self, path, body, ctype="image/jpeg"):
        """POST `body` with Transfer-Encoding: chunked (no Content-Length), 16 KiB chunks; the
        server may answer and close before the last one."""
        c = self.conn()
        c.putrequest("POST", path)
        c.putheader("Content-Type", ctype)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        try:
            for i in range(0, len(body), 16384):
                chunk = body[i:i + 16384]
                c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            c.send(b"0\r\n\r\n")
        except OSError:
            pass
        r = c.getresponse()
        try:
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        return status, hdrs, json.loads(data)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def stderr(self):
        self.errf.seek(0)
        return self.errf.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        rc = self.stop()
        # A sanitizer report or a crash shows here as a non-zero status.
        check(rc == 0, f"server exits 0 on SIGTERM (got {rc})" +
              ("" if rc == 0 else f": {self.stderr()[-1500:]}"))


def multipart(field, filename, data, ctype="image/jpeg"):
    boundary = "----morselTestBoundary7MA4YWxk"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def cli_classify(path):
    out = subprocess.run([CLI, "classify", "--model", MODEL, "--json", "--top", "11", path],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return json.loads(out.splitlines()[0])["top"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def is_float32_repr(text):
    """Python prints a float32 probability widened to double: repr(float(np.float32(p)))."""
    v = float(text)
    return repr(v) == text and struct.unpack("f", struct.pack("f", v))[0] == v


def metric(text, name, labels=""):
    pat = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)$"
    m = re.search(pat, text, re.M)
    return float(m.group(1)) if m else 0.0


def error_json(status, hdrs, data):
    try:
        return hdrs.get("Content-Type", "").startswith("application/json") and \
            isinstance(json.loads(data).get("error"), str)
    except ValueError:
        return False


def png_bytes(w, h, seed=1):
    from PIL import Image  # the test venv has Pillow
    import random
    rnd = random.Random(seed)
    img = Image.new("RGB", (w, h))
    img.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
                 for _ in range(w * h)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# ---- the tests ---------------------------------------------------------------------------

def test_routes_and_formats():
    with Server("--test-image", NOODLES, "--workers", "1") as s:
        print(f"     startup line: {s.line} (wall {s.wall_ms:.1f} ms)")
        if "isa scalar" in s.line:
            print(f"SKIPPED start-up < 100 ms: this build runs scalar kernels (the target assumes "
                  f"the SIMD ones); measured {s.startup_ms:.1f} ms")
        else:
            check(s.startup_ms < 100, f"start-up {s.startup_ms:.1f} ms < 100 ms (wall to first "
                                      f"line {s.wall_ms:.1f} ms)")
        st, h, body = s.request("GET", "/")
        page = body.decode()
        check(st == 200 and h["Content-Type"].startswith("text/html") and
              re.search(r'<form[^>]*action="/predict"[^>]*method="post"[^>]*'
                        r'enctype="multipart/form-data"', page) and 'name="file"' in page,
              "GET / is an upload form posting field 'file' to /predict")

        labels = [l.strip() for l in open(LABELS) if l.strip()]
        for photo in PHOTOS:
            name = os.path.basename(photo)
            ref = cli_classify(photo)
            body, hdrs = multipart("file", name, read(photo))
            st, h, data = s.request("POST", "/predict", body, hdrs)
            text = data.decode()
            m = FLASK_RE.match(text)
            check(st == 200 and m is not None, f"/predict {name}: Flask format: {text!r}")
            if not m:
                continue
            check(m["label"] == ref[0]["label"], f"/predict {name}: label {m['label']!r} == "
                                                 f"morsel classify {ref[0]['label']!r}")
            check(is_float32_repr(m["prob"]) and
                  float(m["prob"]) == struct.unpack("f", struct.pack("f", ref[0]["probability"]))[0],
                  f"/predict {name}: probability {m['prob']} is the float32 "
                  f"{ref[0]['probability']!r} printed as Python does")
            check(0 < float(m["secs"]) < 10 and repr(float(m["secs"])) == m["secs"],
                  f"/predict {name}: seconds {m['secs']} printed as Python's repr")

            st, h, j = s.json("POST", "/v1/classify?k=3", read(photo),
                              {"Content-Type": "image/jpeg"})
            got = [(p["index"], p["label"]) for p in j["predictions"]]
            check(st == 200 and got == [(r["index"], r["label"]) for r in ref[:3]] and
                  all(abs(p["probability"] - r["probability"]) <= 1e-6 * max(1, r["probability"])
                      for p, r in zip(j["predictions"], ref)),
                  f"/v1/classify {name} (raw image/jpeg, k=3) == morsel classify top-3")
            t = j.get("timings_ms", {})
            check(all(isinstance(t.get(k), (int, float)) and t[k] >= 0 for k in
                      ("queue_wait", "decode", "preprocess", "inference")) and t["inference"] > 0,
                  f"/v1/classify {name}: timings {t}")
            st, h, j2 = s.json("POST", "/v1/classify", *multipart("file", name, read(photo)))
            check(st == 200 and len(j2["predictions"]) == 5 and
                  j2["predictions"][0]["label"] == ref[0]["label"],
                  "/v1/classify multipart field 'file', default top-5")
            st, h, j3 = s.json("POST", "/v1/classify?k=50", read(photo),
                               {"Content-Type": "application/octet-stream"})
            check(st == 200 and sorted(p["label"] for p in j3["predictions"]) == sorted(labels),
                  "/v1/classify octet-stream, k larger than the classes: every class once")

        st, h, data = s.request("GET", "/test")
        ref = cli_classify(NOODLES)
        m = FLASK_RE.match(data.decode())
        check(st == 200 and m and m["label"] == ref[0]["label"],
              f"GET /test classifies --test-image: {data.decode()!r}")

        # TF-Serving REST
        name = "food11-tm-mobilenetv2"
        imgs = [read(p) for p in PHOTOS] + [read(PHOTOS[0]), png_bytes(31, 17)]
        inst = [{"b64": base64.b64encode(b).decode()} for b in imgs]
        inst[1] = {"image_bytes": {"b64": base64.b64encode(imgs[1]).decode()}}
        st, h, j = s.json("POST", f"/v1/models/{name}:predict", json.dumps({"instances": inst}),
                          {"Content-Type": "application/json"})
        preds = j.get("predictions", [])
        check(st == 200 and len(preds) == len(imgs) and all(len(p) == 11 for p in preds) and
              all(abs(sum(p) - 1) < 1e-4 for p in preds),
              f"TF-Serving :predict with {len(imgs)} instances: one 11-probability row each")
        for i, photo in enumerate(PHOTOS):
            ref = cli_classify(photo)
            row = preds[i] if i < len(preds) else []
            check(row and max(range(11), key=lambda c: row[c]) == ref[0]["index"] and
                  all(abs(row[r["index"]] - r["probability"]) <= 1e-6 for r in ref),
                  f":predict row {i} ({os.path.basename(photo)}) == morsel classify, by class index")
        check(len(preds) > len(PHOTOS) and preds[len(PHOTOS)] == preds[0],
              ":predict: the same image twice gives the same row")
        st, h, j = s.json("POST", f"/v1/models/{name}:predict",
                          '{"instances": [{"b64": "' +
                          base64.urlsafe_b64encode(read(NOODLES)).decode().rstrip("=") + '"}]}')
        check(st == 200 and len(j["predictions"]) == 1, ":predict accepts URL-safe unpadded "
                                                        "base64 and a curl -d form content type")
        st, h, j = s.json("GET", f"/v1/models/{name}")
        check(st == 200 and j["model_version_status"][0]["state"] == "AVAILABLE",
              f"GET /v1/models/{name}: TF-Serving status AVAILABLE")
        st, h, j = s.json("GET", f"/v1/models/{name}/metadata")
        mm = j.get("morsel", {})
        check(st == 200 and mm.get("labels") == labels and
              mm.get("input") == {"height": 224, "width": 224, "channels": 3} and
              mm["file"]["sha256"] == hashlib.sha256(read(MODEL)).hexdigest() and
              int(mm["file"]["header_crc32"], 16) == struct.unpack("<I", read(MODEL)[24:28])[0] and
              mm["exporter_version"].startswith("morsel-export") and
              mm["preprocessing"]["resize"] in ("lanczos", "bicubic", "bilinear", "nearest", "box")
              and "serving_default" in j["metadata"]["signature_def"]["signature_def"],
              "metadata: labels, input shape, preprocessing, sha256 and header CRC of the file, "
              "exporter version, TF-Serving signature")
        for path in ("/v1/models/other", "/v1/models/other/metadata"):
            st, h, data = s.request("GET", path)
            check(st == 404 and error_json(st, h, data), f"GET {path}: 404 JSON")
        st, h, data = s.request("POST", "/v1/models/other:predict", json.dumps({"instances": []}))
        check(st == 404 and error_json(st, h, data), "POST /v1/models/other:predict: 404 JSON")

        st, h, j = s.json("GET", "/healthz")
        check(st == 200 and j["status"] == "ok", "GET /healthz 200")
        st, h, j = s.json("GET", "/readyz")
        check(st == 200 and j["ready"] is True, "GET /readyz 200 (self-test passed at start)")
        print(f"     RSS after these requests: {s.rss_kb() / 1024:.1f} MiB")

    with Server() as s:
        st, h, data = s.request("GET", "/test")
        check(st == 404 and error_json(st, h, data), "GET /test without --test-image: 404 JSON")


def test_bad_input():
    with Server("--max-body", "200000", "--max-pixels", "100000") as s:
        st, h, data = s.request("POST", "/v1/classify", read(NOODLES), {"Content-Type": "image/jpeg"})
        check(st == 422 and error_json(st, h, data), f"image over --max-pixels: 422 JSON: {data!r}")
    with Server("--max-body", "200000") as s:
        jpeg = read(NOODLES)
        cases = [
            ("not an image", "POST", "/v1/classify", b"hello, world" * 10, {"Content-Type": "image/jpeg"}, 400),
            ("truncated JPEG", "POST", "/v1/classify", jpeg[:len(jpeg) // 2], {"Content-Type": "image/jpeg"}, 400),
            ("JPEG header only", "POST", "/v1/classify", jpeg[:200], {"Content-Type": "image/jpeg"}, 400),
            ("empty body", "POST", "/v1/classify", b"", {"Content-Type": "image/jpeg"}, 400),
            ("wrong content type", "POST", "/v1/classify", jpeg, {"Content-Type": "text/plain"}, 415),
            ("JSON to /v1/classify", "POST", "/v1/classify", b"{}", {"Content-Type": "application/json"}, 415),
            ("/predict not multipart", "POST", "/predict", jpeg, {"Content-Type": "image/jpeg"}, 415),
            ("/predict without boundary", "POST", "/predict", jpeg, {"Content-Type": "multipart/form-data"}, 400),
            ("/predict truncated multipart", "POST", "/predict", multipart("file", "a.jpg", jpeg)[0][:5000],
             multipart("file", "a.jpg", b"")[1], 400),
            ("/predict field other than 'file'", "POST", "/predict", *multipart("image", "a.jpg", jpeg), 400),
            ("/predict truncated JPEG", "POST", "/predict", *multipart("file", "a.jpg", jpeg[:9000]), 400),
            ("bad JSON", "POST", "/v1/models/food11-tm-mobilenetv2:predict", b'{"instances": [', {}, 400),
            ("JSON not an object", "POST", "/v1/models/food11-tm-mobilenetv2:predict", b'[1, 2]', {}, 400),
            ("no instances", "POST", "/v1/models/food11-tm-mobilenetv2:predict", b'{"inputs": 1}', {}, 400),
            ("instance without b64", "POST", "/v1/models/food11-tm-mobilenetv2:predict", b'{"instances": [{"x": 1}, 2]}', {}, 400),
            ("bad base64", "POST", "/v1/models/food11-tm-mobilenetv2:predict", b'{"instances": [{"b64": "abc$def="}]}', {}, 400),
            ("base64 of a truncated JPEG", "POST", "/v1/models/food11-tm-mobilenetv2:predict",
             json.dumps({"instances": [{"b64": base64.b64encode(jpeg[:3000]).decode()}]}).encode(), {}, 400),
            ("image to :predict", "POST", "/v1/models/food11-tm-mobilenetv2:predict", jpeg, {"Content-Type": "image/jpeg"}, 415),
            ("bad k", "POST", "/v1/classify?k=zero", jpeg, {"Content-Type": "image/jpeg"}, 400),
            ("unknown route", "GET", "/nope", None, {}, 404),
            ("unknown route POST", "POST", "/v2/classify", jpeg, {"Content-Type": "image/jpeg"}, 404),
            ("GET /predict", "GET", "/predict", None, {}, 405),
            ("DELETE /v1/classify", "DELETE", "/v1/classify", None, {}, 405),
            ("POST /metrics", "POST", "/metrics", b"x", {}, 405),
            ("body over --max-body", "POST", "/v1/classify", jpeg * 5, {"Content-Type": "image/jpeg"}, 413),
        ]
        for what, method, path, body, hdrs, want in cases:
            st, h, data = s.request(method, path, body, hdrs)
            ok = st == want and error_json(st, h, data)
            if want == 405:
                ok = ok and "Allow" in h
            check(ok, f"{what}: {st} (want {want}) with a JSON error: {data[:120]!r}")

        # A chunked body has no Content-Length: the limit applies while reading it.
        st, h, data = s.chunked("/v1/classify", jpeg * 5)
        check(st == 413 and error_json(st, h, data),
              "chunked body over --max-body: 413 JSON")

        # Random garbage and mutated JPEGs: never a 5xx, never a crash.
        import random
        rnd = random.Random(5)
        worst = 0
        for i in range(40):
            b = bytearray(jpeg[:rnd.randrange(100, len(jpeg))])
            for _ in range(rnd.randrange(1, 30)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            st, h, data = s.request("POST", "/v1/classify", bytes(b), {"Content-Type": "image/jpeg"})
            worst = max(worst, st)
            if st != 200 and not error_json(st, h, data):
                worst = 999
        check(worst < 500, f"40 corrupted JPEGs: every answer 200 or 4xx JSON (worst {worst})")
        st, h, j = s.json("GET", "/healthz")
        check(st == 200 and s.proc.poll() is None, "server alive after the bad inputs")


def test_body_budget():
    """--max-body-total bounds the request bodies held at once (being uploaded or queued): a
    request that would cross it gets a 503 with Retry-After (before its body is read when its
    Content-Length says so), and the bytes come back when a request completes."""
    jpeg = read(NOODLES)
    budget = len(jpeg) + len(jpeg) // 2
    with Server("--max-body-total", str(budget), "--max-body", str(4 * len(jpeg))) as s:
        st, h, data = s.request("POST", "/v1/classify", jpeg * 2, {"Content-Type": "image/jpeg"})
        check(st == 503 and h.get("Retry-After") == "1" and error_json(st, h, data)
              and b"bodies held at once" in data,
              f"one body over --max-body-total (under --max-body): 503 + Retry-After: {st} {data[:100]!r}")
        # A slow upload holds what it has sent so far; a second body that does not fit beside it
        # is refused, and once the first completes the same second body is classified.
        slow = s.conn()
        slow.putrequest("POST", "/v1/classify")
        slow.putheader("Content-Type", "image/jpeg")
        slow.putheader("Content-Length", str(len(jpeg)))
        slow.endheaders()
        slow.send(jpeg[:len(jpeg) - 100])
        time.sleep(0.3)
        st, h, data = s.request("POST", "/v1/classify", jpeg, {"Content-Type": "image/jpeg"})
        check(st == 503 and b"bodies held at once" in data,
              f"a second body beside a slow upload that holds {len(jpeg) - 100} bytes: 503 ({st})")
        slow.send(jpeg[len(jpeg) - 100:])
        r = slow.getresponse()
        r.read()
        slow.close()
        check(r.status == 200, f"the slow upload itself completes: {r.status}")
        st, h, data = s.request("POST", "/v1/classify", jpeg, {"Content-Type": "image/jpeg"})
        check(st == 200, f"its bytes are released: the same body is then classified ({st})")
        st, h, data = s.chunked("/v1/classify", jpeg * 2)
        check(st == 503 and b"bodies held at once" in data,
              f"a chunked body (no Content-Length) crossing the budget while read: 503 ({st})")
        st, h, j = s.json("GET", "/healthz")
        check(st == 200, "server alive")
    # A burst of uploads that do not all fit: the budget is taken from each Content-Length as
    # it is admitted, so those that fit are classified and only the rest are refused (counted
    # as bytes arrived, all of them started, crossed the budget together and got 503).
    body = jpeg * 3
    with Server("--max-body-total", str(3 * len(body)), "--max-body", str(2 * len(body))) as s:
        codes = []

        def upload():
            c = s.conn(60)
            try:
                c.putrequest("POST", "/v1/classify")
                c.putheader("Content-Type", "image/jpeg")
                c.putheader("Content-Length", str(len(body)))
                c.endheaders()
                for i in range(0, len(body), 4096):
                    c.send(body[i:i + 4096])
                    time.sleep(0.002)
                r = c.getresponse()
                r.read()
                codes.append(r.status)
            except OSError:
                codes.append("closed")
            finally:
                c.close()
        ts = [threading.Thread(target=upload) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        check(1 <= codes.count(200) <= 3 and len(codes) == 8 and
              all(c in (200, 503, "closed") for c in codes),
              f"8 concurrent uploads, room for 3: those admitted are answered ({codes})")


def test_backpressure():
    """One worker, a queue of 1, 16 simultaneous slow requests: those beyond the worker and the
    queue get a fast 503 with Retry-After, the others 200."""
    img = base64.b64encode(read(NOODLES)).decode()
    body = json.dumps({"instances": [{"b64": img}] * 6}).encode()
    with Server("--workers", "1", "--queue", "1") as s:
        n = 16
        results = [None] * n
        barrier = threading.Barrier(n)

        def client(i):
            c = s.conn(60)
            try:
                c.connect()
                barrier.wait(10)
                t = time.monotonic()
                c.request("POST", "/v1/models/food11-tm-mobilenetv2:predict", body)
                r = c.getresponse()
                data = r.read()
                results[i] = (r.status, r.getheader("Retry-After"), time.monotonic() - t, data)
            except Exception as e:  # noqa: BLE001 -- reported below
                results[i] = (None, None, 0, repr(e).encode())
            finally:
                c.close()

        ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        codes = [r[0] for r in results]
        ok = [r for r in results if r[0] == 200]
        busy = [r for r in results if r[0] == 503]
        slowest_ok = max(r[2] for r in ok) if ok else 0
        # The worker may not have taken the first job yet when the rest arrive, so as few as
        # one (queue 1) can be accepted.
        check(len(ok) + len(busy) == n and len(ok) >= 1 and len(busy) >= 1,
              f"{n} concurrent requests, 1 worker, queue 1: {len(ok)} x 200, {len(busy)} x 503 "
              f"(codes {codes})")
        check(all(r[1] == "1" and error_json(503, {"Content-Type": "application/json"}, r[3])
                  for r in busy), "every 503 has Retry-After: 1 and a JSON error")
        fastest_busy = max((r[2] for r in busy), default=0)
        check(fastest_busy < max(0.5, slowest_ok / 2),
              f"503s are immediate (slowest 503 {fastest_busy * 1000:.0f} ms, slowest 200 "
              f"{slowest_ok * 1000:.0f} ms)")
        m = s.request("GET", "/metrics")[2].decode()
        check(metric(m, "morsel_rejected_total") == len(busy),
              f"morsel_rejected_total == {len(busy)}")


def thread_nices(pid):
    """{thread name: [nice values]} from /proc/PID/task/*/stat (nice is field 19)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            stat = f.read()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        out.setdefault(name, []).append(int(stat[stat.rindex(")") + 2:].split()[16]))
    return out


def test_http_priority():
    """Under a flood of refused requests the HTTP thread is always runnable; inference keeps the
    CPU because that thread runs --http-nice (default 10) steps below the workers. The effect on
    throughput is measured by examples/loadtest (wrk -c 100), not here."""
    for args, delta in ((("--workers", "1"), 10),
                        (("--workers", "1", "--http-nice", "4"), 4),
                        (("--workers", "1", "--http-nice", "0"), 0)):
        with Server(*args) as s:
            # libmicrohttpd's thread names itself once running, maybe after the ready line.
            deadline = time.monotonic() + 5
            while True:
                nices = thread_nices(s.proc.pid)
                if "MHD-single" in nices or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            workers, http = nices.get("morsel-worker", []), nices.get("MHD-single", [])
            check(len(workers) == 1 and len(set(workers)) == 1 and len(http) == 1
                  and http[0] == workers[0] + delta,
                  f"{' '.join(args)}: workers {workers}, HTTP thread {http}: "
                  f"HTTP thread {delta} nice steps below the worker")


def test_slow_clients_and_connection_cap():
    with Server("--timeout", "2", "--max-connections", "6") as s:
        # Half a request line, then silence: dropped after the idle timeout.
        stall = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        stall.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Le")
        # A body dripped one byte at a time never completes: dropped at the body deadline.
        drip = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        drip.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        t0 = time.monotonic()
        st, h, j = s.json("GET", "/healthz")
        check(st == 200 and time.monotonic() - t0 < 1, "others are answered while a client stalls")
        drip_closed = None
        while time.monotonic() - t0 < 8 and drip_closed is None:
            try:
                drip.sendall(b"x")
            except OSError:
                drip_closed = time.monotonic() - t0
                break
            time.sleep(0.3)
            drip.settimeout(0.01)
            try:
                if drip.recv(4096) == b"":
                    drip_closed = time.monotonic() - t0
            except socket.timeout:
                pass
            except OSError:
                drip_closed = time.monotonic() - t0
        stall.settimeout(8)
        try:
            got = stall.recv(4096)
        except OSError:
            got = b""
        stall_closed = time.monotonic() - t0
        check(got == b"" and stall_closed < 6,
              f"a client sending half the headers is dropped after the timeout ({stall_closed:.1f} s)")
        check(drip_closed is not None and drip_closed < 6,
              f"a client dripping its body is dropped at the 2 s deadline ({drip_closed} s)")
        stall.close()
        drip.close()
        st, h, j = s.json("GET", "/healthz")
        check(st == 200, "server answers after dropping slow clients")

        # The connection cap: 6 idle connections fill it; a 7th waits in the listen backlog,
        # unanswered, until a slot frees.
        idle = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(6)]
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        extra.settimeout(1.0)
        try:
            early = extra.recv(4096)
        except socket.timeout:
            early = None
        check(early is None, "--max-connections 6: a 7th connection is not served while 6 are open")
        for sock in idle:
            sock.close()
        extra.settimeout(5)
        try:
            late = extra.recv(4096)
        except OSError:
            late = b""
        extra.close()
        check(late.startswith(b"HTTP/1.1 200"), "once the 6 close, the waiting one is answered")


def test_sigterm_drain():
    img = base64.b64encode(read(NOODLES)).decode()
    body = json.dumps({"instances": [{"b64": img}] * 4}).encode()
    s = Server("--workers", "1", "--queue", "8")
    try:
        n = 4
        results = [None] * n

        def client(i):
            try:
                st, h, data = s.request("POST", "/v1/models/food11-tm-mobilenetv2:predict", body,
                                        timeout=60)
                results[i] = (st, len(json.loads(data).get("predictions", [])))
            except Exception as e:  # noqa: BLE001
                results[i] = (None, repr(e))

        ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        # Wait until all four are received (the scrape itself is one in flight).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = s.request("GET", "/metrics")[2].decode()
            if metric(m, "morsel_in_flight_requests") >= n + 1:
                break
            time.sleep(0.005)
        t_sig = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
            refused = False
        except OSError:
            refused = True
        for t in ts:
            t.join(60)
        rc = s.proc.wait(30)
        took = time.monotonic() - t_sig
        check(all(r == (200, 4) for r in results),
              f"SIGTERM with {n} requests in flight: all complete with 200 ({results})")
        check(refused, "after SIGTERM new connections are refused")
        check(rc == 0, f"exit code 0 after draining (got {rc}, {took:.2f} s after SIGTERM)")
        check("draining" in s.stderr(), "the drain is logged")
    finally:
        s.stop(signal.SIGKILL)


def test_metrics_and_log():
    with Server("--test-image", NOODLES) as s:
        before = s.request("GET", "/metrics")[2].decode()
        for _ in range(3):
            s.request("POST", "/predict", *multipart("file", "n.jpg", read(NOODLES)))
        s.request("GET", "/nope")
        after = s.request("GET", "/metrics")[2].decode()
        lbl = 'route="/predict",code="200"'
        check(metric(after, "morsel_http_requests_total", lbl) -
              metric(before, "morsel_http_requests_total", lbl) == 3,
              "requests_total{/predict,200} moves by 3")
        check(metric(after, "morsel_http_requests_total", 'route="other",code="404"') == 1,
              "requests_total{other,404} counts the unknown route")
        check(metric(after, "morsel_inference_duration_seconds_count") -
              metric(before, "morsel_inference_duration_seconds_count") == 3,
              "inference-time histogram counts 3 inferences")
        check(metric(after, "morsel_http_request_duration_seconds_count", 'route="/predict"') == 3
              and 'morsel_http_request_duration_seconds_bucket{route="/predict",le="+Inf"} 3'
              in after, "latency histogram by route")
        for name in ("morsel_queue_depth", "morsel_in_flight_requests", "morsel_rejected_total",
                     "process_resident_memory_bytes"):
            check(re.search(rf"^{name} \d+", after, re.M) is not None, f"metrics has {name}")
        check(all(l.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$", l)
                  for l in after.splitlines() if l),
              "metrics text parses as Prometheus exposition lines")
        s.stop()
        lines = [l for l in s.stderr().splitlines() if l.startswith("{")]
        recs = [json.loads(l) for l in lines]
        check(len(recs) == 6 and [r["status"] for r in recs] == [200, 200, 200, 200, 404, 200],
              f"access log: one JSON line per request ({len(recs)})")
        p = [r for r in recs if r["path"] == "/predict"]
        check(p and all(r["label"] == "Noodles/Pasta" and r["inference_ms"] > 0 and
                        r["bytes_in"] > 50000 and "time" in r and r["remote"] == "127.0.0.1"
                        for r in p), "access log lines carry label, timings, sizes, client")
    with Server("--log", "off") as s:
        s.request("GET", "/healthz")
        s.stop()
        check(not [l for l in s.stderr().splitlines() if l.startswith("{")], "--log off: no lines")


def run_exit(args, env=None, timeout=30):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([SERVE, *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_config():
    r = run_exit(["--help"])
    envs = ["MORSEL_MODEL", "MORSEL_PORT", "MORSEL_HOST", "MORSEL_WORKERS", "MORSEL_THREADS",
            "MORSEL_QUEUE", "MORSEL_MAX_BODY", "MORSEL_MAX_PIXELS", "MORSEL_TIMEOUT",
            "MORSEL_MAX_CONNECTIONS", "MORSEL_TEST_IMAGE", "MORSEL_MODEL_NAME", "MORSEL_TOP_K",
            "MORSEL_LOG"]
    check(r.returncode == 0 and all(e in r.stdout for e in envs) and
          all("--" + e[7:].lower().replace("_", "-") in r.stdout for e in envs),
          "--help lists every flag and its MORSEL_* variable")
    for args, env, what in [
        (["--model", MODEL, "--port", "http"], {}, "--port http"),
        (["--model", MODEL, "--workers", "0"], {}, "--workers 0"),
        (["--model", MODEL, "--queue", "-1"], {}, "--queue -1"),
        (["--model", MODEL, "--log", "yaml"], {}, "--log yaml"),
        (["--model", MODEL, "--frobnicate", "1"], {}, "unknown flag"),
        (["--model", MODEL], {"MORSEL_TIMEOUT": "soon"}, "MORSEL_TIMEOUT=soon"),
        ([], {}, "no model"),
        (["--model", MODEL, "--port"], {}, "flag without value"),
        # trailing garbage, blanks, signs, empties and range, for integer and 64-bit options
        (["--model", MODEL, "--threads", "2x"], {}, "--threads 2x"),
        (["--model", MODEL, "--threads", ""], {}, "--threads ''"),
        (["--model", MODEL, "--port", "70000"], {}, "--port 70000"),
        (["--model", MODEL, "--top-k", "1e3"], {}, "--top-k 1e3"),
        (["--model", MODEL, "--max-body", " 5"], {}, "--max-body ' 5'"),
        (["--model", MODEL, "--max-body", "\t5"], {}, "--max-body '\\t5'"),
        (["--model", MODEL, "--max-pixels", "0"], {}, "--max-pixels 0"),
        (["--model", MODEL, "--max-decode-memory", "0"], {}, "--max-decode-memory 0"),
        (["--model", MODEL, "--max-decode-work", "1k"], {}, "--max-decode-work 1k"),
        (["--model", MODEL, "--max-memory", "9" * 30], {}, "--max-memory overflow"),
        (["--model", MODEL], {"MORSEL_WORKERS": "2 "}, "MORSEL_WORKERS='2 '"),
    ]:
        r = run_exit(args, env)
        check(r.returncode == 2 and "morsel-serve:" in r.stderr,
              f"bad value ({what}): exit 2 with a message: {r.stderr.strip()[:100]!r}")
    r = run_exit(["--model", "/nonexistent.morsel", "--port", "0"])
    check(r.returncode == 1 and "cannot load" in r.stderr, "missing model file: exit 1, message")

    env = {"MORSEL_WORKERS": "1", "MORSEL_QUEUE": "3", "MORSEL_MODEL_NAME": "food",
           "MORSEL_TOP_K": "2", "MORSEL_TEST_IMAGE": NOODLES}
    with Server(env=env) as s:
        st, h, j = s.json("POST", "/v1/classify", read(NOODLES), {"Content-Type": "image/png"})
        check("1 worker(s)" in s.line and "queue 3" in s.line and " model food " in s.line and
              st == 200 and len(j["predictions"]) == 2 and s.request("GET", "/test")[0] == 200 and
              s.request("GET", "/v1/models/food")[0] == 200,
              f"MORSEL_* variables configure workers, queue, name, top-k, test image: {s.line}")
    with Server("--queue", "5", "--model-name", "flagname", env=env) as s:
        check("queue 5" in s.line and "model flagname" in s.line, "flags win over variables")
    # the decode budgets reach the workers' contexts: a photo over them is a 422 with the figures
    with Server("--max-decode-memory", "100000") as s:
        st, h, j = s.json("POST", "/v1/classify", read(NOODLES), {"Content-Type": "image/jpeg"})
        check(st == 422 and "decode memory limit of 100000 bytes" in j.get("error", ""),
              f"--max-decode-memory 100000: a photo is refused with 422: {st} {j}")
    with Server(env={"MORSEL_MAX_DECODE_WORK": "1000"}) as s:
        st, h, j = s.json("POST", "/v1/classify", read(NOODLES), {"Content-Type": "image/jpeg"})
        check(st == 422 and "work limit of 1000 pixel-scans" in j.get("error", ""),
              f"MORSEL_MAX_DECODE_WORK=1000: a photo is refused with 422: {st} {j}")

    ncpu = len(os.sched_getaffinity(0))
    if ncpu >= 2:
        with Server("--workers", "1", "--threads", "2") as s:
            st, h, j = s.json("POST", "/v1/classify?k=11", read(NOODLES),
                              {"Content-Type": "image/jpeg"})
            ref = cli_classify(NOODLES)
            check("1 worker(s) x 2 thread(s)" in s.line and st == 200 and
                  [p["index"] for p in j["predictions"]] == [r["index"] for r in ref] and
                  all(abs(p["probability"] - r["probability"]) <= 1e-6
                      for p, r in zip(j["predictions"], ref)),
                  "--threads 2: same answer as morsel classify")
    else:
        print("SKIPPED --threads 2: this machine has 1 CPU")

    # CPU detection: a fake cgroup v2 / v1 hierarchy, and the affinity mask.
    with tempfile.TemporaryDirectory() as root:
        def workers_with(content, v1=None, taskset=None, extra=()):
            for f in os.listdir(root):
                p = os.path.join(root, f)
                if os.path.isdir(p):
                    for g in os.listdir(p):
                        os.unlink(os.path.join(p, g))
                    os.rmdir(p)
                else:
                    os.unlink(p)
            if content is not None:
                with open(os.path.join(root, "cpu.max"), "w") as f:
                    f.write(content + "\n")
            if v1 is not None:
                os.makedirs(os.path.join(root, "cpu"))
                for name, v in zip(("cpu.cfs_quota_us", "cpu.cfs_period_us"), v1):
                    with open(os.path.join(root, "cpu", name), "w") as f:
                        f.write(f"{v}\n")
            pre = ["taskset", "-c", taskset] if taskset else []
            e = dict(os.environ, MORSEL_CGROUP_ROOT=root)
            p = subprocess.Popen(pre + [SERVE, "--model", MODEL, "--host", "127.0.0.1", "--port",
                                        "0", *extra], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=e)
            try:
                line = p.stdout.readline()
            finally:
                p.send_signal(signal.SIGTERM)
                _, err = p.communicate(timeout=30)
            m = re.search(r"(\d+) worker\(s\) x (\d+) thread\(s\), queue (\d+)", line)
            return (int(m[1]), int(m[2]), int(m[3]), err) if m else (None, None, None, err)

        ncpu = len(os.sched_getaffinity(0))
        w = workers_with("max 100000")
        check(w[0] == ncpu and w[2] == 32 * ncpu, f"cpu.max 'max': W = affinity CPUs ({ncpu}), "
                                                  f"queue 32W: {w[:3]}")
        w = workers_with("100000 100000")
        check(w[0] == 1 and w[2] == 32, f"cgroup v2 quota of 1 CPU: 1 worker, queue 32: {w[:3]}")
        if ncpu >= 2:
            w = workers_with("150000 100000")
            check(w[0] == 2, f"cgroup v2 quota 1.5 CPUs rounds up to 2 workers: {w[:3]}")
            w = workers_with(None, v1=(100000, 100000))
            check(w[0] == 1, f"cgroup v1 cfs quota of 1 CPU: 1 worker: {w[:3]}")
            w = workers_with(None, v1=(-1, 100000))
            check(w[0] == ncpu, f"cgroup v1 unlimited: {ncpu} workers: {w[:3]}")
            w = workers_with("max 100000", taskset="0")
            check(w[0] == 1, f"taskset -c 0: 1 worker: {w[:3]}")
            w = workers_with("100000 100000", extra=("--workers", "4"))
            check(w[0] == 1 and "warning" in w[3], f"--workers 4 under a 1-CPU quota: clamped "
                                                   f"to 1 with a warning: {w[:3]}")
        else:
            print("SKIPPED cgroup/affinity clamping cases: this machine has 1 CPU")


def main():
    for p in (SERVE, CLI, MODEL, LABELS, NOODLES):
        if not os.path.exists(p):
            print(f"test_server: FAIL: {p} is missing", file=sys.stderr)
            return 1
    only = sys.argv[1:]
    tests = [test_routes_and_formats, test_bad_input, test_body_budget, test_backpressure,
             test_http_priority, test_slow_clients_and_connection_cap, test_sigterm_drain,
             test_metrics_and_log,
             test_config]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        print(f"== {t.__name__}", flush=True)
        t0 = time.monotonic()
        try:
            t()
        except Exception as e:  # noqa: BLE001 -- a crash is a failure, with its reason
            import traceback
            traceback.print_exc()
            check(False, f"{t.__name__} raised {e!r}")
        print(f"   ({time.monotonic() - t0:.1f} s)")
    print(f"test_server: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
