// The chat page: machine → worker → sessions → conversation, all live over /api/events.
// The choice lives in the URL (?machine=&worker=&session=), so a reload restores it.
import { api } from "./api.js";
import { $, badge, h, patchChildren, showError, statusWord, timeText, whileBusy } from "./dom.js";
import { live } from "./live.js";
import { Conversation, sessionName } from "./conversation.js";
import { sessionAgent, showSessionAgents } from "./composer.js";

const machineSelect = $("machine-select");
const workerSelect = $("worker-select");
const newSession = $("new-session");
const modelSelect = $("model-select");
const sessionsBox = $("sessions");
const notice = $("side-notice");
const errorBox = $("side-error");
const layout = $("chat");

const params = new URLSearchParams(window.location.search);
const state = {
  machine: params.get("machine") ?? "",
  worker: params.get("worker") ?? "",
  session: params.get("session") ?? "",
  machines: [],
  workers: [],
  sessions: [],
};
let stream = null;

const conversation = new Conversation({ onBack: () => layout.classList.remove("show-conversation") });
const workerLabel = (w) => w.name || w.directory || "(root folder)";
const selectedWorker = () => state.workers.find((w) => w.worker_id === state.worker);

function saveUrl() {
  const query = new URLSearchParams();
  if (state.machine) query.set("machine", state.machine);
  if (state.worker) query.set("worker", state.worker);
  if (state.session) query.set("session", state.session);
  const search = query.toString();
  window.history.replaceState(null, "", `/chat${search ? `?${search}` : ""}`);
}

function say(text) {
  notice.replaceChildren(...(Array.isArray(text) ? text : [text ?? ""]));
  notice.hidden = !text;
}

function options(select, items, selected, empty) {
  const nodes = items.map(([value, label]) => h("option", { value, selected: value === selected }, label));
  select.replaceChildren(h("option", { value: "" }, empty), ...nodes);
  select.value = selected;
}

// --- what the stream tells us ---------------------------------------------------------

function showMachines(summaries) {
  state.machines = summaries;
  if (state.machine && !summaries.some((s) => s.machine.machine_id === state.machine)) {
    chooseMachine("");
    say("That machine is gone.");
  }
  if (summaries.length === 0) {
    say(["No machines yet. ", h("a", { href: "/" }, "Add your first machine"), " to chat with its workers."]);
  }
  const items = summaries.map(({ machine }) => [machine.machine_id, `${machine.name} (${machine.status})`]);
  options(machineSelect, items, state.machine, summaries.length ? "Choose a machine" : "No machines");
  machineSelect.disabled = summaries.length === 0;
}

function showWorkers(workers) {
  state.workers = workers;
  if (state.worker && !selectedWorker()) chooseWorker("");
  const usable = workers.filter((w) => w.status !== "pending_authorization");
  if (!state.worker && usable.length === 1) {
    chooseWorker(usable[0].worker_id);
    return;
  }
  const items = workers.map((w) => [w.worker_id, `${workerLabel(w)} (${w.status === "pending_authorization" ? "pending" : w.status})`]);
  options(workerSelect, items, state.worker, workers.length ? "Choose a worker" : "No workers");
  workerSelect.disabled = workers.length === 0;
  if (state.machine && workers.length === 0) {
    say(["This machine has no workers yet. ", h("a", { href: `/machines/${state.machine}` }, "Add a worker"), "."]);
  }
  showWorker();
}

function showWorker() {
  const worker = selectedWorker();
  newSession.hidden = !worker || worker.status === "pending_authorization";
  const status = Object.assign(worker ? badge(worker.status) : h("span"), { id: "worker-status", hidden: !worker });
  $("worker-status").replaceWith(status);
  conversation.composer.setWorker(worker);
  showSessionAgents(worker);
  if (!worker) return;
  if (worker.status === "pending_authorization") {
    say(["This worker waits for approval on ", h("a", { href: `/machines/${state.machine}` }, "its machine's page"), "."]);
  } else if (worker.problem) {
    say(worker.problem);
  } else if (worker.models.length === 0) {
    say("The worker's models appear once its machine is online.");
  } else if (worker.status !== "online") {
    say("The worker is offline: messages wait until it is back.");
  } else {
    say("");
  }
  const current = modelSelect.value;
  modelSelect.replaceChildren(...worker.models.map((m) => h("option", { value: m }, m)));
  if (worker.models.includes(current)) modelSelect.value = current;
  newSession.querySelector("button").disabled = worker.models.length === 0;
}

