-- tunelens for Neovim: starts `tunelens lsp` for abc buffers with the built-in LSP client and
-- adds the commands standard LSP has no verb for. Works on Neovim 0.7 (Debian's) and current
-- releases: every API that changed between them goes through one of the small shims below.
local M = {}

local defaults = {
  cmd = { "tunelens", "lsp" },
  model_dir = nil, -- CLaMP checkpoint directory; nil: the server's default (TUNELENS_MODEL)
  device = "auto", -- "auto" | "cpu" | "cuda"
  corpora = {}, -- folders of ABC files to compare against, besides the workspace
  window_bars = 4,
  genre_field = "R",
  db_path = nil,
  root_markers = { ".git", ".tunelens" },
  keymaps = true, -- K: hover (Neovim 0.10+ maps it already; 0.7 does not)
  -- What opens :TunelensCompare's page: nil (vim.g.tunelens_open_cmd, else vim.ui.open, else
  -- xdg-open / open), a command list or string (the file is added as the last argument), or a
  -- Lua function(path).
  open_cmd = nil,
  on_attach = nil,
}

M.config = vim.deepcopy(defaults)

local function str(x)
  return type(x) == "string" and x ~= "" and x or nil
end

local function notify(msg, level)
  vim.notify("tunelens: " .. msg, level or vim.log.levels.INFO)
end

-- Shims ------------------------------------------------------------------------------------

local function clients_of(bufnr)
  local all
  if vim.lsp.get_clients then
    all = vim.lsp.get_clients({ bufnr = bufnr })
  else
    all = vim.tbl_values(vim.lsp.buf_get_clients(bufnr))
  end
  return vim.tbl_filter(function(c)
    return c.name == "tunelens"
  end, all)
end

--- The tunelens client attached to the buffer, or nil (with a message unless quiet).
function M.client(bufnr, quiet)
  local c = clients_of(bufnr or 0)[1]
  if not c and not quiet then
    notify("no language server on this buffer (is it an abc file? see :LspInfo or :messages)", vim.log.levels.WARN)
  end
  return c
end

