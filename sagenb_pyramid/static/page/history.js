// The History panel of the worksheet page (issue 21), opened by the toolbar's
// data-action="history" button: the worksheet's revisions (<worksheet>/revisions,
// services/history.py), newest first and a page at a time; one revision shown read
// only, drawn as untrusted content (the page's sanitizer, Markdown and output modules
// with trust off: no script runs, no frame is made); the difference of two revisions,
// or of one and now, side by side from the server's per-cell unified diffs; and, for
// those who may edit, restoring a revision, naming and pinning it; for the owner, the
// switch that lets viewers browse the history. Every text from a revision is set as
// text or goes through the sanitizer.

import { h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { typeset, typesetClear } from "./math.js";
import { OutputArea } from "./outputs.js";
import { ACTIVE } from "./cell.js";

// Entries drawn at a time: a long history opens as fast as a short one.
export const PAGE_SIZE = 50;
const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const KIND_LABELS = { import: "imported", "before-restore": "before a restore", restore: "restored" };

// A revision's time (unix seconds) in the viewer's locale and time zone.
export function formatTime(seconds) {
  return TIME.format(new Date(seconds * 1000));
}

// "2 cells added, 1 changed, 3 evaluated" from a revision's summary.
export function summaryText(summary) {
  if (!summary) return "imported snapshot";
  const parts = [];
  for (const key of ["added", "changed", "removed", "moved"]) {
    const n = summary[key];
    if (n) parts.push(parts.length ? `${n} ${key}` : `${n} ${n === 1 ? "cell" : "cells"} ${key}`);
  }
  if (summary.evaluations) parts.push(`${summary.evaluations} evaluated`);
  if (summary.renamed) parts.push("renamed");
  // A restore names the revision it restored (its id is its time).
  if (summary.restored && Number.isFinite(Number(summary.restored))) parts.push(`back to ${formatTime(Number(summary.restored))}`);
  return parts.length ? parts.join(", ") : "no change";
}

// The unified diff lines of one cell (difflib's: two header lines, then hunks) laid out
// side by side: rows of {kind, left, right}, `left`/`right` being {n, text} or null;
// kind is "hunk" (a separator), "same", "del", "add" or "change" (a removed line facing
// the added line that took its place).
export function sideBySide(lines) {
  const rows = [];
  let i = 0;
  if (lines[0]?.startsWith("--- ") && lines[1]?.startsWith("+++ ")) i = 2;
  let ln = 0;
  let rn = 0;
  let dels = [];
  let adds = [];
  const flush = () => {
    for (let k = 0; k < Math.max(dels.length, adds.length); k++) {
      const left = dels[k] ?? null;
      const right = adds[k] ?? null;
      rows.push({ kind: left && right ? "change" : left ? "del" : "add", left, right });
    }
    dels = [];
    adds = [];
  };
  for (; i < lines.length; i++) {
    const line = lines[i];
    const hunk = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (hunk) {
      flush();
      // A range of no lines names the line before it (0 when empty).
      ln = Math.max(Number(hunk[1]), 1);
      rn = Math.max(Number(hunk[2]), 1);
      // Between two hunks: lines that did not change are left out there.
      if (rows.length) rows.push({ kind: "hunk", left: null, right: null });
    } else if (line.startsWith("-")) {
      dels.push({ n: ln++, text: line.slice(1) });
    } else if (line.startsWith("+")) {
      adds.push({ n: rn++, text: line.slice(1) });
    } else {
      flush();
      rows.push({ kind: "same", left: { n: ln++, text: line.slice(1) }, right: { n: rn++, text: line.slice(1) } });
    }
  }
  flush();
  return rows;
}

const CHANGE_LABELS = { added: "added", removed: "removed", changed: "changed", moved: "moved", outputs: "outputs changed" };

// The panel (page.history): null when this viewer may not browse the history (the
// template then draws no button).
export function makeHistory(page) {
  const button = page.root.querySelector("[data-action=history]");
  if (!button) return null;
  const isOwner = button.dataset.owner === "true";
  const el = {};
  let dialog = null;
  let revisions = []; // newest first
  let shown = PAGE_SIZE;
  let current = null; // the revision shown in the detail pane (its id)
  const picked = []; // ids ticked for comparison (at most two)
  let seq = 0; // drops answers to requests made before the last one

  const revUrl = (id) => `revisions/${encodeURIComponent(id)}`;
  const byId = (id) => revisions.find((r) => r.id === id);
  const label = (rev) => (rev ? `${rev.name ? `“${rev.name}”, ` : ""}${formatTime(rev.time)}` : "now");

  function build() {
    el.list = h("ol", { class: "history-list", "data-role": "history-list", "aria-label": "Revisions, newest first" });
    el.more = h("button", { type: "button", class: "btn history-more", "data-history-action": "more", "data-role": "history-more", hidden: true });
    el.compare = h("button", {
      type: "button", class: "btn", "data-history-action": "compare", "data-role": "history-compare-picked", disabled: true,
      title: "Tick two versions in the list to compare them",
    }, "Compare ticked");
    el.status = h("span", { class: "hint history-status", role: "status", "data-role": "history-status" });
    el.error = h("div", { class: "history-error", role: "alert", "data-role": "history-error" });
    el.detail = h("div", { class: "history-detail", "data-role": "history-detail", tabindex: "-1" });
    el.viewers = null;
    if (isOwner) {
      el.viewers = h("input", { type: "checkbox", "data-role": "history-viewers" });
      el.viewers.addEventListener("change", () => setViewers(el.viewers.checked));
    }
    dialog = h("dialog", { class: "history-dialog", "data-role": "history-dialog", "aria-labelledby": "history-title" },
      h("div", { class: "history-head" },
        h("h2", { id: "history-title", text: "History" }),
        el.viewers ? h("label", { class: "history-viewers", title: "Whether those you share this worksheet with as viewers may read its history (they never restore)" },
          el.viewers, " viewers may browse the history") : null,
        el.status,
        h("button", { type: "button", class: "btn", "data-history-action": "close", "data-role": "history-close", title: "Close (Escape)" }, "Close")),
      el.error,
      h("div", { class: "history-body" },
        h("div", { class: "history-side" },
          h("div", { class: "history-side-tools" }, el.compare),
          el.list, el.more),
        el.detail));
    dialog.addEventListener("click", onClick);
    dialog.addEventListener("change", (ev) => {
      const box = ev.target.closest("[data-role=history-pick]");
      if (box) pick(box.dataset.revision, box.checked);
    });
    dialog.addEventListener("close", () => {
      seq++;
      typesetClear(el.detail);
    });
    document.body.append(dialog);
  }

  function onClick(ev) {
    // Rendered content of a revision is never a control of the panel.
    if (ev.target.closest(".history-content")) return;
    const btn = ev.target.closest("[data-history-action]");
    if (!btn || btn.disabled) return;
    const id = btn.dataset.revision;
    switch (btn.dataset.historyAction) {
      case "close": dialog.close(); break;
      case "more": shown += PAGE_SIZE; renderList(); break;
      case "view": view(id); break;
      case "compare": if (picked.length === 2) compare(...picked); break;
      case "diff-now": compare(id, null); break;
      case "diff-previous": compare(previousOf(id), id); break;
      case "restore": askRestore(btn); break;
      case "restore-confirm": restore(id); break;
      case "restore-cancel": btn.closest("[data-role=history-restore-confirm]").hidden = true; break;
      case "pin": update(id, { pinned: btn.getAttribute("aria-pressed") !== "true" }); break;
      case "save-name": update(id, { name: dialog.querySelector("[data-role=history-name]").value }); break;
      default: return;
    }
    ev.preventDefault();
  }

  function previousOf(id) {
    const i = revisions.findIndex((r) => r.id === id);
    return i >= 0 && i + 1 < revisions.length ? revisions[i + 1].id : null;
  }

  function note(text) {
    el.status.textContent = text;
  }

  function fail(err) {
    if (err && err.name === "AbortError") return;
    el.error.textContent = (err && err.message) || String(err);
  }

  // --- the list -------------------------------------------------------------------

  function entry(rev) {
    const authors = rev.authors && rev.authors.length ? rev.authors.join(", ") : "";
    const time = new Date(rev.time * 1000);
    const box = h("input", {
      type: "checkbox", class: "history-pick", "data-role": "history-pick", "data-revision": rev.id,
      checked: picked.includes(rev.id), "aria-label": `Compare the version of ${formatTime(rev.time)}`,
    });
    const main = h("button", {
      type: "button", class: "history-entry-main", "data-history-action": "view", "data-revision": rev.id,
      "aria-current": current === rev.id ? "true" : null,
    },
    h("span", { class: "history-entry-top" },
      h("time", { datetime: time.toISOString(), class: "history-time", text: formatTime(rev.time) }),
      rev.pinned ? h("span", { class: "history-pin", title: "pinned: never thinned out", "aria-label": "pinned", "data-role": "history-pinned" }, "\u{1F4CC}") : null,
      KIND_LABELS[rev.kind] ? h("span", { class: "badge history-kind", text: KIND_LABELS[rev.kind] }) : null),
    rev.name ? h("span", { class: "history-name", "data-role": "history-entry-name", text: rev.name }) : null,
    authors ? h("span", { class: "history-authors", text: authors }) : null,
    h("span", { class: "history-summary", text: summaryText(rev.summary) }));
    return h("li", { class: `history-entry${current === rev.id ? " current" : ""}`, "data-revision": rev.id }, box, main);
  }

  function renderList() {
    const visible = revisions.slice(0, shown);
    el.list.replaceChildren(...visible.map(entry));
    if (!revisions.length) el.list.append(h("li", { class: "hint", text: "No revisions yet: one is taken after a burst of edits." }));
    const rest = revisions.length - visible.length;
    el.more.hidden = rest <= 0;
    el.more.textContent = `Show older (${rest} more)`;
    el.compare.disabled = picked.length !== 2;
  }

  function pick(id, on) {
    const at = picked.indexOf(id);
    if (on && at < 0) {
      picked.push(id);
      if (picked.length > 2) picked.shift();
    } else if (!on && at >= 0) {
      picked.splice(at, 1);
    }
    for (const box of el.list.querySelectorAll("[data-role=history-pick]")) box.checked = picked.includes(box.dataset.revision);
    el.compare.disabled = picked.length !== 2;
  }

  async function loadList() {
    const data = await page.api("GET", "revisions");
    revisions = (data.revisions || []).slice().reverse();
    for (let i = picked.length - 1; i >= 0; i--) if (!byId(picked[i])) picked.splice(i, 1);
    if (el.viewers) el.viewers.checked = !!data.history_for_viewers;
    renderList();
  }

  async function setViewers(value) {
    el.error.textContent = "";
    try {
      const res = await page.api("PATCH", "revisions", { history_for_viewers: value });
      el.viewers.checked = !!res.history_for_viewers;
      note(res.history_for_viewers ? "Viewers may now browse the history." : "Viewers may no longer browse the history.");
    } catch (err) {
      el.viewers.checked = !value;
      fail(err);
    }
  }

  // --- one revision, read only ----------------------------------------------------

  // The revision's cells drawn as untrusted content: a worksheet's past holds what
  // anyone who could edit it wrote.
  // `id`: the revision's, whose copies of the text cells' attachments are shown.
  function renderCells(cells, id) {
    const untrusted = { ...page, trusted: false, canEdit: false };
    const nodes = [];
    const math = [];
    for (const c of cells) {
      const src = typeof c.input === "string" ? c.input : "";
      if (c.type === "text") {
        const text = h("div", { class: "text-rendered history-content" });
        const attached = Array.isArray(c.attachments) && c.id !== null && c.id !== undefined
          ? { id: c.id, attachments: c.attachments, path: `${revUrl(id)}/attachments/${encodeURIComponent(c.id)}/` }
          : null;
        text.append(page.sanitizer.sanitize(c.format === "html" ? src : renderMarkdown(src), attached));
        if (/\$|\\\(|\\\[|\\begin\{/.test(src)) math.push(text);
        nodes.push(h("div", { class: "history-cell history-text-cell", "data-type": "text" }, text));
        continue;
      }
      const out = h("div", { class: "output history-content" });
      new OutputArea(out, untrusted, null).render(Array.isArray(c.outputs) ? c.outputs : []);
      nodes.push(h("div", { class: "history-cell history-compute-cell", "data-type": "compute" },
        h("div", { class: "history-input-row" },
          h("span", { class: "prompt", text: c.execution_count != null ? `[${c.execution_count}]` : "[ ]" }),
          h("pre", { class: "history-input", "data-role": "history-input", text: src })),
        out));
    }
    return { nodes, math };
  }

  function show(...children) {
    typesetClear(el.detail);
    el.detail.replaceChildren(...children);
  }

  function detailTools(rev) {
    const tools = [
      h("button", { type: "button", class: "btn", "data-history-action": "diff-now", "data-revision": rev.id }, "Compare with now"),
      previousOf(rev.id) ? h("button", { type: "button", class: "btn", "data-history-action": "diff-previous", "data-revision": rev.id }, "Compare with the version before") : null,
    ];
    if (!page.canEdit) return h("div", { class: "history-tools" }, ...tools);
    const nameInput = h("input", {
      type: "text", maxlength: "200", "data-role": "history-name", value: rev.name || "",
      placeholder: "a name, e.g. submitted version", "aria-label": "Name of this version",
    });
    nameInput.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        update(rev.id, { name: nameInput.value });
      }
    });
    return h("div", { class: "history-tools" }, ...tools,
      h("button", { type: "button", class: "btn", "data-history-action": "restore", "data-revision": rev.id, "data-role": "history-restore" }, "Restore this version\u2026"),
      h("button", {
        type: "button", class: "btn", "data-history-action": "pin", "data-revision": rev.id, "data-role": "history-pin",
        "aria-pressed": rev.pinned ? "true" : "false", title: "A pinned version is never thinned out",
      }, rev.pinned ? "Unpin" : "Pin"),
      h("span", { class: "history-name-edit" }, nameInput,
        h("button", { type: "button", class: "btn", "data-history-action": "save-name", "data-revision": rev.id, "data-role": "history-save-name" }, "Save name")),
      h("div", { class: "history-confirm", "data-role": "history-restore-confirm", hidden: true },
        h("span", { text: `The worksheet's cells and name become those of ${label(rev)}; what it holds now is kept in the history. Restore?` }),
        h("button", { type: "button", class: "btn btn-primary", "data-history-action": "restore-confirm", "data-revision": rev.id, "data-role": "history-restore-confirm-button" }, "Restore"),
        h("button", { type: "button", class: "btn", "data-history-action": "restore-cancel" }, "Cancel")));
  }

  function revisionHead(rev, extra) {
    return h("div", { class: "history-detail-head" },
      h("h3", { "data-role": "history-detail-title", text: `Version of ${formatTime(rev.time)}` }),
      rev.name ? h("p", { class: "history-name", text: rev.name }) : null,
      h("p", { class: "hint", text: [rev.authors && rev.authors.length ? `by ${rev.authors.join(", ")}` : "", summaryText(rev.summary)].filter(Boolean).join(" \u00b7 ") }),
      extra);
  }

  async function view(id) {
    const rev = byId(id);
    if (!rev) return;
    const mine = ++seq;
    current = id;
    renderList();
    el.error.textContent = "";
    show(h("p", { class: "hint", text: "Loading\u2026" }));
    try {
      const data = await page.api("GET", revUrl(id));
      if (mine !== seq) return;
      const cells = Array.isArray(data.cells) ? data.cells : [];
      const { nodes, math } = renderCells(cells, id);
      show(revisionHead(rev, detailTools(rev)),
        data.worksheet_name ? h("p", { class: "history-ws-name" }, "Worksheet name: ", h("strong", { text: data.worksheet_name })) : null,
        h("div", { class: "history-cells", "data-role": "history-cells", "aria-label": "The cells of this version (read only)" },
          ...(nodes.length ? nodes : [h("p", { class: "hint", text: "No cells." })])));
      for (const node of math) typeset(node);
    } catch (err) {
      if (mine === seq) {
        show();
        fail(err);
      }
    }
  }

  // --- differences ----------------------------------------------------------------

  function diffTable(lines) {
    const rows = sideBySide(lines);
    const num = (side) => h("td", { class: "history-ln", text: side ? String(side.n) : "" });
    const text = (side, cls) => h("td", { class: `history-code ${side ? cls : "history-blank"}`, text: side ? side.text : "" });
    return h("table", { class: "history-diff-lines", "data-role": "history-diff-lines" },
      h("colgroup", {}, h("col", { class: "history-ln-col" }), h("col", {}), h("col", { class: "history-ln-col" }), h("col", {})),
      h("tbody", {}, ...rows.map((row) => {
        if (row.kind === "hunk") return h("tr", { class: "history-hunk" }, h("td", { colspan: "4", text: "\u22ef" }));
        const left = row.kind === "add" ? null : row.left;
        const right = row.kind === "del" ? null : row.right;
        return h("tr", { class: `history-row-${row.kind}`, "data-kind": row.kind },
          num(left), text(left, row.kind === "same" ? "" : "history-old"),
          num(right), text(right, row.kind === "same" ? "" : "history-new"));
      })));
  }

  function diffEntry(item) {
    const marks = [CHANGE_LABELS[item.change] || item.change];
    if (item.moved && item.change !== "moved") marks.push("moved");
    if (item.type_changed) marks.push("type changed");
    if (item.outputs_changed && item.change !== "outputs") marks.push("outputs changed");
    if (item.attachments_changed) marks.push("attachments changed");
    if (item.metadata_changed) marks.push("metadata changed");
    return h("section", {
      class: `history-diff-cell change-${item.change}`, "data-role": "history-diff-cell", "data-change": item.change,
      "data-outputs-changed": item.outputs_changed ? "true" : "false",
    },
    h("h4", {},
      h("span", { text: `${item.type === "text" ? "Text cell" : "Cell"} ${item.position + 1}` }),
      ...marks.map((m) => h("span", { class: `badge history-mark mark-${m.replace(/ /g, "-")}`, text: m }))),
    item.input_diff && item.input_diff.length ? diffTable(item.input_diff) : null);
  }

  // From revision `a` to revision `b` (null: the worksheet now), the older one first.
  async function compare(a, b) {
    if (!a) return;
    let from = byId(a);
    let to = b ? byId(b) : null;
    if (!from || (b && !to)) return;
    if (to && to.time < from.time) [from, to] = [to, from];
    const mine = ++seq;
    current = null;
    renderList();
    el.error.textContent = "";
    show(h("p", { class: "hint", text: "Loading\u2026" }));
    try {
      const data = await page.api("GET", `${revUrl(from.id)}/diff${to ? `/${encodeURIComponent(to.id)}` : ""}`);
      if (mine !== seq) return;
      const cells = Array.isArray(data.cells) ? data.cells : [];
      show(h("div", { class: "history-detail-head" },
        h("h3", { "data-role": "history-detail-title", text: `Changes from ${label(from)} to ${label(to)}` }),
        h("p", { class: "hint", "data-role": "history-diff-summary", text: `${cells.length} ${cells.length === 1 ? "cell differs" : "cells differ"}, ${data.unchanged} unchanged` }),
        h("div", { class: "history-diff-legend", "aria-hidden": "true" },
          h("span", { class: "history-old", text: label(from) }), h("span", { class: "history-new", text: label(to) }))),
      h("div", { class: "history-diff", "data-role": "history-diff" },
        ...(cells.length ? cells.map(diffEntry) : [h("p", { class: "hint", text: "No differences." })])));
    } catch (err) {
      if (mine === seq) {
        show();
        fail(err);
      }
    }
  }

  // --- restoring, naming, pinning ----------------------------------------------------

  function askRestore(btn) {
    const box = btn.closest(".history-tools").querySelector("[data-role=history-restore-confirm]");
    box.hidden = false;
    box.querySelector("[data-history-action=restore-confirm]").focus();
  }

  // The page's cells as the server has them now: the live part (live.js) applies the
  // change by itself; without it, the cells are drawn again.
  async function showRestored() {
    if (page.live && typeof page.live.refreshNow === "function") {
      page.live.refreshNow();
      return;
    }
    const data = await page.api("GET", "./");
    const { actions } = page;
    for (const id of Array.from(page.cells.keys())) actions.removeCellLocally(id);
    for (const cd of data.cells || []) page.cellsEl.append(actions.makeCell(cd).el);
    actions.applyWorksheetMeta(data);
    actions.updateEmptyState();
    for (const cell of page.cells.values()) if (ACTIVE.has(cell.status)) page.poller.watch(cell);
  }

  async function restore(id) {
    const rev = byId(id);
    if (!rev || !page.canEdit) return;
    el.error.textContent = "";
    note("Restoring\u2026");
    try {
      // What was typed and not saved yet is part of the state the restore keeps.
      await page.actions.saveAll();
      await page.api("POST", `${revUrl(id)}/restore`, {});
    } catch (err) {
      note("");
      fail(err);
      return;
    }
    // The restored worksheet is untrusted: a page that ran its outputs' scripts is
    // drawn again without them.
    if (page.trusted) {
      location.reload();
      return;
    }
    try {
      await showRestored();
      note(`Restored the version of ${formatTime(rev.time)}.`);
      await loadList();
      current = null;
      renderList();
      show(h("p", { class: "hint", "data-role": "history-restored", text: `The worksheet now holds the version of ${label(rev)}; the state it replaced is the revision “before a restore” in the list.` }));
    } catch (err) {
      fail(err);
    }
  }

  async function update(id, body) {
    el.error.textContent = "";
    try {
      const rev = await page.api("POST", revUrl(id), body);
      const i = revisions.findIndex((r) => r.id === id);
      if (i >= 0) revisions[i] = rev;
      renderList();
      note(body.pinned === undefined ? (rev.name ? `Named “${rev.name}”.` : "Name removed.") : rev.pinned ? "Pinned." : "Unpinned.");
      if (current === id) {
        el.detail.querySelector(".history-detail-head")?.replaceWith(revisionHead(rev, detailTools(rev)));
        el.detail.querySelector(`[data-role=${body.pinned === undefined ? "history-name" : "history-pin"}]`)?.focus();
      }
    } catch (err) {
      fail(err);
    }
  }

  async function open() {
    if (!dialog) build();
    el.error.textContent = "";
    note("");
    current = null;
    shown = PAGE_SIZE;
    show(h("p", { class: "hint", text: "Choose a version to see it read only, or tick two to compare them." }));
    el.list.replaceChildren(h("li", { class: "hint", text: "Loading\u2026" }));
    if (!dialog.open) dialog.showModal();
    try {
      await loadList();
      (el.list.querySelector("[data-history-action=view]") || dialog.querySelector("[data-history-action=close]")).focus();
    } catch (err) {
      el.list.replaceChildren();
      fail(err);
    }
  }

  button.addEventListener("click", (ev) => {
    ev.preventDefault();
    open();
  });

  return { open, close: () => dialog?.close(), view, compare, restore };
}
