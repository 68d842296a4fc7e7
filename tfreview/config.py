"""Settings: tfreview.toml + TFREVIEW_* environment + command-line overrides -> one frozen Settings object.

Precedence (highest first): command-line option, environment variable, tfreview.toml, default.
"""
from __future__ import annotations

import getpass
import os
import re
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
    plan_max_age_hours: float = 24.0  # a plan older than this is stale and must be re-planned
    rollout_timeout_s: float = 600.0  # a deployment not done by then is a failed release
    rollout_poll_s: float = 5.0  # seconds between two looks at the deployment
    # Notification targets from [notify.<env>] (tfreview.notifyconfig.Target by name); their URLs come from variables.
    notify: Mapping[str, Any] = field(default_factory=dict)
    # [trust] policy_root: the pin of the store's root policy version (tfreview.trust.root); None = not pinned.
    policy_root: str | None = None
    progress_interval_s: float = 30.0  # a resource terraform still works on gets a "still creating" line this often

    def backend_for(self, env: str) -> Mapping[str, Any]:
        """The backend of `env`: its [backend.<env>] table, else [backend.default], else the store's kind (state in
        the local store, or in the S3 backend beside an S3 store: team state never stays on one laptop)."""
        default = {"type": "s3"} if self.store.startswith("s3://") else {"type": "local"}
        return self.backends.get(env) or self.backends.get("default") or default

    def app_setting(self, app: str, key: str, default: Any = None) -> Any:
        return self.apps.get(app, {}).get(key, default)

    def alarms_for(self, app: str, env: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The CloudWatch alarms that gate a release of `app` to `env`: `[apps.<app>] alarms` and `extra` (--alarm)."""
        from tfreview.rollout.alarms import alarm_names

        return alarm_names(self.app_setting(app, "alarms"), env, extra, f"apps.{app}.alarms")

    def roles_for(self, app: str) -> Any:
        """The `Roles` of the app's Terraform: `[apps.<app>]` over the bundled module's defaults."""
        from tfreview.plan.roles import Roles

        return Roles.from_dict(self.apps.get(app), f"apps.{app}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text (byte {exc.start})", "save tfreview.toml as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", "fix the file or remove it") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}",
                       "point TFREVIEW_CONFIG at a readable tfreview.toml, or unset it") from None


# The keys of each table of tfreview.toml; anything else is a typo (exit 2, with the closest known key).
_TOP_KEYS = ("store", "source_dir", "terraform", "apps", "backend", "policy", "trust", "plan_max_age_hours",
             "rollout_timeout_s", "rollout_poll_s", "progress_interval_s", "notify")
_TRUST_KEYS = ("policy_root",)
_TERRAFORM_KEYS = ("bin", "provider_mirror", "plugin_cache_dir", "work_dir")
_APP_KEYS = ("image_repository", "alarms")  # and the release roles (tfreview.plan.roles.ROLE_KEYS)
# Terraform's S3 backend arguments (passed through to terraform) plus tfreview's `type`.
_S3_BACKEND_KEYS = (
    "type", "bucket", "key", "region", "encrypt", "use_lockfile", "kms_key_id", "acl", "sse_customer_key",
    "dynamodb_table", "dynamodb_endpoint", "workspace_key_prefix", "use_path_style", "force_path_style", "endpoint",
    "endpoints", "iam_endpoint", "sts_endpoint", "sts_region", "profile", "access_key", "secret_key", "token",
    "shared_config_files", "shared_credentials_files", "role_arn", "session_name", "external_id",
    "assume_role_duration_seconds", "assume_role", "assume_role_with_web_identity", "allowed_account_ids",
    "forbidden_account_ids", "skip_credentials_validation", "skip_region_validation", "skip_requesting_account_id",
    "skip_metadata_api_check", "skip_s3_checksum", "use_fips_endpoint", "use_dualstack_endpoint", "custom_ca_bundle",
    "ec2_metadata_service_endpoint", "ec2_metadata_service_endpoint_mode", "http_proxy", "https_proxy", "no_proxy",
    "insecure", "max_retries", "retry_mode",
)
# Seconds or hours: finite, above zero, and below a bound no one means (a typo of a unit or a digit).
NUMBER_LIMITS = {"plan_max_age_hours": 24.0 * 366, "rollout_timeout_s": 7 * 86_400.0, "rollout_poll_s": 3_600.0,
                 "progress_interval_s": 3_600.0}


def _unknown_keys(table: Mapping[str, Any], known: tuple[str, ...], where: str, path: Path) -> None:
    import difflib

    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise BadInput(f"{path}: unknown key {key!r} in {where}", hint)


def check_number(key: str, value: float, source: str) -> float:
    """`value` if it is a finite number above zero and at most NUMBER_LIMITS[key]; `source` names where it was
    set (a file or a variable) in the error."""
    import math

    limit = NUMBER_LIMITS[key]
    if not math.isfinite(value) or not 0 < value <= limit:
        raise BadInput(f"{source}: {key} must be a number above 0 and at most {limit:g}, not {value!r}",
                       "fix the value (hours for plan_max_age_hours, seconds for the rollout settings)")
    return value


def _check_types(data: Mapping[str, Any], path: Path) -> None:
    """Wrong types, numbers out of range and unknown keys in tfreview.toml are bad config (exit 2 with the key's
    name), not a crash later on; a [policy] table is refused by load_settings (rules live in the store)."""
    def bad(key: str, want: str) -> BadInput:
        return BadInput(f"{path}: {key} must be {want}", "fix tfreview.toml: see Configuration in the README")

    _unknown_keys(data, _TOP_KEYS, "the top level", path)
    for key in ("terraform", "apps", "backend", "trust"):
        if not isinstance(data.get(key, {}), dict):
            raise bad(key, f"a table ([{key}...])")
    for table in ("apps", "backend"):
        for name, value in data.get(table, {}).items():
            if not isinstance(value, dict):
                raise bad(f"{table}.{name}", f"a table: [{table}.<{'app' if table == 'apps' else 'env'}>] with key = value lines")
    tf = data.get("terraform", {})
    _unknown_keys(tf, _TERRAFORM_KEYS, "[terraform]", path)
    _unknown_keys(data.get("trust", {}), _TRUST_KEYS, "[trust]", path)
    if "policy_root" in data.get("trust", {}):
        check_policy_root(data["trust"]["policy_root"], f"{path} [trust]")
    if data.get("apps"):
        from tfreview.plan.roles import ROLE_KEYS  # docs/bring-your-own-terraform.md

        for name, table in data["apps"].items():
            _unknown_keys(table, (*_APP_KEYS, *ROLE_KEYS), f"[apps.{name}]", path)
    for name, table in data.get("backend", {}).items():
        _unknown_keys(table, _S3_BACKEND_KEYS if table.get("type") == "s3" else ("type",), f"[backend.{name}]", path)
    strings = [(k, data.get(k)) for k in ("store", "source_dir")]
    strings += [(f"terraform.{k}", tf.get(k)) for k in _TERRAFORM_KEYS]
    strings += [(f"apps.{n}.image_repository", t.get("image_repository")) for n, t in data.get("apps", {}).items()]
    for key, value in strings:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise bad(key, "a string, not empty")
    for name, table in data.get("apps", {}).items():
        if "alarms" in table:
            from tfreview.rollout.alarms import check_alarms_setting

            check_alarms_setting(table["alarms"], f"{path}: apps.{name}.alarms")
    if data.get("store") is not None:  # checked even when TFREVIEW_STORE or --store wins
        check_store_url(data["store"])
    for key in NUMBER_LIMITS:
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise bad(key, "a number")
        if value is not None:
            check_number(key, float(value), str(path))


# The pin of the store's root policy (tfreview.trust.root.pin_of): version 1's sha256, its admins' key fingerprints.
POLICY_ROOT = r"sha256:([0-9a-f]{64}) admins=(SHA256:[A-Za-z0-9+/]{43}(?:,SHA256:[A-Za-z0-9+/]{43})*)"


def check_policy_root(pin: Any, source: str) -> str:
    """`pin` if it has the shape of a policy root pin; BadInput (exit 2) naming `source` otherwise."""
    import re

    if not isinstance(pin, str) or not re.fullmatch(POLICY_ROOT, pin, re.ASCII):
        raise BadInput(f"{source}: policy_root must be \"sha256:<64 hex> admins=SHA256:<fingerprint>[,...]\"",
                       "paste the line `tfreview policy init` printed (`tfreview policy show` shows it too)")
    return pin


def check_store_url(store: str) -> str:
    """A store is a directory or s3://bucket[/prefix]; what looks like a typo of s3:// (S3://, s3:/, another
    scheme), a bucket name S3 would refuse, or control characters are bad input (exit 2)."""
    import re

    from tfreview.text import UNSAFE

    hint = "write s3://bucket/prefix (lower-case s3, two slashes, a valid bucket name) or a directory"
    if UNSAFE.search(store):
        raise BadInput(f"store {store!r} contains control characters", hint)
    if store.startswith("s3://"):
        if not store[len("s3://"):].split("/", 1)[0]:
            raise BadInput(f"{store!r} names no bucket", "use --store s3://BUCKET/PREFIX")
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", store):
            raise BadInput(f"store {store!r} is not a valid s3:// URL", hint)
    elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/", store) or re.match(r"(?i)s3(:|//)", store):
        raise BadInput(f"store {store!r} looks like a URL but is not s3://bucket/prefix", hint)
    return store


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
        "progress_interval_s": data.get("progress_interval_s"),
    }
    env_map = {
        "store": "TFREVIEW_STORE",
        "terraform_bin": "TFREVIEW_TERRAFORM_BIN",
        "provider_mirror": "TFREVIEW_PROVIDER_MIRROR",
        "plugin_cache_dir": "TFREVIEW_PLUGIN_CACHE_DIR",
        "work_dir": "TFREVIEW_WORK_DIR",
        "rollout_timeout_s": "TFREVIEW_ROLLOUT_TIMEOUT",
        "rollout_poll_s": "TFREVIEW_ROLLOUT_POLL",
        "progress_interval_s": "TFREVIEW_PROGRESS_INTERVAL",
    }
    for key, var in env_map.items():
        if env.get(var):
            values[key] = env[var]
    for key, val in (overrides or {}).items():
        if val is not None:
            values[key] = val
    for key, var in (("rollout_timeout_s", "TFREVIEW_ROLLOUT_TIMEOUT"), ("rollout_poll_s", "TFREVIEW_ROLLOUT_POLL"),
                     ("progress_interval_s", "TFREVIEW_PROGRESS_INTERVAL")):
        if env.get(var) and values[key] == env[var]:  # tfreview.toml's values are checked above
            try:
                values[key] = check_number(key, float(env[var]), var)
            except ValueError:
                raise BadInput(f"{key} must be a number of seconds ({var}), not {env[var]!r}",
                               f"fix or unset {var}") from None
    if values.get("store") is not None:
        check_store_url(values["store"])
    backends = {k: dict(v) for k, v in data.get("backend", {}).items() if isinstance(v, dict)}
    for name, b in backends.items():
        if b.get("type", "local") not in ("local", "s3"):
            raise BadInput(f"backend.{name}.type must be \"local\" or \"s3\"", "fix tfreview.toml")
    if "policy" in data:  # rules live in the store's signed policy: a local file must not be able to lower them
        raise BadInput(f"{cfg_path}: [policy] no longer belongs in tfreview.toml (the policy is signed, in the store)",
                       "move the [policy.*] tables into a policy file and run: tfreview policy init FILE "
                       "(or tfreview policy propose FILE); see docs/approvals.md")
    # Paths are made absolute once, here: terraform runs in temporary working directories, where a relative
    # store (the local state lives in it), mirror, cache or work directory would point somewhere else.
    if values.get("store") is None:
        values["store"] = Settings.store
    for key in ("store", "provider_mirror", "plugin_cache_dir", "work_dir"):
        value = values.get(key)
        if isinstance(value, str) and value and not value.startswith("s3://"):
            values[key] = os.path.abspath(os.path.join(cwd, os.path.expanduser(value)))
    if data.get("apps"):  # so are bad release roles (their types and syntax); the review engine only then
        from tfreview.plan.roles import Roles

        for name, table in data["apps"].items():
            Roles.from_dict(table, f"apps.{name}")
    kwargs = {k: v for k, v in values.items() if v is not None}
    if data.get("notify") is not None:
        kwargs["notify"] = parse_config(data["notify"], str(cfg_path))
    return Settings(backends=backends, apps=data.get("apps", {}), policy_root=data.get("trust", {}).get("policy_root"),
                    **kwargs)


def current_user(environ: Mapping[str, str] | None = None) -> str:
    """Who is acting: TFREVIEW_USER, else git's user.email, else the OS user."""
    env = os.environ if environ is None else environ
    if "TFREVIEW_USER" in env:
        from tfreview.text import check_person

        return check_person(env["TFREVIEW_USER"], "TFREVIEW_USER").strip()
    try:
        out = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            from tfreview.text import check_person

            return check_person(out.stdout.strip(), "git user.email").strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return getpass.getuser()


