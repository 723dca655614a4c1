#!/usr/bin/env python3
"""Where the time goes, Morsel against ONNX Runtime, layer group by layer group.

    python3 test/bench/vs_ort.py --work build/race --model xception [--threads 1] [--morsel build/morsel]

Takes a model race.py prepared (its .morsel and .onnx in WORK/MODEL/), times Morsel per op
(`morsel bench --per-op --json`) and ONNX Runtime per node (its profiler, 25 runs, the first 5
dropped, per-node medians), and groups both by output shape (H x W x channels rounded up to 16:
ORT's NCHWc layout pads channels, and its node names do not match Keras layers). Fused ops
count where they run on both sides; a group where only one engine has ops (ORT's layout
reorders, Morsel's folded pads) shows zero on the other. Sorted by Morsel's excess, so the
first rows are where to look. The engines run one after the other, not interleaved: on a
shared VM compare the groups, not the totals. A benchmark, not a test.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def shape_key(h, w, c):
    return (int(h), int(w), (int(c) + 15) // 16 * 16)


def morsel_groups(binary, path, threads):
    out = subprocess.run([binary, "bench", "--model", path, "--runs", "30", "--threads",
                          str(threads), "--per-op", "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{binary} failed: {out.stderr.strip()}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    groups = collections.defaultdict(list)
    for o in d["ops"]:
        dims = o["shape"].split("x")
        h, w, c = dims if len(dims) == 3 else (1, 1, dims[-1])
        groups[shape_key(h, w, c)].append(o["ms"])
    return d["median_ms"], groups


def ort_groups(path, threads):
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join("/tmp", f"vs_ort_{os.getpid()}")
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    x = np.random.default_rng(0).random([d if isinstance(d, int) else 1 for d in i.shape],
                                        dtype=np.float32)
    for _ in range(25):
        s.run(None, {i.name: x})
    trace = s.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    per_node = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[e["name"]].append((e["dur"], e["args"].get("output_type_shape")))
    groups = collections.defaultdict(list)
    for runs in per_node.values():
        durs = sorted(r[0] for r in runs[5:]) or [runs[-1][0]]
        sh = next(iter(runs[0][1][0].values()))
        if len(sh) == 5:  # NCHWc: [N, C/16, H, W, 16]
            sh = [sh[0], sh[1] * sh[4], sh[2], sh[3]]
        key = shape_key(sh[2], sh[3], sh[1]) if len(sh) == 4 else shape_key(1, 1, sh[-1])
        groups[key].append(durs[len(durs) // 2] / 1000.0)
    return groups


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "race"))
    ap.add_argument("--model", required=True, help="a model directory race.py prepared")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--morsel", default=os.path.join(ROOT, "build", "morsel"))
    args = ap.parse_args()
    base = os.path.join(args.work, args.model, args.model)
    median, mine = morsel_groups(args.morsel, base + ".morsel", args.threads)
    theirs = ort_groups(base + ".onnx", args.threads)
    rows = []
    for k in set(mine) | set(theirs):
        a, b = sum(mine.get(k, [])), sum(theirs.get(k, []))
        rows.append((a - b, k, a, b, len(mine.get(k, [])), len(theirs.get(k, []))))
    rows.sort(reverse=True)
    print(f"{args.model}, {args.threads} thread(s): Morsel median {median:.2f} ms, per-op sum "
          f"{sum(r[2] for r in rows):.2f}; ORT per-node sum {sum(r[3] for r in rows):.2f}")
    print("| output (HxWxC16) | Morsel ms | ORT ms | Morsel - ORT | Morsel ops | ORT nodes |")
    print("|---|---:|---:|---:|---:|---:|")
    for d, k, a, b, na, nb in rows:
        print(f"| {'x'.join(map(str, k))} | {a:.3f} | {b:.3f} | {d:+.3f} | {na} | {nb} |")


if __name__ == "__main__":
    main()
