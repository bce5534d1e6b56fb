"""The wallet's tables. Personal data (names, ID numbers, certificate packages, share links) is
encrypted at rest with AES-256-GCM bound to its row; holders are found by a keyed hash of their
ID number, never by the number itself. Tables are prefixed `wallet_` so a shared PostgreSQL
database can hold every room."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Holder(Base):
    """A wallet account: one person, found by `id_lookup` = HMAC(lookup key, ID number)."""

    __tablename__ = "wallet_holders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_ref: Mapped[str] = mapped_column(String(32), unique=True)  # opaque id sent to the verifier
    id_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(255))
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    elder: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The newest access-log entry the holder has seen: newer ones are the home screen's unread badge.
    access_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LoginSession(Base):
    """A signed-in browser; the cookie carries a random token, only its SHA-256 is stored."""

    __tablename__ = "wallet_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("wallet_holders.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class StoredCertificate(Base):
    """A claimed holder package, encrypted; `id` is the wallet's own random id used in URLs."""

    __tablename__ = "wallet_certificates"
    __table_args__ = (UniqueConstraint("holder_id", "digest", name="uq_wallet_certificates_holder_digest"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("wallet_holders.id", ondelete="CASCADE"), index=True)
    identifier: Mapped[str] = mapped_column(String(120))
    type_code: Mapped[str] = mapped_column(String(21))
    digest: Mapped[str] = mapped_column(String(66))
    package_enc: Mapped[bytes] = mapped_column(LargeBinary)
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StoredShare(Base):
    """A share made through this wallet (the verifier node keeps the share itself). The link is
    kept, encrypted, because the node keeps only its hash and the dynamic QR needs it."""

    __tablename__ = "wallet_shares"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the verifier's share id
    holder_id: Mapped[int] = mapped_column(ForeignKey("wallet_holders.id", ondelete="CASCADE"), index=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("wallet_certificates.id", ondelete="CASCADE"))
    url_enc: Mapped[bytes] = mapped_column(LargeBinary)
    fields: Mapped[str] = mapped_column(Text)  # JSON list of disclosed paths
    purpose: Mapped[str] = mapped_column(String(200))
    single_use: Mapped[bool] = mapped_column(Boolean)
    dynamic: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Attempt(Base):
    """A counted attempt (sign-in, registration, claim: counted before it runs, given back if it
    turns out not to count) for rate limits; `key` is a hash of what is limited (an account and
    address pair, an address), never the value itself."""

    __tablename__ = "wallet_attempts"
    __table_args__ = (Index("ix_wallet_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CorrectionRequest(Base):
    """A holder's request to the issuing agency to correct a field or renew a certificate. The
    issuer's `token` is the only key to the request's answer: it is kept encrypted like a package
    (bound to its row); `id` is the issuer's request id. The answer is cached here so the wallet
    still shows the last known status when the issuer cannot be reached."""

    __tablename__ = "wallet_correction_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the issuer's request id
    holder_id: Mapped[int] = mapped_column(ForeignKey("wallet_holders.id", ondelete="CASCADE"), index=True)
    certificate_id: Mapped[str | None] = mapped_column(
        ForeignKey("wallet_certificates.id", ondelete="SET NULL")
    )  # the wallet's copy the request was made from
    identifier: Mapped[str] = mapped_column(String(120))
    token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    kind: Mapped[str] = mapped_column(String(16))  # "field" | "renewal"
    field: Mapped[str | None] = mapped_column(String(120))
    message_enc: Mapped[bytes] = mapped_column(LargeBinary)  # the holder's own words: personal data
    status: Mapped[str] = mapped_column(String(16), default="open")  # "open" | "fixed" | "refused"
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    answer_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # the agency's reason or note
    new_identifier: Mapped[str | None] = mapped_column(String(120))
    new_certificate_id: Mapped[str | None] = mapped_column(
        ForeignKey("wallet_certificates.id", ondelete="SET NULL")
    )  # the renewed version, once kept in the wallet
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
