"""The wallet's two neighbours, over HTTP: the issuer (claim codes) and the verifier node of the
holders' region (status, shares, dynamic codes, the access log).

Errors are translated at this boundary:

    EcertError
    ├── ServiceUnavailable   ISSUER_UNAVAILABLE / VERIFIER_UNAVAILABLE   down, slow or not set up
    └── ServiceRefused       the neighbour's own problem code (CLAIM_INVALID, SHARE_NOT_FOUND…)

so a page can always say what happened; nothing here ends in a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.problems import RateLimited

HOLDER_VIEW_PURPOSE = "持证人查看 / holder view"
ACCESS_LOG_NEXT = "X-Next-Before"  # the verifier's cursor of the next, older page of an access log


class ServiceUnavailable(EcertError):
    code = ErrorCode.SERVICE_UNAVAILABLE


class ServiceRefused(EcertError):
    code = ErrorCode.SERVICE_REFUSED

    def __init__(
        self, message: str, *, code: ErrorCode, status: int, problem: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        # The neighbour's whole problem body (e.g. the id of a request already open).
        self.problem = problem or {}


class _Client:
    unavailable_code = ErrorCode.SERVICE_UNAVAILABLE

    def __init__(self, base_url: str, *, timeout_s: float, headers: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers or {}, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201),
        refusals: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """`refusals`: statuses that, for this call, are the neighbour refusing the holder's request
        (a problem to show) rather than a fault of our credentials or its health."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"{self._http.base_url} cannot be reached ({exc.__class__.__name__})",
                                     code=self.unavailable_code) from exc  # fmt: skip
        if response.status_code in ok:
            return response
        if response.status_code == 429:  # the neighbour asks us to wait: the holder is told how long
            retry = response.headers.get("Retry-After", "60")
            raise RateLimited(
                "Too many attempts: wait a little and try again",
                retryAfter=int(retry) if retry.isdigit() else 60,
            )
        if response.status_code not in refusals and (
            response.status_code >= 500 or response.status_code in (401, 403, 429)
        ):
            # Our own credentials or the neighbour's health: nothing the holder can fix.
            raise ServiceUnavailable(
                f"{self._http.base_url} answered {response.status_code}", code=self.unavailable_code
            )
        problem: dict[str, Any] = {}
        try:
            body = response.json()
            problem = body if isinstance(body, dict) else {}
            code = ErrorCode.of(
                problem.get("code"), ErrorCode.REQUEST_REFUSED
            )  # a code we do not know: refused
            detail = str(problem.get("detail") or "")
        except ValueError:
            code, detail = ErrorCode.REQUEST_REFUSED, response.text[:200]
        raise ServiceRefused(detail or code, code=code, status=response.status_code, problem=problem)


def _object(response: httpx.Response) -> dict[str, Any]:
    """The JSON object a neighbour answered (its shape is that neighbour's API's)."""
    body: dict[str, Any] = response.json()
    return body


