"""The wallet's security on the whole stack, over HTTP as an attacker would try it: another
holder's certificates and shares (pages, wallet API, verifier API), posts without a CSRF token,
guessed share links, shares after expiry or withdrawal, claim codes used twice or expired, and
the sign-in rate limit."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stack import BANK_ORG, Stack, csrf_of, http_holder, stack_for

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[httpx.Client]:
    client = http_holder(stack, stack.person())
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob(stack: Stack) -> Iterator[httpx.Client]:
    client = http_holder(stack, stack.person())
    yield client
    client.close()


def make_share(client: httpx.Client, *fields: str, expiry: str = "5") -> tuple[str, str]:
    """(share id, link) of a new share of the holder's certificate."""
    card = client.card_id  # type: ignore[attr-defined]
    token = csrf_of(client.get(f"/certificates/{card}/share").text)
    done = client.post(f"/certificates/{card}/share", data={"csrf_token": token, "fields": list(fields) or ["holder.name"],
                                                             "purpose": "贷款申请", "expiry": expiry, "mode": "link"})  # fmt: skip
    assert done.status_code == 303, done.text
    share_id = done.headers["location"].rsplit("/", 1)[-1]
    page = client.get(f"/shares/{share_id}").text
    link = page.split('id="share-url" class="url" type="text" readonly value="', 1)[1].split('"', 1)[0]
    return share_id, link


def bank(stack: Stack, accept: str = "application/json") -> httpx.Client:
    return httpx.Client(headers={"Authorization": f"Bearer {stack.bank_key}", "Accept": accept}, timeout=30)


def assert_not_served(response: httpx.Response, code: str, *secrets_: str) -> None:
    """Refused with `code`, and nothing of the certificate in the answer."""
    assert response.status_code in (404, 410), response.text
    if response.headers["content-type"].startswith("application/"):
        body = response.json()
        assert body["code"] == code and "presentation" not in body and "checks" not in body
    else:
        assert f'data-problem="{code}"' in response.text and 'data-path="' not in response.text
    for value in secrets_:
        assert value not in response.text


def test_another_holder_cannot_see_share_or_withdraw(
    stack: Stack, alice: httpx.Client, bob: httpx.Client
) -> None:
    card = alice.card_id  # type: ignore[attr-defined]
    share_id, link = make_share(alice, "holder.name")
    token = csrf_of(bob.get("/settings").text)
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/certificates/{card}", {}),
        ("GET", f"/certificates/{card}/share", {}),
        ("POST", f"/certificates/{card}/share", {"data": {"csrf_token": token, "fields": ["holder.name"], "expiry": "5"}}),
        ("GET", f"/shares/{share_id}", {}),
        ("GET", f"/shares/{share_id}/dynamic", {}),
        ("GET", f"/shares/{share_id}/dynamic.png", {}),
        ("POST", f"/shares/{share_id}/withdraw", {"data": {"csrf_token": token}}),
        ("GET", f"/api/v1/certificates/{card}", {}),
        ("POST", f"/api/v1/certificates/{card}/shares", {"json": {"fields": ["holder.name"], "expiresInMinutes": 5}, "headers": {"X-CSRF-Token": token}}),
        ("DELETE", f"/api/v1/shares/{share_id}", {"headers": {"X-CSRF-Token": token}}),
        ("GET", f"/api/v1/shares/{share_id}/dynamic-code", {}),
    ]  # fmt: skip
    for method, path, options in attempts:
        answer = bob.request(method, path, **options)
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert card not in bob.get("/certificates").text and share_id not in bob.get("/shares").text
    assert bob.get("/api/v1/shares").json() == [] and len(bob.get("/api/v1/certificates").json()) == 1
    # At the verifier, with the wallet's own key but another holder's reference: not found either.
    with httpx.Client(
        base_url=stack.verifier.url, headers={"Authorization": f"Bearer {stack.wallet_key}"}
    ) as node:
        assert (
            node.delete(f"/v1/shares/{share_id}", params={"holderRef": secrets.token_hex(16)}).status_code
            == 404
        )
        assert (
            node.get(
                f"/v1/shares/{share_id}/dynamic-code", params={"holderRef": secrets.token_hex(16)}
            ).status_code
            == 404
        )
    # A bank's key cannot manage shares at all.
    with bank(stack) as other:
        assert other.get(f"{stack.verifier.url}/v1/shares", params={"holderRef": "x"}).status_code == 403
        assert other.get(link).json()["verdict"] == "VALID"  # Alice's share is untouched


