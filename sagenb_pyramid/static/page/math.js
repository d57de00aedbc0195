// MathJax, loaded on demand from static/vendor/mathjax (with ui/safe and without the
// TeX packages that make links or raw attributes: docs/security.md), and the rendering
// of text/latex outputs.  One MathJax per window, so its loading is this module's.

import { h } from "./dom.js";

const MATHJAX_URL = new URL("../vendor/mathjax/tex-svg-full.js", import.meta.url).href;

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


const mathjax = {
  promise: null, // the loading MathJax
  chain: Promise.resolve(), // the last MathJax operation
  onError: (err) => console.error(err), // a failed load (see setMathJaxErrorHandler)
};

// Who hears that MathJax could not be loaded (the page's message bar).
export function setMathJaxErrorHandler(fn) {
  mathjax.onError = fn;
}

function loadMathJax() {
  if (mathjax.promise) return mathjax.promise;
  mathjax.promise = new Promise((resolve, reject) => {
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
  mathjax.promise.catch((err) => mathjax.onError(err));
  return mathjax.promise;
}

// MathJax operations are serialised, as recommended by its documentation.
function withMathJax(fn) {
  const p = mathjax.chain.then(() => loadMathJax()).then(fn);
  mathjax.chain = p.catch((err) => console.warn("MathJax:", err));
  return p;
}
// Math far off screen is typeset when it comes within 1,500 px of it (a worksheet of
// 1,000 cells opens without typesetting them all, bench/page.py); at once on a print view
// or a published page (data-mode), which may be printed before it is scrolled through,
// and in a dialog (the History panel), whose own scrolling clips what the observer sees.
let nearObserver = null;
const waiting = new WeakMap(); // element -> what waits for it to come near
function whenNear(el, fn) {
  if (typeof IntersectionObserver === "undefined" || document.querySelector("#worksheet[data-mode]")
      || el.closest("dialog")) return fn();
  if (!nearObserver) {
    nearObserver = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        const fns = waiting.get(e.target) || [];
        waiting.delete(e.target);
        nearObserver.unobserve(e.target);
        for (const f of fns) f();
      }
    }, { rootMargin: "1500px 0px" });
  }
  return new Promise((resolve, reject) => {
    const run = () => Promise.resolve().then(fn).then(resolve, reject);
    if (waiting.has(el)) waiting.get(el).push(run);
    else {
      waiting.set(el, [run]);
      nearObserver.observe(el);
    }
  });
}

export function typeset(el) {
  return whenNear(el, () => withMathJax((MJ) => (el.isConnected ? MJ.typesetPromise([el]) : null)));
}
export function typesetClear(el) {
  if (nearObserver && waiting.has(el)) {
    waiting.delete(el);
    nearObserver.unobserve(el);
  }
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

export function renderLatex(src) {
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
  whenNear(el, () => withMathJax((MJ) => MJ.tex2svgPromise(parsed.math, { display: parsed.display })))
    .then((node) => el.replaceChildren(node))
    .catch((err) => console.warn("MathJax:", err));
  return el;
}
