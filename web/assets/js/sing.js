// The sing page: camera and mic preview, publishing over WHIP to this
// slot, the opponent over WHEP from the other slot, and whose turn it is.
import { api, ApiError, battleIdFromPath, setStatus, setText, showRematch, takeFragment } from "./common.js";
import { Chat } from "./chat.js";
import {
  clock, followBattle, resultText, roundLine, secondsLeft, singerName, ticker, votingSecondsLeft,
} from "./format.js";
import { preferH264, Session } from "./webrtc.js";

const id = battleIdFromPath();
const slot = Number(location.pathname.match(/\/sing\/([12])\/?$/)?.[1]);
const other = slot === 1 ? 2 : 1;
const base = `/api/battles/${encodeURIComponent(id)}`;

const local = document.getElementById("local");
const remote = document.getElementById("remote");
const muteButton = document.getElementById("mute");
const cameraButton = document.getElementById("camera");
const listenButton = document.getElementById("listen");
const leaveButton = document.getElementById("leave");
const cameraSelect = document.getElementById("camera-select");
const micSelect = document.getElementById("mic-select");
const sendState = document.getElementById("send-state");
const recvState = document.getElementById("recv-state");
const headphonesYes = document.getElementById("headphones-yes");
const headphonesNo = document.getElementById("headphones-no");
const takeBackButton = document.getElementById("take-back");

document.getElementById("heading").textContent = `Singer ${slot}`;
document.getElementById("remote-caption").textContent = `Singer ${other}, your opponent`;
document.getElementById("watch-link").href = `/b/${encodeURIComponent(id)}`;

// The token comes in the invite link's fragment; sessionStorage keeps it
// for this tab, so a reload takes the same slot back.
const tokenKey = `singoff:singer:${id}:${slot}`;
const fragmentToken = takeFragment().get("token");
if (fragmentToken) sessionStorage.setItem(tokenKey, fragmentToken);
const token = fragmentToken || sessionStorage.getItem(tokenKey);

// The answer to "Are you wearing headphones?" lasts as long as the tab,
// reloads included.
const headphonesKey = "singoff:headphones";
let headphones = sessionStorage.getItem(headphonesKey) === "yes";

let stream = null;
let muted = false;
let cameraOff = false;
let publisher = null;
let subscriber = null;
let ended = false;
// fatal holds the message that stopped the page, which nothing overrides.
let fatal = "";
let opponentMedia = false;
// battle is the latest battle object; the turn clock ticks from it.
let battle = null;
let stopFollowing = () => {};

function fail(message) {
  fatal = message;
  stopFollowing();
  setStatus(message, "error");
  sendState.textContent = "stopped";
  disableControls();
}

// disableControls greys out what can no longer act on anything.
function disableControls() {
  for (const c of [muteButton, cameraButton, leaveButton, cameraSelect, micSelect, headphonesYes, headphonesNo]) c.disabled = true;
}

// report sums up both connections in the status line.
function report() {
  if (fatal) return;
  if (ended) {
    setStatus("The battle has ended. Thank you for singing!", "ok");
    return;
  }
  const s = publisher?.state;
  const r = subscriber?.state;
  let text;
  let level = "info";
  if (s === "connected") {
    text = "You are live.";
    level = "ok";
  } else if (s === "reconnecting") {
    text = publisher.retryIn > 0
      ? `Connection lost: reconnecting in ${Math.ceil(publisher.retryIn / 1000)} s…`
      : "Connection lost: reconnecting…";
    level = "warn";
  } else if (s === "stopped") {
    text = "You have left the stage. Reload the page to come back.";
  } else {
    text = "Connecting you to the stage…";
  }
  if (s === "connected") {
    const name = battle ? singerName(battle, other) : `Singer ${other}`;
    if (r === "connected" && opponentMedia) text += ` ${name} is on.`;
    else if (r === "reconnecting") text += ` Reconnecting to ${name}…`;
    else text += ` Waiting for ${name}…`;
  }
  setStatus(text, level);
}

function describe(state, retryIn) {
  switch (state) {
    case "connecting": return "connecting…";
    case "connected": return "connected";
    case "reconnecting": return retryIn > 0 ? `reconnecting in ${Math.ceil(retryIn / 1000)} s` : "reconnecting…";
    case "stopped":
    case "replaced":
    case "failed": return "stopped";
    default: return state;
  }
}

