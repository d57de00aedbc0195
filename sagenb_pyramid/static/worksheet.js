// Worksheet page of sagenb-pyramid.
//
// Plain ES module, no build step: it imports the vendored CodeMirror bundle
// (built by frontend/, see frontend/README.md) and loads MathJax on demand.
// The server renders the skeleton (templates/worksheet.jinja2) and embeds the
// worksheet state as JSON in <script id="worksheet-data">; everything else
// goes through the JSON API relative to the worksheet URL.

import {
  EditorView, EditorState, Prec, keymap, highlightSpecialChars, drawSelection,
  dropCursor, rectangularSelection, crosshairCursor, defaultKeymap, history,
  historyKeymap, indentWithTab, syntaxHighlighting, defaultHighlightStyle,
  indentOnInput, bracketMatching, closeBrackets, closeBracketsKeymap,
  highlightSelectionMatches, python, autocompletion, completionKeymap,
  startCompletion, closeCompletion, completionStatus,
} from "./vendor/codemirror.js";
import DOMPurify from "./vendor/dompurify.js";
import * as widgets from "./widgets.js";

// The bundle exports no acceptCompletion: it is the command of Enter in the
// completion keymap (Tab accepts too, see ComputeCell.extensions).
const acceptCompletion = (completionKeymap.find((b) => b.key === "Enter") || {}).run || (() => false);

const MATHJAX_URL = new URL("./vendor/mathjax/tex-svg-full.js", import.meta.url).href;

const root = document.getElementById("worksheet");
const cellsEl = document.getElementById("cells");
const messageEl = document.getElementById("message");
const CAN_EDIT = root.dataset.canEdit === "true";
// Whether this viewer vouches for the worksheet (its owner, who trusted it): only then
// do HTML outputs run their scripts (in sandboxed frames of an opaque origin).
const TRUSTED = root.dataset.trusted === "true";
const FRAME_URL = root.dataset.frameUrl || new URL("/_frame", location.href).href;
// Containers of rendered user content: clicks inside them are never page actions.
const USER_CONTENT = ".text-rendered, .output-item";
const WS_URL = (() => {
  const u = new URL(root.dataset.worksheetUrl || location.href, location.href);
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  u.search = "";
  u.hash = "";
  return u.href;
})();
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const ACTIVE = new Set(["queued", "running"]);

let worksheet = JSON.parse(document.getElementById("worksheet-data").textContent || "{}");

// ---------------------------------------------------------------------------
// Small helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function b64encodeUtf8(str) {
  const bytes = new TextEncoder().encode(str);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

const joinText = (t) => (Array.isArray(t) ? t.join("") : t == null ? "" : String(t));

// A path below the worksheet with every segment of `name` URL-encoded (a file name
// may contain "/": files the cell wrote in a subfolder).
function encodePath(name) {
  return String(name).split("/").map(encodeURIComponent).join("/");
}

function cellFileUrl(cellId, name) {
  return new URL(`cells/${encodeURIComponent(cellId)}/files/${encodePath(name)}`, WS_URL).href;
}

function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

