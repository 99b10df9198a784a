// One chat session: its messages, the reply streaming in, Stop, permissions, end and restore.
//
// The session stream sends the newest page of messages on every change (with, the first
// time, the cursor of the page before it) and each reply chunk once, with its sequence as
// the event id. Earlier messages load a page at a time, newest first, from the history API
// when the reader asks ("Load earlier messages", or scrolling to the top). A streaming reply grows by appending to one
// text node (no re-render per chunk); once finished it is swapped for the server's
// sanitised Markdown HTML.
import { api } from "./api.js";
import { SessionChanges } from "./diff.js";
import { $, badge, confirmDialog, h, showError } from "./dom.js";
import { live } from "./live.js";
import { duration, growReasoning, partCard, todoItems, usage, usageLine } from "./parts.js";
import { PermissionPrompts } from "./permissions.js";
import { Composer, queueControls } from "./composer.js";
import { TurnUndo } from "./undo.js";
import { QuestionPrompts } from "./questions.js";

const FINISHED = new Set(["completed", "failed", "interrupted", "aborted"]);
const BUSY = new Set(["pending", "processing", "streaming"]);
const STATUS_TEXT = {
  user: { pending: "queued" },
  assistant: { streaming: "writing…", aborted: "stopped", failed: "failed", interrupted: "interrupted" },
};

export const sessionName = (session) =>
  session.title ||
  `Session of ${new Date(session.created_at).toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" })}`;
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

