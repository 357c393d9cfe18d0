// The VS Code extension end to end, in real VS Code: code-server (VS Code 1.100 in the browser)
// with the packaged .vsix installed, driven by playwright-core in Debian's headless Chromium,
// against the real `tunelens lsp`.
//
//   TUNELENS_BIN=target/debug/tunelens TUNELENS_MODEL=../shared/fixtures/clamp-tiny-bert \
//   node editor-plugins/e2e/vscode.e2e.js [--vsix editor-plugins/vscode/tunelens.vsix] [--screenshot docs/screenshots/vscode-hover.png]
//     [--compare-screenshot docs/screenshots/vscode-compare.png]
//
// Asserts: the hover on The Kesh's first bars names "The Borrowed Jig" (which quotes them);
// "tunelens: Find similar passages" from the palette lists session.abc in the references view;
// the genre code action on the header writes one R: line, the label its title names, before K:;
// "tunelens: Compare with similar passages" opens a webview whose page engraved every passage
// with abcjs (its #tunelens-report: staves drawn, no errors), and a click on a match's location
// link there opens that file at that line (when the server's page has data-uri links).
"use strict";
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const here = __dirname;
const repo = path.resolve(here, "..", "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? path.resolve(process.argv[i + 1]) : dflt;
};
const vsix = arg("--vsix", path.join(repo, "editor-plugins/vscode/tunelens.vsix"));
const shot = arg("--screenshot", path.join(repo, "docs/screenshots/vscode-hover.png"));
const compareShot = arg("--compare-screenshot", path.join(os.tmpdir(), "tunelens-vscode-compare.png"));
const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`set ${name}`);
  return path.resolve(v);
};
const bin = need("TUNELENS_BIN");
const model = need("TUNELENS_MODEL");
const timeoutMs = Number(process.env.TUNELENS_TIMEOUT_MS || 90000);
const codeServer = path.join(here, "node_modules/.bin/code-server");

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.error(`FAIL ${name}${detail ? `\n  ${detail}` : ""}`);
  }
}

