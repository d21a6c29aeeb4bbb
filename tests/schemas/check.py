#!/usr/bin/env python3
"""Every example manifest against schemas/ with a standard JSON Schema validator (the Python
`jsonschema` package, not our code), and a misspelt field, a wrong type and a wrong enum value
refused by it: the schemas editors and kubeconform use must accept what the tool accepts and
catch what a person gets wrong. Run by scripts/test."""

import copy
import json
import pathlib
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"


def schema_for(doc):
    group, version = doc["apiVersion"].split("/")
    path = SCHEMAS / group / f"{doc['kind'].lower()}_{version}.json"
    return json.loads(path.read_text())


def errors(doc):
    validator = jsonschema.Draft7Validator(schema_for(doc))
    return sorted(e.message for e in validator.iter_errors(doc))


def main():
    failures = []
    checked = 0
    docs = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        if "invalid" in path.parts:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") == "Secret":
                continue
            docs.append((path, doc))
            found = errors(doc)
            checked += 1
            if found:
                failures.append(f"{path.relative_to(ROOT)} {doc['kind']} {doc['metadata']['name']}: {found}")
    kinds = {doc["kind"] for _, doc in docs}
    if kinds != {"ConversationApp", "Webhook", "Template", "ProjectSettings"}:
        failures.append(f"the examples hold only {sorted(kinds)}")

    # What a person gets wrong must be refused.
    app = next(doc for _, doc in docs if doc["kind"] == "ConversationApp")
    misspelt = copy.deepcopy(app)
    misspelt["spec"]["dispalyName"] = misspelt["spec"].pop("displayName")
    wrong_type = copy.deepcopy(app)
    wrong_type["spec"]["displayName"] = 42
    hook = next(doc for _, doc in docs if doc["kind"] == "Webhook")
    wrong_enum = copy.deepcopy(hook)
    wrong_enum["spec"]["triggers"] = ["MESSAGE_INBOUNDS"]
    no_kind = copy.deepcopy(app)
    no_kind["kind"] = "Webhook"
    for name, doc in [("a misspelt field", misspelt), ("a wrong type", wrong_type),
                      ("an unknown trigger", wrong_enum), ("another kind's body", no_kind)]:
        if not errors(doc):
            failures.append(f"{name} was accepted")

    if failures:
        print("schemas: " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"schemas: {checked} example objects valid; 4 mistakes refused")


if __name__ == "__main__":
    main()
