"""Forged remote reports (review: the origin took `POST /v1/access-log/remote` for any share it
keeps from ANY trusted node, so a trusted node could write looks it never made into the log of a
holder of another region): a node may report looks only at a share whose disclosure it fetched
with its own key (`GET /v1/shares/{token}/presentation`). Any other node is told what it would
be told of a share this node does not keep (404 `SHARE_NOT_FOUND`): nothing about the share
leaks, and its outbox gives up at once. On the node's app in-process, with two node identities,
on SQLite and on PostgreSQL (when ECERT_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from test_attack_issue10 import Node, assert_problem, database_url, node  # noqa: F401 - fixtures


def looked_at() -> dt.datetime:
    """A look now: a report is dated within the share's life (`verifier.remote_log`)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def report_of(share: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "eventId": uuid.uuid4().hex, "at": looked_at().isoformat(), "organisation": "广州银行",
        "organisationRegion": "440100", "purpose": "跨省开户", "fields": ["holder.name"], "verdict": "VALID",
        "reason": None, "channel": "api", "shareTokenHash": hashlib.sha256(share["token"].encode()).hexdigest(),
        "digest": share["digest"], "identifier": None, **changes,
    }  # fmt: skip


def holder_log(at: Node) -> list[dict[str, Any]]:
    answer = at.http.get("/v1/access-log", params={"holderRef": "h-1"}, headers=at.as_(at.wallet))
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json() if e.get("reportedBy")]


def post(at: Node, key: str, report: dict[str, Any]) -> Any:
    return at.http.post("/v1/access-log/remote", headers=at.as_(key), json=report)


def test_only_the_node_that_fetched_a_share_may_report_looks_at_it(node: Node) -> None:  # noqa: F811
    share = node.share()
    forged = report_of(share)
    # no node fetched it yet: every trusted node's report is refused as of an unknown share
    for key in (node.node, node.other_node):
        assert_problem(post(node, key, forged), 404, "SHARE_NOT_FOUND")
    fetched = node.http.get(f"/v1/shares/{share['token']}/presentation", headers=node.as_(node.node))
    assert fetched.status_code == 200, fetched.text
    # 广东 fetched it; 上海 did not: its report is refused, the same answer as for no share at all
    refused = post(node, node.other_node, forged)
    unknown = post(node, node.other_node, report_of(share, shareTokenHash="0" * 64))
    assert_problem(refused, 404, "SHARE_NOT_FOUND")
    assert (refused.status_code, refused.json()) == (unknown.status_code, unknown.json())
    # nor does a mismatch tell it the share exists: the binding is checked first
    other_digest = report_of(share, digest="0x" + "ee" * 32)
    assert_problem(post(node, node.other_node, other_digest), 404, "SHARE_NOT_FOUND")
    assert holder_log(node) == []
    # the node that fetched it reports, and its look is the holder's to see
    honest = report_of(share)
    stored = post(node, node.node, honest)
    assert (stored.status_code, stored.json()) == (201, {"eventId": honest["eventId"], "stored": True})
    assert [(e["organisation"], e["reportedBy"]) for e in holder_log(node)] == [
        ("广州银行", "广东省验证节点")
    ]
    # 上海 cannot slip its look in under 广东's binding either, nor replay 广东's event as its own
    assert_problem(post(node, node.other_node, report_of(share)), 404, "SHARE_NOT_FOUND")
    assert_problem(post(node, node.other_node, honest), 404, "SHARE_NOT_FOUND")
    assert len(holder_log(node)) == 1


def test_a_fetch_refused_binds_nothing_and_a_fetch_binds_only_its_share(node: Node) -> None:  # noqa: F811
    first, second = node.share(), node.share(singleUse=True)
    wrong_code = node.http.get(
        f"/v1/shares/{first['token']}/presentation", headers=node.as_(node.node), params={"c": "0" * 16}
    )  # not dynamic: the code is ignored, the fetch served
    assert wrong_code.status_code == 200
    gone = node.http.get("/v1/shares/no-such-token/presentation", headers=node.as_(node.other_node))
    assert gone.status_code == 404
    assert_problem(
        post(node, node.node, report_of(second)), 404, "SHARE_NOT_FOUND"
    )  # 广东 fetched `first` only
    used = node.http.get(f"/v1/shares/{second['token']}/presentation", headers=node.as_(node.other_node))
    assert used.status_code == 200  # a single-use share, used up by 上海's fetch
    again = node.http.get(f"/v1/shares/{second['token']}/presentation", headers=node.as_(node.node))
    assert again.status_code in (404, 410)  # used up: 广东's late fetch is refused and binds nothing
    assert_problem(post(node, node.node, report_of(second)), 404, "SHARE_NOT_FOUND")
    assert post(node, node.other_node, report_of(second)).status_code == 201
    assert post(node, node.node, report_of(first)).status_code == 201
    assert len(holder_log(node)) == 2
