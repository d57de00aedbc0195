// What the keyboard does to the worksheet's cells (issue 22): evaluate and move on,
// split a cell and join it with the one above, go to the neighbouring cell, delete an
// empty cell and bring deleted cells back (a toast with Undo), evaluate from a cell down,
// and the count of cells waiting in the toolbar.  The keys themselves are in keys.js.

import { h } from "./dom.js";

// Deletions one can undo, newest last.
const UNDO_KEPT = 50;
const TOAST_MS = 10000;

const isText = (cell) => cell && cell.data.type === "text";
const isCompute = (cell) => cell && cell.data.type !== "text";
// A compute cell the cursor may go into (folded %hide cells are passed by).
const enterable = (cell) => isCompute(cell) && !cell.removed && !(cell.isFolded && cell.isFolded());

function sibling(cell, dir, accept) {
  let el = cell.el;
  do {
    el = dir < 0 ? el.previousElementSibling : el.nextElementSibling;
  } while (el && !(el.cell && accept(el.cell)));
  return el ? el.cell : null;
}

// Where a text editor's cursor is: at the start, on the first or last line, empty.
function textCaret(cell) {
  const ta = cell.textarea;
  const { selectionStart: from, selectionEnd: to, value } = ta;
  return {
    from, to, value,
    empty: from === to,
    firstLine: !value.slice(0, from).includes("\n"),
    lastLine: !value.slice(to).includes("\n"),
  };
}

// The cell's text cut at `pos` (the newline at the cut goes, as in sagenb).
function cut(text, pos) {
  return [text.slice(0, pos).replace(/\n$/, ""), text.slice(pos).replace(/^\n/, "")];
}

