"""The console's pages as an app of their own, for tests over real HTTP (httpx → ASGI): the
console's sign-in and session routes, the pages under test, structured errors, and a runtime
that holds only what those pages read."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from test_issuer_staff import Clock

from issuer.api import console
from issuer.staff import IssuerStaff
from registry.problems import install as install_problems


def console_staff(made: sessionmaker[Session], clock: Clock) -> IssuerStaff:
    """Staff accounts on `made` with fresh keys, on the test's clock."""
    return IssuerStaff(made, secrets.token_bytes(32), secrets.token_bytes(32), clock=clock)


def console_app(staff: IssuerStaff, runtime: Any, *pages: Callable[[FastAPI], None], **state: Any) -> FastAPI:
    """An app with the console's sign-in and `pages` (each module's `install`), `runtime` as
    `app.state.runtime` and any other `state` (e.g. `grants`)."""
    app = FastAPI()
    app.state.runtime = runtime
    app.state.console_staff = staff
    for name, value in state.items():
        setattr(app.state, name, value)
    install_problems(app)
    console.install(app)
    for install in pages:
        install(app)
    return app
