#!/usr/bin/env python3
"""The race: Morsel against ONNX Runtime, LiteRT (XNNPACK) and OpenVINO on the same networks.

    python test/bench/race.py [--models m1,m2] [--threads 1,2] [--procs 3] [--runs 50]

Every (model, threads) row runs each engine in --procs fresh processes, interleaved
(M O L V, O L V M, ...) so that the machine's drift hits all engines alike. A process loads the
model, warms up, times --runs single-image inferences and reports its median; a row's figure is
the median of its processes' medians. Prints markdown tables: median ms and Morsel / best other,
the same for each engine's fastest process (what it does in a quiet minute), then load time
and peak RSS (ru_maxrss of the whole process; the Python engines' includes the interpreter and
numpy, about 30-60 MB) and Morsel's load on 4 KiB pages (`morsel --pages small`).

Converted models are cached under --work (default build/race/): each is checked once against
Keras on one input (max |diff| of the probabilities printed) before it is ever timed.
Needs test/bench/requirements.txt in the venv, node (nsfwjs extraction) and build/morsel.
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENGINES = ("morsel", "onnxruntime", "litert", "openvino")
SHORT = {"morsel": "Morsel", "onnxruntime": "ORT", "litert": "LiteRT", "openvino": "OpenVINO"}
# name: (source, input size, input range the network expects)
MODELS = {
    "nsfwjs_mobilenet_v2": ("nsfwjs:mobilenet_v2", 224, (0.0, 1.0)),
    "nsfwjs_inception_v3": ("nsfwjs:inception_v3", 299, (0.0, 1.0)),
    "resnet50v2": ("keras:ResNet50V2", 224, (-1.0, 1.0)),
    "xception": ("keras:Xception", 299, (-1.0, 1.0)),
    "efficientnetb0": ("keras:EfficientNetB0", 224, (0.0, 255.0)),
}
NSFWJS = "4.4.0"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"race: {' '.join(map(str, cmd))} failed ({p.returncode}):\n"
                         f"{p.stdout[-2000:]}{p.stderr[-3000:]}")
    return p.stdout


# ---- preparation: .morsel, .onnx, .tflite and the check against Keras ------------------------

def nsfwjs_tfjs(work, which, deps):
    """TF.js layers dir of one nsfwjs model, from the npm tarball (the repo's .deps/ copy when
    setup.sh made one, else `npm pack` into work/)."""
    out = os.path.join(work, f"nsfwjs_{which}_tfjs")
    if os.path.isfile(os.path.join(out, "model.json")):
        return out
    tgz = os.path.join(deps, f"nsfwjs-{NSFWJS}.tgz")
    if not os.path.isfile(tgz):
        tgz = os.path.join(work, f"nsfwjs-{NSFWJS}.tgz")
        if not os.path.isfile(tgz):
            run(["npm", "pack", "--silent", f"nsfwjs@{NSFWJS}"], cwd=work)
    pkg = os.path.join(work, f"nsfwjs-{NSFWJS}")
    if not os.path.isdir(os.path.join(pkg, "package")):
        os.makedirs(pkg, exist_ok=True)
        run(["tar", "-xzf", tgz, "-C", pkg])
    run(["node", os.path.join(ROOT, "weights", "nsfwjs_to_tfjs.js"),
         os.path.join(pkg, "package", "dist", "models", which), out + ".tmp"])
    os.replace(out + ".tmp", out)
    return out


def keras_for_nsfwjs(tfjs_dir):
    """The Keras reference of a TF.js model, rebuilt by the exporter's own self-test loader
    (the same reference `morsel verify` was made with)."""
    sys.path.insert(0, os.path.join(ROOT, "weights"))
    from morsel_exporter import containers, graph, selftest, weights
    src = containers.read(os.path.join(tfjs_dir, "model.json"))
    tree = graph.parse_tree(src.model_config)
    weights.assign(tree, src)
    model, how = selftest._build_from_config(src, tree, "the TF.js topology")
    log(f"  Keras reference: {how}")
    return model


def keras_application(arch, size, seed=1234):
    """keras.applications `arch`, random weights with non-trivial BatchNormalization statistics
    and a last layer scaled so the probabilities are informative (the parity tests' recipe)."""
    import keras
    import numpy as np
    sys.path.insert(0, os.path.join(ROOT, "test"))
    import parity_models as P
    keras.utils.set_random_seed(seed)
    m = getattr(keras.applications, arch)(weights=None, input_shape=(size, size, 3))
    rng = np.random.default_rng(seed)
    P.randomize(m, keras, rng)
    lo, hi = MODELS_RANGE[arch]
    P.calibrate(m, keras, rng.uniform(lo, hi, (2, size, size, 3)).astype(np.float32))
    return m


MODELS_RANGE = {src.split(":")[1]: rng for src, _, rng in MODELS.values()}


def to_tflite(model, size, path):
    """Float32 TFLite through a SavedModel: converting a concrete function straight from a
    Keras 3 model leaves its weights as resource variables that LiteRT cannot read."""
    import shutil
    import tempfile
    import tensorflow as tf
    tmp = tempfile.mkdtemp(prefix="race_savedmodel_")
    try:
        # export() prints the signature to stdout, where the race's tables go.
        with contextlib.redirect_stdout(sys.stderr):
            if "format" in model.export.__code__.co_varnames:  # Keras 3
                model.export(tmp, format="tf_saved_model", verbose=False)
            else:  # tf_keras
                model.export(tmp)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        conv.optimizations = []  # float32, no quantization
        data = conv.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(path, "wb") as f:
        f.write(data)


def prepare(name, args):
    """Makes (once) and returns the model's files: {morsel, onnx, tflite, macs, size, diffs}."""
    src, size, (lo, hi) = MODELS[name]
    d = os.path.join(args.work, name)
    meta_path = os.path.join(d, "meta.json")
    if os.path.isfile(meta_path):
        return json.load(open(meta_path))
    os.makedirs(d, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    log(f"preparing {name} in {d}")
    files = {k: os.path.join(d, f"{name}.{k}") for k in ("morsel", "onnx", "tflite")}
    py = sys.executable
    kind, which = src.split(":")
    # Each step is skipped when its file is there, so a failed preparation resumes.
    if kind == "nsfwjs":
        tfjs = nsfwjs_tfjs(args.work, which, args.deps)
        if not os.path.isfile(files["morsel"]):
            run([py, os.path.join(ROOT, "weights", "morsel_export.py"), tfjs, "-o",
                 files["morsel"], "--name", f"nsfwjs-{NSFWJS}-{which}", "--preprocess", "unit",
                 "--resize", "bilinear"])
        st = os.path.join(d, "onnx_stats.json")
        if not os.path.isfile(files["onnx"]):
            run([py, os.path.join(args.shared, "bench", "keras_json_to_onnx.py"), tfjs,
                 files["onnx"], "--stats", st, "--no-logits"])
        macs = json.load(open(st))["total_macs"]
        model = keras_for_nsfwjs(tfjs)
    else:
        import keras
        import keras_onnx
        import onnx
        kpath = os.path.join(d, f"{name}.keras")
        if os.path.isfile(kpath):
            model = keras.models.load_model(kpath)
        else:
            model = keras_application(which, size)
            model.save(kpath)
        if not os.path.isfile(files["morsel"]):
            run([py, os.path.join(ROOT, "weights", "morsel_export.py"), kpath, "-o",
                 files["morsel"], "--name", name])
        om, macs = keras_onnx.convert(model)
        onnx.save(om, files["onnx"])
    if not os.path.isfile(files["tflite"]):
        to_tflite(model, size, files["tflite"])

    x = np.random.default_rng(7).uniform(lo, hi, (1, size, size, 3)).astype(np.float32)
    ref = np.asarray(model(x, training=False), np.float64).reshape(-1)
    xin, yout = os.path.join(d, "x.f32"), os.path.join(d, "y.f32")
    x.astype("<f4").tofile(xin)
    diffs = {}
    for eng in ENGINES:
        try:
            if eng == "morsel":
                run([args.morsel, "run", files["morsel"], xin, yout])
                y = np.fromfile(yout, "<f4")
            else:
                sess = load_engine(eng, files, 1, size)
                y = sess(x)
            diffs[eng] = float(np.abs(np.asarray(y, np.float64).reshape(-1) - ref).max())
        except SystemExit as e:
            log(f"  {eng}: check failed: {e}")
            diffs[eng] = None
    meta = {"name": name, "size": size, "macs": int(macs), "diffs": diffs, **files,
            "max_prob": float(ref.max())}
    log(f"  max |engine - Keras| over the probabilities: "
        + ", ".join(f"{SHORT[e]} {v:.2g}" if v is not None else f"{SHORT[e]} FAILED"
                    for e, v in diffs.items()))
    json.dump(meta, open(meta_path, "w"), indent=1)
    return meta


# ---- one engine in one process ------------------------------------------------------------------

def load_engine(engine, files, threads, size):
    """Loads the model into `engine`; returns a function image batch [1,H,W,3] -> output."""
    import numpy as np
    if engine == "onnxruntime":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(files["onnx"], so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {name: x})[0]
    if engine == "litert":
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path=files["tflite"], num_threads=threads)
        it.allocate_tensors()
        i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

        def f(x):
            it.set_tensor(i, x)
            it.invoke()
            return it.get_tensor(o)
        return f
    if engine == "openvino":
        import openvino as ov
        core = ov.Core()
        m = core.read_model(files["onnx"])
        m.reshape({m.inputs[0]: [1, size, size, 3]})
        cm = core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                           "INFERENCE_NUM_THREADS": threads,
                                           "PERFORMANCE_HINT": "LATENCY"})
        req = cm.create_infer_request()

        def f(x):
            req.infer({0: x})
            return np.array(req.get_output_tensor(0).data)
        return f
    raise ValueError(engine)


