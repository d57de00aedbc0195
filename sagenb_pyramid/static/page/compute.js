// Compute cells: a CodeMirror editor (with Sage's completion and help), the cell's
// outputs, %hide/%hideall/%auto, input() answered in the page, evaluation.

import {
  EditorView, EditorState, Prec, keymap, highlightSpecialChars, drawSelection,
  dropCursor, rectangularSelection, crosshairCursor, defaultKeymap, history,
  historyKeymap, indentWithTab, syntaxHighlighting, defaultHighlightStyle,
  indentOnInput, bracketMatching, closeBrackets, closeBracketsKeymap,
  highlightSelectionMatches, python, autocompletion, completionKeymap,
  startCompletion, closeCompletion, completionStatus,
} from "../vendor/codemirror.js";
import * as widgets from "../widgets.js";
import { h, joinText } from "./dom.js";
import { OutputArea } from "./outputs.js";
import { Cell, ACTIVE, button, cellDirectives, formatSeconds } from "./cell.js";
import {
  toCodePointOffset, fromCodePointOffset, COMPLETION_TYPES, NAME_BEFORE_CURSOR, NAME_CHARS,
  askWorker, closeInspect, showInspect,
} from "./assist.js";

// The bundle exports no acceptCompletion: it is the command of Enter in the
// completion keymap (Tab accepts too, see ComputeCell.extensions).
const acceptCompletion = (completionKeymap.find((b) => b.key === "Enter") || {}).run || (() => false);

export class ComputeCell extends Cell {
  constructor(data, page) {
    super(data, page);
    this.prompt = h("div", { class: "prompt", title: "Execution count" });
    this.editorHost = h("div", { class: "cell-editor" });
    this.statusEl = h("span", { class: "cell-status", "aria-live": "polite" });
    const runBtn = this.page.canEdit ? button("evaluate", "\u25b6 Run", "Evaluate (Shift-Enter)") : null;
    this.badgesEl = h("span", { class: "cell-badges" });
    this.noteEl = h("span", { class: "cell-note", role: "status", hidden: true });
    this.noteTimer = null;
    this.hideToggle = h("button", { type: "button", class: "btn-cell btn-hide", hidden: true });
    this.revealBar = h("button", { type: "button", class: "cell-reveal", hidden: true });
    this.outputEl = h("div", { class: "output empty", "aria-live": "polite" });
    this.outputs = new OutputArea(this.outputEl, page, this);
    this.inputEl = h("div", { class: "cell-input" }, this.prompt, this.editorHost);
    this.outputWrap = h("div", { class: "cell-output" }, h("div", { class: "prompt out-prompt" }), this.outputEl);
    this.stdinEl = h("div", { class: "cell-stdin", hidden: true });
    this.stdinKey = null;
    this.stdinAnswered = -1; // the version whose input request was answered
    this.stdinError = "";
    this.requestSeq = 0;
    this.pendingCompletion = null;
    this.el.append(
      h("div", { class: "cell-head" }, runBtn, this.statusEl, this.badgesEl, this.noteEl, this.hideToggle, this.toolbar()),
      this.revealBar,
      this.inputEl,
      this.outputWrap,
      this.stdinEl,
    );
    this.directives = cellDirectives(data.input);
    // %hide / %hideall cells start folded; a click shows them.
    this.collapsed = true;
    this.revealBar.addEventListener("click", () => this.reveal(true));
    this.hideToggle.addEventListener("click", () => this.collapse());
    this.view = new EditorView({
      parent: this.editorHost,
      state: EditorState.create({ doc: data.input ?? "", extensions: this.extensions() }),
    });
    this.applyDirectives();
    this.refresh();
  }

