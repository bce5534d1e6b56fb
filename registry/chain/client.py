"""A thin chain client: connect, sign locally with explicit gas, track nonces, decode reverts.

Transactions are signed in process (keys never leave the keystore's `unlocked()` block) and sent
raw; nonces are counted locally per sender so many transactions can be in flight. A revert is
replayed as an `eth_call` so the caller gets the Solidity error by name, never a bare failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar, cast

import requests
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import BlockIdentifier, Nonce, TxParams, TxReceipt, Wei

from registry.chain.head import RawBlockNumber
from registry.chain.reverts import decode_revert
from registry.error_codes import ErrorCode
from registry.errors import ChainError, ChainUnavailable, ContractRevert

log = logging.getLogger(__name__)

_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
    OSError,
)
RECEIPT_TIMEOUT_S = 120
T = TypeVar("T")


def checksum_address(address: str) -> ChecksumAddress:
    """`address` as web3's types name it; web3 itself checks the checksum when it uses one."""
    return cast(ChecksumAddress, address)


def revert_data(exc: ContractLogicError) -> str | None:
    """The hex revert data of `exc`: anvil (and geth) answer it as the error's `data`, Hardhat's
    node nests it as `data.data` beside a message."""
    data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
    return data if isinstance(data, str) else None


class Fees(TypedDict):
    """EIP-1559 prices of one transaction, spread into its `TxParams`."""

    maxFeePerGas: Wei
    maxPriorityFeePerGas: Wei


