"""Links in QR codes: every code a phone scans is a link to a verifier node.

- A verification link `<node>/v#EC1:…` carries an offline payload in its fragment. Browsers
  never send a fragment, so the payload reaches no server log; the node's page at `/v` reads it
  in the browser, and `ecert verify` and the API read it with no network at all.
- A share link `<node>/s/<token>` (a dynamic share's with `?c=<code>`) names a disclosure that the
  node keeps (and the holder can withdraw).

In the fragment, the two Base45 characters a URL cannot carry as they are, space and `%`, are
percent-encoded (`%20`, `%25`); every other Base45 character stands for itself, so the link stays
in the QR code's alphanumeric mode. `read_scanned` takes either link or a bare `EC1:` payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from registry.certificate.presentation import EC1_PREFIX
from registry.error_codes import ErrorCode
from registry.errors import CertificateError

__all__ = [
    "SHARE_PATH",
    "VERIFY_PATH",
    "Scanned",
    "is_link",
    "read_scanned",
    "share_link_node",
    "verify_link",
]

VERIFY_PATH = "/v"
SHARE_PATH = "/s/"
_FRAGMENT_SAFE = "$*+-./:"  # Base45's punctuation but space and '%' (letters and digits are always safe)


@dataclass(frozen=True)
class Scanned:
    """What a QR code (or a pasted text) says: an offline payload, or a share link to open."""

    ec1: str | None = None
    share_url: str | None = None  # without any fragment


def verify_link(node_url: str, ec1: str) -> str:
    """`<node>/v#EC1:…`: the payload in the fragment, where it reaches no server."""
    if not ec1.startswith(EC1_PREFIX):
        raise ValueError("a verification link carries an EC1: payload")
    return f"{node_url.rstrip('/')}{VERIFY_PATH}#{quote(ec1, safe=_FRAGMENT_SAFE)}"


def is_link(text: str) -> bool:
    return text.strip()[:8].lower().startswith(("https://", "http://"))


def read_scanned(text: str) -> Scanned:
    """A bare `EC1:` payload, a link whose fragment is one (whatever its path), or a share link;
    any other link is `LINK_INVALID`, any other text `CERT_MALFORMED`."""
    text = text.strip()
    if text.startswith(EC1_PREFIX):
        return Scanned(ec1=text)
    if not is_link(text):
        raise CertificateError(
            "Neither an EC1: code nor a link of a verifier node", code=ErrorCode.CERT_MALFORMED
        )
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unbalanced '[' in the host
        raise CertificateError(f"Not a valid link: {exc}", code=ErrorCode.LINK_INVALID) from exc
    fragment = unquote(parts.fragment)  # broken UTF-8 turns into U+FFFD: then not a valid EC1 either
    if fragment.startswith(EC1_PREFIX):
        return Scanned(ec1=fragment)
    if SHARE_PATH in parts.path and parts.path.rsplit(SHARE_PATH, 1)[1].strip("/"):
        return Scanned(share_url=urlunsplit(parts._replace(fragment="")))
    raise CertificateError(
        f"Not a verification link (<node>{VERIFY_PATH}#EC1:…) nor a share link (<node>{SHARE_PATH}<token>)",
        code=ErrorCode.LINK_INVALID,
    )


def share_link_node(share_url: str) -> str:
    """The node of a share link: `https://node.example/s/abc?c=1` → `https://node.example`."""
    parts = urlsplit(share_url)
    if SHARE_PATH not in parts.path:
        raise CertificateError(f"Not a share link: {share_url}", code=ErrorCode.LINK_INVALID)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rsplit(SHARE_PATH, 1)[0], "", ""))
