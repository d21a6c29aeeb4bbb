#!/usr/bin/env python3
"""The controller's benchmark (run it with `scripts/bench controller`).

On the e2e suite's real kube-apiserver (scripts/e2e-cluster) and one simulator at 20 ms latency
and 800 requests/s, per inventory size A (apps with 5 webhooks each, A/2 templates, settings, as
bench/run.py), side by side in one run:
  - `apply` of the inventory to an empty project (the CLI's convergence), and `plan` of it once
    converged (what one observation costs the CLI);
  - `sinch-operator run --resync 20s` (longer past 2,000 apps: `resync_s`) converging the same
    inventory from empty in another project, started once every object exists: wall time from
    its start until Sinch holds everything and until every object is Ready, requests, writes,
    duplicates;
  - the controller's steady state over two poll intervals, from just before a poll round: GETs and
    bytes per interval, writes;
  - the controller's peak RSS (VmHWM).
Writes bench/controller-results.json, bench/controller.svg and bench/controller-scale.svg and prints the table of
BENCHMARKS.md's controller section.
"""

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as scale  # noqa: E402  (the CLI benchmark: inventory, simulator, measuring)

ROOT = scale.ROOT
BIN = scale.BIN
SIZES = scale.SIZES
RESYNC_S = 20


def resync_s(objects):
    """The controller's poll interval in the run: 20 s (quick to measure the steady state) up to
    2,000 apps; beyond, one poll of every object per interval must leave the controller room for
    the objects still converging (at 5,000 apps and 20 s, polling the converged objects took
    every worker and the last 1,661 objects were not Ready after 900 s)."""
    return max(RESYNC_S, objects // 250)

# The API server's write rate is measured with as many claims as objects, at most this many:
# deleting 32,501 at once (5,000 apps) took the API server past its request timeouts.
CALIBRATION_MAX = 6501
# The rate of the controller's own writes is measured on a copy of at most this many apps' objects.
MIX_CALIBRATION_MAX = 1000
# Reconciles at once per kind (`run --workers`); BENCH_WORKERS to try another.
WORKERS = int(os.environ.get("BENCH_WORKERS", "64"))
FLAGS = ["--rate-limit", str(scale.OUR_RATE), "--concurrency", str(scale.CONCURRENCY)]
GROUP = "/apis/conversation.sinch.com/v1alpha1"
PLURALS = ["conversationapps", "webhooks", "templates", "projectsettings"]


class Kube:
    """The API server as the admin of scripts/e2e-cluster, over urllib."""

    def __init__(self, kubeconfig):
        text = open(kubeconfig).read()
        self.server = re.search(r"server: (\S+)", text).group(1)
        self.token = re.search(r"token: (\S+)", text).group(1)
        ca = base64.b64decode(re.search(r"certificate-authority-data: (\S+)", text).group(1)).decode()
        self.ctx = ssl.create_default_context(cadata=ca)

    def open(self, method, path, data=None, content_type="application/yaml", timeout=60):
        """One request as the admin; the response, to read (a watch: line by line)."""
        req = urllib.request.Request(self.server + path, method=method, data=data, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type})
        return urllib.request.urlopen(req, context=self.ctx, timeout=timeout)

    def call(self, method, path, body=None, content_type="application/yaml", ok=(200, 201)):
        data = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body else None)
        try:
            with self.open(method, path, data, content_type) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code in ok or e.code == 409:
                return {}
            raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from e

    def create(self, doc, namespace=None):
        """POSTs one YAML document to the collection its apiVersion and kind name."""
        api = re.search(r"^apiVersion: (\S+)", doc, re.M).group(1)
        kind = re.search(r"^kind: (\S+)", doc, re.M).group(1)
        base = f"/apis/{api}" if "/" in api else f"/api/{api}"
        plural = {"ConversationApp": "conversationapps", "ProjectSettings": "projectsettings",
                  "Webhook": "webhooks", "Template": "templates", "Secret": "secrets",
                  "Namespace": "namespaces", "ClusterRole": "clusterroles", "Role": "roles",
                  "ClusterRoleBinding": "clusterrolebindings", "RoleBinding": "rolebindings",
                  "ServiceAccount": "serviceaccounts",
                  "CustomResourceDefinition": "customresourcedefinitions"}[kind]
        ns = namespace or (re.search(r"namespace: ([\w-]+)", doc) or [None, None])[1]
        cluster_scoped = kind in ("Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition")
        path = f"{base}/{plural}" if cluster_scoped or not ns else f"{base}/namespaces/{ns}/{plural}"
        self.call("POST", path, doc)


