#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this and nothing else): the data the
# tests read, formatting, lints, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --data
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
# nextest does not run doctests; run them first so nextest's summary closes the log.
cargo test --locked --workspace --doc
cargo nextest run --locked --workspace --no-fail-fast
