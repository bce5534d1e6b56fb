"""Shares: the holder picks fields (sensitive ones default to their masked twin), a purpose, an
expiry (5 minutes to 30 days) and single-use; the verifier node keeps the disclosure behind a
random link. A dynamic share opens only with the code of the current 30-second window. The
offline QR, a verification link `<node>/v#EC1:…` with the same disclosure in its fragment, needs
no network (and cannot be withdrawn)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.certificate.canonical import leaf_value
from registry.certificate.links import share_link_node, verify_link
from registry.certificate.presentation import BOUND_PATHS, Presentation
from registry.crypto import DataCipher
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, NotFound
from wallet.holders import HolderView
from wallet.models import StoredShare
from wallet.presets import preset_fields
from wallet.services import HOLDER_VIEW_PURPOSE, ServiceRefused, ServiceUnavailable, VerifierClient
from wallet.vault import Card, StatusView, Vault

EXPIRY_MINUTES = (5, 60, 24 * 60, 7 * 24 * 60, 30 * 24 * 60)
# Verifiers must see the validity period to check it, and what the certificate is and who issued
# it (`BOUND_PATHS`, which every disclosure carries): the form shows them as always shared.
ALWAYS = ("validFrom", "validUntil", *BOUND_PATHS)
MASKED_TWINS = {"holder.code": "holder.codeMasked"}  # sensitive field → what is shown instead by default
DEFAULT_FIELDS = ("name", "holder.name", "holder.codeMasked", "issuer.name")
# The order of the share form: what people recognise first, technical fields last.
FORM_ORDER = ("name", "number", "holder.name", "holder.codeMasked", "holder.code", "ext.", "issuer.name", "issuedDate",
              "identifier", "holder.codeType", "typeCode", "issuer.code", "issuer.region", "previousIdentifier", "validFrom",
              "validUntil")  # fmt: skip
MAX_PURPOSE = 200
IN_PERSON_PURPOSE = "当面出示 / shown in person"
IN_PERSON_MINUTES = 60


def base_path(path: str) -> str:
    """`ext.scope[1]` → `ext.scope`: list items are chosen together."""
    return path.split("[", 1)[0]


@dataclass(frozen=True)
class FieldChoice:
    path: str  # the base path, as chosen on the form
    values: tuple[Any, ...]
    sensitive: bool
    always: bool
    default: bool


def field_choices(presentation: Presentation) -> list[FieldChoice]:
    """The fields a holder can disclose, in the certificate's order, with the defaults."""
    grouped: dict[str, list[Any]] = {}
    for leaf in presentation.leaves:
        grouped.setdefault(base_path(leaf.path), []).append(leaf_value(leaf))

    def rank(path: str) -> tuple[int, str]:
        for position, prefix in enumerate(FORM_ORDER):
            if path == prefix or (prefix.endswith(".") and path.startswith(prefix)):
                return position, path
        return len(FORM_ORDER), path

    return [
        FieldChoice(
            path,
            tuple(grouped[path]),
            path in MASKED_TWINS,
            path in ALWAYS,
            path in ALWAYS or path in DEFAULT_FIELDS,
        )
        for path in sorted(grouped, key=rank)
    ]


def disclosed_paths(presentation: Presentation, chosen: list[str]) -> list[str]:
    """The leaf paths of the chosen fields plus the validity period; unknown names are an error."""
    known = {base_path(p) for p in presentation.paths()}
    wanted = {c for c in chosen if c} | {p for p in ALWAYS if p in known}
    unknown = sorted(wanted - known)
    if unknown:
        raise CertificateError(f"No such field: {unknown[0]}", code=ErrorCode.FIELD_UNKNOWN, field="fields")
    if not wanted - set(ALWAYS):
        raise CertificateError(
            "Choose at least one field to share", code=ErrorCode.FIELDS_EMPTY, field="fields"
        )
    return [p for p in presentation.paths() if base_path(p) in wanted]


@dataclass(frozen=True)
class ShareHold:
    """Why a certificate may not be shared now: its status, the agency's GB reason, whom to ask."""

    state: str  # suspended | revoked
    reason_zh: str | None
    reason_en: str | None
    since: str | None
    agency: str  # the issuing agency: the one to contact


HELD = {"CERT_SUSPENDED": "suspended", "CERT_REVOKED": "revoked"}


def share_hold(card: Card, status: StatusView) -> ShareHold | None:
    """A hold when the verifier's status check says suspended or revoked, else None (an
    unreachable verifier holds nothing: the verifier itself refuses what it cannot vouch for)."""
    check = next((c for c in status.checks if c.get("kind") == "status"), None)
    code = (check or {}).get("code") or status.reason
    if code not in HELD:
        return None
    evidence = (check or {}).get("evidence") or {}
    issuer = card.fields.get("issuer")
    agency = str(issuer.get("name", "")) if isinstance(issuer, dict) else ""
    return ShareHold(
        HELD[code], evidence.get("reasonZh"), evidence.get("reasonEn"), evidence.get("since"), agency
    )


