// The machine list: live over /api/events, "Add machine" (token shown once), delete.
import { api } from "./api.js";
import {
  badge, confirmDialog, emptyState, h, openDialog, patchChildren, showError, timeText, whileBusy, wireCopyButtons,
} from "./dom.js";
import { live } from "./live.js";

const list = document.getElementById("machines");
const addButton = document.getElementById("add-machine");
const errorBox = document.getElementById("error");
const dialog = document.getElementById("machine-dialog");
const form = document.getElementById("machine-form");
const tokenView = document.getElementById("machine-token");
let machines = JSON.parse(document.getElementById("initial-machines").textContent);

function counts(workers) {
  const parts = [`${workers.online} online`, `${workers.offline} offline`];
  if (workers.ready) parts.push(`${workers.ready} ready`);
  parts.push(`${workers.pending_authorization} pending`);
  return parts.join(" · ");
}

function machineCard({ machine, workers }) {
  return h(
    "li",
    { class: "card machine", dataset: { key: machine.machine_id } },
    h(
      "div",
      { class: "card-head" },
      h("h2", {}, h("a", { href: `/machines/${machine.machine_id}` }, machine.name)),
      badge(machine.status),
    ),
    h("p", { class: "hint" }, timeText("last seen ", machine.last_heartbeat, "never connected")),
    h("p", { class: "counts" }, "Workers: ", counts(workers)),
    h(
      "div",
      { class: "card-actions" },
      h("a", { class: "button ghost", href: `/machines/${machine.machine_id}` }, "Workers"),
      h("a", { class: "button ghost", href: `/chat?machine=${machine.machine_id}` }, "Chat"),
      h("button", { type: "button", class: "ghost danger", onclick: () => remove(machine) }, "Delete"),
    ),
  );
}

function render() {
  addButton.hidden = machines.length === 0;
  if (machines.length === 0) {
    list.replaceChildren(emptyState("Create your first machine", "A machine is a computer that runs your coding agents. Add one, then start it with the command shown.", "Add machine", openAdd));
    return;
  }
  let cards = list.querySelector("ul.cards");
  if (!cards) {
    cards = h("ul", { class: "cards" });
    list.replaceChildren(cards);
  }
  patchChildren(cards, machines.map(machineCard));
}

async function remove(machine) {
  const sure = await confirmDialog(
    `Delete the machine “${machine.name}”? Its workers and its token stop working.`,
    "Delete machine",
  );
  if (!sure) return;
  try {
    await api("DELETE", `/api/machines/${machine.machine_id}`);
    machines = machines.filter((m) => m.machine.machine_id !== machine.machine_id);
    render();
    showError(errorBox, "");
  } catch (error) {
    showError(errorBox, error.message);
  }
}

function openAdd() {
  form.reset();
  form.hidden = false;
  tokenView.hidden = true;
  showError(form.querySelector(".error"), "");
  openDialog(dialog);
  form.elements.name.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const body = await whileBusy(form.querySelector('[type="submit"]'), "Adding…", () =>
      api("POST", "/api/machines", { name: form.elements.name.value }),
    );
    tokenView.querySelector("[data-name]").textContent = body.machine.name;
    document.getElementById("machine-command").textContent = body.command;
    document.getElementById("machine-token-value").textContent = body.token;
    form.hidden = true;
    tokenView.hidden = false;
    tokenView.querySelector("[data-copy]").focus();
  } catch (error) {
    showError(form.querySelector(".error"), error.message);
  }
});

// The token is shown once: it leaves the page when the dialog closes.
dialog.addEventListener("close", () => {
  document.getElementById("machine-command").textContent = "";
  document.getElementById("machine-token-value").textContent = "";
});

addButton.addEventListener("click", openAdd);
wireCopyButtons(tokenView);
render();
live(() => "/api/events", {
  machines: (data) => {
    machines = data.machines;
    render();
  },
  error: (data) => showError(errorBox, data.error),
});
