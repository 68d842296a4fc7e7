"""The rolling strategy on the local AWS: one service updated in place, and a circuit-breaker rollback is a failed
release (moved from tests/test_blue_green.py so that it runs beside it in `make test`'s workers)."""
from __future__ import annotations

import json
import time

import pytest

from tests.test_blue_green import FAST

pytestmark = pytest.mark.integration


def test_rolling_strategy_deploys_in_place_and_a_circuit_breaker_rollback_is_a_failed_release(cli_factory,
                                                                                               aws_sandbox):
    """The seed's own way: one service, rolling update with the circuit breaker; no colours, no test listener."""
    cli = cli_factory("rolling")
    variables = cli.cwd / "terraform" / "envs" / "qa" / "variables.tf"
    variables.write_text(variables.read_text().replace('default = "blue_green"', 'default = "rolling"'))

    def release(version: str) -> tuple[dict, object]:
        cli.ok("package", "--app", "roll", "--version", version)
        rec = json.loads(cli.ok("plan", "--app", "roll", "--version", version, "--env", "qa", "--format", "json").stdout)
        for reviewer in ("bob@example.com", "carol@example.com"):
            cli.ok("approve", rec["id"], "--yes", user=reviewer)
        return rec, cli("apply", rec["id"], env=FAST)

    first, proc = release("3.0.0")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(cli.ok("show", first["id"], "--format", "json").stdout)
    addresses = {r["address"] for r in shown["resources"]}
    assert 'module.webapp.aws_ecs_service.app["main"]' in addresses
    assert not any("blue" in a or "green" in a or "aws_lb_listener.test" in a for a in addresses)

    ecs = aws_sandbox.client("ecs")

    def image() -> str:
        svc = ecs.describe_services(cluster="roll-qa", services=["roll-qa"])["services"][0]
        return ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"][
            "containerDefinitions"][0]["image"]

    second, proc = release("3.1.0")
    assert second["classification"]["kind"] == "rolling-deploy"
    assert proc.returncode == 0, proc.stderr
    assert image().endswith(":3.1.0") and "SUCCEEDED" in proc.stderr

    aws_sandbox.set_fault("roll-qa", "circuit-breaker-rollback")
    try:
        _third, proc = release("3.2.0")
    finally:
        aws_sandbox.set_fault("roll-qa", None)
    assert proc.returncode == 1 and "failed" in proc.stderr, proc.stderr
    deadline = time.monotonic() + 30  # the circuit breaker rolls back a deployment step after the failure
    while not image().endswith(":3.1.0") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert image().endswith(":3.1.0")  # ECS rolled back: stable, but on the old revision
