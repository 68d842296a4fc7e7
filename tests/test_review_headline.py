"""Issue 21: the headline tells the release, values are never split inside a word in a terminal, and the empty
attributes a replacement drops are folded into one line (`--full` shows each)."""
from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from tests.data.corpus import DATA
from tfreview.plan import classify, parse_plan, review_plan
from tfreview.render import render
from tfreview.render.terminal import render_terminal

PLAIN = DATA / "rolling_plain"


def doc(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def public_module_rolling() -> dict:
    """The green half of `ecs_image_bump` under a public module's names: no tfreview role matches it."""
    plan = doc("ecs_image_bump")
    kept = []
    for rc in plan["resource_changes"]:
        if rc["type"] in ("aws_ecs_task_definition", "aws_ecs_service") and rc.get("index") == "green":
            text = json.dumps(rc).replace('module.webapp.aws_ecs_task_definition.app[\\"green\\"]', "module.svc.aws_ecs_task_definition.this")
            text = text.replace('module.webapp.aws_ecs_service.app[\\"green\\"]', "module.svc.aws_ecs_service.this")
            rc = json.loads(text)
            rc["address"] = rc["address"].replace("module.webapp.", "module.svc.").split("[")[0].replace(".app", ".this")
            rc["module_address"], rc["name"] = "module.svc", "this"
            rc.pop("index", None)
            kept.append(rc)
    plan["resource_changes"] = kept
    plan.pop("output_changes", None)
    return plan


def _infra(plan: dict) -> dict:
    """`plan` plus a listener, a target group and a security group updated (from risky_infrastructure)."""
    plan = copy.deepcopy(plan)
    extra = [rc for rc in doc("risky_infrastructure")["resource_changes"]
             if rc["type"] in ("aws_lb_listener", "aws_lb_target_group", "aws_security_group")]
    seen, picked = set(), []
    for rc in extra:
        if rc["type"] not in seen:
            seen.add(rc["type"])
            rc = copy.deepcopy(rc)
            rc["address"] = rc["address"].replace("module.webapp.", "module.net.").replace(".production", ".https")
            rc["name"] = "https" if rc["name"] == "production" else rc["name"]
            if rc["change"]["actions"] == ["no-op"]:  # the listener: a new port
                rc["change"]["actions"] = ["update"]
                rc["change"]["after"]["port"] = 8443
            rc["module_address"] = "module.net"
            picked.append(rc)
    plan["resource_changes"] += picked
    return plan


# -- 1. the headline --------------------------------------------------------------------------------------------
def test_a_public_module_image_bump_is_a_rolling_deploy_with_the_image_in_the_headline():
    review = review_plan(public_module_rolling())
    c = review.classification
    assert c.kind == "rolling-deploy"
    assert c.headline == "rolling deploy of web: image 1.0.0 → 1.1.0; env +FEATURE_X"
    assert c.reasons == (c.headline,)
    assert not any("infrastructure" in r for r in c.reasons)


def test_other_changes_are_counted_by_kind_not_listed_one_per_line():
    plan = _infra(public_module_rolling())
    types = sorted(rc["type"] for rc in plan["resource_changes"])
    assert {"aws_lb_listener", "aws_lb_target_group", "aws_security_group"} <= set(types)
    c = classify(parse_plan(plan))
    assert c.kind == "infrastructure"
    assert c.reasons[0] == "3 infrastructure changes: 1 listener, 1 security group, 1 target group"
    assert c.reasons[1].startswith("also rolling deploy of web: image 1.0.0 → 1.1.0")
    assert c.infrastructure == (("listener", 1), ("security group", 1), ("target group", 1))
    for reason in c.reasons:  # no address of the resource list is repeated ahead of it
        assert "module.net." not in reason


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_every_format_carries_the_headline_and_the_tally(fmt):
    review = review_plan(_infra(public_module_rolling()))
    out = render(review, fmt)
    assert "3 infrastructure changes: 1 listener, 1 security group, 1 target group" in out
    assert "rolling deploy of web: image 1.0.0 → 1.1.0" in out or (fmt == "json" and "rolling deploy of web" in out)
    assert "infrastructure change: module.net" not in out


def test_json_classification_has_the_headline_and_counts():
    data = json.loads(render(review_plan(_infra(public_module_rolling())), "json"))
    c = data["classification"]
    assert data["schema_version"] == 1  # additions only: docs/cli-json.md
    assert c["headline"].startswith("3 infrastructure changes: 1 listener, 1 security group, 1 target group; also "
                                    "rolling deploy of web")
    assert c["infrastructure"] == [{"label": "listener", "count": 1}, {"label": "security group", "count": 1},
                                   {"label": "target group", "count": 1}]


@pytest.mark.parametrize("name,kind,headline", [
    ("ecs_image_bump", "deploy-to-idle", "deploy to idle colour green: web: image 1.0.0 → 1.1.0; env +FEATURE_X"),
    ("traffic_shift", "traffic-shift", "traffic shift towards green"),
    ("no_changes", "no-changes", "no changes"),
])
def test_blue_green_plans_keep_their_kinds(name, kind, headline):
    c = review_plan(doc(name)).classification
    assert (c.kind, c.headline) == (kind, headline)


def test_a_large_infrastructure_plan_names_at_most_eight_kinds():
    plan = public_module_rolling()
    template = plan["resource_changes"][0]
    plan["resource_changes"] = []
    for i in range(12):
        rc = copy.deepcopy(template)
        rc["type"] = f"aws_thing{i}_x"
        rc["address"] = f"aws_thing{i}_x.a"
        plan["resource_changes"].append(rc)
    c = classify(parse_plan(plan))
    assert c.reasons[0].startswith("12 infrastructure changes: 1 thing0 x, ") and c.reasons[0].endswith("and 4 more kinds")


# -- 2. no value split inside a word ----------------------------------------------------------------------------
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-prod-green:3"


def _terminal(review, width: int, **kw) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system=None, highlight=False, markup=False)
    console.print(render_terminal(review, **kw), crop=False)  # as the CLI prints it
    return buffer.getvalue()


