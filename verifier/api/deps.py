"""Typed dependencies: the runtime, and the calling organisation from its API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from registry.error_codes import ErrorCode
from registry.errors import NotAuthorised
from verifier.orgs import Caller
from verifier.runtime import VerifierRuntime


async def runtime(request: Request) -> VerifierRuntime:
    rt: VerifierRuntime = request.app.state.runtime
    return rt


Runtime = Annotated[VerifierRuntime, Depends(runtime)]


def token(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key from `Authorization: Bearer …` or `X-API-Key`."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key


async def caller(  # async: no thread hop for an in-memory lookup on the hot path
    rt: Runtime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    return rt.organisations.authenticate(token(authorization, x_api_key))


async def optional_caller(
    rt: Runtime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller | None:
    key = token(authorization, x_api_key)
    return rt.organisations.authenticate(key) if key else None


async def wallet(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if who.kind != "wallet":
        raise NotAuthorised("Only a wallet service may manage shares", code=ErrorCode.SCOPE_MISSING)
    return who


async def node(who: Annotated[Caller, Depends(caller)]) -> Caller:
    # Nodes only: a node logs the verification it fetches a disclosure for and reports it to the
    # share's node (`verifier.outbox`); a wallet key would read (and use up) any share whose
    # token it had, unlogged, and the wallet service never fetches a disclosure
    if who.kind != "node":
        raise NotAuthorised(
            "Only a trusted verifier node may fetch shared presentations", code=ErrorCode.SCOPE_MISSING
        )
    return who


async def trusted_node(who: Annotated[Caller, Depends(caller)]) -> Caller:
    """A verifier node of another region this node trusts: one it gave a key of kind `node`."""
    if who.kind != "node":
        raise NotAuthorised("Only a trusted verifier node may report accesses", code=ErrorCode.SCOPE_MISSING)
    return who


async def subscriber(who: Annotated[Caller, Depends(caller)]) -> Caller:
    """A bank or an agency: the organisations that verify certificates and may re-check them."""
    if who.kind not in ("bank", "agency"):
        raise NotAuthorised(
            "Only a bank or an agency may subscribe to certificates", code=ErrorCode.SCOPE_MISSING
        )
    return who


CallerDep = Annotated[Caller, Depends(caller)]
SubscriberDep = Annotated[Caller, Depends(subscriber)]
OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]
WalletDep = Annotated[Caller, Depends(wallet)]
NodeDep = Annotated[Caller, Depends(node)]
TrustedNodeDep = Annotated[Caller, Depends(trusted_node)]
