#!/usr/bin/env bash
# The editor plugins, tested in the real editors against the real `tunelens lsp`:
#   1. the VS Code extension's unit tests (node --test), the Neovim and Vim plugins' own logic;
#   2. the packaged .vsix installed into code-server and driven by playwright-core in headless
#      Chromium (hover, Find similar passages → references view, the genre code action, Compare
#      with similar passages → the engraved page in a webview);
#   3. headless Neovim (built-in LSP client) and headless Vim (ALE) against the server;
#   4. the compare page's links (assets/compare as checked out) in headless Chromium.
# Installs what it needs first (scripts/install-editors.sh, skipped when present).
# Options: --screenshots  also write docs/screenshots/{vscode,nvim}-hover.png and
#                         docs/screenshots/vscode-compare.png.
# Environment: TUNELENS_BIN=path  use that daemon binary instead of building one with cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

screenshots=0
[[ ${1:-} == --screenshots ]] && screenshots=1

scripts/install-editors.sh

export TUNELENS_MODEL=${TUNELENS_MODEL:-$repo/../shared/fixtures/clamp-tiny-bert}
[[ -f $TUNELENS_MODEL/config.json ]] || { echo "test-editors: no model at $TUNELENS_MODEL (../shared/fixtures)" >&2; exit 1; }
# TUNELENS_BIN set: test that binary as it is (no build); unset: build this checkout's (CI).
if [[ -z ${TUNELENS_BIN:-} ]]; then
  cargo build --locked --bin tunelens
  export TUNELENS_BIN=$repo/target/debug/tunelens
fi
export TUNELENS_BIN
"$TUNELENS_BIN" lsp --help >/dev/null 2>&1 || { echo "test-editors: $TUNELENS_BIN has no 'lsp' subcommand" >&2; exit 1; }
export TUNELENS_LOG=${TUNELENS_LOG:-info}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
workspace() { # a fresh copy of the test workspace: the tests edit it
  local d="$tmp/$1"
  cp -r editor-plugins/e2e/workspace "$d"
  echo "$d"
}
status=0
run() { # name, command...: run one suite, keep going, remember a failure
  local name=$1 t0=$SECONDS
  shift
  if "$@"; then echo "test-editors: $name ok ($((SECONDS - t0)) s)"; else echo "test-editors: $name FAILED" >&2; status=1; fi
}

(cd editor-plugins/vscode && npx tsc -p . && npx vsce package --out tunelens.vsix >/dev/null)
run "vscode unit" bash -c "cd editor-plugins/vscode && node --test test/"
run "nvim unit" bash -c "cd editor-plugins/nvim && nvim --headless -u NONE -c 'luafile test/unit.lua' && echo"
run "vim unit" bash -c "cd editor-plugins/vim && vim -N -u test/vimrc -i NONE -es -S test/unit.vim </dev/null"

shot=()
((screenshots)) && shot=(--screenshot "$repo/docs/screenshots/vscode-hover.png")
((screenshots)) || shot=(--screenshot "$tmp/vscode-hover.png")
((screenshots)) && shot+=(--compare-screenshot "$repo/docs/screenshots/vscode-compare.png")
((screenshots)) || shot+=(--compare-screenshot "$tmp/vscode-compare.png")
run "vscode e2e" node editor-plugins/e2e/vscode.e2e.js --vsix editor-plugins/vscode/tunelens.vsix "${shot[@]}"
ws=$(workspace nvim)
run "nvim e2e" env TUNELENS_WORKSPACE="$ws" bash -c "cd editor-plugins/nvim && nvim --headless -u NONE -c 'luafile test/e2e.lua' && echo"
ws=$(workspace vim)
run "vim e2e" env TUNELENS_WORKSPACE="$ws" bash -c "cd editor-plugins/vim && vim -N -u test/vimrc -i NONE -es -S test/e2e.vim </dev/null"
run "compare page" node editor-plugins/e2e/compare-page.e2e.js
if ((screenshots)); then
  ws=$(workspace nvim-shot)
  run "nvim screenshot" editor-plugins/e2e/nvim-screenshot.sh "$ws" "$repo/docs/screenshots/nvim-hover.png"
fi
exit $status
