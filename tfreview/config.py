"""Settings: tfreview.toml + TFREVIEW_* environment + command-line overrides -> one frozen Settings object.

Precedence (highest first): command-line option, environment variable, tfreview.toml, default.
"""
from __future__ import annotations

import getpass
import os
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tfreview.errors import BadInput

@dataclass(frozen=True)
class Settings:
    store: str = ".tfreview"
    source_dir: str = "terraform"
    terraform_bin: str = "terraform"
    # Root of a provider filesystem mirror (offline / air-gapped installs); None = terraform's own config.
    provider_mirror: str | None = None
    plugin_cache_dir: str = field(default_factory=lambda: str(Path.home() / ".cache" / "tfreview" / "plugins"))
    work_dir: str | None = None  # where per-plan working directories are made; None = system temp
    # Per-environment terraform backend: {"type": "local"} (state in the store) or {"type": "s3", ...}.
    backends: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Per-app settings from [apps.<app>] (image_repository, ...).
    apps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Raw [policy] tables, interpreted by tfreview.review.policy.
    policy: Mapping[str, Any] = field(default_factory=dict)
    plan_max_age_hours: float = 24.0  # a plan older than this is stale and must be re-planned
    rollout_timeout_s: float = 600.0  # a deployment not done by then is a failed release
    rollout_poll_s: float = 5.0  # seconds between two looks at the deployment

    def backend_for(self, env: str) -> Mapping[str, Any]:
        return self.backends.get(env) or self.backends.get("default") or {"type": "local"}

    def app_setting(self, app: str, key: str, default: Any = None) -> Any:
        return self.apps.get(app, {}).get(key, default)

    def roles_for(self, app: str) -> Any:
        """The `Roles` of the app's Terraform: `[apps.<app>]` over the bundled module's defaults."""
        from tfreview.plan.roles import Roles

        return Roles.from_dict(self.apps.get(app), f"apps.{app}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", "fix the file or remove it") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}",
                       "point TFREVIEW_CONFIG at a readable tfreview.toml, or unset it") from None


def _check_types(data: Mapping[str, Any], path: Path) -> None:
    """Wrong types in tfreview.toml are bad config (exit 2 with the key's name), not a crash later on."""
    def bad(key: str, want: str) -> BadInput:
        return BadInput(f"{path}: {key} must be {want}", "fix tfreview.toml: see Configuration in the README")

    for key in ("terraform", "apps", "backend", "policy"):
        if not isinstance(data.get(key, {}), dict):
            raise bad(key, f"a table ([{key}...])")
    for table in ("apps", "backend"):
        for name, value in data.get(table, {}).items():
            if not isinstance(value, dict):
                raise bad(f"{table}.{name}", f"a table: [{table}.<{'app' if table == 'apps' else 'env'}>] with key = value lines")
    tf = data.get("terraform", {})
    strings = [(k, data.get(k)) for k in ("store", "source_dir")]
    strings += [(f"terraform.{k}", tf.get(k)) for k in ("bin", "provider_mirror", "plugin_cache_dir", "work_dir")]
    for key, value in strings:
        if value is not None and not isinstance(value, str):
            raise bad(key, "a string")
    for key in ("plan_max_age_hours", "rollout_timeout_s", "rollout_poll_s"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise bad(key, "a number")


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> Settings:
    """Build Settings from tfreview.toml (TFREVIEW_CONFIG or ./tfreview.toml), TFREVIEW_* variables and overrides."""
    env = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    cfg_path = Path(env["TFREVIEW_CONFIG"]) if env.get("TFREVIEW_CONFIG") else cwd / "tfreview.toml"
    data: dict[str, Any] = {}
    if env.get("TFREVIEW_CONFIG") or cfg_path.is_file():
        data = _read_toml(cfg_path)
        _check_types(data, cfg_path)
    tf = data.get("terraform", {})
    values: dict[str, Any] = {
        "store": data.get("store"),
        "source_dir": data.get("source_dir"),
        "terraform_bin": tf.get("bin"),
        "provider_mirror": tf.get("provider_mirror"),
        "plugin_cache_dir": tf.get("plugin_cache_dir"),
        "work_dir": tf.get("work_dir"),
        "plan_max_age_hours": data.get("plan_max_age_hours"),
        "rollout_timeout_s": data.get("rollout_timeout_s"),
        "rollout_poll_s": data.get("rollout_poll_s"),
    }
    env_map = {
        "store": "TFREVIEW_STORE",
        "terraform_bin": "TFREVIEW_TERRAFORM_BIN",
        "provider_mirror": "TFREVIEW_PROVIDER_MIRROR",
        "plugin_cache_dir": "TFREVIEW_PLUGIN_CACHE_DIR",
        "work_dir": "TFREVIEW_WORK_DIR",
        "rollout_timeout_s": "TFREVIEW_ROLLOUT_TIMEOUT",
        "rollout_poll_s": "TFREVIEW_ROLLOUT_POLL",
    }
    for key, var in env_map.items():
        if env.get(var):
            values[key] = env[var]
    for key, val in (overrides or {}).items():
        if val is not None:
            values[key] = val
    for key in ("plan_max_age_hours", "rollout_timeout_s", "rollout_poll_s"):
        try:
            if values.get(key) is not None:
                values[key] = float(values[key])
        except ValueError:  # tfreview.toml's types are checked above: this comes from the environment
            raise BadInput(f"{key} must be a number, not {values[key]!r}",
                           "fix TFREVIEW_ROLLOUT_TIMEOUT / TFREVIEW_ROLLOUT_POLL (seconds)") from None
    backends = {k: dict(v) for k, v in data.get("backend", {}).items() if isinstance(v, dict)}
    for name, b in backends.items():
        if b.get("type", "local") not in ("local", "s3"):
            raise BadInput(f"backend.{name}.type must be \"local\" or \"s3\"", "fix tfreview.toml")
    from tfreview.review.policy import policy_from_dict

    policy_from_dict(data.get("policy", {}))  # a typo in a policy is bad config for every command, not ignored
    from tfreview.plan.roles import Roles

    for name, table in data.get("apps", {}).items():  # so are bad release roles
        Roles.from_dict(table, f"apps.{name}")
    kwargs = {k: v for k, v in values.items() if v is not None}
    return Settings(backends=backends, apps=data.get("apps", {}), policy=data.get("policy", {}), **kwargs)


def current_user(environ: Mapping[str, str] | None = None) -> str:
    """Who is acting: TFREVIEW_USER, else git's user.email, else the OS user."""
    env = os.environ if environ is None else environ
    if env.get("TFREVIEW_USER"):
        return env["TFREVIEW_USER"].strip()
    try:
        out = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return getpass.getuser()
