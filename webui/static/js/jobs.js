// Scheduled jobs: list, create/edit, pause/resume, delete, "Run now" and run history.
// The list and each job's runs are reread when the event stream says something changed
// (a job, or a reply starting or finishing: a run's status is its reply's); never polled.
import { api } from "./api.js";
import { $, confirmDialog, emptyState, h, openDialog, patchChildren, showError } from "./dom.js";
import { live } from "./live.js";

const RUNS_SHOWN = 5;
const list = $("jobs");
const addButton = $("add-job");
const errorBox = $("error");
const dialog = $("job-dialog");
const form = $("job-form");
const formError = form.querySelector(".error");
const userZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

let jobs = null; // null until the first answer
const runs = new Map(); // job_id -> [JobRun], newest first
let machines = []; // [{machine, workers: [Worker]}]
let editing = null; // the job being edited, or null for a new one
let refreshing = null; // the refresh under way, if any
let again = false; // something changed while it ran

$("user-zone").textContent = userZone;

// --- words and times ---------------------------------------------------------------

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December"];
const pad = (n) => String(n).padStart(2, "0");
const isNumber = (s) => /^\d+$/.test(s);

function ordinal(n) {
  const tail = n % 100 >= 11 && n % 100 <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] ?? "th");
  return `${n}${tail}`;
}

function dayWords(field) {
  if (field === "1-5") return "on weekdays";
  if (field === "0,6" || field === "6,0" || field === "6-7") return "on weekends";
  const days = field.split(",");
  if (days.every((d) => isNumber(d) && Number(d) <= 7)) {
    return `on ${days.map((d) => DAYS[Number(d) % 7]).join(", ")}`;
  }
  const range = field.match(/^(\d)-(\d)$/);
  if (range) return `${DAYS[Number(range[1]) % 7]} to ${DAYS[Number(range[2]) % 7]}`;
  return null;
}

// A cron expression in words, for the common shapes; null for the rest.
export function cronWords(cron) {
  const fields = (cron ?? "").trim().split(/\s+/);
  if (fields.length !== 5) return null;
  const [minute, hour, dom, month, dow] = fields;
  const inRange = (f, low, high) => !isNumber(f) || (Number(f) >= low && Number(f) <= high);
  if (!inRange(minute, 0, 59) || !inRange(hour, 0, 23) || !inRange(dom, 1, 31)) return null;
  const step = (f) => f.match(/^\*\/(\d+)$/)?.[1];
  let when = null;
  if (step(minute) && hour === "*") when = `every ${step(minute)} minutes`;
  else if (isNumber(minute) && hour === "*") when = `every hour at :${pad(minute)}`;
  else if (isNumber(minute) && step(hour)) when = `every ${step(hour)} hours at :${pad(minute)}`;
  else if (isNumber(minute) && isNumber(hour)) when = `at ${pad(hour)}:${pad(minute)}`;
  else if (isNumber(minute) && /^\d+(,\d+)+$/.test(hour)) {
    when = `at ${hour.split(",").map((x) => `${pad(x)}:${pad(minute)}`).join(", ")}`;
  }
  if (when === null) return null;
  const parts = [];
  if (dom === "*" && dow === "*") parts.push(when.startsWith("at") ? `every day ${when}` : when);
  else if (dom === "*" && dayWords(dow)) parts.push(`${dayWords(dow)}, ${when}`);
  else if (isNumber(dom) && dow === "*") parts.push(`on the ${ordinal(Number(dom))}, ${when}`);
  else return null;
  if (month !== "*") {
    if (!isNumber(month) || Number(month) < 1 || Number(month) > 12) return null;
    parts.push(`in ${MONTHS[Number(month) - 1]}`);
  }
  const text = parts.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});

export function localTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : "";
}

// "in 5 min"; once the time has come, "due now" (the scheduler starts it at that time,
// so a next run never reads as "… ago" while it is being started).
function fromNow(iso) {
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  if (seconds <= 0) return "due now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 1) return "in less than a minute";
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `in ${hours} h`;
  return `in ${Math.round(hours / 24)} days`;
}

// The relative part of each next run stays current between updates.
window.setInterval(() => {
  for (const el of document.querySelectorAll("[data-until]")) el.textContent = ` (${fromNow(el.dataset.until)})`;
}, 20000);

// --- machines and workers ----------------------------------------------------------

const workerLabel = (w) => w.name || w.directory || "(root folder)";

function findWorker(workerId) {
  for (const { machine, workers } of machines) {
    const worker = workers.find((w) => w.worker_id === workerId);
    if (worker) return { machine, worker };
  }
  return null;
}

