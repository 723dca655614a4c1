#!/usr/bin/env python3
"""examples/deploy/: the Kubernetes manifests and the image, checked without a cluster or a
container engine.

1. yamllint --strict on every manifest (examples/deploy/yamllint.yaml).
2. Every resource against the real Kubernetes OpenAPI schemas shipped by kubernetes-validate,
   strict (unknown fields rejected), for Kubernetes 1.30 (the oldest release that runs these
   manifests as written: the preStop `sleep` action is on by default from 1.30) and 1.37 (the
   newest the package knows). A misspelt field and a wrongly typed value must be rejected, so
   the validator is known to bite.
3. The pieces fit: Service selector = pod labels, NodePort 32000, HPA targets the Deployment,
   probes on /readyz and /healthz, non-root + read-only root + no capabilities, requests <=
   limits, the Dockerfile's USER is the manifests' runAsUser, and every library the binary
   links is in a Debian package the final stage installs.
4. The server run the way the image runs it, for the Pod and the Deployment: the Dockerfile's
   ENTRYPOINT and ENV, then the manifest's args and env, as the manifest's runAsUser with no
   capabilities and no_new_privs, from `cmake --install` into a temporary prefix laid out like
   the image (/opt/morsel) and made read-only. Two settings differ, because a pod has its own
   network namespace and this machine does not: the port (a free one) and the listen address
   (loopback). Then the manifest's probe paths must answer 200, GET /test the users' answer
   line with the class `morsel classify` gives, the peak RSS must stay under the memory
   request, and SIGTERM must end it with status 0 within terminationGracePeriodSeconds. The
   CPU limit is stood in for by an affinity mask of that many CPUs: the worker count must
   follow it.

Environment (set by ctest): MORSEL_BUILD_DIR, MORSEL_BIN, MORSEL_FIXTURES, MORSEL_SHARED,
MORSEL_SOURCE_DIR.
"""

import copy
import json
import math
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

K8S_VERSIONS = ["1.30.0", "1.37.0"]
PREFIX = "/opt/morsel"  # where the Dockerfile puts everything
ANSWER = re.compile(r"^(?P<label>.+) \((?P<prob>[-+0-9.eE]+)\), "
                    r"Inference Time : (?P<secs>[0-9.eE-]+) seconds$")
failures = []


def check(ok, msg):
    print(f"deploy: {'ok  ' if ok else 'FAIL'} {msg}")
    if not ok:
        failures.append(msg)
    return ok


def env_path(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"deploy: FAIL: {name} is not set (run through ctest)")
    return v


SRC = env_path("MORSEL_SOURCE_DIR")
DEPLOY = os.path.join(SRC, "examples", "deploy")
K8S = os.path.join(DEPLOY, "k8s")

try:
    import yaml
    import kubernetes_validate
except ImportError as e:
    sys.exit(f"deploy: FAIL: {e} (pip install -r weights/requirements-test.txt)")


def load_manifests():
    docs = {}
    for name in sorted(os.listdir(K8S)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(K8S, name)) as fh:
                docs[name] = [d for d in yaml.safe_load_all(fh) if d]
    return docs


def lint():
    r = subprocess.run([sys.executable, "-m", "yamllint", "--strict", "-c",
                        os.path.join(DEPLOY, "yamllint.yaml"), K8S],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"yamllint --strict examples/deploy/k8s {r.stdout}{r.stderr}".strip())


def rejects(resource, version):
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except kubernetes_validate.ValidationError:
        return True
    return False