def _objects(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON list of objects a neighbour answered."""
    body: list[dict[str, Any]] = response.json()
    return body


class IssuerClient(_Client):
    unavailable_code = ErrorCode.ISSUER_UNAVAILABLE

    def redeem_claim(self, code: str, holder_code: str) -> dict[str, Any]:
        """The holder package for a one-time claim code, if it is `holder_code`'s: only then is the
        code used up (another holder's certificate answers 403 CLAIM_NOT_YOURS)."""
        return _object(
            self._send("POST", "/v1/claims", json={"code": code, "holderCode": holder_code}, refusals=(403,))
        )

    def request_correction(self, package: dict[str, Any], holder_code: str, kind: str, field: str | None,
                           message: str, idempotency_key: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Flag a wrong field (`kind` "field") or ask for renewal ("renewal") of the certificate of
        this full holder package: possession of every salt is the holder's proof. 201 a new request
        (its `token` is shown once), 200 the first one again for a retried `idempotency_key`; a
        403 (not the holder's) or 409 (superseded, one already open) is the holder's to read."""
        body: dict[str, Any] = {
            "package": package,
            "holderCode": holder_code,
            "kind": kind,
            "message": message,
        }
        if field is not None:
            body["field"] = field
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _object(self._send("POST", "/v1/corrections", json=body, headers=headers, refusals=(403,)))

    def correction(self, request_id: str, token: str, *, timeout_s: float | None = None) -> dict[str, Any]:
        """A correction request as the agency left it (status, answer, the renewed package once
        issued); an unknown id or a wrong token are the same 404. `timeout_s` shortens the wait
        when a page refreshes several requests at once."""
        kwargs: dict[str, Any] = {"headers": {"X-Correction-Token": token}}
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s
        return _object(self._send("GET", f"/v1/corrections/{quote(request_id, safe='')}", **kwargs))


class VerifierClient(_Client):
    unavailable_code = ErrorCode.VERIFIER_UNAVAILABLE

    def __init__(self, base_url: str, api_key: str | None, **kwargs: Any) -> None:
        super().__init__(
            base_url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {}, **kwargs
        )
        self.configured = bool(api_key)

    def _wallet(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.configured:
            raise ServiceUnavailable(
                "No verifier API key: set ECERT_WALLET_VERIFIER_KEY", code=ErrorCode.VERIFIER_NOT_CONFIGURED
            )
        return self._send(method, path, **kwargs)

    def verify(self, presentation: dict[str, Any], purpose: str = HOLDER_VIEW_PURPOSE) -> dict[str, Any]:
        """The report (verdict, reason, checks); a 503 "could not verify" is a report too (verdict ERROR)."""
        return _object(
            self._wallet(
                "POST", "/v1/verifications", json={"package": presentation, "purpose": purpose}, ok=(200, 503)
            )
        )

    def create_share(self, holder_ref: str, presentation: dict[str, Any], *, purpose: str, minutes: int,
                     single_use: bool, dynamic: bool, identified_only: bool = False) -> dict[str, Any]:  # fmt: skip
        body = {"holderRef": holder_ref, "presentation": presentation, "purpose": purpose, "expiresInMinutes": minutes,
                "singleUse": single_use, "dynamic": dynamic, "identifiedOnly": identified_only}  # fmt: skip
        return _object(self._wallet("POST", "/v1/shares", json=body))

    def list_shares(self, holder_ref: str) -> list[dict[str, Any]]:
        return _objects(self._wallet("GET", "/v1/shares", params={"holderRef": holder_ref}))

    def withdraw_share(self, holder_ref: str, share_id: str) -> dict[str, Any]:
        return _object(self._wallet("DELETE", f"/v1/shares/{share_id}", params={"holderRef": holder_ref}))

    def dynamic_code(self, holder_ref: str, share_id: str) -> dict[str, Any]:
        return _object(
            self._wallet("GET", f"/v1/shares/{share_id}/dynamic-code", params={"holderRef": holder_ref})
        )

    def hold(self, holder_ref: str, package: dict[str, Any]) -> dict[str, Any]:
        """Tell the node this wallet keeps the certificate of this full holder package for the
        holder: only then may it read that certificate's access log for them (idempotent)."""
        return _object(
            self._wallet("POST", "/v1/holdings", json={"holderRef": holder_ref, "presentation": package})
        )

    def holdings(self, holder_ref: str) -> list[str]:
        """The digests the node knows this wallet keeps for the holder."""
        return [
            h["digest"] for h in self._wallet("GET", "/v1/holdings", params={"holderRef": holder_ref}).json()
        ]

    def access_log(self, holder_ref: str) -> list[dict[str, Any]]:
        """The verifications of the certificates held for the holder and of their shares, newest
        first (the newest page)."""
        return self.access_log_page(holder_ref)[0]

    def access_log_page(
        self, holder_ref: str, *, before: str | None = None, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of those verifications, newest first, older than the cursor `before` (None: the
        newest page), and the cursor of the next, older page (None: this is the oldest)."""
        params: dict[str, Any] = {"holderRef": holder_ref}
        if before is not None:
            params["before"] = before
        if limit is not None:
            params["limit"] = limit
        response = self._wallet("GET", "/v1/access-log", params=params)
        return _objects(response), response.headers.get(ACCESS_LOG_NEXT) or None
