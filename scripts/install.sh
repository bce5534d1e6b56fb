#!/usr/bin/env bash
# Install everything ecert needs on a fresh Debian machine with Python 3.11+ and Node 20+:
# system packages (apt), the Python virtualenv (.venv) and the npm toolchain (node_modules).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# zbar: QR decoding; postgresql: the second database the tests run on; chromium + CJK fonts:
# the wallet's browser tests and screenshots, and the fonts the printed licence's PDF embeds
# (issuer/fonts.py); ghostscript: the printing tests render the PDF at 100 dpi; wrk: the
# verification benchmark.
APT_PACKAGES=(libzbar0 zbar-tools postgresql chromium fonts-noto-cjk ghostscript wrk)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "== python venv"
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "== pip install -e .[test]"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install` rather than `npm ci`: the lock holds only this platform's anvil binary package,
  # which `npm ci` refuses; versions still come from package-lock.json.
  echo "== npm install"
  npm install --no-audit --no-fund --loglevel=error
fi
