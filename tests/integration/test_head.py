"""The cheap head poller (`registry.chain.head`) reads what web3 reads, and a node that stops
answering is `ChainUnavailable`, never an old number."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_tester import EthereumTester
from web3 import Web3

from registry.chain.client import ChainClient
from registry.chain.head import RawBlockNumber, block_number_reader
from registry.chain.runner import AnvilNode, free_port
from registry.errors import ChainUnavailable


def test_reads_the_head_web3_reads_over_one_kept_alive_connection(client: ChainClient) -> None:
    read = block_number_reader(client)
    assert isinstance(read, RawBlockNumber)
    before = read()
    assert before == client.block_number()
    client.w3.provider.make_request("evm_mine", [])
    assert read() == before + 1 == client.block_number()


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
    client = ChainClient(Web3(Web3.EthereumTesterProvider(EthereumTester())))
    read = block_number_reader(client)
    assert not isinstance(read, RawBlockNumber) and read() == client.block_number()
    with_credentials = ChainClient(Web3(Web3.HTTPProvider(anvil.url.replace("http://", "http://user:secret@"))))
    assert not isinstance(block_number_reader(with_credentials), RawBlockNumber)