def schemas(docs):
    for version in K8S_VERSIONS:
        for name, resources in docs.items():
            for r in resources:
                what = f"{name} {r.get('kind')}/{r.get('metadata', {}).get('name')}"
                try:
                    kubernetes_validate.validate(r, version, strict=True)
                    check(True, f"{what} valid against Kubernetes {version} (strict)")
                except kubernetes_validate.ValidationError as e:
                    check(False, f"{what} against Kubernetes {version}: {e.message} at "
                          f"{'/'.join(str(p) for p in e.path)}")
        dep = find(docs, "Deployment")
        typo = copy.deepcopy(dep)
        c = typo["spec"]["template"]["spec"]["containers"][0]
        c["readinesProbe"] = c.pop("readinessProbe")
        check(rejects(typo, version), f"{version}: a misspelt readinessProbe is rejected")
        bad = copy.deepcopy(dep)
        bad["spec"]["replicas"] = "two"
        check(rejects(bad, version), f"{version}: replicas: \"two\" is rejected")


def find(docs, kind):
    found = [r for rs in docs.values() for r in rs if r.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"deploy: FAIL: expected one {kind} in examples/deploy/k8s, found {len(found)}")
    return found[0]


def quantity(q):
    """Kubernetes quantities used here: cores or millicores; Mi/Gi/M/G bytes."""
    q = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[:-len(u)]) * f
    return float(q)


def dockerfile():
    """The final stage: base image, ENTRYPOINT, ENV, USER, and the packages it installs."""
    with open(os.path.join(DEPLOY, "Dockerfile")) as fh:
        text = re.sub(r"\\\n", " ", fh.read())
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    final = stages[-1]
    out = {"stages": len(stages), "base": final.split()[0], "env": {}}
    for line in final.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENTRYPOINT":
            out["entrypoint"] = json.loads(rest)
        elif word == "USER":
            out["user"] = rest.strip()
        elif word == "ENV":
            for k, v in re.findall(r"(\w+)=(\S+)", rest):
                out["env"][k] = v
        elif word == "RUN" and "apt-get install" in rest:
            tail = rest.split("--no-install-recommends", 1)[1].split("&&")[0]
            out["packages"] = tail.split()
    return out


def pod_spec(resource):
    return resource["spec"]["template"]["spec"] if resource["kind"] == "Deployment" \
        else resource["spec"]


def consistency(docs, image):
    pod, dep = find(docs, "Pod"), find(docs, "Deployment")
    svc, hpa = find(docs, "Service"), find(docs, "HorizontalPodAutoscaler")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()) and
          dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"],
          "the Service selects the Deployment's pods")
    check(svc["spec"]["type"] == "NodePort" and
          [p.get("nodePort") for p in svc["spec"]["ports"]] == [32000],
          "the Service is on NodePort 32000, where the users' siege points")
    ref = hpa["spec"]["scaleTargetRef"]
    check(hpa["apiVersion"] == "autoscaling/v2" and ref["kind"] == "Deployment" and
          ref["name"] == dep["metadata"]["name"], "the autoscaling/v2 HPA scales the Deployment")
    cpu = [m for m in hpa["spec"]["metrics"] if m["resource"]["name"] == "cpu"]
    check(len(cpu) == 1 and 30 <= cpu[0]["resource"]["target"]["averageUtilization"] <= 80 and
          hpa["spec"]["minReplicas"] == 1, "the HPA scales on CPU, target within 30-80 %, from 1")
    uid = image.get("user", "").split(":")[0]
    check(image["stages"] == 2 and image["base"] == "debian:bookworm-slim",
          "Dockerfile: two stages, final on debian:bookworm-slim")
    for res in (pod, dep):
        spec = pod_spec(res)
        what = res["kind"]
        c = spec["containers"][0]
        sc, psc = c.get("securityContext", {}), spec.get("securityContext", {})
        check(c["readinessProbe"]["httpGet"]["path"] == "/readyz" and
              c["livenessProbe"]["httpGet"]["path"] == "/healthz",
              f"{what}: readiness on /readyz, liveness on /healthz")
        check(spec.get("terminationGracePeriodSeconds", 0) > 0,
              f"{what}: terminationGracePeriodSeconds set")
        check(psc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True and
              sc.get("allowPrivilegeEscalation") is False and
              sc.get("capabilities", {}).get("drop") == ["ALL"],
              f"{what}: runAsNonRoot, readOnlyRootFilesystem, no escalation, drop ALL")
        check(str(psc.get("runAsUser")) == uid and uid not in ("", "0"),
              f"{what}: runAsUser {psc.get('runAsUser')} is the Dockerfile's USER {uid}")
        r = c["resources"]
        ok = all(quantity(r["requests"][k]) <= quantity(r["limits"][k]) for k in ("cpu", "memory"))
        check(ok, f"{what}: requests {r['requests']} <= limits {r['limits']}")