def worker(args):
    """`race.py --worker ENGINE META THREADS`: one timed process, one JSON line out."""
    import numpy as np
    engine, meta = args.worker[0], json.load(open(args.worker[1]))
    threads, size = int(args.worker[2]), meta["size"]
    x = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    t = time.perf_counter()
    f = load_engine(engine, meta, threads, size)
    load_ms = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    f(x)
    first_ms = (time.perf_counter() - t) * 1e3
    w0 = time.perf_counter()
    n = 0
    while n < args.warmup or (time.perf_counter() - w0) * 1e3 < args.warmup_ms:
        f(x)
        n += 1
    ms = []
    for _ in range(args.runs):
        t = time.perf_counter()
        f(x)
        ms.append((time.perf_counter() - t) * 1e3)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_ms": statistics.median(ms), "min_ms": min(ms), "load_ms": load_ms,
                      "first_ms": first_ms, "rss_mb": rss_mb}))


def one_process(engine, meta, threads, args):
    if engine == "morsel":
        out = run([args.morsel, "bench", "--json", "--model", meta["morsel"], "--threads",
                   str(threads), "--runs", str(args.runs), "--warmup", str(args.warmup),
                   "--warmup-ms", str(args.warmup_ms)])
    else:
        out = run([sys.executable, os.path.abspath(__file__), "--worker", engine,
                   os.path.join(args.work, meta["name"], "meta.json"), str(threads),
                   "--runs", str(args.runs), "--warmup", str(args.warmup),
                   "--warmup-ms", str(args.warmup_ms)])
    return json.loads(out.strip().splitlines()[-1])


