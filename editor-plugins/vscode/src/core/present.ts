// How server answers are shown: status bar text, quick pick rows, the tune under the cursor.
import * as path from "node:path";
import type { ClassifiedTune, Match, Position, StatusResult } from "./protocol";

export interface Progress {
  title: string;
  message?: string;
  percentage?: number;
}

export function score(x: number): string {
  return x.toFixed(2);
}

/** The status bar item: model and device when idle, what is being indexed while it runs. */
export function statusText(status: StatusResult | undefined, progress: Progress | undefined, error?: string): string {
  if (error) return "$(error) tunelens";
  if (progress) {
    const pct = progress.percentage === undefined ? "" : ` ${Math.round(progress.percentage)}%`;
    const msg = progress.message ? ` ${progress.message}` : "";
    return `$(sync~spin) tunelens: ${progress.title}${pct}${msg}`;
  }
  if (!status) return "$(loading~spin) tunelens";
  const model = status.model ? status.model.name : "no model";
  if (status.indexing) {
    const files = status.filesTotal ? ` ${status.filesDone ?? 0}/${status.filesTotal}` : "";
    return `$(sync~spin) tunelens: indexing${files} · ${model} · ${status.device}`;
  }
  return `$(pulse) tunelens: ${model} · ${status.device}`;
}

export function statusTooltip(status: StatusResult | undefined, error?: string): string {
  if (error) return `tunelens: ${error}`;
  if (!status) return "tunelens: starting";
  const lines = [
    `tunelens ${status.serverVersion} (protocol ${status.protocolVersion})`,
    status.model ? `model: ${status.model.name} (${status.model.dim}-d, ${status.model.id})` : "model: none loaded",
    `device: ${status.device}`,
  ];
  for (const c of status.corpora) {
    lines.push(`${c.name}: ${c.files} files, ${c.tunes} tunes, ${c.passages} passages`);
  }
  if (status.queue) lines.push(`queue: ${status.queue.running} running, ${status.queue.pending} pending`);
  return lines.join("\n");
}

/** Where a match lives, short: the file name and 1-based line, as people read it. */
export function place(m: Match): string {
  let file = m.uri;
  try {
    file = path.basename(decodeURIComponent(new URL(m.uri).pathname));
  } catch {
    // Not a URL: keep it as it is.
  }
  return `${file}:${m.range.start.line + 1}`;
}

export function matchItem(m: Match): { label: string; description: string; detail: string } {
  const where = [m.corpus, m.collection].filter((x) => x).join(" / ");
  return {
    label: m.title || "(untitled)",
    description: `${score(m.score)} · ${place(m)}`,
    detail: [where, m.explanation].filter((x) => x).join(" — "),
  };
}

function contains(t: ClassifiedTune, p: Position): boolean {
  const { start, end } = t.range;
  return p.line >= start.line && p.line <= end.line;
}

/** The tune under the cursor; the first one when the cursor is outside every tune. */
export function tuneAt(tunes: ClassifiedTune[], p: Position): ClassifiedTune | undefined {
  return tunes.find((t) => contains(t, p)) ?? tunes[0];
}

export function labelItems(t: ClassifiedTune): { label: string; description: string }[] {
  return [...t.labels].sort((a, b) => b.score - a.score).map((l) => ({ label: l.label, description: score(l.score) }));
}
