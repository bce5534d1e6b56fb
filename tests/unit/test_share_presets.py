"""Share presets by purpose, the hold on a suspended or revoked certificate, and shares that only
identified organisations may open (issue 11, points 9, 10, 13)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_wallet_app import ALICE, packages

from registry.certificate.labels import is_technical
from registry.database import make_engine, sessions
from registry.error_codes import ErrorCode
from registry.errors import EcertError
from verifier.db import migrate as migrate_verifier
from verifier.orgs import Organisations
from verifier.shares import Shares
from wallet.presets import PRESET_KEYS, PRESETS, preset_fields
from wallet.sharing import share_hold
from wallet.vault import StatusView

BUSINESS = ["name", "number", "identifier", "typeCode", "issuer.name", "issuer.code", "issuer.region", "issuedDate",
            "holder.name", "holder.code", "holder.codeMasked", "holder.codeType", "validFrom", "validUntil",
            "ext.legalRepresentative", "ext.type", "ext.address", "ext.scope"]  # fmt: skip
DRIVING = ["name", "number", "holder.name", "holder.code", "holder.codeMasked", "typeCode", "ext.licenceClass",
           "ext.firstIssued", "ext.address"]  # fmt: skip


def test_the_five_purposes() -> None:
    assert PRESET_KEYS == ("bank", "rent", "job", "errand", "custom")


@pytest.mark.parametrize(
    ("preset", "fields", "wanted", "unwanted"),
    [
        ("bank", BUSINESS, {"holder.code", "number", "ext.legalRepresentative", "ext.address", "ext.scope"},
         {"holder.codeMasked"}),
        ("rent", BUSINESS, {"holder.name", "holder.codeMasked", "ext.type", "ext.scope"},
         {"holder.code", "number", "ext.address"}),
        ("job", DRIVING, {"holder.name", "holder.codeMasked", "ext.licenceClass", "ext.firstIssued"},
         {"holder.code", "ext.address"}),
        ("errand", BUSINESS, {"holder.code", "number", "ext.legalRepresentative", "ext.type", "ext.address",
                              "ext.scope", "issuedDate"}, {"holder.codeMasked"}),
        ("custom", BUSINESS, {"name", "holder.name", "holder.codeMasked", "issuer.name"}, {"holder.code"}),
        ("no-such-purpose", BUSINESS, {"holder.codeMasked"}, {"holder.code"}),
    ],
)  # fmt: skip
def test_a_preset_picks_what_its_purpose_needs(
    preset: str, fields: list[str], wanted: set[str], unwanted: set[str]
) -> None:
    picked = preset_fields(preset, fields)
    assert wanted <= picked and not picked & unwanted, picked
    assert picked <= set(fields)  # only fields the certificate has


@pytest.mark.parametrize("preset", list(PRESETS))
def test_no_preset_picks_a_technical_field(preset: str) -> None:
    assert not any(is_technical(path) for path in preset_fields(preset, BUSINESS + DRIVING))


def _card(agency: str = "杭州市市场监督管理局") -> Any:
    return SimpleNamespace(fields={"issuer": {"name": agency}})


def test_a_revoked_certificate_is_held_with_the_gb_reason_and_the_agency_to_ask() -> None:
    check = {"kind": "status", "outcome": "INVALID", "code": "CERT_REVOKED",
             "evidence": {"reason": "07", "reasonZh": "吊销", "reasonEn": "revoked as a penalty", "since": "2026-01-02T03:04:05+00:00"}}  # fmt: skip
    hold = share_hold(_card(), StatusView("INVALID", "CERT_REVOKED", [check]))
    assert hold is not None and (hold.state, hold.reason_zh, hold.reason_en) == (
        "revoked",
        "吊销",
        "revoked as a penalty",
    )
    assert hold.agency == "杭州市市场监督管理局" and hold.since == "2026-01-02T03:04:05+00:00"
    suspended = share_hold(_card(), StatusView("INVALID", "CERT_SUSPENDED"))
    assert suspended is not None and suspended.state == "suspended" and suspended.reason_zh is None


@pytest.mark.parametrize(
    "status",
    [
        StatusView("VALID"),
        StatusView("UNAVAILABLE", "VERIFIER_UNAVAILABLE"),
        StatusView("INVALID", "CERT_EXPIRED"),
    ],
)
def test_other_states_hold_nothing(status: StatusView) -> None:
    assert share_hold(_card(), status) is None


@pytest.fixture
def node_shares(tmp_path: Path) -> Iterator[Shares]:
    engine = make_engine(f"sqlite:///{tmp_path / 'verifier.sqlite'}")
    migrate_verifier(engine)
    Organisations(sessions(engine), rate_per_min=60).add("浙里办", "330000", "wallet")
    yield Shares(sessions(engine), secrets.token_bytes(32), secrets.token_bytes(32))
    engine.dispose()


def test_an_identified_only_share_opens_for_organisations_and_never_for_anonymous_visitors(
    node_shares: Shares,
) -> None:
    [package] = packages(("王小丽", ALICE))
    share, token = node_shares.create(1, "h-1", package.disclose(["holder.name"]), purpose="租房",
                                      lifetime=dt.timedelta(hours=1), single_use=True, identified_only=True)  # fmt: skip
    assert share.identified_only and share.to_json()["identifiedOnly"] is True
    with pytest.raises(EcertError) as refused:
        node_shares.open(token, identified=False)
    assert refused.value.code == ErrorCode.SHARE_IDENTIFIED_ONLY and refused.value.code.status == 401
    assert not node_shares.get(1, "h-1", share.id).used  # an anonymous try does not use it up
    assert node_shares.open(token, identified=True).presentation is not None
    _, open_token = node_shares.create(1, "h-1", package.disclose(["holder.name"]), purpose="",
                                       lifetime=dt.timedelta(hours=1))  # fmt: skip
    assert node_shares.open(open_token, identified=False).presentation is not None  # the default stays open
