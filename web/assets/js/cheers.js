// Cheers on the watch page: taps are counted here and sent together
// (at most 20 a request, a few requests a second), each tap floats up
// over its side, and the crowd's cheers from the battle object float up
// too.
import { api, ApiError, el, setText } from "./common.js";
import { singerName } from "./format.js";

const SEND_EVERY_MS = 300;
const MAX_PER_REQUEST = 20;
// The most pops one update of the crowd's cheers shows.
const MAX_POPS = 12;

export class Cheers {
  constructor(id) {
    this.base = `/api/battles/${encodeURIComponent(id)}`;
    this.buttons = [document.getElementById("cheer-1"), document.getElementById("cheer-2")];
    this.stage = document.getElementById("cheer-stage");
    this.pending = [0, 0];
    this.mine = [0, 0]; // sent and not yet in the battle object
    this.seen = null; // the battle's cheers last shown
    this.timer = 0;
    this.buttons.forEach((b, i) => b.addEventListener("click", () => this.tap(i + 1)));
  }

  tap(slot) {
    this.pending[slot - 1]++;
    this.pop(slot);
    if (!this.timer) this.timer = setTimeout(() => this.send(), SEND_EVERY_MS);
  }

  async send() {
    this.timer = 0;
    for (const slot of [1, 2]) {
      const count = Math.min(this.pending[slot - 1], MAX_PER_REQUEST);
      if (!count) continue;
      this.pending[slot - 1] -= count;
      try {
        await api(`${this.base}/cheers`, { method: "POST", body: { slot, count } });
        this.mine[slot - 1] += count;
        setText("cheer-note", "");
      } catch (err) {
        this.pending[slot - 1] = 0;
        setText("cheer-note", err instanceof ApiError && err.status === 429
          ? "Easy there: your cheers count up to 20 a second."
          : `Your cheers did not count: ${err.message}`);
      }
    }
    if ((this.pending[0] || this.pending[1]) && !this.timer) {
      this.timer = setTimeout(() => this.send(), SEND_EVERY_MS);
    }
  }

  // pop floats one cheer up over slot's side.
  pop(slot) {
    const p = el("span", { class: `cheer-pop side-${slot}` }, slot === 1 ? "🎉" : "🔥");
    const x = (slot === 1 ? 5 : 55) + Math.random() * 40;
    p.style.left = `${x}%`;
    p.addEventListener("animationend", () => p.remove());
    this.stage.append(p);
  }

  // setBattle shows the battle's cheers; the crowd's new ones (not this
  // page's own taps, already shown) float up.
  setBattle(b) {
    const cheers = b.cheers || [0, 0];
    this.buttons.forEach((button, i) => {
      setText(button.id, `Cheer for ${singerName(b, i + 1)}`);
      setText(`cheer-name-${i + 1}`, singerName(b, i + 1));
      setText(`cheers-${i + 1}`, String(cheers[i]));
      button.disabled = b.state === "ended";
    });
    if (this.seen) {
      for (const i of [0, 1]) {
        const fresh = cheers[i] - this.seen[i];
        const own = Math.min(this.mine[i], Math.max(fresh, 0));
        this.mine[i] -= own;
        for (let k = 0; k < Math.min(fresh - own, MAX_POPS); k++) this.pop(i + 1);
      }
    }
    this.seen = [...cheers];
  }
}
