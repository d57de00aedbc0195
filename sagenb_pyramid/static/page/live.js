// Live collaboration on the worksheet page (issue 21): the worksheet's long poll
// (`GET ./?since=<page.version>&wait=`, services/live.py) and what it brings applied
// without losing the person's cursor, selection, scroll position or unsaved typing;
// the answers of saves (cell.js: merged text put in keeping the cursor, a 409 shown as a
// conflict in the cell, a 404 for a cell someone deleted: "restore as a new cell"); and
// a page back from offline saving what it kept, based on what it had.
//
// A cell's edit is based on `savedInput` (what the server had) at `baseVersion` (its
// `input_version`); a cell is clean when its editor holds `savedInput`.  A clean cell
// takes others' input at once; a dirty one keeps its text, and saving it merges on the
// server.  `cell.onHold` (a conflict or a deletion waiting for the person's choice)
// stops its automatic saves.

import { ChangeSet, Transaction, diff } from "../vendor/codemirror.js";
import { h } from "./dom.js";

// Seconds the server may hold a poll (it caps a page's at sagenb.poll_hold).
const WAIT = 25;
// A page alone on its worksheet (presence.js: no other page open) holds no long poll,
// which would keep one of the app server's threads for nothing: it asks `wait=0` this
// often, and at once when its heartbeat says the worksheet changed or someone arrived,
// and when the tab is shown again.
const ALONE_MS = 30_000;
// A poll is given up (and asked again) after this many milliseconds.
const POLL_TIMEOUT = 60_000;
// The states in which the cell poller follows a cell (cell.js ACTIVE; not imported:
// cell.js imports this module).
const ACTIVE_STATES = new Set(["queued", "running"]);

// --- texts: the changes from one to another, applied as CodeMirror changes ------------

function changeSpecs(from, to) {
  return diff(from, to).map((c) => ({ from: c.fromA, to: c.toA, insert: to.slice(c.fromB, c.toB) }));
}

function changeSet(from, to) {
  return ChangeSet.of(changeSpecs(from, to), from.length);
}

function applyToString(changes, text) {
  let out = "";
  let pos = 0;
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    out += text.slice(pos, fromA) + inserted.toString();
    pos = toA;
  });
  return out + text.slice(pos);
}

// `changes` (from the editor's current text) put into the cell's editor: CodeMirror maps
// the selection through them; a text cell's textarea has its selection mapped the same way.
function applyChanges(cell, changes) {
  if (changes.empty) return;
  if (cell.view) {
    cell.view.dispatch({
      changes,
      annotations: [Transaction.remote.of(true), Transaction.addToHistory.of(false)],
    });
  } else if (cell.editing) {
    const ta = cell.textarea;
    const focused = document.activeElement === ta;
    const [start, end] = [ta.selectionStart, ta.selectionEnd];
    const { scrollTop } = ta;
    ta.value = applyToString(changes, ta.value);
    if (focused || start || end) ta.setSelectionRange(changes.mapPos(start, -1), changes.mapPos(end, 1));
    ta.scrollTop = scrollTop;
    cell.autosize();
  }
}

function editorText(cell) {
  return cell.view ? cell.view.state.doc.toString() : cell.editing ? cell.textarea.value : cell.savedInput;
}

// The server's input (at `version`) taken by a cell: the editor changes as little as it can.
function takeInput(cell, text, version) {
  const shown = editorText(cell);
  cell.savedInput = text;
  cell.baseVersion = version;
  if (cell.view || cell.editing) applyChanges(cell, changeSet(shown, text));
  else if (cell.renderText) cell.renderText();
  cell.el.classList.toggle("dirty", cell.isDirty());
}

// After a save: the server's answer is the new base.  When it merged others' edits into
// what was sent, they are put into the editor over whatever was typed since it was sent.
export function afterSave(cell, answer, sent) {
  if (!answer || typeof answer.input !== "string") {
    cell.savedInput = sent;
    return;
  }
  const current = editorText(cell);
  cell.savedInput = answer.input;
  if (typeof answer.input_version === "number") cell.baseVersion = answer.input_version;
  if (answer.input !== sent && (cell.view || cell.editing)) {
    const merged = changeSet(sent, answer.input);
    applyChanges(cell, current === sent ? merged : merged.map(changeSet(sent, current)));
  }
  cell.el.classList.toggle("dirty", cell.isDirty());
}