async function loadMachines() {
  const { machines: summaries } = await api("GET", "/api/machines");
  machines = await Promise.all(summaries.map(async ({ machine }) => {
    const { workers } = await api("GET", `/api/machines/${machine.machine_id}/workers`);
    return { machine, workers: workers.filter((w) => w.status !== "pending_authorization") };
  }));
}

// --- the list ----------------------------------------------------------------------

function sessionLink(job, run) {
  const found = findWorker(job.worker_id);
  if (!run.chat_session_id || !found) return null;
  const query = new URLSearchParams({
    machine: found.machine.machine_id, worker: job.worker_id, session: run.chat_session_id,
  });
  return h("a", { href: `/chat?${query}` }, "Open session");
}

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const sameDay = (a, b) => new Date(a).toDateString() === new Date(b).toDateString();

function runItem(job, run) {
  const finished = run.finished_at && (sameDay(run.finished_at, run.scheduled_for)
    ? clock.format(new Date(run.finished_at)) : localTime(run.finished_at));
  const when = finished ? `${run.status === "failed" ? "failed" : "finished"} ${finished}` : null;
  return h(
    "li",
    { class: "run", dataset: { key: run.run_id, status: run.status } },
    h("span", { class: `badge ${run.status}` }, run.status),
    h("span", { class: "run-time" }, h("time", { datetime: run.scheduled_for }, localTime(run.scheduled_for))),
    when ? h("span", { class: "hint" }, when) : null,
    sessionLink(job, run),
    run.error ? h("span", { class: "error run-error" }, run.error) : null,
  );
}

function statusBadge(job) {
  return job.enabled
    ? h("span", { class: "badge scheduled" }, "scheduled")
    : h("span", { class: "badge paused" }, "paused");
}

function jobCard(job) {
  const id = job.job_id;
  const found = findWorker(job.worker_id);
  const where = found
    ? `${found.machine.name} / ${workerLabel(found.worker)}`
    : job.worker_id ? "a worker" : "worker removed";
  const words = cronWords(job.cron);
  const jobRuns = runs.get(id) ?? [];
  const next = job.enabled && job.next_run_at
    ? [h("time", { datetime: job.next_run_at }, localTime(job.next_run_at)), h("span", { dataset: { until: job.next_run_at } }, ` (${fromNow(job.next_run_at)})`)]
    : [job.enabled ? "not scheduled" : "none while paused"];
  const focusKey = (what) => ({ focus: `${id}:${what}` });
  return h(
    "li",
    { class: "card job", dataset: { key: id } },
    h("div", { class: "card-head" }, h("h2", {}, job.name), statusBadge(job)),
    job.paused_reason ? h("p", { class: "warning paused-reason" }, job.paused_reason) : null,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Worker"), h("dd", {}, where, h("span", { class: "hint" }, ` · ${job.model}`)),
      h("dt", {}, "Schedule"),
      h("dd", {}, words ? `${words} ` : "", h("code", {}, job.cron), h("span", { class: "hint" }, ` · ${job.timezone}`)),
      h("dt", {}, "Next run"), h("dd", { class: "next-run" }, ...next),
      h("dt", {}, "Sessions"), h("dd", {}, job.session_mode === "same_session" ? "same session every run" : "new session each run"),
    ),
    h(
      "div",
      { class: "card-actions" },
      h("button", { type: "button", class: "ghost", dataset: focusKey("run"), onclick: () => runNow(job) }, "Run now"),
      job.enabled
        ? h("button", { type: "button", class: "ghost", dataset: focusKey("pause"), onclick: () => act(job, "pause") }, "Pause")
        : h("button", { type: "button", class: "ghost", dataset: focusKey("resume"), onclick: () => act(job, "resume") }, "Resume"),
      h("button", { type: "button", class: "ghost", dataset: focusKey("edit"), onclick: () => openEditor(job) }, "Edit"),
      h("button", { type: "button", class: "ghost danger", dataset: focusKey("delete"), onclick: () => remove(job) }, "Delete"),
    ),
    h(
      "section",
      { class: "history", "aria-label": `Runs of ${job.name}` },
      h("h3", {}, "Runs", jobRuns.length > RUNS_SHOWN ? h("span", { class: "hint" }, ` (latest ${RUNS_SHOWN} of ${jobRuns.length})`) : null),
      jobRuns.length
        ? h("ol", { class: "runs" }, jobRuns.slice(0, RUNS_SHOWN).map((run) => runItem(job, run)))
        : h("p", { class: "hint" }, "No runs yet."),
    ),
  );
}

