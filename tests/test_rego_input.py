"""The Rego engine is given only the top-level keys of the plan the modules can read (tfreview.trust.rego_input).

What the rules see must not change: every module of tests/data/rego and a module reaching keys through each
reference form give the same findings with and without the cut, over the corpus plans (the peer plans and the
real terraform fixtures); a bare or dynamic `input` gets the whole document; a key a rule reads is never dropped.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.data.corpus import fixture_plans, peer_plans
from tfreview.trust import rego, rego_input

DATA = Path(__file__).resolve().parent / "data" / "rego"
FACTS = {"env": "prod", "plan_kind": "deploy", "planner": "alice@example.com"}

# One rule per reference form, each message saying what it read (so a dropped key loses a message).
FORMS = """package main

import rego.v1

import input.configuration as cfg

warn contains sprintf("dot: %d changes", [count(input.resource_changes)]) if input.resource_changes

warn contains sprintf("bracket: %d planned child modules", [count(input["planned_values"].root_module.child_modules)]) if {
	input["planned_values"].root_module.child_modules
}

warn contains sprintf("raw string: prior state %s", [input[`prior_state`].format_version]) if input[`prior_state`]

warn contains sprintf("import: %d provider configs", [count(cfg.provider_config)]) if cfg.provider_config

warn contains msg if {
	some rc in input.resource_drift
	msg := sprintf("drift: %s", [rc.address])
}

warn contains "absent keys stay undefined" if not input.no_such_key

warn contains "an absent key is null: wrong" if input.no_such_key == null

