"""Tamper corpus on a real anvil: every mutant of one valid certificate is INVALID or unparsable.

One anchored package (and a disclosure of it) is the control and stays VALID. Every single-field
change, removed field, batch-proof and index change, foreign root, foreign seal, wrong digest,
foreign registry, and ~600 truncated, substituted or CBOR-bit-flipped `EC1:` codes must come out
INVALID, or fail to parse with `CertificateError` (which the API answers with 4xx). Zero false
VALID, and no ERROR: tampering is a fact about the certificate, not a failure to check it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TYPE_BUSINESS_LICENCE, ZJ_AGENCY_CODE, Roles
from eth_account import Account

from issuer.batch import IssuedBatch, build_batch
from registry.certificate.canonical import FieldLeaf, canonical_json, leaf_value, make_leaves
from registry.certificate.merkle import MerkleTree, batch_tree, field_digest
from registry.certificate.model import Issuer, build_fields
from registry.certificate.presentation import Presentation, batch_presentations
from registry.certificate.seal import sign_seal
from registry.contracts.certificate_registry import CertificateRegistry
from registry.errors import CertificateError
from verifier.chain_reader import RegistryReader
from verifier.pipeline import verify_presentation

pytestmark = pytest.mark.chain

ZJ_ISSUER = Issuer("杭州市市场监督管理局", ZJ_AGENCY_CODE, "330100")
DISCLOSED = ("holder.name", "holder.codeMasked", "typeCode", "validFrom", "validUntil", "ext.scope[0]")
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

Mutant = Presentation | dict | str  # a parsed presentation, a package as JSON, or an EC1 code


def issue(registry: CertificateRegistry, key, count: int, seed: int) -> IssuedBatch:
    rng = random.Random(seed)
    records = [
        {
            "holder": {"name": f"商户{seed}-{i}", "code": "11010519491231002X"},
            "validUntil": "2036-12-31",
            "ext": {"scope": ["餐饮服务", "食品销售"], "capital": rng.randint(1, 10**7), "chain": True},
        }
        for i in range(count)
    ]
    batch = build_batch(
        records, type_code=TYPE_BUSINESS_LICENCE, type_name="营业执照", issuer=ZJ_ISSUER, signing_key=bytes(key.key),
        chain_id=registry.client.chain_id, registry=registry.address, salt_source=rng.randbytes,
    )  # fmt: skip
    registry.anchor(key, batch.root, len(batch), TYPE_BUSINESS_LICENCE)
    return batch


@dataclasses.dataclass
class Corpus:
    registry: CertificateRegistry
    roles: Roles
    batch: IssuedBatch  # the target's batch, 8 certificates
    other: IssuedBatch  # a second anchored batch of the same agency
    index: int = 5

    @property
    def full(self) -> Presentation:
        return self.batch.presentations[self.index]

    @property
    def disclosure(self) -> Presentation:
        return self.full.disclose(DISCLOSED)

    def outcome(self, mutant: Mutant, original: Presentation | None = None) -> str:
        """`unparsed`, `unchanged` (parses to exactly `original`), or the verdict against the chain."""
        try:
            if isinstance(mutant, str):
                mutant = Presentation.from_ec1(mutant)
            elif isinstance(mutant, dict):
                mutant = Presentation.from_json(mutant)
        except CertificateError:
            return "unparsed"
        if mutant == original:
            return "unchanged"
        return verify_presentation(mutant, RegistryReader(self.registry)).verdict.value

    def assert_all_rejected(
        self, mutants: list[tuple[str, Mutant]], minimum: int, original: Presentation | None = None
    ) -> dict[str, int]:
        assert len(mutants) >= minimum
        outcomes = [(label, self.outcome(m, original)) for label, m in mutants]
        wrong = [(label, o) for label, o in outcomes if o not in ("unparsed", "INVALID", "unchanged")]
        assert not wrong, f"{len(wrong)} of {len(mutants)} mutants not rejected: {wrong}"
        return dict(Counter(o for _, o in outcomes))


@pytest.fixture
def corpus(registry: CertificateRegistry, roles: Roles) -> Corpus:
    return Corpus(
        registry, roles, issue(registry, roles.agency, 8, seed=1), issue(registry, roles.agency, 3, seed=2)
    )


def test_the_control_is_valid_in_every_form(corpus: Corpus) -> None:
    for control in (corpus.full, corpus.disclosure):
        for form in (control, control.to_json(), json.loads(json.dumps(control.to_json())), control.to_ec1()):
            assert corpus.outcome(form) == "VALID"


# ─── fields ─────────────────────────────────────────────────────────────────────────────


def changed_value(leaf: FieldLeaf) -> str:
    """Another canonical JSON scalar of the same kind, one step away."""
    value = leaf_value(leaf)
    if isinstance(value, bool):
        return canonical_json(not value)
    if isinstance(value, int):
        return canonical_json(value + 1)
    if isinstance(value, str) and value:
        return canonical_json(value[:-1] + chr(ord(value[-1]) ^ 1))
    return canonical_json("x")


def leaf_mutants(p: Presentation, name: str) -> Iterator[tuple[str, Presentation]]:
    for i, leaf in enumerate(p.leaves):

        def with_leaf(new: FieldLeaf | None, i: int = i) -> Presentation:
            rest = p.leaves[:i] + ((new,) if new else ()) + p.leaves[i + 1 :]
            return dataclasses.replace(p, leaves=rest)

        yield (
            f"{name}: {leaf.path} value changed",
            with_leaf(FieldLeaf(leaf.salt, leaf.path, changed_value(leaf))),
        )
        yield (
            f"{name}: {leaf.path} salt changed",
            with_leaf(FieldLeaf(bytes([leaf.salt[0] ^ 1]) + leaf.salt[1:], leaf.path, leaf.value)),
        )
        yield f"{name}: {leaf.path} renamed", with_leaf(FieldLeaf(leaf.salt, leaf.path + "X", leaf.value))
        yield f"{name}: {leaf.path} removed", with_leaf(None)
    yield (
        f"{name}: field added",
        dataclasses.replace(p, leaves=(*p.leaves, FieldLeaf(os.urandom(16), "ext.extra", '"x"'))),
    )
    yield f"{name}: field duplicated", dataclasses.replace(p, leaves=(*p.leaves, p.leaves[0]))
    a, b = [i for i, leaf in enumerate(p.leaves) if leaf.path in ("holder.name", "validUntil", "validFrom")][
        :2
    ]
    swapped = list(p.leaves)
    swapped[a] = FieldLeaf(p.leaves[a].salt, p.leaves[a].path, p.leaves[b].value)
    swapped[b] = FieldLeaf(p.leaves[b].salt, p.leaves[b].path, p.leaves[a].value)
    yield (
        f"{name}: values of {p.leaves[a].path} and {p.leaves[b].path} swapped",
        dataclasses.replace(p, leaves=tuple(swapped)),
    )


def test_every_field_change_removal_and_addition_is_invalid(corpus: Corpus) -> None:
    full, disclosure = corpus.full, corpus.disclosure
    mutants = [*leaf_mutants(full, "full"), *leaf_mutants(disclosure, "disclosure")]
    # a forger who recomputes the digest after changing a field: the seal no longer matches
    forged = next(m for label, m in leaf_mutants(full, "full") if label == "full: holder.name value changed")
    mutants.append(
        (
            "full: holder.name changed, digest recomputed",
            dataclasses.replace(forged, digest=field_digest(forged.leaves)),
        )
    )
    # the multiproof of the disclosure
    proof, flags = disclosure.proof or (), disclosure.proof_flags or ()
    mutants.extend(
        (
            f"disclosure: flag {i} flipped",
            dataclasses.replace(disclosure, proof_flags=(*flags[:i], not flags[i], *flags[i + 1 :])),
        )
        for i in range(len(flags))
    )
    for i in range(len(proof)):
        mutants.append(
            (
                f"disclosure: proof {i} replaced",
                dataclasses.replace(disclosure, proof=(*proof[:i], os.urandom(32), *proof[i + 1 :])),
            )
        )
        mutants.append(
            (
                f"disclosure: proof {i} dropped",
                dataclasses.replace(disclosure, proof=proof[:i] + proof[i + 1 :]),
            )
        )
    mutants.append(("disclosure: multiproof of another certificate", dataclasses.replace(
        disclosure, proof=corpus.batch.presentations[0].disclose(DISCLOSED).proof
    )))  # fmt: skip
    counts = corpus.assert_all_rejected(mutants, minimum=4 * len(full.leaves) + 4 * len(disclosure.leaves))
    assert counts == {"INVALID": len(mutants)}


# ─── type binding ───────────────────────────────────────────────────────────────────────


def exact_disclosure(full: Presentation, paths: tuple[str, ...]) -> Presentation:
    """A disclosure of exactly `paths` with its multiproof, as a forger (or a wallet from before
    the type was always disclosed) would make it: `disclose` now adds the type and agency."""
    multiproof = MerkleTree([leaf.hash() for leaf in full.leaves]).multiproof(
        [i for i, leaf in enumerate(full.leaves) if leaf.path in paths]
    )
    by_hash = {leaf.hash(): leaf for leaf in full.leaves}
    return dataclasses.replace(
        full,
        leaves=tuple(by_hash[h] for h in multiproof.leaves),
        proof=tuple(multiproof.proof),
        proof_flags=tuple(multiproof.proof_flags),
    )


def test_a_business_licence_named_as_a_driving_licence_is_invalid(corpus: Corpus) -> None:
    """Issue 10, point 13: a business-licence agency seals and anchors a certificate named
    机动车驾驶证 (the issuer now refuses such a record, so it is made by hand here). Shown with its
    type hidden it once passed as a driving licence; now every form of it is INVALID."""
    registry, agency = corpus.registry, corpus.roles.agency
    with pytest.raises(CertificateError):
        build_fields({"holder": {"name": "李四", "code": "11010519491231002X"}, "name": "机动车驾驶证"},
                     type_code=TYPE_BUSINESS_LICENCE, type_name="营业执照", issuer=ZJ_ISSUER, serial="T0000001")  # fmt: skip
    fields = build_fields(
        {"holder": {"name": "李四", "code": "11010519491231002X"}, "validUntil": "2032-03-01", "ext": {"licenceClass": "C1"}},
        type_code=TYPE_BUSINESS_LICENCE, type_name="营业执照", issuer=ZJ_ISSUER, serial="T0000001",
    )  # fmt: skip
    leaves = make_leaves({**fields, "name": "机动车驾驶证"}, random.Random(13).randbytes)
    digest = field_digest(leaves)
    tree = batch_tree([digest])
    chain_id, address = registry.client.chain_id, registry.address
    forged = batch_presentations(
        chain_id=chain_id, registry=address, leaves=[leaves], digests=[digest], tree=tree,
        seals=[sign_seal(bytes(agency.key), chain_id, address, digest)],
    )[0]  # fmt: skip
    registry.anchor(agency, tree.root, 1, TYPE_BUSINESS_LICENCE)
    shown = ("name", "holder.name", "ext.licenceClass", "validFrom", "validUntil")
    hiding_the_type = exact_disclosure(forged, shown)
    assert "typeCode" not in hiding_the_type.paths()
    reader = RegistryReader(registry)
    for form in (hiding_the_type, hiding_the_type.to_ec1()):
        report = verify_presentation(
            form if isinstance(form, Presentation) else Presentation.from_ec1(form), reader
        )
        assert (report.verdict.value, report.reason) == ("INVALID", "FIELD_MISSING"), report.to_json()
    for form in (forged, forged.disclose(shown), Presentation.from_ec1(forged.disclose(shown).to_ec1())):
        report = verify_presentation(form, reader)
        assert (report.verdict.value, report.reason) == ("INVALID", "TYPE_NAME_MISMATCH"), report.to_json()
    for hidden in ("typeCode", "identifier", "issuer.code"):  # each of the three, hidden from the control
        partial = exact_disclosure(corpus.full, tuple(p for p in ("holder.name", "typeCode", "identifier", "issuer.code",
                                                                  "validFrom", "validUntil") if p != hidden))  # fmt: skip
        assert corpus.outcome(partial) == "INVALID"


# ─── batch position, seal, digest, registry ─────────────────────────────────────────────


def position_mutants(c: Corpus) -> Iterator[tuple[str, Presentation]]:
    p = c.full
    proof = p.batch_proof
    for i in range(len(proof)):
        for j in range(i + 1, len(proof)):
            swapped = list(proof)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            yield f"batch proof {i}<->{j} swapped", dataclasses.replace(p, batch_proof=tuple(swapped))
        yield (
            f"batch proof {i} replaced",
            dataclasses.replace(p, batch_proof=(*proof[:i], os.urandom(32), *proof[i + 1 :])),
        )
        yield f"batch proof {i} dropped", dataclasses.replace(p, batch_proof=proof[:i] + proof[i + 1 :])
    yield "batch proof reversed", dataclasses.replace(p, batch_proof=proof[::-1])
    yield "batch proof extended", dataclasses.replace(p, batch_proof=(*proof, os.urandom(32)))
    yield "batch proof empty", dataclasses.replace(p, batch_proof=())
    yield (
        "batch proof of a neighbour",
        dataclasses.replace(p, batch_proof=c.batch.presentations[c.index - 1].batch_proof),
    )
    for index in (
        *(i for i in range(len(c.batch)) if i != c.index),
        len(c.batch),
        255,
        256,
        2**64,
        2**256 - 1,
    ):
        yield f"batch index {index}", dataclasses.replace(p, batch_index=index)
    for i, neighbour in enumerate(c.other.presentations):
        yield (
            f"other batch's root, own proof, index {i}",
            dataclasses.replace(p, batch_root=c.other.root, batch_index=i),
        )
        yield (
            f"other batch's root and proof {i}",
            dataclasses.replace(p, batch_root=c.other.root, batch_index=i, batch_proof=neighbour.batch_proof),
        )
    yield "root never anchored", dataclasses.replace(p, batch_root=os.urandom(32))


def seal_mutants(c: Corpus) -> Iterator[tuple[str, Presentation]]:
    p = c.full
    chain_id, address = c.registry.client.chain_id, c.registry.address
    for who, key in (("a random key", bytes(Account.create().key)), ("the 广东 agency", bytes(c.roles.other_agency.key)),
                     ("the 浙江 authority", bytes(c.roles.authority.key)), ("the national root", bytes(c.roles.root.key))):  # fmt: skip
        yield f"resealed by {who}", dataclasses.replace(p, seal=sign_seal(key, chain_id, address, p.digest))
    yield "seal of the neighbour", dataclasses.replace(p, seal=c.batch.presentations[c.index - 1].seal)
    yield (
        "seal for another chain id",
        dataclasses.replace(p, seal=sign_seal(bytes(c.roles.agency.key), chain_id + 1, address, p.digest)),
    )
    r, s, v = p.seal[:32], int.from_bytes(p.seal[32:64], "big"), p.seal[64]
    yield "seal high-s twin", dataclasses.replace(p, seal=r + (_N - s).to_bytes(32, "big") + bytes([55 - v]))
    yield "seal v flipped", dataclasses.replace(p, seal=p.seal[:64] + bytes([55 - v]))
    yield "seal v = 0", dataclasses.replace(p, seal=p.seal[:64] + bytes([v - 27]))
    for bit in (0, 100, 256, 300, 511):
        flipped = bytearray(p.seal)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield f"seal bit {bit} flipped", dataclasses.replace(p, seal=bytes(flipped))
    yield "seal zero", dataclasses.replace(p, seal=bytes(65))
    # a whole forged certificate: fields changed, digest recomputed, sealed by a key of no agency
    leaves = tuple(
        FieldLeaf(leaf.salt, leaf.path, '"冒名"') if leaf.path == "holder.name" else leaf for leaf in p.leaves
    )
    digest = field_digest(leaves)
    yield (
        "forged fields resealed by a random key",
        dataclasses.replace(
            p,
            leaves=leaves,
            digest=digest,
            seal=sign_seal(bytes(Account.create().key), chain_id, address, digest),
        ),
    )


def digest_and_registry_mutants(c: Corpus) -> Iterator[tuple[str, Presentation | dict]]:
    p = c.full
    neighbour = c.batch.presentations[c.index - 1]
    yield "random digest", dataclasses.replace(p, digest=os.urandom(32))
    yield "neighbour's digest", dataclasses.replace(p, digest=neighbour.digest)
    yield "neighbour's digest and seal", dataclasses.replace(p, digest=neighbour.digest, seal=neighbour.seal)
    yield "digest bit flipped", dataclasses.replace(p, digest=bytes([p.digest[0] ^ 0x80]) + p.digest[1:])
    yield (
        "disclosure with the neighbour's digest and seal",
        dataclasses.replace(c.disclosure, digest=neighbour.digest, seal=neighbour.seal),
    )
    for chain_id in (p.chain_id + 1, 1, 0):
        package = p.to_json()
        package["registry"]["chainId"] = chain_id
        yield f"chainId {chain_id}", package
    for address in ("0x" + os.urandom(20).hex(), "0x" + "00" * 20, Account.create().address):
        package = p.to_json()
        package["registry"]["address"] = address
        yield f"registry {address}", package
    package = c.disclosure.to_json()
    package["registry"]["chainId"] += 1
    yield "disclosure on another chain id", package


def test_every_batch_seal_digest_and_registry_change_is_invalid(corpus: Corpus) -> None:
    mutants: list[tuple[str, Any]] = [
        *position_mutants(corpus),
        *seal_mutants(corpus),
        *digest_and_registry_mutants(corpus),
    ]
    counts = corpus.assert_all_rejected(mutants, minimum=60)
    assert counts == {"INVALID": len(mutants)}


# ─── EC1 codes ──────────────────────────────────────────────────────────────────────────


def ec1_mutants(text: str, name: str, rng: random.Random, substitutions: int) -> Iterator[tuple[str, str]]:
    step = max(1, len(text) // 60)
    for length in sorted({*range(0, len(text), step), 3, 4, 5, len(text) - 2, len(text) - 1}):
        yield f"{name} truncated to {length}", text[:length]
    for n in range(substitutions):
        position = rng.randrange(len("EC1:"), len(text))
        char = rng.choice(BASE45.replace(text[position], ""))
        yield (
            f"{name} #{n}: [{position}] {text[position]!r}->{char!r}",
            text[:position] + char + text[position + 1 :],
        )
    for position in range(4):
        yield f"{name} prefix char {position} changed", text[:position] + "x" + text[position + 1 :]


def cbor_mutants(text: str, name: str, rng: random.Random, flips: int) -> Iterator[tuple[str, str]]:
    """Bit flips inside the CBOR, re-compressed: well-formed codes whose content is altered."""
    import base45

    raw = zlib.decompress(base45.b45decode(text[len("EC1:") :]))
    for _ in range(flips):
        bit = rng.randrange(len(raw) * 8)
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield (
            f"{name} CBOR bit {bit} flipped",
            "EC1:" + base45.b45encode(zlib.compress(bytes(flipped))).decode(),
        )


def test_truncated_and_mutated_ec1_codes_are_rejected(corpus: Corpus) -> None:
    """A mutant may parse back to the very same certificate (see the next test): never to another."""
    rng = random.Random(2026)
    counts = {}
    for original, substitutions in ((corpus.full, 240), (corpus.disclosure, 80)):
        name, text = "full" if original is corpus.full else "disclosure", original.to_ec1()
        mutants = [
            *ec1_mutants(text, name, rng, substitutions),
            *cbor_mutants(text, name, rng, substitutions // 2),
        ]
        for outcome, n in corpus.assert_all_rejected(
            mutants, minimum=substitutions + 60, original=original
        ).items():
            counts[outcome] = counts.get(outcome, 0) + n
    assert counts["unparsed"] > sum(counts.values()) // 2  # zlib's checksum catches most transport changes
    assert counts["INVALID"] >= 60  # CBOR flips reach the checks
    assert counts.get("unchanged", 0) <= 12  # cuts into zlib's trailing checksum (next test), or CBOR slack


def test_an_ec1_code_has_one_form_only(corpus: Corpus) -> None:
    import base45

    text = corpus.full.to_ec1()
    raw = base45.b45decode(text[len("EC1:") :])
    malleable = [text[:-2], text[:-3], "EC1:" + base45.b45encode(raw + b"\0").decode()]
    assert [corpus.outcome(m) for m in malleable] == ["unparsed"] * len(malleable)
