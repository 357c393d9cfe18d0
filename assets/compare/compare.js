/*
 * tunelens compare page renderer.
 *
 * `tunelens similar FILE:LINE --html OUT.html` writes one self-contained page
 * (template.html) with three things pasted in: the abcjs library, this file,
 * and a data object assigned to window.TUNELENS_COMPARE:
 *
 *   {
 *     "title": "Passages like bars 5–8 of reel.abc",
 *     "passages": [
 *       {
 *         "role": "query" | "match",
 *         "label": "reel.abc, bars 5–8",        heading text
 *         "summary": "... 2 of 24 notes differ",  or null
 *         "interval": "up a perfect 4th",         or null
 *         "location": "/home/u/tunes/reel.abc:12",shown as text
 *         "uri": "file:///home/u/tunes/reel.abc", link target for location
 *         "line": 12,                            1-based; the link gets
 *                                                 data-uri and data-line
 *         "link": "https://...",                  web page for the match, or null
 *         "score": 0.93,                          or null
 *         "abc": "X:1\nT:...\nK:G\n|GAG GAB|\n",   one complete tune
 *         "differ": [[27, 30], [31, 34]]          [start, end) offsets into abc
 *       }                                         (UTF-16 units) of notes that
 *     ]                                           differ from the query
 *   }
 *
 * For each passage it makes a card (heading, summary, links, score) and
 * engraves the abc with abcjs; every note whose source characters overlap a
 * `differ` range is coloured (CSS class "tunelens-differ").
 *
 * When done it writes a machine-readable report into <pre id="tunelens-report">
 * so that a headless browser (chromium --headless --dump-dom) can check the
 * page:
 *   { "abcjs": version, "passages": N,
 *     "rendered": [staff systems drawn, per passage],
 *     "svgs": [<svg> elements, per passage],
 *     "staves": total 5-line staves drawn (.abcjs-staff),
 *     "coloured": [note elements coloured, per passage],
 *     "unmatched": [differ ranges that hit no note or are out of bounds,
 *                   per passage; should be all 0],
 *     "warnings": ["#i: abcjs warning", ...],
 *     "errors": ["#i: exception", ...] }
 * Each passage is rendered inside try/catch, so one bad passage does not stop
 * the others; window.onerror also feeds "errors".
 *
 * In a VS Code webview (acquireVsCodeApi defined) a click on a location link
 * is not followed: the page posts {command: "open", uri, line} to the
 * extension, which opens the file at that line. Elsewhere links work as usual.
 *
 * No playback: abcjs's synth fetches its soundfonts from the network, and this
 * page must work offline from file://.
 *
 * Plain ES2017, no modules, no build step.
 */
