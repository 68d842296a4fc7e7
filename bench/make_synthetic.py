#!/usr/bin/env python3
"""Build synthetic `terraform show -json` plans of N resource changes from the real fixture changes.

Every non-no-op entry of `resource_changes` in fixtures/plans/*.json is a template (45 of them today: task
definitions, services, listeners, target groups, security groups, SSM parameters, ... from 16 real plans).
Change k of the synthetic plan is template k % T, copy k // T. Each copy gets a unique token, written over
"webapp" everywhere in the change (addresses, module address, names, families, ARNs, images), so addresses
are unique (a change whose address has no "webapp" goes under `module.copy<k>.`) and a task definition still
links to the service of its own copy only, as in a real big plan.

The rest of the document (format_version, terraform_version, variables, configuration, output_changes) is the
image_bump fixture's; `planned_values` and `prior_state` are emptied and `resource_drift` dropped, so the size
is dominated by the resource changes (about 2.7 KB each: 27 MB of JSON per 10k changes).

Deterministic: same fixtures in, same bytes out.

`--families all` (files `synthetic-all-<n>k.json`): the templates are every non-no-op change of every plan family
the project knows, not only ours: the real ECS fixtures, the hand-made ECS documents of tests/data, and the peer
corpus (hashicorp/terraform-json's test data: null resources, test providers, modules, sensitive values,
numerics, moves, checks...), interleaved family by family. Each copy also goes under its own module
(`module.copy<k>.`), so addresses stay unique in documents that have no "webapp" to rewrite.

Usage:
    .venv/bin/python bench/make_synthetic.py                 # 1k, 10k, 50k into bench/data/
    .venv/bin/python bench/make_synthetic.py --sizes 1000 --out /tmp
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "plans"
DATA = REPO / "bench" / "data"
SKELETON = "image_bump.json"


def fixture_files() -> list[Path]:
    """The real plan documents, in a stable order."""
    return [p for p in sorted(FIXTURES.glob("*.json"))
            if not p.name.endswith(".expected.json") and p.name != "secrets.json"]


def all_files() -> list[Path]:
    """Every plan family: the real fixtures, tests/data's ECS documents, the peer corpus (when present)."""
    sys.path.insert(0, str(REPO))
    from tests.data.corpus import data_plans, peer_plans

    return fixture_files() + data_plans() + peer_plans()


def templates(files: list[Path] | None = None) -> list[tuple[int, bytes]]:
    """(fixture index, serialized change) for every non-no-op resource change of every fixture."""
    out = []
    for i, path in enumerate(files if files is not None else fixture_files()):
        doc = orjson.loads(path.read_bytes())
        for rc in doc.get("resource_changes", []):
            if rc["change"]["actions"] != ["no-op"]:
                out.append((i, orjson.dumps(rc)))
    if not out:
        raise SystemExit(f"no resource changes found under {FIXTURES}")
    return out


def build(n: int, tmpl: list[tuple[int, bytes]], skeleton: dict, *, modules: bool = False) -> bytes:
    """A plan document with exactly n resource changes (`modules`: each copy under its own module)."""
    changes = []
    for k in range(n):
        fixture_index, raw = tmpl[k % len(tmpl)]
        token = f"a{k // len(tmpl):05d}x{fixture_index:02d}".encode()
        raw = raw.replace(b"webapp", token)
        rc = orjson.loads(raw)
        # A change whose address has no "webapp" (fixtures/plans/import.json's log group) goes under its copy's
        # module too: Terraform lists an address once, and tfreview refuses a plan that repeats one.
        if modules or token.decode() not in rc["address"]:
            prefix = f"module.copy{k // len(tmpl)}"
            rc["address"] = f"{prefix}.{rc['address']}"
            if rc.get("previous_address"):
                rc["previous_address"] = f"{prefix}.{rc['previous_address']}"
            rc["module_address"] = f"{prefix}.{rc['module_address']}" if rc.get("module_address") else prefix
            raw = orjson.dumps(rc)
        changes.append(orjson.Fragment(raw))
    doc = {key: value for key, value in skeleton.items() if key not in ("resource_drift", "relevant_attributes")}
    doc["planned_values"] = {"root_module": {}}
    doc["prior_state"] = {"format_version": skeleton.get("format_version", "1.2"), "values": {"root_module": {}}}
    doc["resource_changes"] = changes
    return orjson.dumps(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,50000", help="comma-separated numbers of resource changes")
    ap.add_argument("--out", type=Path, default=DATA, help="output directory (default bench/data)")
    ap.add_argument("--families", choices=("ecs", "all"), default="ecs",
                    help="ecs: the real ECS fixtures (synthetic-<n>k.json); all: every plan family (synthetic-all-<n>k.json)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    every = args.families == "all"
    tmpl = templates(all_files() if every else None)
    if every:  # interleave the families (one change of each document in turn), not document after document
        by_doc: dict[int, list[tuple[int, bytes]]] = {}
        for item in tmpl:
            by_doc.setdefault(item[0], []).append(item)
        queues = list(by_doc.values())
        tmpl = [q[i] for i in range(max(len(q) for q in queues)) for q in queues if i < len(q)]
    skeleton = orjson.loads((FIXTURES / SKELETON).read_bytes())
    for n in (int(s) for s in args.sizes.split(",")):
        path = args.out / f"synthetic{'-all' if every else ''}-{n // 1000}k.json"
        data = build(n, tmpl, skeleton, modules=every)
        path.write_bytes(data)
        print(f"{path}: {n} resource changes, {len(data) / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
