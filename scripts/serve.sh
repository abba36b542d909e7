#!/usr/bin/env bash
# Install kb into .venv and start it on the embedded defaults (SQLite, files in ./instance).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/kb serve "$@"
