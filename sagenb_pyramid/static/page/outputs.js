// Outputs of cells (nbformat): streams, errors, images, LaTeX, HTML (in a sandboxed frame
// when the viewer trusts the worksheet, sanitized in the page otherwise), Markdown, help
// pages, files, widget views; and OutputArea, which redraws only what changed.
//
// `page` is the page's state (worksheet.js): wsUrl, frameUrl, trusted, canEdit, root,
// sanitizer and worksheet (its typeset flag).

import { h, escapeHtml, b64encodeUtf8, joinText, encodePath } from "./dom.js";
import { ansiFragment, stripAnsi, applyControlChars } from "./ansi.js";
import { renderLatex, typeset, typesetClear } from "./math.js";
import { renderMarkdown } from "./markdown.js";
import * as widgets from "../widgets.js";
import { addManualLink, questionName } from "./doclinks.js";

export function cellFileUrl(page, cellId, name) {
  return new URL(`cells/${encodeURIComponent(cellId)}/files/${encodePath(name)}`, page.wsUrl).href;
}

const FRAME_CSS = "html,body{margin:0;padding:0;background:transparent}" +
  "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2329;padding:2px 0;overflow-x:auto}" +
  "table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:2px 6px}img{max-width:100%}";
// The frame (static/frame.js at page.frameUrl, served with its own policy) asks for its
// HTML once it is ready (page.frameHtml, see listenToFrames); the HTML keeps the
// worksheet as its base for relative URLs.
function renderHtmlFrame(html, page) {
  const iframe = h("iframe", {
    class: "output-html",
    sandbox: "allow-scripts",
    referrerpolicy: "no-referrer",
    title: "HTML output",
    loading: "eager",
    src: page.frameUrl,
  });
  page.frameHtml.set(iframe, `<!doctype html><html><head><meta charset="utf-8"><base href="${escapeHtml(page.wsUrl)}">` +
    `<style>${FRAME_CSS}</style></head><body>${html}</body></html>`);
  return iframe;
}

// HTML outputs of a worksheet this viewer does not vouch for: no script at all, the
// sanitized HTML in the page (as Jupyter shows untrusted notebooks).
function renderUntrustedHtml(html, page) {
  const div = h("div", { class: "output-html-inline" });
  div.append(page.sanitizer.sanitize(html));
  if (page.sanitizer.removedScript()) {
    div.append(h("p", { class: "hint untrusted-note", text: page.canEdit && !page.trusted && page.root.querySelector("[data-action=trust]")
      ? "Scripts of this output were not run: trust the worksheet to run them."
      : "Scripts of this output were not run (you did not write this worksheet)." }));
  }
  return div;
}

// The frames' messages: "ready" (it gets its HTML) and its height.
export function listenToFrames(page) {
  page.frameHtml = new WeakMap();
  window.addEventListener("message", (ev) => {
    const data = ev.data;
    if (!data || typeof data !== "object") return;
    for (const frame of document.querySelectorAll("iframe.output-html")) {
      if (frame.contentWindow !== ev.source) continue;
      if (data.sagenbFrameReady === true && page.frameHtml.has(frame)) {
        const html = page.frameHtml.get(frame);
        page.frameHtml.delete(frame); // once: a frame that navigated away gets nothing
        ev.source.postMessage({ sagenbFrameHtml: html }, "*");
      } else if (typeof data.sagenbFrameHeight === "number") {
        const px = Math.max(16, Math.min(20000, Math.ceil(data.sagenbFrameHeight)));
        frame.style.height = `${px}px`;
      }
      break;
    }
  });
}

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

function renderFileOutput(output, name, cell, page) {
  const wrap = h("div", { class: `output-item output-file output-${output.output_type}`, dataset: { outputType: output.output_type } });
  const base = name.split("/").pop() || name;
  const files = cell && Array.isArray(cell.data.files) ? cell.data.files : null;
  if (!cell || cell.id === null || (files && !files.includes(name))) {
    wrap.append(h("span", { class: "output-file-name missing", title: "This file was not kept with the output.", text: name }));
    return wrap;
  }
  wrap.append(h("a", {
    class: "output-file-link",
    href: cellFileUrl(page, cell.id, name),
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

function renderPageOutput(output, cell) {
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
  // The function's page of the manuals, when they have one.
  addManualLink(wrap, text, questionName(cell && cell.data ? cell.data.input : ""));
  return wrap;
}

// Legacy outputs refer to files of their cell as cell://name: an image the cell keeps
// inline becomes a data: URL (the HTML frame cannot send the session cookie), any other
// file the cell's file URL.
function resolveCellUrls(html, cell, page) {
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
    images.get(name) || (cell.id !== null ? cellFileUrl(page, cell.id, name) : whole));
}

function renderMimeBundle(output, cell, page) {
  const data = output.data || {};
  if (cell && widgets.isWidgetView(output)) return widgets.renderWidgetView(output, cell);
  if (isPageOutput(output)) return renderPageOutput(output, cell);
  const fileName = outputFileName(output);
  if (fileName !== null) return renderFileOutput(output, fileName, cell, page);
  const wrap = h("div", { class: `output-item output-${output.output_type}`, dataset: { outputType: output.output_type } });
  const preferPlain = output.output_type === "execute_result" && page.worksheet.typeset === false && data["text/plain"] !== undefined;
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
    const html = resolveCellUrls(joinText(data["text/html"]), cell, page);
    const tex = htmlAsLatex(html);
    wrap.append(tex !== null ? renderLatex(tex) : page.trusted ? renderHtmlFrame(html, page) : renderUntrustedHtml(html, page));
  } else if (data["text/plain"] !== undefined) {
    const pre = h("pre", { class: "output-text" });
    pre.append(ansiFragment(joinText(data["text/plain"])));
    wrap.append(pre);
  } else if (data["text/markdown"] !== undefined) {
    const div = h("div", { class: "output-markdown" });
    div.append(page.sanitizer.sanitize(renderMarkdown(joinText(data["text/markdown"]))));
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

function renderStreamInto(pre, text, page) {
  const match = FULL_OUTPUT.exec(text);
  if (!match) {
    pre.replaceChildren(ansiFragment(applyControlChars(text)));
    return;
  }
  const before = text.slice(0, match.index + "the whole output: ".length);
  const after = text.slice(match.index + match[0].length);
  const link = h("a", { href: new URL(match[1], page.wsUrl).href, class: "full-output", download: "" },
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

export class OutputArea {
  constructor(el, page, cell = null) {
    this.el = el;
    this.page = page;
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
        renderStreamInto(old.stream.pre, item.text, this.page);
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
        renderStreamInto(pre, item.text, this.page);
        node = h("div", { class: "output-item output-stream-item", dataset: { outputType: "stream", name: item.name } }, pre);
        stream = { name: item.name, text: item.text, pre };
      } else if (item.output_type === "error") {
        node = renderError(item);
      } else if (item.output_type === "execute_result" || item.output_type === "display_data") {
        node = renderMimeBundle(item, this.cell, this.page);
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
