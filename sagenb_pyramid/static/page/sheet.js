// The worksheet's cells as a whole and the worksheet's own actions: adding, moving and
// deleting cells, evaluating all, interrupt, restart, trust, clear, re-reading the
// worksheet, its name, typesetting and default system.

import { Cell, TextCell, ACTIVE } from "./cell.js";
import { ComputeCell } from "./compute.js";
import { h } from "./dom.js";

// The page's actions (page.actions), on `page`, the page's state (worksheet.js).
export function makeActions(page) {
  const { cells, cellsEl, worksheet, nameEl, typesetBox, systemSelect } = page;

  function makeCell(data) {
    const cell = data.type === "text" ? new TextCell(data, page) : new ComputeCell(data, page);
    if (cell.id !== null) cells.set(cell.id, cell);
    return cell;
  }

  // All cells in page order, including those still being created.
  function allCells() {
    return Array.from(cellsEl.children, (el) => el.cell).filter(Boolean);
  }

  function cellOf(el) {
    const c = el && el.closest(".cell");
    return c ? c.cell : null;
  }

  function insertCellElement(cell, { after, before } = {}) {
    const resolve = (x) => (x instanceof Cell ? x : cells.get(x));
    const ref = after !== undefined ? resolve(after) : before !== undefined ? resolve(before) : null;
    if (ref && !ref.removed && after !== undefined) ref.el.after(cell.el);
    else if (ref && !ref.removed) ref.el.before(cell.el);
    else cellsEl.append(cell.el);
  }

  // The new cell appears (and takes the focus) at once, so that typing right
  // after Alt-Enter lands in it; it gets its id when the server answers.
  function addCell({ type = "compute", after, before, input = "", focus = true } = {}) {
    const resolve = (x) => (x === undefined || x === null ? null : x instanceof Cell ? x : cells.get(x) || null);
    const anchor = resolve(after !== undefined ? after : before);
    const where = after !== undefined ? "after" : "before";
    const cell = makeCell({
      id: null, type, input, status: "new", outputs: [], execution_count: null,
      version: 0, started: null, finished: null,
    });
    cell.el.classList.add("pending");
    if (anchor) insertCellElement(cell, { [where]: anchor });
    else cellsEl.append(cell.el);
    updateEmptyState();
    if (focus) cell.focus("start");
    cell.ready = (async () => {
      const body = { input, type };
      if (anchor) {
        const anchorId = await anchor.ready;
        if (anchor.removed) {
          // the anchor went away meanwhile: keep the page order
          const prev = cell.el.previousElementSibling?.cell;
          if (prev && prev.id !== null) body.after = prev.id;
        } else {
          body[where] = anchorId;
        }
      }
      const res = await page.api("POST", "cells", body);
      const data = res.cell || { id: res.id, type, input, status: "new", outputs: [], version: 0 };
      cell.id = data.id;
      cell.data = { ...data, input: cell.data.input };
      cell.baseVersion = data.input_version ?? 0; // what its first edit is based on
      cell.el.dataset.cellId = String(data.id);
      cell.el.classList.remove("pending");
      cells.set(data.id, cell);
      return data.id;
    })();
    cell.ready.catch((err) => {
      page.messages.report(err);
      cell.destroy();
      updateEmptyState();
    });
    return cell;
  }

  function removeCellLocally(id) {
    const cell = cells.get(id);
    if (!cell) return;
    cells.delete(id);
    page.poller.watched.delete(cell);
    cell.destroy();
    updateEmptyState();
  }

  // Cells this page deleted: id -> when the server said so (performance.now()).  A
  // ?since= answer asked before that may still list them (live.js keeps them away).
  const deletedHere = new Map();

  // `undoable`: the deletion may be undone (cellops.js); `focus`: false when the caller
  // puts the cursor elsewhere.
  async function deleteCell(cell, { undoable = true, focus = true } = {}) {
    const record = {
      type: cell.data.type, input: cell.getInput(),
      prev: cell.el.previousElementSibling?.cell, next: cell.el.nextElementSibling?.cell,
    };
    cell.cancelSave();
    try {
      await cell.ready;
      // A save on its way first (the editor's blur as Delete was clicked): answered
      // after the deletion, its 404 would say that someone else deleted the cell.
      await cell.saveChain;
      await page.api("DELETE", `cells/${cell.id}`);
      deletedHere.set(cell.id, performance.now());
      // The cell may be gone already (a ?since= answer came first): its neighbours then.
      const alive = (c) => c && !c.removed && c.el.isConnected;
      const next = cell.el.isConnected ? (cell.el.nextElementSibling || cell.el.previousElementSibling)?.cell
        : [record.next, record.prev].find(alive);
      // A slow answer does not take the keyboard from where the person went meanwhile.
      const active = document.activeElement;
      const free = !active || active === document.body || cell.el.contains(active);
      removeCellLocally(cell.id);
      if (focus && free && next instanceof ComputeCell) next.focus();
      if (undoable && page.cellOps) page.cellOps.remember(record);
    } catch (err) {
      if (!cell.removed && cell.isDirty()) cell.scheduleSave(); // still here: its text saved as before
      page.messages.report(err);
    }
  }

  // The cells put in `order` (ids).  A cell the order does not list (made here after the
  // answer was computed, a late ?since=; or one being created) stays after the cell it
  // follows now, not pushed to the end (and moved back, losing the keyboard, next time).
  function applyOrder(order) {
    const focused = cellOf(document.activeElement);
    const listed = new Set(order);
    const unlisted = new Map(); // id of the listed cell above (null: none) -> cells following it
    let above = null;
    for (const el of cellsEl.children) {
      const cell = el.cell;
      if (!cell) continue;
      if (cell.id !== null && listed.has(cell.id) && cells.get(cell.id) === cell) {
        above = cell.id;
      } else {
        if (!unlisted.has(above)) unlisted.set(above, []);
        unlisted.get(above).push(cell);
      }
    }
    const wanted = [...(unlisted.get(null) || [])];
    for (const id of order) {
      const cell = cells.get(id);
      if (cell) wanted.push(cell, ...(unlisted.get(id) || []));
    }
    let prev = null;
    for (const cell of wanted) {
      const expected = prev ? prev.nextElementSibling : cellsEl.firstElementChild;
      if (expected !== cell.el) {
        if (prev) prev.after(cell.el);
        else cellsEl.prepend(cell.el);
      }
      prev = cell.el;
    }
    if (focused && !focused.removed && !focused.el.contains(document.activeElement)) focused.focus();
  }

  async function moveCell(cell, direction) {
    try {
      await cell.ready;
      const res = await page.api("POST", `cells/${cell.id}/move`, { direction });
      if (Array.isArray(res.order)) applyOrder(res.order);
      cell.el.scrollIntoView({ block: "nearest" });
    } catch (err) {
      page.messages.report(err);
    }
  }

  async function saveAll() {
    await Promise.all(allCells().map((c) => (c.isDirty() ? c.save() : c.ready.then(() => c.saveChain))));
  }

  // Every compute cell, or (`from`: a cell's id) that cell and those below it.
  async function evaluateAll({ from } = {}) {
    page.messages.hideIfError();
    try {
      await saveAll();
      const res = await page.api("POST", "evaluate_all", from === undefined ? {} : { from });
      for (const id of res.queued || []) {
        const cell = cells.get(id);
        if (!cell || !(cell instanceof ComputeCell)) continue;
        if (!ACTIVE.has(cell.status)) {
          cell.data = { ...cell.data, status: "queued", started: null };
          cell.el.dataset.status = "queued";
          cell.refresh();
        }
        cell.seq = page.nextSeq();
        page.poller.watch(cell);
      }
    } catch (err) {
      page.messages.report(err);
    }
  }

  async function interrupt() {
    try {
      await page.api("POST", "interrupt", {});
      page.messages.show("Interrupt sent.", "info");
    } catch (err) {
      page.messages.report(err);
    }
  }

  // Re-read the whole worksheet and apply the cell states.
  async function refreshAll() {
    const data = await page.api("GET", "./");
    applyWorksheetMeta(data);
    page.dataFiles.render(data.data_files);
    if (!Array.isArray(data.cells)) return;
    const seen = new Set();
    for (const cd of data.cells) {
      seen.add(cd.id);
      const cell = cells.get(cd.id);
      if (cell) cell.update(cd);
      else insertCellElement(makeCell(cd));
    }
    for (const id of Array.from(cells.keys())) if (!seen.has(id)) removeCellLocally(id);
    applyOrder(data.cells.map((c) => c.id));
    for (const cell of cells.values()) if (ACTIVE.has(cell.status)) page.poller.watch(cell);
    updateEmptyState();
  }

  async function restart() {
    try {
      await page.api("POST", "restart", {});
      page.messages.show("Worker restarted.", "info");
      await refreshAll();
    } catch (err) {
      page.messages.report(err);
    }
  }

  // The owner vouches for the worksheet: the page is drawn again with scripts of outputs.
  async function trustWorksheet() {
    try {
      await page.api("POST", "trust", { trusted: true });
      location.reload();
    } catch (err) {
      page.messages.report(err);
    }
  }

  async function unpublish() {
    if (!confirm("Stop publishing? Its /pub/ address will answer \"not found\".")) return;
    try {
      await page.api("DELETE", "publish");
      location.reload();
    } catch (err) {
      page.messages.report(err);
    }
  }

  async function clearAll() {
    try {
      await page.api("POST", "clear_outputs", {});
      await refreshAll();
    } catch (err) {
      page.messages.report(err);
    }
  }


  // The worksheet's default system in the selector (added when the list lacks it).
  function showSystem(value) {
    if (!systemSelect || typeof value !== "string" || !value) return;
    if (!Array.from(systemSelect.options).some((o) => o.value === value)) {
      systemSelect.append(h("option", { value, text: value }));
    }
    systemSelect.value = value;
  }

  function applyWorksheetMeta(data) {
    if (!data) return;
    if (typeof data.name === "string") {
      worksheet.name = data.name;
      if (nameEl) nameEl.textContent = data.name;
      document.title = `${data.name} \u2014 Sage Notebook`;
    }
    if (typeof data.system === "string") {
      worksheet.system = data.system;
      showSystem(data.system);
    }
    if (typeof data.typeset === "boolean") {
      const changed = worksheet.typeset !== data.typeset;
      worksheet.typeset = data.typeset;
      if (typesetBox) typesetBox.checked = data.typeset;
      if (changed) {
        for (const cell of cells.values()) if (cell instanceof ComputeCell) cell.outputs.rerender(cell.data.outputs || []);
      }
    }
  }

  async function rename() {
    const name = window.prompt("Rename worksheet", worksheet.name || "");
    if (name === null) return;
    const trimmed = name.trim();
    if (!trimmed || trimmed === worksheet.name) return;
    try {
      applyWorksheetMeta(await page.api("PATCH", "./", { name: trimmed }));
    } catch (err) {
      page.messages.report(err);
    }
  }

  // Tags: words the owner files the worksheet under (the listing filters by them).
  async function editTags() {
    const box = document.querySelector("[data-role=tags]");
    const current = box ? box.dataset.tags : "";
    const answer = window.prompt("Tags, separated by spaces or commas", current);
    if (answer === null) return;
    const tags = answer.split(/[\s,]+/).filter(Boolean);
    try {
      await page.api("PATCH", "./", { tags });
      location.reload();
    } catch (err) {
      page.messages.report(err);
    }
  }

  async function setTypeset(value) {
    try {
      const res = await page.api("PATCH", "./", { typeset: value });
      applyWorksheetMeta({ ...res, typeset: typeof res.typeset === "boolean" ? res.typeset : value });
    } catch (err) {
      if (typesetBox) typesetBox.checked = !value;
      page.messages.report(err);
    }
  }

  async function setSystem(value) {
    const previous = worksheet.system || "sage";
    try {
      applyWorksheetMeta(await page.api("PATCH", "./", { system: value }));
    } catch (err) {
      showSystem(previous);
      page.messages.report(err);
    }
  }

  function updateEmptyState() {
    page.root.classList.toggle("no-cells", cells.size === 0);
  }

  return {
    makeCell, allCells, cellOf, insertCellElement, addCell, removeCellLocally, deleteCell, deletedHere,
    applyOrder, moveCell, saveAll, evaluateAll, interrupt, refreshAll, restart,
    trustWorksheet, unpublish, editTags, clearAll, showSystem, applyWorksheetMeta, rename, setTypeset, setSystem,
    updateEmptyState,
  };
}