export class Conversation {
  constructor({ onBack }) {
    this.list = $("messages");
    this.errorBox = $("chat-error");
    this.input = $("message-input");
    this.composer = new Composer(this.input);
    this.session = null;
    this.stream = null;
    // Follow the newest text while the reader is at the bottom; stay put once they scroll up.
    this.stuck = true;
    this.list.addEventListener("scroll", () => {
      this.stuck = this.nearBottom();
      if (this.list.scrollTop < 40 && this.earlier && !this.loadingEarlier) this.loadEarlier();
    });
    this.earlierButton = h("button", { type: "button", class: "secondary", id: "load-earlier" }, "Load earlier messages");
    this.earlierButton.addEventListener("click", () => this.loadEarlier());
    this.earlierItem = h("li", { class: "earlier" }, this.earlierButton);
    new ResizeObserver(() => this.stuck && this.scrollDown()).observe(this.list);
    $("back-to-sessions").addEventListener("click", onBack);
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.changes = new SessionChanges($("changes-panel"), $("changes-list"), $("changes-count"), (id) => this.entries.get(id)?.cards.get("turn-diff"));
    this.undo = new TurnUndo(this);
    $("stop").addEventListener("click", () => this.stop());
    $("end-session").addEventListener("click", () => this.end());
    $("restore-session").addEventListener("click", () => this.restore());
    $("rename-session").addEventListener("click", () => this.renaming(true));
    $("rename-cancel").addEventListener("click", () => this.renaming(false));
    $("rename-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.rename();
    });
  }

  get id() {
    return this.session?.chat_session_id ?? null;
  }

  open(session) {
    if (session.chat_session_id === this.id) {
      this.update(session);
      return;
    }
    this.close();
    this.session = session;
    this.entries = new Map(); // message_id -> {li, body, meta, text, finished, rendered}
    this.early = new Map(); // chunks for replies the message list has not shown yet
    this.earlyParts = new Map(); // parts for replies the message list has not shown yet
    this.steps = new Map(); // message_id -> Map(part_id -> step-finish body), for the cost lines
    this.lastSequence = null;
    this.todoSequence = -1;
    $("todo-panel").hidden = true;
    this.changes.reset();
    // Beside the conversation on a wide screen; folded above it on a phone until asked for.
    $("todo-panel").open = !window.matchMedia("(max-width: 48rem)").matches;
    this.loaded = false;
    this.earlier = null; // the cursor of the page before the oldest message shown
    this.loadingEarlier = false;
    this.pagedBack = false;
    this.stuck = true;
    this.prompts = new PermissionPrompts(session.chat_session_id, (messageId) => this.entries.get(messageId)?.prompts);
    this.questions = new QuestionPrompts((messageId) => this.entries.get(messageId)?.prompts);
    this.list.replaceChildren(h("li", { class: "progress" }, "Loading messages…"));
    showError(this.errorBox, "");
    $("conversation-empty").hidden = true;
    $("conversation-body").hidden = false;
    const base = `/api/sessions/${encodeURIComponent(session.chat_session_id)}/stream`;
    this.stream = live(() => (this.lastSequence === null ? base : `${base}?after=${this.lastSequence}`), {
      messages: (data) => this.onMessages(data.messages, data.earlier),
      chunk: (chunk) => this.onChunk(chunk),
      reasoning: (chunk) => this.onReasoning(chunk),
      part: (part) => this.onPart(part),
      snapshot: () => this.onSnapshot(),
      requests: (data) => (this.prompts.update(data.permissions), this.questions.update(data.questions)),
      error: (data) => showError(this.errorBox, data.error),
    });
    this.composer.setSession(session);
    this.update(session);
  }

  close() {
    this.stream?.close();
    this.prompts?.stop();
    this.questions?.stop();
    this.stream = null;
    this.session = null;
    this.renaming(false);
    $("conversation-body").hidden = true;
    $("conversation-empty").hidden = false;
  }

  update(session) {
    this.session = session;
    const ended = session.status === "terminated";
    $("session-title").textContent = sessionName(session);
    const agent = session.agent ? ` · ${session.agent}` : "";
    $("session-meta").replaceChildren(session.model, agent, " · ", badge(session.status), this.sessionUsage());
    $("end-session").hidden = ended;
    $("ended").hidden = !ended;
    $("composer").hidden = ended;
    this.undo.render();
  }

  // --- the stream -----------------------------------------------------------------

  onMessages(messages, earlier) {
    const first = !this.loaded;
    if (first) {
      this.loaded = true;
      this.list.replaceChildren();
    }
    // Where earlier messages start, unless the reader already paged back past it.
    if (earlier !== undefined && !this.pagedBack) this.showEarlier(earlier);
    this.list.querySelector(".empty")?.remove();
    if (messages.length === 0 && this.entries.size === 0) {
      this.list.append(h("li", { class: "empty" }, "No messages yet. Ask the agent something."));
    }
    const present = new Set(messages.map((m) => m.message_id));
    for (const [id, entry] of this.entries) {
      // A queued message its sender cancelled; older pages the reader loaded stay.
      if (!present.has(id) && entry.li.dataset.status === "pending") {
        entry.li.remove();
        this.entries.delete(id);
      }
    }
    for (const message of messages) {
      const entry = this.entries.get(message.message_id) ?? this.add(message);
      this.refresh(entry, message);
    }
    const busy = messages.some((m) => BUSY.has(m.status));
    $("stop").hidden = !busy;
    // Cards of requests that came before their reply was on the page.
    this.prompts.render();
    this.questions.render();
    this.renderFinished();
    this.undo.render();
    if (this.stuck) this.scrollDown();
  }

  showEarlier(cursor) {
    this.earlier = cursor;
    if (cursor) this.list.prepend(this.earlierItem);
    else this.earlierItem.remove();
  }

  // The page before the oldest message shown, above it, keeping the reader's place.
  async loadEarlier() {
    const cursor = this.earlier;
    if (!cursor || this.loadingEarlier) return;
    const sessionId = this.id;
    this.loadingEarlier = true;
    this.earlierButton.disabled = true;
    this.earlierButton.textContent = "Loading…";
    try {
      const query = `cursor=${encodeURIComponent(cursor)}`;
      const page = await api("GET", `/api/sessions/${encodeURIComponent(sessionId)}/messages?${query}`);
      if (sessionId !== this.id) return;
      const fromBottom = this.list.scrollHeight - this.list.scrollTop;
      const oldest = this.earlierItem.nextSibling;
      for (const message of page.messages) {
        if (this.entries.has(message.message_id)) continue;
        this.refresh(this.add(message, oldest), message);
      }
      this.pagedBack = true;
      this.showEarlier(page.cursor);
      this.list.scrollTop = this.list.scrollHeight - fromBottom;
      this.renderFinished(cursor);
    } catch (error) {
      showError(this.errorBox, error.message);
    } finally {
      this.loadingEarlier = false;
      this.earlierButton.disabled = false;
      this.earlierButton.textContent = "Load earlier messages";
    }
  }

  onSnapshot() {
    // The server starts this stream over (it fell behind, or resumed from a point the server
    // cannot): drop streamed text of unfinished replies; what follows rebuilds it.
    this.lastSequence = null;
    this.early = new Map();
    for (const entry of this.entries.values()) if (!entry.finished && entry.text) entry.text.data = "";
  }

  onChunk(chunk) {
    if (this.lastSequence !== null && chunk.sequence <= this.lastSequence) return; // seen already
    this.lastSequence = chunk.sequence;
    const entry = this.entries.get(chunk.message_id);
    if (!entry) {
      this.early.set(chunk.message_id, [...(this.early.get(chunk.message_id) ?? []), chunk]);
    } else if (!entry.finished) {
      this.growText(entry, chunk);
      if (this.stuck) this.scrollDown();
    }
  }

  // A chunk grows its text part; a part first seen starts a new stretch of text after
  // the cards shown so far, so text and tool calls read in the order they happened.
  growText(entry, chunk) {
    const key = chunk.part_id ?? "";
    let node = entry.texts.get(key);
    if (!node) {
      if (entry.texts.size === 1 && entry.text.data === "" && !entry.body.lastChild?.classList?.contains("part")) {
        node = entry.text; // the first stretch, already in place
      } else {
        node = document.createTextNode("");
        entry.body.append(h("div", { class: "msg-text plain" }, node));
      }
      entry.texts.set(key, node);
    }
    node.appendData(chunk.chunk);
  }

  // Text appended to a reasoning part the page shows already (its first delta came whole).
  onReasoning(chunk) {
    if (this.lastSequence !== null && chunk.sequence <= this.lastSequence) return; // seen already
    this.lastSequence = chunk.sequence;
    chunk.reasoning = true;
    const entry = this.entries.get(chunk.message_id);
    if (!entry) {
      const waiting = this.earlyParts.get(chunk.message_id) ?? [];
      this.earlyParts.set(chunk.message_id, [...waiting, chunk]);
    } else {
      growReasoning(entry.cards.get(chunk.part_id), chunk);
      if (this.stuck) this.scrollDown();
    }
  }

  onPart(part) {
    // Chunks and parts share the session's sequence and arrive in its order.
    if (this.lastSequence !== null && part.sequence <= this.lastSequence) return; // seen already
    this.lastSequence = part.sequence;
    if (part.type === "todo-list") {
      if (part.sequence > this.todoSequence) this.showTodos(part);
      return;
    }
    if (part.type === "turn-diff") {
      this.changes.add(part);
      this.undo.render();
    }
    if (part.type === "step-finish") {
      const steps = this.steps.get(part.message_id) ?? new Map();
      steps.set(part.part_id, part.body);
      this.steps.set(part.message_id, steps);
      const entry = this.entries.get(part.message_id);
      if (entry) this.showUsage(entry, part.message_id);
      if (this.session) this.update(this.session);
      return;
    }
    const entry = this.entries.get(part.message_id);
    if (!entry) {
      const waiting = this.earlyParts.get(part.message_id) ?? [];
      this.earlyParts.set(part.message_id, [...waiting, part]);
    } else {
      this.showPart(entry, part);
    }
  }

  // The newest todo list of the session, beside the conversation.
  showTodos(part) {
    this.todoSequence = part.sequence;
    const { todos } = part.body;
    const done = todos.filter((t) => t.status === "completed").length;
    $("todo-panel").hidden = todos.length === 0;
    $("todo-count").textContent = `${done}/${todos.length}`;
    $("todo-list").replaceChildren(...todoItems(todos));
  }

  // A card for the part, in its place among the reply's text and other cards.
  showPart(entry, part) {
    const old = entry.cards.get(part.part_id);
    const card = partCard(part, old);
    if (!card) return;
    card.dataset.position = part.position;
    if (old && old !== card) old.replaceWith(card);
    if (!old) this.place(entry, card);
    entry.cards.set(part.part_id, card);
    if (entry.noText) {
      entry.noText = false;
      entry.text.data = "";
    }
    this.tick();
    if (this.stuck) this.scrollDown();
  }

  // Before the first element made later (by position); at the end otherwise.
  place(entry, element) {
    const position = Number(element.dataset.position);
    const later = [...entry.body.children].find((c) => c.dataset.position !== undefined && Number(c.dataset.position) > position);
    entry.body.insertBefore(element, later ?? null);
  }

  // Running tool calls show how long they have run, once a second while any runs.
  tick() {
    const running = this.list.querySelectorAll('.tool-card[data-state="running"]');
    for (const card of running) {
      const started = Number(card.dataset.started);
      if (started) card.querySelector(".tool-time").textContent = duration(Date.now() - started);
    }
    if (running.length && !this.ticker) this.ticker = window.setInterval(() => this.tick(), 1000);
    if (!running.length && this.ticker) {
      window.clearInterval(this.ticker);
      this.ticker = 0;
    }
  }

  // A reply's model, then its tokens and cost once a step has finished.
  showUsage(entry, messageId) {
    const steps = [...(this.steps.get(messageId)?.values() ?? [])];
    const words = [entry.model, steps.length ? usageLine(usage(steps)) : ""].filter(Boolean);
    entry.usage.hidden = words.length === 0;
    entry.usage.textContent = words.join(" · ");
  }

  // The session's tokens and cost so far, from every reply's step-finish parts.
  sessionUsage() {
    const steps = [...(this.steps?.values() ?? [])].flatMap((m) => [...m.values()]);
    return steps.length ? h("span", { class: "session-usage" }, ` · ${usageLine(usage(steps))}`) : "";
  }

  add(message, before = null) {
    const entry = {
      cards: new Map(), // part_id -> card
      texts: new Map(), // text part_id -> its text node while streaming
      usage: h("p", { class: "msg-usage", hidden: true }),
      model: message.model ?? "", // the model that produced a reply
      meta: h("span", { class: "msg-status" }),
      body: h("div", { class: "msg-body plain" }),
      prompts: h("div", { class: "prompts" }),
      error: h("p", { class: "msg-error", hidden: true }),
      text: document.createTextNode(""),
      noText: false,
      finished: false,
      rendered: false,
      content: "",
    };
    const who = message.role === "user" ? "You" : "Agent";
    entry.texts.set("", entry.text);
    entry.body.append(entry.text);
    entry.li = h(
      "li",
      { class: `msg ${message.role}`, dataset: { key: message.message_id } },
      h("div", { class: "msg-meta" }, h("strong", {}, who), " ", h("time", { datetime: message.timestamp }, clock(message.timestamp)), " ", entry.meta),
      entry.body,
      entry.prompts,
      entry.error,
      entry.usage,
    );
    this.entries.set(message.message_id, entry);
    this.list.insertBefore(entry.li, before);
    // Chunks and parts that came before the list showed the reply, in their order.
    const early = [...(this.early.get(message.message_id) ?? []), ...(this.earlyParts.get(message.message_id) ?? [])];
    early.sort((a, b) => a.sequence - b.sequence);
    for (const event of early) {
      if (event.reasoning) growReasoning(entry.cards.get(event.part_id), event);
      else if (event.part_id !== undefined && event.body) this.showPart(entry, event);
      else this.growText(entry, event);
    }
    this.early.delete(message.message_id);
    this.earlyParts.delete(message.message_id);
    this.showUsage(entry, message.message_id);
    return entry;
  }

  refresh(entry, message) {
    const stopping = message.abort_requested && !FINISHED.has(message.status);
    entry.meta.textContent = stopping ? "stopping…" : STATUS_TEXT[message.role][message.status] ?? "";
    entry.li.dataset.status = message.status;
    entry.error.hidden = !message.error;
    entry.error.classList.toggle("hint", message.status === "aborted"); // stopped on purpose
    entry.error.textContent = message.error ?? "";
    if (message.role === "user" || FINISHED.has(message.status)) {
      if (!entry.finished) {
        entry.finished = true;
        entry.content = message.content;
        if (entry.texts.size <= 1) entry.text.data = message.content; // the stored text is the truth once finished
      }
      // A reply of tool calls alone (say, after a denied permission) has its cards to show.
      entry.noText = message.role === "assistant" && !message.content && entry.cards.size === 0;
      if (entry.noText) entry.text.data = "(no text)";
    }
    queueControls(entry, message, this.errorBox);
  }

  // Finished replies as the server's HTML; `cursor` names the page they came from.
  async renderFinished(cursor = null) {
    const wanted = [...this.entries]
      .filter(([, e]) => e.finished && !e.rendered && e.li.classList.contains("assistant") && e.content)
      .map(([id, e]) => {
        e.rendered = true;
        return id;
      });
    if (wanted.length === 0) return;
    const sessionId = this.id;
    const ids = wanted.map((id) => `message_id=${encodeURIComponent(id)}`);
    const query = [...ids, ...(cursor ? [`cursor=${encodeURIComponent(cursor)}`] : [])].join("&");
    try {
      const { messages } = await api("GET", `/api/sessions/${sessionId}/rendered?${query}`);
      if (sessionId !== this.id) return;
      // A reply outside the pages the server read comes again with the next batch.
      const found = new Set(messages.map((m) => m.message_id));
      for (const id of wanted) if (!found.has(id)) this.entries.get(id).rendered = false;
      for (const { message_id: id, html, texts } of messages) {
        const entry = this.entries.get(id);
        // Sanitised on the server (markdown-it-py with raw HTML off, then nh3's allow-list).
        // Each text part goes between the cards by its position; without parts, the whole text.
        const cards = [...entry.cards.values()];
        const stretches = (texts?.length ? texts : [{ position: -1, html }]).map(({ position, html: part }) => {
          const stretch = h("div", { class: "msg-text md", dataset: { position } });
          stretch.innerHTML = part;
          return stretch;
        });
        entry.body.replaceChildren();
        entry.body.className = "msg-body";
        entry.texts.clear();
        for (const element of [...stretches, ...cards]) this.place(entry, element);
      }
      if (this.stuck) this.scrollDown();
    } catch (_) {
      for (const id of wanted) this.entries.get(id).rendered = false; // plain text stays; retry later
    }
  }

  nearBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
  }

  scrollDown() {
    window.requestAnimationFrame(() => (this.list.scrollTop = this.list.scrollHeight));
  }

  // --- actions ---------------------------------------------------------------------

  async send() {
    const content = this.input.value;
    if (!content.trim() || !this.session) return;
    const button = $("send");
    button.disabled = true;
    // Cleared at once, so what the user types while this is on its way is theirs to keep.
    this.input.value = "";
    try {
      const body = await api("POST", `/api/sessions/${this.id}/messages`, { content, ...this.composer.extra() });
      showError(this.errorBox, body.queued ? body.notice : "");
    } catch (error) {
      if (!this.input.value) this.input.value = content; // not sent: give the text back
      showError(this.errorBox, error.message);
    } finally {
      button.disabled = false;
      this.input.focus();
    }
  }

  async stop() {
    try {
      await api("POST", `/api/sessions/${this.id}/abort`);
    } catch (error) {
      showError(this.errorBox, error.message);
    }
  }

  async end() {
    if (!(await confirmDialog("End this session? Its agent stops; you can restore it later.", "End session"))) return;
    try {
      const { session } = await api("POST", `/api/sessions/${this.id}/end`);
      this.update(session);
    } catch (error) {
      showError(this.errorBox, error.message);
    }
  }

  renaming(on) {
    $("rename-form").hidden = !on;
    $("session-title").hidden = on;
    $("rename-session").hidden = on;
    if (on) {
      $("rename-input").value = this.session?.title ?? "";
      $("rename-input").focus();
    }
  }

  async rename() {
    try {
      const { session } = await api("POST", `/api/sessions/${this.id}/title`, { title: $("rename-input").value });
      this.renaming(false);
      this.update(session);
      showError(this.errorBox, "");
    } catch (error) {
      showError(this.errorBox, error.message);
    }
  }

  async restore() {
    try {
      const { session } = await api("POST", `/api/sessions/${this.id}/restore`);
      this.update(session);
      this.input.focus();
    } catch (error) {
      showError(this.errorBox, error.message);
    }
  }
}