def runtime_packages(binary, image):
    """Each shared library the binary names (DT_NEEDED) comes from a package the final stage
    installs (or libc6, which bookworm-slim has)."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True,
                                       text=True, check=True).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
        ["ldd", binary], capture_output=True, text=True, check=True).stdout, re.M))
    wanted = image.get("packages", [])
    for so in needed:
        pkg = "?"
        # dpkg knows a file by the path its package ships, merged /usr or not.
        for path in dict.fromkeys([paths.get(so, so), os.path.realpath(paths.get(so, so))]):
            r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0]
                break
        ok = pkg == "libc6" or any(pkg == w or pkg.startswith(w + "-") for w in wanted)
        check(ok, f"{so} ({pkg}) is installed by the image's final stage")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=30):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def make_image_root(tmp):
    """cmake --install into <tmp>/root/opt/morsel, the model and test image where the
    Dockerfile's COPY puts them, then everything read-only and readable by anyone."""
    root = os.path.join(tmp, "root")
    prefix = root + PREFIX
    r = subprocess.run(["cmake", "--install", env_path("MORSEL_BUILD_DIR"), "--prefix", prefix],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"deploy: FAIL: cmake --install: {r.stdout}{r.stderr}")
    share = os.path.join(prefix, "share", "morsel")
    os.makedirs(share, exist_ok=True)
    shutil.copy(os.path.join(env_path("MORSEL_FIXTURES"), "food11.morsel"),
                os.path.join(share, "model.morsel"))
    shutil.copy(os.path.join(env_path("MORSEL_SHARED"), "images", "seed", "noodles.jpg"),
                os.path.join(share, "test.jpg"))
    os.chmod(tmp, 0o755)
    for d, dirs, files in os.walk(root):
        for n in dirs:
            os.chmod(os.path.join(d, n), 0o555)
        for n in files:
            p = os.path.join(d, n)
            os.chmod(p, 0o555 if os.stat(p).st_mode & stat.S_IXUSR else 0o444)
    os.chmod(root, 0o555)
    return root