// A save the server refused: a conflict (409 with the current input) or a cell deleted
// meanwhile (404) is shown in the cell, and true returned; anything else (offline) false:
// the text stays unsaved and is saved again when the server answers again.
export function saveRefused(cell, sent, err) {
  if (err && err.status === 409 && err.data && typeof err.data.input === "string") {
    showConflict(cell, sent, err.data.input, err.data.input_version);
    return true;
  }
  if (err && err.status === 404) {
    orphan(cell, err.message);
    return true;
  }
  return false;
}

// --- a conflict: yours vs theirs, until the person chooses ------------------------------

function panelAfter(cell) {
  return cell.inputEl || cell.editorEl || cell.rendered;
}

function showConflict(cell, mine, theirs, version) {
  cell.onHold = "conflict";
  cell.conflict = { mine, theirs, version };
  renderConflict(cell);
}

function renderConflict(cell) {
  const { mine, theirs } = cell.conflict;
  const button = (what, label, title) => h("button", { type: "button", class: "btn", dataset: { conflict: what }, title }, label);
  const panel = h("div", { class: "cell-conflict", role: "alert", dataset: { role: "conflict" } },
    h("p", { class: "conflict-note", text: "Someone else changed the same lines of this cell: your text was not saved. Nothing is lost: choose what to keep, or edit your text above by hand and keep it." }),
    h("div", { class: "conflict-sides" },
      h("div", { class: "conflict-side" }, h("div", { class: "conflict-label", text: "Yours" }),
        h("pre", { class: "conflict-text", dataset: { role: "conflict-mine" }, text: mine })),
      h("div", { class: "conflict-side" }, h("div", { class: "conflict-label", text: "Theirs (current)" }),
        h("pre", { class: "conflict-text", dataset: { role: "conflict-theirs" }, text: theirs }))),
    h("div", { class: "conflict-actions" },
      button("keep-mine", "Keep mine", "Save the text in the editor over theirs"),
      button("take-theirs", "Take theirs", "Put their text in the editor (yours goes away)")));
  panel.addEventListener("click", (ev) => {
    const what = ev.target.closest("[data-conflict]")?.dataset.conflict;
    if (what === "keep-mine") keepMine(cell);
    else if (what === "take-theirs") takeTheirs(cell);
  });
  cell.conflictEl?.remove();
  cell.conflictEl = panel;
  panelAfter(cell).after(panel);
}

function endConflict(cell) {
  cell.conflictEl?.remove();
  cell.conflictEl = null;
  cell.conflict = null;
  cell.onHold = null;
}

// The text in the editor (what was typed, edited by hand or not) saved based on theirs.
function keepMine(cell) {
  const { theirs, version } = cell.conflict;
  endConflict(cell);
  cell.savedInput = theirs;
  cell.baseVersion = version;
  cell.el.classList.toggle("dirty", cell.isDirty());
  return cell.save();
}

function takeTheirs(cell) {
  const { theirs, version } = cell.conflict;
  endConflict(cell);
  takeInput(cell, theirs, version);
}

// --- a cell deleted by someone else while it had unsaved text ----------------------------

function orphan(cell, message) {
  const page = cell.page;
  if (cell.orphaned || cell.removed) return;
  cell.orphaned = true;
  cell.onHold = "deleted";
  cell.cancelSave();
  if (cell.conflict) endConflict(cell);
  if (page.cells.get(cell.id) === cell) page.cells.delete(cell.id);
  page.poller.watched.delete(cell);
  cell.el.classList.add("orphaned");
  const panel = h("div", { class: "cell-orphaned", role: "alert", dataset: { role: "cell-deleted" } },
    h("p", { text: `${message || "Someone else deleted this cell."} Your text is kept here.` }),
    h("div", { class: "conflict-actions" },
      h("button", { type: "button", class: "btn btn-primary", dataset: { orphan: "restore" } }, "Restore as a new cell"),
      h("button", { type: "button", class: "btn", dataset: { orphan: "discard" } }, "Discard")));
  panel.addEventListener("click", (ev) => {
    const what = ev.target.closest("[data-orphan]")?.dataset.orphan;
    if (what === "restore") restoreOrphan(cell);
    else if (what === "discard") dropOrphan(cell);
  });
  cell.conflictEl = panel;
  panelAfter(cell).after(panel);
  page.actions.updateEmptyState();
}

function restoreOrphan(cell) {
  const { actions } = cell.page;
  const text = cell.getInput();
  const live = (el) => el && el.cell && !el.cell.orphaned && !el.cell.removed ? el.cell : null;
  let prev = cell.el.previousElementSibling;
  while (prev && !live(prev)) prev = prev.previousElementSibling;
  let next = cell.el.nextElementSibling;
  while (next && !live(next)) next = next.nextElementSibling;
  const where = prev ? { after: prev.cell } : next ? { before: next.cell } : {};
  actions.addCell({ type: cell.data.type === "text" ? "text" : "compute", input: text, focus: false, ...where });
  dropOrphan(cell);
}

