#!/usr/bin/env bash
# Quality gates (issue 10, point 21): lint and format (ruff), types (mypy: strict on registry/),
# Solidity (solhint). Configured in pyproject.toml and .solhint.json; every one must be clean.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff check"
.venv/bin/ruff check .
echo "== ruff format --check"
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== solhint"
npx --no-install solhint --max-warnings 0 'contracts/**/*.sol'
