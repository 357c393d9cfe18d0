// node --test: the header edit that "Suggest genre" applies.
const test = require("node:test");
const assert = require("node:assert/strict");
const { setHeaderField, labelSetFor } = require("../out/core/header");

const file = [
  "%abc-2.1", // 0
  "", // 1
  "X:1", // 2
  "T:The Kesh", // 3
  "M:6/8", // 4
  "K:G", // 5
  "|:GAG GAB|ABA ABd:|", // 6
  "", // 7
  "X:2", // 8
  "T:Drowsy Maggie", // 9
  "R:hornpipe", // 10
  "M:4/4", // 11
  "K:Edor", // 12
  "|:E2BE dEBE|", // 13
];

function apply(lines, e) {
  const out = lines.slice(0, e.line).concat(e.text.replace(/\n$/, "").split("\n"), lines.slice(e.endLine));
  return out;
}

test("inserts R: just before K: when the tune has none", () => {
  const e = setHeaderField(file, 6, "R", "jig");
  assert.deepEqual(e, { line: 5, endLine: 5, text: "R:jig\n" });
  assert.deepEqual(apply(file, e).slice(2, 8), ["X:1", "T:The Kesh", "M:6/8", "R:jig", "K:G", "|:GAG GAB|ABA ABd:|"]);
});

test("replaces an existing R: line of the tune under the cursor, not another tune's", () => {
  const e = setHeaderField(file, 13, "R", "reel");
  assert.deepEqual(e, { line: 10, endLine: 11, text: "R:reel\n" });
  assert.equal(apply(file, e)[10], "R:reel");
  assert.equal(apply(file, e).length, file.length);
});

test("from the X: line itself", () => {
  assert.equal(setHeaderField(file, 2, "R", "jig").line, 5);
});

test("another field name", () => {
  assert.deepEqual(setHeaderField(file, 9, "G", "dance"), { line: 12, endLine: 12, text: "G:dance\n" });
});

test("no tune above the line, or a header without K:, gives nothing", () => {
  assert.equal(setHeaderField(file, 0, "R", "jig"), undefined);
  assert.equal(setHeaderField(["X:1", "T:No key", "", "abc|"], 3, "R", "jig"), undefined);
});

test("R: is scored with the rhythm labels, other fields with genre (as the server does)", () => {
  assert.equal(labelSetFor("R"), "rhythm");
  assert.equal(labelSetFor("G"), "genre");
  assert.equal(labelSetFor("r"), "genre");
});
