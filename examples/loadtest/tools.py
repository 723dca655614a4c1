"""Processes and load generators for loadtest.py: servers pinned with taskset, siege and wrk
runs parsed into dicts, haproxy standing in for a Kubernetes Service, RSS from /proc."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

# siege's own defaults (Debian's /etc/siege/siegerc) except what only changes its printing:
# no per-hit lines, the summary as JSON. connection = close is the default and what the users
# measured: one TCP connection per transaction. siege counts a 503 as a failed transaction and
# stops after 1024 of them (its `failures` limit; raising it makes siege 4.0.7 hang), so against
# a server shedding load an overload run ends early: the elapsed time column shows it.
SIEGERC = """verbose = false
quiet = true
json_output = true
show-logfile = false
logging = false
protocol = HTTP/1.1
connection = close
parser = true
limit = 1024
"""

SIEGE_KEYS = ["transactions", "availability", "elapsed_time", "data_transferred",
              "response_time", "transaction_rate", "throughput", "concurrency",
              "successful_transactions", "failed_transactions", "longest_transaction",
              "shortest_transaction"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require(*tools):
    missing = [t for t in tools if not any(os.access(os.path.join(d, t), os.X_OK)
                                           for d in os.environ["PATH"].split(os.pathsep))]
    if missing:
        raise SystemExit(f"loadtest: missing {', '.join(missing)} "
                         "(Debian: apt-get install siege wrk haproxy util-linux)")


def vm_kib(pid, field):
    """VmRSS / VmHWM of a live process, in KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def status_counts(base_url, route="/test"):
    """morsel-serve's own count of answers per status code on one route (GET /metrics)."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    pat = r'morsel_http_requests_total\{route="%s",code="(\d+)"\} (\d+)' % re.escape(route)
    return {code: int(n) for code, n in re.findall(pat, text)}


def cpu_seconds(pid):
    """utime + stime of a live process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(servers, quiet_share=0.05, window=0.5, timeout=120):
    """Waits until every server's CPU use over `window` seconds is below quiet_share of a CPU.
    When siege or wrk stops, the clients are gone but a server may still be working through
    requests it accepted: Flask finishes every one (about 0.17 s of CPU each, 100 of them after
    an overload level), on the CPU the next server under test shares. Without this wait that
    backlog ran during the next run and halved what it measured. Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        before = [cpu_seconds(s.pid) for s in servers]
        time.sleep(window)
        used = [cpu_seconds(s.pid) - b for s, b in zip(servers, before)]
        if max(used) < quiet_share * window:
            break
    return time.monotonic() - t0


class Server:
    """A server process pinned to `cpu`; started() measures time to its first good answer."""

    def __init__(self, name, argv, cpu, port, log_path, ready_path):
        self.name, self.port, self.ready_path = name, port, ready_path
        self.log = open(log_path, "wb")
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(pin + argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.start_s = None
        self.rss_after_start_kib = None

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/test"):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout):
        deadline = self.t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"loadtest: {self.name} exited ({self.proc.returncode}) "
                                 f"before answering; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url(self.ready_path), timeout=1) as r:
                    if r.status == 200:
                        self.start_s = time.monotonic() - self.t0
                        self.rss_after_start_kib = vm_kib(self.pid, "VmRSS")
                        return self.start_s
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.002)
        self.stop()
        raise SystemExit(f"loadtest: {self.name} not ready after {timeout} s; see {self.log.name}")

    def log_offset(self):
        """Where the server's log (stdout + stderr) ends now: pass it to served_ms later."""
        self.log.flush()
        return os.path.getsize(self.log.name)

    def served_ms(self, since, route="/test"):
        """duration_ms of the 200 answers on `route` that morsel-serve's access log (--log json)
        recorded after offset `since`: the latency of the requests actually served, which wrk
        mixes with the fast 503s of an overload."""
        out = []
        with open(self.log.name, "rb") as fh:
            fh.seek(since)
            for line in fh:
                if not line.startswith(b"{"):
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a line still being written when the run ended
                if r.get("route") == route and r.get("status") == 200:
                    out.append(float(r["duration_ms"]))
        return out

    def peak_rss_kib(self):
        return vm_kib(self.pid, "VmHWM")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def siege(rc_path, url, concurrency, seconds, delay=None, cpu=1):
    argv = ["siege", "-R", rc_path, "-c", str(concurrency), "-t", f"{seconds}S"]
    if delay is not None:
        argv += ["-d", str(delay)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    # siege -t waits for the transactions in flight when time is up; a server that takes
    # minutes per answer (Flask at c=100) keeps it waiting, so past a grace period siege gets
    # SIGINT, which makes it stop and print its summary of what completed.
    p = subprocess.Popen(argv + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cut = False
    try:
        stdout, stderr = p.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        cut = True
        p.send_signal(signal.SIGINT)
        try:
            stdout, stderr = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
    m = re.search(r"\{.*?\}", stdout + stderr, re.S)
    if not m:
        raise SystemExit(f"loadtest: no siege summary for {url} c={concurrency}:\n"
                         f"{stdout}\n{stderr}")
    out = json.loads(m.group(0))
    missing = [k for k in SIEGE_KEYS if k not in out]
    if missing:
        raise SystemExit(f"loadtest: siege summary lacks {missing}")
    out["offered_concurrency"] = concurrency
    out["cut_by_sigint"] = cut
    out["delay"] = delay
    # siege rounds response times to 10 ms; Little's law gives the mean to more digits.
    rate = out["transaction_rate"]
    out["response_time_fine"] = out["concurrency"] / rate if rate > 0 else None
    out["non_2xx_3xx"] = out["transactions"] - out["successful_transactions"]
    return out


_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _secs(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def percentile(values, q):
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    v = sorted(values)
    i = (len(v) - 1) * q / 100.0
    lo = int(i)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)


def wrk(url, connections, seconds, cpu=1):
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
            url]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    text = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if r.returncode != 0 or not m:
        raise SystemExit(f"loadtest: wrk failed on {url}:\n{text}\n{r.stderr}")
    out = {"connections": connections, "requests_per_s": float(m.group(1))}
    for pct in ("50", "90", "99"):
        p = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        out[f"p{pct}_s"] = _secs(p.group(1)) if p else None
    n = re.search(r"(\d+) requests in", text)
    out["requests"] = int(n.group(1)) if n else None
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx_3xx"] = int(bad.group(1)) if bad else 0
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in se.groups()) if se else 0
    return out


HAPROXY_CFG = """global
    maxconn 4096
defaults
    # Layer 4, as kube-proxy balances a Service: one backend per TCP connection.
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
frontend service
    bind 127.0.0.1:{port}
    default_backend pods
backend pods
    balance roundrobin
{servers}
"""


def haproxy(cfg_path, port, backend_ports, log_path):
    servers = "\n".join(f"    server pod{i} 127.0.0.1:{p}" for i, p in enumerate(backend_ports))
    with open(cfg_path, "w") as fh:
        fh.write(HAPROXY_CFG.format(port=port, servers=servers))
    log = open(log_path, "wb")
    proc = subprocess.Popen(["haproxy", "-db", "-f", cfg_path], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"loadtest: haproxy did not start; see {log_path}")
