"""The console's OFD licence (issue 13, point 7): the clerk's link on the certificate page, the file
sealed with the agency's SM2 key (`SignerPool.national_key`), the print audited with its format;
an agency without an SM2 key gets an unsigned file. The console harness of
`test_console_certificates` (real intake, real database, no chain)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from console_harness import console_app
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from test_console_certificates import (  # the fixtures are used by name
    AGENCY,
    DATA_KEY,
    Grants,
    _anchor_by_hand,
    clock,
    database,
    index,
    issued,
    made,
    person,
    service,
    signed_in,
    staff,
    trail,
)
from test_issuer_staff import Clock

from issuer.api import console_certificates
from issuer.ofd import verify_ofd
from issuer.service import IssuerService
from issuer.staff import IssuerStaff, Role
from registry.national import generate_private_key, public_key

__all__ = ["clock", "database", "index", "made", "service", "staff"]

KEY = generate_private_key()


def _app(
    made: sessionmaker[Session], service: IssuerService, staff: IssuerStaff, tmp: Path, key: bytes | None
) -> FastAPI:
    runtime = SimpleNamespace(
        sessions=made, service=service, workspace=SimpleNamespace(settings=SimpleNamespace(home=tmp)),
        settings=SimpleNamespace(public_url=None, verifier_url="http://127.0.0.1:8002", load_data_key=lambda _core: DATA_KEY),
        signers=SimpleNamespace(national_key=lambda code: key if code == AGENCY else None),
    )  # fmt: skip
    return console_app(staff, runtime, console_certificates.install, grants=Grants())


@pytest.mark.parametrize("sealed", [True, False])
def test_the_clerk_downloads_a_sealed_ofd_and_the_print_is_audited(
    made: sessionmaker[Session],
    service: IssuerService,
    staff: IssuerStaff,
    clock: Clock,
    tmp_path: Path,
    sealed: bool,
) -> None:
    app = _app(made, service, staff, tmp_path, KEY if sealed else None)
    [identifier] = issued(service, [person(3)])
    _anchor_by_hand(made, identifier)
    clerk = signed_in(app, staff, clock, Role.CLERK)
    page = clerk.get(f"/console/certificates/{identifier}")
    link = f'href="/console/certificates/{identifier}/licence.ofd?lang=zh"'
    assert page.status_code == 200 and link in page.text
    ofd = clerk.get(f"/console/certificates/{identifier}/licence.ofd")
    assert ofd.status_code == 200 and ofd.headers["content-type"] == "application/ofd"
    assert ofd.content[:2] == b"PK" and ofd.headers["cache-control"] == "no-store"
    check = verify_ofd(ofd.content, public_key(KEY))
    assert (check.valid, check.code) == ((True, "OFD_SEAL_OK") if sealed else (False, "OFD_UNSIGNED"))
    [printed] = trail(made, "print")
    assert printed.subject == identifier
    assert json.loads(printed.details) == {"format": "ofd", "lang": "zh", "sealed": sealed}


def test_an_auditor_may_not_print_an_ofd(
    made: sessionmaker[Session], service: IssuerService, staff: IssuerStaff, clock: Clock, tmp_path: Path
) -> None:
    app = _app(made, service, staff, tmp_path, KEY)
    [identifier] = issued(service, [person(4)])
    _anchor_by_hand(made, identifier)
    auditor = signed_in(app, staff, clock, Role.AUDITOR)
    assert "licence.ofd" not in auditor.get(f"/console/certificates/{identifier}").text
    assert auditor.get(f"/console/certificates/{identifier}/licence.ofd").status_code == 403
    assert trail(made, "print") == []
