"""Helpers shared by several test modules (conftest.py holds the fixtures; it cannot be imported from tests)."""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

# -- signing keys and the policy of test stores ----------------------------------------------------------------------
# Throw-away ed25519 keys made with ssh-keygen on first use, in a private temp directory removed at exit (never
# committed). Every test store gets a policy listing TEST_PRINCIPALS as signers, ADMIN as its one admin.

ADMIN = "alice@example.com"
TEST_PRINCIPALS = ("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com",
                   "erin@example.com", "oncall@example.com", "ci@example.com")
_KEY_DIR: list[Path] = []


def signing_key(user: str) -> Path:
    """The private key file of test user `user` (any name: look-alikes get their own, unknown key)."""
    if not _KEY_DIR:
        _KEY_DIR.append(Path(tempfile.mkdtemp(prefix="tfreview-test-keys-")))
        atexit.register(shutil.rmtree, _KEY_DIR[0], True)
    path = _KEY_DIR[0] / hashlib.sha256(user.encode()).hexdigest()[:16]
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-key", "-f", str(path)],
                       check=True, capture_output=True)
    return path


def public_key(user: str) -> str:
    return Path(f"{signing_key(user)}.pub").read_text().strip()


def policy_toml(rules: str = "", principals: tuple[str, ...] = TEST_PRINCIPALS, admins: tuple[str, ...] = (ADMIN,),
                quorum: int = 1, extra: str = "") -> str:
    """A policy file: `principals` as signers with their test keys, `admins`, `quorum`, then `rules`
    ([policy.<env>] tables) and `extra` top-level tables."""
    signers = "".join(f'"{p}" = "{public_key(p)}"\n' for p in principals)
    return (f"admins = {json.dumps(list(admins))}\nadmin_quorum = {quorum}\n\n[signers]\n{signers}\n{extra}\n"
            f"{rules}\n")


def signer(user: str) -> Any:
    from tfreview.trust.signer import find_signer

    return find_signer({"TFREVIEW_SIGNING_KEY": str(signing_key(user))})


class InProcessSigner:
    """SSHSIG ed25519 signatures of the key file `key_file`, made with `cryptography` in this process: the same
    bytes ssh-keygen writes (ed25519 is deterministic), without a process per signature. For filling big logs
    (tests, bench/); tfreview itself signs through ssh-keygen."""

    def __init__(self, key_file: Path) -> None:
        from cryptography.hazmat.primitives.serialization import load_ssh_private_key

        from tfreview.trust import sshsig

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = load_ssh_private_key(key_file.read_bytes(), None)
        assert isinstance(key, Ed25519PrivateKey), f"{key_file} is not an ed25519 key"
        self.key = key
        self.public_key = sshsig.parse_public_key(Path(f"{key_file}.pub").read_text())

    def sign(self, message: bytes) -> str:
        import struct

        from tfreview.trust import sshsig

        s = sshsig._string
        sig = s(b"ssh-ed25519") + s(self.key.sign(sshsig.signed_data(message)))
        return sshsig.armour(sshsig.MAGIC + struct.pack(">I", 1) + s(self.public_key.blob) + s(b"tfreview") + s(b"")
                             + s(b"sha512") + s(sig))


def install_test_policy(store: Any, principals: tuple[str, ...] = TEST_PRINCIPALS, rules: str = "") -> Any:
    """Install the test policy (signed by ADMIN) in `store` unless it has one; returns its verified history."""
    from tfreview.config import Settings
    from tfreview.trust.admin import init
    from tfreview.trust.policy import has_policy, load_history
    from tfreview.usecases.context import Context

    if not has_policy(store):
        file = Path(tempfile.mkdtemp(prefix="tfreview-test-policy-")) / "policy.toml"
        file.write_text(policy_toml(rules, principals))
        init(Settings(store=store.url), store, signer(ADMIN), file, context=Context)
        shutil.rmtree(file.parent)
    return load_history(store)


def context_for(store: Any, user: str, aws_arn: str | None = None) -> Any:
    """A use-case Context acting as `user` with their test key, under the store's policy (installed if missing)."""
    from tfreview.config import Settings
    from tfreview.usecases.context import Context

    return Context(Settings(store=store.url), store, user, identity={"user": user, "aws_arn": aws_arn},
                   signer=signer(user), policy=install_test_policy(store))


def sign_record(store: Any, record: dict[str, Any]) -> dict[str, Any]:
    """`record` (a plan record) signed by its planner's test key under the store's policy."""
    from tfreview.trust.verify import sign

    return sign(signer(record["planner"]), {**record, "policy_version": install_test_policy(store).active.version})


# -- the CLI's error contract and the store's bytes --------------------------------------------------------------------

