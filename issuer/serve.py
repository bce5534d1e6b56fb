"""`ecert serve issuer`: the API (uvicorn, one process) and, in background threads, the
anchoring worker and the retirement of superseded certificates. SIGTERM or SIGINT stops the
server, then the threads (each finishes its current step: one database transaction), then the
runtime; the process exits 0."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from issuer.auth import create_api_key, list_api_keys, revoke_api_key
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
        server = uvicorn.Server(uvicorn.Config(create_app(runtime), host=host, port=port, workers=1, log_level=log_level))

        def on_signal(_signum: int, _frame: object) -> None:  # uvicorn re-raises the signal after its shutdown:
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


# ─── commands ────────────────────────────────────────────────────────────────────────────

console = Console()
err = Console(stderr=True)
api_key_app = typer.Typer(help="API keys of agency staff (one agency, scopes issue/status/admin).", no_args_is_help=True)


def group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The sub-command group `name` of `app`, made if no room registered it yet (`serve` is shared)."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    made = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(made, name=name)
    return made


def register(app: typer.Typer) -> None:
    group(app, "serve", "Run a service: the issuer API, the verifier…").command("issuer")(serve_issuer)
    group(app, "issuer", "The issuer service: API keys.").add_typer(api_key_app, name="api-key")


def serve_issuer(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8001,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve the API only; anchor in another process.")] = False,
) -> None:
    """Serve the issuer API (docs at /docs) and anchor what it takes in; stops on SIGTERM/Ctrl-C."""
    serve(host, port, worker=not no_worker)


@api_key_app.command("create")
def api_key_create(
    agency: Annotated[str, typer.Option(help="The agency's 统一社会信用代码 (its key must be in the keystore).")],
    scopes: Annotated[str, typer.Option(help="Comma list of issue, status, admin.")] = "issue",
    label: Annotated[str, typer.Option(help="Who or what holds the key, e.g. a system or a clerk.")] = "",
) -> None:
    """Create a key and print it once (only its SHA-256 is kept)."""
    runtime = IssuerRuntime.open()
    try:
        code = parse_uscc(agency).code
        if code not in served_agencies(runtime):
            raise EcertError(f"Agency {code} has no key in this keystore: run `ecert agency add` first", code="AGENCY_UNKNOWN")
        runtime.register_agency(code)
        token = create_api_key(runtime.sessions, code, scopes, label)
    finally:
        runtime.close()
    err.print(f"API key for {code} ({scopes}); shown once, store it now:")
    print(token)


@api_key_app.command("revoke")
def api_key_revoke(key_id: Annotated[int, typer.Argument(help="The key's id (see `ecert issuer api-key list`).")]) -> None:
    """Revoke a key: it stops working at once."""
    runtime = IssuerRuntime.open()
    try:
        info = revoke_api_key(runtime.sessions, key_id)
    finally:
        runtime.close()
    console.print(f"revoked API key {info.id} of {info.agency_code} ({info.label or 'no label'})")


@api_key_app.command("list")
def api_key_list(
    agency: Annotated[str | None, typer.Option(help="Only this agency's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (never the tokens)."""
    runtime = IssuerRuntime.open()
    try:
        keys = list_api_keys(runtime.sessions, agency)
    finally:
        runtime.close()
    if as_json:
        rows = [{"id": k.id, "agency": k.agency_code, "scopes": list(k.scopes), "label": k.label,
                 "createdAt": k.created_at.isoformat(), "revokedAt": k.revoked_at.isoformat() if k.revoked_at else None}
                for k in keys]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False))
        return
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        console.print(f"{k.id:>4}  {k.agency_code}  {','.join(k.scopes):<18} {state:<24} {k.label}")
