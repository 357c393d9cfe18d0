-- nvim --headless -u NONE -c "luafile test/unit.lua": the plugin's own logic, no server needed.
vim.opt.runtimepath:append(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h"))
local t = require("tunelens")

local passed, failed = 0, 0
local function check(name, got, want)
  if vim.deep_equal(got, want) then
    passed = passed + 1
  else
    failed = failed + 1
    io.stderr:write(string.format("FAIL %s\n  got:  %s\n  want: %s\n", name, vim.inspect(got), vim.inspect(want)))
  end
end

local file = { "%abc", "", "X:1", "T:The Kesh", "M:6/8", "K:G", "|:GAG GAB|", "", "X:2", "T:Maggie", "R:hornpipe", "K:Edor", "|:E2BE dEBE|" }
check("insert before K:", t.header_edit(file, 6, "R", "jig"), { line = 5, end_line = 5, text = "R:jig" })
check("replace R: of the tune under the cursor", t.header_edit(file, 12, "R", "reel"), { line = 10, end_line = 11, text = "R:reel" })
check("from the X: line", t.header_edit(file, 2, "R", "jig"), { line = 5, end_line = 5, text = "R:jig" })
check("above every tune", t.header_edit(file, 0, "R", "jig"), nil)
check("no K:", t.header_edit({ "X:1", "T:x", "", "abc|" }, 3, "R", "jig"), nil)

check("R: scores rhythm", t.label_set("R"), "rhythm")
check("other fields score genre", { t.label_set("G"), t.label_set("r") }, { "genre", "genre" })

local r = function(a, b)
  return { start = { line = a, character = 0 }, ["end"] = { line = b, character = 0 } }
end
local tunes = { { title = "A", range = r(2, 6) }, { title = "B", range = r(8, 12) } }
check("tune under the cursor", t.tune_at(tunes, 9).title, "B")
check("outside every tune: the first", t.tune_at(tunes, 0).title, "A")
check("no tunes", t.tune_at({}, 0), nil)

local items = t.match_items({
  { uri = "file:///tmp/x.abc", range = r(4, 4), title = "The Kesh", score = 0.8123, corpus = "workspace", explanation = "same notes" },
  { uri = "file:///tmp/y.abc", range = r(0, 1), title = vim.NIL, score = 0.5, collection = vim.NIL },
}, "utf-16")
check("quickfix item place", { items[1].filename, items[1].lnum, items[1].col }, { "/tmp/x.abc", 5, 1 })
check("quickfix item text", items[1].text, "The Kesh  0.81  [workspace]  same notes")
check("untitled, null collection", items[2].text, "(untitled)  0.50")

check("opener: default", t.open_argv(nil, "/tmp/p.html"), nil)
check("opener: empty", { t.open_argv("", "/p"), t.open_argv({}, "/p") }, {})
check("opener: list", t.open_argv({ "firefox", "--new-tab" }, "/tmp/p.html"), { "firefox", "--new-tab", "/tmp/p.html" })
check("opener: string", t.open_argv(" firefox  --new-tab ", "/tmp/p.html"), { "firefox", "--new-tab", "/tmp/p.html" })
local opened
local f = function(p)
  opened = p
end
check("opener: function", t.open_argv(f, "/p"), f)
t.config.open_cmd = f
t.open("/tmp/page.html")
check("open calls the configured function", opened, "/tmp/page.html")
t.config.open_cmd = nil

t.setup({ model_dir = "~/m", corpora = { "/c" }, window_bars = 8 })
check("init options", t.init_options(t.config), {
  device = "auto", windowBars = 8, genreField = "R", modelDir = vim.fn.expand("~/m"), corpora = { "/c" },
})
check("commands defined", vim.fn.exists(":TunelensSimilar") * vim.fn.exists(":TunelensSearch") * vim.fn.exists(":TunelensGenre") * vim.fn.exists(":TunelensCompare"), 2 * 2 * 2 * 2)

print(string.format("nvim-unit: %d passed, %d failed", passed, failed))
vim.cmd(failed == 0 and "qall!" or "cquit 1")
