#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this and nothing else): the data the
# tests read, formatting, lints, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --data
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
# The editor plugins in real VS Code (code-server), Neovim and Vim against `tunelens lsp`.
scripts/test-editors.sh
# nextest does not run doctests; run them first so nextest's summary closes the log.
cargo test --locked --workspace --doc
# The Milvus backend tests (index/tests/milvus_store.rs, tests/milvus_faults.rs) run against a real server: PyPI's
# milvus==2.3.5 standalone, on loopback with a fresh data dir, stopped by its PID on any exit,
# also when a test fails (~10 s to start, ~45 s of tests).
scripts/milvus.sh start >/dev/null
trap 'scripts/milvus.sh stop' EXIT
TUNELENS_MILVUS_URI=$(scripts/milvus.sh uri)
export TUNELENS_MILVUS_URI
cargo nextest run --locked --workspace --no-fail-fast
