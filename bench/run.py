#!/usr/bin/env python3
"""The scale benchmark (run it with scripts/bench, which builds what it needs).

For each inventory size (apps with 5 webhooks each, half as many templates, project settings),
against one simulator with a fixed latency and Sinch's rate limit, it measures:
  - `apply` to an empty project (which also seeds the inventory),
  - `plan` with no changes, and `plan` after 10% of the apps drifted,
  - a converged re-apply (must send zero writes),
  - the official Node SDK reading the same inventory, sequentially and all in flight,
each as wall time, requests (from the simulator's /_sim/stats), requests per object, peak RSS
(ours: the process's own maximum resident set), and wall time as a ratio to the floor
max(requests / rate, critical path x latency). Writes bench/results.json, BENCHMARKS.md's table
and bench/scale.svg.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SINCH_OPERATOR_BIN", os.path.join(ROOT, "target", "release", "sinch-operator"))
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "50,200,1000").split(",")]
LATENCY_MS = 20
SIM_RATE = 800  # what Sinch allows a project, per second
OUR_RATE = 700  # --rate-limit: under the simulator's, as a user would configure it
CONCURRENCY = 64
WEBHOOKS_PER_APP = 5
DRIFT_SHARE = 0.10
REPEATS = 5  # runs of each read-only case; the median is reported


def manifests(n, directory, project):
    """N apps with 5 webhooks each, N/2 templates, settings, and the Secret they refer to."""
    docs = []
    tokens = {}
    for i in range(n):
        app = f"app-{i:04d}"
        tokens[f"sms-{i:04d}"] = f"bench-token-{i:04d}"
        docs.append(f"""apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {{name: {app}, namespace: bench}}
spec:
  projectId: {project}
  displayName: Bench app {i:04d}
  processingMode: CONVERSATION
  channelCredentials:
    - channel: SMS
      staticBearer: {{claimedIdentity: "sender-{i:04d}", tokenRef: {{name: bench-tokens, key: sms-{i:04d}}}}}
""")
        for w in range(WEBHOOKS_PER_APP):
            docs.append(f"""apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {{name: {app}-hook-{w}, namespace: bench}}
spec:
  appRef: {{name: {app}}}
  target: https://hooks.example.com/{app}/{w}
  triggers: [MESSAGE_INBOUND, MESSAGE_DELIVERY]
""")
    for t in range(n // 2):
        docs.append(f"""apiVersion: conversation.sinch.com/v1alpha1
kind: Template
metadata: {{name: template-{t:04d}, namespace: bench}}
spec:
  projectId: {project}
  description: Bench template {t:04d}
  defaultTranslation: en-US
  translations:
    - languageCode: en-US
      version: "1"
      textMessage: {{text: "Hello from template {t:04d}"}}
""")
    docs.append(f"""apiVersion: conversation.sinch.com/v1alpha1
kind: ProjectSettings
metadata: {{name: settings, namespace: bench}}
spec:
  projectId: {project}
  contactSettings: {{unifiedContactIdEnabled: false}}
""")
    secret = ("apiVersion: v1\nkind: Secret\nmetadata: {name: bench-tokens, namespace: bench, "
              "labels: {conversation.sinch.com/operator-secret: \"true\"}}\nstringData:\n")
    secret += "".join(f"  {k}: {v}\n" for k, v in tokens.items())
    docs.append(secret)
    with open(os.path.join(directory, "inventory.yaml"), "w") as f:
        f.write("---\n".join(docs))


class Sim:
    def __init__(self):
        self.proc = subprocess.Popen(
            [BIN, "sim", "--listen", "127.0.0.1:0", "--latency", str(LATENCY_MS), "--rate-limit", str(SIM_RATE)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        self.url = line.strip().rsplit(" ", 1)[-1]
        assert self.url.startswith("http://"), line

    def stats(self):
        with urllib.request.urlopen(f"{self.url}/_sim/stats") as r:
            return json.load(r)

    def env(self, project):
        env = dict(os.environ)
        env.update({
            "SINCH_AUTH_URL": f"{self.url}/oauth2/token",
            "SINCH_CONVERSATION_URL": self.url + "/{region}",
            "SINCH_TEMPLATE_URL": self.url + "/{region}",
            "SINCH_PROJECT_ID": project,
            "SINCH_KEY_ID": "bench-key",
            "SINCH_KEY_SECRET": "bench-secret",
            "NO_COLOR": "1",
        })
        env.pop("SINCH_OPERATOR_LOG", None)
        return env

    def token(self):
        req = urllib.request.Request(
            f"{self.url}/oauth2/token",
            data=b"grant_type=client_credentials",
            headers={"Authorization": "Basic YmVuY2gta2V5OmJlbmNoLXNlY3JldA==",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(req) as r:
            return json.load(r)["access_token"]

    def call(self, method, path, body=None):
        req = urllib.request.Request(
            f"{self.url}/us{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def measure(sim, cmd, env, expect):
    """Runs one command; its wall time, requests it caused, peak RSS (MiB) and stdout. The
    command is reaped with wait4 for its own `ru_maxrss`, its output goes to files (no pipe to
    drain while it runs): the wall time is the command's alone."""
    before = sim.stats()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    after = sim.stats()
    if proc.returncode not in expect:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return {
        "wall_s": wall,
        "requests": after["total"] - before["total"],
        "writes": after["writes"] - before["writes"],
        "stdout": stdout,
        "rss_mib": usage.ru_maxrss / 1024,
    }