  extensions() {
    const cell = this;
    const ext = [
      highlightSpecialChars(),
      history(),
      drawSelection(),
      dropCursor(),
      EditorState.allowMultipleSelections.of(true),
      indentOnInput(),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      bracketMatching(),
      closeBrackets(),
      rectangularSelection(),
      crosshairCursor(),
      highlightSelectionMatches(),
      EditorView.lineWrapping,
      python(),
      EditorView.contentAttributes.of({ "aria-label": "Cell input" }),
      EditorView.domEventHandlers({
        blur() {
          if (cell.isDirty()) cell.save();
          return false;
        },
      }),
      EditorView.updateListener.of((u) => {
        if (!u.docChanged) return;
        const names = cellDirectives(u.state.doc.toString());
        if (names.join(" ") !== cell.directives.join(" ")) {
          cell.directives = names;
          cell.applyDirectives();
        }
        if (cell.page.inspectTip && cell.page.inspectTip.cell === cell) closeInspect(cell.page);
      }),
    ];
    if (!cell.page.canEdit) {
      ext.push(EditorState.readOnly.of(true), EditorView.editable.of(false));
      ext.push(keymap.of(defaultKeymap));
      return ext;
    }
    // Locked by its notebook ("editable": false): shown and evaluated, not changed.
    if (cell.data.editable === false) ext.push(EditorState.readOnly.of(true));
    const evaluate = () => { cell.evaluate(); return true; };
    const completing = (view) => completionStatus(view.state) !== null;
    ext.push(
      // Completion from the worksheet's Sage process: Tab after a name (see tabKey);
      // its keymap (arrows, Enter, Escape) comes before the cell's own keys.
      autocompletion({
        override: [(ctx) => cell.completionSource(ctx)],
        activateOnTyping: false,
        closeOnBlur: true,
        maxRenderedOptions: 300,
        // The list opens on a key press only: no typing is to be guarded against.
        interactionDelay: 0,
        tooltipClass: () => "sage-completions",
      }),
      Prec.highest(keymap.of([
        { key: "Shift-Enter", run: evaluate },
        { key: "Ctrl-Enter", run: evaluate },
        { key: "Mod-Enter", run: evaluate },
        { key: "Alt-Enter", run: () => { cell.evaluate({ insertBelow: true }); return true; } },
        { key: "Tab", run: (view) => cell.tabKey(view) },
        { key: "Shift-Tab", run: (view) => cell.inspectKey(view) },
        {
          key: "Escape",
          run: (view) => {
            if (closeInspect(cell.page)) return true;
            if (completing(view)) return closeCompletion(view);
            cell.page.actions.interrupt();
            return true;
          },
        },
        { key: "ArrowUp", run: (view) => !completing(view) && cell.leave(view, -1) },
        { key: "ArrowDown", run: (view) => !completing(view) && cell.leave(view, 1) },
      ])),
      keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, indentWithTab]),
      EditorView.updateListener.of((u) => {
        if (u.docChanged) {
          cell.el.classList.toggle("dirty", cell.isDirty());
          cell.scheduleSave();
        }
      }),
    );
    return ext;
  }

  // ArrowUp on the first visual line / ArrowDown on the last one moves to the
  // neighbouring compute cell, like the old notebook (folded cells are passed by).
  leave(view, dir) {
    const sel = view.state.selection.main;
    if (!sel.empty) return false;
    const edge = dir < 0 ? 0 : view.state.doc.length;
    const here = view.coordsAtPos(sel.head);
    const there = view.coordsAtPos(edge);
    const onEdgeLine = here && there
      ? Math.abs(here.top - there.top) < 2
      : view.state.doc.lineAt(sel.head).number === (dir < 0 ? 1 : view.state.doc.lines);
    if (!onEdgeLine) return false;
    let el = this.el;
    do {
      el = dir < 0 ? el.previousElementSibling : el.nextElementSibling;
    } while (el && !(el.cell instanceof ComputeCell && !el.cell.isFolded()));
    if (!el) return false;
    el.cell.focus(dir < 0 ? "end" : "start");
    return true;
  }

  getInput() {
    return this.view.state.doc.toString();
  }

  setInput(text) {
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: text } });
  }

  focus(where) {
    if (this.isFolded()) this.reveal(false);
    this.view.focus();
    if (where === "start" || where === "end") {
      const pos = where === "start" ? 0 : this.view.state.doc.length;
      this.view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
    }
  }

  // --- percent directives: %hide, %hideall, %auto ----------------------------------

  get hideMode() {
    const d = this.directives;
    if (d.includes("hideall")) return "all";
    if (d.includes("hide") || d.includes("hide_input")) return "input";
    return null;
  }

  isFolded() {
    return this.collapsed && this.hideMode !== null;
  }

  applyDirectives() {
    const mode = this.hideMode;
    const folded = this.isFolded();
    this.el.classList.toggle("input-folded", folded);
    this.el.classList.toggle("cell-folded", folded && mode === "all");
    this.inputEl.hidden = folded;
    this.outputWrap.hidden = folded && mode === "all";
    this.revealBar.hidden = !folded;
    this.revealBar.textContent = mode === "all"
      ? "\u25b8 Cell hidden (%hideall) \u2014 click to show"
      : "\u25b8 Input hidden (%hide) \u2014 click to show";
    this.revealBar.title = mode === "all" ? "Show this cell's input and output" : "Show this cell's input";
    this.hideToggle.hidden = mode === null || folded;
    this.hideToggle.textContent = mode === "all" ? "\u25be Hide cell" : "\u25be Hide input";
    this.hideToggle.title = mode === "all" ? "Hide input and output again (%hideall)" : "Hide the input again (%hide)";
    const badges = [];
    if (this.directives.includes("auto")) {
      badges.push(h("span", {
        class: "cell-badge badge-auto",
        title: "%auto: this cell runs whenever the worksheet's Sage process starts",
        text: "auto",
      }));
    }
    this.badgesEl.replaceChildren(...badges);
  }

  reveal(focus) {
    this.collapsed = false;
    this.applyDirectives();
    if (focus && this.page.canEdit) this.view.focus();
  }

  collapse() {
    this.collapsed = true;
    this.applyDirectives();
    this.revealBar.focus();
  }

  // --- notes next to the cell's status (busy, nothing found) -------------------------

  note(text, kind = "info", ms = 3500) {
    clearTimeout(this.noteTimer);
    this.noteEl.textContent = text;
    this.noteEl.className = `cell-note ${kind}`;
    this.noteEl.hidden = !text;
    if (text && ms) this.noteTimer = setTimeout(() => this.note(""), ms);
  }

  noteError(err, what) {
    if (!err || err.name === "AbortError") return;
    if (err.status === 409) this.note(`Busy: ${err.message}`, "busy", 5000);
    else this.note(`${what} failed: ${err.message || err}`, "error", 8000);
  }

  // --- completion (Tab) ---------------------------------------------------------------

  tabKey(view) {
    if (completionStatus(view.state) !== null) {
      acceptCompletion(view); // while the list is open, Tab never indents
      return true;
    }
    const sel = view.state.selection;
    if (sel.ranges.length !== 1 || !sel.main.empty) return false;
    const pos = sel.main.head;
    if (!NAME_BEFORE_CURSOR.test(view.state.sliceDoc(Math.max(0, pos - 2), pos))) return false; // indent
    this.complete(view);
    return true;
  }

  async askCompletions(code, pos) {
    const res = await askWorker(this.page, "complete", { code, cursor_pos: toCodePointOffset(code, pos) },
      () => this.note("Waiting for Sage\u2026", "busy", 0));
    const matches = [...new Set((res.matches || []).filter((m) => typeof m === "string"))];
    const cp = toCodePointOffset(code, pos);
    const from = fromCodePointOffset(code, Number.isInteger(res.cursor_start) ? res.cursor_start : cp);
    const to = Math.max(pos, fromCodePointOffset(code, Number.isInteger(res.cursor_end) ? res.cursor_end : cp));
    const info = new Map();
    for (const m of (res.metadata && res.metadata._jupyter_types_experimental) || []) {
      if (m && typeof m.text === "string") info.set(m.text, m);
    }
    const typed = code.slice(from, pos);
    const prefixed = matches.every((m) => m.startsWith(typed));
    const options = matches.map((m) => {
      const meta = info.get(m) || {};
      const sig = typeof meta.signature === "string" ? meta.signature : "";
      return {
        label: m,
        type: COMPLETION_TYPES[meta.type] || undefined,
        detail: sig ? (sig.length > 60 ? `${sig.slice(0, 59)}\u2026` : sig) : undefined,
      };
    });
    // The list narrows as one types on (when every match starts with the typed text).
    const result = { from, to, options, filter: prefixed };
    if (prefixed) result.validFor = NAME_CHARS;
    return { matches, from, to, result };
  }

  async complete(view) {
    const code = view.state.doc.toString();
    const pos = view.state.selection.main.head;
    const seq = ++this.requestSeq;
    const slow = setTimeout(() => this.note("Completing\u2026", "busy", 0), 400);
    let answer;
    try {
      answer = await this.askCompletions(code, pos);
    } catch (err) {
      if (seq === this.requestSeq) {
        this.note("");
        this.noteError(err, "Completion");
      }
      return;
    } finally {
      clearTimeout(slow);
    }
    if (seq !== this.requestSeq || this.removed) return;
    this.note("");
    // The user typed on or moved meanwhile: this answer is for another text.
    if (view.state.doc.toString() !== code || view.state.selection.main.head !== pos) return;
    const { matches, from, to, result } = answer;
    if (!matches.length) {
      this.note("No completions", "info", 2000);
      return;
    }
    if (matches.length === 1) {
      view.dispatch({
        changes: { from, to, insert: matches[0] },
        selection: { anchor: from + matches[0].length },
        scrollIntoView: true,
        userEvent: "input.complete",
      });
      return;
    }
    this.pendingCompletion = { code, pos, result };
    startCompletion(view);
  }

  // CodeMirror's completion source: the answer Tab fetched, or (Ctrl-Space) a new one.
  completionSource(ctx) {
    const pending = this.pendingCompletion;
    this.pendingCompletion = null;
    if (pending && pending.pos === ctx.pos && pending.code === ctx.state.doc.toString()) return pending.result;
    // Ctrl-Space, or typing on made the list's text change beyond a name: ask again
    // only where a name is being typed.
    if (!ctx.explicit || !NAME_BEFORE_CURSOR.test(ctx.state.sliceDoc(Math.max(0, ctx.pos - 2), ctx.pos))) return null;
    const code = ctx.state.doc.toString();
    return this.askCompletions(code, ctx.pos).then(
      (answer) => (answer.matches.length ? answer.result : null),
      (err) => {
        this.noteError(err, "Completion");
        return null;
      },
    );
  }

  // --- introspection (Shift-Tab) ------------------------------------------------------

  inspectKey(view) {
    const sel = view.state.selection;
    if (sel.ranges.length !== 1 || !sel.main.empty) return false; // indent less
    const pos = sel.main.head;
    const line = view.state.doc.lineAt(pos);
    if (!view.state.sliceDoc(line.from, pos).trim()) return false;
    this.inspect(view, 0, pos);
    return true;
  }

  async inspect(view, level = 0, at = null) {
    const code = view.state.doc.toString();
    const pos = at === null ? view.state.selection.main.head : at;
    const seq = ++this.requestSeq;
    const slow = setTimeout(() => this.note("Looking it up\u2026", "busy", 0), 400);
    let res;
    try {
      res = await askWorker(this.page, "inspect", { code, cursor_pos: toCodePointOffset(code, pos), detail_level: level },
        () => this.note("Waiting for Sage\u2026", "busy", 0));
    } catch (err) {
      if (seq === this.requestSeq) {
        this.note("");
        this.noteError(err, "Help");
      }
      return;
    } finally {
      clearTimeout(slow);
    }
    if (seq !== this.requestSeq || this.removed) return;
    this.note("");
    if (view.state.doc.toString() !== code) return;
    const data = (res && res.data) || {};
    const text = data["text/plain"] !== undefined ? joinText(data["text/plain"]) : "";
    if (!res.found || !text.trim()) {
      this.note("No documentation found", "info", 2500);
      return;
    }
    showInspect(this.page, this, view, pos, text, level);
  }

  // --- input() --------------------------------------------------------------------------

  renderStdin() {
    const req = this.data.input_request;
    const version = typeof this.data.version === "number" ? this.data.version : 0;
    const show = this.page.canEdit && this.id !== null && req && typeof req === "object" &&
      ACTIVE.has(this.status) && version > this.stdinAnswered;
    if (!show) {
      if (!this.stdinEl.hidden || this.stdinKey !== null) {
        this.stdinEl.hidden = true;
        this.stdinEl.replaceChildren();
        this.stdinKey = null;
      }
      return;
    }
    const key = `${req.prompt}\u0000${!!req.password}\u0000${this.stdinAnswered}\u0000${this.stdinError}`;
    if (this.stdinKey === key) return;
    this.stdinKey = key;
    const input = h("input", {
      type: req.password ? "password" : "text",
      class: "stdin-input",
      name: "stdin",
      autocomplete: "off",
      spellcheck: "false",
      "aria-label": String(req.prompt || "").trim() || "Input for the running cell",
    });
    const form = h("form", { class: "stdin-form" },
      h("label", { class: "stdin-prompt" },
        h("span", { class: "stdin-prompt-text", text: req.prompt ? String(req.prompt) : "Input:" }),
        input),
      h("button", { type: "submit", class: "btn btn-primary" }, "Send"),
      h("span", { class: "hint", text: "Enter sends" }),
      this.stdinError ? h("span", { class: "stdin-error", role: "alert", text: this.stdinError }) : null);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.sendInput(input.value);
    });
    this.stdinEl.replaceChildren(form);
    this.stdinEl.hidden = false;
    const active = document.activeElement;
    if (!active || active === document.body || this.el.contains(active)) input.focus();
  }

  async sendInput(value) {
    const answered = typeof this.data.version === "number" ? this.data.version : 0;
    this.stdinAnswered = answered;
    this.stdinError = "";
    this.renderStdin();
    try {
      await this.page.api("POST", `cells/${this.id}/stdin`, { value });
    } catch (err) {
      if (this.removed || this.stdinAnswered !== answered) return;
      this.stdinAnswered = -1;
      this.stdinError = err.message || String(err);
      this.renderStdin();
      if (this.stdinEl.hidden) this.noteError(err, "Sending the input");
    }
  }

  // -------------------------------------------------------------------------------------

  update(data, opts) {
    // The server leaves input_request out when the cell does not wait for input.
    if (data && typeof data === "object" && !("input_request" in data)) data = { ...data, input_request: null };
    super.update(data, opts);
  }

  refresh() {
    const st = this.status;
    const d = this.data;
    if (ACTIVE.has(st)) this.prompt.textContent = "[*]";
    else if (d.execution_count !== null && d.execution_count !== undefined) this.prompt.textContent = `[${d.execution_count}]`;
    else this.prompt.textContent = "[ ]";
    this.el.classList.toggle("active", ACTIVE.has(st));
    this.tick();
    this.outputs.render(d.outputs || []);
    widgets.refreshWidgets(this);
    this.renderStdin();
  }

  // Running indicator (called every second by a global timer).
  tick() {
    const st = this.status;
    const d = this.data;
    let text = "";
    let cls = "cell-status";
    if (st === "queued") {
      text = "queued";
      cls += " queued";
    } else if (st === "running") {
      const started = typeof d.started === "number" ? d.started : null;
      text = started ? `running\u2026 ${formatSeconds(Date.now() / 1000 - started)}` : "running\u2026";
      if (d.input_request && this.stdinAnswered < (d.version ?? 0)) text = "waiting for input";
      cls += " running";
    } else if ((st === "done" || st === "error") && typeof d.started === "number" && typeof d.finished === "number") {
      const secs = Math.max(0, d.finished - d.started);
      text = secs < 10 ? `${secs.toFixed(secs < 1 ? 2 : 1)}s` : formatSeconds(secs);
      cls += ` finished ${st}`;
    }
    if (this.statusEl.textContent !== text) this.statusEl.textContent = text;
    if (this.statusEl.className !== cls) this.statusEl.className = cls;
  }

  async evaluate({ insertBelow = false } = {}) {
    if (!this.page.canEdit || this.removed) return;
    const input = this.getInput();
    if (this.page.inspectTip && this.page.inspectTip.cell === this) closeInspect(this.page);
    closeCompletion(this.view);
    // Optimistic feedback until the server answers.
    this.data = { ...this.data, status: "queued", started: null, input_request: null };
    this.stdinError = "";
    this.el.dataset.status = "queued";
    this.seq = this.page.nextSeq();
    this.refresh();
    this.page.messages.hideIfError();
    if (insertBelow) this.page.actions.addCell({ type: "compute", after: this, focus: true });
    try {
      // Saved as every edit (merged with others' edits, or a conflict shown: live.js),
      // then what the server has is evaluated.
      await this.save();
      if (this.onHold || (this.isDirty() && this.getInput() === input)) {
        throw new Error(this.onHold === "conflict" ? "Not evaluated: resolve the conflict in this cell first."
          : this.onHold ? "Not evaluated: this cell was deleted." : "Not evaluated: the input could not be saved.");
      }
      const cell = await this.page.api("POST", `cells/${this.id}/evaluate`, { wait: 2 });
      this.update(cell);
    } catch (err) {
      if (this.removed) return;
      this.page.messages.report(err);
      // Find out the real state.
      try {
        this.update(await this.page.api("GET", `cells/${this.id}`), { force: true });
      } catch {
        /* ignore */
      }
    }
  }

  async clear() {
    try {
      await this.ready;
      this.update(await this.page.api("POST", `cells/${this.id}/clear`, {}));
    } catch (err) {
      this.page.messages.report(err);
    }
  }

  destroy() {
    if (this.page.inspectTip && this.page.inspectTip.cell === this) closeInspect(this.page);
    clearTimeout(this.noteTimer);
    super.destroy();
    this.view.destroy();
  }
}
