// node --test: package.json promises only what the code does, and the code reads only what it declares.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { DEFAULTS } = require("../out/core/settings");

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
const source = fs.readFileSync(path.join(__dirname, "..", "src", "extension.ts"), "utf8");

test("every declared command is registered, and every registered one declared", () => {
  const declared = manifest.contributes.commands.map((c) => c.command).sort();
  const registered = [...source.matchAll(/command\("(tunelens\.[A-Za-z]+)"/g)].map((m) => m[1]).sort();
  assert.deepEqual(registered, declared);
  for (const c of manifest.contributes.commands) assert.equal(c.category, "tunelens");
});

test("the settings the code reads are the ones declared, with the same defaults", () => {
  const props = manifest.contributes.configuration.properties;
  for (const [key, value] of Object.entries(DEFAULTS)) {
    assert.ok(`tunelens.${key}` in props, `tunelens.${key} is not declared`);
    assert.deepEqual(props[`tunelens.${key}`].default, value, `default of tunelens.${key}`);
  }
});

test("the abc language is registered for .abc and activates the extension", () => {
  const abc = manifest.contributes.languages.find((l) => l.id === "abc");
  assert.deepEqual(abc.extensions, [".abc"]);
  assert.ok(manifest.activationEvents.includes("onLanguage:abc"));
  assert.ok(fs.existsSync(path.join(__dirname, "..", abc.configuration)));
});

test("no command id is one the server executes itself (the client library registers those)", () => {
  const server = ["tunelens.findSimilar", "tunelens.suggestGenre"];
  for (const c of manifest.contributes.commands) assert.ok(!server.includes(c.command), c.command);
});

test("the editor-only commands show in the palette and the context menu for abc files only", () => {
  const { commandPalette, "editor/context": context } = manifest.contributes.menus;
  for (const id of ["tunelens.findSimilarPassages", "tunelens.compare"]) {
    assert.equal(commandPalette.find((m) => m.command === id)?.when, "editorLangId == abc", id);
    assert.equal(context.find((m) => m.command === id)?.when, "editorLangId == abc", id);
  }
  assert.equal(manifest.contributes.commands.find((c) => c.command === "tunelens.compare").title, "Compare with similar passages");
});