def test_a_bank_s_check_of_a_claimed_certificate_is_in_its_holder_s_log_alone(
    stack: Stack, alice: httpx.Client, bob: httpx.Client
) -> None:
    """Claiming bound the certificate to Alice at the verifier node: through her wallet she sees
    who checked it, shared or not; with the same wallet's key, no other holder reads its log."""
    about = alice.get(f"/api/v1/certificates/{alice.card_id}").json()  # type: ignore[attr-defined]
    db = stack.verifier_db()
    try:
        assert db.execute(
            "SELECT count(*) FROM holdings WHERE digest = ?", (about["digest"],)
        ).fetchone() == (1,)
    finally:
        db.close()
    with stack.issuer_client() as issuer:
        package = issuer.get(f"/v1/certificates/{about['identifier']}/package").json()
    with bank(stack) as other:
        checked = other.post(
            f"{stack.verifier.url}/v1/verifications", json={"package": package, "purpose": "授信审查"}
        )
        assert checked.json()["verdict"] == "VALID", checked.text
    assert [(e["organisation"], e["shareId"]) for e in alice.get("/api/v1/access-log").json()
            if e["purpose"] == "授信审查"] == [(BANK_ORG, None)]  # fmt: skip
    assert all(e["purpose"] != "授信审查" for e in bob.get("/api/v1/access-log").json())
    with httpx.Client(
        base_url=stack.verifier.url, headers={"Authorization": f"Bearer {stack.wallet_key}"}, timeout=30
    ) as node:
        refused = node.get(
            "/v1/access-log", params={"holderRef": secrets.token_hex(16), "digest": about["digest"]}
        )
        assert refused.status_code == 404 and refused.json()["code"] == "ACCESS_LOG_NOT_FOUND"


def test_someone_elses_claim_code_is_refused(stack: Stack, alice: httpx.Client, bob: httpx.Client) -> None:
    code = stack.claim_code(alice.get(f"/api/v1/certificates/{alice.card_id}").json()["identifier"])  # type: ignore[attr-defined]
    refused = bob.post("/claim", data={"csrf_token": csrf_of(bob.get("/claim").text), "code": code})
    assert refused.status_code == 403 and 'data-code="CLAIM_NOT_YOURS"' in refused.text
    assert len(bob.get("/api/v1/certificates").json()) == 1
    # the code was not used up by Bob's attempt: Alice can still claim with it
    kept = alice.post("/claim", data={"csrf_token": csrf_of(alice.get("/claim").text), "code": code})
    assert kept.status_code in (200, 303) and 'data-code="CLAIM_INVALID"' not in kept.text, kept.text[:300]


