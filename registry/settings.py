"""Settings from `ECERT_*` environment variables. Secrets are `SecretStr` and have no default."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.error_codes import ErrorCode
from registry.errors import ConfigError


class Settings(BaseSettings):
    """Where ecert keeps its state and how it reaches the chain."""

    model_config = SettingsConfigDict(env_prefix="ECERT_", extra="ignore", use_attribute_docstrings=True)

    home: Path = Path(".ecert")
    """State folder: keys, chain state, deployment, databases (relative to where commands run)."""
    rpc_url: str = "http://127.0.0.1:8545"
    """JSON-RPC URL of the chain every command and service uses (unset: the local anvil at `ECERT_CHAIN_PORT`)."""
    chain_port: int = 8545
    """Port of the local anvil that `ecert chain up` and `ecert demo` start."""
    rpc_timeout_s: float = 10.0
    """Seconds before a chain call counts as the chain being unreachable."""
    keystore_password: SecretStr | None = None
    """Password that encrypts the keystore (no default: this, the file below, or `<home>/keystore.password`)."""
    keystore_password_file: Path | None = None
    """A 0600 file holding the keystore password instead; `<home>/keystore.password` is used if present."""
    keystore_scrypt_n: int = 2**16
    """scrypt cost of the keystores (2**18 is geth's default; lower only for throwaway chains)."""
    metrics_enabled: bool = True
    """Serve Prometheus metrics at `/metrics` on the issuer, the verifier and the wallet (no personal data in them)."""
    metrics_token: SecretStr | None = None
    """If set, `/metrics` answers only `Authorization: Bearer <this token>`."""

    @model_validator(mode="after")
    def _metrics_token_is_a_token(self) -> Settings:
        """A token set but blank would open `/metrics` to anyone while the operator thinks it closed."""
        if self.metrics_token is not None and not self.metrics_token.get_secret_value().strip():
            raise ValueError(
                "ECERT_METRICS_TOKEN is set but empty: give it a token, or unset it to serve /metrics openly"
            )
        return self

    @model_validator(mode="after")
    def _rpc_follows_chain_port(self) -> Settings:
        """Moving the local chain moves where commands reach it, unless `ECERT_RPC_URL` is given."""
        if "rpc_url" not in self.model_fields_set and "chain_port" in self.model_fields_set:
            self.rpc_url = f"http://127.0.0.1:{self.chain_port}"
        return self

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keys"

    @property
    def chain_dir(self) -> Path:
        return self.home / "chain"

    @property
    def deployment_file(self) -> Path:
        return self.home / "deployment.json"

    @property
    def default_password_file(self) -> Path:
        return self.home / "keystore.password"

    def require_keystore_password(self) -> str:
        """The keystore password from the environment or a password file; never a default."""
        if self.keystore_password is not None and self.keystore_password.get_secret_value():
            return self.keystore_password.get_secret_value()
        path = self.keystore_password_file or self.default_password_file
        if path.exists() and (password := path.read_text().strip()):
            return password
        raise ConfigError(
            "No keystore password: set ECERT_KEYSTORE_PASSWORD or ECERT_KEYSTORE_PASSWORD_FILE (keys are encrypted with it)",
            code=ErrorCode.KEYSTORE_PASSWORD_MISSING,
        )


@cache
def get_settings() -> Settings:
    return Settings()
