// The watch page: the live program over LL-HLS, the battle's state and
// viewers, and for the host the end control. When the battle ends the
// page moves to the replay.
import {
  api, ApiError, battleIdFromPath, loadHost, plural, saveHost, setStatus, singersLine, sleep, takeFragment,
} from "./common.js";
import { exists, play } from "./player.js";

const BATTLE_POLL_MS = 3000;
const RETRY_MS = 2000;
const REPLAY_DELAY_MS = 3000;

const id = battleIdFromPath();
const base = `/api/battles/${encodeURIComponent(id)}`;
const video = document.getElementById("program");
const soundButton = document.getElementById("sound");
const endButton = document.getElementById("end");

// A host link carries the host token in its fragment; keep it with the
// battle's other host credentials.
const fragmentHost = takeFragment().get("host");
if (fragmentHost) saveHost(id, { ...loadHost(id), host_token: fragmentHost });
const hostToken = loadHost(id)?.host_token;
endButton.hidden = !hostToken;

let hlsURL = `/hls/${encodeURIComponent(id)}/index.m3u8`;
let ended = false;
let player = null;

function showBattle(b) {
  document.getElementById("title").textContent = b.title;
  document.title = `singoff: ${b.title}`;
  const state = document.getElementById("state");
  state.textContent = b.state;
  state.className = `badge ${b.state}`;
  document.getElementById("viewers").textContent = String(b.viewers ?? 0);
  document.getElementById("singers").textContent = singersLine(b) || "–";
  if (b.hls_url) hlsURL = b.hls_url;
  if (b.state === "ended") battleEnded();
}

function battleEnded() {
  if (ended) return;
  ended = true;
  endButton.hidden = true;
  setStatus("The battle has ended. Moving to the replay…", "ok");
  setTimeout(() => location.replace(`/b/${encodeURIComponent(id)}/replay`), REPLAY_DELAY_MS);
}

async function pollBattle() {
  for (;;) {
    try {
      showBattle(await api(base));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        setStatus("This battle does not exist.", "error");
        return;
      }
    }
    if (ended) return;
    await sleep(BATTLE_POLL_MS);
  }
}

// runPlayer plays the program, waiting for it to exist first, and starts
// over whenever playback breaks, until the battle ends.
async function runPlayer() {
  while (!ended) {
    if (!(await exists(hlsURL))) {
      if (!ended) setStatus("Waiting for singers: the program starts when the first one goes live.");
      await sleep(RETRY_MS);
      continue;
    }
    setStatus("Loading the program…");
    const broken = new Promise((resolve) => {
      play(video, hlsURL, { live: true, onFatal: resolve }).then((p) => { player = p; });
    });
    video.play().catch(() => {});
    const reason = await broken;
    player?.destroy();
    player = null;
    if (ended) return;
    setStatus(`Lost the program (${reason}): reconnecting…`, "warn");
    await sleep(RETRY_MS);
  }
}

video.addEventListener("playing", () => {
  if (!ended) setStatus("Live.", "ok");
});
video.addEventListener("waiting", () => {
  if (!ended) setStatus("Buffering…", "warn");
});

setInterval(() => {
  const latency = player?.latency();
  document.getElementById("latency").textContent = latency == null ? "–" : `${latency.toFixed(1)} s`;
}, 1000);

function updateSoundButton() {
  soundButton.textContent = video.muted ? "Sound on" : "Sound off";
  soundButton.setAttribute("aria-pressed", String(!video.muted));
}
soundButton.addEventListener("click", () => {
  video.muted = !video.muted;
  if (!video.muted) video.play().catch(() => {});
});
video.addEventListener("volumechange", updateSoundButton);
updateSoundButton();

endButton.addEventListener("click", async () => {
  if (!confirm("End the battle for everyone?")) return;
  endButton.disabled = true;
  try {
    showBattle(await api(`${base}/end`, { method: "POST", token: hostToken }));
  } catch (err) {
    endButton.disabled = false;
    if (err instanceof ApiError && err.status === 409) battleEnded();
    else if (err instanceof ApiError && err.status === 401) setStatus("Your host key for this battle is not valid.", "error");
    else setStatus(`Could not end the battle: ${err.message}`, "error");
  }
});

(async () => {
  try {
    showBattle(await api(base));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      setStatus("This battle does not exist.", "error");
      return;
    }
  }
  pollBattle();
  runPlayer();
})();
