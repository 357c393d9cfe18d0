#!/usr/bin/env bash
# What the editor tests need, installed once (each step is skipped when it is already there):
# Debian's neovim, vim, ALE (Vim's LSP client), chromium, tmux and ripgrep; the VS Code
# extension's npm packages (vsce among them); code-server and playwright-core for the
# end-to-end test. Run as root (CI is); see ../shared/notes/editors.md for why each flag.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(neovim vim vim-ale chromium tmux ripgrep libkrb5-dev)
missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if ((${#missing[@]})); then
  echo "install-editors: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install (npm writes this file).
npm_ci() {
  local dir=$1
  shift
  if [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
    echo "install-editors: npm ci in $dir" >&2
    (cd "$dir" && "$@" npm ci --no-audit --no-fund --loglevel=error)
  fi
}

npm_ci editor-plugins/vscode env

# code-server's @vscode/ripgrep downloads a ripgrep release from the internet, which is not
# reachable here; it first looks in $TMPDIR/vscode-ripgrep-cache-*/, so Debian's rg goes there.
rg_tmp=$(mktemp -d)
trap 'rm -rf "$rg_tmp"' EXIT
mkdir -p "$rg_tmp/vscode-ripgrep-cache-1.15.11"
cp /usr/bin/rg "$rg_tmp/rg"
tar -C "$rg_tmp" -czf "$rg_tmp/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" rg
# --unsafe-perm: its postinstall refuses root otherwise; npm_config_yes: node-pty runs npx node-gyp.
npm_ci editor-plugins/e2e env TMPDIR="$rg_tmp" npm_config_yes=true npm_config_unsafe_perm=true npm_config_foreground_scripts=true
