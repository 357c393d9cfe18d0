-- The plugin against the real server, headless:
--   TUNELENS_BIN=... TUNELENS_MODEL=... TUNELENS_WORKSPACE=<copy of e2e/workspace> \
--   nvim --headless -u NONE -c "luafile test/e2e.lua"
-- Opens kesh.abc, waits for the server, and asserts that hover on its first bars and
-- :TunelensSimilar both name "The Borrowed Jig" of session.abc, which quotes those bars; that
-- :TunelensCompare writes the engraved page (with abcjs) and opens it; that the server's code
-- action edits the header; and that :TunelensGenre writes R:.
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")
vim.opt.runtimepath:append(here)
vim.cmd("filetype on")

local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then
    io.stderr:write("nvim-e2e: set " .. name .. "\n")
    vim.cmd("cquit 2")
  end
  return v
end
local bin, model, ws = env("TUNELENS_BIN"), env("TUNELENS_MODEL"), env("TUNELENS_WORKSPACE")
local timeout = tonumber(os.getenv("TUNELENS_TIMEOUT_MS") or "90000")

local passed, failed = 0, 0
local function check(name, ok, detail)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    io.stderr:write("FAIL " .. name .. (detail and ("\n  " .. detail) or "") .. "\n")
  end
end
local function finish()
  print(string.format("nvim-e2e: %d passed, %d failed", passed, failed))
  vim.cmd(failed == 0 and "qall!" or "cquit 1")
end

vim.fn.mkdir(ws .. "/.tunelens", "p") -- the project root marker
require("tunelens").setup({ cmd = { bin, "lsp" }, model_dir = model, device = "cpu", db_path = ws .. "/.tunelens/index.sled" })
vim.cmd("edit " .. ws .. "/kesh.abc")
check("filetype", vim.bo.filetype == "abc", vim.bo.filetype)

local attached = vim.wait(20000, function()
  return require("tunelens").client(0, true) ~= nil
end, 100)
check("server attached", attached)
if not attached then
  return finish()
end

-- Line 6 (1-based) is the first bar line of The Kesh; the cursor on its second bar.
vim.api.nvim_win_set_cursor(0, { 6, 10 })
local client = require("tunelens").client(0)
local params = vim.lsp.util.make_position_params(0, client.offset_encoding)

-- The server answers hover once the workspace is indexed; until then ask again.
local hover_text = ""
local deadline = vim.loop.now() + timeout
while vim.loop.now() < deadline do
  local res = vim.lsp.buf_request_sync(0, "textDocument/hover", params, 10000) or {}
  for _, r in pairs(res) do
    if r.result and r.result.contents then
      local c = r.result.contents
      hover_text = type(c) == "string" and c or (c.value or table.concat(vim.lsp.util.convert_input_to_markdown_lines(c), "\n"))
    end
  end
  if hover_text:find("Borrowed Jig", 1, true) then
    break
  end
  vim.wait(1000)
end
check("hover names the similar passage", hover_text:find("Borrowed Jig", 1, true) ~= nil, "hover was: " .. hover_text)

local res = vim.lsp.buf_request_sync(0, "tunelens/similar", params, 20000) or {}
local matches = {}
for _, r in pairs(res) do
  matches = (r.result and r.result.matches) or matches
end
local found = false
for _, m in ipairs(matches) do
  found = found or (m.uri:find("session.abc", 1, true) ~= nil and m.title == "The Borrowed Jig")
end
check("tunelens/similar finds The Borrowed Jig in session.abc", found, vim.inspect(matches))

-- The command fills the quickfix list asynchronously.
vim.cmd("TunelensSimilar")
vim.wait(20000, function()
  return #vim.fn.getqflist() > 0
end, 100)
local qf = vim.fn.getqflist()
local in_qf = false
for _, it in ipairs(qf) do
  in_qf = in_qf or (vim.api.nvim_buf_get_name(it.bufnr):find("session.abc", 1, true) ~= nil and it.text:find("Borrowed Jig", 1, true) ~= nil)