function sessionItem(session) {
  const open = session.status !== "terminated";
  return h(
    "li",
    { dataset: { key: session.chat_session_id } },
    h(
      "button",
      {
        type: "button",
        class: "session",
        "aria-current": session.chat_session_id === state.session ? "true" : null,
        onclick: () => openSession(session.chat_session_id),
      },
      h("span", { class: open ? "dot live" : "dot", "aria-hidden": "true" }),
      h("span", { class: "session-text" },
        h("span", { class: "session-title" }, sessionName(session)),
        h("span", { class: "hint" }, `${session.model} · ${statusWord(session.status)} · `, timeText("", session.last_activity))),
    ),
  );
}

function showSessions(sessions) {
  state.sessions = sessions;
  if (sessions.length === 0) {
    sessionsBox.replaceChildren(h("p", { class: "empty" }, "No sessions yet. Start one above."));
  } else {
    if (!sessionsBox.querySelector(".session-groups")) {
      sessionsBox.replaceChildren(h("div", { class: "session-groups" },
        h("h2", { class: "group-title" }, "Open"), h("ul", { class: "session-list", dataset: { group: "open" } }),
        h("h2", { class: "group-title" }, "Ended"), h("ul", { class: "session-list", dataset: { group: "ended" } })));
    }
    const open = sessions.filter((s) => s.status !== "terminated");
    const ended = sessions.filter((s) => s.status === "terminated");
    const [openList, endedList] = sessionsBox.querySelectorAll(".session-list");
    patchChildren(openList, open.map(sessionItem));
    patchChildren(endedList, ended.map(sessionItem));
    openList.previousElementSibling.hidden = open.length === 0;
    endedList.previousElementSibling.hidden = ended.length === 0;
  }
  // A session missing here may be one just started that this list predates: keep it open.
  const current = sessions.find((s) => s.chat_session_id === state.session);
  if (current) conversation.open(current);
}

// --- choices ------------------------------------------------------------------------

function connect() {
  stream?.close();
  const query = new URLSearchParams();
  if (state.machine) query.set("machine_id", state.machine);
  if (state.worker) query.set("worker_id", state.worker);
  stream = live(() => `/api/events?${query}`, {
    machines: (data) => showMachines(data.machines),
    workers: (data) => data.machine_id === state.machine && showWorkers(data.workers),
    sessions: (data) => data.worker_id === state.worker && showSessions(data.sessions),
    error: (data) => showError(errorBox, data.error),
  });
}

function chooseMachine(machineId) {
  state.machine = machineId;
  state.workers = [];
  options(workerSelect, [], "", machineId ? "Loading workers…" : "Choose a machine first");
  workerSelect.disabled = true;
  chooseWorker("");
}

function chooseWorker(workerId) {
  state.worker = workerId;
  workerSelect.value = workerId;
  state.sessions = [];
  sessionsBox.replaceChildren(workerId ? h("p", { class: "progress" }, "Loading sessions…") : "");
  say("");
  openSession("");
  showWorker();
  connect();
}

function openSession(sessionId) {
  state.session = sessionId;
  saveUrl();
  for (const button of sessionsBox.querySelectorAll(".session")) {
    const mine = button.parentElement.dataset.key === sessionId;
    if (mine) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  const session = state.sessions.find((s) => s.chat_session_id === sessionId);
  if (session) {
    conversation.open(session);
    layout.classList.add("show-conversation");
  } else {
    conversation.close();
    layout.classList.remove("show-conversation");
  }
}

machineSelect.addEventListener("change", () => chooseMachine(machineSelect.value));
workerSelect.addEventListener("change", () => chooseWorker(workerSelect.value));
newSession.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await whileBusy(newSession.querySelector("button"), "Starting…", async () => {
      const { session } = await api("POST", `/api/workers/${state.worker}/sessions`, {
        model: modelSelect.value,
        ...sessionAgent(),
      });
      state.sessions = [session, ...state.sessions.filter((s) => s.chat_session_id !== session.chat_session_id)];
      openSession(session.chat_session_id);
      $("message-input").focus();
    });
  } catch (error) {
    showError(errorBox, error.message);
  }
});

// Check the IDs from the URL before subscribing: someone else's are 404, and then we start over.
async function start() {
  try {
    if (state.machine) await api("GET", `/api/machines/${encodeURIComponent(state.machine)}`);
    if (state.worker) await api("GET", `/api/workers/${encodeURIComponent(state.worker)}/sessions`);
  } catch (error) {
    if (error.status !== 404) throw error;
    showError(errorBox, "There is no such machine or worker here. Choose one below.");
    Object.assign(state, { machine: "", worker: "", session: "" });
    saveUrl();
  }
  if (state.machine) options(workerSelect, [], "", "Loading workers…");
  if (state.session) layout.classList.add("show-conversation");
  connect();
}

start().catch((error) => showError(errorBox, error.message));
