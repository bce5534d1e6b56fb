"""The access log (谁访问、谁负责): every verification, written behind the request in bulk so
logging costs the hot path a queue append, and read by holders through their wallet.

A node with several worker processes writes its log from one place: each worker's
`ForwardedAccessLog` sends its entries, in batches over a UNIX socket, to the node's own process
(`AccessLogServer`), whose `AccessLog` alone writes them. Writing the database in the workers
held their GIL for milliseconds at a time, which stalled every request in flight (the p99
latency doubled) and cost a tenth of their CPU. In that node process, which answers no
request itself, the log's threads (the socket server, its connections, the writer) run at a
lower CPU priority (`BACKGROUND_NICE`): under load they wait for the cores, not the workers. A
process that serves requests keeps its log threads at full priority: one preempted while it
holds the GIL would stall the event loop behind it.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import queue
import socket
import socketserver
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker

from registry.crypto import DataCipher
from registry.database import as_utc, core_table
from registry.error_codes import ErrorCode
from registry.errors import EcertError
from verifier.db import insert_new
from verifier.models import AccessEntry, AccessOutbox, StoredReceiptRow
from verifier.outbox import outbox_rows

log = logging.getLogger(__name__)
ANONYMOUS = "公开链接访问者 / link visitor"  # who opened a share link without an API key
BACKGROUND_NICE = 10  # a thread at nice 10 gets a tenth of a core a busy worker would get


def lower_thread_priority(tid: int | None = None, nice: int = BACKGROUND_NICE) -> None:
    """Raise a thread's nice value (default: the calling thread's) to at least `nice`; threads it
    starts later inherit it.

    Linux only: elsewhere `setpriority` would renice the whole process. On the 2-core bench
    machine at 2,500 verifications/s, logging at nice 10 cut the p99 latency by about 3 ms.
    """
    if sys.platform != "linux":
        return
    tid = threading.get_native_id() if tid is None else tid
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError as exc:  # e.g. a sandbox that forbids it: the log still works, at full priority
        log.debug("could not lower the access log's priority: %s", exc)


@dataclass(frozen=True)
class StoredReceipt:
    """The signed receipt of an organisation's verification, kept under its id for that
    organisation (`verifier.receipt_store`): written with its access-log entry, in the same batch."""

    id: str  # `receipts.receipt_id(document)`
    organisation_id: int
    staff_id: int | None  # the front-desk person who verified, if one did
    document: dict[str, Any]  # {"receipt": …, "signature": …}: no personal data
    disclosed: dict[str, Any]  # the values it covers (`receipts.disclosed_values`): encrypted at rest


@dataclass(frozen=True)
class Access:
    at: dt.datetime
    organisation: str
    organisation_region: str
    purpose: str
    digest: str
    identifier: str | None
    share_id: str | None
    fields: list[str]
    verdict: str
    reason: str | None
    channel: str
    claimed_purpose: str | None = None  # what an anonymous visitor typed: their word, vouched for by no one
    ip_prefix: str | None = (
        None  # an anonymous visitor's network (IPv4 /24, IPv6 /48), never the full address
    )
    user_agent: str | None = None  # an anonymous visitor's browser, as it named itself
    # A share fetched from another region's node: the entry is owed to that node too (`verifier.outbox`)
    event_id: str | None = None  # the entry's id there, unique: a resent entry is stored once
    origin: str | None = None  # that node's base URL
    share_token_hash: str | None = None  # the share as that node knows it: its token's SHA-256
    staff: str | None = (
        None  # the signed-in front-desk clerk of `organisation` who verified (`verifier.staff`)
    )
    receipt: StoredReceipt | None = None  # an organisation's verification: its receipt, kept by id
    # The certificate's place on chain (its batch root, 0x hex, and index): what a re-check
    # subscription (`verifier.subscriptions`) follows. None: the verification never read a package
    batch_root: str | None = None
    batch_index: int | None = None


class AccessRecorder:
    """Entries queued by `record` and written in batches by a background thread every `flush_s`;
    a batch that fails stays for the next try. Subclasses say how a batch is written."""

    def __init__(self, sessions: sessionmaker[Session], *, flush_s: float = 0.1) -> None:
        self._sessions = sessions
        self._queue: queue.SimpleQueue[Access] = queue.SimpleQueue()
        self._flush_s = flush_s
        self._pending: list[Access] = []
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def record(self, access: Access) -> None:
        self._queue.put(access)

    def flush(self) -> None:
        """Write what is queued; if the write fails the entries stay for the next flush."""
        with self._flushing:
            self._pending += self._drain()
            if self._pending:
                self._write(self._pending)
                self._pending = []

    def entries(
        self, *, digests: Iterable[str] = (), share_ids: Iterable[str] = (), limit: int = 200
    ) -> list[dict[str, Any]]:
        """Newest first: the verifications of these certificate digests or shares, this process's included."""
        self._make_readable()
        return read_entries(self._sessions, digests=digests, share_ids=share_ids, limit=limit)

    def page(
        self,
        *,
        digests: Iterable[str] = (),
        share_ids: Iterable[str] = (),
        limit: int = 200,
        before: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """`read_page`, this process's entries included: a page, newest first, and the next cursor."""
        if before is not None:
            decode_cursor(before)  # a bad cursor is refused before the log is synced
        self._make_readable()
        return read_page(self._sessions, digests=digests, share_ids=share_ids, limit=limit, before=before)

    def sync(self) -> None:
        """Everything recorded so far in the database (stored receipts, history), this process's included."""
        self._make_readable()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _write(self, batch: list[Access]) -> None:
        raise NotImplementedError

    def _make_readable(self) -> None:
        """Everything recorded so far in the database."""
        self.flush()

    def _drain(self) -> list[Access]:
        items: list[Access] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def lower_priority(self) -> None:
        """Write at background priority (only where no request is served: see the module's doc)."""
        lower_thread_priority(self._thread.native_id)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_s):
            try:
                self.flush()
            except Exception:  # never lose the thread; the entries are kept and retried
                log.exception("access log flush failed: %d entries kept for the next try", len(self._pending))
        try:
            self.flush()
        except Exception:
            log.exception(
                "access log: the last flush failed; %d entries are lost",
                len(self._pending) + self._queue.qsize(),
            )