export function makeCellOps(page) {
  const { actions } = page;
  const deleted = []; // [{type, input, prev, next}]
  let toast = null;
  let toastTimer = null;

  function focusText(cell, pos) {
    cell.focus();
    if (!cell.editing) return;
    const at = pos === "end" ? cell.textarea.value.length : pos;
    cell.textarea.setSelectionRange(at, at);
  }

  // The cursor into `cell`, at "start", "end" or an offset.
  function enter(cell, where) {
    if (isText(cell)) {
      focusText(cell, where === "start" ? 0 : where === "end" ? "end" : where);
      return;
    }
    if (typeof where === "number") {
      cell.focus();
      cell.view.dispatch({ selection: { anchor: where }, scrollIntoView: true });
    } else {
      cell.focus(where);
    }
  }

  // Shift-Enter's move: the next compute cell below, else a new one right below.
  let moved = null; // {from, to, input}: the last such move
  function advance(cell) {
    let to = sibling(cell, 1, enterable);
    if (to) enter(to, "start");
    else to = actions.addCell({ type: "compute", after: cell, focus: true });
    moved = { from: cell, to, input: to.getInput() };
  }

  // Whether the keyboard went on from `cell` (Shift-Enter) to a cell where nothing was
  // typed since: the cell's input() box may then take it back.
  function justLeft(cell) {
    return !!moved && moved.from === cell && !moved.to.removed && moved.to.el.contains(document.activeElement)
      && moved.to.getInput() === moved.input;
  }

  function evaluateAndAdvance(cell) {
    if (isText(cell)) {
      cell.finishEdit(true);
    } else {
      cell.evaluate();
    }
    advance(cell);
    return true;
  }

  function evaluateAndInsert(cell) {
    if (isText(cell)) {
      cell.finishEdit(true);
      actions.addCell({ type: "compute", after: cell, focus: true });
    } else {
      cell.evaluate({ insertBelow: true });
    }
    return true;
  }

  async function evaluateBelow(cell) {
    if (isText(cell)) cell.finishEdit(true);
    try {
      await cell.ready;
    } catch {
      return;
    }
    await actions.evaluateAll({ from: cell.id });
  }

  // Ctrl-; : the text after the cursor goes to a new cell of the same type below.
  function split(cell) {
    let text;
    let pos;
    if (isText(cell)) {
      if (!cell.editing) return false;
      ({ value: text, from: pos } = textCaret(cell));
    } else {
      text = cell.getInput();
      pos = cell.view.state.selection.main.from;
    }
    const [before, after] = cut(text, pos);
    if (isText(cell)) {
      cell.textarea.value = before;
      cell.finishEdit(true);
    } else {
      cell.setInput(before);
      cell.save();
    }
    const added = actions.addCell({ type: cell.data.type, after: cell, input: after, focus: true });
    if (isText(added)) focusText(added, 0);
    return true;
  }

  // Ctrl-Backspace at a cell's start: its text goes to the end of the cell above (of the
  // same type), the cursor to where they meet, and the cell away.
  function join(cell) {
    const above = cell.el.previousElementSibling ? cell.el.previousElementSibling.cell : null;
    if (!above || above.removed || above.data.type !== cell.data.type) {
      page.messages.show(above ? "Only cells of the same kind join (the cell above is not a "
        + (isText(cell) ? "text" : "compute") + " cell)." : "There is no cell above to join with.", "info");
      return true;
    }
    const mine = cell.getInput();
    const theirs = isText(above) && above.editing ? above.textarea.value : above.getInput();
    const sep = theirs && mine ? "\n" : "";
    const at = theirs.length + sep.length;
    cell.cancelSave();
    above.setInput(theirs + sep + mine);
    if (isText(above)) {
      focusText(above, at);
    } else {
      above.save();
      enter(above, at);
    }
    actions.deleteCell(cell, { undoable: false, focus: false });
    return true;
  }

  // Backspace in an empty cell: the cell goes, the cursor to the end of the cell above.
  function deleteIfEmpty(cell) {
    if (cell.getInput() !== "" || actions.allCells().length < 2) return false;
    const ok = (c) => enterable(c) || isText(c);
    const above = sibling(cell, -1, ok);
    const below = above ? null : sibling(cell, 1, ok);
    cell.cancelSave();
    actions.deleteCell(cell, { focus: false });
    if (above) enter(above, "end");
    else if (below) enter(below, "start");
    return true;
  }

  // An arrow key on the first/last line of a text editor: save and go to the next cell.
  function leaveText(cell, dir) {
    const caret = textCaret(cell);
    if (!caret.empty || !(dir < 0 ? caret.firstLine : caret.lastLine)) return false;
    const to = sibling(cell, dir, enterable);
    if (!to) return false;
    cell.finishEdit(true);
    enter(to, dir < 0 ? "end" : "start");
    return true;
  }

  // --- undoing deletions --------------------------------------------------------------

  // What sheet.js deleteCell tells once the server deleted a cell.
  function remember(record) {
    deleted.push(record);
    if (deleted.length > UNDO_KEPT) deleted.shift();
    showToast();
  }

  function showToast() {
    clearTimeout(toastTimer);
    if (!deleted.length) {
      if (toast) toast.hidden = true;
      return;
    }
    if (!toast) {
      toast = h("div", { class: "undo-toast", role: "status", "aria-live": "polite", dataset: { role: "undo-toast" } });
      document.body.append(toast);
    }
    const n = deleted.length;
    const undo = h("button", { type: "button", class: "btn btn-primary", dataset: { role: "undo-delete" } }, "Undo");
    undo.addEventListener("click", () => undoDelete());
    const close = h("button", { type: "button", class: "message-close", title: "Dismiss", "aria-label": "Dismiss" }, "\u00d7");
    close.addEventListener("click", () => {
      toast.hidden = true;
    });
    toast.replaceChildren(
      h("span", { text: n === 1 ? "Cell deleted." : `Cell deleted (${n} can be brought back).` }),
      undo,
      h("span", { class: "hint", text: "Alt-Shift-Z" }),
      close);
    toast.hidden = false;
    toastTimer = setTimeout(() => {
      toast.hidden = true;
    }, TOAST_MS);
  }

  // The last deleted cell comes back where it was, with its input (not its output).
  function undoDelete() {
    const record = deleted.pop();
    if (!record) {
      page.messages.show("No deleted cell to bring back.", "info");
      return false;
    }
    const alive = (c) => c && !c.removed && c.el.isConnected;
    const where = alive(record.prev) ? { after: record.prev } : alive(record.next) ? { before: record.next } : {};
    const cell = actions.addCell({ type: record.type, input: record.input, focus: record.type !== "text", ...where });
    cell.el.scrollIntoView({ block: "nearest" });
    if (deleted.length) showToast();
    else if (toast) toast.hidden = true;
    return true;
  }

  // --- the queue --------------------------------------------------------------------

  // How many cells wait and run, kept up to date from the cells' data-status.
  function watchQueue(el) {
    if (!el) return;
    let pending = false;
    const count = () => {
      pending = false;
      const queued = page.cellsEl.querySelectorAll(".cell[data-status=queued]").length;
      const running = page.cellsEl.querySelectorAll(".cell[data-status=running]").length;
      el.dataset.queued = String(queued);
      el.dataset.running = String(running);
      const parts = [];
      if (running) parts.push(`${running} running`);
      if (queued) parts.push(`${queued} waiting`);
      el.textContent = parts.join(", ");
      el.hidden = !parts.length;
    };
    const later = () => {
      if (!pending) {
        pending = true;
        queueMicrotask(count);
      }
    };
    // A cell's status changes, and cells come and go (not the changes inside outputs;
    // observe() again on the same node would replace the options, hence two observers).
    new MutationObserver(later).observe(page.cellsEl, { subtree: true, attributes: true, attributeFilter: ["data-status"] });
    new MutationObserver(later).observe(page.cellsEl, { childList: true });
    count();
  }

  return {
    advance, justLeft, evaluateAndAdvance, evaluateAndInsert, evaluateBelow, split, join, deleteIfEmpty,
    leaveText, remember, undoDelete, watchQueue, isText,
  };
}
