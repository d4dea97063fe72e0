// The home page: live, upcoming and past battles, creating a battle, and
// the host's invite links, start and end controls for the battles this
// browser made.
import {
  api, ApiError, el, forgetHost, hostedIds, hostWatchURL, inviteURL, loadHost, plural,
  saveHost, setStatus, singersLine,
} from "./common.js";
import { resultText, roundLine } from "./format.js";
import { thumbnail } from "./thumbs.js";

const REFRESH_MS = 5000;
// Upcoming and past battles shown; live ones are all shown.
const LIST_LIMIT = 20;

const liveList = document.getElementById("live");
const upcomingList = document.getElementById("upcoming");
const pastList = document.getElementById("past");
const mine = document.getElementById("mine");
const mineSection = document.getElementById("mine-section");
const form = document.getElementById("create");

// hostPanels holds the rendered panel of each battle this browser hosts,
// so a refresh updates them in place without stealing focus.
const hostPanels = new Map();

// The status line summarises the list on the first load and after a
// failure; otherwise it keeps the last thing the user did.
let loaded = false;
let failing = false;

function battleItem(b) {
  const watch = b.state === "ended"
    ? el("a", { class: "button", href: `/b/${encodeURIComponent(b.id)}/replay` }, "Replay")
    : el("a", { class: "button primary", href: `/b/${encodeURIComponent(b.id)}` }, "Watch");
  const when = b.state === "ended"
    ? [b.ended_at && `ended ${new Date(b.ended_at).toLocaleString()}`, resultText(b)].filter(Boolean).join(" · ")
    : `${roundLine(b)} · ${plural(b.viewers || 0, "viewer", "viewers")} · ${singersLine(b)}`;
  const rematch = b.rematch_id
    ? el("a", { class: "button", href: `/b/${encodeURIComponent(b.rematch_id)}` }, "Rematch")
    : null;
  return el("li", {},
    thumbnail(b),
    el("span", { class: `badge ${b.state}` }, b.state),
    el("span", { class: "title", dir: "auto" }, b.title),
    el("span", { class: "meta", dir: "auto" }, when),
    watch,
    rematch);
}

function renderList(list, battles, emptyText) {
  const items = battles.length ? battles.map(battleItem) : [el("li", { class: "empty" }, emptyText)];
  list.replaceChildren(...items);
}

function copyRow(id, labelText, value) {
  const input = el("input", { id, readonly: true, value });
  const copy = el("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
        setStatus(`${labelText} copied.`, "ok");
      } catch {
        input.select();
        setStatus("Select the link and copy it.", "warn");
      }
    },
  }, "Copy");
  return el("div", { class: "invite" },
    el("label", { for: id }, labelText),
    el("div", { class: "row" }, el("div", { class: "grow" }, input), copy));
}

function hostPanel(b, creds) {
  const safe = b.id.replace(/[^A-Za-z0-9_-]/g, "");
  const state = el("span", { class: `badge ${b.state}` }, b.state);
  const facts = el("p", { class: "meta" });
  const start = el("button", { type: "button", class: "primary" }, "Start the battle");
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      await api(`/api/battles/${encodeURIComponent(b.id)}/start`, { method: "POST", token: creds.host_token });
      setStatus(`"${b.title}" has started: round 1.`, "ok");
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        setStatus(`"${b.title}" has already started.`, "warn");
      } else if (err instanceof ApiError && err.status === 401) {
        setStatus("This browser's host key for that battle is no longer valid.", "error");
      } else {
        setStatus(`Could not start the battle: ${err.message}`, "error");
      }
    } finally {
      start.disabled = false;
    }
    refresh();
  });
  const end = el("button", { type: "button", class: "danger" }, "End battle");
  end.addEventListener("click", async () => {
    if (!confirm(`End "${b.title}" for everyone?`)) return;
    end.disabled = true;
    try {
      await api(`/api/battles/${encodeURIComponent(b.id)}/end`, { method: "POST", token: creds.host_token });
      setStatus(`"${b.title}" has ended. Its replay is in Past battles.`, "ok");
    } catch (err) {
      end.disabled = false;
      if (err instanceof ApiError && err.status === 409) {
        setStatus(`"${b.title}" had already ended.`, "warn");
      } else if (err instanceof ApiError && err.status === 401) {
        setStatus("This browser's host key for that battle is no longer valid.", "error");
      } else {
        setStatus(`Could not end the battle: ${err.message}`, "error");
      }
    }
    refresh();
  });
  const panel = el("article", { class: "panel", "data-battle": b.id },
    el("h3", { class: "flush" }, b.title, " ", state),
    facts,
    // A host link opened elsewhere brings the host token but not the
    // singers' tokens.
    ...(creds.singer_tokens || []).map((t, i) =>
      copyRow(`invite-${safe}-${i + 1}`, `Singer ${i + 1} link`, inviteURL(b.id, i + 1, t))),
    copyRow(`host-${safe}`, "Your watch link (with the end control)", hostWatchURL(b.id, creds.host_token)),
    el("div", { class: "controls" },
      start,
      el("a", { class: "button", href: `/b/${encodeURIComponent(b.id)}` }, "Watch"),
      end));
  return {
    panel,
    update(nb) {
      state.textContent = nb.state;
      state.className = `badge ${nb.state}`;
      facts.textContent = `${roundLine(nb)} · ${plural(nb.viewers || 0, "viewer", "viewers")} · ${singersLine(nb)}`;
      start.hidden = nb.round > 0 || nb.state === "ended";
    },
  };
}

