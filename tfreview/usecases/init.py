"""`tfreview init --app APP`: a working `terraform/` tree and `tfreview.toml` in an empty repository.

The tree is the bundled one (`modules/ecs-webapp`, `envs/{sandbox,qa,prod}`), shipped inside the package as
`tfreview/scaffold` (a link to the repository's `terraform/` in a source checkout); its contract is
docs/bring-your-own-terraform.md. With the starter policy.toml comes an example Rego policy, `policy/example.rego`
(a deny and a warn rule) and its test `policy/example_test.rego` (shipped as `tfreview/policy_example`), which
the policy file names in `checks` (docs/policy-as-code.md). Nothing is overwritten: an existing `terraform/` or
`tfreview.toml` is refused, an existing `policy/` is left alone (and `checks` then commented out), and the tree
appears whole or not at all (built beside, then renamed into place).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfreview.errors import BadInput, Conflict

SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"  # tfreview/scaffold
POLICY_EXAMPLE = Path(__file__).resolve().parent.parent / "policy_example"  # tfreview/policy_example
EXAMPLE_FILES = ("example.rego", "example_test.rego")
CHECKS_LINE = 'checks = ["policy/*.rego"]'

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

# The pin of the store's root policy: commands refuse (exit 3) a store whose policy does not start there.
PINNED = '''
# The store's root policy, pinned (docs/approvals.md): commands refuse a store whose policy does not start here.
[trust]
policy_root = "{pin}"
'''
UNPINNED = '''
# Pin the store's root policy here once `tfreview policy init policy.toml` has printed it (docs/approvals.md):
# [trust]
# policy_root = "sha256:... admins=SHA256:..."
'''

STARTER_POLICY = '''# The team's policy: who signs, who administers it, who approves what (docs/approvals.md).
# Install it once: tfreview policy init policy.toml; change it later: tfreview policy propose policy.toml
admins = ["{who}"]
admin_quorum = 1                  # admins of the active version who must sign the next one

[signers]                         # principal -> SSH public key(s)
{signer_line}
# "bob@example.com" = "ssh-ed25519 AAAA... bob"
# ci = "ssh-ed25519 AAAA... ci"

[policy.default]
required_approvals = 1            # another person approves every plan
# The team's own rules over every plan, in Rego (docs/policy-as-code.md): policy/example.rego holds a deny rule
# (images from other registries) and a warn rule (IAM changes); `tfreview policy test policy/` runs its tests.
# `policy init`/`policy propose` store every file named here inside the signed policy version.
checks = ["policy/*.rego"]

# Production: two approvers from a list, break-glass for the on-call (add their keys to [signers] first).
# [policy.prod]
# required_approvals = 2
# approvers = ["{who}", "bob@example.com", "carol@example.com"]
# destroy_approvals = 2
# break_glass = ["{who}"]
'''


def starter_policy(principal: str, key_line: str | None) -> str:
    """A first policy.toml: `principal` as admin and signer (with `key_line`, their public key; a comment saying
    where it goes when there is none yet), commented examples for reviewers and prod rules."""
    import json

    who = json.dumps(principal)[1:-1]
    line = (f"{json.dumps(principal)} = {json.dumps(key_line)}" if key_line else
            f"# {json.dumps(principal)} = \"ssh-ed25519 AAAA...\"   <- your public key (.pub) goes here")
    return STARTER_POLICY.format(who=who, signer_line=line)


def scaffold(app: str, directory: Path, *, pin: str | None = None, policy: str | None = None) -> list[str]:
    """Write terraform/ and tfreview.toml for `app` into `directory`, with the root `pin` when the store has one
    (a comment saying where it goes otherwise), and `policy` as policy.toml unless one exists; returns the files
    written (relative)."""
    from tfreview.text import check_name

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
        (staging / "tfreview.toml").write_text(CONFIG.format(app=app) + (PINNED.format(pin=pin) if pin else UNPINNED))
        wrote_policy = policy is not None and not os.path.lexists(directory / "policy.toml")
        # The example rules come with the starter policy that names them, into a policy/ that is not there yet.
        examples = wrote_policy and not os.path.lexists(directory / "policy")
        if wrote_policy:
            text = policy or ""
            if not examples:  # a policy/ of the team's own: never written into, nor named unseen
                text = text.replace(f"\n{CHECKS_LINE}\n", f"\n# {CHECKS_LINE}\n")
            (staging / "policy.toml").write_text(text)
        if examples:
            (staging / "policy").mkdir()
            for name in EXAMPLE_FILES:
                shutil.copyfile(POLICY_EXAMPLE / name, staging / "policy" / name)
        (staging / "terraform").rename(directory / "terraform")
        (staging / "tfreview.toml").rename(directory / "tfreview.toml")
        if examples:
            (staging / "policy").rename(directory / "policy")
        if wrote_policy:
            (staging / "policy.toml").rename(directory / "policy.toml")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ([f"terraform/{p.relative_to(SCAFFOLD)}" for p in files] + ["tfreview.toml"]
            + ([f"policy/{name}" for name in EXAMPLE_FILES] if examples else [])
            + (["policy.toml"] if wrote_policy else []))


@dataclass(frozen=True)
class FirstDay:
    """What `init` found: the person's signing key (`key`: its fingerprint, or `key_problem`: how to make one), the
    principal the starter policy gives them, the pin of the store's root when it has a policy (then no starter
    policy is needed)."""

    key: str | None
    key_problem: str | None
    principal: str
    pin: str | None
    policy: str | None

    def steps(self, app: str, wrote_policy: bool) -> list[str]:
        """The commands that remain, in order."""
        out = []
        if self.key_problem:
            out.append("make a signing key: ssh-keygen -t ed25519 -f ~/.ssh/tfreview, then export "
                       "TFREVIEW_SIGNING_KEY=~/.ssh/tfreview and put ~/.ssh/tfreview.pub in policy.toml's [signers]")
        if self.pin is None:
            out.append("review policy.toml and the rules it names (tfreview policy test policy/), then install it: "
                       "tfreview policy init policy.toml" if wrote_policy else
                       "review your policy file, then install it: tfreview policy init POLICY.toml")
            out.append("paste the [trust] policy_root line it prints into tfreview.toml, and commit both files")
        out.append(f"tfreview package --app {app} --version 0.1.0")
        return out


def first_day(settings: Any) -> FirstDay:
    """Look for the person's signing key (as signing does) and the policy of the store of `settings` (None: none
    to look at), without writing anything."""
    from tfreview.config import current_user
    from tfreview.errors import TfreviewError
    from tfreview.trust.policy import valid_principal
    from tfreview.trust.signer import find_signer

    try:
        signer = find_signer()
        key, key_line, problem = signer.public_key.fingerprint, signer.public_key.line(), None
    except TfreviewError as exc:
        key, key_line, problem = None, None, exc.one_line()
    try:
        if settings is None:
            raise BadInput("no settings", "")
        from tfreview.store import open_store
        from tfreview.trust.policy import load_history
        from tfreview.trust.root import pin_of

        history = load_history(open_store(settings.store), pin=settings.policy_root)
        pin: str | None = pin_of(history.versions[1])
    except TfreviewError:  # no policy yet (or a store to look at later): the steps say what to do
        history, pin = None, None
    try:
        who = current_user()
    except TfreviewError:
        who = ""
    if history is not None and key_line:
        from tfreview.trust.sshsig import parse_public_key

        who = history.active.document.principal_of(parse_public_key(key_line)) or who
    principal = who if valid_principal(who) else "admin"
    return FirstDay(key, problem, principal, pin, None if pin else starter_policy(principal, key_line))
