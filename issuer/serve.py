"""`ecert serve issuer`: the API (uvicorn, one process) and, in background threads, the
anchoring worker and the retirement of superseded certificates. SIGTERM or SIGINT stops the
server, then the threads (each finishes its current step: one database transaction), then the
runtime; the process exits 0."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable

from issuer.runtime import IssuerRuntime
from registry.certificate.identifiers import parse_uscc
from registry.errors import ChainError, EcertError, IdentifierError

log = logging.getLogger(__name__)

AGENCY_PREFIX = "agency-"
RETIRE_EVERY_S = 1.0
JOIN_TIMEOUT_S = 30.0


def served_agencies(runtime: IssuerRuntime) -> list[str]:
    """Every agency whose current key is in the keystore (`agency-<USCC>`, not `.next`/`.retired-…`)."""
    codes = []
    for name in runtime.workspace.keystore.names():
        code = name.removeprefix(AGENCY_PREFIX)
        if name.startswith(AGENCY_PREFIX) and "." not in code:
            try:
                codes.append(parse_uscc(code).code)
            except IdentifierError:
                log.debug("keystore entry %s does not name an agency: skipped", name)
    return codes


def register_agencies(runtime: IssuerRuntime) -> list[str]:
    served = []
    for code in served_agencies(runtime):
        try:
            runtime.register_agency(code)
            served.append(code)
        except EcertError as exc:
            log.warning("agency %s not served (%s): %s", code, exc.code, exc.message)
    return served


def retire_forever(runtime: IssuerRuntime, stop: threading.Event, every_s: float = RETIRE_EVERY_S) -> None:
    """Revoke (04 注销) certificates whose renewal is confirmed, until `stop` is set."""
    while not stop.wait(every_s):
        try:
            if done := runtime.status.retire_superseded():
                log.info("revoked %d superseded certificate(s)", done)
        except ChainError as exc:
            log.warning("retiring superseded certificates paused (%s): %s", exc.code, exc.message)
        except Exception:
            log.exception("retiring superseded certificates failed; trying again")


class Background:
    """The worker threads, started and stopped together."""

    def __init__(self, runtime: IssuerRuntime) -> None:
        self.stop = threading.Event()
        self._threads = [
            self._thread("anchoring", lambda: runtime.worker.run_forever(self.stop)),
            self._thread("retiring", lambda: retire_forever(runtime, self.stop)),
        ]

    def _thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except Exception:
                log.exception("%s thread died", name)

        return threading.Thread(target=run, name=f"ecert-{name}", daemon=True)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():  # stuck (a lock, a call that never returns): say where, then leave it
                frame = sys._current_frames().get(thread.ident or 0)
                stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)"
                log.error("%s did not stop within %.0f s; it was at:\n%s", thread.name, JOIN_TIMEOUT_S, stack)


def serve(host: str = "127.0.0.1", port: int = 8001, *, worker: bool = True, log_level: str = "info") -> None:
    """Run the issuer until SIGTERM/SIGINT."""
    import uvicorn  # the API's imports are paid only by this command

    from issuer.api import create_app

    runtime = IssuerRuntime.open()
    background: Background | None = None
    try:
        served = register_agencies(runtime)
        log.warning("serving agencies %s on http://%s:%d", ", ".join(served) or "(none)", host, port)
        server = uvicorn.Server(
            # proxy_headers off: never believe X-Forwarded-For (throttles and the audit trail key on the address)
            uvicorn.Config(
                create_app(runtime), host=host, port=port, workers=1, log_level=log_level, proxy_headers=False
            )
        )

        def on_signal(
            _signum: int, _frame: object
        ) -> None:  # uvicorn re-raises the signal after its shutdown:
            server.should_exit = True  # with this handler in place, that ends in a clean exit 0

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if worker:
            background = Background(runtime)
            background.start()
        server.run()
    finally:
        if background is not None:
            background.close()
        runtime.close()
