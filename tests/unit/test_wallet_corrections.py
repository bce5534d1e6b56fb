"""The wallet's side of correction requests (issue 12, point 9) against a real issuer over real
HTTP (`ecert serve issuer` on an anvil chain, tests/api/issuer_server.py): the client's calls
and refusals, the wallet's table (its migration matches the model, the token and the message
are encrypted at rest), a form posted twice is one request, the list refreshed from the issuer
with a short, bounded wait, the last known state kept when the issuer is down, and the renewed
version kept and linked to the one it replaces once the agency fixed the request."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))  # the issuer as operators run it
from issuer_server import AGENCY_A, TYPE, IssuerHome, IssuerServer
from service_process import ECERT, wait_for

from registry.certificate.identifiers import id_number_check_char
from registry.certificate.presentation import Presentation
from registry.chain.runner import free_port
from registry.database import make_engine
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotFound
from registry.settings import Settings
from wallet.app import create_app
from wallet.corrections import version_of, versions
from wallet.db import MIGRATIONS, migrate
from wallet.models import Base
from wallet.runtime import WalletRuntime
from wallet.services import IssuerClient, ServiceRefused, ServiceUnavailable
from wallet.settings import WalletSettings

pytestmark = pytest.mark.chain


def id_number(serial: int) -> str:
    body = f"33010619800202{serial:03d}"
    return body + id_number_check_char(body)


HOLDER, OTHER = id_number(41), id_number(57)


# ─── the issuer, its certificates ────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuerServer]:
    home = IssuerHome(tmp_path_factory.mktemp("wallet-corrections"))
    home.env["ECERT_ISSUER_CONFIRMATIONS"] = "0"
    try:
        home.set_up()
        server = IssuerServer(home, "sqlite")
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        home.tear_down()


@pytest.fixture(scope="module")
def api(issuer: IssuerServer) -> Iterator[httpx.Client]:
    with issuer.client(issuer.api_key(AGENCY_A, "issue,status")) as client:
        yield client


def issue(api: httpx.Client, *holders: tuple[str, str]) -> list[str]:
    records = [{"holder": {"name": name, "code": code}, "validUntil": "2040-12-31", "number": f"33010660{n:04d}",
                "ext": {"type": "个体工商户", "address": "浙江省杭州市西湖区文三路 1 号", "scope": ["餐饮服务"]}}
               for n, (name, code) in enumerate(holders)]  # fmt: skip
    job = api.post("/v1/batches", json={"typeCode": TYPE, "typeName": "营业执照", "records": records})
    assert job.status_code == 202, job.text
    done = wait_for(
        lambda: (j := api.get(f"/v1/jobs/{job.json()['id']}").json())["done"] and j, what="issuing"
    )
    assert not done["errors"], done["errors"]
    identifiers: list[str] = done["identifiers"]
    return identifiers


def package_of(api: httpx.Client, identifier: str) -> dict[str, Any]:
    response = api.get(f"/v1/certificates/{identifier}/package")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def packages(api: httpx.Client) -> list[dict[str, Any]]:
    """Six certificates of HOLDER (each test its own) and, last, one of OTHER."""
    ids = issue(api, *[("王小明", HOLDER)] * 6, ("李四", OTHER))
    return [package_of(api, i) for i in ids]


# ─── the wallet ──────────────────────────────────────────────────────────────────────────


class WalletUnderTest:
    """The wallet's runtime (its own database, keys and issuer client), no pages: the services."""

    def __init__(self, tmp: Path, issuer_url: str) -> None:
        self.tmp = tmp
        self.runtime = self.open(issuer_url)
        self.holder = self.runtime.holders.register("王小明", HOLDER, "correct horse 42", ip="127.0.0.1")

    def open(self, issuer_url: str) -> WalletRuntime:
        """A runtime on this wallet's database and keys (another for the same wallet, e.g. with its issuer down)."""
        settings = WalletSettings(issuer_url=issuer_url, verifier_url=down_url(), password_scrypt_n=1024,
                                  status_cache_s=0)  # fmt: skip
        return WalletRuntime.open(settings, Settings(home=self.tmp / ".ecert"))

    def keep(self, package: dict[str, Any]) -> Any:
        return self.runtime.vault.add(self.holder, Presentation.from_json(package))


@pytest.fixture
def wallet(tmp_path: Path, issuer: IssuerServer) -> Iterator[WalletUnderTest]:
    made = WalletUnderTest(tmp_path, issuer.url)
    yield made
    made.runtime.close()


def down_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


# ─── storage ─────────────────────────────────────────────────────────────────────────────


