// A page of Sage's manuals as a read-only worksheet (templates/doc_page.jinja2): the
// page's text, sanitized as a text cell's (its HTML is the package's, but no HTML is
// trusted with the notebook's origin: docs/security.md, "The manuals"), with each
// `sage:` example a compute cell.  Logged-in visitors evaluate an example (edited or
// not) in their documentation worksheet's Sage process: POST /doc/evaluate, then
// GET /doc/result while it runs; outputs are drawn as a worksheet's.

import { h, sleep } from "./page/dom.js";
import { csrfToken, jsonApi } from "./page/api.js";
import { makeSanitizer } from "./page/sanitize.js";
import { typeset } from "./page/math.js";
import { OutputArea, listenToFrames } from "./page/outputs.js";

const root = document.getElementById("doc-page");
const data = JSON.parse(document.getElementById("doc-data").textContent);
const canEvaluate = root.dataset.canEvaluate === "true";
const api = jsonApi(root.dataset.docUrl, csrfToken());
const BUSY = new Set(["queued", "running"]);

// What OutputArea needs of a page: outputs are the visitor's own (the manual's code,
// run by them), so HTML outputs are drawn in the sandboxed frame as an owner's are.
const page = {
  wsUrl: data.url,
  frameUrl: root.dataset.frameUrl,
  trusted: true,
  canEdit: false,
  root,
  sanitizer: makeSanitizer(data.url),
  worksheet: { typeset: false },
};
listenToFrames(page);

function exampleCell(index, example) {
  const lines = example.input.split("\n").length;
  const input = h("textarea", {
    class: "doc-input", rows: String(Math.min(lines, 30)), spellcheck: "false",
    "aria-label": `Example ${index + 1}`, readonly: !canEvaluate,
  });
  input.value = example.input;
  const status = h("span", { class: "doc-status", role: "status", "aria-live": "polite" });
  const run = canEvaluate
    ? h("button", { type: "button", class: "btn", dataset: { action: "evaluate" }, title: "Run this example (Shift-Enter)" }, "Evaluate")
    : null;
  const outputEl = h("div", { class: "doc-output outputs empty", dataset: { role: "doc-output" } });
  const expected = example.expected
    ? h("details", { class: "doc-expected" }, h("summary", { text: "Output in the manual" }),
      h("pre", { text: example.expected }))
    : null;
  const stop = canEvaluate
    ? h("button", { type: "button", class: "btn doc-interrupt", dataset: { action: "interrupt" }, title: "Interrupt the running example", hidden: true }, "Interrupt")
    : null;
  const el = h("div", { class: "doc-cell", dataset: { role: "doc-example", example: String(index) } },
    input, h("div", { class: "doc-cell-bar" }, run, stop, status), outputEl, expected);
  const area = new OutputArea(outputEl, page, { id: null, data: { input: example.input, outputs: [] } });
  if (expected && !canEvaluate) expected.open = true;

  async function evaluate() {
    if (!canEvaluate || el.classList.contains("running")) return;
    el.classList.add("running");
    stop.hidden = false;
    status.classList.remove("error");
    status.textContent = "Running\u2026";
    const started = Date.now();
    try {
      let cell = await api("POST", "evaluate", { input: input.value, wait: 30 });
      while (BUSY.has(cell.status)) {
        status.textContent = `Running\u2026 ${Math.round((Date.now() - started) / 1000)} s`;
        cell = await api("GET", `result?cell=${cell.id}&since=${cell.version}&wait=20`);
        if (BUSY.has(cell.status)) await sleep(200);
      }
      area.cell = { id: null, data: { input: input.value, outputs: cell.outputs } };
      area.rerender(cell.outputs || []);
      status.textContent = cell.status === "error" ? "Error" : `Done (${((Date.now() - started) / 1000).toFixed(1)} s)`;
      if (expected) expected.open = false;
    } catch (err) {
      status.textContent = err.message;
      status.classList.add("error");
    } finally {
      el.classList.remove("running");
      stop.hidden = true;
    }
  }
  if (run) run.addEventListener("click", evaluate);
  if (stop) stop.addEventListener("click", () => api("POST", "interrupt", {}).catch((err) => { status.textContent = err.message; }));
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && ev.shiftKey) {
      ev.preventDefault();
      evaluate();
    }
  });
  return el;
}

const article = root.querySelector("[data-role=doc-article]");
article.replaceChildren(page.sanitizer.sanitize(data.html));
for (const holder of article.querySelectorAll("div.sagenb-doc-example")) {
  const index = Number((holder.id || "").replace("sagenb-doc-example-", ""));
  const example = data.examples[index];
  if (example) holder.replaceWith(exampleCell(index, example));
}
typeset(article);
if (location.hash) {
  const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target) target.scrollIntoView();
}

// Copy to a new worksheet: the form posts without JavaScript too; with it, the answer
// says what went wrong in the page.
const copyForm = root.querySelector("[data-role=doc-copy]");
if (copyForm) {
  copyForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = copyForm.querySelector("button");
    button.disabled = true;
    try {
      const made = await api("POST", "copy", { page: data.path });
      location.href = made.url;
    } catch (err) {
      button.disabled = false;
      root.querySelector("[data-role=doc-note]").textContent = `Could not copy the page: ${err.message}`;
    }
  });
}
