"""Issue 11, points 11, 4 and 5, over real HTTP (`ecert serve verifier` on a real anvil chain):
a verification answers the values it checked beside a receipt that covers them; the receipt is
kept under its id for the organisation that asked (JSON, and a printable PDF with its fonts
embedded); and the organisation's history lists, filters and exports its verifications, and
nobody else's."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pypdf
import pytest
from verifier_stack import (
    AGENCY_ZJ,
    AUTHORITIES,
    BUSINESS_LICENCE,
    Issued,
    StackHome,
    VerifierNode,
    add_orgs,
    assert_problem,
    records,
)

from registry.certificate.presentation import Presentation
from registry.qr import decode_qr
from verifier.inputs import presentation_from_text
from verifier.receipts import receipt_id, verify_receipt

pytestmark = pytest.mark.chain


@dataclass
class Stack:
    home: StackHome
    node: VerifierNode
    issued: Issued
    bank: str
    other_bank: str
    wallet: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = StackHome(tmp_path_factory.mktemp("verifier-receipts"))
    node = VerifierNode(home, "330000", keep_api_receipts="true")
    try:
        home.deploy()
        keys = add_orgs(node, [("某某银行杭州分行", "330100", "bank"), ("另一家银行", "330100", "bank"),
                               ("浙里办", "330000", "wallet")])  # fmt: skip
        node.start()
        home.add_parties(authorities=AUTHORITIES[:1])
        issued = home.issue(AGENCY_ZJ, BUSINESS_LICENCE, records(2), "zj", qr=True)
        node.wait_indexed()
        yield Stack(home, node, issued, *keys)
    finally:
        node.stop()
        home.tear_down()


def _check(client: httpx.Client, answer: dict[str, Any], disclosed: Any) -> dict[str, Any]:
    document = {"receipt": answer["receipt"]["receipt"], "signature": answer["receipt"]["signature"]}
    result: dict[str, Any] = client.post(
        "/v1/receipts/verify", json={**document, "disclosed": disclosed}
    ).json()
    return result


def _answers(stack: Stack) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The same certificate verified three ways by the bank: its answer, and what it showed."""
    package = stack.issued.package(0)
    disclosure = Presentation.from_json(package).disclose(
        ["holder.name", "number", "validFrom", "validUntil"]
    )
    with stack.node.client(stack.bank) as bank, stack.node.client(stack.wallet) as wallet:
        by_json = bank.post("/v1/verifications", json={"purpose": "开立对公账户", "package": package})
        by_image = bank.post(
            "/v1/verifications/image",
            files={"file": ("qr.png", stack.issued.qr(0).read_bytes(), "image/png")},
            data={"purpose": "柜台核验"},
        )
        share = wallet.post("/v1/shares", json={"holderRef": "h-1", "presentation": disclosure.to_json(),
                                                "purpose": "开户", "expiresInMinutes": 60}).json()  # fmt: skip
        by_share = httpx.get(share["url"], headers={"Accept": "application/json", "Authorization": f"Bearer {stack.bank}"},
                             params={"purpose": "开户核验"}, timeout=30)  # fmt: skip
    return {
        "json": (by_json.json(), Presentation.from_json(package).values()),
        "image": (
            by_image.json(),
            presentation_from_text(decode_qr(stack.issued.qr(0).read_bytes())[0]).values(),
        ),
        "share": (by_share.json(), disclosure.values()),
    }


@pytest.fixture(scope="module")
def answers(stack: Stack) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return _answers(stack)


@pytest.mark.parametrize("variant", ["json", "image", "share"])
def test_the_answer_has_the_disclosed_values_and_a_receipt_covering_them(
    stack: Stack, answers: dict[str, tuple[dict[str, Any], dict[str, Any]]], variant: str
) -> None:
    answer, shown = answers[variant]
    assert answer["verdict"] == "VALID", answer
    assert answer["disclosed"]["values"] == shown and "holder.name" in shown
    assert len(answer["disclosed"]["salt"]) >= 22
    assert answer["receiptId"] == receipt_id(answer["receipt"])
    with stack.node.client() as client:
        assert client.post("/v1/receipts/verify", json=answer["receipt"]).json() == {"valid": True}
        assert _check(client, answer, answer["disclosed"]) == {"valid": True, "coversDisclosed": True}
        altered = {**answer["disclosed"], "values": {**shown, "holder.name": "别人的公司"}}
        assert _check(client, answer, altered) == {"valid": False, "coversDisclosed": False}
        resalted = {**answer["disclosed"], "salt": "A" * 22}
        assert _check(client, answer, resalted)["valid"] is False
        pem = client.get("/v1/receipt-key").json()["publicKeyPem"]
    assert verify_receipt(answer["receipt"], pem)
    # the receipt itself carries no value, only their digest
    assert "别人" not in str(answer["receipt"]) and shown["holder.name"] not in str(answer["receipt"])


