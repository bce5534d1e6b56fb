"""Access-log entries reported by other regions' nodes: a verification there of a share kept
here (跨省通办), so the holder's log at this node has it, with the verifying organisation and
its region, and the node that reports it.

Only a node that fetched the share's disclosure may report looks at it: the fetch
(`GET /v1/shares/{token}/presentation`, with that node's key) is recorded (`record_fetch`), and
a report from any other node, trusted or not, is refused exactly as a report of a share this node
does not keep (404 `SHARE_NOT_FOUND`). Without the binding any trusted node could write looks it
never made into the log of a holder of another region. 404, not 403: a 403 would tell a node
that a share with that token hash exists here; and the reporting node's outbox gives up on a 404
at once (a 403 it would retry for a day).

`RemoteAccess` is the wire format both ends use: the verifying node's outbox posts it
(`verifier.outbox`), this node stores it (`store_remote_access`) once per event id however often
it arrives, and only for a share it keeps, named by its token's SHA-256 (all this node has). An
event id that arrives again from another node, or with other content, is a conflict (the first
report stands): a resend is the same report, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.error_codes import ErrorCode
from registry.errors import Conflict, NotFound
from verifier.db import insert_new
from verifier.models import AccessEntry, Share, ShareFetch

log = logging.getLogger(__name__)

HEX_64 = r"^[0-9a-f]{64}$"
CLOCK_SKEW = dt.timedelta(minutes=5)  # between two nodes' clocks


def _in_utc(at: dt.datetime) -> dt.datetime:
    """The moment in UTC; one outside UTC's range (0001-01-01T00:00+14:00) is invalid, not a 500."""
    try:
        return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError("not a moment within UTC's range") from exc


class RemoteAccess(BaseModel):
    """One verification at another region's node of a share kept here."""

    eventId: str = Field(..., pattern=r"^[0-9a-f]{32}$", description="The reporting node's id of this event")
    at: Annotated[dt.datetime, AfterValidator(_in_utc)] = Field(..., description="When it was verified")
    organisation: str = Field(..., min_length=1, max_length=200, description="Who verified")
    organisationRegion: str = Field(..., max_length=6, description="Their region (GB/T 2260)")
    purpose: str = Field(..., max_length=200)
    fields: list[Annotated[str, Field(max_length=512)]] = Field(
        ..., max_length=1_000, description="The disclosed paths"
    )  # each bounded: 1,000 paths of 100 kB were one 100 MB entry in the holder's log
    verdict: Literal["VALID", "INVALID", "ERROR"]
    reason: str | None = Field(None, max_length=64)
    channel: str = Field(..., min_length=1, max_length=10, description="api or qr, at the reporting node")
    shareTokenHash: str = Field(..., pattern=HEX_64, description="SHA-256 (hex) of the share's token")
    digest: str = Field(..., pattern=r"^0x[0-9a-f]{64}$", description="The certificate's digest")
    identifier: str | None = Field(None, max_length=120)


def record_fetch(sessions: sessionmaker[Session], share_id: str, node_org_id: int) -> None:
    """The node of organisation `node_org_id` fetched the disclosure of share `share_id`: from now
    on it may report looks at that share (kept once; the first fetch's time)."""
    with sessions.begin() as session:
        statement = insert_new(ShareFetch, session.get_bind().dialect.name, ["share_id", "node_org_id"])
        session.execute(
            statement, {"share_id": share_id, "node_org_id": node_org_id, "first_at": dt.datetime.now(dt.UTC)}
        )


def store_remote_access(
    sessions: sessionmaker[Session], event: RemoteAccess, *, reported_by: str, reporter_id: int
) -> bool:
    """Store `event`, reported by the node of organisation `reporter_id` (named `reported_by`), in
    the access log under its share; False if it was stored before. A share not kept here, or one
    that node never fetched, is NOT_FOUND, one of another certificate a conflict: neither is
    worth resending."""
    with sessions.begin() as session:
        share = session.execute(
            select(Share.id, Share.digest, Share.created_at)
            .join(ShareFetch, ShareFetch.share_id == Share.id)
            .where(Share.token_hash == event.shareTokenHash, ShareFetch.node_org_id == reporter_id)
        ).first()
        if share is None:  # unknown, or not fetched by this node: the same answer (see the module's doc)
            if session.scalar(select(Share.id).where(Share.token_hash == event.shareTokenHash)):
                log.warning("refused %s's report of a look at share it never fetched (event %s)",
                            reported_by, event.eventId)  # fmt: skip
            raise NotFound("No share of this node has that token", code=ErrorCode.SHARE_NOT_FOUND)
        if not _aware(share.created_at) - CLOCK_SKEW <= event.at <= dt.datetime.now(dt.UTC) + CLOCK_SKEW:
            raise Conflict(
                "A look is dated within the share's life: after it was made and not in the future",
                code=ErrorCode.ACCESS_EVENT_MISMATCH, field="at",
            )  # fmt: skip
        if share.digest != event.digest:
            raise Conflict(
                "The share is of another certificate than the one reported", code=ErrorCode.ACCESS_EVENT_MISMATCH,
                field="digest",
            )  # fmt: skip
        row = _row(event, share.id, reported_by)
        statement = insert_new(AccessEntry, session.get_bind().dialect.name, ["event_id"])
        if session.execute(statement.returning(AccessEntry.id), row).first() is not None:
            return True
        stored = session.scalars(select(AccessEntry).where(AccessEntry.event_id == event.eventId)).one()
        if (
            any(getattr(stored, k) != v for k, v in row.items() if k != "at")
            or _aware(stored.at) != row["at"]
        ):
            # not a resend: another node's event id, or this event told otherwise; the first stands
            raise Conflict(
                "An event with this id was reported before, by another node or otherwise",
                code=ErrorCode.ACCESS_EVENT_MISMATCH, field="eventId",
            )  # fmt: skip
        return False


def _aware(moment: dt.datetime) -> dt.datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _row(event: RemoteAccess, share_id: str, reported_by: str) -> dict[str, Any]:
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
    return {
        "at": at.astimezone(dt.UTC), "organisation": event.organisation, "organisation_region": event.organisationRegion,
        "purpose": event.purpose, "digest": event.digest, "identifier": event.identifier, "share_id": share_id,
        "fields": orjson.dumps(event.fields).decode(), "verdict": event.verdict, "reason": event.reason,
        "channel": event.channel, "event_id": event.eventId, "reported_by": reported_by,
    }  # fmt: skip
