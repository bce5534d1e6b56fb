"""Signed trust snapshots: what a verifier needs to check a certificate with no network.

A node syncs its index to the head, then writes every agency, key, type grant and anchored batch
of the registry as of that block, with the status bits of each batch, and signs it with its
Ed25519 node key (the receipt key). A verifier that pinned that key (`ecert trust key`) checks
`EC1:` codes against the file alone (`ecert verify --offline`, `verifier.offline.SnapshotReader`).

File: UTF-8 JSON, gzip-compressed when the name ends in `.gz` (`trust-snapshot.json.gz`):

    {"snapshot": {
        "format": "ecert-trust-snapshot", "version": 2,
        "chainId": 31337, "registry": "0x…",
        "block": {"number": 1234, "hash": "0x…", "time": 1767225600},   the index's block and its time
        "createdAt": "2026-01-01T00:00:00.000Z",                          when the node wrote it
        "node": {"region": "330000", "keyId": "<16 hex>"},
        "authorities": [{"account", "region", "name"}],                  current
        "agencies": [{"code", "index", "region", "name", "registeredAt",
                      "suspensions": [[time, suspended, by], …],          full history, log order
                      "grants": [[time, typeCode, granted], …]}],         full history, log order
        "keys": [{"address", "agency", "validFrom", "addedAt", "retiredAt", "compromisedSince",
                  "changes": [[time, "retired" | "compromised", value], …]}],
        "nationalKeys": [{"keyId", "publicKey", "agency", "validFrom", "addedAt", "retiredAt",
                          "compromisedSince", "changes": […]}],           SM2 keys, as "keys"
        "batches": [{"root", "agency", "agencyIndex", "key", "type", "count", "anchoredAt", "block",
                     "suspended": {"<word>": "0x<mask>"}, "revoked": {"<word>": "0x<mask>"},
                     "revokedAll": true}]},                               status keys only when set
     "signature": "<base64 of the Ed25519 signature of the RFC 8785 bytes of `snapshot`>"}

Version 3 is a region's snapshot: `"scope": {"regions": ["330000"]}` after `version`, and only
the batches of agencies in those regions (GB/T 2260 prefix forms, as in policies); the trust
data stays whole (it is small), so an offline check of a certificate from another region says
"not covered by this snapshot" (`SNAPSHOT_OUT_OF_SCOPE`), never "not anchored". Deltas since a
snapshot, chained by the hash of each signed body, are `verifier.snapshot_delta`.

Version 2 added `nationalKeys` (the agencies' SM2 keys of the national co-seal: id = keccak256 of
the 64-byte public key `X ‖ Y`, both 0x-hex); a version 1 snapshot still loads, with no SM2 keys.

Status is kept as the contract stores it, not as its events: per batch, only the non-zero
256-bit words of the suspended and revoked bit fields (word `w`, bit `i` is certificate
`256 w + i`), as minimal hex, plus the whole-batch revocation. That is bounded by the batch's
size however often statuses changed (events grow with every suspend/reinstate and each carries
a full mask and a reason), it is empty for the common batch nobody touched, and it answers
exactly what `inspect` answers at the snapshot's block, which is all an offline check asks.
The price: reasons and since-when are not in the snapshot, and it cannot answer "as of T"
for status (`SnapshotReader` refuses `at`); trust data keeps its full history (it is small).

As with receipts, `node.keyId` is inside the signed object, so a signature cannot be passed off
as another key's; `load_snapshot` refuses a file whose key id is not the trusted key's, whose
signature does not verify, or that is malformed, with `EcertError` code `SNAPSHOT_INVALID`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func, select

from registry.certificate.merkle import keccak
from registry.error_codes import ErrorCode
from registry.errors import ConfigError, EcertError
from registry.indexer import Indexer, IndexInconsistent
from registry.indexer.indexer import index_scope
from registry.indexer.records import AgencyHistory, BatchRecord, KeyHistory, NationalKeyHistory, TrustView
from registry.indexer.snapshot import load_batches, load_trust
from registry.indexer.store import Batch, Block, IndexerState, table
from registry.settings import Settings
from verifier.policy import region_prefix
from verifier.receipts import ReceiptSigner, _public_key, canonical_bytes, key_id
from verifier.settings import VerifierSettings

if TYPE_CHECKING:
    from verifier.runtime import VerifierRuntime

__all__ = [
    "FORMAT",
    "Snapshot",
    "SnapshotInvalid",
    "TrustSnapshot",
    "build_snapshot",
    "default_snapshot_path",
    "load_snapshot",
    "node_signer",
    "parse_snapshot",
    "save_snapshot",
    "sign_snapshot",
    "snapshot_body",
    "write_snapshot",
]

log = logging.getLogger(__name__)

FORMAT = "ecert-trust-snapshot"
VERSION = 2
SCOPED_VERSION = 3  # a region's snapshot: `scope` says which regions' batches it holds
READABLE_VERSIONS = (1, 2, 3)  # 1: before the SM2 keys of the national co-seal
MAX_BYTES = 1 << 30  # decompressed; ~4 million batches. Refuses a gzip bomb before parsing it.
MAX_DEPTH = (
    16  # the format nests 6 deep; json.loads of deeper input can overflow the C stack in an ecert process
)
SYNC_ATTEMPTS = 3
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_INNERMOST = re.compile(r"[\[{][^\[\]{}]*[\]}]")
_BRACKET = re.compile(r"[\[\]{}]")


class SnapshotInvalid(EcertError):
    """The snapshot is not signed by the trusted key, or not a snapshot at all: verify nothing with it."""

    code = ErrorCode.SNAPSHOT_INVALID


# ─── the loaded snapshot ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class TrustSnapshot:
    """A verified snapshot, as the indexer's own records (so the indexer's rules answer from it).

    `batch(root)`, `trust` and `block_number` are what `registry.indexer.History` reads from its view.
    """

    chain_id: int
    registry: str
    block_number: int
    block_hash: bytes | None
    block_time: int
    created_at: dt.datetime
    region: str
    key_id: str
    trust: TrustView
    batches: Mapping[bytes, BatchRecord]
    scope: tuple[str, ...] = ()  # the regions whose batches it holds; () = every region
    digest: bytes = b""  # sha256 of the signed body's RFC 8785 bytes: what a delta chains to

    def batch(self, root: bytes) -> BatchRecord | None:
        return self.batches.get(bytes(root))

    def covers(self, region: int) -> bool:
        """Whether the batches of an agency of `region` are all here."""
        return not self.scope or f"{region:06d}".startswith(tuple(region_prefix(r) for r in self.scope))

    @property
    def indexed_at(self) -> dt.datetime:
        return self.created_at

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        """How long ago the node wrote it (never negative: a verifier's clock may lag the node's)."""
        return max(dt.timedelta(0), (now or dt.datetime.now(dt.UTC)) - self.created_at)


Snapshot = (
    TrustSnapshot  # the name the verifier speaks of; `registry.indexer.Snapshot` is the live index view
)


# ─── building ────────────────────────────────────────────────────────────────────────────


def node_signer(settings: VerifierSettings, core: Settings) -> ReceiptSigner:
    """The node's Ed25519 key (the receipt key, made on first use): it signs receipts and snapshots."""
    return ReceiptSigner.load_or_create(
        settings.receipt_key_file or settings.folder(core) / "receipt-key.pem"
    )


