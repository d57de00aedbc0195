// ipywidgets views for Sage's @interact, drawn from the models the server keeps with
// the cell (cell.data.widgets: {model_id: {model_name, state}}).  A change in a control
// is sent as a comm "update" to POST cells/<id>/comm; the kernel runs the interact's
// function again and the new state (its Output widget's outputs included) arrives as a
// new version of the cell, which redraws the views.  No widget library: the controls
// Sage's interact uses are plain HTML elements here.

import { h as el } from "./page/dom.js";

const VIEW_MIME = "application/vnd.jupyter.widget-view+json";
const MODEL_REF = /^IPY_MODEL_(.+)$/;

let env = null; // {api, sanitize, typeset, outputArea, error} from worksheet.js

export function setup(environment) {
  env = environment;
}

export function isWidgetView(output) {
  return Boolean(output && output.data && output.data[VIEW_MIME]);
}

function ref(value) {
  const m = typeof value === "string" ? MODEL_REF.exec(value) : null;
  return m ? m[1] : null;
}

// One view per widget-view output of a cell; all redrawn when the cell's models change.
export function renderWidgetView(output, cell) {
  const modelId = output.data[VIEW_MIME].model_id;
  const holder = el("div", { class: "output-item widget-area", "data-model-id": modelId });
  if (!cell.widgetViews) cell.widgetViews = new Set();
  const view = { holder, modelId, cell, key: null, outputs: new Map(), focusKey: null };
  cell.widgetViews.add(view);
  draw(view);
  return holder;
}

export function refreshWidgets(cell) {
  if (!cell.widgetViews) return;
  for (const view of [...cell.widgetViews]) {
    if (!view.holder.isConnected) {
      cell.widgetViews.delete(view);
      continue;
    }
    draw(view);
  }
}

function models(cell) {
  return (cell.data && cell.data.widgets) || {};
}

function draw(view) {
  const all = models(view.cell);
  const key = JSON.stringify(all);
  if (key === view.key) return;
  view.key = key;
  if (!all[view.modelId]) {
    view.holder.replaceChildren(el("div", { class: "widget-missing", text: "[interactive controls: evaluate the cell to show them]" }));
    return;
  }
  // Keep the control being dragged or typed in: redraw everything else around it.
  const active = document.activeElement;
  const activeId = active && view.holder.contains(active) ? active.dataset.modelId : null;
  const fresh = build(view, view.modelId, all, activeId, active);
  view.holder.replaceChildren(fresh);
}

function build(view, id, all, activeId, active) {
  const model = all[id];
  if (!model) return el("span", { class: "widget-missing", text: "" });
  const s = model.state || {};
  const name = (model.model_name || "").replace(/Model$/, "");
  if (activeId === id && active) return active.closest(".widget") || active;
  const box = (cls) => {
    const node = el("div", { class: `widget widget-box ${cls}` });
    for (const child of s.children || []) {
      const childId = ref(child);
      if (childId) node.append(build(view, childId, all, activeId, active));
    }
    return node;
  };
  switch (name) {
    case "VBox": case "Box": case "GridBox": return box("widget-vbox");
    case "HBox": return box("widget-hbox");
    case "Output": return output(view, id, s);
    case "Label": return el("div", { class: "widget widget-label", text: s.value || "" });
    case "HTML": case "HTMLMath": return html(s);
    default: return control(view, id, name, s);
  }
}

function html(s) {
  const node = el("div", { class: "widget widget-html" });
  node.append(env.sanitize(String(s.value || "")));
  env.typeset(node);
  return node;
}

function output(view, id, s) {
  let area = view.outputs.get(id);
  if (!area) {
    const node = el("div", { class: "widget widget-output output" });
    area = { node, render: env.outputArea(node, view.cell) };
    view.outputs.set(id, area);
  }
  area.render(s.outputs || []);
  return area.node;
}

function send(view, id, state) {
  const cell = view.cell;
  // Shown at once; the kernel's answer comes with the next version of the cell.
  const model = models(cell)[id];
  if (model) Object.assign(model.state, state);
  view.holder.classList.add("widget-busy");
  env.api("POST", `cells/${cell.id}/comm`, { comm_id: id, data: { method: "update", state } })
    .then((res) => follow(cell, res.version))
    .catch((err) => env.error(cell, err))
    .finally(() => view.holder.classList.remove("widget-busy"));
}

// The interact's function runs in the kernel now: take the cell's new versions until
// a hold of the long poll passes without change (or a minute has passed).
async function follow(cell, version) {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const data = await env.api("GET", `cells/${cell.id}?since=${version}&wait=5`);
    if (data.version <= version) return;
    version = data.version;
    cell.update(data);
  }
}

function labelled(s, input, id, extraClass = "") {
  const wrap = el("div", { class: `widget widget-control ${extraClass}` });
  const label = el("label", { class: "widget-description", text: s.description || "" });
  if (!input.id) input.id = `w-${id}`;
  label.setAttribute("for", input.id);
  input.dataset.modelId = id;
  wrap.append(label, input);
  return wrap;
}

function labelsOf(s) {
  return s._options_labels || [];
}

