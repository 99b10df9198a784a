// Permission requests of a running reply, shown inline with Allow once / Always / Deny.
// Asked while a reply streams, so they are fetched then, once a second.
import { api } from "./api.js";
import { h } from "./dom.js";

const ANSWERS = [
  ["once", "Allow once", "primary"],
  ["always", "Always allow", "ghost"],
  ["reject", "Deny", "ghost danger"],
];
const ANSWERED = { once: "Allowed once.", always: "Always allowed.", reject: "Denied." };

export class PermissionPrompts {
  constructor(sessionId, placeFor) {
    this.sessionId = sessionId;
    this.placeFor = placeFor; // message_id -> the element the prompt goes into
    this.cards = new Map();
    this.timer = 0;
    this.check();
  }

  watch(streaming) {
    if (streaming && !this.timer) this.timer = window.setInterval(() => this.check(), 1000);
    if (!streaming && this.timer) {
      window.clearInterval(this.timer);
      this.timer = 0;
      this.check();
    }
  }

  stop() {
    window.clearInterval(this.timer);
    this.timer = 0;
    this.stopped = true;
  }

  async check() {
    let permissions;
    try {
      ({ permissions } = await api("GET", `/api/sessions/${this.sessionId}/permissions`));
    } catch (_) {
      return; // the next check or the reconnecting stream will tell
    }
    if (this.stopped) return;
    const pending = new Set(permissions.map((p) => p.permission_id));
    for (const permission of permissions) {
      if (!this.cards.has(permission.permission_id)) this.show(permission);
    }
    for (const [id, card] of this.cards) {
      if (!pending.has(id) && !card.dataset.answered) {
        card.querySelector(".prompt-actions").replaceChildren("No longer needed: the reply moved on.");
        card.dataset.answered = "expired";
      }
    }
  }

  show(permission) {
    const place = this.placeFor(permission.message_id);
    if (!place) return;
    const actions = h("div", { class: "prompt-actions" });
    const card = h(
      "div",
      { class: "prompt", role: "group", "aria-label": "Permission request" },
      h("p", {}, h("strong", {}, `The agent wants to use ${permission.tool}`)),
      permission.description ? h("pre", {}, h("code", {}, permission.description)) : null,
      actions,
    );
    for (const [answer, label, style] of ANSWERS) {
      actions.append(h("button", { type: "button", class: style, onclick: () => this.answer(permission, answer, card) }, label));
    }
    this.cards.set(permission.permission_id, card);
    place.append(card);
    card.scrollIntoView({ block: "nearest" });
  }

  async answer(permission, answer, card) {
    const actions = card.querySelector(".prompt-actions");
    for (const button of actions.querySelectorAll("button")) button.disabled = true;
    try {
      await api("POST", `/api/permissions/${permission.permission_id}/answer`, { answer });
      card.dataset.answered = answer;
      actions.replaceChildren(ANSWERED[answer]);
    } catch (error) {
      for (const button of actions.querySelectorAll("button")) button.disabled = false;
      actions.append(h("span", { class: "error" }, ` ${error.message}`));
    }
  }
}
