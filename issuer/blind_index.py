"""A keyed blind index of certificates (issue 12, point 4): staff find a certificate by its
number, its holder's name or its holder's code by exact match, although personal fields are only
stored encrypted (`Certificate.sealed_fields`).

Each indexed value is normalised (`normalise`: NFKC, so full-width letters, digits and
parentheses read as their ASCII forms; spaces removed from numbers and codes, which are
upper-cased; runs of spaces in names made one, names case-folded) and stored as
`HMAC-SHA256(key, kind ␟ agency ␟ value)`, its first 8 bytes as a signed 64-bit integer, in the
certificate's own row: a column and an index per kind (migration 0012; 0007 had a row per
certificate and kind, 0009 a row per certificate in a table of its own, whose header, key and
agency cost more than the digests, and 16 bytes a digest). Truncation can make two values
collide: at 64 bits a search among 10 million certificates meets a stray one with a chance of
about 5·10⁻¹³, and it would only add a wrong certificate to the hits, shown with its own
(masked) fields, never hide the right one. The key is not in the database: `<home>/issuer/blind-index.key` (32 random
bytes, made 0600 on first use, `registry.secrets_files`). Someone with the database alone can
neither read the values nor test guesses; the agency in the hashed text keeps two agencies' rows
of one person unlinkable. An exact value finds its rows; a part of one finds nothing (by design:
no prefix or fuzzy search over personal data).

Digests are written at intake (`IssuerService._store`: made by the intake's worker processes
beside the seal, inserted with the certificate, so a certificate is found as soon as its job is
stored) when the service has an index (`attach`), and for
certificates stored before (or by a service without one) by `ecert issuer reindex` (`reindex`),
which decrypts them with the data key.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from issuer.models import Certificate
from registry.secrets_files import load_or_create_secret

if TYPE_CHECKING:
    from issuer.runtime import IssuerRuntime

__all__ = ["COLUMNS", "KEY_FILE", "KINDS", "BlindIndex", "attach", "blind_index_for", "normalise", "reindex"]

KEY_FILE = "blind-index.key"  # in <home>/issuer
NUMBER, HOLDER_NAME, HOLDER_CODE = "number", "holder_name", "holder_code"
KINDS = (NUMBER, HOLDER_NAME, HOLDER_CODE)
COLUMNS = {NUMBER: "number_digest", HOLDER_NAME: "name_digest", HOLDER_CODE: "code_digest"}  # of a row
DIGEST_BYTES = 8  # a BIGINT: 20 bytes an index entry, where 16 bytes of BYTEA took ~40
_SEP = "\x1f"
UPDATE_QMARK = "UPDATE certificates SET number_digest = ?, name_digest = ?, code_digest = ? WHERE id = ?"
UPDATE_FORMAT = UPDATE_QMARK.replace("?", "%s")  # psycopg
Digests = tuple[int | None, int | None, int | None]  # number, holder name, holder code (None: empty)
Row = tuple[int | None, int | None, int | None, int]  # digests, certificate id (UPDATE's order)


def normalise(kind: str, value: object) -> str:
    """The form of `value` that is hashed: equal for what a person would call the same value."""
    text = value if type(value) is str else str(value)
    if not text.isascii():  # ASCII is its own NFKC form: most numbers and codes skip this
        text = unicodedata.normalize("NFKC", text)
    if kind == HOLDER_NAME:
        return " ".join(text.split()).casefold()
    return "".join(text.split()).upper()


class BlindIndex:
    """The keyed digests of one issuer (its key from `blind_index_for`): HMAC-SHA256 (RFC 2104)
    with the key's inner and outer SHA-256 states computed once, so that each digest costs two
    state copies instead of a new HMAC (intake makes three per certificate)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def _mac(self, message: bytes) -> int:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return int.from_bytes(outer.digest()[:DIGEST_BYTES], "big", signed=True)

    def digest(self, agency: str, kind: str, value: object) -> int | None:
        """The digest of `value` as a `kind` of `agency`; None for an empty value."""
        text = normalise(kind, value)
        return self._mac(f"{kind}{_SEP}{agency}{_SEP}{text}".encode()) if text else None

    def digests(self, agency: str, number: object, name: object, code: object) -> Digests:
        """The digests of one certificate's number, holder name and holder code (None for an
        empty value). Made by the intake's worker processes, beside the seal: three 16-byte
        strings pickle back cheaply and the storing thread only inserts."""
        mac, within = self._mac, f"{_SEP}{agency}{_SEP}"
        found = []
        for kind, value in ((NUMBER, number), (HOLDER_NAME, name), (HOLDER_CODE, code)):
            text = "" if value is None else normalise(kind, value)
            found.append(mac(f"{kind}{within}{text}".encode()) if text else None)
        return found[0], found[1], found[2]

    def row(self, agency: str, certificate_id: int, number: object, name: object, code: object) -> Row:
        """What `store_digests` writes for one certificate."""
        return (*self.digests(agency, number, name, code), certificate_id)


