// A WHIP or WHEP session (RFC 9725 and its WHEP sibling) that keeps
// itself up: it POSTs an offer, and after a drop it tears the peer
// connection down and POSTs again with backoff. For WHIP the server
// replaces the slot's old session with the new one, so a singer comes
// back to the same slot.
import { ApiError } from "./common.js";

// Answers that no retry can fix.
const FATAL = new Set([400, 401, 403, 404, 409, 413, 415, 422]);

const GATHER_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 15000;
// A "disconnected" connection often heals by itself; give it this long.
const DISCONNECT_GRACE_MS = 4000;
const BACKOFF_MAX_MS = 15000;

export class Session {
  // endpoint: the WHIP/WHEP URL; token: the Bearer token; setup(pc): adds
  // the transceivers; onState(state, detail): "connecting", "connected",
  // "reconnecting" (detail: ms until the next try), "stopped", or
  // "failed" (detail: the ApiError that ended it).
  constructor({ endpoint, token, setup, onState }) {
    this.endpoint = endpoint;
    this.token = token;
    this.setup = setup;
    this.onState = onState;
    this.pc = null;
    this.location = null;
    this.stopped = false;
    this.wake = null;
  }

  start() {
    this.run();
    return this;
  }

  // stop ends the session for good and DELETEs it on the server.
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
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

  // retryNow cuts a backoff wait short, e.g. when the network comes back.
  retryNow() {
    this.wake?.();
  }

  async run() {
    let attempt = 0;
    while (!this.stopped) {
      let delay;
      try {
        this.onState("connecting");
        await this.connect();
        if (this.stopped) return;
        attempt = 0;
        this.onState("connected");
        await this.dropped();
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
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  async connect() {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
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
    if (res.status !== 201) {
      let message = `${res.status} ${res.statusText}`;
      try {
        message = JSON.parse(body).error || message;
      } catch {
        // not JSON: keep the status line
      }
      const err = new ApiError(res.status, message);
      err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
      throw err;
    }
    const location = res.headers.get("Location");
    if (location) this.location = new URL(location, res.url).href;
    if (this.stopped) return;
    await pc.setRemoteDescription({ type: "answer", sdp: body });
    await connected(pc);
  }

  // dropped resolves when the connection has failed, closed, or stayed
  // disconnected past the grace period.
  dropped() {
    const pc = this.pc;
    return new Promise((resolve) => {
      let grace = null;
      const check = () => {
        const s = pc.connectionState;
        if (s === "failed" || s === "closed" || this.stopped) {
          clearTimeout(grace);
          resolve();
        } else if (s === "disconnected") {
          grace ??= setTimeout(resolve, DISCONNECT_GRACE_MS);
        } else if (grace) {
          clearTimeout(grace);
          grace = null;
        }
      };
      pc.addEventListener("connectionstatechange", check);
      this.wake = resolve;
      check();
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

// gathered waits for ICE gathering to finish, so the offer carries its
// candidates and no trickle PATCH is needed; it gives up after a while
// and sends what it has.
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function connected(pc) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connection timed out")), CONNECT_TIMEOUT_MS);
    const check = () => {
      const s = pc.connectionState;
      if (s === "connected") {
        clearTimeout(timer);
        resolve();
      } else if (s === "failed" || s === "closed") {
        clearTimeout(timer);
        reject(new Error(`connection ${s}`));
      }
    };
    pc.addEventListener("connectionstatechange", check);
    check();
  });
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
