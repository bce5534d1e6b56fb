"""The columns every staff table has, whichever service keeps it (the issuer's console staff,
the verifier's front-desk clerks): declarative mixins, so that `registry.staff_auth` reads and
writes the same shape in both databases. Each service adds what is its own: whose staff
(`agency_code`, `organisation_id`), a role, the table names and the foreign keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StaffMemberColumns:
    """A person who signs in with a password (scrypt) and a TOTP code; the TOTP secret is sealed
    with the service's data key; `last_totp_step` refuses a code used once already."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM of the base32 secret
    last_totp_step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class StaffSessionColumns:
    """A signed-in session: only the SHA-256 of the cookie's 256 random bits is kept."""

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class StaffAttemptColumns:
    """A counted sign-in attempt: the key is an HMAC of what is limited (an account, an address)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
