"""Wallet settings (`ECERT_WALLET_*`). Secrets (data key, lookup key, session key, the verifier
API key) never have a default: they come from the environment or 0600 files made on first start."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.errors import ConfigError
from registry.secrets_files import load_or_create_secret
from registry.settings import Settings


class WalletSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECERT_WALLET_", extra="ignore")

    database_url: str | None = None  # default: SQLite file under <home>/wallet
    issuer_url: str = "http://127.0.0.1:8001"  # where claim codes are redeemed
    verifier_url: str = "http://127.0.0.1:8002"  # the verifier node of the holders' region
    verifier_key: SecretStr | None = None  # this wallet's API key at that node (organisation kind "wallet")
    verifier_key_file: Path | None = None  # or a file holding it
    # The wallet's organisation name at the verifier: its own status checks are told apart in the access log.
    org_name: str = "浙里办钱包"
    http_timeout_s: float = 8.0
    status_cache_s: float = 10.0  # the certificate list asks the verifier at most this often per certificate
    cookie_secure: bool | None = None  # None: Secure when the request came over https
    public_url: str | None = None  # e.g. https://wallet.example.cn behind a proxy: posts must come from this origin
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    login_max_failures: int = 5  # per account, within login_window_s
    login_max_failures_per_ip: int = 20
    login_window_s: int = 300
    register_max_per_ip: int = 20  # per hour
    claim_max_failures: int = 10  # per holder, within 10 minutes
    password_scrypt_n: int = 2**15  # scrypt cost (r=8, p=1: 32 MiB); lower only for throwaway wallets
    data_key_file: Path | None = None  # AES-256-GCM key for personal data at rest
    lookup_key_file: Path | None = None  # HMAC key for looking holders up by ID number
    session_key_file: Path | None = None  # HMAC key for CSRF tokens

    def folder(self, core: Settings) -> Path:
        path = core.home / "wallet"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def url(self, core: Settings) -> str:
        return self.database_url or f"sqlite:///{(self.folder(core) / 'wallet.sqlite').resolve()}"

    def secret(self, core: Settings, name: str) -> bytes:
        """One of the wallet's secret files: `data`, `lookup` or `session` (made 0600 on first use)."""
        given = {"data": self.data_key_file, "lookup": self.lookup_key_file, "session": self.session_key_file}[name]
        raw = load_or_create_secret(given or self.folder(core) / f"{name}.key")
        if len(raw) < 32:
            raise ConfigError(f"The wallet's {name} key must be at least 32 bytes (base64)", code="DATA_KEY_INVALID")
        return raw

    def require_verifier_key(self) -> str | None:
        """The wallet's key at the verifier node, or None (pages then say the verifier is not set up)."""
        if self.verifier_key is not None and self.verifier_key.get_secret_value().strip():
            return self.verifier_key.get_secret_value().strip()
        if self.verifier_key_file is not None and self.verifier_key_file.exists():
            return self.verifier_key_file.read_text().strip() or None
        return None
