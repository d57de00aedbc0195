// The sanitizer of text cells, Markdown and untrusted HTML outputs: DOMPurify (vendored,
// see frontend/) with its HTML, SVG and MathML profiles.  What it keeps is inert anyway
// (the page's Content-Security-Policy runs no inline script); on top of that it keeps no
// page actions (data-*), no forms, no styles that lift content out of its cell (position,
// z-index, transforms: overlays over the page), and no resources of other hosts (a remote
// image tells its author who looked and when).

import DOMPurify from "../vendor/dompurify.js";
import { h } from "./dom.js";

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

// The URL (relative to the worksheet's, or to `cell.path`) of the attachment `name` (as
// written after "attachment:", URL-encoded or not) of `cell`, or "" when it has none.
function attachmentUrl(cell, written) {
  if (!cell || !Array.isArray(cell.attachments) || cell.id === null || cell.id === undefined) return "";
  let name = written;
  try {
    name = decodeURIComponent(written);
  } catch {
    // not URL-encoded: the name as written
  }
  const found = cell.attachments.includes(name) ? name : (cell.attachments.includes(written) ? written : null);
  if (found === null) return "";
  // `path`: where else the cell's attachments are (a revision's, history.js).
  return `${cell.path ?? `cells/${encodeURIComponent(cell.id)}/attachments/`}${encodeURIComponent(found)}`;
}

// {sanitize(html, cell) -> DocumentFragment, removedScript()}; relative URLs (legacy text
// cells: <img src="plot.png">, a data file) are those of `base`, the worksheet's URL,
// whatever the address the page was opened with.
export function makeSanitizer(base) {
  const purifier = DOMPurify(window);
  // The text cell being sanitized: {id, attachments: [names]} (see sanitize's `cell`).
  let current = null;
  purifier.addHook("uponSanitizeAttribute", (node, data) => {
    const name = data.attrName;
    if (URL_ATTRIBUTES.has(name) && data.attrValue.startsWith("attachment:")) {
      // Jupyter's `attachment:<name>` (a pasted image of the cell): the cell's file on
      // the server, served like data files; an unknown name is dropped.
      data.attrValue = attachmentUrl(current, data.attrValue.slice("attachment:".length));
      if (!data.attrValue) data.keepAttr = false;
    } else if (name === "style") {
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
        url = new URL(value, base);
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
  return {
    // `cell` ({id, attachments}) resolves the `attachment:` links of a text cell.
    sanitize: (html, cell = null) => {
      current = cell;
      try {
        return remoteImageLinks(purifier.sanitize(String(html), PURIFY_CONFIG));
      } finally {
        current = null;
      }
    },
    // What the sanitizer took out of the last call (for the note under untrusted outputs).
    removedScript: () => purifier.removed.some((r) => {
      const el = r.element || r.from;
      const tag = el && el.localName;
      return tag === "script" || (r.attribute && /^on/i.test(r.attribute.name));
    }),
  };
}