function render() {
  if (jobs === null) return;
  addButton.hidden = jobs.length === 0;
  if (jobs.length === 0) {
    list.replaceChildren(emptyState("No scheduled jobs yet", "A job sends a prompt to one of your workers on a schedule, like every weekday at 9:00, and keeps the replies as chat sessions.", "Create a job", () => openEditor(null)));
    return;
  }
  // Live updates may replace a card: keep the keyboard focus on the same button.
  const focused = document.activeElement?.dataset?.focus;
  let cards = list.querySelector("ul.jobs");
  if (!cards) {
    cards = h("ul", { class: "jobs" });
    list.replaceChildren(cards);
  }
  patchChildren(cards, jobs.map(jobCard));
  if (focused && document.activeElement?.dataset?.focus !== focused) {
    cards.querySelector(`[data-focus="${focused}"]`)?.focus();
  }
}

const byNewest = (a, b) => (b.scheduled_for ?? "").localeCompare(a.scheduled_for ?? "");

async function refresh() {
  const data = await api("GET", "/api/jobs");
  const found = data?.jobs ?? data ?? [];
  if (found.some((job) => job.worker_id && !findWorker(job.worker_id))) await loadMachines();
  await Promise.all(found.map(async (job) => {
    const answer = await api("GET", `/api/jobs/${job.job_id}/runs`);
    runs.set(job.job_id, [...(answer?.runs ?? answer ?? [])].sort(byNewest));
  }));
  jobs = found;
  render();
}

// One refresh at a time; changes during one are caught up by one more.
async function update() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      try {
        await refresh();
        if (errorBox.dataset.fromPoll) showError(errorBox, "");
        delete errorBox.dataset.fromPoll;
      } catch (error) {
        showError(errorBox, error.message);
        errorBox.dataset.fromPoll = "1";
      }
    } while (again);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
}

async function act(job, action) {
  try {
    await api("POST", `/api/jobs/${job.job_id}/${action}`);
    showError(errorBox, "");
    await update();
  } catch (error) {
    showError(errorBox, error.message);
  }
}

async function runNow(job) {
  await act(job, "run");
}

async function remove(job) {
  const sure = await confirmDialog(
    `Delete the job “${job.name}”? It stops running; the chat sessions of its runs stay.`,
    "Delete job",
  );
  if (!sure) return;
  try {
    await api("DELETE", `/api/jobs/${job.job_id}`);
    jobs = jobs.filter((j) => j.job_id !== job.job_id);
    runs.delete(job.job_id);
    render();
    showError(errorBox, "");
  } catch (error) {
    showError(errorBox, error.message);
  }
}

// --- the dialog ----------------------------------------------------------------------

const fields = form.elements;

function options(select, items, selected, empty) {
  const nodes = items.map(([value, label]) => h("option", { value }, label));
  select.replaceChildren(...(empty ? [h("option", { value: "" }, empty)] : []), ...nodes);
  select.value = items.some(([value]) => value === selected) ? selected : (items.length === 1 && !empty ? items[0][0] : "");
}

function fillWorkers(selected) {
  const summary = machines.find(({ machine }) => machine.machine_id === fields.machine.value);
  const workers = summary?.workers ?? [];
  const items = workers.map((w) => [w.worker_id, `${workerLabel(w)} (${w.status})`]);
  const only = items.length === 1 ? items[0][0] : "";
  options(fields.worker, items, selected || only, summary ? (items.length ? "Choose a worker" : "No workers") : "Choose a machine first");
  fields.worker.disabled = items.length === 0;
  fillModels(editing?.model);
}

function fillModels(selected) {
  const worker = findWorker(fields.worker.value)?.worker;
  const models = [...(worker?.models ?? [])];
  if (selected && worker && !models.includes(selected)) models.unshift(selected);
  const empty = !worker ? "Choose a worker first" : models.length ? null : "Models not known yet: start the worker";
  options(fields.model, models.map((m) => [m, m]), selected || models[0] || "", empty);
  fields.model.disabled = models.length === 0;
}

function fillZones(selected) {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch (_) {
    zones = [];
  }
  const all = [...new Set(["UTC", userZone, selected, ...zones].filter(Boolean))].sort();
  options(fields.timezone, all.map((z) => [z, z === userZone ? `${z} (yours)` : z]), selected, null);
}

function showCronWords() {
  const cron = fields.cron.value.trim();
  const words = cron ? cronWords(cron) : null;
  $("cron-words").textContent = words ? `${words}, ${fields.timezone.value} time.` : "";
}

