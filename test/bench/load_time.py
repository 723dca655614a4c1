#!/usr/bin/env python3
"""Model load time, phase by phase, of one or more `morsel` binaries, interleaved.

    python3 test/bench/load_time.py [--model M] [--rounds 15] BIN [BIN...]

Each round starts one fresh process per binary (`BIN bench --load-only --json`), in rotated
order, so that the machine's drift hits every binary alike; the table gives each phase's median
over the rounds (morsel_model_info.load_*_ms) and, with two or more binaries, each one's ratio
to the first. The file stays in the page cache between rounds, as on a server that restarts:
the figures are a warm load. A benchmark, not a test.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PHASES = ("read", "crc", "parse", "check", "prepare", "plan")


def one(binary, model):
    out = subprocess.run([binary, "bench", "--load-only", "--json", "--model", model],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{binary} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--model", default=os.path.join(ROOT, "weights", "nsfwjs_mobilenet_v2.morsel"))
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    bins = args.binaries
    runs = {b: [] for b in bins}
    for r in range(args.rounds):
        for k in range(len(bins)):
            b = bins[(r + k) % len(bins)]
            runs[b].append(one(b, args.model))
    keys = ["load_ms", "load_cpu_ms"] + [f"load_{p}_ms" for p in PHASES] + ["rss_mb"]
    med = {b: {k: statistics.median(x[k] for x in runs[b]) for k in keys} for b in bins}
    print(f"model {args.model}, {args.rounds} rounds, median of fresh processes (warm page cache)")
    head = "| phase | " + " | ".join(f"bin {i}" for i in range(len(bins)))
    head += "".join(f" | bin {i} / bin 0" for i in range(1, len(bins))) + " |"
    print("\n" + head)
    print("|" + "---|" * (1 + 2 * len(bins) - 1))
    for k in keys:
        name = {"load_ms": "total", "load_cpu_ms": "total, CPU time"}.get(
            k, k.replace("load_", "").replace("_ms", ""))
        unit = "MB" if k == "rss_mb" else "ms"
        row = f"| {name} ({unit}) | " + " | ".join(f"{med[b][k]:.3f}" for b in bins)
        row += "".join(f" | {med[b][k] / med[bins[0]][k]:.2f}" if med[bins[0]][k] > 0 else " | -"
                       for b in bins[1:])
        print(row + " |")
    print()
    for i, b in enumerate(bins):
        print(f"bin {i}: {b}")


if __name__ == "__main__":
    main()
