"""loadtest.py's output: the users' siege table in markdown, and the charts."""

import os

COLUMNS = [("transactions", "Transactions", "{:d}"), ("availability", "Availability %", "{:.2f}"),
           ("elapsed_time", "Elapsed s", "{:.2f}"), ("data_transferred", "Data MB", "{:.2f}"),
           ("response_time", "Response time s", "{:.2f}"),
           ("transaction_rate", "Trans. rate /s", "{:.2f}"), ("throughput", "Throughput MB/s",
                                                                 "{:.2f}"),
           ("concurrency", "Concurrency", "{:.2f}"), ("successful_transactions", "Successful",
                                                      "{:d}"),
           ("failed_transactions", "Failed", "{:d}"), ("longest_transaction", "Longest s",
                                                       "{:.2f}"),
           ("shortest_transaction", "Shortest s", "{:.2f}"), ("peak_rss_mib", "Peak RSS MiB",
                                                              "{:.0f}")]


def _codes(r):
    c = r.get("server_codes")
    return ", ".join(f"{n} x {k}" for k, n in sorted(c.items())) if c else "-"


def _row(label, r):
    return "| " + " | ".join([label] + [fmt.format(r[k]) for k, _, fmt in COLUMNS] +
                             [_codes(r)]) + " |"


def _table(rows):
    head = "| setup | " + " | ".join(h for _, h, _ in COLUMNS) + " | answers (server's count) |"
    sep = "|" + "---|" * (len(COLUMNS) + 2)
    return [head, sep] + [_row(f"{r['server']} c={r['offered_concurrency']}", r) for r in rows]


def _ratio(a, b):
    return f"{a / b:.1f}x" if b else "n/a"


