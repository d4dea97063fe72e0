// Helpers every page shares: the status line, the battles API, the
// tokens a browser keeps for a battle.

// setStatus writes what is happening into the page's aria-live line.
export function setStatus(text, level = "info") {
  const el = document.getElementById("status");
  if (!el) return;
  if (el.textContent !== text) el.textContent = text;
  el.dataset.level = level;
}

// setText sets an element's text only when it changes: rewriting the
// same text would make screen readers say it again.
export function setText(elementId, text) {
  const node = document.getElementById(elementId);
  if (node && node.textContent !== text) node.textContent = text;
}

// ApiError is a non-2xx answer of the API, with its status and message.
// retryAfter is the seconds a 429 answer asks to wait, or 0.
export class ApiError extends Error {
  constructor(status, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// api calls the battles API and returns the decoded JSON answer; it throws
// ApiError on an error answer and TypeError when the network fails.
export async function api(path, { method = "GET", token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    cache: "no-store",
    // Votes are counted per watcher by an HttpOnly cookie.
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const retryAfter = Number(res.headers.get("Retry-After")) || 0;
    throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`, retryAfter);
  }
  return data;
}

// battleIdFromPath reads {id} out of /b/{id}/...
export function battleIdFromPath() {
  const m = location.pathname.match(/^\/b\/([^/]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

// takeFragment reads the #key=value pairs of the URL and removes them
// from the address bar, so a token does not linger on screen or in
// history.
export function takeFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return params;
}

// Host credentials live in localStorage keyed by battle id, so the host
// keeps the end control and the invite links across reloads.
const hostKey = (id) => `singoff:host:${id}`;

export function saveHost(id, creds) {
  localStorage.setItem(hostKey(id), JSON.stringify(creds));
}

// loadHost returns {host_token, singer_tokens, title} or null.
export function loadHost(id) {
  try {
    return JSON.parse(localStorage.getItem(hostKey(id)));
  } catch {
    return null;
  }
}

export function forgetHost(id) {
  localStorage.removeItem(hostKey(id));
}

// hostedIds lists the battles this browser keeps host credentials for.
export function hostedIds() {
  const prefix = hostKey("");
  const ids = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key?.startsWith(prefix)) ids.push(key.slice(prefix.length));
  }
  return ids;
}

// isHostToken asks the server whether token is battle id's host token.
export async function isHostToken(id, token) {
  try {
    await api(`/api/battles/${encodeURIComponent(id)}/host`, { token });
    return true;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 404)) return false;
    throw err;
  }
}

// inviteURL is a singer's link; the token rides in the fragment, which
// browsers never send to a server.
export function inviteURL(id, slot, token) {
  return `${location.origin}/b/${encodeURIComponent(id)}/sing/${slot}#token=${encodeURIComponent(token)}`;
}

export function hostWatchURL(id, hostToken) {
  return `${location.origin}/b/${encodeURIComponent(id)}#host=${encodeURIComponent(hostToken)}`;
}

// singersLine says which singers are on, e.g. "1 on · 2 off".
export function singersLine(battle) {
  return (battle.singers || [])
    .map((s) => `${s.name || `Singer ${s.slot}`}: ${s.connected ? "on" : "off"}`)
    .join(" · ");
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// el builds an element: el("a", {href: "/"}, "home").
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// showRematch links the page to battle b's rematch once there is one
// (#rematch holding #rematch-link).
export function showRematch(b) {
  const box = document.getElementById("rematch");
  if (!box || !b.rematch_id) return;
  document.getElementById("rematch-link").href = `/b/${encodeURIComponent(b.rematch_id)}`;
  box.hidden = false;
}

// offerRematch makes battle id's rematch as its host, keeps the new
// battle's host credentials like a battle made on the home page, and
// returns it.
export async function offerRematch(id, hostToken) {
  const b = await api(`/api/battles/${encodeURIComponent(id)}/rematch`, { method: "POST", token: hostToken });
  saveHost(b.id, { host_token: b.host_token, singer_tokens: b.singer_tokens, title: b.title });
  return b;
}