// hostedBattles reads the battles this browser hosts, whatever the lists
// show, and forgets the host keys of those that ended or that the server
// does not know.
async function hostedBattles() {
  const found = await Promise.all(hostedIds().map(async (id) => {
    try {
      return await api(`/api/battles/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) forgetHost(id);
      else throw err;
      return null;
    }
  }));
  return found.filter((b) => {
    if (b?.state === "ended") forgetHost(b.id);
    return b && b.state !== "ended";
  });
}

function renderMine(hosted) {
  const keep = new Set(hosted.map((b) => b.id));
  for (const [id, p] of hostPanels) {
    if (!keep.has(id)) {
      p.panel.remove();
      hostPanels.delete(id);
    }
  }
  for (const b of hosted) {
    let p = hostPanels.get(b.id);
    if (!p) {
      p = hostPanel(b, loadHost(b.id));
      hostPanels.set(b.id, p);
      mine.prepend(p.panel);
    }
    p.update(b);
  }
  mineSection.hidden = hosted.length === 0;
}

async function refresh() {
  try {
    // Each state its own list, so that however many battles wait, the
    // live ones and the past ones show.
    const [live, upcoming, past, hosted] = await Promise.all([
      api("/api/battles?state=live"),
      api(`/api/battles?state=waiting&limit=${LIST_LIMIT}`),
      api(`/api/battles?state=ended&limit=${LIST_LIMIT}`),
      hostedBattles(),
    ]).then(([l, u, p, h]) => [l.battles || [], u.battles || [], p.battles || [], h]);
    renderMine(hosted);
    renderList(liveList, live, "No battle is live right now. Start one!");
    renderList(upcomingList, upcoming, "No battle is waiting for its singers.");
    renderList(pastList, past, "No past battles yet.");
    if (!loaded || failing) {
      setStatus(live.length ? `${plural(live.length, "battle is", "battles are")} live.` : "No battle is live right now.");
    }
    loaded = true;
    failing = false;
  } catch (err) {
    failing = true;
    setStatus(`Could not load battles (${err.message}). Retrying…`, "warn");
  }
}

// createRequest is the form as the API takes it; singers are sent only
// when named, and a blank name stays the slot's default.
function createRequest() {
  const body = {
    title: form.title.value.trim(),
    rounds: Number(form.rounds.value),
    turn_seconds: Number(form.turn_seconds.value),
  };
  const names = [form.singer1.value.trim(), form.singer2.value.trim()];
  if (names[0] || names[1]) body.singers = names.map((n, i) => n || `Singer ${i + 1}`);
  return body;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = createRequest();
  if (!body.title) {
    setStatus("Give the battle a title.", "warn");
    form.title.focus();
    return;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  setStatus("Creating the battle…");
  try {
    const b = await api("/api/battles", { method: "POST", body });
    saveHost(b.id, { host_token: b.host_token, singer_tokens: b.singer_tokens, title: b.title });
    form.reset();
    await refresh();
    // Said once its panel with the links shows.
    setStatus(`"${b.title}" is ready. Send the singers their links.`, "ok");
    const first = hostPanels.get(b.id)?.panel.querySelector("input");
    first?.focus();
  } catch (err) {
    setStatus(`Could not create the battle: ${err.message}`, "error");
  } finally {
    submit.disabled = false;
  }
});

refresh();
setInterval(refresh, REFRESH_MS);
