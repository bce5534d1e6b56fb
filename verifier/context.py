"""The facts checks read: the presentation, what the chain says about it, and the clock.

Each fact is computed once, on first use; a fact that cannot be had raises when read, so the
checks needing it turn ERROR (chain) or INVALID (tampering) while the others still run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.certificate.identifiers import LicenceId, parse_licence_id
from registry.certificate.presentation import Presentation
from registry.certificate.seal import recover_sealer
from registry.contracts.certificate_registry import Inspection


@dataclass(frozen=True)
class KeyCompromise:
    """A key that, by what is known now, was not good when the batch was anchored."""

    key: str
    compromised_since: int  # unix time from which the key is bad (0: retired before, not compromised)
    known_at: int  # block time from which the registry has said so


@dataclass(frozen=True)
class ChainFacts:
    """The one-call answer of the registry, and where it was read.

    The index adds what `inspect` does not say, only where it matters (no extra read otherwise):
    the GB reason code and since-when of a status other than active, and when a bad key became known.
    """

    inspection: Inspection
    block_number: int
    source: str  # "chain" (one eth_call), "index", "snapshot" (offline) or "lastKnown" (chain away)
    lag_blocks: int = 0
    status_reason: int | None = None  # GB code: 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他
    status_since: int | None = None
    compromises: tuple[KeyCompromise, ...] = ()
    age_s: float | None = None  # lastKnown: seconds since the index was last known current


class ChainReader(Protocol):
    chain_id: int
    registry: str

    def facts(self, presentation: Presentation, signer: str, at: int | None = None) -> ChainFacts: ...


class _lazy:
    """A per-instance lazy attribute. Not functools.cached_property: on Python 3.11 that takes one
    lock shared by every instance, which serialises concurrent verifications."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        failed = instance.__dict__.setdefault("_failed", {})
        if self._name in failed:  # a fact that could not be had is not asked for again
            raise failed[self._name]
        try:
            value = self._compute(instance)
        except Exception as exc:
            failed[self._name] = exc
            raise
        instance.__dict__[self._name] = value  # later reads skip the descriptor
        return value


@dataclass
class VerificationContext:
    presentation: Presentation
    reader: ChainReader | None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    at: dt.datetime | None = None  # verify as of this moment (status and validity then)
    share: Any = None  # the share terms when the presentation came through a share link

    @_lazy
    def now(self) -> dt.datetime:
        return self.at or self.clock()

    @_lazy
    def computed_digest(self) -> bytes:
        """What the disclosed leaves hash to; raises `CertificateError` if the multiproof is broken."""
        return self.presentation.computed_digest()

    @_lazy
    def signer(self) -> str:
        """Who sealed the claimed digest; raises `TamperedError` if the seal is unrecoverable."""
        p = self.presentation
        return recover_sealer(p.chain_id, p.registry, p.digest, p.seal)

    @_lazy
    def chain(self) -> ChainFacts:
        from registry.errors import ChainUnavailable

        if self.reader is None:
            raise ChainUnavailable("No chain to ask (offline)")
        at = int(self.at.timestamp()) if self.at else None
        return (
            self.reader.facts(self.presentation, self.signer, at)
            if at is not None
            else self.reader.facts(self.presentation, self.signer)
        )

    @_lazy
    def licence_id(self) -> LicenceId:
        """The disclosed identifier, parsed strictly; raises `IdentifierError` (or KeyError if not disclosed)."""
        return parse_licence_id(str(self.values["identifier"]), strict=True)

    @_lazy
    def values(self) -> dict[str, Any]:
        """The disclosed fields by dotted path: what checks read."""
        return self.presentation.values()
