"""Trust snapshot deltas: what changed since a snapshot, so a rural counter downloads kilobytes
a day instead of the registry.

A delta is signed like a snapshot (the node's Ed25519 key over the RFC 8785 bytes of its body)
and chained by hash: its `base` names the block and the sha256 of the signed body it follows (a
snapshot's, or the previous delta's). A verifier applies deltas in order to the snapshot it
holds (`apply_delta`) and refuses one that does not chain to what it holds
(`SNAPSHOT_DELTA_UNCHAINED`): a missing day, a delta of another node, region or chain.

    {"snapshot": {
        "format": "ecert-trust-delta", "version": 1,
        "base": {"block": 1200, "digest": "0x<sha256 of the base's signed body>"},
        "scope": {"regions": ["330000"]},             absent for a whole-registry delta
        "chainId", "registry", "block", "createdAt", "node",    as in a snapshot
        "authorities": [...],                          whole (a few dozen)
        "agencies": [...], "keys": [...], "nationalKeys": [...], "batches": [...],
                                                       only entries new or changed since the base,
                                                       each whole, in the snapshot's JSON
        "removed": {"agencies": [code], "keys": [address], "nationalKeys": [keyId], "batches": [root]}},
                                                       gone since the base: a reorganised chain
     "signature": "<base64>"}

The node computes a delta from its index alone, as of the base's block and as of now
(`delta_body`): it needs the base file only for its block, hash and scope. A base whose block
the index recorded with another hash (the chain was reorganised under it) is refused: take a
full snapshot then.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from web3.exceptions import BlockNotFound

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.indexer.store import Block, table
from verifier.receipts import canonical_bytes
from verifier.snapshot import (
    FORMAT,
    SCOPED_VERSION,
    VERSION,
    SnapshotInvalid,
    TrustSnapshot,
    _read_body,
    _verified_body,
    block_time_of,
    load_snapshot,
    sign_snapshot,
    snapshot_body,
    sync_index,
    to_body,
)

if TYPE_CHECKING:
    from verifier.runtime import VerifierRuntime

DELTA_FORMAT = "ecert-trust-delta"
DELTA_VERSION = 1
# Each kind of entry in a body, and the field that names an entry.
ENTRIES = {"agencies": "code", "keys": "address", "nationalKeys": "keyId", "batches": "root"}


class DeltaUnchained(EcertError):
    """The delta does not follow the snapshot held: apply the missing ones first, or start again
    from a full snapshot."""

    code = ErrorCode.SNAPSHOT_DELTA_UNCHAINED


def delta_body(
    engine: Engine,
    base: dict[str, Any],
    *,
    chain_id: int,
    registry: str,
    region: str,
    block_time: Callable[[int], int] | None = None,
    now: dt.datetime | None = None,
    block_hash_of: Callable[[int], bytes | None] | None = None,
) -> dict[str, Any]:
    """The unsigned delta from `base` (the signed body of a snapshot or delta this node made) to
    the index's block now, with the base's scope.

    The delta is the index as of the base's block against now, so the base's block must still be
    on the chain: the index recorded it with the same hash, or the chain says so
    (`block_hash_of`). Otherwise (a reorganised chain, or an index rebuilt since) it is refused:
    the holder takes a full snapshot."""
    base_block, scope = base["block"], base.get("scope", {}).get("regions", [])
    if (base["chainId"], base["registry"]) != (chain_id, registry):
        raise DeltaUnchained("The base snapshot is of another chain or registry than this node's")
    if not _still_on_chain(engine, base_block["number"], base_block["hash"], block_hash_of):
        raise DeltaUnchained(
            f"Block {base_block['number']} of the base snapshot is not known to be on the chain any more (it was "
            "reorganised, or this index was rebuilt since): take a full snapshot"
        )
    common = {"chain_id": chain_id, "registry": registry, "region": region, "regions": scope}
    before = snapshot_body(engine, **common, block_time=block_time, upto_block=base_block["number"])
    after = snapshot_body(engine, **common, block_time=block_time, now=now)
    changed: dict[str, list[dict[str, Any]]] = {}
    removed: dict[str, list[str]] = {}
    for kind, name in ENTRIES.items():
        old = {entry[name]: entry for entry in before[kind]}
        new = {entry[name]: entry for entry in after[kind]}
        changed[kind] = [entry for key, entry in new.items() if old.get(key) != entry]
        removed[kind] = sorted(key for key in old if key not in new)
    return {
        "format": DELTA_FORMAT,
        "version": DELTA_VERSION,
        "base": {"block": base_block["number"], "digest": "0x" + digest_of(base).hex()},
        **({"scope": {"regions": scope}} if scope else {}),
        "chainId": chain_id,
        "registry": registry,
        "block": after["block"],
        "createdAt": after["createdAt"],
        "node": after["node"],
        "authorities": after["authorities"],
        **changed,
        "removed": removed,
    }


def _still_on_chain(
    engine: Engine, number: int, expected: str | None, block_hash_of: Callable[[int], bytes | None] | None
) -> bool:
    if expected is None:
        return False
    with engine.connect() as conn:
        recorded = conn.execute(select(table(Block).c.hash).where(table(Block).c.number == number)).scalar()
    if recorded is not None:
        return "0x" + bytes(recorded).hex() == expected
    on_chain = block_hash_of(number) if block_hash_of is not None else None
    return on_chain is not None and "0x" + bytes(on_chain).hex() == expected


def build_delta(runtime: VerifierRuntime, since: Path) -> dict[str, Any]:
    """Sync the node's index, then the signed delta from `since` (a snapshot or delta this node signed)."""
    try:
        data = Path(since).read_bytes()
    except OSError as exc:
        raise SnapshotInvalid(f"Cannot read the base snapshot {since}: {exc.strerror}") from exc
    base = _verified_body(data, runtime.receipts.public_key(), str(since))
    if base.get("format") not in (FORMAT, DELTA_FORMAT):
        raise SnapshotInvalid(f"{since} is neither a trust snapshot nor a delta")
    sync_index(runtime)
    client, registry = runtime.workspace.client, runtime.workspace.registry
    body = delta_body(
        runtime.engine, base, chain_id=client.chain_id, registry=registry.address,
        region=runtime.settings.region, block_time=block_time_of(runtime), block_hash_of=block_hash_of(runtime),
    )  # fmt: skip
    return sign_snapshot(body, runtime.receipts)