# ---- the race ---------------------------------------------------------------------------------

def steal_s():
    """CPU time the hypervisor gave to other guests, summed over this VM's CPUs (Linux
    /proc/stat), in seconds. On this project's shared VMs the 2-thread rows of every engine
    slow down together for minutes at a time. Measured in session 11, that came with the two
    vCPUs sitting far apart (a cache-line round trip between them of 350-1900 ns, `morsel
    bench`'s xcpu_ns), not with steal, which stayed at 0-2 ms per s; printed so that a table
    shows it was not steal."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of: " + ", ".join(MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--procs", type=int, default=3, help="processes per engine per row")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per process")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--warmup-ms", type=int, default=300,
                    help="and at least this long: every engine's first ~80 ms on a vCPU that sat "
                         "idle through the load ran 2-4x slower here (2 threads)")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "race"))
    ap.add_argument("--morsel", default=os.path.join(ROOT, "build", "morsel"))
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    ap.add_argument("--deps", default=os.path.join(ROOT, ".deps"),
                    help="where setup.sh keeps the nsfwjs tarball")
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.procs < 1 or args.runs < 1 or args.warmup < 0 or args.warmup_ms < 0:
        ap.error("--procs >= 1, --runs >= 1, --warmup >= 0, --warmup-ms >= 0")
    models = [m for m in args.models.split(",") if m]
    engines = [e for e in args.engines.split(",") if e]
    threads = [int(t) for t in args.threads.split(",") if t]
    for bad in [m for m in models if m not in MODELS] + [e for e in engines if e not in ENGINES]:
        ap.error(f"unknown model or engine '{bad}'")
    if not os.access(args.morsel, os.X_OK):
        ap.error(f"{args.morsel} is not built")
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    sys.path.insert(0, HERE)
    metas = {m: prepare(m, args) for m in models}
    if args.prepare_only:
        return
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    rows, steal, xcpu, small = [], {}, {}, {}
    for m in models:
        # Thread counts take turns too, not only engines: the machine's speed at 2 threads
        # drifts over minutes (steal_s), and a speed-up is only as good as the 1- and
        # 2-thread runs sharing the same minutes.
        res = {(t, e): [] for t in threads for e in engines}
        st0, t0 = steal_s(), time.perf_counter()
        for p in range(args.procs):
            order = engines[p % len(engines):] + engines[:p % len(engines)]
            for t in (threads if p % 2 == 0 else threads[::-1]):
                for e in order:
                    r = one_process(e, metas[m], t, args)
                    res[(t, e)].append(r)
                    log(f"{m} t={t} proc {p + 1}/{args.procs} {SHORT[e]}: "
                        f"median {r['median_ms']:.2f} ms")
            if "morsel" in engines:
                # What the CLI's classify pays to load (morsel_open_options.pages small): the
                # bench rows above load on huge pages, as a server does.
                out = run([args.morsel, "--pages", "small", "bench", "--load-only", "--json",
                           "--model", metas[m]["morsel"]])
                small.setdefault(m, []).append(json.loads(out.strip().splitlines()[-1])["load_ms"])
        st1, t1 = steal_s(), time.perf_counter()
        for t in threads:
            rows.append((m, t, {e: {**{k: statistics.median(r[k] for r in res[(t, e)])
                                       for k in ("median_ms", "load_ms", "rss_mb")},
                                    "fastest_ms": min(r["median_ms"] for r in res[(t, e)])}
                                for e in engines}))
        steal[m] = None if st0 is None or st1 is None else (st1 - st0) / (t1 - t0) * 1e3
        far = [r["xcpu_ns"] for t in threads if t > 1 for r in res.get((t, "morsel"), [])
               if "xcpu_ns" in r]
        xcpu[m] = statistics.median(far) if far else None
    print(f"\nMorsel {rev}; {args.procs} processes x {args.runs} runs (after {args.warmup} "
          f"warm-up runs and at least {args.warmup_ms} ms) per engine per row; median of the process medians, ms per image.\n")
    others = [e for e in engines if e != "morsel"]
    print("| model | threads | GFLOP | " + " | ".join(SHORT[e] for e in engines) +
          (" | Morsel / best |" if "morsel" in engines and others else " |"))
    print("|---|---:|---:|" + "---:|" * len(engines) + ("---:|" if "morsel" in engines and others else ""))
    for m, t, r in rows:
        cells = [fmt(r[e]["median_ms"]) for e in engines]
        line = f"| {m} | {t} | {2 * metas[m]['macs'] / 1e9:.2f} | " + " | ".join(cells) + " |"
        if "morsel" in engines and others:
            best = min(others, key=lambda e: r[e]["median_ms"])
            line += f" {r['morsel']['median_ms'] / r[best]['median_ms']:.2f} ({SHORT[best]}) |"
        print(line)
    if "morsel" in engines and others:
        # On a shared VM a noisy minute slows every engine's processes that run in it (this
        # machine's Morsel MobileNetV2 processes: 4.66, 4.66, 4.68, 5.45, 5.55, 5.67, 6.81 ms),
        # so the medians above move with the minute; the fastest process of each engine is
        # what it does in a quiet minute, and all engines get their turns at those.
        print("\nFastest process (the lowest process median), ms per image:\n")
        print("| model | threads | " + " | ".join(SHORT[e] for e in engines) + " | Morsel / best |")
        print("|---|---:|" + "---:|" * len(engines) + "---:|")
        for m, t, r in rows:
            best = min(others, key=lambda e: r[e]["fastest_ms"])
            print(f"| {m} | {t} | " + " | ".join(fmt(r[e]["fastest_ms"]) for e in engines) +
                  f" | {r['morsel']['fastest_ms'] / r[best]['fastest_ms']:.2f} ({SHORT[best]}) |")
    by = {(m, t): r for m, t, r in rows}
    pairs = [m for m in models if (m, 1) in by and (m, 2) in by]
    if pairs:
        print("\n2-thread speed-up (1-thread median / 2-thread median):\n")
        print("| model | " + " | ".join(SHORT[e] for e in engines) + " |")
        print("|---|" + "---:|" * len(engines))
        for m in pairs:
            print(f"| {m} | " + " | ".join(f"{by[(m, 1)][e]['median_ms'] / by[(m, 2)][e]['median_ms']:.2f}"
                                           for e in engines) + " |")
    if any(v is not None for v in xcpu.values()):
        print("\nHow far apart the CPUs were (`morsel bench`'s xcpu_ns, median over Morsel's "
              "multi-thread processes): " +
              ", ".join(f"{m} {fmt(xcpu[m], 0)} ns" for m in models))
    print("\nCPU steal during each model's rows (ms of other guests' time per s, all CPUs): " +
          ", ".join(f"{m} {fmt(steal[m], 0)}" for m in models))
    print("\nLoad time (ms) / peak RSS (MB), median over the processes:\n")
    print("| model | threads | " + " | ".join(SHORT[e] for e in engines) + " |")
    print("|---|---:|" + "---:|" * len(engines))
    for m, t, r in rows:
        print(f"| {m} | {t} | " + " | ".join(f"{fmt(r[e]['load_ms'], 0)} / "
                                             f"{fmt(r[e]['rss_mb'], 0)}" for e in engines) + " |")
    if small:
        print("\nMorsel's load on 4 KiB pages (`morsel --pages small`, as its classify opens a "
              "model), median over the processes, ms: " +
              ", ".join(f"{m} {fmt(statistics.median(v), 0)}" for m, v in small.items()))
    print("\nmax |engine - Keras| (probabilities, one input):\n")
    print("| model | " + " | ".join(SHORT[e] for e in ENGINES) + " |")
    print("|---|" + "---:|" * len(ENGINES))
    for m in models:
        dd = metas[m]["diffs"]
        print(f"| {m} | " + " | ".join("FAILED" if dd.get(e) is None else f"{dd[e]:.1e}"
                                       for e in ENGINES) + " |")


if __name__ == "__main__":
    main()
