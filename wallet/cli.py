"""Wallet commands: `ecert serve wallet` and `ecert wallet demo-holders`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from registry.cli import command_group

console = Console(soft_wrap=True, highlight=False)
wallet_app = command_group("The holder wallet: demo holders.")


def register(app: typer.Typer) -> None:
    from registry.cli import serve_app

    serve_app.command("wallet")(serve_wallet)
    app.add_typer(wallet_app, name="wallet")


def serve_wallet(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8003,
    issuer_url: Annotated[
        str | None, typer.Option(help="The issuer API (default ECERT_WALLET_ISSUER_URL).")
    ] = None,
    verifier_url: Annotated[
        str | None, typer.Option(help="The verifier node (default ECERT_WALLET_VERIFIER_URL).")
    ] = None,
) -> None:
    """Serve the holder wallet (pages in Chinese and English) until interrupted."""
    import uvicorn

    from wallet.app import create_app
    from wallet.runtime import WalletRuntime
    from wallet.settings import WalletSettings

    overrides: dict[str, Any] = {
        k: v for k, v in {"issuer_url": issuer_url, "verifier_url": verifier_url}.items() if v
    }
    settings = WalletSettings(**overrides)
    runtime = WalletRuntime.open(settings)
    if not runtime.verifier.configured:
        console.print(
            "[yellow]no verifier key: set ECERT_WALLET_VERIFIER_KEY (an organisation of kind wallet at the node)[/yellow]"
        )
    console.print(
        f"wallet on http://{host}:{port} (issuer {settings.issuer_url}, verifier {settings.verifier_url})"
    )
    try:
        # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1; the wallet reads it
        # only from ECERT_WALLET_TRUSTED_PROXIES (wallet/web.py client_address)
        uvicorn.run(
            create_app(runtime),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
    finally:
        runtime.close()


@wallet_app.command("demo-holders")
def demo_holders(
    packages: Annotated[
        Path,
        typer.Option(
            help="Folder of holder packages (*.json), e.g. .ecert/demo/certificates.",
            exists=True,
            file_okay=False,
        ),
    ],
) -> None:
    """Give every person among the packages a wallet account with their certificates; print the sign-ins."""
    from wallet.demo import seed_demo_holders
    from wallet.passwords import RULE

    for holder in seed_demo_holders(sorted(packages.glob("*.json"))):
        console.print(
            f"holder {holder.name}: ID number {holder.id_number}, password {holder.password} ({holder.certificates} certificate(s))"
        )
    console.print(f"password rule: {RULE['en']} / {RULE['zh']}")
