"""The agency dashboard (issue 12, point 7): the figures of `/console/dashboard`, each panel a table
(the chart draws it, the CSV export is it) computed from the issuer's database, the chain and a
verifier node's aggregated counts.

* issued — certificates taken in per day (intake, China Standard Time) by certificate type;
* verifications — verifications of the agency's certificates per day at the configured verifier
  node (`ECERT_ISSUER_DASHBOARD_VERIFIER_URL`, `GET /v1/stats/verifications`), same province
  vs other provinces (跨省通办), and per verifying region (`regions`);
* failures — verifications that were not VALID, by verdict and reason code;
* status — certificates suspended, reinstated and revoked per day, as the chain's events say
  (`StatusChanged`, `CertificatesRevoked`, `BatchRevoked` of the agency's batch roots);
* lag — anchoring lag, intake → confirmed, per day the batches were confirmed;
* gas — gas the anchoring transactions used (their receipts), per certificate;
* health — the chain head and its age, the verifier node's `/healthz`;
* corrections — open correction requests against their deadline (overdue, due within 24 hours,
  later), from the source `issuer.corrections` registers with `set_correction_source`.

Scope: one agency (its staff), or every agency this issuer serves in a region (an authority:
`Scope.for_region`). A source that is not configured or does not answer makes its panels say so
(`Panel.note`), never fails the page. Days are CST (`registry.stats_days`)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from issuer.models import Agency, Batch, Certificate
from registry.certificate.identifiers import parse_region
from registry.database import as_utc
from registry.stats_days import bounds, day_of, day_text, days, epoch_of, today

if TYPE_CHECKING:
    from registry.contracts.certificate_registry import CertificateRegistry

log = logging.getLogger(__name__)

PANELS = ("issued", "verifications", "regions", "failures", "status", "lag", "gas", "corrections")
ANCHORED_STATES = ("mined", "confirmed")
STATUS_NAMES = {0: "reinstated", 1: "suspended", 2: "revoked"}
ROOTS_PER_QUERY = 100  # batch roots per eth_getLogs topic filter
VERIFIER_TIMEOUT_S = 5.0


# ─── what the page shows ─────────────────────────────────────────────────────────────────


@dataclass
class Panel:
    """One panel: its table (`columns` are text keys of `issuer.console_text`, or a certificate
    type code), the columns its chart stacks (`series`, by index; the first column labels the
    bars), and `note`, a text key saying why it has no figures."""

    key: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    series: list[int] = field(default_factory=list)
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.note is None

    def csv(self) -> str:
        """The table as CSV (RFC 4180, header of column keys), what the page's table shows."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else _csv_safe(v) for v in row])
        return out.getvalue()


def _csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@dataclass
class Dashboard:
    scope: Scope
    first: dt.date
    last: dt.date
    panels: dict[str, Panel]
    health: dict[str, Any]


@dataclass(frozen=True)
class Scope:
    """Whose figures: `agencies` (codes) and, per agency, its region (for "other provinces")."""

    agencies: tuple[str, ...]
    regions: dict[str, str]
    label: str

    @classmethod
    def for_agency(cls, session: Session, code: str) -> Scope:
        agency = session.get(Agency, code)
        return cls((code,), {code: agency.region if agency else ""}, agency.name if agency else code)

    @classmethod
    def for_region(cls, session: Session, region: str) -> Scope:
        """Every agency served here in `region` (an authority's view)."""
        governing = parse_region(region)
        rows = [
            a for a in session.scalars(select(Agency).order_by(Agency.code)) if governing.governs(a.region)
        ]
        return cls(tuple(a.code for a in rows), {a.code: a.region for a in rows}, region)


def province(region: str) -> str:
    return region[:2]


# ─── sources other than the database ─────────────────────────────────────────────────────

VerifierRows = Callable[[str, dt.date, dt.date], list[dict[str, Any]]]  # (agency, first, last) -> rows
CorrectionSource = Callable[[Session, Sequence[str], dt.date], list[list[Any]]]


class SourceUnavailable(Exception):
    """A source of figures is not configured (`note` "…_unset") or did not answer."""

    def __init__(self, note: str, message: str = "") -> None:
        super().__init__(message or note)
        self.note = note