def documents(text):
    return [d for d in re.split(r"^---\s*$", text, flags=re.M) if re.search(r"^kind:", d, re.M)]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def install(kube, cluster):
    crds = subprocess.run([BIN, "crds"], check=True, capture_output=True, text=True).stdout
    for doc in documents(crds):
        kube.create(doc)
    time.sleep(3)  # CRDs established
    kube.create("apiVersion: v1\nkind: Namespace\nmetadata: {name: sinch-operator-system}\n")
    for doc in documents(open(os.path.join(ROOT, "manifests", "rbac.yaml")).read()):
        kube.create(doc)
    kube.create("""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: sinch-operator-bench}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sinch-operator}
subjects: [{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}]
""")
    kube.create("""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: sinch-operator-secrets-bench, namespace: sinch-operator-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sinch-operator-secret-reader}
subjects: [{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}]
""")
    kube.create("""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: sinch-operator-leader-bench, namespace: sinch-operator-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: sinch-operator-leader}
subjects: [{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}]
""")


def inventory(n, project, namespace):
    with tempfile.TemporaryDirectory() as d:
        scale.manifests(n, d, project)
        text = open(os.path.join(d, "inventory.yaml")).read()
    return text.replace("namespace: bench", f"namespace: {namespace}")


class Readiness:
    """Which objects of a namespace say Ready, from a watch of each kind. The moment all do is
    seen when it happens, and the API server sends only what changed: a list of every object
    every 3 s (6,501 at 1,000 apps) saw that moment up to 3 s late, and cost the API server and
    this process a share of the two cores the controller's writes were measured on."""

    def __init__(self, kube, namespace):
        self.ready = {}
        self.lock = threading.Lock()
        self.stopped = False
        for plural in PLURALS:
            threading.Thread(target=self.watch, args=(kube, namespace, plural), daemon=True).start()

    def watch(self, kube, namespace, plural):
        rv = "0"  # from the watch cache: every object as ADDED, then each change
        while not self.stopped:
            path = f"{GROUP}/namespaces/{namespace}/{plural}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"
            try:
                with kube.open("GET", path, timeout=120) as r:
                    for line in r:
                        if self.stopped:
                            return
                        event = json.loads(line)
                        if event["type"] == "ERROR":  # too old a version: start again from the cache
                            rv = "0"
                            break
                        o = event["object"]
                        rv = o["metadata"]["resourceVersion"]
                        if event["type"] == "BOOKMARK":
                            continue
                        conds = (o.get("status") or {}).get("conditions") or []
                        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
                        with self.lock:
                            if event["type"] == "DELETED":
                                self.ready.pop((plural, o["metadata"]["name"]), None)
                            else:
                                self.ready[(plural, o["metadata"]["name"])] = ready
            except urllib.error.HTTPError:  # refused (a version too old among others): from the cache
                rv = "0"
                time.sleep(0.5)
            except (OSError, ValueError):  # cut or timed out: go on from the last version seen
                time.sleep(0.5)

    def stop(self):
        """No more events wanted: each watch ends at its next event or timeout."""
        self.stopped = True

    def count(self):
        """(objects Ready, objects seen)."""
        with self.lock:
            return sum(self.ready.values()), len(self.ready)