ONE_LINE = re.compile(r"^tfreview: error: \S.* \(\S.*\)$")  # message, then the hint in parentheses


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, contains: str = "") -> str:
    """The error contract: exit code, nothing on stdout, one `tfreview: error: ... (hint)` line on stderr."""
    where = f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
    assert proc.returncode == code, where
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, where
    assert proc.stdout == "", where
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, where
    assert ONE_LINE.match(lines[0]), f"not `tfreview: error: WHAT (HINT)`: {where}"
    assert contains in lines[0], where
    return lines[0]


def deep_json(levels: int, leaf: str) -> str:
    """JSON text of `levels` objects nested in one another around the JSON text `leaf` (written as text: Python's
    json module cannot write what nests this deep)."""
    return '{"v": ' * levels + leaf + "}" * levels


def snapshot(store: Path) -> dict[str, str]:
    """Every file of the store (relative path -> sha256)."""
    if not store.exists():
        return {}
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file()}


# -- plans recorded as `tfreview plan` records them -----------------------------------------------------------------

_seq = iter(range(1, 10_000))


def record_plan(store: Any, plan_doc: dict[str, Any], app: str, version: str, env: str, planner: str,
                escalation: list[str] | None = None, aws_arn: str | None = None) -> str:
    """Store a plan the way `tfreview plan` does (record signed by `planner`'s test key under the store's active
    policy, private binary, redacted JSON, latest-plan head, signed audit entry): a real review of `plan_doc` for
    `app` `version` (already packaged in `store`) in `env` (`aws_arn`: the planner's AWS principal, S3 mode);
    returns the plan id."""
    from tfreview.plan import review_plan
    from tfreview.plan.redact import REDACTION_VERSION, redact_plan
    from tfreview.store.audit import append_event
    from tfreview.store.base import dumps
    from tfreview.config import Settings
    from tfreview.text import iso, now_utc
    from tfreview.usecases.context import Context
    from tfreview.usecases.plan import new_plan_id, plan_keys, review_summary
    from tfreview.usecases.workspace import backend_config, state_location

    manifest = json.loads(store.read(f"packages/{app}/{version}/manifest.json"))
    created = now_utc()
    plan_id = f"{new_plan_id(app, env, created)}-{next(_seq)}"
    plan_json = redact_plan(plan_doc)
    binary = b"tfplan binary of " + plan_id.encode()
    summary = review_summary(review_plan(plan_json))
    record = {"kind": "plan", "id": plan_id, "plan_kind": "deploy", "release_id": None, "app": app, "env": env,
              "version": version, "plan_sha256": hashlib.sha256(binary).hexdigest(),
              "json_sha256": hashlib.sha256(plan_json).hexdigest(), "json_redaction": REDACTION_VERSION,
              "package_sha256": manifest["sha256"], "state_lineage": "", "state_serial": 0,
              "state_location": state_location(*backend_config(Context(Settings(store=store.url), store, planner),
                                                               app, env)),
              "prior_outputs": {}, "release_vars": {},
              "terraform_version": "1.11.4", "planner": planner,
              "identity": {"user": planner, **({"aws_arn": aws_arn} if aws_arn else {})},
              "created_at": iso(created), "summary": summary, "risky": bool(escalation),
              "risk_reasons": summary["risk_reasons"], "escalation_reasons": escalation or []}
    from tfreview.trust.verify import statement_sha256

    record = sign_record(store, record)
    keys = plan_keys(plan_id)
    store.create(keys["binary"], binary, private=True)
    store.create(keys["json"], plan_json)
    store.create(keys["record"], dumps(record))
    store.write(f"heads/{app}/{env}/latest-plan.json", dumps({"plan_id": plan_id, "created_at": record["created_at"]}))
    append_event(store, "plan", planner, signer=signer(planner), policy_version=record["policy_version"], app=app, env=env,
                 version=version, plan_id=plan_id, details={"statement_sha256": statement_sha256(record)})
    return plan_id


# -- terraform that must not run --------------------------------------------------------------------------------------

def failing_terraform_cli(cli: Any, directory: Any) -> Any:
    """`cli` with terraform replaced by a stub that fails loudly ("stub terraform reached: ARGS") if it is ever run
    (tests whose refusals must come before terraform), shop 1.1.0 packaged; returns `cli`."""
    stub = directory / "terraform"
    stub.write_text("#!/bin/sh\necho \"stub terraform reached: $*\" >&2\nexit 1\n")
    stub.chmod(0o755)
    cli.env = {"TFREVIEW_TERRAFORM_BIN": str(stub)}
    cli("package", "--app", "shop", "--version", "1.1.0")
    return cli


# -- S3 on the session's local AWS (the `s3_endpoint` fixture of conftest.py) ----------------------------------------


def new_bucket(endpoint: str) -> str:
    """Create a fresh, empty bucket with no default encryption (so what we see on objects is what we asked for)."""
    from tfreview.aws import client

    name = f"tfr-{uuid.uuid4().hex[:16]}"
    client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


