"""The one exception tree of ecert. Every leaf has a stable code from a list that only grows.

EcertError
├── ConfigError            CONFIG_INVALID        settings or files missing or wrong
│   └── DeploymentMissing  DEPLOYMENT_MISSING    no deployment for the chain
├── CompilerError          COMPILER_FAILED       contracts did not compile
├── IdentifierError        IDENTIFIER_INVALID    a GB identifier fails its rules
├── CertificateError       CERT_INVALID          a certificate or package is malformed
│   └── TamperedError      CERT_TAMPERED         a proof or seal does not match
├── KeystoreError          KEYSTORE_ERROR        a key cannot be found or decrypted
├── ChainError             CHAIN_ERROR           the node answered with an error
│   ├── ChainUnavailable   CHAIN_UNAVAILABLE     the node cannot be reached
│   └── ContractRevert     CONTRACT_REVERTED     a contract reverted (named error + args)
├── NotAuthorised          NOT_AUTHORISED        the actor may not do this
├── NotFound               NOT_FOUND             no such thing (for this caller)
└── Conflict               CONFLICT              the request clashes with the current state
"""

from __future__ import annotations

from typing import Any


class EcertError(Exception):
    """Root of every error ecert raises on purpose."""

    code = "ECERT_ERROR"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigError(EcertError):
    code = "CONFIG_INVALID"


class DeploymentMissing(ConfigError):
    code = "DEPLOYMENT_MISSING"


class CompilerError(EcertError):
    code = "COMPILER_FAILED"


class IdentifierError(EcertError):
    code = "IDENTIFIER_INVALID"


class CertificateError(EcertError):
    code = "CERT_INVALID"


class TamperedError(CertificateError):
    code = "CERT_TAMPERED"


class KeystoreError(EcertError):
    code = "KEYSTORE_ERROR"


class ChainError(EcertError):
    code = "CHAIN_ERROR"


class ChainUnavailable(ChainError):
    code = "CHAIN_UNAVAILABLE"


class ContractRevert(ChainError):
    """A contract reverted; `name` and `args` are the decoded Solidity custom error."""

    code = "CONTRACT_REVERTED"

    def __init__(self, name: str, args: dict[str, Any], message: str | None = None) -> None:
        super().__init__(message or f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})")
        self.name = name
        self.error_args = args


class NotAuthorised(EcertError):
    code = "NOT_AUTHORISED"


class NotFound(EcertError):
    code = "NOT_FOUND"


class Conflict(EcertError):
    code = "CONFLICT"
