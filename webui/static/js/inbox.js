// The inbox page: pending permission requests and questions of every machine, live,
// answered in place.
import { api } from "./api.js";
import { editDiff } from "./diff.js";
import { h, showError, timeAgo } from "./dom.js";
import { renderFinished } from "./inbox-finished.js";
import { live } from "./live.js";
import { QuestionPrompts } from "./questions.js";

const list = document.getElementById("inbox");
const errorBox = document.getElementById("inbox-error");
const ANSWERS = [
  ["once", "Allow once", "primary"],
  ["always", "Always allow", ""],
  ["reject", "Deny", "danger"],
];

async function answer(item, reply, card) {
  showError(errorBox, "");
  for (const button of card.querySelectorAll("button")) button.disabled = true;
  try {
    await api("POST", `/api/permissions/${encodeURIComponent(item.permission_id)}/answer`, { answer: reply });
    card.remove(); // the stream confirms it a moment later
    document.dispatchEvent(new CustomEvent("inbox-count", { detail: list.querySelectorAll(".inbox-item").length }));
  } catch (error) {
    showError(errorBox, error.message);
    for (const button of card.querySelectorAll("button")) button.disabled = false;
  }
}

// A question's card is kept while it waits, so a half-given answer survives updates.
const questionCards = new Map();

function questionCard(item) {
  const kept = questionCards.get(item.question_id);
  if (kept) return kept;
  const node = h(
    "li",
    { class: "card inbox-item", role: "group", "aria-label": `Question on ${item.machine}`, dataset: { question: item.question_id } },
    h("div", { class: "card-head" }, h("h2", {}, `Question on ${item.machine}`), h("span", { class: "muted", title: item.asked_at }, `waiting ${timeAgo(item.asked_at).replace(" ago", "")}`)),
    h("p", { class: "hint" }, "Worker ", h("strong", {}, item.worker), " · ", h("a", { href: item.url }, "open the session")),
  );
  new QuestionPrompts(() => node).update([item.request]);
  questionCards.set(item.question_id, node);
  return node;
}

function card(item) {
  if (item.kind === "question") return questionCard(item);
  const node = h(
    "li",
    { class: "card inbox-item", role: "group", "aria-label": `${item.tool} on ${item.machine}`, dataset: { permission: item.permission_id } },
    h("div", { class: "card-head" }, h("h2", {}, `${item.tool} on ${item.machine}`), h("span", { class: "muted", title: item.asked_at }, `waiting ${timeAgo(item.asked_at).replace(" ago", "")}`)),
    h("p", { class: "hint" }, "Worker ", h("strong", {}, item.worker), " · ", h("a", { href: item.url }, "open the session")),
    h("pre", { class: "asked" }, h("code", {}, item.description)),
    editDiff(item),
  );
  const buttons = ANSWERS.map(([reply, label, kind]) =>
    h("button", { type: "button", class: kind, onclick: () => answer(item, reply, node) }, label),
  );
  node.append(h("div", { class: "actions" }, ...buttons));
  return node;
}

let latest = null;

function render({ items }) {
  latest = { items };
  const waiting = new Set(items.map((item) => item.question_id));
  for (const id of questionCards.keys()) if (!waiting.has(id)) questionCards.delete(id);
  document.dispatchEvent(new CustomEvent("inbox-count", { detail: items.length }));
  if (items.length === 0) {
    list.replaceChildren(h("p", { class: "empty" }, "Nothing is waiting for you."));
    return;
  }
  list.replaceChildren(h("ul", { class: "cards inbox-list" }, ...items.map(card)));
}

// "waiting 3 min" moves on by itself while nothing changes (not while answering).
window.setInterval(() => {
  if (latest && document.visibilityState === "visible" && !list.querySelector("button:disabled")) render(latest);
}, 30000);

live(() => "/api/inbox/stream", {
  inbox: (data) => {
    render(data);
    renderFinished(data.finished ?? []);
  },
  error: (data) => showError(errorBox, data.error),
});