function dropOrphan(cell) {
  cell.destroy();
  cell.page.actions.updateEmptyState();
}

// --- the long poll ------------------------------------------------------------------------

// page.live: polls the worksheet's changes one request at a time and applies them;
// refreshNow() asks again at once.  Null on pages that only show (print, published).
export function makeLive(page) {
  if (page.root.dataset.mode) return null;
  const { actions } = page;
  if (typeof page.version !== "number") page.version = Number(page.worksheet.version) || 0;
  let inflight = false;
  let again = false;
  let failures = 0;
  let wake = null;
  let files = JSON.stringify(page.worksheet.data_files || []);

  // A pause that refreshNow() (or coming back online) cuts short.
  const pause = (ms) => new Promise((resolve) => {
    const timer = setTimeout(() => { wake = null; resolve(); }, ms);
    wake = () => { clearTimeout(timer); wake = null; resolve(); };
  });

  function saveUnsaved() {
    for (const cell of actions.allCells()) {
      if (!cell.onHold && !cell.removed && cell.id !== null && cell.isDirty()) cell.save();
    }
  }

  // What stays where it is on the screen while cells above change: the cursor of the
  // focused editor, or the first cell seen.  Returns the correction to make afterwards.
  function scrollAnchor() {
    const focused = actions.cellOf(document.activeElement);
    let measure = null;
    if (focused && focused.view && focused.el.isConnected) {
      const view = focused.view;
      measure = () => view.coordsAtPos(view.state.selection.main.head)?.top ?? null;
    }
    if (measure === null || measure() === null || measure() < 0 || measure() > window.innerHeight) {
      const el = Array.from(page.cellsEl.children).find((c) => c.getBoundingClientRect().bottom > 0);
      measure = el ? () => (el.isConnected ? el.getBoundingClientRect().top : null) : null;
    }
    const before = measure ? measure() : null;
    return () => {
      const after = before === null ? null : measure();
      if (after !== null && Math.abs(after - before) >= 1) window.scrollBy(0, after - before);
    };
  }

  function cellGone(cell) {
    if (!cell || cell.removed || cell.orphaned) return;
    if (cell.isDirty()) orphan(cell, `Someone else deleted this cell.`);
    else actions.removeCellLocally(cell.id);
  }

  function applyCell(cell, cd) {
    if (cd.type && cell.data.type && cd.type !== cell.data.type) {
      if (cell.isDirty() || cell.onHold) return;
      const fresh = actions.makeCell(cd); // a compute cell made a text cell, or back
      cell.el.replaceWith(fresh.el);
      page.poller.watched.delete(cell);
      cell.destroy();
      if (ACTIVE_STATES.has(fresh.status)) page.poller.watch(fresh);
      return;
    }
    if (typeof cd.input === "string" && typeof cd.input_version === "number" &&
        cd.input_version > (cell.baseVersion ?? -1)) {
      if (cell.conflict) {
        cell.conflict = { ...cell.conflict, theirs: cd.input, version: cd.input_version };
        renderConflict(cell);
      } else if (!cell.onHold && !cell.isDirty()) {
        takeInput(cell, cd.input, cd.input_version);
      }
      // else: the unsaved text stays; saving it merges with this on the server
    }
    // Outputs of a cell being evaluated here, or followed by the cell poller, come from
    // them: this answer (of an input saved before evaluating) would show the old ones.
    if (!ACTIVE_STATES.has(cell.status) && !page.poller.watched.has(cell)) {
      cell.update(cd);
      // Evaluated elsewhere (its input maybe unchanged): its outputs stream in here too.
      if (ACTIVE_STATES.has(cell.status)) page.poller.watch(cell);
    }
  }

  function applyTags(tags) {
    const box = document.querySelector("[data-role=tags]");
    if (!box || !Array.isArray(tags) || box.dataset.tags === tags.join(" ")) return;
    box.dataset.tags = tags.join(" ");
    // Only the owner's page links its tags to the listing.
    const owner = !!document.querySelector("[data-action=edit-tags]");
    box.replaceChildren(...tags.map((tag) => owner
      ? h("a", { class: "tag", href: new URL(`../?tag=${encodeURIComponent(tag)}`, page.wsUrl).href, text: tag })
      : h("span", { class: "tag", text: tag })));
  }

  // `asked`: when the request left (performance.now()).
  async function apply(data, asked) {
    if (!data.full && data.version === page.version) return; // a wait that ended with no news
    // Cells this page is creating get their ids first: the answer may already have them.
    await Promise.allSettled(actions.allCells().filter((c) => c.id === null).map((c) => c.ready));
    const restore = scrollAnchor();
    // A cell this page deleted after the request left, listed by an answer computed
    // before, does not come back; answers asked later know of the deletion.
    const deleted = actions.deletedHere;
    const goneSince = (id) => (deleted.get(id) ?? -Infinity) > asked;
    for (const [id, at] of deleted) if (at <= asked) deleted.delete(id);
    const listed = (Array.isArray(data.cells) ? data.cells : []).filter((cd) => !goneSince(cd.id));
    for (const cd of listed) {
      const cell = page.cells.get(cd.id);
      if (cell) {
        applyCell(cell, cd);
      } else {
        const fresh = actions.makeCell(cd);
        actions.insertCellElement(fresh);
        if (ACTIVE_STATES.has(fresh.status)) page.poller.watch(fresh);
      }
    }
    let removed = Array.isArray(data.removed) ? data.removed : [];
    if (data.full) {
      const ids = new Set(listed.map((cd) => cd.id));
      removed = Array.from(page.cells.keys()).filter((id) => !ids.has(id));
    }
    for (const id of removed) cellGone(page.cells.get(id));
    if (Array.isArray(data.order)) actions.applyOrder(data.order);
    actions.applyWorksheetMeta({ name: data.name, typeset: data.typeset, system: data.system });
    applyTags(data.tags);
    if (Array.isArray(data.data_files) && JSON.stringify(data.data_files) !== files) {
      files = JSON.stringify(data.data_files);
      page.worksheet.data_files = data.data_files;
      page.dataFiles.render(data.data_files);
    }
    actions.updateEmptyState();
    restore();
    if (typeof data.version === "number") page.version = data.version;
  }

  // Whether this page is alone on the worksheet (no presence: as before, not alone).
  const alone = () => !!page.presence && page.presence.alone;

  async function poll(wait) {
    const since = page.version;
    const presence = page.presenceStamp ?? 0;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), POLL_TIMEOUT);
    const t0 = Date.now();
    const asked = performance.now();
    try {
      const data = await page.api("GET", `./?since=${since}&wait=${wait}&presence=${encodeURIComponent(presence)}`,
        null, { signal: ctrl.signal });
      if (failures) {
        failures = 0;
        if (page.messages.shown() === "connection") page.messages.hide();
        saveUnsaved(); // back from offline: what was kept is saved (and merged) now
      }
      await apply(data, asked);
      if (data.presence) page.presence?.update(data.presence, data.presence_stamp);
      const news = data.version !== since || (data.presence_stamp !== undefined && data.presence_stamp !== presence);
      // A server that answers at once without news must not be asked again at once.
      if (!news && !again && Date.now() - t0 < 1000) await pause(1000 - (Date.now() - t0));
    } catch (err) {
      failures++;
      if (err.name !== "AbortError" && failures >= 2) {
        page.messages.show("Lost connection to the server, retrying\u2026", "connection");
      }
      if (err.status && err.status !== 429 && err.status < 500) console.error(err);
      if (!again) await pause(Math.min(10_000, 500 * 2 ** Math.min(failures, 5)));
    } finally {
      clearTimeout(timer);
    }
  }

  async function run() {
    if (inflight) return;
    inflight = true;
    try {
      for (;;) {
        // A waiting poll holds one of the app server's threads (waitress): with 4 threads
        // and 4 polls waiting, a quick GET took 4.5 s (measured).  A hidden tab does not
        // hold one; shown again, it catches up (since).
        while (document.visibilityState === "hidden") await untilShown();
        again = false;
        if (!alone()) {
          await poll(WAIT);
          continue;
        }
        await poll(0);
        if (!again && alone()) await pause(ALONE_MS);
      }
    } finally {
      inflight = false;
    }
  }

  // Ask at once (a restore from the History panel, or back online).
  function refreshNow() {
    again = true;
    if (wake) wake();
    if (!inflight) run();
  }

  const untilShown = () => new Promise((resolve) => {
    const shown = () => {
      if (document.visibilityState === "hidden") return;
      document.removeEventListener("visibilitychange", shown);
      resolve();
    };
    document.addEventListener("visibilitychange", shown);
  });

  window.addEventListener("online", () => {
    saveUnsaved();
    refreshNow();
  });
  // A page alone asks at once when shown again (a long poll does anyway).
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && alone()) refreshNow();
  });
  setTimeout(run, 0); // once the page has drawn its cells

  return { refreshNow, cellGone };
}
