"""`tfreview init --app APP`: a working `terraform/` tree and `tfreview.toml` in an empty repository.

The tree is the bundled one (`modules/ecs-webapp`, `envs/{sandbox,qa,prod}`), shipped inside the package as
`tfreview/scaffold` (a link to the repository's `terraform/` in a source checkout); its contract is
docs/bring-your-own-terraform.md. Nothing is overwritten: an existing `terraform/` or `tfreview.toml` is refused,
and the tree appears whole or not at all (built beside, then renamed into place).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tfreview.errors import BadInput, Conflict

SCAFFOLD = Path(__file__).resolve().parent / "scaffold"

CONFIG = '''# tfreview settings of {app} (README "Configuration"); the policy decides who approves what.
[apps.{app}]
# image_repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/{app}"
# Where a release finds its parts in your Terraform (docs/bring-your-own-terraform.md); these are the defaults,
# matching terraform/modules/ecs-webapp. Change them when you rename resources or colours.
# colours             = ["blue", "green"]
# service             = 'aws_ecs_service.app["{{colour}}"]'
# task_definition     = 'aws_ecs_task_definition.app["{{colour}}"]'
# target_group        = 'aws_lb_target_group.app["{{colour}}"]'
# production_listener = "aws_lb_listener.production"
# test_listener       = "aws_lb_listener.test"

# Who may approve what is not set here: it is the store's signed policy (tfreview policy init FILE,
# docs/approvals.md), e.g. [policy.prod] required_approvals = 2, destroy_approvals = 2.
'''


def scaffold(app: str, directory: Path) -> list[str]:
    """Write terraform/ and tfreview.toml for `app` into `directory`; returns the files written (relative)."""
    from tfreview.workflow import check_name

    check_name("app", app)
    try:
        usable = directory.is_dir()
    except OSError as exc:  # a name too long, a loop of links...
        raise BadInput(f"cannot use {directory}: {exc.strerror}", "pass --dir with an existing directory") from None
    if not usable:
        raise BadInput(f"{directory} is not a directory", "create it first, or pass --dir with an existing one")
    for name in ("terraform", "tfreview.toml"):
        if os.path.lexists(directory / name):  # a dangling symlink too: never written through
            raise Conflict(f"{directory / name} already exists: tfreview init writes only into an empty repository",
                           "move it away, or adapt your own Terraform: see docs/bring-your-own-terraform.md")
    if not (SCAFFOLD / "envs").is_dir():
        raise BadInput("this installation has no bundled Terraform tree", "reinstall tfreview")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".tfreview-init-", dir=directory))
    except OSError as exc:
        raise BadInput(f"cannot write into {directory}: {exc.strerror}", "pass --dir with a writable directory") from None
    try:
        files = [p for p in sorted(SCAFFOLD.rglob("*.tf")) if ".terraform" not in p.parts]
        for src in files:
            dest = staging / "terraform" / src.relative_to(SCAFFOLD)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        (staging / "tfreview.toml").write_text(CONFIG.format(app=app))
        (staging / "terraform").rename(directory / "terraform")
        (staging / "tfreview.toml").rename(directory / "tfreview.toml")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [f"terraform/{p.relative_to(SCAFFOLD)}" for p in files] + ["tfreview.toml"]
