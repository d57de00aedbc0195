// Presence (issue 21): this page tells the server it has the worksheet open and which
// cell it is in (POST ./presence: every 20 s, every 5 s while no other page has the
// worksheet open, at once when the focused cell changes, and "gone" as the page goes),
// and draws who else is here: a coloured marker on each cell someone else is in, and a
// list of names next to the worksheet's title.
//
// A page alone on its worksheet holds no long poll (live.js asks `?since=` now and then):
// the heartbeat's answer says how many other pages are open (`others`) and the
// worksheet's `version`, and page.live.refreshNow() is called when someone arrives or
// the worksheet changed, so a newcomer is seen within ALONE_HEARTBEAT_MS.
//
// The list comes with the worksheet's ?since= answers: live.js calls
// page.presence.update(data.presence, data.presence_stamp) after each, and sends
// page.presenceStamp back so that its wait also ends when someone arrives, moves or
// leaves. Names and logins are other people's text: only ever set as textContent.

import { h } from "./dom.js";

export const HEARTBEAT_MS = 20_000;
// While alone: how soon a page learns that someone else opened the worksheet (the
// markers of the presence tests appear within 10 s), at a request every 5 s.
export const ALONE_HEARTBEAT_MS = 5_000;
const COLOR = /^#[0-9a-fA-F]{6}$/;

// The page's own id: random, not a secret (the server lets only its user use it).
function newSessionId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The id of the cell an element is in (null: none, or a cell not created yet).
function cellIdOf(el, cellsEl) {
  const cellEl = el?.closest?.(".cell[data-cell-id]");
  if (!cellEl || !cellsEl.contains(cellEl) || cellEl.dataset.cellId === "") return null;
  const id = Number(cellEl.dataset.cellId);
  return Number.isInteger(id) ? id : null;
}

