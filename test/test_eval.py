#!/usr/bin/env python3
"""`morsel eval` against scikit-learn. Builds a labelled set from the two real seed photos
(test/make_eval_set.py), evaluates the real Food-11 model on it in both folder layouts, and
recomputes every number of the report -- accuracy, top-k accuracy, per-class precision / recall /
F1 / support, macro and weighted averages (zero_division=0), the confusion matrix and its
row-normalised form, the most confused pairs -- with scikit-learn from the per-image predictions
Morsel reported; then checks the CSV and text modes, the PNG heatmap (decoded with Pillow), the
unreadable and unlabelled files, the progress bar (on a terminal only) and the errors."""
import csv
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

import harness
from harness import check
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             precision_recall_fscore_support, top_k_accuracy_score)

BIN = os.environ["MORSEL_BIN"]
FIX = os.environ["MORSEL_FIXTURES"]
SHARED = os.environ.get("MORSEL_SHARED") or "/work/shared"
HERE = os.path.dirname(os.path.abspath(__file__))
FOOD11 = os.path.join(FIX, "food11.morsel")
LABELS_TXT = os.path.join(SHARED, "models", "real", "food11-tm-mobilenetv2", "labels.txt")
K = 3
EXACT = 1e-12  # JSON carries %.17g doubles: the same arithmetic agrees to the last bits

def morsel(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)
    assert p.returncode >= 0, f"morsel {args} crashed with signal {-p.returncode}: {p.stderr}"
    return p


def close(a, b, tol=EXACT):
    return abs(float(a) - float(b)) <= tol


def sklearn_numbers(y_true, y_pred):
    labels = sorted(set(y_true) | set(y_pred))  # sklearn's unique_labels, its default
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    rep = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    cm = confusion_matrix(y_true, y_pred)
    cmn = confusion_matrix(y_true, y_pred, normalize="true")
    pairs = sorted(((-int(cm[i, j]), i, j) for i in range(len(labels)) for j in range(len(labels))
                    if i != j and cm[i, j] > 0))[:5]
    return {"labels": labels, "p": p, "r": r, "f": f, "s": s, "rep": rep, "cm": cm, "cmn": cmn,
            "acc": accuracy_score(y_true, y_pred),
            "pairs": [(labels[i], labels[j], -c) for c, i, j in pairs]}


def check_json(r, layout, manifest, n_classes):
    tag = f"[{layout}]"
    preds = r["predictions"]
    paths = [p["path"] for p in preds]
    want = {m[f"{layout}_path"]: m["true"] for m in manifest["images"]}
    check(paths == sorted(paths), f"{tag} images are in path order")
    check(set(paths) == set(want) and r["n_images"] == len(want) == len(preds),
          f"{tag} every image of the set was classified ({len(preds)})",
          sorted(set(paths) ^ set(want)))
    check(all(p["true"] == want.get(p["path"]) for p in preds),
          f"{tag} true classes come from the {'file names' if layout == 'flat' else 'folders'}")
    corrupt = [c for c in manifest["corrupt"] if f"/{layout}/" in c]
    check([u["path"] for u in r["unreadable"]] == corrupt and r["n_unreadable"] == 1
          and r["unreadable"][0]["error"], f"{tag} the corrupt file is reported by name",
          r["unreadable"])
    if layout == "flat":
        check([u["path"] for u in r["unlabelled"]] == manifest["unlabelled"],
              "[flat] a name without '<class index>_' is reported, not guessed", r["unlabelled"])

    y_true = [p["true"] for p in preds]
    y_pred = [p["predicted"] for p in preds]
    sk = sklearn_numbers(y_true, y_pred)
    check(r["labels"] == sk["labels"], f"{tag} label set = sklearn's unique_labels",
          (r["labels"], sk["labels"]))
    check(close(r["accuracy"], sk["acc"]) and r["correct"] == sum(np.equal(y_true, y_pred)),
          f"{tag} accuracy {r['accuracy']:.4f} = sklearn {sk['acc']:.4f}")
    scores = np.full((len(preds), n_classes), -1.0)
    for i, p in enumerate(preds):
        for idx, prob in p["top"]:
            scores[i, idx] = prob
    topk = top_k_accuracy_score(y_true, scores, k=K, labels=list(range(n_classes)))
    check(r["top_k"] == K and close(r["top_k_accuracy"], topk),
          f"{tag} top-{K} accuracy {r['top_k_accuracy']:.4f} = sklearn {topk:.4f}")
    bad = []
    for i, c in enumerate(r["per_class"]):
        mine = (c["index"], c["precision"], c["recall"], c["f1"], c["support"])
        ref = (sk["labels"][i], sk["p"][i], sk["r"][i], sk["f"][i], int(sk["s"][i]))
        if mine[0] != ref[0] or mine[4] != ref[4] or not all(map(close, mine[1:4], ref[1:4])):
            bad.append((mine, ref))
    check(len(r["per_class"]) == len(sk["labels"]) and not bad,
          f"{tag} per-class precision/recall/F1/support = sklearn (zero_division=0)", bad)
    for key, name in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        ref = sk["rep"][name]
        mine = r[key]
        check(close(mine["precision"], ref["precision"]) and close(mine["recall"], ref["recall"])
              and close(mine["f1"], ref["f1-score"]) and mine["support"] == int(ref["support"]),
              f"{tag} {name} = sklearn", (mine, ref))
    check(np.array_equal(np.array(r["confusion_matrix"]), sk["cm"]),
          f"{tag} confusion matrix = sklearn", (r["confusion_matrix"], sk["cm"].tolist()))
    check(np.allclose(np.array(r["confusion_matrix_normalized"]), sk["cmn"], rtol=0, atol=EXACT),
          f"{tag} row-normalised confusion matrix = sklearn normalize='true'")
    mine = [(c["true"], c["predicted"], c["count"]) for c in r["most_confused"]]
    check(mine == sk["pairs"], f"{tag} most confused pairs", (mine, sk["pairs"]))
    t = r["throughput"]
    check(t["images_per_s"] > 0 and t["mean_ms"]["inference"] > 0 and t["mean_ms"]["decode"] > 0
          and t["mean_ms"]["preprocess"] > 0, f"{tag} throughput and the time split", t)
    return sk


