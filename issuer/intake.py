"""Records in, outbox rows out: build each certificate, salt its leaves, hash its digest, seal
it and encrypt its personal fields — the CPU-bound half of issuing, spread over processes for
big jobs. Pure but for the optional process pool: no database, no chain.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from issuer.batch import RejectedRecord
from issuer.blind_index import BlindIndex, Digests, record_values
from issuer.sealed_fields import salted_leaves, seal_fields
from registry.certificate.merkle import field_digest
from registry.certificate.model import Issuer, build_fields
from registry.certificate.national_seal import NATIONAL_GROUP, seal_group_signature
from registry.certificate.seal import sign_seal
from registry.crypto import DataCipher
from registry.errors import EcertError

PARALLEL_FROM = 2_000  # below this, a process pool costs more than it saves
CHUNK = 2_000


@dataclass(frozen=True)
class PreparedCertificate:
    position: int
    identifier: str
    previous_identifier: str | None
    version: int
    digest: bytes
    seal: bytes
    sealed_fields: bytes  # AES-GCM of its leaves (`issuer.sealed_fields`, form 2)
    index: Digests | None = None  # blind-index digests (number, name, code): made here, in the pool
    national_signature: bytes | None = None  # its group's SM2 co-seal (consecutive certificates share one)


@dataclass(frozen=True)
class IntakeSpec:
    """Everything a worker process needs to prepare records (picklable)."""

    type_code: str
    type_name: str
    issuer: Issuer
    serial_prefix: str
    data_key: bytes
    signing_key: bytes
    chain_id: int
    registry: str
    today: dt.date
    version: int = 1
    previous_identifier: str | None = None
    serial: str | None = None  # a renewal keeps its serial
    index_key: bytes | None = None  # the blind index's key: each certificate's digests are made here
    agency_code: str = ""  # whose index (the digests name the agency)
    national_key: bytes | None = None  # the agency's SM2 key: each group of certificates is co-sealed here
    national_group: int = NATIONAL_GROUP


def _prepare_chunk(spec: IntakeSpec, start: int, records: Sequence[Mapping[str, Any]]) -> Prepared:
    cipher = DataCipher(spec.data_key)
    index = BlindIndex(spec.index_key) if spec.index_key else None
    made: list[tuple[int, str, bytes, bytes, bytes, Digests | None]] = []
    rejected: list[RejectedRecord] = []
    for offset, record in enumerate(records):
        position = start + offset
        serial = spec.serial or f"{spec.serial_prefix}{position:07d}"
        try:
            fields = build_fields(
                record,
                type_code=spec.type_code,
                type_name=spec.type_name,
                issuer=spec.issuer,
                serial=serial,
                version=spec.version,
                today=spec.today,
                previous_identifier=spec.previous_identifier,
            )
            salted = salted_leaves(fields)
        except EcertError as exc:
            rejected.append(RejectedRecord(position, exc.code, exc.message, exc.details.get("field")))
            continue
        identifier = fields["identifier"]
        digest = field_digest(salted.leaves)
        made.append(
            (
                position,
                identifier,
                digest,
                sign_seal(spec.signing_key, spec.chain_id, spec.registry, digest),
                seal_fields(cipher, salted, identifier),
                index.digests(spec.agency_code, *record_values(record, identifier)) if index else None,
            )
        )
    # Co-sealed once every digest is known, so each certificate is built once, its co-seal with it.
    co_seals: Sequence[bytes | None] = (
        _co_seals(spec, [m[2] for m in made]) if spec.national_key is not None else [None] * len(made)
    )
    prepared = [
        PreparedCertificate(
            position,
            identifier,
            spec.previous_identifier,
            spec.version,
            digest,
            seal,
            sealed,
            digests,
            co_seal,
        )
        for (position, identifier, digest, seal, sealed, digests), co_seal in zip(made, co_seals, strict=True)
    ]
    return prepared, rejected


def _co_seals(spec: IntakeSpec, digests: Sequence[bytes]) -> list[bytes]:
    """Each certificate's group co-seal: one SM2 signature per `national_group` consecutive
    certificates, over the SM3 root of their leaves, the same bytes for each member (the issuer
    stores it once per group: `NationalSealGroup`)."""
    assert spec.national_key is not None
    seals: list[bytes] = []
    for start in range(0, len(digests), spec.national_group):
        group = digests[start : start + spec.national_group]
        seals += [seal_group_signature(spec.national_key, spec.chain_id, spec.registry, group)] * len(group)
    return seals


Prepared = tuple[list[PreparedCertificate], list[RejectedRecord]]


def prepare_chunks(
    spec: IntakeSpec, records: Sequence[Mapping[str, Any]], pool: Executor | None = None
) -> Iterator[Prepared]:
    """Prepare every record (positions from 1), chunk by chunk in record order; with a pool,
    chunks are prepared in parallel while the caller stores the ones already done."""
    if pool is None or len(records) < PARALLEL_FROM:
        yield _prepare_chunk(spec, 1, records)
        return
    futures = [
        pool.submit(_prepare_chunk, spec, start + 1, records[start : start + CHUNK])
        for start in range(0, len(records), CHUNK)
    ]
    for future in futures:
        yield future.result()


def process_pool(processes: int | None = None) -> ProcessPoolExecutor:
    """A pool for intake. `forkserver`, not `fork`: the issuer runs threads (API, worker), and
    forking a threaded process can copy a held lock."""
    return ProcessPoolExecutor(
        processes or os.cpu_count() or 1, mp_context=multiprocessing.get_context("forkserver")
    )
