"""The national co-seal made at intake: groups of `national_group` accepted certificates within a
chunk share one SM2 signature (docs/PROTOCOL.md §12), stored once per group; each certificate's
proof, rebuilt from its group's digests (`group_proofs`), checks under the agency's SM2 key."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from eth_account import Account

from issuer.benchmark import make_records
from issuer.intake import CHUNK, IntakeSpec, PreparedCertificate, prepare_chunks, process_pool
from registry import national
from registry.certificate.model import Issuer
from registry.certificate.national_seal import (
    NationalSeal,
    check_seal,
    group_proofs,
    group_tree,
    seal_group,
    seal_group_signature,
    seal_leaf,
)

CHAIN_ID = 31337
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TYPE_CODE = "11100000000013338W001"
AGENCY = "11330100002493028E"


def _spec(national_key: bytes | None, group: int = 64) -> IntakeSpec:
    return IntakeSpec(
        type_code=TYPE_CODE,
        type_name="营业执照",
        issuer=Issuer("杭州市市场监督管理局", AGENCY, "330100"),
        serial_prefix="20261204ABCDEF",
        data_key=os.urandom(32),
        signing_key=bytes(Account.create().key),
        chain_id=CHAIN_ID,
        registry=REGISTRY,
        today=dt.date(2026, 12, 4),
        index_key=os.urandom(32),
        agency_code=AGENCY,
        national_key=national_key,
        national_group=group,
    )


def _check_groups(prepared: list[PreparedCertificate], public: bytes, group: int) -> None:
    """Consecutive groups of `group` certificates: one signature each, the proofs of the group's
    SM3 tree (the protocol's bytes), and every certificate's co-seal checks."""
    seals = [
        NationalSeal(p.national_signature or b"", proof)
        for start in range(0, len(prepared), group)
        for p, proof in zip(
            prepared[start : start + group],
            group_proofs(CHAIN_ID, REGISTRY, [p.digest for p in prepared[start : start + group]]),
            strict=True,
        )
    ]
    for p, seal in zip(prepared, seals, strict=True):
        assert check_seal([public], CHAIN_ID, REGISTRY, p.digest, seal) == public
    for start in range(0, len(prepared), group):
        members, their = prepared[start : start + group], seals[start : start + group]
        assert len({seal.signature for seal in their}) == 1
        _, proofs = group_tree([seal_leaf(CHAIN_ID, REGISTRY, p.digest) for p in members])
        assert [seal.proof for seal in their] == proofs
    assert len({seal.signature for seal in seals}) == -(-len(prepared) // group)


def test_each_group_of_accepted_certificates_shares_one_checking_signature() -> None:
    private = national.generate_private_key()
    records = make_records(150)
    records[70] = {"number": "refused: no holder"}
    [(prepared, rejected)] = prepare_chunks(_spec(private), records)
    assert [r.position for r in rejected] == [71]
    assert len(prepared) == 149  # groups of 64, 64 and 21, over the accepted certificates only
    _check_groups(prepared, national.public_key(private), 64)


def test_without_an_sm2_key_nothing_is_co_sealed() -> None:
    [(prepared, _)] = prepare_chunks(_spec(None), make_records(10))
    assert [p.national_signature for p in prepared] == [None] * 10


def test_worker_processes_co_seal_chunk_by_chunk() -> None:
    """Through the real process pool: a group never spans two chunks (each worker seals its own),
    and what comes back from the workers checks."""
    private = national.generate_private_key()
    spec = _spec(private, group=300)
    records = make_records(CHUNK + 700)
    pool = process_pool(2)
    try:
        chunks = list(prepare_chunks(spec, records, pool))
    finally:
        pool.shutdown()
    assert [len(prepared) for prepared, _ in chunks] == [CHUNK, 700]
    first, second = (prepared for prepared, _ in chunks)
    _check_groups(first, national.public_key(private), 300)
    _check_groups(second, national.public_key(private), 300)
    assert first[-1].national_signature is not None and second[0].national_signature is not None
    assert first[-1].national_signature != second[0].national_signature


@pytest.mark.parametrize("size", [1, 2, 3, 64, 65])
def test_a_stored_signature_and_rebuilt_proofs_are_seal_group(size: int) -> None:
    """What the issuer stores (the signature) and rebuilds (the proofs) is `seal_group`'s seal."""
    private = national.generate_private_key()
    public = national.public_key(private)
    digests = [secrets.token_bytes(32) for _ in range(size)]
    signature = seal_group_signature(private, CHAIN_ID, REGISTRY, digests)
    proofs = group_proofs(CHAIN_ID, REGISTRY, digests)
    made = seal_group(private, CHAIN_ID, REGISTRY, digests)
    assert proofs == [seal.proof for seal in made]  # signatures are randomised
    for digest, proof in zip(digests, proofs, strict=True):
        assert check_seal([public], CHAIN_ID, REGISTRY, digest, NationalSeal(signature, proof)) == public


def test_group_signatures_and_proofs_refuse_what_seal_group_refuses() -> None:
    private = national.generate_private_key()
    assert seal_group(private, CHAIN_ID, REGISTRY, []) == []
    bad: list[tuple[int, str | bytes, bytes]] = [
        (-1, REGISTRY, bytes(32)),
        (CHAIN_ID, REGISTRY[:-1], bytes(32)),
        (CHAIN_ID, bytes(19), bytes(32)),
        (CHAIN_ID, REGISTRY, bytes(31)),
    ]
    for chain_id, registry, digest in bad:
        with pytest.raises(ValueError):
            seal_group(private, chain_id, registry, [bytes(32), digest])
        with pytest.raises(ValueError):
            seal_group_signature(private, chain_id, registry, [bytes(32), digest])
        with pytest.raises(ValueError):
            group_proofs(chain_id, registry, [bytes(32), digest])


def test_sm3_is_the_same_from_many_threads() -> None:
    """`sm3` copies one prepared context: threads hashing at once get what one thread gets."""
    messages = [secrets.token_bytes(n) for n in range(0, 4096, 7)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(national.sm3, messages * 4))
    assert together == [national.sm3(m) for m in messages] * 4
    assert national.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_a_group_of_one_is_a_signature_per_certificate() -> None:
    private = national.generate_private_key()
    spec = _spec(private)
    [(prepared, _)] = prepare_chunks(replace(spec, national_group=1), make_records(3))
    assert len({p.national_signature for p in prepared}) == 3
    _check_groups(prepared, national.public_key(private), 1)