end
check(":TunelensSimilar fills quickfix with session.abc", in_qf, vim.inspect(qf))

vim.cmd("wincmd p")

-- :TunelensCompare writes the server's page to a temp .html file and opens it; the opener here
-- (vim.g.tunelens_open_cmd, run as a job) only records the path it was given.
local opened = ws .. "/.tunelens/opened.txt"
vim.g.tunelens_open_cmd = { "sh", "-c", 'printf %s "$1" > "$0"', opened }
vim.api.nvim_win_set_cursor(0, { 6, 10 })
vim.cmd("TunelensCompare")
vim.wait(20000, function()
  return vim.fn.filereadable(opened) == 1 and #table.concat(vim.fn.readfile(opened)) > 0
end, 100)
local page_path = vim.fn.filereadable(opened) == 1 and table.concat(vim.fn.readfile(opened)) or ""
local page = vim.fn.filereadable(page_path) == 1 and table.concat(vim.fn.readfile(page_path), "\n") or ""
check(":TunelensCompare opens a temp .html file", page_path:match("%.html$") ~= nil and page_path == require("tunelens").last_compare, page_path)
check(
  ":TunelensCompare's page holds the report, abcjs and the passages",
  page:find('id="tunelens-report"', 1, true) ~= nil and page:find("abcjs", 1, true) ~= nil
    and page:find("Borrowed Jig", 1, true) ~= nil,
  #page .. " bytes"
)
vim.g.tunelens_open_cmd = nil

-- The server's code action on The Kesh's header, applied by Neovim's own LSP code: one R: line,
-- the label the title names, just before K: (where the server and the plugin put a new field),
-- nothing else changed.
local original = vim.api.nvim_buf_get_lines(0, 0, -1, false)
local action
local action_deadline = vim.loop.now() + 20000
while not action and vim.loop.now() < action_deadline do
  local at = { line = 1, character = 0 }
  local res = vim.lsp.buf_request_sync(0, "textDocument/codeAction", {
    textDocument = { uri = vim.uri_from_bufnr(0) },
    range = { start = at, ["end"] = at },
    context = { diagnostics = {} },
  }, 10000) or {}
  for _, r in pairs(res) do
    for _, a in ipairs(r.result or {}) do
      if a.edit and a.title:find("^Set R:") then
        action = a
      end
    end
  end
  if not action then
    vim.wait(500)
  end
end
check("code action 'Set R:' offered on the header", action ~= nil)
if action then
  vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
  local after = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  local r_at, k_at
  for i, l in ipairs(after) do
    if l:find("^R:") then
      r_at = r_at and -1 or i
    end
    k_at = k_at or (l:find("^K:") and i)
  end
  local rest = vim.deepcopy(after)
  if r_at and r_at > 0 then
    table.remove(rest, r_at)
  end
  check(
    "code action wrote one R: line, the title's label, before K:",
    r_at ~= nil and k_at ~= nil and r_at == k_at - 1 and #after[r_at] > 2 and action.title:find(after[r_at]:sub(3), 1, true) ~= nil
      and vim.deep_equal(rest, original),
    action.title .. "\n  " .. vim.inspect(after)
  )
  vim.api.nvim_buf_set_lines(0, 0, -1, false, original)
end

-- :TunelensGenre offers the labels (best first) and writes the chosen one as R: before K:.
local offered
vim.ui.select = function(items, opts, on_choice)
  offered = items
  on_choice(items[1])
end
vim.cmd("TunelensGenre")
vim.wait(20000, function()
  return vim.api.nvim_buf_get_lines(0, 4, 5, false)[1]:match("^R:") ~= nil
end, 100)
local lines = vim.api.nvim_buf_get_lines(0, 0, 7, false)
check(":TunelensGenre offered labels", offered ~= nil and #offered > 1, vim.inspect(offered))
check(
  ":TunelensGenre set R: before K:",
  offered ~= nil and lines[5] == "R:" .. offered[1].label and lines[6] == "K:G",
  vim.inspect(lines)
)

finish()
