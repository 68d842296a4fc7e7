"""The evidence pack (`tfreview audit export`): every decision of a period, checkable without tfreview.

What a pack guarantees (docs/audit-evidence.md):
- Every signed statement of the period (plan records, approvals and rejections, the admin signatures of the policy
  versions, the seals of the audit segments holding the period's entries and the unsealed entries themselves) is a
  `NAME.stmt` file holding exactly the bytes that were signed, beside `NAME.sig`, its armoured SSHSIG signature:
  `ssh-keygen -Y verify -f policy/<version>/allowed_signers -I PRINCIPAL -n tfreview -s NAME.sig < NAME.stmt`.
  The principal and the policy version are read from the signed bytes themselves (the field holding the principal
  follows from where the statement sits: `verify.sh` lists the statements itself; `signatures.tsv` lists them for
  people), so a pack cannot point a statement at another key.
- `policy/<version>/` holds each policy version as stored, its `allowed_signers` and its admins' signatures.
- `audit/entries.jsonl` holds the audit entries of the period as stored; `audit/seals/<first>.entries` the bytes a
  seal names (its `entries_sha256`); `audit/verify.txt` what `tfreview audit verify` said at export.
- `reports/` the release reports (HTML, Markdown, JSON) of the releases of the period; `index.csv`/`index.json`
  one row per decision: plan, app, env, version, who, when, what, verified (checked by tfreview at export).
- `MANIFEST.sha256` the sha256 of every other file (sha256sum's format), and `verify.sh`, a POSIX script that
  needs only ssh-keygen and sha256sum (or shasum): it checks every signature and every file, prints one line per
  failure and a summary, and exits 0 only when all hold.
A pack is refused (exit 1) from a store whose audit log does not verify, unless `include_failures`: then the
failures are written into `audit/FAILURES.txt` and the index.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from tfreview.errors import BadInput, TfreviewError
from tfreview.store.base import Store, canonical, parse_json, read_many
from tfreview.usecases.evidence_files import README, VERIFY_SH

INDEX_FIELDS = ("plan", "app", "env", "version", "who", "when", "what", "verified")
REPORT_FORMATS = (("html", "html"), ("markdown", "md"), ("json", "json"))


@dataclass
class Pack:
    """What an export wrote: counts for the summary line, and the failures it carries (with include_failures)."""

    plans: int = 0
    statements: int = 0
    entries: int = 0
    reports: int = 0
    policy_versions: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _slug(who: str) -> str:
    return hashlib.sha256(who.strip().lower().encode()).hexdigest()[:16]


def _write_file(target: Path, data: bytes, mode: int) -> None:
    target.write_bytes(data)
    if mode != 0o644:
        target.chmod(mode)


class _Writer:
    """Files under a root directory, each hashed for the manifest as it is written."""

    def __init__(self, root: Path, pool: ThreadPoolExecutor) -> None:
        self.root = root
        self.hashes: dict[str, str] = {}
        self.signed: list[tuple[str, str]] = []  # (path without .stmt/.sig, field naming the principal)
        self._dirs: set[Path] = set()
        self._pool = pool  # files are written in parallel (the writes wait on the disk, not on the interpreter)
        self._pending: list[Any] = []

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = self.root / path
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        self._pending.append(self._pool.submit(_write_file, target, data, mode))
        self.hashes[path] = hashlib.sha256(data).hexdigest()

    def finish(self) -> None:
        """Wait for every write; the first error (a full disk) is raised."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def statement(self, path: str, statement: Mapping[str, Any], signature: Any, principal_field: str) -> None:
        self.put(f"{path}.stmt", canonical(statement))
        self.put(f"{path}.sig", str(signature or "").encode() + (b"" if str(signature or "").endswith("\n") else b"\n"))
        self.signed.append((path, principal_field))


