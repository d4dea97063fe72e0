// The battle's chat, on the watch and sing pages: its messages (from the
// history, then the events stream), the form to post, and the host's and
// singers' moderation. Everything users wrote is set as text
// (textContent), never as HTML, with dir="auto" so right-to-left
// scripts lay out right.
import { api, ApiError, el, setText } from "./common.js";

const NAME_KEY = "singoff:chat-name";
const PAGE = 500; // the server's most messages per history read

// chatHistory reads every message of battle id's chat, oldest first.
export async function chatHistory(id) {
  const base = `/api/battles/${encodeURIComponent(id)}/chat`;
  const all = [];
  for (;;) {
    const after = all.length ? `?after=${encodeURIComponent(all[all.length - 1].id)}` : "";
    const { messages } = await api(`${base}${after}`);
    all.push(...messages);
    if (messages.length < PAGE) return all;
  }
}

// messageItem is one message as a list item: the name and the text, as
// text. actions are buttons (moderation) put after it.
export function messageItem(m, actions = []) {
  return el("li", { class: m.slot ? "chat-msg singer" : "chat-msg", "data-id": m.id },
    el("span", { class: "chat-name", dir: "auto" }, m.name),
    " ",
    el("span", { class: "chat-text", dir: "auto" }, m.text),
    ...actions);
}

const byId = (a, b) => Number(a) - Number(b);

// chatPanel is the chat's heading, the host's mode switch, the list of
// messages, the form to post and the note under it: what the sing and
// watch pages' #chat section holds.
function chatPanel() {
  return [
    el("div", { class: "format-head" },
      el("h2", { id: "chat-heading", class: "flush" }, "Chat"),
      el("select", { id: "chat-mode", class: "chat-mode", "aria-label": "The chat's mode", hidden: true },
        el("option", { value: "on" }, "Chat on"),
        el("option", { value: "slow" }, "Slow mode"),
        el("option", { value: "off" }, "Chat off"))),
    el("ol", { id: "chat-list", class: "chat-list", "aria-live": "polite", "aria-label": "Messages" }),
    el("form", { id: "chat-form", class: "chat-form" },
      el("input", { id: "chat-name", dir: "auto", placeholder: "Your name", "aria-label": "Your name in the chat", autocomplete: "nickname" }),
      el("input", { id: "chat-text", dir: "auto", placeholder: "Say something", "aria-label": "Your message", autocomplete: "off" }),
      el("button", { type: "submit" }, "Send")),
    el("p", { id: "chat-note", class: "meta", "aria-live": "polite" }),
  ];
}