async function until(what, fn, ms = timeoutMs, every = 500) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : last})`);
}

async function main() {
  for (const f of [vsix, bin, codeServer, "/usr/bin/chromium"]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing (scripts/test-editors.sh builds and installs it)`);
  }
  // Everything code-server and Chromium write lives in one temp dir.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelens-vscode-e2e-"));
  const ws = path.join(tmp, "workspace");
  fs.cpSync(path.join(here, "workspace"), ws, { recursive: true });
  const dirs = { config: path.join(tmp, "config.yaml"), user: path.join(tmp, "user"), ext: path.join(tmp, "ext") };
  fs.mkdirSync(path.join(dirs.user, "User"), { recursive: true });
  fs.writeFileSync(dirs.config, "auth: none\n");
  fs.writeFileSync(
    path.join(dirs.user, "User/settings.json"),
    JSON.stringify(
      {
        "workbench.startupEditor": "none",
        "security.workspace.trust.enabled": false,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoUpdate": false,
        "extensions.autoCheckUpdates": false,
        "extensions.ignoreRecommendations": true,
        "workbench.welcomePage.walkthroughs.openOnInstall": false,
        "workbench.tips.enabled": false,
        "editor.hover.delay": 100,
        "workbench.reduceMotion": "on",
        "window.zoomLevel": 0,
        "tunelens.serverPath": bin,
        "tunelens.modelDir": model,
        "tunelens.device": "cpu",
        "tunelens.dbPath": path.join(tmp, "index.sled"),
      },
      null,
      2,
    ),
  );
  const env = {
    ...process.env,
    HOME: tmp,
    XDG_CONFIG_HOME: path.join(tmp, "xdg-config"),
    XDG_DATA_HOME: path.join(tmp, "xdg-data"),
    XDG_CACHE_HOME: path.join(tmp, "xdg-cache"),
    TMPDIR: tmp,
  };
  const common = ["--config", dirs.config, "--user-data-dir", dirs.user, "--extensions-dir", dirs.ext];
  execFileSync(codeServer, [...common, "--install-extension", vsix], { env, stdio: ["ignore", "ignore", "inherit"] });

  const port = 20000 + (process.pid % 20000);
  const log = fs.openSync(path.join(tmp, "code-server.log"), "w");
  // Its own process group: the extension host and the language server it starts live there,
  // and one kill ends them all.
  const server = spawn(
    codeServer,
    [
      ...common,
      "--bind-addr",
      `127.0.0.1:${port}`,
      "--auth",
      "none",
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
      "--disable-getting-started-override",
      ws,
    ],
    { env, detached: true, stdio: ["ignore", log, log] },
  );
  let browser;
  let page;
  try {
    const base = `http://127.0.0.1:${port}`;
    await until("code-server /healthz", async () => (await fetch(`${base}/healthz`)).ok, 30000, 200);
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    page = await context.newPage();
    await page.goto(`${base}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.explorer-folders-view .monaco-list-row[aria-label*="kesh.abc"]').waitFor({ timeout: 60000 });

    const openFile = async (name) => {
      await page.keyboard.press("Control+P");
      await page.keyboard.type(name);
      await page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor();
      await page.keyboard.press("Enter");
      await page.locator(`.tab[aria-label*="${name}"]`).waitFor();
      await page.locator(".monaco-editor .view-lines").first().click();
    };
    const goTo = async (line, col) => {
      await page.keyboard.press("Control+G");
      await page.keyboard.type(`${line}:${col}`);
      await page.keyboard.press("Enter");
    };
    const palette = async (title) => {
      await page.keyboard.press("F1");
      await page.keyboard.type(title);
      await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
      await page.keyboard.press("Enter");
    };

    await openFile("kesh.abc");
    await until("the status bar item", async () => (await page.locator("#tunelens\\.tunelens\\.status, [id*='tunelens.status']").count()) > 0, 30000);

    // Hover: line 6 is The Kesh's first bar line; the server answers once it has indexed.
    const hoverText = await until("a hover naming The Borrowed Jig", async () => {
      await page.keyboard.press("Escape");
      await goTo(6, 12);
      await page.keyboard.press("Control+K");
      await page.keyboard.press("Control+I");
      const hover = page.locator(".monaco-hover:not(.hidden)").first();
      await hover.waitFor({ timeout: 3000 });
      const text = await hover.innerText();
      return text.includes("Borrowed Jig") ? text : false;
    });
    check("hover names the similar passage", hoverText.includes("Borrowed Jig"), hoverText);
    check("hover links to the compare page", hoverText.includes("See them engraved"), hoverText);
    // The hover fades in even with reduced motion: photograph it once it is opaque.
    await page.waitForFunction(() => {
      const h = document.querySelector(".monaco-hover:not(.hidden)");
      if (!h || h.getAnimations({ subtree: true }).some((a) => a.playState === "running")) return false;
      for (let e = h; e; e = e.parentElement) if (getComputedStyle(e).opacity !== "1") return false;
      return true;
    }, undefined, { timeout: 5000 });
    await page.waitForTimeout(200);
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });

    // Find similar passages → the references peek view.
    await page.keyboard.press("Escape");
    await goTo(6, 12);
    await palette("tunelens: Find similar passages");
    const rows = page.locator(".peekview-widget .ref-tree .monaco-list-row");
    await rows.first().waitFor({ timeout: 30000 });
    const refs = (await rows.allInnerTexts()).join(" | ");
    check("references view lists session.abc", refs.includes("session.abc"), refs);
    await page.keyboard.press("Escape");

    // The genre code action on the header of The Kesh, then save and read the file.
    await goTo(2, 3);
    const action = await until("a 'Set R:' code action", async () => {
      await page.keyboard.press("Escape");
      await page.keyboard.press("Control+.");
      const item = page.locator(".action-widget .monaco-list-row", { hasText: "Set R:" }).first();
      await item.waitFor({ timeout: 3000 });
      return item;
    }, 30000, 1000);
    const title = (await action.innerText()).trim();
    // The widget takes the keyboard (a pointer block covers it from the mouse): move the focus
    // onto the action and accept it.
    for (let i = 0; i < 20; i++) {
      const focused = await page.locator(".action-widget .monaco-list-row.focused").innerText().catch(() => "");
      if (focused.includes("Set R:")) break;
      await page.keyboard.press("ArrowDown");
    }
    await page.keyboard.press("Enter");
    await page.keyboard.press("Control+S");
    const file = path.join(ws, "kesh.abc");
    const lines = await until(
      "kesh.abc saved with an R: line",
      async () => {
        const l = fs.readFileSync(file, "utf8").split("\n");
        return l.some((x) => x.startsWith("R:")) ? l : false;
      },
      10000,
    );
    // One R: line, just before K: (where the server and the plugins put a new field), holding the label the action's
    // title names (labels may have spaces: "slip jig"), and nothing else changed.
    const original = fs.readFileSync(path.join(here, "workspace", "kesh.abc"), "utf8").split("\n");
    const rs = lines.flatMap((x, i) => (x.startsWith("R:") ? [i] : []));
    const r = rs[0];
    const rest = lines.filter((_, i) => i !== r);
    check(
      "code action wrote one R: line, the title's label, before K:",
      rs.length === 1 &&
        lines[r].length > 2 &&
        title.includes(`Set R: ${lines[r].slice(2)}`) &&
        lines[r + 1].startsWith("K:") &&
        JSON.stringify(rest) === JSON.stringify(original),
      `${title}\n  ${lines.slice(0, 7).join(" / ")}`,
    );

    // Compare with similar passages → a webview panel with the server's page. The webview is an
    // iframe holding another iframe (the page); find the frame that has the page's report.
    const barLine = lines.findIndex((x) => x.startsWith("|:GAG GAB|")) + 1;
    await goTo(barLine, 12);
    await palette("tunelens: Compare with similar passages");
    const pageFrame = async () => {
      for (const f of page.frames()) {
        const text = await f.evaluate(() => document.getElementById("tunelens-report")?.textContent || "").catch(() => "");
        if (text) return { frame: f, report: JSON.parse(text) };
      }
      return false;
    };
    const { frame, report } = await until("the compare page's report in a webview", pageFrame, 60000);
    const svgs = await frame.locator("#passages svg").count();
    check(
      "compare page engraved every passage with abcjs",
      report.passages >= 2 &&
        report.rendered.length === report.passages &&
        report.rendered.every((n) => n >= 1) &&
        report.staves >= report.passages &&
        svgs >= report.passages &&
        String(report.abcjs).startsWith("abcjs") &&
        report.errors.length === 0,
      `${JSON.stringify(report)}; ${svgs} svg`,
    );
    const tab = await page.locator(".editor-group-container.active .tab.active").first().getAttribute("aria-label");
    check("compare panel title names kesh.abc", /Compare: kesh\.abc/.test(tab || ""), tab);
    await page.waitForTimeout(300);
    fs.mkdirSync(path.dirname(compareShot), { recursive: true });
    await page.screenshot({ path: compareShot });

    // A click on the first match's location link opens that file at that line (the page posts
    // {command: "open", uri, line}). The server embeds assets/compare/compare.js as checked
    // out, so a page without data-uri links is a failure, not a skip.
    const link = frame.locator("#passage-1 a.location[data-uri]");
    check("the compare page's location links carry data-uri", (await link.count()) > 0, "no a.location[data-uri] in #passage-1");
    if (await link.count()) {
      const uri = await link.getAttribute("data-uri");
      const want = Number(await link.getAttribute("data-line"));
      const name = decodeURIComponent(uri.split("/").pop());
      await link.click();
      const cursor = await until(
        `${name} open at line ${want}`,
        async () => {
          const active = (await page.locator(".editor-group-container.active .tab.active").first().getAttribute("aria-label")) || "";
          const sel = await page.locator("[id='status.editor.selection']").first().innerText().catch(() => "");
          return active.includes(name) && sel.includes(`Ln ${want},`) ? `${active} ${sel}` : false;
        },
        15000,
      ).catch((e) => e.message);
      check("a location link in the compare page opens the file at its line", cursor.includes(name) && cursor.includes(`Ln ${want},`), cursor);
    }
  } catch (e) {
    // What the screen showed when it went wrong, beside the log.
    if (page) await page.screenshot({ path: path.join(os.tmpdir(), "tunelens-vscode-e2e-failure.png") }).catch(() => undefined);
    throw e;
  } finally {
    if (browser) await browser.close().catch(() => undefined);
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
    if (failed && process.env.TUNELENS_KEEP_TMP !== "1") {
      console.error(`code-server log:\n${fs.readFileSync(path.join(tmp, "code-server.log"), "utf8").slice(-4000)}`);
    }
    if (process.env.TUNELENS_KEEP_TMP !== "1") fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main()
  .catch((e) => {
    failed++;
    console.error(`FAIL ${e.stack || e}`);
  })
  .finally(() => {
    console.log(`vscode-e2e: ${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