def check_text(out, sk, r):
    lines = out.splitlines()
    m = re.search(r"^accuracy\s+(\d\.\d{4})\s+\((\d+) of (\d+)\)$", out, re.M)
    check(m and m.group(1) == f"{sk['acc']:.4f}" and int(m.group(3)) == r["n_images"],
          "[text] accuracy line", out[:600])
    m = re.search(rf"^top-{K} accuracy\s+(\d\.\d{{4}})", out, re.M)
    check(m and m.group(1) == f"{r['top_k_accuracy']:.4f}", "[text] top-k accuracy line")
    rows = {}
    for line in lines:
        m = re.match(r"^\s*(\d+)\s+(.+?)\s+(\d\.\d{4})\s+(\d\.\d{4})\s+(\d\.\d{4})\s+(\d+)$", line)
        if m:
            rows[int(m.group(1))] = m.groups()[2:]
    want = {lab: (f"{sk['p'][i]:.4f}", f"{sk['r'][i]:.4f}", f"{sk['f'][i]:.4f}", str(sk["s"][i]))
            for i, lab in enumerate(sk["labels"])}
    check(rows == want, "[text] per-class table = sklearn to printed precision", (rows, want))
    for name in ("macro avg", "weighted avg"):
        ref = sk["rep"][name]
        m = re.search(rf"^{name}\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)$", out, re.M)
        check(m and m.groups() == (f"{ref['precision']:.4f}", f"{ref['recall']:.4f}",
                                   f"{ref['f1-score']:.4f}", str(int(ref["support"]))),
              f"[text] {name} line = sklearn", m and m.groups())
    n = len(sk["labels"])
    i = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix (rows"))
    counts = [[int(v) for v in line.split()[-n:]] for line in lines[i + 2:i + 2 + n]]
    check(counts == sk["cm"].tolist(), "[text] confusion matrix counts", counts)
    i = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix, %"))
    pct = [line.split()[-n:] for line in lines[i + 2:i + 2 + n]]
    check(pct == [[f"{100 * v:.1f}" for v in row] for row in sk["cmn"]],
          "[text] row-normalised percentages", pct)
    check(any(line.strip().startswith("unreadable") and "zz_corrupt.jpg" in line
              for line in lines), "[text] the unreadable file is named")
    check(re.search(r"^throughput\s+[\d.]+ images/s .*decode [\d.]+ ms, preprocess [\d.]+ ms, "
                    r"inference [\d.]+ ms", out, re.M), "[text] throughput line")
    i = next(i for i, line in enumerate(lines) if line.startswith("most confused"))
    pairs = [re.match(r"^\s*(\d+)\s+(.+) -> (.+)$", line) for line in lines[i + 1:i + 6]]
    pairs = [(int(p.group(1)), p.group(2), p.group(3)) for p in pairs if p]
    labels = [x.rstrip("\n") for x in open(LABELS_TXT)]
    check(pairs == [(c, labels[t], labels[p]) for t, p, c in sk["pairs"]],
          "[text] most confused pairs", pairs)


def check_heatmap(path):
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            fmt, mode, size = im.format, im.mode, im.size
            a = np.asarray(im.convert("RGB")).astype(int)
    except Exception as e:  # noqa: BLE001 - any decoding failure is the failure reported
        check(False, "heatmap is a PNG Pillow decodes", e)
        return
    w, h = size
    dark_blue = ((a[..., 2] > a[..., 0] + 40) & (a[..., 0] < 80)).sum()
    white = (a.min(axis=2) == 255).sum()
    inkish = (a.max(axis=2) < 80).sum()
    check(fmt == "PNG" and mode == "RGB" and 300 <= w <= 4000 and 300 <= h <= 4000,
          f"heatmap is an RGB PNG of sensible size ({w}x{h})", (fmt, mode, size))
    check(dark_blue > 500 and white > w * h // 4 and inkish > 1000,
          "heatmap has dark-blue cells, a white background and text",
          (dark_blue, white, inkish))


def check_progress(d):
    """A progress bar goes to stderr when stderr is a terminal, never into the report."""
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, "eval", "--model", FOOD11, d], stdout=subprocess.PIPE,
                         stderr=slave)
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    out = p.stdout.read().decode()
    p.wait()
    os.close(master)
    check(p.returncode == 0 and b"images/s" in tty and b"[###" in tty
          and "[###" not in out and out.startswith("morsel eval:"),
          "progress bar on a terminal's stderr only", (tty[-300:], out[:200]))