function control(view, id, name, s) {
  const disabled = Boolean(s.disabled);
  switch (name) {
    case "IntSlider": case "FloatSlider": case "FloatLogSlider": {
      const input = el("input", { type: "range", min: s.min, max: s.max, step: s.step || (name === "IntSlider" ? 1 : "any"), value: s.value, disabled });
      const shown = el("span", { class: "widget-readout", text: String(s.value) });
      input.addEventListener("input", () => { shown.textContent = input.value; });
      input.addEventListener("change", () => send(view, id, { value: Number(input.value) }));
      const wrap = labelled(s, input, id, "widget-slider");
      wrap.append(shown);
      return wrap;
    }
    case "SelectionSlider": {
      const labels = labelsOf(s);
      const input = el("input", { type: "range", min: 0, max: Math.max(0, labels.length - 1), step: 1, value: s.index ?? 0, disabled });
      const shown = el("span", { class: "widget-readout", text: labels[s.index ?? 0] ?? "" });
      input.addEventListener("input", () => { shown.textContent = labels[Number(input.value)] ?? ""; });
      input.addEventListener("change", () => send(view, id, { index: Number(input.value) }));
      const wrap = labelled(s, input, id, "widget-slider");
      wrap.append(shown);
      return wrap;
    }
    case "IntRangeSlider": case "FloatRangeSlider": case "SelectionRangeSlider": {
      const selection = name === "SelectionRangeSlider";
      const labels = labelsOf(s);
      const pair = selection ? (s.index || [0, 0]) : (s.value || [s.min, s.max]);
      const lo = el("input", { type: "range", min: selection ? 0 : s.min, max: selection ? labels.length - 1 : s.max, step: selection ? 1 : (s.step || "any"), value: pair[0], disabled, "aria-label": `${s.description || ""} from` });
      const hi = el("input", { type: "range", min: selection ? 0 : s.min, max: selection ? labels.length - 1 : s.max, step: selection ? 1 : (s.step || "any"), value: pair[1], disabled, "aria-label": `${s.description || ""} to` });
      const text = () => selection ? `${labels[Number(lo.value)]} – ${labels[Number(hi.value)]}` : `${lo.value} – ${hi.value}`;
      const shown = el("span", { class: "widget-readout", text: text() });
      const change = () => {
        let a = Number(lo.value);
        let b = Number(hi.value);
        if (a > b) [a, b] = [b, a];
        send(view, id, selection ? { index: [a, b] } : { value: [a, b] });
      };
      for (const input of [lo, hi]) {
        input.addEventListener("input", () => { shown.textContent = text(); });
        input.addEventListener("change", change);
      }
      const wrap = el("div", { class: "widget widget-control widget-slider widget-range" },
        el("span", { class: "widget-description", text: s.description || "" }), lo, hi, shown);
      lo.dataset.modelId = id;
      hi.dataset.modelId = id;
      return wrap;
    }
    case "Text": case "Textarea": case "Password": {
      const input = name === "Textarea"
        ? el("textarea", { rows: s.rows || 3, disabled, placeholder: s.placeholder || "" })
        : el("input", { type: name === "Password" ? "password" : "text", disabled, placeholder: s.placeholder || "" });
      input.value = s.value ?? "";
      input.addEventListener("change", () => send(view, id, { value: input.value }));
      if (name !== "Textarea") {
        input.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter") { ev.preventDefault(); input.blur(); }
        });
      }
      return labelled(s, input, id, "widget-text");
    }
    case "Dropdown": case "Select": {
      const select = el("select", { disabled });
      labelsOf(s).forEach((label, i) => select.append(el("option", { value: String(i), text: label })));
      select.value = String(s.index ?? 0);
      select.addEventListener("change", () => send(view, id, { index: Number(select.value) }));
      return labelled(s, select, id, "widget-dropdown");
    }
    case "ToggleButtons": case "RadioButtons": {
      const group = el("div", { class: "widget-buttons", role: "radiogroup", "aria-label": s.description || "" });
      labelsOf(s).forEach((label, i) => {
        const b = el("button", { type: "button", class: i === s.index ? "widget-button active" : "widget-button", text: label, role: "radio", "aria-checked": i === s.index ? "true" : "false", disabled });
        b.dataset.modelId = id;
        b.addEventListener("click", () => send(view, id, { index: i }));
        group.append(b);
      });
      return el("div", { class: "widget widget-control widget-toggle" },
        el("span", { class: "widget-description", text: s.description || "" }), group);
    }
    case "Checkbox": case "ToggleButton": {
      const input = el("input", { type: "checkbox", disabled });
      input.checked = Boolean(s.value);
      input.addEventListener("change", () => send(view, id, { value: input.checked }));
      return labelled(s, input, id, "widget-checkbox");
    }
    case "ColorPicker": {
      const input = el("input", { type: "color", disabled });
      input.value = /^#[0-9a-f]{6}$/i.test(s.value || "") ? s.value : "#000000";
      input.addEventListener("change", () => send(view, id, { value: input.value }));
      return labelled(s, input, id, "widget-color");
    }
    case "Button": {
      const b = el("button", { type: "button", class: "widget widget-button", text: s.description || "Run", disabled });
      b.dataset.modelId = id;
      b.addEventListener("click", () => {
        env.api("POST", `cells/${view.cell.id}/comm`, { comm_id: id, data: { method: "custom", content: { event: "click" } } })
          .then((res) => follow(view.cell, res.version))
          .catch((err) => env.error(view.cell, err));
      });
      return b;
    }
    default:
      return el("div", { class: "widget widget-unknown", text: `[${name} control]` });
  }
}
