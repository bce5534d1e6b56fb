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
    """A holder's share: the chosen disclosure, kept until it expires or is withdrawn."""

    __tablename__ = "shares"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    holder_ref: Mapped[str] = mapped_column(String(128), index=True)
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