def main():
    for path in (FOOD11, LABELS_TXT):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: export_fixtures must run first and {SHARED} must exist")
    labels = [x.rstrip("\n") for x in open(LABELS_TXT)]
    tmp = tempfile.mkdtemp(prefix="morsel_eval_")
    try:
        subprocess.run([sys.executable, os.path.join(HERE, "make_eval_set.py"), tmp], check=True)
        with open(os.path.join(tmp, "manifest.json")) as f:
            manifest = json.load(f)
        reports, sks = {}, {}
        for layout in ("folders", "flat"):
            heat = os.path.join(tmp, f"heatmap_{layout}.png")
            p = morsel("eval", "--model", FOOD11, "--json", "--top", str(K), "--heatmap", heat,
                       os.path.join(tmp, layout))
            try:
                r = json.loads(p.stdout)
            except ValueError as e:
                r = None
                check(False, f"[{layout}] eval --json prints one JSON object", (e, p.stderr))
            if r is None:
                continue
            check(p.returncode == 0, f"[{layout}] eval --json succeeds", p.stderr)
            check("6_999.jpg" in p.stderr or "zz_corrupt.jpg" in p.stderr,
                  f"[{layout}] --json also names the unreadable file on stderr", p.stderr)
            reports[layout] = r
            sks[layout] = check_json(r, layout, manifest, len(labels))
            check_heatmap(heat)

        if len(reports) == 2:
            fo = {x["path"]: x for x in reports["folders"]["predictions"]}
            fl = {x["path"]: x for x in reports["flat"]["predictions"]}
            same = all(fo[m["folders_path"]]["predicted"] == fl[m["flat_path"]]["predicted"]
                       and fo[m["folders_path"]]["probability"] == fl[m["flat_path"]]["probability"]
                       for m in manifest["images"])
            check(same, "both layouts give the same prediction for the same image")
            r = reports["folders"]
            pc = {c["index"]: c for c in r["per_class"]}
            check(3 in pc and pc[3]["support"] == 3 and pc[3]["predicted"] == 0
                  and pc[3]["precision"] == 0, "a class never predicted has precision 0 "
                  "(zero_division=0), as sklearn", pc.get(3))
            check({3, 6, 10} <= set(pc), "folders matched exactly ('Egg'), by separator "
                  "('Noodles-Pasta') and ignoring case ('vegetable_fruit')", sorted(pc))
            # morsel eval's probability is morsel classify's
            item = r["predictions"][0]
            c = morsel("classify", "--model", FOOD11, "--json", "--top", "1", item["path"])
            top = json.loads(c.stdout)["top"][0] if c.returncode == 0 else {}
            check(top.get("index") == item["predicted"]
                  and top.get("probability") == item["probability"],
                  "eval's prediction is classify's", (top, item))

        # A folder set with no noodle folder: Noodles/Pasta is predicted but has no support.
        sub = os.path.join(tmp, "subset")
        for name in ("Egg", "vegetable_fruit"):
            shutil.copytree(os.path.join(tmp, "folders", name), os.path.join(sub, name))
        p = morsel("eval", "--model", FOOD11, "--json", sub)
        r = json.loads(p.stdout) if p.returncode == 0 else None
        if r:
            sk = sklearn_numbers([x["true"] for x in r["predictions"]],
                                                     [x["predicted"] for x in r["predictions"]])
            pc = {c["index"]: c for c in r["per_class"]}
            ok = all(close(c["precision"], sk["p"][i]) and close(c["recall"], sk["r"][i])
                     and close(c["f1"], sk["f"][i]) for i, c in enumerate(r["per_class"]))
            ok = ok and all(close(r["macro_avg"][k], sk["rep"]["macro avg"][k2])
                            and close(r["weighted_avg"][k], sk["rep"]["weighted avg"][k2])
                            for k, k2 in (("precision", "precision"), ("recall", "recall"),
                                          ("f1", "f1-score")))
            check(6 in pc and pc[6]["support"] == 0 and pc[6]["recall"] == 0 and ok,
                  "a predicted class absent from the truth has recall 0, as sklearn",
                  (pc.get(6), sk["rep"]))
        else:
            check(False, "eval of a two-folder subset", p.stderr)

        # CSV mode: one row per classified image, the same as the JSON predictions.
        p = morsel("eval", "--model", FOOD11, "--csv", os.path.join(tmp, "folders"))
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        js = reports.get("folders", {}).get("predictions", [])
        check(p.returncode == 0 and p.stdout.startswith(
            "path,true_index,true_label,pred_index,pred_label,probability\n")
              and len(rows) == len(js) and all(
                  row["path"] == x["path"] and int(row["true_index"]) == x["true"]
                  and row["true_label"] == labels[x["true"]]
                  and int(row["pred_index"]) == x["predicted"]
                  and row["pred_label"] == labels[x["predicted"]]
                  and float(row["probability"]) == x["probability"] for row, x in zip(rows, js)),
              f"--csv rows match the JSON predictions ({len(rows)})", p.stdout[:500])

        # Text mode: every printed number against sklearn, to printed precision.
        p = morsel("eval", "--model", FOOD11, "--top", str(K), os.path.join(tmp, "folders"))
        check(p.returncode == 0 and p.stderr == "", "text mode succeeds, quiet on a non-terminal",
              p.stderr)
        if "folders" in sks:
            check_text(p.stdout, sks["folders"], reports["folders"])
        print(p.stdout)

        check_progress(os.path.join(tmp, "folders"))

        # Errors: a folder that is no label, both output modes, nothing to evaluate.
        bad = os.path.join(tmp, "bad")
        shutil.copytree(os.path.join(tmp, "folders"), bad)
        os.makedirs(os.path.join(bad, "Pizza"))
        shutil.copyfile(manifest["images"][0]["folders_path"], os.path.join(bad, "Pizza", "a.jpg"))
        p = morsel("eval", "--model", FOOD11, bad)
        check(p.returncode == 1 and "'Pizza'" in p.stderr and "'Noodles-Pasta'" in p.stderr
              and "'Noodles/Pasta'" in p.stderr, "an unknown class folder is an error listing "
              "folders and labels", p.stderr)
        p = morsel("eval", "--model", FOOD11, "--json", "--csv", os.path.join(tmp, "folders"))
        check(p.returncode == 2 and "exclude" in p.stderr, "--json with --csv is refused", p.stderr)
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        p = morsel("eval", "--model", FOOD11, empty)
        check(p.returncode == 1 and "no .jpg" in p.stderr, "an empty folder is an error", p.stderr)
        p = morsel("eval", "--model", FOOD11)
        check(p.returncode == 2 and "usage" in p.stderr, "no folder: usage", p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
