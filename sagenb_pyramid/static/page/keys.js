// The worksheet page's keyboard (issue 22): one table, KEYS, from which the compute
// cells' CodeMirror keymap, the text cells' and the page's key handlers and the shortcut
// help are all made, so the help says what the keys do.  What the keys do to cells is in
// cellops.js.

import { closeCompletion, completionStatus } from "../vendor/codemirror.js";
import { h } from "./dom.js";
import { closeInspect } from "./assist.js";

const MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");

const completing = (view) => completionStatus(view.state) !== null;

// Each row: the keys (CodeMirror's names: "Mod" is Cmd on a Mac, Ctrl elsewhere), when
// they apply, and what they do in a compute cell's editor (`compute(cell, view, key)`), in
// a text cell's editor (`text(cell, event, key)`) and outside any editor (`page(page,
// event)`), with the words of the help for each.  A handler returns true when it did
// something (the key is then not the browser's or the editor's), false to let it be.
export const KEYS = [
  {
    keys: ["Shift-Enter"],
    compute: (cell) => cell.page.cellOps.evaluateAndAdvance(cell),
    computeHelp: "Evaluate, then go to the next cell (after the last one, a new cell)",
    text: (cell) => cell.page.cellOps.evaluateAndAdvance(cell),
    textHelp: "Save and show the text, then go to the next compute cell",
  },
  {
    keys: ["Ctrl-Enter", "Mod-Enter"],
    compute: (cell) => {
      cell.evaluate();
      return true;
    },
    computeHelp: "Evaluate and stay in the cell",
    text: (cell) => {
      cell.finishEdit(true);
      return true;
    },
    textHelp: "Save and show the text",
  },
  {
    keys: ["Alt-Enter"],
    compute: (cell) => cell.page.cellOps.evaluateAndInsert(cell),
    computeHelp: "Evaluate and insert a new cell below",
    text: (cell) => cell.page.cellOps.evaluateAndInsert(cell),
    textHelp: "Save and insert a new compute cell below",
  },
  {
    keys: ["Mod-Shift-Enter"],
    compute: (cell) => {
      cell.page.cellOps.evaluateBelow(cell);
      return true;
    },
    computeHelp: "Evaluate this cell and every cell below it",
  },
  {
    keys: ["Ctrl-;"],
    compute: (cell) => cell.page.cellOps.split(cell),
    computeHelp: "Split the cell at the cursor",
    text: (cell) => cell.page.cellOps.split(cell),
    textHelp: "Split the text at the cursor",
  },
  {
    keys: ["Ctrl-Backspace"],
    when: "at the start of the cell",
    compute: (cell, view) => {
      const sel = view.state.selection.main;
      return sel.empty && sel.head === 0 && cell.page.cellOps.join(cell);
    },
    computeHelp: "Join the cell with the compute cell above",
    text: (cell) => {
      const ta = cell.textarea;
      return ta.selectionStart === 0 && ta.selectionEnd === 0 && cell.page.cellOps.join(cell);
    },
    textHelp: "Join the text with the text cell above",
  },
  {
    keys: ["Backspace"],
    when: "in an empty cell",
    compute: (cell) => cell.page.cellOps.deleteIfEmpty(cell),
    computeHelp: "Delete the cell (Alt-Shift-Z brings it back)",
    text: (cell) => cell.page.cellOps.deleteIfEmpty(cell),
    textHelp: "Delete the cell (Alt-Shift-Z brings it back)",
  },
  {
    keys: ["ArrowUp", "ArrowDown"],
    when: "on the first / last line",
    compute: (cell, view, key) => !completing(view) && cell.leave(view, key === "ArrowUp" ? -1 : 1),
    computeHelp: "Go to the compute cell above / below",
    text: (cell, ev, key) => cell.page.cellOps.leaveText(cell, key === "ArrowUp" ? -1 : 1),
    textHelp: "Save, and go to the compute cell above / below",
  },
  {
    keys: ["Alt-Shift-z"],
    compute: (cell) => cell.page.cellOps.undoDelete() || true,
    computeHelp: "Bring back the last deleted cell (its input)",
    text: (cell) => cell.page.cellOps.undoDelete() || true,
    textHelp: "Bring back the last deleted cell (its input)",
    page: (page) => page.canEdit && (page.cellOps.undoDelete() || true),
    pageHelp: "Bring back the last deleted cell (its input)",
  },
  {
    keys: ["z"],
    page: (page) => page.canEdit && (page.cellOps.undoDelete() || true),
    pageHelp: "Bring back the last deleted cell (as Alt-Shift-Z)",
  },
  {
    keys: ["Tab"],
    compute: (cell, view) => cell.tabKey(view),
    computeHelp: "Complete the name before the cursor (elsewhere: indent)",
  },
  {
    keys: ["Shift-Tab"],
    compute: (cell, view) => cell.inspectKey(view),
    computeHelp: "Documentation of the name before the cursor (elsewhere: indent less)",
  },
  {
    keys: ["Escape"],
    compute: (cell, view) => {
      if (closeInspect(cell.page)) return true;
      if (completing(view)) return closeCompletion(view);
      cell.page.actions.interrupt();
      return true;
    },
    computeHelp: "Close the documentation or the completions; else interrupt the computation",
    text: (cell) => {
      cell.finishEdit(false);
      return true;
    },
    textHelp: "Cancel the edit",
  },
  {
    keys: ["h", "?"],
    page: (page) => {
      page.keys.showHelp();
      return true;
    },
    pageHelp: "This list of shortcuts",
  },
];

// --- matching keys of events (text cells, the page) --------------------------------------

