"""Wallet settings (`ECERT_WALLET_*`). Secrets (data key, lookup key, session key, the verifier
API key) never have a default: they come from the environment or 0600 files made on first start."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.error_codes import ErrorCode
from registry.errors import ConfigError
from registry.secrets_files import load_or_create_secret, private_folder, private_sqlite
from registry.settings import Settings


class WalletSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ECERT_WALLET_", extra="ignore", use_attribute_docstrings=True
    )

    database_url: str | None = None
    """SQLAlchemy URL of the wallet's database (default: SQLite file `<home>/wallet/wallet.sqlite`)."""
    issuer_url: str = "http://127.0.0.1:8001"
    """The issuer API, where claim codes are redeemed."""
    verifier_url: str = "http://127.0.0.1:8002"
    """The verifier node of the holders' region."""
    verifier_key: SecretStr | None = None
    """This wallet's API key at that node (an organisation of kind `wallet`)."""
    verifier_key_file: Path | None = None
    """Or a file holding that key."""
    org_name: str = "浙里办钱包"
    """The wallet's organisation name at the verifier: its own status checks are told apart in the access log."""
    http_timeout_s: float = 8.0
    """Seconds the wallet waits for the issuer or the verifier."""
    status_cache_s: float = 10.0
    """The certificate list asks the verifier at most this often per certificate."""
    cookie_secure: bool | None = None
    """Mark cookies Secure (unset: Secure when the request came over https)."""
    public_url: str | None = None
    """E.g. https://wallet.example.cn behind a proxy: form posts must come from this origin."""
    session_idle_minutes: int = 30
    """A session ends after this long without a request."""
    session_max_hours: int = 12
    """A session ends this long after sign-in, however busy."""
    login_max_failures: int = 5
    """Failed sign-ins per account from one address within `login_window_s` before that pair must wait (others still sign in)."""
    login_max_failures_per_ip: int = 20
    """Failed sign-ins per address within `login_window_s` before it must wait."""
    login_window_s: int = 300
    """The window, in seconds, the two limits above count in."""
    trusted_proxies: list[str] = []
    """Reverse proxies (JSON list of addresses or networks) whose `X-Forwarded-For` names the client; default none."""
    register_max_per_ip: int = 20
    """Registrations per address per hour."""
    claim_max_failures: int = 10
    """Wrong claim codes per holder within 10 minutes."""
    password_scrypt_n: int = 2**15
    """scrypt cost of holders' passwords (r=8, p=1: 32 MiB); lower only for throwaway wallets."""
    data_key_file: Path | None = None
    """AES-256-GCM key for personal data at rest (default `<home>/wallet/data.key`, created 0600)."""
    lookup_key_file: Path | None = None
    """HMAC key for looking holders up by ID number (default `<home>/wallet/lookup.key`)."""
    session_key_file: Path | None = None
    """HMAC key for CSRF tokens (default `<home>/wallet/session.key`)."""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError: a setting that is no address or network
        return value

    def folder(self, core: Settings) -> Path:
        return private_folder(core.home / "wallet")  # 0700, whatever the umask

    def url(self, core: Settings) -> str:
        return self.database_url or private_sqlite(self.folder(core), "wallet.sqlite")  # made 0600

    def secret(self, core: Settings, name: str) -> bytes:
        """One of the wallet's secret files: `data`, `lookup` or `session` (made 0600 on first use)."""
        given = {
            "data": self.data_key_file,
            "lookup": self.lookup_key_file,
            "session": self.session_key_file,
        }[name]
        raw = load_or_create_secret(given or self.folder(core) / f"{name}.key")
        if len(raw) < 32:
            raise ConfigError(
                f"The wallet's {name} key must be at least 32 bytes (base64)", code=ErrorCode.DATA_KEY_INVALID
            )
        return raw

    def require_verifier_key(self) -> str | None:
        """The wallet's key at the verifier node, or None (pages then say the verifier is not set up)."""
        if self.verifier_key is not None and self.verifier_key.get_secret_value().strip():
            return self.verifier_key.get_secret_value().strip()
        if self.verifier_key_file is not None and self.verifier_key_file.exists():
            return self.verifier_key_file.read_text().strip() or None
        return None
