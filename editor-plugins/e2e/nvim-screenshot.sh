#!/usr/bin/env bash
# A picture of Neovim showing tunelens's hover: nvim runs in tmux, the pane is captured with
# its colours, turned into HTML and photographed by headless Chromium.
#   TUNELENS_BIN=... TUNELENS_MODEL=... nvim-screenshot.sh WORKSPACE OUT.png
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ws=$1
out=$2
sock="tunelens-shot-$$"
init="$ws/.shot-init.lua"
mkdir -p "$ws/.tunelens"
cat >"$init" <<LUA
vim.opt.runtimepath:append("$here/../nvim")
vim.cmd("filetype on | syntax on")
vim.o.termguicolors = false
vim.o.number = true
-- What a user's config commonly has: a framed hover on a quiet background (Neovim 0.7's
-- default float colour is Pmenu's magenta, which hides the links' targets).
vim.cmd("highlight NormalFloat ctermbg=235 ctermfg=252 | highlight FloatBorder ctermbg=235 ctermfg=244")
vim.lsp.handlers["textDocument/hover"] = vim.lsp.with(vim.lsp.handlers.hover, { border = "rounded", max_width = 124 })
require("tunelens").setup({ cmd = { "$TUNELENS_BIN", "lsp" }, model_dir = "$TUNELENS_MODEL", device = "cpu", db_path = "$ws/.tunelens/index.sled" })
vim.cmd("edit $ws/kesh.abc")
vim.api.nvim_win_set_cursor(0, { 6, 10 })
-- Show the hover once the server's answer names the quoting tune (it indexes first).
local function try(n)
  local params = vim.lsp.util.make_position_params()
  vim.lsp.buf_request(0, "textDocument/hover", params, function(_, result)
    local c = result and result.contents
    local text = c and (type(c) == "string" and c or c.value or vim.inspect(c)) or ""
    if text:find("Borrowed Jig", 1, true) then
      vim.lsp.buf.hover()
      vim.defer_fn(function() vim.fn.writefile({ "ready" }, "$ws/.shot-ready") end, 500)
    elseif n > 0 then
      vim.defer_fn(function() try(n - 1) end, 1000)
    end
  end)
end
vim.defer_fn(function() try(90) end, 1000)
LUA
rm -f "$ws/.shot-ready"
tmux -L "$sock" new-session -d -x 130 -y 30 "nvim -u $init"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  [[ -f $ws/.shot-ready ]] && break
  sleep 1
done
[[ -f $ws/.shot-ready ]] || { echo "nvim-screenshot: no hover naming The Borrowed Jig" >&2; tmux -L "$sock" capture-pane -p >&2; exit 1; }
tmux -L "$sock" capture-pane -e -p >"$ws/.shot.txt"
node "$here/ansi2html.js" <"$ws/.shot.txt" >"$ws/.shot.html"
mkdir -p "$(dirname "$out")"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1195,590 \
  --screenshot="$out" "file://$ws/.shot.html" >/dev/null 2>&1
test -s "$out"
echo "nvim-screenshot: $out"