def _check_output(output: Path) -> bool:
    """True for a .zip file; BadInput (exit 2) when the output exists (a pack is never merged into old files)."""
    is_zip = output.suffix.lower() == ".zip"
    if output.exists() and (is_zip or not output.is_dir() or any(output.iterdir())):
        raise BadInput(f"{output} exists", "export into a new directory or .zip file")
    if not output.parent.is_dir():
        raise BadInput(f"{output.parent} is not a directory", "create it first, or choose another --output")
    return is_zip


def audit_failures(store: Store) -> tuple[list[dict[str, Any]], list[str], Any]:
    """(entries, failures, verify result) of `tfreview audit verify` on `store` (failures empty: it verifies)."""
    from dataclasses import replace

    from tfreview.store.audit import read_log
    from tfreview.trust.verify import load_history_or_none, verify_log

    entries, result = read_log(store)
    if result.ok:
        seq, why = verify_log(store, entries, result.seals, history=load_history_or_none(store))
        if why:
            result = replace(result, ok=False, first_bad_seq=seq, reason=why)
    if result.ok:
        return entries, [], result
    where = f"entry {result.first_bad_seq}: " if result.first_bad_seq else ""
    return entries, [f"audit verify: {where}{result.reason}"], result


def export(store: Store, since: str, until: str, output: Path, *, include_failures: bool = False,
           workers: int = 8) -> Pack:
    """Write the evidence pack of plans created from `since` to `until` (dates inclusive) to `output`, a new
    directory or a .zip file; TfreviewError (exit 1) when the audit log does not verify (unless
    `include_failures`), written nothing then."""
    from tfreview.usecases.records import time_bound

    lo, hi = time_bound(since), time_bound(until, end=True)
    if lo is None or hi is None or lo > hi:
        raise BadInput(f"the period {since!r} to {until!r} is empty", "pass --since DATE --until DATE, since first")
    is_zip = _check_output(output)
    entries, failures, result = audit_failures(store)
    if failures and not include_failures:
        raise TfreviewError(f"the audit log does not verify ({failures[0].removeprefix('audit verify: ')}): no evidence "
                            "pack written", "investigate with tfreview audit verify, or export the failures with "
                            "the pack: --include-failures")
    work = Path(tempfile.mkdtemp(prefix=".tfreview-export-", dir=output.parent))
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pack-write") as pool:
            writer = _Writer(work / "pack", pool)
            try:
                pack = _write(store, lo, hi, entries, result, failures, writer, workers)
            finally:
                writer.finish()
        if is_zip:
            _zip(work / "pack", work / "pack.zip")
            os.replace(work / "pack.zip", output)
        else:
            if output.exists():
                output.rmdir()
            os.replace(work / "pack", output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return pack


def _zip(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(folder)), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if path.name == "verify.sh" else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())


