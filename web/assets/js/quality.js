// The watch page's quality menu: "Auto" lets the player choose the
// rung of the ladder by the network; a rung chosen stays chosen.
import { el } from "./common.js";

// followQuality keeps select (inside a label that is hidden while there
// is nothing to choose) in step with the player that player() returns.
// It returns update(), to be called now and then and when the player
// changes.
export function followQuality(select, player) {
  const label = select.closest("label") ?? select;
  let chosen = -1;
  let shownFor = null;
  let ladder = "";
  select.addEventListener("change", () => {
    chosen = Number(select.value);
    player()?.setLevel(chosen);
  });
  return function update() {
    const p = player();
    const levels = p?.levels() ?? [];
    label.hidden = levels.length < 2;
    if (label.hidden) return;
    if (p !== shownFor) {
      // A new player starts where the watcher left the choice.
      shownFor = p;
      if (chosen >= 0 && chosen < levels.length) p.setLevel(chosen);
    }
    const playing = levels[p.level()];
    const names = levels.map((l) => `${l.height}p`);
    const key = `${names.join()}|${playing?.height}`;
    if (key === ladder) return;
    ladder = key;
    select.replaceChildren(
      el("option", { value: "-1" }, playing && chosen < 0 ? `Auto (${playing.height}p)` : "Auto"),
      ...levels.map((l, i) => el("option", { value: String(i) }, `${names[i]} · ${(l.bitrate / 1e6).toFixed(1)} Mb/s`)));
    select.value = String(chosen);
  };
}
