// The compare page's links, in headless Chromium (playwright-core), built from this checkout's
// assets/compare (template, abcjs, compare.js) and sample-data.json the way tunelens builds it,
// so it tests compare.js as it is here, whatever the server binary embeds:
//
//   node editor-plugins/e2e/compare-page.e2e.js
//
// Asserts: every location link carries data-uri (the passage's uri) and data-line (its 1-based
// line); outside VS Code a click is left to the browser (not prevented); inside a VS Code
// webview (acquireVsCodeApi defined) acquireVsCodeApi is called once and a click is prevented
// and posts {command: "open", uri, line}; the page still engraves every passage.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const assets = path.resolve(__dirname, "..", "..", "assets", "compare");
const read = (name) => fs.readFileSync(path.join(assets, name), "utf8");
const data = JSON.parse(read("sample-data.json"));

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.error(`FAIL ${name}${detail ? `\n  ${detail}` : ""}`);
  }
}

function build() {
  let page = read("template.html");
  const dataJs = JSON.stringify(data).replace(/</g, "\\u003c");
  for (const [token, text] of [
    ["/*TUNELENS_ABCJS*/", read("vendor/abcjs-basic-min.js")],
    ["/*TUNELENS_COMPARE_JS*/", read("compare.js")],
    ["/*TUNELENS_DATA*/", dataJs],
  ]) {
    if (page.split(token).length !== 2) throw new Error(`template: ${token} not exactly once`);
    const i = page.indexOf(token);
    page = page.slice(0, i) + text + page.slice(i + token.length);
  }
  return page;
}

// Clicks each passage's location link; a window listener (after the page's own) records whether
// the click was prevented and prevents it itself, so the test page never navigates.
async function clickLinks(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("a.location")].map((a) => {
      let prevented = null;
      const after = (ev) => {
        prevented = ev.defaultPrevented;
        ev.preventDefault();
      };
      window.addEventListener("click", after);
      a.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
      window.removeEventListener("click", after);
      return { uri: a.getAttribute("data-uri"), line: a.getAttribute("data-line"), href: a.href, prevented };
    }),
  );
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  try {
    const html = build();
    for (const inVsCode of [false, true]) {
      const where = inVsCode ? "in a VS Code webview" : "in a browser";
      const context = await browser.newContext();
      if (inVsCode) {
        await context.addInitScript(() => {
          window.__acquired = 0;
          window.__posted = [];
          window.acquireVsCodeApi = () => {
            window.__acquired++;
            return { postMessage: (m) => window.__posted.push(m), getState: () => undefined, setState: () => undefined };
          };
        });
      }
      const page = await context.newPage();
      await page.setContent(html);
      await page.waitForFunction(() => document.getElementById("tunelens-report").textContent !== "");
      const report = JSON.parse(await page.locator("#tunelens-report").textContent());
      check(`${where}: every passage engraved, no errors`, report.rendered.length === data.passages.length && report.rendered.every((n) => n >= 1) && report.errors.length === 0, JSON.stringify(report));
      const links = await clickLinks(page);
      const want = data.passages.map((p) => ({ uri: p.uri, line: String(p.line) }));
      check(`${where}: location links carry data-uri and data-line`, JSON.stringify(links.map(({ uri, line }) => ({ uri, line }))) === JSON.stringify(want), JSON.stringify(links));
      check(`${where}: links keep their file:// href`, links.every((l, i) => l.href === data.passages[i].uri), JSON.stringify(links));
      if (inVsCode) {
        const { acquired, posted } = await page.evaluate(() => ({ acquired: window.__acquired, posted: window.__posted }));
        check(`${where}: acquireVsCodeApi called once`, acquired === 1, String(acquired));
        check(`${where}: clicks are prevented`, links.every((l) => l.prevented === true), JSON.stringify(links));
        check(
          `${where}: each click posts {command: "open", uri, line}`,
          JSON.stringify(posted) === JSON.stringify(data.passages.map((p) => ({ command: "open", uri: p.uri, line: p.line }))),
          JSON.stringify(posted),
        );
      } else {
        check(`${where}: clicks are left to the browser`, links.every((l) => l.prevented === false), JSON.stringify(links));
      }
      await context.close();
    }
  } finally {
    await browser.close();
  }
}

main()
  .catch((e) => {
    failed++;
    console.error(`FAIL ${e.stack || e}`);
  })
  .finally(() => {
    console.log(`compare-page: ${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
