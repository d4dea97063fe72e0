// The watch page: the live program over LL-HLS, the battle's turns and
// rounds, voting, cheers, the chat, viewers, and for the host the start
// and end controls and, once the result stands, the rematch. When the
// battle ends the page moves to the replay.
import {
  api, ApiError, battleIdFromPath, isHostToken, loadHost, offerRematch, saveHost, setStatus, setText, showRematch,
  singersLine, takeFragment,
} from "./common.js";
import { Chat } from "./chat.js";
import { Cheers } from "./cheers.js";
import {
  clock, followBattle, resultText, roundLine, roundVotes, secondsLeft, singerName, ticker,
  votingClosedReason, votingSecondsLeft,
} from "./format.js";
import { CueTimeline } from "./cues.js";
import { followQuality } from "./quality.js";
import { Program, rewindControls } from "./rewind.js";

const REPLAY_DELAY_MS = 3000;
// A vote's error stays on screen this long, over the battle's updates.
const NOTICE_MS = 6000;

const id = battleIdFromPath();
const base = `/api/battles/${encodeURIComponent(id)}`;
const video = document.getElementById("program");
const soundButton = document.getElementById("sound");
const endButton = document.getElementById("end");
const startButton = document.getElementById("start");
const voteButtons = [document.getElementById("vote-1"), document.getElementById("vote-2")];

// A host link carries the host token in its fragment. It is kept with
// the battle's other host credentials only once the server says it is
// the host token, and it replaces a host key this browser already keeps
// only when the user says so: a link someone sent cannot silently take
// the host's controls away.
const fragmentHost = takeFragment().get("host");
let hostToken = loadHost(id)?.host_token;
endButton.hidden = !hostToken;
if (fragmentHost && fragmentHost !== hostToken) adoptHostLink(fragmentHost);

async function adoptHostLink(token) {
  let valid;
  try {
    valid = await isHostToken(id, token);
  } catch (err) {
    setStatus(`Could not check the host link: ${err.message}`, "warn");
    return;
  }
  if (!valid) {
    setStatus("The host key in this link is not valid for this battle; it was not kept.", "error");
    return;
  }
  if (hostToken && !confirm("This link carries a host key for this battle other than the one this browser keeps. Replace it?")) {
    return;
  }
  saveHost(id, { ...loadHost(id), host_token: token });
  hostToken = token;
  endButton.hidden = false;
  chat.becomeHost(token);
  if (battle) showBattle(battle);
}

const chat = new Chat(id, { token: hostToken || "", role: hostToken ? "host" : "watcher" });
const cheers = new Cheers(id);
const rematchButton = document.getElementById("offer-rematch");

let ended = false;
// battle is the latest battle object; the countdown ticks from it.
let battle = null;
// voting is true while a vote is on its way.
let voting = false;
let notice = { text: "", until: 0 };

// The vote of each round is remembered here: the server knows the
// watcher only by an HttpOnly cookie.
const voteKey = (round) => `singoff:vote:${id}:${round}`;
const myVote = (round) => Number(localStorage.getItem(voteKey(round))) || 0;

function showBattle(b) {
  document.getElementById("title").textContent = b.title;
  document.title = `singoff: ${b.title}`;
  const state = document.getElementById("state");
  state.textContent = b.state;
  state.className = `badge ${b.state}`;
  document.getElementById("viewers").textContent = String(b.viewers ?? 0);
  document.getElementById("singers").textContent = singersLine(b) || "–";
  if (b.hls_url) program.liveURL = b.hls_url;
  if (b.vod_url) program.recordingURL = b.vod_url;
  battle = b;
  showFormat(b);
  chat.setBattle(b);
  cheers.setBattle(b);
  showRematch(b);
  rematchButton.hidden = !hostToken || Boolean(b.rematch_id) || (b.winner == null && b.state !== "ended");
  if (b.state === "ended") battleEnded();
}

// showFormat shows the round, the turn and the result as the picture
// shows them (the stream's cues), the votes as they are now.
function showFormat(b) {
  const shown = program.view(b);
  setText("round", roundLine(shown));
  startButton.hidden = !hostToken || b.round > 0 || b.state === "ended";
  const result = resultText(shown);
  setText("result", result);
  document.getElementById("result").hidden = !result;
  showTurn(shown);
  showVotes(b);
}

// showTurn says who is singing and for how long; it runs on every tick.
function showTurn(b) {
  let text;
  if (b.state === "ended") text = "The battle has ended.";
  else if (b.winner != null) text = "The battle is over.";
  else if (!(b.round > 0)) text = "Waiting for the host to start.";
  else if (b.turn) text = `${singerName(b, b.turn)} is singing`;
  else text = `Round ${b.round} is over.`;
  setText("turn", text);
  const left = secondsLeft(b);
  const voteLeft = votingSecondsLeft(b);
  let countdown = "";
  if (left != null) countdown = `${clock(left)} left`;
  else if (voteLeft != null) countdown = `Voting closes in ${clock(voteLeft)}`;
  setText("countdown", countdown);
}

