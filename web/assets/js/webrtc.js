// A WHIP or WHEP session (RFC 9725 and its WHEP sibling) that keeps
// itself up. It asks the endpoint for its ICE servers (STUN, and TURN
// with credentials) and POSTs an offer. When the connection drops it
// restarts ICE on the same session first (a PATCH with new credentials,
// RFC 9725 4.4.2); when the server no longer has the session, or the
// restarts do not connect, it makes a new session, with backoff. For WHIP
// the server replaces the slot's old session with the new one, so a
// singer comes back to the same slot; but a session that finds its slot
// taken by another tab stops rather than take it back.
import { ApiError } from "./common.js";
import { fetchIceServers } from "./iceservers.js";

// Answers that no retry can fix.
const FATAL = new Set([400, 401, 403, 404, 409, 413, 415, 422]);
// Answers to an ICE restart that say "try again later" rather than "make
// a new session".
const BUSY = new Set([429, 503]);

const GATHER_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 15000;
// A "disconnected" connection often heals by itself; give it this long
// before restarting ICE.
const DISCONNECT_GRACE_MS = 2000;
// After a drop, ICE restarts are tried for this long before a new session.
const RESTART_WINDOW_MS = 20000;
// One ICE restart gets this long to connect.
const RESTART_CONNECT_MS = 8000;
const BACKOFF_MAX_MS = 15000;

export class Session {
  // endpoint: the WHIP/WHEP URL; token: the Bearer token; setup(pc): adds
  // the transceivers; onState(state, detail): "connecting", "connected",
  // "reconnecting" (detail: ms until the next try, 0 when trying now),
  // "stopped", "replaced" (slotTaken said so), or "failed" (detail: the
  // ApiError that ended it). slotTaken, if given, is asked before a
  // session that was up is made anew, once the old one is gone from the
  // server: true when another client holds the slot now.
  constructor({ endpoint, token, setup, onState, slotTaken }) {
    this.endpoint = endpoint;
    this.token = token;
    this.setup = setup;
    this.onState = onState;
    this.slotTaken = slotTaken;
    this.pc = null;
    this.location = null;
    this.stopped = false;
    // wake cuts the current wait short (the network is back); cancel
    // ends it (stop).
    this.wake = null;
    this.cancel = null;
  }

  start() {
    this.run();
    return this;
  }

