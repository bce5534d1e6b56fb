"""Wire the wallet together: database, keys, the issuer and verifier clients, and the services
the pages use. Transports and the clock are seams for tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from registry.crypto import DataCipher
from registry.settings import Settings, get_settings
from wallet.corrections import Corrections
from wallet.db import make_engine, migrate, sessions
from wallet.holders import Holders
from wallet.services import IssuerClient, VerifierClient
from wallet.sessions import Csrf, LoginSessions
from wallet.settings import WalletSettings
from wallet.sharing import Sharing
from wallet.throttle import Throttle
from wallet.vault import Vault


@dataclass
class WalletRuntime:
    settings: WalletSettings
    engine: Engine
    sessions: sessionmaker[Session]
    holders: Holders
    vault: Vault
    sharing: Sharing
    logins: LoginSessions
    csrf: Csrf
    throttle: Throttle
    issuer: IssuerClient
    verifier: VerifierClient
    corrections: Corrections

    @classmethod
    def open(
        cls,
        settings: WalletSettings | None = None,
        core: Settings | None = None,
        *,
        issuer_transport: httpx.BaseTransport | None = None,
        verifier_transport: httpx.BaseTransport | None = None,
    ) -> WalletRuntime:
        settings = settings or WalletSettings()
        core = core or get_settings()
        engine = make_engine(settings.url(core))
        migrate(engine)
        made = sessions(engine)
        cipher = DataCipher(settings.secret(core, "data")[:32])
        session_key = settings.secret(core, "session")
        throttle = Throttle(made, session_key)
        issuer = IssuerClient(
            settings.issuer_url, timeout_s=settings.http_timeout_s, transport=issuer_transport
        )
        verifier = VerifierClient(settings.verifier_url, settings.require_verifier_key(), timeout_s=settings.http_timeout_s,
                                  transport=verifier_transport)  # fmt: skip
        vault = Vault(made, cipher, issuer, verifier, throttle, claim_max_failures=settings.claim_max_failures,
                      status_cache_s=settings.status_cache_s)  # fmt: skip
        return cls(
            settings=settings, engine=engine, sessions=made,
            holders=Holders(made, cipher, settings.secret(core, "lookup"), throttle, settings),
            vault=vault, sharing=Sharing(made, cipher, vault, verifier),
            logins=LoginSessions(made, idle=dt.timedelta(minutes=settings.session_idle_minutes),
                                 lifetime=dt.timedelta(hours=settings.session_max_hours)),
            csrf=Csrf(session_key), throttle=throttle, issuer=issuer, verifier=verifier,
            corrections=Corrections(made, cipher, issuer, vault, verifier),
        )  # fmt: skip

    def close(self) -> None:
        self.issuer.close()
        self.verifier.close()
        self.engine.dispose()
