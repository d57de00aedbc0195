// The Share dialog of the worksheet page (issue 20): the worksheet's collaborators and
// viewers, a role per entry, remove, and a type-ahead over the users and groups the
// server lets the sharer see (GET /people?q=). Saving PUTs the whole sharing
// (<worksheet>/sharing); the server says what is wrong (an unknown entry) and then
// changes nothing. Every name is set as text.

import { h } from "./dom.js";

const ROLE_LABELS = { collaborators: "collaborator", viewers: "viewer" };

// "shared with 3 people, 1 group" (the server renders the first one).
export function summaryText(people, groups) {
  if (!people && !groups) return "not shared";
  const parts = [];
  if (people) parts.push(`${people} ${people === 1 ? "person" : "people"}`);
  if (groups) parts.push(`${groups} group${groups === 1 ? "" : "s"}`);
  return `shared with ${parts.join(", ")}`;
}

export function makeShare(page) {
  const peopleUrl = page.root.dataset.peopleUrl || new URL("/people", location.href).href;
  const summaryEl = document.querySelector("[data-role=sharing-summary]");
  let dialog = null;
  let entries = []; // [{entry, role}] as the dialog shows them
  let others = 0;
  let lookup = null; // the pending type-ahead request
  let timer = null;

  const el = {};

  function build() {
    el.list = h("ul", { class: "share-entries", "data-role": "share-entries" });
    el.others = h("p", { class: "hint", "data-role": "share-others", hidden: true });
    el.input = h("input", {
      type: "text", list: "share-candidates", "data-role": "share-input", autocomplete: "off",
      placeholder: "login, or group:name", "aria-label": "User or group to share with",
      maxlength: "200",
    });
    el.options = h("datalist", { id: "share-candidates", "data-role": "share-candidates" });
    el.newRole = roleSelect("viewers");
    el.newRole.dataset.role = "share-new-role";
    el.error = h("div", { class: "share-error", role: "alert", "data-role": "share-error" });
    el.status = h("span", { class: "hint", role: "status", "data-role": "share-status" });
    const addForm = h("form", { class: "share-add", "data-role": "share-add" },
      el.input, el.options, el.newRole,
      h("button", { type: "submit", class: "btn", text: "Add" }));
    dialog = h("dialog", { class: "share-dialog", "data-role": "share-dialog", "aria-labelledby": "share-title" },
      h("h2", { id: "share-title", text: `Share “${page.worksheet.name || "this worksheet"}”` }),
      h("p", { class: "hint", text: "Viewers may read, copy and download it; collaborators may also edit and run it, in your worksheet's Sage process." }),
      el.list, el.others, addForm, el.error,
      h("div", { class: "share-buttons" },
        h("button", { type: "button", class: "btn btn-primary", "data-share-action": "save", text: "Save" }),
        h("button", { type: "button", class: "btn", "data-share-action": "close", text: "Close" }),
        el.status));
    addForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      add(el.input.value, el.newRole.value);
    });
    el.input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => suggest(el.input.value), 200);
    });
    dialog.addEventListener("click", (ev) => {
      const btn = ev.target.closest("[data-share-action]");
      if (!btn) return;
      const action = btn.dataset.shareAction;
      if (action === "save") save();
      else if (action === "close") dialog.close();
      else if (action === "remove") {
        entries = entries.filter((e) => e.entry !== btn.dataset.entry);
        render();
      }
    });
    document.body.append(dialog);
  }

  function roleSelect(value) {
    const select = h("select", { "aria-label": "Role" });
    for (const [role, label] of Object.entries(ROLE_LABELS)) {
      select.append(h("option", { value: role, text: label, selected: role === value }));
    }
    return select;
  }

  function render() {
    el.list.replaceChildren(...entries.map((item) => {
      const select = roleSelect(item.role);
      select.dataset.entry = item.entry;
      select.addEventListener("change", () => {
        item.role = select.value;
      });
      return h("li", { class: "share-entry", "data-entry": item.entry },
        h("span", { class: "share-name", text: item.entry }), select,
        h("button", { type: "button", class: "btn btn-ghost", "data-share-action": "remove",
          "data-entry": item.entry, "aria-label": `Remove ${item.entry}`, text: "Remove" }));
    }));
    if (!entries.length) el.list.append(h("li", { class: "hint", text: "Only you." }));
    el.others.hidden = !others;
    el.others.textContent = others ? `and ${others} more you cannot see` : "";
  }

  function load(data) {
    entries = [];
    for (const role of ["collaborators", "viewers"]) {
      for (const entry of data[role] || []) entries.push({ entry, role });
    }
    others = data.others || 0;
    render();
    if (summaryEl) {
      summaryEl.dataset.people = data.people;
      summaryEl.dataset.groups = data.groups;
      summaryEl.textContent = summaryText(data.people, data.groups);
    }
  }

  function add(text, role) {
    const entry = text.trim();
    el.error.textContent = "";
    if (!entry) return;
    const known = entries.find((e) => e.entry === entry);
    if (known) known.role = role;
    else entries.push({ entry, role });
    el.input.value = "";
    el.options.replaceChildren();
    render();
  }

  async function suggest(query) {
    if (lookup) lookup.abort();
    if (!query.trim()) {
      el.options.replaceChildren();
      return;
    }
    lookup = new AbortController();
    try {
      const url = `${peopleUrl}?q=${encodeURIComponent(query.trim())}`;
      const found = await page.api("GET", url, undefined, { signal: lookup.signal });
      el.options.replaceChildren(
        ...found.groups.map((g) => h("option", { value: g.entry, label: `group ${g.name}` })),
        ...found.users.map((u) => h("option", { value: u.login, label: u.name ? `${u.login} (${u.name})` : u.login })));
    } catch (err) {
      if (err.name !== "AbortError") el.error.textContent = err.message;
    }
  }

  async function save() {
    const body = { collaborators: [], viewers: [] };
    for (const item of entries) body[item.role].push(item.entry);
    el.error.textContent = "";
    el.status.textContent = "Saving…";
    try {
      load(await page.api("PUT", "sharing", body));
      el.status.textContent = "Saved.";
    } catch (err) {
      el.status.textContent = "";
      el.error.textContent = err.message;
    }
  }

  async function open() {
    if (!dialog) build();
    el.error.textContent = "";
    el.status.textContent = "";
    try {
      load(await page.api("GET", "sharing"));
    } catch (err) {
      page.messages.report(err);
      return;
    }
    dialog.showModal();
    el.input.focus();
  }

  return { open };
}
