"""The Context every use case runs in: settings, the store, who acts (their signer) and the audit log they append to."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from tfreview.config import Settings, current_user
from tfreview.errors import TfreviewError
from tfreview.store import Store, open_store
from tfreview.terraform import Event


OnEvent = Callable[[Event], None]


@dataclass
class Context:
    """What every use case needs: settings, the store, who is acting, and a progress callback.

    signer/policy: the signing key and the store's verified policy history (tfreview.trust); `user` is then the
    principal the active policy gives the signing key. Read-only commands make a Context with sign=False."""

    settings: Settings
    store: Store
    user: str
    on_event: OnEvent | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    signer: Any = None
    policy: Any = None
    notifier: Any = None  # tfreview.usecases.notify.Notifier: sees every audit entry this command appends

    @classmethod
    def create(cls, settings: Settings, on_event: OnEvent | None = None, *, sign: bool = True) -> "Context":
        store = open_store(settings.store)
        identity: dict[str, Any] = {}
        if settings.store.startswith("s3://"):
            from tfreview.aws import caller_identity  # S3 mode records the AWS principal beside the user

            identity["aws_arn"] = caller_identity()
        if not sign:
            user = current_user()
            return cls(settings, store, user, on_event, {"user": user, **identity})
        from tfreview.trust.policy import load_history
        from tfreview.trust.signer import find_signer
        from tfreview.trust.verify import identify

        signer = find_signer()
        history = load_history(store, pin=settings.policy_root)
        user = identify(signer, history, aws_arn=identity.get("aws_arn"))
        if history.unrecorded:  # an activation record a crash lost, found in the log: put it back
            from tfreview.trust.root import repair

            repair(store, history)
        return cls(settings, store, user, on_event, {"user": user, **identity}, signer, history)

    @property
    def policy_version(self) -> int | None:
        return self.policy.active.version if self.policy is not None else None

    def sign(self, statement: dict[str, Any]) -> dict[str, Any]:
        """`statement`, naming the active policy version, signed by the acting principal."""
        from tfreview.trust.verify import sign

        return sign(self.signer, {**statement, "policy_version": self.policy_version})

    def audit(self, event: str, **fields: Any) -> dict[str, Any]:
        from tfreview.store.audit import SEGMENT_SIZE, append_event

        # S3 mode: the AWS principal beside the person (None, and so left out, elsewhere).
        entry = append_event(self.store, event, self.user, signer=self.signer, policy_version=self.policy_version,
                             aws_arn=self.identity.get("aws_arn"), **fields)
        if self.signer is not None and entry["seq"] % SEGMENT_SIZE == 0:
            # The writer who completes a segment of the log seals it, so that `audit verify` checks one signature
            # for its 1,000 entries. Sealing only makes verifying faster: if it fails (a damaged entry, a lost
            # race), the command still succeeded and `audit verify` names what is wrong.
            from tfreview.trust.verify import seal_log

            try:
                seal_log(self, [entry["seq"] - SEGMENT_SIZE + 1])
            except TfreviewError:
                pass
        if self.notifier is not None:
            self.notifier.saw(entry)
        return entry
