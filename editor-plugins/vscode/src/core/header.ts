// Writing a header field (R: by default) of one tune: what "Suggest genre" applies.

/**
 * The label set to score for `field`, as the server's own lens and code action choose it:
 * `R:` is the tune's rhythm (jig, reel, ...), any other field gets the genre set.
 */
export function labelSetFor(field: string): "genre" | "rhythm" {
  return field.charAt(0) === "R" ? "rhythm" : "genre";
}

export interface LineEdit {
  /** 0-based line; the edit replaces [line, 0]..[endLine, 0) with `text`. */
  line: number;
  endLine: number;
  text: string;
}

/**
 * The edit that sets `field:` to `value` in the header of the tune that holds line `at` (the
 * nearest `X:` line at or above it). An existing field line is replaced; otherwise the field
 * goes just before `K:`, which ABC 2.1 wants last in the header. Undefined when there is no
 * tune there or its header has no `K:`.
 */
export function setHeaderField(lines: string[], at: number, field: string, value: string): LineEdit | undefined {
  let x = Math.min(at, lines.length - 1);
  while (x >= 0 && !/^X:/.test(lines[x])) x--;
  if (x < 0) return undefined;
  const fieldLine = new RegExp(`^${field.replace(/[^A-Za-z]/g, "")}:`);
  const text = `${field}:${value}\n`;
  for (let i = x + 1; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === "" || /^X:/.test(l)) break;
    if (fieldLine.test(l)) return { line: i, endLine: i + 1, text };
    if (/^K:/.test(l)) return { line: i, endLine: i, text };
  }
  return undefined;
}
