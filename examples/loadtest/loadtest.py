#!/usr/bin/env python3
"""The users' load test, on loopback, bounded in time: the Flask + TensorFlow app they run today
(flask_app.py) and morsel-serve, each pinned to CPU 0 with the load generator on CPU 1, under
the same siege commands in the same run (levels interleaved, so machine noise hits both).

  1. siege -c C -t <seconds>S /test for C in --levels (10 is the users' test; 100 is overload);
  2. their staged profile (siege -c 20 -d 100 rising to -c 30 -d 1 and back), each of its
     30 one-minute stages shortened to --stage-seconds;
  3. the replica setup: two morsel-serve, pinned to one CPU each, behind haproxy (layer 4,
     round robin) standing in for the Kubernetes Service;
  4. wrk (keep-alive) for the maximum request rate and p50/p90/p99 latency.

Writes OUT/results.json, OUT/results.md (the users' table) and OUT/load.png, OUT/staged.png.
Both servers classify the users' own bundled image with the same Keras file: Flask loads the .h5,
morsel-serve a .morsel exported from it here with the app's pipeline (bicubic stretch to
224x224, x/255).

    python examples/loadtest/loadtest.py [--seconds 30] [--stage-seconds 6] [--out DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import report  # noqa: E402
import tools  # noqa: E402

SHARED = os.environ.get("MORSEL_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
MODEL_DIR = os.path.join(SHARED, "models", "real", "food11-tm-mobilenetv2")
# The users' script (30 minutes): (minutes, siege -d, siege -c).
STAGES = [(5, 100, 20), (2, 50, 20), (2, 10, 20), (1, 3, 20), (5, 1, 20), (5, 1, 30),
          (1, 3, 20), (2, 60, 20), (7, 80, 20)]


def export_model(out_dir, python):
    path = os.path.join(out_dir, "food11-flaskpipeline.morsel")
    if os.path.exists(path):
        return path
    cmd = [python, os.path.join(ROOT, "weights", "morsel_export.py"),
           os.path.join(MODEL_DIR, "keras_model.h5"), "-o", path,
           "--labels", os.path.join(MODEL_DIR, "labels.txt"), "--name", "food11",
           "--preprocess", "unit", "--resize", "bicubic", "--crop", "none", "-q"]
    print("loadtest: exporting", path, flush=True)
    subprocess.run(cmd, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    return path


def codes(server):
    """Answers per status code as the server counts them (morsel-serve only; Flask has no
    /metrics)."""
    if server.name == "flask+tf":
        return None
    return tools.status_counts(f"http://127.0.0.1:{server.port}")


def diff(after, before):
    if after is None:
        return None
    before = before or {}
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def morsel_argv(serve, model, port, image):
    return [serve, "--model", model, "--host", "127.0.0.1", "--port", str(port),
            "--test-image", image, "--model-name", "food11",
            # the access log gives the latency of the 200s alone (tools.Server.served_ms)
            "--log", "json",
            # the manifests' settings (examples/deploy/k8s)
            "--queue", "32", "--max-body-total", "67108864", "--max-connections", "512",
            "--timeout", "10"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", default=os.path.join(ROOT, "build", "examples", "server",
                                                     "morsel-serve"))
    ap.add_argument("--python", default=sys.executable,
                    help="Python with flask, tensorflow-cpu and tf-keras")
    ap.add_argument("--image", default=os.path.join(SHARED, "images", "seed", "test_image.jpeg"),
                    help="the image /test classifies (default: the users' own test_image.jpeg)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "loadtest"))
    ap.add_argument("--seconds", type=int, default=30, help="siege -t per level")
    ap.add_argument("--levels", default="1,10,30,100", help="siege -c levels")
    ap.add_argument("--stage-seconds", type=float, default=6,
                    help="seconds per minute of the users' staged profile (0: skip it)")
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--no-flask", action="store_true", help="morsel-serve only")
    a = ap.parse_args()

    tools.require("siege", "wrk", "haproxy", "taskset")
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        raise SystemExit("loadtest: needs CPUs 0 and 1 (server on one, load on the other)")
    if not os.access(a.serve, os.X_OK):
        raise SystemExit(f"loadtest: no morsel-serve at {a.serve} (build it, or --serve)")
    os.makedirs(a.out, exist_ok=True)
    levels = [int(x) for x in a.levels.split(",")]
    rc = os.path.join(a.out, "siegerc")
    with open(rc, "w") as fh:
        fh.write(tools.SIEGERC)
    model = export_model(a.out, a.python)
    res = {"levels": levels, "seconds": a.seconds, "stage_seconds": a.stage_seconds,
           "image": a.image, "model": model, "servers": {}, "siege": [], "staged": [],
           "replica": [], "wrk": []}

    servers = {}
    try:
        port = tools.free_port()
        servers["morsel-serve"] = tools.Server(
            "morsel-serve", morsel_argv(a.serve, model, port, a.image), 0, port,
            os.path.join(a.out, "morsel-serve.log"), "/readyz")
        servers["morsel-serve"].wait_ready(30)
        if not a.no_flask:
            port = tools.free_port()
            servers["flask+tf"] = tools.Server(
                "flask+tf", [a.python, os.path.join(HERE, "flask_app.py"),
                             "--model", os.path.join(MODEL_DIR, "keras_model.h5"),
                             "--labels", os.path.join(MODEL_DIR, "labels.txt"),
                             "--test-image", a.image, "--port", str(port)],
                0, port, os.path.join(a.out, "flask.log"), "/")
            servers["flask+tf"].wait_ready(600)
        order = [n for n in ("flask+tf", "morsel-serve") if n in servers]
        for name in order:
            s = servers[name]
            with urllib.request.urlopen(s.url("/test"), timeout=120) as r:
                answer = r.read().decode("utf-8", "replace")
            res["servers"][name] = {"start_s": s.start_s,
                                    "rss_after_start_mib": s.rss_after_start_kib / 1024,
                                    "first_answer": answer}
            print(f"loadtest: {name} ready in {s.start_s:.3f} s, "
                  f"{s.rss_after_start_kib / 1024:.0f} MiB; /test -> {answer}", flush=True)

        for c in levels:
            for name in order:
                s = servers[name]
                cpu0 = tools.cpu_seconds(s.pid)
                codes0 = codes(s)
                tools.wait_idle(servers.values())
                row = tools.siege(rc, s.url(), c, a.seconds)
                row["cpu_s_per_transaction"] = ((tools.cpu_seconds(s.pid) - cpu0) /
                                                max(row["successful_transactions"], 1))
                row["server_codes"] = diff(codes(s), codes0)
                row["server"] = name
                row["peak_rss_mib"] = s.peak_rss_kib() / 1024
                res["siege"].append(row)
                print(f"loadtest: {name:13s} c={c:<4d} {row['transaction_rate']:8.2f} trans/s "
                      f"resp {row['response_time']:.2f} s longest "
                      f"{row['longest_transaction']:.2f} s avail {row['availability']:.2f} % "
                      f"rss {row['peak_rss_mib']:.0f} MiB", flush=True)

        if a.stage_seconds > 0:
            t = 0.0
            for i, (minutes, d, c) in enumerate(STAGES):
                secs = max(1, round(minutes * a.stage_seconds))
                for name in order:
                    s = servers[name]
                    tools.wait_idle(servers.values())
                    row = tools.siege(rc, s.url(), c, secs, delay=d)
                    row.update(server=name, stage=i, start_s=t, seconds=secs,
                               peak_rss_mib=s.peak_rss_kib() / 1024)
                    res["staged"].append(row)
                print(f"loadtest: stage {i} (-c {c} -d {d}, {secs} s) done", flush=True)
                t += secs

        # The overload bound is relative to the sustainable concurrency: the highest siege level
        # morsel-serve answered entirely with 200s. wrk also runs at 10x that level.
        sustained = max([r["offered_concurrency"] for r in res["siege"]
                         if r["server"] == "morsel-serve" and r["availability"] == 100.0
                         and set(r["server_codes"] or {}) <= {"200"}], default=None)
        res["sustained_concurrency"] = sustained
        for name in order:
            wrk_levels = [10, 100]
            if name == "morsel-serve" and sustained:
                wrk_levels = sorted({10, 100, sustained, 10 * sustained})
            for c in wrk_levels:
                tools.wait_idle(servers.values())
                since = servers[name].log_offset()
                row = tools.wrk(servers[name].url(), c, a.wrk_seconds)
                row["server"] = name
                if name == "morsel-serve":
                    served = servers[name].served_ms(since)
                    row["served_p50_ms"] = tools.percentile(served, 50)
                    row["served_p99_ms"] = tools.percentile(served, 99)
                res["wrk"].append(row)
                print(f"loadtest: wrk {name} c={c}: {row['requests_per_s']:.1f} req/s "
                      f"p99 {row['p99_s']}", flush=True)
        for name in order:
            res["servers"][name]["peak_rss_mib"] = servers[name].peak_rss_kib() / 1024
            res["servers"][name]["exit_code"] = servers[name].stop()
        servers.clear()

        # Replicas: one CPU each, so the load generator and haproxy share them (there is no
        # third CPU); the row says what two pinned replicas give, not a clean scaling factor.
        pods = []
        for cpu in (0, 1):
            port = tools.free_port()
            pods.append(tools.Server(f"replica{cpu}", morsel_argv(a.serve, model, port, a.image),
                                     cpu, port, os.path.join(a.out, f"replica{cpu}.log"),
                                     "/readyz"))
            servers[f"replica{cpu}"] = pods[-1]
        for p in pods:
            p.wait_ready(30)
        lb_port = tools.free_port()
        lb = tools.haproxy(os.path.join(a.out, "haproxy.cfg"), lb_port, [p.port for p in pods],
                           os.path.join(a.out, "haproxy.log"))
        try:
            url = f"http://127.0.0.1:{lb_port}/test"
            for c in (10, 100):
                codes0 = [codes(p) for p in pods]
                row = tools.siege(rc, url, c, a.seconds, cpu=None)
                row["server_codes"] = {}
                for p, c0 in zip(pods, codes0):
                    for k, v in diff(codes(p), c0).items():
                        row["server_codes"][k] = row["server_codes"].get(k, 0) + v
                row["server"] = "2 x morsel-serve + haproxy"
                row["peak_rss_mib"] = sum(p.peak_rss_kib() for p in pods) / 1024
                res["replica"].append(row)
                print(f"loadtest: replicas c={c}: {row['transaction_rate']:.2f} trans/s",
                      flush=True)
            row = tools.wrk(url, 100, a.wrk_seconds, cpu=None)
            row["server"] = "2 x morsel-serve + haproxy"
            res["wrk"].append(row)
        finally:
            lb.terminate()
            lb.wait()
    finally:
        for s in servers.values():
            s.stop()

    with open(os.path.join(a.out, "results.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    md = report.markdown(res)
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write(md)
    report.charts(res, a.out)
    print(md)
    print(f"loadtest: wrote {a.out}/results.md, results.json, load.png, staged.png")


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    print(f"loadtest: {time.monotonic() - t0:.0f} s")
