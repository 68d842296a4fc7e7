"""Plan documents shared by the review-engine tests (test_plan_*, test_render_*, test_conformance): the peer
corpus, the hand-made ECS docs in tests/data and, when present, the real terraform fixtures in fixtures/plans."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = Path(__file__).resolve().parent
PEER = Path("/work/shared/peer-plans/terraform-json")
FIXTURES = ROOT / "fixtures" / "plans"

# The two deliberately broken peer documents (see /work/shared/peer-plans/README.md).
PEER_BROKEN = ("testdata/invalid/plan.json", "sanitize/testdata/basic.json")


def peer_plans() -> list[Path]:
    """Every valid peer plan document (sorted)."""
    if not PEER.is_dir():
        return []
    return sorted(p for p in PEER.rglob("*.json") if str(p.relative_to(PEER)) not in PEER_BROKEN)


def data_plans() -> list[Path]:
    """The hand-made ECS plan documents of tests/data."""
    return sorted(p for p in DATA.glob("*.json") if p.name != "secrets.json")


def fixture_plans() -> list[Path]:
    """Real terraform plans of fixtures/plans (made by fixtures/regenerate.py), when they exist."""
    if not FIXTURES.is_dir():
        return []
    return sorted(
        p for p in FIXTURES.glob("*.json")
        if not p.name.endswith(".expected.json") and p.name != "secrets.json"
    )


def seeded_secrets() -> list[str]:
    """Secret values seeded into the test documents (and into the fixtures, when present)."""
    values = json.loads((DATA / "secrets.json").read_text())
    fixture_secrets = FIXTURES / "secrets.json"
    if fixture_secrets.is_file():
        raw = json.loads(fixture_secrets.read_text())
        values += list(raw.get("values", [])) if isinstance(raw, dict) else list(raw)
    return [v for v in values if isinstance(v, str) and v]


def load(path: Path) -> bytes:
    return path.read_bytes()
