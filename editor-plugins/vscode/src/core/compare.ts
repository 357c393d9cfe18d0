// The compare page in a webview: its title, and the "open" message its location links post
// (assets/compare/compare.js: {command: "open", uri, line} with a 1-based line).
// Plain data: shared by the extension and its unit tests, which run without VS Code.
import * as path from "node:path";
import type { CompareResult } from "./protocol";

/** Where a location link leads: a file:// URI and a 0-based line. */
export interface OpenTarget {
  uri: string;
  line: number;
}

/**
 * The place an `open` message from the page asks for, or undefined for anything else (other
 * messages, other URI schemes, malformed fields). A missing or bad line opens the file's top.
 */
export function openTarget(msg: unknown): OpenTarget | undefined {
  if (!msg || typeof msg !== "object") return undefined;
  const m = msg as { command?: unknown; uri?: unknown; line?: unknown };
  if (m.command !== "open" || typeof m.uri !== "string" || !/^file:\/\//i.test(m.uri)) return undefined;
  const line = typeof m.line === "number" && Number.isInteger(m.line) && m.line >= 1 ? m.line - 1 : 0;
  return { uri: m.uri, line };
}

/** The panel's title: the query's file and bars, e.g. "Compare: kesh.abc, bars 1–4". */
export function compareTitle(result: Pick<CompareResult, "query">): string {
  let file = result.query.uri;
  try {
    file = path.basename(decodeURIComponent(new URL(file).pathname));
  } catch {
    // Not a URL: keep it as it is.
  }
  const bars = result.query.bars;
  return bars ? `Compare: ${file}, bars ${bars[0]}–${bars[1]}` : `Compare: ${file}`;
}

/**
 * The markdown line a passage's hover ends with: a command link that opens the compare page
 * for the hovered place (`tunelens.compare` with the document's URI and the LSP position).
 * Only a hover that lists similar passages gets it (the server's "Similar passages:" list).
 */
export function compareHoverLink(hoverText: string, uri: string, position: { line: number; character: number }): string | undefined {
  if (!hoverText.includes("Similar passages:")) return undefined;
  const args = encodeURIComponent(JSON.stringify([uri, { line: position.line, character: position.character }]));
  return `[$(preview) See them engraved](command:tunelens.compare?${args} "Compare with similar passages")`;
}