def default_snapshot_path(settings: VerifierSettings, core: Settings) -> Path:
    return settings.folder(core) / "trust-snapshot.json.gz"


def snapshot_body(
    engine: Engine,
    *,
    chain_id: int,
    registry: str,
    region: str,
    block_time: Callable[[int], int] | None = None,
    now: dt.datetime | None = None,
    regions: Sequence[str] = (),
    upto_block: int | None = None,
) -> dict[str, Any]:
    """The unsigned snapshot of the index in `engine` at its indexed block (or at `upto_block`,
    which the index must have passed: a delta's base).

    `regions` (GB/T 2260 codes or prefix forms, `330000`, `3301xx`) keeps only the batches of
    agencies in those regions: a region's snapshot (version 3, with `scope`); trust data stays
    whole, so a certificate from elsewhere is told apart from one not anchored.
    `block_time(n)` is asked for the block's time only if the index did not record that block.
    """
    state, blocks = table(IndexerState), table(Block)
    with engine.connect() as conn:
        row = conn.execute(select(state.c.block_number, state.c.block_hash)).first()
        if row is None or row.block_number < 0:
            raise EcertError(
                "The index is empty: sync it before taking a snapshot", code=ErrorCode.INDEX_EMPTY
            )
        number, block_hash = row.block_number, row.block_hash
        if upto_block is not None and upto_block != number:
            number = upto_block
            block_hash = conn.execute(select(blocks.c.hash).where(blocks.c.number == number)).scalar()
        recorded = conn.execute(select(blocks.c.timestamp).where(blocks.c.number == number)).scalar()
        trust = load_trust(conn, number)
        total = conn.execute(
            select(func.count()).select_from(table(Batch)).where(table(Batch).c.block_number <= number)
        ).scalar_one()
        batches = load_batches(conn, number, limit=total) if total else {}
    scope = _within_index(engine, sorted(set(regions)))
    if scope:
        prefixes = tuple(region_prefix(r) for r in scope)
        batches = {
            root: b for root, b in batches.items()
            if (agency := trust.agencies.get(b.agency_code)) is not None
            and f"{agency.region:06d}".startswith(prefixes)
        }  # fmt: skip
    if recorded is None:
        if block_time is None:
            raise EcertError(
                f"The index does not know the time of block {number}", code=ErrorCode.INDEX_ERROR
            )
        recorded = block_time(number)
    created = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return {
        "format": FORMAT,
        "version": SCOPED_VERSION if scope else VERSION,
        **({"scope": {"regions": scope}} if scope else {}),
        "chainId": chain_id,
        "registry": registry,
        "block": {"number": number, "hash": _hex(block_hash) if block_hash else None, "time": recorded},
        "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "node": {"region": region},
        **_records_json(trust, sorted(batches.values(), key=lambda b: (b.block_number, b.log_index))),
    }


