"""Killed and interrupted at each of its store writes, tfreview leaves a store that tells the truth.

`kill -9` right after every store write of package, plan, approve and apply (tests/kill_after.py counts the
writes), then: `audit verify` passes, every record that counts has its audit entry, `history` works, and running
the command again (or `unlock`, for an apply) completes or says exactly what to do. SIGINT and SIGTERM during a
slow apply: terraform is stopped, the outcome is recorded as interrupted, the lock released, exit 130 / 143.
Real terraform, no AWS (tests/data/tfdata)."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfreview.store.audit import iter_entries
from tfreview.store.local import LocalStore

pytestmark = pytest.mark.integration

TFDATA = Path(__file__).parent / "data" / "tfdata"
KILL_AFTER = Path(__file__).parent / "kill_after.py"
PLANNER, APPROVER = "alice@example.com", "bob@example.com"


class Project:
    """A project directory with the terraform_data package and its default store, that can be saved and put back
    at the same path (the state location is part of each plan)."""

    def __init__(self, cli) -> None:
        self.cli = cli
        self.dir = cli.cwd
        shutil.rmtree(self.dir / "terraform")
        shutil.copytree(TFDATA, self.dir / "terraform")
        self.store = self.dir / ".tfreview"
        cli.ensure_policy()  # the test policy, in the default store

    def run(self, *args: str, user: str = PLANNER, kill_after: int | None = None, log: Path | None = None,
            check: bool = False, env_work: str | None = None) -> subprocess.CompletedProcess:
        env = self.cli.environment(user)
        if env_work is not None:
            env["TFREVIEW_WORK_DIR"] = env_work
        if log is not None:
            env["TFREVIEW_TEST_WRITES_LOG"] = str(log)
        head = [sys.executable, str(KILL_AFTER), str(kill_after)] if kill_after is not None \
            else [sys.executable, "-m", "tfreview"]
        proc = subprocess.run([*head, *args], cwd=self.dir, env=env, capture_output=True, text=True, timeout=300)
        if check:
            assert proc.returncode == 0, f"{args} exited {proc.returncode}: {proc.stderr}"
        return proc

    def save(self) -> Path:
        saved = self.dir.parent / f"{self.dir.name}-saved"
        shutil.rmtree(saved, ignore_errors=True)
        if self.store.exists():
            shutil.copytree(self.store, saved)
        return saved

    def restore(self, saved: Path) -> None:
        shutil.rmtree(self.store, ignore_errors=True)
        if saved.exists():
            shutil.copytree(saved, self.store)

    def plan_id(self) -> str:
        return json.loads((self.store / "heads" / "data" / "qa" / "latest-plan.json").read_text())["plan_id"]


def _clean_error(proc: subprocess.CompletedProcess) -> None:
    """No traceback, no internal error, at most one error line (other stderr lines are progress)."""
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("tfreview:")]) <= 1, proc.stderr


def _assert_store_tells_the_truth(project: Project) -> None:
    """audit verify passes; history works; every package, plan, decision and apply outcome that counts is in the log."""
    verify = project.run("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    history = project.run("history", "--format", "json")
    assert history.returncode == 0, history.stderr
    _clean_error(history)
    store = LocalStore(project.store)
    entries = list(iter_entries(store))
    logged = {(e["event"], e.get("plan_id") or e.get("version")) for e in entries}
    for key in store.list("packages/"):
        if key.endswith("/manifest.json"):
            assert ("package", key.split("/")[2]) in logged, f"{key} has no audit entry"
    for key in store.list("plans/"):
        if key.endswith("/record.json"):
            assert ("plan", key.split("/")[1]) in logged, f"{key} has no audit entry"
    for key in store.list("applies/"):
        if key.endswith("/result.json"):
            assert ("apply-end", key.split("/")[1]) in logged, f"{key} has no audit entry"


def _kill_points(project: Project, args: tuple[str, ...], user: str, tmp_path: Path) -> int:
    """How many store writes `args` makes (run once on a copy, then put back)."""
    saved = project.save()
    log = tmp_path / f"writes-{args[0]}.log"
    project.run(*args, user=user, kill_after=0, log=log, check=True)
    project.restore(saved)
    return len(log.read_text().splitlines())


def _package(p: Project) -> subprocess.CompletedProcess:
    return p.run("package", "--app", "data", "--version", "1.0.0")


def _plan(p: Project) -> subprocess.CompletedProcess:
    return p.run("plan", "--app", "data", "--version", "1.0.0", "--env", "qa")


STAGES = [
    (("package", "--app", "data", "--version", "1.0.0"), PLANNER),
    (("plan", "--app", "data", "--version", "1.0.0", "--env", "qa"), PLANNER),
    (("approve", "PLAN", "--yes"), APPROVER),
    (("apply", "PLAN", "--no-wait"), PLANNER),
]


def kill_9_after_each_store_write(project: Project, tmp_path: Path, stages: set[str]) -> dict[str, int]:
    """Runs the release's commands in order; each of `stages` is first killed after each of its store writes in turn
    (the store checked and the operator's recovery tried after each kill, then the store put back). Returns how many
    kills each of `stages` had."""
    killed: dict[str, int] = {}
    for args, user in STAGES:
        args = tuple(project.plan_id() if a == "PLAN" else a for a in args)
        if args[0] in stages:
            points = _kill_points(project, args, user, tmp_path)
            assert points >= 2, f"{args[0]} made {points} store writes"
            saved = project.save()
            for k in range(1, points + 1):
                project.restore(saved)
                died = project.run(*args, user=user, kill_after=k)
                assert died.returncode == -signal.SIGKILL, (args, k, died.stderr)
                killed[args[0]] = killed.get(args[0], 0) + 1
                _assert_store_tells_the_truth(project)
                _recover(project, args, user)
            project.restore(saved)
        project.run(*args, user=user, check=True)  # the stage done cleanly, for the next one
    return killed


# The apply's kill points are in tests/test_crash_points_apply.py: the two run side by side in `make test`'s workers.
# Between them, at least 15 kills, as when they were one test (7 Dec 2026: package 6, plan 6, approve 4, apply 9).
KILLS_BEFORE_APPLY, KILLS_IN_APPLY = 10, 5


def test_kill_9_after_each_store_write_of_package_plan_and_approve_leaves_a_store_that_tells_the_truth(cli_factory,
                                                                                                       tmp_path):
    killed = kill_9_after_each_store_write(Project(cli_factory("crash")), tmp_path, {"package", "plan", "approve"})
    assert sum(killed.values()) >= KILLS_BEFORE_APPLY, killed


def _recover(project: Project, args: tuple[str, ...], user: str) -> None:
    """What an operator does after the kill: run the command again (after `unlock` for an apply); it works or
    says in one line what to do, and the release can then be finished."""
    if args[0] == "apply":
        again = project.run(*args, user=user)
        _clean_error(again)
        if again.returncode != 0:
            assert again.returncode == 3, again.stderr
            assert "tfreview unlock" in again.stderr or "plan" in again.stderr, again.stderr
            unlock = project.run("unlock", "--app", "data", "--env", "qa")
            _clean_error(unlock)
        history = json.loads(project.run("history", "--format", "json", check=True).stdout)
        if history[0]["outcome"] == "planned":  # killed before the apply started: nothing ran, so apply it now
            project.run(*args, user=user, check=True)
            history = json.loads(project.run("history", "--format", "json", check=True).stdout)
        assert history[0]["outcome"] in ("applied", "interrupted"), history[0]
        return
    again = project.run(*args, user=user)
    _clean_error(again)
    if args[0] == "approve" and again.returncode == 3:  # the approval made it into the log before the kill
        assert "already approved" in again.stderr, again.stderr
        return
    assert again.returncode == 0, (args, again.stderr)


def descendants(pid: int) -> set[str]:
    """The names (`comm`) of every process under `pid`, read from Linux's /proc."""
    children: dict[int, list[tuple[int, str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        children.setdefault(int(rest[1]), []).append((int(stat.parent.name), name))
    names, todo = set(), [pid]
    while todo:
        for child, name in children.get(todo.pop(), []):
            names.add(name)
            todo.append(child)
    return names


def wait_for_descendant(pid: int, name: str, timeout_s: float = 120) -> None:
    """Wait until a process named `name` runs under `pid` (the apply's terraform reached its provisioner's `sleep`):
    a condition, not a guess of how long terraform takes to get there on a busy machine."""
    deadline = time.monotonic() + timeout_s
    while name not in descendants(pid):
        assert time.monotonic() < deadline, f"no {name!r} process under {pid} after {timeout_s} s"
        time.sleep(0.1)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_apply_records_its_outcome_stops_terraform_and_frees_the_lock(cli_factory, sig, code):
    project = Project(cli_factory(f"interrupt-{sig.name}"))
    project.run("package", "--app", "data", "--version", "1.0.0", check=True)
    plan = json.loads(project.run("plan", "--app", "data", "--version", "1.0.0", "--env", "slow", "--format", "json",
                                  check=True).stdout)
    project.run("approve", plan["id"], "--yes", user=APPROVER, check=True)
    proc = project.cli.popen("apply", plan["id"], "--no-wait", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_descendant(proc.pid, "sleep")  # terraform is in the provisioner's sleep now
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == code, err
    errors = [line for line in err.splitlines() if line.startswith("tfreview:")]  # the rest is apply progress
    assert len(errors) == 1 and "interrupted by" in errors[0] and "internal error" not in err, err
    result = json.loads((project.store / "applies" / plan["id"] / "result.json").read_text())
    assert result["outcome"] == "interrupted"
    assert not (project.store / "locks" / "data" / "slow.json").exists()
    history = json.loads(project.run("history", "--format", "json", check=True).stdout)
    assert history[0]["outcome"] == "interrupted"
    _assert_store_tells_the_truth(project)
    # The next release works: a new plan (the state terraform wrote on its way out is kept), approve, apply.
    plan2 = json.loads(project.run("plan", "--app", "data", "--version", "1.0.0", "--env", "slow", "--format",
                                   "json", check=True).stdout)
    assert plan2["id"] != plan["id"]


def test_a_killed_apply_keeps_its_lock_while_its_terraform_runs_and_its_workdir_is_cleaned_up(cli_factory):
    project = Project(cli_factory("kill-during-terraform"))
    project.run("package", "--app", "data", "--version", "1.0.0", check=True)
    plan = json.loads(project.run("plan", "--app", "data", "--version", "1.0.0", "--env", "slow", "--format", "json",
                                  check=True).stdout)
    project.run("approve", plan["id"], "--yes", user=APPROVER, check=True)
    work = project.dir / "work"
    proc = project.cli.popen("apply", plan["id"], "--no-wait", env={"TFREVIEW_WORK_DIR": str(work)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_descendant(proc.pid, "sleep")  # terraform is in the provisioner's sleep
    proc.kill()
    proc.wait()
    assert [p.name for p in work.iterdir() if p.name.startswith(f"tfreview-apply-{proc.pid}-")]
    refused = project.run("unlock", "--app", "data", "--env", "slow")
    assert refused.returncode == 3 and "still running" in refused.stderr, refused.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the orphaned terraform ends (its sleep, or its output pipe, ends it)
        unlocked = project.run("unlock", "--app", "data", "--env", "slow")
        if unlocked.returncode == 0:
            break
        time.sleep(1)
    assert unlocked.returncode == 0, unlocked.stderr
    history = json.loads(project.run("history", "--format", "json", check=True).stdout)
    assert history[0]["outcome"] == "interrupted"
    project.run("plan", "--app", "data", "--version", "1.0.0", "--env", "slow", env_work=str(work))
    assert not [p.name for p in work.iterdir() if p.name.startswith(f"tfreview-apply-{proc.pid}-")]
