"""Shared helpers of the contract tests: a `Kit` per test on the reverting chain.

Everything a test needs is reached through its `kit` (each test module makes one from the root
conftest's `chain`, `registry` and `roles` fixtures): fresh funded keys, anchoring, time travel
on anvil, decoded events and custom-error checks.

This is deliberately not a `conftest.py`: other test modules run `from conftest import ...`, which
resolves to whichever conftest module pytest imported last, so a second conftest here would
shadow tests/conftest.py for them. For the same reason the deployment's agency and type codes
are repeated below rather than imported; `Kit` checks once per deployment that they still
describe the root conftest's deployment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from registry.chain.client import ChainClient, Receipt
from registry.contracts.certificate_registry import CertificateRegistry, Inspection
from registry.errors import ContractRevert

TYPE_BUSINESS_LICENCE = "11100000000013338W001"
TYPE_DRIVING_LICENCE = "11100000000013338W002"
ZJ_AGENCY_CODE = "11330100002493028E"
GD_AGENCY_CODE = "114401000075021133"
ZJ_REGION = 330100
GD_REGION = 440100
DEFAULT_ADMIN_ROLE = bytes(32)
ONE_ETHER = 10**18


_CHECKED_DEPLOYMENTS: set[str] = set()


def _check_deployment_is_as_described(registry: CertificateRegistry, roles) -> None:
    """Run at the start of a test (the chain is at the deployment's state), once per deployment."""
    for key, code, region in (
        (roles.agency, ZJ_AGENCY_CODE, ZJ_REGION),
        (roles.other_agency, GD_AGENCY_CODE, GD_REGION),
    ):
        assert registry.key_info(key.address).agency_code == code, "tests/conftest.py changed its agencies"
        assert registry.agency(code).region == region
        assert registry.is_granted(code, TYPE_BUSINESS_LICENCE)
        assert not registry.is_granted(code, TYPE_DRIVING_LICENCE)
    assert registry.authority_region(roles.authority.address) == 330000
    assert registry.authority_region(roles.other_authority.address) == 440000


def plain(value: Any) -> Any:
    """A comparable form: bytes as lower-case 0x-hex, addresses lower-case, containers recursively."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: plain(item) for key, item in value.items()}
    return value


class Kit:
    """The registry on the reverting chain, with the shortcuts the contract tests share."""

    business = TYPE_BUSINESS_LICENCE
    driving = TYPE_DRIVING_LICENCE
    zj = ZJ_AGENCY_CODE
    gd = GD_AGENCY_CODE
    plain = staticmethod(plain)

    def __init__(self, chain: ChainClient, registry: CertificateRegistry, roles) -> None:
        self.chain = chain
        self.registry = registry
        self.roles = roles
        self.fn = registry.contract.functions
        if registry.address not in _CHECKED_DEPLOYMENTS:
            _check_deployment_is_as_described(registry, roles)
            _CHECKED_DEPLOYMENTS.add(registry.address)
        self._event_names = {
            keccak(text=f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"): item["name"]
            for item in registry.contract.abi
            if item["type"] == "event" and not item.get("anonymous")
        }
        # anonymous events (no signature topic) by their number of topics: their indexed fields
        self._anonymous_topic_counts = {
            item["name"]: sum(1 for i in item["inputs"] if i["indexed"])
            for item in registry.contract.abi
            if item["type"] == "event" and item.get("anonymous")
        }

    # ─── accounts, batches ───────────────────────────────────────────────────────────────

    def new_account(self, *, funded: bool = True) -> LocalAccount:
        account = Account.create()
        if funded:
            self.chain.fund(account.address, ONE_ETHER)
        return account

    @staticmethod
    def new_root() -> bytes:
        return os.urandom(32)

    def anchor(
        self, key: LocalAccount | None = None, *, count: int = 10, type_code: str = TYPE_BUSINESS_LICENCE
    ) -> bytes:
        """Anchor a fresh root (by the 330100 agency's key unless told) and return it."""
        root = self.new_root()
        self.registry.anchor(key or self.roles.agency, root, count, type_code)
        return root

    def add_key(
        self, actor: LocalAccount | None = None, *, valid_from: int = 0, code: str = ZJ_AGENCY_CODE
    ) -> LocalAccount:
        """Add a fresh funded key to an agency (by the 330100 agency's authority unless told)."""
        key = self.new_account()
        self.registry.add_key(actor or self.roles.authority, code, key.address, valid_from)
        return key

    def inspect(self, root: bytes, signer: LocalAccount | str, index: int = 0) -> Inspection:
        address = signer if isinstance(signer, str) else signer.address
        return self.registry.inspect(root, index, bytes(32), [], address)

    def agency_index_of(self, key: str) -> int:
        return self.registry.contract.functions.keyRecord(key).call()[0][0]

    # ─── time ────────────────────────────────────────────────────────────────────────────

    def now(self) -> int:
        """The timestamp of the latest block."""
        return self.chain.w3.eth.get_block("latest")["timestamp"]

    def advance(self, seconds: int) -> int:
        """Move the chain's clock forward and mine a block; returns the new block's timestamp."""
        self._rpc("evm_increaseTime", [seconds])
        self._rpc("evm_mine", [])
        return self.now()

    def next_block_at(self, timestamp: int) -> None:
        """Give the next block `timestamp` (anvil accepts the latest block's own timestamp)."""
        self._rpc("evm_setNextBlockTimestamp", [timestamp])

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.chain.w3.provider.make_request(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    # ─── events and reverts ──────────────────────────────────────────────────────────────

    def events(self, receipt: Receipt, name: str) -> list[dict[str, Any]]:
        """The args of every `name` event in `receipt`, in comparable form (see `plain`)."""
        found = []
        anonymous_topics = self._anonymous_topic_counts.get(name)
        for log in receipt.logs:
            if anonymous_topics is not None:
                matches = len(log["topics"]) == anonymous_topics
            else:
                matches = bool(log["topics"]) and self._event_names.get(bytes(log["topics"][0])) == name
            if matches:
                found.append(plain(getattr(self.registry.contract.events, name)().process_log(log)["args"]))
        return found

    def event(self, receipt: Receipt, name: str) -> dict[str, Any]:
        """The args of the one `name` event in `receipt`."""
        found = self.events(receipt, name)
        assert len(found) == 1, f"expected one {name} event, found {len(found)}"
        return found[0]

    def assert_event(self, receipt: Receipt, event_name: str, /, **args: Any) -> None:
        """Assert that `receipt` holds exactly one `event_name` event, with exactly these arguments."""
        assert self.event(receipt, event_name) == plain(args)

    @staticmethod
    @contextmanager
    def reverts(name: str, /, **args: Any) -> Iterator[pytest.ExceptionInfo[ContractRevert]]:
        """Expect a revert with the custom error `name` and exactly these arguments."""
        with pytest.raises(ContractRevert) as caught:
            yield caught
        assert caught.value.name == name, f"expected {name}, got {caught.value}"
        assert plain(caught.value.error_args) == plain(args), f"{name} arguments differ: {caught.value}"
