// One machine's workers, grouped by status and live: approve, reject, remove, add, tokens.
import { api } from "./api.js";
import {
  badge, confirmDialog, emptyState, h, onSubmit, openDialog, patchChildren, showError, timeText, wireCopyButtons,
} from "./dom.js";
import { folderPicker } from "./folders.js";
import { live } from "./live.js";
import { usageLine } from "./parts.js";
import { SAFE_POLICY, policyFields, policySummary, readPolicy } from "./policy.js";

const page = document.getElementById("machine-page");
const machineId = page.dataset.machineId;
const list = document.getElementById("workers");
const errorBox = document.getElementById("error");
let machineOnline = document.getElementById("machine-status").classList.contains("online");

const GROUPS = [
  ["pending_authorization", "Waiting for approval", "Registered from the machine with a worker token."],
  ["online", "Online", null],
  ["ready", "Ready", "Approved; runs when the machine process starts it."],
  ["offline", "Offline", null],
];

const workerLabel = (worker) => worker.name || worker.directory || "(root folder)";

async function act(promise) {
  try {
    await promise;
    showError(errorBox, "");
  } catch (error) {
    showError(errorBox, error.message);
  }
}

function actions(worker) {
  const id = worker.worker_id;
  if (worker.status === "pending_authorization") {
    return [
      h("button", { type: "button", class: "primary", onclick: () => act(api("POST", `/api/workers/${id}/approve`)) }, "Approve"),
      h("button", { type: "button", class: "ghost danger", onclick: () => act(api("POST", `/api/workers/${id}/reject`)) }, "Reject"),
    ];
  }
  const remove = async () => {
    if (await confirmDialog(`Remove the worker “${workerLabel(worker)}”? Its folder stays as it is.`, "Remove worker")) {
      await act(api("DELETE", `/api/workers/${id}`));
    }
  };
  return [
    h("a", { class: "button ghost", href: `/chat?machine=${machineId}&worker=${id}` }, "Chat"),
    h("button", { type: "button", class: "ghost", onclick: () => openPolicy(worker) }, "Permissions"),
    h("button", { type: "button", class: "ghost danger", onclick: remove }, "Remove"),
  ];
}

// Tokens and cost of each worker's agent, over its sessions; fetched once per page load.
const usages = new Map(); // worker_id -> text, or null while it is being fetched

async function loadUsage(workerId) {
  usages.set(workerId, null);
  try {
    const { usage } = await api("GET", `/api/workers/${encodeURIComponent(workerId)}/usage`);
    usages.set(workerId, usage.steps ? `Used ${usageLine({ input: usage.input_tokens, output: usage.output_tokens, reasoning: usage.reasoning_tokens, cache: usage.cache_read_tokens, cost: usage.cost })}` : "");
  } catch (_) {
    usages.set(workerId, "");
  }
  const line = list.querySelector(`[data-key="${CSS.escape(workerId)}"] .worker-usage`);
  if (line) line.textContent = usages.get(workerId);
}

function workerRow(worker) {
  const models = worker.models.length ? `${worker.models.length} models` : "models not known yet";
  return h(
    "li",
    { class: "row worker", dataset: { key: worker.worker_id } },
    h(
      "div",
      { class: "row-main" },
      h("strong", {}, workerLabel(worker)), " ", badge(worker.status),
      h("p", { class: "hint" }, h("code", {}, worker.directory || "."), " · ", models, " · ", timeText("last seen ", worker.last_heartbeat, "not seen yet")),
      worker.problem ? h("p", { class: "warning worker-problem", role: "status" }, worker.problem) : null,
      h("p", { class: "hint policy-summary" }, policySummary(worker.permission_policy ?? SAFE_POLICY)),
      h("p", { class: "hint worker-usage" }, usages.get(worker.worker_id) ?? ""),
    ),
    h("div", { class: "row-actions" }, actions(worker)),
  );
}

