// The inbox page: pending permission requests of every machine, live, answered in place.
import { api } from "./api.js";
import { h, showError, timeAgo } from "./dom.js";
import { live } from "./live.js";

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

function card(item) {
  const node = h(
    "li",
    { class: "card inbox-item", role: "group", "aria-label": `${item.tool} on ${item.machine}`, dataset: { permission: item.permission_id } },
    h("div", { class: "card-head" }, h("h2", {}, `${item.tool} on ${item.machine}`), h("span", { class: "muted", title: item.asked_at }, `waiting ${timeAgo(item.asked_at).replace(" ago", "")}`)),
    h("p", { class: "hint" }, "Worker ", h("strong", {}, item.worker), " · ", h("a", { href: item.url }, "open the session")),
    h("pre", { class: "asked" }, h("code", {}, item.description)),
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
  inbox: render,
  error: (data) => showError(errorBox, data.error),
});