(function () {
  "use strict";

  window.tunelensCompareStarted = true;

  var report = {
    abcjs: null,
    passages: 0,
    rendered: [],
    svgs: [],
    staves: 0,
    coloured: [],
    unmatched: [],
    warnings: [],
    errors: []
  };

  function writeReport() {
    var pre = document.getElementById("tunelens-report");
    if (!pre) {
      pre = document.createElement("pre");
      pre.id = "tunelens-report";
      pre.hidden = true;
      document.body.appendChild(pre);
    }
    pre.textContent = JSON.stringify(report);
  }

  window.addEventListener("error", function (ev) {
    var where = ev.filename ? " (" + ev.filename + ":" + ev.lineno + ")" : "";
    report.errors.push("page: " + (ev.message || String(ev.error)) + where);
    writeReport();
  });

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function showPageError(message) {
    var box = el("div", "tunelens-fatal", message);
    var main = document.getElementById("passages") || document.body;
    main.insertBefore(box, main.firstChild);
  }

  // abcjs warnings are HTML fragments (they underline the bad character);
  // turn them into plain text.
  function warningText(html) {
    var div = document.createElement("div");
    div.innerHTML = String(html);
    return (div.textContent || "").replace(/\s+/g, " ").trim();
  }

  // abcjs counts character offsets after it has turned CR/CRLF into LF, and it
  // ends a tune at the first blank line. Normalise the text the same way
  // (CR/CRLF -> LF; a whitespace-only line gets a "%" so it becomes a comment)
  // and return map[i] = offset in the new text of offset i in the original.
  function prepareAbc(abc) {
    var out = [];
    var map = new Array(abc.length + 1);
    var n = 0;
    var lineStart = true;
    var seenText = false;
    for (var i = 0; i < abc.length; i++) {
      var c = abc.charAt(i);
      if (lineStart && seenText && /^[ \t]*(\r\n?|\n)/.test(abc.slice(i, i + 200)) &&
          /\S/.test(abc.slice(i))) {
        // whitespace-only line with music after it: make it a comment line
        out.push("%");
        n += 1;
      }
      map[i] = n;
      if (c === "\r") {
        if (abc.charAt(i + 1) === "\n") {
          lineStart = false; // the LF that follows ends the line
          continue;
        }
        c = "\n";
      }
      out.push(c);
      n += 1;
      lineStart = c === "\n";
      if (/\S/.test(c)) seenText = true;
    }
    map[abc.length] = n;
    return { text: out.join(""), map: map };
  }

  // Map `differ` ranges onto the prepared text. Returns { ranges, invalid },
  // where invalid counts ranges that are malformed, empty or out of bounds.
  function mapRanges(differ, map, length) {
    var ranges = [];
    var invalid = 0;
    if (!Array.isArray(differ)) return { ranges: ranges, invalid: differ == null ? 0 : 1 };
    differ.forEach(function (r) {
      var ok = Array.isArray(r) && r.length === 2 &&
        Number.isInteger(r[0]) && Number.isInteger(r[1]) &&
        r[0] >= 0 && r[0] < r[1] && r[1] <= length;
      if (ok) ranges.push([map[r[0]], map[r[1]]]);
      else invalid += 1;
    });
    return { ranges: ranges, invalid: invalid };
  }

  // Colour every note/rest whose [startChar, endChar) overlaps a range.
  // Returns { coloured, unmatched }.
  function colourNotes(tune, ranges) {
    var hit = ranges.map(function () { return false; });
    var coloured = 0;
    (tune.lines || []).forEach(function (line) {
      (line.staff || []).forEach(function (staff) {
        (staff.voices || []).forEach(function (voice) {
          voice.forEach(function (elem) {
            if (elem.el_type !== "note") return;
            if (typeof elem.startChar !== "number" || typeof elem.endChar !== "number") return;
            var overlaps = false;
            ranges.forEach(function (r, k) {
              if (elem.startChar < r[1] && elem.endChar > r[0]) {
                overlaps = true;
                hit[k] = true;
              }
            });
            if (!overlaps || !elem.abselem || !elem.abselem.elemset) return;
            var drawn = 0;
            elem.abselem.elemset.forEach(function (g) {
              if (!g || !g.classList) return;
              g.classList.add("tunelens-differ");
              // abcjs draws with fill="currentColor", so the colour follows CSS `color`.
              g.style.color = "var(--differ)";
              drawn += 1;
            });
            if (drawn > 0) coloured += 1;
          });
        });
      });
    });
    return { coloured: coloured, unmatched: hit.filter(function (h) { return !h; }).length };
  }

  // Only plain web and file links become hrefs (no javascript: and the like).
  function safeHref(url) {
    return typeof url === "string" && /^(https?|file):/i.test(url) ? url : null;
  }

  function formatScore(score) {
    if (typeof score !== "number" || !isFinite(score)) return null;
    return score.toFixed(2);
  }

  function makeCard(p, index) {
    var card = el("section", "passage passage-" + (p.role === "query" ? "query" : "match"));
    card.id = "passage-" + index;

    var head = el("header", "passage-head");
    var h2 = el("h2", null, p.label || (p.role === "query" ? "Your passage" : "Match " + index));
    head.appendChild(h2);
    var badges = el("div", "badges");
    if (p.role === "query") badges.appendChild(el("span", "badge badge-query", "your passage"));
    if (p.interval) badges.appendChild(el("span", "badge", p.interval));
    var score = formatScore(p.score);
    if (score !== null) badges.appendChild(el("span", "badge badge-score", "score " + score));
    head.appendChild(badges);
    card.appendChild(head);

    if (p.summary) card.appendChild(el("p", "summary", p.summary));

    var links = el("p", "links");
    if (p.location) {
      var loc;
      if (safeHref(p.uri)) {
        loc = el("a", "location", p.location);
        loc.href = p.uri;
        loc.setAttribute("data-uri", p.uri);
        if (Number.isInteger(p.line)) loc.setAttribute("data-line", String(p.line));
      } else {
        loc = el("span", "location", p.location);
      }
      links.appendChild(loc);
    }
    if (safeHref(p.link)) {
      var web = el("a", "weblink", p.link);
      web.href = p.link;
      web.target = "_blank";
      web.rel = "noopener noreferrer";
      links.appendChild(web);
    }
    if (links.childNodes.length) card.appendChild(links);

    var notation = el("div", "notation");
    card.appendChild(notation);
    return { card: card, notation: notation };
  }

  function renderPassage(p, index, main) {
    var parts = makeCard(p, index);
    main.appendChild(parts.card);
    var rendered = 0, svgs = 0, coloured = 0, unmatched = 0;
    try {
      if (typeof p.abc !== "string" || !p.abc.trim()) throw new Error("passage has no abc text");
      var prepared = prepareAbc(p.abc);
      var tunes = window.ABCJS.renderAbc(parts.notation, prepared.text, {
        add_classes: true,
        responsive: "resize",
        paddingtop: 0,
        paddingbottom: 0
      });
      var tune = tunes && tunes[0];
      if (!tune) throw new Error("abcjs produced no tune");

      (tune.warnings || []).forEach(function (w) {
        var text = warningText(w);
        report.warnings.push("#" + index + ": " + text);
        parts.card.appendChild(el("p", "warning", "abc warning: " + text));
      });

      var mapped = mapRanges(p.differ, prepared.map, p.abc.length);
      var c = colourNotes(tune, mapped.ranges);
      coloured = c.coloured;
      unmatched = c.unmatched + mapped.invalid;
      rendered = parts.notation.querySelectorAll(".abcjs-staff-wrapper").length;
      svgs = parts.notation.querySelectorAll("svg").length;
      if (rendered === 0) throw new Error("no staff was drawn");
    } catch (e) {
      var msg = e && e.message ? e.message : String(e);
      report.errors.push("#" + index + ": " + msg);
      parts.card.appendChild(el("p", "error", "Could not draw this passage: " + msg));
      if (typeof p.abc === "string" && p.abc) parts.card.appendChild(el("pre", "abc-source", p.abc));
    }
    report.rendered.push(rendered);
    report.svgs.push(svgs);
    report.coloured.push(coloured);
    report.unmatched.push(unmatched);
  }

  // Inside a VS Code webview a file:// link leads nowhere: a click on a location
  // link asks the extension to open the file instead, with
  // postMessage({command: "open", uri, line}) (line 1-based, or null).
  // acquireVsCodeApi may be called only once per page.
  function hookVsCode(container) {
    if (typeof acquireVsCodeApi !== "function") return;
    var vscode;
    try {
      vscode = acquireVsCodeApi();
    } catch (e) {
      report.errors.push("page: acquireVsCodeApi: " + (e && e.message ? e.message : String(e)));
      return;
    }
    container.addEventListener("click", function (ev) {
      var a = ev.target && ev.target.closest ? ev.target.closest("a[data-uri]") : null;
      if (!a) return;
      ev.preventDefault();
      var line = parseInt(a.getAttribute("data-line"), 10);
      vscode.postMessage({
        command: "open",
        uri: a.getAttribute("data-uri"),
        line: isFinite(line) ? line : null
      });
    });
  }

  function main() {
    var data = window.TUNELENS_COMPARE;
    var container = document.getElementById("passages");
    hookVsCode(container || document.body);
    if (!data || !Array.isArray(data.passages)) {
      report.errors.push("page: no comparison data (window.TUNELENS_COMPARE is missing)");
      showPageError("This page has no comparison data: it was not assembled by tunelens.");
      writeReport();
      return;
    }
    if (data.title) {
      document.title = data.title;
      var h1 = document.getElementById("title");
      if (h1) h1.textContent = data.title;
    }
    report.passages = data.passages.length;
    if (!window.ABCJS || typeof window.ABCJS.renderAbc !== "function") {
      report.errors.push("page: abcjs library is missing");
      showPageError("The music engraving library (abcjs) is missing from this page.");
      writeReport();
      return;
    }
    report.abcjs = window.ABCJS.signature || null;
    data.passages.forEach(function (p, i) {
      renderPassage(p || {}, i, container);
    });
    report.staves = container.querySelectorAll(".abcjs-staff").length;
    writeReport();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", main);
  } else {
    main();
  }
})();