# -- [notify]: read and checked into plain Targets (tfreview.usecases.notify sends with them); URLs never live in the
# file: `urls_env` names the variable. --------------------------------------------------------------------------
EVENTS = ("plan-needs-approval", "approved", "rejected", "apply-started", "release-succeeded", "release-failed",
          "break-glass", "policy-proposed", "policy-activated")
ALWAYS = frozenset({"break-glass"})  # sent whatever a target's `events` say
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 30.0
_KEYS = ("urls_env", "events", "timeout_s")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class Target:
    """One configured destination: `name` is the [notify.<name>] table (an environment or "default")."""

    name: str
    urls_env: str
    events: frozenset[str]
    timeout_s: float = DEFAULT_TIMEOUT_S

    def wants(self, event: str) -> bool:
        return event in ALWAYS or event in self.events


def parse_config(table: Any, where: str) -> dict[str, Target]:
    """The `[notify]` table of tfreview.toml as Targets by name; BadInput (exit 2) for anything else, and for a
    URL written in the file (URLs hold tokens: they come from the variable `urls_env` names)."""
    import difflib

    if table is None:
        return {}
    if not isinstance(table, dict):
        raise BadInput(f"{where}: notify must be a table ([notify.<env>])", "see docs/notifications.md")
    out = {}
    for name, body in table.items():
        at = f"{where}: [notify.{name}]"
        if not isinstance(body, dict):
            raise BadInput(f"{at} must be a table", 'write [notify.<env>] with urls_env = "VARIABLE"')
        for key in body:
            if key in ("url", "urls"):
                raise BadInput(f"{at} has {key!r}: notification URLs carry tokens and never live in a file",
                               'put them in an environment variable and name it: urls_env = "TFREVIEW_NOTIFY_..."')
            if key not in _KEYS:
                close = difflib.get_close_matches(key, _KEYS, n=1)
                raise BadInput(f"{at}: unknown key {key!r}",
                               f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(_KEYS)}")
        urls_env = body.get("urls_env")
        if not isinstance(urls_env, str) or not _ENV_VAR.fullmatch(urls_env):
            raise BadInput(f"{at}: urls_env must name an environment variable",
                           'e.g. urls_env = "TFREVIEW_NOTIFY_PROD" (letters, digits and _)')
        events = body.get("events", list(EVENTS))
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise BadInput(f"{at}: events must be a list of event names", f"known events: {', '.join(EVENTS)}")
        for event in events:
            if event not in EVENTS:
                close = difflib.get_close_matches(event, EVENTS, n=1)
                raise BadInput(f"{at}: unknown event {event!r}",
                               f"did you mean {close[0]!r}?" if close else f"known events: {', '.join(EVENTS)}")
        timeout = body.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
            raise BadInput(f"{at}: timeout_s must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}",
                           "a few seconds: a notification never holds up a release")
        out[name] = Target(name, urls_env, frozenset(events), float(timeout))
    return out