def as_container(root, argv, uid, gid):
    """setpriv: the manifest's user, no capabilities, no_new_privs (allowPrivilegeEscalation:
    false); the working directory is the read-only root."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all", "--"] + argv


def run_like_image(res, image, root, want_label):
    spec = pod_spec(res)
    c = spec["containers"][0]
    psc = spec["securityContext"]
    uid, gid = psc["runAsUser"], psc.get("runAsGroup", psc["runAsUser"])
    what = f"{res['kind']} as uid {uid}"
    failed_before = len(failures)
    rewrite = lambda v: root + v if str(v).startswith(PREFIX) else str(v)  # noqa: E731
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOSTNAME": res["metadata"]["name"]}
    env.update({k: rewrite(v) for k, v in image["env"].items()})
    env.update({e["name"]: rewrite(e["value"]) for e in c.get("env", [])})
    port = free_port()
    env["MORSEL_PORT"], env["MORSEL_HOST"] = str(port), "127.0.0.1"  # the two deviations
    argv = [rewrite(a) for a in c.get("command", image["entrypoint"])] + \
        [rewrite(a) for a in c.get("args", [])]
    if "--port" in argv or "--host" in argv:
        sys.exit("deploy: FAIL: the manifest sets --port/--host; the test overrides env only")
    probe = as_container(root, ["touch", os.path.join(root + PREFIX, "written")], uid, gid)
    check(subprocess.run(probe, capture_output=True, cwd=root).returncode != 0,
          f"{what}: cannot write into the install tree")
    base = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    t0 = time.monotonic()
    # The CPU limit, as far as it can be had without a cgroup: an affinity mask of that many
    # CPUs (the server honours both the same way when it sizes its worker pool).
    ncpu = math.ceil(quantity(c["resources"]["limits"]["cpu"]))
    cpus = sorted(os.sched_getaffinity(0))[:ncpu]
    pin = ["taskset", "-c", ",".join(map(str, cpus))]
    proc = subprocess.Popen(pin + as_container(root, argv, uid, gid), env=env, cwd=root,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        ready_path = c["readinessProbe"]["httpGet"]["path"]
        status = None
        while time.monotonic() - t0 < 30 and proc.poll() is None:
            try:
                status, _ = get(base + ready_path, timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        check(status == 200, f"{what}: readinessProbe {ready_path} -> {status} after "
              f"{time.monotonic() - t0:.2f} s")
        live_path = c["livenessProbe"]["httpGet"]["path"]
        check(get(base + live_path)[0] == 200, f"{what}: livenessProbe {live_path} -> 200")
        with open(f"/proc/{proc.pid}/status") as fh:
            st = dict(line.split(":", 1) for line in fh)
        check(st["Uid"].split() == [str(uid)] * 4 and int(st["CapEff"], 16) == 0 and
              st["NoNewPrivs"].strip() == "1",
              f"{what}: runs as {uid} with no capabilities and no_new_privs")
        workers = re.search(r"^morsel_workers (\d+)", get(base + "/metrics")[1], re.M)
        check(workers and int(workers.group(1)) == len(cpus),
              f"{what}: {workers and workers.group(1)} worker(s) for a CPU limit of {ncpu} "
              f"({len(cpus)} CPU(s) here)")
        for _ in range(5):
            status, body = get(base + "/test")
        m = ANSWER.match(body.strip())
        check(status == 200 and m and m["label"] == want_label,
              f"{what}: GET /test -> {status} {body.strip()!r} (morsel classify: {want_label})")
        with open(f"/proc/{proc.pid}/status") as fh:
            hwm = int(re.search(r"VmHWM:\s+(\d+)", fh.read()).group(1)) * 1024
        req = quantity(c["resources"]["requests"]["memory"])
        check(hwm < req, f"{what}: peak RSS {hwm / 2**20:.1f} MiB < memory request "
              f"{c['resources']['requests']['memory']}")
        grace = spec["terminationGracePeriodSeconds"]
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            rc = "still running"
        check(rc == 0, f"{what}: SIGTERM -> exit {rc} within {grace} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
        if len(failures) > failed_before:
            print("deploy: server output:\n" + out[-3000:])


def main():
    docs = load_manifests()
    check(set(docs) >= {"pod.yaml", "deployment.yaml", "hpa.yaml"},
          f"manifests for the three setups: {sorted(docs)}")
    lint()
    schemas(docs)
    image = dockerfile()
    consistency(docs, image)
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        sys.exit("deploy: FAIL: running as another user needs root and setpriv (util-linux)")
    tmp = tempfile.mkdtemp(prefix="morsel-deploy-")
    try:
        root = make_image_root(tmp)
        binary = os.path.join(root + PREFIX, "bin", "morsel-serve")
        check(image["entrypoint"][0] == PREFIX + "/bin/morsel-serve" and os.access(binary, os.X_OK),
              f"ENTRYPOINT {image['entrypoint']} is the installed server")
        runtime_packages(binary, image)
        model = os.path.join(root + PREFIX, "share", "morsel", "model.morsel")
        photo = os.path.join(root + PREFIX, "share", "morsel", "test.jpg")
        want = json.loads(subprocess.run(
            [env_path("MORSEL_BIN"), "classify", "--model", model, "--json", photo],
            check=True, capture_output=True, text=True).stdout)["top"][0]["label"]
        for res in (find(docs, "Pod"), find(docs, "Deployment")):
            run_like_image(res, image, root, want)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"deploy: {len(failures)} FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("deploy: OK")


if __name__ == "__main__":
    main()
