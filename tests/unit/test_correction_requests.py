"""Holders' correction requests at the issuer (`issuer.corrections`), on a real anvil chain and a
real SQLite database, with the service's clock injected: a full holder package and its holder's
code make a request with a deadline from the settings (per type); the token reads it, nothing
else does; a disclosure, a tampered package, another holder, a superseded certificate and a
second open request are refused; a retry returns the first request; staff fix one by a renewal
(version + 1, linked, the renewed package given once confirmed) or refuse with a reason, both
in the hash-chained audit trail; the dashboard's buckets equal counts made from the table."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ZJ_AGENCY_CODE, Roles
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.audit import AuditLog
from issuer.corrections import CorrectionAlreadyOpen, CorrectionRequests, open_by_deadline
from issuer.db import make_engine, migrate, sessions
from issuer.models import Certificate
from issuer.service import IssuerService
from issuer.settings import IssuerSettings
from issuer.staff import IssuerStaff
from registry.certificate.presentation import Presentation
from registry.contracts.certificate_registry import CertificateRegistry
from registry.error_codes import ErrorCode
from registry.errors import EcertError

pytestmark = pytest.mark.chain

TYPE = "11100000000013338W001"
HOLDER = "91330106MA2H3XY60L"  # valid 统一社会信用代码
OTHER_HOLDER = "91110000600037341L"
T0 = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Issuer:
    service: IssuerService
    corrections: CorrectionRequests
    worker: AnchoringWorker
    sessions: sessionmaker[Session]
    clock: Clock
    identifiers: list[str]
    clerk_id: int

    def package(self, identifier: str) -> dict[str, Any]:
        return self.service.package(ZJ_AGENCY_CODE, identifier).to_json()


def _record(i: int) -> dict[str, Any]:
    return {"holder": {"name": f"杭州示例{i}号科技有限公司", "code": HOLDER}, "number": f"33010{i:010d}",
            "validUntil": "2046-05-31", "ext": {"legalRepresentative": "张三", "address": f"杭州市西湖区文三路{i}号",
                                                "type": "有限责任公司"}}  # fmt: skip


@pytest.fixture
def issuer(tmp_path: Path, registry: CertificateRegistry, roles: Roles) -> Iterator[Issuer]:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    clock = Clock()
    key = secrets.token_bytes(32)
    service = IssuerService(made, key, chain_id=registry.client.chain_id, registry_address=registry.address,
                            signer_for=lambda _code: roles.agency, clock=clock, processes=1)  # fmt: skip
    service.ensure_agency(ZJ_AGENCY_CODE, "杭州市市场监督管理局", "330100")
    job = service.submit(ZJ_AGENCY_CODE, TYPE, [_record(i) for i in range(4)], type_name="营业执照")
    worker = AnchoringWorker(
        made, registry, lambda _code: roles.agency, WorkerSettings(batch_size=100, batch_window_s=0)
    )
    worker.run_until_idle(timeout_s=120, poll_s=0.01)
    staff = IssuerStaff(made, key, secrets.token_bytes(32))
    clerk = staff.add(ZJ_AGENCY_CODE, "clerk", "clerk1", "张华", "corrections-pass-1")
    hours = IssuerSettings(
        correction_hours=24, correction_hours_by_type=f"{TYPE}=48, 11100000000013338W002=12"
    )
    corrections = CorrectionRequests(
        made, service, key, hours.correction_hours_for, audit=AuditLog(made), clock=clock
    )
    yield Issuer(service, corrections, worker, made, clock, job.identifiers, clerk.id)
    service.close()
    engine.dispose()


def _refused(code: ErrorCode, call: Any, *args: Any, **kwargs: Any) -> EcertError:
    with pytest.raises(EcertError) as raised:
        call(*args, **kwargs)
    assert raised.value.code is code, raised.value
    return raised.value


def test_a_request_is_made_with_the_full_package_and_read_only_with_its_token(issuer: Issuer) -> None:
    package = issuer.package(issuer.identifiers[0])
    made = issuer.corrections.create(package, HOLDER.lower(), "field", "holder.name", "名称少了一个字")
    body = made.to_json()
    assert made.new and body["id"].startswith("cr_") and len(body["id"]) == 25 and len(body["token"]) == 32
    assert body["status"] == "open" and body["identifier"] == issuer.identifiers[0]
    assert body["createdAt"] == "2026-12-04T02:00:00Z"
    assert (
        body["dueAt"] == "2026-12-06T02:00:00Z"
    )  # 48 h for this type, from ECERT_ISSUER_CORRECTION_HOURS_BY_TYPE
    view, renewed = issuer.corrections.read(body["id"], body["token"])
    assert (view.message, view.field, view.status, renewed) == ("名称少了一个字", "holder.name", "open", None)
    _refused(ErrorCode.CORRECTION_NOT_FOUND, issuer.corrections.read, body["id"], body["token"][:-1] + "A")
    _refused(ErrorCode.CORRECTION_NOT_FOUND, issuer.corrections.read, body["id"], "")
    _refused(ErrorCode.CORRECTION_NOT_FOUND, issuer.corrections.read, "cr_" + "A" * 22, body["token"])
    with issuer.sessions() as session:  # the message is encrypted at rest, the token only hashed
        stored, token_hash = session.execute(
            text("SELECT message, token_hash FROM correction_requests WHERE id = :id"), {"id": body["id"]}
        ).one()
    assert "名称少了一个字".encode() not in bytes(stored) and body["token"] not in token_hash


def test_disclosures_tampered_packages_and_other_holders_are_refused(issuer: Issuer) -> None:
    package = issuer.package(issuer.identifiers[0])
    partial = Presentation.from_json(package).disclose(["holder.name"]).to_json()
    missing_salts = {**package, "leaves": package["leaves"][:-1]}
    tampered = {**package, "leaves": [dict(leaf) for leaf in package["leaves"]]}
    tampered["leaves"][-1]["salt"] = "0x" + "00" * 16
    for bad in (partial, missing_salts, tampered, {"format": "nonsense"}):
        _refused(ErrorCode.CERT_NOT_FOUND, issuer.corrections.create, bad, HOLDER, "renewal", None, "请换证")
    _refused(
        ErrorCode.CORRECTION_NOT_YOURS,
        issuer.corrections.create,
        package,
        OTHER_HOLDER,
        "renewal",
        None,
        "请换证",
    )
    _refused(
        ErrorCode.FIELD_UNKNOWN, issuer.corrections.create, package, HOLDER, "field", "ext.nothing", "错"
    )
    _refused(ErrorCode.FIELD_UNKNOWN, issuer.corrections.create, package, HOLDER, "field", None, "错")
    _refused(
        ErrorCode.REQUEST_INVALID, issuer.corrections.create, package, HOLDER, "field", "holder.name", "  "
    )
    _refused(ErrorCode.REQUEST_INVALID, issuer.corrections.create, package, HOLDER, "other", None, "错")


def test_one_open_request_per_field_and_retries_return_the_first(issuer: Issuer) -> None:
    package = issuer.package(issuer.identifiers[1])
    first = issuer.corrections.create(package, HOLDER, "field", "ext.address", "门牌号错了", "key-1")
    again = issuer.corrections.create(package, HOLDER, "field", "ext.address", "门牌号错了", "key-1")
    assert (again.new, again.view.id, again.token) == (False, first.view.id, first.token)
    _refused(ErrorCode.IDEMPOTENCY_CONFLICT, issuer.corrections.create, package, HOLDER, "field", "ext.address",
             "另一段话", "key-1")  # fmt: skip
    with pytest.raises(CorrectionAlreadyOpen) as raised:
        issuer.corrections.create(package, HOLDER, "field", "ext.address", "还是门牌号", "key-2")
    assert (
        raised.value.existing_id == first.view.id and raised.value.code is ErrorCode.CORRECTION_ALREADY_OPEN
    )
    other = issuer.corrections.create(package, HOLDER, "renewal", "ignored", "请换证")
    assert other.view.field is None and other.view.id != first.view.id


def test_deadlines_follow_the_settings_and_overdue_requests_lead_the_queue(issuer: Issuer) -> None:
    assert IssuerSettings().correction_hours_for(TYPE) == 24  # the default
    made = []
    for i, hours_later in enumerate((0, 10, 1)):  # created at T0, T0+10h, T0+1h; each due 48 h later
        issuer.clock.now = T0 + dt.timedelta(hours=hours_later)
        made.append(
            issuer.corrections.create(issuer.package(issuer.identifiers[i]), HOLDER, "renewal", None, "换证")
        )
    issuer.clock.now = T0 + dt.timedelta(hours=51)  # the first overdue by 3 h, the third by 2 h
    queue, has_next = issuer.corrections.queue(ZJ_AGENCY_CODE)
    assert [v.id for v in queue] == [made[0].view.id, made[2].view.id, made[1].view.id] and not has_next
    assert queue[0].overdue_by(issuer.clock.now) == dt.timedelta(hours=3)
    assert queue[2].overdue_by(issuer.clock.now) is None
    with issuer.sessions() as session:
        rows = open_by_deadline(session, [ZJ_AGENCY_CODE], issuer.clock.now.date(), issuer.clock.now)
        due = [dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC) if isinstance(d, str) else d
               for d in session.scalars(text("SELECT due_at FROM correction_requests WHERE status = 'open'"))]  # fmt: skip
    now, soon = issuer.clock.now, issuer.clock.now + dt.timedelta(hours=24)
    due = [d if d.tzinfo else d.replace(tzinfo=dt.UTC) for d in due]
    expected = [["overdue", sum(d < now for d in due)], ["due_24h", sum(now <= d < soon for d in due)],
                ["later", sum(d >= soon for d in due)]]  # fmt: skip
    assert rows == expected == [["overdue", 2], ["due_24h", 1], ["later", 0]]


def test_fix_renews_the_certificate_and_the_holder_gets_the_new_package(issuer: Issuer) -> None:
    old = issuer.identifiers[2]
    package = issuer.package(old)
    made = issuer.corrections.create(package, HOLDER, "field", "ext.address", "门牌号应为 88 号")
    fixed = issuer.corrections.fix(ZJ_AGENCY_CODE, made.view.id, issuer.clerk_id, "clerk1",
                                   {"ext.address": "杭州市西湖区文三路88号"}, "已更正门牌号")  # fmt: skip
    assert fixed.status == "fixed" and fixed.answered_by == "clerk1" and fixed.reason == "已更正门牌号"
    new = fixed.new_identifier
    assert new is not None and new.split(".")[-2] == "002" and new.split(".")[-3] == old.split(".")[-3]
    view, renewed = issuer.corrections.read(made.view.id, made.token)
    assert view.status == "fixed" and renewed is None  # not confirmed on chain yet: pending
    issuer.worker.run_until_idle(timeout_s=120, poll_s=0.01)
    _view, renewed = issuer.corrections.read(made.view.id, made.token)
    assert renewed is not None
    values = Presentation.from_json(renewed).values()
    assert values["identifier"] == new and values["previousIdentifier"] == old
    assert values["ext.address"] == "杭州市西湖区文三路88号" and values["ext.legalRepresentative"] == "张三"
    assert values["holder.name"] == "杭州示例2号科技有限公司"
    with issuer.sessions() as session:
        assert session.scalar(select(Certificate.superseded_by).where(Certificate.identifier == old)) == new
    _refused(
        ErrorCode.CERT_SUPERSEDED, issuer.corrections.create, package, HOLDER, "renewal", None, "再换一次"
    )
    _refused(ErrorCode.CORRECTION_ANSWERED, issuer.corrections.refuse, ZJ_AGENCY_CODE, made.view.id,
             issuer.clerk_id, "clerk1", "晚了")  # fmt: skip


def test_refuse_needs_a_reason_and_both_answers_are_audited(issuer: Issuer) -> None:
    made = issuer.corrections.create(issuer.package(issuer.identifiers[3]), HOLDER, "renewal", None, "请换证")
    _refused(ErrorCode.CORRECTION_REASON_REQUIRED, issuer.corrections.refuse, ZJ_AGENCY_CODE, made.view.id,
             issuer.clerk_id, "clerk1", "   ")  # fmt: skip
    _refused(ErrorCode.CORRECTION_NOT_FOUND, issuer.corrections.refuse, "114401000075021133", made.view.id,
             issuer.clerk_id, "clerk1", "不是本机构的")  # fmt: skip
    refused = issuer.corrections.refuse(
        ZJ_AGENCY_CODE, made.view.id, issuer.clerk_id, "clerk1", "证照在有效期内，无需换证"
    )
    assert (refused.status, refused.reason, refused.new_identifier) == (
        "refused",
        "证照在有效期内，无需换证",
        None,
    )
    view, renewed = issuer.corrections.read(made.view.id, made.token)
    assert view.reason == "证照在有效期内，无需换证" and renewed is None
    again = issuer.corrections.create(
        issuer.package(issuer.identifiers[3]), HOLDER, "renewal", None, "再请换证"
    )
    assert again.view.id != made.view.id  # answered: no longer blocks a new one
    answered, _ = issuer.corrections.queue(ZJ_AGENCY_CODE, "answered")
    assert [v.id for v in answered] == [made.view.id]
    audit = AuditLog(issuer.sessions)
    entries = [e for e in audit.entries(ZJ_AGENCY_CODE) if e.action == "correction_refuse"]
    assert [(e.actor, e.subject, e.details["request"]) for e in entries] == [
        ("clerk1", issuer.identifiers[3], made.view.id)
    ]
    assert audit.verify(ZJ_AGENCY_CODE).ok
