"""What the node's routes answer, for the OpenAPI document: pydantic models used only to describe
(`responses={200: {"model": …}}`), never to validate an answer on its way out, so no route pays
for them. Field names are the JSON's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Verdict = Literal["VALID", "INVALID", "ERROR"]


class CheckOut(BaseModel):
    kind: str = Field(
        description="What was checked: integrity, seal, anchor, authority, status, validity, share, policy"
    )
    outcome: Literal["VALID", "INVALID", "ERROR", "SKIPPED"]
    code: str = Field(description="A stable code for the outcome (DIGEST_OK, CERT_REVOKED…)")
    message: str = Field(description="The outcome in words, for people")
    evidence: dict[str, Any] = Field(description="The facts the check read (block, status, key…)")


class Disclosed(BaseModel):
    """The values the holder disclosed, as verified, and the salt the receipt's digest covers them with."""

    salt: str = Field(description="128 random bits (base64url): keep it with the values to prove them")
    values: dict[str, Any] = Field(
        description="Each disclosed field by dotted path (`holder.name`, `number`, `ext.scope[0]`)"
    )


class ReceiptBody(BaseModel):
    requestDigest: str = Field(description="0x sha256 of the canonical holder package shown")
    verdict: Verdict
    reason: str | None = Field(description="The code of the first failed check, or null")
    checks: list[dict[str, str]] = Field(description="kind, outcome and code of every check")
    chainId: int | None
    block: int | None = Field(description="The block the chain facts were read at")
    source: Literal["chain", "index", "snapshot", "offline", "lastKnown"]
    checkedAt: str
    ageSeconds: int | None = Field(
        None, description="Only when source is lastKnown: how old the index's answer was (null: unknown)"
    )
    disclosedDigest: str | None = Field(
        None, description="0x sha256 of the RFC 8785 bytes of `disclosed` (absent on receipts of before)"
    )
    node: dict[str, str] = Field(description="region, and keyId of the key that signed")


class SignedReceipt(BaseModel):
    """Ed25519 over the RFC 8785 bytes of `receipt`, by the key at `GET /v1/receipt-key`."""

    receipt: ReceiptBody
    signature: str = Field(description="base64 of the 64-byte Ed25519 signature")


class LastKnownOut(BaseModel):
    """The chain could not be read: what the node's index last knew, and whether its policy accepted it."""

    verdict: Verdict = Field(description="The verdict the last-known facts give")
    block: int = Field(description="The last block the index had")
    ageSeconds: int | None = Field(
        description="Seconds since the index was last known current (null: unknown)"
    )
    accepted: bool = Field(
        description="The node's policy accepts last-known answers this old (acceptLastKnownUpToSeconds); "
        "if false the verdict is ERROR"
    )


class VerificationOut(BaseModel):
    """A decided verification (200: valid or invalid; 503 carries the same shape, verdict ERROR)."""

    verdict: Verdict
    reason: str | None
    checkedAt: str
    checks: list[CheckOut]
    source: str | None = Field(
        description="Where the chain facts came from: chain, index, snapshot, or lastKnown (the index, chain away)"
    )
    block: int | None
    lastKnown: LastKnownOut | None = Field(
        None, description="Present when the chain could not be read and the index answered what it last knew"
    )
    disclosed: Disclosed | None = Field(description="What was verified: the values, for your records")
    receipt: SignedReceipt | None = Field(description="The node's signed receipt: keep it with `disclosed`")
    receiptId: str | None = Field(
        description="The receipt's id: `GET /v1/receipts/{id}` (JSON) or `/v1/receipts/{id}.pdf` fetch it again"
    )


class ShareLinkOut(VerificationOut):
    share: dict[str, Any] = Field(description="The share's state: fields, expiry, single use…")


class ReceiptKeyOut(BaseModel):
    algorithm: Literal["Ed25519"]
    keyId: str = Field(description="First 16 hex digits of sha256 of the raw public key")
    publicKeyPem: str
    region: str


class ReceiptCheckIn(BaseModel):
    receipt: dict[str, Any]
    signature: str
    disclosed: dict[str, Any] | None = Field(
        None, description="The answer's `disclosed`: checked against the receipt's `disclosedDigest`"
    )


class ReceiptCheckOut(BaseModel):
    valid: bool = Field(
        description="Signed by this node's key, well formed, and (given `disclosed`) covering it"
    )
    coversDisclosed: bool | None = Field(
        None, description="Whether `disclosed` is what the receipt covers (only when `disclosed` was sent)"
    )


class KeptReceiptOut(SignedReceipt):
    id: str
    createdAt: str
    identifier: str | None = Field(description="The certificate's identifier")
    verdict: Verdict
    reason: str | None
    purpose: str
    channel: str = Field(description="api | qr | link | desk")
    staffId: int | None = Field(description="The front-desk clerk who verified, if one did")
    disclosed: Disclosed


class HistoryItem(BaseModel):
    receiptId: str
    at: str
    identifier: str | None
    verdict: Verdict
    reason: str | None
    purpose: str
    channel: str
    staffId: int | None


class HistoryOut(BaseModel):
    items: list[HistoryItem] = Field(description="Newest first")
    total: int = Field(description="How many match, over every page")
    limit: int
    offset: int


class StatusOut(BaseModel):
    root: str
    index: int
    at: str
    status: Literal["active", "suspended", "revoked"]
    reason: int | None = Field(description="The agency's reason code for a suspension or revocation")
    since: int | None = Field(description="Unix time the status took effect")
    indexedBlock: int


class HoldingOut(BaseModel):
    digest: str
    since: str


class ShareOut(BaseModel):
    id: str
    fields: list[str]
    purpose: str
    expiresAt: str
    singleUse: bool
    dynamic: bool
    used: bool
    withdrawn: bool
    expired: bool
    digest: str


class ShareCreatedOut(ShareOut):
    token: str = Field(description="Shown once: only its hash is kept")
    url: str = Field(description="The share link to give the verifier")


class DynamicCodeOut(BaseModel):
    code: str
    validUntil: str


class AccessEntryOut(BaseModel):
    at: str
    organisation: str
    region: str
    purpose: str
    digest: str
    identifier: str | None
    shareId: str | None
    fields: list[str]
    verdict: Verdict
    reason: str | None
    channel: str
    anonymous: bool
    claimedPurpose: str | None
    ipPrefix: str | None
    userAgent: str | None
    reportedBy: str | None


class RemoteStoredOut(BaseModel):
    eventId: str
    stored: bool


class SharedPresentationOut(BaseModel):
    """A holder package or disclosure (`docs/PROTOCOL.md` §4): fields with salts and a multiproof."""

    model_config = {"extra": "allow"}


class HealthOut(BaseModel):
    region: str
    status: Literal["ok", "unhealthy"]
    problems: list[str]
    indexedBlock: int
    headBlock: int | None
    lagBlocks: int | None
    indexer: str
