// The battle's events as the stream carries them: the server writes each
// turn's start, each round's result and the battle's result into the
// playlists as EXT-X-DATERANGE, on the program's clock, and the player
// places them on its media timeline (players.js). Following the picture
// actually shown, the pages change the turn, the countdown and the
// result when the picture does, not when the events stream says so
// (about a second earlier, the player's distance behind live).

// The classes of the battle's date ranges, and their data:
// turn {ROUND, SLOT}, round {ROUND, VOTES-1, VOTES-2, WINNER},
// result {WINNER, SCORE-1, SCORE-2}.
export const TURN = "com.singoff.turn";
export const ROUND = "com.singoff.round";
export const RESULT = "com.singoff.result";

// A picture at media time t shows an event starting at start when
// start <= t + EPSILON: players compute both in floating point.
const EPSILON = 0.001;

// The order of events starting at the same time: a round's last turn
// ends, the round's result, then the battle's.
const ORDER = { [TURN]: 0, [ROUND]: 1, [RESULT]: 2 };

// opener is the slot that sings first in round r.
export const opener = (r) => (r % 2 === 1 ? 1 : 2);

function byStart(a, b) {
  return a.start - b.start || (ORDER[a.class] ?? 3) - (ORDER[b.class] ?? 3);
}

// known keeps the cues of the battle's classes, sorted.
function known(cues) {
  return cues.filter((c) => c.class in ORDER && Number.isFinite(c.start)).sort(byStart);
}

// atPicture is battle b as the picture at media time t shows it, given
// the cues of the stream: round, turn, turn_ends_at and winner come from
// the cues the picture has reached; the rest (names, votes, voting) is
// b's. A stream without cues (yet) leaves b as it is. now is the local
// clock turn_ends_at is written against, as the API's is read.
export function atPicture(b, cues, t, now = Date.now()) {
  const all = known(cues);
  if (!b || !all.length || !Number.isFinite(t)) return b;
  const reached = all.filter((c) => c.start <= t + EPSILON);
  const view = { ...b, turn: null, turn_ends_at: null, winner: null };
  let state = null;
  for (const c of reached) {
    const round = Number(c.data.ROUND);
    if (c.class === TURN) state = { round, turn: Number(c.data.SLOT), end: c.end };
    else if (c.class === ROUND) state = { round, turn: null };
    else if (c.class === RESULT) view.winner = Number(c.data.WINNER);
  }
  if (!state) {
    // The picture is before every turn and round the stream has told
    // of: the state just before the first of them.
    const next = all.find((c) => c.class === TURN || c.class === ROUND);
    if (!next) return { ...b, winner: view.winner };
    const round = Number(next.data.ROUND);
    if (next.class === ROUND) state = { round, turn: null };
    else if (Number(next.data.SLOT) === opener(round)) state = { round: round - 1, turn: null };
    // The opener's turn ends where the other's begins.
    else state = { round, turn: opener(round), end: next.start };
  }
  view.round = state.round;
  if (state.turn && t < state.end - EPSILON) {
    view.turn = state.turn;
    view.turn_ends_at = Number.isFinite(state.end) ? new Date(now + (state.end - t) * 1000).toISOString() : null;
  }
  return view;
}

// beforeStart is what a page shows of battle b before any cue has come
// when the picture is dated (pictureDate, the program's clock): a battle
// whose first turn starts after the picture has not started in it. The
// events stream tells of the start a little before the playlist does.
export function beforeStart(b, pictureDate) {
  if (!b || !pictureDate || b.round !== 1 || b.turn !== opener(1) || !b.turn_ends_at) return b;
  const firstTurn = Date.parse(b.turn_ends_at) - (b.turn_seconds || 0) * 1000;
  if (!(pictureDate.getTime() < firstTurn)) return b;
  return { ...b, round: 0, turn: null, turn_ends_at: null, voting_open: false };
}

// chapters are the places to jump to in a recording: each round (its
// first turn) with its singers in order, and the result.
export function chapters(cues) {
  const out = [];
  for (const c of known(cues)) {
    const round = Number(c.data.ROUND);
    if (c.class === TURN) {
      const last = out.at(-1);
      if (last?.round === round && last.kind === "round") last.slots.push(Number(c.data.SLOT));
      else out.push({ kind: "round", round, start: c.start, slots: [Number(c.data.SLOT)] });
    } else if (c.class === RESULT) {
      out.push({ kind: "result", start: c.start, winner: Number(c.data.WINNER) });
    }
  }
  return out;
}

// lastRoundStart is the cue of the first turn of the latest round the
// picture at t has reached, or null.
export function lastRoundStart(cues, t) {
  const turns = known(cues).filter((c) => c.class === TURN && c.start <= t + EPSILON);
  if (!turns.length) return null;
  const round = Number(turns.at(-1).data.ROUND);
  return turns.find((c) => Number(c.data.ROUND) === round) ?? null;
}

// CueTimeline keeps the cues of the stream playing in video and follows
// the picture shown: onChange is called when a cue arrives or moves, and
// when the picture crosses the start or the end of one, on the frame
// that does.
export class CueTimeline {
  constructor(video, { onChange = () => {} } = {}) {
    this.video = video;
    this.onChange = onChange;
    this.byId = new Map();
    this.frameTime = null;
    this.crossed = "";
    const follow = (_now, meta) => {
      this.frameTime = meta.mediaTime;
      this.check();
      video.requestVideoFrameCallback(follow);
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(follow);
    else video.addEventListener("timeupdate", () => this.check());
    video.addEventListener("seeked", () => {
      this.frameTime = null;
      this.check();
    });
  }

  // time is the media time of the picture shown.
  get time() {
    return this.frameTime ?? this.video.currentTime;
  }

  get cues() {
    return [...this.byId.values()];
  }

  // add takes a cue from the player (players.js).
  add(cue) {
    const had = this.byId.get(cue.id);
    if (had && had.start === cue.start && had.end === cue.end && had.class === cue.class) return;
    this.byId.set(cue.id, cue);
    this.crossed = "";
    this.check();
  }

  // clear forgets the cues: another stream, another media timeline.
  clear() {
    this.byId.clear();
    this.frameTime = null;
    this.crossed = "";
    this.onChange();
  }

  // check calls onChange when the picture has crossed a cue's start or
  // end since the last look.
  check() {
    const t = this.time;
    let starts = 0;
    let ends = 0;
    for (const c of this.byId.values()) {
      if (c.start <= t + EPSILON) starts++;
      if (c.end <= t + EPSILON) ends++;
    }
    const crossed = `${this.byId.size}/${starts}/${ends}`;
    if (crossed === this.crossed) return;
    this.crossed = crossed;
    this.onChange();
  }

  // view is battle b as the picture shows it (atPicture).
  view(b) {
    return atPicture(b, this.cues, this.time);
  }
}