@dataclass
class Receipt:
    """What callers need of a mined transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    logs: list[Any]


class ChainClient:
    """One connection to one chain."""

    def __init__(self, w3: Web3, *, timeout_s: float = 10.0) -> None:
        self.w3 = w3
        self._held_nonces: dict[str, set[int]] = {}
        self._nonce_lock = threading.Lock()
        self._chain_id: int | None = None
        self._raw_block_number = RawBlockNumber.for_url(
            str(getattr(w3.provider, "endpoint_uri", "") or ""), timeout_s
        )

    @classmethod
    def connect(cls, url: str, timeout_s: float = 10.0) -> ChainClient:
        """Connect to a JSON-RPC node; raises `ChainUnavailable` if it does not answer."""
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s}))
        client = cls(w3, timeout_s=timeout_s)
        client.chain_id  # noqa: B018 - fail fast when the node is down
        return client

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.guard(lambda: self.w3.eth.chain_id)
        return self._chain_id

    def guard(self, action: Callable[[], T]) -> T:
        """Run a node call, translating connection failures into `ChainUnavailable`."""
        try:
            return action()
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(
                f"Chain node unreachable ({exc.__class__.__name__}): is it running? try `ecert chain status`"
            ) from exc
        except Web3RPCError as exc:
            raise ChainError(f"Chain node error: {exc}") from exc

    def block_number(self) -> int:
        """The head block: over plain HTTP one raw `eth_blockNumber` (`RawBlockNumber`), else web3."""
        if self._raw_block_number is not None:
            return self._raw_block_number()
        return self.guard(lambda: self.w3.eth.block_number)

    def allocate_nonce(self, address: str, taken: Collection[int] = ()) -> int:
        """The lowest nonce of `address` that the node has not seen (its pending count or above)
        and that neither another thread of this process holds nor `taken` lists (the anchoring
        worker's stored transactions). One allocator for every thread: the anchoring worker and
        status changes share an agency key, and a chain that lost blocks gets its gap filled.
        Release it with `release_nonce` if the transaction is not sent."""
        with self._nonce_lock:
            base = self.guard(lambda: self.w3.eth.get_transaction_count(checksum_address(address), "pending"))
            held = self._held_nonces.setdefault(address, set())
            held.difference_update([n for n in held if n < base])  # the node has them now
            nonce: int = base
            while nonce in held or nonce in taken:
                nonce += 1
            held.add(nonce)
            return nonce

    def release_nonce(self, address: str, nonce: int) -> None:
        with self._nonce_lock:
            self._held_nonces.get(address, set()).discard(nonce)

    def transact(
        self,
        account: LocalAccount,
        call: ContractFunction | ContractConstructor,
        *,
        gas: int | None = None,
        contract: str = "CertificateRegistry",
    ) -> Receipt:
        """Sign `call` with `account`, send it and wait for its receipt; reverts raise by name."""
        if gas is None:
            gas = self._estimate(account.address, call, contract)
        nonce = self.allocate_nonce(account.address)
        try:
            chain_id, fees = self.chain_id, self._fees()
            params: TxParams = {
                "from": account.address,
                "nonce": Nonce(nonce),
                "gas": gas,
                "chainId": chain_id,
                "maxFeePerGas": fees["maxFeePerGas"],
                "maxPriorityFeePerGas": fees["maxPriorityFeePerGas"],
            }
            tx = call.build_transaction(params)
            # eth-account types the dict it signs as a plain dict, web3 builds a TypedDict
            signed = account.sign_transaction(cast(TransactionDictType, tx))
            tx_hash = self.guard(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
            receipt: TxReceipt = self.guard(
                lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
            )
        except TimeExhausted as exc:
            raise ChainError(
                f"Transaction 0x{signed.hash.hex().removeprefix('0x')} not mined within {RECEIPT_TIMEOUT_S} s: "
                "check the node (`ecert chain status`), then try again",
                code=ErrorCode.TX_NOT_MINED,
            ) from exc
        finally:
            self.release_nonce(account.address, nonce)
        if receipt["status"] != 1:
            self._estimate(account.address, call, contract, block=receipt["blockNumber"] - 1)
            raise ChainError(f"Transaction {tx_hash.hex()} failed (out of gas?)", code=ErrorCode.TX_FAILED)
        return Receipt(
            "0x" + bytes(receipt["transactionHash"]).hex(),
            receipt["blockNumber"],
            receipt["gasUsed"],
            list(receipt["logs"]),
        )

    def _estimate(
        self,
        sender: str,
        call: ContractFunction | ContractConstructor,
        contract: str,
        block: BlockIdentifier = "latest",
    ) -> int:
        try:
            return self.guard(lambda: call.estimate_gas({"from": sender}, block))
        except ContractCustomError as exc:
            raise decode_revert(revert_data(exc), contract) from exc
        except ContractLogicError as exc:
            raise decode_revert(revert_data(exc), contract) from exc

    def revert_of(
        self,
        sender: str,
        call: ContractFunction,
        contract: str = "CertificateRegistry",
        block: BlockIdentifier = "latest",
    ) -> ContractRevert | None:
        """Run `call` from `sender` as an `eth_call` at `block`: the decoded revert it meets, or
        None if it would go through (node trouble raises as `guard` says)."""
        try:
            self.guard(lambda: call.call({"from": sender}, block_identifier=block))
        except ContractCustomError as exc:
            return decode_revert(revert_data(exc), contract)
        except ContractLogicError as exc:
            return decode_revert(revert_data(exc), contract)
        return None

    def _fees(self) -> Fees:
        base = self.guard(lambda: self.w3.eth.get_block("latest"))["baseFeePerGas"]
        tip = 1_000_000_000
        return {"maxFeePerGas": Wei(2 * base + tip), "maxPriorityFeePerGas": Wei(tip)}

    def call(self, call: ContractFunction, contract: str = "CertificateRegistry") -> Any:
        """Run a view; reverts raise by name."""
        try:
            return self.guard(call.call)
        except ContractCustomError as exc:
            raise decode_revert(revert_data(exc), contract) from exc

    def fund(self, address: str, wei: int) -> None:
        """Send `wei` from the node's first unlocked account (development chains only)."""

        def send() -> None:
            faucet = self.w3.eth.accounts[0]
            tx_hash = self.w3.eth.send_transaction({"from": faucet, "to": address, "value": Wei(wei)})
            self.w3.eth.wait_for_transaction_receipt(tx_hash)

        self.guard(send)

    def balance(self, address: str) -> int:
        return self.guard(lambda: self.w3.eth.get_balance(checksum_address(address)))
