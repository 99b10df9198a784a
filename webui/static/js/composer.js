// The composer's extras: the agent (mode) a message goes to, the worker's slash commands
// offered when the text starts with "/", and Edit / Cancel on messages still queued.
import { api } from "./api.js";
import { $, h, showError } from "./dom.js";

const DEFAULT_AGENT = ""; // the agent's own default (opencode: build)

function agentOptions(select, agents, selected, emptyLabel) {
  select.replaceChildren(h("option", { value: DEFAULT_AGENT }, emptyLabel), ...agents.map((a) => h("option", { value: a }, a)));
  select.value = agents.includes(selected) ? selected : DEFAULT_AGENT;
  select.closest(".field").hidden = agents.length === 0;
}

/** The agent picker of the "New session" form: the session's default agent. */
export function showSessionAgents(worker) {
  const select = $("session-agent-select");
  agentOptions(select, worker?.agents ?? [], select.value, "default");
}

/** The chosen default agent of a new session, or nothing. */
export function sessionAgent() {
  const agent = $("session-agent-select").value;
  return agent ? { agent } : {};
}

export class Composer {
  constructor(input) {
    this.input = input;
    this.select = $("agent-select");
    this.list = $("command-list");
    this.commands = [];
    this.active = -1;
    this.input.addEventListener("input", () => this.suggest());
    this.input.addEventListener("blur", () => window.setTimeout(() => this.hide(), 150));
    // Captured at the textarea before the conversation's Enter-to-send sees the key.
    this.input.addEventListener("keydown", (event) => this.key(event), true);
  }

  /** Offer the worker's agents and commands. */
  setWorker(worker) {
    this.worker = worker;
    this.commands = worker?.commands ?? [];
    agentOptions(this.select, worker?.agents ?? [], this.select.value, "default agent");
  }

  /** A session opened: its default agent is preselected. */
  setSession(session) {
    if (this.worker) agentOptions(this.select, this.worker.agents ?? [], session.agent ?? DEFAULT_AGENT, "default agent");
  }

  /** What a message sends besides its text. */
  extra() {
    return this.select.value ? { agent: this.select.value } : {};
  }

  // --- slash commands ----------------------------------------------------------------

  matches() {
    const text = this.input.value;
    if (!text.startsWith("/") || /\s/.test(text)) return [];
    const typed = text.slice(1).toLowerCase();
    return this.commands.filter((c) => c.toLowerCase().startsWith(typed)).slice(0, 20);
  }

  suggest() {
    const found = this.matches();
    if (found.length === 0) return this.hide();
    this.active = Math.min(Math.max(this.active, 0), found.length - 1);
    this.list.replaceChildren(
      ...found.map((name, i) =>
        h("li", {
          id: `command-${i}`,
          role: "option",
          class: "command-option",
          "aria-selected": i === this.active ? "true" : "false",
          onmousedown: (event) => {
            event.preventDefault(); // keep the focus in the textarea
            this.pick(name);
          },
        }, `/${name}`)),
    );
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `command-${this.active}`);
  }

  hide() {
    this.list.hidden = true;
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  pick(name) {
    this.input.value = `/${name} `;
    this.hide();
    this.input.focus();
  }

  key(event) {
    if (this.list.hidden) return;
    const found = this.matches();
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves) {
      this.active = (this.active + moves[event.key] + found.length) % found.length;
      this.suggest();
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && found[this.active]) {
      this.pick(found[this.active]);
    } else if (event.key === "Escape") {
      this.hide();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}

// --- the queue ------------------------------------------------------------------------

/** Edit and Cancel on a user message the machine has not taken yet; gone once it has. */
export function queueControls(entry, message, errorBox) {
  const queued = message.role === "user" && message.status === "pending";
  if (!queued) {
    entry.queue?.remove();
    entry.queue = null;
    return;
  }
  if (entry.queue) {
    if (!entry.li.querySelector(".queue-form")) entry.text.data = message.content; // edited elsewhere
    return;
  }
  const path = `/api/messages/${encodeURIComponent(message.message_id)}`;
  const edit = () => {
    const box = h("textarea", { class: "queue-edit", rows: 2, "aria-label": "Edit queued message" });
    box.value = entry.text.data;
    const save = async () => {
      try {
        const { message: saved } = await api("POST", `${path}/edit`, { content: box.value });
        entry.text.data = saved.content;
        entry.content = saved.content;
        form.replaceWith(entry.body);
        showError(errorBox, "");
      } catch (error) {
        showError(errorBox, error.message);
      }
    };
    const form = h("form", { class: "queue-form", onsubmit: (event) => { event.preventDefault(); save(); } },
      box,
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", class: "ghost", onclick: () => form.replaceWith(entry.body) }, "Discard changes"));
    entry.body.replaceWith(form);
    box.focus();
  };
  const cancel = async () => {
    try {
      await api("POST", `${path}/cancel`);
      showError(errorBox, "");
    } catch (error) {
      showError(errorBox, error.message);
    }
  };
  entry.queue = h("div", { class: "queue-actions" },
    h("button", { type: "button", class: "ghost", onclick: edit }, "Edit"),
    h("button", { type: "button", class: "ghost danger", onclick: cancel }, "Cancel message"));
  entry.li.append(entry.queue);
}