def _records_json(trust: TrustView, batches: list[BatchRecord]) -> dict[str, Any]:
    """A body's records: authorities, agencies, keys, SM2 keys and batches, in the file's order."""
    return {
        "authorities": [
            {"account": account, "region": region, "name": name}
            for account, (region, name) in sorted(trust.authorities.items())
        ],
        "agencies": [_agency_json(a) for a in sorted(trust.agencies.values(), key=lambda a: a.agency_index)],
        "keys": [_key_json(k) for k in _keys_in_order(trust)],
        "nationalKeys": [_national_key_json(k) for k in _national_keys_in_order(trust)],
        "batches": [_batch_json(b) for b in batches],
    }


def _within_index(engine: Engine, wanted: list[str]) -> list[str]:
    """The snapshot's regions: those asked, which a regional index must hold (default: its own)."""
    held = index_scope(engine)
    if not held:
        return wanted
    if not wanted:
        return sorted(held)
    prefixes = tuple(region_prefix(r) for r in held)
    if outside := [r for r in wanted if not region_prefix(r).startswith(prefixes)]:
        raise EcertError(
            f"This node indexes the batches of {', '.join(held)} only; it cannot snapshot {', '.join(outside)}",
            code=ErrorCode.CONFIG_INVALID,
        )
    return wanted


def sign_snapshot(body: dict[str, Any], signer: ReceiptSigner) -> dict[str, Any]:
    """`{"snapshot": body with node.keyId, "signature": base64}`: the same scheme as receipts."""
    signed = signer.sign(body)  # adds node.keyId and signs the RFC 8785 bytes
    return {"snapshot": signed["receipt"], "signature": signed["signature"]}


def build_snapshot(
    runtime: VerifierRuntime, *, now: dt.datetime | None = None, regions: Sequence[str] = ()
) -> dict[str, Any]:
    """Sync the node's index to the head, then the signed snapshot of it (of `regions`' batches only, if given)."""
    sync_index(runtime)
    client, registry = runtime.workspace.client, runtime.workspace.registry
    body = snapshot_body(
        runtime.engine, chain_id=client.chain_id, registry=registry.address, region=runtime.settings.region,
        block_time=block_time_of(runtime), now=now, regions=regions,
    )  # fmt: skip
    return sign_snapshot(body, runtime.receipts)


