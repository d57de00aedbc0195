// Cells of the worksheet page: what every cell has (Cell: saving its input, the toolbar,
// its state from the server) and the text cells. Compute cells are in compute.js.
// Each cell holds `page`, the page's state (worksheet.js).

import { h } from "./dom.js";
import { typeset, typesetClear } from "./math.js";
import { renderMarkdown } from "./markdown.js";
import { afterSave, saveRefused } from "./live.js";
import { textKeydown } from "./keys.js";

// The states in which a cell waits for news from the server.
export const ACTIVE = new Set(["queued", "running"]);

// sagenb's percent directives: the cell's first lines that are exactly "%name"
// (as sagenb_pyramid/workers/directives.py reads them).
const DIRECTIVE_LINE = /^%([A-Za-z_][A-Za-z0-9_]*)[ \t]*$/;
export function cellDirectives(text) {
  const names = [];
  for (const line of String(text || "").split("\n")) {
    const m = DIRECTIVE_LINE.exec(line.trim());
    if (!m) break;
    names.push(m[1].toLowerCase());
  }
  return names;
}

export function formatSeconds(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  if (s < 60) return `${Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

export function button(action, label, title) {
  return h("button", { type: "button", class: `btn-cell btn-${action}`, dataset: { action }, title, "aria-label": title }, label);
}

export class Cell {
  constructor(data, page) {
    this.page = page;
    this.id = data.id;
    this.data = data;
    this.savedInput = data.input ?? "";
    // The server's input_version of savedInput: what an edit is based on (live.js).
    this.baseVersion = data.input_version ?? 0;
    this.onHold = null; // a conflict or a deletion waiting for the person (live.js)
    this.saveTimer = null;
    this.saveChain = Promise.resolve();
    this.removed = false;
    this.seq = 0;
    // Resolves to the id once the server has created the cell (see addCell).
    this.ready = Promise.resolve(data.id);
    this.el = h("div", {
      class: `cell ${data.type === "text" ? "text-cell" : "compute-cell"}`,
      dataset: { cellId: data.id === null ? "" : String(data.id), type: data.type, status: data.status || "new" },
    });
    this.el.cell = this;
  }

  get status() {
    return this.data.status || "new";
  }

  // Jupyter's locks, from the notebook the cell came from ("editable"/"deletable": false).
  get locked() {
    return this.data.editable === false || this.data.deletable === false;
  }

  lockedMessage(what) {
    return `This cell is locked against ${what} by the notebook it came from ("editable"/"deletable": false). Use its Unlock button first.`;
  }

  // Lift both locks; the page is drawn again so that the editor takes input.
  async unlock() {
    try {
      await this.page.api("PATCH", `cells/${this.id}`, { editable: true, deletable: true });
      await this.page.actions.saveAll();
      location.reload();
    } catch (err) {
      this.page.messages.report(err);
    }
  }

  toolbar(extra = []) {
    if (!this.page.canEdit) return null;
    return h("div", { class: "cell-toolbar", role: "toolbar" },
      this.locked ? button("unlock", "Unlock", "Locked by its notebook (not editable or not deletable): unlock") : null,
      ...extra,
      button("add-above", "+\u2191", "Insert compute cell above"),
      button("add-below", "+\u2193", "Insert compute cell below"),
      button("add-text-below", "+T", "Insert text cell below"),
      button("move-up", "\u25b2", "Move cell up"),
      button("move-down", "\u25bc", "Move cell down"),
      button("delete", "\u2715", "Delete cell"));
  }

  // Apply a CELL dict from the server (ignoring stale answers).
  update(data, { force = false } = {}) {
    if (this.removed || !data) return;
    if (!force && typeof data.version === "number" && typeof this.data.version === "number" && data.version < this.data.version) return;
    this.data = { ...this.data, ...data };
    this.el.dataset.status = this.status;
    this.refresh();
    if (ACTIVE.has(this.status)) this.page.poller.watch(this);
  }

  refresh() {}

  cancelSave() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
  }

  scheduleSave() {
    this.cancelSave();
    this.saveTimer = setTimeout(() => this.save(), 1000);
  }

  isDirty() {
    return this.getInput() !== this.savedInput;
  }

  save() {
    this.cancelSave();
    if (!this.page.canEdit || this.removed) return this.saveChain;
    this.saveChain = this.saveChain.then(async () => {
      await this.ready;
      const input = this.getInput();
      if (input === this.savedInput || this.removed || this.onHold) return;
      let answer;
      try {
        answer = await this.page.api("PATCH", `cells/${this.id}`, this.saveBody(input));
      } catch (err) {
        if (saveRefused(this, input, err)) return;
        throw err;
      }
      afterSave(this, answer, input);
    }).catch((err) => {
      this.page.messages.report(err);
    });
    return this.saveChain;
  }

  // An edit says what it started from, so the server merges it with others' edits made
  // since (or refuses it, 409) rather than writing over them.
  saveBody(input) {
    return { input, base_version: this.baseVersion, base_input: this.savedInput };
  }

  saveOnUnload() {
    if (!this.page.canEdit || this.removed || this.onHold || this.id === null || !this.isDirty()) return;
    this.page.api("PATCH", `cells/${this.id}`, this.saveBody(this.getInput()), { keepalive: true }).catch(() => {});
  }

  destroy() {
    this.removed = true;
    this.cancelSave();
    typesetClear(this.el);
    this.el.remove();
  }

  focus() {}
}

export class TextCell extends Cell {
  constructor(data, page) {
    super(data, page);
    this.rendered = h("div", { class: "text-rendered", title: this.page.canEdit ? "Double-click to edit" : null });
    this.textarea = h("textarea", { class: "text-source", rows: "4", spellcheck: "true", "aria-label": "Text cell source" });
    this.editorEl = !this.page.canEdit ? null : h("div", { class: "text-editor", hidden: true },
      this.textarea,
      h("div", { class: "text-editor-buttons" },
        h("button", { type: "button", class: "btn btn-primary", dataset: { action: "save-text" } }, "Save"),
        h("button", { type: "button", class: "btn", dataset: { action: "cancel-text" } }, "Cancel"),
        this.hintEl = h("span", { class: "hint" })));
    this.editing = false;
    this.el.append(
      h("div", { class: "cell-head" }, this.page.canEdit ? button("edit", "\u270e Edit", "Edit text cell") : null, this.toolbar()),
      this.rendered,
      ...(this.editorEl ? [this.editorEl] : []),
    );
    if (this.page.canEdit) {
      this.rendered.addEventListener("dblclick", () => this.edit());
      this.textarea.addEventListener("input", () => {
        this.autosize();
        this.el.classList.toggle("dirty", this.isDirty());
      });
      // The keys of keys.js's table (Shift-Enter saves and moves on, Escape cancels...).
      this.textarea.addEventListener("keydown", (ev) => textKeydown(this, ev));
      this.editorEl.addEventListener("focusout", (ev) => {
        if (ev.relatedTarget && this.editorEl.contains(ev.relatedTarget)) return;
        // Give a click on Save/Cancel a chance to be handled first.
        setTimeout(() => {
          if (this.editing && !this.editorEl.contains(document.activeElement)) this.finishEdit(true);
        }, 150);
      });
    }
    this.renderText();
  }

  // "markdown" (with HTML, as Jupyter) or "html" (legacy worksheets: HTML with $math$,
  // which must not go through the Markdown pass).
  get format() {
    return this.data.format === "html" ? "html" : "markdown";
  }

  getInput() {
    return this.editing ? this.textarea.value : this.savedInput;
  }

  setInput(text) {
    if (!this.page.canEdit) return;
    if (!this.editing) this.edit();
    this.textarea.value = text;
    this.autosize();
  }

  renderText() {
    typesetClear(this.rendered);
    const src = this.savedInput;
    if (!src.trim()) {
      this.rendered.replaceChildren(h("p", { class: "placeholder", text: this.page.canEdit ? "Empty text cell \u2014 double-click to edit." : "" }));
      return;
    }
    // sagenb's text cells (format "html") are HTML with TeX, written for sagenb's TinyMCE:
    // no Markdown library reads them as they were meant (indented lines would become code
    // blocks, underscores in names emphasis), so they go to the sanitizer as they are.
    const html = this.format === "html" ? src : renderMarkdown(src);
    this.rendered.classList.toggle("format-html", this.format === "html");
    this.rendered.replaceChildren(this.page.sanitizer.sanitize(html, { id: this.id, attachments: this.data.attachments }));
    if (/\$|\\\(|\\\[|\\begin\{/.test(src)) typeset(this.rendered);
  }

  autosize() {
    this.textarea.style.height = "auto";
    this.textarea.style.height = `${Math.max(80, this.textarea.scrollHeight + 4)}px`;
  }

  edit() {
    if (!this.page.canEdit || this.editing) return;
    if (this.data.editable === false) {
      this.page.messages.show(this.lockedMessage("editing"));
      return;
    }
    this.editing = true;
    this.el.classList.add("editing");
    this.textarea.value = this.savedInput;
    this.hintEl.textContent = this.format === "html"
      ? "HTML, math in $\u2026$ or $$\u2026$$. Ctrl-Enter saves, Shift-Enter saves and goes on, Escape cancels."
      : "Markdown/HTML, math in $\u2026$ or $$\u2026$$. Ctrl-Enter saves, Shift-Enter saves and goes on, Escape cancels.";
    this.rendered.hidden = true;
    this.editorEl.hidden = false;
    this.autosize();
    this.textarea.focus();
  }

  async finishEdit(save) {
    if (!this.editing) return;
    if (save) {
      await this.save();
      if (this.isDirty()) return; // saving failed: stay in the editor
    }
    this.editing = false;
    this.el.classList.remove("editing", "dirty");
    this.editorEl.hidden = true;
    this.rendered.hidden = false;
    this.renderText();
  }

  // Already editing: the keyboard back into the editor (its cursor kept), e.g. after the
  // cell was moved on the page (sheet.js applyOrder), which takes the focus from it.
  focus() {
    if (this.editing) this.textarea.focus();
    else this.edit();
  }

  refresh() {
    // Text cells have no outputs; input changes made elsewhere are shown when not editing,
    // if newer than what is shown: a late ?since= answer carries the text before a save.
    const version = this.data.input_version;
    if (!this.editing && typeof this.data.input === "string" && this.data.input !== this.savedInput
        && (typeof version !== "number" || version > this.baseVersion)) {
      this.savedInput = this.data.input;
      this.baseVersion = this.data.input_version ?? this.baseVersion;
      this.renderText();
    }
  }
}