def _write(store: Store, lo: Any, hi: Any, entries: list[dict[str, Any]], result: Any, failures: list[str],
           w: _Writer, workers: int) -> Pack:
    from tfreview.usecases.history import query
    from tfreview.store.audit import SEGMENT_SIZE, entry_statement, entry_time, segment_first
    from tfreview.trust.policy import load_history
    from tfreview.trust.verify import _entry_refusal, _signed_by, statement_of
    from tfreview.text import iso

    history = load_history(store)
    pack = Pack(failures=list(failures))
    # The plans of the period, through the history index (one file, not one read per plan).
    plan_ids = sorted(r["id"] for r in query(store, since=iso(lo), until=iso(hi)).rows if r.get("app") != "?")
    pack.plans = len(plan_ids)
    wanted = set(plan_ids)
    decision_keys = [k for k in store.list("approvals/") if k.split("/")[1] in wanted]
    apply_keys = [f"applies/{p}/{n}.json" for p in plan_ids for n in ("start", "result")]
    record_keys = [f"plans/{p}/record.json" for p in plan_ids]
    keys = record_keys + decision_keys + apply_keys
    blobs = dict(zip(keys, read_many(store, keys), strict=True))  # parallel reads (S3: a pool of round trips)

    def doc_of(key: str) -> dict[str, Any] | None:
        raw = blobs.get(key)
        if raw is None:
            return None
        try:
            doc = parse_json(key, raw)
        except TfreviewError as exc:
            pack.failures.append(exc.message)
            return None
        return doc if isinstance(doc, dict) else None

    def verified(doc: Mapping[str, Any], actor: str) -> str:
        why = _signed_by(doc, statement_of(doc), actor, history)
        return "yes" if why is None else f"NO: {why}"

    by_event: dict[tuple[Any, Any], dict[str, Any]] = {}
    for e in entries:
        if e.get("plan_id") in wanted:
            by_event.setdefault((e.get("plan_id"), e.get("event")), e)

    def logged(pid: str, event: str, who: Any) -> str:
        """Whether the audit log holds `event` of `pid` by `who`, signed by them (the entry's own signature)."""
        entry = by_event.get((pid, event))
        if entry is None:
            return f"NO: no {event} entry in the audit log"
        if entry.get("actor") != who:
            return f"NO: the audit log says {entry.get('actor')}"
        why = _entry_refusal(entry, history)
        return f"yes (audit entry {entry.get('seq')})" if why is None else f"NO: {why}"

    rows: list[dict[str, Any]] = []
    by_plan: dict[str, list[str]] = {}
    for key in decision_keys:
        by_plan.setdefault(key.split("/")[1], []).append(key)
    releases = []
    for pid in plan_ids:
        record = doc_of(f"plans/{pid}/record.json")
        if record is None:
            pack.failures.append(f"plan {pid}: its record is missing or damaged")
            continue
        base = {"plan": pid, "app": record.get("app"), "env": record.get("env"), "version": record.get("version")}
        planner = str(record.get("planner"))
        w.statement(f"statements/{pid}/plan", statement_of(record), record.get("signature"), "planner")
        rows.append({**base, "who": planner, "when": record.get("created_at"),
                     "what": f"plan ({record.get('plan_kind') or 'deploy'})", "verified": verified(record, planner)})
        for key in sorted(by_plan.get(pid, [])):
            doc = doc_of(key)
            if doc is None:
                continue
            who = str(doc.get("approver"))
            kind = str(doc.get("kind"))
            w.statement(f"statements/{pid}/{kind}-{_slug(who)}", statement_of(doc), doc.get("signature"), "approver")
            comment = f": {doc.get('comment')}" if doc.get("comment") else ""
            rows.append({**base, "who": who, "when": doc.get("approved_at"), "what": f"{kind}{comment}",
                         "verified": verified(doc, who)})
        start, res = doc_of(f"applies/{pid}/start.json"), doc_of(f"applies/{pid}/result.json")
        if start is not None:
            glass = f" (BREAK-GLASS: {start.get('break_glass')})" if start.get("break_glass") else ""
            rows.append({**base, "who": start.get("by"), "when": start.get("started_at"),
                         "what": f"apply{glass}: {(res or {}).get('outcome', 'no outcome')}",
                         "verified": logged(pid, "apply-start", start.get("by"))})
            rollout = (res or {}).get("rollout")
            if isinstance(rollout, dict) and rollout.get("kind") == "deploy-to-idle":
                rows.append({**base, "who": start.get("by"), "when": (res or {}).get("finished_at"),
                             "what": f"release: {'live colour ' + str(rollout.get('live_color')) if rollout.get('live_color') else 'watched'}",
                             "verified": logged(pid, "rollout", start.get("by"))})
            if record.get("plan_kind") == "deploy":
                releases.append(pid)
    pack.statements = len(w.signed)

    # Audit entries of the period, and the seals (or the entries' own signatures) that anchor them.
    in_period = [e for e in entries if (t := entry_time(e)) is not None and lo <= t <= hi]
    pack.entries = len(in_period)
    w.put("audit/entries.jsonl", b"".join(canonical(e) + b"\n" for e in in_period))
    seals = {s["first"]: s for s in getattr(result, "seals", ()) or ()}
    firsts = sorted({segment_first(e["seq"]) for e in in_period})
    by_seq = {e["seq"]: e for e in entries}
    for first in firsts:
        seal = seals.get(first)
        if seal is not None:
            body = b"".join(canonical(by_seq[s]) + b"\n" for s in range(first, first + SEGMENT_SIZE) if s in by_seq)
            if hashlib.sha256(body).hexdigest() != seal.get("entries_sha256"):
                body = _segment_body(store, first)
            w.statement(f"audit/seals/{first:012d}", statement_of(seal), seal.get("signature"), "sealer")
            w.put(f"audit/seals/{first:012d}.entries", body)
        else:
            for e in in_period:
                if segment_first(e["seq"]) == first:
                    w.statement(f"audit/entries/{e['seq']:012d}", entry_statement(e), e.get("signature"), "actor")
    w.put("audit/verify.txt", (f"tfreview audit verify at export: {'FAILED' if failures else 'intact'}: "
                               f"{result.count} entries" + "".join(f"\n{f}" for f in failures) + "\n").encode())
    pack.statements = len(w.signed)

    # Policy versions: every stored version up to the active one (what any statement of the period can name).
    from tfreview.trust.policy import PREFIX, version_key

    policy_keys = store.list(PREFIX)
    for n in sorted(v for v in history.versions if v <= history.active.version):
        pv = history.versions[n]
        w.put(f"policy/{n:06d}/policy.json", store.read(version_key(n)))
        w.put(f"policy/{n:06d}/allowed_signers", pv.document.allowed_signers().encode())
        for key in sorted(k for k in policy_keys if k.startswith(f"{PREFIX}{n:06d}/signatures/")):
            doc = parse_json(key, store.read(key))
            statement = {k: v for k, v in doc.items() if k != "signature"}
            w.statement(f"policy/{n:06d}/signatures/{Path(key).stem}", statement, doc.get("signature"), "signer")
        pack.policy_versions.append(n)
    pack.statements = len(w.signed)

    # Release reports, rendered in parallel (each reads its own records).
    from tfreview.usecases.report import render_report

    def render(pid: str) -> list[tuple[str, bytes]]:
        try:
            return [(f"reports/{pid}.{ext}", render_report(store, pid, fmt).encode()) for fmt, ext in REPORT_FORMATS]
        except TfreviewError as exc:
            return [(f"reports/{pid}.error.txt", f"{exc.one_line()}\n".encode())]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for files in pool.map(render, releases):
            for path, data in files:
                w.put(path, data)
    pack.reports = len(releases)

    if pack.failures:
        w.put("audit/FAILURES.txt", "".join(f"{f}\n" for f in pack.failures).encode())
    w.put("index.json", (json.dumps({"period": {"since": iso(lo), "until": iso(hi)}, "decisions": rows},
                                    indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode())
    w.put("index.csv", _csv(rows))
    w.put("signatures.tsv", "".join(f"{p}\t{f}\n" for p, f in w.signed).encode())
    w.put("README.txt", README.encode())
    w.put("verify.sh", VERIFY_SH.encode(), 0o755)
    w.finish()
    manifest = "".join(f"{h}  {p}\n" for p, h in sorted(w.hashes.items()))
    (w.root / "MANIFEST.sha256").write_text(manifest)
    return pack


def _segment_body(store: Store, first: int) -> bytes:
    from tfreview.store.audit import segment_key

    return store.read(segment_key(first)).partition(b"\n")[2]


def _csv(rows: Iterable[Mapping[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=INDEX_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # A cell starting with = + - @ is a formula to a spreadsheet: a leading ' keeps it text.
        writer.writerow({k: ("'" + str(v) if str(v)[:1] in ("=", "+", "-", "@") else v)
                         for k, v in row.items() if k in INDEX_FIELDS})
    return out.getvalue().encode()