def block_time_of(runtime: VerifierRuntime) -> Callable[[int], int]:
    """A block's time from the chain, for a block the index did not record."""
    client = runtime.workspace.client
    return lambda n: int(client.guard(lambda: client.w3.eth.get_block(n))["timestamp"])


def sync_index(runtime: VerifierRuntime) -> None:
    """Bring the node's index to the chain head (trying again if the node's own indexer moved it meanwhile)."""
    ws = runtime.workspace
    client, registry = ws.client, ws.registry
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        indexer = Indexer(  # the index's own scope (a regional node's: its regions)
            client, registry, runtime.engine,
            confirmations=runtime.settings.index_confirmations, start_block=ws.deployment.block_number,
        )  # fmt: skip
        try:
            indexer.sync()
            break
        except (
            IndexInconsistent
        ):  # the node's own indexer (`ecert serve verifier`) moved meanwhile, or a reorg
            if attempt == SYNC_ATTEMPTS:
                raise
            log.info("index moved during the snapshot's sync: syncing again")


def write_snapshot(
    runtime: VerifierRuntime,
    path: Path | str | None = None,
    *,
    regions: Sequence[str] = (),
    since: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Build the node's snapshot (or, `since` a snapshot or delta of this node, the delta to now)
    and write it to `path` (default `<home>/verifier-<region>/trust-snapshot.json.gz`, a delta
    `trust-delta-<block>.json.gz` beside it). Returns the path and the signed document."""
    folder = default_snapshot_path(runtime.settings, runtime.workspace.settings)
    if since is not None:
        from verifier.snapshot_delta import build_delta

        document = build_delta(runtime, since)
        folder = folder.with_name(f"trust-delta-{document['snapshot']['block']['number']}.json.gz")
    else:
        document = build_snapshot(runtime, regions=regions)
    path = Path(path) if path is not None else folder
    save_snapshot(document, path)
    return path, document


def save_snapshot(document: dict[str, Any], path: Path | str) -> Path:
    """Write atomically (aside, then renamed); gzip (reproducible: no name, no time) if the name ends in `.gz`."""
    path = Path(path)
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    aside.write_bytes(data)
    os.replace(aside, path)
    return path


# ─── loading ─────────────────────────────────────────────────────────────────────────────


def load_snapshot(path: Path | str, trusted_public_key: Ed25519PublicKey | bytes | str) -> TrustSnapshot:
    """The snapshot in `path` if `trusted_public_key` signed it; `SnapshotInvalid` otherwise.

    The key is an Ed25519 public key, its PEM (as `ecert trust key` prints it) or its raw 32 bytes.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotInvalid(
            f"Cannot read the trust snapshot {path}: {exc.strerror}", path=str(path)
        ) from exc
    return parse_snapshot(data, trusted_public_key, name=str(path))


def parse_snapshot(
    data: bytes, trusted_public_key: Ed25519PublicKey | bytes | str, *, name: str = "snapshot"
) -> TrustSnapshot:
    """Check the signature first, then read the records (a signed but malformed body is refused too)."""
    body = _verified_body(data, trusted_public_key, name)
    try:
        return _read_body(body, hashlib.sha256(canonical_bytes(body)).digest())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotInvalid(f"{name} is signed but malformed: {exc}") from exc


def _verified_body(
    data: bytes, trusted_public_key: Ed25519PublicKey | bytes | str, name: str
) -> dict[str, Any]:
    """The signed body of a snapshot or delta in `data`, if `trusted_public_key` signed it."""
    try:
        key = _public_key(trusted_public_key)
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise EcertError(
            "The trusted key is not an Ed25519 public key (PEM or raw)", code=ErrorCode.TRUST_KEY_INVALID
        ) from exc
    document = _decode(data, name)
    if not isinstance(document, dict) or set(document) != {"snapshot", "signature"}:
        raise SnapshotInvalid(f"{name} is not a signed trust snapshot")
    body, signature = document["snapshot"], document["signature"]
    node = body.get("node") if isinstance(body, dict) else None
    signed_by = node.get("keyId") if isinstance(node, dict) else None
    trusted = key_id(key)
    if signed_by != trusted:
        raise SnapshotInvalid(
            f"{name} is signed by key {signed_by!s}, not by the trusted key {trusted}",
            key_id=signed_by,
            trusted=trusted,
        )
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical_bytes(body))
    except (InvalidSignature, ValueError, TypeError, binascii.Error, RecursionError) as exc:
        raise SnapshotInvalid(
            f"{name}: the signature does not verify (the file was changed or damaged)", key_id=trusted
        ) from exc
    signed: dict[str, Any] = body  # a dict: its `node` was read above
    return signed


