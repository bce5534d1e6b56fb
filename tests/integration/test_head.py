"""The cheap head read (`registry.chain.head`, behind `ChainClient.block_number`) reads what web3
reads, and a node that stops answering is `ChainUnavailable`, never an old number."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_tester import EthereumTester
from web3 import Web3

from registry.chain.client import ChainClient
from registry.chain.head import RawBlockNumber
from registry.chain.runner import AnvilNode, free_port
from registry.errors import ChainUnavailable


def test_block_number_over_http_is_the_raw_read_and_agrees_with_web3(client: ChainClient) -> None:
    assert isinstance(client._raw_block_number, RawBlockNumber)
    before = client.block_number()
    assert before == client.w3.eth.block_number
    client.w3.provider.make_request("evm_mine", [])
    assert client.block_number() == before + 1 == client.w3.eth.block_number


def test_a_stopped_node_is_unavailable_and_a_restarted_one_is_read_again(tmp_path: Path) -> None:
    node = AnvilNode(tmp_path, free_port())
    node.start()
    read = RawBlockNumber(node.url, timeout_s=2)
    try:
        assert read() == 0
        node.stop()
        with pytest.raises(ChainUnavailable):
            read()
        node.start()
        assert read() >= 0  # a new connection after the failed one
    finally:
        node.stop()


def test_nobody_listening_is_unavailable() -> None:
    with pytest.raises(ChainUnavailable):
        RawBlockNumber(f"http://127.0.0.1:{free_port()}/", timeout_s=1)()


def test_other_providers_and_urls_with_credentials_go_through_web3(anvil: AnvilNode) -> None:
    tester = ChainClient(Web3(Web3.EthereumTesterProvider(EthereumTester())))
    assert tester._raw_block_number is None and tester.block_number() == 0
    assert RawBlockNumber.for_url(anvil.url.replace("http://", "http://user:secret@"), 1) is None
    assert RawBlockNumber.for_url("ws://127.0.0.1:8546", 1) is None
