"""A workspace: the settings, keystore, chain connection and deployment a command works with.

Commands of every room (`registry`, `issuer`, `verifier`) start from one, so they agree on
where state lives and connect lazily (a command that needs no chain never touches one). Importing
this module is cheap: what each property needs (settings, web3, the keystore) is imported when
it is first read, so the CLI can name a Workspace without paying for them at start.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.chain.client import ChainClient
    from registry.contracts.certificate_registry import CertificateRegistry
    from registry.deploy import Deployment
    from registry.keys import Keystore
    from registry.settings import Settings

ROOT_KEY = "root"


def authority_key_name(region: int | str) -> str:
    return f"authority-{region}"


def agency_key_name(code: str) -> str:
    return f"agency-{code}"


class Workspace:
    def __init__(self, settings: Settings | None = None) -> None:
        from registry.settings import get_settings

        self.settings = settings or get_settings()

    @cached_property
    def keystore(self) -> Keystore:
        from registry.keys import Keystore

        return Keystore(
            self.settings.keystore_dir,
            self.settings.require_keystore_password(),
            scrypt_n=self.settings.keystore_scrypt_n,
        )

    @cached_property
    def client(self) -> ChainClient:
        from registry.chain.client import ChainClient

        return ChainClient.connect(self.settings.rpc_url, self.settings.rpc_timeout_s)

    @cached_property
    def deployment(self) -> Deployment:
        from registry.deploy import Deployment

        return Deployment.load(self.settings.deployment_file, self.client.chain_id)

    @cached_property
    def registry(self) -> CertificateRegistry:
        return self.deployment.registry(self.client)

    def fund_if_dev(self, address: str, ether: int = 10) -> None:
        """On a development node (unlocked accounts), give a new key gas money."""
        if (
            self.client.guard(lambda: self.client.w3.eth.accounts)
            and self.client.balance(address) < ether * 10**17
        ):
            self.client.fund(address, ether * 10**18)
