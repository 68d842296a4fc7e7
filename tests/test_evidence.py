"""The evidence pack (`tfreview audit export`, docs/audit-evidence.md), checked as an auditor would: its verify.sh
run with a PATH that holds only a shell, ssh-keygen and sha256sum (no tfreview, no Python), on the pack as
exported and on packs with one statement, one signature or one manifest line altered.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import assert_one_line_error
from tests.test_approvals_cli import PLAN_DOC
from tfreview.store.audit import append_event
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore

BOB, CAROL, ALICE = "bob@example.com", "carol@example.com", "alice@example.com"
TODAY = "2000-01-01"  # replaced in the fixture by the day the plans are made


@pytest.fixture(scope="module")
def stock_tools(tmp_path_factory) -> dict[str, str]:
    """An environment whose PATH holds only sh, ssh-keygen and sha256sum (symlinks to the system's)."""
    bin_dir = tmp_path_factory.mktemp("stock-bin")
    for tool in ("sh", "ssh-keygen", "sha256sum"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed by this test"
        (bin_dir / tool).symlink_to(found)
    return {"PATH": str(bin_dir), "LC_ALL": "C"}


def run_verify(pack: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([env["PATH"] + "/sh", "verify.sh"], cwd=pack, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def exported(cli_factory, tmp_path_factory):
    """A store with two plans (one approved by two people and released, one rejected), exported once."""
    cli = cli_factory("evidence")
    tmp = tmp_path_factory.mktemp("evidence-stub")
    helpers.failing_terraform_cli(cli, tmp)
    store = LocalStore(cli.store)
    released = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", ALICE)
    cli.ok("approve", released, "--yes", "-m", "=HYPERLINK(\"http://evil\")", user=BOB)
    rejected = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "prod", ALICE)
    cli.ok("reject", rejected, "--reason", "not <b>now</b>", user=CAROL)
    day = json.loads(store.read(f"plans/{released}/record.json"))["created_at"][:10]
    store.create(f"applies/{released}/start.json", dumps({"kind": "apply-start", "plan_id": released, "app": "shop",
                                                          "env": "qa", "version": "1.1.0", "by": BOB,
                                                          "started_at": f"{day}T10:05:00Z", "break_glass": None}))
    store.create(f"applies/{released}/result.json", dumps({"outcome": "applied", "finished_at": f"{day}T10:06:00Z"}))
    append_event(store, "apply-start", BOB, signer=helpers.signer(BOB), policy_version=1, app="shop", env="qa",
                 version="1.1.0", plan_id=released)
    out = cli.cwd / "pack"
    proc = cli.ok("audit", "export", "--since", day, "--until", day, "--output", str(out))
    return cli, out, proc, released, rejected, day


def test_export_writes_every_part_and_verify_sh_passes_with_stock_tools_only(exported, stock_tools):
    cli, pack, proc, released, rejected, _day = exported
    assert f"evidence pack written to {pack}: 2 plan(s)" in proc.stdout
    for part in ("verify.sh", "MANIFEST.sha256", "README.txt", "index.csv", "index.json", "signatures.tsv",
                 "policy/000001/policy.json", "policy/000001/allowed_signers", "audit/entries.jsonl",
                 "audit/verify.txt", f"statements/{released}/plan.stmt", f"statements/{released}/plan.sig",
                 f"reports/{released}.html", f"reports/{released}.md", f"reports/{released}.json"):
        assert (pack / part).is_file(), part
    assert os.access(pack / "verify.sh", os.X_OK)
    done = run_verify(pack, stock_tools)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("evidence pack verified: ") and done.stderr == ""
    # the signature is what ssh-keygen itself accepts, as the pack says
    stmt = pack / "statements" / released / "plan.stmt"
    check = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(pack / "policy/000001/allowed_signers"), "-I",
                            ALICE, "-n", "tfreview", "-s", str(stmt.with_suffix(".sig"))], stdin=stmt.open("rb"),
                           capture_output=True)
    assert check.returncode == 0


def test_index_lists_every_decision_with_who_when_what_verified(exported):
    _cli, pack, _proc, released, rejected, _day = exported
    rows = list(csv.DictReader((pack / "index.csv").open()))
    mine = [(r["plan"], r["who"], r["what"].split(":")[0], r["verified"]) for r in rows]
    assert (released, ALICE, "plan (deploy)", "yes") in mine and (released, BOB, "approve", "yes") in mine
    assert (rejected, CAROL, "reject", "yes") in mine
    assert any(m[:3] == (released, BOB, "apply") and m[3].startswith("yes (audit entry ") for m in mine), mine
    assert (rejected, ALICE, "plan (deploy)", "yes") in mine
    assert all(r["app"] == "shop" and r["version"] == "1.1.0" and r["when"] for r in rows)
    formula = next(r for r in rows if r["who"] == BOB and r["what"].startswith("approve"))
    assert formula["what"].startswith("approve: =HYPERLINK")  # text after the verb: a spreadsheet shows it as text
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values())
    doc = json.loads((pack / "index.json").read_text())
    assert len(doc["decisions"]) == len(rows)


