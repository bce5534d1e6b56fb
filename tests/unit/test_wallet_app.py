"""The wallet's pages and API against fake issuer and verifier services (httpx transports passed
in as seams): accounts, CSRF, rate limits, ownership, claims, shares, the access log, headers."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account

from registry.certificate.canonical import make_leaves
from registry.certificate.identifiers import id_number_check_char
from registry.certificate.merkle import batch_tree, field_digest
from registry.certificate.model import Issuer, build_fields
from registry.certificate.presentation import Presentation, batch_presentations
from registry.certificate.seal import sign_seal
from registry.chain.runner import free_port
from registry.settings import Settings
from wallet.app import create_app
from wallet.runtime import WalletRuntime
from wallet.settings import WalletSettings

ISSUER = Issuer("杭州市市场监督管理局", "11330100002493028E", "330100")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PASSWORD = "correct horse 42"


def id_number(serial: int) -> str:
    body = f"33010619900101{serial:03d}"
    return body + id_number_check_char(body)


ALICE, BOB = id_number(11), id_number(23)


def packages(*holders: tuple[str, str]) -> list[Presentation]:
    """Sealed holder packages (a batch of one agency), made with the core only: no chain needed."""
    records = [{"holder": {"name": name, "code": code}, "validUntil": "2040-12-31",
                "ext": {"address": "杭州市西湖区", "scope": ["餐饮服务", "食品销售"]}} for name, code in holders]  # fmt: skip
    fields = [build_fields(r, type_code="11100000000013338W001", type_name="营业执照", issuer=ISSUER, serial=f"W{i}")
              for i, r in enumerate(records)]  # fmt: skip
    leaves = [make_leaves(f) for f in fields]
    digests = [field_digest(leaf) for leaf in leaves]
    key = bytes(Account.create().key)
    seals = [sign_seal(key, 31337, REGISTRY, d) for d in digests]
    return batch_presentations(
        chain_id=31337,
        registry=REGISTRY,
        leaves=leaves,
        digests=digests,
        seals=seals,
        tree=batch_tree(digests),
    )


class FakeIssuer:
    """POST /v1/claims {code, holderCode}: each code once."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, Any]] = {}
        self.down = False

    def add(self, code: str, presentation: Presentation) -> str:
        self.codes[code] = presentation.to_json()
        return code

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("down", request=request)
        assert request.url.path == "/v1/claims", "a claim code must never travel in a URL"
        code = json.loads(request.content)["code"]
        if code not in self.codes:
            return httpx.Response(
                404, json={"code": "CLAIM_INVALID", "detail": "Unknown or already used claim code"}
            )
        holder = Presentation.from_json(self.codes[code]).fields()["holder"]["code"]
        if (
            json.loads(request.content)["holderCode"] != holder
        ):  # as issuer/service.py: refused, the code kept
            return httpx.Response(
                403, json={"code": "CLAIM_NOT_YOURS", "detail": "This certificate belongs to someone else"}
            )
        return httpx.Response(200, json=self.codes.pop(code))