def sdk(sim, project, mode):
    script = os.path.join(ROOT, "tests", "conformance", "read-inventory.mjs")
    r = measure(sim, ["node", script, sim.url, project, "us", mode], os.environ, {0})
    out = json.loads(r.pop("stdout").strip().splitlines()[-1])
    r.update(errors=out["errors"], apps=out["apps"], webhooks=out["webhooks"], sdk_ms=out["ms"])
    return r


def median_of(runs, measure_once):
    """The run with the median wall time of `runs` runs of a command that changes nothing: one
    run on this shared machine can be slowed by a neighbour."""
    results = sorted((measure_once() for _ in range(runs)), key=lambda r: r["wall_s"])
    result = results[len(results) // 2]
    result["wall_range_s"] = [results[0]["wall_s"], results[-1]["wall_s"]]
    return result


def floor(requests, rate, rounds):
    return max(requests / rate, rounds * LATENCY_MS / 1000)


def bench(n, sim):
    project = f"bench-{n}"
    env = sim.env(project)
    flags = ["--rate-limit", str(OUR_RATE), "--concurrency", str(CONCURRENCY)]
    objects = n + n * WEBHOOKS_PER_APP + n // 2 + 1
    with tempfile.TemporaryDirectory() as d:
        manifests(n, d, project)
        rows = {}
        # The critical path, in round trips (the token endpoint has the latency too): an empty
        # project takes the token, 3 lists at once, then an app's POST before its webhooks' POSTs.
        rows["apply (empty project)"] = dict(
            measure(sim, [BIN, "apply", "--auto-approve", "-f", d] + flags, env, {0}), rounds=4)
        # A plan: the token, apps/templates/settings at once, then every app's webhooks at once.
        rows["plan (no changes)"] = dict(
            median_of(REPEATS, lambda: measure(sim, [BIN, "plan", "-f", d] + flags, env, {0})), rounds=3)
        assert "No changes." in rows["plan (no changes)"]["stdout"], rows["plan (no changes)"]["stdout"][-500:]
        apps = sim.call("GET", f"/v1/projects/{project}/apps")["apps"]
        drifted = apps[: max(1, int(len(apps) * DRIFT_SHARE))]
        for app in drifted:
            sim.call("PATCH", f"/v1/projects/{project}/apps/{app['id']}?update_mask=processing_mode",
                     {"processing_mode": "DISPATCH"})
        rows["plan (10% drift)"] = dict(median_of(
            REPEATS, lambda: measure(sim, [BIN, "plan", "--detailed-exitcode", "-f", d] + flags, env, {2})), rounds=3)
        assert f"{len(drifted)} to update" in rows["plan (10% drift)"]["stdout"], rows["plan (10% drift)"]["stdout"][-300:]
        fix = measure(sim, [BIN, "apply", "--auto-approve", "-f", d] + flags, env, {0})
        assert fix["writes"] == len(drifted), fix
        rows["re-apply (converged)"] = dict(median_of(
            REPEATS, lambda: measure(sim, [BIN, "apply", "--auto-approve", "-f", d] + flags, env, {0})), rounds=3)
        rows["SDK read, sequential"] = dict(sdk(sim, project, "sequential"), rounds=None)
        rows["SDK read, all in flight"] = dict(median_of(REPEATS, lambda: sdk(sim, project, "parallel")), rounds=3)
    for name, r in rows.items():
        r.pop("stdout", None)
        r["per_object"] = r["requests"] / objects
        if r["rounds"] is None:  # one request after another
            r["floor_s"] = r["requests"] * LATENCY_MS / 1000
        else:
            rate = OUR_RATE if not name.startswith("SDK") else SIM_RATE
            r["floor_s"] = floor(r["requests"], rate, r["rounds"])
        r["ratio"] = r["wall_s"] / r["floor_s"]
    return {"apps": n, "webhooks": n * WEBHOOKS_PER_APP, "templates": n // 2, "objects": objects, "rows": rows}


def svg(results, path):
    """Wall time against inventory size, one line per case, log-log."""
    import math
    cases = ["plan (no changes)", "apply (empty project)", "SDK read, sequential", "SDK read, all in flight"]
    colours = ["#1f77b4", "#d62728", "#7f7f7f", "#2ca02c"]
    w, h, left, bottom, top, right = 640, 360, 60, 40, 20, 200
    xs = [r["apps"] for r in results]
    ys = [r["rows"][c]["wall_s"] for r in results for c in cases]
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    px = lambda x: left + (math.log10(x) - x0) / max(x1 - x0, 1e-9) * (w - left - right)
    py = lambda y: h - bottom - (math.log10(y) - y0) / max(y1 - y0, 1e-9) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{left}" y1="{h-bottom}" x2="{w-right}" y2="{h-bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="black"/>']
    for x in xs:
        out.append(f'<text x="{px(x)}" y="{h-bottom+16}" text-anchor="middle">{x}</text>')
    for e in range(y0, y1 + 1):
        y = 10 ** e
        out.append(f'<text x="{left-6}" y="{py(y)+4}" text-anchor="end">{y:g} s</text>')
        out.append(f'<line x1="{left}" y1="{py(y)}" x2="{w-right}" y2="{py(y)}" stroke="#ddd"/>')
    out.append(f'<text x="{(left+w-right)/2}" y="{h-6}" text-anchor="middle">apps (5 webhooks each, 0.5 templates per app)</text>')
    for i, (c, colour) in enumerate(zip(cases, colours)):
        pts = " ".join(f"{px(r['apps'])},{py(r['rows'][c]['wall_s'])}" for r in results)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for r in results:
            out.append(f'<circle cx="{px(r["apps"])}" cy="{py(r["rows"][c]["wall_s"])}" r="3" fill="{colour}"/>')
        out.append(f'<rect x="{w-right+12}" y="{top+18*i}" width="12" height="3" fill="{colour}"/>')
        out.append(f'<text x="{w-right+30}" y="{top+18*i+5}">{c}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def table(results):
    lines = ["| apps | case | wall | requests | per object | floor | wall / floor | peak RSS | writes |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        for name, row in r["rows"].items():
            rss = f"{row['rss_mib']:.1f} MiB" if "rss_mib" in row else "n/a"
            writes = str(row.get("writes", "n/a"))
            if "errors" in row and row["errors"]:
                writes = f"{row['errors']} failed"
            wall = f"{row['wall_s']:.2f} s"
            if "wall_range_s" in row:  # the median of several runs, and their range
                wall += " ({:.2f} to {:.2f})".format(*row["wall_range_s"])
            lines.append(f"| {r['apps']} | {name} | {wall} | {row['requests']} | "
                         f"{row['per_object']:.3f} | {row['floor_s']:.2f} s | {row['ratio']:.2f} | {rss} | {writes} |")
    return "\n".join(lines)


def versus(results):
    """Our plan's wall time as a ratio to each SDK read of the same inventory (below 1: faster)."""
    lines = ["| apps | plan | SDK sequential | ratio | SDK all in flight | ratio | SDK's own timer | ratio |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        rows = r["rows"]
        ours = rows["plan (no changes)"]["wall_s"]
        seq, par = rows["SDK read, sequential"], rows["SDK read, all in flight"]
        inner = par["sdk_ms"] / 1000
        lines.append(f"| {r['apps']} | {ours:.2f} s | {seq['wall_s']:.2f} s | {ours / seq['wall_s']:.2f} | "
                     f"{par['wall_s']:.2f} s | {ours / par['wall_s']:.2f} | {inner:.2f} s | {ours / inner:.2f} |")
    return "\n".join(lines)


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu})"


def main():
    sim = Sim()
    try:
        results = [bench(n, sim) for n in SIZES]
    finally:
        sim.stop()
    meta = {"latency_ms": LATENCY_MS, "sim_rate": SIM_RATE, "our_rate": OUR_RATE, "concurrency": CONCURRENCY,
            "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(ROOT, "bench", "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    svg(results, os.path.join(ROOT, "bench", "scale.svg"))
    print(table(results))
    print()
    print(versus(results))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