@pytest.mark.parametrize("alter, expected", [
    ("statement", ["FAIL file statements/{pid}/plan.stmt: FAILED",
                   "FAIL signature statements/{pid}/plan: not a valid signature by alice@example.com"]),
    ("signature", ["FAIL file statements/{pid}/plan.sig: FAILED",
                   "FAIL signature statements/{pid}/plan: not a valid signature by alice@example.com"]),
    ("manifest", ["FAIL file index.csv: FAILED"]),
])
def test_verify_sh_catches_one_altered_statement_signature_or_manifest_line(exported, stock_tools, tmp_path, alter,
                                                                             expected):
    _cli, pack, _proc, released, _rejected, _day = exported
    copy = tmp_path / "pack"
    shutil.copytree(pack, copy)
    if alter == "statement":
        path = copy / "statements" / released / "plan.stmt"
        path.write_bytes(path.read_bytes().replace(b'"env":"qa"', b'"env":"qb"'))
    elif alter == "signature":
        path = copy / "statements" / released / "plan.sig"
        lines = path.read_text().splitlines(keepends=True)
        lines[2] = ("B" if lines[2][10] != "B" else "C").join((lines[2][:10], lines[2][11:]))
        path.write_text("".join(lines))
    else:
        manifest = copy / "MANIFEST.sha256"
        lines = manifest.read_text().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if line.endswith("  index.csv\n"))
        lines[at] = ("0" if lines[at][0] != "0" else "1") + lines[at][1:]
        manifest.write_text("".join(lines))
    done = run_verify(copy, stock_tools)
    assert done.returncode == 1
    failures = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failures) == len(expected), done.stdout
    for line, want in zip(sorted(failures), sorted(expected), strict=True):
        assert line.startswith(want.format(pid=released)), done.stdout
    assert done.stdout.splitlines()[-1].startswith(f"evidence pack NOT verified: {len(expected)} failure(s)")


def rehash(pack: Path, *paths: str) -> None:
    """Rewrite the manifest lines of `paths` for their bytes now (dropping those of files gone), as an exporter who
    tampers with the pack would: only the signatures can tell."""
    import hashlib

    manifest = pack / "MANIFEST.sha256"
    lines = [line for line in manifest.read_text().splitlines(keepends=True) if line[66:-1] not in paths]
    lines += [f"{hashlib.sha256((pack / path).read_bytes()).hexdigest()}  {path}\n" for path in paths
              if (pack / path).exists()]
    manifest.write_text("".join(sorted(lines, key=lambda line: line[66:])))


