// ANSI escape sequences of streams, tracebacks and help pages, drawn as spans with the
// stylesheet's ansi-* classes. The sequences are read by anser (vendored, see frontend/):
// its JSON form gives the text and its colours, from which the spans are built with
// textContent, so no HTML is made from the text.

import Anser from "../vendor/anser.js";

// OSC sequences (window titles, hyperlinks) and other two-character escapes, which anser
// (CSI sequences only) would leave in the text; "38:5:n" is written "38;5;n" for it.
const NOT_CSI = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
const CSI_COLONS = /\x1b\[[0-9;:?]*[@-~]/g;
const ALL_ESCAPES = /\x1b\[[0-9;:?]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

// xterm's 256 colours past the 16 named ones (which are classes).
function xterm256(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  n -= 16;
  const c = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${c(Math.floor(n / 36))},${c(Math.floor(n / 6) % 6)},${c(n % 6)})`;
}

// anser's colour (a class "ansi-red", "ansi-palette-n" or "ansi-truecolor") as a class of
// the stylesheet or a CSS colour.
function colour(value, truecolor, background) {
  if (!value) return {};
  if (value === "ansi-truecolor") return { css: `rgb(${truecolor})` };
  const palette = /^ansi-palette-(\d+)$/.exec(value);
  if (palette) return { css: xterm256(Number(palette[1])) };
  return { cls: background ? value.replace(/^ansi-/, "ansi-bg-") : value };
}

export function ansiFragment(text) {
  const frag = document.createDocumentFragment();
  const clean = String(text).replace(NOT_CSI, "").replace(CSI_COLONS, (m) => m.replace(/:/g, ";"));
  if (!clean.includes("\x1b")) {
    frag.append(clean);
    return frag;
  }
  for (const chunk of Anser.ansiToJson(clean, { use_classes: true, remove_empty: true })) {
    const fg = colour(chunk.fg, chunk.fg_truecolor, false);
    const bg = colour(chunk.bg, chunk.bg_truecolor, true);
    const cls = [fg.cls, bg.cls, ...(chunk.decorations || []).map((d) => `ansi-${d}`)].filter(Boolean);
    if (!cls.length && !fg.css && !bg.css) {
      frag.append(chunk.content);
      continue;
    }
    const span = document.createElement("span");
    span.className = cls.join(" ");
    if (fg.css) span.style.color = fg.css;
    if (bg.css) span.style.backgroundColor = bg.css;
    span.textContent = chunk.content;
    frag.append(span);
  }
  return frag;
}

export function stripAnsi(text) {
  return String(text).replace(ALL_ESCAPES, "");
}

// Emulate carriage returns (progress bars) and backspaces in stream text.
export function applyControlChars(text) {
  if (!/[\r\b]/.test(text)) return text;
  return text.replace(/\r\n/g, "\n").split("\n").map((line) => {
    if (line.includes("\r")) {
      const parts = line.split("\r").filter((p, i, a) => p !== "" || i === a.length - 1);
      let out = "";
      for (const p of parts) out = p + out.slice(p.length);
      line = out;
    }
    while (/[^\b\n]\b/.test(line)) line = line.replace(/[^\b\n]\b/g, "");
    return line.replace(/\b/g, "");
  }).join("\n");
}
