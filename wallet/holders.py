"""Holder accounts: register with name, ID number (GB 11643) and password; sign in, rate-limited
per account *and address* pair and per address (never per account alone: whoever knows an ID
number could then lock its holder out); preferences (language, elder mode) kept per holder."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from registry.certificate.identifiers import parse_id_number
from registry.crypto import DataCipher
from registry.error_codes import ErrorCode
from registry.errors import Conflict, EcertError, IdentifierError, NotAuthorised, NotFound
from registry.password_hash import dummy_hash, hash_password, needs_rehash, verify_password
from wallet.models import Holder, LoginSession
from wallet.passwords import check_password_rules
from wallet.settings import WalletSettings
from wallet.throttle import Throttle, address_key

LANGS = ("zh", "en")
MAX_NAME = 50


@dataclass(frozen=True)
class HolderView:
    """A signed-in holder; `id_number` is decrypted personal data: never log it."""

    id: int
    holder_ref: str
    name: str
    id_number: str
    lang: str
    elder: bool

    @property
    def masked_id(self) -> str:
        return self.id_number[:4] + "*" * (len(self.id_number) - 8) + self.id_number[-4:]


def normalise_id_number(text: str) -> str:
    """A citizen ID number as it must be stored: lenient on input (full-width, lowercase x), strict on the check."""
    return parse_id_number(text, strict=False).code


class Holders:
    def __init__(self, sessions: sessionmaker[Session], cipher: DataCipher, lookup_key: bytes, throttle: Throttle,
                 settings: WalletSettings) -> None:  # fmt: skip
        self._sessions = sessions
        self._cipher = cipher
        self._lookup_key = lookup_key
        self._throttle = throttle
        self._settings = settings

    def lookup(self, id_number: str) -> str:
        return hmac.new(self._lookup_key, f"holder:{id_number}".encode(), hashlib.sha256).hexdigest()

    def _view(self, row: Holder) -> HolderView:
        ref = row.holder_ref
        return HolderView(
            row.id, ref, self._cipher.decrypt(row.name_enc, f"wallet-holder:{ref}:name").decode(),
            self._cipher.decrypt(row.id_number_enc, f"wallet-holder:{ref}:id").decode(), row.lang, row.elder,
        )  # fmt: skip

    def register(
        self, name: str, id_number: str, password: str, *, ip: str, lang: str = "zh", elder: bool = False
    ) -> HolderView:
        self._throttle.acquire(
            [(f"register:ip:{address_key(ip)}", self._settings.register_max_per_ip, dt.timedelta(hours=1))]
        )
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            raise EcertError(
                f"Give your name as on your ID card (1 to {MAX_NAME} characters)",
                code=ErrorCode.NAME_INVALID,
                field="name",
            )
        try:
            code = normalise_id_number(id_number)
        except IdentifierError as exc:
            raise IdentifierError(exc.message, code=exc.code, field="idNumber") from exc
        check_password_rules(password, id_number=code)
        ref = secrets.token_hex(16)
        row = Holder(
            holder_ref=ref, id_lookup=self.lookup(code), password_hash=hash_password(password, n=self._settings.password_scrypt_n),
            id_number_enc=self._cipher.encrypt(code.encode(), f"wallet-holder:{ref}:id"),
            name_enc=self._cipher.encrypt(name.encode(), f"wallet-holder:{ref}:name"),
            lang=lang if lang in LANGS else "zh", elder=elder,
        )  # fmt: skip
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise Conflict(
                "This ID number already has a wallet: sign in instead",
                code=ErrorCode.HOLDER_EXISTS,
                field="idNumber",
            ) from None
        return self._view(row)

    def authenticate(self, id_number: str, password: str, *, ip: str) -> HolderView:
        """The holder, or LOGIN_FAILED (same answer for an unknown number and a wrong password);
        RATE_LIMITED after too many failures for this account from this address, or from this
        address in all, even with the right password. The attempt is counted before the password
        is hashed (parallel guesses cannot all get past a count made first) and given back if right."""
        settings = self._settings
        window = dt.timedelta(seconds=settings.login_window_s)
        try:
            code = normalise_id_number(id_number)
        except IdentifierError:
            code = id_number.strip()[:40]
        where = address_key(ip)
        pair, address = f"login:acct-ip:{self.lookup(code)}:{where}", f"login:ip:{where}"
        attempt = self._throttle.acquire(
            [
                (pair, settings.login_max_failures, window),
                (address, settings.login_max_failures_per_ip, window),
            ]
        )
        with self._sessions() as session:
            row = session.scalar(select(Holder).where(Holder.id_lookup == self.lookup(code)))
        if (
            not verify_password(
                password, row.password_hash if row else dummy_hash(settings.password_scrypt_n)
            )
            or row is None
        ):
            raise NotAuthorised("The ID number or the password is wrong", code=ErrorCode.LOGIN_FAILED)
        self._throttle.refund(attempt)
        self._throttle.clear([pair])
        if needs_rehash(row.password_hash, n=settings.password_scrypt_n):
            with self._sessions.begin() as session:
                session.get_one(Holder, row.id).password_hash = hash_password(
                    password, n=settings.password_scrypt_n
                )
        return self._view(row)

    def reset_password(self, id_number: str, password: str) -> HolderView:
        """Set a new password (operators and the demo; there is no self-service reset yet) and end every session."""
        code = normalise_id_number(id_number)
        check_password_rules(password, id_number=code)
        with self._sessions.begin() as session:
            row = session.scalar(select(Holder).where(Holder.id_lookup == self.lookup(code)))
            if row is None:
                raise NotFound("No holder with this ID number", code=ErrorCode.HOLDER_NOT_FOUND)
            row.password_hash = hash_password(password, n=self._settings.password_scrypt_n)
            session.execute(delete(LoginSession).where(LoginSession.holder_id == row.id))
        return self._view(row)

    def get(self, holder_id: int) -> HolderView:
        with self._sessions() as session:
            row = session.get(Holder, holder_id)
        if row is None:
            raise NotFound("No such holder", code=ErrorCode.HOLDER_NOT_FOUND)
        return self._view(row)

    def access_seen_at(self, holder_id: int) -> dt.datetime | None:
        """The newest access-log entry the holder has seen (None: never opened the log)."""
        with self._sessions() as session:
            row = session.get(Holder, holder_id)
        seen = row.access_seen_at if row else None
        return seen if seen is None or seen.tzinfo else seen.replace(tzinfo=dt.UTC)

    def mark_access_seen(self, holder_id: int, newest: dt.datetime) -> None:
        """The holder opened the access log showing entries up to `newest` (never moves back)."""
        with self._sessions.begin() as session:
            row = session.get(Holder, holder_id)
            if row is None:
                raise NotFound("No such holder", code=ErrorCode.HOLDER_NOT_FOUND)
            seen = row.access_seen_at
            if seen is not None and seen.tzinfo is None:
                seen = seen.replace(tzinfo=dt.UTC)
            if seen is None or newest > seen:
                row.access_seen_at = newest

    def set_preferences(self, holder_id: int, *, lang: str | None = None, elder: bool | None = None) -> None:
        with self._sessions.begin() as session:
            row = session.get(Holder, holder_id)
            if row is None:
                raise NotFound("No such holder", code=ErrorCode.HOLDER_NOT_FOUND)
            if lang in LANGS:
                row.lang = lang
            if elder is not None:
                row.elder = elder
