// node --test: status bar text, quick pick rows, the tune under the cursor.
const test = require("node:test");
const assert = require("node:assert/strict");
const { statusText, statusTooltip, matchItem, place, tuneAt, labelItems } = require("../out/core/present");

const status = {
  serverVersion: "0.1.0",
  protocolVersion: 1,
  model: { id: "sha256:ab12", name: "clamp-tiny-bert", dim: 64 },
  device: "cpu",
  corpora: [{ name: "workspace", files: 3, tunes: 7, passages: 40 }],
  queue: { pending: 2, running: 1 },
  indexing: false,
};

test("status bar: model and device, progress while indexing, errors", () => {
  assert.equal(statusText(status, undefined), "$(pulse) tunelens: clamp-tiny-bert · cpu");
  assert.equal(
    statusText({ ...status, indexing: true, filesDone: 3, filesTotal: 9 }, undefined),
    "$(sync~spin) tunelens: indexing 3/9 · clamp-tiny-bert · cpu",
  );
  assert.equal(
    statusText(status, { title: "indexing", message: "12/40 files", percentage: 30.4 }),
    "$(sync~spin) tunelens: indexing 30% 12/40 files",
  );
  assert.equal(statusText(undefined, undefined), "$(loading~spin) tunelens");
  assert.equal(statusText(status, undefined, "not found"), "$(error) tunelens");
  assert.match(statusTooltip(status), /workspace: 3 files, 7 tunes, 40 passages/);
  assert.match(statusTooltip({ ...status, model: null }), /model: none loaded/);
});

test("a match as a quick pick row names title, score, file:line and why", () => {
  const m = {
    uri: "file:///tunes/o%27neill.abc",
    range: { start: { line: 11, character: 0 }, end: { line: 12, character: 4 } },
    title: "The Kesh",
    corpus: "music21",
    collection: "oneills1850",
    score: 0.8123,
    explanation: "same notes a fifth up",
  };
  assert.equal(place(m), "o'neill.abc:12");
  assert.deepEqual(matchItem(m), {
    label: "The Kesh",
    description: "0.81 · o'neill.abc:12",
    detail: "music21 / oneills1850 — same notes a fifth up",
  });
  assert.equal(matchItem({ ...m, title: null, corpus: undefined, collection: null, explanation: null }).detail, "");
});

test("the tune under the cursor, else the first; labels best first", () => {
  const r = (a, b) => ({ start: { line: a, character: 0 }, end: { line: b, character: 0 } });
  const tunes = [
    { range: r(2, 6), title: "A", labels: [{ label: "reel", score: 0.1 }, { label: "jig", score: 0.8 }] },
    { range: r(8, 13), title: "B", labels: [] },
  ];
  assert.equal(tuneAt(tunes, { line: 9, character: 3 }).title, "B");
  assert.equal(tuneAt(tunes, { line: 6, character: 0 }).title, "A");
  assert.equal(tuneAt(tunes, { line: 0, character: 0 }).title, "A");
  assert.equal(tuneAt([], { line: 0, character: 0 }), undefined);
  assert.deepEqual(labelItems(tunes[0]), [
    { label: "jig", description: "0.80" },
    { label: "reel", description: "0.10" },
  ]);
});
