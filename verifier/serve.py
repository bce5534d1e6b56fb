"""Run a verifier node: uvicorn with the API, the node's indexer following the chain."""

from __future__ import annotations

import logging

import uvicorn

from verifier.api.app import create_app
from verifier.runtime import VerifierRuntime

log = logging.getLogger(__name__)


def serve(runtime: VerifierRuntime, host: str, port: int) -> None:
    runtime.start_indexer()
    app = create_app(runtime)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        runtime.close()
