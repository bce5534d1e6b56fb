"""The scale benchmark's regional figures (issue 14 points 4 and 5), beside `scale_harness.py`:
a regional node's index of the same chain, and the offline counter's downloads (the whole
registry's snapshot, one region's, and a region's delta over the last stage of the fill)."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

from sqlalchemy import Engine

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry
from registry.database import make_engine
from registry.indexer import Indexer
from verifier.receipts import ReceiptSigner
from verifier.snapshot import sign_snapshot, snapshot_body
from verifier.snapshot_delta import delta_body

REGION = "330000"  # the regional node and the counter's snapshot: 浙江


def regional_index(
    client: ChainClient, registry: CertificateRegistry, url: str, certificates: int, whole: dict[str, Any]
) -> dict[str, Any]:
    """A regional node's index (`regions=[REGION]`) of the whole chain, from block 0, against the
    whole index `whole` (`index_size` of the catch-up)."""
    from scale_harness import index_size  # beside this file

    engine = make_engine(url)
    try:
        began = time.perf_counter()
        Indexer(client, registry, engine, confirmations=0, start_block=0, regions=[REGION]).sync()
        seconds = time.perf_counter() - began
        size = index_size(engine, certificates)
    finally:
        engine.dispose()
    batches = size["tables"]["idx_batches"]["rows"]
    return {
        "region": REGION, "catch_up_s": round(seconds, 3), "bytes": size["bytes"], "rows": size["rows"],
        "batches": batches, "whole_batches": whole["tables"]["idx_batches"]["rows"],
        "bytes_vs_whole": round(size["bytes"] / whole["bytes"], 3),
        "batch_rows_vs_whole": round(batches / max(1, whole["tables"]["idx_batches"]["rows"]), 3),
    }  # fmt: skip


def snapshot_sizes(
    engine: Engine, client: ChainClient, registry: CertificateRegistry, base_block: int
) -> dict[str, Any]:
    """Gzipped, signed sizes: the whole registry's snapshot and `REGION`'s now, `REGION`'s at
    `base_block`, and the delta from that one to now (what a counter downloads for the stage)."""
    signer = ReceiptSigner.generate()
    common: dict[str, Any] = {
        "chain_id": client.chain_id, "registry": registry.address, "region": REGION,
        "block_time": lambda n: int(client.w3.eth.get_block(n)["timestamp"]),
    }  # fmt: skip
    whole = sign_snapshot(snapshot_body(engine, **common), signer)
    region_now = sign_snapshot(snapshot_body(engine, **common, regions=[REGION]), signer)
    base = sign_snapshot(snapshot_body(engine, **common, regions=[REGION], upto_block=base_block), signer)
    delta = sign_snapshot(delta_body(engine, base["snapshot"], **common), signer)
    return {
        "region": REGION, "base_block": base_block,
        "whole_bytes": _gz(whole), "region_bytes": _gz(region_now), "delta_bytes": _gz(delta),
        "whole_batches": len(whole["snapshot"]["batches"]), "region_batches": len(region_now["snapshot"]["batches"]),
        "delta_batches": len(delta["snapshot"]["batches"]),
    }  # fmt: skip


def _gz(document: dict[str, Any]) -> int:
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return len(gzip.compress(data, compresslevel=9, mtime=0))
