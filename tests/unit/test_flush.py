"""Flush consolidation (`verifier.flush`) over real sockets, on uvloop and on asyncio's own loop:
responses stay whole and in order, a closing response is sent before the close, a client that
half-closes after its request still gets its answer, a streamed body bigger than the socket
buffers arrives whole."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from registry.chain.runner import free_port
from verifier.flush import ConsolidatedFlushProtocol

BIG = bytes(range(256)) * 20_000  # 5 MB: many times the socket buffers, so writes pause and resume
CHUNK = 65_536


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/big":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(BIG)).encode())],
            }
        )
        for start in range(0, len(BIG), CHUNK):
            await send(
                {
                    "type": "http.response.body",
                    "body": BIG[start : start + CHUNK],
                    "more_body": start + CHUNK < len(BIG),
                }
            )
        return
    body = path.encode() * (10_000 if path == "/close" else 1)
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"text/plain")]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=ConsolidatedFlushProtocol,
        loop=request.param,
        log_level="warning",
        lifespan="off",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


def _read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65_536):
        received += chunk
    return received


def test_pipelined_requests_are_answered_whole_and_in_order(server: str) -> None:
    host, port = server.split(":")
    paths = [f"/r{n}" for n in range(8)]
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths)
            + b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        received = _read_until_closed(connection)
    bodies = [
        part.split(b"\r\n\r\n", 1)[1][: len(p)]
        for part, p in zip(received.split(b"HTTP/1.1 200 OK")[1:], [*paths, "/close"], strict=False)
    ]
    assert bodies == [p.encode() for p in [*paths, "/close"]]


def test_a_response_that_closes_the_connection_is_sent_whole_before_the_close(server: str) -> None:
    host, port = server.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = _read_until_closed(connection).split(b"\r\n\r\n", 1)
    assert b"connection: close" in head.lower() and body == b"/close" * 10_000


def test_a_client_that_half_closes_after_its_request_gets_the_answer(server: str) -> None:
    """The transport closes on the client's EOF, between a write and the loop's next turn."""
    host, port = server.split(":")
    for _ in range(10):
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
            connection.shutdown(socket.SHUT_WR)
            assert _read_until_closed(connection).endswith(b"\r\n\r\n/half")


def test_a_streamed_body_larger_than_the_socket_buffers_arrives_whole(server: str) -> None:
    with httpx.Client(base_url=f"http://{server}", timeout=30) as client:
        for _ in range(2):  # twice on one kept-alive connection
            response = client.get("/big")
            assert response.status_code == 200 and response.content == BIG