// track follows a Session's state for the status line.
function track(name, label) {
  const holder = { state: "connecting", retryIn: 0 };
  return {
    holder,
    onState(state, detail) {
      holder.state = state;
      holder.retryIn = state === "reconnecting" ? detail : 0;
      label.textContent = describe(state, detail);
      if (state === "failed") onSessionFailed(name, detail);
      if (state === "replaced") onReplaced();
      report();
    },
  };
}

function onSessionFailed(name, err) {
  if (err.status === 401) {
    sessionStorage.removeItem(tokenKey);
    fail(`This invite link is not valid for singer ${slot}: the server refused its token. Ask the host for a new link.`);
  } else if (err.status === 409) {
    battleEnded();
  } else if (err.status === 404) {
    fail("This battle does not exist.");
  } else if (err.status === 422 && name === "publish") {
    fail("The server cannot use the video or audio this browser sends. Try another browser.");
  } else {
    fail(`Could not connect (${err.message}).`);
  }
}

// onReplaced stops this tab: another tab or device with the same invite
// link publishes to the slot now, and taking it back would make the two
// knock each other off for ever. The singer may take it back by hand.
function onReplaced() {
  subscriber?.session.stop();
  stream?.getTracks().forEach((t) => t.stop());
  fail("You are singing from another tab or device now: this one has stopped. "
    + "Close it, or press the button to sing from here instead.");
  takeBackButton.hidden = false;
}

function battleEnded() {
  if (ended) return;
  ended = true;
  publisher?.session.stop();
  subscriber?.session.stop();
  stream?.getTracks().forEach((t) => t.stop());
  disableControls();
  const replay = document.getElementById("watch-link");
  replay.href = `/b/${encodeURIComponent(id)}/replay`;
  replay.textContent = "Watch the replay";
  report();
}

function constraints(cameraId, micId) {
  return {
    video: {
      deviceId: cameraId ? { exact: cameraId } : undefined,
      // The program shows each singer at 640x480 at most; more would
      // only cost both ends CPU and bandwidth.
      width: { ideal: 640 },
      height: { ideal: 480 },
      frameRate: { ideal: 30 },
    },
    audio: audioConstraints(micId),
  };
}

// audioConstraints asks for the voice as it is, in stereo where the
// microphone has it, when the singer wears headphones. Without them the
// opponent's voice comes out of the speakers into the microphone, so the
// browser's echo cancellation stays on, and noise suppression and gain
// control with it (they work together); they squeeze singing, which is
// why the page asks.
function audioConstraints(micId) {
  return {
    deviceId: micId ? { exact: micId } : undefined,
    channelCount: { ideal: 2 },
    echoCancellation: !headphones,
    noiseSuppression: !headphones,
    autoGainControl: !headphones,
  };
}

// forMusic tells the browser the microphone carries music, not speech.
function forMusic(s) {
  s.getAudioTracks().forEach((t) => { t.contentHint = "music"; });
  return s;
}

function mediaErrorMessage(err) {
  switch (err.name) {
    case "NotAllowedError":
      return "Camera and microphone access was denied. Allow them for this site in the browser's settings, then reload.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera or microphone was found. Connect one and reload.";
    case "NotReadableError":
      return "The camera or microphone is in use by another application. Close it and reload.";
    default:
      return `Could not open the camera and microphone (${err.message}).`;
  }
}

function applyToggles() {
  stream?.getAudioTracks().forEach((t) => { t.enabled = !muted; });
  stream?.getVideoTracks().forEach((t) => { t.enabled = !cameraOff; });
  muteButton.setAttribute("aria-pressed", String(muted));
  muteButton.textContent = muted ? "Unmute microphone" : "Mute microphone";
  cameraButton.setAttribute("aria-pressed", String(cameraOff));
  cameraButton.textContent = cameraOff ? "Turn camera on" : "Turn camera off";
}