def _words_whole(out: str, words: list[str]) -> None:
    flat = out.replace("│", " ")
    for word in words:
        assert word in flat, f"{word!r} split or lost"


@pytest.mark.parametrize("width", [60, 80, 120])
def test_terminal_never_splits_an_arn_a_json_string_or_known_after_apply(width):
    plan = doc("ecs_image_bump")
    review = review_plan(plan)
    out = _terminal(review, width)
    words = [ARN, "(known", "apply)", '"123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:1.1.0"',
             'module.webapp.aws_ecs_task_definition.app["green"]', "container_definitions"]
    _words_whole(out, words)
    # JSON strings in a diff stay on their line, whole, as terraform prints them (no line is cut)
    assert 'arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-prod-green:3" -> (known after apply)' in out
    # the summary wraps at spaces, keeping each line's indentation: a continuation starts under the text
    for line in out.splitlines():
        inside = line.strip("│ ")
        assert not inside.startswith(("pply)", "reaker", "-green")), line


@pytest.mark.parametrize("width", [60, 80, 120])
def test_terminal_summary_wraps_at_spaces_with_the_indentation_kept(width):
    review = review_plan(doc("ecs_image_bump"))
    out = _terminal(review, width)
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if "new deployment" in line or "→ module.webapp.aws_ecs_service" in line)
    follow = lines[i + 1]
    if "breaker with rollback)" not in lines[i]:  # wrapped: the continuation is indented under the text of `→`
        assert re.match(r"^│ {5}\S", follow), follow
    for line in lines:  # a closed box keeps its right border on every line that fits
        if line.startswith("│") and len(line) <= width:
            assert line.endswith("│") or not lines[0].endswith("╮"), line


def test_a_word_wider_than_the_terminal_runs_on_whole_and_the_box_opens():
    plan = public_module_rolling()
    long_name = "module.svc.aws_ecs_service." + "x" * 90
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_ecs_service":
            rc["address"] = long_name
    out = _terminal(review_plan(plan), 60)
    assert long_name in out.replace("\n", "\x00").replace("\x00", "\n")
    assert any(long_name in line for line in out.splitlines())
    assert any(line.startswith("╭─ ECS revisions") and not line.endswith("╮") for line in out.splitlines())


def test_the_text_format_and_pipes_never_split_a_word_either():
    plan = public_module_rolling()
    long_name = "module.svc.aws_ecs_service." + "y" * 150
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_ecs_service":
            rc["address"] = long_name
    out = render(review_plan(plan), "text")  # 120 columns
    assert any(long_name in line for line in out.splitlines())


# -- 3. quiet replacements --------------------------------------------------------------------------------------
def _replaced_task_definition() -> dict:
    plan = doc("ecs_image_bump")
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_ecs_task_definition" and rc["change"]["actions"] == ["delete", "create"]:
            before, after, unknown = rc["change"]["before"], rc["change"]["after"], rc["change"]["after_unknown"]
            before.update({"execution_role_arn": "", "ipc_mode": "", "pid_mode": "", "tags": {},
                           "volume": [], "enable_fault_injection": False})
            for key in ("execution_role_arn", "ipc_mode", "pid_mode", "tags", "volume", "enable_fault_injection"):
                after.pop(key, None)
                unknown.pop(key, None)
            before["network_mode"] = "awsvpc"
            after["network_mode"] = ""  # an attribute that empties, not one that empties away: shown
    return plan


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_replacement_folds_empty_attributes_that_become_unset(fmt):
    out = render(review_plan(_replaced_task_definition()), fmt)
    assert ("7 empty attributes become unset or known after apply: enable_fault_injection, execution_role_arn, "
            "ipc_mode, pid_mode, tags, tags_all and 1 more") in out
    for noise in ('ipc_mode = "" -&gt; null', 'ipc_mode = "" -> null', "pid_mode = ", "execution_role_arn = "):
        assert noise not in out
    assert "network_mode" in out  # a value that changes to empty is still shown


