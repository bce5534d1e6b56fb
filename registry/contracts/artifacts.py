"""Compiled contract artifacts: ABI and bytecode, built from `contracts/` with the npm solc.

Artifacts are generated, never pasted: `load_artifacts()` compiles through py-solc-x over a small
Node shim around `node_modules/solc` (no compiler download) and caches the result by a hash of
every source, so a compile (~3 s, two Node starts) happens once per change of the sources.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from registry.errors import CompilerError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
CACHE_DIR = PROJECT_ROOT / "build" / "artifacts"
SOLC_SHIM = Path(__file__).with_name("solc_shim.js")
SOLC_SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 10_000},
    "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.gasEstimates"]}
    },
}
DEPLOYED_CONTRACTS = ("CertificateRegistry",)


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(PROJECT_ROOT)): path.read_text(encoding="utf-8")
        for path in sorted(CONTRACTS_DIR.rglob("*.sol"))
    }


def _fingerprint(sources: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps([sources, SOLC_SETTINGS], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def compile_contracts(sources: dict[str, str]) -> dict[str, Artifact]:
    """Compile `sources` (path → text) and return every contract by name."""
    import solcx
    from solcx.exceptions import SolcError

    if not (PROJECT_ROOT / "node_modules" / "solc").is_dir():
        raise CompilerError("node_modules/solc is missing: run `npm ci` in the project root first")
    request = {
        "language": "Solidity",
        "sources": {path: {"content": text} for path, text in sources.items()},
        "settings": SOLC_SETTINGS,
    }
    try:
        output = solcx.compile_standard(
            request, solc_binary=str(SOLC_SHIM), base_path=str(PROJECT_ROOT), allow_paths=str(PROJECT_ROOT)
        )
    except SolcError as exc:
        raise CompilerError(f"Solidity compilation failed: {exc}") from exc
    problems = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if problems:
        raise CompilerError("Solidity compilation failed:\n" + "\n".join(problems))
    artifacts: dict[str, Artifact] = {}
    for path, contracts in output["contracts"].items():
        if not path.startswith("contracts/"):
            continue
        for name, data in contracts.items():
            artifacts[name] = Artifact(
                name=name,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
            )
    return artifacts


@cache
def load_artifacts() -> dict[str, Artifact]:
    """The artifacts of the current sources, compiled at most once per source change."""
    sources = _sources()
    cache_file = CACHE_DIR / f"{_fingerprint(sources)}.json"
    if cache_file.exists():
        raw = json.loads(cache_file.read_text())
        return {name: Artifact(**data) for name, data in raw.items()}
    artifacts = compile_contracts(sources)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({name: vars(a) for name, a in artifacts.items()}))
    tmp.replace(cache_file)
    return artifacts


def artifact(name: str) -> Artifact:
    """One contract's artifact by name, e.g. `artifact("CertificateRegistry")`."""
    try:
        return load_artifacts()[name]
    except KeyError:
        raise CompilerError(f"No contract named {name!r} in contracts/") from None
