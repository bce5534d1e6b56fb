"""Deploy the registry and remember where: one deployment file per ecert home."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr

from registry.chain.client import ChainClient
from registry.contracts.artifacts import artifact
from registry.contracts.certificate_registry import CertificateRegistry
from registry.errors import ChainError, DeploymentMissing


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live. TrustRegistry and CertificateRegistry share one address."""

    chain_id: int
    certificate_registry: str
    trust_registry: str
    root: str
    block_number: int

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path, chain_id: int | None = None) -> Deployment:
        if not path.exists():
            raise DeploymentMissing(f"No deployment at {path}: run `ecert deploy` first")
        deployment = cls(**json.loads(path.read_text()))
        if chain_id is not None and deployment.chain_id != chain_id:
            raise DeploymentMissing(
                f"{path} is for chain {deployment.chain_id}, the node is chain {chain_id}: run `ecert deploy` again"
            )
        return deployment

    def registry(self, client: ChainClient) -> CertificateRegistry:
        return CertificateRegistry(client, self.certificate_registry)


def deploy(client: ChainClient, deployer: LocalAccount, root: str | None = None) -> Deployment:
    """Deploy `CertificateRegistry` with `root` (default: the deployer) as the national root."""
    built = artifact("CertificateRegistry")
    factory = client.w3.eth.contract(abi=built.abi, bytecode=built.bytecode)
    root = root or deployer.address
    receipt = client.transact(deployer, factory.constructor(root), gas=5_000_000)
    tx = client.guard(lambda: client.w3.eth.get_transaction_receipt(HexStr(receipt.tx_hash)))
    address = tx["contractAddress"]
    if not address:
        raise ChainError("Deployment mined without a contract address")
    return Deployment(client.chain_id, address, address, root, receipt.block_number)