def verifier_source(url: str | None, key: str | None, timeout_s: float = VERIFIER_TIMEOUT_S) -> VerifierRows:
    """Rows of `GET <url>/v1/stats/verifications` (the verifier node's aggregated counts)."""

    def rows(agency: str, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        if not url or not key:
            raise SourceUnavailable("dash_verifier_unset")
        try:
            answer = httpx.get(
                url.rstrip("/") + "/v1/stats/verifications",
                params={"agency": agency, "from": first.isoformat(), "to": last.isoformat()},
                headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s,
            )  # fmt: skip
            answer.raise_for_status()
            found: list[dict[str, Any]] = answer.json()["rows"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("dashboard: the verifier node %s did not answer: %s", url, exc)
            raise SourceUnavailable("dash_verifier_down", str(exc)) from exc
        return found

    return rows


def verifier_health(url: str | None, timeout_s: float = VERIFIER_TIMEOUT_S) -> dict[str, Any]:
    if not url:
        return {"configured": False}
    try:
        answer = httpx.get(url.rstrip("/") + "/healthz", timeout=timeout_s)
        facts = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        return {"configured": True, "url": url, "reachable": True, "healthy": answer.status_code == 200,
                "facts": facts if isinstance(facts, dict) else {}}  # fmt: skip
    except httpx.HTTPError as exc:
        return {
            "configured": True,
            "url": url,
            "reachable": False,
            "healthy": False,
            "error": type(exc).__name__,
        }


_correction_source: CorrectionSource | None = None


def set_correction_source(source: CorrectionSource | None) -> None:
    """The hook for correction requests: `issuer.corrections` (and its table) registers
    `source(session, agencies, today)`, which returns rows of [deadline bucket ("overdue" |
    "due_24h" | "later"), open requests] for the agencies. Without a source the panel says
    "not available" (`dash_corrections_none`)."""
    global _correction_source  # noqa: PLW0603 - one registration per process, by the correction module
    _correction_source = source


# ─── chain reads (cached where the chain's answer cannot change) ────────────────────────

_gas_of_tx: dict[str, int] = {}
_time_of_block: dict[tuple[int, str], int] = {}
CACHE_MAX = 50_000


def _cached(cache: dict[Any, int], key: Any, read: Callable[[], int]) -> int:
    if key not in cache:
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[key] = read()
    return cache[key]


def gas_used(registry: CertificateRegistry, tx_hash: str) -> int:
    w3 = registry.client.w3
    return _cached(_gas_of_tx, tx_hash,
                   lambda: int(registry.client.guard(lambda: w3.eth.get_transaction_receipt(tx_hash))["gasUsed"]))  # type: ignore[arg-type]  # fmt: skip


def block_time(registry: CertificateRegistry, number: int, block_hash: str) -> int:
    w3 = registry.client.w3
    return _cached(_time_of_block, (number, block_hash),
                   lambda: int(registry.client.guard(lambda: w3.eth.get_block(number))["timestamp"]))  # fmt: skip


def status_events(
    registry: CertificateRegistry, roots: dict[bytes, int], from_block: int
) -> list[tuple[int, str, str, int]]:
    """(block, block hash, status name, certificates) of every status change of batches `roots`
    (root → certificates in it) from `from_block` on."""
    from web3 import Web3

    from registry.indexer.events import EventDecoder

    decoder = EventDecoder(registry.contract)
    w3, address = registry.client.w3, registry.address
    named = [
        "0x" + Web3.keccak(text=signature).hex().removeprefix("0x")
        for signature in ("StatusChanged(bytes32,uint256,uint256,uint8,uint8)", "BatchRevoked(bytes32,uint8)")
    ]
    found: list[tuple[int, str, str, int]] = []
    items = sorted(roots)
    for start in range(0, len(items), ROOTS_PER_QUERY):
        chunk = ["0x" + r.hex() for r in items[start : start + ROOTS_PER_QUERY]]
        logs: list[Any] = []
        for topics in ([named, chunk], [chunk]):  # the named events, then the anonymous one (root first)
            query: Any = {"address": address, "fromBlock": from_block, "toBlock": "latest", "topics": topics}
            logs.extend(registry.client.guard(lambda q=query: w3.eth.get_logs(q)))  # type: ignore[misc]
        for raw in logs:
            if len(raw["topics"]) == 1 and topics_root(raw) not in roots:
                continue
            event = decoder.decode(raw)
            if event is None:
                continue
            block_hash = "0x" + event.block_hash.hex()
            if event.name == "BatchRevoked":
                found.append((event.block_number, block_hash, "revoked", roots[bytes(event.args["root"])]))
            elif event.name in ("StatusChanged", "CertificatesRevoked"):
                status = (
                    STATUS_NAMES[int(event.args["status"])] if event.name == "StatusChanged" else "revoked"
                )
                found.append((event.block_number, block_hash, status, int(event.args["mask"]).bit_count()))
    return found


def topics_root(raw: Any) -> bytes:
    return bytes(raw["topics"][0])


# ─── the figures ─────────────────────────────────────────────────────────────────────────


def build(
    sessions: sessionmaker[Session],
    scope: Scope,
    first: dt.date,
    last: dt.date,
    *,
    registry: CertificateRegistry | None = None,
    verifier: VerifierRows | None = None,
    verifier_url: str | None = None,
    chain_note: str | None = None,
) -> Dashboard:
    """Every panel for `scope` over CST days `first` … `last` (both included). Without `registry`
    the chain's panels say `chain_note` (default "dash_chain_down")."""
    period = days(first, last)
    start, end = bounds(first, last)
    panels: dict[str, Panel] = {}
    with sessions() as session:
        dialect = session.get_bind().dialect.name
        panels["issued"] = _issued(session, dialect, scope, period, start, end)
        batches = _anchored_batches(session, dialect, scope, start, end)
        panels["lag"] = _lag(batches, period)
        roots = {
            bytes(root): count
            for root, count in session.execute(
                select(Batch.root, Batch.count).where(
                    Batch.agency_code.in_(scope.agencies), Batch.state.in_(ANCHORED_STATES)
                )
            )
        }
        from_block = session.scalar(
            select(func.min(Batch.block_number)).where(
                Batch.agency_code.in_(scope.agencies), Batch.state.in_(ANCHORED_STATES)
            )
        )
        panels["corrections"] = _corrections(session, scope)
    panels["gas"], panels["status"] = _chain_panels(registry, chain_note, batches, roots, from_block, period)
    panels["verifications"], panels["regions"], panels["failures"] = _verifications(
        verifier or verifier_source(None, None), scope, first, last, period
    )
    health = {"chain": _chain_health(registry, chain_note), "verifier": verifier_health(verifier_url)}
    return Dashboard(scope, first, last, panels, health)


def _issued(session: Session, dialect: str, scope: Scope, period: list[str], start: dt.datetime,
            end: dt.datetime) -> Panel:  # fmt: skip
    day = day_of(Certificate.created_at, dialect)
    counts: dict[tuple[str, str], int] = {}
    for d, type_code, n in session.execute(
        select(day, Certificate.type_code, func.count())
        .where(Certificate.agency_code.in_(scope.agencies), Certificate.created_at >= start,
               Certificate.created_at < end)
        .group_by(day, Certificate.type_code)
    ):  # fmt: skip
        counts[(d, type_code)] = n
    types = sorted({t for _, t in counts})
    rows = [
        [d, *(counts.get((d, t), 0) for t in types), sum(counts.get((d, t), 0) for t in types)]
        for d in period
    ]
    return Panel("issued", ["day", *types, "total"], rows, series=list(range(1, len(types) + 1)))


@dataclass(frozen=True)
class AnchoredBatch:
    day: str
    certificates: int
    lag_mean_s: float  # confirmed − mean intake of its certificates
    lag_max_s: float  # confirmed − earliest intake
    tx_hash: str | None


def _anchored_batches(session: Session, dialect: str, scope: Scope, start: dt.datetime,
                      end: dt.datetime) -> list[AnchoredBatch]:  # fmt: skip
    """Batches confirmed in the period, with their certificates' intake times."""
    query = (
        select(Batch.confirmed_at, Batch.tx_hash, func.count(Certificate.id), func.min(Certificate.created_at),
               func.avg(epoch_of(Certificate.created_at, dialect)))
        .join(Certificate, Certificate.batch_id == Batch.id)
        .where(Batch.agency_code.in_(scope.agencies), Batch.state == "confirmed", Batch.confirmed_at >= start,
               Batch.confirmed_at < end)
        .group_by(Batch.id, Batch.confirmed_at, Batch.tx_hash)
    )  # fmt: skip
    found = []
    for confirmed_at, tx_hash, count, earliest, mean_epoch in session.execute(query):
        confirmed = as_utc(confirmed_at)
        earliest_at = _parse_time(earliest)
        found.append(AnchoredBatch(
            day_text(confirmed), int(count), max(confirmed.timestamp() - float(mean_epoch), 0.0),
            max((confirmed - earliest_at).total_seconds(), 0.0), tx_hash,
        ))  # fmt: skip
    return found


def _parse_time(value: Any) -> dt.datetime:
    """An aggregate's time: SQLite answers `min(created_at)` as text."""
    if isinstance(value, dt.datetime):
        return as_utc(value)
    return as_utc(dt.datetime.fromisoformat(str(value)))


def _lag(batches: list[AnchoredBatch], period: list[str]) -> Panel:
    rows = []
    for d in period:
        of_day = [b for b in batches if b.day == d]
        certificates = sum(b.certificates for b in of_day)
        mean = sum(b.lag_mean_s * b.certificates for b in of_day) / certificates if certificates else None
        longest = max((b.lag_max_s for b in of_day), default=None)
        rows.append([d, len(of_day), certificates, _round(mean), _round(longest)])
    return Panel("lag", ["day", "batches", "certificates", "lag_mean_s", "lag_max_s"], rows, series=[3])


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _chain_panels(registry: CertificateRegistry | None, chain_note: str | None, batches: list[AnchoredBatch],
                  roots: dict[bytes, int], from_block: int | None, period: list[str]) -> tuple[Panel, Panel]:  # fmt: skip
    gas_columns = ["day", "batches", "certificates", "gas", "gas_per_certificate"]
    status_columns = ["day", "suspended", "reinstated", "revoked"]
    if registry is None:
        note = chain_note or "dash_chain_down"
        return Panel("gas", gas_columns, note=note), Panel("status", status_columns, note=note)
    try:
        gas_rows = []
        for d in period:
            of_day = [b for b in batches if b.day == d and b.tx_hash]
            gas = sum(gas_used(registry, b.tx_hash) for b in of_day if b.tx_hash)
            certificates = sum(b.certificates for b in of_day)
            gas_rows.append(
                [d, len(of_day), certificates, gas, round(gas / certificates) if certificates else None]
            )
        changes: dict[tuple[str, str], int] = {}
        if roots and from_block is not None:
            for number, block_hash, status, count in status_events(registry, roots, from_block):
                d = day_text(dt.datetime.fromtimestamp(block_time(registry, number, block_hash), dt.UTC))
                changes[(d, status)] = changes.get((d, status), 0) + count
        status_rows = [[d, *(changes.get((d, s), 0) for s in status_columns[1:])] for d in period]
    except Exception as exc:  # a chain that does not answer makes the panels say so
        log.warning("dashboard: chain read failed: %s", exc)
        return Panel("gas", gas_columns, note="dash_chain_down"), Panel(
            "status", status_columns, note="dash_chain_down"
        )
    return Panel("gas", gas_columns, gas_rows, series=[4]), Panel(
        "status", status_columns, status_rows, series=[1, 2, 3]
    )


def _verifications(source: VerifierRows, scope: Scope, first: dt.date, last: dt.date,
                   period: list[str]) -> tuple[Panel, Panel, Panel]:  # fmt: skip
    day_columns = ["day", "same_province", "other_provinces", "total", "other_share_pct"]
    region_columns = ["region", "other_province", "verifications"]
    failure_columns = ["reason", "verdict", "verifications"]
    same: dict[str, int] = {}
    other: dict[str, int] = {}
    by_region: dict[str, int] = {}
    failures: dict[tuple[str, str], int] = {}
    homes: set[str] = set()
    try:
        for agency in scope.agencies:
            home = province(scope.regions.get(agency, ""))
            homes.add(home)
            for row in source(agency, first, last):
                d, region, n = str(row["day"]), str(row["region"]), int(row["count"])
                target = same if province(region) == home else other
                target[d] = target.get(d, 0) + n
                by_region[region] = by_region.get(region, 0) + n
                if row["verdict"] != "VALID":
                    key = (str(row.get("reason") or "—"), str(row["verdict"]))
                    failures[key] = failures.get(key, 0) + n
    except SourceUnavailable as exc:
        return (Panel("verifications", day_columns, note=exc.note), Panel("regions", region_columns, note=exc.note),
                Panel("failures", failure_columns, note=exc.note))  # fmt: skip
    day_rows = []
    for d in period:
        s, o = same.get(d, 0), other.get(d, 0)
        day_rows.append([d, s, o, s + o, round(100 * o / (s + o), 1) if s + o else None])
    region_rows = [[r, "no" if province(r) in homes else "yes", n] for r, n in sorted(by_region.items())]
    failure_rows = [
        [reason, verdict, n]
        for (reason, verdict), n in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    total, others = sum(same.values()) + sum(other.values()), sum(other.values())
    detail = {
        "total": total,
        "other_provinces": others,
        "other_share_pct": round(100 * others / total, 1) if total else None,
    }
    return (Panel("verifications", day_columns, day_rows, series=[1, 2], detail=detail),
            Panel("regions", region_columns, region_rows, series=[2]),
            Panel("failures", failure_columns, failure_rows, series=[2]))  # fmt: skip


def _corrections(session: Session, scope: Scope) -> Panel:
    columns = ["deadline", "open_requests"]
    if _correction_source is None:  # no correction module registered its source: not available
        return Panel("corrections", columns, note="dash_corrections_none")
    return Panel("corrections", columns, _correction_source(session, scope.agencies, today()), series=[1])


def _chain_health(registry: CertificateRegistry | None, chain_note: str | None) -> dict[str, Any]:
    if registry is None:
        return {"reachable": False, "note": chain_note or "dash_chain_down"}
    try:
        client = registry.client
        head = client.block_number()
        block = client.guard(lambda: client.w3.eth.get_block(head))
        age = max(time.time() - int(block["timestamp"]), 0.0)
        return {"reachable": True, "head": head, "age_s": round(age, 1), "chain_id": client.chain_id}
    except Exception as exc:  # the page says the chain is down
        return {"reachable": False, "note": "dash_chain_down", "error": type(exc).__name__}
