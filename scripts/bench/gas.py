"""Gas of the registry's writes on a fresh anvil (cancun): writes bench-results/gas.json.

python scripts/bench/gas.py [--out bench-results/gas.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from eth_account import Account

from registry.chain.client import ChainClient
from registry.chain.runner import AnvilNode, free_port
from registry.contracts.certificate_registry import Status
from registry.deploy import deploy

TYPE_CODE = "11100000000013338W001"
AGENCY = "11330100002493028E"
BULK = 256


def measure() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        node = AnvilNode(Path(tmp), free_port())
        node.start()
        try:
            client = ChainClient.connect(node.url)
            root, authority, agency = (Account.create() for _ in range(3))
            for account in (root, authority, agency):
                client.fund(account.address, 10**20)
            deployed = deploy(client, root)
            deploy_gas = client.w3.eth.get_transaction_receipt(
                client.w3.eth.get_block(deployed.block_number)["transactions"][0]
            )["gasUsed"]
            registry = deployed.registry(client)
            registry.add_authority(root, authority.address, 330000, "浙江")
            registry.register_agency(authority, AGENCY, 330100, "杭州", agency.address, [TYPE_CODE])
            anchors = {
                size: registry.anchor(agency, os.urandom(32), size, TYPE_CODE).gas_used
                for size in (1, 1000, 1_000_000)
            }
            root_hash = os.urandom(32)
            registry.anchor(agency, root_hash, 100_000, TYPE_CODE)
            single = registry.set_status(agency, root_hash, 5, Status.SUSPENDED, 2).gas_used
            bulk = registry.revoke_certificates(agency, root_hash, 2, (1 << BULK) - 1, 3).gas_used
            bulk_generic = registry.set_status_bulk(
                agency, root_hash, 3, (1 << BULK) - 1, Status.SUSPENDED, 2
            ).gas_used
            whole = registry.revoke_batch(agency, root_hash, 7).gas_used
        finally:
            node.stop()
    return {
        "chain": "anvil (hardfork cancun)",
        "deploy_gas": deploy_gas,
        "anchor_gas": max(anchors.values()),
        "anchor_gas_by_batch_size": {str(k): v for k, v in anchors.items()},
        "status_change_gas": single,
        "bulk_status_certs": BULK,
        "bulk_status_gas": bulk,
        "bulk_status_gas_per_cert": round(bulk / BULK, 1),
        "bulk_status_gas_per_cert_marginal": round((bulk - 21_000) / BULK, 1),
        "bulk_status_method": "revokeCertificates",
        "bulk_suspend_gas": bulk_generic,
        "revoke_batch_gas": whole,
        "goals": {"anchor_gas_max": 60_000, "bulk_status_gas_per_cert_max": 200},
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/gas.json"))
    args = parser.parse_args()
    results = measure()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