export function makePresence(page) {
  const session = newSessionId();
  let cell = null; // the cell this page is in, as last told (or to tell)
  let sending = false;
  let again = false; // the cell changed while a heartbeat was on its way
  let stopped = false; // the server refused this page's presence (access taken away)
  let gone = false;
  let entries = [];
  let others = null; // other pages open (null: not known yet)
  let timer = null;

  const listEl = h("span", { class: "presence-list", dataset: { role: "presence" }, hidden: true, "aria-live": "polite" });
  (page.root.querySelector(".ws-title") || page.root).append(listEl);

  async function send() {
    if (stopped || gone) return;
    if (sending) {
      again = true;
      return;
    }
    sending = true;
    try {
      do {
        again = false;
        const answer = await page.api("POST", "presence", { session, cell });
        if (answer && Array.isArray(answer.presence)) {
          update(answer.presence, answer.presence_stamp);
          // Changed meanwhile: a page alone, which holds no long poll, asks now.
          if (typeof answer.version === "number" && answer.version !== page.version && alone()) {
            page.live?.refreshNow();
          }
        }
      } while (again && !gone);
    } catch (err) {
      // Unshared meanwhile (403/404) or too many pages (429): say nothing more (and the
      // page, which no longer knows who is here, holds its long poll again).
      if ([403, 404, 429].includes(err.status)) {
        stopped = true;
        page.live?.refreshNow();
      }
    } finally {
      sending = false;
      schedule();
    }
  }

  // Whether no other page has the worksheet open, as far as this page knows (not known
  // yet: alone, so the first ?since= asks at once without holding a thread).
  function alone() {
    return !stopped && !gone && (others === null || others === 0);
  }

  function schedule() {
    clearTimeout(timer);
    if (gone || stopped) return;
    timer = setTimeout(send, alone() ? ALONE_HEARTBEAT_MS : HEARTBEAT_MS);
  }

  function setCell(id) {
    // A viewer's cell is not shown to anyone (the server drops it): nothing to tell.
    if (id === cell || !page.canEdit) return;
    cell = id;
    send();
  }

  document.addEventListener("focusin", (ev) => setCell(cellIdOf(ev.target, page.cellsEl)));
  document.addEventListener("focusout", (ev) => {
    if (ev.relatedTarget) return; // a focusin follows
    // Focus went nowhere (a click on the page's background), not to another window.
    setTimeout(() => {
      if (document.hasFocus() && !cellIdOf(document.activeElement, page.cellsEl)) setCell(null);
    }, 0);
  });

  // Hidden tabs' timers are slowed down: say so at once when seen again.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") send();
  });
  window.addEventListener("pagehide", () => {
    gone = true;
    page.api("POST", "presence", { session, gone: true }, { keepalive: true }).catch(() => {});
  });
  // Back from the back/forward cache: open again.
  window.addEventListener("pageshow", (ev) => {
    if (!ev.persisted) return;
    gone = false;
    send();
  });
  send();

  function clearMarkers() {
    for (const el of page.cellsEl.querySelectorAll(".presence-markers")) el.remove();
    for (const el of page.cellsEl.querySelectorAll(".cell.presence-here")) {
      el.classList.remove("presence-here");
      el.style.removeProperty("--presence-color");
    }
  }

  function chip(entry, tag = "span") {
    const el = h(tag, { class: "presence-person", title: `${entry.name} (${entry.user})`, text: entry.name });
    if (COLOR.test(entry.color || "")) el.style.setProperty("--presence-color", entry.color);
    return el;
  }

  function draw() {
    clearMarkers();
    const others = entries.filter((e) => e.session !== session);
    const byCell = new Map();
    for (const e of others) {
      if (e.cell === null || e.cell === undefined) continue;
      if (!byCell.has(e.cell)) byCell.set(e.cell, []);
      if (!byCell.get(e.cell).some((o) => o.user === e.user)) byCell.get(e.cell).push(e);
    }
    for (const [id, people] of byCell) {
      const cellEl = page.cells.get(id)?.el
        || page.cellsEl.querySelector(`.cell[data-cell-id="${CSS.escape(String(id))}"]`);
      if (!cellEl) continue;
      const markers = h("div", { class: "presence-markers", dataset: { role: "presence-markers" } });
      for (const e of people) {
        const marker = chip(e);
        marker.classList.add("presence-marker");
        marker.dataset.user = e.user;
        markers.append(marker);
      }
      cellEl.classList.add("presence-here");
      if (COLOR.test(people[0].color || "")) cellEl.style.setProperty("--presence-color", people[0].color);
      cellEl.prepend(markers);
    }
    // The toolbar's list: one name a person (however many pages), not oneself.
    const mine = entries.find((e) => e.session === session)?.user;
    const people = [];
    for (const e of others) {
      if (e.user !== mine && !people.some((p) => p.user === e.user)) people.push(e);
    }
    listEl.replaceChildren();
    if (people.length) {
      listEl.append(h("span", { class: "presence-label", text: "Also here:" }));
      for (const e of people) {
        const el = chip(e);
        el.dataset.user = e.user;
        if (e.cell !== null && e.cell !== undefined) el.title += ` \u00b7 in cell ${e.cell}`;
        listEl.append(el);
      }
    }
    listEl.hidden = people.length === 0;
  }

  // Who has the worksheet open (the `presence` of a ?since= or heartbeat answer) and
  // its stamp.  Someone arriving on a page that was alone: its long poll starts now.
  function update(list, stamp) {
    if (!Array.isArray(list)) return;
    if (typeof stamp === "number") page.presenceStamp = stamp;
    entries = list.filter((e) => e && typeof e.session === "string");
    const wasAlone = alone();
    others = entries.filter((e) => e.session !== session).length;
    if (wasAlone !== alone()) {
      schedule();
      if (!alone()) page.live?.refreshNow();
    }
    draw();
  }

  return {
    session,
    update,
    get alone() {
      return alone();
    },
    // Draw again (after cells were re-rendered).
    redraw: draw,
    get cell() {
      return cell;
    },
    stop() {
      clearTimeout(timer);
      gone = true;
    },
  };
}