// The server counts positions in characters (code points), the editor in UTF-16 units.
function toCodePointOffset(text, index) {
  let n = 0;
  for (let i = 0; i < index && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}
function fromCodePointOffset(text, offset) {
  let i = 0;
  for (let n = 0; n < offset && i < text.length; n++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
  }
  return i;
}

// sagenb's percent directives: the cell's first lines that are exactly "%name"
// (as sagenb_pyramid/workers/directives.py reads them).
const DIRECTIVE_LINE = /^%([A-Za-z_][A-Za-z0-9_]*)[ \t]*$/;
function cellDirectives(text) {
  const names = [];
  for (const line of String(text || "").split("\n")) {
    const m = DIRECTIVE_LINE.exec(line.trim());
    if (!m) break;
    names.push(m[1].toLowerCase());
  }
  return names;
}

// ---------------------------------------------------------------------------
// Message bar

let messageTimer = null;
function showMessage(text, kind = "error") {
  clearTimeout(messageTimer);
  const close = h("button", { type: "button", class: "message-close", title: "Dismiss", "aria-label": "Dismiss" }, "\u00d7");
  close.addEventListener("click", hideMessage);
  messageEl.className = `message ${kind}`;
  messageEl.dataset.kind = kind;
  messageEl.replaceChildren(h("span", { class: "message-text", text }), close);
  messageEl.hidden = false;
  if (kind !== "error") messageTimer = setTimeout(hideMessage, 4000);
}
function hideMessage() {
  clearTimeout(messageTimer);
  messageEl.hidden = true;
  messageEl.replaceChildren();
}
function reportError(err) {
  if (err && err.name === "AbortError") return;
  console.error(err);
  showMessage((err && err.message) || String(err), "error");
}

// ---------------------------------------------------------------------------
// JSON API

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function api(method, path, body, { signal, keepalive } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", signal, keepalive, cache: "no-store" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = CSRF;
    if (method !== "DELETE" || body !== undefined) init.body = JSON.stringify(body ?? {});
  }
  let resp;
  try {
    resp = await fetch(new URL(path, WS_URL), init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("Cannot reach the server (network error).", 0);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const msg = (data && data.error) || `${resp.status} ${resp.statusText || "error"}`;
    throw new ApiError(msg, resp.status);
  }
  if (data === null) {
    throw new ApiError("Unexpected answer from the server (logged out?). Reload the page.", resp.status);
  }
  return data;
}

// ---------------------------------------------------------------------------
// MathJax (loaded lazily from static/vendor/mathjax)

const SAGE_MACROS = {
  Bold: ["\\mathbf{#1}", 1],
  ZZ: "\\Bold{Z}", NN: "\\Bold{N}", RR: "\\Bold{R}", CC: "\\Bold{C}",
  QQ: "\\Bold{Q}", QQbar: "\\overline{\\QQ}", FF: "\\Bold{F}",
  GF: ["\\Bold{F}_{#1}", 1], Zp: ["\\ZZ_{#1}", 1], Qp: ["\\QQ_{#1}", 1],
  Zmod: ["\\ZZ/#1\\ZZ", 1],
  CDF: "\\Bold{C}", CIF: "\\Bold{C}", CLF: "\\Bold{C}", RDF: "\\Bold{R}",
  RIF: "\\Bold{I} \\Bold{R}", RLF: "\\Bold{R}", CFF: "\\Bold{CFF}",
  SL: "\\mathrm{SL}", PSL: "\\mathrm{PSL}",
  lcm: "\\mathop{\\operatorname{lcm}}", dist: "\\mathrm{dist}",
  Disk: "\\mathbb{D}", im: "\\mathop{\\operatorname{im}}",
};

let mathjaxPromise = null;
function loadMathJax() {
  if (mathjaxPromise) return mathjaxPromise;
  mathjaxPromise = new Promise((resolve, reject) => {
    window.MathJax = {
      // ui/safe filters URLs, classes, ids and styles of the typeset math.
      loader: { load: ["ui/safe"] },
      options: {
        safeOptions: { allow: { URLs: "safe", classes: "safe", cssIDs: "safe", styles: "safe" } },
      },
      tex: {
        // No \href, \class, \cssId, \style (html), and no loading them (require,
        // autoload): TeX makes no links and no raw attributes in the page.
        packages: { "[-]": ["html", "require", "autoload"] },
        inlineMath: [["$", "$"], ["\\(", "\\)"]],
        displayMath: [["$$", "$$"], ["\\[", "\\]"]],
        processEscapes: true,
        processEnvironments: true,
        macros: SAGE_MACROS,
      },
      svg: { fontCache: "local" },
      // Only tex-svg-full.js is vendored: everything the page uses is built
      // into it (the menu's optional "explorer" would need a11y/sre files).
      startup: {
        typeset: false,
        ready() {
          window.MathJax.startup.defaultReady();
          window.MathJax.startup.promise.then(() => resolve(window.MathJax), reject);
        },
      },
    };
    const script = h("script", { src: MATHJAX_URL, async: true, id: "MathJax-script" });
    script.addEventListener("error", () => reject(new Error("Could not load MathJax.")));
    document.head.append(script);
  });
  mathjaxPromise.catch(reportError);
  return mathjaxPromise;
}

// MathJax operations are serialised, as recommended by its documentation.
let mathChain = Promise.resolve();
function withMathJax(fn) {
  const p = mathChain.then(() => loadMathJax()).then(fn);
  mathChain = p.catch((err) => console.warn("MathJax:", err));
  return p;
}
function typeset(el) {
  return withMathJax((MJ) => (el.isConnected ? MJ.typesetPromise([el]) : null));
}
function typesetClear(el) {
  if (window.MathJax && window.MathJax.typesetClear) {
    try {
      window.MathJax.typesetClear([el]);
    } catch (err) {
      /* ignore */
    }
  }
}

// Split a text/latex payload into math + display flag, stripping delimiters.
function parseLatex(src) {
  let s = String(src).trim();
  const pairs = [["$$", "$$", true], ["\\[", "\\]", true], ["\\(", "\\)", false], ["$", "$", false]];
  for (const [open, close, display] of pairs) {
    if (s.length >= open.length + close.length && s.startsWith(open) && s.endsWith(close)) {
      const inner = s.slice(open.length, s.length - close.length);
      // "$a$ and $b$" is text with two formulas, not one formula
      if (open === "$" && /(^|[^\\])\$/.test(inner)) break;
      if (open === "$$" && inner.includes("$$")) break;
      return { math: inner.replace(/^\s*\\displaystyle\b/, "").trim(), display: true, text: false, inlineDelims: !display };
    }
  }
  if (/(^|[^\\])\$|\\\(|\\\[/.test(s)) return { text: true, src: s };
  return { math: s, display: true, text: false };
}

function renderLatex(src) {
  const el = h("div", { class: "output-latex" });
  const parsed = parseLatex(src);
  if (parsed.text) {
    el.classList.add("latex-text");
    el.textContent = parsed.src;
    typeset(el);
    return el;
  }
  // Fallback text while MathJax loads (or if it fails).
  el.append(h("code", { class: "latex-source", text: parsed.math }));
  withMathJax((MJ) => MJ.tex2svgPromise(parsed.math, { display: parsed.display }))
    .then((node) => el.replaceChildren(node))
    .catch((err) => console.warn("MathJax:", err));
  return el;
}

// ---------------------------------------------------------------------------
// HTML sanitizer for text cells, Markdown and untrusted HTML outputs: DOMPurify
// (vendored, see frontend/) with its HTML, SVG and MathML profiles.  What it keeps is
// inert anyway (the page's Content-Security-Policy runs no inline script); on top of
// that it keeps no page actions (data-*), no forms, no styles that lift content out of
// its cell (position, z-index, transforms: overlays over the page), and no resources
// of other hosts (a remote image tells its author who looked and when).

const purifier = DOMPurify(window);
const PURIFY_CONFIG = {
  USE_PROFILES: { html: true, svg: true, svgFilters: true, mathMl: true },
  ALLOW_DATA_ATTR: false,
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option",
    "iframe", "frame", "object", "embed", "link", "meta", "base", "dialog", "template",
    "noscript", "portal", "use", "animate", "set", "animatemotion", "animatetransform",
    "foreignobject"],
  FORBID_ATTR: ["ping", "srcset", "action", "formaction", "autofocus", "tabindex",
    "accesskey", "popover", "popovertarget", "popovertargetaction"],
  RETURN_DOM_FRAGMENT: true,
};

// CSS properties a text cell may set, each checked for a harmless value.
const STYLE_PROPERTIES = new Set([
  "color", "background-color", "font-family", "font-size", "font-style",
  "font-weight", "font-variant", "text-align", "text-decoration", "text-decoration-line",
  "text-decoration-color", "text-decoration-style", "text-indent", "text-transform",
  "vertical-align", "line-height", "letter-spacing", "word-spacing", "white-space",
  "word-break", "overflow-wrap", "direction",
  "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
  "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
  "border", "border-top", "border-right", "border-bottom", "border-left", "border-width",
  "border-style", "border-color", "border-radius", "border-collapse", "border-spacing",
  "border-top-color", "border-right-color", "border-bottom-color", "border-left-color",
  "border-top-style", "border-right-style", "border-bottom-style", "border-left-style",
  "border-top-width", "border-right-width", "border-bottom-width", "border-left-width",
  "width", "height", "min-width", "min-height", "max-width", "max-height",
  "display", "float", "clear", "list-style-type", "list-style-position", "caption-side",
  "empty-cells", "table-layout", "overflow", "overflow-x", "overflow-y",
]);
const STYLE_BAD_VALUE = /url\s*\(|image-set|expression|var\s*\(|env\s*\(|attr\s*\(|@|\\|javascript:/i;
const DISPLAY_VALUES = new Set(["block", "inline", "inline-block", "flex", "inline-flex",
  "grid", "inline-grid", "table", "table-row", "table-cell", "list-item", "none"]);

function filterStyle(value) {
  const probe = document.createElement("div");
  probe.style.cssText = value;
  const kept = [];
  for (let i = 0; i < probe.style.length; i++) {
    const name = probe.style[i];
    const v = probe.style.getPropertyValue(name);
    if (!STYLE_PROPERTIES.has(name) || STYLE_BAD_VALUE.test(v)) continue;
    // Negative margins pull content over its neighbours (the page's controls).
    if (name.startsWith("margin") && /-/.test(v)) continue;
    if (name === "display" && !DISPLAY_VALUES.has(v.trim())) continue;
    kept.push(`${name}: ${v}`);
  }
  return kept.join("; ");
}

const URL_ATTRIBUTES = new Set(["href", "xlink:href", "src", "poster", "cite", "background"]);

purifier.addHook("uponSanitizeAttribute", (node, data) => {
  const name = data.attrName;
  if (name === "style") {
    data.attrValue = filterStyle(data.attrValue);
    if (!data.attrValue) data.keepAttr = false;
  } else if ((name === "id" || name === "name") &&
             (document.getElementById(data.attrValue) || data.attrValue in window)) {
    // no clobbering of the page's own elements and globals
    data.keepAttr = false;
  }
});

purifier.addHook("afterSanitizeAttributes", (node) => {
  for (const name of URL_ATTRIBUTES) {
    if (!node.hasAttribute || !node.hasAttribute(name)) continue;
    const value = node.getAttribute(name);
    if (value.startsWith("#")) continue; // within the page
    let url;
    try {
      // Relative URLs (legacy text cells: <img src="plot.png">, a data file) are the
      // worksheet's, whatever the address the page was opened with.
      url = new URL(value, WS_URL);
    } catch {
      node.removeAttribute(name);
      continue;
    }
    // Written as the author wrote it when the page's own address resolves it alike.
    if (new URL(value, location.href).href !== url.href) node.setAttribute(name, url.href);
    const isLink = name.endsWith("href") && (node.localName === "a" || node.localName === "area");
    if (isLink) {
      if (url.origin !== location.origin) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    } else if (url.protocol !== "data:" && url.origin !== location.origin) {
      node.removeAttribute(name);
      // A remote image becomes a link the reader may follow (nothing is loaded).
      if (node.localName === "img") node.setAttribute("data-remote-src", url.href);
    }
  }
});

function remoteImageLinks(frag) {
  for (const img of frag.querySelectorAll("img[data-remote-src]")) {
    const url = new URL(img.getAttribute("data-remote-src"));
    const link = h("a", { class: "remote-image", href: url.href, target: "_blank", rel: "noopener noreferrer",
      title: "An image on another site: not loaded, so that its site does not learn who reads this. Open it?" },
    `[image${img.alt ? `: ${img.alt}` : ""} \u2013 ${url.host}]`);
    img.replaceWith(link);
  }
  return frag;
}

function sanitizeHtml(html) {
  return remoteImageLinks(purifier.sanitize(String(html), PURIFY_CONFIG));
}

// What the sanitizer took out of the last call (for the note under untrusted outputs).
function sanitizerRemovedScript() {
  return purifier.removed.some((r) => {
    const el = r.element || r.from;
    const tag = el && el.localName;
    return tag === "script" || (r.attribute && /^on/i.test(r.attribute.name));
  });
}

// ---------------------------------------------------------------------------
// A light Markdown pass for text cells. HTML is passed through (and sanitized
// afterwards); math ($...$, $$...$$, \(...\), \[...\], environments) and code
// are protected from the Markdown rules and left for MathJax.

const BLOCK_HTML = /^\s*<\/?(address|article|aside|blockquote|center|details|dialog|dd|div|dl|dt|fieldset|figcaption|figure|footer|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|summary|table|tbody|td|tfoot|th|thead|tr|ul|img|br|svg|math|iframe|script|style|form)\b[^>]*>?|^\s*<!--/i;

function renderMarkdown(source) {
  const stash = [];
  const keep = (html) => `\u0001${stash.push(html) - 1}\u0002`;
  const keepBlock = (html) => `\u0001B${stash.push(html) - 1}\u0002`;
  let s = String(source).replace(/[\u0001\u0002]/g, "").replace(/\r\n?/g, "\n");

  // fenced code blocks
  s = s.replace(/^ {0,3}(```|~~~)[^\n]*\n([\s\S]*?)^ {0,3}\1[ \t]*$/gm,
    (m, fence, code) => keepBlock(`<pre><code>${escapeHtml(code.replace(/\n$/, ""))}</code></pre>`));
  // inline code
  s = s.replace(/(`+)([^`\n]|[^`\n][\s\S]*?[^`\n])\1(?!`)/g, (m, ticks, code) => keep(`<code>${escapeHtml(code.trim())}</code>`));
  // math
  s = s.replace(
    /\$\$[\s\S]+?\$\$|\\\[[\s\S]+?\\\]|\\\([\s\S]+?\\\)|\\begin\{([a-zA-Z]+\*?)\}[\s\S]+?\\end\{\1\}|(?<![\\$])\$(?=[^\s$])(?:[^$\n\\]|\\[\s\S])*?\$/g,
    (m) => keep(escapeHtml(m)),
  );
  // backslash escapes
  s = s.replace(/\\([\\`*_#\[\]()!+\-.>{}|])/g, (m, c) => keep(escapeHtml(c)));

  const inline = (text) => {
    let t = text;
    // raw inline HTML tags are kept verbatim
    t = t.replace(/<!--[\s\S]*?-->|<\/?[A-Za-z][^<>]*>/g, (m) => keep(m));
    // images and links
    t = t.replace(/!\[([^\]]*)\]\(\s*<?([^\s)>]+)>?(?:\s+"([^"]*)")?\s*\)/g,
      (m, alt, url, title) => keep(`<img src="${escapeHtml(url)}" alt="${escapeHtml(alt)}"${title ? ` title="${escapeHtml(title)}"` : ""}>`));
    t = t.replace(/\[([^\]]+)\]\(\s*<?([^\s)>]+)>?(?:\s+"([^"]*)")?\s*\)/g,
      (m, label, url, title) => `${keep(`<a href="${escapeHtml(url)}"${title ? ` title="${escapeHtml(title)}"` : ""}>`)}${label}${keep("</a>")}`);
    // bare URLs
    t = t.replace(/(^|[\s(])(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g,
      (m, pre, url) => `${pre}${keep(`<a href="${escapeHtml(url)}">${escapeHtml(url)}</a>`)}`);
    // emphasis
    t = t.replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, "<strong>$2</strong>");
    t = t.replace(/\*(?=[^\s*])([\s\S]*?[^\s*])\*/g, "<em>$1</em>");
    t = t.replace(/(^|[^\w])_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/g, "$1<em>$2</em>");
    t = t.replace(/~~(?=\S)([\s\S]*?\S)~~/g, "<del>$1</del>");
    // hard line breaks
    t = t.replace(/( {2,}|\\)\n/g, "<br>\n");
    return t;
  };

  const blocks = (text) => {
    const lines = text.split("\n");
    const out = [];
    let para = [];
    const flush = () => {
      if (para.length) out.push(`<p>${inline(para.join("\n"))}</p>`);
      para = [];
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      let m;
      if (/^\s*$/.test(line)) {
        flush();
      } else if (/^\s*\u0001B\d+\u0002\s*$/.test(line)) {
        flush();
        out.push(line.trim());
      } else if ((m = /^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$/.exec(line))) {
        flush();
        out.push(`<h${m[1].length}>${inline(m[2])}</h${m[1].length}>`);
      } else if (/^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$/.test(line)) {
        flush();
        out.push("<hr>");
      } else if (para.length && /^ {0,3}(=+|-+)[ \t]*$/.test(line)) {
        const level = line.trim()[0] === "=" ? 1 : 2;
        const title = para.join("\n");
        para = [];
        out.push(`<h${level}>${inline(title)}</h${level}>`);
      } else if (/^ {0,3}>/.test(line)) {
        flush();
        const quoted = [];
        while (i < lines.length && /^ {0,3}>/.test(lines[i])) quoted.push(lines[i++].replace(/^ {0,3}> ?/, ""));
        i--;
        out.push(`<blockquote>${blocks(quoted.join("\n"))}</blockquote>`);
      } else if ((m = /^ {0,3}([-*+]|\d{1,9}[.)])[ \t]+/.exec(line))) {
        flush();
        const ordered = /\d/.test(m[1]);
        const start = ordered ? parseInt(m[1], 10) : 1;
        const items = [];
        while (i < lines.length) {
          const l = lines[i];
          const mm = /^ {0,3}([-*+]|\d{1,9}[.)])[ \t]+(.*)$/.exec(l);
          if (mm && /\d/.test(mm[1]) === ordered) items.push(mm[2]);
          else if (items.length && /^\s+\S/.test(l)) items[items.length - 1] += `\n${l.trim()}`;
          else break;
          i++;
        }
        i--;
        const tag = ordered ? "ol" : "ul";
        const startAttr = ordered && start !== 1 ? ` start="${start}"` : "";
        out.push(`<${tag}${startAttr}>${items.map((it) => `<li>${inline(it)}</li>`).join("")}</${tag}>`);
      } else if (BLOCK_HTML.test(line)) {
        flush();
        const raw = [];
        while (i < lines.length && !/^\s*$/.test(lines[i])) raw.push(lines[i++]);
        out.push(raw.join("\n"));
      } else {
        para.push(line);
      }
    }
    flush();
    return out.join("\n");
  };

  let html = blocks(s);
  for (let n = 0; n < 10 && /\u0001B?\d+\u0002/.test(html); n++) {
    html = html.replace(/\u0001B?(\d+)\u0002/g, (m, k) => stash[Number(k)]);
  }
  return html;
}

// ---------------------------------------------------------------------------
// ANSI escape sequences (tracebacks, colored streams) -> spans

const ANSI_COLORS = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];

function xterm256(n) {
  if (n < 16) return null;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  n -= 16;
  const c = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${c(Math.floor(n / 36))},${c(Math.floor(n / 6) % 6)},${c(n % 6)})`;
}

function ansiFragment(text) {
  const frag = document.createDocumentFragment();
  // CSI sequences, OSC sequences, other two-character escapes
  const re = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
  let st = { fg: null, bg: null, bold: false, italic: false, underline: false, fgRgb: null, bgRgb: null };
  let last = 0;
  const push = (chunk) => {
    if (!chunk) return;
    const plain = !st.fg && !st.bg && !st.bold && !st.italic && !st.underline && !st.fgRgb && !st.bgRgb;
    if (plain) {
      frag.append(chunk);
      return;
    }
    const span = document.createElement("span");
    const cls = [];
    if (st.fg) cls.push(`ansi-${st.fg}`);
    if (st.bg) cls.push(`ansi-bg-${st.bg}`);
    if (st.bold) cls.push("ansi-bold");
    if (st.italic) cls.push("ansi-italic");
    if (st.underline) cls.push("ansi-underline");
    span.className = cls.join(" ");
    if (st.fgRgb) span.style.color = st.fgRgb;
    if (st.bgRgb) span.style.backgroundColor = st.bgRgb;
    span.textContent = chunk;
    frag.append(span);
  };
  let m;
  while ((m = re.exec(text))) {
    push(text.slice(last, m.index));
    last = re.lastIndex;
    if (m[2] !== "m") continue;
    const codes = (m[1] || "0").split(/[;:]/).map((x) => (x === "" ? 0 : parseInt(x, 10)));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) st = { fg: null, bg: null, bold: false, italic: false, underline: false, fgRgb: null, bgRgb: null };
      else if (c === 1) st.bold = true;
      else if (c === 3) st.italic = true;
      else if (c === 4) st.underline = true;
      else if (c === 22) st.bold = false;
      else if (c === 23) st.italic = false;
      else if (c === 24) st.underline = false;
      else if (c >= 30 && c <= 37) { st.fg = ANSI_COLORS[c - 30]; st.fgRgb = null; }
      else if (c >= 90 && c <= 97) { st.fg = `bright-${ANSI_COLORS[c - 90]}`; st.fgRgb = null; }
      else if (c === 39) { st.fg = null; st.fgRgb = null; }
      else if (c >= 40 && c <= 47) { st.bg = ANSI_COLORS[c - 40]; st.bgRgb = null; }
      else if (c >= 100 && c <= 107) { st.bg = `bright-${ANSI_COLORS[c - 100]}`; st.bgRgb = null; }
      else if (c === 49) { st.bg = null; st.bgRgb = null; }
      else if (c === 38 || c === 48) {
        let color = null;
        let name = null;
        if (codes[i + 1] === 5) {
          const n = codes[i + 2];
          if (n < 8) name = ANSI_COLORS[n];
          else if (n < 16) name = `bright-${ANSI_COLORS[n - 8]}`;
          else color = xterm256(n);
          i += 2;
        } else if (codes[i + 1] === 2) {
          color = `rgb(${codes[i + 2] | 0},${codes[i + 3] | 0},${codes[i + 4] | 0})`;
          i += 4;
        }
        if (c === 38) { st.fg = name; st.fgRgb = color; } else { st.bg = name; st.bgRgb = color; }
      }
    }
  }
  push(text.slice(last));
  return frag;
}

function stripAnsi(text) {
  return String(text).replace(/\x1b\[[0-9;:?]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g, "");
}

// Emulate carriage returns (progress bars) and backspaces in stream text.
function applyControlChars(text) {
  if (!/[\r\b]/.test(text)) return text;
  return text.replace(/\r\n/g, "\n").split("\n").map((line) => {
    if (line.includes("\r")) {
      const parts = line.split("\r").filter((p, i, a) => p !== "" || i === a.length - 1);
      let out = "";
      for (const p of parts) out = p + out.slice(p.length);
      line = out;
    }
    while (/[^\b\n]\b/.test(line)) line = line.replace(/[^\b\n]\b/g, "");
    return line.replace(/\b/g, "");
  }).join("\n");
}

// ---------------------------------------------------------------------------
// Output rendering

const FRAME_CSS = "html,body{margin:0;padding:0;background:transparent}" +
  "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2329;padding:2px 0;overflow-x:auto}" +
  "table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:2px 6px}img{max-width:100%}";
// The frame (static/frame.js at FRAME_URL, served with its own policy) asks for its
// HTML once it is ready; the HTML keeps the worksheet as its base for relative URLs.
const frameHtml = new WeakMap();

function renderHtmlFrame(html) {
  const iframe = h("iframe", {
    class: "output-html",
    sandbox: "allow-scripts",
    referrerpolicy: "no-referrer",
    title: "HTML output",
    loading: "eager",
    src: FRAME_URL,
  });
  frameHtml.set(iframe, `<!doctype html><html><head><meta charset="utf-8"><base href="${escapeHtml(WS_URL)}">` +
    `<style>${FRAME_CSS}</style></head><body>${html}</body></html>`);
  return iframe;
}

// HTML outputs of a worksheet this viewer does not vouch for: no script at all, the
// sanitized HTML in the page (as Jupyter shows untrusted notebooks).
function renderUntrustedHtml(html) {
  const div = h("div", { class: "output-html-inline" });
  div.append(sanitizeHtml(html));
  if (sanitizerRemovedScript()) {
    div.append(h("p", { class: "hint untrusted-note", text: CAN_EDIT && !TRUSTED && root.querySelector("[data-action=trust]")
      ? "Scripts of this output were not run: trust the worksheet to run them."
      : "Scripts of this output were not run (you did not write this worksheet)." }));
  }
  return div;
}

window.addEventListener("message", (ev) => {
  const data = ev.data;
  if (!data || typeof data !== "object") return;
  for (const frame of document.querySelectorAll("iframe.output-html")) {
    if (frame.contentWindow !== ev.source) continue;
    if (data.sagenbFrameReady === true && frameHtml.has(frame)) {
      const html = frameHtml.get(frame);
      frameHtml.delete(frame); // once: a frame that navigated away gets nothing
      ev.source.postMessage({ sagenbFrameHtml: html }, "*");
    } else if (typeof data.sagenbFrameHeight === "number") {
      const px = Math.max(16, Math.min(20000, Math.ceil(data.sagenbFrameHeight)));
      frame.style.height = `${px}px`;
    }
    break;
  }
});

// Sage's old-style HTML wrappers around math: treat them as LaTeX.
function htmlAsLatex(html) {
  const m = /^\s*(?:<html>)?\s*(?:<script type="math\/tex(; *mode=display)?">([\s\S]*?)<\/script>|(\\\[[\s\S]*\\\]|\$\$[\s\S]*\$\$))\s*(?:<\/html>)?\s*$/.exec(html);
  if (!m) return null;
  return m[2] !== undefined ? `\\[${m[2]}\\]` : m[3];
}

const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/svg+xml"];

// The name of the file an output stands for (legacy worksheets: a file the cell
// wrote, e.g. "sage0-size500.jmol"), when the output has no image of it.
function outputFileName(output) {
  const data = output.data || {};
  const meta = output.metadata && output.metadata.sagenb;
  const name = meta && typeof meta.file === "string" ? meta.file : "";
  if (!name || IMAGE_TYPES.some((t) => data[t] !== undefined)) return null;
  return name;
}

function renderFileOutput(output, name, cell) {
  const wrap = h("div", { class: `output-item output-file output-${output.output_type}`, dataset: { outputType: output.output_type } });
  const base = name.split("/").pop() || name;
  const files = cell && Array.isArray(cell.data.files) ? cell.data.files : null;
  if (!cell || cell.id === null || (files && !files.includes(name))) {
    wrap.append(h("span", { class: "output-file-name missing", title: "This file was not kept with the output.", text: name }));
    return wrap;
  }
  wrap.append(h("a", {
    class: "output-file-link",
    href: cellFileUrl(cell.id, name),
    download: base,
    title: `Download ${name}`,
    text: name,
  }));
  return wrap;
}

// Help pages (`foo?`, `foo??`): IPython's pager text with ANSI colours, shown as
// text; a long one starts folded.
const PAGE_FOLD_LINES = 24;

function isPageOutput(output) {
  const meta = output && output.metadata && output.metadata.sagenb;
  return !!(meta && meta.page);
}

function renderPageOutput(output) {
  const data = output.data || {};
  let text = data["text/plain"] !== undefined ? joinText(data["text/plain"]) : "";
  if (!text && data["text/html"] !== undefined) {
    // only HTML: its text, never a frame
    text = new DOMParser().parseFromString(joinText(data["text/html"]), "text/html").body.textContent || "";
  }
  const pre = h("pre", { class: "output-page-text" });
  pre.append(ansiFragment(text.replace(/\s+$/, "")));
  const wrap = h("div", { class: "output-item output-page", dataset: { outputType: output.output_type } }, pre);
  const lines = text.split("\n").length;
  if (lines > PAGE_FOLD_LINES) {
    wrap.classList.add("folded");
    const toggle = h("button", { type: "button", class: "output-page-toggle", "aria-expanded": "false" },
      `Show all (${lines} lines)`);
    toggle.addEventListener("click", () => {
      const folded = wrap.classList.toggle("folded");
      toggle.textContent = folded ? `Show all (${lines} lines)` : "Show less";
      toggle.setAttribute("aria-expanded", folded ? "false" : "true");
    });
    wrap.append(toggle);
  }
  return wrap;
}

// Legacy outputs refer to files of their cell as cell://name: an image the cell keeps
// inline becomes a data: URL (the HTML frame cannot send the session cookie), any other
// file the cell's file URL.
function resolveCellUrls(html, cell) {
  if (!cell || !html.includes("cell://")) return html;
  const images = new Map();
  for (const out of (cell.data && cell.data.outputs) || []) {
    const name = out.metadata && out.metadata.sagenb && out.metadata.sagenb.file;
    const d = out.data || {};
    for (const mime of ["image/png", "image/jpeg", "image/gif"]) {
      if (name && d[mime] !== undefined) images.set(name, `data:${mime};base64,${joinText(d[mime]).replace(/\s+/g, "")}`);
    }
  }
  return html.replace(/cell:\/\/([^"'<>\s]+)/g, (whole, name) =>
    images.get(name) || (cell.id !== null ? cellFileUrl(cell.id, name) : whole));
}

function renderMimeBundle(output, cell) {
  const data = output.data || {};
  if (cell && widgets.isWidgetView(output)) return widgets.renderWidgetView(output, cell);
  if (isPageOutput(output)) return renderPageOutput(output);
  const fileName = outputFileName(output);
  if (fileName !== null) return renderFileOutput(output, fileName, cell);
  const wrap = h("div", { class: `output-item output-${output.output_type}`, dataset: { outputType: output.output_type } });
  const preferPlain = output.output_type === "execute_result" && worksheet.typeset === false && data["text/plain"] !== undefined;
  const imgAlt = joinText(data["text/plain"]).slice(0, 200) || "output image";
  if (data["image/png"] !== undefined) {
    wrap.append(h("img", { class: "output-image", alt: imgAlt, src: `data:image/png;base64,${joinText(data["image/png"]).replace(/\s+/g, "")}` }));
  } else if (data["image/jpeg"] !== undefined) {
    wrap.append(h("img", { class: "output-image", alt: imgAlt, src: `data:image/jpeg;base64,${joinText(data["image/jpeg"]).replace(/\s+/g, "")}` }));
  } else if (data["image/gif"] !== undefined) {
    wrap.append(h("img", { class: "output-image", alt: imgAlt, src: `data:image/gif;base64,${joinText(data["image/gif"]).replace(/\s+/g, "")}` }));
  } else if (data["image/svg+xml"] !== undefined) {
    wrap.append(h("img", { class: "output-image output-svg", alt: imgAlt, src: `data:image/svg+xml;base64,${b64encodeUtf8(joinText(data["image/svg+xml"]))}` }));
  } else if (data["text/latex"] !== undefined && !preferPlain) {
    wrap.append(renderLatex(joinText(data["text/latex"])));
  } else if (data["text/html"] !== undefined && !preferPlain) {
    const html = resolveCellUrls(joinText(data["text/html"]), cell);
    const tex = htmlAsLatex(html);
    wrap.append(tex !== null ? renderLatex(tex) : TRUSTED ? renderHtmlFrame(html) : renderUntrustedHtml(html));
  } else if (data["text/plain"] !== undefined) {
    const pre = h("pre", { class: "output-text" });
    pre.append(ansiFragment(joinText(data["text/plain"])));
    wrap.append(pre);
  } else if (data["text/markdown"] !== undefined) {
    const div = h("div", { class: "output-markdown" });
    div.append(sanitizeHtml(renderMarkdown(joinText(data["text/markdown"]))));
    wrap.append(div);
    typeset(div);
  } else {
    wrap.append(h("pre", { class: "output-text output-unknown", text: `[${Object.keys(data).join(", ") || "empty output"}]` }));
  }
  return wrap;
}

function renderError(output) {
  const tb = (output.traceback || []).map(String).join("\n");
  const evalue = stripAnsi(output.evalue || "");
  const line = h("div", { class: "error-line" },
    h("span", { class: "ename", text: stripAnsi(output.ename || "Error") }),
    evalue ? ": " : null,
    h("span", { class: "evalue", text: evalue }));
  const wrap = h("div", { class: "output-item output-error", dataset: { outputType: "error" } }, line);
  if (tb) {
    const pre = h("pre", { class: "traceback-text" });
    pre.append(ansiFragment(tb));
    wrap.append(h("details", { class: "traceback" }, h("summary", { text: "Traceback" }), pre));
  }
  return wrap;
}

// The server cuts long output with a marker naming the file of the whole text.
const FULL_OUTPUT = /the whole output: (cells\/\d+\/output\.txt)/;

function renderStreamInto(pre, text) {
  const match = FULL_OUTPUT.exec(text);
  if (!match) {
    pre.replaceChildren(ansiFragment(applyControlChars(text)));
    return;
  }
  const before = text.slice(0, match.index + "the whole output: ".length);
  const after = text.slice(match.index + match[0].length);
  const link = h("a", { href: new URL(match[1], WS_URL).href, class: "full-output", download: "" },
    match[1]);
  pre.replaceChildren(ansiFragment(applyControlChars(before)), link,
    ansiFragment(applyControlChars(after)));
}

// Merge consecutive stream chunks of the same name.
function mergeStreams(outputs) {
  const items = [];
  for (const out of outputs || []) {
    const prev = items[items.length - 1];
    if (out.output_type === "stream") {
      const text = joinText(out.text);
      if (prev && prev.output_type === "stream" && prev.name === out.name) prev.text += text;
      else items.push({ output_type: "stream", name: out.name || "stdout", text });
    } else {
      items.push(out);
    }
  }
  return items;
}

class OutputArea {
  constructor(el, cell = null) {
    this.el = el;
    this.cell = cell; // for the URLs of the files the cell wrote
    this.items = []; // {key, node, stream?: {name, text, pre}}
  }

  render(outputs) {
    const merged = mergeStreams(outputs);
    const keys = merged.map((o) => JSON.stringify(o));
    let i = 0;
    for (; i < merged.length && i < this.items.length; i++) {
      const old = this.items[i];
      if (old.key === keys[i]) continue;
      const item = merged[i];
      if (old.stream && item.output_type === "stream" && item.name === old.stream.name) {
        renderStreamInto(old.stream.pre, item.text);
        old.stream.text = item.text;
        old.key = keys[i];
        continue;
      }
      break;
    }
    for (const old of this.items.splice(i)) {
      typesetClear(old.node);
      old.node.remove();
    }
    for (; i < merged.length; i++) {
      const item = merged[i];
      let node;
      let stream = null;
      if (item.output_type === "stream") {
        const pre = h("pre", { class: `output-stream ${item.name === "stderr" ? "stderr" : "stdout"}` });
        renderStreamInto(pre, item.text);
        node = h("div", { class: "output-item output-stream-item", dataset: { outputType: "stream", name: item.name } }, pre);
        stream = { name: item.name, text: item.text, pre };
      } else if (item.output_type === "error") {
        node = renderError(item);
      } else if (item.output_type === "execute_result" || item.output_type === "display_data") {
        node = renderMimeBundle(item, this.cell);
      } else {
        node = h("pre", { class: "output-item output-text", text: JSON.stringify(item) });
      }
      this.el.append(node);
      this.items.push({ key: keys[i], node, stream });
    }
    this.el.classList.toggle("empty", merged.length === 0);
  }

  rerender(outputs) {
    for (const old of this.items.splice(0)) {
      typesetClear(old.node);
      old.node.remove();
    }
    this.render(outputs);
  }
}

// ---------------------------------------------------------------------------
// Cells

const cells = new Map(); // id -> Cell
let activationSeq = 0;

function formatSeconds(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  if (s < 60) return `${Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

function button(action, label, title) {
  return h("button", { type: "button", class: `btn-cell btn-${action}`, dataset: { action }, title, "aria-label": title }, label);
}

class Cell {
  constructor(data) {
    this.id = data.id;
    this.data = data;
    this.savedInput = data.input ?? "";
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

  toolbar(extra = []) {
    if (!CAN_EDIT) return null;
    return h("div", { class: "cell-toolbar", role: "toolbar" },
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
    if (ACTIVE.has(this.status)) poller.watch(this);
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
    if (!CAN_EDIT || this.removed) return this.saveChain;
    this.saveChain = this.saveChain.then(async () => {
      await this.ready;
      const input = this.getInput();
      if (input === this.savedInput || this.removed) return;
      await api("PATCH", `cells/${this.id}`, { input });
      this.savedInput = input;
      this.el.classList.toggle("dirty", this.isDirty());
    }).catch((err) => {
      reportError(err);
    });
    return this.saveChain;
  }

  saveOnUnload() {
    if (!CAN_EDIT || this.removed || this.id === null || !this.isDirty()) return;
    api("PATCH", `cells/${this.id}`, { input: this.getInput() }, { keepalive: true }).catch(() => {});
  }

  destroy() {
    this.removed = true;
    this.cancelSave();
    typesetClear(this.el);
    this.el.remove();
  }

  focus() {}
}

// Jupyter's completion types -> CodeMirror's icon types.
const COMPLETION_TYPES = {
  function: "function", builtin_function_or_method: "function", method: "method",
  class: "class", type: "type", module: "namespace", keyword: "keyword",
  instance: "variable", statement: "variable", param: "variable", property: "property",
  path: "text", magic: "keyword",
};
const NAME_BEFORE_CURSOR = /[\p{L}\p{N}_.]$/u;
const NAME_CHARS = /^[\p{L}\p{N}_.]*$/u;

// Completion and help questions go to the worksheet's Sage process, which the first
// one starts: the server answers 409 when no answer came within its timeout (a long
// start, or cells running).  Until a first answer came, a 409 is asked again.
let workerAnswered = false;
async function askWorker(path, body, onWait) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await api("POST", path, body);
      workerAnswered = true;
      return res;
    } catch (err) {
      if (err.status !== 409 || workerAnswered || attempt >= 2) throw err;
      if (onWait) onWait();
    }
  }
}

// The tooltip of Shift-Tab (one at a time in the page).
let inspectTip = null; // {el, cell}

function closeInspect() {
  if (!inspectTip) return false;
  inspectTip.el.remove();
  inspectTip = null;
  return true;
}

document.addEventListener("mousedown", (ev) => {
  if (inspectTip && !inspectTip.el.contains(ev.target)) closeInspect();
});

function showInspect(cell, view, pos, text, level) {
  closeInspect();
  const pre = h("pre", { class: "inspect-text" });
  pre.append(ansiFragment(String(text).replace(/\s+$/, "")));
  const close = h("button", { type: "button", class: "inspect-close", title: "Close (Escape)", "aria-label": "Close" }, "\u00d7");
  const source = level === 0
    ? h("button", { type: "button", class: "inspect-source", title: "Show the source (as foo?? does)" }, "Source")
    : null;
  const el = h("div", { class: "inspect-tooltip", role: "dialog", "aria-label": level ? "Source" : "Documentation", dataset: { level: String(level) } },
    h("div", { class: "inspect-head" },
      h("span", { class: "inspect-title", text: level ? "Source" : "Documentation" }),
      h("span", { class: "hint", text: "Escape closes" }),
      source, close),
    pre);
  close.addEventListener("click", () => {
    closeInspect();
    view.focus();
  });
  if (source) source.addEventListener("click", () => cell.inspect(view, 1, pos));
  document.body.append(el);
  inspectTip = { el, cell };
  const at = view.coordsAtPos(pos) || view.contentDOM.getBoundingClientRect();
  const width = el.offsetWidth;
  const left = Math.max(8, Math.min(at.left, document.documentElement.clientWidth - width - 8));
  el.style.left = `${left + window.scrollX}px`;
  el.style.top = `${at.bottom + window.scrollY + 4}px`;
}

class ComputeCell extends Cell {
  constructor(data) {
    super(data);
    this.prompt = h("div", { class: "prompt", title: "Execution count" });
    this.editorHost = h("div", { class: "cell-editor" });
    this.statusEl = h("span", { class: "cell-status", "aria-live": "polite" });
    const runBtn = CAN_EDIT ? button("evaluate", "\u25b6 Run", "Evaluate (Shift-Enter)") : null;
    this.badgesEl = h("span", { class: "cell-badges" });
    this.noteEl = h("span", { class: "cell-note", role: "status", hidden: true });
    this.noteTimer = null;
    this.hideToggle = h("button", { type: "button", class: "btn-cell btn-hide", hidden: true });
    this.revealBar = h("button", { type: "button", class: "cell-reveal", hidden: true });
    this.outputEl = h("div", { class: "output empty", "aria-live": "polite" });
    this.outputs = new OutputArea(this.outputEl, this);
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
        if (inspectTip && inspectTip.cell === cell) closeInspect();
      }),
    ];
    if (!CAN_EDIT) {
      ext.push(EditorState.readOnly.of(true), EditorView.editable.of(false));
      ext.push(keymap.of(defaultKeymap));
      return ext;
    }
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
            if (closeInspect()) return true;
            if (completing(view)) return closeCompletion(view);
            interrupt();
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
    if (focus && CAN_EDIT) this.view.focus();
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
    const res = await askWorker("complete", { code, cursor_pos: toCodePointOffset(code, pos) },
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
      res = await askWorker("inspect", { code, cursor_pos: toCodePointOffset(code, pos), detail_level: level },
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
    showInspect(this, view, pos, text, level);
  }

  // --- input() --------------------------------------------------------------------------

  renderStdin() {
    const req = this.data.input_request;
    const version = typeof this.data.version === "number" ? this.data.version : 0;
    const show = CAN_EDIT && this.id !== null && req && typeof req === "object" &&
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
      await api("POST", `cells/${this.id}/stdin`, { value });
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
    if (!CAN_EDIT || this.removed) return;
    const input = this.getInput();
    this.cancelSave();
    if (inspectTip && inspectTip.cell === this) closeInspect();
    closeCompletion(this.view);
    // Optimistic feedback until the server answers.
    this.data = { ...this.data, status: "queued", started: null, input_request: null };
    this.stdinError = "";
    this.el.dataset.status = "queued";
    this.seq = ++activationSeq;
    this.refresh();
    hideMessageIfError();
    if (insertBelow) addCell({ type: "compute", after: this, focus: true });
    try {
      await this.ready;
      await this.saveChain; // a PATCH in flight must not overwrite what we send now
      const cell = await api("POST", `cells/${this.id}/evaluate`, { input, wait: 2 });
      this.savedInput = input;
      this.el.classList.toggle("dirty", this.isDirty());
      this.update(cell);
    } catch (err) {
      if (this.removed) return;
      reportError(err);
      // Find out the real state.
      try {
        this.update(await api("GET", `cells/${this.id}`), { force: true });
      } catch {
        /* ignore */
      }
    }
  }

  async clear() {
    try {
      await this.ready;
      this.update(await api("POST", `cells/${this.id}/clear`, {}));
    } catch (err) {
      reportError(err);
    }
  }

  destroy() {
    if (inspectTip && inspectTip.cell === this) closeInspect();
    clearTimeout(this.noteTimer);
    super.destroy();
    this.view.destroy();
  }
}

class TextCell extends Cell {
  constructor(data) {
    super(data);
    this.rendered = h("div", { class: "text-rendered", title: CAN_EDIT ? "Double-click to edit" : null });
    this.textarea = h("textarea", { class: "text-source", rows: "4", spellcheck: "true", "aria-label": "Text cell source" });
    this.editorEl = !CAN_EDIT ? null : h("div", { class: "text-editor", hidden: true },
      this.textarea,
      h("div", { class: "text-editor-buttons" },
        h("button", { type: "button", class: "btn btn-primary", dataset: { action: "save-text" } }, "Save"),
        h("button", { type: "button", class: "btn", dataset: { action: "cancel-text" } }, "Cancel"),
        this.hintEl = h("span", { class: "hint" })));
    this.editing = false;
    this.el.append(
      h("div", { class: "cell-head" }, CAN_EDIT ? button("edit", "\u270e Edit", "Edit text cell") : null, this.toolbar()),
      this.rendered,
      ...(this.editorEl ? [this.editorEl] : []),
    );
    if (CAN_EDIT) {
      this.rendered.addEventListener("dblclick", () => this.edit());
      this.textarea.addEventListener("input", () => {
        this.autosize();
        this.el.classList.toggle("dirty", this.isDirty());
      });
      this.textarea.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" && (ev.shiftKey || ev.ctrlKey || ev.metaKey)) {
          ev.preventDefault();
          this.finishEdit(true);
        } else if (ev.key === "Escape") {
          ev.preventDefault();
          this.finishEdit(false);
        }
      });
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
    if (!CAN_EDIT) return;
    if (!this.editing) this.edit();
    this.textarea.value = text;
    this.autosize();
  }

  renderText() {
    typesetClear(this.rendered);
    const src = this.savedInput;
    if (!src.trim()) {
      this.rendered.replaceChildren(h("p", { class: "placeholder", text: CAN_EDIT ? "Empty text cell \u2014 double-click to edit." : "" }));
      return;
    }
    const html = this.format === "html" ? src : renderMarkdown(src);
    this.rendered.classList.toggle("format-html", this.format === "html");
    this.rendered.replaceChildren(sanitizeHtml(html));
    if (/\$|\\\(|\\\[|\\begin\{/.test(src)) typeset(this.rendered);
  }

  autosize() {
    this.textarea.style.height = "auto";
    this.textarea.style.height = `${Math.max(80, this.textarea.scrollHeight + 4)}px`;
  }

  edit() {
    if (!CAN_EDIT || this.editing) return;
    this.editing = true;
    this.el.classList.add("editing");
    this.textarea.value = this.savedInput;
    this.hintEl.textContent = this.format === "html"
      ? "HTML, math in $\u2026$ or $$\u2026$$. Shift-Enter saves, Escape cancels."
      : "Markdown/HTML, math in $\u2026$ or $$\u2026$$. Shift-Enter saves, Escape cancels.";
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

  focus() {
    this.edit();
  }

  refresh() {
    // Text cells have no outputs; input changes made elsewhere are shown when not editing.
    if (!this.editing && typeof this.data.input === "string" && this.data.input !== this.savedInput) {
      this.savedInput = this.data.input;
      this.renderText();
    }
  }
}

function makeCell(data) {
  const cell = data.type === "text" ? new TextCell(data) : new ComputeCell(data);
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

// ---------------------------------------------------------------------------
// Long polling of queued/running cells.
// At most MAX_POLLS requests in flight overall (browsers only open ~6
// connections per host) and at most one per cell; running cells first, then
// in the order they were queued.

const MAX_POLLS = 2;
const poller = {
  watched: new Set(),
  inflight: new Set(),
  failures: 0,

  watch(cell) {
    if (!cell.seq) cell.seq = ++activationSeq;
    this.watched.add(cell);
    this.pump();
  },

  pump() {
    while (this.inflight.size < MAX_POLLS) {
      let best = null;
      for (const cell of this.watched) {
        if (cell.removed || !ACTIVE.has(cell.status)) {
          if (!this.inflight.has(cell)) this.watched.delete(cell);
          continue;
        }
        if (this.inflight.has(cell)) continue;
        const rank = (c) => (c.status === "running" ? 0 : 1);
        if (!best || rank(cell) < rank(best) || (rank(cell) === rank(best) && cell.seq < best.seq)) best = cell;
      }
      if (!best) return;
      this.poll(best);
    }
  },

  async poll(cell) {
    this.inflight.add(cell);
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 30000);
    const since = cell.data.version ?? 0;
    const t0 = Date.now();
    try {
      const data = await api("GET", `cells/${cell.id}?since=${encodeURIComponent(since)}&wait=5`, null, { signal: ctrl.signal });
      if (this.failures) {
        this.failures = 0;
        if (messageEl.dataset.kind === "connection") hideMessage();
      }
      const unchanged = data.version === since && data.status === cell.status;
      cell.update(data);
      // Nothing happened: let other queued cells have a turn.
      if (unchanged && cell.status === "queued") cell.seq = ++activationSeq;
      // A server that answers at once without news must not be hammered.
      if (unchanged && Date.now() - t0 < 1000) await sleep(1000 - (Date.now() - t0));
    } catch (err) {
      if (err.status === 404) {
        removeCellLocally(cell.id);
      } else {
        this.failures++;
        if (err.name !== "AbortError" && this.failures >= 2) {
          showMessage("Lost connection to the server, retrying\u2026", "connection");
        }
        await sleep(Math.min(10000, 500 * 2 ** Math.min(this.failures, 5)));
      }
    } finally {
      clearTimeout(timer);
      this.inflight.delete(cell);
      if (cell.removed || !ACTIVE.has(cell.status)) this.watched.delete(cell);
      this.pump();
    }
  },
};

setInterval(() => {
  for (const cell of cells.values()) {
    if (cell instanceof ComputeCell && ACTIVE.has(cell.status)) cell.tick();
  }
}, 1000);

// ---------------------------------------------------------------------------
// Worksheet-level actions

function hideMessageIfError() {
  if (!messageEl.hidden && messageEl.dataset.kind === "error") hideMessage();
}

// `after`/`before`: a Cell or a cell id.
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
    const res = await api("POST", "cells", body);
    const data = res.cell || { id: res.id, type, input, status: "new", outputs: [], version: 0 };
    cell.id = data.id;
    cell.data = { ...data, input: cell.data.input };
    cell.el.dataset.cellId = String(data.id);
    cell.el.classList.remove("pending");
    cells.set(data.id, cell);
    return data.id;
  })();
  cell.ready.catch((err) => {
    reportError(err);
    cell.destroy();
    updateEmptyState();
  });
  return cell;
}

function removeCellLocally(id) {
  const cell = cells.get(id);
  if (!cell) return;
  cells.delete(id);
  poller.watched.delete(cell);
  cell.destroy();
  updateEmptyState();
}

async function deleteCell(cell) {
  try {
    await cell.ready;
    await api("DELETE", `cells/${cell.id}`);
    const next = cell.el.nextElementSibling || cell.el.previousElementSibling;
    removeCellLocally(cell.id);
    if (next && next.cell instanceof ComputeCell) next.cell.focus();
  } catch (err) {
    reportError(err);
  }
}

function applyOrder(order) {
  const focused = cellOf(document.activeElement);
  let prev = null;
  for (const id of order) {
    const cell = cells.get(id);
    if (!cell) continue;
    const expected = prev ? prev.nextElementSibling : cellsEl.firstElementChild;
    if (expected !== cell.el) {
      if (prev) prev.after(cell.el);
      else cellsEl.prepend(cell.el);
    }
    prev = cell.el;
  }
  if (focused && !focused.el.contains(document.activeElement)) focused.focus();
}

async function moveCell(cell, direction) {
  try {
    await cell.ready;
    const res = await api("POST", `cells/${cell.id}/move`, { direction });
    if (Array.isArray(res.order)) applyOrder(res.order);
    cell.el.scrollIntoView({ block: "nearest" });
  } catch (err) {
    reportError(err);
  }
}

async function saveAll() {
  await Promise.all(allCells().map((c) => (c.isDirty() ? c.save() : c.ready.then(() => c.saveChain))));
}

async function evaluateAll() {
  hideMessageIfError();
  try {
    await saveAll();
    const res = await api("POST", "evaluate_all", {});
    for (const id of res.queued || []) {
      const cell = cells.get(id);
      if (!cell || !(cell instanceof ComputeCell)) continue;
      if (!ACTIVE.has(cell.status)) {
        cell.data = { ...cell.data, status: "queued", started: null };
        cell.el.dataset.status = "queued";
        cell.refresh();
      }
      cell.seq = ++activationSeq;
      poller.watch(cell);
    }
  } catch (err) {
    reportError(err);
  }
}

async function interrupt() {
  try {
    await api("POST", "interrupt", {});
    showMessage("Interrupt sent.", "info");
  } catch (err) {
    reportError(err);
  }
}

// Re-read the whole worksheet and apply the cell states.
async function refreshAll() {
  const data = await api("GET", "./");
  applyWorksheetMeta(data);
  renderDataFiles(data.data_files);
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
  for (const cell of cells.values()) if (ACTIVE.has(cell.status)) poller.watch(cell);
  updateEmptyState();
}

async function restart() {
  try {
    await api("POST", "restart", {});
    showMessage("Worker restarted.", "info");
    await refreshAll();
  } catch (err) {
    reportError(err);
  }
}

// The owner vouches for the worksheet: the page is drawn again with scripts of outputs.
async function trustWorksheet() {
  try {
    await api("POST", "trust", { trusted: true });
    location.reload();
  } catch (err) {
    reportError(err);
  }
}

async function clearAll() {
  try {
    await api("POST", "clear_outputs", {});
    await refreshAll();
  } catch (err) {
    reportError(err);
  }
}

const nameEl = document.querySelector("[data-role=worksheet-name]");
const typesetBox = document.querySelector("input[name=typeset]");
const systemSelect = document.querySelector("select[name=system]");

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
    applyWorksheetMeta(await api("PATCH", "./", { name: trimmed }));
  } catch (err) {
    reportError(err);
  }
}

async function setTypeset(value) {
  try {
    const res = await api("PATCH", "./", { typeset: value });
    applyWorksheetMeta({ ...res, typeset: typeof res.typeset === "boolean" ? res.typeset : value });
  } catch (err) {
    if (typesetBox) typesetBox.checked = !value;
    reportError(err);
  }
}

async function setSystem(value) {
  const previous = worksheet.system || "sage";
  try {
    applyWorksheetMeta(await api("PATCH", "./", { system: value }));
  } catch (err) {
    showSystem(previous);
    reportError(err);
  }
}

// The "Data files" panel: the worksheet's files as links; those who may edit the
// worksheet upload (with a progress bar), create, edit, rename and delete them.
const dataFilesEl = document.getElementById("data-files");
const dataRole = (name) => (dataFilesEl ? dataFilesEl.querySelector(`[data-role=${name}]`) : null);
const DATA_MANAGE = !!(dataFilesEl && CAN_EDIT && dataRole("data-upload-input"));
// Files not offered for editing in the page (the editor is for text).
const BINARY_FILE = /\.(png|jpe?g|gif|bmp|webp|ico|tiff?|pdf|ps|eps|dvi|zip|gz|tgz|bz2|xz|7z|tar|rar|sobj|pickle|pkl|sws|ipynb\.zip|npy|npz|xlsx?|docx?|odt|ods|odp|pptx?|mp3|mp4|m4a|wav|ogg|flac|webm|avi|mov|mkv|so|o|a|dylib|pyc|whl|jar|class|exe|dll|bin|h5|hdf5|mat|db|sqlite3?)$/i;
const EDIT_MAX_BYTES = 2 * 2 ** 20;

let dataFiles = [];
let dataEditor = null; // {name, original} while a file is open in the editor
let dataUpload = null; // the XMLHttpRequest of the upload under way

function dataFileUrl(name, tail = "") {
  return new URL(`data/${encodeURIComponent(name)}${tail}`, WS_URL).href;
}

function isEditable(f) {
  return !BINARY_FILE.test(f.name) && !(typeof f.size === "number" && f.size > EDIT_MAX_BYTES);
}

function dataError(message, ...actions) {
  const el = dataRole("data-files-error");
  if (!el) {
    if (message) showMessage(message, "error");
    return;
  }
  if (!message) {
    el.replaceChildren();
    return;
  }
  el.replaceChildren(h("span", { class: "data-error-text", text: message }), ...actions);
  if (dataFilesEl) dataFilesEl.open = true;
}

function dataStatus(text) {
  const el = dataRole("data-upload-status");
  if (el) el.textContent = text || "";
}

function renderDataFiles(files) {
  if (!dataFilesEl || !Array.isArray(files)) return;
  dataFiles = files;
  const list = dataRole("data-file-list");
  const count = dataRole("data-files-count");
  const empty = dataRole("data-files-empty");
  const sorted = [...files].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  list.replaceChildren(...sorted.map((f) => {
    const size = formatBytes(f.size);
    const href = new URL(f.url || dataFileUrl(f.name), WS_URL).href;
    const li = h("li", { class: "data-file", dataset: { name: f.name } },
      h("a", { href, target: "_blank", rel: "noopener", class: "data-file-link", text: f.name, title: `Open ${f.name}` }),
      size ? h("span", { class: "data-file-size", text: size }) : null);
    if (DATA_MANAGE) {
      const act = (action, label, title) => h("button", {
        type: "button", class: "btn-cell data-file-btn", dataset: { fileAction: action, name: f.name }, title,
      }, label);
      li.append(h("span", { class: "data-file-actions" },
        isEditable(f) ? act("edit", "Edit", `Edit ${f.name} in the page`) : null,
        act("rename", "Rename", `Rename ${f.name}`),
        h("a", { class: "btn-cell data-file-btn data-file-download", href, download: f.name, title: `Download ${f.name}` }, "Download"),
        act("delete", "Delete", `Delete ${f.name}`)));
    }
    return li;
  }));
  count.textContent = `(${files.length})`;
  if (empty) empty.hidden = files.length > 0;
  // Those who may only look see the panel when there is something to see.
  dataFilesEl.hidden = !DATA_MANAGE && files.length === 0;
  if (dataEditor && !files.some((f) => f.name === dataEditor.name)) closeDataEditor(true);
}

async function reloadDataFiles() {
  const res = await api("GET", "data");
  renderDataFiles(res.files || []);
}

// One file through XMLHttpRequest (for its upload progress); multipart field "file".
function uploadOne(file, replace, onProgress) {
  return new Promise((resolve, reject) => {
    const body = new FormData();
    body.append("file", file, file.name);
    if (replace) body.append("replace", "1");
    const xhr = new XMLHttpRequest();
    dataUpload = xhr;
    xhr.open("POST", new URL("data", WS_URL).href);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      dataUpload = null;
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        answer = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && answer) {
        onProgress(1);
        resolve(answer);
      } else if (answer && typeof answer.error === "string") {
        reject(new ApiError(answer.error, xhr.status));
      } else if (xhr.status === 413) {
        reject(new ApiError("the file is too large for the server", 413));
      } else {
        reject(new ApiError(`${xhr.status} ${xhr.statusText || "error"}`, xhr.status));
      }
    });
    xhr.addEventListener("error", () => {
      dataUpload = null;
      reject(new ApiError("cannot reach the server (network error)", 0));
    });
    xhr.addEventListener("abort", () => {
      dataUpload = null;
      const err = new Error("Upload cancelled.");
      err.name = "AbortError";
      reject(err);
    });
    xhr.send(body);
  });
}

async function uploadDataFiles(fileList, replace) {
  const files = Array.from(fileList || []);
  if (!files.length || dataUpload) return;
  const box = dataRole("data-upload");
  const progress = dataRole("data-upload-progress");
  const input = dataRole("data-upload-input");
  const cancel = dataFilesEl.querySelector("[data-file-action=cancel-upload]");
  dataError("");
  dataFilesEl.open = true;
  dataFilesEl.classList.add("uploading");
  box.hidden = false;
  if (cancel) cancel.hidden = false;
  input.disabled = true;
  const done = [];
  try {
    for (const file of files) {
      progress.max = 100;
      progress.value = 0;
      progress.hidden = false;
      dataStatus(`Uploading ${file.name}\u2026`);
      try {
        await uploadOne(file, replace, (fraction) => {
          progress.value = Math.round(100 * fraction);
          dataStatus(`Uploading ${file.name}\u2026 ${Math.round(100 * fraction)}%`);
        });
        done.push(file.name);
      } catch (err) {
        if (err.name === "AbortError") {
          dataStatus("Upload cancelled.");
          return;
        }
        if (err.status === 409) {
          const again = h("button", { type: "button", class: "btn", dataset: { fileAction: "replace-upload" } }, `Replace ${file.name}`);
          again.addEventListener("click", () => uploadDataFiles([file], true));
          dataError(`A data file named \u201c${file.name}\u201d exists already.`, again);
        } else {
          dataError(`Could not upload ${file.name}: ${err.message}`);
        }
      }
    }
  } finally {
    dataFilesEl.classList.remove("uploading");
    progress.hidden = true;
    if (cancel) cancel.hidden = true;
    input.disabled = false;
    input.value = "";
    if (done.length) dataStatus(`Uploaded ${done.join(", ")}.`);
    else if (!dataRole("data-upload-status").textContent.startsWith("Upload cancelled")) dataStatus("");
    try {
      await reloadDataFiles();
    } catch (err) {
      dataError(`Could not list the data files: ${err.message}`);
    }
  }
}

async function createDataFile(name) {
  dataError("");
  try {
    const made = await api("POST", "data", { name });
    const form = dataRole("data-new-form");
    if (form) {
      form.reset();
      form.hidden = true;
    }
    await reloadDataFiles();
    await openDataEditor(made.name || name);
  } catch (err) {
    dataError(`Could not create \u201c${name}\u201d: ${err.message}`);
  }
}

async function openDataEditor(name) {
  const box = dataRole("data-file-editor");
  if (!box) return;
  if (dataEditor && dataEditor.name !== name && dataEditorDirty() &&
      !window.confirm(`Discard the changes to ${dataEditor.name}?`)) return;
  dataError("");
  const text = dataRole("data-editor-text");
  let content;
  try {
    const resp = await fetch(dataFileUrl(name), { credentials: "same-origin", cache: "no-store" });
    if (!resp.ok) throw new ApiError(`${resp.status} ${resp.statusText || "error"}`, resp.status);
    const bytes = await resp.arrayBuffer();
    try {
      content = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      content = null;
    }
    if (content === null || content.includes("\u0000")) {
      dataError(`${name} is not a text file (UTF-8): it cannot be edited here.`);
      return;
    }
  } catch (err) {
    dataError(`Could not open ${name}: ${err.message}`);
    return;
  }
  dataEditor = { name, original: content };
  dataRole("data-editor-name").textContent = name;
  dataRole("data-editor-status").textContent = "";
  text.value = content;
  box.hidden = false;
  dataFilesEl.open = true;
  for (const li of dataFilesEl.querySelectorAll(".data-file")) li.classList.toggle("editing", li.dataset.name === name);
  text.focus();
}

function dataEditorDirty() {
  const text = dataRole("data-editor-text");
  return !!(dataEditor && text && text.value !== dataEditor.original);
}

async function saveDataEditor() {
  if (!dataEditor) return;
  const { name } = dataEditor;
  const content = dataRole("data-editor-text").value;
  const status = dataRole("data-editor-status");
  status.textContent = "Saving\u2026";
  dataError("");
  try {
    await api("PUT", `data/${encodeURIComponent(name)}`, { content });
    if (dataEditor && dataEditor.name === name) dataEditor.original = content;
    status.textContent = "Saved.";
    await reloadDataFiles();
  } catch (err) {
    status.textContent = "";
    dataError(`Could not save ${name}: ${err.message}`);
  }
}

function closeDataEditor(force = false) {
  if (!dataEditor) return;
  if (!force && dataEditorDirty() && !window.confirm(`Discard the changes to ${dataEditor.name}?`)) return;
  dataEditor = null;
  dataRole("data-file-editor").hidden = true;
  dataRole("data-editor-text").value = "";
  for (const li of dataFilesEl.querySelectorAll(".data-file.editing")) li.classList.remove("editing");
}

function startRename(li) {
  const name = li.dataset.name;
  if (li.querySelector("form")) return;
  const input = h("input", { type: "text", name: "name", class: "data-rename-input", maxlength: "200", "aria-label": `New name for ${name}` });
  input.value = name;
  const form = h("form", { class: "data-rename-form" }, input,
    h("button", { type: "submit", class: "btn btn-primary" }, "Rename"),
    h("button", { type: "button", class: "btn", dataset: { fileAction: "rename-cancel" } }, "Cancel"));
  const shown = Array.from(li.children);
  for (const c of shown) c.hidden = true;
  li.append(form);
  const restore = () => {
    form.remove();
    for (const c of shown) c.hidden = false;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const wanted = input.value.trim();
    if (!wanted || wanted === name) {
      restore();
      return;
    }
    dataError("");
    try {
      await api("POST", `data/${encodeURIComponent(name)}/rename`, { name: wanted });
      if (dataEditor && dataEditor.name === name) {
        dataEditor.name = wanted;
        dataRole("data-editor-name").textContent = wanted;
      }
      await reloadDataFiles();
    } catch (err) {
      dataError(`Could not rename ${name}: ${err.message}`);
      input.focus();
    }
  });
  form.addEventListener("click", (ev) => {
    if (ev.target.closest("[data-file-action=rename-cancel]")) restore();
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      restore();
    }
  });
  input.focus();
  const dot = name.lastIndexOf(".");
  input.setSelectionRange(0, dot > 0 ? dot : name.length);
}

async function deleteDataFile(name) {
  if (!window.confirm(`Delete the data file ${name}?`)) return;
  dataError("");
  try {
    await api("DELETE", `data/${encodeURIComponent(name)}`);
    if (dataEditor && dataEditor.name === name) closeDataEditor(true);
    await reloadDataFiles();
  } catch (err) {
    dataError(`Could not delete ${name}: ${err.message}`);
  }
}

if (DATA_MANAGE) {
  const input = dataRole("data-upload-input");
  input.addEventListener("change", () => uploadDataFiles(input.files, dataRole("data-replace")?.checked));
  const newForm = dataRole("data-new-form");
  newForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = newForm.elements.name.value.trim();
    if (name) createDataFile(name);
  });
  newForm.elements.name.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      newForm.hidden = true;
    }
  });
  dataFilesEl.addEventListener("click", (ev) => {
    const btn = ev.target.closest("[data-file-action]");
    if (!btn || !dataFilesEl.contains(btn)) return;
    const li = btn.closest(".data-file");
    switch (btn.dataset.fileAction) {
      case "new":
        newForm.hidden = false;
        newForm.elements.name.focus();
        break;
      case "new-cancel":
        newForm.reset();
        newForm.hidden = true;
        break;
      case "cancel-upload":
        if (dataUpload) dataUpload.abort();
        break;
      case "edit": openDataEditor(btn.dataset.name); break;
      case "rename": if (li) startRename(li); break;
      case "delete": deleteDataFile(btn.dataset.name); break;
      case "editor-save": saveDataEditor(); break;
      case "editor-close": closeDataEditor(); break;
      default: return;
    }
    ev.preventDefault();
  });
  const text = dataRole("data-editor-text");
  text.addEventListener("keydown", (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && (ev.key === "s" || ev.key === "S")) {
      ev.preventDefault();
      saveDataEditor();
    }
  });
  text.addEventListener("input", () => {
    dataRole("data-editor-status").textContent = dataEditorDirty() ? "modified" : "";
  });
  // Files dropped on the panel are uploaded.
  dataFilesEl.addEventListener("dragover", (ev) => {
    if (!ev.dataTransfer || !Array.from(ev.dataTransfer.types || []).includes("Files")) return;
    ev.preventDefault();
    dataFilesEl.classList.add("dragging");
  });
  dataFilesEl.addEventListener("dragleave", (ev) => {
    if (!dataFilesEl.contains(ev.relatedTarget)) dataFilesEl.classList.remove("dragging");
  });
  dataFilesEl.addEventListener("drop", (ev) => {
    dataFilesEl.classList.remove("dragging");
    if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    uploadDataFiles(ev.dataTransfer.files, dataRole("data-replace")?.checked);
  });
  window.addEventListener("beforeunload", (ev) => {
    if (dataEditorDirty() || dataUpload) {
      ev.preventDefault();
      ev.returnValue = "";
    }
  });
}

function updateEmptyState() {
  root.classList.toggle("no-cells", cells.size === 0);
}

// ---------------------------------------------------------------------------
// Event wiring

root.addEventListener("click", (ev) => {
  // Page actions come from the page's own controls, never from rendered content.
  if (ev.target.closest(USER_CONTENT)) return;
  const btn = ev.target.closest("[data-action]");
  if (!btn || !root.contains(btn) || btn.disabled) return;
  const action = btn.dataset.action;
  const cell = cellOf(btn);
  switch (action) {
    case "evaluate-all": if (CAN_EDIT) evaluateAll(); break;
    case "interrupt": if (CAN_EDIT) interrupt(); break;
    case "restart": if (CAN_EDIT) restart(); break;
    case "clear-all": if (CAN_EDIT) clearAll(); break;
    case "rename": if (CAN_EDIT) rename(); break;
    case "trust": trustWorksheet(); break;
    case "append-compute": if (CAN_EDIT) addCell({ type: "compute" }); break;
    case "append-text": if (CAN_EDIT) addCell({ type: "text" }); break;
    default:
      if (!cell || !CAN_EDIT) return;
      switch (action) {
        case "evaluate": cell.evaluate(); break;
        case "delete": deleteCell(cell); break;
        case "move-up": moveCell(cell, "up"); break;
        case "move-down": moveCell(cell, "down"); break;
        case "add-below": addCell({ type: "compute", after: cell }); break;
        case "add-above": addCell({ type: "compute", before: cell }); break;
        case "add-text-below": addCell({ type: "text", after: cell }); break;
        case "edit": cell.edit(); break;
        case "save-text": cell.finishEdit(true); break;
        case "cancel-text": cell.finishEdit(false); break;
        case "clear": cell.clear(); break;
        default: return;
      }
  }
  ev.preventDefault();
});

// A download holds what the server has: edits not saved yet are saved first.
for (const link of document.querySelectorAll("[data-role=download-sws], [data-role=download-ipynb]")) {
  link.addEventListener("click", async (ev) => {
    if (!CAN_EDIT || link.dataset.saved === "true" || !allCells().some((c) => c.isDirty())) return;
    ev.preventDefault();
    await saveAll();
    link.dataset.saved = "true";
    try {
      link.click();
    } finally {
      delete link.dataset.saved;
    }
  });
}

if (nameEl && CAN_EDIT) {
  nameEl.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      rename();
    }
  });
}

if (typesetBox) {
  typesetBox.checked = worksheet.typeset !== false;
  typesetBox.disabled = !CAN_EDIT;
  typesetBox.addEventListener("change", () => setTypeset(typesetBox.checked));
}

if (systemSelect) {
  showSystem(worksheet.system || "sage");
  systemSelect.disabled = !CAN_EDIT;
  systemSelect.addEventListener("change", () => setSystem(systemSelect.value));
}

const flushOnLeave = () => {
  for (const cell of allCells()) cell.saveOnUnload();
};
window.addEventListener("pagehide", flushOnLeave);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") {
    for (const cell of allCells()) if (cell.isDirty()) cell.save();
  }
});

// While the page is open and seen, the worksheet's Sage process is not idle (the
// server stops idle processes); a hidden tab does not keep it.
setInterval(() => {
  if (document.visibilityState === "visible") api("GET", "alive").catch(() => {});
}, 60_000);

widgets.setup({
  api,
  sanitize: sanitizeHtml,
  typeset,
  outputArea: (node, cell) => {
    const area = new OutputArea(node, cell);
    return (outputs) => area.render(outputs);
  },
  error: (cell, err) => (cell.noteError ? cell.noteError(err, "Changing the control") : console.error(err)),
});

// ---------------------------------------------------------------------------
// Initial render

for (const data of worksheet.cells || []) cellsEl.append(makeCell(data).el);
renderDataFiles(worksheet.data_files);
updateEmptyState();
for (const cell of cells.values()) if (ACTIVE.has(cell.status)) poller.watch(cell);
root.classList.add("ready");
root.dataset.ready = "true";

// A small hook for debugging and browser tests.
window.sagenb = {
  cells,
  api,
  getInput: (id) => cells.get(id)?.getInput(),
  setInput: (id, text) => cells.get(id)?.setInput(text),
  evaluate: (id) => cells.get(id)?.evaluate(),
  refresh: refreshAll,
  renderMarkdown,
  sanitizeHtml,
};