class FakeVerifier:
    """The verifier node's wallet endpoints, as `verifier/api/shares.py` and `holdings.py` answer
    them to one wallet: the access log of a holder is that of their held digests and their shares."""

    def __init__(self) -> None:
        self.shares: dict[str, dict[str, Any]] = {}
        self.holdings: dict[str, set[str]] = {}  # holderRef → digests held for them
        self.log: list[dict[str, Any]] = []
        self.verified: list[dict[str, Any]] = []
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectTimeout("slow", request=request)
        assert request.headers["authorization"] == "Bearer vk_test"
        path, params = request.url.path, request.url.params
        if request.method == "POST" and path == "/v1/verifications":
            body = json.loads(request.content)
            self.verified.append(body)
            return httpx.Response(200, json={"verdict": "VALID", "reason": None, "checks": [], "block": 7})
        if request.method == "POST" and path == "/v1/shares":
            body = json.loads(request.content)
            share_id = uuid.uuid4().hex
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=body["expiresInMinutes"])
            presentation = Presentation.from_json(body["presentation"])
            self.shares[share_id] = {"id": share_id, "holderRef": body["holderRef"], "fields": presentation.paths(),
                                     "purpose": body["purpose"], "expiresAt": expires.isoformat(), "singleUse": body["singleUse"],
                                     "dynamic": body["dynamic"], "used": False, "withdrawn": False, "expired": False,
                                     "digest": "0x" + presentation.digest.hex()}  # fmt: skip
            return httpx.Response(
                201,
                json={**self.shares[share_id], "token": "t" + share_id, "url": f"http://node/s/t{share_id}"},
            )
        if request.method == "GET" and path == "/v1/shares":
            return httpx.Response(
                200, json=[s for s in self.shares.values() if s["holderRef"] == params["holderRef"]]
            )
        match = re.fullmatch(r"/v1/shares/(\w+)(/dynamic-code)?", path)
        if match:
            share = self.shares.get(match.group(1))
            if share is None or share["holderRef"] != params["holderRef"]:
                return httpx.Response(
                    404, json={"code": "SHARE_NOT_FOUND", "detail": "No such share of this holder"}
                )
            if match.group(2):
                until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
                return httpx.Response(200, json={"code": "c0ffee", "validUntil": until.isoformat()})
            share["withdrawn"] = True
            return httpx.Response(200, json=share)
        if request.method == "POST" and path == "/v1/holdings":
            body = json.loads(request.content)
            presentation = Presentation.from_json(body["presentation"])
            if presentation.is_partial or presentation.computed_digest() != presentation.digest:
                return httpx.Response(422, json={"code": "CERT_PARTIAL", "detail": "Not a full package"})
            digest = "0x" + presentation.digest.hex()
            self.holdings.setdefault(body["holderRef"], set()).add(digest)
            return httpx.Response(201, json={"digest": digest, "since": dt.datetime.now(dt.UTC).isoformat()})
        if request.method == "GET" and path == "/v1/holdings":
            held = self.holdings.get(params["holderRef"], set())
            return httpx.Response(
                200, json=[{"digest": d, "since": "2030-01-01T00:00:00+00:00"} for d in sorted(held)]
            )
        if path == "/v1/access-log":
            if not params.get("holderRef"):
                return httpx.Response(
                    422, json={"code": "REQUEST_INVALID", "detail": "holderRef is required"}
                )
            digests = self.holdings.get(params["holderRef"], set())
            ids = {i for i, s in self.shares.items() if s["holderRef"] == params["holderRef"]}
            return httpx.Response(
                200, json=[e for e in self.log if e["digest"] in digests or e["shareId"] in ids]
            )
        return httpx.Response(404, json={"code": "NOT_FOUND"})


class Wallet:
    """The wallet app served by uvicorn in a thread (real HTTP, real cookies), its neighbours fake."""

    def __init__(self, tmp: Path, **overrides: Any) -> None:
        self.issuer, self.verifier = FakeIssuer(), FakeVerifier()
        settings = WalletSettings(**{"verifier_key": "vk_test", "password_scrypt_n": 1024, "status_cache_s": 0, "login_max_failures": 3,
                                     "claim_max_failures": 4, **overrides})  # fmt: skip
        self.runtime = WalletRuntime.open(settings, Settings(home=tmp / ".ecert"), issuer_transport=httpx.MockTransport(self.issuer),
                                          verifier_transport=httpx.MockTransport(self.verifier))  # fmt: skip
        self.app = create_app(self.runtime)
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=int(self.url.rsplit(":", 1)[1]),
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
        )  # as `ecert serve wallet`: X-Forwarded-For only from ECERT_WALLET_TRUSTED_PROXIES
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the wallet did not start"
            time.sleep(0.01)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.runtime.close()


def csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)


