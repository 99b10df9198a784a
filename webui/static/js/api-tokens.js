// Settings → API tokens: create one (its secret shown once, with a copy button), list, revoke.
import { api } from "./api.js";
import { $, confirmDialog, h, showError, timeText, wireCopyButtons } from "./dom.js";

const form = $("api-token-form");
const errorBox = $("api-token-error");
const fresh = $("api-token-new");
const list = $("api-token-list");
const empty = $("api-token-empty");

function tokenItem(token) {
  return h(
    "li",
    { class: "card", dataset: { key: token.token_id } },
    h("strong", {}, token.name),
    " ",
    h("span", { class: "hint" }, timeText("created ", token.created_at), " · ", timeText("last used ", token.last_used_at, "never used")),
    " ",
    h("button", { type: "button", class: "danger", onclick: () => revoke(token) }, "Revoke"),
  );
}

async function load() {
  const { tokens } = await api("GET", "/api/tokens");
  list.replaceChildren(...tokens.map(tokenItem));
  empty.hidden = tokens.length > 0;
}

async function revoke(token) {
  const sure = await confirmDialog(`Revoke the API token “${token.name}”? Scripts using it stop working at once.`, "Revoke token");
  if (!sure) return;
  try {
    await api("DELETE", `/api/tokens/${token.token_id}`);
    showError(errorBox, "");
    await load();
  } catch (error) {
    showError(errorBox, error.message);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = form.querySelector('[type="submit"]');
  submit.disabled = true;
  try {
    const body = await api("POST", "/api/tokens", { name: form.elements.name.value });
    $("api-token-value").textContent = body.secret;
    fresh.hidden = false;
    fresh.querySelector("[data-copy]").focus();
    form.reset();
    showError(errorBox, "");
    await load();
  } catch (error) {
    showError(errorBox, error.message);
  } finally {
    submit.disabled = false;
  }
});

wireCopyButtons(fresh);
load().catch((error) => showError(errorBox, error.message));
