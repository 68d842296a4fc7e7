"""One exception hierarchy. Each error carries a one-line message, a hint (what to do) and an exit code.

Exit codes (documented in the README):
  0 success, 1 operational error (terraform failed, AWS unreachable...), 2 bad usage or bad input,
  3 refused by policy (not approved, plan changed, stale, self-approval, expired, locked...),
  4 the risk gate (`--fail-on LEVEL`): the review has a risk flag at LEVEL or above.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_POLICY = 3
EXIT_RISK = 4


class TfreviewError(Exception):
    """Base error: `message` says what is wrong, `hint` what to do; `exit_code` is the process exit code."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class BadInput(TfreviewError):
    """The user gave us something we cannot use (bad file, bad plan JSON, unknown id, bad config)."""

    exit_code = EXIT_USAGE


class InvalidPlan(BadInput):
    """A plan document that is not a Terraform JSON plan we can read."""


class NotFound(BadInput):
    """An id, app, version or file that does not exist."""


class Conflict(BadInput):
    """A write that would overwrite something different (re-package with other content...)."""


class PolicyRefusal(TfreviewError):
    """Refused by policy: not approved, plan changed, stale, self-approval, expired, locked, unsafe..."""

    exit_code = EXIT_POLICY


class TerraformFailed(TfreviewError):
    """terraform exited non-zero."""


class AwsError(TfreviewError):
    """AWS (or the local emulator) could not be reached or refused the call."""


class StoreError(TfreviewError):
    """The store could not be read or written."""


class RolloutFailed(TfreviewError):
    """A blue/green or rolling release did not complete; traffic was kept on (or moved back to) the old colour."""


class RiskGate(TfreviewError):
    """`--fail-on LEVEL`: the review was printed, and has a risk flag at LEVEL or above (a CI gate)."""

    exit_code = EXIT_RISK


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached tfreview. A BaseException, like KeyboardInterrupt, so no `except Exception` swallows
    it: the apply records its outcome as interrupted, terraform is stopped cleanly, and the exit code is
    128 + the signal (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum
