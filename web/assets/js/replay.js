// The replay page: the battle's result and its recording with seeking;
// the rounds as chapters to jump to, and the turn, countdown and result
// as the picture shows them (the recording's cues); the chat in step
// with the recording.
import { api, ApiError, battleIdFromPath, el, setStatus, setText, showRematch } from "./common.js";
import { chatHistory, messageItem } from "./chat.js";
import { atPicture, chapters, CueTimeline, ROUND } from "./cues.js";
import { clock, resultText, roundsWon, secondsLeft, singerName, ticker } from "./format.js";
import { exists, play } from "./player.js";

const id = battleIdFromPath();
const video = document.getElementById("recording");
let battle = null;

function showBattle(b) {
  battle = b;
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
  showResult(b);
  showRematch(b);
}

// The chat in step with the recording: a message shows once the video
// reaches its time in the battle (`at`, seconds since it went live,
// which is where the recording starts). Deleted messages are not in
// the history.
let chatItems = [];

async function loadChat() {
  let messages;
  try {
    messages = await chatHistory(id);
  } catch (err) {
    setText("chat-note", `Could not load the chat: ${err.message}`);
    return;
  }
  chatItems = messages.map((m) => {
    const li = messageItem(m);
    li.dataset.at = String(m.at);
    li.hidden = true;
    return li;
  });
  document.getElementById("chat-list").replaceChildren(...chatItems);
  setText("chat-note", messages.length ? "" : "Nobody chatted in this battle.");
  syncChat();
}

function syncChat() {
  const t = video.currentTime;
  let changed = false;
  for (const li of chatItems) {
    const hide = Number(li.dataset.at) > t;
    if (li.hidden !== hide) {
      li.hidden = hide;
      changed = true;
    }
  }
  if (changed) {
    const list = document.getElementById("chat-list");
    list.scrollTop = list.scrollHeight;
  }
}

video.addEventListener("timeupdate", syncChat);
video.addEventListener("seeked", syncChat);

// showResult gives the winner, or how far a battle ended early got, and
// each round's votes, the round's winner highlighted.
function showResult(b) {
  let result = resultText(b);
  const won = roundsWon(b);
  if (result) {
    result += ` Rounds won: ${singerName(b, 1)} ${won[0]}, ${singerName(b, 2)} ${won[1]}.`;
  } else if (b.state === "ended" && b.round > 0) {
    result = `The battle was ended in round ${b.round} of ${b.rounds}, before a result.`;
  }
  document.getElementById("result-section").hidden = !result;
  if (!result) return;
  document.getElementById("result").textContent = result;
  document.getElementById("name-1").textContent = singerName(b, 1);
  document.getElementById("name-2").textContent = singerName(b, 2);
  const rows = (b.votes ?? []).map(([n1, n2], i) => el("tr", {},
    el("th", { scope: "row" }, `Round ${i + 1}`),
    el("td", { class: n1 > n2 ? "won" : null }, String(n1)),
    el("td", { class: n2 > n1 ? "won" : null }, String(n2))));
  document.querySelector("#rounds tbody").replaceChildren(...rows);
}

// showNow says what the picture shows: whose turn and how long it has
// left, a round's votes, the result.
function showNow() {
  const now = document.getElementById("now");
  now.hidden = !battle || !cues.cues.length;
  if (now.hidden) return;
  const shown = atPicture(battle, cues.cues, cues.time);
  let text;
  let countdown = "";
  if (shown.winner != null) {
    text = resultText(shown);
  } else if (shown.turn) {
    text = `Round ${shown.round}: ${singerName(shown, shown.turn)} is singing`;
    countdown = `${clock(secondsLeft(shown))} left`;
  } else if (shown.round > 0) {
    text = `Round ${shown.round} is over.`;
    const result = cues.cues.find((c) => c.class === ROUND && Number(c.data.ROUND) === shown.round &&
      c.start <= cues.time + 0.001);
    if (result) {
      const votes = [Number(result.data["VOTES-1"]), Number(result.data["VOTES-2"])];
      const w = Number(result.data.WINNER);
      text += w === 1 || w === 2
        ? ` ${singerName(shown, w)} takes it, ${votes[w - 1]} votes to ${votes[2 - w]}.`
        : ` A tie, ${votes[0]} votes each.`;
    }
  } else {
    text = "Before the first round.";
  }
  setText("turn", text);
  setText("countdown", countdown);
}

// showChapters lists the rounds and the result to jump to; the one the
// picture is in is marked.
let listed = "";
function showChapters() {
  const list = chapters(cues.cues);
  document.getElementById("chapters-section").hidden = !list.length || !battle;
  if (!list.length || !battle) return;
  const t = cues.time;
  const current = list.findLastIndex((c) => c.start <= t + 0.001);
  const key = `${list.map((c) => `${c.kind}${c.round}@${c.start.toFixed(2)}`).join()}|${current}`;
  if (key === listed) return;
  listed = key;
  const items = list.map((c, i) => {
    const title = c.kind === "round"
      ? `Round ${c.round}: ${c.slots.map((s) => singerName(battle, s)).join(", then ")}`
      : "The result";
    const jump = el("button", { type: "button", class: "chapter", "data-start": String(c.start) }, title);
    jump.addEventListener("click", () => {
      video.currentTime = c.start;
      video.play().catch(() => {});
    });
    if (i === current) jump.setAttribute("aria-current", "true");
    return el("li", {}, jump, " ", el("span", { class: "meta" }, clock(c.start)));
  });
  document.getElementById("chapters").replaceChildren(...items);
}

const cues = new CueTimeline(video, {
  onChange: () => {
    showNow();
    showChapters();
  },
});

// startAt is the moment the page's address asks for (#t=seconds), as the
// watch page sends a watcher who had gone back into the recording.
function startAt() {
  const t = Number(new URLSearchParams(location.hash.slice(1)).get("t"));
  return Number.isFinite(t) && t > 0 ? t : null;
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
  loadChat();
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
    onCue: (c) => cues.add(c),
  });
  const at = startAt();
  if (at !== null) {
    video.addEventListener("loadedmetadata", () => {
      video.currentTime = at;
      video.play().catch(() => {});
    }, { once: true });
  }
}

video.addEventListener("playing", () => setStatus("Playing the recording.", "ok"));
video.addEventListener("ended", () => setStatus("That was the whole battle.", "ok"));

ticker(showNow);
main();