function render(workers) {
  if (workers.length === 0) {
    list.replaceChildren(emptyState("No workers yet", "Add a worker on a folder of this machine, or create a worker token to register one from the machine.", "Add worker", openAddWorker));
    return;
  }
  if (!list.querySelector(".groups")) list.replaceChildren(h("div", { class: "groups" }));
  const groups = list.querySelector(".groups");
  for (const [status, title, hint] of GROUPS) {
    const members = workers.filter((w) => w.status === status);
    let section = groups.querySelector(`[data-group="${status}"]`);
    if (members.length === 0) {
      section?.remove();
      continue;
    }
    if (!section) {
      section = h("section", { class: "group", dataset: { group: status } },
        h("h2", {}, title, " ", h("span", { class: "count" })),
        hint ? h("p", { class: "hint" }, hint) : null,
        h("ul", { class: "rows" }));
      const after = GROUPS.slice(GROUPS.findIndex(([s]) => s === status) + 1)
        .map(([s]) => groups.querySelector(`[data-group="${s}"]`)).find(Boolean);
      groups.insertBefore(section, after ?? null);
    }
    section.querySelector(".count").textContent = `(${members.length})`;
    patchChildren(section.querySelector("ul"), members.map(workerRow));
  }
  for (const worker of workers) if (!usages.has(worker.worker_id)) loadUsage(worker.worker_id);
}

function renderMachine(summaries) {
  const summary = summaries.find((s) => s.machine.machine_id === machineId);
  if (!summary) {
    page.replaceChildren(h("section", { class: "card" }, h("h1", {}, "This machine was deleted."), h("p", {}, h("a", { href: "/" }, "Back to the machines"))));
    stream.close();
    return;
  }
  const { machine } = summary;
  machineOnline = machine.status === "online";
  document.getElementById("machine-name").textContent = machine.name;
  document.getElementById("machine-status").replaceWith(Object.assign(badge(machine.status), { id: "machine-status" }));
  document.getElementById("machine-seen").replaceChildren(timeText("Last seen ", machine.last_heartbeat, "This machine has not connected yet."));
}

// --- Add worker ------------------------------------------------------------------

const workerDialog = document.getElementById("worker-dialog");
const workerForm = document.getElementById("worker-form");
let picker = null;

function openAddWorker() {
  workerForm.reset();
  policyFields(document.getElementById("add-policy"), SAFE_POLICY, "add");
  showError(workerForm.querySelector(".error"), "");
  openDialog(workerDialog);
  picker ??= folderPicker(document.getElementById("folder-picker"), machineId, workerForm.elements.directory);
  if (machineOnline) picker.open("");
  else picker.offline();
  workerForm.elements.directory.focus();
}

onSubmit(workerForm, async () => {
  await api("POST", `/api/machines/${machineId}/workers`, {
    directory: workerForm.elements.directory.value.trim(),
    name: workerForm.elements.name.value.trim() || null,
    permission_policy: readPolicy(document.getElementById("add-policy")),
  });
  workerDialog.close();
});

// --- Permission policy ------------------------------------------------------------

const policyDialog = document.getElementById("policy-dialog");
const policyForm = document.getElementById("policy-form");
let policyWorker = null;

function openPolicy(worker) {
  policyWorker = worker;
  const folder = worker.directory || "the root folder";
  document.getElementById("policy-worker").textContent = worker.name ? `Worker “${worker.name}” on ${folder}.` : `The worker on ${folder}.`;
  policyFields(document.getElementById("edit-policy"), worker.permission_policy ?? SAFE_POLICY, "edit");
  showError(policyForm.querySelector(".error"), "");
  openDialog(policyDialog);
  policyForm.querySelector("select").focus();
}

onSubmit(policyForm, async () => {
  await api("PUT", `/api/workers/${policyWorker.worker_id}/permission-policy`, readPolicy(document.getElementById("edit-policy")));
  policyDialog.close();
});

// --- Worker token ------------------------------------------------------------------

const tokenDialog = document.getElementById("token-dialog");

document.getElementById("worker-token").addEventListener("click", async () => {
  try {
    const { worker_token: token } = await api("POST", `/api/machines/${machineId}/worker-tokens`);
    document.getElementById("worker-command").textContent =
      `orchestrator worker register ${token}`;
    openDialog(tokenDialog);
    tokenDialog.querySelector("[data-copy]").focus();
  } catch (error) {
    showError(errorBox, error.message);
  }
});
tokenDialog.addEventListener("close", () => (document.getElementById("worker-command").textContent = ""));
wireCopyButtons(tokenDialog);

document.getElementById("add-worker").addEventListener("click", openAddWorker);
const stream = live(() => `/api/events?machine_id=${encodeURIComponent(machineId)}`, {
  machines: (data) => renderMachine(data.machines),
  workers: (data) => render(data.workers),
  error: (data) => showError(errorBox, data.error),
});