def test_a_receipt_is_kept_by_id_for_its_organisation_only(
    stack: Stack, answers: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    answer, shown = answers["json"]
    rid = answer["receiptId"]
    with stack.node.client(stack.bank) as bank, stack.node.client(stack.other_bank) as other:
        kept = bank.get(f"/v1/receipts/{rid}")
        assert kept.status_code == 200, kept.text
        body = kept.json()
        assert (body["id"], body["receipt"], body["signature"]) == (
            rid,
            answer["receipt"]["receipt"],
            answer["receipt"]["signature"],
        )
        assert body["disclosed"] == answer["disclosed"] and body["verdict"] == "VALID"
        assert (body["purpose"], body["channel"]) == ("开立对公账户", "api")
        assert_problem(other.get(f"/v1/receipts/{rid}"), 404, "RECEIPT_NOT_FOUND")
        assert_problem(other.get(f"/v1/receipts/{rid}.pdf"), 404, "RECEIPT_NOT_FOUND")
        assert_problem(bank.get(f"/v1/receipts/{'0' * 32}"), 404, "RECEIPT_NOT_FOUND")
        assert_problem(bank.get("/v1/receipts/not-an-id"), 422, "REQUEST_INVALID")
        pdf = bank.get(f"/v1/receipts/{rid}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(pdf.content))
    text = "".join(page.extract_text() for page in reader.pages)
    assert rid in text and shown["holder.name"] in text and "核验回执" in text
    fonts = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            descriptor = (
                font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
                if "/DescendantFonts" in font.get_object()
                else font.get_object()["/FontDescriptor"]
            )
            fonts[str(font.get_object()["/BaseFont"])] = bool(
                {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor.get_object())
            )
    assert fonts and all(fonts.values()), fonts


def test_the_history_is_the_organisation_s_filtered_and_exported(
    stack: Stack, answers: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    identifier = stack.issued.identifier(0)
    with stack.node.client(stack.bank) as bank:
        another = Presentation.from_json(stack.issued.package(1)).to_ec1()
        assert bank.post("/v1/verifications", json={"purpose": "核验", "ec1": another}).status_code == 200
        page = bank.get("/v1/verifications/history").json()
        assert page["total"] == 4 and {i["receiptId"] for i in page["items"]} >= {
            a["receiptId"] for a, _ in answers.values()
        }
        assert [i["at"] for i in page["items"]] == sorted((i["at"] for i in page["items"]), reverse=True)
        only = bank.get("/v1/verifications/history", params={"identifier": identifier}).json()
        assert only["total"] == 3 and {i["identifier"] for i in only["items"]} == {identifier}
        assert bank.get("/v1/verifications/history", params={"verdict": "INVALID"}).json()["total"] == 0
        assert (
            bank.get("/v1/verifications/history", params={"verdict": "VALID", "limit": 1}).json()["total"]
            == 4
        )
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        assert bank.get("/v1/verifications/history", params={"from": future}).json()["items"] == []
        assert bank.get("/v1/verifications/history", params={"to": future}).json()["total"] == 4
        assert_problem(
            bank.get("/v1/verifications/history", params={"verdict": "MAYBE"}), 422, "REQUEST_INVALID"
        )
        exported = bank.get("/v1/verifications/history.csv", params={"identifier": identifier})
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 3 and {r["identifier"] for r in rows} == {identifier}
    assert {r["purpose"] for r in rows} == {"开立对公账户", "柜台核验", "开户核验"}
    with stack.node.client(stack.other_bank) as other:
        assert other.get("/v1/verifications/history").json() == {
            "items": [],
            "total": 0,
            "limit": 50,
            "offset": 0,
        }
        lines = other.get("/v1/verifications/history.csv").content.decode("utf-8-sig").splitlines()
        assert len(lines) == 1 and lines[0].startswith("receiptId,")
