"""`tfreview promote`: plan a version for the next environment, only if it succeeded in the one before."""
from __future__ import annotations

from tfreview.errors import PolicyRefusal
from tfreview.text import check_name
from tfreview.usecases.context import Context
from tfreview.usecases.plan import Planned, plan
from tfreview.usecases.records import succeeded_in


def promote(ctx: Context, app: str, version: str, source_env: str, target_env: str) -> Planned:
    """Plan `version` for `target_env` only if it was released successfully in `source_env`."""
    for kind, value in (("app", app), ("version", version), ("env", source_env), ("env", target_env)):
        check_name(kind, value)
    if source_env not in succeeded_in(ctx.store, app, version):
        raise PolicyRefusal(f"{app} {version} was not released successfully in {source_env}",
                            f"release it there first: tfreview plan --app {app} --version {version} --env {source_env}")
    return plan(ctx, app, version, target_env)