def register(client: httpx.Client, name: str, code: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf(client, "/register")
    return client.post("/register", data={"csrf_token": token, "name": name, "id_number": code, "password": password,
                                          "password_confirm": password})  # fmt: skip


def claim(client: httpx.Client, code: str) -> httpx.Response:
    return client.post("/claim", data={"csrf_token": csrf(client, "/claim"), "code": code})


@pytest.fixture
def wallet(tmp_path: Path) -> Iterator[Wallet]:
    made = Wallet(tmp_path)
    yield made
    made.close()


@pytest.fixture
def alice(wallet: Wallet) -> Iterator[tuple[httpx.Client, str]]:
    """Alice signed in, with one claimed certificate (its wallet id)."""
    [package] = packages(("王小丽", ALICE))
    with wallet.client() as client:
        assert register(client, "王小丽", ALICE).status_code == 303
        done = claim(client, wallet.issuer.add("ABCD-EFGH-JKLM", package))
        assert done.status_code == 303, done.text
        yield client, done.headers["location"].split("/")[2].split("?")[0]


def share(client: httpx.Client, card: str, *fields: str, minutes: str = "5", mode: str = "link") -> str:
    token = csrf(client, f"/certificates/{card}/share")
    done = client.post(f"/certificates/{card}/share", data={"csrf_token": token, "fields": list(fields), "purpose": "银行开户",
                                                             "expiry": minutes, "mode": mode})  # fmt: skip
    assert done.status_code == 303, done.text
    return done.headers["location"].split("/")[2]


# ─── accounts ────────────────────────────────────────────────────────────────────────────


def test_register_sign_out_and_in_with_an_http_only_same_site_cookie(wallet: Wallet) -> None:
    with wallet.client() as client:
        done = register(client, "王小丽", ALICE.lower())  # a lowercase x is accepted, stored upper-case
        assert done.status_code == 303 and done.headers["location"] == "/claim?welcome=1"
        cookie = done.headers["set-cookie"]
        assert "wallet_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert client.get("/settings").status_code == 200
        client.post("/logout", data={"csrf_token": csrf(client, "/settings")})
        assert client.get("/settings").headers["location"] == "/login?next=/settings"
        token = csrf(client, "/login")
        signed = client.post(
            "/login", data={"csrf_token": token, "id_number": ALICE, "password": PASSWORD, "next": "/shares"}
        )
        assert (signed.status_code, signed.headers["location"]) == (303, "/shares")


@pytest.mark.parametrize(("code", "password", "error"), [
    (ALICE[:-1] + ("0" if ALICE[-1] != "0" else "1"), PASSWORD, "ID_CHECK_CHAR"),
    ("33010619901301011X", PASSWORD, "ID_DATE"),
    ("12345", PASSWORD, "ID_FORMAT"),
    (ALICE, "short", "PASSWORD_TOO_SHORT"),
    (ALICE, ALICE + "a", "PASSWORD_WEAK"),
])  # fmt: skip
def test_registration_checks_the_id_number_with_gb_11643_and_the_password(
    wallet: Wallet, code: str, password: str, error: str
) -> None:
    with wallet.client() as client:
        done = register(client, "王小丽", code, password)
        assert done.status_code == 422 and f'data-code="{error}"' in done.text
        assert "wallet_session" not in done.headers.get("set-cookie", "")


def test_an_id_number_registers_once_and_is_stored_encrypted(wallet: Wallet) -> None:
    with wallet.client() as client:
        assert register(client, "王小丽", ALICE).status_code == 303
    with wallet.client() as other:
        assert 'data-code="HOLDER_EXISTS"' in register(other, "冒名", ALICE).text
    with wallet.runtime.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM wallet_holders").all()
    dump = repr(rows)
    assert ALICE not in dump and "王小丽" not in dump and PASSWORD not in dump and "scrypt$" in dump


def test_login_is_rate_limited_per_account_even_with_the_right_password(wallet: Wallet) -> None:
    with wallet.client() as client:
        register(client, "王小丽", ALICE)
    with wallet.client() as client:
        for _ in range(3):
            token = csrf(client, "/login")
            assert (
                client.post(
                    "/login", data={"csrf_token": token, "id_number": ALICE, "password": "wrong-password"}
                ).status_code
                == 401
            )
        token = csrf(client, "/login")
        locked = client.post("/login", data={"csrf_token": token, "id_number": ALICE, "password": PASSWORD})
        assert (
            locked.status_code == 429
            and int(locked.headers["retry-after"]) > 0
            and 'data-code="RATE_LIMITED"' in locked.text
        )


def test_posts_without_the_csrf_token_are_refused(wallet: Wallet, alice: tuple[httpx.Client, str]) -> None:
    client, card = alice
    assert client.post("/claim", data={"code": "ABCD-EFGH-JKLM"}).status_code == 403
    assert (
        client.post(
            f"/certificates/{card}/share", data={"fields": ["holder.name"], "expiry": "5"}
        ).status_code
        == 403
    )
    assert client.post("/logout", data={"csrf_token": "0" * 64}).status_code == 403
    assert client.get("/settings").status_code == 200  # still signed in
    origin = client.post(
        "/logout", data={"csrf_token": csrf(client, "/settings")}, headers={"Origin": "https://evil.example"}
    )
    assert origin.status_code == 403
    with wallet.client() as anonymous:
        assert anonymous.post("/login", data={"id_number": ALICE, "password": PASSWORD}).status_code == 403
    assert wallet.verifier.shares == {}


# ─── claims and certificates ─────────────────────────────────────────────────────────────


def test_claim_shows_the_face_and_live_status_and_a_code_works_once(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, card = alice
    page = client.get(f"/certificates/{card}")
    assert page.status_code == 200 and "营业执照" in page.text and 'data-verdict="VALID"' in page.text
    assert "3301**********" in page.text and ALICE not in page.text  # the face shows the masked twin
    asked = wallet.verifier.verified[-1]
    assert set(Presentation.from_json(asked["package"]).paths()) == {
        "identifier",
        "typeCode",
        "issuer.code",
        "validFrom",
        "validUntil",
    }  # not the person
    again = claim(client, "ABCD-EFGH-JKLM")
    assert again.status_code == 404 and 'data-code="CLAIM_INVALID"' in again.text  # as the issuer answers it
    listing = client.get("/certificates")
    assert listing.text.count('data-certificate="') == 1


def test_someone_elses_certificate_is_refused_at_claim(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, _ = alice
    [bobs] = packages(("李大壮", BOB))
    refused = claim(client, wallet.issuer.add("BBBB-CCCC-DDDD", bobs))
    assert refused.status_code == 403 and 'data-code="CLAIM_NOT_YOURS"' in refused.text
    assert client.get("/certificates").text.count('data-certificate="') == 1
    assert "BBBB-CCCC-DDDD" in wallet.issuer.codes  # not used up: still Bob's to claim


def test_a_down_issuer_or_verifier_is_a_message_never_a_500(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, card = alice
    wallet.issuer.down = wallet.verifier.down = True
    failed = claim(client, "WXYZ-WXYZ-WXYZ")
    assert failed.status_code == 503 and 'data-code="ISSUER_UNAVAILABLE"' in failed.text
    listing = client.get("/certificates")
    assert listing.status_code == 200 and 'data-verdict="UNAVAILABLE"' in listing.text
    assert client.get("/shares").status_code == 200
    assert client.get("/access-log").status_code == 503
    token = csrf(client, f"/certificates/{card}/share")
    made = client.post(
        f"/certificates/{card}/share", data={"csrf_token": token, "fields": ["holder.name"], "expiry": "5"}
    )
    assert made.status_code == 503 and 'data-code="VERIFIER_UNAVAILABLE"' in made.text


# ─── shares ──────────────────────────────────────────────────────────────────────────────


def test_share_discloses_the_chosen_fields_and_the_validity_period(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, card = alice
    form = client.get(f"/certificates/{card}/share").text
    assert re.search(r'value="holder.codeMasked" data-path="holder.codeMasked" checked', form)
    assert not re.search(r'value="holder.code" data-path="holder.code"[^>]* checked', form)
    share_id = share(client, card, "holder.name", "ext.scope")
    [stored] = wallet.verifier.shares.values()
    assert set(stored["fields"]) == {
        "holder.name",
        "ext.scope[0]",
        "ext.scope[1]",
        "validFrom",
        "validUntil",
        "identifier",
        "typeCode",
        "issuer.code",
    }
    page = client.get(f"/shares/{share_id}")
    assert (
        'id="share-qr"' in page.text and "http://node/s/t" in page.text and 'data-state="active"' in page.text
    )


def test_share_form_refuses_bad_expiry_and_no_fields(alice: tuple[httpx.Client, str]) -> None:
    client, card = alice
    for data, code in (({"fields": ["holder.name"], "expiry": "7"}, "SHARE_LIFETIME_INVALID"), ({"expiry": "5"}, "FIELDS_EMPTY"),
                       ({"fields": ["nope"], "expiry": "5"}, "FIELD_UNKNOWN")):  # fmt: skip
        done = client.post(
            f"/certificates/{card}/share",
            data={"csrf_token": csrf(client, f"/certificates/{card}/share"), **data},
        )
        assert done.status_code == 422 and f'data-code="{code}"' in done.text


def test_another_holder_cannot_see_share_or_withdraw(wallet: Wallet, alice: tuple[httpx.Client, str]) -> None:
    client, card = alice
    share_id = share(client, card, "holder.name")
    with wallet.client() as bob:
        register(bob, "李大壮", BOB)
        token = csrf(bob, "/settings")
        for path in (f"/certificates/{card}", f"/certificates/{card}/share", f"/shares/{share_id}", f"/shares/{share_id}/dynamic.png",
                     f"/api/v1/certificates/{card}", f"/api/v1/shares/{share_id}/dynamic-code"):  # fmt: skip
            assert bob.get(path).status_code == 404, path
        assert (
            bob.post(
                f"/certificates/{card}/share",
                data={"csrf_token": token, "fields": ["holder.name"], "expiry": "5"},
            ).status_code
            == 404
        )
        assert bob.post(f"/shares/{share_id}/withdraw", data={"csrf_token": token}).status_code == 404
        assert bob.delete(f"/api/v1/shares/{share_id}", headers={"X-CSRF-Token": token}).status_code == 404
        assert bob.post(f"/api/v1/certificates/{card}/shares", json={"fields": ["holder.name"], "expiresInMinutes": 5},
                        headers={"X-CSRF-Token": token}).status_code == 404  # fmt: skip
        assert bob.get("/api/v1/certificates").json() == [] and bob.get("/api/v1/shares").json() == []
    assert len(wallet.verifier.shares) == 1 and not next(iter(wallet.verifier.shares.values()))["withdrawn"]


def test_withdraw_and_the_api_needs_its_csrf_header(wallet: Wallet, alice: tuple[httpx.Client, str]) -> None:
    client, card = alice
    share_id = share(client, card, "holder.name")
    assert client.delete(f"/api/v1/shares/{share_id}").status_code == 403
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/shares").text).group(1)
    assert (
        client.delete(f"/api/v1/shares/{share_id}", headers={"X-CSRF-Token": token}).json()["state"]
        == "withdrawn"
    )
    page = client.get(f"/shares/{share_id}")
    assert 'data-state="withdrawn"' in page.text and 'id="share-qr"' not in page.text


def test_dynamic_share_page_and_image(wallet: Wallet, alice: tuple[httpx.Client, str]) -> None:
    client, card = alice
    share_id = share(client, card, "holder.name", mode="dynamic")
    assert client.get(f"/shares/{share_id}/dynamic").status_code == 200
    image = client.get(f"/shares/{share_id}/dynamic.png")
    assert image.headers["content-type"] == "image/png" and image.headers["cache-control"] == "no-store"
    from registry.qr import decode_qr

    assert decode_qr(image.content)[0].endswith("?c=c0ffee")


def test_access_log_lists_others_newest_first_and_hides_the_wallets_own_checks(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, card = alice
    share_id = share(client, card, "holder.name")
    digest = next(iter(wallet.verifier.shares.values()))["digest"]
    base = {
        "region": "330000",
        "digest": digest,
        "identifier": None,
        "fields": ["holder.name", "validFrom"],
        "reason": None,
    }
    wallet.verifier.log = [
        {**base, "at": "2030-01-02T03:04:05+00:00", "organisation": "某某银行杭州分行", "purpose": "开户", "shareId": share_id,
         "verdict": "VALID", "channel": "link"},
        {**base, "at": "2030-01-01T00:00:00+00:00", "organisation": "浙里办钱包", "purpose": "持证人查看 / holder view",
         "shareId": None, "verdict": "VALID", "channel": "api"},
    ]  # fmt: skip
    page = client.get("/access-log")
    assert 'data-organisation="某某银行杭州分行"' in page.text and "浙里办钱包" not in page.text
    assert "2030-01-02 11:04:05" in page.text  # Beijing time


def test_a_verification_at_another_region_s_node_shows_the_bank_its_region_and_that_node(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, card = alice
    share_id = share(client, card, "holder.name")
    digest = next(iter(wallet.verifier.shares.values()))["digest"]
    wallet.verifier.log = [{
        "at": "2030-01-02T03:04:05+00:00", "organisation": "广州银行", "region": "440100", "purpose": "跨省开户",
        "digest": digest, "identifier": None, "shareId": share_id, "fields": ["holder.name"], "verdict": "VALID",
        "reason": None, "channel": "api", "reportedBy": "广东省验证节点",
    }]  # fmt: skip
    page = client.get("/access-log").text
    assert 'data-organisation="广州银行"' in page and '<span class="region">(440100)</span>' in page
    assert '<dd class="reported-by">广东省验证节点</dd>' in page
    [entry] = client.get("/api/v1/access-log").json()
    assert (entry["region"], entry["reportedBy"]) == ("440100", "广东省验证节点")


def test_a_claimed_certificate_is_bound_at_the_verifier_to_its_holder(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    """The node shows a holder's access log only for certificates this wallet holds for them."""
    client, card = alice
    digest = client.get(f"/api/v1/certificates/{card}").json()["digest"]
    [holder_ref] = wallet.verifier.holdings
    assert wallet.verifier.holdings == {holder_ref: {digest}}


def test_the_access_log_binds_certificates_the_verifier_does_not_know_yet(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    """Claimed while the node was unreachable, or before it bound holdings: bound when the
    holder opens their access log, which then shows who verified the certificate."""
    client, card = alice
    digest = client.get(f"/api/v1/certificates/{card}").json()["digest"]
    wallet.verifier.holdings.clear()
    wallet.verifier.log = [{
        "at": "2030-01-02T03:04:05+00:00", "organisation": "某某银行杭州分行", "region": "330100", "purpose": "开户",
        "digest": digest, "identifier": None, "shareId": None, "fields": ["holder.name"], "verdict": "VALID",
        "reason": None, "channel": "api",
    }]  # fmt: skip
    page = client.get("/access-log")
    assert page.status_code == 200 and 'data-organisation="某某银行杭州分行"' in page.text
    assert [e["organisation"] for e in client.get("/api/v1/access-log").json()] == ["某某银行杭州分行"]
    assert list(wallet.verifier.holdings.values()) == [{digest}]


# ─── language, elder mode, headers ───────────────────────────────────────────────────────


def test_language_and_elder_mode_are_remembered_per_holder(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, _ = alice
    assert '<html lang="zh-CN">' in client.get("/certificates").text
    client.post("/settings", data={"csrf_token": csrf(client, "/settings"), "lang": "en", "elder": "1"})
    page = client.get("/certificates")
    assert (
        '<html lang="en" class="elder">' in page.text
        and '<body class="elder' in page.text
        and "My certificates" in page.text
    )
    with wallet.client() as anonymous:
        assert '<html lang="en">' in anonymous.get("/login?lang=en").text
        assert '<html lang="en">' in anonymous.get("/login").text  # remembered in a cookie before signing in


def test_security_headers(alice: tuple[httpx.Client, str]) -> None:
    client, _ = alice
    headers = client.get("/certificates").headers
    assert (
        "script-src 'self'" in headers["content-security-policy"]
        and "frame-ancestors 'none'" in headers["content-security-policy"]
    )
    assert (headers["x-frame-options"], headers["referrer-policy"], headers["cache-control"]) == (
        "DENY",
        "same-origin",
        "no-store",
    )
    assert (
        client.get("/api/v1/certificates/nope").headers["content-type"].startswith("application/problem+json")
    )


def test_unknown_pages_and_anonymous_api(wallet: Wallet) -> None:
    with wallet.client() as client:
        assert client.get("/nope").status_code == 404
        assert client.get("/api/v1/certificates").status_code == 401
        assert client.get("/certificates").headers["location"] == "/login?next=/certificates"


def test_demo_holders_get_their_certificates(wallet: Wallet, tmp_path: Path) -> None:
    from wallet.demo import seed_demo_holders

    people = packages(("王小丽", ALICE), ("王小丽", ALICE))
    company = packages(("某某科技有限公司", "91110000600037341L"))
    [holder] = seed_demo_holders([p.to_json() for p in (*people, *company)], wallet.runtime)
    assert (holder.id_number, holder.certificates) == (ALICE, 2)
    [again] = seed_demo_holders([people[0].to_json()], wallet.runtime)  # idempotent: a new password
    with wallet.client() as client:
        token = csrf(client, "/login")
        assert (
            client.post(
                "/login", data={"csrf_token": token, "id_number": ALICE, "password": again.password}
            ).status_code
            == 303
        )
        assert client.get("/certificates").text.count('data-certificate="') == 2


def test_a_claim_code_can_be_scanned_from_a_photo(wallet: Wallet) -> None:
    from registry.qr import qr_png

    [package] = packages(("王小丽", ALICE))
    wallet.issuer.add("WXYZ-2345-6789", package)
    with wallet.client() as client:
        register(client, "王小丽", ALICE)
        token = csrf(client, "/claim")
        done = client.post(
            "/claim",
            data={"csrf_token": token, "code": ""},
            files={"photo": ("qr.png", qr_png("WXYZ-2345-6789"), "image/png")},
        )
        assert done.status_code == 303 and done.headers["location"].endswith("?claimed=1")
        token = csrf(client, "/claim")
        blank = client.post(
            "/claim", data={"csrf_token": token}, files={"photo": ("x.png", b"not an image", "image/png")}
        )
        assert blank.status_code == 400 and 'data-code="QR_UNREADABLE"' in blank.text


# ─── issue 10: who is behind a sign-in, a link visitor's words, common passwords ────────


def login(client: httpx.Client, code: str, password: str, **headers: str) -> httpx.Response:
    token = csrf(client, "/login")
    return client.post(
        "/login", data={"csrf_token": token, "id_number": code, "password": password}, headers=headers
    )


def test_failed_sign_ins_hold_up_that_address_not_the_holder_and_x_forwarded_for_only_from_a_named_proxy(
    tmp_path: Path,
) -> None:
    """Behind a proxy named in ECERT_WALLET_TRUSTED_PROXIES, X-Forwarded-For says who the client
    is: an attacker's failures make their own address wait, and the holder still signs in from theirs."""
    behind_proxy = Wallet(tmp_path / "proxied", trusted_proxies=["127.0.0.1"])
    try:
        with behind_proxy.client() as client:
            assert register(client, "王小丽", ALICE).status_code == 303
        with behind_proxy.client() as attacker:
            for _ in range(3):
                assert (
                    login(
                        attacker, ALICE, "wrong-password", **{"X-Forwarded-For": "198.51.100.7"}
                    ).status_code
                    == 401
                )
            assert login(attacker, ALICE, PASSWORD, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 429
        with (
            behind_proxy.client() as holder
        ):  # the proxy's own hop is skipped; a spoofed hop left of it is not believed
            assert (
                login(
                    holder, ALICE, PASSWORD, **{"X-Forwarded-For": "198.51.100.7, 203.0.113.20, 127.0.0.1"}
                ).status_code
                == 303
            )
    finally:
        behind_proxy.close()
    direct = Wallet(tmp_path / "direct")  # default: no proxy is trusted, the header is anybody's
    try:
        with direct.client() as client:
            assert register(client, "王小丽", ALICE).status_code == 303
        with direct.client() as attacker:
            for n in range(3):
                assert (
                    login(
                        attacker, ALICE, "wrong-password", **{"X-Forwarded-For": f"198.51.100.{n}"}
                    ).status_code
                    == 401
                )
            assert login(attacker, ALICE, PASSWORD, **{"X-Forwarded-For": "203.0.113.20"}).status_code == 429
    finally:
        direct.close()


def test_a_link_visitor_s_purpose_is_shown_as_their_unverified_claim(
    wallet: Wallet, alice: tuple[httpx.Client, str]
) -> None:
    client, card = alice
    share_id = share(client, card, "holder.name")
    digest = next(iter(wallet.verifier.shares.values()))["digest"]
    wallet.verifier.log = [{
        "at": "2030-01-02T03:04:05+00:00", "organisation": "公开链接访问者 / link visitor", "region": "", "purpose": "银行开户",
        "digest": digest, "identifier": None, "shareId": share_id, "fields": ["holder.name"], "verdict": "VALID", "reason": None,
        "channel": "link", "anonymous": True, "claimedPurpose": "公安机关调查", "ipPrefix": "203.0.113.0/24", "userAgent": "Mallory/1.0",
    }]  # fmt: skip
    page = client.get("/access-log").text
    start = page.index('<li class="entry')
    entry = page[start : page.index("</li>", start)]
    assert "持有链接的某人" in entry and 'data-organisation=""' in entry  # no organisation said anything
    assert re.search(r'class="purpose">银行开户<', entry)  # the holder's own purpose for the share
    assert "公安机关调查" not in entry.split('class="claimed-purpose"')[0]  # never where a purpose is shown
    assert re.search(r'对方自称（未经核实）</dt><dd class="claimed-purpose"><q>公安机关调查</q>', entry)
    assert "203.0.113.0/24" in entry and "Mallory/1.0" in entry
    api = client.get("/api/v1/access-log").json()
    assert (
        api[0]["anonymous"] is True
        and api[0]["claimedPurpose"] == "公安机关调查"
        and api[0]["ipPrefix"] == "203.0.113.0/24"
    )


def test_a_common_password_is_refused_and_the_holder_is_told_why_in_their_language(wallet: Wallet) -> None:
    from wallet.i18n import messages

    with wallet.client() as client:
        done = register(client, "王小丽", ALICE, "1qaz2wsx3edc")
        assert done.status_code == 422 and 'data-code="PASSWORD_COMMON"' in done.text
        assert messages("zh")["error.PASSWORD_COMMON"] in done.text
        short = register(client, "王小丽", ALICE, "abcdefgh9")
        assert (
            short.status_code == 422
            and 'data-code="PASSWORD_TOO_SHORT"' in short.text
            and "至少 10 位" in short.text
        )