def markdown(res):
    out = [f"# Load test: siege -c C -t {res['seconds']}S /test, server pinned to CPU 0, "
           "siege on CPU 1", ""]
    out += ["| server | start-up s | RSS after start MiB | peak RSS MiB | first /test answer |",
            "|---|---|---|---|---|"]
    for name, s in res["servers"].items():
        out.append(f"| {name} | {s['start_s']:.3f} | {s['rss_after_start_mib']:.0f} | "
                   f"{s['peak_rss_mib']:.0f} | {s['first_answer']} |")
    out += ["", "## siege, per offered concurrency", ""]
    out += _table(res["siege"] + res["replica"])
    out += ["", "siege counts a 503 as a failed transaction (so availability falls when the "
            "server sheds load); the last column is what morsel-serve itself answered "
            "(GET /metrics), to tell fast 503s from lost connections.", "",
            "Replica row: two morsel-serve pinned to CPUs 0 and 1 behind haproxy (mode tcp, "
            "round robin); siege and haproxy unpinned, sharing those two CPUs.", ""]
    by = {(r["server"], r["offered_concurrency"]): r for r in res["siege"]}
    if any(k[0] == "flask+tf" for k in by):
        out += ["## morsel-serve against Flask + TF, same run", "",
                "| c | trans. rate | mean response time | longest | peak RSS | cpu-s/transaction "
                "(flask, morsel) |", "|---|---|---|---|---|---|"]
        for c in res["levels"]:
            f, m = by.get(("flask+tf", c)), by.get(("morsel-serve", c))
            if not (f and m):
                continue
            if not f["successful_transactions"]:
                out.append(f"| {c} | Flask completed no transaction in {res['seconds']} s | "
                           f"- | - | 1/{f['peak_rss_mib'] / m['peak_rss_mib']:.0f} | "
                           f"{f['cpu_s_per_transaction']:.4f}, {m['cpu_s_per_transaction']:.4f} |")
                continue
            rt = (f["response_time_fine"], m["response_time_fine"])
            longest = f["longest_transaction"] / max(m["longest_transaction"], 0.005)
            out.append(
                f"| {c} | {_ratio(m['transaction_rate'], f['transaction_rate'])} | "
                f"1/{rt[0] / rt[1]:.1f} | 1/{longest:.1f} | "
                f"1/{f['peak_rss_mib'] / m['peak_rss_mib']:.0f} | "
                f"{f['cpu_s_per_transaction']:.4f}, {m['cpu_s_per_transaction']:.4f} |")
        out += ["", "Mean response time ratio from concurrency / rate (siege prints 10 ms steps).",
                ""]
    if res["wrk"]:
        out += ["## wrk (keep-alive, 1 thread)", "",
                "| server | connections | requests/s | 200s/s | p50 ms | p90 ms | p99 ms | "
                "non-2xx | socket errors | 200s p50 / p99 ms (server log) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["wrk"]:
            ms = [f"{r[k] * 1e3:.1f}" if r[k] is not None and r["requests"] else "-"
                  for k in ("p50_s", "p90_s", "p99_s")]
            ok = r["requests_per_s"] * (1 - r["non_2xx_3xx"] / r["requests"]) \
                if r["requests"] else 0.0
            out.append(f"| {r['server']} | {r['connections']} | {r['requests_per_s']:.1f} | "
                       f"{ok:.1f} | "
                       + " | ".join(ms) + f" | {r['non_2xx_3xx']} | {r['socket_errors']} | "
                       + (f"{r['served_p50_ms']:.1f} / {r['served_p99_ms']:.1f} |"
                          if r.get("served_p99_ms") is not None else "- |"))
        served = {r["connections"]: r["served_p99_ms"] for r in res["wrk"]
                  if r["server"] == "morsel-serve" and r.get("served_p99_ms")}
        if 10 in served and 100 in served:
            out += ["", f"Overload: at 10x the users' concurrency the 200s' p99 is "
                    f"{served[100] / served[10]:.2f} x their p99 at c=10 "
                    f"({served[100]:.0f} vs {served[10]:.0f} ms, from the server's access log: "
                    "headers received to answer sent; wrk's own percentiles mix in the 503s)."]
        sus = res.get("sustained_concurrency")
        if sus and sus in served and 10 * sus in served:
            out += ["", f"Overload against the sustainable concurrency (c={sus}, the highest siege "
                    f"level answered only with 200s): at c={10 * sus} the 200s' p99 is "
                    f"{served[10 * sus] / served[sus]:.2f} x their p99 at c={sus} "
                    f"({served[10 * sus]:.0f} vs {served[sus]:.0f} ms)."]
        out.append("")
    if res["staged"]:
        out += [f"## Staged profile ({res['stage_seconds']:g} s per minute of the users' 30)", ""]
        out += ["| server | transactions | failed | non-2xx | mean response s | longest s | "
                "peak RSS MiB |", "|---|---|---|---|---|---|---|"]
        for name in dict.fromkeys(r["server"] for r in res["staged"]):
            rows = [r for r in res["staged"] if r["server"] == name]
            n = sum(r["transactions"] for r in rows)
            mean = sum(r["response_time"] * r["transactions"] for r in rows) / max(n, 1)
            out.append(f"| {name} | {n} | {sum(r['failed_transactions'] for r in rows)} | "
                       f"{sum(r['non_2xx_3xx'] for r in rows)} | {mean:.3f} | "
                       f"{max(r['longest_transaction'] for r in rows):.2f} | "
                       f"{max(r['peak_rss_mib'] for r in rows):.0f} |")
        out.append("")
    return "\n".join(out) + "\n"


def charts(res, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"flask+tf": ("tab:red", "o"), "morsel-serve": ("tab:blue", "s"),
              "2 x morsel-serve + haproxy": ("tab:green", "^")}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, (color, marker) in styles.items():
        rows = [r for r in res["siege"] + res["replica"] if r["server"] == name]
        if not rows:
            continue
        c = [r["offered_concurrency"] for r in rows]
        ax1.plot(c, [r["response_time_fine"] for r in rows], marker=marker, color=color,
                 label=name)
        ax2.plot(c, [r["transaction_rate"] for r in rows], marker=marker, color=color,
                 label=name)
    for ax, title, ylab in ((ax1, "Mean response time", "seconds (log)"),
                            (ax2, "Transaction rate", "transactions/s (log)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("siege -c (concurrent users, no delay)")
        ax.set_ylabel(ylab)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"/test, one CPU per server, siege -t {res['seconds']}S per level")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "load.png"), dpi=110)
    plt.close(fig)

    if not res["staged"]:
        return
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for name, (color, marker) in styles.items():
        rows = [r for r in res["staged"] if r["server"] == name]
        if not rows:
            continue
        xs, rt, tr = [], [], []
        for r in rows:
            xs += [r["start_s"], r["start_s"] + r["seconds"]]
            # no completed transaction in a stage: a gap, not a zero
            rt += [r["response_time_fine"] or float("nan")] * 2
            tr += [r["transaction_rate"]] * 2
        axes[1].plot(xs, rt, color=color, label=name)
        axes[2].plot(xs, tr, color=color, label=name)
    rows = [r for r in res["staged"] if r["server"] == res["staged"][0]["server"]]
    xs, users, rate = [], [], []
    for r in rows:
        xs += [r["start_s"], r["start_s"] + r["seconds"]]
        users += [r["offered_concurrency"]] * 2
        # siege -d D: each user sleeps uniform(0, D) between requests, D/2 on average.
        rate += [r["offered_concurrency"] / (r["delay"] / 2)] * 2
    axes[0].plot(xs, rate, color="black", label="users / mean think time (req/s ceiling)")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("offered req/s")
    axes[0].legend(loc="upper left")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("mean response s (log)")
    axes[2].set_yscale("log")
    axes[2].set_ylabel("transactions/s (log)")
    axes[2].set_xlabel(f"profile time, s ({res['stage_seconds']:g} s per minute of the users' "
                       "30-minute profile)")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(loc="upper left")
    fig.suptitle("Users' staged profile: siege -c 20 -d 100 ... -c 30 -d 1 ... -c 20 -d 80\n"
                 "(gaps: no transaction completed within the stage)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "staged.png"), dpi=110)
    plt.close(fig)
