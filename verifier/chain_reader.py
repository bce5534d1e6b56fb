"""Read the registry for a verification: one `eth_call` of `inspect` (plus the block height), and
for the national co-seal the agency's SM2 keys with their records."""

from __future__ import annotations

from registry.certificate.presentation import Presentation
from registry.contracts.certificate_registry import CertificateRegistry
from registry.contracts.trust_registry import NationalKeyInfo
from registry.error_codes import ErrorCode
from verifier.context import ChainFacts


class RegistryReader:
    """Asks the deployed registry directly (no index): always fresh, one round trip."""

    def __init__(self, registry: CertificateRegistry) -> None:
        self._registry = registry
        self.chain_id = registry.client.chain_id
        self.registry: str = registry.address  # as `ChainReader` has it (web3 types it ChecksumAddress)

    def facts(self, presentation: Presentation, signer: str, at: int | None = None) -> ChainFacts:
        if at is not None:
            from registry.errors import ChainError

            raise ChainError(
                "The chain answers only about now: verifying at a past time needs the index",
                code=ErrorCode.INDEX_REQUIRED,
            )
        inspection = self._registry.inspect(
            presentation.batch_root,
            presentation.batch_index,
            presentation.digest,
            list(presentation.batch_proof),
            signer,
        )
        return ChainFacts(inspection, self._registry.client.block_number(), "chain")

    def national_keys(self, agency_code: str) -> list[NationalKeyInfo]:
        """The agency's SM2 keys, oldest first, with their records now (1 + n `eth_call`s; an
        agency has one or two). Empty for an unknown agency, as the index answers."""
        from registry.errors import ContractRevert

        try:
            return self._registry.national_keys(agency_code)
        except ContractRevert as exc:
            if exc.name == "TrustRegistryUnknownAgency":
                return []
            raise