def test_verify_sh_finds_the_signer_from_where_a_statement_sits_not_from_the_index(exported, stock_tools, tmp_path):
    """verify.sh checks every statement in the pack (not only those signatures.tsv lists), and the field naming its
    signer comes from its place: bob's approval passed off as the plan record (it names alice as the planner: read as
    a plan, it is not alice's signature), a statement somewhere a pack holds none, a statement left out of the index
    without its signature, each fail even with the manifest rewritten to match."""
    _cli, pack, _proc, released, _rejected, _day = exported
    copy = tmp_path / "pack"
    shutil.copytree(pack, copy)
    folder = f"statements/{released}"
    approval = next(p.stem for p in (copy / folder).glob("approve-*.stmt"))
    for ext in ("stmt", "sig"):  # bob's approval in place of alice's plan record
        shutil.copy(copy / folder / f"{approval}.{ext}", copy / folder / f"plan.{ext}")
        shutil.copy(copy / folder / f"{approval}.{ext}", copy / folder / f"extra.{ext}")
    (copy / folder / f"{approval}.sig").unlink()  # and the approval's own signature gone, index line and all
    tsv = copy / "signatures.tsv"
    tsv.write_text("".join(line for line in tsv.read_text().splitlines(keepends=True) if approval not in line))
    rehash(copy, f"{folder}/plan.stmt", f"{folder}/plan.sig", f"{folder}/extra.stmt", f"{folder}/extra.sig",
           f"{folder}/{approval}.sig", "signatures.tsv")
    done = run_verify(copy, stock_tools)
    assert done.returncode == 1, done.stdout
    assert sorted(line for line in done.stdout.splitlines() if line.startswith("FAIL")) == [
        f"FAIL signature {folder}/{approval}: not a valid signature by {BOB} under policy version 1",
        f"FAIL signature {folder}/extra: not a statement an evidence pack holds",
        f"FAIL signature {folder}/plan: not a valid signature by {ALICE} under policy version 1"], done.stdout
    assert done.stdout.splitlines()[-1].startswith("evidence pack NOT verified: 3 failure(s)")


def test_verify_sh_uses_getconf_when_there_and_refuses_a_bad_job_count(exported, stock_tools, tmp_path):
    """`getconf` is optional: with one that names 6 CPUs (a stub in PATH) the pack still verifies, and getconf was
    asked; a VERIFY_JOBS that is not a positive number is one line and exit 2, before any check."""
    _cli, pack, *_ = exported
    bin_dir = tmp_path / "bin"
    shutil.copytree(stock_tools["PATH"], bin_dir, symlinks=True)
    asked = tmp_path / "asked"
    (bin_dir / "getconf").write_text(f"#!{bin_dir}/sh\necho \"$1\" > {asked}\necho 6\n")
    (bin_dir / "getconf").chmod(0o755)
    done = run_verify(pack, {**stock_tools, "PATH": str(bin_dir)})
    assert done.returncode == 0 and done.stdout.startswith("evidence pack verified: "), done.stdout + done.stderr
    assert asked.read_text() == "_NPROCESSORS_ONLN\n"
    for bad in ("lots", "0", "-1"):
        done = run_verify(pack, {**stock_tools, "VERIFY_JOBS": bad})
        assert (done.returncode, done.stdout) == (2, "") and done.stderr == "verify.sh: VERIFY_JOBS must be a positive number\n"


def test_zip_output_verifies_after_unzip(exported, stock_tools, tmp_path):
    cli, _pack, _proc, released, _rejected, day = exported
    target = tmp_path / "evidence.zip"
    cli.ok("audit", "export", "--since", day, "--until", day, "--output", str(target))
    with zipfile.ZipFile(target) as zf:
        zf.extractall(tmp_path / "unzipped")
        assert (zf.getinfo("verify.sh").external_attr >> 16) & 0o111
    done = run_verify(tmp_path / "unzipped", stock_tools)
    assert done.returncode == 0, done.stdout