  // stop ends the session for good and DELETEs it on the server.
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.cancel?.();
    await this.teardown();
    this.onState("stopped");
  }

  // stopOnUnload DELETEs the session from a pagehide handler: keepalive
  // lets the request outlive the page.
  stopOnUnload() {
    this.stopped = true;
    if (this.location) {
      fetch(this.location, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${this.token}` },
        keepalive: true,
      }).catch(() => {});
      this.location = null;
    }
    this.pc?.close();
  }

  // retryNow cuts a wait short, e.g. when the network comes back: a
  // backoff, or the grace given a disconnected connection. A connected
  // session is left alone.
  retryNow() {
    this.wake?.();
  }

  async run() {
    let attempt = 0;
    let wasUp = false;
    while (!this.stopped) {
      let delay;
      try {
        if (wasUp && this.slotTaken && (await this.slotTaken())) {
          this.stopped = true;
          this.onState("replaced");
          return;
        }
        this.onState("connecting");
        await this.connect();
        if (this.stopped) return;
        attempt = 0;
        wasUp = true;
        this.onState("connected");
        await this.keepUp();
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ApiError && FATAL.has(err.status)) {
          await this.teardown();
          this.stopped = true;
          this.onState("failed", err);
          return;
        }
        if (err instanceof ApiError && err.retryAfter) delay = err.retryAfter * 1000;
        console.warn("singoff: session", this.endpoint, err);
      }
      await this.teardown();
      if (this.stopped) return;
      delay ??= Math.min(1000 * 2 ** attempt, BACKOFF_MAX_MS) * (0.75 + Math.random() / 2);
      attempt++;
      this.onState("reconnecting", delay);
      await this.pause(delay);
    }
  }

  async connect() {
    const iceServers = await fetchIceServers(this.endpoint, this.token);
    if (this.stopped) return;
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", iceServers });
    this.pc = pc;
    this.setup(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const res = await fetch(this.endpoint, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp,
      cache: "no-store",
    });
    const body = await res.text();
    if (res.status !== 201) throw answerError(res, body);
    const location = res.headers.get("Location");
    if (location) this.location = new URL(location, res.url).href;
    if (this.stopped) return;
    await pc.setRemoteDescription({ type: "answer", sdp: body });
    await connected(pc, CONNECT_TIMEOUT_MS, false);
  }

  // keepUp returns when the connection is lost and restarting ICE did
  // not bring it back.
  async keepUp() {
    while (!this.stopped) {
      await this.dropped();
      if (this.stopped || !(await this.restart())) return;
      this.onState("connected");
    }
  }

  // dropped resolves when the connection has failed, closed, or stayed
  // disconnected past the grace period (cut short when the network is
  // back). The singer hears of a disconnection at once.
  dropped() {
    const pc = this.pc;
    return new Promise((resolve) => {
      let grace = null;
      const done = () => {
        clearTimeout(grace);
        pc.removeEventListener("connectionstatechange", check);
        this.wake = this.cancel = null;
        resolve();
      };
      const check = () => {
        const s = pc.connectionState;
        if (this.stopped || s === "failed" || s === "closed") {
          done();
        } else if (s === "disconnected" || s === "new") {
          if (grace) return;
          grace = setTimeout(done, DISCONNECT_GRACE_MS);
          this.onState("reconnecting", 0);
        } else if (grace) {
          clearTimeout(grace);
          grace = null;
          this.onState("connected");
        }
      };
      pc.addEventListener("connectionstatechange", check);
      this.wake = () => {
        if (pc.connectionState !== "connected") done();
      };
      this.cancel = done;
      check();
    });
  }

  // restart restarts ICE on the session until it is connected again
  // (true) or a new session is needed (false): the server no longer has
  // the session or refused the restart, or RESTART_WINDOW_MS passed.
  async restart() {
    const deadline = Date.now() + RESTART_WINDOW_MS;
    for (let attempt = 0; !this.stopped && Date.now() < deadline; attempt++) {
      if (this.pc.connectionState === "connected") return true;
      this.onState("reconnecting", 0);
      try {
        await this.restartIce();
        await connected(this.pc, RESTART_CONNECT_MS, true);
        return true;
      } catch (err) {
        if (this.stopped) return false;
        console.warn("singoff: ICE restart", this.endpoint, err);
        if (err instanceof ApiError && !BUSY.has(err.status)) return false;
      }
      await this.pause(Math.min(500 * 2 ** attempt, 4000));
    }
    return false;
  }

  // restartIce gathers with new ICE credentials and PATCHes them to the
  // session; the server's fragment in the answer carries its own.
  async restartIce() {
    const pc = this.pc;
    if (!this.location) throw new ApiError(404, "the server gave no session to restart");
    const answer = pc.currentRemoteDescription;
    if (pc.signalingState !== "stable") await pc.setLocalDescription({ type: "rollback" });
    await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
    await gathered(pc);
    let res;
    let body;
    try {
      res = await fetch(this.location, {
        method: "PATCH",
        headers: {
          Authorization: `Bearer ${this.token}`,
          "Content-Type": "application/trickle-ice-sdpfrag",
          "If-Match": "*",
        },
        body: iceFragment(pc.localDescription.sdp),
        cache: "no-store",
      });
      body = await res.text();
    } catch (err) {
      await pc.setLocalDescription({ type: "rollback" });
      throw err;
    }
    if (res.status !== 200) {
      await pc.setLocalDescription({ type: "rollback" });
      throw answerError(res, body);
    }
    await pc.setRemoteDescription({ type: "answer", sdp: withIceFragment(answer.sdp, body) });
  }

  // pause waits ms; retryNow cuts it short, stop ends it.
  pause(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = this.cancel = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = this.cancel = done;
    });
  }

  async teardown() {
    const pc = this.pc;
    const location = this.location;
    this.pc = null;
    this.location = null;
    pc?.close();
    if (location) {
      try {
        await fetch(location, {
          method: "DELETE",
          headers: { Authorization: `Bearer ${this.token}` },
          signal: AbortSignal.timeout(2000),
        });
      } catch {
        // The server drops a dead session by itself; nothing to do.
      }
    }
  }
}

// answerError is the ApiError of an error answer to a POST or PATCH: the
// JSON error message, else the status line; Retry-After kept.
function answerError(res, body) {
  let message = `${res.status} ${res.statusText}`;
  try {
    message = JSON.parse(body).error || message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, message, Number(res.headers.get("Retry-After")) || 0);
}

// gathered waits for ICE gathering to finish, so the offer carries its
// candidates and no trickle PATCH is needed; it gives up after a while
// and sends what it has.
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// connected waits until pc is connected, at most ms. A failed connection
// ends the wait, unless ICE is being restarted (throughFailed): then the
// old state may still read "failed".
function connected(pc, ms, throughFailed) {
  return new Promise((resolve, reject) => {
    const finish = (err) => {
      clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      const s = pc.connectionState;
      if (s === "connected") finish();
      else if (s === "closed" || (s === "failed" && !throughFailed)) finish(new Error(`connection ${s}`));
    };
    const timer = setTimeout(() => finish(new Error("connection timed out")), ms);
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

// iceFragment is the trickle-ICE fragment (RFC 8840) that restarts ICE
// with a new local offer: its credentials, and the first media section
// with its candidates (with max-bundle only that one gathers).
export function iceFragment(sdp) {
  const lines = sdp.split(/\r?\n/);
  const first = lines.findIndex((l) => l.startsWith("m="));
  let next = lines.findIndex((l, i) => i > first && l.startsWith("m="));
  if (next < 0) next = lines.length;
  const section = lines.slice(first, next);
  const frag = [
    lines.find((l) => l.startsWith("a=ice-ufrag:")),
    lines.find((l) => l.startsWith("a=ice-pwd:")),
    lines[first],
    section.find((l) => l.startsWith("a=mid:")),
    ...section.filter((l) => l.startsWith("a=candidate:")),
    "a=end-of-candidates",
  ];
  return frag.filter(Boolean).join("\r\n") + "\r\n";
}

// withIceFragment is the remote answer sdp with the ICE credentials and
// candidates of the server's restart fragment frag in place of the old.
export function withIceFragment(sdp, frag) {
  const f = frag.split(/\r?\n/);
  const ufrag = f.find((l) => l.startsWith("a=ice-ufrag:"));
  const pwd = f.find((l) => l.startsWith("a=ice-pwd:"));
  const candidates = new Map();
  let mid = "";
  let index = -1;
  for (const l of f) {
    if (l.startsWith("m=")) mid = String(++index);
    else if (l.startsWith("a=mid:")) mid = l.slice("a=mid:".length);
    else if (l.startsWith("a=candidate:")) candidates.set(mid, [...(candidates.get(mid) ?? []), l]);
  }
  const out = [];
  let section = null;
  const close = () => {
    if (!section) return;
    out.push(...section.lines);
    const mine = candidates.get(section.mid) ?? [];
    if (mine.length) out.push(...mine, "a=end-of-candidates");
  };
  for (const l of sdp.split(/\r?\n/)) {
    if (l === "" || l.startsWith("a=candidate:") || l === "a=end-of-candidates") continue;
    if (l.startsWith("m=")) {
      close();
      section = { lines: [l], mid: null };
      continue;
    }
    let line = l;
    if (ufrag && l.startsWith("a=ice-ufrag:")) line = ufrag;
    else if (pwd && l.startsWith("a=ice-pwd:")) line = pwd;
    if (!section) {
      out.push(line);
      continue;
    }
    section.lines.push(line);
    if (l.startsWith("a=mid:")) section.mid = l.slice("a=mid:".length);
  }
  close();
  return out.join("\r\n") + "\r\n";
}

// preferH264 orders the video codecs H264 (packetization-mode 1) first,
// then VP8, the two the server takes, and drops the others; the
// retransmission and FEC entries stay.
export function preferH264(transceiver) {
  const caps = RTCRtpSender.getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const type = (c) => c.mimeType.toLowerCase();
  const h264 = caps.codecs.filter((c) => type(c) === "video/h264" && /packetization-mode=1/.test(c.sdpFmtpLine || ""));
  // Constrained baseline first: every decoder takes it.
  h264.sort((a, b) => Number(!/profile-level-id=42e0/.test(a.sdpFmtpLine)) - Number(!/profile-level-id=42e0/.test(b.sdpFmtpLine)));
  const vp8 = caps.codecs.filter((c) => type(c) === "video/vp8");
  const extras = caps.codecs.filter((c) => /\/(rtx|red|ulpfec)$/.test(type(c)));
  if (h264.length + vp8.length === 0) return;
  transceiver.setCodecPreferences([...h264, ...vp8, ...extras]);
}