# `with` replaces the input for the expression: the target reads nothing
warn contains "with: overridden" if input.format_version == "x" with input.format_version as "x"
"""

# Forms that need the whole document: the message depends on keys no constant reference names.
BARE = {
    "assigned": "warn contains sprintf(\"%d top-level keys\", [count(object.keys(doc))]) if doc := input",
    "dynamic": "warn contains sprintf(\"key %s\", [k]) if { some k, _ in input; k == \"planned_values\" }",
    "walk": "warn contains \"walked to planned_values\" if { walk(input, [p, _]); p == [\"planned_values\"] }",
    "object.get": "warn contains \"planned_values via object.get\" if object.get(input, \"planned_values\", null)",
    "function": "f(doc) := doc.planned_values\nwarn contains \"planned_values via a function\" if f(input)",
    "import input": "import input\nwarn contains \"planned_values via import\" if input[concat(\"\", [\"planned\", "
                    "\"_values\"])]",
    "import input as": "import input as tfplan\nwarn contains \"planned_values via alias\" if tfplan.planned_values",
}


def modules_of(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): p.read_text() for p in sorted(directory.rglob("*.rego"))}


def both(modules: dict[str, str], plan: bytes) -> tuple[rego.CheckRun, rego.CheckRun]:
    cut = rego.evaluate(modules, plan, FACTS, timeout=120)
    whole = rego.evaluate(modules, plan, FACTS, timeout=120, slice_input=False)
    assert whole.input_keys is None
    return cut, whole


def msgs(run: rego.CheckRun) -> list[tuple[str, str]]:
    return sorted((f.rule, f.msg) for f in run.findings)


MODULE_SETS = {"conftest_style": modules_of(DATA / "conftest_style"), "forms": {"forms.rego": FORMS}}


@pytest.mark.parametrize("name", sorted(MODULE_SETS))
def test_every_module_gives_the_same_findings_with_and_without_the_cut(name):
    modules = MODULE_SETS[name]
    plans = fixture_plans() + peer_plans()
    assert plans
    cut_plans = 0
    for path in plans:
        cut, whole = both(modules, path.read_bytes())
        assert (msgs(cut), cut.error, cut.extra) == (msgs(whole), whole.error, whole.extra), path
        cut_plans += cut.input_keys is not None
    assert cut_plans >= len(fixture_plans()) // 2  # the comparison is not empty: most plans were cut


def test_each_reference_form_reads_its_key():
    doc = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "plans" / "cpu_memory.json").read_text())
    plan = json.dumps({**doc, "padding": "x" * 200_000}).encode()  # a key no rule reads, big enough to cut
    cut, whole = both({"forms.rego": FORMS}, plan)
    assert cut.input_keys == ("configuration", "format_version", "planned_values", "prior_state",
                              "resource_changes", "resource_drift")
    got = msgs(cut)
    assert got == msgs(whole)
    said = " | ".join(m for _, m in got)
    assert len({m.split(":")[0] for _, m in got}) == 7, got
    for expected in ("dot: ", "bracket: ", "raw string: prior state", "import: ", "drift: ",
                     "absent keys stay undefined", "with: overridden"):
        assert expected in said, expected
    assert "wrong" not in said
    assert f"dot: {len(doc['resource_changes'])} changes" in said
    assert f"bracket: {len(doc['planned_values']['root_module']['child_modules'])} planned child modules" in said


@pytest.mark.parametrize("form", sorted(BARE))
def test_a_bare_or_dynamic_input_gets_the_whole_document(form):
    doc = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "plans" / "cpu_memory.json").read_text())
    plan = json.dumps({**doc, "padding": "x" * 200_000}).encode()  # worth cutting, were it not for the bare input
    module = "package main\n\nimport rego.v1\n\n" + BARE[form] + "\n"
    # beside a module that reads one constant key: one bare reference anywhere gives the whole document
    other = "package main\n\nimport rego.v1\n\nwarn contains \"changes\" if input.resource_changes\n"
    cut, whole = both({"a.rego": module, "b.rego": other}, plan)
    assert cut.input_keys is None
    assert msgs(cut) == msgs(whole)
    assert any("planned_values" in m or f"{len(doc) + 1} top-level keys" in m for _, m in msgs(cut)), msgs(cut)
    # and the module reading the constant key alone is cut
    assert rego.evaluate({"b.rego": other}, plan, FACTS).input_keys == ("resource_changes",)


def test_a_reference_the_walk_does_not_account_for_gives_the_whole_document():
    # the syntax tree shows no reference, the source names `input` once: whole document, never a guess
    assert rego_input.needed_keys("[]", ["package main\ndeny contains 1 if input.a\n"]) is None
    assert rego_input.needed_keys("[]", ["package main\n# input\nx := \"input\"\ny := `input`\n"]) == frozenset()


def test_strings_raw_strings_and_comments_are_not_references():
    source = 'package main\n# input.a\nx := "input[k] \\" input"\ny := `input`\nz := data.input\nw := input.b\n'
    assert rego_input.source_mentions(source) == 2  # data.input's field, and input.b


def test_the_cut_keeps_the_plans_bytes_and_leaves_absent_keys_out():
    reader = rego_input.decoder()
    plan = '{"resource_changes": [{"n": 1.50, "big": 12345678901234567890123, "s": "\\u00e9"}], ' \
           '"planned_values": {"pad": "' + "x" * 2000 + '"}}'
    text, kept = rego_input.input_text(plan, frozenset({"resource_changes", "absent"}), reader)
    assert kept == ("resource_changes",)
    assert text == '{"resource_changes":[{"n": 1.50, "big": 12345678901234567890123, "s": "\\u00e9"}]}'
    # nothing to gain, not an object, not JSON: the document as it is
    assert rego_input.input_text(plan, frozenset({"resource_changes", "planned_values"}), reader) == (plan, None)
    assert rego_input.input_text("[1, 2]", frozenset({"a"}), reader) == ("[1, 2]", None)
    assert rego_input.input_text('{"a": [1,, 2]}', frozenset({"a"}), reader) == ('{"a": [1,, 2]}', None)
    assert rego_input.input_text(plan, None, reader) == (plan, None)


@pytest.mark.parametrize("plan", [
    # a key written with an escape is the same key
    '{"resource\\u005fchanges": [{"address": "a.b", "type": "aws_iam_user", "change": {"actions": ["create"]}}], '
    '"planned_values": {"pad": "' + "x" * 400 + '"}}',
    # a duplicated key: the last one wins, as the engine reads the whole document
    '{"resource_changes": [], "planned_values": {"pad": "' + "x" * 400 + '"}, "resource_changes": '
    '[{"address": "a.b", "type": "aws_iam_user", "change": {"actions": ["create"]}}]}',
    # a nested object with the same key name is not the top-level key
    '{"variables": {"v": {"value": {"resource_changes": [{"address": "fake.x", "type": "aws_iam_user", '
    '"change": {"actions": ["create"]}}]}}}, "planned_values": {"pad": "' + "x" * 400 + '"}}',
])
def test_unusual_documents_read_the_same_cut_or_whole(plan):
    modules = modules_of(DATA / "conftest_style")
    cut, whole = both(modules, plan.encode())
    assert cut.input_keys is not None
    assert msgs(cut) == msgs(whole)
    if "fake.x" in plan:
        assert not any("fake.x" in m for _, m in msgs(cut))
    else:
        assert any("a.b: create of a forbidden resource type" in m for _, m in msgs(cut))


def test_the_syntax_tree_is_not_read_when_cutting_cannot_pay():
    reader = rego_input.decoder()
    plan = '{"resource_changes": ["' + "x" * 1000 + '"], "format_version": "1.2"}'
    sources = ["package main\nwarn contains 1 if input.resource_changes\n"]

    def tree() -> str:
        raise AssertionError("the syntax tree was read")

    assert rego_input.engine_input(plan, sources, tree, reader) == (plan, None)
    # the biggest value is not named by any module: worth reading which keys they need
    asked: list[bool] = []

    def empty_tree() -> str:
        asked.append(True)
        return "[]"

    other = ["package main\nwarn contains 1 if input.format_version\n"]
    assert rego_input.engine_input(plan, other, empty_tree, reader) == (plan, None)  # the tree does not account
    assert asked


def test_an_engine_that_cannot_show_its_syntax_tree_gets_the_whole_document():
    plan = '{"resource_changes": [], "planned_values": {"pad": "' + "x" * 1000 + '"}}'

    def broken() -> str:
        raise RuntimeError("no tree")

    sources = ["package main\nwarn contains 1 if input.resource_changes\n"]
    assert rego_input.engine_input(plan, sources, broken, rego_input.decoder()) == (plan, None)


def test_a_key_written_with_escapes_in_the_rule_is_the_plans_key():
    module = ('package main\n\nimport rego.v1\n\n'
              'warn contains sprintf("%d changes", [count(input["resource\\u005fchanges"])]) if true\n')
    plan = ('{"resource_changes": [1, 2, 3], "planned_values": {"pad": "' + "x" * 1000 + '"}}').encode()
    cut, whole = both({"m.rego": module}, plan)
    assert cut.input_keys == ("resource_changes",)
    assert msgs(cut) == msgs(whole) == [("warn", "3 changes")]


def test_policy_check_reports_the_plans_problem_before_the_modules(tmp_path):
    """`policy check FILE --policy DIR` starts the engine before the plan is redacted (they overlap); the plan's own
    problem is still the one reported (exit 2), the modules' next (exit 1), as before."""
    import os
    import subprocess
    import sys

    from tests.helpers import assert_one_line_error

    plans = Path(__file__).resolve().parent.parent / "fixtures" / "plans"
    doc = json.loads((plans / "image_bump.json").read_text())
    doc["resource_changes"].append(doc["resource_changes"][0])
    broken = tmp_path / "twice.json"
    broken.write_text(json.dumps(doc))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.rego").write_text("package main\ndeny contains if {\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-m", "tfreview", "policy", "check", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    assert_one_line_error(run(str(broken), "--policy", str(bad)), 2, "listed twice")
    assert_one_line_error(run(str(broken), "--policy", str(DATA / "conftest_style")), 2, "listed twice")
    assert_one_line_error(run(str(plans / "image_bump.json"), "--policy", str(bad)), 1, "x.rego:")
    assert_one_line_error(run(str(broken), "--policy", str(tmp_path / "nowhere")), 2, "listed twice")
    ok = run(str(plans / "destroy.json"), "--policy", str(DATA / "conftest_style"), "--format", "json")
    assert ok.returncode == 3 and json.loads(ok.stdout)["blocked"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab"\\{}[],:é\n\t ')),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet="ab\"{}", max_size=4), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["resource_changes", "planned_values", "a\"b", "{", "x"]), _JSON),
       keys=st.frozensets(st.sampled_from(["resource_changes", "planned_values", "a\"b", "{", "absent"])),
       indent=st.booleans())
def test_the_cut_holds_exactly_the_kept_top_level_values(doc, keys, indent):
    """Whatever the values hold (quotes, brackets, escapes, nesting), the cut is the document's own values of the
    kept keys, and nothing else."""
    text = json.dumps(doc, indent=2 if indent else None, ensure_ascii=False)
    cut, kept = rego_input.input_text(text, keys, rego_input.decoder(), min_dropped_share=0.0)
    assert kept == tuple(sorted(k for k in keys if k in doc))
    assert json.loads(cut) == {k: doc[k] for k in kept}
