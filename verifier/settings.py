"""Verifier node settings (`ECERT_VERIFIER_*`): one node per region, its policy, its keys."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.settings import Settings

POLICIES = Path(__file__).with_name("policies")


class VerifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECERT_VERIFIER_", extra="ignore")

    region: str = "330000"
    database_url: str | None = None  # default: SQLite under <home>/verifier-<region>
    policy_file: Path | None = None  # default: verifier/policies/<region>.json
    receipt_key_file: Path | None = None  # default: <home>/verifier-<region>/receipt-key.pem
    public_url: str = "http://127.0.0.1:8002"  # where share links point
    trusted_nodes: list[str] = []  # base URLs of other regions' nodes whose shares we fetch
    node_key: str | None = None  # this node's API key at those nodes (kind "node")
    index_max_lag_blocks: int = 2  # answer from the index only while it is at most this far behind
    # Index up to the head: reorgs are rolled back by the indexer, and a status change must show at once.
    index_confirmations: int = 0
    # Per API key and per worker process: `serve verifier --workers N` lets a key make up to N times this.
    rate_limit_per_min: int = 6_000
    share_secret_file: Path | None = None  # HMAC key for dynamic QR codes
    # set by `serve` for its worker processes: where the node process takes their access-log entries
    access_log_socket: Path | None = None

    def folder(self, core: Settings) -> Path:
        path = core.home / f"verifier-{self.region}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def url(self, core: Settings) -> str:
        return self.database_url or f"sqlite:///{(self.folder(core) / 'verifier.sqlite').resolve()}"

    def policy_path(self) -> Path:
        return self.policy_file or POLICIES / f"{self.region}.json"
