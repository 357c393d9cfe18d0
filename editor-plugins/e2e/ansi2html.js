// A tmux capture (capture-pane -e -p: text with SGR colour codes) as an HTML page, so that
// headless Chromium can take a picture of what a person sees in the terminal.
//   node ansi2html.js < capture.txt > capture.html
"use strict";
const fs = require("node:fs");

const base16 = ["#000000", "#cd0000", "#00cd00", "#cdcd00", "#1e60ff", "#cd00cd", "#00cdcd", "#e5e5e5",
  "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"];
function color256(n) {
  if (n < 16) return base16[n];
  if (n < 232) {
    const v = [0, 95, 135, 175, 215, 255];
    const i = n - 16;
    return `rgb(${v[Math.floor(i / 36)]},${v[Math.floor(i / 6) % 6]},${v[i % 6]})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

const FG = "#d0d0d0";
const BG = "#1c1c1c";
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function convert(text) {
  let fg = null, bg = null, bold = false, reverse = false, underline = false;
  let html = "";
  const open = () => {
    const f = reverse ? bg || BG : fg || FG;
    const b = reverse ? fg || FG : bg;
    const style = [`color:${f}`];
    if (b) style.push(`background:${b}`);
    if (bold) style.push("font-weight:bold");
    if (underline) style.push("text-decoration:underline");
    return `<span style="${style.join(";")}">`;
  };
  for (const part of text.split(/(\x1b\[[0-9;]*m)/)) {
    const m = part.match(/^\x1b\[([0-9;]*)m$/);
    if (!m) {
      if (part) html += open() + esc(part) + "</span>";
      continue;
    }
    const codes = m[1] === "" ? [0] : m[1].split(";").map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) [fg, bg, bold, reverse, underline] = [null, null, false, false, false];
      else if (c === 1) bold = true;
      else if (c === 4) underline = true;
      else if (c === 7) reverse = true;
      else if (c === 22) bold = false;
      else if (c === 24) underline = false;
      else if (c === 27) reverse = false;
      else if (c >= 30 && c <= 37) fg = base16[c - 30];
      else if (c >= 90 && c <= 97) fg = base16[c - 90 + 8];
      else if (c >= 40 && c <= 47) bg = base16[c - 40];
      else if (c >= 100 && c <= 107) bg = base16[c - 100 + 8];
      else if (c === 39) fg = null;
      else if (c === 49) bg = null;
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        const v = color256(codes[i + 2]);
        c === 38 ? (fg = v) : (bg = v);
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        const v = `rgb(${codes[i + 2]},${codes[i + 3]},${codes[i + 4]})`;
        c === 38 ? (fg = v) : (bg = v);
        i += 4;
      }
    }
  }
  return `<!doctype html><meta charset="utf-8"><body style="margin:0;background:${BG}"><pre style="margin:0;padding:8px;font:15px/1.25 'DejaVu Sans Mono',monospace;color:${FG}">${html}</pre></body>`;
}

process.stdout.write(convert(fs.readFileSync(0, "utf8")));
