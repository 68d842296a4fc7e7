"""The command line, by command group: `app` (the typer app and the plumbing every command shares), `output`
(reviews, checks and prompts on the terminal), then one module per group (plan, approvals, release, audit,
policy, sandbox), and `entry` (`main`: the click command with its examples, errors mapped to exit codes).

Each command parses its arguments, calls one use case (tfreview.usecases), renders, and maps errors to exit
codes. Kept light on import: boto3, hcl2, moto and the review engine load only inside the commands that use them.
"""
# Imported in this order on purpose: typer lists the commands in the order they are registered.
from tfreview.cli import plan, approvals, release, audit, policy, sandbox  # noqa: F401  (they register the commands)
from tfreview.cli.app import app
from tfreview.cli.entry import EXAMPLES, build_command, main
from tfreview.errors import EXIT_USAGE

__all__ = ["app", "main", "EXIT_USAGE", "EXAMPLES", "build_command"]
