"""The one list of error codes every service answers with, each with its HTTP status and title.

A code is the stable `code` of an `EcertError` (`registry.errors`) and of the RFC 9457 problem
that `registry.problems` renders from it: the status and title of the problem come from here.
The list only grows: a code, once answered, keeps its value and status. A member's value is its
name, so it compares, hashes, formats and serialises as the plain string it always was.

    raise NotFound(f"No job {job_id}", code=ErrorCode.JOB_NOT_FOUND)

Check reasons in a verification report (`verifier.checks`: `SHARE_USED`, `CERT_SUSPENDED`…)
are not problems and live with their checks; a few codes are both (`CERT_TAMPERED`).
"""

from __future__ import annotations

import enum

__all__ = ["ErrorCode"]


class ErrorCode(enum.StrEnum):
    """`ErrorCode.JOB_NOT_FOUND` is `"JOB_NOT_FOUND"`, with `.status` 404 and `.title`."""

    status: int
    title: str  # type: ignore[assignment]  # shadows str.title(): a code is never title-cased

    def __new__(cls, value: str, status: int, title: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.title = title
        return member

    @classmethod
    def of(cls, text: object, default: ErrorCode) -> ErrorCode:
        """The member named `text` (a code another node answered, a stored code), else `default`."""
        return cls.__members__.get(text, default) if isinstance(text, str) else default

    # The request itself
    ECERT_ERROR = "ECERT_ERROR", 422, "The request was refused"
    REQUEST_INVALID = "REQUEST_INVALID", 422, "The request is invalid"
    JSON_INVALID = "JSON_INVALID", 400, "The body is not JSON"
    JSON_TOO_DEEP = "JSON_TOO_DEEP", 400, "The body is nested too deeply"
    TEXT_INVALID = "TEXT_INVALID", 400, "The request's text is not Unicode"
    MEDIA_TYPE_UNSUPPORTED = "MEDIA_TYPE_UNSUPPORTED", 415, "Unsupported media type"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED", 405, "Method not allowed"
    NOT_FOUND = "NOT_FOUND", 404, "Not found"
    CONFLICT = "CONFLICT", 409, "The request clashes with the current state"
    HTTP_ERROR = "HTTP_ERROR", 400, "HTTP error (its status is the HTTP error's)"
    RATE_LIMITED = "RATE_LIMITED", 429, "Too many requests"
    IDEMPOTENCY_KEY_INVALID = "IDEMPOTENCY_KEY_INVALID", 400, "The Idempotency-Key is invalid"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT", 409, "The Idempotency-Key was used for another request"
    INTERNAL = "INTERNAL", 500, "Internal error"

    # Uploads and input files
    UPLOAD_TOO_LARGE = "UPLOAD_TOO_LARGE", 413, "The upload is too large"
    UPLOAD_MALFORMED = "UPLOAD_MALFORMED", 400, "The multipart body is unreadable"
    UPLOAD_FORMAT = "UPLOAD_FORMAT", 422, "Unknown upload format"
    UPLOAD_ENCODING = "UPLOAD_ENCODING", 422, "The upload is not UTF-8"
    CSV_MALFORMED = "CSV_MALFORMED", 422, "The CSV file is malformed"
    RECORD_MALFORMED = "RECORD_MALFORMED", 422, "A record is malformed"
    INPUT_FORMAT = "INPUT_FORMAT", 422, "Unsupported input file"
    INPUT_NOT_FOUND = "INPUT_NOT_FOUND", 422, "No such input"

    # Authentication and authorisation
    AUTH_REQUIRED = "AUTH_REQUIRED", 401, "Authentication required"
    AUTH_INVALID = "AUTH_INVALID", 401, "Unknown or revoked credentials"
    NOT_AUTHORISED = "NOT_AUTHORISED", 403, "Not authorised"
    SCOPE_MISSING = "SCOPE_MISSING", 403, "The API key lacks the scope"
    SCOPE_INVALID = "SCOPE_INVALID", 422, "Unknown scope"
    AGENCY_FORBIDDEN = "AGENCY_FORBIDDEN", 403, "Another agency's resource"
    API_KEY_NOT_FOUND = "API_KEY_NOT_FOUND", 422, "No such API key"
    NODE_UNTRUSTED = "NODE_UNTRUSTED", 403, "Not a trusted verifier node"
    LOGIN_REQUIRED = "LOGIN_REQUIRED", 401, "Sign in first"
    LOGIN_FAILED = "LOGIN_FAILED", 401, "Wrong ID number or password"
    CSRF_INVALID = "CSRF_INVALID", 403, "The form's CSRF token is invalid"
    STAFF_LOGIN_FAILED = "STAFF_LOGIN_FAILED", 401, "Wrong username, password or one-time code"
    STAFF_EXISTS = "STAFF_EXISTS", 409, "A staff member with this username exists"
    STAFF_NOT_FOUND = "STAFF_NOT_FOUND", 404, "No such staff member"
    USERNAME_INVALID = "USERNAME_INVALID", 422, "Invalid username"
    STAFF_ROLE_INVALID = "STAFF_ROLE_INVALID", 422, "Unknown staff role"
    STAFF_ROLE_FORBIDDEN = "STAFF_ROLE_FORBIDDEN", 403, "The staff member's role may not do this"

    # Configuration, keys and the operator's files (5xx hide their detail: the log has it)
    CONFIG_INVALID = "CONFIG_INVALID", 500, "The service is misconfigured"
    DEPLOYMENT_MISSING = "DEPLOYMENT_MISSING", 500, "No contract deployment for the chain"
    COMPILER_FAILED = "COMPILER_FAILED", 422, "The contracts did not compile"
    ZBAR_MISSING = "ZBAR_MISSING", 500, "The QR decoder library is missing"
    FONT_MISSING = "FONT_MISSING", 500, "A font the printout needs is missing"
    POLICY_INVALID = "POLICY_INVALID", 500, "A verification policy is invalid"
    DATA_KEY_MISSING = "DATA_KEY_MISSING", 500, "No data key"
    DATA_KEY_INVALID = "DATA_KEY_INVALID", 500, "The data key is invalid"
    DATA_KEY_MISMATCH = "DATA_KEY_MISMATCH", 422, "Stored data does not decrypt with the data key"
    KEYSTORE_ERROR = "KEYSTORE_ERROR", 500, "Keystore error"
    KEYSTORE_PASSWORD_MISSING = "KEYSTORE_PASSWORD_MISSING", 500, "No keystore password"
    KEY_EXISTS = "KEY_EXISTS", 500, "The key already exists"
    KEY_NOT_FOUND = "KEY_NOT_FOUND", 500, "No such key"
    KEY_DECRYPT_FAILED = "KEY_DECRYPT_FAILED", 500, "The key does not decrypt"
    RECEIPT_KEY_EXPOSED = "RECEIPT_KEY_EXPOSED", 500, "The receipt key file is readable by others"
    RECEIPT_KEY_INVALID = "RECEIPT_KEY_INVALID", 500, "The receipt key is invalid"
    TIME_INVALID = "TIME_INVALID", 422, "Invalid time"
    STATUS_INVALID = "STATUS_INVALID", 422, "Unknown certificate status"

    # Identifiers (GB 11643 ID numbers, GB 32100 USCCs, licence identifiers)
    IDENTIFIER_INVALID = "IDENTIFIER_INVALID", 422, "Invalid identifier"
    ID_FORMAT = "ID_FORMAT", 422, "The identifier is malformed"
    ID_CHECK_CHAR = "ID_CHECK_CHAR", 422, "The identifier's check character is wrong"
    ID_REGION = "ID_REGION", 422, "The identifier's region is unknown"
    ID_DATE = "ID_DATE", 422, "The identifier's date is impossible"

    # Certificates, packages, fields and QR codes
    CERT_INVALID = "CERT_INVALID", 422, "Invalid certificate"
    CERT_MALFORMED = "CERT_MALFORMED", 400, "Malformed certificate package"
    CERT_FORMAT = "CERT_FORMAT", 422, "Unknown package format"
    CERT_PARTIAL = "CERT_PARTIAL", 422, "A disclosure, not a full package"
    CERT_TAMPERED = "CERT_TAMPERED", 422, "The certificate was tampered with"
    SEAL_INVALID = "SEAL_INVALID", 422, "Invalid seal"
    FIELD_INVALID = "FIELD_INVALID", 422, "Invalid field"
    FIELD_MISSING = "FIELD_MISSING", 422, "Missing field"
    FIELD_UNKNOWN = "FIELD_UNKNOWN", 422, "Unknown field"
    FIELDS_EMPTY = "FIELDS_EMPTY", 422, "No field chosen"
    TYPE_CODE_INVALID = "TYPE_CODE_INVALID", 422, "Invalid certificate type code"
    TYPE_NOT_GRANTED = "TYPE_NOT_GRANTED", 422, "The agency may not issue this type"
    AGENCY_UNKNOWN = "AGENCY_UNKNOWN", 404, "The agency is not served here"
    QR_UNREADABLE = "QR_UNREADABLE", 400, "No readable QR code"
    QR_TOO_LARGE = "QR_TOO_LARGE", 422, "Too much for one QR code"
    LINK_INVALID = "LINK_INVALID", 422, "Not a verification or share link"

    # Issuing: certificates, batches, jobs, status changes
    CERT_NOT_FOUND = "CERT_NOT_FOUND", 404, "No such certificate"
    CERT_NOT_READY = "CERT_NOT_READY", 409, "The certificate is not sealed yet"
    CERT_NOT_ANCHORED = "CERT_NOT_ANCHORED", 409, "The certificate is not anchored yet"
    CERT_REVOKED = "CERT_REVOKED", 409, "The certificate is revoked"
    CERT_SUPERSEDED = "CERT_SUPERSEDED", 409, "The certificate was superseded"
    REASON_INVALID = "REASON_INVALID", 422, "Invalid reason"
    PROPOSAL_NOT_FOUND = "PROPOSAL_NOT_FOUND", 404, "No such status change proposal"
    PROPOSAL_NOT_PENDING = "PROPOSAL_NOT_PENDING", 409, "The proposal was decided already"
    PROPOSAL_OWN = "PROPOSAL_OWN", 403, "A proposal is approved by someone other than its proposer"
    PROPOSAL_ACTION_INVALID = "PROPOSAL_ACTION_INVALID", 422, "Unknown status change"
    PROPOSAL_EMPTY = "PROPOSAL_EMPTY", 422, "No certificate to change"
    PROPOSAL_TOO_LARGE = "PROPOSAL_TOO_LARGE", 413, "Too many certificates in one proposal"
    PROPOSAL_INVALID_ROWS = "PROPOSAL_INVALID_ROWS", 422, "Some rows of the proposal are invalid"
    CERT_CHANGE_PENDING = "CERT_CHANGE_PENDING", 409, "Another change of the certificate is pending"
    STATUS_TRANSITION_INVALID = "STATUS_TRANSITION_INVALID", 409, "The status does not allow this change"
    BATCH_EMPTY = "BATCH_EMPTY", 422, "No records to issue"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE", 413, "Too many records"
    BATCH_CORRUPT = "BATCH_CORRUPT", 500, "The batch does not rebuild to its root"
    JOB_NOT_FOUND = "JOB_NOT_FOUND", 404, "No such job"
    ANCHOR_TIMEOUT = "ANCHOR_TIMEOUT", 502, "Anchoring timed out"

    # The issuer's staff audit log (hash-chained, its head anchored on chain)
    AUDIT_ACTION_INVALID = "AUDIT_ACTION_INVALID", 422, "Unknown audit action"
    AUDIT_ENTRY_INVALID = "AUDIT_ENTRY_INVALID", 422, "The audit entry is invalid"
    UNMASK_REASON_REQUIRED = "UNMASK_REASON_REQUIRED", 422, "Unmasking personal data needs a reason"

    # Claim codes (a holder takes a certificate into a wallet)
    CLAIM_INVALID = "CLAIM_INVALID", 404, "Unknown or used claim code"
    CLAIM_EXPIRED = "CLAIM_EXPIRED", 410, "The claim code has expired"
    CLAIM_NOT_YOURS = "CLAIM_NOT_YOURS", 403, "The certificate belongs to someone else"
    CLAIM_CODE_MALFORMED = "CLAIM_CODE_MALFORMED", 422, "Malformed claim code"
    CLAIM_PACKAGE_INVALID = "CLAIM_PACKAGE_INVALID", 422, "The issuer sent an unreadable package"

    # Correction requests (a holder flags a wrong field or asks for renewal; the agency answers)
    CORRECTION_NOT_FOUND = "CORRECTION_NOT_FOUND", 404, "No such correction request"
    CORRECTION_NOT_YOURS = "CORRECTION_NOT_YOURS", 403, "The certificate belongs to someone else"
    CORRECTION_ALREADY_OPEN = "CORRECTION_ALREADY_OPEN", 409, "A request about this is already open"
    CORRECTION_ANSWERED = "CORRECTION_ANSWERED", 409, "The correction request was answered already"
    CORRECTION_REASON_REQUIRED = "CORRECTION_REASON_REQUIRED", 422, "A refusal needs a reason"

    # The chain and its index
    CHAIN_ERROR = "CHAIN_ERROR", 502, "The chain node answered with an error"
    CHAIN_UNAVAILABLE = "CHAIN_UNAVAILABLE", 503, "The chain node cannot be reached"
    CONTRACT_REVERTED = "CONTRACT_REVERTED", 409, "The contract refused"
    TX_NOT_MINED = "TX_NOT_MINED", 502, "The transaction was not mined"
    TX_FAILED = "TX_FAILED", 502, "The transaction failed"
    INDEX_REQUIRED = "INDEX_REQUIRED", 502, "Needs the chain index"
    INDEX_ERROR = "INDEX_ERROR", 422, "Chain index error"
    INDEX_STALE = "INDEX_STALE", 503, "The chain index lags behind"
    INDEX_MISMATCH = "INDEX_MISMATCH", 422, "The chain index belongs to another chain"
    INDEX_INCONSISTENT = "INDEX_INCONSISTENT", 422, "The chain index is inconsistent"
    INDEX_EMPTY = "INDEX_EMPTY", 422, "The chain index is empty"
    CERT_INDEX_OUT_OF_RANGE = "CERT_INDEX_OUT_OF_RANGE", 422, "No such certificate in the batch"
    NOT_ANCHORED = "NOT_ANCHORED", 422, "No such anchored batch"

    # Offline verification: trust snapshots
    SNAPSHOT_INVALID = "SNAPSHOT_INVALID", 422, "Invalid trust snapshot"
    SNAPSHOT_MISSING = "SNAPSHOT_MISSING", 422, "No trust snapshot given"
    SNAPSHOT_NO_HISTORY = "SNAPSHOT_NO_HISTORY", 502, "The snapshot has no history for that time"
    SNAPSHOT_OUT_OF_SCOPE = "SNAPSHOT_OUT_OF_SCOPE", 502, "The snapshot does not cover that region"
    INDEX_OUT_OF_SCOPE = "INDEX_OUT_OF_SCOPE", 502, "This node's index does not cover that region"
    SNAPSHOT_DELTA_UNCHAINED = "SNAPSHOT_DELTA_UNCHAINED", 422, "The delta does not follow the snapshot held"
    TRUST_KEY_INVALID = "TRUST_KEY_INVALID", 422, "Invalid trusted key"
    TRUST_KEY_MISSING = "TRUST_KEY_MISSING", 422, "No trusted key given"

    # The verifier node: organisations, shares, other nodes
    ORG_NOT_FOUND = "ORG_NOT_FOUND", 404, "No such organisation"
    ORG_KEY_NOT_FOUND = "ORG_KEY_NOT_FOUND", 404, "No such API key"
    ORG_KIND_INVALID = "ORG_KIND_INVALID", 422, "Unknown organisation kind"
    ORG_REVOKE_TARGET = "ORG_REVOKE_TARGET", 422, "Name one organisation or key to revoke"
    SHARE_NOT_FOUND = "SHARE_NOT_FOUND", 404, "No such share"
    SHARE_NOT_DYNAMIC = "SHARE_NOT_DYNAMIC", 404, "Not an active dynamic share"
    SHARE_CODE_EXPIRED = "SHARE_CODE_EXPIRED", 404, "The dynamic QR code has expired"
    SHARE_WITHDRAWN = "SHARE_WITHDRAWN", 404, "The share was withdrawn"
    SHARE_EXPIRED = "SHARE_EXPIRED", 404, "The share has expired"
    SHARE_USED = "SHARE_USED", 404, "The single-use share was used"
    SHARE_LIFETIME_INVALID = "SHARE_LIFETIME_INVALID", 422, "Invalid share lifetime"
    SHARE_URL_INVALID = "SHARE_URL_INVALID", 422, "Not a share link"
    SHARE_IDENTIFIED_ONLY = (
        "SHARE_IDENTIFIED_ONLY",
        401,
        "Only identified organisations may open this share: sign in or use an API key",
    )
    ACCESS_LOG_NOT_FOUND = "ACCESS_LOG_NOT_FOUND", 404, "No access log of this holder's at this wallet"
    ACCESS_EVENT_MISMATCH = (
        "ACCESS_EVENT_MISMATCH",
        409,
        "The reported access is of another certificate than the share",
    )
    NODE_UNAVAILABLE = "NODE_UNAVAILABLE", 503, "The other verifier node cannot be reached"
    RECEIPT_NOT_FOUND = "RECEIPT_NOT_FOUND", 404, "No such receipt of your organisation"
    SUBSCRIPTION_NOT_FOUND = "SUBSCRIPTION_NOT_FOUND", 404, "No such subscription"
    SUBSCRIPTION_UNVERIFIED = (
        "SUBSCRIPTION_UNVERIFIED",
        403,
        "This organisation never verified the certificate here",
    )
    WEBHOOK_URL_INVALID = "WEBHOOK_URL_INVALID", 422, "The webhook URL is not allowed"
    NOTIFICATION_NOT_FOUND = "NOTIFICATION_NOT_FOUND", 404, "No such dead letter"
    CURSOR_INVALID = "CURSOR_INVALID", 422, "Invalid cursor"

    # The wallet: holders, passwords, its neighbours (issuer, verifier)
    HOLDER_EXISTS = "HOLDER_EXISTS", 409, "The holder already has a wallet"
    HOLDER_NOT_FOUND = "HOLDER_NOT_FOUND", 404, "No such holder"
    NAME_INVALID = "NAME_INVALID", 422, "Invalid name"
    PASSWORD_WEAK = "PASSWORD_WEAK", 422, "The password is too weak"
    PASSWORD_TOO_SHORT = "PASSWORD_TOO_SHORT", 422, "The password is too short"
    PASSWORD_TOO_LONG = "PASSWORD_TOO_LONG", 422, "The password is too long"
    PASSWORD_COMMON = "PASSWORD_COMMON", 422, "The password is too common"
    PASSWORD_MISMATCH = "PASSWORD_MISMATCH", 422, "The two passwords differ"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE", 503, "A service the wallet needs cannot be reached"
    ISSUER_UNAVAILABLE = "ISSUER_UNAVAILABLE", 503, "The issuer cannot be reached"
    VERIFIER_UNAVAILABLE = "VERIFIER_UNAVAILABLE", 503, "The verifier node cannot be reached"
    VERIFIER_NOT_CONFIGURED = "VERIFIER_NOT_CONFIGURED", 503, "The wallet has no verifier API key"
    SERVICE_REFUSED = "SERVICE_REFUSED", 502, "A service the wallet needs refused"
    REQUEST_REFUSED = "REQUEST_REFUSED", 502, "The issuer or verifier refused the request"
    CERT_NOT_SHAREABLE = "CERT_NOT_SHAREABLE", 409, "A suspended or revoked certificate cannot be shared"