def _decode(data: bytes, name: str) -> Any:
    try:
        if data[:2] == b"\x1f\x8b":
            decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            data = decompressor.decompress(data, MAX_BYTES)
            if decompressor.unconsumed_tail:
                raise SnapshotInvalid(f"{name} is larger than {MAX_BYTES} bytes uncompressed")
        elif len(data) > MAX_BYTES:
            raise SnapshotInvalid(f"{name} is larger than {MAX_BYTES} bytes")
        text = data.decode("utf-8")
        if not _shallow(text, MAX_DEPTH):
            raise SnapshotInvalid(
                f"{name} is not a trust snapshot (nested deeper than {MAX_DEPTH}, or unbalanced)"
            )
        return json.loads(text)
    except (zlib.error, EOFError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SnapshotInvalid(f"{name} is not a trust snapshot (not JSON, or damaged gzip)") from exc


def _shallow(text: str, limit: int) -> bool:
    """True if `text`'s brackets (outside strings) balance and nest at most `limit` deep, checked
    before `json.loads` sees it: ecert processes run with a raised recursion limit (py_ecc), so
    deep nesting would crash the interpreter instead of raising. A few regex passes, all in C."""
    text = _STRING.sub("0", text)
    for _ in range(limit):
        text, found = _INNERMOST.subn("0", text)
        if not found:
            break
    return _BRACKET.search(text) is None


def _read_body(body: dict[str, Any], digest: bytes = b"") -> TrustSnapshot:
    if body["format"] != FORMAT or body["version"] not in READABLE_VERSIONS:
        raise ValueError(
            f"format {body['format']!r} version {body['version']!r}, expected {FORMAT!r} version "
            + " or ".join(map(str, READABLE_VERSIONS))
        )
    block = body["block"]
    agencies_by_code: dict[str, AgencyHistory] = {}
    keys: dict[str, KeyHistory] = {}
    keys_of: dict[str, list[str]] = {}
    index_of = {_str(a["code"]): _int(a["index"]) for a in body["agencies"]}
    for k in body["keys"]:
        history = _key_from(k, index_of)
        if history.address.lower() in keys:
            raise ValueError(f"key {history.address} listed twice")
        keys[history.address.lower()] = history
        keys_of.setdefault(history.agency_code, []).append(history.address)
    national_keys: dict[bytes, NationalKeyHistory] = {}
    national_of: dict[str, list[bytes]] = {}
    for k in body["nationalKeys"] if body["version"] >= 2 else []:
        national = _national_key_from(k)
        if national.key_id in national_keys:
            raise ValueError(f"SM2 key 0x{national.key_id.hex()} listed twice")
        national_keys[national.key_id] = national
        national_of.setdefault(national.agency_code, []).append(national.key_id)
    for a in body["agencies"]:
        agency = AgencyHistory(
            _str(a["code"]), _int(a["index"]), _int(a["region"]), _str(a["name"]), _int(a["registeredAt"]),
            tuple((_int(t), _bool(s), _str(by)) for t, s, by in a["suspensions"]),
            tuple((_int(t), _str(c), _bool(g)) for t, c, g in a["grants"]),
            tuple(keys_of.get(a["code"], ())), tuple(national_of.get(a["code"], ())),
        )  # fmt: skip
        agencies_by_code[agency.code] = agency
    authorities = {_str(a["account"]): (_int(a["region"]), _str(a["name"])) for a in body["authorities"]}
    trust = TrustView(
        agencies_by_code,
        {a.agency_index: a for a in agencies_by_code.values()},
        keys,
        authorities,
        national_keys,
    )
    batches: dict[bytes, BatchRecord] = {}
    for b in body["batches"]:
        record = _batch_from(b)
        if record.root in batches:
            raise ValueError(f"batch 0x{record.root.hex()} listed twice")
        batches[record.root] = record
    created = dt.datetime.fromisoformat(_str(body["createdAt"]))
    if created.tzinfo is None:
        raise ValueError("createdAt has no time zone")
    return TrustSnapshot(
        chain_id=_int(body["chainId"]), registry=_str(body["registry"]), block_number=_int(block["number"]),
        block_hash=_bytes(block["hash"]) if block["hash"] is not None else None, block_time=_int(block["time"]),
        created_at=created, region=_str(body["node"]["region"]), key_id=_str(body["node"]["keyId"]),
        trust=trust, batches=batches, scope=_scope(body), digest=digest,
    )  # fmt: skip


def _scope(body: Mapping[str, Any]) -> tuple[str, ...]:
    """A version 3 snapshot's regions (each a valid region pattern); () for a whole one."""
    if body["version"] < SCOPED_VERSION:
        return ()
    regions = body["scope"]["regions"]
    if not isinstance(regions, list) or not regions:
        raise ValueError("scope.regions must be a non-empty list")
    for region in regions:
        try:
            region_prefix(_str(region))
        except ConfigError as exc:
            raise ValueError(f"scope: {exc.message}") from exc
    return tuple(regions)


# ─── records ⇄ JSON ──────────────────────────────────────────────────────────────────────


def to_body(snapshot: TrustSnapshot) -> dict[str, Any]:
    """A loaded snapshot's records back as a body's JSON (what a delta is applied to)."""
    return {
        "format": FORMAT, "version": SCOPED_VERSION if snapshot.scope else VERSION,
        **({"scope": {"regions": list(snapshot.scope)}} if snapshot.scope else {}),
        "chainId": snapshot.chain_id, "registry": snapshot.registry,
        "block": {
            "number": snapshot.block_number, "hash": _hex(snapshot.block_hash) if snapshot.block_hash else None,
            "time": snapshot.block_time,
        },
        "createdAt": snapshot.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "node": {"region": snapshot.region, "keyId": snapshot.key_id},
        **_records_json(snapshot.trust, sorted(snapshot.batches.values(), key=lambda b: (b.block_number, b.root))),
    }  # fmt: skip


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _agency_json(a: AgencyHistory) -> dict[str, Any]:
    return {
        "code": a.code, "index": a.agency_index, "region": a.region, "name": a.name, "registeredAt": a.registered_at,
        "suspensions": [[t, s, by] for t, s, by in a.suspensions], "grants": [[t, c, g] for t, c, g in a.grants],
    }  # fmt: skip


def _keys_in_order(trust: TrustView) -> list[KeyHistory]:
    """Each agency's keys in the order they were added, agencies by index; then keys of unknown agencies."""
    ordered: list[KeyHistory] = []
    for agency in sorted(trust.agencies.values(), key=lambda a: a.agency_index):
        ordered += [trust.keys[address.lower()] for address in agency.keys if address.lower() in trust.keys]
    listed = {k.address.lower() for k in ordered}
    return ordered + sorted(
        (k for k in trust.keys.values() if k.address.lower() not in listed),
        key=lambda k: (k.added_at, k.address),
    )


def _key_json(k: KeyHistory) -> dict[str, Any]:
    now = k.current
    return {
        "address": k.address, "agency": k.agency_code, "validFrom": k.valid_from, "addedAt": k.added_at,
        "retiredAt": now.retired_at, "compromisedSince": now.compromised_since,
        "changes": [[t, kind, value] for t, kind, value in k.changes],
    }  # fmt: skip


def _key_from(k: Mapping[str, Any], index_of: Mapping[str, int]) -> KeyHistory:
    changes = tuple((_int(t), _kind(kind), _int(value)) for t, kind, value in k["changes"])
    history = KeyHistory(
        _str(k["address"]),
        _str(k["agency"]),
        index_of.get(k["agency"], 0),
        _int(k["validFrom"]),
        _int(k["addedAt"]),
        changes,
    )
    now = history.current
    if (now.retired_at, now.compromised_since) != (_int(k["retiredAt"]), _int(k["compromisedSince"])):
        raise ValueError(f"key {history.address}: retiredAt/compromisedSince disagree with its changes")
    return history


def _national_keys_in_order(trust: TrustView) -> list[NationalKeyHistory]:
    """As `_keys_in_order`: each agency's SM2 keys in the order added, agencies by index, then the rest."""
    ordered: list[NationalKeyHistory] = []
    for agency in sorted(trust.agencies.values(), key=lambda a: a.agency_index):
        ordered += [trust.national_keys[i] for i in agency.national_keys if i in trust.national_keys]
    listed = {k.key_id for k in ordered}
    return ordered + sorted(
        (k for k in trust.national_keys.values() if k.key_id not in listed),
        key=lambda k: (k.added_at, k.key_id),
    )


def _national_key_json(k: NationalKeyHistory) -> dict[str, Any]:
    now = k.current
    return {
        "keyId": _hex(k.key_id), "publicKey": _hex(k.public_key), "agency": k.agency_code, "validFrom": k.valid_from,
        "addedAt": k.added_at, "retiredAt": now.retired_at, "compromisedSince": now.compromised_since,
        "changes": [[t, kind, value] for t, kind, value in k.changes],
    }  # fmt: skip


def _national_key_from(k: Mapping[str, Any]) -> NationalKeyHistory:
    public_key = _bytes(k["publicKey"], 64)
    sm2_id = _bytes(k["keyId"], 32)
    if keccak(public_key) != sm2_id:
        raise ValueError(f"SM2 key 0x{sm2_id.hex()}: the id is not keccak256 of its public key")
    history = NationalKeyHistory(
        sm2_id, public_key, _str(k["agency"]), _int(k["validFrom"]), _int(k["addedAt"]),
        tuple((_int(t), _kind(kind), _int(value)) for t, kind, value in k["changes"]),
    )  # fmt: skip
    now = history.current
    if (now.retired_at, now.compromised_since) != (_int(k["retiredAt"]), _int(k["compromisedSince"])):
        raise ValueError(f"SM2 key 0x{sm2_id.hex()}: retiredAt/compromisedSince disagree with its changes")
    return history


def _batch_json(b: BatchRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "root": _hex(b.root), "agency": b.agency_code, "agencyIndex": b.agency_index, "key": b.key, "type": b.type_code,
        "count": b.count, "anchoredAt": b.anchored_at, "block": b.block_number,
    }  # fmt: skip
    for name, bits in (("suspended", b.suspended_bits), ("revoked", b.revoked_bits)):
        words = {str(word): hex(mask) for word, mask in sorted(bits.items()) if mask}
        if words:
            out[name] = words
    if b.revoked_whole:
        out["revokedAll"] = True
    return out


def _batch_from(b: Mapping[str, Any]) -> BatchRecord:
    count = _int(b["count"])

    def bits(name: str) -> dict[int, int]:
        words = {}
        for word, mask in b.get(name, {}).items():
            w, m = int(_str(word)), int(_str(mask), 16)
            if not (0 <= w <= (count - 1) >> 8 and 0 < m < 1 << 256):
                raise ValueError(f"batch {b['root']}: {name} word {word} out of range")
            words[w] = m
        return words

    return BatchRecord(
        root=_bytes(b["root"], 32), agency_code=_str(b["agency"]), agency_index=_int(b["agencyIndex"]), key=_str(b["key"]),
        type_code=_str(b["type"]), count=count, anchored_at=_int(b["anchoredAt"]), block_number=_int(b["block"]),
        log_index=0, tx_hash=b"", suspended_bits=bits("suspended"), revoked_bits=bits("revoked"),
        revoked_whole=_bool(b.get("revokedAll", False)),
    )  # fmt: skip


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _kind(value: Any) -> str:
    if value not in ("retired", "compromised"):
        raise ValueError(f"unknown key change {value!r}")
    kind: str = value
    return kind


def _bytes(value: Any, length: int | None = None) -> bytes:
    text = _str(value)
    if not text.startswith("0x"):
        raise ValueError(f"expected 0x-hex, got {value!r}")
    raw = bytes.fromhex(text[2:])
    if length is not None and len(raw) != length:
        raise ValueError(f"expected {length} bytes, got {len(raw)}")
    return raw
