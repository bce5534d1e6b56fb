"""The verifier node's tables: organisations and their keys, shares, and the access log that
holders see (谁访问、谁负责). No certificate is stored here except what a holder chose to share."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(20))  # bank | agency | wallet | node
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrgKey(Base):
    """An organisation's API key; only its SHA-256 is stored."""

    __tablename__ = "org_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Share(Base):
    """A holder's share: the chosen disclosure, kept until it expires or is withdrawn. Only the
    wallet organisation that made it manages it, and only for the same `holder_ref`."""

    __tablename__ = "shares"
    __table_args__ = (Index("ix_shares_wallet_org_holder", "wallet_org_id", "holder_ref"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # None: made before shares were bound to their wallet (migration 0003), managed by no wallet
    wallet_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    holder_ref: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(66), index=True)
    presentation: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM of the disclosure JSON
    fields: Mapped[str] = mapped_column(Text)  # JSON list of disclosed paths
    purpose: Mapped[str] = mapped_column(String(200), default="")
    single_use: Mapped[bool] = mapped_column(default=False)
    dynamic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Holding(Base):
    """A certificate a wallet keeps for one of its holders, shown by its full holder package
    (which hashes to `digest`): through that wallet, and for that holder only, the log of the
    certificate's verifications may be read. The primary key is the lookup's index."""

    __tablename__ = "holdings"

    wallet_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    holder_ref: Mapped[str] = mapped_column(String(128), primary_key=True)
    digest: Mapped[str] = mapped_column(String(66), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccessEntry(Base):
    """One verification: who, when, what digest, which fields, why, and the verdict."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_digest_at", "digest", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    organisation: Mapped[str] = mapped_column(String(200))
    organisation_region: Mapped[str] = mapped_column(String(6))
    purpose: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(66))
    identifier: Mapped[str | None] = mapped_column(String(120))
    share_id: Mapped[str | None] = mapped_column(String(32), index=True)
    fields: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))  # api | link | qr
    claimed_purpose: Mapped[str | None] = mapped_column(
        String(200)
    )  # an anonymous visitor's own words, unverified
    ip_prefix: Mapped[str | None] = mapped_column(
        String(50)
    )  # an anonymous visitor's network (IPv4 /24, IPv6 /48)
    user_agent: Mapped[str | None] = mapped_column(
        String(300)
    )  # an anonymous visitor's User-Agent, cut at 300
    # An entry another region's node reported (its outbox event id; unique: a replay is no second
    # row) and the name of that node's organisation here, which answers for it. None: made here.
    event_id: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    reported_by: Mapped[str | None] = mapped_column(String(200))


class AccessOutbox(Base):
    """An access-log entry owed to another region's node: a verification here of a share that
    node keeps, posted to it (`POST /v1/access-log/remote`) until it has it, so the holder sees it."""

    __tablename__ = "access_outbox"
    __table_args__ = (Index("ix_access_outbox_due", "state", "next_attempt_at"),)

    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex, also in the payload
    origin: Mapped[str] = mapped_column(String(300))  # the base URL of the node that keeps the share
    payload: Mapped[str] = mapped_column(Text)  # the JSON posted (the share by its token's SHA-256 only)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(300))  # why the last attempt failed
