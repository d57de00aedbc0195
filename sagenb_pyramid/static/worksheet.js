// Worksheet page of sagenb-pyramid: the entry module, which owns the page's state.
//
// Plain ES modules, no build step (frontend/README.md): page/ holds the parts (dom,
// api, messages, sanitize, markdown, ansi, math, outputs, cell, compute, assist, poller,
// sheet, datafiles, share), which import the vendored CodeMirror, DOMPurify, markdown-it and
// anser and load MathJax on demand. The server renders the skeleton
// (templates/worksheet.jinja2) and embeds the worksheet state as JSON in
// <script id="worksheet-data">; everything else goes through the JSON API relative to
// the worksheet URL.

import * as widgets from "./widgets.js";
import { jsonApi, csrfToken } from "./page/api.js";
import { makeMessages } from "./page/messages.js";
import { makeSanitizer } from "./page/sanitize.js";
import { renderMarkdown } from "./page/markdown.js";
import { typeset, setMathJaxErrorHandler } from "./page/math.js";
import { OutputArea, listenToFrames } from "./page/outputs.js";
import { ACTIVE } from "./page/cell.js";
import { ComputeCell } from "./page/compute.js";
import { closeInspectOnClickOutside } from "./page/assist.js";
import { makePoller } from "./page/poller.js";
import { makeActions } from "./page/sheet.js";
import { makeDataFiles } from "./page/datafiles.js";
import { makeShare } from "./page/share.js";
import { makePresence } from "./page/presence.js";
import { makeHistory } from "./page/history.js";
import { makeLive } from "./page/live.js";

// Containers of rendered user content: clicks inside them are never page actions.
const USER_CONTENT = ".text-rendered, .output-item";

const root = document.getElementById("worksheet");
const wsUrl = (() => {
  const u = new URL(root.dataset.worksheetUrl || location.href, location.href);
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  u.search = "";
  u.hash = "";
  return u.href;
})();
const csrf = csrfToken();

// The page's state: every part gets it and reads or changes it here.
const page = {
  root,
  cellsEl: document.getElementById("cells"),
  nameEl: document.querySelector("[data-role=worksheet-name]"),
  typesetBox: document.querySelector("input[name=typeset]"),
  systemSelect: document.querySelector("select[name=system]"),
  canEdit: root.dataset.canEdit === "true",
  // Whether this viewer vouches for the worksheet (its owner, who trusted it): only then
  // do HTML outputs run their scripts (in sandboxed frames of an opaque origin).
  trusted: root.dataset.trusted === "true",
  frameUrl: root.dataset.frameUrl || new URL("/_frame", location.href).href,
  wsUrl,
  csrf,
  // The worksheet as the server sent it (name, system, typeset, cells, data_files).
  worksheet: JSON.parse(document.getElementById("worksheet-data").textContent || "{}"),
  cells: new Map(), // id -> Cell
  activationSeq: 0, // the order in which cells were queued (see poller.js)
  nextSeq() {
    return ++this.activationSeq;
  },
  workerAnswered: false, // see assist.js askWorker
  inspectTip: null, // the help tooltip: {el, cell}
  frameHtml: null, // frames of HTML outputs -> their HTML (outputs.js listenToFrames)
  api: jsonApi(wsUrl, csrf),
  messages: makeMessages(document.getElementById("message")),
  sanitizer: makeSanitizer(wsUrl),
};
page.poller = makePoller(page);
page.actions = makeActions(page);
page.dataFiles = makeDataFiles(page);
page.share = root.dataset.canShare === "true" ? makeShare(page) : null;
// Who else has it open (a published page or a print view shows no one).
page.presence = root.dataset.mode ? null : makePresence(page);
page.history = makeHistory(page);
page.live = makeLive(page);
setMathJaxErrorHandler(page.messages.report);
listenToFrames(page);
closeInspectOnClickOutside(page);

const { actions, worksheet, nameEl, typesetBox, systemSelect } = page;

