"""Verifier node settings (`ECERT_VERIFIER_*`): one node per region, its policy, its keys."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.secrets_files import private_folder, private_sqlite
from registry.settings import Settings

POLICIES = Path(__file__).with_name("policies")


class VerifierSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ECERT_VERIFIER_", extra="ignore", use_attribute_docstrings=True
    )

    region: str = "330000"
    """The node's region (GB/T 2260); its policy and its share links are this region's."""
    database_url: str | None = None
    """SQLAlchemy URL of the node's database (default: SQLite under `<home>/verifier-<region>`)."""
    policy_file: Path | None = None
    """The node's recognition policy (default `verifier/policies/<region>.json`)."""
    receipt_key_file: Path | None = None
    """Ed25519 key that signs receipts and snapshots (default `<home>/verifier-<region>/receipt-key.pem`)."""
    public_url: str = "http://127.0.0.1:8002"
    """Base URL share links and QR codes point at."""
    index_regions: list[str] | None = None
    """Regions (JSON list of GB/T 2260 patterns, e.g. ["330000"]) whose batches the node indexes: a regional node, whose index grows with its region; another region's certificate is asked of the chain when verified (answers cached for as long as the index may lag). Unset: every region. An index keeps the scope it was made with."""
    trusted_nodes: list[str] = []
    """Base URLs (JSON list) of other regions' nodes whose shares this node fetches."""
    node_key: str | None = None
    """This node's API key at those nodes (an organisation of kind `node` there)."""
    outbox_retry_base_s: float = 1.0
    """First wait before resending an access-log entry owed to another region's node (doubled per failure, with jitter)."""
    outbox_retry_max_s: float = 300.0
    """Longest wait between two sends of an access-log entry owed to another region's node."""
    outbox_give_up_s: float = 7 * 24 * 3600.0
    """An access-log entry another region's node has not taken in this long is marked failed."""
    webhook_retry_base_s: float = 2.0
    """First wait before posting a subscription's notification again (doubled per failure, with jitter)."""
    webhook_retry_max_s: float = 600.0
    """Longest wait between two posts of a subscription's notification."""
    webhook_max_attempts: int = 15
    """Posts of a notification before it becomes a dead letter (`GET /v1/subscriptions/{id}/dead-letters`)."""
    webhook_give_up_s: float = 24 * 3600.0
    """A notification not delivered this long after it was made (or redelivered) becomes a dead letter."""
    webhook_timeout_s: float = 5.0
    """How long a subscriber's webhook may take to answer one post."""
    webhook_allow_http: bool = False
    """Accept plain `http://` webhook URLs (a private network, tests); by default only `https://`."""
    index_max_lag_blocks: int = 2
    """Answer from the index only while it is at most this many blocks behind the chain."""
    index_confirmations: int = 0
    """Blocks the indexer stays behind the head (0: reorgs are rolled back, a status change shows at once)."""
    keep_api_receipts: bool = False
    """Also keep the receipts of API verifications (`GET /v1/receipts/{id}`, the history). The
    front desk's are always kept; an API caller has its receipt in the answer, and keeping every
    one costs the node about a tenth of its verification throughput."""
    rate_limit_per_min: int = 6_000
    """Requests per minute per API key and per worker process (`--workers N` allows up to N times this)."""
    share_secret_file: Path | None = None
    """HMAC key of dynamic share QR codes (default `<home>/verifier-<region>/share-hmac.key`, created 0600)."""
    access_log_socket: Path | None = None
    """Set by `ecert serve verifier` for its workers: where the node process takes their access-log entries."""

    def folder(self, core: Settings) -> Path:
        return private_folder(core.home / f"verifier-{self.region}")  # 0700, whatever the umask

    def url(self, core: Settings) -> str:
        return self.database_url or private_sqlite(self.folder(core), "verifier.sqlite")  # made 0600

    def policy_path(self) -> Path:
        return self.policy_file or POLICIES / f"{self.region}.json"