@dataclass(frozen=True)
class ShareView:
    id: str
    certificate_id: str
    url: str
    fields: tuple[str, ...]
    purpose: str
    expires_at: dt.datetime
    single_use: bool
    dynamic: bool
    state: str  # active | used | withdrawn | expired | unknown (verifier not reachable)

    @property
    def active(self) -> bool:
        return self.state == "active"


def _state(remote: dict[str, Any] | None) -> str:
    if remote is None:
        return "unknown"
    for flag in ("withdrawn", "expired", "used"):
        if remote.get(flag):
            return flag
    return "active"


class Sharing:
    def __init__(
        self, sessions: sessionmaker[Session], cipher: DataCipher, vault: Vault, verifier: VerifierClient
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._vault = vault
        self._verifier = verifier

    def create(self, holder: HolderView, card: Card, chosen: list[str], *, purpose: str, minutes: int,
               single_use: bool, dynamic: bool, identified_only: bool = False) -> ShareView:  # fmt: skip
        """Refused (CERT_NOT_SHAREABLE) for a certificate the verifier says is suspended or revoked."""
        if (hold := share_hold(card, self._vault.status(card, fresh=True))) is not None:
            raise CertificateError(
                f"This certificate is {hold.state}: it cannot be shared; ask {hold.agency}",
                code=ErrorCode.CERT_NOT_SHAREABLE,
                field="certificate",
            )
        if minutes not in EXPIRY_MINUTES:
            raise CertificateError(
                "A share lasts 5 minutes, 1 hour, 1 day, 7 days or 30 days",
                code=ErrorCode.SHARE_LIFETIME_INVALID,
                field="expiry",
            )
        purpose = " ".join(purpose.split())[:MAX_PURPOSE]
        disclosure = card.presentation.disclose(disclosed_paths(card.presentation, chosen))
        made = self._verifier.create_share(holder.holder_ref, disclosure.to_json(), purpose=purpose, minutes=minutes,
                                           single_use=single_use, dynamic=dynamic,
                                           identified_only=identified_only)  # fmt: skip
        row = StoredShare(
            id=made["id"], holder_id=holder.id, certificate_id=card.id, fields=json.dumps(disclosure.paths(), ensure_ascii=False),
            url_enc=self._cipher.encrypt(made["url"].encode(), f"wallet-share:{made['id']}"), purpose=purpose,
            single_use=single_use, dynamic=dynamic, expires_at=dt.datetime.fromisoformat(made["expiresAt"]),
        )  # fmt: skip
        with self._sessions.begin() as session:
            session.add(row)
        return self._view(row, made)

    def in_person(self, holder: HolderView, card: Card) -> ShareView:
        """The holder's live dynamic share of `card` for showing in person (one tap on the home
        screen), or a new one: an hour long, with the fields the custom preset picks."""
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        items, _live = self.list(holder)
        for item in items:
            if (item.certificate_id == card.id and item.dynamic and item.active and item.purpose == IN_PERSON_PURPOSE
                    and item.expires_at > soon):  # fmt: skip
                return item
        available = {base_path(p) for p in card.presentation.paths()}
        return self.create(holder, card, sorted(preset_fields("custom", available)), purpose=IN_PERSON_PURPOSE,
                           minutes=IN_PERSON_MINUTES, single_use=False, dynamic=True)  # fmt: skip

    def _view(self, row: StoredShare, remote: dict[str, Any] | None) -> ShareView:
        return ShareView(
            row.id, row.certificate_id, self._cipher.decrypt(row.url_enc, f"wallet-share:{row.id}").decode(),
            tuple(json.loads(row.fields)), row.purpose, as_utc(row.expires_at), row.single_use, row.dynamic,
            "withdrawn" if row.withdrawn_at else _state(remote),
        )  # fmt: skip

    def _row(self, holder: HolderView, share_id: str) -> StoredShare:
        with self._sessions() as session:
            row = session.get(StoredShare, share_id) if len(share_id) <= 32 else None
        if row is None or row.holder_id != holder.id:
            raise NotFound("No such share of yours", code=ErrorCode.SHARE_NOT_FOUND)
        return row

    def _remote(self, holder: HolderView) -> dict[str, dict[str, Any]] | None:
        try:
            return {s["id"]: s for s in self._verifier.list_shares(holder.holder_ref)}
        except (ServiceUnavailable, ServiceRefused):
            return None

    def get(self, holder: HolderView, share_id: str) -> ShareView:
        row = self._row(holder, share_id)
        remote = self._remote(holder)
        return self._view(row, None if remote is None else remote.get(share_id, {"expired": True}))

    def list(self, holder: HolderView) -> tuple[list[ShareView], bool]:
        """The holder's shares, newest first, and whether the verifier answered (states are its)."""
        with self._sessions() as session:
            rows = session.scalars(select(StoredShare).where(StoredShare.holder_id == holder.id)
                                   .order_by(StoredShare.created_at.desc())).all()  # fmt: skip
        remote = self._remote(holder)
        return [
            self._view(r, None if remote is None else remote.get(r.id, {"expired": True})) for r in rows
        ], remote is not None

    def withdraw(self, holder: HolderView, share_id: str) -> None:
        row = self._row(holder, share_id)  # ownership first: another holder's share is NOT_FOUND
        self._verifier.withdraw_share(holder.holder_ref, row.id)
        with self._sessions.begin() as session:
            session.get_one(StoredShare, row.id).withdrawn_at = dt.datetime.now(dt.UTC)

    def dynamic_link(self, holder: HolderView, share_id: str) -> tuple[str, dt.datetime]:
        """The link of the current 30-second window (`<url>?c=<code>`) and when it stops working."""
        row = self._row(holder, share_id)
        if not row.dynamic:
            raise NotFound("Not a dynamic share", code=ErrorCode.SHARE_NOT_DYNAMIC)
        answer = self._verifier.dynamic_code(holder.holder_ref, row.id)
        url = self._cipher.decrypt(row.url_enc, f"wallet-share:{row.id}").decode()
        return f"{url}?c={answer['code']}", dt.datetime.fromisoformat(answer["validUntil"])

    def offline_code(self, holder: HolderView, share_id: str) -> str:
        """The offline QR code's content: the verification link `<node>/v#EC1:…` of the share's
        disclosure, at the node that keeps the share. A phone opens it at that node; a verifier
        with no network reads the `EC1:` payload from it (`ecert verify`)."""
        row = self._row(holder, share_id)
        card = self._vault.get(holder.id, row.certificate_id)
        ec1 = card.presentation.disclose(json.loads(row.fields)).to_ec1()
        node = share_link_node(self._cipher.decrypt(row.url_enc, f"wallet-share:{row.id}").decode())
        return verify_link(node, ec1)


@dataclass(frozen=True)
class AccessView:
    at: dt.datetime
    organisation: str
    region: str
    purpose: str
    certificate_id: str | None
    certificate_name: str
    fields: tuple[str, ...]
    verdict: str
    reason: str | None
    channel: str
    share_id: str | None
    anonymous: bool = False  # an open of a share link with no organisation behind it
    claimed_purpose: str | None = None  # what that visitor typed: unverified, never shown as a purpose
    ip_prefix: str | None = None
    user_agent: str | None = None
    reported_by: str | None = None  # the other region's node where it was verified, which reported it


@dataclass(frozen=True)
class AccessPage:
    """A page of the holder's access log, newest first: `older` is the cursor of the next, older
    page (None: this is the oldest), `own` how many of this wallet's own status checks it left out."""

    entries: list[AccessView]
    own: int
    older: str | None


def access_log(
    holder: HolderView, vault: Vault, verifier: VerifierClient, *, org_name: str
) -> tuple[list[AccessView], int]:
    """Every verification of the holder's certificates and shares, newest first (the newest
    page), and how many status checks made by this wallet for the holder were left out."""
    page = access_log_page(holder, vault, verifier, org_name=org_name)
    return page.entries, page.own


def access_log_page(
    holder: HolderView, vault: Vault, verifier: VerifierClient, *, org_name: str,
    before: str | None = None, limit: int | None = None,
) -> AccessPage:  # fmt: skip
    """A page of the verifications of the holder's certificates and shares, newest first, older
    than the cursor `before` (None: the newest), and how many status checks made by this wallet
    for the holder were left out (they are the holder looking, not others). The node answers only
    for the certificates it knows this wallet keeps for the holder, so any it does not know yet
    are bound first."""
    cards = vault.list(holder.id)
    by_digest = {c.digest: c for c in cards}
    vault.bind(holder, cards)
    entries, older = verifier.access_log_page(holder.holder_ref, before=before, limit=limit)
    out: list[AccessView] = []
    own = 0
    for e in entries:
        if (
            e.get("organisation") == org_name
            and e.get("purpose") == HOLDER_VIEW_PURPOSE
            and not e.get("shareId")
        ):
            own += 1
            continue
        card = by_digest.get(e.get("digest", ""))
        out.append(AccessView(
            dt.datetime.fromisoformat(e["at"]), e.get("organisation", ""), e.get("region", ""), e.get("purpose", ""),
            card.id if card else None, str(card.fields.get("name", "")) if card else "", tuple(e.get("fields") or ()),
            e.get("verdict", ""), e.get("reason"), e.get("channel", ""), e.get("shareId"), bool(e.get("anonymous")),
            e.get("claimedPurpose"), e.get("ipPrefix"), e.get("userAgent"), e.get("reportedBy"),
        ))  # fmt: skip
    out.sort(key=lambda a: a.at, reverse=True)
    return AccessPage(out, own, older)