def test_the_fold_is_in_the_json_and_full_shows_each():
    review = review_plan(_replaced_task_definition())
    data = json.loads(render(review, "json"))
    td = next(r for r in data["resources"] if r["type"] == "aws_ecs_task_definition")
    assert td["changes"]["note"].startswith("7 empty attributes become unset or known after apply: ")
    assert "ipc_mode" not in {c["key"] for c in td["changes"]["children"]}
    full = render(review, "text", full=True)
    assert "empty attributes" not in full
    for shown in ('ipc_mode = "" -> null', 'pid_mode = "" -> null', 'execution_role_arn = "" -> null',
                  "enable_fault_injection = false -> null"):
        assert shown in full
    full_json = json.loads(render(review, "json", full=True))
    td = next(r for r in full_json["resources"] if r["type"] == "aws_ecs_task_definition")
    assert "ipc_mode" in {c["key"] for c in td["changes"]["children"]}


def test_an_update_in_place_folds_nothing():
    plan = _replaced_task_definition()
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_ecs_task_definition" and rc["change"]["actions"] == ["delete", "create"]:
            rc["change"]["actions"] = ["update"]
    out = render(review_plan(plan), "text")
    assert "empty attributes" not in out and 'ipc_mode = "" -> null' in out


# -- the real thing: terraform against the local AWS, no tfreview.toml -------------------------------------------
def _terraform(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(["terraform", *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    return proc.stdout


@pytest.mark.integration
def test_real_terraform_rolling_service_reads_as_a_rolling_deploy(aws_sandbox, tmp_path):
    from tfreview.config import load_settings
    from tfreview.terraform import Terraform

    work = tmp_path / "plain"
    shutil.copytree(PLAIN, work)
    env = Terraform(load_settings(cwd=tmp_path, environ=dict(os.environ)), work).environment()
    _terraform(["init", "-input=false", "-no-color"], work, env)
    _terraform(["apply", "-auto-approve", "-input=false", "-no-color", "-var", "image_tag=1.0.0"], work, env)
    _terraform(["plan", "-input=false", "-no-color", "-out", "v2.tfplan", "-var", "image_tag=1.1.0"], work, env)
    plan = _terraform(["show", "-json", "v2.tfplan"], work, env)
    review = review_plan(plan)
    assert review.classification.kind == "rolling-deploy"
    assert review.classification.headline == "rolling deploy of web: image 1.0.0 → 1.1.0"
    text = render(review, "text")
    assert re.search(r"│ Release kind: rolling-deploy +│", text) and "live colours" not in text
    assert "  - rolling deploy of web: image 1.0.0 → 1.1.0" in text
    # the replaced task definition: the provider's empty attributes in one line, not one each
    assert re.search(r"# \(\d+ empty attributes become unset[^)]*ipc_mode, pid_mode", text)
    assert 'ipc_mode = "" -> null' not in text and 'ipc_mode = "" -> null' in render(review, "text", full=True)

    _terraform(["plan", "-input=false", "-no-color", "-out", "v3.tfplan", "-var", "image_tag=1.1.0",
                "-var", "extra_infra=true"], work, env)
    review = review_plan(_terraform(["show", "-json", "v3.tfplan"], work, env))
    c = review.classification
    assert c.kind == "infrastructure"
    assert c.reasons == ("3 infrastructure changes: 1 log group, 1 security group, 1 target group",
                         "also rolling deploy of web: image 1.0.0 → 1.1.0")


@pytest.mark.parametrize("columns", ["60", "80", "120"])
def test_piped_cli_output_never_splits_a_word(tmp_path, columns):
    """`tfreview render` to a pipe (plain headings, no boxes) at COLUMNS=60/80/120: words and values whole,
    continuations indented."""
    import sys

    plan = doc("ecs_image_bump")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    exe = Path(sys.executable).parent / "tfreview"
    proc = subprocess.run([str(exe), "render", str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": columns})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    _words_whole(out, [ARN, 'module.webapp.aws_ecs_service.app["green"]:', "(known after apply)", "rollback)"])
    assert "Release kind: deploy-to-idle" in out
    for line in out.splitlines():
        assert not line.startswith(("breaker", "pply)", "rollback)")), line