function showVotes(b) {
  const round = b.round > 0 ? b.round : 0;
  const reason = votingClosedReason(b);
  const mine = myVote(round);
  voteButtons.forEach((button, i) => {
    const name = singerName(b, i + 1);
    // The name stays put; aria-pressed says which one is this watcher's.
    setText(button.id, `Vote for ${name}`);
    button.disabled = Boolean(reason);
    button.setAttribute("aria-pressed", String(mine === i + 1));
    setText(`tally-name-${i + 1}`, name);
  });
  let note = reason;
  if (mine) {
    note = `${reason ? `${reason} ` : ""}You voted for ${singerName(b, mine)} in round ${round}.`;
    if (!reason) note += " You can change your vote until voting closes.";
  } else if (!reason) {
    note = `Voting for round ${round} is open: pick one.`;
  }
  if (Date.now() < notice.until) note = notice.text;
  setText("vote-note", note);

  const [n1, n2] = roundVotes(b, round);
  setText("count-1", String(n1));
  setText("count-2", String(n2));
  // With no votes yet both parts are 0 wide: the bar shows empty.
  document.getElementById("bar-1").style.flexGrow = String(n1);
  document.getElementById("bar-2").style.flexGrow = String(n2);
  setText("tally-round", round ? `Votes in round ${round}` : "");
}

// vote sends this watcher's vote; the buttons stay enabled meanwhile so
// a keyboard user keeps their focus; a press while one is on its way is
// ignored.
async function vote(slot) {
  if (!battle || voting) return;
  const round = battle.round;
  voting = true;
  try {
    await api(`${base}/votes`, { method: "POST", body: { slot } });
    localStorage.setItem(voteKey(round), String(slot));
    notice = { text: "", until: 0 };
  } catch (err) {
    let text = `Could not vote: ${err.message}`;
    if (err instanceof ApiError && err.status === 409) text = `Your vote did not count: ${err.message}`;
    else if (err instanceof ApiError && err.status === 429) {
      text = `Too many votes from here: try again in ${err.retryAfter || "a few"} s.`;
    }
    notice = { text, until: Date.now() + NOTICE_MS };
  } finally {
    voting = false;
    showVotes(battle);
  }
}

// battleEnded moves to the replay; a watcher who had gone back into the
// recording goes on there from the same moment.
function battleEnded() {
  if (ended) return;
  ended = true;
  endButton.hidden = true;
  setStatus("The battle has ended. Moving to the replay…", "ok");
  setTimeout(() => {
    const at = program.rewound ? `#t=${video.currentTime.toFixed(1)}` : "";
    program.stop();
    location.replace(`/b/${encodeURIComponent(id)}/replay${location.search}${at}`);
  }, REPLAY_DELAY_MS);
}

// The program plays live, or the recording when the watcher goes back;
// the battle's cues in the stream keep the turn and the result in step
// with the picture.
const cues = new CueTimeline(video, { onChange: () => { if (battle) showFormat(battle); } });
const program = new Program({
  video,
  cues,
  liveURL: `/hls/${encodeURIComponent(id)}/index.m3u8`,
  recordingURL: `/vod/${encodeURIComponent(id)}/index.m3u8`,
  status: (text, level) => { if (!ended) setStatus(text, level); },
  onMode: () => updateControls(),
});
const updateRewind = rewindControls(program, {
  rewind: document.getElementById("rewind"),
  replayRound: document.getElementById("replay-round"),
  goLive: document.getElementById("go-live"),
});
const updateQuality = followQuality(document.getElementById("quality"), () => program.player);
function updateControls() {
  updateRewind();
  updateQuality();
}

video.addEventListener("playing", () => {
  if (!ended) setStatus(program.rewound ? "Playing the recording: Back to live returns to the battle." : "Live.", "ok");
});
video.addEventListener("waiting", () => {
  if (!ended) setStatus("Buffering…", "warn");
});

setInterval(() => {
  const latency = program.latency();
  document.getElementById("latency").textContent = latency == null ? "–" : `${latency.toFixed(1)} s`;
  updateControls();
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

voteButtons.forEach((button, i) => button.addEventListener("click", () => vote(i + 1)));

startButton.addEventListener("click", async () => {
  startButton.disabled = true;
  try {
    showBattle(await api(`${base}/start`, { method: "POST", token: hostToken }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) startButton.hidden = true;
    else if (err instanceof ApiError && err.status === 401) setStatus("Your host key for this battle is not valid.", "error");
    else setStatus(`Could not start the battle: ${err.message}`, "error");
  } finally {
    startButton.disabled = false;
  }
});

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

rematchButton.addEventListener("click", async () => {
  rematchButton.disabled = true;
  try {
    const b = await offerRematch(id, hostToken);
    location.assign("/"); // the home page lists it with its invite links
  } catch (err) {
    setStatus(`Could not make the rematch: ${err.message}`, "error");
  } finally {
    rematchButton.disabled = false;
  }
});

// The program starts once the battle is known to exist.
let playerRunning = false;
followBattle(id, {
  onBattle(b) {
    showBattle(b);
    if (!playerRunning) {
      playerRunning = true;
      program.run();
    }
  },
  onMissing() {
    setStatus("This battle does not exist.", "error");
  },
  onChat: (c) => chat.change(c),
  onStreamOpen: () => chat.resync(),
});
ticker(() => {
  if (battle) showTurn(program.view(battle));
});