local function request(bufnr, method, params, on_result)
  local c = M.client(bufnr)
  if not c then
    return
  end
  local function handler(err, result)
    if err then
      notify(method .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    else
      on_result(result, c)
    end
  end
  -- Neovim 0.11 wants client:request(); 0.7 has only client.request(). Both take the same list.
  if vim.fn.has("nvim-0.11") == 1 then
    c:request(method, params, handler, bufnr)
  else
    c.request(method, params, handler, bufnr)
  end
end

-- Pure helpers (tested headless) -----------------------------------------------------------

--- The edit that sets `field:` to `value` in the header of the tune holding 0-based line `at`:
--- an existing field line is replaced, else the field goes just before K:. Returns
--- { line = 0-based, end_line = exclusive, text = "R:jig" } or nil.
function M.header_edit(lines, at, field, value)
  local x = math.min(at, #lines - 1)
  while x >= 0 and not lines[x + 1]:match("^X:") do
    x = x - 1
  end
  if x < 0 then
    return nil
  end
  field = field:gsub("[^%a]", "")
  for i = x + 1, #lines - 1 do
    local l = lines[i + 1]
    if l:match("^%s*$") or l:match("^X:") then
      return nil
    end
    if l:sub(1, #field + 1) == field .. ":" then
      return { line = i, end_line = i + 1, text = field .. ":" .. value }
    end
    if l:match("^K:") then
      return { line = i, end_line = i, text = field .. ":" .. value }
    end
  end
  return nil
end

--- The tune whose range holds 0-based line `line`, else the first.
-- The label set to score for a header field, as the server's lens and code action choose it:
-- R: is the tune's rhythm (jig, reel, ...), any other field gets the genre set.
function M.label_set(field)
  return field:sub(1, 1) == "R" and "rhythm" or "genre"
end

function M.tune_at(tunes, line)
  for _, t in ipairs(tunes) do
    if line >= t.range.start.line and line <= t.range["end"].line then
      return t
    end
  end
  return tunes[1]
end

--- Quickfix items of server matches, with title, score and why in the text.
function M.match_items(matches, offset_encoding)
  local items = {}
  for _, m in ipairs(matches) do
    local loc = vim.lsp.util.locations_to_items({ { uri = m.uri, range = m.range } }, offset_encoding)[1]
    local where = table.concat(
      vim.tbl_filter(function(x)
        return type(x) == "string" and x ~= ""
      end, { m.corpus, m.collection }),
      "/"
    )
    local text = string.format("%s  %.2f", str(m.title) or "(untitled)", m.score)
    if where ~= "" then
      text = text .. "  [" .. where .. "]"
    end
    if str(m.explanation) then
      text = text .. "  " .. m.explanation
    end
    loc.text = text
    table.insert(items, loc)
  end
  return items
end

--- How to open a file with the system's viewer, from the open_cmd setting (else
--- vim.g.tunelens_open_cmd): a function(path), or a command list / string that gets the path as
--- its last argument. Returns a function, an argv list, or nil for the default (vim.ui.open
--- where Neovim has it, else xdg-open, or open on macOS; see M.open).
function M.open_argv(setting, path)
  if type(setting) == "function" then
    return setting
  end
  if type(setting) == "string" and setting ~= "" then
    setting = vim.split(setting, "%s+", { trimempty = true })
  end
  if type(setting) == "table" and #setting > 0 then
    local argv = vim.deepcopy(setting)
    table.insert(argv, path)
    return argv
  end
  return nil
end

--- Opens a file (the compare page) with the configured or the system's opener.
function M.open(path)
  local setting = M.config.open_cmd
  if setting == nil then
    setting = vim.g.tunelens_open_cmd
  end
  local how = M.open_argv(setting, path)
  if type(how) == "function" then
    return how(path)
  end
  if not how and vim.ui.open then
    return vim.ui.open(path)
  end
  how = how or { vim.fn.has("mac") == 1 and "open" or "xdg-open", path }
  if vim.fn.executable(how[1]) ~= 1 then
    notify(string.format("cannot open %s: '%s' is not executable (set open_cmd)", path, how[1]), vim.log.levels.WARN)
    return
  end
  if vim.fn.jobstart(how, { detach = true }) <= 0 then
    notify("cannot open " .. path .. " with " .. table.concat(how, " "), vim.log.levels.WARN)
  end
end

-- Commands ---------------------------------------------------------------------------------

local function to_quickfix(title, matches, c)
  if #matches == 0 then
    notify("no matches for " .. title)
    return
  end
  vim.fn.setqflist({}, " ", { title = "tunelens: " .. title, items = M.match_items(matches, c.offset_encoding) })
  vim.cmd("copen")
end

--- Sends `method` for the cursor's position in the current buffer; `handle(result, client)`.
local function at_cursor(method, handle)
  local bufnr = vim.api.nvim_get_current_buf()
  local c = M.client(bufnr)
  if not c then
    return
  end
  local params = vim.lsp.util.make_position_params(0, c.offset_encoding)
  request(bufnr, method, params, handle)
end

function M.similar()
  at_cursor("tunelens/similar", function(result, client)
    to_quickfix("similar passages", result.matches or {}, client)
  end)
end

--- tunelens/compare for the cursor's passage: the server's page (the passage and its matches
--- engraved, self-contained) written to a temp .html file and opened in the browser.
function M.compare()
  at_cursor("tunelens/compare", function(result)
    if type(result) ~= "table" or type(result.html) ~= "string" then
      notify("tunelens/compare sent no page", vim.log.levels.ERROR)
      return
    end
    local path = vim.fn.tempname() .. ".html"
    local f, err = io.open(path, "wb")
    if not f then
      notify("cannot write " .. path .. ": " .. tostring(err), vim.log.levels.ERROR)
      return
    end
    f:write(result.html)
    f:close()
    M.last_compare = path
    local n = tonumber(result.passages) or 0
    notify(string.format("%d passages compared: %s", n, path))
    M.open(path)
  end)
end

function M.search(text)
  if not text or text == "" then
    notify("usage: :TunelensSearch a slow air in D minor", vim.log.levels.WARN)
    return
  end
  request(0, "tunelens/search", { text = text, level = "tune", k = 20 }, function(result, client)
    to_quickfix('"' .. text .. '"', result.matches or {}, client)
  end)
end

function M.genre()
  local bufnr = vim.api.nvim_get_current_buf()
  local line = vim.api.nvim_win_get_cursor(0)[1] - 1
  local params = { textDocument = vim.lsp.util.make_text_document_params(bufnr), labelSet = M.label_set(M.config.genre_field) }
  request(bufnr, "tunelens/classify", params, function(result)
    local tune = M.tune_at(result.tunes or {}, line)
    if not tune or #tune.labels == 0 then
      notify("no tune to classify here")
      return
    end
    local labels = vim.deepcopy(tune.labels)
    table.sort(labels, function(a, b)
      return a.score > b.score
    end)
    local field = M.config.genre_field
    vim.ui.select(labels, {
      prompt = string.format('%s of "%s" (sets %s:)', M.label_set(field), str(tune.title) or "this tune", field),
      format_item = function(l)
        return string.format("%s  %.2f", l.label, l.score)
      end,
    }, function(choice)
      if not choice then
        return
      end
      local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
      local e = M.header_edit(lines, tune.range.start.line, field, choice.label)
      if not e then
        notify(string.format('"%s" has no K: line to put %s: before', str(tune.title) or "this tune", field), vim.log.levels.WARN)
        return
      end
      vim.api.nvim_buf_set_lines(bufnr, e.line, e.end_line, false, { e.text })
    end)
  end)
end

function M.status()
  request(0, "tunelens/status", {}, function(s)
    local model = s.model and string.format("%s (%d-d)", s.model.name, s.model.dim) or "no model"
    local parts = { string.format("tunelens %s · %s · %s", s.serverVersion or "?", model, s.device or "?") }
    for _, c in ipairs(s.corpora or {}) do
      table.insert(parts, string.format("%s: %d files, %d tunes, %d passages", c.name, c.files, c.tunes, c.passages))
    end
    if s.indexing then
      table.insert(parts, "indexing")
    end
    notify(table.concat(parts, " · "))
  end)
end

function M.index(dir)
  local path = vim.fn.fnamemodify((dir and dir ~= "") and dir or vim.fn.getcwd(), ":p")
  request(0, "tunelens/reindex", { uri = vim.uri_from_fname((path:gsub("/$", ""))) }, function()
    notify("indexing " .. path)
  end)
end

-- Starting the server ----------------------------------------------------------------------

local function init_options(cfg)
  local o = { device = cfg.device, windowBars = cfg.window_bars, genreField = cfg.genre_field }
  if cfg.model_dir then
    o.modelDir = vim.fn.expand(cfg.model_dir)
  end
  if cfg.db_path then
    o.dbPath = vim.fn.expand(cfg.db_path)
  end
  if cfg.corpora and #cfg.corpora > 0 then
    o.corpora = vim.tbl_map(function(p)
      return vim.fn.fnamemodify(vim.fn.expand(p), ":p")
    end, cfg.corpora)
  end
  return o
end
M.init_options = init_options

local function root_of(bufnr)
  local file = vim.api.nvim_buf_get_name(bufnr)
  local dir = file ~= "" and vim.fn.fnamemodify(file, ":p:h") or vim.fn.getcwd()
  for _, marker in ipairs(M.config.root_markers) do
    local found = vim.fn.finddir(marker, dir .. ";")
    if found == "" then
      found = vim.fn.findfile(marker, dir .. ";")
    end
    if found ~= "" then
      return (vim.fn.fnamemodify(found, ":p:h:h"):gsub("/$", ""))
    end
  end
  return dir
end

local started = {} -- root dir -> client id, so every buffer of one project shares a server

local function on_attach(client, bufnr)
  if M.config.keymaps then
    vim.api.nvim_buf_set_keymap(bufnr, "n", "K", "<cmd>lua vim.lsp.buf.hover()<CR>", { noremap = true, silent = true })
  end
  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.fn.executable(M.config.cmd[1]) ~= 1 then
    notify(string.format("'%s' is not executable (set cmd in setup())", M.config.cmd[1]), vim.log.levels.ERROR)
    return
  end
  local root = root_of(bufnr)
  local config = {
    name = "tunelens",
    cmd = M.config.cmd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = init_options(M.config),
    settings = { tunelens = init_options(M.config) },
    on_attach = on_attach,
  }
  if vim.lsp.start then
    -- 0.8+: finds or starts the client for this root and attaches the buffer.
    vim.lsp.start(config, { bufnr = bufnr })
    return
  end
  local id = started[root]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(config)
    started[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  vim.cmd([[
    augroup tunelens
      autocmd!
      autocmd FileType abc lua require("tunelens").attach(tonumber(vim.fn.expand("<abuf>")))
    augroup END
    command! TunelensSimilar lua require("tunelens").similar()
    command! TunelensCompare lua require("tunelens").compare()
    command! -nargs=+ TunelensSearch lua require("tunelens").search(<q-args>)
    command! TunelensGenre lua require("tunelens").genre()
    command! TunelensStatus lua require("tunelens").status()
    command! -nargs=? -complete=dir TunelensIndex lua require("tunelens").index(<q-args>)
  ]])
  -- Buffers opened before setup() ran.
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].filetype == "abc" then
      M.attach(b)
    end
  end
end

return M