def test_migration_0003_makes_the_table_the_model_describes_and_goes_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wallet.sqlite'}"
    engine = make_engine(url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert "wallet_correction_requests" in sa.inspect(connection).get_table_names()
        differences = [
            d for d in differences if not (d[0] == "remove_table" and d[1].name.startswith("alembic_version"))
        ]
        assert not differences, differences
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("version_table", "alembic_version_wallet")
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        with engine.connect() as connection:
            assert "wallet_correction_requests" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()


# ─── the client ──────────────────────────────────────────────────────────────────────────


def test_the_client_says_the_issuer_is_unavailable_when_nothing_answers() -> None:
    client = IssuerClient(down_url(), timeout_s=2)
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            client.request_correction({"leaves": []}, HOLDER, "renewal", None, "请换发")
        assert raised.value.code == ErrorCode.ISSUER_UNAVAILABLE
        with pytest.raises(ServiceUnavailable):
            client.correction("cr_x", "t" * 32, timeout_s=1)
    finally:
        client.close()


def test_the_client_makes_a_request_reads_it_back_and_gets_the_issuers_refusals(
    issuer: IssuerServer, packages: list[dict[str, Any]]
) -> None:
    client = IssuerClient(issuer.url, timeout_s=15)
    try:
        made = client.request_correction(
            packages[0], HOLDER, "field", "ext.address", "门牌号应为 2 号", "key-one-0001"
        )
        assert made["status"] == "open" and made["id"] and len(made["token"]) >= 32
        created, due = (
            dt.datetime.fromisoformat(made[k].replace("Z", "+00:00")) for k in ("createdAt", "dueAt")
        )
        assert due - created == dt.timedelta(hours=24)
        again = client.request_correction(
            packages[0], HOLDER, "field", "ext.address", "门牌号应为 2 号", "key-one-0001"
        )
        assert again["id"] == made["id"]  # a retried post is the same request

        read = client.correction(made["id"], made["token"])
        assert (read["status"], read["field"], read["message"], read["package"]) == (
            "open", "ext.address", "门牌号应为 2 号", None,
        )  # fmt: skip
        for token in ("x" * 32, ""):
            with pytest.raises(ServiceRefused) as raised:
                client.correction(made["id"], token)
            assert raised.value.status == 404
        with pytest.raises(ServiceRefused) as raised:  # someone else's ID number: refused, not "unavailable"
            client.request_correction(packages[0], OTHER, "renewal", None, "请换发")
        assert raised.value.status == 403
        with pytest.raises(ServiceRefused) as raised:  # the same field again while the first is open
            client.request_correction(packages[0], HOLDER, "field", "ext.address", "再问一次")
        assert raised.value.status == 409 and raised.value.problem.get("code") == "CORRECTION_ALREADY_OPEN"
        partial = Presentation.from_json(packages[0]).disclose(["holder.name"]).to_json()
        with pytest.raises(ServiceRefused) as raised:  # a partial package proves nothing
            client.request_correction(partial, HOLDER, "renewal", None, "请换发")
        assert (raised.value.status, raised.value.code) == (404, ErrorCode.CERT_NOT_FOUND)
    finally:
        client.close()


# ─── the wallet's requests ───────────────────────────────────────────────────────────────


def test_a_request_is_kept_with_its_token_and_message_encrypted_and_is_the_holders_alone(
    wallet: WalletUnderTest, packages: list[dict[str, Any]]
) -> None:
    corrections, card = wallet.runtime.corrections, wallet.keep(packages[1])
    made = corrections.request(
        wallet.holder, card, "field", "holder.name", "名字里的“明”写错了", "nonce-aaaaaaaaaaaaaaaa"
    )
    assert made.status == "open" and made.identifier == card.identifier and made.certificate_id == card.id
    assert made.due_at - made.created_at == dt.timedelta(hours=24)
    assert made.state(made.created_at) == "open" and made.hours_left(made.created_at) == 24
    assert made.state(made.due_at) == "overdue"
    # The same form posted twice (its nonce) is the same request, kept once.
    assert (
        corrections.request(
            wallet.holder, card, "field", "holder.name", "名字里的“明”写错了", "nonce-aaaaaaaaaaaaaaaa"
        ).id
        == made.id
    )
    assert [i.id for i in corrections.list(wallet.holder.id)] == [made.id]

    with wallet.runtime.engine.connect() as connection:
        dump = repr(connection.exec_driver_sql("SELECT * FROM wallet_correction_requests").all())
    assert made.id in dump and "名字" not in dump and "token" not in dump.lower()
    with pytest.raises(NotFound):
        corrections.get(wallet.holder.id + 1, made.id)  # another holder's id is not found
    with pytest.raises(EcertError) as raised:
        corrections.request(wallet.holder, card, "field", "holder.code", "", None)
    assert raised.value.details["field"] == "message"
    with pytest.raises(EcertError) as raised:
        corrections.request(wallet.holder, card, "field", "typeCode", "类型代码错了", None)
    assert raised.value.code == ErrorCode.FIELD_UNKNOWN


def test_the_list_is_refreshed_from_the_issuer_and_keeps_the_last_known_state_when_it_is_down(
    wallet: WalletUnderTest, issuer: IssuerServer, packages: list[dict[str, Any]]
) -> None:
    card = wallet.keep(packages[2])
    made = wallet.runtime.corrections.request(wallet.holder, card, "renewal", None, "经营场所搬迁，请换发")
    refreshed = wallet.runtime.corrections.refresh(wallet.holder)
    assert not refreshed.unavailable and refreshed.checked == 1
    [item] = refreshed.items
    assert item.status == "open" and item.checked_at is not None and item.checked_at >= made.checked_at

    down = wallet.open(down_url())
    try:
        started = dt.datetime.now(dt.UTC)
        refreshed = down.corrections.refresh(wallet.holder, timeout_s=2)
        assert refreshed.unavailable and refreshed.checked == 0
        assert [(i.id, i.status, i.message) for i in refreshed.items] == [
            (made.id, "open", "经营场所搬迁，请换发")
        ]
        assert dt.datetime.now(dt.UTC) - started < dt.timedelta(seconds=30)  # stops at the first failure
    finally:
        down.close()


def test_versions_link_a_renewal_to_the_version_it_replaces(wallet: WalletUnderTest, api: httpx.Client,
                                                            packages: list[dict[str, Any]]) -> None:  # fmt: skip
    old = wallet.keep(packages[5])
    job = api.post(f"/v1/certificates/{old.identifier}/renewals", json={"changes": {"ext": {"type": "个体工商户",
                   "address": "浙江省杭州市西湖区文三路 2 号", "scope": ["餐饮服务"]}}})  # fmt: skip
    assert job.status_code == 202, job.text
    done = wait_for(
        lambda: (j := api.get(f"/v1/jobs/{job.json()['id']}").json())["done"] and j, what="renewal"
    )
    [new_identifier] = done["identifiers"]
    new = wallet.keep(package_of(api, new_identifier))
    cards = wallet.runtime.vault.list(wallet.holder.id)
    assert (version_of(old.identifier), version_of(new.identifier)) == (1, 2)
    of_new, of_old = versions(new, cards), versions(old, cards)
    assert (of_new.version, of_new.replaces_version, of_new.replaces and of_new.replaces.id) == (2, 1, old.id)
    assert (of_old.version, of_old.replaced_by and of_old.replaced_by.id, of_old.replaced_by_version) == (
        1,
        new.id,
        2,
    )


# ─── the agency's answers ────────────────────────────────────────────────────────────────


@pytest.fixture
def agency(issuer: IssuerServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, int]]:
    """The agency answering with the issuer's own Python API (`issuer.corrections`) on the running
    issuer's database and keystore, as its console does; a clerk added with `ecert issuer staff add`."""
    username = f"clerk{secrets.token_hex(4)}"
    done = subprocess.run([*ECERT, "issuer", "staff", "add", "--agency", AGENCY_A, "--role", "clerk", "--username",
                           username, "--password-stdin"], env=issuer.env, input="clerk-password-42\n",
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    staff_id = int(re.search(r"staff member (\d+)", done.stderr).group(1))  # type: ignore[union-attr]
    for name, value in issuer.env.items():
        if name.startswith("ECERT_"):
            monkeypatch.setenv(name, value)
    from issuer.runtime import IssuerRuntime
    from registry.workspace import Workspace

    runtime = IssuerRuntime.open(Workspace(Settings()))
    try:
        yield runtime.corrections, staff_id
    finally:
        runtime.close()


def test_a_fix_brings_the_renewed_version_into_the_wallet_linked_to_the_old_one(
    wallet: WalletUnderTest, agency: tuple[Any, int], packages: list[dict[str, Any]]
) -> None:
    corrections, (issuer_side, staff_id) = wallet.runtime.corrections, agency
    old = wallet.keep(packages[3])
    made = corrections.request(wallet.holder, old, "field", "ext.address", "门牌号应为 9 号")
    fixed = issuer_side.fix(AGENCY_A, made.id, staff_id, "clerk", {"ext.address": "浙江省杭州市西湖区文三路 9 号"},
                            "已按登记信息更正")  # fmt: skip
    assert fixed.status == "fixed" and fixed.new_identifier

    def renewed() -> Any:  # fixed at once; the package once the new version is anchored
        [item] = corrections.refresh(wallet.holder).items
        return item.new_certificate_id and item

    item = wait_for(renewed, timeout_s=90, every_s=0.5, what="the renewed package")
    assert (item.status, item.answer, item.new_identifier) == (
        "fixed",
        "已按登记信息更正",
        fixed.new_identifier,
    )
    new = wallet.runtime.vault.get(wallet.holder.id, item.new_certificate_id)
    assert (
        new.identifier == fixed.new_identifier
        and new.fields["ext"]["address"] == "浙江省杭州市西湖区文三路 9 号"
    )
    linked = versions(new, wallet.runtime.vault.list(wallet.holder.id))
    assert (linked.version, linked.replaces_version, linked.replaces and linked.replaces.id) == (2, 1, old.id)
    assert (
        corrections.refresh(wallet.holder).checked == 0
    )  # nothing is waiting any more: the issuer is not asked
    with pytest.raises(ServiceRefused) as raised:  # the old version is superseded: ask about the newest
        corrections.request(wallet.holder, old, "renewal", None, "请换发")
    assert (raised.value.status, raised.value.problem.get("code")) == (409, "CERT_SUPERSEDED")


def test_a_refusal_reaches_the_wallet_with_its_reason(
    wallet: WalletUnderTest, agency: tuple[Any, int], packages: list[dict[str, Any]]
) -> None:
    corrections, (issuer_side, staff_id) = wallet.runtime.corrections, agency
    card = wallet.keep(packages[4])
    made = corrections.request(wallet.holder, card, "field", "ext.scope[0]", "经营范围少了“食品销售”")
    issuer_side.refuse(AGENCY_A, made.id, staff_id, "clerk", "经营范围以登记机关核准的为准")
    refreshed = corrections.refresh(wallet.holder)
    assert not refreshed.unavailable and refreshed.checked == 1
    [item] = refreshed.items
    assert (item.status, item.answer, item.new_certificate_id, item.field) == (
        "refused", "经营范围以登记机关核准的为准", None, "ext.scope[0]",
    )  # fmt: skip
    assert item.answered_at is not None and item.state(corrections.now()) == "refused"
    with wallet.runtime.engine.connect() as connection:
        dump = repr(connection.exec_driver_sql("SELECT * FROM wallet_correction_requests").all())
    assert "经营范围以登记机关核准" not in dump  # the agency's words are kept encrypted too


# ─── the pages ───────────────────────────────────────────────────────────────────────────


@pytest.fixture
def site(wallet: WalletUnderTest) -> Iterator[str]:
    """The wallet's pages served over real HTTP (uvicorn in a thread) on the runtime above."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(wallet.runtime), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout_s=10, every_s=0.01, what="the wallet")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@contextmanager
def signed_in(url: str, id_number: str, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        done = client.post(
            "/login", data={"csrf_token": token, "id_number": id_number, "password": "correct horse 42"}
        )
        assert done.status_code == 303, done.text
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_the_pages_need_the_csrf_token_say_what_is_already_open_and_keep_requests_to_their_holder(
    wallet: WalletUnderTest, site: str, packages: list[dict[str, Any]]
) -> None:
    card = wallet.keep(packages[2])
    with signed_in(site, HOLDER, "王小明") as client:
        form = client.get(f"/certificates/{card.id}/correction")
        assert form.status_code == 200 and 'data-target="ext.scope[0]"' in form.text
        token, nonce = csrf_of(form.text), re.search(r'name="nonce" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        data = {"nonce": nonce, "target": "holder.name", "message": "名字有误"}
        assert client.post(f"/certificates/{card.id}/correction", data=data).status_code == 403  # no token
        assert wallet.runtime.corrections.list(wallet.holder.id) == []
        sent = client.post(f"/certificates/{card.id}/correction", data={**data, "csrf_token": token})
        assert sent.status_code == 303 and sent.headers["location"].endswith("?sent=1")
        request_path = sent.headers["location"].split("?")[0]
        page = client.get(sent.headers["location"])
        assert page.status_code == 200 and 'data-state="open"' in page.text and "名字有误" in page.text

        again = client.post(
            f"/certificates/{card.id}/correction", data={**data, "csrf_token": token, "nonce": "x" * 24}
        )
        assert again.status_code == 409 and 'data-code="CORRECTION_ALREADY_OPEN"' in again.text
        assert (
            f'href="{request_path}"' in again.text and "名字有误" in again.text
        )  # a link to it, the draft kept
        listed = client.get("/corrections")
        assert listed.status_code == 200 and listed.text.count('class="card correction-item"') == 1

    other = wallet.runtime.holders.register("李四", OTHER, "correct horse 42", ip="127.0.0.2")
    assert other.id != wallet.holder.id
    with signed_in(site, OTHER, "李四") as client:
        assert client.get(request_path).status_code == 404  # another holder's request is not found
        assert 'class="card correction-item"' not in client.get("/corrections").text