class AccessLog(AccessRecorder):
    """The writer: batches go into the `access_log` table, and the entries owed to another
    region's node into `access_outbox` in the same transaction; `on_outbox` is called after."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        flush_s: float = 0.1,
        on_outbox: Callable[[], None] | None = None,
        cipher: DataCipher | None = None,
    ) -> None:
        self._on_outbox = on_outbox
        self._cipher = cipher  # encrypts the values a stored receipt covers; None: receipts not stored
        super().__init__(sessions, flush_s=flush_s)

    def _write(self, batch: list[Access]) -> None:
        """The batch in one transaction; if the database refuses it for its data (a value no
        column holds), each entry alone, and an entry refused alone is set aside (logged without
        its content): one hostile entry never holds back the node's whole log."""
        try:
            self._write_together(batch)
        except DataError:
            if len(batch) == 1:
                log.error("access log: an entry the database refuses for its data is set aside (channel %s)",
                          batch[0].channel)  # fmt: skip
                return
            for access in batch:
                self._write([access])

    def _write_together(self, batch: list[Access]) -> None:
        with self._sessions.begin() as session:
            session.execute(core_table(AccessEntry).insert(), [_row(a) for a in batch])
            dialect = session.get_bind().dialect.name
            owed = outbox_rows(batch, dt.datetime.now(dt.UTC))
            if owed:  # a batch a worker sent twice: its entries are owed once
                session.execute(insert_new(AccessOutbox, dialect, ["event_id"]), owed)
            receipts = (
                [_receipt_row(a, self._cipher) for a in batch if a.receipt is not None]
                if self._cipher
                else []
            )
            if receipts:  # likewise stored once
                session.execute(insert_new(StoredReceiptRow, dialect, ["id"]), receipts)
        if owed and self._on_outbox is not None:
            self._on_outbox()


_SYNC = b'{"sync":true}\n'
_ACCESS_FIELDS = tuple(f.name for f in fields(Access))