root.addEventListener("click", (ev) => {
  // Page actions come from the page's own controls, never from rendered content.
  if (ev.target.closest(USER_CONTENT)) return;
  const btn = ev.target.closest("[data-action]");
  if (!btn || !root.contains(btn) || btn.disabled) return;
  const action = btn.dataset.action;
  const cell = actions.cellOf(btn);
  switch (action) {
    case "evaluate-all": if (page.canEdit) actions.evaluateAll(); break;
    case "interrupt": if (page.canEdit) actions.interrupt(); break;
    case "restart": if (page.canEdit) actions.restart(); break;
    case "clear-all": if (page.canEdit) actions.clearAll(); break;
    case "rename": if (page.canEdit) actions.rename(); break;
    case "trust": actions.trustWorksheet(); break;
    case "unpublish": actions.unpublish(); break;
    case "edit-tags": actions.editTags(); break;
    case "share": if (page.share) page.share.open(); break;
    case "append-compute": if (page.canEdit) actions.addCell({ type: "compute" }); break;
    case "append-text": if (page.canEdit) actions.addCell({ type: "text" }); break;
    default:
      if (!cell || !page.canEdit) return;
      switch (action) {
        case "evaluate": cell.evaluate(); break;
        case "delete":
          if (cell.data.deletable === false) page.messages.show(cell.lockedMessage("deletion"));
          else actions.deleteCell(cell);
          break;
        case "unlock": cell.unlock(); break;
        case "move-up": actions.moveCell(cell, "up"); break;
        case "move-down": actions.moveCell(cell, "down"); break;
        case "add-below": actions.addCell({ type: "compute", after: cell }); break;
        case "add-above": actions.addCell({ type: "compute", before: cell }); break;
        case "add-text-below": actions.addCell({ type: "text", after: cell }); break;
        case "edit": cell.edit(); break;
        case "save-text": cell.finishEdit(true); break;
        case "cancel-text": cell.finishEdit(false); break;
        case "clear": cell.clear(); break;
        default: return;
      }
  }
  ev.preventDefault();
});

// A download holds what the server has: edits not saved yet are saved first.
for (const link of document.querySelectorAll(".ws-downloads a[download]")) {
  link.addEventListener("click", async (ev) => {
    if (!page.canEdit || link.dataset.saved === "true" || !actions.allCells().some((c) => c.isDirty())) return;
    ev.preventDefault();
    await actions.saveAll();
    link.dataset.saved = "true";
    try {
      link.click();
    } finally {
      delete link.dataset.saved;
    }
  });
}

if (nameEl && page.canEdit) {
  nameEl.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      actions.rename();
    }
  });
}

if (typesetBox) {
  typesetBox.checked = worksheet.typeset !== false;
  typesetBox.disabled = !page.canEdit;
  typesetBox.addEventListener("change", () => actions.setTypeset(typesetBox.checked));
}

if (systemSelect) {
  actions.showSystem(worksheet.system || "sage");
  systemSelect.disabled = !page.canEdit;
  systemSelect.addEventListener("change", () => actions.setSystem(systemSelect.value));
}

const flushOnLeave = () => {
  for (const cell of actions.allCells()) cell.saveOnUnload();
};
window.addEventListener("pagehide", flushOnLeave);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") {
    for (const cell of actions.allCells()) if (cell.isDirty()) cell.save();
  }
});

// While the page is open and seen, the worksheet's Sage process is not idle (the
// server stops idle processes); a hidden tab does not keep it.
// A published page or a print view (data-mode) only shows: it keeps no process alive.
if (!root.dataset.mode) {
  setInterval(() => {
    if (document.visibilityState === "visible") page.api("GET", "alive").catch(() => {});
  }, 60_000);
}


// Running indicators.
setInterval(() => {
  for (const cell of page.cells.values()) {
    if (cell instanceof ComputeCell && ACTIVE.has(cell.status)) cell.tick();
  }
}, 1000);

widgets.setup({
  api: page.api,
  sanitize: page.sanitizer.sanitize,
  typeset,
  outputArea: (node, cell) => {
    const area = new OutputArea(node, page, cell);
    return (outputs) => area.render(outputs);
  },
  error: (cell, err) => (cell.noteError ? cell.noteError(err, "Changing the control") : console.error(err)),
});

// ---------------------------------------------------------------------------
// Initial render

for (const data of worksheet.cells || []) page.cellsEl.append(actions.makeCell(data).el);
page.dataFiles.render(worksheet.data_files);
actions.updateEmptyState();
for (const cell of page.cells.values()) if (ACTIVE.has(cell.status)) page.poller.watch(cell);
root.classList.add("ready");
root.dataset.ready = "true";

// A small hook for debugging and browser tests.
window.sagenb = {
  page,
  cells: page.cells,
  api: page.api,
  getInput: (id) => page.cells.get(id)?.getInput(),
  setInput: (id, text) => page.cells.get(id)?.setInput(text),
  evaluate: (id) => page.cells.get(id)?.evaluate(),
  refresh: actions.refreshAll,
  renderMarkdown,
  sanitizeHtml: page.sanitizer.sanitize,
};
