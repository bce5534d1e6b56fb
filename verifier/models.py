"""The verifier node's tables: organisations and their keys, shares, and the access log that
holders see (谁访问、谁负责). No certificate is stored here except what a holder chose to share."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.staff_tables import StaffAttemptColumns, StaffMemberColumns, StaffSessionColumns


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
    # Only an identified organisation (an API key, a signed-in desk) may open it: an anonymous
    # visitor of the link gets a sign-in prompt instead of the fields (migration 0007).
    identified_only: Mapped[bool] = mapped_column(default=False, server_default=false())
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
    # The signed-in front-desk clerk of `organisation` who verified (`verifier.staff`); None: an API key or a visitor
    staff: Mapped[str | None] = mapped_column(String(200))
    # The certificate's batch root (0x hex) and index: what a re-check subscription follows (0008)
    batch_root: Mapped[str | None] = mapped_column(String(66))
    batch_index: Mapped[int | None] = mapped_column(Integer)


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


class ShareFetch(Base):
    """A trusted node of another region fetched this share's disclosure
    (`GET /v1/shares/{token}/presentation`) with its key: the only node whose reports of looks at
    the share (`POST /v1/access-log/remote`) this node takes (0009). A node is its organisation
    here, the one its key is of."""

    __tablename__ = "share_fetches"

    share_id: Mapped[str] = mapped_column(ForeignKey("shares.id"), primary_key=True)
    node_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class StaffMember(StaffMemberColumns, Base):
    """A front-desk clerk of an organisation registered here (`ecert verifier staff add`): signs
    in at `/desk` with a password and a TOTP code (the credential columns: `registry.staff_tables`)."""

    __tablename__ = "staff"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)


class StaffSession(StaffSessionColumns, Base):
    """A signed-in clerk's session."""

    __tablename__ = "staff_sessions"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)


class StaffAttempt(StaffAttemptColumns, Base):
    """A counted sign-in attempt (`verifier.staff`)."""

    __tablename__ = "staff_attempts"
    __table_args__ = (Index("ix_staff_attempts_key_at", "key", "at"),)


class StoredReceiptRow(Base):
    """A receipt this node signed for an organisation, kept under its id (`receipts.receipt_id`)
    for that organisation only: the signed JSON (digests, verdict, checks: no personal data), the
    values it covers encrypted (AES-GCM, the receipt id as context), and what the organisation's
    history searches by (`verifier.history`)."""

    __tablename__ = "receipts"
    __table_args__ = (
        Index("ix_receipts_org_created", "organisation_id", "created_at"),
        Index("ix_receipts_org_identifier", "organisation_id", "identifier"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    staff_id: Mapped[int | None] = mapped_column(
        Integer
    )  # the front-desk clerk (`staff.id`), if one verified
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    identifier: Mapped[str | None] = mapped_column(String(120))  # the certificate's, as the access log has it
    verdict: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    document: Mapped[str] = mapped_column(Text)  # {"receipt": …, "signature": …}
    disclosed: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM of the `disclosed` JSON


class Subscription(Base):
    """A bank's or agency's re-check subscription (`verifier.subscriptions`): told of every status
    change of one certificate it verified here, from the block it subscribed at on."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_root", "batch_root", "batch_index"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    digest: Mapped[str] = mapped_column(String(66))
    batch_root: Mapped[str] = mapped_column(String(66))  # 0x hex
    batch_index: Mapped[int] = mapped_column(Integer)
    events: Mapped[str] = mapped_column(Text)  # JSON list: suspended | reinstated | revoked | superseded
    url: Mapped[str | None] = mapped_column(String(500))  # None: pull only (`GET /v1/notifications`)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-GCM of the webhook's HMAC secret
    from_block: Mapped[int] = mapped_column(Integer)  # status changes after this block are notified
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """One status change told to one subscription: made once (its `event_id` is derived from the
    subscription, the transaction and the change), then posted to the subscription's URL like an
    outbox entry (`verifier.delivery`) and readable at `GET /v1/notifications` either way."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "state", "next_attempt_at"),
        Index("ix_notifications_org", "organisation_id", "id"),
        Index("ix_notifications_subscription", "subscription_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the pull endpoint's cursor
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    payload: Mapped[str] = mapped_column(Text)  # the JSON posted, byte for byte on every attempt
    # pending | delivered | failed (a dead letter) | pull (no URL) | cancelled (unsubscribed)
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))  # made, or redelivered
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(300))


class SubscriptionCursor(Base):
    """The last indexed block whose status changes were turned into notifications (one row)."""

    __tablename__ = "subscription_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_number: Mapped[int] = mapped_column(Integer)
