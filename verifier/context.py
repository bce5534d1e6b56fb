"""The facts checks read: the presentation, what the chain says about it, and the clock.

Each fact is computed once, on first use; a fact that cannot be had raises when read, so the
checks needing it turn ERROR (chain) or INVALID (tampering) while the others still run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from registry.certificate.presentation import Presentation
from registry.certificate.seal import recover_sealer
from registry.contracts.certificate_registry import Inspection


@dataclass(frozen=True)
class ChainFacts:
    """The one-call answer of the registry, and where it was read."""

    inspection: Inspection
    block_number: int
    source: str  # "chain" (one eth_call), "index" or "snapshot" (offline)
    lag_blocks: int = 0


class ChainReader(Protocol):
    chain_id: int
    registry: str

    def facts(self, presentation: Presentation, signer: str, at: int | None = None) -> ChainFacts: ...


@dataclass
class VerificationContext:
    presentation: Presentation
    reader: ChainReader | None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    at: dt.datetime | None = None  # verify as of this moment (status and validity then)
    share: Any = None  # the share terms when the presentation came through a share link

    @cached_property
    def now(self) -> dt.datetime:
        return self.at or self.clock()

    @cached_property
    def computed_digest(self) -> bytes:
        """What the disclosed leaves hash to; raises `CertificateError` if the multiproof is broken."""
        return self.presentation.computed_digest()

    @cached_property
    def signer(self) -> str:
        """Who sealed the claimed digest; raises `TamperedError` if the seal is unrecoverable."""
        p = self.presentation
        return recover_sealer(p.chain_id, p.registry, p.digest, p.seal)

    @cached_property
    def chain(self) -> ChainFacts:
        from registry.errors import ChainUnavailable

        if self.reader is None:
            raise ChainUnavailable("No chain to ask (offline)")
        at = int(self.at.timestamp()) if self.at else None
        return self.reader.facts(self.presentation, self.signer, at) if at is not None else self.reader.facts(self.presentation, self.signer)

    @cached_property
    def values(self) -> dict[str, Any]:
        """The disclosed fields by dotted path: what checks read."""
        return self.presentation.values()