def record_values(record: Mapping[str, Any], identifier: str) -> tuple[object, object, object]:
    """(number, holder name, holder code) of an accepted intake record, as `build_fields` reads
    it (nested or dotted keys; no number means the identifier's serial)."""
    holder = record.get("holder")
    if isinstance(holder, Mapping):
        name, code = holder.get("name"), holder.get("code")
    else:
        name, code = record.get("holder.name"), record.get("holder.code")
    number = record.get("number")
    if number is None or number == "":
        number = identifier.rsplit(".", 3)[1]  # <root>.<type>.<issuer>.<serial>.<version>.<check>
    return number, name, code


def field_values(fields: Mapping[str, Any]) -> tuple[object, object, object]:
    """(number, holder name, holder code) of a certificate's (decrypted) fields."""
    holder = fields.get("holder") or {}
    return fields.get("number"), holder.get("name"), holder.get("code")


def key_path(home: Path) -> Path:
    return home / "issuer" / KEY_FILE


def blind_index_for(runtime: IssuerRuntime) -> BlindIndex:
    """The runtime's index, its key read from (or made 0600 in) `<home>/issuer/blind-index.key`."""
    return BlindIndex(load_or_create_secret(key_path(runtime.workspace.settings.home)))


def attach(runtime: IssuerRuntime) -> BlindIndex:
    """Give the runtime's service its index (if it has none yet), so that intake fills it."""
    service = runtime.service
    if service.blind_index is None:
        service.blind_index = blind_index_for(runtime)
    return service.blind_index


def store_digests(session: Session, rows: list[Row]) -> int:
    """Write certificates' digests in one executemany, straight to the driver; how many."""
    if rows:
        connection = session.connection()
        update = UPDATE_QMARK if connection.dialect.paramstyle == "qmark" else UPDATE_FORMAT
        connection.exec_driver_sql(update, rows)  # a list of tuples: one executemany
    return len(rows)


def reindex(
    sessions: sessionmaker[Session],
    index: BlindIndex,
    data_key: bytes,
    *,
    agency: str | None = None,
    everything: bool = False,
    chunk: int = 2_000,
) -> int:
    """Index the certificates that have no digests (with `everything`, all of them again, e.g.
    after a new key), of one agency or all; how many certificates were indexed. Each chunk is
    its own transaction: an interrupted run is taken up by the next one."""
    from issuer.sealed_fields import open_fields
    from registry.certificate.canonical import leaf_value, unflatten
    from registry.crypto import DataCipher

    cipher = DataCipher(data_key)
    if everything:
        with sessions.begin() as session:
            removal = update(Certificate).values(number_digest=None, name_digest=None, code_digest=None)
            if agency is not None:
                removal = removal.where(Certificate.agency_code == agency)
            session.execute(removal)
    done, after = 0, 0
    while True:
        query = (
            select(Certificate.id, Certificate.identifier, Certificate.agency_code, Certificate.sealed_fields)
            .where(Certificate.id > after)
            .where(Certificate.name_digest.is_(None))  # a holder always has a name
            .order_by(Certificate.id)
            .limit(chunk)
        )
        if agency is not None:
            query = query.where(Certificate.agency_code == agency)
        with sessions.begin() as session:
            found = session.execute(query).all()
            if not found:
                return done
            rows: list[Row] = []
            for cert_id, identifier, agency_code, sealed in found:
                leaves = open_fields(cipher, sealed, identifier)
                fields = unflatten((leaf.path, leaf_value(leaf)) for leaf in leaves)
                rows.append(index.row(agency_code, cert_id, *field_values(fields)))
            store_digests(session, rows)
        done += len(found)
        after = found[-1][0]