async function openEditor(job) {
  editing = job;
  form.reset();
  showError(formError, "");
  clearInvalid();
  $("job-dialog-title").textContent = job ? `Edit “${job.name}”` : "New job";
  form.querySelector('[type="submit"]').textContent = job ? "Save job" : "Create job";
  try {
    await loadMachines();
  } catch (error) {
    showError(formError, error.message);
  }
  const current = job ? findWorker(job.worker_id) : null;
  const machineItems = machines.map(({ machine }) => [machine.machine_id, `${machine.name} (${machine.status})`]);
  const onlyMachine = machineItems.length === 1 ? machineItems[0][0] : "";
  options(fields.machine, machineItems, current?.machine.machine_id ?? onlyMachine, machineItems.length ? "Choose a machine" : "No machines");
  fields.machine.disabled = machineItems.length === 0;
  fillWorkers(job?.worker_id);
  fillZones(job?.timezone ?? userZone);
  if (job) {
    fields.name.value = job.name;
    fields.prompt.value = job.prompt;
    fields.cron.value = job.cron;
    for (const radio of form.querySelectorAll('[name="session_mode"]')) radio.checked = radio.value === job.session_mode;
  }
  if (machineItems.length === 0) {
    formError.replaceChildren("No machines yet. ", h("a", { href: "/" }, "Add a machine"), " and a worker first.");
    formError.hidden = false;
  }
  showCronWords();
  openDialog(dialog);
  fields.name.focus();
}

fields.machine.addEventListener("change", () => fillWorkers(""));
fields.worker.addEventListener("change", () => fillModels(""));
fields.cron.addEventListener("input", showCronWords);
fields.timezone.addEventListener("change", showCronWords);
for (const button of form.querySelectorAll("[data-cron]")) {
  button.addEventListener("click", () => {
    fields.cron.value = button.dataset.cron;
    fields.cron.removeAttribute("aria-invalid");
    showCronWords();
    fields.cron.focus();
  });
}

// The sentence goes right under the field it is about (on a phone the actions are far below).
const errorHome = formError.previousElementSibling;
formError.id = "job-form-error";

function markInvalid(field) {
  field.setAttribute("aria-invalid", "true");
  const described = (field.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
  if (!described.includes(formError.id)) field.setAttribute("aria-describedby", [formError.id, ...described].join(" "));
  (field.closest(".field-row") ?? field.closest("label")).after(formError);
  field.focus();
}

function clearInvalid() {
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
  errorHome.after(formError);
}

function localCheck() {
  if (!fields.name.value.trim()) return [fields.name, "Give the job a name."];
  if (!fields.worker.value) return [fields.worker, "Choose the worker that runs the job."];
  if (!fields.model.value) return [fields.model, "Choose a model."];
  if (!fields.prompt.value.trim()) return [fields.prompt, "Write the prompt the job sends."];
  if (!fields.cron.value.trim()) return [fields.cron, "Enter a schedule, e.g. 0 9 * * 1-5."];
  return null;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearInvalid();
  const problem = localCheck();
  if (problem) {
    showError(formError, problem[1]);
    markInvalid(problem[0]);
    return;
  }
  const body = {
    worker_id: fields.worker.value,
    name: fields.name.value.trim(),
    model: fields.model.value,
    prompt: fields.prompt.value,
    cron: fields.cron.value.trim(),
    timezone: fields.timezone.value,
    session_mode: form.querySelector('[name="session_mode"]:checked').value,
  };
  const submit = form.querySelector('[type="submit"]');
  const label = submit.textContent;
  submit.disabled = true;
  submit.textContent = "Saving…";
  try {
    if (editing) await api("PUT", `/api/jobs/${editing.job_id}`, { ...body, enabled: editing.enabled });
    else await api("POST", "/api/jobs", body);
    dialog.close();
    showError(errorBox, "");
    await update();
  } catch (error) {
    showError(formError, error.message);
    const field = /schedule|cron/i.test(error.message) ? fields.cron
      : /time zone/i.test(error.message) ? fields.timezone
        : /prompt|message/i.test(error.message) ? fields.prompt
          : /name/i.test(error.message) ? fields.name : null;
    if (field) markInvalid(field);
  } finally {
    submit.disabled = false;
    submit.textContent = label;
  }
});

addButton.addEventListener("click", () => openEditor(null));
// Relative times ("in 5 min") move on even when nothing else changes.
window.setInterval(render, 30000);

loadMachines()
  .catch((error) => showError(errorBox, error.message))
  .finally(() =>
    live(() => "/api/events?jobs=1", {
      jobs: () => update(),
      turns: () => update(),
      error: (data) => showError(errorBox, data.error),
    }),
  );
