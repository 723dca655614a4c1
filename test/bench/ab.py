#!/usr/bin/env python3
"""A/B of two or more `morsel` binaries on one model: inference time, whole and per op, interleaved.

    python3 test/bench/ab.py --model M [--threads 1] [--rounds 8] [--runs 50]
                             [--ops I0-I1 | --type conv2d] BIN [BIN...]

Each round starts one fresh process per binary (`BIN bench --per-op --json`), in rotated order,
so the machine's drift hits every binary alike. The table gives, per binary, the median over
the rounds of: the process's median and minimum ms per image, and the per-op sum over the
selected ops (an index range, an op type, or all ops). On a shared VM whole-model medians move
10-20 % from minute to minute; a change's own layers, summed within each process, move far
less (that is how a 4 % gain on a few layers shows through). A benchmark, not a test.
"""
import argparse
import json
import statistics
import subprocess
import sys


def one(binary, args):
    cmd = [binary, "bench", "--model", args.model, "--threads", str(args.threads), "--runs",
           str(args.runs), "--per-op", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{binary} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def selected(op, args):
    if args.type:
        return op["type"] == args.type
    if args.ops:
        lo, hi = (int(v) for v in args.ops.split("-"))
        return lo <= op["index"] <= hi
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--ops", help="op index range I0-I1 (see `morsel bench --per-op --json`)")
    ap.add_argument("--type", help="op type, e.g. conv2d, depthwise_conv2d, global_avg_pool")
    args = ap.parse_args()
    bins = args.binaries
    rows = {b: [] for b in bins}
    for r in range(args.rounds):
        for b in bins[r % len(bins):] + bins[:r % len(bins)]:
            d = one(b, args)
            part = sum(o["ms"] for o in d["ops"] if selected(o, args))
            rows[b].append((d["median_ms"], d["min_ms"], part))
    what = args.type or (f"ops {args.ops}" if args.ops else "all ops")
    print(f"{args.model}, {args.threads} thread(s), {args.rounds} rounds x {args.runs} runs;"
          " medians over the rounds, ms")
    print(f"| binary | median | min | {what} (per-op sum) | ratio to first |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(v[2] for v in rows[bins[0]])
    for b in bins:
        med, mn, part = (statistics.median(v[i] for v in rows[b]) for i in range(3))
        print(f"| {b} | {med:.3f} | {mn:.3f} | {part:.3f} | {part / base if base else 0:.3f} |")


if __name__ == "__main__":
    main()
