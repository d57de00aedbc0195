// Long polling of queued/running cells.
// At most MAX_POLLS requests in flight overall (browsers only open ~6
// connections per host) and at most one per cell; running cells first, then
// in the order they were queued.

import { sleep } from "./dom.js";
import { ACTIVE } from "./cell.js";

const MAX_POLLS = 2;

// The page's poller; `page` gives api, messages, nextSeq and actions.removeCellLocally.
export function makePoller(page) {
  return {
    watched: new Set(),
    inflight: new Set(),
    failures: 0,

    watch(cell) {
      if (!cell.seq) cell.seq = page.nextSeq();
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
        const data = await page.api("GET", `cells/${cell.id}?since=${encodeURIComponent(since)}&wait=5`, null, { signal: ctrl.signal });
        if (this.failures) {
          this.failures = 0;
          if (page.messages.shown() === "connection") page.messages.hide();
        }
        const unchanged = data.version === since && data.status === cell.status;
        cell.update(data);
        // Nothing happened: let other queued cells have a turn.
        if (unchanged && cell.status === "queued") cell.seq = page.nextSeq();
        // A server that answers at once without news must not be hammered.
        if (unchanged && Date.now() - t0 < 1000) await sleep(1000 - (Date.now() - t0));
      } catch (err) {
        if (err.status === 404) {
          // Deleted elsewhere: unsaved text in it is kept (live.js).
          if (page.live) page.live.cellGone(cell);
          else page.actions.removeCellLocally(cell.id);
        } else {
          this.failures++;
          if (err.name !== "AbortError" && this.failures >= 2) {
            page.messages.show("Lost connection to the server, retrying\u2026", "connection");
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
}