def status_mib(pid, field):
    """A figure of /proc/PID/status (kB there), in MiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid):
    """The peak RSS."""
    return status_mib(pid, "VmHWM")


def code_mib(pid):
    """The resident pages of files mapped (the binary's code, libc): the part of the RSS that
    is the program rather than what it holds."""
    return status_mib(pid, "RssFile")


def cpu_s(pid):
    """The process's CPU time so far, user and system."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """The CPU time of every process on the machine's two cores that takes part: the API server,
    etcd, the simulator, this benchmark (its watches and calibration threads) and, while it runs,
    the controller. Read before and after a window, it says which process had the cores."""

    def __init__(self, cluster, sim):
        self.pids = {name: int(open(os.path.join(cluster, f"{name}.pid")).read()) for name in ("apiserver", "etcd")}
        self.pids["sim"] = sim.proc.pid

    def now(self, controller=None):
        t = os.times()
        snap = {name: cpu_s(pid) for name, pid in self.pids.items()}
        snap["bench"] = t.user + t.system
        if controller is not None:
            snap["controller"] = cpu_s(controller)
        snap["wall"] = time.perf_counter()
        return snap

    @staticmethod
    def cores(before, after):
        """Each process's cores over the window (CPU seconds / wall seconds), and the window."""
        wall = after["wall"] - before["wall"]
        out = {name: round((after[name] - before[name]) / wall, 3) for name in before if name != "wall" and name in after}
        out["wall_s"] = round(wall, 2)
        return out


WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
KINDS = set(PLURALS)


class Audit:
    """The API server's audit log (scripts/e2e-cluster logs every request of the controller's
    user): the controller's writes between two offsets of the file, by kind of write."""

    def __init__(self, cluster):
        self.path = os.path.join(cluster, "audit.log")

    def offset(self):
        return os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def writes(self, start, end=None):
        """{kind of write: count} of the controller's writes logged in [start, end), with
        `refused` (answered >= 400, e.g. a claim that exists: 409) counted apart too, the span
        from the first write received to the last completed, and when the first write for an
        object (a claim, a finalizer or a status) was received."""
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(end - start)
        counts, first, last, first_object = {}, None, None, None
        for line in data.decode(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line cut at the offset
            if e.get("user", {}).get("username") != "sinch-operator" or e.get("verb") not in WRITE_VERBS:
                continue
            o, verb = e.get("objectRef") or {}, e["verb"]
            resource, sub = o.get("resource", ""), o.get("subresource")
            if resource == "sinchclaims":
                kind = f"claim {verb}"
            elif resource == "events":
                kind = f"event {verb}"
            elif resource in KINDS and sub == "status":
                kind = f"status {verb}"
            elif resource in KINDS and not sub:
                kind = f"finalizer {verb}"  # the only write of the objects themselves
            elif resource == "leases":
                kind = "lease"  # leader election: per replica, not per object
            else:
                kind = f"other {resource}{'/' + sub if sub else ''} {verb}"
            counts[kind] = counts.get(kind, 0) + 1
            if (e.get("responseStatus") or {}).get("code", 200) >= 400:
                counts[f"refused {kind}"] = counts.get(f"refused {kind}", 0) + 1
            t0, t1 = e.get("requestReceivedTimestamp"), e.get("stageTimestamp")
            first = t0 if first is None or (t0 and t0 < first) else first
            last = t1 if last is None or (t1 and t1 > last) else last
            if kind.split(" ")[0] in ("claim", "finalizer", "status") and t0 and (first_object is None or t0 < first_object):
                first_object = t0
        return counts, first, last, first_object


def audit_time(stamp):
    """An audit log's timestamp (RFC 3339, microseconds, UTC) as seconds since the epoch."""
    import datetime
    return datetime.datetime.strptime(stamp[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f") \
        .replace(tzinfo=datetime.timezone.utc).timestamp()


def per_object(counts):
    """The writes that reach the API server for objects (leases and refusals apart)."""
    return sum(v for k, v in counts.items() if not k.startswith("refused ") and k != "lease")


def send_all(kube, writes, threads=16):
    """Sends `writes` (method, path, JSON body, content type) from `threads` threads, each on one
    kept-alive connection as the controller's client: the writes a second. Raises if any was
    refused."""
    import http.client
    host, port = re.match(r"https://([^:/]+):(\d+)", kube.server).groups()
    todo, lock, failed = list(writes), threading.Lock(), []

    def worker():
        c = http.client.HTTPSConnection(host, int(port), context=kube.ctx, timeout=60)
        while True:
            with lock:
                if not todo:
                    break
                method, path, body, content_type = todo.pop()
            c.request(method, path, body, {"Authorization": f"Bearer {kube.token}", "Content-Type": content_type})
            r = c.getresponse()
            answer = r.read()
            if r.status not in (200, 201):
                failed.append((r.status, answer[:300]))
        c.close()

    started = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rate = len(writes) / (time.perf_counter() - started)
    if failed:
        raise RuntimeError(f"calibration: {len(failed)} of {len(writes)} writes refused ({failed[:2]})")
    return rate


def patiently(call):
    """`call`, again while the API server answers 504 (or 500, "context deadline exceeded") or
    drops the connection: deleting 13,001 claims at once takes it past its request timeout
    (34 s)."""
    import http.client
    for _ in range(120):
        try:
            return call()
        except (RuntimeError, http.client.HTTPException, OSError) as e:  # OSError: refused, reset, timed out
            if isinstance(e, RuntimeError) and ": 504 " not in str(e) and "context deadline exceeded" not in str(e):
                raise
            time.sleep(1)
    raise RuntimeError("the API server did not answer for 2 minutes")


class Drains:
    """Watches that read every event and throw it away. During a run, the API server sends each
    write of the controller as an event to the controller's watch of its kind (and each write of
    an object to the benchmark's readiness watch); encoding and sending them is its work, as the
    write is. These watches cost the API server the same, and this process next to nothing: no
    event is parsed. Each starts at the version current when it opens, so it gets no list."""

    def __init__(self, kube, paths):
        import http.client
        host, port = re.match(r"https://([^:/]+):(\d+)", kube.server).groups()
        self.connections, self.threads = [], []
        for path in paths:
            path += "&" if "?" in path else "?"
            rv = kube.call("GET", path + "limit=1")["metadata"]["resourceVersion"]
            c = http.client.HTTPSConnection(host, int(port), context=kube.ctx, timeout=900)
            c.request("GET", path + f"watch=1&resourceVersion={rv}",
                      headers={"Authorization": f"Bearer {kube.token}"})
            r = c.getresponse()
            if r.status != 200:
                raise RuntimeError(f"watch {path}: {r.status} {r.read()[:300]!r}")
            t = threading.Thread(target=self.drain, args=(r,), daemon=True)
            t.start()
            self.connections.append(c)
            self.threads.append(t)

    @staticmethod
    def drain(r):
        import http.client
        try:
            while r.read1(65536):
                pass
        except (OSError, ValueError, http.client.HTTPException):  # cut by `stop`
            pass

    def stop(self):
        """Cuts each watch, and closes its connection once its reader has seen the cut (closing
        it under the reader made the reader fail on a half-closed response)."""
        for c in self.connections:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=10)
        for c in self.connections:
            c.close()


CALIBRATION_LABEL = "labelSelector=bench%2Fcalibrate%3D1"


def delete_calibration_claims(kube):
    """One request deletes them all; asked again until none is left."""
    while True:
        patiently(lambda: kube.call("DELETE", f"{GROUP}/sinchclaims?{CALIBRATION_LABEL}"))
        # From the watch cache: a quorum read by label scans every claim in etcd, past the API
        # server's 60 s timeout at 5,000 apps (62,501 claims).
        if not patiently(lambda: kube.call("GET", f"{GROUP}/sinchclaims?{CALIBRATION_LABEL}&resourceVersion=0"))["items"]:
            break


def calibrate(kube, n, threads=16):
    """The API server's write rate here: `n` SinchClaims (a kind of this CRD group, as every
    write of the controller is) created from `threads` threads, then deleted. Taken before the
    controller starts: what its writes are compared against."""
    writes = [("POST", f"{GROUP}/sinchclaims", json.dumps({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaim",
        "metadata": {"name": f"calibrate-{i}", "labels": {"bench/calibrate": "1"}},
        "spec": {"projectId": "calibrate", "region": "us", "kind": "Webhook", "key": f"k{i}",
                 "owner": {"namespace": "calibrate", "name": f"c{i}", "uid": f"u{i}"}}}), "application/json")
        for i in range(n)]
    rate = send_all(kube, writes, threads)
    delete_calibration_claims(kube)
    return rate


def calibrate_mix(kube, n, namespace, project, cpu, watched=False, threads=16):
    """The API server's rate for the controller's own writes: the same kinds of write on objects
    of the same size. The claims' creates alone (`calibrate`) are cheap: a finalizer's JSON patch
    or a status written by server-side apply makes the API server read, patch, validate against
    the CRD's schema and track field managers, about three times a create's CPU here. So, once
    the controller converged and stopped, a copy of the inventory (at most its first
    MIX_CALIBRATION_MAX apps and their objects) in namespace calibrate-N gets
    each write the controller made for its original, from `threads` threads on kept-alive
    connections: the finalizer's JSON patch, the status copied from the converged object (applied
    as the controller applies it) and a copy of each of its claims. Nothing watches the copies,
    so the rate is if anything optimistic (the controller's own watches cost the API server
    too). `watched`: the copies are watched as the run's objects were (`Drains`): each kind of
    the namespace twice (the controller's watch and the benchmark's readiness watch), and the
    claims once (the controller's). Returns the rate and each process's cores while writing."""
    import random
    ns = f"calibrate-{n}" + ("-watched" if watched else "")
    kube.create(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")
    # The inventory's first MIX_CALIBRATION_MAX apps at most (names do not depend on the size).
    docs = [d for d in documents(inventory(min(n, MIX_CALIBRATION_MAX), project, ns))
            if not re.search(r"^kind: Secret", d, re.M)]
    copied = {re.search(r"metadata: \{name: ([\w-]+)", d).group(1) for d in docs}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(kube.create, docs))
    writes = []
    for plural in PLURALS:
        # From the watch cache: a quorum read of 32,501 objects, or of 62,501 claims below, runs
        # past the API server's 60 s timeout at 5,000 apps.
        for o in kube.call("GET", f"{GROUP}/namespaces/{namespace}/{plural}?resourceVersion=0").get("items", []):
            name = o["metadata"]["name"]
            if name not in copied:
                continue
            path = f"{GROUP}/namespaces/{ns}/{plural}/{name}"
            writes.append(("PATCH", path, json.dumps([
                {"op": "test", "path": "/metadata/finalizers", "value": None},
                {"op": "add", "path": "/metadata/finalizers", "value": ["conversation.sinch.com/cleanup"]}]),
                "application/json-patch+json"))
            status = {"apiVersion": o["apiVersion"], "kind": o["kind"], "metadata": {"name": name},
                      "status": o.get("status") or {}}
            writes.append(("PATCH", f"{path}/status?fieldManager=sinch-operator-status&force=true",
                           json.dumps(status), "application/apply-patch+yaml"))
    for c in kube.call("GET", f"{GROUP}/sinchclaims?resourceVersion=0").get("items", []):
        owner = c["spec"].get("owner", {})
        if owner.get("namespace") != namespace or owner.get("name") not in copied:
            continue
        spec = dict(c["spec"], owner=dict(c["spec"]["owner"], namespace=ns))
        claim = {"apiVersion": c["apiVersion"], "kind": "SinchClaim",
                 "metadata": {"name": ("cal-" + c["metadata"]["name"])[:253], "labels": {"bench/calibrate": "1"}},
                 "spec": spec}
        writes.append(("POST", f"{GROUP}/sinchclaims", json.dumps(claim), "application/json"))
    random.Random(n).shuffle(writes)
    drains = None
    try:
        if watched:
            drains = Drains(kube, [f"{GROUP}/namespaces/{ns}/{plural}" for plural in PLURALS] * 2
                            + [f"{GROUP}/sinchclaims"])
        before = cpu.now()
        rate = send_all(kube, writes, threads)
        cores = Cpu.cores(before, cpu.now())
    finally:
        if drains:
            drains.stop()
        clear(kube, ns)
    return rate, cores


def clear(kube, ns):
    """Deletes what calibrate_mix made: the claims, and the copies once their finalizer is off."""
    delete_calibration_claims(kube)
    paths = [f"{GROUP}/namespaces/{ns}/{plural}/{o['metadata']['name']}"
             for plural in PLURALS
             for o in patiently(lambda: kube.call("GET", f"{GROUP}/namespaces/{ns}/{plural}?resourceVersion=0"))
             .get("items", [])]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: patiently(lambda: kube.call("PATCH", p, {"metadata": {"finalizers": None}},
                                                            "application/merge-patch+json")), paths))
    patiently(lambda: kube.call("DELETE", f"/api/v1/namespaces/{ns}"))


def before_a_round(sim, quiet_s=2.0, every_s=0.2):
    """The simulator's counts just before the controller's next poll round, and when they were
    read. The objects of a scope come due together, so the steady state's reads come in rounds
    one interval apart (a 200-app round: 203 GETs over 2 to 3 s); a window of two intervals that
    starts inside a round counts a part of it and a part of the round two intervals later, which
    need not add up to one (179 of 203 GETs per interval in the runs of 2026-12-07). Starting
    just before a round, the window holds two whole rounds."""
    last = sim.stats()
    last_at = quiet_since = time.perf_counter()
    while True:
        time.sleep(every_s)
        now, at = sim.stats(), time.perf_counter()
        if gets(now) != gets(last):
            if last_at - quiet_since >= quiet_s:
                return last, last_at
            quiet_since = at
        last, last_at = now, at


def gets(stats):
    return sum(v for k, v in stats["requests"].items() if k.startswith("GET "))


def diff(after, before):
    keys = set(after["requests"]) | set(before["requests"])
    return {"total": after["total"] - before["total"], "writes": after["writes"] - before["writes"],
            "bytes": after.get("bytes", 0) - before.get("bytes", 0),
            "requests": {k: after["requests"].get(k, 0) - before["requests"].get(k, 0) for k in keys}}


def bench(n, kube, cluster, sim):
    objects = n + n * scale.WEBHOOKS_PER_APP + n // 2 + 1
    audit = Audit(cluster)
    out = {"apps": n, "objects": objects}

    # The CLI: apply to an empty project, then one plan of the converged inventory.
    cli_project = f"cli-{n}"
    with tempfile.TemporaryDirectory() as d:
        scale.manifests(n, d, cli_project)
        env = sim.env(cli_project)
        applied = scale.measure(sim, [BIN, "apply", "--auto-approve", "-f", d] + FLAGS, env, {0})
        planned = scale.measure(sim, [BIN, "plan", "-f", d] + FLAGS, env, {0})
    out["apply"] = {k: applied[k] for k in ("wall_s", "requests", "writes", "rss_mib")}
    out["plan"] = {k: planned[k] for k in ("wall_s", "requests", "rss_mib")}

    # The controller, in a project and namespace of its own. The objects are all created first
    # and the controller started then, as after a GitOps sync of the whole inventory: what is
    # timed is the controller's work, not the rate at which the API server takes new objects
    # (that is `create_objects_s`, reported beside it).
    project, namespace = f"ctl-{n}", f"bench-{n}"
    port = free_port()
    env = sim.env(project)
    env.update({"KUBECONFIG": os.path.join(cluster, "controller.kubeconfig"),
                "SINCH_OPERATOR_LOG": os.environ.get("BENCH_CONTROLLER_LOG", "warn")})
    if os.environ.get("BENCH_TOKIO"): env["TOKIO_WORKER_THREADS"] = os.environ["BENCH_TOKIO"]
    kube.create(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n")
    # The namespace lets the operator read its Secrets (the opt-in of manifests/rbac.yaml).
    kube.create(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sinch-operator-secrets, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sinch-operator-secret-reader}}
subjects: [{{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}}]
""")
    docs = documents(inventory(n, project, namespace))
    secrets = [d for d in docs if re.search(r"^kind: Secret", d, re.M)]
    for doc in secrets:
        kube.create(doc)
    created = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(kube.create, [d for d in docs if d not in secrets]))
    created_s = time.perf_counter() - created
    # The API server's write rate, measured here before the controller starts (as many writes
    # as the objects, at least 1,000 and at most CALIBRATION_MAX).
    out["api_write_rate"] = calibrate(kube, min(max(objects, 1000), CALIBRATION_MAX))
    audit_start = audit.offset()
    log = open(os.path.join(cluster, f"controller-{n}.log"), "w")
    resync = resync_s(objects)
    out["resync_s"] = resync
    readiness = Readiness(kube, namespace)
    start_stats = sim.stats()
    cpu = Cpu(cluster, sim)
    cpu_started = cpu.now()
    started, popened = time.perf_counter(), time.time()
    ctl = subprocess.Popen([BIN, "run", "--namespace", namespace, "--operator-key-namespaces", namespace, "--resync", f"{resync}s",
                            "--metrics-listen", f"127.0.0.1:{port}", "--lease-name", namespace,
                            "--lease-namespace", "sinch-operator-system", "--identity", "bench",
                            "--lease-duration", "4s", "--workers", str(WORKERS)] + FLAGS,
                           env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 900
        # Sinch's side is done once every object is written there (each exactly once, checked
        # below); the cluster's once every object says Ready.
        sinch_done_s = None
        while True:
            now = time.perf_counter()
            if sinch_done_s is None and diff(sim.stats(), start_stats)["writes"] >= objects:
                sinch_done_s = now - started
            ready, total = readiness.count()
            if ready == objects:
                break
            if time.time() > deadline:
                raise RuntimeError(f"{ready}/{total} Ready after 900 s")
            time.sleep(0.1)
        converged_s = time.perf_counter() - started
        cpu_converged = cpu.now(ctl.pid)
        readiness.stop()
        converged_cpu_s = cpu_converged["controller"]
        # The controller's CPU before it started was none.
        out["cores"] = {"converge": Cpu.cores(dict(cpu_started, controller=0.0), cpu_converged)}
        sinch_done_s = sinch_done_s or converged_s
        # Read-backs and last status writes: wait for 5 s without a write.
        while True:
            a = sim.stats()
            time.sleep(6)
            if diff(sim.stats(), a)["writes"] == 0:
                break
        conv = diff(sim.stats(), start_stats)
        audit_converged = audit.offset()
        token = conv["requests"].get("POST /oauth2/token", 0)
        store = sim.call("GET", f"/v1/projects/{project}/apps")["apps"]
        names = [a["display_name"] for a in store]
        hooks = sum(len(sim.call("GET", f"/v1/projects/{project}/apps/{a['id']}/webhooks")["webhooks"])
                    for a in store)
        templates = len(sim.call("GET", f"/v2/projects/{project}/templates").get("templates", []))
        out["converge"] = {"wall_s": converged_s, "create_objects_s": created_s, "sinch_done_s": sinch_done_s,
                           "requests": conv["total"] - token, "token": token, "writes": conv["writes"],
                           "apps_in_sinch": len(names), "distinct_names": len(set(names)),
                           "webhooks_in_sinch": hooks, "templates_in_sinch": templates}
        time.sleep(resync)  # one whole interval settled
        a, window_start = before_a_round(sim)
        audit_steady = audit.offset()
        time.sleep(max(0.0, window_start + 2 * resync - time.perf_counter()))
        steady = diff(sim.stats(), a)
        time.sleep(2)  # the audit log is written a moment after each request
        counts, first, last, first_object = audit.writes(audit_start, audit_converged)
        steady_counts, _, _, _ = audit.writes(audit_steady)
        # From the controller's start to its first write for an object: the process, the Lease,
        # the lists of every kind (the audit log's clock is this machine's).
        out["converge"]["start_s"] = audit_time(first_object) - popened
        out["kube_writes"] = {"by_kind": dict(sorted(counts.items())), "total": per_object(counts),
                              "per_object": per_object(counts) / objects, "first": first, "last": last,
                              "floor_s": per_object(counts) / out["api_write_rate"],
                              "steady": dict(sorted(steady_counts.items())),
                              "steady_total": per_object(steady_counts)}
        out["steady"] = {"gets_per_interval": gets(steady) / 2, "bytes_per_interval": steady["bytes"] / 2,
                         "writes": steady["writes"],
                         "by_route": {k: v for k, v in steady["requests"].items() if v}}
        out["controller_rss_mib"] = rss_mib(ctl.pid)
        out["controller_code_mib"] = code_mib(ctl.pid)
        out["controller_cpu_s"] = {"converged": converged_cpu_s, "end": cpu_s(ctl.pid)}
    finally:
        ctl.terminate()
        try:
            ctl.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ctl.kill()
        log.close()
    # The API server's rate for the same writes, the controller stopped (see calibrate_mix).
    # A calibration that fails loses only its own figure, not the run's.
    try:
        out["api_mix_rate"], out["cores"]["calibration"] = calibrate_mix(kube, n, namespace, project, cpu)
        out["kube_writes"]["mix_floor_s"] = out["kube_writes"]["total"] / out["api_mix_rate"]
        # And watched as in the run: the floor of any controller, whose writes come back to it.
        out["api_mix_watched_rate"], out["cores"]["calibration_watched"] = calibrate_mix(
            kube, n, namespace, project, cpu, watched=True)
        out["kube_writes"]["mix_watched_floor_s"] = out["kube_writes"]["total"] / out["api_mix_watched_rate"]
    except Exception as e:  # noqa: BLE001
        print(f"the rate of the same writes was not measured: {e!r}", file=sys.stderr, flush=True)
    # One plan's bytes, against the controller's project (its steady state's peer).
    with tempfile.TemporaryDirectory() as d:
        scale.manifests(n, d, project)
        b = sim.stats()
        scale.measure(sim, [BIN, "plan", "-f", d] + FLAGS, sim.env(project), {0})
        p = diff(sim.stats(), b)
        out["plan"]["bytes"] = p["bytes"]
        out["plan"]["gets"] = gets(p)
    return out


def table(results):
    rows = ["| apps | objects | plan GETs | controller GETs / interval | ratio | plan bytes | controller bytes / interval | "
            "steady writes | apply requests | converge requests | ratio | apply wall | objects created in | Sinch written in | ratio | all Ready in | duplicates | controller peak RSS |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        c, s, a, p = r["converge"], r["steady"], r["apply"], r["plan"]
        dup = (c["apps_in_sinch"] - r["apps"]) + (c["webhooks_in_sinch"] - 5 * r["apps"]) \
            + (c["templates_in_sinch"] - r["apps"] // 2)
        rows.append(
            f"| {r['apps']} | {r['objects']} | {p['gets']} | {s['gets_per_interval']:.1f} | "
            f"{s['gets_per_interval'] / p['gets']:.2f} | {p['bytes'] / 1024:.0f} KiB | {s['bytes_per_interval'] / 1024:.0f} KiB | "
            f"{s['writes']} | {a['requests']} | {c['requests'] + c['token']} | {(c['requests'] + c['token']) / a['requests']:.2f} | "
            f"{a['wall_s']:.2f} s | {c['create_objects_s']:.2f} s | {c['sinch_done_s']:.2f} s | {c['sinch_done_s'] / a['wall_s']:.2f} | "
            f"{c['wall_s']:.2f} s | {dup} | {r['controller_rss_mib']:.1f} MiB |")
    return "\n".join(rows)


def writes_table(results):
    """The controller's writes to the API server on the way to Ready, from the audit log."""
    rows = ["| apps | objects | claims | events | status | finalizer | other | writes / object | refused | "
            "API server rate, claim creates | floor | API server rate, the same writes | floor | all Ready in | "
            "wall / floor (claim creates) | wall / floor (the same writes) | the same writes, watched | floor | "
            "wall / floor (watched) | steady writes |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: | ---: |"]
    for r in results:
        w = r["kube_writes"]
        k, n = w["by_kind"], r["objects"]

        def of(prefix):
            parts = {kk.split(" ", 1)[1]: v for kk, v in k.items() if kk.startswith(prefix + " ")}
            total = sum(parts.values())
            detail = ", ".join(f"{verb} {v}" for verb, v in sorted(parts.items()))
            return f"{total / n:.2f} ({detail})" if total else "0"
        other = sum(v for kk, v in k.items() if kk.startswith("other "))
        refused = sum(v for kk, v in k.items() if kk.startswith("refused "))

        def against(rate, floor):
            """A calibrated rate, its floor and the wall against it; empty where not measured
            (the same writes since 2026-12-07, watched since 1c777d7)."""
            if rate not in r:
                return "", "", ""
            return f"{r[rate]:.0f}/s", f"{w[floor]:.1f} s", f"**{r['converge']['wall_s'] / w[floor]:.2f}**"
        mix, mix_floor, mix_ratio = against("api_mix_rate", "mix_floor_s")
        watched, watched_floor, watched_ratio = against("api_mix_watched_rate", "mix_watched_floor_s")
        rows.append(
            f"| {r['apps']} | {n} | {of('claim')} | {of('event')} | {of('status')} | {of('finalizer')} | "
            f"{other} | **{w['per_object']:.2f}** | {refused} | {r['api_write_rate']:.0f}/s | {w['floor_s']:.1f} s | "
            f"{mix} | {mix_floor} | {r['converge']['wall_s']:.1f} s | {r['converge']['wall_s'] / w['floor_s']:.2f} | "
            f"{mix_ratio} | {watched} | {watched_floor} | {watched_ratio} | {w['steady_total']} |")
    return "\n".join(rows)


def svg(results, path):
    w, h, pad = 640, 300, 50
    xs = [r["apps"] for r in results]
    series = [("controller GETs / interval", "#c0392b", [r["steady"]["gets_per_interval"] for r in results]),
              ("plan GETs", "#2471a3", [r["plan"]["gets"] for r in results]),
              ("controller convergence requests / 6", "#e67e22", [(r["converge"]["requests"] + r["converge"]["token"]) / 6 for r in results]),
              ("apply requests / 6", "#27ae60", [r["apply"]["requests"] / 6 for r in results])]
    top = max(max(v) for _, _, v in series) * 1.1
    xmax = max(xs)
    def px(x, y):
        return pad + (w - 2 * pad) * x / xmax, h - pad - (h - 2 * pad) * y / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">apps (5 webhooks each, A/2 templates)</text>',
             f'<text x="12" y="{pad - 12}">requests ({top:.0f} at the top)</text>']
    for x in xs:
        X, _ = px(x, 0)
        parts.append(f'<text x="{X}" y="{h - pad + 14}" text-anchor="middle">{x}</text>')
    for i, (name, colour, ys) in enumerate(series):
        pts = " ".join(f"{px(x, y)[0]:.1f},{px(x, y)[1]:.1f}" for x, y in zip(xs, ys))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{pad + 10}" y="{pad + 14 * i}" fill="{colour}">{name}</text>')
    parts.append("</svg>")
    open(path, "w").write("\n".join(parts) + "\n")


