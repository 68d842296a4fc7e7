"""The use cases: package, plan, approve, reject, apply. Orchestration only.

Decisions live in the pure core (tfreview.plan, tfreview.review); I/O in terraform.py and store/. Every record
that matters is an immutable JSON document with a stable id, and each use case appends to the audit log.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from tfreview import packaging
from tfreview.config import Settings, current_user
from tfreview.errors import BadInput, Conflict, Interrupted, NotFound, PolicyRefusal, StoreError, TfreviewError
from tfreview.store import Store, get_json, open_store
from tfreview.store.base import dumps, get_jsons, parse_json, update_json
from tfreview.terraform import Event, Terraform, make_workdir

OnEvent = Callable[[Event], None]

_APP = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")
_ENV = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_PLAN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
RELEASE_VARS_FILE = "tfreview.auto.tfvars.json"
BACKEND_OVERRIDE_FILE = "tfreview_backend_override.tf"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_name(kind: str, value: str) -> str:
    """`value` if it is a valid `kind` (app, version, env, plan id: the whole string, end to end; person: any
    identity without control characters, not blank), else BadInput naming it."""
    if kind == "person":
        return check_person(value, "person")
    pattern = {"app": _APP, "version": _VERSION, "env": _ENV, "plan id": _PLAN_ID}[kind]
    if not pattern.fullmatch(value or ""):  # not match(): `$` would accept a trailing newline
        hints = {
            "app": "use lowercase letters, digits and dashes (at most 21 characters), e.g. --app webapp",
            "version": "use a tag like 1.2.3 (letters, digits, '.', '_', '+', '-')",
            "env": "use a lowercase name like sandbox, qa or prod",
            "plan id": "copy the id printed by `tfreview plan` or listed by `tfreview history`",
        }
        raise BadInput(f"invalid {kind} {value!r}", hints[kind])
    return value


def check_person(value: str, what: str) -> str:
    """An identity (who acts, who is searched for): not blank, at most 256 characters, no control or format
    characters (they would be recorded and shown to others). `what` names its source in the error."""
    from tfreview.text import UNSAFE

    if not value.strip() or len(value) > 256 or UNSAFE.search(value):
        raise BadInput(f"invalid {what} {value!r}",
                       "an identity is a name or e-mail address on one line, without control characters")
    return value


def check_names(**names: str | None) -> None:
    """check_name for each given filter (keyword = kind with '_' for ' ': app, env, version, plan_id, person)."""
    for kind, value in names.items():
        if value is not None:
            check_name(kind.replace("_", " "), value)


@dataclass
class Context:
    """What every use case needs: settings, the store, who is acting, and a progress callback.

    signer/policy: the signing key and the store's verified policy history (tfreview.trust); `user` is then the
    principal the active policy gives the signing key. Read-only commands make a Context with sign=False."""

    settings: Settings
    store: Store
    user: str
    on_event: OnEvent | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    signer: Any = None
    policy: Any = None
    notifier: Any = None  # tfreview.notify.Notifier: sees every audit entry this command appends

    @classmethod
    def create(cls, settings: Settings, on_event: OnEvent | None = None, *, sign: bool = True) -> "Context":
        store = open_store(settings.store)
        identity: dict[str, Any] = {}
        if settings.store.startswith("s3://"):
            from tfreview.aws import caller_identity  # S3 mode records the AWS principal beside the user

            identity["aws_arn"] = caller_identity()
        if not sign:
            user = current_user()
            return cls(settings, store, user, on_event, {"user": user, **identity})
        from tfreview.trust.policy import load_history
        from tfreview.trust.signer import find_signer
        from tfreview.trust.verify import identify

        signer = find_signer()
        history = load_history(store, pin=settings.policy_root)
        user = identify(signer, history, aws_arn=identity.get("aws_arn"))
        if history.unrecorded:  # an activation record a crash lost, found in the log: put it back
            from tfreview.trust.root import repair

            repair(store, history)
        return cls(settings, store, user, on_event, {"user": user, **identity}, signer, history)

    @property
    def policy_version(self) -> int | None:
        return self.policy.active.version if self.policy is not None else None

    def sign(self, statement: dict[str, Any]) -> dict[str, Any]:
        """`statement`, naming the active policy version, signed by the acting principal."""
        from tfreview.trust.verify import sign

        return sign(self.signer, {**statement, "policy_version": self.policy_version})

    def audit(self, event: str, **fields: Any) -> dict[str, Any]:
        from tfreview.store.audit import SEGMENT_SIZE, append_event

        # S3 mode: the AWS principal beside the person (None, and so left out, elsewhere).
        entry = append_event(self.store, event, self.user, signer=self.signer, policy_version=self.policy_version,
                             aws_arn=self.identity.get("aws_arn"), **fields)
        if self.signer is not None and entry["seq"] % SEGMENT_SIZE == 0:
            # The writer who completes a segment of the log seals it, so that `audit verify` checks one signature
            # for its 1,000 entries. Sealing only makes verifying faster: if it fails (a damaged entry, a lost
            # race), the command still succeeded and `audit verify` names what is wrong.
            from tfreview.trust.verify import seal_log

            try:
                seal_log(self, [entry["seq"] - SEGMENT_SIZE + 1])
            except TfreviewError:
                pass
        if self.notifier is not None:
            self.notifier.saw(entry)
        return entry


# -- package -------------------------------------------------------------------------------------------------
def _git_commit(source: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def package(ctx: Context, app: str, version: str, source: str | None = None) -> dict[str, Any]:
    """Build terraform.zip for app/version and store it with its manifest. Same content again is a no-op;
    different content for an existing version is refused (Conflict)."""
    check_name("app", app)
    check_name("version", version)
    src = Path(source or ctx.settings.source_dir)
    pkg = packaging.build_package(src)
    zip_key, manifest_key = packaging.package_keys(app, version)
    if ctx.store.exists(manifest_key):
        return _packaged_already(ctx.store, app, version, manifest_key, pkg)
    manifest = packaging.manifest(pkg, app, version, iso(now_utc()), ctx.user, _git_commit(src))
    claim = _claim_package(ctx, app, version, manifest_key)
    if claim is None:  # a concurrent run of the same version finished it while we waited
        return _packaged_already(ctx.store, app, version, manifest_key, pkg)
    try:
        if ctx.store.exists(manifest_key):  # finished by another run between our first look and our claim
            return _packaged_already(ctx.store, app, version, manifest_key, pkg)
        created_zip = False
        try:
            ctx.store.create(zip_key, pkg.zip_bytes)
            created_zip = True
        except Conflict:
            # A crashed earlier run left the zip but no manifest: accept it only if it is the same bytes.
            if hashlib.sha256(ctx.store.read(zip_key)).hexdigest() != pkg.sha256:
                raise
        # The audit entry first: a package counts once its manifest exists, and it never exists unrecorded. Only
        # the holder of the claim logs it: one package, one `package` entry, however many runs race.
        try:
            ctx.audit("package", app=app, version=version, details={"sha256": pkg.sha256, "files": len(pkg.files)})
        except BaseException:
            if created_zip:  # refused (the log cannot take it) or interrupted: leave nothing behind
                _delete_quietly(ctx.store, zip_key)
            raise
        ctx.store.create(manifest_key, dumps(manifest))
    finally:
        _delete_quietly(ctx.store, claim[0], claim[1])
    return {**manifest, "status": "created"}


def _packaged_already(store: Store, app: str, version: str, manifest_key: str, pkg: Any) -> dict[str, Any]:
    """Same content again: a no-op ("unchanged"); other content for a packaged version: Conflict."""
    existing = get_json(store, manifest_key)
    if existing.get("sha256") == pkg.sha256:
        return {**existing, "status": "unchanged"}
    changed = sorted(set((existing.get("files") or {}).items()) ^ set(pkg.files.items()))
    names = sorted({name for name, _ in changed})
    raise Conflict(f"{app} {version} is already packaged with different content ({len(names)} files differ, "
                   f"e.g. {names[0] if names else '?'})", "package a new version instead of changing a released one")


CLAIM_WAIT_S = 60.0  # how long a run waits for a concurrent packager of the same version
CLAIM_STALE_S = 600.0  # a claim this old is an abandoned run's, whoever made it


def _claim_package(ctx: Context, app: str, version: str, manifest_key: str) -> tuple[str, str] | None:
    """Take the create-only claim of packaging app/version: (key, etag); None when a concurrent run finished the
    package meanwhile. A claim whose run is gone (same host, dead pid) or older than CLAIM_STALE_S is taken over;
    PolicyRefusal when a live run keeps it longer than CLAIM_WAIT_S."""
    import os
    import socket
    import time

    from tfreview.store.locks import pid_alive

    key = manifest_key.replace("/manifest.json", "/claim.json")
    doc = {"by": ctx.user, "pid": os.getpid(), "host": socket.gethostname(), "at": iso(now_utc())}
    deadline = time.monotonic() + CLAIM_WAIT_S
    while True:
        try:
            return key, ctx.store.create(key, dumps(doc))
        except Conflict:
            pass
        if ctx.store.exists(manifest_key):
            return None
        try:
            raw, etag = ctx.store.read_versioned(key)
        except NotFound:
            continue  # released between our create and our read
        try:
            held = parse_json(key, raw)
        except StoreError:
            held = {}  # damaged (a run killed mid-write cannot leave one: writes are atomic): stale
        held = held if isinstance(held, dict) else {}
        pid, host = held.get("pid"), held.get("host")
        try:
            age = (now_utc() - _parse_time(str(held.get("at")))).total_seconds()
        except ValueError:
            age = CLAIM_STALE_S  # unreadable: an abandoned or damaged claim
        gone = host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)
        if gone or age >= CLAIM_STALE_S:
            try:
                ctx.store.delete(key, etag)
            except Conflict:
                pass
            continue
        if time.monotonic() > deadline:
            raise PolicyRefusal(f"{app} {version} is being packaged by {held.get('by')} (pid {pid} on {host}, since "
                                f"{held.get('at')})", "wait for that run, then run the command again")
        time.sleep(0.1)


def _parse_time(value: str) -> datetime:
    from tfreview.review.policy import parse_time

    return parse_time(value)


def _delete_quietly(store: Store, key: str, etag: str | None = None) -> None:
    try:
        store.delete(key, etag)
    except (StoreError, Conflict):
        pass


def fetch_package(store: Store, app: str, version: str) -> tuple[bytes, dict]:
    """The package zip and manifest of app/version, verified against the manifest."""
    zip_key, manifest_key = packaging.package_keys(app, version)
    try:
        manifest = get_json(store, manifest_key)
    except NotFound:
        raise NotFound(f"no package for {app} {version}",
                       f"run: tfreview package --app {app} --version {version}") from None
    data = store.read(zip_key)
    sha = hashlib.sha256(data).hexdigest()
    if sha != manifest["sha256"]:
        raise PolicyRefusal(f"package {app} {version} does not match its manifest (sha256 {sha[:12]} != "
                            f"{manifest['sha256'][:12]})", "the store was modified: re-package under a new version")
    return data, manifest


# -- terraform working directories ----------------------------------------------------------------------------
def state_key(app: str, env: str) -> str:
    return f"state/{app}/{env}/terraform.tfstate"


def backend_config(ctx: Context, app: str, env: str) -> tuple[str, dict[str, str]]:
    """(type, -backend-config values) of the environment's state: a local file in the store (default for a local
    store), or the S3 backend (an S3 store's default, or `[backend.<env>] type = "s3"`)."""
    backend = ctx.settings.backend_for(env)
    if backend.get("type", "local") == "s3":
        from tfreview.store.backend import s3_backend_config  # team mode

        return "s3", s3_backend_config(ctx.settings, ctx.store, backend, app, env)
    local_path = getattr(ctx.store, "path", None)
    if local_path is None:
        raise BadInput(f"environment {env} keeps local state, which needs a local store",
                       f"remove type = \"local\" from [backend.{env}] in tfreview.toml: an S3 store keeps state in S3")
    return "local", {"path": str(local_path(state_key(app, env)))}


def state_location(backend_type: str, config: dict[str, str]) -> dict[str, str]:
    """Where the state lives, as recorded in a plan and compared by apply (no credentials or options)."""
    if backend_type == "s3":
        return {"type": "s3", "bucket": config["bucket"], "key": config["key"]}
    return {"type": "local", "path": config["path"]}


def refuse_other_backend(record: dict[str, Any], here: dict[str, str]) -> None:
    """A saved plan pins the backend of plan time: applying it from another (copied, moved) store would write the
    state there. Refuse unless the plan's state location is this store's."""
    planned = record.get("state_location")
    if planned != here:
        where = (planned or {}).get("path") or "/".join(filter(None, [(planned or {}).get("bucket"),
                                                                    (planned or {}).get("key")])) or "unknown"
        raise PolicyRefusal(f"plan {record['id']} keeps its state elsewhere ({where}), not in this store",
                            f"apply it with the store it was made in, or make a new plan here: tfreview plan "
                            f"--app {record['app']} --version {record['version']} --env {record['env']}")


@dataclass
class Workspace:
    """A fresh, private unpack of one package, initialised for one environment."""

    root: Path
    env_dir: Path
    tf: Terraform
    state_location: dict[str, str]  # where this workspace's terraform keeps state (see state_location())

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def open_workspace(ctx: Context, app: str, env: str, zip_bytes: bytes, purpose: str) -> Workspace:
    root = make_workdir(ctx.settings, purpose)
    try:
        packaging.unpack(zip_bytes, root)
        env_dir = root / "envs" / env
        if not env_dir.is_dir():
            envs = sorted(p.name for p in (root / "envs").iterdir()) if (root / "envs").is_dir() else []
            raise BadInput(f"environment {env!r} is not in the package",
                           f"use one of: {', '.join(envs) or '(none: the package has no envs/ directory)'}")
        tf = Terraform(ctx.settings, env_dir)
        backend_type, config = backend_config(ctx, app, env)
        if backend_type == "s3":  # an override file: the package stays untouched
            (env_dir / BACKEND_OVERRIDE_FILE).write_text('terraform {\n  backend "s3" {}\n}\n')
        else:
            Path(config["path"]).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tf.init(config, on_event=ctx.on_event)
        return Workspace(root, env_dir, tf, state_location(backend_type, config))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def state_identity(tf: Terraform) -> tuple[str, int, dict[str, Any]]:
    """(lineage, serial, root outputs {name: value}) of the environment's current state; ("", 0, {}) when there
    is none yet. Outputs hold sensitive values too: never print them."""
    state = tf.state_pull()
    if not state:
        return "", 0, {}
    outputs = {k: v.get("value") for k, v in (state.get("outputs") or {}).items()}
    return str(state.get("lineage", "")), int(state.get("serial", 0)), outputs


# -- release variables ------------------------------------------------------------------------------------------
def env_default_strategy(env_dir: Path) -> str:
    """The `strategy` variable's default in the environment's root module (read with python-hcl2)."""
    import hcl2  # lazy: hcl2 pulls in lark

    for tf_file in sorted(env_dir.glob("*.tf")):
        try:
            with tf_file.open() as fh:
                doc = hcl2.load(fh)
        except Exception as exc:  # hcl2 raises lark errors of many kinds
            raise BadInput(f"cannot parse {tf_file.name}: {str(exc).splitlines()[0][:200]}",
                           "run terraform validate on the package") from None
        for block in doc.get("variable", []):
            for name, body in block.items():  # python-hcl2 >= 5 keeps the quotes of labels and strings
                if name.strip('"') == "strategy" and isinstance(body, dict):
                    return str(body.get("default") or "blue_green").strip('"')
    return "blue_green"


def deploy_vars(app: str, version: str, outputs: dict[str, Any], default_strategy: str, roles: Any = None) -> dict[str, Any]:
    """Release variables (named by the app's `Roles`) that put `version` on the idle colour (blue/green) or the
    one service (rolling: the module's strategy, or a single-service stack).

    First release (no outputs yet): both colours run `version`, the first colour is live with 100 % of the traffic.
    """
    from tfreview.plan.roles import DEFAULT_ROLES
    from tfreview.rollout.traffic import TrafficState, next_release_vars, release_vars

    roles = roles or DEFAULT_ROLES
    strategy = outputs.get("strategy") or ("rolling" if roles.single_service else default_strategy)
    if strategy == "rolling":
        return {"app": app, "strategy": "rolling", roles.rolling_version_variable: roles.version_value(version)}
    if not outputs.get("versions"):
        first, second = roles.colours
        return release_vars(TrafficState(strategy, first, {first: version, second: version}, {first: 100, second: 0},
                                         app, roles))
    return {**next_release_vars({**outputs, "app": app}, version, roles), "app": app}


def write_release_vars(ctx: Context, ws: Workspace, app: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Write the release variables (with the app's image repository) where terraform reads them; returns them."""
    image_repo = ctx.settings.app_setting(app, "image_repository")
    if image_repo:
        variables = {**variables, "image_repository": image_repo}
    (ws.env_dir / RELEASE_VARS_FILE).write_text(json.dumps(variables, indent=2, sort_keys=True))
    return variables


# -- plan ------------------------------------------------------------------------------------------------------
def new_plan_id(app: str, env: str, at: datetime) -> str:
    return f"{app}-{env}-{at.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def plan_keys(plan_id: str) -> dict[str, str]:
    """Store keys of a plan. The binary keeps secrets in clear: it lives under `private/`, which the documented
    reviewer and auditor policies cannot read (docs/s3-store.md); the JSON reviewers read is redacted."""
    base = f"plans/{check_name('plan id', plan_id)}"
    return {"record": f"{base}/record.json", "binary": f"private/{base}/plan.tfplan", "json": f"{base}/plan.json"}


@dataclass
class Planned:
    """A stored plan: its record, the plan binary and the review built from its JSON (parsed once)."""

    record: dict[str, Any]
    binary: bytes
    review: Any


def plan(ctx: Context, app: str, version: str, env: str, *, kind: str = "deploy",
         release_vars: dict[str, Any] | None = None, release_id: str | None = None, options: Any = None) -> Planned:
    """Fetch and verify the package, init, `plan -out`, `show -json`, and store the plan record.

    `kind` is "deploy" (the version goes to the idle colour), or "shift"/"rollback" with explicit
    `release_vars` (weight-only plans made by a release). `options`: the planner's `TerraformOptions`."""
    for k, v in (("app", app), ("version", version), ("env", env)):
        check_name(k, v)
    zip_bytes, manifest = fetch_package(ctx.store, app, version)
    ws = open_workspace(ctx, app, env, zip_bytes, "plan")
    try:
        return plan_in_workspace(ctx, ws, app, version, env, manifest["sha256"], kind=kind,
                                 release_vars=release_vars, release_id=release_id, options=options)
    finally:
        ws.close()


def plan_in_workspace(ctx: Context, ws: Workspace, app: str, version: str, env: str, package_sha256: str, *,
                      kind: str = "deploy", release_vars: dict[str, Any] | None = None,
                      release_id: str | None = None, options: Any = None) -> Planned:
    """`plan` in an open, initialised workspace of the package (a release plans its traffic steps in the
    workspace it applied in): plan, show, review, store the record."""
    from tfreview.plan.options import TerraformOptions, option_risks, record_options

    options = options or TerraformOptions()
    var_files = read_var_files(options.var_files)
    roles = ctx.settings.roles_for(app)
    lineage, serial, outputs = state_identity(ws.tf)
    variables = release_vars or deploy_vars(app, version, outputs, env_default_strategy(ws.env_dir), roles)
    variables = write_release_vars(ctx, ws, app, variables)
    ws.tf.plan("tfreview.tfplan", on_event=ctx.on_event, options=options)
    binary = (ws.env_dir / "tfreview.tfplan").read_bytes()
    from dataclasses import replace

    from tfreview.plan import review_plan
    from tfreview.plan.redact import REDACTION_VERSION, redact_plan

    # Reviewers read, and the record binds, the redacted JSON: no secret leaves the binary (plan/redact.py).
    raw_json = ws.tf.show_json("tfreview.tfplan")
    plan_json = redact_plan(raw_json)

    review = review_plan(plan_json, roles=roles)
    # A --var whose value the redaction replaced (sensitive, or equal to a secret) is recorded and shown masked.
    recorded = record_options(options, redacted_variables(plan_json, options), var_files) if options else None
    review = replace(review, terraform_options=recorded)
    created = now_utc()
    plan_id = new_plan_id(app, env, created)
    keys = plan_keys(plan_id)
    summary = review_summary(review)
    from tfreview.review.policy import escalation_reasons

    # Risks that call for more approvers (destroy, replace, changed IAM/security groups), per the policy.
    escalation = [*escalation_reasons({"address": r.address, "type": r.type, "action": r.action, "mode": r.mode,
                                       "deposed": r.deposed} for r in review.resources), *option_risks(recorded)]
    record = {
        "kind": "plan",
        "id": plan_id,
        "plan_kind": kind,
        "release_id": release_id,
        "app": app,
        "env": env,
        "version": version,
        "plan_sha256": hashlib.sha256(binary).hexdigest(),
        "json_sha256": hashlib.sha256(plan_json).hexdigest(),
        "json_redaction": REDACTION_VERSION,
        "package_sha256": package_sha256,
        "state_lineage": lineage,
        "state_serial": serial,
        "state_location": ws.state_location,
        "prior_outputs": public_outputs(outputs),
        "release_vars": variables,
        "roles": roles.to_json(),
        "terraform_options": recorded,
        "terraform_version": review.terraform_version or "unknown",
        "planner": ctx.user,
        "identity": ctx.identity,
        "created_at": iso(created),
        "summary": summary,
        "risky": bool(escalation),
        "risk_reasons": [*summary["risk_reasons"], *option_risks(recorded)],
        "escalation_reasons": list(escalation),
    }
    from tfreview.trust.checks import plan_checks

    # The policy's Rego checks judge the truth (the unredacted JSON); only their messages are scrubbed.
    checks = plan_checks(ctx.policy, env, raw_json, record)
    if checks is not None:
        record["policy_checks"] = checks
    if ctx.signer is not None:  # the planner signs the plan record (plan, JSON and package sha256, state, ...)
        record = ctx.sign(record)
    # The binary holds secrets in clear: a private object (owner-only file; on S3 under private/).
    ctx.store.create(keys["binary"], binary, private=True)
    ctx.store.create(keys["json"], plan_json)
    # The audit entry before the record: a plan exists once its record does, and never unrecorded.
    ctx.audit("plan", app=app, env=env, version=version, plan_id=plan_id,
              details={"plan_sha256": record["plan_sha256"], "counts": summary["counts"], "kind": kind,
                       "statement_sha256": _statement_sha256(record)})
    ctx.store.create(keys["record"], dumps(record))
    _advance_latest_plan(ctx.store, app, env, plan_id, created)
    return Planned(record, binary, review)


def _statement_sha256(doc: dict[str, Any]) -> str:
    from tfreview.trust.verify import statement_sha256

    return statement_sha256(doc)


def _advance_latest_plan(store: Store, app: str, env: str, plan_id: str, created: datetime) -> None:
    """Point app/env's latest plan at `plan_id` unless a plan created later is there already (compare-and-swap):
    "superseded by a newer plan" stays true to creation order whatever order concurrent planners finish in."""
    mine = {"plan_id": plan_id, "created_at": iso(created), "created_us": int(created.timestamp() * 1_000_000)}

    def forward(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current and (int(current.get("created_us") or 0), str(current.get("plan_id"))) >= (mine["created_us"], plan_id):
            return None
        return mine

    update_json(store, f"heads/{app}/{env}/latest-plan.json", forward)


def public_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    keep = ("strategy", "live_color", "versions", "weights", "services", "cluster_name", "target_groups",
            "task_definitions", "listener_arn", "test_listener_arn", "test_listener_port", "alb_dns_name")
    return {k: outputs[k] for k in keep if k in outputs}


def review_summary(review: Any) -> dict[str, Any]:
    """The part of a review stored in the plan record (no attribute values: nothing sensitive)."""
    doc = review.summary_json()  # no attribute trees: cheap on huge plans
    counts = doc.get("counts", {})
    risks = doc.get("risks", [])
    reasons = [f"{r.get('address', '')}: {r.get('reason', '')}".strip(": ") for r in risks
               if r.get("level") in ("critical", "high", "medium")]
    return {
        "counts": counts,
        "summary_line": review.counts.summary_line(),
        "classification": doc.get("classification"),
        "ecs": doc.get("ecs", []),
        "risk_reasons": reasons,
    }


_RECORD_FIELDS = {"id": str, "app": str, "env": str, "version": str, "planner": str, "created_at": str,
                  "plan_sha256": str, "package_sha256": str, "summary": dict}


def load_plan(store: Store, plan_id: str) -> dict[str, Any]:
    """The record of `plan_id` (NotFound for an unknown id; StoreError naming the file when it is damaged)."""
    keys = plan_keys(plan_id)
    try:
        return plan_record(store, keys["record"])
    except NotFound:
        raise NotFound(f"no plan {plan_id!r} in store {store.url}", "list plans with: tfreview history") from None


def plan_record(store: Store, key: str) -> dict[str, Any]:
    """The plan record stored at `key`, checked: a JSON object with the fields every reader uses."""
    return checked_json(store, key, _RECORD_FIELDS)


def checked_json(store: Store, key: str, fields: Mapping[str, type]) -> dict[str, Any]:
    """The JSON object stored at `key` with each of `fields` of its type; else StoreError naming the file."""
    doc = get_json(store, key)
    bad = [f for f, kind in fields.items() if not isinstance(doc, dict) or not isinstance(doc.get(f), kind)]
    if bad:
        raise StoreError(f"store record {key} is damaged ({bad[0]} missing or of the wrong type)",
                         "the store was modified outside tfreview: restore that file from a backup")
    return doc


def reviewed_json(store: Store, record: dict[str, Any]) -> bytes:
    """The stored review JSON of a plan, checked against its record's `json_sha256` (PolicyRefusal when it
    differs: what a reviewer would see is not what was planned)."""
    key = plan_keys(record["id"])["json"]
    data = store.read(key)
    recorded = record.get("json_sha256")
    if not recorded:
        raise PolicyRefusal(f"plan {record['id']} has no json_sha256 in its record: its review cannot be checked",
                            f"make a new plan: tfreview plan --app {record['app']} --version {record['version']} "
                            f"--env {record['env']}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise PolicyRefusal(f"plan {record['id']}: the stored review JSON does not match the plan record "
                            f"({key}: sha256 {actual[:12]}, recorded {recorded[:12]})",
                            "the store was modified: do not approve or apply it; make a new plan")
    return data


def load_review(store: Store, record: dict[str, Any]) -> Any:
    """The review of a stored plan, from its JSON checked against the record (see `reviewed_json`) and the record
    against its planner's signature (PolicyRefusal naming it as damaged), classified with the roles and showing the
    terraform options the record holds."""
    from tfreview.errors import InvalidPlan
    from tfreview.plan import review_plan
    from tfreview.plan.roles import Roles
    from tfreview.trust.witness import check_record

    data = reviewed_json(store, record)
    check_record(store, record)  # a record re-hashed to match an edited review is not its planner's
    try:
        return review_plan(data, roles=Roles.from_dict(record.get("roles")),
                           terraform_options=record.get("terraform_options"))
    except InvalidPlan as exc:  # tfreview stored it as a valid plan: it was changed since (record included)
        raise StoreError(f"store record {plan_keys(record['id'])['json']} is damaged: {exc.message}",
                         "the store was modified outside tfreview: restore that file from a backup") from None


def redacted_variables(plan_json: bytes, options: Any) -> frozenset[str]:
    """Names of the --var variables whose value the redacted plan JSON does not show as typed."""
    if not options.variables:
        return frozenset()
    import orjson

    shown = orjson.loads(plan_json).get("variables") or {}
    return frozenset(n for n, v in options.variables if not isinstance(shown.get(n), dict) or shown[n].get("value") != v)


def read_var_files(paths: tuple[str, ...]) -> dict[str, str]:
    """sha256 of each --var-file (what the record keeps instead of the contents); BadInput when unreadable."""
    out = {}
    for path in paths:
        try:
            out[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError as exc:
            raise BadInput(f"cannot read --var-file {path}: {exc.strerror}",
                           "give the path of a readable .tfvars or .tfvars.json file") from None
    return out


# -- approvals ---------------------------------------------------------------------------------------------------
def _facts(record: dict[str, Any]) -> Any:
    from tfreview.review.policy import PlanFacts

    return PlanFacts.from_dict({**record, "plan_id": record["id"],
                                "risk_reasons": record.get("escalation_reasons", record.get("risk_reasons", [])),
                                "destroy": is_destroy(record)})


def is_destroy(record: dict[str, Any]) -> bool:
    """A destroy plan (`plan --destroy`): its own policy rule, no rollout, no promotion."""
    return bool((record.get("terraform_options") or {}).get("destroy"))


def load_policy(ctx: Context) -> Any:
    """The rules of the store's active, verified policy (never of a local file)."""
    if ctx.policy is None:
        from tfreview.trust.policy import load_history

        ctx.policy = load_history(ctx.store, pin=ctx.settings.policy_root)
    return ctx.policy.active.rules


def decision_docs(store: Store, plan_id: str) -> list[dict[str, Any]]:
    """The stored approval/rejection documents of a plan, as written (signed statements, not yet verified)."""
    return [doc for _, doc in get_jsons(store, store.list(f"approvals/{plan_id}/"))]


def approvals_of(store: Store, plan_id: str) -> list[Any]:
    """The decisions stored for `plan_id`, oldest first, unverified (for history and reports; `apply` counts only
    those `verified` accepts: signed, and recorded in the audit log)."""
    from tfreview.review.policy import Approval

    from tfreview.trust.witness import placed

    out = []
    for key in store.list(f"approvals/{plan_id}/"):
        try:
            doc = get_json(store, key)
            if not placed(doc, plan_id):
                continue  # a decision on another plan, copied here: never one of this plan's (audit verify names it)
            out.append(Approval.from_dict(doc))
        except (TypeError, KeyError, ValueError, AttributeError):
            raise StoreError(f"store record {key} is damaged",
                             "the store was modified outside tfreview: restore that file from a backup") from None
    return sorted(out, key=lambda a: a.approved_at)


def verified(ctx: Context, record: dict[str, Any]) -> tuple[Any, list[Any]]:
    """(plan facts, decisions) of a plan, every signature checked against the store's active policy: the plan
    record signed by its planner, each decision by the principal it names with its audit entry present (a decision
    whose command died before its audit entry is not in effect; `approve` again completes it).
    PolicyRefusal (exit 3) naming the first that is edited, forged, unsigned or signed with a wrong key."""
    from dataclasses import replace

    from tfreview.trust.verify import check_signed, verified_decisions

    load_policy(ctx)
    key = check_signed(record, ctx.policy.active, str(record.get("planner")), f"plan record {record['id']}")
    facts = replace(_facts(record), planner_key=key.fingerprint,
                    planner_arn=str((record.get("identity") or {}).get("aws_arn") or ""))
    return facts, verified_decisions(ctx.store, record["id"], decision_docs(ctx.store, record["id"]), ctx.policy)


def _identity_slug(who: str) -> str:
    return hashlib.sha256(who.strip().lower().encode()).hexdigest()[:16]


def approval_status(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    """Where a plan stands before the current user decides: approvals needed (escalation included), who
    approved, why it escalates. Raises PolicyRefusal when the current user may not approve it (refuse early)."""
    from tfreview.review.policy import check_can_approve, required_approvals

    facts, decisions = verified(ctx, record)
    policy = load_policy(ctx)
    check_can_approve(policy, facts, decisions, ctx.user, now_utc(), key=ctx.signer.public_key.fingerprint,
                      aws_arn=str(ctx.identity.get("aws_arn") or ""))
    ep = policy.for_env(facts.env)
    return {"plan_id": record["id"], "required": required_approvals(ep, facts),
            "escalation": list(facts.risk_reasons) if facts.risky and ep.escalate_on_risk else [],
            "approved_by": [a.approver for a in decisions if a.kind == "approve"],
            "risk_reasons": record.get("risk_reasons", [])}


def approval_progress(ctx: Context, record: dict[str, Any]) -> Any:
    """Where a plan's approvals stand (for a pull-request comment): approvals required, who approved or rejected,
    counting only verified decisions (a forged one is refused, exit 3, as `apply` would). A report: `apply` still
    checks bindings, expiry and freshness itself."""
    from tfreview.render.comment import ApprovalProgress
    from tfreview.review.policy import required_approvals

    facts, decisions = verified(ctx, record)
    decisions = [d for d in decisions if d.plan_id == record["id"]]  # copied from another plan: not this one's
    ep = load_policy(ctx).for_env(record["env"])
    return ApprovalProgress(required_approvals(ep, facts),
                            approved_by=tuple(a.approver for a in decisions if a.kind == "approve"),
                            rejected_by=tuple(a.approver for a in decisions if a.kind != "approve"))


# A decision file without its audit entry, made less than this many seconds ago, is most likely another run's
# that is writing the entry right now (one append after the file); older, that run died.
DECISION_GRACE_S = 10.0


def _await_entry(store: Store, key: str, raw: bytes, etag: str, now: datetime) -> tuple[dict[str, Any], str]:
    """The decision file at `key` (read as `raw`, `etag`) once it points at its audit entry, or as it is when its
    maker is taken for dead: it was made DECISION_GRACE_S or more before `now`, or that long has passed here.
    Completing another live run's decision would log it twice and make that run fail."""
    import time

    from tfreview.review.policy import parse_time

    stored = parse_json(key, raw)
    try:
        age = (now - parse_time(str(stored.get("approved_at")))).total_seconds()
    except ValueError:
        age = DECISION_GRACE_S
    deadline = time.monotonic() + max(0.0, min(DECISION_GRACE_S, DECISION_GRACE_S - age))
    while "audit_seq" not in stored and time.monotonic() < deadline:
        time.sleep(0.1)
        raw, etag = store.read_versioned(key)
        stored = parse_json(key, raw)
    return stored, etag


def decide(ctx: Context, plan_id: str, kind: str, comment: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record an approval or a rejection of `plan_id` by the current user, bound to the plan's facts (`record`:
    the plan's record when the caller has read it; records are create-only)."""
    from tfreview.review.policy import check_can_approve, make_approval

    record = record or load_plan(ctx.store, plan_id)
    facts, decisions = verified(ctx, record)
    now = now_utc()
    key = f"approvals/{plan_id}/{_identity_slug(ctx.user)}.json"

    def log(decision: dict[str, Any], etag: str) -> dict[str, Any]:
        """Audit `decision` (naming its statement's sha256), then point its file at the entry: now it counts."""
        entry = ctx.audit(decision["kind"], app=record["app"], env=record["env"], version=record["version"],
                          plan_id=plan_id, details={"comment": decision["comment"], "plan_sha256": record["plan_sha256"],
                                                    "statement_sha256": _statement_sha256(decision)})
        done = {**decision, "audit_seq": entry["seq"]}
        ctx.store.replace(key, dumps(done), etag)
        return done

    try:  # decided before: complete it if that run died before its audit entry
        raw, etag = ctx.store.read_versioned(key)
    except NotFound:
        pass
    else:
        stored, etag = _await_entry(ctx.store, key, raw, etag, now)
        if "audit_seq" not in stored:  # its signature was checked by `verified` above; the run that made it died
            done = log(stored, etag)  # as it was made, not as asked now
            if stored.get("kind") == kind:
                return done
    check_can_approve(load_policy(ctx), facts, decisions, ctx.user, now, kind=kind,  # type: ignore[arg-type]
                      key=ctx.signer.public_key.fingerprint, aws_arn=str(ctx.identity.get("aws_arn") or ""))
    if ctx.store.exists(f"applies/{plan_id}/start.json"):
        raise PolicyRefusal(f"plan {plan_id} was already applied: a decision on it would change nothing",
                            f"review the next plan instead: tfreview history --app {record['app']} --env {record['env']}")
    # What the approver could read is the JSON the record binds (reviewers cannot read the binary; apply checks
    # that the binary still hashes as recorded and still gives this JSON).
    if kind == "approve":
        reviewed_json(ctx.store, record)
    approval = make_approval(facts, ctx.user, comment, now, kind=kind)  # type: ignore[arg-type]
    doc = ctx.sign({**approval.to_dict(), "identity": ctx.identity})
    try:  # create-only: of concurrent decisions by one person exactly one is recorded, before any audit entry
        etag = ctx.store.create(key, dumps(doc))
    except Conflict:
        raise PolicyRefusal(f"{ctx.user} has already decided on plan {plan_id}",
                            "another person must approve; see: tfreview show " + plan_id) from None
    try:
        doc = log(doc, etag)
    except BaseException:
        # A decision the audit log does not hold is never in effect: take it back, so that it can be made again.
        ctx.store.delete(key, etag)
        raise
    return doc


# -- apply -------------------------------------------------------------------------------------------------------
def latest_plan_id(store: Store, app: str, env: str) -> str | None:
    try:
        return checked_json(store, f"heads/{app}/{env}/latest-plan.json", {"plan_id": str})["plan_id"]
    except NotFound:
        return None


def succeeded_in(store: Store, app: str, version: str) -> frozenset[str]:
    """Environments where app/version was applied successfully (for promotion gates)."""
    try:
        return frozenset(get_json(store, f"releases/{app}/{version}/succeeded.json").get("envs", []))
    except NotFound:
        return frozenset()


def mark_succeeded(store: Store, app: str, version: str, env: str) -> None:
    """Record that app/version was applied successfully in `env` (CAS update: concurrent envs lose nothing)."""
    def add(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        doc = doc or {"app": app, "version": version, "envs": []}
        return None if env in doc.get("envs", []) else {**doc, "envs": sorted({*doc.get("envs", []), env})}

    update_json(store, f"releases/{app}/{version}/succeeded.json", add)


def apply(ctx: Context, plan_id: str, *, break_glass_reason: str | None = None,
          after_apply: Callable[[dict[str, Any], Workspace, dict[str, Any]], dict[str, Any]] | None = None,
          rollback: bool = False) -> dict[str, Any]:
    """Apply an approved, unchanged, fresh plan. Preconditions are checked before terraform starts and again
    (state identity) with the lock held; the outcome is recorded whatever happens.

    `rollback`: a weight-only rollback plan that policy lets an approver apply alone (approvals waived, every
    other check kept)."""
    from tfreview.review.policy import CurrentFacts, check_apply, check_break_glass, parse_time
    from tfreview.store.locks import acquire_lock, release_lock

    record = load_plan(ctx.store, plan_id)
    app, env, version = record["app"], record["env"], record["version"]
    keys = plan_keys(plan_id)
    if record.get("json_redaction") is None:
        raise PolicyRefusal(f"plan {plan_id} was made by an older tfreview: its record does not bind the reviewed "
                            "JSON to the plan binary", f"make a new plan: tfreview plan --app {app} --version "
                            f"{version} --env {env}")
    policy = load_policy(ctx)
    if break_glass_reason is not None:
        check_break_glass(policy, env, ctx.user, break_glass_reason)
    from tfreview.review.checks import check_policy_checks
    from tfreview.trust.checks import active_modules

    check_policy_checks(record, ctx.policy.active.version, active_modules(ctx.policy, env),
                        break_glass=break_glass_reason is not None)
    binary = ctx.store.read(keys["binary"])
    age_h = (now_utc() - parse_time(record["created_at"])).total_seconds() / 3600
    if age_h > ctx.settings.plan_max_age_hours:
        raise PolicyRefusal(f"plan {plan_id} is stale: made {age_h:.1f} h ago (limit {ctx.settings.plan_max_age_hours:g} h)",
                            f"make a new plan: tfreview plan --app {app} --version {version} --env {env}")
    _refuse_if_applied(ctx.store, record)
    # Refuse early, before the lock and terraform, on everything but the live state (checked below, locked).
    # The workspace unpacks these very bytes, verified against the manifest and the plan's package sha256.
    zip_bytes, manifest = fetch_package(ctx.store, app, version)
    plan_sha256 = hashlib.sha256(binary).hexdigest()
    waived = break_glass_reason is not None or rollback

    def current(lineage: str, serial: int) -> Any:
        return CurrentFacts(plan_sha256=plan_sha256, package_sha256=manifest["sha256"], state_lineage=lineage,
                            state_serial=serial, latest_plan_id=latest_plan_id(ctx.store, app, env),
                            succeeded_in=succeeded_in(ctx.store, app, version))

    facts, decisions = verified(ctx, record)
    check_apply(policy, facts, decisions, now_utc(),
                current(record.get("state_lineage") or "", int(record.get("state_serial") or 0)), break_glass=waived)
    refuse_other_backend(record, state_location(*backend_config(ctx, app, env)))
    lock = acquire_lock(ctx.store, app, env, ctx.user, plan_id, break_glass=break_glass_reason is not None)
    try:
        ws = open_workspace(ctx, app, env, zip_bytes, "apply")
        try:
            lineage, serial, _outputs = state_identity(ws.tf)
            facts, decisions = verified(ctx, record)
            check_apply(policy, facts, decisions, now_utc(), current(lineage, serial), break_glass=waived)
            check_applies_reviewed(ws, record, binary)
            return apply_in_workspace(ctx, record, binary, ws, break_glass_reason, after_apply)
        finally:
            ws.close()
    finally:
        release_lock(ctx.store, lock)


def _refuse_if_applied(store: Store, record: dict[str, Any]) -> None:
    """A plan is applied once: refuse one whose apply already recorded an outcome."""
    try:
        done = get_json(store, f"applies/{record['id']}/result.json")
    except NotFound:
        return
    raise PolicyRefusal(f"plan {record['id']} was already applied at {done.get('finished_at')} "
                        f"(outcome: {done.get('outcome')})",
                        f"make a new plan: tfreview plan --app {record['app']} --version {record['version']} "
                        f"--env {record['env']}")


def _write_plan_file(ws: Workspace, binary: bytes) -> str:
    plan_file = ws.env_dir / "tfreview.tfplan"
    plan_file.write_bytes(binary)
    plan_file.chmod(0o600)
    return plan_file.name


def check_applies_reviewed(ws: Workspace, record: dict[str, Any], binary: bytes) -> None:
    """Refuse (PolicyRefusal) unless `binary`, shown as JSON by terraform in `ws` and redacted as `plan` did,
    hashes to the record's `json_sha256`: the plan applied is the plan its reviewers read."""
    from tfreview.plan.redact import redact_plan

    derived = hashlib.sha256(redact_plan(ws.tf.show_json(_write_plan_file(ws, binary)))).hexdigest()
    if derived != record.get("json_sha256"):
        raise PolicyRefusal(f"plan {record['id']}: its binary does not show the JSON its reviewers read (sha256 "
                            f"{derived[:12]} derived, {str(record.get('json_sha256'))[:12]} recorded)",
                            "the store was modified: do not apply it; make a new plan and have it reviewed")


def apply_in_workspace(ctx: Context, record: dict[str, Any], binary: bytes, ws: Workspace, break_glass_reason: str | None,
               after_apply: Callable[[dict[str, Any], Workspace, dict[str, Any]], dict[str, Any]] | None) -> dict[str, Any]:
    plan_id = record["id"]
    base = f"applies/{plan_id}"
    fields = {"app": record["app"], "env": record["env"], "version": record["version"], "plan_id": plan_id}
    start = {"kind": "apply-start", **fields, "by": ctx.user, "identity": ctx.identity, "started_at": iso(now_utc()),
             "break_glass": break_glass_reason}
    already = PolicyRefusal(f"plan {plan_id} was already applied (or an apply of it was interrupted)",
                            "a plan is applied once: make a new plan")
    if ctx.store.exists(f"{base}/start.json"):  # the app/env lock is held: no other apply of this plan runs now
        raise already
    result: dict[str, Any] = {"kind": "apply-result", **fields, "by": ctx.user, "started_at": start["started_at"]}
    # The audit entry before start.json: an apply the log never saw start cannot exist. If the log cannot take
    # it, nothing ran and nothing is written (an apply that is not in the audit log never happens).
    if break_glass_reason is not None:
        ctx.audit("break-glass", **fields, details={"reason": break_glass_reason})
    ctx.audit("apply-start", **fields)
    try:
        ctx.store.create(f"{base}/start.json", dumps(start))
    except (Conflict, StoreError) as exc:  # logged as started: the log gets its end too, and nothing runs
        _record_outcome(ctx, base, fields, {**result, "outcome": "failed", "finished_at": iso(now_utc()),
                                            "error": f"not applied: its start could not be recorded ({exc})"})
        raise already if isinstance(exc, Conflict) else exc from None
    plan_file = _write_plan_file(ws, binary)
    try:
        ws.tf.apply(plan_file, on_event=ctx.on_event)
        result["outcome"] = "applied"
        outputs = public_outputs(ws.tf.output_json())
        result["outputs"] = outputs
        if after_apply is not None:
            result["rollout"] = after_apply(record, ws, outputs)
            result["outputs"] = public_outputs(ws.tf.output_json())  # traffic steps changed them
        if not is_destroy(record):
            mark_succeeded(ctx.store, record["app"], record["version"], record["env"])  # promotion gates
    except TfreviewError as exc:
        result["outcome"] = "failed"
        result["error"] = exc.one_line()
        raise
    except Interrupted as exc:  # Ctrl-C / SIGTERM: terraform was stopped gracefully (terraform.stop_gracefully)
        result["outcome"] = "interrupted"
        result["error"] = f"interrupted by {exc}: terraform was stopped; check the environment before the next plan"
        raise
    except BaseException as exc:  # a bug: still an outcome, never a result without one
        result["outcome"] = "failed"
        result["error"] = f"internal error: {type(exc).__name__}"
        raise
    finally:
        result["finished_at"] = iso(now_utc())
        logged = _record_outcome(ctx, base, fields, result)
    if not logged:  # the environment changed, and the log does not say so: never a success
        raise StoreError(f"plan {plan_id} was {result['outcome']}, but the audit log could not record its outcome "
                         f"({base}/result.json says so; tfreview audit verify reports the gap)",
                         "make the store's audit/ writable again, then tell your auditors about this apply")
    return result


def _record_outcome(ctx: Context, base: str, fields: dict[str, Any], result: dict[str, Any]) -> bool:
    """The apply's outcome: the audit entry first, then `result.json`. The result is written even when the log
    cannot take the entry (the environment changed either way; `audit verify` reports the missing entry). Never
    raises: the error that ended the apply matters more, and a missing result shows as interrupted. Returns
    whether the audit log recorded the outcome."""
    logged = True
    try:
        ctx.audit("apply-end", **fields, details={"outcome": result["outcome"], "error": result.get("error")})
    except (StoreError, Conflict):
        logged = False
        result = {**result, "audit": "missing: the audit log could not record this outcome"}
    try:
        ctx.store.create(f"{base}/result.json", dumps(result))
    except (StoreError, Conflict):
        pass
    return logged


# -- history ------------------------------------------------------------------------------------------------------
def time_bound(value: str | None, *, end: bool = False) -> datetime | None:
    """--since/--until as an aware UTC datetime; a bare date means its start (or, with `end`, its end)."""
    if not value:
        return None
    from datetime import timedelta

    from tfreview.review.policy import parse_time

    try:
        t = parse_time(value)
    except ValueError:
        raise BadInput(f"cannot read the time {value!r}", "use an ISO date or time, e.g. 2026-11-01 or "
                       "2026-11-01T14:00Z") from None
    if end and len(value.strip()) == 10:  # a date: until the end of that day
        t += timedelta(days=1) - timedelta(microseconds=1)
    return t
