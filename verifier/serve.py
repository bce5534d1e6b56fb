"""Run a verifier node: the indexer follows the chain in this process; uvicorn serves the API
with one or more worker processes, each reading the index (one writer, many readers). With
several workers this process also writes their access logs (`AccessLogServer`); it sends the
entries owed to other regions' nodes (`verifier.outbox`) and the notifications owed to
subscribers (`verifier.webhooks`)."""

from __future__ import annotations

import logging
import os

import uvicorn
from fastapi import FastAPI

from registry.metrics import MULTIPROC_ENV, multiprocess_folder
from verifier.access_log import AccessLogServer
from verifier.api.app import create_app
from verifier.flush import ConsolidatedFlushProtocol
from verifier.runtime import VerifierRuntime
from verifier.settings import VerifierSettings

log = logging.getLogger(__name__)


def app_factory() -> FastAPI:
    """For uvicorn's worker processes: each opens its own runtime from the environment."""
    return create_app(VerifierRuntime.open(), owns_runtime=True)


def serve(settings: VerifierSettings, host: str, port: int, workers: int = 1) -> None:
    settings = settings.model_copy(
        update={"access_log_socket": None}
    )  # this process is the writer, whatever the environment says
    runtime = VerifierRuntime.open(settings=settings)
    runtime.start_indexer()
    runtime.start_outbox()  # the node process sends what its access log owes other regions' nodes
    runtime.start_webhooks()  # and tells subscribers of the status changes it indexes
    try:
        if workers == 1:
            uvicorn.run(
                create_app(runtime),
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                http=ConsolidatedFlushProtocol,
                proxy_headers=False,  # never believe X-Forwarded-For: the desk's throttle keys on the address
            )
            return
        access_log = AccessLogServer(runtime.access_log)  # the workers send their entries here: one writer
        try:
            os.environ["ECERT_VERIFIER_REGION"] = settings.region
            os.environ["ECERT_VERIFIER_ACCESS_LOG_SOCKET"] = str(access_log.path)
            # the workers count in one private folder, emptied now: a scrape of any adds up all (registry.metrics)
            os.environ[MULTIPROC_ENV] = str(multiprocess_folder(runtime.folder / "metrics"))
            uvicorn.run(
                "verifier.serve:app_factory", factory=True, workers=workers, host=host, port=port,
                log_level="warning", access_log=False, http=ConsolidatedFlushProtocol, proxy_headers=False,
            )  # fmt: skip
        finally:
            os.environ.pop("ECERT_VERIFIER_ACCESS_LOG_SOCKET", None)
            os.environ.pop(MULTIPROC_ENV, None)
            access_log.close()
    finally:
        runtime.close()
