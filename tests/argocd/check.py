#!/usr/bin/env python3
"""The Argo CD health script (manifests/argocd/health.lua) run by a Lua 5.1 interpreter (the
language of Argo CD's gopher-lua) on status samples as the controller writes them
(tests/argocd/samples.json), and manifests/argocd/argocd-cm.yaml checked to embed it for the four
kinds (`--write` regenerates it). Run by scripts/test, which installs lua5.1."""

import json
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "manifests/argocd/health.lua"
CONFIGMAP = ROOT / "manifests/argocd/argocd-cm.yaml"
KINDS = ["ConversationApp", "Webhook", "Template", "ProjectSettings"]


def configmap():
    script = SCRIPT.read_text()
    body = "".join("    " + line if line.strip() else "\n" for line in script.splitlines(keepends=True))
    out = [
        "# Argo CD health checks for the sinch-operator kinds: merge into the argocd-cm ConfigMap\n",
        "# (generated from health.lua by `tests/argocd/check.py --write`).\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n",
        "  labels:\n    app.kubernetes.io/part-of: argocd\ndata:\n",
    ]
    for kind in KINDS:
        out.append(f"  resource.customizations.health.conversation.sinch.com_{kind}: |\n{body}")
    return "".join(out)


def lua(value):
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "{" + ", ".join(lua(v) for v in value) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {lua(v)}" for k, v in value.items() if v is not None) + "}"


def health(interpreter, obj):
    program = (
        f"obj = {lua(obj)}\n"
        f"local hs = assert(loadfile({json.dumps(str(SCRIPT))}))()\n"
        'io.write(hs.status, "\\t", hs.message)\n'
    )
    done = subprocess.run([interpreter, "-"], input=program, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"argocd: lua failed: {done.stderr}")
    status, message = done.stdout.split("\t", 1)
    return status, message


def main():
    if "--write" in sys.argv:
        CONFIGMAP.write_text(configmap())
        return
    failures = []
    if not CONFIGMAP.exists() or CONFIGMAP.read_text() != configmap():
        failures.append("manifests/argocd/argocd-cm.yaml is stale: run tests/argocd/check.py --write")
    interpreter = shutil.which("lua5.1") or shutil.which("lua")
    if interpreter is None:
        raise SystemExit("argocd: no Lua interpreter (lua5.1): scripts/test installs it")
    samples = json.loads((ROOT / "tests/argocd/samples.json").read_text())
    seen = set()
    for sample in samples:
        for kind in KINDS:
            obj = dict(sample["object"], apiVersion="conversation.sinch.com/v1alpha1", kind=kind)
            got = health(interpreter, obj)
            seen.add(got[0])
            want = (sample["status"], sample["message"])
            if got != want:
                failures.append(f"{sample['name']} ({kind}): {got} where {want} was expected")
    if seen != {"Healthy", "Progressing", "Degraded", "Suspended"}:
        failures.append(f"the samples reach only {sorted(seen)}")
    if failures:
        print("argocd: " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"argocd: {len(samples)} status samples x {len(KINDS)} kinds as expected")


if __name__ == "__main__":
    main()
