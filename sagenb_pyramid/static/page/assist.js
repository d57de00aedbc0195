// What compute cells ask of the worksheet's Sage process besides evaluation: completion
// (Tab) and help (Shift-Tab, shown in a tooltip), and the conversion of the positions
// (the server counts characters, the editor UTF-16 units).

import { h } from "./dom.js";
import { ansiFragment } from "./ansi.js";
import { addManualLink } from "./doclinks.js";

// The server counts positions in characters (code points), the editor in UTF-16 units.
export function toCodePointOffset(text, index) {
  let n = 0;
  for (let i = 0; i < index && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}
export function fromCodePointOffset(text, offset) {
  let i = 0;
  for (let n = 0; n < offset && i < text.length; n++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
  }
  return i;
}

// sagenb's percent directives: the cell's first lines that are exactly "%name"

// Jupyter's completion types -> CodeMirror's icon types.
export const COMPLETION_TYPES = {
  function: "function", builtin_function_or_method: "function", method: "method",
  class: "class", type: "type", module: "namespace", keyword: "keyword",
  instance: "variable", statement: "variable", param: "variable", property: "property",
  path: "text", magic: "keyword",
};
export const NAME_BEFORE_CURSOR = /[\p{L}\p{N}_.]$/u;
export const NAME_CHARS = /^[\p{L}\p{N}_.]*$/u;

// Completion and help questions go to the worksheet's Sage process, which the first
// one starts: the server answers 409 when no answer came within its timeout (a long
// start, or cells running).  Until a first answer came (page.workerAnswered), a 409 is
// asked again.
export async function askWorker(page, path, body, onWait) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await page.api("POST", path, body);
      page.workerAnswered = true;
      return res;
    } catch (err) {
      if (err.status !== 409 || page.workerAnswered || attempt >= 2) throw err;
      if (onWait) onWait();
    }
  }
}

// The tooltip of Shift-Tab, one at a time in the page: page.inspectTip = {el, cell}.
export function closeInspect(page) {
  if (!page.inspectTip) return false;
  page.inspectTip.el.remove();
  page.inspectTip = null;
  return true;
}

export function closeInspectOnClickOutside(page) {
  document.addEventListener("mousedown", (ev) => {
    if (page.inspectTip && !page.inspectTip.el.contains(ev.target)) closeInspect(page);
  });
}

export function showInspect(page, cell, view, pos, text, level) {
  closeInspect(page);
  const pre = h("pre", { class: "inspect-text" });
  pre.append(ansiFragment(String(text).replace(/\s+$/, "")));
  const close = h("button", { type: "button", class: "inspect-close", title: "Close (Escape)", "aria-label": "Close" }, "\u00d7");
  const source = level === 0
    ? h("button", { type: "button", class: "inspect-source", title: "Show the source (as foo?? does)" }, "Source")
    : null;
  const el = h("div", { class: "inspect-tooltip", role: "dialog", "aria-label": level ? "Source" : "Documentation", dataset: { level: String(level) } },
    h("div", { class: "inspect-head" },
      h("span", { class: "inspect-title", text: level ? "Source" : "Documentation" }),
      h("span", { class: "hint", text: "Escape closes" }),
      source, close),
    pre);
  close.addEventListener("click", () => {
    closeInspect(page);
    view.focus();
  });
  if (source) source.addEventListener("click", () => cell.inspect(view, 1, pos));
  document.body.append(el);
  page.inspectTip = { el, cell };
  if (level === 0) addManualLink(el, text);
  const at = view.coordsAtPos(pos) || view.contentDOM.getBoundingClientRect();
  const width = el.offsetWidth;
  const left = Math.max(8, Math.min(at.left, document.documentElement.clientWidth - width - 8));
  el.style.left = `${left + window.scrollX}px`;
  el.style.top = `${at.bottom + window.scrollY + 4}px`;
}
