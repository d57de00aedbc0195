// Links from help text (`foo?` in a cell, the Shift-Tab tooltip) to the function's page
// of Sage's manuals at /doc/, when the manuals have one: the server's index decides
// (GET /doc/lookup), from the name asked about and the help text's "File:" line (the
// module, which tells `factor` of sage.arith.misc from the many methods called factor).

import { h } from "./dom.js";
import { stripAnsi } from "./ansi.js";

const NAME = /^[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*$/u;

// The application's root: the layout's "Sage Notebook" link (the notebook may live
// below a path prefix).
function docBase() {
  const brand = document.querySelector("header .brand");
  return new URL("doc/", brand ? brand.href : `${location.origin}/`);
}

// The name a help text is about: `name` when given (the cell's `foo?`), else its
// "Signature:" line's.
export function helpName(text, name = "") {
  if (name && NAME.test(name)) return name;
  const m = /^(?:Init signature|Signature|Call signature):\s*([\p{L}_][\p{L}\p{N}_.]*)\s*\(/mu.exec(text);
  return m ? m[1] : "";
}

// The name `foo?` / `foo??` in a cell asks about (its last line), or "".
export function questionName(input) {
  const lines = String(input || "").trim().split("\n");
  const m = /^\s*([\p{L}_][\p{L}\p{N}_.]*)\s*\?\??\s*$/u.exec(lines[lines.length - 1] || "");
  return m ? m[1] : "";
}

const cache = new Map(); // "name\0file" -> Promise of {url, name} or null

function lookup(name, file) {
  const key = `${name}\0${file}`;
  if (!cache.has(key)) {
    const url = new URL("lookup", docBase());
    url.searchParams.set("name", name);
    if (file) url.searchParams.set("file", file);
    cache.set(key, fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null));
  }
  return cache.get(key);
}

// Append "Manual: <name>" to `container` once the server says the manuals have a page
// for what `text` (a help text, ANSI colours and all) is about.
export function addManualLink(container, text, name = "") {
  const plain = stripAnsi(String(text || ""));
  const asked = helpName(plain, name);
  if (!asked) return;
  const file = (/^\s*File:\s*(\S+)\s*$/m.exec(plain) || [])[1] || "";
  lookup(asked, file).then((found) => {
    if (!found || !found.url || !container.isConnected) return;
    container.append(h("p", { class: "doc-manual-link" }, "Manual: ",
      h("a", { href: found.url, target: "_blank", rel: "noopener", dataset: { role: "manual-link" }, text: found.name })));
  });
}