async function fillDevicePickers() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (select, kind, current) => {
    const options = devices.filter((d) => d.kind === kind).map((d, i) => {
      const o = new Option(d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`, d.deviceId);
      o.selected = d.deviceId === current;
      return o;
    });
    select.replaceChildren(...options);
    select.disabled = options.length < 2 || ended || Boolean(fatal);
  };
  fill(cameraSelect, "videoinput", stream.getVideoTracks()[0]?.getSettings().deviceId);
  fill(micSelect, "audioinput", stream.getAudioTracks()[0]?.getSettings().deviceId);
}

// switchDevices opens the chosen devices and swaps the sent tracks in
// place: replaceTrack needs no new offer.
async function switchDevices() {
  let next;
  try {
    next = forMusic(await navigator.mediaDevices.getUserMedia(constraints(cameraSelect.value, micSelect.value)));
  } catch (err) {
    setStatus(mediaErrorMessage(err), "error");
    return;
  }
  const old = stream;
  stream = next;
  local.srcObject = stream;
  applyToggles();
  await sendTracks();
  old.getTracks().forEach((t) => t.stop());
}

// sendTracks puts the stream's tracks on the publisher's senders.
async function sendTracks() {
  for (const t of publisher?.session.pc?.getTransceivers() ?? []) {
    const kind = t.receiver.track.kind;
    const replacement = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    await t.sender.replaceTrack(replacement ?? null);
  }
}

// setHeadphones takes the singer's answer: the microphone is opened again
// with or without the browser's voice processing, and sent in place. One
// change at a time.
let micChange = Promise.resolve();
function setHeadphones(yes) {
  headphones = yes;
  sessionStorage.setItem(headphonesKey, yes ? "yes" : "no");
  showHeadphones();
  micChange = micChange.then(reopenMic);
}

async function reopenMic() {
  if (!stream) return;
  const old = stream.getAudioTracks()[0];
  const micId = old?.getSettings().deviceId;
  // The microphone is let go first: some systems open a device with one
  // set of processing settings at a time.
  old?.stop();
  let audio;
  try {
    audio = forMusic(await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(micId) }));
  } catch (err) {
    setStatus(mediaErrorMessage(err), "error");
    return;
  }
  if (old) stream.removeTrack(old);
  stream.addTrack(audio.getAudioTracks()[0]);
  applyToggles();
  await sendTracks();
}

function showHeadphones() {
  headphonesYes.checked = headphones;
  headphonesNo.checked = !headphones;
  document.getElementById("headphones-on").hidden = !headphones;
  document.getElementById("headphones-off").hidden = headphones;
}

function publish() {
  const { holder, onState } = track("publish", sendState);
  const session = new Session({
    endpoint: `${base}/singers/${slot}/whip`,
    token,
    onState,
    // A slot that is connected once this page's session is gone is sung
    // from somewhere else.
    async slotTaken() {
      const b = await api(base);
      return Boolean(b.singers?.find((s) => s.slot === slot)?.connected);
    },
    // Tracks are read when each connection is made, so a reconnect
    // sends the devices picked last.
    setup(pc) {
      const video = stream.getVideoTracks()[0];
      const audio = stream.getAudioTracks()[0];
      const vt = pc.addTransceiver(video ?? "video", { direction: "sendonly", streams: [stream] });
      preferH264(vt);
      pc.addTransceiver(audio ?? "audio", { direction: "sendonly", streams: [stream] });
    },
  });
  publisher = Object.assign(holder, { session });
  session.start();
}

function subscribe() {
  const { holder, onState } = track("subscribe", recvState);
  const session = new Session({
    endpoint: `${base}/singers/${other}/whep`,
    token,
    onState,
    setup(pc) {
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
      const media = new MediaStream();
      pc.addEventListener("track", (e) => {
        media.addTrack(e.track);
        if (e.track.kind === "video") {
          e.track.addEventListener("unmute", () => { opponentMedia = true; report(); });
          e.track.addEventListener("mute", () => { opponentMedia = false; report(); });
        }
      });
      opponentMedia = false;
      remote.srcObject = media;
      playRemote();
    },
  });
  subscriber = Object.assign(holder, { session });
  session.start();
}

// playRemote starts the opponent with sound; where the browser wants a
// gesture first, a button asks for one.
function playRemote() {
  remote.play().then(() => {
    listenButton.hidden = true;
  }).catch((err) => {
    if (err.name === "NotAllowedError") listenButton.hidden = false;
  });
}

function showBattle(b) {
  battle = b;
  const me = singerName(b, slot);
  document.title = `singoff: ${b.title} (${me})`;
  setText("heading", `${b.title}: ${me}`);
  setText("remote-caption", `${singerName(b, other)}, your opponent`);
  setText("round", roundLine(b));
  showTurn(b);
  showRematch(b);
  if (b.state === "ended") battleEnded();
}

// showTurn tells the singer when to sing; it runs on every tick.
function showTurn(b) {
  let text;
  if (b.winner != null || b.state === "ended") {
    const result = resultText(b);
    if (!result) text = "The battle has ended.";
    else if (b.winner === slot) text = `You won! ${result}`;
    else text = result;
  } else if (!(b.round > 0)) {
    text = "Waiting for the host to start.";
  } else if (b.turn === slot) {
    text = "Your turn";
  } else if (b.turn === other) {
    text = "Opponent's turn";
  } else {
    text = `Round ${b.round} is over: the watchers are voting.`;
  }
  setText("turn", text);
  document.getElementById("format").classList.toggle("mine", b.turn === slot && b.state !== "ended");
  const left = secondsLeft(b);
  const breakLeft = votingSecondsLeft(b);
  let countdown = "";
  if (left != null) countdown = `— ${clock(left)} left`;
  else if (breakLeft != null && b.round < b.rounds) countdown = `— round ${b.round + 1} starts in ${clock(breakLeft)}`;
  setText("countdown", countdown);
}

function follow() {
  const chat = new Chat(id, { token, role: "singer" });
  stopFollowing = followBattle(id, {
    onBattle(b) {
      showBattle(b);
      chat.setBattle(b);
    },
    onChat: (c) => chat.change(c),
    onStreamOpen: () => chat.resync(),
    onMissing() {
      fail("This battle does not exist.");
      publisher?.session.stop();
      subscriber?.session.stop();
    },
  });
  ticker(() => {
    if (battle) showTurn(battle);
  });
}

async function main() {
  if (!slot) {
    fail("This page needs a singer slot, 1 or 2.");
    return;
  }
  if (!token) {
    fail("Open this page with your invite link: it carries your singer token.");
    return;
  }
  try {
    const b = await api(base);
    showBattle(b);
    if (b.state === "ended") return;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      fail("This battle does not exist.");
      return;
    }
    // Anything else: the sessions will retry and say so.
  }
  follow();
  if (!navigator.mediaDevices?.getUserMedia) {
    fail("This browser gives the camera only to secure (https) pages.");
    return;
  }
  setStatus("Asking for your camera and microphone…");
  try {
    stream = forMusic(await navigator.mediaDevices.getUserMedia(constraints()));
  } catch (err) {
    fail(mediaErrorMessage(err));
    return;
  }
  local.srcObject = stream;
  applyToggles();
  fillDevicePickers().catch(() => {});
  publish();
  subscribe();
}

showHeadphones();
headphonesYes.addEventListener("change", () => setHeadphones(true));
headphonesNo.addEventListener("change", () => setHeadphones(false));
takeBackButton.addEventListener("click", () => location.reload());
muteButton.addEventListener("click", () => { muted = !muted; applyToggles(); });
cameraButton.addEventListener("click", () => { cameraOff = !cameraOff; applyToggles(); });
listenButton.addEventListener("click", playRemote);
cameraSelect.addEventListener("change", switchDevices);
micSelect.addEventListener("change", switchDevices);
leaveButton.addEventListener("click", async () => {
  disableControls();
  await Promise.all([publisher?.session.stop(), subscriber?.session.stop()]);
  stream?.getTracks().forEach((t) => t.stop());
});
navigator.mediaDevices?.addEventListener?.("devicechange", () => {
  if (stream) fillDevicePickers().catch(() => {});
});
// Back online: do not wait out the backoff.
window.addEventListener("online", () => {
  publisher?.session.retryNow();
  subscriber?.session.retryNow();
});
window.addEventListener("pagehide", () => {
  publisher?.session.stopOnUnload();
  subscriber?.session.stopOnUnload();
});

main();
// A page restored from the back-forward cache has stopped its sessions.
window.addEventListener("pageshow", (e) => {
  if (e.persisted) location.reload();
});
