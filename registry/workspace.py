"""A workspace: the settings, keystore, chain connection and deployment a command works with.

Commands of every room (`registry`, `issuer`, `verifier`) start from one, so they agree on
where state lives and connect lazily (a command that needs no chain never touches one).
"""

from __future__ import annotations

from functools import cached_property

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry
from registry.deploy import Deployment
from registry.keys import Keystore
from registry.settings import Settings, get_settings

ROOT_KEY = "root"


def authority_key_name(region: int | str) -> str:
    return f"authority-{region}"


def agency_key_name(code: str) -> str:
    return f"agency-{code}"


class Workspace:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    @cached_property
    def keystore(self) -> Keystore:
        return Keystore(
            self.settings.keystore_dir, self.settings.require_keystore_password(), scrypt_n=self.settings.keystore_scrypt_n
        )

    @cached_property
    def client(self) -> ChainClient:
        return ChainClient.connect(self.settings.rpc_url, self.settings.rpc_timeout_s)

    @cached_property
    def deployment(self) -> Deployment:
        return Deployment.load(self.settings.deployment_file, self.client.chain_id)

    @cached_property
    def registry(self) -> CertificateRegistry:
        return self.deployment.registry(self.client)

    def fund_if_dev(self, address: str, ether: int = 10) -> None:
        """On a development node (unlocked accounts), give a new key gas money."""
        if self.client.guard(lambda: self.client.w3.eth.accounts) and self.client.balance(address) < ether * 10**17:
            self.client.fund(address, ether * 10**18)