def memory_table(results):
    """Peak RSS against the inventory: per object, and between sizes (the slope: what one more
    object costs, the fixed part left out)."""
    rows = ["| apps | objects | controller peak RSS | of it, code | per object | per object since the size before "
            "| writes / object | controller CPU until all Ready |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    before = None
    for r in results:
        n, rss = r["objects"], r["controller_rss_mib"]
        slope = f"{(rss - before[1]) * 1024 / (n - before[0]):.1f} KiB" if before else ""
        code = f"{r['controller_code_mib']:.1f} MiB" if "controller_code_mib" in r else ""
        cpu = f"{r['controller_cpu_s']['converged']:.1f} s" if "controller_cpu_s" in r else ""
        rows.append(f"| {r['apps']} | {n} | {rss:.1f} MiB | {code} | {rss * 1024 / n:.1f} KiB | {slope} | "
                    f"{r['kube_writes']['per_object']:.2f} | {cpu} |")
        before = (n, rss)
    return "\n".join(rows)


def scale_svg(results, path):
    """Two panels against objects in the inventory: the controller's peak RSS, and its API-server
    writes per object on the way to Ready."""
    w, h, pad = 720, 300, 55
    panel = (w - pad) // 2
    xs = [r["objects"] for r in results]
    panels = [("controller peak RSS (MiB)", "#c0392b", [r["controller_rss_mib"] for r in results], None),
              ("API-server writes per object", "#2471a3", [r["kube_writes"]["per_object"] for r in results], 4.0)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for i, (name, colour, ys, limit) in enumerate(panels):
        left = pad + i * panel
        right = left + panel - pad
        top = max(max(ys), limit or 0) * 1.15
        xmax = max(xs)

        def px(x, y, left=left, right=right, top=top, xmax=xmax):
            return left + (right - left) * x / xmax, h - pad - (h - 2 * pad) * y / top
        parts += [f'<line x1="{left}" y1="{h - pad}" x2="{right}" y2="{h - pad}" stroke="black"/>',
                  f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{h - pad}" stroke="black"/>',
                  f'<text x="{(left + right) / 2}" y="{h - 14}" text-anchor="middle">objects (A apps x 6 + A/2 + 1)</text>',
                  f'<text x="{left}" y="{pad - 18}" fill="{colour}">{name}</text>',
                  f'<text x="{left - 4}" y="{pad + 4}" text-anchor="end">{top:.0f}</text>' if top >= 10 else
                  f'<text x="{left - 4}" y="{pad + 4}" text-anchor="end">{top:.1f}</text>',
                  f'<text x="{left - 4}" y="{h - pad + 4}" text-anchor="end">0</text>']
        if limit:
            (x0, y0), (x1, _) = px(0, limit), px(xmax, limit)
            parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y0:.1f}" stroke="#999" stroke-dasharray="4 3"/>')
            parts.append(f'<text x="{x1:.1f}" y="{y0 - 4:.1f}" text-anchor="end" fill="#999">target {limit:g}</text>')
        for x, y in zip(xs, ys):
            X, Y = px(x, y)
            parts.append(f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="3" fill="{colour}"/>')
            parts.append(f'<text x="{X:.1f}" y="{Y - 7:.1f}" text-anchor="middle" font-size="10">{y:.{1 if limit is None else 2}f}</text>')
            parts.append(f'<text x="{X:.1f}" y="{h - pad + 14}" text-anchor="middle" font-size="10">{x}</text>')
        pts = " ".join(f"{px(x, y)[0]:.1f},{px(x, y)[1]:.1f}" for x, y in zip(xs, ys))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    parts.append("</svg>")
    open(path, "w").write("\n".join(parts) + "\n")


def main():
    cluster = tempfile.mkdtemp(prefix="sinch-bench-cluster.")
    subprocess.run([os.path.join(ROOT, "scripts", "e2e-cluster"), "start", cluster], check=True)
    sim = scale.Sim()
    results = []
    try:
        kube = Kube(os.path.join(cluster, "admin.kubeconfig"))
        install(kube, cluster)
        for n in SIZES:
            print(f"controller benchmark: {n} apps", file=sys.stderr, flush=True)
            results.append(bench(n, kube, cluster, sim))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        sim.stop()
        subprocess.run([os.path.join(ROOT, "scripts", "e2e-cluster"), "stop", cluster])
    with open(os.path.join(ROOT, "bench", "controller-results.json"), "w") as f:
        json.dump({"machine": scale.machine(), "resync_s": RESYNC_S, "results": results}, f, indent=2)
    svg(results, os.path.join(ROOT, "bench", "controller.svg"))
    scale_svg(results, os.path.join(ROOT, "bench", "controller-scale.svg"))
    print(table(results))
    print()
    print(writes_table(results))
    print()
    print(memory_table(results))


if __name__ == "__main__":
    main()
