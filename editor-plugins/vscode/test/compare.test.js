// node --test: the compare page's "open" message and the panel title.
const test = require("node:test");
const assert = require("node:assert/strict");
const { openTarget, compareTitle, compareHoverLink } = require("../out/core/compare");

test("an open message becomes a file URI and a 0-based line", () => {
  assert.deepEqual(openTarget({ command: "open", uri: "file:///tunes/session.abc", line: 12 }), {
    uri: "file:///tunes/session.abc",
    line: 11,
  });
  assert.deepEqual(openTarget({ command: "open", uri: "file:///t/s%C3%A9amus.abc", line: 1 }), {
    uri: "file:///t/s%C3%A9amus.abc",
    line: 0,
  });
});

test("a missing or bad line opens the top of the file", () => {
  for (const line of [null, undefined, 0, -3, 2.5, "7"]) {
    assert.deepEqual(openTarget({ command: "open", uri: "file:///a.abc", line }), { uri: "file:///a.abc", line: 0 }, String(line));
  }
});

test("anything but an open message for a file:// URI is ignored", () => {
  for (const msg of [
    undefined,
    null,
    "open",
    {},
    { command: "close", uri: "file:///a.abc", line: 1 },
    { command: "open", line: 1 },
    { command: "open", uri: "https://thesession.org/tunes/1", line: 1 },
    { command: "open", uri: "javascript:alert(1)", line: 1 },
    { command: "open", uri: 42, line: 1 },
  ]) {
    assert.equal(openTarget(msg), undefined, JSON.stringify(msg));
  }
});

test("the panel title names the query's file and bars", () => {
  const range = { start: { line: 5, character: 0 }, end: { line: 5, character: 33 } };
  assert.equal(compareTitle({ query: { uri: "file:///w/my%20tunes/kesh.abc", range, bars: [1, 4] } }), "Compare: kesh.abc, bars 1–4");
  assert.equal(compareTitle({ query: { uri: "file:///w/kesh.abc", range } }), "Compare: kesh.abc");
  assert.equal(compareTitle({ query: { uri: "not a uri", range } }), "Compare: not a uri");
});

test("a hover that lists similar passages links to the compare page for its place", () => {
  const link = compareHoverLink("Similar passages:\n\n1. **The Borrowed Jig**", "file:///t/kesh.abc", { line: 6, character: 3 });
  assert.match(link, /^\[\$\(preview\) See them engraved\]\(command:tunelens\.compare\?/);
  const args = JSON.parse(decodeURIComponent(link.match(/\?([^ )]+)/)[1]));
  assert.deepEqual(args, ["file:///t/kesh.abc", { line: 6, character: 3 }]);
  assert.equal(compareHoverLink("**T:** The Kesh", "file:///t/kesh.abc", { line: 0, character: 0 }), undefined);
});
