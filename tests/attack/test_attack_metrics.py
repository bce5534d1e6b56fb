"""Attacks on `/metrics` (`registry/metrics.py`): the token, when an operator sets one."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from registry.metrics import install_metrics
from registry.settings import Settings


def scrape(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
            return await client.get("/metrics", headers=headers or {})

    return asyncio.run(send())


def test_an_empty_metrics_token_does_not_open_metrics_to_everyone() -> None:
    app = FastAPI()
    try:
        install_metrics(app, Settings(metrics_token=SecretStr("")))
    except Exception:
        return
    assert scrape(app).status_code in (401, 403)
