// Permission requests of a running reply, shown inline with Allow once / Always / Deny.
// They come on the session stream (its `requests` event, on every change), never polled;
// answered ones stay in the history with their answer.
import { api } from "./api.js";
import { editDiff } from "./diff.js";
import { h } from "./dom.js";
import { MOVED_ON, Prompts } from "./prompts.js";

const ANSWERS = [
  ["once", "Allow once", "primary"],
  ["always", "Always allow", "ghost"],
  ["reject", "Deny", "ghost danger"],
];
const ANSWERED = { once: "Allowed once.", always: "Always allowed.", reject: "Denied." };
const outcome = (permission) => ANSWERED[permission.answer] ?? MOVED_ON;

export class PermissionPrompts extends Prompts {
  constructor(sessionId, placeFor) {
    super((permission) => permission.permission_id, placeFor);
    this.sessionId = sessionId;
  }

  settle(card, permission) {
    card.querySelector(".prompt-actions").replaceChildren(outcome(permission));
    card.dataset.answered = permission.answer ?? "expired";
  }

  build(permission) {
    const actions = h("div", { class: "prompt-actions" });
    const card = h(
      "div",
      { class: "prompt", role: "group", "aria-label": "Permission request" },
      h("p", {}, h("strong", {}, `The agent wants to use ${permission.tool}`)),
      permission.description ? h("pre", {}, h("code", {}, permission.description)) : null,
      editDiff(permission),
      actions,
    );
    for (const [answer, label, style] of ANSWERS) {
      actions.append(h("button", { type: "button", class: style, onclick: () => this.answer(permission, answer, card) }, label));
    }
    return card;
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