def block_hash_of(runtime: VerifierRuntime) -> Callable[[int], bytes | None]:
    """A block's hash as the chain has it now (None: no such block)."""
    client = runtime.workspace.client

    def lookup(number: int) -> bytes | None:
        try:
            return bytes(client.guard(lambda: client.w3.eth.get_block(number))["hash"])
        except BlockNotFound:
            return None

    return lookup


def load_with_deltas(
    path: Path | str, deltas: Sequence[Path | str], trusted_public_key: Any
) -> TrustSnapshot:
    """The snapshot in `path` with each delta applied in order, every file checked against the key."""
    held = load_snapshot(path, trusted_public_key)
    for delta in deltas:
        try:
            data = Path(delta).read_bytes()
        except OSError as exc:
            raise SnapshotInvalid(f"Cannot read the delta {delta}: {exc.strerror}") from exc
        held = apply_delta(held, parse_delta(data, trusted_public_key, name=str(delta)), name=str(delta))
    return held


def digest_of(body: dict[str, Any]) -> bytes:
    """sha256 of a signed body's RFC 8785 bytes (with its `node.keyId`): what the next delta names."""
    return hashlib.sha256(canonical_bytes(body)).digest()


def parse_delta(data: bytes, trusted_public_key: Any, *, name: str = "delta") -> dict[str, Any]:
    """The body of a delta `trusted_public_key` signed; `SnapshotInvalid` otherwise."""
    body = _verified_body(data, trusted_public_key, name)
    if body.get("format") != DELTA_FORMAT or body.get("version") != DELTA_VERSION:
        raise SnapshotInvalid(
            f"{name} is not a trust snapshot delta ({DELTA_FORMAT} version {DELTA_VERSION})"
        )
    return body


def apply_delta(held: TrustSnapshot, delta: dict[str, Any], *, name: str = "delta") -> TrustSnapshot:
    """`held` moved forward by `delta` (a verified body): `DeltaUnchained` unless it names exactly
    what is held (same chain, registry, scope and node key; the held body's block and digest)."""
    try:
        mismatch = _mismatch(held, delta)
        if mismatch is None:
            return _merged(held, delta)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotInvalid(f"{name} is signed but malformed: {exc}") from exc
    raise DeltaUnchained(
        f"{name} does not follow the snapshot held (block {held.block_number}): it is for {mismatch}; apply the "
        "deltas in order, or start again from a full snapshot",
        held_block=held.block_number,
    )


def _mismatch(held: TrustSnapshot, delta: dict[str, Any]) -> str | None:
    base, scope = delta["base"], tuple(delta.get("scope", {"regions": []})["regions"])
    return (
        "another chain or registry" if (delta["chainId"], delta["registry"]) != (held.chain_id, held.registry)
        else "another node's key" if delta["node"]["keyId"] != held.key_id
        else "other regions" if scope != held.scope
        else f"block {base['block']}, not the block held" if base["block"] != held.block_number
        else "another snapshot of that block" if base["digest"] != "0x" + held.digest.hex()
        else None
    )  # fmt: skip


def _merged(held: TrustSnapshot, delta: dict[str, Any]) -> TrustSnapshot:
    merged = to_body(held)
    for kind, key in ENTRIES.items():
        entries = {entry[key]: entry for entry in merged[kind]}
        for gone in delta["removed"][kind]:
            entries.pop(gone, None)
        for entry in delta[kind]:
            entries[entry[key]] = entry
        merged[kind] = list(entries.values())
    merged.update(
        version=SCOPED_VERSION if held.scope else VERSION, format=FORMAT, block=delta["block"],
        createdAt=delta["createdAt"], node=delta["node"], authorities=delta["authorities"],
    )  # fmt: skip
    return _read_body(merged, digest_of(delta))
