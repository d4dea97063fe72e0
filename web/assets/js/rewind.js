// The watch page's program: the live LL-HLS stream, or, when the watcher
// goes back, the recording of the battle so far (its EVENT playlist,
// /vod/{id}/index.m3u8), with one way back to live. The battle's cues
// follow whichever plays (cues.js).
import { sleep } from "./common.js";
import { atPicture, beforeStart, lastRoundStart } from "./cues.js";
import { exists, play } from "./player.js";

const RETRY_MS = 2000;
// How long a recording may take to load before a jump into it is
// given up.
const SEEK_WAIT_MS = 10000;
const SWITCH = Symbol("switch");

export class Program {
  // video plays; cues is the page's CueTimeline; liveURL and
  // recordingURL are the battle's playlists; status(text, level) tells
  // the watcher what is happening; onMode(rewound) is called when the
  // program moves between live and the recording.
  constructor({ video, cues, liveURL, recordingURL, status, onMode = () => {} }) {
    Object.assign(this, { video, cues, liveURL, recordingURL, status, onMode });
    this.player = null;
    this.target = { live: true };
    this.stopped = false;
    this.interrupt = () => {};
  }

  // rewound tells whether the recording plays rather than the live
  // stream.
  get rewound() {
    return !this.target.live;
  }

  // run plays until stop, waiting for the stream to exist and starting
  // over whenever playback breaks.
  async run() {
    while (!this.stopped) {
      const target = this.target;
      const url = target.live ? this.liveURL : this.recordingURL;
      if (!(await exists(url))) {
        if (this.stopped) return;
        this.status(target.live
          ? "Waiting for singers: the program starts when the first one goes live."
          : "The recording is not there yet.", "info");
        await sleep(RETRY_MS);
        continue;
      }
      if (this.stopped || target !== this.target) continue;
      this.status(target.live ? "Loading the program…" : "Loading the recording…", "info");
      this.cues.clear();
      const broken = new Promise((resolve) => { this.interrupt = resolve; });
      this.player = await play(this.video, url, {
        live: target.live,
        onFatal: this.interrupt,
        onCue: (c) => this.cues.add(c),
      });
      if (this.player && !target.live) this.jump(target);
      this.video.play().catch(() => {});
      const reason = await broken;
      this.player?.destroy();
      this.player = null;
      if (this.stopped) return;
      if (reason === SWITCH) continue;
      this.status(`Lost the ${target.live ? "program" : "recording"} (${reason}): reconnecting…`, "warn");
      await sleep(RETRY_MS);
    }
  }

  stop() {
    this.stopped = true;
    this.interrupt(SWITCH);
  }

  switchTo(target) {
    const was = this.rewound;
    this.target = target;
    this.interrupt(SWITCH);
    if (was !== this.rewound) this.onMode(this.rewound);
  }

  // pictureDate is the program's clock at the picture shown, or null.
  pictureDate() {
    return this.player?.dateAt(this.cues.time) ?? null;
  }

  // view is battle b as the picture shows it.
  view(b) {
    if (this.cues.cues.length) return atPicture(b, this.cues.cues, this.cues.time);
    return beforeStart(b, this.pictureDate());
  }

  // canRewind tells whether the picture can be found in the recording.
  canRewind() {
    return this.pictureDate() !== null;
  }

  // rewind goes seconds back from the picture shown: within the
  // recording, or into it from live.
  rewind(seconds) {
    const date = this.pictureDate();
    if (!date) return;
    const at = new Date(date.getTime() - seconds * 1000);
    if (this.rewound) this.seek({ date: at });
    else this.switchTo({ live: false, date: at });
  }

  // lastRound is the first turn's cue of the latest round the picture
  // has reached, or null.
  lastRound() {
    return lastRoundStart(this.cues.cues, this.cues.time);
  }

  // replayRound goes to the start of the latest round the picture has
  // reached, in the recording.
  replayRound() {
    const cue = this.lastRound();
    if (!cue) return;
    if (this.rewound) this.seek({ cue: cue.id });
    else this.switchTo({ live: false, cue: cue.id });
  }

  // live goes back to the live program.
  live() {
    if (this.rewound) this.switchTo({ live: true });
  }

  // latency is how far behind live the picture is, in seconds, or null.
  latency() {
    return this.player?.latency() ?? null;
  }

  // timeOf is where target ({date} or {cue: id}) is on the playing
  // recording's timeline, or null while the player does not know yet.
  timeOf(target) {
    if (target.cue) return this.cues.cues.find((c) => c.id === target.cue)?.start ?? null;
    return this.player?.timeAt(target.date) ?? null;
  }

  seek(target) {
    const t = this.timeOf(target);
    if (t !== null) this.video.currentTime = t;
  }

  // jump seeks the recording that has just started to target once its
  // playlist is known.
  async jump(target) {
    const player = this.player;
    const until = Date.now() + SEEK_WAIT_MS;
    while (this.player === player && Date.now() < until) {
      const t = this.timeOf(target);
      if (t !== null) {
        this.video.currentTime = t;
        return;
      }
      await sleep(100);
    }
    if (this.player === player) this.status("Could not find that moment in the recording.", "warn");
  }
}

// REWIND_SECONDS is how far one press of the rewind button goes back.
export const REWIND_SECONDS = 30;

// rewindControls wires the watch page's buttons to program: rewind
// (back REWIND_SECONDS), replayRound (the start of the latest round) and
// goLive. It returns update(), which shows each button when it can act;
// call it now and then and when the program changes mode.
export function rewindControls(program, { rewind, replayRound, goLive }) {
  rewind.addEventListener("click", () => program.rewind(REWIND_SECONDS));
  replayRound.addEventListener("click", () => program.replayRound());
  goLive.addEventListener("click", () => program.live());
  return function update() {
    rewind.hidden = !program.canRewind();
    const round = program.lastRound();
    replayRound.hidden = !round;
    if (round) {
      const text = `Replay round ${round.data.ROUND}`;
      if (replayRound.textContent !== text) replayRound.textContent = text;
    }
    goLive.hidden = !program.rewound;
  };
}
