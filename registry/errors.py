"""The one exception tree of ecert. Every leaf has a stable code from the list that only grows,
`registry.error_codes.ErrorCode`, which also gives each code its HTTP status and title.

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

from registry.error_codes import ErrorCode


class EcertError(Exception):
    """Root of every error ecert raises on purpose; its `code` (an `ErrorCode`) gives the HTTP
    status and title of the problem it answers, the class only a default code."""

    code: ErrorCode = ErrorCode.ECERT_ERROR

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = ErrorCode[cls.code]  # a class with a code not in the registry fails at import

    def __init__(self, message: str, *, code: ErrorCode | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = ErrorCode[code]  # a code not in the registry fails here, at the raise site
        self.details = details

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigError(EcertError):
    code = ErrorCode.CONFIG_INVALID


class DeploymentMissing(ConfigError):
    code = ErrorCode.DEPLOYMENT_MISSING


class CompilerError(EcertError):
    code = ErrorCode.COMPILER_FAILED


class IdentifierError(EcertError):
    code = ErrorCode.IDENTIFIER_INVALID


class CertificateError(EcertError):
    code = ErrorCode.CERT_INVALID


class TamperedError(CertificateError):
    code = ErrorCode.CERT_TAMPERED


class KeystoreError(EcertError):
    code = ErrorCode.KEYSTORE_ERROR


class ChainError(EcertError):
    code = ErrorCode.CHAIN_ERROR


class ChainUnavailable(ChainError):
    code = ErrorCode.CHAIN_UNAVAILABLE


class ContractRevert(ChainError):
    """A contract reverted; `name` and `args` are the decoded Solidity custom error."""

    code = ErrorCode.CONTRACT_REVERTED

    def __init__(self, name: str, args: dict[str, Any], message: str | None = None) -> None:
        super().__init__(message or f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})")
        self.name = name
        self.error_args = args


class NotAuthorised(EcertError):
    code = ErrorCode.NOT_AUTHORISED


class NotFound(EcertError):
    code = ErrorCode.NOT_FOUND


class Conflict(EcertError):
    code = ErrorCode.CONFLICT
