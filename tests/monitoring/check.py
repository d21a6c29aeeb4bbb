#!/usr/bin/env python3
"""The alerts of manifests/monitoring/rules.yaml under promtool: the PrometheusRule is the
source, so its rule groups are extracted into a plain rule file beside a copy of
rules.test.yaml, then `promtool check rules` and `promtool test rules`. Also: every alert is
tested and links a section of docs/runbooks.md that exists.

    tests/monitoring/check.py [PROMTOOL]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNBOOKS = "docs/runbooks.md"


def anchor(heading):
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def main():
    promtool = sys.argv[1] if len(sys.argv) > 1 else "promtool"
    with open(os.path.join(ROOT, "manifests/monitoring/rules.yaml")) as f:
        rule = yaml.safe_load(f)
    assert rule["kind"] == "PrometheusRule", rule["kind"]
    groups = rule["spec"]
    alerts = [r for g in groups["groups"] for r in g["rules"] if "alert" in r]

    with open(os.path.join(ROOT, RUNBOOKS)) as f:
        sections = {anchor(l[3:]) for l in f if l.startswith("## ")}
    with open(os.path.join(HERE, "rules.test.yaml")) as f:
        tests = yaml.safe_load(f)
    fired = {
        t["alertname"]
        for case in tests["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    problems = []
    for a in alerts:
        url = a.get("annotations", {}).get("runbook_url", "")
        if not url.split("#")[0].endswith(RUNBOOKS) or url.split("#")[-1] not in sections:
            problems.append(f"{a['alert']}: runbook_url {url!r} names no section of {RUNBOOKS}")
        if a["alert"] not in fired:
            problems.append(f"{a['alert']}: no test in rules.test.yaml expects it to fire")
    if problems:
        sys.exit("\n".join(problems))

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "rules.yaml"), "w") as f:
            yaml.safe_dump(groups, f, sort_keys=False)
        shutil.copy(os.path.join(HERE, "rules.test.yaml"), tmp)
        for args in (["check", "rules", "rules.yaml"], ["test", "rules", "rules.test.yaml"]):
            subprocess.run([promtool, *args], cwd=tmp, check=True)
    print(f"monitoring: {len(alerts)} alerts checked and tested")


if __name__ == "__main__":
    main()
