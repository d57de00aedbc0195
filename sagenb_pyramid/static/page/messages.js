// The worksheet page's message bar (errors stay until dismissed, notes go by themselves).

import { h } from "./dom.js";

export function makeMessages(messageEl) {
  let timer = null;
  const hide = () => {
    clearTimeout(timer);
    messageEl.hidden = true;
    messageEl.replaceChildren();
  };
  const show = (text, kind = "error") => {
    clearTimeout(timer);
    const close = h("button", { type: "button", class: "message-close", title: "Dismiss", "aria-label": "Dismiss" }, "\u00d7");
    close.addEventListener("click", hide);
    messageEl.className = `message ${kind}`;
    messageEl.dataset.kind = kind;
    messageEl.replaceChildren(h("span", { class: "message-text", text }), close);
    messageEl.hidden = false;
    if (kind !== "error") timer = setTimeout(hide, 4000);
  };
  return {
    show,
    hide,
    // The kind of what is shown ("error", "info", "connection"), or null.
    shown: () => (messageEl.hidden ? null : messageEl.dataset.kind),
    hideIfError() {
      if (!messageEl.hidden && messageEl.dataset.kind === "error") hide();
    },
    report(err) {
      if (err && err.name === "AbortError") return;
      console.error(err);
      show((err && err.message) || String(err), "error");
    },
  };
}