class ForwardedAccessLog(AccessRecorder):
    """A worker's log: batches go to the node's `AccessLogServer` at `socket_path` (JSON lines).

    A batch that cannot be sent (the node process not listening yet) is kept and sent again;
    `entries` first asks the server to write what it has, so a holder sees their own
    verification at once.
    """

    def __init__(
        self,
        socket_path: Path | str,
        sessions: sessionmaker[Session],
        *,
        flush_s: float = 0.1,
        timeout_s: float = 10.0,
    ) -> None:
        self._path = str(socket_path)
        self._timeout_s = timeout_s
        self._socket: socket.socket | None = None
        super().__init__(sessions, flush_s=flush_s)

    def _make_readable(self) -> None:
        """Send what is queued, then have the node process write everything it holds."""
        self.flush()
        with self._flushing:
            self._send(_SYNC)
            reply = self._reply()
            if reply != b"ok\n":
                self._disconnect()
                raise OSError(f"the node's access log did not write its entries (answered {reply!r})")

    def close(self) -> None:
        super().close()
        if self._flushing.acquire(timeout=self._timeout_s):  # not while a stuck send still holds the socket
            try:
                self._disconnect()
            finally:
                self._flushing.release()

    def _write(self, batch: list[Access]) -> None:
        self._send(b"".join(orjson.dumps(a) + b"\n" for a in batch))

    def _reply(self) -> bytes:
        """The server's one-line answer to a sync (in order on this connection: nothing else is answered)."""
        reply = b""
        try:
            while not reply.endswith(b"\n"):
                chunk = self._connected().recv(64)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            self._disconnect()
            raise
        return reply

    def _send(self, data: bytes) -> None:
        try:
            self._connected().sendall(data)
        except OSError:
            self._disconnect()  # a batch cut short may arrive twice on the retry: a duplicate, never a loss
            raise

    def _connected(self) -> socket.socket:
        if self._socket is None:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(self._timeout_s)
            try:
                connection.connect(self._path)
            except OSError:
                connection.close()
                raise
            self._socket = connection
        return self._socket

    def _disconnect(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class AccessLogServer:
    """The node process's end of `ForwardedAccessLog`: a UNIX socket in a private temporary
    folder; every entry received goes to `log`, and a sync line is answered once `log` has
    written everything it holds."""

    def __init__(self, access_log: AccessRecorder) -> None:
        self._folder = Path(
            tempfile.mkdtemp(prefix="ecert-access-log-")
        )  # mode 0700: only this user connects
        self.path = self._folder / "socket"
        try:
            self._server = _Server(str(self.path), _Handler)
        except OSError:  # e.g. a TMPDIR so long the path passes the 108 bytes a UNIX socket may have
            os.rmdir(self._folder)
            raise
        self._server.access_log = access_log
        access_log.lower_priority()  # this process serves no request: its log can wait for the cores
        self._thread = threading.Thread(target=self._serve, name="access-log-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        lower_thread_priority()  # the connections' threads, started from here, inherit it
        self._server.serve_forever()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)
        os.rmdir(self._folder)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    access_log: AccessRecorder


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        access_log = self.server.access_log
        for line in self.rfile:
            if line == _SYNC:
                try:
                    access_log.flush()
                    self.wfile.write(b"ok\n")
                except Exception:  # the worker is told; the entries stay queued here
                    log.exception("access log flush failed")
                    self.wfile.write(b"error\n")
                continue
            try:
                access_log.record(_access_from_json(orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
                log.warning("skipped a malformed access-log line from a worker: %r", line[:200])


_OPTIONAL_TEXT = frozenset(
    {"identifier", "share_id", "reason", "claimed_purpose", "ip_prefix", "user_agent", "event_id", "origin",
     "share_token_hash", "staff", "batch_root"}
)  # fmt: skip


def _access_from_json(data: dict[str, Any]) -> Access:
    """An `Access` from a worker's line, its types checked (TypeError): one bad line must not
    become a row the database refuses, which would hold up every entry after it."""
    values = {name: data[name] for name in _ACCESS_FIELDS}
    for name, value in values.items():
        if name == "batch_index":
            if value is not None and type(value) is not int:
                raise TypeError("access-log field batch_index has the wrong type")
            continue
        if name == "receipt":
            continue  # `_receipt_from_json`
        if name == "fields":
            ok = type(value) is list and all(type(f) is str for f in value)
        else:
            ok = type(value) is str or (value is None and name in _OPTIONAL_TEXT)
        if not ok:
            raise TypeError(f"access-log field {name} has the wrong type")
    values["at"] = dt.datetime.fromisoformat(values["at"])
    values["receipt"] = _receipt_from_json(values["receipt"])
    return Access(**values)


def _receipt_from_json(data: Any) -> StoredReceipt | None:
    if data is None:
        return None
    receipt = StoredReceipt(**{f.name: data[f.name] for f in fields(StoredReceipt)})
    if not (
        type(receipt.id) is str
        and type(receipt.organisation_id) is int
        and (receipt.staff_id is None or type(receipt.staff_id) is int)
        and type(receipt.document) is dict
        and type(receipt.disclosed) is dict
    ):
        raise TypeError("access-log receipt has the wrong type")
    return receipt


def read_entries(
    sessions: sessionmaker[Session],
    *,
    digests: Iterable[str] = (),
    share_ids: Iterable[str] = (),
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Newest first: the logged verifications of these certificate digests or shares."""
    return read_page(sessions, digests=digests, share_ids=share_ids, limit=limit)[0]


def read_page(
    sessions: sessionmaker[Session],
    *,
    digests: Iterable[str] = (),
    share_ids: Iterable[str] = (),
    limit: int = 200,
    before: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the log, newest first: at most `limit` entries older than the cursor `before`
    (None: from the newest), and the cursor of the next, older page (None: this is the last).

    Keyset paging on (at, id), the order the log is read in: a page is the same however many
    entries arrive meanwhile (they are newer, or a report from another region written with an
    older `at`, which sorts where it belongs), so entries pushed by a flood are still reached.
    A cursor is opaque to clients: `encode_cursor` of the page's last entry."""
    digests, share_ids = list(digests), list(share_ids)
    if not digests and not share_ids:
        return [], None
    with sessions() as session:
        query = select(AccessEntry).where(
            AccessEntry.digest.in_(digests) | AccessEntry.share_id.in_(share_ids)
        )
        if before is not None:
            at, entry_id = decode_cursor(before)
            query = query.where(
                (AccessEntry.at < at) | ((AccessEntry.at == at) & (AccessEntry.id < entry_id))
            )
        rows = session.scalars(
            query.order_by(AccessEntry.at.desc(), AccessEntry.id.desc()).limit(limit + 1)
        ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    entries = [
        {"at": as_utc(r.at).isoformat(), "organisation": r.organisation, "region": r.organisation_region,
         "purpose": r.purpose, "digest": r.digest, "identifier": r.identifier, "shareId": r.share_id,
         "fields": orjson.loads(r.fields), "verdict": r.verdict, "reason": r.reason, "channel": r.channel,
         "anonymous": r.organisation == ANONYMOUS, "claimedPurpose": r.claimed_purpose, "ipPrefix": r.ip_prefix,
         "userAgent": r.user_agent, "reportedBy": r.reported_by, "staff": r.staff}
        for r in rows
    ]  # fmt: skip
    return entries, encode_cursor(as_utc(rows[-1].at), rows[-1].id) if more else None


def encode_cursor(at: dt.datetime, entry_id: int) -> str:
    """The opaque cursor of the entries older than the entry (`at`, `entry_id`)."""
    moment = at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return base64.urlsafe_b64encode(f"{moment}|{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """(at, id) of a cursor `encode_cursor` made; anything else is 422 `CURSOR_INVALID`."""
    try:
        if not cursor.isascii():
            raise ValueError("not ASCII")
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        moment, entry_id = text.split("|")
        at = dt.datetime.fromisoformat(moment)
        if not (entry_id.isdigit() and len(entry_id) <= 18 and at.tzinfo is None):
            raise ValueError(text)
        if encode_cursor(at.replace(tzinfo=dt.UTC), int(entry_id)) != cursor.rstrip("="):
            raise ValueError(text)  # one spelling per position: the cursor is ours, not a client's
    except (ValueError, UnicodeDecodeError) as exc:
        raise EcertError(
            "The cursor is the `before` a previous page named (its `X-Next-Before`)",
            code=ErrorCode.CURSOR_INVALID, field="before",
        ) from exc  # fmt: skip
    return at.replace(tzinfo=dt.UTC), int(entry_id)


def _row(a: Access) -> dict[str, Any]:
    return {
        "at": a.at, "organisation": a.organisation, "organisation_region": a.organisation_region, "purpose": a.purpose,
        "digest": a.digest, "identifier": a.identifier, "share_id": a.share_id,
        "fields": orjson.dumps(a.fields).decode(), "verdict": a.verdict, "reason": a.reason, "channel": a.channel,
        "claimed_purpose": a.claimed_purpose, "ip_prefix": a.ip_prefix, "user_agent": a.user_agent, "staff": a.staff,
        "batch_root": a.batch_root, "batch_index": a.batch_index,
    }  # fmt: skip


def _receipt_row(a: Access, cipher: DataCipher) -> dict[str, Any]:
    r = a.receipt
    assert r is not None
    return {
        "id": r.id, "organisation_id": r.organisation_id, "staff_id": r.staff_id, "created_at": a.at,
        "identifier": a.identifier, "verdict": a.verdict, "reason": a.reason, "purpose": a.purpose,
        "channel": a.channel, "document": orjson.dumps(r.document).decode(),
        "disclosed": cipher.encrypt(orjson.dumps(r.disclosed), r.id),
    }  # fmt: skip
