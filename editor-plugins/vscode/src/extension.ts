// The VS Code side of tunelens: starts `tunelens lsp` for ABC files and adds the commands that
// standard LSP has no verb for. Hover, code lens, code actions and diagnostics come from the
// server through vscode-languageclient unchanged; everything here is thin glue over ./core.
import * as os from "node:os";
import * as vscode from "vscode";
import {
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressBegin,
  type WorkDoneProgressReport,
  type WorkDoneProgressEnd,
} from "vscode-languageclient/node";
import { compareHoverLink, compareTitle, openTarget } from "./core/compare";
import { labelSetFor, setHeaderField } from "./core/header";
import { labelItems, matchItem, type Progress, statusText, statusTooltip, tuneAt } from "./core/present";
import {
  type ClassifyResult,
  type CompareResult,
  type Match,
  Methods,
  type Position,
  type SearchResult,
  type SimilarResult,
  type StatusResult,
} from "./core/protocol";
import { readSettings, resolveServer, ServerNotFound, serverOptions, type Settings } from "./core/settings";

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
let lastStatus: StatusResult | undefined;
let lastError: string | undefined;
const progress = new Map<string | number, Progress>();
let poll: NodeJS.Timeout | undefined;
let comparePanel: vscode.WebviewPanel | undefined;
let compareSource: vscode.ViewColumn | undefined;

function settings(): Settings {
  const cfg = vscode.workspace.getConfiguration("tunelens");
  return readSettings((key) => cfg.get(key));
}

function workspaceDir(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function options(): Record<string, unknown> {
  return serverOptions(settings(), workspaceDir(), os.homedir());
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("tunelens", { log: true });
  statusItem = vscode.window.createStatusBarItem("tunelens.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "tunelens";
  statusItem.command = "tunelens.showStatus";
  renderStatus();
  statusItem.show();

  const command = (id: string, run: (...args: any[]) => Promise<unknown>) =>
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: any[]) => {
        try {
          await run(...args);
        } catch (e) {
          vscode.window.showErrorMessage(`tunelens: ${e instanceof Error ? e.message : String(e)}`);
        }
      }),
    );
  // Not tunelens.findSimilar / tunelens.suggestGenre: the server lists those as its own
  // commands (code lens), and the client library registers them to forward to it.
  command("tunelens.findSimilarPassages", findSimilar);
  command("tunelens.compare", compare);
  command("tunelens.searchCorpus", searchCorpus);
  command("tunelens.chooseGenre", suggestGenre);
  command("tunelens.indexFolder", indexFolder);
  command("tunelens.showStatus", showStatus);
  command("tunelens.restartServer", async () => {
    await stopClient();
    await startClient(context);
  });

  context.subscriptions.push(
    statusItem,
    output,
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("tunelens")) return;
      if (e.affectsConfiguration("tunelens.serverPath") || e.affectsConfiguration("tunelens.serverArgs") || !client) {
        await stopClient();
        await startClient(context);
      } else {
        await client.sendNotification("workspace/didChangeConfiguration", { settings: { tunelens: options() } });
      }
    }),
    { dispose: () => void stopClient() },
  );
  await startClient(context);
}

export function deactivate(): Promise<void> {
  return stopClient();
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const s = settings();
  let exe: string;
  try {
    exe = resolveServer(s.serverPath, workspaceDir(), process.env);
  } catch (e) {
    if (!(e instanceof ServerNotFound)) throw e;
    lastError = e.message;
    renderStatus();
    const open = "Open settings";
    vscode.window.showErrorMessage(`tunelens: ${e.message}`, open).then((choice) => {
      if (choice === open) vscode.commands.executeCommand("workbench.action.openSettings", "tunelens.serverPath");
    });
    return;
  }
  const server: ServerOptions = { command: exe, args: s.serverArgs, options: { env: process.env } };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "abc" },
      { scheme: "untitled", language: "abc" },
    ],
    initializationOptions: options(),
    outputChannel: output,
    middleware: {
      // A passage's hover ends with a link to the same list engraved (the compare page).
      provideHover: async (document, position, token, next) => {
        const hover = await next(document, position, token);
        if (!hover) return hover;
        const text = hover.contents.map((c) => (typeof c === "string" ? c : c.value)).join("\n");
        const link = compareHoverLink(text, document.uri.toString(), { line: position.line, character: position.character });
        if (!link) return hover;
        const md = new vscode.MarkdownString(link, true);
        // Trusted for this one command only: the rest of the hover stays untrusted.
        md.isTrusted = { enabledCommands: ["tunelens.compare"] };
        return new vscode.Hover([...hover.contents, md], hover.range);
      },
      workspace: {
        // Answer workspace/configuration with the expanded paths the server can use as they are.
        configuration: (params, token, next) =>
          params.items.map((item) => (item.section === "tunelens" ? options() : null)),
      },
    },
  };
  client = new LanguageClient("tunelens", "tunelens", server, clientOptions);
  client.onDidChangeState((e) => {
    if (e.newState === State.Stopped) {
      lastStatus = undefined;
      progress.clear();
      renderStatus();
    }
  });
  try {
    await client.start();
  } catch (e) {
    lastError = `the server did not start: ${e instanceof Error ? e.message : String(e)}`;
    renderStatus();
    vscode.window.showErrorMessage(`tunelens: ${lastError} (see Output → tunelens)`);
    return;
  }
  lastError = undefined;
  trackProgress(client);
  schedulePoll(0);
}

