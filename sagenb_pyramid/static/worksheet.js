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
  highlightSelectionMatches, python,
} from "./vendor/codemirror.js";

const MATHJAX_URL = new URL("./vendor/mathjax/tex-svg-full.js", import.meta.url).href;

const root = document.getElementById("worksheet");
const cellsEl = document.getElementById("cells");
const messageEl = document.getElementById("message");
const CAN_EDIT = root.dataset.canEdit === "true";
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
      tex: {
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
// HTML sanitizer for text cells (DOMParser based, no dependencies)

const DROP_ELEMENTS = new Set([
  "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet",
  "base", "link", "meta", "template", "noscript", "form", "input", "button",
  "textarea", "select", "option", "portal", "set", "animate", "animatemotion",
  "animatetransform", "handler", "listener", "foreignobject",
]);
const URL_ATTRS = new Set([
  "href", "src", "action", "formaction", "xlink:href", "poster", "background",
  "cite", "longdesc", "lowsrc", "dynsrc", "data", "codebase", "srcset", "ping",
]);
const BAD_URL = /^(javascript|vbscript|data|file|blob):/i;
const SAFE_DATA_URL = /^data:image\/(png|jpe?g|gif|webp|bmp);/i;

function sanitizeHtml(html) {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  const walk = (node) => {
    for (const child of Array.from(node.childNodes)) {
      if (child.nodeType === Node.COMMENT_NODE || child.nodeType === Node.PROCESSING_INSTRUCTION_NODE) {
        child.remove();
        continue;
      }
      if (child.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = child.localName.toLowerCase();
      if (DROP_ELEMENTS.has(tag)) {
        child.remove();
        continue;
      }
      for (const attr of Array.from(child.attributes)) {
        const name = attr.name.toLowerCase();
        const value = attr.value.replace(/[\u0000-\u0020\u007f-\u00a0\s]+/g, "");
        if (name.startsWith("on") || name === "srcdoc" || name === "formaction" || name === "is") {
          child.removeAttribute(attr.name);
        } else if ((name === "id" || name === "name") && (document.getElementById(attr.value) || attr.value in window)) {
          // no clobbering of the page's own elements and globals
          child.removeAttribute(attr.name);
        } else if (URL_ATTRS.has(name) || name.endsWith(":href")) {
          if (BAD_URL.test(value) && !(name === "src" && tag === "img" && SAFE_DATA_URL.test(value))) {
            child.removeAttribute(attr.name);
          }
        } else if (/(javascript|vbscript):/i.test(value)) {
          child.removeAttribute(attr.name);
        } else if (name === "style" && /expression\s*\(|url\s*\(\s*['"]?\s*javascript/i.test(attr.value)) {
          child.removeAttribute(attr.name);
        }
      }
      if (tag === "a" && child.hasAttribute("href")) {
        try {
          const url = new URL(child.getAttribute("href"), document.baseURI);
          if (url.origin !== location.origin) {
            child.setAttribute("target", "_blank");
            child.setAttribute("rel", "noopener noreferrer");
          }
        } catch {
          child.removeAttribute("href");
        }
      }
      walk(child);
    }
  };
  walk(doc.body);
  const frag = document.createDocumentFragment();
  frag.append(...Array.from(doc.body.childNodes).map((n) => document.importNode(n, true)));
  return frag;
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
const FRAME_SCRIPT = "<script>(function(){var last=-1;function s(){var d=document.documentElement," +
  "hgt=Math.ceil(Math.max(d.getBoundingClientRect().height,document.body?document.body.scrollHeight:0));" +
  "if(hgt!==last){last=hgt;parent.postMessage({sagenbFrameHeight:hgt},'*');}}" +
  "addEventListener('load',s);if(window.ResizeObserver){new ResizeObserver(s).observe(document.documentElement);}" +
  "setTimeout(s,0);setTimeout(s,500);})();<\/script>";

function renderHtmlFrame(html) {
  const iframe = h("iframe", {
    class: "output-html",
    sandbox: "allow-scripts",
    referrerpolicy: "no-referrer",
    title: "HTML output",
    loading: "eager",
  });
  iframe.srcdoc = `<!doctype html><html><head><meta charset="utf-8"><style>${FRAME_CSS}</style></head><body>${html}${FRAME_SCRIPT}</body></html>`;
  return iframe;
}

window.addEventListener("message", (ev) => {
  const data = ev.data;
  if (!data || typeof data !== "object" || typeof data.sagenbFrameHeight !== "number") return;
  for (const frame of document.querySelectorAll("iframe.output-html")) {
    if (frame.contentWindow === ev.source) {
      const px = Math.max(16, Math.min(20000, Math.ceil(data.sagenbFrameHeight)));
      frame.style.height = `${px}px`;
      break;
    }
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

function renderMimeBundle(output, cell) {
  const data = output.data || {};
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
    const html = joinText(data["text/html"]);
    const tex = htmlAsLatex(html);
    wrap.append(tex !== null ? renderLatex(tex) : renderHtmlFrame(html));
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

class ComputeCell extends Cell {
  constructor(data) {
    super(data);
    this.prompt = h("div", { class: "prompt", title: "Execution count" });
    this.editorHost = h("div", { class: "cell-editor" });
    this.statusEl = h("span", { class: "cell-status", "aria-live": "polite" });
    const runBtn = CAN_EDIT ? button("evaluate", "\u25b6 Run", "Evaluate (Shift-Enter)") : null;
    this.outputEl = h("div", { class: "output empty", "aria-live": "polite" });
    this.outputs = new OutputArea(this.outputEl, this);
    this.el.append(
      h("div", { class: "cell-head" }, runBtn, this.statusEl, this.toolbar()),
      h("div", { class: "cell-input" }, this.prompt, this.editorHost),
      h("div", { class: "cell-output" }, h("div", { class: "prompt out-prompt" }), this.outputEl),
    );
    this.view = new EditorView({
      parent: this.editorHost,
      state: EditorState.create({ doc: data.input ?? "", extensions: this.extensions() }),
    });
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
    ];
    if (!CAN_EDIT) {
      ext.push(EditorState.readOnly.of(true), EditorView.editable.of(false));
      ext.push(keymap.of(defaultKeymap));
      return ext;
    }
    const evaluate = () => { cell.evaluate(); return true; };
    ext.push(
      Prec.highest(keymap.of([
        { key: "Shift-Enter", run: evaluate },
        { key: "Ctrl-Enter", run: evaluate },
        { key: "Mod-Enter", run: evaluate },
        { key: "Alt-Enter", run: () => { cell.evaluate({ insertBelow: true }); return true; } },
        { key: "Escape", run: () => { interrupt(); return true; } },
        { key: "ArrowUp", run: (view) => cell.leave(view, -1) },
        { key: "ArrowDown", run: (view) => cell.leave(view, 1) },
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
  // neighbouring compute cell, like the old notebook.
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
    } while (el && !(el.cell instanceof ComputeCell));
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
    this.view.focus();
    if (where === "start" || where === "end") {
      const pos = where === "start" ? 0 : this.view.state.doc.length;
      this.view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
    }
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
    // Optimistic feedback until the server answers.
    this.data = { ...this.data, status: "queued", started: null };
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

function applyWorksheetMeta(data) {
  if (!data) return;
  if (typeof data.name === "string") {
    worksheet.name = data.name;
    if (nameEl) nameEl.textContent = data.name;
    document.title = `${data.name} \u2014 Sage Notebook`;
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

// The "Data files" panel: the worksheet's files, as links (uploading is not here yet).
const dataFilesEl = document.getElementById("data-files");

function renderDataFiles(files) {
  if (!dataFilesEl || !Array.isArray(files)) return;
  const list = dataFilesEl.querySelector("[data-role=data-file-list]");
  const count = dataFilesEl.querySelector("[data-role=data-files-count]");
  const sorted = [...files].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  list.replaceChildren(...sorted.map((f) => {
    const size = formatBytes(f.size);
    return h("li", { class: "data-file" },
      h("a", {
        href: new URL(f.url || encodePath(f.name), WS_URL).href,
        target: "_blank",
        rel: "noopener",
        class: "data-file-link",
        text: f.name,
      }),
      size ? h("span", { class: "data-file-size", text: size }) : null);
  }));
  count.textContent = `(${files.length})`;
  dataFilesEl.hidden = files.length === 0;
}

function updateEmptyState() {
  root.classList.toggle("no-cells", cells.size === 0);
}

// ---------------------------------------------------------------------------
// Event wiring

root.addEventListener("click", (ev) => {
  const btn = ev.target.closest("[data-action]");
  if (!btn || !root.contains(btn) || btn.disabled) return;
  const action = btn.dataset.action;
  const cell = cellOf(btn);
  switch (action) {
    case "evaluate-all": evaluateAll(); break;
    case "interrupt": interrupt(); break;
    case "restart": restart(); break;
    case "clear-all": clearAll(); break;
    case "rename": if (CAN_EDIT) rename(); break;
    case "append-compute": addCell({ type: "compute" }); break;
    case "append-text": addCell({ type: "text" }); break;
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
