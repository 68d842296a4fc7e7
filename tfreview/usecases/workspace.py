"""The working directory plan, apply and drift share: the package unpacked, the backend (state in the store, or
S3 in team mode) and the release variables written for terraform."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfreview import packaging
from tfreview.errors import BadInput, PolicyRefusal
from tfreview.terraform import Terraform, make_workdir
from tfreview.usecases.context import Context


RELEASE_VARS_FILE = "tfreview.auto.tfvars.json"
BACKEND_OVERRIDE_FILE = "tfreview_backend_override.tf"


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