// Chat is the chat of one battle, drawn into the page's #chat section
// (chatPanel). token is the page's singer or host token, if any; role is
// "host", "singer" or "watcher".
export class Chat {
  constructor(id, { token = "", role = "watcher" } = {}) {
    document.getElementById("chat").replaceChildren(...chatPanel());
    this.id = id;
    this.base = `/api/battles/${encodeURIComponent(id)}`;
    this.token = token;
    this.role = role;
    this.items = new Map(); // message id → its <li>
    this.list = document.getElementById("chat-list");
    this.form = document.getElementById("chat-form");
    this.text = document.getElementById("chat-text");
    this.name = document.getElementById("chat-name");
    this.mode = document.getElementById("chat-mode");
    this.open = true; // the battle takes posts
    if (this.name) this.name.value = localStorage.getItem(NAME_KEY) || "";
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.post();
    });
    this.mode?.addEventListener("change", () => this.setMode(this.mode.value));
    this.showRole();
  }

  showRole() {
    if (this.name) this.name.hidden = this.role !== "watcher";
    if (this.mode) this.mode.hidden = this.role !== "host";
  }

  // becomeHost makes the page the host's (a host link adopted late):
  // the messages get their moderation buttons.
  becomeHost(token) {
    this.token = token;
    this.role = "host";
    this.showRole();
    for (const li of this.items.values()) li.remove();
    this.items.clear();
    this.resync();
  }

  // resync reads the whole history again: at the stream's every
  // (re)open, so what was missed (a deletion among it) is put right.
  async resync() {
    let messages;
    try {
      messages = await chatHistory(this.id);
    } catch (err) {
      this.note(`Could not load the chat: ${err.message}`);
      return;
    }
    const keep = new Set(messages.map((m) => m.id));
    const last = messages.length ? messages[messages.length - 1].id : "0";
    for (const [mid, li] of this.items) {
      // Newer ones came over the stream meanwhile.
      if (!keep.has(mid) && byId(mid, last) <= 0) {
        li.remove();
        this.items.delete(mid);
      }
    }
    messages.forEach((m) => this.add(m));
  }

  // change applies an `event: chat`: a message, or a deletion.
  change(c) {
    if (c.deleted) {
      this.items.get(c.id)?.remove();
      this.items.delete(c.id);
      return;
    }
    this.add(c);
  }

  add(m) {
    if (this.items.has(m.id)) return;
    const li = messageItem(m, this.actions(m));
    this.items.set(m.id, li);
    // In id order; nearly always at the end.
    let next = null;
    for (const [mid, other] of this.items) {
      if (byId(mid, m.id) > 0 && (!next || byId(mid, next.dataset.id) < 0)) next = other;
    }
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.insertBefore(li, next);
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  // actions are the moderation buttons of message m on this page.
  actions(m) {
    const out = [];
    if (this.role === "host") {
      out.push(el("button", { type: "button", class: "chat-action", onclick: () => this.remove(m) }, "Delete"));
    }
    if ((this.role === "host" || this.role === "singer") && !m.slot && m.name !== "Host") {
      out.push(el("button", { type: "button", class: "chat-action", onclick: () => this.mute(m) }, "Mute"));
    }
    return out;
  }

  note(text) {
    setText("chat-note", text);
  }

  // setBattle follows the battle object: the chat's mode, its end.
  setBattle(b) {
    this.open = b.state !== "ended" && b.chat_mode !== "off";
    for (const c of this.form.elements) c.disabled = !this.open;
    if (this.mode) this.mode.value = b.chat_mode || "on";
    if (b.state === "ended") this.note("The battle has ended: the chat is closed.");
    else if (b.chat_mode === "off") this.note("The host has turned the chat off.");
    else if (b.chat_mode === "slow") this.note("Slow mode: one message every 10 seconds.");
    else if (this.role === "watcher" && !this.name.value) this.note("Pick a name to chat.");
    else this.note("");
  }

  async post() {
    const text = this.text.value.trim();
    if (!text || !this.open) return;
    const body = { text };
    if (this.role === "watcher") {
      const name = this.name.value.trim();
      if (!name) {
        this.note("Pick a name first.");
        this.name.focus();
        return;
      }
      body.name = name;
    }
    try {
      const m = await api(`${this.base}/chat`, { method: "POST", token: this.token, body });
      if (body.name) localStorage.setItem(NAME_KEY, body.name);
      this.text.value = "";
      this.note("");
      this.add(m);
    } catch (err) {
      if (err instanceof ApiError && err.status === 429) {
        this.note(`${err.message}`);
      } else {
        this.note(`Your message was not sent: ${err.message}`);
      }
    }
  }

  async remove(m) {
    try {
      await api(`${this.base}/chat/${encodeURIComponent(m.id)}`, { method: "DELETE", token: this.token });
      this.change({ id: m.id, deleted: true });
    } catch (err) {
      this.note(`Could not delete the message: ${err.message}`);
    }
  }

  async mute(m) {
    try {
      await api(`${this.base}/mutes`, { method: "POST", token: this.token, body: { message: m.id } });
      this.note(`${m.name} is muted in this battle's chat.`);
    } catch (err) {
      this.note(`Could not mute: ${err.message}`);
    }
  }

  async setMode(mode) {
    try {
      await api(`${this.base}/chat/settings`, { method: "POST", token: this.token, body: { mode } });
    } catch (err) {
      this.note(`Could not change the chat: ${err.message}`);
    }
  }
}
