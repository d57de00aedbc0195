// The search box (GET /search) of the listing: results drawn as text, never as HTML
// (names and snippets are other people's words), with "More results" for the next page.
//
//  <form data-role="search" action="…/search">  q, scope
//    [data-role=search-status] [data-role=search-results] [data-role=search-more]

import { jsonApi } from "./api.js";
import { h } from "./dom.js";

const PAGE = 20;
const ROLES = { owner: "mine", collaborator: "collaborator", viewer: "viewer", published: "published" };

export function resultItem(result) {
  return h("li", { class: "search-result" },
    h("a", { href: result.url, text: result.name || "(no name)" }),
    h("span", { class: `role role-${result.role}`, text: ROLES[result.role] || result.role }),
    result.owner ? h("span", { class: "owner", text: result.owner }) : null,
    h("div", { class: "snippet", text: result.snippet || "" }));
}

export function setUpSearch(form) {
  const api = jsonApi(document.baseURI, "");
  const status = form.querySelector("[data-role=search-status]");
  const list = form.querySelector("[data-role=search-results]");
  const more = form.querySelector("[data-role=search-more]");
  let query = null;
  let shown = 0;
  let asking = null;

  async function ask(offset) {
    if (asking) asking.abort();
    asking = new AbortController();
    const url = new URL(form.action, document.baseURI);
    url.searchParams.set("q", query.q);
    url.searchParams.set("scope", query.scope);
    url.searchParams.set("offset", String(offset));
    url.searchParams.set("limit", String(PAGE));
    status.textContent = "Searching\u2026";
    try {
      const answer = await api("GET", url.href, undefined, { signal: asking.signal });
      if (offset === 0) list.replaceChildren();
      for (const result of answer.results) list.append(resultItem(result));
      shown = offset + answer.results.length;
      list.hidden = shown === 0;
      more.hidden = shown >= answer.total;
      status.textContent = answer.total === 0 ? "Nothing found."
        : `${answer.total} found${answer.total > shown ? `, ${shown} shown` : ""}.`;
    } catch (err) {
      if (err.name === "AbortError") return;
      status.textContent = err.message;
    } finally {
      asking = null;
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    query = { q: String(data.get("q") || ""), scope: String(data.get("scope") || "all") };
    ask(0);
  });
  more.addEventListener("click", () => query && ask(shown));
}