def test_posts_without_csrf_token_are_refused(stack: Stack, alice: httpx.Client, bob: httpx.Client) -> None:
    card = alice.card_id  # type: ignore[attr-defined]
    share_id, link = make_share(alice)
    bobs_token = csrf_of(bob.get("/settings").text)  # a real token, of another session
    forms = [
        ("/claim", {"code": "ABCD-EFGH-JKLM"}),
        (f"/certificates/{card}/share", {"fields": ["holder.code"], "expiry": "43200"}),
        (f"/shares/{share_id}/withdraw", {}),
        ("/settings", {"lang": "en", "elder": "1"}),
        ("/logout", {}),
    ]
    for path, data in forms:
        for extra in ({}, {"csrf_token": ""}, {"csrf_token": bobs_token}):
            assert alice.post(path, data={**data, **extra}).status_code == 403, (path, extra)
    own = csrf_of(alice.get("/settings").text)
    assert (
        alice.post(
            "/logout", data={"csrf_token": own}, headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert alice.delete(f"/api/v1/shares/{share_id}").status_code == 403
    with httpx.Client(base_url=stack.wallet.url) as anonymous:
        assert anonymous.post("/login", data={"id_number": "x", "password": "y"}).status_code == 403
        assert (
            anonymous.post(
                "/register",
                data={"name": "x", "id_number": "y", "password": "z" * 8, "password_confirm": "z" * 8},
            ).status_code
            == 403
        )
    page = alice.get("/settings")  # still signed in, still Chinese, share still live
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    with bank(stack) as other:
        assert other.get(link).json()["verdict"] == "VALID"


def test_a_guessed_share_link_is_refused(stack: Stack, alice: httpx.Client) -> None:
    _, link = make_share(alice, "holder.name", "holder.codeMasked")
    base, token = link.rsplit("/", 1)
    with bank(stack) as json_client, bank(stack, "text/html") as html_client:
        for position in (0, len(token) // 2, len(token) - 1):
            changed = TOKEN_ALPHABET[(TOKEN_ALPHABET.index(token[position]) + 1) % len(TOKEN_ALPHABET)]
            guess = f"{base}/{token[:position]}{changed}{token[position + 1 :]}"
            assert_not_served(json_client.get(guess), "SHARE_NOT_FOUND")
            assert_not_served(html_client.get(guess), "SHARE_NOT_FOUND")
        assert json_client.get(link).json()["verdict"] == "VALID"


def test_after_expiry_or_withdrawal_the_fields_are_no_longer_served(
    stack: Stack, alice: httpx.Client
) -> None:
    name = alice.get(f"/api/v1/certificates/{alice.card_id}").json()["fields"]["holder"]["name"]  # type: ignore[attr-defined]
    expiring, expiring_link = make_share(alice, "holder.name")
    withdrawn, withdrawn_link = make_share(alice, "holder.name")
    with bank(stack) as json_client, bank(stack, "text/html") as html_client:
        for link in (expiring_link, withdrawn_link):
            assert json_client.get(link).json()["verdict"] == "VALID" and name in html_client.get(link).text
        # Five minutes pass for one share: its expiry is moved into the past in the node's database.
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).replace(tzinfo=None).isoformat(sep=" ")
        with stack.verifier_db() as db:
            assert db.execute("UPDATE shares SET expires_at = ? WHERE id = ?", (past, expiring)).rowcount == 1
        token = csrf_of(alice.get(f"/shares/{withdrawn}").text)
        assert alice.post(f"/shares/{withdrawn}/withdraw", data={"csrf_token": token}).status_code == 303
        for link, code in ((expiring_link, "SHARE_EXPIRED"), (withdrawn_link, "SHARE_WITHDRAWN")):
            assert_not_served(json_client.get(link), code, name)
            assert_not_served(html_client.get(link), code, name)
        with httpx.Client(
            headers={"Authorization": f"Bearer {stack.wallet_key}"}
        ) as wallet:  # the node-to-node fetch is for nodes: a wallet's key reads no share through it
            for link in (expiring_link, withdrawn_link):
                token_part = link.rsplit("/", 1)[1]
                assert (
                    wallet.get(f"{stack.verifier.url}/v1/shares/{token_part}/presentation").status_code == 403
                )
    states = {s["id"]: s["state"] for s in alice.get("/api/v1/shares").json()}
    assert (states[expiring], states[withdrawn]) == ("expired", "withdrawn")
    assert 'id="share-qr"' not in alice.get(f"/shares/{expiring}").text


def test_a_claim_code_works_once_and_expires(stack: Stack) -> None:
    person = stack.person()
    holder = http_holder(stack, person)  # claimed once already
    try:
        used = stack.claim_code(person.identifier)
        first = holder.post("/claim", data={"csrf_token": csrf_of(holder.get("/claim").text), "code": used})
        assert first.status_code == 303  # the same certificate again: kept once
        again = holder.post("/claim", data={"csrf_token": csrf_of(holder.get("/claim").text), "code": used})
        assert 'data-code="CLAIM_INVALID"' in again.text
        late = stack.claim_code(person.identifier)
        with stack.issuer_db() as db:
            past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).replace(tzinfo=None).isoformat(sep=" ")
            assert (
                db.execute(
                    "UPDATE certificates SET claim_expires_at = ? WHERE identifier = ?",
                    (past, person.identifier),
                ).rowcount
                == 1
            )
        expired = holder.post("/claim", data={"csrf_token": csrf_of(holder.get("/claim").text), "code": late})
        assert expired.status_code == 410 and 'data-code="CLAIM_EXPIRED"' in expired.text
        assert len(holder.get("/api/v1/certificates").json()) == 1
    finally:
        holder.close()


def test_sign_in_is_rate_limited(stack: Stack) -> None:
    person = stack.person()
    http_holder(stack, person, password="the-right-one-9").close()
    with httpx.Client(base_url=stack.wallet.url, timeout=30) as client:
        for _ in range(5):
            token = csrf_of(client.get("/login").text)
            failed = client.post(
                "/login",
                data={"csrf_token": token, "id_number": person.id_number, "password": "guess-123456"},
            )
            assert failed.status_code == 401 and 'data-code="LOGIN_FAILED"' in failed.text
        token = csrf_of(client.get("/login").text)
        locked = client.post(
            "/login", data={"csrf_token": token, "id_number": person.id_number, "password": "the-right-one-9"}
        )
        assert (
            locked.status_code == 429
            and 'data-code="RATE_LIMITED"' in locked.text
            and int(locked.headers["retry-after"]) > 0
        )
        assert "wallet_session" not in locked.headers.get("set-cookie", "")
