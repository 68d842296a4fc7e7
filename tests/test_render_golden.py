"""Golden files for every renderer, reviewed like code.

Regenerate (then read the diff!):   UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render_golden.py

- peer corpus and tests/data documents: the whole review in every format (text, markdown, html, json);
- fixtures/plans (real terraform runs; ARNs and timestamps change when they are regenerated): only the summary
  (counts, release kind, risks, ECS verdicts) in text, which stays stable across regenerations.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.data.corpus import PEER, data_plans, fixture_plans, peer_plans
from tfreview.plan import review_plan
from tfreview.render import render, render_text

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
EXTENSIONS = {"text": "txt", "markdown": "md", "html": "html", "json": "json"}


def _name(path: Path) -> str:
    if PEER in path.parents:
        return "peer__" + str(path.relative_to(PEER)).replace("/", "__").removesuffix(".json")
    return "data__" + path.stem


def _check(golden: Path, actual: str, *, new_is_ok: bool = False) -> None:
    if not UPDATE and new_is_ok and not golden.is_file():
        pytest.skip(f"new fixture without golden file yet: UPDATE_GOLDEN=1 pytest {Path(__file__).name}")
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
        return
    assert golden.is_file(), f"missing golden file {golden.name}: run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"
    expected = golden.read_text()
    assert actual == expected, f"{golden.name} differs: review, then UPDATE_GOLDEN=1 pytest {Path(__file__).name}"


CASES = [(p, fmt) for p in peer_plans() + data_plans() for fmt in EXTENSIONS]


@pytest.mark.parametrize("path,fmt", CASES, ids=lambda v: _name(v) if isinstance(v, Path) else v)
def test_renderer_output_matches_golden(path, fmt):
    review = review_plan(path.read_bytes())
    _check(GOLDEN / f"{_name(path)}.{EXTENSIONS[fmt]}", render(review, fmt))


@pytest.mark.parametrize("path", fixture_plans(), ids=lambda p: p.stem)
def test_fixture_summary_matches_golden(path):
    review = review_plan(path.read_bytes())
    # fixtures/ belongs to another workflow: a fixture added there is skipped until its golden file is written.
    _check(GOLDEN / f"fixture__{path.stem}.summary.txt", render_text(review, summary_only=True), new_is_ok=True)


def test_full_mode_shows_unchanged_attributes():
    path = next(p for p in data_plans() if p.stem == "ecs_image_bump")
    review = review_plan(path.read_bytes())
    short, full = render(review, "text"), render(review, "text", full=True)
    assert "unchanged attributes hidden" in short
    assert "unchanged attributes hidden" not in full
    assert 'launch_type = "FARGATE"' in full and 'launch_type = "FARGATE"' not in short
