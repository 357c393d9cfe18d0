// node --test: settings → server command and initializationOptions.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { readSettings, resolveServer, serverOptions, expandPath, ServerNotFound, DEFAULTS } = require("../out/core/settings");

test("defaults when nothing is set, and bad values fall back", () => {
  assert.deepEqual(readSettings(() => undefined), DEFAULTS);
  const s = readSettings((k) => ({ device: "tpu", windowBars: 2.5, corpora: ["", "a", 3], serverPath: "  " })[k]);
  assert.equal(s.device, "auto");
  assert.equal(s.windowBars, 4);
  assert.deepEqual(s.corpora, ["a"]);
  assert.equal(s.serverPath, "tunelens");
});

test("paths: ~, ${workspaceFolder} and relative ones", () => {
  assert.equal(expandPath("~/models/clamp", "/ws", "/home/me"), "/home/me/models/clamp");
  assert.equal(expandPath("${workspaceFolder}/db", "/ws", "/home/me"), "/ws/db");
  assert.equal(expandPath("tunes", "/ws", "/home/me"), "/ws/tunes");
  assert.equal(expandPath("/abs", "/ws", "/home/me"), "/abs");
});

test("initializationOptions carry only what is set, with paths expanded", () => {
  const s = readSettings((k) => ({ modelDir: "~/m", corpora: ["folk"], windowBars: 8, device: "cpu" })[k]);
  assert.deepEqual(serverOptions(s, "/ws", "/h"), {
    device: "cpu",
    windowBars: 8,
    genreField: "R",
    modelDir: "/h/m",
    corpora: ["/ws/folk"],
  });
  assert.equal("dbPath" in serverOptions(DEFAULTS, "/ws", "/h"), false);
});

test("the server is found on PATH, and a missing one is a clear error", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tl-path-"));
  const bin = path.join(dir, "tunelens");
  fs.writeFileSync(bin, "#!/bin/sh\n");
  fs.chmodSync(bin, 0o755);
  fs.writeFileSync(path.join(dir, "noexec"), "");
  assert.equal(resolveServer("tunelens", undefined, { PATH: `/nonexistent:${dir}` }), bin);
  assert.throws(() => resolveServer("tunelens", undefined, { PATH: "/nonexistent" }), (e) => {
    assert.ok(e instanceof ServerNotFound);
    assert.match(e.message, /'tunelens' was not found on PATH/);
    return true;
  });
  assert.throws(() => resolveServer(path.join(dir, "noexec"), undefined, {}), /is not an executable file/);
  assert.equal(resolveServer("./tunelens", dir, {}), bin);
  fs.rmSync(dir, { recursive: true });
});