async function stopClient(): Promise<void> {
  if (poll) clearTimeout(poll);
  poll = undefined;
  const c = client;
  client = undefined;
  if (c && c.state !== State.Stopped) await c.stop().catch(() => undefined);
}

/** Server-started work-done progress goes to the status bar, where indexing is expected. */
function trackProgress(c: LanguageClient): void {
  c.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    c.onProgress(WorkDoneProgress.type, token, (value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
      if (value.kind === "begin") {
        progress.set(token, { title: value.title, message: value.message, percentage: value.percentage });
      } else if (value.kind === "report") {
        const p = progress.get(token) ?? { title: "indexing" };
        progress.set(token, { ...p, message: value.message ?? p.message, percentage: value.percentage ?? p.percentage });
      } else {
        progress.delete(token);
        schedulePoll(0);
      }
      renderStatus();
    });
  });
}

function renderStatus(): void {
  const current = [...progress.values()].pop();
  statusItem.text = statusText(lastStatus, current, lastError);
  statusItem.tooltip = statusTooltip(lastStatus, lastError);
}

/** tunelens/status now and then: often while indexing, rarely when idle. */
function schedulePoll(ms: number): void {
  if (poll) clearTimeout(poll);
  poll = setTimeout(async () => {
    const c = client;
    if (!c || c.state !== State.Running) return;
    try {
      lastStatus = await c.sendRequest<StatusResult>(Methods.status, {});
    } catch (e) {
      output.appendLine(`tunelens/status failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    renderStatus();
    schedulePoll(lastStatus?.indexing || progress.size ? 2000 : 15000);
  }, ms);
}

function running(): LanguageClient {
  if (!client || client.state !== State.Running) {
    throw new Error(lastError ?? "the language server is not running (see Output → tunelens)");
  }
  return client;
}

/** The document and position a command works on: its arguments (from a code lens) or the cursor. */
function target(uri?: string | vscode.Uri, position?: Position): { uri: vscode.Uri; position: vscode.Position } {
  if (uri) {
    const u = typeof uri === "string" ? vscode.Uri.parse(uri) : uri;
    const p = position ? new vscode.Position(position.line, position.character) : new vscode.Position(0, 0);
    return { uri: u, position: p };
  }
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== "abc") throw new Error("open an ABC file first");
  return { uri: editor.document.uri, position: editor.selection.active };
}

function location(c: LanguageClient, m: Match): vscode.Location {
  return new vscode.Location(c.protocol2CodeConverter.asUri(m.uri), c.protocol2CodeConverter.asRange(m.range));
}

/**
 * Sends `method` for a place (the given one, or the cursor's), with `title` in the status bar
 * while it runs: what "find similar" and "compare" both ask.
 */
async function requestAt<R>(
  method: string,
  title: string,
  uri?: string | vscode.Uri,
  position?: Position,
): Promise<{ c: LanguageClient; t: { uri: vscode.Uri; position: vscode.Position }; result: R }> {
  const c = running();
  const t = target(uri, position);
  const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title }, () =>
    c.sendRequest<R>(method, {
      textDocument: { uri: c.code2ProtocolConverter.asUri(t.uri) },
      position: c.code2ProtocolConverter.asPosition(t.position),
    }),
  );
  return { c, t, result };
}

async function findSimilar(uri?: string | vscode.Uri, position?: Position): Promise<void> {
  const { c, t, result } = await requestAt<SimilarResult>(
    Methods.similar,
    "tunelens: finding similar passages",
    uri,
    position,
  );
  if (!result.matches.length) {
    vscode.window.showInformationMessage("tunelens: no similar passages found");
    return;
  }
  await vscode.commands.executeCommand(
    "editor.action.showReferences",
    t.uri,
    t.position,
    result.matches.map((m) => location(c, m)),
  );
}

/**
 * tunelens/compare for the cursor's passage: the server's page (the passage and its matches
 * engraved with abcjs, inlined, so nothing is fetched) in one webview panel beside the editor,
 * reused by later calls. A click on a location link in the page posts {command: "open", ...}.
 */
async function compare(uri?: string | vscode.Uri, position?: Position): Promise<void> {
  const { result } = await requestAt<CompareResult>(
    Methods.compare,
    "tunelens: comparing with similar passages",
    uri,
    position,
  );
  compareSource = vscode.window.activeTextEditor?.viewColumn ?? vscode.ViewColumn.One;
  if (!comparePanel) {
    comparePanel = vscode.window.createWebviewPanel(
      "tunelens.compare",
      compareTitle(result),
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false },
      { enableScripts: true, retainContextWhenHidden: true },
    );
    comparePanel.onDidDispose(() => (comparePanel = undefined));
    comparePanel.webview.onDidReceiveMessage(async (msg: unknown) => {
      const place = openTarget(msg);
      if (!place) return;
      try {
        const pos = new vscode.Position(place.line, 0);
        await vscode.window.showTextDocument(vscode.Uri.parse(place.uri), {
          viewColumn: compareSource ?? vscode.ViewColumn.One,
          selection: new vscode.Range(pos, pos),
        });
      } catch (e) {
        vscode.window.showErrorMessage(`tunelens: cannot open ${place.uri}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  } else {
    comparePanel.title = compareTitle(result);
    comparePanel.reveal(undefined, false);
  }
  comparePanel.webview.html = result.html;
  if (result.passages < 2) vscode.window.showInformationMessage("tunelens: no similar passages found");
}

async function searchCorpus(text?: string): Promise<void> {
  const c = running();
  const query =
    typeof text === "string"
      ? text
      : await vscode.window.showInputBox({
          title: "tunelens: search corpus by description",
          prompt: "Describe the tune",
          placeHolder: "a lively jig in D major",
        });
  if (!query) return;
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: "tunelens: searching" },
    () => c.sendRequest<SearchResult>(Methods.search, { text: query, level: "tune", k: 20 }),
  );
  if (!result.matches.length) {
    vscode.window.showInformationMessage(`tunelens: nothing found for "${query}"`);
    return;
  }
  const pick = await vscode.window.showQuickPick(
    result.matches.map((m) => ({ ...matchItem(m), match: m })),
    { title: `tunelens: "${query}"`, matchOnDescription: true, matchOnDetail: true },
  );
  if (!pick) return;
  const loc = location(c, pick.match);
  await vscode.window.showTextDocument(loc.uri, { selection: new vscode.Range(loc.range.start, loc.range.start) });
}

async function suggestGenre(uri?: string | vscode.Uri, position?: Position): Promise<void> {
  const c = running();
  const t = target(uri, position);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: "tunelens: classifying" },
    () =>
      c.sendRequest<ClassifyResult>(Methods.classify, {
        textDocument: { uri: c.code2ProtocolConverter.asUri(t.uri) },
        labelSet: labelSetFor(settings().genreField),
      }),
  );
  const tune = tuneAt(result.tunes, { line: t.position.line, character: t.position.character });
  if (!tune || !tune.labels.length) {
    vscode.window.showInformationMessage("tunelens: no tune to classify here");
    return;
  }
  const field = settings().genreField;
  const pick = await vscode.window.showQuickPick(labelItems(tune), {
    title: `tunelens: ${labelSetFor(field)} of "${tune.title ?? "this tune"}" (sets ${field}:)`,
  });
  if (!pick) return;
  const doc = await vscode.workspace.openTextDocument(t.uri);
  const lines = doc.getText().split(/\r?\n/);
  const edit = setHeaderField(lines, tune.range.start.line, field, pick.label);
  if (!edit) throw new Error(`"${tune.title ?? "this tune"}" has no K: line to put ${field}: before`);
  const we = new vscode.WorkspaceEdit();
  we.replace(t.uri, new vscode.Range(edit.line, 0, edit.endLine, 0), edit.text);
  await vscode.workspace.applyEdit(we);
}

async function indexFolder(folder?: vscode.Uri): Promise<void> {
  const c = running();
  let uri = folder;
  if (!uri) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFiles: false,
      canSelectFolders: true,
      canSelectMany: false,
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
      openLabel: "Index",
      title: "tunelens: index folder",
    });
    uri = picked?.[0];
  }
  if (!uri) return;
  await c.sendRequest(Methods.reindex, { uri: c.code2ProtocolConverter.asUri(uri) });
  vscode.window.showInformationMessage(`tunelens: indexing ${vscode.workspace.asRelativePath(uri)}`);
  schedulePoll(500);
}

async function showStatus(): Promise<void> {
  const c = running();
  lastStatus = await c.sendRequest<StatusResult>(Methods.status, {});
  renderStatus();
  output.appendLine(statusTooltip(lastStatus));
  vscode.window.showInformationMessage(statusTooltip(lastStatus).split("\n").join(" · "));
}
