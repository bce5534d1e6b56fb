#!/usr/bin/env bash
# Install what is missing, compile the contracts with Hardhat (offline), run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
echo "== hardhat compile (offline, npm solc)"
npx --no-install hardhat compile --quiet
echo "== pytest"
exec .venv/bin/python -m pytest -n 2 "$@"
