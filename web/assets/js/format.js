// The battle format on every page: following a battle's changes, the
// singers' names, the turn clock, the rounds' votes and the result.
import { api, ApiError, plural } from "./common.js";

// A stream that fails this many times in a row without an event is given
// up for polling; the browser's own reconnects cover a short outage.
const STREAM_FAILURES_BEFORE_POLLING = 3;
const POLL_MS = 5000;
const STREAM_RETRY_MS = 30000;
// A turn or a round's voting that should have ended this long ago
// without news has its battle fetched once: a lost event must not leave
// a page stuck on a finished turn.
const OVERDUE_MS = 2000;

// followBattle calls onBattle with the whole battle object on every
// change, from the server's event stream; when the stream keeps failing
// it polls and tries the stream again now and then. onMissing is called
// once if the battle does not exist. An ended battle changes no more, so
// following stops after it. It returns a function that stops following.
//
// onChat gets every chat change the stream carries (a message, or
// {id, deleted: true}); onStreamOpen is called whenever the stream
// (re)opens, when a page reads what it may have missed.
export function followBattle(id, { onBattle, onMissing = () => {}, onChat = () => {}, onStreamOpen = () => {} }) {
  const base = `/api/battles/${encodeURIComponent(id)}`;
  let stopped = false;
  let source = null;
  let pollTimer = 0;
  let overdueTimer = 0;

  function stop() {
    stopped = true;
    source?.close();
    source = null;
    clearTimeout(pollTimer);
    clearTimeout(overdueTimer);
  }

  function deliver(b) {
    if (stopped) return;
    onBattle(b);
    if (b.state === "ended") stop();
    else expectChange(b);
  }

  // expectChange fetches the battle once if the next change its clock
  // says is due has not come; deadlines already past are left alone, so
  // a stuck server or a wrong local clock cannot make this a loop.
  function expectChange(b) {
    clearTimeout(overdueTimer);
    const now = Date.now();
    const due = [b.turn_ends_at, b.voting_ends_at].map((t) => Date.parse(t)).filter((t) => t > now);
    if (!due.length) return;
    overdueTimer = setTimeout(() => {
      api(base).then(deliver, () => {});
    }, Math.min(...due) - now + OVERDUE_MS);
  }

  function openStream() {
    if (stopped) return;
    let failures = 0;
    const es = new EventSource(`${base}/events`);
    source = es;
    es.addEventListener("battle", (e) => {
      failures = 0;
      let b;
      try {
        b = JSON.parse(e.data);
      } catch {
        return;
      }
      deliver(b);
    });
    es.addEventListener("open", () => {
      if (!stopped) onStreamOpen();
    });
    es.addEventListener("chat", (e) => {
      let change;
      try {
        change = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!stopped) onChat(change);
    });
    es.addEventListener("error", () => {
      failures++;
      // CLOSED: the server refused the stream (a 404, say); otherwise
      // the browser is already reconnecting with Last-Event-ID.
      if (es.readyState === EventSource.CLOSED || failures >= STREAM_FAILURES_BEFORE_POLLING) {
        es.close();
        if (source === es) source = null;
        poll(Date.now() + STREAM_RETRY_MS);
      }
    });
  }

  async function poll(streamAgainAt) {
    if (stopped) return;
    try {
      deliver(await api(base));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        stop();
        onMissing();
        return;
      }
    }
    if (stopped) return;
    if (Date.now() >= streamAgainAt) openStream();
    else pollTimer = setTimeout(() => poll(streamAgainAt), POLL_MS);
  }

  openStream();
  return stop;
}

// singerName is the name of the singer in slot.
export function singerName(b, slot) {
  return b.singers?.find((s) => s.slot === slot)?.name || `Singer ${slot}`;
}

// clock writes seconds as m:ss, rounding up: "0:01" until the very end.
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// secondsLeft is what is left of the current turn, or null between turns.
// A turn never has more than its length left, whatever this clock says.
export function secondsLeft(b, now = Date.now()) {
  if (b.turn == null || !b.turn_ends_at) return null;
  const left = (Date.parse(b.turn_ends_at) - now) / 1000;
  if (!Number.isFinite(left)) return null;
  return Math.min(Math.max(0, left), b.turn_seconds || Infinity);
}

// votingSecondsLeft is what is left of the round's voting, or null
// when it is closed.
export function votingSecondsLeft(b, now = Date.now()) {
  if (!b.voting_open || !b.voting_ends_at) return null;
  const left = (Date.parse(b.voting_ends_at) - now) / 1000;
  return Number.isFinite(left) ? Math.max(0, left) : null;
}

// ticker calls render now and about every second while the page lives:
// the countdowns run on the local clock between the server's events.
export function ticker(render) {
  render();
  setInterval(render, 250);
}

// roundLine says where the battle is: "Round 2 of 3", or its format
// before the start.
export function roundLine(b) {
  if (b.round > 0) return `Round ${b.round} of ${b.rounds}`;
  return `${plural(b.rounds || 0, "round", "rounds")}, ${clock(b.turn_seconds || 0)} a turn`;
}

// roundVotes is the [slot 1, slot 2] tally of round (1-based).
export function roundVotes(b, round) {
  const v = round > 0 ? b.votes?.[round - 1] : null;
  return [v?.[0] ?? 0, v?.[1] ?? 0];
}

// roundsWon counts the rounds each slot had more votes in.
export function roundsWon(b) {
  const won = [0, 0];
  for (const [a, c] of b.votes ?? []) {
    if (a > c) won[0]++;
    else if (c > a) won[1]++;
  }
  return won;
}

function votesTotal(b) {
  const total = [0, 0];
  for (const [a, c] of b.votes ?? []) {
    total[0] += a;
    total[1] += c;
  }
  return total;
}

// votingClosedReason says why a watcher cannot vote now, or "" when
// they can.
export function votingClosedReason(b) {
  if (b.state === "ended") return "The battle has ended.";
  if (!(b.round > 0)) return "Voting opens when the host starts the battle.";
  if (!b.voting_open) return `Voting for round ${b.round} has closed.`;
  return "";
}

// resultText says who won and how, or "" before there is a result.
export function resultText(b) {
  if (b.winner == null) return "";
  const rounds = roundsWon(b);
  const votes = votesTotal(b);
  if (b.winner !== 1 && b.winner !== 2) {
    const roundsPart = rounds[0] === rounds[1]
      ? `${plural(rounds[0], "round", "rounds")} each`
      : `${rounds[0]} rounds to ${rounds[1]}`;
    return `A draw: ${roundsPart}, ${plural(votes[0], "vote", "votes")} each.`;
  }
  const w = b.winner - 1;
  const l = 1 - w;
  const name = singerName(b, b.winner);
  if (rounds[w] !== rounds[l]) {
    return `${name} wins, ${plural(rounds[w], "round", "rounds")} to ${rounds[l]}.`;
  }
  return `${name} wins on votes: ${plural(rounds[w], "round", "rounds")} each, ` +
    `${plural(votes[w], "vote", "votes")} to ${votes[l]}.`;
}
