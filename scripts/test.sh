#!/usr/bin/env bash
# Install what is missing, compile the contracts with Hardhat (offline), run the quality gates
# (scripts/lint.sh: ruff, mypy, solhint), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
echo "== hardhat compile (offline, npm solc)"
npx --no-install hardhat compile --quiet
./scripts/lint.sh
echo "== postgresql (second database for the tests)"
ECERT_TEST_POSTGRES_URL=$(./scripts/postgres.sh)
export ECERT_TEST_POSTGRES_URL
echo "== pytest"
exec .venv/bin/python -m pytest -n 2 --fail-on-skip "$@"
