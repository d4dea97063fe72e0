// The replay page: the battle's recording with seeking.
import { api, ApiError, battleIdFromPath, setStatus } from "./common.js";
import { exists, play } from "./player.js";

const id = battleIdFromPath();
const video = document.getElementById("recording");

function showBattle(b) {
  document.getElementById("title").textContent = b.title;
  document.title = `singoff: ${b.title} (replay)`;
  const state = document.getElementById("state");
  state.textContent = b.state === "ended" ? "replay" : b.state;
  state.className = `badge ${b.state === "ended" ? "" : b.state}`;
  const when = b.ended_at || b.started_at || b.created_at;
  document.getElementById("when").textContent = when
    ? `${b.state === "ended" ? "Sung" : "Started"} ${new Date(when).toLocaleString()}`
    : "";
  const liveLink = document.getElementById("live-link");
  liveLink.hidden = b.state === "ended";
  liveLink.href = `/b/${encodeURIComponent(id)}`;
}

async function main() {
  let battle;
  try {
    battle = await api(`/api/battles/${encodeURIComponent(id)}`);
  } catch (err) {
    setStatus(err instanceof ApiError && err.status === 404
      ? "This battle does not exist."
      : `Could not load the battle (${err.message}). Reload to try again.`, "error");
    return;
  }
  showBattle(battle);
  const url = battle.vod_url || `/vod/${encodeURIComponent(id)}/index.m3u8`;
  if (!(await exists(url))) {
    setStatus(battle.state === "waiting"
      ? "Nobody has sung in this battle yet, so there is no recording."
      : "The recording is not available.", "warn");
    return;
  }
  setStatus(battle.state === "ended"
    ? "Press play to watch the battle again."
    : "The battle is still on: this is the recording so far.");
  await play(video, url, {
    live: false,
    onFatal: (reason) => setStatus(`The recording stopped playing (${reason}). Reload to try again.`, "error"),
  });
}

video.addEventListener("playing", () => setStatus("Playing the recording.", "ok"));
video.addEventListener("ended", () => setStatus("That was the whole battle.", "ok"));

main();
