"""Issuer settings (`ECERT_ISSUER_*`). The data key that encrypts personal fields never has a
default: it comes from the environment or a 0600 key file made on first use."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.error_codes import ErrorCode
from registry.errors import ConfigError
from registry.secrets_files import private_folder, private_sqlite
from registry.settings import Settings

_TYPE_HOURS = r"[0-9A-HJ-NPQRTUWXY]{18}\d{3}\s*=\s*\d+(?:\.\d+)?"  # a type code = hours


class IssuerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ECERT_ISSUER_", extra="ignore", use_attribute_docstrings=True
    )

    database_url: str | None = None
    """SQLAlchemy URL of the issuer's database (default: SQLite file `<home>/issuer/issuer.sqlite`)."""
    data_key: SecretStr | None = None
    """Base64 of the 32-byte AES-256-GCM key that encrypts personal fields at rest."""
    data_key_file: Path | None = None
    """File holding that key instead (default `<home>/issuer/data.key`, created 0600)."""
    batch_size: int = 10_000
    """Most certificates anchored under one batch root."""
    batch_window_s: float = 1.0
    """Seconds pending certificates wait for others before their batch is sealed."""
    batch_max_wait_s: float = Field(10.0, ge=0)
    """Under a trickle, least seconds between an agency's batches of fewer than `batch_min_size`: at most one anchoring transaction per agency and type in that time (0: one every window)."""
    batch_min_size: int = Field(100, ge=1)
    """A batch this large is sealed once its window is over, however recently the agency's last one was; a job this large is stored already in its batches (each certificate row written once)."""
    confirmations: int = 1
    """Blocks an anchor needs before its certificates count as confirmed."""
    finality_depth: int = 12
    """Blocks the issuer keeps checking an anchor is still on chain (a reorg sends its batch back to be anchored); 0 or 1 on a chain with instant finality."""
    national_seal_group: int = Field(64, ge=1, le=1024)
    """Certificates co-sealed by one SM2 signature over their SM3 Merkle root (the national co-seal, docs/PROTOCOL.md §12): larger groups sign less often but make each certificate's proof longer (64: 6 hashes, 192 bytes)."""
    claim_code_ttl_days: int = 30
    """Days a holder's claim code stays valid."""
    claim_rate_per_min: int = Field(60, ge=1)
    """Failed claim attempts (wrong code, another holder's) each client address may make per minute (bursts of a sixth, at least 10); redemptions are not counted."""
    retry_max_s: float = 30.0
    """Longest back-off between anchoring attempts while the chain is away or after a transaction failed."""
    audit_anchor_interval_h: float = Field(24.0, ge=0)
    """Hours between the worker's anchors of each agency's staff audit log head on chain (only when the log grew since); 0 turns them off (`ecert audit anchor` still anchors on demand)."""
    verifier_url: str = Field("http://127.0.0.1:8002", pattern=r"^https?://[^\s?#]+$")
    """Public URL (https in production) of the verifier node that QR codes of printouts and packages link to (`<url>/v#EC1:…`)."""
    public_url: str | None = Field(None, pattern=r"^https?://[^\s?#]+$")
    """Public URL of this issuer service as staff reach it (https in production, also behind a TLS proxy): the agency console's cookies are Secure when it is https (or the request itself came over https)."""
    dashboard_verifier_url: str | None = Field(None, pattern=r"^https?://[^\s?#]+$")
    """Verifier node whose aggregated counts (`GET /v1/stats/verifications`) the console's dashboard shows as verifications per day, region and failure reason; unset: the dashboard says it has none."""
    dashboard_verifier_key: SecretStr | None = None
    """That node's API key for this issuer, of kind `agency` or `node` (`ecert verifier org add --kind agency`)."""
    correction_hours: float = Field(24.0, gt=0)
    """Hours an agency has to answer a holder's correction request (its deadline in the console's queue), unless the certificate's type has its own in `ECERT_ISSUER_CORRECTION_HOURS_BY_TYPE`."""
    correction_hours_by_type: str | None = Field(
        None, pattern=rf"^\s*(?:{_TYPE_HOURS}(?:\s*,\s*{_TYPE_HOURS})*)?\s*$"
    )
    """Deadlines of correction requests per certificate type code, in hours: `11100000000013338W002=48,11100000000013338W001=12`; other types get `ECERT_ISSUER_CORRECTION_HOURS`."""

    def correction_hours_for(self, type_code: str) -> float:
        """The hours an agency has to answer a correction request about a certificate of `type_code`."""
        for item in filter(None, (part.strip() for part in (self.correction_hours_by_type or "").split(","))):
            code, _, hours = item.partition("=")
            if code.strip() == type_code and float(hours) > 0:
                return float(hours)
        return self.correction_hours

    def url(self, core: Settings) -> str:
        if self.database_url:
            return self.database_url
        return private_sqlite(
            private_folder(core.home / "issuer"), "issuer.sqlite"
        )  # 0600 in 0700, whatever the umask

    def load_data_key(self, core: Settings, *, create: bool = True) -> bytes:
        if self.data_key is not None:
            raw = base64.b64decode(self.data_key.get_secret_value())
        else:
            path = self.data_key_file or core.home / "issuer" / "data.key"
            if not path.exists():
                if not create:
                    raise ConfigError(
                        f"No data key at {path}: set ECERT_ISSUER_DATA_KEY", code=ErrorCode.DATA_KEY_MISSING
                    )
                private_folder(path.parent, tighten=False)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(base64.b64encode(os.urandom(32)).decode())
            raw = base64.b64decode(path.read_text().strip())
        if len(raw) != 32:
            raise ConfigError(
                "The issuer data key must be 32 bytes (base64)", code=ErrorCode.DATA_KEY_INVALID
            )
        return raw


class DemoSettings(BaseSettings):
    """Where `ecert demo` puts its services (`ECERT_DEMO_*`); `ecert demo --help` names them too."""

    model_config = SettingsConfigDict(env_prefix="ECERT_DEMO_", extra="ignore", use_attribute_docstrings=True)

    issuer_port: int = 8001
    """Port of the demo's issuer API."""
    verifier_port: int = 8002
    """Port of the demo's verifier node (region 330000)."""
    wallet_port: int = 8003
    """Port of the demo's holder wallet."""
