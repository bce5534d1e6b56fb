"""share: the share link the presentation came through is live and discloses what it names.

Applies only when the caller attached the share's terms to the context as `ctx.share`
(a `ShareTerms`); a presentation handed over directly (package, EC1 code) has none. The token
is a bearer secret: it never appears in the result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from registry.certificate.presentation import BOUND_PATHS
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext
from verifier.policy import covers_path


@dataclass(frozen=True)
class ShareTerms:
    """What the node holding a share knows about it (DESIGN.md §3 "Share link", §6)."""

    token_id: str
    fields: tuple[str, ...]  # the paths the holder chose to disclose (`ext.scope` covers its items)
    expires_at: dt.datetime
    single_use: bool = False
    used: bool = False
    withdrawn: bool = False

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None:
            raise ValueError("ShareTerms.expires_at must be timezone-aware")
        object.__setattr__(self, "fields", tuple(self.fields))


class ShareCheck:
    kind = "share"

    def applies(self, ctx: VerificationContext) -> bool:
        return getattr(ctx, "share", None) is not None

    def run(self, ctx: VerificationContext) -> CheckResult:
        share: ShareTerms = ctx.share
        evidence = {
            "expiresAt": share.expires_at.isoformat(),
            "singleUse": share.single_use,
            "fields": list(share.fields),
        }
        if share.withdrawn:
            return invalid(self.kind, "SHARE_WITHDRAWN", "The holder withdrew this share", **evidence)
        if ctx.now >= share.expires_at:
            return invalid(
                self.kind, "SHARE_EXPIRED", f"The share expired at {share.expires_at.isoformat()}", **evidence
            )
        if share.single_use and share.used:
            return invalid(self.kind, "SHARE_USED", "This single-use share was already used", **evidence)
        disclosed = ctx.presentation.paths()
        # The type, identifier and issuing agency are disclosed with every share, chosen or not.
        extra = [
            p for p in disclosed if p not in BOUND_PATHS and not any(covers_path(f, p) for f in share.fields)
        ]
        absent = [
            f for f in share.fields if f not in BOUND_PATHS and not any(covers_path(f, p) for p in disclosed)
        ]
        if extra or absent:
            return invalid(
                self.kind, "SHARE_FIELDS_MISMATCH",
                f"The presentation does not disclose exactly the shared fields (extra {extra}, absent {absent})",
                extra=extra, absent=absent, **evidence,
            )  # fmt: skip
        return valid(self.kind, "SHARE_OK", f"Share live until {share.expires_at.isoformat()}", **evidence)
