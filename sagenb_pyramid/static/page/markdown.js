// Markdown of text cells and text/markdown outputs: markdown-it (CommonMark; raw HTML
// kept, as Jupyter does, for the sanitizer that every result goes through afterwards),
// with TeX protected from it and left for MathJax.
//
// markdown-it knows no TeX: `a_1 * b_2` in $...$ would become emphasis and `\\` a line
// break. So, as sagenb and Jupyter do, the math ($$...$$, \[...\], \(...\),
// \begin{env}...\end{env}, and $...$ but not \$) is replaced by placeholders before
// Markdown runs and put back (HTML-escaped) afterwards. Code is set aside first, so that
// a $ in code is no math, and \$ is kept as written, so that MathJax (processEscapes)
// shows a dollar instead of pairing it.

import MarkdownIt from "../vendor/markdown-it.js";
import { escapeHtml } from "./dom.js";

const md = MarkdownIt({ html: true, linkify: true });
// Only URLs with their scheme become links: "README.md" or "file.py" stay text.
md.linkify.set({ fuzzyLink: false, fuzzyEmail: false });

const FENCED_CODE = /^ {0,3}(```|~~~)[^\n]*\n[\s\S]*?^ {0,3}\1[ \t]*$/gm;
const INLINE_CODE = /(`+)(?:[^`\n]|[^`\n][\s\S]*?[^`\n])\1(?!`)/g;
const MATH = /\$\$[\s\S]+?\$\$|\\\[[\s\S]+?\\\]|\\\([\s\S]+?\\\)|\\begin\{([a-zA-Z]+\*?)\}[\s\S]+?\\end\{\1\}|(?<![\\$])\$(?=[^\s$])(?:[^$\n\\]|\\[\s\S])*?\$/g;
// A backslash pair is Markdown's (an escaped backslash); \$ is MathJax's.
const ESCAPES = /\\([\\$])/g;
// \u0001n\u0002: code, put back before Markdown; \u0003n\u0002: TeX, put back after it.
const CODE_MARK = /\u0001(\d+)\u0002/g;
const TEX_MARK = /\u0003(\d+)\u0002/g;

export function renderMarkdown(source) {
  const code = [];
  const tex = [];
  const setCode = (m) => `\u0001${code.push(m) - 1}\u0002`;
  const unCode = (t) => t.replace(CODE_MARK, (m, k) => code[Number(k)]);
  const setTex = (m) => `\u0003${tex.push(unCode(m)) - 1}\u0002`;
  let s = String(source).replace(/[\u0001-\u0003]/g, "").replace(/\r\n?/g, "\n");
  s = s.replace(FENCED_CODE, setCode).replace(INLINE_CODE, setCode);
  s = s.replace(MATH, setTex).replace(ESCAPES, (m, c) => (c === "$" ? setTex(m) : m));
  return md.render(unCode(s)).replace(TEX_MARK, (m, k) => escapeHtml(tex[Number(k)]));
}