# -- web apps in the sandbox (the `sandbox` fixture of conftest.py) ------------------------------------------------

SANDBOX_STEP_S = 0.05  # seconds per ECS deployment step for the modules using the `sandbox` fixture


@dataclass
class WebApp:
    """One colour of a web app in the sandbox: cluster, service, its target group and two task definitions."""

    ecs: Any
    elbv2: Any
    cluster: str
    service: str
    target_group: str
    td_v1: str
    td_v2: str

    def describe(self) -> dict[str, Any]:
        return self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]

    def targets(self) -> dict[str, str]:
        health = self.elbv2.describe_target_health(TargetGroupArn=self.target_group)["TargetHealthDescriptions"]
        return {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in health}

    def deploy_v2(self) -> None:
        self.ecs.update_service(cluster=self.cluster, service=self.service, taskDefinition=self.td_v2)

    def wait(self, condition: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0) -> dict[str, Any]:
        """The service once `condition` holds, polled every half step; on a driven clock (`driven_clock`) each poll
        moves the sandbox's time one step instead, and `timeout_s` is counted in that time."""
        from tfreview.sandbox import LIFECYCLE

        driven = LIFECYCLE.clock if isinstance(LIFECYCLE.clock, DrivenClock) else None
        now, sleep, pause = (driven, driven.sleep, LIFECYCLE.step_s) if driven else (time.monotonic, time.sleep,
                                                                                      SANDBOX_STEP_S / 2)
        deadline = now() + timeout_s
        while True:
            svc = self.describe()
            if condition(svc):
                return svc
            assert now() < deadline, f"condition not met in {timeout_s} s: {svc['deployments']}"
            sleep(pause)


def make_webapp(sandbox: Any, desired: int = 1, *, settle: bool = True) -> WebApp:
    """Create a VPC, a target group (target_type ip), a cluster, two revisions and a FARGATE service on v1."""
    name = f"web-{uuid.uuid4().hex[:8]}"
    ec2, ecs, elbv2 = sandbox.client("ec2"), sandbox.client("ecs"), sandbox.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=name, Description="web", VpcId=vpc)["GroupId"]
    tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc,
                                   TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    ecs.create_cluster(clusterName=name)
    tds = [ecs.register_task_definition(
        family=name, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": f"registry.local/web:{v}", "portMappings": [
            {"containerPort": 8080}]}])["taskDefinition"]["taskDefinitionArn"] for v in ("1.0.0", "1.1.0")]
    ecs.create_service(
        cluster=name, serviceName=name, taskDefinition=tds[0], desiredCount=desired, launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                 "maximumPercent": 200, "minimumHealthyPercent": 100})
    app = WebApp(ecs, elbv2, name, name, tg, tds[0], tds[1])
    if settle:
        app.wait(lambda s: s["deployments"][0]["rolloutState"] == "COMPLETED")
    return app


class DrivenClock:
    """The ECS lifecycle's clock when a test drives it (`driven_clock`): time moves only by `sleep`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@contextlib.contextmanager
def driven_clock(step_s: float = 0.25) -> Iterator[DrivenClock]:
    """The sandbox's deployments advance only when the test moves time (`clock.sleep(s)`), one step per `step_s`
    (0.25 s: exact in binary, so a step is due exactly when the clock reaches it). A test that must see every
    step of a deployment looks between two moves: however slow the machine, no step is skipped or merged. Time
    goes on from the real clock's reading and the real clock is back afterwards."""
    from tfreview.sandbox import LIFECYCLE

    saved_clock, saved_step = LIFECYCLE.clock, LIFECYCLE.step_s
    clock = DrivenClock(saved_clock())
    LIFECYCLE.clock, LIFECYCLE.step_s = clock, step_s
    try:
        yield clock
    finally:
        LIFECYCLE.clock, LIFECYCLE.step_s = saved_clock, saved_step


def primary(svc: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in svc["deployments"] if d["status"] == "PRIMARY")


def sealed_log(cli: Any, entries: int) -> Any:
    """`cli`'s store (with its policy) with `entries` audit entries in all, bob's approvals filling it up, and the
    first 1,000 of them sealed by carol (so `audit verify` compares sealed entry files); its LocalStore."""
    from tfreview.store import audit
    from tfreview.store.local import LocalStore

    cli.ensure_policy()
    store = LocalStore(cli.store)
    bob = InProcessSigner(signing_key("bob@example.com"))
    for i in range(entries - len(list(audit.iter_entries(store)))):
        audit.append_event(store, "approve", "bob@example.com", signer=bob, policy_version=1, app="shop", env="qa",
                           plan_id=f"p-{i}")
    cli.ok("audit", "seal", user="carol@example.com")
    return store