function parse(name) {
  const parts = name.split(/-(?!$)/);
  const key = parts.pop();
  const mods = { ctrl: false, alt: false, shift: false, meta: false };
  for (const m of parts) {
    if (m === "Mod") mods[MAC ? "meta" : "ctrl"] = true;
    else if (m === "Ctrl") mods.ctrl = true;
    else if (m === "Alt") mods.alt = true;
    else if (m === "Shift") mods.shift = true;
    else if (m === "Meta" || m === "Cmd") mods.meta = true;
  }
  return { key, mods };
}

// The key's names an event may stand for: what it typed, and (Alt on a Mac types another
// character) the key it was on.
function eventKeys(ev) {
  const names = [ev.key.length === 1 ? ev.key.toLowerCase() : ev.key];
  const code = ev.code || "";
  if (/^Key[A-Z]$/.test(code)) names.push(code.slice(3).toLowerCase());
  else if (code === "Semicolon") names.push(";");
  return names;
}

export function matches(name, ev) {
  const { key, mods } = parse(name);
  if (!eventKeys(ev).includes(key.length === 1 ? key.toLowerCase() : key)) return false;
  // A punctuation key may need Shift on some keyboards ("?", ";" on a German one).
  const shiftFree = key.length === 1 && !/[a-z]/i.test(key);
  return ev.ctrlKey === mods.ctrl && ev.altKey === mods.alt && ev.metaKey === mods.meta
    && (shiftFree ? true : ev.shiftKey === mods.shift);
}

// --- the handlers made from the table -------------------------------------------------

// The compute cell's keymap (CodeMirror bindings, before the editor's own).
export function editorKeymap(cell) {
  const bindings = [];
  for (const row of KEYS) {
    if (!row.compute) continue;
    for (const key of row.keys) bindings.push({ key, run: (view) => row.compute(cell, view, key) === true });
  }
  return bindings;
}

// A keydown in a text cell's editor.
export function textKeydown(cell, ev) {
  if (ev.isComposing) return;
  for (const row of KEYS) {
    if (!row.text) continue;
    const key = row.keys.find((k) => matches(k, ev));
    if (key && row.text(cell, ev, key) === true) {
      ev.preventDefault();
      return;
    }
  }
}

// Typing in a field or an editor is never a page key.
function typingIn(target) {
  return target instanceof Element
    && !!target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true], .cm-editor");
}

// --- the help --------------------------------------------------------------------------

const SHOWN = { Mod: MAC ? "\u2318" : "Ctrl", Alt: MAC ? "\u2325" : "Alt", ArrowUp: "\u2191", ArrowDown: "\u2193" };

export function keyLabel(name) {
  if (name.length === 1) return name;
  return name.split(/-(?!$)/).map((p) => SHOWN[p] || (p.length === 1 ? p.toUpperCase() : p)).join("-");
}

function keysCell(row) {
  // Ctrl-Enter and Mod-Enter are one key off a Mac.
  const labels = [...new Set(row.keys.map(keyLabel))];
  return h("td", { class: "keys-keys" },
    ...labels.flatMap((l, i) => [i ? (row.when && row.when.includes("/") ? " / " : " or ") : null, h("kbd", { text: l })]).filter(Boolean),
    row.when ? h("span", { class: "keys-when", text: ` ${row.when}` }) : null);
}

function helpTables() {
  const cellRows = KEYS.filter((r) => r.compute || r.text).map((r) => h("tr", {},
    keysCell(r),
    h("td", { text: r.computeHelp || "\u2014" }),
    h("td", { text: r.textHelp || "\u2014" })));
  const pageRows = KEYS.filter((r) => r.page).map((r) => h("tr", {}, keysCell(r), h("td", { text: r.pageHelp })));
  return [
    h("table", { class: "keys-table", dataset: { role: "keys-in-cells" } },
      h("thead", {}, h("tr", {}, h("th", { text: "Keys" }), h("th", { text: "In a compute cell" }),
        h("th", { text: "In a text cell being edited" }))),
      h("tbody", {}, ...cellRows)),
    h("h3", { text: "Outside an editor" }),
    h("table", { class: "keys-table", dataset: { role: "keys-on-page" } },
      h("thead", {}, h("tr", {}, h("th", { text: "Keys" }), h("th", { text: "What it does" }))),
      h("tbody", {}, ...pageRows)),
  ];
}

// The page's keys and the help (page.keys).
export function makeKeys(page) {
  let dialog = null;
  let returnTo = null;

  function showHelp() {
    if (!dialog) {
      const close = h("button", { type: "button", class: "btn", dataset: { role: "keys-close" } }, "Close");
      close.addEventListener("click", () => dialog.close());
      dialog = h("dialog", { class: "keys-dialog", dataset: { role: "shortcuts" }, "aria-labelledby": "keys-title" },
        h("h2", { id: "keys-title", text: "Keyboard shortcuts" }),
        ...helpTables(),
        h("div", { class: "keys-dialog-buttons" }, close));
      dialog.addEventListener("close", () => {
        if (returnTo && returnTo.isConnected) returnTo.focus();
        returnTo = null;
      });
      document.body.append(dialog);
    }
    if (dialog.open) return;
    returnTo = document.activeElement;
    dialog.showModal();
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.defaultPrevented || ev.isComposing || typingIn(ev.target)) return;
    // Another dialog (sharing) has the keyboard.
    if ([...document.querySelectorAll("dialog[open]")].some((d) => d !== dialog)) return;
    if (dialog && dialog.open) return;
    for (const row of KEYS) {
      if (!row.page) continue;
      if (row.keys.some((k) => matches(k, ev)) && row.page(page, ev) === true) {
        ev.preventDefault();
        return;
      }
    }
  });

  return { showHelp };
}