def test_export_refuses_an_existing_output_and_a_bad_period(exported):
    cli, pack, _proc, _released, _rejected, day = exported
    assert_one_line_error(cli("audit", "export", "--since", day, "--until", day, "--output", str(pack)), 2, "exists")
    assert_one_line_error(cli("audit", "export", "--since", "2026-12-31", "--until", "2026-01-01", "--output",
                              str(cli.cwd / "x")), 2, "is empty")
    assert_one_line_error(cli("audit", "export", "--since", "yesterday", "--until", day, "--output",
                              str(cli.cwd / "x")), 2, "cannot read the time")
    assert not (cli.cwd / "x").exists()


def test_a_period_without_plans_exports_no_plan(exported, stock_tools):
    cli, _pack, _proc, _released, _rejected, _day = exported
    out = cli.cwd / "empty-period"
    proc = cli.ok("audit", "export", "--since", "2001-01-01", "--until", "2001-01-31", "--output", str(out))
    assert ": 0 plan(s)" in proc.stdout and not (out / "statements").exists()
    assert run_verify(out, stock_tools).returncode == 0


def test_export_refuses_a_store_whose_audit_log_does_not_verify_unless_include_failures(cli_factory, tmp_path,
                                                                                         stock_tools):
    cli = helpers.failing_terraform_cli(cli_factory("evidence-broken"), tmp_path)
    store = LocalStore(cli.store)
    pid = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", ALICE)
    day = json.loads(store.read(f"plans/{pid}/record.json"))["created_at"][:10]
    entry = cli.store / "audit" / "entries" / "000000000002.json"
    entry.write_bytes(entry.read_bytes().replace(b'"version":"1.1.0"', b'"version":"9.9.9"'))
    out = cli.cwd / "pack"
    line = assert_one_line_error(cli("audit", "export", "--since", day, "--until", day, "--output", str(out)), 1,
                                 "the audit log does not verify")
    assert "--include-failures" in line and not out.exists()
    assert not [p for p in cli.cwd.iterdir() if p.name.startswith(".tfreview-export-")]  # nothing half-written
    proc = cli("audit", "export", "--since", day, "--until", day, "--output", str(out), "--include-failures")
    assert proc.returncode == 0 and "warning: exported with a failure: audit verify: entry 2" in proc.stderr
    assert "entry 2" in (out / "audit" / "FAILURES.txt").read_text()
    assert run_verify(out, stock_tools).returncode == 0  # what is in it is signed: the failure is reported inside


def test_export_from_s3(mock_s3_store, tmp_path, stock_tools):
    """The same pack from an S3 store (moto in process): records read through the store's parallel reads."""
    from tfreview.usecases.evidence import export
    from tfreview.usecases.decide import decide
    from tfreview.usecases.package import package

    store = mock_s3_store
    helpers.install_test_policy(store)
    package(helpers.context_for(store, ALICE), "shop", "1.1.0", str(Path(__file__).resolve().parent.parent / "terraform"))
    pid = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", ALICE)
    decide(helpers.context_for(store, BOB), pid, "approve", "ok")
    day = json.loads(store.read(f"plans/{pid}/record.json"))["created_at"][:10]
    pack = export(store, day, day, tmp_path / "pack")
    assert pack.plans == 1 and not pack.failures
    assert (tmp_path / "pack" / "statements" / pid / "plan.stmt").is_file()
    done = run_verify(tmp_path / "pack", stock_tools)
    assert done.returncode == 0, done.stdout


def test_export_json_has_the_documented_keys(exported):
    from tests.test_cli_contract import documented, missing_keys

    cli, _pack, _proc, _released, _rejected, day = exported
    proc = cli.ok("audit", "export", "--since", day, "--until", day, "--output", str(cli.cwd / "json-pack"),
                  "--format", "json")
    doc = json.loads(proc.stdout)
    assert not missing_keys(documented("audit export"), doc)
    assert doc["plans"] == 2 and doc["failures"] == [] and doc["policy_versions"] == [1]
